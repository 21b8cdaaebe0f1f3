//! Pixel work shared by the models: resizing, letterboxing and tensor blobs.

use crate::frame::Frame;

const COEF_BITS: u32 = 11;
const COEF_SCALE: i32 = 1 << COEF_BITS;

/// Per-axis source index and fixed-point weights, as OpenCV's INTER_LINEAR
/// computes them (half-pixel centres, edge clamp, 11-bit weights).
fn linear_taps(src: u32, dst: u32) -> Vec<(usize, usize, i32, i32)> {
    let scale = f64::from(src) / f64::from(dst);
    (0..dst)
        .map(|d| {
            let f = (f64::from(d) + 0.5) * scale - 0.5;
            let mut s = f.floor() as i64;
            let mut frac = f - s as f64;
            if s < 0 {
                s = 0;
                frac = 0.0;
            }
            if s >= i64::from(src) - 1 {
                s = i64::from(src) - 1;
                frac = 0.0;
            }
            let w1 = (frac * f64::from(COEF_SCALE)).round() as i32;
            let s = s as usize;
            let s1 = (s + 1).min(src as usize - 1);
            (s, s1, COEF_SCALE - w1, w1)
        })
        .collect()
}

/// Variance of the 4-neighbour Laplacian of the luma: a sharpness measure
/// (a blurred photo scores low). 0 for frames smaller than 3×3.
pub fn laplacian_variance(frame: &Frame) -> f64 {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    if w < 3 || h < 3 {
        return 0.0;
    }
    let d = frame.data();
    let luma = |x: usize, y: usize| {
        let i = (y * w + x) * 3;
        0.299 * f64::from(d[i]) + 0.587 * f64::from(d[i + 1]) + 0.114 * f64::from(d[i + 2])
    };
    let (mut sum, mut sq, mut n) = (0.0, 0.0, 0.0);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let l = luma(x - 1, y) + luma(x + 1, y) + luma(x, y - 1) + luma(x, y + 1)
                - 4.0 * luma(x, y);
            sum += l;
            sq += l * l;
            n += 1.0;
        }
    }
    let mean = sum / n;
    (sq / n - mean * mean).max(0.0)
}

/// Bilinear resize with OpenCV INTER_LINEAR semantics (results agree with
/// `cv2.resize` to within one level).
pub fn resize_bilinear(src: &Frame, width: u32, height: u32) -> Frame {
    if src.width() == width && src.height() == height {
        return src.clone();
    }
    resize_within(src, (src.width(), src.height()), width, height)
}

/// [`resize_bilinear`] of `src` padded with black at the bottom and right
/// to a square of its larger side (NudeNet's own preprocessing), without
/// making the padded copy: samples past the picture are black.
pub fn resize_padded_square(src: &Frame, width: u32, height: u32) -> Frame {
    let side = src.width().max(src.height());
    resize_within(src, (side, side), width, height)
}

/// The resize of a `canvas` (at least `src`'s size) that holds `src` at its
/// top left and black elsewhere.
fn resize_within(src: &Frame, canvas: (u32, u32), width: u32, height: u32) -> Frame {
    let xs = linear_taps(canvas.0, width);
    let ys = linear_taps(canvas.1, height);
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    let data = src.data();
    let mut out = vec![0u8; width as usize * height as usize * 3];
    // One horizontally-resized row per source row in use, cached for reuse.
    let mut cache: [(usize, Vec<i32>); 2] = [
        (usize::MAX, vec![0; width as usize * 3]),
        (usize::MAX, vec![0; width as usize * 3]),
    ];
    let hrow = |row: usize, buf: &mut Vec<i32>| {
        if row >= sh {
            buf.fill(0);
            return;
        }
        let r = &data[row * sw * 3..(row + 1) * sw * 3];
        let px = |x: usize, c: usize| if x < sw { i32::from(r[x * 3 + c]) } else { 0 };
        for (i, &(a, b, wa, wb)) in xs.iter().enumerate() {
            for c in 0..3 {
                buf[i * 3 + c] = px(a, c) * wa + px(b, c) * wb;
            }
        }
    };
    for (y, &(r0, r1, w0, w1)) in ys.iter().enumerate() {
        if cache[0].0 != r0 {
            if cache[1].0 == r0 {
                cache.swap(0, 1);
            } else {
                hrow(r0, &mut cache[0].1);
                cache[0].0 = r0;
            }
        }
        if cache[1].0 != r1 {
            hrow(r1, &mut cache[1].1);
            cache[1].0 = r1;
        }
        let (a, b) = (&cache[0].1, &cache[1].1);
        let o = &mut out[y * width as usize * 3..(y + 1) * width as usize * 3];
        // h ≤ 255·2048 and w0 + w1 = 2048, so the sum fits in i32.
        for ((o, &ha), &hb) in o.iter_mut().zip(a.iter()).zip(b.iter()) {
            let v = (ha * w0 + hb * w1 + (1 << 21)) >> 22;
            *o = v.clamp(0, 255) as u8;
        }
    }
    Frame::from_rgb(width, height, out).unwrap_or_else(|_| unreachable_frame())
}

