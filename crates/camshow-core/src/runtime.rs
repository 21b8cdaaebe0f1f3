//! ONNX Runtime: finding the shared library, execution providers, sessions.
//!
//! The library is loaded at run time (`ort`'s `load-dynamic`), so one binary
//! works with the CPU library from the `onnxruntime` wheel, the GPU one from
//! `onnxruntime-gpu`, or a system install. It is looked for in this order:
//! `ORT_DYLIB_PATH`, the setup cache, an installed Python `onnxruntime`
//! package, system library paths; [`RuntimeLibrary::source`] says which.
//!
//! ```no_run
//! # fn main() -> camshow_core::Result<()> {
//! use camshow_core::{runtime::Runtime, settings::RuntimeSettings};
//! let rt = Runtime::new(RuntimeSettings::default())?;
//! println!("{} from {}", rt.library().version, rt.library().path.display());
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

use ort::ep::{self, ExecutionProvider as _};
use ort::session::Session;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};

use crate::env_vars;
use crate::error::{Error, Result};

mod graph;

/// An ONNX Runtime execution provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionProvider {
    /// The default CPU provider (always present).
    Cpu,
    /// NVIDIA CUDA.
    Cuda,
    /// NVIDIA TensorRT.
    #[serde(rename = "tensorrt")]
    TensorRt,
    /// Apple CoreML.
    #[serde(rename = "coreml")]
    CoreMl,
    /// Windows DirectML.
    #[serde(rename = "directml")]
    DirectMl,
    /// Intel OpenVINO.
    #[serde(rename = "openvino")]
    OpenVino,
    /// AMD ROCm.
    Rocm,
}

impl ExecutionProvider {
    /// Every provider, in the default preference order.
    pub const ALL: [Self; 7] = [
        Self::TensorRt,
        Self::Cuda,
        Self::CoreMl,
        Self::DirectMl,
        Self::OpenVino,
        Self::Rocm,
        Self::Cpu,
    ];

    /// Whether it runs on an NVIDIA GPU (CUDA, TensorRT).
    pub fn is_nvidia(self) -> bool {
        matches!(self, Self::Cuda | Self::TensorRt)
    }

    /// The short name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::TensorRt => "tensorrt",
            Self::CoreMl => "coreml",
            Self::DirectMl => "directml",
            Self::OpenVino => "openvino",
            Self::Rocm => "rocm",
        }
    }

    /// Whether the loaded ONNX Runtime library was built with this provider.
    /// (Compiled in does not mean usable: CUDA may still lack its libraries.)
    pub fn compiled_in(self) -> bool {
        let r = match self {
            Self::Cpu => return true,
            Self::Cuda => ep::CUDA::is_available(),
            Self::TensorRt => ep::TensorRT::is_available(),
            Self::CoreMl => ep::CoreML::is_available(),
            Self::DirectMl => ep::DirectML::is_available(),
            Self::OpenVino => ep::OpenVINO::is_available(),
            Self::Rocm => ep::ROCm::is_available(),
        };
        r.unwrap_or(false)
    }

    fn dispatch(self) -> ep::ExecutionProviderDispatch {
        ProviderConfig::new(self).dispatch()
    }
}

impl ProviderConfig {
    /// The provider with its options, for ONNX Runtime.
    fn dispatch(&self) -> ep::ExecutionProviderDispatch {
        let dev = self.device_id.unwrap_or(0);
        match self.kind {
            ExecutionProvider::Cuda => {
                let mut c = ep::CUDA::default().with_device_id(dev);
                if let Some(limit) = self.memory_limit {
                    c = c.with_memory_limit(usize::try_from(limit).unwrap_or(usize::MAX));
                }
                if let Some(search) = self.conv_search {
                    c = c.with_conv_algorithm_search(match search {
                        ConvSearch::Exhaustive => ep::cuda::ConvAlgorithmSearch::Exhaustive,
                        ConvSearch::Heuristic => ep::cuda::ConvAlgorithmSearch::Heuristic,
                        ConvSearch::Default => ep::cuda::ConvAlgorithmSearch::Default,
                    });
                }
                if self.cuda_graph {
                    c = c.with_cuda_graph(true);
                }
                c.build()
            }
            ExecutionProvider::TensorRt => {
                let mut t = ep::TensorRT::default()
                    .with_device_id(dev)
                    .with_fp16(self.fp16);
                if let Some(dir) = &self.engine_cache {
                    t = t
                        .with_engine_cache(true)
                        .with_engine_cache_path(dir.display())
                        .with_timing_cache(true)
                        .with_timing_cache_path(dir.display());
                }
                if self.cuda_graph {
                    t = t.with_cuda_graph(true);
                }
                t.build()
            }
            ExecutionProvider::Rocm => ep::ROCm::default().with_device_id(dev).build(),
            ExecutionProvider::DirectMl => ep::DirectML::default().with_device_id(dev).build(),
            other => other.dispatch_plain(),
        }
    }
}

impl ExecutionProvider {
    fn dispatch_plain(self) -> ep::ExecutionProviderDispatch {
        match self {
            Self::Cpu => ep::CPU::default().build(),
            Self::Cuda => ep::CUDA::default().build(),
            Self::TensorRt => ep::TensorRT::default().build(),
            Self::CoreMl => ep::CoreML::default().build(),
            Self::DirectMl => ep::DirectML::default().build(),
            Self::OpenVino => ep::OpenVINO::default().build(),
            Self::Rocm => ep::ROCm::default().build(),
        }
    }
}

impl fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ExecutionProvider {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        let s = s.strip_suffix("executionprovider").unwrap_or(&s);
        Ok(match s {
            "cpu" => Self::Cpu,
            "cuda" => Self::Cuda,
            "tensorrt" | "trt" => Self::TensorRt,
            "coreml" => Self::CoreMl,
            "directml" | "dml" => Self::DirectMl,
            "openvino" => Self::OpenVino,
            "rocm" => Self::Rocm,
            _ => return Err(Error::UnknownProvider(s.to_string())),
        })
    }
}

/// Parses a comma-separated provider list such as `cuda,cpu`.
pub fn parse_provider_list(s: &str) -> Result<Vec<ExecutionProvider>> {
    let list: Vec<_> = s
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(str::parse)
        .collect::<Result<_>>()?;
    if list.is_empty() {
        return Err(Error::InvalidInput("empty execution-provider list".into()));
    }
    Ok(list)
}

/// How the ONNX Runtime library was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LibrarySource {
    /// The `ORT_DYLIB_PATH` environment variable.
    EnvVar,
    /// The project's setup cache.
    SetupCache,
    /// An installed Python `onnxruntime` / `onnxruntime-gpu` package.
    PythonPackage,
    /// A system library directory.
    System,
}

impl fmt::Display for LibrarySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EnvVar => "ORT_DYLIB_PATH",
            Self::SetupCache => "setup cache",
            Self::PythonPackage => "Python onnxruntime package",
            Self::System => "system library path",
        })
    }
}

/// The loaded ONNX Runtime library.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeLibrary {
    /// Full path of the shared library.
    pub path: PathBuf,
    /// Where it was found.
    pub source: LibrarySource,
    /// Its version, e.g. `1.32.0`.
    pub version: String,
    /// The CUDA libraries loaded first from the `nvidia` folder beside it
    /// (the GPU runtime the setup fetches; see [`preload_libraries`]).
    pub preloaded: Vec<PathBuf>,
    /// Libraries of that folder that would not load, with the reason.
    pub preload_failures: Vec<(PathBuf, String)>,
}

/// The order CUDA's libraries are loaded in (each after what it needs),
/// as the `onnxruntime-gpu` Python package preloads them; any other library
/// of the folder comes after these.
const PRELOAD_ORDER: [&str; 9] = [
    "libcudart",
    "libnvJitLink",
    "libnvrtc",
    "libcublasLt",
    "libcublas",
    "libcurand",
    "libcufft",
    "libcudnn_graph",
    "libcudnn",
];

/// Where the CUDA libraries of the ONNX Runtime library at `lib` are, when
/// it is a GPU build (its CUDA provider beside it; none for a CPU build):
/// the setup's GPU runtime keeps them in `nvidia/` beside it; a
/// pip-installed `onnxruntime-gpu` (`…/site-packages/onnxruntime/capi/`)
/// has them in `…/site-packages/nvidia/*/lib/`.
pub fn cuda_library_dirs(lib: &Path) -> Vec<PathBuf> {
    let Some(dir) = lib.parent() else {
        return Vec::new();
    };
    if !dir.join("libonnxruntime_providers_cuda.so").is_file() {
        return Vec::new();
    }
    let mut dirs = vec![dir.join("nvidia")];
    if let Some(site) = dir.parent().and_then(Path::parent) {
        let mut wheels: Vec<PathBuf> = std::fs::read_dir(site.join("nvidia"))
            .map(|rd| {
                rd.filter_map(std::result::Result::ok)
                    .map(|e| e.path().join("lib"))
                    .collect()
            })
            .unwrap_or_default();
        wheels.sort();
        dirs.extend(wheels);
    }
    dirs.retain(|d| d.is_dir());
    dirs
}

/// The CUDA libraries of `dirs` in the order [`preload_libraries`] loads
/// them: only those [`PRELOAD_ORDER`] names and cuDNN's parts (never, say,
/// a BLAS replacement that happens to be there), one file per library (the
/// shortest name, e.g. `libcudnn.so.9` before `libcudnn.so.9.28.1`), in
/// that order, then cuDNN's parts by name.
pub fn preload_order(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|rd| rd.filter_map(std::result::Result::ok).map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("lib") && n.contains(".so"))
        })
        .collect();
    let stem = |p: &Path| -> String {
        let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        n.split(".so").next().unwrap_or(n).to_string()
    };
    files.retain(|p| {
        let s = stem(p);
        PRELOAD_ORDER.contains(&s.as_str()) || s.starts_with("libcudnn")
    });
    files.sort_by_key(|p| (p.as_os_str().len(), p.clone()));
    let mut seen = std::collections::HashSet::new();
    files.retain(|p| seen.insert(stem(p)));
    let rank = |p: &Path| {
        let s = stem(p);
        PRELOAD_ORDER
            .iter()
            .position(|o| s == *o)
            .unwrap_or(PRELOAD_ORDER.len())
    };
    files.sort_by_key(|p| (rank(p), stem(p)));
    files
}

