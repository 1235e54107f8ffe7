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
use std::ops::Range;

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
///
/// The work is in two parts. Preparing a frame ([`MotionAnalyser::prepare`]: its motion from the
/// originals, the styled frame's own bands) needs nothing earlier, so it can run ahead on other
/// threads ([`crate::SteadyStream`]). Carrying the previous output along the motion
/// ([`Steadier::apply`]) must go in order; it splits each frame into bands of rows, one per thread.
pub struct Steadier {
    level: f32,
    /// Bands of rows carried side by side in [`Steadier::apply`].
    bands: usize,
    analyser: MotionAnalyser,
    /// The last original, for this steadier's own preparing in [`Steadier::process`].
    previous_original: Option<RgbImage>,
    /// The last output, as float RGB: what the next frame carries.
    previous_output: Option<Mat>,
}

/// What the originals alone say about one frame: how to carry the previous output onto it and
/// where to trust that, or that it starts afresh (the first frame, a scene cut, a new size).
enum Motion {
    Fresh,
    Carry {
        flow: Flow,
        /// Per pixel, in [0, 1]: how far the flow can be trusted there.
        trust: Vec<f32>,
        /// The share of pixels trusted more than half.
        trusted: f32,
    },
}

/// A frame ready to be carried: its motion, and the styled frame as float RGB with its coarse band.
pub struct Prepared {
    motion: Motion,
    styled: RgbImage,
    styled_f32: Mat,
    styled_coarse: Mat,
}

/// A picture carried along the motion: packed RGB in [0, 1], and per pixel how far the motion
/// there is trusted, in [0, 1].
pub struct Carried {
    pub picture: Vec<f32>,
    pub trust: Vec<f32>,
}

/// Prepares frames: works out each one's motion from its original and the one before. Keeps DIS's
/// buffers, made for the first frame's width.
#[derive(Default)]
pub struct MotionAnalyser {
    flow: Option<(u32, FlowEstimator)>,
}

impl MotionAnalyser {
    /// `styled` (the network's output for `original`) made ready for [`Steadier::apply`], with
    /// the motion from `previous` (the original before, if any) to `original`.
    pub fn prepare(
        &mut self,
        previous: Option<&RgbImage>,
        original: &RgbImage,
        styled: RgbImage,
    ) -> Result<Prepared> {
        planes::same_size(
            original,
            &styled,
            "styled frame and original differ in size",
        )?;
        let styled_f32 = planes::rgb_f32(&styled)?;
        let styled_coarse = planes::blur(&styled_f32, BAND_SIGMA)?;
        Ok(Prepared {
            motion: self.motion(previous, original)?,
            styled,
            styled_f32,
            styled_coarse,
        })
    }

    /// `result` (a picture made for `previous`, the original before `original`) carried along the
    /// motion onto `original`, with how far to trust it per pixel; `None` at a scene cut or a new
    /// size, where nothing carries over.
    pub fn carry(
        &mut self,
        previous: &RgbImage,
        original: &RgbImage,
        result: &RgbImage,
    ) -> Result<Option<Carried>> {
        planes::same_size(previous, result, "result and its original differ in size")?;
        match self.motion(Some(previous), original)? {
            Motion::Fresh => Ok(None),
            Motion::Carry { flow, trust, .. } => {
                let carried = flow.warp(&planes::rgb_f32(result)?, imgproc::INTER_CUBIC)?;
                let picture = carried.data_typed::<Vec3f>()?.iter().flat_map(|p| p.0);
                Ok(Some(Carried {
                    picture: picture.map(|v| v.clamp(0.0, 1.0)).collect(),
                    trust,
                }))
            }
        }
    }

    fn motion(&mut self, previous: Option<&RgbImage>, original: &RgbImage) -> Result<Motion> {
        let same_size = |p: &&RgbImage| (p.width, p.height) == (original.width, original.height);
        let Some(previous) = previous.filter(same_size) else {
            return Ok(Motion::Fresh); // nothing before, or a frame of another size: nothing to carry
        };
        if self.flow.as_ref().map(|(w, _)| *w) != Some(original.width) {
            let estimator = FlowEstimator::new(flow_width(original.width))?;
            self.flow = Some((original.width, estimator));
        }
        let (_, estimator) = self.flow.as_mut().expect("made above");
        // The previous original's grey and luma are made again here (~1.5 ms at 720×720) rather
        // than handed on: frames are prepared on different threads, out of order.
        let (previous_u8, original_u8) = (planes::rgb_u8(previous)?, planes::rgb_u8(original)?);
        let (grey, previous_grey) = (
            estimator.prepare(&original_u8)?,
            estimator.prepare(&previous_u8)?,
        );
        let flow = estimator.between(&grey, &previous_grey, original_u8.size()?)?;
        let luma = planes::luma_f32(&original_u8)?;
        let warped_luma = flow.warp(&planes::luma_f32(&previous_u8)?, imgproc::INTER_LINEAR)?;
        if matched_share(&warped_luma, &luma)? < CUT_MATCHED_SHARE {
            return Ok(Motion::Fresh);
        }
        let trust = trust_map(&flow, &warped_luma, &luma)?;
        let trusted = trust.iter().filter(|&&t| t > 0.5).count() as f32 / trust.len() as f32;
        Ok(Motion::Carry {
            flow,
            trust,
            trusted,
        })
    }
}

