//! Crop-space face masks and the combiner (FaceFusion's `face_masker`,
//! REFERENCE 2.6c / 3.8): every mask is a float image in [0, 1] the size of
//! the aligned crop, and the masks in force are combined by their
//! element-wise **minimum**, so each one can only take pixels away.
//!
//! * [`box_mask`]: the crop with its edges zeroed and blurred (the default);
//! * [`Occluder`]: DeepFaceLab's XSeg occlusion model (hands, microphones,
//!   glasses in front of the face);
//! * [`polygon_mask`] / [`feather`]: filled polygons (the mouth mask) with a
//!   Gaussian feather.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::runtime::{Model, Runtime};
use crate::swap::paste::gaussian_blur;

/// Which masks, besides the swapper's own feather, shape a pasted face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FaceMaskKind {
    /// FaceFusion's blurred box (edges of the crop faded out).
    Box,
    /// The XSeg occlusion model: keeps whatever covers the face in front of it.
    Occlusion,
    /// The BiSeNet face parser: only the chosen face regions are replaced.
    Region,
}

impl FromStr for FaceMaskKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "box" => Ok(Self::Box),
            "occlusion" => Ok(Self::Occlusion),
            "region" => Ok(Self::Region),
            _ => Err(Error::InvalidInput(format!(
                "unknown face mask {s:?} (box, occlusion, region)"
            ))),
        }
    }
}

impl fmt::Display for FaceMaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Box => "box",
            Self::Occlusion => "occlusion",
            Self::Region => "region",
        })
    }
}

/// OpenCV's kernel size for `GaussianBlur(ksize=(0,0), sigma)` on float
/// images: `round(σ·4·2 + 1) | 1`.
pub fn float_kernel_size(sigma: f64) -> usize {
    (((sigma * 8.0 + 1.0).round_ties_even() as i64) | 1).max(1) as usize
}

/// FaceFusion's `create_box_mask` for a `size`×`size` crop: ones, with
/// `max(blur_area, padding%)` rows/columns zeroed at each edge (`padding` is
/// top, right, bottom, left in percent), then a Gaussian of σ =
/// `int(size·0.5·blur)·0.25`.
pub fn box_mask(size: u32, blur: f32, padding: [f32; 4]) -> Vec<f32> {
    let s = size as usize;
    let blur_amount = (size as f32 * 0.5 * blur.max(0.0)) as usize;
    let blur_area = (blur_amount / 2).max(1);
    let pad = |p: f32| {
        blur_area
            .max((size as f32 * p.clamp(0.0, 100.0) / 100.0) as usize)
            .min(s)
    };
    let (top, right, bottom, left) = (
        pad(padding[0]),
        pad(padding[1]),
        pad(padding[2]),
        pad(padding[3]),
    );
    let mut m = vec![1f32; s * s];
    for y in 0..s {
        for x in 0..s {
            if y < top || y >= s - bottom || x < left || x >= s - right {
                m[y * s + x] = 0.0;
            }
        }
    }
    if blur_amount > 0 {
        let sigma = blur_amount as f64 * 0.25;
        m = gaussian_blur(&m, s, s, float_kernel_size(sigma), sigma);
    }
    m
}

/// Element-wise minimum of equally sized masks, clipped to [0, 1].
pub fn combine_min(masks: &[&[f32]]) -> Result<Vec<f32>> {
    let first = masks
        .first()
        .ok_or_else(|| Error::Internal("no masks to combine".into()))?;
    if masks.iter().any(|m| m.len() != first.len()) {
        return Err(Error::Internal("masks of different sizes".into()));
    }
    Ok((0..first.len())
        .map(|i| {
            masks
                .iter()
                .map(|m| m[i])
                .fold(1.0f32, f32::min)
                .clamp(0.0, 1.0)
        })
        .collect())
}

/// Bilinear resize of a single-channel float image with `cv2.resize`
/// (INTER_LINEAR) pixel-centre alignment.
pub fn resize_f32(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    if sw == dw && sh == dh {
        return src.to_vec();
    }
    let axis = |d: usize, s: usize| -> Vec<(usize, usize, f32)> {
        let scale = s as f32 / d as f32;
        (0..d)
            .map(|i| {
                let f = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (f as usize).min(s - 1);
                let i1 = (i0 + 1).min(s - 1);
                (i0, i1, f - i0 as f32)
            })
            .collect()
    };
    let (xs, ys) = (axis(dw, sw), axis(dh, sh));
    let mut out = vec![0f32; dw * dh];
    for (y, &(y0, y1, fy)) in ys.iter().enumerate() {
        for (x, &(x0, x1, fx)) in xs.iter().enumerate() {
            let top = src[y0 * sw + x0] * (1.0 - fx) + src[y0 * sw + x1] * fx;
            let bot = src[y1 * sw + x0] * (1.0 - fx) + src[y1 * sw + x1] * fx;
            out[y * dw + x] = top * (1.0 - fy) + bot * fy;
        }
    }
    out
}

