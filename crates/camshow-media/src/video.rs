//! Video files through the FFmpeg command-line tools over pipes: probe,
//! decode to RGB frames, encode from RGB frames with the source's audio,
//! colour metadata and provenance.
//!
//! Chosen by measurement: FFmpeg's CLI decodes 720p at 300–430 fps on this
//! machine (DEPENDENCIES.md), 30–40× the model-bound rate on CPU, so the pipes
//! never limit throughput, and the CLI keeps audio remuxing, metadata and
//! hardware encoders simple.

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use camshow_core::Frame;

use crate::error::{Error, Result};
use crate::provenance::DIGITAL_SOURCE_TYPE;

pub(crate) fn tool_err(tool: &str, reason: impl Into<String>) -> Error {
    Error::Tool {
        tool: tool.into(),
        reason: reason.into(),
    }
}

/// A rational number (frame rates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Rational {
    /// Numerator.
    pub num: u32,
    /// Denominator.
    pub den: u32,
}

impl Rational {
    fn parse(s: &str) -> Option<Self> {
        let (n, d) = s.split_once('/').unwrap_or((s, "1"));
        let (num, den) = (n.trim().parse().ok()?, d.trim().parse().ok()?);
        (num > 0 && den > 0).then_some(Self { num, den })
    }

    /// As a float.
    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }
}

impl std::fmt::Display for Rational {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

/// What `ffprobe` says about a video file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VideoInfo {
    /// Display width (after rotation).
    pub width: u32,
    /// Display height (after rotation).
    pub height: u32,
    /// Nominal frame rate (`r_frame_rate`).
    pub fps: Rational,
    /// Average frame rate.
    pub avg_fps: Rational,
    /// Whether the frame rate varies (nominal ≠ average).
    pub variable_fps: bool,
    /// Number of video frames, when known.
    pub frame_count: Option<u64>,
    /// Duration in seconds.
    pub duration: f64,
    /// Rotation in degrees from the display matrix or `rotate` tag.
    pub rotation: i32,
    /// Pixel format.
    pub pix_fmt: String,
    /// `color_space` (matrix).
    pub color_space: Option<String>,
    /// `color_primaries`.
    pub color_primaries: Option<String>,
    /// `color_transfer`.
    pub color_transfer: Option<String>,
    /// `color_range` (`tv` / `pc`).
    pub color_range: Option<String>,
    /// Audio codec of the first audio stream, if there is one.
    pub audio_codec: Option<String>,
}

fn json_str(v: &serde_json::Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(|x| x.as_str())
        .filter(|s| !s.is_empty() && *s != "unknown")
        .map(str::to_string)
}

/// Runs `ffprobe -v error -of json ARGS path` and parses its answer; a file
/// ffprobe cannot read is [`Error::Invalid`], naming it.
pub(crate) fn ffprobe_json(path: &Path, args: &[&str]) -> Result<serde_json::Value> {
    let out = crate::tools::ffprobe()
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(path)
        .output()
        .map_err(|e| {
            tool_err(
                "ffprobe",
                format!("could not be started ({e}); install ffmpeg"),
            )
        })?;
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "{} is not a readable video: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| tool_err("ffprobe", e.to_string()))
}

