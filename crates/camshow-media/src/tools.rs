//! The FFmpeg command-line tools: presence, versions and encoders.

use std::process::Command;

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

fn first_line(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
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
    let ffmpeg = first_line("ffmpeg", &["-hide_banner", "-version"]);
    let ffprobe = first_line("ffprobe", &["-hide_banner", "-version"]);
    let mut video_encoders = Vec::new();
    if ffmpeg.is_some()
        && let Ok(out) = Command::new("ffmpeg")
            .args(["-hide_banner", "-encoders"])
            .output()
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
