//! The `stylize-torch` binary: every command of `stylize`, with LibTorch linked; `stylize` starts it for each command that runs a network.
use clap::Parser;
use stylize_cli::Cli;

fn main() {
    let cli = Cli::parse();
    if stylize_cli::styles_frames_here(&cli) {
        prefer_passive_openmp();
    }
    stylize_cli::leave(stylize_cli::run_command(cli))
}

/// LibTorch's OpenMP workers spin while they wait, taking the cores the decoder and x264 need
/// (measured: 3× slower per frame under load). libgomp reads its wait policy only when it loads,
/// before `main`, so set it and re-run ourselves once, when `stylize` did not set it before
/// starting us; a user's own setting is kept.
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
