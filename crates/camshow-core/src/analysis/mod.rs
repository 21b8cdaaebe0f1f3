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
use crate::detect::{DetectorKind, Face, FaceDetector, iou, load_detector};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::imgproc::resize_bilinear;
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
        let faces = self.detector.detect(frame)?;
        self.complete(frame, faces, needs)
    }

    /// Finds again the faces expected at each search's box, searching its
    /// window only (pairs `(window, expected)`, the window from
    /// [`near_window`]; a tracked stream between two runs of the full
    /// detector): the detector runs on the window scaled to [`NEAR_SIDE`],
    /// which with CenterFace costs a fraction of a whole frame (SCRFD and
    /// BlazeFace scale every input to their own fixed size). In each window
    /// the face nearest the expected one is taken, if it overlaps it by
    /// [`NEAR_MIN_IOU`]; a face that is gone gives nothing, and a face found
    /// twice (overlapping windows) is given once. Then adds what `needs` asks
    /// for, as [`FaceAnalyser::analyse`] does.
    pub fn analyse_near(
        &self,
        frame: &Frame,
        searches: &[([f32; 4], [f32; 4])],
        needs: Needs,
    ) -> Result<Vec<Face>> {
        let mut faces: Vec<Face> = Vec::with_capacity(searches.len());
        for (w, expected) in searches {
            // Not in its window (it moved faster than foreseen): once more in
            // a window twice as wide before it counts as gone.
            let found = match self.detect_in(frame, w, expected)? {
                Some(f) => Some(f),
                None => self.detect_in(frame, &widened(w, 2.0), expected)?,
            };
            if let Some(f) = found
                && !faces.iter().any(|g| iou(&g.bbox, &f.bbox, false) > 0.5)
            {
                faces.push(f);
            }
        }
        self.complete(frame, faces, needs)
    }

    /// The face nearest `expected`, searched in `window` only.
    fn detect_in(
        &self,
        frame: &Frame,
        window: &[f32; 4],
        expected: &[f32; 4],
    ) -> Result<Option<Face>> {
        if !window.iter().chain(expected).all(|v| v.is_finite()) {
            return Ok(None);
        }
        let (fw, fh) = (frame.width() as f32, frame.height() as f32);
        let x0 = window[0].clamp(0.0, fw).floor();
        let y0 = window[1].clamp(0.0, fh).floor();
        let x1 = window[2].clamp(0.0, fw).ceil();
        let y1 = window[3].clamp(0.0, fh).ceil();
        if x1 - x0 < 8.0 || y1 - y0 < 8.0 {
            return Ok(None);
        }
        let crop = frame.crop(x0 as i64, y0 as i64, (x1 - x0) as i64, (y1 - y0) as i64);
        let scale = (NEAR_SIDE as f32 / crop.width().max(crop.height()) as f32).min(4.0);
        let (sw, sh) = (
            ((crop.width() as f32 * scale).round() as u32).max(1),
            ((crop.height() as f32 * scale).round() as u32).max(1),
        );
        let (sx, sy) = (
            sw as f32 / crop.width() as f32,
            sh as f32 / crop.height() as f32,
        );
        let small = resize_bilinear(&crop, sw, sh);
        let (cx, cy) = (
            (expected[0] + expected[2]) * 0.5,
            (expected[1] + expected[3]) * 0.5,
        );
        let best = self
            .detector
            .detect(&small)?
            .into_iter()
            .map(|mut f| {
                f.bbox = [
                    x0 + f.bbox[0] / sx,
                    y0 + f.bbox[1] / sy,
                    x0 + f.bbox[2] / sx,
                    y0 + f.bbox[3] / sy,
                ];
                for p in &mut f.kps {
                    *p = [x0 + p[0] / sx, y0 + p[1] / sy];
                }
                let d = ((f.bbox[0] + f.bbox[2]) * 0.5 - cx).powi(2)
                    + ((f.bbox[1] + f.bbox[3]) * 0.5 - cy).powi(2);
                (d, f)
            })
            .filter(|(_, f)| iou(&f.bbox, expected, false) >= NEAR_MIN_IOU)
            .min_by(|a, b| a.0.total_cmp(&b.0));
        Ok(best.map(|(_, f)| f))
    }

    /// Adds the embeddings and landmarks `needs` asks for to `faces`.
    fn complete(&self, frame: &Frame, mut faces: Vec<Face>, needs: Needs) -> Result<Vec<Face>> {
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

/// The long side a face's neighbourhood is scaled to for
/// [`FaceAnalyser::analyse_near`] (a multiple of 32, as CenterFace needs):
/// the face is then about half of it, well inside every detector's range.
pub const NEAR_SIDE: u32 = 192;

/// The neighbourhood's side, in face boxes: room for the face to have moved
/// by half its size between two frames.
pub const NEAR_CONTEXT: f32 = 2.0;

/// The least overlap with where the face was for a face found in its
/// neighbourhood to count as the same face.
pub const NEAR_MIN_IOU: f32 = 0.2;

/// The square to search for the face expected at `expected` (see
/// [`FaceAnalyser::analyse_near`]): one of the `previous` windows while the
/// face, with a margin of a quarter of its size all round, is still inside
/// it and the window is within 1.4× of the size a new one would have; else
/// a new one of [`NEAR_CONTEXT`] times the face's longer side around it.
/// Keeping the window means a face that keeps still is searched in the very
/// same pixels frame after frame and found at the very same place: it does
/// not wobble.
pub fn near_window(expected: &[f32; 4], previous: &[[f32; 4]]) -> [f32; 4] {
    let long = (expected[2] - expected[0]).max(expected[3] - expected[1]);
    let want = long * NEAR_CONTEXT;
    let margin = long * 0.25;
    let fits = |w: &&[f32; 4]| {
        let side = w[2] - w[0];
        expected[0] - margin >= w[0]
            && expected[1] - margin >= w[1]
            && expected[2] + margin <= w[2]
            && expected[3] + margin <= w[3]
            && side <= want * 1.4
            && side * 1.4 >= want
    };
    if let Some(w) = previous.iter().find(fits) {
        return *w;
    }
    let (cx, cy) = (
        (expected[0] + expected[2]) * 0.5,
        (expected[1] + expected[3]) * 0.5,
    );
    let half = want * 0.5;
    [cx - half, cy - half, cx + half, cy + half]
}

/// `w` scaled by `k` about its centre.
fn widened(w: &[f32; 4], k: f32) -> [f32; 4] {
    let (cx, cy) = ((w[0] + w[2]) * 0.5, (w[1] + w[3]) * 0.5);
    let (hw, hh) = ((w[2] - w[0]) * 0.5 * k, (w[3] - w[1]) * 0.5 * k);
    [cx - hw, cy - hh, cx + hw, cy + hh]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_window_stays_put_while_the_face_is_well_inside_it() {
        let face = [100.0, 100.0, 200.0, 220.0];
        let w = near_window(&face, &[]);
        // Twice the longer side, around the face.
        assert_eq!(w, [30.0, 40.0, 270.0, 280.0]);
        // A few pixels of movement or of size: the same window.
        assert_eq!(near_window(&[104.0, 97.0, 205.0, 216.0], &[w]), w);
        // Moved by more than a quarter of the window: a new one around it.
        let moved = [170.0, 100.0, 270.0, 220.0];
        assert_eq!(near_window(&moved, &[w]), [100.0, 40.0, 340.0, 280.0]);
        // Much nearer the camera: a new, larger one.
        let near = near_window(&[50.0, 40.0, 250.0, 280.0], &[w]);
        assert!((near[2] - near[0] - 480.0).abs() < 1e-3, "{near:?}");
        // The window of another face is not taken.
        let other = near_window(&[600.0, 100.0, 700.0, 220.0], &[w]);
        assert_eq!(other, [530.0, 40.0, 770.0, 280.0]);
    }
}
