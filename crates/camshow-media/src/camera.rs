//! Camera discovery.

use std::path::PathBuf;

/// A camera the system reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CameraInfo {
    /// Stable id: on Linux the `/dev/v4l/by-id/…` link when the device has
    /// one (it survives re-plugging and reboots), else the device node; on
    /// macOS the AVFoundation index.
    pub id: String,
    /// The device node (`/dev/videoN`) on Linux.
    pub node: String,
    /// Human-readable name from the driver.
    pub name: String,
}

/// The camera a live session uses when none is named: the first one listed.
pub fn default_camera() -> crate::Result<String> {
    list_cameras()
        .into_iter()
        .next()
        .map(|c| c.id)
        .ok_or_else(|| {
            crate::Error::Live(
                "no camera found: plug one in, or use --camera file:CLIP or --camera test".into(),
            )
        })
}

/// Lists video-capture devices. On Linux this reads V4L2's sysfs entries
/// (no device is opened), skipping a camera's extra metadata nodes; on macOS
/// it asks FFmpeg's AVFoundation input.
pub fn list_cameras() -> Vec<CameraInfo> {
    let mut cams = Vec::new();
    if cfg!(target_os = "linux") {
        let by_id: Vec<(PathBuf, PathBuf)> = std::fs::read_dir("/dev/v4l/by-id")
            .map(|rd| {
                rd.filter_map(std::result::Result::ok)
                    .filter_map(|e| Some((e.path(), std::fs::canonicalize(e.path()).ok()?)))
                    .collect()
            })
            .unwrap_or_default();
        let root = PathBuf::from("/sys/class/video4linux");
        if let Ok(rd) = std::fs::read_dir(&root) {
            for e in rd.filter_map(std::result::Result::ok) {
                let node = e.file_name().to_string_lossy().into_owned();
                let index = std::fs::read_to_string(e.path().join("index"))
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok());
                if index.is_some_and(|i| i != 0) {
                    continue;
                }
                let dev = PathBuf::from(format!("/dev/{node}"));
                let name = std::fs::read_to_string(e.path().join("name"))
                    .map_or_else(|_| node.clone(), |s| s.trim().to_string());
                let id = by_id.iter().find(|(_, target)| *target == dev).map_or_else(
                    || dev.display().to_string(),
                    |(link, _)| link.display().to_string(),
                );
                cams.push(CameraInfo {
                    id,
                    node: dev.display().to_string(),
                    name,
                });
            }
        }
    } else if cfg!(target_os = "macos") {
        cams = avfoundation_devices();
    }
    cams.sort_by(|a, b| a.node.cmp(&b.node).then(a.id.cmp(&b.id)));
    cams
}

fn avfoundation_devices() -> Vec<CameraInfo> {
    let Ok(out) = crate::tools::ffmpeg()
        .args([
            "-hide_banner",
            "-f",
            "avfoundation",
            "-list_devices",
            "true",
            "-i",
            "",
        ])
        .output()
    else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&out.stderr);
    let mut cams = Vec::new();
    for line in text.lines() {
        if line.contains("audio devices") {
            break;
        }
        // "[AVFoundation indev @ 0x…] [0] FaceTime HD Camera"
        if let Some(rest) = line.split("] [").nth(1)
            && let Some((idx, name)) = rest.split_once("] ")
            && idx.chars().all(|c| c.is_ascii_digit())
        {
            cams.push(CameraInfo {
                id: idx.to_string(),
                node: idx.to_string(),
                name: name.trim().to_string(),
            });
        }
    }
    cams
}

/// The formats and sizes a camera offers, as FFmpeg lists them
/// (`ffmpeg -f v4l2 -list_formats all`); empty when it cannot tell.
pub fn formats(id: &str) -> Vec<String> {
    if !cfg!(target_os = "linux") {
        return Vec::new();
    }
    let Ok(out) = crate::tools::ffmpeg()
        .args([
            "-hide_banner",
            "-f",
            "v4l2",
            "-list_formats",
            "all",
            "-i",
            id,
        ])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, rest)| rest.trim().to_string()))
        .filter(|l| l.starts_with("Raw") || l.starts_with("Compressed"))
        .collect()
}
