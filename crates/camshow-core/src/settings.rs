//! One description of a run: [`Settings`], the single language of the CLI,
//! the server, the desktop app and the Python package.
//!
//! Defaults and range checks are written here once. A run's settings are
//! built in layers, each one overriding the one below:
//!
//! 1. the defaults ([`Settings::default`]);
//! 2. `camshow.toml` in the platform config folder, or the file named by
//!    `--config` / `CAMSHOW_CONFIG` ([`config_file`]);
//! 3. `CAMSHOW_*` environment variables: the key path in capitals with `_`
//!    between the parts (`CAMSHOW_ENGINE_DETECTOR=blazeface`,
//!    `CAMSHOW_PROCESSORS_0_OPACITY=0.5`, `CAMSHOW_VIDEO_WORKERS=2`);
//! 4. command-line flags, API fields or UI controls ([`Layered::overlay`]).
//!
//! [`Layered`] remembers where each value came from (`camshow config show`).
//! An unknown key is an error with a did-you-mean; a file that does not
//! parse is an error naming its line and column, never a silent reset.
//!
//! ```
//! use camshow_core::settings::{Settings, ProcessorConfig};
//! let mut s = Settings::default();
//! s.set_key("engine.detector", "blazeface")?;
//! s.set_key("processors[0].opacity", "0.5")?;
//! assert!(matches!(&s.processors[0], ProcessorConfig::FaceSwapper(c) if c.opacity == 0.5));
//! assert!(s.validate().is_empty());
//! s.set_key("processors[0].opacity", "3")?;
//! assert_eq!(s.validate()[0].to_string(), "processors[0].opacity: 3 is not in 0–1");
//! # Ok::<(), camshow_core::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::detect::DetectorKind;
use crate::env_vars;
pub use crate::error::Problem;
use crate::error::{Checker, Error, Result, message_of};
pub use crate::process::config::{
    CustomProcessorConfig, DEFAULT_MOUTH_MASK, FaceEnhancerConfig, FaceSwapperConfig,
    ProcessorConfig,
};
pub use crate::runtime::{ProviderConfig, RuntimeSettings};
use crate::select::{DEFAULT_SIMILARITY, SelectMode};
use crate::swap::{PasteBack, SwapperChoice};

/// The settings file format version this build reads and writes.
pub const VERSION: u32 = 1;

/// Everything that describes a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Settings format version (1).
    pub version: u32,
    /// Detection, selection and the swapper.
    pub engine: EngineSettings,
    /// The frame processor chain, run in this order on the same analysed faces.
    pub processors: Vec<ProcessorConfig>,
    /// ONNX Runtime: execution providers and threads.
    pub runtime: RuntimeSettings,
    /// Models folder (default: `CAMSHOW_MODELS`, else the platform data folder).
    pub models_dir: Option<PathBuf>,
    /// The FFmpeg tools.
    pub ffmpeg: FfmpegSettings,
    /// Video jobs.
    pub video: VideoSettings,
    /// Live sessions.
    pub live: LiveSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            version: VERSION,
            engine: EngineSettings::default(),
            processors: vec![ProcessorConfig::FaceSwapper(FaceSwapperConfig::default())],
            runtime: RuntimeSettings::default(),
            models_dir: None,
            ffmpeg: FfmpegSettings::default(),
            video: VideoSettings::default(),
            live: LiveSettings::default(),
        }
    }
}

/// How several source photos of one person become one identity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceAverage {
    /// The mean of the normed embeddings.
    #[default]
    Mean,
    /// The element-wise median (robust to one odd photo).
    Median,
}

impl std::str::FromStr for SourceAverage {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mean" => Ok(Self::Mean),
            "median" => Ok(Self::Median),
            _ => Err(Error::InvalidInput(format!(
                "unknown source average {s:?} (mean, median)"
            ))),
        }
    }
}

/// Detection, selection and the swapper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    /// Face detector: centerface, blazeface (fastest), scrfd.
    pub detector: DetectorKind,
    /// Swapper: auto (inswapper if installed, else classic), inswapper, classic.
    pub swapper: SwapperChoice,
    /// Which target faces: one (the most prominent), many, or reference.
    pub selector: SelectMode,
    /// Minimum cosine similarity to the reference face (−1–1).
    #[schemars(range(min = -1.0, max = 1.0))]
    pub similarity: f32,
    /// Paste-back: fast, reference (insightface's) or seamless (Poisson).
    pub paste_back: PasteBack,
    /// How several source photos are combined into one identity.
    pub source_average: SourceAverage,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            detector: DetectorKind::default(),
            swapper: SwapperChoice::default(),
            selector: SelectMode::default(),
            similarity: DEFAULT_SIMILARITY,
            paste_back: PasteBack::default(),
            source_average: SourceAverage::default(),
        }
    }
}

/// Where the FFmpeg tools are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FfmpegSettings {
    /// The `ffmpeg` program (default: `ffmpeg` on PATH); `ffprobe` is looked
    /// for beside it.
    pub path: Option<PathBuf>,
}

/// Video jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct VideoSettings {
    /// Parallel frame workers (0 = one per CPU core).
    #[schemars(range(max = 1024))]
    pub workers: usize,
    /// Video encoder: `auto` (VP9 for .webm; H.264 otherwise, with NVENC where it works on this machine), or one that works here (`camshow doctor` lists them).
    pub encoder: String,
    /// Quality 0 (best) – 51, mapped per encoder.
    #[schemars(range(max = 51))]
    pub quality: u8,
    /// Keep the source frame rate (else `fps`).
    pub keep_fps: bool,
    /// Output frame rate when `keep_fps` is off.
    #[schemars(range(min = 1, max = 1000))]
    pub fps: Option<u32>,
    /// Keep the source audio.
    pub keep_audio: bool,
    /// Also write every processed frame as PNG into `<output>-frames/`.
    pub keep_frames: bool,
}

impl Default for VideoSettings {
    fn default() -> Self {
        Self {
            workers: 0,
            encoder: "auto".into(),
            quality: 18,
            keep_fps: true,
            fps: None,
            keep_audio: true,
            keep_frames: false,
        }
    }
}

/// The output frame rate when `keep_fps` is off and `fps` is not set.
pub const DEFAULT_FPS: u32 = 30;

impl VideoSettings {
    /// The output frame rate: `None` keeps the source's.
    pub fn output_fps(&self) -> Option<u32> {
        (!self.keep_fps).then(|| self.fps.unwrap_or(DEFAULT_FPS))
    }

    /// The number of frame workers in force (`workers`, or one per core).
    pub fn effective_workers(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(2, usize::from)
        }
    }
}

/// Live sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LiveSettings {
    /// Camera id (`camshow cameras`), `file:CLIP` or `test` (default: the first camera).
    pub camera: Option<String>,
    /// Capture size asked of the camera, `WIDTHxHEIGHT`.
    pub resolution: Option<String>,
    /// Capture frame rate asked of the camera.
    #[schemars(range(min = 0.1, max = 1000.0))]
    pub fps: Option<f64>,
    /// Flip the picture left–right.
    pub mirror: bool,
    /// Draw fps and latency on the stream.
    pub overlay: bool,
    /// Show a preview window.
    pub preview: bool,
    /// Serve MJPEG over HTTP at this address (e.g. `127.0.0.1:8090`).
    pub mjpeg: Option<String>,
    /// v4l2loopback device to write to (Linux).
    pub virtual_camera: Option<PathBuf>,
    /// Frames between two runs of the full-frame face detector (1: every
    /// frame); in between, each tracked face is found again in its
    /// neighbourhood, and a face that is lost brings the full detector back
    /// at once.
    #[schemars(range(min = 1, max = 1000))]
    pub detect_every: u32,
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            camera: None,
            resolution: None,
            fps: None,
            mirror: false,
            overlay: false,
            preview: false,
            mjpeg: None,
            virtual_camera: None,
            detect_every: 30,
        }
    }
}

/// Upper bound for counts such as threads and workers.
pub const MAX_THREADS: usize = 1024;

/// Parses `WIDTHxHEIGHT` (16×16 to 7680×4320).
pub fn parse_resolution(s: &str) -> Result<(u32, u32)> {
    let bad = || Error::InvalidInput(format!("{s:?} is not WIDTHxHEIGHT (e.g. 1280x720)"));
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u32, u32) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    if !(16..=7680).contains(&w) || !(16..=4320).contains(&h) {
        return Err(Error::InvalidInput(format!(
            "{s} is out of range (16x16 to 7680x4320)"
        )));
    }
    Ok((w, h))
}

