//! `camshow live` (webcam in, swapped stream out) and `camshow cameras`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use camshow_core::analysis::Needs;
use camshow_core::pipeline::SwapEngine;
use camshow_core::settings::{Settings, parse_resolution};
use camshow_media::live::sinks::{MjpegServer, Sink, VirtualCamera};
use camshow_media::live::source::{CaptureOptions, open_source};
use camshow_media::live::{LiveControl, LiveOptions, LiveStats, run_live};
use camshow_media::swap_job::source_plan;
use clap::Args;

use crate::preview::PreviewWindow;
use crate::settings_args::{EngineArgs, FaceArgs, ProcessorArgs};

fn positive(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v > 0.0 && v <= 1_000_000.0 {
        Ok(v)
    } else {
        Err(format!("{v} is out of range"))
    }
}

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Photo with the face to use (repeat, or a folder, for several photos of one person; or an
    /// identity file); replace the file while running to change faces
    #[arg(
        short,
        long,
        value_name = "IMAGE|DIR|ID.json",
        required_unless_present = "map"
    )]
    source: Vec<PathBuf>,
    /// Face map from `camshow faces scan`: each mapped person gets their own source
    #[arg(long, value_name = "MAP.json", conflicts_with_all = ["source", "many_faces", "face_selector", "reference_face"])]
    map: Option<PathBuf>,
    /// Camera: an id from `camshow cameras` (/dev/video0, or 0), `file:CLIP` (a video played at its own rate, looping) `test` (the sample face moving over a test pattern) or `test:PHOTO` (that photo moving); default: the first camera [settings: live.camera]
    #[arg(long, value_name = "ID")]
    camera: Option<String>,
    /// Show the swapped stream in a window (Esc, Q or closing it stops) [settings: live.preview]
    #[arg(long)]
    preview: bool,
    /// Send the swapped stream to a v4l2loopback device (Linux), e.g. /dev/video10 [settings: live.virtual_camera]
    #[arg(long, value_name = "DEV")]
    virtual_camera: Option<PathBuf>,
    /// Serve the swapped stream as MJPEG over HTTP at ADDR (e.g. 127.0.0.1:8090): open http://ADDR/stream.mjpg in OBS or a browser [settings: live.mjpeg]
    #[arg(long, value_name = "ADDR")]
    mjpeg: Option<String>,
    /// Capture size asked of the camera (and the size file/test sources are scaled to) [settings: live.resolution]
    #[arg(long, value_name = "WxH")]
    resolution: Option<String>,
    /// Capture frame rate asked of the camera [settings: live.fps]
    #[arg(long, value_name = "N")]
    fps: Option<f64>,
    /// Flip the picture left–right (a mirror view) [settings: live.mirror]
    #[arg(long)]
    live_mirror: bool,
    /// Draw fps and latency on the stream [settings: live.overlay]
    #[arg(long)]
    overlay: bool,
    /// Frames between two runs of the full-frame face detector; in between, each tracked face is found again near where it was (1: every frame) [settings: live.detect_every]
    #[arg(long, value_name = "N")]
    detect_every: Option<u32>,
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

