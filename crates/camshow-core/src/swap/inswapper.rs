//! insightface's inswapper_128.

use std::sync::{Arc, Mutex};

use super::{FaceSwapper, SourceIdentity, SourceNeed, paste};
use crate::analysis::recognizer_normalize;
use crate::detect::Face;
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::geometry::{Affine, Border, estimate_norm, warp_affine, warp_affine_into};
use crate::imgproc::{ChannelOrder, Layout, to_blob_into};
use crate::onnx::OnnxModel;
use crate::runtime::{Model, Runtime};

/// Crop size.
pub const SIZE: u32 = 128;
const LATENT: usize = 512;

/// The inswapper model with its `emap`.
#[derive(Debug)]
pub struct Inswapper {
    model: Arc<Model>,
    emap: Vec<f32>,
    target_index: usize,
    alpha: Vec<u8>,
    /// The aligned target crop's buffer, reused between crops.
    aligned: Mutex<Option<Frame>>,
}

impl Inswapper {
    /// Loads the model and reads `emap`, its last initializer (512×512).
    pub fn load(rt: &Runtime, name: &str, bytes: &[u8]) -> Result<Self> {
        let parsed = OnnxModel::parse(bytes)?;
        let n = parsed.initializer_count()?;
        let emap = parsed.initializer(
            n.checked_sub(1)
                .ok_or_else(|| sig(name, "no initializers"))?,
        )?;
        if emap.dims != [LATENT as i64, LATENT as i64] {
            return Err(sig(
                name,
                &format!(
                    "last initializer {} is {:?}, expected the 512×512 emap",
                    emap.name, emap.dims
                ),
            ));
        }
        // Fixed to the one shape it is fed (one TensorRT engine, one plan).
        let s = SIZE as usize;
        let model = rt.load_fixed(
            name,
            bytes,
            &[("target", &[1, 3, s, s]), ("source", &[1, LATENT])],
        )?;
        let names = model.input_names();
        let target_index = names
            .iter()
            .position(|n| n == "target")
            .ok_or_else(|| sig(name, "no input named target"))?;
        if !names.iter().any(|n| n == "source") || names.len() != 2 {
            return Err(sig(name, "expected inputs target and source"));
        }
        Ok(Self {
            model,
            emap: emap.data,
            target_index,
            alpha: paste::ellipse_template(SIZE),
            aligned: Mutex::default(),
        })
    }

    /// Runs the model once on a fixed probe (a gradient crop, a unit
    /// latent) and checks that what comes out is a picture: finite values
    /// that are not all the same. FP16 (the FP16 file, or TensorRT's FP16
    /// kernels) overflows on some cards and gives NaN or a flat output.
    pub fn probe(&self) -> Result<()> {
        let s = SIZE as usize;
        let crop: Vec<u8> = (0..s * s)
            .flat_map(|i| {
                let (x, y) = (i % s, i / s);
                [(x * 2) as u8, (y * 2) as u8, ((x + y) % 256) as u8]
            })
            .collect();
        let crop = Frame::from_rgb(SIZE, SIZE, crop)?;
        let latent = vec![1.0 / (LATENT as f32).sqrt(); LATENT];
        // Every session (one per GPU where there are several).
        for session in 0..self.model.session_count() {
            self.probe_on(session, &crop, &latent)?;
        }
        Ok(())
    }

    /// [`Inswapper::probe`] on one session.
    fn probe_on(&self, session: usize, crop: &Frame, latent: &[f32]) -> Result<()> {
        let bad = self.run(Some(session), crop, latent, |pred| {
            let nan = pred.iter().filter(|v| !v.is_finite()).count();
            let (lo, hi) = pred
                .iter()
                .filter(|v| v.is_finite())
                .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
            Ok(if nan > 0 {
                Some(format!(
                    "{nan} of {} output values are NaN or infinite",
                    pred.len()
                ))
            } else if hi - lo < 1e-3 {
                Some(format!("the output is flat ({lo})"))
            } else {
                None
            })
        })?;
        match bad {
            None => Ok(()),
            Some(reason) => Err(Error::ModelOutput {
                model: self.model.name().to_string(),
                reason,
            }),
        }
    }

