//! Alignment geometry: Umeyama similarity estimation, affine inversion and
//! bilinear affine warps with OpenCV's semantics.
//!
//! * [`umeyama`] equals `skimage.transform.SimilarityTransform.estimate`
//!   (rotation, uniform scale, translation; never a reflection). For two
//!   dimensions the SVD has a closed form, used here.
//! * [`invert_affine`] is `cv2.invertAffineTransform`.
//! * [`warp_affine`] is `cv2.warpAffine(src, M, size, INTER_LINEAR, border)`:
//!   every destination pixel centre is mapped through the inverse of `M` and
//!   sampled bilinearly (OpenCV 5 computes the source position in float32 with
//!   unquantised weights; this does the same). Only the output rectangle is
//!   touched, so paste-back warps cost O(face), not O(frame).
//!
//! ```
//! use camshow_core::geometry::{umeyama, apply, ARCFACE_112};
//! let shifted: Vec<[f32; 2]> = ARCFACE_112.iter().map(|p| [p[0] * 2.0 + 10.0, p[1] * 2.0 - 3.0]).collect();
//! let m = umeyama(&shifted, &ARCFACE_112).unwrap();
//! let back = apply(&m, shifted[2]);
//! assert!((back[0] - ARCFACE_112[2][0]).abs() < 1e-4);
//! ```

use crate::frame::Frame;

/// A 2×3 affine matrix `[[a, b, tx], [c, d, ty]]` mapping `(x, y)` to
/// `(a·x + b·y + tx, c·x + d·y + ty)`.
pub type Affine = [[f64; 3]; 2];

/// insightface's `arcface_dst`: the five points of a 112×112 aligned face.
pub const ARCFACE_112: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// FFHQ 512×512 template (GFPGAN, CodeFormer).
pub const FFHQ_512: [[f32; 2]; 5] = [
    [192.98138, 239.94708],
    [318.90277, 240.1936],
    [256.63416, 314.01935],
    [201.26117, 371.41043],
    [313.08905, 371.15118],
];

/// FaceFusion's normalised `arcface_128` template (the 128 template / 128).
pub const FF_ARCFACE_128: [[f32; 2]; 5] = [
    [0.361_676_56, 0.403_877_34],
    [0.636_967_2, 0.402_354_7],
    [0.500_196_9, 0.560_442_2],
    [0.387_103_9, 0.721_605_5],
    [0.615_077_3, 0.720_344_5],
];

/// insightface `estimate_norm` destination points for a square crop of
/// `size`: ArcFace scaled by `size/112`, or by `size/128` with `8·ratio`
/// added to x when `size` is not a multiple of 112 (inswapper's 128).
pub fn arcface_template(size: u32) -> [[f32; 2]; 5] {
    let (ratio, diff_x) = if size.is_multiple_of(112) {
        (size as f32 / 112.0, 0.0)
    } else {
        let r = size as f32 / 128.0;
        (r, 8.0 * r)
    };
    ARCFACE_112.map(|p| [p[0] * ratio + diff_x, p[1] * ratio])
}