/// Loads the shared libraries of `dirs` into the process, globally, before
/// ONNX Runtime (whose CUDA provider then finds them by name, as the
/// Python package arranges with its own preloading). Each is tried in
/// [`preload_order`]; those that fail are tried again while others still
/// load (an order this list did not foresee), then reported.
pub fn preload_libraries(dirs: &[PathBuf]) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut pending = preload_order(dirs);
    let mut loaded = Vec::new();
    loop {
        let mut failed = Vec::new();
        let before = loaded.len();
        for p in pending {
            match load_global(&p) {
                Ok(()) => loaded.push(p),
                Err(e) => failed.push((p, e)),
            }
        }
        if failed.is_empty() || loaded.len() == before {
            return (loaded, failed);
        }
        pending = failed.into_iter().map(|(p, _)| p).collect();
    }
}

/// `dlopen(path, RTLD_NOW | RTLD_GLOBAL)`, kept for the life of the process.
#[cfg(unix)]
#[allow(unsafe_code)]
fn load_global(path: &Path) -> std::result::Result<(), String> {
    use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
    // SAFETY: loading a library runs its initialisers. These are the CUDA
    // libraries from NVIDIA's wheels that the setup unpacked and checked
    // (SHA-256), the same files the onnxruntime-gpu Python package loads
    // this way; nothing is called through the handle.
    let lib =
        unsafe { Library::open(Some(path), RTLD_NOW | RTLD_GLOBAL) }.map_err(|e| e.to_string())?;
    // Kept loaded: ONNX Runtime's CUDA provider resolves its symbols later.
    std::mem::forget(lib);
    Ok(())
}

#[cfg(not(unix))]
fn load_global(_path: &Path) -> std::result::Result<(), String> {
    Err("preloading is for Linux".into())
}

fn lib_name_matches(name: &str) -> bool {
    if cfg!(target_os = "macos") {
        name.starts_with("libonnxruntime.")
            && Path::new(name)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("dylib"))
            && !name.contains("providers")
    } else if cfg!(windows) {
        name.eq_ignore_ascii_case("onnxruntime.dll")
    } else {
        name == "libonnxruntime.so" || name.starts_with("libonnxruntime.so.")
    }
}

/// The newest ONNX Runtime library file directly inside `dir`, if any.
fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(lib_name_matches))
        .map(|e| e.path())
        .collect();
    // Longest name first: `libonnxruntime.so.1.32.0` before `libonnxruntime.so`.
    found.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    found.into_iter().next()
}

/// Directories where the setup script leaves ONNX Runtime: the GPU build
/// (`<cache>/onnxruntime-gpu/<version>/`, fetched only on a machine with an
/// NVIDIA GPU) before the CPU one (`<cache>/onnxruntime/<version>/`),
/// newest version first.
fn setup_cache_dirs() -> Vec<PathBuf> {
    let versions = |root: PathBuf| {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
            .map(|rd| {
                rd.filter_map(std::result::Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        dirs.sort();
        dirs.reverse();
        dirs
    };
    let cache = crate::paths::cache_dir();
    let mut dirs = versions(cache.join("onnxruntime-gpu"));
    dirs.extend(versions(cache.join("onnxruntime")));
    dirs
}

fn python_package_dirs() -> Vec<PathBuf> {
    let script = "import importlib.util as u\nfor n in ('onnxruntime',):\n s=u.find_spec(n)\n if s and s.submodule_search_locations:\n  print(list(s.submodule_search_locations)[0])";
    let mut out = Vec::new();
    // The interpreter named by CAMSHOW_PYTHON first (the Python package sets
    // it to its own, so that its environment's onnxruntime is found).
    let named = std::env::var(env_vars::CAMSHOW_PYTHON)
        .ok()
        .filter(|p| !p.is_empty());
    for py in named
        .iter()
        .map(String::as_str)
        .chain(["python3", "python"])
    {
        if let Ok(o) = std::process::Command::new(py).args(["-c", script]).output()
            && o.status.success()
        {
            for line in String::from_utf8_lossy(&o.stdout).lines() {
                out.push(PathBuf::from(line.trim()).join("capi"));
            }
            break;
        }
    }
    out
}

fn system_dirs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = [
        "/usr/local/lib",
        "/usr/lib",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/opt/homebrew/lib",
        "/opt/local/lib",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    for var in ["LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH"] {
        if let Some(paths) = std::env::var_os(var) {
            v.extend(std::env::split_paths(&paths));
        }
    }
    v
}

/// The folders of one place where the library is looked for.
type PlaceDirs = fn() -> Vec<PathBuf>;

/// Finds the ONNX Runtime library without loading it.
pub fn locate_library() -> Result<(PathBuf, LibrarySource)> {
    let mut searched = Vec::new();
    if let Some(p) = std::env::var_os(env_vars::ORT_DYLIB_PATH).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok((p, LibrarySource::EnvVar));
        }
        if p.is_dir()
            && let Some(lib) = library_in(&p)
        {
            return Ok((lib, LibrarySource::EnvVar));
        }
        return Err(Error::RuntimeNotFound {
            searched: format!("ORT_DYLIB_PATH={} does not exist", p.display()),
        });
    }
    // In order, each place looked at only when the ones before it have no
    // library: no Python is started when the setup cache has one.
    let places: [(PlaceDirs, LibrarySource); 3] = [
        (setup_cache_dirs, LibrarySource::SetupCache),
        (python_package_dirs, LibrarySource::PythonPackage),
        (system_dirs, LibrarySource::System),
    ];
    for (dirs, source) in places {
        for d in dirs() {
            if let Some(lib) = library_in(&d) {
                return Ok((lib, source));
            }
            searched.push(d.display().to_string());
        }
    }
    Err(Error::RuntimeNotFound {
        searched: searched.join(", "),
    })
}

#[derive(Debug, Clone)]
enum LoadFailure {
    NotFound(String),
    Load(PathBuf, String),
}

static LOADED: OnceLock<
    std::result::Result<(RuntimeLibrary, ort::environment::Environment), LoadFailure>,
> = OnceLock::new();

fn version_from_info(info: &str) -> Option<String> {
    // "ORT Build Info: git-branch=rel-1.32.0, git-commit-id=..."
    let after = info.split("git-branch=rel-").nth(1)?;
    Some(after.split([',', ' ']).next()?.to_string())
}

fn version_from_filename(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let v = name
        .trim_start_matches("libonnxruntime")
        .trim_start_matches(".so")
        .trim_start_matches('.')
        .trim_end_matches(".dylib");
    (!v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.')).then(|| v.to_string())
}

fn load_once() -> Result<&'static (RuntimeLibrary, ort::environment::Environment)> {
    let loaded = LOADED.get_or_init(|| {
        let (path, source) = match locate_library() {
            Ok(found) => found,
            Err(Error::RuntimeNotFound { searched }) => {
                return Err(LoadFailure::NotFound(searched));
            }
            Err(e) => return Err(LoadFailure::NotFound(e.to_string())),
        };
        // A GPU runtime's CUDA libraries are loaded first (see cuda_library_dirs).
        let (preloaded, preload_failures) = preload_libraries(&cuda_library_dirs(&path));
        for (p, e) in &preload_failures {
            tracing::warn!("could not preload {}: {e}", p.display());
        }
        let builder =
            ort::init_from(&path).map_err(|e| LoadFailure::Load(path.clone(), e.to_string()))?;
        let env = builder.with_name("camshow").build().map_err(|e| {
            LoadFailure::Load(path.clone(), format!("creating the environment: {e}"))
        })?;
        let version = version_from_info(ort::info())
            .or_else(|| version_from_filename(&path))
            .unwrap_or_else(|| "unknown".into());
        Ok((
            RuntimeLibrary {
                path,
                source,
                version,
                preloaded,
                preload_failures,
            },
            env,
        ))
    });
    loaded.as_ref().map_err(|f| match f.clone() {
        LoadFailure::NotFound(searched) => Error::RuntimeNotFound { searched },
        LoadFailure::Load(path, reason) => Error::RuntimeLoad { path, reason },
    })
}

/// ONNX Runtime settings.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Ordered execution providers. Empty: automatic (every accelerator in the
    /// library is tried, then CPU). Listed: each must attach or loading fails.
    /// Each entry is a provider's name (`"cuda"`) or a table with its options.
    #[serde(deserialize_with = "providers_from")]
    pub providers: Vec<ProviderConfig>,
    /// Intra-op threads per model (0 = ONNX Runtime's default).
    #[schemars(range(max = 1024))]
    pub intra_threads: usize,
}

impl RuntimeSettings {
    /// Automatic providers with `intra_threads` threads.
    pub fn auto(intra_threads: usize) -> Self {
        Self {
            providers: Vec::new(),
            intra_threads,
        }
    }

    /// Whether a GPU provider (CUDA, TensorRT, ROCm, DirectML) is listed
    /// for model `name`.
    pub fn lists_gpu_for(&self, name: &str) -> bool {
        self.providers
            .iter()
            .any(|p| p.is_gpu() && p.applies_to(name))
    }

    /// Whether a provider with FP16 kernels is listed for model `name`.
    pub fn fp16_for(&self, name: &str) -> bool {
        self.providers.iter().any(|p| p.fp16 && p.applies_to(name))
    }

    /// The providers each of model `name`'s sessions gets, in priority
    /// order (the CPU is always added last): those that apply to the model,
    /// and at least `sessions` sessions, or one per device where a provider
    /// lists several, session `i` on device `i` (round robin).
    pub fn session_plan(&self, name: &str, sessions: usize) -> Vec<Vec<ProviderConfig>> {
        let mine: Vec<&ProviderConfig> = self
            .providers
            .iter()
            .filter(|p| p.applies_to(name))
            .collect();
        let n = mine
            .iter()
            .map(|p| p.devices.len())
            .max()
            .unwrap_or(0)
            .max(sessions)
            .max(1);
        (0..n)
            .map(|i| {
                mine.iter()
                    .map(|p| {
                        let mut p = (*p).clone();
                        if !p.devices.is_empty() {
                            p.device_id = Some(p.devices[i % p.devices.len()]);
                        }
                        p
                    })
                    .collect()
            })
            .collect()
    }

