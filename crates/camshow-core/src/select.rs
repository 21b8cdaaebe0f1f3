//! Which target faces to swap.
//!
//! * `one` — the most prominent face: the largest box (ties: higher score).
//!   Deep-Live-Cam takes the left-most face instead, which picks a background
//!   face over the main subject.
//! * `many` — every face.
//! * `reference` — every face whose identity matches a reference face:
//!   cosine similarity above [`DEFAULT_SIMILARITY`] (FaceFusion's default
//!   distance 0.3, with distance = (1 − cos) / 2).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::analysis::cosine;
use crate::detect::Face;
use crate::error::{Error, Result};

/// Minimum cosine similarity for `reference` selection.
pub const DEFAULT_SIMILARITY: f32 = 0.4;

/// Face selection mode.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SelectMode {
    /// The most prominent face.
    #[default]
    One,
    /// All faces.
    Many,
    /// Faces matching a reference identity.
    Reference,
}

impl FromStr for SelectMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "one" => Ok(Self::One),
            "many" => Ok(Self::Many),
            "reference" => Ok(Self::Reference),
            _ => Err(Error::InvalidInput(format!(
                "unknown face selector {s:?} (one, many, reference)"
            ))),
        }
    }
}

/// Index of the most prominent face.
pub fn most_prominent(faces: &[Face]) -> Option<usize> {
    (0..faces.len()).max_by(|&a, &b| {
        faces[a]
            .area()
            .total_cmp(&faces[b].area())
            .then(faces[a].score.total_cmp(&faces[b].score))
    })
}

/// Indices of the faces to swap.
pub fn select(
    faces: &[Face],
    mode: SelectMode,
    reference: Option<&[f32]>,
    min_similarity: f32,
) -> Result<Vec<usize>> {
    Ok(match mode {
        SelectMode::One => most_prominent(faces).into_iter().collect(),
        SelectMode::Many => (0..faces.len()).collect(),
        SelectMode::Reference => {
            let r = reference.ok_or_else(|| {
                Error::InvalidInput("reference selection needs a reference face".into())
            })?;
            let mut v = Vec::new();
            for (i, f) in faces.iter().enumerate() {
                let e = f.embedding.as_deref().ok_or_else(|| {
                    Error::InvalidInput("reference selection needs face embeddings".into())
                })?;
                if cosine(e, r) > min_similarity {
                    v.push(i);
                }
            }
            v
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(b: [f32; 4], score: f32, emb: Option<Vec<f32>>) -> Face {
        Face {
            bbox: b,
            score,
            kps: [[0.0; 2]; 5],
            landmarks_106: None,
            embedding: emb,
        }
    }

    #[test]
    fn one_is_the_largest_not_the_leftmost() {
        let faces = [
            face([0.0, 0.0, 10.0, 10.0], 0.99, None),
            face([100.0, 0.0, 150.0, 60.0], 0.6, None),
        ];
        assert_eq!(select(&faces, SelectMode::One, None, 0.4).unwrap(), vec![1]);
        assert_eq!(
            select(&faces, SelectMode::Many, None, 0.4).unwrap(),
            vec![0, 1]
        );
        assert!(select(&[], SelectMode::One, None, 0.4).unwrap().is_empty());
    }

    #[test]
    fn reference_uses_the_threshold() {
        let faces = [
            face([0.0; 4], 0.9, Some(vec![1.0, 0.0])),
            face([0.0; 4], 0.9, Some(vec![0.6, 0.8])),
            face([0.0; 4], 0.9, Some(vec![0.0, 1.0])),
        ];
        assert_eq!(
            select(&faces, SelectMode::Reference, Some(&[1.0, 0.0]), 0.4).unwrap(),
            vec![0, 1]
        );
        assert!(select(&faces, SelectMode::Reference, None, 0.4).is_err());
        assert!(
            select(
                &[face([0.0; 4], 0.9, None)],
                SelectMode::Reference,
                Some(&[1.0, 0.0]),
                0.4
            )
            .is_err()
        );
    }
}