/// Probes `path` with `ffprobe`.
pub fn probe(path: &Path) -> Result<VideoInfo> {
    let v = ffprobe_json(path, &["-show_streams", "-show_format"])?;
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video" && s["disposition"]["attached_pic"] != 1)
        .ok_or_else(|| Error::Invalid(format!("{} has no video stream", path.display())))?;
    let audio = streams.iter().find(|s| s["codec_type"] == "audio");
    let (w, h) = (
        video["width"].as_u64().unwrap_or(0) as u32,
        video["height"].as_u64().unwrap_or(0) as u32,
    );
    if w == 0 || h == 0 {
        return Err(Error::Invalid(format!(
            "{} has a video stream without a size",
            path.display()
        )));
    }
    let mut rotation = video["tags"]["rotate"]
        .as_str()
        .and_then(|r| r.parse::<i32>().ok())
        .unwrap_or(0);
    for sd in video["side_data_list"].as_array().into_iter().flatten() {
        if let Some(r) = sd["rotation"].as_i64() {
            rotation = r as i32;
        }
    }
    let rotation = rotation.rem_euclid(360);
    let (width, height) = if rotation == 90 || rotation == 270 {
        (h, w)
    } else {
        (w, h)
    };
    let fps = json_str(video, "r_frame_rate").and_then(|s| Rational::parse(&s));
    let avg = json_str(video, "avg_frame_rate").and_then(|s| Rational::parse(&s));
    let fps = fps
        .or(avg)
        .ok_or_else(|| Error::Invalid(format!("{} has no frame rate", path.display())))?;
    let avg_fps = avg.unwrap_or(fps);
    let duration = json_str(video, "duration")
        .or_else(|| json_str(&v["format"], "duration"))
        .and_then(|d| d.parse::<f64>().ok())
        .unwrap_or(0.0);
    let frame_count = json_str(video, "nb_frames").and_then(|n| n.parse().ok());
    Ok(VideoInfo {
        width,
        height,
        fps,
        avg_fps,
        variable_fps: (fps.as_f64() - avg_fps.as_f64()).abs() > 0.01 * fps.as_f64(),
        frame_count,
        duration,
        rotation,
        pix_fmt: json_str(video, "pix_fmt").unwrap_or_default(),
        color_space: json_str(video, "color_space"),
        color_primaries: json_str(video, "color_primaries"),
        color_transfer: json_str(video, "color_transfer"),
        color_range: json_str(video, "color_range"),
        audio_codec: audio.and_then(|a| json_str(a, "codec_name")),
    })
}

/// Whether the source stores RGB (FFV1, PNG or QuickTime Animation in RGB,
/// …): its output gets the BT.601 matrix in limited range, tagged so.
fn is_rgb_source(info: &VideoInfo) -> bool {
    info.color_space.as_deref() == Some("gbr")
        || ["rgb", "bgr", "gbr", "argb", "abgr", "pal8"]
            .iter()
            .any(|p| info.pix_fmt.starts_with(p))
}

/// swscale's name for the RGB↔YUV matrix of a stream's `color_space`.
fn swscale_matrix(info: &VideoInfo) -> &'static str {
    if is_rgb_source(info) {
        return "bt601";
    }
    match info.color_space.as_deref() {
        Some("bt709") => "bt709",
        Some("bt2020nc" | "bt2020c") => "bt2020",
        Some("fcc") => "fcc",
        Some("smpte240m") => "smpte240m",
        _ => "bt601",
    }
}

fn swscale_range(info: &VideoInfo) -> &'static str {
    if info.color_range.as_deref() == Some("pc") && !is_rgb_source(info) {
        "full"
    } else {
        "limited"
    }
}

/// Optional trim of the input, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Trim {
    /// Start.
    pub start: Option<f64>,
    /// End.
    pub end: Option<f64>,
}

impl Trim {
    /// Checks the trim against a video of `duration` seconds: finite, not
    /// negative, the end after the start, the start before the end of the video.
    pub fn validate(&self, duration: f64) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        for (name, v) in [("--trim-start", self.start), ("--trim-end", self.end)] {
            if let Some(v) = v
                && !(v.is_finite() && v >= 0.0)
            {
                return bad(format!("{name} {v} is not a time in seconds"));
            }
        }
        if let (Some(s), Some(e)) = (self.start, self.end)
            && e <= s
        {
            return bad(format!("--trim-end {e} is not after --trim-start {s}"));
        }
        if let Some(s) = self.start
            && duration > 0.0
            && s >= duration
        {
            return bad(format!(
                "--trim-start {s} is past the end of the video ({duration:.2} s)"
            ));
        }
        Ok(())
    }

    pub(crate) fn args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(s) = self.start {
            a.extend(["-ss".into(), format!("{s:.3}")]);
        }
        if let Some(e) = self.end {
            a.extend(["-to".into(), format!("{e:.3}")]);
        }
        a
    }
}

/// Which frames a [`Decoder`] gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Frames {
    /// At the source's nominal rate ([`Decoder::open`]).
    Nominal(Trim),
    /// Resampled to a rate ([`Decoder::open_resampled`]).
    Resampled(Trim, Rational),
    /// Every frame as stored ([`Decoder::open_exact`]).
    Exact,
}

/// Which frames, and whether NVDEC decodes them ([`Decoder::open_with`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeHow {
    /// Which frames.
    pub frames: Frames,
    /// Decode on this NVIDIA GPU.
    pub gpu: Option<i32>,
}

impl DecodeHow {
    /// `frames`, decoded on the CPU.
    pub fn cpu(frames: Frames) -> Self {
        Self { frames, gpu: None }
    }
}