/// Least-squares similarity transform mapping `src` onto `dst` (Umeyama,
/// with scale). `None` when the source points coincide.
pub fn umeyama(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Option<Affine> {
    let n = src.len().min(dst.len());
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let mean = |p: &[[f32; 2]]| {
        let (mut x, mut y) = (0f64, 0f64);
        for q in &p[..n] {
            x += f64::from(q[0]);
            y += f64::from(q[1]);
        }
        (x / nf, y / nf)
    };
    let (sx, sy) = mean(src);
    let (dx, dy) = mean(dst);
    // a = Σ s·d, b = Σ s×d over demeaned points; var = Σ |s|² / n.
    let (mut a, mut b, mut var) = (0f64, 0f64, 0f64);
    for i in 0..n {
        let (px, py) = (f64::from(src[i][0]) - sx, f64::from(src[i][1]) - sy);
        let (qx, qy) = (f64::from(dst[i][0]) - dx, f64::from(dst[i][1]) - dy);
        a += px * qx + py * qy;
        b += px * qy - py * qx;
        var += px * px + py * py;
    }
    if var <= f64::EPSILON || (a == 0.0 && b == 0.0) {
        return None;
    }
    // The optimal proper rotation has cos ∝ a, sin ∝ b; scale = |(a, b)| / Σ|s|².
    let norm = a.hypot(b);
    let scale = norm / var;
    let (c, s) = (a / norm * scale, b / norm * scale);
    Some([
        [c, -s, dx - (c * sx - s * sy)],
        [s, c, dy - (s * sx + c * sy)],
    ])
}

/// `cv2.invertAffineTransform`.
pub fn invert_affine(m: &Affine) -> Affine {
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    let d = if det == 0.0 { 0.0 } else { 1.0 / det };
    let (a11, a22, a12, a21) = (m[1][1] * d, m[0][0] * d, -m[0][1] * d, -m[1][0] * d);
    let b1 = -a11 * m[0][2] - a12 * m[1][2];
    let b2 = -a21 * m[0][2] - a22 * m[1][2];
    [[a11, a12, b1], [a21, a22, b2]]
}

/// Maps a point through `m`.
pub fn apply(m: &Affine, p: [f32; 2]) -> [f32; 2] {
    let (x, y) = (f64::from(p[0]), f64::from(p[1]));
    [
        (m[0][0] * x + m[0][1] * y + m[0][2]) as f32,
        (m[1][0] * x + m[1][1] * y + m[1][2]) as f32,
    ]
}

/// Uniform scale of a similarity transform.
pub fn scale_of(m: &Affine) -> f64 {
    (m[0][0] * m[1][1] - m[0][1] * m[1][0]).abs().sqrt()
}

/// `m` followed by a translation of `(-dx, -dy)`: the same warp expressed
/// in the coordinates of a sub-rectangle starting at `(dx, dy)`.
pub fn translate(m: &Affine, dx: f64, dy: f64) -> Affine {
    [
        [m[0][0], m[0][1], m[0][2] - dx],
        [m[1][0], m[1][1], m[1][2] - dy],
    ]
}

/// How samples outside the source are filled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Border {
    /// A constant value (`BORDER_CONSTANT`).
    Constant(f32),
    /// The nearest edge pixel (`BORDER_REPLICATE`).
    Replicate,
}

/// Bilinear affine warp of an interleaved image with `C` channels of `T`.
/// `m` maps source to destination, as in `cv2.warpAffine`.
/// An interleaved image: data, width, height.
type Plane<'a, T> = (&'a [T], usize, usize);

/// Bilinear sampling of an interleaved `C`-channel image at a source
/// position, with OpenCV's border rules. Shared by every warp so that fused
/// loops (paste-back) give exactly the pixels separate warps would.
#[derive(Clone, Copy)]
pub(crate) struct Sampler<'a, T, const C: usize> {
    src: &'a [T],
    sw: usize,
    swi: i64,
    shi: i64,
    border: Border,
}

impl<'a, T: Copy + Into<f32>, const C: usize> Sampler<'a, T, C> {
    pub(crate) fn new(src: &'a [T], sw: usize, sh: usize, border: Border) -> Self {
        Self {
            src,
            sw,
            swi: sw as i64,
            shi: sh as i64,
            border,
        }
    }

    #[inline]
    fn fetch(&self, x: i64, y: i64, ch: usize) -> f32 {
        if x >= 0 && y >= 0 && x < self.swi && y < self.shi {
            self.src[(y as usize * self.sw + x as usize) * C + ch].into()
        } else {
            match self.border {
                Border::Constant(v) => v,
                Border::Replicate => {
                    let (cx, cy) = (
                        x.clamp(0, self.swi - 1) as usize,
                        y.clamp(0, self.shi - 1) as usize,
                    );
                    self.src[(cy * self.sw + cx) * C + ch].into()
                }
            }
        }
    }

