//! The video job: decode → parallel analysis → in-order
//! tracking, smoothing and per-track selection → parallel swap → re-order →
//! encode. A window keeps the decoder a bounded number of frames ahead of the
//! encoder so memory stays flat on long videos, and the output appears
//! (renamed into place) only when the job succeeded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TrySendError, channel, sync_channel};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use camshow_core::Frame;
use camshow_core::detect::Face;
use camshow_core::pipeline::SwapEngine;
use camshow_core::safety::{SafetyPolicy, SceneCuts, UNSAFE_THRESHOLD, VideoClearance};
use camshow_core::session::{FrameSession, SourcePlan};
use camshow_core::settings::VideoSettings;
use camshow_core::swap::PreparedSource;

use crate::error::{Error, Result};
use crate::provenance::Operation;
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
    /// Only this part of the input (see [`crate::segment`]): its time range,
    /// no audio (the join muxes it), and its tag in the metadata.
    pub segment: Option<crate::segment::SegmentPlan>,
}

impl JobOptions {
    /// The options `video` settings describe, for an input trimmed by `trim`,
    /// with frames kept in `keep_frames` when `video.keep_frames` is on.
    pub fn from_settings(video: &VideoSettings, trim: Trim, keep_frames: Option<PathBuf>) -> Self {
        Self {
            encoder: video.encoder.clone(),
            quality: video.quality,
            keep_audio: video.keep_audio,
            fps: video
                .output_fps()
                .map(|num| crate::video::Rational { num, den: 1 }),
            trim,
            keep_frames: keep_frames.filter(|_| video.keep_frames),
            workers: video.effective_workers(),
            segment: None,
        }
    }
}

impl Default for JobOptions {
    fn default() -> Self {
        Self::from_settings(&VideoSettings::default(), Trim::default(), None)
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
    /// The gate's checks, made in the decoding pass (the frame and context
    /// crops of the faces to swap, several per second of video and the first
    /// frame of every scene), and how many were unsafe.
    pub safety_checks: (u64, u64),
    /// Inclusive frame ranges left unswapped because a check around them failed.
    pub unswapped_ranges: Vec<(u64, u64)>,
    /// Scene cuts found (each one's first frame was checked as well).
    pub scene_cuts: u64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Seconds from the job's start to its first decoded frame.
    pub first_frame_seconds: f64,
    /// Seconds the gate spent on the checks, summed over its threads
    /// ([`camshow_core::safety::GATE_SESSIONS`], beside decoding, swapping
    /// and encoding).
    pub gate_seconds: f64,
    /// Whether NVDEC was asked to decode the video (FFmpeg decodes a
    /// stream NVDEC cannot take on the CPU itself); else the CPU did.
    pub gpu_decode: bool,
}

/// The gate's refusal of `input` after `unsafe_checks` of `checks` were
/// unsafe (`early`: the job stopped there, since the checks still to come
/// could not lift it).
fn refusal(
    input: &Path,
    (checks, unsafe_checks): (u64, u64),
    labels: &std::collections::BTreeSet<&str>,
    early: bool,
) -> Error {
    let when = if early {
        "of the checks so far: more than the 10 % allowed whatever the rest holds"
    } else {
        "checks while swapping"
    };
    camshow_core::Error::Unsafe {
        what: format!(
            "video {} ({unsafe_checks} of {checks} {when})",
            input.display()
        ),
        labels: labels.iter().copied().collect::<Vec<_>>().join(", "),
        score: UNSAFE_THRESHOLD,
        threshold: UNSAFE_THRESHOLD,
    }
    .into()
}

/// A temporary folder beside `k` for the frames, after checking that `k` is
/// not a non-empty folder (or a file) an earlier run left.
fn fresh_frames_dir(k: &Path) -> Result<tempfile::TempDir> {
    if k.exists() {
        let empty = std::fs::read_dir(k).is_ok_and(|mut d| d.next().is_none());
        if !k.is_dir() || !empty {
            return Err(Error::Invalid(format!(
                "the frames folder {} already exists and is not empty: remove it or choose another output",
                k.display()
            )));
        }
    }
    let parent = match k.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    tempfile::Builder::new()
        .prefix(".camshow-frames-")
        .tempdir_in(&parent)
        .map_err(Error::io("cannot create a temporary folder in", &parent))
}

/// Frames waiting for a check, with the faces to swap in them.
type Held = BTreeMap<u64, (Frame, Vec<(Face, usize)>)>;

/// The boxes of the faces about to be swapped.
fn boxes(targets: &[(Face, usize)]) -> Vec<[f32; 4]> {
    targets.iter().map(|(f, _)| f.bbox).collect()
}

/// Hands a held frame to the workers: with its faces when the gate cleared
/// it, with none (passed through unswapped) when it did not.
fn release(held: &mut Held, swap_tx: &Sender<SwapTask>, i: u64, swap: bool) -> Result<()> {
    let (f, targets) = held
        .remove(&i)
        .ok_or_else(|| Error::Internal(format!("frame {i} was released twice")))?;
    let targets = if swap { targets } else { Vec::new() };
    swap_tx
        .send((i, f, targets))
        .map_err(|_| Error::Internal("frame workers stopped".into()))
}

/// A window that keeps the decoder at most `size` frames ahead of the encoder.
struct Window {
    written: Mutex<u64>,
    moved: Condvar,
    size: u64,
}

impl Window {
    fn wait_for(&self, index: u64, stop: &AtomicBool) -> bool {
        let mut w = self
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while index >= *w + self.size {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            w = self
                .moved
                .wait_timeout(w, std::time::Duration::from_millis(50))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        true
    }

    fn advance(&self, to: u64) {
        *self
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = to;
        self.moved.notify_all();
    }
}

/// Work finished by a frame worker.
enum Done {
    Analysed(u64, Result<(Frame, Vec<Face>)>),
    /// A check's verdict and how long it took (seconds).
    Checked(u64, Result<camshow_core::safety::Verdict>, f64),
    Swapped(u64, Result<(Frame, bool)>),
}

/// The tracked frames in order, each with its check: none, waiting for the
/// gate's thread, or its verdict. The clearance takes them in this order as
/// soon as the verdicts before them are in, so checks run beside the rest of
/// the job and never out of order.
#[derive(Default)]
struct InOrderChecks {
    frames: std::collections::VecDeque<(u64, Check)>,
}

/// A tracked frame's check.
#[derive(Clone, Copy, PartialEq)]
enum Check {
    /// The frame has none.
    None,
    /// Sent to the gate; no verdict yet.
    Running,
    /// Whether it passed.
    Done(bool),
}

impl InOrderChecks {
    /// Frame `i` was tracked; `checked` when its check was sent to the gate.
    fn push(&mut self, i: u64, checked: bool) {
        self.frames
            .push_back((i, if checked { Check::Running } else { Check::None }));
    }

