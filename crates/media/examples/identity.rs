//! Manual check: decode a video and encode it back unchanged (`identity IN OUT [preset] [crf] [444]`).

use std::path::PathBuf;
use std::time::Instant;

use stylize_media::{probe, EncodeOptions, FrameReader, PixelFormatChoice, VideoWriter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: identity IN OUT [preset] [crf] [444]");
        std::process::exit(2);
    }
    let (input, output) = (PathBuf::from(&args[1]), PathBuf::from(&args[2]));
    let opts = EncodeOptions {
        preset: args.get(3).cloned().unwrap_or_else(|| "medium".into()),
        crf: args.get(4).map(|c| c.parse()).transpose()?.unwrap_or(18.0),
        pixel_format: if args.get(5).map(String::as_str) == Some("444") {
            PixelFormatChoice::Yuv444p
        } else {
            PixelFormatChoice::Yuv420p
        },
    };
    let info = probe(&input)?;
    eprintln!("{info:#?}");
    let start = Instant::now();
    let mut writer = VideoWriter::create(&output, &output, &info, &opts)?;
    for frame in FrameReader::open(&info)? {
        writer.write(&frame?)?;
    }
    let summary = writer.finish()?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{} frames, {} audio packets, {:.1} fps",
        summary.frames,
        summary.audio_packets,
        summary.frames as f64 / secs
    );
    Ok(())
}
