//! The steadying filter: each styled frame keeps the previous output's strokes, carried along the
//! original video's motion, wherever that motion can be trusted.
//!
//! Why this shape (measured on real footage, see the README's "Steady video"): blending the styled
//! frame with the warped previous output averages two independent stroke textures and washes the
//! style out (detail energy falls to ~55%). Here the picture is split into a coarse band (colour,
//! light) and a fine band (strokes). The fine band is *carried* — almost all of it comes from the
//! warped previous output — so strokes move with the scene instead of re-forming; the coarse band
//! follows the new frame more closely, so light and colour changes are not held back. Resampling
//! along the flow blurs a little each frame; a small gain on the fine band, never above what the
//! new frame itself holds, gives that back, so a long shot neither smears nor darkens. Where the
//! flow fails (occlusions, things appearing, a scene cut) the new frame shows through.
use opencv::core::{Mat, Vec3f};
use opencv::imgproc;
use opencv::prelude::*;
use stylize_frame::RgbImage;

use crate::flow::{Flow, FlowEstimator};
use crate::planes;
use crate::Result;

/// The default `--steady`: 95% of the strokes carried where the flow holds.
pub const DEFAULT_STEADY: f32 = 0.95;

/// Coarse/fine split: a Gaussian of this sigma (pixels) is the coarse band.
const BAND_SIGMA: f64 = 1.5;
/// The coarse band is carried a little less than the strokes, so light changes come through.
const COARSE_SHARE: f32 = 0.85;
/// How much a luma difference (in [0,1]) between the frame and its warped predecessor lowers trust
/// in the flow: trust = exp(-(Δ/σ)²). Luma, not RGB, so a colour grade shift does not read as motion.
const TRUST_SIGMA: f32 = 0.2;
/// The flow stretch (pixels per pixel) at which trust falls to 1/e: see [`trust_map`].
const STRETCH_SCALE: f32 = 0.7;
/// A frame where fewer than half the pixels match their warped predecessor within 0.05 luma starts
/// afresh: a scene cut. (On real footage ordinary frames, fast pans included, match at 80% or more;
/// frames after a cut at 40% or less.)
const CUT_MATCH_DELTA: f32 = 0.05;
const CUT_MATCHED_SHARE: f32 = 0.5;
/// The fine band's gain aims at this share of the new frame's own fine energy, rising at most
/// `MAX_DETAIL_GAIN` per frame: enough to undo resampling blur, too little to sharpen noise up.
const DETAIL_TARGET: f32 = 0.87;
const MAX_DETAIL_GAIN: f32 = 1.1;

/// What happened to one frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SteadyFrame {
    /// The first frame, or the first after a scene cut: the styled frame as it came.
    Fresh,
    /// Strokes were carried; the share of pixels where the flow was trusted.
    Carried { trusted: f32 },
}

/// Steadies a stream of styled frames, given each frame's original. One per video, fed in order.
pub struct Steadier {
    level: f32,
    /// Made for the first frame's width (DIS keeps buffers for one size).
    flow: Option<(u32, FlowEstimator)>,
    previous: Option<Previous>,
}

struct Previous {
    flow_grey: Mat,
    luma: Mat,
    output: Mat,
}

impl Steadier {
    /// The steadier for `level` in [0, 1], the share of the strokes carried where the flow holds;
    /// `None` at 0, where every frame is styled on its own and nothing is left to do.
    pub fn at(level: f32) -> Option<Self> {
        (level > 0.0).then(|| Self::new(level))
    }

    /// `level` in (0, 1]: the share of the strokes carried where the flow holds.
    pub fn new(level: f32) -> Self {
        share_cores_with_the_network();
        Steadier {
            level: level.clamp(0.0, 1.0),
            flow: None,
            previous: None,
        }
    }

