//! `stylize INPUT... --style X`: loads the network once, styles each input in turn, and reports every outcome.
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Result};
use stylize_core::cancel::cancelled;
use stylize_core::inputs::{check_inputs, CheckedInput, RunConfig};
use stylize_core::look::LoadedLook;
use stylize_core::pipeline::{style_video, VideoOutcome};
use stylize_core::units::clock;

use crate::progress::Progress;

/// Runs every job; returns the process exit code (0 only if every input succeeded).
/// With `compare`, each input also gets its side-by-side video (`--compare`).
pub fn run(config: RunConfig, compare: bool, quiet: bool) -> Result<i32> {
    let progress = Progress::new(quiet);
    // Refuse bad inputs before paying for the network: probe everything first.
    let probed = check_inputs(&config, compare);
    let mut results: Vec<Result<VideoOutcome>> = Vec::new();
    if probed.iter().any(|p| p.is_ok()) {
        let loaded = LoadedLook::load(&config.look)?;
        for checked in probed {
            if cancelled() {
                results.push(Err(anyhow!("interrupted")));
                continue;
            }
            let outcome = checked.and_then(|c| style_one(&loaded, &config, c, &progress));
            if let Err(e) = &outcome {
                eprintln!("error: {e:#}");
            }
            results.push(outcome);
        }
    } else {
        for checked in probed {
            let e = checked.err().expect("all inputs failed");
            eprintln!("error: {e:#}");
            results.push(Err(e));
        }
    }
    if config.jobs.len() > 1 && !progress.is_quiet() {
        print_table(&config, &results);
    }
    Ok(if results.iter().all(|r| r.is_ok()) {
        0
    } else {
        1
    })
}

fn style_one(
    loaded: &LoadedLook,
    config: &RunConfig,
    CheckedInput { info, plan, side }: CheckedInput,
    progress: &Progress,
) -> Result<VideoOutcome> {
    let outcome = style_video(
        loaded,
        &info,
        &plan,
        side.as_ref(),
        &config.encode,
        progress,
    )?;
    let side = side.as_ref().map(|s| s.final_path.as_path());
    let done = summary(
        &info.path,
        &outcome.output,
        side,
        outcome.frames,
        outcome.elapsed,
    );
    progress.say(&format!(
        "{done}, style {}, {}, {}",
        config.look.label(),
        config.look.painting(),
        loaded.engine.describe()
    ));
    Ok(outcome)
}

/// `in.mp4 → out.mp4 (side by side: …): 120 frames in 0:21 (5.7 fps)`: the start of the line
/// local and cloud runs both print for each finished video.
pub fn summary(
    input: &Path,
    output: &Path,
    side: Option<&Path>,
    frames: u64,
    elapsed: Duration,
) -> String {
    let side_note = side
        .map(|s| format!(" (side by side: {})", s.display()))
        .unwrap_or_default();
    format!(
        "{} → {}{side_note}: {frames} frames in {} ({:.1} fps)",
        input.display(),
        output.display(),
        clock(elapsed),
        frames as f64 / elapsed.as_secs_f64().max(1e-9),
    )
}

fn print_table(config: &RunConfig, results: &[Result<VideoOutcome>]) {
    let width = config
        .jobs
        .iter()
        .map(|j| j.input.display().to_string().len())
        .max()
        .unwrap_or(5)
        .max(5);
    eprintln!("\n{:<width$}  {:<6}  detail", "input", "status");
    for (job, result) in config.jobs.iter().zip(results) {
        let (status, detail) = match result {
            Ok(o) => (
                "ok",
                format!(
                    "{} ({} frames, {})",
                    o.output.display(),
                    o.frames,
                    clock(o.elapsed)
                ),
            ),
            Err(e) => ("FAILED", format!("{e:#}")),
        };
        eprintln!("{:<width$}  {:<6}  {}", job.input.display(), status, detail);
    }
    let failed = results.iter().filter(|r| r.is_err()).count();
    eprintln!(
        "{} of {} inputs styled, {} failed",
        results.len() - failed,
        results.len(),
        failed
    );
}
