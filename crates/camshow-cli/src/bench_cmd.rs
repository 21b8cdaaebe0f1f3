//! `camshow bench`: measured latencies on this machine.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use camshow_core::Frame;
use camshow_core::detect::{DetectorKind, load_detector};
use camshow_core::safety::SafetyGate;
use clap::{Args, Subcommand};

use crate::settings_args::{EngineArgs, ModelFiles};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(Debug, Subcommand)]
enum BenchWhat {
    /// End-to-end video swap fps against the model-bound fps on the same frames
    Video {
        /// Size of the generated clip: 720p or 1080p
        #[arg(long, default_value = "720p")]
        size: String,
        /// Length of the generated clip in seconds (at 10 fps)
        #[arg(long, default_value_t = 5)]
        seconds: u32,
        #[command(flatten)]
        clip: ClipArgs,
    },
    /// Live-mode latency (capture to output, p50/p95) and sustained fps from a file played as a camera
    Live {
        /// Frame size: 640x480 or 1280x720
        #[arg(long, default_value = "640x480")]
        size: String,
        /// Seconds to run
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Frames between two runs of the full-frame face detector (1: every frame) [settings: live.detect_every]
        #[arg(long, value_name = "N")]
        detect_every: Option<u32>,
        #[command(flatten)]
        clip: ClipArgs,
    },
    /// Latency of compute-faithful stand-ins of the models that cannot be downloaded here (w600k_r50, det_10g, inswapper_128, gfpgan_1.4: the real layers and sizes, random weights), next to their multiply-accumulate count
    StandIns {
        /// Timed runs per model (after 1 warm-up run)
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Print JSON
        #[arg(long)]
        json: bool,
        /// Write the stand-ins into DIR (ID.onnx each) instead of timing them, and print the `--model-file` arguments that use them with any command; det_10g_cheap is the constant-output detector of `--stand-ins cheap`
        #[arg(long, value_name = "DIR")]
        write: Option<PathBuf>,
        /// With --write: only these (w600k_r50, det_10g, det_10g_cheap, inswapper_128, gfpgan_1.4); repeatable
        #[arg(long, value_name = "ID", requires = "write")]
        only: Vec<String>,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Latency of each installed detector and of the safety gate on one image
    Models {
        /// Image to run on
        #[arg(short, long)]
        input: PathBuf,
        /// Timed runs per model (after 3 warm-up runs)
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Print JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
}

/// Each of the engine's models: the providers that attached and how many
/// of its sessions run with a CUDA graph.
fn models_report(engine: &camshow_core::pipeline::SwapEngine) -> serde_json::Value {
    engine
        .models()
        .iter()
        .map(|m| {
            let providers: Vec<String> = m.providers().iter().map(ToString::to_string).collect();
            serde_json::json!({
                "model": m.name(), "providers": providers,
                "sessions": m.session_count(), "graph_sessions": m.graph_sessions(),
            })
        })
        .collect()
}

#[allow(clippy::print_stdout)]
fn bench_live(
    clip_args: &ClipArgs,
    size: &str,
    seconds: u32,
    detect_every: Option<u32>,
) -> Result<ExitCode> {
    use camshow_core::pipeline::SwapEngine;
    use camshow_core::session::SourcePlan;
    use camshow_media::live::{LiveControl, LiveOptions, run_live, source::FileSource};
    let (source, input, detector, json) = (
        clip_args.source.as_path(),
        clip_args.input.as_deref(),
        clip_args.detector,
        clip_args.json,
    );
    let (w, h) = match size {
        "640x480" => (640u32, 480u32),
        "1280x720" => (1280, 720),
        other => anyhow::bail!("unknown size {other} (640x480, 1280x720)"),
    };
    let dir = tempfile::tempdir()?;
    let clip = if let Some(p) = input {
        p.to_path_buf()
    } else {
        let clip = dir.path().join("live.mp4");
        let vf = format!(
            "scale=-2:{h},pad=max(iw\\,{w})+80:{h}:(ow-iw)/2:0,crop={w}:{h}:'(iw-{w})/2+40*sin(2*t)':0,format=yuv420p"
        );
        let st = camshow_media::tools::ffmpeg()
            .args(["-v", "error", "-y", "-loop", "1", "-framerate", "30", "-i"])
            .arg(source)
            .args([
                "-t", "5", "-vf", &vf, "-c:v", "libx264", "-preset", "veryfast",
            ])
            .arg(&clip)
            .status()?;
        anyhow::ensure!(st.success(), "ffmpeg could not make the clip");
        clip
    };
    let mut settings = clip_args.engine.settings()?;
    if let Some(d) = detector {
        settings.engine.detector = d;
    }
    if let Some(n) = detect_every {
        settings.live.detect_every = n;
    }
    settings.check()?;
    let store = clip_args.store(&mut settings, dir.path())?;
    let detector = settings.engine.detector;
    let ctx = crate::settings_args::context(&settings, store)?;
    let engine = std::sync::Arc::new(SwapEngine::load(&ctx, &settings)?);
    let plan =
        SourcePlan::one(engine.prepare_source(&camshow_media::image_io::read_image(source)?)?);
    let control = LiveControl::new(std::sync::Arc::clone(&engine), plan.clone())?;
    let src = Box::new(FileSource::open(&clip, true, Some((w, h)))?);
    let opts = LiveOptions {
        duration: Some(std::time::Duration::from_secs(u64::from(seconds))),
        ..LiveOptions::default()
    };
    let stats = run_live(src, &mut [], &control, &opts)?;
    let every = settings.live.detect_every;
    let wobble = [
        wobble(&engine, &plan, &clip, (w, h), every)?,
        wobble(&engine, &plan, &clip, (w, h), 1)?,
    ];
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "size": size, "detector": detector.name(), "swapper": engine.swapper_name(),
                "detect_every": every, "stats": stats,
                "wobble_px": wobble[0], "wobble_px_detect_every_frame": wobble[1],
                "models": models_report(&engine),
            }))?
        );
    } else {
        println!(
            "{size}, {} + {} swapper, full detector every {every} frames, {} s from {}",
            detector,
            engine.swapper_name(),
            seconds,
            clip.display()
        );
        println!(
            "  wobble      {:6.2} px (full detector on every frame: {:.2} px)",
            wobble[0], wobble[1]
        );
        println!(
            "  capture     {:6.1} fps ({} frames)",
            stats.capture_fps, stats.captured
        );
        println!(
            "  output      {:6.1} fps ({} frames, {} dropped)",
            stats.output_fps, stats.processed, stats.dropped
        );
        println!(
            "  latency     p50 {:6.1} ms   p95 {:6.1} ms   max {:6.1} ms",
            stats.latency_p50_ms, stats.latency_p95_ms, stats.latency_max_ms
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// How far `got` is from `want`: the largest absolute difference, and that
/// over `want`'s largest magnitude; `f32::MAX` for both where the shapes
/// differ or `got` has NaN or infinities that `want` has not.
fn difference(
    got: &camshow_core::runtime::TensorF32,
    want: &camshow_core::runtime::TensorF32,
) -> (f32, f32) {
    if got.shape != want.shape || got.data.len() != want.data.len() {
        return (f32::MAX, f32::MAX);
    }
    let (mut d, mut scale) = (0f32, 0f32);
    for (p, q) in got.data.iter().zip(&want.data) {
        let e = (p - q).abs();
        if !e.is_finite() {
            return (f32::MAX, f32::MAX);
        }
        (d, scale) = (d.max(e), scale.max(q.abs()));
    }
    (d, d / scale.max(1e-6))
}

/// Each input's shape beside its values.
fn pairs<'a>(shapes: &'a [Vec<usize>], data: &'a [Vec<f32>]) -> Vec<(&'a [usize], &'a [f32])> {
    shapes
        .iter()
        .zip(data)
        .map(|(s, d)| (s.as_slice(), d.as_slice()))
        .collect()
}

/// `bench stand-ins --write DIR [--only ID]…`.
#[allow(clippy::print_stdout)]
fn write_stand_ins(dir: &std::path::Path, only: &[String]) -> Result<ExitCode> {
    use camshow_core::standin;
    let ids: Vec<&str> = if only.is_empty() {
        standin::ALL
            .iter()
            .map(|(id, _)| *id)
            .chain([standin::CHEAP_DET_10G])
            .collect()
    } else {
        only.iter().map(String::as_str).collect()
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create the folder {}: {e}", dir.display()))?;
    for (id, path) in standin::write(dir, &ids)? {
        println!("--model-file {id}={}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)]
fn bench_stand_ins(runs: usize, json: bool, engine: &EngineArgs) -> Result<ExitCode> {
    use camshow_core::runtime::{ExecutionProvider, Runtime, RuntimeSettings};
    let settings = engine.settings()?;
    let rt = crate::settings_args::runtime(&settings)?;
    // The same models on the CPU alone: what the chosen providers must agree with.
    let cpu = Runtime::new(RuntimeSettings {
        intra_threads: settings.runtime.intra_threads,
        ..RuntimeSettings::explicit(&[ExecutionProvider::Cpu])
    })?;
    let mut rows = Vec::new();
    for (_, build) in camshow_core::standin::ALL {
        let m = build();
        // Loaded as the engine loads its models: every input fixed to the
        // one shape it is fed (so that a CUDA graph can be captured).
        let names: Vec<String> = camshow_core::onnx::OnnxModel::parse(&m.bytes)?
            .inputs()?
            .into_iter()
            .map(|i| i.name)
            .collect();
        let fixed: Vec<(&str, &[usize])> = names
            .iter()
            .zip(&m.inputs)
            .map(|(n, s)| (n.as_str(), s.as_slice()))
            .collect();
        let model = rt.load_fixed(m.id, &m.bytes, &fixed)?;
        let providers: Vec<String> = model.providers().iter().map(ToString::to_string).collect();
        // Two sets of inputs, one after the other: outputs that lag a run
        // behind, or ignore the inputs, differ from the CPU's.
        let data = |shift: usize| -> Vec<Vec<f32>> {
            m.inputs
                .iter()
                .map(|s| {
                    (0..s.iter().product::<usize>())
                        .map(|i| (((i * 7 + shift) % 251) as f32 / 125.0) - 1.0)
                        .collect()
                })
                .collect()
        };
        let (a, b) = (data(0), data(101));
        // The first runs warm up, and are what the CPU's outputs are compared
        // with (the CPU against itself needs no second session: same numbers).
        let firsts = [
            model.run(&pairs(&m.inputs, &a))?,
            model.run(&pairs(&m.inputs, &b))?,
        ];
        let (max_abs_diff_vs_cpu, max_rel_diff_vs_cpu) =
            if model.providers() == [ExecutionProvider::Cpu] {
                (0.0, 0.0)
            } else {
                let on_cpu = cpu.load(m.id, &m.bytes)?;
                let mut worst = (0f32, 0f32);
                for (first, data) in firsts.iter().zip([&a, &b]) {
                    let want = on_cpu.run(&pairs(&m.inputs, data))?;
                    if first.len() != want.len() {
                        worst = (f32::MAX, f32::MAX);
                    }
                    for (got, want) in first.iter().zip(&want) {
                        let (d, rel) = difference(got, want);
                        worst = (worst.0.max(d), worst.1.max(rel));
                    }
                }
                worst
            };
        let inputs = pairs(&m.inputs, &a);
        let (p50, p95, min) = time_after(0, runs, || {
            model.run(&inputs)?;
            Ok(())
        })?;
        let gmac = m.macs as f64 / 1e9;
        rows.push(serde_json::json!({
            "model": m.id, "gmac": gmac, "weights_m": m.params as f64 / 1e6,
            "p50_ms": p50, "p95_ms": p95, "min_ms": min,
            "gmac_per_s": gmac / (p50 / 1000.0), "providers": providers,
            "max_abs_diff_vs_cpu": max_abs_diff_vs_cpu,
            "max_rel_diff_vs_cpu": max_rel_diff_vs_cpu,
            "graph_sessions": model.graph_sessions(),
        }));
        drop(model);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!(
            "model            GMAC   weights     p50 ms    p95 ms   GMAC/s  vs CPU    providers"
        );
        for r in &rows {
            println!(
                "{:<14} {:>6.2} {:>7.1} M {:>10.1} {:>9.1} {:>8.1}  {:<8.1e}  {}",
                r["model"].as_str().unwrap_or_default(),
                r["gmac"].as_f64().unwrap_or_default(),
                r["weights_m"].as_f64().unwrap_or_default(),
                r["p50_ms"].as_f64().unwrap_or_default(),
                r["p95_ms"].as_f64().unwrap_or_default(),
                r["gmac_per_s"].as_f64().unwrap_or_default(),
                r["max_abs_diff_vs_cpu"].as_f64().unwrap_or_default(),
                r["providers"]
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How much the swapped face's five points wobble on `clip` (whose face
/// moves smoothly, or not at all): the root mean square of their
/// frame-to-frame acceleration, in pixels, over its first 90 frames, with
/// the full detector every `every` frames and the faces found again near
/// where they were in between (as a live session does, one frame at a time).
fn wobble(
    engine: &camshow_core::pipeline::SwapEngine,
    plan: &camshow_core::session::SourcePlan,
    clip: &std::path::Path,
    size: (u32, u32),
    every: u32,
) -> Result<f64> {
    use camshow_media::live::source::{FileSource, FrameSource};
    let mut src = FileSource::open(clip, false, Some(size))?;
    let mut session =
        camshow_core::session::FrameSession::tracked(plan.clone(), &engine.settings().engine, 30.0)
            .with_detect_every(every);
    let mut points: Vec<[[f32; 2]; 5]> = Vec::new();
    let (mut sum, mut n) = (0f64, 0usize);
    for _ in 0..90 {
        let Some(frame) = src.next()? else { break };
        let faces = session.find_faces(engine, &frame)?;
        match session.targets(faces)?.first() {
            Some((f, _)) => points.push(f.kps),
            None => points.clear(),
        }
        if let [.., a, b, c] = points.as_slice() {
            for k in 0..5 {
                for d in 0..2 {
                    let acc = f64::from(c[k][d] - 2.0 * b[k][d] + a[k][d]);
                    sum += acc * acc;
                    n += 1;
                }
            }
        }
    }
    anyhow::ensure!(
        n > 0,
        "no face was tracked over three frames of {}",
        clip.display()
    );
    Ok((sum / n as f64).sqrt())
}

/// What the video and live benchmarks share: the face, the clip and the engine.
#[derive(Debug, Args)]
struct ClipArgs {
    /// Source face image (a clip is generated from it when no --input is given)
    #[arg(short, long)]
    source: PathBuf,
    /// Clip to use instead of a generated one
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Face detector [settings: engine.detector]
    #[arg(long, value_parser = crate::settings_args::parse::<DetectorKind>)]
    detector: Option<DetectorKind>,
    /// Parallel frame workers for the video benchmark, 0 = one per CPU core [settings: video.workers]
    #[arg(long, value_name = "N")]
    video_workers: Option<usize>,
    /// Stand-in models: faithful (alone: `--stand-ins`) swaps with the compute-faithful stand-ins of inswapper_128 and w600k_r50, and enhances with that of gfpgan_1.4 when an enhancer is on (`bench stand-ins`): real model time, meaningless faces; cheap detects with a constant-output stand-in of det_10g (one face, no network) and swaps with the classic swapper, so only the pipeline's own work and the codecs are timed
    #[arg(long, value_name = "KIND", num_args = 0..=1, default_missing_value = "faithful")]
    stand_ins: Option<StandIns>,
    /// Print JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    models: ModelFiles,
}

/// Which stand-in models a clip benchmark runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StandIns {
    /// inswapper_128, w600k_r50 and gfpgan_1.4 with their real layers and sizes.
    Faithful,
    /// A constant-output det_10g and the classic swapper.
    Cheap,
}

impl ClipArgs {
    /// The models store for a clip benchmark, with the `--model-file`
    /// overrides and the stand-ins written into `dir`: the faithful ones
    /// override inswapper_128, w600k_r50 and gfpgan_1.4 and the swapper is
    /// inswapper; the cheap one overrides det_10g, the detector is SCRFD and the swapper
    /// classic.
    fn store(
        &self,
        settings: &mut camshow_core::settings::Settings,
        dir: &std::path::Path,
    ) -> Result<camshow_core::models::ModelStore> {
        use camshow_core::standin;
        use camshow_core::swap::SwapperChoice;
        let mut store = self.models.store(settings)?;
        let ids: &[&str] = match self.stand_ins {
            Some(StandIns::Faithful) => {
                settings.engine.swapper = SwapperChoice::Inswapper;
                &standin::SWAP_PATH
            }
            Some(StandIns::Cheap) => {
                settings.engine.detector = DetectorKind::Scrfd;
                settings.engine.swapper = SwapperChoice::Classic;
                &[standin::CHEAP_DET_10G]
            }
            None => &[],
        };
        for (id, path) in standin::write(dir, ids)? {
            store = store.with_override(id, path)?;
        }
        Ok(store)
    }
}

fn stats(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (pick(0.5), pick(0.95), ms[0])
}

fn time(runs: usize, f: impl FnMut() -> Result<()>) -> Result<(f64, f64, f64)> {
    time_after(3, runs, f)
}

/// p50, p95 and the minimum of `runs` timed calls after `warm_up` untimed ones, in ms.
fn time_after(
    warm_up: usize,
    runs: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<(f64, f64, f64)> {
    for _ in 0..warm_up {
        f()?;
    }
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        f()?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(stats(ms))
}

#[allow(clippy::print_stdout)]
pub fn run(args: &BenchArgs) -> Result<ExitCode> {
    let (input, runs, json, engine) = match &args.what {
        BenchWhat::Models {
            input,
            runs,
            json,
            engine,
        } => (input, runs, json, engine),
        BenchWhat::Video {
            size,
            seconds,
            clip: c,
        } => {
            return bench_video(c, size, *seconds);
        }
        BenchWhat::StandIns {
            write: Some(dir),
            only,
            ..
        } => {
            return write_stand_ins(dir, only);
        }
        BenchWhat::StandIns {
            runs, json, engine, ..
        } => {
            return bench_stand_ins(*runs, *json, engine);
        }
        BenchWhat::Live {
            size,
            seconds,
            detect_every,
            clip: c,
        } => {
            return bench_live(c, size, *seconds, *detect_every);
        }
    };
    let frame: Frame = camshow_media::image_io::read_image(input)?;
    let settings = engine.settings()?;
    let rt = crate::settings_args::runtime(&settings)?;
    let store = crate::settings_args::store(&settings);
    let threads = settings.runtime.intra_threads;
    let mut rows = Vec::new();
    let gate = SafetyGate::load(&rt, &store)?;
    gate.ensure_safe_image(&frame, &[], &format!("input {}", input.display()))?;
    rows.push((
        "nudenet (safety gate)".to_string(),
        time(*runs, || Ok(gate.check(&frame).map(|_| ())?))?,
    ));
    for kind in [
        DetectorKind::CenterFace,
        DetectorKind::BlazeFace,
        DetectorKind::Scrfd,
    ] {
        match load_detector(kind, &rt, &store) {
            Ok(det) => rows.push((
                kind.to_string(),
                time(*runs, || Ok(det.detect(&frame).map(|_| ())?))?,
            )),
            Err(e) => tracing::warn!("{kind} skipped: {e}"),
        }
    }
    if *json {
        let v: Vec<_> = rows.iter().map(|(n, (p50, p95, min))| serde_json::json!({"model": n, "p50_ms": p50, "p95_ms": p95, "min_ms": min})).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"image": input, "width": frame.width(), "height": frame.height(), "runs": runs, "threads": threads, "results": v})
            )?
        );
    } else {
        println!(
            "{} ({}x{}), {runs} runs each, intra-op threads {}",
            input.display(),
            frame.width(),
            frame.height(),
            threads
        );
        for (n, (p50, p95, min)) in rows {
            println!("  {n:<24} p50 {p50:8.2} ms   p95 {p95:8.2} ms   min {min:8.2} ms");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)]
fn bench_video(clip_args: &ClipArgs, size: &str, seconds: u32) -> Result<ExitCode> {
    use camshow_core::pipeline::SwapEngine;
    use camshow_core::session::SourcePlan;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let (source, input, detector, json, video_workers) = (
        clip_args.source.as_path(),
        clip_args.input.as_deref(),
        clip_args.detector,
        clip_args.json,
        clip_args.video_workers,
    );
    let dir = tempfile::tempdir()?;
    let clip = if let Some(p) = input {
        p.to_path_buf()
    } else {
        let (w, h) = match size {
            "720p" => (1280, 720),
            "1080p" => (1920, 1080),
            other => anyhow::bail!("unknown size {other} (720p, 1080p)"),
        };
        let clip = dir.path().join("bench.mp4");
        let vf = format!(
            "scale=-2:{h},pad={w}:{h}:(ow-iw)/2:0,crop={w}:{h}:'20*sin(t)':0,format=yuv420p"
        );
        let st = camshow_media::tools::ffmpeg()
            .args(["-v", "error", "-y", "-loop", "1", "-framerate", "10", "-i"])
            .arg(source)
            .args([
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440",
                "-t",
                &seconds.to_string(),
                "-vf",
                &vf,
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-c:a",
                "aac",
                "-shortest",
            ])
            .arg(&clip)
            .status()?;
        anyhow::ensure!(st.success(), "ffmpeg could not make the clip");
        clip
    };
    let mut settings = clip_args.engine.settings()?;
    if let Some(d) = detector {
        settings.engine.detector = d;
    }
    settings.engine.selector = camshow_core::select::SelectMode::Many;
    if let Some(w) = video_workers {
        settings.video.workers = w;
    }
    settings.check()?;
    let mut settings = settings.for_video_job();
    let threads = settings.runtime.intra_threads;
    let store = clip_args.store(&mut settings, dir.path())?;
    let detector = settings.engine.detector;
    let ctx = crate::settings_args::context(&settings, store)?;
    let engine = SwapEngine::load(&ctx, &settings)?;
    let prepared = engine.prepare_source(&camshow_media::image_io::read_image(source)?)?;
    let workers = settings.video.effective_workers();

    // The codec floor: FFmpeg alone decoding the clip and encoding it with
    // the job's encoder and settings (audio as the job does), timed before
    // and after the job; the faster of the two counts.
    let info = camshow_media::video::probe(&clip)?;
    let encoder = camshow_media::video::choose_encoder(
        &settings.video.encoder,
        "mp4",
        (info.width, info.height),
    )?;
    let codec_floor = || -> Result<f64> {
        let t = Instant::now();
        let st = camshow_media::tools::ffmpeg()
            .args(["-v", "error", "-y", "-i"])
            .arg(&clip)
            .args(["-c:v", &encoder])
            .args(camshow_media::video::quality_args(
                &encoder,
                settings.video.quality,
            ))
            .args([
                "-pix_fmt",
                camshow_media::video::output_pixel_format(&encoder, info.width, info.height),
            ])
            .args(if settings.video.keep_audio {
                ["-c:a", "copy"]
            } else {
                ["-an", "-sn"]
            })
            .arg(dir.path().join("floor.mp4"))
            .status()?;
        anyhow::ensure!(
            st.success(),
            "ffmpeg could not transcode {}",
            clip.display()
        );
        Ok(t.elapsed().as_secs_f64())
    };
    let floor_before = codec_floor()?;

    // End to end: decode with the safety checks, swap, encode, audio.
    let out = dir.path().join("out.mp4");
    let opts = camshow_media::job::JobOptions::from_settings(
        &settings.video,
        camshow_media::video::Trim::default(),
        None,
    );
    let cancel = AtomicBool::new(false);
    let t = Instant::now();
    let report = camshow_media::job::run_video_job(
        &engine,
        &SourcePlan::one(prepared.clone()),
        &clip,
        &out,
        &opts,
        &|_, _| {},
        &cancel,
    )?;
    let e2e = t.elapsed().as_secs_f64();
    let n = report.frames as usize;
    let floor = floor_before.min(codec_floor()?);

    // Model-bound: the same frames, decoded beforehand, through the same swap with the same workers.
    let mut dec =
        camshow_media::video::Decoder::open(&clip, &info, camshow_media::video::Trim::default())?;
    let mut frames = Vec::with_capacity(n);
    while let Some(f) = dec.next_frame()? {
        frames.push(std::sync::Mutex::new(f));
    }
    let next = AtomicUsize::new(0);
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let mut session = camshow_core::session::FrameSession::still(
                    SourcePlan::one(prepared.clone()),
                    &settings.engine,
                );
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(f) = frames.get(i) else { break };
                    let mut f = f.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let _ = session.process(&engine, &mut f);
                }
            });
        }
    });
    let bound = t.elapsed().as_secs_f64();
    let (fps_e2e, fps_bound) = (n as f64 / e2e, frames.len() as f64 / bound);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "clip": clip, "width": info.width, "height": info.height, "frames": n, "workers": workers, "intra_threads": threads,
                "detector": detector.name(), "swapper": engine.swapper_name(),
                "encoder": encoder, "end_to_end_fps": fps_e2e, "model_bound_fps": fps_bound, "ratio": fps_e2e / fps_bound,
                "end_to_end_seconds": e2e, "codec_floor_seconds": floor, "ratio_to_codec_floor": e2e / floor,
                "first_frame_seconds": report.first_frame_seconds,
                "safety_checks": report.safety_checks.0, "gate_seconds": report.gate_seconds,
                "gpu_decode": report.gpu_decode,
                "models": models_report(&engine),
            }))?
        );
    } else {
        println!(
            "{}x{}, {n} frames, {workers} workers × {threads} threads per model, {} + {} swapper",
            info.width,
            info.height,
            detector,
            engine.swapper_name()
        );
        println!("  end to end (decode with safety checks, swap, encode, audio) {fps_e2e:7.2} fps");
        println!(
            "  model-bound (the same swap on frames already in memory)    {fps_bound:7.2} fps"
        );
        println!(
            "  ratio                                                      {:7.1} %",
            100.0 * fps_e2e / fps_bound
        );
        println!(
            "  end to end {e2e:.2} s against the codec floor {floor:.2} s (FFmpeg alone: decode + {encoder}): {:.2}×",
            e2e / floor
        );
        println!(
            "  first frame decoded after {:.3} s ({})",
            report.first_frame_seconds,
            if report.gpu_decode {
                "NVDEC"
            } else {
                "decoded on the CPU"
            }
        );
        println!(
            "  safety gate: {} checks, {:.2} s on its {} threads ({:.1} ms each)",
            report.safety_checks.0,
            report.gate_seconds,
            camshow_core::safety::GATE_SESSIONS,
            1000.0 * report.gate_seconds / report.safety_checks.0.max(1) as f64
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use camshow_core::runtime::TensorF32;

    fn t(shape: &[usize], data: &[f32]) -> TensorF32 {
        TensorF32 {
            shape: shape.to_vec(),
            data: data.to_vec(),
        }
    }

    #[test]
    fn outputs_are_compared_with_the_cpus_and_nan_or_another_shape_is_the_worst() {
        let want = t(&[1, 2], &[2.0, -4.0]);
        assert_eq!(
            super::difference(&t(&[1, 2], &[2.5, -4.0]), &want),
            (0.5, 0.125)
        );
        let worst = (f32::MAX, f32::MAX);
        assert_eq!(
            super::difference(&t(&[1, 2], &[f32::NAN, -4.0]), &want),
            worst
        );
        assert_eq!(super::difference(&t(&[2, 1], &[2.0, -4.0]), &want), worst);
        assert_eq!(super::difference(&t(&[1, 2], &[2.0]), &want), worst);
    }
}