    /// The steadied version of `styled`, the network's output for `original`.
    pub fn process(
        &mut self,
        original: &RgbImage,
        styled: &RgbImage,
    ) -> Result<(RgbImage, SteadyFrame)> {
        planes::same_size(original, styled, "styled frame and original differ in size")?;
        if self.flow.as_ref().map(|(w, _)| *w) != Some(original.width) {
            let estimator = FlowEstimator::new(flow_width(original.width))?;
            self.flow = Some((original.width, estimator));
            self.previous = None; // a frame of another size has nothing to carry
        }
        let (_, estimator) = self.flow.as_mut().expect("made above");
        let original_u8 = planes::rgb_u8(original)?;
        let flow_grey = estimator.prepare(&original_u8)?;
        let luma = planes::luma_f32(&original_u8)?;
        let styled_f32 = planes::rgb_f32(styled)?;
        let carried = match self.previous.take() {
            Some(previous) => carry(
                estimator,
                &previous,
                &flow_grey,
                &luma,
                &styled_f32,
                self.level,
            )?,
            None => None,
        };
        let (output, frame, image) = match carried {
            Some((output, trusted)) => {
                let image = planes::to_rgb(&output)?;
                (output, SteadyFrame::Carried { trusted }, image)
            }
            None => (styled_f32, SteadyFrame::Fresh, styled.clone()),
        };
        self.previous = Some(Previous {
            flow_grey,
            luma,
            output,
        });
        Ok((image, frame))
    }
}

/// The carried output and the share of trusted pixels, or `None` at a scene cut.
fn carry(
    estimator: &mut FlowEstimator,
    previous: &Previous,
    grey: &Mat,
    luma: &Mat,
    styled: &Mat,
    level: f32,
) -> Result<Option<(Mat, f32)>> {
    let size = styled.size()?;
    let flow = estimator.between(grey, &previous.flow_grey, size)?;
    let warped_luma = flow.warp(&previous.luma, imgproc::INTER_LINEAR)?;
    if matched_share(&warped_luma, luma)? < CUT_MATCHED_SHARE {
        return Ok(None);
    }
    let trust = trust_map(&flow, &warped_luma, luma)?;
    let trusted = trust.iter().filter(|&&t| t > 0.5).count() as f32 / trust.len() as f32;
    let carried = flow.warp(&previous.output, imgproc::INTER_CUBIC)?;
    let output = combine(styled, &carried, &trust, level)?;
    Ok(Some((output, trusted)))
}

/// OpenCV's worker threads: one on machines of up to four cores, where the network and x264 already
/// keep every core busy (there, DIS spread over threads spent ~17 ms more CPU per 720×720 frame
/// waiting than it saved), half the cores beyond, where a fast GPU leaves the CPU to the steadier.
/// Set once per process; it is OpenCV's global setting.
fn share_cores_with_the_network() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as i32;
        let threads = if cores <= 4 { 1 } else { cores / 2 };
        let _ = opencv::core::set_num_threads(threads);
    });
}

/// The width the steadier computes flow at: 2/3 of the frame's, between 320 and 640 columns.
/// (At 720×720, 3/4 of the width tracked strokes no better on the benchmark clip and cost ~9 ms
/// more CPU per frame; below 1/2 the warping error grows by 10–20%.)
fn flow_width(width: u32) -> i32 {
    let width = width as i32;
    (width * 2 / 3).clamp(320, 640).min(width)
}

/// The share of pixels whose luma the warped predecessor matches within [`CUT_MATCH_DELTA`].
fn matched_share(warped_luma: &Mat, luma: &Mat) -> Result<f32> {
    let (warped, current) = (warped_luma.data_typed::<f32>()?, luma.data_typed::<f32>()?);
    let matched = warped
        .iter()
        .zip(current)
        .filter(|(w, c)| (*w - *c).abs() < CUT_MATCH_DELTA)
        .count();
    Ok(matched as f32 / current.len().max(1) as f32)
}

/// Per pixel, how far the flow can be trusted: the frame against its warped predecessor in luma,
/// and how little the flow stretches or shears there; nothing that came from outside the frame.
///
/// The stretch term matters over long shots: strokes carried through a non-rigid flow get drawn out
/// a little every frame and, many frames on, turn into long thin ripples the network never
/// paints. Where the flow's gradient is large (‖∇u‖² + ‖∇v‖² against [`STRETCH_SCALE`]²) the
/// new frame's strokes come through instead. (On real footage the ripples go, for a little more
/// warping error: the README's "Steady video" has the numbers.)
fn trust_map(flow: &Flow, warped_luma: &Mat, luma: &Mat) -> Result<Vec<f32>> {
    let warped = warped_luma.data_typed::<f32>()?;
    let current = luma.data_typed::<f32>()?;
    let stretch = flow.stretch()?;
    Ok(warped
        .iter()
        .zip(current)
        .zip(&flow.inside)
        .zip(&stretch)
        .map(|(((w, c), &inside), s)| {
            let d = (w - c) / TRUST_SIGMA;
            if inside {
                (-d * d - s / (STRETCH_SCALE * STRETCH_SCALE)).exp()
            } else {
                0.0
            }
        })
        .collect())
}

