//! The command line as overlays on the settings: every flag here is an
//! `Option` without a default of its own; the defaults, the ranges and the
//! names live once, in `camshow_core::settings`. A flag that is given
//! replaces the value loaded from `camshow.toml` and `CAMSHOW_*`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::{Result, bail};
use camshow_core::context::EngineContext;
use camshow_core::detect::DetectorKind;
use camshow_core::models::ModelStore;
use camshow_core::process::masks::FaceMaskKind;
use camshow_core::runtime::{ExecutionProvider, ProviderConfig, Runtime, parse_provider_list};
use camshow_core::select::SelectMode;
use camshow_core::settings::{Layered, ProcessorConfig, Settings, SourceAverage};
use camshow_core::swap::{PasteBack, SwapperChoice};
use clap::Args;

/// The `--config FILE` given on the command line (set once by `main`).
pub static CONFIG: OnceLock<Option<PathBuf>> = OnceLock::new();

/// clap value parser for every engine enum that implements `FromStr`.
pub fn parse<T: std::str::FromStr<Err = camshow_core::Error>>(
    s: &str,
) -> std::result::Result<T, String> {
    s.parse().map_err(|e: camshow_core::Error| e.to_string())
}

/// A parsed `--execution-provider` list (one value, comma-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderList(pub Vec<ExecutionProvider>);

fn parse_providers(s: &str) -> std::result::Result<ProviderList, String> {
    parse_provider_list(s)
        .map(ProviderList)
        .map_err(|e| e.to_string())
}

/// Runtime flags: models folder, execution providers, threads.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Models folder [settings: models_dir; default: CAMSHOW_MODELS, else the platform data folder]
    #[arg(long, global = true, value_name = "DIR")]
    pub models_dir: Option<PathBuf>,
    /// Ordered execution providers, e.g. `cuda,cpu` (cpu, cuda, tensorrt, coreml, directml, openvino, rocm).
    /// When given, each listed provider must attach or the command fails; when omitted,
    /// available accelerators are tried and the ones that attached are reported [settings: runtime.providers]
    #[arg(long, global = true, value_name = "LIST", value_parser = parse_providers)]
    pub execution_provider: Option<ProviderList>,
    /// Intra-op threads per model, 0 = ONNX Runtime's default [settings: runtime.intra_threads]
    #[arg(long, global = true, value_name = "N")]
    pub execution_threads: Option<usize>,
}

impl EngineArgs {
    /// The settings (file < env < these flags), checked.
    pub fn settings(&self) -> Result<Settings> {
        let mut l = load()?;
        self.overlay(&mut l);
        finish(l)
    }

    /// The models store the settings and these flags choose.
    pub fn store(&self) -> Result<ModelStore> {
        Ok(store(&self.settings()?))
    }

    /// Writes these flags over `l`.
    pub fn overlay(&self, l: &mut Layered) {
        l.overlay(
            "models_dir",
            "--models-dir",
            self.models_dir.clone(),
            |s, v| {
                s.models_dir = Some(v);
            },
        );
        l.overlay(
            "runtime.providers",
            "--execution-provider",
            self.execution_provider.clone(),
            |s, v| {
                // Options given in the settings for a listed provider are kept.
                let old = std::mem::take(&mut s.runtime.providers);
                s.runtime.providers =
                    v.0.into_iter()
                        .map(|k| {
                            old.iter()
                                .find(|p| p.kind == k)
                                .cloned()
                                .unwrap_or_else(|| ProviderConfig::new(k))
                        })
                        .collect();
            },
        );
        l.overlay(
            "runtime.intra_threads",
            "--execution-threads",
            self.execution_threads,
            |s, v| s.runtime.intra_threads = v,
        );
    }
}

