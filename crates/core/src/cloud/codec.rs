//! The frame codec: packed RGB24 frames to and from the bytes stored in blobs (PNG, JPEG or lossless WebP).
//!
//! Measured on 720×720 frames on the 2-core build machine (README, "Scaling
//! out"): PNG with fast deflate costs ~5 ms to encode and ~6 ms to decode, at
//! ~540 KB for a camera frame and ~1.4 MB for a styled one; lossless WebP is
//! 35% smaller on styled frames but ~25% slower overall; JPEG at quality 95 is
//! a third of PNG's size but 4–5× slower to encode here and changes pixels by
//! ~1–2 levels on average. PNG is the default: lossless (cloud output equals
//! local output) and the least CPU per frame.
use anyhow::{anyhow, bail, Result};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder, ImageFormat};
use stylize_cloud::FrameFormat;

/// JPEG quality: high enough that the loss stays below what H.264 at the
/// default CRF removes anyway.
pub const JPEG_QUALITY: u8 = 95;

/// Encodes one packed RGB24 frame.
pub fn encode(format: FrameFormat, width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>> {
    if rgb.len() != width as usize * height as usize * 3 {
        bail!(
            "frame buffer holds {} bytes, not {width}x{height} RGB24",
            rgb.len()
        );
    }
    // PNG output is ~1 byte per pixel for camera frames; reserving that avoids regrowing.
    let mut out = Vec::with_capacity(width as usize * height as usize);
    let result = match format {
        // Fast deflate: several times quicker than the default level for ~10% more bytes.
        FrameFormat::Png => {
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
                .write_image(rgb, width, height, ExtendedColorType::Rgb8)
        }
        FrameFormat::Jpeg => JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).write_image(
            rgb,
            width,
            height,
            ExtendedColorType::Rgb8,
        ),
        FrameFormat::Webp => WebPEncoder::new_lossless(&mut out).write_image(
            rgb,
            width,
            height,
            ExtendedColorType::Rgb8,
        ),
    };
    result.map_err(|e| {
        anyhow!(
            "cannot encode a {width}x{height} frame as {}: {e}",
            format.extension()
        )
    })?;
    Ok(out)
}

/// Decodes a stored frame to packed RGB24, refusing anything that is not
/// `format` or not `width`×`height` (a truncated or foreign blob must fail
/// loudly, never turn into a frame of the wrong size).
pub fn decode(format: FrameFormat, bytes: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    let image_format = match format {
        FrameFormat::Png => ImageFormat::Png,
        FrameFormat::Jpeg => ImageFormat::Jpeg,
        FrameFormat::Webp => ImageFormat::WebP,
    };
    let image = image::load_from_memory_with_format(bytes, image_format).map_err(|e| {
        anyhow!(
            "not a readable {} picture ({} bytes): {e}",
            format.extension(),
            bytes.len()
        )
    })?;
    if (image.width(), image.height()) != (width, height) {
        bail!(
            "picture is {}x{}, expected {width}x{height}",
            image.width(),
            image.height()
        );
    }
    Ok(image.into_rgb8().into_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(w: u32, h: u32) -> Vec<u8> {
        (0..w * h * 3).map(|i| ((i * 37) ^ (i / 7)) as u8).collect()
    }

    #[test]
    fn lossless_formats_round_trip_exactly() {
        let (w, h) = (37, 21);
        let rgb = pattern(w, h);
        for format in [FrameFormat::Png, FrameFormat::Webp] {
            let bytes = encode(format, w, h, &rgb).unwrap();
            assert_eq!(decode(format, &bytes, w, h).unwrap(), rgb, "{format:?}");
        }
    }

    #[test]
    fn jpeg_round_trips_closely() {
        let (w, h) = (64, 48);
        // A smooth gradient: what JPEG is built for, so the error must be tiny.
        let rgb: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| [(x * 4) as u8, (y * 5) as u8, 128]))
            .collect();
        let back = decode(
            FrameFormat::Jpeg,
            &encode(FrameFormat::Jpeg, w, h, &rgb).unwrap(),
            w,
            h,
        )
        .unwrap();
        let mean = rgb
            .iter()
            .zip(&back)
            .map(|(a, b)| a.abs_diff(*b) as f64)
            .sum::<f64>()
            / rgb.len() as f64;
        assert!(mean < 2.0, "mean error {mean}");
    }

    #[test]
    fn refuses_wrong_size_format_and_garbage() {
        let rgb = pattern(8, 8);
        let png = encode(FrameFormat::Png, 8, 8, &rgb).unwrap();
        assert!(
            format!("{:#}", decode(FrameFormat::Png, &png, 8, 9).unwrap_err())
                .contains("expected 8x9")
        );
        assert!(decode(FrameFormat::Jpeg, &png, 8, 8).is_err());
        assert!(decode(FrameFormat::Png, &png[..png.len() / 2], 8, 8).is_err());
        assert!(decode(FrameFormat::Png, b"corrupted", 8, 8).is_err());
        assert!(encode(FrameFormat::Png, 8, 8, &rgb[1..]).is_err());
    }
}
