//! Face enhancers (restorers) on ONNX Runtime: GFPGAN 1.4, GPEN-BFR-256,
//! GPEN-BFR-512 and CodeFormer, as FaceFusion runs them (REFERENCE 2.7):
//!
//! 1. align the face to the model's template (`ffhq_512`; `arcface_128` for
//!    GPEN-BFR-256, where Deep-Live-Cam's narrow ArcFace crop is wrong) at the
//!    model size, border replicate;
//! 2. RGB, `x/127.5 − 1`, NCHW; CodeFormer also gets its fidelity `weight`;
//! 3. output clipped to [−1, 1], `(y+1)/2·255` rounded;
//! 4. pasted back through the inverse matrix over the face's rectangle only,
//!    with the blurred box mask (and the occlusion mask when chosen), float
//!    blend truncated to u8, then mixed with the frame by `blend/100`
//!    (`addWeighted`), so the face keeps some of its own texture.

use std::borrow::Cow;
use std::sync::Arc;

use super::masks::{Occluder, box_mask, combine_min};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::geometry::{
    Affine, Border, FF_ARCFACE_128, FFHQ_512, Sampler, round_even, umeyama, warp_affine,
};
use crate::runtime::{Input, Model, Runtime};
use crate::swap::paste::for_each_in_footprint;

/// The enhancer models the product knows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnhancerSpec {
    /// Manifest id.
    pub id: &'static str,
    /// Crop size.
    pub size: u32,
    /// Alignment template, normalised to [0, 1].
    pub template: [[f32; 2]; 5],
}

fn ffhq_norm() -> [[f32; 2]; 5] {
    FFHQ_512.map(|p| [p[0] / 512.0, p[1] / 512.0])
}

/// The spec for a manifest id.
pub fn spec(id: &str) -> Result<EnhancerSpec> {
    let id = ENHANCERS
        .iter()
        .copied()
        .find(|e| *e == id)
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "unknown face enhancer model {id:?} ({})",
                ENHANCERS.join(", ")
            ))
        })?;
    let (size, template) = if id == "gpen_bfr_256" {
        (256, FF_ARCFACE_128)
    } else {
        (512, ffhq_norm())
    };
    Ok(EnhancerSpec { id, size, template })
}

/// Enhancer ids, for help texts.
pub const ENHANCERS: [&str; 4] = ["gfpgan_1.4", "gpen_bfr_256", "gpen_bfr_512", "codeformer"];

/// FaceFusion's default mask blur.
pub const DEFAULT_MASK_BLUR: f32 = 0.3;

/// A loaded face enhancer.
#[derive(Debug, Clone)]
pub struct FaceEnhancer {
    spec: EnhancerSpec,
    model: Arc<Model>,
    box_mask: Vec<f32>,
    occluder: Option<Arc<Occluder>>,
    /// Fidelity weight for models that take one (CodeFormer), 0–1.
    weight: f32,
    /// How much of the enhanced face is mixed in, 0–1.
    blend: f32,
}

impl FaceEnhancer {
    /// Loads enhancer `id` from model bytes.
    pub fn load(
        rt: &Runtime,
        id: &str,
        bytes: &[u8],
        blend: f32,
        weight: f32,
        occluder: Option<Arc<Occluder>>,
    ) -> Result<Self> {
        let spec = spec(id)?;
        // The image input (the first) is fixed to the one size it is fed.
        let inputs = crate::onnx::OnnxModel::parse(bytes)?.inputs()?;
        let image = inputs.first().map(|i| i.name.clone()).unwrap_or_default();
        let size = spec.size as usize;
        let model = rt.load_fixed(id, bytes, &[(&image, &[1, 3, size, size])])?;
        if model.input_names().is_empty() || model.input_names().len() > 2 {
            return Err(Error::ModelSignature {
                model: id.into(),
                reason: "an enhancer has an image input and optionally a weight input".into(),
            });
        }
        Ok(Self {
            spec,
            model,
            box_mask: box_mask(spec.size, DEFAULT_MASK_BLUR, [0.0; 4]),
            occluder,
            weight: weight.clamp(0.0, 1.0),
            blend: blend.clamp(0.0, 1.0),
        })
    }

    /// The same model with other options (no reload).
    pub fn with_options(&self, blend: f32, weight: f32, occluder: Option<Arc<Occluder>>) -> Self {
        Self {
            weight: weight.clamp(0.0, 1.0),
            blend: blend.clamp(0.0, 1.0),
            occluder,
            ..self.clone()
        }
    }

    /// The spec.
    pub fn spec(&self) -> EnhancerSpec {
        self.spec
    }

    /// Models it runs.
    pub fn models(&self) -> Vec<&Model> {
        let mut v = vec![self.model.as_ref()];
        v.extend(self.occluder.as_deref().map(Occluder::model));
        v
    }

    /// The alignment matrix for five points.
    pub fn align_matrix(&self, kps: &[[f32; 2]; 5]) -> Result<Affine> {
        let s = self.spec.size as f32;
        let dst = self.spec.template.map(|p| [p[0] * s, p[1] * s]);
        umeyama(kps, &dst).ok_or_else(|| Error::InvalidInput("degenerate face points".into()))
    }

