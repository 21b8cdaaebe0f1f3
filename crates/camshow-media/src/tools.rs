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
    /// Video encoders that work on this machine: every software encoder
    /// `ffmpeg -encoders` lists, and the hardware ones whose device is
    /// present and whose one-frame test encode passed.
    pub video_encoders: Vec<String>,
    /// Hardware encoders FFmpeg lists that do not work here (no device for
    /// them, or their test encode failed).
    pub unusable_hardware_encoders: Vec<String>,
    /// Whether NVDEC decodes here ([`cuda_decode_works`]).
    pub cuda_decode: bool,
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

/// Hardware encoder families (by name suffix) and the device each needs:
/// a path that must exist, `"macos"` for the system's own framework, or
/// `""` for a platform this build never runs on.
const HARDWARE: [(&str, &str); 12] = [
    ("_nvenc", "/dev/nvidiactl"),
    ("_qsv", "/dev/dri"),
    ("_vaapi", "/dev/dri"),
    ("_amf", "/dev/dri"),
    ("_vulkan", "/dev/dri"),
    ("_v4l2m2m", "/dev/video0"),
    ("_omx", "/dev/vchiq"),
    ("_rkmpp", "/dev/mpp_service"),
    ("_videotoolbox", "macos"),
    ("_mediacodec", ""),
    ("_mf", ""),
    ("_d3d12va", ""),
];

/// Whether `encoder` runs on a hardware device rather than the CPU.
pub fn is_hardware_encoder(encoder: &str) -> bool {
    HARDWARE.iter().any(|(suffix, _)| encoder.ends_with(suffix))
}

/// Whether `encoder` is fed NV12 frames (the NVENC, QSV and VAAPI ones).
pub fn takes_nv12(encoder: &str) -> bool {
    ["_nvenc", "_qsv", "_vaapi"]
        .iter()
        .any(|s| encoder.ends_with(s))
}

/// Whether the device a hardware `encoder` needs is present (software
/// encoders need none).
fn device_present(encoder: &str) -> bool {
    match HARDWARE
        .iter()
        .find(|(suffix, _)| encoder.ends_with(suffix))
    {
        None => true,
        Some((_, "macos")) => cfg!(target_os = "macos"),
        Some((_, "")) => false,
        Some((_, path)) => Path::new(path).exists(),
    }
}

/// Whether a one-frame test encode with `encoder` passes, fed as a job
/// feeds it (raw frames in the pixel format the job would give it), within
/// [`ENCODER_TEST_LIMIT`] (a driver that hangs fails the test).
pub fn encoder_works(encoder: &str) -> bool {
    // What a job gives it at an even size (`video::output_pixel_format`).
    let format = if takes_nv12(encoder) {
        "nv12"
    } else {
        "yuv420p"
    };
    finishes_in_time(
        self::ffmpeg()
            .args(["-hide_banner", "-v", "error", "-f", "lavfi", "-i"])
            .arg("color=c=gray:s=256x256:r=25")
            .args(["-frames:v", "1", "-pix_fmt", format, "-c:v", encoder])
            .args(["-f", "null", "-"]),
    )
}

