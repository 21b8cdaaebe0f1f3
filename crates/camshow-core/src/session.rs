//! [`FrameSession`]: the one per-frame step — analyse → (track) → select →
//! swap — shared by images, videos and live streams. It owns what persists
//! between frames (tracker, per-track selection, the face map's person per
//! track, the source plan), so a job can move it into a thread or task.
//!
//! [`FrameSession::process`] does not call the content-safety gate: each
//! caller applies the [`crate::safety::SafetyPolicy`] for its medium before
//! it swaps. Two gated steps are here for the callers that need no more:
//! [`FrameSession::swap_picture`] (one picture: the whole picture, then the
//! region around every face about to be swapped) and [`CheckedStream`]
//! (frames handed in one by one, as a live loop in Python does: a frame is
//! swapped only under a passing check at most the policy's staleness old).
//!
//! ```no_run
//! # fn main() -> camshow_core::Result<()> {
//! use std::sync::Arc;
//! use camshow_core::{context::EngineContext, pipeline::SwapEngine, settings::Settings};
//! use camshow_core::session::{FrameSession, SourcePlan};
//! let settings = Settings::default();
//! let engine = SwapEngine::load(&EngineContext::from_settings(&settings)?, &settings)?;
//! # let (source, mut frame) = (camshow_core::Frame::filled(8, 8, [0; 3])?, camshow_core::Frame::filled(8, 8, [0; 3])?);
//! let plan = SourcePlan::one(engine.prepare_source(&source)?);
//! let mut session = FrameSession::tracked(plan, &settings.engine, 30.0);
//! engine.safety_gate().ensure_safe(&frame, "frame")?;
//! let report = session.process(&engine, &mut frame)?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use crate::analysis::Needs;
use crate::detect::{Face, iou};
use crate::error::Result;
use crate::frame::Frame;
use crate::mapping::FaceMap;
use crate::pipeline::{SwapEngine, SwapReport};
use crate::select::{SelectMode, select};
use crate::settings::EngineSettings;
use crate::swap::PreparedSource;
use crate::track::{TrackSelector, Tracker, TrackerConfig};

/// Which source goes on which target face. Owned (cheap to clone: shared).
#[derive(Debug, Clone)]
pub enum SourcePlan {
    /// One source on the faces the selector chooses.
    One {
        /// The source.
        source: Arc<PreparedSource>,
        /// The reference identity for `reference` selection.
        reference: Option<Vec<f32>>,
    },
    /// Each mapped person gets their own source; everyone else is left alone.
    Mapped {
        /// The map.
        map: Arc<FaceMap>,
        /// `sources[i]` for `map.people[i]`.
        sources: Arc<Vec<Option<PreparedSource>>>,
    },
}

impl SourcePlan {
    /// One source, no reference.
    pub fn one(source: PreparedSource) -> Self {
        Self::One {
            source: Arc::new(source),
            reference: None,
        }
    }

    /// The source for index `i` (0 for [`SourcePlan::One`]).
    pub fn source(&self, i: usize) -> Option<&PreparedSource> {
        match self {
            Self::One { source, .. } => (i == 0).then_some(&**source),
            Self::Mapped { sources, .. } => sources.get(i)?.as_ref(),
        }
    }
}

/// Per-frame state of one image, video or live stream.
#[derive(Debug, Clone)]
pub struct FrameSession {
    plan: SourcePlan,
    mode: SelectMode,
    similarity: f32,
    /// `None` for still images (each picture on its own).
    tracking: Option<(Tracker, TrackSelector)>,
    person_of_track: HashMap<u64, Option<usize>>,
    /// Frames between two runs of the full detector (tracked; 1: every frame).
    detect_every: u32,
    /// Frames since the full detector last ran (or was asked to).
    since_full: u32,
    /// A tracked face was not found again near where it was.
    lost: bool,
    /// Faces found by a full detection done elsewhere, to be looked for again.
    hints: Vec<[f32; 4]>,
    /// The windows the last frame's faces were searched in.
    windows: Vec<[f32; 4]>,
}

impl FrameSession {
    /// A session for still images: no tracking, selection per picture.
    pub fn still(plan: SourcePlan, engine: &EngineSettings) -> Self {
        Self {
            plan,
            mode: engine.selector,
            similarity: engine.similarity,
            tracking: None,
            person_of_track: HashMap::new(),
            detect_every: 1,
            // Never ran: due on the first frame.
            since_full: u32::MAX,
            lost: false,
            hints: Vec::new(),
            windows: Vec::new(),
        }
    }

