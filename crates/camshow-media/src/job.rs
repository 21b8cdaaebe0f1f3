//! The video job: safety-sample → decode → parallel swap → re-order →
//! encode, with bounded queues so memory stays flat on long videos, and an
//! output that appears (renamed into place) only when the job succeeded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use camshow_core::Frame;
use camshow_core::pipeline::{PreparedSource, SwapEngine};
use camshow_core::safety::UNSAFE_THRESHOLD;

use crate::error::{Error, Result};
use crate::video::{Decoder, EncodeOptions, Encoder, Trim, VideoInfo, container_for, probe};

/// What the job does besides swapping.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// Encoder settings (the frame rate is filled in from the source unless `fps` is set).
    pub encoder: String,
    /// Quality 0–51.
    pub quality: u8,
    /// Keep the source's audio.
    pub keep_audio: bool,
    /// Output frame rate instead of the source's.
    pub fps: Option<crate::video::Rational>,
    /// Trim of the input.
    pub trim: Trim,
    /// Also write every processed frame as a PNG into this folder.
    pub keep_frames: Option<PathBuf>,
    /// Parallel frame workers.
    pub workers: usize,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            encoder: "libx264".into(),
            quality: 18,
            keep_audio: true,
            fps: None,
            trim: Trim::default(),
            keep_frames: None,
            workers: std::thread::available_parallelism().map_or(2, usize::from),
        }
    }
}

/// What the job did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobReport {
    /// Source information.
    pub info: VideoInfo,
    /// Frames written.
    pub frames: u64,
    /// Frames in which at least one face was swapped.
    pub frames_swapped: u64,
    /// Safety samples checked and how many were unsafe.
    pub safety_samples: (u64, u64),
    /// Wall time in seconds.
    pub seconds: f64,
}

/// A share of frames may be unsafe before a video is refused (as FaceFusion does).
pub const MAX_UNSAFE_SHARE: f64 = 0.10;

/// Checks about one frame per second; refuses when more than 10 % are unsafe,
/// or any when there are fewer than 10 samples. Returns (samples, unsafe).
pub fn check_video_safety(engine: &SwapEngine, input: &Path, info: &VideoInfo, trim: Trim, cancel: &AtomicBool) -> Result<(u64, u64)> {
    let mut dec = Decoder::open_samples(input, info, trim)?;
    let (mut n, mut bad, mut worst) = (0u64, 0u64, 0f32);
    while let Some(f) = dec.next_frame()? {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Invalid("cancelled".into()));
        }
        let v = engine.safety_gate().check(&f)?;
        n += 1;
        if !v.safe {
            bad += 1;
            worst = worst.max(v.max_unsafe_score);
        }
    }
    let refused = if n < 10 { bad > 0 } else { bad as f64 > MAX_UNSAFE_SHARE * n as f64 };
    if refused {
        return Err(camshow_core::Error::Unsafe {
            what: format!("video {} ({bad} of {n} sampled frames)", input.display()),
            labels: "exposed nudity".into(),
            score: worst,
            threshold: UNSAFE_THRESHOLD,
        }
        .into());
    }
    Ok((n, bad))
}

/// A window that keeps the decoder at most `size` frames ahead of the encoder.
struct Window {
    written: Mutex<u64>,
    moved: Condvar,
    size: u64,
}

