//! Live frames pushed by another program (a WebSocket peer, a browser, a
//! desktop UI) instead of read from a camera.
//!
//! [`Feed`] is the pushing end: [`Feed::push`] never blocks and never
//! queues — a frame not yet taken is replaced by the newer one (counted in
//! [`Feed::dropped`]), so a peer that sends faster than the engine works
//! only makes the engine skip frames. [`PushSource`] is the
//! [`FrameSource`] that [`super::run_live`] reads: it decodes each pushed
//! frame (JPEG, PNG or WebP bytes, or raw RGBA behind a 12-byte header) on
//! the capture thread, and remembers, for each frame it hands on, which
//! pushed frame it was and when it arrived ([`Feed::origin`]), so the
//! output can say how long a frame took from arrival to hand-off.

use std::collections::VecDeque;
use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use camshow_core::Frame;

use super::LiveControl;
use super::source::FrameSource;
use crate::error::{Error, Result};
use crate::latest::Latest;

/// The largest pushed frame, in pixels (3840×2160).
pub const MAX_PIXELS: u64 = 3840 * 2160;

/// The magic of a raw frame: `RGBA`, then width and height as little-endian
/// `u32`, then `width × height × 4` bytes of RGBA (alpha is ignored).
pub const RAW_MAGIC: &[u8; 4] = b"RGBA";

/// How many hand-offs [`Feed::origin`] remembers.
const ORIGINS: usize = 256;

struct Pushed {
    input: u64,
    bytes: Vec<u8>,
    at: Instant,
}

struct Shared {
    pending: Latest<Pushed>,
    received: AtomicU64,
    rejected: AtomicU64,
    /// The newest refusal, for the peer.
    rejection: Mutex<Option<String>>,
    /// (capture sequence number, pushed frame number, arrival).
    origins: Mutex<VecDeque<(u64, u64, Instant)>>,
    /// The session reading this feed: once it is stopped, the source ends
    /// even while no frame comes.
    session: Mutex<Option<Arc<LiveControl>>>,
}

impl Shared {
    fn origins(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, u64, Instant)>> {
        self.origins.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The pushing end of a live session fed by another program.
#[derive(Clone)]
pub struct Feed {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("received", &self.received())
            .field("dropped", &self.dropped())
            .field("rejected", &self.rejected())
            .finish()
    }
}

impl Feed {
    /// A feed and the source that reads it; `fps` is the rate the peer
    /// means to send at (for tracking).
    pub fn new(fps: f64) -> (Self, PushSource) {
        let shared = Arc::new(Shared {
            pending: Latest::new(),
            received: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            rejection: Mutex::new(None),
            origins: Mutex::new(VecDeque::new()),
            session: Mutex::new(None),
        });
        (
            Self {
                shared: Arc::clone(&shared),
            },
            PushSource {
                shared,
                fps: if fps.is_finite() {
                    fps.clamp(1.0, 120.0)
                } else {
                    30.0
                },
                seq: 0,
            },
        )
    }

    /// Hands one encoded frame over (never blocks); returns its number
    /// (1, 2, …). A frame the engine has not taken yet is dropped for it.
    pub fn push(&self, bytes: Vec<u8>) -> u64 {
        let input = self.shared.received.fetch_add(1, Ordering::Relaxed) + 1;
        self.shared.pending.put(Pushed {
            input,
            bytes,
            at: Instant::now(),
        });
        input
    }

    /// Ties the feed to the session that reads it: when `control` is
    /// stopped (by the caller, or by [`super::run_live`] as it ends), the
    /// source ends too, even while the peer sends nothing. Call it before
    /// starting the session.
    pub fn attach(&self, control: &Arc<LiveControl>) {
        *self
            .shared
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(control));
    }

    /// No more frames: the session ends once the frame in hand is done.
    pub fn close(&self) {
        self.shared.pending.close();
    }

    /// Frames pushed.
    pub fn received(&self) -> u64 {
        self.shared.received.load(Ordering::Relaxed)
    }

    /// Frames replaced by a newer one before the engine took them.
    pub fn dropped(&self) -> u64 {
        self.shared.pending.dropped()
    }

    /// Frames that could not be decoded.
    pub fn rejected(&self) -> u64 {
        self.shared.rejected.load(Ordering::Relaxed)
    }

    /// Why the newest refused frame was refused (once).
    pub fn take_rejection(&self) -> Option<String> {
        self.shared
            .rejection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Which pushed frame the session's frame `seq` (from
    /// [`super::sinks::FrameMeta::seq`]) was, and when it arrived.
    pub fn origin(&self, seq: u64) -> Option<(u64, Instant)> {
        self.shared
            .origins()
            .iter()
            .rev()
            .find(|o| o.0 == seq)
            .map(|o| (o.1, o.2))
    }
}

/// The [`FrameSource`] of a [`Feed`]: ends when the feed is closed.
pub struct PushSource {
    shared: Arc<Shared>,
    fps: f64,
    seq: u64,
}

impl std::fmt::Debug for PushSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushSource")
            .field("fps", &self.fps)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl FrameSource for PushSource {
    fn describe(&self) -> String {
        "frames pushed by the client".into()
    }

    fn nominal_fps(&self) -> f64 {
        self.fps
    }

    fn next(&mut self) -> Result<Option<Frame>> {
        loop {
            let Some(p) = self.shared.pending.wait(Duration::from_millis(200)) else {
                let stopped = self
                    .shared
                    .session
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_ref()
                    .is_some_and(|c| c.stopped());
                if stopped || self.shared.pending.is_closed() {
                    return Ok(None);
                }
                continue;
            };
            match decode_frame(&p.bytes) {
                Ok(frame) => {
                    self.seq += 1;
                    let mut o = self.shared.origins();
                    o.push_back((self.seq, p.input, p.at));
                    if o.len() > ORIGINS {
                        o.pop_front();
                    }
                    return Ok(Some(frame));
                }
                Err(e) => {
                    // A bad frame is the peer's mistake, not the end of the session.
                    self.shared.rejected.fetch_add(1, Ordering::Relaxed);
                    *self
                        .shared
                        .rejection
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) =
                        Some(format!("frame {}: {e}", p.input));
                }
            }
        }
    }
}