    /// Runs the full detector every `n` frames only (live streams; see
    /// [`FrameSession::find_faces`]); 0 and 1 mean every frame.
    #[must_use]
    pub fn with_detect_every(mut self, n: u32) -> Self {
        self.set_detect_every(n);
        self
    }

    /// Changes how often the full detector runs (see [`FrameSession::with_detect_every`]).
    pub fn set_detect_every(&mut self, n: u32) {
        self.detect_every = n.max(1);
    }

    /// Whether this frame should get the full detector: always for still
    /// pictures and when it runs on every frame; else when `detect_every`
    /// frames have passed since it last ran, a tracked face was lost, or no
    /// face is being followed.
    pub fn full_detection_due(&self) -> bool {
        self.tracking.is_none()
            || self.detect_every <= 1
            || self.lost
            || self.since_full >= self.detect_every
            || !self.following()
    }

    /// Notes that the full detector runs on this frame (here, or elsewhere
    /// with its faces handed back through [`FrameSession::detected`]).
    pub fn full_detection_started(&mut self) {
        self.since_full = 0;
        self.lost = false;
    }

    /// Whether faces are being followed (tracked, or handed in by
    /// [`FrameSession::detected`] and not looked for yet).
    pub fn following(&self) -> bool {
        !self.hints.is_empty() || self.tracking.as_ref().is_some_and(|(t, _)| !t.is_empty())
    }

    /// Faces the full detector found on a recent frame, run elsewhere (a
    /// live loop's detector thread): the next [`FrameSession::find_near`]
    /// looks for each of them near where it was.
    pub fn detected(&mut self, faces: &[Face]) {
        self.hints.extend(faces.iter().map(|f| f.bbox));
    }

    /// The faces of this frame for [`FrameSession::targets`]: each tracked
    /// face found again in its neighbourhood ([`FrameSession::find_near`]),
    /// and, when [`FrameSession::full_detection_due`], every face the full
    /// detector finds, measured in its neighbourhood too (one way of
    /// measuring a face, so it does not jump when the full detector runs).
    /// Runs the full detector alone when it runs on every frame.
    pub fn find_faces(&mut self, engine: &SwapEngine, frame: &Frame) -> Result<Vec<Face>> {
        if self.tracking.is_none() || self.detect_every <= 1 {
            return engine.analyse(frame);
        }
        if self.full_detection_due() {
            self.detect_whole(engine, frame)?;
        }
        self.find_near(engine, frame)
    }

    /// Runs the full detector on `frame` here and now; the next
    /// [`FrameSession::find_near`] measures each face it found.
    pub fn detect_whole(&mut self, engine: &SwapEngine, frame: &Frame) -> Result<()> {
        self.full_detection_started();
        let found = engine.analyser().detector().detect(frame)?;
        self.detected(&found);
        Ok(())
    }

    /// Each tracked face (and each face handed in by
    /// [`FrameSession::detected`]) found again near where it is expected,
    /// a fraction of the full detector's cost. A tracked face not found
    /// makes the full detector due. Still pictures get the full detector.
    pub fn find_near(&mut self, engine: &SwapEngine, frame: &Frame) -> Result<Vec<Face>> {
        self.since_full = self.since_full.saturating_add(1);
        let Some((tracker, _)) = &self.tracking else {
            return engine.analyse(frame);
        };
        let expected = tracker.predicted_boxes();
        let searches: Vec<([f32; 4], [f32; 4])> = expected
            .iter()
            .chain(&self.hints)
            .map(|b| (crate::analysis::near_window(b, &self.windows), *b))
            .collect();
        self.hints.clear();
        self.windows = searches.iter().map(|(w, _)| *w).collect();
        if searches.is_empty() {
            return Ok(Vec::new());
        }
        let faces = engine.analyse_near(frame, &searches)?;
        if expected.iter().any(|b| {
            !faces
                .iter()
                .any(|f| iou(b, &f.bbox, false) >= crate::analysis::NEAR_MIN_IOU)
        }) {
            self.lost = true;
        }
        Ok(faces)
    }

