//! `stylize styles --sheet PICTURE`: one picture painted in every preset, as a labelled grid (and thumbnails).
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use stylize_model::{Engine, EngineOptions, RgbImage, StyleParams, StyleSource};

use stylize_core::sheet::canvas::{displayed, encode_jpeg, resize_to_fit};
use stylize_core::sheet::{tile_box, to_png, Sheet, Tile};
use stylize_core::style::Preset;
use stylize_core::{files, frames};

use crate::cli::StylesArgs;

/// Columns of the preset grid: the original and 26 presets fill four rows of seven.
const COLUMNS: usize = 7;
/// Long side of a preset tile on the sheet.
const TILE_LONG_SIDE: u32 = 200;
/// Long side and JPEG quality of the thumbnails in styles/thumbs (small enough to ship: ~8 KB each).
const THUMB_LONG_SIDE: u32 = 160;
const THUMB_QUALITY: u8 = 76;

pub fn sheet(source: &Path, args: &StylesArgs) -> Result<()> {
    if !(64..=2048).contains(&args.size) {
        bail!(
            "--size {} is out of range: use 64 to 2048 pixels",
            args.size
        );
    }
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| files::sibling(source, ".styles.png"));
    require_png(&output)?;
    stylize_core::output::refuse_to_replace(&output, "sheet", "its own source", [source])?;
    files::check_free(&output, args.overwrite)?;
    let catalogue = stylize_core::style::presets();
    let thumb_paths = thumb_paths(&catalogue, args)?;

    let picture = load_source(source)?;
    let small = if picture.width.max(picture.height) > args.size {
        resize_to_fit(&picture, args.size, args.size)
    } else {
        picture
    };
    let started = Instant::now();
    let engine =
        Engine::new(&EngineOptions::default()).context("cannot start the style network")?;
    let painted = paint_every_preset(&engine, &catalogue, &small)?;

    let name = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sheet = Sheet {
        title: format!("stylize presets on {name}"),
        subtitle: format!(
            "pick one with --style NAME (or preset:N) · painted at {}×{} on {}",
            small.width,
            small.height,
            engine.describe()
        ),
        columns: COLUMNS,
        tile_box: tile_box(small.width, small.height, TILE_LONG_SIDE),
        slots: preset_tiles(&catalogue, small, &painted),
    };
    let (png, layout) = to_png(&sheet)?;
    files::write_new(&output, &png, args.overwrite)?;
    println!(
        "wrote {} ({}×{}, the original and {} presets, in {:.1} s)",
        output.display(),
        layout.width,
        layout.height,
        painted.len(),
        started.elapsed().as_secs_f64()
    );
    for (path, image) in thumb_paths.iter().zip(&painted) {
        let thumb = resize_to_fit(image, THUMB_LONG_SIDE, THUMB_LONG_SIDE);
        files::write_new(path, &encode_jpeg(&thumb, THUMB_QUALITY)?, args.overwrite)?;
    }
    if let Some(dir) = &args.thumbs {
        println!(
            "wrote {} thumbnails into {}",
            thumb_paths.len(),
            dir.display()
        );
    }
    Ok(())
}

/// Where each preset's thumbnail goes with `--thumbs DIR` (none without), each checked free first.
fn thumb_paths(catalogue: &[Preset], args: &StylesArgs) -> Result<Vec<PathBuf>> {
    let Some(dir) = &args.thumbs else {
        return Ok(Vec::new());
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create folder", dir.display()))?;
    let paths: Vec<_> = catalogue
        .iter()
        .map(|p| dir.join(format!("{:02}-{}.jpg", p.index, p.name)))
        .collect();
    for path in &paths {
        files::check_free(path, args.overwrite)?;
    }
    Ok(paths)
}

fn paint_every_preset(
    engine: &Engine,
    catalogue: &[Preset],
    picture: &RgbImage,
) -> Result<Vec<RgbImage>> {
    let bar = ProgressBar::new(catalogue.len() as u64).with_style(
        ProgressStyle::with_template("painting presets [{bar:32.cyan/blue}] {pos}/{len}")
            .expect("valid template"),
    );
    let mut painted = Vec::with_capacity(catalogue.len());
    for preset in catalogue {
        let style = engine.prepare(
            &StyleSource::Presets(vec![(preset.index, 1.0)]),
            &StyleParams::default(),
            None,
        )?;
        let mut out = engine.stylize(&style, std::slice::from_ref(picture))?;
        painted.push(
            out.pop()
                .ok_or_else(|| anyhow!("the network returned no picture"))?,
        );
        bar.inc(1);
        if stylize_core::cancel::cancelled() {
            bail!("interrupted; nothing written");
        }
    }
    bar.finish_and_clear();
    Ok(painted)
}

/// The original first, then each preset labelled with its number and name.
fn preset_tiles(
    catalogue: &[Preset],
    original: RgbImage,
    painted: &[RgbImage],
) -> Vec<Option<Tile>> {
    let mut slots = vec![Some(Tile {
        image: original,
        prefix: String::new(),
        label: "original".into(),
        detail: String::new(),
        role: "original".into(),
    })];
    for (preset, image) in catalogue.iter().zip(painted) {
        slots.push(Some(Tile {
            image: image.clone(),
            prefix: preset.index.to_string(),
            label: preset.name.clone(),
            detail: String::new(),
            role: format!("preset:{}", preset.index),
        }));
    }
    slots
}

/// Sheets are PNG; a name promising another format would mislead.
pub fn require_png(path: &Path) -> Result<()> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if ext.as_deref() != Some("png") {
        bail!(
            "{}: sheets are written as PNG; name the file .png",
            path.display()
        );
    }
    Ok(())
}

/// A picture, or the frame in the middle of a video.
fn load_source(path: &Path) -> Result<RgbImage> {
    if !path.exists() {
        bail!("{}: no such file", path.display());
    }
    let is_picture = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map(|r| r.format().is_some())
        .unwrap_or(false);
    if is_picture {
        return stylize_core::style::load_picture(path);
    }
    let info = stylize_media::probe(path).map_err(|e| {
        anyhow!(
            "{}: neither a picture nor a readable video ({e})",
            path.display()
        )
    })?;
    let middle = info.frame_count.unwrap_or(1) / 2;
    let (_, frame) = frames::grab(&info, &[middle])?
        .pop()
        .expect("grab returns at least one frame");
    // Upright as a player shows it: the sheet and thumbnails are pictures, with no matrix to honour.
    Ok(displayed(frame, info.rotation_degrees))
}
