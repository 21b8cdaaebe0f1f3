//! [`EngineContext`]: what every engine of a process shares — the ONNX
//! Runtime with its provider settings, the model store, the model cache and
//! the processor registry. Front ends make one and keep it; engines built
//! from it (and rebuilt by [`crate::pipeline::SwapEngine::reconfigure`])
//! share its loaded models.
//!
//! ```no_run
//! # fn main() -> camshow_core::Result<()> {
//! use camshow_core::{context::EngineContext, settings::Settings};
//! let ctx = EngineContext::from_settings(&Settings::default())?;
//! println!("ONNX Runtime {}", ctx.runtime().library().version);
//! # Ok(()) }
//! ```

use std::path::Path;
use std::sync::Arc;

use crate::analysis::{ArcFace, FaceAnalyser, Landmark106, Needs};
use crate::cache::ModelCache;
use crate::detect::{DetectorKind, FaceDetector, load_detector};
use crate::error::Result;
use crate::models::ModelStore;
use crate::process::Registry;
use crate::runtime::Runtime;
use crate::safety::SafetyGate;
use crate::settings::Settings;
use crate::swap::{ClassicSwapper, FaceSwapper, Inswapper};

/// inswapper's FP32 file (manifest id).
pub const INSWAPPER_FP32: &str = "inswapper_128";
/// inswapper's FP16 file (manifest id).
pub const INSWAPPER_FP16: &str = "inswapper_128_fp16";

/// The inswapper files to try, best first: FP16 first where a GPU provider
/// is listed for it (half the memory traffic, and its output is checked,
/// with the FP32 file as the fallback), FP32 first otherwise (the CPU's
/// FP16 kernels are slower, not faster).
pub fn inswapper_preference(options: &crate::runtime::RuntimeSettings) -> [&'static str; 2] {
    if options.lists_gpu_for(INSWAPPER_FP16) {
        [INSWAPPER_FP16, INSWAPPER_FP32]
    } else {
        [INSWAPPER_FP32, INSWAPPER_FP16]
    }
}

/// What to load instead of a swapper whose FP16 output is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fp16Fallback {
    /// The FP32 file (installed).
    Fp32File(&'static str),
    /// The same file without TensorRT's FP16 kernels.
    Fp32Kernels,
    /// Nothing left to try.
    None,
}

/// The fallback for swapper `id` under `options`, given which models are
/// `available`.
pub fn fp16_fallback(
    id: &str,
    options: &crate::runtime::RuntimeSettings,
    available: impl Fn(&str) -> bool,
) -> Fp16Fallback {
    if id == INSWAPPER_FP16 && available(INSWAPPER_FP32) {
        Fp16Fallback::Fp32File(INSWAPPER_FP32)
    } else if options.fp16_for(id) {
        Fp16Fallback::Fp32Kernels
    } else {
        Fp16Fallback::None
    }
}

/// Runtime, models, cache and registry, shared by the engines of a process.
#[derive(Debug)]
pub struct EngineContext {
    rt: Runtime,
    store: ModelStore,
    cache: ModelCache,
    registry: Registry,
    /// Contexts made by [`EngineContext::for_settings`] for other runtime
    /// settings or models folders (a video job's threads), kept so the
    /// next job with the same ones loads nothing again.
    derived: std::sync::Mutex<Vec<Arc<EngineContext>>>,
}

/// How many derived contexts [`EngineContext::for_settings`] keeps.
const DERIVED_KEPT: usize = 4;

impl EngineContext {
    /// A context with the built-in processors.
    pub fn new(rt: Runtime, store: ModelStore) -> Arc<Self> {
        Self::with_registry(rt, store, Registry::builtin())
    }