    /// Runs the model on `crop` and `latent` (on `session`, else a free
    /// one): both go straight into the model's inputs, and `read` gets the
    /// swapped crop's 3×128×128 values where the model wrote them.
    fn run<R>(
        &self,
        session: Option<usize>,
        crop: &Frame,
        latent: &[f32],
        read: impl FnOnce(&[f32]) -> Result<R>,
    ) -> Result<R> {
        if latent.len() != LATENT {
            return Err(Error::Internal(format!(
                "the latent has {} values, expected 512",
                latent.len()
            )));
        }
        if (crop.width(), crop.height()) != (SIZE, SIZE) {
            return Err(Error::Internal(format!(
                "inswapper's crop is {}×{}, expected 128×128",
                crop.width(),
                crop.height()
            )));
        }
        let fill = |i: usize, buf: &mut [f32], _: &mut u128| {
            if i == self.target_index {
                to_blob_into(crop, ChannelOrder::Rgb, Layout::Nchw, 0.0, 255.0, buf);
            } else {
                buf.copy_from_slice(latent);
            }
            Ok(())
        };
        let read = |outs: &crate::runtime::Outputs<'_, '_>| {
            let (_, pred) = outs.get(0)?;
            let n = 3 * SIZE as usize * SIZE as usize;
            if pred.len() != n {
                return Err(sig(
                    self.model.name(),
                    &format!("output has {} values, expected 3×128×128", pred.len()),
                ));
            }
            read(pred)
        };
        match session {
            Some(i) => self.model.run_in_place_on(i, &self.shapes(), fill, read),
            None => self.model.run_in_place(&self.shapes(), fill, read),
        }
    }

    /// The input shapes in graph order.
    fn shapes(&self) -> [&'static [usize]; 2] {
        const TARGET: [usize; 4] = [1, 3, SIZE as usize, SIZE as usize];
        const SOURCE: [usize; 2] = [1, LATENT];
        if self.target_index == 0 {
            [&TARGET, &SOURCE]
        } else {
            [&SOURCE, &TARGET]
        }
    }

    /// The loaded model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// `normalize(normed_embedding · emap)`.
    pub fn latent(&self, normed_embedding: &[f32]) -> Result<Vec<f32>> {
        if normed_embedding.len() != LATENT {
            return Err(Error::Internal(format!(
                "embedding has {} values, expected 512",
                normed_embedding.len()
            )));
        }
        let mut out = vec![0f64; LATENT];
        for (i, &e) in normed_embedding.iter().enumerate() {
            let row = &self.emap[i * LATENT..(i + 1) * LATENT];
            for (o, &w) in out.iter_mut().zip(row) {
                *o += f64::from(e) * f64::from(w);
            }
        }
        Ok(recognizer_normalize(
            out.into_iter().map(|v| v as f32).collect(),
        ))
    }

    /// The aligned 128×128 crop and its matrix.
    pub fn align(frame: &Frame, kps: &[[f32; 2]; 5]) -> Result<(Frame, Affine)> {
        let m = estimate_norm(kps, SIZE)
            .ok_or_else(|| Error::InvalidInput("degenerate face points".into()))?;
        Ok((warp_affine(frame, &m, SIZE, SIZE, Border::Constant(0.0)), m))
    }

    /// Runs the model on an aligned crop.
    pub fn run_crop(&self, crop: &Frame, latent: &[f32]) -> Result<Frame> {
        let mut out = Frame::filled(SIZE, SIZE, [0, 0, 0])?;
        self.run_crop_into(crop, latent, &mut out)?;
        Ok(out)
    }

