//! `camshow live` (webcam in, swapped stream out) and `camshow cameras`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use camshow_core::pipeline::SwapEngine;
use camshow_media::live::sinks::{MjpegServer, Sink, VirtualCamera};
use camshow_media::live::source::{CaptureOptions, open_source};
use camshow_media::live::{LiveControl, LiveOptions, LiveStats, run_live};
use clap::Args;

use crate::engine_args::EngineArgs;
use crate::face_args::FaceArgs;
use crate::preview::PreviewWindow;
use crate::processor_args::ProcessorArgs;

fn resolution(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?} is not WIDTHxHEIGHT (e.g. 1280x720)"))?;
    let (w, h): (u32, u32) = (
        w.parse().map_err(|_| format!("bad width in {s:?}"))?,
        h.parse().map_err(|_| format!("bad height in {s:?}"))?,
    );
    if !(16..=7680).contains(&w) || !(16..=4320).contains(&h) {
        return Err(format!("{s} is out of range"));
    }
    Ok((w, h))
}

fn positive(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v > 0.0 && v <= 1000.0 {
        Ok(v)
    } else {
        Err(format!("{v} is out of range"))
    }
}

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Image with the face to use; replace the file while running to change faces
    #[arg(short, long, value_name = "IMAGE")]
    source: PathBuf,
    /// Camera: an id from `camshow cameras` (/dev/video0, or 0), `file:CLIP` (a video played at its own rate, looping) or `test` (a moving pattern); default: the first camera
    #[arg(long, value_name = "ID")]
    camera: Option<String>,
    /// Show the swapped stream in a window (Esc, Q or closing it stops)
    #[arg(long)]
    preview: bool,
    /// Send the swapped stream to a v4l2loopback device (Linux), e.g. /dev/video10
    #[arg(long, value_name = "DEV")]
    virtual_camera: Option<PathBuf>,
    /// Serve the swapped stream as MJPEG over HTTP at ADDR (e.g. 127.0.0.1:8090): open http://ADDR/stream.mjpg in OBS or a browser
    #[arg(long, value_name = "ADDR")]
    mjpeg: Option<String>,
    /// Capture size asked of the camera (and the size file/test sources are scaled to)
    #[arg(long, value_name = "WxH", value_parser = resolution)]
    resolution: Option<(u32, u32)>,
    /// Capture frame rate asked of the camera
    #[arg(long, value_name = "N", value_parser = positive)]
    fps: Option<f64>,
    /// Flip the picture left–right (a mirror view)
    #[arg(long)]
    live_mirror: bool,
    /// Draw fps and latency on the stream
    #[arg(long)]
    overlay: bool,
    /// Stop after this many seconds
    #[arg(long, value_name = "SECONDS", value_parser = positive)]
    duration: Option<f64>,
    /// Play file: sources once instead of looping
    #[arg(long)]
    no_loop: bool,
    /// Print the session's statistics (frames, drops, fps, latency p50/p95) at exit
    #[arg(long)]
    stats: bool,
    /// Print the statistics as JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    face: FaceArgs,
    #[command(flatten)]
    processors: ProcessorArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
