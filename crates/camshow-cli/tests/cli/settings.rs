//! Settings from the command line's point of view: the layers (file < env <
//! flag), `camshow config`, and identities from several photos.

use std::path::Path;
use std::process::{Command, Output};

use camshow_test_utils::{parity_model, sample, store};

use super::{s, text};

/// `camshow ARGS` with `env` added and the settings file at `config`.
fn with_env(args: &[&str], config: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_camshow"));
    c.args(args).env("CAMSHOW_CONFIG", config);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn detector_of(o: &Output) -> String {
    let (stdout, stderr) = text(o);
    assert!(o.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    v["detector"].as_str().unwrap().to_string()
}

#[test]
fn each_layer_wins_over_the_one_below() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("camshow.toml");
    let t1 = sample("t1.jpg");
    let detect = ["detect", "-i", s(&t1), "--json"];
    // Default.
    assert_eq!(detector_of(&with_env(&detect, &file, &[])), "centerface");
    // The file over the default.
    std::fs::write(&file, "version = 1\n[engine]\ndetector = \"blazeface\"\n").unwrap();
    assert_eq!(detector_of(&with_env(&detect, &file, &[])), "blazeface");
    // The environment over the file.
    let env = [("CAMSHOW_ENGINE_DETECTOR", "scrfd")];
    let o = with_env(&detect, &file, &env);
    assert!(!o.status.success(), "scrfd is not installed here");
    assert!(text(&o).1.contains("det_10g"), "{}", text(&o).1);
    // The flag over the environment.
    let mut flagged = detect.to_vec();
    flagged.extend(["--detector", "centerface"]);
    assert_eq!(detector_of(&with_env(&flagged, &file, &env)), "centerface");
    // `--config FILE` names another file.
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "[engine]\ndetector = \"centerface\"\n").unwrap();
    let mut explicit = detect.to_vec();
    explicit.extend(["--config", s(&other)]);
    assert_eq!(detector_of(&with_env(&explicit, &file, &[])), "centerface");
    // `config show` says where each value came from.
    let o = with_env(
        &["config", "show", "--json"],
        &file,
        &[("CAMSHOW_VIDEO_WORKERS", "3")],
    );
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["settings"]["engine"]["detector"], "blazeface");
    assert_eq!(v["settings"]["video"]["workers"], 3);
    assert_eq!(v["origins"]["engine.detector"]["layer"], "file");
    assert_eq!(
        v["origins"]["video.workers"]["from"],
        "CAMSHOW_VIDEO_WORKERS"
    );
    assert_eq!(v["origins"]["engine.paste_back"]["layer"], "default");
    let o = with_env(&["config", "show"], &file, &[]);
    assert!(text(&o).0.contains("engine.detector"), "{}", text(&o).0);
    assert!(
        text(&o).0.contains(&format!("# file {}", file.display())),
        "{}",
        text(&o).0
    );
}

#[test]
fn unknown_keys_bad_values_and_corrupt_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("camshow.toml");
    let t1 = sample("t1.jpg");
    let detect = ["detect", "-i", s(&t1)];
    for (content, env, expect) in [
        (
            "[engine]\ndetecter = \"blazeface\"\n",
            None,
            "did you mean `detector`",
        ),
        (
            "[engine]\ndetector = \"blazeface\"\nsimilarity = = 1\n",
            None,
            "line 3, column",
        ),
        (
            "[video]\nquality = 77\n",
            None,
            "video.quality: 77 is not in 0–51",
        ),
        (
            "[[processors]]\ntype = \"face_swapper\"\nopacity = 3\n",
            None,
            "processors[0].opacity: 3 is not in 0–1",
        ),
        (
            "",
            Some(("CAMSHOW_ENGINE_DETECTR", "scrfd")),
            "CAMSHOW_ENGINE_DETECTOR",
        ),
        (
            "",
            Some(("CAMSHOW_ENGINE_DETECTOR", "yolo")),
            "engine.detector",
        ),
    ] {
        std::fs::write(&file, content).unwrap();
        let env: Vec<(&str, &str)> = env.into_iter().collect();
        let o = with_env(&detect, &file, &env);
        let (_, stderr) = text(&o);
        assert!(!o.status.success(), "{content:?} {env:?} was accepted");
        assert!(stderr.contains(expect), "{content:?} {env:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
    // A corrupt file is never silently reset.
    std::fs::write(&file, "[engine\n").unwrap();
    let o = with_env(&["config", "set", "video.workers", "2"], &file, &[]);
    super::refused(&o, "line 1, column 8: unclosed table, expected `]`");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "[engine\n");
}

