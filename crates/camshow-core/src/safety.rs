//! The content-safety gate: every source, target, sampled video frame and
//! live frame goes through it before any face is touched.
//!
//! The detector is NudeNet 320n (a YOLOv8-style network; decode and NMS are
//! ours). An image is **unsafe** when any of the exposed-nudity classes in
//! [`UNSAFE_CLASSES`] is detected with a score of at least
//! [`UNSAFE_THRESHOLD`]. There is no switch to turn the gate off: it is built
//! only from the verified NudeNet file in the models directory, and without
//! that file nothing is processed.
//!
//! ```no_run
//! # fn main() -> camshow_core::Result<()> {
//! use camshow_core::{models::ModelStore, runtime::*, safety::SafetyGate};
//! let gate = SafetyGate::load(&Runtime::new(RuntimeSettings::default())?, &ModelStore::open_default())?;
//! let frame = camshow_core::Frame::filled(320, 240, [128, 128, 128])?;
//! gate.ensure_safe(&frame, "target")?; // Err(Error::Unsafe { .. }) when nudity is found
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::detect::nms;
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::imgproc::{ChannelOrder, Layout, resize_padded_square, to_blob};
use crate::models::ModelStore;
use crate::runtime::{Model, Runtime, TensorF32};

/// NudeNet's class names, in output order.
pub const LABELS: [&str; 18] = [
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
];

/// The classes that make an image unsafe.
pub const UNSAFE_CLASSES: [&str; 5] = [
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "BUTTOCKS_EXPOSED",
    "ANUS_EXPOSED",
];

/// Score at or above which an unsafe class makes the image unsafe. NudeNet
/// itself reports detections from 0.2; 0.4 keeps the gate strict while the
/// sample photos (clothed people) stay well below it.
pub const UNSAFE_THRESHOLD: f32 = 0.4;

/// Detections below this score are ignored (NudeNet's own cut-off).
const MIN_SCORE: f32 = 0.2;
const NMS_IOU: f32 = 0.45;
const INPUT: u32 = 320;

/// One detected region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    /// Class name.
    pub label: &'static str,
    /// Score 0–1.
    pub score: f32,
    /// `[x1, y1, x2, y2]` in frame pixels.
    pub bbox: [f32; 4],
}

/// The gate's decision on one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// Whether the image may be processed.
    pub safe: bool,
    /// Highest score among the unsafe classes (0 if none).
    pub max_unsafe_score: f32,
    /// Everything NudeNet found.
    pub detections: Vec<Detection>,
}

/// Whether this build has the test marker (tests only; see [`test_marker`]).
pub const TEST_MARKER_BUILD: bool = cfg!(feature = "test-marker");

/// Tests only (the `test-marker` feature, which no shipped binary enables): a
/// picture carrying the test marker — a checkerboard of deep pink and lime
/// cells, 8 px each, covering at least 0.5 % of the checked region — is also
/// unsafe, with the label [`test_marker::LABEL`]. The real model's verdict
/// is kept: the marker can only add a refusal. With it, tests drive every
/// refusal of the gate end to end without an unsafe asset. (A structured
/// marker: flat colours and gradients, such as FFmpeg's test patterns, never
/// carry it.)
#[cfg(feature = "test-marker")]
pub mod test_marker {
    use super::{Detection, Verdict};
    use crate::frame::Frame;

    /// The label of a marker detection.
    pub const LABEL: &str = "TEST_MARKER";
    /// The two cell colours.
    pub const PINK: [u8; 3] = [255, 0, 128];
    /// See [`PINK`].
    pub const LIME: [u8; 3] = [128, 255, 0];
    /// Cell size in pixels.
    pub const CELL: u32 = 8;

    fn pink(p: &[u8]) -> bool {
        p[0] >= 200 && p[1] <= 60 && (80..=180).contains(&p[2])
    }

    fn lime(p: &[u8]) -> bool {
        (80..=180).contains(&p[0]) && p[1] >= 200 && p[2] <= 60
    }

    /// Paints the marker over `(x, y, w, h)` of `frame` (clipped).
    pub fn paint(frame: &mut Frame, x: u32, y: u32, w: u32, h: u32) {
        for yy in y..y + h {
            for xx in x..x + w {
                let c = if ((xx - x) / CELL + (yy - y) / CELL).is_multiple_of(2) {
                    PINK
                } else {
                    LIME
                };
                frame.put_pixel(i64::from(xx), i64::from(yy), c);
            }
        }
    }

    /// Whether `frame` carries the marker (tolerant of video coding): pink
    /// pixels with lime one cell to their right.
    pub fn present(frame: &Frame) -> bool {
        let (w, h) = (frame.width() as usize, frame.height() as usize);
        let d = frame.data();
        let step = CELL as usize;
        let mut n = 0usize;
        for y in 0..h {
            let row = &d[y * w * 3..(y + 1) * w * 3];
            for x in 0..w.saturating_sub(step) {
                if pink(&row[x * 3..x * 3 + 3]) && lime(&row[(x + step) * 3..(x + step) * 3 + 3]) {
                    n += 1;
                }
            }
        }
        n >= 128 && n * 400 >= w * h
    }

    /// The verdict with the marker's detection added when present.
    pub fn apply(frame: &Frame, mut v: Verdict) -> Verdict {
        if present(frame) {
            v.detections.push(Detection {
                label: LABEL,
                score: 1.0,
                bbox: [0.0, 0.0, frame.width() as f32, frame.height() as f32],
            });
            v.max_unsafe_score = 1.0;
            v.safe = false;
        }
        v
    }
}

/// The content-safety gate.
#[derive(Debug, Clone)]
pub struct SafetyGate {
    model: Arc<Model>,
}

