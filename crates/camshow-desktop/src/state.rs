//! What the window shows, and what each action does to it: plain Rust, no
//! Dioxus, so every rule is unit-tested. An action changes the state and
//! returns the [`Command`]s the engine thread must run; the engine thread's
//! answers come back as actions too.

use std::path::{Path, PathBuf};

use camshow_core::pipeline::SourcePick;
use camshow_core::settings::{NewValue, Settings};
use camshow_media::swap_job::{MediaKind, SwapRequest, output_name};
use serde_json::Value;

use crate::prefs::{Prefs, Theme};

/// The screens of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Screen {
    /// Source, target, options, Start.
    #[default]
    Swap,
    /// The camera, swapped as it runs.
    Live,
    /// One source per person found in the target.
    Mapper,
    /// ONNX Runtime, providers, models and their licences.
    Models,
}

impl Screen {
    /// Every screen, in tab order.
    pub const ALL: [Screen; 4] = [Screen::Swap, Screen::Live, Screen::Mapper, Screen::Models];

    /// The tab's label.
    pub fn label(self) -> &'static str {
        match self {
            Screen::Swap => "Swap",
            Screen::Live => "Live",
            Screen::Mapper => "Face mapper",
            Screen::Models => "Models & health",
        }
    }
}

/// A face found in a source photo, with its thumbnail's frame key.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceThumb {
    /// Key of the thumbnail in the frame store.
    pub key: String,
    /// Detector score.
    pub score: f32,
    /// Which photo, and where in it.
    pub pick: SourcePick,
    /// This face is the one used.
    pub used: bool,
}

/// The target, as probed.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetInfo {
    /// The file.
    pub path: PathBuf,
    /// Image or video.
    pub kind: MediaKind,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Video: length in seconds.
    pub duration: Option<f64>,
    /// Video: frames per second.
    pub fps: Option<f64>,
}

/// A swap job, as the window shows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Job {
    /// Nothing running.
    #[default]
    Idle,
    /// Running: frames done of total, speed and time left.
    Running {
        /// Frames done.
        done: u64,
        /// Frames in all, when known.
        total: Option<u64>,
        /// Frames per second so far.
        fps: f64,
        /// Seconds left, when known.
        eta: Option<f64>,
        /// Cancel was pressed.
        cancelling: bool,
    },
    /// Finished: the output written.
    Done(JobDone),
    /// Cancelled: nothing written.
    Cancelled,
    /// Failed, with the reason.
    Failed(String),
}

/// A finished swap.
#[derive(Debug, Clone, PartialEq)]
pub struct JobDone {
    /// The file written.
    pub output: PathBuf,
    /// Image or video.
    pub kind: MediaKind,
    /// What it did, in one line.
    pub summary: String,
}

/// The preview of the current settings on the target.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Preview {
    /// Increases with each new preview picture (cache-busts the `<img>`).
    pub version: u64,
    /// A preview is being made.
    pub busy: bool,
    /// Where in the video (seconds).
    pub time: f64,
    /// How long the last one took (ms).
    pub millis: f64,
    /// Why the last one failed.
    pub error: Option<String>,
    /// Where the before/after divider is (0–100 % from the left).
    pub split: u8,
    /// Play the video processed in real time.
    pub playing: bool,
}

/// Live mode (its options are the settings' `live.*`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Live {
    /// Running.
    pub running: bool,
    /// Output frames per second.
    pub out_fps: f64,
    /// Capture-to-output latency, median (ms).
    pub latency_ms: f64,
    /// Frames shown so far.
    pub frames: u64,
    /// The MJPEG address, while served.
    pub mjpeg_url: Option<String>,
    /// Why it stopped, when it failed.
    pub error: Option<String>,
}

/// A person the face mapper found.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// Index in the face map.
    pub index: usize,
    /// Frame key of the thumbnail.
    pub thumb: String,
    /// Faces of this person found.
    pub faces: usize,
    /// The photo put on this person (none: left untouched).
    pub source: Option<PathBuf>,
}

