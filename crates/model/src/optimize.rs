//! The optimisation method of Gatys et al.: a frame's picture is optimised with L-BFGS until its VGG19 features keep the frame's content (relu4_2) and its Gram matrices match the style picture's (relu1_1 … relu5_1), with Ruder et al.'s temporal term towards the previous result carried along the motion.
//!
//! Losses are the relative distances `stylize measure` reports ([`crate::vgg::style_distance`],
//! [`crate::vgg::content_distance`]), so the weights are scale-free and the loss a run ends with is
//! the measure. The optimiser is L-BFGS (two-loop recursion over the last [`HISTORY`] steps) with
//! an Armijo backtracking line search, so the loss never rises from one iteration to the next.

use tch::{Kind, Tensor};

use crate::vgg::{content_loss, style_loss, Vgg19};
use crate::{frames_to_unit_tensor, tensor_to_deep_frames, tensor_to_frames, ModelError, RgbImage};

/// Steps L-BFGS remembers.
pub const HISTORY: usize = 8;
/// Iterations per frame by default. The reference ran 300 from the content frame. Started from
/// the fast network's picture the loss has flattened by 60 (0.127 at 40, 0.123 at 60 on a
/// 256×256 frame of the sample), and the content frame's start is still above it there
/// (README, "Optimisation method").
pub const DEFAULT_ITERATIONS: usize = 60;

/// How the picture is optimised.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizeParams {
    /// L-BFGS iterations (each one a VGG19 pass forward and back, more when the line search
    /// shortens a step).
    pub iterations: usize,
    /// Weight of the content distance against the style distance's 1.
    pub content_weight: f64,
    /// Weight of the temporal term (mean squared difference from the previous result carried
    /// along the motion, where the motion is trusted).
    pub temporal_weight: f64,
}

impl Default for OptimizeParams {
    fn default() -> Self {
        OptimizeParams {
            iterations: DEFAULT_ITERATIONS,
            content_weight: 0.2,
            temporal_weight: 20.0,
        }
    }
}

/// The previous result carried onto this frame: packed RGB in [0,1] and a weight per pixel (how
/// far the motion there is trusted).
pub struct Temporal<'a> {
    pub carried: &'a [f32],
    pub trust: &'a [f32],
}

/// One iteration's losses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Losses {
    pub total: f64,
    pub style: f64,
    pub content: f64,
    pub temporal: f64,
}

/// A frame's result and the losses after each iteration (the first entry: at the start).
pub struct Optimized {
    pub image: RgbImage,
    pub curve: Vec<Losses>,
}

/// The style picture's Gram matrices: what every frame's are pulled towards.
pub struct StyleGoal {
    grams: Vec<Tensor>,
}

impl StyleGoal {
    /// The goal for `picture` (give it at the frames' scale: Gram matrices see brush size).
    pub fn new(vgg: &Vgg19, picture: &RgbImage) -> Result<Self, ModelError> {
        Ok(StyleGoal {
            grams: vgg.features(picture)?.grams,
        })
    }
}

/// Optimises the picture of `content`, starting from `start` (the fast network's picture, or the
/// previous result carried onto this frame), for `params.iterations` iterations; `each` hears
/// the iteration number and its losses. A deep `content` gives a deep result.
pub fn optimize(
    vgg: &Vgg19,
    goal: &StyleGoal,
    content: &RgbImage,
    start: &RgbImage,
    temporal: Option<Temporal<'_>>,
    params: &OptimizeParams,
    mut each: impl FnMut(usize, &Losses),
) -> Result<Optimized, ModelError> {
    for (index, image) in [content, start].into_iter().enumerate() {
        image
            .check()
            .map_err(|reason| ModelError::BadFrame { index, reason })?;
    }
    if (start.width, start.height) != (content.width, content.height) {
        return Err(ModelError::BadFrame {
            index: 1,
            reason: "the start differs in size from the frame".into(),
        });
    }
    let (w, h) = (content.width as i64, content.height as i64);
    let device = vgg.device();
    let content_tensor = frames_to_unit_tensor(std::slice::from_ref(content), device)?;
    let original = tch::no_grad(|| vgg.features_of(&content_tensor).content);
    let temporal = temporal
        .map(|t| temporal_tensors(&t, (w, h), device))
        .transpose()?;
    let mut x = frames_to_unit_tensor(std::slice::from_ref(start), device)?
        .contiguous()
        .flatten(0, -1);
    let shape = [1, 3, h, w];
    let objective = |x: &Tensor| {
        evaluate(
            vgg,
            goal,
            &original,
            temporal.as_ref(),
            params,
            &x.view(shape),
        )
    };
    // The optimiser's first evaluation, at the start, is the curve's first point.
    let mut lbfgs = Lbfgs::new(objective, &x);
    let mut curve = vec![lbfgs.loss];
    each(0, &curve[0]);
    for iteration in 1..=params.iterations {
        match lbfgs.step(&mut x) {
            Some(losses) => {
                each(iteration, &losses);
                curve.push(losses);
            }
            None => break, // no direction lowers the loss: converged
        }
    }
    let picture = x.view(shape).clamp(0.0, 1.0);
    Ok(Optimized {
        image: match content.is_deep() {
            true => tensor_to_deep_frames(&picture)?,
            false => tensor_to_frames(&picture)?,
        }
        .remove(0),
        curve,
    })
}

