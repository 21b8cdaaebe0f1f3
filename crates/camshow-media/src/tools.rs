//! The FFmpeg command-line tools: presence, versions and encoders.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The video encoders in `ffmpeg -encoders` output.
fn parse_video_encoders(listing: &[u8]) -> Vec<String> {
    let mut encoders = Vec::new();
    for line in String::from_utf8_lossy(listing).lines() {
        // " V....D libx264              libx264 H.264 ..."
        let mut parts = line.split_whitespace();
        if let (Some(flags), Some(name)) = (parts.next(), parts.next())
            && flags.starts_with('V')
            && flags.len() == 6
            && name != "="
        {
            encoders.push(name.to_string());
        }
    }
    encoders
}

/// The last successful encoder listing, with the `ffmpeg` it came from.
static ENCODERS: std::sync::Mutex<Option<(PathBuf, Vec<String>)>> = std::sync::Mutex::new(None);

fn remember_encoders(encoders: &[String]) {
    if !encoders.is_empty() {
        *ENCODERS.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((tool("ffmpeg"), encoders.to_vec()));
    }
}

/// The video encoders this FFmpeg offers: `ffmpeg -encoders`, run once per
/// process and FFmpeg (jobs after the first start without it). Empty when
/// ffmpeg does not run.
pub fn video_encoders() -> Vec<String> {
    let path = tool("ffmpeg");
    if let Some((p, e)) = &*ENCODERS.lock().unwrap_or_else(PoisonError::into_inner)
        && *p == path
    {
        return e.clone();
    }
    let encoders = match self::ffmpeg().args(["-hide_banner", "-encoders"]).output() {
        Ok(out) if out.status.success() => parse_video_encoders(&out.stdout),
        _ => Vec::new(),
    };
    remember_encoders(&encoders);
    encoders
}

/// Probes the FFmpeg tools: two processes at once (`ffprobe -version`, and
/// `ffmpeg -encoders`, whose banner is `ffmpeg -version`'s first line).
pub fn ffmpeg_info() -> FfmpegInfo {
    let probe = self::ffprobe()
        .args(["-hide_banner", "-version"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let (ffmpeg, video_encoders) = match self::ffmpeg().arg("-encoders").output() {
        Ok(out) if out.status.success() => (
            Some(first_line(&out.stderr)).filter(|l| l.starts_with("ffmpeg version")),
            parse_video_encoders(&out.stdout),
        ),
        _ => (None, Vec::new()),
    };
    remember_encoders(&video_encoders);
    let ffprobe = probe
        .and_then(std::process::Child::wait_with_output)
        .ok()
        .filter(|out| out.status.success())
        .map(|out| first_line(&out.stdout));
    FfmpegInfo {
        ffmpeg,
        ffprobe,
        video_encoders,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_listing_gives_the_version_and_the_encoders_and_is_remembered() {
        let info = ffmpeg_info();
        let version = Command::new("ffmpeg")
            .args(["-hide_banner", "-version"])
            .output()
            .expect("ffmpeg (scripts/setup.sh installs it)");
        assert_eq!(info.ffmpeg, Some(first_line(&version.stdout)));
        assert!(
            info.ffprobe
                .as_deref()
                .is_some_and(|v| v.starts_with("ffprobe version")),
            "{:?}",
            info.ffprobe
        );
        assert!(info.video_encoders.iter().any(|e| e == "libx264"));
        assert!(
            !info.video_encoders.iter().any(|e| e == "aac"),
            "audio is not listed"
        );
        assert_eq!(video_encoders(), info.video_encoders);
    }

    #[test]
    fn a_missing_ffmpeg_is_reported_missing_never_remembered_as_another() {
        assert!(!video_encoders().is_empty());
        set_ffmpeg_path(Some(Path::new("/nonexistent/ffmpeg")));
        assert!(video_encoders().is_empty(), "not the other FFmpeg's list");
        let info = ffmpeg_info();
        assert_eq!(info.ffmpeg, None);
        assert_eq!(info.ffprobe, None);
        set_ffmpeg_path(None);
        assert!(!video_encoders().is_empty());
    }
}
