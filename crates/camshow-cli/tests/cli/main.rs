//! The `camshow` binary as a user runs it.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use camshow_test_utils::{exiftool, parity_model, sample, store};

mod gate;
mod serve;
mod settings;

fn camshow(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_camshow"))
        .args(args)
        .output()
        .unwrap()
}

fn run(args: &[&str]) -> Output {
    let a: Vec<&std::ffi::OsStr> = args.iter().map(|s| std::ffi::OsStr::new(*s)).collect();
    camshow(&a)
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The command was refused: exit 1 (or 2, clap's usage errors), the
/// message says `expect`, and nothing panicked.
fn refused(o: &Output, expect: &str) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        matches!(o.status.code(), Some(1 | 2)),
        "{:?}: {stderr}",
        o.status
    );
    assert!(stderr.contains(expect), "expected {expect:?} in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn detect_finds_six_faces_in_t1_and_writes_an_annotated_copy() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("faces.png");
    let o = run(&[
        "detect",
        "-i",
        s(&sample("t1.jpg")),
        "--json",
        "-o",
        s(&out),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["faces"].as_array().unwrap().len(), 6, "{stdout}");
    assert_eq!(v["detector"], "centerface");
    assert!(v["providers"][0].as_str().unwrap().ends_with(":cpu"));
    assert_eq!(v["faces"][0]["kps"].as_array().unwrap().len(), 5);
    // The annotated copy is a real image with provenance, and differs from the input only by drawing.
    assert!(
        exiftool("XMP-iptcExt:DigitalSourceType", &out)
            .ends_with("compositeWithTrainedAlgorithmicMedia")
    );
    // It says it is a detection drawing, not a face swap.
    assert_eq!(
        exiftool("XMP-camshow:Operation", &out),
        "face-detection-annotation"
    );
    assert!(exiftool("XMP-dc:Description", &out).starts_with("face detections drawn"));
    let drawn = image::open(&out).unwrap().to_rgb8();
    assert_eq!(drawn.dimensions(), (1280, 886));
    // Each face's box is drawn in green along its edges; every pixel away
    // from the boxes is the input's.
    let input = image::open(sample("t1.jpg")).unwrap().to_rgb8();
    let boxes: Vec<[f64; 4]> = v["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let b = f["bbox"].as_array().unwrap();
            [0, 1, 2, 3].map(|i| b[i].as_f64().unwrap())
        })
        .collect();
    for b in &boxes {
        let (x1, y1, x2) = (
            b[0].round() as u32,
            b[1].round() as u32,
            b[2].round() as u32,
        );
        let green = (x1 + 3..x2 - 3)
            .filter(|&x| drawn.get_pixel(x, y1).0 == [0, 255, 0])
            .count();
        assert!(
            green as u32 >= (x2 - x1 - 6) * 9 / 10,
            "box {b:?}: {green} green pixels on its top edge"
        );
    }
    let near = |x: u32, y: u32| {
        boxes.iter().any(|b| {
            let (x, y) = (f64::from(x), f64::from(y));
            x >= b[0] - 4.0 && x <= b[2] + 4.0 && y >= b[1] - 4.0 && y <= b[3] + 4.0
        })
    };
    let mut checked = 0;
    for (x, y, p) in drawn.enumerate_pixels() {
        if !near(x, y) {
            assert_eq!(
                p,
                input.get_pixel(x, y),
                "({x},{y}) changed away from the boxes"
            );
            checked += 1;
        }
    }
    assert!(checked > 1_000_000, "{checked}");
}

#[test]
fn detect_text_output_with_blazeface() {
    store();
    let o = run(&[
        "detect",
        "-i",
        s(&sample("astronaut.png")),
        "--detector",
        "blazeface",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("1 face(s) found by blazeface"), "{stdout}");
    assert!(stdout.contains("blazeface_front:cpu"), "{stdout}");
}

#[test]
fn without_the_safety_model_nothing_is_processed() {
    let models = tempfile::tempdir().unwrap();
    let out = models.path().join("never.png");
    let o = run(&[
        "detect",
        "-i",
        s(&sample("t1.jpg")),
        "--models-dir",
        s(models.path()),
        "-o",
        s(&out),
    ]);
    refused(&o, "content-safety gate");
    refused(&o, "camshow models fetch nudenet");
    assert!(!out.exists());
}

#[test]
fn there_is_no_way_to_switch_the_gate_off() {
    // No option of any command names the gate, NSFW filtering or skipping a
    // check (the option lines of every help, sub-commands included).
    let commands: &[&[&str]] = &[
        &[],
        &["swap"],
        &["live"],
        &["detect"],
        &["faces", "scan"],
        &["faces", "identity"],
        &["config"],
        &["config", "set"],
        &["models"],
        &["models", "fetch"],
        &["models", "import"],
        &["bench"],
        &["doctor"],
        &["cameras"],
        &["join"],
    ];
    for cmd in commands {
        let mut args = cmd.to_vec();
        args.push("--help");
        let o = run(&args);
        let (help, stderr) = text(&o);
        assert!(o.status.success(), "{args:?}: {stderr}");
        let options: Vec<&str> = help
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with('-'))
            .map(|l| l.split("  ").next().unwrap_or(l))
            .collect();
        assert!(
            !options.is_empty() || cmd.is_empty(),
            "{args:?}: no options in {help}"
        );
        for opt in options {
            let o = opt.to_lowercase();
            for word in [
                "nsfw", "safety", "unsafe", "gate", "nudity", "skip", "disable", "no-check",
                "filter",
            ] {
                assert!(
                    !o.contains(word),
                    "`camshow {}` has the option {opt:?}",
                    cmd.join(" ")
                );
            }
        }
    }
    // Nor does the settings schema have such a key.
    let o = run(&["config", "schema"]);
    let schema = text(&o).0.to_lowercase();
    for word in ["nsfw", "safety", "unsafe", "nudity"] {
        assert!(
            !schema.contains(&format!("\"{word}")),
            "the settings have a {word} key"
        );
    }
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
        (
            vec!["detect", "-i", s(&sample("t1.jpg")), "--detector", "yolo"],
            "unknown detector",
        ),
        (
            vec![
                "detect",
                "-i",
                s(&sample("t1.jpg")),
                "--execution-provider",
                "tpu",
            ],
            "unknown execution provider",
        ),
        (
            vec![
                "detect",
                "-i",
                s(&sample("t1.jpg")),
                "-o",
                "/nonexistent-dir/out.png",
            ],
            "output folder does not exist",
        ),
        (
            vec![
                "detect",
                "-i",
                s(&sample("t1.jpg")),
                "-o",
                s(&dir.path().join("out.bmp")),
            ],
            "unsupported output format",
        ),
    ] {
        refused(&run(&args), expect);
    }
}

