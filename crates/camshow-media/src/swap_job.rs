//! A swap, as a request and its outcome: what every front end (CLI, server,
//! desktop, Python) runs. [`run_swap`] decides image or video by the
//! target's content, prepares the source(s) — photos, a folder of photos, a
//! saved identity, or a face map — names the output, applies the no-face
//! rule and writes the result with provenance.
//!
//! ```no_run
//! # fn main() -> camshow_media::Result<()> {
//! use std::sync::atomic::AtomicBool;
//! use camshow_core::{context::EngineContext, settings::Settings};
//! use camshow_media::swap_job::{SwapRequest, run_swap};
//! let settings = Settings::default();
//! let ctx = EngineContext::from_settings(&settings)?;
//! let req = SwapRequest::new(vec!["me.jpg".into()], "group.jpg".into(), "out.png".into());
//! let outcome = run_swap(&ctx, &settings, &req, &|_, _| {}, &AtomicBool::new(false))?;
//! println!("{}", outcome.output.display());
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use camshow_core::context::EngineContext;
use camshow_core::mapping::FaceMap;
use camshow_core::pipeline::{SwapEngine, SwapReport};
use camshow_core::select::SelectMode;
use camshow_core::session::{FrameSession, SourcePlan};
use camshow_core::settings::Settings;
use camshow_core::swap::PreparedSource;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::image_io::{OutputFormat, read_image};
use crate::job::{JobOptions, JobReport, run_video_job};
use crate::provenance::Operation;
use crate::video::{Trim, container_for};

/// What to swap: owned, so a job can move into a thread or task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SwapRequest {
    /// Photos of the person to put in (several photos of one person make one
    /// identity), folders of such photos, or one identity file (`.json`
    /// from `camshow faces identity`). Empty with `map`.
    pub sources: Vec<PathBuf>,
    /// The image or video whose faces are replaced.
    pub target: PathBuf,
    /// Output file, or a folder (then `<source>-<target><ext>` inside it).
    pub output: PathBuf,
    /// Image of the person to replace (with the `reference` selector).
    pub reference_face: Option<PathBuf>,
    /// Face map from `faces scan`: each person gets the source set in the file.
    pub map: Option<PathBuf>,
    /// Video: part of the input to process.
    pub trim: Trim,
    /// Video: process one part only, to be joined with the others by
    /// [`crate::segment::join`] (a cluster's array job).
    #[serde(default)]
    pub segment: Option<crate::segment::Segment>,
    /// The face of a source photo to use, when the user chose one (else
    /// each photo's most prominent face).
    #[serde(default)]
    pub source_face: Option<camshow_core::pipeline::SourcePick>,
}

impl SwapRequest {
    /// Sources onto a target, written to `output`.
    pub fn new(sources: Vec<PathBuf>, target: PathBuf, output: PathBuf) -> Self {
        Self {
            sources,
            target,
            output,
            ..Self::default()
        }
    }
}

/// What a swap did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwapOutcome {
    /// The file written.
    pub output: PathBuf,
    /// Image or video, with its report.
    pub result: SwapResult,
    /// The swapper that ran.
    pub swapper: String,
    /// The processors that ran, in order.
    pub processors: Vec<String>,
    /// Each model with the execution provider it runs on (`name:provider`).
    pub models: Vec<String>,
    /// Why the requested swapper was not used, if it was not.
    pub note: Option<String>,
    /// How many source photos made the identity.
    pub source_photos: usize,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// The per-medium part of a [`SwapOutcome`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SwapResult {
    /// An image.
    Image(SwapReport),
    /// A video.
    Video {
        /// The job's report.
        report: Box<JobReport>,
        /// Where the frames were kept, if asked.
        frames: Option<PathBuf>,
    },
}

/// Image or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// A still picture.
    Image,
    /// Anything else FFmpeg may read.
    Video,
}

