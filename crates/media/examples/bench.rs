//! Throughput of the media stages alone at 720×720: decode to RGB, and RGB to H.264 at CRF 18 (`bench [seconds]`).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use stylize_media::{
    probe, DecodedFrame, EncodeOptions, FrameReader, PixelFormatChoice, VideoWriter,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u32 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10);
    let dir = std::env::temp_dir().join(format!("stylize-media-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let clip = dir.join("in.mp4");
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc2=size=720x720:rate=30:duration={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=sample_rate=48000:duration={seconds}"))
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-c:a", "aac", "-ac", "1",
        ])
        .arg(&clip)
        .status()?;
    assert!(status.success(), "ffmpeg failed to make the clip");
    let info = probe(&clip)?;

    // Decode as the pipeline does: each frame handed on and dropped.
    let start = Instant::now();
    let mut n = 0u64;
    for f in FrameReader::open(&info)? {
        std::hint::black_box(f?);
        n += 1;
    }
    let streaming = n as f64 / start.elapsed().as_secs_f64();
    println!("decode 720x720 -> RGB24, streaming: {n} frames, {streaming:.0} fps");

    // Decode again keeping every frame, so encoding below is timed alone.
    let start = Instant::now();
    let frames: Vec<DecodedFrame> = FrameReader::open(&info)?.collect::<Result<_, _>>()?;
    let decode = frames.len() as f64 / start.elapsed().as_secs_f64();
    println!(
        "decode 720x720 -> RGB24, all kept in memory: {} frames, {decode:.0} fps",
        frames.len()
    );

    for preset in ["medium", "fast"] {
        let out = dir.join(format!("out-{preset}.mp4"));
        let opts = EncodeOptions {
            crf: 18.0,
            preset: preset.into(),
            pixel_format: PixelFormatChoice::Yuv420p,
        };
        let start = Instant::now();
        let mut writer = VideoWriter::create(&out, &out, &info, &opts)?;
        for f in &frames {
            writer.write(f)?;
        }
        let summary = writer.finish()?;
        let fps = summary.frames as f64 / start.elapsed().as_secs_f64();
        println!(
            "encode RGB24 -> H.264 {preset} CRF 18: {fps:.1} fps ({} bytes)",
            size(&out)
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}
