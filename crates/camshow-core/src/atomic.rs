//! Writing files so that a reader never sees half of one: a temporary file
//! in the same folder, flushed and synced, then renamed over the target. On
//! failure nothing is left behind, and an existing file stays as it was.

use std::io::Write as _;
use std::path::Path;

use crate::error::{Error, Result};

/// A temporary output file in `dir` (renamed into place by the caller when
/// complete): created with the permissions the user's umask gives a new
/// file (0644 under the usual 022), not the 0600 of a private temp file.
pub fn temp_file_in(dir: &Path, suffix: &str) -> Result<tempfile::NamedTempFile> {
    let mut b = tempfile::Builder::new();
    b.prefix(".camshow-").suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o666));
    }
    b.tempfile_in(dir)
        .map_err(Error::io("cannot create a temporary file in", dir))
}

/// Whether `a` and `b` name the same file: the same path after resolving
/// links, or (on Unix) the same device and inode. A path that does not exist
/// yet is compared by its resolved folder and name.
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        use std::os::unix::fs::MetadataExt;
        return ma.dev() == mb.dev() && ma.ino() == mb.ino();
    }
    match (resolved(a), resolved(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn resolved(p: &Path) -> Option<std::path::PathBuf> {
    if let Ok(c) = p.canonicalize() {
        return Some(c);
    }
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(parent.canonicalize().ok()?.join(p.file_name()?))
}

/// Refuses an `output` that is one of the `inputs` (named by `what` in the
/// message), before any work: the user's files are never overwritten.
pub fn ensure_not_input(output: &Path, inputs: &[(&str, &Path)]) -> Result<()> {
    for (what, input) in inputs {
        if same_file(output, input) {
            return Err(Error::InvalidInput(format!(
                "the output {} is the {what} {}: choose another output (nothing was written)",
                output.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

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
    let mut tmp = temp_file_in(dir, ".part")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_file_is_found_through_links_and_other_spellings() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.png");
        std::fs::write(&a, b"x").unwrap();
        assert!(same_file(&a, &dir.path().join(".").join("a.png")));
        assert!(!same_file(&a, &dir.path().join("b.png")));
        #[cfg(unix)]
        {
            let link = dir.path().join("link.png");
            std::os::unix::fs::symlink(&a, &link).unwrap();
            assert!(same_file(&link, &a));
            let hard = dir.path().join("hard.png");
            std::fs::hard_link(&a, &hard).unwrap();
            assert!(same_file(&hard, &a), "hard links share the inode");
        }
        let e = ensure_not_input(&a, &[("target", &a)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("is the target"), "{e}");
        assert!(ensure_not_input(&dir.path().join("new.png"), &[("target", &a)]).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn outputs_get_the_umask_permissions_not_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        write(&p, b"data").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, camshow_test_utils::new_file_mode());
    }
}
