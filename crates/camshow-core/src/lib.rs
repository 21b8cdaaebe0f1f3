//! # camshow-core: the Camshow Deepfaker engine
//!
//! One frame's way through the engine:
//!
//! 1. **safety** — the content-safety gate ([`safety::SafetyGate`]) checks the
//!    frame; nudity stops processing, and no setting turns this off;
//! 2. **detect** — a face detector ([`detect`]: SCRFD, CenterFace, BlazeFace)
//!    finds boxes and five points;
//! 3. **analyse** — identity embeddings and 106 landmarks only when a later
//!    stage needs them ([`analysis`]);
//! 4. **select** — one (most prominent), many, or faces matching a reference
//!    identity ([`select`]);
//! 5. **align → swap → paste back** — inswapper_128 or the model-free classic
//!    swapper on a crop aligned by Umeyama ([`geometry`]), pasted back with a
//!    feathered mask ([`swap`]);
//! 6. **process** — the rest of the frame processor chain ([`process`]:
//!    masks, mouth mask, colour, opacity, sharpness, face enhancers), in the
//!    order chosen, on the same analysed faces. [`pipeline::SwapEngine`] runs 1–6.
//!
//! Models run on ONNX Runtime ([`runtime`]), loaded at run time, with the
//! execution provider chosen per run and reported per model. Model files are
//! managed and verified by [`models`]; [`onnx`] reads and rewrites ONNX files
//! without ONNX Runtime.
//!
//! ```
//! use camshow_core::{Frame, imgproc::resize_bilinear};
//! let frame = Frame::filled(64, 48, [200, 100, 50])?;
//! let small = resize_bilinear(&frame, 32, 24);
//! assert_eq!(small.pixel(0, 0), [200, 100, 50]);
//! # Ok::<(), camshow_core::Error>(())
//! ```
#![warn(missing_docs)]
// Libraries report through `tracing` and return values; only binaries print.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod analysis;
pub mod atomic;
pub mod cache;
pub mod child;
pub mod context;
pub mod detect;
pub mod env_vars;
mod error;
pub mod frame;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod geometry;
pub mod imgproc;
pub mod mapping;
pub mod models;
pub mod onnx;
pub mod paths;
pub mod pipeline;
pub mod process;
pub mod runtime;
pub mod safety;
pub mod select;
pub mod session;
pub mod settings;
pub mod standin;
pub mod swap;
pub mod track;

pub use error::{Checker, Error, Problem, Result, one_line};
pub use frame::Frame;

/// The product name and version, as written into provenance metadata.
pub const SOFTWARE: &str = concat!("Camshow Deepfaker ", env!("CARGO_PKG_VERSION"));

/// Cargo features this build of the engine was compiled with.
pub fn enabled_features() -> Vec<&'static str> {
    let mut v = Vec::new();
    for (on, name) in [
        (cfg!(feature = "cuda"), "cuda"),
        (cfg!(feature = "tensorrt"), "tensorrt"),
        (cfg!(feature = "coreml"), "coreml"),
        (cfg!(feature = "directml"), "directml"),
        (cfg!(feature = "openvino"), "openvino"),
        (cfg!(feature = "rocm"), "rocm"),
    ] {
        if on {
            v.push(name);
        }
    }
    v
}
