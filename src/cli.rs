//! Command-line surface: the clap structs and nothing else (validation and conversion into the core's options live in `config`).
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use stylize_core::cloud::grant::{DEFAULT_GRANT_HOURS, MAX_GRANT_HOURS};
use stylize_core::cloud::{
    DEFAULT_BATCH_DEADLINE_SECS, DEFAULT_MAX_DELIVERIES, DEFAULT_REQUEUE_AFTER_SECS,
    DEFAULT_STORAGE_PATIENCE_SECS, DEFAULT_TRANSFERS, DEFAULT_VISIBILITY_SECS,
};

/// The reference clip of the original demo (`stylize demo --url` replaces it).
pub const REFERENCE_URL: &str =
    "https://happypathspublic.blob.core.windows.net/videos/orangutan.mp4";

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
    Worker(WorkerArgs),
    /// Watch an inbox in storage: style each video uploaded there through the queue and its
    /// workers, and write the result, with its audio, to an outbox
    Watch(WatchArgs),
    /// List cloud runs and their progress, delete one (`runs clean RUN`), or issue workers a
    /// credential narrower than the account key (`runs grant`)
    Runs(RunsArgs),
    /// Score a styled video against its original: warping error (how steady), flicker and detail
    Measure(MeasureArgs),
    /// List the video codecs `--codec` can write with this build's FFmpeg, and their containers
    Codecs,
}

#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// The original video
    #[arg(value_name = "ORIGINAL")]
    pub original: PathBuf,
    /// The styled video (same frame size and count)
    #[arg(value_name = "STYLED")]
    pub styled: PathBuf,
    /// Also score style and content in VGG19 features against this style picture (on frames
    /// spread through the video)
    #[arg(long, value_name = "PICTURE")]
    pub style: Option<PathBuf>,
    /// With --style, how many frames to score
    #[arg(long, default_value_t = 8, value_name = "N", requires = "style")]
    pub style_frames: usize,
    /// Print the scores as JSON
    #[arg(long)]
    pub json: bool,
    /// No progress bar
    #[arg(short, long)]
    pub quiet: bool,
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
    /// How steady the strokes are, 0 to 1: the share of each frame's brush strokes carried along
    /// the original's motion from the frame before (0: every frame styled on its own, which shimmers)
    #[arg(long, default_value_t = stylize_motion::DEFAULT_STEADY, value_name = "0..1")]
    pub steady: f32,
    /// How each frame is painted: fast (the feed-forward network), or optimize (Gatys et al.:
    /// the network's picture optimised further with VGG19 until its style statistics match the
    /// style picture's; a closer style, minutes per frame on a CPU; needs a style picture). With
    /// --steady, each frame starts from the previous result carried along the motion and is held
    /// to it (Ruder et al.)
    #[arg(long, value_enum, default_value_t = MethodArg::Fast)]
    pub method: MethodArg,
    /// With --method optimize: L-BFGS iterations per frame
    #[arg(long, default_value_t = stylize_model::optimize::DEFAULT_ITERATIONS, value_name = "N")]
    pub iterations: usize,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Where and how the network runs (runs, the demo, previews and workers alike).
#[derive(Debug, Args, Clone)]
pub struct EngineArgs {
    /// Where to run the network
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// Numeric precision (auto: bf16 on CPUs that compute it natively, such as AVX-512 BF16 or
    /// AMX, else fp32; fp16 on CUDA)
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
    pub cloud: CloudArgs,
}

