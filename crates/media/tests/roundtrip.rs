//! Identity round trips (decode every frame, encode it back) checked with ffprobe: count, rate, duration, size, rotation, audio.

mod common;

use std::path::Path;

use common::*;
use stylize_media::{probe, FrameReader, PixelFormatChoice, VideoWriter};

/// The checks every identity round trip must pass.
fn assert_identity(input: &Path, output: &Path, pix: PixelFormatChoice, expect_size: (u32, u32)) {
    let (info, decoded, summary) = identity(input, output, &opts(pix));
    let n_in = video_packets(input);
    assert_eq!(decoded, n_in, "decoded frames vs input packets");
    assert_eq!(summary.frames, n_in, "encoded frames");
    assert_eq!(video_packets(output), n_in, "output frames");
    assert_eq!(info.frame_count, Some(n_in), "probe's frame count");

    assert_eq!(
        video_field(output, "r_frame_rate"),
        video_field(input, "r_frame_rate")
    );
    let frame = 1.0 / info.frame_rate.as_f64();
    let (span_in, span_out) = (video_span(input), video_span(output));
    assert!(
        (span_in - span_out).abs() <= frame + 1e-3,
        "video span {span_in} vs {span_out}"
    );
    let (dur_in, dur_out) = (format_duration(input), format_duration(output));
    assert!(
        (dur_in - dur_out).abs() <= frame + 1e-3,
        "duration {dur_in} vs {dur_out}"
    );

    assert_eq!(video_field(output, "width"), expect_size.0.to_string());
    assert_eq!(video_field(output, "height"), expect_size.1.to_string());
    assert_eq!(video_field(output, "codec_name"), "h264");
    assert_eq!(rotation(output), rotation(input), "rotation");

    let tracks = audio_stream_count(input);
    assert_eq!(audio_stream_count(output), tracks);
    assert_eq!(info.audio.len(), tracks);
    assert_eq!(summary.audio_packets == 0, tracks == 0);
    for n in 0..tracks {
        assert_eq!(
            audio_md5(output, n),
            audio_md5(input, n),
            "audio stream {n}"
        );
    }
}

#[test]
fn mono_aac_mp4() {
    let d = tempdir();
    let input = p(&d, "in.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25:duration=2",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000:duration=2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-ac",
        "1",
        input.to_str().unwrap(),
    ]);
    let info = probe(&input).unwrap();
    assert_eq!((info.width, info.height), (320, 240));
    assert_eq!(info.codec, "h264");
    assert_eq!(info.frame_rate, stylize_media::Rational::new(25, 1));
    assert!(
        (info.duration_secs - 2.0).abs() < 0.05,
        "{}",
        info.duration_secs
    );
    assert_eq!(info.audio.len(), 1);
    assert_eq!(
        (
            info.audio[0].codec.as_str(),
            info.audio[0].channels,
            info.audio[0].sample_rate
        ),
        ("aac", 1, 48000)
    );

    let output = p(&d, "out.mp4");
    assert_identity(&input, &output, PixelFormatChoice::Yuv420p, (320, 240));
    assert_interleaved(&output);
}

/// Audio written along the way, not all at the end: in file order the streams alternate many times.
fn assert_interleaved(path: &Path) {
    let csv = ffprobe(
        &["-show_entries", "packet=stream_index,pos", "-of", "csv=p=0"],
        path,
    );
    let mut packets: Vec<(u64, u32)> = csv
        .lines()
        .filter_map(|l| {
            let mut it = l.split(',');
            let s = it.next()?.parse().ok()?;
            let pos = it.next()?.parse().ok()?;
            Some((pos, s))
        })
        .collect();
    packets.sort();
    let switches = packets.windows(2).filter(|w| w[0].1 != w[1].1).count();
    assert!(switches >= 10, "only {switches} switches between streams");
}

#[test]
fn surround_audio_at_ntsc_rate_854x480() {
    let d = tempdir();
    let input = p(&d, "in.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=854x480:rate=30000/1001:duration=1.5",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:sample_rate=48000:duration=1.5",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-ac",
        "6",
        input.to_str().unwrap(),
    ]);
    let info = probe(&input).unwrap();
    assert_eq!(info.frame_rate, stylize_media::Rational::new(30000, 1001));
    assert_eq!(info.audio[0].channels, 6);
    let output = p(&d, "out.mp4");
    assert_identity(&input, &output, PixelFormatChoice::Yuv420p, (854, 480));
    assert_eq!(video_field(&output, "r_frame_rate"), "30000/1001");
    assert_eq!(video_field(&output, "avg_frame_rate"), "30000/1001");
}

#[test]
fn two_audio_tracks_into_mkv_and_mp4() {
    let d = tempdir();
    let input = p(&d, "in.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=718x406:rate=24:duration=1.5",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100:duration=1.5",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=660:sample_rate=48000:duration=1.5",
        "-map",
        "0",
        "-map",
        "1",
        "-map",
        "2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a:0",
        "aac",
        "-c:a:1",
        "libmp3lame",
        "-ac:a:1",
        "2",
        input.to_str().unwrap(),
    ]);
    assert_eq!(probe(&input).unwrap().audio.len(), 2);
    assert_identity(
        &input,
        &p(&d, "out.mkv"),
        PixelFormatChoice::Yuv420p,
        (718, 406),
    );
    assert_identity(
        &input,
        &p(&d, "out.mp4"),
        PixelFormatChoice::Yuv420p,
        (718, 406),
    );
}

