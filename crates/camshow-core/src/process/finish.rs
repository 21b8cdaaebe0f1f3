//! Finishing steps for a pasted face: colour match, opacity, sharpness
//! restricted to the face mask, and Poisson (seamless) blending.

use crate::frame::Frame;
use crate::geometry::{
    Affine, Border, crop_bounds, invert_affine, round_even, translate, warp_affine,
    warp_affine_f32, warp_affine_gray,
};
use crate::swap::colour;
use crate::swap::paste::{erode, gaussian_blur};

/// An integer rectangle `(x, y, w, h)` in frame pixels.
pub type Rect = (u32, u32, u32, u32);

/// Recolours `crop` (a swapped, aligned face) to the L*a*b* mean and
/// standard deviation of `target` (the target's own pixels aligned by the
/// same matrix), measured inside `mask` (> 127).
pub fn colour_match_crop(crop: &mut Frame, target: &Frame, mask: &[u8]) {
    if let (Some(s), Some(t)) = (
        colour::lab_stats(crop.data(), mask),
        colour::lab_stats(target.data(), mask),
    ) {
        colour::transfer(crop.data_mut(), s, t);
    }
}

/// `cv2.addWeighted(original, 1−opacity, frame, opacity)` inside `rect`.
pub fn apply_opacity(frame: &mut Frame, original: &Frame, rect: Rect, opacity: f32) {
    let o = opacity.clamp(0.0, 1.0);
    if o >= 1.0 {
        return;
    }
    let (x, y, w, h) = rect;
    let stride = frame.width() as usize * 3;
    for yy in y as usize..(y + h) as usize {
        let range = yy * stride + x as usize * 3..yy * stride + (x + w) as usize * 3;
        let orig = &original.data()[range.clone()];
        for (v, &ov) in frame.data_mut()[range].iter_mut().zip(orig) {
            *v =
                round_even((f32::from(ov) * (1.0 - o) + f32::from(*v) * o).clamp(0.0, 255.0)) as u8;
        }
    }
}

/// A crop-space mask (`size`×`size`, values 0–255) warped into frame
/// space through `m`'s inverse over `rect`, as floats in [0, 1].
pub fn mask_in_frame(mask: &[u8], size: u32, m: &Affine, rect: Rect) -> Vec<f32> {
    let (x1, y1, w, h) = rect;
    let unit: Vec<f32> = mask.iter().map(|&v| f32::from(v) / 255.0).collect();
    let s = size as usize;
    let to_rect = translate(&invert_affine(m), f64::from(x1), f64::from(y1));
    warp_affine_f32(
        &unit,
        s,
        s,
        &to_rect,
        w as usize,
        h as usize,
        Border::Constant(0.0),
    )
    .into_iter()
    .map(|v| v.clamp(0.0, 1.0))
    .collect()
}

/// σ of the unsharp mask (Deep-Live-Cam's value).
pub const SHARPEN_SIGMA: f64 = 3.0;

/// Unsharp mask `src·(1+s) − blur(src, σ 3)·s`, applied only through the
/// face mask `mask` (frame space over `rect`), so no rectangle edge shows.
pub fn sharpen_masked(frame: &mut Frame, rect: Rect, mask: &[f32], amount: f32) {
    if amount <= 0.0 {
        return;
    }
    let (x, y, w, h) = rect;
    // Blur on the rectangle grown by the kernel radius so the blur near the
    // rectangle's edge sees real pixels.
    let ksize = ((((SHARPEN_SIGMA * 6.0 + 1.0).round_ties_even()) as usize) | 1).max(3);
    let r = (ksize / 2) as u32;
    let (gx, gy) = (x.saturating_sub(r), y.saturating_sub(r));
    let gx2 = (x + w + r).min(frame.width());
    let gy2 = (y + h + r).min(frame.height());
    let (gw, gh) = ((gx2 - gx) as usize, (gy2 - gy) as usize);
    let fw = frame.width() as usize;
    let mut blurred = [Vec::new(), Vec::new(), Vec::new()];
    for (c, out) in blurred.iter_mut().enumerate() {
        let mut plane = Vec::with_capacity(gw * gh);
        for yy in 0..gh {
            for xx in 0..gw {
                plane.push(f32::from(
                    frame.data()[((gy as usize + yy) * fw + gx as usize + xx) * 3 + c],
                ));
            }
        }
        *out = gaussian_blur(&plane, gw, gh, ksize, SHARPEN_SIGMA);
    }
    let data = frame.data_mut();
    for yy in 0..h as usize {
        for xx in 0..w as usize {
            let m = mask[yy * w as usize + xx];
            if m <= 0.0 {
                continue;
            }
            let (fx, fy) = (x as usize + xx, y as usize + yy);
            let bi = (fy - gy as usize) * gw + (fx - gx as usize);
            for (c, plane) in blurred.iter().enumerate() {
                let i = (fy * fw + fx) * 3 + c;
                let v = f32::from(data[i]);
                let sharp = (v * (1.0 + amount) - plane[bi] * amount).clamp(0.0, 255.0);
                data[i] = round_even((v + m * (sharp - v)).clamp(0.0, 255.0)) as u8;
            }
        }
    }
}

