//! RGB → YUV for the virtual camera: BT.601 limited range, the format USB
//! webcams deliver and browsers and OBS expect, in the classic 8-bit integer
//! form (`Y = ((66R + 129G + 25B + 128) >> 8) + 16`, and so on).

use camshow_core::Frame;

#[inline]
fn y_of(r: i32, g: i32, b: i32) -> u8 {
    (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8
}

#[inline]
fn u_of(r: i32, g: i32, b: i32) -> u8 {
    (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128) as u8
}

#[inline]
fn v_of(r: i32, g: i32, b: i32) -> u8 {
    (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128) as u8
}

/// One pixel's (Y, U, V).
pub fn yuv(p: [u8; 3]) -> [u8; 3] {
    let [r, g, b] = p.map(i32::from);
    [y_of(r, g, b), u_of(r, g, b), v_of(r, g, b)]
}

/// Packed YUYV 4:2:2 (`Y0 U Y1 V` per pixel pair; chroma from the pair's
/// mean colour). The width must be even.
pub fn rgb_to_yuyv(frame: &Frame) -> Vec<u8> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let mut out = Vec::with_capacity(w * h * 2);
    for row in frame.data().chunks_exact(w * 3).take(h) {
        for pair in row.chunks_exact(6) {
            let (r0, g0, b0) = (i32::from(pair[0]), i32::from(pair[1]), i32::from(pair[2]));
            let (r1, g1, b1) = (i32::from(pair[3]), i32::from(pair[4]), i32::from(pair[5]));
            let (r, g, b) = ((r0 + r1 + 1) >> 1, (g0 + g1 + 1) >> 1, (b0 + b1 + 1) >> 1);
            out.extend([
                y_of(r0, g0, b0),
                u_of(r, g, b),
                y_of(r1, g1, b1),
                v_of(r, g, b),
            ]);
        }
    }
    out
}

/// Planar I420 (Y plane, then U and V at half size each way; chroma from
/// each 2×2 block's mean colour). Width and height must be even.
pub fn rgb_to_i420(frame: &Frame) -> Vec<u8> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let d = frame.data();
    let mut y = Vec::with_capacity(w * h);
    for p in d.chunks_exact(3) {
        y.push(y_of(i32::from(p[0]), i32::from(p[1]), i32::from(p[2])));
    }
    let (cw, ch) = (w / 2, h / 2);
    let mut u = Vec::with_capacity(cw * ch);
    let mut v = Vec::with_capacity(cw * ch);
    for by in 0..ch {
        for bx in 0..cw {
            let mut sum = [0i32; 3];
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let i = ((2 * by + dy) * w + 2 * bx + dx) * 3;
                for c in 0..3 {
                    sum[c] += i32::from(d[i + c]);
                }
            }
            let [r, g, b] = sum.map(|s| (s + 2) >> 2);
            u.push(u_of(r, g, b));
            v.push(v_of(r, g, b));
        }
    }
    y.extend(u);
    y.extend(v);
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_colours_convert_exactly() {
        // BT.601 limited range: black 16, white 235, neutral chroma 128.
        assert_eq!(yuv([0, 0, 0]), [16, 128, 128]);
        assert_eq!(yuv([255, 255, 255]), [235, 128, 128]);
        assert_eq!(yuv([255, 0, 0]), [82, 90, 240]);
        assert_eq!(yuv([0, 255, 0]), [144, 54, 34]);
        assert_eq!(yuv([0, 0, 255]), [41, 240, 110]);
        assert_eq!(yuv([128, 128, 128]), [126, 128, 128]);
        // The integer form stays within one level of the exact BT.601 equations everywhere.
        for r in (0..=255).step_by(15) {
            for g in (0..=255).step_by(15) {
                for b in (0..=255).step_by(15) {
                    let [y, u, v] = yuv([r as u8, g as u8, b as u8]);
                    let (rf, gf, bf) = (f64::from(r), f64::from(g), f64::from(b));
                    let ye = 16.0 + (65.481 * rf + 128.553 * gf + 24.966 * bf) / 255.0;
                    let ue = 128.0 + (-37.797 * rf - 74.203 * gf + 112.0 * bf) / 255.0;
                    let ve = 128.0 + (112.0 * rf - 93.786 * gf - 18.214 * bf) / 255.0;
                    for (got, want) in [(y, ye), (u, ue), (v, ve)] {
                        assert!(
                            (f64::from(got) - want).abs() <= 1.0,
                            "({r},{g},{b}): {got} vs {want:.2}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn packing_layouts() {
        let mut data = Vec::new();
        for p in [[255u8, 0, 0], [0, 0, 255], [0, 0, 0], [255, 255, 255]] {
            data.extend(p);
        }
        // 2×2: red, blue / black, white.
        let f = Frame::from_rgb(2, 2, data).unwrap();
        let yuyv = rgb_to_yuyv(&f);
        assert_eq!(yuyv.len(), 8);
        let mix = yuv([128, 0, 128]);
        assert_eq!(&yuyv[..4], &[82, mix[1], 41, mix[2]]);
        assert_eq!(&yuyv[4..], &[16, 128, 235, 128]);
        let i420 = rgb_to_i420(&f);
        assert_eq!(i420.len(), 6);
        assert_eq!(&i420[..4], &[82, 41, 16, 235]);
        let avg = yuv([128, 64, 128]);
        assert_eq!(&i420[4..], &[avg[1], avg[2]]);
    }
}
