//! Bad input gets one clear line naming the file and the problem, a non-zero exit, and no output left behind.
mod common;

use std::path::Path;

use common::*;

/// Runs stylize expecting failure; returns the error line after checking its shape.
fn expect_error(args: &[&str], names: &str, problem: &str) -> String {
    let (code, _, stderr) = run(args);
    assert_ne!(code, 0, "expected failure for {args:?}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(
        lines[0].contains(names),
        "error should name {names:?}: {stderr}"
    );
    assert!(
        lines[0].to_lowercase().contains(problem),
        "error should say {problem:?}: {stderr}"
    );
    stderr
}

fn good_clip(dir: &Path) -> std::path::PathBuf {
    scene_clip(
        dir,
        "good.mp4",
        "96x64",
        "30",
        3,
        &["sine=f=440:sample_rate=48000"],
        &[],
    )
}

#[test]
fn missing_input() {
    let dir = tempdir();
    let missing = dir.path().join("nope.mp4");
    expect_error(
        &[missing.to_str().unwrap(), "--style", "preset:1"],
        "nope.mp4",
        "no such file",
    );
    assert!(listing(dir.path()).is_empty());
}

#[test]
fn text_file_named_mp4() {
    let dir = tempdir();
    let fake = dir.path().join("notes.mp4");
    std::fs::write(&fake, "just some text, not a video\n").unwrap();
    expect_error(
        &[fake.to_str().unwrap(), "--style", "preset:1"],
        "notes.mp4",
        "not a video",
    );
    assert_eq!(listing(dir.path()), vec!["notes.mp4"]);
}

#[test]
fn truncated_video() {
    let dir = tempdir();
    let whole = scene_clip(
        dir.path(),
        "whole.mp4",
        "128x96",
        "30",
        60,
        &[],
        &["-movflags", "+faststart"],
    );
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::remove_file(&whole).unwrap();
    expect_error(
        &[cut.to_str().unwrap(), "--style", "preset:1"],
        "cut.mp4",
        "truncated",
    );
    assert_eq!(listing(dir.path()), vec!["cut.mp4"]);
}

#[test]
fn audio_only_file() {
    let dir = tempdir();
    let audio = dir.path().join("song.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:d=1",
        "-c:a",
        "aac",
        audio.to_str().unwrap(),
    ]);
    expect_error(
        &[audio.to_str().unwrap(), "--style", "preset:1"],
        "song.mp4",
        "no video stream",
    );
    assert_eq!(listing(dir.path()), vec!["song.mp4"]);
}

#[test]
fn unreadable_style_picture() {
    let dir = tempdir();
    let clip = good_clip(dir.path());
    let bad = dir.path().join("style.jpg");
    std::fs::write(&bad, "not a jpeg").unwrap();
    expect_error(
        &[clip.to_str().unwrap(), "--style", bad.to_str().unwrap()],
        "style.jpg",
        "not a readable picture",
    );
    expect_error(
        &[clip.to_str().unwrap(), "--style", "gone.png"],
        "gone.png",
        "not found",
    );
    assert_eq!(listing(dir.path()), vec!["good.mp4", "style.jpg"]);
}

#[test]
fn unknown_preset_and_strength_out_of_range() {
    let dir = tempdir();
    let clip = good_clip(dir.path());
    let c = clip.to_str().unwrap();
    expect_error(&[c, "--style", "preset:99"], "99", "unknown preset");
    expect_error(
        &[c, "--style", "no-such-style"],
        "no-such-style",
        "unknown style",
    );
    expect_error(
        &[c, "--style", "preset:1", "--strength", "1.5"],
        "--strength",
        "out of range",
    );
    expect_error(
        &[c, "--style", "preset:1", "--strength=-0.1"],
        "--strength",
        "out of range",
    );
    assert_eq!(listing(dir.path()), vec!["good.mp4"]);
}

#[test]
fn unwritable_output_folder() {
    let dir = tempdir();
    let clip = good_clip(dir.path());
    let locked = unwritable_dir(dir.path());
    let out = locked.join("out.mp4");
    expect_error(
        &[
            clip.to_str().unwrap(),
            "--style",
            "preset:1",
            "-o",
            out.to_str().unwrap(),
        ],
        &locked.display().to_string(),
        "not writable",
    );
    assert!(!out.exists());
}

#[test]
fn unsupported_output_container() {
    let dir = tempdir();
    let clip = good_clip(dir.path());
    let out = dir.path().join("out.avi");
    expect_error(
        &[
            clip.to_str().unwrap(),
            "--style",
            "preset:1",
            "-o",
            out.to_str().unwrap(),
        ],
        "out.avi",
        "unsupported output container",
    );
    assert_eq!(listing(dir.path()), vec!["good.mp4"]);
}

