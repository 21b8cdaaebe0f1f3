//! The content-safety gate refusing end to end, on every entry point that
//! touches pixels, driven by the test marker (`camshow-core/test-marker`,
//! on in test builds only: a picture carrying its pink and lime checkerboard
//! is unsafe too; no unsafe asset is ever shipped).

use std::path::Path;
use std::process::Output;

use camshow_test_utils::{marked, parity_model, sample, store};

use super::{run, s, text};

/// Refused by the gate, on one line, naming `file`, with nothing written.
fn refused(o: &Output, file: &Path, outputs: &[&Path]) {
    let (_, stderr) = text(o);
    assert!(!o.status.success(), "not refused: {stderr}");
    assert!(
        stderr.contains("refused by the content-safety gate") && stderr.contains("TEST_MARKER"),
        "{stderr}"
    );
    let name = file.file_name().unwrap().to_string_lossy();
    assert!(
        stderr.contains(name.as_ref()),
        "{stderr} does not name {name}"
    );
    // One line of error (a warning about a stand-in model file may precede it).
    let errors: Vec<&str> = stderr.lines().filter(|l| !l.contains(" WARN ")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for out in outputs {
        assert!(!out.exists(), "{} written", out.display());
    }
}

#[test]
fn every_image_entry_point_refuses_a_marked_picture() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (astro, t1) = (sample("astronaut.png"), sample("t1.jpg"));
    let arc = format!("w600k_r50={}", parity_model("w600k_r50.onnx"));
    let m_astro = marked(&astro, d.join("m-astro.png"), (0, 0, 80, 80));
    let m_t1 = marked(&t1, d.join("m-t1.png"), (0, 0, 120, 120));
    let out = d.join("out.png");
    // The doctor says this is a test build.
    let (doctor, _) = text(&run(&["doctor"]));
    assert!(doctor.contains("TEST BUILD"), "{doctor}");
    // Unmarked, the same runs pass: the refusals below are the marker's doing.
    assert!(
        run(&["swap", "-s", s(&astro), "-t", s(&t1), "-o", s(&out)])
            .status
            .success()
    );
    std::fs::remove_file(&out).unwrap();

    let o = run(&["swap", "-s", s(&m_astro), "-t", s(&t1), "-o", s(&out)]);
    refused(&o, &m_astro, &[&out]);
    let o = run(&["swap", "-s", s(&astro), "-t", s(&m_t1), "-o", s(&out)]);
    refused(&o, &m_t1, &[&out]);
    let o = run(&[
        "swap",
        "-s",
        s(&astro),
        "-t",
        s(&t1),
        "-o",
        s(&out),
        "--face-selector",
        "reference",
        "--reference-face",
        s(&m_astro),
        "--model-file",
        &arc,
    ]);
    refused(&o, &m_astro, &[&out]);
    let annotated = d.join("annotated.png");
    let o = run(&["detect", "-i", s(&m_t1), "-o", s(&annotated)]);
    refused(&o, &m_t1, &[&annotated]);
    let map = d.join("map.json");
    let o = run(&[
        "faces",
        "scan",
        s(&m_t1),
        "-o",
        s(&map),
        "--model-file",
        &arc,
    ]);
    refused(&o, &m_t1, &[&map]);
    let identity = d.join("person.json");
    let o = run(&[
        "faces",
        "identity",
        "-s",
        s(&m_astro),
        "-o",
        s(&identity),
        "--model-file",
        &arc,
    ]);
    refused(&o, &m_astro, &[&identity]);
    // A face map whose source photo is marked.
    let o = run(&["faces", "scan", s(&t1), "-o", s(&map), "--model-file", &arc]);
    assert!(o.status.success(), "{}", text(&o).1);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&map).unwrap()).unwrap();
    v["people"][0]["source"] = serde_json::json!(s(&m_astro));
    std::fs::write(&map, v.to_string()).unwrap();
    let o = run(&[
        "swap",
        "--map",
        s(&map),
        "-t",
        s(&t1),
        "-o",
        s(&out),
        "--model-file",
        &arc,
    ]);
    refused(&o, &m_astro, &[&out]);
}