/// The methods in `ffmpeg -hwaccels` output.
fn parse_hwaccels(listing: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(listing)
        .lines()
        .skip_while(|l| !l.starts_with("Hardware acceleration methods"))
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Whether FFmpeg decodes on an NVIDIA GPU here (NVDEC, `-hwaccel cuda`):
/// the driver's device is present, `cuda` is among `ffmpeg -hwaccels`, and
/// a one-frame H.264 test decode that keeps its frame on the GPU passes
/// within [`ENCODER_TEST_LIMIT`]. Found out once per process; a machine
/// without the device starts no process.
pub fn cuda_decode_works() -> bool {
    static WORKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WORKS.get_or_init(|| {
        if !Path::new("/dev/nvidiactl").exists() {
            return false;
        }
        let listed = self::ffmpeg()
            .args(["-hide_banner", "-hwaccels"])
            .output()
            .is_ok_and(|o| parse_hwaccels(&o.stdout).iter().any(|m| m == "cuda"));
        listed && test_cuda_decode()
    })
}

/// The one-frame test decode behind [`cuda_decode_works`]: a frame encoded
/// with libx264 into a temporary file, decoded with its frames kept in GPU
/// memory (so a failing NVDEC is an error, not a silent software decode).
fn test_cuda_decode() -> bool {
    let Ok(dir) = tempfile::tempdir() else {
        return false;
    };
    let clip = dir.path().join("probe.mp4");
    finishes_in_time(
        self::ffmpeg()
            .args(["-hide_banner", "-v", "error", "-f", "lavfi", "-i"])
            .arg("testsrc=s=256x256:r=25")
            .args(["-frames:v", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p"])
            .arg(&clip),
    ) && finishes_in_time(
        self::ffmpeg()
            .args(["-hide_banner", "-v", "error"])
            .args(["-hwaccel", "cuda", "-hwaccel_output_format", "cuda", "-i"])
            .arg(&clip)
            .args(["-frames:v", "1", "-f", "null", "-"]),
    )
}

/// Whether `cmd`, run with no input and its output thrown away, exits
/// successfully within [`ENCODER_TEST_LIMIT`] (it is killed otherwise: a
/// driver that hangs fails the test).
fn finishes_in_time(cmd: &mut Command) -> bool {
    let Ok(mut child) = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let started = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if started.elapsed() < ENCODER_TEST_LIMIT => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// How long a hardware encoder's test encode may take.
pub const ENCODER_TEST_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Splits `listed` into the encoders that work here and the hardware ones
/// that do not: hardware encoders are tried (all at once) only where their
/// device is present, so a machine without one starts no process.
fn sort_out(listed: &[String]) -> (Vec<String>, Vec<String>) {
    let tried: Vec<(String, bool)> = std::thread::scope(|scope| {
        let probes: Vec<_> = listed
            .iter()
            .map(|e| {
                let wanted = is_hardware_encoder(e) && device_present(e);
                let probe = wanted.then(|| scope.spawn(|| encoder_works(e)));
                (e, probe)
            })
            .collect();
        probes
            .into_iter()
            .map(|(e, probe)| {
                let works = match probe {
                    Some(p) => p.join().unwrap_or(false),
                    None => !is_hardware_encoder(e),
                };
                (e.clone(), works)
            })
            .collect()
    });
    let (mut usable, mut unusable) = (Vec::new(), Vec::new());
    for (e, works) in tried {
        if works {
            usable.push(e);
        } else {
            unusable.push(e);
        }
    }
    (usable, unusable)
}

/// The last sorting out of the encoders, with the `ffmpeg` it came from.
type Sorted = (PathBuf, Vec<String>, Vec<String>);
static ENCODERS: std::sync::Mutex<Option<Sorted>> = std::sync::Mutex::new(None);

fn remember_encoders(usable: &[String], unusable: &[String]) {
    if !usable.is_empty() {
        *ENCODERS.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((tool("ffmpeg"), usable.to_vec(), unusable.to_vec()));
    }
}

fn remembered() -> Option<(Vec<String>, Vec<String>)> {
    let path = tool("ffmpeg");
    match &*ENCODERS.lock().unwrap_or_else(PoisonError::into_inner) {
        Some((p, u, n)) if *p == path => Some((u.clone(), n.clone())),
        _ => None,
    }
}

/// The video encoders that work on this machine (see
/// [`FfmpegInfo::video_encoders`]) and the hardware ones FFmpeg lists that
/// do not, found once per process and FFmpeg (jobs after the first start
/// without it). Both empty when ffmpeg does not run.
pub fn sorted_video_encoders() -> (Vec<String>, Vec<String>) {
    if let Some(sorted) = remembered() {
        return sorted;
    }
    let listed = match self::ffmpeg().args(["-hide_banner", "-encoders"]).output() {
        Ok(out) if out.status.success() => parse_video_encoders(&out.stdout),
        _ => Vec::new(),
    };
    let (usable, unusable) = sort_out(&listed);
    remember_encoders(&usable, &unusable);
    (usable, unusable)
}

/// The video encoders that work on this machine ([`sorted_video_encoders`]).
pub fn video_encoders() -> Vec<String> {
    sorted_video_encoders().0
}

/// The H.264 encoder for `auto`: NVIDIA's NVENC where it works on this
/// machine (the encode then leaves the CPU to the models), else libx264.
/// Starts no process on a machine without an NVIDIA device.
pub fn preferred_h264() -> &'static str {
    if device_present("h264_nvenc") && video_encoders().iter().any(|e| e == "h264_nvenc") {
        "h264_nvenc"
    } else {
        "libx264"
    }
}

/// Probes the FFmpeg tools: two processes at once (`ffprobe -version`, and
/// `ffmpeg -encoders`, whose banner is `ffmpeg -version`'s first line), then
/// the test encodes of the hardware encoders whose device is present.
pub fn ffmpeg_info() -> FfmpegInfo {
    let probe = self::ffprobe()
        .args(["-hide_banner", "-version"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let (ffmpeg, listed) = match self::ffmpeg().arg("-encoders").output() {
        Ok(out) if out.status.success() => (
            Some(first_line(&out.stderr)).filter(|l| l.starts_with("ffmpeg version")),
            parse_video_encoders(&out.stdout),
        ),
        _ => (None, Vec::new()),
    };
    let (video_encoders, unusable_hardware_encoders) = sort_out(&listed);
    remember_encoders(&video_encoders, &unusable_hardware_encoders);
    let ffprobe = probe
        .and_then(std::process::Child::wait_with_output)
        .ok()
        .filter(|out| out.status.success())
        .map(|out| first_line(&out.stdout));
    FfmpegInfo {
        ffmpeg,
        ffprobe,
        video_encoders,
        unusable_hardware_encoders,
        cuda_decode: cuda_decode_works(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hardware_decoders_ffmpeg_lists_are_read_and_nvdec_needs_its_device() {
        let out = Command::new("ffmpeg")
            .args(["-hide_banner", "-hwaccels"])
            .output()
            .expect("ffmpeg (scripts/setup.sh installs it)");
        let listed = parse_hwaccels(&out.stdout);
        assert!(
            !listed.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            listed.iter().all(|m| !m.contains(' ') && !m.contains(':')),
            "{listed:?}"
        );
        assert_eq!(
            parse_hwaccels(b"Hardware acceleration methods:\nvdpau\ncuda\n\n"),
            ["vdpau", "cuda"]
        );
        assert!(parse_hwaccels(b"nothing here\n").is_empty());
        if !Path::new("/dev/nvidiactl").exists() {
            assert!(!cuda_decode_works(), "no NVIDIA device, no NVDEC");
        }
    }

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
        assert_eq!(
            sorted_video_encoders(),
            (
                info.video_encoders.clone(),
                info.unusable_hardware_encoders.clone()
            )
        );
    }

    #[test]
    fn only_encoders_that_work_here_are_offered() {
        let info = ffmpeg_info();
        // A hardware encoder is offered only when its device is here and
        // its test encode passed; everything set aside is hardware.
        for e in &info.video_encoders {
            assert!(!is_hardware_encoder(e) || device_present(e), "{e}");
        }
        for e in &info.unusable_hardware_encoders {
            assert!(is_hardware_encoder(e), "{e}");
            assert!(!info.video_encoders.contains(e), "{e}");
        }
        // This FFmpeg (Debian's) lists NVENC and VAAPI encoders: offered
        // exactly when they encode a frame on this machine.
        for e in ["h264_nvenc", "h264_vaapi"] {
            let offered = info.video_encoders.iter().any(|x| x == e);
            assert_eq!(offered, device_present(e) && encoder_works(e), "{e}");
            assert!(
                offered || info.unusable_hardware_encoders.iter().any(|x| x == e),
                "{e} is listed by this FFmpeg"
            );
        }
        assert!(encoder_works("libx264"));
        assert!(!encoder_works("no_such_encoder"));
        assert!(is_hardware_encoder("hevc_videotoolbox") && !is_hardware_encoder("libx265"));
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