/// Decoded RGB frames from a video file.
pub struct Decoder {
    child: Child,
    stdout: BufReader<ChildStdout>,
    width: u32,
    height: u32,
}

impl Decoder {
    /// Starts decoding `path` to RGB frames at the source's nominal rate.
    /// Rotation is applied (frames come upright); the RGB conversion uses the
    /// stream's own matrix and range. A variable-rate source is resampled to
    /// its average rate, which keeps it in sync with its audio.
    pub fn open(path: &Path, info: &VideoInfo, trim: Trim) -> Result<Self> {
        Self::open_with(path, info, DecodeHow::cpu(Frames::Nominal(trim)))
    }

    /// Where the frames are decoded: [`Decoder`]'s constructors decode on
    /// the CPU; this on an NVIDIA GPU (NVDEC) when `how.gpu` names one (the
    /// frames still come out as RGB in memory; FFmpeg decodes a stream
    /// NVDEC cannot take on the CPU itself).
    pub fn open_with(path: &Path, info: &VideoInfo, how: DecodeHow) -> Result<Self> {
        let (trim, exact, rate) = match how.frames {
            Frames::Nominal(trim) => (trim, false, None),
            Frames::Resampled(trim, rate) => (trim, false, Some(rate)),
            Frames::Exact => (Trim::default(), true, None),
        };
        Self::spawn(path, info, trim, None, exact, rate, how.gpu)
    }

    /// Decodes `path` resampled to `rate`: frames are dropped or repeated
    /// so that the video lasts as long as the source (and stays in sync
    /// with its audio) at the new rate.
    pub fn open_resampled(
        path: &Path,
        info: &VideoInfo,
        trim: Trim,
        rate: Rational,
    ) -> Result<Self> {
        Self::open_with(path, info, DecodeHow::cpu(Frames::Resampled(trim, rate)))
    }

    /// Every frame as stored, never resampled (a variable-rate source whose
    /// timestamps [`frame_times`] gives and the encoder puts back).
    pub fn open_exact(path: &Path, info: &VideoInfo) -> Result<Self> {
        Self::open_with(path, info, DecodeHow::cpu(Frames::Exact))
    }

    /// A quick look through a video: one frame a second, at most 640 px
    /// wide (the faces a video holds, `camshow faces`).
    pub fn open_samples(path: &Path, info: &VideoInfo, trim: Trim) -> Result<Self> {
        Self::spawn(path, info, trim, Some(1), false, None, None)
    }

