//! Bad inputs and bad requests: each fails with one line naming the file and the problem.

mod common;

use common::*;
use stylize_media::{
    probe, DecodedFrame, EncodeOptions, FrameReader, MediaError, PixelFormatChoice, RgbFrame,
    VideoWriter,
};

#[test]
fn missing_file() {
    let d = tempdir();
    let path = p(&d, "nope.mp4");
    let err = probe(&path).unwrap_err();
    assert!(matches!(err, MediaError::NotFound { .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("{}: no such file", path.display()));
}

#[test]
fn text_file_named_mp4() {
    let d = tempdir();
    let path = p(&d, "clip.mp4");
    std::fs::write(&path, "this is not a video, just some words\n".repeat(50)).unwrap();
    let err = probe(&path).unwrap_err();
    assert!(matches!(err, MediaError::NotAVideo { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}: not a video file (", path.display())),
        "{msg}"
    );
    assert_eq!(msg.lines().count(), 1);
}

#[test]
fn audio_only_file() {
    let d = tempdir();
    let path = p(&d, "voice.m4a");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=48000:duration=1",
        "-c:a",
        "aac",
        path.to_str().unwrap(),
    ]);
    let err = probe(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: no video stream", path.display())
    );
}

fn make_clip(path: &std::path::Path, extra: &[&str]) {
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=30:duration=4",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=48000:duration=4",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
    ];
    args.extend_from_slice(extra);
    args.push(path.to_str().unwrap());
    ffmpeg(&args);
}

fn truncate_half(path: &std::path::Path) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
}

#[test]
fn truncated_mp4_yields_what_it_has_then_an_error() {
    let d = tempdir();
    let path = p(&d, "cut.mp4");
    // Index first, so the cut file still opens and the missing half is detected.
    make_clip(&path, &["-movflags", "+faststart"]);
    truncate_half(&path);
    let info = probe(&path).unwrap();
    assert_eq!(info.frame_count, Some(120));
    let mut frames = 0u64;
    let mut last_err = None;
    for item in FrameReader::open(&info).unwrap() {
        match item {
            Ok(f) => {
                assert!(last_err.is_none(), "no frames after the error");
                assert_eq!(f.index, frames);
                frames += 1;
            }
            Err(e) => last_err = Some(e),
        }
    }
    assert!(frames > 20 && frames < 120, "{frames} frames");
    let err = last_err.expect("a truncated file must end with an error");
    assert!(
        matches!(err, MediaError::Corrupt { frame, .. } if frame == frames),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "{}: truncated or corrupt at frame {frames}: ",
            path.display()
        )),
        "{msg}"
    );
}

#[test]
fn truncated_mkv_ends_early_and_the_count_shows_it() {
    let d = tempdir();
    let path = p(&d, "cut.mkv");
    make_clip(&path, &[]);
    truncate_half(&path);
    let info = probe(&path).unwrap();
    let mut reader = FrameReader::open(&info).unwrap();
    let mut ok = 0u64;
    for item in &mut reader {
        if item.is_ok() {
            ok += 1;
        }
    }
    assert_eq!(reader.frames_read(), ok);
    assert!(
        ok > 20 && ok < info.frame_count.unwrap(),
        "{ok} of {:?}",
        info.frame_count
    );
}

#[test]
fn unsupported_output_container() {
    let d = tempdir();
    let input = p(&d, "in.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x64:rate=25:duration=0.2",
        "-c:v",
        "libx264",
        input.to_str().unwrap(),
    ]);
    let info = probe(&input).unwrap();
    let tmp = p(&d, "out.tmp");
    let err = VideoWriter::create(
        &tmp,
        std::path::Path::new("out.avi"),
        &info,
        &EncodeOptions::default(),
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        "out.avi: unsupported container (use .mp4, .mkv or .mov)"
    );
    assert!(!tmp.exists());
}

#[test]
fn bad_encode_options_and_frames() {
    let d = tempdir();
    let input = p(&d, "in.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x64:rate=25:duration=0.2",
        "-c:v",
        "libx264",
        input.to_str().unwrap(),
    ]);
    let info = probe(&input).unwrap();
    let out = p(&d, "out.mp4");
    let bad_crf = EncodeOptions {
        crf: 60.0,
        ..EncodeOptions::default()
    };
    let e = VideoWriter::create(&out, &out, &info, &bad_crf)
        .err()
        .unwrap();
    assert!(e.to_string().contains("CRF 60 is outside 0–51"), "{e}");
    let bad_preset = EncodeOptions {
        preset: "warp".into(),
        ..EncodeOptions::default()
    };
    let e = VideoWriter::create(&out, &out, &info, &bad_preset)
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("unknown x264 preset \"warp\""),
        "{e}"
    );

    let mut w = VideoWriter::create(&out, &out, &info, &opts(PixelFormatChoice::Yuv420p)).unwrap();
    let wrong = DecodedFrame {
        index: 3,
        pts: Some(0),
        image: RgbFrame::solid(32, 32, [0, 0, 0]),
    };
    let e = w.write(&wrong).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: frame 3 is 32x32 (3072 bytes), expected 64x64 RGB24",
            out.display()
        )
    );
}