/// Decodes one pushed frame: raw RGBA behind [`RAW_MAGIC`], or JPEG, PNG
/// or WebP bytes (sniffed; at most [`MAX_PIXELS`], checked before decoding).
///
/// # Errors
/// Anything else, a frame too large, or bytes that do not decode.
pub fn decode_frame(bytes: &[u8]) -> Result<Frame> {
    if let Some(rest) = bytes.strip_prefix(RAW_MAGIC) {
        let dim = |i: usize| {
            rest.get(i..i + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
        };
        let (Some(w), Some(h)) = (dim(0), dim(4)) else {
            return Err(Error::Invalid(
                "a raw frame needs a 12-byte header: RGBA, width, height (u32 little-endian)"
                    .into(),
            ));
        };
        check_size(w, h)?;
        let pixels = &rest[8..];
        let expected = u64::from(w) * u64::from(h) * 4;
        if pixels.len() as u64 != expected {
            return Err(Error::Invalid(format!(
                "a {w}×{h} raw frame has {expected} bytes of RGBA, not {}",
                pixels.len()
            )));
        }
        let rgb: Vec<u8> = pixels
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        return Ok(Frame::from_rgb(w, h, rgb)?);
    }
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Invalid(format!("unreadable frame: {e}")))?;
    match reader.format() {
        Some(image::ImageFormat::Jpeg | image::ImageFormat::Png | image::ImageFormat::WebP) => {}
        _ => {
            return Err(Error::Invalid(
                "a live frame is a JPEG, PNG or WebP picture, or raw RGBA behind an `RGBA` header"
                    .into(),
            ));
        }
    }
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| Error::Invalid(format!("unreadable frame: {e}")))?;
    check_size(w, h)?;
    crate::image_io::decode_image(bytes, Path::new("live frame"))
}

fn check_size(w: u32, h: u32) -> Result<()> {
    if w == 0 || h == 0 || u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(Error::Invalid(format!(
            "a {w}×{h} frame: live frames are between 1×1 and {MAX_PIXELS} pixels"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(w: u32, h: u32, px: [u8; 4]) -> Vec<u8> {
        let mut b = RAW_MAGIC.to_vec();
        b.extend(w.to_le_bytes());
        b.extend(h.to_le_bytes());
        for _ in 0..w * h {
            b.extend(px);
        }
        b
    }

    #[test]
    fn raw_frames_decode_and_bad_ones_are_refused() {
        let f = decode_frame(&raw(3, 2, [10, 20, 30, 255])).unwrap();
        assert_eq!((f.width(), f.height()), (3, 2));
        assert_eq!(&f.data()[..3], &[10, 20, 30]);
        let mut short = raw(3, 2, [0; 4]);
        short.pop();
        assert!(decode_frame(&short).is_err());
        assert!(decode_frame(b"RGBA\x01").is_err());
        let mut huge = RAW_MAGIC.to_vec();
        huge.extend(100_000u32.to_le_bytes());
        huge.extend(100_000u32.to_le_bytes());
        assert!(
            decode_frame(&huge)
                .unwrap_err()
                .to_string()
                .contains("pixels")
        );
        assert!(decode_frame(b"GIF89a not a frame").is_err());
        assert!(decode_frame(&[]).is_err());
    }

    #[test]
    fn a_slow_engine_gets_the_newest_frame_and_knows_where_it_came_from() {
        let (feed, mut src) = Feed::new(30.0);
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
            .encode(&[200; 8 * 8 * 3], 8, 8, image::ExtendedColorType::Rgb8)
            .unwrap();
        feed.push(b"not a picture".to_vec());
        assert_eq!(feed.push(jpeg.clone()), 2);
        assert_eq!(feed.push(raw(4, 4, [1, 2, 3, 4])), 3);
        // Frames 1 and 2 were replaced before the engine took any.
        assert_eq!(feed.dropped(), 2);
        let f = src.next().unwrap().unwrap();
        assert_eq!((f.width(), f.height()), (4, 4));
        assert_eq!(feed.origin(1).map(|o| o.0), Some(3));
        feed.push(b"still not a picture".to_vec());
        feed.push(jpeg);
        let f = src.next().unwrap().unwrap();
        assert_eq!(f.width(), 8);
        assert_eq!(feed.origin(2).map(|o| o.0), Some(5));
        feed.push(b"garbage".to_vec());
        feed.close();
        assert!(
            src.next().unwrap().is_none(),
            "a closed feed ends the source"
        );
        assert_eq!(feed.rejected(), 1);
        assert!(feed.take_rejection().unwrap().starts_with("frame 6:"));
    }
}
