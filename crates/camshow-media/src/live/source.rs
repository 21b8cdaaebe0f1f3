//! Live frame sources: cameras (through FFmpeg's V4L2 / AVFoundation input,
//! with the pixel format, size and rate asked for explicitly), a video file
//! played at its own frame rate as if it were a camera (`file:clip.mp4`), and
//! a moving test pattern (`test`).

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use camshow_core::Frame;

use super::overlay;
use crate::error::{Error, Result};
use crate::video::{Decoder, Trim, probe};

/// What the caller asks of a source.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CaptureOptions {
    /// Frame size; `None` keeps the source's own (a camera's default 1280×720).
    pub size: Option<(u32, u32)>,
    /// Frame rate; `None` keeps the source's own (a camera's default 30).
    pub fps: Option<f64>,
}

/// A live source of frames. `next` blocks until the next frame is due.
pub trait FrameSource: Send {
    /// What this source is, for messages.
    fn describe(&self) -> String;
    /// The nominal frame rate.
    fn nominal_fps(&self) -> f64;
    /// The next frame; `None` when the source has ended (a file played once).
    fn next(&mut self) -> Result<Option<Frame>>;
    /// Re-opens the source after an error (a camera unplugged and plugged
    /// back in). The default cannot.
    fn reopen(&mut self) -> Result<()> {
        Err(Error::Live(format!(
            "{} cannot be re-opened",
            self.describe()
        )))
    }
}

/// Keeps a paced source on its clock: frame `n` is due at `start + n/fps`.
#[derive(Debug)]
struct Pacer {
    start: Option<Instant>,
    n: u64,
    period: Duration,
}

impl Pacer {
    fn new(fps: f64) -> Self {
        Self {
            start: None,
            n: 0,
            period: Duration::from_secs_f64(1.0 / fps.clamp(0.1, 1000.0)),
        }
    }

    fn wait(&mut self) {
        let start = *self.start.get_or_insert_with(Instant::now);
        let due = start + self.period.mul_f64(self.n as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due > self.period * 4 {
            // Far behind (the machine stalled): restart the clock rather than burst.
            self.start = Some(now);
            self.n = 0;
        }
        self.n += 1;
    }
}

/// A moving test pattern: colour bars sliding sideways, a bouncing box and
/// the frame number.
#[derive(Debug)]
pub struct TestPattern {
    width: u32,
    height: u32,
    fps: f64,
    pacer: Pacer,
    n: u64,
    /// A photo moving over the pattern (scaled to two thirds of the height).
    photo: Option<(Frame, String)>,
}

impl TestPattern {
    /// A pattern of `width`×`height` at `fps`.
    pub fn new(width: u32, height: u32, fps: f64) -> Result<Self> {
        if width < 16 || height < 16 || width > 7680 || height > 4320 {
            return Err(Error::Live(format!(
                "test pattern size {width}x{height} is out of range"
            )));
        }
        Ok(Self {
            width,
            height,
            fps,
            pacer: Pacer::new(fps),
            n: 0,
            photo: None,
        })
    }

