//! Video jobs in parts, for any cluster: one job runs one time range of the
//! input ([`Segment`] `i/n`, split at keyframes where one is near, else at
//! a frame boundary), and [`join`] concatenates the parts without
//! re-encoding, muxing the original's audio and the provenance.
//!
//! Each part records which part it is (index, count, frames, and the
//! input's size and frame count) in its container metadata, so a join
//! refuses a missing, repeated or foreign part instead of writing a video
//! with a hole in it.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::video::{Trim, VideoInfo, container_for};

/// The metadata key a part's [`SegmentTag`] is stored under.
pub const TAG_KEY: &str = "camshow_segment";

/// Part `index` (from 0) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Which part, from 0 (a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`).
    pub index: u32,
    /// How many parts the video is split into.
    pub count: u32,
}

impl Segment {
    /// Part `index` of `count`, checked.
    pub fn new(index: u32, count: u32) -> Result<Self> {
        if count == 0 || count > 10_000 {
            return Err(Error::Invalid(format!(
                "a video is split into 1 to 10000 segments, not {count}"
            )));
        }
        if index >= count {
            return Err(Error::Invalid(format!(
                "segment {index}/{count}: the index counts from 0 and must be below {count}"
            )));
        }
        Ok(Self { index, count })
    }
}

impl std::str::FromStr for Segment {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Invalid(format!(
                "segment {s:?} is not INDEX/COUNT (such as 0/4: the first of four parts)"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        Self::new(
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        )
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a part holds, stored in its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentTag {
    /// Which part.
    pub segment: Segment,
    /// Index of its first frame in the input.
    pub first_frame: u64,
    /// Frames it holds.
    pub frames: u64,
    /// Frames in the whole input.
    pub input_frames: u64,
    /// Size in bytes of the input file.
    pub input_bytes: u64,
    /// Whether the part starts at a keyframe of the input (cheap to seek).
    pub keyframe_start: bool,
}

/// One part's range of the input.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentPlan {
    /// What the part will hold.
    pub tag: SegmentTag,
    /// The time range to decode (half a frame before the part's first frame
    /// and before the next part's first frame, so that rounding cannot move
    /// a frame across the boundary).
    pub trim: Trim,
}

/// Presentation times of the first video stream's packets, ascending, with
/// whether each is a keyframe, relative to the file's start (the origin of
/// FFmpeg's `-ss`).
pub fn packets(path: &Path) -> Result<Vec<(f64, bool)>> {
    let v = crate::video::ffprobe_json(
        path,
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,flags:format=start_time",
        ],
    )?;
    let start = v["format"]["start_time"]
        .as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0);
    let mut p: Vec<(f64, bool)> = v["packets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let t = p["pts_time"].as_str()?.parse::<f64>().ok()?;
            let key = p["flags"].as_str().is_some_and(|f| f.starts_with('K'));
            Some((t - start, key))
        })
        .collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(p)
}

/// Where part boundaries fall among `frames` frames with keyframes at
/// `keys` (ascending frame indices): `count + 1` frame indices from 0 to
/// `frames`. Each inner boundary is the nearest keyframe to the even split
/// when one is within a quarter of a part, else the even split itself.
pub fn boundaries(frames: u64, keys: &[u64], count: u32) -> Result<Vec<u64>> {
    let n = u64::from(count);
    if frames < n {
        return Err(Error::Invalid(format!(
            "the video has {frames} frame(s): too few for {count} segments"
        )));
    }
    let reach = (frames / n / 4).max(1);
    let mut b = vec![0u64];
    for k in 1..n {
        let even = k * frames / n;
        let near = keys
            .iter()
            .copied()
            .filter(|&key| key.abs_diff(even) <= reach)
            .min_by_key(|&key| key.abs_diff(even));
        let prev = *b.last().unwrap_or(&0);
        let next = near.filter(|&key| key > prev).unwrap_or(even).max(prev + 1);
        b.push(next);
    }
    b.push(frames);
    if b.windows(2).any(|w| w[1] <= w[0]) {
        return Err(Error::Invalid(format!(
            "the video's {frames} frame(s) cannot be split into {count} segments"
        )));
    }
    Ok(b)
}

