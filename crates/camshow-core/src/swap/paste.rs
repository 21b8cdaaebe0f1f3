//! Pasting a swapped, aligned crop back into the frame.
//!
//! * [`paste_fast`]: Deep-Live-Cam's `_fast_paste_back` (the default). A
//!   feathered ellipse template (axes 0.44·size, Gaussian 31×31, σ 12) is
//!   warped with the crop into the crop's bounding rectangle only, and blended
//!   in integer arithmetic; pixels where the mask is 0 keep their exact value.
//! * [`paste_reference`]: insightface's `INSwapper.get(paste_back=True)`:
//!   the warped crop's footprint is eroded and blurred in proportion to the
//!   face size and blended in float. Computed on a margin around the face
//!   rather than the whole frame, which gives the same pixels.

use std::ops::Range;

use crate::frame::Frame;
use crate::geometry::{
    Affine, BATCH, Border, Line, Sampler, crop_bounds, interp_batch, inverse_f32, invert_affine,
    translate, warp_affine, warp_affine_f32,
};

/// `cv2.getGaussianKernel(n, sigma)` in float32 (σ ≤ 0 derives it from `n`).
pub fn gaussian_kernel(n: usize, sigma: f64) -> Vec<f32> {
    let sigma = if sigma > 0.0 {
        sigma
    } else {
        ((n as f64 - 1.0) * 0.5 - 1.0) * 0.3 + 0.8
    };
    let scale = -0.5 / (sigma * sigma);
    let mut k: Vec<f64> = (0..n)
        .map(|i| {
            let x = i as f64 - (n as f64 - 1.0) * 0.5;
            (scale * x * x).exp()
        })
        .collect();
    let sum: f64 = k.iter().sum();
    for v in &mut k {
        *v /= sum;
    }
    k.into_iter().map(|v| v as f32).collect()
}

fn reflect101(i: i64, n: i64) -> usize {
    if n == 1 {
        return 0;
    }
    let mut i = i;
    while i < 0 || i >= n {
        i = if i < 0 { -i } else { 2 * n - 2 - i };
    }
    i as usize
}

/// Separable Gaussian blur of a single-channel float image (`cv2.GaussianBlur`,
/// border `REFLECT_101`). Rows in parallel; each output is accumulated tap by
/// tap in kernel order.
pub fn gaussian_blur(src: &[f32], w: usize, h: usize, ksize: usize, sigma: f64) -> Vec<f32> {
    use rayon::prelude::*;
    if w == 0 || h == 0 {
        return Vec::new();
    }
    let k = gaussian_kernel(ksize, sigma);
    let r = (ksize / 2) as i64;
    let xs: Vec<usize> = (-r..w as i64 + r)
        .map(|i| reflect101(i, w as i64))
        .collect();
    let mut tmp = vec![0f32; w * h];
    tmp.par_chunks_mut(w).enumerate().for_each(|(y, out)| {
        let row = &src[y * w..(y + 1) * w];
        let padded: Vec<f32> = xs.iter().map(|&i| row[i]).collect();
        for (x, o) in out.iter_mut().enumerate() {
            let mut acc = 0f32;
            for (kv, p) in k.iter().zip(&padded[x..x + ksize]) {
                acc += kv * p;
            }
            *o = acc;
        }
    });
    let mut out = vec![0f32; w * h];
    out.par_chunks_mut(w).enumerate().for_each(|(y, o)| {
        for (j, kv) in k.iter().enumerate() {
            let sy = reflect101(y as i64 + j as i64 - r, h as i64);
            for (a, t) in o.iter_mut().zip(&tmp[sy * w..(sy + 1) * w]) {
                *a += kv * t;
            }
        }
    });
    out
}

/// Min filter with a `k`×`k` rectangle anchored at `(k/2, k/2)` (`cv2.erode`
/// with a ones kernel; samples outside the image are ignored).
pub fn erode(src: &[f32], w: usize, h: usize, k: usize) -> Vec<f32> {
    let a = (k / 2) as i64;
    let pass = |get: &dyn Fn(usize, usize) -> f32, len: usize, other: usize, horizontal: bool| {
        let mut out = vec![0f32; w * h];
        for o in 0..other {
            for i in 0..len {
                let mut m = f32::INFINITY;
                for d in 0..k as i64 {
                    let j = i as i64 + d - a;
                    if j >= 0 && (j as usize) < len {
                        let v = if horizontal {
                            get(j as usize, o)
                        } else {
                            get(o, j as usize)
                        };
                        m = m.min(v);
                    }
                }
                let idx = if horizontal { o * w + i } else { i * w + o };
                out[idx] = m;
            }
        }
        out
    };
    let h1 = pass(&|x, y| src[y * w + x], w, h, true);
    pass(&|x, y| h1[y * w + x], h, w, false)
}