impl SafetyGate {
    /// Loads the gate from the verified NudeNet model in `store`. Without it,
    /// the error says how to install it; nothing can be processed until then.
    pub fn load(rt: &Runtime, store: &ModelStore) -> Result<Self> {
        let bytes = store.read_verified("nudenet").map_err(|e| match e {
            Error::ModelMissing { name, dir, .. } => Error::ModelMissing {
                name,
                dir,
                hint: " (or run the README's setup command). The content-safety gate needs it: nothing is processed without it".into(),
            },
            other => other,
        })?;
        Self::from_model_bytes(rt, &bytes)
    }

    fn from_model_bytes(rt: &Runtime, bytes: &[u8]) -> Result<Self> {
        let model = rt.load_sessions("nudenet", bytes, GATE_SESSIONS)?;
        if model.input_names().len() != 1 || model.output_names().len() != 1 {
            return Err(Error::ModelSignature {
                model: "nudenet".into(),
                reason: "expected one input and one output".into(),
            });
        }
        Ok(Self { model })
    }

    /// The loaded model (for reporting providers).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Runs the detector and decides.
    pub fn check(&self, frame: &Frame) -> Result<Verdict> {
        // Pad to a square at the bottom/right, then resize: NudeNet's own
        // preprocessing (the padding read as black, not copied).
        let side = frame.width().max(frame.height());
        let input = resize_padded_square(frame, INPUT, INPUT);
        let blob = to_blob(&input, ChannelOrder::Rgb, Layout::Nchw, 0.0, 255.0);
        let outs = self
            .model
            .run(&[(&[1, 3, INPUT as usize, INPUT as usize], &blob)])?;
        let verdict = decode(&outs[0], side)?;
        #[cfg(feature = "test-marker")]
        let verdict = test_marker::apply(frame, verdict);
        Ok(verdict)
    }

    /// Checks `frame` and turns an unsafe verdict into [`Error::Unsafe`];
    /// `what` names the input in the message ("source", "target", …).
    pub fn ensure_safe(&self, frame: &Frame, what: &str) -> Result<Verdict> {
        refuse_unsafe(self.check(frame)?, what)
    }

    /// The gate's view of a still picture: the whole picture, overlapping
    /// tiles when it is larger than twice the model's input (so a person in
    /// a large canvas is seen near native scale), and a context crop around
    /// each face in `faces` (`[x1, y1, x2, y2]`) — the face with the body
    /// below it, filling the model's input. Unsafe if any check is.
    ///
    /// The checks run side by side on the gate's sessions
    /// ([`GATE_SESSIONS`]); the verdict is merged in the order above.
    pub fn check_image(&self, frame: &Frame, faces: &[[f32; 4]]) -> Result<Verdict> {
        let mut regions = vec![((0, 0, frame.width(), frame.height()), false)];
        if frame.width() > 2 * INPUT || frame.height() > 2 * INPUT {
            regions.extend(
                tiles(frame.width(), frame.height())
                    .into_iter()
                    .map(|t| (t, true)),
            );
        }
        regions.extend(context_regions(frame, faces));
        self.check_regions(frame, &regions)
    }

    /// Checks the `regions` of `frame` (`(x, y, w, h)`, and whether the
    /// region is skipped when it is one flat colour) side by side on the
    /// gate's sessions ([`GATE_SESSIONS`]), and merges the verdicts in order.
    /// Boxes are in frame pixels.
    fn check_regions(&self, frame: &Frame, regions: &[Region]) -> Result<Verdict> {
        use rayon::prelude::*;
        let verdicts: Vec<Option<Verdict>> = regions
            .par_iter()
            .with_max_len(1)
            .map(|&((x, y, w, h), skip_flat)| {
                if (x, y, w, h) == (0, 0, frame.width(), frame.height()) {
                    return self.check(frame).map(Some);
                }
                let crop = frame.crop(i64::from(x), i64::from(y), i64::from(w), i64::from(h));
                if skip_flat && is_flat(&crop) {
                    return Ok(None);
                }
                Ok(Some(shifted(self.check(&crop)?, x, y)))
            })
            .collect::<Result<_>>()?;
        let mut v = Verdict {
            safe: true,
            max_unsafe_score: 0.0,
            detections: Vec::new(),
        };
        for verdict in verdicts.into_iter().flatten() {
            merge(&mut v, verdict);
        }
        Ok(v)
    }

    /// A video or live frame: the whole frame and the context crop around
    /// each face about to be swapped (no tiles: frames are checked several
    /// times a second).
    pub fn check_frame(&self, frame: &Frame, faces: &[[f32; 4]]) -> Result<Verdict> {
        let mut v = self.check(frame)?;
        for b in faces {
            merge(&mut v, self.check_context(frame, b)?);
        }
        Ok(v)
    }

    /// [`SafetyGate::check_image`] as an [`Error::Unsafe`] when unsafe.
    pub fn ensure_safe_image(
        &self,
        frame: &Frame,
        faces: &[[f32; 4]],
        what: &str,
    ) -> Result<Verdict> {
        refuse_unsafe(self.check_image(frame, faces)?, what)
    }

    /// Checks only the context crops around `faces` (the faces about to be
    /// swapped, after [`SafetyGate::ensure_safe_image`] passed the picture).
    pub fn ensure_safe_regions(
        &self,
        frame: &Frame,
        faces: &[[f32; 4]],
        what: &str,
    ) -> Result<Verdict> {
        let regions: Vec<Region> = context_regions(frame, faces).collect();
        refuse_unsafe(self.check_regions(frame, &regions)?, what)
    }

