//! The frame processor chain end to end on the real sample photos, with the
//! real CenterFace detector and safety gate, and the synthetic stand-ins of
//! the parity suite for the models that cannot be downloaded here
//! (enhancers, 2d106det, inswapper, XSeg).

#![allow(clippy::unwrap_used)]

use camshow_core::Frame;
use camshow_core::context::EngineContext;
use camshow_core::models::ModelStore;
use camshow_core::pipeline::SwapEngine;
use camshow_core::process::enhancer::FaceEnhancer;
use camshow_core::runtime::{Runtime, sessions_created};
use camshow_core::select::SelectMode;
use camshow_core::settings::{ProcessorConfig, Settings};
use camshow_core::swap::SwapperChoice;
use camshow_test_utils::{parity_model, runtime, sample, store};

fn load(name: &str) -> Frame {
    let img = image::open(sample(name)).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    Frame::from_rgb(w, h, img.into_raw()).unwrap()
}

fn stand_ins() -> ModelStore {
    let mut s = store();
    for (id, file) in [
        ("gfpgan_1.4", "gfpgan_1.4.onnx"),
        ("gpen_bfr_256", "gpen_bfr_256.onnx"),
        ("codeformer", "codeformer.onnx"),
        ("2d106det", "2d106det.onnx"),
        ("xseg_1", "xseg_1.onnx"),
        ("inswapper_128", "inswapper_128.onnx"),
        ("w600k_r50", "w600k_r50.onnx"),
    ] {
        s = s.with_override(id, parity_model(file)).unwrap();
    }
    s
}

fn settings(chain: &[&str]) -> Settings {
    let mut s = Settings::default();
    s.engine.swapper = SwapperChoice::Classic;
    s.engine.selector = SelectMode::Many;
    // The runtime of `runtime(2)`: same settings, same engine context.
    s.runtime.intra_threads = 2;
    s.processors = chain
        .iter()
        .map(|id| {
            ProcessorConfig::default_for(id).unwrap_or_else(|| {
                ProcessorConfig::Custom(camshow_core::settings::CustomProcessorConfig {
                    id: (*id).to_string(),
                    options: std::collections::BTreeMap::default(),
                })
            })
        })
        .collect();
    s
}

/// `s` with `key` set to `value` (the settings API every front end uses).
fn with(mut s: Settings, key: &str, value: &str) -> Settings {
    s.set_key(key, value).unwrap();
    s
}

fn load_engine(s: &Settings, rt: &Runtime, store: &ModelStore) -> camshow_core::Result<SwapEngine> {
    SwapEngine::load(&EngineContext::new(rt.clone(), store.clone()), s)
}

fn changed(a: &Frame, b: &Frame) -> usize {
    a.data()
        .chunks_exact(3)
        .zip(b.data().chunks_exact(3))
        .filter(|(x, y)| x != y)
        .count()
}

#[test]
fn the_chain_analyses_once_and_runs_in_order() {
    let rt = runtime(2);
    let store = stand_ins();
    let source = load("astronaut.png");
    let target = load("t1.jpg");

    let engine = load_engine(&settings(&["face_swapper", "face_enhancer"]), &rt, &store).unwrap();
    assert_eq!(engine.processors(), ["face_swapper", "face_enhancer"]);
    assert!(engine.models().iter().any(|m| m.name() == "gfpgan_1.4"));
    let src = engine.prepare_source(&source).unwrap();
    let calls = engine.analyser().calls();
    let mut chained = target.clone();
    let report = engine.swap(&mut chained, &src, None).unwrap();
    assert_eq!(report.faces_swapped, 6);
    assert_eq!(report.processors, ["face_swapper", "face_enhancer"]);
    // One analysis for the whole chain: the enhancer reuses the faces.
    assert_eq!(engine.analyser().calls() - calls, 1);

    // The same result step by step: swap only, then the enhancer on the same points.
    let swap_only = load_engine(&settings(&["face_swapper"]), &rt, &store).unwrap();
    let src1 = swap_only.prepare_source(&source).unwrap();
    let mut stepwise = target.clone();
    swap_only.swap(&mut stepwise, &src1, None).unwrap();
    let faces = swap_only.analyse(&target).unwrap();
    let enhancer = FaceEnhancer::load(
        &rt,
        "gfpgan_1.4",
        &store.read("gfpgan_1.4").unwrap(),
        0.8,
        0.5,
        None,
    )
    .unwrap();
    for f in &faces {
        enhancer.enhance(&mut stepwise, &f.kps).unwrap();
    }
    assert_eq!(changed(&chained, &stepwise), 0, "chain = swap then enhance");

    // The other order gives another picture.
    let reversed = load_engine(&settings(&["face_enhancer", "face_swapper"]), &rt, &store).unwrap();
    let src2 = reversed.prepare_source(&source).unwrap();
    let mut other = target.clone();
    reversed.swap(&mut other, &src2, None).unwrap();
    assert!(changed(&other, &chained) > 1000);

    // Duplicate or unknown processors are refused at load.
    let refusal = |s: &Settings| load_engine(s, &rt, &store).unwrap_err().to_string();
    let e = refusal(&settings(&["face_swapper", "face_swapper"]));
    assert!(
        e.contains("processors[1]: face_swapper is in the chain twice"),
        "{e}"
    );
    let e = refusal(&settings(&["lip_syncer"]));
    assert!(
        e.contains("unknown frame processor \"lip_syncer\" (known: face_swapper, face_enhancer)"),
        "{e}"
    );
}

