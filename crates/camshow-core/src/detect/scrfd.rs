//! SCRFD (`det_10g` of insightface's buffalo_l), exactly as insightface 0.7.3
//! runs it: top-left letterbox to 640×640, `(x − 127.5) / 128` RGB, three
//! strides (8, 16, 32) with two anchors per cell and no half-cell offset,
//! score ≥ 0.5, NMS at IoU > 0.4 with the `+1` area convention.

use std::sync::Arc;

use super::{DetectorKind, Face, FaceDetector, nms};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::imgproc::{ChannelOrder, Layout, letterbox_blob_to, to_blob};
use crate::runtime::{Input, Model, Runtime, TensorF32};

/// Detector input size.
pub const INPUT_SIZE: u32 = 640;
/// Score threshold.
pub const SCORE_THRESHOLD: f32 = 0.5;
/// NMS IoU threshold.
pub const NMS_THRESHOLD: f32 = 0.4;
const STRIDES: [usize; 3] = [8, 16, 32];
const ANCHORS: usize = 2;

/// The SCRFD detector.
#[derive(Debug)]
pub struct Scrfd {
    model: Arc<Model>,
}

impl Scrfd {
    /// Loads the model and checks it has the nine outputs of `det_10g`.
    pub fn load(rt: &Runtime, bytes: &[u8]) -> Result<Self> {
        let model = rt.load("det_10g", bytes)?;
        if model.output_names().len() != 9 {
            return Err(Error::ModelSignature {
                model: "det_10g".into(),
                reason: format!(
                    "expected 9 outputs (scores, boxes, points for 3 strides), found {}",
                    model.output_names().len()
                ),
            });
        }
        Ok(Self { model })
    }
}

/// Decodes the nine SCRFD outputs (scores ×3, distances ×3, points ×3, in
/// graph order) for a `size`×`size` input, divides by `det_scale` and applies NMS.
pub fn decode(outs: &[&[f32]], size: usize, det_scale: f32, threshold: f32) -> Result<Vec<Face>> {
    if outs.len() != 9 {
        return Err(Error::ModelSignature {
            model: "det_10g".into(),
            reason: format!("{} outputs, expected 9", outs.len()),
        });
    }
    let mut boxes = Vec::new();
    let mut scores = Vec::new();
    let mut points = Vec::new();
    for (level, &stride) in STRIDES.iter().enumerate() {
        let cells = size / stride;
        let n = cells * cells * ANCHORS;
        let (s, d, k) = (outs[level], outs[level + 3], outs[level + 6]);
        if s.len() != n || d.len() != n * 4 || k.len() != n * 10 {
            return Err(Error::ModelSignature {
                model: "det_10g".into(),
                reason: format!(
                    "stride {stride}: outputs hold {}/{}/{} values, expected {n}/{}/{}",
                    s.len(),
                    d.len(),
                    k.len(),
                    n * 4,
                    n * 10
                ),
            });
        }
        let st = stride as f32;
        for i in 0..n {
            if s[i] < threshold {
                continue;
            }
            let cell = i / ANCHORS;
            let cx = (cell % cells) as f32 * st;
            let cy = (cell / cells) as f32 * st;
            let b = &d[i * 4..i * 4 + 4];
            boxes.push([
                (cx - b[0] * st) / det_scale,
                (cy - b[1] * st) / det_scale,
                (cx + b[2] * st) / det_scale,
                (cy + b[3] * st) / det_scale,
            ]);
            let kp = &k[i * 10..i * 10 + 10];
            let mut p = [[0f32; 2]; 5];
            for (j, q) in p.iter_mut().enumerate() {
                *q = [
                    (cx + kp[2 * j] * st) / det_scale,
                    (cy + kp[2 * j + 1] * st) / det_scale,
                ];
            }
            points.push(p);
            scores.push(s[i]);
        }
    }
    Ok(nms(&boxes, &scores, NMS_THRESHOLD, true, false)
        .into_iter()
        .map(|i| Face {
            bbox: boxes[i],
            score: scores[i],
            kps: points[i],
            landmarks_106: None,
            embedding: None,
        })
        .collect())
}

