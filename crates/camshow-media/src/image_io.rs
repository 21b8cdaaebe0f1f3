//! Reading images into frames, and writing frames with provenance,
//! atomically (a temporary file in the destination folder, then a rename).

use std::fs;
use std::path::Path;

use camshow_core::Frame;
use camshow_core::frame::MAX_DIMENSION;
use image::ImageFormat;

use crate::error::{Error, Result};
use crate::provenance::{self, Operation};

/// Decodes an image file (PNG, JPEG, WebP, BMP, TIFF, the first frame of a
/// GIF) into an RGB frame, upright (EXIF orientation applied). Alpha is
/// dropped (see [`read_image_alpha`]), greyscale expanded; the size is
/// limited to guard against decompression bombs.
pub fn read_image(path: &Path) -> Result<Frame> {
    Ok(read_image_alpha(path)?.0)
}

/// [`read_image`], with the alpha channel when the picture has one (to be
/// put back with [`write_image_alpha`]).
pub fn read_image_alpha(path: &Path) -> Result<(Frame, Option<Vec<u8>>)> {
    let bytes = fs::read(path).map_err(Error::io("cannot read", path))?;
    decode_image_alpha(&bytes, path)
}

/// Decodes image bytes; `path` names them in errors.
pub fn decode_image(bytes: &[u8], path: &Path) -> Result<Frame> {
    Ok(decode_image_alpha(bytes, path)?.0)
}

/// Whether `bytes` start like a HEIC/HEIF/AVIF photo (an ISO-BMFF `ftyp`
/// box with an image brand), which this build cannot decode.
pub fn is_heif(bytes: &[u8]) -> bool {
    bytes.len() >= 12
        && &bytes[4..8] == b"ftyp"
        && matches!(
            &bytes[8..12],
            b"heic" | b"heix" | b"hevc" | b"heim" | b"heis" | b"mif1" | b"msf1" | b"avif"
        )
}

/// Whether a JPEG ends before its picture does: no end-of-image marker after
/// its last start-of-scan (scan data escapes 0xFF, so an end marker cannot
/// hide inside it; bytes after the marker are allowed).
fn jpeg_truncated(bytes: &[u8]) -> bool {
    let Some(sos) = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]) else {
        return true;
    };
    !bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9])
}

