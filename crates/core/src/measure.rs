//! `stylize measure`: how steady and how detailed a styled video is, scored against its original.
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use stylize_media::{FrameReader, VideoInfo};
use stylize_motion::{TemporalMeasure, TemporalScores};

use crate::cancel::cancelled;
use crate::pipeline::FrameProgress;

/// Reads both videos in step and scores every frame pair. The videos must have the same frame
/// size and count (a styled video from stylize always has).
pub fn temporal(
    original: &Path,
    styled: &Path,
    progress: &dyn FrameProgress,
) -> Result<TemporalScores> {
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
        let a = originals
            .next()
            .transpose()
            .with_context(|| original.path.display().to_string())?;
        let b = styleds
            .next()
            .transpose()
            .with_context(|| styled.path.display().to_string())?;
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

/// How close a styled video is to its style picture, and how far from its original, in VGG19
/// features, averaged over frames spread through the video.
#[derive(Clone, Debug, PartialEq)]
pub struct StyleScores {
    pub frames: usize,
    /// Relative Gram distance to the style picture (relu1_1 … relu5_1), of the styled frames and,
    /// for scale, of the original frames.
    pub style_distance_styled: f64,
    pub style_distance_original: f64,
    /// Relative squared relu4_2 distance of the styled frames to the original frames.
    pub content_distance: f64,
}

/// Long side at which frames and the style picture are compared: the scale the presets paint at.
const VGG_SIDE: u32 = 512;

/// Style and content distances over `samples` frames spread through the videos.
pub fn style(
    original: &Path,
    styled: &Path,
    style_picture: &Path,
    vgg19: &Path,
    samples: usize,
) -> Result<StyleScores> {
    let vgg = stylize_model::vgg::Vgg19::load(vgg19)?;
    let picture = crate::style::load_picture(style_picture)?;
    let style = vgg.features(&fit(&picture, VGG_SIDE))?;
    let original_info = stylize_media::probe(original)?;
    let styled_info = stylize_media::probe(styled)?;
    let count = original_info
        .frame_count
        .unwrap_or(1)
        .min(styled_info.frame_count.unwrap_or(u64::MAX));
    let picks = crate::frames::spread(count, samples);
    let originals = crate::frames::grab(&original_info, &picks)?;
    let styleds = crate::frames::grab(&styled_info, &picks)?;
    let (mut styled_sum, mut original_sum, mut content_sum) = (0.0, 0.0, 0.0);
    let n = originals.len().min(styleds.len());
    for ((_, o), (_, s)) in originals.iter().zip(&styleds) {
        if cancelled() {
            bail!("interrupted");
        }
        let (fo, fs) = (
            vgg.features(&fit(o, VGG_SIDE))?,
            vgg.features(&fit(s, VGG_SIDE))?,
        );
        styled_sum += stylize_model::vgg::style_distance(&fs, &style);
        original_sum += stylize_model::vgg::style_distance(&fo, &style);
        content_sum += stylize_model::vgg::content_distance(&fs, &fo);
    }
    let per = |sum: f64| sum / n.max(1) as f64;
    Ok(StyleScores {
        frames: n,
        style_distance_styled: per(styled_sum),
        style_distance_original: per(original_sum),
        content_distance: per(content_sum),
    })
}

/// `image` shrunk so its long side is at most `side` (aspect kept); smaller pictures as they are.
/// A triangle filter, not the sheets' Lanczos: the distances in the README were measured so.
fn fit(image: &stylize_media::RgbImage, side: u32) -> stylize_media::RgbImage {
    use crate::sheet::canvas::{from_buffer, to_buffer};
    let long = image.width.max(image.height);
    if long <= side {
        return image.clone();
    }
    let (w, h) = (
        (image.width * side / long).max(1),
        (image.height * side / long).max(1),
    );
    let small = image::imageops::resize(
        &to_buffer(image.clone()),
        w,
        h,
        image::imageops::FilterType::Triangle,
    );
    from_buffer(small)
}
