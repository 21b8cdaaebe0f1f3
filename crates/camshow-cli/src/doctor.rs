//! `camshow doctor`: tell the truth about this machine.

use std::process::ExitCode;

use anyhow::Result;
use camshow_media::doctor::{Report, RuntimeReport};
use clap::Args;

use crate::settings_args::EngineArgs;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

#[allow(clippy::print_stdout)]
pub fn run(args: &DoctorArgs) -> Result<ExitCode> {
    let settings = args.engine.settings()?;
    let store = crate::settings_args::store(&settings);
    let rt = crate::settings_args::runtime(&settings);
    let report = Report::collect(rt.as_ref().map_err(|e| format!("{e:#}")), &store);
    let code = if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(code);
    }
    let interesting = [
        "libx264",
        "libx265",
        "libvpx-vp9",
        "libaom-av1",
        "libsvtav1",
        "h264_nvenc",
        "hevc_nvenc",
        "av1_nvenc",
        "h264_videotoolbox",
        "hevc_videotoolbox",
        "h264_vaapi",
        "hevc_vaapi",
        "h264_qsv",
        "hevc_qsv",
        "h264_amf",
        "mpeg4",
        "png",
    ];
    let encoders: Vec<&str> = report
        .ffmpeg
        .video_encoders
        .iter()
        .map(String::as_str)
        .filter(|e| interesting.contains(e))
        .collect();
    println!("Camshow Deepfaker {}", crate::VERSION.as_str());
    println!();
    println!(
        "GPU           {}",
        if report.gpus.is_empty() {
            "no NVIDIA GPU (nvidia-smi)".to_string()
        } else {
            report.gpus.join("; ")
        }
    );
    println!();
    println!("ONNX Runtime");
    match &report.onnxruntime {
        RuntimeReport::Found {
            library,
            found_via,
            version,
            providers,
            cuda_libraries,
            cuda_library_failures,
        } => {
            println!("  version     {version}");
            println!("  library     {}", library.display());
            println!("  found via   {found_via}");
            if !cuda_libraries.is_empty() {
                let names: Vec<String> = cuda_libraries
                    .iter()
                    .map(|p| {
                        p.file_name()
                            .unwrap_or_default()
                            .to_string_lossy()
                            .into_owned()
                    })
                    .collect();
                println!("  CUDA libs   {}", names.join(", "));
            }
            for f in cuda_library_failures {
                println!("  CUDA lib NOT loaded: {f}");
            }
            for p in providers {
                let state = match (p.available, p.usable) {
                    (true, true) => "usable".to_string(),
                    (true, false) => format!(
                        "available but NOT usable: {}",
                        p.reason.as_deref().unwrap_or_default()
                    ),
                    _ => "not in this ONNX Runtime library".to_string(),
                };
                println!("  provider    {:<9} {state}", p.name);
            }
        }
        RuntimeReport::Missing { error } => println!("  NOT FOUND: {error}"),
    }
    println!();
    println!(
        "Content-safety gate: {}",
        if report.gate_ready {
            format!("NudeNet 320n, {}", report.safety_gate)
        } else {
            "MISSING: nothing can be processed; run `camshow models fetch nudenet`".into()
        }
    );
    println!();
    println!("Models in {}", report.dirs.models.display());
    for m in &report.models {
        println!("  {:<20} {}", m.id, m.status);
    }
    println!();
    println!("FFmpeg");
    println!(
        "  ffmpeg      {}",
        report
            .ffmpeg
            .ffmpeg
            .as_deref()
            .unwrap_or("NOT FOUND (install ffmpeg)")
    );
    println!(
        "  ffprobe     {}",
        report
            .ffmpeg
            .ffprobe
            .as_deref()
            .unwrap_or("NOT FOUND (install ffmpeg)")
    );
    println!(
        "  encoders    {}",
        if encoders.is_empty() {
            "-".to_string()
        } else {
            encoders.join(", ")
        }
    );
    println!(
        "  decoding    {}",
        if report.ffmpeg.cuda_decode {
            "NVDEC (for jobs whose models run on CUDA or TensorRT), else the CPU"
        } else {
            "the CPU"
        }
    );
    let unusable = &report.ffmpeg.unusable_hardware_encoders;
    if !unusable.is_empty() {
        println!(
            "  listed by FFmpeg, not working here (no device, or a test encode failed): {}",
            unusable.join(", ")
        );
    }
    println!();
    println!("Cameras");
    if report.cameras.is_empty() {
        println!("  none found");
    }
    for c in &report.cameras {
        println!("  {}  {}", c.id, c.name);
    }
    if !report.hints.is_empty() {
        println!();
        println!("Next steps");
        for h in &report.hints {
            println!("  - {h}");
        }
    }
    println!();
    println!("Folders");
    println!(
        "  settings    {}",
        camshow_core::settings::config_file(
            crate::settings_args::CONFIG
                .get()
                .cloned()
                .flatten()
                .as_deref()
        )
        .display()
    );
    println!("  models      {}", report.dirs.models.display());
    println!("  cache       {}", report.dirs.cache.display());
    Ok(code)
}