/// A filled polygon on a `w`×`h` canvas (1 inside, 0 outside), sampled at
/// pixel centres with the even–odd rule.
pub fn polygon_mask(points: &[[f32; 2]], w: usize, h: usize) -> Vec<f32> {
    let mut m = vec![0f32; w * h];
    if points.len() < 3 {
        return m;
    }
    let mut xs = Vec::with_capacity(points.len());
    for y in 0..h {
        let py = y as f32 + 0.5;
        xs.clear();
        for i in 0..points.len() {
            let (a, b) = (points[i], points[(i + 1) % points.len()]);
            if (a[1] <= py) != (b[1] <= py) {
                xs.push(a[0] + (py - a[1]) / (b[1] - a[1]) * (b[0] - a[0]));
            }
        }
        xs.sort_by(f32::total_cmp);
        for pair in xs.chunks_exact(2) {
            let x0 = (pair[0] - 0.5).ceil().max(0.0) as usize;
            let x1 = (pair[1] - 0.5).floor();
            if x1 < 0.0 {
                continue;
            }
            for x in x0..=(x1 as usize).min(w.saturating_sub(1)) {
                m[y * w + x] = 1.0;
            }
        }
    }
    m
}

/// Gaussian feather of a mask with a `2·radius+1` kernel (σ derived from it,
/// as OpenCV does for σ = 0), renormalised so its peak is 1.
pub fn feather(mask: &[f32], w: usize, h: usize, radius: usize) -> Vec<f32> {
    let mut m = gaussian_blur(mask, w, h, 2 * radius + 1, 0.0);
    let peak = m.iter().copied().fold(0.0f32, f32::max);
    if peak > 0.0 {
        for v in &mut m {
            *v /= peak;
        }
    }
    m
}

/// DeepFaceLab's XSeg occlusion model (input NHWC 1×256×256×3, BGR /255;
/// output 256×256×1, 1 where the face is visible), post-processed as
/// FaceFusion does: resized to the crop, `(clip(blur σ5, 0.5, 1) − 0.5)·2`.
#[derive(Debug, Clone)]
pub struct Occluder {
    model: Arc<Model>,
    size: usize,
}

impl Occluder {
    /// Loads an XSeg model.
    pub fn load(rt: &Runtime, name: &str, bytes: &[u8]) -> Result<Self> {
        let model = rt.load(name, bytes)?;
        if model.input_names().len() != 1 {
            return Err(Error::ModelSignature {
                model: name.into(),
                reason: "an occlusion model has one input".into(),
            });
        }
        Ok(Self { model, size: 256 })
    }

    /// The loaded model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The occlusion mask of an aligned crop, crop-sized, in [0, 1].
    pub fn mask(&self, crop: &Frame) -> Result<Vec<f32>> {
        let s = self.size;
        let small = crate::imgproc::resize_bilinear(crop, s as u32, s as u32);
        let mut blob = Vec::with_capacity(s * s * 3);
        for px in small.data().chunks_exact(3) {
            blob.extend([
                f32::from(px[2]) / 255.0,
                f32::from(px[1]) / 255.0,
                f32::from(px[0]) / 255.0,
            ]);
        }
        let out = self.model.run(&[(&[1, s, s, 3], &blob)])?;
        let m = out
            .into_iter()
            .next()
            .ok_or_else(|| Error::ModelSignature {
                model: self.model.name().into(),
                reason: "no output".into(),
            })?;
        if m.data.len() != s * s {
            return Err(Error::ModelSignature {
                model: self.model.name().into(),
                reason: format!("output has {} values, expected 256×256", m.data.len()),
            });
        }
        Ok(occlusion_postprocess(
            &m.data,
            s,
            crop.width() as usize,
            crop.height() as usize,
        ))
    }
}

/// FaceFusion's occlusion post-processing of a raw `s`×`s` model output:
/// clipped to [0, 1], resized to the crop, `(clip(blur σ5, 0.5, 1) − 0.5)·2`.
pub fn occlusion_postprocess(raw: &[f32], s: usize, cw: usize, ch: usize) -> Vec<f32> {
    let clipped: Vec<f32> = raw
        .iter()
        .map(|v| if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) })
        .collect();
    let resized = resize_f32(&clipped, s, s, cw, ch);
    let blurred = gaussian_blur(&resized, cw, ch, float_kernel_size(5.0), 5.0);
    blurred
        .into_iter()
        .map(|v| (v.clamp(0.5, 1.0) - 0.5) * 2.0)
        .collect()
}

