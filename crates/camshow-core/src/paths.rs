//! Where the product keeps its models and caches.

use std::path::PathBuf;

use crate::env_vars;

const APP: &str = "camshow-deepfaker";

fn from_env(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The models directory: `CAMSHOW_MODELS`, else `<platform data dir>/camshow-deepfaker/models`.
pub fn models_dir() -> PathBuf {
    from_env(env_vars::CAMSHOW_MODELS).unwrap_or_else(|| {
        dirs::data_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join(APP)
            .join("models")
    })
}

/// The download cache: `CAMSHOW_CACHE`, else `<platform cache dir>/camshow-deepfaker`.
pub fn cache_dir() -> PathBuf {
    from_env(env_vars::CAMSHOW_CACHE).unwrap_or_else(|| {
        dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join(APP)
    })
}

/// The server's folder (uploads, sources, results, its token):
/// `<platform data dir>/camshow-deepfaker/server`.
pub fn server_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join(APP)
        .join("server")
}

/// The configuration directory: `<platform config dir>/camshow-deepfaker`.
pub fn config_dir() -> PathBuf {
    dirs::config_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join(APP)
}