/// Which faces get swapped, and with what.
#[derive(Debug, Clone, Args)]
pub struct FaceArgs {
    /// Swap every face in the target (same as --face-selector many)
    #[arg(long)]
    pub many_faces: bool,
    /// Which target faces: one (the most prominent), many, or reference (those matching --reference-face) [settings: engine.selector]
    #[arg(long, value_name = "MODE", value_parser = parse::<SelectMode>)]
    pub face_selector: Option<SelectMode>,
    /// Image of the person to replace (with --face-selector reference)
    #[arg(long, value_name = "IMAGE")]
    pub reference_face: Option<PathBuf>,
    /// Minimum cosine similarity to the reference face [settings: engine.similarity]
    #[arg(long, value_name = "-1..1")]
    pub similarity: Option<f32>,
    /// Swapper: auto (inswapper if installed, else classic), inswapper, classic [settings: engine.swapper]
    #[arg(long, value_parser = parse::<SwapperChoice>)]
    pub swapper: Option<SwapperChoice>,
    /// Face detector: centerface, blazeface (fastest), scrfd [settings: engine.detector]
    #[arg(long, value_parser = parse::<DetectorKind>)]
    pub detector: Option<DetectorKind>,
    /// Paste-back: fast (feathered ellipse, Deep-Live-Cam's), reference (insightface's eroded mask) or seamless (Poisson blending) [settings: engine.paste_back]
    #[arg(long, value_parser = parse::<PasteBack>)]
    pub paste_back: Option<PasteBack>,
    /// Several source photos of one person: mean or median of their identities [settings: engine.source_average]
    #[arg(long, value_name = "HOW", value_parser = parse::<SourceAverage>)]
    pub source_average: Option<SourceAverage>,
    #[command(flatten)]
    pub models: ModelFiles,
}

/// `--model-file ID=FILE`: a model file used instead of the installed copy.
#[derive(Debug, Clone, Default, Args)]
pub struct ModelFiles {
    /// Use FILE for model ID instead of the installed copy (e.g. inswapper_128=/path/model.onnx); repeatable
    #[arg(long, value_name = "ID=FILE")]
    pub model_file: Vec<String>,
}

impl ModelFiles {
    /// The model store for `settings`, with these overrides.
    pub fn store(&self, settings: &Settings) -> Result<ModelStore> {
        Ok(camshow_core::context::with_model_files(
            store(settings),
            &self.model_file,
        )?)
    }
}

impl FaceArgs {
    /// The selection mode the flags ask for, checked against `--reference-face`.
    fn selector(&self) -> Result<Option<SelectMode>> {
        let mode = match (self.face_selector, self.many_faces) {
            (Some(s), false) => Some(s),
            (None | Some(SelectMode::Many), true) => Some(SelectMode::Many),
            (None, false) => None,
            (Some(_), true) => {
                bail!("--many-faces conflicts with --face-selector; use one of them")
            }
        };
        if mode == Some(SelectMode::Reference) && self.reference_face.is_none() {
            bail!("--face-selector reference needs --reference-face IMAGE");
        }
        Ok(mode)
    }

    /// Writes these flags over `l`.
    pub fn overlay(&self, l: &mut Layered) -> Result<()> {
        l.overlay(
            "engine.selector",
            "--face-selector",
            self.selector()?,
            |s, v| {
                s.engine.selector = v;
            },
        );
        l.overlay(
            "engine.similarity",
            "--similarity",
            self.similarity,
            |s, v| {
                s.engine.similarity = v;
            },
        );
        l.overlay("engine.swapper", "--swapper", self.swapper, |s, v| {
            s.engine.swapper = v;
        });
        l.overlay("engine.detector", "--detector", self.detector, |s, v| {
            s.engine.detector = v;
        });
        l.overlay(
            "engine.paste_back",
            "--paste-back",
            self.paste_back,
            |s, v| {
                s.engine.paste_back = v;
            },
        );
        l.overlay(
            "engine.source_average",
            "--source-average",
            self.source_average,
            |s, v| s.engine.source_average = v,
        );
        Ok(())
    }

    /// The model store for `settings`, with the `--model-file` overrides.
    pub fn store(&self, settings: &Settings) -> Result<ModelStore> {
        self.models.store(settings)
    }
}

