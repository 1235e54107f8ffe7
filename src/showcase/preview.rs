//! `stylize preview INPUT --style X`: a few frames spread through the video, styled in seconds, as a before/after sheet.
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use stylize_media::VideoInfo;
use stylize_model::{Engine, PreparedStyle, RgbImage};
use stylize_motion::Steadier;

use stylize_core::look::LookConfig;
use stylize_core::sheet::canvas::{displayed_size, quarter_turns, rotate_ccw};
use stylize_core::sheet::{tile_box, to_png, Sheet, Tile};
use stylize_core::{files, frames};

use crate::cli::{LookArgs, PreviewArgs};
use crate::config::look_config;

const MAX_FRAMES: usize = 12;
const MAX_STRENGTHS: usize = 6;

pub fn run(args: &PreviewArgs) -> Result<()> {
    let looks = looks_for(args)?;
    if !args.input.exists() {
        bail!("{}: no such file", args.input.display());
    }
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| files::sibling(&args.input, ".preview.png"));
    super::presets::require_png(&output)?;
    let sources = [args.input.as_path(), Path::new(&args.style)];
    stylize_core::output::refuse_to_replace(&output, "preview sheet", "its own source", sources)?;
    files::check_free(&output, args.overwrite)?;
    let info = stylize_media::probe(&args.input)?;

    let started = Instant::now();
    // Checked with the rest of the look (the same for every strength).
    let steady = looks[0].steady;
    let (first, runs) = grab_moments(&info, args.frames, steady)?;
    let engine = Engine::new(&looks[0].engine).context("cannot start the style network")?;
    let prepared = looks
        .iter()
        .map(|look| look.prepare(&engine, Some(&first)))
        .collect::<Result<Vec<PreparedStyle>>>()?;
    // Styled as decoded, like the full run (which keeps the rotation as metadata); turned to the
    // displayed orientation only for the sheet.
    let turns = quarter_turns(info.rotation_degrees);
    let rows = style_rows(&engine, &prepared, &runs, steady, turns)?;
    let elapsed = started.elapsed();
    let styled_frames: usize = runs.iter().map(|(_, run)| run.len()).sum::<usize>() * rows.len();
    let originals: Vec<(u64, RgbImage)> = runs
        .into_iter()
        .filter_map(|(i, mut run)| run.pop().map(|f| (i, rotate_ccw(f, turns))))
        .collect();

    let row_labels: Vec<String> = if args.strength.len() == 1 && args.strength[0] == 1.0 {
        vec!["styled".into()]
    } else {
        args.strength
            .iter()
            .map(|s| format!("strength {s}"))
            .collect()
    };
    let title = format!(
        "stylize preview: {} with {}",
        file_name(&args.input),
        looks[0].label()
    );
    let subtitle = format!(
        "{} · {:.1} s to style {} frames on {}",
        describe_video(&info),
        elapsed.as_secs_f64(),
        styled_frames,
        engine.describe()
    );
    let sheet = build_sheet(&info, &title, &subtitle, &originals, &row_labels, rows);
    let (png, layout) = to_png(&sheet)?;
    files::write_new(&output, &png, args.overwrite)?;
    println!(
        "wrote {} ({}×{}: {} moments × original + {} styled rows)",
        output.display(),
        layout.width,
        layout.height,
        originals.len(),
        row_labels.len()
    );
    if !args.quiet {
        eprintln!(
            "a full run styles every frame: stylize {} --style {}",
            args.input.display(),
            args.style
        );
    }
    Ok(())
}

/// One look per strength, validated exactly as a full run would validate it.
fn looks_for(args: &PreviewArgs) -> Result<Vec<LookConfig>> {
    if args.frames == 0 || args.frames > MAX_FRAMES {
        bail!(
            "--frames {} is out of range: show 1 to {MAX_FRAMES} moments",
            args.frames
        );
    }
    if args.strength.len() > MAX_STRENGTHS {
        bail!(
            "{} strengths given: compare at most {MAX_STRENGTHS} at once",
            args.strength.len()
        );
    }
    args.strength
        .iter()
        .map(|&strength| {
            look_config(&LookArgs {
                style: Some(args.style.clone()),
                strength,
                preserve_colors: args.preserve_colors,
                max_size: args.max_size,
                steady: args.steady,
                method: crate::cli::MethodArg::Fast,
                iterations: stylize_model::optimize::DEFAULT_ITERATIONS,
                engine: args.engine.clone(),
            })
        })
        .collect()
}

/// How many frames before each moment are styled first, so the steadier has strokes to carry and
/// the moment looks as it does in a full run.
const STEADY_RUNUP: u64 = 8;

