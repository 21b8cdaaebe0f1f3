//! Live mode: a camera (or a file played as one) in, swapped frames out to a
//! preview window, a virtual camera and/or an MJPEG stream, with low and
//! steady latency.
//!
//! Three threads: capture puts each new frame into a one-frame slot (an
//! unprocessed frame is replaced, never queued: newest-frame policy, so the
//! latency cannot grow); processing takes the newest frame, detects on every
//! frame, tracks and smooths, hands the frame and the faces about to be
//! swapped to the safety gate, runs the processor chain when the gate allows
//! it and hands the result to every output; the gate checks the newest
//! frame and the context crops of those faces back to back on its own thread
//! ([`LiveClearance`]: a frame is swapped only when a check passed on a
//! frame captured at most 0.5 s before it — a frame waits up to 0.5 s for
//! that verdict, then goes out unswapped; an unsafe check stops swapping for
//! the cool-down). Glass-to-glass latency (capture timestamp to hand-off) is
//! measured per frame.

pub mod overlay;
pub mod remote;
pub mod sinks;
pub mod source;
pub mod yuv;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use camshow_core::Frame;
use camshow_core::detect::{DetectorKind, Face, FaceDetector, load_detector};
use camshow_core::pipeline::SwapEngine;
use camshow_core::safety::{LiveClearance, SafetyPolicy};
use camshow_core::session::{FrameSession, SourcePlan};
use camshow_core::settings::Settings;
use camshow_core::swap::PreparedSource;
use serde::Serialize;

use self::sinks::{FrameMeta, Sink, StageTimes};
use self::source::FrameSource;
use crate::error::{Error, Result};
use crate::latest::Latest;

/// How a live session runs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiveOptions {
    /// Flip frames left–right before processing (a mirror view); the
    /// starting value of [`LiveControl::set_mirror`].
    pub mirror: bool,
    /// Draw fps and latency on the output.
    pub overlay: bool,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many output frames.
    pub max_frames: Option<u64>,
    /// How often the gate checks live frames, how fresh a passing check must
    /// be, and how long a trip holds swapping.
    pub safety: SafetyPolicy,
}

/// Shared with the running session: stop it, change the source face(s), or
/// change the settings. Changes apply from the next frame.
pub struct LiveControl {
    stop: AtomicBool,
    /// The engine and the source plan prepared with it, changed together
    /// (a plan prepared by another swapper must never meet this engine).
    current: Mutex<Current>,
    source_changes: AtomicU64,
    settings_changes: AtomicU64,
    mirror: AtomicBool,
}

struct Current {
    generation: u64,
    engine: Arc<SwapEngine>,
    plan: SourcePlan,
}

impl std::fmt::Debug for LiveControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveControl")
            .field("stopped", &self.stopped())
            .field("source_changes", &self.source_changes())
            .field("settings_changes", &self.settings_changes())
            .finish_non_exhaustive()
    }
}

/// A face map needs identity embeddings on every frame.
fn check_plan(engine: &SwapEngine, plan: &SourcePlan) -> Result<()> {
    if matches!(plan, SourcePlan::Mapped { .. }) && !engine.frame_needs().embedding {
        return Err(Error::Invalid(
            "a face map needs an engine that computes identity embeddings (SwapEngine::load_with with Needs { embedding: true, .. })"
                .into(),
        ));
    }
    Ok(())
}

