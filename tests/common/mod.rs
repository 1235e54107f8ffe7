//! Helpers specific to the binary's integration tests: running the `stylize` binary, and sending it
//! signals. The ffmpeg/ffprobe CLIs, clips, probing, frames, pixel comparisons and scratch folders
//! come from `stylize-testkit`, re-exported here; `showcase` and `cloud` hold their suites' harnesses.
#![allow(dead_code)]
use std::process::{Command, Output};

pub use stylize_testkit::*;

pub mod cloud;
pub mod showcase;
pub mod throttle;

/// The `stylize` binary under test.
pub fn stylize() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stylize"))
}

/// Runs stylize with `args`; returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = stylize().args(args).output().expect("run stylize");
    decode(out)
}

/// (exit code, stdout, stderr) of a finished process; -1 when a signal ended it.
pub fn decode(out: Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Ctrl-C, as a terminal sends it.
pub fn send_sigint(pid: u32) {
    let ok = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}