impl FaceDetector for Scrfd {
    fn kind(&self) -> DetectorKind {
        DetectorKind::Scrfd
    }

    fn detect(&self, frame: &Frame) -> Result<Vec<Face>> {
        // The letterbox is written straight into the model's input buffer.
        let s = INPUT_SIZE as usize;
        let det_scale = std::cell::Cell::new(1.0);
        self.model.run_in_place(
            &[&[1, 3, s, s]],
            |_, blob, stamp| {
                det_scale.set(letterbox_blob_to(
                    frame,
                    (INPUT_SIZE, INPUT_SIZE),
                    127.5,
                    128.0,
                    blob,
                    stamp,
                ));
                Ok(())
            },
            |outs| {
                let mut data: [&[f32]; 9] = [&[]; 9];
                for (i, d) in data.iter_mut().enumerate() {
                    *d = outs.get(i)?.1;
                }
                decode(&data, s, det_scale.get(), SCORE_THRESHOLD)
            },
        )
    }

    fn models(&self) -> Vec<&Model> {
        vec![&self.model]
    }
}

impl Scrfd {
    /// Detection on an already letterboxed 640×640 input made with `det_scale`.
    pub fn detect_letterboxed(&self, canvas: &Frame, det_scale: f32) -> Result<Vec<Face>> {
        if (canvas.width(), canvas.height()) != (INPUT_SIZE, INPUT_SIZE) {
            return Err(Error::Internal(format!(
                "SCRFD input must be {INPUT_SIZE}×{INPUT_SIZE}"
            )));
        }
        self.run_blob(
            &to_blob(canvas, ChannelOrder::Rgb, Layout::Nchw, 127.5, 128.0),
            det_scale,
            &mut Vec::new(),
        )
    }

    fn run_blob(
        &self,
        blob: &[f32],
        det_scale: f32,
        outputs: &mut Vec<TensorF32>,
    ) -> Result<Vec<Face>> {
        let s = INPUT_SIZE as usize;
        self.model
            .run_into(&[Input::F32(&[1, 3, s, s], blob)], outputs)?;
        let data: Vec<&[f32]> = outputs.iter().map(|t| t.data.as_slice()).collect();
        decode(&data, s, det_scale, SCORE_THRESHOLD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(outs: &[TensorF32]) -> Vec<&[f32]> {
        outs.iter().map(|t| t.data.as_slice()).collect()
    }

    #[test]
    fn decodes_anchor_grid_without_half_offset() {
        let size = 64;
        let mut outs = Vec::new();
        let counts: Vec<usize> = STRIDES
            .iter()
            .map(|s| (size / s) * (size / s) * ANCHORS)
            .collect();
        for &n in &counts {
            outs.push(TensorF32 {
                shape: vec![n, 1],
                data: vec![0.0; n],
            });
        }
        for &n in &counts {
            outs.push(TensorF32 {
                shape: vec![n, 4],
                data: vec![1.0; n * 4],
            });
        }
        for &n in &counts {
            outs.push(TensorF32 {
                shape: vec![n, 10],
                data: vec![0.0; n * 10],
            });
        }
        // stride 16 (4x4 cells): cell row 1, col 2, second anchor
        let i = (4 + 2) * 2 + 1;
        outs[1].data[i] = 0.9;
        let faces = decode(&view(&outs), size, 0.5, SCORE_THRESHOLD).unwrap();
        assert_eq!(faces.len(), 1);
        // centre (32, 16); distances 1*16 each side; / det_scale 0.5
        assert_eq!(faces[0].bbox, [32.0, 0.0, 96.0, 64.0]);
        assert_eq!(faces[0].kps[0], [64.0, 32.0]);
        outs[0].data.pop();
        assert!(decode(&view(&outs), size, 1.0, SCORE_THRESHOLD).is_err());
        assert!(decode(&view(&outs[..8]), size, 1.0, SCORE_THRESHOLD).is_err());
    }
}
