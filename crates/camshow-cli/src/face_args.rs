//! Which faces get swapped, and with what: the options `swap` and `live`
//! share, turned into the engine's typed settings in one place.

use std::path::PathBuf;

use anyhow::{Result, bail};
use camshow_core::detect::DetectorKind;
use camshow_core::models::ModelStore;
use camshow_core::pipeline::{SwapSettings, SwapperChoice};
use camshow_core::select::{DEFAULT_SIMILARITY, SelectMode};
use camshow_core::swap::PasteBack;
use clap::Args;

use crate::engine_args::{EngineArgs, parse};
use crate::processor_args::ProcessorArgs;

#[derive(Debug, Clone, Args)]
pub struct FaceArgs {
    /// Swap every face in the target (same as --face-selector many)
    #[arg(long)]
    pub many_faces: bool,
    /// Which target faces: one (the most prominent), many, or reference (those matching --reference-face)
    #[arg(long, value_name = "MODE", value_parser = parse::<SelectMode>)]
    pub face_selector: Option<SelectMode>,
    /// Image of the person to replace (with --face-selector reference)
    #[arg(long, value_name = "IMAGE")]
    pub reference_face: Option<PathBuf>,
    /// Minimum cosine similarity to the reference face
    #[arg(long, default_value_t = DEFAULT_SIMILARITY, value_name = "0..1")]
    pub similarity: f32,
    /// Swapper: auto (inswapper if installed, else classic), inswapper, classic
    #[arg(long, default_value = "auto", value_parser = parse::<SwapperChoice>)]
    pub swapper: SwapperChoice,
    /// Face detector: centerface, blazeface (fastest), scrfd
    #[arg(long, default_value = "centerface", value_parser = parse::<DetectorKind>)]
    pub detector: DetectorKind,
    /// Paste-back: fast (feathered ellipse, Deep-Live-Cam's), reference (insightface's eroded mask) or seamless (Poisson blending)
    #[arg(long, default_value = "fast", value_parser = parse::<PasteBack>)]
    pub paste_back: PasteBack,
    /// Use FILE for model ID instead of the installed copy (e.g. inswapper_128=/path/model.onnx); repeatable
    #[arg(long, value_name = "ID=FILE")]
    pub model_file: Vec<String>,
}

impl FaceArgs {
    /// The selection mode from `--many-faces` / `--face-selector`.
    pub fn selector(&self) -> Result<SelectMode> {
        let mode = match (self.face_selector, self.many_faces) {
            (Some(s), false) => s,
            (None, true) | (Some(SelectMode::Many), true) => SelectMode::Many,
            (None, false) => SelectMode::One,
            (Some(_), true) => {
                bail!("--many-faces conflicts with --face-selector; use one of them")
            }
        };
        if mode == SelectMode::Reference && self.reference_face.is_none() {
            bail!("--face-selector reference needs --reference-face IMAGE");
        }
        Ok(mode)
    }

    /// The engine settings these options and the processor options describe.
    pub fn settings(&self, processors: &ProcessorArgs) -> Result<SwapSettings> {
        let mut s = SwapSettings {
            detector: self.detector,
            swapper: self.swapper,
            selector: self.selector()?,
            similarity: self.similarity,
            paste_back: self.paste_back,
            ..SwapSettings::default()
        };
        processors.apply(&mut s);
        Ok(s)
    }

    /// The model store with the `--model-file` overrides.
    pub fn store(&self, engine: &EngineArgs) -> Result<ModelStore> {
        crate::engine_args::with_model_files(engine.store(), &self.model_file)
    }
}