    /// Overlapping tiles of twice the model's input, half overlapping, at
    /// most [`MAX_TILES`] (larger tiles beyond that); tiles of one flat colour
    /// (padding, empty canvas) are skipped. Boxes are in frame pixels.
    pub fn check_tiles(&self, frame: &Frame) -> Result<Verdict> {
        let regions: Vec<Region> = tiles(frame.width(), frame.height())
            .into_iter()
            .map(|t| (t, true))
            .collect();
        self.check_regions(frame, &regions)
    }

    /// The context crop around one face box ([`context_region`]). Boxes are in frame pixels.
    pub fn check_context(&self, frame: &Frame, face: &[f32; 4]) -> Result<Verdict> {
        let (x, y, w, h) = context_region(frame.width(), frame.height(), face);
        let crop = frame.crop(i64::from(x), i64::from(y), i64::from(w), i64::from(h));
        Ok(shifted(self.check(&crop)?, x, y))
    }
}

/// A region `(x, y, w, h)` of a picture to check, and whether it is skipped
/// when it is one flat colour.
type Region = ((u32, u32, u32, u32), bool);

/// The context regions of `faces` in `frame` ([`context_region`]), always checked.
fn context_regions<'a>(frame: &Frame, faces: &'a [[f32; 4]]) -> impl Iterator<Item = Region> + 'a {
    let (w, h) = (frame.width(), frame.height());
    faces.iter().map(move |b| (context_region(w, h, b), false))
}

/// Most tiles one picture gets (≈ 10 s of gate time on a 2-core CPU);
/// beyond it, tiles grow so that their number stays under the cap.
pub const MAX_TILES: usize = 400;

/// Tile rectangles `(x, y, w, h)` covering a `width`×`height` picture:
/// squares of twice the model's input, half overlapping, grown (keeping the
/// half overlap) until there are at most [`MAX_TILES`]; empty for pictures
/// the whole-picture check already sees at near native scale.
pub fn tiles(width: u32, height: u32) -> Vec<(u32, u32, u32, u32)> {
    if width <= 2 * INPUT && height <= 2 * INPUT {
        return Vec::new();
    }
    let mut side = 2 * INPUT;
    loop {
        let (xs, ys) = (starts(width, side), starts(height, side));
        if xs.len() * ys.len() <= MAX_TILES {
            return ys
                .iter()
                .flat_map(|&y| {
                    xs.iter()
                        .map(move |&x| (x, y, side.min(width), side.min(height)))
                })
                .collect();
        }
        side = side * 5 / 4;
    }
}

/// Tile starts along one side: every half tile, the last one flush with the end.
fn starts(len: u32, side: u32) -> Vec<u32> {
    if len <= side {
        return vec![0];
    }
    let stride = side / 2;
    let mut v: Vec<u32> = (0..len)
        .step_by(stride.max(1) as usize)
        .take_while(|&p| p + side < len)
        .collect();
    v.push(len - side);
    v
}

/// The region the gate looks at around a face `[x1, y1, x2, y2]`: three face
/// widths wide, from half a face height above it to four below it (the body
/// the face belongs to), clipped to the picture. `(x, y, w, h)`.
pub fn context_region(width: u32, height: u32, face: &[f32; 4]) -> (u32, u32, u32, u32) {
    let [x1, y1, x2, y2] = *face;
    let (fw, fh) = ((x2 - x1).max(1.0), (y2 - y1).max(1.0));
    let cx = 0.5 * (x1 + x2);
    let clamp_x = |v: f32| v.clamp(0.0, width as f32) as u32;
    let clamp_y = |v: f32| v.clamp(0.0, height as f32) as u32;
    let (left, right) = (clamp_x(cx - 1.5 * fw), clamp_x(cx + 1.5 * fw));
    let (top, bottom) = (clamp_y(y1 - 0.5 * fh), clamp_y(y2 + 4.0 * fh));
    (left, top, (right - left).max(1), (bottom - top).max(1))
}

/// Whether a picture is one flat colour (checked on every 4th pixel).
fn is_flat(frame: &Frame) -> bool {
    let w = frame.width() as usize;
    let d = frame.data();
    let (mut lo, mut hi) = ([255u8; 3], [0u8; 3]);
    for y in (0..frame.height() as usize).step_by(4) {
        for x in (0..w).step_by(4) {
            let i = (y * w + x) * 3;
            for c in 0..3 {
                lo[c] = lo[c].min(d[i + c]);
                hi[c] = hi[c].max(d[i + c]);
            }
        }
    }
    (0..3).all(|c| hi[c].saturating_sub(lo[c]) <= 6)
}

fn shifted(mut v: Verdict, x: u32, y: u32) -> Verdict {
    let (dx, dy) = (x as f32, y as f32);
    for d in &mut v.detections {
        d.bbox = [
            d.bbox[0] + dx,
            d.bbox[1] + dy,
            d.bbox[2] + dx,
            d.bbox[3] + dy,
        ];
    }
    v
}

fn merge(into: &mut Verdict, other: Verdict) {
    into.safe &= other.safe;
    into.max_unsafe_score = into.max_unsafe_score.max(other.max_unsafe_score);
    into.detections.extend(other.detections);
}

/// The unsafe classes a verdict found (sorted, each once).
pub fn unsafe_labels(v: &Verdict) -> Vec<&'static str> {
    let mut labels: Vec<&'static str> = v
        .detections
        .iter()
        .filter(|d| {
            (UNSAFE_CLASSES.contains(&d.label) || (TEST_MARKER_BUILD && d.label == "TEST_MARKER"))
                && d.score >= UNSAFE_THRESHOLD
        })
        .map(|d| d.label)
        .collect();
    labels.sort_unstable();
    labels.dedup();
    labels
}