impl LiveControl {
    /// Control for a session that starts with `engine` and `plan`.
    pub fn new(engine: Arc<SwapEngine>, plan: SourcePlan) -> Result<Arc<Self>> {
        check_plan(&engine, &plan)?;
        Ok(Arc::new(Self {
            stop: AtomicBool::new(false),
            current: Mutex::new(Current {
                generation: 0,
                engine,
                plan,
            }),
            source_changes: AtomicU64::new(0),
            settings_changes: AtomicU64::new(0),
            mirror: AtomicBool::new(false),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks the session to stop (it finishes the frame in hand).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Mirrors frames (or stops mirroring them) from the next frame on
    /// ([`run_live`] starts with [`LiveOptions::mirror`]).
    pub fn set_mirror(&self, on: bool) {
        self.mirror.store(on, Ordering::Relaxed);
    }

    /// Whether frames are mirrored.
    pub fn mirrored(&self) -> bool {
        self.mirror.load(Ordering::Relaxed)
    }

    /// Whether a stop was asked for.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Replaces the source face (keeping a reference identity if there was
    /// one); the next frame uses it.
    pub fn set_source(&self, source: PreparedSource) {
        let mut g = self.lock();
        let reference = match &g.plan {
            SourcePlan::One { reference, .. } => reference.clone(),
            SourcePlan::Mapped { .. } => None,
        };
        g.plan = SourcePlan::One {
            source: Arc::new(source),
            reference,
        };
        g.generation += 1;
        self.source_changes.fetch_add(1, Ordering::Relaxed);
    }

    /// Replaces the whole source plan (e.g. a face map); the next frame uses it.
    pub fn set_plan(&self, plan: SourcePlan) -> Result<()> {
        let mut g = self.lock();
        check_plan(&g.engine, &plan)?;
        g.plan = plan;
        g.generation += 1;
        self.source_changes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Applies new settings from the next frame: the engine is rebuilt with
    /// [`SwapEngine::reconfigure`] (models already loaded are reused, a model
    /// the new settings add is loaded here), so an invalid setting is an
    /// error for the caller and the session goes on unchanged. A different
    /// swapper needs the source prepared again: use
    /// [`LiveControl::set_engine`] with the new plan for that. The `live.*`
    /// settings (camera, outputs, mirror) apply to the next session.
    pub fn set_settings(&self, settings: &Settings) -> Result<()> {
        let current = self.engine();
        let next = current.reconfigure(settings)?;
        if next.swapper_name() != current.swapper_name() {
            return Err(Error::Invalid(format!(
                "the swapper changes from {} to {}: prepare the source with the new engine and call set_engine",
                current.swapper_name(),
                next.swapper_name()
            )));
        }
        let mut g = self.lock();
        check_plan(&next, &g.plan)?;
        g.engine = Arc::new(next);
        drop(g);
        self.settings_changes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Replaces the engine and, when given, the source plan prepared with it
    /// — both at once, so no frame sees one without the other.
    pub fn set_engine(&self, engine: Arc<SwapEngine>, plan: Option<SourcePlan>) -> Result<()> {
        let mut g = self.lock();
        check_plan(&engine, plan.as_ref().unwrap_or(&g.plan))?;
        g.engine = engine;
        if let Some(p) = plan {
            g.plan = p;
            g.generation += 1;
            self.source_changes.fetch_add(1, Ordering::Relaxed);
        }
        drop(g);
        self.settings_changes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The engine in use.
    pub fn engine(&self) -> Arc<SwapEngine> {
        Arc::clone(&self.lock().engine)
    }

    /// How many times the source was replaced.
    pub fn source_changes(&self) -> u64 {
        self.source_changes.load(Ordering::Relaxed)
    }

    /// How many times the settings (engine) were replaced.
    pub fn settings_changes(&self) -> u64 {
        self.settings_changes.load(Ordering::Relaxed)
    }

    /// The engine, the plan and the plan's generation, read together.
    /// The engine, and the plan when its generation differs from `seen`
    /// (read together; the plan is cloned only when it changed).
    fn snapshot(&self, seen: Option<u64>) -> (Arc<SwapEngine>, u64, Option<SourcePlan>) {
        let g = self.lock();
        let plan = (seen != Some(g.generation)).then(|| g.plan.clone());
        (Arc::clone(&g.engine), g.generation, plan)
    }
}

/// What a session did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveStats {
    /// The source.
    pub source: String,
    /// Wall time.
    pub seconds: f64,
    /// Frames captured.
    pub captured: u64,
    /// Frames processed and output.
    pub processed: u64,
    /// Frames replaced by a newer one before processing.
    pub dropped: u64,
    /// Frames in which at least one face was swapped.
    pub frames_swapped: u64,
    /// Output frames per second.
    pub output_fps: f64,
    /// Capture rate measured from frame arrival times.
    pub capture_fps: f64,
    /// Glass-to-glass latency, median (ms).
    pub latency_p50_ms: f64,
    /// Glass-to-glass latency, 95th percentile (ms).
    pub latency_p95_ms: f64,
    /// Worst latency (ms).
    pub latency_max_ms: f64,
    /// Safety checks run.
    pub safety_checks: u64,
    /// Times the gate fired.
    pub safety_trips: u64,
    /// Frames output unswapped because of the gate.
    pub safety_held_frames: u64,
    /// Times the source was re-opened after failing.
    pub reconnects: u64,
    /// Frames searched whole by the face detector (every frame when
    /// `live.detect_every` is 1; in between, tracked faces are searched for
    /// near where they were).
    pub full_detections: u64,
}

/// What the capture thread tells the processing thread besides frames.
#[derive(Default)]
struct SlotState {
    reconnecting: Option<String>,
    captured: u64,
    reconnects: u64,
    arrivals: VecDeque<Instant>,
}

/// The newest captured frame (an unprocessed one is replaced, never queued)
/// and the capture's state.
struct Slot {
    frames: Latest<(Frame, Instant, u64)>,
    state: Mutex<SlotState>,
}

impl Slot {
    fn state(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn rate(times: &VecDeque<Instant>) -> f64 {
    match (times.front(), times.back()) {
        (Some(a), Some(b)) if times.len() > 1 && b > a => {
            (times.len() - 1) as f64 / b.duration_since(*a).as_secs_f64()
        }
        _ => 0.0,
    }
}

/// What the processing thread and the gate thread share: the newest frame
/// to check (with the boxes of the faces about to be swapped in it) and the
/// verdicts so far.
struct LiveGate {
    pending: Latest<(Frame, Vec<[f32; 4]>, Instant)>,
    clearance: Mutex<LiveClearance>,
    /// Signalled on every verdict.
    verdicts: Condvar,
    error: Mutex<Option<Error>>,
}

/// How long a frame may wait for the gate's verdict on it (or on a newer
/// frame) before it goes out unswapped.
const GATE_WAIT: Duration = Duration::from_millis(500);

impl LiveGate {
    fn clearance(&self) -> std::sync::MutexGuard<'_, LiveClearance> {
        self.clearance
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the frame captured at `captured` (already handed to the gate)
    /// may be swapped, and whether the gate has tripped. When no check is
    /// recent enough yet (the first frame, or a gate slowed down by a loaded
    /// machine), waits up to [`GATE_WAIT`] for the verdict on it.
    fn clear(&self, captured: Instant) -> (bool, bool) {
        let deadline = Instant::now() + GATE_WAIT;
        let mut c = self.clearance();
        loop {
            if c.may_swap(captured) || c.tripped() {
                return (c.may_swap(captured), c.tripped());
            }
            let now = Instant::now();
            if now >= deadline || self.pending.is_closed() {
                return (false, false);
            }
            c = self
                .verdicts
                .wait_timeout(c, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The live gate: checks the newest frame and the context crops of the
/// faces about to be swapped in it, back to back (starting a check at most
/// once per `interval`), until the session ends. A failing check is an
/// error of the session.
fn gate_loop(control: &LiveControl, gate: &LiveGate, done: &AtomicBool, interval: Duration) {
    while !done.load(Ordering::Relaxed) {
        let Some((frame, faces, captured)) = gate.pending.wait(Duration::from_millis(100)) else {
            if gate.pending.is_closed() {
                return;
            }
            continue;
        };
        let started = Instant::now();
        match control.engine().safety_gate().check_frame(&frame, &faces) {
            Ok(v) => {
                let tripped = gate.clearance().record(captured, Instant::now(), v.safe);
                gate.verdicts.notify_all();
                if tripped {
                    tracing::warn!(
                        score = v.max_unsafe_score,
                        "content-safety gate fired: swapping paused"
                    );
                }
            }
            Err(e) => {
                *gate.error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.into());
                gate.pending.close();
                gate.verdicts.notify_all();
                return;
            }
        }
        if let Some(rest) = interval.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

/// The live loop's full-frame detector, on a thread of its own with its
/// own session of the detector model, so the main loop's searches near the
/// tracked faces never wait for it: a frame asked to be searched whole, and
/// the faces found on the last one.
struct LiveDetect {
    requests: Latest<Frame>,
    /// A frame is being searched (no new request until its faces are in).
    busy: AtomicBool,
    /// Frames searched whole so far.
    runs: AtomicU64,
    found: Mutex<Option<Vec<Face>>>,
    error: Mutex<Option<Error>>,
}

/// Should the detector thread end by a panic, the session hears of it (an
/// error, as from a failed detection) instead of waiting on it for ever.
struct PanicReport<'a>(&'a LiveDetect);

impl Drop for PanicReport<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            *self.0.error.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(Error::Live("the face detector thread stopped".into()));
            self.0.requests.close();
        }
    }
}

fn detect_loop(control: &LiveControl, d: &LiveDetect, done: &AtomicBool) {
    let _report = PanicReport(d);
    let mut loaded: Option<(DetectorKind, Box<dyn FaceDetector>)> = None;
    while !done.load(Ordering::Relaxed) {
        let Some(frame) = d.requests.wait(Duration::from_millis(100)) else {
            if d.requests.is_closed() {
                return;
            }
            continue;
        };
        let engine = control.engine();
        let kind = engine.settings().engine.detector;
        let found = (|| -> camshow_core::Result<Vec<Face>> {
            if loaded.as_ref().is_none_or(|(k, _)| *k != kind) {
                let ctx = engine.context();
                loaded = Some((kind, load_detector(kind, ctx.runtime(), ctx.store())?));
            }
            match &loaded {
                Some((_, det)) => det.detect(&frame),
                None => Ok(Vec::new()),
            }
        })();
        match found {
            Ok(faces) => {
                *d.found.lock().unwrap_or_else(PoisonError::into_inner) = Some(faces);
                d.busy.store(false, Ordering::Release);
            }
            Err(e) => {
                *d.error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.into());
                d.requests.close();
                return;
            }
        }
    }
}

/// This frame's faces for a live session: every frame through the full
/// detector when `live.detect_every` is 1; else the tracked faces found
/// again near where they were, with the full detector run on the detector
/// thread when it is due and its faces looked for in the next frame (and
/// here, on this frame, when no face is being followed).
fn live_faces(
    engine: &SwapEngine,
    session: &mut FrameSession,
    detect: &LiveDetect,
    frame: &Frame,
) -> Result<Vec<Face>> {
    if let Some(e) = detect
        .error
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    {
        return Err(e);
    }
    session.set_detect_every(engine.settings().live.detect_every);
    if engine.settings().live.detect_every <= 1 {
        detect.runs.fetch_add(1, Ordering::Relaxed);
        return Ok(session.find_faces(engine, frame)?);
    }
    if let Some(found) = detect
        .found
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    {
        session.detected(&found);
    }
    if !session.following() {
        // No face to follow: this frame is searched whole at once, so a face
        // that comes into view is swapped from its first frame on.
        detect.runs.fetch_add(1, Ordering::Relaxed);
        session.detect_whole(engine, frame)?;
    } else if session.full_detection_due() && !detect.busy.swap(true, Ordering::AcqRel) {
        detect.requests.put(frame.clone());
        detect.runs.fetch_add(1, Ordering::Relaxed);
        session.full_detection_started();
    }
    Ok(session.find_near(engine, frame)?)
}

/// Starts one of a live session's threads, named, in `s`.
fn spawn_in<'scope, T, F>(
    s: &'scope std::thread::Scope<'scope, '_>,
    name: &str,
    f: F,
) -> Result<std::thread::ScopedJoinHandle<'scope, T>>
where
    F: FnOnce() -> T + Send + 'scope,
    T: Send + 'scope,
{
    std::thread::Builder::new()
        .name(name.into())
        .spawn_scoped(s, f)
        .map_err(|e| Error::Live(format!("starting the {name} thread: {e}")))
}

fn capture_loop(mut source: Box<dyn FrameSource>, slot: &Slot, done: &AtomicBool) {
    let mut seq = 0u64;
    while !done.load(Ordering::Relaxed) {
        match source.next() {
            Ok(Some(frame)) => {
                let at = Instant::now();
                seq += 1;
                {
                    let mut s = slot.state();
                    s.captured += 1;
                    s.arrivals.push_back(at);
                    if s.arrivals.len() > 60 {
                        s.arrivals.pop_front();
                    }
                }
                slot.frames.put((frame, at, seq));
            }
            Ok(None) => {
                slot.frames.close();
                return;
            }
            Err(e) => {
                let msg = format!("{} failed ({e}); reconnecting", source.describe());
                tracing::warn!("{msg}");
                slot.state().reconnecting = Some(msg);
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_secs(1));
                    match source.reopen() {
                        Ok(()) => {
                            let mut s = slot.state();
                            s.reconnecting = None;
                            s.reconnects += 1;
                            break;
                        }
                        Err(e) => tracing::debug!("reopen: {e}"),
                    }
                }
            }
        }
    }
}

fn modified(p: &std::path::Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Hot reload for a running session, until `control` is stopped (run it on
/// its own thread): when the `source` photo changes, it is prepared with the
/// current engine and used from the next frame; when `settings_file`
/// changes, `settings()` (the front end's layers: file, environment, its own
/// overrides) is applied with [`LiveControl::set_settings`]. `report` hears
/// each reload and each change that was refused (the session then goes on
/// as it was).
pub fn watch_changes(
    control: &LiveControl,
    source: Option<&std::path::Path>,
    settings_file: Option<&std::path::Path>,
    settings: &dyn Fn() -> std::result::Result<Settings, String>,
    report: &dyn Fn(&str),
) {
    let mut last_source = source.and_then(modified);
    let mut last_settings = settings_file.and_then(modified);
    while !control.stopped() {
        std::thread::sleep(Duration::from_millis(300));
        if let Some(path) = source {
            let now = modified(path);
            if now.is_some() && now != last_source {
                last_source = now;
                match crate::swap_job::prepare_source(&control.engine(), &[path.to_path_buf()]) {
                    Ok(p) => {
                        control.set_source(p);
                        report(&format!("source face reloaded from {}", path.display()));
                    }
                    Err(e) => report(&format!("kept the previous source face: {e}")),
                }
            }
        }
        if let Some(file) = settings_file {
            let now = modified(file);
            if now != last_settings {
                last_settings = now;
                match settings().and_then(|s| control.set_settings(&s).map_err(|e| e.to_string())) {
                    Ok(()) => report(&format!("settings reloaded from {}", file.display())),
                    Err(e) => report(&format!("kept the previous settings: {e}")),
                }
            }
        }
    }
}

/// Mirrors a frame left–right in place.
pub fn mirror(frame: &mut Frame) {
    let w = frame.width() as usize;
    for row in frame.data_mut().chunks_exact_mut(w * 3) {
        for x in 0..w / 2 {
            for c in 0..3 {
                row.swap(x * 3 + c, (w - 1 - x) * 3 + c);
            }
        }
    }
}

/// Runs a live session until the source ends, the duration or frame count
/// is reached, a sink is closed, or `control` is stopped; `control` is
/// stopped when it returns.
pub fn run_live(
    source: Box<dyn FrameSource>,
    sinks: &mut [Box<dyn Sink>],
    control: &LiveControl,
    opts: &LiveOptions,
) -> Result<LiveStats> {
    let describe = source.describe();
    let fps = source.nominal_fps();
    let slot = Slot {
        frames: Latest::new(),
        state: Mutex::new(SlotState::default()),
    };
    let done = AtomicBool::new(false);
    let start = Instant::now();
    control.set_mirror(opts.mirror);
    let (engine, mut plan_generation, plan) = control.snapshot(None);
    let plan = plan.ok_or_else(|| Error::Live("no source plan".into()))?;
    let mut session = FrameSession::tracked(plan, &engine.settings().engine, fps)
        .with_detect_every(engine.settings().live.detect_every);
    drop(engine);
    let detect = LiveDetect {
        requests: Latest::new(),
        busy: AtomicBool::new(false),
        runs: AtomicU64::new(0),
        found: Mutex::new(None),
        error: Mutex::new(None),
    };
    let gate = LiveGate {
        pending: Latest::new(),
        clearance: Mutex::new(opts.safety.live_clearance()),
        verdicts: Condvar::new(),
        error: Mutex::new(None),
    };
    let mut latencies: VecDeque<f64> = VecDeque::new();
    let mut outputs: VecDeque<Instant> = VecDeque::new();
    let (mut processed, mut frames_swapped, mut held) = (0u64, 0u64, 0u64);
    let mut last_out: Option<Frame> = None;
    let result: Result<()> = std::thread::scope(|s| {
        let started = spawn_in(s, "live-capture", || capture_loop(source, &slot, &done))
            .and_then(|_| {
                spawn_in(s, "live-safety", || {
                    gate_loop(control, &gate, &done, opts.safety.live_interval);
                })
            })
            .and_then(|_| spawn_in(s, "live-detect", || detect_loop(control, &detect, &done)));
        let r = started.and_then(|_| -> Result<()> {
            loop {
                if control.stopped()
                    || opts.duration.is_some_and(|d| start.elapsed() >= d)
                    || opts.max_frames.is_some_and(|m| processed >= m)
                    || sinks.iter().any(|k| k.closed())
                {
                    return Ok(());
                }
                let (frame, captured_at, seq, notice) =
                    match slot.frames.wait(Duration::from_millis(200)) {
                        Some((f, at, seq)) => (f, at, seq, None),
                        // Closed and empty: the source ended.
                        None if slot.frames.is_closed() => return Ok(()),
                        None => match (&slot.state().reconnecting, &last_out) {
                            (Some(msg), Some(last)) => {
                                (last.clone(), Instant::now(), 0, Some(msg.clone()))
                            }
                            _ => continue,
                        },
                    };
                if let Some(msg) = notice {
                    // The source is gone: keep the outputs alive with the last picture and say so.
                    let mut f = frame;
                    overlay::draw_text(
                        &mut f,
                        8,
                        8,
                        "camera disconnected - reconnecting",
                        2,
                        [255, 80, 80],
                    );
                    tracing::debug!("{msg}");
                    let meta = FrameMeta {
                        seq,
                        captured_at,
                        faces_swapped: 0,
                        safety_hold: false,
                        stages: StageTimes::default(),
                    };
                    for k in sinks.iter_mut() {
                        k.send(&f, &meta)?;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
                let mut frame = frame;
                if control.mirrored() {
                    mirror(&mut frame);
                }
                // Changes asked for since the last frame apply from this one.
                let (engine, generation, plan) = control.snapshot(Some(plan_generation));
                session.set_selection(&engine.settings().engine);
                if let Some(plan) = plan {
                    plan_generation = generation;
                    session.set_plan(plan);
                }
                let started = Instant::now();
                let faces = live_faces(&engine, &mut session, &detect, &frame)?;
                let targets = session.targets(faces)?;
                let detected = Instant::now();
                // The gate thread checks the newest frame with the faces about to be swapped.
                gate.pending.put((
                    frame.clone(),
                    targets.iter().map(|(f, _)| f.bbox).collect(),
                    captured_at,
                ));
                if let Some(e) = gate
                    .error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                {
                    return Err(e);
                }
                let (may_swap, tripped) = gate.clear(captured_at);
                let cleared = Instant::now();
                let hold = !may_swap;
                let mut swapped = 0;
                if hold {
                    held += 1;
                    if tripped {
                        overlay::draw_text(
                            &mut frame,
                            8,
                            8,
                            "content safety: swapping paused",
                            2,
                            [255, 200, 0],
                        );
                    }
                } else {
                    swapped = session.swap(&engine, &mut frame, &targets)?;
                }
                if swapped > 0 {
                    frames_swapped += 1;
                }
                if opts.overlay {
                    let mut sorted: Vec<f64> = latencies.iter().rev().take(100).copied().collect();
                    sorted.sort_by(f64::total_cmp);
                    let text = format!(
                        "{:.1} fps  latency p50 {:.0} ms  p95 {:.0} ms",
                        rate(&outputs),
                        percentile(&sorted, 0.5),
                        percentile(&sorted, 0.95)
                    );
                    let y = i64::from(frame.height()) - 24;
                    overlay::draw_text(&mut frame, 8, y, &text, 2, [255, 255, 255]);
                }
                let meta = FrameMeta {
                    seq,
                    captured_at,
                    faces_swapped: swapped,
                    safety_hold: hold,
                    stages: StageTimes {
                        detect: detected - started,
                        gate_wait: cleared - detected,
                        swap: cleared.elapsed(),
                    },
                };
                for k in sinks.iter_mut() {
                    k.send(&frame, &meta)?;
                }
                let out_at = Instant::now();
                latencies.push_back(out_at.duration_since(captured_at).as_secs_f64() * 1000.0);
                if latencies.len() > 10_000 {
                    latencies.pop_front();
                }
                outputs.push_back(out_at);
                if outputs.len() > 30 {
                    outputs.pop_front();
                }
                processed += 1;
                last_out = Some(frame);
            }
        });
        // The session is over (or one of its threads could not start): a
        // source waiting for a peer's frame ends too, and the scope waits
        // for every thread that started.
        done.store(true, Ordering::Relaxed);
        control.stop();
        gate.pending.close();
        detect.requests.close();
        r
    });
    result?;
    let st = slot.state();
    let (checks, trips) = gate.clearance().counts();
    let mut sorted: Vec<f64> = latencies.into_iter().collect();
    sorted.sort_by(f64::total_cmp);
    let seconds = start.elapsed().as_secs_f64();
    Ok(LiveStats {
        source: describe,
        seconds,
        captured: st.captured,
        processed,
        // A frame still in the slot at the end was neither processed nor replaced.
        dropped: slot.frames.dropped(),
        frames_swapped,
        output_fps: if seconds > 0.0 {
            processed as f64 / seconds
        } else {
            0.0
        },
        capture_fps: rate(&st.arrivals),
        latency_p50_ms: percentile(&sorted, 0.5),
        latency_p95_ms: percentile(&sorted, 0.95),
        latency_max_ms: sorted.last().copied().unwrap_or(0.0),
        safety_checks: checks,
        safety_trips: trips,
        safety_held_frames: held,
        reconnects: st.reconnects,
        full_detections: detect.runs.load(Ordering::Relaxed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_flips_rows() {
        let mut f = Frame::from_rgb(3, 1, vec![1, 1, 1, 2, 2, 2, 3, 3, 3]).unwrap();
        mirror(&mut f);
        assert_eq!(f.data(), &[3, 3, 3, 2, 2, 2, 1, 1, 1]);
    }

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.95), 95.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
