//! Provenance read back by an independent reader: exiftool.

#![allow(clippy::unwrap_used)]

use camshow_core::Frame;
use camshow_media::image_io::{read_image, write_image};
use camshow_media::provenance::DIGITAL_SOURCE_TYPE;
use camshow_media::provenance::Operation;
use camshow_test_utils::{exiftool, sample};

#[test]
fn png_and_jpeg_outputs_say_they_are_ai_generated() {
    let dir = tempfile::tempdir().unwrap();
    let frame = read_image(&sample("astronaut.png")).unwrap();
    for name in ["out.png", "out.jpg", "OUT.JPEG"] {
        let p = dir.path().join(name);
        write_image(&p, &frame, (Operation::FaceSwap, "test output")).unwrap();
        assert_eq!(
            exiftool("XMP-iptcExt:DigitalSourceType", &p),
            DIGITAL_SOURCE_TYPE,
            "{name}"
        );
        assert!(
            exiftool("XMP-xmp:CreatorTool", &p).starts_with("Camshow Deepfaker "),
            "{name}"
        );
        assert_eq!(
            exiftool("XMP-dc:Description", &p),
            Operation::FaceSwap.describe("test output"),
            "{name}"
        );
        assert_eq!(exiftool("XMP-camshow:Operation", &p), "face-swap", "{name}");
        // exiftool finds no format errors.
        let warn = exiftool("Warning", &p);
        assert!(warn.is_empty(), "{name}: {warn}");
        let back = read_image(&p).unwrap();
        assert_eq!((back.width(), back.height()), (512, 512));
    }
    // PNG is lossless.
    assert_eq!(read_image(&dir.path().join("out.png")).unwrap(), frame);
}

#[test]
fn overwriting_replaces_the_file_in_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("out.png");
    write_image(
        &p,
        &Frame::filled(10, 10, [1, 1, 1]).unwrap(),
        (Operation::FaceSwap, "first"),
    )
    .unwrap();
    write_image(
        &p,
        &Frame::filled(20, 10, [2, 2, 2]).unwrap(),
        (Operation::FaceSwap, "second"),
    )
    .unwrap();
    assert_eq!(read_image(&p).unwrap().width(), 20);
    assert_eq!(
        exiftool("XMP-dc:Description", &p),
        Operation::FaceSwap.describe("second")
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn every_output_says_what_was_done_and_only_swaps_say_face_swap() {
    let dir = tempfile::tempdir().unwrap();
    let frame = Frame::filled(16, 16, [9, 9, 9]).unwrap();
    for (op, value) in [
        (Operation::FaceSwap, "face-swap"),
        (Operation::NoFaceSwapped, "no-face-swapped"),
        (Operation::DetectionAnnotation, "face-detection-annotation"),
        (Operation::FaceThumbnail, "face-thumbnail"),
    ] {
        let p = dir.path().join(format!("{value}.jpg"));
        write_image(&p, &frame, (op, "")).unwrap();
        // Every output is labelled as AI-processed media...
        assert_eq!(
            exiftool("XMP-iptcExt:DigitalSourceType", &p),
            DIGITAL_SOURCE_TYPE
        );
        // ...and says what it is.
        assert_eq!(exiftool("XMP-camshow:Operation", &p), value);
        let description = exiftool("XMP-dc:Description", &p);
        assert_eq!(
            description.starts_with("face swap"),
            op == Operation::FaceSwap,
            "{description}"
        );
    }
}
