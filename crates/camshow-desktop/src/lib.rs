//! # camshow-desktop: the Camshow Deepfaker window
//!
//! A thin Dioxus front end over `camshow-core` and `camshow-media`: the
//! [`state`] module says what every action does (plain Rust, unit-tested),
//! the [`worker`] thread owns the engine and runs every call of the
//! library, the [`ui`] components draw the state, and `app` (feature
//! `desktop`) opens the window. The run's options are the shared settings
//! file (`camshow config` edits the same one); the window's own
//! preferences are in [`prefs`].
#![warn(missing_docs)]

#[cfg(feature = "desktop")]
pub mod app;
pub mod frames;
pub mod prefs;
pub mod state;
pub mod ui;
pub mod worker;
