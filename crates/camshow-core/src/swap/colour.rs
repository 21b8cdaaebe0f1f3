//! Colour transfer in CIE L*a*b*: shift and scale the source's channel
//! statistics to the target's, measured inside a mask (Reinhard et al.).

fn srgb_to_linear(v: f32) -> f32 {
    if v <= 0.040_45 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb(v: f32) -> f32 {
    if v <= 0.003_130_8 {
        v * 12.92
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    }
}

const WHITE: [f32; 3] = [0.950_47, 1.0, 1.088_83];

fn f_lab(t: f32) -> f32 {
    if t > 0.008_856 {
        t.cbrt()
    } else {
        7.787 * t + 16.0 / 116.0
    }
}

fn f_lab_inv(t: f32) -> f32 {
    let c = t * t * t;
    if c > 0.008_856 {
        c
    } else {
        (t - 16.0 / 116.0) / 7.787
    }
}

/// `srgb_to_linear(v / 255)` for every byte (the same values, computed once).
static LINEAR: std::sync::LazyLock<[f32; 256]> =
    std::sync::LazyLock::new(|| std::array::from_fn(|v| srgb_to_linear(v as f32 / 255.0)));

const SRGB_STEPS: usize = 8192;

/// `linear_to_srgb` sampled on [0, 1] for linear interpolation (within 0.01
/// of a level of the exact curve).
static SRGB: std::sync::LazyLock<Vec<f32>> = std::sync::LazyLock::new(|| {
    (0..=SRGB_STEPS)
        .map(|i| linear_to_srgb(i as f32 / SRGB_STEPS as f32))
        .collect()
});

/// sRGB (0–255) to L*a*b* (D65).
pub fn rgb_to_lab(p: [u8; 3]) -> [f32; 3] {
    let lut = &*LINEAR;
    let [r, g, b] = p.map(|v| lut[usize::from(v)]);
    let x = (0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b) / WHITE[0];
    let y = (0.212_672_9 * r + 0.715_152_2 * g + 0.072_175 * b) / WHITE[1];
    let z = (0.019_333_9 * r + 0.119_192 * g + 0.950_304_1 * b) / WHITE[2];
    let (fx, fy, fz) = (f_lab(x), f_lab(y), f_lab(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// L*a*b* (D65) to sRGB (0–255), clamped.
pub fn lab_to_rgb(l: [f32; 3]) -> [u8; 3] {
    let fy = (l[0] + 16.0) / 116.0;
    let fx = fy + l[1] / 500.0;
    let fz = fy - l[2] / 200.0;
    let (x, y, z) = (
        f_lab_inv(fx) * WHITE[0],
        f_lab_inv(fy) * WHITE[1],
        f_lab_inv(fz) * WHITE[2],
    );
    let r = 3.240_454_2 * x - 1.537_138_5 * y - 0.498_531_4 * z;
    let g = -0.969_266 * x + 1.876_010_8 * y + 0.041_556 * z;
    let b = 0.055_643_4 * x - 0.204_025_9 * y + 1.057_225_2 * z;
    let lut = &*SRGB;
    [r, g, b].map(|v| {
        let t = v.clamp(0.0, 1.0) * SRGB_STEPS as f32;
        let i = (t as usize).min(SRGB_STEPS - 1);
        let s = lut[i] + (lut[i + 1] - lut[i]) * (t - i as f32);
        // Non-negative: adding a half and truncating rounds (without the
        // libm call `round` is on baseline x86-64).
        ((s * 255.0).clamp(0.0, 255.0) + 0.5) as u8
    })
}

/// Mean and standard deviation of each L*a*b* channel.
pub type LabStats = ([f32; 3], [f32; 3]);

/// Mean and standard deviation of each L*a*b* channel over pixels whose mask weight exceeds 0.5.
pub fn lab_stats(rgb: &[u8], mask: &[u8]) -> Option<LabStats> {
    stats_of(
        rgb.chunks_exact(3)
            .zip(mask)
            .filter(|&(_, &m)| m >= 128)
            .map(|(px, _)| rgb_to_lab([px[0], px[1], px[2]])),
    )
}

/// Mean and standard deviation of `lab`; none for fewer than 16 pixels.
fn stats_of(lab: impl Iterator<Item = [f32; 3]>) -> Option<LabStats> {
    let mut sum = [0f64; 3];
    let mut sq = [0f64; 3];
    let mut n = 0f64;
    for lab in lab {
        for c in 0..3 {
            sum[c] += f64::from(lab[c]);
            sq[c] += f64::from(lab[c]) * f64::from(lab[c]);
        }
        n += 1.0;
    }
    if n < 16.0 {
        return None;
    }
    let mean = sum.map(|s| (s / n) as f32);
    let mut std = [0f32; 3];
    for c in 0..3 {
        std[c] = ((sq[c] / n - (sum[c] / n).powi(2)).max(0.0)).sqrt() as f32;
    }
    Some((mean, std))
}

/// Each channel's scale from `source` to `target` statistics.
fn gains(source: LabStats, target: LabStats) -> [f32; 3] {
    let (ss, st) = (source.1, target.1);
    std::array::from_fn(|c| {
        if ss[c] > 1e-3 {
            (st[c] / ss[c]).clamp(0.25, 4.0)
        } else {
            1.0
        }
    })
}

/// One pixel moved from `source` to `target` statistics, back in sRGB.
fn recolour(lab: [f32; 3], source: LabStats, gain: [f32; 3], target: LabStats) -> [u8; 3] {
    lab_to_rgb(std::array::from_fn(|c| {
        (lab[c] - source.0[c]) * gain[c] + target.0[c]
    }))
}

/// Recolours `rgb` in place so its masked L*a*b* statistics match `target`'s.
pub fn transfer(rgb: &mut [u8], source_stats: LabStats, target_stats: LabStats) {
    let gain = gains(source_stats, target_stats);
    for px in rgb.chunks_exact_mut(3) {
        let lab = rgb_to_lab([px[0], px[1], px[2]]);
        px.copy_from_slice(&recolour(lab, source_stats, gain, target_stats));
    }
}

/// A picture in L*a*b* with its masked statistics, converted once: a
/// source face recoloured for every target ([`transfer`] without converting
/// the source again each time).
#[derive(Debug, Clone)]
pub struct LabImage {
    lab: Vec<[f32; 3]>,
    stats: Option<LabStats>,
}

impl LabImage {
    /// `rgb` in L*a*b*, with its statistics over `mask` (as [`lab_stats`]).
    pub fn new(rgb: &[u8], mask: &[u8]) -> Self {
        let lab: Vec<[f32; 3]> = rgb
            .chunks_exact(3)
            .map(|px| rgb_to_lab([px[0], px[1], px[2]]))
            .collect();
        let stats = stats_of(
            lab.iter()
                .zip(mask)
                .filter(|&(_, &m)| m >= 128)
                .map(|(l, _)| *l),
        );
        Self { lab, stats }
    }

    /// The masked statistics (none when the mask holds under 16 pixels).
    pub fn stats(&self) -> Option<LabStats> {
        self.stats
    }

    /// Writes the picture into `rgb` (the same size), recoloured to
    /// `target` statistics: what [`transfer`] makes of the picture's pixels.
    pub fn transfer_into(&self, target: LabStats, rgb: &mut [u8]) {
        let Some(source) = self.stats else { return };
        let gain = gains(source, target);
        for (px, &lab) in rgb.chunks_exact_mut(3).zip(&self.lab) {
            px.copy_from_slice(&recolour(lab, source, gain, target));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_round_trips() {
        for p in [
            [0u8, 0, 0],
            [255, 255, 255],
            [200, 120, 90],
            [10, 200, 30],
            [90, 90, 250],
        ] {
            let back = lab_to_rgb(rgb_to_lab(p));
            for c in 0..3 {
                assert!(
                    (i32::from(back[c]) - i32::from(p[c])).abs() <= 1,
                    "{p:?} -> {back:?}"
                );
            }
        }
        let white = rgb_to_lab([255, 255, 255]);
        assert!((white[0] - 100.0).abs() < 0.1 && white[1].abs() < 0.1);
    }

    #[test]
    fn a_prepared_source_recolours_exactly_as_transfer_does() {
        let src: Vec<u8> = (0..4096u32)
            .flat_map(|i| [(i * 7 % 256) as u8, (i * 13 % 256) as u8, (i / 16) as u8])
            .collect();
        let tgt: Vec<u8> = (0..4096u32)
            .flat_map(|i| [200, (150 + i % 60) as u8, (i % 120) as u8])
            .collect();
        let mask: Vec<u8> = (0..4096u32)
            .map(|i| if i % 3 == 0 { 0 } else { 255 })
            .collect();
        let t = lab_stats(&tgt, &mask).unwrap();
        let prepared = LabImage::new(&src, &mask);
        assert_eq!(prepared.stats(), lab_stats(&src, &mask));
        let mut expected = src.clone();
        transfer(&mut expected, prepared.stats().unwrap(), t);
        let mut got = vec![0u8; src.len()];
        prepared.transfer_into(t, &mut got);
        assert_eq!(got, expected);
        assert_ne!(got, src, "the colours moved");
    }

    #[test]
    fn transfer_moves_the_mean() {
        let mut src: Vec<u8> = (0..64)
            .flat_map(|i| [100 + (i % 8) as u8, 80, 70])
            .collect();
        let tgt: Vec<u8> = (0..64)
            .flat_map(|i| [200, 150 + (i % 8) as u8, 120])
            .collect();
        let mask = vec![255u8; 64];
        let (s, t) = (
            lab_stats(&src, &mask).unwrap(),
            lab_stats(&tgt, &mask).unwrap(),
        );
        transfer(&mut src, s, t);
        let after = lab_stats(&src, &mask).unwrap();
        for c in 0..3 {
            assert!((after.0[c] - t.0[c]).abs() < 1.5, "{after:?} vs {t:?}");
        }
    }
}
