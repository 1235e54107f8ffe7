//! A run's look: the network's placement, the style and its parameters, how steady, and the loaded network that applies them.
use anyhow::{Context, Result};
use stylize_model::{Engine, EngineOptions, PreparedStyle, RgbImage, StyleParams, StyleSource};

/// How frames are styled: the network's placement, the style and its parameters.
#[derive(Debug, Clone)]
pub struct LookConfig {
    pub engine: EngineOptions,
    /// The style as the user wrote it (for labels and messages).
    pub style_spec: String,
    pub style: StyleSource,
    pub params: StyleParams,
    /// `--steady`: the share of strokes carried along the original's motion (0: frame by frame).
    pub steady: f32,
    /// `--method`: the network alone, or its picture optimised further.
    pub method: crate::optimize::Method,
}

impl LookConfig {
    /// Whether the style depends on the video: an image style below full strength is blended
    /// with the first frame's own style (the network's convention), so it is prepared per video.
    pub fn needs_first_frame(&self) -> bool {
        matches!(self.style, StyleSource::Image(_)) && self.params.strength < 1.0
    }

    /// The style picture, for a style given as one (not presets).
    pub fn style_picture(&self) -> Option<&stylize_model::RgbImage> {
        match &self.style {
            StyleSource::Image(picture) => Some(picture),
            StyleSource::Presets(_) => None,
        }
    }

    /// A short human label for the style, for summaries.
    pub fn label(&self) -> String {
        crate::style::describe(&self.style_spec, &self.style)
    }

    /// How the frames are painted, for summaries: [`steadiness`](Self::steadiness), after
    /// `optimize 60 it` for the optimisation method.
    pub fn painting(&self) -> String {
        match self.method.label() {
            Some(method) => format!("{method}, {}", self.steadiness()),
            None => self.steadiness(),
        }
    }

    /// How steady, for summaries: `steady 0.95`, or `frame by frame` at 0.
    pub fn steadiness(&self) -> String {
        if self.steady > 0.0 {
            format!("steady {}", self.steady)
        } else {
            "frame by frame".into()
        }
    }

    /// Prepares the style on `engine`, from `first_frame` when [`Self::needs_first_frame`].
    pub fn prepare(
        &self,
        engine: &Engine,
        first_frame: Option<&RgbImage>,
    ) -> Result<PreparedStyle> {
        engine
            .prepare(&self.style, &self.params, first_frame)
            .with_context(|| format!("style {}", self.style_spec))
    }
}

/// The engine loaded for a look, with the style prepared once when it does not depend on the content.
pub struct LoadedLook {
    pub engine: Engine,
    pub shared: Option<PreparedStyle>,
    look: LookConfig,
}

impl LoadedLook {
    pub fn load(look: &LookConfig) -> Result<Self> {
        let engine = Engine::new(&look.engine).context("cannot start the style network")?;
        let shared = if look.needs_first_frame() {
            None
        } else {
            Some(look.prepare(&engine, None)?)
        };
        Ok(LoadedLook {
            engine,
            shared,
            look: look.clone(),
        })
    }

    pub fn look(&self) -> &LookConfig {
        &self.look
    }

    /// The style for a video whose first frame is `first_frame`.
    pub fn prepare_for(&self, first_frame: &RgbImage) -> Result<PreparedStyle> {
        self.look.prepare(&self.engine, Some(first_frame))
    }
}
