//! The engine's side of the window: one thread that owns the engine and
//! takes [`Command`]s, with the long work (swap jobs, live, scans,
//! downloads, playing) on threads of its own, so the window never waits.
//! Everything here is a call into `camshow-core` / `camshow-media`; the
//! answers go back as [`Action`]s.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use camshow_core::Frame;
use camshow_core::context::{EngineContext, store_for, with_model_files};
use camshow_core::mapping::{DEFAULT_CLUSTER_DISTANCE, FaceMap};
use camshow_core::pipeline::{SourcePick, SwapEngine};
use camshow_core::session::{CheckedStream, FrameSession, SourcePlan};
use camshow_core::settings::{Settings, patch_file};
use camshow_media::doctor::{Report, RuntimeReport};
use camshow_media::image_io::read_image;
use camshow_media::live::sinks::{FrameMeta, LiveJpeg, MjpegServer, Sink, VirtualCamera};
use camshow_media::live::source::{CaptureOptions, open_source};
use camshow_media::live::{LiveControl, LiveOptions, run_live};
use camshow_media::swap_job::{MediaKind, SwapRequest, SwapResult, media_kind, run_swap};
use camshow_media::video::{Decoder, Trim, VideoInfo, probe};

use crate::frames::FrameStore;
use crate::prefs::Prefs;
use crate::state::{
    Action, Command, FaceThumb, Health, JobDone, JobError, LiveRequest, ModelRow, Person,
    TargetInfo,
};

/// Where the answers go (the window's channel).
pub type Events = Arc<dyn Fn(Action) + Send + Sync>;

/// The frame keys the window reads (`/frames/<key>`).
pub mod keys {
    /// The target (or the video frame previewed), untouched.
    pub const BEFORE: &str = "before";
    /// The same picture with the current settings.
    pub const PREVIEW: &str = "preview";
    /// The output (image, or the output video at the preview's time).
    pub const RESULT: &str = "result";
    /// The live stream.
    pub const LIVE: &str = "live";
    /// The target played processed in real time.
    pub const PLAY: &str = "play";
}

/// Handle on the engine thread.
#[derive(Clone)]
pub struct Worker {
    tx: SyncSender<Command>,
}

impl Worker {
    /// Starts the engine thread over `settings` (from `settings_file`),
    /// with `model_files` (`ID=FILE`) used instead of installed models.
    pub fn spawn(
        settings: Settings,
        model_files: Vec<String>,
        settings_file: PathBuf,
        prefs_file: PathBuf,
        frames: Arc<FrameStore>,
        events: Events,
    ) -> Self {
        // Commands are few and quick to take (long work has its own threads).
        let (tx, rx) = sync_channel(256);
        let mut engine = EngineThread {
            settings,
            model_files,
            settings_file,
            prefs_file,
            frames,
            events,
            ctx: None,
            engine: None,
            source: None,
            targets: None,
            before: None,
            job: None,
            live: None,
            player: None,
        };
        // The thread ends when the window drops its last sender.
        let spawned = engine_thread("camshow-engine", move || {
            engine.run(&rx);
        });
        if let Err(e) = spawned {
            tracing::error!("cannot start the engine thread: {e}");
        }
        Self { tx }
    }

    /// Hands `cmd` to the engine thread.
    pub fn send(&self, cmd: Command) {
        if self.tx.send(cmd).is_err() {
            tracing::error!("the engine thread has ended");
        }
    }
}

struct RunningJob {
    cancel: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

struct RunningLive {
    control: Arc<LiveControl>,
    outputs: Arc<Mutex<Outputs>>,
    fps: f64,
    thread: JoinHandle<()>,
}

/// The live outputs besides the window, switchable while running.
#[derive(Default)]
struct Outputs {
    mjpeg: Option<(String, MjpegServer)>,
    camera: Option<(PathBuf, VirtualCamera)>,
}

struct EngineThread {
    settings: Settings,
    model_files: Vec<String>,
    settings_file: PathBuf,
    prefs_file: PathBuf,
    frames: Arc<FrameStore>,
    events: Events,
    ctx: Option<Arc<EngineContext>>,
    engine: Option<Arc<SwapEngine>>,
    source: Option<Arc<camshow_core::swap::PreparedSource>>,
    /// The target's still picture (images) or its probe (videos).
    targets: Option<(PathBuf, Target)>,
    /// The target and time whose picture is stored as BEFORE.
    before: Option<(PathBuf, f64)>,
    job: Option<RunningJob>,
    live: Option<RunningLive>,
    player: Option<RunningJob>,
}

#[derive(Clone)]
enum Target {
    Image(Arc<Frame>),
    Video(Box<VideoInfo>),
}

/// Runs the calling thread (and the threads it starts: job workers, ONNX
/// Runtime's pools) below the window's priority, so the window answers at
/// once however busy the engine is. Nothing else changes: with the CPU
/// free, the engine gets all of it.
fn background() {
    let nice = thread_priority::ThreadPriorityValue::try_from(25u8)
        .map(thread_priority::ThreadPriority::Crossplatform);
    if let Ok(p) = nice
        && let Err(e) = thread_priority::set_current_thread_priority(p)
    {
        tracing::debug!("cannot lower the engine's priority: {e:?}");
    }
}

/// A named thread that runs `f` at the engine's priority ([`background`]).
fn engine_thread<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            background();
            f()
        })
}

