//! MediaPipe BlazeFace, as packaged in keijiro's Barracuda ONNX files: the
//! short-range "front" 128×128 model for close faces and the full-range
//! "back" 256×256 model for far ones. Both are run and their detections merged
//! by MediaPipe's weighted non-maximum suppression.
//!
//! Each model has two heads: 16×16 cells with 2 anchors and 8×8 cells with 6
//! anchors (896 anchors). A row holds the box centre offset and size and six
//! key points (right eye, left eye, nose, mouth centre, two ears) in input
//! pixels relative to the anchor centre.

use std::sync::Arc;

use super::{DetectorKind, Face, FaceDetector, iou, output, sigmoid};
use crate::error::Result;
use crate::frame::Frame;
use crate::imgproc::{ChannelOrder, Layout, letterbox_top_left, to_blob};
use crate::runtime::{Model, Runtime, TensorF32};

/// Minimum sigmoid score of a detection.
pub const SCORE_THRESHOLD: f32 = 0.6;
/// IoU above which detections are merged.
pub const MERGE_IOU: f32 = 0.3;
/// Half the ArcFace template's mouth width divided by its eye distance: used
/// to place the mouth corners BlazeFace does not predict.
const MOUTH_HALF_WIDTH: f32 = 0.414;

/// The BlazeFace detector (both ranges).
#[derive(Debug)]
pub struct BlazeFace {
    front: Arc<Model>,
    back: Arc<Model>,
}

/// One raw detection in normalised input coordinates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Raw {
    score: f32,
    // cx, cy, w, h, then 6 key points (x, y)
    geo: [f32; 16],
}

impl Raw {
    fn rect(&self) -> [f32; 4] {
        let [cx, cy, w, h] = [self.geo[0], self.geo[1], self.geo[2], self.geo[3]];
        [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
    }
}

/// Decodes one head: `cells`×`cells` grid with `anchors` per cell.
pub(crate) fn decode_head(
    scores: &TensorF32,
    boxes: &TensorF32,
    cells: usize,
    anchors: usize,
    size: f32,
    out: &mut Vec<Raw>,
) {
    let n = cells * cells * anchors;
    if scores.data.len() < n || boxes.data.len() < n * 16 {
        return;
    }
    for y in 0..cells {
        for x in 0..cells {
            let ax = (x as f32 + 0.5) / cells as f32;
            let ay = (y as f32 + 0.5) / cells as f32;
            for a in 0..anchors {
                let i = (y * cells + x) * anchors + a;
                let score = sigmoid(scores.data[i]);
                if score <= SCORE_THRESHOLD {
                    continue;
                }
                let b = &boxes.data[i * 16..i * 16 + 16];
                let mut geo = [0f32; 16];
                geo[0] = ax + b[0] / size;
                geo[1] = ay + b[1] / size;
                geo[2] = b[2] / size;
                geo[3] = b[3] / size;
                for k in 0..6 {
                    geo[4 + 2 * k] = ax + b[4 + 2 * k] / size;
                    geo[5 + 2 * k] = ay + b[5 + 2 * k] / size;
                }
                out.push(Raw { score, geo });
            }
        }
    }
}

/// MediaPipe's weighted NMS: overlapping detections are averaged, weighted by score.
pub(crate) fn weighted_merge(mut raws: Vec<Raw>) -> Vec<Raw> {
    raws.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut used = vec![false; raws.len()];
    let mut out = Vec::new();
    for i in 0..raws.len() {
        if used[i] {
            continue;
        }
        used[i] = true;
        let mut acc = raws[i].geo.map(|v| v * raws[i].score);
        let mut total = raws[i].score;
        for j in i + 1..raws.len() {
            if !used[j] && iou(&raws[i].rect(), &raws[j].rect(), false) >= MERGE_IOU {
                used[j] = true;
                for (a, g) in acc.iter_mut().zip(raws[j].geo) {
                    *a += g * raws[j].score;
                }
                total += raws[j].score;
            }
        }
        out.push(Raw {
            score: raws[i].score,
            geo: acc.map(|v| v / total),
        });
    }
    out
}

impl BlazeFace {
    /// Loads both models.
    pub fn load(rt: &Runtime, front: &[u8], back: &[u8]) -> Result<Self> {
        Ok(Self {
            front: rt.load("blazeface_front", front)?,
            back: rt.load("blazeface_back", back)?,
        })
    }

    fn run(model: &Model, size: u32, square: &Frame) -> Result<Vec<Raw>> {
        let input = crate::imgproc::resize_bilinear(square, size, size);
        let blob = to_blob(&input, ChannelOrder::Rgb, Layout::Nhwc, 127.5, 127.5);
        let s = size as usize;
        let outs = model.run(&[(&[1, s, s, 3], &blob)])?;
        let mut raws = Vec::new();
        decode_head(
            output(&outs, model, "Identity:0", 0)?,
            output(&outs, model, "Identity_2:0", 2)?,
            16,
            2,
            size as f32,
            &mut raws,
        );
        decode_head(
            output(&outs, model, "Identity_1:0", 1)?,
            output(&outs, model, "Identity_3:0", 3)?,
            8,
            6,
            size as f32,
            &mut raws,
        );
        Ok(raws)
    }
}

impl FaceDetector for BlazeFace {
    fn kind(&self) -> DetectorKind {
        DetectorKind::BlazeFace
    }

