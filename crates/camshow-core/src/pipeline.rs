//! The swap engine: safety gate → analysis → selection → the processor
//! chain. Front ends describe a run with [`Settings`], make one
//! [`EngineContext`] (runtime, models, cache, registry), load a
//! [`SwapEngine`] from it, prepare the source once, and process frames
//! through a [`crate::session::FrameSession`]. [`SwapEngine::reconfigure`]
//! applies changed settings reusing every model already loaded.
//!
//! ```no_run
//! # fn main() -> camshow_core::Result<()> {
//! use camshow_core::{context::EngineContext, pipeline::SwapEngine, settings::Settings};
//! let settings = Settings::default();
//! let ctx = EngineContext::from_settings(&settings)?;
//! let engine = SwapEngine::load(&ctx, &settings)?;
//! # let (source, mut target) = (camshow_core::Frame::filled(8, 8, [0; 3])?, camshow_core::Frame::filled(8, 8, [0; 3])?);
//! let src = engine.prepare_source(&source)?;
//! let report = engine.swap(&mut target, &src, None)?;
//! println!("{} of {} faces swapped by {}", report.faces_swapped, report.faces_found, report.swapper);
//! // A changed option reuses what is loaded:
//! let mut s = settings.clone();
//! s.set_key("processors[0].opacity", "0.5")?;
//! let engine = engine.reconfigure(&s)?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::analysis::{FaceAnalyser, Needs};
use crate::context::EngineContext;
use crate::detect::Face;
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::imgproc::laplacian_variance;
use crate::process::{FrameProcessor, LoadContext};
use crate::runtime::Model;
use crate::safety::SafetyGate;
use crate::select::{SelectMode, most_prominent, select};
use crate::settings::{Settings, SourceAverage};
use crate::swap::{FaceSwapper, PreparedSource, SourceNeed, SwapperChoice};

/// A face of a source photo chosen by the user (of a photo with several
/// faces): which photo, and the face's box as the detector listed it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SourcePick {
    /// Index of the photo among the sources.
    pub photo: usize,
    /// `[x1, y1, x2, y2]` of the face in that photo.
    pub bbox: [f32; 4],
}

/// What one frame's processing did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwapReport {
    /// Faces detected in the target.
    pub faces_found: usize,
    /// Faces swapped.
    pub faces_swapped: usize,
    /// The swapper that ran.
    pub swapper: &'static str,
    /// The processors that ran, in order.
    pub processors: Vec<String>,
}

/// A loaded swap pipeline. Cheap to rebuild from the same context: every
/// model comes from its [`crate::cache::ModelCache`].
pub struct SwapEngine {
    ctx: Arc<EngineContext>,
    gate: SafetyGate,
    analyser: Arc<FaceAnalyser>,
    swapper: Arc<dyn FaceSwapper>,
    chain: Vec<Box<dyn FrameProcessor>>,
    /// What each frame's faces must carry: the selection's needs and the chain's.
    frame_needs: Needs,
    /// Needs of the caller's session (face maps need embeddings).
    extra: Needs,
    settings: Settings,
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

/// How to install inswapper, for messages.
pub const INSWAPPER_HINT: &str = "install it with `camshow models fetch inswapper_128 w600k_r50` (insightface licence: non-commercial research only) or `camshow models import FILE`";

fn inswapper_id(ctx: &EngineContext) -> Option<&'static str> {
    crate::context::inswapper_preference(ctx.runtime().options())
        .into_iter()
        .find(|id| ctx.store().available(id))
}

impl SwapEngine {
    /// Loads the safety gate, the analyser, the swapper and the chain the
    /// settings ask for (from the context's cache where already loaded).
    pub fn load(ctx: &Arc<EngineContext>, settings: &Settings) -> Result<Self> {
        Self::load_with(ctx, settings, Needs::default())
    }

