//! Memory stays flat however long the video: decoding (and encoding) a long clip must not keep
//! anything per frame. Its own test binary, so no other test's allocations share the process.
mod common;

use std::path::Path;

use common::*;
use stylize_media::{probe, FrameReader, VideoWriter};

/// The process's resident set, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("procfs")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[test]
fn decoding_and_encoding_a_long_clip_keeps_nothing_per_frame() {
    let dir = tempdir();
    let clip = dir.path().join("long.mp4");
    // Noise at a low CRF: big packets (tens of KB each), so anything kept per packet shows plainly.
    let frames = 1200u64;
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=30,noise=alls=40:allf=t",
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:sample_rate=48000",
        "-frames:v",
        &frames.to_string(),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "8",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        clip.to_str().unwrap(),
    ]);
    let packet_bytes = std::fs::metadata(&clip).unwrap().len() / frames;
    assert!(
        packet_bytes > 20_000,
        "clip too small to show a leak: {packet_bytes} B/frame"
    );

    let info = probe(&clip).unwrap();
    let out = dir.path().join("out.mp4");
    let mut writer = VideoWriter::create(
        &dir.path().join(".out.tmp.mp4"),
        Path::new(&out),
        &info,
        &opts(stylize_media::PixelFormatChoice::Yuv420p),
    )
    .unwrap();
    let (mut warm, mut count) = (0, 0u64);
    for frame in FrameReader::open(&info).unwrap() {
        writer.write(&frame.unwrap()).unwrap();
        count += 1;
        // Past start-up: decoder threads, x264's lookahead and the muxer's buffers all exist by now.
        if count == 200 {
            warm = rss_kib();
        }
    }
    let end = rss_kib();
    writer.finish().unwrap();
    assert_eq!(count, frames);
    // Keeping each packet would add ~1000 × packet_bytes; allow a small fraction of that.
    let grown = end.saturating_sub(warm) * 1024;
    let budget = (frames - 200) * packet_bytes / 10;
    assert!(
        grown < budget,
        "RSS grew {} KiB over {} frames (budget {} KiB; packets {packet_bytes} B)",
        grown / 1024,
        frames - 200,
        budget / 1024
    );
}
