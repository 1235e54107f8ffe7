//! Showing a style before and after the long run: the demo, previews, preset sheets and side-by-side videos.
//!
//! Everything here composes the local pipeline and the engine; the only new
//! pixels are sheets (a grid of tiles drawn with a built-in font) and the
//! bundled sample clip, painted by [`sample`] and encoded by the ffmpeg command.
pub mod canvas;
pub mod compare;
pub mod demo;
pub mod fetch;
pub mod files;
pub mod font;
pub mod frames;
pub mod presets;
pub mod preview;
pub mod sample;
pub mod sheet;

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
