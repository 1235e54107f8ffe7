//! Side-by-side videos (original | styled): where they go and how each wide frame is put together.
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use stylize_media::{DecodedFrame, EncodeOptions, RgbImage, VideoInfo, VideoWriter};

use crate::output::OutputPlan;
use crate::sheet::canvas::quarter_turns;

/// `clip.styled.mp4` → `clip.styled.compare.mp4`: beside the styled output, named after it, and
/// (for default names) still marked `.styled.` so a folder re-run does not take it as an input.
pub fn compare_path(styled: &Path) -> PathBuf {
    crate::files::sibling(styled, &format!(".compare.{}", extension(styled)))
}

/// The output plan of the side-by-side video for a styled output, checked like any output
/// (existing file, the input itself, writable folder).
pub fn plan_for(input: &Path, styled: &OutputPlan, claimed: &[PathBuf]) -> Result<OutputPlan> {
    OutputPlan::new(
        styled.codec,
        input,
        Some(&compare_path(&styled.final_path)),
        None,
        styled.overwrite,
        claimed,
    )
}

/// The encoder's view of the side-by-side video: the input, twice as wide *as displayed*. The
/// writer copies the input's display matrix, so under a quarter-turn rotation the two pictures are
/// stacked in coded space (twice as tall) and a player turning it shows them side by side.
/// Everything else (rate, timestamps, rotation, colour, the audio to copy) stays the input's.
pub fn wide_info(info: &VideoInfo) -> VideoInfo {
    let (width, height) = wide_size(info.width, info.height, info.rotation_degrees);
    VideoInfo {
        width,
        height,
        ..info.clone()
    }
}

/// The coded size of the side-by-side frame for `width` × `height` frames under `degrees` of rotation.
fn wide_size(width: u32, height: u32, degrees: i32) -> (u32, u32) {
    match Placement::for_rotation(degrees) {
        Placement::Left | Placement::Right => (width * 2, height),
        Placement::Top | Placement::Bottom => (width, height * 2),
    }
}

/// Where the original goes in the coded wide frame so that it is on the left once a player applies
/// the rotation (the styled frame takes the other half).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placement {
    Left,
    Right,
    Top,
    Bottom,
}

impl Placement {
    /// The coded edge that ends up on the displayed left: turning a picture counter-clockwise by a
    /// quarter brings its top to the left, by a half its right, by three quarters its bottom.
    fn for_rotation(degrees: i32) -> Self {
        match quarter_turns(degrees) {
            0 => Placement::Left,
            1 => Placement::Top,
            2 => Placement::Right,
            _ => Placement::Bottom,
        }
    }
}

/// Builds wide frames in one reused buffer: the original on the (displayed) left, the styled frame
/// on the right.
pub struct SideBySide {
    placement: Placement,
    frame: DecodedFrame,
}

impl SideBySide {
    /// For frames of `info` (its rotation decides how the halves are laid out in coded space).
    pub fn for_video(info: &VideoInfo) -> Self {
        Self::for_rotation(info.rotation_degrees)
    }

    fn for_rotation(degrees: i32) -> Self {
        SideBySide {
            placement: Placement::for_rotation(degrees),
            frame: DecodedFrame {
                index: 0,
                pts: None,
                image: RgbImage::new(0, 0, Vec::new()),
            },
        }
    }

    /// The wide frame for `styled` (which keeps its index and timestamp) and its `original`.
    pub fn compose(&mut self, original: &RgbImage, styled: &DecodedFrame) -> &DecodedFrame {
        let (w, h) = (original.width as usize, original.height as usize);
        debug_assert_eq!(
            (styled.image.width, styled.image.height),
            (original.width, original.height)
        );
        let image = &mut self.frame.image;
        let (first, second) = match self.placement {
            Placement::Left | Placement::Top => (&original.data, &styled.image.data),
            Placement::Right | Placement::Bottom => (&styled.image.data, &original.data),
        };
        match self.placement {
            Placement::Left | Placement::Right => {
                image.width = original.width * 2;
                image.height = original.height;
                image.data.resize(w * 2 * h * 3, 0);
                for (y, row) in image.data.chunks_exact_mut(w * 6).enumerate() {
                    let src = y * w * 3..(y + 1) * w * 3;
                    row[..w * 3].copy_from_slice(&first[src.clone()]);
                    row[w * 3..].copy_from_slice(&second[src]);
                }
            }
            Placement::Top | Placement::Bottom => {
                // Packed rows without padding: stacking is one picture's bytes after the other's.
                image.width = original.width;
                image.height = original.height * 2;
                image.data.clear();
                image.data.extend_from_slice(first);
                image.data.extend_from_slice(second);
            }
        }
        self.frame.index = styled.index;
        self.frame.pts = styled.pts;
        &self.frame
    }
}

