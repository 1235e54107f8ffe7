//! Bit depth: a 10-bit source read with its depth keeps every one of its levels, and written to a 10-bit output comes back as it went in; read at 8 bits, the same source has at most 256 levels a channel.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::*;
use stylize_media::{
    probe, EncodeOptions, FrameReader, PixelFormatChoice, VideoCodec, VideoWriter,
};

/// A grey ramp over 1024 columns in 10-bit 4:4:4 FFV1 (lossless): 877 distinct luma levels from
/// 64 to 940, about four times what 8 bits hold.
fn ten_bit_ramp(dir: &Path) -> PathBuf {
    let path = dir.join("ramp.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "nullsrc=s=1024x8:r=25:d=0.12,format=yuv444p10le,geq=lum='64+X*876/1023':cb=512:cr=512",
        "-c:v",
        "ffv1",
        path.to_str().unwrap(),
    ]);
    path
}

/// Distinct green samples of the first row of every frame `path` decodes to (read deep or not).
fn green_levels(path: &Path, deep: bool) -> usize {
    let info = probe(path).unwrap();
    let mut levels = BTreeSet::new();
    for frame in FrameReader::open(&info).unwrap().keep_depth(deep) {
        let image = frame.unwrap().image;
        assert!(deep || !image.is_deep(), "deep only when asked");
        let row = image.width as usize * 3;
        match &image.deep {
            Some(samples) => levels.extend(samples[..row].iter().skip(1).step_by(3).copied()),
            None => levels.extend(
                image.data[..row]
                    .iter()
                    .skip(1)
                    .step_by(3)
                    .map(|&v| u16::from(v)),
            ),
        }
    }
    levels.len()
}

#[test]
fn a_ten_bit_source_read_with_its_depth_keeps_every_level() {
    let dir = tempdir();
    let ramp = ten_bit_ramp(dir.path());
    assert_eq!(probe(&ramp).unwrap().bits_per_sample, 10);
    let (deep, shallow) = (green_levels(&ramp, true), green_levels(&ramp, false));
    assert!(deep > 800, "read deep: {deep} levels");
    assert!(shallow <= 256, "read at 8 bits: {shallow} levels");
    // An 8-bit source stays 8-bit whatever is asked.
    let eight = scene_clip(dir.path(), "eight.mp4", "64x48", "25", 2, &[], &[]);
    assert_eq!(probe(&eight).unwrap().bits_per_sample, 8);
    assert_eq!(green_levels(&eight, true), green_levels(&eight, false));
}

/// The ramp read deep and written to 10-bit FFV1 comes back within a hundredth of an 8-bit level
/// of the source; through 8 bits it is several times further off.
#[test]
fn a_deep_round_trip_through_a_ten_bit_output_keeps_the_picture() {
    let dir = tempdir();
    let ramp = ten_bit_ramp(dir.path());
    let info = probe(&ramp).unwrap();
    let opts = EncodeOptions {
        codec: VideoCodec::Ffv1,
        pixel_format: PixelFormatChoice::Yuv444p,
        ..EncodeOptions::default()
    };
    assert!(
        opts.deep_output_for(&info),
        "ffv1 follows the source to 10 bits"
    );
    let through = |deep: bool, name: &str| {
        let out = dir.path().join(name);
        let mut writer = VideoWriter::create(&out, &out, &info, &opts).unwrap();
        for frame in FrameReader::open(&info).unwrap().keep_depth(deep) {
            writer.write(&frame.unwrap()).unwrap();
        }
        writer.finish().unwrap();
        assert_eq!(video_field(&out, "pix_fmt"), "yuv444p10le");
        mean_abs_diff_16(&frame_rgb48(&ramp, 1), &frame_rgb48(&out, 1))
    };
    let (deep, shallow) = (through(true, "deep.mkv"), through(false, "shallow.mkv"));
    assert!(deep < 0.02, "deep: {deep:.4} levels from the source");
    assert!(
        deep * 4.0 < shallow,
        "deep {deep:.4} vs 8-bit {shallow:.4} levels"
    );
}

#[test]
fn pixel_formats_follow_the_source_depth_only_where_asked() {
    let dir = tempdir();
    let info = probe(&ten_bit_ramp(dir.path())).unwrap();
    let resolved = |codec, follow| {
        EncodeOptions {
            codec,
            follow_source_depth: follow,
            ..EncodeOptions::default()
        }
        .for_source(&info)
        .pixel_format
    };
    assert_eq!(
        resolved(VideoCodec::Hevc, true),
        PixelFormatChoice::Yuv420p10
    );
    assert_eq!(
        resolved(VideoCodec::Av1, true),
        PixelFormatChoice::Yuv420p10
    );
    // H.264 stays 8-bit for players; a named pixel format is kept as named.
    assert_eq!(resolved(VideoCodec::H264, true), PixelFormatChoice::Yuv420p);
    assert_eq!(
        resolved(VideoCodec::Hevc, false),
        PixelFormatChoice::Yuv420p
    );
}