    /// These settings with FP16 kernels turned off (TensorRT's `fp16`).
    #[must_use]
    pub fn without_fp16(&self) -> Self {
        let mut s = self.clone();
        for p in &mut s.providers {
            p.fp16 = false;
        }
        s
    }

    /// Explicit providers (each must attach), default options.
    pub fn explicit(kinds: &[ExecutionProvider]) -> Self {
        Self {
            providers: kinds.iter().map(|&k| ProviderConfig::new(k)).collect(),
            intra_threads: 0,
        }
    }
}

/// One execution provider and its options.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// cpu, cuda, tensorrt, coreml, directml, openvino, rocm.
    pub kind: ExecutionProvider,
    /// GPU index (CUDA, TensorRT, ROCm, DirectML).
    #[serde(default)]
    pub device_id: Option<i32>,
    /// CUDA: memory limit of the arena in bytes.
    #[serde(default)]
    pub memory_limit: Option<u64>,
    /// TensorRT: folder where built engines are cached between runs.
    #[serde(default)]
    pub engine_cache: Option<PathBuf>,
    /// TensorRT: allow FP16 kernels.
    #[serde(default)]
    pub fp16: bool,
    /// CUDA: how cuDNN picks each convolution's algorithm (exhaustive: the
    /// fastest, measured on the first run; heuristic; default).
    #[serde(default)]
    pub conv_search: Option<ConvSearch>,
    /// CUDA and TensorRT: capture each session's kernel launches in a CUDA
    /// graph at load and replay it on every run (less CPU time per run),
    /// with inputs and outputs bound in GPU memory. Only for models run at
    /// one fixed shape, which `models` must list: inswapper_128,
    /// inswapper_128_fp16, gfpgan_1.4, gpen_bfr_256, gpen_bfr_512.
    #[serde(default)]
    pub cuda_graph: bool,
    /// Several GPUs of one host (CUDA, TensorRT, ROCm, DirectML): each model
    /// gets a session on each, and runs go to a free one (frames in flight
    /// on every GPU). Instead of `device_id`.
    #[serde(default)]
    pub devices: Vec<i32>,
    /// Only for these models (manifest ids, e.g. `inswapper_128`); empty:
    /// every model. A model no listed provider is for runs on the CPU.
    #[serde(default)]
    pub models: Vec<String>,
}

/// How cuDNN picks convolution algorithms (CUDA's `cudnn_conv_algo_search`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConvSearch {
    /// Every algorithm timed on the first run; the fastest kept.
    Exhaustive,
    /// cuDNN's own ranking, no timing.
    Heuristic,
    /// The implicit-GEMM algorithm (least memory).
    Default,
}

impl ProviderConfig {
    /// Whether this provider is for model `name`.
    pub fn applies_to(&self, name: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|m| m == name)
    }

    /// Whether the provider runs on a GPU (and so takes device indices).
    pub fn is_gpu(&self) -> bool {
        matches!(
            self.kind,
            ExecutionProvider::Cuda
                | ExecutionProvider::TensorRt
                | ExecutionProvider::Rocm
                | ExecutionProvider::DirectMl
        )
    }
}

impl ProviderConfig {
    /// `kind` with default options.
    pub fn new(kind: ExecutionProvider) -> Self {
        Self {
            kind,
            device_id: None,
            memory_limit: None,
            engine_cache: None,
            fp16: false,
            conv_search: None,
            cuda_graph: false,
            devices: Vec::new(),
            models: Vec::new(),
        }
    }
}

/// A provider given by name only, or with options.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneProvider {
    Name(ExecutionProvider),
    Config(ProviderConfig),
}

fn providers_from<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<ProviderConfig>, D::Error> {
    Ok(Vec::<OneProvider>::deserialize(d)?
        .into_iter()
        .map(|p| match p {
            OneProvider::Name(k) => ProviderConfig::new(k),
            OneProvider::Config(c) => c,
        })
        .collect())
}

