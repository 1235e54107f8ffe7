//! Every command, for `stylize-torch`: what `stylize` runs itself plus everything that runs a network (local runs, workers, the demo, previews, sheets, `measure`, `watch`, and cloud runs of a picture's style).
use std::sync::Arc;

use stylize_core::cloud::look::{CoordinatorNetwork, StyleNetwork};

use crate::cli::{Cli, Command, StyleArgs};
use crate::{cloud, commands, config, measure, run, run_with, showcase, watch};

/// Runs any command; the exit code.
pub fn run_command(cli: Cli) -> u8 {
    run_with(&cli, |cli| match &cli.command {
        Some(Command::Styles(args)) => commands::styles(args).map(|()| 0),
        Some(Command::Codecs) => commands::codecs().map(|()| 0),
        Some(Command::Demo(args)) => showcase::demo::run(args).map(|()| 0),
        Some(Command::Preview(args)) => showcase::preview::run(args).map(|()| 0),
        Some(Command::Worker(args)) => cloud::worker(args),
        Some(Command::Watch(args)) => watch::run(args),
        Some(Command::Runs(args)) => cloud::runs(args),
        Some(Command::Measure(args)) => measure::run(args).map(|()| 0),
        None => style(&cli.style),
    })
}

/// The coordinator's network, which computes a picture's style.
pub(crate) fn network() -> Arc<dyn StyleNetwork> {
    Arc::new(CoordinatorNetwork::default())
}

/// `stylize INPUT... --style X`, here or through the cloud.
fn style(args: &StyleArgs) -> anyhow::Result<i32> {
    match args.cloud.cloud {
        Some(_) => crate::coordinate(args, network()),
        None => run::run(config::run_config(args)?, args.compare, args.quiet),
    }
}
