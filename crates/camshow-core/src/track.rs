//! Face tracks across video frames: greedy IoU association, a One-Euro
//! filter on the box and five points so the swapped face does not jitter,
//! short detection gaps bridged by constant-velocity prediction, and target
//! selection decided once per track rather than re-decided every frame.
//!
//! Every frame still gets its own detection; the tracker only associates,
//! smooths and bridges (at most [`TrackerConfig::max_gap`] frames).
//!
//! ```
//! use camshow_core::track::{Tracker, TrackerConfig};
//! let mut t = Tracker::new(TrackerConfig { fps: 25.0, ..Default::default() });
//! let tracked = t.update(Vec::new());
//! assert!(tracked.is_empty());
//! ```

use std::collections::HashMap;

use crate::analysis::cosine;
use crate::detect::{Face, iou};
use crate::select::SelectMode;

/// One-Euro filter (Casiez et al. 2012) for one coordinate.
#[derive(Debug, Clone, Copy)]
pub struct OneEuro {
    min_cutoff: f32,
    beta: f32,
    d_cutoff: f32,
    x: Option<f32>,
    dx: f32,
}

fn alpha(cutoff: f32, dt: f32) -> f32 {
    let tau = 1.0 / (2.0 * std::f32::consts::PI * cutoff);
    1.0 / (1.0 + tau / dt)
}

impl OneEuro {
    /// A filter with the given minimum cutoff (Hz), speed coefficient and derivative cutoff.
    pub fn new(min_cutoff: f32, beta: f32, d_cutoff: f32) -> Self {
        Self {
            min_cutoff,
            beta,
            d_cutoff,
            x: None,
            dx: 0.0,
        }
    }

    /// Filters `value` observed `dt` seconds after the previous one.
    pub fn filter(&mut self, value: f32, dt: f32) -> f32 {
        let Some(prev) = self.x else {
            self.x = Some(value);
            return value;
        };
        let dt = dt.max(1e-4);
        let dx = (value - prev) / dt;
        self.dx += alpha(self.d_cutoff, dt) * (dx - self.dx);
        let cutoff = self.min_cutoff + self.beta * self.dx.abs();
        let x = prev + alpha(cutoff, dt) * (value - prev);
        self.x = Some(x);
        x
    }
}

/// Tracker settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerConfig {
    /// Frame rate of the stream (seconds between frames = 1 / fps).
    pub fps: f32,
    /// Minimum IoU for a detection to continue a track.
    pub min_iou: f32,
    /// Frames a track survives without a detection (bridged by prediction).
    pub max_gap: u32,
    /// One-Euro minimum cutoff in Hz (lower = smoother when still).
    pub min_cutoff: f32,
    /// One-Euro speed coefficient (higher = less lag when moving).
    pub beta: f32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            fps: 30.0,
            min_iou: 0.3,
            max_gap: 3,
            min_cutoff: 1.5,
            beta: 0.05,
        }
    }
}

/// A face with the track it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    /// Stable track id.
    pub id: u64,
    /// Smoothed (or, when `predicted`, extrapolated) face.
    pub face: Face,
    /// True when the detector missed this face in this frame.
    pub predicted: bool,
}

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    filters: Vec<OneEuro>,
    /// One filter per 106-landmark coordinate, created when a face has them.
    lm_filters: Vec<OneEuro>,
    last: Face,
    velocity: [f32; 14],
    missed: u32,
}

fn coords(f: &Face) -> [f32; 14] {
    let mut c = [0f32; 14];
    c[..4].copy_from_slice(&f.bbox);
    for (i, p) in f.kps.iter().enumerate() {
        c[4 + 2 * i] = p[0];
        c[5 + 2 * i] = p[1];
    }
    c
}

fn with_coords(mut f: Face, c: &[f32; 14]) -> Face {
    f.bbox.copy_from_slice(&c[..4]);
    for i in 0..5 {
        f.kps[i] = [c[4 + 2 * i], c[5 + 2 * i]];
    }
    f
}

/// The tracker.
#[derive(Debug, Clone)]
pub struct Tracker {
    cfg: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    /// A tracker with no tracks.
    pub fn new(cfg: TrackerConfig) -> Self {
        Self {
            cfg,
            tracks: Vec::new(),
            next_id: 1,
        }
    }

