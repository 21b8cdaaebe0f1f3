//! `camshow swap` on video files made by FFmpeg from the sample photos.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use camshow_test_utils::{exiftool, parity_model, sample, store};

fn ffmpeg(args: &[&str]) {
    let o = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg is required (scripts/setup.sh installs it)");
    assert!(
        o.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A 3 s, 10 fps pan over the astronaut, with a 440 Hz tone unless `audio` is false.
fn astronaut_clip(dir: &Path, name: &str, audio: bool, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let src = sample("astronaut.png");
    let mut args = vec!["-loop", "1", "-framerate", "10", "-i", s(&src)];
    if audio {
        args.extend(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]);
    }
    args.extend([
        "-t",
        "3",
        "-vf",
        "crop=448:448:'32+20*sin(t)':'32+10*t',format=yuv420p",
        "-c:v",
        "libx264",
    ]);
    if audio {
        args.extend(["-c:a", "aac", "-shortest"]);
    }
    args.extend(extra);
    args.push(s(&out));
    ffmpeg(&args);
    out
}

struct Streams {
    video_frames: u64,
    video_duration: f64,
    width: u64,
    height: u64,
    audio_duration: Option<f64>,
    tags: serde_json::Value,
}

fn streams(p: &Path) -> Streams {
    let o = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
        ])
        .arg(p)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let st = v["streams"].as_array().unwrap();
    let vid = st.iter().find(|x| x["codec_type"] == "video").unwrap();
    let aud = st.iter().find(|x| x["codec_type"] == "audio");
    let num = |x: &serde_json::Value, k: &str| x[k].as_str().and_then(|s| s.parse::<f64>().ok());
    Streams {
        video_frames: vid["nb_read_frames"].as_str().unwrap().parse().unwrap(),
        video_duration: num(vid, "duration")
            .or_else(|| num(&v["format"], "duration"))
            .unwrap(),
        width: vid["width"].as_u64().unwrap(),
        height: vid["height"].as_u64().unwrap(),
        audio_duration: aud.map(|a| {
            num(a, "duration")
                .or_else(|| num(&v["format"], "duration"))
                .unwrap()
        }),
        tags: v["format"]["tags"].clone(),
    }
}

fn swap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_camshow"))
        .arg("swap")
        .args(args)
        .output()
        .unwrap()
}

fn frame_at(p: &Path, n: u32) -> image::RgbImage {
    let png = p.with_extension(format!("f{n}.png"));
    ffmpeg(&[
        "-i",
        s(p),
        "-vf",
        &format!("select=eq(n\\,{n})"),
        "-frames:v",
        "1",
        s(&png),
    ]);
    image::open(&png).unwrap().to_rgb8()
}

fn mean_abs_diff(a: &image::RgbImage, b: &image::RgbImage, region: (u32, u32, u32, u32)) -> f64 {
    let (x0, y0, w, h) = region;
    let mut sum = 0u64;
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            for c in 0..3 {
                sum += u64::from(a.get_pixel(x, y)[c].abs_diff(b.get_pixel(x, y)[c]));
            }
        }
    }
    sum as f64 / f64::from(w * h * 3)
}

#[test]
fn swaps_every_frame_keeping_fps_audio_and_provenance() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let clip = astronaut_clip(dir.path(), "clip.mp4", true, &[]);
    let out = dir.path().join("out.mp4");
    let o = swap(&[
        "-s",
        s(&sample("t1.jpg")),
        "-t",
        s(&clip),
        "-o",
        s(&out),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["frames"], 30);
    assert_eq!(v["frames_swapped"], 30, "{v}");
    // Checks on frames 0, 2, …, 28 (four a second at 10 fps) and the last.
    assert_eq!(v["safety_checks"], 16, "{v}");
    let (a, b) = (streams(&clip), streams(&out));
    assert_eq!(b.video_frames, a.video_frames);
    assert!(
        (b.video_duration - a.video_duration).abs() <= 0.1 + 1e-6,
        "{} vs {}",
        b.video_duration,
        a.video_duration
    );
    let (aa, ba) = (
        a.audio_duration.unwrap(),
        b.audio_duration.expect("audio kept"),
    );
    assert!((aa - ba).abs() < 0.05, "audio {aa} vs {ba}");
    assert!(
        b.tags["com.iptc.DigitalSourceType"]
            .as_str()
            .unwrap()
            .ends_with("compositeWithTrainedAlgorithmicMedia")
    );
    assert!(
        exiftool("Keys:IptcDigitalSourceType", &out)
            .ends_with("compositeWithTrainedAlgorithmicMedia")
    );
    // XMP too, which every reader finds.
    assert!(
        exiftool("XMP:DigitalSourceType", &out).ends_with("compositeWithTrainedAlgorithmicMedia"),
        "no XMP in the MP4"
    );
    assert_eq!(exiftool("XMP:Operation", &out), "face-swap");
    // The face changed, the corner (flag and background) did not beyond encoding noise.
    let (fa, fb) = (frame_at(&clip, 15), frame_at(&out, 15));
    let face = mean_abs_diff(&fa, &fb, (160, 60, 80, 80));
    let corner = mean_abs_diff(&fa, &fb, (360, 0, 80, 60));
    assert!(face > 8.0 && corner < 3.0, "face {face}, corner {corner}");
    assert!(!std::fs::read_dir(dir.path()).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".camshow-")
    }));
}