fn decode_image_alpha(bytes: &[u8], path: &Path) -> Result<(Frame, Option<Vec<u8>>)> {
    if is_heif(bytes) {
        return Err(Error::Invalid(format!(
            "{} is a HEIC/HEIF photo, which cannot be decoded here: convert it to JPEG or PNG first",
            path.display()
        )));
    }
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
    if reader.format() == Some(ImageFormat::Jpeg) && jpeg_truncated(bytes) {
        return Err(Error::Invalid(format!(
            "{} is a truncated JPEG (the file ends before the picture does): copy or download it again",
            path.display()
        )));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(2 << 30);
    reader.limits(limits);
    let decode_err = |source| Error::Decode {
        path: path.to_path_buf(),
        source,
    };
    let mut decoder = reader.into_decoder().map_err(decode_err)?;
    // Phone photos are stored sideways with an EXIF orientation: turn them upright.
    let orientation = image::ImageDecoder::orientation(&mut decoder)
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(decode_err)?;
    img.apply_orientation(orientation);
    let alpha = img
        .color()
        .has_alpha()
        .then(|| img.to_rgba8().pixels().map(|p| p.0[3]).collect::<Vec<u8>>());
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    Ok((Frame::from_rgb(w, h, rgb.into_raw())?, alpha))
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
    label: (Operation, &str),
    path: &Path,
) -> Result<Vec<u8>> {
    encode_image_alpha(frame, None, format, label, path)
}

/// [`encode_image`] with an alpha channel put back (PNG keeps it; JPEG has none).
pub fn encode_image_alpha(
    frame: &Frame,
    alpha: Option<&[u8]>,
    format: OutputFormat,
    label: (Operation, &str),
    path: &Path,
) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_raw(frame.width(), frame.height(), frame.data().to_vec())
        .ok_or_else(|| Error::Internal("frame buffer does not match its size".into()))?;
    let mut buf = Vec::new();
    let xmp = provenance::xmp_packet(label.0, label.1);
    match format {
        OutputFormat::Png => {
            let dynamic = match alpha {
                Some(a) if a.len() == img.pixels().len() => {
                    let mut rgba = image::RgbaImage::new(img.width(), img.height());
                    for ((dst, src), &al) in rgba.pixels_mut().zip(img.pixels()).zip(a) {
                        *dst = image::Rgba([src.0[0], src.0[1], src.0[2], al]);
                    }
                    image::DynamicImage::ImageRgba8(rgba)
                }
                _ => image::DynamicImage::ImageRgb8(img),
            };
            dynamic
                .write_to(&mut std::io::Cursor::new(&mut buf), ImageFormat::Png)
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
/// provenance (`label`: what was done, and a detail for its description),
/// and writes it atomically.
pub fn write_image(path: &Path, frame: &Frame, label: (Operation, &str)) -> Result<()> {
    write_image_alpha(path, frame, None, label)
}

/// [`write_image`] with the alpha channel of the input put back.
pub fn write_image_alpha(
    path: &Path,
    frame: &Frame,
    alpha: Option<&[u8]>,
    label: (Operation, &str),
) -> Result<()> {
    let format = OutputFormat::for_path(path)?;
    let bytes = encode_image_alpha(frame, alpha, format, label, path)?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asymmetric(w: u32, h: u32) -> Frame {
        let mut d = Vec::new();
        for y in 0..h {
            for x in 0..w {
                d.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 40]);
            }
        }
        Frame::from_rgb(w, h, d).unwrap()
    }

    #[test]
    fn the_exif_orientation_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("phone.jpg");
        write_image(&p, &asymmetric(64, 32), (Operation::FaceSwap, "t")).unwrap();
        // Orientation 6: stored sideways, to be turned 90° clockwise.
        let o = std::process::Command::new("exiftool")
            .args(["-q", "-overwrite_original", "-Orientation#=6"])
            .arg(&p)
            .status()
            .expect("exiftool (scripts/setup.sh installs it)");
        assert!(o.success());
        let f = read_image(&p).unwrap();
        assert_eq!((f.width(), f.height()), (32, 64), "upright");
        // Turned clockwise: the stored left column (dark red) is now the top row.
        assert!(
            f.pixel(16, 0)[0] < 40 && f.pixel(16, 63)[0] > 200,
            "{:?}",
            f.pixel(16, 0)
        );
    }

    #[test]
    fn transparency_is_kept_and_other_formats_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut rgba = image::RgbaImage::new(8, 4);
        for (i, p) in rgba.pixels_mut().enumerate() {
            *p = image::Rgba([200, 100, 50, (i * 8) as u8]);
        }
        let src = dir.path().join("in.png");
        rgba.save(&src).unwrap();
        let (frame, alpha) = read_image_alpha(&src).unwrap();
        let alpha = alpha.expect("an RGBA PNG has alpha");
        let out = dir.path().join("out.png");
        write_image_alpha(&out, &frame, Some(&alpha), (Operation::FaceSwap, "t")).unwrap();
        let back = image::open(&out).unwrap();
        assert!(back.color().has_alpha());
        assert_eq!(back.to_rgba8(), rgba, "pixels and alpha unchanged");
        assert!(crate::provenance::find_xmp(&std::fs::read(&out).unwrap()).is_some());
        // WebP, BMP, TIFF and GIF in.
        let rgb = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            6,
            5,
            image::Rgb([9, 99, 199]),
        ));
        for ext in ["webp", "bmp", "tiff", "gif"] {
            let p = dir.path().join(format!("x.{ext}"));
            rgb.save(&p).unwrap();
            let f = read_image(&p).unwrap_or_else(|e| panic!("{ext}: {e}"));
            assert_eq!((f.width(), f.height()), (6, 5), "{ext}");
        }
        // HEIC says what it is.
        let heic = dir.path().join("photo.heic");
        std::fs::write(&heic, b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic").unwrap();
        let e = read_image(&heic).unwrap_err().to_string();
        assert!(e.contains("HEIC") && e.contains("convert it"), "{e}");
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        assert!(matches!(read_image(&p), Err(Error::Io { .. })));
        fs::write(&p, b"definitely not an image").unwrap();
        assert!(matches!(read_image(&p), Err(Error::Decode { .. })));
        // truncated PNG
        let frame = Frame::filled(40, 30, [9, 8, 7]).unwrap();
        let good = encode_image(&frame, OutputFormat::Png, (Operation::FaceSwap, "t"), &p).unwrap();
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
        write_image(&p, &frame, (Operation::FaceSwap, "unit test")).unwrap();
        assert_eq!(read_image(&p).unwrap(), frame);
        assert!(matches!(
            write_image(
                &dir.path().join("out.gif"),
                &frame,
                (Operation::FaceSwap, "x")
            ),
            Err(Error::UnsupportedFormat { .. })
        ));
        assert!(
            write_image(
                &dir.path().join("missing/out.png"),
                &frame,
                (Operation::FaceSwap, "x")
            )
            .is_err()
        );
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
        write_image(&p, &frame, (Operation::FaceSwap, "x")).unwrap();
        assert_eq!(read_image(&p).unwrap().width(), 16);
    }
}
