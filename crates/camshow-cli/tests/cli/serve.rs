//! `camshow serve` as a user runs it: killed in the middle of a job and
//! started again, it still lists its jobs and says which one was cut off.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use camshow_test_utils::{sample, store};

/// Starts `camshow serve` on a free port over `dir`; returns it and its address.
pub(crate) fn serve(dir: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_camshow"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .env("CAMSHOW_CONFIG", dir.join("camshow.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("camshow serve: listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_string();
    (child, base)
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn job(base: &str, id: &str) -> serde_json::Value {
    let body = agent()
        .get(format!("{base}/v1/jobs/{id}"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

#[test]
#[cfg(unix)]
fn a_killed_server_restarts_with_its_jobs_and_says_which_was_cut_off() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-loop", "1", "-framerate", "10", "-i"])
        .arg(sample("astronaut.png"))
        .args([
            "-t",
            "30",
            "-vf",
            "scale=256:256,format=yuv420p",
            "-c:v",
            "libx264",
        ])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(st.success());
    let (mut child, base) = serve(dir.path());
    let mut body = Vec::new();
    for (field, file) in [("source", sample("t1.jpg")), ("target", clip.clone())] {
        body.extend_from_slice(
            format!(
                "--b0\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"f\"\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&std::fs::read(file).unwrap());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--b0--\r\n");
    let r = agent()
        .post(format!("{base}/v1/jobs"))
        .header("Content-Type", "multipart/form-data; boundary=b0")
        .send(&body[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let v: serde_json::Value =
        serde_json::from_str(&r.into_body().read_to_string().unwrap()).unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_mins(1);
    while job(&base, &id)["progress"]["done"].as_u64().unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "the job never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Killed: no chance to record anything.
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, base) = serve(dir.path());
    let v = job(&base, &id);
    assert_eq!(v["state"], "failed", "{v}");
    assert_eq!(v["error"]["code"], "interrupted", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("submit it again")
    );
    // Its uploads and partial output are gone; the record stays (in the database).
    let files: Vec<_> = std::fs::read_dir(dir.path().join("data/jobs").join(&id))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(files.is_empty(), "{files:?}");
    assert!(dir.path().join("data/jobs.sqlite").is_file());
    child.kill().unwrap();
    child.wait().unwrap();
}