/// The plan for part `segment` of `input`: a constant-rate reading of the
/// input (a variable-rate one is read at its average rate), in frames.
pub fn plan(input: &Path, info: &VideoInfo, segment: Segment) -> Result<SegmentPlan> {
    let packets = packets(input)?;
    if packets.is_empty() {
        return Err(Error::Invalid(format!(
            "{} has no video frames to split",
            input.display()
        )));
    }
    if info.variable_fps {
        return Err(Error::Invalid(format!(
            "{} has a variable frame rate ({} nominal, {} average): split a constant-rate copy \
             (ffmpeg -i IN -fps_mode cfr -r {} OUT) or run it as one job",
            input.display(),
            info.fps,
            info.avg_fps,
            info.avg_fps
        )));
    }
    let keys: Vec<u64> = packets
        .iter()
        .enumerate()
        .filter(|(_, (_, k))| *k)
        .map(|(i, _)| i as u64)
        .collect();
    let frames = packets.len() as u64;
    let b = boundaries(frames, &keys, segment.count)?;
    let (first, end) = (b[segment.index as usize], b[segment.index as usize + 1]);
    // Half-way between the boundary frame and the one before it.
    let cut = |i: u64| {
        (i > 0 && i < frames).then(|| {
            let (a, z) = (packets[i as usize - 1].0, packets[i as usize].0);
            f64::midpoint(a, z)
        })
    };
    let input_bytes = std::fs::metadata(input)
        .map_err(Error::io("cannot read", input))?
        .len();
    Ok(SegmentPlan {
        tag: SegmentTag {
            segment,
            first_frame: first,
            frames: end - first,
            input_frames: frames,
            input_bytes,
            keyframe_start: keys.binary_search(&first).is_ok(),
        },
        trim: Trim {
            start: cut(first).map(|t| t.max(0.0)),
            end: cut(end),
        },
    })
}

/// The part a file holds, from its metadata.
pub fn read_tag(path: &Path) -> Result<SegmentTag> {
    let v =
        crate::video::ffprobe_json(path, &["-show_entries", &format!("format_tags={TAG_KEY}")])?;
    let text = v["format"]["tags"][TAG_KEY].as_str().ok_or_else(|| {
        Error::Invalid(format!(
            "{} is not a segment written by `camshow swap --segment`",
            path.display()
        ))
    })?;
    serde_json::from_str(text).map_err(|e| {
        Error::Invalid(format!(
            "{} has an unreadable segment tag ({e})",
            path.display()
        ))
    })
}

/// What [`join`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JoinReport {
    /// The joined video.
    pub output: PathBuf,
    /// Parts joined.
    pub segments: u32,
    /// Frames in the joined video.
    pub frames: u64,
    /// Whether the original's audio was muxed in.
    pub audio: bool,
}