/// Where `given` has a value of another shape (object, array, scalar) than
/// `made` has at the same place: the first such path. Serde reads a struct
/// from an array of its fields too; the settings' JSON form does not.
fn shape_mismatch(given: &Value, made: &Value, path: &str) -> Option<String> {
    let at = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (given, made) {
        (Value::Object(g), Value::Object(m)) => g
            .iter()
            .find_map(|(k, v)| m.get(k).and_then(|mv| shape_mismatch(v, mv, &at(k)))),
        (Value::Array(g), Value::Array(m)) => g
            .iter()
            .zip(m)
            .enumerate()
            .find_map(|(i, (a, b))| shape_mismatch(a, b, &format!("{path}[{i}]"))),
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Object(_) | Value::Array(_), _) | (_, Value::Object(_) | Value::Array(_)) => {
            Some(if path.is_empty() {
                "settings".into()
            } else {
                path.to_string()
            })
        }
        _ => None,
    }
}

impl Settings {
    /// Reads whole settings from their JSON form (as the HTTP API and
    /// `GET /v1/settings` give them), then checks them.
    ///
    /// # Errors
    /// Unknown keys, values of the wrong type or shape, or values out of range.
    pub fn from_json(v: &Value) -> Result<Self> {
        let settings: Self = serde_json::from_value(v.clone())
            .map_err(|e| Error::InvalidInput(format!("not valid settings: {e}")))?;
        let made = serde_json::to_value(&settings)
            .map_err(|e| Error::Internal(format!("settings to JSON: {e}")))?;
        if let Some(path) = shape_mismatch(v, &made, "") {
            return Err(Error::InvalidInput(format!(
                "not valid settings: {path} has the wrong type"
            )));
        }
        settings.check()?;
        Ok(settings)
    }

    /// Every problem, each with its field path; empty when the settings are valid.
    pub fn validate(&self) -> Vec<Problem> {
        let mut c = Checker::default();
        if self.version != VERSION {
            c.push(
                "version",
                format!(
                    "{} is not a settings version this build reads ({VERSION})",
                    self.version
                ),
            );
        }
        c.range(
            "engine.similarity",
            f64::from(self.engine.similarity),
            -1.0,
            1.0,
        );
        if self.processors.is_empty() {
            c.push("processors", "the frame processor chain is empty");
        }
        for (i, p) in self.processors.iter().enumerate() {
            if self.processors[..i].iter().any(|q| q.id() == p.id()) {
                c.push(
                    format!("processors[{i}]"),
                    format!("{} is in the chain twice", p.id()),
                );
            }
            p.validate(&format!("processors[{i}]"), &mut c);
        }
        if self.runtime.intra_threads > MAX_THREADS {
            c.push(
                "runtime.intra_threads",
                format!("{} is more than {MAX_THREADS}", self.runtime.intra_threads),
            );
        }
        for (i, p) in self.runtime.providers.iter().enumerate() {
            let at = |field: &str| format!("runtime.providers[{i}]{field}");
            // The same provider twice only for models apart.
            let overlaps = |q: &crate::runtime::ProviderConfig| {
                p.models.is_empty()
                    || q.models.is_empty()
                    || p.models.iter().any(|m| q.models.contains(m))
            };
            if self.runtime.providers[..i]
                .iter()
                .any(|q| q.kind == p.kind && overlaps(q))
            {
                c.push(
                    at(""),
                    format!("{} is listed twice for the same models", p.kind),
                );
            }
            if p.device_id.is_some_and(|d| d < 0) || p.devices.iter().any(|&d| d < 0) {
                c.push(at(".device_id"), "must be 0 or more");
            }
            if !p.devices.is_empty() {
                if !p.is_gpu() {
                    c.push(at(".devices"), format!("{} has no GPUs to list", p.kind));
                }
                if p.device_id.is_some() {
                    c.push(at(".devices"), "give device_id or devices, not both");
                }
                if let Some(d) = p
                    .devices
                    .iter()
                    .enumerate()
                    .find_map(|(j, d)| p.devices[..j].contains(d).then_some(d))
                {
                    c.push(at(".devices"), format!("device {d} is listed twice"));
                }
            }
            if p.conv_search.is_some() && p.kind != crate::runtime::ExecutionProvider::Cuda {
                c.push(at(".conv_search"), "is a CUDA option");
            }
            if p.cuda_graph {
                use crate::models::manifest::FIXED_SHAPE_MODELS;
                if !p.kind.is_nvidia() {
                    c.push(at(".cuda_graph"), "is a CUDA and TensorRT option");
                }
                let which = FIXED_SHAPE_MODELS.join(", ");
                if p.models.is_empty() {
                    c.push(
                        at(".models"),
                        format!("a CUDA graph is for models run at one fixed shape: list them (of {which})"),
                    );
                }
                for m in p
                    .models
                    .iter()
                    .filter(|m| !FIXED_SHAPE_MODELS.contains(&m.as_str()))
                {
                    c.push(
                        at(".models"),
                        format!("{m:?} is not run at one fixed shape, so it cannot have a CUDA graph (these can: {which})"),
                    );
                }
            }
            for m in &p.models {
                if !crate::models::manifest::MANIFEST
                    .iter()
                    .any(|spec| spec.id == m)
                {
                    c.push(
                        at(".models"),
                        format!("{m:?} is not a model (`camshow models list` shows them)"),
                    );
                }
            }
        }
        if self.video.workers > MAX_THREADS {
            c.push(
                "video.workers",
                format!("{} is more than {MAX_THREADS}", self.video.workers),
            );
        }
        if self.video.quality > 51 {
            c.push(
                "video.quality",
                format!("{} is not in 0–51", self.video.quality),
            );
        }
        if self.video.encoder.trim().is_empty() {
            c.push("video.encoder", "is empty");
        }
        if let Some(f) = self.video.fps.filter(|&f| f == 0 || f > 1000) {
            c.push("video.fps", format!("{f} is not in 1–1000"));
        }
        if let Some(r) = &self.live.resolution
            && let Err(e) = parse_resolution(r)
        {
            c.push("live.resolution", message_of(&e));
        }
        if let Some(f) = self.live.fps {
            c.range("live.fps", f, 0.1, 1000.0);
        }
        c.range(
            "live.detect_every",
            f64::from(self.live.detect_every),
            1.0,
            1000.0,
        );
        c.into_problems()
    }

    /// The settings a video job runs with, under one CPU budget: when
    /// `runtime.intra_threads` is 0 (automatic) and the providers are the
    /// CPU's (automatic, or only `cpu` listed), each model gets the cores
    /// shared out among the frame workers (at least one thread), so workers
    /// × threads never exceed the cores. Threads set explicitly (and
    /// `video.workers`) are kept as given, and so is a run with an
    /// accelerator listed (its models are not loaded a second time for
    /// other CPU threads). Measured on two cores in `docs/performance.md`
    /// ("One CPU budget").
    #[must_use]
    pub fn for_video_job(&self) -> Self {
        let mut s = self.clone();
        let cpu_only = s
            .runtime
            .providers
            .iter()
            .all(|p| p.kind == crate::runtime::ExecutionProvider::Cpu);
        if s.runtime.intra_threads == 0 && cpu_only {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            s.runtime.intra_threads = (cores / s.video.effective_workers().max(1)).max(1);
        }
        s
    }

