//! The live pipeline with the real models (CenterFace, classic swapper,
//! NudeNet gate) on the `test` and `file:` sources, over real threads,
//! sockets and FFmpeg.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use camshow_core::Frame;
use camshow_core::context::EngineContext;
use camshow_core::pipeline::SwapEngine;
use camshow_core::select::SelectMode;
use camshow_core::session::SourcePlan;
use camshow_core::settings::Settings;
use camshow_core::swap::SwapperChoice;
use camshow_media::live::sinks::{ChannelSink, FrameMeta, MjpegServer, Sink};
use camshow_media::live::source::{FileSource, FrameSource, TestPattern};
use camshow_media::live::{LiveControl, LiveOptions, mirror, run_live};
use camshow_test_utils::{exiftool, runtime, sample, store};

fn settings(selector: SelectMode) -> Settings {
    let mut s = Settings::default();
    s.engine.swapper = SwapperChoice::Classic;
    s.engine.selector = selector;
    // The runtime of `runtime(2)`: same settings, same engine context.
    s.runtime.intra_threads = 2;
    s
}

fn engine(selector: SelectMode) -> Arc<SwapEngine> {
    let ctx = EngineContext::new(runtime(2), store());
    Arc::new(SwapEngine::load(&ctx, &settings(selector)).unwrap())
}

/// Control for `engine` with the face of sample `photo` as the source.
fn control(engine: &Arc<SwapEngine>, photo: &str) -> Arc<LiveControl> {
    let plan = SourcePlan::one(engine.prepare_source(&read(photo)).unwrap());
    LiveControl::new(Arc::clone(engine), plan).unwrap()
}

fn read(name: &str) -> Frame {
    camshow_media::image_io::read_image(&sample(name)).unwrap()
}

/// A still clip of a sample photo (every frame the same), `seconds` long at `fps`.
fn still_clip(dir: &Path, photo: &str, seconds: u32, fps: u32) -> PathBuf {
    let out = dir.join(format!("{photo}.mp4"));
    let o = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-loop",
            "1",
            "-framerate",
            &fps.to_string(),
            "-i",
        ])
        .arg(sample(photo))
        .args([
            "-t",
            &seconds.to_string(),
            "-vf",
            "scale=480:-2,format=yuv420p",
            "-c:v",
            "libx264",
            "-qp",
            "0",
        ])
        .arg(&out)
        .output()
        .expect("ffmpeg is required (scripts/setup.sh installs it)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

type Received = Vec<(Frame, FrameMeta, Instant)>;

/// Collects what the pipeline hands out, with the time it arrived.
fn collector() -> (ChannelSink, std::thread::JoinHandle<Received>) {
    let (sink, rx) = ChannelSink::new(256);
    let h = std::thread::spawn(move || rx.iter().map(|(f, m)| (f, m, Instant::now())).collect());
    (sink, h)
}

/// An output with a fixed cost per frame (a slow display or encoder).
struct SlowSink {
    inner: ChannelSink,
    cost: Duration,
}

impl Sink for SlowSink {
    fn describe(&self) -> String {
        "slow".into()
    }
    fn send(&mut self, frame: &Frame, meta: &FrameMeta) -> camshow_media::Result<()> {
        std::thread::sleep(self.cost);
        self.inner.send(frame, meta)
    }
}

#[test]
fn slower_processing_drops_frames_and_latency_stays_bounded() {
    let engine = engine(SelectMode::Many);
    let control = control(&engine, "astronaut.png");
    // 60 fps in, and an output that takes 50 ms a frame: at most 20 frames a
    // second go out however fast the CPU, so frames must be dropped.
    let source = Box::new(TestPattern::new(640, 480, 60.0).unwrap());
    let (sink, out) = collector();
    let cost = Duration::from_millis(50);
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(SlowSink { inner: sink, cost })];
    let opts = LiveOptions {
        duration: Some(Duration::from_secs(4)),
        ..LiveOptions::default()
    };
    let stats = run_live(source, &mut sinks, &control, &opts).unwrap();
    drop(sinks);
    let frames = out.join().unwrap();
    println!("{stats:?}");
    // (Bounds leave room for a loaded CI machine; the point is capture ≫ output.)
    assert!(
        (30.0..80.0).contains(&stats.capture_fps),
        "capture ran at {} fps",
        stats.capture_fps
    );
    assert!(
        stats.processed >= 5 && stats.processed as f64 <= stats.seconds / cost.as_secs_f64() + 1.0,
        "{stats:?}"
    );
    // Each frame is output, dropped, or still in the slot at the end.
    assert!(
        stats.captured - stats.processed - stats.dropped <= 1,
        "{stats:?}"
    );
    assert!(stats.dropped > 0, "frames must be dropped, not queued");
    assert!(stats.processed + stats.dropped <= stats.captured);
    assert_eq!(frames.len() as u64, stats.processed);
    // Latency does not grow: the last frames are as fresh as the first ones.
    let lat: Vec<f64> = frames
        .iter()
        .map(|(_, m, at)| at.duration_since(m.captured_at).as_secs_f64() * 1000.0)
        .collect();
    let half = lat.len() / 2;
    let mut early = lat[..half].to_vec();
    early.sort_by(f64::total_cmp);
    let late_max = lat[half..].iter().copied().fold(0.0, f64::max);
    assert!(
        late_max < early[early.len() / 2] * 3.0 + 400.0,
        "latency grew: early median {:.0} ms, late max {late_max:.0} ms",
        early[early.len() / 2]
    );
    // Outputs keep pace with the source clock: sequence numbers advance at ~60 per second.
    let (first, last) = (&frames[0], &frames[frames.len() - 1]);
    let seq_rate = (last.1.seq - first.1.seq) as f64
        / last
            .1
            .captured_at
            .duration_since(first.1.captured_at)
            .as_secs_f64();
    assert!(
        (30.0..80.0).contains(&seq_rate),
        "output frames advance at {seq_rate:.1} source frames per second"
    );
    assert!(
        seq_rate > stats.output_fps * 2.0,
        "outputs skip ahead to the newest frame"
    );
    assert!(stats.safety_checks >= 3 && stats.safety_trips == 0);
}

