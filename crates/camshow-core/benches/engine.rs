//! The engine's own work per frame, at 720p and 1080p: letterbox + blob,
//! SCRFD decode + NMS, crop warps, both paste-backs, and the whole
//! detect → align → swap → paste path with trivial stand-in models (so the
//! figure is our code, not the network).
//!
//! `cargo bench -p camshow-core --bench engine` (needs `scripts/setup.sh` for the safety model).

#![allow(clippy::unwrap_used, missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use camshow_core::context::EngineContext;
use camshow_core::detect::{Face, FaceDetector, Scrfd, scrfd};
use camshow_core::geometry::{Border, estimate_norm, warp_affine};
use camshow_core::imgproc::letterbox_blob;
use camshow_core::models::ModelStore;
use camshow_core::pipeline::SwapEngine;
use camshow_core::runtime::{Runtime, RuntimeSettings, TensorF32};
use camshow_core::select::SelectMode;
use camshow_core::session::{FrameSession, SourcePlan};
use camshow_core::settings::Settings;
use camshow_core::swap::SwapperChoice;
use camshow_core::swap::paste::{ellipse_template, paste_fast, paste_reference};
use camshow_core::{Frame, detect::DetectorKind};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// The system allocator, counting what Rust code allocates (ONNX Runtime's
/// own C++ allocations are not seen), for the per-frame figure below.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters are plain atomics with no effect on the memory handed out.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: as for `alloc`; `ptr` came from `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Allocations and bytes Rust code asks for per call of `f`, over `n` calls
/// after `n` to warm up.
fn allocated_per_call(n: u64, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..n {
        f();
    }
    let (a0, b0) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    for _ in 0..n {
        f();
    }
    let (a1, b1) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    ((a1 - a0) as f64 / n as f64, (b1 - b0) as f64 / n as f64)
}

fn frame(w: u32, h: u32) -> Frame {
    camshow_test_utils::pattern_frame(w, h)
}

/// A face of ~200 px in the middle of a `w`×`h` frame.
fn face_in(w: u32, h: u32) -> Face {
    let (cx, cy, s) = (w as f32 / 2.0, h as f32 / 2.0, h as f32 / 3.6);
    let k = s / 100.0;
    Face {
        bbox: [cx - s / 2.0, cy - s / 2.0, cx + s / 2.0, cy + s / 2.0],
        score: 0.9,
        kps: [
            [cx - 20.0 * k, cy - 15.0 * k],
            [cx + 20.0 * k, cy - 15.0 * k],
            [cx, cy + 5.0 * k],
            [cx - 15.0 * k, cy + 25.0 * k],
            [cx + 15.0 * k, cy + 25.0 * k],
        ],
        landmarks_106: None,
        embedding: None,
    }
}

/// `face` with its points turned by `degrees` about its centre (a tilted head).
fn tilted(face: &Face, degrees: f32) -> Face {
    let (cx, cy) = (
        f32::midpoint(face.bbox[0], face.bbox[2]),
        f32::midpoint(face.bbox[1], face.bbox[3]),
    );
    let (s, c) = degrees.to_radians().sin_cos();
    let mut out = face.clone();
    for p in &mut out.kps {
        let (dx, dy) = (p[0] - cx, p[1] - cy);
        *p = [cx + c * dx - s * dy, cy + s * dx + c * dy];
    }
    out
}

fn parity(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/parity")
        .join(name)
}

