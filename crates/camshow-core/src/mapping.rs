//! Face mapping: who is in a target, and which source face each person gets.
//!
//! Target faces are clustered by identity with average-linkage agglomerative
//! clustering on cosine distance, stopping at a distance threshold, so the
//! number of people is found rather than guessed (Deep-Live-Cam's k-means
//! "elbow" almost always answers two). The result is a [`FaceMap`] the user
//! completes with a source image per person.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::analysis::{cosine, recognizer_normalize};
use crate::error::{Error, Result};

/// Default: faces closer than this cosine distance (1 − cos) are one person.
/// ArcFace embeddings of one person are typically above 0.4 similarity.
pub const DEFAULT_CLUSTER_DISTANCE: f32 = 0.6;

/// Average-linkage agglomerative clustering on cosine distance. Returns a
/// cluster index per embedding (clusters numbered by first appearance).
pub fn cluster(embeddings: &[Vec<f32>], max_distance: f32) -> Vec<usize> {
    let n = embeddings.len();
    let mut members: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    let dist: Vec<Vec<f32>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| 1.0 - cosine(&embeddings[i], &embeddings[j]))
                .collect()
        })
        .collect();
    loop {
        let mut best: Option<(f32, usize, usize)> = None;
        for a in 0..members.len() {
            for b in a + 1..members.len() {
                let mut sum = 0f32;
                for &i in &members[a] {
                    for &j in &members[b] {
                        sum += dist[i][j];
                    }
                }
                let d = sum / (members[a].len() * members[b].len()) as f32;
                if best.is_none_or(|(bd, _, _)| d < bd) {
                    best = Some((d, a, b));
                }
            }
        }
        match best {
            Some((d, a, b)) if d <= max_distance => {
                let moved = members.remove(b);
                members[a].extend(moved);
            }
            _ => break,
        }
    }
    members.sort_by_key(|m| m.iter().copied().min().unwrap_or(usize::MAX));
    let mut label = vec![0; n];
    for (c, m) in members.iter().enumerate() {
        for &i in m {
            label[i] = c;
        }
    }
    label
}

/// One person found in the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    /// Cluster id.
    pub id: usize,
    /// A cropped example face (PNG) written next to the map.
    pub thumbnail: PathBuf,
    /// Frame indices (of the scanned frames) where the person was seen.
    pub frames_seen: Vec<u64>,
    /// Where the person was first seen: `[x1, y1, x2, y2]` in that frame (sampled frames may be scaled).
    pub first_box: [f32; 4],
    /// Mean normalised identity embedding.
    pub embedding: Vec<f32>,
    /// The source image to put on this person; `null` leaves them untouched.
    pub source: Option<PathBuf>,
}

fn lossy_path<S: serde::Serializer>(
    p: &std::path::Path,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

/// The mapping file written by `camshow faces scan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceMap {
    /// The scanned target (informational; written as text, lossily when
    /// its name is not UTF-8, which JSON cannot hold).
    #[serde(serialize_with = "lossy_path")]
    pub target: PathBuf,
    /// Cosine distance used to group faces; also the largest distance at
    /// which a face is recognised as a mapped person when swapping.
    pub max_distance: f32,
    /// The people.
    pub people: Vec<Person>,
}

impl FaceMap {
    /// Builds the people from embeddings, their frame indices and thumbnails.
    pub fn from_faces(
        target: PathBuf,
        max_distance: f32,
        faces: &[(u64, [f32; 4], Vec<f32>)],
        mut thumbnail: impl FnMut(usize, usize) -> PathBuf,
    ) -> Self {
        let embs: Vec<Vec<f32>> = faces.iter().map(|(_, _, e)| e.clone()).collect();
        let labels = cluster(&embs, max_distance);
        let count = labels.iter().copied().max().map_or(0, |m| m + 1);
        let people = (0..count)
            .map(|c| {
                let idx: Vec<usize> = (0..faces.len()).filter(|&i| labels[i] == c).collect();
                let mut mean = vec![0f32; embs[idx[0]].len()];
                for &i in &idx {
                    for (m, v) in mean.iter_mut().zip(&embs[i]) {
                        *m += v;
                    }
                }
                let mut frames: Vec<u64> = idx.iter().map(|&i| faces[i].0).collect();
                frames.dedup();
                Person {
                    id: c,
                    thumbnail: thumbnail(c, idx[0]),
                    frames_seen: frames,
                    first_box: faces[idx[0]].1,
                    embedding: recognizer_normalize(mean),
                    source: None,
                }
            })
            .collect();
        Self {
            target,
            max_distance,
            people,
        }
    }