fn refuse_unsafe(v: Verdict, what: &str) -> Result<Verdict> {
    if v.safe {
        return Ok(v);
    }
    let labels = unsafe_labels(&v);
    Err(Error::Unsafe {
        what: what.into(),
        labels: labels.join(", "),
        score: v.max_unsafe_score,
        threshold: UNSAFE_THRESHOLD,
    })
}

/// Decodes NudeNet's `[1, 22, N]` output for a picture padded to a
/// `side`×`side` square: the best class per anchor, boxes back in picture
/// pixels, NMS, and the verdict.
pub fn decode(out: &TensorF32, side: u32) -> Result<Verdict> {
    let channels = 4 + LABELS.len();
    let anchors = out.data.len() / channels;
    if out.shape.len() != 3 || out.shape[1] != channels || anchors * channels != out.data.len() {
        return Err(Error::ModelSignature {
            model: "nudenet".into(),
            reason: format!("output shape {:?} is not [1, 22, N]", out.shape),
        });
    }
    let k = side as f32 / INPUT as f32;
    let at = |c: usize, a: usize| out.data[c * anchors + a];
    let mut boxes = Vec::new();
    let mut scores = Vec::new();
    let mut classes = Vec::new();
    for a in 0..anchors {
        let (mut best, mut cls) = (f32::MIN, 0);
        for c in 0..LABELS.len() {
            let s = at(4 + c, a);
            if s > best {
                best = s;
                cls = c;
            }
        }
        if best.is_nan() || best < MIN_SCORE {
            continue;
        }
        let (cx, cy, w, h) = (at(0, a), at(1, a), at(2, a), at(3, a));
        let b = [
            (cx - w / 2.0) * k,
            (cy - h / 2.0) * k,
            (cx + w / 2.0) * k,
            (cy + h / 2.0) * k,
        ];
        boxes.push(b.map(|v| v.max(0.0)));
        scores.push(best);
        classes.push(cls);
    }
    let detections: Vec<Detection> = nms(&boxes, &scores, NMS_IOU, false, false)
        .into_iter()
        .map(|i| Detection {
            label: LABELS[classes[i]],
            score: scores[i],
            bbox: boxes[i],
        })
        .collect();
    let max_unsafe_score = detections
        .iter()
        .filter(|d| UNSAFE_CLASSES.contains(&d.label))
        .map(|d| d.score)
        .fold(0.0, f32::max);
    Ok(Verdict {
        safe: max_unsafe_score < UNSAFE_THRESHOLD,
        max_unsafe_score,
        detections,
    })
}

/// Checks the gate can run at once (its model's sessions): a video job
/// checks frames on this many threads, beside its frame workers.
pub const GATE_SESSIONS: usize = 2;

/// A share of frames may be unsafe before a video is refused (as FaceFusion does).
pub const MAX_UNSAFE_SHARE: f64 = 0.10;

/// The video rule: refused when more than 10 % of the samples are unsafe,
/// or any sample when there are fewer than 10.
pub fn video_refused(samples: u64, unsafe_samples: u64) -> bool {
    SafetyPolicy::default().video_refused(samples, unsafe_samples)
}

/// The gate's policy for each medium, in one place: how often video and
/// live frames are checked and when a video is refused. Images are always
/// checked whole, in tiles and around every face about to be swapped
/// (`SafetyGate::ensure_safe_image`, `SafetyGate::ensure_safe_regions`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SafetyPolicy {
    /// Checks per second of video while swapping (the frame and the context
    /// crops of the faces about to be swapped): no frame is swapped before
    /// a check after it has passed.
    pub video_checks_per_second: f64,
    /// Share of unsafe video checks above which a video is refused.
    pub max_unsafe_share: f64,
    /// The live gate checks the newest frame back to back, but starts checks
    /// at most this often (leaving the CPU to the swap on small machines).
    pub live_interval: Duration,
    /// A live frame is swapped only when a check passed on a frame captured
    /// at most this long before it: at least 1 / this many checks per second.
    pub live_max_staleness: Duration,
    /// How long live swapping stays off after the gate fires.
    pub live_cooldown: Duration,
}

impl Default for SafetyPolicy {
    fn default() -> Self {
        Self {
            video_checks_per_second: 4.0,
            max_unsafe_share: MAX_UNSAFE_SHARE,
            live_interval: Duration::from_millis(200),
            live_max_staleness: Duration::from_millis(500),
            live_cooldown: Duration::from_secs(5),
        }
    }
}

impl SafetyPolicy {
    /// Whether a video with `unsafe_samples` of `samples` checks is refused.
    pub fn video_refused(&self, samples: u64, unsafe_samples: u64) -> bool {
        if samples < 10 {
            unsafe_samples > 0
        } else {
            unsafe_samples as f64 > self.max_unsafe_share * samples as f64
        }
    }

    /// Whether a video is refused whatever its remaining checks find, after
    /// `unsafe_checks` of `checks` were unsafe and at most `checks_left`
    /// follow: the checks are made while the video is processed, and a job
    /// stops as soon as this holds instead of finishing a video it will
    /// refuse. (The rule can only be lifted by more safe checks, so the
    /// most checks that may follow, all safe, decide it.)
    pub fn video_refused_whatever_follows(
        &self,
        checks: u64,
        unsafe_checks: u64,
        checks_left: u64,
    ) -> bool {
        self.video_refused(checks.saturating_add(checks_left), unsafe_checks)
    }

