//! Face detection: SCRFD (buffalo_l `det_10g`), CenterFace and BlazeFace,
//! all giving the same [`Face`] with a box, a score and five points.
//!
//! The five points are, in order: the eye on the image's left, the eye on the
//! image's right, the nose tip, the left mouth corner, the right mouth corner.
//!
//! ```no_run
//! # fn main() -> camshow_core::Result<()> {
//! use camshow_core::{detect::{DetectorKind, load_detector}, models::ModelStore, runtime::*};
//! let rt = Runtime::new(RuntimeSettings::default())?;
//! let det = load_detector(DetectorKind::CenterFace, &rt, &ModelStore::open_default())?;
//! let frame = camshow_core::Frame::filled(640, 480, [0, 0, 0])?;
//! for face in det.detect(&frame)? { println!("{:?} {}", face.bbox, face.score); }
//! # Ok(()) }
//! ```

pub(crate) mod blazeface;
pub(crate) mod centerface;
pub mod scrfd;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use self::blazeface::BlazeFace;
pub use self::centerface::CenterFace;
pub use self::scrfd::Scrfd;
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::models::ModelStore;
use crate::runtime::{Model, Runtime, TensorF32};

/// A detected face.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Face {
    /// `[x1, y1, x2, y2]` in frame pixels.
    pub bbox: [f32; 4],
    /// Detector confidence, 0–1.
    pub score: f32,
    /// Five points (see the module docs for their order).
    pub kps: [[f32; 2]; 5],
    /// 106 landmarks, when a stage needed them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landmarks_106: Option<Vec<[f32; 2]>>,
    /// L2-normalised identity embedding, when a stage needed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
}

impl Face {
    /// Box width times height.
    pub fn area(&self) -> f32 {
        (self.bbox[2] - self.bbox[0]).max(0.0) * (self.bbox[3] - self.bbox[1]).max(0.0)
    }
}

/// Which detector to use.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DetectorKind {
    /// CenterFace (MIT; ships in a registry package).
    #[default]
    CenterFace,
    /// MediaPipe BlazeFace, front 128 and back 256 models merged.
    BlazeFace,
    /// SCRFD `det_10g` from insightface's buffalo_l (the reference detector).
    Scrfd,
}

impl DetectorKind {
    /// Command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::CenterFace => "centerface",
            Self::BlazeFace => "blazeface",
            Self::Scrfd => "scrfd",
        }
    }
}

impl fmt::Display for DetectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DetectorKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "centerface" => Ok(Self::CenterFace),
            "blazeface" => Ok(Self::BlazeFace),
            "scrfd" | "det_10g" | "retinaface" => Ok(Self::Scrfd),
            _ => Err(Error::InvalidInput(format!(
                "unknown detector {s:?} (centerface, blazeface, scrfd)"
            ))),
        }
    }
}

/// A face detector.
pub trait FaceDetector: Send + Sync {
    /// Detector name.
    fn kind(&self) -> DetectorKind;
    /// Finds every face in `frame`, best score first.
    fn detect(&self, frame: &Frame) -> Result<Vec<Face>>;
    /// The loaded models (for reporting providers).
    fn models(&self) -> Vec<&Model>;
}

/// Loads a detector's models from the store.
pub fn load_detector(
    kind: DetectorKind,
    rt: &Runtime,
    store: &ModelStore,
) -> Result<Box<dyn FaceDetector>> {
    Ok(match kind {
        DetectorKind::CenterFace => Box::new(CenterFace::load(rt, &store.read("centerface")?)?),
        DetectorKind::BlazeFace => Box::new(BlazeFace::load(
            rt,
            &store.read("blazeface_front")?,
            &store.read("blazeface_back")?,
        )?),
        DetectorKind::Scrfd => Box::new(Scrfd::load(rt, &store.read("det_10g")?)?),
    })
}

/// Intersection over union. `plus_one` uses the `(x2 − x1 + 1)` pixel
/// convention of insightface's NMS.
pub fn iou(a: &[f32; 4], b: &[f32; 4], plus_one: bool) -> f32 {
    let e = if plus_one { 1.0 } else { 0.0 };
    let w = (a[2].min(b[2]) - a[0].max(b[0]) + e).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1]) + e).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0] + e) * (r[3] - r[1] + e);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Greedy NMS: indices kept, best score first. A box is dropped when its
/// IoU with a kept box exceeds `threshold` (or equals it, if `inclusive`).
pub fn nms(
    boxes: &[[f32; 4]],
    scores: &[f32],
    threshold: f32,
    plus_one: bool,
    inclusive: bool,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    // Stable sort, descending: ties keep their original order, as numpy's argsort()[::-1] does not,
    // but ties between distinct faces do not change which faces are kept.
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut keep: Vec<usize> = Vec::new();
    for i in order {
        let suppressed = keep.iter().any(|&k| {
            let o = iou(&boxes[k], &boxes[i], plus_one);
            if inclusive {
                o >= threshold
            } else {
                o > threshold
            }
        });
        if !suppressed {
            keep.push(i);
        }
    }
    keep
}

/// Finds an output by name, else by position.
fn output<'a>(
    outs: &'a [TensorF32],
    model: &Model,
    name: &str,
    index: usize,
) -> Result<&'a TensorF32> {
    let i = model
        .output_names()
        .iter()
        .position(|n| n == name)
        .unwrap_or(index);
    outs.get(i).ok_or_else(|| Error::ModelSignature {
        model: model.name().into(),
        reason: format!("no output {name} (#{index})"),
    })
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_conventions() {
        let a = [0.0, 0.0, 10.0, 10.0];
        assert!((iou(&a, &a, false) - 1.0).abs() < 1e-6);
        assert!((iou(&a, &[5.0, 0.0, 15.0, 10.0], false) - 50.0 / 150.0).abs() < 1e-6);
        assert!((iou(&a, &[5.0, 0.0, 15.0, 10.0], true) - 66.0 / 176.0).abs() < 1e-6);
        assert_eq!(iou(&a, &[20.0, 20.0, 30.0, 30.0], false), 0.0);
    }

    #[test]
    fn nms_keeps_best_and_distinct() {
        let boxes = [
            [0.0, 0.0, 10.0, 10.0],
            [1.0, 1.0, 11.0, 11.0],
            [50.0, 50.0, 60.0, 60.0],
        ];
        let keep = nms(&boxes, &[0.8, 0.9, 0.7], 0.4, true, false);
        assert_eq!(keep, vec![1, 2]);
        assert_eq!(
            nms(&boxes, &[0.8, 0.9, 0.7], 0.99, false, false),
            vec![1, 0, 2]
        );
        assert!(nms(&[], &[], 0.4, false, false).is_empty());
    }

    #[test]
    fn detector_names() {
        for k in [
            DetectorKind::CenterFace,
            DetectorKind::BlazeFace,
            DetectorKind::Scrfd,
        ] {
            assert_eq!(k.name().parse::<DetectorKind>().unwrap(), k);
        }
        assert!("yolo".parse::<DetectorKind>().is_err());
    }
}
