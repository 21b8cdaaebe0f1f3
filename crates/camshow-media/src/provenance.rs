//! Machine-readable provenance: every image the product writes says it is
//! AI-generated, as XMP with IPTC `DigitalSourceType` =
//! `compositeWithTrainedAlgorithmicMedia`, the software name and version.
//!
//! PNG files get an `iTXt` chunk with keyword `XML:com.adobe.xmp`; JPEG files
//! an `APP1` segment with the `http://ns.adobe.com/xap/1.0/` signature. Both
//! are the places the XMP specification (part 3) names, so exiftool, Adobe
//! tools and C2PA-aware viewers find them.

use crate::error::{Error, Result};

/// The IPTC NewsCodes term for AI-composited media.
pub const DIGITAL_SOURCE_TYPE: &str =
    "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia";

const XMP_JPEG_SIG: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const XMP_PNG_KEYWORD: &[u8] = b"XML:com.adobe.xmp";

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// UTC time as ISO 8601, from the system clock.
pub fn now_iso8601() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// What an output is: every output carries the IPTC `DigitalSourceType`
/// (the product's rule: everything it writes is labelled AI-generated), and
/// this says what was done, so a picture where no face was swapped, a
/// detection drawing or a thumbnail is not taken for a face swap. Written as
/// `camshow:Operation` (namespace [`CAMSHOW_NS`]) and in the description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// At least one face was swapped.
    FaceSwap,
    /// Processed by the face swapper, but no face was swapped in it.
    NoFaceSwapped,
    /// The input with the detected faces drawn on it.
    DetectionAnnotation,
    /// A face cropped from the input (face-map thumbnails).
    FaceThumbnail,
}

impl Operation {
    /// The value of `camshow:Operation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FaceSwap => "face-swap",
            Self::NoFaceSwapped => "no-face-swapped",
            Self::DetectionAnnotation => "face-detection-annotation",
            Self::FaceThumbnail => "face-thumbnail",
        }
    }

    /// The human-readable description, with `detail` (e.g. the swapper).
    pub fn describe(self, detail: &str) -> String {
        let what = match self {
            Self::FaceSwap => "face swap",
            Self::NoFaceSwapped => "no face swapped",
            Self::DetectionAnnotation => "face detections drawn on the input",
            Self::FaceThumbnail => "face thumbnail cropped from the input",
        };
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(" ({detail})")
        };
        format!("{what}{detail}, made with {}", camshow_core::SOFTWARE)
    }
}

/// The XMP namespace of `camshow:Operation`.
pub const CAMSHOW_NS: &str = "urn:camshow-deepfaker:xmp:1.0";

/// The XMP packet written into every output: the IPTC `DigitalSourceType`,
/// what was done (`camshow:Operation`) and a description of it.
pub fn xmp_packet(op: Operation, detail: &str) -> String {
    let description = op.describe(detail);
    format!(
        r#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:camshow="{CAMSHOW_NS}"
    Iptc4xmpExt:DigitalSourceType="{DIGITAL_SOURCE_TYPE}"
    camshow:Operation="{op}"
    xmp:CreatorTool="{tool}"
    xmp:CreateDate="{date}">
   <dc:description>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">{desc}</rdf:li>
    </rdf:Alt>
   </dc:description>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"#,
        tool = xml_escape(camshow_core::SOFTWARE),
        date = now_iso8601(),
        desc = xml_escape(&description),
        op = op.as_str(),
    )
}

/// The UUID of an ISO-BMFF (MP4/MOV) box that holds an XMP packet.
pub const XMP_UUID: [u8; 16] = [
    0xBE, 0x7A, 0xCF, 0xCB, 0x97, 0xA9, 0x42, 0xE8, 0x9C, 0x71, 0x99, 0x94, 0x91, 0xE3, 0xAF, 0xAC,
];

/// A top-level `uuid` box carrying `xmp`, for the end of an MP4/MOV file
/// (appending it moves no other box, so no offset changes).
pub fn mp4_xmp_box(xmp: &str) -> Vec<u8> {
    let size = 8 + 16 + xmp.len();
    let mut b = Vec::with_capacity(size);
    b.extend_from_slice(&u32::try_from(size).unwrap_or(u32::MAX).to_be_bytes());
    b.extend_from_slice(b"uuid");
    b.extend_from_slice(&XMP_UUID);
    b.extend_from_slice(xmp.as_bytes());
    b
}

