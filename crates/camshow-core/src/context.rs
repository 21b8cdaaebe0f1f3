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

    /// inswapper under manifest id `id` (loaded once).
    pub fn inswapper(&self, id: &str) -> Result<Arc<dyn FaceSwapper>> {
        self.cache.get_or_load(&format!("swapper:{id}"), || {
            let s: Arc<dyn FaceSwapper> =
                Arc::new(Inswapper::load(&self.rt, id, &self.store.read(id)?)?);
            Ok(s)
        })
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
}