/// Face regions of the BiSeNet face parser (CelebAMask-HQ classes), as
/// FaceFusion names them.
pub const FACE_REGIONS: [(&str, usize); 10] = [
    ("skin", 1),
    ("left-eyebrow", 2),
    ("right-eyebrow", 3),
    ("left-eye", 4),
    ("right-eye", 5),
    ("glasses", 6),
    ("nose", 10),
    ("mouth", 11),
    ("upper-lip", 12),
    ("lower-lip", 13),
];

/// The parser class ids of region names; an unknown name is an error.
pub fn region_classes(names: &[String]) -> Result<Vec<usize>> {
    names
        .iter()
        .map(|n| {
            FACE_REGIONS
                .iter()
                .find(|r| r.0 == n)
                .map(|r| r.1)
                .ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "unknown face region {n:?} ({})",
                        FACE_REGIONS.map(|r| r.0).join(", ")
                    ))
                })
        })
        .collect()
}

/// The BiSeNet face parser (input 1×3×512×512 RGB with ImageNet mean and
/// deviation; output 1×19×512×512 class scores): the pixels whose best class
/// is one of the chosen regions, post-processed like the occlusion mask
/// (FaceFusion's `create_region_mask`).
#[derive(Debug, Clone)]
pub struct RegionMasker {
    model: Arc<Model>,
    classes: Vec<usize>,
}

const PARSER_SIZE: usize = 512;

impl RegionMasker {
    /// Loads a parser keeping `classes` (see [`region_classes`]).
    pub fn load(rt: &Runtime, name: &str, bytes: &[u8], classes: Vec<usize>) -> Result<Self> {
        let model = rt.load(name, bytes)?;
        if model.input_names().len() != 1 {
            return Err(Error::ModelSignature {
                model: name.into(),
                reason: "a face parser has one input".into(),
            });
        }
        Ok(Self { model, classes })
    }

    /// The same parser keeping other classes (no reload).
    pub fn with_classes(&self, classes: Vec<usize>) -> Self {
        Self {
            model: Arc::clone(&self.model),
            classes,
        }
    }

