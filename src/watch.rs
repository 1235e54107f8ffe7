//! `stylize watch` on the terminal: its options checked, each video's options read as the command line reads them, and its log on stderr.
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use clap::Parser;
use stylize_core::cloud::watch::{self, Place, Planner, VideoOption, WatchOptions};
use stylize_core::inputs::{plan_run, OutputRequest, RunConfig};

use crate::cli::{CloudArgs, EncodeArgs, FrameFormatArg, LookArgs, WatchArgs};
use crate::config;

/// Seconds between listings when no events queue brings uploads sooner.
const POLL_SECS: f64 = 5.0;
/// Seconds between catch-up listings when an events queue does.
const POLL_WITH_EVENTS_SECS: f64 = 300.0;

pub fn run(args: &WatchArgs) -> Result<i32> {
    let options = watch_options(args)?;
    // The watcher's own look and encoder settings are checked now, not at the first upload.
    if args.look.style.is_some() {
        config::look_config(&args.look)?;
    }
    config::encode_options(&args.encode)?;
    let planner = Box::new(SidecarPlanner {
        look: args.look.clone(),
        encode: args.encode.clone(),
    });
    let log = Arc::new(|line: &str| eprintln!("{line}"));
    let tally = watch::run(options, planner, log)?;
    // With --once, a video left for the next run (storage trouble) makes the exit code say so.
    Ok(i32::from(tally.unfinished > 0))
}

fn watch_options(args: &WatchArgs) -> Result<WatchOptions> {
    let cloud = CloudArgs {
        cloud: Some(args.cloud.clone()),
        container: args.container.clone(),
        queue: args.queue.clone(),
        output_container: args.output_container.clone(),
        frames_per_job: args.frames_per_job,
        transport: args.transport,
        frame_format: FrameFormatArg::Png,
        transfers: args.transfers,
        no_wait: false,
        requeue_after: args.requeue_after,
        storage_patience: args.storage_patience,
    };
    let poll = args.poll.unwrap_or(match args.events {
        Some(_) => POLL_WITH_EVENTS_SECS,
        None => POLL_SECS,
    });
    Ok(WatchOptions {
        coordinator: config::coordinator_options(&cloud, false, crate::torch::network())?,
        inbox: Place::parse("--inbox", &args.inbox)?,
        outbox: Place::parse("--outbox", &args.outbox)?,
        events: args.events.clone(),
        poll: config::seconds_option("--poll", poll, false)?,
        settle: config::seconds_option("--settle", args.settle, true)?,
        concurrent: args.concurrent as usize,
        once: args.once,
        work_dir: args
            .work_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("stylize-watch")),
        default_style: args.look.style.is_some(),
    })
}

/// The options one video may set, parsed by the same definitions as the command line (a later
/// one wins: a sidecar's style over its folder's).
#[derive(Debug, Parser)]
#[command(args_override_self = true)]
struct VideoArgs {
    #[command(flatten)]
    look: LookArgs,
    #[command(flatten)]
    encode: EncodeArgs,
}

impl VideoArgs {
    /// Takes option `name` (one of `watch::SIDECAR_KEYS`) from `given`.
    fn take(&mut self, given: &VideoArgs, name: &str) -> Result<()> {
        let (look, encode) = (&given.look, &given.encode);
        match name {
            "style" => self.look.style = look.style.clone(),
            "strength" => self.look.strength = look.strength,
            "preserve-colors" => self.look.preserve_colors = look.preserve_colors,
            "max-size" => self.look.max_size = look.max_size,
            "steady" => self.look.steady = look.steady,
            "method" => self.look.method = look.method,
            "iterations" => self.look.iterations = look.iterations,
            "codec" => self.encode.codec = encode.codec,
            "prores-profile" => self.encode.prores_profile = encode.prores_profile,
            "crf" => self.encode.crf = encode.crf,
            "preset" => self.encode.preset = encode.preset.clone(),
            "pixel-format" => self.encode.pixel_format = encode.pixel_format,
            other => bail!("{other} cannot be set per video"),
        }
        Ok(())
    }
}