#[test]
fn truncated_and_corrupt_pictures_are_one_line_errors() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let t1 = std::fs::read(sample("t1.jpg")).unwrap();
    let astro = sample("astronaut.png");
    // Cut inside the header, and inside the picture (a decoder would fill the rest grey).
    for (name, len) in [("head.jpg", 300), ("half.jpg", t1.len() / 2)] {
        let cut = dir.path().join(name);
        std::fs::write(&cut, &t1[..len]).unwrap();
        let out = dir.path().join("out.png");
        for args in [
            vec!["swap", "-s", s(&astro), "-t", s(&cut), "-o", s(&out)],
            vec!["swap", "-s", s(&cut), "-t", s(&astro), "-o", s(&out)],
            vec!["detect", "-i", s(&cut)],
        ] {
            let o = run(&args);
            let (_, stderr) = text(&o);
            assert!(!o.status.success(), "{args:?}");
            assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
            assert!(
                stderr.contains(&format!("{} is a truncated JPEG", cut.display())),
                "{stderr}"
            );
            assert!(!out.exists());
        }
    }
    // A broken PNG: one line, the cause said once.
    let png = std::fs::read(&astro).unwrap();
    let broken = dir.path().join("broken.png");
    let mut b = png[..200].to_vec();
    b.extend(std::iter::repeat_n(0u8, 500));
    std::fs::write(&broken, &b).unwrap();
    let o = run(&["detect", "-i", s(&broken)]);
    let (_, stderr) = text(&o);
    assert!(!o.status.success());
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: cannot decode image"), "{stderr}");
    let cause = stderr.trim_end().rsplit(": ").next().unwrap();
    assert_eq!(
        stderr.matches(cause).count(),
        1,
        "a cause repeated: {stderr}"
    );
}

#[test]
fn a_requested_provider_that_does_not_attach_is_an_error_not_a_cpu_run() {
    store();
    let o = run(&[
        "detect",
        "-i",
        s(&sample("astronaut.png")),
        "--execution-provider",
        "cuda,cpu",
    ]);
    let (_, stderr) = text(&o);
    assert!(
        !o.status.success(),
        "ran although CUDA is not available here"
    );
    assert!(
        stderr.contains("execution provider cuda was requested"),
        "{stderr}"
    );
}

#[test]
fn a_missing_runtime_library_is_reported() {
    let o = Command::new(env!("CARGO_BIN_EXE_camshow"))
        .args(["detect", "-i", s(&sample("t1.jpg"))])
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    refused(&o, "ORT_DYLIB_PATH");
}