impl Steadier {
    /// The steadier for `level` in [0, 1], the share of the strokes carried where the flow holds;
    /// `None` at 0, where every frame is styled on its own and nothing is left to do.
    pub fn at(level: f32) -> Option<Self> {
        (level > 0.0).then(|| Self::new(level))
    }

    /// `level` in (0, 1]: the share of the strokes carried where the flow holds. Carries each frame
    /// on this thread alone.
    pub fn new(level: f32) -> Self {
        Self::in_bands(level, 1)
    }

    /// As [`Steadier::new`], carrying each frame in `bands` bands of rows on as many threads (the
    /// output is the same for any number).
    pub fn in_bands(level: f32, bands: usize) -> Self {
        leave_threads_to_stylize();
        Steadier {
            level: level.clamp(0.0, 1.0),
            bands: bands.max(1),
            analyser: MotionAnalyser::default(),
            previous_original: None,
            previous_output: None,
        }
    }

    /// The steadied version of `styled`, the network's output for `original`, prepared here and now.
    pub fn process(
        &mut self,
        original: &RgbImage,
        styled: &RgbImage,
    ) -> Result<(RgbImage, SteadyFrame)> {
        let prepared =
            self.analyser
                .prepare(self.previous_original.as_ref(), original, styled.clone())?;
        self.previous_original = Some(original.clone());
        self.apply(prepared)
    }

    /// The steadied frame of `prepared` (prepared from its original and the one before, in the
    /// order frames are applied).
    pub fn apply(&mut self, prepared: Prepared) -> Result<(RgbImage, SteadyFrame)> {
        let size = prepared.styled_f32.size()?;
        let previous = self
            .previous_output
            .take()
            .filter(|p| p.size().ok() == Some(size));
        let (output, image, frame) = match (&prepared.motion, previous) {
            (
                Motion::Carry {
                    flow,
                    trust,
                    trusted,
                },
                Some(previous),
            ) => {
                let carrying = Carrying {
                    previous: &previous,
                    flow,
                    trust,
                    styled: &prepared.styled_f32,
                    styled_coarse: &prepared.styled_coarse,
                    level: self.level,
                };
                let (output, image) = carrying.in_bands(self.bands, prepared.styled.is_deep())?;
                (output, image, SteadyFrame::Carried { trusted: *trusted })
            }
            _ => (prepared.styled_f32, prepared.styled, SteadyFrame::Fresh),
        };
        self.previous_output = Some(output);
        Ok((image, frame))
    }
}

/// OpenCV's own worker threads: none. The steadier spreads its work itself (frames prepared ahead
/// on their own threads, rows carried in bands), and on machines of up to four cores the network
/// and x264 keep every core busy (there, DIS spread over threads spent ~17 ms more CPU per 720×720
/// frame waiting than it saved). Set once per process; it is OpenCV's global setting.
fn leave_threads_to_stylize() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = opencv::core::set_num_threads(1);
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

/// One frame's carrying: the previous output along the flow, mixed with the styled frame — the
/// coarse band mostly from the new frame, the fine band mostly carried — and the fine band's energy
/// brought back towards the new frame's (see the module comment).
struct Carrying<'a> {
    previous: &'a Mat,
    flow: &'a Flow,
    trust: &'a [f32],
    styled: &'a Mat,
    styled_coarse: &'a Mat,
    level: f32,
}

/// The fine band's energies over some rows: the styled frame's, and the mix's.
type Energies = (f64, f64);