#[test]
fn the_live_gate_checks_at_least_twice_a_second_and_frames_wait_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let clip = still_clip(dir.path(), "astronaut.png", 2, 15);
    let engine = engine(SelectMode::One);
    let control = control(&engine, "t1.jpg");
    let (sink, out) = collector();
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink)];
    let opts = LiveOptions {
        duration: Some(Duration::from_secs(3)),
        ..LiveOptions::default()
    };
    let src: Box<dyn FrameSource> = Box::new(FileSource::open(&clip, true, None).unwrap());
    let stats = run_live(src, &mut sinks, &control, &opts).unwrap();
    drop(sinks);
    let frames = out.join().unwrap();
    println!("{stats:?}");
    // The gate runs on its own thread, on the newest frame and the face's context crop.
    assert!(
        stats.safety_checks as f64 >= 2.0 * (stats.seconds - 0.5),
        "{} checks in {:.1} s",
        stats.safety_checks,
        stats.seconds
    );
    assert_eq!(stats.safety_trips, 0);
    // A frame waits for the verdict on it (or a newer one) before it is
    // swapped: the first frame too.
    assert_eq!(frames[0].1.faces_swapped, 1, "{:?}", frames[0].1);
    assert!(
        stats.frames_swapped + stats.safety_held_frames == stats.processed
            && stats.safety_held_frames <= 3,
        "{stats:?}"
    );
}

#[test]
fn the_test_camera_shows_a_moving_face_that_gets_swapped() {
    let engine = engine(SelectMode::One);
    let pattern = TestPattern::with_photo(640, 480, 30.0, &sample("astronaut.png")).unwrap();
    // A face is found in every frame, and it moves.
    let centre = |n: u64| {
        let faces = engine.analyse(&pattern.frame(n).unwrap()).unwrap();
        assert_eq!(faces.len(), 1, "frame {n}: {} faces", faces.len());
        let b = faces[0].bbox;
        (f32::midpoint(b[0], b[2]), f32::midpoint(b[1], b[3]))
    };
    let (a, b) = (centre(0), centre(30));
    assert!(
        (b.0 - a.0).abs() > 60.0,
        "the face moved from {a:?} to {b:?}"
    );
    // In a live session the face is swapped.
    let control = control(&engine, "t1.jpg");
    let source =
        Box::new(TestPattern::with_photo(640, 480, 30.0, &sample("astronaut.png")).unwrap());
    let opts = LiveOptions {
        duration: Some(Duration::from_secs(2)),
        ..LiveOptions::default()
    };
    let stats = run_live(source, &mut [], &control, &opts).unwrap();
    assert!(
        stats.processed > 0 && stats.frames_swapped + 3 >= stats.processed,
        "{stats:?}"
    );
}

