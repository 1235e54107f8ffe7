//! Steady video with the real networks: strokes follow a camera pan, a cut starts afresh, a still
//! shot keeps its colour, and `stylize measure` scores known pairs right.
mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

const PHOTO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/swirls.jpg");

/// A camera pan over a photograph: every frame a crop of one picture, `step` pixels further right.
fn pan_clip(dir: &Path, name: &str, frames: u32, step: u32) -> PathBuf {
    let path = dir.join(name);
    let crop = format!("crop=224:160:x='n*{step}':y=120,format=yuv420p");
    ffmpeg(&[
        "-loop",
        "1",
        "-framerate",
        "25",
        "-i",
        PHOTO,
        "-vf",
        &crop,
        "-frames:v",
        &frames.to_string(),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "12",
        path.to_str().unwrap(),
    ]);
    path
}

/// Styles `input` with a preset at `steady`, losslessly (so frames can be compared exactly).
fn style(input: &Path, output: &Path, steady: &str) {
    let (code, _, err) = run(&[
        input.to_str().unwrap(),
        "--style",
        "preset:19",
        "--steady",
        steady,
        "--crf",
        "0",
        "--pixel-format",
        "yuv444p",
        "-o",
        output.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
}

/// `clip` styled frame by frame and at the default steadiness, into `dir`: (plain, steady).
fn plain_and_steady(dir: &tempfile::TempDir, clip: &Path) -> (PathBuf, PathBuf) {
    let (plain, steady) = (p(dir, "plain.mp4"), p(dir, "steady.mp4"));
    style(clip, &plain, "0");
    style(clip, &steady, "0.95");
    (plain, steady)
}

fn measure(original: &Path, styled: &Path) -> Value {
    measure_with(original, styled, &[])
}

/// `stylize measure … --json` with `extra` options.
fn measure_with(original: &Path, styled: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "measure",
        original.to_str().unwrap(),
        styled.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn styled_error(scores: &Value) -> f64 {
    scores["warp_error"]["styled"].as_f64().unwrap()
}

#[test]
fn a_pan_over_a_photograph_comes_out_steady_without_losing_its_strokes() {
    let dir = tempdir();
    let clip = pan_clip(dir.path(), "pan.mp4", 40, 2);
    let (plain, steady) = plain_and_steady(&dir, &clip);
    let (a, b) = (measure(&clip, &plain), measure(&clip, &steady));
    assert_eq!(a["pairs"], 39, "{a}");
    assert!(
        styled_error(&b) * 4.0 < styled_error(&a),
        "steady {} against frame by frame {}",
        styled_error(&b),
        styled_error(&a)
    );
    let detail = |s: &Value| s["detail"]["styled"].as_f64().unwrap();
    assert!(
        detail(&b) > 0.85 * detail(&a),
        "detail {} against {}",
        detail(&b),
        detail(&a)
    );
}

#[test]
fn the_frame_after_a_cut_is_styled_afresh() {
    let dir = tempdir();
    let first = pan_clip(dir.path(), "a.mp4", 12, 2);
    let second = scene_clip(
        dir.path(),
        "b.mp4",
        "224x160",
        "25",
        12,
        &[],
        &["-crf", "12"],
    );
    let clip = dir.path().join("cut.mp4");
    let list = dir.path().join("list.txt");
    std::fs::write(
        &list,
        format!("file '{}'\nfile '{}'\n", first.display(), second.display()),
    )
    .unwrap();
    ffmpeg(&[
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        list.to_str().unwrap(),
        "-c",
        "copy",
        clip.to_str().unwrap(),
    ]);
    let (plain, steady) = plain_and_steady(&dir, &clip);
    let (plain, steady) = (all_frames(&plain), all_frames(&steady));
    assert_eq!(plain.len(), 24);
    assert_eq!(steady[0], plain[0], "the first frame starts afresh");
    assert_ne!(steady[11], plain[11], "strokes are carried within the shot");
    assert_eq!(
        steady[12], plain[12],
        "the frame after the cut starts afresh"
    );
    assert_ne!(steady[13], plain[13]);
}

#[test]
fn a_long_still_shot_keeps_its_colour() {
    let dir = tempdir();
    let clip = dir.path().join("still.mp4");
    ffmpeg(&[
        "-loop",
        "1",
        "-framerate",
        "25",
        "-i",
        PHOTO,
        "-vf",
        "scale=160:160,format=yuv420p",
        "-frames:v",
        "300",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "18",
        clip.to_str().unwrap(),
    ]);
    let (plain, steady) = plain_and_steady(&dir, &clip);
    let (plain, steady) = (all_frames(&plain), all_frames(&steady));
    assert_eq!(steady.len(), 300);
    // A fixed 40×40 block in the middle, per channel, over the shot's last ten frames.
    let block_mean = |frames: &[Vec<u8>]| {
        let mut sums = [0f64; 3];
        for frame in &frames[290..] {
            for y in 60..100 {
                for x in 60..100 {
                    for (c, sum) in sums.iter_mut().enumerate() {
                        *sum += frame[(y * 160 + x) * 3 + c] as f64;
                    }
                }
            }
        }
        sums.map(|s| s / (10.0 * 1600.0))
    };
    let (a, b) = (block_mean(&plain), block_mean(&steady));
    for c in 0..3 {
        assert!(
            (a[c] - b[c]).abs() < 3.0,
            "channel {c}: steady {:.1} against frame by frame {:.1}",
            b[c],
            a[c]
        );
    }
}

#[test]
fn measure_scores_known_pairs() {
    let dir = tempdir();
    let clip = pan_clip(dir.path(), "pan.mp4", 20, 3);
    let itself = measure(&clip, &clip);
    assert_eq!(itself["warp_error"]["ratio"], 1.0, "{itself}");
    assert!(
        itself["warp_error"]["original"].as_f64().unwrap() < 1e-3,
        "{itself}"
    );
    // With a style picture: a video against itself sits at content distance 0 and at its own style
    // distance; a frame far from the picture scores far from it.
    let with_style = ["--style", PHOTO, "--style-frames", "2"];
    let vgg = measure_with(&clip, &clip, &with_style);
    assert_eq!(vgg["content_distance"], 0.0, "{vgg}");
    assert_eq!(
        vgg["style_distance"]["original"], vgg["style_distance"]["styled"],
        "{vgg}"
    );
    // The pan is cut from the picture itself: closer to its style than a test pattern is.
    let pattern = scene_clip(dir.path(), "pattern.mp4", "224x160", "25", 20, &[], &[]);
    let far = measure_with(&clip, &pattern, &with_style);
    let distance = |v: &Value, k: &str| v["style_distance"][k].as_f64().unwrap();
    assert!(
        distance(&far, "styled") > 2.0 * distance(&far, "original"),
        "{far}"
    );
    assert!(far["content_distance"].as_f64().unwrap() > 0.3, "{far}");
    // The same pan, every other frame jolted sideways: the flow of the original no longer explains it.
    let jolted = dir.path().join("jolted.mp4");
    ffmpeg(&[
        "-i",
        clip.to_str().unwrap(),
        "-vf",
        "crop=216:160:x='8*mod(n,2)':y=0,scale=224:160",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "12",
        "-pix_fmt",
        "yuv420p",
        jolted.to_str().unwrap(),
    ]);
    let scores = measure(&clip, &jolted);
    assert!(
        scores["warp_error"]["ratio"].as_f64().unwrap() > 5.0,
        "{scores}"
    );
    let (a, b) = (
        scores["detail"]["original"].as_f64().unwrap(),
        scores["detail"]["styled"].as_f64().unwrap(),
    );
    assert!(
        (a - b).abs() < 0.1 * a,
        "a jolted copy keeps its detail: {scores}"
    );
    // A clip that is not the same length is refused, naming the file.
    let short = pan_clip(dir.path(), "short.mp4", 10, 3);
    let (code, _, err) = run(&["measure", clip.to_str().unwrap(), short.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("short.mp4: 10 frames, but") && err.contains("has 20"),
        "{err}"
    );
}

#[test]
fn strength_and_preserve_colors_compose_with_steady() {
    let dir = tempdir();
    let clip = pan_clip(dir.path(), "pan.mp4", 16, 2);
    let styled = |name: &str, extra: &[&str]| {
        let out = p(&dir, name);
        let mut args = vec![
            clip.to_str().unwrap(),
            "--style",
            "preset:19",
            "--crf",
            "0",
            "--pixel-format",
            "yuv444p",
            "-o",
            out.to_str().unwrap(),
            "--quiet",
        ];
        args.extend_from_slice(extra);
        let (code, _, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        all_frames(&out)
    };
    // Strength 0 leaves the frames unstyled: steadied, they are still the original's.
    let original = all_frames(&clip);
    let unstyled = styled("zero.mp4", &["--strength", "0"]);
    for (i, (a, b)) in original.iter().zip(&unstyled).enumerate() {
        assert!(
            mean_abs_diff(a, b) < 2.0,
            "frame {i}: {}",
            mean_abs_diff(a, b)
        );
    }
    // Preserved colours stay preserved: each frame's mean colour as in frame-by-frame styling.
    let plain = styled("plain.mp4", &["--preserve-colors", "--steady", "0"]);
    let steady = styled("steady.mp4", &["--preserve-colors"]);
    let mean = |f: &[u8], c: usize| {
        f.iter().skip(c).step_by(3).map(|&v| v as f64).sum::<f64>() / (f.len() / 3) as f64
    };
    for (i, (a, b)) in plain.iter().zip(&steady).enumerate() {
        for c in 0..3 {
            assert!(
                (mean(a, c) - mean(b, c)).abs() < 3.0,
                "frame {i} channel {c}: {} against {}",
                mean(b, c),
                mean(a, c)
            );
        }
    }
}