    fn spawn(
        path: &Path,
        info: &VideoInfo,
        trim: Trim,
        sample_fps: Option<u32>,
        exact: bool,
        rate: Option<Rational>,
        gpu: Option<i32>,
    ) -> Result<Self> {
        let (mut width, mut height) = (info.width, info.height);
        let mut filter = format!(
            "scale=in_color_matrix={}:in_range={}",
            swscale_matrix(info),
            swscale_range(info)
        );
        if let Some(fps) = sample_fps {
            if width > 640 {
                height = ((u64::from(height) * 640 / u64::from(width)) as u32).max(2) & !1;
                width = 640;
            }
            filter = format!(
                "fps={fps},scale={width}:{height}:in_color_matrix={}:in_range={}",
                swscale_matrix(info),
                swscale_range(info)
            );
        }
        if let Some(r) = rate {
            // Drop or repeat frames to the new rate over the same duration.
            filter = format!("fps={r},{filter}");
        }
        filter.push_str(",format=rgb24");
        let mut cmd = crate::tools::ffmpeg();
        cmd.args(["-nostdin", "-v", "error"]);
        if let Some(device) = gpu {
            cmd.args(["-hwaccel", "cuda", "-hwaccel_device", &device.to_string()]);
        }
        cmd.args(trim.args())
            .arg("-i")
            .arg(path)
            .args(["-map", "0:v:0", "-vf", &filter]);
        if sample_fps.is_none() {
            if rate.is_some() {
                // The `fps` filter (in the graph) already resampled.
                cmd.args(["-fps_mode", "passthrough"]);
            } else if info.variable_fps && !exact {
                cmd.args(["-fps_mode", "cfr", "-r", &info.avg_fps.to_string()]);
            } else {
                cmd.args(["-fps_mode", "passthrough"]);
            }
        }
        cmd.args(["-f", "rawvideo", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            tool_err(
                "ffmpeg",
                format!("could not be started ({e}); install ffmpeg"),
            )
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| tool_err("ffmpeg", "no output pipe"))?;
        Ok(Self {
            child,
            stdout: BufReader::with_capacity(1 << 20, stdout),
            width,
            height,
        })
    }

    /// The next frame, `None` at the end. A decoder that stops early with an
    /// error (corrupt file, killed process) is an error, never a short video.
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        let n = self.width as usize * self.height as usize * 3;
        let mut buf = vec![0u8; n];
        let mut got = 0;
        while got < n {
            match self.stdout.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(tool_err("ffmpeg (decode)", e.to_string())),
            }
        }
        if got == 0 {
            self.finish()?;
            return Ok(None);
        }
        if got < n {
            let _ = self.child.kill();
            return Err(tool_err(
                "ffmpeg (decode)",
                format!("stream ended inside a frame ({got} of {n} bytes)"),
            ));
        }
        Ok(Some(Frame::from_rgb(self.width, self.height, buf)?))
    }

    fn finish(&mut self) -> Result<()> {
        let status = self
            .child
            .wait()
            .map_err(|e| tool_err("ffmpeg (decode)", e.to_string()))?;
        if status.success() {
            return Ok(());
        }
        let mut err = String::new();
        if let Some(mut s) = self.child.stderr.take() {
            let _ = s.read_to_string(&mut err);
        }
        Err(tool_err(
            "ffmpeg (decode)",
            format!("{status}: {}", err.trim()),
        ))
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How to encode the output.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeOptions {
    /// FFmpeg encoder name (`libx264`, `libx265`, `libvpx-vp9`, `h264_nvenc`, …).
    pub encoder: String,
    /// Quality 0 (best) – 51, mapped per encoder.
    pub quality: u8,
    /// Copy (or, where the container needs it, re-encode) the source's audio.
    pub keep_audio: bool,
    /// Output frame rate (the source's unless changed).
    pub fps: Rational,
    /// Trim applied to the audio too.
    pub trim: Trim,
    /// Presentation times of the frames (seconds) to keep exactly, for a
    /// variable-rate source decoded with [`Decoder::open_exact`].
    pub timestamps: Option<Vec<f64>>,
    /// Extra container metadata (key, value), such as a segment's tag.
    pub metadata: Vec<(String, String)>,
}

/// The encoder for `setting` (`auto`, or a name), a container and a frame
/// size: `auto` is VP9 for WebM and H.264 elsewhere (NVENC where it works on
/// this machine and the size is even, which hardware encoders need; else
/// libx264: [`crate::tools::preferred_h264`]); a named encoder the container
/// cannot hold is refused with the list of those it can.
pub fn choose_encoder(
    setting: &str,
    container: &str,
    (width, height): (u32, u32),
) -> Result<String> {
    const WEBM: [&str; 8] = [
        "libvpx-vp9",
        "libvpx",
        "libaom-av1",
        "libsvtav1",
        "av1_nvenc",
        "av1_qsv",
        "av1_vaapi",
        "av1_amf",
    ];
    const NOT_IN_MP4: [&str; 2] = ["libvpx", "libtheora"];
    if setting == "auto" {
        return Ok(if container == "webm" {
            "libvpx-vp9"
        } else if width % 2 == 1 || height % 2 == 1 {
            "libx264"
        } else {
            crate::tools::preferred_h264()
        }
        .to_string());
    }
    let refused = match container {
        "webm" => !WEBM.contains(&setting),
        "mp4" | "m4v" | "mov" => NOT_IN_MP4.contains(&setting),
        _ => false,
    };
    if refused {
        let can = if container == "webm" {
            WEBM.join(", ")
        } else {
            "H.264, HEVC, AV1 or VP9 encoders such as libx264, libx265, libaom-av1, libvpx-vp9, h264_nvenc".into()
        };
        return Err(Error::Invalid(format!(
            "a .{container} file cannot hold video from the {setting} encoder; it can hold: {can}"
        )));
    }
    Ok(setting.to_string())
}

/// Encoder arguments for a 0–51 quality, per encoder family.
pub fn quality_args(encoder: &str, quality: u8) -> Vec<String> {
    let q = quality.min(51);
    match encoder {
        "libx264" | "libx265" => vec![
            "-crf".into(),
            q.to_string(),
            "-preset".into(),
            "veryfast".into(),
        ],
        "libvpx-vp9" => vec![
            "-crf".into(),
            (u32::from(q) * 63 / 51).to_string(),
            "-b:v".into(),
            "0".into(),
        ],
        "libaom-av1" | "libsvtav1" => vec!["-crf".into(), (u32::from(q) * 63 / 51).to_string()],
        e if e.ends_with("_nvenc") => {
            vec!["-cq".into(), q.to_string(), "-preset".into(), "p4".into()]
        }
        e if e.ends_with("_videotoolbox") => vec![
            "-q:v".into(),
            (100 - u32::from(q) * 100 / 51).max(1).to_string(),
        ],
        e if e.ends_with("_qsv") => vec!["-global_quality".into(), q.max(1).to_string()],
        e if e.ends_with("_vaapi") => vec!["-qp".into(), q.to_string()],
        _ => vec!["-q:v".into(), (2 + u32::from(q) * 29 / 51).to_string()],
    }
}

/// Audio arguments: copy where the container takes the codec, else re-encode.
fn audio_args(container: &str, codec: &str) -> Vec<&'static str> {
    let copy_ok = match container {
        "mp4" | "mov" | "m4v" => matches!(codec, "aac" | "mp3" | "alac" | "ac3" | "eac3" | "opus"),
        "webm" => matches!(codec, "opus" | "vorbis"),
        _ => true,
    };
    if copy_ok {
        vec!["-c:a", "copy"]
    } else if container == "webm" {
        vec!["-c:a", "libopus"]
    } else {
        vec!["-c:a", "aac", "-b:a", "192k"]
    }
}

