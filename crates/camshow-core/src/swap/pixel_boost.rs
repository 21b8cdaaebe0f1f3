//! FaceFusion's pixel boost (REFERENCE 3.3): a swapper with a small fixed
//! input (inswapper's 128) produces a sharper face at `B = k·128` by running
//! on the `k²` sub-images that take every k-th pixel with each (row, column)
//! phase, and interleaving the outputs back.

use crate::error::{Error, Result};
use crate::frame::Frame;

/// Splits a `B`×`B` crop into `(B/model)²` sub-images of `model`×`model`;
/// sub-image `i·k + j` holds pixels `(y·k + i, x·k + j)`.
pub fn implode(crop: &Frame, model: u32) -> Result<Vec<Frame>> {
    let b = crop.width();
    if crop.height() != b || model == 0 || !b.is_multiple_of(model) {
        return Err(Error::Internal(format!(
            "pixel boost needs a square crop that is a multiple of {model}, got {}×{}",
            b,
            crop.height()
        )));
    }
    let k = (b / model) as usize;
    let (m, bu) = (model as usize, b as usize);
    let src = crop.data();
    let mut parts = Vec::with_capacity(k * k);
    for i in 0..k {
        for j in 0..k {
            let mut data = Vec::with_capacity(m * m * 3);
            for y in 0..m {
                for x in 0..m {
                    let s = ((y * k + i) * bu + x * k + j) * 3;
                    data.extend_from_slice(&src[s..s + 3]);
                }
            }
            parts.push(Frame::from_rgb(model, model, data)?);
        }
    }
    Ok(parts)
}

/// The inverse of [`implode`].
pub fn explode(parts: &[Frame], model: u32) -> Result<Frame> {
    let k = (parts.len() as f64).sqrt().round() as usize;
    if k == 0
        || k * k != parts.len()
        || parts
            .iter()
            .any(|p| p.width() != model || p.height() != model)
    {
        return Err(Error::Internal(format!(
            "pixel boost needs k² sub-images of {model}×{model}"
        )));
    }
    let m = model as usize;
    let bu = m * k;
    let mut data = vec![0u8; bu * bu * 3];
    for i in 0..k {
        for j in 0..k {
            let p = parts[i * k + j].data();
            for y in 0..m {
                for x in 0..m {
                    let d = ((y * k + i) * bu + x * k + j) * 3;
                    data[d..d + 3].copy_from_slice(&p[(y * m + x) * 3..(y * m + x) * 3 + 3]);
                }
            }
        }
    }
    Frame::from_rgb(bu as u32, bu as u32, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implode_explode_round_trips_exactly() {
        let b = 512u32;
        let data: Vec<u8> = (0..b * b * 3)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let crop = Frame::from_rgb(b, b, data).unwrap();
        let parts = implode(&crop, 128).unwrap();
        assert_eq!(parts.len(), 16);
        // Sub-image (1, 2) holds pixel (y·4+1, x·4+2).
        assert_eq!(parts[4 + 2].pixel(3, 5), crop.pixel(3 * 4 + 2, 5 * 4 + 1));
        assert_eq!(explode(&parts, 128).unwrap(), crop);
        let c256 = Frame::from_rgb(
            256,
            256,
            (0..256 * 256 * 3).map(|i| (i % 251) as u8).collect(),
        )
        .unwrap();
        assert_eq!(explode(&implode(&c256, 128).unwrap(), 128).unwrap(), c256);
    }

    #[test]
    fn rejects_sizes_that_do_not_divide() {
        let crop = Frame::filled(300, 300, [0; 3]).unwrap();
        assert!(implode(&crop, 128).is_err());
        let parts = vec![Frame::filled(128, 128, [0; 3]).unwrap(); 3];
        assert!(explode(&parts, 128).is_err());
    }
}
