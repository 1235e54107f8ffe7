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
    /// List the built-in style presets; with --sheet, paint a picture in every one of them
    Styles(StylesArgs),
    /// Reproduce the reference sample: style the orangutan clip (or the bundled sample offline;
    /// default style: the starry-blue preset) into a styled video, a side-by-side video and a contact sheet
    Demo(DemoArgs),
    /// Style a few frames spread through a video, in seconds, into a before/after sheet
    Preview(PreviewArgs),
    /// Take styling jobs from the cloud queue until stopped (run one per GPU)
    Worker(crate::cloud::WorkerArgs),
    /// List cloud runs and their progress, or delete one (`runs clean RUN`)
    Runs(crate::cloud::RunsArgs),
}

#[derive(Debug, Args)]
pub struct StylesArgs {
    /// Print the list as JSON
    #[arg(long)]
    pub json: bool,
    /// Paint this picture (or a frame from the middle of this video) in every preset, as one labelled grid
    #[arg(long, value_name = "PICTURE")]
    pub sheet: Option<PathBuf>,
    /// Where the sheet goes (default: `<picture>.styles.png` beside the picture)
    #[arg(short, long, value_name = "FILE", requires = "sheet")]
    pub output: Option<PathBuf>,
    /// Replace existing files
    #[arg(long, requires = "sheet")]
    pub overwrite: bool,
    /// Long side, in pixels, at which the presets paint the picture (the sheet shows it smaller)
    #[arg(long, default_value_t = 512, value_name = "PIXELS", requires = "sheet")]
    pub size: u32,
    /// Also write one small JPEG per preset into this folder (how styles/thumbs is made)
    #[arg(long, value_name = "DIR", requires = "sheet", hide = true)]
    pub thumbs: Option<PathBuf>,
}

/// Everything that shapes how frames are styled; shared by local and cloud runs.
#[derive(Debug, Args, Clone)]
pub struct LookArgs {
    /// A picture (JPEG/PNG/WebP/...), a preset (`preset:N` or a name from `stylize styles`),
    /// or a blend of presets (`preset:3=0.7,preset:12=0.3`)
    #[arg(short, long, value_name = "STYLE")]
    pub style: Option<String>,
    /// How much style to apply, 0 to 1. Presets: 0 is the original frame. Pictures: 0 repaints the
    /// video in its own style (the network's convention), 1 in the picture's
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
    /// Numeric precision (auto: bf16 on CPUs with native bf16 such as AMX, else fp32; fp16 on CUDA)
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
    /// Also write a side-by-side video (original | styled, original audio) beside each output,
    /// named `<output>.compare.<ext>`
    #[arg(long)]
    pub compare: bool,
    #[command(flatten)]
    pub encode: EncodeArgs,
    /// No progress bar and no summary
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub cloud: crate::cloud::CloudArgs,
}

/// How the styled video is encoded (shared by runs and the demo).
#[derive(Debug, Args, Clone)]
pub struct EncodeArgs {
    /// x264 constant rate factor (lower is better quality, larger files)
    #[arg(long, default_value_t = stylize_media::EncodeOptions::default().crf, value_name = "0..51")]
    pub crf: f32,
    /// x264 preset (ultrafast .. placebo)
    #[arg(long, default_value_t = stylize_media::EncodeOptions::default().preset)]
    pub preset: String,
    /// Output pixel format; yuv420p plays everywhere but cannot hold odd sizes
    /// (they lose their last column/row), yuv444p keeps every size exactly
    #[arg(long, value_enum, default_value_t = PixelFormatArg::Yuv420p)]
    pub pixel_format: PixelFormatArg,
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

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The style (default: the demo's preset); anything `--style` takes in a normal run
    #[command(flatten)]
    pub look: LookArgs,
    /// Folder for the styled video, the side-by-side video and the contact sheet (created if missing)
    #[arg(long, value_name = "DIR", default_value = "stylize-demo")]
    pub out_dir: PathBuf,
    /// Replace existing output files
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub encode: EncodeArgs,
    /// Do not try to download the reference clip; use the bundled sample
    #[arg(long)]
    pub offline: bool,
    /// Where the reference clip is downloaded from
    #[arg(long, value_name = "URL", default_value = crate::showcase::demo::REFERENCE_URL)]
    pub url: String,
    /// Style only the first N frames (quick checks and tests)
    #[arg(long, value_name = "N", hide = true)]
    pub frames: Option<u64>,
    /// Fetch or generate the demo clip, print its path, and stop
    #[arg(long, hide = true)]
    pub print_input: bool,
    /// No progress bars
    #[arg(short, long)]
    pub quiet: bool,
    /// With --cloud, style through storage and `stylize worker` processes instead of here
    #[command(flatten)]
    pub cloud: crate::cloud::CloudArgs,
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The video to preview
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// A picture, a preset (`preset:N` or a name from `stylize styles`), or a blend, as in a full run
    #[arg(short, long, value_name = "STYLE", required = true)]
    pub style: String,
    /// Strengths to show side by side, 0 to 1: repeat the option or separate values with commas
    #[arg(long, value_delimiter = ',', default_value = "1", value_name = "0..1")]
    pub strength: Vec<f32>,
    /// Keep the original colours; take only texture and brightness from the style
    #[arg(long)]
    pub preserve_colors: bool,
    /// Cap the long side for styling, as in a full run
    #[arg(long, value_name = "PIXELS")]
    pub max_size: Option<u32>,
    /// How many moments of the video to show, spread evenly through it
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub frames: usize,
    /// Where the sheet goes (default: `<input>.preview.png` beside the input)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace an existing sheet
    #[arg(long)]
    pub overwrite: bool,
    /// Where to run the network
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// Numeric precision (auto: bf16 on CPUs that compute it natively, fp16 on CUDA)
    #[arg(long, value_enum, default_value_t = PrecisionArg::Auto)]
    pub precision: PrecisionArg,
    /// CPU threads for the network (default: all cores)
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Print only where the sheet went
    #[arg(short, long)]
    pub quiet: bool,
}