/// Poisson ("seamless") blending of an aligned crop: inside the crop's
/// footprint (the warped `alpha` > ½, eroded by `max(3, min(w,h)/20 | 1)`)
/// the result keeps the crop's gradients while matching the frame on the
/// footprint's boundary. Solved as crop + a harmonic correction, by
/// multigrid. Returns the rectangle that changed.
pub fn paste_seamless(frame: &mut Frame, crop: &Frame, m: &Affine, alpha: &[u8]) -> Option<Rect> {
    let size = crop.width();
    let inv = invert_affine(m);
    let rect = crop_bounds(&inv, size, 2, frame.width(), frame.height())?;
    let (x1, y1, w, h) = rect;
    let (wu, hu) = (w as usize, h as usize);
    // The crop and its feather warped into the rectangle, as separate warps would.
    let local = translate(&inv, f64::from(x1), f64::from(y1));
    let warped = warp_affine(crop, &local, w, h, Border::Replicate);
    let guide: Vec<[f32; 3]> = warped
        .data()
        .chunks_exact(3)
        .map(|p| [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])])
        .collect();
    let s = size as usize;
    let inside: Vec<f32> = warp_affine_gray(alpha, s, s, &local, wu, hu, Border::Constant(0.0))
        .into_iter()
        .map(|v| if v >= 128 { 1.0 } else { 0.0 })
        .collect();
    let k = 3.max((wu.min(hu) / 20) | 1);
    let mut omega: Vec<bool> = erode(&inside, wu, hu, k)
        .into_iter()
        .map(|v| v > 0.5)
        .collect();
    for yy in 0..hu {
        for xx in 0..wu {
            if xx == 0 || yy == 0 || xx + 1 == wu || yy + 1 == hu {
                omega[yy * wu + xx] = false;
            }
        }
    }
    let fw = frame.width() as usize;
    let orig = |xx: usize, yy: usize| -> [f32; 3] {
        let i = ((y1 as usize + yy) * fw + x1 as usize + xx) * 3;
        let p = &frame.data()[i..i + 3];
        [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])]
    };
    // Correction field: fixed to (frame − crop) outside Ω, harmonic inside.
    let mut corr = vec![[0f32; 3]; wu * hu];
    let (mut sum, mut n) = ([0f64; 3], 0usize);
    for yy in 0..hu {
        for xx in 0..wu {
            let i = yy * wu + xx;
            if !omega[i] {
                let o = orig(xx, yy);
                corr[i] = std::array::from_fn(|ch| o[ch] - guide[i][ch]);
                let touches = [(0, 1), (2, 1), (1, 0), (1, 2)].iter().any(|&(dx, dy)| {
                    let (nx, ny) = ((xx + dx).wrapping_sub(1), (yy + dy).wrapping_sub(1));
                    nx < wu && ny < hu && omega[ny * wu + nx]
                });
                if touches {
                    for ch in 0..3 {
                        sum[ch] += f64::from(corr[i][ch]);
                    }
                    n += 1;
                }
            }
        }
    }
    let cells: Vec<usize> = (0..wu * hu).filter(|&i| omega[i]).collect();
    if cells.is_empty() || n == 0 {
        return None;
    }
    let start = sum.map(|v| (v / n as f64) as f32);
    for &i in &cells {
        corr[i] = start;
    }
    let fixed: Vec<bool> = omega.iter().map(|o| !o).collect();
    solve_harmonic(&mut corr, &fixed, wu, hu);
    let data = frame.data_mut();
    for &i in &cells {
        let (xx, yy) = (i % wu, i / wu);
        let di = ((y1 as usize + yy) * fw + x1 as usize + xx) * 3;
        for ch in 0..3 {
            data[di + ch] = round_even((guide[i][ch] + corr[i][ch]).clamp(0.0, 255.0)) as u8;
        }
    }
    Some(rect)
}

