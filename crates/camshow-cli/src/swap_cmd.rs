//! `camshow swap`: put the source face on the target's faces.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use camshow_core::pipeline::{SwapEngine, SwapSettings};
use camshow_core::select::SelectMode;
use clap::Args;

use crate::engine_args::EngineArgs;
use crate::face_args::FaceArgs;
use crate::processor_args::ProcessorArgs;

#[derive(Debug, Args)]
pub struct SwapArgs {
    /// Image with the face to use (not needed with --map)
    #[arg(short, long, value_name = "IMAGE", required_unless_present = "map")]
    source: Option<PathBuf>,
    /// Face map from `camshow faces scan`: each person gets the source set in the file
    #[arg(long, value_name = "MAP.json", conflicts_with_all = ["source", "many_faces", "face_selector", "reference_face"])]
    map: Option<PathBuf>,
    /// Image or video whose faces are replaced
    #[arg(short, long, value_name = "IMAGE|VIDEO")]
    target: PathBuf,
    /// Output file (.png/.jpg for images; .mp4/.mov/.mkv/.webm for videos), or a folder: then `<source>-<target><ext>` inside it
    #[arg(short, long, value_name = "PATH")]
    output: PathBuf,
    #[command(flatten)]
    face: FaceArgs,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
    /// Video: do not keep the source frame rate (use --fps)
    #[arg(long)]
    no_keep_fps: bool,
    /// Video: output frame rate with --no-keep-fps
    #[arg(long, value_name = "N", requires = "no_keep_fps")]
    fps: Option<u32>,
    /// Video: drop the audio (kept by default: copied, or re-encoded where the container needs it)
    #[arg(long)]
    no_keep_audio: bool,
    /// Video: also write every processed frame as PNG into `<output>-frames/`
    #[arg(long)]
    keep_frames: bool,
    /// Video encoder (only those your FFmpeg reports: see `camshow doctor`)
    #[arg(long, default_value = "libx264", value_name = "NAME")]
    video_encoder: String,
    /// Video quality 0 (best) – 51, mapped per encoder (CRF for x264/x265, CQ for NVENC, …)
    #[arg(long, default_value_t = 18, value_parser = clap::value_parser!(u8).range(0..=51))]
    video_quality: u8,
    /// Limit this process's data memory to N GB (as Deep-Live-Cam's --max-memory; Unix only)
    #[arg(long, value_name = "GB", value_parser = clap::value_parser!(u32).range(1..))]
    max_memory: Option<u32>,
    /// Video: start at this many seconds
    #[arg(long, value_name = "SECONDS")]
    trim_start: Option<f64>,
    /// Video: stop at this many seconds
    #[arg(long, value_name = "SECONDS")]
    trim_end: Option<f64>,
    #[command(flatten)]
    processors: ProcessorArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

/// Deep-Live-Cam's output naming when the output is a folder.
fn output_path(output: &Path, source: &Path, target: &Path) -> PathBuf {
    if output.is_dir() {
        let stem = |p: &Path| {
            p.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let ext = target
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_else(|| ".png".into());
        output.join(format!("{}-{}{ext}", stem(source), stem(target)))
    } else {
        output.to_path_buf()
    }
}

#[allow(clippy::print_stdout)]
pub fn run(args: &SwapArgs) -> Result<ExitCode> {
    let start = Instant::now();
    if let Some(gb) = args.max_memory {
        limit_memory(gb)?;
    }
    let selector = args.face.selector()?;
    let out = output_path(
        &args.output,
        args.source.as_deref().unwrap_or(Path::new("mapped")),
        &args.target,
    );
    let video = is_video(&args.target);
    if video {
        if camshow_media::video::container_for(&out).is_none() {
            return Err(camshow_media::Error::UnsupportedVideoFormat { path: out }.into());
        }
        let encoders = camshow_media::tools::ffmpeg_info().video_encoders;
        if !encoders.iter().any(|e| e == &args.video_encoder) {
            bail!(
                "video encoder {} is not offered by this FFmpeg (available: {})",
                args.video_encoder,
                encoders.join(", ")
            );
        }
    } else {
        camshow_media::image_io::OutputFormat::for_path(&out)?;
    }

    let store = args.face.store(&args.engine)?;
    let settings = SwapSettings {
        map_faces: args.map.is_some(),
        ..args.face.settings(&args.processors)?
    };
    let rt = args.engine.runtime()?;
    let engine = SwapEngine::load(&settings, &rt, &store)?;
    let mut prepared = Vec::new();
    let map = match &args.map {
        Some(path) => {
            let map = camshow_core::mapping::FaceMap::load(path)?;
            for person in &map.people {
                prepared.push(match &person.source {
                    Some(src) => {
                        let src = if src.is_relative() {
                            path.parent().unwrap_or(Path::new(".")).join(src)
                        } else {
                            src.clone()
                        };
                        Some(
                            engine
                                .prepare_source(&camshow_media::image_io::read_image(&src)?)
                                .with_context(|| format!("source of person {}", person.id))?,
                        )
                    }
                    None => None,
                });
            }
            if prepared.iter().all(Option::is_none) {
                bail!(
                    "no person in {} has a source: set \"source\" to an image path for the people to swap",
                    path.display()
                );
            }
            Some(map)
        }
        None => {
            let src = args
                .source
                .as_deref()
                .context("--source is required without --map")?;
            prepared.push(Some(
                engine.prepare_source(&camshow_media::image_io::read_image(src)?)?,
            ));
            None
        }
    };
    let reference = match &args.face.reference_face {
        Some(p) if selector == SelectMode::Reference => {
            Some(engine.reference_embedding(&camshow_media::image_io::read_image(p)?)?)
        }
        _ => None,
    };
    let plan = match &map {
        Some(m) => camshow_media::job::SourcePlan::Mapped {
            map: m,
            sources: &prepared,
        },
        None => camshow_media::job::SourcePlan::One {
            source: prepared[0].as_ref().context("no source")?,
            reference: reference.as_deref(),
        },
    };
    if video {
        return run_video(args, &engine, plan, &out, start);
    }
    let mut target = camshow_media::image_io::read_image(&args.target)?;
    let report = match plan {
        camshow_media::job::SourcePlan::One { source, reference } => {
            engine.swap(&mut target, source, reference)?
        }
        camshow_media::job::SourcePlan::Mapped { map, sources } => {
            engine.swap_mapped(&mut target, map, sources)?
        }
    };
    if report.faces_found == 0 {
        return Err(camshow_core::Error::NoFace {
            what: format!("target {}", args.target.display()),
        }
        .into());
    }
    camshow_media::image_io::write_image(
        &out,
        &target,
        &format!(
            "face swap made with {} ({})",
            camshow_core::SOFTWARE,
            report.swapper
        ),
    )
    .with_context(|| format!("writing {}", out.display()))?;
    let elapsed = start.elapsed().as_secs_f64();
    let providers: Vec<String> = engine
        .models()
        .iter()
        .map(|m| {
            format!(
                "{}:{}",
                m.name(),
                m.providers()
                    .first()
                    .map_or("cpu".into(), |p| p.to_string())
            )
        })
        .collect();
    if args.json {
        let v = serde_json::json!({
            "output": out, "faces_found": report.faces_found, "faces_swapped": report.faces_swapped,
            "swapper": report.swapper, "processors": report.processors, "detector": args.face.detector.name(), "selector": format!("{selector:?}").to_lowercase(),
            "providers": providers, "note": engine.note(), "seconds": elapsed,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "swapped {} of {} face(s) in {} with the {} swapper in {elapsed:.2} s",
            report.faces_swapped,
            report.faces_found,
            args.target.display(),
            report.swapper
        );
        println!("frame processors: {}", report.processors.join(" → "));
        println!("models: {}", providers.join(", "));
        if let Some(n) = engine.note() {
            println!("note: {n}");
        }
        println!("output: {}", out.display());
    }
    if report.faces_swapped == 0 {
        println!("note: no target face matched the selection; the output is the target unchanged");
    }
    Ok(ExitCode::SUCCESS)
}

const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff"];

/// Targets that are not images by extension are treated as videos.
pub fn is_video(p: &Path) -> bool {
    !p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

#[allow(clippy::print_stdout)]
fn run_video(
    args: &SwapArgs,
    engine: &SwapEngine,
    plan: camshow_media::job::SourcePlan<'_>,
    out: &Path,
    start: Instant,
) -> Result<ExitCode> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let c = cancel.clone();
        // A second handler cannot be installed in the same process; ignore that case.
        let _ = ctrlc::set_handler(move || c.store(true, Ordering::Relaxed));
    }
    let keep_frames = args.keep_frames.then(|| {
        let mut name = out.as_os_str().to_owned();
        name.push("-frames");
        PathBuf::from(name)
    });
    let opts = camshow_media::job::JobOptions {
        encoder: args.video_encoder.clone(),
        quality: args.video_quality,
        keep_audio: !args.no_keep_audio,
        fps: if args.no_keep_fps {
            Some(camshow_media::video::Rational {
                num: args.fps.unwrap_or(30).max(1),
                den: 1,
            })
        } else {
            None
        },
        trim: camshow_media::video::Trim {
            start: args.trim_start,
            end: args.trim_end,
        },
        keep_frames: keep_frames.clone(),
        workers: if args.engine.execution_threads > 0 {
            args.engine.execution_threads
        } else {
            std::thread::available_parallelism().map_or(2, usize::from)
        },
    };
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} frames  {per_sec}  eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let progress = |done: u64, total: Option<u64>| {
        if let Some(t) = total {
            bar.set_length(t.max(done));
        }
        bar.set_position(done);
    };
    let report = camshow_media::job::run_video_job(
        engine,
        plan,
        &args.target,
        out,
        &opts,
        &progress,
        &cancel,
    );
    bar.finish_and_clear();
    let report = report?;
    let elapsed = start.elapsed().as_secs_f64();
    if args.json {
        let v = serde_json::json!({
            "output": out, "frames": report.frames, "frames_swapped": report.frames_swapped,
            "fps_in": report.info.fps.to_string(), "processing_fps": report.frames as f64 / report.seconds,
            "safety_samples": report.safety_samples.0, "swapper": engine.swapper_name(), "processors": engine.processors(), "note": engine.note(),
            "keep_frames": keep_frames, "seconds": elapsed,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "swapped faces in {} of {} frame(s) of {} with the {} swapper in {elapsed:.1} s ({:.1} frames/s)",
            report.frames_swapped,
            report.frames,
            args.target.display(),
            engine.swapper_name(),
            report.frames as f64 / report.seconds
        );
        if let Some(n) = engine.note() {
            println!("note: {n}");
        }
        println!("output: {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Caps the data segment (heap and private mappings) like Deep-Live-Cam does;
/// an allocation beyond it fails instead of the machine swapping.
fn limit_memory(gb: u32) -> Result<()> {
    #[cfg(unix)]
    {
        let bytes = u64::from(gb) << 30;
        rlimit::setrlimit(rlimit::Resource::DATA, bytes, bytes)
            .with_context(|| format!("setting --max-memory {gb}"))?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        let _ = gb;
        bail!("--max-memory is only supported on Unix")
    }
}