/// Joins the parts of `original` (in any order; each exactly once) into
/// `output` without re-encoding the video, with the original's audio when
/// `keep_audio` and the provenance tags. The output appears only complete.
pub fn join(
    parts: &[PathBuf],
    original: &Path,
    output: &Path,
    keep_audio: bool,
    cancel: &AtomicBool,
) -> Result<JoinReport> {
    let container = container_for(output).ok_or_else(|| Error::UnsupportedVideoFormat {
        path: output.to_path_buf(),
    })?;
    let mut inputs: Vec<(&str, &Path)> = vec![("target", original)];
    inputs.extend(parts.iter().map(|p| ("segment", p.as_path())));
    camshow_core::atomic::ensure_not_input(output, &inputs)?;
    let info = crate::video::probe(original)?;
    let bytes = std::fs::metadata(original)
        .map_err(Error::io("cannot read", original))?
        .len();
    let mut tagged = Vec::with_capacity(parts.len());
    for p in parts {
        let t = read_tag(p)?;
        if t.input_bytes != bytes {
            return Err(Error::Invalid(format!(
                "{} is a segment of another video (of {} bytes; {} has {bytes})",
                p.display(),
                t.input_bytes,
                original.display()
            )));
        }
        tagged.push((t, p));
    }
    tagged.sort_by_key(|(t, _)| t.segment.index);
    let Some((first, _)) = tagged.first() else {
        return Err(Error::Invalid("no segments to join".into()));
    };
    let (count, input_frames) = (first.segment.count, first.input_frames);
    let mut expect_frame = 0;
    for (i, (t, p)) in tagged.iter().enumerate() {
        if t.segment.count != count {
            return Err(Error::Invalid(format!(
                "{} is segment {} but the others are parts of {count}",
                p.display(),
                t.segment
            )));
        }
        if t.segment.index as usize != i {
            let what = if (t.segment.index as usize) < i {
                format!("segment {} is given twice", t.segment)
            } else {
                format!("segment {i}/{count} is missing")
            };
            return Err(Error::Invalid(what));
        }
        if t.first_frame != expect_frame {
            return Err(Error::Invalid(format!(
                "{} starts at frame {} but the parts before it end at frame {expect_frame}",
                p.display(),
                t.first_frame
            )));
        }
        expect_frame += t.frames;
    }
    if tagged.len() != count as usize {
        return Err(Error::Invalid(format!(
            "segment {}/{count} is missing",
            tagged.len()
        )));
    }
    let frames = expect_frame;
    if frames != input_frames {
        return Err(Error::Invalid(format!(
            "the segments hold {frames} frames but the input has {input_frames}"
        )));
    }
    let dir = output
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let work = tempfile::Builder::new()
        .prefix(".camshow-join-")
        .tempdir_in(dir)
        .map_err(Error::io("cannot create a temporary folder in", dir))?;
    // The list names links with plain names, so that any path (quotes,
    // non-UTF-8 bytes) reaches FFmpeg unchanged.
    let mut list = String::from("ffconcat version 1.0\n");
    for (i, (_, p)) in tagged.iter().enumerate() {
        let ext = p
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("mp4")
            .to_ascii_lowercase();
        let name = format!("part{i:05}.{ext}");
        let link = work.path().join(&name);
        let abs = std::fs::canonicalize(p).map_err(Error::io("cannot read", p.as_path()))?;
        link_or_copy(&abs, &link)?;
        list.push_str("file ");
        list.push_str(&name);
        list.push('\n');
    }
    let list_path = work.path().join("list.ffconcat");
    std::fs::write(&list_path, list).map_err(Error::io("cannot write", &list_path))?;
    let tmp = camshow_core::atomic::temp_file_in(dir, &format!(".part.{container}"))?;
    let audio = keep_audio && info.audio_codec.is_some();
    crate::video::mux_joined(
        &list_path,
        original,
        &info,
        container,
        audio,
        tmp.path(),
        cancel,
    )?;
    crate::video::finish_output(
        tmp,
        container,
        crate::provenance::Operation::FaceSwap,
        &format!("video, faces swapped in {count} segment(s) joined"),
        output,
    )?;
    Ok(JoinReport {
        output: output.to_path_buf(),
        segments: count,
        frames,
        audio,
    })
}

fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    #[cfg(unix)]
    if std::os::unix::fs::symlink(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to)
        .map(drop)
        .map_err(Error::io("cannot copy", from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_parse_and_are_checked() {
        assert_eq!(
            "1/4".parse::<Segment>().unwrap(),
            Segment { index: 1, count: 4 }
        );
        assert_eq!(" 0 / 1 ".parse::<Segment>().unwrap().to_string(), "0/1");
        for bad in ["4/4", "1", "a/2", "0/0", "-1/3", "1/20000"] {
            assert!(bad.parse::<Segment>().is_err(), "{bad}");
        }
    }

    #[test]
    fn boundaries_snap_to_near_keyframes_only() {
        // Keyframes every 10 frames: the split of 100 in 3 snaps to 30 and 70.
        let keys: Vec<u64> = (0..100).step_by(10).collect();
        assert_eq!(boundaries(100, &keys, 3).unwrap(), [0, 30, 70, 100]);
        // One keyframe only: the boundary falls between keyframes.
        assert_eq!(boundaries(60, &[0], 2).unwrap(), [0, 30, 60]);
        // A keyframe near the even split wins.
        assert_eq!(boundaries(60, &[0, 33], 2).unwrap(), [0, 33, 60]);
        assert_eq!(boundaries(3, &[0], 3).unwrap(), [0, 1, 2, 3]);
        assert!(boundaries(2, &[0], 3).is_err());
        assert_eq!(boundaries(7, &[0], 1).unwrap(), [0, 7]);
    }
}
