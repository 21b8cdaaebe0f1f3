//! The mouth mask: the target's real mouth kept inside the swapped face, so
//! lips move with speech (REFERENCE 1.10, with its defects fixed).
//!
//! * the polygon is the 2d106 outer lip, points 52–63 in index order, scaled
//!   about its centre by `1 + 2s` (s = size/100) and, below the centre, by a
//!   further chin bias of `1 + 2s`, so at 100 it reaches the chin;
//! * the mask is the filled polygon inside the polygon's box padded by 10 %,
//!   feathered by `clamp(min(w,h)/8, 1, 30)` and normalised to a peak of 1;
//! * unlike Deep-Live-Cam, the kept mouth is colour-matched (L*a*b* mean and
//!   deviation) to the swapped face around it, so it does not look pasted on;
//! * in video and live modes the landmarks come from the tracker, smoothed
//!   per track, so the polygon does not wobble from frame to frame.

use super::finish::Rect;
use super::masks::{feather, polygon_mask};
use crate::frame::Frame;
use crate::geometry::round_even;
use crate::swap::colour;

/// 2d106 indices of the outer-lip outline, in drawing order.
pub const OUTER_LIP: std::ops::RangeInclusive<usize> = 52..=63;

/// The expanded mouth polygon for mask size 0–100, or `None` when the
/// landmarks are missing or not finite.
pub fn mouth_polygon(landmarks_106: &[[f32; 2]], size: u8) -> Option<Vec<[f32; 2]>> {
    let pts: Vec<[f32; 2]> = landmarks_106.get(OUTER_LIP)?.to_vec();
    if pts.iter().flatten().any(|v| !v.is_finite()) {
        return None;
    }
    let n = pts.len() as f32;
    let c = [
        pts.iter().map(|p| p[0]).sum::<f32>() / n,
        pts.iter().map(|p| p[1]).sum::<f32>() / n,
    ];
    let s = (f32::from(size) / 100.0).clamp(0.0, 1.0);
    let expansion = 1.0 + 2.0 * s;
    let chin_bias = 1.0 + 2.0 * s;
    Some(
        pts.iter()
            .map(|p| {
                let x = c[0] + (p[0] - c[0]) * expansion;
                let mut dy = (p[1] - c[1]) * expansion;
                if p[1] > c[1] {
                    dy *= chin_bias;
                }
                [x, c[1] + dy]
            })
            .collect(),
    )
}

/// The polygon's box padded by 10 % of its size, clamped to the frame.
pub fn mouth_box(polygon: &[[f32; 2]], fw: u32, fh: u32) -> Option<Rect> {
    let minx = polygon.iter().map(|p| p[0]).fold(f32::INFINITY, f32::min);
    let maxx = polygon
        .iter()
        .map(|p| p[0])
        .fold(f32::NEG_INFINITY, f32::max);
    let miny = polygon.iter().map(|p| p[1]).fold(f32::INFINITY, f32::min);
    let maxy = polygon
        .iter()
        .map(|p| p[1])
        .fold(f32::NEG_INFINITY, f32::max);
    let (pw, ph) = ((maxx - minx) * 0.1, (maxy - miny) * 0.1);
    let x1 = ((minx - pw).floor().max(0.0) as i64).min(i64::from(fw));
    let y1 = ((miny - ph).floor().max(0.0) as i64).min(i64::from(fh));
    let x2 = ((maxx + pw).ceil().max(0.0) as i64).min(i64::from(fw));
    let y2 = ((maxy + ph).ceil().max(0.0) as i64).min(i64::from(fh));
    (x2 - x1 >= 2 && y2 - y1 >= 2)
        .then(|| (x1 as u32, y1 as u32, (x2 - x1) as u32, (y2 - y1) as u32))
}

/// The feathered mask of `polygon` over `rect` (row-major, rect-sized).
pub fn mouth_mask(polygon: &[[f32; 2]], rect: Rect) -> Vec<f32> {
    let (x, y, w, h) = rect;
    let local: Vec<[f32; 2]> = polygon
        .iter()
        .map(|p| [p[0] - x as f32, p[1] - y as f32])
        .collect();
    let (wu, hu) = (w as usize, h as usize);
    let radius = (wu.min(hu) / 8).clamp(1, 30);
    feather(&polygon_mask(&local, wu, hu), wu, hu, radius)
}

/// Puts the original (pre-swap) mouth back into `frame` through the mouth
/// mask, colour-matched to the swapped face. Returns the rectangle used.
pub fn apply_mouth_mask(
    frame: &mut Frame,
    original: &Frame,
    landmarks_106: &[[f32; 2]],
    size: u8,
    debug: bool,
) -> Option<Rect> {
    let polygon = mouth_polygon(landmarks_106, size)?;
    let rect = mouth_box(&polygon, frame.width(), frame.height())?;
    let mask = mouth_mask(&polygon, rect);
    let (x, y, w, h) = rect;
    let pixels = |f: &Frame| {
        f.crop(i64::from(x), i64::from(y), i64::from(w), i64::from(h))
            .into_data()
    };
    let mut mouth = pixels(original);
    let swapped = pixels(frame);
    let m8: Vec<u8> = mask
        .iter()
        .map(|v| if *v > 0.5 { 255 } else { 0 })
        .collect();
    if let (Some(s), Some(t)) = (
        colour::lab_stats(&mouth, &m8),
        colour::lab_stats(&swapped, &m8),
    ) {
        // Match brightness and tint only (means), keeping the lips' own contrast.
        colour::transfer(&mut mouth, (s.0, [1.0; 3]), (t.0, [1.0; 3]));
    }
    let stride = frame.width() as usize * 3;
    let data = frame.data_mut();
    for (i, &m) in mask.iter().enumerate() {
        if m <= 0.0 {
            continue;
        }
        let (xx, yy) = (i % w as usize, i / w as usize);
        let di = (y as usize + yy) * stride + (x as usize + xx) * 3;
        for c in 0..3 {
            let v = f32::from(mouth[i * 3 + c]) * m + f32::from(data[di + c]) * (1.0 - m);
            data[di + c] = round_even(v.clamp(0.0, 255.0)) as u8;
        }
    }
    if debug {
        draw_polygon(frame, &polygon, [0, 255, 0]);
    }
    Some(rect)
}