    /// Reads a map file.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io("cannot read", path))?;
        Self::from_json(&text, path)
    }

    /// Parses and checks a map's JSON text (`path` names it in errors).
    pub fn from_json(text: &str, path: &std::path::Path) -> Result<Self> {
        let map: Self = serde_json::from_str(text).map_err(|e| {
            Error::InvalidInput(format!("{} is not a face map: {e}", path.display()))
        })?;
        map.check()
            .map_err(|m| Error::InvalidInput(format!("{}: {m}", path.display())))?;
        Ok(map)
    }

    /// Checks what a hand-edited map may get wrong: every embedding has 512
    /// finite values, the distance is a number in 0–2.
    fn check(&self) -> std::result::Result<(), String> {
        if !(self.max_distance.is_finite() && (0.0..=2.0).contains(&self.max_distance)) {
            return Err(format!("max_distance {} is not in 0–2", self.max_distance));
        }
        for p in &self.people {
            if p.embedding.len() != 512 || p.embedding.iter().any(|v| !v.is_finite()) {
                return Err(format!(
                    "person {}: the embedding must be 512 finite numbers (has {})",
                    p.id,
                    p.embedding.len()
                ));
            }
        }
        Ok(())
    }

    /// The mapped person an embedding belongs to (closest mean, within the
    /// distance), if that person has a source.
    pub fn person_for(&self, embedding: &[f32]) -> Option<usize> {
        self.people
            .iter()
            .enumerate()
            .filter(|(_, p)| p.source.is_some())
            .map(|(i, p)| (i, 1.0 - cosine(embedding, &p.embedding)))
            .filter(|(_, d)| *d <= self.max_distance)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_edited_maps_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("map.json");
        let person = |e: Vec<f32>| Person {
            id: 0,
            thumbnail: "t.png".into(),
            frames_seen: vec![0],
            first_box: [0.0; 4],
            embedding: e,
            source: None,
        };
        let write = |m: &FaceMap| std::fs::write(&p, serde_json::to_string(m).unwrap()).unwrap();
        let good = FaceMap {
            target: "x.mp4".into(),
            max_distance: 0.6,
            people: vec![person(vec![0.1; 512])],
        };
        write(&good);
        assert_eq!(FaceMap::load(&p).unwrap(), good);
        write(&FaceMap {
            people: vec![person(vec![0.1; 3])],
            ..good.clone()
        });
        assert!(
            FaceMap::load(&p)
                .unwrap_err()
                .to_string()
                .contains("512 finite numbers")
        );
        write(&FaceMap {
            max_distance: 9.0,
            ..good.clone()
        });
        assert!(
            FaceMap::load(&p)
                .unwrap_err()
                .to_string()
                .contains("max_distance")
        );
        std::fs::write(
            &p,
            r#"{"target": "x", "max_distance": 0.5, "people": [{"id": 0}]}"#,
        )
        .unwrap();
        assert!(
            FaceMap::load(&p)
                .unwrap_err()
                .to_string()
                .contains("is not a face map")
        );
    }

    fn v(a: f32, b: f32, c: f32) -> Vec<f32> {
        recognizer_normalize(vec![a, b, c])
    }

    #[test]
    fn finds_the_real_number_of_people() {
        // Three people, several noisy views each; one person alone too.
        let e = vec![
            v(1.0, 0.1, 0.0),
            v(0.0, 1.0, 0.1),
            v(0.95, 0.15, 0.05),
            v(0.1, 0.0, 1.0),
            v(0.05, 0.97, 0.1),
            v(1.0, 0.0, 0.1),
        ];
        assert_eq!(cluster(&e, 0.3), vec![0, 1, 0, 2, 1, 0]);
        assert_eq!(cluster(&e[..1], 0.3), vec![0]);
        assert_eq!(cluster(&e, 2.0), vec![0; 6]);
        assert!(cluster(&[], 0.3).is_empty());
    }

    #[test]
    fn map_assigns_only_people_with_sources() {
        let faces = vec![
            (0, [0.0; 4], v(1.0, 0.0, 0.0)),
            (0, [1.0; 4], v(0.0, 1.0, 0.0)),
            (5, [2.0; 4], v(0.98, 0.1, 0.0)),
        ];
        let mut map = FaceMap::from_faces("t.mp4".into(), 0.3, &faces, |c, _| {
            format!("p{c}.png").into()
        });
        assert_eq!(map.people.len(), 2);
        assert_eq!(map.people[0].frames_seen, vec![0, 5]);
        assert_eq!(map.people[1].first_box, [1.0; 4]);
        assert_eq!(map.person_for(&v(1.0, 0.05, 0.0)), None, "no source yet");
        map.people[0].source = Some("a.png".into());
        assert_eq!(map.person_for(&v(1.0, 0.05, 0.0)), Some(0));
        assert_eq!(map.person_for(&v(0.0, 1.0, 0.0)), None);
        let json = serde_json::to_string(&map).unwrap();
        let back: FaceMap = serde_json::from_str(&json).unwrap();
        assert_eq!(back, map);
    }
}
