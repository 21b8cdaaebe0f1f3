//! `camshow doctor`: tell the truth about this machine.

use std::process::ExitCode;

use anyhow::Result;
use camshow_core::models::Status;
use camshow_core::runtime::ExecutionProvider;
use clap::Args;

use crate::engine_args::EngineArgs;

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
    let store = args.engine.store();
    let mut ok = true;

    let rt = args.engine.runtime();
    let runtime_json = match &rt {
        Ok(rt) => {
            let lib = rt.library();
            let providers: Vec<_> = ExecutionProvider::ALL
                .iter()
                .map(|&p| {
                    let compiled = p.compiled_in();
                    let usable = if compiled {
                        rt.probe_provider(p)
                    } else {
                        Err("not compiled into this library".into())
                    };
                    (p, compiled, usable)
                })
                .collect();
            serde_json::json!({
                "library": lib.path, "found_via": lib.source, "version": lib.version,
                "providers": providers.iter().map(|(p, c, u)| serde_json::json!({
                    "name": p.name(), "available": c, "usable": u.is_ok(), "reason": u.as_ref().err(),
                })).collect::<Vec<_>>(),
            })
        }
        Err(e) => {
            ok = false;
            serde_json::json!({ "error": format!("{e:#}") })
        }
    };

    let models: Vec<_> = store
        .statuses()
        .into_iter()
        .map(|(m, s)| serde_json::json!({"id": m.id, "status": s.to_string(), "ok": matches!(s, Status::Present | Status::PresentUnpinned), "licence": m.licence}))
        .collect();
    let gate_ready = matches!(
        store.status(camshow_core::models::find("nudenet").expect("nudenet is in the manifest")),
        Status::Present
    );
    ok &= gate_ready;
    let ff = camshow_media::tools::ffmpeg_info();
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
    let encoders: Vec<&String> = ff
        .video_encoders
        .iter()
        .filter(|e| interesting.contains(&e.as_str()))
        .collect();
    let cams = camshow_media::camera::list_cameras();

    if args.json {
        let v = serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "features": camshow_core::enabled_features(),
            "onnxruntime": runtime_json,
            "safety_gate": if gate_ready { "ready" } else { "missing: run `camshow models fetch nudenet`" },
            "models": models,
            "ffmpeg": ff,
            "cameras": cams,
            "dirs": {"config": camshow_core::paths::config_dir(), "models": store.dir(), "cache": camshow_core::paths::cache_dir()},
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }

    println!("Camshow Deepfaker {}", crate::version_string());
    println!();
    println!("ONNX Runtime");
    match &rt {
        Ok(rt) => {
            let lib = rt.library();
            println!("  version     {}", lib.version);
            println!("  library     {}", lib.path.display());
            println!("  found via   {}", lib.source);
            for p in runtime_json["providers"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap_or_default();
                let state = match (p["available"].as_bool(), p["usable"].as_bool()) {
                    (Some(true), Some(true)) => "usable".to_string(),
                    (Some(true), _) => format!(
                        "available but NOT usable: {}",
                        p["reason"].as_str().unwrap_or_default()
                    ),
                    _ => "not in this build".to_string(),
                };
                println!("  provider    {name:<9} {state}");
            }
        }
        Err(e) => println!("  NOT FOUND: {e:#}"),
    }
    println!();
    println!(
        "Content-safety gate: {}",
        if gate_ready {
            "ready (NudeNet 320n)"
        } else {
            "MISSING: nothing can be processed; run `camshow models fetch nudenet`"
        }
    );
    println!();
    println!("Models in {}", store.dir().display());
    for m in &models {
        println!(
            "  {:<20} {}",
            m["id"].as_str().unwrap_or_default(),
            m["status"].as_str().unwrap_or_default()
        );
    }
    println!();
    println!("FFmpeg");
    println!(
        "  ffmpeg      {}",
        ff.ffmpeg.as_deref().unwrap_or("NOT FOUND (install ffmpeg)")
    );
    println!(
        "  ffprobe     {}",
        ff.ffprobe
            .as_deref()
            .unwrap_or("NOT FOUND (install ffmpeg)")
    );
    println!(
        "  encoders    {}",
        if encoders.is_empty() {
            "-".to_string()
        } else {
            encoders
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    println!();
    println!("Cameras");
    if cams.is_empty() {
        println!("  none found");
    }
    for c in &cams {
        println!("  {}  {}", c.id, c.name);
    }
    println!();
    println!("Folders");
    println!(
        "  config      {}",
        camshow_core::paths::config_dir().display()
    );
    println!("  models      {}", store.dir().display());
    println!(
        "  cache       {}",
        camshow_core::paths::cache_dir().display()
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