pub fn run(args: &LiveArgs) -> Result<ExitCode> {
    if !args.preview
        && args.virtual_camera.is_none()
        && args.mjpeg.is_none()
        && args.duration.is_none()
    {
        bail!(
            "choose at least one output: --preview, --virtual-camera DEV or --mjpeg ADDR (or --duration for a measurement without output)"
        );
    }
    let settings = args.face.settings(&args.processors)?;
    let camera = match &args.camera {
        Some(c) => c.clone(),
        None => camshow_media::camera::list_cameras()
            .into_iter()
            .next()
            .map(|c| c.id)
            .context("no camera found: plug one in, or use --camera file:CLIP or --camera test")?,
    };
    let store = args.face.store(&args.engine)?;
    let rt = args.engine.runtime()?;
    let engine = SwapEngine::load(&settings, &rt, &store)?;
    if let Some(n) = engine.note() {
        eprintln!("note: {n}");
    }
    let source_face = engine
        .prepare_source(&camshow_media::image_io::read_image(&args.source)?)
        .with_context(|| format!("source {}", args.source.display()))?;
    let reference = match &args.face.reference_face {
        Some(p) => Some(engine.reference_embedding(&camshow_media::image_io::read_image(p)?)?),
        None => None,
    };
    let capture = CaptureOptions {
        size: args.resolution,
        fps: args.fps,
    };
    let source = open_source(&camera, capture, !args.no_loop)?;
    eprintln!(
        "live: {} → {} ({})",
        source.describe(),
        outputs(args).join(", "),
        engine.processors().join(" → ")
    );

    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(addr) = &args.mjpeg {
        let server = MjpegServer::bind(addr)?;
        eprintln!("MJPEG stream: {}", server.url());
        sinks.push(Box::new(server));
    }
    if let Some(dev) = &args.virtual_camera {
        sinks.push(Box::new(VirtualCamera::open(dev, source.nominal_fps())?));
    }
    if args.preview {
        sinks.push(Box::new(PreviewWindow::new(
            "Camshow Deepfaker (AI-generated)",
        )));
    }
    let control = LiveControl::new(source_face);
    {
        let c = control.clone();
        let _ = ctrlc::set_handler(move || c.stop());
    }
    let opts = LiveOptions {
        mirror: args.live_mirror,
        overlay: args.overlay,
        duration: args.duration.map(Duration::from_secs_f64),
        reference,
        ..LiveOptions::default()
    };
    let stats = std::thread::scope(|s| -> Result<LiveStats> {
        // Hot swap: a changed source image is prepared and used from the next frame.
        let watcher_control = control.clone();
        let engine_ref = &engine;
        let path = args.source.clone();
        s.spawn(move || {
            let mut last = modified(&path);
            while !watcher_control.stopped() {
                std::thread::sleep(Duration::from_millis(300));
                let now = modified(&path);
                if now.is_some() && now != last {
                    last = now;
                    match camshow_media::image_io::read_image(&path)
                        .map_err(anyhow::Error::from)
                        .and_then(|img| Ok(engine_ref.prepare_source(&img)?))
                    {
                        Ok(p) => {
                            watcher_control.set_source(p);
                            eprintln!("live: source face reloaded from {}", path.display());
                        }
                        Err(e) => eprintln!("live: kept the previous source face: {e:#}"),
                    }
                }
            }
        });
        let r = run_live(&engine, source, &mut sinks, &control, &opts);
        control.stop();
        Ok(r?)
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else if args.stats {
        print_stats(&stats);
    } else {
        eprintln!(
            "live: {} frames out in {:.1} s ({:.1} fps), latency p50 {:.0} ms / p95 {:.0} ms, {} dropped",
            stats.processed,
            stats.seconds,
            stats.output_fps,
            stats.latency_p50_ms,
            stats.latency_p95_ms,
            stats.dropped
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn outputs(args: &LiveArgs) -> Vec<String> {
    let mut v = Vec::new();
    if args.preview {
        v.push("preview".to_string());
    }
    if let Some(d) = &args.virtual_camera {
        v.push(format!("virtual camera {}", d.display()));
    }
    if let Some(a) = &args.mjpeg {
        v.push(format!("MJPEG {a}"));
    }
    if v.is_empty() {
        v.push("no output (measurement)".into());
    }
    v
}

#[allow(clippy::print_stdout)]
fn print_stats(s: &LiveStats) {
    println!("source            {}", s.source);
    println!("duration          {:.1} s", s.seconds);
    println!(
        "frames            {} captured ({:.1} fps measured), {} out ({:.1} fps), {} dropped",
        s.captured, s.capture_fps, s.processed, s.output_fps, s.dropped
    );
    println!("faces swapped in  {} frames", s.frames_swapped);
    println!(
        "latency           p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms (capture to output)",
        s.latency_p50_ms, s.latency_p95_ms, s.latency_max_ms
    );
    println!(
        "safety            {} checks, {} trips, {} frames held",
        s.safety_checks, s.safety_trips, s.safety_held_frames
    );
    if s.reconnects > 0 {
        println!("reconnects        {}", s.reconnects);
    }
}

#[derive(Debug, Args)]
pub struct CamerasArgs {
    /// Also list each camera's formats and sizes (asks FFmpeg)
    #[arg(long)]
    formats: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[allow(clippy::print_stdout)]
pub fn cameras(args: &CamerasArgs) -> Result<ExitCode> {
    let cams = camshow_media::camera::list_cameras();
    let rows: Vec<serde_json::Value> = cams
        .iter()
        .map(|c| {
            let formats = if args.formats {
                camshow_media::camera::formats(&c.id)
            } else {
                Vec::new()
            };
            serde_json::json!({"id": c.id, "node": c.node, "name": c.name, "formats": formats})
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if cams.is_empty() {
        println!(
            "no cameras found (V4L2 devices on Linux, AVFoundation on macOS); `camshow live --camera test` or `--camera file:CLIP` work without one"
        );
    }
    for (c, r) in cams.iter().zip(&rows) {
        if c.id == c.node {
            println!("{}  {}", c.id, c.name);
        } else {
            println!("{}  {}  ({})", c.id, c.name, c.node);
        }
        for f in r["formats"].as_array().into_iter().flatten() {
            println!("    {}", f.as_str().unwrap_or_default());
        }
    }
    Ok(ExitCode::SUCCESS)
}
