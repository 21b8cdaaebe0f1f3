//! Re-timing an MP4 video track: the encoder pipe carries raw frames without
//! timestamps, so a variable-frame-rate source is encoded on a constant grid
//! and its real per-frame timestamps are then written into the file's
//! time-to-sample table (`stts`), with the track, media and movie durations
//! and the edit list updated to match. Sample data is not touched: the
//! `moov` box must follow `mdat` (no fast start), so chunk offsets stay valid.

use crate::error::{Error, Result};

fn bad(msg: impl Into<String>) -> Error {
    Error::Internal(format!("MP4 re-timing: {}", msg.into()))
}

/// One box: type, header length, and its whole bytes.
struct BoxRef<'a> {
    kind: [u8; 4],
    header: usize,
    bytes: &'a [u8],
}

fn boxes(data: &[u8]) -> Result<Vec<BoxRef<'_>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if data.len() - i < 8 {
            return Err(bad("truncated box header"));
        }
        let size32 = u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]) as u64;
        let kind = [data[i + 4], data[i + 5], data[i + 6], data[i + 7]];
        let (size, header) = match size32 {
            0 => ((data.len() - i) as u64, 8),
            1 => {
                if data.len() - i < 16 {
                    return Err(bad("truncated large box header"));
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[i + 8..i + 16]);
                (u64::from_be_bytes(b), 16)
            }
            s => (s, 8),
        };
        let size = usize::try_from(size).map_err(|_| bad("box too large"))?;
        // (Compared without adding: a 64-bit size must not wrap.)
        if size < header || size > data.len() - i {
            return Err(bad(format!(
                "box {} overruns its parent",
                String::from_utf8_lossy(&kind)
            )));
        }
        out.push(BoxRef {
            kind,
            header,
            bytes: &data[i..i + size],
        });
        i += size;
    }
    Ok(out)
}

fn make_box(kind: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 8);
    v.extend_from_slice(&((payload.len() + 8) as u32).to_be_bytes());
    v.extend_from_slice(&kind);
    v.extend_from_slice(payload);
    v
}

fn be32(b: &[u8], at: usize) -> Result<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| bad("short box"))
}

fn be64(b: &[u8], at: usize) -> Result<u64> {
    let s = b.get(at..at + 8).ok_or_else(|| bad("short box"))?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_be_bytes(a))
}

/// Writes `value` into a full box's duration field at the version-dependent offset.
fn set_duration(payload: &mut [u8], v0_at: usize, v1_at: usize, value: u64) -> Result<()> {
    let version = *payload.first().ok_or_else(|| bad("empty box"))?;
    if version == 1 {
        payload
            .get_mut(v1_at..v1_at + 8)
            .ok_or_else(|| bad("short box"))?
            .copy_from_slice(&value.to_be_bytes());
    } else {
        let v = u32::try_from(value).map_err(|_| bad("duration does not fit a version 0 box"))?;
        payload
            .get_mut(v0_at..v0_at + 4)
            .ok_or_else(|| bad("short box"))?
            .copy_from_slice(&v.to_be_bytes());
    }
    Ok(())
}

