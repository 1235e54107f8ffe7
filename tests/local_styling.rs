//! End-to-end tests of `stylize INPUT --style X` on clips generated at test time: timing, size,
//! audio copied packet for packet, the picture styled yet the same scene, and the output rules.
mod common;

use std::path::Path;

use common::*;

const STYLE_PICTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/swirls.jpg");

/// The styled frame must differ clearly from the input but keep its edges (same scene, not shifted).
fn assert_styled_same_scene(input: &Path, output: &Path, frame: u32) {
    let (w, h, a) = frame_rgb(input, frame);
    let (w2, h2, b) = frame_rgb(output, frame);
    let (w, h) = (w.min(w2), h.min(h2));
    let crop = |img: &[u8], iw: u32| -> Vec<u8> {
        (0..h)
            .flat_map(|y| img[(y * iw * 3) as usize..((y * iw + w) * 3) as usize].to_vec())
            .collect()
    };
    let (a, b) = (crop(&a, w), crop(&b, w2));
    let diff = mean_abs_diff(&a, &b);
    let corr = edge_correlation(w, h, &a, &b);
    assert!(
        diff > 12.0,
        "frame {frame} barely changed (mean abs diff {diff:.1})"
    );
    assert!(
        corr > 0.3,
        "frame {frame} lost the scene (edge correlation {corr:.2})"
    );
    // The same styled frame moved by a tenth of its width must score clearly lower.
    let moved = edge_correlation(w, h, &a, &shifted(w, h, &b, w / 10));
    assert!(
        moved < corr - 0.1,
        "edge correlation does not notice a shift ({moved:.2} vs {corr:.2})"
    );
}

