//! `stylize measure`: how steady and how detailed a styled video is, scored against its original.
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use stylize_media::{FrameReader, VideoInfo};
use stylize_motion::{TemporalMeasure, TemporalScores};

use crate::cancel::cancelled;
use crate::pipeline::FrameProgress;

/// Reads both videos in step and scores every frame pair. The videos must have the same frame
/// size and count (a styled video from stylize always has).
pub fn temporal(original: &Path, styled: &Path, progress: &dyn FrameProgress) -> Result<TemporalScores> {
    let original_info = stylize_media::probe(original)?;
    let styled_info = stylize_media::probe(styled)?;
    if (original_info.width, original_info.height) != (styled_info.width, styled_info.height) {
        bail!(
            "{}: {}x{} frames, but {} has {}x{}: measure a styled video against its own original",
            styled.display(),
            styled_info.width,
            styled_info.height,
            original.display(),
            original_info.width,
            original_info.height
        );
    }
    progress.start(&original_info);
    let scores = score_frames(&original_info, &styled_info, progress);
    progress.finish();
    let (scores, original_frames, styled_frames) = scores?;
    if cancelled() {
        bail!("interrupted");
    }
    if original_frames != styled_frames {
        bail!(
            "{}: {styled_frames} frames, but {} has {original_frames}: measure a styled video against its own original",
            styled.display(),
            original.display()
        );
    }
    Ok(scores)
}

/// The scores, and how many frames each video had.
fn score_frames(
    original: &VideoInfo,
    styled: &VideoInfo,
    progress: &dyn FrameProgress,
) -> Result<(TemporalScores, u64, u64)> {
    let mut originals = FrameReader::open(original)?;
    let mut styleds = FrameReader::open(styled)?;
    let mut measure = TemporalMeasure::new()?;
    let (mut original_frames, mut styled_frames) = (0u64, 0u64);
    loop {
        if cancelled() {
            break;
        }
        let a = originals.next().transpose().with_context(|| original.path.display().to_string())?;
        let b = styleds.next().transpose().with_context(|| styled.path.display().to_string())?;
        original_frames += a.is_some() as u64;
        styled_frames += b.is_some() as u64;
        match (a, b) {
            (Some(a), Some(b)) => {
                measure
                    .push(&a.image, &b.image)
                    .map_err(|e| anyhow!("frame {}: {e}", a.index))?;
                progress.frame_done();
            }
            (None, None) => break,
            // Count the rest of the longer one, for the error.
            (Some(_), None) => original_frames += originals.by_ref().count() as u64,
            (None, Some(_)) => styled_frames += styleds.by_ref().count() as u64,
        }
    }
    Ok((measure.scores(), original_frames, styled_frames))
}
