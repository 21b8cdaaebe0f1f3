//! Frame processor options shared by the commands that process frames
//! (`swap`, and the live mode): the chain and each processor's settings.

use camshow_core::pipeline::SwapSettings;
use camshow_core::process::masks::FaceMaskKind;
use clap::Args;

use crate::engine_args::parse;

fn unit(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0 and 1"))
    }
}

fn sharpness(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=5.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0 and 5"))
    }
}

#[derive(Debug, Clone, Args)]
pub struct ProcessorArgs {
    /// Frame processors, run in this order on the same analysed faces:
    /// face_swapper (the swap and its finishing options below) and
    /// face_enhancer (restores the face with --face-enhancer-model)
    #[arg(long = "frame-processor", value_name = "ID", num_args = 1.., default_values_t = ["face_swapper".to_string()])]
    pub frame_processor: Vec<String>,
    /// face_enhancer model: gfpgan_1.4, gpen_bfr_256, gpen_bfr_512, codeformer
    #[arg(long, default_value = "gfpgan_1.4", value_name = "ID")]
    pub face_enhancer_model: String,
    /// face_enhancer: how much of the enhanced face is blended in, 0–100
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub face_enhancer_blend: u8,
    /// face_enhancer: CodeFormer's fidelity weight, 0 (quality) – 1 (fidelity)
    #[arg(long, default_value_t = 0.5, value_parser = unit, value_name = "0..1")]
    pub face_enhancer_weight: f32,
    /// Extra face masks, combined by minimum with the swapper's feather:
    /// box (FaceFusion's blurred box), occlusion (XSeg: keeps hands and
    /// objects in front of the face; model xseg_1) and region (BiSeNet face
    /// parser: only --face-mask-regions are replaced; model bisenet_resnet_34)
    #[arg(long, value_name = "MASK", num_args = 1.., value_parser = parse::<FaceMaskKind>)]
    pub face_mask: Vec<FaceMaskKind>,
    /// Regions replaced with --face-mask region: skin, left-eyebrow, right-eyebrow, left-eye, right-eye, glasses, nose, mouth, upper-lip, lower-lip (default: all)
    #[arg(long, value_name = "REGION", num_args = 1..)]
    pub face_mask_regions: Vec<String>,
    /// Box mask blur, 0–1
    #[arg(long, default_value_t = 0.3, value_parser = unit, value_name = "0..1")]
    pub face_mask_blur: f32,
    /// face_swapper: colour-match the swapped face to the target's skin (L*a*b* mean and deviation)
    #[arg(long, visible_alias = "color-match")]
    pub colour_match: bool,
    /// face_swapper: keep the target's own mouth (lip movement), mask grown by SIZE 0–100 (default 40); needs model 2d106det
    #[arg(long, value_name = "SIZE", num_args = 0..=1, default_missing_value = "40", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub mouth_mask: Option<u8>,
    /// face_swapper: draw the mouth mask's outline (debugging)
    #[arg(long, requires = "mouth_mask")]
    pub mouth_mask_debug: bool,
    /// face_swapper: opacity of the swapped face, 0–1
    #[arg(long, default_value_t = 1.0, value_parser = unit, value_name = "0..1")]
    pub opacity: f32,
    /// face_swapper: unsharp mask inside the face (not its box), 0–5
    #[arg(long, default_value_t = 0.0, value_parser = sharpness, value_name = "0..5")]
    pub sharpness: f32,
    /// face_swapper: run inswapper at 256 or 512 by pixel boost (4× or 16× the inferences)
    #[arg(long, value_name = "PX", value_parser = ["256", "512", "1024"])]
    pub pixel_boost: Option<String>,
}

impl ProcessorArgs {
    /// Writes these options into `settings`.
    pub fn apply(&self, settings: &mut SwapSettings) {
        settings.processors = self.frame_processor.clone();
        settings.face_enhancer = self.face_enhancer_model.clone();
        settings.face_enhancer_blend = self.face_enhancer_blend;
        settings.face_enhancer_weight = self.face_enhancer_weight;
        settings.face_masks = self.face_mask.clone();
        settings.face_mask_blur = self.face_mask_blur;
        if !self.face_mask_regions.is_empty() {
            settings.face_mask_regions = self.face_mask_regions.clone();
        }
        settings.colour_match = self.colour_match;
        settings.mouth_mask = self.mouth_mask;
        settings.mouth_mask_debug = self.mouth_mask_debug;
        settings.opacity = self.opacity;
        settings.sharpness = self.sharpness;
        settings.pixel_boost = self.pixel_boost.as_deref().and_then(|s| s.parse().ok());
    }
}
