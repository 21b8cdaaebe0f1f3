//! ArcFace identity embeddings (`w600k_r50`): 112×112 crop aligned with
//! insightface's `norm_crop`, `(x − 127.5) / 127.5` RGB, 512 values,
//! L2-normalised.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::geometry::{Border, estimate_norm, warp_affine};
use crate::imgproc::{ChannelOrder, Layout, to_blob};
use crate::runtime::{Model, Runtime};

/// Crop size.
pub const INPUT_SIZE: u32 = 112;

/// The ArcFace recognizer.
#[derive(Debug, Clone)]
pub struct ArcFace {
    model: Arc<Model>,
}

impl ArcFace {
    /// Loads the model.
    pub fn load(rt: &Runtime, bytes: &[u8]) -> Result<Self> {
        Ok(Self {
            model: rt.load("w600k_r50", bytes)?,
        })
    }

    /// The loaded model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The aligned 112×112 crop for five points.
    pub fn crop(frame: &Frame, kps: &[[f32; 2]; 5]) -> Result<Frame> {
        let m = estimate_norm(kps, INPUT_SIZE)
            .ok_or_else(|| Error::InvalidInput("degenerate face points".into()))?;
        Ok(warp_affine(
            frame,
            &m,
            INPUT_SIZE,
            INPUT_SIZE,
            Border::Constant(0.0),
        ))
    }

    /// The raw embedding of an aligned crop.
    pub fn embed_crop(&self, crop: &Frame) -> Result<Vec<f32>> {
        let blob = to_blob(crop, ChannelOrder::Rgb, Layout::Nchw, 127.5, 127.5);
        let s = INPUT_SIZE as usize;
        let out = self.model.run(&[(&[1, 3, s, s], &blob)])?;
        Ok(out.into_iter().next().map(|t| t.data).unwrap_or_default())
    }

    /// The raw embedding of the face at `kps`.
    pub fn embedding(&self, frame: &Frame, kps: &[[f32; 2]; 5]) -> Result<Vec<f32>> {
        self.embed_crop(&Self::crop(frame, kps)?)
    }

    /// The L2-normalised embedding of the face at `kps`.
    pub fn normed_embedding(&self, frame: &Frame, kps: &[[f32; 2]; 5]) -> Result<Vec<f32>> {
        Ok(normalize(self.embedding(frame, kps)?))
    }
}

/// Divides by the L2 norm (zero vectors stay zero).
pub fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let n = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt() as f32;
    if n > 0.0 {
        for x in &mut v {
            *x /= n;
        }
    }
    v
}
