//! `camshow detect`: find faces in an image.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use camshow_core::Frame;
use camshow_core::detect::{DetectorKind, Face, load_detector};
use camshow_core::safety::SafetyGate;
use clap::Args;

use crate::settings_args::EngineArgs;

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Image to search
    #[arg(short, long, value_name = "IMAGE")]
    input: PathBuf,
    /// Face detector: centerface, blazeface, scrfd [settings: engine.detector]
    #[arg(long, value_parser = crate::settings_args::parse::<DetectorKind>)]
    detector: Option<DetectorKind>,
    /// Also write a copy of the image with the faces drawn (PNG or JPEG)
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

#[allow(clippy::print_stdout)]
pub fn run(args: &DetectArgs) -> Result<ExitCode> {
    if let Some(out) = &args.output {
        camshow_core::atomic::ensure_not_input(out, &[("input", args.input.as_path())])?;
        camshow_media::image_io::OutputFormat::for_path(out)?;
    }
    let frame = camshow_media::image_io::read_image(&args.input)?;
    let mut l = crate::settings_args::load()?;
    args.engine.overlay(&mut l);
    l.overlay("engine.detector", "--detector", args.detector, |s, v| {
        s.engine.detector = v;
    });
    let settings = crate::settings_args::finish(l)?;
    let detector_kind = settings.engine.detector;
    let rt = crate::settings_args::runtime(&settings)?;
    let store = crate::settings_args::store(&settings);
    let gate = SafetyGate::load(&rt, &store)?;
    gate.ensure_safe_image(&frame, &[], &format!("{}", args.input.display()))?;
    let detector = load_detector(detector_kind, &rt, &store)?;
    let start = Instant::now();
    let faces = detector.detect(&frame)?;
    let elapsed = start.elapsed();
    let providers: Vec<String> = detector
        .models()
        .iter()
        .flat_map(|m| m.providers().iter().map(|p| format!("{}:{p}", m.name())))
        .collect();

    if let Some(out) = &args.output {
        let mut annotated = frame.clone();
        for f in &faces {
            draw_face(&mut annotated, f);
        }
        camshow_media::image_io::write_image(
            out,
            &annotated,
            (
                camshow_media::provenance::Operation::DetectionAnnotation,
                &format!("{} faces by {detector_kind}", faces.len()),
            ),
        )
        .with_context(|| format!("writing {}", out.display()))?;
    }

    if args.json {
        let v = serde_json::json!({
            "image": args.input, "width": frame.width(), "height": frame.height(),
            "detector": detector_kind.name(), "providers": providers,
            "elapsed_ms": elapsed.as_secs_f64() * 1000.0, "faces": faces,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{}: {} face(s) found by {} in {:.1} ms (providers: {})",
            args.input.display(),
            faces.len(),
            detector_kind,
            elapsed.as_secs_f64() * 1000.0,
            providers.join(", ")
        );
        for (i, f) in faces.iter().enumerate() {
            let pts: Vec<String> = f
                .kps
                .iter()
                .map(|p| format!("({:.1},{:.1})", p[0], p[1]))
                .collect();
            println!(
                "  #{:<2} box [{:.1}, {:.1}, {:.1}, {:.1}]  score {:.3}  points {}",
                i + 1,
                f.bbox[0],
                f.bbox[1],
                f.bbox[2],
                f.bbox[3],
                f.score,
                pts.join(" ")
            );
        }
        if let Some(out) = &args.output {
            println!("annotated image: {}", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn draw_face(frame: &mut Frame, f: &Face) {
    let green = [0, 255, 0];
    let [x1, y1, x2, y2] = f.bbox.map(|v| v.round() as i64);
    for t in 0..2 {
        for x in x1..=x2 {
            frame.put_pixel(x, y1 + t, green);
            frame.put_pixel(x, y2 - t, green);
        }
        for y in y1..=y2 {
            frame.put_pixel(x1 + t, y, green);
            frame.put_pixel(x2 - t, y, green);
        }
    }
    let colours = [
        [255, 0, 0],
        [0, 0, 255],
        [255, 255, 0],
        [255, 0, 255],
        [0, 255, 255],
    ];
    for (p, c) in f.kps.iter().zip(colours) {
        let (cx, cy) = (p[0].round() as i64, p[1].round() as i64);
        for dy in -2..=2 {
            for dx in -2..=2 {
                frame.put_pixel(cx + dx, cy + dy, c);
            }
        }
    }
}