#[test]
fn mirror_is_exact_on_frames_without_faces() {
    let engine = engine(SelectMode::Many);
    let control = control(&engine, "astronaut.png");
    let pattern = TestPattern::new(320, 240, 20.0).unwrap();
    let source = Box::new(TestPattern::new(320, 240, 20.0).unwrap());
    let (sink, out) = collector();
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink)];
    let opts = LiveOptions {
        mirror: true,
        max_frames: Some(5),
        ..LiveOptions::default()
    };
    run_live(source, &mut sinks, &control, &opts).unwrap();
    drop(sinks);
    let frames = out.join().unwrap();
    assert_eq!(frames.len(), 5);
    for (f, m, _) in &frames {
        assert_eq!(m.faces_swapped, 0);
        let mut want = pattern.frame(m.seq - 1).unwrap();
        mirror(&mut want);
        assert_eq!(f, &want, "frame {} is the mirrored input", m.seq);
    }
}

#[test]
fn faces_are_swapped_and_the_source_face_can_change_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let clip = still_clip(dir.path(), "astronaut.png", 2, 10);
    let engine = engine(SelectMode::One);
    let control = control(&engine, "t1.jpg");
    let source: Box<dyn FrameSource> = Box::new(FileSource::open(&clip, true, None).unwrap());
    let (sink, out) = collector();
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink)];
    let opts = LiveOptions {
        duration: Some(Duration::from_secs(5)),
        ..LiveOptions::default()
    };
    let second = engine.prepare_source(&read("astronaut.png")).unwrap();
    let c2 = control.clone();
    let switch_at = Instant::now() + Duration::from_millis(2500);
    let switcher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2500));
        c2.set_source(second);
    });
    let stats = run_live(source, &mut sinks, &control, &opts).unwrap();
    switcher.join().unwrap();
    drop(sinks);
    let frames = out.join().unwrap();
    assert_eq!(control.source_changes(), 1);
    // Frames wait for the gate's verdict (at most 0.5 s), so none goes out
    // unswapped unless a loaded machine kept the gate from answering.
    assert!(
        stats.frames_swapped + stats.safety_held_frames == stats.processed
            && stats.safety_held_frames <= 3,
        "{stats:?}"
    );
    let input = camshow_core::imgproc::resize_bilinear(&read("astronaut.png"), 480, 480);
    let before: Vec<&Frame> = frames
        .iter()
        .filter(|(_, m, _)| m.captured_at + Duration::from_millis(300) < switch_at)
        .map(|(f, _, _)| f)
        .collect();
    let after: Vec<&Frame> = frames
        .iter()
        .filter(|(_, m, _)| m.captured_at > switch_at + Duration::from_millis(300))
        .map(|(f, _, _)| f)
        .collect();
    assert!(
        before.len() >= 3 && after.len() >= 3,
        "{} before, {} after",
        before.len(),
        after.len()
    );
    let diff = |a: &Frame, b: &Frame| {
        a.data()
            .iter()
            .zip(b.data())
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum::<u64>() as f64
            / a.data().len() as f64
    };
    let (b, a) = (before[before.len() - 1], after[after.len() - 1]);
    let (swapped, changed, steady) = (
        diff(b, &input),
        diff(a, b),
        diff(before[before.len() - 2], b),
    );
    println!(
        "swap vs input {swapped:.3}, after vs before {changed:.3}, within a phase {steady:.3}"
    );
    assert!(swapped > 0.3, "the face was swapped");
    assert!(
        changed > 0.3,
        "the new source face is used after the change"
    );
    // The still clip gives near-identical outputs within one phase (tracking keeps the face steady).
    assert!(steady < changed / 2.0);
}

/// A test pattern that fails once at frame 5 and must be re-opened.
struct Flaky {
    inner: TestPattern,
    n: u32,
    failed: bool,
}

impl FrameSource for Flaky {
    fn describe(&self) -> String {
        "flaky pattern".into()
    }
    fn nominal_fps(&self) -> f64 {
        20.0
    }
    fn next(&mut self) -> camshow_media::Result<Option<Frame>> {
        self.n += 1;
        if self.n == 5 && !self.failed {
            self.failed = true;
            return Err(camshow_media::Error::Live("unplugged".into()));
        }
        self.inner.next()
    }
    fn reopen(&mut self) -> camshow_media::Result<()> {
        Ok(())
    }
}