/// A filled ellipse (centre, semi-axes in pixels) on a `size`×`size` canvas,
/// blurred by a `ksize` Gaussian of `sigma`: a feathered alpha template.
pub fn feathered_ellipse(
    size: u32,
    centre: (f64, f64),
    axes: (f64, f64),
    ksize: usize,
    sigma: f64,
) -> Vec<u8> {
    let s = size as usize;
    let mut m = vec![0f32; s * s];
    for y in 0..s {
        for x in 0..s {
            let (dx, dy) = (
                (x as f64 - centre.0) / axes.0,
                (y as f64 - centre.1) / axes.1,
            );
            if dx * dx + dy * dy <= 1.0 {
                m[y * s + x] = 255.0;
            }
        }
    }
    gaussian_blur(&m, s, s, ksize, sigma)
        .into_iter()
        .map(|v| v.round_ties_even().clamp(0.0, 255.0) as u8)
        .collect()
}

/// Deep-Live-Cam's alpha template for a `size`×`size` crop: a circle of
/// radius 0.44·size at the centre, Gaussian 31×31, σ 12.
pub fn ellipse_template(size: u32) -> Vec<u8> {
    let c = f64::from(size / 2);
    // OpenCV fills the ellipse as a 72-gon drawn with its outline, which
    // covers slightly more than the mathematical ellipse: radius + ½ px is the
    // closest simple rule (24 of 16 384 pixels differ at size 128).
    let axis = (f64::from(size) * 0.44).floor() + 0.5;
    feathered_ellipse(size, (c, c), (axis, axis), 31, 12.0)
}

/// `saturate(round(a·b/255))`, OpenCV `multiply(..., scale=1/255)` for u8,
/// in integers (a·b/255 is never within float error of a half, so this is
/// exactly the float product rounded; a test checks all 65 536 pairs).
#[allow(
    clippy::inline_always,
    reason = "inlined into the multiversioned row kernels, so compiled with their vector extensions"
)]
#[inline(always)]
fn mul255(a: u8, b: u8) -> u16 {
    let x = u32::from(a) * u32::from(b) + 128;
    ((x + (x >> 8)) >> 8) as u16
}

/// Pastes `crop` (aligned by `m`, source frame → crop) into `frame` with
/// the feathered ellipse `alpha` (from [`ellipse_template`] of the crop size).
/// Returns the rectangle that was touched.
///
/// One pass over the rectangle, rows in parallel: each pixel's crop position
/// is computed once, the alpha template sampled (border 0) and, only where it
/// is not zero, the crop sampled (border replicate) and blended, which gives
/// the same pixels as warping both and blending afterwards.
pub fn paste_fast(
    frame: &mut Frame,
    crop: &Frame,
    m: &Affine,
    alpha: &[u8],
) -> Option<(u32, u32, u32, u32)> {
    thread_local! {
        /// The RGBA copy of the last crop pasted on this thread, kept so
        /// that pasting allocates nothing after the first face.
        static RGBA: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    // A paste started on this thread while it waits for its own rows (work
    // stealing) finds the buffer busy and uses its own.
    RGBA.with(|cell| match cell.try_borrow_mut() {
        Ok(mut rgba) => paste_fast_with(frame, crop, m, alpha, &mut rgba),
        Err(_) => paste_fast_with(frame, crop, m, alpha, &mut Vec::new()),
    })
}

fn paste_fast_with(
    frame: &mut Frame,
    crop: &Frame,
    m: &Affine,
    alpha: &[u8],
    rgba: &mut Vec<u8>,
) -> Option<(u32, u32, u32, u32)> {
    let s = crop.width() as usize;
    // The crop and its alpha as one RGBA image: inside the crop one four-lane
    // interpolation gives both (the same floats as sampling each).
    rgba.resize(s * s * 4, 0);
    for ((o, p), &a) in rgba
        .chunks_exact_mut(4)
        .zip(crop.data().chunks_exact(3))
        .zip(alpha)
    {
        o.copy_from_slice(&[p[0], p[1], p[2], a]);
    }
    let kernel = FastPaste {
        rgba,
        s,
        alpha: Sampler::<u8, 1>::new(alpha, s, s, Border::Constant(0.0)),
        crop: Sampler::<u8, 3>::new(crop.data(), s, s, Border::Replicate),
    };
    // Outside the crop the alpha is 0 and pixels stay as they are: each row
    // is pasted only where it crosses the crop (the footprint's rectangle
    // around a tilted face is up to twice the crop's area).
    let edge = s as f32;
    for_each_row_in_footprint(frame, m, crop.width(), 2, |row, line| {
        let span = line.span_in(row.len() / 3, -1.0, edge);
        paste_fast_row(row, line, span, &kernel);
    })
}

/// What [`paste_fast`] samples: the crop with its alpha as RGBA, and each
/// on its own (with its own border) for positions at the crop's edge.
struct FastPaste<'a> {
    rgba: &'a [u8],
    s: usize,
    alpha: Sampler<'a, u8, 1>,
    crop: Sampler<'a, u8, 3>,
}

