//! Temporal measures of a styled video against its original: warping error (Lai et al. 2018),
//! flicker and detail energy, fed one frame pair at a time.
use opencv::core::{self, Mat, Vec2f, Vec3f};
use opencv::imgproc;
use opencv::prelude::*;
use stylize_frame::RgbImage;

use crate::flow::{Flow, FlowEstimator};
use crate::planes;
use crate::Result;

/// The warping error is computed at this width (the convention the published numbers use).
const MEASURE_WIDTH: i32 = 512;
/// A pair where fewer than this share of pixels is valid (neither occluded nor on a motion
/// boundary) spans a scene cut: no flow relates its frames, so it is left out and counted.
const CUT_VALID_SHARE: f64 = 0.25;

/// Both videos' scores.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TemporalScores {
    pub frames: u64,
    /// Frame pairs measured, and those left out as scene cuts.
    pub pairs: u64,
    pub cut_pairs: u64,
    /// Mean masked squared difference between frame t and frame t+1 warped back (RGB in [0,1]).
    pub warp_error_original: f64,
    pub warp_error_styled: f64,
    /// Mean |Y_t − Y_t−1| on 0–255 luma.
    pub flicker_original: f64,
    pub flicker_styled: f64,
    /// Mean Sobel gradient magnitude of 0–255 luma.
    pub detail_original: f64,
    pub detail_styled: f64,
    /// The styled video's warping error of each pair (frame t, t+1) in order; `None` for a pair
    /// left out as a scene cut. Where a seam or a jolt shows, one pair stands out.
    pub pair_errors: Vec<Option<f64>>,
}

impl TemporalScores {
    /// How many times the original's warping error the styled video's is.
    pub fn warp_ratio(&self) -> f64 {
        self.warp_error_styled / self.warp_error_original.max(1e-12)
    }
}

/// Accumulates the scores over (original, styled) frame pairs given in order.
pub struct TemporalMeasure {
    flow: FlowEstimator,
    previous: Option<Measured>,
    sums: TemporalScores,
}

/// What one frame pair leaves for the next.
struct Measured {
    grey: Mat,
    original: Mat,
    styled: Mat,
    luma_original: Mat,
    luma_styled: Mat,
}

impl Default for TemporalMeasure {
    fn default() -> Self {
        Self::new().expect("DIS optical flow is part of OpenCV's video module")
    }
}

impl TemporalMeasure {
    /// DIS `medium` at 512 columns, as the published warping errors were computed.
    pub fn new() -> Result<Self> {
        Ok(TemporalMeasure {
            flow: FlowEstimator::new(MEASURE_WIDTH)?,
            previous: None,
            sums: TemporalScores::default(),
        })
    }

    /// Adds the next frame of both videos.
    pub fn push(&mut self, original: &RgbImage, styled: &RgbImage) -> Result<()> {
        planes::same_size(original, styled, "the videos' frames differ in size")?;
        let original_u8 = planes::rgb_u8(original)?;
        let styled_u8 = planes::rgb_u8(styled)?;
        let luma_original = planes::grey(&original_u8)?;
        let luma_styled = planes::grey(&styled_u8)?;
        self.sums.detail_original += sobel_magnitude(&luma_original)?;
        self.sums.detail_styled += sobel_magnitude(&luma_styled)?;
        let small_original = planes::shrink_to_width(&original_u8, MEASURE_WIDTH)?;
        let current = Measured {
            grey: self.flow.prepare(&small_original)?,
            original: planes::unit_rgb(&small_original)?,
            styled: planes::unit_rgb(&planes::shrink_to_width(&styled_u8, MEASURE_WIDTH)?)?,
            luma_original,
            luma_styled,
        };
        if let Some(previous) = self.previous.take() {
            self.sums.flicker_original +=
                mean_abs_diff(&previous.luma_original, &current.luma_original)?;
            self.sums.flicker_styled += mean_abs_diff(&previous.luma_styled, &current.luma_styled)?;
            self.pair(&previous, &current)?;
        }
        self.sums.frames += 1;
        self.previous = Some(current);
        Ok(())
    }

    /// The means so far.
    pub fn scores(&self) -> TemporalScores {
        let s = &self.sums;
        let per = |sum: f64, n: u64| if n == 0 { 0.0 } else { sum / n as f64 };
        let transitions = s.frames.saturating_sub(1);
        TemporalScores {
            frames: s.frames,
            pairs: s.pairs,
            cut_pairs: s.cut_pairs,
            warp_error_original: per(s.warp_error_original, s.pairs),
            warp_error_styled: per(s.warp_error_styled, s.pairs),
            flicker_original: per(s.flicker_original, transitions),
            flicker_styled: per(s.flicker_styled, transitions),
            detail_original: per(s.detail_original, s.frames),
            detail_styled: per(s.detail_styled, s.frames),
            pair_errors: s.pair_errors.clone(),
        }
    }