/// The face mapper.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapper {
    /// Scanning the target.
    pub scanning: bool,
    /// The face map file written by the scan.
    pub map: Option<PathBuf>,
    /// One entry per person.
    pub persons: Vec<Person>,
}

/// A model in the health panel.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    /// Manifest id.
    pub id: String,
    /// State as text.
    pub status: String,
    /// Installed and verified.
    pub ok: bool,
    /// Licence.
    pub licence: String,
    /// Download progress (0–1) while fetching.
    pub fetching: Option<f64>,
}

/// The doctor report, as the panel shows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Health {
    /// ONNX Runtime: version and where, or why it did not load.
    pub runtime: String,
    /// Execution providers and whether they attach.
    pub providers: Vec<(String, bool)>,
    /// The gate: `ready` or what is missing.
    pub gate: String,
    /// Every model.
    pub models: Vec<ModelRow>,
    /// What to do next.
    pub hints: Vec<String>,
    /// Cameras: (stable id, name).
    pub cameras: Vec<(String, String)>,
    /// The report was collected.
    pub loaded: bool,
}

/// A message for the user at the top of the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// Error (red) or information.
    pub error: bool,
    /// The text.
    pub text: String,
}

/// Everything the window shows.
#[derive(Debug, Clone, PartialEq)]
pub struct AppState {
    /// The screen shown.
    pub screen: Screen,
    /// Source photos (one person).
    pub sources: Vec<PathBuf>,
    /// Faces found in the sources.
    pub source_faces: Vec<FaceThumb>,
    /// The source is being checked.
    pub source_busy: bool,
    /// The face chosen among the sources' faces (else the most prominent).
    pub source_pick: Option<SourcePick>,
    /// The target, once probed.
    pub target: Option<TargetInfo>,
    /// Output chosen by the user (else next to the target).
    pub output: Option<PathBuf>,
    /// Reference face (for the `reference` selector).
    pub reference: Option<PathBuf>,
    /// The settings, as the settings file gives them.
    pub settings: Settings,
    /// The swap job.
    pub job: Job,
    /// The preview.
    pub preview: Preview,
    /// Live mode.
    pub live: Live,
    /// The face mapper.
    pub mapper: Mapper,
    /// The health panel.
    pub health: Health,
    /// Window preferences.
    pub prefs: Prefs,
    /// The last message.
    pub notice: Option<Notice>,
}

impl AppState {
    /// A fresh window over these settings and preferences.
    pub fn new(settings: Settings, prefs: Prefs) -> Self {
        Self {
            screen: Screen::Swap,
            sources: Vec::new(),
            source_faces: Vec::new(),
            source_busy: false,
            source_pick: None,
            target: None,
            output: None,
            reference: None,
            settings,
            job: Job::Idle,
            preview: Preview {
                split: 50,
                ..Preview::default()
            },
            live: Live::default(),
            mapper: Mapper::default(),
            health: Health::default(),
            prefs,
            notice: None,
        }
    }

    /// Where the output goes: the user's choice, else next to the target
    /// (`<source>-<target><ext>` in the target's folder).
    pub fn output_path(&self) -> Option<PathBuf> {
        let target = self.target.as_ref()?;
        if let Some(o) = &self.output {
            return Some(o.clone());
        }
        let folder = target
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let named = self
            .sources
            .first()
            .map_or(Path::new("mapped"), PathBuf::as_path);
        Some(folder.join(output_name(named, &target.path)))
    }

    /// Why Start cannot run yet, if it cannot.
    pub fn start_blocker(&self) -> Option<String> {
        if matches!(self.job, Job::Running { .. }) {
            return Some("a swap is running".into());
        }
        if !self.prefs.terms_accepted {
            return Some("accept the usage terms first".into());
        }
        if self.sources.is_empty() {
            return Some("choose a source face".into());
        }
        if self.source_busy {
            return Some("the source face is being checked".into());
        }
        let Some(target) = &self.target else {
            return Some("choose a target image or video".into());
        };
        if self.settings.engine.selector == camshow_core::select::SelectMode::Reference
            && self.reference.is_none()
        {
            return Some("choose the reference face (the person to replace)".into());
        }
        let out = self.output_path()?;
        let inputs = self
            .sources
            .iter()
            .chain(std::iter::once(&target.path))
            .chain(self.reference.iter());
        for input in inputs {
            if input == &out || camshow_core::atomic::same_file(input, &out) {
                return Some(format!(
                    "the output {} is one of the inputs: choose another",
                    out.display()
                ));
            }
        }
        None
    }