/// Whether `path` holds an image or (anything else) a video, by its first
/// bytes, not its name.
pub fn media_kind(path: &Path) -> Result<MediaKind> {
    use std::io::Read;
    let mut head = [0u8; 64];
    let mut f = std::fs::File::open(path).map_err(Error::io("cannot read", path))?;
    let n = f.read(&mut head).map_err(Error::io("cannot read", path))?;
    if n == 0 {
        return Err(Error::Invalid(format!("{} is empty", path.display())));
    }
    if crate::image_io::is_heif(&head[..n]) {
        // A still photo this build cannot decode: reading it says so.
        return Ok(MediaKind::Image);
    }
    Ok(match image::guess_format(&head[..n]) {
        // An animated GIF is a video; a still one is a picture.
        Ok(image::ImageFormat::Gif) => {
            let file = std::fs::File::open(path).map_err(Error::io("cannot read", path))?;
            let frames = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(file))
                .map_or(2, |d| {
                    image::AnimationDecoder::into_frames(d).take(2).count()
                });
            if frames > 1 {
                MediaKind::Video
            } else {
                MediaKind::Image
            }
        }
        Err(_) => MediaKind::Video,
        Ok(_) => MediaKind::Image,
    })
}

/// Deep-Live-Cam's naming when the output is a folder: `<source>-<target><ext>`.
pub fn output_path(output: &Path, source: &Path, target: &Path) -> PathBuf {
    if output.is_dir() {
        output.join(output_name(source, target))
    } else {
        output.to_path_buf()
    }
}

/// `<source>-<target><ext>`, built from the names as the OS has them: a
/// name that is not UTF-8 keeps its bytes (no lossy renaming).
pub fn output_name(source: &Path, target: &Path) -> std::ffi::OsString {
    let mut name = source.file_stem().unwrap_or_default().to_os_string();
    name.push("-");
    name.push(target.file_stem().unwrap_or_default());
    name.push(".");
    name.push(target.extension().unwrap_or(std::ffi::OsStr::new("png")));
    name
}

const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff"];

/// The source photos a list of paths names: files as given, the images
/// inside folders (sorted by name).
pub fn expand_sources(sources: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for s in sources {
        if s.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(s)
                .map_err(Error::io("cannot read folder", s))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                            IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                        })
                })
                .collect();
            if found.is_empty() {
                return Err(Error::Invalid(format!(
                    "the folder {} has no photos",
                    s.display()
                )));
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(s.clone());
        }
    }
    if out.is_empty() {
        return Err(Error::Invalid("no source photo given".into()));
    }
    Ok(out)
}

/// A saved identity: the (averaged) embedding of one person, reusable as a
/// source by swappers that work from an embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityFile {
    /// Format version (1).
    pub version: u32,
    /// What this file is (`camshow-identity`).
    pub kind: String,
    /// Normed identity embedding (ArcFace, 512 values).
    pub embedding: Vec<f32>,
    /// The photos it was made from.
    pub photos: Vec<PathBuf>,
    /// How they were combined (`mean`, `median`).
    pub average: String,
}

impl IdentityFile {
    /// Reads and checks an identity file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io("cannot read", path))?;
        let id: Self = serde_json::from_str(&text).map_err(|e| {
            Error::Invalid(format!("{} is not an identity file: {e}", path.display()))
        })?;
        if id.kind != "camshow-identity" || id.version != 1 {
            return Err(Error::Invalid(format!(
                "{} is not a version 1 camshow identity",
                path.display()
            )));
        }
        if id.embedding.len() != 512 || id.embedding.iter().any(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!(
                "{}: the embedding must be 512 finite numbers (has {})",
                path.display(),
                id.embedding.len()
            )));
        }
        Ok(id)
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json =
            serde_json::to_string_pretty(self).map_err(|e| Error::Internal(e.to_string()))?;
        crate::image_io::write_atomic(path, json.as_bytes())
    }
}

