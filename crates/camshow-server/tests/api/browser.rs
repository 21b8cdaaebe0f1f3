//! The page at `/` in a real browser: headless Chromium from the
//! distribution, driven over WebDriver (chromedriver) with plain HTTP, its
//! webcam faked from a generated clip. The page uploads a source, starts
//! the webcam and shows swapped frames; then it runs a video job to its
//! download link.

use std::process::{Child, Stdio};

use super::*;

struct Driver {
    child: Child,
    base: String,
    session: Option<String>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let _ = agent().delete(&format!("{}/session/{s}", self.base)).call();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian: chromium-driver; scripts/setup.sh --test installs it)");
        let d = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            session: None,
        };
        let until = Instant::now() + Duration::from_secs(30);
        while reply(agent().get(&format!("{}/status", d.base)).call_ok()).status != 200 {
            assert!(Instant::now() < until, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = match &self.session {
            Some(s) => format!("{}/session/{s}{path}", self.base),
            None => format!("{}{path}", self.base),
        };
        let a = agent();
        let r = match (method, body) {
            ("GET", _) => reply(a.get(&url).call()),
            (_, b) => reply(
                a.post(&url)
                    .header("Content-Type", "application/json")
                    .send(
                        b.unwrap_or(Value::Object(serde_json::Map::default()))
                            .to_string()
                            .as_bytes(),
                    ),
            ),
        };
        let v = r.json();
        assert_eq!(r.status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    fn open(&mut self, camera_clip: &Path, profile: &Path) {
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.display()),
                    "--window-size=1280,1100",
                    "--use-fake-ui-for-media-stream",
                    "--use-fake-device-for-media-stream",
                    format!("--use-file-for-fake-video-capture={}", camera_clip.display()),
                ]
            }
        }}});
        let v = self.call("POST", "/session", Some(caps));
        self.session = Some(v["sessionId"].as_str().unwrap().to_string());
    }

    fn element(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(serde_json::json!({"using": "css selector", "value": css})),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap()
            .to_string()
    }

    fn click(&self, css: &str) {
        let e = self.element(css);
        self.call("POST", &format!("/element/{e}/click"), None);
    }

    fn choose_file(&self, css: &str, file: &Path) {
        let e = self.element(css);
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            Some(serde_json::json!({"text": file.to_str().unwrap()})),
        );
    }

    fn run(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(serde_json::json!({"script": script, "args": []})),
        )
    }

    /// Waits until `script` returns something truthy; returns it.
    fn wait_for(&self, script: &str, what: &str, limit: Duration) -> Value {
        let until = Instant::now() + limit;
        loop {
            let v = self.run(script);
            if !(v.is_null() || v == false || v == 0 || v == "") {
                return v;
            }
            assert!(
                Instant::now() < until,
                "{what}: page status {}",
                self.run("return [...document.querySelectorAll('.status')].map(e => e.textContent).join(' | ')")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

trait CallOk {
    fn call_ok(self) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>;
}

impl CallOk for ureq::RequestBuilder<ureq::typestate::WithoutBody> {
    /// A refused connection reads as a 503 (the driver is still starting).
    fn call_ok(self) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        match self.call() {
            Err(ureq::Error::Io(_) | ureq::Error::ConnectionFailed) => {
                Ok(ureq::http::Response::builder()
                    .status(503)
                    .body(ureq::Body::builder().data(Vec::<u8>::new()))
                    .unwrap())
            }
            r => r,
        }
    }
}

fn chromium() -> String {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .unwrap_or("/usr/bin/chromium")
    .to_string()
}

fn b64(data: &str) -> Vec<u8> {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in data
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
    {
        let v = T.iter().position(|t| *t == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn the_page_swaps_the_webcam_and_runs_a_job_in_a_real_browser() {
    if !Path::new(&chromium()).exists()
        || Command::new("chromedriver")
            .arg("--version")
            .output()
            .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the browser test: scripts/setup.sh --test installs chromium and chromium-driver"
        );
        eprintln!(
            "skipped: Chromium and chromedriver are not installed (scripts/setup.sh --test installs them)"
        );
        return;
    }
    let s = Server::start(|_| {});
    let d = s.dir.path();
    // The fake webcam: the astronaut at 640×480, and that frame as Chromium sees it.
    let y4m = d.join("camera.y4m");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-loop", "1", "-i"])
        .arg(sample("astronaut.png"))
        .args([
            "-t",
            "2",
            "-r",
            "15",
            "-vf",
            "scale=640:480,format=yuv420p",
            "-f",
            "yuv4mpegpipe",
        ])
        .arg(&y4m)
        .status()
        .unwrap();
    assert!(st.success());
    let reference = d.join("camera.png");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&y4m)
        .args(["-frames:v", "1"])
        .arg(&reference)
        .status()
        .unwrap();
    assert!(st.success());
    let camera = image::open(&reference).unwrap().to_rgb8();
    let mut driver = Driver::start();
    driver.open(&y4m, &d.join("profile"));
    driver.call(
        "POST",
        "/url",
        Some(serde_json::json!({"url": format!("http://localhost:{}/", s.base.rsplit(':').next().unwrap())})),
    );
    // The terms and the label are on the page.
    let text = driver
        .run("return document.body.innerText")
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("Usage terms"), "{text}");
    assert!(text.contains("AI-generated"), "{text}");
    driver.wait_for(
        "return document.getElementById('health').classList.contains('ok')",
        "health",
        Duration::from_secs(30),
    );
    // The settings form is built from /v1/capabilities.
    driver.wait_for(
        "return document.querySelectorAll('#settings-form select, #settings-form input').length >= 5",
        "the settings form",
        Duration::from_secs(30),
    );
    // Source: t1's photo, through the file input.
    driver.choose_file("#source-file", &sample("t1.jpg"));
    driver.click("#source-upload");
    driver.wait_for(
        "return window.camshow.sourceId",
        "the source upload",
        Duration::from_mins(1),
    );
    // Live: the fake webcam goes out over the WebSocket and comes back swapped.
    driver.click("#live-start");
    driver.wait_for(
        "return window.camshow.stats.framesSwapped >= 5",
        "swapped frames",
        Duration::from_mins(2),
    );
    let meta = driver.run("return window.camshow.stats.lastMeta");
    assert_eq!(meta["width"], 640, "{meta}");
    assert_eq!(meta["height"], 480, "{meta}");
    // The picture shown: the camera's frame with its face changed.
    let png = driver.run(
        "const i = document.getElementById('swapped'); const c = document.createElement('canvas');
         c.width = i.naturalWidth; c.height = i.naturalHeight; c.getContext('2d').drawImage(i, 0, 0);
         return c.toDataURL('image/png');",
    );
    let shown = image::load_from_memory(&b64(png.as_str().unwrap().split(',').nth(1).unwrap()))
        .unwrap()
        .to_rgb8();
    assert_eq!(shown.dimensions(), camera.dimensions());
    let changed = shown
        .pixels()
        .zip(camera.pixels())
        .filter(|(a, b)| a.0.iter().zip(b.0).any(|(x, y)| x.abs_diff(y) > 48))
        .count() as f64
        / f64::from(640 * 480);
    let overall = shown
        .as_raw()
        .iter()
        .zip(camera.as_raw())
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / (640.0 * 480.0 * 3.0);
    assert!(
        changed > 0.002 && changed < 0.25 && overall < 20.0,
        "the shown frame should be the camera's with one face changed: {changed:.4} of pixels changed, mean difference {overall:.1}"
    );
    assert_eq!(
        driver.run("return getComputedStyle(document.querySelector('.ai-label')).display !== 'none' && document.querySelector('.ai-label').textContent"),
        "AI-generated"
    );
    let stats = driver.run("return document.getElementById('live-stats').textContent");
    assert!(stats.as_str().unwrap().contains("fps"), "{stats}");
    if let Some(dir) = std::env::var_os("PAGE_SCREENSHOT_DIR") {
        let shot = driver.call("GET", "/screenshot", None);
        std::fs::write(
            Path::new(&dir).join("server-page.png"),
            b64(shot.as_str().unwrap()),
        )
        .unwrap();
    }
    driver.click("#live-stop");
    // A video job from the page, followed to its download link.
    let clip = clip(d, 1);
    driver.choose_file("#job-file", &clip);
    driver.click("#job-start");
    let href = driver.wait_for(
        "const a = document.getElementById('job-result'); return !a.hidden && a.getAttribute('href')",
        "the job's result",
        Duration::from_mins(3),
    );
    let result = get(&s, href.as_str().unwrap());
    assert_eq!(result.status, 200);
    let out = d.join("from-page.mp4");
    std::fs::write(&out, &result.body).unwrap();
    let streams = ffprobe_streams(&out);
    assert!(streams.contains("video,10"), "{streams}");
    assert!(
        exiftool("XMP:DigitalSourceType", &out).ends_with("compositeWithTrainedAlgorithmicMedia")
    );
}