    /// Applies `action`; returns what the engine thread must do.
    pub fn apply(&mut self, action: Action) -> Vec<Command> {
        match action {
            Action::Show(screen) => {
                self.screen = screen;
                // The models panel shows the report, the live screen its cameras.
                if matches!(screen, Screen::Models | Screen::Live) && !self.health.loaded {
                    return vec![Command::Doctor];
                }
                Vec::new()
            }
            Action::CheckHealth => vec![Command::Doctor],
            Action::Dismiss => {
                self.notice = None;
                Vec::new()
            }
            Action::AcceptTerms => {
                self.prefs.terms_accepted = true;
                vec![Command::SavePrefs(self.prefs.clone())]
            }
            Action::WindowMoved(g) => {
                if self.prefs.window == Some(g) {
                    return Vec::new();
                }
                self.prefs.window = Some(g);
                vec![Command::SavePrefs(self.prefs.clone())]
            }
            Action::PlayResult => match &self.job {
                Job::Done(d) if d.kind == MediaKind::Video => {
                    self.preview.playing = true;
                    vec![Command::PlayOutput(d.output.clone())]
                }
                _ => Vec::new(),
            },
            Action::SetTheme(theme) => {
                self.prefs.theme = theme;
                vec![Command::SavePrefs(self.prefs.clone())]
            }
            Action::ChooseSources(paths) => {
                if paths.is_empty() {
                    return Vec::new();
                }
                self.sources.clone_from(&paths);
                self.source_faces.clear();
                self.source_pick = None;
                self.source_busy = true;
                let mut cmds = vec![Command::PrepareSource {
                    photos: paths,
                    pick: None,
                }];
                if self.live.running {
                    cmds.push(Command::LiveSource {
                        photos: self.sources.clone(),
                        pick: None,
                    });
                }
                cmds
            }
            Action::PickSourceFace(i) => {
                let Some(face) = self.source_faces.get(i) else {
                    return Vec::new();
                };
                if face.used || self.source_busy {
                    return Vec::new();
                }
                self.source_pick = Some(face.pick);
                self.source_busy = true;
                let mut cmds = vec![Command::PrepareSource {
                    photos: self.sources.clone(),
                    pick: self.source_pick,
                }];
                if self.live.running {
                    cmds.push(Command::LiveSource {
                        photos: self.sources.clone(),
                        pick: self.source_pick,
                    });
                }
                cmds
            }
            Action::SourceReady(faces) => {
                self.source_busy = false;
                self.source_faces = faces;
                self.preview_command().into_iter().collect()
            }
            Action::SourceFailed(why) => {
                self.source_busy = false;
                self.source_pick = None;
                self.sources.clear();
                self.source_faces.clear();
                self.error(why);
                Vec::new()
            }
            Action::ChooseTarget(path) => {
                if !self.job_idle() {
                    self.error("wait for the running swap to finish (or cancel it)".into());
                    return Vec::new();
                }
                self.target = None;
                self.preview = Preview {
                    split: self.preview.split,
                    version: self.preview.version,
                    ..Preview::default()
                };
                self.job = Job::Idle;
                vec![Command::ProbeTarget(path)]
            }
            Action::TargetReady(info) => {
                self.target = Some(info);
                self.preview_command().into_iter().collect()
            }
            Action::TargetFailed(why) => {
                self.target = None;
                self.error(why);
                Vec::new()
            }
            Action::ChooseOutput(path) => {
                self.output = Some(path);
                Vec::new()
            }
            Action::ChooseReference(path) => {
                self.reference = Some(path);
                self.preview_command().into_iter().collect()
            }
            Action::SetOption { key, value } => self.set_option(&key, value),
            Action::Scrub(time) => {
                self.preview.time = time.max(0.0);
                self.preview_command().into_iter().collect()
            }
            Action::SetSplit(split) => {
                self.preview.split = split.min(100);
                Vec::new()
            }
            Action::PlayPreview(false) => {
                if !self.preview.playing {
                    return Vec::new();
                }
                self.preview.playing = false;
                vec![Command::StopPlaying]
            }
            Action::PlayPreview(on) => {
                let is_video = self
                    .target
                    .as_ref()
                    .is_some_and(|t| t.kind == MediaKind::Video);
                if !is_video || self.sources.is_empty() {
                    return Vec::new();
                }
                self.preview.playing = on;
                vec![if on {
                    Command::PlayFrom(self.preview.time)
                } else {
                    Command::StopPlaying
                }]
            }
            Action::PreviewReady { millis, time } => {
                self.preview.busy = false;
                self.preview.version += 1;
                self.preview.millis = millis;
                self.preview.error = None;
                if self.preview.playing {
                    self.preview.time = time;
                }
                Vec::new()
            }
            Action::PreviewFailed(why) => {
                self.preview.busy = false;
                self.preview.playing = false;
                self.preview.error = Some(why);
                Vec::new()
            }
            Action::PlayEnded => {
                self.preview.playing = false;
                Vec::new()
            }
            Action::Start => {
                if let Some(why) = self.start_blocker() {
                    self.error(why);
                    return Vec::new();
                }
                let (Some(target), Some(output)) = (&self.target, self.output_path()) else {
                    return Vec::new();
                };
                let mut req = SwapRequest::new(self.sources.clone(), target.path.clone(), output);
                req.reference_face.clone_from(&self.reference);
                req.source_face = self.source_pick;
                self.start_job(req)
            }
            Action::Cancel => match &mut self.job {
                Job::Running { cancelling, .. } => {
                    *cancelling = true;
                    vec![Command::Cancel]
                }
                _ => Vec::new(),
            },
            Action::Progress {
                done,
                total,
                fps,
                eta,
            } => {
                if let Job::Running { cancelling, .. } = self.job {
                    self.job = Job::Running {
                        done,
                        total,
                        fps,
                        eta,
                        cancelling,
                    };
                }
                Vec::new()
            }
            Action::Finished(result) => {
                self.job = match result {
                    Ok(done) => {
                        self.notice = Some(Notice {
                            error: false,
                            text: format!("Written: {}", done.output.display()),
                        });
                        Job::Done(done)
                    }
                    Err(JobError::Cancelled) => Job::Cancelled,
                    Err(JobError::Failed(why)) => {
                        self.error(why.clone());
                        Job::Failed(why)
                    }
                };
                Vec::new()
            }
            Action::ToggleLive => {
                if self.live.running {
                    return vec![Command::LiveStop];
                }
                if !self.prefs.terms_accepted {
                    self.error("accept the usage terms first".into());
                    return Vec::new();
                }
                if self.sources.is_empty() {
                    self.error("choose a source face first".into());
                    return Vec::new();
                }
                self.live.running = true;
                self.live.error = None;
                self.live.frames = 0;
                vec![Command::LiveStart(LiveRequest {
                    sources: self.sources.clone(),
                    pick: self.source_pick,
                })]
            }
            Action::LiveStats {
                out_fps,
                latency_ms,
                frames,
            } => {
                self.live.out_fps = out_fps;
                self.live.latency_ms = latency_ms;
                self.live.frames = frames;
                Vec::new()
            }
            Action::LiveMjpegAt(url) => {
                self.live.mjpeg_url = url;
                Vec::new()
            }
            Action::LiveEnded(result) => {
                self.live.running = false;
                self.live.mjpeg_url = None;
                if let Err(why) = result {
                    self.live.error = Some(why.clone());
                    self.error(why);
                }
                Vec::new()
            }
            Action::Scan => {
                let Some(target) = &self.target else {
                    self.error("choose a target to scan first".into());
                    return Vec::new();
                };
                self.mapper = Mapper {
                    scanning: true,
                    ..Mapper::default()
                };
                vec![Command::Scan(target.path.clone())]
            }
            Action::Scanned { map, persons } => {
                self.mapper = Mapper {
                    scanning: false,
                    map: Some(map),
                    persons,
                };
                Vec::new()
            }
            Action::ScanFailed(why) => {
                self.mapper.scanning = false;
                self.error(why);
                Vec::new()
            }
            Action::AssignPerson { person, source } => {
                if let Some(p) = self.mapper.persons.iter_mut().find(|p| p.index == person) {
                    p.source = source;
                }
                Vec::new()
            }
            Action::StartMapped => {
                let assigned: Vec<(usize, PathBuf)> = self
                    .mapper
                    .persons
                    .iter()
                    .filter_map(|p| Some((p.index, p.source.clone()?)))
                    .collect();
                let (Some(map), Some(target)) = (&self.mapper.map, &self.target) else {
                    self.error("scan the target first".into());
                    return Vec::new();
                };
                if assigned.is_empty() {
                    self.error("drop a source photo on at least one person".into());
                    return Vec::new();
                }
                if !self.job_idle() || !self.prefs.terms_accepted {
                    self.error(
                        self.start_blocker()
                            .unwrap_or_else(|| "a swap is running".into()),
                    );
                    return Vec::new();
                }
                let folder = target.path.parent().unwrap_or(Path::new("."));
                let output = self
                    .output
                    .clone()
                    .unwrap_or_else(|| folder.join(output_name(Path::new("mapped"), &target.path)));
                let mut req = SwapRequest::new(Vec::new(), target.path.clone(), output);
                req.map = Some(map.clone());
                let mut cmds = vec![Command::AssignMap {
                    map: map.clone(),
                    assigned,
                }];
                cmds.extend(self.start_job(req));
                cmds
            }
            Action::HealthReady(health) => {
                self.health = health;
                self.health.loaded = true;
                Vec::new()
            }
            Action::Fetch(id) => {
                if let Some(m) = self.health.models.iter_mut().find(|m| m.id == id) {
                    m.fetching = Some(0.0);
                }
                vec![Command::Fetch(id)]
            }
            Action::FetchProgress { id, fraction } => {
                if let Some(m) = self.health.models.iter_mut().find(|m| m.id == id) {
                    m.fetching = Some(fraction);
                }
                Vec::new()
            }
            Action::Fetched { id, result } => {
                if let Some(m) = self.health.models.iter_mut().find(|m| m.id == id) {
                    m.fetching = None;
                }
                match result {
                    Ok(()) => {
                        self.notice = Some(Notice {
                            error: false,
                            text: format!("{id} installed"),
                        });
                        vec![Command::Doctor]
                    }
                    Err(why) => {
                        self.error(why);
                        Vec::new()
                    }
                }
            }
            Action::Error(why) => {
                self.error(why);
                Vec::new()
            }
            Action::Key(key) => self.shortcut(&key),
        }
    }