#[test]
fn config_set_show_and_reset_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("settings").join("camshow.toml");
    let run = |args: &[&str]| with_env(args, &file, &[]);
    let o = run(&["config", "path"]);
    assert_eq!(text(&o).0.trim(), file.display().to_string());
    for (k, v) in [
        ("video.workers", "3"),
        ("engine.detector", "blazeface"),
        ("processors[0].opacity", "0.5"),
        ("processors[1]", "{type = \"face_enhancer\"}"),
        ("processors[1].blend", "40"),
        ("runtime.providers", "cpu"),
    ] {
        let o = run(&["config", "set", k, v]);
        assert!(o.status.success(), "{k}: {}", text(&o).1);
    }
    let bad = run(&["config", "set", "video.qualty", "9"]);
    assert!(
        !bad.status.success() && text(&bad).1.contains("did you mean `quality`"),
        "{}",
        text(&bad).1
    );
    let bad = run(&["config", "set", "processors[0].opacity", "9"]);
    assert!(!bad.status.success());
    let v: serde_json::Value =
        serde_json::from_str(&text(&run(&["config", "show", "--json"])).0).unwrap();
    let st = &v["settings"];
    assert_eq!(st["video"]["workers"], 3);
    assert_eq!(st["engine"]["detector"], "blazeface");
    assert_eq!(st["processors"][0]["opacity"], 0.5);
    assert_eq!(st["processors"][1]["type"], "face_enhancer");
    assert_eq!(st["processors"][1]["blend"], 40);
    assert_eq!(st["runtime"]["providers"][0]["kind"], "cpu");
    assert_eq!(v["origins"]["video.workers"]["layer"], "file");
    let text_file = std::fs::read_to_string(&file).unwrap();
    assert!(text_file.contains("version = 1"), "{text_file}");
    // Reset one key, then everything.
    assert!(run(&["config", "reset", "video.workers"]).status.success());
    let v: serde_json::Value =
        serde_json::from_str(&text(&run(&["config", "show", "--json"])).0).unwrap();
    assert_eq!(v["settings"]["video"]["workers"], 0);
    assert_eq!(v["settings"]["engine"]["detector"], "blazeface");
    assert!(run(&["config", "reset"]).status.success());
    assert!(!file.exists());
    // The schema describes the same settings.
    let o = run(&["config", "schema"]);
    let schema: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    assert!(schema["properties"]["engine"].is_object(), "{schema}");
    assert!(schema["properties"]["processors"].is_object(), "{schema}");
}

fn decode(p: &Path) -> image::RgbImage {
    image::open(p).unwrap().to_rgb8()
}

