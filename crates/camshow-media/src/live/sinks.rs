//! Live outputs: an MJPEG-over-HTTP stream on loopback (OBS and browsers
//! open it), a V4L2 loopback virtual camera (Linux), and a channel for
//! programs that embed the engine (and for tests).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use camshow_core::Frame;

use super::yuv::rgb_to_yuyv;
use crate::error::{Error, Result};
use crate::latest::Latest;
use crate::provenance::Operation;

/// What the pipeline knows about an output frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameMeta {
    /// Sequence number of the captured frame (gaps are dropped frames).
    pub seq: u64,
    /// When the frame was captured.
    pub captured_at: Instant,
    /// Faces swapped in it.
    pub faces_swapped: usize,
    /// Whether swapping was held back by the safety gate for this frame.
    pub safety_hold: bool,
    /// Where the frame's processing time went.
    pub stages: StageTimes,
}

/// The time one live frame spent in each stage of processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StageTimes {
    /// Face detection, landmarks and tracking.
    pub detect: Duration,
    /// Waiting for the safety gate's verdict on a recent frame.
    pub gate_wait: Duration,
    /// The processor chain (swap, enhancers), with the overlay.
    pub swap: Duration,
}

/// A live output. Sinks run on the processing thread (a preview window must
/// stay on the thread that made it), so they need not be `Send`.
pub trait Sink {
    /// What this output is, for messages.
    fn describe(&self) -> String;
    /// Shows or sends one frame.
    fn send(&mut self, frame: &Frame, meta: &FrameMeta) -> Result<()>;
    /// True when the user closed it (a window): the session then stops.
    fn closed(&self) -> bool {
        false
    }
}

/// Hands frames to another thread (a WebSocket, a UI, a test) through a
/// [`Latest`] mailbox: when the receiver falls behind, the **oldest**
/// waiting frame is dropped, never the newest. Dropping the sink closes the
/// mailbox, which ends the receiver's [`Latest::iter`].
pub struct ChannelSink {
    mailbox: Arc<Latest<(Frame, FrameMeta)>>,
}

impl ChannelSink {
    /// A sink and its receiving end, holding the newest `capacity` frames.
    pub fn new(capacity: usize) -> (Self, Arc<Latest<(Frame, FrameMeta)>>) {
        let mailbox = Arc::new(Latest::with_capacity(capacity));
        (
            Self {
                mailbox: Arc::clone(&mailbox),
            },
            mailbox,
        )
    }
}

impl Drop for ChannelSink {
    fn drop(&mut self) {
        self.mailbox.close();
    }
}

impl Sink for ChannelSink {
    fn describe(&self) -> String {
        "channel".into()
    }

    fn send(&mut self, frame: &Frame, meta: &FrameMeta) -> Result<()> {
        self.mailbox.put((frame.clone(), *meta));
        Ok(())
    }
}

struct Shared {
    latest: Mutex<(u64, Option<Arc<Vec<u8>>>)>,
    cond: Condvar,
    /// The newest frame waiting for the encoder thread (a newer one replaces it).
    pending: Latest<(Frame, bool)>,
    clients: AtomicUsize,
    connections: AtomicUsize,
    parts_sent: AtomicU64,
    /// Frames encoded to JPEG.
    encoded: AtomicU64,
}

const BOUNDARY: &str = "camshowframe";

/// Connections served at once; more get `503 Service Unavailable`.
pub const MAX_CLIENTS: usize = 64;

/// A client must send its whole request within this time, however slowly it trickles.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(3);

/// A part the client does not take within this time ends its connection.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// The kernel's send buffer per client: small, so that a client that stops
/// reading is noticed (its writes time out) within a frame or two instead of
/// after megabytes.
const SEND_BUFFER: usize = 128 * 1024;

