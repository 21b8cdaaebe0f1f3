//! `camshow live` and `camshow cameras` as a user runs them: a file played
//! as a camera, the MJPEG stream read by FFmpeg, and the preview window on a
//! real X server (Xvfb) captured with FFmpeg's x11grab.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use camshow_test_utils::{sample, store};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn camshow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_camshow"))
}

/// A 4 s, 10 fps pan over t1.jpg at 640×400.
fn clip(dir: &Path) -> PathBuf {
    let out = dir.join("clip.mp4");
    let o = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-loop", "1", "-framerate", "10", "-i"])
        .arg(sample("t1.jpg"))
        .args([
            "-t",
            "4",
            "-vf",
            "scale=640:-2,crop=640:400:'20*sin(t)':0,format=yuv420p",
            "-c:v",
            "libx264",
        ])
        .arg(&out)
        .output()
        .expect("ffmpeg is required (scripts/setup.sh installs it)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Xvfb(Child, String);

impl Xvfb {
    fn start() -> Self {
        for n in 90..140 {
            let display = format!(":{n}");
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                || Path::new(&format!("/tmp/.X{n}-lock")).exists()
            {
                continue;
            }
            let mut child = Command::new("Xvfb")
                .args([display.as_str(), "-screen", "0", "800x600x24", "-nolisten", "tcp"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb is required for the preview test (scripts/setup.sh installs the xvfb package)");
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(10) {
                if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                    return Self(child, display);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("Xvfb {display} did not start");
        }
        panic!("no free X display number");
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn live_swaps_a_file_into_the_preview_window_and_the_mjpeg_stream() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let clip = clip(dir.path());
    let x = Xvfb::start();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut live = camshow()
        .args([
            "live",
            "-s",
            s(&sample("astronaut.png")),
            "--camera",
            &format!("file:{}", s(&clip)),
            "--mjpeg",
            &addr,
            "--preview",
            "--many-faces",
            "--duration",
            "20",
            "--json",
        ])
        .env("DISPLAY", &x.1)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A real client reads the stream over loopback.
    let pattern = dir.path().join("mjpeg%02d.jpg");
    let t = Instant::now();
    let mut got = false;
    while t.elapsed() < Duration::from_secs(15) && !got {
        let o = Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-i",
                &format!("http://{addr}/stream.mjpg"),
                "-frames:v",
                "6",
            ])
            .arg(&pattern)
            .output()
            .unwrap();
        got = o.status.success() && dir.path().join("mjpeg06.jpg").exists();
        if !got {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    assert!(got, "ffmpeg could not read 6 frames from the MJPEG stream");
    let first = image::open(dir.path().join("mjpeg01.jpg"))
        .unwrap()
        .to_rgb8();
    assert_eq!(first.dimensions(), (640, 400));
    // The window shows the stream: grab the X screen.
    let shot = dir.path().join("screen.png");
    let o = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "x11grab",
            "-video_size",
            "800x600",
            "-i",
            &x.1,
            "-frames:v",
            "1",
        ])
        .arg(&shot)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "x11grab: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let screen = image::open(&shot).unwrap().to_rgb8();
    let lit = screen
        .pixels()
        .filter(|p| p.0.iter().any(|&c| c > 40))
        .count();
    assert!(
        lit > 640 * 400 / 2,
        "the preview window shows no picture ({lit} lit pixels)"
    );
    // The window holds the stream's picture: its mean colour is close to the MJPEG frame's.
    let mean = |img: &image::RgbImage| {
        let n = img
            .pixels()
            .filter(|p| p.0.iter().any(|&c| c > 40))
            .count()
            .max(1) as f64;
        let mut m = [0f64; 3];
        for p in img.pixels().filter(|p| p.0.iter().any(|&c| c > 40)) {
            for c in 0..3 {
                m[c] += f64::from(p[c]);
            }
        }
        m.map(|v| v / n)
    };
    let (a, b) = (mean(&screen), mean(&first));
    assert!(
        (0..3).all(|c| (a[c] - b[c]).abs() < 25.0),
        "window {a:?} vs stream {b:?}"
    );
    let _ = Command::new("kill")
        .args(["-INT", &live.id().to_string()])
        .status();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) && matches!(live.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = live.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "Ctrl-C ends the session cleanly: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["processed"].as_u64().unwrap() >= 6);
    assert!(v["frames_swapped"].as_u64().unwrap() >= 1);
    assert!(v["latency_p95_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn live_options_and_errors() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let astro = sample("astronaut.png");
    let run = |args: &[&str]| camshow().args(args).output().unwrap();
    // No output chosen.
    let o = run(&["live", "-s", s(&astro), "--camera", "test"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--preview"));
    // A camera that is not there.
    let o = run(&[
        "live",
        "-s",
        s(&astro),
        "--camera",
        "/dev/video77",
        "--duration",
        "1",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/dev/video77"));
    // No display for the preview.
    let o = camshow()
        .args([
            "live",
            "-s",
            s(&astro),
            "--camera",
            "test",
            "--preview",
            "--duration",
            "2",
        ])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("display"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A non-video device as the virtual camera says how to set one up.
    let o = run(&[
        "live",
        "-s",
        s(&astro),
        "--camera",
        "test",
        "--virtual-camera",
        "/dev/null",
        "--duration",
        "1",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("v4l2loopback"));
    // A measurement run on the test pattern with mirror and overlay, stats printed.
    let o = run(&[
        "live",
        "-s",
        s(&sample("t1.jpg")),
        "--camera",
        "test",
        "--resolution",
        "320x240",
        "--fps",
        "15",
        "--live-mirror",
        "--overlay",
        "--duration",
        "2",
        "--stats",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("latency") && text.contains("p95") && text.contains("dropped"),
        "{text}"
    );
    // `--camera test` shows the sample face moving: a new user sees a swap.
    assert!(text.contains("astronaut.png moving"), "{text}");
    let swapped: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("faces swapped in"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(swapped >= 5, "{text}");
    // Bad values.
    for bad in [
        &["--resolution", "big"][..],
        &["--fps", "0"],
        &["--opacity", "3"],
    ] {
        let mut a = vec![
            "live",
            "-s",
            s(&astro),
            "--camera",
            "test",
            "--duration",
            "1",
        ];
        a.extend_from_slice(bad);
        assert!(!run(&a).status.success(), "{bad:?} accepted");
    }
    // Cameras are listed (or their absence explained).
    let o = run(&["cameras"]);
    assert!(o.status.success());
    assert!(!String::from_utf8_lossy(&o.stdout).trim().is_empty());
    let o = run(&["cameras", "--json"]);
    assert!(
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .unwrap()
            .is_array()
    );
    let _ = dir;
}

/// The V4L2 virtual camera, end to end: runs where a v4l2loopback device
/// exists (`sudo modprobe v4l2loopback video_nr=10 exclusive_caps=1`).
/// The CI kernel cannot load modules, so it is ignored there and reported
/// as skipped (with this reason) by the test command; run it where the
/// device exists with `cargo nextest run --run-ignored only virtual_camera`.
/// The RGB→YUYV conversion it relies on is tested exactly in camshow-media.
#[test]
#[ignore = "needs a v4l2loopback device (sudo modprobe v4l2loopback video_nr=10 exclusive_caps=1)"]
fn virtual_camera_on_a_loopback_device() {
    let loopback = camshow_media::camera::list_cameras().into_iter().find(|c| {
        c.name.to_lowercase().contains("loopback")
            || c.name.contains("Dummy")
            || c.name.contains("Camshow")
    });
    let cam = loopback.expect("no v4l2loopback device here: see README \"Virtual camera\"");
    store();
    let o = camshow()
        .args([
            "live",
            "-s",
            s(&sample("astronaut.png")),
            "--camera",
            "test",
            "--resolution",
            "640x480",
            "--virtual-camera",
            &cam.id,
            "--duration",
            "4",
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let dir = tempfile::tempdir().unwrap();
    let grab = dir.path().join("vcam.png");
    let g = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "v4l2",
            "-i",
            &cam.id,
            "-frames:v",
            "1",
        ])
        .arg(&grab)
        .output()
        .unwrap();
    let out = o.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
    assert_eq!(
        image::open(&grab).unwrap().to_rgb8().dimensions(),
        (640, 480)
    );
}
