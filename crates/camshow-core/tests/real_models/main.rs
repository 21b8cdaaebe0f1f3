//! The real models that ship in registry packages, run on the real sample
//! photos with the real ONNX Runtime.

#![allow(clippy::unwrap_used)]

use camshow_core::Frame;
use camshow_core::detect::{
    BlazeFace, CenterFace, DetectorKind, Face, FaceDetector, load_detector,
};
use camshow_core::onnx::{Dim, OnnxModel};
use camshow_core::safety::SafetyGate;
use camshow_test_utils::{runtime, sample, store};

fn load(name: &str) -> Frame {
    let img = image::open(sample(name)).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    Frame::from_rgb(w, h, img.into_raw()).unwrap()
}

fn centre(f: &Face) -> (f32, f32) {
    (
        f32::midpoint(f.bbox[0], f.bbox[2]),
        f32::midpoint(f.bbox[1], f.bbox[3]),
    )
}

/// Face centres in t1.jpg (1280×886), checked by eye on the annotated output.
const T1_FACES: [(f32, f32); 6] = [
    (794.0, 413.0),
    (518.0, 342.0),
    (1181.0, 334.0),
    (958.0, 132.0),
    (114.0, 330.0),
    (322.0, 208.0),
];

#[test]
fn centerface_finds_the_six_faces_of_t1() {
    let rt = runtime(2);
    let det = CenterFace::load(&rt, &store().read_verified("centerface").unwrap()).unwrap();
    let faces = det.detect(&load("t1.jpg")).unwrap();
    assert_eq!(faces.len(), 6, "{faces:#?}");
    for &(x, y) in &T1_FACES {
        let f = faces
            .iter()
            .find(|f| (centre(f).0 - x).abs() < 15.0 && (centre(f).1 - y).abs() < 15.0)
            .unwrap_or_else(|| panic!("no face near ({x}, {y}): {faces:#?}"));
        assert!(f.score > 0.8, "{f:?}");
        let (w, h) = (f.bbox[2] - f.bbox[0], f.bbox[3] - f.bbox[1]);
        assert!(
            (80.0..140.0).contains(&w) && (100.0..170.0).contains(&h),
            "{f:?}"
        );
        // Points inside the box, eyes above the nose above the mouth.
        for p in f.kps {
            assert!(
                p[0] >= f.bbox[0] && p[0] <= f.bbox[2] && p[1] >= f.bbox[1] && p[1] <= f.bbox[3],
                "{f:?}"
            );
        }
        assert!(
            f.kps[0][0] < f.kps[1][0] && f.kps[3][0] < f.kps[4][0],
            "{f:?}"
        );
        assert!(
            f.kps[0][1].max(f.kps[1][1]) < f.kps[3][1].min(f.kps[4][1]),
            "{f:?}"
        );
    }
}

#[test]
fn centerface_finds_the_astronaut() {
    let rt = runtime(2);
    let det = load_detector(DetectorKind::CenterFace, &rt, &store()).unwrap();
    let faces = det.detect(&load("astronaut.png")).unwrap();
    assert_eq!(faces.len(), 1, "{faces:#?}");
    let (x, y) = centre(&faces[0]);
    assert!(
        (x - 225.0).abs() < 15.0 && (y - 125.0).abs() < 20.0,
        "{faces:?}"
    );
}

#[test]
fn blazeface_finds_the_astronaut_with_sensible_points() {
    let rt = runtime(2);
    let s = store();
    let det = BlazeFace::load(
        &rt,
        &s.read_verified("blazeface_front").unwrap(),
        &s.read_verified("blazeface_back").unwrap(),
    )
    .unwrap();
    let faces = det.detect(&load("astronaut.png")).unwrap();
    assert_eq!(faces.len(), 1, "{faces:#?}");
    let f = &faces[0];
    let (x, y) = centre(f);
    assert!(
        (x - 225.0).abs() < 15.0 && (y - 127.0).abs() < 20.0,
        "{f:?}"
    );
    // Eyes near (203,101) and (248,106) as seen on the photo.
    assert!(
        (f.kps[0][0] - 203.0).abs() < 8.0 && (f.kps[0][1] - 101.0).abs() < 8.0,
        "{f:?}"
    );
    assert!(
        (f.kps[1][0] - 248.0).abs() < 8.0 && (f.kps[1][1] - 106.0).abs() < 8.0,
        "{f:?}"
    );
}

