//! A run's inputs: folders expanded to videos, each input's output planned, and every input probed before any work.
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use stylize_media::{EncodeOptions, VideoInfo};

use crate::look::LookConfig;
use crate::output::{refuse_to_replace, OutputPlan, DEFAULT_SUFFIX, TEMP_MARK};

/// Extensions picked up when a folder is given as an input.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "ts", "mts", "flv", "wmv",
];

/// Where a run's outputs go, as asked for.
#[derive(Debug, Clone, Default)]
pub struct OutputRequest {
    /// One output file (one input only).
    pub output: Option<PathBuf>,
    /// A folder for the outputs, created if missing.
    pub out_dir: Option<PathBuf>,
    /// Replace existing outputs.
    pub overwrite: bool,
}

/// A whole `stylize INPUT... --style X` invocation, validated.
#[derive(Debug)]
pub struct RunConfig {
    pub look: LookConfig,
    pub jobs: Vec<VideoJob>,
    pub encode: EncodeOptions,
}

/// One input and where its output goes, or why it was refused before any work.
#[derive(Debug)]
pub struct VideoJob {
    pub input: PathBuf,
    pub plan: Result<OutputPlan, String>,
}

/// Expands the inputs and plans every output, so two inputs never write one file and no output
/// replaces another input of the run.
pub fn plan_run(
    inputs: &[PathBuf],
    outputs: &OutputRequest,
    look: LookConfig,
    encode: EncodeOptions,
) -> Result<RunConfig> {
    let inputs = expand_inputs(inputs)?;
    if outputs.output.is_some() && inputs.len() > 1 {
        bail!(
            "-o/--output names one file but {} inputs were given: use --out-dir",
            inputs.len()
        );
    }
    if let Some(dir) = &outputs.out_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create output folder", dir.display()))?;
    }
    let mut jobs = Vec::new();
    let mut claimed: Vec<PathBuf> = Vec::new();
    for input in &inputs {
        let plan = OutputPlan::new(
            encode.codec,
            input,
            outputs.output.as_deref(),
            outputs.out_dir.as_deref(),
            outputs.overwrite,
            &claimed,
        )
        .and_then(|plan| {
            // With --overwrite an output could otherwise replace a later input of the same run.
            let inputs = inputs.iter().map(PathBuf::as_path);
            refuse_to_replace(&plan.final_path, "output", "input", inputs)?;
            Ok(plan)
        })
        .map_err(|e| format!("{e:#}"));
        if let Ok(plan) = &plan {
            claimed.push(plan.final_path.clone());
        }
        jobs.push(VideoJob {
            input: input.clone(),
            plan,
        });
    }
    Ok(RunConfig { look, jobs, encode })
}

/// Folders expand to the videos directly inside them (sorted); files are kept as given, even missing
/// ones, and so is a folder with no videos: each gets its own error line instead of stopping the batch.
fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("{}: cannot list folder", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && has_video_extension(p) && !is_our_own_file(p))
                .collect();
            found.sort();
            if found.is_empty() {
                out.push(input.clone()); // reported as "folder holds no videos" when probed
            }
            out.extend(found);
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

fn has_video_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Earlier outputs and temporaries in the same folder are not inputs: re-running `stylize clips/`
/// must not style the styled videos.
fn is_our_own_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.contains(TEMP_MARK) || n.contains(DEFAULT_SUFFIX))
}

/// An input that passed the checks made before any work, with where its outputs go.
pub struct CheckedInput {
    pub info: VideoInfo,
    pub plan: OutputPlan,
    /// The side-by-side video's plan, with `--compare`.
    pub side: Option<OutputPlan>,
}

/// Probes every input and plans its outputs (with `compare`, the side-by-side video too), so a bad
/// input or a clash is told before the network is loaded or anything is uploaded.
pub fn check_inputs(config: &RunConfig, compare: bool) -> Vec<Result<CheckedInput>> {
    // Side-by-side names must not collide with any styled output of this run either.
    let mut claimed: Vec<PathBuf> = config
        .jobs
        .iter()
        .filter_map(|j| j.plan.as_ref().ok())
        .map(|p| p.final_path.clone())
        .collect();
    let inputs: Vec<&Path> = config.jobs.iter().map(|j| j.input.as_path()).collect();
    config
        .jobs
        .iter()
        .map(|job| check_input(job, compare, &inputs, &mut claimed))
        .collect()
}

fn check_input(
    job: &VideoJob,
    compare: bool,
    inputs: &[&Path],
    claimed: &mut Vec<PathBuf>,
) -> Result<CheckedInput> {
    // The input's own problem first: a mistyped path is told as such, not as the
    // missing folder its default output would go to.
    if !job.input.exists() {
        bail!("{}: no such file", job.input.display());
    }
    if job.input.is_dir() {
        bail!(
            "{}: folder holds no videos ({})",
            job.input.display(),
            VIDEO_EXTENSIONS.join(", ")
        );
    }
    let plan = job.plan.clone().map_err(|e| anyhow!(e))?;
    let side = if compare {
        let side = crate::compare::plan_for(&job.input, &plan, claimed)?;
        // With --overwrite the side-by-side video could otherwise replace another input.
        refuse_to_replace(
            &side.final_path,
            "side-by-side video",
            "input",
            inputs.iter().copied(),
        )?;
        claimed.push(side.final_path.clone());
        Some(side)
    } else {
        None
    };
    let info = stylize_media::probe(&job.input)?;
    Ok(CheckedInput { info, plan, side })
}