#[test]
fn every_enhancer_model_runs_through_the_chain() {
    let rt = runtime(2);
    let store = stand_ins();
    let source = load("astronaut.png");
    let target = load("t1.jpg");
    for id in ["gfpgan_1.4", "gpen_bfr_256", "codeformer"] {
        let s = with(settings(&["face_enhancer"]), "processors[0].model", id);
        let engine = load_engine(&s, &rt, &store).unwrap();
        let src = engine.prepare_source(&source).unwrap();
        let mut out = target.clone();
        engine.swap(&mut out, &src, None).unwrap();
        assert!(changed(&out, &target) > 5000, "{id} changed too little");
    }
    // A model that is not installed is a clear error.
    let s = with(
        settings(&["face_enhancer"]),
        "processors[0].model",
        "gpen_bfr_512",
    );
    let err = load_engine(&s, &rt, &store).unwrap_err().to_string();
    assert!(
        err.contains("gpen_bfr_512") || err.contains("GPEN-BFR-512"),
        "{err}"
    );
}

#[test]
fn finishing_options_change_what_they_should() {
    let rt = runtime(2);
    let store = stand_ins();
    let source = load("astronaut.png");
    let target = load("t1.jpg");
    let run = |s: &Settings| {
        let engine = load_engine(s, &rt, &store).unwrap();
        let src = engine.prepare_source(&source).unwrap();
        let mut out = target.clone();
        engine.swap(&mut out, &src, None).unwrap();
        out
    };
    let base = run(&settings(&["face_swapper"]));
    let plain = changed(&base, &target);

    // Opacity 0.5 lands halfway between target and swap.
    let half = run(&with(
        settings(&["face_swapper"]),
        "processors[0].opacity",
        "0.5",
    ));
    let (mut d_half, mut d_full) = (0u64, 0u64);
    for ((t, b), h) in target.data().iter().zip(base.data()).zip(half.data()) {
        d_full += u64::from(t.abs_diff(*b));
        d_half += u64::from(t.abs_diff(*h));
    }
    let ratio = d_half as f64 / d_full as f64;
    assert!(
        (0.4..0.6).contains(&ratio),
        "opacity 0.5 moved {ratio} of the way"
    );

    // The mouth mask needs 106 landmarks and puts target pixels back.
    let s = with(
        settings(&["face_swapper"]),
        "processors[0].mouth_mask",
        "40",
    );
    let mouth = run(&s);
    assert!(
        changed(&mouth, &base) > 200,
        "the mouth mask changed the mouths"
    );
    let err = load_engine(&s, &rt, &camshow_test_utils::store())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("2d106det"),
        "without the landmark model: {err}"
    );

    // Box and occlusion masks only take pixels away.
    let masked = run(&with(
        settings(&["face_swapper"]),
        "processors[0].masks",
        "box,occlusion",
    ));
    assert!(changed(&masked, &target) < plain);

    // A region mask from a face parser keeps only the chosen regions: a
    // stand-in parser (1×1 convolution) calls reddish pixels "skin".
    let dir = tempfile::tempdir().unwrap();
    let parser = dir.path().join("parser.onnx");
    let mut w = vec![0f32; 19 * 3];
    w[3] = 1.0;
    w[0] = -1.0;
    for k in 2..19 {
        w[k * 3] = -5.0;
    }
    std::fs::write(
        &parser,
        camshow_core::onnx::ModelBuilder::new("parser", 13)
            .input("input", &camshow_core::onnx::fixed(&[1, 3, 512, 512]))
            .initializer("W", &[19, 3, 1, 1], &w)
            .node("Conv", &["input", "W"], &["out"], &[])
            .output("out", &camshow_core::onnx::fixed(&[1, 19, 512, 512]))
            .build(),
    )
    .unwrap();
    let parser_store = stand_ins()
        .with_override("bisenet_resnet_34", &parser)
        .unwrap();
    let s = with(settings(&["face_swapper"]), "processors[0].masks", "region");
    let s = with(s, "processors[0].mask_regions", "skin");
    let e = load_engine(&s, &rt, &parser_store).unwrap();
    assert!(e.models().iter().any(|m| m.name() == "bisenet_resnet_34"));
    let src = e.prepare_source(&source).unwrap();
    let mut region = target.clone();
    e.swap(&mut region, &src, None).unwrap();
    let kept = changed(&region, &target);
    assert!(
        kept < plain && kept > plain / 20,
        "region mask: {kept} of {plain} pixels"
    );
    let mut bad = s.clone();
    assert!(bad.set_key("processors[0].mask_regions", "hair").is_ok());
    let e = load_engine(&bad, &rt, &parser_store)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("processors[0].mask_regions: unknown face region \"hair\""),
        "{e}"
    );

    // Sharpness changes pixels inside the swapped faces only.
    let sharp = run(&with(
        settings(&["face_swapper"]),
        "processors[0].sharpness",
        "2",
    ));
    assert!(changed(&sharp, &base) > 1000);
    assert!(changed(&sharp, &target) <= plain + plain / 50);

    // Seamless paste and colour match produce valid, different results.
    let s = with(settings(&["face_swapper"]), "engine.paste_back", "seamless");
    let seamless = run(&with(s, "processors[0].colour_match", "true"));
    assert!(changed(&seamless, &base) > 1000);

    // Pixel boost with inswapper: 512 px crops (16 inferences per face).
    let s = with(settings(&["face_swapper"]), "engine.swapper", "inswapper");
    let s = with(s, "engine.selector", "one");
    let ins = run(&s);
    let boosted = run(&with(s, "processors[0].pixel_boost", "512"));
    assert!(changed(&boosted, &ins) > 1000);
    assert!(changed(&boosted, &target) > 1000);

    // Out-of-range settings are refused.
    let s = with(settings(&["face_swapper"]), "processors[0].opacity", "1.5");
    let e = load_engine(&s, &rt, &store).unwrap_err().to_string();
    assert!(
        e.contains("processors[0].opacity: 1.5 is not in 0–1"),
        "{e}"
    );
    let s = with(
        settings(&["face_swapper"]),
        "processors[0].pixel_boost",
        "300",
    );
    let e = load_engine(&s, &rt, &store).unwrap_err().to_string();
    assert!(
        e.contains("processors[0].pixel_boost: 300 is not 256, 512 or 1024"),
        "{e}"
    );
}