#[test]
fn an_identity_from_three_photos_is_saved_and_swaps_like_the_photos() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("none.toml");
    let astronaut = sample("astronaut.png");
    // Two more photos of the same person: mirrored, and smaller.
    let img = image::open(&astronaut).unwrap().to_rgb8();
    let mirrored = dir.path().join("mirrored.png");
    image::imageops::flip_horizontal(&img)
        .save(&mirrored)
        .unwrap();
    let small = dir.path().join("small.jpg");
    image::imageops::resize(&img, 300, 300, image::imageops::FilterType::Triangle)
        .save(&small)
        .unwrap();
    let models = ["--swapper", "inswapper", "--model-file"];
    let insw = format!("inswapper_128={}", parity_model("inswapper_128.onnx"));
    let rec = format!("w600k_r50={}", parity_model("w600k_r50.onnx"));
    let mut common: Vec<&str> = models.to_vec();
    common.extend([insw.as_str(), "--model-file", rec.as_str()]);
    let person = dir.path().join("person.json");
    let mut args = vec![
        "faces",
        "identity",
        "-s",
        s(&astronaut),
        "-s",
        s(&mirrored),
        "-s",
        s(&small),
        "-o",
        s(&person),
    ];
    args.extend(common.iter().copied());
    let o = with_env(&args, &config, &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(text(&o).0.contains("3 photo(s)"), "{}", text(&o).0);
    let id: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&person).unwrap()).unwrap();
    assert_eq!(id["embedding"].as_array().unwrap().len(), 512);
    // Swapping with the photos and with the saved identity gives the same picture.
    let t1 = sample("t1.jpg");
    let (a, b) = (
        dir.path().join("photos.png"),
        dir.path().join("identity.png"),
    );
    let mut photos = vec![
        "swap",
        "-s",
        s(&astronaut),
        "-s",
        s(&mirrored),
        "-s",
        s(&small),
        "-t",
        s(&t1),
        "-o",
        s(&a),
        "--json",
    ];
    photos.extend(common.iter().copied());
    let o = with_env(&photos, &config, &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    let v: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    assert_eq!(v["source_photos"], 3);
    assert_eq!(v["swapper"], "inswapper_128");
    let mut saved = vec!["swap", "-s", s(&person), "-t", s(&t1), "-o", s(&b)];
    saved.extend(common.iter().copied());
    let o = with_env(&saved, &config, &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    let (pa, pb, target) = (decode(&a), decode(&b), decode(&t1));
    assert_eq!(pa, pb, "the saved identity swaps exactly like its photos");
    assert_ne!(pa, target);
    // One photo alone gives another identity (the mean of three moved it).
    let c = dir.path().join("one.png");
    let mut one = vec!["swap", "-s", s(&astronaut), "-t", s(&t1), "-o", s(&c)];
    one.extend(common.iter().copied());
    assert!(with_env(&one, &config, &[]).status.success());
    assert_ne!(decode(&c), pa);
    // A folder of the photos is the same as naming them.
    let folder = dir.path().join("photos");
    std::fs::create_dir(&folder).unwrap();
    for p in [&astronaut, &mirrored, &small] {
        std::fs::copy(p, folder.join(p.file_name().unwrap())).unwrap();
    }
    let d = dir.path().join("folder.png");
    let mut from_folder = vec!["swap", "-s", s(&folder), "-t", s(&t1), "-o", s(&d)];
    from_folder.extend(common.iter().copied());
    let o = with_env(&from_folder, &config, &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert_eq!(decode(&d), pa);
}

#[test]
fn no_command_writes_over_one_of_its_inputs() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("none.toml");
    let target = dir.path().join("target.jpg");
    let source = dir.path().join("source.png");
    std::fs::copy(sample("t1.jpg"), &target).unwrap();
    std::fs::copy(sample("astronaut.png"), &source).unwrap();
    let link = dir.path().join("link.jpg");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let before = (
        std::fs::read(&target).unwrap(),
        std::fs::read(&source).unwrap(),
    );
    let spelled = dir.path().join(".").join("target.jpg");
    for (args, expect) in [
        (
            vec!["swap", "-s", s(&source), "-t", s(&target), "-o", s(&target)],
            "is the target",
        ),
        (
            vec![
                "swap",
                "-s",
                s(&source),
                "-t",
                s(&target),
                "-o",
                s(&spelled),
            ],
            "is the target",
        ),
        (
            vec!["swap", "-s", s(&source), "-t", s(&target), "-o", s(&link)],
            "is the target",
        ),
        (
            vec![
                "swap",
                "-s",
                s(&source),
                "-t",
                s(&target),
                "-o",
                s(&dir.path().join("source.png")),
            ],
            "is the source",
        ),
        (
            vec!["detect", "-i", s(&target), "-o", s(&target)],
            "is the input",
        ),
        (
            vec!["faces", "scan", s(&target), "-o", s(&target)],
            "is the target",
        ),
        (
            vec!["faces", "identity", "-s", s(&source), "-o", s(&source)],
            "is the source photo",
        ),
    ] {
        let o = with_env(&args, &config, &[]);
        let (_, stderr) = text(&o);
        assert!(!o.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
    assert_eq!(
        (
            std::fs::read(&target).unwrap(),
            std::fs::read(&source).unwrap()
        ),
        before
    );
}

#[test]
fn deep_live_cam_habits_get_the_command_they_meant() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("none.toml");
    let o = with_env(&["-s", "a.jpg", "-t", "b.mp4", "-o", "c.mp4"], &config, &[]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr.contains("did you mean `camshow swap -s a.jpg -t b.mp4 -o c.mp4`"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // `--keep-fps` and `--keep-audio` are accepted as the defaults they are.
    let o = with_env(&["swap", "--help"], &config, &[]);
    let help = text(&o).0;
    assert!(
        help.contains("--keep-fps") && help.contains("--keep-audio"),
        "{help}"
    );
    assert!(help.contains("--video-workers"), "{help}");
}