    /// Runs the model on an aligned crop, writing the swapped crop into
    /// `out`.
    fn run_crop_into(&self, crop: &Frame, latent: &[f32], out: &mut Frame) -> Result<()> {
        let plane = SIZE as usize * SIZE as usize;
        self.run(None, crop, latent, |pred| {
            out.set_size(SIZE, SIZE)?;
            let rgb = out.data_mut();
            for i in 0..plane {
                for c in 0..3 {
                    // np.clip(255 * x, 0, 255).astype(np.uint8): truncation; NaN (broken FP16) gives 0.
                    let v = 255.0 * pred[c * plane + i];
                    rgb[i * 3 + c] = if v.is_nan() {
                        0
                    } else {
                        v.clamp(0.0, 255.0) as u8
                    };
                }
            }
            Ok(())
        })
    }
}

fn sig(model: &str, reason: &str) -> Error {
    Error::ModelSignature {
        model: model.into(),
        reason: reason.into(),
    }
}

impl FaceSwapper for Inswapper {
    fn name(&self) -> &'static str {
        "inswapper_128"
    }

    fn source_need(&self) -> SourceNeed {
        SourceNeed::Embedding
    }

    fn prepare_source(&self, _frame: &Frame, face: &Face) -> Result<SourceIdentity> {
        let e = face
            .embedding
            .as_ref()
            .ok_or_else(|| Error::InvalidInput("the source face has no embedding".into()))?;
        Ok(SourceIdentity::Latent(self.latent(e)?))
    }

    fn swap_crop_into(
        &self,
        frame: &Frame,
        target: &Face,
        source: &SourceIdentity,
        out: &mut Frame,
    ) -> Result<Affine> {
        let SourceIdentity::Latent(latent) = source else {
            return Err(Error::Internal(
                "inswapper needs a latent source identity".into(),
            ));
        };
        let m = estimate_norm(&target.kps, SIZE)
            .ok_or_else(|| Error::InvalidInput("degenerate face points".into()))?;
        // A worker that finds the buffer busy uses its own rather than wait.
        let taken = self.aligned.try_lock().ok().and_then(|mut a| a.take());
        let mut aligned = match taken {
            Some(f) => f,
            None => Frame::filled(SIZE, SIZE, [0, 0, 0])?,
        };
        aligned.set_size(SIZE, SIZE)?;
        warp_affine_into(frame, &m, &mut aligned, Border::Constant(0.0));
        let done = self.run_crop_into(&aligned, latent, out);
        if let Ok(mut slot) = self.aligned.try_lock() {
            *slot = Some(aligned);
        }
        done.map(|()| m)
    }

    fn alpha_template(&self) -> &[u8] {
        &self.alpha
    }

    fn supports_pixel_boost(&self) -> bool {
        true
    }

    fn swap_crop_boosted(
        &self,
        frame: &Frame,
        target: &Face,
        source: &SourceIdentity,
        boost: u32,
    ) -> Result<(Frame, Affine)> {
        if boost == SIZE {
            return self.swap_crop(frame, target, source);
        }
        let SourceIdentity::Latent(latent) = source else {
            return Err(Error::Internal(
                "inswapper needs a latent source identity".into(),
            ));
        };
        let k = boost as f32 / SIZE as f32;
        let template = crate::geometry::arcface_template(SIZE).map(|p| [p[0] * k, p[1] * k]);
        let m = crate::geometry::umeyama(&target.kps, &template)
            .ok_or_else(|| Error::InvalidInput("degenerate face points".into()))?;
        let crop = warp_affine(frame, &m, boost, boost, Border::Constant(0.0));
        let parts = super::pixel_boost::implode(&crop, SIZE)?;
        let swapped = parts
            .iter()
            .map(|p| self.run_crop(p, latent))
            .collect::<Result<Vec<_>>>()?;
        Ok((super::pixel_boost::explode(&swapped, SIZE)?, m))
    }

    fn models(&self) -> Vec<&Model> {
        vec![&self.model]
    }
}
