//! Getting model files: resumable HTTP downloads, and extraction from the
//! Python wheels and npm packages some models ship in.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};

/// Receives download progress. The CLI draws a bar; tests count calls.
pub trait Progress {
    /// A transfer starts: `done` bytes already on disk, `total` if known.
    fn start(&mut self, name: &str, done: u64, total: Option<u64>);
    /// `done` bytes are now on disk.
    fn advance(&mut self, done: u64);
    /// The transfer ended (successfully or not).
    fn finish(&mut self);
    /// A line for the user.
    fn message(&mut self, text: &str);
    /// Whether the user asked to stop (Ctrl-C, a cancelled job): a transfer
    /// stops at the next chunk with [`Error::Cancelled`] and keeps what it
    /// has, so the next fetch resumes from there.
    fn cancelled(&self) -> bool {
        false
    }
}

/// Progress that goes nowhere.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _: &str, _: u64, _: Option<u64>) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self) {}
    fn message(&mut self, text: &str) {
        tracing::info!("{text}");
    }
}

const ATTEMPTS: usize = 5;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_per_read(Some(Duration::from_mins(1)))
        .user_agent(concat!("camshow-deepfaker/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn dl_err(name: &str, reason: impl Into<String>) -> Error {
    Error::Download {
        name: name.into(),
        reason: reason.into(),
    }
}

/// Downloads `url` into `part`, resuming from whatever `part` already holds
/// (HTTP Range). A dropped connection is retried from where it stopped. The
/// caller verifies the finished file before using it.
pub fn download(
    url: &str,
    part: &Path,
    expected_size: Option<u64>,
    progress: &mut dyn Progress,
) -> Result<()> {
    let agent = agent();
    let name = url.rsplit('/').next().unwrap_or(url).to_string();
    if let Some(parent) = part.parent() {
        fs::create_dir_all(parent).map_err(Error::io("cannot create", parent))?;
    }
    let mut last_err = String::new();
    for attempt in 1..=ATTEMPTS {
        if progress.cancelled() {
            return Err(Error::Cancelled);
        }
        let mut have = fs::metadata(part).map_or(0, |m| m.len());
        if let Some(size) = expected_size {
            if have == size {
                return Ok(());
            }
            if have > size {
                // Longer than the real file: cannot be right, start again.
                fs::remove_file(part).map_err(Error::io("cannot remove", part))?;
                have = 0;
            }
        }
        let mut req = agent.get(url);
        if have > 0 {
            req = req.header("Range", format!("bytes={have}-"));
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(e) => {
                last_err = e.to_string();
                progress.message(&format!(
                    "attempt {attempt}/{ATTEMPTS} for {name} failed: {last_err}"
                ));
                std::thread::sleep(Duration::from_millis(300 * attempt as u64));
                continue;
            }
        };
        let status = resp.status().as_u16();
        let content_len = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let append = match status {
            206 => true,
            200 => {
                have = 0;
                false
            }
            416 if have > 0 => {
                // Range not satisfiable: the server has no more bytes than we hold.
                return Ok(());
            }
            s => return Err(dl_err(&name, format!("server answered HTTP {s} for {url}"))),
        };
        let total = content_len.map(|l| l + have).or(expected_size);
        if let (Some(t), Some(e)) = (total, expected_size)
            && t != e
        {
            return Err(dl_err(
                &name,
                format!("server offers {t} bytes but {e} are expected"),
            ));
        }
        let mut file = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(part)
            .map_err(Error::io("cannot open", part))?;
        progress.start(&name, have, total);
        let mut reader = resp.into_body().into_reader();
        let mut buf = vec![0u8; 256 * 1024];
        let mut done = have;
        let outcome: std::result::Result<(), String> = loop {
            match reader.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    if let Err(e) = file.write_all(&buf[..n]) {
                        progress.finish();
                        return Err(Error::Io {
                            context: "cannot write",
                            path: part.to_path_buf(),
                            source: e,
                        });
                    }
                    done += n as u64;
                    progress.advance(done);
                    if progress.cancelled() {
                        break Ok(());
                    }
                }
                Err(e) => break Err(e.to_string()),
            }
        };
        file.flush().map_err(Error::io("cannot write", part))?;
        drop(file);
        progress.finish();
        if progress.cancelled() {
            progress.message(&format!(
                "{name}: stopped after {done} bytes; the next fetch resumes from there"
            ));
            return Err(Error::Cancelled);
        }
        match outcome {
            Ok(()) if total.is_none_or(|t| t == done) => return Ok(()),
            Ok(()) => {
                last_err = format!(
                    "connection closed after {done} of {} bytes",
                    total.unwrap_or(0)
                );
            }
            Err(e) => last_err = format!("connection lost after {done} bytes: {e}"),
        }
        progress.message(&format!(
            "attempt {attempt}/{ATTEMPTS} for {name}: {last_err}; resuming"
        ));
    }
    Err(dl_err(
        &name,
        format!("gave up after {ATTEMPTS} attempts: {last_err}"),
    ))
}

