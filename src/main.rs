//! The `stylize` binary: parses the command line, dispatches, and turns errors into one line and an exit code.
mod cli;
mod cloud;
mod config;
mod measure;
mod progress;
mod run;
mod showcase;
mod watch;

use clap::Parser;
use stylize_core::cancel::cancelled;

use crate::cli::{Cli, Command};

fn main() {
    let code = run_command();
    leave(code)
}

/// Runs the command line; the exit code.
fn run_command() -> u8 {
    let cli = Cli::parse();
    if styles_frames_here(&cli) {
        prefer_passive_openmp();
    }
    if let Err(e) = stylize_media::init() {
        eprintln!("error: {e}");
        return 1;
    }
    install_ctrl_c();
    let _out_dir = cli
        .style
        .out_dir
        .as_deref()
        .map(stylize_core::output::FolderIfMade::watch);
    let result = match cli.command {
        Some(Command::Styles(args)) => commands::styles(&args).map(|()| 0),
        Some(Command::Codecs) => commands::codecs().map(|()| 0),
        Some(Command::Demo(args)) => showcase::demo::run(&args).map(|()| 0),
        Some(Command::Preview(args)) => showcase::preview::run(&args).map(|()| 0),
        Some(Command::Worker(args)) => cloud::worker(&args),
        Some(Command::Watch(args)) => watch::run(&args),
        Some(Command::Runs(args)) => cloud::runs(&args),
        Some(Command::Measure(args)) => measure::run(&args).map(|()| 0),
        None => style(&cli.style),
    };
    match result {
        Ok(_) if cancelled() => 130,
        Ok(code) => code as u8,
        Err(e) => {
            eprintln!("error: {e:#}");
            if cancelled() {
                130
            } else {
                1
            }
        }
    }
}

/// Ends the process without LibTorch's static destructors, which free its operator registry:
/// ~75 ms at every exit (measured), a share of every short command and cloud run, and nothing of
/// ours needs them. By now every file is written and closed and every guard has run; only the
/// standard streams may hold output.
fn leave(code: u8) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit only ends the process; nothing runs after it.
    unsafe { libc::_exit(i32::from(code)) }
}

/// Prints `text` and a newline to stdout; a reader that went away (`stylize runs --json | head`)
/// ends the output quietly, where `println!` would panic.
pub(crate) fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => Ok(written?),
    }
}

/// `stylize INPUT... --style X`, here or through the cloud.
fn style(args: &cli::StyleArgs) -> anyhow::Result<i32> {
    let config = config::run_config(args)?;
    match args.cloud.cloud {
        Some(_) => {
            let options = config::coordinator_options(&args.cloud, args.compare)?;
            cloud::coordinate(config, &options, args.quiet)
        }
        None => run::run(config, args.compare, args.quiet),
    }
}

/// Whether this command runs the network on many frames in this process. A cloud coordinator and
/// `runs` do not (a coordinator at most prepares a picture style once), so they skip the re-run
/// below and its second start of the whole binary (~0.2 s, measured in a cloud run's timeline).
fn styles_frames_here(cli: &Cli) -> bool {
    match &cli.command {
        Some(Command::Runs(_)) | Some(Command::Codecs) | Some(Command::Watch(_)) => false,
        Some(Command::Styles(args)) => args.sheet.is_some(),
        Some(_) => true,
        None => cli.style.cloud.cloud.is_none(),
    }
}

/// LibTorch's OpenMP workers spin while they wait, taking the cores the decoder and x264 need
/// (measured: 3× slower per frame under load). libgomp reads its wait policy only when it loads,
/// before `main`, so set it and re-run ourselves once; a user's own setting is kept.
fn prefer_passive_openmp() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("OMP_WAIT_POLICY").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    // exec only returns on failure; then run on with the default policy.
    let _ = std::process::Command::new(exe)
        .arg0(argv0)
        .args(args)
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .exec();
}

/// First Ctrl-C: stop after the current frame and clean up. Second: leave at once.
fn install_ctrl_c() {
    let _ = ctrlc::set_handler(|| {
        if stylize_core::cancel::request_stop() {
            stylize_core::output::remove_live_temps();
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
        if let Some(picture) = &args.sheet {
            return crate::showcase::presets::sheet(picture, args);
        }
        let presets = stylize_core::style::presets();
        if args.json {
            crate::print_out(&serde_json::to_string_pretty(&presets)?)?;
            return Ok(());
        }
        for p in &presets {
            println!("preset:{:<3} {:<18} {}", p.index, p.name, p.description);
        }
        Ok(())
    }

    /// What `--codec` can write with this build's FFmpeg.
    pub fn codecs() -> Result<()> {
        use stylize_media::{ProResProfile, VideoCodec};
        crate::print_out(&format!(
            "{:<8} {:<10} {:<9} {:<14} {:<13} what for",
            "--codec", "encoder", "here", "containers", "bits"
        ))?;
        for codec in VideoCodec::ALL {
            let here = if codec.available() { "yes" } else { "missing" };
            let containers: Vec<String> =
                codec.containers().iter().map(|c| format!(".{c}")).collect();
            crate::print_out(&format!(
                "{:<8} {:<10} {:<9} {:<14} {:<13} {}",
                codec.family(),
                codec.encoder(),
                here,
                containers.join(" "),
                codec.bit_depths(),
                codec.purpose()
            ))?;
        }
        let profiles: Vec<&str> = ProResProfile::ALL.iter().map(|p| p.name()).collect();
        crate::print_out(&format!(
            "\nProRes profiles (--prores-profile): {} (default hq).\n\
             --crf and --preset are x264's scales: x265 takes them as they are, SVT-AV1 as CRF × 63/51\n\
             and its presets 12 (ultrafast) .. 1 (placebo); ProRes and FFV1 have neither.\n\
             A 10-bit input stays 10-bit in hevc, av1, prores and ffv1 (--pixel-format decides otherwise).",
            profiles.join(", ")
        ))
    }
}