/// The runtime is looked for in order, each place only when the ones
/// before it have none: with the library in the setup cache no Python is
/// started (the probe for an `onnxruntime` package costs 0.2 s).
#[test]
fn no_python_is_started_when_the_setup_cache_has_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("python-was-run");
    let python = dir.path().join("python");
    std::fs::write(
        &python,
        format!("#!/bin/sh\n: > '{}'\nexit 1\n", marker.display()),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&python).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&python, perms).unwrap();
    let cache = dir.path().join("cache");
    let doctor = |cache: &Path| {
        Command::new(env!("CARGO_BIN_EXE_camshow"))
            .args(["doctor", "--json"])
            .env_remove("ORT_DYLIB_PATH")
            .env("CAMSHOW_CACHE", cache)
            .env("CAMSHOW_PYTHON", &python)
            .env("PATH", dir.path())
            .output()
            .unwrap()
    };
    // A (fake) library in the setup cache: found there, Python never asked.
    let lib_dir = cache.join("onnxruntime/1.32.0");
    std::fs::create_dir_all(&lib_dir).unwrap();
    std::fs::write(lib_dir.join("libonnxruntime.so.1.32.0"), b"not a library").unwrap();
    let o = doctor(&cache);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("libonnxruntime.so.1.32.0"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!marker.exists(), "Python was started");
    // Without it, the package probe runs (and the test's stand-in sees it).
    std::fs::remove_dir_all(cache.join("onnxruntime")).unwrap();
    doctor(&cache);
    assert!(marker.exists(), "the onnxruntime package probe did not run");
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
    let cpu = v["onnxruntime"]["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "cpu")
        .unwrap()
        .clone();
    assert_eq!(cpu["usable"], true);
    // (Test builds say so: the gate's test marker is on in them.)
    assert!(
        v["safety_gate"].as_str().unwrap().starts_with("ready"),
        "{v}"
    );
    assert!(
        v["ffmpeg"]["ffmpeg"]
            .as_str()
            .unwrap()
            .starts_with("ffmpeg version")
    );
    assert!(
        v["ffmpeg"]["video_encoders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "libx264")
    );
    let centerface = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "centerface")
        .unwrap()
        .clone();
    assert_eq!(centerface["ok"], true);
    // The human-readable form too.
    let o = run(&["doctor"]);
    let (stdout, _) = text(&o);
    assert!(
        stdout.contains("found via   setup cache")
            && stdout.contains("provider    cpu       usable"),
        "{stdout}"
    );
    // What to do next: inswapper (not installed here), and the GPU runtime
    // when the library has no accelerator (the CPU wheel's case).
    assert!(
        stdout.contains("camshow models fetch inswapper_128 w600k_r50"),
        "{stdout}"
    );
    assert!(stdout.contains("camshow models import FILE"), "{stdout}");
    let accelerated = v["onnxruntime"]["providers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] != "cpu" && p["available"] == true);
    assert_eq!(
        stdout.contains("pip install onnxruntime-gpu"),
        !accelerated,
        "{stdout}"
    );
    assert!(
        v["hints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h.as_str().unwrap().contains("inswapper"))
    );
    let o = run(&["models", "list"]);
    assert!(
        text(&o).0.contains("camshow models import FILE"),
        "{}",
        text(&o).0
    );
    // The ORT_DYLIB_PATH route is reported as such.
    let lib = v["onnxruntime"]["library"].as_str().unwrap().to_string();
    let o = Command::new(env!("CARGO_BIN_EXE_camshow"))
        .args(["doctor", "--json"])
        .env("ORT_DYLIB_PATH", &lib)
        .output()
        .unwrap();
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
    assert_eq!(
        insw["sha256"][0],
        "e4a3f08c753cb72d04e10aa0f7dbe3deebbf39567d4ead6dce08e98aa49e16af"
    );

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
    let o = run(&[
        "models",
        "verify",
        "blazeface_back",
        "--models-dir",
        s(&models),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).0.contains("corrupt"), "{}", text(&o).0);
    let o = run(&["models", "list", "--models-dir", s(&models)]);
    assert!(text(&o).0.contains("CORRUPT"));

    // An unrelated file is refused.
    let o = run(&[
        "models",
        "import",
        s(&sample("astronaut.png")),
        "--models-dir",
        s(&models),
    ]);
    refused(&o, "matches no model");
}

#[cfg(unix)]
#[test]
fn non_utf8_paths_are_fine() {
    use std::os::unix::ffi::OsStrExt;
    store();
    let dir = tempfile::tempdir().unwrap();
    let input = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"ast\xffronaut.png"));
    std::fs::copy(sample("astronaut.png"), &input).unwrap();
    let out = dir.path().join(std::ffi::OsStr::from_bytes(b"out\xfe.png"));
    let o = camshow(&[
        std::ffi::OsStr::new("detect"),
        std::ffi::OsStr::new("-i"),
        input.as_os_str(),
        std::ffi::OsStr::new("-o"),
        out.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(out.is_file());
    let os = std::ffi::OsStr::new;
    let b = |bytes: &[u8]| dir.path().join(std::ffi::OsStr::from_bytes(bytes));
    // swap, image: source and target with non-UTF-8 names.
    let target = b(b"t\xff1.jpg");
    std::fs::copy(sample("t1.jpg"), &target).unwrap();
    let swapped = b(b"sw\xfeap.png");
    let o = camshow(&[
        os("swap"),
        os("-s"),
        input.as_os_str(),
        os("-t"),
        target.as_os_str(),
        os("-o"),
        swapped.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(swapped.is_file());
    // An output folder: the name made from the inputs keeps their bytes (no lossy renaming).
    let folder = b(b"outs\xfd");
    std::fs::create_dir(&folder).unwrap();
    let o = camshow(&[
        os("swap"),
        os("-s"),
        input.as_os_str(),
        os("-t"),
        target.as_os_str(),
        os("-o"),
        folder.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let made: Vec<Vec<u8>> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    assert_eq!(made, vec![b"ast\xffronaut-t\xff1.jpg".to_vec()], "{made:?}");
    // swap, video, and faces scan of that video.
    let clip = b(b"cl\xffip.mp4");
    let tmp = dir.path().join("clip.mp4");
    let st = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-loop",
            "1",
            "-framerate",
            "10",
            "-i",
            s(&sample("astronaut.png")),
            "-t",
            "1",
        ])
        .args(["-vf", "format=yuv420p", "-c:v", "libx264", s(&tmp)])
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::rename(&tmp, &clip).unwrap();
    let vout = b(b"v\xfeout.mp4");
    let o = camshow(&[
        os("swap"),
        os("-s"),
        target.as_os_str(),
        os("-t"),
        clip.as_os_str(),
        os("-o"),
        vout.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(vout.is_file());
    let map = b(b"m\xfeap.json");
    let arc = format!("w600k_r50={}", parity_model("w600k_r50.onnx"));
    let o = camshow(&[
        os("faces"),
        os("scan"),
        clip.as_os_str(),
        os("-o"),
        map.as_os_str(),
        os("--model-file"),
        os(&arc),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(map.is_file());
    // models import, from a file whose name is not UTF-8.
    let spec = camshow_core::models::find("blazeface_back").unwrap();
    let model = b(b"mod\xffel.onnx");
    std::fs::copy(store().path(spec), &model).unwrap();
    let models = dir.path().join("models");
    let o = camshow(&[
        os("models"),
        os("import"),
        model.as_os_str(),
        os("--models-dir"),
        models.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(text(&o).0.contains("as blazeface_back"), "{}", text(&o).0);
    assert_eq!(
        std::fs::read(models.join(spec.file)).unwrap(),
        std::fs::read(&model).unwrap()
    );
}

fn decode(p: &Path) -> image::RgbImage {
    image::open(p).unwrap().to_rgb8()
}

#[test]
fn classic_swap_of_the_astronaut_onto_six_faces_changes_only_the_faces() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    let o = run(&[
        "swap",
        "-s",
        s(&sample("astronaut.png")),
        "-t",
        s(&sample("t1.jpg")),
        "-o",
        s(&out),
        "--many-faces",
        "--json",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["swapper"], "classic");
    assert_eq!(
        (v["faces_found"].as_u64(), v["faces_swapped"].as_u64()),
        (Some(6), Some(6))
    );
    assert!(
        v["note"]
            .as_str()
            .unwrap()
            .contains("camshow models fetch inswapper_128")
    );
    assert!(
        exiftool("XMP-iptcExt:DigitalSourceType", &out)
            .ends_with("compositeWithTrainedAlgorithmicMedia")
    );
    assert_eq!(exiftool("XMP-camshow:Operation", &out), "face-swap");

    // The classic swapper's feather reaches 15 % past the box.
    let changed = changes_per_face(&sample("t1.jpg"), &out, 0.15);
    assert_eq!(changed.len(), 6);
    // Every face really changed: a good part of its box.
    for (i, (n, area)) in changed.iter().enumerate() {
        assert!(
            n > &(area / 3),
            "face {i}: only {n} of {area} pixels changed"
        );
    }
}

/// The faces `camshow detect` finds in `image`: their boxes.
fn detected_boxes(image: &Path) -> Vec<[f32; 4]> {
    let o = run(&["detect", "-i", s(image), "--json"]);
    let det: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    det["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let b: Vec<f32> = f["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            [b[0], b[1], b[2], b[3]]
        })
        .collect()
}

/// For each face of `before` (its box grown by `grow` of its size on each
/// side): how many pixels differ in `after`, and the box's area. Fails on a
/// changed pixel outside every face.
fn changes_per_face(before: &Path, after: &Path, grow: f32) -> Vec<(usize, usize)> {
    let boxes = detected_boxes(before);
    let (before, after) = (decode(before), decode(after));
    assert_eq!(before.dimensions(), after.dimensions());
    let mut changed = vec![0usize; boxes.len()];
    for (x, y, p) in after.enumerate_pixels() {
        if p == before.get_pixel(x, y) {
            continue;
        }
        let (fx, fy) = (x as f32, y as f32);
        let hit = boxes.iter().position(|b| {
            let (mw, mh) = ((b[2] - b[0]) * grow, (b[3] - b[1]) * grow);
            fx >= b[0] - mw && fx <= b[2] + mw && fy >= b[1] - mh && fy <= b[3] + mh
        });
        let i = hit.unwrap_or_else(|| {
            // How far out, in box sizes, from the nearest box.
            let away = boxes
                .iter()
                .map(|b| {
                    let gx = (b[0] - fx).max(fx - b[2]).max(0.0) / (b[2] - b[0]);
                    let gy = (b[1] - fy).max(fy - b[3]).max(0.0) / (b[3] - b[1]);
                    gx.max(gy)
                })
                .fold(f32::INFINITY, f32::min);
            panic!(
                "pixel ({x},{y}) changed outside every face, {away:.2} box sizes from the nearest"
            )
        });
        changed[i] += 1;
    }
    boxes
        .iter()
        .zip(changed)
        .map(|(b, n)| (n, ((b[2] - b[0]) * (b[3] - b[1])) as usize))
        .collect()
}

#[test]
fn swap_takes_the_inswapper_path_when_its_model_is_present() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    let insw = format!("inswapper_128={}", parity_model("inswapper_128.onnx"));
    let arc = format!("w600k_r50={}", parity_model("w600k_r50.onnx"));
    let o = run(&[
        "swap",
        "-s",
        s(&sample("astronaut.png")),
        "-t",
        s(&sample("t1.jpg")),
        "-o",
        s(&out),
        "--many-faces",
        "--json",
        "--model-file",
        &insw,
        "--model-file",
        &arc,
        "--paste-back",
        "reference",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["swapper"], "inswapper_128", "{stdout}");
    assert_eq!(v["faces_swapped"], 6);
    assert!(v["note"].is_null());
    assert!(
        v["providers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().starts_with("inswapper_128:"))
    );
    assert!(
        exiftool("XMP-iptcExt:DigitalSourceType", &out)
            .ends_with("compositeWithTrainedAlgorithmicMedia")
    );
    // The model's output is pasted into each of the six faces, and nowhere
    // else: insightface's paste covers the 128 px aligned crop, which reaches
    // up to 0.59 of a box past CenterFace's tight boxes here (measured).
    let changed = changes_per_face(&sample("t1.jpg"), &out, 0.65);
    assert_eq!(changed.len(), 6);
    for (i, (n, area)) in changed.iter().enumerate() {
        assert!(
            n > &(area / 3),
            "face {i}: only {n} of {area} pixels changed"
        );
    }
}

#[test]
fn reference_selection_swaps_only_the_matching_person() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    let arc = format!("w600k_r50={}", parity_model("w600k_r50.onnx"));
    // The reference is the target itself: its most prominent face matches exactly (cosine 1).
    let o = run(&[
        "swap",
        "-s",
        s(&sample("astronaut.png")),
        "-t",
        s(&sample("t1.jpg")),
        "-o",
        s(&out),
        "--json",
        "--face-selector",
        "reference",
        "--reference-face",
        s(&sample("t1.jpg")),
        "--similarity",
        "0.99999",
        "--model-file",
        &arc,
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (v["faces_found"].as_u64(), v["faces_swapped"].as_u64()),
        (Some(6), Some(1)),
        "{stdout}"
    );
    assert_eq!(exiftool("XMP-camshow:Operation", &out), "face-swap");
    // Which face: exactly one of the six regions changed — the most
    // prominent one (the largest, highest-scoring face, which the reference
    // `t1.jpg` picks) — and the other five are the input's, pixel for pixel.
    let o = run(&["detect", "-i", s(&sample("t1.jpg")), "--json"]);
    let faces: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    let input = image::open(sample("t1.jpg")).unwrap().to_rgb8();
    let output = image::open(&out).unwrap().to_rgb8();
    let diffs: Vec<f64> = faces["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let b: Vec<u32> = (0..4)
                .map(|i| f["bbox"][i].as_f64().unwrap().max(0.0) as u32)
                .collect();
            let mut sum = 0u64;
            for y in b[1]..b[3] {
                for x in b[0]..b[2] {
                    for c in 0..3 {
                        sum +=
                            u64::from(input.get_pixel(x, y)[c].abs_diff(output.get_pixel(x, y)[c]));
                    }
                }
            }
            sum as f64 / f64::from((b[2] - b[0]) * (b[3] - b[1]) * 3)
        })
        .collect();
    let changed: Vec<usize> = (0..diffs.len()).filter(|&i| diffs[i] > 3.0).collect();
    assert_eq!(changed.len(), 1, "{diffs:?}");
    assert!(
        diffs.iter().filter(|d| **d == 0.0).count() == 5,
        "{diffs:?}"
    );
    // A reference that matches nobody: the picture is written, labelled as
    // having no face swapped.
    let none = dir.path().join("none.png");
    let o = run(&[
        "swap",
        "-s",
        s(&sample("astronaut.png")),
        "-t",
        s(&sample("t1.jpg")),
        "-o",
        s(&none),
        "--json",
        "--face-selector",
        "reference",
        "--reference-face",
        s(&sample("astronaut.png")),
        "--similarity",
        "0.99999",
        "--model-file",
        &arc,
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["faces_swapped"], 0, "{stdout}");
    assert_eq!(exiftool("XMP-camshow:Operation", &none), "no-face-swapped");
    assert!(exiftool("XMP-dc:Description", &none).starts_with("no face swapped"));
    // Without a reference image the mode is refused up front.
    let o = run(&[
        "swap",
        "-s",
        s(&sample("astronaut.png")),
        "-t",
        s(&sample("t1.jpg")),
        "-o",
        s(&out),
        "--face-selector",
        "reference",
    ]);
    refused(&o, "--reference-face");
}

#[test]
fn swap_errors_are_clear_and_write_nothing() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let blank = dir.path().join("blank.png");
    image::RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128]))
        .save(&blank)
        .unwrap();
    let out = dir.path().join("out.png");
    for (args, expect) in [
        (
            vec![
                "swap",
                "-s",
                s(&blank),
                "-t",
                s(&sample("t1.jpg")),
                "-o",
                s(&out),
            ],
            "no face found in the source image",
        ),
        (
            vec![
                "swap",
                "-s",
                s(&sample("astronaut.png")),
                "-t",
                s(&blank),
                "-o",
                s(&out),
            ],
            "no face found in the target",
        ),
        (
            vec![
                "swap",
                "-s",
                s(&sample("astronaut.png")),
                "-t",
                s(&sample("t1.jpg")),
                "-o",
                s(&out),
                "--swapper",
                "inswapper",
                "--models-dir",
                s(&camshow_core::paths::models_dir()),
            ],
            "camshow models fetch inswapper_128",
        ),
        (
            vec![
                "swap",
                "-s",
                s(&sample("astronaut.png")),
                "-t",
                s(&sample("t1.jpg")),
                "-o",
                s(&out),
                "--model-file",
                "nudenet=/etc/hostname",
            ],
            "content-safety model cannot be replaced",
        ),
        (
            vec![
                "swap",
                "-s",
                s(&sample("astronaut.png")),
                "-t",
                s(&sample("t1.jpg")),
                "-o",
                s(&dir.path().join("x.mp3")),
            ],
            "unsupported output format",
        ),
    ] {
        refused(&run(&args), expect);
        assert!(!out.exists(), "{args:?} wrote an output");
    }
}

#[test]
fn a_folder_output_gets_the_deep_live_cam_name() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let o = run(&[
        "swap",
        "-s",
        s(&sample("astronaut.png")),
        "-t",
        s(&sample("t1.jpg")),
        "-o",
        s(dir.path()),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(dir.path().join("astronaut-t1.jpg").is_file());
    assert!(text(&o).0.contains("swapped 1 of 6"), "{}", text(&o).0);
}

#[test]
fn face_map_on_an_image_swaps_only_mapped_people() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("t1map.json");
    let arc = format!("w600k_r50={}", parity_model("w600k_r50.onnx"));
    let o = run(&[
        "faces",
        "scan",
        s(&sample("t1.jpg")),
        "-o",
        s(&map),
        "--cluster-distance",
        "0.1",
        "--model-file",
        &arc,
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&map).unwrap()).unwrap();
    assert_eq!(
        m["people"].as_array().unwrap().len(),
        6,
        "six different people in t1.jpg"
    );
    m["people"][2]["source"] = serde_json::Value::String(s(&sample("astronaut.png")).into());
    m["people"][4]["source"] = serde_json::Value::String(s(&sample("astronaut.png")).into());
    std::fs::write(&map, serde_json::to_vec(&m).unwrap()).unwrap();
    let out = dir.path().join("out.png");
    let o = run(&[
        "swap",
        "--map",
        s(&map),
        "-t",
        s(&sample("t1.jpg")),
        "-o",
        s(&out),
        "--json",
        "--model-file",
        &arc,
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["faces_found"].as_u64(), v["faces_swapped"].as_u64()),
        (Some(6), Some(2)),
        "{v}"
    );
    // --map and --source are exclusive.
    let o = run(&[
        "swap",
        "--map",
        s(&map),
        "-s",
        s(&sample("astronaut.png")),
        "-t",
        s(&sample("t1.jpg")),
        "-o",
        s(&out),
    ]);
    refused(&o, "'--map <MAP.json>' cannot be used with '--source");
}

#[test]
fn the_processor_chain_runs_from_the_command_line() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.png");
    let chained = dir.path().join("chained.png");
    let o = run(&[
        "swap",
        "-s",
        s(&sample("astronaut.png")),
        "-t",
        s(&sample("t1.jpg")),
        "-o",
        s(&plain),
        "--many-faces",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let gfpgan = format!("gfpgan_1.4={}", parity_model("gfpgan_1.4.onnx"));
    let lm = format!("2d106det={}", parity_model("2d106det.onnx"));
    let o = run(&[
        "swap",
        "-s",
        s(&sample("astronaut.png")),
        "-t",
        s(&sample("t1.jpg")),
        "-o",
        s(&chained),
        "--many-faces",
        "--json",
        "--frame-processor",
        "face_swapper",
        "face_enhancer",
        "--mouth-mask",
        "40",
        "--sharpness",
        "1",
        "--opacity",
        "0.9",
        "--model-file",
        &gfpgan,
        "--model-file",
        &lm,
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v["processors"],
        serde_json::json!(["face_swapper", "face_enhancer"])
    );
    assert_eq!(v["faces_swapped"], 6);
    assert!(
        v["providers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().starts_with("gfpgan_1.4:"))
    );
    assert!(
        exiftool("XMP-iptcExt:DigitalSourceType", &chained)
            .ends_with("compositeWithTrainedAlgorithmicMedia")
    );
    let (a, b, t) = (decode(&plain), decode(&chained), decode(&sample("t1.jpg")));
    let differ = a.pixels().zip(b.pixels()).filter(|(x, y)| x != y).count();
    assert!(
        differ > 10_000,
        "the chain changed only {differ} pixels against the plain swap"
    );
    // Pixels far from every face are untouched by the whole chain.
    for (x, y) in [(5u32, 5u32), (640, 870), (1275, 880), (5, 880)] {
        assert_eq!(b.get_pixel(x, y), t.get_pixel(x, y));
    }

    // Bad chains and values are refused before anything is written.
    let bad = dir.path().join("bad.png");
    let (astro, t1) = (sample("astronaut.png"), sample("t1.jpg"));
    for (extra, expect) in [
        (
            &["--frame-processor", "face_swapper", "face_swapper"][..],
            "processors[1]: face_swapper is in the chain twice",
        ),
        (
            &["--frame-processor", "frame_colorizer"],
            "unknown frame processor \"frame_colorizer\" (known: face_swapper, face_enhancer)",
        ),
        (
            &["--opacity", "2"],
            "processors[0].opacity: 2 is not in 0–1",
        ),
        (
            &["--sharpness", "9"],
            "processors[0].sharpness: 9 is not in 0–5",
        ),
        (
            &["--mouth-mask", "101"],
            "processors[0].mouth_mask: 101 is not in 0–100",
        ),
        (
            &[
                "--face-enhancer-model",
                "gpen_bfr_2048",
                "--frame-processor",
                "face_enhancer",
            ],
            "processors[0].model: unknown face enhancer model \"gpen_bfr_2048\" (gfpgan_1.4,",
        ),
        (
            &["--face-mask", "hair"],
            "unknown face mask \"hair\" (box, occlusion, region)",
        ),
        (
            &["--face-mask", "region", "--face-mask-regions", "hair"],
            "processors[0].mask_regions: unknown face region \"hair\" (skin,",
        ),
    ] {
        let mut args = vec!["swap", "-s", s(&astro), "-t", s(&t1), "-o", s(&bad)];
        args.extend_from_slice(extra);
        refused(&run(&args), expect);
        assert!(!bad.exists());
    }
    // An enhancer that is not installed says how to get it.
    let o = run(&[
        "swap",
        "-s",
        s(&sample("astronaut.png")),
        "-t",
        s(&sample("t1.jpg")),
        "-o",
        s(&bad),
        "--frame-processor",
        "face_swapper",
        "face_enhancer",
        "--face-enhancer-model",
        "gpen_bfr_512",
    ]);
    refused(&o, "camshow models fetch");
    assert!(!bad.exists());

    // Every processor is documented in --help.
    let o = run(&["swap", "--help"]);
    let help = text(&o).0;
    for word in [
        "--frame-processor",
        "face_enhancer",
        "--face-enhancer-blend",
        "--mouth-mask",
        "--opacity",
        "--sharpness",
        "--pixel-boost",
        "--face-mask",
        "--colour-match",
        "seamless",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
}

/// `camshow bench stand-ins` builds the compute-faithful stand-ins, runs
/// them on ONNX Runtime and reports their cost next to their size.
#[test]
fn bench_stand_ins_times_models_of_the_real_size() {
    let o = run(&[
        "bench",
        "stand-ins",
        "--runs",
        "1",
        "--json",
        "--execution-threads",
        "2",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let rows: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let rows = rows.as_array().unwrap();
    let get = |id: &str| rows.iter().find(|r| r["model"] == id).unwrap().clone();
    let (r50, swap) = (get("w600k_r50"), get("inswapper_128"));
    let (det, gfpgan) = (get("det_10g"), get("gfpgan_1.4"));
    // IResNet-50: 6.3 GMAC, 43.6 M weights; inswapper_128: 138 M weights
    // (its 554 MB); SCRFD-10G: 13.3 GMAC at 640×640; GFPGAN 1.4: 85 M (340 MB).
    assert!((6.0..6.6).contains(&r50["gmac"].as_f64().unwrap()), "{r50}");
    assert!(
        (130.0..142.0).contains(&swap["weights_m"].as_f64().unwrap()),
        "{swap}"
    );
    assert!(
        (12.0..14.5).contains(&det["gmac"].as_f64().unwrap()),
        "{det}"
    );
    assert!(
        (80.0..88.0).contains(&gfpgan["weights_m"].as_f64().unwrap()),
        "{gfpgan}"
    );
    assert_eq!(rows.len(), 4, "{rows:?}");
    for r in [&r50, &swap, &det, &gfpgan] {
        assert!(r["p50_ms"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(r["providers"], serde_json::json!(["cpu"]), "{r}");
        // The CPU against itself: the same numbers.
        assert_eq!(r["max_abs_diff_vs_cpu"], 0.0, "{r}");
        assert_eq!(r["max_rel_diff_vs_cpu"], 0.0, "{r}");
        assert_eq!(r["graph_sessions"], 0, "{r}");
    }
}

/// `bench stand-ins --write` puts stand-ins where any command takes them
/// with `--model-file`: an image swap with the cheap detector finds its one
/// face in the source and the target and swaps it; an unknown id is refused.
#[test]
fn stand_ins_written_to_a_folder_serve_any_command() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("stand-ins");
    let o = run(&[
        "bench",
        "stand-ins",
        "--write",
        s(&models),
        "--only",
        "det_10g_cheap",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let file = models.join("det_10g_cheap.onnx");
    assert_eq!(
        stdout.trim(),
        format!("--model-file det_10g={}", file.display())
    );
    let out = dir.path().join("out.png");
    let o = run(&[
        "swap",
        "-s",
        s(&sample("astronaut.png")),
        "-t",
        s(&sample("t1.jpg")),
        "-o",
        s(&out),
        "--detector",
        "scrfd",
        "--model-file",
        &format!("det_10g={}", file.display()),
        "--json",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["faces_swapped"], 1, "{v}");
    assert!(out.is_file());
    let o = run(&[
        "bench",
        "stand-ins",
        "--write",
        s(&models),
        "--only",
        "det_500m",
    ]);
    refused(&o, "no stand-in called \"det_500m\"");
    assert!(!models.join("det_500m.onnx").exists());
}

/// `camshow bench video` times the job against FFmpeg's own decode + encode
/// of the same clip (the codec floor), reports the time to the first frame
/// and the gate's share, and runs with the cheap stand-in detector.
#[test]
fn bench_video_reports_the_codec_floor_first_frame_and_gate_time() {
    let o = run(&[
        "bench",
        "video",
        "-s",
        s(&sample("astronaut.png")),
        "--seconds",
        "2",
        "--stand-ins",
        "cheap",
        "--json",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["frames"], 20, "{v}");
    assert_eq!(v["detector"], "scrfd", "{v}");
    assert_eq!(v["swapper"], "classic", "{v}");
    assert_eq!(v["encoder"], "libx264", "{v}");
    let get = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k}: {v}"));
    let (e2e, floor, first, gate) = (
        get("end_to_end_seconds"),
        get("codec_floor_seconds"),
        get("first_frame_seconds"),
        get("gate_seconds"),
    );
    assert!(floor > 0.0 && first > 0.0 && gate > 0.0, "{v}");
    // The gate's time is summed over its threads.
    let threads = camshow_core::safety::GATE_SESSIONS as f64;
    assert!(first < e2e && gate < threads * e2e, "{v}");
    assert!(
        (get("ratio_to_codec_floor") - e2e / floor).abs() < 1e-9,
        "{v}"
    );
    // Checks on frames 0, 2, …, 18 and the last.
    assert_eq!(v["safety_checks"], 11, "{v}");
    // On the CPU: no NVDEC (the models do not run on an NVIDIA GPU).
    assert_eq!(v["gpu_decode"], false, "{v}");
    // Each model with its providers and sessions: the gate's several.
    let gate = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "nudenet")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(gate["providers"], serde_json::json!(["cpu"]), "{v}");
    assert_eq!(gate["sessions"], camshow_core::safety::GATE_SESSIONS, "{v}");
    assert_eq!(gate["graph_sessions"], 0, "{v}");
    // The cheap stand-in finds its one face in every frame: all swapped,
    // so the model-bound pass did real work too.
    assert!(get("model_bound_fps") > 0.0, "{v}");
}