fn err_text(e: &(dyn std::error::Error + 'static)) -> String {
    camshow_core::one_line(e)
}

impl EngineThread {
    fn run(&mut self, rx: &Receiver<Command>) {
        while let Ok(first) = rx.recv() {
            // Coalesce: of the previews (and preference saves) waiting, only
            // the newest is made.
            let mut batch = vec![first];
            batch.extend(rx.try_iter());
            let last_preview = batch
                .iter()
                .rposition(|c| matches!(c, Command::Preview { .. }));
            let last_prefs = batch
                .iter()
                .rposition(|c| matches!(c, Command::SavePrefs(_)));
            for (i, cmd) in batch.into_iter().enumerate() {
                let superseded = match cmd {
                    Command::Preview { .. } => Some(i) != last_preview,
                    Command::SavePrefs(_) => Some(i) != last_prefs,
                    _ => false,
                };
                if superseded {
                    continue;
                }
                self.handle(cmd);
            }
        }
        self.stop_all();
    }

    fn emit(&self, a: Action) {
        (self.events)(a);
    }

    fn context(&mut self) -> Result<Arc<EngineContext>, String> {
        if let Some(ctx) = &self.ctx {
            return Ok(Arc::clone(ctx));
        }
        let ctx =
            EngineContext::with_store(&self.settings, self.store()?).map_err(|e| err_text(&e))?;
        self.ctx = Some(Arc::clone(&ctx));
        Ok(ctx)
    }

    /// The models of the settings' folder, with the `--model-file` overrides.
    fn store(&self) -> Result<camshow_core::models::ModelStore, String> {
        with_model_files(
            store_for(self.settings.models_dir.as_deref()),
            &self.model_files,
        )
        .map_err(|e| err_text(&e))
    }

    /// The engine for the current settings (loaded once, then reconfigured).
    fn engine(&mut self) -> Result<Arc<SwapEngine>, String> {
        if let Some(e) = &self.engine {
            return Ok(Arc::clone(e));
        }
        let ctx = self.context()?;
        let engine = Arc::new(SwapEngine::load(&ctx, &self.settings).map_err(|e| err_text(&e))?);
        self.engine = Some(Arc::clone(&engine));
        Ok(engine)
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::PrepareSource { photos, pick } => {
                let r = self.prepare_source(&photos, pick);
                self.emit(match r {
                    Ok(faces) => Action::SourceReady(faces),
                    Err(e) => Action::SourceFailed(e),
                });
            }
            Command::ProbeTarget(path) => {
                let r = self.probe_target(&path);
                self.emit(match r {
                    Ok(info) => Action::TargetReady(info),
                    Err(e) => Action::TargetFailed(e),
                });
            }
            Command::Preview { target, time } => {
                let start = Instant::now();
                match self.preview(&target, time) {
                    Ok(()) => self.emit(Action::PreviewReady {
                        millis: start.elapsed().as_secs_f64() * 1000.0,
                        time,
                    }),
                    Err(e) => self.emit(Action::PreviewFailed(e)),
                }
            }
            Command::PlayFrom(time) => self.play(time),
            Command::PlayOutput(path) => self.play_output(path),
            Command::StopPlaying => self.stop_playing(),
            Command::Settings { settings, changes } => self.set_settings(*settings, &changes),
            Command::Swap(req) => self.swap(*req),
            Command::Cancel => {
                if let Some(job) = &self.job {
                    job.cancel.store(true, Ordering::Relaxed);
                }
            }
            Command::LiveStart(req) => {
                if let Err(e) = self.live_start(&req) {
                    self.emit(Action::LiveEnded(Err(e)));
                }
            }
            Command::LiveStop => {
                if let Some(live) = &self.live {
                    live.control.stop();
                }
            }
            Command::LiveSource { photos, pick } => {
                let r = self.engine().and_then(|engine| {
                    camshow_media::swap_job::prepare_source_picked(&engine, &photos, pick)
                        .map_err(|e| err_text(&e))
                });
                match (r, &self.live) {
                    (Ok(source), Some(live)) => live.control.set_source(source),
                    (Err(e), _) => self.emit(Action::Error(e)),
                    _ => {}
                }
            }
            Command::Scan(target) => self.scan(target),
            Command::AssignMap { map, assigned } => {
                if let Err(e) = assign_map(&map, &assigned) {
                    self.emit(Action::Error(e));
                }
            }
            Command::Doctor => {
                let health = self.health();
                self.emit(Action::HealthReady(health));
            }
            Command::Fetch(id) => self.fetch(id),
            Command::SavePrefs(prefs) => self.save_prefs(&prefs),
            // File choosers are the window's own.
            Command::PickFile(_) => {}
        }
    }

    fn save_prefs(&self, prefs: &Prefs) {
        if let Err(e) = prefs.save(&self.prefs_file) {
            self.emit(Action::Error(e));
        }
    }

    fn prepare_source(
        &mut self,
        paths: &[PathBuf],
        pick: Option<SourcePick>,
    ) -> Result<Vec<FaceThumb>, String> {
        self.source = None;
        let engine = self.engine()?;
        let (source, faces) = camshow_media::faces::analyse_sources_picked(&engine, paths, pick)
            .map_err(|e| err_text(&e))?;
        let used = source.face.bbox;
        self.source = Some(Arc::new(source));
        let jpeg = LiveJpeg::new(85);
        let mut thumbs = Vec::new();
        for (i, f) in faces.iter().enumerate() {
            let key = format!("source-{i}");
            let bytes = jpeg
                .encode(&fit(&f.thumbnail, 160), false)
                .map_err(|e| err_text(&e))?;
            self.frames.put(&key, bytes, "image/jpeg");
            thumbs.push(FaceThumb {
                key,
                score: f.face.score,
                pick: SourcePick {
                    photo: f.photo,
                    bbox: f.face.bbox,
                },
                used: f.face.bbox == used,
            });
        }
        Ok(thumbs)
    }

    fn probe_target(&mut self, path: &Path) -> Result<TargetInfo, String> {
        self.targets = None;
        let kind = media_kind(path).map_err(|e| err_text(&e))?;
        let (target, info) = match kind {
            MediaKind::Image => {
                let frame = read_image(path).map_err(|e| err_text(&e))?;
                let info = TargetInfo {
                    path: path.to_path_buf(),
                    kind,
                    width: frame.width(),
                    height: frame.height(),
                    duration: None,
                    fps: None,
                };
                (Target::Image(Arc::new(frame)), info)
            }
            MediaKind::Video => {
                let v = probe(path).map_err(|e| err_text(&e))?;
                let info = TargetInfo {
                    path: path.to_path_buf(),
                    kind,
                    width: v.width,
                    height: v.height,
                    duration: Some(v.duration),
                    fps: Some(v.fps.as_f64()),
                };
                (Target::Video(Box::new(v)), info)
            }
        };
        // The untouched picture, shown before any source is chosen.
        let frame = target_frame(path, &target, 0.0)?;
        self.frames.put(keys::BEFORE, encode(&frame)?, "image/jpeg");
        self.before = Some((path.to_path_buf(), 0.0));
        self.targets = Some((path.to_path_buf(), target));
        Ok(info)
    }

    fn target(&mut self, path: &Path) -> Result<Target, String> {
        if let Some((p, t)) = &self.targets
            && p == path
        {
            return Ok(t.clone());
        }
        self.probe_target(path)?;
        self.targets
            .as_ref()
            .map(|(_, t)| t.clone())
            .ok_or_else(|| "the target could not be read".to_string())
    }

    /// The current settings on the target at `time`: gated and swapped as
    /// a picture (the same call as an image swap), before and after stored.
    fn preview(&mut self, path: &Path, time: f64) -> Result<(), String> {
        let target = self.target(path)?;
        let engine = self.engine()?;
        let source = self
            .source
            .clone()
            .ok_or_else(|| "choose a source face first".to_string())?;
        let mut frame = target_frame(path, &target, time)?;
        // The untouched picture changes with the target or the time only
        // (not with each option moved while tuning).
        let shown = Some((path.to_path_buf(), time));
        if self.before != shown {
            self.frames.put(keys::BEFORE, encode(&frame)?, "image/jpeg");
            self.before = shown;
        }
        let plan = SourcePlan::One {
            source,
            reference: None,
        };
        FrameSession::still(plan, &engine.settings().engine)
            .swap_picture(&engine, &mut frame, "target picture")
            .map_err(|e| err_text(&e))?;
        self.frames
            .put(keys::PREVIEW, encode(&frame)?, "image/jpeg");
        Ok(())
    }

    fn set_settings(
        &mut self,
        settings: Settings,
        changes: &[(String, camshow_core::settings::NewValue)],
    ) {
        // Saved first: the settings file is what the CLI reads too.
        if let Err(e) = patch_file(&self.settings_file, changes) {
            self.emit(Action::Error(err_text(&e)));
        }
        let runtime_changed = settings.runtime != self.settings.runtime
            || settings.models_dir != self.settings.models_dir;
        self.settings = settings;
        if runtime_changed {
            self.ctx = None;
            self.engine = None;
        } else if let Some(engine) = &self.engine {
            // Same models stay loaded: only what the change needs is loaded.
            match engine.reconfigure(&self.settings) {
                Ok(e) => self.engine = Some(Arc::new(e)),
                Err(e) => {
                    self.emit(Action::Error(err_text(&e)));
                    self.engine = None;
                }
            }
        }
        if let Some(live) = &self.live {
            if let Err(e) = live.control.set_settings(&self.settings) {
                self.emit(Action::Error(err_text(&e)));
            }
            live.control.set_mirror(self.settings.live.mirror);
        }
        self.live_outputs();
    }

    fn swap(&mut self, req: SwapRequest) {
        // The window starts a job only after the last one reported its end:
        // its thread is ending, jobs never overlap.
        if let Some(last) = self.job.take() {
            let _ = last.thread.join();
        }
        let ctx = match self.context() {
            Ok(c) => c,
            Err(e) => {
                self.emit(Action::Finished(Err(JobError::Failed(e))));
                return;
            }
        };
        let settings = self.settings.clone();
        let events = Arc::clone(&self.events);
        let frames = Arc::clone(&self.frames);
        let cancel = Arc::new(AtomicBool::new(false));
        let c = Arc::clone(&cancel);
        let thread = engine_thread("camshow-swap", move || {
            let start = Instant::now();
            let last = Mutex::new(None::<Instant>);
            let progress = |done: u64, total: Option<u64>| {
                let mut last = last
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let recent = last.is_some_and(|t| t.elapsed() < Duration::from_millis(100));
                if recent && Some(done) != total {
                    return;
                }
                *last = Some(Instant::now());
                let secs = start.elapsed().as_secs_f64().max(1e-6);
                let fps = done as f64 / secs;
                let eta = total
                    .filter(|_| fps > 0.0)
                    .map(|t| t.saturating_sub(done) as f64 / fps);
                events(Action::Progress {
                    done,
                    total,
                    fps,
                    eta,
                });
            };
            let r = run_swap(&ctx, &settings, &req, &progress, &c);
            let action = match r {
                Ok(outcome) => {
                    let kind = match outcome.result {
                        SwapResult::Image(_) => MediaKind::Image,
                        SwapResult::Video { .. } => MediaKind::Video,
                    };
                    let shown = result_picture(&outcome.output, kind)
                        .map(|f| frames.put(keys::RESULT, f, "image/jpeg"));
                    if let Err(e) = shown {
                        tracing::warn!("cannot show the result: {e}");
                    }
                    let summary = summary(&outcome);
                    Action::Finished(Ok(JobDone {
                        output: outcome.output,
                        kind,
                        summary,
                    }))
                }
                Err(e) if e.is_cancelled() => Action::Finished(Err(JobError::Cancelled)),
                Err(e) => Action::Finished(Err(JobError::Failed(err_text(&e)))),
            };
            events(action);
        });
        match thread {
            Ok(thread) => self.job = Some(RunningJob { cancel, thread }),
            Err(e) => self.emit(Action::Finished(Err(JobError::Failed(e.to_string())))),
        }
    }

    /// Plays the target video processed with the current settings in real
    /// time: frames the engine is too slow for are skipped.
    fn play(&mut self, from: f64) {
        self.stop_playing();
        let Some((path, Target::Video(info))) = self.targets.clone() else {
            return;
        };
        let prepared = (|| {
            let engine = self.engine()?;
            let source = self
                .source
                .clone()
                .ok_or_else(|| "choose a source face first".to_string())?;
            Ok::<_, String>((engine, source))
        })();
        let (engine, source) = match prepared {
            Ok(p) => p,
            Err(e) => {
                self.emit(Action::PreviewFailed(e));
                return;
            }
        };
        let plan = SourcePlan::One {
            source,
            reference: None,
        };
        self.spawn_player(path, *info, from, Some((engine, plan)));
    }

    /// Plays `path` from `from` on a thread of its own (processed when
    /// `processing` is given), replacing the picture `play`.
    fn spawn_player(
        &mut self,
        path: PathBuf,
        info: VideoInfo,
        from: f64,
        processing: Option<(Arc<SwapEngine>, SourcePlan)>,
    ) {
        let events = Arc::clone(&self.events);
        let frames = Arc::clone(&self.frames);
        let cancel = Arc::new(AtomicBool::new(false));
        let c = Arc::clone(&cancel);
        let thread = engine_thread("camshow-play", move || {
            if let Err(e) = play_video(&path, &info, from, processing, &frames, &events, &c) {
                events(Action::PreviewFailed(e));
            }
            events(Action::PlayEnded);
        });
        match thread {
            Ok(thread) => self.player = Some(RunningJob { cancel, thread }),
            Err(e) => self.emit(Action::PreviewFailed(e.to_string())),
        }
    }

    /// Plays the written video as it is (the result's player).
    fn play_output(&mut self, path: PathBuf) {
        self.stop_playing();
        let info = match probe(&path) {
            Ok(i) => i,
            Err(e) => return self.emit(Action::PreviewFailed(err_text(&e))),
        };
        self.spawn_player(path, info, 0.0, None);
    }

    fn stop_playing(&mut self) {
        if let Some(p) = self.player.take() {
            p.cancel.store(true, Ordering::Relaxed);
            let _ = p.thread.join();
        }
    }

    fn live_start(&mut self, req: &LiveRequest) -> Result<(), String> {
        if let Some(live) = self.live.take() {
            live.control.stop();
            let _ = live.thread.join();
        }
        let engine = self.engine()?;
        let source = camshow_media::swap_job::prepare_source(&engine, &req.sources)
            .map_err(|e| err_text(&e))?;
        let l = &self.settings.live;
        let camera = match &l.camera {
            Some(c) => c.clone(),
            None => camshow_media::camera::default_camera().map_err(|e| err_text(&e))?,
        };
        let size = l
            .resolution
            .as_deref()
            .map(camshow_core::settings::parse_resolution)
            .transpose()
            .map_err(|e| err_text(&e))?;
        let frames_in = open_source(&camera, CaptureOptions { size, fps: l.fps }, true)
            .map_err(|e| err_text(&e))?;
        let fps = frames_in.nominal_fps();
        let control =
            LiveControl::new(engine, SourcePlan::one(source)).map_err(|e| err_text(&e))?;
        let outputs = Arc::new(Mutex::new(Outputs::default()));
        let sink = WindowSink {
            frames: Arc::clone(&self.frames),
            jpeg: LiveJpeg::new(80),
            outputs: Arc::clone(&outputs),
            events: Arc::clone(&self.events),
            shown: 0,
            latencies: Vec::new(),
            last_report: Instant::now(),
        };
        let opts = LiveOptions {
            mirror: l.mirror,
            ..LiveOptions::default()
        };
        let c = Arc::clone(&control);
        let events = Arc::clone(&self.events);
        let thread = engine_thread("camshow-live", move || {
            let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink)];
            let r = run_live(frames_in, &mut sinks, &c, &opts);
            events(Action::LiveEnded(r.map(|_| ()).map_err(|e| err_text(&e))));
        })
        .map_err(|e| e.to_string())?;
        self.live = Some(RunningLive {
            control,
            outputs,
            fps,
            thread,
        });
        self.live_outputs();
        Ok(())
    }

    /// Opens or closes the MJPEG server and the virtual camera to match
    /// `live.mjpeg` / `live.virtual_camera` (switchable while running).
    fn live_outputs(&mut self) {
        let Some(live) = &self.live else { return };
        let mut out = live
            .outputs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut problems = Vec::new();
        let want_mjpeg = self.settings.live.mjpeg.clone();
        if out.mjpeg.as_ref().map(|(a, _)| a) != want_mjpeg.as_ref() {
            out.mjpeg = None;
            if let Some(addr) = want_mjpeg {
                match MjpegServer::bind(&addr) {
                    Ok(server) => out.mjpeg = Some((addr, server)),
                    Err(e) => problems.push(err_text(&e)),
                }
            }
        }
        let want_cam = self.settings.live.virtual_camera.clone();
        if out.camera.as_ref().map(|(d, _)| d) != want_cam.as_ref() {
            out.camera = None;
            if let Some(dev) = want_cam {
                match VirtualCamera::open(&dev, live.fps) {
                    Ok(cam) => out.camera = Some((dev, cam)),
                    Err(e) => problems.push(err_text(&e)),
                }
            }
        }
        let url = out.mjpeg.as_ref().map(|(_, s)| s.url());
        drop(out);
        self.emit(Action::LiveMjpegAt(url));
        for p in problems {
            self.emit(Action::Error(p));
        }
    }

    fn scan(&mut self, target: PathBuf) {
        let ctx = match self.context() {
            Ok(c) => c,
            Err(e) => return self.emit(Action::ScanFailed(e)),
        };
        let detector = self.settings.engine.detector;
        let events = Arc::clone(&self.events);
        let frames = Arc::clone(&self.frames);
        let spawned = engine_thread("camshow-scan", move || {
            let r = scan_people(&ctx, detector, &target, &frames);
            events(match r {
                Ok((map, persons)) => Action::Scanned { map, persons },
                Err(e) => Action::ScanFailed(e),
            });
        });
        if let Err(e) = spawned {
            self.emit(Action::ScanFailed(e.to_string()));
        }
    }

    fn health(&mut self) -> Health {
        let ctx = self.context();
        let store_only;
        let (rt, store) = match &ctx {
            Ok(c) => (Ok(c.runtime()), c.store()),
            Err(e) => {
                store_only = store_for(self.settings.models_dir.as_deref());
                (Err(e.clone()), &store_only)
            }
        };
        let report = Report::collect(rt, store);
        health_of(&report)
    }

    fn fetch(&mut self, id: String) {
        let store = match self.context() {
            Ok(c) => c.store().clone(),
            Err(_) => store_for(self.settings.models_dir.as_deref()),
        };
        let events = Arc::clone(&self.events);
        let spawned = engine_thread("camshow-fetch", move || {
            let mut progress = FetchProgress {
                id: id.clone(),
                events: Arc::clone(&events),
                total: None,
            };
            let result = store
                .fetch(&id, &mut progress)
                .map(|_| ())
                .map_err(|e| err_text(&e));
            events(Action::Fetched { id, result });
        });
        if let Err(e) = spawned {
            self.emit(Action::Error(e.to_string()));
        }
    }

    fn stop_all(&mut self) {
        if let Some(job) = self.job.take() {
            job.cancel.store(true, Ordering::Relaxed);
            let _ = job.thread.join();
        }
        if let Some(live) = self.live.take() {
            live.control.stop();
            let _ = live.thread.join();
        }
        self.stop_playing();
    }
}

