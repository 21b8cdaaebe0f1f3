//! The model-free swapper: the source face warped onto each target's five
//! points, recoloured to the target's skin in L*a*b*, feathered in.

use super::{FaceSwapper, SourceIdentity, SourceNeed, colour, paste};
use crate::detect::Face;
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::geometry::{Affine, Border, estimate_norm, warp_affine};

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

    fn swap_crop(
        &self,
        frame: &Frame,
        target: &Face,
        source: &SourceIdentity,
    ) -> Result<(Frame, Affine)> {
        let SourceIdentity::Crop(src) = source else {
            return Err(Error::Internal(
                "the classic swapper needs the source face's pixels".into(),
            ));
        };
        let (tgt, m) = Self::align(frame, &target.kps, Border::Replicate)?;
        let mut out = src.pixels.clone();
        // Recoloured where both faces have enough skin for their statistics.
        if src.lab.stats().is_some()
            && let Some(t) = colour::lab_stats(tgt.data(), &self.alpha)
        {
            src.lab.transfer_into(t, out.data_mut());
        }
        Ok((out, m))
    }

    fn alpha_template(&self) -> &[u8] {
        &self.alpha
    }
}