    /// The interpolated value of every channel at `(sx, sy)`.
    #[inline]
    pub(crate) fn sample(&self, sx: f32, sy: f32) -> [f32; C] {
        let (x0, y0) = (floor_i64(sx), floor_i64(sy));
        let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
        let mut out = [0f32; C];
        if x0 >= 0 && y0 >= 0 && x0 + 1 < self.swi && y0 + 1 < self.shi {
            let i = (y0 as usize * self.sw + x0 as usize) * C;
            let (r0, r1) = (
                &self.src[i..i + 2 * C],
                &self.src[i + self.sw * C..i + self.sw * C + 2 * C],
            );
            for ch in 0..C {
                let top = r0[ch].into() + (r0[ch + C].into() - r0[ch].into()) * fx;
                let bot = r1[ch].into() + (r1[ch + C].into() - r1[ch].into()) * fx;
                out[ch] = top + (bot - top) * fy;
            }
            return out;
        }
        if let Border::Constant(v) = self.border
            && (x0 >= self.swi || x0 + 1 < 0 || y0 >= self.shi || y0 + 1 < 0)
        {
            return [v; C];
        }
        for (ch, o) in out.iter_mut().enumerate() {
            let (p00, p01, p10, p11) = (
                self.fetch(x0, y0, ch),
                self.fetch(x0 + 1, y0, ch),
                self.fetch(x0, y0 + 1, ch),
                self.fetch(x0 + 1, y0 + 1, ch),
            );
            let top = p00 * (1.0 - fx) + p01 * fx;
            let bot = p10 * (1.0 - fx) + p11 * fx;
            *o = top * (1.0 - fy) + bot * fy;
        }
        out
    }
}

impl<const C: usize> Sampler<'_, u8, C> {
    /// [`Sampler::sample`] rounded to u8 (as [`round_u8`] does): the same
    /// pixels, with the common case (all four neighbours inside the image)
    /// inlined and free of border logic, clamps and saturating casts.
    #[allow(
        clippy::inline_always,
        reason = "inlined into the multiversioned row kernels, so compiled with their vector extensions"
    )]
    #[inline(always)]
    pub(crate) fn sample_u8(&self, sx: f32, sy: f32) -> [u8; C] {
        let (x0, y0) = (floor_i64(sx), floor_i64(sy));
        // One unsigned comparison each also rejects negative positions.
        if (x0 as u64) < (self.swi - 1) as u64 && (y0 as u64) < (self.shi - 1) as u64 {
            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
            let i = (y0 as usize * self.sw + x0 as usize) * C;
            let j = i + self.sw * C;
            let (r0, r1) = (&self.src[i..i + 2 * C], &self.src[j..j + 2 * C]);
            let mut out = [0u8; C];
            for ch in 0..C {
                let (p00, p01) = (f32::from(r0[ch]), f32::from(r0[ch + C]));
                let (p10, p11) = (f32::from(r1[ch]), f32::from(r1[ch + C]));
                let top = p00 + (p01 - p00) * fx;
                let bot = p10 + (p11 - p10) * fx;
                out[ch] = round_in_range(top + (bot - top) * fy);
            }
            return out;
        }
        self.sample_u8_border(sx, sy)
    }

    #[cold]
    #[inline(never)]
    fn sample_u8_border(&self, sx: f32, sy: f32) -> [u8; C] {
        self.sample(sx, sy).map(round_u8)
    }
}

/// [`round_u8`] for a value that interpolates u8 samples (so within float
/// error of [0, 255]): the clamp is two min/max and the cast a bit pattern,
/// instead of a saturating float-to-int conversion.
#[allow(
    clippy::inline_always,
    reason = "inlined into the multiversioned row kernels, so compiled with their vector extensions"
)]
#[inline(always)]
fn round_in_range(v: f32) -> u8 {
    const MAGIC: f32 = 8_388_608.0; // 2^23: the sum's low mantissa bits are round_even(v)
    ((v.clamp(0.0, 255.0) + MAGIC).to_bits() & 0xFF) as u8
}

/// The inverse of `m` in float32 rows, as OpenCV 5 evaluates it per pixel.
pub(crate) fn inverse_f32(m: &Affine) -> [[f32; 3]; 2] {
    invert_affine(m).map(|r| r.map(|v| v as f32))
}

/// A row of a warp's output: pixel `x` maps to source position
/// `(a·x + bx, d·x + by)`, each product and sum in float32 as OpenCV 5's warp
/// computes it.
#[derive(Clone, Copy)]
pub(crate) struct Line {
    a: f32,
    bx: f32,
    d: f32,
    by: f32,
}

impl Line {
    /// Row `y` of an output under the float32 inverse `[[a, b, c], [d, e, f]]`.
    pub(crate) fn of_row([[a, b, c], [d, e, f]]: [[f32; 3]; 2], y: usize) -> Self {
        let yf = y as f32;
        Self {
            a,
            bx: b * yf + c,
            d,
            by: e * yf + f,
        }
    }