    /// [`Settings::validate`] as a `Result` ([`Error::Settings`] lists every problem).
    pub fn check(&self) -> Result<()> {
        let problems = self.validate();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Settings(problems))
        }
    }

    /// The first face swapper's options, if the chain has one.
    pub fn face_swapper(&self) -> Option<&FaceSwapperConfig> {
        self.processors.iter().find_map(|p| match p {
            ProcessorConfig::FaceSwapper(c) => Some(c),
            _ => None,
        })
    }

    /// The first face enhancer's options, if the chain has one.
    pub fn face_enhancer(&self) -> Option<&FaceEnhancerConfig> {
        self.processors.iter().find_map(|p| match p {
            ProcessorConfig::FaceEnhancer(c) => Some(c),
            _ => None,
        })
    }

    /// The chain's processor ids, in order.
    pub fn processor_ids(&self) -> Vec<&str> {
        self.processors.iter().map(ProcessorConfig::id).collect()
    }

    /// Sets one value by key path (`engine.detector`, `processors[0].opacity`
    /// or `processors.0.opacity`, `runtime.providers`) from its text form, as
    /// `config set`, environment variables and API fields do. The text is read
    /// as a TOML value where it parses as one (`true`, `0.5`, `["box"]`), else
    /// as a string; lists also take `a,b,c`.
    pub fn set_key(&mut self, key: &str, raw: &str) -> Result<()> {
        let path = parse_key(key)?;
        let mut tree = to_tree(self)?;
        check_known(&tree, &path, key)?;
        set_text(&mut tree, &path, raw)?;
        *self = from_tree(tree)?;
        Ok(())
    }

    /// The JSON Schema of the settings (the server's capabilities endpoint and
    /// the desktop forms are built from it; `docs/settings.schema.json`).
    pub fn json_schema() -> Value {
        serde_json::to_value(schemars::schema_for!(Settings)).unwrap_or(Value::Null)
    }

    /// The settings as TOML text (the `camshow.toml` format).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self)
            .map_err(|e| Error::Internal(format!("writing settings as TOML: {e}")))
    }
}

/// One option of the settings, as a form needs it (from the JSON schema,
/// so it is never declared twice): `camshow config schema`, the server's
/// `/v1/capabilities`, the desktop's forms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptionInfo {
    /// Key as `config set` takes it (`video.quality`; processor options as
    /// `processors[].opacity`, with `processor` saying whose).
    pub key: String,
    /// The processor the option belongs to (`face_swapper`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processor: Option<String>,
    /// JSON type: `boolean`, `integer`, `number`, `string`, `array`, `object`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether `null` (unset) is allowed.
    pub nullable: bool,
    /// Default value.
    pub default: Value,
    /// Smallest value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    /// Largest value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    /// The values allowed, for a choice.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Value>,
    /// What it does.
    pub description: String,
}

impl Settings {
    /// Every option with its type, default, range and choices, in key order.
    pub fn options() -> Vec<OptionInfo> {
        let schema = Self::json_schema();
        let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
        let mut out = Vec::new();
        collect_options(&schema, &defs, "", None, &mut out);
        out.sort_by(|a, b| (&a.key, &a.processor).cmp(&(&b.key, &b.processor)));
        out
    }
}

/// Follows a `$ref` into `defs`.
fn resolve<'a>(node: &'a Value, defs: &'a Value) -> &'a Value {
    node.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| defs.get(name))
        .unwrap_or(node)
}

fn collect_options(
    node: &Value,
    defs: &Value,
    prefix: &str,
    processor: Option<&str>,
    out: &mut Vec<OptionInfo>,
) {
    let Some(props) = resolve(node, defs)
        .get("properties")
        .and_then(Value::as_object)
    else {
        return;
    };
    for (name, prop) in props {
        if name == "version" && prefix.is_empty() {
            continue;
        }
        let key = format!("{prefix}{name}");
        let target = resolve(prop, defs);
        // The processor chain: each kind's options.
        let variants = prop
            .get("items")
            .map(|i| resolve(i, defs))
            .and_then(|i| i.get("oneOf"))
            .and_then(Value::as_array)
            .filter(|vs| vs.iter().all(|v| v.get("properties").is_some()));
        if let Some(variants) = variants {
            for v in variants {
                let kind = v
                    .pointer("/properties/type/const")
                    .and_then(Value::as_str)
                    .unwrap_or("custom");
                collect_options(v, defs, &format!("{key}[]."), Some(kind), out);
            }
            continue;
        }
        if target.get("properties").is_some() {
            collect_options(target, defs, &format!("{key}."), processor, out);
            continue;
        }
        if name == "type" && processor.is_some() {
            continue;
        }
        let types: Vec<&str> = match prop.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let choices: Vec<Value> = target
            .get("oneOf")
            .or_else(|| target.get("anyOf"))
            .and_then(Value::as_array)
            .map(|vs| vs.iter().filter_map(|v| v.get("const").cloned()).collect())
            .or_else(|| target.get("enum").and_then(Value::as_array).cloned())
            .unwrap_or_default();
        let fallback = if choices.is_empty() {
            "object"
        } else {
            "string"
        };
        let kind = types
            .iter()
            .find(|t| **t != "null")
            .copied()
            .unwrap_or(fallback)
            .to_string();
        out.push(OptionInfo {
            key,
            processor: processor.map(str::to_string),
            kind,
            nullable: types.contains(&"null")
                || prop
                    .get("anyOf")
                    .and_then(Value::as_array)
                    .is_some_and(|a| {
                        a.iter()
                            .any(|v| v.get("type") == Some(&Value::from("null")))
                    }),
            default: prop.get("default").cloned().unwrap_or(Value::Null),
            minimum: prop.get("minimum").and_then(Value::as_f64),
            maximum: prop.get("maximum").and_then(Value::as_f64),
            choices,
            description: prop
                .get("description")
                .or_else(|| target.get("description"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        });
    }
}

/// One part of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn parse_key(key: &str) -> Result<Vec<Seg>> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            match name.parse::<usize>() {
                Ok(i) if !out.is_empty() => out.push(Seg::Index(i)),
                _ => out.push(Seg::Key(name.to_string())),
            }
        }
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| bad_key(key))?;
            out.push(Seg::Index(r[..end].parse().map_err(|_| bad_key(key))?));
            rest = &r[end + 1..];
        }
        if !rest.is_empty() || (name.is_empty() && part.is_empty()) {
            return Err(bad_key(key));
        }
    }
    if out.is_empty() {
        return Err(bad_key(key));
    }
    Ok(out)
}

fn bad_key(key: &str) -> Error {
    Error::InvalidInput(format!(
        "{key:?} is not a settings key (e.g. engine.detector or processors[0].opacity)"
    ))
}

fn display_path(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(i) => {
                let _ = std::fmt::Write::write_fmt(&mut s, format_args!("[{i}]"));
            }
        }
    }
    s
}

fn to_tree(s: &Settings) -> Result<Value> {
    serde_json::to_value(s).map_err(|e| Error::Internal(format!("settings to JSON: {e}")))
}

fn from_tree(tree: Value) -> Result<Settings> {
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        Error::Settings(vec![Problem {
            path: if path == "." { "settings".into() } else { path },
            message: e.into_inner().to_string(),
        }])
    })
}

fn lookup<'a>(tree: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(tree, |v, seg| match seg {
        Seg::Key(k) => v.get(k),
        Seg::Index(i) => v.get(i),
    })
}

/// The keys a value at `path` may have: those of the tree itself, and for a
/// processor, those of its type's defaults (a key left at None is still known).
fn known_keys(tree: &Value, path: &[Seg]) -> Vec<String> {
    let mut keys: Vec<String> = lookup(tree, path)
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    if let [Seg::Key(p), Seg::Index(_)] = path
        && p == "processors"
        && let Some(kind) = lookup(tree, path)
            .and_then(|v| v.get("type"))
            .and_then(Value::as_str)
        && let Some(d) = ProcessorConfig::default_for(kind)
        && let Ok(Value::Object(o)) = serde_json::to_value(d)
    {
        keys.extend(o.keys().cloned());
    }
    keys.sort();
    keys.dedup();
    keys
}

