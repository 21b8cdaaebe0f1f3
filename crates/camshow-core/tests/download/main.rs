//! Model downloads against a real HTTP server on loopback: resume after a
//! cut connection, wrong digests rejected, nothing half-written installed.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use camshow_core::models::download::NoProgress;
use camshow_core::models::manifest::{InputSpec, ModelSpec, Source, Task, Template};
use camshow_core::models::{ModelStore, Status, download, sha256_bytes};

/// How the server misbehaves.
#[derive(Clone, Copy)]
enum Mode {
    /// Serve everything, honouring Range.
    Good,
    /// The first response promises the full body but stops after `n` bytes.
    CutFirstAfter(usize),
    /// Every response ignores Range and the body is cut after `n` bytes.
    AlwaysCut(usize),
}

struct Server {
    url: String,
    requests: Arc<AtomicUsize>,
    ranges: Arc<Mutex<Vec<String>>>,
}

fn serve(body: Vec<u8>, mode: Mode) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/models/file.onnx", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let (rq, rg) = (requests.clone(), ranges.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(stream) = stream else { break };
            let n = rq.fetch_add(1, Ordering::SeqCst);
            handle(stream, &body, mode, n, &rg);
        }
    });
    Server {
        url,
        requests,
        ranges,
    }
}

fn handle(mut stream: TcpStream, body: &[u8], mode: Mode, n: usize, ranges: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut range_start = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("range: bytes=") {
            ranges.lock().unwrap().push(v.trim().to_string());
            range_start = v.trim().trim_end_matches('-').parse::<usize>().ok();
        }
    }
    let honour = !matches!(mode, Mode::AlwaysCut(_));
    let (status, start) = match range_start {
        Some(s) if honour => ("206 Partial Content", s),
        _ => ("200 OK", 0),
    };
    let rest = &body[start..];
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        rest.len()
    );
    let _ = stream.write_all(header.as_bytes());
    let send = match mode {
        Mode::CutFirstAfter(k) if n == 0 => &rest[..k],
        Mode::AlwaysCut(k) => &rest[..k.min(rest.len())],
        _ => rest,
    };
    let _ = stream.write_all(send);
    let _ = stream.flush();
    // Dropping the stream closes the connection, mid-body when cut.
    let mut sink = [0u8; 1];
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(10)));
    let _ = stream.read(&mut sink);
}

fn payload() -> Vec<u8> {
    (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn spec(url: &str, digest: &str, size: u64) -> ModelSpec {
    let url: &'static str = Box::leak(url.to_string().into_boxed_str());
    let urls: &'static [&'static str] = Box::leak(vec![url].into_boxed_slice());
    let digest: &'static str = Box::leak(digest.to_string().into_boxed_str());
    let digests: &'static [&'static str] = Box::leak(vec![digest].into_boxed_slice());
    ModelSpec {
        id: "test_model",
        file: "test_model.onnx",
        task: Task::FaceDetector,
        description: "loopback test",
        source: Source::Url { urls },
        sha256: digests,
        size: Some(size),
        licence: "test",
        non_commercial: false,
        input: InputSpec {
            size: (0, 0),
            layout: "NCHW",
            channels: "RGB",
            mean: 0.0,
            std: 1.0,
            template: Template::None,
        },
        note: "test",
    }
}

#[test]
fn resumes_after_a_cut_connection() {
    let body = payload();
    let server = serve(body.clone(), Mode::CutFirstAfter(100_000));
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("file.part");
    download(&server.url, &part, Some(body.len() as u64), &mut NoProgress).unwrap();
    assert_eq!(std::fs::read(&part).unwrap(), body);
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);
    assert_eq!(*server.ranges.lock().unwrap(), vec!["100000-".to_string()]);
}

#[test]
fn resumes_a_part_file_left_by_an_earlier_run() {
    let body = payload();
    let server = serve(body.clone(), Mode::Good);
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("file.part");
    std::fs::write(&part, &body[..123_456]).unwrap();
    download(&server.url, &part, Some(body.len() as u64), &mut NoProgress).unwrap();
    assert_eq!(std::fs::read(&part).unwrap(), body);
    assert_eq!(*server.ranges.lock().unwrap(), vec!["123456-".to_string()]);
}

#[test]
fn fetch_installs_only_verified_files() {
    let body = payload();
    let server = serve(body.clone(), Mode::CutFirstAfter(50_000));
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(dir.path().join("models"), dir.path().join("cache"));
    let good = spec(&server.url, &sha256_bytes(&body), body.len() as u64);
    store.fetch_spec(&good, &mut NoProgress).unwrap();
    assert_eq!(std::fs::read(store.path(&good)).unwrap(), body);
    assert_eq!(store.status(&good), Status::Present);
    // Tampering afterwards is noticed.
    let mut tampered = body.clone();
    tampered[7] ^= 1;
    std::fs::write(store.path(&good), &tampered).unwrap();
    assert!(matches!(store.status(&good), Status::Corrupt(_)));
}

#[test]
fn wrong_digest_is_rejected_and_nothing_is_installed() {
    let body = payload();
    let server = serve(body.clone(), Mode::Good);
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(dir.path().join("models"), dir.path().join("cache"));
    let bad = spec(&server.url, &"ab".repeat(32), body.len() as u64);
    let err = store.fetch_spec(&bad, &mut NoProgress).unwrap_err();
    assert!(err.to_string().contains("failed verification"), "{err}");
    assert!(!store.path(&bad).exists());
    assert_eq!(store.status(&bad), Status::Missing);
    // The bad download is not kept to be "resumed" later.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("cache/downloads"))
        .unwrap()
        .filter_map(std::result::Result::ok)
        .filter(|e| e.path().is_file())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_server_that_always_cuts_gives_a_clear_error() {
    let body = payload();
    let server = serve(body.clone(), Mode::AlwaysCut(1000));
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(dir.path().join("models"), dir.path().join("cache"));
    let s = spec(&server.url, &sha256_bytes(&body), body.len() as u64);
    let err = store
        .fetch_spec(&s, &mut NoProgress)
        .unwrap_err()
        .to_string();
    assert!(err.contains("gave up after"), "{err}");
    assert!(!store.path(&s).exists());
}

#[test]
fn http_errors_are_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming().take(1) {
            let mut s = s.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let err = download(
        &format!("http://{addr}/nope.onnx"),
        &dir.path().join("x.part"),
        None,
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(err.to_string().contains("HTTP 404"), "{err}");
}
