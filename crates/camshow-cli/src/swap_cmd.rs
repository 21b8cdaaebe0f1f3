//! `camshow swap`: put the source face on the target's faces.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use camshow_core::detect::DetectorKind;
use camshow_core::pipeline::{SwapEngine, SwapSettings, SwapperChoice};
use camshow_core::select::{DEFAULT_SIMILARITY, SelectMode};
use camshow_core::swap::PasteBack;
use clap::Args;

use crate::engine_args::EngineArgs;

#[derive(Debug, Args)]
pub struct SwapArgs {
    /// Image with the face to use
    #[arg(short, long, value_name = "IMAGE")]
    source: PathBuf,
    /// Image whose faces are replaced
    #[arg(short, long, value_name = "IMAGE")]
    target: PathBuf,
    /// Output file (.png/.jpg), or a folder: then `<source>-<target><ext>` inside it
    #[arg(short, long, value_name = "PATH")]
    output: PathBuf,
    /// Swap every face in the target (same as --face-selector many)
    #[arg(long)]
    many_faces: bool,
    /// Which target faces: one (the most prominent), many, or reference (those matching --reference-face)
    #[arg(long, value_name = "MODE", value_parser = parse::<SelectMode>)]
    face_selector: Option<SelectMode>,
    /// Image of the person to replace (with --face-selector reference)
    #[arg(long, value_name = "IMAGE")]
    reference_face: Option<PathBuf>,
    /// Minimum cosine similarity to the reference face
    #[arg(long, default_value_t = DEFAULT_SIMILARITY, value_name = "0..1")]
    similarity: f32,
    /// Swapper: auto (inswapper if installed, else classic), inswapper, classic
    #[arg(long, default_value = "auto", value_parser = parse::<SwapperChoice>)]
    swapper: SwapperChoice,
    /// Face detector: centerface, blazeface, scrfd
    #[arg(long, default_value = "centerface", value_parser = parse::<DetectorKind>)]
    detector: DetectorKind,
    /// Paste-back: fast (feathered ellipse, Deep-Live-Cam's) or reference (insightface's eroded mask)
    #[arg(long, default_value = "fast", value_parser = parse::<PasteBack>)]
    paste_back: PasteBack,
    /// Use FILE for model ID instead of the installed copy (e.g. inswapper_128=/path/model.onnx); repeatable
    #[arg(long, value_name = "ID=FILE")]
    model_file: Vec<String>,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

fn parse<T: std::str::FromStr<Err = camshow_core::Error>>(s: &str) -> std::result::Result<T, String> {
    s.parse().map_err(|e: camshow_core::Error| e.to_string())
}

/// Deep-Live-Cam's output naming when the output is a folder.
fn output_path(output: &Path, source: &Path, target: &Path) -> PathBuf {
    if output.is_dir() {
        let stem = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let ext = target.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_else(|| ".png".into());
        output.join(format!("{}-{}{ext}", stem(source), stem(target)))
    } else {
        output.to_path_buf()
    }
}

#[allow(clippy::print_stdout)]
pub fn run(args: &SwapArgs) -> Result<ExitCode> {
    let start = Instant::now();
    let selector = match (args.face_selector, args.many_faces) {
        (Some(s), false) => s,
        (None, true) | (Some(SelectMode::Many), true) => SelectMode::Many,
        (None, false) => SelectMode::One,
        (Some(_), true) => bail!("--many-faces conflicts with --face-selector; use one of them"),
    };
    if selector == SelectMode::Reference && args.reference_face.is_none() {
        bail!("--face-selector reference needs --reference-face IMAGE");
    }
    let out = output_path(&args.output, &args.source, &args.target);
    camshow_media::image_io::OutputFormat::for_path(&out)?;

    let mut store = args.engine.store();
    for spec in &args.model_file {
        let (id, path) = spec.split_once('=').with_context(|| format!("--model-file {spec:?} is not ID=FILE"))?;
        store = store.with_override(id, path)?;
    }
    let source = camshow_media::image_io::read_image(&args.source)?;
    let mut target = camshow_media::image_io::read_image(&args.target)?;
    let settings = SwapSettings { detector: args.detector, swapper: args.swapper, selector, similarity: args.similarity, paste_back: args.paste_back };
    let rt = args.engine.runtime()?;
    let engine = SwapEngine::load(&settings, &rt, &store)?;
    let prepared = engine.prepare_source(&source)?;
    let reference = match &args.reference_face {
        Some(p) if selector == SelectMode::Reference => Some(engine.reference_embedding(&camshow_media::image_io::read_image(p)?)?),
        _ => None,
    };
    let report = engine.swap(&mut target, &prepared, reference.as_deref())?;
    if report.faces_found == 0 {
        return Err(camshow_core::Error::NoFace { what: format!("target {}", args.target.display()) }.into());
    }
    camshow_media::image_io::write_image(&out, &target, &format!("face swap made with {} ({})", camshow_core::SOFTWARE, report.swapper))
        .with_context(|| format!("writing {}", out.display()))?;
    let elapsed = start.elapsed().as_secs_f64();
    let providers: Vec<String> = engine.models().iter().map(|m| format!("{}:{}", m.name(), m.providers().first().map_or("cpu".into(), |p| p.to_string()))).collect();
    if args.json {
        let v = serde_json::json!({
            "output": out, "faces_found": report.faces_found, "faces_swapped": report.faces_swapped,
            "swapper": report.swapper, "detector": args.detector.name(), "selector": format!("{selector:?}").to_lowercase(),
            "providers": providers, "note": engine.note(), "seconds": elapsed,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("swapped {} of {} face(s) in {} with the {} swapper in {elapsed:.2} s", report.faces_swapped, report.faces_found, args.target.display(), report.swapper);
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
