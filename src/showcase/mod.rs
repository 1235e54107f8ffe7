//! Showing a style before and after the long run: the demo, previews and preset sheets.
//!
//! Everything here composes the core's pipeline, sheets and side-by-side
//! writer; the only new pixels are the bundled sample clip, painted by
//! [`sample`] and encoded by the ffmpeg command.
pub mod demo;
pub mod fetch;
pub mod presets;
pub mod preview;
pub mod sample;

use std::path::PathBuf;

/// Where downloads and generated clips are kept between runs: `$STYLIZE_CACHE`, else `~/.cache/stylize`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STYLIZE_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("stylize")
}
