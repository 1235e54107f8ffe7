//! Turns parsed arguments into one validated run configuration: inputs, outputs, style and encoder settings.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use stylize_media::{EncodeOptions, PixelFormatChoice, X264_PRESETS};
use stylize_model::{DeviceChoice, EngineOptions, Precision, StyleParams, StyleSource};

use crate::cli::{DeviceArg, EncodeArgs, LookArgs, PixelFormatArg, PrecisionArg, StyleArgs};
use crate::output::OutputPlan;

/// Extensions picked up when a folder is given as an input.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "ts", "mts", "flv", "wmv",
];
/// Containers we write; anything else falls back to .mp4 for default names.
pub const OUTPUT_CONTAINERS: &[&str] = &["mp4", "mkv", "mov"];

/// How frames are styled: the network's placement, the style and its parameters.
#[derive(Debug, Clone)]
pub struct LookConfig {
    pub engine: EngineOptions,
    pub style_spec: String,
    pub style: StyleSource,
    pub params: StyleParams,
}

/// A whole `stylize INPUT... --style X` invocation, validated.
#[derive(Debug)]
pub struct RunConfig {
    pub look: LookConfig,
    pub jobs: Vec<VideoJob>,
    pub encode: EncodeOptions,
    pub quiet: bool,
}

/// One input and where its output goes, or why it was refused before any work.
#[derive(Debug)]
pub struct VideoJob {
    pub input: PathBuf,
    pub plan: Result<OutputPlan, String>,
}

/// Where and how the network runs, from the command-line choices (local runs and workers alike).
pub fn engine_options(
    device: DeviceArg,
    precision: PrecisionArg,
    threads: Option<usize>,
) -> Result<EngineOptions> {
    if let Some(threads) = threads {
        // More threads than cores only adds contention; far more can exhaust the machine.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if threads == 0 || threads > cores * 4 {
            bail!(
                "--threads {threads} is out of range: use 1 to {} on this machine ({cores} cores)",
                cores * 4
            );
        }
    }
    Ok(EngineOptions {
        device: match device {
            DeviceArg::Auto => DeviceChoice::Auto,
            DeviceArg::Cpu => DeviceChoice::Cpu,
            DeviceArg::Cuda => DeviceChoice::Cuda,
        },
        precision: match precision {
            PrecisionArg::Auto => Precision::Auto,
            PrecisionArg::Fp32 => Precision::F32,
            PrecisionArg::Bf16 => Precision::Bf16,
            PrecisionArg::Fp16 => Precision::F16,
        },
        threads,
    })
}

pub fn look_config(args: &LookArgs) -> Result<LookConfig> {
    if !(0.0..=1.0).contains(&args.strength) || args.strength.is_nan() {
        bail!(
            "--strength {} is out of range: use a value from 0 to 1",
            args.strength
        );
    }
    if let Some(size) = args.max_size {
        let min = stylize_model::MIN_MAX_SIZE;
        if size < min {
            bail!("--max-size {size} is too small: use {min} or more");
        }
    }
    let Some(style_spec) = args.style.clone() else {
        bail!("no style given: add --style PICTURE, --style preset:N, or a blend (see `stylize styles`)");
    };
    let style = crate::style::parse_style(&style_spec)?;
    Ok(LookConfig {
        engine: engine_options(args.device, args.precision, args.threads)?,
        style_spec,
        style,
        params: StyleParams {
            strength: args.strength,
            preserve_colors: args.preserve_colors,
            max_size: args.max_size,
        },
    })
}

/// `--crf`, `--preset` and `--pixel-format`, checked.
pub fn encode_options(args: &EncodeArgs) -> Result<EncodeOptions> {
    if !(0.0..=51.0).contains(&args.crf) {
        bail!("--crf {} is out of range: use 0 to 51", args.crf);
    }
    if !X264_PRESETS.contains(&args.preset.as_str()) {
        bail!(
            "--preset {:?} is not an x264 preset (use one of: {})",
            args.preset,
            X264_PRESETS.join(", ")
        );
    }
    Ok(EncodeOptions {
        crf: args.crf,
        preset: args.preset.clone(),
        pixel_format: match args.pixel_format {
            PixelFormatArg::Yuv420p => PixelFormatChoice::Yuv420p,
            PixelFormatArg::Yuv444p => PixelFormatChoice::Yuv444p,
        },
    })
}

pub fn run_config(args: &StyleArgs) -> Result<RunConfig> {
    let encode = encode_options(&args.encode)?;
    let look = look_config(&args.look)?;
    let inputs = expand_inputs(&args.inputs)?;
    if args.output.is_some() && inputs.len() > 1 {
        bail!(
            "-o/--output names one file but {} inputs were given: use --out-dir",
            inputs.len()
        );
    }
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create output folder", dir.display()))?;
    }
    let mut jobs = Vec::new();
    let mut claimed: Vec<PathBuf> = Vec::new();
    for input in &inputs {
        let plan = OutputPlan::new(
            input,
            args.output.as_deref(),
            args.out_dir.as_deref(),
            args.overwrite,
            &claimed,
        )
        .and_then(|plan| {
            // With --overwrite an output could otherwise replace a later input of the same run.
            let inputs = inputs.iter().map(PathBuf::as_path);
            crate::output::refuse_to_replace(&plan.final_path, "output", "input", inputs)?;
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
    Ok(RunConfig {
        look,
        jobs,
        encode,
        quiet: args.quiet,
    })
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
        .is_some_and(|n| n.contains(".stylize-tmp") || n.contains(crate::output::DEFAULT_SUFFIX))
}