    /// The source position of pixel `x`.
    #[allow(
        clippy::inline_always,
        reason = "inlined into the multiversioned row kernels, so compiled with their vector extensions"
    )]
    #[inline(always)]
    pub(crate) fn at(self, x: usize) -> (f32, f32) {
        self.at_i32(x as i32)
    }

    /// The pixels of `0..n` whose position may lie inside the open square
    /// `(lo, hi)²` (a pixel outside the range certainly does not: the range
    /// is widened by a pixel each side against rounding).
    pub(crate) fn span_in(self, n: usize, lo: f32, hi: f32) -> std::ops::Range<usize> {
        let (lo, hi) = (f64::from(lo), f64::from(hi));
        let mut from = 0f64;
        let mut to = n as f64;
        for (k, b) in [(self.a, self.bx), (self.d, self.by)] {
            let (k, b) = (f64::from(k), f64::from(b));
            if k == 0.0 {
                if b <= lo || b >= hi {
                    return 0..0;
                }
                continue;
            }
            let (p, q) = ((lo - b) / k, (hi - b) / k);
            from = from.max(p.min(q).floor() - 1.0);
            to = to.min(p.max(q).ceil() + 2.0);
        }
        if from >= to {
            return 0..0;
        }
        let clamp = |v: f64| v.clamp(0.0, n as f64) as usize;
        clamp(from)..clamp(to)
    }

    #[allow(
        clippy::inline_always,
        reason = "inlined into the multiversioned row kernels, so compiled with their vector extensions"
    )]
    #[inline(always)]
    fn at_i32(self, x: i32) -> (f32, f32) {
        let xf = x as f32;
        (self.a * xf + self.bx, self.d * xf + self.by)
    }
}

/// Pixels of a row interpolated together by [`interp_batch`]: enough for
/// its position and interpolation loops to run on whole vectors.
pub(crate) const BATCH: usize = 64;

/// Bilinear interpolation of `len` (≤ [`BATCH`]) consecutive pixels of `line`
/// from `start`, in an image of `sw`×`sh` pixels of `bpp` bytes, four lanes
/// per pixel (the pixel's bytes and, for three-byte pixels, the next byte).
/// Returns, per pixel, whether all four neighbours were inside the image (and
/// readable as four bytes) and the rounded lanes, which are then exactly
/// [`Sampler::sample_u8`]'s values: every lane does the same float
/// operations as [`Sampler::sample`]. Pixels not inside are left for the
/// caller's border rule.
///
/// Positions and their integer and fractional parts for the whole batch,
/// then the four neighbours of each pixel gathered as words, then the
/// interpolation: the first and last loops run on vectors.
#[allow(
    clippy::inline_always,
    reason = "inlined into the multiversioned row kernels, so compiled with their vector extensions"
)]
#[inline(always)]
pub(crate) fn interp_batch(
    (src, sw, sh): Plane<'_, u8>,
    bpp: usize,
    line: Line,
    start: usize,
    len: usize,
) -> ([bool; BATCH], [[u8; BATCH]; 4]) {
    let (lastx, lasty) = (sw as u32 - 1, sh as u32 - 1);
    let (mut x0, mut y0) = ([0i32; BATCH], [0i32; BATCH]);
    let (mut fx, mut fy) = ([0f32; BATCH], [0f32; BATCH]);
    for l in 0..BATCH {
        let (sx, sy) = line.at_i32((start + l) as i32);
        let (xi, yi) = (floor_i32(sx), floor_i32(sy));
        (x0[l], y0[l]) = (xi, yi);
        (fx[l], fy[l]) = (sx - xi as f32, sy - yi as f32);
    }
    let mut q = [[0u32; BATCH]; 4];
    let mut inside = [false; BATCH];
    for l in 0..len {
        if (x0[l] as u32) >= lastx || (y0[l] as u32) >= lasty {
            continue;
        }
        let i = (y0[l] as usize * sw + x0[l] as usize) * bpp;
        let j = i + sw * bpp;
        inside[l] = j + bpp + 4 <= src.len();
        if inside[l] {
            for (w, at) in q.iter_mut().zip([i, i + bpp, j, j + bpp]) {
                let mut b = [0u8; 4];
                b.copy_from_slice(&src[at..at + 4]);
                w[l] = u32::from_le_bytes(b);
            }
        }
    }
    let mut v = [[0u8; BATCH]; 4];
    for (c, out) in v.iter_mut().enumerate() {
        let shift = 8 * c as u32;
        for l in 0..BATCH {
            let ch = |w: u32| ((w >> shift) & 0xFF) as f32;
            let (p00, p01, p10, p11) = (ch(q[0][l]), ch(q[1][l]), ch(q[2][l]), ch(q[3][l]));
            let top = p00 + (p01 - p00) * fx[l];
            let bot = p10 + (p11 - p10) * fx[l];
            out[l] = round_in_range(top + (bot - top) * fy[l]);
        }
    }
    (inside, v)
}

