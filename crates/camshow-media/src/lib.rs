//! # camshow-media: frames in and out of the engine
//!
//! Image files (decoded to [`camshow_core::Frame`], written with provenance
//! metadata and atomically), video files through FFmpeg (probe, decode,
//! encode, the parallel ordered swap job), and live streams (cameras in;
//! preview, MJPEG and virtual-camera outputs).
#![warn(missing_docs)]
// Libraries report through `tracing` and return values; only binaries print.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod camera;
pub mod doctor;
mod error;
pub mod faces;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod image_io;
pub mod job;
pub mod latest;
pub mod live;
pub mod mp4;
pub mod provenance;
pub mod segment;
pub mod swap_job;
pub mod tools;
pub mod video;

pub use error::{Error, Result};