#[test]
fn no_audio_mkv_trim_and_keep_frames() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let clip = astronaut_clip(dir.path(), "silent.mp4", false, &[]);
    let out = dir.path().join("out.mkv");
    let o = swap(&[
        "-s",
        s(&sample("t1.jpg")),
        "-t",
        s(&clip),
        "-o",
        s(&out),
        "--trim-start",
        "1",
        "--trim-end",
        "2",
        "--keep-frames",
        "--max-memory",
        "8",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let b = streams(&out);
    assert!(b.audio_duration.is_none());
    assert!((9..=11).contains(&b.video_frames), "{}", b.video_frames);
    let frames_dir = PathBuf::from(format!("{}-frames", out.display()));
    let pngs = std::fs::read_dir(&frames_dir).unwrap().count() as u64;
    assert_eq!(pngs, b.video_frames);
    assert!(
        exiftool(
            "XMP-iptcExt:DigitalSourceType",
            &frames_dir.join("frame_000000.png")
        )
        .ends_with("compositeWithTrainedAlgorithmicMedia")
    );
}

#[test]
fn a_video_without_faces_passes_through() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("noface.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=12",
        "-t",
        "2",
        "-pix_fmt",
        "yuv420p",
        s(&clip),
    ]);
    let out = dir.path().join("out.mp4");
    let o = swap(&[
        "-s",
        s(&sample("astronaut.png")),
        "-t",
        s(&clip),
        "-o",
        s(&out),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["frames"].as_u64(), v["frames_swapped"].as_u64()),
        (Some(24), Some(0))
    );
    assert_eq!(streams(&out).video_frames, 24);
}