    fn job_idle(&self) -> bool {
        !matches!(self.job, Job::Running { .. })
    }

    fn start_job(&mut self, req: SwapRequest) -> Vec<Command> {
        self.job = Job::Running {
            done: 0,
            total: None,
            fps: 0.0,
            eta: None,
            cancelling: false,
        };
        self.notice = None;
        vec![Command::Swap(Box::new(req))]
    }

    fn error(&mut self, text: String) {
        self.notice = Some(Notice { error: true, text });
    }

    /// A fresh preview when there is something to preview.
    fn preview_command(&mut self) -> Option<Command> {
        let target = self.target.as_ref()?;
        if self.sources.is_empty() || self.source_busy || self.preview.playing {
            return None;
        }
        self.preview.busy = true;
        Some(Command::Preview {
            target: target.path.clone(),
            time: self.preview.time,
        })
    }

    /// A change of one option: checked by the settings themselves (the
    /// same rules as `camshow config set`), applied to the engine without
    /// reloading its models, saved to the settings file and previewed.
    fn set_option(&mut self, key: &str, value: NewValue) -> Vec<Command> {
        let change = [(key.to_string(), value)];
        match self.settings.patched(&change) {
            Ok(settings) => {
                self.settings = settings;
                let mut cmds = vec![Command::Settings {
                    settings: Box::new(self.settings.clone()),
                    changes: change.to_vec(),
                }];
                cmds.extend(self.preview_command());
                cmds
            }
            Err(e) => {
                self.error(camshow_core::one_line(&e));
                Vec::new()
            }
        }
    }