/// An FFmpeg encoder fed RGB frames on its standard input.
pub struct Encoder {
    child: Child,
    stdin: Option<ChildStdin>,
    target: PathBuf,
    /// Exact timing: the video-only intermediate is re-timed, then muxed into the target.
    retime: Option<Retime>,
}

struct Retime {
    dir: tempfile::TempDir,
    times: Vec<f64>,
    container: String,
    source: PathBuf,
    info: VideoInfo,
    opts: EncodeOptions,
}

/// Presentation times (seconds, ascending) of the first video stream's
/// packets, read without decoding.
pub fn frame_times(path: &Path) -> Result<Vec<f64>> {
    let out = crate::tools::ffprobe()
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .map_err(|e| {
            tool_err(
                "ffprobe",
                format!("could not be started ({e}); install ffmpeg"),
            )
        })?;
    if !out.status.success() {
        return Err(tool_err(
            "ffprobe",
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let mut t: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse::<f64>().ok())
        .collect();
    t.sort_by(f64::total_cmp);
    Ok(t)
}

/// Whether frame `times` are irregular: some interval differs from the
/// median by more than 2 ms and 5 % (container rounding of a constant rate,
/// such as Matroska's 33/34 ms at 29.97 fps, is not).
pub fn is_variable(times: &[f64]) -> bool {
    let mut d: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    if d.len() < 2 {
        return false;
    }
    let gaps = d.clone();
    d.sort_by(f64::total_cmp);
    let median = d[d.len() / 2];
    gaps.iter()
        .any(|g| (g - median).abs() > 0.002_f64.max(0.05 * median))
}

/// The audio input and the audio, colour, provenance and container output
/// arguments shared by the direct encoder and the re-timing remux (the video
/// is input 0).
fn output_args(
    cmd: &mut Command,
    container: &str,
    source: &Path,
    info: &VideoInfo,
    opts: &EncodeOptions,
    movflags: &str,
) {
    let audio = opts.keep_audio && info.audio_codec.is_some();
    if audio {
        cmd.args(opts.trim.args())
            .arg("-i")
            .arg(source)
            .args(["-map", "0:v:0", "-map", "1:a:0"]);
        cmd.args(audio_args(
            container,
            info.audio_codec.as_deref().unwrap_or_default(),
        ));
    } else {
        cmd.args(["-map", "0:v:0"]);
    }
    // The source's colour tags, but for an RGB source the matrix and range
    // its YUV output was made with.
    let (space, range) = if is_rgb_source(info) {
        (Some("smpte170m".to_string()), Some("tv".to_string()))
    } else {
        (info.color_space.clone(), info.color_range.clone())
    };
    for (flag, value) in [
        ("-colorspace", &space),
        ("-color_primaries", &info.color_primaries),
        ("-color_trc", &info.color_transfer),
        ("-color_range", &range),
    ] {
        if let Some(v) = value {
            cmd.args([flag, v]);
        }
    }
    let comment = format!(
        "AI-generated: processed by the face swapper {}",
        camshow_core::SOFTWARE
    );
    if matches!(container, "mp4" | "mov" | "m4v") {
        cmd.args(["-movflags", movflags]);
        cmd.args([
            "-metadata",
            &format!("com.iptc.DigitalSourceType={DIGITAL_SOURCE_TYPE}"),
        ]);
    } else {
        cmd.args([
            "-metadata",
            &format!("DigitalSourceType={DIGITAL_SOURCE_TYPE}"),
        ]);
    }
    for (k, v) in &opts.metadata {
        cmd.args(["-metadata", &format!("{k}={v}")]);
    }
    cmd.args([
        "-metadata",
        &format!("comment={comment}"),
        "-metadata",
        &format!("encoded_by={}", camshow_core::SOFTWARE),
    ]);
    cmd.args([
        "-f",
        match container {
            "mkv" => "matroska",
            "m4v" => "mp4",
            c => c,
        },
    ]);
}

/// Puts a written video into place: for MP4/MOV the XMP provenance packet
/// (`op`, `description`) is appended first, so that every reader finds it,
/// not only those that read QuickTime keys; then `tmp` is renamed to `output`.
pub(crate) fn finish_output(
    tmp: tempfile::NamedTempFile,
    container: &str,
    op: crate::provenance::Operation,
    description: &str,
    output: &Path,
) -> Result<()> {
    if matches!(container, "mp4" | "m4v" | "mov") {
        let xmp = crate::provenance::xmp_packet(op, description);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(tmp.path())
            .map_err(Error::io("cannot open", tmp.path().to_path_buf()))?;
        f.write_all(&crate::provenance::mp4_xmp_box(&xmp))
            .map_err(Error::io("cannot write", tmp.path().to_path_buf()))?;
    }
    tmp.persist(output).map_err(|e| Error::Io {
        context: "cannot move into place",
        path: output.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Concatenates the parts listed in `list` (an `ffconcat` file) into
/// `target` without re-encoding, with `source`'s audio when `audio` and the
/// provenance tags; `cancel` stops it (nothing is left at `target`).
pub(crate) fn mux_joined(
    list: &Path,
    source: &Path,
    info: &VideoInfo,
    container: &str,
    audio: bool,
    target: &Path,
    cancel: &AtomicBool,
) -> Result<()> {
    let stopped = || cancel.load(Ordering::Relaxed);
    let opts = EncodeOptions {
        encoder: String::new(),
        quality: 0,
        keep_audio: audio,
        fps: info.fps,
        trim: Trim::default(),
        timestamps: None,
        metadata: Vec::new(),
    };
    let mut cmd = crate::tools::ffmpeg();
    cmd.args([
        "-nostdin", "-y", "-v", "error", "-f", "concat", "-safe", "0", "-i",
    ])
    .arg(list);
    output_args(
        &mut cmd,
        container,
        source,
        info,
        &opts,
        "+use_metadata_tags+faststart",
    );
    cmd.args(["-c:v", "copy"]).arg(target);
    let Some(out) = camshow_core::child::output_until(&mut cmd, &stopped)
        .map_err(|e| tool_err("ffmpeg (join)", format!("could not be started ({e})")))?
    else {
        let _ = std::fs::remove_file(target);
        return Err(Error::Cancelled);
    };
    if !out.status.success() {
        return Err(tool_err(
            "ffmpeg (join)",
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

/// The pixel format `encoder` gets for a `width`×`height` video: 4:2:0, the
/// one every player takes; for H.264/H.265 with an odd width or height —
/// which 4:2:0 cannot hold in those codecs — 4:4:4, which keeps the exact
/// size (High 4:4:4 profile: plays in FFmpeg-based players such as VLC, mpv
/// and Chromium; hardware decoders need even sizes).
pub fn output_pixel_format(encoder: &str, width: u32, height: u32) -> &'static str {
    let odd = width % 2 == 1 || height % 2 == 1;
    if crate::tools::takes_nv12(encoder) {
        "nv12"
    } else if odd && matches!(encoder, "libx264" | "libx265") {
        "yuv444p"
    } else {
        "yuv420p"
    }
}

fn encode_args(cmd: &mut Command, info: &VideoInfo, opts: &EncodeOptions) {
    let out_pix = output_pixel_format(&opts.encoder, info.width, info.height);
    cmd.args([
        "-vf",
        &format!(
            "scale=out_color_matrix={}:out_range={},format={out_pix}",
            swscale_matrix(info),
            swscale_range(info)
        ),
    ]);
    cmd.args(["-c:v", &opts.encoder])
        .args(quality_args(&opts.encoder, opts.quality));
}

impl Encoder {
    /// Starts an encoder writing `target` (the container from its extension),
    /// muxing audio from `source` when asked, with `info`'s colour metadata and
    /// the provenance tags.
    pub fn start(
        target: &Path,
        container: &str,
        source: &Path,
        info: &VideoInfo,
        width: u32,
        height: u32,
        opts: &EncodeOptions,
    ) -> Result<Self> {
        if crate::tools::takes_nv12(&opts.encoder) && (width % 2 == 1 || height % 2 == 1) {
            return Err(Error::Invalid(format!(
                "the hardware encoder {} needs an even frame size, and this video is {width}x{height}: use the default encoder (libx264 keeps odd sizes)",
                opts.encoder
            )));
        }
        let mut cmd = crate::tools::ffmpeg();
        cmd.args([
            "-nostdin",
            "-y",
            "-v",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            &format!("{width}x{height}"),
            "-r",
            &opts.fps.to_string(),
            "-i",
            "pipe:0",
        ]);
        let mut retime = None;
        if let Some(times) = &opts.timestamps {
            // Video only, on a constant grid, without frame reordering, moov at the end.
            let dir = tempfile::Builder::new()
                .prefix(".camshow-vfr-")
                .tempdir_in(
                    target
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new(".")),
                )
                .map_err(|e| {
                    tool_err("ffmpeg", format!("cannot create a temporary folder: {e}"))
                })?;
            encode_args(&mut cmd, info, opts);
            cmd.args(no_reorder_args(&opts.encoder));
            cmd.args(["-map", "0:v:0", "-an", "-f", "mp4"])
                .arg(dir.path().join("video.mp4"));
            retime = Some(Retime {
                dir,
                times: times.clone(),
                container: container.to_string(),
                source: source.to_path_buf(),
                info: info.clone(),
                opts: opts.clone(),
            });
        } else {
            // The audio input must come before the output options.
            output_args(
                &mut cmd,
                container,
                source,
                info,
                opts,
                "+use_metadata_tags+faststart",
            );
            encode_args(&mut cmd, info, opts);
            cmd.arg(target);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            tool_err(
                "ffmpeg",
                format!("could not be started ({e}); install ffmpeg"),
            )
        })?;
        let stdin = child.stdin.take();
        Ok(Self {
            child,
            stdin,
            target: target.to_path_buf(),
            retime,
        })
    }

    /// Writes one frame.
    pub fn write(&mut self, frame: &Frame) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| tool_err("ffmpeg (encode)", "input already closed"))?;
        if let Err(e) = stdin.write_all(frame.data()) {
            let detail = self.stderr_text();
            return Err(tool_err("ffmpeg (encode)", format!("{e}: {detail}")));
        }
        Ok(())
    }

    fn stderr_text(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut err = String::new();
        if let Some(mut s) = self.child.stderr.take() {
            let _ = s.read_to_string(&mut err);
        }
        err.trim().to_string()
    }

    /// Closes the input and waits for the file to be complete; `cancel`
    /// stops the re-timing step (nothing is left at the target).
    pub fn finish(mut self, cancel: &AtomicBool) -> Result<()> {
        drop(self.stdin.take());
        let mut err = String::new();
        if let Some(mut s) = self.child.stderr.take() {
            let _ = s.read_to_string(&mut err);
        }
        let status = self
            .child
            .wait()
            .map_err(|e| tool_err("ffmpeg (encode)", e.to_string()))?;
        if !status.success() {
            return Err(tool_err(
                "ffmpeg (encode)",
                format!("{status} writing {}: {}", self.target.display(), err.trim()),
            ));
        }
        if let Some(r) = self.retime.take() {
            r.finish(&self.target, cancel)?;
        }
        Ok(())
    }
}

/// Encoder options that keep frames in presentation order (no B-frames), so
/// the track can be re-timed sample by sample.
fn no_reorder_args(encoder: &str) -> Vec<&'static str> {
    match encoder {
        "libx265" => vec!["-x265-params", "bframes=0"],
        e if e.starts_with("lib") && !e.contains("x26") => vec![],
        _ => vec!["-bf", "0"],
    }
}

impl Retime {
    fn finish(self, target: &Path, cancel: &AtomicBool) -> Result<()> {
        let stopped = || cancel.load(Ordering::Relaxed);
        if stopped() {
            return Err(Error::Cancelled);
        }
        let video = self.dir.path().join("video.mp4");
        let data = std::fs::read(&video).map_err(Error::io("cannot read", &video))?;
        let timed = self.dir.path().join("timed.mp4");
        let input = match crate::mp4::retime(&data, &self.times) {
            Ok(bytes) => {
                std::fs::write(&timed, bytes).map_err(Error::io("cannot write", &timed))?;
                timed
            }
            Err(e) => {
                // Keep the constant-rate timing rather than fail the job.
                tracing::warn!("{e}; the output keeps a constant frame rate");
                video
            }
        };
        let mut cmd = crate::tools::ffmpeg();
        cmd.args(["-nostdin", "-y", "-v", "error", "-i"])
            .arg(&input);
        output_args(
            &mut cmd,
            &self.container,
            &self.source,
            &self.info,
            &self.opts,
            "+use_metadata_tags+faststart",
        );
        cmd.args(["-c:v", "copy"]).arg(target);
        let Some(out) = camshow_core::child::output_until(&mut cmd, &stopped)
            .map_err(|e| tool_err("ffmpeg (mux)", format!("could not be started ({e})")))?
        else {
            let _ = std::fs::remove_file(target);
            return Err(Error::Cancelled);
        };
        if !out.status.success() {
            return Err(tool_err(
                "ffmpeg (mux)",
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        Ok(())
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Video containers we write, by extension.
pub fn container_for(path: &Path) -> Option<&'static str> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "mp4" => Some("mp4"),
        "m4v" => Some("m4v"),
        "mov" => Some("mov"),
        "mkv" => Some("mkv"),
        "webm" => Some("webm"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_are_checked() {
        let t = |start, end| Trim { start, end };
        assert!(t(None, None).validate(10.0).is_ok());
        assert!(t(Some(1.0), Some(2.0)).validate(10.0).is_ok());
        for (bad, expect) in [
            (t(Some(-1.0), None), "not a time"),
            (t(Some(f64::NAN), None), "not a time"),
            (t(None, Some(f64::INFINITY)), "not a time"),
            (t(Some(3.0), Some(2.0)), "not after"),
            (t(Some(12.0), None), "past the end"),
        ] {
            let e = bad.validate(10.0).unwrap_err().to_string();
            assert!(e.contains(expect), "{bad:?}: {e}");
        }
    }

    #[test]
    fn variable_rates_are_told_from_rounding() {
        let cfr: Vec<f64> = (0..100)
            .map(|i| (f64::from(i) / 29.97 * 1000.0).round() / 1000.0)
            .collect();
        assert!(!is_variable(&cfr), "ms rounding of 29.97 fps is constant");
        let mut vfr: Vec<f64> = (0..30).map(|i| f64::from(i) * 0.1).collect();
        vfr.retain(|t| ((t * 10.0).round() as i64) % 3 != 2);
        assert!(is_variable(&vfr));
        assert!(!is_variable(&[0.0, 0.1]));
    }

    #[test]
    fn rationals_and_quality_mapping() {
        assert_eq!(
            Rational::parse("30000/1001"),
            Some(Rational {
                num: 30000,
                den: 1001
            })
        );
        assert_eq!(Rational::parse("25"), Some(Rational { num: 25, den: 1 }));
        assert_eq!(Rational::parse("0/0"), None);
        assert_eq!(
            quality_args("libx264", 18),
            vec!["-crf", "18", "-preset", "veryfast"]
        );
        assert_eq!(quality_args("libvpx-vp9", 51)[1], "63");
        assert_eq!(quality_args("h264_nvenc", 60)[1], "51");
        assert_eq!(
            audio_args("mp4", "pcm_s16le"),
            vec!["-c:a", "aac", "-b:a", "192k"]
        );
        assert_eq!(audio_args("mkv", "pcm_s16le"), vec!["-c:a", "copy"]);
        assert_eq!(container_for(Path::new("a/B.MP4")), Some("mp4"));
        assert_eq!(container_for(Path::new("a.png")), None);
    }
}