/// The report as the health panel shows it.
pub fn health_of(report: &Report) -> Health {
    let (runtime, providers) = match &report.onnxruntime {
        RuntimeReport::Found {
            version,
            library,
            providers,
            ..
        } => (
            format!("ONNX Runtime {version} ({})", library.display()),
            providers
                .iter()
                .map(|p| (p.name.to_string(), p.usable))
                .collect(),
        ),
        RuntimeReport::Missing { error } => (format!("not loaded: {error}"), Vec::new()),
    };
    Health {
        runtime,
        providers,
        gate: report.safety_gate.clone(),
        models: report
            .models
            .iter()
            .map(|m| ModelRow {
                id: m.id.to_string(),
                status: m.status.clone(),
                ok: m.ok,
                licence: m.licence.to_string(),
                fetching: None,
            })
            .collect(),
        hints: report.hints.clone(),
        cameras: report
            .cameras
            .iter()
            .map(|c| (c.id.clone(), c.name.clone()))
            .collect(),
        loaded: true,
    }
}

struct FetchProgress {
    id: String,
    events: Events,
    total: Option<u64>,
}

impl camshow_core::models::download::Progress for FetchProgress {
    fn start(&mut self, _: &str, done: u64, total: Option<u64>) {
        self.total = total;
        self.advance(done);
    }
    fn advance(&mut self, done: u64) {
        if let Some(t) = self.total.filter(|t| *t > 0) {
            (self.events)(Action::FetchProgress {
                id: self.id.clone(),
                fraction: done as f64 / t as f64,
            });
        }
    }
    fn finish(&mut self) {}
    fn message(&mut self, text: &str) {
        tracing::info!("{}: {text}", self.id);
    }
}