    /// Keyboard shortcuts: Ctrl+O source, Ctrl+T target, Ctrl+Enter start,
    /// Escape cancel, Ctrl+L live on/off, Ctrl+M mirror, Ctrl+F find the
    /// people in the target (face mapper), Ctrl+1…4 screens.
    fn shortcut(&mut self, key: &str) -> Vec<Command> {
        match key {
            "Ctrl+Enter" => self.apply(Action::Start),
            "Escape" => {
                if matches!(self.job, Job::Running { .. }) {
                    self.apply(Action::Cancel)
                } else {
                    self.apply(Action::Dismiss)
                }
            }
            "Ctrl+L" => self.apply(Action::ToggleLive),
            "Ctrl+F" => self.apply(Action::Scan),
            "Ctrl+M" => {
                let on = !self.settings.live.mirror;
                self.apply(Action::SetOption {
                    key: "live.mirror".into(),
                    value: NewValue::Json(Value::Bool(on)),
                })
            }
            "Ctrl+O" => vec![Command::PickFile(Pick::Sources)],
            "Ctrl+T" => vec![Command::PickFile(Pick::Target)],
            k => {
                if let Some(n) = k
                    .strip_prefix("Ctrl+")
                    .and_then(|d| d.parse::<usize>().ok())
                    && let Some(screen) = n.checked_sub(1).and_then(|i| Screen::ALL.get(i))
                {
                    return self.apply(Action::Show(*screen));
                }
                Vec::new()
            }
        }
    }
}