#[test]
fn ntsc_rate_survives_matroska() {
    let d = tempdir();
    let input = p(&d, "in.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=30000/1001:duration=1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        input.to_str().unwrap(),
    ]);
    let info = probe(&input).unwrap();
    assert_eq!(info.frame_rate, stylize_media::Rational::new(30000, 1001));
    assert!(!info.frame_count_exact);
    assert_identity(
        &input,
        &p(&d, "out.mkv"),
        PixelFormatChoice::Yuv420p,
        (320, 240),
    );
    assert_identity(
        &input,
        &p(&d, "out.mp4"),
        PixelFormatChoice::Yuv420p,
        (320, 240),
    );
}

#[test]
fn no_audio_into_mov() {
    let d = tempdir();
    let input = p(&d, "in.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=30:duration=1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        input.to_str().unwrap(),
    ]);
    assert!(probe(&input).unwrap().audio.is_empty());
    assert_identity(
        &input,
        &p(&d, "out.mov"),
        PixelFormatChoice::Yuv420p,
        (640, 360),
    );
}

#[test]
fn odd_size_policy() {
    let d = tempdir();
    let input = p(&d, "in.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=321x241:rate=25:duration=1", // testsrc2 rounds sizes to even
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=48000:duration=1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv444p",
        "-c:a",
        "aac",
        input.to_str().unwrap(),
    ]);
    let info = probe(&input).unwrap();
    assert_eq!((info.width, info.height), (321, 241));
    assert_identity(
        &input,
        &p(&d, "out420.mp4"),
        PixelFormatChoice::Yuv420p,
        (320, 240),
    );
    assert_identity(
        &input,
        &p(&d, "out444.mp4"),
        PixelFormatChoice::Yuv444p,
        (321, 241),
    );
    assert_eq!(video_field(&p(&d, "out444.mp4"), "pix_fmt"), "yuv444p");
    assert_eq!(video_field(&p(&d, "out420.mp4"), "pix_fmt"), "yuv420p");
}

#[test]
fn rotation_is_kept() {
    let d = tempdir();
    let plain = p(&d, "plain.mp4");
    let input = p(&d, "in.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=30:duration=1",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=48000:duration=1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        plain.to_str().unwrap(),
    ]);
    // FFmpeg 5.1 turns the legacy rotate tag into a display matrix only on stream copy.
    ffmpeg(&[
        "-i",
        plain.to_str().unwrap(),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        input.to_str().unwrap(),
    ]);
    assert_eq!(rotation(&input), 90);
    let info = probe(&input).unwrap();
    assert_eq!(info.rotation_degrees, 90);
    assert_eq!(
        (info.width, info.height),
        (320, 180),
        "coded size, not rotated"
    );
    assert_identity(
        &input,
        &p(&d, "out.mp4"),
        PixelFormatChoice::Yuv420p,
        (320, 180),
    );
    assert_identity(
        &input,
        &p(&d, "out.mov"),
        PixelFormatChoice::Yuv420p,
        (320, 180),
    );
    let mkv = p(&d, "out.mkv");
    let err = VideoWriter::create(&mkv, &mkv, &info, &opts(PixelFormatChoice::Yuv420p))
        .err()
        .expect("must refuse");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: the .mkv container cannot keep the input's 90° rotation; use .mp4 or .mov",
            mkv.display()
        )
    );
}

#[test]
fn pcm_audio_needs_mkv() {
    let d = tempdir();
    let input = p(&d, "in.mov");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25:duration=1",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=48000:duration=1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "pcm_s16le",
        input.to_str().unwrap(),
    ]);
    let info = probe(&input).unwrap();
    let out = p(&d, "out.mp4");
    let tmp = p(&d, "out.tmp");
    let err = VideoWriter::create(&tmp, &out, &info, &opts(PixelFormatChoice::Yuv420p))
        .err()
        .expect("must refuse");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: the .mp4 container cannot hold audio stream 1 (pcm_s16le); use .mkv",
            out.display()
        )
    );
    assert!(!tmp.exists(), "nothing written on refusal");
    assert_identity(
        &input,
        &p(&d, "out.mkv"),
        PixelFormatChoice::Yuv420p,
        (160, 120),
    );
    assert_identity(
        &input,
        &p(&d, "out.mov"),
        PixelFormatChoice::Yuv420p,
        (160, 120),
    );
}

#[test]
fn raw_h264_without_container_timestamps() {
    let d = tempdir();
    let input = p(&d, "in.h264");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25:duration=1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        input.to_str().unwrap(),
    ]);
    let info = probe(&input).unwrap();
    let out = p(&d, "out.mp4");
    let (_, decoded, summary) = identity(&input, &out, &opts(PixelFormatChoice::Yuv420p));
    assert_eq!(decoded, 25);
    assert_eq!(summary.frames, 25);
    assert_eq!(video_packets(&out), 25);
    let span = video_span(&out);
    assert!(
        (span - 25.0 / info.frame_rate.as_f64()).abs() < 0.05,
        "span {span} at {}",
        info.frame_rate
    );
}

#[test]
fn reader_and_writer_move_to_worker_threads() {
    let d = tempdir();
    let input = p(&d, "in.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25:duration=1",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=48000:duration=1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        input.to_str().unwrap(),
    ]);
    let info = probe(&input).unwrap();
    let out = p(&d, "out.mp4");
    let reader = FrameReader::open(&info).unwrap();
    let mut writer =
        VideoWriter::create(&out, &out, &info, &opts(PixelFormatChoice::Yuv420p)).unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    let decode = std::thread::spawn(move || {
        for f in reader {
            tx.send(f.unwrap()).unwrap();
        }
    });
    let encode = std::thread::spawn(move || {
        for f in rx {
            writer.write(&f).unwrap();
        }
        writer.finish().unwrap()
    });
    decode.join().unwrap();
    let summary = encode.join().unwrap();
    assert_eq!(summary.frames, 25);
    assert_eq!(audio_md5(&out, 0), audio_md5(&input, 0));
}