/// `floor` to i32 (saturating, so a far position stays outside the image).
#[allow(
    clippy::inline_always,
    reason = "inlined into the multiversioned row kernels, so compiled with their vector extensions"
)]
#[inline(always)]
fn floor_i32(v: f32) -> i32 {
    let t = v as i32;
    if (t as f32) > v { t - 1 } else { t }
}

/// Calls `row_fn(row, line)` for every row of a `dw`×`dh` output of `C`
/// channels, with the row's source positions under the inverse of `m`.
/// Rows in parallel for large outputs.
fn warp_rows<T: Send, const C: usize>(
    m: &Affine,
    (out, dw, dh): (&mut [T], usize, usize),
    row_fn: impl Fn(&mut [T], Line) + Sync,
) {
    use rayon::prelude::*;
    let inv = inverse_f32(m);
    let rows = &mut out[..dw * dh * C];
    let each = |(y, row): (usize, &mut [T])| row_fn(row, Line::of_row(inv, y));
    // Tiny warps stay on the calling thread; a 128×128 crop already gains
    // from two.
    if dw * dh >= 8 * 1024 {
        rows.par_chunks_mut(dw * C).enumerate().for_each(each);
    } else {
        rows.chunks_mut(dw * C).enumerate().for_each(each);
    }
}

/// A bilinear warp of a u8 image with `C` channels.
fn warp_u8<const C: usize>(
    (src, sw, sh): Plane<'_, u8>,
    m: &Affine,
    out: (&mut [u8], usize, usize),
    border: Border,
) {
    let sampler = Sampler::<u8, C>::new(src, sw, sh, border);
    warp_rows::<u8, C>(m, out, |row, line| {
        if C == 3 {
            warp_rgb_row(row, line, &sampler);
        } else {
            for (x, px) in row.chunks_exact_mut(C).enumerate() {
                let (sx, sy) = line.at(x);
                px.copy_from_slice(&sampler.sample_u8(sx, sy));
            }
        }
    });
}

/// One row of an RGB warp: batches through [`interp_batch`], the image's
/// border rule for the rest. Compiled for the vector extensions the CPU has.
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1"))]
fn warp_rgb_row<'a, const C: usize>(row: &mut [u8], line: Line, sampler: &Sampler<'a, u8, C>) {
    let n = row.len() / C;
    let mut start = 0;
    while start < n {
        let len = (n - start).min(BATCH);
        let (inside, v) = interp_batch(
            (sampler.src, sampler.sw, sampler.shi as usize),
            C,
            line,
            start,
            len,
        );
        let pixels = row[start * C..(start + len) * C].chunks_exact_mut(C);
        for (l, px) in pixels.enumerate() {
            if inside[l] {
                for (c, o) in px.iter_mut().enumerate() {
                    *o = v[c][l];
                }
            } else {
                let (sx, sy) = line.at(start + l);
                px.copy_from_slice(&sampler.sample_u8(sx, sy));
            }
        }
        start += len;
    }
}

/// `floor` without a libm call (the baseline x86-64 target has no `roundss`).
#[inline]
pub(crate) fn floor_i64(v: f32) -> i64 {
    let t = v as i64;
    if (t as f32) > v { t - 1 } else { t }
}

/// Round half to even (OpenCV's `cvRound`) for 0 ≤ v < 2²³, without a libm call.
#[inline]
pub(crate) fn round_even(v: f32) -> f32 {
    const MAGIC: f32 = 8_388_608.0; // 2^23
    (v + MAGIC) - MAGIC
}

