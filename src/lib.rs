//! The `stylize` command line, shared by its two binaries: `stylize` runs what needs no LibTorch (cloud runs of a presets style, `runs`, `codecs`, the list of presets) and starts `stylize-torch`, which runs everything, for the rest.
//!
//! The split is for start-up time: LibTorch's static initialisers cost ~0.2 s of CPU at every
//! start of a binary that links it, whether it runs a network or not, and a cloud coordinator of a
//! presets style runs none. The linker leaves LibTorch out of `stylize` (see `build.rs`) only while
//! nothing [`run_without_torch`] can reach calls it: the coordinator is given its network as a
//! [`StyleNetwork`] for that reason. `tests/two_binaries.rs` reads `stylize`'s needed libraries.
pub mod cli;
mod cloud;
mod commands;
mod config;
mod measure;
mod progress;
mod run;
mod showcase;
mod torch;
mod watch;

use std::sync::Arc;

use stylize_core::cancel::cancelled;
use stylize_core::cloud::look::{self, NoNetwork, StyleNetwork};

pub use crate::cli::Cli;
use crate::cli::{Command, StyleArgs};
pub use crate::torch::run_command;

/// Whether `stylize` runs this command itself, without LibTorch.
pub fn runs_without_torch(cli: &Cli) -> bool {
    match &cli.command {
        Some(Command::Runs(_)) | Some(Command::Codecs) => true,
        Some(Command::Styles(args)) => args.sheet.is_none(),
        Some(_) => false,
        // A look that does not parse is left to `stylize-torch` too, which says what is wrong.
        None => {
            cli.style.cloud.cloud.is_some()
                && config::look_config(&cli.style.look)
                    .is_ok_and(|look| look::without_network(&look).is_some())
        }
    }
}

/// Runs a command of [`runs_without_torch`]; the exit code.
pub fn run_without_torch(cli: Cli) -> u8 {
    run_with(&cli, |cli| match &cli.command {
        Some(Command::Styles(args)) => commands::list_styles(args).map(|()| 0),
        Some(Command::Codecs) => commands::codecs().map(|()| 0),
        Some(Command::Runs(args)) => cloud::runs(args),
        Some(_) => anyhow::bail!("this command runs the style network: run it with stylize-torch"),
        None => coordinate(&cli.style, Arc::new(NoNetwork)),
    })
}

/// What every command shares around its own work: FFmpeg set up, Ctrl-C handled, an `--out-dir`
/// it made removed when nothing was written there, and the outcome turned into an exit code.
pub(crate) fn run_with(cli: &Cli, command: impl FnOnce(&Cli) -> anyhow::Result<i32>) -> u8 {
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
    match command(cli) {
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
pub fn leave(code: u8) -> ! {
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

/// `stylize INPUT... --style X --cloud STORAGE` (`network`: what computes a picture's style).
pub(crate) fn coordinate(args: &StyleArgs, network: Arc<dyn StyleNetwork>) -> anyhow::Result<i32> {
    let config = config::run_config(args)?;
    let options = config::coordinator_options(&args.cloud, args.compare, network)?;
    cloud::coordinate(config, &options, args.quiet)
}

/// Whether this command runs the network on many frames in this process (and so wants OpenMP's
/// passive wait). A cloud coordinator and `runs` do not: a coordinator at most prepares a
/// picture style once.
pub fn styles_frames_here(cli: &Cli) -> bool {
    match &cli.command {
        Some(Command::Runs(_)) | Some(Command::Codecs) | Some(Command::Watch(_)) => false,
        Some(Command::Styles(args)) => args.sheet.is_some(),
        Some(_) => true,
        None => cli.style.cloud.cloud.is_none(),
    }
}

/// Replaces this process with `exe` and this process's arguments (`argv[0]` kept, so messages
/// still say `stylize`), with OpenMP's passive wait unless a wait policy is set: LibTorch's OpenMP
/// workers spin while they wait, taking the cores the decoder and x264 need (measured: 3× slower
/// per frame under load), and libgomp reads its policy only as it loads. Returns only when the
/// exec failed, with why.
pub fn exec_with_passive_openmp(exe: &std::path::Path) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| "stylize".into());
    let mut command = std::process::Command::new(exe);
    command.arg0(argv0).args(args);
    if std::env::var_os("OMP_WAIT_POLICY").is_none() {
        command.env("OMP_WAIT_POLICY", "PASSIVE");
    }
    command.exec()
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
