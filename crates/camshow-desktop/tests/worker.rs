//! The engine thread with real models, driven by the commands the window
//! sends (no window): every answer the window would get is checked.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::{Duration, Instant};

use camshow_core::settings::{Layered, NewValue, Settings};
use camshow_desktop::frames::FrameStore;
use camshow_desktop::state::{Action, Command, JobError, LiveRequest};
use camshow_desktop::worker::{Worker, keys};
use camshow_media::swap_job::MediaKind;
use camshow_test_utils::{
    astronaut_clip, exiftool, marked, mean_abs_diff, parity_model, sample, store,
};
use serde_json::json;

struct Rig {
    worker: Worker,
    rx: Receiver<Action>,
    frames: Arc<FrameStore>,
    dir: tempfile::TempDir,
}

impl Rig {
    fn new(settings: Settings, model_files: Vec<String>) -> Self {
        store();
        let dir = tempfile::tempdir().unwrap();
        let frames = Arc::new(FrameStore::default());
        // Far more room than a test's answers need: the engine never waits on it.
        let (tx, rx) = sync_channel(100_000);
        let tx = std::sync::Mutex::new(tx);
        let worker = Worker::spawn(
            settings,
            model_files,
            dir.path().join("camshow.toml"),
            dir.path().join("desktop.toml"),
            Arc::clone(&frames),
            Arc::new(move |a| {
                let _ = tx.lock().unwrap().send(a);
            }),
        );
        Self {
            worker,
            rx,
            frames,
            dir,
        }
    }