pub(crate) fn round_u8(v: f32) -> u8 {
    // cvRound: round half to even.
    round_even(v.clamp(0.0, 255.0)) as u8
}

/// `cv2.warpAffine` of an RGB frame into a `width`×`height` output.
pub fn warp_affine(src: &Frame, m: &Affine, width: u32, height: u32, border: Border) -> Frame {
    let (dw, dh) = (width.max(1), height.max(1));
    let mut out =
        Frame::from_rgb(dw, dh, vec![0u8; dw as usize * dh as usize * 3]).unwrap_or_else(|_| {
            Frame::filled(1, 1, [0, 0, 0]).unwrap_or_else(|_| std::process::abort())
        });
    warp_affine_into(src, m, &mut out, border);
    out
}

/// [`warp_affine`] into `out`, whose size is the output's (a buffer reused
/// from frame to frame).
pub fn warp_affine_into(src: &Frame, m: &Affine, out: &mut Frame, border: Border) {
    let (dw, dh) = (out.width() as usize, out.height() as usize);
    warp_u8::<3>(
        (src.data(), src.width() as usize, src.height() as usize),
        m,
        (out.data_mut(), dw, dh),
        border,
    );
}

/// `cv2.warpAffine` of a single-channel float image (masks).
pub fn warp_affine_f32(
    src: &[f32],
    sw: usize,
    sh: usize,
    m: &Affine,
    dw: usize,
    dh: usize,
    border: Border,
) -> Vec<f32> {
    let mut out = vec![0f32; dw * dh];
    let sampler = Sampler::<f32, 1>::new(src, sw, sh, border);
    warp_rows::<f32, 1>(m, (&mut out, dw, dh), |row, line| {
        for (x, px) in row.iter_mut().enumerate() {
            let (sx, sy) = line.at(x);
            *px = sampler.sample(sx, sy)[0];
        }
    });
    out
}

/// `cv2.warpAffine` of a single-channel u8 image (masks).
pub fn warp_affine_gray(
    src: &[u8],
    sw: usize,
    sh: usize,
    m: &Affine,
    dw: usize,
    dh: usize,
    border: Border,
) -> Vec<u8> {
    let mut out = vec![0u8; dw * dh];
    warp_u8::<1>((src, sw, sh), m, (&mut out, dw, dh), border);
    out
}

/// The five-point alignment matrix insightface's `estimate_norm` gives for a
/// square crop of `size` (ArcFace template family).
pub fn estimate_norm(kps: &[[f32; 2]; 5], size: u32) -> Option<Affine> {
    umeyama(kps, &arcface_template(size))
}