#[test]
fn an_unplugged_source_is_reopened_and_the_stream_goes_on() {
    let engine = engine(SelectMode::Many);
    let control = control(&engine, "astronaut.png");
    let source = Box::new(Flaky {
        inner: TestPattern::new(160, 120, 20.0).unwrap(),
        n: 0,
        failed: false,
    });
    let (sink, out) = collector();
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink)];
    let opts = LiveOptions {
        duration: Some(Duration::from_secs(3)),
        ..LiveOptions::default()
    };
    let stats = run_live(source, &mut sinks, &control, &opts).unwrap();
    drop(sinks);
    let frames = out.join().unwrap();
    assert_eq!(stats.reconnects, 1, "{stats:?}");
    assert!(
        frames.iter().any(|(_, m, _)| m.seq > 10),
        "frames flow again after the reconnect"
    );
}

#[test]
fn the_mjpeg_stream_is_read_by_ffmpeg_over_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let clip = still_clip(dir.path(), "astronaut.png", 2, 10);
    let engine = engine(SelectMode::One);
    let control = control(&engine, "t1.jpg");
    let server = MjpegServer::bind("127.0.0.1:0").unwrap();
    let url = server.url();
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(server)];
    let out_pattern = dir.path().join("got%02d.jpg");
    let c2 = Arc::clone(&control);
    let client = std::thread::spawn(move || {
        let o = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i", &url, "-frames:v", "8"])
            .arg(&out_pattern)
            .output()
            .unwrap();
        c2.stop();
        o
    });
    let opts = LiveOptions {
        duration: Some(Duration::from_secs(30)),
        overlay: true,
        ..LiveOptions::default()
    };
    let stats = run_live(
        Box::new(FileSource::open(&clip, true, None).unwrap()),
        &mut sinks,
        &control,
        &opts,
    )
    .unwrap();
    let o = client.join().unwrap();
    assert!(
        o.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stats.processed >= 8);
    for i in 1..=8 {
        let p = dir.path().join(format!("got{i:02}.jpg"));
        let img = image::open(&p).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (480, 480));
    }
    // The stream's JPEGs say they are AI-generated.
    let raw = dir.path().join("raw.jpg");
    let server2 = MjpegServer::bind("127.0.0.1:0").unwrap();
    let addr = server2.addr();
    let h = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /snapshot.jpg HTTP/1.0\r\n\r\n").unwrap();
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap();
        v
    });
    let f = read("astronaut.png");
    let t = Instant::now();
    while !h.is_finished() && t.elapsed() < Duration::from_secs(5) {
        server2.publish(&f, true).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    let body = h.join().unwrap();
    let at = body.windows(2).position(|w| w == [0xFF, 0xD8]).unwrap();
    std::fs::write(&raw, &body[at..]).unwrap();
    assert!(
        exiftool("XMP-iptcExt:DigitalSourceType", &raw)
            .ends_with("compositeWithTrainedAlgorithmicMedia")
    );
}

/// The parity suite's synthetic stand-ins for models that cannot be downloaded here.
fn stand_in_store() -> camshow_core::models::ModelStore {
    let p = camshow_test_utils::parity_model;
    store()
        .with_override("2d106det", p("2d106det.onnx"))
        .unwrap()
        .with_override("w600k_r50", p("w600k_r50.onnx"))
        .unwrap()
}

fn differing(a: &Frame, b: &Frame) -> usize {
    a.data()
        .chunks_exact(3)
        .zip(b.data().chunks_exact(3))
        .filter(|(x, y)| x != y)
        .count()
}