    /// [`SwapEngine::load`] for a session that needs more face data on every
    /// frame (a face map needs identity embeddings: `FrameSession::needs`).
    pub fn load_with(ctx: &Arc<EngineContext>, settings: &Settings, extra: Needs) -> Result<Self> {
        settings.check()?;
        let ids = settings.processor_ids();
        ctx.registry().validate(&ids)?;
        let gate = ctx.gate()?;
        let mut notes: Vec<String> = Vec::new();
        let use_inswapper = match settings.engine.swapper {
            SwapperChoice::Classic => false,
            SwapperChoice::Inswapper => {
                if inswapper_id(ctx).is_none() || !ctx.store().available("w600k_r50") {
                    return Err(Error::ModelMissing {
                        name: if inswapper_id(ctx).is_none() {
                            "inswapper_128".into()
                        } else {
                            "w600k_r50".into()
                        },
                        dir: ctx.store().dir().to_path_buf(),
                        hint: format!("; {INSWAPPER_HINT}"),
                    });
                }
                true
            }
            SwapperChoice::Auto => {
                let ok = inswapper_id(ctx).is_some() && ctx.store().available("w600k_r50");
                if !ok {
                    notes.push(format!(
                        "inswapper is not installed, so the classic swapper ran; {INSWAPPER_HINT}"
                    ));
                }
                ok
            }
        };
        let swapper: Arc<dyn FaceSwapper> = if use_inswapper {
            let id = inswapper_id(ctx).unwrap_or("inswapper_128");
            ctx.inswapper(id)?
        } else {
            if settings
                .face_swapper()
                .is_some_and(|c| c.pixel_boost.is_some_and(|b| b > 128))
            {
                notes.push("pixel boost applies to inswapper only; the classic swapper ran at its own 256 px".into());
            }
            ctx.classic_swapper()?
        };
        let load = LoadContext {
            rt: ctx.runtime(),
            store: ctx.store(),
            cache: ctx.cache(),
            paste_back: settings.engine.paste_back,
            swapper: &swapper,
        };
        let chain = ctx.registry().build(&settings.processors, &load)?;
        let selection = Needs {
            embedding: settings.engine.selector == SelectMode::Reference || extra.embedding,
            landmarks_106: extra.landmarks_106,
        };
        let frame_needs = chain.iter().fold(selection, |n, p| n.union(p.needs()));
        let source_needs = Needs {
            embedding: swapper.source_need() == SourceNeed::Embedding,
            landmarks_106: false,
        };
        let analyser = ctx.analyser(settings.engine.detector, frame_needs.union(source_needs))?;
        Ok(Self {
            ctx: Arc::clone(ctx),
            gate,
            analyser,
            swapper,
            chain,
            frame_needs,
            extra,
            settings: settings.clone(),
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        })
    }

    /// An engine for changed settings. Every model already loaded is reused
    /// (an option such as opacity or the mouth mask loads nothing); only a
    /// model the new settings add is loaded. A change of execution providers
    /// or models folder makes a new context (and loads again).
    pub fn reconfigure(&self, settings: &Settings) -> Result<Self> {
        let ctx = self.ctx.for_settings(settings)?;
        Self::load_with(&ctx, settings, self.extra)
    }

    /// What every frame's faces carry (a face map needs `embedding`).
    pub fn frame_needs(&self) -> Needs {
        self.frame_needs
    }