#[test]
fn a_marker_on_the_body_below_a_face_is_found_by_the_context_crop() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let t1 = sample("t1.jpg");
    // 40×40 just below the face at [272, 154, 373, 267]: 0.14 % of the
    // picture and 0.39 % of a 640 px tile (under the marker's 0.5 %), about
    // 1 % of that face's context crop.
    let m = marked(&t1, dir.path().join("body.png"), (300, 300, 40, 40));
    let out = dir.path().join("out.png");
    // Detection alone checks the whole picture and its tiles: it passes.
    assert!(run(&["detect", "-i", s(&m)]).status.success());
    // Swapping that face checks the region around it first: refused.
    let o = run(&[
        "swap",
        "-s",
        s(&sample("astronaut.png")),
        "-t",
        s(&m),
        "-o",
        s(&out),
        "--many-faces",
    ]);
    refused(&o, &m, &[&out]);
}

/// Every command that reads pictures is gated (each has a refusal test: the
/// image ones above, `live` and videos in their own suites, `bench` here);
/// the others read none. A new command must be placed in one list.
#[test]
fn every_command_that_reads_pictures_goes_through_the_gate() {
    store();
    let (help, _) = text(&run(&["--help"]));
    let commands: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert!(commands.len() >= 8, "{help}");
    // Refusals: swap, detect, faces (tests above), live
    // (camshow-media's live_swapping_stops_at_an_unsafe_check…, and the
    // source photo through the engine), bench (below, and the engine).
    // serve: every upload (camshow-server's the_gate_sees_every_upload, and
    // serve_answers_over_http_and_refuses_a_marked_upload below).
    // ui: the desktop app, whose engine thread makes the same calls
    // (camshow-desktop's the_gate_and_missing_models_are_messages_not_crashes,
    // and its window test refusing a marked source opened through `camshow ui`).
    let gated = ["swap", "detect", "faces", "live", "bench", "serve", "ui"];
    let no_pictures = ["doctor", "config", "models", "cameras", "help"];
    // join swaps nothing: it concatenates parts that `swap --segment` made
    // (and gated), refusing any file without a part's tag.
    let swaps_nothing = ["join"];
    for c in &commands {
        assert!(
            gated.contains(&c.as_str())
                || no_pictures.contains(&c.as_str())
                || swaps_nothing.contains(&c.as_str()),
            "the new command {c} must be gated (with a test here) or read no pictures"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let m = marked(
        &sample("astronaut.png"),
        dir.path().join("m.png"),
        (0, 0, 80, 80),
    );
    let o = run(&["bench", "models", "-i", s(&m), "--runs", "1"]);
    refused(&o, &m, &[]);
    let o = run(&["bench", "live", "-s", s(&m), "--seconds", "1"]);
    let (_, stderr) = text(&o);
    assert!(
        !o.status.success() && stderr.contains("TEST_MARKER"),
        "{stderr}"
    );
}

/// `camshow serve` as a user starts it: it says where it listens, answers,
/// refuses a marked upload with the gate's reason, and stops on Ctrl-C.
#[test]
#[cfg(unix)]
fn serve_answers_over_http_and_refuses_a_marked_upload() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = super::serve::serve(dir.path());
    let agent = super::serve::agent();
    let health = agent.get(format!("{base}/v1/health")).call().unwrap();
    assert_eq!(health.status().as_u16(), 200);
    // The browser page and the API's document come with the binary.
    let page = agent.get(format!("{base}/")).call().unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let page = page.into_body().read_to_string().unwrap();
    assert!(
        page.contains("Usage terms") && page.contains("AI-generated"),
        "{page}"
    );
    let doc = agent.get(format!("{base}/v1/openapi.json")).call().unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&doc.into_body().read_to_string().unwrap()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let m = marked(
        &sample("astronaut.png"),
        dir.path().join("m.png"),
        (0, 0, 80, 80),
    );
    let mut body =
        b"--b0\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"m.png\"\r\n\r\n"
            .to_vec();
    body.extend_from_slice(&std::fs::read(&m).unwrap());
    body.extend_from_slice(b"\r\n--b0--\r\n");
    let r = agent
        .post(format!("{base}/v1/sources"))
        .header("Content-Type", "multipart/form-data; boundary=b0")
        .send(&body[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let v: serde_json::Value =
        serde_json::from_str(&r.into_body().read_to_string().unwrap()).unwrap();
    assert_eq!(v["error"]["code"], "unsafe_content", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("TEST_MARKER"),
        "{v}"
    );
    // Ctrl-C stops it cleanly.
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
