//! Camera discovery.

use std::path::PathBuf;

/// A camera the system reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CameraInfo {
    /// Stable id (the device node on Linux).
    pub id: String,
    /// Human-readable name from the driver.
    pub name: String,
}

/// Lists video-capture devices. On Linux this reads V4L2's sysfs entries
/// (no device is opened); elsewhere it returns an empty list for now.
pub fn list_cameras() -> Vec<CameraInfo> {
    let mut cams = Vec::new();
    if cfg!(target_os = "linux") {
        let root = PathBuf::from("/sys/class/video4linux");
        if let Ok(rd) = std::fs::read_dir(&root) {
            for e in rd.filter_map(|e| e.ok()) {
                let node = e.file_name().to_string_lossy().into_owned();
                let name = std::fs::read_to_string(e.path().join("name")).map(|s| s.trim().to_string()).unwrap_or_else(|_| node.clone());
                cams.push(CameraInfo { id: format!("/dev/{node}"), name });
            }
        }
    }
    cams.sort_by(|a, b| a.id.cmp(&b.id));
    cams
}

/// The formats and sizes a camera offers, as FFmpeg lists them
/// (`ffmpeg -f v4l2 -list_formats all`); empty when it cannot tell.
pub fn formats(id: &str) -> Vec<String> {
    if !cfg!(target_os = "linux") {
        return Vec::new();
    }
    let Ok(out) = std::process::Command::new("ffmpeg").args(["-hide_banner", "-f", "v4l2", "-list_formats", "all", "-i", id]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, rest)| rest.trim().to_string()))
        .filter(|l| l.starts_with("Raw") || l.starts_with("Compressed"))
        .collect()
}