/// The side-by-side video being written: an encoder for the wide frames and the buffer they are
/// composed in. Used by local runs and by the cloud restitcher alike.
pub struct SideBySideWriter {
    writer: VideoWriter,
    composer: SideBySide,
}

impl SideBySideWriter {
    /// Writes to `temp` (committed to `final_path` by the caller's plan) for frames of `info`.
    pub fn create(
        temp: &Path,
        final_path: &Path,
        info: &VideoInfo,
        encode: &EncodeOptions,
    ) -> Result<Self> {
        Ok(SideBySideWriter {
            writer: VideoWriter::create(temp, final_path, &wide_info(info), encode)?,
            composer: SideBySide::for_video(info),
        })
    }

    pub fn write(&mut self, original: &RgbImage, styled: &DecodedFrame) -> Result<()> {
        self.writer.write(self.composer.compose(original, styled))?;
        Ok(())
    }

    /// Finishes the file, checking it holds as many frames as the styled video.
    pub fn finish(self, styled_frames: u64) -> Result<()> {
        let frames = self.writer.finish()?.frames;
        if frames != styled_frames {
            bail!("side-by-side video: encoded {frames} frames but the styled video has {styled_frames}");
        }
        Ok(())
    }
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "mp4".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sheet::canvas::rotate_ccw;

    #[test]
    fn compare_names_follow_the_output() {
        assert_eq!(
            compare_path(Path::new("d/clip.styled.mp4")),
            Path::new("d/clip.styled.compare.mp4")
        );
        assert_eq!(
            compare_path(Path::new("out.mkv")),
            Path::new("out.compare.mkv")
        );
    }

    /// The wide frame for a 3×2 original of one colour and a styled frame of another.
    fn wide(rotation: i32) -> (u32, u32, Vec<u8>) {
        let original = RgbImage::solid(3, 2, [10, 20, 30]);
        let styled = DecodedFrame {
            index: 7,
            pts: Some(70),
            image: RgbImage::solid(3, 2, [200, 100, 0]),
        };
        let mut sbs = SideBySide::for_rotation(rotation);
        let wide = sbs.compose(&original, &styled);
        assert_eq!((wide.index, wide.pts), (7, Some(70)));
        assert_eq!(
            wide_size(3, 2, rotation),
            (wide.image.width, wide.image.height),
            "encoder size"
        );
        (wide.image.width, wide.image.height, wide.image.data.clone())
    }

    #[test]
    fn composes_original_left_styled_right() {
        let (w, h, data) = wide(0);
        assert_eq!((w, h), (6, 2));
        let row: Vec<u8> = data[..18].to_vec();
        assert_eq!(&row[..9], &[10, 20, 30, 10, 20, 30, 10, 20, 30]);
        assert_eq!(&row[9..], &[200, 100, 0, 200, 100, 0, 200, 100, 0]);
    }

    #[test]
    fn rotated_videos_show_the_original_on_the_left_once_turned() {
        for rotation in [0, 90, 180, -90, 270] {
            let (w, h, data) = wide(rotation);
            assert_eq!(
                (w, h),
                if rotation % 180 == 0 { (6, 2) } else { (3, 4) },
                "{rotation}°"
            );
            // What a player shows: the coded frame turned by the rotation.
            let shown = rotate_ccw(RgbImage::new(w, h, data), quarter_turns(rotation));
            let (sw, sh) = (shown.width as usize, shown.height as usize);
            assert!(sw > sh, "{rotation}°: displayed {sw}×{sh} is not wide");
            for y in 0..sh {
                let px = |x: usize| &shown.data[(y * sw + x) * 3..(y * sw + x) * 3 + 3];
                assert_eq!(px(0), &[10, 20, 30], "{rotation}°: left is the original");
                assert_eq!(
                    px(sw - 1),
                    &[200, 100, 0],
                    "{rotation}°: right is the styled frame"
                );
            }
        }
    }
}
