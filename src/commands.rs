//! Small subcommands that need no pipeline.
use anyhow::Result;

use crate::cli::StylesArgs;

/// `stylize styles`: the presets, or with `--sheet` a picture painted in each of them.
pub fn styles(args: &StylesArgs) -> Result<()> {
    match &args.sheet {
        Some(picture) => crate::showcase::presets::sheet(picture, args),
        None => list_styles(args),
    }
}

/// The presets, as a table or JSON.
pub fn list_styles(args: &StylesArgs) -> Result<()> {
    let presets = stylize_core::style::presets();
    if args.json {
        crate::print_out(&serde_json::to_string_pretty(&presets)?)?;
        return Ok(());
    }
    for p in &presets {
        println!("preset:{:<3} {:<18} {}", p.index, p.name, p.description);
    }
    Ok(())
}

/// What `--codec` can write with this build's FFmpeg.
pub fn codecs() -> Result<()> {
    use stylize_media::{ProResProfile, VideoCodec};
    crate::print_out(&format!(
        "{:<8} {:<10} {:<9} {:<14} {:<13} what for",
        "--codec", "encoder", "here", "containers", "bits"
    ))?;
    for codec in VideoCodec::ALL {
        let here = if codec.available() { "yes" } else { "missing" };
        let containers: Vec<String> = codec.containers().iter().map(|c| format!(".{c}")).collect();
        crate::print_out(&format!(
            "{:<8} {:<10} {:<9} {:<14} {:<13} {}",
            codec.family(),
            codec.encoder(),
            here,
            containers.join(" "),
            codec.bit_depths(),
            codec.purpose()
        ))?;
    }
    let profiles: Vec<&str> = ProResProfile::ALL.iter().map(|p| p.name()).collect();
    crate::print_out(&format!(
        "\nProRes profiles (--prores-profile): {} (default hq).\n\
         --crf and --preset are x264's scales: x265 takes them as they are, SVT-AV1 as CRF × 63/51\n\
         and its presets 12 (ultrafast) .. 1 (placebo); ProRes and FFV1 have neither.\n\
         A 10-bit input stays 10-bit in hevc, av1, prores and ffv1 (--pixel-format decides otherwise).",
        profiles.join(", ")
    ))
}