impl Carrying<'_> {
    /// The output as float RGB (for the next frame to carry) and as a picture (`deep`: with
    /// 16-bit samples), its rows carried in `bands` bands side by side.
    fn in_bands(&self, bands: usize, deep: bool) -> Result<(Mat, RgbImage)> {
        let (width, height) = (self.styled.cols() as usize, self.styled.rows() as usize);
        let mut output = self.styled.try_clone()?;
        let mut fine = vec![Vec3f::default(); width * height];
        let mut image = RgbImage::solid(width as u32, height as u32, [0, 0, 0]);
        // At least 16 rows a band, so the blur's margin stays a small share of each.
        let band_rows = height.div_ceil(bands.clamp(1, (height / 16).max(1)));
        let band = band_rows * width;
        let out = output.data_typed_mut::<Vec3f>()?;
        // First the mix and its energies, band by band; then the gain they call for.
        let bands_mixed: Vec<(Range<usize>, &mut [Vec3f], &mut [Vec3f])> = out
            .chunks_mut(band)
            .zip(fine.chunks_mut(band))
            .enumerate()
            .map(|(n, (out, fine))| {
                (
                    n * band_rows..(n * band_rows + band_rows).min(height),
                    out,
                    fine,
                )
            })
            .collect();
        let energies = each_band(bands_mixed, |(rows, out, fine)| self.rows(rows, out, fine));
        let (mut styled_energy, mut fine_energy) = (0.0, 0.0);
        for band_energies in energies {
            let (styled, fine) = band_energies?;
            (styled_energy, fine_energy) = (styled_energy + styled, fine_energy + fine);
        }
        let gain = (DETAIL_TARGET as f64 * styled_energy / fine_energy.max(1e-6))
            .clamp(1.0, MAX_DETAIL_GAIN as f64) as f32;
        let bands_gained: Vec<_> = out
            .chunks_mut(band)
            .zip(fine.chunks(band))
            .zip(image.data.chunks_mut(band * 3))
            .collect();
        each_band(bands_gained, |((out, fine), bytes)| {
            for ((o, f), px) in out.iter_mut().zip(fine).zip(bytes.chunks_exact_mut(3)) {
                for k in 0..3 {
                    o[k] = (o[k] + gain * f[k]).clamp(0.0, 1.0);
                    // A deep picture's 8-bit samples are its 16-bit ones rounded, made below.
                    if !deep {
                        px[k] = (o[k] * 255.0).round_ties_even() as u8;
                    }
                }
            }
        });
        if deep {
            let samples = out
                .iter()
                .flat_map(|o| o.0)
                .map(|v| (v * 65535.0).round() as u16);
            image = RgbImage::from_deep(image.width, image.height, samples.collect());
        }
        Ok((output, image))
    }

    /// Rows `rows` of the output: the coarse mix into `out`, the fine mix into `fine`; returns
    /// their fine energies. The blur of the carried frame reads a few rows beyond the band.
    fn rows(&self, rows: Range<usize>, out: &mut [Vec3f], fine: &mut [Vec3f]) -> Result<Energies> {
        let (width, height) = (self.styled.cols() as usize, self.styled.rows() as usize);
        let margin = planes::blur_radius(BAND_SIGMA);
        let with_margin = rows.start.saturating_sub(margin)..(rows.end + margin).min(height);
        let carried =
            self.flow
                .warp_rows(self.previous, with_margin.clone(), imgproc::INTER_CUBIC)?;
        let carried_coarse = planes::blur(&carried, BAND_SIGMA)?;
        let inner =
            (rows.start - with_margin.start) * width..(rows.end - with_margin.start) * width;
        let pixels = rows.start * width..rows.end * width;
        let c = &carried.data_typed::<Vec3f>()?[inner.clone()];
        let cc = &carried_coarse.data_typed::<Vec3f>()?[inner];
        let s = &self.styled.data_typed::<Vec3f>()?[pixels.clone()];
        let sc = &self.styled_coarse.data_typed::<Vec3f>()?[pixels.clone()];
        let trust = &self.trust[pixels];
        let (mut styled_energy, mut fine_energy) = (0.0f64, 0.0f64);
        for i in 0..trust.len() {
            let carry_fine = self.level * trust[i];
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
        Ok((styled_energy, fine_energy))
    }
}

/// `work` on each band's `items`, side by side: one thread per band but the last, which takes this
/// one. The results come back in band order.
fn each_band<I: Send, T: Send>(mut items: Vec<I>, work: impl Fn(I) -> T + Sync) -> Vec<T> {
    let Some(last) = items.pop() else {
        return Vec::new();
    };
    let work = &work;
    std::thread::scope(|scope| {
        let others: Vec<_> = items
            .into_iter()
            .map(|item| scope.spawn(move || work(item)))
            .collect();
        let last = work(last);
        let mut done: Vec<T> = others
            .into_iter()
            .map(|band| band.join().expect("a band of rows panicked"))
            .collect();
        done.push(last);
        done
    })
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

    /// A deep styled frame (16-bit samples) is carried in floats and comes out deep, its 8-bit
    /// picture the rounding of its samples and within rounding of the same frame steadied at 8 bits.
    #[test]
    fn deep_styled_frames_come_out_deep() {
        let widened = |image: RgbImage| {
            let samples = image
                .data
                .iter()
                .map(|&v| u16::from(v) * 257 + 77)
                .collect();
            RgbImage::from_deep(image.width, image.height, samples)
        };
        let original = textured(96, 64, 0);
        let (first, second) = (textured(96, 64, 3), textured(96, 64, 11));
        let mut deep = Steadier::new(1.0);
        let mut shallow = Steadier::new(1.0);
        let (out, kind) = deep.process(&original, &widened(first.clone())).unwrap();
        assert_eq!((out, kind), (widened(first.clone()), SteadyFrame::Fresh));
        shallow.process(&original, &first).unwrap();
        let (out, kind) = deep.process(&original, &widened(second.clone())).unwrap();
        assert!(matches!(kind, SteadyFrame::Carried { .. }), "{kind:?}");
        let samples = out.deep.clone().expect("a deep frame stays deep");
        assert_eq!(out, RgbImage::from_deep(96, 64, samples));
        let (eight_bit, _) = shallow.process(&original, &second).unwrap();
        let apart = stylize_testkit::mean_abs_diff(&out.data, &eight_bit.data);
        assert!(apart < 0.5, "{apart:.3} levels from the 8-bit steadier");
    }
}
