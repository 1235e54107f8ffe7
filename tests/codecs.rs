//! `--codec`: each codec on a generated clip with audio, locally and through a cloud run — frame count, size, rate, audio packets unchanged, codec, profile and pixel format as asked — plus the refusals, `stylize codecs`, and HDR inputs.
mod common;

use std::path::{Path, PathBuf};

use common::cloud::{stop, worker, Backend, Proc};
use common::*;

const STYLE: &str = "preset:3";

fn clip(dir: &Path) -> PathBuf {
    scene_clip(
        dir,
        "in.mp4",
        "160x120",
        "25",
        12,
        &["sine=f=440:sample_rate=48000"],
        &[],
    )
}

/// Styles `input` with `args`; the exit code, and stderr.
fn style(input: &Path, args: &[&str]) -> (i32, String) {
    let mut all = vec![input.to_str().unwrap(), "--style", STYLE];
    all.extend_from_slice(args);
    let (code, _, stderr) = run(&all);
    (code, stderr)
}

/// ffprobe's name of the output's video profile and pixel format.
fn profile_and_pixels(path: &Path) -> (String, String) {
    (video_field(path, "profile"), video_field(path, "pix_fmt"))
}

#[test]
fn each_codec_writes_what_was_asked_keeping_timing_and_audio() {
    let dir = tempdir();
    let input = clip(dir.path());
    // (--codec and more, the default output's name, ffprobe's codec, profile and pixel format)
    let cases: [(&[&str], &str, &str, &str, &str); 6] = [
        (
            &["--codec", "h264"],
            "in.styled.mp4",
            "h264",
            "High",
            "yuv420p",
        ),
        (
            &["--codec", "hevc"],
            "in.styled.mp4",
            "hevc",
            "Main",
            "yuv420p",
        ),
        (
            &["--codec", "av1"],
            "in.styled.mp4",
            "av1",
            "Main",
            "yuv420p",
        ),
        (
            &["--codec", "prores"],
            "in.styled.mov",
            "prores",
            "HQ",
            "yuv422p10le",
        ),
        (
            &["--codec", "prores", "--prores-profile", "4444"],
            "in.styled.mov",
            "prores",
            "4444",
            // Encoded 10-bit; FFmpeg's ProRes decoder reports 4444 as 12-bit.
            "yuv444p12le",
        ),
        (
            &["--codec", "ffv1"],
            "in.styled.mkv",
            "ffv1",
            "unknown",
            "yuv444p", // FFV1's default: a lossless archive keeps the chroma
        ),
    ];
    for (n, (args, name, codec, profile, pixels)) in cases.into_iter().enumerate() {
        let out_dir = dir.path().join(format!("out{n}"));
        let mut all = args.to_vec();
        all.extend_from_slice(&["--out-dir", out_dir.to_str().unwrap()]);
        let (code, stderr) = style(&input, &all);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        let output = out_dir.join(name);
        assert!(output.exists(), "{args:?}: {:?}", listing(&out_dir));
        assert_same_timing_and_audio(codec, &input, &output, (160, 120));
        let (got_profile, got_pixels) = profile_and_pixels(&output);
        assert_eq!(got_profile, profile, "{args:?}");
        assert_eq!(got_pixels, pixels, "{args:?}");
        if codec == "hevc" {
            let tag = video_field(&output, "codec_tag_string");
            assert_eq!(tag, "hvc1", "HEVC in MP4 as Apple's players want it");
        }
        assert!(
            !stderr.contains("Svt[info]"),
            "{args:?}: no encoder chatter: {stderr}"
        );
        let styled = mean_abs_diff(&frame_rgb(&input, 6).2, &frame_rgb(&output, 6).2);
        assert!(
            styled > 12.0,
            "{args:?}: the picture is styled ({styled:.1})"
        );
    }
}

#[test]
fn a_container_that_cannot_hold_the_codec_is_refused_before_any_work() {
    let dir = tempdir();
    let input = clip(dir.path());
    let refusals: [(&[&str], &str, &str); 3] = [
        (&["--codec", "prores"], "out.mp4", "use .mov"),
        (&["--codec", "ffv1"], "out.mov", "use .mkv"),
        (
            &["--codec", "av1", "--pixel-format", "yuv444p"],
            "out.mp4",
            "4:2:0",
        ),
    ];
    for (args, name, says) in refusals {
        let output = dir.path().join(name);
        let mut all = args.to_vec();
        all.extend_from_slice(&["-o", output.to_str().unwrap()]);
        let (code, stderr) = style(&input, &all);
        assert_ne!(code, 0, "{args:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(stderr.contains(name), "names the file: {stderr}");
        assert!(!output.exists(), "{args:?}: nothing written");
    }
    assert_eq!(listing(dir.path()), vec!["in.mp4"], "no temporaries left");
}

#[test]
fn codecs_lists_every_codec_this_build_writes() {
    let (code, stdout, stderr) = run(&["codecs"]);
    assert_eq!(code, 0, "{stderr}");
    for (codec, encoder) in [
        ("h264", "libx264"),
        ("hevc", "libx265"),
        ("av1", "libsvtav1"),
        ("prores", "prores_ks"),
        ("ffv1", "ffv1"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(codec))
            .unwrap_or_else(|| panic!("no {codec} line in {stdout}"));
        assert!(line.contains(encoder) && line.contains("yes"), "{line}");
    }
}

#[test]
fn an_hdr_input_is_refused_with_one_line_and_nothing_written() {
    let dir = tempdir();
    let input = dir.path().join("pq.mp4");
    hdr_clip(&input, "smpte2084");
    let (code, stderr) = style(&input, &[]);
    assert_ne!(code, 0);
    let line = stderr
        .lines()
        .find(|l| l.contains("HDR"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("pq.mp4") && line.contains("PQ"), "{line}");
    assert_eq!(listing(dir.path()), vec!["pq.mp4"], "nothing written");
}

/// A segments run records the codec in its manifest and the workers encode with it: the joined
/// video is what was asked (HEVC in MP4 tagged `hvc1`; ProRes 4444 in MOV keeping its profile's
/// tag), every frame and the audio in place.
#[test]
fn a_cloud_run_encodes_with_the_codec_asked() {
    let b = Backend::dir().unwrap();
    let spec = b.spec();
    let dir = tempdir();
    let input = clip(dir.path());
    let w = worker(&spec, "w0", &["--threads", "1"]);
    let cases: [(&[&str], &str, &str, &str); 2] = [
        (&["--codec", "hevc"], "in.styled.mp4", "hevc", "hvc1"),
        (
            &["--codec", "prores", "--prores-profile", "4444"],
            "in.styled.mov",
            "prores",
            "ap4h",
        ),
    ];
    for (n, (codec_args, name, codec, tag)) in cases.into_iter().enumerate() {
        let out_dir = dir.path().join(format!("cloud{n}"));
        let mut args = vec![
            input.to_str().unwrap(),
            "--style",
            STYLE,
            "--cloud",
            &spec,
            "--frames-per-job",
            "5",
            "--out-dir",
            out_dir.to_str().unwrap(),
        ];
        args.extend_from_slice(codec_args);
        let (code, log) = Proc::spawn(&args).wait();
        assert_eq!(code, 0, "coordinator: {log}");
        let output = out_dir.join(name);
        assert_same_timing_and_audio(codec, &input, &output, (160, 120));
        assert_eq!(video_field(&output, "codec_tag_string"), tag);
        assert_eq!(
            decoded_frame_count(&output),
            12,
            "decodes cleanly start to end"
        );
    }
    stop(w);
}
