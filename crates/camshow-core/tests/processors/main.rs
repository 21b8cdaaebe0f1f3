//! The frame processor chain end to end on the real sample photos, with the
//! real CenterFace detector and safety gate, and the synthetic stand-ins of
//! the parity suite for the models that cannot be downloaded here
//! (enhancers, 2d106det, inswapper, XSeg).

#![allow(clippy::unwrap_used)]

use camshow_core::Frame;
use camshow_core::models::ModelStore;
use camshow_core::pipeline::{SwapEngine, SwapSettings, SwapperChoice};
use camshow_core::process::enhancer::FaceEnhancer;
use camshow_core::process::masks::FaceMaskKind;
use camshow_core::select::SelectMode;
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

fn settings(chain: &[&str]) -> SwapSettings {
    SwapSettings {
        swapper: SwapperChoice::Classic,
        selector: SelectMode::Many,
        processors: chain.iter().map(|s| (*s).to_string()).collect(),
        ..SwapSettings::default()
    }
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

    let engine =
        SwapEngine::load(&settings(&["face_swapper", "face_enhancer"]), &rt, &store).unwrap();
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
    let swap_only = SwapEngine::load(&settings(&["face_swapper"]), &rt, &store).unwrap();
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
    let reversed =
        SwapEngine::load(&settings(&["face_enhancer", "face_swapper"]), &rt, &store).unwrap();
    let src2 = reversed.prepare_source(&source).unwrap();
    let mut other = target.clone();
    reversed.swap(&mut other, &src2, None).unwrap();
    assert!(changed(&other, &chained) > 1000);

    // Duplicate or unknown processors are refused at load.
    assert!(SwapEngine::load(&settings(&["face_swapper", "face_swapper"]), &rt, &store).is_err());
    assert!(SwapEngine::load(&settings(&["lip_syncer"]), &rt, &store).is_err());
}

#[test]
fn every_enhancer_model_runs_through_the_chain() {
    let rt = runtime(2);
    let store = stand_ins();
    let source = load("astronaut.png");
    let target = load("t1.jpg");
    for id in ["gfpgan_1.4", "gpen_bfr_256", "codeformer"] {
        let mut s = settings(&["face_enhancer"]);
        s.face_enhancer = id.into();
        let engine = SwapEngine::load(&s, &rt, &store).unwrap();
        let src = engine.prepare_source(&source).unwrap();
        let mut out = target.clone();
        engine.swap(&mut out, &src, None).unwrap();
        assert!(changed(&out, &target) > 5000, "{id} changed too little");
    }
    // A model that is not installed is a clear error.
    let mut s = settings(&["face_enhancer"]);
    s.face_enhancer = "gpen_bfr_512".into();
    let err = SwapEngine::load(&s, &rt, &store).unwrap_err().to_string();
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
    let run = |s: &SwapSettings| {
        let engine = SwapEngine::load(s, &rt, &store).unwrap();
        let src = engine.prepare_source(&source).unwrap();
        let mut out = target.clone();
        engine.swap(&mut out, &src, None).unwrap();
        out
    };
    let base = run(&settings(&["face_swapper"]));
    let plain = changed(&base, &target);

    // Opacity 0.5 lands halfway between target and swap.
    let mut s = settings(&["face_swapper"]);
    s.opacity = 0.5;
    let half = run(&s);
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
    let mut s = settings(&["face_swapper"]);
    s.mouth_mask = Some(40);
    let mouth = run(&s);
    assert!(
        changed(&mouth, &base) > 200,
        "the mouth mask changed the mouths"
    );
    let err = SwapEngine::load(&s, &rt, &camshow_test_utils::store())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("2d106det"),
        "without the landmark model: {err}"
    );

    // Box and occlusion masks only take pixels away.
    let mut s = settings(&["face_swapper"]);
    s.face_masks = vec![FaceMaskKind::Box, FaceMaskKind::Occlusion];
    let masked = run(&s);
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
    let mut s = settings(&["face_swapper"]);
    s.face_masks = vec![FaceMaskKind::Region];
    s.face_mask_regions = vec!["skin".into()];
    let engine = SwapEngine::load(&s, &rt, &parser_store).unwrap();
    assert!(
        engine
            .models()
            .iter()
            .any(|m| m.name() == "bisenet_resnet_34")
    );
    let src = engine.prepare_source(&source).unwrap();
    let mut region = target.clone();
    engine.swap(&mut region, &src, None).unwrap();
    let kept = changed(&region, &target);
    assert!(
        kept < plain && kept > plain / 20,
        "region mask: {kept} of {plain} pixels"
    );
    s.face_mask_regions = vec!["hair".into()];
    assert!(SwapEngine::load(&s, &rt, &parser_store).is_err());

    // Sharpness changes pixels inside the swapped faces only.
    let mut s = settings(&["face_swapper"]);
    s.sharpness = 2.0;
    let sharp = run(&s);
    assert!(changed(&sharp, &base) > 1000);
    assert!(changed(&sharp, &target) <= plain + plain / 50);

    // Seamless paste and colour match produce valid, different results.
    let mut s = settings(&["face_swapper"]);
    s.paste_back = camshow_core::swap::PasteBack::Seamless;
    s.colour_match = true;
    let seamless = run(&s);
    assert!(changed(&seamless, &base) > 1000);

    // Pixel boost with inswapper: 512 px crops (16 inferences per face).
    let mut s = settings(&["face_swapper"]);
    s.swapper = SwapperChoice::Inswapper;
    s.selector = SelectMode::One;
    let ins = run(&s);
    s.pixel_boost = Some(512);
    let boosted = run(&s);
    assert!(changed(&boosted, &ins) > 1000);
    assert!(changed(&boosted, &target) > 1000);

    // Out-of-range settings are refused.
    let mut s = settings(&["face_swapper"]);
    s.opacity = 1.5;
    assert!(SwapEngine::load(&s, &rt, &store).is_err());
    s.opacity = 1.0;
    s.pixel_boost = Some(300);
    assert!(SwapEngine::load(&s, &rt, &store).is_err());
}
