//! Colour fidelity: solid colours survive RGB → YUV → RGB, and decoding agrees with FFmpeg's own reading of the tags.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use stylize_media::{
    probe, DecodedFrame, EncodeOptions, FrameReader, PixelFormatChoice, RgbImage, VideoWriter,
};

const COLOURS: [[u8; 3]; 6] = [
    [0x33, 0x66, 0xcc],
    [128, 128, 128],
    [200, 30, 40],
    [20, 180, 60],
    [235, 235, 235],
    [16, 16, 16],
];

fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

fn our_rgb(path: &Path) -> Vec<u8> {
    let info = probe(path).unwrap();
    FrameReader::open(&info)
        .unwrap()
        .flat_map(|f| f.unwrap().image.data)
        .collect()
}

/// Writes one solid frame per colour through our writer on top of `base`'s stream settings.
fn write_solids(base: &Path, out: &Path, pix: PixelFormatChoice) {
    let info = probe(base).unwrap();
    let opts = EncodeOptions {
        crf: 18.0,
        preset: "fast".into(),
        pixel_format: pix,
        ..EncodeOptions::default()
    };
    let mut w = VideoWriter::create(out, out, &info, &opts).unwrap();
    for (i, c) in COLOURS.iter().enumerate() {
        let frame = DecodedFrame {
            index: i as u64,
            pts: None,
            image: RgbImage::solid(info.width, info.height, *c),
        };
        w.write(&frame).unwrap();
    }
    assert_eq!(w.finish().unwrap().frames, COLOURS.len() as u64);
}

fn assert_solids(rgb: &[u8], frame_len: usize, tolerance: u8, who: &str) {
    assert_eq!(rgb.len(), frame_len * COLOURS.len(), "{who}");
    for (i, c) in COLOURS.iter().enumerate() {
        let frame = &rgb[i * frame_len..(i + 1) * frame_len];
        let expect: Vec<u8> = c.iter().copied().cycle().take(frame_len).collect();
        let d = max_diff(frame, &expect);
        assert!(d <= tolerance, "{who}: colour {c:?} off by {d}");
    }
}

#[test]
fn solid_colours_round_trip_untagged_input() {
    let d = tempdir();
    let base = p(&d, "base.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25:duration=0.2",
        "-c:v",
        "libx264",
        base.to_str().unwrap(),
    ]);
    for (name, pix) in [
        ("o420.mp4", PixelFormatChoice::Yuv420p),
        ("o444.mkv", PixelFormatChoice::Yuv444p),
    ] {
        let out = p(&d, name);
        write_solids(&base, &out, pix);
        assert_eq!(
            video_field(&out, "color_space"),
            "smpte170m",
            "untagged SD input is written in BT.601 and tagged so"
        );
        assert_eq!(video_field(&out, "color_range"), "tv");
        assert_eq!(video_field(&out, "color_primaries"), "smpte170m");
        assert_solids(&our_rgb(&out), 64 * 48 * 3, 3, "our reader");
        assert_solids(&all_frames(&out).concat(), 64 * 48 * 3, 3, "ffmpeg CLI");
    }
}

#[test]
fn tagged_inputs_keep_their_tags_and_colours() {
    let d = tempdir();
    // BT.601-tagged (smpte170m) and BT.709-tagged inputs, converted by FFmpeg with the matching matrix.
    for (name, matrix, tag) in [
        ("b601.mp4", "bt601", "smpte170m"),
        ("b709.mp4", "bt709", "bt709"),
    ] {
        let base = p(&d, name);
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48:rate=25:duration=0.2",
            "-vf",
            &format!("scale=out_color_matrix={matrix}:out_range=tv,format=yuv420p"),
            "-colorspace",
            tag,
            "-color_primaries",
            tag,
            "-color_trc",
            tag,
            "-c:v",
            "libx264",
            base.to_str().unwrap(),
        ]);
        let out = p(&d, &format!("out_{name}"));
        write_solids(&base, &out, PixelFormatChoice::Yuv420p);
        assert_eq!(video_field(&out, "color_space"), tag);
        assert_eq!(video_field(&out, "color_primaries"), tag);
        assert_solids(&our_rgb(&out), 64 * 48 * 3, 3, name);
        assert_solids(&all_frames(&out).concat(), 64 * 48 * 3, 3, name);
    }
}

#[test]
fn decoding_agrees_with_ffmpeg() {
    let d = tempdir();
    let cases: [(&str, &[&str]); 3] = [
        ("untagged.mp4", &["-pix_fmt", "yuv420p"]),
        (
            "bt709.mp4",
            &[
                "-vf",
                "scale=out_color_matrix=bt709,format=yuv420p",
                "-colorspace",
                "bt709",
            ],
        ),
        (
            "full.mp4",
            &[
                "-vf",
                "scale=out_range=pc,format=yuvj420p",
                "-color_range",
                "pc",
            ],
        ),
    ];
    for (name, extra) in cases {
        let clip = p(&d, name);
        let mut args = vec![
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=96x64:rate=25:duration=0.2",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-c:v", "libx264", "-crf", "10", clip.to_str().unwrap()]);
        ffmpeg(&args);
        let ours = our_rgb(&clip);
        let theirs = all_frames(&clip).concat();
        // Mean difference over a test pattern: chroma upsampling filters differ slightly at edges.
        let mean = mean_abs_diff(&ours, &theirs);
        assert!(mean < 2.0, "{name}: mean difference {mean}");
    }
}

