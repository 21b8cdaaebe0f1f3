//! The model-free swapper: the source face warped onto each target's five
//! points, recoloured to the target's skin in L*a*b*, feathered in.

use super::{FaceSwapper, SourceIdentity, SourceNeed, colour, paste};
use crate::detect::Face;
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::geometry::{Affine, Border, estimate_norm, warp_affine, warp_affine_into};

/// Crop size: large enough to keep detail for faces up to ~300 px.
pub const SIZE: u32 = 256;

/// A source face as the classic swapper keeps it: the aligned crop, and
/// the crop in L*a*b* with its skin's statistics (converted once, not for
/// every target).
#[derive(Debug, Clone)]
pub struct ClassicSource {
    /// The aligned crop.
    pub pixels: Frame,
    lab: colour::LabImage,
}

/// The classic swapper.
#[derive(Debug)]
pub struct ClassicSwapper {
    alpha: Vec<u8>,
}

/// The inner face in the ArcFace-aligned crop (brows to chin, cheek to
/// cheek), as fractions of the crop: centre and semi-axes. The source's hair
/// and background stay out of the mask, so only skin is replaced.
const FACE_CENTRE: (f64, f64) = (0.5625, 0.585);
const FACE_AXES: (f64, f64) = (0.225, 0.3);

impl Default for ClassicSwapper {
    fn default() -> Self {
        let s = f64::from(SIZE);
        let alpha = paste::feathered_ellipse(
            SIZE,
            (FACE_CENTRE.0 * s, FACE_CENTRE.1 * s),
            (FACE_AXES.0 * s, FACE_AXES.1 * s),
            25,
            6.0,
        );
        Self { alpha }
    }
}

impl ClassicSwapper {
    /// A classic swapper.
    pub fn new() -> Self {
        Self::default()
    }

    fn align(frame: &Frame, kps: &[[f32; 2]; 5], border: Border) -> Result<(Frame, Affine)> {
        let m = estimate_norm(kps, SIZE)
            .ok_or_else(|| Error::InvalidInput("degenerate face points".into()))?;
        Ok((warp_affine(frame, &m, SIZE, SIZE, border), m))
    }
}

impl FaceSwapper for ClassicSwapper {
    fn name(&self) -> &'static str {
        "classic"
    }

    fn source_need(&self) -> SourceNeed {
        SourceNeed::Pixels
    }

    fn prepare_source(&self, frame: &Frame, face: &Face) -> Result<SourceIdentity> {
        let pixels = Self::align(frame, &face.kps, Border::Replicate)?.0;
        let lab = colour::LabImage::new(pixels.data(), &self.alpha);
        Ok(SourceIdentity::Crop(Box::new(ClassicSource {
            pixels,
            lab,
        })))
    }

    fn swap_crop_into(
        &self,
        frame: &Frame,
        target: &Face,
        source: &SourceIdentity,
        out: &mut Frame,
    ) -> Result<Affine> {
        let SourceIdentity::Crop(src) = source else {
            return Err(Error::Internal(
                "the classic swapper needs the source face's pixels".into(),
            ));
        };
        let m = estimate_norm(&target.kps, SIZE)
            .ok_or_else(|| Error::InvalidInput("degenerate face points".into()))?;
        // The target's pixels, for its skin's statistics, in the output's
        // buffer before the source's pixels replace them.
        out.set_size(SIZE, SIZE)?;
        warp_affine_into(frame, &m, out, Border::Replicate);
        let stats = colour::lab_stats(out.data(), &self.alpha);
        out.data_mut().copy_from_slice(src.pixels.data());
        // Recoloured where both faces have enough skin for their statistics.
        if src.lab.stats().is_some()
            && let Some(t) = stats
        {
            src.lab.transfer_into(t, out.data_mut());
        }
        Ok(m)
    }

    fn alpha_template(&self) -> &[u8] {
        &self.alpha
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A skin-toned picture with texture, `w`×`h`, varied by `seed`.
    fn picture(w: u32, h: u32, seed: u32) -> Frame {
        let data = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                let t = ((x * 7 + y * 13 + seed * 31) % 40) as u8;
                let tone = (seed * 23 % 60) as u8;
                [130 + tone + t, 110 + t / 2 + tone / 3, 90 + t / 3]
            })
            .collect();
        Frame::from_rgb(w, h, data).unwrap()
    }

    fn face_at(cx: f32, cy: f32, s: f32) -> Face {
        let kps = crate::geometry::arcface_template(112).map(|p| {
            [
                cx + (p[0] - 56.0) * s / 112.0,
                cy + (p[1] - 56.0) * s / 112.0,
            ]
        });
        Face {
            bbox: [cx - s / 2.0, cy - s / 2.0, cx + s / 2.0, cy + s / 2.0],
            score: 1.0,
            kps,
            landmarks_106: None,
            embedding: None,
        }
    }

    #[test]
    fn the_swap_recolours_the_source_to_the_target_whatever_the_buffer_held() {
        let swapper = ClassicSwapper::new();
        let source_frame = picture(300, 300, 1);
        let source = swapper
            .prepare_source(&source_frame, &face_at(150.0, 150.0, 160.0))
            .unwrap();
        let SourceIdentity::Crop(src) = &source else {
            panic!("the classic swapper keeps pixels");
        };
        let frame = picture(640, 360, 2);
        let mut reused = picture(17, 5, 3);
        for target in [face_at(200.0, 180.0, 150.0), face_at(420.0, 170.0, 120.0)] {
            let m = swapper
                .swap_crop_into(&frame, &target, &source, &mut reused)
                .unwrap();
            // What the swap is: the target's skin statistics, from the target
            // warped with a replicated border, carried onto the source crop.
            let (tgt, m0) = ClassicSwapper::align(&frame, &target.kps, Border::Replicate).unwrap();
            assert_eq!(m, m0);
            let mut expected = src.pixels.clone();
            let stats = colour::lab_stats(tgt.data(), &swapper.alpha).unwrap();
            src.lab.transfer_into(stats, expected.data_mut());
            assert!(expected != src.pixels, "the recolouring changes pixels");
            assert!(reused == expected, "the crop the swap wrote");
            let (fresh, _) = swapper.swap_crop(&frame, &target, &source).unwrap();
            assert!(fresh == expected, "a new buffer gets the same crop");
        }
    }
}