/// An MJPEG (`multipart/x-mixed-replace`) stream over HTTP: `/` or
/// `/stream.mjpg` for the stream, `/snapshot.jpg` for one frame. Every JPEG
/// carries the XMP provenance packet. Frames are only encoded while someone
/// is watching, on the server's own thread, so JPEG encoding never delays
/// the live pipeline (a frame that arrives while one is being encoded
/// replaces the waiting one).
pub struct MjpegServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for MjpegServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MjpegServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl MjpegServer {
    /// Listens on `addr` (`127.0.0.1:8090`; port 0 picks a free one).
    pub fn bind(addr: &str) -> Result<Self> {
        let listener = TcpListener::bind(addr)
            .map_err(|e| Error::Live(format!("cannot listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::Live(format!("cannot listen on {addr}: {e}")))?;
        if !local.ip().is_loopback() {
            tracing::warn!("the MJPEG stream listens on {local}, which other machines can reach");
        }
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::Live(e.to_string()))?;
        let shared = Arc::new(Shared {
            latest: Mutex::new((0, None)),
            cond: Condvar::new(),
            pending: Latest::new(),
            clients: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            parts_sent: AtomicU64::new(0),
            encoded: AtomicU64::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (shared.clone(), stop.clone());
        let accept = std::thread::Builder::new()
            .name("mjpeg-accept".into())
            .spawn(move || {
                while !st.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            if sh.connections.load(Ordering::Relaxed) >= MAX_CLIENTS {
                                let _ = stream.write_all(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
                                continue;
                            }
                            sh.connections.fetch_add(1, Ordering::Relaxed);
                            let (sh, st) = (sh.clone(), st.clone());
                            let spawned = std::thread::Builder::new().name("mjpeg-client".into()).spawn(move || {
                                serve(stream, &sh, &st);
                                sh.connections.fetch_sub(1, Ordering::Relaxed);
                            });
                            if spawned.is_err() {
                                tracing::warn!("MJPEG: could not start a client thread");
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
                        Err(e) => {
                            tracing::warn!("MJPEG accept: {e}");
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            })
            .map_err(|e| Error::Live(e.to_string()))?;
        // Each frame says whether a face was swapped in it.
        let encoder = LiveJpeg::new(JPEG_QUALITY);
        let (sh, st) = (shared.clone(), stop.clone());
        let encoder = std::thread::Builder::new()
            .name("mjpeg-encode".into())
            .spawn(move || encode_loop(&sh, &st, &encoder))
            .map_err(|e| Error::Live(e.to_string()))?;
        Ok(Self {
            addr: local,
            shared,
            stop,
            threads: vec![accept, encoder],
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The stream's URL.
    pub fn url(&self) -> String {
        format!("http://{}/stream.mjpg", self.addr)
    }

    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.shared.clients.load(Ordering::Relaxed)
    }

    /// Frames encoded to JPEG so far (only while a client is connected).
    pub fn frames_encoded(&self) -> u64 {
        self.shared.encoded.load(Ordering::Relaxed)
    }

    /// JPEG parts written to clients so far.
    pub fn parts_sent(&self) -> u64 {
        self.shared.parts_sent.load(Ordering::Relaxed)
    }

    /// Publishes one frame (`swapped`: whether a face was swapped in it, for
    /// its provenance): handed to the encoder thread when a client is
    /// connected, dropped otherwise.
    pub fn publish(&self, frame: &Frame, swapped: bool) -> Result<()> {
        if self.clients() == 0 {
            return Ok(());
        }
        self.shared.pending.put((frame.clone(), swapped));
        Ok(())
    }
}

const JPEG_QUALITY: u8 = 80;

/// Encodes live frames as JPEGs carrying their provenance packet (made once
/// per stream: whether a face was swapped in the frame picks the label).
#[derive(Debug, Clone)]
pub struct LiveJpeg {
    /// `[no face swapped, face swapped]`.
    xmp: [String; 2],
    quality: u8,
}

impl LiveJpeg {
    /// An encoder at JPEG `quality` (1–100).
    pub fn new(quality: u8) -> Self {
        Self {
            xmp: [
                crate::provenance::xmp_packet(Operation::NoFaceSwapped, "a live stream frame"),
                crate::provenance::xmp_packet(Operation::FaceSwap, "a live stream frame"),
            ],
            quality: quality.clamp(1, 100),
        }
    }

    /// One frame as a JPEG; `swapped`: whether a face was swapped in it.
    ///
    /// # Errors
    /// The encoder failed.
    pub fn encode(&self, frame: &Frame, swapped: bool) -> Result<Vec<u8>> {
        let mut jpeg = Vec::with_capacity(frame.data().len() / 8);
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, self.quality)
            .encode(
                frame.data(),
                frame.width(),
                frame.height(),
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|e| Error::Live(format!("JPEG encoding failed: {e}")))?;
        crate::provenance::jpeg_with_xmp(&jpeg, &self.xmp[usize::from(swapped)])
    }
}

/// The encoder thread: newest pending frame → JPEG with provenance → clients.
fn encode_loop(shared: &Shared, stop: &AtomicBool, encoder: &LiveJpeg) {
    while !stop.load(Ordering::Relaxed) {
        let frame = shared.pending.wait(Duration::from_millis(200));
        let Some((frame, swapped)) = frame else {
            continue;
        };
        match encoder.encode(&frame, swapped) {
            Ok(jpeg) => {
                shared.encoded.fetch_add(1, Ordering::Relaxed);
                let mut latest = shared
                    .latest
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                latest.0 += 1;
                latest.1 = Some(Arc::new(jpeg));
                shared.cond.notify_all();
            }
            Err(e) => tracing::warn!("MJPEG: {e}"),
        }
    }
}

/// Reads a request head (up to the blank line, at most 16 KiB) before
/// `deadline`; `None` for a client that is too slow, too long or gone.
fn read_request(stream: &mut TcpStream, deadline: Instant) -> Option<Vec<u8>> {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.checked_duration_since(Instant::now())?;
        if left.is_zero() || req.len() >= 16 * 1024 {
            return None;
        }
        stream.set_read_timeout(Some(left)).ok()?;
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    Some(req)
}

/// What a request head asks the MJPEG server for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /` or `GET /stream.mjpg`.
    Stream,
    /// `GET /snapshot.jpg`.
    Snapshot,
    /// Another method.
    NotAllowed,
    /// Another path.
    NotFound,
}

/// Routes a request head (its first line; the query is ignored).
pub(crate) fn route(req: &[u8]) -> Route {
    let line = req.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        return Route::NotAllowed;
    }
    match target.split('?').next().unwrap_or("") {
        "/" | "/stream.mjpg" => Route::Stream,
        "/snapshot.jpg" => Route::Snapshot,
        _ => Route::NotFound,
    }
}

fn serve(mut stream: TcpStream, shared: &Shared, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
    let Some(req) = read_request(&mut stream, Instant::now() + REQUEST_DEADLINE) else {
        return;
    };
    let snapshot = match route(&req) {
        Route::Stream => false,
        Route::Snapshot => true,
        Route::NotAllowed => {
            let _ = stream.write_all(
                b"HTTP/1.0 405 Method Not Allowed\r\nAllow: GET\r\nContent-Length: 0\r\n\r\n",
            );
            return;
        }
        Route::NotFound => {
            let _ = stream.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 40\r\n\r\nuse /stream.mjpg or /snapshot.jpg here\r\n");
            return;
        }
    };
    let provenance = "X-Digital-Source-Type: http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia\r\n";
    let head = if snapshot {
        String::new()
    } else {
        format!(
            "HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary={BOUNDARY}\r\nCache-Control: no-cache, no-store\r\nPragma: no-cache\r\nConnection: close\r\n{provenance}\r\n"
        )
    };
    if !snapshot && stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    shared.clients.fetch_add(1, Ordering::Relaxed);
    let mut seen = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let jpeg = {
            let guard = shared
                .latest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (guard, _) = shared
                .cond
                .wait_timeout_while(guard, Duration::from_millis(500), |l| l.0 == seen)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if guard.0 == seen {
                continue;
            }
            seen = guard.0;
            guard.1.clone()
        };
        let Some(jpeg) = jpeg else { continue };
        let ok = if snapshot {
            let h = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n{provenance}\r\n",
                jpeg.len()
            );
            stream
                .write_all(h.as_bytes())
                .and_then(|()| stream.write_all(&jpeg))
                .is_ok()
        } else {
            let h = format!(
                "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                jpeg.len()
            );
            stream
                .write_all(h.as_bytes())
                .and_then(|()| stream.write_all(&jpeg))
                .and_then(|()| stream.write_all(b"\r\n"))
                .is_ok()
        };
        if ok {
            shared.parts_sent.fetch_add(1, Ordering::Relaxed);
        }
        if !ok || snapshot {
            break;
        }
    }
    shared.clients.fetch_sub(1, Ordering::Relaxed);
}

impl Drop for MjpegServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.shared.cond.notify_all();
        self.shared.pending.close();
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}

impl Sink for MjpegServer {
    fn describe(&self) -> String {
        format!("MJPEG stream {}", self.url())
    }

    fn send(&mut self, frame: &Frame, meta: &FrameMeta) -> Result<()> {
        self.publish(frame, meta.faces_swapped > 0)
    }
}

/// How to set up the Linux virtual camera.
pub const V4L2LOOPBACK_HINT: &str = "load v4l2loopback first: `sudo modprobe v4l2loopback devices=1 video_nr=10 card_label=\"Camshow\" exclusive_caps=1` (package v4l2loopback-dkms), then use --virtual-camera /dev/video10";

/// A V4L2 loopback device fed with YUYV 4:2:2 (converted here from RGB, BT.601
/// limited range), which browsers, OBS and video-call programs accept. The
/// device is written by FFmpeg's `v4l2` output, which sets the format.
pub struct VirtualCamera {
    device: PathBuf,
    fps: f64,
    child: Option<(Child, ChildStdin)>,
    size: Option<(u32, u32)>,
}

impl std::fmt::Debug for VirtualCamera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualCamera")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// Whether `p` is a Video4Linux device node (character device, major 81).
fn is_char_device(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        std::fs::metadata(p).is_ok_and(|m| {
            let rdev = m.rdev();
            let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
            m.file_type().is_char_device() && major == 81
        })
    }
    #[cfg(not(unix))]
    {
        let _ = p;
        false
    }
}

impl VirtualCamera {
    /// Checks that `device` is a video device; frames start flowing on the first send.
    pub fn open(device: &Path, fps: f64) -> Result<Self> {
        if !cfg!(target_os = "linux") {
            return Err(Error::Live(
                "the virtual camera output is for Linux (v4l2loopback); on macOS use OBS's virtual camera with the MJPEG stream (--mjpeg) as its source".into(),
            ));
        }
        if !is_char_device(device) {
            return Err(Error::Live(format!(
                "{} is not a video device: {V4L2LOOPBACK_HINT}",
                device.display()
            )));
        }
        Ok(Self {
            device: device.to_path_buf(),
            fps,
            child: None,
            size: None,
        })
    }

    fn start(&mut self, w: u32, h: u32) -> Result<()> {
        let mut child = crate::tools::ffmpeg()
            .args([
                "-nostdin",
                "-v",
                "error",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "yuyv422",
                "-s",
                &format!("{w}x{h}"),
                "-r",
                &format!("{}", self.fps),
                "-i",
                "pipe:0",
            ])
            .args(["-f", "v4l2", "-pix_fmt", "yuyv422"])
            .arg(&self.device)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                Error::Live(format!("ffmpeg could not be started ({e}); install ffmpeg"))
            })?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| Error::Live("ffmpeg has no input pipe".into()))?;
        self.child = Some((child, stdin));
        self.size = Some((w, h));
        Ok(())
    }

    fn failure(&mut self) -> Error {
        let mut err = String::new();
        if let Some((mut c, _)) = self.child.take() {
            let _ = c.kill();
            if let Some(mut s) = c.stderr.take() {
                let _ = s.read_to_string(&mut err);
            }
            let _ = c.wait();
        }
        Error::Live(format!(
            "virtual camera {}: {} ({V4L2LOOPBACK_HINT})",
            self.device.display(),
            err.trim()
        ))
    }
}