/// Starts from the watcher's own look and encoder, then applies the video's options.
struct SidecarPlanner {
    look: LookArgs,
    encode: EncodeArgs,
}

impl Planner for SidecarPlanner {
    fn plan(&self, input: &Path, out_dir: &Path, options: &[VideoOption]) -> Result<RunConfig> {
        let mut argv = vec!["stylize".to_owned()];
        for option in options {
            argv.push(format!("--{}", option.name));
            argv.extend(option.value.clone());
        }
        let given = VideoArgs::try_parse_from(&argv)
            .map_err(|e| anyhow!("{}", clap_line(&e.to_string())))?;
        // Only what the video names changes: the rest stays the watcher's own.
        let mut video = VideoArgs {
            look: self.look.clone(),
            encode: self.encode.clone(),
        };
        for option in options {
            video.take(&given, &option.name)?;
        }
        let look = config::look_config(&video.look)?;
        let encode = config::encode_options(&video.encode)?;
        let outputs = OutputRequest {
            output: None,
            out_dir: Some(out_dir.to_path_buf()),
            overwrite: true,
        };
        plan_run(&[input.to_path_buf()], &outputs, look, encode)
    }
}

/// Clap's message without its `error: ` and its hint to run `--help`.
fn clap_line(text: &str) -> String {
    let first = text.lines().next().unwrap_or(text);
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;

    fn planner(cli: &[&str]) -> SidecarPlanner {
        let cli = Cli::try_parse_from(cli).unwrap();
        let Some(crate::cli::Command::Watch(args)) = cli.command else {
            panic!("a watch command")
        };
        SidecarPlanner {
            look: args.look,
            encode: args.encode,
        }
    }

    #[test]
    fn every_sidecar_key_can_be_taken() {
        let mut video = VideoArgs::try_parse_from(["stylize"]).unwrap();
        let given = VideoArgs::try_parse_from(["stylize"]).unwrap();
        for key in watch::SIDECAR_KEYS {
            video.take(&given, key).unwrap();
        }
    }

    #[test]
    fn video_options_override_the_watchers_and_are_checked_as_the_command_line_is() {
        let planner = planner(&[
            "stylize",
            "watch",
            "--cloud",
            "dir:/x",
            "--inbox",
            "in",
            "--outbox",
            "out",
            "--style",
            "preset:1",
            "--strength",
            "0.5",
            "--codec",
            "hevc",
        ]);
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (dir.path().join("a.mp4"), dir.path().join("out"));
        let config = planner
            .plan(&input, &output, &[VideoOption::new("strength", "0.8")])
            .unwrap();
        assert_eq!(config.look.params.strength, 0.8);
        assert_eq!(config.look.style_spec, "preset:1");
        assert_eq!(config.encode.codec.family(), "hevc");
        let config = planner
            .plan(&input, &output, &[VideoOption::new("style", "preset:4")])
            .unwrap();
        assert_eq!(
            (config.look.style_spec.as_str(), config.look.params.strength),
            ("preset:4", 0.5)
        );
        // The codec picks the container: ProRes cannot go in the input's .mp4.
        let config = planner
            .plan(&input, &output, &[VideoOption::new("codec", "prores")])
            .unwrap();
        let plan = config.jobs[0].plan.as_ref().unwrap();
        assert_eq!(plan.final_path, output.join("a.styled.mov"));
        let err = planner
            .plan(&input, &output, &[VideoOption::new("strength", "lots")])
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "invalid value 'lots' for '--strength <0..1>': invalid float literal"
        );
        let err = planner
            .plan(&input, &output, &[VideoOption::new("strength", "3")])
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("--strength 3 is out of range"),
            "{err:#}"
        );
    }
}