#[cold]
fn unreachable_frame() -> Frame {
    // Sizes come from valid frames, so construction cannot fail; keep a
    // harmless value rather than panicking in release code.
    Frame::filled(1, 1, [0, 0, 0]).unwrap_or_else(|_| std::process::abort())
}

/// Resizes `src` to fit `(width, height)` keeping its aspect ratio and places
/// it at the top-left of a black canvas of that size. Returns the canvas and
/// the scale applied (canvas pixels per source pixel).
pub fn letterbox_top_left(src: &Frame, width: u32, height: u32) -> (Frame, f32) {
    let (nw, nh) = fit_size(src.width(), src.height(), width, height);
    let scale = nh as f32 / src.height() as f32;
    let resized = resize_bilinear(src, nw, nh);
    let mut canvas = vec![0u8; width as usize * height as usize * 3];
    for y in 0..nh as usize {
        let s = &resized.data()[y * nw as usize * 3..(y + 1) * nw as usize * 3];
        canvas[y * width as usize * 3..y * width as usize * 3 + s.len()].copy_from_slice(s);
    }
    (
        Frame::from_rgb(width, height, canvas).unwrap_or_else(|_| unreachable_frame()),
        scale,
    )
}

/// The size a `src_w`×`src_h` image takes when fitted into `width`×`height`
/// keeping its aspect ratio, as insightface computes it.
pub fn fit_size(src_w: u32, src_h: u32, width: u32, height: u32) -> (u32, u32) {
    let im_ratio = f64::from(src_h) / f64::from(src_w);
    let model_ratio = f64::from(height) / f64::from(width);
    if im_ratio > model_ratio {
        (((f64::from(height) / im_ratio) as u32).max(1), height)
    } else {
        (width, ((f64::from(width) * im_ratio) as u32).max(1))
    }
}

/// [`letterbox_top_left`] followed by [`to_blob`] (RGB, NCHW) in one
/// parallel pass, without the intermediate canvas: identical values.
pub fn letterbox_blob(
    src: &Frame,
    width: u32,
    height: u32,
    mean: f32,
    std: f32,
) -> (Vec<f32>, f32) {
    let mut out = BlobBuffer::default();
    let scale = letterbox_blob_into(src, width, height, mean, std, &mut out);
    (out.data, scale)
}

/// A letterboxed blob kept from frame to frame: the 4.9 MB buffer is not
/// allocated again, and its padding is written only when the layout changes
/// (frames of one stream share it), so each frame writes just its pixels.
#[derive(Debug, Default, Clone)]
pub struct BlobBuffer {
    data: Vec<f32>,
    /// The [`letterbox_stamp`] the padding was written for (0: none).
    padded: u128,
}

impl BlobBuffer {
    /// The blob (NCHW planes).
    pub fn data(&self) -> &[f32] {
        &self.data
    }
}