/// How the styled video is encoded (shared by runs and the demo).
#[derive(Debug, Args, Clone)]
pub struct EncodeArgs {
    /// Video codec: h264 (delivery, plays everywhere), hevc (x265; smaller), av1 (SVT-AV1;
    /// smallest), prores (prores_ks, for editing; .mov or .mkv), ffv1 (lossless archive; .mkv).
    /// `stylize codecs` lists what this build can write
    #[arg(long, value_enum, default_value_t = CodecArg::H264)]
    pub codec: CodecArg,
    /// With --codec prores: the profile (4444 keeps full chroma)
    #[arg(long, value_enum, default_value_t = ProResProfileArg::Hq)]
    pub prores_profile: ProResProfileArg,
    /// Constant rate factor on x264's scale (lower is better quality, larger files); x265 takes
    /// it as is, SVT-AV1 as CRF × 63/51; ProRes and FFV1 ignore it
    #[arg(long, default_value_t = stylize_media::EncodeOptions::default().crf, value_name = "0..51")]
    pub crf: f32,
    /// Preset, x264's names (ultrafast .. placebo); x265 takes them as they are, SVT-AV1 as its
    /// presets 12 .. 1; ProRes and FFV1 ignore it
    #[arg(long, default_value_t = stylize_media::EncodeOptions::default().preset)]
    pub preset: String,
    /// Output chroma and bit depth; yuv420p plays everywhere but cannot hold odd sizes (they
    /// lose their last column/row), yuv422p needs an even width, yuv444p keeps every size and
    /// colour detail exactly; the 10le forms are 10-bit. Default: yuv420p, except yuv444p for
    /// ffv1 (a lossless archive should not halve the chroma), widened to 10 bits for an input of
    /// more than 8 with hevc, av1 and ffv1 (h264 stays 8-bit for players: ask for
    /// yuv420p10le to get High 10); ProRes is always 10-bit 4:2:2 (4444: 4:4:4)
    #[arg(long, value_enum)]
    pub pixel_format: Option<PixelFormatArg>,
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
pub enum CodecArg {
    H264,
    Hevc,
    Av1,
    Prores,
    Ffv1,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ProResProfileArg {
    Proxy,
    Lt,
    Standard,
    Hq,
    #[value(name = "4444")]
    P4444,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum MethodArg {
    Fast,
    Optimize,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PixelFormatArg {
    Yuv420p,
    Yuv422p,
    Yuv444p,
    #[value(name = "yuv420p10le")]
    Yuv420p10,
    #[value(name = "yuv422p10le")]
    Yuv422p10,
    #[value(name = "yuv444p10le")]
    Yuv444p10,
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
    #[arg(long, value_name = "URL", default_value = REFERENCE_URL)]
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
    pub cloud: CloudArgs,
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
    /// How steady the strokes are, as in a full run (each moment is styled after a short run-up)
    #[arg(long, default_value_t = stylize_motion::DEFAULT_STEADY, value_name = "0..1")]
    pub steady: f32,
    /// How many moments of the video to show, spread evenly through it
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub frames: usize,
    /// Where the sheet goes (default: `<input>.preview.png` beside the input)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace an existing sheet
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Print only where the sheet went
    #[arg(short, long)]
    pub quiet: bool,
}

/// Options that send `stylize INPUT... --style X` to the cloud instead of styling locally.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Cloud (fan out over `stylize worker` processes)")]
pub struct CloudArgs {
    /// Style on remote workers through storage: `env` (reads $AZURE_STORAGE_CONNECTION_STRING),
    /// `env:VAR`, a connection string, `https://ACCOUNT.blob.core.windows.net[?SAS]`
    /// (no SAS: Entra ID), `UseDevelopmentStorage=true` (Azurite) or `dir:PATH` (a shared folder)
    #[arg(long, value_name = "STORAGE")]
    pub cloud: Option<String>,
    /// Blob container holding the runs [default: stylize, or Container= in the connection string]
    #[arg(long, value_name = "NAME", requires = "cloud")]
    pub container: Option<String>,
    /// Job queue; its dead-letter queue is NAME-poison [default: stylize-jobs, or Queue= in the connection string]
    #[arg(long, value_name = "NAME", requires = "cloud")]
    pub queue: Option<String>,
    /// Container for the styled frames and job markers, when they should not sit beside the inputs
    /// (e.g. inputs and outputs under separate grants) [default: the --container]
    #[arg(long, value_name = "NAME", requires = "cloud")]
    pub output_container: Option<String>,
    /// Frames per job [default: about 96 jobs per video, 8 to 240 frames each; steadied segments: at
    /// least 240, four times the warm-up each job styles before its range]
    #[arg(long, value_name = "N", requires = "cloud", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub frames_per_job: Option<u32>,
    /// How the video travels through storage: segments (pieces of the input's own bitstream up,
    /// each job's frames steadied and encoded by its worker, joined here by stream copy: the
    /// coordinator keeps up with many GPUs; --compare falls back to frames) or frames (every frame
    /// up and down as a picture, steadied and encoded here)
    #[arg(long, value_enum, default_value_t = TransportArg::Segments, requires = "cloud",
          env = "STYLIZE_TRANSPORT")]
    pub transport: TransportArg,
    /// With --transport frames, how frames travel: png (lossless, the cheapest to encode), webp (lossless,
    /// smaller for busy pictures, slower) or jpeg (quality 95: a third of the bytes, slightly lossy)
    #[arg(long, value_enum, default_value_t = FrameFormatArg::Png, requires = "cloud")]
    pub frame_format: FrameFormatArg,
    /// Blob transfers in flight at once
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TRANSFERS, requires = "cloud",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub transfers: u32,
    /// Upload the frames and queue the jobs, then exit; run the same command again to collect the video
    #[arg(long, requires = "cloud")]
    pub no_wait: bool,
    /// Seconds a job may show no progress before its message is presumed lost and it is queued
    /// again (sooner once later jobs were taken; each requeue doubles the wait)
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_REQUEUE_AFTER_SECS, requires = "cloud")]
    pub requeue_after: f64,
    /// Seconds the coordinator keeps retrying while storage is unreachable or throttling before it
    /// gives up (the run stays in storage either way)
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_STORAGE_PATIENCE_SECS, requires = "cloud")]
    pub storage_patience: f64,
}

