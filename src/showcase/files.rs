//! Writing the showcase's picture files: never over an existing file without --overwrite, never half-written.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Refuses `path` when it exists (unless `overwrite`) or its folder is missing; run before any work.
pub fn check_free(path: &Path, overwrite: bool) -> Result<()> {
    if path.is_dir() {
        bail!("{}: is a folder; give a file name", path.display());
    }
    if path.exists() && !overwrite {
        bail!(
            "{}: already exists (add --overwrite to replace it)",
            path.display()
        );
    }
    let dir = parent_of(path);
    if !dir.is_dir() {
        bail!("{}: output folder does not exist", dir.display());
    }
    Ok(())
}

/// Writes `bytes` to a temporary sibling, then renames it into place, so a reader never sees a partial file.
pub fn write_new(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    check_free(path, overwrite)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.stylize-tmp-{}", std::process::id()));
    std::fs::write(&temp, bytes).with_context(|| format!("{}: cannot write", path.display()))?;
    std::fs::rename(&temp, path).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        anyhow::anyhow!(
            "{}: cannot move the finished file into place ({e})",
            path.display()
        )
    })
}

/// The folder a file goes into (`.` for a bare name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `dir/clip.mp4` + `.preview.png` → `dir/clip.preview.png`.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "stylize".into());
    path.with_file_name(format!("{stem}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_overwrite_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        write_new(&path, b"one", false).unwrap();
        let err = write_new(&path, b"two", false).unwrap_err();
        assert!(format!("{err:#}").contains("already exists (add --overwrite"));
        write_new(&path, b"two", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(check_free(&dir.path().join("no/such/dir.png"), false).is_err());
        assert_eq!(
            sibling(Path::new("d/clip.mp4"), ".preview.png"),
            Path::new("d/clip.preview.png")
        );
    }
}
