//! What a run records about its look: the style computed once by the coordinator, the styling parameters, and the reference that names the run.
//!
//! Workers never see the style picture: the coordinator turns it into the
//! network's style vector (or the normalised preset weights) and the manifest
//! and every job carry those numbers, so a worker rebuilds exactly the style
//! local mode would use from them alone.
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use stylize_cloud::sha256_hex;
use stylize_model::{
    DeviceChoice, Engine, EngineOptions, Precision, PreparedStyle, RgbImage, StyleParams,
    StyleSource,
};

use crate::config::LookConfig;

/// Which network the values are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StyleKind {
    /// The arbitrary-style network; `values` is its style vector.
    Image,
    /// The 26-preset network; `values` are the normalised preset weights.
    Presets,
}

/// The manifest's and each job's `style` field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StyleDoc {
    pub kind: StyleKind,
    /// For people reading `stylize runs` (a file name or preset names).
    pub label: String,
    /// [`PreparedStyle::values`], already blended with the first frame's own
    /// style for an image style below full strength.
    pub values: Vec<f32>,
}

/// The manifest's and each job's `params` field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamsDoc {
    pub strength: f32,
    pub preserve_colors: bool,
    pub max_size: Option<u32>,
}

impl ParamsDoc {
    pub fn from_params(p: &StyleParams) -> ParamsDoc {
        ParamsDoc {
            strength: p.strength,
            preserve_colors: p.preserve_colors,
            max_size: p.max_size,
        }
    }

    pub fn to_params(&self) -> StyleParams {
        StyleParams {
            strength: self.strength,
            preserve_colors: self.preserve_colors,
            max_size: self.max_size,
        }
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("plain data serialises")
    }

    pub fn from_value(v: &serde_json::Value) -> Result<ParamsDoc> {
        serde_json::from_value(v.clone())
            .map_err(|e| anyhow!("job parameters are not this version's: {e}"))
    }
}

impl StyleDoc {
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("plain data serialises")
    }

    pub fn from_value(v: &serde_json::Value) -> Result<StyleDoc> {
        let doc: StyleDoc = serde_json::from_value(v.clone())
            .map_err(|e| anyhow!("job style is not this version's: {e}"))?;
        let expected = match doc.kind {
            StyleKind::Image => None,
            StyleKind::Presets => Some(Engine::preset_count()),
        };
        if doc.values.is_empty()
            || expected.is_some_and(|n| n != doc.values.len())
            || doc.values.iter().any(|v| !v.is_finite())
        {
            bail!(
                "job style has {} unusable values for a {:?} style",
                doc.values.len(),
                doc.kind
            );
        }
        Ok(doc)
    }

    /// Rebuilds the prepared style on a worker's engine.
    pub fn prepare(&self, engine: &Engine, params: &StyleParams) -> Result<PreparedStyle> {
        engine
            .prepare_from_values(self.kind == StyleKind::Image, &self.values, params)
            .map_err(|e| anyhow!("cannot rebuild the run's style: {e}"))
    }
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

/// Whether the style depends on the video: an image style below full strength
/// is blended with the first frame's own style (as local mode does).
pub fn needs_first_frame(look: &LookConfig) -> bool {
    matches!(look.style, StyleSource::Image(_)) && look.params.strength < 1.0
}

/// The coordinator's engine: CPU and f32, whatever the workers use, so the
/// stored values are exact and each worker rounds them to its own precision
/// just as local mode rounds its own.
pub fn coordinator_engine(look: &LookConfig) -> Result<Engine> {
    let options = EngineOptions {
        device: DeviceChoice::Cpu,
        precision: Precision::F32,
        threads: look.engine.threads,
    };
    Engine::new(&options).context("cannot start the style network to prepare the style")
}

/// Computes the run's style once.
pub fn compute(
    engine: &Engine,
    look: &LookConfig,
    first_frame: Option<&RgbImage>,
) -> Result<StyleDoc> {
    let prepared = engine
        .prepare(&look.style, &look.params, first_frame)
        .with_context(|| format!("style {}", look.style_spec))?;
    Ok(StyleDoc {
        kind: if prepared.is_image_style() {
            StyleKind::Image
        } else {
            StyleKind::Presets
        },
        label: crate::style::describe(&look.style_spec, &look.style),
        values: prepared.values(),
    })
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
    fn documents_round_trip_and_refuse_nonsense() {
        let doc = StyleDoc {
            kind: StyleKind::Presets,
            label: "x".into(),
            values: vec![1.0 / 26.0; 26],
        };
        assert_eq!(StyleDoc::from_value(&doc.to_value()).unwrap(), doc);
        let bad = StyleDoc {
            values: vec![0.5; 3],
            ..doc.clone()
        };
        assert!(StyleDoc::from_value(&bad.to_value()).is_err());
        let p = ParamsDoc {
            strength: 0.7,
            preserve_colors: true,
            max_size: Some(360),
        };
        let back = ParamsDoc::from_value(&p.to_value()).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.to_params().strength, 0.7f32);
        assert!(ParamsDoc::from_value(&serde_json::json!({"strength": 1.0})).is_err());
    }
}