    /// The pattern with `photo` (a face, so a new user sees a swap) moving
    /// over it: scaled to two thirds of the height, gliding left and right.
    pub fn with_photo(width: u32, height: u32, fps: f64, photo: &Path) -> Result<Self> {
        let mut p = Self::new(width, height, fps)?;
        let img = crate::image_io::read_image(photo)?;
        let side = f64::from(height) * 2.0 / 3.0;
        let scale =
            (side / f64::from(img.height())).min(f64::from(width) * 0.8 / f64::from(img.width()));
        let (w, h) = (
            ((f64::from(img.width()) * scale).round() as u32).max(1),
            ((f64::from(img.height()) * scale).round() as u32).max(1),
        );
        let name = photo.file_name().map_or_else(
            || photo.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        p.photo = Some((camshow_core::imgproc::resize_bilinear(&img, w, h), name));
        Ok(p)
    }

    /// Frame `n` of the pattern (deterministic).
    pub fn frame(&self, n: u64) -> Result<Frame> {
        const BARS: [[u8; 3]; 7] = [
            [192, 192, 192],
            [192, 192, 0],
            [0, 192, 192],
            [0, 192, 0],
            [192, 0, 192],
            [192, 0, 0],
            [0, 0, 192],
        ];
        let (w, h) = (self.width as usize, self.height as usize);
        let shift = (n as usize * 4) % w;
        let mut data = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let c = if y < h * 2 / 3 {
                    BARS[((x + shift) % w) * 7 / w]
                } else {
                    [(x * 255 / w) as u8; 3]
                };
                data[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&c);
            }
        }
        let mut f = Frame::from_rgb(self.width, self.height, data)?;
        if let Some((photo, _)) = &self.photo {
            // Glides left and right, a little up and down (about 3 s a sweep at 30 fps).
            let (pw, ph) = (i64::from(photo.width()), i64::from(photo.height()));
            let x0 = bounce(n as i64 * 4, (w as i64 - pw).max(1));
            let y0 = bounce(n as i64, (h as i64 - ph).max(1) / 2 + 1);
            let src = photo.data();
            for y in 0..ph {
                for x in 0..pw {
                    let i = ((y * pw + x) * 3) as usize;
                    f.put_pixel(x0 + x, y0 + y, [src[i], src[i + 1], src[i + 2]]);
                }
            }
            overlay::draw_text(
                &mut f,
                8,
                (h as i64) - 20,
                &format!("test {n}"),
                2,
                [255, 255, 0],
            );
            return Ok(f);
        }
        let side = (h / 6).max(4) as i64;
        let span_x = (w as i64 - side).max(1);
        let span_y = (h as i64 * 2 / 3 - side).max(1);
        let t = n as i64 * 5;
        let (bx, by) = (bounce(t, span_x), bounce(t * 3 / 4, span_y));
        for y in by..by + side {
            for x in bx..bx + side {
                f.put_pixel(x, y, [255, 255, 255]);
            }
        }
        overlay::draw_text(
            &mut f,
            8,
            (h as i64) - 20,
            &format!("test {n}"),
            2,
            [255, 255, 0],
        );
        Ok(f)
    }
}

fn bounce(t: i64, span: i64) -> i64 {
    let p = t.rem_euclid(2 * span);
    if p < span { p } else { 2 * span - p }
}

impl FrameSource for TestPattern {
    fn describe(&self) -> String {
        let with = self
            .photo
            .as_ref()
            .map(|(_, name)| format!(" with {name} moving"))
            .unwrap_or_default();
        format!(
            "test pattern {}x{} at {} fps{with}",
            self.width, self.height, self.fps
        )
    }

    fn nominal_fps(&self) -> f64 {
        self.fps
    }

    fn next(&mut self) -> Result<Option<Frame>> {
        self.pacer.wait();
        let f = self.frame(self.n)?;
        self.n += 1;
        Ok(Some(f))
    }