/// Draws a closed polyline (debug overlays).
pub fn draw_polygon(frame: &mut Frame, polygon: &[[f32; 2]], rgb: [u8; 3]) {
    for i in 0..polygon.len() {
        let (a, b) = (polygon[i], polygon[(i + 1) % polygon.len()]);
        let steps = ((b[0] - a[0]).abs().max((b[1] - a[1]).abs()).ceil() as usize).max(1);
        for k in 0..=steps {
            let t = k as f32 / steps as f32;
            let (x, y) = (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t);
            frame.put_pixel(x.round() as i64, y.round() as i64, rgb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 106 points with an outer-lip ellipse at (50, 60), radii 10×4.
    fn landmarks() -> Vec<[f32; 2]> {
        let mut lm = vec![[0.0f32, 0.0]; 106];
        for (k, i) in OUTER_LIP.enumerate() {
            let t = k as f32 / 12.0 * std::f32::consts::TAU;
            lm[i] = [50.0 + 10.0 * t.cos(), 60.0 + 4.0 * t.sin()];
        }
        lm
    }

    #[test]
    fn polygon_grows_with_size_and_reaches_down() {
        let lm = landmarks();
        let p0 = mouth_polygon(&lm, 0).unwrap();
        assert!(
            (p0[0][0] - 60.0).abs() < 1e-4,
            "size 0 keeps the lip outline"
        );
        let p100 = mouth_polygon(&lm, 100).unwrap();
        let maxy0 = p0.iter().map(|p| p[1]).fold(f32::MIN, f32::max);
        let maxy = p100.iter().map(|p| p[1]).fold(f32::MIN, f32::max);
        let miny = p100.iter().map(|p| p[1]).fold(f32::MAX, f32::min);
        assert!(
            (maxy - 60.0 - 36.0).abs() < 1e-3,
            "below the centre: 3×3 = 9× the radius, got {maxy}"
        );
        assert!((60.0 - miny - 12.0).abs() < 1e-3, "above: 3×, got {miny}");
        assert!(maxy > maxy0);
        let mut bad = lm.clone();
        bad[55] = [f32::NAN, 1.0];
        assert!(mouth_polygon(&bad, 40).is_none());
        assert!(mouth_polygon(&lm[..50], 40).is_none());
    }

    #[test]
    fn box_is_padded_and_clamped() {
        let p = mouth_polygon(&landmarks(), 0).unwrap();
        let r = mouth_box(&p, 200, 200).unwrap();
        assert_eq!((r.0, r.2), (38, 24));
        // At the frame edge the box is clipped, never out of bounds.
        let r = mouth_box(&p, 55, 62).unwrap();
        assert!(r.0 + r.2 <= 55 && r.1 + r.3 <= 62);
        assert!(mouth_box(&p, 10, 10).is_none());
    }

    #[test]
    fn keeps_the_original_mouth_and_leaves_the_rest() {
        let lm = landmarks();
        let original = Frame::filled(100, 100, [150, 40, 40]).unwrap();
        let mut swapped = Frame::filled(100, 100, [200, 170, 150]).unwrap();
        // Give the original mouth area some structure: a dark line between the lips.
        let mut orig = original.clone();
        for x in 42..59 {
            orig.put_pixel(x, 60, [20, 10, 10]);
        }
        let before = swapped.clone();
        let rect = apply_mouth_mask(&mut swapped, &orig, &lm, 20, false).unwrap();
        // Far from the mouth: untouched.
        assert_eq!(swapped.pixel(5, 5), before.pixel(5, 5));
        for y in 0..100 {
            for x in 0..100 {
                let inside =
                    x >= rect.0 && x < rect.0 + rect.2 && y >= rect.1 && y < rect.1 + rect.3;
                if !inside {
                    assert_eq!(swapped.pixel(x, y), before.pixel(x, y));
                }
            }
        }
        // The lip line survives (darker than its surroundings) at the centre.
        let centre = swapped.pixel(50, 60);
        let above = swapped.pixel(50, 57);
        assert!(
            u32::from(centre[0]) + 40 < u32::from(above[0]),
            "{centre:?} vs {above:?}"
        );
        // Colour matched: the kept mouth is near the swapped face's colour, not the original red.
        assert!(above[1] > 120, "{above:?}");
        let mut dbg = before.clone();
        apply_mouth_mask(&mut dbg, &orig, &lm, 20, true).unwrap();
        let green = (0..100)
            .flat_map(|y| (0..100).map(move |x| (x, y)))
            .filter(|&(x, y)| dbg.pixel(x, y) == [0, 255, 0])
            .count();
        assert!(green > 20, "debug outline drawn: {green}");
    }
}
