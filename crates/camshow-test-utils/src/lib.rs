//! Fixtures for tests: the sample photos and models the setup script
//! provisions, and helpers to run external checkers. Every helper fails the
//! test with the fix when its asset is missing; nothing is skipped silently.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::path::PathBuf;
use std::process::Command;

use camshow_core::models::ModelStore;
use camshow_core::runtime::{Runtime, RuntimeSettings};

const FIX: &str =
    "run `scripts/setup.sh` (the README's test command does it) to provision test assets";

/// A sample photo from the setup cache (`astronaut.png`, `t1.jpg`).
pub fn sample(name: &str) -> PathBuf {
    let p = camshow_core::paths::cache_dir().join("samples").join(name);
    assert!(p.is_file(), "sample {} is missing: {FIX}", p.display());
    p
}

/// A program of the test tools `scripts/setup.sh --test` installs in the
/// cache (`schemathesis`).
pub fn test_tool(name: &str) -> PathBuf {
    let p = camshow_core::paths::cache_dir()
        .join("test-tools/bin")
        .join(name);
    assert!(
        p.is_file(),
        "{} is missing: run `scripts/setup.sh --test` (the README's test command does it)",
        p.display()
    );
    p
}

/// The default model store, asserting the packaged models are installed.
pub fn store() -> ModelStore {
    let s = ModelStore::open_default();
    for id in ["nudenet", "centerface", "blazeface_front", "blazeface_back"] {
        let spec = camshow_core::models::find(id).unwrap();
        assert!(
            s.path(spec).is_file(),
            "model {id} is not installed in {}: {FIX}",
            s.dir().display()
        );
    }
    s
}

/// A CPU runtime with `threads` intra-op threads.
pub fn runtime(threads: usize) -> Runtime {
    Runtime::new(RuntimeSettings::auto(threads)).unwrap_or_else(|e| panic!("{e}: {FIX}"))
}

/// An engine context over `store` with a CPU runtime of `threads` threads.
pub fn context(
    store: ModelStore,
    threads: usize,
) -> std::sync::Arc<camshow_core::context::EngineContext> {
    camshow_core::context::EngineContext::new(runtime(threads), store)
}

/// Runs `exiftool -s3 -TAG file` and returns its output.
pub fn exiftool(tag: &str, file: &std::path::Path) -> String {
    let out = Command::new("exiftool")
        .arg("-s3")
        .arg(format!("-{tag}"))
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("exiftool is required for provenance tests ({e}): {FIX}"));
    assert!(
        out.status.success(),
        "exiftool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A synthetic model of the parity suite (`crates/camshow-core/tests/data/parity/NAME`), as a path string.
pub fn parity_model(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../camshow-core/tests/data/parity")
        .join(name);
    assert!(p.is_file(), "{} is missing", p.display());
    p.to_str().unwrap().to_string()
}

/// A deterministic textured `w`×`h` frame (benchmarks and tests that need
/// pixels but no faces).
pub fn pattern_frame(w: u32, h: u32) -> camshow_core::Frame {
    let mut d = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            d.extend_from_slice(&[(x * 7 + y) as u8, (y * 3) as u8, (x ^ y) as u8]);
        }
    }
    camshow_core::Frame::from_rgb(w, h, d).unwrap()
}

/// A `seconds` long, 10 fps, `size`×`size` H.264 clip of the astronaut,
/// written to `out` (needs FFmpeg, which the setup installs).
pub fn astronaut_clip(out: &std::path::Path, seconds: u32, size: u32) -> PathBuf {
    let o = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-loop", "1", "-framerate", "10", "-i"])
        .arg(sample("astronaut.png"))
        .args(["-t", &seconds.to_string()])
        .args(["-vf", &format!("scale={size}:{size},format=yuv420p")])
        .args(["-c:v", "libx264"])
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("ffmpeg: {e} ({FIX})"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out.to_path_buf()
}

/// The mean absolute difference of two pictures of one size, per channel
/// value (0 for equal pictures, 255 at most).
pub fn mean_abs_diff(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions(), "pictures of one size");
    let s: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    s as f64 / a.as_raw().len().max(1) as f64
}

/// A copy of the picture `src` with the gate's test marker over
/// `(x, y, w, h)`, written to `out` as PNG (the marked picture is unsafe to
/// the gate of a test build).
pub fn marked(src: &std::path::Path, out: PathBuf, rect: (u32, u32, u32, u32)) -> PathBuf {
    let img = image::open(src).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    let mut f = camshow_core::Frame::from_rgb(w, h, img.into_raw()).unwrap();
    camshow_core::safety::test_marker::paint(&mut f, rect.0, rect.1, rect.2, rect.3);
    image::RgbImage::from_raw(w, h, f.data().to_vec())
        .unwrap()
        .save(&out)
        .unwrap();
    out
}

/// The permission bits a new file gets under this process's umask (`0o666 & !umask`).
pub fn new_file_mode() -> u32 {
    let out = Command::new("sh").args(["-c", "umask"]).output().unwrap();
    let umask = u32::from_str_radix(String::from_utf8_lossy(&out.stdout).trim(), 8).unwrap();
    0o666 & !umask
}

/// A fuzz target: its name and its entry point.
pub type FuzzTarget = (&'static str, fn(&[u8]));

/// Replays the committed fuzz corpus and the inputs that once crashed
/// (`fuzz/corpus/<target>`, `fuzz/regressions/<target>`) through each
/// target: the harness's findings stay fixed. Panics on an empty corpus.
pub fn replay_fuzz_corpus(targets: &[FuzzTarget]) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    for (name, target) in targets {
        let dir = root.join("corpus").join(name);
        let regressions = root.join("regressions").join(name);
        let mut n = 0;
        let extra = std::fs::read_dir(&regressions).into_iter().flatten();
        for entry in std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .chain(extra)
        {
            let path = entry.unwrap().path();
            target(&std::fs::read(&path).unwrap());
            n += 1;
        }
        assert!(n > 0, "no corpus for {name}");
    }
}
