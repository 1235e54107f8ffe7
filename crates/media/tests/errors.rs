//! Bad inputs and bad requests: each fails with one line naming the file and the problem.

mod common;

use common::*;
use stylize_media::{
    probe, DecodedFrame, EncodeOptions, FrameReader, MediaError, PixelFormatChoice, RgbImage,
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
        image: RgbImage::solid(32, 32, [0, 0, 0]),
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

#[test]
fn ffmpegs_own_reason_is_appended() {
    let d = tempdir();
    let input = p(&d, "in.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x64:rate=25:duration=0.2",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=48000:duration=0.2",
        "-c:v",
        "libx264",
        "-c:a",
        "libopus",
        input.to_str().unwrap(),
    ]);
    let info = probe(&input).unwrap();
    let out = p(&d, "o.mov");
    let err = VideoWriter::create(&out, &out, &info, &opts(PixelFormatChoice::Yuv420p))
        .err()
        .expect("MOV cannot hold Opus");
    // The errno alone ("Invalid argument") says nothing; the muxer's log line says why.
    assert_eq!(
        err.to_string(),
        format!(
            "{}: cannot write output (Invalid argument; mov: opus only supported in MP4.)",
            out.display()
        )
    );

    // A line is only blamed on the operation that logged it: the next one starts clean.
    let ok = p(&d, "o.mkv");
    let writer = VideoWriter::create(&ok, &ok, &info, &opts(PixelFormatChoice::Yuv420p)).unwrap();
    writer.finish().unwrap();
    let e = probe(&p(&d, "missing.mp4")).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: no such file", p(&d, "missing.mp4").display())
    );
}

#[test]
fn audio_without_parameters_is_refused_naming_the_input() {
    let d = tempdir();
    let input = p(&d, "late.ts");
    // The audio's packets start 10 s in, after FFmpeg has stopped probing: the
    // stream is declared but its sample rate and channels stay unknown.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25:duration=12",
        "-itsoffset",
        "10",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=48000:duration=2",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        input.to_str().unwrap(),
    ]);
    let info = probe(&input).unwrap();
    assert_eq!(info.audio.len(), 1);
    assert_eq!((info.audio[0].sample_rate, info.audio[0].channels), (0, 0));
    for name in ["out.mp4", "out.mkv"] {
        let out = p(&d, name);
        let tmp = p(&d, "out.tmp");
        let err = VideoWriter::create(&tmp, &out, &info, &opts(PixelFormatChoice::Yuv420p))
            .err()
            .expect("must refuse");
        assert!(
            matches!(err, MediaError::AudioUnusable { stream: 1, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{}: audio stream 1 (aac) cannot be copied: its sample rate and channel count \
                 could not be determined (its packets may be missing or start too late)",
                input.display()
            )
        );
        assert!(!tmp.exists(), "nothing written on refusal");
    }
}

#[test]
fn a_file_that_is_not_a_video_says_what_ffmpeg_found() {
    let d = tempdir();
    let path = p(&d, "clip.mp4");
    // An MP4 header with nothing after it: the demuxer opens it and then finds no index.
    std::fs::write(
        &path,
        [
            &[0u8, 0, 0, 24][..],
            b"ftypisom",
            &[0, 0, 2, 0],
            b"isomiso2",
        ]
        .concat(),
    )
    .unwrap();
    let err = probe(&path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("moov atom not found"), "{msg}");
    assert_eq!(msg.lines().count(), 1);
}