/// The live output drawn in the window (and sent to the outputs switched on).
struct WindowSink {
    frames: Arc<FrameStore>,
    jpeg: LiveJpeg,
    outputs: Arc<Mutex<Outputs>>,
    events: Events,
    shown: u64,
    latencies: Vec<f64>,
    last_report: Instant,
}

impl Sink for WindowSink {
    fn describe(&self) -> String {
        "the window".into()
    }

    fn send(&mut self, frame: &Frame, meta: &FrameMeta) -> camshow_media::Result<()> {
        let swapped = meta.faces_swapped > 0;
        self.frames
            .put(keys::LIVE, self.jpeg.encode(frame, swapped)?, "image/jpeg");
        {
            let mut out = self
                .outputs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((_, server)) = &out.mjpeg {
                server.publish(frame, swapped)?;
            }
            if let Some((_, cam)) = &mut out.camera {
                cam.send(frame, meta)?;
            }
        }
        self.shown += 1;
        self.latencies
            .push(meta.captured_at.elapsed().as_secs_f64() * 1000.0);
        if self.last_report.elapsed() >= Duration::from_millis(500) {
            let window = self.last_report.elapsed().as_secs_f64();
            let n = self.latencies.len();
            self.latencies.sort_by(f64::total_cmp);
            let latency_ms = self.latencies.get(n / 2).copied().unwrap_or(0.0);
            (self.events)(Action::LiveStats {
                out_fps: n as f64 / window,
                latency_ms,
                frames: self.shown,
            });
            self.latencies.clear();
            self.last_report = Instant::now();
        }
        Ok(())
    }
}

