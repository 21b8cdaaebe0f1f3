//! Face swappers behind one trait, and paste-back.
//!
//! * [`Inswapper`] — insightface's `inswapper_128` (FP32/FP16): 128×128 crop
//!   aligned to the ArcFace template shifted by 8 px, RGB in [0, 1] as input
//!   `target`, latent = normed source embedding × `emap` (the model's last
//!   initializer), re-normalised, as input `source`.
//! * [`ClassicSwapper`] — no swap model: the source face itself, aligned to
//!   each target's five points, colour-matched in L*a*b* inside the face and
//!   blended with a feathered mask. The working default without inswapper.
//!
//! Both produce an aligned crop and its matrix; [`PasteBack`] chooses how the
//! crop goes back into the frame.

mod classic;
pub mod colour;
mod inswapper;
pub mod paste;
pub mod pixel_boost;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use self::classic::{ClassicSource, ClassicSwapper};
pub use self::inswapper::Inswapper;
use crate::detect::Face;
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::geometry::Affine;

/// How the swapped crop is pasted back.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PasteBack {
    /// Deep-Live-Cam's feathered-ellipse paste over the face's rectangle only.
    #[default]
    Fast,
    /// insightface's eroded, blurred footprint mask.
    Reference,
    /// Poisson (seamless) blending inside the feathered footprint.
    Seamless,
}

impl FromStr for PasteBack {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fast" => Ok(Self::Fast),
            "reference" => Ok(Self::Reference),
            "seamless" | "poisson" => Ok(Self::Seamless),
            _ => Err(Error::InvalidInput(format!(
                "unknown paste-back {s:?} (fast, reference, seamless)"
            ))),
        }
    }
}

/// Which swapper to use.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SwapperChoice {
    /// inswapper when it (and the recognizer) are installed, else classic.
    #[default]
    Auto,
    /// inswapper_128 (FP32, else FP16); an error when not installed.
    Inswapper,
    /// The model-free classic swapper.
    Classic,
}

impl FromStr for SwapperChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "inswapper" => Ok(Self::Inswapper),
            "classic" => Ok(Self::Classic),
            _ => Err(Error::InvalidInput(format!(
                "unknown swapper {s:?} (auto, inswapper, classic)"
            ))),
        }
    }
}

impl fmt::Display for SwapperChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Inswapper => "inswapper",
            Self::Classic => "classic",
        })
    }
}

/// The source identity, prepared once (from one photo or several).
#[derive(Debug, Clone)]
pub struct PreparedSource {
    /// The source face whose pixels were used (with the identity embedding
    /// when one was computed).
    pub face: Face,
    identity: SourceIdentity,
    embedding: Option<Vec<f32>>,
    photos: usize,
}

impl PreparedSource {
    /// A prepared source.
    pub fn new(
        face: Face,
        identity: SourceIdentity,
        embedding: Option<Vec<f32>>,
        photos: usize,
    ) -> Self {
        Self {
            face,
            identity,
            embedding,
            photos,
        }
    }

    /// The identity the swapper puts on target faces.
    pub fn identity(&self) -> &SourceIdentity {
        &self.identity
    }

    /// The identity embedding (normed; the mean or median of several
    /// photos), when the recognizer was available.
    pub fn embedding(&self) -> Option<&[f32]> {
        self.embedding.as_deref()
    }

    /// How many photos made it.
    pub fn photos(&self) -> usize {
        self.photos
    }
}

/// The identity to put on target faces, prepared once per source.
#[derive(Debug, Clone)]
pub enum SourceIdentity {
    /// inswapper's projected latent (512 values).
    Latent(Vec<f32>),
    /// An aligned crop of the source face (classic swapper).
    Crop(Box<classic::ClassicSource>),
}

/// What the swap model needs from the source face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceNeed {
    /// The normed ArcFace embedding.
    Embedding,
    /// The source image and five points.
    Pixels,
}

/// A face swapper.
pub trait FaceSwapper: Send + Sync {
    /// Short name for reports.
    fn name(&self) -> &'static str;
    /// What [`FaceSwapper::prepare_source`] needs.
    fn source_need(&self) -> SourceNeed;
    /// Prepares the identity from the source face (with its embedding when needed).
    fn prepare_source(&self, source_frame: &Frame, source_face: &Face) -> Result<SourceIdentity>;
    /// The swapped, aligned crop for `target` in `frame`, written into
    /// `out` (made [`FaceSwapper::crop_size`] square, its allocation reused),
    /// and the matrix that aligned it (frame → crop).
    fn swap_crop_into(
        &self,
        frame: &Frame,
        target: &Face,
        source: &SourceIdentity,
        out: &mut Frame,
    ) -> Result<Affine>;
    /// [`FaceSwapper::swap_crop_into`] into a new frame.
    fn swap_crop(
        &self,
        frame: &Frame,
        target: &Face,
        source: &SourceIdentity,
    ) -> Result<(Frame, Affine)> {
        let mut out = Frame::filled(1, 1, [0, 0, 0])?;
        let m = self.swap_crop_into(frame, target, source, &mut out)?;
        Ok((out, m))
    }
    /// The feathered alpha template for this swapper's crop size.
    fn alpha_template(&self) -> &[u8];
    /// The crop size.
    fn crop_size(&self) -> u32 {
        (self.alpha_template().len() as f64).sqrt().round() as u32
    }
    /// Whether [`FaceSwapper::swap_crop_boosted`] really boosts (models with
    /// a small fixed input, such as inswapper's 128).
    fn supports_pixel_boost(&self) -> bool {
        false
    }
    /// [`FaceSwapper::swap_crop`] at `boost`×`boost` by pixel boost; the
    /// plain crop where the swapper has no boost.
    fn swap_crop_boosted(
        &self,
        frame: &Frame,
        target: &Face,
        source: &SourceIdentity,
        boost: u32,
    ) -> Result<(Frame, Affine)> {
        let _ = boost;
        self.swap_crop(frame, target, source)
    }
    /// Models this swapper runs (for reporting providers).
    fn models(&self) -> Vec<&crate::runtime::Model> {
        Vec::new()
    }
}

impl fmt::Debug for dyn FaceSwapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
