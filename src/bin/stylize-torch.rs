//! The `stylize-torch` binary: every command of `stylize`, with LibTorch linked; `stylize` starts it for each command that runs a network.
use clap::Parser;
use stylize_cli::Cli;

fn main() {
    let cli = Cli::parse();
    // Started by `stylize`, the wait policy is set already; run directly, re-run ourselves once
    // to set it (on failure, run on with the default policy).
    let policy_unset = std::env::var_os("OMP_WAIT_POLICY").is_none();
    if policy_unset && stylize_cli::styles_frames_here(&cli) {
        if let Ok(exe) = std::env::current_exe() {
            let _ = stylize_cli::exec_with_passive_openmp(&exe);
        }
    }
    stylize_cli::leave(stylize_cli::run_command(cli))
}