/// The frame processor chain and each processor's options.
#[derive(Debug, Clone, Args)]
pub struct ProcessorArgs {
    /// Frame processors, run in this order on the same analysed faces:
    /// face_swapper (the swap and its finishing options below) and
    /// face_enhancer (restores the face with --face-enhancer-model) [settings: processors]
    #[arg(long = "frame-processor", value_name = "ID", num_args = 1..)]
    pub frame_processor: Option<Vec<String>>,
    /// face_enhancer model: gfpgan_1.4, gpen_bfr_256, gpen_bfr_512, codeformer [settings: processors[i].model]
    #[arg(long, value_name = "ID")]
    pub face_enhancer_model: Option<String>,
    /// face_enhancer: how much of the enhanced face is blended in, 0–100 [settings: processors[i].blend]
    #[arg(long, value_name = "0..100")]
    pub face_enhancer_blend: Option<u8>,
    /// face_enhancer: CodeFormer's fidelity weight, 0 (quality) – 1 (fidelity) [settings: processors[i].weight]
    #[arg(long, value_name = "0..1")]
    pub face_enhancer_weight: Option<f32>,
    /// Extra face masks, combined by minimum with the swapper's feather:
    /// box (FaceFusion's blurred box), occlusion (XSeg: keeps hands and
    /// objects in front of the face; model xseg_1) and region (BiSeNet face
    /// parser: only --face-mask-regions are replaced; model bisenet_resnet_34) [settings: processors[i].masks]
    #[arg(long, value_name = "MASK", num_args = 1.., value_parser = parse::<FaceMaskKind>)]
    pub face_mask: Option<Vec<FaceMaskKind>>,
    /// Regions replaced with --face-mask region: skin, left-eyebrow, right-eyebrow, left-eye, right-eye, glasses, nose, mouth, upper-lip, lower-lip (default: all)
    #[arg(long, value_name = "REGION", num_args = 1..)]
    pub face_mask_regions: Option<Vec<String>>,
    /// Box mask blur, 0–1 [settings: processors[i].mask_blur]
    #[arg(long, value_name = "0..1")]
    pub face_mask_blur: Option<f32>,
    /// face_swapper: colour-match the swapped face to the target's skin (L*a*b* mean and deviation)
    #[arg(long, visible_alias = "color-match")]
    pub colour_match: bool,
    /// face_swapper: keep the target's own mouth (lip movement), mask grown by SIZE 0–100 (40 when no SIZE is given); needs model 2d106det
    #[arg(long, value_name = "SIZE", num_args = 0..=1)]
    #[allow(clippy::option_option)]
    // absent, `--mouth-mask` alone, `--mouth-mask 60`: clap's idiom
    pub mouth_mask: Option<Option<u8>>,
    /// face_swapper: draw the mouth mask's outline (debugging)
    #[arg(long, requires = "mouth_mask")]
    pub mouth_mask_debug: bool,
    /// face_swapper: opacity of the swapped face, 0–1 [settings: processors[i].opacity]
    #[arg(long, value_name = "0..1")]
    pub opacity: Option<f32>,
    /// face_swapper: unsharp mask inside the face (not its box), 0–5 [settings: processors[i].sharpness]
    #[arg(long, value_name = "0..5")]
    pub sharpness: Option<f32>,
    /// face_swapper: run inswapper at 256 or 512 by pixel boost (4× or 16× the inferences)
    #[arg(long, value_name = "PX")]
    pub pixel_boost: Option<u32>,
}