    /// Frames between two checks for a video at `fps`.
    pub fn video_check_interval(&self, fps: f64) -> u64 {
        let per_check = fps / self.video_checks_per_second.max(0.1);
        (per_check.floor() as u64).max(1)
    }

    /// A fresh live clearance: nothing swapped before the first check passes.
    pub fn live_clearance(&self) -> LiveClearance {
        LiveClearance::new(self.live_max_staleness, self.live_cooldown)
    }
}

/// Which video frames may be swapped, decided in frame order as the gate's
/// checks come in: frames wait until the next check; when it passes, the
/// frames since the previous check are released to be swapped; when it
/// fails, they — and the frames up to the next check — are released
/// unswapped (the range is reported). A frame is never swapped before a
/// check at or after it has passed.
#[derive(Debug, Clone, Default)]
pub struct VideoClearance {
    waiting: Vec<u64>,
    /// The last check failed: the frames up to the next check stay unswapped.
    after_unsafe: bool,
    checks: u64,
    unsafe_checks: u64,
    unswapped: Vec<(u64, u64)>,
}

impl VideoClearance {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Frame `index` (in order) with, when it was a check frame, the
    /// verdict. Returns the frames released now, each with whether it may
    /// be swapped.
    pub fn frame(&mut self, index: u64, verdict: Option<bool>) -> Vec<(u64, bool)> {
        self.waiting.push(index);
        let Some(safe) = verdict else {
            return Vec::new();
        };
        self.checks += 1;
        let swap = safe && !self.after_unsafe;
        if !safe {
            self.unsafe_checks += 1;
        }
        self.after_unsafe = !safe;
        let released: Vec<(u64, bool)> = self.waiting.drain(..).map(|i| (i, swap)).collect();
        if !swap && let (Some(first), Some(last)) = (released.first(), released.last()) {
            match self.unswapped.last_mut() {
                Some(r) if r.1 + 1 == first.0 => r.1 = last.0,
                _ => self.unswapped.push((first.0, last.0)),
            }
        }
        released
    }

    /// The end of the video: frames still waiting get one last verdict (the
    /// caller checks the last frame).
    pub fn finish(&mut self, last_verdict: bool) -> Vec<(u64, bool)> {
        if self.waiting.is_empty() {
            return Vec::new();
        }
        let last = *self.waiting.last().unwrap_or(&0);
        self.waiting.pop();
        self.frame(last, Some(last_verdict))
    }

    /// Frames are waiting for a check.
    pub fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Checks made and how many were unsafe.
    pub fn checks(&self) -> (u64, u64) {
        (self.checks, self.unsafe_checks)
    }

    /// Inclusive frame ranges left unswapped because of the gate.
    pub fn unswapped(&self) -> &[(u64, u64)] {
        &self.unswapped
    }
}

/// Finds hard scene cuts in a frame sequence, so the video gate checks the
/// first frame of every new scene as well as its regular checks. Each frame
/// is reduced to a 32×18 grid of mean luma; a cut is a frame whose mean
/// absolute difference from the previous one is large (over 8 % of the
/// range) and well above the recent frame-to-frame differences (2.5×), so
/// fast motion inside a scene is not taken for a cut.
#[derive(Debug, Clone, Default)]
pub struct SceneCuts {
    previous: Option<Vec<f32>>,
    /// Running mean of recent differences.
    recent: f32,
    /// Differences seen since the start or the last cut.
    history: u32,
    cuts: u64,
}

const CUT_GRID: (usize, usize) = (32, 18);
const CUT_MIN_DIFF: f32 = 0.08;
const CUT_OVER_RECENT: f32 = 2.5;
/// Until a scene has a few frames of history, only a large change is a cut.
const CUT_NO_HISTORY_DIFF: f32 = 0.2;

impl SceneCuts {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The grid of mean luma (0–1), each cell sampled on a 4×4 lattice.
    fn signature(frame: &Frame) -> Vec<f32> {
        let (w, h) = (frame.width() as usize, frame.height() as usize);
        let (gw, gh) = CUT_GRID;
        let data = frame.data();
        let mut out = Vec::with_capacity(gw * gh);
        for cy in 0..gh {
            for cx in 0..gw {
                let mut sum = 0f32;
                for sy in 0..4 {
                    let y = ((cy * 4 + sy) * 2 + 1) * h / (gh * 8);
                    for sx in 0..4 {
                        let x = ((cx * 4 + sx) * 2 + 1) * w / (gw * 8);
                        let i = (y.min(h - 1) * w + x.min(w - 1)) * 3;
                        sum += 0.299 * f32::from(data[i])
                            + 0.587 * f32::from(data[i + 1])
                            + 0.114 * f32::from(data[i + 2]);
                    }
                }
                out.push(sum / (16.0 * 255.0));
            }
        }
        out
    }

    /// Whether `frame` (the next in order) starts a new scene. The first
    /// frame does not.
    pub fn is_cut(&mut self, frame: &Frame) -> bool {
        if frame.width() == 0 || frame.height() == 0 {
            return false;
        }
        let sig = Self::signature(frame);
        let Some(prev) = self.previous.replace(sig) else {
            return false;
        };
        let cur = self.previous.as_deref().unwrap_or_default();
        let diff = prev
            .iter()
            .zip(cur)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / prev.len() as f32;
        let cut = if self.history < 3 {
            diff > CUT_NO_HISTORY_DIFF
        } else {
            diff > CUT_MIN_DIFF && diff > CUT_OVER_RECENT * self.recent
        };
        if cut {
            self.cuts += 1;
            // A new scene starts its own history.
            self.recent = 0.0;
            self.history = 0;
        } else {
            self.recent = if self.history == 0 {
                diff
            } else {
                0.8 * self.recent + 0.2 * diff
            };
            self.history += 1;
        }
        cut
    }