    fn reopen(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A video file played at its own frame rate, like a camera; with `looping`
/// it starts again at the end.
pub struct FileSource {
    path: PathBuf,
    info: crate::video::VideoInfo,
    decoder: Decoder,
    pacer: Pacer,
    looping: bool,
    size: Option<(u32, u32)>,
}

impl FileSource {
    /// Opens `path`; `size` rescales the frames.
    pub fn open(path: &std::path::Path, looping: bool, size: Option<(u32, u32)>) -> Result<Self> {
        let info = probe(path)?;
        let decoder = Decoder::open(path, &info, Trim::default())?;
        let fps = info.avg_fps.as_f64();
        let fps = if fps.is_finite() && fps > 0.0 {
            fps
        } else {
            info.fps.as_f64()
        };
        Ok(Self {
            path: path.to_path_buf(),
            info,
            decoder,
            pacer: Pacer::new(fps),
            looping,
            size,
        })
    }
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl std::fmt::Debug for dyn FrameSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl FrameSource for FileSource {
    fn describe(&self) -> String {
        format!(
            "file {} ({}x{} at {} fps)",
            self.path.display(),
            self.info.width,
            self.info.height,
            self.info.avg_fps
        )
    }

    fn nominal_fps(&self) -> f64 {
        self.info.avg_fps.as_f64()
    }

    fn next(&mut self) -> Result<Option<Frame>> {
        self.pacer.wait();
        let mut frame = self.decoder.next_frame()?;
        if frame.is_none() && self.looping {
            self.decoder = Decoder::open(&self.path, &self.info, Trim::default())?;
            frame = self.decoder.next_frame()?;
        }
        Ok(match (frame, self.size) {
            (Some(f), Some((w, h))) if (f.width(), f.height()) != (w, h) => {
                Some(camshow_core::imgproc::resize_bilinear(&f, w, h))
            }
            (f, _) => f,
        })
    }

    fn reopen(&mut self) -> Result<()> {
        self.decoder = Decoder::open(&self.path, &self.info, Trim::default())?;
        Ok(())
    }
}

/// Pixel formats asked of a camera, in order of preference (MJPG keeps USB
/// bandwidth low at 720p30; YUYV and NV12 are the uncompressed fallbacks).
pub const CAMERA_FORMATS: [&str; 3] = ["mjpeg", "yuyv422", "nv12"];

/// A camera read through FFmpeg's capture input (`v4l2` on Linux,
/// `avfoundation` on macOS) as RGB frames over a pipe.
#[derive(Debug)]
pub struct CameraSource {
    device: String,
    width: u32,
    height: u32,
    fps: f64,
    format: String,
    child: Option<Child>,
    stdout: Option<BufReader<ChildStdout>>,
}

fn input_args(device: &str, format: &str, (w, h): (u32, u32), fps: f64) -> Vec<String> {
    let size = format!("{w}x{h}");
    let rate = format!("{fps}");
    if cfg!(target_os = "macos") {
        vec![
            "-f".into(),
            "avfoundation".into(),
            "-framerate".into(),
            rate,
            "-video_size".into(),
            size,
            "-i".into(),
            format!("{device}:none"),
        ]
    } else {
        vec![
            "-f".into(),
            "v4l2".into(),
            "-input_format".into(),
            format.into(),
            "-video_size".into(),
            size,
            "-framerate".into(),
            rate,
            "-i".into(),
            device.into(),
        ]
    }
}

impl CameraSource {
    /// Opens `device` (`/dev/video0`, or an AVFoundation index on macOS),
    /// trying MJPG, then YUYV, then NV12 at the size and rate asked for. The
    /// first frame must arrive within 5 s.
    pub fn open(device: &str, opts: CaptureOptions) -> Result<Self> {
        let (width, height) = opts.size.unwrap_or((1280, 720));
        let fps = opts.fps.unwrap_or(30.0);
        let mut last = String::new();
        for format in CAMERA_FORMATS {
            let mut cam = Self {
                device: device.into(),
                width,
                height,
                fps,
                format: format.into(),
                child: None,
                stdout: None,
            };
            match cam.start() {
                Ok(()) => {
                    // A format the camera does not offer makes FFmpeg exit at once.
                    let t = Instant::now();
                    let mut exited = false;
                    while t.elapsed() < Duration::from_millis(1500) {
                        if cam
                            .child
                            .as_mut()
                            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
                        {
                            exited = true;
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    if !exited {
                        return Ok(cam);
                    }
                    last = cam.failure().to_string();
                }
                Err(e) => last = e.to_string(),
            }
            if cfg!(target_os = "macos") {
                break;
            }
        }
        Err(Error::Live(format!(
            "camera {device} could not be opened at {width}x{height} {fps} fps in any of {}: {last}",
            CAMERA_FORMATS.join(", ")
        )))
    }

    fn start(&mut self) -> Result<()> {
        if !cfg!(target_os = "macos") && !std::path::Path::new(&self.device).exists() {
            return Err(Error::Live(format!(
                "no camera at {} (see `camshow cameras`)",
                self.device
            )));
        }
        let mut cmd = crate::tools::ffmpeg();
        cmd.args(["-nostdin", "-v", "error"])
            .args(input_args(
                &self.device,
                &self.format,
                (self.width, self.height),
                self.fps,
            ))
            .args([
                "-vf",
                &format!("scale={}:{},format=rgb24", self.width, self.height),
                "-f",
                "rawvideo",
                "pipe:1",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            Error::Live(format!("ffmpeg could not be started ({e}); install ffmpeg"))
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::Live("ffmpeg has no output pipe".into()))?;
        self.child = Some(child);
        self.stdout = Some(BufReader::with_capacity(1 << 20, stdout));
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.stdout = None;
    }

    fn failure(&mut self) -> Error {
        let mut err = String::new();
        if let Some(c) = self.child.as_mut()
            && let Some(mut s) = c.stderr.take()
        {
            let _ = s.read_to_string(&mut err);
        }
        self.stop();
        Error::Live(format!("camera {} stopped: {}", self.device, err.trim()))
    }
}

impl FrameSource for CameraSource {
    fn describe(&self) -> String {
        format!(
            "camera {} ({}x{} at {} fps, {})",
            self.device, self.width, self.height, self.fps, self.format
        )
    }

    fn nominal_fps(&self) -> f64 {
        self.fps
    }

    fn next(&mut self) -> Result<Option<Frame>> {
        let n = self.width as usize * self.height as usize * 3;
        let mut buf = vec![0u8; n];
        let Some(out) = self.stdout.as_mut() else {
            return Err(self.failure());
        };
        let mut got = 0;
        while got < n {
            match out.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if got < n {
            return Err(self.failure());
        }
        Ok(Some(Frame::from_rgb(self.width, self.height, buf)?))
    }

    fn reopen(&mut self) -> Result<()> {
        self.stop();
        self.start()
    }
}

impl Drop for CameraSource {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The photo `--camera test` moves over its pattern: the astronaut from the
/// sample assets that `scripts/setup.sh` fetches.
pub fn test_photo() -> PathBuf {
    camshow_core::paths::cache_dir()
        .join("samples")
        .join("astronaut.png")
}

/// Opens a source by its command-line name: `test` (the sample face moving
/// over a test pattern, or the pattern alone when the samples are not
/// installed), `test:PHOTO` (that photo moving), `file:PATH` or a camera id
/// (`/dev/video0`, a number for `/dev/videoN`, or an AVFoundation index).
pub fn open_source(
    spec: &str,
    opts: CaptureOptions,
    loop_files: bool,
) -> Result<Box<dyn FrameSource>> {
    let (w, h) = opts.size.unwrap_or((640, 480));
    let fps = opts.fps.unwrap_or(30.0);
    if let Some(photo) = spec.strip_prefix("test:") {
        return Ok(Box::new(TestPattern::with_photo(
            w,
            h,
            fps,
            Path::new(photo),
        )?));
    }
    if spec == "test" {
        let photo = test_photo();
        if photo.is_file() {
            return Ok(Box::new(TestPattern::with_photo(w, h, fps, &photo)?));
        }
        tracing::warn!(
            "the sample face {} is not installed (scripts/setup.sh fetches it): showing the pattern alone",
            photo.display()
        );
        return Ok(Box::new(TestPattern::new(w, h, fps)?));
    }
    if let Some(path) = spec.strip_prefix("file:") {
        return Ok(Box::new(FileSource::open(
            std::path::Path::new(path),
            loop_files,
            opts.size,
        )?));
    }
    let device = if !cfg!(target_os = "macos") && spec.chars().all(|c| c.is_ascii_digit()) {
        format!("/dev/video{spec}")
    } else {
        spec.to_string()
    };
    Ok(Box::new(CameraSource::open(&device, opts)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_pattern_moves_and_keeps_time() {
        let mut p = TestPattern::new(64, 48, 100.0).unwrap();
        let a = p.frame(0).unwrap();
        let b = p.frame(5).unwrap();
        assert_ne!(a, b);
        assert_eq!(p.frame(5).unwrap(), b, "deterministic");
        let t = Instant::now();
        for _ in 0..10 {
            p.next().unwrap().unwrap();
        }
        let e = t.elapsed();
        assert!(
            e >= Duration::from_millis(85),
            "10 frames at 100 fps took {e:?}"
        );
        assert!(TestPattern::new(4, 4, 30.0).is_err());
    }

    #[test]
    fn missing_cameras_and_files_are_clear_errors() {
        let e = open_source("/dev/video-not-there", CaptureOptions::default(), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/dev/video-not-there"), "{e}");
        let e = open_source(
            "file:/nonexistent/clip.mp4",
            CaptureOptions::default(),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("clip.mp4"), "{e}");
    }
}