impl Window {
    fn wait_for(&self, index: u64, stop: &AtomicBool) -> bool {
        let mut w = self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while index >= *w + self.size {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            w = self.moved.wait_timeout(w, std::time::Duration::from_millis(50)).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }

    fn advance(&self, to: u64) {
        *self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = to;
        self.moved.notify_all();
    }
}

type Processed = (u64, Result<(Frame, bool)>);

/// Swaps `source` onto the faces of every frame of `input`, writing `output`.
/// `progress(done, total)` is called as frames are written; setting `cancel`
/// stops the job cleanly. On any failure nothing is left at `output`.
#[allow(clippy::too_many_arguments)]
pub fn run_video_job(
    engine: &SwapEngine,
    source: &PreparedSource,
    reference: Option<&[f32]>,
    input: &Path,
    output: &Path,
    opts: &JobOptions,
    progress: &(dyn Fn(u64, Option<u64>) + Sync),
    cancel: &AtomicBool,
) -> Result<JobReport> {
    let start = Instant::now();
    let container = container_for(output).ok_or_else(|| Error::UnsupportedVideoFormat { path: output.to_path_buf() })?;
    let info = probe(input)?;
    let safety = check_video_safety(engine, input, &info, opts.trim, cancel)?;
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Error::Io { context: "output folder does not exist for", path: output.to_path_buf(), source: std::io::ErrorKind::NotFound.into() });
    }
    if let Some(k) = &opts.keep_frames {
        std::fs::create_dir_all(k).map_err(Error::io("cannot create", k))?;
    }
    let tmp = tempfile::Builder::new()
        .prefix(".camshow-")
        .suffix(&format!(".part.{container}"))
        .tempfile_in(&dir)
        .map_err(Error::io("cannot create a temporary file in", &dir))?;
    let fps = opts.fps.unwrap_or(if info.variable_fps { info.avg_fps } else { info.fps });
    let total = info.frame_count.filter(|_| opts.trim == Trim::default() && !info.variable_fps && opts.fps.is_none()).or_else(|| {
        let secs = opts.trim.end.unwrap_or(info.duration).min(info.duration) - opts.trim.start.unwrap_or(0.0);
        (secs > 0.0).then(|| (secs * fps.as_f64()).round() as u64)
    });
    let mut decoder = Decoder::open(input, &info, opts.trim)?;
    let enc_opts = EncodeOptions { encoder: opts.encoder.clone(), quality: opts.quality, keep_audio: opts.keep_audio, fps, trim: opts.trim };
    let mut encoder = Encoder::start(tmp.path(), container, input, &info, info.width, info.height, &enc_opts)?;

    let workers = opts.workers.max(1);
    let stop = AtomicBool::new(false);
    let window = Window { written: Mutex::new(0), moved: Condvar::new(), size: (workers as u64) * 3 };
    let (frame_tx, frame_rx) = sync_channel::<(u64, Frame)>(workers * 2);
    let frame_rx = Mutex::new(frame_rx);
    let (done_tx, done_rx) = sync_channel::<Processed>(workers * 2);
    let decode_error: Mutex<Option<Error>> = Mutex::new(None);

    let outcome = std::thread::scope(|s| -> Result<(u64, u64)> {
        // Decoder: in order, at most `window` frames ahead of the encoder.
        let (stop_ref, window_ref, decode_error_ref) = (&stop, &window, &decode_error);
        let decoder_ref = &mut decoder;
        s.spawn(move || {
            let mut i = 0u64;
            loop {
                if stop_ref.load(Ordering::Relaxed) || cancel.load(Ordering::Relaxed) || !window_ref.wait_for(i, stop_ref) {
                    break;
                }
                match decoder_ref.next_frame() {
                    Ok(Some(f)) => {
                        if frame_tx.send((i, f)).is_err() {
                            break;
                        }
                        i += 1;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        *decode_error_ref.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                        break;
                    }
                }
            }
        });
        for _ in 0..workers {
            let (rx, tx, stop_ref): (&Mutex<Receiver<(u64, Frame)>>, _, &AtomicBool) = (&frame_rx, done_tx.clone(), &stop);
            s.spawn(move || {
                loop {
                    let next = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                    let Ok((i, mut f)) = next else { break };
                    if stop_ref.load(Ordering::Relaxed) {
                        break;
                    }
                    let r = engine.swap_checked(&mut f, source, reference).map(|rep| (f, rep.faces_swapped > 0)).map_err(Error::from);
                    if tx.send((i, r)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        // Re-order and encode.
        let mut pending: BTreeMap<u64, (Frame, bool)> = BTreeMap::new();
        let (mut next, mut swapped) = (0u64, 0u64);
        let result = (|| -> Result<()> {
            for (i, r) in done_rx.iter() {
                if cancel.load(Ordering::Relaxed) {
                    return Err(Error::Invalid("cancelled".into()));
                }
                pending.insert(i, r?);
                while let Some((f, any)) = pending.remove(&next) {
                    encoder.write(&f)?;
                    if let Some(k) = &opts.keep_frames {
                        crate::image_io::write_image(&k.join(format!("frame_{next:06}.png")), &f, "face swap frame made with Camshow Deepfaker")?;
                    }
                    swapped += u64::from(any);
                    next += 1;
                    window.advance(next);
                    progress(next, total);
                }
            }
            Ok(())
        })();
        if result.is_err() {
            stop.store(true, Ordering::Relaxed);
            window.moved.notify_all();
            // Unblock workers waiting to send.
            for _ in done_rx.try_iter() {}
        }
        result.map(|()| (next, swapped))
    });
    if cancel.load(Ordering::Relaxed) {
        return Err(Error::Invalid("cancelled; no output was written".into()));
    }
    if let Some(e) = decode_error.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        return Err(e);
    }
    let (frames, frames_swapped) = outcome?;
    if frames == 0 {
        return Err(Error::Invalid(format!("{} has no frames to process", input.display())));
    }
    encoder.finish()?;
    tmp.persist(output).map_err(|e| Error::Io { context: "cannot move into place", path: output.to_path_buf(), source: e.error })?;
    Ok(JobReport { info, frames, frames_swapped, safety_samples: safety, seconds: start.elapsed().as_secs_f64() })
}
