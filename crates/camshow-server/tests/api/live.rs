//! `/v1/live` and `/v1/live/camera` with a real WebSocket client
//! (tungstenite) over loopback, the real models and the real gate.

use std::net::TcpStream;

use tungstenite::{Message, WebSocket};

use super::*;

type Socket = WebSocket<TcpStream>;

/// Opens `path` as a WebSocket, or the HTTP status it was refused with.
pub(crate) fn connect(s: &Server, path: &str) -> Result<Socket, u16> {
    let stream = TcpStream::connect(s.base.trim_start_matches("http://")).unwrap();
    let url = format!("ws{}{path}", s.base.trim_start_matches("http"));
    match tungstenite::client::client(url.as_str(), stream) {
        Ok((ws, _)) => {
            ws.get_ref()
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            Ok(ws)
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            Err(r.status().as_u16())
        }
        Err(e) => panic!("handshake: {e}"),
    }
}

/// What came back: JSON messages, and each frame's metadata with its JPEG.
#[derive(Default)]
pub(crate) struct Heard {
    pub(crate) json: Vec<Value>,
    pub(crate) frames: Vec<(Value, Vec<u8>, Instant)>,
    closed: bool,
}

/// Reads whatever arrives within `wait`.
pub(crate) fn listen(ws: &mut Socket, heard: &mut Heard, wait: Duration) {
    let until = Instant::now() + wait;
    while Instant::now() < until && !heard.closed {
        match ws.read() {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                heard.json.push(v);
            }
            Ok(Message::Binary(b)) => {
                let meta = heard
                    .json
                    .iter()
                    .rev()
                    .find(|v| v["type"] == "frame")
                    .cloned()
                    .expect("a frame's metadata comes before it");
                heard.frames.push((meta, b.to_vec(), Instant::now()));
            }
            Ok(Message::Close(_)) => heard.closed = true,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                heard.closed = true;
            }
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Sends one message (retrying while the socket's buffer is full).
pub(crate) fn send(ws: &mut Socket, msg: Message) {
    let mut msg = Some(msg);
    loop {
        let r = match msg.take() {
            Some(m) => ws.send(m),
            None => ws.flush(),
        };
        match r {
            Ok(()) => return,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("send: {e}"),
        }
    }
}

fn control(ws: &mut Socket, heard: &mut Heard, msg: &str) -> Value {
    let before = heard.json.len();
    send(ws, Message::text(msg));
    let until = Instant::now() + Duration::from_mins(1);
    loop {
        listen(ws, heard, Duration::from_millis(50));
        if let Some(v) = heard.json[before..]
            .iter()
            .find(|v| v["type"] != "frame")
            .cloned()
        {
            return v;
        }
        assert!(Instant::now() < until, "no answer to {msg}");
    }
}

/// The frames of a generated 2 s clip of the astronaut, as JPEGs.
fn clip_frames(dir: &Path) -> Vec<Vec<u8>> {
    let clip = clip(dir, 2);
    let out = dir.join("frames");
    std::fs::create_dir_all(&out).unwrap();
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&clip)
        .args(["-q:v", "3"])
        .arg(out.join("f%03d.jpg"))
        .status()
        .unwrap();
    assert!(st.success());
    let mut names: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names.iter().map(|p| read(p)).collect()
}

pub(crate) fn upload_source(s: &Server, photo: &str) -> String {
    let r = post_form(
        s,
        "/v1/sources",
        &[("photo", Some("me.jpg"), &read(&sample(photo)))],
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_str().unwrap().to_string()
}

fn rgb(jpeg: &[u8]) -> image::RgbImage {
    image::load_from_memory(jpeg).unwrap().to_rgb8()
}

fn mean_diff(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / a.as_raw().len() as f64
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn a_client_streams_a_clip_and_gets_each_frame_back_swapped() {
    let s = Server::start(|_| {});
    let source = upload_source(&s, "t1.jpg");
    let frames = clip_frames(s.dir.path());
    assert_eq!(frames.len(), 20);
    let mut ws = connect(&s, &format!("/v1/live?source={source}&fps=10")).unwrap();
    let mut heard = Heard::default();
    // Paced like a 10 fps camera, waiting for each answer (as the page does),
    // so the round trip is the engine's, not a queue's.
    let mut sent_at = Vec::new();
    for f in &frames {
        sent_at.push(Instant::now());
        send(&mut ws, Message::binary(f.clone()));
        let want = sent_at.len();
        let until = Instant::now() + Duration::from_secs(30);
        while heard.frames.len() < want && Instant::now() < until {
            listen(&mut ws, &mut heard, Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100).saturating_sub(sent_at[want - 1].elapsed()));
    }
    assert_eq!(heard.frames.len(), 20, "{:?}", heard.json.last());
    let mut rtt = Vec::new();
    let mut server = Vec::new();
    for (meta, jpeg, at) in &heard.frames {
        let input = meta["input"].as_u64().unwrap() as usize;
        assert_eq!(meta["faces_swapped"], 1, "{meta}");
        assert_eq!(meta["safety_hold"], false, "{meta}");
        let st = &meta["stages_ms"];
        assert!(
            st["detect"].as_f64().unwrap() > 0.0 && st["swap"].as_f64().unwrap() > 0.0,
            "{meta}"
        );
        // Labelled as AI-generated, with what was done.
        let xmp = camshow_media::provenance::find_xmp(jpeg).expect("a live frame carries XMP");
        assert!(
            xmp.contains("compositeWithTrainedAlgorithmicMedia"),
            "{xmp}"
        );
        assert!(xmp.contains("face-swap"), "{xmp}");
        // The face changed; the picture is the frame that was sent.
        let (out, sent) = (rgb(jpeg), rgb(&frames[input - 1]));
        let d = mean_diff(&out, &sent);
        assert!(d > 1.0 && d < 40.0, "frame {input}: mean difference {d}");
        rtt.push(at.duration_since(sent_at[input - 1]).as_secs_f64() * 1000.0);
        server.push(meta["latency_ms"].as_f64().unwrap());
    }
    let (p50, p95) = (percentile(&mut rtt, 0.5), percentile(&mut rtt, 0.95));
    println!(
        "live over WebSocket, 256×256 at 10 fps: round trip p50 {p50:.1} ms, p95 {p95:.1} ms; server receive-to-send p50 {:.1} ms",
        percentile(&mut server, 0.5)
    );
    // Asked to stop, it says what it did, then closes.
    let end = control(&mut ws, &mut heard, r#"{"type":"stop"}"#);
    assert_eq!(end["type"], "stopping");
    listen(&mut ws, &mut heard, Duration::from_secs(5));
    let stats = &heard.json.iter().find(|v| v["type"] == "end").unwrap()["stats"];
    assert_eq!(stats["processed"], 20, "{stats}");
    assert_eq!(stats["frames_swapped"], 20, "{stats}");
    assert!(stats["safety_checks"].as_u64().unwrap() >= 1, "{stats}");
    assert!(heard.closed);
    let m = String::from_utf8(get(&s, "/v1/metrics").body).unwrap();
    assert!(m.contains("\ncamshow_live_frames_total 20\n"), "{m}");
    assert!(m.contains("camshow_live_latency_seconds_count 20\n"), "{m}");
    // Per stage, and the GPUs NVML sees (none on a machine without NVIDIA's driver).
    for stage in ["detect", "gate_wait", "swap", "encode"] {
        assert!(
            m.contains(&format!(
                "camshow_live_stage_seconds_count{{stage=\"{stage}\"}} 20\n"
            )),
            "{m}"
        );
    }
    let gpus: usize = m
        .lines()
        .find_map(|l| l.strip_prefix("camshow_gpus "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        m.lines()
            .filter(|l| l.starts_with("camshow_gpu_memory_total_bytes{"))
            .count(),
        gpus
    );
}

#[test]
fn a_client_faster_than_the_engine_has_frames_dropped_not_queued() {
    let s = Server::start(|_| {});
    let source = upload_source(&s, "t1.jpg");
    let frames = clip_frames(s.dir.path());
    let mut ws = connect(&s, &format!("/v1/live?source={source}")).unwrap();
    let mut heard = Heard::default();
    // 300 frames as fast as the socket takes them.
    let n = 300;
    for i in 0..n {
        send(&mut ws, Message::binary(frames[i % frames.len()].clone()));
    }
    // The newest frame is always processed; the backlog is never worked off.
    let until = Instant::now() + Duration::from_mins(1);
    while Instant::now() < until
        && heard.frames.last().and_then(|f| f.0["input"].as_u64()) != Some(n as u64)
    {
        listen(&mut ws, &mut heard, Duration::from_millis(50));
    }
    let answered = heard.frames.len();
    assert_eq!(
        heard.frames.last().unwrap().0["input"],
        n as u64,
        "the last frame sent is answered"
    );
    assert!(answered < n / 2, "{answered} of {n} frames were processed");
    // Most were replaced at the input before the engine took them (the rest
    // of the difference was replaced at the output before the socket sent them).
    let dropped = heard.frames.last().unwrap().0["dropped"].as_u64().unwrap();
    assert!(dropped as usize >= n / 2, "{dropped} dropped");
    assert!(
        dropped as usize + answered <= n,
        "{dropped} dropped, {answered} answered"
    );
    // Inputs only go forward: nothing old comes back after something new.
    let inputs: Vec<u64> = heard
        .frames
        .iter()
        .map(|f| f.0["input"].as_u64().unwrap())
        .collect();
    assert!(inputs.windows(2).all(|w| w[0] < w[1]), "{inputs:?}");
    // Then nothing more arrives: no queue behind it.
    listen(&mut ws, &mut heard, Duration::from_secs(1));
    assert_eq!(heard.frames.len(), answered);
    println!("{n} frames sent at once: {answered} processed, {dropped} dropped");
}

#[test]
fn control_messages_change_the_session_and_bad_ones_are_refused() {
    let s = Server::start(|_| {});
    let t1 = upload_source(&s, "t1.jpg");
    let astro = upload_source(&s, "astronaut.png");
    let frames = clip_frames(s.dir.path());
    let mut ws = connect(&s, &format!("/v1/live?source={t1}")).unwrap();
    let mut h = Heard::default();
    let ok = |v: Value, what: &str| {
        assert_eq!(v["type"], "ok", "{v}");
        assert_eq!(v["what"], what, "{v}");
    };
    let refused = |v: Value, field: &str, expect: &str| {
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["field"], field, "{v}");
        let m = v["message"].as_str().unwrap();
        assert!(m.contains(expect), "{m:?} lacks {expect:?}");
    };
    ok(
        control(
            &mut ws,
            &mut h,
            &format!(r#"{{"type":"source","id":"{astro}"}}"#),
        ),
        "source",
    );
    ok(
        control(
            &mut ws,
            &mut h,
            r#"{"type":"settings","settings":{"processors[0].opacity":0.5}}"#,
        ),
        "settings",
    );
    ok(
        control(&mut ws, &mut h, r#"{"type":"mirror","on":true}"#),
        "mirror",
    );
    refused(
        control(
            &mut ws,
            &mut h,
            r#"{"type":"settings","settings":{"ffmpeg.path":"/bin/sh"}}"#,
        ),
        "settings",
        "cannot be changed over HTTP",
    );
    refused(
        control(
            &mut ws,
            &mut h,
            r#"{"type":"settings","settings":{"processors[0].opacity":7}}"#,
        ),
        "settings",
        "not in 0–1",
    );
    let v = control(&mut ws, &mut h, r#"{"type":"source","id":"../../etc"}"#);
    assert_eq!(v["code"], "not_found", "{v}");
    refused(
        control(&mut ws, &mut h, r#"{"type":"dance"}"#),
        "type",
        "one of source, settings, mirror, stop",
    );
    refused(
        control(&mut ws, &mut h, "not json"),
        "message",
        "JSON object",
    );
    // A frame that is not a picture is refused by number; the session goes on.
    send(&mut ws, Message::binary(b"GIF89a nonsense".to_vec()));
    send(&mut ws, Message::binary(frames[0].clone()));
    let until = Instant::now() + Duration::from_secs(30);
    while h.frames.is_empty() && Instant::now() < until {
        listen(&mut ws, &mut h, Duration::from_millis(50));
    }
    listen(&mut ws, &mut h, Duration::from_millis(300));
    let bad = h
        .json
        .iter()
        .find(|v| v["field"] == "frame")
        .expect("the bad frame is reported");
    assert!(
        bad["message"].as_str().unwrap().starts_with("frame 1:"),
        "{bad}"
    );
    // The mirrored frame with half opacity came back, swapped.
    let (meta, jpeg, _) = &h.frames[0];
    assert_eq!(meta["input"], 2);
    assert_eq!(meta["faces_swapped"], 1, "{meta}");
    let out = rgb(jpeg);
    let mut sent = rgb(&frames[0]);
    image::imageops::flip_horizontal_in_place(&mut sent);
    let d = mean_diff(&out, &sent);
    assert!(
        d < 30.0,
        "the answer is the mirrored frame (mean difference {d})"
    );
    // Unknown ids, the wrong endpoint's parameters, and no source at all.
    assert_eq!(connect(&s, "/v1/live").err(), Some(400));
    assert_eq!(
        connect(&s, &format!("/v1/live?source={}", "0".repeat(24))).err(),
        Some(404)
    );
    assert_eq!(
        connect(&s, &format!("/v1/live?source={t1}&camera=test")).err(),
        Some(400)
    );
    assert_eq!(
        connect(&s, &format!("/v1/live?source={t1}&fps=fast")).err(),
        Some(400)
    );
}

#[test]
fn live_frames_pass_the_safety_gate() {
    let s = Server::start(|_| {});
    let source = upload_source(&s, "t1.jpg");
    let d = s.dir.path();
    let clean = read(&sample("astronaut.png"));
    let unsafe_frame = read(&marked(
        &sample("astronaut.png"),
        d.join("m.png"),
        (0, 0, 96, 96),
    ));
    let mut ws = connect(&s, &format!("/v1/live?source={source}&fps=10")).unwrap();
    let mut h = Heard::default();
    let mut stream = |h: &mut Heard, frame: &[u8], n: usize| {
        let start = h.frames.len();
        for _ in 0..n {
            send(&mut ws, Message::binary(frame.to_vec()));
            listen(&mut ws, h, Duration::from_millis(100));
        }
        listen(&mut ws, h, Duration::from_millis(500));
        h.frames[start..]
            .iter()
            .map(|f| f.0.clone())
            .collect::<Vec<Value>>()
    };
    let before = stream(&mut h, &clean, 5);
    assert!(before.iter().any(|m| m["faces_swapped"] == 1), "{before:?}");
    // The gate fires on the marked frames: they come back unswapped, and
    // swapping stays paused while they keep coming.
    let during = stream(&mut h, &unsafe_frame, 15);
    let late = &during[during.len() / 2..];
    assert!(!late.is_empty());
    for m in late {
        assert_eq!(m["safety_hold"], true, "{m}");
        assert_eq!(m["faces_swapped"], 0, "{m}");
    }
    // The unswapped frames say so in their provenance.
    let (_, jpeg, _) = h.frames.last().unwrap();
    let xmp = camshow_media::provenance::find_xmp(jpeg).unwrap();
    assert!(xmp.contains("no-face-swapped"), "{xmp}");
}

#[test]
fn a_camera_on_the_server_streams_out_and_only_known_cameras_open() {
    let s = Server::start(|c| c.max_live = 1);
    let source = upload_source(&s, "t1.jpg");
    let mut ws = connect(
        &s,
        &format!("/v1/live/camera?source={source}&camera=test&fps=10"),
    )
    .unwrap();
    let mut h = Heard::default();
    let until = Instant::now() + Duration::from_mins(1);
    while h.frames.len() < 5 && Instant::now() < until {
        listen(&mut ws, &mut h, Duration::from_millis(50));
    }
    assert!(h.frames.len() >= 5);
    assert!(h.frames.iter().any(|f| f.0["faces_swapped"] == 1));
    // One live session at a time on this server: the next is refused.
    assert_eq!(
        connect(&s, &format!("/v1/live?source={source}")).err(),
        Some(503)
    );
    // It takes control messages, not frames.
    send(&mut ws, Message::binary(b"frame".to_vec()));
    listen(&mut ws, &mut h, Duration::from_millis(500));
    assert!(h.json.iter().any(|v| {
        v["type"] == "error"
            && v["message"]
                .as_str()
                .unwrap()
                .contains("control messages only")
    }));
    drop(ws);
    // Once it has ended, its slot is free again.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match connect(&s, &format!("/v1/live?source={source}")) {
            Ok(_) => break,
            Err(503) if Instant::now() < until => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("{e}"),
        }
    }
    // No path or file is ever a camera.
    for camera in [
        "file:/etc/passwd",
        "test:/etc/passwd",
        "/dev/../etc/passwd",
        "0",
    ] {
        assert_eq!(
            connect(
                &s,
                &format!("/v1/live/camera?source={source}&camera={camera}")
            )
            .err(),
            Some(400),
            "{camera}"
        );
    }
}

#[test]
fn off_loopback_a_live_session_needs_the_token() {
    let s = Server::on("0.0.0.0:0".parse().unwrap(), |_| {});
    let token = s.token.clone().unwrap();
    let source = upload_source(&s, "t1.jpg");
    assert_eq!(
        connect(&s, &format!("/v1/live?source={source}")).err(),
        Some(401)
    );
    assert_eq!(
        connect(&s, &format!("/v1/live?source={source}&token=wrong")).err(),
        Some(401)
    );
    let mut ws = connect(&s, &format!("/v1/live?source={source}&token={token}")).unwrap();
    let mut h = Heard::default();
    send(&mut ws, Message::binary(read(&sample("astronaut.png"))));
    let until = Instant::now() + Duration::from_secs(30);
    while h.frames.is_empty() && Instant::now() < until {
        listen(&mut ws, &mut h, Duration::from_millis(50));
    }
    assert_eq!(h.frames[0].0["faces_swapped"], 1);
}