    fn detect(&self, frame: &Frame) -> Result<Vec<Face>> {
        // Pad to a square (top-left) at up to 256 px so both models see the whole frame.
        let side = frame.width().max(frame.height()).min(256);
        let (square, scale) = letterbox_top_left(frame, side, side);
        let mut raws = Self::run(&self.front, 128, &square)?;
        raws.extend(Self::run(&self.back, 256, &square)?);
        // Normalised square coordinates -> frame pixels.
        let k = side as f32 / scale;
        let faces = weighted_merge(raws)
            .into_iter()
            .map(|r| {
                let [x1, y1, x2, y2] = r.rect().map(|v| v * k);
                let p = |i: usize| [r.geo[4 + 2 * i] * k, r.geo[5 + 2 * i] * k];
                let (eye_a, eye_b, nose, mouth) = (p(0), p(1), p(2), p(3));
                // Image-left eye first.
                let (left, right) = if eye_a[0] <= eye_b[0] {
                    (eye_a, eye_b)
                } else {
                    (eye_b, eye_a)
                };
                let d = [
                    (right[0] - left[0]) * MOUTH_HALF_WIDTH,
                    (right[1] - left[1]) * MOUTH_HALF_WIDTH,
                ];
                let kps = [
                    left,
                    right,
                    nose,
                    [mouth[0] - d[0], mouth[1] - d[1]],
                    [mouth[0] + d[0], mouth[1] + d[1]],
                ];
                Face {
                    bbox: [x1, y1, x2, y2],
                    score: r.score,
                    kps,
                    landmarks_106: None,
                    embedding: None,
                }
            })
            .filter(|f| {
                f.bbox[2] > 0.0
                    && f.bbox[3] > 0.0
                    && f.bbox[0] < frame.width() as f32
                    && f.bbox[1] < frame.height() as f32
            })
            .map(|mut f| {
                // Boxes of faces at the edge reach past it: clamp them to the picture.
                f.bbox = clamp_box(f.bbox, frame.width(), frame.height());
                f
            })
            .collect();
        Ok(faces)
    }

    fn models(&self) -> Vec<&Model> {
        vec![&self.front, &self.back]
    }
}

/// `[x1, y1, x2, y2]` clamped to a `width`×`height` picture.
fn clamp_box(b: [f32; 4], width: u32, height: u32) -> [f32; 4] {
    let (w, h) = (width as f32, height as f32);
    [
        b[0].clamp(0.0, w),
        b[1].clamp(0.0, h),
        b[2].clamp(0.0, w),
        b[3].clamp(0.0, h),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_are_clamped_to_the_picture() {
        assert_eq!(
            clamp_box([-5.0, -2.0, 120.0, 90.0], 100, 80),
            [0.0, 0.0, 100.0, 80.0]
        );
        assert_eq!(
            clamp_box([5.0, 6.0, 50.0, 60.0], 100, 80),
            [5.0, 6.0, 50.0, 60.0]
        );
    }

    #[test]
    fn head_decoding_and_merge() {
        let n = 16 * 16 * 2;
        let mut scores = vec![-10.0; n];
        let mut boxes = vec![0.0; n * 16];
        // cell (x=4, y=2), anchor 1
        let i = (2 * 16 + 4) * 2 + 1;
        scores[i] = 5.0;
        boxes[i * 16 + 2] = 32.0; // width in pixels of a 128 input
        boxes[i * 16 + 3] = 16.0;
        // the neighbouring anchor predicts almost the same box with a lower score
        scores[i - 1] = 2.0;
        boxes[(i - 1) * 16 + 2] = 32.0;
        boxes[(i - 1) * 16 + 3] = 16.0;
        let t = |shape: &[usize], data: Vec<f32>| TensorF32 {
            shape: shape.to_vec(),
            data,
        };
        let mut raws = Vec::new();
        decode_head(
            &t(&[1, n, 1], scores),
            &t(&[1, n, 16], boxes),
            16,
            2,
            128.0,
            &mut raws,
        );
        assert_eq!(raws.len(), 2);
        let merged = weighted_merge(raws);
        assert_eq!(merged.len(), 1);
        let r = merged[0];
        assert!((r.geo[0] - 4.5 / 16.0).abs() < 1e-6);
        assert!((r.geo[2] - 0.25).abs() < 1e-6);
        assert!((r.score - sigmoid(5.0)).abs() < 1e-6);
    }
}