impl LiveArgs {
    /// The settings file < env < flags, for this command.
    fn settings(&self) -> Result<Settings> {
        let mut l = crate::settings_args::load()?;
        self.engine.overlay(&mut l);
        self.face.overlay(&mut l)?;
        self.processors.overlay(&mut l);
        l.overlay("live.camera", "--camera", self.camera.clone(), |s, v| {
            s.live.camera = Some(v);
        });
        l.overlay(
            "live.preview",
            "--preview",
            self.preview.then_some(true),
            |s, v| s.live.preview = v,
        );
        l.overlay(
            "live.virtual_camera",
            "--virtual-camera",
            self.virtual_camera.clone(),
            |s, v| s.live.virtual_camera = Some(v),
        );
        l.overlay("live.mjpeg", "--mjpeg", self.mjpeg.clone(), |s, v| {
            s.live.mjpeg = Some(v);
        });
        l.overlay(
            "live.resolution",
            "--resolution",
            self.resolution.clone(),
            |s, v| s.live.resolution = Some(v),
        );
        l.overlay("live.fps", "--fps", self.fps, |s, v| s.live.fps = Some(v));
        l.overlay(
            "live.mirror",
            "--live-mirror",
            self.live_mirror.then_some(true),
            |s, v| s.live.mirror = v,
        );
        l.overlay(
            "live.overlay",
            "--overlay",
            self.overlay.then_some(true),
            |s, v| s.live.overlay = v,
        );
        l.overlay(
            "live.detect_every",
            "--detect-every",
            self.detect_every,
            |s, v| s.live.detect_every = v,
        );
        crate::settings_args::finish(l)
    }
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
pub fn run(args: &LiveArgs) -> Result<ExitCode> {
    let settings = args.settings()?;
    let live = &settings.live;
    if !live.preview
        && live.virtual_camera.is_none()
        && live.mjpeg.is_none()
        && args.duration.is_none()
    {
        bail!(
            "choose at least one output: --preview, --virtual-camera DEV or --mjpeg ADDR (or --duration for a measurement without output)"
        );
    }
    let camera = match &live.camera {
        Some(c) => c.clone(),
        None => camshow_media::camera::default_camera()?,
    };
    let store = args.face.store(&settings)?;
    let ctx = crate::settings_args::context(&settings, store)?;
    let needs = Needs {
        embedding: args.map.is_some(),
        landmarks_106: false,
    };
    let engine = Arc::new(SwapEngine::load_with(&ctx, &settings, needs)?);
    if let Some(n) = engine.note() {
        eprintln!("note: {n}");
    }
    let plan = source_plan(
        &engine,
        &args.source,
        args.map.as_deref(),
        args.face.reference_face.as_deref(),
        None,
    )
    .with_context(|| match args.source.as_slice() {
        [one] => format!("source {}", one.display()),
        _ => "source".to_string(),
    })?;
    let capture = CaptureOptions {
        size: live
            .resolution
            .as_deref()
            .map(parse_resolution)
            .transpose()?,
        fps: live.fps,
    };
    let source = open_source(&camera, capture, !args.no_loop)?;
    eprintln!(
        "live: {} → {} ({})",
        source.describe(),
        outputs(&settings).join(", "),
        engine.processors().join(" → ")
    );

    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(addr) = &live.mjpeg {
        let server = MjpegServer::bind(addr)?;
        eprintln!("MJPEG stream: {}", server.url());
        sinks.push(Box::new(server));
    }
    if let Some(dev) = &live.virtual_camera {
        sinks.push(Box::new(VirtualCamera::open(dev, source.nominal_fps())?));
    }
    if live.preview {
        sinks.push(Box::new(PreviewWindow::new(
            "Camshow Deepfaker (AI-generated)",
        )));
    }
    let control = LiveControl::new(Arc::clone(&engine), plan)?;
    {
        let c = control.clone();
        let _ = ctrlc::set_handler(move || c.stop());
    }
    let opts = LiveOptions {
        mirror: live.mirror,
        overlay: live.overlay,
        duration: args.duration.map(Duration::from_secs_f64),
        ..LiveOptions::default()
    };
    let settings_file = camshow_core::settings::config_file(
        crate::settings_args::CONFIG
            .get()
            .cloned()
            .flatten()
            .as_deref(),
    );
    let stats = std::thread::scope(|s| -> Result<LiveStats> {
        // Hot reload: a changed source photo or settings file applies from the next frame.
        let watcher_control = control.clone();
        let watched_source = match (args.map.is_none(), args.source.as_slice()) {
            (true, [one]) if one.is_file() => Some(one.clone()),
            _ => None,
        };
        let settings_file = &settings_file;
        s.spawn(move || {
            camshow_media::live::watch_changes(
                &watcher_control,
                watched_source.as_deref(),
                Some(settings_file),
                &|| args.settings().map_err(|e| format!("{e:#}")),
                &|msg| eprintln!("live: {msg}"),
            );
        });
        let r = run_live(source, &mut sinks, &control, &opts);
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

fn outputs(settings: &Settings) -> Vec<String> {
    let live = &settings.live;
    let mut v = Vec::new();
    if live.preview {
        v.push("preview".to_string());
    }
    if let Some(d) = &live.virtual_camera {
        v.push(format!("virtual camera {}", d.display()));
    }
    if let Some(a) = &live.mjpeg {
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
