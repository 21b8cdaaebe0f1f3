//! Flags shared by every command that runs models.

use std::path::PathBuf;

use anyhow::Result;
use camshow_core::models::ModelStore;
use camshow_core::runtime::{Runtime, RuntimeOptions, parse_provider_list};
use clap::Args;

/// Engine settings: models folder, execution providers, threads.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Models folder [default: the platform data folder]
    #[arg(long, global = true, env = camshow_core::env_vars::CAMSHOW_MODELS, value_name = "DIR")]
    pub models_dir: Option<PathBuf>,
    /// Ordered execution providers, e.g. `cuda,cpu` (cpu, cuda, tensorrt, coreml, directml, openvino, rocm).
    /// When given, each listed provider must attach or the command fails; when omitted,
    /// available accelerators are tried and the ones that attached are reported
    #[arg(long, global = true, value_name = "LIST", value_parser = parse_providers)]
    pub execution_provider: Option<ProviderList>,
    /// Intra-op threads per model (0 = ONNX Runtime's default)
    #[arg(long, global = true, default_value_t = 0, value_name = "N")]
    pub execution_threads: usize,
}

/// A parsed `--execution-provider` list (one value, comma-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderList(pub Vec<camshow_core::runtime::ExecutionProvider>);

fn parse_providers(s: &str) -> std::result::Result<ProviderList, String> {
    parse_provider_list(s)
        .map(ProviderList)
        .map_err(|e| e.to_string())
}

impl EngineArgs {
    /// The model store these flags select.
    pub fn store(&self) -> ModelStore {
        match &self.models_dir {
            Some(d) => ModelStore::new(d, camshow_core::paths::cache_dir()),
            None => ModelStore::open_default(),
        }
    }

    /// Loads ONNX Runtime with these settings.
    pub fn runtime(&self) -> Result<Runtime> {
        Ok(Runtime::new(RuntimeOptions {
            providers: self.execution_provider.clone().map(|l| l.0),
            intra_threads: self.execution_threads,
        })?)
    }
}

/// clap value parser for every engine enum that implements `FromStr` (detector, swapper, selector, …).
pub fn parse<T: std::str::FromStr<Err = camshow_core::Error>>(
    s: &str,
) -> std::result::Result<T, String> {
    s.parse().map_err(|e: camshow_core::Error| e.to_string())
}

/// Applies `--model-file ID=FILE` overrides to a store.
pub fn with_model_files(mut store: ModelStore, specs: &[String]) -> Result<ModelStore> {
    for spec in specs {
        let (id, path) = spec
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--model-file {spec:?} is not ID=FILE"))?;
        store = store.with_override(id, path)?;
    }
    Ok(store)
}