/// Inserts an XMP `iTXt` chunk right after `IHDR` of a PNG file.
pub fn png_with_xmp(png: &[u8], xmp: &str) -> Result<Vec<u8>> {
    const SIG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !png.starts_with(SIG) || png.len() < 33 || &png[12..16] != b"IHDR" {
        return Err(Error::Internal("not a PNG stream".into()));
    }
    let ihdr_len = u32::from_be_bytes([png[8], png[9], png[10], png[11]]) as usize;
    let after_ihdr = 8 + 12 + ihdr_len;
    let mut data = Vec::with_capacity(xmp.len() + 32);
    data.extend_from_slice(XMP_PNG_KEYWORD);
    data.extend_from_slice(&[0, 0, 0]); // keyword end, no compression, method 0
    data.push(0); // empty language tag
    data.push(0); // empty translated keyword
    data.extend_from_slice(xmp.as_bytes());
    let mut chunk = Vec::with_capacity(data.len() + 12);
    chunk.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(b"iTXt");
    crc.update(&data);
    chunk.extend_from_slice(b"iTXt");
    chunk.extend_from_slice(&data);
    chunk.extend_from_slice(&crc.finalize().to_be_bytes());
    let mut out = Vec::with_capacity(png.len() + chunk.len());
    out.extend_from_slice(&png[..after_ihdr]);
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&png[after_ihdr..]);
    Ok(out)
}

/// Inserts an XMP `APP1` segment after the JPEG's `SOI` and any `APP0` (JFIF).
pub fn jpeg_with_xmp(jpeg: &[u8], xmp: &str) -> Result<Vec<u8>> {
    if !jpeg.starts_with(&[0xff, 0xd8]) {
        return Err(Error::Internal("not a JPEG stream".into()));
    }
    let payload_len = XMP_JPEG_SIG.len() + xmp.len() + 2;
    if payload_len > 65_535 {
        return Err(Error::Invalid(
            "XMP packet too large for one JPEG segment".into(),
        ));
    }
    let mut pos = 2;
    if jpeg.len() > 4 && jpeg[2] == 0xff && jpeg[3] == 0xe0 {
        let len = usize::from(u16::from_be_bytes([jpeg[4], jpeg[5]]));
        pos = (4 + len).min(jpeg.len());
    }
    let mut out = Vec::with_capacity(jpeg.len() + payload_len + 2);
    out.extend_from_slice(&jpeg[..pos]);
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&(payload_len as u16).to_be_bytes());
    out.extend_from_slice(XMP_JPEG_SIG);
    out.extend_from_slice(xmp.as_bytes());
    out.extend_from_slice(&jpeg[pos..]);
    Ok(out)
}

/// Finds the XMP packet in PNG or JPEG bytes, if any (for tests and `doctor`).
pub fn find_xmp(bytes: &[u8]) -> Option<String> {
    let start = bytes.windows(10).position(|w| w == b"<x:xmpmeta")?;
    let end = bytes[start..]
        .windows(12)
        .position(|w| w == b"</x:xmpmeta>")?
        + start
        + 12;
    String::from_utf8(bytes[start..end].to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates_look_right() {
        let d = now_iso8601();
        assert_eq!(d.len(), 20);
        assert!(d.starts_with("20") && d.ends_with('Z'));
    }

    #[test]
    fn png_chunk_is_valid_and_image_still_decodes() {
        let img = image::RgbImage::from_pixel(3, 2, image::Rgb([1, 2, 3]));
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let out = png_with_xmp(&png, &xmp_packet(Operation::FaceSwap, "test")).unwrap();
        let back = image::load_from_memory(&out).unwrap().to_rgb8();
        assert_eq!(back, img);
        assert!(find_xmp(&out).unwrap().contains(DIGITAL_SOURCE_TYPE));
        assert!(png_with_xmp(b"GIF89a", "x").is_err());
    }

    #[test]
    fn jpeg_segment_keeps_image() {
        let img = image::RgbImage::from_pixel(8, 8, image::Rgb([200, 10, 10]));
        let mut jpg = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut jpg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
        let out = jpeg_with_xmp(&jpg, &xmp_packet(Operation::FaceSwap, "a < b & c")).unwrap();
        let back = image::load_from_memory(&out).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (8, 8));
        let xmp = find_xmp(&out).unwrap();
        assert!(xmp.contains("a &lt; b &amp; c"));
        assert!(jpeg_with_xmp(b"\x89PNG", "x").is_err());
    }
}