/// The picture of `target` at `time` (the image itself, or the video's frame).
fn target_frame(path: &Path, target: &Target, time: f64) -> Result<Frame, String> {
    match target {
        Target::Image(f) => Ok((**f).clone()),
        Target::Video(info) => video_frame(path, info, time),
    }
}

fn video_frame(path: &Path, info: &VideoInfo, time: f64) -> Result<Frame, String> {
    let last = (info.duration - 1.0 / info.fps.as_f64().max(1.0)).max(0.0);
    let t = time.clamp(0.0, last);
    let mut dec = Decoder::open(
        path,
        info,
        Trim {
            start: Some(t),
            end: None,
        },
    )
    .map_err(|e| err_text(&e))?;
    dec.next_frame()
        .map_err(|e| err_text(&e))?
        .ok_or_else(|| format!("{} has no frame at {t:.2} s", path.display()))
}

/// JPEG of `frame` for the window, at most 1280 px wide.
fn encode(frame: &Frame) -> Result<Vec<u8>, String> {
    LiveJpeg::new(88)
        .encode(&fit(frame, 1280), false)
        .map_err(|e| err_text(&e))
}

/// `frame` scaled down to at most `max` pixels on its longer side.
fn fit(frame: &Frame, max: u32) -> Frame {
    let (w, h) = (frame.width(), frame.height());
    let long = w.max(h);
    if long <= max {
        return frame.clone();
    }
    let scale = max as f64 / long as f64;
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).max(1),
        ((h as f64 * scale).round() as u32).max(1),
    );
    camshow_core::imgproc::resize_bilinear(frame, nw, nh)
}

