//! Face analysis behind one [`FaceAnalyser`]: detection, then, only when a
//! later stage needs them, the ArcFace identity embedding and 106 landmarks.
//!
//! ```no_run
//! # fn main() -> camshow_core::Result<()> {
//! use camshow_core::analysis::{FaceAnalyser, Needs};
//! use camshow_core::{detect::DetectorKind, models::ModelStore, runtime::*};
//! let rt = Runtime::new(RuntimeSettings::default())?;
//! let analyser = FaceAnalyser::load(DetectorKind::CenterFace, Needs::default(), &rt, &ModelStore::open_default())?;
//! let faces = analyser.analyse(&camshow_core::Frame::filled(64, 64, [0, 0, 0])?, Needs::default())?;
//! # Ok(()) }
//! ```

mod landmarks;
mod recognizer;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use self::landmarks::Landmark106;
pub use self::recognizer::{ArcFace, normalize as recognizer_normalize};
use crate::detect::{DetectorKind, Face, FaceDetector, load_detector};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::models::ModelStore;
use crate::runtime::{Model, Runtime};

/// What the stages after detection need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// The identity embedding (reference selection, face mapping, inswapper's source).
    pub embedding: bool,
    /// 106 landmarks (mouth mask, some enhancers).
    pub landmarks_106: bool,
}

impl Needs {
    /// Both needs combined.
    pub fn union(self, other: Self) -> Self {
        Self {
            embedding: self.embedding || other.embedding,
            landmarks_106: self.landmarks_106 || other.landmarks_106,
        }
    }
}

/// Detection plus optional recognition and landmarks.
pub struct FaceAnalyser {
    detector: Arc<dyn FaceDetector>,
    recognizer: Option<ArcFace>,
    landmarker: Option<Landmark106>,
    calls: AtomicUsize,
}

impl std::fmt::Debug for FaceAnalyser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceAnalyser")
            .field("detector", &self.detector.kind())
            .finish_non_exhaustive()
    }
}

impl FaceAnalyser {
    /// Loads the detector and the models `needs` calls for.
    pub fn load(
        detector: DetectorKind,
        needs: Needs,
        rt: &Runtime,
        store: &ModelStore,
    ) -> Result<Self> {
        let detector = Arc::from(load_detector(detector, rt, store)?);
        let recognizer = needs
            .embedding
            .then(|| ArcFace::load(rt, &store.read("w600k_r50")?))
            .transpose()?;
        let landmarker = needs
            .landmarks_106
            .then(|| Landmark106::load(rt, &store.read("2d106det")?))
            .transpose()?;
        Ok(Self {
            detector,
            recognizer,
            landmarker,
            calls: AtomicUsize::new(0),
        })
    }

    /// Whether identity embeddings can be computed.
    pub fn has_recognizer(&self) -> bool {
        self.recognizer.is_some()
    }

    /// Assembles an analyser from loaded parts.
    pub fn from_parts(
        detector: Arc<dyn FaceDetector>,
        recognizer: Option<ArcFace>,
        landmarker: Option<Landmark106>,
    ) -> Self {
        Self {
            detector,
            recognizer,
            landmarker,
            calls: AtomicUsize::new(0),
        }
    }

    /// The detector.
    pub fn detector(&self) -> &dyn FaceDetector {
        self.detector.as_ref()
    }

    /// The recognizer, if loaded.
    pub fn recognizer(&self) -> Option<&ArcFace> {
        self.recognizer.as_ref()
    }

    /// Every loaded model (for reporting providers).
    pub fn models(&self) -> Vec<&Model> {
        let mut v = self.detector.models();
        v.extend(self.recognizer.as_ref().map(ArcFace::model));
        v.extend(self.landmarker.as_ref().map(Landmark106::model));
        v
    }

    /// How many frames have been analysed (tests check nothing is analysed twice).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Detects faces and adds what `needs` asks for.
    pub fn analyse(&self, frame: &Frame, needs: Needs) -> Result<Vec<Face>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut faces = self.detector.detect(frame)?;
        if needs.embedding {
            let rec = self
                .recognizer
                .as_ref()
                .ok_or_else(|| missing("w600k_r50", "identity embeddings"))?;
            for f in &mut faces {
                f.embedding = Some(rec.normed_embedding(frame, &f.kps)?);
            }
        }
        if needs.landmarks_106 {
            let lm = self
                .landmarker
                .as_ref()
                .ok_or_else(|| missing("2d106det", "106-point landmarks"))?;
            for f in &mut faces {
                f.landmarks_106 = Some(lm.landmarks(frame, &f.bbox)?);
            }
        }
        Ok(faces)
    }
}

fn missing(model: &str, what: &str) -> Error {
    Error::Internal(format!("{what} need model {model}, which was not loaded"))
}

/// Cosine similarity of two embeddings.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}
