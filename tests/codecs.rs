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

/// The clip of [`clip`] as 10-bit H.264 (High 10, yuv420p10le), as a camera records it.
fn ten_bit_clip(dir: &Path) -> PathBuf {
    scene_clip(
        dir,
        "in10.mp4",
        "160x120",
        "25",
        12,
        &["sine=f=440:sample_rate=48000"],
        &["-pix_fmt", "yuv420p10le"],
    )
}

/// A 10-bit input keeps its 10 bits where the codec holds them (HEVC Main 10, ProRes, FFV1) and
/// stays 8-bit in H.264 unless asked. The styled picture is the 8-bit path's: the network turns
/// differences below one 8-bit level at its input into a few levels at its output on this small,
/// sharp pattern, so the yardstick is what rounding the input itself to 8 bits changes.
#[test]
fn a_ten_bit_input_comes_out_ten_bit_with_the_picture_of_the_8_bit_path() {
    let dir = tempdir();
    let input = ten_bit_clip(dir.path());
    assert_eq!(profile_and_pixels(&input).1, "yuv420p10le");
    let rounded_input = dir.path().join("in8.mkv");
    ffmpeg(&[
        "-i",
        input.to_str().unwrap(),
        "-map",
        "0",
        "-c:a",
        "copy",
        "-c:v",
        "libx264",
        "-crf",
        "0",
        "-pix_fmt",
        "yuv420p",
        rounded_input.to_str().unwrap(),
    ]);
    let styled_at = |input: &Path, args: &[&str], name: &str| {
        let out_dir = dir.path().join(name);
        let mut all = args.to_vec();
        all.extend_from_slice(&["--steady", "0", "--out-dir", out_dir.to_str().unwrap()]);
        let (code, stderr) = style(input, &all);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        let output = std::fs::read_dir(&out_dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let codec = video_field(&output, "codec_name");
        assert_same_timing_and_audio(&codec, input, &output, (160, 120));
        output
    };
    let eight_bit = styled_at(
        &input,
        &["--codec", "hevc", "--pixel-format", "yuv420p"],
        "hevc8",
    );
    assert_eq!(
        profile_and_pixels(&eight_bit),
        ("Main".into(), "yuv420p".into())
    );
    let from_rounded = styled_at(&rounded_input, &["--codec", "hevc"], "rounded");
    let frame = |path: &Path| frame_rgb(path, 6).2;
    let yardstick = mean_abs_diff(&frame(&eight_bit), &frame(&from_rounded));
    // (--codec and more, ffprobe's profile and pixel format)
    let cases: [(&[&str], &str, &str); 5] = [
        (&["--codec", "hevc"], "Main 10", "yuv420p10le"),
        (&["--codec", "prores"], "HQ", "yuv422p10le"),
        (&["--codec", "ffv1"], "unknown", "yuv444p10le"),
        (&["--codec", "h264"], "High", "yuv420p"),
        (
            &["--codec", "h264", "--pixel-format", "yuv420p10le"],
            "High 10",
            "yuv420p10le",
        ),
    ];
    for (n, (args, profile, pixels)) in cases.into_iter().enumerate() {
        let output = styled_at(&input, args, &format!("out{n}"));
        assert_eq!(
            profile_and_pixels(&output),
            (profile.to_string(), pixels.to_string()),
            "{args:?}"
        );
        let from_8_bit = mean_abs_diff(&frame(&eight_bit), &frame(&output));
        assert!(
            from_8_bit < yardstick + 1.0,
            "{args:?}: {from_8_bit:.2} levels from the 8-bit path (rounding the input: {yardstick:.2})"
        );
        let styled = mean_abs_diff(&frame(&input), &frame(&output));
        assert!(
            styled > 12.0,
            "{args:?}: the picture is styled ({styled:.1})"
        );
    }
}

/// No 8-bit step between a 10-bit input and a 10-bit output: with the style at strength 0 the
/// network hands its input back, so the output is the input within the 10-bit round trip, several
/// times closer than through 8 bits.
#[test]
fn a_ten_bit_picture_goes_through_without_an_8_bit_step() {
    let dir = tempdir();
    let input = scene_clip(
        dir.path(),
        "in444.mkv",
        "160x120",
        "25",
        8,
        &[],
        &["-pix_fmt", "yuv444p10le", "-crf", "0"],
    );
    let through = |pixel_format: &str| {
        let output = dir.path().join(format!("{pixel_format}.mkv"));
        let (code, stderr) = style(
            &input,
            &[
                "--strength",
                "0",
                "--steady",
                "0",
                "--codec",
                "ffv1",
                "--pixel-format",
                pixel_format,
                "-o",
                output.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{stderr}");
        mean_abs_diff_16(&frame_rgb48(&input, 4), &frame_rgb48(&output, 4))
    };
    let (deep, shallow) = (through("yuv444p10le"), through("yuv444p"));
    assert!(deep < 0.06, "10-bit path: {deep:.3} levels from the input");
    assert!(
        deep * 3.0 < shallow,
        "10-bit {deep:.3} vs 8-bit {shallow:.3} levels"
    );
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

/// A 10-bit input through the cloud keeps its depth both ways: workers read the pieces at 10 bits
/// and encode Main 10 segments; frames travel as 16-bit PNG and are restitched at 10 bits. Either
/// output equals the local run of the same settings (lossless, so any 8-bit step would show as
/// levels of difference, not hundredths).
#[test]
fn a_ten_bit_input_stays_ten_bit_through_the_cloud() {
    let b = Backend::dir().unwrap();
    let spec = b.spec();
    let dir = tempdir();
    let input = ten_bit_clip(dir.path());
    let settings = ["--codec", "hevc", "--crf", "0"];
    let local = dir.path().join("local.mp4");
    let mut args = settings.to_vec();
    // One thread: the arithmetic order of a worker with --threads 1.
    args.extend_from_slice(&["--threads", "1", "-o", local.to_str().unwrap()]);
    let (code, stderr) = style(&input, &args);
    assert_eq!(code, 0, "{stderr}");
    let w = worker(&spec, "w0", &["--threads", "1"]);
    for transport in ["segments", "frames"] {
        let output = dir.path().join(format!("{transport}.mp4"));
        let mut args = vec![
            input.to_str().unwrap(),
            "--style",
            STYLE,
            "--cloud",
            &spec,
            "--transport",
            transport,
            "--frames-per-job",
            "5",
            "-o",
            output.to_str().unwrap(),
        ];
        args.extend_from_slice(&settings);
        let (code, log) = Proc::spawn(&args).wait();
        assert_eq!(code, 0, "coordinator: {log}");
        assert_same_timing_and_audio("hevc", &input, &output, (160, 120));
        assert_eq!(
            profile_and_pixels(&output),
            ("Main 10".into(), "yuv420p10le".into()),
            "{transport}"
        );
        for n in [0, 6, 11] {
            let apart = mean_abs_diff_16(&frame_rgb48(&local, n), &frame_rgb48(&output, n));
            assert!(
                apart < 0.02,
                "{transport}: frame {n} is {apart:.3} levels from local"
            );
        }
    }
    stop(w);
}

/// x265 (3.5) stamps the packets of a stream of fewer than three frames with an uninitialised
/// decode time unless told there are no B-frames: such a clip (or the one- or two-frame tail job
/// of a segments run) sometimes failed to mux with "pts < dts". Several tries, as the fault came
/// and went with what the memory held.
#[test]
fn hevc_of_one_or_two_frames_keeps_sound_timestamps() {
    let dir = tempdir();
    for frames in [1, 2] {
        let input = scene_clip(
            dir.path(),
            &format!("in{frames}.mp4"),
            "64x48",
            "25",
            frames,
            &[],
            &[],
        );
        for attempt in 0..3 {
            let output = dir.path().join(format!("out{frames}-{attempt}.mkv"));
            let (code, stderr) = style(
                &input,
                &[
                    "--codec",
                    "hevc",
                    "--steady",
                    "0",
                    "-o",
                    output.to_str().unwrap(),
                ],
            );
            assert_eq!(code, 0, "{frames} frames: {stderr}");
            assert_eq!(frame_times(&output), frame_times(&input), "{frames} frames");
        }
    }
}
