//! Each frame processor's own work (everything but the network) on one face
//! of ~200 px in a 720p frame: enhancer alignment and paste-back, the mask
//! post-processing, mouth mask, colour match, opacity, masked sharpening,
//! seamless paste and pixel-boost interleaving.
//!
//! `cargo bench -p camshow-core --bench processors`

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use camshow_core::Frame;
use camshow_core::geometry::{
    Border, FFHQ_512, crop_bounds, estimate_norm, invert_affine, umeyama, warp_affine,
};
use camshow_core::process::enhancer::paste_blend;
use camshow_core::process::finish::{
    apply_opacity, colour_match_crop, mask_in_frame, paste_seamless, sharpen_masked,
};
use camshow_core::process::masks::{box_mask, occlusion_postprocess};
use camshow_core::process::mouth::apply_mouth_mask;
use camshow_core::swap::paste::{ellipse_template, paste_fast};
use camshow_core::swap::pixel_boost::{explode, implode};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn frame(w: u32, h: u32) -> Frame {
    camshow_test_utils::pattern_frame(w, h)
}

fn bench(c: &mut Criterion) {
    let f = frame(1280, 720);
    let (cx, cy, k) = (640.0f32, 360.0f32, 2.0f32);
    let kps = [
        [cx - 20.0 * k, cy - 15.0 * k],
        [cx + 20.0 * k, cy - 15.0 * k],
        [cx, cy + 5.0 * k],
        [cx - 15.0 * k, cy + 25.0 * k],
        [cx + 15.0 * k, cy + 25.0 * k],
    ];
    let mut g = c.benchmark_group("processors_720p_one_face");

    // face_enhancer (512 crop): align, paste + blend; the box mask is built once at load.
    let m512 = umeyama(&kps, &FFHQ_512).unwrap();
    g.bench_function("enhancer_align_512", |b| {
        b.iter(|| {
            black_box(warp_affine(
                black_box(&f),
                &m512,
                512,
                512,
                Border::Replicate,
            ))
        });
    });
    let crop512 = warp_affine(&f, &m512, 512, 512, Border::Replicate);
    let bm = box_mask(512, 0.3, [0.0; 4]);
    g.bench_function("enhancer_paste_blend_512", |b| {
        b.iter_batched(
            || f.clone(),
            |mut fr| black_box(paste_blend(&mut fr, &crop512, &m512, &bm, 0.8)),
            BatchSize::LargeInput,
        );
    });
    g.bench_function("box_mask_512_at_load", |b| {
        b.iter(|| black_box(box_mask(512, 0.3, [0.0; 4])));
    });

    // Occlusion mask post-processing (the network's 256² output to a 128 crop).
    let raw = vec![0.7f32; 256 * 256];
    g.bench_function("occlusion_post_128", |b| {
        b.iter(|| black_box(occlusion_postprocess(black_box(&raw), 256, 128, 128)));
    });

    // face_swapper finishing at inswapper's 128 crop.
    let m128 = estimate_norm(&kps, 128).unwrap();
    let crop128 = warp_affine(&f, &m128, 128, 128, Border::Constant(0.0));
    let alpha = ellipse_template(128);
    g.bench_function("colour_match_128", |b| {
        b.iter_batched(
            || crop128.clone(),
            |mut cr| {
                colour_match_crop(
                    &mut cr,
                    &warp_affine(&f, &m128, 128, 128, Border::Replicate),
                    &alpha,
                );
            },
            BatchSize::SmallInput,
        );
    });
    let rect = crop_bounds(&invert_affine(&m128), 128, 2, 1280, 720).unwrap();
    let original = f.clone();
    g.bench_function("opacity", |b| {
        b.iter_batched(
            || f.clone(),
            |mut fr| apply_opacity(&mut fr, &original, rect, 0.8),
            BatchSize::LargeInput,
        );
    });
    let mask = mask_in_frame(&alpha, 128, &m128, rect);
    g.bench_function("sharpen_masked", |b| {
        b.iter_batched(
            || f.clone(),
            |mut fr| sharpen_masked(&mut fr, rect, &mask, 1.0),
            BatchSize::LargeInput,
        );
    });
    g.bench_function("paste_fast_reference_point", |b| {
        b.iter_batched(
            || f.clone(),
            |mut fr| black_box(paste_fast(&mut fr, &crop128, &m128, &alpha)),
            BatchSize::LargeInput,
        );
    });
    g.bench_function("paste_seamless", |b| {
        b.iter_batched(
            || f.clone(),
            |mut fr| black_box(paste_seamless(&mut fr, &crop128, &m128, &alpha)),
            BatchSize::LargeInput,
        );
    });
    let mut lm = vec![[0f32; 2]; 106];
    for (n, i) in (52..=63).enumerate() {
        let t = n as f32 / 12.0 * std::f32::consts::TAU;
        lm[i] = [cx + 30.0 * t.cos(), cy + 50.0 + 12.0 * t.sin()];
    }
    let swapped = frame(1280, 720);
    g.bench_function("mouth_mask_40", |b| {
        b.iter_batched(
            || swapped.clone(),
            |mut fr| black_box(apply_mouth_mask(&mut fr, &original, &lm, 40, false)),
            BatchSize::LargeInput,
        );
    });

    // Pixel boost 512: implode + explode (16 sub-images).
    let m_boost = umeyama(
        &kps,
        &camshow_core::geometry::arcface_template(128).map(|p| [p[0] * 4.0, p[1] * 4.0]),
    )
    .unwrap();
    let boost_crop = warp_affine(&f, &m_boost, 512, 512, Border::Constant(0.0));
    g.bench_function("pixel_boost_512_interleave", |b| {
        b.iter(|| black_box(explode(&implode(black_box(&boost_crop), 128).unwrap(), 128).unwrap()));
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