/// One output row of a whole-number downscale by an even `k`: each output
/// the rounded mean of the 2×2 pixels at `off` in its k×k block of
/// `rows`, normalised through the blob's lookup table into the three
/// planes. Whole slices, so the loop carries no index checks.
fn mean_2x2_row(
    [row0, row1]: [&[u8]; 2],
    k: usize,
    off: usize,
    [rr, gg, bb]: [&mut [f32]; 3],
    lut: &[f32; 256],
) {
    let o = off * 3;
    let blocks = row0.chunks_exact(3 * k).zip(row1.chunks_exact(3 * k));
    let outs = rr.iter_mut().zip(gg.iter_mut()).zip(bb.iter_mut());
    for ((p0, p1), ((r, g), b)) in blocks.zip(outs) {
        let (p0, p1) = (&p0[o..o + 6], &p1[o..o + 6]);
        let m = |c: usize| {
            let s =
                u16::from(p0[c]) + u16::from(p0[3 + c]) + u16::from(p1[c]) + u16::from(p1[3 + c]);
            lut[usize::from(((s + 2) >> 2) as u8)]
        };
        *r = m(0);
        *g = m(1);
        *b = m(2);
    }
}

/// [`letterbox_blob`] into a buffer reused from frame to frame.
pub fn letterbox_blob_into(
    src: &Frame,
    width: u32,
    height: u32,
    mean: f32,
    std: f32,
    buf: &mut BlobBuffer,
) -> f32 {
    let n = width as usize * height as usize * 3;
    if buf.data.len() != n {
        buf.data.clear();
        buf.data.resize(n, 0.0);
        buf.padded = 0;
    }
    letterbox_blob_to(
        src,
        (width, height),
        mean,
        std,
        &mut buf.data,
        &mut buf.padded,
    )
}

/// What a letterboxed blob's padding depends on, packed (never 0).
fn letterbox_stamp(canvas: (u32, u32), image: (u32, u32), pad: f32) -> u128 {
    let dims = [canvas.0, canvas.1, image.0, image.1]
        .iter()
        .enumerate()
        .fold(0u128, |acc, (i, &d)| acc | (u128::from(d) << (16 * i)));
    dims | (u128::from(pad.to_bits()) << 64) | (1 << 127)
}

