//! `stylize measure ORIGINAL STYLED [--style PICTURE]`: the temporal (and style) scores, as a table or as JSON.

use anyhow::{bail, Result};
use stylize_core::measure::StyleScores;
use stylize_motion::TemporalScores;

use crate::cli::MeasureArgs;
use crate::progress::Progress;

pub fn run(args: &MeasureArgs) -> Result<()> {
    // The style picture and the weights are checked before the long temporal pass.
    let style_inputs = match &args.style {
        Some(picture) if !picture.is_file() => {
            bail!("{}: no such style picture", picture.display())
        }
        Some(picture) => Some((picture, crate::config::vgg19_weights()?)),
        None => None,
    };
    let progress = Progress::new(args.quiet || args.json);
    let temporal = stylize_core::measure::temporal(&args.original, &args.styled, &progress)?;
    let style = style_inputs
        .map(|(picture, vgg19)| {
            stylize_core::measure::style(
                &args.original,
                &args.styled,
                picture,
                &vgg19,
                args.style_frames.max(1),
            )
        })
        .transpose()?;
    if args.json {
        crate::print_out(&serde_json::to_string_pretty(&as_json(
            &temporal,
            style.as_ref(),
        ))?)?;
    } else {
        crate::print_out(table(&temporal, style.as_ref()).trim_end())?;
    }
    Ok(())
}

fn as_json(s: &TemporalScores, style: Option<&StyleScores>) -> serde_json::Value {
    let mut out = serde_json::json!({
        "frames": s.frames,
        "pairs": s.pairs,
        "cut_pairs": s.cut_pairs,
        "warp_error": { "original": s.warp_error_original, "styled": s.warp_error_styled, "ratio": s.warp_ratio() },
        "flicker": { "original": s.flicker_original, "styled": s.flicker_styled },
        "detail": { "original": s.detail_original, "styled": s.detail_styled },
        "pair_warp_errors": s.pair_errors,
    });
    if let Some(v) = style {
        out["style_distance"] = serde_json::json!({
            "original": v.style_distance_original,
            "styled": v.style_distance_styled,
            "frames": v.frames,
        });
        out["content_distance"] = serde_json::json!(v.content_distance);
    }
    out
}

fn table(s: &TemporalScores, style: Option<&StyleScores>) -> String {
    let mut out = format!(
        "{} frames: {} pairs measured, {} across scene cuts left out\n",
        s.frames, s.pairs, s.cut_pairs
    );
    out += &format!("{:<28}{:>10}{:>10}\n", "", "original", "styled");
    out += &format!(
        "{:<28}{:>10.3}{:>10.3}   ({:.1}× the original)\n",
        "warping error (×10⁻³)",
        s.warp_error_original * 1e3,
        s.warp_error_styled * 1e3,
        s.warp_ratio()
    );
    out += &format!(
        "{:<28}{:>10.2}{:>10.2}\n",
        "flicker (mean |ΔY|, 0-255)", s.flicker_original, s.flicker_styled
    );
    out += &format!(
        "{:<28}{:>10.1}{:>10.1}\n",
        "detail (mean Sobel, 0-255)", s.detail_original, s.detail_styled
    );
    if let Some(v) = style {
        out += &format!(
            "{:<28}{:>10.3}{:>10.3}   (VGG19 Gram, {} frames)\n",
            "style distance", v.style_distance_original, v.style_distance_styled, v.frames
        );
        out += &format!(
            "{:<28}{:>10}{:>10.3}   (VGG19 relu4_2)\n",
            "content distance", "", v.content_distance
        );
    }
    out
}