/// Runs a packaging tool, stopping it when the user cancels.
fn run_tool(cmd: &mut Command, tool: &str, progress: &dyn Progress) -> Result<String> {
    let out = crate::child::output_until(cmd, &|| progress.cancelled())
        .map_err(|e| Error::Tool {
            tool: tool.into(),
            reason: format!("could not be started: {e}"),
        })?
        .ok_or(Error::Cancelled)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
        return Err(Error::Tool {
            tool: tool.into(),
            reason: format!(
                "{} ({})",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
                out.status
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn find_file(dir: &Path, pred: impl Fn(&str) -> bool) -> Option<PathBuf> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(&pred))
}

/// `pip download --no-deps PACKAGE==VERSION` into `dir` (cached); returns the wheel.
pub fn pip_download(
    package: &str,
    version: &str,
    dir: &Path,
    progress: &mut dyn Progress,
) -> Result<PathBuf> {
    let norm = package.replace('-', "_");
    let prefix = format!("{norm}-{version}-");
    if let Some(w) = find_file(dir, |n| n.starts_with(&prefix) && has_ext(n, "whl")) {
        return Ok(w);
    }
    fs::create_dir_all(dir).map_err(Error::io("cannot create", dir))?;
    progress.message(&format!("pip download {package}=={version}"));
    let py = super::python();
    run_tool(
        Command::new(&py)
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "-q",
                "-d",
            ])
            .arg(dir)
            .arg(format!("{package}=={version}")),
        &format!("{py} -m pip download"),
        progress,
    )?;
    find_file(dir, |n| n.starts_with(&prefix) && has_ext(n, "whl")).ok_or_else(|| Error::Tool {
        tool: "pip".into(),
        reason: format!(
            "no wheel for {package}=={version} appeared in {}",
            dir.display()
        ),
    })
}

/// `npm pack PACKAGE@VERSION` into `dir` (cached); returns the tarball.
pub fn npm_pack(
    package: &str,
    version: &str,
    dir: &Path,
    progress: &mut dyn Progress,
) -> Result<PathBuf> {
    let name = format!(
        "{}-{version}.tgz",
        package.trim_start_matches('@').replace('/', "-")
    );
    let path = dir.join(&name);
    if path.is_file() {
        return Ok(path);
    }
    fs::create_dir_all(dir).map_err(Error::io("cannot create", dir))?;
    progress.message(&format!("npm pack {package}@{version}"));
    run_tool(
        Command::new("npm")
            .args([
                "pack",
                "--silent",
                &format!("{package}@{version}"),
                "--pack-destination",
            ])
            .arg(dir),
        "npm pack",
        progress,
    )?;
    path.is_file().then_some(path).ok_or_else(|| Error::Tool {
        tool: "npm".into(),
        reason: format!("{name} did not appear in {}", dir.display()),
    })
}

/// Copies `member` of a zip archive (a wheel too) to `out`.
pub fn extract_zip_member(archive: &Path, member: &str, out: &Path) -> Result<()> {
    let f = fs::File::open(archive).map_err(Error::io("cannot open", archive))?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| Error::Verification {
        what: archive.display().to_string(),
        reason: e.to_string(),
    })?;
    let index = (0..zip.len())
        .find(|&i| {
            zip.name_for_index(i)
                .is_some_and(|n| n == member || n.ends_with(&format!("/{member}")))
        })
        .ok_or_else(|| Error::Verification {
            what: archive.display().to_string(),
            reason: format!("it has no {member}"),
        })?;
    let mut entry = zip.by_index(index).map_err(|e| Error::Verification {
        what: archive.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut o = fs::File::create(out).map_err(Error::io("cannot create", out))?;
    std::io::copy(&mut entry, &mut o).map_err(Error::io("cannot extract to", out))?;
    Ok(())
}

/// Copies `member` of a `.tgz` to `out`.
pub fn extract_tgz_member(tgz: &Path, member: &str, out: &Path) -> Result<()> {
    let f = fs::File::open(tgz).map_err(Error::io("cannot open", tgz))?;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let entries = ar.entries().map_err(Error::io("cannot read", tgz))?;
    for entry in entries {
        let mut entry = entry.map_err(Error::io("cannot read", tgz))?;
        let is_member = entry.path().is_ok_and(|p| p == Path::new(member));
        if is_member {
            let mut o = fs::File::create(out).map_err(Error::io("cannot create", out))?;
            std::io::copy(&mut entry, &mut o).map_err(Error::io("cannot extract to", out))?;
            return Ok(());
        }
    }
    Err(Error::Verification {
        what: tgz.display().to_string(),
        reason: format!("it has no {member}"),
    })
}

/// Whether file name `n` ends with `.ext`, in any case.
fn has_ext(n: &str, ext: &str) -> bool {
    std::path::Path::new(n)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}
