//! Seeking for previews: `FrameReader::open_at` / `seek_to` land on the right frame, fast.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use stylize_media::{probe, DecodedFrame, FrameReader, VideoInfo};

/// testsrc2 changes every frame; a keyframe every 2 s, as cameras and encoders commonly place them.
fn make_clip(path: &Path, size: &str, seconds: u32) {
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size={size}:rate=25:duration={seconds}"),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "50",
        path.to_str().unwrap(),
    ]);
}

fn first_at(info: &VideoInfo, seconds: f64) -> Option<DecodedFrame> {
    FrameReader::open_at(info, seconds)
        .unwrap()
        .next()
        .map(|f| f.unwrap())
}

#[test]
fn seeking_lands_on_the_frame_ffmpeg_picks() {
    let d = tempdir();
    let mp4 = p(&d, "in.mp4");
    make_clip(&mp4, "320x240", 10);
    let info = probe(&mp4).unwrap();
    let all: Vec<DecodedFrame> = FrameReader::open(&info)
        .unwrap()
        .map(|f| f.unwrap())
        .collect();
    assert_eq!(all.len(), 250);

    // 5.3 s falls inside frame 132 (5.28–5.32 s): the first frame at or after it is 133.
    let f = first_at(&info, 5.3).unwrap();
    assert_eq!(f.index, 133, "the frame's index in the whole video");
    assert_eq!(f.pts, all[133].pts);
    assert_eq!(
        f.image.data, all[133].image.data,
        "same decode as reading from the start"
    );

    // ffmpeg's accurate input seeking picks the same frame (its RGB conversion
    // rounds differently, so compare closely, not exactly, and against the neighbours).
    let ff = ffmpeg_stdout(&[
        "-ss",
        "5.3",
        "-i",
        mp4.to_str().unwrap(),
        "-frames:v",
        "1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]);
    let here = mean_abs_diff(&f.image.data, &ff);
    for other in [132, 134] {
        let there = mean_abs_diff(&all[other].image.data, &ff);
        assert!(
            here * 4.0 < there,
            "frame 133 differs by {here}, frame {other} by {there}"
        );
    }
    assert!(here < 2.0, "{here}");

    // A keyframe exactly, the start, and past the end.
    assert_eq!(first_at(&info, 4.0).unwrap().index, 100);
    assert_eq!(first_at(&info, 0.0).unwrap().index, 0);
    assert_eq!(first_at(&info, -3.0).unwrap().index, 0);
    assert!(first_at(&info, 60.0).is_none());

    // Later frames count on, and a reader can seek again, backwards too.
    let mut reader = FrameReader::open_at(&info, 9.9).unwrap();
    let tail: Vec<u64> = reader.by_ref().map(|f| f.unwrap().index).collect();
    assert_eq!(tail, vec![248, 249]);
    assert_eq!(reader.frames_read(), 2);
    assert!((reader.decoded_duration_secs() - 10.0).abs() < 1e-6);
    reader.seek_to(2.0).unwrap();
    let again = reader.next().unwrap().unwrap();
    assert_eq!(again.index, 50);
    assert_eq!(again.image.data, all[50].image.data);
}

#[test]
fn seeking_works_in_matroska_and_mpegts() {
    let d = tempdir();
    let mp4 = p(&d, "in.mp4");
    make_clip(&mp4, "320x240", 10);
    let info = probe(&mp4).unwrap();
    let want = first_at(&info, 6.5).unwrap();
    assert_eq!(want.index, 163);
    // Same coded frames, other containers: MPEG-TS seeks by byte position and
    // lands between keyframes; its timeline starts near 1.4 s, not 0.
    for name in ["in.mkv", "in.ts"] {
        let other = p(&d, name);
        ffmpeg(&[
            "-i",
            mp4.to_str().unwrap(),
            "-c",
            "copy",
            other.to_str().unwrap(),
        ]);
        let oinfo = probe(&other).unwrap();
        for (secs, index) in [(6.5, 163u64), (0.5, 13), (9.0, 225)] {
            let f = first_at(&oinfo, secs).unwrap();
            assert_eq!(f.index, index, "{name} at {secs} s");
            if secs == 6.5 {
                assert_eq!(f.image.data, want.image.data, "{name}");
            }
        }
    }
}

#[test]
fn seeking_is_much_faster_than_decoding_from_the_start() {
    let d = tempdir();
    let long = p(&d, "long.mp4");
    make_clip(&long, "640x360", 60);
    let info = probe(&long).unwrap();
    let target = 50.0;

    let started = Instant::now();
    let from_start = FrameReader::open(&info)
        .unwrap()
        .map(|f| f.unwrap())
        .find(|f| f.index == 1250)
        .unwrap();
    let sequential = started.elapsed();

    // The best of a few tries: the machine may be busy with other tests.
    let mut seeking = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let f = first_at(&info, target).unwrap();
        seeking = seeking.min(started.elapsed());
        assert_eq!(f.index, 1250);
        assert_eq!(f.image.data, from_start.image.data);
    }
    assert!(
        seeking * 5 < sequential,
        "seeking took {seeking:?}, decoding from the start {sequential:?}"
    );
}
