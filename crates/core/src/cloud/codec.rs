//! The frame codec: frames to and from the bytes stored in blobs (PNG, 16-bit PNG for deep frames, JPEG or lossless WebP).
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
use stylize_media::RgbImage;

/// JPEG quality: high enough that the loss stays below what H.264 at the
/// default CRF removes anyway.
pub const JPEG_QUALITY: u8 = 95;

/// Encodes one frame. A deep frame ([`RgbImage::deep`]) goes into PNG at 16 bits a sample; JPEG
/// and WebP hold 8 bits only and take its rounding.
pub fn encode(format: FrameFormat, frame: &RgbImage) -> Result<Vec<u8>> {
    let (width, height) = (frame.width, frame.height);
    frame
        .check()
        .map_err(|e| anyhow!("cannot encode a frame: {e}"))?;
    // PNG output is ~1 byte per pixel for camera frames; reserving that avoids regrowing.
    let mut out = Vec::with_capacity(width as usize * height as usize);
    let rgb = &frame.data[..];
    let result = match (format, &frame.deep) {
        // Fast deflate: several times quicker than the default level for ~10% more bytes.
        (FrameFormat::Png, deep) => {
            let png =
                PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive);
            match deep {
                Some(deep) => {
                    // The encoder takes native-endian 16-bit samples as bytes.
                    let bytes: Vec<u8> = deep.iter().flat_map(|v| v.to_ne_bytes()).collect();
                    png.write_image(&bytes, width, height, ExtendedColorType::Rgb16)
                }
                None => png.write_image(rgb, width, height, ExtendedColorType::Rgb8),
            }
        }
        (FrameFormat::Jpeg, _) => JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
            .write_image(rgb, width, height, ExtendedColorType::Rgb8),
        (FrameFormat::Webp, _) => WebPEncoder::new_lossless(&mut out).write_image(
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

/// Decodes a stored frame (deep when it was stored at 16 bits), refusing anything that is not
/// `format` or not `width`×`height` (a truncated or foreign blob must fail loudly, never turn
/// into a frame of the wrong size).
pub fn decode(format: FrameFormat, bytes: &[u8], width: u32, height: u32) -> Result<RgbImage> {
    let image = decode_any(format, bytes)?;
    if (image.width, image.height) != (width, height) {
        bail!(
            "picture is {}x{}, expected {width}x{height}",
            image.width,
            image.height
        );
    }
    Ok(image)
}

/// Decodes a stored picture of any size (deep when it was stored at 16 bits).
pub fn decode_any(format: FrameFormat, bytes: &[u8]) -> Result<RgbImage> {
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
    let (width, height) = (image.width(), image.height());
    Ok(match image.color().bytes_per_pixel() > 4 {
        true => RgbImage::from_deep(width, height, image.into_rgb16().into_raw()),
        false => RgbImage::new(width, height, image.into_rgb8().into_raw()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(w: u32, h: u32) -> RgbImage {
        RgbImage::new(
            w,
            h,
            (0..w * h * 3).map(|i| ((i * 37) ^ (i / 7)) as u8).collect(),
        )
    }

    #[test]
    fn lossless_formats_round_trip_exactly() {
        let (w, h) = (37, 21);
        let frame = pattern(w, h);
        for format in [FrameFormat::Png, FrameFormat::Webp] {
            let bytes = encode(format, &frame).unwrap();
            assert_eq!(decode(format, &bytes, w, h).unwrap(), frame, "{format:?}");
        }
    }

    #[test]
    fn deep_frames_keep_16_bits_in_png_and_their_rounding_elsewhere() {
        let (w, h) = (19, 7);
        let deep = RgbImage::from_deep(w, h, (0..w * h * 3).map(|i| (i * 397) as u16).collect());
        let back = decode(
            FrameFormat::Png,
            &encode(FrameFormat::Png, &deep).unwrap(),
            w,
            h,
        );
        assert_eq!(back.unwrap(), deep);
        let webp = encode(FrameFormat::Webp, &deep).unwrap();
        let back = decode(FrameFormat::Webp, &webp, w, h).unwrap();
        assert_eq!((back.data, back.deep), (deep.data, None));
    }

    #[test]
    fn jpeg_round_trips_closely() {
        let (w, h) = (64, 48);
        // A smooth gradient: what JPEG is built for, so the error must be tiny.
        let rgb: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| [(x * 4) as u8, (y * 5) as u8, 128]))
            .collect();
        let frame = RgbImage::new(w, h, rgb);
        let back = decode(
            FrameFormat::Jpeg,
            &encode(FrameFormat::Jpeg, &frame).unwrap(),
            w,
            h,
        );
        let back = back.unwrap().data;
        let mean = frame
            .data
            .iter()
            .zip(&back)
            .map(|(a, b)| a.abs_diff(*b) as f64)
            .sum::<f64>()
            / back.len() as f64;
        assert!(mean < 2.0, "mean error {mean}");
    }

    #[test]
    fn refuses_wrong_size_format_and_garbage() {
        let frame = pattern(8, 8);
        let png = encode(FrameFormat::Png, &frame).unwrap();
        assert!(
            format!("{:#}", decode(FrameFormat::Png, &png, 8, 9).unwrap_err())
                .contains("expected 8x9")
        );
        assert!(decode(FrameFormat::Jpeg, &png, 8, 8).is_err());
        assert!(decode(FrameFormat::Png, &png[..png.len() / 2], 8, 8).is_err());
        assert!(decode(FrameFormat::Png, b"corrupted", 8, 8).is_err());
        let short = RgbImage::new(8, 8, frame.data[1..].to_vec());
        assert!(encode(FrameFormat::Png, &short).is_err());
    }
}