    /// The aligned crop and its matrix.
    pub fn crop(&self, frame: &Frame, kps: &[[f32; 2]; 5]) -> Result<(Frame, Affine)> {
        let m = self.align_matrix(kps)?;
        Ok((
            warp_affine(frame, &m, self.spec.size, self.spec.size, Border::Replicate),
            m,
        ))
    }

    /// Runs the model on an aligned crop; the enhanced crop, same size.
    pub fn run_crop(&self, crop: &Frame) -> Result<Frame> {
        let s = self.spec.size as usize;
        let plane = s * s;
        let mut blob = vec![0f32; 3 * plane];
        for (i, px) in crop.data().chunks_exact(3).enumerate() {
            for c in 0..3 {
                blob[c * plane + i] = (f32::from(px[c]) / 255.0 - 0.5) / 0.5;
            }
        }
        let shape = [1usize, 3, s, s];
        let w32 = [self.weight];
        let w64 = [f64::from(self.weight)];
        let mut inputs = vec![Input::F32(&shape, &blob)];
        if self.model.input_names().len() == 2 {
            inputs.push(if self.model.input_is_f64(1) {
                Input::F64(&[1], &w64)
            } else {
                Input::F32(&[1], &w32)
            });
        }
        let out = self.model.run_typed(&inputs)?;
        let y = out
            .into_iter()
            .next()
            .ok_or_else(|| Error::ModelSignature {
                model: self.spec.id.into(),
                reason: "no output".into(),
            })?;
        let (oh, ow) = match y.shape.as_slice() {
            [1, 3, h, w] => (*h, *w),
            other => {
                return Err(Error::ModelSignature {
                    model: self.spec.id.into(),
                    reason: format!("output shape {other:?}, expected 1×3×H×W"),
                });
            }
        };
        let op = oh * ow;
        let mut rgb = vec![0u8; 3 * op];
        for i in 0..op {
            for c in 0..3 {
                let v = y.data[c * op + i];
                let v = if v.is_nan() { -1.0 } else { v.clamp(-1.0, 1.0) };
                rgb[i * 3 + c] = round_even(f32::midpoint(v, 1.0) * 255.0).clamp(0.0, 255.0) as u8;
            }
        }
        let out = Frame::from_rgb(ow as u32, oh as u32, rgb)?;
        // Models that upscale (GFPGAN "1024" exports) are brought back to the crop size.
        Ok(if (ow, oh) == (s, s) {
            out
        } else {
            crate::imgproc::resize_bilinear(&out, s as u32, s as u32)
        })
    }

    /// The crop mask: the box, and the occlusion mask when loaded.
    pub fn crop_mask(&self, crop: &Frame) -> Result<Cow<'_, [f32]>> {
        match &self.occluder {
            Some(o) => Ok(Cow::Owned(combine_min(&[&self.box_mask, &o.mask(crop)?])?)),
            None => Ok(Cow::Borrowed(&self.box_mask)),
        }
    }

    /// Enhances the face with five points `kps` in place. Returns the
    /// rectangle that changed.
    pub fn enhance(
        &self,
        frame: &mut Frame,
        kps: &[[f32; 2]; 5],
    ) -> Result<Option<(u32, u32, u32, u32)>> {
        let (crop, m) = self.crop(frame, kps)?;
        let mask = self.crop_mask(&crop)?;
        let enhanced = self.run_crop(&crop)?;
        Ok(paste_blend(frame, &enhanced, &m, &mask, self.blend))
    }
}

/// FaceFusion's `paste_back` followed by its `addWeighted` blend, over the
/// crop's rectangle only: `p = trunc(o·(1−m) + c·m)`, then
/// `round(o·(1−b) + p·b)`. The mask is warped with border 0 and clipped to
/// [0, 1]; the crop with border replicate and rounded, as `cv2.warpAffine`
/// does for u8.
pub fn paste_blend(
    frame: &mut Frame,
    crop: &Frame,
    m: &Affine,
    mask: &[f32],
    blend: f32,
) -> Option<(u32, u32, u32, u32)> {
    let s = crop.width() as usize;
    let mask_s = Sampler::<f32, 1>::new(mask, s, s, Border::Constant(0.0));
    let crop_s = Sampler::<u8, 3>::new(crop.data(), s, s, Border::Replicate);
    let keep = 1.0 - blend;
    for_each_in_footprint(frame, m, crop.width(), 0, |px, sx, sy| {
        let al = mask_s.sample(sx, sy)[0].clamp(0.0, 1.0);
        if al == 0.0 {
            return;
        }
        let fake = crop_s.sample(sx, sy);
        for (o, v) in px.iter_mut().zip(fake) {
            let fv = round_even(v.clamp(0.0, 255.0));
            let orig = f32::from(*o);
            let pasted = (orig * (1.0 - al) + fv * al).clamp(0.0, 255.0).trunc();
            *o = round_even((orig * keep + pasted * blend).clamp(0.0, 255.0)) as u8;
        }
    })
}