/// [`letterbox_blob`] into `out`, a `width`×`height`×3 blob (an input
/// buffer of the model, written in place). `stamp` records what the
/// padding was written for: the padding is written only when it changes.
pub fn letterbox_blob_to(
    src: &Frame,
    (width, height): (u32, u32),
    mean: f32,
    std: f32,
    out: &mut [f32],
    stamp: &mut u128,
) -> f32 {
    use rayon::prelude::*;
    let (nw, nh) = fit_size(src.width(), src.height(), width, height);
    let scale = nh as f32 / src.height() as f32;
    let lut: [f32; 256] = std::array::from_fn(|v| (v as f32 - mean) / std);
    let pad = lut[0];
    let (cw, ch) = (width as usize, height as usize);
    let plane = cw * ch;
    assert_eq!(
        out.len(),
        plane * 3,
        "the blob buffer is {width}×{height}×3"
    );
    let layout = letterbox_stamp((width, height), (nw, nh), pad);
    if *stamp != layout {
        out.fill(pad);
        *stamp = layout;
    }
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    let sw3 = src.width() as usize * 3;
    let data = src.data();
    // Whole-number downscale (720p, 1080p and 4K all shrink to 640×360 this way):
    // OpenCV's taps then sit at fraction ½ (even factor: a 2×2 mean) or 0 (odd
    // factor: one pixel), so the same values come from a much cheaper loop.
    let k = src.width() / nw;
    if k >= 2 && src.width() == k * nw && src.height() == k * nh {
        let k = k as usize;
        let off = if k.is_multiple_of(2) {
            k / 2 - 1
        } else {
            (k - 1) / 2
        };
        r.par_chunks_mut(cw)
            .zip(g.par_chunks_mut(cw))
            .zip(b.par_chunks_mut(cw))
            .take(nh as usize)
            .enumerate()
            .for_each(|(y, ((rr, gg), bb))| {
                let sy = y * k + off;
                let row0 = &data[sy * sw3..(sy + 1) * sw3];
                if k.is_multiple_of(2) {
                    let row1 = &data[(sy + 1) * sw3..(sy + 2) * sw3];
                    mean_2x2_row([row0, row1], k, off, [rr, gg, bb], &lut);
                } else {
                    for x in 0..nw as usize {
                        let i = (x * k + off) * 3;
                        rr[x] = lut[usize::from(row0[i])];
                        gg[x] = lut[usize::from(row0[i + 1])];
                        bb[x] = lut[usize::from(row0[i + 2])];
                    }
                }
            });
        return scale;
    }
    let xs = linear_taps(src.width(), nw);
    let ys = linear_taps(src.height(), nh);
    r.par_chunks_mut(cw)
        .zip(g.par_chunks_mut(cw))
        .zip(b.par_chunks_mut(cw))
        .take(nh as usize)
        .enumerate()
        .for_each(|(y, ((rr, gg), bb))| {
            let (r0, r1, w0, w1) = ys[y];
            let (row0, row1) = (
                &data[r0 * sw3..(r0 + 1) * sw3],
                &data[r1 * sw3..(r1 + 1) * sw3],
            );
            for (x, &(a, bx, wa, wb)) in xs.iter().enumerate() {
                let mut px = [0usize; 3];
                for (c, p) in px.iter_mut().enumerate() {
                    let h0 = i32::from(row0[a * 3 + c]) * wa + i32::from(row0[bx * 3 + c]) * wb;
                    let h1 = i32::from(row1[a * 3 + c]) * wa + i32::from(row1[bx * 3 + c]) * wb;
                    *p = ((h0 * w0 + h1 * w1 + (1 << 21)) >> 22).clamp(0, 255) as usize;
                }
                rr[x] = lut[px[0]];
                gg[x] = lut[px[1]];
                bb[x] = lut[px[2]];
            }
        });
    scale
}

/// Channel order of a model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red.
    Bgr,
}

/// Tensor memory layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Batch, channel, height, width.
    Nchw,
    /// Batch, height, width, channel.
    Nhwc,
}

/// Converts a frame to a float tensor: `(pixel - mean) / std` per channel.
pub fn to_blob(
    frame: &Frame,
    order: ChannelOrder,
    layout: Layout,
    mean: f32,
    std: f32,
) -> Vec<f32> {
    let mut out = vec![0.0; frame.width() as usize * frame.height() as usize * 3];
    to_blob_into(frame, order, layout, mean, std, &mut out);
    out
}

