//! Reading images into frames, and writing frames with provenance,
//! atomically (a temporary file in the destination folder, then a rename).

use std::fs;
use std::path::Path;

use camshow_core::Frame;
use camshow_core::frame::MAX_DIMENSION;
use image::ImageFormat;

use crate::error::{Error, Result};
use crate::provenance;

/// Decodes an image file (PNG, JPEG) into an RGB frame. Alpha is dropped,
/// greyscale expanded; the size is limited to guard against decompression bombs.
pub fn read_image(path: &Path) -> Result<Frame> {
    let bytes = fs::read(path).map_err(Error::io("cannot read", path))?;
    decode_image(&bytes, path)
}

/// Decodes image bytes; `path` names them in errors.
pub fn decode_image(bytes: &[u8], path: &Path) -> Result<Frame> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(Error::io("cannot read", path))?;
    if reader.format().is_none() {
        return Err(Error::Decode {
            path: path.to_path_buf(),
            source: image::ImageError::Unsupported(
                image::error::UnsupportedError::from_format_and_kind(
                    image::error::ImageFormatHint::Unknown,
                    image::error::UnsupportedErrorKind::Format(
                        image::error::ImageFormatHint::Unknown,
                    ),
                ),
            ),
        });
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(2 << 30);
    reader.limits(limits);
    let img = reader.decode().map_err(|source| Error::Decode {
        path: path.to_path_buf(),
        source,
    })?;
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    Ok(Frame::from_rgb(w, h, rgb.into_raw())?)
}

/// Output image formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// PNG (lossless).
    Png,
    /// JPEG at the given quality.
    Jpeg(u8),
}

impl OutputFormat {
    /// The format for a path's extension.
    pub fn for_path(path: &Path) -> Result<Self> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("png") => Ok(Self::Png),
            Some("jpg" | "jpeg") => Ok(Self::Jpeg(95)),
            _ => Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// Encodes a frame with the provenance XMP embedded.
pub fn encode_image(
    frame: &Frame,
    format: OutputFormat,
    description: &str,
    path: &Path,
) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_raw(frame.width(), frame.height(), frame.data().to_vec())
        .ok_or_else(|| Error::Internal("frame buffer does not match its size".into()))?;
    let mut buf = Vec::new();
    let xmp = provenance::xmp_packet(description);
    match format {
        OutputFormat::Png => {
            img.write_to(&mut std::io::Cursor::new(&mut buf), ImageFormat::Png)
                .map_err(|source| Error::Encode {
                    path: path.to_path_buf(),
                    source,
                })?;
            provenance::png_with_xmp(&buf, &xmp)
        }
        OutputFormat::Jpeg(q) => {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, q)
                .encode_image(&img)
                .map_err(|source| Error::Encode {
                    path: path.to_path_buf(),
                    source,
                })?;
            provenance::jpeg_with_xmp(&buf, &xmp)
        }
    }
}

/// Writes `bytes` to `path` atomically (see [`camshow_core::atomic::write`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(camshow_core::atomic::write(path, bytes)?)
}

/// Encodes `frame` in the format named by `path`'s extension, with
/// provenance, and writes it atomically.
pub fn write_image(path: &Path, frame: &Frame, description: &str) -> Result<()> {
    let format = OutputFormat::for_path(path)?;
    let bytes = encode_image(frame, format, description, path)?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        assert!(matches!(read_image(&p), Err(Error::Io { .. })));
        fs::write(&p, b"definitely not an image").unwrap();
        assert!(matches!(read_image(&p), Err(Error::Decode { .. })));
        // truncated PNG
        let frame = Frame::filled(40, 30, [9, 8, 7]).unwrap();
        let good = encode_image(&frame, OutputFormat::Png, "t", &p).unwrap();
        fs::write(&p, &good[..good.len() / 2]).unwrap();
        assert!(read_image(&p).is_err());
        // a header claiming a huge image
        let mut huge = good.clone();
        huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(decode_image(&huge, &p).is_err());
    }

    #[test]
    fn write_is_atomic_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let frame = Frame::from_rgb(2, 1, vec![1, 2, 3, 250, 251, 252]).unwrap();
        let p = dir.path().join("out.png");
        write_image(&p, &frame, "unit test").unwrap();
        assert_eq!(read_image(&p).unwrap(), frame);
        assert!(matches!(
            write_image(&dir.path().join("out.gif"), &frame, "x"),
            Err(Error::UnsupportedFormat { .. })
        ));
        assert!(write_image(&dir.path().join("missing/out.png"), &frame, "x").is_err());
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_paths_work() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9.jpg"));
        let frame = Frame::filled(16, 16, [10, 200, 30]).unwrap();
        write_image(&p, &frame, "x").unwrap();
        assert_eq!(read_image(&p).unwrap().width(), 16);
    }
}
