//! `camshow serve` over loopback with a real HTTP client and the real
//! models: sources, synchronous swaps, video jobs followed through their
//! events to the result, cancellation, settings, the gate on every upload,
//! bad requests and the token off loopback.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use camshow_core::settings::{Layered, Settings};
use camshow_server::{Running, ServerConfig};
use camshow_test_utils::{context, exiftool, marked, parity_model, sample, store, test_tool};
use serde_json::Value;

mod browser;
mod limits;
mod live;
mod load;
mod openapi;

struct Server {
    running: Option<Running>,
    base: String,
    dir: tempfile::TempDir,
    token: Option<String>,
}

impl Server {
    fn start(configure: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::on("127.0.0.1:0".parse().unwrap(), configure)
    }

    fn on(bind: SocketAddr, configure: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ServerConfig::new(
            bind,
            dir.path().join("data"),
            dir.path().join("camshow.toml"),
            store(),
        );
        cfg.token = camshow_server::token_for(bind, &cfg.data_dir)
            .unwrap()
            .map(|(t, _)| t);
        configure(&mut cfg);
        let token = cfg.token.clone();
        let ctx = context(cfg.store.clone(), 1);
        let running = camshow_server::start(cfg, ctx).unwrap();
        let base = format!("http://127.0.0.1:{}", running.addr.port());
        Self {
            running: Some(running),
            base,
            dir,
            token,
        }
    }

    /// Stops it (running jobs end as interrupted) and starts it again on the
    /// same folder and settings.
    fn restart(mut self, configure: impl FnOnce(&mut ServerConfig)) -> Self {
        let addr = self.running.take().map(|r| {
            let a = r.addr;
            r.stop();
            a
        });
        let store = store();
        let mut cfg = ServerConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            self.dir.path().join("data"),
            self.dir.path().join("camshow.toml"),
            store.clone(),
        );
        configure(&mut cfg);
        let running = camshow_server::start(cfg, context(store, 1)).unwrap();
        assert!(addr.is_some(), "restarted a stopped server");
        self.base = format!("http://127.0.0.1:{}", running.addr.port());
        self.running = Some(running);
        self
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
    }
}

/// The models, with the recognizer's stand-in (random weights, the real
/// signature), so that face scans run.
fn with_recognizer() -> camshow_core::models::ModelStore {
    store()
        .with_override("w600k_r50", parity_model("w600k_r50.onnx"))
        .unwrap()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_mins(2)))
        .build()
        .into()
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A refusal: this status, this code, a message saying `expect`.
    fn refused(&self, status: u16, code: &str, expect: &str) {
        let v = self.json();
        assert_eq!(self.status, status, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(expect), "{message:?} lacks {expect:?}");
    }
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let r = r.unwrap();
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let body = r
        .into_body()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

fn get(s: &Server, path: &str) -> Reply {
    let mut req = agent().get(&s.url(path));
    if let Some(t) = &s.token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    reply(req.call())
}

fn send_json(s: &Server, method: &str, path: &str, body: &str) -> Reply {
    let a = agent();
    let req = match method {
        "PUT" => a.put(&s.url(path)),
        "PATCH" => a.patch(&s.url(path)),
        _ => a.post(&s.url(path)),
    };
    reply(
        req.header("Content-Type", "application/json")
            .send(body.as_bytes()),
    )
}

