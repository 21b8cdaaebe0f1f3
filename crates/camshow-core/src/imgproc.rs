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

/// Bilinear resize with OpenCV INTER_LINEAR semantics (results agree with
/// `cv2.resize` to within one level).
pub fn resize_bilinear(src: &Frame, width: u32, height: u32) -> Frame {
    if src.width() == width && src.height() == height {
        return src.clone();
    }
    let xs = linear_taps(src.width(), width);
    let ys = linear_taps(src.height(), height);
    let sw = src.width() as usize;
    let data = src.data();
    let mut out = vec![0u8; width as usize * height as usize * 3];
    // One horizontally-resized row per source row in use, cached for reuse.
    let mut cache: [(usize, Vec<i32>); 2] = [(usize::MAX, vec![0; width as usize * 3]), (usize::MAX, vec![0; width as usize * 3])];
    let hrow = |row: usize, buf: &mut Vec<i32>| {
        let r = &data[row * sw * 3..(row + 1) * sw * 3];
        for (i, &(a, b, wa, wb)) in xs.iter().enumerate() {
            for c in 0..3 {
                buf[i * 3 + c] = i32::from(r[a * 3 + c]) * wa + i32::from(r[b * 3 + c]) * wb;
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
        for i in 0..o.len() {
            let v = (i64::from(a[i]) * i64::from(w0) + i64::from(b[i]) * i64::from(w1) + (1 << 21)) >> 22;
            o[i] = v.clamp(0, 255) as u8;
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
    let im_ratio = f64::from(src.height()) / f64::from(src.width());
    let model_ratio = f64::from(height) / f64::from(width);
    let (nw, nh) = if im_ratio > model_ratio {
        let nh = height;
        (((f64::from(nh) / im_ratio) as u32).max(1), nh)
    } else {
        let nw = width;
        (nw, ((f64::from(nw) * im_ratio) as u32).max(1))
    };
    let scale = nh as f32 / src.height() as f32;
    let resized = resize_bilinear(src, nw, nh);
    let mut canvas = vec![0u8; width as usize * height as usize * 3];
    for y in 0..nh as usize {
        let s = &resized.data()[y * nw as usize * 3..(y + 1) * nw as usize * 3];
        canvas[y * width as usize * 3..y * width as usize * 3 + s.len()].copy_from_slice(s);
    }
    (Frame::from_rgb(width, height, canvas).unwrap_or_else(|_| unreachable_frame()), scale)
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
pub fn to_blob(frame: &Frame, order: ChannelOrder, layout: Layout, mean: f32, std: f32) -> Vec<f32> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let plane = w * h;
    let mut out = vec![0f32; plane * 3];
    let inv = 1.0 / std;
    let map = match order {
        ChannelOrder::Rgb => [0usize, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    };
    for (i, px) in frame.data().chunks_exact(3).enumerate() {
        for (c, &src_c) in map.iter().enumerate() {
            let v = (f32::from(px[src_c]) - mean) * inv;
            match layout {
                Layout::Nchw => out[c * plane + i] = v,
                Layout::Nhwc => out[i * 3 + c] = v,
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let row: Vec<u8> = [0u8, 100, 200, 250].iter().flat_map(|&v| [v, v, v]).collect();
        let f = Frame::from_rgb(4, 1, row).unwrap();
        let r = resize_bilinear(&f, 8, 1);
        let got: Vec<u8> = r.data().chunks(3).map(|p| p[0]).collect();
        assert_eq!(got, vec![0, 25, 75, 125, 175, 213, 238, 250]);
        // Downscale by 2 averages pairs.
        let d = resize_bilinear(&f, 2, 1);
        assert_eq!(d.data().chunks(3).map(|p| p[0]).collect::<Vec<_>>(), vec![50, 225]);
    }

    #[test]
    fn resize_agrees_with_direct_formula() {
        // Direct (uncached) evaluation of the same taps, for many size pairs.
        let mut seed = 12345u32;
        let mut rnd = || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (seed >> 16) as u8
        };
        for (sw, sh, dw, dh) in [(7, 5, 13, 11), (13, 11, 7, 5), (1, 9, 4, 3), (9, 1, 3, 4), (5, 5, 5, 12), (40, 30, 17, 64)] {
            let src = Frame::from_rgb(sw, sh, (0..sw * sh * 3).map(|_| rnd()).collect()).unwrap();
            let out = resize_bilinear(&src, dw, dh);
            let (xs, ys) = (linear_taps(sw, dw), linear_taps(sh, dh));
            for (y, &(r0, r1, w0, w1)) in ys.iter().enumerate() {
                for (x, &(c0, c1, v0, v1)) in xs.iter().enumerate() {
                    for c in 0..3 {
                        let p = |r: usize, col: usize| i64::from(src.data()[(r * sw as usize + col) * 3 + c]);
                        let h0 = p(r0, c0) * i64::from(v0) + p(r0, c1) * i64::from(v1);
                        let h1 = p(r1, c0) * i64::from(v0) + p(r1, c1) * i64::from(v1);
                        let v = ((h0 * i64::from(w0) + h1 * i64::from(w1) + (1 << 21)) >> 22) as u8;
                        assert_eq!(out.data()[(y * dw as usize + x) * 3 + c], v, "{sw}x{sh}->{dw}x{dh} at {x},{y}");
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
    fn blob_layouts() {
        let f = Frame::from_rgb(2, 1, vec![10, 20, 30, 40, 50, 60]).unwrap();
        assert_eq!(to_blob(&f, ChannelOrder::Rgb, Layout::Nchw, 0.0, 1.0), vec![10., 40., 20., 50., 30., 60.]);
        assert_eq!(to_blob(&f, ChannelOrder::Bgr, Layout::Nhwc, 10.0, 2.0), vec![10., 5., 0., 25., 20., 15.]);
    }
}