/// The written output as a picture for the window.
fn result_picture(output: &Path, kind: MediaKind) -> Result<Vec<u8>, String> {
    let frame = match kind {
        MediaKind::Image => read_image(output).map_err(|e| err_text(&e))?,
        MediaKind::Video => {
            let info = probe(output).map_err(|e| err_text(&e))?;
            video_frame(output, &info, info.duration / 2.0)?
        }
    };
    encode(&frame)
}

fn summary(o: &camshow_media::swap_job::SwapOutcome) -> String {
    let what = match &o.result {
        SwapResult::Image(r) => format!("{} of {} face(s) swapped", r.faces_swapped, r.faces_found),
        SwapResult::Video { report, .. } => format!(
            "{} frames, {} with a face swapped",
            report.frames, report.frames_swapped
        ),
    };
    format!("{what} with {} in {:.1} s", o.swapper, o.seconds)
}

/// Plays `path` from `from` at its own rate into the `play` picture,
/// processed by `engine` with `plan` when given (under the live safety
/// schedule); frames the engine is too slow for are skipped.
fn play_video(
    path: &Path,
    info: &VideoInfo,
    from: f64,
    processing: Option<(Arc<SwapEngine>, SourcePlan)>,
    frames: &FrameStore,
    events: &Events,
    cancel: &AtomicBool,
) -> Result<(), String> {
    let fps = info.fps.as_f64().max(1.0);
    let mut dec = Decoder::open(
        path,
        info,
        Trim {
            start: Some(from.clamp(0.0, info.duration)),
            end: None,
        },
    )
    .map_err(|e| err_text(&e))?;
    let mut stream = processing.map(|(engine, plan)| {
        let stream = CheckedStream::new(plan, engine.settings(), fps);
        (engine, stream)
    });
    let start = Instant::now();
    let mut n: u64 = 0;
    while let Some(mut frame) = dec.next_frame().map_err(|e| err_text(&e))? {
        if cancel.load(Ordering::Relaxed) {
            return Ok(());
        }
        let due = n as f64 / fps;
        n += 1;
        // Behind the video's clock: skip this frame (the engine is slower).
        if start.elapsed().as_secs_f64() > due + 1.0 / fps {
            continue;
        }
        let started = Instant::now();
        if let Some((engine, stream)) = &mut stream {
            stream
                .process(engine, &mut frame)
                .map_err(|e| err_text(&e))?;
        }
        frames.put(keys::PLAY, encode(&frame)?, "image/jpeg");
        events(Action::PreviewReady {
            millis: started.elapsed().as_secs_f64() * 1000.0,
            time: from + due,
        });
        let ahead = due - start.elapsed().as_secs_f64();
        if ahead > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(ahead));
        }
    }
    Ok(())
}

