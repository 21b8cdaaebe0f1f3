//! The processors' own options: [`ProcessorConfig`], one variant per
//! built-in processor (each owns its options), plus custom processors
//! registered from outside the engine. Part of [`crate::settings::Settings`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Checker, message_of};
use crate::process::masks::FaceMaskKind;

/// One step of the frame processor chain, with its own options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProcessorConfig {
    /// Puts the source face on each selected face.
    FaceSwapper(FaceSwapperConfig),
    /// Restores each selected face with a face-restoration model.
    FaceEnhancer(FaceEnhancerConfig),
    /// A processor registered from outside the engine (e.g. Python).
    Custom(CustomProcessorConfig),
}

impl ProcessorConfig {
    /// The processor id (`face_swapper`, `face_enhancer`, or a custom id).
    pub fn id(&self) -> &str {
        match self {
            Self::FaceSwapper(_) => "face_swapper",
            Self::FaceEnhancer(_) => "face_enhancer",
            Self::Custom(c) => &c.id,
        }
    }

    /// The default configuration of a built-in processor id.
    pub fn default_for(id: &str) -> Option<Self> {
        match id {
            "face_swapper" => Some(Self::FaceSwapper(FaceSwapperConfig::default())),
            "face_enhancer" => Some(Self::FaceEnhancer(FaceEnhancerConfig::default())),
            _ => None,
        }
    }
}

/// The mouth mask size when it is switched on without a size.
pub const DEFAULT_MOUTH_MASK: u8 = 40;

/// Options of the `face_swapper` processor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FaceSwapperConfig {
    /// Colour-match the swapped face to the target's skin (L*a*b*).
    pub colour_match: bool,
    /// Keep the target's mouth, the mask grown by 0–100 (needs 2d106det).
    #[schemars(range(max = 100))]
    pub mouth_mask: Option<u8>,
    /// Draw the mouth mask's outline (debugging).
    pub mouth_mask_debug: bool,
    /// Opacity of the swapped face, 0–1.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub opacity: f32,
    /// Unsharp mask inside the face, 0–5.
    #[schemars(range(min = 0.0, max = 5.0))]
    pub sharpness: f32,
    /// Run inswapper at 256, 512 or 1024 px by pixel boost.
    pub pixel_boost: Option<u32>,
    /// Masks combined (by minimum) with the swapper's feather: box, occlusion, region.
    pub masks: Vec<FaceMaskKind>,
    /// Face regions replaced with the `region` mask.
    pub mask_regions: Vec<String>,
    /// Box mask blur, 0–1.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub mask_blur: f32,
}

impl Default for FaceSwapperConfig {
    fn default() -> Self {
        Self {
            colour_match: false,
            mouth_mask: None,
            mouth_mask_debug: false,
            opacity: 1.0,
            sharpness: 0.0,
            pixel_boost: None,
            masks: Vec::new(),
            mask_regions: crate::process::masks::FACE_REGIONS
                .iter()
                .map(|r| r.0.to_string())
                .collect(),
            mask_blur: crate::process::enhancer::DEFAULT_MASK_BLUR,
        }
    }
}

/// Options of the `face_enhancer` processor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FaceEnhancerConfig {
    /// Model: gfpgan_1.4, gpen_bfr_256, gpen_bfr_512, codeformer.
    pub model: String,
    /// How much of the enhanced face is blended in, 0–100.
    #[schemars(range(max = 100))]
    pub blend: u8,
    /// CodeFormer's fidelity weight, 0 (quality) – 1 (fidelity).
    #[schemars(range(min = 0.0, max = 1.0))]
    pub weight: f32,
    /// Keep what covers the face (XSeg occlusion model xseg_1).
    pub occlusion: bool,
}

impl Default for FaceEnhancerConfig {
    fn default() -> Self {
        Self {
            model: "gfpgan_1.4".into(),
            blend: 80,
            weight: 0.5,
            occlusion: false,
        }
    }
}

/// A processor registered from outside the engine, with free-form options.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomProcessorConfig {
    /// The id it was registered under.
    pub id: String,
    /// Its options, as it defines them.
    #[serde(default)]
    pub options: BTreeMap<String, Value>,
}

impl ProcessorConfig {
    /// Adds this processor's problems under `at` (e.g. `processors[1]`).
    pub fn validate(&self, at: &str, c: &mut Checker) {
        let key = |k: &str| format!("{at}.{k}");
        match self {
            Self::FaceSwapper(s) => {
                c.range(key("opacity"), f64::from(s.opacity), 0.0, 1.0);
                c.range(key("sharpness"), f64::from(s.sharpness), 0.0, 5.0);
                c.range(key("mask_blur"), f64::from(s.mask_blur), 0.0, 1.0);
                if let Some(m) = s.mouth_mask.filter(|&m| m > 100) {
                    c.push(key("mouth_mask"), format!("{m} is not in 0–100"));
                }
                if let Some(b) = s.pixel_boost.filter(|b| ![128, 256, 512, 1024].contains(b)) {
                    c.push(key("pixel_boost"), format!("{b} is not 256, 512 or 1024"));
                }
                if let Err(e) = crate::process::masks::region_classes(&s.mask_regions) {
                    c.push(key("mask_regions"), message_of(&e));
                }
                if s.mouth_mask_debug && s.mouth_mask.is_none() {
                    c.push(key("mouth_mask_debug"), "needs mouth_mask");
                }
            }
            Self::FaceEnhancer(e) => {
                if let Err(err) = crate::process::enhancer::spec(&e.model) {
                    c.push(key("model"), message_of(&err));
                }
                if e.blend > 100 {
                    c.push(key("blend"), format!("{} is not in 0–100", e.blend));
                }
                c.range(key("weight"), f64::from(e.weight), 0.0, 1.0);
            }
            Self::Custom(x) => {
                if x.id.is_empty() {
                    c.push(key("id"), "is empty");
                }
            }
        }
    }
}