#[test]
fn settings_change_mid_stream_without_losing_frames() {
    let dir = tempfile::tempdir().unwrap();
    let clip = still_clip(dir.path(), "astronaut.png", 2, 10);
    let ctx = EngineContext::new(runtime(2), stand_in_store());
    let base = settings(SelectMode::One);
    let mut with_mouth = base.clone();
    with_mouth
        .set_key("processors[0].mouth_mask", "60")
        .unwrap();
    // Warm the cache with what the change needs, so the change itself loads nothing.
    SwapEngine::load(&ctx, &with_mouth).unwrap();
    let engine = Arc::new(SwapEngine::load(&ctx, &base).unwrap());
    let control = control(&engine, "t1.jpg");
    let (sink, out) = collector();
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink)];
    let opts = LiveOptions {
        duration: Some(Duration::from_secs(5)),
        ..LiveOptions::default()
    };
    let c2 = Arc::clone(&control);
    let changer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2500));
        let sessions = camshow_core::runtime::sessions_created();
        c2.set_settings(&with_mouth).unwrap();
        assert_eq!(
            camshow_core::runtime::sessions_created(),
            sessions,
            "the change loaded a model"
        );
        Instant::now()
    });
    let source: Box<dyn FrameSource> = Box::new(FileSource::open(&clip, true, None).unwrap());
    let stats = run_live(source, &mut sinks, &control, &opts).unwrap();
    let changed_at = changer.join().unwrap();
    drop(sinks);
    let frames = out.join().unwrap();
    assert_eq!(control.settings_changes(), 1);
    assert_eq!(
        frames.len() as u64,
        stats.processed,
        "every processed frame reached the output"
    );
    // Every frame is swapped (each waits for the gate's verdict).
    assert!(
        stats.frames_swapped + stats.safety_held_frames == stats.processed
            && stats.safety_held_frames <= 3,
        "{stats:?}"
    );
    let before: Vec<&Frame> = frames
        .iter()
        .filter(|(_, m, _)| m.captured_at + Duration::from_millis(300) < changed_at)
        .map(|(f, _, _)| f)
        .collect();
    let after: Vec<&Frame> = frames
        .iter()
        .filter(|(_, m, _)| m.captured_at > changed_at + Duration::from_millis(300))
        .map(|(f, _, _)| f)
        .collect();
    assert!(
        before.len() >= 2 && after.len() >= 2,
        "{} before, {} after",
        before.len(),
        after.len()
    );
    // Same input every frame: steady within a phase, different across the change.
    let across = differing(before[before.len() - 1], after[after.len() - 1]);
    let within = differing(after[0], after[after.len() - 1]);
    assert!(across > 100, "the mouth mask changed only {across} pixels");
    assert!(within < across / 4, "within {within}, across {across}");
    // Invalid settings are refused and the session goes on.
    let mut bad = base.clone();
    bad.set_key("processors[0].opacity", "4").unwrap();
    assert!(control.set_settings(&bad).is_err());
}

#[test]
fn a_face_map_works_in_live_mode() {
    let dir = tempfile::tempdir().unwrap();
    let clip = still_clip(dir.path(), "astronaut.png", 2, 10);
    let ctx = EngineContext::new(runtime(2), stand_in_store());
    let s = settings(SelectMode::One);
    let needs = camshow_core::analysis::Needs {
        embedding: true,
        landmarks_106: false,
    };
    let engine = Arc::new(SwapEngine::load_with(&ctx, &s, needs).unwrap());
    // The person in the clip, as `faces scan` would record them.
    let astronaut = read("astronaut.png");
    let small = camshow_core::imgproc::resize_bilinear(&astronaut, 480, 480);
    let faces = engine.analyse(&small).unwrap();
    let embedding = faces[0].embedding.clone().unwrap();
    let source = engine.prepare_source(&read("t1.jpg")).unwrap();
    let run = |person: Vec<f32>| {
        let map = camshow_core::mapping::FaceMap {
            target: clip.clone(),
            max_distance: 0.3,
            people: vec![camshow_core::mapping::Person {
                id: 0,
                thumbnail: "p.png".into(),
                frames_seen: vec![0],
                first_box: faces[0].bbox,
                embedding: person,
                source: Some("t1.jpg".into()),
            }],
        };
        let plan = SourcePlan::Mapped {
            map: Arc::new(map),
            sources: Arc::new(vec![Some(source.clone())]),
        };
        let control = LiveControl::new(Arc::clone(&engine), plan).unwrap();
        let opts = LiveOptions {
            duration: Some(Duration::from_secs(2)),
            ..LiveOptions::default()
        };
        let src: Box<dyn FrameSource> = Box::new(FileSource::open(&clip, true, None).unwrap());
        run_live(src, &mut [], &control, &opts).unwrap()
    };
    let mapped = run(embedding.clone());
    // Every frame is swapped (each waits for the gate's verdict).
    assert!(
        mapped.processed > 0
            && mapped.frames_swapped + mapped.safety_held_frames == mapped.processed
            && mapped.safety_held_frames <= 3,
        "{mapped:?}"
    );
    // Someone else in the map: nobody in the stream is swapped.
    let other: Vec<f32> = embedding
        .iter()
        .enumerate()
        .map(|(i, v)| if i % 2 == 0 { -v } else { *v })
        .collect();
    let unmapped = run(other);
    assert!(
        unmapped.processed > 0 && unmapped.frames_swapped == 0,
        "{unmapped:?}"
    );
}

