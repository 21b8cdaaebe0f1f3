//! The `camshow` binary as a user runs it.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use camshow_test_utils::{exiftool, sample, store};

fn camshow(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_camshow")).args(args).output().unwrap()
}

fn run(args: &[&str]) -> Output {
    let a: Vec<&std::ffi::OsStr> = args.iter().map(|s| std::ffi::OsStr::new(*s)).collect();
    camshow(&a)
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn detect_finds_six_faces_in_t1_and_writes_an_annotated_copy() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("faces.png");
    let o = run(&["detect", "-i", s(&sample("t1.jpg")), "--json", "-o", s(&out)]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["faces"].as_array().unwrap().len(), 6, "{stdout}");
    assert_eq!(v["detector"], "centerface");
    assert!(v["providers"][0].as_str().unwrap().ends_with(":cpu"));
    assert_eq!(v["faces"][0]["kps"].as_array().unwrap().len(), 5);
    // The annotated copy is a real image with provenance, and differs from the input only by drawing.
    assert!(exiftool("XMP-iptcExt:DigitalSourceType", &out).ends_with("compositeWithTrainedAlgorithmicMedia"));
    let drawn = image::open(&out).unwrap().to_rgb8();
    assert_eq!(drawn.dimensions(), (1280, 886));
}

#[test]
fn detect_text_output_with_blazeface() {
    store();
    let o = run(&["detect", "-i", s(&sample("astronaut.png")), "--detector", "blazeface"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("1 face(s) found by blazeface"), "{stdout}");
    assert!(stdout.contains("blazeface_front:cpu"), "{stdout}");
}

#[test]
fn without_the_safety_model_nothing_is_processed() {
    let models = tempfile::tempdir().unwrap();
    let out = models.path().join("never.png");
    let o = run(&["detect", "-i", s(&sample("t1.jpg")), "--models-dir", s(models.path()), "-o", s(&out)]);
    let (_, stderr) = text(&o);
    assert!(!o.status.success());
    assert!(stderr.contains("camshow models fetch nudenet") && stderr.contains("content-safety gate"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn there_is_no_way_to_switch_the_gate_off() {
    let o = run(&["detect", "--help"]);
    let help = text(&o).0.to_lowercase();
    for word in ["nsfw", "safety", "unsafe", "skip", "disable"] {
        assert!(!help.contains(word), "detect --help mentions {word:?}: {help}");
    }
    let o = run(&["detect", "-i", s(&sample("t1.jpg")), "--no-safety"]);
    assert!(!o.status.success());
}

#[test]
fn bad_inputs_give_clear_errors() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.jpg");
    std::fs::write(&junk, b"this is not a jpeg").unwrap();
    for (args, expect) in [
        (vec!["detect", "-i", s(&junk)], "cannot decode image"),
        (vec!["detect", "-i", "/nonexistent/x.png"], "cannot read"),
        (vec!["detect", "-i", s(&sample("t1.jpg")), "--detector", "yolo"], "unknown detector"),
        (vec!["detect", "-i", s(&sample("t1.jpg")), "--execution-provider", "tpu"], "unknown execution provider"),
        (vec!["detect", "-i", s(&sample("t1.jpg")), "-o", "/nonexistent-dir/out.png"], "output folder does not exist"),
        (vec!["detect", "-i", s(&sample("t1.jpg")), "-o", s(&dir.path().join("out.bmp"))], "unsupported output format"),
    ] {
        let o = run(&args);
        let (_, stderr) = text(&o);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_requested_provider_that_does_not_attach_is_an_error_not_a_cpu_run() {
    store();
    let o = run(&["detect", "-i", s(&sample("astronaut.png")), "--execution-provider", "cuda,cpu"]);
    let (_, stderr) = text(&o);
    assert!(!o.status.success(), "ran although CUDA is not available here");
    assert!(stderr.contains("execution provider cuda was requested"), "{stderr}");
}

#[test]
fn a_missing_runtime_library_is_reported() {
    let o = Command::new(env!("CARGO_BIN_EXE_camshow"))
        .args(["detect", "-i", s(&sample("t1.jpg"))])
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    let (_, stderr) = text(&o);
    assert!(!o.status.success());
    assert!(stderr.contains("ORT_DYLIB_PATH") && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn doctor_tells_the_truth() {
    store();
    let o = run(&["doctor", "--json"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["onnxruntime"]["version"], "1.32.0");
    assert_eq!(v["onnxruntime"]["found_via"], "setup-cache");
    let cpu = v["onnxruntime"]["providers"].as_array().unwrap().iter().find(|p| p["name"] == "cpu").unwrap().clone();
    assert_eq!(cpu["usable"], true);
    assert_eq!(v["safety_gate"], "ready");
    assert!(v["ffmpeg"]["ffmpeg"].as_str().unwrap().starts_with("ffmpeg version"));
    assert!(v["ffmpeg"]["video_encoders"].as_array().unwrap().iter().any(|e| e == "libx264"));
    let centerface = v["models"].as_array().unwrap().iter().find(|m| m["id"] == "centerface").unwrap().clone();
    assert_eq!(centerface["ok"], true);
    // The human-readable form too.
    let o = run(&["doctor"]);
    let (stdout, _) = text(&o);
    assert!(stdout.contains("found via   setup cache") && stdout.contains("provider    cpu       usable"), "{stdout}");
    // The ORT_DYLIB_PATH route is reported as such.
    let lib = v["onnxruntime"]["library"].as_str().unwrap().to_string();
    let o = Command::new(env!("CARGO_BIN_EXE_camshow")).args(["doctor", "--json"]).env("ORT_DYLIB_PATH", &lib).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["onnxruntime"]["found_via"], "env-var");
}

#[test]
fn models_list_import_and_verify() {
    let real = store();
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let o = run(&["models", "list", "--json", "--models-dir", s(&models)]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let all = v["models"].as_array().unwrap();
    assert!(all.iter().all(|m| m["status"] == "missing"));
    let insw = all.iter().find(|m| m["id"] == "inswapper_128").unwrap();
    assert_eq!(insw["non_commercial"], true);
    assert_eq!(insw["sha256"][0], "e4a3f08c753cb72d04e10aa0f7dbe3deebbf39567d4ead6dce08e98aa49e16af");

    // Import a real model under another name: recognised by its digest.
    let spec = camshow_core::models::find("blazeface_back").unwrap();
    let copy = dir.path().join("downloaded-model.onnx");
    std::fs::copy(real.path(spec), &copy).unwrap();
    let o = run(&["models", "import", s(&copy), "--models-dir", s(&models)]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(text(&o).0.contains("as blazeface_back"));
    assert!(models.join("blazeface_back_256.onnx").is_file());
    let o = run(&["models", "verify", "--models-dir", s(&models)]);
    assert!(o.status.success());
    assert!(text(&o).0.contains("blazeface_back: ok"));

    // Corrupt it: list and verify say so.
    let mut bytes = std::fs::read(models.join("blazeface_back_256.onnx")).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(models.join("blazeface_back_256.onnx"), &bytes).unwrap();
    let o = run(&["models", "verify", "blazeface_back", "--models-dir", s(&models)]);
    assert!(!o.status.success());
    assert!(text(&o).0.contains("corrupt"), "{}", text(&o).0);
    let o = run(&["models", "list", "--models-dir", s(&models)]);
    assert!(text(&o).0.contains("CORRUPT"));

    // An unrelated file is refused.
    let o = run(&["models", "import", s(&sample("astronaut.png")), "--models-dir", s(&models)]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("matches no model"));
}

#[cfg(unix)]
#[test]
fn non_utf8_paths_are_fine() {
    use std::os::unix::ffi::OsStrExt;
    store();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join(std::ffi::OsStr::from_bytes(b"ast\xffronaut.png"));
    std::fs::copy(sample("astronaut.png"), &input).unwrap();
    let out = dir.path().join(std::ffi::OsStr::from_bytes(b"out\xfe.png"));
    let o = camshow(&[std::ffi::OsStr::new("detect"), std::ffi::OsStr::new("-i"), input.as_os_str(), std::ffi::OsStr::new("-o"), out.as_os_str()]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(out.is_file());
}