/// Sessions created by this process (tests check that a reconfigured
/// engine creates none).
static SESSIONS_CREATED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many ONNX Runtime sessions this process has created.
pub fn sessions_created() -> u64 {
    SESSIONS_CREATED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The process's ONNX Runtime: the loaded library plus provider settings.
/// Cheap to clone; sessions made from it are shared by worker threads.
#[derive(Clone)]
pub struct Runtime {
    library: &'static RuntimeLibrary,
    env: &'static ort::environment::Environment,
    options: RuntimeSettings,
    /// Tests: models loaded with fixed inputs get CUDA graph sessions whose
    /// "device" memory is the host's ([`graph::DeviceMemory::Host`]).
    #[cfg(test)]
    host_graphs: bool,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("library", self.library)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A float32 tensor: shape and values (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorF32 {
    /// Shape.
    pub shape: Vec<usize>,
    /// Values.
    pub data: Vec<f32>,
}

/// A loaded model: one ONNX Runtime session, shareable across threads.
pub struct Model {
    name: String,
    /// One session, or several for runs at once (a free one is taken).
    sessions: Vec<Arc<Mutex<Slot>>>,
    /// For each session, its CUDA graph's thread where it has one: every
    /// run of that session goes there.
    graphs: Vec<Option<graph::GraphRunner>>,
    /// The session a run waits for when all are busy (round robin).
    next: std::sync::atomic::AtomicUsize,
    providers: Vec<ExecutionProvider>,
    /// The NVIDIA GPU the first session runs on ([`nvidia_device`]).
    nvidia: Option<i32>,
    inputs: Vec<String>,
    input_shapes: Vec<Vec<i64>>,
    input_f64: Vec<bool>,
    outputs: Vec<String>,
}

/// One session of a model, with what [`Model::run_in_place`] keeps for it.
struct Slot {
    session: Session,
    /// The GPU whose pinned host memory holds the in-place buffers, where
    /// the session runs on CUDA or TensorRT.
    pinned: Option<i32>,
    in_place: Option<InPlace>,
}

/// The CUDA or TensorRT provider that attached first (as `wanted`
/// configures it): the one that runs the session on an NVIDIA GPU.
fn nvidia_provider<'a>(
    attached: &[ExecutionProvider],
    wanted: &'a [ProviderConfig],
) -> Option<&'a ProviderConfig> {
    let gpu = attached.iter().find(|p| p.is_nvidia())?;
    wanted.iter().find(|c| c.kind == *gpu)
}

/// The NVIDIA GPU a session runs on ([`nvidia_provider`]'s device, 0 when
/// not given). Its pinned (page-locked) host memory holds the session's
/// in-place buffers, and NVDEC decodes there for jobs of the model.
fn nvidia_device(attached: &[ExecutionProvider], wanted: &[ProviderConfig]) -> Option<i32> {
    nvidia_provider(attached, wanted).map(|c| c.device_id.unwrap_or(0))
}

/// Input tensors ONNX Runtime reads in place, and run options holding
/// output tensors it writes in place, for one set of input shapes.
struct InPlace {
    shapes: Vec<Vec<usize>>,
    inputs: Vec<ort::value::Tensor<f32>>,
    /// What the caller last wrote into each input (see [`Model::run_in_place`]).
    stamps: Vec<u128>,
    /// The pinned allocator the inputs came from (outputs come from it too).
    pinned: Option<ort::memory::Allocator>,
    /// The preallocated outputs, after the first run.
    options: Option<ort::session::RunOptions<ort::session::HasSelectedOutputs>>,
}

impl Drop for InPlace {
    fn drop(&mut self) {
        // Pinned memory is released while no CUDA graph is being captured.
        if self.pinned.is_some() {
            let _run = graph::run_guard();
            self.options = None;
            self.inputs.clear();
            self.pinned = None;
        }
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // The graphs' threads release their own memory; the rest is
        // released while no CUDA graph is being captured.
        self.graphs.clear();
        for slot in &self.sessions {
            let place = slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .in_place
                .take();
            drop(place);
        }
        let _run = graph::run_guard();
        self.sessions.clear();
    }
}

/// ONNX Runtime's pinned host memory allocator of GPU `device` for `session`.
fn pinned_allocator(session: &Session, device: i32) -> Result<ort::memory::Allocator> {
    use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
    MemoryInfo::new(
        AllocationDevice::CUDA_PINNED,
        device,
        AllocatorType::Device,
        MemoryType::CPUInput,
    )
    .and_then(|info| Allocator::new(session, info))
    .map_err(Error::ort(format!("pinned memory of GPU {device}")))
}

/// The outputs of one [`Model::run_in_place`], where ONNX Runtime wrote them.
pub struct Outputs<'a, 'r> {
    model: &'a str,
    names: &'a [String],
    values: Values<'a, 'r>,
}

/// Where a run's outputs are.
enum Values<'a, 'r> {
    /// In ONNX Runtime's tensors.
    Session(&'a ort::session::SessionOutputs<'r>),
    /// Copied out of a CUDA graph's device tensors (graph order).
    Host(&'a [(Vec<i64>, Vec<f32>)]),
}

impl Outputs<'_, '_> {
    /// How many outputs there are.
    pub fn len(&self) -> usize {
        match self.values {
            Values::Session(v) => v.len(),
            Values::Host(v) => v.len(),
        }
    }

    /// Whether the model has no outputs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Output `i` (graph order): its shape and its float32 values.
    pub fn get(&self, i: usize) -> Result<(&[i64], &[f32])> {
        let missing = || Error::ModelSignature {
            model: self.model.into(),
            reason: format!("no output {i}"),
        };
        match self.values {
            Values::Session(values) => {
                let v = self
                    .names
                    .get(i)
                    .and_then(|n| values.get(n))
                    .ok_or_else(missing)?;
                let (shape, data) = v
                    .try_extract_tensor::<f32>()
                    .map_err(Error::ort(format!("reading outputs of {}", self.model)))?;
                Ok((shape, data))
            }
            Values::Host(values) => values
                .get(i)
                .map(|(s, d)| (s.as_slice(), d.as_slice()))
                .ok_or_else(missing),
        }
    }
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.name)
            .field("providers", &self.providers)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Loads ONNX Runtime (once per process) and applies `options`.
    pub fn new(options: RuntimeSettings) -> Result<Self> {
        let (library, env) = load_once()?;
        Ok(Self {
            library,
            env,
            options,
            #[cfg(test)]
            host_graphs: false,
        })
    }

    /// The loaded library.
    pub fn library(&self) -> &RuntimeLibrary {
        self.library
    }

    /// This runtime with other provider settings (the same library).
    pub fn with_options(&self, options: RuntimeSettings) -> Self {
        Self {
            options,
            ..self.clone()
        }
    }

    /// The options in force.
    pub fn options(&self) -> &RuntimeSettings {
        &self.options
    }

    /// The providers compiled into the loaded library.
    pub fn compiled_providers(&self) -> Vec<ExecutionProvider> {
        ExecutionProvider::ALL
            .into_iter()
            .filter(|p| p.compiled_in())
            .collect()
    }

    /// Whether `provider` actually attaches to a session on this machine
    /// (compiled in *and* its own libraries and device load). `Err` holds
    /// ONNX Runtime's explanation.
    pub fn probe_provider(&self, provider: ExecutionProvider) -> std::result::Result<(), String> {
        let probe = crate::onnx::ModelBuilder::new("probe", 13)
            .input("x", &crate::onnx::fixed(&[1, 4]))
            .node("Relu", &["x"], &["y"], &[])
            .output("y", &crate::onnx::fixed(&[1, 4]))
            .build();
        let _run = graph::run_guard();
        let mut builder = Session::builder(self.env).map_err(|e| e.to_string())?;
        if provider != ExecutionProvider::Cpu {
            provider
                .dispatch()
                .error_on_failure()
                .register(&mut builder)
                .map_err(|e| e.to_string())?;
        }
        let mut session = builder
            .commit_from_memory(&probe)
            .map_err(|e| e.to_string())?;
        let x = [1.0f32, -1.0, 2.0, -2.0];
        let t = TensorRef::from_array_view(([1usize, 4], &x[..])).map_err(|e| e.to_string())?;
        let out = session.run(ort::inputs![t]).map_err(|e| e.to_string())?;
        let (_, y) = out[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| e.to_string())?;
        if y == [1.0, 0.0, 2.0, 0.0] {
            Ok(())
        } else {
            Err(format!("wrong result {y:?}"))
        }
    }

    /// Creates a session for `name` from model bytes. Reports which
    /// providers attached; an explicitly requested one that fails is an error.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<Arc<Model>> {
        self.load_sessions(name, bytes, 1)
    }

    /// [`Runtime::load`] with `sessions` sessions of the model (at least
    /// one): up to that many runs go at once, each on a session no other
    /// run holds (a model one pipeline calls from several threads, such as
    /// the safety gate's checks beside the frame workers' own).
    pub fn load_sessions(&self, name: &str, bytes: &[u8], sessions: usize) -> Result<Arc<Model>> {
        self.load_with(name, bytes, sessions, &[], false)
    }

    /// [`Runtime::load`] with the inputs named in `fixed` fixed to the
    /// shapes given (the engine feeds them no other): their named symbolic
    /// sizes are overridden in the session, so ONNX Runtime plans for one
    /// shape and TensorRT builds one engine (a size without a name cannot
    /// be overridden and stays open). An input whose fixed sizes differ
    /// from the shape, or of another rank, is a signature error.
    pub fn load_fixed(
        &self,
        name: &str,
        bytes: &[u8],
        fixed: &[(&str, &[usize])],
    ) -> Result<Arc<Model>> {
        let overrides = dimension_overrides(name, bytes, fixed)?;
        self.load_with(name, bytes, 1, &overrides, true)
    }

    /// This runtime with the CUDA graph path on the CPU for models loaded
    /// with fixed inputs (see [`graph`]).
    #[cfg(test)]
    pub(crate) fn with_host_graphs(&self) -> Self {
        Self {
            host_graphs: true,
            ..self.clone()
        }
    }

    fn load_with(
        &self,
        name: &str,
        bytes: &[u8],
        sessions: usize,
        overrides: &[(String, i64)],
        fixed: bool,
    ) -> Result<Arc<Model>> {
        // The sessions are made side by side: most of a session's making is
        // one thread optimising the graph (~60 ms for the gate's NudeNet).
        let plan = self.plan(name, sessions);
        let (first, others) = std::thread::scope(|scope| {
            let others: Vec<_> = plan[1..]
                .iter()
                .map(|wanted| scope.spawn(|| self.session(name, bytes, wanted, overrides)))
                .collect();
            let first = self.session(name, bytes, &plan[0], overrides);
            let others: Vec<Result<(Session, Vec<ExecutionProvider>)>> = others
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::Internal(format!(
                            "making a session for {name} panicked"
                        )))
                    })
                })
                .collect();
            (first, others)
        });
        // Should the load fail, the sessions made (on a GPU, perhaps) are
        // released while no CUDA graph is being captured.
        let mut others = graph::Released::new(others);
        let (first, attached) = first?;
        // Each session, and the device memory of its CUDA graph if it has one.
        let slot = |(session, attached): (Session, Vec<ExecutionProvider>),
                    wanted: &[ProviderConfig]| {
            let memory = graph::graph_memory(&attached, wanted);
            #[cfg(test)]
            let memory =
                memory.or((self.host_graphs && fixed).then_some(graph::DeviceMemory::Host));
            let slot = Arc::new(Mutex::new(Slot {
                session,
                pinned: nvidia_device(&attached, wanted),
                in_place: None,
            }));
            (slot, memory)
        };
        let _ = fixed;
        let nvidia = nvidia_device(&attached, &plan[0]);
        let mut pool = graph::Released::new(vec![slot((first, attached.clone()), &plan[0])]);
        for (k, wanted) in plan[1..].iter().enumerate() {
            let other = std::mem::replace(&mut others[k], Err(Error::Cancelled));
            pool.push(slot(other?, wanted));
        }
        let guard = pool[0]
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let session = &guard.session;
        let inputs: Vec<String> = session
            .inputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        let input_shapes = session
            .inputs()
            .iter()
            .map(|o| {
                o.dtype()
                    .tensor_shape()
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default()
            })
            .collect();
        let input_f64 = session
            .inputs()
            .iter()
            .map(|o| o.dtype().tensor_type() == Some(ort::value::TensorElementType::Float64))
            .collect();
        let outputs: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        let graph_model = if pool.iter().any(|(_, m)| m.is_some()) {
            Some(graph::GraphModel::of(name, session, self.env)?)
        } else {
            None
        };
        drop(guard);
        let graphs = pool
            .iter()
            .map(|(slot, memory)| match (memory, &graph_model) {
                (Some(m), Some(model)) => {
                    graph::GraphRunner::start(model.clone(), Arc::clone(slot), *m).map(Some)
                }
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>>>()?;
        let graph_sessions = graphs.iter().flatten().count();
        tracing::info!(model = name, providers = ?attached, sessions = plan.len(), graph_sessions, "model loaded");
        Ok(Arc::new(Model {
            name: name.into(),
            sessions: pool
                .into_inner()
                .into_iter()
                .map(|(slot, _)| slot)
                .collect(),
            graphs,
            next: std::sync::atomic::AtomicUsize::new(0),
            providers: attached,
            nvidia,
            inputs,
            input_shapes,
            input_f64,
            outputs,
        }))
    }

    /// The providers of each session of model `name` (at least `sessions`):
    /// the settings' plan ([`RuntimeSettings::session_plan`]), or without
    /// providers listed every compiled-in one but TensorRT.
    fn plan(&self, name: &str, sessions: usize) -> Vec<Vec<ProviderConfig>> {
        if self.options.providers.is_empty() {
            let auto: Vec<ProviderConfig> = self
                .compiled_providers()
                .into_iter()
                .filter(|p| *p != ExecutionProvider::TensorRt)
                .map(ProviderConfig::new)
                .collect();
            vec![auto; sessions.max(1)]
        } else {
            self.options.session_plan(name, sessions)
        }
    }

    /// One session of a model with the `wanted` providers (those listed in
    /// the settings must attach; automatic ones may not), and the providers
    /// that attached.
    fn session(
        &self,
        name: &str,
        bytes: &[u8],
        wanted: &[ProviderConfig],
        overrides: &[(String, i64)],
    ) -> Result<(Session, Vec<ExecutionProvider>)> {
        let mut builder = Session::builder(self.env)
            .map_err(Error::ort(format!("creating a session for {name}")))?;
        for (dim, size) in overrides {
            builder = builder
                .with_dimension_override(dim, *size)
                .map_err(|e| Error::ort(format!("fixing {dim} of {name}"))(e.into()))?;
        }
        let explicit = !self.options.providers.is_empty();
        let mut attached = Vec::new();
        for cfg in wanted.iter().filter(|p| p.kind != ExecutionProvider::Cpu) {
            let p = cfg.kind;
            match cfg.dispatch().error_on_failure().register(&mut builder) {
                Ok(()) => attached.push(p),
                Err(e) if explicit => {
                    return Err(Error::ProviderUnavailable {
                        provider: p.to_string(),
                        model: name.into(),
                        reason: e.to_string(),
                    });
                }
                Err(e) => {
                    tracing::warn!(model = name, provider = %p, "execution provider did not attach: {e}");
                }
            }
        }
        attached.push(ExecutionProvider::Cpu);
        if self.options.intra_threads > 0 {
            builder = builder.with_intra_threads(self.options.intra_threads)?;
        }
        // Idle intra-op threads sleep instead of spinning: a session's pool
        // spins for its next operator by default, which on a machine with
        // few cores takes them from the other sessions (the gate's, the
        // detector's) and from our own frame work. Measured side by side on
        // two cores: an image swap 0.41 → 0.30 s wall, 0.74 → 0.44 s CPU
        // (docs/performance.md).
        builder = builder.with_intra_op_spinning(false)?;
        let run = graph::run_guard();
        let session = builder
            .commit_from_memory(bytes)
            .map_err(Error::ort(format!("loading model {name}")))?;
        drop(run);
        SESSIONS_CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok((session, attached))
    }
}

