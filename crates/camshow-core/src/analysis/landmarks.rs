//! 106-point landmarks (`2d106det`), as insightface's `Landmark.get`: a
//! 192×192 crop centred on the box, scaled so the box's long side is 1/1.5 of
//! the crop, raw 0–255 RGB input, output `(p + 1) · 96` mapped back.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::geometry::{Affine, Border, apply, invert_affine, warp_affine};
use crate::imgproc::{ChannelOrder, Layout, to_blob};
use crate::runtime::{Model, Runtime};

/// Crop size.
pub const INPUT_SIZE: u32 = 192;

/// The 106-point landmarker.
#[derive(Debug, Clone)]
pub struct Landmark106 {
    model: Arc<Model>,
}

/// The crop transform for a box: scale about the box centre, then centre in the crop.
pub fn crop_transform(bbox: &[f32; 4]) -> Affine {
    let (w, h) = (f64::from(bbox[2] - bbox[0]), f64::from(bbox[3] - bbox[1]));
    let (cx, cy) = (
        f64::from(bbox[2] + bbox[0]) / 2.0,
        f64::from(bbox[3] + bbox[1]) / 2.0,
    );
    let s = f64::from(INPUT_SIZE) / (w.max(h) * 1.5);
    let half = f64::from(INPUT_SIZE / 2);
    [[s, 0.0, -cx * s + half], [0.0, s, -cy * s + half]]
}

impl Landmark106 {
    /// Loads the model.
    pub fn load(rt: &Runtime, bytes: &[u8]) -> Result<Self> {
        Ok(Self {
            model: rt.load("2d106det", bytes)?,
        })
    }

    /// The loaded model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// 106 points for the face in `bbox`.
    pub fn landmarks(&self, frame: &Frame, bbox: &[f32; 4]) -> Result<Vec<[f32; 2]>> {
        let m = crop_transform(bbox);
        let crop = warp_affine(frame, &m, INPUT_SIZE, INPUT_SIZE, Border::Constant(0.0));
        let blob = to_blob(&crop, ChannelOrder::Rgb, Layout::Nchw, 0.0, 1.0);
        let s = INPUT_SIZE as usize;
        let out = self.model.run(&[(&[1, 3, s, s], &blob)])?;
        let data = out.into_iter().next().map(|t| t.data).unwrap_or_default();
        if data.len() < 212 {
            return Err(Error::ModelSignature {
                model: "2d106det".into(),
                reason: format!("output has {} values, expected 212", data.len()),
            });
        }
        let pts = &data[data.len() - 212..];
        let im = invert_affine(&m);
        let half = (INPUT_SIZE / 2) as f32;
        Ok(pts
            .chunks_exact(2)
            .map(|p| apply(&im, [(p[0] + 1.0) * half, (p[1] + 1.0) * half]))
            .collect())
    }
}