fn is_identity_file(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Prepares the source identity from photos, folders or one identity file
/// (every photo passes the safety gate).
pub fn prepare_source(engine: &SwapEngine, sources: &[PathBuf]) -> Result<PreparedSource> {
    prepare_source_picked(engine, sources, None)
}

/// [`prepare_source`] with the face chosen by the user in one of the photos.
pub fn prepare_source_picked(
    engine: &SwapEngine,
    sources: &[PathBuf],
    pick: Option<camshow_core::pipeline::SourcePick>,
) -> Result<PreparedSource> {
    if let [one] = sources
        && is_identity_file(one)
    {
        let id = IdentityFile::load(one)?;
        return Ok(engine.source_from_embedding(&id.embedding)?);
    }
    let photos = expand_sources(sources)?;
    if let Some(j) = photos.iter().find(|p| is_identity_file(p)) {
        return Err(Error::Invalid(format!(
            "{} is an identity file: give it alone, not with photos",
            j.display()
        )));
    }
    let frames: Vec<(String, camshow_core::Frame)> = photos
        .iter()
        .map(|p| Ok((format!("source image {}", p.display()), read_image(p)?)))
        .collect::<Result<_>>()?;
    let refs: Vec<(String, &camshow_core::Frame)> =
        frames.iter().map(|(n, f)| (n.clone(), f)).collect();
    Ok(engine.prepare_sources_picked(&refs, pick)?)
}

/// The identity file for `photos` (saved by `camshow faces identity`).
pub fn make_identity(engine: &SwapEngine, photos: &[PathBuf]) -> Result<IdentityFile> {
    let expanded = expand_sources(photos)?;
    let frames: Vec<(String, camshow_core::Frame)> = expanded
        .iter()
        .map(|p| Ok((format!("source image {}", p.display()), read_image(p)?)))
        .collect::<Result<_>>()?;
    let refs: Vec<(String, &camshow_core::Frame)> =
        frames.iter().map(|(n, f)| (n.clone(), f)).collect();
    let source = engine.prepare_identity(&refs)?;
    let embedding = source.embedding().map(<[f32]>::to_vec).ok_or_else(|| {
        Error::Invalid(
            "an identity needs model w600k_r50 (install it with `camshow models fetch w600k_r50`)"
                .into(),
        )
    })?;
    Ok(IdentityFile {
        version: 1,
        kind: "camshow-identity".into(),
        embedding,
        photos: expanded,
        average: format!("{:?}", engine.settings().engine.source_average).to_lowercase(),
    })
}

fn load_map_plan(engine: &SwapEngine, path: &Path) -> Result<SourcePlan> {
    let map = FaceMap::load(path)?;
    let mut prepared = Vec::with_capacity(map.people.len());
    for person in &map.people {
        prepared.push(match &person.source {
            Some(src) => {
                let src = if src.is_relative() {
                    path.parent().unwrap_or(Path::new(".")).join(src)
                } else {
                    src.clone()
                };
                Some(prepare_source(engine, &[src]).map_err(|e| Error::Person {
                    person: person.id,
                    source: Box::new(e),
                })?)
            }
            None => None,
        });
    }
    if prepared.iter().all(Option::is_none) {
        return Err(Error::Invalid(format!(
            "no person in {} has a source: set \"source\" to an image path for the people to swap",
            path.display()
        )));
    }
    Ok(SourcePlan::Mapped {
        map: Arc::new(map),
        sources: Arc::new(prepared),
    })
}

/// The source plan for photos/folders/identity `sources`, or a face `map`;
/// with the engine's `reference` selector, the reference face's identity;
/// `pick`: the source face the user chose, if any.
pub fn source_plan(
    engine: &SwapEngine,
    sources: &[PathBuf],
    map: Option<&Path>,
    reference_face: Option<&Path>,
    pick: Option<camshow_core::pipeline::SourcePick>,
) -> Result<SourcePlan> {
    if let Some(path) = map {
        return load_map_plan(engine, path);
    }
    if engine.settings().engine.selector == SelectMode::Reference && reference_face.is_none() {
        return Err(Error::Invalid(
            "the reference selector (engine.selector) needs a reference face image".into(),
        ));
    }
    let source = prepare_source_picked(engine, sources, pick)?;
    let reference = match reference_face {
        Some(p) if engine.settings().engine.selector == SelectMode::Reference => {
            Some(engine.reference_embedding(
                &read_image(p)?,
                &format!("reference image {}", p.display()),
            )?)
        }
        _ => None,
    };
    Ok(SourcePlan::One {
        source: Arc::new(source),
        reference,
    })
}

/// Checks a video job before any model loads: the trim against the
/// target's duration, the output's container, that this FFmpeg offers the
/// encoder, and the segment's range (returned).
pub fn check_video_job(
    settings: &Settings,
    target: &Path,
    out: &Path,
    trim: Trim,
    segment: Option<crate::segment::Segment>,
) -> Result<Option<crate::segment::SegmentPlan>> {
    // FFmpeg lists its encoders while ffprobe reads the target.
    std::thread::scope(|scope| {
        let encoders = scope.spawn(crate::tools::sorted_video_encoders);
        let info = crate::video::probe(target)?;
        trim.validate(info.duration)?;
        let plan = match segment {
            Some(s) => Some(crate::segment::plan(target, &info, s)?),
            None => None,
        };
        let container = container_for(out).ok_or_else(|| Error::UnsupportedVideoFormat {
            path: out.to_path_buf(),
        })?;
        let encoder = crate::video::choose_encoder(
            &settings.video.encoder,
            container,
            (info.width, info.height),
        )?;
        let (encoders, unusable) = encoders.join().unwrap_or_default();
        if !encoders.iter().any(|e| e == &encoder) {
            let why = if unusable.contains(&encoder) {
                "is offered by this FFmpeg but does not work on this machine (no device for it, or a test encode failed)"
            } else {
                "is not offered by this FFmpeg"
            };
            return Err(Error::Invalid(format!(
                "video encoder {encoder} {why} (working encoders: {})",
                encoders.join(", ")
            )));
        }
        Ok(plan)
    })
}

/// Runs a swap: checks the request, loads the engine (from `ctx`'s cache),
/// prepares the sources, swaps the image or video and writes the output
/// (temporary file renamed into place). `progress(done, total)` reports
/// video frames; `cancel` stops a job cleanly with [`Error::Cancelled`].
pub fn run_swap(
    ctx: &Arc<EngineContext>,
    settings: &Settings,
    req: &SwapRequest,
    progress: &(dyn Fn(u64, Option<u64>) + Sync),
    cancel: &AtomicBool,
) -> Result<SwapOutcome> {
    let start = Instant::now();
    crate::tools::set_ffmpeg_path(settings.ffmpeg.path.as_deref());
    if req.map.is_none() && req.sources.is_empty() {
        return Err(Error::Invalid(
            "a source photo (or a face map) is needed".into(),
        ));
    }
    if req.map.is_some() && !req.sources.is_empty() {
        return Err(Error::Invalid(
            "give either sources or a face map, not both".into(),
        ));
    }
    if settings.engine.selector == SelectMode::Reference
        && req.reference_face.is_none()
        && req.map.is_none()
    {
        return Err(Error::Invalid(
            "the reference selector needs a reference face image".into(),
        ));
    }
    let kind = media_kind(&req.target)?;
    // A video's frame workers share the cores with the models' own threads.
    let video_settings;
    let settings = if kind == MediaKind::Video {
        video_settings = settings.for_video_job();
        &video_settings
    } else {
        settings
    };
    // The request's own runtime and models folder (a new context only if they differ).
    let ctx = &ctx.for_settings(settings)?;
    let named = req
        .sources
        .first()
        .map_or(Path::new("mapped"), PathBuf::as_path);
    let out = output_path(&req.output, named, &req.target);
    let mut segment = None;
    if kind == MediaKind::Image && req.segment.is_some() {
        return Err(Error::Invalid(format!(
            "{} is an image: only videos are split into segments",
            req.target.display()
        )));
    }
    if kind == MediaKind::Video {
        // Checked before any model loads.
        segment = check_video_job(settings, &req.target, &out, req.trim, req.segment)?;
    } else {
        OutputFormat::for_path(&out)?;
    }
    // Never overwrite what the user gave us.
    let photos = if req.sources.is_empty() {
        Vec::new()
    } else {
        expand_sources(&req.sources)?
    };
    let mut inputs: Vec<(&str, &Path)> = vec![("target", req.target.as_path())];
    inputs.extend(
        req.sources
            .iter()
            .chain(&photos)
            .map(|p| ("source", p.as_path())),
    );
    inputs.extend(
        req.reference_face
            .iter()
            .map(|p| ("reference face", p.as_path())),
    );
    inputs.extend(req.map.iter().map(|p| ("face map", p.as_path())));
    camshow_core::atomic::ensure_not_input(&out, &inputs)?;
    let needs = camshow_core::analysis::Needs {
        embedding: req.map.is_some(),
        landmarks_106: false,
    };
    let engine = SwapEngine::load_with(ctx, settings, needs)?;
    if cancel.load(Ordering::Relaxed) {
        return Err(Error::Cancelled);
    }
    let plan = source_plan(
        &engine,
        &req.sources,
        req.map.as_deref(),
        req.reference_face.as_deref(),
        req.source_face,
    )?;
    let source_photos = match &plan {
        SourcePlan::One { source, .. } => source.photos(),
        SourcePlan::Mapped { sources, .. } => {
            sources.iter().flatten().map(PreparedSource::photos).sum()
        }
    };
    if cancel.load(Ordering::Relaxed) {
        return Err(Error::Cancelled);
    }
    let result = match kind {
        MediaKind::Image => {
            let (mut target, alpha) = crate::image_io::read_image_alpha(&req.target)?;
            let what = format!("target {}", req.target.display());
            let report = FrameSession::still(plan, &settings.engine).swap_picture(
                &engine,
                &mut target,
                &what,
            )?;
            // Labelled with what was done: a swap, or none (no face matched).
            let op = if report.faces_swapped > 0 {
                Operation::FaceSwap
            } else {
                Operation::NoFaceSwapped
            };
            crate::image_io::write_image_alpha(
                &out,
                &target,
                alpha.as_deref(),
                (op, &format!("{} swapper", report.swapper)),
            )?;
            SwapResult::Image(report)
        }
        MediaKind::Video => {
            let frames = settings.video.keep_frames.then(|| {
                let mut name = out.as_os_str().to_owned();
                name.push("-frames");
                PathBuf::from(name)
            });
            let mut opts = JobOptions::from_settings(&settings.video, req.trim, frames.clone());
            opts.segment = segment;
            let report = run_video_job(&engine, &plan, &req.target, &out, &opts, progress, cancel)?;
            SwapResult::Video {
                report: Box::new(report),
                frames,
            }
        }
    };
    Ok(SwapOutcome {
        output: out,
        result,
        swapper: engine.swapper_name().to_string(),
        processors: engine.processors(),
        models: engine
            .models()
            .iter()
            .map(|m| {
                format!(
                    "{}:{}",
                    m.name(),
                    m.providers()
                        .first()
                        .map_or("cpu".into(), ToString::to_string)
                )
            })
            .collect(),
        note: engine.note().map(str::to_string),
        source_photos,
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_kind_reads_the_content_not_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("picture.mp4");
        let frame = camshow_core::Frame::filled(4, 4, [1, 2, 3]).unwrap();
        std::fs::write(
            &png,
            crate::image_io::encode_image(
                &frame,
                OutputFormat::Png,
                (crate::provenance::Operation::FaceSwap, "t"),
                &png,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(media_kind(&png).unwrap(), MediaKind::Image);
        let other = dir.path().join("clip.png");
        std::fs::write(&other, b"\x00\x00\x00\x20ftypisom....").unwrap();
        assert_eq!(media_kind(&other).unwrap(), MediaKind::Video);
        let empty = dir.path().join("empty.jpg");
        std::fs::write(&empty, b"").unwrap();
        assert!(media_kind(&empty).is_err());
    }

    #[test]
    fn folders_expand_to_their_photos_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["b.jpg", "a.png", "notes.txt"] {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        let got = expand_sources(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(got, [dir.path().join("a.png"), dir.path().join("b.jpg")]);
        let empty = tempfile::tempdir().unwrap();
        assert!(expand_sources(&[empty.path().to_path_buf()]).is_err());
        assert!(expand_sources(&[]).is_err());
    }

    #[test]
    fn identity_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("person.json");
        let mut id = IdentityFile {
            version: 1,
            kind: "camshow-identity".into(),
            embedding: vec![0.1; 512],
            photos: vec!["a.jpg".into()],
            average: "mean".into(),
        };
        id.save(&p).unwrap();
        assert_eq!(IdentityFile::load(&p).unwrap(), id);
        id.embedding.pop();
        id.save(&p).unwrap();
        assert!(
            IdentityFile::load(&p)
                .unwrap_err()
                .to_string()
                .contains("512")
        );
        std::fs::write(&p, "{").unwrap();
        assert!(
            IdentityFile::load(&p)
                .unwrap_err()
                .to_string()
                .contains("not an identity file")
        );
    }
}
