//! `camshow swap`: put the source face on the target's faces.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use camshow_core::settings::Layered;
use camshow_media::swap_job::{SwapRequest, SwapResult, run_swap};
use camshow_media::video::Trim;
use clap::Args;

use crate::settings_args::{EngineArgs, FaceArgs, ProcessorArgs};

#[derive(Debug, Args)]
pub struct SwapArgs {
    /// Photo with the face to use; repeat it (or give a folder) for several photos of one person,
    /// or give one identity file from `camshow faces identity` (not needed with --map)
    #[arg(
        short,
        long,
        value_name = "IMAGE|DIR|ID.json",
        required_unless_present = "map"
    )]
    source: Vec<PathBuf>,
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
    #[command(flatten)]
    video: VideoArgs,
    /// Limit this process's data memory to N GB (as Deep-Live-Cam's --max-memory; Unix only)
    #[arg(long, value_name = "GB", value_parser = clap::value_parser!(u32).range(1..))]
    max_memory: Option<u32>,
    #[command(flatten)]
    processors: ProcessorArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

/// Video options, as overlays on `video.*` in the settings.
#[derive(Debug, Args)]
pub struct VideoArgs {
    /// Video: do not keep the source frame rate (use --fps) [settings: video.keep_fps]
    #[arg(long)]
    no_keep_fps: bool,
    /// Video: keep the source frame rate (the default)
    #[arg(long, conflicts_with = "no_keep_fps")]
    keep_fps: bool,
    /// Video: output frame rate with --no-keep-fps [settings: video.fps]
    #[arg(long, value_name = "N", requires = "no_keep_fps")]
    fps: Option<u32>,
    /// Video: drop the audio (kept by default: copied, or re-encoded where the container needs it) [settings: video.keep_audio]
    #[arg(long)]
    no_keep_audio: bool,
    /// Video: keep the audio (the default)
    #[arg(long, conflicts_with = "no_keep_audio")]
    keep_audio: bool,
    /// Video: also write every processed frame as PNG into `<output>-frames/` [settings: video.keep_frames]
    #[arg(long)]
    keep_frames: bool,
    /// Video encoder: auto (VP9 for .webm, H.264 otherwise), or one your FFmpeg reports (see `camshow doctor`) [settings: video.encoder]
    #[arg(long, value_name = "NAME")]
    video_encoder: Option<String>,
    /// Video quality 0 (best) – 51, mapped per encoder (CRF for x264/x265, CQ for NVENC, …) [settings: video.quality]
    #[arg(long, value_name = "0..51")]
    video_quality: Option<u8>,
    /// Parallel frame workers, 0 = one per CPU core [settings: video.workers]
    #[arg(long, value_name = "N")]
    video_workers: Option<usize>,
    /// Video: start at this many seconds
    #[arg(long, value_name = "SECONDS")]
    trim_start: Option<f64>,
    /// Video: stop at this many seconds
    #[arg(long, value_name = "SECONDS")]
    trim_end: Option<f64>,
    /// Video: process part INDEX (from 0) of COUNT only, split at keyframes where one is near;
    /// `camshow join` puts the parts together (for array jobs on a cluster)
    #[arg(long, value_name = "INDEX/COUNT", conflicts_with_all = ["trim_start", "trim_end", "fps"])]
    segment: Option<camshow_media::segment::Segment>,
}

impl VideoArgs {
    fn overlay(&self, l: &mut Layered) {
        l.overlay(
            "video.keep_fps",
            "--no-keep-fps",
            self.no_keep_fps.then_some(false),
            |s, v| s.video.keep_fps = v,
        );
        l.overlay(
            "video.keep_fps",
            "--keep-fps",
            self.keep_fps.then_some(true),
            |s, v| s.video.keep_fps = v,
        );
        l.overlay("video.fps", "--fps", self.fps, |s, v| s.video.fps = Some(v));
        l.overlay(
            "video.keep_audio",
            "--no-keep-audio",
            self.no_keep_audio.then_some(false),
            |s, v| s.video.keep_audio = v,
        );
        l.overlay(
            "video.keep_audio",
            "--keep-audio",
            self.keep_audio.then_some(true),
            |s, v| s.video.keep_audio = v,
        );
        l.overlay(
            "video.keep_frames",
            "--keep-frames",
            self.keep_frames.then_some(true),
            |s, v| s.video.keep_frames = v,
        );
        l.overlay(
            "video.encoder",
            "--video-encoder",
            self.video_encoder.clone(),
            |s, v| s.video.encoder = v,
        );
        l.overlay(
            "video.quality",
            "--video-quality",
            self.video_quality,
            |s, v| s.video.quality = v,
        );
        l.overlay(
            "video.workers",
            "--video-workers",
            self.video_workers,
            |s, v| s.video.workers = v,
        );
    }
}

