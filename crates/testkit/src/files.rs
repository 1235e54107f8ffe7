//! Scratch folders and what is in them.

use std::path::{Path, PathBuf};

/// A fresh temporary folder, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

/// `name` inside `dir`.
pub fn p(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// The names in `dir`, sorted: proves what was written and that nothing was left behind.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A folder this process cannot write to, even as root (sysfs refuses new files).
pub fn unwritable_dir(scratch: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch.join("readonly");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(dir.join("probe"), b"").is_ok() {
        let _ = std::fs::remove_file(dir.join("probe"));
        return PathBuf::from("/sys/kernel");
    }
    dir
}
