//! Frame processors: the steps that run on each frame's selected faces, in
//! the order the user chose (`--frame-processor face_swapper face_enhancer`).
//!
//! Each [`FrameProcessor`] has an id, declares what face data it needs (so
//! the analyser computes only that, once per frame, for the whole chain),
//! loads its models once, and processes a frame with the faces found. A
//! [`Registry`] maps ids to loaders and rejects duplicates; the chain is part
//! of the typed, serialisable `Settings` (`crate::settings`), each entry a
//! [`config::ProcessorConfig`] with that processor's own options.
//!
//! Built in:
//!
//! * `face_swapper` — the swap, with its finishing options: face masks
//!   ([`masks`]: box, XSeg occlusion), colour match, paste-back method (fast,
//!   reference, seamless), pixel boost, mouth mask ([`mouth`]), opacity and
//!   sharpness ([`finish`]);
//! * `face_enhancer` — GFPGAN 1.4, GPEN-BFR-256/512 or CodeFormer
//!   ([`enhancer`]), blended by `--face-enhancer-blend`.

pub mod config;
pub mod enhancer;
pub mod finish;
pub mod masks;
pub mod mouth;

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use self::config::{FaceEnhancerConfig, FaceSwapperConfig, ProcessorConfig};
use self::enhancer::FaceEnhancer;
use self::finish::{
    Rect, apply_opacity, colour_match_crop, mask_in_frame, paste_seamless, sharpen_masked,
};
use self::masks::{FaceMaskKind, Occluder, RegionMasker, box_mask, region_classes};
use crate::analysis::Needs;
use crate::cache::ModelCache;
use crate::detect::Face;
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::geometry::{Border, warp_affine};
use crate::models::ModelStore;
use crate::runtime::{Model, Runtime};
use crate::swap::{FaceSwapper, PasteBack, PreparedSource, paste};

/// One selected face and the source it gets.
pub type Target<'a> = (&'a Face, &'a PreparedSource);

/// A step of the frame chain.
pub trait FrameProcessor: Send + Sync {
    /// The id used on the command line and in settings.
    fn id(&self) -> &'static str;
    /// What the target faces must carry for [`FrameProcessor::process`].
    fn needs(&self) -> Needs;
    /// Models this processor runs (for reporting providers).
    fn models(&self) -> Vec<&Model>;
    /// Processes `frame` in place for the selected faces.
    fn process(&self, frame: &mut Frame, targets: &[Target<'_>]) -> Result<()>;
}

impl std::fmt::Debug for dyn FrameProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// What a processor loader gets.
pub struct LoadContext<'a> {
    /// The runtime.
    pub rt: &'a Runtime,
    /// The model store.
    pub store: &'a ModelStore,
    /// Loaded models, shared between engines: load through it.
    pub cache: &'a ModelCache,
    /// How swapped crops are pasted back.
    pub paste_back: PasteBack,
    /// The swapper the engine loaded (shared with the source preparation).
    pub swapper: &'a Arc<dyn FaceSwapper>,
}

/// Builds a processor from its configuration.
pub type Loader = Arc<
    dyn Fn(&LoadContext<'_>, &ProcessorConfig) -> Result<Box<dyn FrameProcessor>> + Send + Sync,
>;

/// Known processors by id.
#[derive(Clone)]
pub struct Registry {
    entries: Vec<(String, String, Loader)>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.0))
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn empty() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// The built-in processors.
    pub fn builtin() -> Self {
        let mut r = Self::empty();
        let builtins: [(&str, &str, Loader); 2] = [
            (
                "face_swapper",
                "puts the source face on each selected face (masks, colour match, mouth mask, opacity, sharpness)",
                Arc::new(load_swapper),
            ),
            (
                "face_enhancer",
                "restores each selected face with GFPGAN 1.4, GPEN-BFR-256/512 or CodeFormer",
                Arc::new(load_enhancer),
            ),
        ];
        for (id, help, loader) in builtins {
            // The built-in ids are distinct; a failure here is a programming error caught by tests.
            if let Err(e) = r.register_loader(id, help, loader) {
                tracing::error!("{e}");
            }
        }
        r
    }

