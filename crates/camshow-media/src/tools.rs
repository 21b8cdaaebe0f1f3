//! The FFmpeg command-line tools: presence, versions and encoders.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{PoisonError, RwLock};

/// The `ffmpeg` program chosen by the settings (`ffmpeg.path`); `None`: on PATH.
static FFMPEG: RwLock<Option<PathBuf>> = RwLock::new(None);

/// Uses the FFmpeg tools at `ffmpeg` (its folder holds `ffprobe` too), or
/// those on PATH for `None`: the settings' `ffmpeg.path`, applied once by a
/// front end for the whole process.
pub fn set_ffmpeg_path(ffmpeg: Option<&Path>) {
    *FFMPEG.write().unwrap_or_else(PoisonError::into_inner) = ffmpeg.map(Path::to_path_buf);
}

fn tool(name: &str) -> PathBuf {
    match &*FFMPEG.read().unwrap_or_else(PoisonError::into_inner) {
        Some(p) if name == "ffmpeg" => p.clone(),
        Some(p) => {
            let ext = p
                .extension()
                .map(|e| format!(".{}", e.to_string_lossy()))
                .unwrap_or_default();
            p.with_file_name(format!("{name}{ext}"))
        }
        None => PathBuf::from(name),
    }
}

/// A command for `ffmpeg`: every FFmpeg process starts here.
pub fn ffmpeg() -> Command {
    Command::new(tool("ffmpeg"))
}

/// A command for `ffprobe`.
pub fn ffprobe() -> Command {
    Command::new(tool("ffprobe"))
}

/// What `ffmpeg`/`ffprobe` report about themselves.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FfmpegInfo {
    /// First line of `ffmpeg -version`, if ffmpeg runs.
    pub ffmpeg: Option<String>,
    /// First line of `ffprobe -version`, if ffprobe runs.
    pub ffprobe: Option<String>,
    /// Video encoders `ffmpeg -encoders` lists.
    pub video_encoders: Vec<String>,
}

fn first_line(mut cmd: Command, args: &[&str]) -> Option<String> {
    let out = cmd.args(args).output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    })
}

/// Probes the FFmpeg tools on `PATH`.
pub fn ffmpeg_info() -> FfmpegInfo {
    let ffmpeg = first_line(self::ffmpeg(), &["-hide_banner", "-version"]);
    let ffprobe = first_line(self::ffprobe(), &["-hide_banner", "-version"]);
    let mut video_encoders = Vec::new();
    if ffmpeg.is_some()
        && let Ok(out) = self::ffmpeg().args(["-hide_banner", "-encoders"]).output()
    {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // " V....D libx264              libx264 H.264 ..."
            let mut parts = line.split_whitespace();
            if let (Some(flags), Some(name)) = (parts.next(), parts.next())
                && flags.starts_with('V')
                && flags.len() == 6
                && name != "="
            {
                video_encoders.push(name.to_string());
            }
        }
    }
    FfmpegInfo {
        ffmpeg,
        ffprobe,
        video_encoders,
    }
}
