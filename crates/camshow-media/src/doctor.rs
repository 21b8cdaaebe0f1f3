//! The machine report behind `camshow doctor` (and the server's health
//! endpoint): ONNX Runtime and its execution providers, the safety gate,
//! models, FFmpeg, cameras and folders, as one typed, serialisable struct.

use std::path::PathBuf;

use camshow_core::models::{ModelStore, Status};
use camshow_core::runtime::{ExecutionProvider, LibrarySource, Runtime};
use serde::Serialize;

use crate::camera::CameraInfo;
use crate::tools::FfmpegInfo;

/// Everything `doctor` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The product version.
    pub version: String,
    /// Execution-provider features compiled into this build.
    pub features: Vec<&'static str>,
    /// ONNX Runtime, or why it could not be loaded.
    pub onnxruntime: RuntimeReport,
    /// `ready`, or what is missing.
    pub safety_gate: String,
    /// Whether the gate's model is installed and verified.
    #[serde(skip)]
    pub gate_ready: bool,
    /// Every manifest model and its state.
    pub models: Vec<ModelReport>,
    /// NVIDIA GPUs `nvidia-smi` sees: name, driver version, memory.
    pub gpus: Vec<String>,
    /// The FFmpeg tools.
    pub ffmpeg: FfmpegInfo,
    /// Cameras found.
    pub cameras: Vec<CameraInfo>,
    /// Folders in use.
    pub dirs: Dirs,
    /// What to do next: how to get inswapper, how to get the GPU runtime.
    pub hints: Vec<String>,
}

/// How to get inswapper, when it is not installed (empty when it is).
pub fn inswapper_hint(store: &ModelStore) -> Option<String> {
    let have = ["inswapper_128", "inswapper_128_fp16"]
        .iter()
        .any(|id| store.available(id))
        && store.available("w600k_r50");
    (!have).then(|| {
        "inswapper (the best swapper) is not installed: `camshow models fetch inswapper_128 w600k_r50` \
         (insightface licence: non-commercial research only), or `camshow models import FILE` for a copy you already have"
            .to_string()
    })
}

/// The ONNX Runtime part.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum RuntimeReport {
    /// Loaded.
    Found {
        /// The library.
        library: PathBuf,
        /// How it was found.
        found_via: LibrarySource,
        /// Its version.
        version: String,
        /// Every provider: compiled in, and usable on this machine.
        providers: Vec<ProviderReport>,
        /// CUDA libraries loaded before it (the GPU runtime's `nvidia/`).
        cuda_libraries: Vec<PathBuf>,
        /// CUDA libraries that would not load, with the reason.
        cuda_library_failures: Vec<String>,
    },
    /// Not loaded.
    Missing {
        /// Why.
        error: String,
    },
}

/// One execution provider.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderReport {
    /// Short name.
    pub name: &'static str,
    /// Compiled into the loaded library.
    pub available: bool,
    /// Attached to a real session here.
    pub usable: bool,
    /// Why not, when not.
    pub reason: Option<String>,
}

/// One model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    /// Manifest id.
    pub id: &'static str,
    /// State, as text.
    pub status: String,
    /// Installed and verified.
    pub ok: bool,
    /// Licence.
    pub licence: &'static str,
}

/// Folders.
#[derive(Debug, Clone, Serialize)]
pub struct Dirs {
    /// Settings.
    pub config: PathBuf,
    /// Models.
    pub models: PathBuf,
    /// Downloads and setup cache.
    pub cache: PathBuf,
}

/// The NVIDIA GPUs `nvidia-smi` lists (`name, driver, memory`); none
/// where it is missing or sees none.
pub fn nvidia_gpus() -> Vec<String> {
    std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=name,driver_version,memory.total",
            "--format=csv,noheader",
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

impl Report {
    /// Probes this machine: `rt` is the runtime (or why it failed to load).
    /// The FFmpeg tools are asked while the rest is looked at.
    pub fn collect(rt: Result<&Runtime, String>, store: &ModelStore) -> Self {
        std::thread::scope(|scope| {
            let ffmpeg = scope.spawn(crate::tools::ffmpeg_info);
            let gpus = scope.spawn(nvidia_gpus);
            let mut report = Self::collect_but_ffmpeg(rt, store);
            report.ffmpeg = ffmpeg.join().unwrap_or_default();
            report.gpus = gpus.join().unwrap_or_default();
            report
        })
    }

    fn collect_but_ffmpeg(rt: Result<&Runtime, String>, store: &ModelStore) -> Self {
        let onnxruntime = match rt {
            Ok(rt) => {
                let lib = rt.library();
                RuntimeReport::Found {
                    library: lib.path.clone(),
                    found_via: lib.source,
                    version: lib.version.clone(),
                    cuda_libraries: lib.preloaded.clone(),
                    cuda_library_failures: lib
                        .preload_failures
                        .iter()
                        .map(|(p, e)| format!("{}: {e}", p.display()))
                        .collect(),
                    providers: ExecutionProvider::ALL
                        .iter()
                        .map(|&p| {
                            let available = p.compiled_in();
                            let usable = if available {
                                rt.probe_provider(p)
                            } else {
                                Err("not in this ONNX Runtime library".into())
                            };
                            ProviderReport {
                                name: p.name(),
                                available,
                                usable: usable.is_ok(),
                                reason: usable.err(),
                            }
                        })
                        .collect(),
                }
            }
            Err(error) => RuntimeReport::Missing { error },
        };
        let models: Vec<ModelReport> = store
            .statuses()
            .into_iter()
            .map(|(m, s)| ModelReport {
                id: m.id,
                ok: matches!(s, Status::Present | Status::PresentUnpinned),
                status: s.to_string(),
                licence: m.licence,
            })
            .collect();
        let mut hints: Vec<String> = inswapper_hint(store).into_iter().collect();
        if let RuntimeReport::Found { providers, .. } = &onnxruntime
            && !providers.iter().any(|p| p.name != "cpu" && p.available)
        {
            hints.push(
                "only the CPU ONNX Runtime is present: on a machine with an NVIDIA GPU, scripts/setup.sh \
                 fetches the GPU runtime (onnxruntime-gpu and CUDA's libraries) into the setup cache, where \
                 camshow finds it; or `pip install onnxruntime-gpu[cuda,cudnn]` (camshow finds it and its \
                 CUDA libraries too)"
                    .to_string(),
            );
        }
        let gate_ready = models
            .iter()
            .any(|m| m.id == "nudenet" && m.status == Status::Present.to_string());
        Self {
            version: env!("CARGO_PKG_VERSION").into(),
            features: camshow_core::enabled_features(),
            onnxruntime,
            safety_gate: if gate_ready && camshow_core::safety::TEST_MARKER_BUILD {
                "ready (TEST BUILD: pictures carrying the test marker are refused too)".into()
            } else if gate_ready {
                "ready".into()
            } else {
                "missing: run `camshow models fetch nudenet`".into()
            },
            gate_ready,
            models,
            gpus: Vec::new(),
            ffmpeg: crate::tools::FfmpegInfo::default(),
            cameras: crate::camera::list_cameras(),
            hints,
            dirs: Dirs {
                config: camshow_core::paths::config_dir(),
                models: store.dir().to_path_buf(),
                cache: camshow_core::paths::cache_dir(),
            },
        }
    }

    /// Whether the product can run: ONNX Runtime loads and the gate is ready.
    pub fn ok(&self) -> bool {
        self.gate_ready && matches!(self.onnxruntime, RuntimeReport::Found { .. })
    }
}