    /// Adds a processor; an id that is already registered is an error.
    pub fn register(
        &mut self,
        id: &str,
        help: &str,
        loader: impl Fn(&LoadContext<'_>, &ProcessorConfig) -> Result<Box<dyn FrameProcessor>>
        + Send
        + Sync
        + 'static,
    ) -> Result<()> {
        self.register_loader(id, help, Arc::new(loader))
    }

    fn register_loader(&mut self, id: &str, help: &str, loader: Loader) -> Result<()> {
        if self.entries.iter().any(|e| e.0 == id) {
            return Err(Error::InvalidInput(format!(
                "a frame processor with id {id:?} is already registered"
            )));
        }
        self.entries
            .push((id.to_string(), help.to_string(), loader));
        Ok(())
    }

    /// Registered ids with their one-line help, in registration order.
    pub fn list(&self) -> Vec<(&str, &str)> {
        self.entries
            .iter()
            .map(|e| (e.0.as_str(), e.1.as_str()))
            .collect()
    }

    /// Checks a chain: known ids, none twice, not empty.
    pub fn validate(&self, chain: &[&str]) -> Result<()> {
        if chain.is_empty() {
            return Err(Error::InvalidInput(
                "the frame processor chain is empty".into(),
            ));
        }
        for (i, id) in chain.iter().enumerate() {
            if !self.entries.iter().any(|e| e.0 == *id) {
                let known: Vec<&str> = self.entries.iter().map(|e| e.0.as_str()).collect();
                return Err(Error::InvalidInput(format!(
                    "unknown frame processor {id:?} (known: {})",
                    known.join(", ")
                )));
            }
            if chain[..i].contains(id) {
                return Err(Error::InvalidInput(format!(
                    "frame processor {id:?} is in the chain twice"
                )));
            }
        }
        Ok(())
    }

    /// Loads the chain in order, each processor from its own configuration.
    pub fn build(
        &self,
        chain: &[ProcessorConfig],
        ctx: &LoadContext<'_>,
    ) -> Result<Vec<Box<dyn FrameProcessor>>> {
        let ids: Vec<&str> = chain.iter().map(ProcessorConfig::id).collect();
        self.validate(&ids)?;
        chain
            .iter()
            .map(|cfg| {
                let loader = self
                    .entries
                    .iter()
                    .find(|e| e.0 == cfg.id())
                    .map(|e| Arc::clone(&e.2))
                    .ok_or_else(|| {
                        Error::InvalidInput(format!("unknown frame processor {:?}", cfg.id()))
                    })?;
                loader(ctx, cfg)
            })
            .collect()
    }
}

/// Manifest id of the occlusion model.
pub const OCCLUSION_MODEL: &str = "xseg_1";

fn load_occluder(ctx: &LoadContext<'_>) -> Result<Arc<Occluder>> {
    ctx.cache.get_or_load("occluder:xseg_1", || {
        Ok(Arc::new(Occluder::load(
            ctx.rt,
            OCCLUSION_MODEL,
            &ctx.store.read(OCCLUSION_MODEL)?,
        )?))
    })
}

/// Manifest id of the face parser.
pub const PARSER_MODEL: &str = "bisenet_resnet_34";

fn load_region(ctx: &LoadContext<'_>, regions: &[String]) -> Result<RegionMasker> {
    let classes = region_classes(regions)?;
    let parser = ctx.cache.get_or_load("parser:bisenet_resnet_34", || {
        RegionMasker::load(
            ctx.rt,
            PARSER_MODEL,
            &ctx.store.read(PARSER_MODEL)?,
            Vec::new(),
        )
    })?;
    Ok(parser.with_classes(classes))
}

/// The `face_swapper` processor.
pub struct FaceSwapProcessor {
    swapper: Arc<dyn FaceSwapper>,
    paste: PasteBack,
    /// Crop size (the pixel-boost size when boosting).
    size: u32,
    boost: Option<u32>,
    /// The swapper's feather, combined with the box mask when chosen (0–255).
    alpha: Vec<u8>,
    occluder: Option<Arc<Occluder>>,
    region: Option<RegionMasker>,
    colour_match: bool,
    mouth_mask: Option<u8>,
    mouth_debug: bool,
    opacity: f32,
    sharpness: f32,
    /// Crop buffers reused from frame to frame, one taken per face being
    /// swapped (faces may be swapped in parallel).
    crops: Mutex<Vec<Frame>>,
}

fn load_swapper(ctx: &LoadContext<'_>, cfg: &ProcessorConfig) -> Result<Box<dyn FrameProcessor>> {
    let ProcessorConfig::FaceSwapper(s) = cfg else {
        return Err(Error::Internal(format!(
            "face_swapper loaded with a {} configuration",
            cfg.id()
        )));
    };
    Ok(Box::new(FaceSwapProcessor::load(ctx, s)?))
}

impl FaceSwapProcessor {
    /// The swapper step with `s`'s options (models from the context's cache).
    pub fn load(ctx: &LoadContext<'_>, s: &FaceSwapperConfig) -> Result<Self> {
        let boost = s.pixel_boost.filter(|_| ctx.swapper.supports_pixel_boost());
        if let Some(b) = boost
            && (b % ctx.swapper.crop_size() != 0 || b < ctx.swapper.crop_size())
        {
            return Err(Error::InvalidInput(format!(
                "pixel boost {b} is not a multiple of {}",
                ctx.swapper.crop_size()
            )));
        }
        let size = boost.unwrap_or_else(|| ctx.swapper.crop_size());
        let template = if size == ctx.swapper.crop_size() {
            ctx.swapper.alpha_template().to_vec()
        } else {
            paste::ellipse_template(size)
        };
        let alpha = if s.masks.contains(&FaceMaskKind::Box) {
            let b = box_mask(size, s.mask_blur, [0.0; 4]);
            template
                .iter()
                .zip(b)
                .map(|(&t, m)| {
                    t.min(crate::geometry::round_even(m * 255.0).clamp(0.0, 255.0) as u8)
                })
                .collect()
        } else {
            template
        };
        Ok(Self {
            swapper: Arc::clone(ctx.swapper),
            paste: ctx.paste_back,
            size,
            boost,
            alpha,
            occluder: s
                .masks
                .contains(&FaceMaskKind::Occlusion)
                .then(|| load_occluder(ctx))
                .transpose()?,
            region: s
                .masks
                .contains(&FaceMaskKind::Region)
                .then(|| load_region(ctx, &s.mask_regions))
                .transpose()?,
            colour_match: s.colour_match,
            mouth_mask: s.mouth_mask,
            mouth_debug: s.mouth_mask_debug,
            opacity: s.opacity,
            sharpness: s.sharpness,
            crops: Mutex::default(),
        })
    }

