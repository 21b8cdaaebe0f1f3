//! The image swap, end to end: safety gate → analysis → selection → swap →
//! paste back. Front ends build a [`SwapSettings`], load a [`SwapEngine`]
//! once, prepare the source once, and call [`SwapEngine::swap`] per frame.
//!
//! ```no_run
//! # fn main() -> camshow_core::Result<()> {
//! use camshow_core::{models::ModelStore, pipeline::*, runtime::*};
//! let rt = Runtime::new(RuntimeOptions::default())?;
//! let engine = SwapEngine::load(&SwapSettings::default(), &rt, &ModelStore::open_default())?;
//! # let (source, mut target) = (camshow_core::Frame::filled(8, 8, [0; 3])?, camshow_core::Frame::filled(8, 8, [0; 3])?);
//! let src = engine.prepare_source(&source)?;
//! let report = engine.swap(&mut target, &src, None)?;
//! println!("{} of {} faces swapped by {}", report.faces_swapped, report.faces_found, report.swapper);
//! # Ok(()) }
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::analysis::{FaceAnalyser, Needs};
use crate::detect::{DetectorKind, Face};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::models::ModelStore;
use crate::process::masks::FaceMaskKind;
use crate::process::{DEFAULT_CHAIN, FrameProcessor, LoadContext, Registry, enhancer};
use crate::runtime::{Model, Runtime};
use crate::safety::SafetyGate;
use crate::select::{DEFAULT_SIMILARITY, SelectMode, most_prominent, select};
use crate::swap::{ClassicSwapper, FaceSwapper, Inswapper, PasteBack, SourceIdentity, SourceNeed};

/// Which swapper to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SwapperChoice {
    /// inswapper when it (and the recognizer) are installed, else classic.
    #[default]
    Auto,
    /// inswapper_128 (FP32, else FP16); an error when not installed.
    Inswapper,
    /// The model-free classic swapper.
    Classic,
}

impl FromStr for SwapperChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "inswapper" => Ok(Self::Inswapper),
            "classic" => Ok(Self::Classic),
            _ => Err(Error::InvalidInput(format!(
                "unknown swapper {s:?} (auto, inswapper, classic)"
            ))),
        }
    }
}

impl fmt::Display for SwapperChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Inswapper => "inswapper",
            Self::Classic => "classic",
        })
    }
}

/// Everything that decides how an image is swapped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SwapSettings {
    /// Face detector.
    pub detector: DetectorKind,
    /// Swapper.
    pub swapper: SwapperChoice,
    /// Which target faces.
    pub selector: SelectMode,
    /// Minimum cosine similarity for `reference` selection.
    pub similarity: f32,
    /// Paste-back method.
    pub paste_back: PasteBack,
    /// Face mapping: every face gets an identity embedding so it can be
    /// matched to a person of a [`crate::mapping::FaceMap`].
    pub map_faces: bool,
    /// The frame processor chain, in order (ids from [`Registry`]).
    pub processors: Vec<String>,
    /// Masks combined (by minimum) with the swapper's feather; the enhancer
    /// always uses the box and adds occlusion when chosen.
    pub face_masks: Vec<FaceMaskKind>,
    /// Face regions kept by the `region` mask (FaceFusion's names).
    pub face_mask_regions: Vec<String>,
    /// Box mask blur, 0–1 (FaceFusion's default 0.3).
    pub face_mask_blur: f32,
    /// Colour-match the swapped face to the target's skin (L*a*b*).
    pub colour_match: bool,
    /// Keep the target's mouth, with the mask grown by 0–100.
    pub mouth_mask: Option<u8>,
    /// Draw the mouth mask's polygon (debugging).
    pub mouth_mask_debug: bool,
    /// Opacity of the swapped face, 0–1.
    pub opacity: f32,
    /// Unsharp-mask strength inside the face, 0–5.
    pub sharpness: f32,
    /// Pixel boost size for swappers with a small input (256 or 512 for inswapper).
    pub pixel_boost: Option<u32>,
    /// Face enhancer model id.
    pub face_enhancer: String,
    /// How much of the enhanced face is blended in, 0–100.
    pub face_enhancer_blend: u8,
    /// Fidelity weight for CodeFormer, 0–1.
    pub face_enhancer_weight: f32,
}

