//! Side-by-side videos (original | styled): where they go and how each wide frame is put together.
use std::path::{Path, PathBuf};

use anyhow::Result;
use stylize_media::{DecodedFrame, RgbFrame, VideoInfo};

use crate::output::OutputPlan;

/// `clip.styled.mp4` → `clip.styled.compare.mp4`: beside the styled output, named after it, and
/// (for default names) still marked `.styled.` so a folder re-run does not take it as an input.
pub fn compare_path(styled: &Path) -> PathBuf {
    super::files::sibling(styled, &format!(".compare.{}", extension(styled)))
}

/// The output plan of the side-by-side video for a styled output, checked like any output
/// (existing file, the input itself, writable folder).
pub fn plan_for(input: &Path, styled: &OutputPlan, claimed: &[PathBuf]) -> Result<OutputPlan> {
    OutputPlan::new(input, Some(&compare_path(&styled.final_path)), None, styled.overwrite, claimed)
}

/// The encoder's view of the side-by-side video: the input, twice as wide. Everything else (rate,
/// timestamps, rotation, colour, the audio to copy) stays the input's.
pub fn wide_info(info: &VideoInfo) -> VideoInfo {
    VideoInfo { width: info.width * 2, ..info.clone() }
}

/// Builds wide frames in one reused buffer: the original on the left, the styled frame on the right.
pub struct SideBySide {
    frame: DecodedFrame,
}

impl Default for SideBySide {
    fn default() -> Self {
        SideBySide { frame: DecodedFrame { index: 0, pts: None, image: RgbFrame { width: 0, height: 0, data: Vec::new() } } }
    }
}

impl SideBySide {
    /// The wide frame for `styled` (which keeps its index and timestamp) and its `original`.
    pub fn compose(&mut self, original: &RgbFrame, styled: &DecodedFrame) -> &DecodedFrame {
        let (w, h) = (original.width as usize, original.height as usize);
        debug_assert_eq!((styled.image.width, styled.image.height), (original.width, original.height));
        let image = &mut self.frame.image;
        image.width = original.width * 2;
        image.height = original.height;
        image.data.resize(w * 2 * h * 3, 0);
        for (y, row) in image.data.chunks_exact_mut(w * 6).enumerate() {
            let src = y * w * 3..(y + 1) * w * 3;
            row[..w * 3].copy_from_slice(&original.data[src.clone()]);
            row[w * 3..].copy_from_slice(&styled.image.data[src]);
        }
        self.frame.index = styled.index;
        self.frame.pts = styled.pts;
        &self.frame
    }
}

fn extension(path: &Path) -> String {
    path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_else(|| "mp4".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_names_follow_the_output() {
        assert_eq!(compare_path(Path::new("d/clip.styled.mp4")), Path::new("d/clip.styled.compare.mp4"));
        assert_eq!(compare_path(Path::new("out.mkv")), Path::new("out.compare.mkv"));
    }

    #[test]
    fn composes_original_left_styled_right() {
        let original = RgbFrame::solid(3, 2, [10, 20, 30]);
        let styled = DecodedFrame { index: 7, pts: Some(70), image: RgbFrame::solid(3, 2, [200, 100, 0]) };
        let mut sbs = SideBySide::default();
        let wide = sbs.compose(&original, &styled);
        assert_eq!((wide.image.width, wide.image.height, wide.index, wide.pts), (6, 2, 7, Some(70)));
        let row: Vec<u8> = wide.image.data[..18].to_vec();
        assert_eq!(&row[..9], &[10, 20, 30, 10, 20, 30, 10, 20, 30]);
        assert_eq!(&row[9..], &[200, 100, 0, 200, 100, 0, 200, 100, 0]);
    }
}