/// Coarse band mostly from the new frame, fine band mostly carried, then the fine band's energy
/// brought back towards the new frame's (see the module comment).
fn combine(styled: &Mat, carried: &Mat, trust: &[f32], level: f32) -> Result<Mat> {
    let styled_coarse = planes::blur(styled, BAND_SIGMA)?;
    let carried_coarse = planes::blur(carried, BAND_SIGMA)?;
    let mut output = styled.try_clone()?;
    let (s, c) = (
        styled.data_typed::<Vec3f>()?,
        carried.data_typed::<Vec3f>()?,
    );
    let (sc, cc) = (
        styled_coarse.data_typed::<Vec3f>()?,
        carried_coarse.data_typed::<Vec3f>()?,
    );
    // First pass: the coarse band into `output`, the fine band into `fine`, and both fine energies.
    let mut fine = vec![Vec3f::default(); trust.len()];
    let (mut styled_energy, mut fine_energy) = (0.0f64, 0.0f64);
    let out = output.data_typed_mut::<Vec3f>()?;
    for i in 0..trust.len() {
        let carry_fine = level * trust[i];
        let carry_coarse = COARSE_SHARE * carry_fine;
        for k in 0..3 {
            let carried_px = c[i][k].clamp(0.0, 1.0);
            let styled_fine = s[i][k] - sc[i][k];
            let carried_fine = carried_px - cc[i][k];
            out[i][k] = sc[i][k] + carry_coarse * (cc[i][k] - sc[i][k]);
            fine[i][k] = styled_fine + carry_fine * (carried_fine - styled_fine);
            styled_energy += styled_fine.abs() as f64;
            fine_energy += fine[i][k].abs() as f64;
        }
    }
    let gain = (DETAIL_TARGET as f64 * styled_energy / fine_energy.max(1e-6))
        .clamp(1.0, MAX_DETAIL_GAIN as f64) as f32;
    for (o, f) in out.iter_mut().zip(&fine) {
        for k in 0..3 {
            o[k] = (o[k] + gain * f[k]).clamp(0.0, 1.0);
        }
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_pattern as textured;

    #[test]
    fn flow_width_stays_between_bounds() {
        assert_eq!(flow_width(720), 480);
        assert_eq!(flow_width(1920), 640);
        assert_eq!(flow_width(400), 320);
        assert_eq!(flow_width(200), 200);
    }

    #[test]
    fn a_first_frame_and_a_cut_come_out_as_styled() {
        let mut steadier = Steadier::new(DEFAULT_STEADY);
        let original = textured(96, 64, 0);
        let styled = textured(96, 64, 7);
        let (out, kind) = steadier.process(&original, &styled).unwrap();
        assert_eq!((out, kind), (styled.clone(), SteadyFrame::Fresh));
        // A picture with nothing in common: every pixel's luma jumps.
        let other = RgbImage::solid(96, 64, [250, 250, 250]);
        let (out, kind) = steadier.process(&other, &styled).unwrap();
        assert_eq!(kind, SteadyFrame::Fresh);
        assert_eq!(out, styled);
    }

    #[test]
    fn a_still_shot_carries_the_previous_output() {
        let mut steadier = Steadier::new(1.0);
        let original = textured(96, 64, 0);
        let first = textured(96, 64, 3);
        steadier.process(&original, &first).unwrap();
        // The network re-forms its strokes: same original, a different styled frame.
        let (out, kind) = steadier.process(&original, &textured(96, 64, 11)).unwrap();
        assert!(
            matches!(kind, SteadyFrame::Carried { trusted } if trusted > 0.9),
            "{kind:?}"
        );
        let diff = |a: &RgbImage, b: &RgbImage| stylize_testkit::mean_abs_diff(&a.data, &b.data);
        let to_first = diff(&out, &first);
        let to_new = diff(&out, &textured(96, 64, 11));
        assert!(
            to_first * 3.0 < to_new,
            "carried {to_first:.2} vs new {to_new:.2}"
        );
    }
}