    fn swap_one(
        &self,
        frame: &mut Frame,
        original: Option<&Frame>,
        face: &Face,
        source: &PreparedSource,
    ) -> Result<Option<Pasted<'_>>> {
        let mut crop = self
            .crops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .map_or_else(|| Frame::filled(self.size, self.size, [0, 0, 0]), Ok)?;
        let done = self.swap_one_in(frame, original, face, source, &mut crop);
        self.crops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(crop);
        done
    }

    /// [`Self::swap_one`] with `crop` as the swapped crop's buffer.
    fn swap_one_in(
        &self,
        frame: &mut Frame,
        original: Option<&Frame>,
        face: &Face,
        source: &PreparedSource,
        crop: &mut Frame,
    ) -> Result<Option<Pasted<'_>>> {
        let m = match self.boost {
            Some(b) => {
                let (c, m) = self
                    .swapper
                    .swap_crop_boosted(frame, face, source.identity(), b)?;
                *crop = c;
                m
            }
            None => self
                .swapper
                .swap_crop_into(frame, face, source.identity(), crop)?,
        };
        if crop.width() != self.size || crop.height() != self.size {
            return Err(Error::Internal(format!(
                "the swapper returned a {}×{} crop, expected {}",
                crop.width(),
                crop.height(),
                self.size
            )));
        }
        // The target's own pixels under the same matrix, warped once for
        // the colour match and the masks that look at them.
        let needs_target = self.colour_match || self.occluder.is_some() || self.region.is_some();
        let target =
            needs_target.then(|| warp_affine(frame, &m, self.size, self.size, Border::Replicate));
        if let (true, Some(t)) = (self.colour_match, &target) {
            colour_match_crop(crop, t, &self.alpha);
        }
        let alpha: Cow<'_, [u8]> = match &target {
            Some(t) if self.occluder.is_some() || self.region.is_some() => {
                let mut a: Vec<f32> = self.alpha.iter().map(|&v| f32::from(v) / 255.0).collect();
                for extra in [
                    self.occluder.as_ref().map(|o| o.mask(t)),
                    self.region.as_ref().map(|r| r.mask(t)),
                ]
                .into_iter()
                .flatten()
                {
                    a = masks::combine_min(&[&a, &extra?])?;
                }
                Cow::Owned(
                    a.into_iter()
                        .map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
                        .collect(),
                )
            }
            _ => Cow::Borrowed(&self.alpha),
        };
        let rect = match self.paste {
            PasteBack::Fast => paste::paste_fast(frame, crop, &m, &alpha),
            PasteBack::Reference => paste::paste_reference(frame, crop, &m),
            PasteBack::Seamless => paste_seamless(frame, crop, &m, &alpha),
        };
        let Some(rect) = rect else { return Ok(None) };
        let mut rect = rect;
        if let (Some(size), Some(lm), Some(orig)) =
            (self.mouth_mask, face.landmarks_106.as_deref(), original)
            && let Some(r) = mouth::apply_mouth_mask(frame, orig, lm, size, self.mouth_debug)
        {
            rect = union(rect, r);
        }
        if let Some(orig) = original
            && self.opacity < 1.0
        {
            apply_opacity(frame, orig, rect, self.opacity);
        }
        Ok(Some((rect, m, alpha)))
    }
}

/// A pasted face: the rectangle it touched, its alignment and its alpha.
type Pasted<'a> = (Rect, crate::geometry::Affine, Cow<'a, [u8]>);

