//! The `stylize` binary: runs the commands that need no LibTorch itself, and starts `stylize-torch` (beside it) for every command that runs a network.
use std::os::unix::process::CommandExt;

use clap::Parser;
use stylize_cli::Cli;

fn main() {
    let cli = Cli::parse();
    if !stylize_cli::runs_without_torch(&cli) {
        hand_over_to_torch();
    }
    stylize_cli::leave(stylize_cli::run_without_torch(cli))
}

/// The binary that runs networks, beside this one.
const TORCH_BINARY: &str = "stylize-torch";

/// Replaces this process with `stylize-torch` and the same arguments; returns only to leave with
/// an error. OpenMP's passive wait is set for it here, where it costs nothing: libgomp reads it
/// only as it loads, and LibTorch's spinning workers would take the cores the decoder and x264
/// need (measured: 3× slower per frame under load). A user's own setting is kept.
fn hand_over_to_torch() -> ! {
    let torch = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name(TORCH_BINARY),
        Err(e) => {
            eprintln!(
                "error: cannot find where stylize is installed, to start {TORCH_BINARY}: {e}"
            );
            stylize_cli::leave(1)
        }
    };
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| "stylize".into());
    let mut command = std::process::Command::new(&torch);
    command.arg0(argv0).args(args);
    if std::env::var_os("OMP_WAIT_POLICY").is_none() {
        command.env("OMP_WAIT_POLICY", "PASSIVE");
    }
    // exec returns only when it failed.
    let e = command.exec();
    eprintln!(
        "error: {}: {e}: this command runs the style network, which stylize leaves to \
         {TORCH_BINARY}; install the two binaries side by side",
        torch.display()
    );
    stylize_cli::leave(1)
}