/// The carried picture and its trust as [1,3,H,W] and [1,1,H,W] tensors on `device`.
fn temporal_tensors(
    t: &Temporal<'_>,
    (w, h): (i64, i64),
    device: crate::Device,
) -> Result<(Tensor, Tensor), ModelError> {
    let pixels = (w * h) as usize;
    if t.carried.len() != pixels * 3 || t.trust.len() != pixels {
        return Err(ModelError::BadFrame {
            index: 2,
            reason: "the carried picture differs in size from the frame".into(),
        });
    }
    let carried = Tensor::from_slice(t.carried)
        .view([1, h, w, 3])
        .permute([0, 3, 1, 2])
        .to_device(device);
    let trust = Tensor::from_slice(t.trust)
        .view([1, 1, h, w])
        .to_device(device);
    Ok((carried, trust))
}

/// The loss at `x` ([1,3,H,W] in [0,1]) and its gradient (flat).
fn evaluate(
    vgg: &Vgg19,
    goal: &StyleGoal,
    original: &Tensor,
    temporal: Option<&(Tensor, Tensor)>,
    params: &OptimizeParams,
    x: &Tensor,
) -> (Tensor, Losses) {
    let x = x.detach().set_requires_grad(true);
    let features = vgg.features_of(&x);
    let style = style_loss(&features.grams, &goal.grams);
    let content = content_loss(&features.content, original);
    let temporal = match temporal {
        Some((carried, trust)) => ((&x - carried).square() * trust).mean(Kind::Float),
        None => Tensor::zeros([], (Kind::Float, x.device())),
    };
    let total = &style + &content * params.content_weight + &temporal * params.temporal_weight;
    let losses = Losses {
        total: total.double_value(&[]),
        style: style.double_value(&[]),
        content: content.double_value(&[]),
        temporal: temporal.double_value(&[]),
    };
    total.backward();
    (x.grad().flatten(0, -1), losses)
}

/// L-BFGS over a flat tensor, with an Armijo backtracking line search.
struct Lbfgs<F> {
    objective: F,
    loss: Losses,
    gradient: Tensor,
    /// (step, change of gradient, 1 / their dot product), oldest first.
    memory: Vec<(Tensor, Tensor, f64)>,
}

/// Sufficient decrease the line search asks for, and how often it may halve a step.
const ARMIJO: f64 = 1e-4;
const HALVINGS: usize = 12;
/// The first step (no curvature known yet) moves no sample by more than this.
const FIRST_STEP: f64 = 0.05;

impl<F: FnMut(&Tensor) -> (Tensor, Losses)> Lbfgs<F> {
    fn new(mut objective: F, x: &Tensor) -> Self {
        let (gradient, loss) = objective(x);
        Lbfgs {
            objective,
            loss,
            gradient,
            memory: Vec::new(),
        }
    }

    /// One iteration from `x` (updated in place); the new losses, or `None` when no step along
    /// the search direction lowers the loss.
    fn step(&mut self, x: &mut Tensor) -> Option<Losses> {
        let mut direction = -self.inverse_hessian_times(&self.gradient);
        if self.memory.is_empty() {
            let largest = direction.abs().max().double_value(&[]).max(1e-12);
            direction *= FIRST_STEP / largest;
        }
        let slope = dot(&self.gradient, &direction);
        if slope >= 0.0 {
            // Not a descent direction (curvature gone stale): start over from the gradient.
            self.memory.clear();
            return None;
        }
        let mut length = 1.0;
        for _ in 0..HALVINGS {
            let candidate = &*x + &direction * length;
            let (gradient, loss) = (self.objective)(&candidate);
            if loss.total <= self.loss.total + ARMIJO * length * slope {
                let (step, change) = (&candidate - &*x, &gradient - &self.gradient);
                let curvature = dot(&step, &change);
                if curvature > 1e-10 {
                    self.memory.push((step, change, 1.0 / curvature));
                    if self.memory.len() > HISTORY {
                        drop(self.memory.remove(0));
                    }
                }
                *x = candidate;
                self.gradient = gradient;
                self.loss = loss;
                return Some(loss);
            }
            length *= 0.5;
        }
        None
    }

    /// The two-loop recursion: the remembered steps' estimate of the inverse Hessian times `g`.
    fn inverse_hessian_times(&self, g: &Tensor) -> Tensor {
        let mut q = g.copy();
        let mut alphas = Vec::with_capacity(self.memory.len());
        for (s, y, rho) in self.memory.iter().rev() {
            let alpha = rho * dot(s, &q);
            q -= y * alpha;
            alphas.push(alpha);
        }
        if let Some((s, y, _)) = self.memory.last() {
            q *= dot(s, y) / dot(y, y).max(1e-20);
        }
        for ((s, y, rho), alpha) in self.memory.iter().zip(alphas.into_iter().rev()) {
            let beta = rho * dot(y, &q);
            q += s * (alpha - beta);
        }
        q
    }
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    (a * b).sum(Kind::Double).double_value(&[])
}
