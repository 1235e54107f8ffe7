//! Media-specific test helpers: encoder options and the identity round trip through this crate's
//! own reader and writer. The ffmpeg/ffprobe CLIs, probing, frames and scratch folders come from
//! `stylize-testkit`, re-exported here.
#![allow(dead_code)]

use std::path::Path;

use stylize_media::{
    probe, EncodeOptions, FrameReader, PixelFormatChoice, VideoInfo, VideoWriter, WriteSummary,
};
pub use stylize_testkit::*;

/// Fast encoder settings for tests, with the pixel format under test.
pub fn opts(pix: PixelFormatChoice) -> EncodeOptions {
    EncodeOptions {
        crf: 23.0,
        preset: "ultrafast".into(),
        pixel_format: pix,
        ..EncodeOptions::default()
    }
}

/// probe → FrameReader → VideoWriter, writing every decoded frame back unchanged.
pub fn identity(
    input: &Path,
    output: &Path,
    opts: &EncodeOptions,
) -> (VideoInfo, u64, WriteSummary) {
    let info = probe(input).unwrap();
    let tmp = output.with_extension("partial");
    let mut writer = VideoWriter::create(&tmp, output, &info, opts).unwrap();
    let mut decoded = 0;
    for frame in FrameReader::open(&info).unwrap() {
        writer.write(&frame.unwrap()).unwrap();
        decoded += 1;
    }
    let summary = writer.finish().unwrap();
    std::fs::rename(&tmp, output).unwrap();
    (info, decoded, summary)
}
