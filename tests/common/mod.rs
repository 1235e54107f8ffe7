//! Helpers specific to the binary's integration tests: running the `stylize` binary, and sending it
//! signals. The ffmpeg/ffprobe CLIs, clips, probing, frames, pixel comparisons and scratch folders
//! come from `stylize-testkit`, re-exported here; `showcase` and `cloud` hold their suites' harnesses.
#![allow(dead_code)]
use std::path::Path;
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

/// Asserts the properties every styled output must keep from its input, encoded in `codec`
/// (ffprobe's name).
pub fn assert_same_timing_and_audio(
    codec: &str,
    input: &Path,
    output: &Path,
    expect_size: (u64, u64),
) {
    let (pi, po) = (probe_json(input), probe_json(output));
    let (vi, vo) = (video_stream(&pi), video_stream(&po));
    assert_eq!(vo["codec_name"], codec);
    assert_eq!(
        (
            vo["width"].as_u64().unwrap(),
            vo["height"].as_u64().unwrap()
        ),
        expect_size
    );
    assert_eq!(vo["nb_read_frames"], vi["nb_read_frames"], "frame count");
    assert_eq!(vo["r_frame_rate"], vi["r_frame_rate"], "frame rate");
    let rate = {
        let r: Vec<f64> = vi["r_frame_rate"]
            .as_str()
            .unwrap()
            .split('/')
            .map(|x| x.parse().unwrap())
            .collect();
        r[0] / r[1]
    };
    // Matroska keeps durations on the container only.
    let duration = |stream: &serde_json::Value, probe: &serde_json::Value| {
        let d = num(&stream["duration"]);
        if d.is_nan() {
            num(&probe["format"]["duration"])
        } else {
            d
        }
    };
    let (di, dout) = (duration(vi, &pi), duration(vo, &po));
    assert!(
        (di - dout).abs() <= 1.0 / rate + 1e-3,
        "video duration {dout} vs input {di}"
    );
    assert_eq!(rotation(output), rotation(input), "rotation");
    let (ai, ao) = (audio_streams(&pi), audio_streams(&po));
    assert_eq!(ai.len(), ao.len(), "audio stream count");
    for (n, (a, b)) in ai.iter().zip(&ao).enumerate() {
        assert_eq!(a["codec_name"], b["codec_name"]);
        assert_eq!(a["channels"], b["channels"]);
        assert_eq!(
            audio_md5(input, n),
            audio_md5(output, n),
            "audio stream {n} packets differ"
        );
    }
}
