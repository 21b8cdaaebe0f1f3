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
    /// Every request gets 404.
    NotFound,
    /// A request with a Range gets 416 (nothing past what the client holds).
    RangeNotSatisfiable,
    /// The body goes out in 16 KiB pieces, 20 ms apart.
    Slow,
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
    if matches!(mode, Mode::NotFound)
        || (matches!(mode, Mode::RangeNotSatisfiable) && range_start.is_some())
    {
        let status = if matches!(mode, Mode::NotFound) {
            "404 Not Found"
        } else {
            "416 Range Not Satisfiable"
        };
        let _ = stream.write_all(
            format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        return;
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
    if matches!(mode, Mode::Slow) {
        for piece in send.chunks(16 * 1024) {
            if stream.write_all(piece).is_err() {
                return;
            }
            let _ = stream.flush();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    } else {
        let _ = stream.write_all(send);
    }
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

fn leak_urls(urls: &[&str]) -> &'static [&'static str] {
    let urls: Vec<&'static str> = urls
        .iter()
        .map(|u| &*Box::leak(u.to_string().into_boxed_str()))
        .collect();
    Box::leak(urls.into_boxed_slice())
}

fn spec(url: &str, digest: &str, size: u64) -> ModelSpec {
    spec_from(
        Source::Url {
            urls: leak_urls(&[url]),
        },
        digest,
        size,
    )
}

fn spec_from(source: Source, digest: &str, size: u64) -> ModelSpec {
    let digest: &'static str = Box::leak(digest.to_string().into_boxed_str());
    let digests: &'static [&'static str] = Box::leak(vec![digest].into_boxed_slice());
    ModelSpec {
        id: "test_model",
        file: "test_model.onnx",
        task: Task::FaceDetector,
        description: "loopback test",
        source,
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

/// Records messages, and asks to stop once `stop_after` bytes are on disk.
#[derive(Default)]
struct Recorder {
    messages: Vec<String>,
    stop_after: Option<u64>,
    done: u64,
}

impl download::Progress for Recorder {
    fn start(&mut self, _: &str, done: u64, _: Option<u64>) {
        self.done = done;
    }
    fn advance(&mut self, done: u64) {
        self.done = done;
    }
    fn finish(&mut self) {}
    fn message(&mut self, text: &str) {
        self.messages.push(text.to_string());
    }
    fn cancelled(&self) -> bool {
        self.stop_after.is_some_and(|n| self.done >= n)
    }
}

fn cache_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("cache/downloads"))
        .unwrap()
        .filter_map(std::result::Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_broken_mirror_falls_back_to_the_next_address() {
    let body = payload();
    let dead = serve(Vec::new(), Mode::NotFound);
    let good = serve(body.clone(), Mode::Good);
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(dir.path().join("models"), dir.path().join("cache"));
    let s = spec_from(
        Source::Url {
            urls: leak_urls(&[&dead.url, &good.url]),
        },
        &sha256_bytes(&body),
        body.len() as u64,
    );
    let mut progress = Recorder::default();
    store.fetch_spec(&s, &mut progress).unwrap();
    assert_eq!(std::fs::read(store.path(&s)).unwrap(), body);
    assert_eq!(dead.requests.load(Ordering::SeqCst), 1);
    assert_eq!(good.requests.load(Ordering::SeqCst), 1);
    // The user is told which address failed and why.
    assert!(
        progress
            .messages
            .iter()
            .any(|m| m.contains(&dead.url) && m.contains("HTTP 404")),
        "{:?}",
        progress.messages
    );
    // Every address broken: the last reason is given.
    let other = tempfile::tempdir().unwrap();
    let store = ModelStore::new(other.path().join("models"), other.path().join("cache"));
    let s = spec_from(
        Source::Url {
            urls: leak_urls(&[&dead.url, &dead.url]),
        },
        &sha256_bytes(&body),
        body.len() as u64,
    );
    let err = store
        .fetch_spec(&s, &mut NoProgress)
        .unwrap_err()
        .to_string();
    assert!(err.contains("HTTP 404"), "{err}");
    assert!(!store.path(&s).exists());
}

/// A zip archive holding `model` as `pack/model.onnx`, and a readme.
fn archive(model: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file("pack/readme.txt", opts).unwrap();
    zip.write_all(b"not a model").unwrap();
    zip.start_file("pack/model.onnx", opts).unwrap();
    zip.write_all(model).unwrap();
    zip.finish().unwrap().into_inner()
}

#[test]
fn a_model_inside_an_archive_is_extracted_and_the_archive_reused() {
    let model = payload();
    let zipped = archive(&model);
    let server = serve(zipped.clone(), Mode::Good);
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(dir.path().join("models"), dir.path().join("cache"));
    let source = |member: &'static str, archive_sha256: &'static str| Source::ZipMember {
        urls: leak_urls(&[&server.url]),
        archive_sha256,
        archive_size: zipped.len() as u64,
        member,
    };
    let digest: &'static str = Box::leak(sha256_bytes(&zipped).into_boxed_str());
    let s = spec_from(
        source("pack/model.onnx", digest),
        &sha256_bytes(&model),
        model.len() as u64,
    );
    store.fetch_spec(&s, &mut NoProgress).unwrap();
    assert_eq!(std::fs::read(store.path(&s)).unwrap(), model);
    assert_eq!(store.status(&s), Status::Present);
    // The archive stays in the cache: fetching again after a removal downloads nothing.
    std::fs::remove_file(store.path(&s)).unwrap();
    store.fetch_spec(&s, &mut NoProgress).unwrap();
    assert_eq!(std::fs::read(store.path(&s)).unwrap(), model);
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    // A member the archive does not have is named.
    let missing = spec_from(
        source("pack/other.onnx", digest),
        &sha256_bytes(&model),
        model.len() as u64,
    );
    let other = tempfile::tempdir().unwrap();
    let store2 = ModelStore::new(other.path().join("models"), other.path().join("cache"));
    let err = store2
        .fetch_spec(&missing, &mut NoProgress)
        .unwrap_err()
        .to_string();
    assert!(err.contains("it has no pack/other.onnx"), "{err}");
    assert!(!store2.path(&missing).exists());
    // An archive that is not the published one is refused and not kept.
    let third = tempfile::tempdir().unwrap();
    let store3 = ModelStore::new(third.path().join("models"), third.path().join("cache"));
    let wrong = spec_from(
        source("pack/model.onnx", "ab".repeat(32).leak()),
        &sha256_bytes(&model),
        model.len() as u64,
    );
    let err = store3
        .fetch_spec(&wrong, &mut NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("failed verification") || err.contains("SHA-256"),
        "{err}"
    );
    assert!(!store3.path(&wrong).exists());
    assert!(
        cache_files(third.path()).is_empty(),
        "{:?}",
        cache_files(third.path())
    );
}

#[test]
fn a_part_file_that_is_already_whole_is_accepted_on_416() {
    let body = payload();
    let server = serve(body.clone(), Mode::RangeNotSatisfiable);
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("file.part");
    std::fs::write(&part, &body).unwrap();
    // No size known in advance: the server's 416 says there is nothing more.
    download(&server.url, &part, None, &mut NoProgress).unwrap();
    assert_eq!(std::fs::read(&part).unwrap(), body);
    assert_eq!(*server.ranges.lock().unwrap(), vec!["300000-".to_string()]);
    // With nothing on disk no range is asked for: the whole file comes.
    let empty = dir.path().join("empty.part");
    download(&server.url, &empty, None, &mut NoProgress).unwrap();
    assert_eq!(std::fs::read(&empty).unwrap(), body);
}

#[test]
fn a_stopped_download_keeps_its_part_and_resumes_from_it() {
    let body = payload();
    let server = serve(body.clone(), Mode::Slow);
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(dir.path().join("models"), dir.path().join("cache"));
    let s = spec(&server.url, &sha256_bytes(&body), body.len() as u64);
    let mut progress = Recorder {
        stop_after: Some(32 * 1024),
        ..Recorder::default()
    };
    let err = store.fetch_spec(&s, &mut progress).unwrap_err();
    assert!(
        matches!(err, camshow_core::Error::Cancelled),
        "{err}: {:?}",
        progress.messages
    );
    // Nothing installed; what arrived is kept, and said so.
    assert!(!store.path(&s).exists());
    let kept = std::fs::metadata(dir.path().join("cache/downloads/test_model.onnx.part"))
        .unwrap()
        .len();
    assert!(kept >= 32 * 1024 && kept < body.len() as u64, "{kept}");
    assert!(
        progress.messages.iter().any(|m| m.contains("resumes")),
        "{:?}",
        progress.messages
    );
    // Stopping is not a failure of the address: no retry, no other attempt.
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    // The next fetch asks only for the rest.
    store.fetch_spec(&s, &mut NoProgress).unwrap();
    assert_eq!(std::fs::read(store.path(&s)).unwrap(), body);
    assert_eq!(*server.ranges.lock().unwrap(), vec![format!("{kept}-")]);
}