/// The integer rectangle `(x, y, w, h)`, clamped to `frame_w`×`frame_h`,
/// covering a `size`×`size` crop mapped back through `inv` (floor/ceil of
/// the corners, grown by `pad`). `None` when it misses the frame.
pub fn crop_bounds(
    inv: &Affine,
    size: u32,
    pad: i64,
    frame_w: u32,
    frame_h: u32,
) -> Option<(u32, u32, u32, u32)> {
    let s = size as f32;
    let corners = [[0.0, 0.0], [s, 0.0], [0.0, s], [s, s]].map(|p| apply(inv, p));
    let minx = corners
        .iter()
        .map(|p| p[0])
        .fold(f32::INFINITY, f32::min)
        .floor() as i64
        - pad;
    let miny = corners
        .iter()
        .map(|p| p[1])
        .fold(f32::INFINITY, f32::min)
        .floor() as i64
        - pad;
    let maxx = corners
        .iter()
        .map(|p| p[0])
        .fold(f32::NEG_INFINITY, f32::max)
        .ceil() as i64
        + pad;
    let maxy = corners
        .iter()
        .map(|p| p[1])
        .fold(f32::NEG_INFINITY, f32::max)
        .ceil() as i64
        + pad;
    let (x1, y1) = (minx.max(0), miny.max(0));
    let (x2, y2) = (maxx.min(i64::from(frame_w)), maxy.min(i64::from(frame_h)));
    (x2 > x1 && y2 > y1).then(|| (x1 as u32, y1 as u32, (x2 - x1) as u32, (y2 - y1) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &Affine, b: &Affine, tol: f64) -> bool {
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .all(|(x, y)| (x - y).abs() < tol)
    }

    #[test]
    fn umeyama_recovers_a_similarity() {
        let (s, th, tx, ty) = (1.7f64, 0.4f64, 12.5, -3.25);
        let m: Affine = [
            [s * th.cos(), -s * th.sin(), tx],
            [s * th.sin(), s * th.cos(), ty],
        ];
        let src = ARCFACE_112;
        let dst = src.map(|p| apply(&m, p));
        let est = umeyama(&src, &dst).unwrap();
        assert!(close(&est, &m, 1e-4), "{est:?}");
    }

    #[test]
    fn umeyama_never_reflects() {
        // Mirrored points: the best *proper* similarity is returned, as skimage does.
        let src = ARCFACE_112;
        let dst = src.map(|p| [112.0 - p[0], p[1]]);
        let m = umeyama(&src, &dst).unwrap();
        let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
        assert!(det > 0.0);
        assert!(umeyama(&[[1.0, 1.0]; 5], &ARCFACE_112).is_none());
    }

    #[test]
    fn skimage_golden() {
        // insightface 0.7.3 face_align.estimate_norm(src, 128) with scikit-image 0.26 (skimage's Umeyama)
        let src = [
            [760.4f32, 401.7],
            [804.3, 399.9],
            [774.0, 428.5],
            [766.0, 448.1],
            [803.3, 446.0],
        ];
        let m = estimate_norm(&src, 128).unwrap();
        let golden: Affine = [
            [
                8.211_547_646_356e-1,
                -3.586_304_686_478e-2,
                -5.625_523_260_989e2,
            ],
            [
                3.586_304_686_478e-2,
                8.211_547_646_356e-1,
                -3.049_891_640_305e2,
            ],
        ];
        assert!(close(&m, &golden, 1e-4), "{m:?}");
    }

    #[test]
    fn the_u8_fast_path_gives_the_rounded_float_sample() {
        // Extreme neighbours (0/255 next to each other) and positions inside,
        // on and beyond every edge, for both borders and one and three channels.
        let (w, h) = (9usize, 7usize);
        let src: Vec<u8> = (0..w * h * 3)
            .map(|i| [0u8, 255, 37, 254, 1, 128][(i * 7 + i / 5) % 6])
            .collect();
        let mut seed = 1u32;
        let mut rnd = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / 16_777_216.0
        };
        for border in [Border::Constant(0.0), Border::Replicate] {
            let s3 = Sampler::<u8, 3>::new(&src, w, h, border);
            let s1 = Sampler::<u8, 1>::new(&src[..w * h], w, h, border);
            for _ in 0..20_000 {
                let (x, y) = (rnd() * 13.0 - 2.0, rnd() * 11.0 - 2.0);
                assert_eq!(
                    s3.sample_u8(x, y),
                    s3.sample(x, y).map(round_u8),
                    "({x}, {y})"
                );
                assert_eq!(
                    s1.sample_u8(x, y),
                    s1.sample(x, y).map(round_u8),
                    "({x}, {y})"
                );
            }
            for (x, y) in [
                (0.0, 0.0),
                (7.999, 5.999),
                (8.0, 6.0),
                (-0.001, 3.0),
                (f32::NAN, 1.0),
            ] {
                assert_eq!(
                    s3.sample_u8(x, y),
                    s3.sample(x, y).map(round_u8),
                    "({x}, {y})"
                );
            }
        }
    }

    #[test]
    fn a_rows_span_holds_every_pixel_whose_position_is_in_the_square() {
        let (lo, hi, n) = (-1.0f32, 128.0f32, 400usize);
        let (mut kept, mut all) = (0, 0);
        for (i, angle) in [
            0.0f64,
            0.3,
            -0.7,
            1.2,
            std::f64::consts::FRAC_PI_2,
            2.5,
            std::f64::consts::PI,
        ]
        .iter()
        .enumerate()
        {
            let scale = 0.4 + 0.15 * i as f64;
            let (c, s) = (angle.cos() * scale, angle.sin() * scale);
            let inv = [
                [c as f32, -s as f32, (-40.0 + 7.0 * i as f64) as f32],
                [s as f32, c as f32, (-60.0 + 11.0 * i as f64) as f32],
            ];
            for y in (0..400).step_by(3) {
                let line = Line::of_row(inv, y);
                let span = line.span_in(n, lo, hi);
                for x in (0..n).filter(|x| !span.contains(x)) {
                    let (sx, sy) = line.at(x);
                    assert!(
                        !(lo < sx && sx < hi && lo < sy && sy < hi),
                        "angle {angle}, row {y}, pixel {x} at ({sx}, {sy}) is left out of {span:?}"
                    );
                }
                kept += span.len();
                all += n;
            }
        }
        // Not everything: the rows cross the square or miss it.
        assert!(kept < all / 2, "{kept} of {all} pixels kept");
        assert!(kept > 0);
    }

    #[test]
    fn the_batched_rgb_warp_gives_the_float_sampler_pixels() {
        // Rows longer than a batch, positions inside, on the last row and
        // column (whose four-byte reads would run past the image) and outside,
        // for both borders.
        let (w, h) = (37usize, 23usize);
        let data: Vec<u8> = (0..w * h * 3).map(|i| (i * 97 + i / 11) as u8).collect();
        let f = Frame::from_rgb(w as u32, h as u32, data).unwrap();
        for border in [Border::Constant(0.0), Border::Replicate] {
            for m in [
                [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
                [[3.7, 0.9, -20.3], [-0.9, 3.7, 5.1]],
                [[2.1, -0.3, 1.25], [0.3, 2.1, 0.5]],
                [[4.0, 0.0, 0.0], [0.0, 4.0, 0.0]],
            ] {
                let (dw, dh) = (150u32, 90u32);
                let out = warp_affine(&f, &m, dw, dh, border);
                let sampler = Sampler::<u8, 3>::new(f.data(), w, h, border);
                let inv = inverse_f32(&m);
                for y in 0..dh {
                    let line = Line::of_row(inv, y as usize);
                    for x in 0..dw {
                        let (sx, sy) = line.at(x as usize);
                        let want = sampler.sample(sx, sy).map(round_u8);
                        assert_eq!(out.pixel(x, y), want, "{m:?} {border:?} ({x}, {y})");
                    }
                }
            }
        }
    }

    #[test]
    fn inverse_round_trips() {
        let m: Affine = [[0.7, -0.3, 20.3], [0.31, 0.69, -5.7]];
        let inv = invert_affine(&m);
        let p = apply(&inv, apply(&m, [13.0, -7.5]));
        assert!((p[0] - 13.0).abs() < 1e-4 && (p[1] + 7.5).abs() < 1e-4);
    }

    #[test]
    fn identity_warp_is_exact_and_borders_behave() {
        let mut d = Vec::new();
        for i in 0..(6 * 4) {
            d.extend_from_slice(&[(i * 10) as u8, 7, 200]);
        }
        let f = Frame::from_rgb(6, 4, d).unwrap();
        let id: Affine = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        assert_eq!(warp_affine(&f, &id, 6, 4, Border::Constant(0.0)), f);
        // Shift right by 2: the first two columns come from outside.
        let shift: Affine = [[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]];
        let c = warp_affine(&f, &shift, 6, 4, Border::Constant(0.0));
        assert_eq!(c.pixel(0, 0), [0, 0, 0]);
        assert_eq!(c.pixel(2, 1), f.pixel(0, 1));
        let r = warp_affine(&f, &shift, 6, 4, Border::Replicate);
        assert_eq!(r.pixel(0, 1), f.pixel(0, 1));
        // Half-pixel shift averages neighbours.
        let half: Affine = [[1.0, 0.0, -0.5], [0.0, 1.0, 0.0]];
        let h = warp_affine(&f, &half, 6, 4, Border::Replicate);
        assert_eq!(h.pixel(0, 0)[0], 5);
    }

    #[test]
    fn crop_bounds_cover_and_clamp() {
        let inv: Affine = [[2.0, 0.0, 10.0], [0.0, 2.0, 20.0]];
        assert_eq!(
            crop_bounds(&inv, 128, 2, 1000, 1000),
            Some((8, 18, 260, 260))
        );
        assert_eq!(crop_bounds(&inv, 128, 2, 100, 100), Some((8, 18, 92, 82)));
        let off: Affine = [[1.0, 0.0, 5000.0], [0.0, 1.0, 0.0]];
        assert_eq!(crop_bounds(&off, 128, 2, 100, 100), None);
    }
}