    /// A context with processors registered from outside the engine too.
    pub fn with_registry(rt: Runtime, store: ModelStore, registry: Registry) -> Arc<Self> {
        Arc::new(Self {
            rt,
            store,
            cache: ModelCache::new(),
            registry,
            derived: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The runtime (`settings.runtime`) and the store (`settings.models_dir`)
    /// the settings describe.
    pub fn from_settings(settings: &Settings) -> Result<Arc<Self>> {
        Self::with_store(settings, store_for(settings.models_dir.as_deref()))
    }

    /// The runtime `settings.runtime` describes over `store` (a store with
    /// model-file overrides: `--model-file`, Python's `model_files`).
    pub fn with_store(settings: &Settings, store: ModelStore) -> Result<Arc<Self>> {
        Ok(Self::new(Runtime::new(settings.runtime.clone())?, store))
    }

    /// This context when `settings` use the same runtime settings and models
    /// folder, else one for them (same store overrides and registry, its own
    /// cache), made once and kept for the next call with the same ones.
    pub fn for_settings(self: &Arc<Self>, settings: &Settings) -> Result<Arc<Self>> {
        // No models folder in the settings means this context's own.
        let dir = settings.models_dir.as_deref().unwrap_or(self.store.dir());
        let fits = |c: &Self| *c.rt.options() == settings.runtime && c.store.dir() == dir;
        if fits(self) {
            return Ok(Arc::clone(self));
        }
        let mut derived = self
            .derived
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = derived.iter().find(|c| fits(c)) {
            return Ok(Arc::clone(c));
        }
        tracing::info!(
            "runtime settings or models folder changed: a new engine context loads the models again"
        );
        let store = match &settings.models_dir {
            Some(d) => self.store.clone().with_dir(d),
            None => self.store.clone(),
        };
        let made = Self::with_registry(
            Runtime::new(settings.runtime.clone())?,
            store,
            self.registry.clone(),
        );
        if derived.len() >= DERIVED_KEPT {
            derived.remove(0);
        }
        derived.push(Arc::clone(&made));
        Ok(made)
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// The model store.
    pub fn store(&self) -> &ModelStore {
        &self.store
    }

    /// The cache of loaded models.
    pub fn cache(&self) -> &ModelCache {
        &self.cache
    }

    /// The processor registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The content-safety gate (loaded once).
    pub fn gate(&self) -> Result<SafetyGate> {
        self.cache
            .get_or_load("gate:nudenet", || SafetyGate::load(&self.rt, &self.store))
    }

    /// inswapper under manifest id `id` (loaded once); FP16 (the FP16 file,
    /// or TensorRT's FP16 kernels) is checked by [`Inswapper::probe`]. FP16
    /// that gives NaN or a flat picture here
    /// (some cards) falls back by itself: the FP16 file to the FP32 file
    /// when that is installed, else TensorRT's FP16 kernels to FP32 ones;
    /// with no fallback the error says what to install.
    pub fn inswapper(&self, id: &str) -> Result<Arc<dyn FaceSwapper>> {
        self.cache.get_or_load(&format!("swapper:{id}"), || {
            let s: Arc<dyn FaceSwapper> = Arc::new(self.checked_inswapper(id)?);
            Ok(s)
        })
    }

    fn checked_inswapper(&self, id: &str) -> Result<Inswapper> {
        let first = Inswapper::load(&self.rt, id, &self.store.read(id)?)?;
        // Only FP16 is checked (one inference at load).
        let fp16 = id == INSWAPPER_FP16 || self.rt.options().fp16_for(id);
        if !fp16 {
            return Ok(first);
        }
        let Err(broken) = first.probe() else {
            return Ok(first);
        };
        let fallback = fp16_fallback(id, self.rt.options(), |m| self.store.available(m));
        tracing::warn!(model = id, error = %broken, ?fallback, "the swapper's output is unusable");
        let (rt, fp32) = match fallback {
            Fp16Fallback::Fp32File(fp32) => (self.rt.clone(), fp32),
            Fp16Fallback::Fp32Kernels => {
                (self.rt.with_options(self.rt.options().without_fp16()), id)
            }
            Fp16Fallback::None => {
                let hint = if id == INSWAPPER_FP16 {
                    format!(
                        "; FP16 fails on some cards: install the FP32 model (`camshow models fetch {INSWAPPER_FP32}`)"
                    )
                } else {
                    String::new()
                };
                return Err(match broken {
                    crate::Error::ModelOutput { model, reason } => crate::Error::ModelOutput {
                        model,
                        reason: format!("{reason}{hint}"),
                    },
                    other => other,
                });
            }
        };
        let second = Inswapper::load(&rt, fp32, &self.store.read(fp32)?)?;
        second.probe()?;
        Ok(second)
    }

    /// The classic swapper (built once).
    pub fn classic_swapper(&self) -> Result<Arc<dyn FaceSwapper>> {
        self.cache.get_or_load("swapper:classic", || {
            let s: Arc<dyn FaceSwapper> = Arc::new(ClassicSwapper::new());
            Ok(s)
        })
    }

    /// An analyser with `detector` and the models `needs` call for, from
    /// cached parts.
    pub fn analyser(&self, detector: DetectorKind, needs: Needs) -> Result<Arc<FaceAnalyser>> {
        let key = format!(
            "analyser:{}:{}:{}",
            detector.name(),
            needs.embedding,
            needs.landmarks_106
        );
        self.cache.get_or_load(&key, || {
            let det: Arc<dyn FaceDetector> = self
                .cache
                .get_or_load(&format!("detector:{}", detector.name()), || {
                    Ok(Arc::from(load_detector(detector, &self.rt, &self.store)?))
                })?;
            let rec = needs
                .embedding
                .then(|| {
                    self.cache.get_or_load("recognizer:w600k_r50", || {
                        ArcFace::load(&self.rt, &self.store.read("w600k_r50")?)
                    })
                })
                .transpose()?;
            let lm = needs
                .landmarks_106
                .then(|| {
                    self.cache.get_or_load("landmarker:2d106det", || {
                        Landmark106::load(&self.rt, &self.store.read("2d106det")?)
                    })
                })
                .transpose()?;
            Ok(Arc::new(FaceAnalyser::from_parts(det, rec, lm)))
        })
    }
}

/// The store at `dir`, or the default one (`CAMSHOW_MODELS`, else the platform data folder).
pub fn store_for(dir: Option<&Path>) -> ModelStore {
    match dir {
        Some(d) => ModelStore::new(d, crate::paths::cache_dir()),
        None => ModelStore::open_default(),
    }
}

/// `store` with `ID=FILE` overrides (`--model-file` of the CLI and the
/// desktop app): each file is used for its model id instead of the
/// installed copy.
pub fn with_model_files(mut store: ModelStore, specs: &[String]) -> Result<ModelStore> {
    for spec in specs {
        let (id, path) = spec.split_once('=').ok_or_else(|| {
            crate::Error::InvalidInput(format!("--model-file {spec:?} is not ID=FILE"))
        })?;
        store = store.with_override(id, path)?;
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_for_other_runtime_settings_is_made_once_and_kept() {
        let rt = Runtime::new(crate::runtime::RuntimeSettings::auto(2)).unwrap();
        let ctx = EngineContext::new(rt, ModelStore::open_default());
        let mut same = Settings::default();
        same.runtime.intra_threads = 2;
        assert!(Arc::ptr_eq(&ctx.for_settings(&same).unwrap(), &ctx));
        let mut one = same.clone();
        one.runtime.intra_threads = 1;
        let a = ctx.for_settings(&one).unwrap();
        assert!(!Arc::ptr_eq(&a, &ctx));
        assert_eq!(a.runtime().options().intra_threads, 1);
        // The next job with the same threads gets the same context (and its loaded models).
        assert!(Arc::ptr_eq(&ctx.for_settings(&one).unwrap(), &a));
        // Only a few are kept: the oldest goes first.
        for t in 3..=(2 + DERIVED_KEPT) {
            let mut other = same.clone();
            other.runtime.intra_threads = t;
            ctx.for_settings(&other).unwrap();
        }
        assert!(!Arc::ptr_eq(&ctx.for_settings(&one).unwrap(), &a));
    }

    /// A model with inswapper's signature whose output is `body` applied to
    /// `target` (`good`: the target itself; `nan`: 0/0; `flat`: zeros).
    fn swapper_model(body: &str) -> Vec<u8> {
        let b = crate::onnx::ModelBuilder::new("swapper", 13)
            .input("target", &crate::onnx::fixed(&[1, 3, 128, 128]))
            .input("source", &crate::onnx::fixed(&[1, 512]))
            .output("output", &crate::onnx::fixed(&[1, 3, 128, 128]));
        let b = match body {
            "good" => b.node("Identity", &["target"], &["output"], &[]),
            "nan" => b.node("Sub", &["target", "target"], &["zero"], &[]).node(
                "Div",
                &["zero", "zero"],
                &["output"],
                &[],
            ),
            // The target brightened by the sum of the latent.
            "mix" => b.node("ReduceSum", &["source"], &["sum"], &[]).node(
                "Add",
                &["target", "sum"],
                &["output"],
                &[],
            ),
            _ => b.node("Sub", &["target", "target"], &["output"], &[]),
        };
        b.initializer("emap", &[512, 512], &vec![0.01; 512 * 512])
            .build()
    }

    /// A context whose store holds `files` (id, body) and nothing else.
    fn context_with(dir: &Path, files: &[(&str, &str)]) -> Arc<EngineContext> {
        let rt = Runtime::new(crate::runtime::RuntimeSettings::auto(1)).unwrap();
        let mut store = ModelStore::new(dir.join("models"), dir.join("cache"));
        for (id, body) in files {
            let path = dir.join(format!("{id}-{body}.onnx"));
            std::fs::write(&path, swapper_model(body)).unwrap();
            store = store.with_override(id, path).unwrap();
        }
        EngineContext::new(rt, store)
    }

    fn model_of(s: &Arc<dyn FaceSwapper>) -> String {
        s.models()[0].name().to_string()
    }

    #[test]
    fn the_swapper_swaps_the_same_through_a_cuda_graph_session() {
        use crate::swap::Inswapper;
        let bytes = swapper_model("mix");
        let rt = Runtime::new(crate::runtime::RuntimeSettings::auto(1)).unwrap();
        let plain = Inswapper::load(&rt, INSWAPPER_FP32, &bytes).unwrap();
        let graph = Inswapper::load(&rt.with_host_graphs(), INSWAPPER_FP32, &bytes).unwrap();
        assert_eq!(graph.model().graph_sessions(), 1);
        graph.probe().unwrap();
        let mut last = None;
        for k in 0..3u8 {
            let crop: Vec<u8> = (0..128 * 128 * 3)
                .map(|i| ((i * 7 + usize::from(k) * 31) % 200) as u8)
                .collect();
            let crop = crate::frame::Frame::from_rgb(128, 128, crop).unwrap();
            let latent = vec![f32::from(k) * 0.0004; 512];
            let want = plain.run_crop(&crop, &latent).unwrap();
            let got = graph.run_crop(&crop, &latent).unwrap();
            assert_eq!(got.data(), want.data(), "crop {k}");
            // Each run's own crop and latent went in.
            assert_ne!(Some(got.data().to_vec()), last);
            last = Some(got.data().to_vec());
        }
    }

    #[test]
    fn an_fp16_swapper_with_nan_output_falls_back_to_the_fp32_file() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context_with(
            dir.path(),
            &[(INSWAPPER_FP16, "nan"), (INSWAPPER_FP32, "good")],
        );
        let s = ctx.inswapper(INSWAPPER_FP16).unwrap();
        assert_eq!(model_of(&s), INSWAPPER_FP32);
        // A sane FP16 file is kept.
        let ctx = context_with(
            dir.path(),
            &[(INSWAPPER_FP16, "good"), (INSWAPPER_FP32, "good")],
        );
        assert_eq!(
            model_of(&ctx.inswapper(INSWAPPER_FP16).unwrap()),
            INSWAPPER_FP16
        );
    }

    #[test]
    fn an_unusable_swapper_with_nothing_to_fall_back_to_is_refused_with_what_to_install() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context_with(dir.path(), &[(INSWAPPER_FP16, "nan")]);
        let e = ctx.inswapper(INSWAPPER_FP16).unwrap_err().to_string();
        assert!(e.contains("NaN"), "{e}");
        assert!(e.contains("camshow models fetch inswapper_128"), "{e}");
        // A flat picture is as unusable as NaN.
        let ctx = context_with(dir.path(), &[(INSWAPPER_FP16, "flat")]);
        let e = ctx.inswapper(INSWAPPER_FP16).unwrap_err();
        assert!(matches!(e, crate::Error::ModelOutput { .. }), "{e}");
        assert!(e.to_string().contains("flat"), "{e}");
        // FP32 on the CPU is not run at load (no FP16 anywhere).
        let ctx = context_with(dir.path(), &[(INSWAPPER_FP32, "nan")]);
        assert_eq!(
            model_of(&ctx.inswapper(INSWAPPER_FP32).unwrap()),
            INSWAPPER_FP32
        );
        // The FP32 fallback is checked too.
        let ctx = context_with(
            dir.path(),
            &[(INSWAPPER_FP16, "nan"), (INSWAPPER_FP32, "flat")],
        );
        assert!(ctx.inswapper(INSWAPPER_FP16).is_err());
    }

    #[test]
    fn fp16_falls_back_to_the_fp32_file_then_to_fp32_kernels() {
        use crate::runtime::{ExecutionProvider, ProviderConfig, RuntimeSettings};
        let cpu = RuntimeSettings::auto(0);
        let mut trt = RuntimeSettings::explicit(&[ExecutionProvider::TensorRt]);
        trt.providers[0].fp16 = true;
        let all = |_: &str| true;
        let none = |_: &str| false;
        assert_eq!(
            fp16_fallback(INSWAPPER_FP16, &cpu, all),
            Fp16Fallback::Fp32File(INSWAPPER_FP32)
        );
        assert_eq!(
            fp16_fallback(INSWAPPER_FP16, &trt, all),
            Fp16Fallback::Fp32File(INSWAPPER_FP32)
        );
        assert_eq!(
            fp16_fallback(INSWAPPER_FP16, &trt, none),
            Fp16Fallback::Fp32Kernels
        );
        assert_eq!(
            fp16_fallback(INSWAPPER_FP32, &trt, all),
            Fp16Fallback::Fp32Kernels
        );
        assert_eq!(fp16_fallback(INSWAPPER_FP32, &cpu, all), Fp16Fallback::None);
        assert_eq!(
            fp16_fallback(INSWAPPER_FP16, &cpu, none),
            Fp16Fallback::None
        );
        assert!(!trt.without_fp16().providers[0].fp16);
        // An FP16 provider for other models leaves this one alone.
        let mut trt_det = trt.clone();
        trt_det.providers[0].models = vec!["det_10g".into()];
        assert_eq!(
            fp16_fallback(INSWAPPER_FP32, &trt_det, all),
            Fp16Fallback::None
        );
        // FP16 first only where a GPU provider is listed for it.
        assert_eq!(inswapper_preference(&trt)[0], INSWAPPER_FP16);
        assert_eq!(inswapper_preference(&cpu)[0], INSWAPPER_FP32);
        let cpu_listed = RuntimeSettings {
            providers: vec![ProviderConfig::new(ExecutionProvider::Cpu)],
            intra_threads: 0,
        };
        assert_eq!(inswapper_preference(&cpu_listed)[0], INSWAPPER_FP32);
        let mut fp32_only = trt.clone();
        fp32_only.providers[0].models = vec![INSWAPPER_FP32.into()];
        assert_eq!(inswapper_preference(&fp32_only)[0], INSWAPPER_FP32);
    }
}
