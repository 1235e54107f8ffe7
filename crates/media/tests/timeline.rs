//! Inputs whose timeline does not start at 0 (MPEG-TS, MP4 cut with `-c copy`): the output
//! starts at 0 in sync; frame counts under edit lists; decoded duration vs the container's.

mod common;

use std::path::Path;

use common::*;
use stylize_media::{probe, FrameReader, PixelFormatChoice};

/// A 25 fps clip with AAC audio; x264's default GOP leaves one keyframe, at 0.
fn make_clip(path: &Path, seconds: u32) {
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size=320x240:rate=25:duration={seconds}"),
        "-f",
        "lavfi",
        "-i",
        &format!("sine=frequency=440:sample_rate=48000:duration={seconds}"),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        path.to_str().unwrap(),
    ]);
}

/// Round trips `input` into `output` and checks the output's timeline: it starts
/// at 0, lasts as long as the input (within a frame), and every copied audio
/// packet sits at the same distance from the first video frame as in the input.
/// Returns how many leading input audio packets were left out.
fn assert_rebased(input: &Path, output: &Path) -> usize {
    let (info, decoded, summary) = identity(input, output, &opts(PixelFormatChoice::Yuv420p));
    let frame = 1.0 / info.frame_rate.as_f64();
    assert_eq!(summary.frames, decoded);
    assert_eq!(video_packets(output), decoded);

    let start_out = format_start(output);
    assert!(
        start_out.abs() < 1e-3,
        "{}: starts at {start_out}",
        output.display()
    );
    let (v_in, v_out) = (first_frame_time(input), first_frame_time(output));
    assert!(
        (v_out - (v_in - info.start_secs)).abs() < frame,
        "first frame at {v_out}, input's at {v_in} from a start of {}",
        info.start_secs
    );
    let (dur_in, dur_out) = (format_duration(input), format_duration(output));
    assert!(
        (dur_in - dur_out).abs() <= frame + 1e-3,
        "{}: duration {dur_out} vs the input's {dur_in}",
        output.display()
    );

    // A/V sync: the copied packets are the input's last ones, in order, each at
    // the same offset from the first video frame (ms rounding in MP4/Matroska aside).
    let (a_in, a_out) = (audio_packets(input, 0), audio_packets(output, 0));
    assert!(!a_out.is_empty() && a_out.len() <= a_in.len());
    let left_out = a_in.len() - a_out.len();
    for i in [0, a_out.len() / 2, a_out.len() - 1] {
        let (t_in, t_out) = (a_in[i + left_out].0 - v_in, a_out[i].0 - v_out);
        assert!(
            (t_in - t_out).abs() < 2e-3,
            "{}: audio packet {i} at {t_out} s from the video, input's at {t_in}",
            output.display()
        );
    }
    left_out
}

/// The payload hashes of audio stream 0's packets.
fn hashes(path: &Path) -> Vec<String> {
    audio_packets(path, 0).into_iter().map(|(_, h)| h).collect()
}

#[test]
fn mpegts_input_starts_at_zero_in_sync() {
    let d = tempdir();
    let mp4 = p(&d, "src.mp4");
    let ts = p(&d, "in.ts");
    make_clip(&mp4, 3);
    ffmpeg(&[
        "-i",
        mp4.to_str().unwrap(),
        "-c",
        "copy",
        ts.to_str().unwrap(),
    ]);

    let info = probe(&ts).unwrap();
    let start = format_start(&ts);
    assert!(start > 1.0, "the TS muxer's usual offset, got {start}");
    assert!(
        (info.start_secs - start).abs() < 1e-3,
        "{} vs {start}",
        info.start_secs
    );
    let container = info.container_duration_secs.unwrap();
    assert!(
        (container - format_duration(&ts)).abs() < 1e-3,
        "{container}"
    );

    // MPEG-TS carries AAC with ADTS headers, which MP4 and Matroska store
    // without: the payloads to compare are FFmpeg's own ADTS-stripped ones.
    let ts_md5 = String::from_utf8(ffmpeg_stdout(&[
        "-i",
        ts.to_str().unwrap(),
        "-map",
        "0:a",
        "-c",
        "copy",
        "-bsf:a",
        "aac_adtstoasc",
        "-f",
        "md5",
        "-",
    ]))
    .unwrap();
    for name in ["out.mp4", "out.mkv", "out.mov"] {
        let out = p(&d, name);
        assert_eq!(assert_rebased(&ts, &out), 0, "{name}: every packet copied");
        assert_eq!(audio_md5(&out, 0), ts_md5.trim(), "{name}");
    }
}