/// The moving sample face, with the gate's test marker (a checkerboard:
/// unsafe in test builds, `camshow-core/test-marker`) on the frames made
/// between `window.0` and `window.1` after the first one.
struct Marked {
    inner: TestPattern,
    start: Option<Instant>,
    window: (Duration, Duration),
    times: Arc<std::sync::Mutex<Vec<Instant>>>,
}

impl FrameSource for Marked {
    fn describe(&self) -> String {
        "marked pattern".into()
    }
    fn nominal_fps(&self) -> f64 {
        self.inner.nominal_fps()
    }
    fn next(&mut self) -> camshow_media::Result<Option<Frame>> {
        let Some(mut f) = self.inner.next()? else {
            return Ok(None);
        };
        let now = Instant::now();
        let since = now.duration_since(*self.start.get_or_insert(now));
        if since >= self.window.0 && since < self.window.1 {
            camshow_core::safety::test_marker::paint(&mut f, 0, 270, 96, 90);
            self.times.lock().unwrap().push(now);
        }
        Ok(Some(f))
    }
    fn reopen(&mut self) -> camshow_media::Result<()> {
        Ok(())
    }
}

#[test]
fn live_swapping_stops_at_an_unsafe_check_and_resumes_after_the_cool_down() {
    let engine = engine(SelectMode::One);
    let control = control(&engine, "t1.jpg");
    let marked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let source = Box::new(Marked {
        inner: TestPattern::with_photo(480, 360, 15.0, &sample("astronaut.png")).unwrap(),
        start: None,
        window: (Duration::from_secs(1), Duration::from_millis(1600)),
        times: Arc::clone(&marked),
    });
    let (sink, out) = collector();
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink)];
    let opts = LiveOptions {
        duration: Some(Duration::from_secs(5)),
        safety: camshow_core::safety::SafetyPolicy {
            live_cooldown: Duration::from_secs(1),
            ..Default::default()
        },
        ..LiveOptions::default()
    };
    let stats = run_live(source, &mut sinks, &control, &opts).unwrap();
    drop(sinks);
    let frames = out.join().unwrap();
    println!("{stats:?}");
    let marked = marked.lock().unwrap().clone();
    let (t0, t1) = (marked[0], *marked.last().unwrap());
    assert_eq!(stats.safety_trips, 1, "{stats:?}");
    let at = |from: Instant, ms: u64| from + Duration::from_millis(ms);
    let phase = |lo: Instant, hi: Instant| -> Vec<&FrameMeta> {
        frames
            .iter()
            .filter(|(_, m, _)| m.captured_at >= lo && m.captured_at < hi)
            .map(|(_, m, _)| m)
            .collect()
    };
    // Before the marker: swapped.
    let before = phase(t0.checked_sub(Duration::from_millis(700)).unwrap(), t0);
    assert!(
        !before.is_empty() && before.iter().all(|m| m.faces_swapped == 1),
        "{before:?}"
    );
    // From shortly after the marker appeared until the cool-down after its
    // last unsafe check: held, the original frame with the notice, no face swapped.
    let held = phase(at(t0, 600), at(t1, 1000));
    assert!(held.len() >= 3, "{held:?}");
    assert!(
        held.iter().all(|m| m.safety_hold && m.faces_swapped == 0),
        "{held:?}"
    );
    // Well after the cool-down, a safe check resumed swapping.
    let after = phase(at(t1, 2400), at(t1, 10_000));
    assert!(
        !after.is_empty() && after.iter().all(|m| m.faces_swapped == 1),
        "{after:?}"
    );
    // The held frames carry the notice: their top rows differ from the input's.
    let held_frame = frames
        .iter()
        .find(|(_, m, _)| m.captured_at >= at(t0, 600) && m.safety_hold)
        .map(|(f, _, _)| f)
        .unwrap();
    let notice = (0..24u32)
        .flat_map(|y| (8..300u32).map(move |x| (x, y)))
        .filter(|&(x, y)| held_frame.pixel(x, y) == [255, 200, 0])
        .count();
    assert!(notice > 50, "no notice drawn ({notice} px)");
}