/// Why a job ended without output.
#[derive(Debug, Clone, PartialEq)]
pub enum JobError {
    /// Cancel was pressed: nothing written.
    Cancelled,
    /// It failed, with the reason.
    Failed(String),
}

/// What a file chooser is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Source photos.
    Sources,
    /// The target.
    Target,
}

/// A live session to start (camera, size, rate, mirror and outputs are
/// the settings' `live.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRequest {
    /// Source photos.
    pub sources: Vec<PathBuf>,
    /// The face chosen among them, if any.
    pub pick: Option<SourcePick>,
}

/// What the user did, or what the engine thread reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Show a screen.
    Show(Screen),
    /// Close the message.
    Dismiss,
    /// Collect the doctor report again.
    CheckHealth,
    /// The usage terms were accepted.
    AcceptTerms,
    /// Light, dark or the system's.
    SetTheme(Theme),
    /// The window was moved or resized.
    WindowMoved(crate::prefs::Geometry),
    /// Play the output video (after a video swap).
    PlayResult,
    /// Source photos chosen (dialog or drop).
    ChooseSources(Vec<PathBuf>),
    /// The source passed the gate; its faces.
    SourceReady(Vec<FaceThumb>),
    /// Use this face of the sources' (index into their faces).
    PickSourceFace(usize),
    /// The source was refused.
    SourceFailed(String),
    /// A target chosen.
    ChooseTarget(PathBuf),
    /// The target was probed.
    TargetReady(TargetInfo),
    /// The target cannot be used.
    TargetFailed(String),
    /// An output path chosen.
    ChooseOutput(PathBuf),
    /// The reference face chosen.
    ChooseReference(PathBuf),
    /// One option changed (`key` as in `camshow config set`).
    SetOption {
        /// The key.
        key: String,
        /// Its new value (JSON from a control, or text typed like the file).
        value: NewValue,
    },
    /// The preview moved to this time of the video.
    Scrub(f64),
    /// The before/after divider moved.
    SetSplit(u8),
    /// Play the target processed in real time, or stop.
    PlayPreview(bool),
    /// A preview picture is ready (at `time` in the video).
    PreviewReady {
        /// How long it took.
        millis: f64,
        /// Where in the video.
        time: f64,
    },
    /// The preview failed.
    PreviewFailed(String),
    /// Playing reached the end.
    PlayEnded,
    /// Start the swap.
    Start,
    /// Cancel the swap.
    Cancel,
    /// The swap's progress.
    Progress {
        /// Frames done.
        done: u64,
        /// Frames in all.
        total: Option<u64>,
        /// Speed.
        fps: f64,
        /// Seconds left.
        eta: Option<f64>,
    },
    /// The swap ended.
    Finished(Result<JobDone, JobError>),
    /// Start or stop live.
    ToggleLive,
    /// Live figures.
    LiveStats {
        /// Output frames per second.
        out_fps: f64,
        /// Median latency.
        latency_ms: f64,
        /// Frames shown.
        frames: u64,
    },
    /// Where the MJPEG stream is served (none: not served).
    LiveMjpegAt(Option<String>),
    /// Live stopped (with the reason when it failed).
    LiveEnded(Result<(), String>),
    /// Scan the target for people.
    Scan,
    /// The scan's people.
    Scanned {
        /// The face map file.
        map: PathBuf,
        /// The people.
        persons: Vec<Person>,
    },
    /// The scan failed.
    ScanFailed(String),
    /// A source photo dropped on a person (none: leave untouched).
    AssignPerson {
        /// The person's index.
        person: usize,
        /// The photo.
        source: Option<PathBuf>,
    },
    /// Swap with the face map.
    StartMapped,
    /// The doctor report.
    HealthReady(Health),
    /// Download a model.
    Fetch(String),
    /// A download's progress.
    FetchProgress {
        /// The model.
        id: String,
        /// Done, 0–1.
        fraction: f64,
    },
    /// A download ended.
    Fetched {
        /// The model.
        id: String,
        /// Why it failed.
        result: Result<(), String>,
    },
    /// Something failed.
    Error(String),
    /// A keyboard shortcut (`Ctrl+Enter`, `Escape`, …).
    Key(String),
}