/// An unknown key is an error naming the closest known one.
fn check_known(tree: &Value, path: &[Seg], shown: &str) -> Result<()> {
    for (depth, seg) in path.iter().enumerate() {
        let parent = &path[..depth];
        let Some(node) = lookup(tree, parent) else {
            return Ok(());
        };
        match seg {
            Seg::Key(k) => {
                if node.get("type").is_some_and(|t| t == "custom") && depth >= 2 {
                    return Ok(());
                }
                let keys = known_keys(tree, parent);
                if node.is_object() && !keys.contains(k) {
                    return Err(unknown_key(shown, k, &keys));
                }
                if !node.is_object() {
                    return Err(Error::InvalidInput(format!(
                        "{} has no key {k:?}",
                        display_path(parent)
                    )));
                }
            }
            Seg::Index(i) => {
                let len = node.as_array().map(Vec::len);
                match len {
                    Some(n) if *i <= n => {}
                    Some(n) => {
                        return Err(Error::InvalidInput(format!(
                            "{} has {n} entries; index {i} is past the end",
                            display_path(parent)
                        )));
                    }
                    None => {
                        return Err(Error::InvalidInput(format!(
                            "{} is not a list",
                            display_path(parent)
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

fn unknown_key(shown: &str, key: &str, known: &[String]) -> Error {
    let best = known
        .iter()
        .map(|k| (levenshtein(key, k), k))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, k)| *d <= 2.max(k.len() / 3));
    Error::UnknownSetting {
        key: shown.to_string(),
        hint: match best {
            Some((_, k)) => format!("; did you mean `{k}`?"),
            None => format!(" (known here: {})", known.join(", ")),
        },
    }
}

/// Edit distance between two short strings.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Reads a value's text form, shaped by the value it replaces.
fn text_value(raw: &str, current: Option<&Value>) -> Value {
    let parsed = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .and_then(|v| serde_json::to_value(v).ok());
    match (current, parsed) {
        (Some(Value::String(_)), _) => Value::String(raw.to_string()),
        (Some(Value::Array(_)), Some(v @ Value::Array(_))) => v,
        (Some(Value::Array(_)), _) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| text_value(s, None))
                .collect(),
        ),
        (_, Some(v)) => v,
        (_, None) => Value::String(raw.to_string()),
    }
}

/// Sets `path` to the text `raw`, typed by [`text_value`]; a text that reads
/// as a number or boolean but belongs in a string setting (`live.camera = 0`)
/// stays a string.
fn set_text(tree: &mut Value, path: &[Seg], raw: &str) -> Result<()> {
    let v = text_value(raw, lookup(tree, path));
    let typed = !v.is_string();
    set_in_tree(tree, path, v)?;
    if typed && from_tree(tree.clone()).is_err() {
        let mut as_text = tree.clone();
        set_in_tree(&mut as_text, path, Value::String(raw.to_string()))?;
        if from_tree(as_text.clone()).is_ok() {
            *tree = as_text;
        }
    }
    Ok(())
}

fn set_in_tree(tree: &mut Value, path: &[Seg], v: Value) -> Result<()> {
    let Some((last, parent)) = path.split_last() else {
        return Ok(());
    };
    let mut node = tree;
    for seg in parent {
        node = match seg {
            Seg::Key(k) => {
                let o = node
                    .as_object_mut()
                    .ok_or_else(|| Error::InvalidInput(format!("{k:?} is not a table")))?;
                o.entry(k.clone())
                    .or_insert_with(|| Value::Object(serde_json::Map::default()))
            }
            Seg::Index(i) => {
                let a = node
                    .as_array_mut()
                    .ok_or_else(|| Error::InvalidInput("not a list".into()))?;
                if *i == a.len() {
                    a.push(Value::Object(serde_json::Map::default()));
                }
                a.get_mut(*i)
                    .ok_or_else(|| Error::InvalidInput(format!("no entry {i}")))?
            }
        };
    }
    match last {
        Seg::Key(k) => {
            let o = node
                .as_object_mut()
                .ok_or_else(|| Error::InvalidInput(format!("{k:?} is not in a table")))?;
            o.insert(k.clone(), v);
        }
        Seg::Index(i) => {
            let a = node
                .as_array_mut()
                .ok_or_else(|| Error::InvalidInput("not a list".into()))?;
            if *i == a.len() {
                a.push(v);
            } else if let Some(slot) = a.get_mut(*i) {
                *slot = v;
            }
        }
    }
    Ok(())
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "layer", content = "from", rename_all = "lowercase")]
pub enum Origin {
    /// The built-in default.
    Default,
    /// The settings file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag, API field or UI control.
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File(p) => write!(f, "file {}", p.display()),
            Self::Env(v) => write!(f, "env {v}"),
            Self::Flag(n) => write!(f, "{n}"),
        }
    }
}

/// Settings built in layers, with where each value came from.
#[derive(Debug, Clone)]
pub struct Layered {
    /// The effective settings.
    pub settings: Settings,
    /// The settings file that was (or would be) read.
    pub file: PathBuf,
    /// Whether the file existed.
    pub file_found: bool,
    origins: BTreeMap<String, Origin>,
}

/// The settings file: `explicit`, else `CAMSHOW_CONFIG`, else
/// `<platform config folder>/camshow-deepfaker/camshow.toml`.
pub fn config_file(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os(env_vars::CAMSHOW_CONFIG)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| crate::paths::config_dir().join("camshow.toml"))
}

/// Environment variables that are not settings (paths of the setup itself).
const NOT_SETTINGS: [&str; 4] = [
    env_vars::CAMSHOW_CACHE,
    env_vars::CAMSHOW_PYTHON,
    env_vars::CAMSHOW_CONFIG,
    env_vars::CAMSHOW_MODELS,
];

impl Layered {
    /// Defaults < the settings file < `CAMSHOW_*` variables of this process.
    pub fn load(config: Option<&Path>) -> Result<Self> {
        let vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self::load_from(&config_file(config), &vars)
    }

    /// Defaults < `file` (if it exists) < the `CAMSHOW_*` entries of `vars`.
    pub fn load_from(file: &Path, vars: &[(String, String)]) -> Result<Self> {
        let mut tree = to_tree(&Settings::default())?;
        let mut origins = BTreeMap::new();
        let file_found = file.is_file();
        if file_found {
            let bytes =
                std::fs::read(file).map_err(Error::io("cannot read settings file", file))?;
            let layer = file_layer(&tree, &bytes, file)?;
            merge(&mut tree, layer.clone());
            for leaf in leaves(&layer, String::new()) {
                origins.insert(leaf, Origin::File(file.to_path_buf()));
            }
        }
        let mut env: Vec<&(String, String)> = vars
            .iter()
            .filter(|(k, _)| k.starts_with("CAMSHOW_") && !NOT_SETTINGS.contains(&k.as_str()))
            .collect();
        env.sort();
        // CAMSHOW_MODELS predates the settings: it sets models_dir.
        if let Some((_, v)) = vars.iter().find(|(k, _)| k == env_vars::CAMSHOW_MODELS)
            && !v.is_empty()
        {
            tree["models_dir"] = Value::String(v.clone());
            origins.insert(
                "models_dir".into(),
                Origin::Env(env_vars::CAMSHOW_MODELS.into()),
            );
        }
        for (k, v) in env {
            let path =
                env_path(&tree, &k["CAMSHOW_".len()..].to_ascii_lowercase()).ok_or_else(|| {
                    let known: Vec<String> = leaves(&tree, String::new())
                        .into_iter()
                        .map(|l| {
                            format!(
                                "CAMSHOW_{}",
                                l.replace(['.', '['], "_")
                                    .replace(']', "")
                                    .to_ascii_uppercase()
                            )
                        })
                        .collect();
                    let e = unknown_key(k, k, &known);
                    match e {
                        Error::UnknownSetting { key, hint } => Error::UnknownSetting {
                            key: format!("{key} (environment variable)"),
                            hint,
                        },
                        other => other,
                    }
                })?;
            set_text(&mut tree, &path, v)?;
            origins.insert(display_path(&path), Origin::Env(k.clone()));
        }
        let settings = from_tree(tree)?;
        settings.check()?;
        Ok(Self {
            settings,
            file: file.to_path_buf(),
            file_found,
            origins,
        })
    }

    /// Applies one overlay (a command-line flag, API field or UI control):
    /// `apply` changes the settings, `key` and `origin` record it.
    pub fn overlay<T>(
        &mut self,
        key: &str,
        origin: &str,
        value: Option<T>,
        apply: impl FnOnce(&mut Settings, T),
    ) {
        if let Some(v) = value {
            apply(&mut self.settings, v);
            self.origins
                .insert(key.to_string(), Origin::Flag(origin.to_string()));
        }
    }

    /// Where the value at `key` came from (a key under a table set by a
    /// layer takes that layer's origin).
    pub fn origin(&self, key: &str) -> Origin {
        let mut best: Option<(&String, &Origin)> = None;
        for (k, o) in &self.origins {
            let under =
                key == k || key.starts_with(&format!("{k}.")) || key.starts_with(&format!("{k}["));
            if under && best.is_none_or(|(b, _)| k.len() >= b.len()) {
                best = Some((k, o));
            }
        }
        best.map_or(Origin::Default, |(_, o)| o.clone())
    }

    /// Every effective value as `(key, value, origin)`, in key order.
    pub fn entries(&self) -> Result<Vec<(String, Value, Origin)>> {
        let tree = to_tree(&self.settings)?;
        let mut out = Vec::new();
        for key in leaves(&tree, String::new()) {
            let path = parse_key(&key)?;
            let v = lookup(&tree, &path).cloned().unwrap_or(Value::Null);
            let o = self.origin(&key);
            out.push((key, v, o));
        }
        Ok(out)
    }
}

/// A settings file's contents (`bytes`, named `file` in errors) as a layer
/// over `tree` (the defaults): parsed, its version checked, unknown keys
/// refused (with a did-you-mean), then wrong types (at their line).
pub fn file_layer(tree: &Value, bytes: &[u8], file: &Path) -> Result<Value> {
    let (text, table) = parse_file_text(bytes, file)?;
    let layer = serde_json::to_value(&table)
        .map_err(|e| Error::Internal(format!("settings file to JSON: {e}")))?;
    check_file_keys(tree, &layer, &mut Vec::new(), file)?;
    toml::from_str::<Settings>(&text).map_err(|e| file_error(file, &text, &e))?;
    Ok(layer)
}

/// Merges a layer (from [`file_layer`]) into a tree.
pub fn merge_layer(tree: &mut Value, layer: Value) {
    merge(tree, layer);
}

/// The defaults as the tree that layers are merged into.
pub fn default_tree() -> Result<Value> {
    to_tree(&Settings::default())
}

/// Reads and parses a settings file: a parse error names its line and column.
pub fn read_file(path: &Path) -> Result<toml::Table> {
    let bytes = std::fs::read(path).map_err(Error::io("cannot read settings file", path))?;
    Ok(parse_file_text(&bytes, path)?.1)
}

/// The file's text and its table.
fn parse_file_text(bytes: &[u8], path: &Path) -> Result<(String, toml::Table)> {
    let bytes = bytes.to_vec();
    let text = String::from_utf8(bytes).map_err(|e| Error::SettingsFile {
        path: path.to_path_buf(),
        line: 0,
        column: 0,
        message: format!("not UTF-8 text ({e})"),
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| file_error(path, &text, &e))?;
    match table.get("version") {
        None => {}
        Some(toml::Value::Integer(v)) if *v == i64::from(VERSION) => {}
        Some(other) => {
            return Err(Error::SettingsFile {
                path: path.to_path_buf(),
                line: 0,
                column: 0,
                message: format!("version {other} is not one this build reads ({VERSION})"),
            });
        }
    }
    Ok((text, table))
}

/// A TOML error in `text` (from `path`), at its line and column.
fn file_error(path: &Path, text: &str, e: &toml::de::Error) -> Error {
    let (line, column) = e.span().map_or((0, 0), |s| line_col(text, s.start));
    Error::SettingsFile {
        path: path.to_path_buf(),
        line,
        column,
        message: e.message().to_string(),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn check_file_keys(
    defaults: &Value,
    layer: &Value,
    path: &mut Vec<Seg>,
    file: &Path,
) -> Result<()> {
    match layer {
        Value::Object(o) => {
            // A chain entry is checked against its own type's keys.
            if let [Seg::Key(p), Seg::Index(_)] = path.as_slice()
                && p == "processors"
                && let Some(kind) = o.get("type").and_then(Value::as_str)
            {
                return check_processor(kind, o, path, file);
            }
            let keys = known_keys(defaults, path);
            for (k, v) in o {
                if !keys.contains(k) {
                    let mut full = path.clone();
                    full.push(Seg::Key(k.clone()));
                    return Err(with_file(unknown_key(&display_path(&full), k, &keys), file));
                }
                path.push(Seg::Key(k.clone()));
                check_file_keys(defaults, v, path, file)?;
                path.pop();
            }
            Ok(())
        }
        Value::Array(a) if matches!(path.as_slice(), [Seg::Key(p)] if p == "processors") => {
            for (i, v) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                check_file_keys(defaults, v, path, file)?;
                path.pop();
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_processor(
    kind: &str,
    o: &serde_json::Map<String, Value>,
    path: &[Seg],
    file: &Path,
) -> Result<()> {
    let Some(d) = ProcessorConfig::default_for(kind) else {
        return Ok(()); // custom (or unknown: the type check reports it)
    };
    let Ok(Value::Object(known)) = serde_json::to_value(d) else {
        return Ok(());
    };
    let keys: Vec<String> = known.keys().cloned().collect();
    for k in o.keys() {
        if !keys.contains(k) {
            let mut full = path.to_vec();
            full.push(Seg::Key(k.clone()));
            return Err(with_file(unknown_key(&display_path(&full), k, &keys), file));
        }
    }
    Ok(())
}

fn with_file(e: Error, file: &Path) -> Error {
    match e {
        Error::UnknownSetting { key, hint } => Error::UnknownSetting {
            key: format!("{key} in {}", file.display()),
            hint,
        },
        other => other,
    }
}

/// Tables merge key by key; anything else (lists included) is replaced.
fn merge(base: &mut Value, layer: Value) {
    match (base, layer) {
        (Value::Object(b), Value::Object(l)) => {
            for (k, v) in l {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Key paths of every leaf (lists of scalars count as one leaf).
fn leaves(v: &Value, prefix: String) -> Vec<String> {
    match v {
        Value::Object(o) => o
            .iter()
            .flat_map(|(k, v)| {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(v, p)
            })
            .collect(),
        Value::Array(a) if a.iter().any(serde_json::Value::is_object) => a
            .iter()
            .enumerate()
            .flat_map(|(i, v)| leaves(v, format!("{prefix}[{i}]")))
            .collect(),
        _ => vec![prefix],
    }
}

/// Resolves `engine_detector` / `processors_0_opacity` against the tree's keys
/// (keys may themselves hold `_`, so every split is tried).
fn env_path(tree: &Value, rest: &str) -> Option<Vec<Seg>> {
    fn walk(node: &Value, rest: &str, path: &mut Vec<Seg>) -> bool {
        if rest.is_empty() {
            return true;
        }
        match node {
            Value::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
                for k in keys {
                    if let Some(after) = rest.strip_prefix(k.as_str())
                        && (after.is_empty() || after.starts_with('_'))
                    {
                        path.push(Seg::Key(k.clone()));
                        if walk(&o[k], after.trim_start_matches('_'), path) {
                            return true;
                        }
                        path.pop();
                    }
                }
                false
            }
            Value::Array(a) => {
                let (num, after) = rest.split_once('_').unwrap_or((rest, ""));
                let Ok(i) = num.parse::<usize>() else {
                    return false;
                };
                let Some(child) = a.get(i) else { return false };
                path.push(Seg::Index(i));
                if walk(child, after, path) {
                    return true;
                }
                path.pop();
                false
            }
            _ => false,
        }
    }
    let mut path = Vec::new();
    walk(tree, rest, &mut path).then_some(path)
}

/// A new value for one setting, as text (`config set`, typed like the
/// settings file) or as a JSON value (the HTTP API, the UI, Python).
#[derive(Debug, Clone, PartialEq)]
pub enum NewValue {
    /// Text, typed by the setting it replaces (`0.5`, `true`, `cuda,cpu`).
    Text(String),
    /// A JSON value, taken as it is.
    Json(Value),
}

fn set_new(tree: &mut Value, path: &[Seg], v: &NewValue) -> Result<()> {
    match v {
        NewValue::Text(raw) => set_text(tree, path, raw),
        NewValue::Json(v) => set_in_tree(tree, path, v.clone()),
    }
}

impl Settings {
    /// These settings with `changes` (`(key, value)`, keys as in
    /// `config set`: `processors[0].opacity`) applied and checked; unknown
    /// keys, wrong types and values out of range are errors naming the key.
    pub fn patched(&self, changes: &[(String, NewValue)]) -> Result<Self> {
        let mut tree = to_tree(self)?;
        for (key, v) in changes {
            let keys = parse_key(key)?;
            check_known(&tree, &keys, key)?;
            set_new(&mut tree, &keys, v)?;
        }
        let settings = from_tree(tree)?;
        settings.check()?;
        Ok(settings)
    }
}

/// Sets `key` to `raw` in the settings file at `path` (created if missing),
/// after checking that the result is valid; written atomically.
pub fn set_in_file(path: &Path, key: &str, raw: &str) -> Result<Settings> {
    patch_file(path, &[(key.to_string(), NewValue::Text(raw.to_string()))])
}

/// Applies `changes` to the settings file at `path` (created if missing):
/// all of them or, when one is invalid, none; written atomically. Returns
/// the settings the file now gives.
pub fn patch_file(path: &Path, changes: &[(String, NewValue)]) -> Result<Settings> {
    let table = if path.is_file() {
        read_file(path)?
    } else {
        toml::Table::new()
    };
    let mut layer = serde_json::to_value(&table).map_err(|e| Error::Internal(e.to_string()))?;
    for (key, new) in changes {
        let keys = parse_key(key)?;
        // Check the key and the value on the settings the file would give.
        let mut merged = to_tree(&Settings::default())?;
        merge(&mut merged, layer.clone());
        check_known(&merged, &keys, key)?;
        let mut probe = merged.clone();
        set_new(&mut probe, &keys, new)?;
        let v = lookup(&probe, &keys).cloned().unwrap_or(Value::Null);
        // Lists of tables (the chain) are written whole so that the file stays complete.
        if let Some(Seg::Key(top)) = keys.first()
            && top == "processors"
            && keys.len() > 1
        {
            let mut chain = merged
                .get("processors")
                .cloned()
                .unwrap_or(Value::Array(Vec::new()));
            set_in_tree(&mut chain, &keys[1..], v)?;
            layer["processors"] = chain;
        } else {
            set_in_tree(&mut layer, &keys, v)?;
        }
    }
    layer["version"] = Value::from(VERSION);
    let mut full = to_tree(&Settings::default())?;
    merge(&mut full, layer.clone());
    let settings = from_tree(full)?;
    settings.check()?;
    let table: toml::Table = serde_json::from_value(strip_nulls(layer))
        .map_err(|e| Error::Internal(format!("settings to TOML: {e}")))?;
    write_file(path, &table)?;
    Ok(settings)
}

/// Replaces the settings file at `path` with `settings` (checked first);
/// written atomically.
pub fn save_file(path: &Path, settings: &Settings) -> Result<()> {
    settings.check()?;
    let mut tree = to_tree(settings)?;
    tree["version"] = Value::from(VERSION);
    let table: toml::Table = serde_json::from_value(strip_nulls(tree))
        .map_err(|e| Error::Internal(format!("settings to TOML: {e}")))?;
    write_file(path, &table)
}

/// Removes `key` from the settings file (back to its default), or the whole
/// file's settings when `key` is `None`. Written atomically.
pub fn reset_in_file(path: &Path, key: Option<&str>) -> Result<()> {
    let Some(key) = key else {
        if path.is_file() {
            std::fs::remove_file(path).map_err(Error::io("cannot remove", path))?;
        }
        return Ok(());
    };
    if !path.is_file() {
        return Ok(());
    }
    let table = read_file(path)?;
    let mut layer = serde_json::to_value(&table).map_err(|e| Error::Internal(e.to_string()))?;
    let keys = parse_key(key)?;
    let mut merged = to_tree(&Settings::default())?;
    merge(&mut merged, layer.clone());
    check_known(&merged, &keys, key)?;
    if let Some((last, parent)) = keys.split_last()
        && let Some(node) = lookup_mut(&mut layer, parent)
    {
        match (last, node) {
            (Seg::Key(k), Value::Object(o)) => {
                o.remove(k);
            }
            (Seg::Index(i), Value::Array(a)) if *i < a.len() => {
                a.remove(*i);
            }
            _ => {}
        }
    }
    let table: toml::Table =
        serde_json::from_value(strip_nulls(layer)).map_err(|e| Error::Internal(e.to_string()))?;
    write_file(path, &table)
}

fn lookup_mut<'a>(tree: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(tree, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k),
        Seg::Index(i) => v.get_mut(i),
    })
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

fn write_file(path: &Path, table: &toml::Table) -> Result<()> {
    let text =
        toml::to_string_pretty(table).map_err(|e| Error::Internal(format!("writing TOML: {e}")))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(Error::io("cannot create", &dir))?;
    crate::atomic::write(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_settings_must_have_the_shape_of_settings() {
        let good = serde_json::to_value(Settings::default()).unwrap();
        assert_eq!(Settings::from_json(&good).unwrap(), Settings::default());
        let mut bad = good.clone();
        bad["live"] = serde_json::json!([null, null]);
        let e = Settings::from_json(&bad).unwrap_err().to_string();
        assert!(e.contains("live has the wrong type"), "{e}");
        let mut out_of_range = good;
        out_of_range["processors"][0]["opacity"] = serde_json::json!(3);
        assert!(Settings::from_json(&out_of_range).is_err());
        assert!(Settings::from_json(&serde_json::json!({"nope": 1})).is_err());
    }

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid_and_round_trip_through_toml() {
        let s = Settings::default();
        assert!(s.validate().is_empty(), "{:?}", s.validate());
        let text = s.to_toml().unwrap();
        let back: Settings = toml::from_str(&text).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn a_video_job_shares_the_cores_between_workers_and_model_threads() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let auto = Settings::default().for_video_job();
        assert_eq!(auto.video.effective_workers(), cores);
        assert_eq!(auto.runtime.intra_threads, 1);
        assert!(auto.video.effective_workers() * auto.runtime.intra_threads <= cores);
        let mut one_worker = Settings::default();
        one_worker.video.workers = 1;
        assert_eq!(one_worker.for_video_job().runtime.intra_threads, cores);
        let mut many = Settings::default();
        many.video.workers = cores * 4;
        assert_eq!(many.for_video_job().runtime.intra_threads, 1);
        // Set by the user: kept as given; and so with an accelerator listed.
        let mut given = Settings::default();
        given.runtime.intra_threads = 3;
        assert_eq!(given.for_video_job(), given);
        let mut cuda = Settings::default();
        cuda.runtime.providers = vec![crate::runtime::ProviderConfig::new(
            crate::runtime::ExecutionProvider::Cuda,
        )];
        assert_eq!(cuda.for_video_job(), cuda);
    }

    #[test]
    fn validate_reports_every_problem_with_its_path() {
        let mut s = Settings::default();
        s.processors
            .push(ProcessorConfig::FaceEnhancer(FaceEnhancerConfig {
                blend: 140,
                weight: 2.0,
                ..Default::default()
            }));
        s.video.quality = 60;
        s.runtime.intra_threads = 100_000;
        let p: Vec<String> = s.validate().iter().map(ToString::to_string).collect();
        assert!(
            p.contains(&"processors[1].blend: 140 is not in 0–100".to_string()),
            "{p:?}"
        );
        assert!(
            p.contains(&"processors[1].weight: 2 is not in 0–1".to_string()),
            "{p:?}"
        );
        assert!(
            p.contains(&"video.quality: 60 is not in 0–51".to_string()),
            "{p:?}"
        );
        assert!(
            p.iter().any(|x| x.starts_with("runtime.intra_threads")),
            "{p:?}"
        );
        s.processors
            .push(ProcessorConfig::FaceSwapper(FaceSwapperConfig::default()));
        assert!(s.validate().iter().any(|x| x.path == "processors[2]"));
    }

    #[test]
    fn keys_parse_in_both_forms() {
        assert_eq!(
            parse_key("processors[0].opacity").unwrap(),
            parse_key("processors.0.opacity").unwrap()
        );
        assert_eq!(
            display_path(&parse_key("processors.1.blend").unwrap()),
            "processors[1].blend"
        );
        assert!(parse_key("").is_err());
        assert!(parse_key("a..b").is_err());
        assert!(parse_key("a[x]").is_err());
    }

    #[test]
    fn providers_per_model_and_per_gpu_plan_each_session() {
        use crate::runtime::{ConvSearch, ExecutionProvider as P};
        let mut s = Settings::default();
        s.set_key(
            "runtime.providers",
            r#"[{kind = "tensorrt", fp16 = true, models = ["inswapper_128"]},
                {kind = "tensorrt", models = ["det_10g"]},
                {kind = "cuda", conv_search = "heuristic", devices = [0, 1]},
                {kind = "tensorrt", cuda_graph = true, models = ["gfpgan_1.4", "gpen_bfr_512"]},
                "cpu"]"#,
        )
        .unwrap();
        assert!(s.validate().is_empty(), "{:?}", s.validate());
        assert_eq!(
            s.runtime.providers[2].conv_search,
            Some(ConvSearch::Heuristic)
        );
        let kinds = |plan: &[crate::runtime::ProviderConfig]| {
            plan.iter()
                .map(|p| (p.kind, p.fp16, p.device_id))
                .collect::<Vec<_>>()
        };
        // In the order listed: CUDA (for every model) before TensorRT.
        let enhancer = &s.runtime.session_plan("gfpgan_1.4", 1)[0];
        assert_eq!(
            kinds(enhancer)[..2],
            [(P::Cuda, false, Some(0)), (P::TensorRt, false, None)]
        );
        assert!(enhancer[1].cuda_graph && !enhancer[0].cuda_graph);
        // The swapper: TensorRT with FP16 first, then CUDA on each GPU in turn.
        let plan = s.runtime.session_plan("inswapper_128", 1);
        assert_eq!(plan.len(), 2, "one session per GPU");
        assert_eq!(
            kinds(&plan[0]),
            [
                (P::TensorRt, true, None),
                (P::Cuda, false, Some(0)),
                (P::Cpu, false, None)
            ]
        );
        assert_eq!(kinds(&plan[1])[1], (P::Cuda, false, Some(1)));
        // The detector gets its own TensorRT entry; the gate only CUDA.
        assert_eq!(
            kinds(&s.runtime.session_plan("det_10g", 1)[0])[0],
            (P::TensorRt, false, None)
        );
        let gate = s.runtime.session_plan("nudenet", 3);
        assert_eq!(gate.len(), 3, "at least the sessions asked for");
        assert_eq!(
            gate.iter().map(|p| kinds(p)[0]).collect::<Vec<_>>(),
            [
                (P::Cuda, false, Some(0)),
                (P::Cuda, false, Some(1)),
                (P::Cuda, false, Some(0))
            ]
        );

        // What is refused, each with its path.
        s.set_key(
            "runtime.providers",
            r#"[{kind = "tensorrt", conv_search = "exhaustive", models = ["inswaper_128", "inswapper_128.onnx"]},
                {kind = "cpu", devices = [0]},
                {kind = "cuda", device_id = 1, devices = [2, 2]},
                {kind = "cuda"},
                {kind = "cpu", cuda_graph = true, models = ["gfpgan_1.4"]},
                {kind = "tensorrt", cuda_graph = true},
                {kind = "cuda", cuda_graph = true, models = ["codeformer", "inswapper_128", "det_10g"]}]"#,
        )
        .unwrap();
        let problems: Vec<String> = s.validate().iter().map(ToString::to_string).collect();
        let has = |path: &str, text: &str| {
            assert!(
                problems
                    .iter()
                    .any(|p| p.contains(path) && p.contains(text)),
                "{path}: {text} in {problems:?}"
            );
        };
        has("runtime.providers[0].conv_search", "CUDA option");
        has(
            "runtime.providers[0].models",
            "\"inswaper_128\" is not a model",
        );
        has("runtime.providers[1].devices", "no GPUs");
        has("runtime.providers[2].devices", "not both");
        has("runtime.providers[2].devices", "device 2 is listed twice");
        has("runtime.providers[3]", "listed twice for the same models");
        has(
            "runtime.providers[4].cuda_graph",
            "CUDA and TensorRT option",
        );
        has(
            "runtime.providers[5].models",
            "list them (of inswapper_128, ",
        );
        has(
            "runtime.providers[6].models",
            "\"codeformer\" is not run at one fixed shape",
        );
        has("runtime.providers[6].models", "\"det_10g\" is not run");
        assert!(
            !problems
                .iter()
                .any(|p| p.contains("\"inswapper_128\" is not run")),
            "{problems:?}"
        );
        assert!(
            s.set_key(
                "runtime.providers",
                r#"[{kind = "cuda", conv_search = "fast"}]"#
            )
            .is_err()
        );
    }

    #[test]
    fn set_key_types_values_and_suggests_names() {
        let mut s = Settings::default();
        s.set_key("video.workers", "3").unwrap();
        s.set_key("engine.swapper", "classic").unwrap();
        s.set_key("processors[0].masks", "box,occlusion").unwrap();
        s.set_key("runtime.providers", r#"[{kind = "cpu"}]"#)
            .unwrap();
        s.set_key("models_dir", "/tmp/m").unwrap();
        // Text that reads as a number stays text where a string belongs.
        s.set_key("live.camera", "0").unwrap();
        assert_eq!(s.live.camera.as_deref(), Some("0"));
        s.set_key("live.fps", "25").unwrap();
        assert_eq!(s.live.fps, Some(25.0));
        assert_eq!(s.video.workers, 3);
        assert_eq!(s.engine.swapper, SwapperChoice::Classic);
        assert_eq!(
            s.face_swapper().unwrap().masks,
            [
                crate::process::masks::FaceMaskKind::Box,
                crate::process::masks::FaceMaskKind::Occlusion
            ]
        );
        assert_eq!(
            s.runtime.providers[0].kind,
            crate::runtime::ExecutionProvider::Cpu
        );
        assert_eq!(s.models_dir.as_deref(), Some(Path::new("/tmp/m")));
        let e = s
            .set_key("engine.detecter", "scrfd")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `detector`"), "{e}");
        let e = s.set_key("video.workers", "many").unwrap_err().to_string();
        assert!(e.contains("video.workers"), "{e}");
        let e = s
            .set_key("engine.detector", "yolo")
            .unwrap_err()
            .to_string();
        assert!(e.contains("engine.detector"), "{e}");
        // A new chain entry: index == length appends.
        s.set_key("processors[1]", r#"{type = "face_enhancer", blend = 50}"#)
            .unwrap();
        assert_eq!(s.face_enhancer().unwrap().blend, 50);
    }

    #[test]
    fn layers_file_then_env_then_flags_each_win() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("camshow.toml");
        std::fs::write(
            &file,
            "version = 1\n[engine]\ndetector = \"blazeface\"\nsimilarity = 0.5\n[video]\nworkers = 2\nquality = 20\n",
        )
        .unwrap();
        let l = Layered::load_from(
            &file,
            &vars(&[
                ("CAMSHOW_VIDEO_WORKERS", "3"),
                ("CAMSHOW_ENGINE_SIMILARITY", "0.6"),
                ("CAMSHOW_LIVE_CAMERA", "0"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(
            l.settings.live.camera.as_deref(),
            Some("0"),
            "a camera index stays text"
        );
        assert_eq!(
            l.settings.engine.detector,
            DetectorKind::BlazeFace,
            "file over default"
        );
        assert_eq!(l.settings.video.quality, 20, "file over default");
        assert_eq!(l.settings.video.workers, 3, "env over file");
        assert_eq!(l.settings.engine.similarity, 0.6, "env over file");
        assert_eq!(l.origin("engine.detector"), Origin::File(file.clone()));
        assert_eq!(
            l.origin("video.workers"),
            Origin::Env("CAMSHOW_VIDEO_WORKERS".into())
        );
        assert_eq!(l.origin("engine.paste_back"), Origin::Default);
        let mut l = l;
        l.overlay("video.workers", "--video-workers", Some(4usize), |s, v| {
            s.video.workers = v;
        });
        l.overlay("video.quality", "--video-quality", None::<u8>, |s, v| {
            s.video.quality = v;
        });
        assert_eq!(l.settings.video.workers, 4, "flag over env");
        assert_eq!(
            l.settings.video.quality, 20,
            "an absent flag changes nothing"
        );
        assert_eq!(
            l.origin("video.workers"),
            Origin::Flag("--video-workers".into())
        );
        // Processors from env; the legacy models variable.
        let l = Layered::load_from(
            &dir.path().join("none.toml"),
            &vars(&[
                ("CAMSHOW_PROCESSORS_0_OPACITY", "0.25"),
                ("CAMSHOW_MODELS", "/m"),
            ]),
        )
        .unwrap();
        assert_eq!(l.settings.face_swapper().unwrap().opacity, 0.25);
        assert_eq!(l.settings.models_dir.as_deref(), Some(Path::new("/m")));
        assert!(!l.file_found);
    }

    #[test]
    fn unknown_keys_and_corrupt_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("camshow.toml");
        std::fs::write(&file, "[engine]\ndetecter = \"scrfd\"\n").unwrap();
        let e = Layered::load_from(&file, &[]).unwrap_err().to_string();
        assert!(
            e.contains("engine.detecter") && e.contains("did you mean `detector`"),
            "{e}"
        );
        std::fs::write(
            &file,
            "[[processors]]\ntype = \"face_enhancer\"\nblnd = 3\n",
        )
        .unwrap();
        let e = Layered::load_from(&file, &[]).unwrap_err().to_string();
        assert!(
            e.contains("processors[0].blnd") && e.contains("`blend`"),
            "{e}"
        );
        std::fs::write(&file, "[engine]\ndetector = \"scrfd\"\nsimilarity = = 3\n").unwrap();
        let e = Layered::load_from(&file, &[]).unwrap_err().to_string();
        assert!(e.contains("line 3, column"), "{e}");
        std::fs::write(&file, "[video]\nquality = \"high\"\n").unwrap();
        let e = Layered::load_from(&file, &[]).unwrap_err().to_string();
        assert!(
            e.contains("line 2, column"),
            "a wrong type names its place: {e}"
        );
        std::fs::write(&file, "version = 7\n").unwrap();
        assert!(
            Layered::load_from(&file, &[])
                .unwrap_err()
                .to_string()
                .contains("version 7")
        );
        std::fs::write(&file, "[video]\nquality = 99\n").unwrap();
        let e = Layered::load_from(&file, &[]).unwrap_err().to_string();
        assert!(e.contains("video.quality: 99"), "{e}");
        std::fs::write(&file, "").unwrap();
        let e = Layered::load_from(&file, &vars(&[("CAMSHOW_VIDEO_WORKRS", "2")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("CAMSHOW_VIDEO_WORKERS"), "{e}");
    }

    #[test]
    fn set_and_reset_in_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub").join("camshow.toml");
        set_in_file(&file, "engine.detector", "blazeface").unwrap();
        set_in_file(&file, "processors[0].opacity", "0.5").unwrap();
        set_in_file(&file, "processors[1]", r#"{type = "face_enhancer"}"#).unwrap();
        set_in_file(&file, "processors[1].blend", "40").unwrap();
        assert!(
            set_in_file(&file, "video.quality", "99").is_err(),
            "invalid values are not written"
        );
        assert!(set_in_file(&file, "video.qualty", "9").is_err());
        let l = Layered::load_from(&file, &[]).unwrap();
        assert_eq!(l.settings.engine.detector, DetectorKind::BlazeFace);
        assert_eq!(l.settings.face_swapper().unwrap().opacity, 0.5);
        assert_eq!(l.settings.face_enhancer().unwrap().blend, 40);
        assert_eq!(l.settings.video.quality, 18);
        assert!(
            std::fs::read_to_string(&file)
                .unwrap()
                .contains("version = 1")
        );
        reset_in_file(&file, Some("engine.detector")).unwrap();
        assert_eq!(
            Layered::load_from(&file, &[])
                .unwrap()
                .settings
                .engine
                .detector,
            DetectorKind::default()
        );
        reset_in_file(&file, None).unwrap();
        assert!(!file.exists());
        let leftovers: Vec<_> = std::fs::read_dir(file.parent().unwrap()).unwrap().collect();
        assert!(leftovers.is_empty(), "no temporary files left");
    }

    #[test]
    fn the_schema_in_docs_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/settings.schema.json");
        let committed: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(
            committed == Settings::json_schema(),
            "docs/settings.schema.json is stale: run `camshow config schema > docs/settings.schema.json`"
        );
        // Every top-level section is described, with the processors' tagged variants.
        for key in [
            "engine",
            "processors",
            "runtime",
            "models_dir",
            "ffmpeg",
            "video",
            "live",
        ] {
            assert!(committed["properties"][key].is_object(), "{key} missing");
        }
        let text = committed.to_string();
        for variant in ["face_swapper", "face_enhancer", "custom"] {
            assert!(text.contains(variant), "{variant} missing");
        }
    }

    #[test]
    fn edit_distance() {
        assert_eq!(levenshtein("detecter", "detector"), 1);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("same", "same"), 0);
    }

    #[test]
    fn patches_apply_all_or_nothing() {
        let base = Settings::default();
        let changes = [
            ("video.quality".to_string(), NewValue::Json(Value::from(30))),
            (
                "processors[0].opacity".to_string(),
                NewValue::Text("0.5".into()),
            ),
        ];
        let s = base.patched(&changes).unwrap();
        assert_eq!(s.video.quality, 30);
        assert!((s.face_swapper().unwrap().opacity - 0.5).abs() < 1e-6);
        // A wrong type, a value out of range and an unknown key each name their key.
        for (key, v, expect) in [
            ("video.quality", Value::from("high"), "video.quality"),
            (
                "video.quality",
                Value::from(99),
                "video.quality: 99 is not in",
            ),
            ("video.qualty", Value::from(9), "did you mean `quality`"),
        ] {
            let e = base
                .patched(&[(key.to_string(), NewValue::Json(v))])
                .unwrap_err()
                .to_string();
            assert!(e.contains(expect), "{key}: {e}");
        }
        // In the file: one bad change and nothing is written.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("camshow.toml");
        let s = patch_file(&file, &changes).unwrap();
        assert_eq!(s.video.quality, 30);
        let bad = [
            ("video.quality".to_string(), NewValue::Json(Value::from(10))),
            ("video.quality".to_string(), NewValue::Json(Value::from(99))),
        ];
        let before = std::fs::read(&file).unwrap();
        assert!(patch_file(&file, &bad).is_err());
        assert_eq!(std::fs::read(&file).unwrap(), before);
        let loaded = Layered::load_from(&file, &[]).unwrap().settings;
        assert_eq!(loaded, s);
        // The whole settings saved, then read back the same.
        let mut whole = Settings::default();
        whole.video.quality = 12;
        save_file(&file, &whole).unwrap();
        assert_eq!(Layered::load_from(&file, &[]).unwrap().settings, whole);
        whole.video.quality = 99;
        assert!(save_file(&file, &whole).is_err());
        assert_eq!(
            Layered::load_from(&file, &[])
                .unwrap()
                .settings
                .video
                .quality,
            12
        );
    }

    #[test]
    fn options_come_from_the_schema_with_ranges_and_choices() {
        let opts = Settings::options();
        let get = |k: &str, p: Option<&str>| {
            opts.iter()
                .find(|o| o.key == k && o.processor.as_deref() == p)
                .unwrap_or_else(|| panic!("{k} missing"))
        };
        let q = get("video.quality", None);
        assert_eq!(
            (q.kind.as_str(), q.minimum, q.maximum),
            ("integer", Some(0.0), Some(51.0))
        );
        assert_eq!(q.default, Value::from(18));
        let d = get("engine.detector", None);
        assert_eq!(d.kind, "string");
        assert_eq!(
            d.choices,
            vec![
                Value::from("centerface"),
                Value::from("blazeface"),
                Value::from("scrfd")
            ]
        );
        let o = get("processors[].opacity", Some("face_swapper"));
        assert_eq!((o.minimum, o.maximum), (Some(0.0), Some(1.0)));
        let b = get("processors[].blend", Some("face_enhancer"));
        assert_eq!(b.kind, "integer");
        let f = get("video.fps", None);
        assert!(f.nullable);
        assert!(
            !opts
                .iter()
                .any(|o| o.key == "version" || o.key.rsplit('.').next() == Some("type"))
        );
        // Every option of the file is there: each key `config show` lists.
        let tree = to_tree(&Settings::default()).unwrap();
        for leaf in leaves(&tree, String::new()) {
            let generic = leaf.replace("processors[0]", "processors[]");
            let top = generic.split('[').next().unwrap_or_default().to_string();
            assert!(
                leaf == "version"
                    || generic.rsplit('.').next() == Some("type")
                    || opts.iter().any(
                        |o| o.key == generic || (top != generic && o.key.starts_with(&generic))
                    ),
                "{leaf} has no option"
            );
        }
    }
}