    /// Cuts found so far.
    pub fn cuts(&self) -> u64 {
        self.cuts
    }
}

/// Which live frames may be swapped, from the verdicts of a gate that runs
/// on its own thread over the newest frame and the context crops of the
/// faces about to be swapped.
///
/// A frame may be swapped only when a check has passed on a frame captured
/// at most `max_staleness` before it (so a gate that falls behind, or has
/// not answered yet, holds swapping: the floor is one check per
/// `max_staleness`). An unsafe check stops swapping at once, for
/// `cooldown`; it resumes only after a check on a frame captured **after**
/// the cool-down passes, so alternating safe and unsafe frames cannot race
/// it, and an unsafe check during the cool-down extends it.
#[derive(Debug, Clone)]
pub struct LiveClearance {
    max_staleness: Duration,
    cooldown: Duration,
    /// Capture time of the newest frame that passed (outside a hold).
    last_pass: Option<Instant>,
    hold_until: Option<Instant>,
    checks: u64,
    trips: u64,
}

impl LiveClearance {
    /// Nothing checked yet: nothing may be swapped.
    pub fn new(max_staleness: Duration, cooldown: Duration) -> Self {
        Self {
            max_staleness,
            cooldown,
            last_pass: None,
            hold_until: None,
            checks: 0,
            trips: 0,
        }
    }

    /// Records a verdict on the frame captured at `captured`, known at
    /// `checked_at`. Returns true when this check tripped the gate (it was
    /// unsafe and swapping was not already held).
    pub fn record(&mut self, captured: Instant, checked_at: Instant, safe: bool) -> bool {
        self.checks += 1;
        if !safe {
            let tripped = self.hold_until.is_none();
            if tripped {
                self.trips += 1;
            }
            let until = checked_at.max(captured) + self.cooldown;
            self.hold_until = Some(self.hold_until.map_or(until, |h| h.max(until)));
            self.last_pass = None;
            return tripped;
        }
        match self.hold_until {
            Some(h) if captured >= h => {
                self.hold_until = None;
                self.last_pass = Some(captured);
            }
            Some(_) => {}
            None => self.last_pass = Some(self.last_pass.map_or(captured, |p| p.max(captured))),
        }
        false
    }

    /// Whether the frame captured at `captured` may be swapped.
    pub fn may_swap(&self, captured: Instant) -> bool {
        self.hold_until.is_none()
            && self
                .last_pass
                .is_some_and(|p| captured.saturating_duration_since(p) <= self.max_staleness)
    }

    /// Whether swapping is held back by an unsafe check.
    pub fn tripped(&self) -> bool {
        self.hold_until.is_some()
    }

