//! Pieces and segments: an input cut at keyframes, decoded piece by piece into frame ranges that
//! are encoded on their own and joined, against one encode of the whole input (lossless, so the
//! pictures must match exactly): frames, timestamps and audio.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use stylize_media::{
    plan_pieces, probe, write_pieces, write_pieces_telling, EncodeOptions, FrameReader,
    PieceFrames, PixelFormatChoice, SegmentJoiner, SplitPlan, VideoWriter,
};

fn lossless(preset: &str) -> EncodeOptions {
    EncodeOptions {
        crf: 0.0,
        preset: preset.into(),
        pixel_format: PixelFormatChoice::Yuv420p,
        ..EncodeOptions::default()
    }
}

/// What a worker does for `jobs` of `job_len` frames: decode the pieces holding each range and
/// encode it into its own segment (with `preset_of(job)`); then the joiner's part.
fn split_encode_join(
    input: &Path,
    dir: &Path,
    min_piece: u32,
    job_len: u32,
    preset_of: impl Fn(u32) -> &'static str,
) -> (SplitPlan, PathBuf) {
    let info = probe(input).unwrap();
    let plan = plan_pieces(&info, |_| min_piece).unwrap();
    let piece_path = |i: usize| dir.join(format!("piece-{i:03}.mkv"));
    let mut told = Vec::new();
    let sizes =
        write_pieces_telling(&info, &plan, piece_path, |i, size| told.push((i, size))).unwrap();
    assert_eq!(sizes.len(), plan.pieces.len());
    // Each piece is told once, in order, when complete on disk.
    let on_disk: Vec<(usize, u64)> = (0..sizes.len())
        .map(|i| (i, std::fs::metadata(piece_path(i)).unwrap().len()))
        .collect();
    assert_eq!(told, on_disk);
    assert_eq!(told.iter().map(|t| t.1).collect::<Vec<_>>(), sizes);
    let pieces: Vec<(PathBuf, _)> = plan
        .pieces
        .iter()
        .enumerate()
        .map(|(i, p)| (piece_path(i), *p))
        .collect();
    let mut segments = Vec::new();
    for (job, start) in (0..plan.frame_count).step_by(job_len as usize).enumerate() {
        let end = (start + job_len).min(plan.frame_count);
        let segment = dir.join(format!("segment-{job:03}.mkv"));
        let piece_info = probe(&pieces[0].0).unwrap();
        let mut writer = VideoWriter::create(
            &segment,
            &segment,
            &piece_info,
            &lossless(preset_of(job as u32)),
        )
        .unwrap();
        let mut expect = start;
        for frame in PieceFrames::new(pieces.clone(), start..end) {
            let (n, mut frame) = frame.unwrap();
            assert_eq!(n, expect, "frames come in order");
            expect += 1;
            // Stamped by order alone: the joiner puts the input's own times back.
            frame.index = u64::from(n - start);
            frame.pts = None;
            writer.write(&frame).unwrap();
        }
        assert_eq!(expect, end, "job {job} got all its frames");
        writer.finish().unwrap();
        segments.push((segment, start, end - start));
    }
    let output = dir.join("joined.mp4");
    let partial = dir.join("joined.partial");
    let mut joiner = SegmentJoiner::create(&partial, &output, &info, &segments[0].0).unwrap();
    assert_eq!(joiner.frame_count(), plan.frame_count);
    for (segment, first, frames) in &segments {
        joiner.append(segment, *first, *frames).unwrap();
    }
    joiner.finish().unwrap();
    std::fs::rename(&partial, &output).unwrap();
    (plan, output)
}

/// One lossless encode of the whole input through the same writer.
fn whole(input: &Path, dir: &Path) -> PathBuf {
    let out = dir.join("whole.mp4");
    identity(input, &out, &lossless("fast"));
    out
}

fn assert_same_video(joined: &Path, whole: &Path, input: &Path) {
    let (a, b) = (all_frames(joined), all_frames(whole));
    assert_eq!(a.len(), b.len(), "frame count");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(x == y, "frame {i} differs");
    }
    assert_eq!(frame_times(joined), frame_times(whole), "frame times");
    assert_eq!(decoded_frame_count(joined), video_packets(joined));
    for n in 0..audio_stream_count(input) {
        assert_eq!(audio_md5(joined, n), audio_md5(input, n), "audio {n}");
    }
}