const CONTAINERS: [&[u8; 4]; 6] = [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"];

struct Timing {
    movie_scale: u32,
    media_scale: u32,
    samples: u32,
    has_ctts: bool,
}

fn scan(data: &[u8], t: &mut Timing) -> Result<()> {
    for b in boxes(data)? {
        let p = &b.bytes[b.header..];
        match &b.kind {
            k if CONTAINERS.contains(&k) => scan(p, t)?,
            b"mvhd" => t.movie_scale = be32(p, if p.first() == Some(&1) { 20 } else { 12 })?,
            b"mdhd" => t.media_scale = be32(p, if p.first() == Some(&1) { 20 } else { 12 })?,
            b"stsz" => t.samples = be32(p, 8)?,
            b"ctts" => t.has_ctts = true,
            _ => {}
        }
    }
    Ok(())
}

fn rebuild(data: &[u8], stts: &[u8], media_total: u64, movie_total: u64) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() + stts.len());
    for b in boxes(data)? {
        let p = &b.bytes[b.header..];
        let new = match &b.kind {
            k if CONTAINERS.contains(&k) => {
                make_box(*k, &rebuild(p, stts, media_total, movie_total)?)
            }
            b"stts" => make_box(*b"stts", stts),
            b"mvhd" => {
                let mut q = p.to_vec();
                set_duration(&mut q, 16, 24, movie_total)?;
                make_box(*b"mvhd", &q)
            }
            b"tkhd" => {
                let mut q = p.to_vec();
                set_duration(&mut q, 20, 28, movie_total)?;
                make_box(*b"tkhd", &q)
            }
            b"mdhd" => {
                let mut q = p.to_vec();
                set_duration(&mut q, 16, 24, media_total)?;
                make_box(*b"mdhd", &q)
            }
            b"elst" => {
                let mut q = p.to_vec();
                let v1 = q.first() == Some(&1);
                let n = be32(&q, 4)? as usize;
                let entry = if v1 { 20 } else { 12 };
                for e in 0..n {
                    let at = 8 + e * entry;
                    let media_time = if v1 {
                        be64(&q, at + 8)? as i64
                    } else {
                        i64::from(be32(&q, at + 4)? as i32)
                    };
                    if media_time >= 0 {
                        if v1 {
                            q.get_mut(at..at + 8)
                                .ok_or_else(|| bad("short elst"))?
                                .copy_from_slice(&movie_total.to_be_bytes());
                        } else {
                            let v =
                                u32::try_from(movie_total).map_err(|_| bad("duration too long"))?;
                            q.get_mut(at..at + 4)
                                .ok_or_else(|| bad("short elst"))?
                                .copy_from_slice(&v.to_be_bytes());
                        }
                    }
                }
                make_box(*b"elst", &q)
            }
            _ => b.bytes.to_vec(),
        };
        out.extend_from_slice(&new);
    }
    Ok(out)
}

/// Per-sample durations in `scale` ticks for presentation `times` (seconds,
/// ascending): exact cumulative rounding, each at least one tick; the last
/// frame lasts the median interval.
pub fn durations(times: &[f64], scale: u32) -> Vec<u32> {
    let s = f64::from(scale);
    let t0 = times.first().copied().unwrap_or(0.0);
    let ticks: Vec<i64> = times
        .iter()
        .map(|t| ((t - t0) * s).round() as i64)
        .collect();
    let mut d: Vec<u32> = ticks
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]).clamp(1, i64::from(u32::MAX)) as u32)
        .collect();
    let mut sorted = d.clone();
    sorted.sort_unstable();
    let last = sorted
        .get(sorted.len() / 2)
        .copied()
        .unwrap_or(scale / 25)
        .max(1);
    if !times.is_empty() {
        d.push(last);
    }
    d
}

/// The timing boxes of a `moov` box.
fn timing(moov: &BoxRef<'_>) -> Result<Timing> {
    let mut t = Timing {
        movie_scale: 0,
        media_scale: 0,
        samples: 0,
        has_ctts: false,
    };
    scan(&moov.bytes[moov.header..], &mut t)?;
    Ok(t)
}

/// The number of samples of the video track of `data` (a whole MP4).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn sample_count(data: &[u8]) -> Result<u32> {
    let top = boxes(data)?;
    let moov = top
        .iter()
        .find(|b| &b.kind == b"moov")
        .ok_or_else(|| bad("no moov box"))?;
    Ok(timing(moov)?.samples)
}