#[test]
fn no_faces_in_a_blank_frame() {
    let rt = runtime(2);
    let s = store();
    let blank = Frame::filled(640, 360, [120, 120, 120]).unwrap();
    for kind in [DetectorKind::CenterFace, DetectorKind::BlazeFace] {
        assert!(
            load_detector(kind, &rt, &s)
                .unwrap()
                .detect(&blank)
                .unwrap()
                .is_empty(),
            "{kind}"
        );
    }
    // Odd and tiny sizes do not break the detectors.
    let tiny = Frame::filled(7, 3, [0, 0, 0]).unwrap();
    for kind in [DetectorKind::CenterFace, DetectorKind::BlazeFace] {
        assert!(
            load_detector(kind, &rt, &s)
                .unwrap()
                .detect(&tiny)
                .unwrap()
                .is_empty(),
            "{kind}"
        );
    }
}

#[test]
fn scrfd_without_its_model_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let empty = camshow_core::models::ModelStore::new(dir.path(), dir.path());
    let err = load_detector(DetectorKind::Scrfd, &runtime(1), &empty)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("camshow models fetch det_10g"), "{err}");
}

#[test]
fn the_gate_passes_the_sample_photos() {
    let gate = SafetyGate::load(&runtime(2), &store()).unwrap();
    for name in ["astronaut.png", "t1.jpg"] {
        let v = gate.ensure_safe(&load(name), name).unwrap();
        assert!(
            v.safe && v.max_unsafe_score < camshow_core::safety::UNSAFE_THRESHOLD,
            "{name}: {v:?}"
        );
        println!(
            "{name}: max unsafe score {:.3}, detections {:?}",
            v.max_unsafe_score, v.detections
        );
    }
    // (Which classes it sees where: the_real_gate_sees_each_sample_face_where_the_detector_does.)
}

#[test]
fn onnx_reader_on_the_real_files() {
    let s = store();
    let cf = s.read_verified("centerface").unwrap();
    let m = OnnxModel::parse(&cf).unwrap();
    assert_eq!(m.ir_version(), 4);
    let inputs = m.inputs().unwrap();
    assert_eq!(
        inputs.len(),
        1,
        "weights listed as inputs must be filtered out"
    );
    assert_eq!(inputs[0].name, "input.1");
    assert_eq!(inputs[0].dims, camshow_core::onnx::fixed(&[10, 3, 32, 32]));
    let outs: Vec<String> = m.outputs().unwrap().into_iter().map(|o| o.name).collect();
    assert_eq!(outs, ["537", "538", "539", "540"]);
    let n = m.initializer_count().unwrap();
    assert!(n > 100);
    let last = m.initializer(n - 1).unwrap();
    assert_eq!(last.dims.iter().product::<i64>() as usize, last.data.len());

    // Making the input dynamic keeps every weight byte-identical.
    let sym = |s: &str| Dim::Symbolic(s.into());
    let dynamic = m
        .with_io_shapes(&[("input.1", vec![sym("B"), Dim::Fixed(3), sym("H"), sym("W")])])
        .unwrap();
    let m2 = OnnxModel::parse(&dynamic).unwrap();
    assert_eq!(m2.inputs().unwrap()[0].dims[2], sym("H"));
    assert_eq!(m2.initializer(n - 1).unwrap(), last);
    assert_eq!(m2.initializer(0).unwrap(), m.initializer(0).unwrap());

    let nn = s.read_verified("nudenet").unwrap();
    let m = OnnxModel::parse(&nn).unwrap();
    let i = m.inputs().unwrap();
    assert_eq!(
        (i[0].name.as_str(), i[0].dims[1].clone()),
        ("images", Dim::Fixed(3))
    );
    assert_eq!(m.outputs().unwrap()[0].name, "output0");

    let bf = s.read_verified("blazeface_front").unwrap();
    let m = OnnxModel::parse(&bf).unwrap();
    assert_eq!(
        m.inputs().unwrap()[0].dims,
        camshow_core::onnx::fixed(&[1, 128, 128, 3])
    );
    assert_eq!(m.outputs().unwrap().len(), 4);
}

