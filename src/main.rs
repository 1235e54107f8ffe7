//! The `stylize` binary: parses the command line, dispatches, and turns errors into one line and an exit code.
mod cli;
mod config;
mod output;
mod pipeline;
mod progress;
mod run;
mod style;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = stylize_media::init() {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    install_ctrl_c();
    let result = match cli.command {
        Some(Command::Styles(args)) => commands::styles(&args).map(|()| 0),
        None => config::run_config(&cli.style).and_then(run::run),
    };
    match result {
        Ok(_) if pipeline::cancelled() => ExitCode::from(130),
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(if pipeline::cancelled() { 130 } else { 1 })
        }
    }
}

/// First Ctrl-C: stop after the current frame and clean up. Second: leave at once.
fn install_ctrl_c() {
    let _ = ctrlc::set_handler(|| {
        if pipeline::CANCELLED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping (press Ctrl-C again to quit at once)");
    });
}

mod commands {
    //! Small subcommands that need no pipeline.
    use anyhow::Result;

    use crate::cli::StylesArgs;

    pub fn styles(args: &StylesArgs) -> Result<()> {
        let presets = crate::style::presets();
        if args.json {
            println!("{}", serde_json::to_string_pretty(&presets)?);
            return Ok(());
        }
        for p in &presets {
            println!("preset:{:<3} {:<18} {}", p.index, p.name, p.description);
        }
        Ok(())
    }
}