    /// The loaded model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The region mask of an aligned crop, crop-sized, in [0, 1].
    pub fn mask(&self, crop: &Frame) -> Result<Vec<f32>> {
        const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
        const STD: [f32; 3] = [0.229, 0.224, 0.225];
        let s = PARSER_SIZE;
        let small = crate::imgproc::resize_bilinear(crop, s as u32, s as u32);
        let plane = s * s;
        let mut blob = vec![0f32; 3 * plane];
        for (i, px) in small.data().chunks_exact(3).enumerate() {
            for c in 0..3 {
                blob[c * plane + i] = (f32::from(px[c]) / 255.0 - MEAN[c]) / STD[c];
            }
        }
        let out = self.model.run(&[(&[1, 3, s, s], &blob)])?;
        let y = out
            .into_iter()
            .next()
            .ok_or_else(|| Error::ModelSignature {
                model: self.model.name().into(),
                reason: "no output".into(),
            })?;
        let classes = y.data.len() / plane;
        if classes < 14 || classes * plane != y.data.len() {
            return Err(Error::ModelSignature {
                model: self.model.name().into(),
                reason: format!("output shape {:?}, expected 1×19×512×512", y.shape),
            });
        }
        let keep: Vec<f32> = (0..plane)
            .map(|i| {
                let mut best = (f32::NEG_INFINITY, 0);
                for k in 0..classes {
                    let v = y.data[k * plane + i];
                    if v > best.0 {
                        best = (v, k);
                    }
                }
                if self.classes.contains(&best.1) {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        Ok(occlusion_postprocess(
            &keep,
            s,
            crop.width() as usize,
            crop.height() as usize,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_mask_fades_edges_and_keeps_the_centre() {
        let m = box_mask(128, 0.3, [0.0; 4]);
        assert_eq!(m.len(), 128 * 128);
        assert!(m[64 * 128 + 64] > 0.999, "centre {}", m[64 * 128 + 64]);
        assert!(m[0] < 0.01 && m[127] < 0.01 && m[127 * 128] < 0.01);
        // Symmetric and monotone from the edge inwards.
        for x in 0..64 {
            assert!((m[64 * 128 + x] - m[64 * 128 + 127 - x]).abs() < 1e-5);
            assert!(m[64 * 128 + x] <= m[64 * 128 + x + 1] + 1e-6);
        }
        // No blur: a hard box with one zero row/column at each edge.
        let hard = box_mask(16, 0.0, [0.0; 4]);
        assert_eq!(hard[0], 0.0);
        assert_eq!(hard[16 + 1], 1.0);
        // Padding: the top 25 % is cut.
        let padded = box_mask(64, 0.0, [25.0, 0.0, 0.0, 0.0]);
        assert_eq!(padded[15 * 64 + 32], 0.0);
        assert_eq!(padded[16 * 64 + 32], 1.0);
    }

    #[test]
    fn region_masks_keep_the_chosen_classes() {
        use crate::onnx::{ModelBuilder, fixed};
        // A parser stand-in: class scores are a 1×1 convolution of the
        // normalised pixel, so red pixels are "skin" (1) and dark ones "background" (0).
        let mut w = vec![0f32; 19 * 3];
        w[3] = 1.0; // class 1 ← R
        w[0] = -1.0; // class 0 ← −R
        for k in 2..19 {
            w[k * 3] = -5.0;
        }
        let bytes = ModelBuilder::new("parser", 13)
            .input("input", &fixed(&[1, 3, 512, 512]))
            .initializer("W", &[19, 3, 1, 1], &w)
            .node("Conv", &["input", "W"], &["out"], &[])
            .output("out", &fixed(&[1, 19, 512, 512]))
            .build();
        let rt = crate::runtime::Runtime::new(crate::runtime::RuntimeSettings::default()).unwrap();
        let masker = RegionMasker::load(
            &rt,
            "parser",
            &bytes,
            region_classes(&["skin".into(), "nose".into()]).unwrap(),
        )
        .unwrap();
        let mut crop = Frame::filled(128, 128, [10, 10, 10]).unwrap();
        for y in 0..128 {
            for x in 0..64 {
                crop.put_pixel(x, y, [230, 40, 40]);
            }
        }
        let m = masker.mask(&crop).unwrap();
        assert_eq!(m.len(), 128 * 128);
        assert!(m[64 * 128 + 10] > 0.99, "skin kept: {}", m[64 * 128 + 10]);
        assert!(
            m[64 * 128 + 120] < 0.01,
            "background dropped: {}",
            m[64 * 128 + 120]
        );
        assert!(region_classes(&["hair".into()]).is_err());
    }

    #[test]
    fn kernel_size_matches_opencv() {
        assert_eq!(float_kernel_size(4.75), 39);
        assert_eq!(float_kernel_size(19.0), 153);
        assert_eq!(float_kernel_size(5.0), 41);
    }

    #[test]
    fn combine_takes_the_minimum() {
        let a = [0.2f32, 1.0, 0.7, 1.5];
        let b = [0.5f32, 0.1, 0.9, 1.2];
        assert_eq!(combine_min(&[&a, &b]).unwrap(), vec![0.2, 0.1, 0.7, 1.0]);
        assert!(combine_min(&[&a, &b[..2]]).is_err());
        assert!(combine_min(&[]).is_err());
    }

    #[test]
    fn polygon_fills_inside_only_and_clips_at_edges() {
        let square = [[2.0, 2.0], [6.0, 2.0], [6.0, 6.0], [2.0, 6.0]];
        let m = polygon_mask(&square, 8, 8);
        let inside: f32 = m.iter().sum();
        assert_eq!(inside, 16.0);
        assert_eq!(m[2 * 8 + 2], 1.0);
        assert_eq!(m[6 * 8 + 6], 0.0);
        // Partly outside the canvas: no panic, only the visible part is set.
        let off = [[-5.0, -5.0], [3.0, -5.0], [3.0, 3.0], [-5.0, 3.0]];
        let m = polygon_mask(&off, 8, 8);
        assert_eq!(m.iter().sum::<f32>(), 9.0);
        let far = [[20.0, 20.0], [30.0, 20.0], [30.0, 30.0]];
        assert_eq!(polygon_mask(&far, 8, 8).iter().sum::<f32>(), 0.0);
    }

    #[test]
    fn feather_peaks_at_one_and_softens_the_edge() {
        let square = [[8.0, 8.0], [24.0, 8.0], [24.0, 24.0], [8.0, 24.0]];
        let m = feather(&polygon_mask(&square, 32, 32), 32, 32, 4);
        let peak = m.iter().copied().fold(0.0f32, f32::max);
        assert!((peak - 1.0).abs() < 1e-6);
        let edge = m[16 * 32 + 8];
        assert!(edge > 0.2 && edge < 0.8, "edge {edge}");
        assert!(m[0] < 1e-3);
    }

    #[test]
    fn resize_is_identity_at_same_size_and_keeps_constants() {
        let v: Vec<f32> = (0..16).map(|i| i as f32).collect();
        assert_eq!(resize_f32(&v, 4, 4, 4, 4), v);
        let c = vec![0.5f32; 64];
        assert!(
            resize_f32(&c, 8, 8, 13, 5)
                .iter()
                .all(|x| (x - 0.5).abs() < 1e-6)
        );
    }
}
