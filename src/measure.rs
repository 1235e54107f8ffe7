//! `stylize measure ORIGINAL STYLED`: the temporal scores, as a table or as JSON.
use anyhow::Result;
use stylize_motion::TemporalScores;

use crate::cli::MeasureArgs;
use crate::progress::Progress;

pub fn run(args: &MeasureArgs) -> Result<()> {
    let progress = Progress::new(args.quiet || args.json);
    let scores = stylize_core::measure::temporal(&args.original, &args.styled, &progress)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&as_json(&scores))?);
    } else {
        print!("{}", table(&scores));
    }
    Ok(())
}

fn as_json(s: &TemporalScores) -> serde_json::Value {
    serde_json::json!({
        "frames": s.frames,
        "pairs": s.pairs,
        "cut_pairs": s.cut_pairs,
        "warp_error": { "original": s.warp_error_original, "styled": s.warp_error_styled, "ratio": s.warp_ratio() },
        "flicker": { "original": s.flicker_original, "styled": s.flicker_styled },
        "detail": { "original": s.detail_original, "styled": s.detail_styled },
    })
}

fn table(s: &TemporalScores) -> String {
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
    out += &format!("{:<28}{:>10.2}{:>10.2}\n", "flicker (mean |ΔY|, 0-255)", s.flicker_original, s.flicker_styled);
    out += &format!("{:<28}{:>10.1}{:>10.1}\n", "detail (mean Sobel, 0-255)", s.detail_original, s.detail_styled);
    out
}
