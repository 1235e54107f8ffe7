//! The `--style` argument: preset catalogue, preset blends, and style pictures read from disk.
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use stylize_model::{RgbImage, StyleSource};

/// One built-in preset as listed by `stylize styles`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Preset {
    pub index: usize,
    pub name: String,
    pub description: String,
}

/// The preset catalogue shipped in `styles/presets.json` (names chosen by looking at each preset's output).
pub fn presets() -> Vec<Preset> {
    serde_json::from_str(include_str!("../../../styles/presets.json"))
        .expect("styles/presets.json is valid")
}

/// Parses a `--style` value: a picture path, `preset:N`, a preset name, or a blend of presets.
pub fn parse_style(spec: &str) -> Result<StyleSource> {
    let spec = spec.trim();
    if spec.is_empty() {
        bail!("--style is empty: give a picture, a preset (preset:N) or a blend (preset:3=0.7,preset:12=0.3)");
    }
    let path = Path::new(spec);
    if path.exists() {
        return Ok(StyleSource::Image(load_picture(path)?));
    }
    if spec.starts_with("preset:") || !looks_like_a_file(spec) {
        return parse_presets(spec).map(StyleSource::Presets);
    }
    bail!("{spec}: style picture not found")
}

fn looks_like_a_file(spec: &str) -> bool {
    spec.contains('/') || spec.contains('\\') || Path::new(spec).extension().is_some()
}

fn parse_presets(spec: &str) -> Result<Vec<(usize, f32)>> {
    let catalogue = presets();
    let mut blend = Vec::new();
    for part in spec.split(',') {
        let part = part.trim();
        let (name, weight) = match part.split_once('=') {
            Some((name, weight)) => {
                let weight: f32 = weight
                    .trim()
                    .parse()
                    .map_err(|_| anyhow!("style {spec:?}: weight {weight:?} is not a number"))?;
                if !weight.is_finite() {
                    bail!("style {spec:?}: weight {weight} is not a finite number");
                }
                if weight < 0.0 {
                    bail!("style {spec:?}: weight {weight} must be zero or more");
                }
                (name.trim(), weight)
            }
            None => (part, 1.0),
        };
        let name = name.strip_prefix("preset:").unwrap_or(name);
        let index = match name.parse::<usize>() {
            Ok(index) if index < catalogue.len() => index,
            Ok(index) => bail!("unknown preset {index}: presets are numbered 0 to {}", catalogue.len() - 1),
            Err(_) => catalogue
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case(name))
                .map(|p| p.index)
                .ok_or_else(|| {
                    anyhow!("unknown style {name:?}: not a file, and not a preset name (see `stylize styles`)")
                })?,
        };
        blend.push((index, weight));
    }
    if blend.iter().map(|(_, w)| w).sum::<f32>() <= 0.0 {
        bail!("style {spec:?}: the blend weights add up to zero");
    }
    Ok(blend)
}

/// Reads a style picture in any format the `image` crate knows, flattening alpha onto white.
pub fn load_picture(path: &Path) -> Result<RgbImage> {
    let reader = image::ImageReader::open(path)
        .with_context(|| format!("{}: cannot open style picture", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("{}: cannot read style picture", path.display()))?;
    let decoded = reader
        .decode()
        .map_err(|e| anyhow!("{}: not a readable picture ({e})", path.display()))?;
    let rgba = decoded.to_rgba8();
    let (width, height) = rgba.dimensions();
    if width < 16 || height < 16 {
        bail!(
            "{}: style picture is too small ({width}×{height}; at least 16×16)",
            path.display()
        );
    }
    let mut data = Vec::with_capacity((width * height * 3) as usize);
    for px in rgba.pixels() {
        let [r, g, b, a] = px.0;
        let over_white = |c: u8| ((c as u32 * a as u32 + 255 * (255 - a as u32) + 127) / 255) as u8;
        data.extend_from_slice(&[over_white(r), over_white(g), over_white(b)]);
    }
    Ok(RgbImage::new(width, height, data))
}

/// A short human label for a style source, for summaries and file names.
pub fn describe(spec: &str, source: &StyleSource) -> String {
    match source {
        StyleSource::Image(_) => Path::new(spec)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| spec.to_string()),
        StyleSource::Presets(blend) => {
            let catalogue = presets();
            blend
                .iter()
                .map(|(i, w)| {
                    let name = &catalogue[*i].name;
                    if blend.len() == 1 {
                        name.clone()
                    } else {
                        format!("{name}={w}")
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_preset_and_blend() {
        match parse_style("preset:7").unwrap() {
            StyleSource::Presets(b) => assert_eq!(b, vec![(7, 1.0)]),
            other => panic!("expected presets, got {other:?}"),
        }
        match parse_style("preset:3=0.7,preset:12=0.3").unwrap() {
            StyleSource::Presets(b) => assert_eq!(b, vec![(3, 0.7), (12, 0.3)]),
            other => panic!("expected presets, got {other:?}"),
        }
    }

    #[test]
    fn preset_names_resolve() {
        let first = &presets()[5];
        match parse_style(&first.name.to_uppercase()).unwrap() {
            StyleSource::Presets(b) => assert_eq!(b, vec![(5, 1.0)]),
            other => panic!("expected presets, got {other:?}"),
        }
    }

    #[test]
    fn rejects_bad_specs() {
        let err = |s: &str| format!("{:#}", parse_style(s).unwrap_err());
        assert!(err("preset:26").contains("unknown preset 26"));
        assert!(err("no-such-style").contains("unknown style"));
        assert!(err("missing.jpg").contains("style picture not found"));
        assert!(err("preset:1=abc").contains("not a number"));
        assert!(err("preset:1=0,preset:2=0").contains("add up to zero"));
    }

    #[test]
    fn catalogue_is_complete_and_unique() {
        let p = presets();
        assert_eq!(p.len(), 26);
        for (i, preset) in p.iter().enumerate() {
            assert_eq!(preset.index, i);
            assert!(!preset.name.is_empty() && !preset.name.contains(char::is_whitespace));
        }
        let mut names: Vec<_> = p.iter().map(|p| p.name.to_lowercase()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 26);
    }
}