/// A moment: its frame number and the frames up to and with it, run-up first.
type Moment = (u64, Vec<RgbImage>);

/// `moments` frames spread through the video (coded orientation), each with the frames before it
/// that the steadier runs up on (none at `--steady 0`), and the first frame: an image style below
/// full strength blends with the first frame's own style, as the full run does, so the preview
/// must use the same one.
fn grab_moments(info: &VideoInfo, moments: usize, steady: f32) -> Result<(RgbImage, Vec<Moment>)> {
    let picks = frames::spread(estimated_frames(info), moments);
    let runup = if steady > 0.0 { STEADY_RUNUP } else { 0 };
    let runs = frames::grab_runs(info, &picks, runup)?;
    let first = match runs.first() {
        Some((0, run)) => run[0].clone(),
        _ => frames::grab(info, &[0])?.remove(0).1,
    };
    Ok((first, runs))
}

/// Each prepared style applied to every moment (after its run-up, through the steadier): one row
/// per style, turned for display.
fn style_rows(
    engine: &Engine,
    prepared: &[PreparedStyle],
    runs: &[Moment],
    steady: f32,
    turns: u8,
) -> Result<Vec<Vec<RgbImage>>> {
    let mut rows = Vec::with_capacity(prepared.len());
    for style in prepared {
        let mut row = Vec::with_capacity(runs.len());
        for (_, run) in runs {
            let mut steadier = Steadier::at(steady);
            let mut last = None;
            for chunk in run.chunks(engine.preferred_batch().max(1)) {
                for (original, styled) in chunk.iter().zip(engine.stylize(style, chunk)?) {
                    last = Some(match steadier.as_mut() {
                        Some(steadier) => steadier.process(original, &styled)?.0,
                        None => styled,
                    });
                }
                if stylize_core::cancel::cancelled() {
                    bail!("interrupted; nothing written");
                }
            }
            let styled = last.ok_or_else(|| anyhow!("the network returned no picture"))?;
            row.push(rotate_ccw(styled, turns));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The before/after grid shared with the demo: one column per moment, the originals on the first
/// row, then one row per styled version (`row_labels` name them). Every picture comes already turned
/// to how a player shows `info` (see [`displayed`](stylize_core::sheet::canvas::displayed)), so tiles of rotated videos stand upright.
pub fn build_sheet(
    info: &VideoInfo,
    title: &str,
    subtitle: &str,
    originals: &[(u64, RgbImage)],
    row_labels: &[String],
    rows: Vec<Vec<RgbImage>>,
) -> Sheet {
    let columns = originals.len();
    let (w, h) = displayed_size(info.width, info.height, info.rotation_degrees);
    // Wide enough to judge brush strokes, narrow enough that the sheet fits a screen (~1600 px).
    let long_side = ((1600 - 56 - 16 * (columns as u32 - 1)) / columns as u32).clamp(160, 360);
    let mut slots = Vec::new();
    for (index, image) in originals {
        slots.push(Some(Tile {
            image: image.clone(),
            prefix: String::new(),
            label: "original".into(),
            detail: frames::timestamp(*index, info),
            role: "original".into(),
        }));
    }
    for (label, row) in row_labels.iter().zip(rows) {
        for ((index, _), image) in originals.iter().zip(row) {
            slots.push(Some(Tile {
                image,
                prefix: String::new(),
                label: label.clone(),
                detail: frames::timestamp(*index, info),
                role: "styled".into(),
            }));
        }
    }
    Sheet {
        title: title.into(),
        subtitle: subtitle.into(),
        columns,
        tile_box: tile_box(w, h, long_side),
        slots,
    }
}

/// `720×720 · 30 fps · 823 frames · 27.4 s`, with the size as displayed (what the tiles show).
pub fn describe_video(info: &VideoInfo) -> String {
    let (width, height) = displayed_size(info.width, info.height, info.rotation_degrees);
    let rate = info.frame_rate.as_f64();
    let rate = if (rate - rate.round()).abs() < 0.01 {
        format!("{rate:.0}")
    } else {
        format!("{rate:.2}")
    };
    let frames = match info.frame_count {
        Some(n) if info.frame_count_exact => format!("{n} frames"),
        Some(n) => format!("~{n} frames"),
        None => "? frames".into(),
    };
    format!(
        "{width}×{height} · {rate} fps · {frames} · {:.1} s",
        info.duration_secs
    )
}

/// The container's frame count, or duration × rate, or 1 when the file says neither.
fn estimated_frames(info: &VideoInfo) -> u64 {
    info.frame_count.unwrap_or_else(|| {
        (info.duration_secs * info.frame_rate.as_f64())
            .round()
            .max(1.0) as u64
    })
}

pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
