//! Writing files so that a reader never sees half of one: a temporary file
//! in the same folder, flushed and synced, then renamed over the target. On
//! failure nothing is left behind, and an existing file stays as it was.

use std::io::Write as _;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically. The folder must exist.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::Io {
            context: "output folder does not exist for",
            path: path.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".camshow-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(Error::io("cannot create a temporary file in", dir))?;
    tmp.write_all(bytes)
        .map_err(Error::io("cannot write", tmp.path().to_path_buf()))?;
    tmp.as_file()
        .sync_all()
        .map_err(Error::io("cannot sync", tmp.path().to_path_buf()))?;
    tmp.persist(path).map_err(|e| Error::Io {
        context: "cannot move into place",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}