type Px = [f32; 3];

/// One Gauss–Seidel sweep of `4u − Σ neighbours = f` over the unknown cells.
fn smooth(u: &mut [Px], f: &[Px], cells: &[usize], w: usize, omega: f32) {
    for &i in cells {
        let (a, b, c, d) = (u[i - 1], u[i + 1], u[i - w], u[i + w]);
        for ch in 0..3 {
            let target = (a[ch] + b[ch] + c[ch] + d[ch] + f[i][ch]) * 0.25;
            u[i][ch] += omega * (target - u[i][ch]);
        }
    }
}

/// A multigrid V-cycle for `4u − Σ neighbours = f` on the cells not `fixed`
/// (fixed cells hold Dirichlet values; unknown cells never touch the edge).
fn v_cycle(u: &mut [Px], f: &[Px], fixed: &[bool], w: usize, h: usize) {
    let cells: Vec<usize> = (0..w * h).filter(|&i| !fixed[i]).collect();
    if cells.is_empty() {
        return;
    }
    if w < 12 || h < 12 || w * h <= 24 * 24 {
        let omega = 2.0 / (1.0 + (std::f32::consts::PI / w.max(h) as f32).sin());
        for _ in 0..4 * w.max(h) {
            smooth(u, f, &cells, w, omega);
        }
        return;
    }
    for _ in 0..2 {
        smooth(u, f, &cells, w, 1.0);
    }
    // Residual, restricted to a grid half the size (×4 for the spacing).
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mut rc = vec![[0f32; 3]; cw * ch];
    // A coarse cell is unknown only when all four of its cells are.
    let mut unknown_children = vec![0u8; cw * ch];
    for &i in &cells {
        let (x, y) = (i % w, i / w);
        let (a, b, c, d) = (u[i - 1], u[i + 1], u[i - w], u[i + w]);
        let ci = (y / 2) * cw + x / 2;
        for k in 0..3 {
            rc[ci][k] += f[i][k] - (4.0 * u[i][k] - a[k] - b[k] - c[k] - d[k]);
        }
        unknown_children[ci] += 1;
    }
    let mut cfixed: Vec<bool> = unknown_children.iter().map(|&n| n < 4).collect();
    for cy in 0..ch {
        for cx in 0..cw {
            if cx == 0 || cy == 0 || cx + 1 == cw || cy + 1 == ch {
                cfixed[cy * cw + cx] = true;
            }
        }
    }
    // The sum of four residuals is the average ×4, the coarse scaling.
    let mut ec = vec![[0f32; 3]; cw * ch];
    v_cycle(&mut ec, &rc, &cfixed, cw, ch);
    // Bilinear prolongation of the correction (zero on fixed coarse cells).
    let at = |cx: isize, cy: isize| -> Px {
        if cx < 0
            || cy < 0
            || cx as usize >= cw
            || cy as usize >= ch
            || cfixed[cy as usize * cw + cx as usize]
        {
            [0.0; 3]
        } else {
            ec[cy as usize * cw + cx as usize]
        }
    };
    for &i in &cells {
        let (x, y) = (i % w, i / w);
        let (fx, fy) = (
            f32::midpoint(x as f32, 0.5) - 0.5,
            f32::midpoint(y as f32, 0.5) - 0.5,
        );
        let (x0, y0) = (fx.floor() as isize, fy.floor() as isize);
        let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
        let (p00, p10, p01, p11) = (
            at(x0, y0),
            at(x0 + 1, y0),
            at(x0, y0 + 1),
            at(x0 + 1, y0 + 1),
        );
        for k in 0..3 {
            let top = p00[k] * (1.0 - tx) + p10[k] * tx;
            let bot = p01[k] * (1.0 - tx) + p11[k] * tx;
            u[i][k] += top * (1.0 - ty) + bot * ty;
        }
    }
    for _ in 0..2 {
        smooth(u, f, &cells, w, 1.0);
    }
}

