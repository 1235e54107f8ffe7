//! Pixel formats: the YUV layouts stylize writes and their bit depth, and the packed RGB planes (8 or 16 bits a sample) that swscale converts from and to.

use ffmpeg_next::ffi::{self, AVPixelFormat};

use crate::RgbImage;

/// The YUV layout of the output: its chroma and its bits per sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormatChoice {
    /// 4:2:0, what every player decodes; needs even width and height.
    Yuv420p,
    /// 4:2:2, half the chroma columns (broadcast and editing); needs an even width.
    Yuv422p,
    /// 4:4:4, full chroma; keeps odd sizes; fewer players.
    Yuv444p,
    /// 4:2:0 at 10 bits (HEVC Main 10, AV1 10-bit; H.264 High 10).
    Yuv420p10,
    Yuv422p10,
    Yuv444p10,
}

impl PixelFormatChoice {
    pub const ALL: [PixelFormatChoice; 6] = [
        PixelFormatChoice::Yuv420p,
        PixelFormatChoice::Yuv422p,
        PixelFormatChoice::Yuv444p,
        PixelFormatChoice::Yuv420p10,
        PixelFormatChoice::Yuv422p10,
        PixelFormatChoice::Yuv444p10,
    ];

    /// FFmpeg's name (`yuv420p`, `yuv420p10le`, ...), as `--pixel-format` and manifests spell it.
    pub fn name(self) -> &'static str {
        match self {
            PixelFormatChoice::Yuv420p => "yuv420p",
            PixelFormatChoice::Yuv422p => "yuv422p",
            PixelFormatChoice::Yuv444p => "yuv444p",
            PixelFormatChoice::Yuv420p10 => "yuv420p10le",
            PixelFormatChoice::Yuv422p10 => "yuv422p10le",
            PixelFormatChoice::Yuv444p10 => "yuv444p10le",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn is_ten_bit(self) -> bool {
        matches!(
            self,
            PixelFormatChoice::Yuv420p10
                | PixelFormatChoice::Yuv422p10
                | PixelFormatChoice::Yuv444p10
        )
    }

    /// The same chroma at 10 bits.
    pub fn widened(self) -> Self {
        match self {
            PixelFormatChoice::Yuv420p => PixelFormatChoice::Yuv420p10,
            PixelFormatChoice::Yuv422p => PixelFormatChoice::Yuv422p10,
            PixelFormatChoice::Yuv444p => PixelFormatChoice::Yuv444p10,
            ten_bit => ten_bit,
        }
    }

    /// FFmpeg's pixel format for this layout.
    pub(crate) fn av_format(self) -> AVPixelFormat {
        use AVPixelFormat::*;
        match self {
            PixelFormatChoice::Yuv420p => AV_PIX_FMT_YUV420P,
            PixelFormatChoice::Yuv422p => AV_PIX_FMT_YUV422P,
            PixelFormatChoice::Yuv444p => AV_PIX_FMT_YUV444P,
            PixelFormatChoice::Yuv420p10 => AV_PIX_FMT_YUV420P10LE,
            PixelFormatChoice::Yuv422p10 => AV_PIX_FMT_YUV422P10LE,
            PixelFormatChoice::Yuv444p10 => AV_PIX_FMT_YUV444P10LE,
        }
    }
}

/// Bits of the deepest component of pixel format `format` (an `AVPixelFormat` value), `None` for
/// an unknown format.
pub(crate) fn pixel_bits(format: i32) -> Option<u8> {
    if format < 0 {
        return None;
    }
    // SAFETY: a lookup in FFmpeg's static descriptor table; null for values it does not know.
    unsafe {
        let desc = ffi::av_pix_fmt_desc_get(std::mem::transmute::<i32, AVPixelFormat>(format));
        if desc.is_null() {
            return None;
        }
        let desc = &*desc;
        let components = &desc.comp[..usize::from(desc.nb_components).min(4)];
        components.iter().map(|c| c.depth as u8).max()
    }
}

/// The packed RGB format swscale converts to or from: 16 bits a sample for deep pictures.
pub(crate) fn packed_rgb(deep: bool) -> AVPixelFormat {
    match deep {
        true => AVPixelFormat::AV_PIX_FMT_RGB48LE,
        false => AVPixelFormat::AV_PIX_FMT_RGB24,
    }
}

/// Copies the top-left `width` × `height` of `image` into a packed RGB plane (`deep`: RGB48LE,
/// else RGB24) whose rows are `stride` bytes apart. An 8-bit picture fills a deep plane widened
/// (×257, so 255 stays full scale); a deep picture fills an 8-bit plane with its rounding.
pub(crate) fn fill_plane(
    image: &RgbImage,
    deep: bool,
    plane: &mut [u8],
    stride: usize,
    (width, height): (usize, usize),
) {
    let src_row = image.width as usize * 3;
    for y in 0..height {
        let samples = y * src_row..y * src_row + width * 3;
        match (deep, &image.deep) {
            (false, _) => {
                plane[y * stride..y * stride + width * 3].copy_from_slice(&image.data[samples])
            }
            (true, Some(deep)) => {
                let row = &mut plane[y * stride..y * stride + width * 6];
                for (out, v) in row.chunks_exact_mut(2).zip(&deep[samples]) {
                    out.copy_from_slice(&v.to_le_bytes());
                }
            }
            (true, None) => {
                let row = &mut plane[y * stride..y * stride + width * 6];
                for (out, &v) in row.chunks_exact_mut(2).zip(&image.data[samples]) {
                    out.copy_from_slice(&(u16::from(v) * 257).to_le_bytes());
                }
            }
        }
    }
}

/// The picture in a packed RGB plane (`deep`: RGB48LE, else RGB24) of `width` × `height` whose
/// rows are `stride` bytes apart.
pub(crate) fn image_from_plane(
    plane: &[u8],
    stride: usize,
    (width, height): (u32, u32),
    deep: bool,
) -> RgbImage {
    let samples_per_row = width as usize * 3;
    let bytes_per_row = samples_per_row * if deep { 2 } else { 1 };
    let rows = (0..height as usize).map(|y| &plane[y * stride..y * stride + bytes_per_row]);
    match deep {
        true => {
            let mut samples = Vec::with_capacity(samples_per_row * height as usize);
            for row in rows {
                samples.extend(
                    row.chunks_exact(2)
                        .map(|b| u16::from_le_bytes([b[0], b[1]])),
                );
            }
            RgbImage::from_deep(width, height, samples)
        }
        false => {
            let mut data = Vec::with_capacity(samples_per_row * height as usize);
            for row in rows {
                data.extend_from_slice(row);
            }
            RgbImage::new(width, height, data)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_widen_to_ten_bits() {
        for choice in PixelFormatChoice::ALL {
            assert_eq!(PixelFormatChoice::parse(choice.name()), Some(choice));
            assert!(choice.widened().is_ten_bit());
            assert_eq!(
                pixel_bits(choice.av_format() as i32),
                Some(if choice.is_ten_bit() { 10 } else { 8 })
            );
        }
        assert_eq!(pixel_bits(-1), None);
    }

    #[test]
    fn planes_carry_deep_and_shallow_pictures_both_ways() {
        let deep = RgbImage::from_deep(2, 2, (0..12).map(|i| i * 5000 + 7).collect());
        let shallow = RgbImage::new(2, 2, (0..12).map(|i| i * 20).collect());
        let stride = 16;
        let mut plane = vec![0u8; stride * 2];
        fill_plane(&deep, true, &mut plane, stride, (2, 2));
        assert_eq!(image_from_plane(&plane, stride, (2, 2), true), deep);
        fill_plane(&shallow, true, &mut plane, stride, (2, 2));
        let widened = image_from_plane(&plane, stride, (2, 2), true);
        assert_eq!(widened.data, shallow.data);
        fill_plane(&deep, false, &mut plane, stride, (2, 2));
        assert_eq!(
            image_from_plane(&plane, stride, (2, 2), false).data,
            deep.data
        );
    }
}