impl Sink for VirtualCamera {
    fn describe(&self) -> String {
        format!("virtual camera {}", self.device.display())
    }

    fn send(&mut self, frame: &Frame, _meta: &FrameMeta) -> Result<()> {
        // YUYV needs an even width: drop the last column of odd frames.
        let even;
        let frame = if frame.width() % 2 == 1 {
            even = frame.crop(
                0,
                0,
                i64::from(frame.width() - 1),
                i64::from(frame.height()),
            );
            &even
        } else {
            frame
        };
        let (w, h) = (frame.width(), frame.height());
        if self.size != Some((w, h)) {
            if self.child.is_some() {
                return Err(Error::Live(format!(
                    "the frame size changed to {w}x{h} while streaming to {}",
                    self.device.display()
                )));
            }
            self.start(w, h)?;
        }
        let data = rgb_to_yuyv(frame);
        let ok = self
            .child
            .as_mut()
            .is_some_and(|(_, stdin)| stdin.write_all(&data).is_ok());
        if ok { Ok(()) } else { Err(self.failure()) }
    }
}

impl Drop for VirtualCamera {
    fn drop(&mut self) {
        if let Some((mut c, stdin)) = self.child.take() {
            drop(stdin);
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(2) {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, path: &str) -> Vec<u8> {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    }

    #[test]
    fn snapshot_and_not_found_over_loopback() {
        let server = MjpegServer::bind("127.0.0.1:0").unwrap();
        let addr = server.addr();
        assert!(String::from_utf8_lossy(&get(addr, "/nothing")).starts_with("HTTP/1.0 404"));
        let frame = Frame::filled(64, 48, [10, 200, 30]).unwrap();
        let h = std::thread::spawn(move || get(addr, "/snapshot.jpg"));
        // Publish until the snapshot client has its frame.
        let t = Instant::now();
        while !h.is_finished() && t.elapsed() < Duration::from_secs(5) {
            server.publish(&frame, true).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        let body = h.join().unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with("HTTP/1.0 200 OK"), "{text}");
        assert!(text.contains("compositeWithTrainedAlgorithmicMedia"));
        let jpeg_at = body.windows(2).position(|w| w == [0xFF, 0xD8]).unwrap();
        let img = image::load_from_memory(&body[jpeg_at..]).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (64, 48));
        assert!(
            crate::provenance::find_xmp(&body[jpeg_at..])
                .unwrap()
                .contains("compositeWithTrainedAlgorithmicMedia")
        );
        // No client: nothing is encoded.
        let encoded = server.frames_encoded();
        assert!(encoded >= 1, "the snapshot was encoded");
        let t = Instant::now();
        while server.clients() > 0 && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let (encoded, sent) = (server.frames_encoded(), server.parts_sent());
        for _ in 0..5 {
            server.publish(&frame, true).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            server.frames_encoded(),
            encoded,
            "frames encoded with no client"
        );
        assert_eq!(server.parts_sent(), sent);
        // Too many connections: the extra ones are turned away, not given a thread each.
        let idle: Vec<TcpStream> = (0..MAX_CLIENTS)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        let t = Instant::now();
        let mut refused = false;
        while t.elapsed() < Duration::from_secs(5) && !refused {
            refused =
                String::from_utf8_lossy(&get(addr, "/stream.mjpg")).starts_with("HTTP/1.0 503");
        }
        assert!(refused, "connection {} was served", MAX_CLIENTS + 1);
        drop(idle);
    }

    #[test]
    fn slow_clients_cannot_lock_viewers_out() {
        let server = MjpegServer::bind("127.0.0.1:0").unwrap();
        let addr = server.addr();
        let stop = Arc::new(AtomicBool::new(false));
        let mut slow = Vec::new();
        // 16 clients that trickle their request a byte at a time…
        for _ in 0..16 {
            let stop = stop.clone();
            slow.push(std::thread::spawn(move || {
                let Ok(mut s) = TcpStream::connect(addr) else {
                    return false;
                };
                let started = Instant::now();
                for b in b"GET /stream.mjpg HTTP/1.0\r\nX-Slow: yes\r\n\r\n"
                    .iter()
                    .cycle()
                    .take(400)
                {
                    if stop.load(Ordering::Relaxed) || s.write_all(&[*b]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                // Cut off by the request deadline, long before the bytes ran out.
                started.elapsed() < Duration::from_secs(15)
            }));
        }
        // …and 16 that ask for the stream and never read it.
        let idle: Vec<TcpStream> = (0..16)
            .map(|_| {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(b"GET /stream.mjpg HTTP/1.0\r\n\r\n").unwrap();
                s
            })
            .collect();
        // A real viewer, meanwhile, gets its frames.
        let frame = Frame::filled(640, 480, [90, 60, 30]).unwrap();
        let viewer = std::thread::spawn(move || get(addr, "/snapshot.jpg"));
        let t = Instant::now();
        while !viewer.is_finished() && t.elapsed() < Duration::from_secs(10) {
            server.publish(&frame, true).unwrap();
            std::thread::sleep(Duration::from_millis(30));
        }
        let body = viewer.join().unwrap();
        assert!(
            String::from_utf8_lossy(&body).starts_with("HTTP/1.0 200 OK"),
            "the viewer was not served"
        );
        // Trickling clients are cut off by the request deadline.
        let cut = t.elapsed();
        stop.store(true, Ordering::Relaxed);
        for h in slow {
            assert!(h.join().unwrap(), "a trickling client kept its connection");
        }
        // Clients that never read are dropped once their writes time out.
        let t = Instant::now();
        while server.clients() > 0 && t.elapsed() < Duration::from_secs(15) {
            server.publish(&frame, true).unwrap();
            std::thread::sleep(Duration::from_millis(30));
        }
        assert_eq!(
            server.clients(),
            0,
            "stalled readers still hold slots after {cut:?}"
        );
        drop(idle);
    }

    #[test]
    fn a_missing_virtual_camera_says_how_to_set_it_up() {
        let e = VirtualCamera::open(Path::new("/dev/video-not-there"), 30.0)
            .unwrap_err()
            .to_string();
        if cfg!(target_os = "linux") {
            assert!(e.contains("modprobe v4l2loopback"), "{e}");
        }
        let e = VirtualCamera::open(Path::new("/dev/null"), 30.0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a video device") || e.contains("macOS"),
            "{e}"
        );
    }
}