#[test]
fn b_frames_and_jobs_that_are_not_gop_multiples() {
    let d = tempdir();
    let input = scene_clip(
        d.path(),
        "in.mp4",
        "160x120",
        "25",
        100,
        &["sine=frequency=440:sample_rate=48000:duration=4"],
        &["-preset", "medium", "-g", "12", "-bf", "3"],
    );
    let (plan, joined) = split_encode_join(&input, d.path(), 20, 17, |_| "fast");
    assert_eq!(plan.frame_count, 100);
    assert!(plan.pieces.len() >= 4, "{plan:?}");
    assert!(plan
        .pieces
        .iter()
        .all(|p| p.frames >= 20 || p.first_frame + p.frames == 100));
    assert_same_video(&joined, &whole(&input, d.path()), &input);
}

#[test]
fn keyframes_far_apart_with_short_jobs() {
    let d = tempdir();
    let input = scene_clip(
        d.path(),
        "in.mp4",
        "160x120",
        "30",
        300,
        &[],
        &["-g", "250", "-keyint_min", "250", "-sc_threshold", "0"],
    );
    let (plan, joined) = split_encode_join(&input, d.path(), 10, 20, |_| "fast");
    assert_eq!(
        plan.pieces.len(),
        2,
        "cut only at the two keyframes: {plan:?}"
    );
    assert_eq!(plan.pieces[1].first_frame, 250);
    assert_same_video(&joined, &whole(&input, d.path()), &input);
}

#[test]
fn variable_frame_rate_keeps_every_timestamp() {
    let d = tempdir();
    // 60 frames at 25 fps, with a 0.7 s pause after frame 29.
    let input = scene_clip(
        d.path(),
        "in.mkv",
        "160x120",
        "25",
        60,
        &[],
        &[
            "-vf",
            "setpts='(N+if(gt(N,29),17,0))/25/TB'",
            "-fps_mode",
            "passthrough",
            "-g",
            "15",
        ],
    );
    let (_, joined) = split_encode_join(&input, d.path(), 10, 13, |_| "fast");
    let times = frame_times(&joined);
    assert_eq!(times.len(), 60);
    let t = |i: usize| times[i].parse::<f64>().unwrap();
    assert!((t(30) - t(29) - 0.72).abs() < 0.005, "the pause: {times:?}");
    assert_same_video(&joined, &whole(&input, d.path()), &input);
}

#[test]
fn a_clip_cut_without_reencoding_drops_its_hidden_frames() {
    let d = tempdir();
    let full = scene_clip(
        d.path(),
        "full.mp4",
        "160x120",
        "25",
        100,
        &["sine=frequency=440:sample_rate=48000:duration=4"],
        &["-g", "25"],
    );
    let cut = copy_cut(&full, "1.5", d.path(), "cut.mp4");
    let shown = FrameReader::open(&probe(&cut).unwrap()).unwrap().count() as u32;
    let (plan, joined) = split_encode_join(&cut, d.path(), 10, 16, |_| "fast");
    assert!(plan.pieces[0].hidden > 0, "{plan:?}");
    assert_eq!(plan.frame_count, shown);
    assert_same_video(&joined, &whole(&cut, d.path()), &cut);
}

#[test]
fn segments_with_other_codec_headers_join_with_their_own_in_band() {
    let d = tempdir();
    let input = scene_clip(d.path(), "in.mp4", "160x120", "25", 60, &[], &["-g", "10"]);
    // ultrafast writes other parameter sets (one reference frame, CAVLC) than medium.
    let (_, joined) = split_encode_join(&input, d.path(), 10, 20, |job| {
        if job == 1 {
            "ultrafast"
        } else {
            "medium"
        }
    });
    assert_same_video(&joined, &whole(&input, d.path()), &input);
}

#[test]
fn segments_out_of_order_or_short_are_refused() {
    let d = tempdir();
    let input = scene_clip(d.path(), "in.mp4", "160x120", "25", 30, &[], &["-g", "10"]);
    let info = probe(&input).unwrap();
    let plan = plan_pieces(&info, |_| 10).unwrap();
    let piece = |i: usize| d.path().join(format!("p{i}.mkv"));
    write_pieces(&info, &plan, piece).unwrap();
    let out = d.path().join("out.mp4");
    let mut joiner = SegmentJoiner::create(&d.path().join("x"), &out, &info, &piece(0)).unwrap();
    let wrong_start = joiner.append(&piece(1), 10, 10).unwrap_err().to_string();
    assert!(wrong_start.contains("join is at frame 0"), "{wrong_start}");
    let wrong_count = joiner.append(&piece(0), 0, 12).unwrap_err().to_string();
    assert!(
        wrong_count.contains("holds 10 frames, not 12"),
        "{wrong_count}"
    );
    joiner.append(&piece(0), 0, 10).unwrap();
    let short = joiner.finish().unwrap_err().to_string();
    assert!(short.contains("10 of the input's 30 frames"), "{short}");
}