/// [`to_blob`] into `out`, which holds exactly the frame's values (a buffer
/// reused from call to call, or a model's input written in place).
pub fn to_blob_into(
    frame: &Frame,
    order: ChannelOrder,
    layout: Layout,
    mean: f32,
    std: f32,
    out: &mut [f32],
) {
    let plane = frame.width() as usize * frame.height() as usize;
    assert_eq!(out.len(), plane * 3, "the blob buffer holds the frame");
    let inv = 1.0 / std;
    // A lookup table: 256 values per channel instead of a subtract and multiply per sample.
    let lut: [f32; 256] = std::array::from_fn(|v| (v as f32 - mean) * inv);
    let map = match order {
        ChannelOrder::Rgb => [0usize, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    };
    match layout {
        Layout::Nchw => {
            let (r, rest) = out.split_at_mut(plane);
            let (g, b) = rest.split_at_mut(plane);
            for (i, px) in frame.data().chunks_exact(3).enumerate() {
                r[i] = lut[px[map[0]] as usize];
                g[i] = lut[px[map[1]] as usize];
                b[i] = lut[px[map[2]] as usize];
            }
        }
        Layout::Nhwc => {
            for (o, px) in out.chunks_exact_mut(3).zip(frame.data().chunks_exact(3)) {
                o[0] = lut[px[map[0]] as usize];
                o[1] = lut[px[map[1]] as usize];
                o[2] = lut[px[map[2]] as usize];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizing_with_virtual_padding_equals_resizing_the_padded_copy() {
        for (w, h) in [
            (1280u32, 720u32),
            (300, 533),
            (641, 479),
            (320, 320),
            (7, 3),
            (2, 900),
        ] {
            let data: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
            let src = Frame::from_rgb(w, h, data).unwrap();
            let side = w.max(h);
            let mut square = vec![0u8; (side * side * 3) as usize];
            for y in 0..h as usize {
                let row = w as usize * 3;
                square[y * side as usize * 3..][..row]
                    .copy_from_slice(&src.data()[y * row..][..row]);
            }
            let square = Frame::from_rgb(side, side, square).unwrap();
            for out in [320u32, 64, 999] {
                assert!(
                    resize_padded_square(&src, out, out) == resize_bilinear(&square, out, out),
                    "{w}x{h} to {out}"
                );
            }
        }
    }

    #[test]
    fn sharp_edges_have_a_larger_laplacian_variance_than_flat_frames() {
        let flat = Frame::filled(16, 16, [90, 90, 90]).unwrap();
        assert_eq!(laplacian_variance(&flat), 0.0);
        let mut edges = flat.clone();
        for (i, px) in edges.data_mut().chunks_exact_mut(3).enumerate() {
            if (i % 16 + i / 16) % 2 == 0 {
                px.copy_from_slice(&[250, 250, 250]);
            }
        }
        assert!(laplacian_variance(&edges) > 1000.0);
        assert_eq!(
            laplacian_variance(&Frame::filled(2, 2, [0; 3]).unwrap()),
            0.0
        );
    }

    fn gradient(w: u32, h: u32) -> Frame {
        let mut d = Vec::new();
        for y in 0..h {
            for x in 0..w {
                d.extend_from_slice(&[(x * 255 / (w - 1)) as u8, (y * 255 / (h - 1)) as u8, 77]);
            }
        }
        Frame::from_rgb(w, h, d).unwrap()
    }

    #[test]
    fn resize_identity_and_constant() {
        let f = gradient(17, 9);
        assert_eq!(resize_bilinear(&f, 17, 9), f);
        let c = Frame::filled(13, 7, [10, 200, 255]).unwrap();
        let r = resize_bilinear(&c, 31, 5);
        assert!(r.data().chunks(3).all(|p| p == [10, 200, 255]));
    }

    #[test]
    fn resize_matches_opencv_values() {
        // cv2.resize(np.array([[0,100,200,250]],np.uint8).reshape(1,4,1), (8,1)) == [0,13,38,88,138,188,206,250]
        let row: Vec<u8> = [0u8, 100, 200, 250]
            .iter()
            .flat_map(|&v| [v, v, v])
            .collect();
        let f = Frame::from_rgb(4, 1, row).unwrap();
        let r = resize_bilinear(&f, 8, 1);
        let got: Vec<u8> = r.data().chunks(3).map(|p| p[0]).collect();
        assert_eq!(got, vec![0, 25, 75, 125, 175, 213, 238, 250]);
        // Downscale by 2 averages pairs.
        let d = resize_bilinear(&f, 2, 1);
        assert_eq!(
            d.data().chunks(3).map(|p| p[0]).collect::<Vec<_>>(),
            vec![50, 225]
        );
    }

    #[test]
    fn resize_agrees_with_direct_formula() {
        // Direct (uncached) evaluation of the same taps, for many size pairs.
        let mut seed = 12345u32;
        let mut rnd = || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (seed >> 16) as u8
        };
        for (sw, sh, dw, dh) in [
            (7, 5, 13, 11),
            (13, 11, 7, 5),
            (1, 9, 4, 3),
            (9, 1, 3, 4),
            (5, 5, 5, 12),
            (40, 30, 17, 64),
        ] {
            let src = Frame::from_rgb(sw, sh, (0..sw * sh * 3).map(|_| rnd()).collect()).unwrap();
            let out = resize_bilinear(&src, dw, dh);
            let (xs, ys) = (linear_taps(sw, dw), linear_taps(sh, dh));
            for (y, &(r0, r1, w0, w1)) in ys.iter().enumerate() {
                for (x, &(c0, c1, v0, v1)) in xs.iter().enumerate() {
                    for c in 0..3 {
                        let p = |r: usize, col: usize| {
                            i64::from(src.data()[(r * sw as usize + col) * 3 + c])
                        };
                        let h0 = p(r0, c0) * i64::from(v0) + p(r0, c1) * i64::from(v1);
                        let h1 = p(r1, c0) * i64::from(v0) + p(r1, c1) * i64::from(v1);
                        let v = ((h0 * i64::from(w0) + h1 * i64::from(w1) + (1 << 21)) >> 22) as u8;
                        assert_eq!(
                            out.data()[(y * dw as usize + x) * 3 + c],
                            v,
                            "{sw}x{sh}->{dw}x{dh} at {x},{y}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn letterbox_keeps_aspect_and_pads_black() {
        let f = Frame::filled(200, 100, [255, 255, 255]).unwrap();
        let (c, s) = letterbox_top_left(&f, 64, 64);
        assert_eq!((c.width(), c.height()), (64, 64));
        assert!((s - 0.32).abs() < 1e-6);
        assert_eq!(c.pixel(10, 10), [255, 255, 255]);
        assert_eq!(c.pixel(10, 40), [0, 0, 0]);
    }

    #[test]
    fn fused_letterbox_blob_equals_the_two_steps() {
        let mut seed = 99u32;
        let data: Vec<u8> = (0..97 * 61 * 3)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (seed >> 16) as u8
            })
            .collect();
        let f = Frame::from_rgb(97, 61, data).unwrap();
        let even = resize_bilinear(&f, 96, 60);
        let odd = resize_bilinear(&f, 96, 57);
        for (src, w, h) in [
            (&f, 64, 64),
            (&f, 40, 80),
            (&f, 128, 32),
            (&even, 48, 48),
            (&even, 32, 32),
            (&even, 24, 24),
            (&odd, 32, 32),
            (&odd, 96, 96),
        ] {
            let (canvas, s1) = letterbox_top_left(src, w, h);
            let two = to_blob(&canvas, ChannelOrder::Rgb, Layout::Nchw, 127.5, 128.0);
            let (one, s2) = letterbox_blob(src, w, h, 127.5, 128.0);
            assert_eq!(s1, s2);
            assert_eq!(one, two, "{w}x{h}");
        }
    }

    #[test]
    fn a_reused_blob_buffer_gives_the_same_blob_as_a_fresh_one() {
        let a = Frame::filled(128, 72, [200, 10, 90]).unwrap();
        let b = Frame::from_rgb(
            128,
            72,
            (0..128 * 72 * 3).map(|i| (i % 251) as u8).collect(),
        )
        .unwrap();
        let tall = Frame::filled(40, 90, [1, 2, 3]).unwrap();
        let mut buf = BlobBuffer::default();
        for f in [&a, &b, &tall, &a, &b] {
            letterbox_blob_into(f, 64, 64, 127.5, 128.0, &mut buf);
            assert_eq!(
                buf.data(),
                letterbox_blob(f, 64, 64, 127.5, 128.0).0.as_slice()
            );
        }
        // A different normalisation rewrites the padding too.
        letterbox_blob_into(&a, 64, 64, 0.0, 1.0, &mut buf);
        assert_eq!(
            buf.data(),
            letterbox_blob(&a, 64, 64, 0.0, 1.0).0.as_slice()
        );
    }

    #[test]
    fn blob_layouts() {
        let f = Frame::from_rgb(2, 1, vec![10, 20, 30, 40, 50, 60]).unwrap();
        assert_eq!(
            to_blob(&f, ChannelOrder::Rgb, Layout::Nchw, 0.0, 1.0),
            vec![10., 40., 20., 50., 30., 60.]
        );
        assert_eq!(
            to_blob(&f, ChannelOrder::Bgr, Layout::Nhwc, 10.0, 2.0),
            vec![10., 5., 0., 25., 20., 15.]
        );
    }
}
