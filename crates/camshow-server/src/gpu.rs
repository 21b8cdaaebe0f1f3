//! GPU figures for `/v1/metrics` through NVML (NVIDIA's management
//! library, loaded at run time; on a machine without it the metrics say
//! there are no GPUs).

use std::fmt::Write;
use std::sync::OnceLock;

use nvml_wrapper::Nvml;

fn nvml() -> Option<&'static Nvml> {
    static NVML: OnceLock<Option<Nvml>> = OnceLock::new();
    NVML.get_or_init(|| match Nvml::init() {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::debug!("NVML: {e}");
            None
        }
    })
    .as_ref()
}

/// One GPU's figures.
struct Gpu {
    name: String,
    utilization: Option<u32>,
    memory: Option<(u64, u64)>,
}

fn gpus() -> Vec<Gpu> {
    let Some(nvml) = nvml() else {
        return Vec::new();
    };
    let count = nvml.device_count().unwrap_or(0);
    (0..count)
        .filter_map(|i| nvml.device_by_index(i).ok())
        .map(|d| Gpu {
            name: d.name().unwrap_or_default(),
            utilization: d.utilization_rates().ok().map(|u| u.gpu),
            memory: d.memory_info().ok().map(|m| (m.used, m.total)),
        })
        .collect()
}

/// Escapes a label value (Prometheus text format).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The GPU lines of the metrics text.
pub(crate) fn write(out: &mut String) {
    let gpus = gpus();
    let _ = writeln!(
        out,
        "# HELP camshow_gpus NVIDIA GPUs seen through NVML.\n# TYPE camshow_gpus gauge\ncamshow_gpus {}",
        gpus.len()
    );
    if gpus.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "# HELP camshow_gpu_utilization_ratio Share of the last sample period a kernel ran.\n# TYPE camshow_gpu_utilization_ratio gauge"
    );
    for (i, g) in gpus.iter().enumerate() {
        if let Some(u) = g.utilization {
            let _ = writeln!(
                out,
                "camshow_gpu_utilization_ratio{{gpu=\"{i}\",name=\"{}\"}} {}",
                label(&g.name),
                f64::from(u) / 100.0
            );
        }
    }
    for (metric, help, pick) in [
        (
            "camshow_gpu_memory_used_bytes",
            "GPU memory in use.",
            (|m: (u64, u64)| m.0) as fn((u64, u64)) -> u64,
        ),
        (
            "camshow_gpu_memory_total_bytes",
            "GPU memory installed.",
            |m| m.1,
        ),
    ] {
        let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} gauge");
        for (i, g) in gpus.iter().enumerate() {
            if let Some(m) = g.memory {
                let _ = writeln!(
                    out,
                    "{metric}{{gpu=\"{i}\",name=\"{}\"}} {}",
                    label(&g.name),
                    pick(m)
                );
            }
        }
    }
}