/// Colour bars (75%: the seven bars of SMPTE's pattern as RGB), untagged, `size`, with FFmpeg
/// converting to YUV in `matrix`: what a camera or editor that leaves the tags out writes.
fn untagged_bars(dir: &Path, name: &str, size: &str, matrix: &str) -> PathBuf {
    let clip = dir.join(name);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("smptebars=size={size}:rate=25:duration=0.2"),
        "-vf",
        &format!("scale=out_color_matrix={matrix}:out_range=tv,format=yuv444p"),
        "-c:v",
        "libx264",
        "-qp",
        "0",
        clip.to_str().unwrap(),
    ]);
    assert_eq!(
        video_field(&clip, "color_space"),
        "unknown",
        "{name} is untagged"
    );
    clip
}

/// The top bars' RGB (75% white, yellow, cyan, green, magenta, red, blue), sampled at mid-height
/// in the middle of each seventh of the first frame.
fn bar_colours(rgb: &[u8], width: u32, height: u32) -> Vec<[u8; 3]> {
    let y = height as usize / 3;
    (0..7)
        .map(|bar| {
            let x = (bar * 2 + 1) * width as usize / 14;
            let i = (y * width as usize + x) * 3;
            [rgb[i], rgb[i + 1], rgb[i + 2]]
        })
        .collect()
}

const BARS_75: [[u8; 3]; 7] = [
    [191, 191, 191],
    [191, 191, 0],
    [0, 191, 191],
    [0, 191, 0],
    [191, 0, 191],
    [191, 0, 0],
    [0, 0, 191],
];

fn assert_bars(rgb: &[u8], width: u32, height: u32, within: u8, who: &str) {
    for (got, want) in bar_colours(rgb, width, height).iter().zip(BARS_75) {
        assert!(
            max_diff(got, &want) <= within,
            "{who}: bar {want:?} read as {got:?}"
        );
    }
}

/// Through our reader and writer and back: what stylize does to a frame, less the network.
fn round_trip(input: &Path, out: &Path) -> (u32, u32, Vec<u8>) {
    let info = probe(input).unwrap();
    let opts = EncodeOptions {
        crf: 0.0,
        preset: "fast".into(),
        pixel_format: PixelFormatChoice::Yuv444p,
        ..EncodeOptions::default()
    };
    let mut w = VideoWriter::create(out, out, &info, &opts).unwrap();
    for frame in FrameReader::open(&info).unwrap() {
        w.write(&frame.unwrap()).unwrap();
    }
    w.finish().unwrap();
    (info.width, info.height, our_rgb(out))
}

#[test]
fn an_untagged_sd_clip_keeps_bt601_through_the_round_trip() {
    let d = tempdir();
    let bars = untagged_bars(d.path(), "sd.mp4", "640x480", "bt601");
    assert_bars(&our_rgb(&bars), 640, 480, 3, "SD input as read");
    let out = p(&d, "sd_out.mp4");
    let (w, h, rgb) = round_trip(&bars, &out);
    assert_eq!(video_field(&out, "color_space"), "smpte170m");
    assert_bars(&rgb, w, h, 3, "SD output");
    // A player reading the tag (FFmpeg's own conversion here) sees the same bars.
    let theirs = all_frames(&out).remove(0);
    assert_bars(&theirs, w, h, 3, "SD output through ffmpeg");
}

#[test]
fn an_untagged_hd_clip_is_read_as_bt709_as_players_show_it() {
    let d = tempdir();
    let bars = untagged_bars(d.path(), "hd.mp4", "1280x720", "bt709");
    // Read as BT.601 (swscale's default), the yellow bar would be off by well over 3 levels.
    assert_bars(&our_rgb(&bars), 1280, 720, 3, "HD input as read");
    let out = p(&d, "hd_out.mp4");
    let (w, h, rgb) = round_trip(&bars, &out);
    assert_eq!(video_field(&out, "color_space"), "bt709");
    assert_eq!(video_field(&out, "color_primaries"), "bt709");
    assert_bars(&rgb, w, h, 3, "HD output");
    let theirs = all_frames(&out).remove(0);
    assert_bars(&theirs, w, h, 3, "HD output through ffmpeg");
}

#[test]
fn an_hdr_input_is_refused_naming_its_transfer() {
    let d = tempdir();
    for (name, trc, says) in [
        ("pq.mkv", "smpte2084", "PQ"),
        ("hlg.mkv", "arib-std-b67", "HLG"),
    ] {
        let clip = p(&d, name);
        hdr_clip(&clip, trc);
        let err = probe(&clip).unwrap_err().to_string();
        assert!(err.starts_with(clip.to_str().unwrap()), "{err}");
        assert!(err.contains("HDR") && err.contains(says), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
}
