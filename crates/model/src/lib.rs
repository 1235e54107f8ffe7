//! stylize-model: the style networks as native tch modules, their embedded weights, device and precision choice.
pub mod arbitrary;
pub mod multistyle;
pub mod optimize;
pub mod vgg;

mod engine;
pub use engine::*;
pub use stylize_frame::RgbImage;
/// Where tensors live (the engine's and VGG19's device).
pub use tch::Device;

/// What can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// CUDA was asked for, but this LibTorch build has no CUDA support or no GPU is visible.
    #[error("CUDA was requested but is not available (LibTorch without CUDA, or no GPU visible)")]
    CudaUnavailable,
    /// The style cannot be used: an unreadable or empty style image, bad preset weights, or an
    /// image style with strength below 1 and no content sample.
    #[error("bad style: {reason}")]
    BadStyle { reason: String },
    /// A preset index outside `0..26`.
    #[error("preset {index} does not exist (presets are numbered 0 to 25)")]
    BadPreset { index: usize },
    /// A frame whose buffer does not match its size, or which does not fit its batch.
    #[error("frame {index}: {reason}")]
    BadFrame { index: usize, reason: String },
    /// A parameter out of range (strength, max size, thread count).
    #[error("bad parameter: {reason}")]
    BadParams { reason: String },
    /// The embedded weights do not match the modules (a build or importer problem).
    #[error("embedded weights {name}: {reason}")]
    Weights { name: &'static str, reason: String },
    /// The device/precision pair cannot run the networks (found by the warm-up at start).
    #[error("{what} cannot run the networks: {reason}")]
    Unsupported { what: String, reason: String },
    /// A LibTorch operation failed while running a network (for example out of GPU memory).
    #[error("inference failed: {reason}")]
    Inference { reason: String },
    /// A LibTorch call outside the networks failed.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

impl ModelError {
    /// True where trying the same work again may succeed (transient device trouble such as
    /// running out of GPU memory beside another process); false for bad input or setup.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ModelError::Inference { .. })
    }
}
