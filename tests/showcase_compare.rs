//! `--compare` on a normal run: the side-by-side video beside the output, original | styled, audio copied.
mod common;

use common::showcase::*;
use common::*;

#[test]
fn compare_writes_original_and_styled_side_by_side() {
    let dir = tempdir();
    let input = scene_clip(
        dir.path(),
        "clip.mp4",
        "200x120",
        "25",
        15,
        &["sine=f=440:sample_rate=48000"],
        &["-ac", "1"],
    );
    let (code, _, stderr) = run(&[input.to_str().unwrap(), "--style", "preset:4", "--compare"]);
    assert_eq!(code, 0, "{stderr}");
    let styled = dir.path().join("clip.styled.mp4");
    let side = dir.path().join("clip.styled.compare.mp4");
    assert!(
        stderr.contains("clip.styled.compare.mp4"),
        "the summary names the side-by-side video: {stderr}"
    );

    let (pi, ps) = (probe_json(&input), probe_json(&side));
    let v = video_stream(&ps);
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(400), Some(120))
    );
    assert_eq!(v["nb_read_frames"], video_stream(&pi)["nb_read_frames"]);
    assert_eq!(v["r_frame_rate"], video_stream(&pi)["r_frame_rate"]);
    assert_eq!(audio_md5(&side, 0), audio_md5(&input, 0), "audio copied");

    for n in [0, 7, 14] {
        let (_, _, wide) = frame_rgb(&side, n);
        let (_, _, original) = frame_rgb(&input, n);
        let (_, _, painted) = frame_rgb(&styled, n);
        assert_side_by_side(400, &wide, &original, &painted, &format!("frame {n}"));
    }
    assert_eq!(
        listing(dir.path()),
        vec!["clip.mp4", "clip.styled.compare.mp4", "clip.styled.mp4"],
        "no temporaries"
    );

    // An existing side-by-side video is not replaced without --overwrite, and nothing is styled.
    std::fs::remove_file(&styled).unwrap();
    let (code, _, stderr) = run(&[input.to_str().unwrap(), "--style", "preset:4", "--compare"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("clip.styled.compare.mp4: output already exists"),
        "{stderr}"
    );
    assert!(!styled.exists());

    // -o names the side-by-side video after the chosen output.
    let out = dir.path().join("mine.mkv");
    let (code, _, stderr) = run(&[
        input.to_str().unwrap(),
        "--style",
        "preset:4",
        "--compare",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(dir.path().join("mine.compare.mkv").exists());
}

#[test]
fn compare_of_a_rotated_video_is_side_by_side_as_displayed() {
    let dir = tempdir();
    // 200×120 coded, shown 120×200 (turned 90° counter-clockwise).
    let input = rotated_clip(dir.path(), "rot.mp4", "200x120", 10);
    let (code, _, stderr) = run(&[input.to_str().unwrap(), "--style", "preset:4", "--compare"]);
    assert_eq!(code, 0, "{stderr}");
    let styled = dir.path().join("rot.styled.mp4");
    let side = dir.path().join("rot.styled.compare.mp4");

    // Stacked in coded space, rotation kept: a player shows it 240×200, two upright pictures across.
    let probe = probe_json(&side);
    let v = video_stream(&probe);
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(200), Some(240))
    );
    assert_eq!(rotation(&side), 90);

    for n in [0, 5, 9] {
        let (w, h, wide) = displayed_frame_rgb(&side, n);
        assert_eq!((w, h), (240, 200));
        let (ow, oh, original) = displayed_frame_rgb(&input, n);
        let (_, _, painted) = displayed_frame_rgb(&styled, n);
        assert_eq!((ow, oh), (120, 200));
        assert_side_by_side(w, &wide, &original, &painted, &format!("frame {n}"));
        // Upright, not merely the right halves: the original turned the other way would not match.
        let left = columns(w, &wide, 0, w / 2);
        let lo = mean_abs_diff(&left, &original);
        let flipped: Vec<u8> = original.chunks_exact(3).rev().flatten().copied().collect();
        assert!(
            mean_abs_diff(&left, &flipped) > 3.0 * lo.max(1.0),
            "frame {n}: left half upside down"
        );
    }
}