#[allow(clippy::print_stdout)]
pub fn run(args: &SwapArgs) -> Result<ExitCode> {
    if let Some(gb) = args.max_memory {
        limit_memory(gb)?;
    }
    let mut layered = crate::settings_args::load()?;
    args.engine.overlay(&mut layered);
    args.face.overlay(&mut layered)?;
    args.processors.overlay(&mut layered);
    args.video.overlay(&mut layered);
    let settings = crate::settings_args::finish(layered)?;
    let store = args.face.store(&settings)?;
    let ctx = crate::settings_args::context(&settings, store)?;
    let req = SwapRequest {
        sources: args.source.clone(),
        target: args.target.clone(),
        output: args.output.clone(),
        reference_face: args.face.reference_face.clone(),
        map: args.map.clone(),
        trim: Trim {
            start: args.video.trim_start,
            end: args.video.trim_end,
        },
        segment: args.video.segment,
        source_face: None,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let c = cancel.clone();
        // A second handler cannot be installed in the same process; ignore that case.
        let _ = ctrlc::set_handler(move || c.store(true, Ordering::Relaxed));
    }
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
    let outcome = run_swap(&ctx, &settings, &req, &progress, &cancel);
    bar.finish_and_clear();
    let o = outcome?;
    let out = &o.output;
    match &o.result {
        SwapResult::Image(report) => {
            if args.json {
                let v = serde_json::json!({
                    "output": out, "faces_found": report.faces_found, "faces_swapped": report.faces_swapped,
                    "swapper": report.swapper, "processors": report.processors, "detector": settings.engine.detector.name(),
                    "selector": format!("{:?}", settings.engine.selector).to_lowercase(),
                    "providers": o.models, "note": o.note, "source_photos": o.source_photos, "seconds": o.seconds,
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "swapped {} of {} face(s) in {} with the {} swapper in {:.2} s",
                    report.faces_swapped,
                    report.faces_found,
                    args.target.display(),
                    report.swapper,
                    o.seconds
                );
                println!("frame processors: {}", report.processors.join(" → "));
                println!("models: {}", o.models.join(", "));
                if let Some(n) = &o.note {
                    println!("note: {n}");
                }
                println!("output: {}", out.display());
            }
            if report.faces_swapped == 0 {
                // On stderr, so that `--json` output stays one JSON document.
                #[allow(clippy::print_stderr)]
                {
                    eprintln!(
                        "note: no target face matched the selection; the output is the target unchanged (labelled \"no face swapped\")"
                    );
                }
            }
        }
        SwapResult::Video { report, frames } => {
            if args.json {
                let v = serde_json::json!({
                    "output": out, "frames": report.frames, "frames_swapped": report.frames_swapped,
                    "fps_in": report.info.fps.to_string(), "processing_fps": report.frames as f64 / report.seconds,
                    "safety_checks": report.safety_checks.0, "first_frame_seconds": report.first_frame_seconds,
                    "unswapped_ranges": report.unswapped_ranges, "scene_cuts": report.scene_cuts, "swapper": o.swapper, "processors": o.processors, "note": o.note,
                    "keep_frames": frames, "source_photos": o.source_photos, "seconds": o.seconds,
                    "segment": args.video.segment.map(|s| s.to_string()),
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "swapped faces in {} of {} frame(s) of {} with the {} swapper in {:.1} s ({:.1} frames/s)",
                    report.frames_swapped,
                    report.frames,
                    args.target.display(),
                    o.swapper,
                    o.seconds,
                    report.frames as f64 / report.seconds
                );
                if let Some(n) = &o.note {
                    println!("note: {n}");
                }
                if let Some(s) = args.video.segment {
                    println!("segment {s}: join the parts with `camshow join`");
                }
                println!("output: {}", out.display());
            }
        }
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
        anyhow::bail!("--max-memory is only supported on Unix")
    }
}