#[test]
fn rotation_metadata_is_honoured() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let plain = astronaut_clip(
        dir.path(),
        "plain.mp4",
        false,
        &["-vf", "crop=448:320:0:40,format=yuv420p"],
    );
    let rotated = dir.path().join("rotated.mp4");
    ffmpeg(&[
        "-i",
        s(&plain),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        s(&rotated),
    ]);
    let out = dir.path().join("out.mp4");
    let o = swap(&["-s", s(&sample("t1.jpg")), "-t", s(&rotated), "-o", s(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let b = streams(&out);
    assert_eq!(
        (b.width, b.height),
        (320, 448),
        "the output is stored upright"
    );
    assert_eq!(b.video_frames, 30);
}

#[test]
fn variable_frame_rate_stays_in_sync() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let cfr = astronaut_clip(dir.path(), "cfr.mkv", true, &[]);
    // Drop every third frame without retiming: a variable-rate stream of the same duration.
    let vfr = dir.path().join("vfr.mkv");
    ffmpeg(&[
        "-i",
        s(&cfr),
        "-vf",
        "select='not(eq(mod(n\\,3)\\,2))'",
        "-fps_mode",
        "vfr",
        "-c:a",
        "copy",
        s(&vfr),
    ]);
    let src_pts = pts(&vfr);
    let gaps: Vec<f64> = src_pts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().any(|g| *g > 0.15) && gaps.iter().any(|g| *g < 0.15),
        "the source is really variable: {gaps:?}"
    );
    for name in ["out.mkv", "out.mp4"] {
        let out = dir.path().join(name);
        let o = swap(&[
            "-s",
            s(&sample("t1.jpg")),
            "-t",
            s(&vfr),
            "-o",
            s(&out),
            "--json",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let (a, b) = (streams(&vfr), streams(&out));
        // Every frame kept, each at its own time (container precision: 1 ms in Matroska).
        assert_eq!(b.video_frames, a.video_frames, "{name}: frame count");
        let out_pts = pts(&out);
        assert_eq!(out_pts.len(), src_pts.len());
        for (i, (x, y)) in src_pts.iter().zip(&out_pts).enumerate() {
            assert!(
                ((x - src_pts[0]) - (y - out_pts[0])).abs() <= 0.002,
                "{name}: frame {i} at {y} instead of {x}"
            );
        }
        // And in sync with the audio, which keeps its duration.
        assert!(
            (b.video_duration - a.video_duration).abs() <= 0.15,
            "{name}: {} vs {}",
            b.video_duration,
            a.video_duration
        );
        assert!(
            (b.audio_duration.unwrap() - a.audio_duration.unwrap()).abs() < 0.05,
            "{name}: audio"
        );
        assert!(
            provenance_of(&out).ends_with("compositeWithTrainedAlgorithmicMedia"),
            "{name}: no provenance"
        );
        if Path::new(name)
            .extension()
            .is_some_and(|e| e == "mp4" || e == "mov")
        {
            assert!(
                exiftool("XMP:DigitalSourceType", &out)
                    .ends_with("compositeWithTrainedAlgorithmicMedia"),
                "{name}: no XMP"
            );
        }
    }
}

/// Presentation times of the video packets, sorted.
fn pts(p: &Path) -> Vec<f64> {
    let o = Command::new("ffprobe")
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
        .arg(p)
        .output()
        .unwrap();
    let mut v: Vec<f64> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

#[test]
fn broken_inputs_and_options_fail_cleanly() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let clip = astronaut_clip(dir.path(), "clip.mp4", true, &[]);
    let bytes = std::fs::read(&clip).unwrap();
    let truncated = dir.path().join("truncated.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    // Matroska keeps its headers in front: this one probes fine and breaks mid-stream.
    let mkv = dir.path().join("clip.mkv");
    ffmpeg(&["-i", s(&clip), "-c", "copy", s(&mkv)]);
    let mkv_bytes = std::fs::read(&mkv).unwrap();
    let cut_mkv = dir.path().join("cut.mkv");
    std::fs::write(&cut_mkv, &mkv_bytes[..mkv_bytes.len() / 2]).unwrap();
    let junk = dir.path().join("junk.mp4");
    std::fs::write(&junk, b"not a video at all").unwrap();
    let out = dir.path().join("out.mp4");
    let t1 = sample("t1.jpg");
    for (args, expect) in [
        (vec!["-t", s(&junk), "-o", s(&out)], "not a readable video"),
        (
            vec!["-t", s(&truncated), "-o", s(&out)],
            "moov atom not found",
        ),
        (vec!["-t", s(&cut_mkv), "-o", s(&out)], "ffmpeg (decode)"),
        (
            vec![
                "-t",
                s(&clip),
                "-o",
                s(&out),
                "--video-encoder",
                "no_such_encoder",
            ],
            "not offered by this FFmpeg",
        ),
        // Listed by Debian's FFmpeg, but it needs a Raspberry Pi's GPU.
        (
            vec!["-t", s(&clip), "-o", s(&out), "--video-encoder", "h264_omx"],
            "does not work on this machine",
        ),
        (
            vec!["-t", s(&clip), "-o", s(&dir.path().join("out.avi"))],
            "unsupported output video format",
        ),
        (
            vec!["-t", s(&clip), "-o", s(&out), "--trim-start=-1"],
            "not a time",
        ),
        (
            vec![
                "-t",
                s(&clip),
                "-o",
                s(&out),
                "--trim-start",
                "1.5",
                "--trim-end",
                "1",
            ],
            "not after",
        ),
        (
            vec!["-t", s(&clip), "-o", s(&out), "--trim-start", "99"],
            "past the end",
        ),
    ] {
        let mut full = vec!["-s", s(&t1)];
        full.extend(args.iter().copied());
        let o = swap(&full);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists());
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".camshow-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[cfg(target_os = "linux")]
/// Starts `camshow swap` on a 30 s clip and returns once its encoder (an
/// ffmpeg reading pipe:0) runs: the child, its output path and the ps
/// listing of its children at that moment.
fn long_job_encoding(dir: &Path) -> (std::process::Child, PathBuf, String) {
    let clip = dir.join("long.mp4");
    ffmpeg(&[
        "-loop",
        "1",
        "-framerate",
        "10",
        "-i",
        s(&sample("astronaut.png")),
        "-t",
        "30",
        "-pix_fmt",
        "yuv420p",
        s(&clip),
    ]);
    let out = dir.join("out.mp4");
    let mut child = Command::new(env!("CARGO_BIN_EXE_camshow"))
        .args([
            "swap",
            "-s",
            s(&sample("t1.jpg")),
            "-t",
            s(&clip),
            "-o",
            s(&out),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    for _ in 0..300 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let ps = Command::new("ps")
            .args(["-o", "pid=,args=", "--ppid", &pid])
            .output()
            .unwrap();
        let list = String::from_utf8_lossy(&ps.stdout).into_owned();
        if list.lines().any(|l| l.contains("pipe:0"))
            && list
                .lines()
                .any(|l| l.contains("pipe:1") && !l.contains("fps=1"))
        {
            return (child, out, list);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("never saw the job's ffmpeg processes");
}

#[cfg(target_os = "linux")]
fn no_leftovers(dir: &Path) {
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".camshow-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
#[cfg(target_os = "linux")] // ps --ppid, /proc
fn killing_ffmpeg_mid_job_ends_it_with_an_error_and_no_output() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let (child, out, list) = long_job_encoding(dir.path());
    // Kill the decoder.
    let dec = list
        .lines()
        .find(|l| l.contains("pipe:1") && !l.contains("fps=1"))
        .unwrap();
    Command::new("kill")
        .args(["-9", dec.split_whitespace().next().unwrap()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "the job succeeded although its decoder was killed"
    );
    assert!(err.contains("ffmpeg (decode)"), "{err}");
    assert!(!out.exists());
    no_leftovers(dir.path());
}

#[test]
#[cfg(target_os = "linux")] // ps --ppid, /proc
fn ctrl_c_stops_a_video_job_cleanly() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let (child, out, _) = long_job_encoding(dir.path());
    let pid = child.id().to_string();
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Its FFmpeg children, while it runs (the decoder and the encoder at least).
    let ps = Command::new("ps")
        .args(["-o", "pid=", "--ppid", &pid])
        .output()
        .unwrap();
    let children: Vec<String> = String::from_utf8_lossy(&ps.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert!(children.len() >= 2, "no FFmpeg children seen: {children:?}");
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert_eq!(
        o.status.code(),
        Some(130),
        "a cancelled job exits with 130: {err}"
    );
    assert!(err.contains("cancelled"), "{err}");
    assert!(
        !err.contains("invalid input"),
        "cancelling is not an input error: {err}"
    );
    assert!(!out.exists(), "no output after Ctrl-C");
    no_leftovers(dir.path());
    // Those children are gone too (not left running, re-parented, once it exited).
    let alive = |p: &String| {
        std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|st| {
            st.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while children.iter().any(alive) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let left: Vec<&String> = children.iter().filter(|p| alive(p)).collect();
    assert!(left.is_empty(), "FFmpeg children left running: {left:?}");
}

#[test]
fn face_mapping_gives_each_person_their_own_source() {
    store();
    let dir = tempfile::tempdir().unwrap();
    // Two people side by side for 3 s: the astronaut (left) and a face from t1.jpg (right).
    let clip = dir.path().join("two.mp4");
    let astro = sample("astronaut.png");
    let t1 = sample("t1.jpg");
    ffmpeg(&[
        "-loop",
        "1",
        "-framerate",
        "10",
        "-i",
        s(&astro),
        "-loop",
        "1",
        "-framerate",
        "10",
        "-i",
        s(&t1),
        "-filter_complex",
        "[0:v]crop=300:300:'80+10*sin(t)':20,scale=320:320[a];[1:v]crop=260:260:'390+10*sin(t)':210,scale=320:320[b];[a][b]hstack,format=yuv420p",
        "-t",
        "3",
        s(&clip),
    ]);
    let arc = format!("w600k_r50={}", parity_model("w600k_r50.onnx"));
    let map = dir.path().join("map.json");
    let o = Command::new(env!("CARGO_BIN_EXE_camshow"))
        .args([
            "faces",
            "scan",
            s(&clip),
            "-o",
            s(&map),
            "--cluster-distance",
            "0.1",
            "--model-file",
            &arc,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&map).unwrap()).unwrap();
    let people = m["people"].as_array().unwrap().clone();
    assert_eq!(people.len(), 2, "{}", String::from_utf8_lossy(&o.stdout));
    for p in &people {
        assert_eq!(
            p["frames_seen"].as_array().unwrap().len(),
            3,
            "each person is seen in every sampled frame: {p}"
        );
        let thumb = dir.path().join(p["thumbnail"].as_str().unwrap());
        assert!(thumb.is_file());
        // A thumbnail says what it is, not a face swap.
        assert_eq!(exiftool("XMP-camshow:Operation", &thumb), "face-thumbnail");
        assert!(p["source"].is_null());
    }
    let left = people
        .iter()
        .position(|p| p["first_box"][0].as_f64().unwrap() < 320.0)
        .unwrap();
    let before = frame_at(&clip, 12);
    for (who, region_swapped, region_kept) in [
        (left, (60, 40, 200, 240), (380, 40, 200, 240)),
        (1 - left, (380, 40, 200, 240), (60, 40, 200, 240)),
    ] {
        // Only this person gets a source (the other face of t1.jpg, most prominent there).
        for (i, p) in m["people"].as_array_mut().unwrap().iter_mut().enumerate() {
            p["source"] = if i == who {
                serde_json::Value::String(s(&sample("t1.jpg")).into())
            } else {
                serde_json::Value::Null
            };
        }
        std::fs::write(&map, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        let out = dir.path().join(format!("out{who}.mp4"));
        let o = swap(&[
            "--map",
            s(&map),
            "-t",
            s(&clip),
            "-o",
            s(&out),
            "--model-file",
            &arc,
            "--json",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["frames_swapped"], 30, "{v}");
        let after = frame_at(&out, 12);
        let (changed, kept) = (
            mean_abs_diff(&before, &after, region_swapped),
            mean_abs_diff(&before, &after, region_kept),
        );
        assert!(
            changed > 4.0 && kept < 2.5,
            "person {who}: swapped region {changed}, untouched region {kept}"
        );
    }
    // A map with no sources is refused.
    for p in m["people"].as_array_mut().unwrap() {
        p["source"] = serde_json::Value::Null;
    }
    std::fs::write(&map, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let o = swap(&[
        "--map",
        s(&map),
        "-t",
        s(&clip),
        "-o",
        s(&dir.path().join("none.mp4")),
        "--model-file",
        &arc,
    ]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("has a source"));
}

#[test]
fn the_processor_chain_runs_on_videos_too() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let clip = astronaut_clip(dir.path(), "clip.mp4", true, &[]);
    let plain = dir.path().join("plain.mp4");
    let chained = dir.path().join("chained.mp4");
    let o = swap(&["-s", s(&sample("t1.jpg")), "-t", s(&clip), "-o", s(&plain)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let gfpgan = format!("gfpgan_1.4={}", parity_model("gfpgan_1.4.onnx"));
    let lm = format!("2d106det={}", parity_model("2d106det.onnx"));
    let o = swap(&[
        "-s",
        s(&sample("t1.jpg")),
        "-t",
        s(&clip),
        "-o",
        s(&chained),
        "--json",
        "--frame-processor",
        "face_swapper",
        "face_enhancer",
        "--mouth-mask",
        "40",
        "--sharpness",
        "1",
        "--opacity",
        "0.9",
        "--model-file",
        &gfpgan,
        "--model-file",
        &lm,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["processors"],
        serde_json::json!(["face_swapper", "face_enhancer"])
    );
    let (a, b) = (streams(&plain), streams(&chained));
    assert_eq!(a.video_frames, b.video_frames);
    assert!(b.audio_duration.is_some());
    let region = (100, 50, 250, 250);
    assert!(
        mean_abs_diff(&frame_at(&plain, 15), &frame_at(&chained, 15), region) > 1.0,
        "the chain made no difference in the video"
    );
}

#[test]
fn kept_frames_never_mix_with_an_earlier_run_and_outputs_get_the_umask() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let clip = astronaut_clip(dir.path(), "k.mp4", false, &[]);
    let t1 = sample("t1.jpg");
    let out = dir.path().join("out.mp4");
    let frames = dir.path().join("out.mp4-frames");
    // A folder an earlier run left, with a stale frame: refused before any work.
    std::fs::create_dir(&frames).unwrap();
    std::fs::write(frames.join("frame_000000.png"), b"stale").unwrap();
    let o = swap(&["-s", s(&t1), "-t", s(&clip), "-o", s(&out), "--keep-frames"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("already exists and is not empty"), "{err}");
    assert!(!out.exists());
    assert_eq!(
        std::fs::read(frames.join("frame_000000.png")).unwrap(),
        b"stale",
        "the user's folder is untouched"
    );
    // An empty folder is fine, and gets exactly this run's frames.
    std::fs::remove_file(frames.join("frame_000000.png")).unwrap();
    let o = swap(&["-s", s(&t1), "-t", s(&clip), "-o", s(&out), "--keep-frames"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let n = std::fs::read_dir(&frames).unwrap().count();
    assert!(n >= 10, "{n} frames kept");
    // No temporary frames folder is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with(".camshow"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The output has the permissions the umask gives a new file (not 0600).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, camshow_test_utils::new_file_mode());
    }
    // The output cannot be the input.
    let o = swap(&["-s", s(&t1), "-t", s(&clip), "-o", s(&clip)]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("is the target"));
}

#[test]
fn odd_frame_sizes_keep_their_size_with_the_default_encoder() {
    store();
    let dir = tempfile::tempdir().unwrap();
    // 641×479 (4:2:0 H.264 cannot hold it), stored losslessly.
    let clip = dir.path().join("odd.mkv");
    ffmpeg(&[
        "-loop",
        "1",
        "-framerate",
        "10",
        "-i",
        s(&sample("astronaut.png")),
        "-t",
        "1",
        "-vf",
        "scale=641:479",
        "-c:v",
        "ffv1",
        s(&clip),
    ]);
    let out = dir.path().join("odd.mp4");
    let o = swap(&[
        "-s",
        s(&sample("t1.jpg")),
        "-t",
        s(&clip),
        "-o",
        s(&out),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["frames"], 10, "{v}");
    assert!(v["frames_swapped"].as_u64().unwrap() >= 9, "{v}");
    let b = streams(&out);
    assert_eq!((b.width, b.height), (641, 479));
    assert_eq!(b.video_frames, 10);
    // H.264 (4:4:4) that decodes from end to end without an error.
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,pix_fmt",
        ])
        .args(["-of", "csv=p=0"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout).trim(),
        "h264,yuv444p"
    );
    let decode = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&out)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        decode.status.success() && decode.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&decode.stderr)
    );
}

#[test]
fn the_gate_checks_the_first_frame_of_every_scene() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let t1 = sample("t1.jpg");
    // 3 s at 10 fps: the moving astronaut, cut at 1.3 s (frame 13, between two
    // regular checks) to the group photo.
    let cut = dir.path().join("cut.mp4");
    ffmpeg(&[
        "-loop",
        "1",
        "-framerate",
        "10",
        "-i",
        s(&sample("astronaut.png")),
        "-loop",
        "1",
        "-framerate",
        "10",
        "-i",
        s(&t1),
        "-filter_complex",
        "[0]crop=448:448:'32+20*sin(t)':'32+10*t'[a];[1]scale=448:448[b];[a][b]overlay=enable='gte(t,1.3)',format=yuv420p",
        "-t",
        "3",
        "-c:v",
        "libx264",
        s(&cut),
    ]);
    let plain = astronaut_clip(dir.path(), "plain.mp4", false, &[]);
    let run = |clip: &Path, name: &str| {
        let o = swap(&[
            "-s",
            s(&t1),
            "-t",
            s(clip),
            "-o",
            s(&dir.path().join(name)),
            "--json",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let (with_cut, without) = (run(&cut, "a.mp4"), run(&plain, "b.mp4"));
    assert_eq!(with_cut["frames"], without["frames"]);
    assert_eq!(with_cut["scene_cuts"], 1, "{with_cut}");
    assert_eq!(
        without["scene_cuts"], 0,
        "moving within a scene is not a cut: {without}"
    );
    assert_eq!(
        with_cut["safety_checks"].as_u64().unwrap(),
        without["safety_checks"].as_u64().unwrap() + 1,
        "one more check, on the cut"
    );
}

#[test]
fn a_new_frame_rate_resamples_and_keeps_the_duration_and_the_audio() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let clip = astronaut_clip(dir.path(), "r.mp4", true, &[]);
    let t1 = sample("t1.jpg");
    let src = streams(&clip);
    let out = dir.path().join("five.mp4");
    let o = swap(&[
        "-s",
        s(&t1),
        "-t",
        s(&clip),
        "-o",
        s(&out),
        "--no-keep-fps",
        "--fps",
        "5",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // The gate checked the frames and the faces to swap at least four times per second of video.
    assert!(v["safety_checks"].as_u64().unwrap() >= 12, "{v}");
    assert_eq!(v["unswapped_ranges"], serde_json::json!([]));
    let b = streams(&out);
    // 3 s at 10 fps → 3 s at 5 fps: half the frames, the same length, audio in step.
    assert!(
        (b.video_duration - src.video_duration).abs() < 0.25,
        "{} s vs {} s",
        b.video_duration,
        src.video_duration
    );
    assert!(
        (14..=16).contains(&b.video_frames),
        "{} frames",
        b.video_frames
    );
    assert!((b.audio_duration.unwrap() - b.video_duration).abs() < 0.25);
    // A rate of 0 is refused, not turned into 1 fps.
    let o = swap(&[
        "-s",
        s(&t1),
        "-t",
        s(&clip),
        "-o",
        s(&dir.path().join("zero.mp4")),
        "--no-keep-fps",
        "--fps",
        "0",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("video.fps: 0 is not in 1–1000"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn the_encoder_follows_the_container() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let clip = astronaut_clip(dir.path(), "w.mp4", true, &["-t", "1"]);
    let t1 = sample("t1.jpg");
    let out = dir.path().join("out.webm");
    let o = swap(&["-s", s(&t1), "-t", s(&clip), "-o", s(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "vp9");
    // An encoder the container cannot hold is refused up front, with those it can.
    let bad = dir.path().join("bad.webm");
    let o = swap(&[
        "-s",
        s(&t1),
        "-t",
        s(&clip),
        "-o",
        s(&bad),
        "--video-encoder",
        "libx264",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("cannot hold") && err.contains("libvpx-vp9"),
        "{err}"
    );
    assert!(!bad.exists());
}

/// The moving astronaut clip (3 s at 10 fps) with the gate's test marker
/// (`camshow-core/test-marker`: unsafe in test builds) overlaid `when` (an
/// FFmpeg expression of `n`, the frame number).
fn marked_clip(dir: &Path, name: &str, when: &str) -> PathBuf {
    let marker = dir.join("marker.png");
    let mut f = camshow_core::Frame::filled(128, 128, [0, 0, 0]).unwrap();
    camshow_core::safety::test_marker::paint(&mut f, 0, 0, 128, 128);
    image::RgbImage::from_raw(128, 128, f.data().to_vec())
        .unwrap()
        .save(&marker)
        .unwrap();
    let out = dir.join(name);
    ffmpeg(&[
        "-loop",
        "1",
        "-framerate",
        "10",
        "-i",
        s(&sample("astronaut.png")),
        "-i",
        s(&marker),
        "-t",
        "3",
        "-filter_complex",
        &format!(
            "[0]crop=448:448:'32+20*sin(t)':'32+10*t'[a];[a][1]overlay=0:304:enable='{when}',format=yuv420p"
        ),
        "-c:v",
        "libx264",
        s(&out),
    ]);
    out
}

#[test]
fn the_gate_refuses_a_marked_video_and_leaves_marked_moments_unswapped() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let t1 = sample("t1.jpg");
    // Marked throughout: no frame is swapped, and the job stops as soon as
    // the rest of the video cannot lift the refusal — after its third check
    // (frame 4): 3 unsafe of at most 3 + 26 + 1 checks is over 10 % — with
    // nothing written.
    let all = marked_clip(dir.path(), "all.mp4", "1");
    let out = dir.path().join("out.mp4");
    let o = swap(&["-s", s(&t1), "-t", s(&all), "-o", s(&out)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("refused by the content-safety gate")
            && err.contains("all.mp4")
            && err.contains("3 of 3 of the checks so far"),
        "{err}"
    );
    assert!(!out.exists());
    assert!(!std::fs::read_dir(dir.path()).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".camshow-")
    }));
    // Marked on frames 17 and 18 only (1.7–1.8 s): the check on frame 18 fails
    // (checks every 2 frames), so frames 17–20 stay unswapped, the rest is
    // swapped, and one unsafe check of 16 does not refuse the video.
    let brief = marked_clip(dir.path(), "brief.mp4", "between(n,17,18)");
    let o = swap(&["-s", s(&t1), "-t", s(&brief), "-o", s(&out), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["unswapped_ranges"], serde_json::json!([[17, 20]]), "{v}");
    assert_eq!(v["frames_swapped"], 26, "{v}");
    let face = (160, 60, 80, 80);
    for n in [17, 18, 20] {
        let d = mean_abs_diff(&frame_at(&brief, n), &frame_at(&out, n), face);
        assert!(d < 3.0, "frame {n} was swapped (face differs by {d})");
    }
    for n in [5, 25] {
        let d = mean_abs_diff(&frame_at(&brief, n), &frame_at(&out, n), face);
        assert!(d > 8.0, "frame {n} was not swapped (face differs by {d})");
    }
}

/// The IPTC digital source type a video carries, where its container keeps
/// it: the QuickTime key (MP4/MOV) or the Matroska tag (MKV/WebM).
fn provenance_of(p: &Path) -> String {
    match p.extension().and_then(|e| e.to_str()) {
        Some("mp4" | "mov" | "m4v") => exiftool("Keys:IptcDigitalSourceType", p),
        // Matroska tag names are stored upper case.
        _ => streams(p).tags["DIGITALSOURCETYPE"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

#[test]
fn every_advertised_container_carries_provenance() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let clip = astronaut_clip(dir.path(), "c.mp4", true, &["-t", "1"]);
    for name in ["out.mp4", "out.mov", "out.mkv", "out.webm"] {
        let out = dir.path().join(name);
        let o = swap(&["-s", s(&sample("t1.jpg")), "-t", s(&clip), "-o", s(&out)]);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            provenance_of(&out).ends_with("compositeWithTrainedAlgorithmicMedia"),
            "{name}: {}",
            provenance_of(&out)
        );
        if matches!(
            out.extension().and_then(|e| e.to_str()),
            Some("mp4" | "mov")
        ) {
            assert!(
                exiftool("XMP:DigitalSourceType", &out)
                    .ends_with("compositeWithTrainedAlgorithmicMedia")
            );
            assert_eq!(exiftool("XMP:Operation", &out), "face-swap", "{name}");
        }
        assert_eq!(streams(&out).video_frames, 10, "{name}");
    }
}

fn camshow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_camshow"))
        .args(args)
        .output()
        .unwrap()
}

/// Splits `clip` into three parts (in separate processes, as a cluster's
/// array job would), joins them in another order, and returns the joined
/// video and each part's tag.
fn split_and_join(dir: &Path, clip: &Path, name: &str) -> (PathBuf, Vec<serde_json::Value>) {
    let mut parts = Vec::new();
    let mut tags = Vec::new();
    for i in 0..3 {
        let part = dir.join(format!("{name}-part{i}.mp4"));
        let o = swap(&[
            "-s",
            s(&sample("t1.jpg")),
            "-t",
            s(clip),
            "-o",
            s(&part),
            "--segment",
            &format!("{i}/3"),
            "--json",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["segment"], format!("{i}/3"));
        let st = streams(&part);
        assert_eq!(
            st.audio_duration, None,
            "a part leaves the audio to the join"
        );
        let tag: serde_json::Value =
            serde_json::from_str(st.tags["camshow_segment"].as_str().unwrap()).unwrap();
        assert_eq!(tag["frames"], st.video_frames, "{tag}");
        assert_eq!(v["frames"], st.video_frames);
        tags.push(tag);
        parts.push(part);
    }
    let joined = dir.join(format!("{name}-joined.mp4"));
    let o = camshow(&[
        "join",
        "-t",
        s(clip),
        "-o",
        s(&joined),
        s(&parts[2]),
        s(&parts[0]),
        s(&parts[1]),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["segments"], 3);
    assert_eq!(v["audio"], true);
    (joined, tags)
}

#[test]
fn segments_joined_give_the_single_run_at_and_between_keyframes() {
    store();
    let dir = tempfile::tempdir().unwrap();
    // Keyframes every 9 frames: the even split (10, 20) snaps to 9 and 18.
    let keyed = astronaut_clip(
        dir.path(),
        "keyed.mp4",
        true,
        &["-g", "9", "-keyint_min", "9", "-sc_threshold", "0"],
    );
    // One keyframe only: the boundaries fall between keyframes.
    let sparse = astronaut_clip(
        dir.path(),
        "sparse.mp4",
        true,
        &["-g", "300", "-sc_threshold", "0"],
    );
    for (clip, name, firsts, keyframe_starts) in [
        (&keyed, "keyed", [0, 9, 18], [true, true, true]),
        (&sparse, "sparse", [0, 10, 20], [true, false, false]),
    ] {
        let single = dir.path().join(format!("{name}-single.mp4"));
        let o = swap(&["-s", s(&sample("t1.jpg")), "-t", s(clip), "-o", s(&single)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let (joined, tags) = split_and_join(dir.path(), clip, name);
        for (i, t) in tags.iter().enumerate() {
            assert_eq!(t["first_frame"], firsts[i], "{name}: {t}");
            assert_eq!(t["keyframe_start"], keyframe_starts[i], "{name}: {t}");
            assert_eq!(t["input_frames"], 30);
        }
        let (a, b, c) = (streams(clip), streams(&single), streams(&joined));
        assert_eq!(c.video_frames, a.video_frames, "{name}: frame-exact");
        assert_eq!(c.video_frames, b.video_frames);
        assert!((c.video_duration - b.video_duration).abs() < 1e-3, "{name}");
        let audio = c.audio_duration.expect("the join muxes the target's audio");
        assert!((audio - a.audio_duration.unwrap()).abs() < 0.05, "{name}");
        assert!(
            c.tags.get("camshow_segment").is_none(),
            "a joined video is no part"
        );
        assert_eq!(exiftool("XMP:Operation", &joined), "face-swap");
        assert!(
            exiftool("XMP:DigitalSourceType", &joined)
                .ends_with("compositeWithTrainedAlgorithmicMedia")
        );
        assert!(
            exiftool("Keys:IptcDigitalSourceType", &joined)
                .ends_with("compositeWithTrainedAlgorithmicMedia")
        );
        // Visually the single run's frames, at and around every boundary.
        // (Each part starts its encode with a keyframe and its face
        // tracking afresh: encoding noise and smoothing, no visible change.)
        let diffs: Vec<(u32, f64)> = [0, 8, 9, 10, 17, 18, 19, 20, 21, 29]
            .into_iter()
            .map(|n| {
                let d = mean_abs_diff(
                    &frame_at(&single, n),
                    &frame_at(&joined, n),
                    (0, 0, 448, 448),
                );
                (n, d)
            })
            .collect();
        assert!(
            diffs.iter().all(|(_, d)| *d < 3.0),
            "{name}: mean differences per frame {diffs:?}"
        );
        // A frame off (one lost or repeated at a boundary) would show.
        let off = mean_abs_diff(
            &frame_at(&single, 9),
            &frame_at(&joined, 10),
            (0, 0, 448, 448),
        );
        assert!(
            off > 6.0,
            "{name}: neighbouring frames differ by {off} only"
        );
        // And swapped: the face differs from the input's.
        let face = mean_abs_diff(
            &frame_at(clip, 15),
            &frame_at(&joined, 15),
            (160, 60, 80, 80),
        );
        assert!(face > 8.0, "{name}: face {face}");
    }
}

#[test]
fn joins_refuse_missing_repeated_and_foreign_parts() {
    store();
    let dir = tempfile::tempdir().unwrap();
    let clip = astronaut_clip(dir.path(), "clip.mp4", true, &["-t", "1"]);
    let other = astronaut_clip(dir.path(), "other.mp4", false, &["-t", "1"]);
    let part = |c: &Path, i: u32, n: u32| {
        let p = dir.path().join(format!(
            "{}-{i}of{n}.mp4",
            c.file_stem().unwrap().to_str().unwrap()
        ));
        let o = swap(&[
            "-s",
            s(&sample("t1.jpg")),
            "-t",
            s(c),
            "-o",
            s(&p),
            "--segment",
            &format!("{i}/{n}"),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        p
    };
    let (p0, p1, q1) = (part(&clip, 0, 2), part(&clip, 1, 2), part(&other, 1, 2));
    let out = dir.path().join("joined.mp4");
    let join = |parts: &[&Path]| {
        let mut a = vec!["join", "-t", s(&clip), "-o", s(&out)];
        a.extend(parts.iter().map(|p| s(p)));
        camshow(&a)
    };
    for (parts, expect) in [
        (vec![p0.as_path()], "segment 1/2 is missing"),
        (vec![p1.as_path()], "segment 0/2 is missing"),
        (vec![p0.as_path(), p0.as_path()], "given twice"),
        (vec![p0.as_path(), q1.as_path()], "another video"),
        (vec![p0.as_path(), clip.as_path()], "not a segment"),
    ] {
        let o = join(&parts);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains(expect),
            "{parts:?}: {err}"
        );
        assert!(!out.exists(), "nothing is written");
    }
    // Bad segment options are refused before any work.
    let face = sample("t1.jpg");
    for (args, expect) in [
        (vec!["--segment", "2/2"], "below 2"),
        (vec!["--segment", "half"], "INDEX/COUNT"),
        (vec!["--segment", "0/31"], "too few"),
    ] {
        let mut a = vec!["-s", s(&face), "-t", s(&clip), "-o", s(&out)];
        a.extend(args);
        let o = swap(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(expect), "{a:?}: {err}");
    }
    let picture = dir.path().join("picture.png");
    let o = swap(&[
        "-s",
        s(&sample("t1.jpg")),
        "-t",
        s(&sample("t1.jpg")),
        "-o",
        s(&picture),
        "--segment",
        "0/2",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("only videos"), "{err}");
    assert!(!picture.exists());
}
