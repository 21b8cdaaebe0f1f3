//! Stopping work part-way: a video job, the re-timing of
//! a variable-rate output and a face scan each end with `Cancelled`, kill
//! their FFmpeg children and leave nothing behind.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use camshow_core::analysis::Needs;
use camshow_core::detect::DetectorKind;
use camshow_core::pipeline::SwapEngine;
use camshow_core::session::SourcePlan;
use camshow_core::settings::Settings;
use camshow_media::Error;
use camshow_media::job::JobOptions;
use camshow_media::video::{Decoder, EncodeOptions, Encoder, Rational, Trim, container_for, probe};
use camshow_test_utils::{astronaut_clip, context, parity_model, sample, store};

/// This test process's live (not zombie) children.
#[cfg(target_os = "linux")]
fn live_children() -> Vec<String> {
    let out = Command::new("ps")
        .args([
            "-o",
            "pid=,stat=",
            "--ppid",
            &std::process::id().to_string(),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.split_whitespace().nth(1).unwrap_or("").starts_with('Z'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|p| {
            // Not `ps` itself.
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() != "ps")
        })
        .collect()
}

fn cancelled(e: &Error) -> bool {
    e.is_cancelled()
}

/// Work stopped part-way left nothing in `dir` but the input clip, and no
/// FFmpeg process running.
fn nothing_left_but_the_clip(dir: &std::path::Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "clip.mp4")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    #[cfg(target_os = "linux")]
    assert!(live_children().is_empty(), "{:?}", live_children());
}

#[test]
fn stopping_a_video_job_part_way_ends_its_decoder_and_encoder() {
    let dir = tempfile::tempdir().unwrap();
    let input = astronaut_clip(&dir.path().join("clip.mp4"), 3, 256);
    let ctx = context(store(), 1);
    let engine = SwapEngine::load_with(&ctx, &Settings::default(), Needs::default()).unwrap();
    let face = camshow_media::image_io::read_image(&sample("t1.jpg")).unwrap();
    let plan = SourcePlan::one(engine.prepare_source(&face).unwrap());
    let out = dir.path().join("out.mp4");
    // Stopped once five frames are written: decoding, checks and encoding
    // are all under way.
    let stop = AtomicBool::new(false);
    let written = AtomicU64::new(0);
    let err = camshow_media::job::run_video_job(
        &engine,
        &plan,
        &input,
        &out,
        &JobOptions::default(),
        &|done, _| {
            written.store(done, Ordering::Relaxed);
            if done >= 5 {
                stop.store(true, Ordering::Relaxed);
            }
        },
        &stop,
    )
    .unwrap_err();
    assert!(cancelled(&err), "{err}");
    let w = written.load(Ordering::Relaxed);
    assert!((5..30).contains(&w), "{w} frames written");
    nothing_left_but_the_clip(dir.path());
}

#[test]
fn stopping_the_retiming_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = astronaut_clip(&dir.path().join("clip.mp4"), 3, 256);
    let info = probe(&input).unwrap();
    let target = dir.path().join("out.mp4");
    let opts = |times: Vec<f64>| EncodeOptions {
        encoder: "libx264".into(),
        quality: 23,
        keep_audio: false,
        fps: Rational { num: 10, den: 1 },
        trim: Trim::default(),
        timestamps: Some(times),
        metadata: Vec::new(),
    };
    let encode = |stop: bool| {
        let mut dec = Decoder::open_exact(&input, &info).unwrap();
        let mut times = Vec::new();
        let mut frames = Vec::new();
        while let Some(f) = dec.next_frame().unwrap() {
            // Variable spacing: every other frame twice as long.
            times.push(
                times
                    .last()
                    .map_or(0.0, |t: &f64| t + 0.1 * (1.0 + (frames.len() % 2) as f64)),
            );
            frames.push(f);
        }
        let mut enc = Encoder::start(
            &target,
            container_for(&target).unwrap(),
            &input,
            &info,
            info.width,
            info.height,
            &opts(times),
        )
        .unwrap();
        for f in &frames {
            enc.write(f).unwrap();
        }
        enc.finish(&AtomicBool::new(stop))
    };
    // Stopped: nothing at the target, no temporary folder left, no FFmpeg running.
    let err = encode(true).unwrap_err();
    assert!(cancelled(&err), "{err}");
    assert!(!target.exists());
    nothing_left_but_the_clip(dir.path());
    // Not stopped: the re-timed file, 30 frames over 4.5 s (0.1 s and 0.2 s in turn).
    encode(false).unwrap();
    let out = probe(&target).unwrap();
    assert_eq!(out.frame_count, Some(30));
    assert!((out.duration - 4.5).abs() < 0.2, "{}", out.duration);
}

#[test]
fn stopping_a_face_scan_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = astronaut_clip(&dir.path().join("clip.mp4"), 3, 256);
    let store = store()
        .with_override("w600k_r50", parity_model("w600k_r50.onnx"))
        .unwrap();
    let ctx = context(store, 1);
    let map = dir.path().join("map.json");
    let err = camshow_media::faces::scan(
        &ctx,
        DetectorKind::CenterFace,
        &input,
        &map,
        0.6,
        &AtomicBool::new(true),
    )
    .unwrap_err();
    assert!(cancelled(&err), "{err}");
    assert!(!map.exists());
    nothing_left_but_the_clip(dir.path());
    // The same scan, not stopped, finds the astronaut.
    let found = camshow_media::faces::scan(
        &ctx,
        DetectorKind::CenterFace,
        &input,
        &map,
        0.6,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(found.map.people.len(), 1);
    assert!(map.is_file());
}
