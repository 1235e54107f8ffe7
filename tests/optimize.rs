//! `--method optimize` from the command line: a short clip keeps its frames, timing and audio, and comes out closer to the style picture than the fast network's (`stylize measure`); a two-job cloud run paints what local mode paints; presets are refused with one line.
mod common;

use std::path::Path;

use common::cloud::{stop, worker, Backend, Proc};
use common::*;
use serde_json::Value;

const STYLE_PICTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/swirls.jpg");

fn clip(dir: &Path) -> std::path::PathBuf {
    scene_clip(
        dir,
        "in.mp4",
        "96x72",
        "25",
        3,
        &["sine=f=440:sample_rate=48000"],
        &[],
    )
}

/// `stylize measure --style` of `styled` against `original`: (style distance, content distance).
fn distances(original: &Path, styled: &Path) -> (f64, f64) {
    let args = [
        "measure",
        original.to_str().unwrap(),
        styled.to_str().unwrap(),
        "--style",
        STYLE_PICTURE,
        "--json",
    ];
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    let scores: Value = serde_json::from_str(&out).unwrap();
    (
        scores["style_distance"]["styled"].as_f64().unwrap(),
        scores["content_distance"].as_f64().unwrap(),
    )
}

#[test]
fn optimised_frames_keep_the_timing_and_audio_and_come_closer_to_the_style() {
    let dir = tempdir();
    let input = clip(dir.path());
    let styled = |name: &str, more: &[&str]| {
        let output = dir.path().join(name);
        let mut args = vec![
            input.to_str().unwrap(),
            "--style",
            STYLE_PICTURE,
            "--crf",
            "0",
            "-o",
            output.to_str().unwrap(),
        ];
        args.extend_from_slice(more);
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 0, "{more:?}: {stderr}");
        output
    };
    let fast = styled("fast.mp4", &[]);
    let optimised = styled(
        "optimised.mp4",
        &["--method", "optimize", "--iterations", "8"],
    );
    assert_same_timing_and_audio("h264", &input, &optimised, (96, 72));
    let (fast_style, fast_content) = distances(&input, &fast);
    let (ours_style, ours_content) = distances(&input, &optimised);
    assert!(
        ours_style < fast_style,
        "style distance: optimised {ours_style:.3} vs fast {fast_style:.3}"
    );
    assert!(
        ours_content < fast_content * 1.5 + 0.05,
        "content distance: optimised {ours_content:.3} vs fast {fast_content:.3}"
    );
}

/// Two jobs through either transport (workers fetch the style picture stored beside the run and
/// optimise their frames) paint what local mode paints, frame for frame: each frame optimised on
/// its own (`--steady 0`), losslessly, on one thread as the worker is.
#[test]
fn a_two_job_cloud_run_paints_what_local_mode_paints() {
    let b = Backend::dir().unwrap();
    let spec = b.spec();
    let dir = tempdir();
    let input = clip(dir.path());
    let settings = [
        "--style",
        STYLE_PICTURE,
        "--method",
        "optimize",
        "--iterations",
        "3",
        "--steady",
        "0",
        "--crf",
        "0",
    ];
    let local = dir.path().join("local.mp4");
    let mut args = vec![input.to_str().unwrap()];
    args.extend_from_slice(&settings);
    args.extend_from_slice(&["--threads", "1", "-o", local.to_str().unwrap()]);
    let (code, _, stderr) = run(&args);
    assert_eq!(code, 0, "local: {stderr}");
    let w = worker(&spec, "w0", &["--threads", "1"]);
    for transport in ["segments", "frames"] {
        let output = dir.path().join(format!("{transport}.mp4"));
        let mut args = vec![input.to_str().unwrap()];
        args.extend_from_slice(&settings);
        args.extend_from_slice(&[
            "--cloud",
            &spec,
            "--transport",
            transport,
            "--frames-per-job",
            "2",
            "-o",
            output.to_str().unwrap(),
        ]);
        let (code, log) = Proc::spawn(&args).wait();
        assert_eq!(code, 0, "{transport}: {log}");
        assert!(log.contains("2 jobs"), "{transport}: {log}");
        assert_same_timing_and_audio("h264", &input, &output, (96, 72));
        let (ours, theirs) = (all_frames(&local), all_frames(&output));
        assert_eq!(ours.len(), 3);
        for (n, (l, c)) in ours.iter().zip(&theirs).enumerate() {
            assert!(
                l == c,
                "{transport}: frame {n} differs by {:.3}",
                mean_abs_diff(l, c)
            );
        }
    }
    stop(w);
}

#[test]
fn presets_are_refused_with_one_line_locally_and_in_the_cloud() {
    let dir = tempdir();
    let input = clip(dir.path());
    let cases: [(&[&str], &str); 2] = [
        (&["--style", "preset:3"], "give --style a picture"),
        (
            &["--style", "preset:3", "--cloud", "dir:cloud"],
            "give --style a picture",
        ),
    ];
    for (more, says) in cases {
        let mut args = vec![input.to_str().unwrap(), "--method", "optimize"];
        args.extend_from_slice(more);
        let (code, _, stderr) = run(&args);
        assert_ne!(code, 0, "{more:?}");
        assert!(stderr.contains(says), "{more:?}: {stderr}");
    }
    assert_eq!(listing(dir.path()), vec!["in.mp4"], "nothing written");
}