#[test]
fn cut_mp4_with_an_edit_list_starts_at_zero_in_sync() {
    let d = tempdir();
    let full = p(&d, "full.mp4");
    make_clip(&full, 4);
    // Stream copy cannot cut between keyframes: the file keeps everything from
    // the keyframe at 0 and an edit list hides the first 1.5 s (audio included).
    let cut = copy_cut(&full, "1.5", d.path(), "cut.mp4");

    let info = probe(&cut).unwrap();
    assert!(info.start_secs.abs() < 1e-3, "{}", info.start_secs);
    let shown = decoded_frame_count(&cut);
    assert!(video_packets(&cut) > shown, "the cut keeps hidden frames");
    assert_eq!(info.frame_count, Some(shown), "frames the edit list shows");
    assert!(!info.frame_count_exact);
    let mut reader = FrameReader::open(&info).unwrap();
    let yielded = reader
        .by_ref()
        .map(|f| f.unwrap().index)
        .collect::<Vec<_>>();
    assert_eq!(yielded, (0..shown).collect::<Vec<_>>());
    let full_info = probe(&full).unwrap();
    assert!(full_info.frame_count_exact);
    assert_eq!(full_info.frame_count, Some(100));

    // MP4 and MOV hide the pre-roll again behind an edit list: every packet is copied.
    for name in ["out.mp4", "out.mov"] {
        let out = p(&d, name);
        assert_eq!(assert_rebased(&cut, &out), 0, "{name}");
        assert_eq!(audio_md5(&out, 0), audio_md5(&cut, 0), "{name}");
        assert_eq!(probe(&out).unwrap().frame_count, Some(shown));
    }

    // Matroska cannot: it would start the video a second late. All but the last
    // packet before 0 are left out, and what is copied is unchanged.
    let mkv = p(&d, "out.mkv");
    let left_out = assert_rebased(&cut, &mkv);
    let before_zero = audio_packets(&cut, 0)
        .iter()
        .filter(|(t, _)| *t < 0.0)
        .count();
    assert!(before_zero > 10, "{before_zero} pre-roll packets");
    assert_eq!(left_out, before_zero - 1);
    assert_eq!(hashes(&mkv), hashes(&cut)[left_out..].to_vec());
}

#[test]
fn decoded_duration_matches_the_container_when_complete() {
    let d = tempdir();
    let mp4 = p(&d, "in.mp4");
    make_clip(&mp4, 3);
    let mkv = p(&d, "in.mkv");
    let ts = p(&d, "in.ts");
    for out in [&mkv, &ts] {
        ffmpeg(&[
            "-i",
            mp4.to_str().unwrap(),
            "-c",
            "copy",
            out.to_str().unwrap(),
        ]);
    }
    for input in [&mp4, &mkv, &ts] {
        let info = probe(input).unwrap();
        let mut reader = FrameReader::open(&info).unwrap();
        assert_eq!(reader.decoded_duration_secs(), 0.0);
        for f in reader.by_ref() {
            f.unwrap();
        }
        let decoded = reader.decoded_duration_secs();
        let container = info.container_duration_secs.unwrap();
        assert!(
            (decoded - container).abs() <= 1.0 / 25.0 + 1e-3,
            "{}: decoded {decoded} s of {container} s",
            input.display()
        );
    }
}

#[test]
fn truncated_mkv_is_caught_by_the_decoded_duration() {
    let d = tempdir();
    let mkv = p(&d, "cut.mkv");
    make_clip(&mkv, 4);
    let bytes = std::fs::read(&mkv).unwrap();
    std::fs::write(&mkv, &bytes[..bytes.len() / 2]).unwrap();

    let info = probe(&mkv).unwrap();
    // The header still claims the whole length.
    let container = info.container_duration_secs.unwrap();
    assert!((container - 4.0).abs() < 0.1, "{container}");
    let mut reader = FrameReader::open(&info).unwrap();
    let errors = reader.by_ref().filter(|f| f.is_err()).count();
    assert_eq!(errors, 0, "a cut Matroska file ends without an error");
    let decoded = reader.decoded_duration_secs();
    assert!(
        decoded > 0.5 && decoded < container - 1.0,
        "decoded {decoded} s of {container} s"
    );
    // The frames decoded reach that far (the video starts up to a frame after
    // the audio here: ffmpeg shifted it for AAC's priming packet).
    let frames = reader.frames_read() as f64 / 25.0;
    assert!(
        decoded >= frames - 1e-6 && decoded <= frames + 1.0 / 25.0,
        "{} frames, {decoded} s",
        reader.frames_read()
    );
}