fn union(a: Rect, b: Rect) -> Rect {
    let x1 = a.0.min(b.0);
    let y1 = a.1.min(b.1);
    let x2 = (a.0 + a.2).max(b.0 + b.2);
    let y2 = (a.1 + a.3).max(b.1 + b.3);
    (x1, y1, x2 - x1, y2 - y1)
}

impl FrameProcessor for FaceSwapProcessor {
    fn id(&self) -> &'static str {
        "face_swapper"
    }

    fn needs(&self) -> Needs {
        Needs {
            embedding: false,
            landmarks_106: self.mouth_mask.is_some(),
        }
    }

    fn models(&self) -> Vec<&Model> {
        self.occluder
            .as_deref()
            .map(Occluder::model)
            .into_iter()
            .chain(self.region.as_ref().map(RegionMasker::model))
            .collect()
    }

    fn process(&self, frame: &mut Frame, targets: &[Target<'_>]) -> Result<()> {
        if self.opacity <= 0.0 {
            return Ok(());
        }
        let original = (self.mouth_mask.is_some() || self.opacity < 1.0).then(|| frame.clone());
        let mut done = Vec::with_capacity(targets.len());
        for (face, source) in targets {
            if let Some(d) = self.swap_one(frame, original.as_ref(), face, source)? {
                done.push(d);
            }
        }
        if self.sharpness > 0.0 {
            for (rect, m, alpha) in &done {
                let mask = mask_in_frame(alpha, self.size, m, *rect);
                sharpen_masked(frame, *rect, &mask, self.sharpness);
            }
        }
        Ok(())
    }
}

/// The `face_enhancer` processor.
pub struct FaceEnhanceProcessor {
    enhancer: FaceEnhancer,
}

fn load_enhancer(ctx: &LoadContext<'_>, cfg: &ProcessorConfig) -> Result<Box<dyn FrameProcessor>> {
    let ProcessorConfig::FaceEnhancer(e) = cfg else {
        return Err(Error::Internal(format!(
            "face_enhancer loaded with a {} configuration",
            cfg.id()
        )));
    };
    Ok(Box::new(FaceEnhanceProcessor::load(ctx, e)?))
}

impl FaceEnhanceProcessor {
    /// The enhancer step with `e`'s options (models from the context's cache).
    pub fn load(ctx: &LoadContext<'_>, e: &FaceEnhancerConfig) -> Result<Self> {
        let id = e.model.as_str();
        let base = ctx.cache.get_or_load(&format!("enhancer:{id}"), || {
            FaceEnhancer::load(ctx.rt, id, &ctx.store.read(id)?, 1.0, 0.5, None)
        })?;
        let occluder = e.occlusion.then(|| load_occluder(ctx)).transpose()?;
        Ok(Self {
            enhancer: base.with_options(f32::from(e.blend) / 100.0, e.weight, occluder),
        })
    }
}

impl FrameProcessor for FaceEnhanceProcessor {
    fn id(&self) -> &'static str {
        "face_enhancer"
    }

    fn needs(&self) -> Needs {
        Needs::default()
    }

    fn models(&self) -> Vec<&Model> {
        self.enhancer.models()
    }

    fn process(&self, frame: &mut Frame, targets: &[Target<'_>]) -> Result<()> {
        for (face, _) in targets {
            self.enhancer.enhance(frame, &face.kps)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: &LoadContext<'_>, _: &ProcessorConfig) -> Result<Box<dyn FrameProcessor>> {
        Err(Error::InvalidInput("not loadable in this test".into()))
    }

    #[test]
    fn registry_rejects_duplicates_and_unknown_ids() {
        let mut r = Registry::builtin();
        assert_eq!(
            r.list().iter().map(|e| e.0).collect::<Vec<_>>(),
            ["face_swapper", "face_enhancer"]
        );
        assert!(r.register("face_swapper", "again", never).is_err());
        r.register("custom", "a test processor", never).unwrap();
        assert!(r.register("custom", "twice", never).is_err());
        let chain = |v: &[&'static str]| v.to_vec();
        r.validate(&chain(&["face_swapper", "face_enhancer"]))
            .unwrap();
        r.validate(&chain(&["face_enhancer", "face_swapper"]))
            .unwrap();
        assert!(
            r.validate(&chain(&["face_swapper", "face_swapper"]))
                .is_err()
        );
        assert!(
            r.validate(&chain(&["frame_colorizer"]))
                .unwrap_err()
                .to_string()
                .contains("face_enhancer")
        );
        assert!(r.validate(&[]).is_err());
    }

    #[test]
    fn rect_union_covers_both() {
        assert_eq!(union((10, 10, 5, 5), (12, 2, 10, 4)), (10, 2, 12, 13));
    }
}
