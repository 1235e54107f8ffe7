//! Writing picture files (sheets, previews, thumbnails): never over an existing file without --overwrite, never half-written.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub use crate::output::parent_of;
use crate::output::{move_into_place, work_name, TempGuard, WorkKind};

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

/// Writes `bytes` to a temporary sibling, then moves it into place with the same no-clobber rule
/// as the videos, so a reader never sees a partial file and nothing appearing meanwhile is replaced.
pub fn write_new(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    check_free(path, overwrite)?;
    let temp = TempGuard::new(work_name(path, WorkKind::Temp, None));
    std::fs::write(temp.path(), bytes)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    move_into_place(temp.path(), path, overwrite)
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