/// `stylize worker`: takes jobs from the queue until told to stop.
#[derive(Debug, Args, Clone)]
pub struct WorkerArgs {
    /// Storage holding the runs and the queue (same forms as the main command's --cloud)
    #[arg(long, value_name = "STORAGE")]
    pub cloud: String,
    /// Blob container holding the runs [default: stylize, or Container= in the connection string]
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    /// Job queue [default: stylize-jobs, or Queue= in the connection string]
    #[arg(long, value_name = "NAME")]
    pub queue: Option<String>,
    /// Name used in logs and done markers [default: the host name]
    #[arg(long, value_name = "ID")]
    pub worker_id: Option<String>,
    /// Exit after this many jobs
    #[arg(long, value_name = "N")]
    pub max_jobs: Option<u64>,
    /// Exit once the queue has had nothing for this many seconds (for pools that scale down)
    #[arg(long, value_name = "SECS")]
    pub idle_exit: Option<f64>,
    /// Seconds a taken job stays hidden from other workers; renewed while the job runs, so it
    /// only sets how soon the job of a worker that died goes to another
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_VISIBILITY_SECS,
          value_parser = clap::value_parser!(u64).range(3..=7 * 24 * 3600))]
    pub visibility_timeout: u64,
    /// Deliveries of one job before it is marked failed and moved to the poison queue
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_DELIVERIES,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_deliveries: u32,
    /// On SIGTERM, seconds to finish the current job before handing it back to the queue
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    pub drain_timeout: f64,
    /// Seconds one batch may spend in the network before the worker calls the device hung: it
    /// hands the job back and exits, so its supervisor restarts it
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_BATCH_DEADLINE_SECS)]
    pub batch_deadline: f64,
    /// Blob transfers in flight at once
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TRANSFERS,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub transfers: u32,
    /// Seconds between queue polls while the queue is empty
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub poll_interval: f64,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// TEST ONLY: instead of the network, sleep MS milliseconds per frame and invert the colours
    /// (measures coordination overhead without a GPU; see scripts/bench-cloud.sh)
    #[arg(long, value_name = "MS", hide_short_help = true)]
    pub test_stylizer_ms: Option<u64>,
    /// TEST ONLY: the test stylizer fails every batch as a broken GPU would
    #[arg(long, hide = true, requires = "test_stylizer_ms")]
    pub test_stylizer_fault: bool,
}

/// `stylize watch`: an inbox in, an outbox out, until stopped.
#[derive(Debug, Args, Clone)]
pub struct WatchArgs {
    /// Storage holding the inbox, the outbox, the runs and the queue (same forms as the main
    /// command's --cloud)
    #[arg(long, value_name = "STORAGE")]
    pub cloud: String,
    /// Where videos are uploaded: CONTAINER or CONTAINER/PREFIX. Each video's style comes from
    /// its folder (a preset name such as `starry-blue/clip.mp4`, or a folder holding
    /// `style.jpg`) and from a `clip.mp4.json` uploaded beside it (run options by their long
    /// names: {"style": "preset:3", "strength": 0.8, "codec": "hevc"}), which wins
    #[arg(long, value_name = "CONTAINER[/PREFIX]")]
    pub inbox: String,
    /// Where styled videos go, under the same names (an existing blob the watcher did not write
    /// is kept: the result takes `NAME-2.mp4`)
    #[arg(long, value_name = "CONTAINER[/PREFIX]")]
    pub outbox: String,
    /// The storage queue Event Grid delivers the inbox's BlobCreated events to: new uploads are
    /// seen at once, and the inbox is listed only every --poll as a catch-up
    #[arg(long, value_name = "QUEUE")]
    pub events: Option<String>,
    /// Seconds between listings of the inbox [default: 5; with --events, 300]
    #[arg(long, value_name = "SECS")]
    pub poll: Option<f64>,
    /// Seconds a new video must keep its size before it is taken (a file still being copied in
    /// grows; a sidecar uploaded just after its video is still read)
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub settle: f64,
    /// Videos styled at once (each is its own run on the shared queue)
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrent: u32,
    /// Style what the inbox holds now, then exit (for cron jobs and tests)
    #[arg(long)]
    pub once: bool,
    /// Where videos are downloaded and styled [default: the system's temporary folder]
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Default look for videos whose folder and sidecar do not set it
    #[command(flatten)]
    pub look: LookArgs,
    #[command(flatten)]
    pub encode: EncodeArgs,
    /// Blob container holding the runs and the watcher's ledger [default: stylize, or Container= in the connection string]
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    /// Job queue [default: stylize-jobs, or Queue= in the connection string]
    #[arg(long, value_name = "NAME")]
    pub queue: Option<String>,
    /// Container for the styled frames and job markers, as for a --cloud run
    #[arg(long, value_name = "NAME")]
    pub output_container: Option<String>,
    /// How videos travel through storage, as for a --cloud run
    #[arg(long, value_enum, default_value_t = TransportArg::Segments, env = "STYLIZE_TRANSPORT")]
    pub transport: TransportArg,
    /// Frames per job, as for a --cloud run
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub frames_per_job: Option<u32>,
    /// Blob transfers in flight at once, per video
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TRANSFERS,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub transfers: u32,
    /// Seconds a job may show no progress before it is queued again, as for a --cloud run
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_REQUEUE_AFTER_SECS)]
    pub requeue_after: f64,
    /// Seconds a video's run rides out unreachable storage before it is tried again later
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_STORAGE_PATIENCE_SECS)]
    pub storage_patience: f64,
}

