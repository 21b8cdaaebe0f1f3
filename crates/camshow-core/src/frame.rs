//! The engine's picture type: tightly packed RGB8.

use crate::error::{Error, Result};

/// Largest width or height the engine accepts (guards against decompression bombs).
pub const MAX_DIMENSION: u32 = 16_384;

/// Refuses a frame size outside 1..=[`MAX_DIMENSION`].
fn check_size(width: u32, height: u32) -> Result<()> {
    if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(Error::InvalidInput(format!(
            "frame size {width}x{height} is outside 1..={MAX_DIMENSION}"
        )));
    }
    Ok(())
}

/// An RGB8 image, rows packed without padding.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({}x{})", self.width, self.height)
    }
}

impl Frame {
    /// Wraps RGB8 bytes; fails when the length does not match.
    pub fn from_rgb(width: u32, height: u32, data: Vec<u8>) -> Result<Self> {
        check_size(width, height)?;
        if data.len() != width as usize * height as usize * 3 {
            return Err(Error::InvalidInput(format!(
                "{} bytes do not make a {width}x{height} RGB frame",
                data.len()
            )));
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// A frame filled with one colour.
    pub fn filled(width: u32, height: u32, rgb: [u8; 3]) -> Result<Self> {
        let n = width as usize * height as usize;
        Self::from_rgb(
            width,
            height,
            rgb.iter().copied().cycle().take(n * 3).collect(),
        )
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The RGB bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The RGB bytes, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Makes this frame `width`×`height` for a caller that overwrites every
    /// pixel next, keeping its allocation when it is large enough (buffers
    /// reused from frame to frame). The pixels are unspecified until then.
    pub fn set_size(&mut self, width: u32, height: u32) -> Result<()> {
        check_size(width, height)?;
        self.width = width;
        self.height = height;
        self.data.resize(width as usize * height as usize * 3, 0);
        Ok(())
    }

    /// Consumes the frame, returning its bytes.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// The pixel at (x, y).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// The rectangle `(x, y, w, h)`, clamped to the frame (at least 1×1).
    pub fn crop(&self, x: i64, y: i64, w: i64, h: i64) -> Frame {
        let x0 = x.clamp(0, i64::from(self.width) - 1) as usize;
        let y0 = y.clamp(0, i64::from(self.height) - 1) as usize;
        let x1 = (x + w).clamp(x0 as i64 + 1, i64::from(self.width)) as usize;
        let y1 = (y + h).clamp(y0 as i64 + 1, i64::from(self.height)) as usize;
        let mut data = Vec::with_capacity((x1 - x0) * (y1 - y0) * 3);
        for row in y0..y1 {
            let s = (row * self.width as usize + x0) * 3;
            data.extend_from_slice(&self.data[s..s + (x1 - x0) * 3]);
        }
        Frame {
            width: (x1 - x0) as u32,
            height: (y1 - y0) as u32,
            data,
        }
    }

    /// Sets the pixel at (x, y) if it is inside the frame.
    pub fn put_pixel(&mut self, x: i64, y: i64, rgb: [u8; 3]) {
        if x >= 0 && y >= 0 && x < i64::from(self.width) && y < i64::from(self.height) {
            let i = (y as usize * self.width as usize + x as usize) * 3;
            self.data[i..i + 3].copy_from_slice(&rgb);
        }
    }
}