#[test]
fn explicit_provider_that_cannot_attach_is_an_error() {
    use camshow_core::runtime::{ExecutionProvider, Runtime, RuntimeSettings};
    let rt = Runtime::new(RuntimeSettings::explicit(&[
        ExecutionProvider::Cuda,
        ExecutionProvider::Cpu,
    ]))
    .unwrap();
    if ExecutionProvider::Cuda.compiled_in() && rt.probe_provider(ExecutionProvider::Cuda).is_ok() {
        return; // a GPU machine: the provider attaches, nothing to refuse
    }
    let err = CenterFace::load(&rt, &store().read_verified("centerface").unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("execution provider cuda was requested"),
        "{err}"
    );
    // The automatic choice falls back to CPU and says so.
    let auto = runtime(1);
    let det = CenterFace::load(&auto, &store().read_verified("centerface").unwrap()).unwrap();
    assert_eq!(
        det.models()[0].providers().last(),
        Some(&ExecutionProvider::Cpu)
    );
}

/// `photo` placed at (`x`, `y`) on a flat grey canvas of `w`×`h`.
fn in_canvas(photo: &Frame, w: u32, h: u32, x: u32, y: u32) -> Frame {
    let mut c = Frame::filled(w, h, [118, 118, 118]).unwrap();
    let (pw, ph) = (photo.width() as usize, photo.height() as usize);
    let row = pw * 3;
    for r in 0..ph {
        let dst = ((y as usize + r) * w as usize + x as usize) * 3;
        c.data_mut()[dst..dst + row].copy_from_slice(&photo.data()[r * row..(r + 1) * row]);
    }
    c
}

/// NudeNet's best score for the astronaut's face class: the harmless stand-in
/// for what the gate must see (no unsafe picture is ever shipped).
fn face_score(v: &camshow_core::safety::Verdict) -> f32 {
    v.detections
        .iter()
        .filter(|d| d.label == "FACE_FEMALE")
        .map(|d| d.score)
        .fold(0.0, f32::max)
}

#[test]
fn the_gate_sees_a_person_in_a_large_canvas() {
    let rt = runtime(2);
    let gate = SafetyGate::load(&rt, &store()).unwrap();
    let astronaut = load("astronaut.png");
    let reference = face_score(&gate.check(&astronaut).unwrap());
    assert!(
        reference > 0.5,
        "the portrait's face class scores {reference}"
    );
    let det = CenterFace::load(&rt, &store().read_verified("centerface").unwrap()).unwrap();
    let face = det.detect(&astronaut).unwrap()[0].bbox;
    for (w, h, x, y) in [
        (6000u32, 6000u32, 2717u32, 3131u32),
        (16000, 1000, 9001, 301),
    ] {
        let canvas = in_canvas(&astronaut, w, h, x, y);
        // Seen whole, the portrait shrinks to a few pixels: the old gate missed it.
        let whole = face_score(&gate.check(&canvas).unwrap());
        assert!(
            whole < reference - 0.3,
            "{w}×{h}: the whole picture scored {whole}"
        );
        // The tiles see it near native scale.
        let tiled = gate.check_tiles(&canvas).unwrap();
        let t = face_score(&tiled);
        assert!(
            (t - reference).abs() <= 0.1,
            "{w}×{h}: tiles {t} vs {reference}"
        );
        // So does the context crop around the face about to be swapped.
        let b = [
            face[0] + x as f32,
            face[1] + y as f32,
            face[2] + x as f32,
            face[3] + y as f32,
        ];
        let c = face_score(&gate.check_context(&canvas, &b).unwrap());
        assert!(
            (c - reference).abs() <= 0.1,
            "{w}×{h}: context crop {c} vs {reference}"
        );
        // Both report the face where it is in the canvas.
        let found = tiled
            .detections
            .iter()
            .find(|d| d.label == "FACE_FEMALE")
            .unwrap();
        assert!(
            found.bbox[0] >= x as f32 && found.bbox[2] <= (x + 512) as f32,
            "{:?}",
            found.bbox
        );
        println!(
            "{w}×{h}: portrait {reference:.3}, whole {whole:.3}, tiles {t:.3}, context {c:.3}"
        );
        // The full image check includes both.
        let all = gate.check_image(&canvas, &[b]).unwrap();
        assert!(face_score(&all) >= t.max(c) - 1e-6);
        assert!(all.safe);
    }
}

