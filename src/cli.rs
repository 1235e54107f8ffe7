//! Command-line surface: the clap structs and nothing else (validation lives in `config`).
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "stylize",
    version,
    about = "Repaint a whole video in the style of a picture",
    long_about = "Repaint a whole video in the style of a picture.\n\n\
        Examples:\n  stylize input.mp4 --style vangogh.jpg\n  stylize input.mp4 --style preset:7 -o out.mkv\n  \
        stylize a.mp4 b.mov clips/ --style preset:3=0.7,preset:12=0.3 --out-dir styled/",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub style: StyleArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the built-in style presets
    Styles(StylesArgs),
}

#[derive(Debug, Args)]
pub struct StylesArgs {
    /// Print the list as JSON
    #[arg(long)]
    pub json: bool,
}

/// Everything that shapes how frames are styled; shared by local runs and (later) previews.
#[derive(Debug, Args, Clone)]
pub struct LookArgs {
    /// A picture (JPEG/PNG/WebP/...), a preset (`preset:N` or a name from `stylize styles`),
    /// or a blend of presets (`preset:3=0.7,preset:12=0.3`)
    #[arg(short, long, value_name = "STYLE")]
    pub style: Option<String>,
    /// How much style to apply, 0 (none) to 1 (full)
    #[arg(long, default_value_t = 1.0, value_name = "0..1")]
    pub strength: f32,
    /// Keep the original colours; take only texture and brightness from the style
    #[arg(long)]
    pub preserve_colors: bool,
    /// Cap the long side for styling (then scale back to the original size); faster, coarser
    #[arg(long, value_name = "PIXELS")]
    pub max_size: Option<u32>,
    /// Where to run the network
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// Numeric precision (auto: bf16 on CPUs, fp16 on CUDA)
    #[arg(long, value_enum, default_value_t = PrecisionArg::Auto)]
    pub precision: PrecisionArg,
    /// CPU threads for the network (default: all cores)
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

#[derive(Debug, Args, Clone)]
pub struct StyleArgs {
    /// Videos or folders of videos to style
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub look: LookArgs,
    /// Output file (one input only); default: `<input>.styled.<ext>` beside the input
    #[arg(short, long, value_name = "FILE", conflicts_with = "out_dir")]
    pub output: Option<PathBuf>,
    /// Folder for the outputs (created if missing); names follow the inputs
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Replace an existing output file
    #[arg(long)]
    pub overwrite: bool,
    /// x264 constant rate factor (lower is better quality, larger files)
    #[arg(long, default_value_t = 18.0, value_name = "0..51")]
    pub crf: f32,
    /// x264 preset (ultrafast .. placebo)
    #[arg(long, default_value = "fast")]
    pub preset: String,
    /// Output pixel format; yuv420p plays everywhere but cannot hold odd sizes
    /// (they lose their last column/row), yuv444p keeps every size exactly
    #[arg(long, value_enum, default_value_t = PixelFormatArg::Yuv420p)]
    pub pixel_format: PixelFormatArg,
    /// No progress bar and no summary
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DeviceArg {
    Auto,
    Cpu,
    Cuda,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PrecisionArg {
    Auto,
    Fp32,
    Bf16,
    Fp16,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PixelFormatArg {
    Yuv420p,
    Yuv444p,
}