    /// The context (runtime, models, cache, registry).
    pub fn context(&self) -> &Arc<EngineContext> {
        &self.ctx
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
    pub fn settings(&self) -> &Settings {
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
    pub fn processors(&self) -> Vec<String> {
        self.chain.iter().map(|p| p.id().to_string()).collect()
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
        self.prepare_sources(&[("source image".to_string(), frame)])
    }

    /// Prepares one identity from several photos of one person (each checked
    /// by the gate): the identity embedding is the mean (or median, per
    /// `engine.source_average`) of the photos' most prominent faces, and the
    /// photo whose face is largest and sharpest gives the pixels the classic
    /// swapper uses. `photos` are (name for messages, frame).
    pub fn prepare_sources(&self, photos: &[(String, &Frame)]) -> Result<PreparedSource> {
        self.prepare(photos, false, None)
    }

    /// [`SwapEngine::prepare_sources`] with the face of one photo chosen
    /// by the user (`pick`: the photo and the face's box as listed) instead
    /// of its most prominent face.
    pub fn prepare_sources_picked(
        &self,
        photos: &[(String, &Frame)],
        pick: Option<SourcePick>,
    ) -> Result<PreparedSource> {
        self.prepare(photos, false, pick)
    }

    /// [`SwapEngine::prepare_sources`] that always computes the identity
    /// embedding (to save it), whichever swapper is loaded.
    pub fn prepare_identity(&self, photos: &[(String, &Frame)]) -> Result<PreparedSource> {
        self.prepare(photos, true, None)
    }

    fn prepare(
        &self,
        photos: &[(String, &Frame)],
        force_embedding: bool,
        pick: Option<SourcePick>,
    ) -> Result<PreparedSource> {
        if let Some(p) = pick
            && p.photo >= photos.len()
        {
            return Err(Error::InvalidInput(format!(
                "the chosen source face is in photo {} of {}",
                p.photo + 1,
                photos.len()
            )));
        }
        if photos.is_empty() {
            return Err(Error::InvalidInput("no source photo".into()));
        }
        let recognizer = self.ctx.store().available("w600k_r50");
        let needs = Needs {
            embedding: self.source_needs().embedding
                || force_embedding
                || (photos.len() > 1 && recognizer),
            landmarks_106: false,
        };
        let analyser = if needs.embedding && !self.analyser.has_recognizer() {
            self.ctx.analyser(self.settings.engine.detector, needs)?
        } else {
            Arc::clone(&self.analyser)
        };
        let mut best: Option<(f64, usize, Face)> = None;
        let mut embeddings = Vec::new();
        for (i, (name, frame)) in photos.iter().enumerate() {
            // The gate's checks and the face analysis side by side; nothing
            // is used before the gate has passed the picture.
            let (checked, faces) = rayon::join(
                || self.gate.ensure_safe_image(frame, &[], name),
                || analyser.analyse(frame, needs),
            );
            checked?;
            let faces = faces?;
            let k = match pick.filter(|p| p.photo == i) {
                Some(p) => faces
                    .iter()
                    .enumerate()
                    .map(|(k, f)| (k, crate::detect::iou(&f.bbox, &p.bbox, false)))
                    .filter(|(_, o)| *o >= 0.5)
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(k, _)| k)
                    .ok_or_else(|| {
                        Error::InvalidInput(format!(
                            "the chosen face is no longer found in {name} (was the detector changed?)"
                        ))
                    })?,
                None => {
                    most_prominent(&faces).ok_or_else(|| Error::NoFace { what: name.clone() })?
                }
            };
            let face = faces[k].clone();
            // The person whose pixels or identity are used, with the body below the face.
            self.gate.ensure_safe_regions(frame, &[face.bbox], name)?;
            let [x1, y1, x2, y2] = face.bbox;
            let area = f64::from((x2 - x1).max(0.0) * (y2 - y1).max(0.0));
            let crop = frame.crop(x1 as i64, y1 as i64, (x2 - x1) as i64, (y2 - y1) as i64);
            let score = area * laplacian_variance(&crop).max(1e-3).sqrt();
            if let Some(e) = &face.embedding {
                embeddings.push(e.clone());
            }
            if best.as_ref().is_none_or(|b| score > b.0) {
                best = Some((score, i, face));
            }
        }
        let Some((_, i, mut face)) = best else {
            return Err(Error::InvalidInput("no source photo".into()));
        };
        let embedding = (embeddings.len() == photos.len())
            .then(|| average(&embeddings, self.settings.engine.source_average));
        if let Some(e) = &embedding {
            face.embedding = Some(e.clone());
        }
        let identity = self.swapper.prepare_source(photos[i].1, &face)?;
        Ok(PreparedSource::new(face, identity, embedding, photos.len()))
    }

    /// The source from a saved identity embedding (`camshow faces identity`):
    /// swappers that work from an embedding only (inswapper).
    pub fn source_from_embedding(&self, embedding: &[f32]) -> Result<PreparedSource> {
        if self.swapper.source_need() != SourceNeed::Embedding {
            return Err(Error::InvalidInput(format!(
                "an identity file needs a swapper that works from an embedding (inswapper); the {} swapper needs a photo",
                self.swapper.name()
            )));
        }
        // A saved identity is already unit length: keep its exact values.
        if embedding.len() != 512 {
            return Err(Error::InvalidInput(format!(
                "an identity embedding has 512 values, not {}",
                embedding.len()
            )));
        }
        let e = normed(embedding)?;
        let n = embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
        let e = if (n - 1.0).abs() < 1e-5 {
            embedding.to_vec()
        } else {
            e
        };
        let face = Face {
            embedding: Some(e.clone()),
            ..Face::default()
        };
        let identity = self
            .swapper
            .prepare_source(&Frame::filled(1, 1, [0; 3])?, &face)?;
        Ok(PreparedSource::new(face, identity, Some(e), 1))
    }

    /// The identity embedding of the most prominent face in a reference
    /// image (`name` names it in errors).
    pub fn reference_embedding(&self, frame: &Frame, name: &str) -> Result<Vec<f32>> {
        self.gate.ensure_safe_image(frame, &[], name)?;
        let needs = Needs {
            embedding: true,
            landmarks_106: false,
        };
        let analyser = if self.analyser.has_recognizer() {
            Arc::clone(&self.analyser)
        } else {
            self.ctx.analyser(self.settings.engine.detector, needs)?
        };
        let faces = analyser.analyse(frame, needs)?;
        let i = most_prominent(&faces).ok_or_else(|| Error::NoFace { what: name.into() })?;
        faces[i].embedding.clone().ok_or_else(|| {
            Error::Internal("the analyser returned no embedding for the reference face".into())
        })
    }

    /// Checks `frame` with the safety gate, then swaps the selected faces in place.
    pub fn swap(
        &self,
        frame: &mut Frame,
        source: &PreparedSource,
        reference: Option<&[f32]>,
    ) -> Result<SwapReport> {
        let (checked, faces) = {
            let frame: &Frame = frame;
            rayon::join(
                || self.gate.ensure_safe_image(frame, &[], "target"),
                || self.analyse(frame),
            )
        };
        checked?;
        let faces = faces?;
        let chosen = select(
            &faces,
            self.settings.engine.selector,
            reference,
            self.settings.engine.similarity,
        )?;
        let boxes: Vec<[f32; 4]> = chosen.iter().map(|&i| faces[i].bbox).collect();
        self.gate.ensure_safe_regions(frame, &boxes, "target")?;
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

    /// The faces in `frame`, with what the selection and the chain need
    /// (the video path analyses in parallel, then tracks and selects in order).
    pub fn analyse(&self, frame: &Frame) -> Result<Vec<Face>> {
        self.analyser.analyse(frame, self.frame_needs)
    }

    /// The faces found again near where they were expected, each searched
    /// in its window (`(window, expected)` pairs, see
    /// [`FaceAnalyser::analyse_near`]), with what the selection and the
    /// chain need.
    pub fn analyse_near(
        &self,
        frame: &Frame,
        searches: &[([f32; 4], [f32; 4])],
    ) -> Result<Vec<Face>> {
        self.analyser
            .analyse_near(frame, searches, self.frame_needs)
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
}

/// Unit length; an error for a zero or non-finite vector.
fn normed(v: &[f32]) -> Result<Vec<f32>> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if !n.is_finite() || n <= 0.0 || v.iter().any(|x| !x.is_finite()) {
        return Err(Error::InvalidInput(
            "the identity embedding is zero or not finite".into(),
        ));
    }
    Ok(v.iter().map(|x| x / n).collect())
}

/// The mean or element-wise median of normed embeddings, normed again.
pub fn average(embeddings: &[Vec<f32>], how: SourceAverage) -> Vec<f32> {
    let dim = embeddings.iter().map(Vec::len).min().unwrap_or(0);
    let v: Vec<f32> = (0..dim)
        .map(|d| {
            let mut col: Vec<f32> = embeddings.iter().map(|e| e[d]).collect();
            match how {
                SourceAverage::Mean => col.iter().sum::<f32>() / col.len() as f32,
                SourceAverage::Median => {
                    col.sort_by(f32::total_cmp);
                    let m = col.len() / 2;
                    if col.len().is_multiple_of(2) {
                        0.5 * (col[m - 1] + col[m])
                    } else {
                        col[m]
                    }
                }
            }
        })
        .collect();
    normed(&v).unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_are_normed_and_robust() {
        let a = vec![1.0, 0.0, 0.0];
        let b = vec![0.0, 1.0, 0.0];
        let m = average(&[a.clone(), b.clone()], SourceAverage::Mean);
        let s = std::f32::consts::FRAC_1_SQRT_2;
        assert!((m[0] - s).abs() < 1e-6 && (m[1] - s).abs() < 1e-6 && m[2] == 0.0);
        // One odd photo does not move the median.
        let odd = vec![0.0, 0.0, 1.0];
        let med = average(&[a.clone(), a.clone(), odd], SourceAverage::Median);
        assert_eq!(med, a);
        assert!(normed(&[0.0, 0.0]).is_err());
        assert!(normed(&[f32::NAN, 1.0]).is_err());
    }
}