    /// The next answer that `want` accepts (others are skipped), within `secs`.
    fn wait<T>(&self, secs: u64, mut want: impl FnMut(Action) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let a = self
                .rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no answer within {secs} s"));
            if let Some(t) = want(a) {
                return t;
            }
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn source_and_target(&self, target: &Path) {
        self.worker.send(Command::PrepareSource {
            photos: vec![sample("astronaut.png")],
            pick: None,
        });
        let faces = self.wait(120, |a| match a {
            Action::SourceReady(f) => Some(f),
            Action::SourceFailed(e) => panic!("{e}"),
            _ => None,
        });
        assert_eq!(faces.len(), 1, "one face in the astronaut photo");
        assert!(self.frames.get(&faces[0].key).is_some(), "its thumbnail");
        self.worker.send(Command::ProbeTarget(target.to_path_buf()));
        self.wait(60, |a| match a {
            Action::TargetReady(_) => Some(()),
            Action::TargetFailed(e) => panic!("{e}"),
            _ => None,
        });
    }
}

fn jpeg(store: &FrameStore, key: &str) -> image::RgbImage {
    let p = store.get(key).unwrap_or_else(|| panic!("no {key} picture"));
    image::load_from_memory(&p.bytes).unwrap().to_rgb8()
}

#[test]
fn preview_follows_the_options_and_the_settings_file_keeps_them() {
    let rig = Rig::new(Settings::default(), Vec::new());
    let target = sample("t1.jpg");
    rig.source_and_target(&target);
    rig.worker.send(Command::Preview {
        target: target.clone(),
        time: 0.0,
    });
    rig.wait(120, |a| match a {
        Action::PreviewReady { .. } => Some(()),
        Action::PreviewFailed(e) => panic!("{e}"),
        _ => None,
    });
    let before = jpeg(&rig.frames, keys::BEFORE);
    let swapped = jpeg(&rig.frames, keys::PREVIEW);
    let changed = mean_abs_diff(&before, &swapped);
    assert!(changed > 0.01, "the swap changed the picture ({changed})");
    // Opacity 0: the preview is the original again, without reloading models.
    let settings = Settings::default()
        .patched(&[("processors[0].opacity".into(), NewValue::Json(json!(0.0)))])
        .unwrap();
    rig.worker.send(Command::Settings {
        settings: Box::new(settings),
        changes: vec![("processors[0].opacity".into(), NewValue::Json(json!(0.0)))],
    });
    rig.worker.send(Command::Preview {
        target: target.clone(),
        time: 0.0,
    });
    rig.wait(120, |a| match a {
        Action::PreviewReady { .. } => Some(()),
        Action::PreviewFailed(e) | Action::Error(e) => panic!("{e}"),
        _ => None,
    });
    let faded = jpeg(&rig.frames, keys::PREVIEW);
    assert!(
        mean_abs_diff(&before, &faded) < changed / 4.0,
        "opacity 0 shows the original"
    );
    // The change is in the shared settings file, as the CLI reads it.
    let file = Layered::load_from(&rig.path("camshow.toml"), &[]).unwrap();
    assert_eq!(
        serde_json::to_value(&file.settings).unwrap()["processors"][0]["opacity"],
        json!(0.0)
    );
}

#[test]
fn image_and_video_swaps_write_labelled_outputs_and_cancel_leaves_nothing() {
    let rig = Rig::new(Settings::default(), Vec::new());
    let target = sample("t1.jpg");
    rig.source_and_target(&target);
    let out = rig.path("out.png");
    rig.worker.send(Command::Swap(Box::new(
        camshow_media::swap_job::SwapRequest::new(
            vec![sample("astronaut.png")],
            target,
            out.clone(),
        ),
    )));
    let done = rig.wait(120, |a| match a {
        Action::Finished(r) => Some(r.unwrap()),
        _ => None,
    });
    assert_eq!(done.output, out);
    assert_eq!(done.kind, MediaKind::Image);
    assert!(done.summary.contains("face(s) swapped"), "{}", done.summary);
    assert!(
        exiftool("XMP-iptcExt:DigitalSourceType", &out)
            .ends_with("compositeWithTrainedAlgorithmicMedia")
    );
    assert!(
        rig.frames.get(keys::RESULT).is_some(),
        "the result is shown"
    );

    // A video, with progress.
    let video = astronaut_clip(&rig.path("clip.mp4"), 2, 256);
    let vout = rig.path("out.mp4");
    rig.worker.send(Command::Swap(Box::new(
        camshow_media::swap_job::SwapRequest::new(
            vec![sample("astronaut.png")],
            video,
            vout.clone(),
        ),
    )));
    let mut progress = 0;
    let done = rig.wait(300, |a| match a {
        Action::Progress { done, total, .. } => {
            assert_eq!(total, Some(20));
            assert!(done >= progress, "progress only grows");
            progress = done;
            None
        }
        Action::Finished(r) => Some(r.unwrap()),
        _ => None,
    });
    assert_eq!(progress, 20, "the last report is the whole video");
    assert_eq!(done.kind, MediaKind::Video);
    assert!(done.summary.contains("20 frames"), "{}", done.summary);
    assert!(vout.is_file());

    // Cancelled: nothing written, nothing left beside it.
    let long = astronaut_clip(&rig.path("long.mp4"), 30, 256);
    let cout = rig.path("cancelled.mp4");
    rig.worker.send(Command::Swap(Box::new(
        camshow_media::swap_job::SwapRequest::new(
            vec![sample("astronaut.png")],
            long,
            cout.clone(),
        ),
    )));
    rig.wait(120, |a| matches!(a, Action::Progress { .. }).then_some(()));
    rig.worker.send(Command::Cancel);
    let r = rig.wait(120, |a| match a {
        Action::Finished(r) => Some(r),
        _ => None,
    });
    assert_eq!(r, Err(JobError::Cancelled));
    assert!(!cout.exists());
    let left: Vec<_> = std::fs::read_dir(rig.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("cancelled"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn the_gate_and_missing_models_are_messages_not_crashes() {
    let rig = Rig::new(Settings::default(), Vec::new());
    let bad = marked(
        &sample("astronaut.png"),
        rig.path("marked.png"),
        (0, 0, 512, 512),
    );
    rig.worker.send(Command::PrepareSource {
        photos: vec![bad],
        pick: None,
    });
    let why = rig.wait(120, |a| match a {
        Action::SourceFailed(e) => Some(e),
        Action::SourceReady(_) => panic!("the gate let it through"),
        _ => None,
    });
    assert!(why.contains("content-safety"), "{why}");
    // A target that is not a picture or video.
    let junk = rig.path("junk.png");
    std::fs::write(&junk, b"not a picture").unwrap();
    rig.worker.send(Command::ProbeTarget(junk));
    let why = rig.wait(60, |a| match a {
        Action::TargetFailed(e) => Some(e),
        _ => None,
    });
    assert!(!why.is_empty());
    // No models at all: the gate's model is missing, and the message says how to get it.
    let empty = tempfile::tempdir().unwrap();
    let settings = Settings {
        models_dir: Some(empty.path().to_path_buf()),
        ..Settings::default()
    };
    let rig = Rig::new(settings, Vec::new());
    rig.worker.send(Command::PrepareSource {
        photos: vec![sample("astronaut.png")],
        pick: None,
    });
    let why = rig.wait(60, |a| match a {
        Action::SourceFailed(e) => Some(e),
        _ => None,
    });
    assert!(why.contains("camshow models fetch nudenet"), "{why}");
    rig.worker.send(Command::Doctor);
    let health = rig.wait(60, |a| match a {
        Action::HealthReady(h) => Some(h),
        _ => None,
    });
    let gate = health.models.iter().find(|m| m.id == "nudenet").unwrap();
    assert!(!gate.ok);
    assert!(!gate.licence.is_empty());
    assert!(
        health.runtime.contains("ONNX Runtime"),
        "{}",
        health.runtime
    );
    // The panel's Download: the real fetch (the pinned wheel, its checksum
    // checked), then the doctor sees the model and the gate's message goes.
    rig.worker.send(Command::Fetch("nudenet".into()));
    let fetched = rig.wait(600, |a| match a {
        Action::Fetched { id, result } => Some((id, result)),
        _ => None,
    });
    assert_eq!(fetched, ("nudenet".to_string(), Ok(())));
    rig.worker.send(Command::Doctor);
    let health = rig.wait(60, |a| match a {
        Action::HealthReady(h) => Some(h),
        _ => None,
    });
    let gate = health.models.iter().find(|m| m.id == "nudenet").unwrap();
    assert!(gate.ok, "{}", gate.status);
    assert!(
        std::fs::read_dir(empty.path()).unwrap().count() > 0,
        "the model is in the models folder"
    );
}

#[test]
fn live_on_a_file_camera_draws_frames_and_takes_changes_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let video = astronaut_clip(&dir.path().join("cam.mp4"), 3, 256);
    let settings = Settings::default()
        .patched(&[
            (
                "live.camera".into(),
                NewValue::Text(format!("file:{}", video.display())),
            ),
            ("live.resolution".into(), NewValue::Text("256x256".into())),
        ])
        .unwrap();
    let rig = Rig::new(settings.clone(), Vec::new());
    rig.worker.send(Command::LiveStart(LiveRequest {
        sources: vec![sample("astronaut.png")],
        pick: None,
    }));
    let frames = rig.wait(120, |a| match a {
        Action::LiveStats { frames, .. } if frames > 3 => Some(frames),
        Action::LiveEnded(r) => panic!("{r:?}"),
        _ => None,
    });
    assert!(frames > 3);
    let first = jpeg(&rig.frames, keys::LIVE);
    assert_eq!(first.dimensions(), (256, 256));
    // Mirror while running: the next frames are flipped.
    let mirrored = settings
        .patched(&[("live.mirror".into(), NewValue::Json(json!(true)))])
        .unwrap();
    rig.worker.send(Command::Settings {
        settings: Box::new(mirrored),
        changes: vec![("live.mirror".into(), NewValue::Json(json!(true)))],
    });
    rig.wait(30, |a| matches!(a, Action::LiveStats { .. }).then_some(()));
    rig.wait(30, |a| matches!(a, Action::LiveStats { .. }).then_some(()));
    let flipped = jpeg(&rig.frames, keys::LIVE);
    let back = image::imageops::flip_horizontal(&flipped);
    assert!(
        mean_abs_diff(&first, &back) < mean_abs_diff(&first, &flipped),
        "the live picture is mirrored"
    );
    // The source changes while live.
    rig.worker.send(Command::LiveSource {
        photos: vec![sample("astronaut.png")],
        pick: None,
    });
    rig.wait(30, |a| match a {
        Action::LiveStats { .. } => Some(()),
        Action::Error(e) => panic!("{e}"),
        _ => None,
    });
    rig.worker.send(Command::LiveStop);
    let r = rig.wait(30, |a| match a {
        Action::LiveEnded(r) => Some(r),
        _ => None,
    });
    assert_eq!(r, Ok(()));
}

#[test]
fn the_face_mapper_scans_people_and_swaps_the_chosen_one() {
    let rig = Rig::new(
        Settings::default(),
        vec![format!("w600k_r50={}", parity_model("w600k_r50.onnx"))],
    );
    let target = sample("t1.jpg");
    rig.worker.send(Command::Scan(target.clone()));
    let (map, persons) = rig.wait(180, |a| match a {
        Action::Scanned { map, persons } => Some((map, persons)),
        Action::ScanFailed(e) => panic!("{e}"),
        _ => None,
    });
    // (The parity recognizer has random weights: how many people it tells
    // apart says nothing; the real one is not downloadable here.)
    assert!(!persons.is_empty(), "{persons:?}");
    for p in &persons {
        assert!(rig.frames.get(&p.thumb).is_some());
    }
    rig.worker.send(Command::AssignMap {
        map: map.clone(),
        assigned: vec![(0, sample("astronaut.png"))],
    });
    let mut req =
        camshow_media::swap_job::SwapRequest::new(Vec::new(), target, rig.path("mapped.png"));
    req.map = Some(map.clone());
    rig.worker.send(Command::Swap(Box::new(req)));
    let done = rig.wait(180, |a| match a {
        Action::Finished(r) => Some(r.unwrap()),
        Action::Error(e) => panic!("{e}"),
        _ => None,
    });
    assert!(!done.summary.starts_with("0 of"), "{}", done.summary);
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&map).unwrap()).unwrap();
    assert_eq!(
        written["people"][0]["source"],
        json!(sample("astronaut.png").display().to_string())
    );
    for other in written["people"].as_array().unwrap().iter().skip(1) {
        assert_eq!(other["source"], serde_json::Value::Null, "left untouched");
    }
}

#[test]
fn a_video_plays_processed_in_real_time() {
    let rig = Rig::new(Settings::default(), Vec::new());
    let video = astronaut_clip(&rig.path("clip.mp4"), 2, 256);
    rig.source_and_target(&video);
    rig.worker.send(Command::PlayFrom(0.5));
    let mut times = Vec::new();
    rig.wait(120, |a| match a {
        Action::PreviewReady { time, .. } => {
            times.push(time);
            None
        }
        Action::PreviewFailed(e) => panic!("{e}"),
        Action::PlayEnded => Some(()),
        _ => None,
    });
    assert!(!times.is_empty());
    assert!(times.windows(2).all(|w| w[1] > w[0]), "{times:?}");
    assert!(
        times[0] >= 0.5 && *times.last().unwrap() <= 2.0,
        "{times:?}"
    );
    assert!(rig.frames.get(keys::PLAY).is_some());
    // The written video plays as it is (the result's player).
    rig.worker.send(Command::PlayOutput(video));
    let mut shown = 0;
    rig.wait(60, |a| match a {
        Action::PreviewReady { .. } => {
            shown += 1;
            None
        }
        Action::PreviewFailed(e) => panic!("{e}"),
        Action::PlayEnded => Some(()),
        _ => None,
    });
    assert!(shown > 10, "{shown} of 20 frames shown");
}

#[test]
fn a_chosen_face_of_a_group_photo_is_the_source() {
    let rig = Rig::new(Settings::default(), Vec::new());
    let group = sample("t1.jpg");
    let prepare = |pick| {
        rig.worker.send(Command::PrepareSource {
            photos: vec![group.clone()],
            pick,
        });
        rig.wait(120, |a| match a {
            Action::SourceReady(f) => Some(f),
            Action::SourceFailed(e) => panic!("{e}"),
            _ => None,
        })
    };
    let faces = prepare(None);
    assert_eq!(faces.len(), 6, "every face of the group is listed");
    assert_eq!(faces.iter().filter(|f| f.used).count(), 1);
    let other = faces.iter().position(|f| !f.used).unwrap();
    let faces = prepare(Some(faces[other].pick));
    assert!(faces[other].used, "the chosen face is the one used");
    assert_eq!(faces.iter().filter(|f| f.used).count(), 1);
    // The swap job uses it too: a different result than the default face.
    let target = sample("astronaut.png");
    let swap = |pick, name: &str| {
        let mut req = camshow_media::swap_job::SwapRequest::new(
            vec![group.clone()],
            target.clone(),
            rig.path(name),
        );
        req.source_face = pick;
        rig.worker.send(Command::Swap(Box::new(req)));
        rig.wait(120, |a| match a {
            Action::Finished(r) => Some(r.unwrap()),
            _ => None,
        });
        image::open(rig.path(name)).unwrap().to_rgb8()
    };
    let chosen = swap(Some(faces[other].pick), "chosen.png");
    let default = swap(None, "default.png");
    assert!(
        mean_abs_diff(&chosen, &default) > 0.01,
        "another face was used"
    );
    // A box that matches no face is refused with a reason.
    prepare_fails(&rig, &group);
}

fn prepare_fails(rig: &Rig, group: &Path) {
    rig.worker.send(Command::PrepareSource {
        photos: vec![group.to_path_buf()],
        pick: Some(camshow_core::pipeline::SourcePick {
            photo: 0,
            bbox: [0.0, 0.0, 3.0, 3.0],
        }),
    });
    let why = rig.wait(60, |a| match a {
        Action::SourceFailed(e) => Some(e),
        Action::SourceReady(_) => panic!("a face where there is none"),
        _ => None,
    });
    assert!(why.contains("chosen face"), "{why}");
}
