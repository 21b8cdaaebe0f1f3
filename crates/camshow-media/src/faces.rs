//! Finding the people in an image or video: [`scan`] groups the faces of a
//! target (an image, or a video sampled once a second) into people and
//! writes a [`FaceMap`] with a thumbnail per person, for `swap --map`.
//! Every sampled frame passes the content-safety gate under the video rule
//! of [`camshow_core::safety::SafetyPolicy`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use camshow_core::Frame;
use camshow_core::analysis::Needs;
use camshow_core::context::EngineContext;
use camshow_core::detect::DetectorKind;
use camshow_core::mapping::FaceMap;
use camshow_core::safety::{SafetyPolicy, UNSAFE_THRESHOLD};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::image_io::{read_image, write_atomic, write_image};
use crate::swap_job::{MediaKind, media_kind};
use crate::video::{Decoder, Trim, probe};

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanOutcome {
    /// The map written.
    pub map: FaceMap,
    /// Faces found over all sampled frames.
    pub faces: usize,
    /// Frames sampled.
    pub frames: usize,
    /// Where the thumbnails are (the map's folder).
    pub folder: PathBuf,
}

/// Scans `target` and writes the map to `output` (thumbnails beside it).
pub fn scan(
    ctx: &EngineContext,
    detector: DetectorKind,
    target: &Path,
    output: &Path,
    cluster_distance: f32,
    cancel: &AtomicBool,
) -> Result<ScanOutcome> {
    camshow_core::atomic::ensure_not_input(output, &[("target", target)])?;
    let gate = ctx.gate()?;
    let needs = Needs {
        embedding: true,
        landmarks_106: false,
    };
    let analyser = ctx.analyser(detector, needs)?;
    // (frame index, frame) samples: the image itself, or one frame a second.
    let mut frames: Vec<(u64, Frame)> = Vec::new();
    if media_kind(target)? == MediaKind::Video {
        let info = probe(target)?;
        let mut dec = Decoder::open_samples(target, &info, Trim::default())?;
        let mut i = 0;
        while let Some(f) = dec.next_frame()? {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            frames.push((i, f));
            i += 1;
        }
    } else {
        frames.push((0, read_image(target)?));
    }
    let still = frames.len() == 1 && media_kind(target)? == MediaKind::Image;
    let (mut bad, mut worst) = (0u64, 0f32);
    let mut labels = std::collections::BTreeSet::new();
    for (_, f) in &frames {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        // A still picture also gets its tiles checked, as every image does.
        let v = if still {
            gate.check_image(f, &[])?
        } else {
            gate.check(f)?
        };
        if !v.safe {
            bad += 1;
            worst = worst.max(v.max_unsafe_score);
            labels.extend(camshow_core::safety::unsafe_labels(&v));
        }
    }
    let n = frames.len();
    if SafetyPolicy::default().video_refused(n as u64, bad) {
        return Err(camshow_core::Error::Unsafe {
            what: format!("{} ({bad} of {n} sampled frames)", target.display()),
            labels: labels.into_iter().collect::<Vec<_>>().join(", "),
            score: worst,
            threshold: UNSAFE_THRESHOLD,
        }
        .into());
    }
    let mut found: Vec<(u64, [f32; 4], Vec<f32>)> = Vec::new();
    let mut crops: Vec<Frame> = Vec::new();
    for (i, f) in &frames {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        for face in analyser.analyse(f, needs)? {
            let Some(e) = face.embedding.clone() else {
                continue;
            };
            crops.push(thumbnail(f, face.bbox));
            found.push((*i, face.bbox, e));
        }
    }
    if found.is_empty() {
        return Err(camshow_core::Error::NoFace {
            what: format!("target {}", target.display()),
        }
        .into());
    }
    let folder = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = output
        .file_stem()
        .map_or_else(|| "map".into(), |s| s.to_string_lossy().into_owned());
    let mut representative = Vec::new();
    let map = FaceMap::from_faces(
        target.to_path_buf(),
        cluster_distance,
        &found,
        |person, face| {
            representative.push((person, face));
            PathBuf::from(format!("{stem}-person-{person}.png"))
        },
    );
    for (person, face) in representative {
        let p = folder.join(&map.people[person].thumbnail);
        write_image(
            &p,
            &crops[face],
            (
                crate::provenance::Operation::FaceThumbnail,
                "a person in a face map",
            ),
        )?;
    }
    let json = serde_json::to_string_pretty(&map).map_err(|e| Error::Internal(e.to_string()))?;
    write_atomic(output, json.as_bytes())?;
    Ok(ScanOutcome {
        map,
        faces: found.len(),
        frames: n,
        folder,
    })
}

/// A face's thumbnail: its box grown by a quarter of its size on each side.
pub fn thumbnail(frame: &Frame, bbox: [f32; 4]) -> Frame {
    let [x1, y1, x2, y2] = bbox;
    let (w, h) = (x2 - x1, y2 - y1);
    frame.crop(
        (x1 - 0.25 * w) as i64,
        (y1 - 0.25 * h) as i64,
        (1.5 * w) as i64,
        (1.5 * h) as i64,
    )
}

/// A face found in a source photo.
#[derive(Debug, Clone)]
pub struct SourceFace {
    /// Which photo (index into the photos given).
    pub photo: usize,
    /// The face.
    pub face: camshow_core::detect::Face,
    /// Its thumbnail.
    pub thumbnail: Frame,
}

/// Prepares the identity in `photos` (each passes the safety gate; a photo
/// without a face is an error) and lists every face found in them, with
/// thumbnails — what a front end shows after an upload.
pub fn analyse_sources(
    engine: &camshow_core::pipeline::SwapEngine,
    photos: &[PathBuf],
) -> Result<(camshow_core::swap::PreparedSource, Vec<SourceFace>)> {
    analyse_sources_picked(engine, photos, None)
}

/// [`analyse_sources`] with the face the user chose (`pick`) as the source.
pub fn analyse_sources_picked(
    engine: &camshow_core::pipeline::SwapEngine,
    photos: &[PathBuf],
    pick: Option<camshow_core::pipeline::SourcePick>,
) -> Result<(camshow_core::swap::PreparedSource, Vec<SourceFace>)> {
    let source = crate::swap_job::prepare_source_picked(engine, photos, pick)?;
    let mut faces = Vec::new();
    for (i, p) in photos.iter().enumerate() {
        let frame = read_image(p)?;
        for face in engine.analyse(&frame)? {
            faces.push(SourceFace {
                photo: i,
                thumbnail: thumbnail(&frame, face.bbox),
                face,
            });
        }
    }
    Ok((source, faces))
}