impl Default for SwapSettings {
    fn default() -> Self {
        Self {
            detector: DetectorKind::default(),
            swapper: SwapperChoice::default(),
            selector: SelectMode::default(),
            similarity: DEFAULT_SIMILARITY,
            paste_back: PasteBack::default(),
            map_faces: false,
            processors: DEFAULT_CHAIN.iter().map(|s| (*s).to_string()).collect(),
            face_masks: Vec::new(),
            face_mask_regions: crate::process::masks::FACE_REGIONS
                .iter()
                .map(|r| r.0.to_string())
                .collect(),
            face_mask_blur: enhancer::DEFAULT_MASK_BLUR,
            colour_match: false,
            mouth_mask: None,
            mouth_mask_debug: false,
            opacity: 1.0,
            sharpness: 0.0,
            pixel_boost: None,
            face_enhancer: "gfpgan_1.4".into(),
            face_enhancer_blend: 80,
            face_enhancer_weight: 0.5,
        }
    }
}

impl SwapSettings {
    /// Checks ranges and the processor chain.
    pub fn validate(&self) -> Result<()> {
        let range = |name: &str, v: f32, lo: f32, hi: f32| {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(Error::InvalidInput(format!(
                    "{name} must be between {lo} and {hi}, got {v}"
                )))
            }
        };
        range("opacity", self.opacity, 0.0, 1.0)?;
        range("sharpness", self.sharpness, 0.0, 5.0)?;
        range("face mask blur", self.face_mask_blur, 0.0, 1.0)?;
        range("face enhancer weight", self.face_enhancer_weight, 0.0, 1.0)?;
        range("similarity", self.similarity, -1.0, 1.0)?;
        if self.mouth_mask.is_some_and(|m| m > 100) {
            return Err(Error::InvalidInput("mouth mask size must be 0–100".into()));
        }
        if self.face_enhancer_blend > 100 {
            return Err(Error::InvalidInput(
                "face enhancer blend must be 0–100".into(),
            ));
        }
        if let Some(b) = self.pixel_boost
            && ![128, 256, 512, 1024].contains(&b)
        {
            return Err(Error::InvalidInput(format!(
                "pixel boost must be 256, 512 or 1024, got {b}"
            )));
        }
        crate::process::masks::region_classes(&self.face_mask_regions)?;
        if self.processors.iter().any(|p| p == "face_enhancer") {
            enhancer::spec(&self.face_enhancer)?;
        }
        Registry::builtin().validate(&self.processors)
    }
}

/// The source identity, prepared once.
#[derive(Debug, Clone)]
pub struct PreparedSource {
    /// The source face that was used.
    pub face: Face,
    identity: SourceIdentity,
}

impl PreparedSource {
    /// The identity the swapper puts on target faces.
    pub fn identity(&self) -> &SourceIdentity {
        &self.identity
    }
}

/// What one call of [`SwapEngine::swap`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwapReport {
    /// Faces detected in the target.
    pub faces_found: usize,
    /// Faces swapped.
    pub faces_swapped: usize,
    /// The swapper that ran.
    pub swapper: &'static str,
    /// The processors that ran, in order.
    pub processors: Vec<&'static str>,
}

/// A loaded swap pipeline.
pub struct SwapEngine {
    gate: SafetyGate,
    analyser: FaceAnalyser,
    swapper: Arc<dyn FaceSwapper>,
    chain: Vec<Box<dyn FrameProcessor>>,
    /// What each frame's faces must carry: the selection's needs and the chain's.
    frame_needs: Needs,
    settings: SwapSettings,
    note: Option<String>,
}

impl fmt::Debug for SwapEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwapEngine")
            .field("swapper", &self.swapper.name())
            .field("chain", &self.chain)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

const INSWAPPER_HINT: &str = "install it with `camshow models fetch inswapper_128 w600k_r50` (insightface licence: non-commercial research only) or `camshow models import FILE`";