    /// A session for a stream at `fps`: IoU tracks with smoothing, selection
    /// and face-map person decided once per track.
    pub fn tracked(plan: SourcePlan, engine: &EngineSettings, fps: f64) -> Self {
        let tracker = Tracker::new(TrackerConfig {
            fps: fps as f32,
            ..TrackerConfig::default()
        });
        Self {
            tracking: Some((
                tracker,
                TrackSelector::new(engine.selector, engine.similarity),
            )),
            ..Self::still(plan, engine)
        }
    }

    /// What the engine's analysis must add for this session (face maps need
    /// identity embeddings): pass to [`SwapEngine::load_with`].
    pub fn needs(&self) -> Needs {
        Needs {
            embedding: matches!(self.plan, SourcePlan::Mapped { .. })
                || self.mode == SelectMode::Reference,
            landmarks_106: false,
        }
    }

    /// The source plan.
    pub fn plan(&self) -> &SourcePlan {
        &self.plan
    }

    /// Replaces the source face(s), from the next frame on (tracks are kept).
    pub fn set_plan(&mut self, plan: SourcePlan) {
        self.plan = plan;
        self.person_of_track.clear();
    }

    /// Applies changed selection settings; per-track decisions start over.
    pub fn set_selection(&mut self, engine: &EngineSettings) {
        if engine.selector != self.mode || engine.similarity != self.similarity {
            self.mode = engine.selector;
            self.similarity = engine.similarity;
            if let Some((_, sel)) = &mut self.tracking {
                *sel = TrackSelector::new(engine.selector, engine.similarity);
            }
        }
    }

    /// The faces to swap in this frame, each with its source index, from the
    /// frame's analysed faces (in frame order for tracked sessions).
    pub fn targets(&mut self, faces: Vec<Face>) -> Result<Vec<(Face, usize)>> {
        let Some((tracker, selector)) = &mut self.tracking else {
            return match &self.plan {
                SourcePlan::One { reference, .. } => {
                    Ok(
                        select(&faces, self.mode, reference.as_deref(), self.similarity)?
                            .into_iter()
                            .map(|i| (faces[i].clone(), 0))
                            .collect(),
                    )
                }
                SourcePlan::Mapped { map, .. } => Ok(faces
                    .iter()
                    .filter_map(|f| Some((f.clone(), map.person_for(f.embedding.as_deref()?)?)))
                    .collect()),
            };
        };
        let tracked = tracker.update(faces);
        Ok(match &self.plan {
            SourcePlan::One { reference, .. } => selector
                .select(&tracked, reference.as_deref())
                .into_iter()
                .map(|k| (tracked[k].face.clone(), 0))
                .collect(),
            SourcePlan::Mapped { map, .. } => tracked
                .iter()
                .filter_map(|t| {
                    // Decided once per track, from its first face with an embedding.
                    let person = if let Some(p) = self.person_of_track.get(&t.id) {
                        *p
                    } else {
                        let p = map.person_for(t.face.embedding.as_deref()?);
                        self.person_of_track.insert(t.id, p);
                        p
                    };
                    person.map(|p| (t.face.clone(), p))
                })
                .collect(),
        })
    }

    /// Keeps the tracks going on a frame that is not swapped (live mode
    /// while the gate holds), so tracks continue when swapping resumes.
    pub fn observe(&mut self, faces: Vec<Face>) {
        if let Some((tracker, _)) = &mut self.tracking {
            tracker.update(faces);
        }
    }

    /// Runs the chain on chosen targets (from [`FrameSession::targets`]).
    pub fn swap(
        &self,
        engine: &SwapEngine,
        frame: &mut Frame,
        targets: &[(Face, usize)],
    ) -> Result<usize> {
        let refs: Vec<(&Face, &PreparedSource)> = targets
            .iter()
            .filter_map(|(f, i)| Some((f, self.plan.source(*i)?)))
            .collect();
        engine.swap_faces(frame, &refs)?;
        Ok(refs.len())
    }

