//! `stylize INPUT... --style X`: loads the network once, styles each input in turn, and reports every outcome.
use anyhow::{anyhow, Context, Result};
use stylize_media::VideoInfo;
use stylize_model::{Engine, PreparedStyle, RgbImage, StyleSource};

use crate::config::{LookConfig, RunConfig};
use crate::pipeline::{style_video, StyleForVideo, VideoOutcome};
use crate::progress::{clock, Progress};

/// Loads the engine for a look and prepares the style when it does not depend on the content.
pub struct LoadedLook {
    pub engine: Engine,
    pub shared: Option<PreparedStyle>,
    look: LookConfig,
}

impl LoadedLook {
    pub fn load(look: &LookConfig) -> Result<Self> {
        let engine = Engine::new(&look.engine).context("cannot start the style network")?;
        // Only an image style at partial strength needs the video's own content; everything else
        // is computed once for the whole run.
        let needs_content =
            matches!(look.style, StyleSource::Image(_)) && look.params.strength < 1.0;
        let shared = if needs_content {
            None
        } else {
            Some(
                engine
                    .prepare(&look.style, &look.params, None)
                    .with_context(|| format!("style {}", look.style_spec))?,
            )
        };
        Ok(LoadedLook {
            engine,
            shared,
            look: look.clone(),
        })
    }

    pub fn prepare_for(&self, first_frame: &RgbImage) -> Result<PreparedStyle> {
        self.engine
            .prepare(&self.look.style, &self.look.params, Some(first_frame))
            .with_context(|| format!("style {}", self.look.style_spec))
    }

    pub fn style_video(
        &self,
        info: &VideoInfo,
        plan: &crate::output::OutputPlan,
        compare: Option<&crate::output::OutputPlan>,
        encode: &stylize_media::EncodeOptions,
        progress: &Progress,
    ) -> Result<VideoOutcome> {
        let prepare = |frame: &RgbImage| self.prepare_for(frame);
        let style = match &self.shared {
            Some(prepared) => StyleForVideo::Ready(prepared),
            None => StyleForVideo::FromFirstFrame(&prepare),
        };
        style_video(&self.engine, style, info, plan, compare, encode, progress)
    }
}

/// An input that passed the checks made before any work, with where its outputs go.
pub struct CheckedInput {
    pub info: VideoInfo,
    pub plan: crate::output::OutputPlan,
    /// The side-by-side video's plan, with `--compare`.
    pub side: Option<crate::output::OutputPlan>,
}

/// Probes every input and plans its outputs (with `compare`, the side-by-side video too), so a bad
/// input or a clash is told before the network is loaded or anything is uploaded.
pub fn check_inputs(config: &RunConfig, compare: bool) -> Vec<Result<CheckedInput>> {
    // Side-by-side names must not collide with any styled output of this run either.
    let mut claimed: Vec<std::path::PathBuf> = config
        .jobs
        .iter()
        .filter_map(|j| j.plan.as_ref().ok())
        .map(|p| p.final_path.clone())
        .collect();
    let mut checked = Vec::new();
    for job in &config.jobs {
        let mut check = || {
            // The input's own problem first: a mistyped path is told as such, not as the
            // missing folder its default output would go to.
            if !job.input.exists() {
                anyhow::bail!("{}: no such file", job.input.display());
            }
            if job.input.is_dir() {
                anyhow::bail!(
                    "{}: folder holds no videos ({})",
                    job.input.display(),
                    crate::config::VIDEO_EXTENSIONS.join(", ")
                );
            }
            let plan = job.plan.clone().map_err(|e| anyhow!(e))?;
            let side = if compare {
                let side = crate::showcase::compare::plan_for(&job.input, &plan, &claimed)?;
                // With --overwrite the side-by-side video could otherwise replace another input.
                let inputs = config.jobs.iter().map(|j| j.input.as_path());
                crate::output::refuse_to_replace(
                    &side.final_path,
                    "side-by-side video",
                    "input",
                    inputs,
                )?;
                claimed.push(side.final_path.clone());
                Some(side)
            } else {
                None
            };
            let info = stylize_media::probe(&job.input)?;
            Ok(CheckedInput { info, plan, side })
        };
        checked.push(check());
    }
    checked
}

/// Runs every job; returns the process exit code (0 only if every input succeeded).
/// With `compare`, each input also gets its side-by-side video (`--compare`).
pub fn run(config: RunConfig, compare: bool) -> Result<i32> {
    let progress = Progress::new(config.quiet);
    // Refuse bad inputs before paying for the network: probe everything first.
    let probed = check_inputs(&config, compare);
    let mut results: Vec<Result<VideoOutcome>> = Vec::new();
    if probed.iter().any(|p| p.is_ok()) {
        let loaded = LoadedLook::load(&config.look)?;
        let style_label = crate::style::describe(&config.look.style_spec, &config.look.style);
        for checked in probed {
            if crate::pipeline::cancelled() {
                results.push(Err(anyhow!("interrupted")));
                continue;
            }
            let outcome = checked.and_then(|CheckedInput { info, plan, side }| {
                let outcome =
                    loaded.style_video(&info, &plan, side.as_ref(), &config.encode, &progress)?;
                let side_note = side
                    .map(|s| format!(" (side by side: {})", s.final_path.display()))
                    .unwrap_or_default();
                progress.say(&format!(
                    "{} → {}{side_note}: {} frames in {} ({:.1} fps), style {}, {}",
                    info.path.display(),
                    outcome.output.display(),
                    outcome.frames,
                    clock(outcome.elapsed),
                    outcome.frames as f64 / outcome.elapsed.as_secs_f64().max(1e-9),
                    style_label,
                    loaded.engine.describe()
                ));
                Ok(outcome)
            });
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