impl ProcessorArgs {
    /// Writes these flags over `l`: the chain first, then each processor's options.
    pub fn overlay(&self, l: &mut Layered) {
        l.overlay(
            "processors",
            "--frame-processor",
            self.frame_processor.clone(),
            |s, ids| {
                let old = std::mem::take(&mut s.processors);
                s.processors = ids
                    .iter()
                    .map(|id| {
                        old.iter()
                            .find(|p| p.id() == id)
                            .cloned()
                            .or_else(|| ProcessorConfig::default_for(id))
                            .unwrap_or_else(|| {
                                ProcessorConfig::Custom(
                                    camshow_core::settings::CustomProcessorConfig {
                                        id: id.clone(),
                                        options: std::collections::BTreeMap::default(),
                                    },
                                )
                            })
                    })
                    .collect();
            },
        );
        let swapper_flags: [(&str, bool); 9] = [
            ("colour_match", self.colour_match),
            ("mouth_mask", self.mouth_mask.is_some()),
            ("mouth_mask_debug", self.mouth_mask_debug),
            ("opacity", self.opacity.is_some()),
            ("sharpness", self.sharpness.is_some()),
            ("pixel_boost", self.pixel_boost.is_some()),
            ("masks", self.face_mask.is_some()),
            ("mask_regions", self.face_mask_regions.is_some()),
            ("mask_blur", self.face_mask_blur.is_some()),
        ];
        let enhancer_flags: [(&str, bool); 4] = [
            ("model", self.face_enhancer_model.is_some()),
            ("blend", self.face_enhancer_blend.is_some()),
            ("weight", self.face_enhancer_weight.is_some()),
            ("occlusion", self.face_mask.is_some()),
        ];
        let mut changed = Vec::new();
        for (i, p) in l.settings.processors.iter_mut().enumerate() {
            match p {
                ProcessorConfig::FaceSwapper(c) => {
                    c.colour_match |= self.colour_match;
                    c.mouth_mask_debug |= self.mouth_mask_debug;
                    if let Some(size) = self.mouth_mask {
                        c.mouth_mask = Some(
                            size.or(c.mouth_mask)
                                .unwrap_or(camshow_core::settings::DEFAULT_MOUTH_MASK),
                        );
                    }
                    set(&mut c.opacity, self.opacity);
                    set(&mut c.sharpness, self.sharpness);
                    set(&mut c.pixel_boost, self.pixel_boost.map(Some));
                    set(&mut c.masks, self.face_mask.clone());
                    set(&mut c.mask_regions, self.face_mask_regions.clone());
                    set(&mut c.mask_blur, self.face_mask_blur);
                    changed.extend(
                        swapper_flags
                            .iter()
                            .filter(|f| f.1)
                            .map(|f| format!("processors[{i}].{}", f.0)),
                    );
                }
                ProcessorConfig::FaceEnhancer(c) => {
                    set(&mut c.model, self.face_enhancer_model.clone());
                    set(&mut c.blend, self.face_enhancer_blend);
                    set(&mut c.weight, self.face_enhancer_weight);
                    if let Some(m) = &self.face_mask {
                        c.occlusion = m.contains(&FaceMaskKind::Occlusion);
                    }
                    changed.extend(
                        enhancer_flags
                            .iter()
                            .filter(|f| f.1)
                            .map(|f| format!("processors[{i}].{}", f.0)),
                    );
                }
                ProcessorConfig::Custom(_) => {}
            }
        }
        for key in changed {
            l.overlay(&key, "command line", Some(()), |_, ()| {});
        }
    }
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

/// Settings from the layers (defaults < settings file < `CAMSHOW_*`),
/// before the command's own flags.
pub fn load() -> Result<Layered> {
    let config = CONFIG.get().cloned().flatten();
    Ok(Layered::load(config.as_deref())?)
}

/// Checks the final settings (after the flags) and applies the process-wide
/// ones (the FFmpeg path).
pub fn finish(l: Layered) -> Result<Settings> {
    l.settings.check()?;
    camshow_media::tools::set_ffmpeg_path(l.settings.ffmpeg.path.as_deref());
    Ok(l.settings)
}

/// The engine context the settings describe, over `store`.
pub fn context(settings: &Settings, store: ModelStore) -> Result<Arc<EngineContext>> {
    Ok(EngineContext::with_store(settings, store)?)
}

/// ONNX Runtime with the settings' providers and threads.
pub fn runtime(settings: &Settings) -> Result<Runtime> {
    Ok(Runtime::new(settings.runtime.clone())?)
}

/// The models store of `settings` (no overrides).
pub fn store(settings: &Settings) -> ModelStore {
    camshow_core::context::store_for(settings.models_dir.as_deref())
}