/// What the engine thread must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Check the source photos and find their faces (the chosen one used).
    PrepareSource {
        /// The photos.
        photos: Vec<PathBuf>,
        /// The face chosen, if any.
        pick: Option<SourcePick>,
    },
    /// Probe the target.
    ProbeTarget(PathBuf),
    /// Preview the current settings on the target at `time`.
    Preview {
        /// The target.
        target: PathBuf,
        /// Where in the video.
        time: f64,
    },
    /// Play the target processed from `time`.
    PlayFrom(f64),
    /// Play the output video as it was written.
    PlayOutput(PathBuf),
    /// Stop playing.
    StopPlaying,
    /// New settings: reconfigure the engine (and live), save `changes` to
    /// the settings file.
    Settings {
        /// The settings.
        settings: Box<Settings>,
        /// What changed.
        changes: Vec<(String, NewValue)>,
    },
    /// Run a swap.
    Swap(Box<SwapRequest>),
    /// Cancel the swap.
    Cancel,
    /// Start live.
    LiveStart(LiveRequest),
    /// Stop live.
    LiveStop,
    /// New source while live.
    LiveSource {
        /// The photos.
        photos: Vec<PathBuf>,
        /// The face chosen, if any.
        pick: Option<SourcePick>,
    },
    /// Scan the target for people.
    Scan(PathBuf),
    /// Write the chosen sources into the face map.
    AssignMap {
        /// The map file.
        map: PathBuf,
        /// (person, photo).
        assigned: Vec<(usize, PathBuf)>,
    },
    /// Collect the doctor report.
    Doctor,
    /// Download a model.
    Fetch(String),
    /// Save the window preferences.
    SavePrefs(Prefs),
    /// Open a file chooser.
    PickFile(Pick),
}