/// `data` (a whole MP4 with one video track, `moov` after `mdat`) with the
/// track re-timed to the presentation `times` of its samples.
pub fn retime(data: &[u8], times: &[f64]) -> Result<Vec<u8>> {
    let top = boxes(data)?;
    let moov_at = top
        .iter()
        .position(|b| &b.kind == b"moov")
        .ok_or_else(|| bad("no moov box"))?;
    let mdat_at = top
        .iter()
        .position(|b| &b.kind == b"mdat")
        .ok_or_else(|| bad("no mdat box"))?;
    if moov_at < mdat_at {
        return Err(bad(
            "moov comes before mdat (fast start): chunk offsets would move",
        ));
    }
    let moov = &top[moov_at];
    let t = timing(moov)?;
    if t.has_ctts {
        return Err(bad(
            "the track reorders frames (ctts); encode without B-frames",
        ));
    }
    if t.samples as usize != times.len() {
        return Err(bad(format!(
            "{} samples but {} timestamps",
            t.samples,
            times.len()
        )));
    }
    if t.media_scale == 0 || t.movie_scale == 0 {
        return Err(bad("no timescale"));
    }
    let d = durations(times, t.media_scale);
    let media_total: u64 = d.iter().map(|&x| u64::from(x)).sum();
    let movie_total = u64::try_from(
        u128::from(media_total) * u128::from(t.movie_scale) / u128::from(t.media_scale),
    )
    .map_err(|_| bad("the re-timed duration does not fit the movie's time scale"))?;
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &x in &d {
        match runs.last_mut() {
            Some((n, v)) if *v == x => *n += 1,
            _ => runs.push((1, x)),
        }
    }
    let mut stts = vec![0u8; 4];
    stts.extend_from_slice(&(runs.len() as u32).to_be_bytes());
    for (n, v) in runs {
        stts.extend_from_slice(&n.to_be_bytes());
        stts.extend_from_slice(&v.to_be_bytes());
    }
    let new_moov = make_box(
        *b"moov",
        &rebuild(&moov.bytes[moov.header..], &stts, media_total, movie_total)?,
    );
    let mut out = Vec::with_capacity(data.len() + new_moov.len());
    for (i, b) in top.iter().enumerate() {
        if i == moov_at {
            out.extend_from_slice(&new_moov);
        } else {
            out.extend_from_slice(b.bytes);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzz harness: a gap longer than the 32-bit duration field
    /// wrapped; now it saturates.
    #[test]
    fn huge_gaps_saturate_instead_of_wrapping() {
        let d = durations(&[0.0, 1e12, 1e12 + 1.0], 90_000);
        assert_eq!(d[0], u32::MAX);
        assert_eq!(d[1], 90_000);
    }

    #[test]
    fn durations_follow_the_timestamps_exactly() {
        let times = [0.0, 0.1, 0.3, 0.333, 0.5];
        let d = durations(&times, 1000);
        assert_eq!(d, vec![100, 200, 33, 167, 167]);
        // Cumulative rounding: no drift over many irregular frames.
        let times: Vec<f64> = (0..1000)
            .map(|i| f64::from(i) / 29.97 + if i % 3 == 0 { 0.004 } else { 0.0 })
            .collect();
        let d = durations(&times, 15360);
        let end: u64 = d[..999].iter().map(|&x| u64::from(x)).sum();
        assert_eq!(
            end as i64,
            ((times[999] - times[0]) * 15360.0).round() as i64
        );
        assert!(d.iter().all(|&x| x >= 1));
    }

    #[test]
    fn broken_files_are_errors_not_panics() {
        assert!(retime(b"", &[0.0]).is_err());
        assert!(retime(&[0, 0, 0, 9, b'f', b't', b'y', b'p', 0], &[0.0]).is_err());
        let mut huge = make_box(*b"mdat", &[1, 2, 3]);
        huge[3] = 200;
        assert!(retime(&huge, &[0.0]).is_err());
        let no_moov = make_box(*b"mdat", &[0; 16]);
        assert!(retime(&no_moov, &[0.0]).is_err());
    }
}