#[test]
fn styles_mono_clip_with_picture_keeping_timing_and_audio() {
    let dir = tempdir();
    let input = scene_clip(
        dir.path(),
        "mono.mp4",
        "160x120",
        "30",
        12,
        &["sine=f=440:sample_rate=48000"],
        &["-ac", "1"],
    );
    let (code, stdout, stderr) = run(&[input.to_str().unwrap(), "--style", STYLE_PICTURE]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let output = dir.path().join("mono.styled.mp4");
    assert!(
        output.exists(),
        "default output beside the input; stdout {stdout} stderr {stderr}"
    );
    assert!(
        stderr.contains("mono.styled.mp4"),
        "summary names the output: {stderr}"
    );
    assert_same_timing_and_audio("h264", &input, &output, (160, 120));
    assert_styled_same_scene(&input, &output, 5);
    assert_eq!(
        listing(dir.path()),
        vec!["mono.mp4", "mono.styled.mp4"],
        "no temporaries left"
    );
}

#[test]
fn ntsc_rate_odd_multiple_of_two_size_and_surround_audio() {
    let dir = tempdir();
    let input = scene_clip(
        dir.path(),
        "ntsc.mkv",
        "718x406",
        "30000/1001",
        8,
        &["sine=f=220:sample_rate=48000"],
        &["-ac", "6"],
    );
    let output = dir.path().join("out.mkv");
    let (code, _, stderr) = run(&[
        input.to_str().unwrap(),
        "--style",
        "preset:3",
        "-o",
        output.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert_same_timing_and_audio("h264", &input, &output, (718, 406));
    assert_eq!(
        probe_json(&output)["format"]["format_name"],
        "matroska,webm"
    );
    assert_styled_same_scene(&input, &output, 3);
}

#[test]
fn several_audio_tracks_and_a_rotated_mov() {
    let dir = tempdir();
    let plain = scene_clip(
        dir.path(),
        "plain.mov",
        "176x144",
        "25",
        10,
        &[
            "sine=f=300:sample_rate=44100",
            "sine=f=600:sample_rate=48000",
        ],
        &[],
    );
    // FFmpeg 5.1 turns the legacy rotate tag into a display matrix only when stream-copying.
    let input = dir.path().join("multi.mov");
    ffmpeg(&[
        "-i",
        plain.to_str().unwrap(),
        "-map",
        "0",
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        input.to_str().unwrap(),
    ]);
    let (code, _, stderr) = run(&[
        input.to_str().unwrap(),
        "--style",
        "preset:0=0.5,preset:9=0.5",
    ]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let output = dir.path().join("multi.styled.mov");
    assert_eq!(rotation(&input).abs(), 90, "fixture carries a rotation");
    assert_same_timing_and_audio("h264", &input, &output, (176, 144));
}

#[test]
fn no_audio_and_odd_size_policy() {
    let dir = tempdir();
    // testsrc2 only makes even sizes; scale to the odd one.
    let input = scene_clip(
        dir.path(),
        "odd.mp4",
        "160x120",
        "24",
        6,
        &[],
        &["-vf", "scale=161:121", "-pix_fmt", "yuv444p"],
    );
    // Default yuv420p cannot hold odd sizes: the last column and row go.
    let (code, _, stderr) = run(&[input.to_str().unwrap(), "--style", "preset:5", "--quiet"]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stderr.is_empty(), "--quiet prints nothing: {stderr}");
    let even = dir.path().join("odd.styled.mp4");
    assert_same_timing_and_audio("h264", &input, &even, (160, 120));
    // yuv444p keeps the exact size.
    let exact = dir.path().join("exact.mp4");
    let (code, _, stderr) = run(&[
        input.to_str().unwrap(),
        "--style",
        "preset:5",
        "--pixel-format",
        "yuv444p",
        "-o",
        exact.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert_same_timing_and_audio("h264", &input, &exact, (161, 121));
}

#[test]
fn strength_preserve_colors_and_max_size_still_keep_shape() {
    let dir = tempdir();
    let input = scene_clip(
        dir.path(),
        "knobs.mp4",
        "200x150",
        "30",
        6,
        &["sine=f=500:sample_rate=48000"],
        &[],
    );
    let output = dir.path().join("knobs-out.mp4");
    let (code, _, stderr) = run(&[
        input.to_str().unwrap(),
        "--style",
        STYLE_PICTURE,
        "--strength",
        "0.6",
        "--preserve-colors",
        "--max-size",
        "96",
        "-o",
        output.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert_same_timing_and_audio("h264", &input, &output, (200, 150));
}

#[test]
fn existing_output_is_refused_unless_overwrite() {
    let dir = tempdir();
    let input = scene_clip(dir.path(), "a.mp4", "96x64", "30", 4, &[], &[]);
    let output = dir.path().join("a.styled.mp4");
    std::fs::write(&output, b"precious").unwrap();
    let (code, _, stderr) = run(&[input.to_str().unwrap(), "--style", "preset:1"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("already exists") && stderr.contains("--overwrite"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&output).unwrap(), b"precious");
    let (code, _, stderr) = run(&[
        input.to_str().unwrap(),
        "--style",
        "preset:1",
        "--overwrite",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(video_stream(&probe_json(&output))["nb_read_frames"], "4");
}

#[test]
fn batch_of_inputs_with_one_bad_one() {
    let dir = tempdir();
    let clips = dir.path().join("clips");
    std::fs::create_dir(&clips).unwrap();
    scene_clip(
        &clips,
        "one.mp4",
        "96x64",
        "30",
        4,
        &["sine=f=440:sample_rate=48000"],
        &[],
    );
    scene_clip(&clips, "two.mov", "80x64", "25", 3, &[], &[]);
    let fake = clips.join("three.mp4");
    std::fs::write(&fake, "this is not a video\n").unwrap();
    let single = scene_clip(dir.path(), "four.mkv", "64x64", "30", 2, &[], &[]);
    let styled = dir.path().join("styled");
    let (code, _, stderr) = run(&[
        clips.to_str().unwrap(),
        single.to_str().unwrap(),
        "--style",
        "preset:2",
        "--out-dir",
        styled.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "a failed input makes the run fail: {stderr}");
    assert_eq!(
        listing(&styled),
        vec!["four.styled.mkv", "one.styled.mp4", "two.styled.mov"]
    );
    assert!(
        stderr.contains("3 of 4 inputs styled, 1 failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("three.mp4") && stderr.contains("FAILED"),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_stops_promptly_and_leaves_nothing() {
    let dir = tempdir();
    // Long enough (60 s of video) that even a many-core machine is still styling after 4 s.
    let input = scene_clip(dir.path(), "long.mp4", "320x240", "30", 1800, &[], &[]);
    let mut child = stylize()
        .args([input.to_str().unwrap(), "--style", "preset:4"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(4));
    let sent = std::time::Instant::now();
    send_sigint(child.id());
    let status = child.wait().unwrap();
    assert!(
        sent.elapsed().as_secs_f64() < 3.0,
        "took {:?} to stop",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(130));
    assert_eq!(listing(dir.path()), vec!["long.mp4"], "no partial output");
}

#[test]
fn an_empty_folder_is_one_failed_row_not_the_end_of_the_batch() {
    let dir = tempdir();
    let clip = scene_clip(dir.path(), "good.mp4", "64x48", "30", 3, &[], &[]);
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = dir.path().join("out");
    let (code, _, stderr) = run(&[
        clip.to_str().unwrap(),
        empty.to_str().unwrap(),
        "--style",
        "preset:1",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(listing(&out), vec!["good.styled.mp4"]);
    assert!(
        stderr.contains("folder holds no videos") && stderr.contains("1 of 2 inputs styled"),
        "{stderr}"
    );
}

#[test]
fn a_clip_cut_without_reencoding_is_styled_whole() {
    // `-ss` with stream copy leaves an edit list and a start offset: a valid file, not a truncated one.
    let dir = tempdir();
    let source = scene_clip(
        dir.path(),
        "source.mp4",
        "96x64",
        "30",
        90,
        &["sine=f=440:sample_rate=48000"],
        &[],
    );
    let cut = copy_cut(&source, "1.5", dir.path(), "cut.mp4");
    let (code, _, stderr) = run(&[cut.to_str().unwrap(), "--style", "preset:2"]);
    assert_eq!(code, 0, "{stderr}");
    let output = dir.path().join("cut.styled.mp4");
    let (pi, po) = (probe_json(&cut), probe_json(&output));
    assert_eq!(
        video_stream(&po)["nb_read_frames"],
        video_stream(&pi)["nb_read_frames"],
        "frames as players show them"
    );
    let (di, dout) = (
        num(&pi["format"]["duration"]),
        num(&po["format"]["duration"]),
    );
    assert!((di - dout).abs() <= 0.1, "duration {dout} vs input {di}");
}

#[test]
fn audio_that_runs_on_past_the_picture_is_not_a_truncated_file() {
    // 2 s of picture, 6 s of sound: valid (a closing credit's music, say), and all of it is kept.
    let dir = tempdir();
    for name in ["long_audio.mp4", "long_audio.mkv"] {
        let input = dir.path().join(name);
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=96x64:rate=30:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=f=440:sample_rate=48000:duration=6",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            input.to_str().unwrap(),
        ]);
        let output = dir.path().join(format!("styled_{name}"));
        let (code, _, stderr) = run(&[
            input.to_str().unwrap(),
            "--style",
            "preset:2",
            "-o",
            output.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{name}: {stderr}");
        let probe = probe_json(&output);
        assert_eq!(video_stream(&probe)["nb_read_frames"], "60", "{name}");
        assert_eq!(audio_md5(&input, 0), audio_md5(&output, 0), "{name}");
        assert!(num(&probe["format"]["duration"]) > 5.9, "{name}: {probe}");
    }
}