/// Solves Laplace's equation for the cells that are not `fixed` by
/// multigrid V-cycles until the solution moves by less than 0.02 levels.
fn solve_harmonic(v: &mut [Px], fixed: &[bool], w: usize, h: usize) {
    let zero = vec![[0f32; 3]; w * h];
    for _ in 0..40 {
        let before = v.to_vec();
        v_cycle(v, &zero, fixed, w, h);
        let change = v
            .iter()
            .zip(&before)
            .flat_map(|(a, b)| (0..3).map(move |k| (a[k] - b[k]).abs()))
            .fold(0f32, f32::max);
        if change < 0.02 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::translate;

    fn gradient_frame(w: u32, h: u32) -> Frame {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                data.extend([(x * 2) as u8, (y * 2) as u8, 90]);
            }
        }
        Frame::from_rgb(w, h, data).unwrap()
    }

    #[test]
    fn opacity_mixes_only_inside_the_rectangle() {
        let original = Frame::filled(10, 10, [0, 0, 0]).unwrap();
        let mut f = Frame::filled(10, 10, [200, 100, 50]).unwrap();
        apply_opacity(&mut f, &original, (2, 2, 3, 3), 0.25);
        assert_eq!(f.pixel(3, 3), [50, 25, 12]);
        assert_eq!(f.pixel(0, 0), [200, 100, 50]);
        assert_eq!(f.pixel(5, 5), [200, 100, 50]);
        let before = f.clone();
        apply_opacity(&mut f, &original, (0, 0, 10, 10), 1.0);
        assert_eq!(f, before);
    }

    #[test]
    fn sharpening_stays_inside_the_mask() {
        let mut data = Vec::new();
        for y in 0..40u32 {
            for x in 0..40u32 {
                let v = if (x / 4 + y / 4) % 2 == 0 { 60 } else { 180 };
                data.extend([v, v, v]);
            }
        }
        let mut f = Frame::from_rgb(40, 40, data).unwrap();
        let before = f.clone();
        // Mask: only the left half of a 20×20 rectangle.
        let rect = (10, 10, 20, 20);
        let mask: Vec<f32> = (0..400)
            .map(|i| if i % 20 < 10 { 1.0 } else { 0.0 })
            .collect();
        sharpen_masked(&mut f, rect, &mask, 1.0);
        let mut changed_inside = 0;
        for y in 0..40 {
            for x in 0..40 {
                let inside = (10..30).contains(&x) && (10..30).contains(&y) && x < 20;
                if !inside {
                    assert_eq!(
                        f.pixel(x, y),
                        before.pixel(x, y),
                        "({x},{y}) changed outside the mask"
                    );
                } else if f.pixel(x, y) != before.pixel(x, y) {
                    changed_inside += 1;
                }
            }
        }
        assert!(changed_inside > 50, "{changed_inside}");
        // More contrast at an edge (x 15 | 16, inside the mask): the dark side
        // darker and the bright side brighter, both.
        assert_eq!(
            (before.pixel(15, 12)[0], before.pixel(16, 12)[0]),
            (60, 180)
        );
        assert!(f.pixel(15, 12)[0] < 50, "{:?}", f.pixel(15, 12));
        assert!(f.pixel(16, 12)[0] > 190, "{:?}", f.pixel(16, 12));
        // An amount of 0 changes nothing.
        let mut g = before.clone();
        sharpen_masked(&mut g, rect, &mask, 0.0);
        assert_eq!(g, before);
    }

    #[test]
    fn mask_in_frame_follows_the_matrix() {
        // Crop = frame shifted by (5, 7): the mask lands at (5, 7).
        let m: Affine = [[1.0, 0.0, -5.0], [0.0, 1.0, -7.0]];
        let mask = vec![255u8; 16];
        let inv = invert_affine(&m);
        let rect = crop_bounds(&inv, 4, 0, 20, 20).unwrap();
        assert_eq!(rect, (5, 7, 4, 4));
        let mf = mask_in_frame(&mask, 4, &m, rect);
        assert!(mf.iter().all(|v| (*v - 1.0).abs() < 1e-6));
        let _ = translate(&m, 0.0, 0.0);
    }

    #[test]
    fn seamless_removes_a_colour_offset_and_keeps_gradients() {
        let frame0 = gradient_frame(64, 64);
        // The crop is the frame's own pixels 30 levels brighter in red, aligned
        // by a pure translation: Poisson blending must bring it back to the
        // frame's level at the boundary and therefore everywhere.
        let m: Affine = [[1.0, 0.0, -16.0], [0.0, 1.0, -16.0]];
        let mut crop = warp_affine(&frame0, &m, 32, 32, Border::Replicate);
        for px in crop.data_mut().chunks_exact_mut(3) {
            px[0] = px[0].saturating_add(30);
        }
        let alpha = vec![255u8; 32 * 32];
        let mut f = frame0.clone();
        let rect = paste_seamless(&mut f, &crop, &m, &alpha).unwrap();
        let mut worst = 0u8;
        for y in rect.1..rect.1 + rect.3 {
            for x in rect.0..rect.0 + rect.2 {
                for c in 0..3 {
                    worst = worst.max(f.pixel(x, y)[c].abs_diff(frame0.pixel(x, y)[c]));
                }
            }
        }
        assert!(worst <= 2, "seamless left a difference of {worst}");
        // A plain paste would have kept the +30.
        let mut hard = frame0.clone();
        crate::swap::paste::paste_fast(&mut hard, &crop, &m, &alpha);
        assert!(hard.pixel(32, 32)[0].abs_diff(frame0.pixel(32, 32)[0]) >= 25);
    }

    #[test]
    fn the_coarse_to_fine_solver_reproduces_a_harmonic_function() {
        // A linear function is harmonic: given on the boundary of a disc it
        // must come back inside, on a grid big enough for three levels.
        let (w, h) = (300usize, 260usize);
        let f = |x: usize, y: usize| {
            [
                0.3 * x as f32 - 0.1 * y as f32 + 5.0,
                0.05 * y as f32,
                -0.2 * x as f32,
            ]
        };
        let mut v = vec![[0f32; 3]; w * h];
        let mut fixed = vec![true; w * h];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f32 - 150.0, y as f32 - 130.0);
                if dx * dx / (140.0 * 140.0) + dy * dy / (120.0 * 120.0) < 1.0 {
                    fixed[y * w + x] = false;
                } else {
                    v[y * w + x] = f(x, y);
                }
            }
        }
        solve_harmonic(&mut v, &fixed, w, h);
        let mut worst = 0f32;
        for y in 0..h {
            for x in 0..w {
                let e = f(x, y);
                for c in 0..3 {
                    worst = worst.max((v[y * w + x][c] - e[c]).abs());
                }
            }
        }
        assert!(worst < 0.5, "harmonic error {worst}");
    }

    #[test]
    fn colour_match_moves_the_crop_to_the_target_colour() {
        let frame = Frame::filled(64, 64, [180, 120, 100]).unwrap();
        let m: Affine = [[1.0, 0.0, -8.0], [0.0, 1.0, -8.0]];
        let mut crop = Frame::filled(32, 32, [90, 140, 200]).unwrap();
        // Some texture so the standard deviation is not zero.
        for (i, px) in crop.data_mut().chunks_exact_mut(3).enumerate() {
            px[0] = px[0].wrapping_add((i % 7) as u8);
        }
        let target = warp_affine(&frame, &m, 32, 32, Border::Replicate);
        colour_match_crop(&mut crop, &target, &vec![255u8; 32 * 32]);
        let p = crop.pixel(16, 16);
        assert!(
            p[0].abs_diff(180) < 12 && p[1].abs_diff(120) < 12 && p[2].abs_diff(100) < 12,
            "{p:?}"
        );
    }
}
