//! Every environment variable the product reads, in one place.

/// Path of the ONNX Runtime shared library (or a directory holding it).
pub const ORT_DYLIB_PATH: &str = "ORT_DYLIB_PATH";
/// The models directory.
pub const CAMSHOW_MODELS: &str = "CAMSHOW_MODELS";
/// The download/setup cache directory.
pub const CAMSHOW_CACHE: &str = "CAMSHOW_CACHE";
/// The Python interpreter used to fetch models that ship in Python wheels.
pub const CAMSHOW_PYTHON: &str = "CAMSHOW_PYTHON";
/// The settings file (default: `camshow.toml` in the platform config folder).
pub const CAMSHOW_CONFIG: &str = "CAMSHOW_CONFIG";
