//! `camshow bench`: measured latencies on this machine.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use camshow_core::Frame;
use camshow_core::detect::{DetectorKind, load_detector};
use camshow_core::safety::SafetyGate;
use clap::{Args, Subcommand};

use crate::engine_args::EngineArgs;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(Debug, Subcommand)]
enum BenchWhat {
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

fn stats(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (pick(0.5), pick(0.95), ms[0])
}

fn time(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<(f64, f64, f64)> {
    for _ in 0..3 {
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
    let BenchWhat::Models { input, runs, json, engine } = &args.what;
    let frame: Frame = camshow_media::image_io::read_image(input)?;
    let rt = engine.runtime()?;
    let store = engine.store();
    let mut rows = Vec::new();
    let gate = SafetyGate::load(&rt, &store)?;
    gate.ensure_safe(&frame, "input")?;
    rows.push(("nudenet (safety gate)".to_string(), time(*runs, || Ok(gate.check(&frame).map(|_| ())?))?));
    for kind in [DetectorKind::CenterFace, DetectorKind::BlazeFace, DetectorKind::Scrfd] {
        match load_detector(kind, &rt, &store) {
            Ok(det) => rows.push((kind.to_string(), time(*runs, || Ok(det.detect(&frame).map(|_| ())?))?)),
            Err(e) => tracing::warn!("{kind} skipped: {e}"),
        }
    }
    if *json {
        let v: Vec<_> = rows.iter().map(|(n, (p50, p95, min))| serde_json::json!({"model": n, "p50_ms": p50, "p95_ms": p95, "min_ms": min})).collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"image": input, "width": frame.width(), "height": frame.height(), "runs": runs, "threads": engine.execution_threads, "results": v}))?);
    } else {
        println!("{} ({}x{}), {runs} runs each, intra-op threads {}", input.display(), frame.width(), frame.height(), engine.execution_threads);
        for (n, (p50, p95, min)) in rows {
            println!("  {n:<24} p50 {p50:8.2} ms   p95 {p95:8.2} ms   min {min:8.2} ms");
        }
    }
    Ok(ExitCode::SUCCESS)
}