    /// Whether no face is being tracked.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Where each track's face is expected in the next frame (its last box
    /// moved on by its velocity), to look for it there.
    pub fn predicted_boxes(&self) -> Vec<[f32; 4]> {
        self.tracks
            .iter()
            .map(|t| {
                let steps = (t.missed + 1) as f32;
                std::array::from_fn(|k| t.last.bbox[k] + t.velocity[k] * steps)
            })
            .collect()
    }

    /// Associates this frame's detections with the tracks and returns the
    /// smoothed faces, plus predictions for tracks missed within the gap.
    pub fn update(&mut self, faces: Vec<Face>) -> Vec<Tracked> {
        let dt = 1.0 / self.cfg.fps.max(1.0);
        // Greedy association by IoU, best pairs first.
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate() {
            let predicted = with_coords(
                t.last.clone(),
                &std::array::from_fn(|k| coords(&t.last)[k] + t.velocity[k]),
            );
            for (fi, f) in faces.iter().enumerate() {
                let o = iou(&predicted.bbox, &f.bbox, false);
                if o >= self.cfg.min_iou {
                    pairs.push((o, ti, fi));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_face: Vec<Option<usize>> = vec![None; self.tracks.len()];
        let mut face_taken = vec![false; faces.len()];
        for (_, ti, fi) in pairs {
            if track_face[ti].is_none() && !face_taken[fi] {
                track_face[ti] = Some(fi);
                face_taken[fi] = true;
            }
        }
        let mut out = Vec::new();
        let mut keep = Vec::new();
        for (ti, mut t) in std::mem::take(&mut self.tracks).into_iter().enumerate() {
            match track_face[ti] {
                Some(fi) => {
                    let raw = coords(&faces[fi]);
                    let before = coords(&t.last);
                    let steps = (t.missed + 1) as f32;
                    let smoothed: [f32; 14] =
                        std::array::from_fn(|k| t.filters[k].filter(raw[k], dt * steps));
                    t.velocity = std::array::from_fn(|k| (smoothed[k] - before[k]) / steps);
                    let mut face = faces[fi].clone();
                    face = with_coords(face, &smoothed);
                    if let Some(lm) = face.landmarks_106.as_mut() {
                        if t.lm_filters.len() != lm.len() * 2 {
                            t.lm_filters =
                                vec![
                                    OneEuro::new(self.cfg.min_cutoff, self.cfg.beta, 1.0);
                                    lm.len() * 2
                                ];
                        }
                        for (k, p) in lm.iter_mut().enumerate() {
                            p[0] = t.lm_filters[2 * k].filter(p[0], dt * steps);
                            p[1] = t.lm_filters[2 * k + 1].filter(p[1], dt * steps);
                        }
                    }
                    t.last = face.clone();
                    t.missed = 0;
                    out.push(Tracked {
                        id: t.id,
                        face,
                        predicted: false,
                    });
                    keep.push(t);
                }
                None if t.missed < self.cfg.max_gap => {
                    t.missed += 1;
                    let c = coords(&t.last);
                    let p: [f32; 14] =
                        std::array::from_fn(|k| c[k] + t.velocity[k] * t.missed as f32);
                    let mut face = with_coords(t.last.clone(), &p);
                    // Landmarks move with the box centre.
                    let (dx, dy) = (
                        (p[0] + p[2] - c[0] - c[2]) * 0.5,
                        (p[1] + p[3] - c[1] - c[3]) * 0.5,
                    );
                    if let Some(lm) = face.landmarks_106.as_mut() {
                        for q in lm.iter_mut() {
                            q[0] += dx;
                            q[1] += dy;
                        }
                    }
                    out.push(Tracked {
                        id: t.id,
                        face,
                        predicted: true,
                    });
                    keep.push(t);
                }
                None => {}
            }
        }
        for (fi, f) in faces.into_iter().enumerate() {
            if face_taken[fi] {
                continue;
            }
            let mut filters = vec![OneEuro::new(self.cfg.min_cutoff, self.cfg.beta, 1.0); 14];
            let c = coords(&f);
            for (k, fl) in filters.iter_mut().enumerate() {
                fl.filter(c[k], dt);
            }
            let mut lm_filters = Vec::new();
            if let Some(lm) = &f.landmarks_106 {
                lm_filters =
                    vec![OneEuro::new(self.cfg.min_cutoff, self.cfg.beta, 1.0); lm.len() * 2];
                for (k, p) in lm.iter().enumerate() {
                    lm_filters[2 * k].filter(p[0], dt);
                    lm_filters[2 * k + 1].filter(p[1], dt);
                }
            }
            let id = self.next_id;
            self.next_id += 1;
            out.push(Tracked {
                id,
                face: f.clone(),
                predicted: false,
            });
            keep.push(Track {
                id,
                filters,
                lm_filters,
                last: f,
                velocity: [0.0; 14],
                missed: 0,
            });
        }
        self.tracks = keep;
        out
    }
}

/// Decides once per track which tracks are swapped.
#[derive(Debug, Clone)]
pub struct TrackSelector {
    mode: SelectMode,
    similarity: f32,
    decided: HashMap<u64, bool>,
    one: Option<u64>,
}

impl TrackSelector {
    /// A selector for `mode` (reference: minimum cosine `similarity`).
    pub fn new(mode: SelectMode, similarity: f32) -> Self {
        Self {
            mode,
            similarity,
            decided: HashMap::new(),
            one: None,
        }
    }

    /// Indices into `tracked` to swap in this frame.
    pub fn select(&mut self, tracked: &[Tracked], reference: Option<&[f32]>) -> Vec<usize> {
        match self.mode {
            SelectMode::Many => (0..tracked.len()).collect(),
            SelectMode::One => {
                let alive = self
                    .one
                    .and_then(|id| tracked.iter().position(|t| t.id == id));
                let i = alive.or_else(|| {
                    (0..tracked.len())
                        .filter(|&i| !tracked[i].predicted)
                        .max_by(|&a, &b| tracked[a].face.area().total_cmp(&tracked[b].face.area()))
                });
                self.one = i.map(|i| tracked[i].id);
                i.into_iter().collect()
            }
            SelectMode::Reference => {
                let mut v = Vec::new();
                for (i, t) in tracked.iter().enumerate() {
                    let decision = if let Some(d) = self.decided.get(&t.id) {
                        *d
                    } else {
                        let Some(e) = t.face.embedding.as_deref() else {
                            continue;
                        };
                        let d = reference.is_some_and(|r| cosine(e, r) > self.similarity);
                        self.decided.insert(t.id, d);
                        d
                    };
                    if decision {
                        v.push(i);
                    }
                }
                v
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, y: f32, s: f32) -> Face {
        Face {
            bbox: [x, y, x + s, y + s],
            score: 0.9,
            kps: [
                [x + 0.3 * s, y + 0.4 * s],
                [x + 0.7 * s, y + 0.4 * s],
                [x + 0.5 * s, y + 0.55 * s],
                [x + 0.35 * s, y + 0.75 * s],
                [x + 0.65 * s, y + 0.75 * s],
            ],
            landmarks_106: None,
            embedding: None,
        }
    }

    #[test]
    fn ids_are_stable_and_new_faces_get_new_ids() {
        let mut t = Tracker::new(TrackerConfig::default());
        let a = t.update(vec![face(10.0, 10.0, 100.0), face(300.0, 10.0, 100.0)]);
        let b = t.update(vec![face(305.0, 12.0, 100.0), face(12.0, 11.0, 100.0)]);
        let id_at = |v: &[Tracked], x: f32| {
            v.iter()
                .find(|t| (t.face.bbox[0] - x).abs() < 20.0)
                .unwrap()
                .id
        };
        assert_eq!(id_at(&a, 10.0), id_at(&b, 10.0));
        assert_eq!(id_at(&a, 300.0), id_at(&b, 300.0));
        let c = t.update(vec![face(600.0, 10.0, 80.0)]);
        assert!(c.iter().any(|x| x.id == 3 && !x.predicted));
        assert_eq!(c.iter().filter(|x| x.predicted).count(), 2);
    }

    #[test]
    fn jitter_is_smoothed() {
        let mut t = Tracker::new(TrackerConfig::default());
        let mut raw_var = 0f32;
        let mut out_var = 0f32;
        let mut seed = 3u32;
        for _ in 0..60 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let noise = ((seed >> 16) % 7) as f32 - 3.0;
            let tr = t.update(vec![face(100.0 + noise, 100.0, 120.0)]);
            raw_var += noise * noise;
            out_var += (tr[0].face.bbox[0] - 100.0).powi(2);
        }
        assert!(
            out_var < raw_var * 0.3,
            "smoothed {out_var} vs raw {raw_var}"
        );
    }

    #[test]
    fn landmarks_106_are_smoothed_per_track() {
        let mut t = Tracker::new(TrackerConfig::default());
        let (mut raw_var, mut out_var) = (0f32, 0f32);
        let mut seed = 11u32;
        for _ in 0..60 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let noise = ((seed >> 16) % 5) as f32 - 2.0;
            let mut f = face(100.0, 100.0, 120.0);
            f.landmarks_106 = Some(
                (0..106)
                    .map(|i| [150.0 + i as f32 * 0.1 + noise, 170.0 - noise])
                    .collect(),
            );
            let tr = t.update(vec![f]);
            let lm = tr[0].face.landmarks_106.as_ref().unwrap();
            assert_eq!(lm.len(), 106);
            raw_var += noise * noise;
            out_var += (lm[57][0] - 155.7).powi(2);
        }
        assert!(
            out_var < raw_var * 0.3,
            "smoothed {out_var} vs raw {raw_var}"
        );
    }

    #[test]
    fn gaps_are_bridged_then_tracks_end() {
        let mut t = Tracker::new(TrackerConfig {
            max_gap: 2,
            ..Default::default()
        });
        for i in 0..5 {
            t.update(vec![face(100.0 + 4.0 * i as f32, 50.0, 100.0)]);
        }
        let g1 = t.update(vec![]);
        assert_eq!(g1.len(), 1);
        assert!(
            g1[0].predicted && g1[0].face.bbox[0] > 114.0,
            "{:?}",
            g1[0].face.bbox
        );
        assert_eq!(t.update(vec![]).len(), 1);
        assert!(t.update(vec![]).is_empty());
        // Coming back after the gap continues the same id when within the gap.
        let mut t = Tracker::new(TrackerConfig {
            max_gap: 2,
            ..Default::default()
        });
        let id = t.update(vec![face(100.0, 50.0, 100.0)])[0].id;
        t.update(vec![]);
        assert_eq!(t.update(vec![face(101.0, 50.0, 100.0)])[0].id, id);
    }

    #[test]
    fn selection_is_decided_per_track() {
        let mut sel = TrackSelector::new(SelectMode::One, 0.4);
        let mk = |id, x: f32, s: f32| Tracked {
            id,
            face: face(x, 0.0, s),
            predicted: false,
        };
        assert_eq!(
            sel.select(&[mk(1, 0.0, 100.0), mk(2, 200.0, 50.0)], None),
            vec![0]
        );
        // Track 2 grows larger, but the chosen person stays chosen while their track lives.
        assert_eq!(
            sel.select(&[mk(1, 0.0, 100.0), mk(2, 200.0, 150.0)], None),
            vec![0]
        );
        assert_eq!(sel.select(&[mk(2, 200.0, 150.0)], None), vec![0]);
        let mut r = TrackSelector::new(SelectMode::Reference, 0.4);
        let mut a = mk(7, 0.0, 100.0);
        a.face.embedding = Some(vec![1.0, 0.0]);
        let mut b = mk(8, 200.0, 100.0);
        b.face.embedding = Some(vec![0.0, 1.0]);
        assert_eq!(
            r.select(&[a.clone(), b.clone()], Some(&[1.0, 0.0])),
            vec![0]
        );
        // Later frames of track 7 keep the decision even if its embedding drifts.
        a.face.embedding = Some(vec![0.0, 1.0]);
        assert_eq!(r.select(&[a, b], Some(&[1.0, 0.0])), vec![0]);
    }
}
