//! CenterFace: an anchor-free detector with a heatmap, box scales, offsets
//! and five landmarks per cell (stride 4). Decoding follows `deface`'s
//! `CenterFace.decode`.

use std::sync::Arc;

use super::{DetectorKind, Face, FaceDetector, nms, output};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::imgproc::{ChannelOrder, Layout, resize_bilinear, to_blob};
use crate::onnx::{Dim, OnnxModel};
use crate::runtime::{Model, Runtime, TensorF32};

/// Score threshold on the heatmap.
pub const SCORE_THRESHOLD: f32 = 0.5;
/// NMS IoU threshold (inclusive, no +1).
pub const NMS_THRESHOLD: f32 = 0.3;
/// Frames are scaled down so their long side is at most this before detection.
pub const MAX_SIDE: u32 = 640;

/// The CenterFace detector.
#[derive(Debug)]
pub struct CenterFace {
    model: Arc<Model>,
}

const INPUT: &str = "input.1";
const OUTPUTS: [(&str, i64); 4] = [("537", 1), ("538", 2), ("539", 2), ("540", 10)];

impl CenterFace {
    /// Loads the model, first making its fixed 32×32 input size dynamic.
    pub fn load(rt: &Runtime, bytes: &[u8]) -> Result<Self> {
        let parsed = OnnxModel::parse(bytes)?;
        let sym = |s: &str| Dim::Symbolic(s.into());
        let mut shapes = vec![(INPUT, vec![sym("B"), Dim::Fixed(3), sym("H"), sym("W")])];
        for (name, c) in OUTPUTS {
            shapes.push((name, vec![sym("B"), Dim::Fixed(c), sym("h"), sym("w")]));
        }
        let dynamic = parsed
            .with_io_shapes(&shapes)
            .map_err(|e| Error::ModelSignature {
                model: "centerface".into(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            model: rt.load("centerface", &dynamic)?,
        })
    }
}

/// Decodes CenterFace outputs for an input of `in_w`×`in_h`; coordinates are
/// divided by `(sx, sy)` to get back to the frame.
pub fn decode(
    outs: [&TensorF32; 4],
    in_w: usize,
    in_h: usize,
    sx: f32,
    sy: f32,
    threshold: f32,
) -> Vec<Face> {
    let [heat, scale, offset, lms] = outs;
    let (h, w) = (in_h / 4, in_w / 4);
    let plane = h * w;
    if heat.data.len() < plane
        || scale.data.len() < 2 * plane
        || offset.data.len() < 2 * plane
        || lms.data.len() < 10 * plane
    {
        return Vec::new();
    }
    let mut boxes = Vec::new();
    let mut scores = Vec::new();
    let mut points = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let s = heat.data[i];
            if s <= threshold {
                continue;
            }
            let s0 = scale.data[i].exp() * 4.0;
            let s1 = scale.data[plane + i].exp() * 4.0;
            let o0 = offset.data[i];
            let o1 = offset.data[plane + i];
            let x1 = ((x as f32 + o1 + 0.5) * 4.0 - s1 / 2.0)
                .max(0.0)
                .min(in_w as f32);
            let y1 = ((y as f32 + o0 + 0.5) * 4.0 - s0 / 2.0)
                .max(0.0)
                .min(in_h as f32);
            let x2 = (x1 + s1).min(in_w as f32);
            let y2 = (y1 + s0).min(in_h as f32);
            let mut kps = [[0f32; 2]; 5];
            for (j, kp) in kps.iter_mut().enumerate() {
                kp[0] = (lms.data[(j * 2 + 1) * plane + i] * s1 + x1) / sx;
                kp[1] = (lms.data[(j * 2) * plane + i] * s0 + y1) / sy;
            }
            boxes.push([x1, y1, x2, y2]);
            scores.push(s);
            points.push(kps);
        }
    }
    nms(&boxes, &scores, NMS_THRESHOLD, false, true)
        .into_iter()
        .map(|k| {
            let b = boxes[k];
            Face {
                bbox: [b[0] / sx, b[1] / sy, b[2] / sx, b[3] / sy],
                score: scores[k],
                kps: points[k],
                landmarks_106: None,
                embedding: None,
            }
        })
        .collect()
}

impl FaceDetector for CenterFace {
    fn kind(&self) -> DetectorKind {
        DetectorKind::CenterFace
    }

    fn detect(&self, frame: &Frame) -> Result<Vec<Face>> {
        let (fw, fh) = (frame.width(), frame.height());
        let shrink = (f64::from(MAX_SIDE) / f64::from(fw.max(fh))).min(1.0);
        let round32 = |v: u32| ((f64::from(v) * shrink / 32.0).ceil() as u32).max(1) * 32;
        let (in_w, in_h) = (round32(fw), round32(fh));
        let resized = resize_bilinear(frame, in_w, in_h);
        let blob = to_blob(&resized, ChannelOrder::Rgb, Layout::Nchw, 0.0, 1.0);
        let outs = self
            .model
            .run(&[(&[1, 3, in_h as usize, in_w as usize], &blob)])?;
        let get = |i: usize| output(&outs, &self.model, OUTPUTS[i].0, i);
        let (sx, sy) = (in_w as f32 / fw as f32, in_h as f32 / fh as f32);
        Ok(decode(
            [get(0)?, get(1)?, get(2)?, get(3)?],
            in_w as usize,
            in_h as usize,
            sx,
            sy,
            SCORE_THRESHOLD,
        ))
    }

    fn models(&self) -> Vec<&Model> {
        vec![&self.model]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], data: Vec<f32>) -> TensorF32 {
        TensorF32 {
            shape: shape.to_vec(),
            data,
        }
    }

    #[test]
    fn decodes_one_peak() {
        // 32x32 input -> 8x8 maps; a peak at row 2, col 3.
        let plane = 64;
        let mut heat = vec![0.0; plane];
        heat[2 * 8 + 3] = 0.9;
        heat[5 * 8 + 5] = 0.4; // below threshold
        let mut scale = vec![0.0; 2 * plane];
        scale[2 * 8 + 3] = (8.0f32 / 4.0).ln(); // height 8
        scale[plane + 2 * 8 + 3] = (4.0f32 / 4.0).ln(); // width 4
        let offset = vec![0.0; 2 * plane];
        let mut lms = vec![0.0; 10 * plane];
        lms[plane + 2 * 8 + 3] = 0.5; // point 0 x offset, in units of width
        let faces = decode(
            [
                &t(&[1, 1, 8, 8], heat),
                &t(&[1, 2, 8, 8], scale),
                &t(&[1, 2, 8, 8], offset),
                &t(&[1, 10, 8, 8], lms),
            ],
            32,
            32,
            1.0,
            1.0,
            SCORE_THRESHOLD,
        );
        assert_eq!(faces.len(), 1);
        let f = &faces[0];
        // centre x = (3 + 0.5) * 4 = 14, width 4 -> 12..16 ; centre y = 10, height 8 -> 6..14
        assert_eq!(f.bbox, [12.0, 6.0, 16.0, 14.0]);
        assert_eq!(f.kps[0], [14.0, 6.0]);
        assert!((f.score - 0.9).abs() < 1e-6);
    }
}
