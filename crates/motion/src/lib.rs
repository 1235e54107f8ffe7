//! stylize-motion: optical flow on the original frames, the steadying filter that carries styled strokes along it, and the temporal measures.
//!
//! Styling each frame on its own re-forms the brush strokes every frame, so the picture shimmers.
//! [`Steadier`] follows the motion of the *original* video (DIS optical flow) and carries the
//! previous output's strokes along it wherever the flow can be trusted, so strokes move with the
//! scene instead of re-forming. [`TemporalMeasure`] scores any video pair the way the field does
//! (Lai et al. 2018's warping error) plus flicker and detail energy.

mod flow;
mod measure;
mod planes;
mod steady;
mod stream;

pub use measure::{TemporalMeasure, TemporalScores};
pub use steady::{Carried, MotionAnalyser, Steadier, SteadyFrame, DEFAULT_STEADY};
pub use stream::{steadying_threads, Steadied, SteadyStream};

/// What can go wrong in here: OpenCV refusing an operation, or pictures that do not match.
#[derive(Debug, thiserror::Error)]
pub enum MotionError {
    #[error("optical flow: {0}")]
    OpenCv(#[from] opencv::Error),
    #[error("{0}")]
    Mismatch(String),
    #[error("a steadying thread stopped unexpectedly")]
    Stopped,
}

pub type Result<T> = std::result::Result<T, MotionError>;

/// A smooth, textured test picture, `shift` pixels along a horizontal pan (for this crate's tests).
#[cfg(test)]
pub(crate) fn test_pattern(width: u32, height: u32, shift: u32) -> stylize_frame::RgbImage {
    let mut data = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let (u, v) = ((x + shift) as f32, y as f32);
            let g = 128.0
                + 70.0 * (u * 0.13).sin() * (v * 0.11).cos()
                + 40.0 * (u * 0.031 + v * 0.047).sin();
            data.extend_from_slice(&[g as u8, (g * 0.7) as u8, (255.0 - g) as u8]);
        }
    }
    stylize_frame::RgbImage::new(width, height, data)
}