fn bench(c: &mut Criterion) {
    for (label, w, h) in [("720p", 1280u32, 720u32), ("1080p", 1920, 1080)] {
        let f = frame(w, h);
        let face = face_in(w, h);
        let mut g = c.benchmark_group(format!("engine_{label}"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("letterbox_blob_640", |b| {
            b.iter(|| black_box(letterbox_blob(black_box(&f), 640, 640, 127.5, 128.0)));
        });
        let mut buf = camshow_core::imgproc::BlobBuffer::default();
        g.bench_function("letterbox_blob_640_reused", |b| {
            b.iter(|| {
                black_box(camshow_core::imgproc::letterbox_blob_into(
                    black_box(&f),
                    640,
                    640,
                    127.5,
                    128.0,
                    &mut buf,
                ))
            });
        });
        let m = estimate_norm(&face.kps, 128).unwrap();
        g.bench_function("warp_crop_128", |b| {
            b.iter(|| {
                black_box(warp_affine(
                    black_box(&f),
                    &m,
                    128,
                    128,
                    Border::Constant(0.0),
                ))
            });
        });
        let crop = warp_affine(&f, &m, 128, 128, Border::Constant(0.0));
        let alpha = ellipse_template(128);
        g.bench_function("paste_fast", |b| {
            b.iter_batched(
                || f.clone(),
                |mut fr| black_box(paste_fast(&mut fr, &crop, &m, &alpha)),
                BatchSize::LargeInput,
            );
        });
        // A head tilted by 30°: the footprint's rectangle is 1.9× the crop.
        let tilt = estimate_norm(&tilted(&face, 30.0).kps, 128).unwrap();
        g.bench_function("paste_fast_tilted_30", |b| {
            b.iter_batched(
                || f.clone(),
                |mut fr| black_box(paste_fast(&mut fr, &crop, &tilt, &alpha)),
                BatchSize::LargeInput,
            );
        });
        g.bench_function("paste_reference", |b| {
            b.iter_batched(
                || f.clone(),
                |mut fr| black_box(paste_reference(&mut fr, &crop, &m)),
                BatchSize::LargeInput,
            );
        });
        g.finish();
    }

    // SCRFD decode + NMS on outputs with ~300 candidates.
    let mut seed = 7u32;
    let mut rnd = || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 8) as f32 / 16_777_216.0
    };
    let mut outs = Vec::new();
    for (c, scale) in [(1usize, 1.0f32), (4, 3.0), (10, 2.0)] {
        for stride in [8usize, 16, 32] {
            let n = (640 / stride) * (640 / stride) * 2;
            let data: Vec<f32> = (0..n * c)
                .map(|_| {
                    if c == 1 {
                        rnd().powi(40) * 1.2
                    } else {
                        rnd() * scale
                    }
                })
                .collect();
            outs.push(TensorF32 {
                shape: vec![n, c],
                data,
            });
        }
    }
    let outs: Vec<&[f32]> = outs.iter().map(|t| t.data.as_slice()).collect();
    c.bench_function("scrfd_decode_nms", |b| {
        b.iter(|| black_box(scrfd::decode(black_box(&outs), 640, 0.5, 0.5).unwrap()));
    });

    // The whole per-frame path with stand-in models (safety gate sampled elsewhere, not per frame).
    let rt = Runtime::new(RuntimeSettings::auto(1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scrfd_path =
        camshow_core::standin::write(dir.path(), &[camshow_core::standin::CHEAP_DET_10G])
            .unwrap()
            .remove(0)
            .1;
    let store = ModelStore::open_default()
        .with_override("det_10g", &scrfd_path)
        .unwrap()
        .with_override("inswapper_128", parity("inswapper_128.onnx"))
        .unwrap()
        .with_override("w600k_r50", parity("w600k_r50.onnx"))
        .unwrap();
    // The runtime's own settings, so that engines share its context.
    let mut settings = Settings {
        runtime: rt.options().clone(),
        ..Settings::default()
    };
    settings.engine.detector = DetectorKind::Scrfd;
    settings.engine.swapper = SwapperChoice::Inswapper;
    settings.engine.selector = SelectMode::One;
    let ctx = EngineContext::new(rt.clone(), store.clone());
    let engine = SwapEngine::load(&ctx, &settings).unwrap();
    let f720 = frame(1280, 720);
    let det = Scrfd::load(&rt, &std::fs::read(&scrfd_path).unwrap()).unwrap();
    assert_eq!(
        det.detect(&f720).unwrap().len(),
        1,
        "the stand-in detector must find one face"
    );
    let source = engine.prepare_source(&astronaut()).unwrap();
    let mut session = FrameSession::still(SourcePlan::one(source.clone()), &settings.engine);
    // What a frame allocates after warm-up (goal: nothing), printed with the
    // timings. The frame itself is processed in place, so one buffer is
    // reused here as a live stream reuses its capture buffer.
    let mut fr = f720.clone();
    let (allocs, bytes) = allocated_per_call(50, || {
        fr.data_mut().copy_from_slice(f720.data());
        session.process(&engine, &mut fr).unwrap();
    });
    println!(
        "pipeline_720p_one_face: {allocs:.1} allocations, {:.1} KiB per frame from Rust code (ONNX Runtime's own not counted)",
        bytes / 1024.0
    );
    bench_pipeline(
        c,
        "pipeline_720p_one_face",
        (&engine, &mut session),
        &f720,
        1,
    );

    // Two faces, both swapped: the second face's cost is the difference.
    let two_path = dir.path().join("det_10g_two_faces.onnx");
    std::fs::write(
        &two_path,
        camshow_core::standin::cheap_det_10g_at(&[(5, 5), (15, 5)]),
    )
    .unwrap();
    let mut many = settings.clone();
    many.engine.selector = SelectMode::Many;
    let two_store = store.clone().with_override("det_10g", &two_path).unwrap();
    let two_engine = SwapEngine::load(&EngineContext::new(rt.clone(), two_store), &many).unwrap();
    let mut two_session = FrameSession::still(SourcePlan::one(source.clone()), &many.engine);
    bench_pipeline(
        c,
        "pipeline_720p_two_faces",
        (&two_engine, &mut two_session),
        &f720,
        2,
    );

    // An option change on a loaded engine (models from the context's cache)
    // against loading the same engine from scratch.
    let mut g = c.benchmark_group("settings_change");
    let mut changed = settings.clone();
    changed.set_key("processors[0].opacity", "0.5").unwrap();
    changed.set_key("processors[0].sharpness", "1").unwrap();
    g.bench_function("reconfigure_option", |b| {
        b.iter(|| black_box(engine.reconfigure(black_box(&changed)).unwrap()));
    });
    g.bench_function("fresh_load", |b| {
        b.iter(|| {
            let ctx = EngineContext::new(rt.clone(), store.clone());
            black_box(SwapEngine::load(&ctx, black_box(&changed)).unwrap())
        });
    });
    g.finish();
}

/// The whole per-frame path on copies of `frame`, which must have `faces`
/// faces swapped each time.
fn bench_pipeline(
    c: &mut Criterion,
    group: &str,
    (engine, session): (&SwapEngine, &mut FrameSession),
    frame: &Frame,
    faces: usize,
) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    g.bench_function("detect_align_swap_paste", |b| {
        b.iter_batched(
            || frame.clone(),
            |mut fr| {
                let r = session.process(engine, &mut fr).unwrap();
                assert_eq!(r.faces_swapped, faces);
                black_box(fr)
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

/// The astronaut photo (the source face), decoded with the `image` crate.
fn astronaut() -> Frame {
    let p = camshow_core::paths::cache_dir().join("samples/astronaut.png");
    let img = image::open(&p)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup.sh", p.display()))
        .to_rgb8();
    let (w, h) = img.dimensions();
    Frame::from_rgb(w, h, img.into_raw()).unwrap()
}

/// The gate's cost on still pictures: the whole picture alone against the
/// whole picture plus tiles, on photos with texture everywhere (no tile is
/// skipped as flat), and one context crop.
fn gate(c: &mut Criterion) {
    let rt = Runtime::new(RuntimeSettings::auto(0)).unwrap();
    let gate = camshow_core::safety::SafetyGate::load(&rt, &ModelStore::open_default())
        .unwrap_or_else(|e| panic!("{e}; run scripts/setup.sh"));
    let photo = astronaut();
    let mut g = c.benchmark_group("safety_gate");
    g.sample_size(10);
    for (w, h) in [(1280u32, 720u32), (1920, 1080), (4000, 3000)] {
        let big = camshow_core::imgproc::resize_bilinear(&photo, w, h);
        let n = camshow_core::safety::tiles(w, h).len();
        g.bench_function(format!("whole_{w}x{h}"), |b| {
            b.iter(|| black_box(gate.check(black_box(&big)).unwrap()));
        });
        g.bench_function(format!("whole_and_{n}_tiles_{w}x{h}"), |b| {
            b.iter(|| black_box(gate.check_image(black_box(&big), &[]).unwrap()));
        });
    }
    g.bench_function("one_context_crop", |b| {
        b.iter(|| {
            black_box(
                gate.check_context(&photo, &[180.0, 60.0, 330.0, 250.0])
                    .unwrap(),
            )
        });
    });
    g.finish();
}

criterion_group! {
    name = gate_benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(5)).warm_up_time(std::time::Duration::from_secs(1));
    targets = gate
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches, gate_benches);
