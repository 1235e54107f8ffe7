//! `--method optimize` over a video: each frame's picture optimised (Gatys et al.), started from the fast network's picture, or from the previous result carried along the motion with a temporal term that keeps it there (Ruder et al.).
use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use stylize_model::optimize::{optimize, Losses, OptimizeParams, StyleGoal, Temporal};
use stylize_model::vgg::Vgg19;
use stylize_model::RgbImage;
use stylize_motion::MotionAnalyser;

/// Why presets cannot be optimised against.
pub const NEEDS_A_PICTURE: &str =
    "--method optimize matches a style picture's VGG19 statistics: give --style a picture, not presets";

/// How each frame's picture is made.
#[derive(Clone, Debug, PartialEq)]
pub enum Method {
    /// The feed-forward network alone.
    Fast,
    /// The network's picture, then optimised with VGG19 (weights at `vgg19`).
    Optimize {
        params: OptimizeParams,
        vgg19: PathBuf,
    },
}

impl Method {
    /// For summaries: `optimize 100 it` or nothing for the fast method.
    pub fn label(&self) -> Option<String> {
        match self {
            Method::Fast => None,
            Method::Optimize { params, .. } => Some(format!("optimize {} it", params.iterations)),
        }
    }
}

/// Optimises the frames of one video in order.
pub struct FrameOptimizer {
    vgg: Vgg19,
    style_picture: RgbImage,
    /// The style's Gram matrices per frame size (the picture scaled to the frame's long side).
    goals: HashMap<(u32, u32), StyleGoal>,
    params: OptimizeParams,
    /// `--steady`: how strongly each result is held to the previous one carried along the motion
    /// (0: every frame on its own).
    steady: f32,
    analyser: MotionAnalyser,
    /// The last frame's original and result.
    previous: Option<(RgbImage, RgbImage)>,
}

impl FrameOptimizer {
    /// The optimiser for `method` (none for the fast one), running on `device` (the engine's).
    pub fn new(
        method: &Method,
        style_picture: Option<&RgbImage>,
        steady: f32,
        device: stylize_model::Device,
    ) -> Result<Option<Self>> {
        let Method::Optimize { params, vgg19 } = method else {
            return Ok(None);
        };
        let Some(style_picture) = style_picture else {
            bail!("{NEEDS_A_PICTURE}");
        };
        let vgg = Vgg19::load(vgg19)
            .context("--method optimize needs VGG19")?
            .to_device(device);
        Ok(Some(FrameOptimizer {
            vgg,
            style_picture: style_picture.clone(),
            goals: HashMap::new(),
            params: params.clone(),
            steady,
            analyser: MotionAnalyser::default(),
            previous: None,
        }))
    }

    /// Iterations per frame.
    pub fn iterations(&self) -> usize {
        self.params.iterations
    }

    /// The optimised picture of `original`, whose fast picture is `fast`; `each` hears every
    /// iteration (its number of `params.iterations`).
    pub fn next(
        &mut self,
        original: &RgbImage,
        fast: RgbImage,
        each: impl FnMut(usize, &Losses),
    ) -> Result<RgbImage> {
        let carried = match (&self.previous, self.steady > 0.0) {
            (Some((previous, result)), true) => self.analyser.carry(previous, original, result)?,
            _ => None,
        };
        let size = (original.width, original.height);
        if !self.goals.contains_key(&size) {
            let picture = scaled_to_long_side(&self.style_picture, size.0.max(size.1));
            self.goals
                .insert(size, StyleGoal::new(&self.vgg, &picture)?);
        }
        let goal = &self.goals[&size];
        let params = OptimizeParams {
            temporal_weight: self.params.temporal_weight * f64::from(self.steady),
            ..self.params.clone()
        };
        let result = match &carried {
            // Where the motion holds, start from the previous result carried along it; where it
            // does not (what came into view), from the network's picture.
            Some(carried) => {
                let start = blend(&fast, &carried.picture, &carried.trust);
                let temporal = Temporal {
                    carried: &carried.picture,
                    trust: &carried.trust,
                };
                optimize(
                    &self.vgg,
                    goal,
                    original,
                    &start,
                    Some(temporal),
                    &params,
                    each,
                )?
            }
            None => optimize(&self.vgg, goal, original, &fast, None, &params, each)?,
        };
        self.previous = Some((original.clone(), result.image.clone()));
        Ok(result.image)
    }
}

/// `picture` scaled so its long side is `side`, aspect kept.
fn scaled_to_long_side(picture: &RgbImage, side: u32) -> RgbImage {
    let long = picture.width.max(picture.height).max(1);
    let scale = f64::from(side) / f64::from(long);
    let size = |n: u32| ((f64::from(n) * scale).round() as u32).max(1);
    crate::sheet::canvas::resize(picture, size(picture.width), size(picture.height))
}

/// Per pixel, `carried` (RGB in [0,1]) where `trust` is 1 and `fast` where it is 0.
fn blend(fast: &RgbImage, carried: &[f32], trust: &[f32]) -> RgbImage {
    let data = fast
        .data
        .chunks_exact(3)
        .zip(carried.chunks_exact(3))
        .zip(trust)
        .flat_map(|((f, c), &t)| {
            (0..3).map(move |k| {
                let mixed = t * c[k] * 255.0 + (1.0 - t) * f32::from(f[k]);
                mixed.round().clamp(0.0, 255.0) as u8
            })
        })
        .collect();
    RgbImage::new(fast.width, fast.height, data)
}