/// A multipart form: `(field, Some(file name), bytes)` for files, `(field, None, text)` for text.
fn post_form(s: &Server, path: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Reply {
    const B: &str = "camshow-test-boundary-7d1f";
    let mut body = Vec::new();
    for (field, file, bytes) in parts {
        body.extend_from_slice(format!("--{B}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{field}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{field}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{B}--\r\n").as_bytes());
    let mut req = agent()
        .post(&s.url(path))
        .header("Content-Type", format!("multipart/form-data; boundary={B}"));
    if let Some(t) = &s.token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    reply(req.send(&body[..]))
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// A `seconds` long 10 fps clip of the astronaut, with a tone.
fn clip(dir: &Path, seconds: u32) -> PathBuf {
    let out = dir.join(format!("clip{seconds}.mp4"));
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-loop", "1", "-framerate", "10", "-i"])
        .arg(sample("astronaut.png"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:duration={seconds}"))
        .args(["-t", &seconds.to_string()])
        .args([
            "-vf",
            "scale=256:256,format=yuv420p",
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    out
}

fn ffprobe_streams(p: &Path) -> String {
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .args(["stream=codec_type,nb_read_frames", "-of", "csv=p=0"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Files left anywhere under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn health_capabilities_and_settings() {
    let s = Server::start(|_| {});
    let h = get(&s, "/v1/health");
    assert_eq!(h.status, 200);
    let v = h.json();
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["report"]["models"].as_array().unwrap().len() > 5);
    // Every option, from the same schema the CLI's settings use.
    let c = get(&s, "/v1/capabilities").json();
    assert_eq!(
        c["options"],
        serde_json::to_value(Settings::options()).unwrap()
    );
    let quality = c["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == "video.quality")
        .unwrap();
    assert_eq!(
        (quality["minimum"].as_f64(), quality["maximum"].as_f64()),
        (Some(0.0), Some(51.0))
    );
    // Settings: read, changed, and the change is in the file the CLI reads.
    let file = s.dir.path().join("camshow.toml");
    let before = get(&s, "/v1/settings").json();
    assert_eq!(before["settings"]["video"]["quality"], 18);
    let r = send_json(
        &s,
        "PATCH",
        "/v1/settings",
        r#"{"video.quality": 20, "processors[0].opacity": 0.5}"#,
    );
    assert_eq!(r.status, 200, "{}", r.json());
    assert_eq!(r.json()["settings"]["video"]["quality"], 20);
    let cli = Layered::load_from(&file, &[]).unwrap().settings;
    assert_eq!(cli.video.quality, 20);
    assert!((cli.face_swapper().unwrap().opacity - 0.5).abs() < 1e-6);
    // Refusals name the problem, and change nothing.
    send_json(&s, "PATCH", "/v1/settings", r#"{"video.quality": 99}"#).refused(
        400,
        "invalid_settings",
        "video.quality: 99 is not in 0–51",
    );
    send_json(&s, "PATCH", "/v1/settings", r#"{"video.qualty": 9}"#).refused(
        400,
        "invalid_settings",
        "did you mean `quality`",
    );
    send_json(&s, "PATCH", "/v1/settings", r#"{"video.quality": "#).refused(
        400,
        "invalid_input",
        "bad JSON",
    );
    send_json(&s, "PATCH", "/v1/settings", "[1, 2]").refused(
        400,
        "invalid_input",
        "expected an object",
    );
    assert_eq!(
        Layered::load_from(&file, &[])
            .unwrap()
            .settings
            .video
            .quality,
        20
    );
    // PUT replaces the whole settings.
    let mut whole = Settings::default();
    whole.video.quality = 7;
    let r = send_json(
        &s,
        "PUT",
        "/v1/settings",
        &serde_json::to_string(&whole).unwrap(),
    );
    assert_eq!(r.status, 200, "{}", r.json());
    assert_eq!(Layered::load_from(&file, &[]).unwrap().settings, whole);
    send_json(
        &s,
        "PUT",
        "/v1/settings",
        r#"{"video": {"quality": "best"}}"#,
    )
    .refused(400, "invalid_input", "not valid settings");
    // Programs and folders on the server are not changed over HTTP.
    for body in [r#"{"ffmpeg.path": "/bin/sh"}"#, r#"{"models_dir": "/tmp"}"#] {
        send_json(&s, "PATCH", "/v1/settings", body).refused(
            400,
            "invalid_input",
            "cannot be changed over HTTP",
        );
    }
    let mut moved = whole.clone();
    moved.models_dir = Some("/tmp/elsewhere".into());
    send_json(
        &s,
        "PUT",
        "/v1/settings",
        &serde_json::to_string(&moved).unwrap(),
    )
    .refused(400, "invalid_input", "cannot be changed over HTTP");
    assert_eq!(Layered::load_from(&file, &[]).unwrap().settings, whole);
    // The runtime is the server's: set in its file, not per request.
    let r = send_json(
        &s,
        "PATCH",
        "/v1/settings",
        r#"{"runtime.intra_threads": 1}"#,
    );
    assert_eq!(r.status, 200, "{}", r.json());
    post_form(
        &s,
        "/v1/swap",
        &[
            ("source", Some("a.png"), &read(&sample("astronaut.png"))),
            ("target", Some("t1.jpg"), &read(&sample("t1.jpg"))),
            ("settings", None, br#"{"runtime.intra_threads": 2}"#),
        ],
    )
    .refused(
        400,
        "invalid_input",
        "a setting of the server, not of one request",
    );
    // Without a token, only this machine's own pages and names are answered.
    for (header, value) in [("Origin", "http://evil.example"), ("Host", "evil.example")] {
        reply(
            agent()
                .get(&s.url("/v1/settings"))
                .header(header, value)
                .call(),
        )
        .refused(403, "forbidden", "answers only requests to localhost");
    }
    let ok = reply(
        agent()
            .get(&s.url("/v1/settings"))
            .header("Origin", &s.base)
            .call(),
    );
    assert_eq!(ok.status, 200);
    // Unknown endpoints and ids are 404s with the error shape.
    get(&s, "/v1/nothing").refused(404, "not_found", "no such endpoint");
    get(&s, "/v1/jobs/..%2F..%2Fetc%2Fpasswd").refused(404, "not_found", "no such id");
    get(&s, "/v1/jobs/0123456789abcdef01234567").refused(404, "not_found", "no job");
    get(&s, "/v1/jobs?limit=0").refused(400, "invalid_input", "limit is 1–100");
}

#[test]
fn a_source_is_uploaded_then_swapped_onto_a_picture() {
    let s = Server::start(|_| {});
    let r = post_form(
        &s,
        "/v1/sources",
        &[("photo", Some("me.png"), &read(&sample("astronaut.png")))],
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let src = r.json();
    let faces = src["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1, "{src}");
    assert!(faces[0]["score"].as_f64().unwrap() > 0.5);
    // Its thumbnail: a JPEG labelled as a thumbnail of AI-processed media.
    let thumb = get(&s, faces[0]["thumbnail"].as_str().unwrap());
    assert_eq!(thumb.status, 200);
    let t = s.dir.path().join("thumb.jpg");
    std::fs::write(&t, &thumb.body).unwrap();
    assert_eq!(exiftool("XMP-camshow:Operation", &t), "face-thumbnail");
    // A synchronous swap with that source onto the six faces of t1.
    let id = src["id"].as_str().unwrap();
    let r = post_form(
        &s,
        "/v1/swap",
        &[
            ("source_id", None, id.as_bytes()),
            ("target", Some("t1.jpg"), &read(&sample("t1.jpg"))),
            ("settings", None, br#"{"engine.selector": "many"}"#),
            ("format", None, b"png"),
        ],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(r.header("x-camshow-faces-swapped"), Some("6"));
    let out = s.dir.path().join("out.png");
    std::fs::write(&out, &r.body).unwrap();
    assert_eq!(
        exiftool("XMP-iptcExt:DigitalSourceType", &out),
        camshow_media::provenance::DIGITAL_SOURCE_TYPE
    );
    assert_eq!(exiftool("XMP-camshow:Operation", &out), "face-swap");
    let (a, b) = (
        image::open(&out).unwrap().to_rgb8(),
        image::open(sample("t1.jpg")).unwrap().to_rgb8(),
    );
    assert_eq!(a.dimensions(), b.dimensions());
    let changed = a.pixels().zip(b.pixels()).filter(|(x, y)| x != y).count();
    assert!(changed > 10_000 && changed < (a.len() / 3) / 4, "{changed}");
    // The same with the photo uploaded in the request, as JPEG.
    let r = post_form(
        &s,
        "/v1/swap",
        &[
            ("source", Some("a.png"), &read(&sample("astronaut.png"))),
            ("target", Some("t1.jpg"), &read(&sample("t1.jpg"))),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(r.header("x-camshow-faces-swapped"), Some("1"));
    // A WebP target: the result is PNG (this build writes PNG and JPEG).
    let webp = s.dir.path().join("t1.webp");
    image::open(sample("t1.jpg")).unwrap().save(&webp).unwrap();
    let r = post_form(
        &s,
        "/v1/swap",
        &[
            ("source_id", None, id.as_bytes()),
            ("target", Some("t1.webp"), &read(&webp)),
        ],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("image/png"));
    // Errors never show the server's folders.
    let blank = s.dir.path().join("blank.png");
    image::RgbImage::from_pixel(64, 64, image::Rgb([128, 128, 128]))
        .save(&blank)
        .unwrap();
    let r = post_form(
        &s,
        "/v1/swap",
        &[
            ("source_id", None, id.as_bytes()),
            ("target", Some("b.png"), &read(&blank)),
        ],
    );
    let text = String::from_utf8_lossy(&r.body).into_owned();
    assert!(!text.contains(&*s.data().to_string_lossy()), "{text}");
    // A source is removed with its files.
    let r = reply(agent().delete(&s.url(&format!("/v1/sources/{id}"))).call());
    assert_eq!(r.status, 204);
    get(&s, &format!("/v1/sources/{id}")).refused(404, "not_found", "no source");
    assert_eq!(
        std::fs::read_dir(s.data().join("sources")).unwrap().count(),
        0
    );
    // Nothing of either request is left in the server's temporary folder.
    assert!(files_under(&s.data().join("tmp")).is_empty());
}

/// Reads Server-Sent Events until the `end` event; returns every event's data.
fn events(s: &Server, id: &str) -> Vec<(String, Value)> {
    let r = agent()
        .get(&s.url(&format!("/v1/jobs/{id}/events")))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut lines = BufReader::new(r.into_body().into_reader()).lines();
    let mut out = Vec::new();
    let mut event = String::new();
    while let Some(Ok(line)) = lines.next() {
        if let Some(e) = line.strip_prefix("event: ") {
            event = e.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            out.push((event.clone(), serde_json::from_str(d).unwrap()));
            if event == "end" {
                break;
            }
        }
    }
    out
}

#[test]
fn a_video_job_is_followed_to_its_result() {
    let s = Server::start(|_| {});
    let clip = clip(s.dir.path(), 2);
    let r = post_form(
        &s,
        "/v1/jobs",
        &[
            ("source", Some("t1.jpg"), &read(&sample("t1.jpg"))),
            ("target", Some("clip.mp4"), &read(&clip)),
        ],
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let job = r.json();
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.header("location"),
        Some(format!("/v1/jobs/{id}").as_str())
    );
    assert_eq!(job["kind"], "video");
    let evs = events(&s, &id);
    let (last_kind, last) = evs.last().unwrap();
    assert_eq!(last_kind, "end");
    assert_eq!(last["state"], "done", "{last}");
    assert_eq!(last["progress"]["done"], 20);
    assert_eq!(last["swapped"], 20);
    assert!(last["fps"].as_f64().unwrap() > 0.0);
    // Progress went up through the events.
    let dones: Vec<u64> = evs
        .iter()
        .map(|(_, v)| v["progress"]["done"].as_u64().unwrap())
        .collect();
    assert!(dones.windows(2).all(|w| w[0] <= w[1]), "{dones:?}");
    // The result: a byte range, then all of it, with audio and provenance.
    let url = last["result"].as_str().unwrap();
    let part = reply(
        agent()
            .get(&s.url(url))
            .header("Range", "bytes=0-99")
            .call(),
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body.len(), 100);
    assert!(
        part.header("content-range")
            .unwrap()
            .starts_with("bytes 0-99/")
    );
    let whole = get(&s, url);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("content-type"), Some("video/mp4"));
    let out = s.dir.path().join("result.mp4");
    std::fs::write(&out, &whole.body).unwrap();
    let streams = ffprobe_streams(&out);
    assert!(streams.contains("video,20"), "{streams}");
    assert!(streams.contains("audio"), "{streams}");
    assert!(
        exiftool("XMP:DigitalSourceType", &out).ends_with("compositeWithTrainedAlgorithmicMedia")
    );
    // The metrics count it, in the Prometheus text format.
    let m = get(&s, "/v1/metrics");
    assert_eq!(m.status, 200);
    assert!(
        m.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = String::from_utf8(m.body).unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("camshow_jobs{state=\"done\"}"), 1.0);
    assert_eq!(value("camshow_jobs{state=\"running\"}"), 0.0);
    assert_eq!(value("camshow_queue_depth"), 0.0);
    assert_eq!(value("camshow_frames_processed_total"), 20.0);
    assert_eq!(value("camshow_job_seconds_count"), 1.0);
    assert!(value("camshow_job_seconds_sum") > 0.0);
    // Every sample line is `name{labels} number`, every family typed.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, v) = l.rsplit_once(' ').unwrap();
        assert!(v.parse::<f64>().is_ok(), "{l}");
        let family = name.split('{').next().unwrap();
        let base = family
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            text.contains(&format!("# TYPE {family} "))
                || text.contains(&format!("# TYPE {base} histogram")),
            "{l} has no TYPE"
        );
    }
    // Listed; then removed with its files.
    let list = get(&s, "/v1/jobs?limit=5").json();
    assert_eq!(list["total"], 1);
    assert_eq!(list["jobs"][0]["id"], id.as_str());
    let job_dir = s.data().join("jobs").join(&id);
    assert!(job_dir.is_dir());
    let r = reply(agent().delete(&s.url(&format!("/v1/jobs/{id}"))).call());
    assert_eq!(r.status, 204);
    assert!(!job_dir.exists());
    get(&s, &format!("/v1/jobs/{id}")).refused(404, "not_found", "no job");
}

#[test]
fn cancelling_a_running_job_leaves_no_files() {
    let s = Server::start(|_| {});
    let clip = clip(s.dir.path(), 30);
    let r = post_form(
        &s,
        "/v1/jobs",
        &[
            ("source", Some("t1.jpg"), &read(&sample("t1.jpg"))),
            ("target", Some("clip.mp4"), &read(&clip)),
        ],
    );
    assert_eq!(r.status, 202);
    let id = r.json()["id"].as_str().unwrap().to_string();
    wait_running(&s, &id);
    assert_eq!(
        get(&s, &format!("/v1/jobs/{id}")).json()["state"],
        "running"
    );
    // A second job waits (one worker); cancelled while queued, it never runs.
    let queued = submit(&s, &clip);
    assert_eq!(
        get(&s, &format!("/v1/jobs/{queued}")).json()["state"],
        "queued"
    );
    let r = reply(agent().delete(&s.url(&format!("/v1/jobs/{queued}"))).call());
    assert_eq!(r.status, 204);
    let v = get(&s, &format!("/v1/jobs/{queued}")).json();
    assert_eq!(v["state"], "cancelled", "{v}");
    assert!(files_under(&s.data().join("jobs").join(&queued)).is_empty());
    let r = reply(agent().delete(&s.url(&format!("/v1/jobs/{id}"))).call());
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["state"], "cancelling");
    let evs = events(&s, &id);
    assert_eq!(evs.last().unwrap().1["state"], "cancelled");
    // Its files are gone (uploads, partial output): only its record is left (in the database).
    assert!(files_under(&s.data().join("jobs").join(&id)).is_empty());
    // The queued one never ran.
    let v = get(&s, &format!("/v1/jobs/{queued}")).json();
    assert_eq!(
        (v["state"].as_str(), v["progress"]["done"].as_u64()),
        (Some("cancelled"), Some(0))
    );
    assert!(files_under(&s.data().join("tmp")).is_empty());
    get(&s, &format!("/v1/jobs/{id}/result")).refused(409, "not_ready", "no result");
}

#[test]
fn the_gate_sees_every_upload() {
    let s = Server::start(|_| {});
    let d = s.dir.path();
    let m_astro = read(&marked(
        &sample("astronaut.png"),
        d.join("ma.png"),
        (0, 0, 80, 80),
    ));
    let m_t1 = read(&marked(
        &sample("t1.jpg"),
        d.join("mt.png"),
        (0, 0, 120, 120),
    ));
    let (astro, t1) = (read(&sample("astronaut.png")), read(&sample("t1.jpg")));
    // A marked source photo, uploaded as a source or with a swap.
    post_form(&s, "/v1/sources", &[("photo", Some("a.png"), &m_astro)]).refused(
        422,
        "unsafe_content",
        "TEST_MARKER",
    );
    for (source, target) in [(&m_astro, &t1), (&astro, &m_t1)] {
        post_form(
            &s,
            "/v1/swap",
            &[
                ("source", Some("s.png"), source),
                ("target", Some("t.png"), target),
            ],
        )
        .refused(422, "unsafe_content", "refused by the content-safety gate");
    }
    // A job whose target is marked fails with the gate's reason, and keeps nothing.
    let r = post_form(
        &s,
        "/v1/jobs",
        &[
            ("source", Some("s.png"), &astro),
            ("target", Some("t.png"), &m_t1),
        ],
    );
    assert_eq!(r.status, 202);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let last = events(&s, &id).pop().unwrap().1;
    assert_eq!(last["state"], "failed");
    assert_eq!(last["error"]["code"], "unsafe_content", "{last}");
    // Four refusals, counted.
    let m = String::from_utf8(get(&s, "/v1/metrics").body).unwrap();
    assert!(m.contains("\ncamshow_refused_unsafe_total 4\n"), "{m}");
    // Its uploads are gone; its record says why it failed.
    assert!(files_under(&s.data().join("jobs")).is_empty());
    assert!(files_under(&s.data().join("sources")).is_empty());
    assert!(files_under(&s.data().join("tmp")).is_empty());
}

#[test]
fn bad_uploads_get_their_4xx_and_the_server_goes_on() {
    let s = Server::start(|c| c.max_upload_bytes = 2_000_000);
    // No upload slots at all: refused before anything is read.
    let none = Server::start(|c| c.max_uploads = 0);
    post_form(&none, "/v1/sources", &[("photo", Some("a.png"), b"x")]).refused(
        503,
        "busy",
        "uploads are being received",
    );
    assert_eq!(get(&none, "/v1/health").status, 200);
    let (astro, t1) = (read(&sample("astronaut.png")), read(&sample("t1.jpg")));
    // Not a picture (a client's name and type are not trusted).
    post_form(
        &s,
        "/v1/sources",
        &[("photo", Some("face.png"), b"just some text, not a picture")],
    )
    .refused(
        400,
        "invalid_input",
        "neither a picture this server reads nor a video",
    );
    post_form(
        &s,
        "/v1/jobs",
        &[
            ("source", Some("a.png"), &astro),
            ("target", Some("t.mp4"), b"not a video either"),
        ],
    )
    .refused(400, "invalid_input", "neither a picture");
    // A truncated JPEG.
    post_form(
        &s,
        "/v1/swap",
        &[
            ("source", Some("a.png"), &astro),
            ("target", Some("t.jpg"), &t1[..t1.len() / 2]),
        ],
    )
    .refused(400, "invalid_input", "truncated JPEG");
    // Too large.
    let big = vec![7u8; 2_500_000];
    post_form(&s, "/v1/sources", &[("photo", Some("big.png"), &big)]).refused(
        413,
        "too_large",
        "over the limit",
    );
    // Missing fields, both kinds of source, a video where a photo belongs.
    post_form(&s, "/v1/swap", &[("target", Some("t.jpg"), &t1)]).refused(
        400,
        "invalid_input",
        "a source is needed",
    );
    post_form(&s, "/v1/swap", &[("source", Some("a.png"), &astro)]).refused(
        400,
        "invalid_input",
        "exactly one `target`",
    );
    post_form(
        &s,
        "/v1/swap",
        &[
            ("source", Some("a.png"), &astro),
            ("source_id", None, b"0123456789abcdef01234567"),
            ("target", Some("t.jpg"), &t1),
        ],
    )
    .refused(400, "invalid_input", "not both");
    post_form(
        &s,
        "/v1/swap",
        &[
            ("source_id", None, b"../../etc/passwd"),
            ("target", Some("t.jpg"), &t1),
        ],
    )
    .refused(404, "not_found", "no such id");
    post_form(
        &s,
        "/v1/swap",
        &[
            ("source", Some("a.png"), &astro),
            ("target", Some("t.jpg"), &t1),
            ("format", None, b"exe"),
        ],
    )
    .refused(400, "invalid_input", "exe is not an output format");
    post_form(
        &s,
        "/v1/swap",
        &[
            ("source", Some("a.png"), &astro),
            ("target", Some("t.jpg"), &t1),
            ("settings", None, br#"{"processors[0].opacity": 3}"#),
        ],
    )
    .refused(
        400,
        "invalid_settings",
        "processors[0].opacity: 3 is not in 0–1",
    );
    // A picture without a face as a source.
    let blank = s.dir.path().join("blank.png");
    image::RgbImage::from_pixel(64, 64, image::Rgb([128, 128, 128]))
        .save(&blank)
        .unwrap();
    post_form(
        &s,
        "/v1/sources",
        &[("photo", Some("b.png"), &read(&blank))],
    )
    .refused(
        422,
        "no_face",
        "no face found in the source image photo-0.png",
    );
    // Not multipart at all.
    send_json(&s, "POST", "/v1/swap", "{}").refused(400, "invalid_input", "multipart");
    // The refused job left no folder behind.
    assert_eq!(std::fs::read_dir(s.data().join("jobs")).unwrap().count(), 0);
    // After all that, a good request is served, and nothing was left behind.
    let r = post_form(
        &s,
        "/v1/swap",
        &[
            ("source", Some("a.png"), &astro),
            ("target", Some("t.jpg"), &t1),
        ],
    );
    assert_eq!(r.status, 200);
    assert!(files_under(&s.data().join("tmp")).is_empty());
    assert!(files_under(&s.data().join("sources")).is_empty());
}

#[test]
fn off_loopback_every_request_needs_the_token() {
    let s = Server::on("0.0.0.0:0".parse().unwrap(), |_| {});
    let token = s.token.clone().unwrap();
    assert_eq!(token.len(), 64);
    // Kept for the next start, readable by its owner only.
    let file = s.data().join("token");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), token);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let again = camshow_server::token_for("0.0.0.0:1".parse().unwrap(), &s.data()).unwrap();
    assert_eq!(again, Some((token.clone(), false)));
    let url = s.url("/v1/settings");
    for req in [
        agent().get(&url),
        agent().get(&url).header("Authorization", "Bearer wrong"),
        agent().get(&format!("{url}?token=wrong")),
    ] {
        reply(req.call()).refused(401, "unauthorized", "Authorization: Bearer");
    }
    // Uploads too, before anything is read.
    let bare = Server {
        running: None,
        base: s.base.clone(),
        dir: tempfile::tempdir().unwrap(),
        token: None,
    };
    post_form(&bare, "/v1/sources", &[("photo", Some("a.png"), b"x")]).refused(
        401,
        "unauthorized",
        "Authorization: Bearer",
    );
    assert_eq!(get(&s, "/v1/settings").status, 200);
    let r = reply(agent().get(&format!("{url}?token={token}")).call());
    assert_eq!(r.status, 200);
    // On loopback no token is made or needed.
    assert_eq!(
        camshow_server::token_for("127.0.0.1:8686".parse().unwrap(), &s.data()).unwrap(),
        None
    );
}

/// Submits a job of `clip` with t1's face; returns its id.
fn submit(s: &Server, clip: &Path) -> String {
    let r = post_form(
        s,
        "/v1/jobs",
        &[
            ("source", Some("t1.jpg"), &read(&sample("t1.jpg"))),
            ("target", Some("clip.mp4"), &read(clip)),
        ],
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_str().unwrap().to_string()
}

/// Waits until job `id` has written a frame.
fn wait_running(s: &Server, id: &str) {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let v = get(s, &format!("/v1/jobs/{id}")).json();
        if v["progress"]["done"].as_u64().unwrap_or(0) > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the job never started: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn jobs_and_sources_survive_a_restart() {
    let s = Server::start(|_| {});
    let short = clip(s.dir.path(), 2);
    let long = clip(s.dir.path(), 30);
    let src = post_form(
        &s,
        "/v1/sources",
        &[("photo", Some("a.png"), &read(&sample("astronaut.png")))],
    )
    .json();
    let source_id = src["id"].as_str().unwrap().to_string();
    let done = submit(&s, &short);
    assert_eq!(events(&s, &done).last().unwrap().1["state"], "done");
    let running = submit(&s, &long);
    wait_running(&s, &running);
    let s = s.restart(|_| {});
    // The finished job and its result are still there.
    let list = get(&s, "/v1/jobs").json();
    assert_eq!(list["total"], 2, "{list}");
    let v = get(&s, &format!("/v1/jobs/{done}")).json();
    assert_eq!(v["state"], "done", "{v}");
    let r = get(&s, v["result"].as_str().unwrap());
    assert_eq!(r.status, 200);
    let out = s.dir.path().join("after-restart.mp4");
    std::fs::write(&out, &r.body).unwrap();
    assert!(ffprobe_streams(&out).contains("video,20"));
    // The one that was running says why it did not finish; only its record is left.
    let v = get(&s, &format!("/v1/jobs/{running}")).json();
    assert_eq!(v["state"], "failed", "{v}");
    assert_eq!(v["error"]["code"], "interrupted", "{v}");
    let left: Vec<PathBuf> = files_under(&s.data().join("jobs").join(&running));
    assert!(left.is_empty(), "{left:?}");
    // The source is still usable by its id.
    assert_eq!(
        get(&s, &format!("/v1/sources/{source_id}")).json()["photos"],
        1
    );
    let r = post_form(
        &s,
        "/v1/swap",
        &[
            ("source_id", None, source_id.as_bytes()),
            ("target", Some("t1.jpg"), &read(&sample("t1.jpg"))),
        ],
    );
    assert_eq!(r.status, 200);
    // A folder without a record (a crash in the middle of an upload) is cleared at start.
    let stray = s.data().join("jobs").join("0123456789abcdef01234567");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("upload-0"), b"half an upload").unwrap();
    let s = s.restart(|_| {});
    assert!(!stray.exists());
    assert_eq!(get(&s, "/v1/jobs").json()["total"], 2);
}

#[test]
fn finished_jobs_expire_and_the_quota_keeps_the_newest() {
    let quick = camshow_server::jobs::Retention {
        keep: Duration::from_secs(2),
        quota: u64::MAX,
        every: Duration::from_millis(100),
    };
    let s = Server::start(|c| c.retention = quick);
    let short = clip(s.dir.path(), 2);
    let id = submit(&s, &short);
    assert_eq!(events(&s, &id).last().unwrap().1["state"], "done");
    assert_eq!(get(&s, &format!("/v1/jobs/{id}")).status, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&s, &format!("/v1/jobs/{id}")).status == 200 {
        assert!(Instant::now() < deadline, "job {id} was never forgotten");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!s.data().join("jobs").join(&id).exists());
    // A quota smaller than one result: the older result goes, the newest stays.
    let s = s.restart(|c| {
        c.retention = camshow_server::jobs::Retention {
            keep: Duration::from_hours(1),
            quota: 1,
            every: Duration::from_millis(100),
        };
    });
    let first = submit(&s, &short);
    assert_eq!(events(&s, &first).last().unwrap().1["state"], "done");
    let second = submit(&s, &short);
    assert_eq!(events(&s, &second).last().unwrap().1["state"], "done");
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&s, &format!("/v1/jobs/{first}")).status == 200 {
        assert!(Instant::now() < deadline, "the quota was not applied");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        get(&s, &format!("/v1/jobs/{second}")).json()["state"],
        "done"
    );
    assert!(
        s.data()
            .join("jobs")
            .join(&second)
            .join("result.mp4")
            .is_file()
    );
}

#[test]
fn slow_clients_are_dropped_and_the_others_served() {
    use std::io::{Read, Write};
    let s = Server::start(|c| {
        c.idle_timeout = Duration::from_secs(1);
        c.upload_timeout = Duration::from_secs(3);
    });
    let addr = s.base.trim_start_matches("http://").to_string();
    // 10 clients drip their headers, 10 drip an upload's body, a byte every 200 ms.
    let mut slow = Vec::new();
    for i in 0..20 {
        let addr = addr.clone();
        slow.push(std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(&addr).unwrap();
            let head = "POST /v1/sources HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b0\r\nContent-Length: 100000\r\n\r\n";
            let drip: Vec<u8> = if i < 10 {
                head.as_bytes().to_vec()
            } else {
                c.write_all(head.as_bytes()).unwrap();
                b"--b0\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a\"\r\n\r\n"
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(b'x', 1000))
                    .collect()
            };
            let started = Instant::now();
            let mut answer = Vec::new();
            let mut buf = [0u8; 4096];
            c.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
            for b in drip {
                if c.write_all(&[b]).is_err() || started.elapsed() > Duration::from_secs(20) {
                    break;
                }
                // Stop dripping once the server has answered (or closed).
                match c.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        answer.extend_from_slice(&buf[..n]);
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            while let Ok(n) = c.read(&mut buf) {
                if n == 0 {
                    break;
                }
                answer.extend_from_slice(&buf[..n]);
            }
            (started.elapsed(), String::from_utf8_lossy(&answer).into_owned())
        }));
    }
    std::thread::sleep(Duration::from_millis(500));
    // Meanwhile the server answers others.
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(get(&s, "/v1/health").status, 200);
        assert!(t.elapsed() < Duration::from_secs(10));
    }
    for (i, h) in slow.into_iter().enumerate() {
        let (took, answer) = h.join().unwrap();
        assert!(
            took < Duration::from_secs(15),
            "client {i} held on for {took:?}"
        );
        if i >= 10 {
            assert!(answer.starts_with("HTTP/1.1 408"), "client {i}: {answer:?}");
            assert!(answer.contains("\"timeout\""), "client {i}: {answer:?}");
        }
    }
    assert_eq!(get(&s, "/v1/health").status, 200);
    assert!(files_under(&s.data().join("tmp")).is_empty());
}

#[test]
fn a_face_scan_maps_each_person_to_their_own_source() {
    // The recognizer's stand-in (random weights, the real signature) tells
    // t1's six faces apart at a small distance.
    let s = Server::start(|c| c.store = with_recognizer());
    let t1 = read(&sample("t1.jpg"));
    let r = post_form(
        &s,
        "/v1/faces/scan",
        &[
            ("target", Some("t1.jpg"), &t1),
            ("cluster_distance", None, b"0.1"),
        ],
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let scan = r.json();
    let people = scan["people"].as_array().unwrap();
    assert_eq!(people.len(), 6, "{scan}");
    assert_eq!(scan["faces"], 6);
    let thumb = get(&s, people[2]["thumbnail"].as_str().unwrap());
    assert_eq!(thumb.status, 200);
    let t = s.dir.path().join("person.png");
    std::fs::write(&t, &thumb.body).unwrap();
    assert_eq!(exiftool("XMP-camshow:Operation", &t), "face-thumbnail");
    // The upload itself is not kept.
    let scan_id = scan["id"].as_str().unwrap();
    let kept = files_under(&s.data().join("scans").join(scan_id));
    assert!(
        kept.iter().all(|p| !p.file_stem().unwrap().eq("target")),
        "{kept:?}"
    );
    assert_eq!(
        get(&s, &format!("/v1/scans/{scan_id}")).json()["people"],
        scan["people"]
    );
    // Persons 2 and 4 get the astronaut; the others are left alone.
    let src = post_form(
        &s,
        "/v1/sources",
        &[("photo", Some("a.png"), &read(&sample("astronaut.png")))],
    )
    .json();
    let source_id = src["id"].as_str().unwrap();
    let people_json = format!(r#"{{"2": "{source_id}", "4": "{source_id}", "0": null}}"#);
    let r = post_form(
        &s,
        "/v1/jobs",
        &[
            ("scan_id", None, scan_id.as_bytes()),
            ("people", None, people_json.as_bytes()),
            ("target", Some("t1.jpg"), &t1),
            ("format", None, b"png"),
        ],
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_string();
    let last = events(&s, &id).pop().unwrap().1;
    assert_eq!(last["state"], "done", "{last}");
    assert_eq!(last["swapped"], 2, "{last}");
    // Refusals name the field.
    for (parts, expect) in [
        (
            vec![
                ("scan_id", None, scan_id.as_bytes()),
                ("people", None, br#"{"9": null}"#.as_slice()),
            ],
            "the scan has no person \"9\"",
        ),
        (
            vec![
                ("scan_id", None, b"0123456789abcdef01234567".as_slice()),
                ("people", None, b"{}".as_slice()),
            ],
            "no scan",
        ),
        (
            vec![("people", None, b"{}".as_slice())],
            "needs the `scan_id`",
        ),
    ] {
        let mut all = parts.clone();
        all.push(("target", Some("t1.jpg"), &t1));
        let r = post_form(&s, "/v1/jobs", &all);
        let v = r.json();
        assert!(r.status == 400 || r.status == 404, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(expect),
            "{v}"
        );
    }
    post_form(
        &s,
        "/v1/faces/scan",
        &[
            ("target", Some("t1.jpg"), &t1),
            ("cluster_distance", None, b"7"),
        ],
    )
    .refused(400, "invalid_input", "a cosine distance 0–2");
}