/// The symbolic sizes of the inputs named in `fixed` and their values.
fn dimension_overrides(
    model: &str,
    bytes: &[u8],
    fixed: &[(&str, &[usize])],
) -> Result<Vec<(String, i64)>> {
    let parsed = crate::onnx::OnnxModel::parse(bytes)?;
    let inputs = parsed.inputs()?;
    let sig = |reason: String| Error::ModelSignature {
        model: model.into(),
        reason,
    };
    let mut out: Vec<(String, i64)> = Vec::new();
    for &(name, shape) in fixed {
        let input = inputs
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| sig(format!("no input named {name}")))?;
        if input.dims.len() != shape.len() {
            return Err(sig(format!(
                "input {name} has {} dimensions, expected {shape:?}",
                input.dims.len()
            )));
        }
        for (dim, &want) in input.dims.iter().zip(shape) {
            let want = i64::try_from(want).map_err(|_| sig(format!("{want} is too large")))?;
            match dim {
                crate::onnx::Dim::Fixed(v) if *v != want => {
                    return Err(sig(format!(
                        "input {name} is {:?}, expected {shape:?}",
                        input.dims
                    )));
                }
                crate::onnx::Dim::Symbolic(sym) => match out.iter().find(|(s, _)| s == sym) {
                    Some((_, v)) if *v != want => {
                        return Err(sig(format!("size {sym} would be both {v} and {want}")));
                    }
                    Some(_) => {}
                    None => out.push((sym.clone(), want)),
                },
                _ => {}
            }
        }
    }
    Ok(out)
}

impl Model {
    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Providers that attached, in priority order (CPU last, always there).
    pub fn providers(&self) -> &[ExecutionProvider] {
        &self.providers
    }

    /// Input names in graph order.
    pub fn input_names(&self) -> &[String] {
        &self.inputs
    }

    /// The NVIDIA GPU the model runs on, where CUDA or TensorRT attached.
    pub fn nvidia_device(&self) -> Option<i32> {
        self.nvidia
    }

    /// Input shapes in graph order, as the session sees them (-1: a size
    /// not fixed).
    pub fn input_shapes(&self) -> &[Vec<i64>] {
        &self.input_shapes
    }

    /// Whether input `i` is a double tensor (else float32 is assumed).
    pub fn input_is_f64(&self, i: usize) -> bool {
        self.input_f64.get(i).copied().unwrap_or(false)
    }

    /// Output names in graph order.
    pub fn output_names(&self) -> &[String] {
        &self.outputs
    }

    /// Runs the model on float32 inputs given in graph-input order; returns
    /// every output in graph order.
    pub fn run(&self, inputs: &[(&[usize], &[f32])]) -> Result<Vec<TensorF32>> {
        let typed: Vec<Input<'_>> = inputs.iter().map(|&(s, d)| Input::F32(s, d)).collect();
        self.run_typed(&typed)
    }