/// Scans `target` into a face map in a folder of its own, and stores each
/// person's thumbnail.
fn scan_people(
    ctx: &EngineContext,
    detector: camshow_core::detect::DetectorKind,
    target: &Path,
    frames: &FrameStore,
) -> Result<(PathBuf, Vec<Person>), String> {
    static SCANS: AtomicU64 = AtomicU64::new(0);
    let dir = camshow_core::paths::cache_dir()
        .join("desktop-scans")
        .join(format!(
            "{}-{}",
            std::process::id(),
            SCANS.fetch_add(1, Ordering::Relaxed)
        ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let map_file = dir.join("map.json");
    let outcome = camshow_media::faces::scan(
        ctx,
        detector,
        target,
        &map_file,
        DEFAULT_CLUSTER_DISTANCE,
        &AtomicBool::new(false),
    )
    .map_err(|e| err_text(&e))?;
    let mut persons = Vec::new();
    for (i, p) in outcome.map.people.iter().enumerate() {
        let thumb = if p.thumbnail.is_absolute() {
            p.thumbnail.clone()
        } else {
            outcome.folder.join(&p.thumbnail)
        };
        let key = format!("person-{i}");
        let frame = read_image(&thumb).map_err(|e| err_text(&e))?;
        let bytes = LiveJpeg::new(85)
            .encode(&fit(&frame, 160), false)
            .map_err(|e| err_text(&e))?;
        frames.put(&key, bytes, "image/jpeg");
        persons.push(Person {
            index: i,
            thumb: key,
            faces: p.frames_seen.len(),
            source: None,
        });
    }
    Ok((map_file, persons))
}

/// Writes the chosen photo into each person's `source` (others left untouched).
fn assign_map(map_file: &Path, assigned: &[(usize, PathBuf)]) -> Result<(), String> {
    let mut map = FaceMap::load(map_file).map_err(|e| err_text(&e))?;
    for p in &mut map.people {
        p.source = None;
    }
    for (i, photo) in assigned {
        let person = map
            .people
            .get_mut(*i)
            .ok_or_else(|| format!("the face map has no person {i}"))?;
        person.source = Some(photo.clone());
    }
    let json = serde_json::to_string_pretty(&map).map_err(|e| e.to_string())?;
    camshow_core::atomic::write(map_file, json.as_bytes()).map_err(|e| err_text(&e))
}