/// One row of [`paste_fast`]: batches of RGBA interpolations through
/// [`interp_batch`] (positions at the crop's edge take each image's own
/// border), then the blend. Compiled for the vector extensions the CPU has.
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1"))]
fn paste_fast_row<'a>(row: &mut [u8], line: Line, span: Range<usize>, k: &FastPaste<'a>) {
    let n = span.end.min(row.len() / 3);
    let mut start = span.start;
    while start < n {
        let len = (n - start).min(BATCH);
        let (inside, v) = interp_batch((k.rgba, k.s, k.s), 4, line, start, len);
        let pixels = &mut row[start * 3..(start + len) * 3];
        // The frame's pixels as planes, blended lane by lane (vector loops;
        // where the alpha is 0 the blend gives the pixel back unchanged).
        let mut o = [[0u8; BATCH]; 3];
        for (l, px) in pixels.chunks_exact(3).enumerate() {
            for (c, plane) in o.iter_mut().enumerate() {
                plane[l] = px[c];
            }
        }
        for (c, plane) in o.iter_mut().enumerate() {
            for l in 0..BATCH {
                let al = v[3][l];
                plane[l] = (mul255(v[c][l], al) + mul255(plane[l], 255 - al)).min(255) as u8;
            }
        }
        for (l, px) in pixels.chunks_exact_mut(3).enumerate() {
            if inside[l] {
                for (c, p) in px.iter_mut().enumerate() {
                    *p = o[c][l];
                }
                continue;
            }
            let (sx, sy) = line.at(start + l);
            let [al] = k.alpha.sample_u8(sx, sy);
            if al == 0 {
                continue;
            }
            for (o, v) in px.iter_mut().zip(k.crop.sample_u8(sx, sy)) {
                let v = mul255(v, al) + mul255(*o, 255 - al);
                *o = v.min(255) as u8;
            }
        }
        start += len;
    }
}

/// Calls `f(pixel, sx, sy)`, rows in parallel, for every pixel of the frame
/// rectangle that a `size`×`size` crop aligned by `m` (frame → crop) covers
/// (floor/ceil of its corners, grown by `pad`, clamped), with the pixel's
/// position in the crop computed as OpenCV 5's warp does. Returns the rectangle.
pub(crate) fn for_each_in_footprint(
    frame: &mut Frame,
    m: &Affine,
    size: u32,
    pad: i64,
    f: impl Fn(&mut [u8], f32, f32) + Sync,
) -> Option<(u32, u32, u32, u32)> {
    for_each_row_in_footprint(frame, m, size, pad, |row, line| {
        for (xx, px) in row.chunks_exact_mut(3).enumerate() {
            let (sx, sy) = line.at(xx);
            f(px, sx, sy);
        }
    })
}

/// [`for_each_in_footprint`] a row at a time: `f(row, line)` with the row's
/// pixels inside the rectangle and their crop positions.
fn for_each_row_in_footprint(
    frame: &mut Frame,
    m: &Affine,
    size: u32,
    pad: i64,
    f: impl Fn(&mut [u8], Line) + Sync,
) -> Option<(u32, u32, u32, u32)> {
    use rayon::prelude::*;
    let inv = invert_affine(m);
    let (x1, y1, w, h) = crop_bounds(&inv, size, pad, frame.width(), frame.height())?;
    let local = translate(&inv, f64::from(x1), f64::from(y1));
    let inv32 = inverse_f32(&local);
    let stride = frame.width() as usize * 3;
    let rows = &mut frame.data_mut()[y1 as usize * stride..(y1 + h) as usize * stride];
    rows.par_chunks_mut(stride)
        .enumerate()
        .for_each(|(yy, row)| {
            let line = Line::of_row(inv32, yy);
            f(&mut row[x1 as usize * 3..(x1 + w) as usize * 3], line);
        });
    Some((x1, y1, w, h))
}

