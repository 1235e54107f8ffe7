//! What a run records about its look: the style computed once by the coordinator, the styling parameters, and the reference that names the run.
//!
//! The coordinator turns the style picture into the network's style vector (or
//! the normalised preset weights) and the manifest and every job carry those
//! numbers, so a worker rebuilds exactly the style local mode would use from
//! them alone. Only `--method optimize` needs the picture itself: it is stored
//! beside the run ([`stylize_cloud::RunId::style_picture_key`]).
use std::sync::Mutex;

use anyhow::{anyhow, Context, Result};
use stylize_cloud::{sha256_hex, OptimizeSpec, StyleKind, StyleParamsSpec, StyleSpec};
use stylize_model::optimize::OptimizeParams;
use stylize_model::{
    DeviceChoice, Engine, EngineOptions, Precision, PreparedStyle, RgbImage, StyleParams,
    StyleSource,
};

use crate::look::LookConfig;
use crate::optimize::Method;

/// The parameters as the run records them.
pub fn params_spec(p: &StyleParams, method: &Method) -> StyleParamsSpec {
    StyleParamsSpec {
        strength: p.strength,
        preserve_colors: p.preserve_colors,
        max_size: p.max_size,
        optimize: match method {
            Method::Fast => None,
            Method::Optimize { params, .. } => Some(OptimizeSpec {
                iterations: params.iterations as u32,
                content_weight: params.content_weight,
            }),
        },
    }
}

/// The optimisation a run asks for, if any (the temporal term is local mode's: cloud jobs
/// optimise each frame on its own).
pub fn optimize_params(p: &StyleParamsSpec) -> Option<OptimizeParams> {
    p.optimize.as_ref().map(|o| OptimizeParams {
        iterations: o.iterations as usize,
        content_weight: o.content_weight,
        temporal_weight: 0.0,
    })
}

/// The parameters a run records, for the network.
pub fn style_params(p: &StyleParamsSpec) -> StyleParams {
    StyleParams {
        strength: p.strength,
        preserve_colors: p.preserve_colors,
        max_size: p.max_size,
    }
}

/// Rebuilds a run's prepared style on a worker's engine.
pub fn prepare(style: &StyleSpec, engine: &Engine, params: &StyleParams) -> Result<PreparedStyle> {
    engine
        .prepare_from_values(style.kind == StyleKind::Image, &style.values, params)
        .map_err(|e| anyhow!("cannot rebuild the run's style: {e}"))
}

/// The style part of the run id: the same look always gives the same text,
/// however it was written on the command line.
pub fn style_ref(look: &LookConfig) -> String {
    match &look.style {
        // The pixels, not the file name: a renamed copy is the same style.
        StyleSource::Image(img) => format!(
            "image:{}x{}:{}",
            img.width,
            img.height,
            sha256_hex(&img.data)
        ),
        StyleSource::Presets(blend) => {
            // Canonical form of a blend: weights per preset, summed and normalised,
            // so `preset:3=2,preset:5=2` and `preset:5,preset:3` name one run.
            let mut weights = vec![0f64; Engine::preset_count()];
            for &(index, weight) in blend {
                if let Some(w) = weights.get_mut(index) {
                    *w += f64::from(weight);
                }
            }
            let sum: f64 = weights.iter().sum();
            let parts: Vec<String> = weights
                .iter()
                .enumerate()
                .filter(|(_, w)| **w > 0.0)
                .map(|(i, w)| format!("{i}={:.6}", w / sum))
                .collect();
            format!("presets:{}", parts.join(","))
        }
    }
}

/// The run's style when it is made of presets: their weights need no network, so the coordinator
/// need not load one (`None` for a picture's style).
pub fn without_network(look: &LookConfig) -> Option<Result<StyleSpec>> {
    let StyleSource::Presets(list) = &look.style else {
        return None;
    };
    let values = look
        .params
        .check()
        .and_then(|()| stylize_model::preset_values(list))
        .with_context(|| format!("style {}", look.style_spec));
    Some(values.map(|values| StyleSpec {
        kind: StyleKind::Presets,
        label: look.label(),
        values: values.to_vec(),
    }))
}

/// What turns a picture into a run's style values on the coordinator. A presets style needs no
/// network ([`without_network`]), so a coordinator that only ever runs presets can be built
/// without LibTorch (the `stylize` binary) and given [`NoNetwork`].
pub trait StyleNetwork: Send + Sync + std::fmt::Debug {
    /// The run's style, computed once per run.
    fn compute(&self, look: &LookConfig, first_frame: Option<&RgbImage>) -> Result<StyleSpec>;
}

/// The coordinator's network, loaded on first need and kept for the next input: CPU and f32,
/// whatever the workers use, so the stored values are exact and each worker rounds them to its
/// own precision just as local mode rounds its own.
#[derive(Debug, Default)]
pub struct CoordinatorNetwork {
    engine: Mutex<Option<Engine>>,
}

impl StyleNetwork for CoordinatorNetwork {
    fn compute(&self, look: &LookConfig, first_frame: Option<&RgbImage>) -> Result<StyleSpec> {
        let mut engine = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        if engine.is_none() {
            let options = EngineOptions {
                device: DeviceChoice::Cpu,
                precision: Precision::F32,
                threads: look.engine.threads,
            };
            let loaded = Engine::new(&options)
                .context("cannot start the style network to prepare the style")?;
            *engine = Some(loaded);
        }
        let prepared = look.prepare(engine.as_ref().expect("loaded above"), first_frame)?;
        Ok(StyleSpec {
            kind: if prepared.is_image_style() {
                StyleKind::Image
            } else {
                StyleKind::Presets
            },
            label: look.label(),
            values: prepared.values(),
        })
    }
}

/// For a coordinator built without LibTorch: any style that needs the network is refused.
#[derive(Debug, Default)]
pub struct NoNetwork;

impl StyleNetwork for NoNetwork {
    fn compute(&self, look: &LookConfig, _first_frame: Option<&RgbImage>) -> Result<StyleSpec> {
        Err(anyhow!(
            "style {}: needs the style network, which this build of the coordinator lacks",
            look.style_spec
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(spec: &str) -> LookConfig {
        LookConfig {
            engine: EngineOptions::default(),
            style_spec: spec.into(),
            style: crate::style::parse_style(spec).unwrap(),
            params: StyleParams::default(),
            steady: 0.0,
            method: crate::optimize::Method::Fast,
        }
    }

    #[test]
    fn equal_blends_name_the_same_run() {
        assert_eq!(
            style_ref(&look("preset:3=2,preset:5=2")),
            style_ref(&look("preset:5,preset:3"))
        );
        assert_ne!(style_ref(&look("preset:3")), style_ref(&look("preset:5")));
        assert_ne!(
            style_ref(&look("preset:3=0.7,preset:5=0.3")),
            style_ref(&look("preset:3=0.3,preset:5=0.7"))
        );
    }

    #[test]
    fn parameters_round_trip() {
        let p = StyleParams {
            strength: 0.7,
            preserve_colors: true,
            max_size: Some(360),
        };
        assert_eq!(style_params(&params_spec(&p, &Method::Fast)), p);
    }
}