fn inswapper_id(store: &ModelStore) -> Option<&'static str> {
    ["inswapper_128", "inswapper_128_fp16"]
        .into_iter()
        .find(|id| store.available(id))
}

impl SwapEngine {
    /// Loads the safety gate, the analyser and the swapper `settings` ask for.
    pub fn load(settings: &SwapSettings, rt: &Runtime, store: &ModelStore) -> Result<Self> {
        settings.validate()?;
        let gate = SafetyGate::load(rt, store)?;
        let mut note = None;
        let use_inswapper = match settings.swapper {
            SwapperChoice::Classic => false,
            SwapperChoice::Inswapper => {
                if inswapper_id(store).is_none() || !store.available("w600k_r50") {
                    return Err(Error::ModelMissing {
                        name: if inswapper_id(store).is_none() {
                            "inswapper_128".into()
                        } else {
                            "w600k_r50".into()
                        },
                        dir: store.dir().to_path_buf(),
                        hint: format!("; {INSWAPPER_HINT}"),
                    });
                }
                true
            }
            SwapperChoice::Auto => {
                let ok = inswapper_id(store).is_some() && store.available("w600k_r50");
                if !ok {
                    note = Some(format!(
                        "inswapper is not installed, so the classic swapper ran; {INSWAPPER_HINT}"
                    ));
                }
                ok
            }
        };
        let swapper: Arc<dyn FaceSwapper> = if use_inswapper {
            let id = inswapper_id(store).unwrap_or("inswapper_128");
            Arc::new(Inswapper::load(rt, id, &store.read(id)?)?)
        } else {
            if settings.pixel_boost.is_some_and(|b| b > 128)
                && settings.processors.iter().any(|p| p == "face_swapper")
            {
                let n = "pixel boost applies to inswapper only; the classic swapper ran at its own 256 px";
                note = Some(match note {
                    Some(prev) => format!("{prev}; {n}"),
                    None => n.to_string(),
                });
            }
            Arc::new(ClassicSwapper::new())
        };
        let chain = Registry::builtin().build(
            &settings.processors,
            &LoadContext {
                rt,
                store,
                settings,
                swapper: &swapper,
            },
        )?;
        let selection = Needs {
            embedding: settings.selector == SelectMode::Reference || settings.map_faces,
            landmarks_106: false,
        };
        let frame_needs = chain.iter().fold(selection, |n, p| n.union(p.needs()));
        let source_needs = Needs {
            embedding: swapper.source_need() == SourceNeed::Embedding,
            landmarks_106: false,
        };
        let analyser = FaceAnalyser::load(
            settings.detector,
            frame_needs.union(source_needs),
            rt,
            store,
        )?;
        Ok(Self {
            gate,
            analyser,
            swapper,
            chain,
            frame_needs,
            settings: settings.clone(),
            note,
        })
    }

