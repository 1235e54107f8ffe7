//! `--method optimize` from the command line: a short clip keeps its frames, timing and audio, and comes out closer to the style picture than the fast network's (`stylize measure`); presets and cloud runs are refused with one line.
mod common;

use std::path::Path;

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

#[test]
fn presets_and_cloud_runs_are_refused_with_one_line() {
    let dir = tempdir();
    let input = clip(dir.path());
    let cases: [(&[&str], &str); 2] = [
        (&["--style", "preset:3"], "give --style a picture"),
        (
            &["--style", STYLE_PICTURE, "--cloud", "dir:cloud"],
            "runs locally only",
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