/// `photo` pasted into a grey 800×600 frame at (`x`, 60).
fn in_canvas(photo: &Frame, x: u32) -> Frame {
    let mut f = Frame::filled(800, 600, [90, 90, 90]).unwrap();
    for y in 0..photo.height() {
        for px in 0..photo.width() {
            f.put_pixel(i64::from(x + px), i64::from(60 + y), photo.pixel(px, y));
        }
    }
    f
}

fn max_point_gap(a: &[[f32; 2]; 5], b: &[[f32; 2]; 5]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(p, q)| (p[0] - q[0]).abs().max((p[1] - q[1]).abs()))
        .fold(0.0, f32::max)
}

#[test]
fn between_full_detections_a_face_is_found_where_it_moved_and_a_still_face_keeps_still() {
    use camshow_core::session::FrameSession;
    let engine = engine(SelectMode::One);
    let photo = camshow_core::imgproc::resize_bilinear(&read("astronaut.png"), 384, 384);
    let plan = SourcePlan::one(engine.prepare_source(&read("t1.jpg")).unwrap());
    let mut session =
        FrameSession::tracked(plan, &engine.settings().engine, 30.0).with_detect_every(5);
    let still = in_canvas(&photo, 100);
    let whole = engine.analyse(&still).unwrap();
    assert_eq!(whole.len(), 1, "{whole:?}");
    let (mut due, mut points) = (Vec::new(), Vec::new());
    for _ in 0..12 {
        due.push(session.full_detection_due());
        let faces = session.find_faces(&engine, &still).unwrap();
        assert_eq!(faces.len(), 1, "{faces:?}");
        let targets = session.targets(faces).unwrap();
        points.push(targets[0].0.kps);
    }
    // The full detector on frames 0, 5 and 10 only.
    let expected: Vec<bool> = (0..12).map(|i| i % 5 == 0).collect();
    assert_eq!(due, expected);
    // Searched near where it was, the still face is found where the full
    // detector finds it, and at exactly the same place every frame.
    assert!(
        max_point_gap(&points[0], &whole[0].kps) < 3.0,
        "{:?} vs {:?}",
        points[0],
        whole[0].kps
    );
    assert!(points.iter().all(|p| *p == points[0]), "{points:?}");
    // Moved 24 px to the right: found there, without the full detector.
    let moved = in_canvas(&photo, 124);
    assert!(!session.full_detection_due());
    let found = session.find_faces(&engine, &moved).unwrap();
    let there = engine.analyse(&moved).unwrap();
    assert_eq!((found.len(), there.len()), (1, 1));
    assert!(
        max_point_gap(&found[0].kps, &there[0].kps) < 3.0,
        "{:?} vs {:?}",
        found[0].kps,
        there[0].kps
    );
    session.targets(found).unwrap();
    // Gone: nothing is found, and the full detector is due at once.
    assert!(!session.full_detection_due());
    let blank = Frame::filled(800, 600, [90, 90, 90]).unwrap();
    assert!(session.find_faces(&engine, &blank).unwrap().is_empty());
    assert!(session.full_detection_due());
}

#[test]
fn a_live_session_runs_the_full_detector_every_n_frames_and_swaps_in_between() {
    let dir = tempfile::tempdir().unwrap();
    let clip = still_clip(dir.path(), "astronaut.png", 3, 20);
    for every in [1u32, 10] {
        let mut s = settings(SelectMode::One);
        s.live.detect_every = every;
        let ctx = EngineContext::new(runtime(2), store());
        let engine = Arc::new(SwapEngine::load(&ctx, &s).unwrap());
        let control = control(&engine, "t1.jpg");
        let source = Box::new(FileSource::open(&clip, false, None).unwrap());
        let stats = run_live(source, &mut [], &control, &LiveOptions::default()).unwrap();
        assert!(stats.processed >= 10, "{stats:?}");
        if every == 1 {
            assert_eq!(stats.full_detections, stats.processed, "{stats:?}");
        } else {
            assert!(
                stats.full_detections >= 1 && stats.full_detections * 5 <= stats.processed,
                "{stats:?}"
            );
        }
        // The first frame is searched whole at once; every frame is swapped
        // (a few may wait on a loaded machine for the gate's first verdict).
        assert!(
            stats.frames_swapped + 4 >= stats.processed,
            "detect_every {every}: {stats:?}"
        );
    }
}