    /// One pair's warping errors: flow both ways on the original, occlusions and motion boundaries
    /// masked out, frame t+1 pulled back onto frame t.
    fn pair(&mut self, previous: &Measured, current: &Measured) -> Result<()> {
        let forward = self.flow.raw(&previous.grey, &current.grey)?;
        let backward = self.flow.raw(&current.grey, &previous.grey)?;
        let size = forward.size()?;
        let pull = Flow::from_raw(&forward, size)?;
        let valid = valid_mask(
            &forward,
            &pull.warp(&backward, imgproc::INTER_LINEAR)?,
            &pull,
        )?;
        let share = valid.iter().filter(|&&v| v).count() as f64 / valid.len() as f64;
        if share < CUT_VALID_SHARE {
            self.sums.cut_pairs += 1;
            self.sums.pair_errors.push(None);
            return Ok(());
        }
        self.sums.pairs += 1;
        self.sums.warp_error_original += masked_error(
            &previous.original,
            &pull.warp(&current.original, imgproc::INTER_LINEAR)?,
            &valid,
        )?;
        let styled = masked_error(
            &previous.styled,
            &pull.warp(&current.styled, imgproc::INTER_LINEAR)?,
            &valid,
        )?;
        self.sums.warp_error_styled += styled;
        self.sums.pair_errors.push(Some(styled));
        Ok(())
    }
}

/// Lai et al.'s mask: not occluded (forward and warped backward flow cancel out) and not on a
/// motion boundary (the flow's gradient is small against the flow); the source inside the frame.
fn valid_mask(forward: &Mat, backward_pulled: &Mat, pull: &Flow) -> Result<Vec<bool>> {
    let f = forward.data_typed::<Vec2f>()?;
    let b = backward_pulled.data_typed::<Vec2f>()?;
    let stretch = pull.stretch()?;
    Ok((0..f.len())
        .map(|i| {
            let (fi, bi) = (f[i], b[i]);
            let sum = (fi[0] + bi[0]).powi(2) + (fi[1] + bi[1]).powi(2);
            let f2 = fi[0] * fi[0] + fi[1] * fi[1];
            let b2 = bi[0] * bi[0] + bi[1] * bi[1];
            let occluded = sum > 0.01 * (f2 + b2) + 0.5;
            let boundary = stretch[i] > 0.01 * f2 + 0.002;
            !occluded && !boundary && pull.inside[i]
        })
        .collect())
}

/// Mean over valid pixels of the squared RGB difference (averaged over the channels).
fn masked_error(a: &Mat, b: &Mat, valid: &[bool]) -> Result<f64> {
    let (a, b) = (a.data_typed::<Vec3f>()?, b.data_typed::<Vec3f>()?);
    let (mut sum, mut n) = (0.0f64, 0u64);
    for ((pa, pb), &ok) in a.iter().zip(b).zip(valid) {
        if ok {
            sum += (0..3)
                .map(|k| ((pa[k] - pb[k]) as f64).powi(2))
                .sum::<f64>()
                / 3.0;
            n += 1;
        }
    }
    Ok(if n == 0 { 0.0 } else { sum / n as f64 })
}

fn mean_abs_diff(a: &Mat, b: &Mat) -> Result<f64> {
    let (a, b) = (a.data_bytes()?, b.data_bytes()?);
    let sum: u64 = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y) as u64).sum();
    Ok(sum as f64 / a.len().max(1) as f64)
}

/// Mean gradient magnitude of an 8-bit grey picture (3×3 Sobel).
fn sobel_magnitude(grey: &Mat) -> Result<f64> {
    let (mut gx, mut gy) = (Mat::default(), Mat::default());
    imgproc::sobel(
        grey,
        &mut gx,
        core::CV_32F,
        1,
        0,
        3,
        1.0,
        0.0,
        core::BORDER_REFLECT_101,
    )?;
    imgproc::sobel(
        grey,
        &mut gy,
        core::CV_32F,
        0,
        1,
        3,
        1.0,
        0.0,
        core::BORDER_REFLECT_101,
    )?;
    let (gx, gy) = (gx.data_typed::<f32>()?, gy.data_typed::<f32>()?);
    let sum: f64 = gx
        .iter()
        .zip(gy)
        .map(|(a, b)| ((a * a + b * b) as f64).sqrt())
        .sum();
    Ok(sum / gx.len().max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_pattern as scene;

    #[test]
    fn a_video_against_itself_scores_a_ratio_of_one() {
        let mut m = TemporalMeasure::new().unwrap();
        for t in 0..6 {
            let frame = scene(160, 96, t * 2);
            m.push(&frame, &frame).unwrap();
        }
        let s = m.scores();
        assert_eq!((s.frames, s.pairs + s.cut_pairs), (6, 5));
        assert!(s.pairs >= 4, "{s:?}");
        assert_eq!(s.warp_error_original, s.warp_error_styled);
        assert!((s.warp_ratio() - 1.0).abs() < 1e-9);
        assert_eq!(s.detail_original, s.detail_styled);
        assert!(
            s.flicker_original > 1.0,
            "a moving picture flickers in the plain sense: {s:?}"
        );
    }

    #[test]
    fn flicker_on_a_still_original_raises_the_styled_error() {
        let mut m = TemporalMeasure::new().unwrap();
        for t in 0..5 {
            let original = scene(160, 96, 0);
            // The "styled" video changes on its own while the original stands still.
            let styled = scene(160, 96, (t % 2) * 5);
            m.push(&original, &styled).unwrap();
        }
        let s = m.scores();
        assert!(s.warp_error_original < 1e-5, "{s:?}");
        assert!(
            s.warp_error_styled > 100.0 * s.warp_error_original.max(1e-6),
            "{s:?}"
        );
        assert_eq!(s.flicker_original, 0.0);
        assert!(s.flicker_styled > 5.0);
    }

    #[test]
    fn sizes_must_match() {
        let mut m = TemporalMeasure::new().unwrap();
        let err = m.push(&scene(32, 32, 0), &scene(32, 30, 0)).unwrap_err();
        assert!(err.to_string().contains("differ in size"), "{err}");
    }
}