/// `stylize runs`: what is in storage.
#[derive(Debug, Args, Clone)]
#[command(args_conflicts_with_subcommands = false)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub action: Option<RunsAction>,
    /// Storage holding the runs (same forms as the main command's --cloud)
    #[arg(long, value_name = "STORAGE", global = true)]
    pub cloud: Option<String>,
    /// Blob container holding the runs
    #[arg(long, value_name = "NAME", global = true)]
    pub container: Option<String>,
    /// Job queue (its depth is shown with the listing)
    #[arg(long, value_name = "NAME", global = true)]
    pub queue: Option<String>,
    /// Print the listing as JSON
    #[arg(long)]
    pub json: bool,
    /// With --json: every done job's worker, duration and finish time (one read per job)
    #[arg(long, requires = "json")]
    pub details: bool,
}

#[derive(Debug, Subcommand, Clone)]
pub enum RunsAction {
    /// Delete a run's blobs (frames, styled frames, markers, manifest); workers then drop its queued jobs
    Clean {
        /// The run id, as `stylize runs` lists it
        #[arg(value_name = "RUN", required = true)]
        runs: Vec<String>,
    },
    /// Queue a run's unfinished jobs again, failed ones included (after the queue was cleared,
    /// or to send the run to another queue with --queue); needs no input video
    Requeue {
        /// The run id, as `stylize runs` lists it
        #[arg(value_name = "RUN", required = true)]
        runs: Vec<String>,
    },
    /// Print a connection string that lets workers do only a worker's job (read the run container,
    /// read and write the output container, take jobs, move them aside), signed with the account
    /// key and expiring; for `kubectl create secret ... --from-literal=connection-string="$(...)"`.
    /// What it grants and when it expires go to stderr
    Grant {
        /// Container for the styled frames and job markers, apart from the run container (workers
        /// may write nothing beside the inputs); run the coordinator with the same --output-container
        #[arg(long, value_name = "NAME", required_unless_present_any = ["scaler", "watcher"])]
        output_container: Option<String>,
        /// Hours until it expires (then issue a new one and restart the workers)
        #[arg(long, value_name = "N", default_value_t = DEFAULT_GRANT_HOURS,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_GRANT_HOURS)))]
        hours: u32,
        /// Instead, the KEDA scaler's grant: read the job queue's length, nothing else
        #[arg(long, conflicts_with_all = ["output_container", "watcher"])]
        scaler: bool,
        /// Instead, a `stylize watch` grant: read, tidy and list the inbox, write the outbox,
        /// submit runs (the run container, and --output-container if the runs use one), take
        /// --events; the containers and queues must exist (a grant cannot create them)
        #[arg(long, requires_all = ["inbox", "outbox"])]
        watcher: bool,
        /// With --watcher: the inbox container
        #[arg(long, value_name = "CONTAINER", requires = "watcher")]
        inbox: Option<String>,
        /// With --watcher: the outbox container
        #[arg(long, value_name = "CONTAINER", requires = "watcher")]
        outbox: Option<String>,
        /// With --watcher: Event Grid's queue
        #[arg(long, value_name = "QUEUE", requires = "watcher")]
        events: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum TransportArg {
    #[default]
    Segments,
    Frames,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum FrameFormatArg {
    #[default]
    Png,
    Jpeg,
    Webp,
}
