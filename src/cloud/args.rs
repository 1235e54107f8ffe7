//! Command-line options of cloud mode: `--cloud` and friends on the main command, `stylize worker`, `stylize runs`.
use clap::{Args, Subcommand, ValueEnum};
use stylize_cloud::FrameFormat;

use crate::cli::{DeviceArg, PrecisionArg};

/// Default seconds a received job stays invisible to other workers. The worker
/// renews it every third of this while it works, so it only bounds how long a
/// job of a worker that died (SIGKILL, lost node) waits before another takes it.
pub const DEFAULT_VISIBILITY_SECS: u64 = 60;
/// Default deliveries of one job before it is given up on and marked failed.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;
/// Default blob transfers in flight per process.
pub const DEFAULT_TRANSFERS: u32 = 16;

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
    /// Frames per job [default: about 96 jobs per video, 8 to 240 frames each]
    #[arg(long, value_name = "N", requires = "cloud", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub frames_per_job: Option<u32>,
    /// How frames travel through storage: png (lossless, the cheapest to encode), webp (lossless,
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
    /// Blob transfers in flight at once
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TRANSFERS,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub transfers: u32,
    /// Seconds between queue polls while the queue is empty
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub poll_interval: f64,
    /// Where to run the network
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// Numeric precision (auto: bf16 on CPUs that compute it natively, fp16 on CUDA)
    #[arg(long, value_enum, default_value_t = PrecisionArg::Auto)]
    pub precision: PrecisionArg,
    /// CPU threads for the network (default: all cores)
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// TEST ONLY: instead of the network, sleep MS milliseconds per frame and invert the colours
    /// (measures coordination overhead without a GPU; see scripts/bench-cloud.sh)
    #[arg(long, value_name = "MS", hide_short_help = true)]
    pub test_stylizer_ms: Option<u64>,
    /// TEST ONLY: the test stylizer fails every batch as a broken GPU would
    #[arg(long, hide = true, requires = "test_stylizer_ms")]
    pub test_stylizer_fault: bool,
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
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum FrameFormatArg {
    #[default]
    Png,
    Jpeg,
    Webp,
}

impl From<FrameFormatArg> for FrameFormat {
    fn from(f: FrameFormatArg) -> FrameFormat {
        match f {
            FrameFormatArg::Png => FrameFormat::Png,
            FrameFormatArg::Jpeg => FrameFormat::Jpeg,
            FrameFormatArg::Webp => FrameFormat::Webp,
        }
    }
}