#[test]
fn reconfigure_reuses_every_loaded_model() {
    let rt = runtime(2);
    let ctx = EngineContext::new(rt, stand_ins());
    let source = load("astronaut.png");
    let target = load("t1.jpg");
    // Everything the option changes below will need, loaded once.
    let full = with(
        settings(&["face_swapper", "face_enhancer"]),
        "processors[0].mouth_mask",
        "40",
    );
    let full = with(full, "processors[0].masks", "box,occlusion");
    let warm = SwapEngine::load(&ctx, &full).unwrap();
    let src = warm.prepare_source(&source).unwrap();
    let base = settings(&["face_swapper"]);
    let mut engine = warm.reconfigure(&base).unwrap();
    let mut before = target.clone();
    engine.swap(&mut before, &src, None).unwrap();
    let sessions = sessions_created();
    // Five options toggled, one after the other, on the loaded engine.
    let mut s = base.clone();
    let mut last = before;
    for (key, value) in [
        ("processors[0].opacity", "0.5"),
        ("processors[0].mouth_mask", "40"),
        ("processors[0].masks", "occlusion"),
        ("processors[0].sharpness", "1.5"),
        ("processors[1]", r#"{type = "face_enhancer", blend = 60}"#),
    ] {
        s.set_key(key, value).unwrap();
        engine = engine.reconfigure(&s).unwrap();
        let mut out = target.clone();
        engine.swap(&mut out, &src, None).unwrap();
        assert!(
            changed(&out, &last) > 100,
            "{key} = {value} changed nothing"
        );
        last = out;
    }
    assert_eq!(
        sessions_created(),
        sessions,
        "an option change created ONNX Runtime sessions"
    );
    // Turning them off again loads nothing either.
    engine = engine.reconfigure(&base).unwrap();
    let mut again = target.clone();
    engine.swap(&mut again, &src, None).unwrap();
    assert_eq!(sessions_created(), sessions);
    // A new model (another enhancer) is loaded once, on demand.
    let codeformer = with(
        base.clone(),
        "processors[1]",
        r#"{type = "face_enhancer", model = "codeformer"}"#,
    );
    engine.reconfigure(&codeformer).unwrap();
    assert_eq!(sessions_created(), sessions + 1);
    engine.reconfigure(&codeformer).unwrap();
    assert_eq!(sessions_created(), sessions + 1);
    // Invalid settings are refused with their field, and the engine in hand stays usable.
    let bad = with(base, "processors[0].opacity", "7");
    let e = engine.reconfigure(&bad).unwrap_err().to_string();
    assert!(e.contains("processors[0].opacity"), "{e}");
}

#[test]
fn several_photos_make_one_identity() {
    let rt = runtime(2);
    let ctx = EngineContext::new(rt, stand_ins());
    let s = with(settings(&["face_swapper"]), "engine.swapper", "inswapper");
    let engine = SwapEngine::load(&ctx, &s).unwrap();
    let astronaut = load("astronaut.png");
    let mirrored = {
        let mut m = astronaut.clone();
        let w = m.width() as usize;
        for row in m.data_mut().chunks_exact_mut(w * 3) {
            for x in 0..w / 2 {
                for c in 0..3 {
                    row.swap(x * 3 + c, (w - 1 - x) * 3 + c);
                }
            }
        }
        m
    };
    let small = camshow_core::imgproc::resize_bilinear(&astronaut, 256, 256);
    let photos = [
        ("a".to_string(), &astronaut),
        ("b".to_string(), &mirrored),
        ("c".to_string(), &small),
    ];
    let three = engine.prepare_sources(&photos).unwrap();
    assert_eq!(three.photos(), 3);
    let one = engine.prepare_source(&astronaut).unwrap();
    let (e3, e1) = (three.embedding().unwrap(), one.embedding().unwrap());
    let cos: f32 = e3.iter().zip(e1).map(|(a, b)| a * b).sum();
    assert!(
        cos > 0.5 && cos < 0.99999,
        "the mean moved the identity: cos {cos}"
    );
    let norm: f32 = e3.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    // The saved embedding gives the same swap as the photos.
    let again = engine.source_from_embedding(e3).unwrap();
    let target = load("t1.jpg");
    let (mut x, mut y) = (target.clone(), target.clone());
    engine.swap(&mut x, &three, None).unwrap();
    engine.swap(&mut y, &again, None).unwrap();
    assert_eq!(changed(&x, &y), 0);
    // The median is another average; the classic swapper cannot use an embedding alone.
    let median = SwapEngine::load(&ctx, &with(s, "engine.source_average", "median")).unwrap();
    let m = median.prepare_sources(&photos).unwrap();
    assert_ne!(m.embedding().unwrap(), e3);
    let classic = SwapEngine::load(&ctx, &settings(&["face_swapper"])).unwrap();
    let e = classic.source_from_embedding(e3).unwrap_err().to_string();
    assert!(e.contains("the classic swapper needs a photo"), "{e}");
    // A photo without a face is named.
    let blank = Frame::filled(64, 64, [128, 128, 128]).unwrap();
    let e = engine
        .prepare_sources(&[("a".into(), &astronaut), ("blank.png".into(), &blank)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("blank.png"), "{e}");
}