/// The label list published with the model: `nudenet/nudenet.py` in the
/// `nudenet` wheel that `scripts/setup.sh` downloads (kept in the cache).
fn published_nudenet_labels() -> Vec<String> {
    let wheels = camshow_core::paths::cache_dir().join("wheels");
    let wheel = std::fs::read_dir(&wheels)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("nudenet-") && n.ends_with(".whl")
        })
        .unwrap_or_else(|| {
            panic!(
                "no nudenet wheel in {}: run scripts/setup.sh",
                wheels.display()
            )
        });
    let py = std::process::Command::new("unzip")
        .args(["-p"])
        .arg(&wheel)
        .arg("nudenet/nudenet.py")
        .output()
        .unwrap();
    assert!(py.status.success());
    let src = String::from_utf8(py.stdout).unwrap();
    let start = src
        .find("__labels = [")
        .expect("no __labels list in nudenet.py");
    let list = &src[start..];
    let list = &list[list.find('[').unwrap() + 1..list.find(']').unwrap()];
    list.split(',')
        .map(|l| l.trim().trim_matches('"').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_gate_decodes_nudenet_with_the_label_order_published_with_the_model() {
    let published = published_nudenet_labels();
    assert_eq!(published.len(), 18);
    assert_eq!(
        camshow_core::safety::LABELS.to_vec(),
        published.iter().map(String::as_str).collect::<Vec<_>>(),
        "the label table differs from the one in the nudenet wheel"
    );
    // The classes that refuse are the exposed ones among them.
    for c in camshow_core::safety::UNSAFE_CLASSES {
        assert!(
            published.iter().any(|p| p == c) && c.ends_with("_EXPOSED"),
            "{c}"
        );
    }
}

#[test]
fn the_real_gate_sees_each_sample_face_where_the_detector_does() {
    let gate = SafetyGate::load(&runtime(2), &store()).unwrap();
    let cf = load_detector(DetectorKind::CenterFace, &runtime(2), &store()).unwrap();
    // The astronaut (a woman): one FACE_FEMALE on her face.
    let astro = load("astronaut.png");
    let face = cf.detect(&astro).unwrap()[0].bbox;
    let v = gate.check(&astro).unwrap();
    let faces: Vec<_> = v
        .detections
        .iter()
        .filter(|d| d.label.starts_with("FACE_"))
        .collect();
    assert_eq!(faces.len(), 1, "{v:?}");
    assert_eq!(faces[0].label, "FACE_FEMALE");
    assert!(faces[0].score > 0.5, "{v:?}");
    assert!(
        iou(faces[0].bbox, face) > 0.4,
        "{:?} vs the detector's {face:?}",
        faces[0].bbox
    );
    // The six people of t1, each seen in their context crop (as the gate
    // checks them before a swap): a face class on that face.
    let t1 = load("t1.jpg");
    let mut labels = Vec::new();
    for f in cf.detect(&t1).unwrap() {
        let v = gate.check_context(&t1, &f.bbox).unwrap();
        let (cx, cy) = centre(&f);
        let on_face = v
            .detections
            .iter()
            .filter(|d| d.label.starts_with("FACE_"))
            .find(|d| d.bbox[0] <= cx && cx <= d.bbox[2] && d.bbox[1] <= cy && cy <= d.bbox[3])
            .unwrap_or_else(|| panic!("no face class on the face at {:?}: {v:?}", f.bbox));
        labels.push(on_face.label);
    }
    assert_eq!(labels.len(), 6);
    println!("t1 faces: {labels:?}");
    assert!(
        labels.contains(&"FACE_MALE") && labels.contains(&"FACE_FEMALE"),
        "{labels:?}"
    );
}

fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    let area = |r: [f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter)
}