#[test]
fn matroska_cut_short_without_an_error() {
    let dir = tempdir();
    let whole = scene_clip(dir.path(), "whole.mkv", "128x96", "30", 150, &[], &[]);
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.mkv");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::remove_file(&whole).unwrap();
    expect_error(
        &[cut.to_str().unwrap(), "--style", "preset:1"],
        "cut.mkv",
        "truncated",
    );
    assert_eq!(listing(dir.path()), vec!["cut.mkv"]);
}

#[test]
fn worker_timings_out_of_range() {
    let dir = tempdir();
    let storage = format!("dir:{}", dir.path().display());
    for (option, value, problem) in [
        ("--drain-timeout", "1e20", "zero to 2592000 seconds"),
        ("--idle-exit", "-1", "zero to 2592000 seconds"),
        ("--poll-interval", "0", "more than zero to 2592000 seconds"),
        (
            "--poll-interval",
            "NaN",
            "more than zero to 2592000 seconds",
        ),
    ] {
        let given = format!("{option}={value}");
        expect_error(&["worker", "--cloud", &storage, &given], option, problem);
    }
    assert_eq!(listing(dir.path()), Vec::<String>::new(), "nothing created");
}

#[test]
fn encoder_settings_out_of_range_for_runs_and_the_demo() {
    let dir = tempdir();
    let clip = good_clip(dir.path());
    let out = dir.path().join("demo-out");
    for command in [
        vec![clip.to_str().unwrap(), "--style", "preset:1"],
        vec!["demo", "--offline", "--out-dir", out.to_str().unwrap()],
    ] {
        let with = |extra: &[&'static str]| [command.as_slice(), extra].concat();
        expect_error(&with(&["--crf", "60"]), "--crf 60", "use 0 to 51");
        expect_error(
            &with(&["--preset", "speedy"]),
            "--preset \"speedy\"",
            "not an x264 preset",
        );
    }
    assert_eq!(listing(dir.path()), vec!["good.mp4"], "nothing created");
}

#[test]
fn missing_input_in_a_missing_folder_is_told_as_the_missing_input() {
    let dir = tempdir();
    let missing = dir.path().join("typo").join("clip.mp4");
    expect_error(
        &[missing.to_str().unwrap(), "--style", "preset:1"],
        "typo/clip.mp4",
        "no such file",
    );
    assert!(listing(dir.path()).is_empty());
}

#[test]
fn a_side_by_side_video_never_replaces_another_input() {
    assert_second_input_kept(
        "good.styled.compare.mp4",
        &["--compare"],
        "good.styled.compare.mp4: side-by-side video would replace input",
    );
}

/// Runs `good.mp4` and a copy of it named `second` with --overwrite (and `extra`): the run must
/// fail with `expected` and leave the copy as it was.
fn assert_second_input_kept(second: &str, extra: &[&str], expected: &str) {
    let dir = tempdir();
    let a = good_clip(dir.path());
    // An input that carries the name one of a's outputs would get.
    let b = dir.path().join(second);
    std::fs::copy(&a, &b).unwrap();
    let before = std::fs::read(&b).unwrap();
    let mut args = vec![
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--style",
        "preset:1",
        "--overwrite",
        "-q",
    ];
    args.extend_from_slice(extra);
    let (code, _, stderr) = run(&args);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    assert_eq!(
        std::fs::read(&b).unwrap(),
        before,
        "the other input is untouched"
    );
}

#[test]
fn a_run_that_writes_nothing_leaves_no_new_output_folder() {
    let dir = tempdir();
    let missing = dir.path().join("nope.mp4");
    let out = dir.path().join("styled");
    expect_error(
        &[
            missing.to_str().unwrap(),
            "--style",
            "preset:1",
            "--out-dir",
            out.to_str().unwrap(),
        ],
        "nope.mp4",
        "no such file",
    );
    assert!(listing(dir.path()).is_empty(), "no empty styled/ left");
    // A folder that was there before is kept, empty or not.
    std::fs::create_dir(&out).unwrap();
    let (code, _, _) = run(&[
        missing.to_str().unwrap(),
        "--style",
        "preset:1",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(out.is_dir());
}

#[test]
fn an_output_never_replaces_another_input() {
    assert_second_input_kept(
        "good.styled.mp4",
        &[],
        "good.styled.mp4: output would replace input",
    );
}