/// insightface's paste-back: footprint mask thresholded, eroded by
/// `max(size/10, 10)`, blurred by `2·max(size/20, 5) + 1`, float blend,
/// truncated to u8. `size` is √(h·w) of the footprint's extent.
pub fn paste_reference(
    frame: &mut Frame,
    crop: &Frame,
    m: &Affine,
) -> Option<(u32, u32, u32, u32)> {
    let cs = crop.width();
    let inv = invert_affine(m);
    let (fw, fh) = (frame.width(), frame.height());
    let (bx, by, bw, bh) = crop_bounds(&inv, cs, 0, fw, fh)?;
    // Footprint extent decides the kernel sizes, so find it first on the tight box.
    let tight = translate(&inv, f64::from(bx), f64::from(by));
    let white = vec![255f32; (cs * cs) as usize];
    let foot = warp_affine_f32(
        &white,
        cs as usize,
        cs as usize,
        &tight,
        bw as usize,
        bh as usize,
        Border::Constant(0.0),
    );
    let (mut rmin, mut rmax, mut cmin, mut cmax) = (usize::MAX, 0, usize::MAX, 0);
    for (i, v) in foot.iter().enumerate() {
        if *v > 20.0 {
            let (r, c) = (i / bw as usize, i % bw as usize);
            rmin = rmin.min(r);
            rmax = rmax.max(r);
            cmin = cmin.min(c);
            cmax = cmax.max(c);
        }
    }
    if rmin == usize::MAX {
        return None;
    }
    let mask_size = (((rmax - rmin) * (cmax - cmin)) as f64).sqrt() as usize;
    let ek = (mask_size / 10).max(10);
    let bk = 2 * (mask_size / 20).max(5) + 1;
    // Work on the box grown by the blur radius twice, so reflection at the work
    // area's edge only ever sees zeros, exactly as on the full frame.
    let margin = bk as u32 + 2;
    let x1 = bx.saturating_sub(margin);
    let y1 = by.saturating_sub(margin);
    let x2 = (bx + bw + margin).min(fw);
    let y2 = (by + bh + margin).min(fh);
    let (w, h) = ((x2 - x1) as usize, (y2 - y1) as usize);
    let local = translate(&inv, f64::from(x1), f64::from(y1));
    let fake = warp_affine(crop, &local, w as u32, h as u32, Border::Constant(0.0));
    let mut mask = warp_affine_f32(
        &white,
        cs as usize,
        cs as usize,
        &local,
        w,
        h,
        Border::Constant(0.0),
    );
    for v in &mut mask {
        if *v > 20.0 {
            *v = 255.0;
        }
    }
    let mask = erode(&mask, w, h, ek);
    let mask = gaussian_blur(&mask, w, h, bk, 0.0);
    let stride = fw as usize;
    let data = frame.data_mut();
    for yy in 0..h {
        for xx in 0..w {
            let mv = mask[yy * w + xx] / 255.0;
            if mv == 0.0 {
                continue;
            }
            let fi = ((y1 as usize + yy) * stride + x1 as usize + xx) * 3;
            let ci = (yy * w + xx) * 3;
            for c in 0..3 {
                let v = mv * f32::from(fake.data()[ci + c]) + (1.0 - mv) * f32::from(data[fi + c]);
                data[fi + c] = v.clamp(0.0, 255.0) as u8;
            }
        }
    }
    Some((x1, y1, w as u32, h as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_mul255_is_the_rounded_float_product() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let v = f32::from(a) * f32::from(b) * (1.0 / 255.0);
                let want = crate::geometry::round_even(v) as u16;
                assert_eq!(mul255(a, b), want, "{a}·{b}/255");
            }
        }
    }

    #[test]
    fn kernel_matches_opencv() {
        // cv2.getGaussianKernel(5, 0) == [0.0625, 0.25, 0.375, 0.25, 0.0625] comes from a fixed table;
        // for n=11, sigma 0: sigma = 2.0
        let k = gaussian_kernel(11, 0.0);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((k[5] - 0.199_471_14 / 1.0).abs() < 2e-3, "{k:?}");
        assert!(k.windows(2).take(5).all(|w| w[0] < w[1]));
    }

    #[test]
    fn erode_shrinks_by_the_anchor() {
        let (w, h) = (12, 1);
        let mut m = vec![0f32; w];
        for v in &mut m[3..9] {
            *v = 255.0;
        }
        let e = erode(&m, w, h, 4);
        // anchor 2: out[i] = min(in[i-2..=i+1])
        assert_eq!(
            e.iter().map(|v| (*v > 0.0) as u8).collect::<Vec<_>>(),
            vec![0u8, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
        );
    }

    #[test]
    fn template_is_feathered_and_symmetric() {
        let t = ellipse_template(128);
        assert_eq!(t[64 * 128 + 64], 255);
        assert_eq!(t[0], 0);
        assert!(t[64 * 128 + 8] > 0 && t[64 * 128 + 8] < 255);
        // Symmetric about the centre (64, 64) away from the border, where REFLECT_101 is not.
        for y in 20..108 {
            for x in 20..108 {
                assert_eq!(t[y * 128 + x], t[y * 128 + (128 - x)], "({x},{y})");
            }
        }
    }

    #[test]
    fn fast_paste_equals_warping_crop_and_alpha_then_blending() {
        // Deep-Live-Cam's steps, one by one: warp the crop (replicate) and the
        // alpha (zeros) into the footprint rectangle, blend where alpha > 0.
        let pattern = |w: u32, h: u32| {
            let data = (0..w * h * 3)
                .map(|i| (i * 37 + i / 7 * 11) as u8)
                .collect();
            Frame::from_rgb(w, h, data).unwrap()
        };
        let frame = pattern(320, 240);
        // Two crop sizes in turn: the RGBA buffer kept between pastes changes size.
        for (size, m) in [128u32, 96, 128, 96].into_iter().zip([
            [[0.61, 0.23, -52.7], [-0.23, 0.61, 11.3]],
            [[1.9, -0.4, -120.2], [0.4, 1.9, -301.9]],
            [[0.5, 0.0, -20.0], [0.0, 0.5, -30.0]],
            [[0.7, 0.1, -40.0], [-0.1, 0.7, -20.0]],
        ]) {
            let (crop, alpha) = (pattern(size, size), ellipse_template(size));
            let mut fast = frame.clone();
            let (x1, y1, w, h) = paste_fast(&mut fast, &crop, &m, &alpha).unwrap();
            let local = translate(&invert_affine(&m), f64::from(x1), f64::from(y1));
            let fake = warp_affine(&crop, &local, w, h, Border::Replicate);
            let al = crate::geometry::warp_affine_gray(
                &alpha,
                size as usize,
                size as usize,
                &local,
                w as usize,
                h as usize,
                Border::Constant(0.0),
            );
            let mut want = frame.clone();
            for y in 0..h {
                for x in 0..w {
                    let a = al[(y * w + x) as usize];
                    if a == 0 {
                        continue;
                    }
                    let f = fake.pixel(x, y);
                    let o = want.pixel(x1 + x, y1 + y);
                    let blended: [u8; 3] = std::array::from_fn(|c| {
                        (mul255(f[c], a) + mul255(o[c], 255 - a)).min(255) as u8
                    });
                    let i = (((y1 + y) * want.width() + x1 + x) * 3) as usize;
                    want.data_mut()[i..i + 3].copy_from_slice(&blended);
                }
            }
            assert!(fast.data() == want.data(), "{m:?}");
        }
    }

    #[test]
    fn fast_paste_leaves_everything_outside_the_mask_untouched() {
        let mut frame = Frame::filled(200, 150, [10, 20, 30]).unwrap();
        let orig = frame.clone();
        let crop = Frame::filled(128, 128, [250, 240, 230]).unwrap();
        let m: Affine = [[1.0, 0.0, -40.0], [0.0, 1.0, -10.0]];
        let rect = paste_fast(&mut frame, &crop, &m, &ellipse_template(128)).unwrap();
        assert_eq!(rect, (38, 8, 132, 132));
        assert_eq!(frame.pixel(40 + 64, 10 + 64), [250, 240, 230]);
        assert_eq!(frame.pixel(41, 11), orig.pixel(41, 11));
        for y in 0..150 {
            for x in 0..200 {
                let inside = (38..170).contains(&x) && (8..140).contains(&y);
                if !inside {
                    assert_eq!(frame.pixel(x, y), orig.pixel(x, y));
                }
            }
        }
    }

    #[test]
    fn reference_paste_blends_inside_only() {
        let mut frame = Frame::filled(300, 300, [0, 0, 0]).unwrap();
        let crop = Frame::filled(128, 128, [200, 200, 200]).unwrap();
        let m: Affine = [[0.8, 0.0, -50.0], [0.0, 0.8, -60.0]];
        let (x, y, w, h) = paste_reference(&mut frame, &crop, &m).unwrap();
        let centre = frame.pixel(62 + 80, 75 + 80);
        assert!(centre[0] >= 198, "{centre:?}");
        assert_eq!(frame.pixel(5, 5), [0, 0, 0]);
        assert!(x + w <= 300 && y + h <= 300);
    }
}