    /// Runs the model on inputs of their declared element types (CodeFormer's
    /// fidelity `weight` is a double), in graph-input order.
    pub fn run_typed(&self, inputs: &[Input<'_>]) -> Result<Vec<TensorF32>> {
        let mut out = Vec::new();
        self.run_into(inputs, &mut out)?;
        Ok(out)
    }

    /// Runs the model, writing every output (graph order) into `outputs`,
    /// whose buffers are reused: a caller that keeps `outputs` between frames
    /// allocates nothing for them after the first. Every inference goes
    /// through here (the one place for IO binding on GPU providers).
    pub fn run_into(&self, inputs: &[Input<'_>], outputs: &mut Vec<TensorF32>) -> Result<()> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::ModelSignature {
                model: self.name.clone(),
                reason: format!("expects {} inputs, got {}", self.inputs.len(), inputs.len()),
            });
        }
        let i = self.free_index();
        if let Some(g) = &self.graphs[i] {
            return self.run_into_graph(g, inputs, outputs);
        }
        let mut values: Vec<(&str, ort::session::SessionInputValue<'_>)> =
            Vec::with_capacity(inputs.len());
        for (name, input) in self.inputs.iter().zip(inputs) {
            let what = || format!("preparing input {name} of {}", self.name);
            let v: ort::session::SessionInputValue<'_> = match *input {
                Input::F32(shape, data) => TensorRef::from_array_view((shape.to_vec(), data))
                    .map_err(Error::ort(what()))?
                    .into(),
                Input::F64(shape, data) => TensorRef::from_array_view((shape.to_vec(), data))
                    .map_err(Error::ort(what()))?
                    .into(),
            };
            values.push((name.as_str(), v));
        }
        let mut slot = self.lock(i);
        let run = graph::run_guard();
        let result = slot
            .session
            .run(values)
            .map_err(Error::ort(format!("running {}", self.name)))?;
        drop(run);
        outputs.resize_with(result.len(), || TensorF32 {
            shape: Vec::new(),
            data: Vec::new(),
        });
        for (slot, (_, v)) in outputs.iter_mut().zip(result.iter()) {
            let (shape, data) = v
                .try_extract_tensor::<f32>()
                .map_err(Error::ort(format!("reading outputs of {}", self.name)))?;
            slot.shape.clear();
            slot.shape.extend(shape.iter().map(|&d| d.max(0) as usize));
            slot.data.clear();
            slot.data.extend_from_slice(data);
        }
        Ok(())
    }

    /// [`Model::run_into`] on a session with a CUDA graph: float32 inputs
    /// at its fixed shapes, copied in.
    fn run_into_graph(
        &self,
        g: &graph::GraphRunner,
        inputs: &[Input<'_>],
        outputs: &mut Vec<TensorF32>,
    ) -> Result<()> {
        let mut shapes: Vec<&[usize]> = Vec::with_capacity(inputs.len());
        for (input, fixed) in inputs.iter().zip(g.shapes()) {
            match *input {
                Input::F32(shape, data) if data.len() == fixed.iter().product::<usize>() => {
                    shapes.push(shape);
                }
                _ => {
                    return Err(Error::ModelSignature {
                        model: self.name.clone(),
                        reason: format!(
                            "runs with a CUDA graph on float32 inputs of shapes {:?}",
                            g.shapes()
                        ),
                    });
                }
            }
        }
        let fill = |k: usize, buf: &mut [f32], _: &mut u128| {
            if let Input::F32(_, data) = inputs[k] {
                buf.copy_from_slice(data);
            }
            Ok(())
        };
        let read = |outs: &Outputs<'_, '_>| {
            outputs.resize_with(outs.len(), || TensorF32 {
                shape: Vec::new(),
                data: Vec::new(),
            });
            for (k, out) in outputs.iter_mut().enumerate() {
                let (shape, data) = outs.get(k)?;
                out.shape.clear();
                out.shape.extend(shape.iter().map(|&d| d.max(0) as usize));
                out.data.clear();
                out.data.extend_from_slice(data);
            }
            Ok(())
        };
        g.run(&self.name, &self.outputs, &shapes, fill, read)
    }

    /// A session no run holds, else the next one in turn (round robin).
    fn free_index(&self) -> usize {
        if self.graphs.iter().any(Option::is_some) {
            // The CUDA graph session with the fewest runs sent to it (its
            // lock is held only while one is under way, not while queued).
            return self
                .sessions
                .iter()
                .zip(&self.graphs)
                .enumerate()
                .min_by_key(|(_, (m, g))| match g {
                    Some(g) => g.in_flight(),
                    None => usize::from(m.try_lock().is_err()),
                })
                .map_or(0, |(i, _)| i);
        }
        self.sessions
            .iter()
            .position(|m| m.try_lock().is_ok())
            .unwrap_or_else(|| {
                self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.sessions.len()
            })
    }

    /// Session `i`, waited for.
    fn lock(&self, i: usize) -> std::sync::MutexGuard<'_, Slot> {
        self.sessions[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many sessions the model has.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// How many of its sessions run with a CUDA graph.
    pub fn graph_sessions(&self) -> usize {
        self.graphs.iter().flatten().count()
    }

    /// Runs the model on float32 inputs of `shapes` (graph order) that
    /// `fill` writes straight into the buffers ONNX Runtime reads, and hands
    /// `read` the outputs where ONNX Runtime wrote them: nothing is copied,
    /// and after the first run at these shapes on a session nothing is
    /// allocated for inputs or outputs (the first run also learns the
    /// output shapes). `fill(i, buffer, stamp)` is called once per input;
    /// `stamp` is the caller's own note of what that buffer already holds
    /// (0 for a new buffer), kept with the buffer, so that what does not
    /// change from run to run (a letterbox's padding) is written once per
    /// buffer. For models whose inputs are all float32.
    ///
    /// `fill` runs with no session held, so it may run parallel work (a
    /// rayon thread waiting for it may take up another run of this model);
    /// `read` runs with the session held and must not.
    pub fn run_in_place<R>(
        &self,
        shapes: &[&[usize]],
        fill: impl FnMut(usize, &mut [f32], &mut u128) -> Result<()>,
        read: impl FnOnce(&Outputs<'_, '_>) -> Result<R>,
    ) -> Result<R> {
        self.run_in_place_on(self.free_index(), shapes, fill, read)
    }

    /// [`Model::run_in_place`] on session `i` (each session in turn: a
    /// check of every GPU's output).
    pub fn run_in_place_on<R>(
        &self,
        i: usize,
        shapes: &[&[usize]],
        mut fill: impl FnMut(usize, &mut [f32], &mut u128) -> Result<()>,
        read: impl FnOnce(&Outputs<'_, '_>) -> Result<R>,
    ) -> Result<R> {
        if shapes.len() != self.inputs.len() || self.input_f64.iter().any(|&d| d) {
            return Err(Error::ModelSignature {
                model: self.name.clone(),
                reason: format!(
                    "expects {} float32 inputs, got {} shapes",
                    self.inputs.len(),
                    shapes.len()
                ),
            });
        }
        if i >= self.sessions.len() {
            return Err(Error::Internal(format!("{}: no session {i}", self.name)));
        }
        if let Some(g) = &self.graphs[i] {
            return g.run(&self.name, &self.outputs, shapes, fill, read);
        }
        // The session's buffers for these shapes, taken out of it (or new).
        let mut place = {
            let mut slot = self.lock(i);
            match slot.in_place.take() {
                Some(p)
                    if p.shapes
                        .iter()
                        .map(Vec::as_slice)
                        .eq(shapes.iter().copied()) =>
                {
                    p
                }
                _ => self.buffers(&mut slot, shapes)?,
            }
        };
        // Filled with no session held.
        for (k, (t, stamp)) in place.inputs.iter_mut().zip(&mut place.stamps).enumerate() {
            fill(k, t.extract_tensor_mut().1, stamp)?;
        }
        let mut slot = self.lock(i);
        let slot = &mut *slot;
        if place.options.is_none() {
            match self.first_run(slot, &place) {
                Ok(options) => place.options = Some(options),
                Err(e) if place.pinned.is_some() => {
                    // Pinned buffers the GPU's provider would not take: the
                    // same values in default memory, from now on.
                    tracing::warn!(model = %self.name, "pinned buffers refused, using the default: {e}");
                    slot.pinned = None;
                    let mut plain = self.buffers(slot, shapes)?;
                    for (to, from) in plain.inputs.iter_mut().zip(&place.inputs) {
                        to.extract_tensor_mut()
                            .1
                            .copy_from_slice(from.extract_tensor().1);
                    }
                    plain.stamps.clone_from(&place.stamps);
                    place = plain;
                    place.options = Some(self.first_run(slot, &place)?);
                }
                Err(e) => return Err(e),
            }
        }
        let Some(options) = place.options.as_ref() else {
            return Err(Error::Internal(format!("{}: no run options", self.name)));
        };
        let inputs: Vec<ort::session::SessionInputValue<'_>> =
            place.inputs.iter().map(Into::into).collect();
        // A failed run drops the buffers: the next one makes them again.
        let run = graph::run_guard();
        let values = slot
            .session
            .run_with_options(inputs.as_slice(), options)
            .map_err(Error::ort(format!("running {}", self.name)))?;
        drop(run);
        let done = read(&Outputs {
            model: &self.name,
            names: &self.outputs,
            values: Values::Session(&values),
        });
        drop(values);
        drop(inputs);
        if done.is_ok() {
            slot.in_place = Some(place);
        }
        done
    }

    /// New input tensors of `shapes`: in pinned host memory where the
    /// session runs on a GPU (`slot.pinned`), else from ONNX Runtime's
    /// default CPU allocator; `pinned` is cleared when pinned memory cannot
    /// be had (the default then serves).
    fn buffers(&self, slot: &mut Slot, shapes: &[&[usize]]) -> Result<InPlace> {
        let _run = graph::run_guard();
        let make = |allocator: &ort::memory::Allocator| -> Result<Vec<ort::value::Tensor<f32>>> {
            shapes
                .iter()
                .enumerate()
                .map(|(k, shape)| {
                    ort::value::Tensor::<f32>::new(allocator, shape.to_vec())
                        .map_err(Error::ort(format!("making input {k} of {}", self.name)))
                })
                .collect()
        };
        let pinned = slot.pinned.and_then(|device| match pinned_allocator(&slot.session, device)
            .and_then(|a| Ok((make(&a)?, a)))
        {
            Ok(made) => Some(made),
            Err(e) => {
                tracing::warn!(model = %self.name, "no pinned host memory, using the default: {e}");
                slot.pinned = None;
                None
            }
        });
        let (inputs, allocator) = match pinned {
            Some((inputs, a)) => (inputs, Some(a)),
            None => (make(&ort::memory::Allocator::default())?, None),
        };
        Ok(InPlace {
            shapes: shapes.iter().map(|s| s.to_vec()).collect(),
            stamps: vec![0; inputs.len()],
            inputs,
            pinned: allocator,
            options: None,
        })
    }

    /// One plain run on `place`'s inputs, whose outputs (or, in pinned
    /// memory, outputs of the same shapes) become the preallocated outputs
    /// of the runs that follow.
    fn first_run(
        &self,
        slot: &mut Slot,
        place: &InPlace,
    ) -> Result<ort::session::RunOptions<ort::session::HasSelectedOutputs>> {
        // Also over the pinned outputs' allocation (and release, on an error).
        let _run = graph::run_guard();
        let mut selector = ort::session::OutputSelector::default();
        let views: Vec<ort::session::SessionInputValue<'_>> =
            place.inputs.iter().map(Into::into).collect();
        let mut first = slot
            .session
            .run(views.as_slice())
            .map_err(Error::ort(format!("running {}", self.name)))?;
        for name in &self.outputs {
            let v = first.remove(name).ok_or_else(|| Error::ModelSignature {
                model: self.name.clone(),
                reason: format!("no output {name}"),
            })?;
            if let Some(allocator) = &place.pinned {
                // Outputs in the same pinned memory, of the shapes ONNX
                // Runtime just gave.
                let shape: Vec<i64> = v
                    .try_extract_tensor::<f32>()
                    .map_err(Error::ort(format!("reading outputs of {}", self.name)))?
                    .0
                    .iter()
                    .copied()
                    .collect();
                let t = ort::value::Tensor::<f32>::new(allocator, shape)
                    .map_err(Error::ort(format!("making output {name} of {}", self.name)))?;
                selector = selector.preallocate(name.clone(), t);
            } else {
                selector = selector.preallocate(name.clone(), v);
            }
        }
        Ok(ort::session::RunOptions::new()
            .map_err(Error::ort(format!("run options for {}", self.name)))?
            .with_outputs(selector))
    }
}

/// One model input: shape and row-major values of its element type.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// float32.
    F32(&'a [usize], &'a [f32]),
    /// float64 (double).
    F64(&'a [usize], &'a [f64]),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-node model: `y = relu(x)` on a `[1, n]` row.
    fn relu_model(n: i64) -> Vec<u8> {
        crate::onnx::ModelBuilder::new("relu", 13)
            .input("x", &crate::onnx::fixed(&[1, n]))
            .node("Relu", &["x"], &["y"], &[])
            .output("y", &crate::onnx::fixed(&[1, n]))
            .build()
    }

    #[test]
    fn a_model_with_several_sessions_runs_on_a_free_one() {
        let rt = Runtime::new(RuntimeSettings::auto(1)).unwrap();
        let bytes = relu_model(2);
        let before = sessions_created();
        let m = rt.load_sessions("relu", &bytes, 2).unwrap();
        assert_eq!(sessions_created(), before + 2);
        assert_eq!(m.input_names(), ["x"]);
        // With one session held (a run under way elsewhere), a run takes
        // the other instead of waiting.
        let held = m.sessions[0].lock().unwrap();
        let out = m.run(&[(&[1, 2], &[-1.0, 2.0])]).unwrap();
        assert_eq!(out[0].data, [0.0, 2.0]);
        drop(held);
        let held = m.sessions[1].lock().unwrap();
        assert_eq!(
            m.run(&[(&[1, 2], &[3.0, -4.0])]).unwrap()[0].data,
            [3.0, 0.0]
        );
        drop(held);
    }

    #[test]
    fn run_into_reuses_the_output_buffers() {
        let rt = Runtime::new(RuntimeSettings::auto(1)).unwrap();
        let bytes = relu_model(4);
        let before = sessions_created();
        let m = rt.load("relu", &bytes).unwrap();
        assert_eq!(sessions_created(), before + 1);
        let mut out = Vec::new();
        m.run_into(&[Input::F32(&[1, 4], &[1.0, -1.0, 2.0, -2.0])], &mut out)
            .unwrap();
        assert_eq!(out[0].data, [1.0, 0.0, 2.0, 0.0]);
        let ptr = out[0].data.as_ptr();
        m.run_into(&[Input::F32(&[1, 4], &[-3.0, 3.0, 0.5, 0.0])], &mut out)
            .unwrap();
        assert_eq!(out[0].data, [0.0, 3.0, 0.5, 0.0]);
        assert_eq!(out[0].data.as_ptr(), ptr, "the output buffer was reused");
        assert_eq!(out[0].shape, [1, 4]);
        assert!(m.run_into(&[], &mut out).is_err());
    }

    #[test]
    fn run_in_place_reads_and_writes_the_bound_buffers() {
        let rt = Runtime::new(RuntimeSettings::auto(1)).unwrap();
        let m = rt.load_sessions("relu", &relu_model(4), 2).unwrap();
        let run = |x: &[f32], seen: &mut Vec<u128>| {
            m.run_in_place(
                &[&[1, 4]],
                |i, buf, stamp| {
                    assert_eq!(i, 0);
                    seen.push(*stamp);
                    buf.copy_from_slice(x);
                    *stamp = 7;
                    Ok(())
                },
                |outs| {
                    assert_eq!(outs.len(), 1);
                    let (shape, y) = outs.get(0)?;
                    assert_eq!(shape, [1, 4]);
                    assert!(outs.get(1).is_err());
                    Ok((y.to_vec(), y.as_ptr() as usize))
                },
            )
        };
        let mut seen = Vec::new();
        let (y, p1) = run(&[1.0, -1.0, 2.0, -2.0], &mut seen).unwrap();
        assert_eq!(y, [1.0, 0.0, 2.0, 0.0]);
        let (y, p2) = run(&[-3.0, 3.0, 0.5, 0.0], &mut seen).unwrap();
        assert_eq!(y, [0.0, 3.0, 0.5, 0.0]);
        assert_eq!(p1, p2, "the output was written where it was the first time");
        // A new buffer starts with stamp 0; the caller's stamp stays with it.
        assert_eq!(seen, [0, 7]);
        // With the first session busy, the second binds its own buffers.
        let held = m.sessions[0].lock().unwrap();
        seen.clear();
        let (y, _) = run(&[5.0, -5.0, 0.0, 1.0], &mut seen).unwrap();
        assert_eq!(y, [5.0, 0.0, 0.0, 1.0]);
        assert_eq!(seen, [0]);
        drop(held);
        // Another shape, the wrong number of inputs, an error from `fill`.
        let bad = m.run_in_place(&[&[1, 5]], |_, _, _| Ok(()), |_| Ok(()));
        assert!(bad.is_err(), "a [1, 4] model given a [1, 5] input");
        assert!(m.run_in_place(&[], |_, _, _| Ok(()), |_| Ok(())).is_err());
        let failed = m.run_in_place(
            &[&[1, 4]],
            |_, _, _| Err(Error::Internal("no data".into())),
            |_| Ok(()),
        );
        assert!(failed.is_err());
        let (y, _) = run(&[1.0, 1.0, -1.0, 1.0], &mut seen).unwrap();
        assert_eq!(y, [1.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn a_provider_for_some_models_is_asked_for_those_only() {
        let mut cuda = ProviderConfig::new(ExecutionProvider::Cuda);
        cuda.models = vec!["inswapper_128".into()];
        let rt = Runtime::new(RuntimeSettings {
            providers: vec![cuda],
            intra_threads: 1,
        })
        .unwrap();
        // Another model runs on the CPU without asking for CUDA.
        let m = rt.load("relu", &relu_model(2)).unwrap();
        assert_eq!(m.providers(), [ExecutionProvider::Cpu]);
        assert_eq!(
            m.run(&[(&[1, 2], &[-1.0, 1.0])]).unwrap()[0].data,
            [0.0, 1.0]
        );
        // The model it is for must get it (this build of ONNX Runtime has no CUDA).
        if !ExecutionProvider::Cuda.compiled_in() {
            let e = rt.load("inswapper_128", &relu_model(2)).unwrap_err();
            assert!(
                matches!(&e, Error::ProviderUnavailable { model, .. } if model == "inswapper_128"),
                "{e}"
            );
        }
    }

    #[test]
    fn fixed_inputs_have_their_symbolic_sizes_overridden() {
        use crate::onnx::Dim;
        let sym = |s: &str| Dim::Symbolic(s.into());
        let bytes = crate::onnx::ModelBuilder::new("relu", 13)
            .input("x", &[sym("batch"), sym("n")])
            .input("y", &[sym("batch"), Dim::Fixed(4)])
            .node("Add", &["x", "y"], &["s"], &[])
            .node("Relu", &["s"], &["z"], &[])
            .output("z", &[sym("batch"), sym("n")])
            .build();
        let rt = Runtime::new(RuntimeSettings::auto(1)).unwrap();
        assert_eq!(
            rt.load("plain", &bytes).unwrap().input_shapes(),
            [vec![-1, -1], vec![-1, 4]]
        );
        let m = rt
            .load_fixed("fixed", &bytes, &[("x", &[1, 4]), ("y", &[1, 4])])
            .unwrap();
        assert_eq!(m.input_shapes(), [vec![1, 4], vec![1, 4]]);
        let out = m
            .run(&[(&[1, 4], &[1.0, -2.0, 3.0, 0.0]), (&[1, 4], &[0.0; 4])])
            .unwrap();
        assert_eq!(out[0].data, [1.0, 0.0, 3.0, 0.0]);
        assert!(
            m.run(&[(&[2, 4], &[0.0; 8]), (&[2, 4], &[0.0; 8])])
                .is_err(),
            "another batch"
        );
        // Shapes the model cannot take.
        for bad in [
            &[("x", &[1usize, 4][..]), ("y", &[1, 5][..])][..],
            &[("x", &[1, 4, 1][..])][..],
            &[("x", &[1, 4][..]), ("y", &[2, 4][..])][..],
            &[("w", &[1][..])][..],
        ] {
            let e = rt.load_fixed("bad", &bytes, bad).unwrap_err();
            assert!(matches!(e, Error::ModelSignature { .. }), "{bad:?}: {e}");
        }
    }

    #[test]
    fn in_place_buffers_go_to_pinned_memory_beside_a_gpu_and_fall_back_without_it() {
        use ExecutionProvider as P;
        let mut cuda = ProviderConfig::new(P::Cuda);
        cuda.device_id = Some(1);
        assert_eq!(
            nvidia_device(&[P::Cuda, P::Cpu], std::slice::from_ref(&cuda)),
            Some(1)
        );
        assert_eq!(
            nvidia_device(&[P::TensorRt, P::Cpu], &[ProviderConfig::new(P::TensorRt)]),
            Some(0)
        );
        // Listed but not attached, or another accelerator: the default allocator.
        assert_eq!(nvidia_device(&[P::Cpu], &[cuda]), None);
        assert_eq!(nvidia_device(&[P::CoreMl, P::Cpu], &[]), None);
        // This ONNX Runtime has no CUDA: asked for pinned memory anyway, the
        // session falls back to the default allocator and still runs.
        let rt = Runtime::new(RuntimeSettings::auto(1)).unwrap();
        let m = rt.load("relu", &relu_model(4)).unwrap();
        assert_eq!(m.nvidia_device(), None, "no NVIDIA provider attached");
        m.sessions[0].lock().unwrap().pinned = Some(0);
        let y = m
            .run_in_place(
                &[&[1, 4]],
                |_, buf, _| {
                    buf.copy_from_slice(&[1.0, -1.0, 2.0, -2.0]);
                    Ok(())
                },
                |outs| Ok(outs.get(0)?.1.to_vec()),
            )
            .unwrap();
        assert_eq!(y, [1.0, 0.0, 2.0, 0.0]);
        if !P::Cuda.compiled_in() {
            assert_eq!(m.sessions[0].lock().unwrap().pinned, None, "fell back");
        }
    }

    #[test]
    fn a_fill_running_parallel_work_cannot_deadlock_other_runs_of_the_model() {
        use rayon::prelude::*;
        const N: usize = 4096;
        let rt = Runtime::new(RuntimeSettings::auto(1)).unwrap();
        // One session: every run of the model waits for the same one.
        let m = rt.load("relu", &relu_model(N as i64)).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        pool.install(|| {
            (0..1000).into_par_iter().for_each(|k| {
                // Other parallel work beside each run (a frame's other
                // steps), so that an idle thread steals pieces of a fill.
                let (_, y) = rayon::join(
                    || {
                        (0..64u64)
                            .into_par_iter()
                            .map(|i| {
                                (0..2000u64).fold(i, |a, b| a.wrapping_mul(31).wrapping_add(b))
                            })
                            .reduce(|| 0, u64::wrapping_add)
                    },
                    || {
                        m.run_in_place(
                            &[&[1, N]],
                            |_, buf, _| {
                                // Parallel work inside the fill (the letterbox's
                                // rows): a thread waiting for it takes up other
                                // work meanwhile, a run of this model included.
                                buf.par_chunks_mut(64).enumerate().for_each(|(c, chunk)| {
                                    let spin =
                                        (0..5000u64).fold(c as u64, |a, b| a.wrapping_mul(31) ^ b);
                                    for (j, v) in chunk.iter_mut().enumerate() {
                                        let j = c * 64 + j + usize::from(spin == u64::MAX);
                                        *v = (k % 5) as f32 - (j % 7) as f32;
                                    }
                                });
                                Ok(())
                            },
                            |outs| Ok(outs.get(0)?.1.to_vec()),
                        )
                        .unwrap()
                    },
                );
                let expected: Vec<f32> = (0..N)
                    .map(|j| ((k % 5) as f32 - (j % 7) as f32).max(0.0))
                    .collect();
                assert_eq!(y, expected, "run {k}");
            });
        });
    }

    /// `y = x·w + x` and `z = relu(x)` on `[1, 4]` rows.
    fn two_input_model(w: crate::onnx::Dim) -> Vec<u8> {
        crate::onnx::ModelBuilder::new("two", 13)
            .input("x", &crate::onnx::fixed(&[1, 4]))
            .input("w", &[crate::onnx::Dim::Fixed(1), w.clone()])
            .node("Mul", &["x", "w"], &["xw"], &[])
            .node("Add", &["xw", "x"], &["y"], &[])
            .node("Relu", &["x"], &["z"], &[])
            .output("y", &[crate::onnx::Dim::Fixed(1), w])
            .output("z", &crate::onnx::fixed(&[1, 4]))
            .build()
    }

    #[test]
    fn a_cuda_graph_session_copies_every_run_in_and_out_of_its_bound_buffers() {
        let rt = Runtime::new(RuntimeSettings::auto(1)).unwrap();
        let bytes = two_input_model(crate::onnx::Dim::Fixed(4));
        let plain = rt.load_fixed("two", &bytes, &[]).unwrap();
        let before = sessions_created();
        let graph = rt
            .with_host_graphs()
            .load_fixed("two", &bytes, &[])
            .unwrap();
        assert_eq!((plain.graph_sessions(), graph.graph_sessions()), (0, 1));
        // The model's session and the two copies.
        assert_eq!(sessions_created() - before, 3);
        let shape: &[usize] = &[1, 4];
        for r in 0..4u8 {
            let x: Vec<f32> = (0..4u8)
                .map(|i| f32::from(i) - 1.5 + f32::from(r))
                .collect();
            let w: Vec<f32> = (0..4u8).map(|i| f32::from(r * 4 + i) * 0.25).collect();
            let want = plain.run(&[(shape, &x), (shape, &w)]).unwrap();
            assert_eq!(graph.run(&[(shape, &x), (shape, &w)]).unwrap(), want);
            // In place: the fill writes, the read sees this run's outputs.
            let got = graph
                .run_in_place(
                    &[shape, shape],
                    |k, buf, _| {
                        buf.copy_from_slice(if k == 0 { &x } else { &w });
                        Ok(())
                    },
                    |outs| Ok((outs.len(), outs.get(0)?.1.to_vec(), outs.get(1)?.1.to_vec())),
                )
                .unwrap();
            assert_eq!(got, (2, want[0].data.clone(), want[1].data.clone()));
        }
        // The graph was captured for one shape: another is refused, as are
        // float64 values.
        let e = graph
            .run(&[(&[1, 2], &[0.0; 2]), (shape, &[0.0; 4])])
            .unwrap_err();
        assert!(e.to_string().contains("CUDA graph"), "{e}");
        let e = graph
            .run_typed(&[Input::F64(shape, &[0.0; 4]), Input::F32(shape, &[0.0; 4])])
            .unwrap_err();
        assert!(e.to_string().contains("float32"), "{e}");
        // A failed fill is counted out of the runs in flight, and the next
        // run gets its own values.
        let e = graph
            .run_in_place(
                &[shape, shape],
                |_, _, _| Err(Error::InvalidInput("no picture".into())),
                |_| Ok(()),
            )
            .unwrap_err();
        assert!(e.to_string().contains("no picture"), "{e}");
        let runner = graph.graphs[0].as_ref().unwrap();
        assert_eq!(runner.in_flight(), 0);
        let x = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(
            graph.run(&[(shape, &x), (shape, &x)]).unwrap(),
            plain.run(&[(shape, &x), (shape, &x)]).unwrap()
        );
        // Runs from several threads at once each get their own values back.
        std::thread::scope(|scope| {
            for t in 0..4u8 {
                let (graph, plain) = (&graph, &plain);
                scope.spawn(move || {
                    for r in 0..25u8 {
                        let x = [f32::from(t), f32::from(r), -1.0, 2.0];
                        let w = [0.5, f32::from(t) * 0.1, 3.0, f32::from(r)];
                        assert_eq!(
                            graph.run(&[(shape, &x), (shape, &w)]).unwrap(),
                            plain.run(&[(shape, &x), (shape, &w)]).unwrap()
                        );
                    }
                });
            }
        });
        assert_eq!(runner.in_flight(), 0);
    }

    #[test]
    fn a_cuda_graph_needs_fixed_float_shapes_and_the_provider_asking_for_it() {
        let rt = Runtime::new(RuntimeSettings::auto(1)).unwrap();
        let open = two_input_model(crate::onnx::Dim::Symbolic("n".into()));
        let e = rt
            .with_host_graphs()
            .load_fixed("two", &open, &[("x", &[1, 4])])
            .unwrap_err();
        assert!(e.to_string().contains("fixed shapes"), "{e}");
        assert!(e.to_string().contains("input w"), "{e}");
        // Fixed by the loader, it runs with a graph (the outputs' shapes as
        // ONNX Runtime infers them from the inputs).
        let (session, _) = rt.session("two", &open, &[], &[("n".into(), 4)]).unwrap();
        let model = graph::GraphModel::of("two", &session, rt.env).unwrap();
        assert_eq!(
            (model.input_shapes, model.output_shapes),
            (vec![vec![1, 4]; 2], vec![vec![1, 4]; 2])
        );
        // Outputs whose shape depends on the values (no graph can serve
        // them) are refused.
        let unknown = [crate::onnx::Dim::Unknown, crate::onnx::Dim::Unknown];
        let reshape = crate::onnx::ModelBuilder::new("reshape", 13)
            .input("x", &crate::onnx::fixed(&[1, 4]))
            .input("k", &crate::onnx::fixed(&[2]))
            .node("Cast", &["k"], &["s"], &[("to", crate::onnx::Attr::Int(7))])
            .node("Reshape", &["x", "s"], &["y"], &[])
            .output("y", &unknown)
            .build();
        let e = rt
            .with_host_graphs()
            .load_fixed("reshape", &reshape, &[])
            .unwrap_err();
        assert!(e.to_string().contains("output y"), "{e}");
        assert!(rt.load_fixed("reshape", &reshape, &[]).is_ok());
        let m = rt
            .with_host_graphs()
            .load_fixed("two", &open, &[("w", &[1, 4])])
            .unwrap();
        assert_eq!(m.graph_sessions(), 1);
        let (x, w) = ([1.0, -2.0, 3.0, -4.0], [2.0, 2.0, 0.5, 1.0]);
        let got = m.run(&[(&[1, 4], &x), (&[1, 4], &w)]).unwrap();
        assert_eq!(got[0].shape, [1, 4]);
        assert_eq!(got[0].data, [3.0, -6.0, 4.5, -8.0]);
        assert_eq!(got[1].data, [1.0, 0.0, 3.0, 0.0]);
        // Which sessions get one: where the CUDA or TensorRT provider that
        // attached asks for it, on its GPU.
        let mut cuda = ProviderConfig::new(ExecutionProvider::Cuda);
        cuda.device_id = Some(1);
        let cpu = [ExecutionProvider::Cpu];
        let on_cuda = [ExecutionProvider::Cuda, ExecutionProvider::Cpu];
        assert_eq!(
            graph::graph_memory(&on_cuda, std::slice::from_ref(&cuda)),
            None
        );
        cuda.cuda_graph = true;
        assert_eq!(
            graph::graph_memory(&on_cuda, std::slice::from_ref(&cuda)),
            Some(graph::DeviceMemory::Cuda(1))
        );
        assert_eq!(graph::graph_memory(&cpu, std::slice::from_ref(&cuda)), None);
        let mut trt = ProviderConfig::new(ExecutionProvider::TensorRt);
        trt.cuda_graph = true;
        let on_trt = [ExecutionProvider::TensorRt, ExecutionProvider::Cuda];
        assert_eq!(
            graph::graph_memory(
                &on_trt,
                &[trt, ProviderConfig::new(ExecutionProvider::Cuda)]
            ),
            Some(graph::DeviceMemory::Cuda(0))
        );
    }

    #[test]
    fn provider_names_parse() {
        assert_eq!(
            parse_provider_list("cuda,cpu").unwrap(),
            vec![ExecutionProvider::Cuda, ExecutionProvider::Cpu]
        );
        assert_eq!(
            "DmlExecutionProvider".parse::<ExecutionProvider>().unwrap(),
            ExecutionProvider::DirectMl
        );
        assert_eq!(
            "CUDAExecutionProvider"
                .parse::<ExecutionProvider>()
                .unwrap(),
            ExecutionProvider::Cuda
        );
        assert!(parse_provider_list("").is_err());
        assert!(matches!(
            "tpu".parse::<ExecutionProvider>(),
            Err(Error::UnknownProvider(_))
        ));
        for p in ExecutionProvider::ALL {
            assert_eq!(p.name().parse::<ExecutionProvider>().unwrap(), p);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_gpu_runtimes_libraries_are_preloaded_in_order_and_failures_reported() {
        // Stand-ins for CUDA's libraries: copies of a real system library
        // under CUDA's names (loading them is harmless), and a broken one.
        let real = [
            "/lib/x86_64-linux-gnu/libz.so.1",
            "/usr/lib/x86_64-linux-gnu/libz.so.1",
            "/lib/aarch64-linux-gnu/libz.so.1",
            "/usr/lib64/libz.so.1",
            "/usr/lib/libz.so.1",
        ]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .expect("zlib, which every Debian machine has");
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "libcudnn.so.9",
            "libcublas.so.13",
            "libcudart.so.13",
            "libcudart.so.13.5.37",
            "libcudnn_ops.so.9",
            "libnvblas.so.13",
        ] {
            std::fs::copy(real, dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("libcufft.so.12"), b"not a library").unwrap();
        std::fs::write(dir.path().join("README.txt"), b"not one either").unwrap();
        let names = |v: &[PathBuf]| -> Vec<String> {
            v.iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            names(&preload_order(&[dir.path().to_path_buf()])),
            [
                "libcudart.so.13",
                "libcublas.so.13",
                "libcufft.so.12",
                "libcudnn.so.9",
                "libcudnn_ops.so.9"
            ]
        );
        let (loaded, failed) = preload_libraries(&[dir.path().to_path_buf()]);
        assert_eq!(
            names(&loaded),
            [
                "libcudart.so.13",
                "libcublas.so.13",
                "libcudnn.so.9",
                "libcudnn_ops.so.9"
            ]
        );
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(failed[0].0.ends_with("libcufft.so.12") && !failed[0].1.is_empty());
        // No folder: nothing to load, nothing failed.
        let (none, no_failure) = preload_libraries(&[dir.path().join("missing")]);
        assert!(none.is_empty() && no_failure.is_empty());
    }

    #[test]
    fn cuda_libraries_are_looked_for_where_the_setup_and_pip_put_them() {
        let root = tempfile::tempdir().unwrap();
        // The setup's layout: <cache>/onnxruntime-gpu/<version>/nvidia/.
        let setup = root.path().join("onnxruntime-gpu/1.31.1");
        std::fs::create_dir_all(setup.join("nvidia")).unwrap();
        // A CPU build beside the same folders: nothing is preloaded.
        assert!(cuda_library_dirs(&setup.join("libonnxruntime.so.1.31.1")).is_empty());
        std::fs::write(setup.join("libonnxruntime_providers_cuda.so"), b"").unwrap();
        assert_eq!(
            cuda_library_dirs(&setup.join("libonnxruntime.so.1.31.1")),
            [setup.join("nvidia")]
        );
        // pip's: site-packages/onnxruntime/capi/ and site-packages/nvidia/*/lib/.
        let site = root.path().join("site-packages");
        let capi = site.join("onnxruntime/capi");
        std::fs::create_dir_all(&capi).unwrap();
        std::fs::write(capi.join("libonnxruntime_providers_cuda.so"), b"").unwrap();
        for w in ["cudnn", "cublas", "cu13"] {
            std::fs::create_dir_all(site.join("nvidia").join(w).join("lib")).unwrap();
        }
        std::fs::create_dir_all(site.join("nvidia/nolib")).unwrap();
        assert_eq!(
            cuda_library_dirs(&capi.join("libonnxruntime.so.1.31.1")),
            ["cu13", "cublas", "cudnn"].map(|w| site.join("nvidia").join(w).join("lib"))
        );
        // The CPU runtime has neither.
        assert!(
            cuda_library_dirs(&root.path().join("onnxruntime/1.32.0/libonnxruntime.so")).is_empty()
        );
    }

    #[test]
    fn versions_are_read() {
        assert_eq!(
            version_from_info("ORT Build Info: git-branch=rel-1.32.0, git-commit-id=abc")
                .as_deref(),
            Some("1.32.0")
        );
        assert_eq!(
            version_from_filename(Path::new("/x/libonnxruntime.so.1.32.0")).as_deref(),
            Some("1.32.0")
        );
        assert!(lib_name_matches("libonnxruntime.so.1.32.0") || cfg!(not(target_os = "linux")));
        assert!(!lib_name_matches("libonnxruntime_providers_cuda.so"));
    }
}