    /// Checks recorded and how many times the gate tripped.
    pub fn counts(&self) -> (u64, u64) {
        (self.checks, self.trips)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn video_frames_wait_for_a_passing_check_after_them() {
        let mut c = VideoClearance::new();
        // Checks every 4 frames: 0, 4, 8, 12.
        let check = |i: u64, bad: &[u64]| i.is_multiple_of(4).then_some(!bad.contains(&i));
        let mut released = Vec::new();
        for i in 0..14 {
            let r = c.frame(i, check(i, &[8]));
            if !i.is_multiple_of(4) {
                assert!(r.is_empty(), "frame {i} released before a check after it");
            }
            released.extend(r);
        }
        released.extend(c.finish(true));
        let swapped: Vec<u64> = released.iter().filter(|r| r.1).map(|r| r.0).collect();
        let kept: Vec<u64> = released.iter().filter(|r| !r.1).map(|r| r.0).collect();
        // Every frame once, in order.
        assert_eq!(
            released.iter().map(|r| r.0).collect::<Vec<_>>(),
            (0..14).collect::<Vec<_>>()
        );
        // The unsafe check at 8 leaves 5–12 unswapped: since the check before
        // it, and up to the check after it.
        assert_eq!(kept, (5..=12).collect::<Vec<_>>());
        assert_eq!(swapped, [0, 1, 2, 3, 4, 13]);
        assert_eq!(c.unswapped(), &[(5, 12)]);
        assert_eq!(c.checks(), (5, 1));
    }

    #[test]
    fn a_video_is_refused_early_exactly_when_no_remaining_checks_can_lift_it() {
        let p = SafetyPolicy::default();
        for checks in 0..40u64 {
            for bad in 0..=checks {
                for left in 0..40u64 {
                    let early = p.video_refused_whatever_follows(checks, bad, left);
                    // Every way the remaining checks may come out.
                    let mut outcomes = (0..=left)
                        .flat_map(|more| (0..=more).map(move |more_bad| (more, more_bad)))
                        .map(|(more, more_bad)| p.video_refused(checks + more, bad + more_bad));
                    if early {
                        assert!(outcomes.all(|r| r), "{bad} of {checks}, {left} left");
                    } else {
                        assert!(outcomes.any(|r| !r), "{bad} of {checks}, {left} left");
                    }
                }
            }
        }
        // A video unsafe throughout stops early: 3 unsafe checks with 25 to come.
        assert!(p.video_refused_whatever_follows(3, 3, 25));
        assert!(!p.video_refused_whatever_follows(2, 2, 27));
    }

    #[test]
    fn the_check_interval_gives_at_least_the_policys_rate() {
        let p = SafetyPolicy::default();
        assert_eq!(p.video_check_interval(30.0), 7);
        assert_eq!(p.video_check_interval(10.0), 2);
        assert_eq!(p.video_check_interval(2.0), 1);
        assert!(!p.video_refused(20, 2) && p.video_refused(20, 3));
    }

    #[test]
    fn tiles_cover_large_pictures_with_overlap_and_a_cap() {
        assert!(tiles(640, 480).is_empty(), "small pictures are seen whole");
        let t = tiles(1000, 700);
        assert!(t.iter().all(|&(_, _, w, h)| w == 640 && h <= 700));
        // Every pixel is in a tile, and any 320-px square lies wholly inside one.
        for (px, py) in [(0, 0), (999, 699), (500, 350)] {
            assert!(
                t.iter()
                    .any(|&(x, y, w, h)| px >= x && px < x + w && py >= y && py < y + h)
            );
        }
        for (sx, sy) in [(0u32, 0u32), (340, 190), (679, 379)] {
            assert!(
                t.iter().any(|&(x, y, w, h)| sx >= x
                    && sx + 320 <= x + w
                    && sy >= y
                    && sy + 320 <= y + h),
                "square at {sx},{sy}"
            );
        }
        assert_eq!(tiles(6000, 6000).len(), 18 * 18);
        let huge = tiles(30000, 30000);
        assert!(
            huge.len() <= MAX_TILES && huge.len() > MAX_TILES / 3,
            "{}",
            huge.len()
        );
        let (x, y, w, h) = *huge.last().unwrap();
        assert_eq!(
            (x + w, y + h),
            (30000, 30000),
            "the last tile reaches the corner"
        );
    }

    #[test]
    fn the_context_region_takes_in_the_body_below_the_face() {
        let (x, y, w, h) = context_region(1000, 1000, &[400.0, 100.0, 500.0, 220.0]);
        assert_eq!((x, y, w, h), (300, 40, 300, 660));
        // Clipped at the picture's edges.
        let (x, y, w, h) = context_region(300, 200, &[0.0, 0.0, 100.0, 100.0]);
        assert_eq!((x, y), (0, 0));
        assert!(x + w <= 300 && y + h <= 200);
    }

    #[test]
    fn flat_tiles_are_skipped_and_textured_ones_are_not() {
        assert!(is_flat(&Frame::filled(64, 64, [10, 200, 30]).unwrap()));
        let mut f = Frame::filled(64, 64, [10, 200, 30]).unwrap();
        f.data_mut()[(32 * 64 + 32) * 3] = 250;
        assert!(!is_flat(&f));
    }

    #[test]
    fn the_video_safety_rule() {
        assert!(!video_refused(0, 0));
        assert!(
            video_refused(3, 1),
            "short videos: any unsafe sample refuses"
        );
        assert!(!video_refused(9, 0));
        assert!(!video_refused(10, 1), "10 % is allowed");
        assert!(video_refused(10, 2));
        assert!(!video_refused(100, 10));
        assert!(video_refused(100, 11));
    }

    #[test]
    fn scene_cuts_are_found_and_motion_is_not_a_cut() {
        // A gradient panning across the frame (motion), then a cut to another picture.
        let pan = |shift: u32| {
            let (w, h) = (160u32, 90u32);
            let mut d = Vec::with_capacity((w * h * 3) as usize);
            for y in 0..h {
                for x in 0..w {
                    let v = (((x + shift) * 255 / w) % 256) as u8;
                    d.extend_from_slice(&[v, v, (y * 2) as u8]);
                }
            }
            Frame::from_rgb(w, h, d).unwrap()
        };
        let other = |k: u8| {
            let mut d = vec![0u8; 160 * 90 * 3];
            for (i, p) in d.chunks_exact_mut(3).enumerate() {
                let v = if (i / 160 / 10 + i % 160 / 10) % 2 == 0 {
                    230
                } else {
                    20
                };
                p.copy_from_slice(&[v, k, 255 - v]);
            }
            Frame::from_rgb(160, 90, d).unwrap()
        };
        let mut c = SceneCuts::new();
        let mut cuts = Vec::new();
        for i in 0..30u32 {
            let f = if i < 12 {
                pan(i * 6)
            } else if i < 20 {
                other(i as u8)
            } else {
                pan(i * 6)
            };
            if c.is_cut(&f) {
                cuts.push(i);
            }
        }
        assert_eq!(cuts, vec![12, 20]);
        assert_eq!(c.cuts(), 2);
        // Fast motion throughout is not a cut.
        let mut c = SceneCuts::new();
        assert!((0..20).all(|i| !c.is_cut(&pan(i * 15))));
    }

    #[test]
    fn live_frames_are_swapped_only_after_a_recent_passing_check() {
        let t0 = Instant::now();
        let s = Duration::from_millis;
        let mut c = LiveClearance::new(s(500), s(5000));
        assert!(!c.may_swap(t0), "nothing is swapped before the first check");
        assert!(!c.record(t0, t0 + s(40), true));
        assert!(c.may_swap(t0 + s(100)));
        assert!(c.may_swap(t0 + s(500)));
        assert!(
            !c.may_swap(t0 + s(501)),
            "a gate that falls behind holds swapping: at least two checks per second"
        );
        // Frames older than the last check are fine.
        c.record(t0 + s(400), t0 + s(440), true);
        assert!(c.may_swap(t0 + s(300)) && c.may_swap(t0 + s(900)));
        // An unsafe check stops swapping at once, for frames before and after it.
        assert!(c.record(t0 + s(1000), t0 + s(1050), false));
        assert!(!c.may_swap(t0 + s(950)) && !c.may_swap(t0 + s(1100)));
        // Safe checks during the cool-down (from the check: 6.05 s) do not resume it.
        for k in 2..6 {
            let t = t0 + s(1000 * k);
            assert!(!c.record(t, t + s(40), true));
            assert!(!c.may_swap(t + s(10)), "still holding at {k} s");
        }
        assert!(c.tripped());
        // A safe check on a frame captured after the cool-down resumes swapping.
        let after = t0 + s(6100);
        c.record(after, after + s(40), true);
        assert!(!c.tripped() && c.may_swap(after + s(100)));
        // A second unsafe check during a cool-down extends it and trips once.
        assert!(c.record(after + s(1000), after + s(1000), false));
        assert!(!c.record(after + s(3000), after + s(3000), false));
        c.record(after + s(7000), after + s(7000), true);
        assert!(
            c.tripped(),
            "the second unsafe check's cool-down ends at 8 s"
        );
        c.record(after + s(8000), after + s(8000), true);
        assert!(c.may_swap(after + s(8100)));
        assert_eq!(c.counts(), (12, 2));
    }

    use crate::onnx::{Attr, Dim, ModelBuilder};

    /// A stand-in with NudeNet's signature whose output is `constant`
    /// (shape [1, 22, 2100]) whatever the input: it forces the gate's decision.
    pub(crate) fn forced_model(constant: &[f32]) -> Vec<u8> {
        let sym = |s: &str| Dim::Symbolic(s.into());
        ModelBuilder::new("nudenet_stub", 17)
            .input(
                "images",
                &[sym("batch"), Dim::Fixed(3), sym("height"), sym("width")],
            )
            .initializer("zero", &[], &[0.0])
            .node(
                "ReduceMean",
                &["images"],
                &["m"],
                &[("keepdims", Attr::Int(0))],
            )
            .node("Mul", &["m", "zero"], &["z"], &[])
            .node(
                "Constant",
                &[],
                &["c"],
                &[("value", Attr::Tensor(vec![1, 22, 2100], constant.to_vec()))],
            )
            .node("Add", &["c", "z"], &["output0"], &[])
            .output(
                "output0",
                &[Dim::Fixed(1), Dim::Fixed(22), Dim::Fixed(2100)],
            )
            .build()
    }

    /// Output tensor with one detection of class `cls` at `score` (others 0).
    pub(crate) fn one_detection(cls: usize, score: f32) -> Vec<f32> {
        let a = 2100;
        let mut v = vec![0.0; 22 * a];
        let i = 7;
        v[i] = 100.0; // cx
        v[a + i] = 120.0; // cy
        v[2 * a + i] = 40.0; // w
        v[3 * a + i] = 60.0; // h
        v[(4 + cls) * a + i] = score;
        v
    }

    fn runtime() -> Runtime {
        Runtime::new(crate::runtime::RuntimeSettings::auto(1)).expect(
            "ONNX Runtime is required for these tests: run scripts/setup.sh (or set ORT_DYLIB_PATH)",
        )
    }

    fn gate_with(constant: &[f32]) -> SafetyGate {
        SafetyGate::from_model_bytes(&runtime(), &forced_model(constant)).unwrap()
    }

    #[test]
    fn forced_unsafe_class_is_refused() {
        let frame = Frame::filled(640, 480, [90, 90, 90]).unwrap();
        let cls = LABELS
            .iter()
            .position(|l| *l == "FEMALE_BREAST_EXPOSED")
            .unwrap();
        let gate = gate_with(&one_detection(cls, 0.9));
        let v = gate.check(&frame).unwrap();
        assert!(!v.safe);
        assert_eq!(v.detections.len(), 1);
        // box mapped back: the frame was padded to 640x640, so scale is 2
        assert_eq!(v.detections[0].bbox, [160.0, 180.0, 240.0, 300.0]);
        let err = gate.ensure_safe(&frame, "target").unwrap_err();
        assert!(matches!(err, Error::Unsafe { .. }));
        assert!(err.to_string().contains("FEMALE_BREAST_EXPOSED"), "{err}");
    }

    #[test]
    fn threshold_is_inclusive_and_safe_classes_pass() {
        let frame = Frame::filled(100, 300, [1, 2, 3]).unwrap();
        let genitalia = LABELS
            .iter()
            .position(|l| *l == "MALE_GENITALIA_EXPOSED")
            .unwrap();
        assert!(
            !gate_with(&one_detection(genitalia, UNSAFE_THRESHOLD))
                .check(&frame)
                .unwrap()
                .safe
        );
        assert!(
            gate_with(&one_detection(genitalia, UNSAFE_THRESHOLD - 0.01))
                .check(&frame)
                .unwrap()
                .safe
        );
        let face = LABELS.iter().position(|l| *l == "FACE_FEMALE").unwrap();
        let v = gate_with(&one_detection(face, 0.99))
            .ensure_safe(&frame, "source")
            .unwrap();
        assert!(v.safe);
        assert_eq!(v.detections[0].label, "FACE_FEMALE");
        assert!(
            gate_with(&vec![0.0; 22 * 2100])
                .check(&frame)
                .unwrap()
                .detections
                .is_empty()
        );
    }

    #[test]
    fn missing_model_refuses_and_names_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::new(dir.path(), dir.path());
        let err = SafetyGate::load(&runtime(), &store).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("camshow models fetch nudenet") && msg.contains("content-safety gate"),
            "{msg}"
        );
    }

    #[test]
    fn a_stand_in_model_cannot_replace_the_real_one() {
        // Writing a permissive model under NudeNet's file name does not disable the gate.
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::new(dir.path(), dir.path());
        let spec = crate::models::find("nudenet").unwrap();
        std::fs::write(store.path(spec), forced_model(&vec![0.0; 22 * 2100])).unwrap();
        assert!(matches!(
            SafetyGate::load(&runtime(), &store),
            Err(Error::ModelCorrupt { .. })
        ));
    }
}