    /// The check of frame `i` came back.
    fn verdict(&mut self, i: u64, safe: bool) -> Result<()> {
        match self.frames.iter_mut().find(|(j, _)| *j == i) {
            Some((_, c @ Check::Running)) => {
                *c = Check::Done(safe);
                Ok(())
            }
            _ => Err(Error::Internal(format!(
                "a check of frame {i} came back that was not waited for"
            ))),
        }
    }

    /// The next frame in order, once its check (if any) is in: with the
    /// verdict, or none when it had no check.
    fn next_ready(&mut self) -> Option<(u64, Option<bool>)> {
        let &(i, check) = self.frames.front()?;
        let verdict = match check {
            Check::Running => return None,
            Check::None => None,
            Check::Done(safe) => Some(safe),
        };
        self.frames.pop_front();
        Some((i, verdict))
    }

    fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// A gate thread: checks frames (and the faces about to be swapped in
/// them) as they come, until the job stops or the queue closes; the
/// verdicts may come back out of order ([`InOrderChecks`] puts them back).
fn gate_worker(
    gate: &camshow_core::safety::SafetyGate,
    checks: &Mutex<Receiver<CheckTask>>,
    tx: &Sender<Done>,
    stop: &AtomicBool,
) {
    loop {
        let next = checks.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok((i, f, faces)) = next else { return };
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let t = Instant::now();
        let r = gate.check_frame(&f, &faces).map_err(Error::from);
        if tx
            .send(Done::Checked(i, r, t.elapsed().as_secs_f64()))
            .is_err()
        {
            return;
        }
    }
}

/// A frame to check and the boxes of the faces about to be swapped in it.
type CheckTask = (u64, Frame, Vec<[f32; 4]>);

/// A frame and the faces (with their source index) to swap in it.
type SwapTask = (u64, Frame, Vec<(Face, usize)>);

/// A frame worker: swap tasks first (they unblock the encoder), else analysis.
fn worker(
    engine: &SwapEngine,
    plan: &SourcePlan,
    frames: &Mutex<Receiver<(u64, Frame)>>,
    swaps: &Mutex<Receiver<SwapTask>>,
    tx: &Sender<Done>,
    stop: &AtomicBool,
) {
    let swap = |(i, mut f, targets): SwapTask| {
        let refs: Vec<(&Face, &PreparedSource)> = targets
            .iter()
            .filter_map(|(face, s)| Some((face, plan.source(*s)?)))
            .collect();
        let r = engine
            .swap_faces(&mut f, &refs)
            .map(|()| (f, !refs.is_empty()))
            .map_err(Error::from);
        tx.send(Done::Swapped(i, r)).is_ok()
    };
    let tick = Duration::from_millis(2);
    while !stop.load(Ordering::Relaxed) {
        let task = swaps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_recv();
        if let Ok(t) = task {
            if !swap(t) {
                return;
            }
            continue;
        }
        let next = frames
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv_timeout(tick);
        match next {
            Ok((i, f)) => {
                let r = engine
                    .analyse(&f)
                    .map(|faces| (f, faces))
                    .map_err(Error::from);
                if tx.send(Done::Analysed(i, r)).is_err() {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                // No more frames: finish the swaps until the collector closes their channel.
                let task = swaps
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .recv_timeout(tick);
                match task {
                    Ok(t) => {
                        if !swap(t) {
                            return;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        }
    }
}

/// Swaps `source` onto the faces of every frame of `input`, writing `output`.
/// `progress(done, total)` is called as frames are written; setting `cancel`
/// stops the job cleanly. On any failure nothing is left at `output`.
#[allow(clippy::too_many_arguments)]
pub fn run_video_job(
    engine: &SwapEngine,
    plan: &SourcePlan,
    input: &Path,
    output: &Path,
    opts: &JobOptions,
    progress: &(dyn Fn(u64, Option<u64>) + Sync),
    cancel: &AtomicBool,
) -> Result<JobReport> {
    let start = Instant::now();
    let container = container_for(output).ok_or_else(|| Error::UnsupportedVideoFormat {
        path: output.to_path_buf(),
    })?;
    let info = probe(input)?;
    if opts.segment.is_some() && (opts.trim != Trim::default() || opts.fps.is_some()) {
        return Err(Error::Invalid(
            "a segment keeps the input's own frames: it cannot be trimmed or given another frame rate"
                .into(),
        ));
    }
    let trim = opts.segment.as_ref().map_or(opts.trim, |p| p.trim);
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Error::Io {
            context: "output folder does not exist for",
            path: output.to_path_buf(),
            source: std::io::ErrorKind::NotFound.into(),
        });
    }
    // Kept frames go to a fresh temporary folder, renamed into place only
    // when the job succeeds: never mixed with an earlier run's frames.
    let frames_dir = match &opts.keep_frames {
        Some(k) => Some(fresh_frames_dir(k)?),
        None => None,
    };
    let tmp = camshow_core::atomic::temp_file_in(&dir, &format!(".part.{container}"))?;
    let fps = opts.fps.unwrap_or(if info.variable_fps {
        info.avg_fps
    } else {
        info.fps
    });
    // A variable-rate source keeps every frame and its own timestamps (unless
    // a rate is forced or the video is trimmed: then it is resampled).
    // (Whether the rate varies is decided from the packets' own timestamps:
    // containers such as Matroska do not record an average rate.)
    let exact_times = if opts.fps.is_none() && trim == Trim::default() {
        Some(crate::video::frame_times(input)?).filter(|t| crate::video::is_variable(t))
    } else {
        None
    };
    // The number of frames, where the input says it exactly.
    let exact_total = opts
        .segment
        .as_ref()
        .map(|p| p.tag.frames)
        .or_else(|| exact_times.as_ref().map(|t| t.len() as u64))
        .or_else(|| {
            info.frame_count
                .filter(|_| trim == Trim::default() && !info.variable_fps && opts.fps.is_none())
        });
    let total = exact_total.or_else(|| {
        let secs = trim.end.unwrap_or(info.duration).min(info.duration) - trim.start.unwrap_or(0.0);
        (secs > 0.0).then(|| (secs * fps.as_f64()).round() as u64)
    });
    let frames = if exact_times.is_some() {
        crate::video::Frames::Exact
    } else {
        match opts.fps {
            Some(r) => crate::video::Frames::Resampled(trim, r),
            None => crate::video::Frames::Nominal(trim),
        }
    };
    // NVDEC on the models' GPU where they run on one and it works here.
    let gpu = engine
        .models()
        .iter()
        .find_map(|m| m.nvidia_device())
        .filter(|_| crate::tools::cuda_decode_works());
    let gpu_decode = gpu.is_some();
    let mut decoder = Decoder::open_with(input, &info, crate::video::DecodeHow { frames, gpu })?;
    let enc_opts = EncodeOptions {
        encoder: crate::video::choose_encoder(&opts.encoder, container, (info.width, info.height))?,
        quality: opts.quality,
        keep_audio: opts.keep_audio && opts.segment.is_none(),
        fps,
        trim,
        timestamps: exact_times,
        metadata: opts
            .segment
            .iter()
            .map(|p| {
                serde_json::to_string(&p.tag)
                    .map(|t| (crate::segment::TAG_KEY.to_string(), t))
                    .map_err(|e| Error::Internal(e.to_string()))
            })
            .collect::<Result<_>>()?,
    };
    let mut encoder = Encoder::start(
        tmp.path(),
        container,
        input,
        &info,
        info.width,
        info.height,
        &enc_opts,
    )?;

    let workers = opts.workers.max(1);
    let stop = AtomicBool::new(false);
    let policy = SafetyPolicy::default();
    let interval = policy.video_check_interval(fps.as_f64());
    // Frames wait for the next check before they are swapped: the window
    // holds those and the ones in flight.
    let window = Window {
        written: Mutex::new(0),
        moved: Condvar::new(),
        size: ((workers as u64) * 3).max(interval + workers as u64 * 2 + 2),
    };
    let gate = engine.safety_gate();
    let mut clearance = VideoClearance::new();
    let mut unsafe_found = std::collections::BTreeSet::new();
    let mut cuts = SceneCuts::new();
    let mut held: Held = BTreeMap::new();
    let (frame_tx, frame_rx) = sync_channel::<(u64, Frame)>(workers * 2);
    let frame_rx = Mutex::new(frame_rx);
    // Unbounded in type, bounded in practice: the window keeps at most
    // `window.size` frames between the decoder and the encoder.
    #[allow(clippy::disallowed_methods)] // bounded by the window, see above
    let (swap_tx, swap_rx) = channel::<SwapTask>();
    let swap_rx = Mutex::new(swap_rx);
    // Each frame in the window sends at most two results (analysed, swapped).
    #[allow(clippy::disallowed_methods)]
    let (done_tx, done_rx) = channel::<Done>();
    let decode_error: Mutex<Option<Error>> = Mutex::new(None);
    let decoded = AtomicU64::new(0);
    // When the first frame came out of the decoder (seconds, as f64 bits).
    let first_frame = AtomicU64::new(0);
    let decoder_done = AtomicBool::new(false);
    let mut session = FrameSession::tracked(plan.clone(), &engine.settings().engine, fps.as_f64());

    // The checks for the gate's threads.
    #[allow(clippy::disallowed_methods)] // bounded by the window
    let (check_tx, check_rx) = channel::<CheckTask>();
    let check_rx = Mutex::new(check_rx);
    let outcome = std::thread::scope(|s| -> Result<(u64, u64, f64)> {
        // Decoder: in order, at most `window` frames ahead of the encoder.
        let (stop_ref, window_ref, decode_error_ref, decoded_ref, decoder_done_ref) =
            (&stop, &window, &decode_error, &decoded, &decoder_done);
        let first_frame_ref = &first_frame;
        let decoder_ref = &mut decoder;
        s.spawn(move || {
            let mut i = 0u64;
            'frames: loop {
                if stop_ref.load(Ordering::Relaxed)
                    || cancel.load(Ordering::Relaxed)
                    || !window_ref.wait_for(i, stop_ref)
                {
                    break;
                }
                match decoder_ref.next_frame() {
                    Ok(Some(f)) => {
                        if i == 0 {
                            first_frame_ref
                                .store(start.elapsed().as_secs_f64().to_bits(), Ordering::Relaxed);
                        }
                        let mut item = (i, f);
                        loop {
                            match frame_tx.try_send(item) {
                                Ok(()) => break,
                                Err(TrySendError::Full(back))
                                    if !stop_ref.load(Ordering::Relaxed) =>
                                {
                                    item = back;
                                    std::thread::sleep(Duration::from_millis(2));
                                }
                                Err(_) => break 'frames,
                            }
                        }
                        i += 1;
                        decoded_ref.store(i, Ordering::Release);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        *decode_error_ref
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) = Some(e);
                        break;
                    }
                }
            }
            decoder_done_ref.store(true, Ordering::Release);
        });
        // Workers: analyse frames, and swap the faces the tracker chose.
        for _ in 0..workers {
            let (frames, swaps, tx, stop_ref) = (&frame_rx, &swap_rx, done_tx.clone(), &stop);
            s.spawn(move || worker(engine, plan, frames, swaps, &tx, stop_ref));
        }
        // The gate: threads of its own (one per session of its model), so
        // the checks run beside tracking, swapping and encoding (its queue
        // holds at most the window's frames).
        for _ in 0..camshow_core::safety::GATE_SESSIONS {
            let (rx, tx, stop_ref) = (&check_rx, done_tx.clone(), &stop);
            s.spawn(move || gate_worker(gate, rx, &tx, stop_ref));
        }
        drop(done_tx);
        let mut in_order = InOrderChecks::default();
        let mut gate_seconds = 0.0;
        // In order: track, select, hand back for swapping; then re-order and encode.
        let mut analysed: BTreeMap<u64, (Frame, Vec<Face>)> = BTreeMap::new();
        let mut swapped: BTreeMap<u64, (Frame, bool)> = BTreeMap::new();
        let (mut next_track, mut next_write, mut frames_swapped) = (0u64, 0u64, 0u64);
        let result = (|| -> Result<()> {
            loop {
                if cancel.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled);
                }
                let all_decoded = decoder_done.load(Ordering::Acquire);
                if all_decoded && next_write == decoded.load(Ordering::Acquire) {
                    return Ok(());
                }
                // The last frames after the last check: check the last one.
                if all_decoded
                    && next_track == decoded.load(Ordering::Acquire)
                    && in_order.is_empty()
                    && clearance.has_waiting()
                {
                    let verdict = match held.iter().next_back() {
                        Some((_, (f, t))) => {
                            let started = Instant::now();
                            let v = gate.check_frame(f, &boxes(t))?;
                            gate_seconds += started.elapsed().as_secs_f64();
                            unsafe_found.extend(camshow_core::safety::unsafe_labels(&v));
                            v.safe
                        }
                        None => true,
                    };
                    for (i, swap) in clearance.finish(verdict) {
                        release(&mut held, &swap_tx, i, swap)?;
                    }
                }
                match done_rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(Done::Analysed(i, r)) => {
                        analysed.insert(i, r?);
                        while let Some((f, faces)) = analysed.remove(&next_track) {
                            let targets = session.targets(faces)?;
                            // No face is swapped before a check at or after its frame passed;
                            // the first frame of every scene is checked too.
                            let cut = cuts.is_cut(&f);
                            let due = next_track.is_multiple_of(interval) || cut;
                            if due {
                                check_tx
                                    .send((next_track, f.clone(), boxes(&targets)))
                                    .map_err(|_| Error::Internal("the gate stopped".into()))?;
                            }
                            held.insert(next_track, (f, targets));
                            in_order.push(next_track, due);
                            next_track += 1;
                        }
                    }
                    Ok(Done::Checked(i, r, secs)) => {
                        gate_seconds += secs;
                        let v = r?;
                        unsafe_found.extend(camshow_core::safety::unsafe_labels(&v));
                        in_order.verdict(i, v.safe)?;
                    }
                    Ok(Done::Swapped(i, r)) => {
                        swapped.insert(i, r?);
                        while let Some((f, any)) = swapped.remove(&next_write) {
                            encoder.write(&f)?;
                            if let Some(k) = frames_dir.as_ref().map(tempfile::TempDir::path) {
                                crate::image_io::write_image(
                                    &k.join(format!("frame_{next_write:06}.png")),
                                    &f,
                                    (
                                        if any {
                                            Operation::FaceSwap
                                        } else {
                                            Operation::NoFaceSwapped
                                        },
                                        "a video frame",
                                    ),
                                )?;
                            }
                            frames_swapped += u64::from(any);
                            next_write += 1;
                            window.advance(next_write);
                            progress(next_write, total);
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(Error::Internal("frame workers stopped".into()));
                    }
                }
                // Frames whose checks are in, in order, to the clearance: no
                // face is swapped before a check at or after its frame passed.
                while let Some((i, verdict)) = in_order.next_ready() {
                    for (j, swap) in clearance.frame(i, verdict) {
                        release(&mut held, &swap_tx, j, swap)?;
                    }
                    // Stop as soon as the video is refused whatever the rest
                    // holds: at most one check per frame after this one, and
                    // one on the last frame.
                    if verdict == Some(false)
                        && let Some(total) = exact_total
                    {
                        let (checks, bad) = clearance.checks();
                        let left = total.saturating_sub(i + 1) + 1;
                        if policy.video_refused_whatever_follows(checks, bad, left) {
                            return Err(refusal(input, (checks, bad), &unsafe_found, true));
                        }
                    }
                }
            }
        })();
        drop(check_tx);
        stop.store(result.is_err(), Ordering::Relaxed);
        window.moved.notify_all();
        drop(swap_tx);
        result.map(|()| (next_write, frames_swapped, gate_seconds))
    });
    if cancel.load(Ordering::Relaxed) {
        return Err(Error::Cancelled);
    }
    if let Some(e) = decode_error
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(e);
    }
    let (frames, frames_swapped, gate_seconds) = outcome?;
    let (checks, unsafe_checks) = clearance.checks();
    if policy.video_refused(checks, unsafe_checks) {
        return Err(refusal(
            input,
            (checks, unsafe_checks),
            &unsafe_found,
            false,
        ));
    }
    if frames == 0 {
        return Err(Error::Invalid(format!(
            "{} has no frames to process",
            input.display()
        )));
    }
    if let Some(p) = &opts.segment
        && p.tag.frames != frames
    {
        return Err(Error::Internal(format!(
            "segment {} decoded {frames} frames where the input has {} in its range",
            p.tag.segment, p.tag.frames
        )));
    }
    encoder.finish(cancel)?;
    let op = if frames_swapped > 0 {
        Operation::FaceSwap
    } else {
        Operation::NoFaceSwapped
    };
    crate::video::finish_output(
        tmp,
        container,
        op,
        &format!("video, faces swapped in {frames_swapped} of {frames} frames"),
        output,
    )?;
    if let (Some(k), Some(d)) = (&opts.keep_frames, frames_dir) {
        if k.is_dir() {
            // Checked empty when the job started.
            std::fs::remove_dir(k).map_err(Error::io("cannot replace the empty folder", k))?;
        }
        let d = d.keep();
        std::fs::rename(&d, k).map_err(Error::io("cannot move the frames into place at", k))?;
    }
    Ok(JobReport {
        info,
        frames,
        frames_swapped,
        safety_checks: clearance.checks(),
        unswapped_ranges: clearance.unswapped().to_vec(),
        scene_cuts: cuts.cuts(),
        seconds: start.elapsed().as_secs_f64(),
        first_frame_seconds: f64::from_bits(first_frame.load(Ordering::Relaxed)),
        gate_seconds,
        gpu_decode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_reach_the_clearance_in_frame_order_whatever_order_they_end_in() {
        let mut c = InOrderChecks::default();
        c.push(0, true);
        c.push(1, false);
        c.push(2, true);
        c.push(3, false);
        // Nothing before frame 0's verdict.
        assert_eq!(c.next_ready(), None);
        // Frame 2's check ends first: still nothing, frame 0 waits.
        c.verdict(2, false).unwrap();
        assert_eq!(c.next_ready(), None);
        c.verdict(0, true).unwrap();
        let got: Vec<_> = std::iter::from_fn(|| c.next_ready()).collect();
        assert_eq!(
            got,
            [(0, Some(true)), (1, None), (2, Some(false)), (3, None)]
        );
        assert!(c.is_empty());
        // A verdict nobody waited for is an error, not a lost frame.
        c.push(4, false);
        assert!(c.verdict(4, true).is_err());
        assert!(c.verdict(9, true).is_err());
    }
}