    /// One picture, gated: the gate sees the whole picture, then the region
    /// around every face about to be swapped (near native scale); then
    /// analyse → select → swap in place. `what` names the picture in errors.
    /// No face in the picture is [`crate::Error::NoFace`].
    pub fn swap_picture(
        &mut self,
        engine: &SwapEngine,
        frame: &mut Frame,
        what: &str,
    ) -> Result<SwapReport> {
        let gate = engine.safety_gate();
        gate.ensure_safe_image(frame, &[], what)?;
        let faces = engine.analyse(frame)?;
        let faces_found = faces.len();
        let targets = self.targets(faces)?;
        let boxes: Vec<[f32; 4]> = targets.iter().map(|(f, _)| f.bbox).collect();
        gate.ensure_safe_regions(frame, &boxes, what)?;
        if faces_found == 0 {
            return Err(crate::Error::NoFace { what: what.into() });
        }
        let faces_swapped = self.swap(engine, frame, &targets)?;
        Ok(SwapReport {
            faces_found,
            faces_swapped,
            swapper: engine.swapper_name(),
            processors: engine.processors(),
        })
    }

    /// Analyse → track → select → swap, in place. The caller has applied
    /// its safety policy to `frame`.
    pub fn process(&mut self, engine: &SwapEngine, frame: &mut Frame) -> Result<SwapReport> {
        let faces = engine.analyse(frame)?;
        let found = faces.len();
        let targets = self.targets(faces)?;
        let swapped = self.swap(engine, frame, &targets)?;
        Ok(SwapReport {
            faces_found: found,
            faces_swapped: swapped,
            swapper: engine.swapper_name(),
            processors: engine.processors(),
        })
    }
}

/// A stream whose frames are handed in one at a time by the caller (a
/// Python loop, a desktop preview): a tracked [`FrameSession`] and the
/// live safety schedule, run synchronously. The gate checks the frame and
/// the context crops of the faces about to be swapped whenever the last
/// check is older than the policy's live interval (or none passed yet);
/// a frame is swapped only under a passing check at most the policy's
/// staleness old, and an unsafe check holds swapping for the cool-down.
#[derive(Debug)]
pub struct CheckedStream {
    session: FrameSession,
    policy: crate::safety::SafetyPolicy,
    clearance: crate::safety::LiveClearance,
    last_check: Option<std::time::Instant>,
}

/// What [`CheckedStream::process`] did with one frame (no allocation: it
/// is returned for every frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamStep {
    /// Faces found.
    pub faces_found: usize,
    /// Faces swapped.
    pub faces_swapped: usize,
    /// Whether the gate checked this frame.
    pub checked: bool,
    /// Whether the frame went out unswapped because the gate held swapping.
    pub held: bool,
}

impl CheckedStream {
    /// A stream at `fps` with the default safety policy; the full detector
    /// runs every `live.detect_every` frames of `settings`.
    pub fn new(plan: SourcePlan, settings: &crate::settings::Settings, fps: f64) -> Self {
        let policy = crate::safety::SafetyPolicy::default();
        Self {
            session: FrameSession::tracked(plan, &settings.engine, fps)
                .with_detect_every(settings.live.detect_every),
            clearance: policy.live_clearance(),
            policy,
            last_check: None,
        }
    }

    /// The per-frame session (to change the plan or the selection).
    pub fn session_mut(&mut self) -> &mut FrameSession {
        &mut self.session
    }

    /// Checks run so far and how many times the gate tripped.
    pub fn checks(&self) -> (u64, u64) {
        self.clearance.counts()
    }

    /// Processes one frame in place (see the type's docs).
    pub fn process(&mut self, engine: &SwapEngine, frame: &mut Frame) -> Result<StreamStep> {
        let now = std::time::Instant::now();
        let faces = self.session.find_faces(engine, frame)?;
        let faces_found = faces.len();
        let targets = self.session.targets(faces)?;
        let due = self
            .last_check
            .is_none_or(|t| now.saturating_duration_since(t) >= self.policy.live_interval);
        let checked = due || (!self.clearance.tripped() && !self.clearance.may_swap(now));
        if checked {
            let boxes: Vec<[f32; 4]> = targets.iter().map(|(f, _)| f.bbox).collect();
            let verdict = engine.safety_gate().check_frame(frame, &boxes)?;
            self.clearance
                .record(now, std::time::Instant::now(), verdict.safe);
            self.last_check = Some(now);
        }
        let held = !targets.is_empty() && !self.clearance.may_swap(now);
        let faces_swapped = if held {
            0
        } else {
            self.session.swap(engine, frame, &targets)?
        };
        Ok(StreamStep {
            faces_found,
            faces_swapped,
            checked,
            held,
        })
    }
}
