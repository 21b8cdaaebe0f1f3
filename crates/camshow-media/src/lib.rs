//! # camshow-media: frames in and out of the engine
//!
//! Image files (decoded to [`camshow_core::Frame`], written with provenance
//! metadata and atomically), the FFmpeg tools, and cameras.
#![warn(missing_docs)]

pub mod camera;
mod error;
pub mod image_io;
pub mod provenance;
pub mod tools;

pub use error::{Error, Result};
