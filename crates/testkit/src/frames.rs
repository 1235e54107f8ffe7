//! Frames decoded by the ffmpeg CLI as packed RGB24, and the pixel comparisons the suites use.

use std::path::Path;

use crate::cli::ffmpeg_stdout;
use crate::probing::{probe_json, rotation, video_stream};

/// The coded width and height of the first video stream.
fn coded_size(path: &Path) -> (u32, u32) {
    let probe = probe_json(path);
    let v = video_stream(&probe);
    (
        v["width"].as_u64().unwrap() as u32,
        v["height"].as_u64().unwrap() as u32,
    )
}

/// Frame `index` as packed RGB24 in coded orientation (no display matrix applied).
pub fn frame_rgb(path: &Path, index: u32) -> (u32, u32, Vec<u8>) {
    decode_frame(path, index, false)
}

/// Frame `index` as packed RGB24 as a player shows it (ffmpeg's autorotate applies the display
/// matrix, so a 90° turn swaps width and height).
pub fn displayed_frame_rgb(path: &Path, index: u32) -> (u32, u32, Vec<u8>) {
    decode_frame(path, index, true)
}

fn decode_frame(path: &Path, index: u32, as_displayed: bool) -> (u32, u32, Vec<u8>) {
    let (w, h) = coded_size(path);
    let (w, h) = if as_displayed && rotation(path).rem_euclid(180) == 90 {
        (h, w)
    } else {
        (w, h)
    };
    let rgb = raw_frame(path, index, as_displayed, "rgb24");
    assert_eq!(
        rgb.len(),
        (w * h * 3) as usize,
        "frame {index} of {}",
        path.display()
    );
    (w, h, rgb)
}

/// Frame `index` decoded by ffmpeg to the raw pixel format `pix_fmt`.
fn raw_frame(path: &Path, index: u32, as_displayed: bool, pix_fmt: &str) -> Vec<u8> {
    let select = format!("select=eq(n\\,{index})");
    let mut args = vec![];
    if !as_displayed {
        args.push("-noautorotate");
    }
    args.extend([
        "-i",
        path.to_str().expect("a UTF-8 path"),
        "-vf",
        &select,
        "-frames:v",
        "1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        pix_fmt,
        "-",
    ]);
    ffmpeg_stdout(&args)
}

/// Frame `index` as packed 16-bit RGB (what a 10-bit file holds, scaled to 0..65535), in coded
/// orientation.
pub fn frame_rgb48(path: &Path, index: u32) -> Vec<u16> {
    let bytes = raw_frame(path, index, false, "rgb48le");
    let (w, h) = coded_size(path);
    assert_eq!(
        bytes.len(),
        (w * h * 6) as usize,
        "frame {index} of {}",
        path.display()
    );
    bytes
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Mean absolute difference of two 16-bit pictures, in 8-bit levels (1 = 257 of 65535).
pub fn mean_abs_diff_16(a: &[u16], b: &[u16]) -> f64 {
    assert_eq!(a.len(), b.len(), "pictures of different sizes");
    let total: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x.abs_diff(y)))
        .sum();
    total / a.len() as f64 / 257.0
}

/// Every frame of the first video stream as packed RGB24, in coded orientation: each decoded
/// frame once (no frames repeated or dropped to even out a variable frame rate).
pub fn all_frames(path: &Path) -> Vec<Vec<u8>> {
    let (w, h) = coded_size(path);
    let rgb = ffmpeg_stdout(&[
        "-noautorotate",
        "-i",
        path.to_str().expect("a UTF-8 path"),
        "-map",
        "0:v:0",
        "-fps_mode",
        "passthrough",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]);
    let frame = (w * h * 3) as usize;
    assert_eq!(rgb.len() % frame, 0, "whole frames of {}", path.display());
    rgb.chunks_exact(frame).map(<[u8]>::to_vec).collect()
}

/// Mean absolute difference per channel value (0..255) of two pictures of the same size.
pub fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "pictures of different sizes");
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x.abs_diff(y)))
        .sum::<f64>()
        / a.len() as f64
}

fn luma(rgb: &[u8]) -> Vec<f32> {
    rgb.chunks_exact(3)
        .map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)
        .collect()
}

fn sobel(l: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0.0; w * h];
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let p = |dx: isize, dy: isize| {
                l[(y as isize + dy) as usize * w + (x as isize + dx) as usize]
            };
            let gx = p(1, -1) + 2.0 * p(1, 0) + p(1, 1) - p(-1, -1) - 2.0 * p(-1, 0) - p(-1, 1);
            let gy = p(-1, 1) + 2.0 * p(0, 1) + p(1, 1) - p(-1, -1) - 2.0 * p(0, -1) - p(1, -1);
            out[y * w + x] = (gx * gx + gy * gy).sqrt();
        }
    }
    out
}

fn pearson(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (
        a.iter().map(|&v| v as f64).sum::<f64>() / n,
        b.iter().map(|&v| v as f64).sum::<f64>() / n,
    );
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x as f64 - ma, y as f64 - mb);
        cov += dx * dy;
        va += dx * dx;
        vb += dy * dy;
    }
    cov / (va.sqrt() * vb.sqrt()).max(1e-12)
}

/// Box-averages a luma plane by `f` in each direction.
fn shrink(l: &[f32], w: usize, h: usize, f: usize) -> (Vec<f32>, usize, usize) {
    let (sw, sh) = (w / f, h / f);
    let mut out = vec![0.0; sw * sh];
    for y in 0..sh * f {
        for x in 0..sw * f {
            out[(y / f) * sw + x / f] += l[y * w + x] / (f * f) as f32;
        }
    }
    (out, sw, sh)
}

/// Correlation of the Sobel edge maps of two same-sized frames, at a quarter of their size: the same
/// scene keeps its outlines there, while a style's own brush texture (finer) mostly averages out.
pub fn edge_correlation(w: u32, h: u32, a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "pictures of different sizes");
    let (w, h) = (w as usize, h as usize);
    let (la, sw, sh) = shrink(&luma(a), w, h, 4);
    let (lb, _, _) = shrink(&luma(b), w, h, 4);
    pearson(&sobel(&la, sw, sh), &sobel(&lb, sw, sh))
}

/// `b` moved right by `dx` pixels: a control showing a metric notices a shifted picture.
pub fn shifted(w: u32, h: u32, b: &[u8], dx: u32) -> Vec<u8> {
    let mut out = b.to_vec();
    for y in 0..h {
        for x in dx..w {
            let (dst, src) = (((y * w + x) * 3) as usize, ((y * w + x - dx) * 3) as usize);
            out[dst..dst + 3].copy_from_slice(&b[src..src + 3]);
        }
    }
    out
}