    /// The swapper's name.
    pub fn swapper_name(&self) -> &'static str {
        self.swapper.name()
    }

    /// Why the requested swapper was not used, if it was not.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The settings in force.
    pub fn settings(&self) -> &SwapSettings {
        &self.settings
    }

    /// Every loaded model, the gate's included (for reporting providers).
    pub fn models(&self) -> Vec<&Model> {
        let mut v = vec![self.gate.model()];
        v.extend(self.analyser.models());
        v.extend(self.swapper.models());
        for p in &self.chain {
            v.extend(p.models());
        }
        v
    }

    /// The processor chain's ids, in order.
    pub fn processors(&self) -> Vec<&'static str> {
        self.chain.iter().map(|p| p.id()).collect()
    }

    /// The content-safety gate (video and live paths sample it on their own schedule).
    pub fn safety_gate(&self) -> &SafetyGate {
        &self.gate
    }

    /// The analyser (tests count its calls).
    pub fn analyser(&self) -> &FaceAnalyser {
        &self.analyser
    }

    fn source_needs(&self) -> Needs {
        Needs {
            embedding: self.swapper.source_need() == SourceNeed::Embedding,
            landmarks_106: false,
        }
    }

    /// Checks the source image and prepares its most prominent face.
    pub fn prepare_source(&self, frame: &Frame) -> Result<PreparedSource> {
        self.gate.ensure_safe(frame, "source image")?;
        let faces = self.analyser.analyse(frame, self.source_needs())?;
        let i = most_prominent(&faces).ok_or_else(|| Error::NoFace {
            what: "source image".into(),
        })?;
        let face = faces[i].clone();
        let identity = self.swapper.prepare_source(frame, &face)?;
        Ok(PreparedSource { face, identity })
    }

    /// The identity embedding of the most prominent face in a reference image.
    pub fn reference_embedding(&self, frame: &Frame) -> Result<Vec<f32>> {
        self.gate.ensure_safe(frame, "reference image")?;
        let faces = self.analyser.analyse(
            frame,
            Needs {
                embedding: true,
                landmarks_106: false,
            },
        )?;
        let i = most_prominent(&faces).ok_or_else(|| Error::NoFace {
            what: "reference image".into(),
        })?;
        faces[i]
            .embedding
            .clone()
            .ok_or_else(|| Error::InvalidInput("no embedding for the reference face".into()))
    }

    /// Checks `frame` with the safety gate, then swaps the selected faces in place.
    pub fn swap(
        &self,
        frame: &mut Frame,
        source: &PreparedSource,
        reference: Option<&[f32]>,
    ) -> Result<SwapReport> {
        self.gate.ensure_safe(frame, "target")?;
        self.swap_checked(frame, source, reference)
    }

    /// [`SwapEngine::swap`] for a frame the gate has already passed (video
    /// and live paths sample the gate on their own schedule).
    pub fn swap_checked(
        &self,
        frame: &mut Frame,
        source: &PreparedSource,
        reference: Option<&[f32]>,
    ) -> Result<SwapReport> {
        let faces = self.analyse(frame)?;
        let chosen = select(
            &faces,
            self.settings.selector,
            reference,
            self.settings.similarity,
        )?;
        let targets: Vec<(&Face, &PreparedSource)> =
            chosen.iter().map(|&i| (&faces[i], source)).collect();
        self.swap_faces(frame, &targets)?;
        Ok(SwapReport {
            faces_found: faces.len(),
            faces_swapped: chosen.len(),
            swapper: self.swapper.name(),
            processors: self.processors(),
        })
    }

    /// The faces in `frame`, with what the selection mode needs (the video
    /// path analyses in parallel, then tracks and selects in order).
    pub fn analyse(&self, frame: &Frame) -> Result<Vec<Face>> {
        self.analyser.analyse(frame, self.frame_needs)
    }

    /// Runs the processor chain, in order, on the target faces (analysed
    /// once, by the caller, and shared by every processor).
    pub fn swap_faces(
        &self,
        frame: &mut Frame,
        targets: &[(&Face, &PreparedSource)],
    ) -> Result<()> {
        if targets.is_empty() {
            return Ok(());
        }
        for p in &self.chain {
            p.process(frame, targets)?;
        }
        Ok(())
    }

    /// Checks `frame` and swaps every face that belongs to a mapped person
    /// with that person's source (`sources[i]` for `map.people[i]`).
    pub fn swap_mapped(
        &self,
        frame: &mut Frame,
        map: &crate::mapping::FaceMap,
        sources: &[Option<PreparedSource>],
    ) -> Result<SwapReport> {
        self.gate.ensure_safe(frame, "target")?;
        let faces = self.analyse(frame)?;
        let targets: Vec<(&Face, &PreparedSource)> = faces
            .iter()
            .filter_map(|f| {
                let p = map.person_for(f.embedding.as_deref()?)?;
                sources.get(p)?.as_ref().map(|s| (f, s))
            })
            .collect();
        self.swap_faces(frame, &targets)?;
        Ok(SwapReport {
            faces_found: faces.len(),
            faces_swapped: targets.len(),
            swapper: self.swapper.name(),
            processors: self.processors(),
        })
    }
}
