//! Colour policy: which YUV matrix and range frames are read with and written in, so RGB values survive.
//!
//! Decoding uses the stream's tagged matrix and range; an untagged stream is
//! read as BT.601, FFmpeg's convention and what FFmpeg wrote into it. The
//! output keeps the input's tags when swscale knows its matrix (so the file
//! stays what it was: BT.709 stays BT.709, BT.2020 stays BT.2020) and is
//! otherwise converted and tagged as BT.709. The output is always limited
//! range, the form every player handles.

use ffmpeg_next::ffi::{
    AVColorPrimaries, AVColorRange, AVColorSpace, AVColorTransferCharacteristic, AVPixelFormat,
};

/// A YUV matrix swscale can convert with, as its `SWS_CS_*` index, and the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct YuvConversion {
    pub sws_colorspace: i32,
    pub full_range: bool,
}

/// The tags written into the output stream; the matrix also drives the RGB→YUV conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OutputColor {
    pub space: AVColorSpace,
    pub primaries: AVColorPrimaries,
    pub transfer: AVColorTransferCharacteristic,
}

/// `SWS_CS_*` for the matrices swscale implements; `None` for untagged and the rest.
fn sws_index(space: AVColorSpace) -> Option<i32> {
    use AVColorSpace::*;
    match space {
        AVCOL_SPC_BT709 => Some(1),
        AVCOL_SPC_FCC => Some(4),
        AVCOL_SPC_BT470BG | AVCOL_SPC_SMPTE170M => Some(5),
        AVCOL_SPC_SMPTE240M => Some(7),
        // Constant-luminance BT.2020 has no exact matrix form; the NCL one is the close reading.
        AVCOL_SPC_BT2020_NCL | AVCOL_SPC_BT2020_CL => Some(9),
        _ => None,
    }
}

const BT601: i32 = 5;

fn is_full_range_format(pix: AVPixelFormat) -> bool {
    use AVPixelFormat::*;
    matches!(
        pix,
        AV_PIX_FMT_YUVJ420P
            | AV_PIX_FMT_YUVJ422P
            | AV_PIX_FMT_YUVJ444P
            | AV_PIX_FMT_YUVJ440P
            | AV_PIX_FMT_YUVJ411P
    )
}

/// How to read a decoded frame's YUV into RGB.
pub(crate) fn decode_conversion(
    space: AVColorSpace,
    range: AVColorRange,
    pix: AVPixelFormat,
) -> YuvConversion {
    YuvConversion {
        sws_colorspace: sws_index(space).unwrap_or(BT601),
        full_range: range == AVColorRange::AVCOL_RANGE_JPEG || is_full_range_format(pix),
    }
}

/// The output's colour tags, from the input stream's.
pub(crate) fn output_color(
    space: AVColorSpace,
    primaries: AVColorPrimaries,
    transfer: AVColorTransferCharacteristic,
) -> OutputColor {
    if sws_index(space).is_some() {
        OutputColor {
            space,
            primaries,
            transfer,
        }
    } else {
        OutputColor {
            space: AVColorSpace::AVCOL_SPC_BT709,
            primaries: AVColorPrimaries::AVCOL_PRI_BT709,
            transfer: AVColorTransferCharacteristic::AVCOL_TRC_BT709,
        }
    }
}

impl OutputColor {
    /// The RGB→YUV conversion matching these tags (limited range).
    pub fn encode_conversion(&self) -> YuvConversion {
        YuvConversion {
            sws_colorspace: sws_index(self.space).unwrap_or(1),
            full_range: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untagged_reads_as_bt601_and_writes_as_bt709() {
        let d = decode_conversion(
            AVColorSpace::AVCOL_SPC_UNSPECIFIED,
            AVColorRange::AVCOL_RANGE_UNSPECIFIED,
            AVPixelFormat::AV_PIX_FMT_YUV420P,
        );
        assert_eq!(
            d,
            YuvConversion {
                sws_colorspace: 5,
                full_range: false
            }
        );
        let o = output_color(
            AVColorSpace::AVCOL_SPC_UNSPECIFIED,
            AVColorPrimaries::AVCOL_PRI_UNSPECIFIED,
            AVColorTransferCharacteristic::AVCOL_TRC_UNSPECIFIED,
        );
        assert_eq!(o.space, AVColorSpace::AVCOL_SPC_BT709);
        assert_eq!(o.encode_conversion().sws_colorspace, 1);
    }

    #[test]
    fn jpeg_formats_are_full_range() {
        let d = decode_conversion(
            AVColorSpace::AVCOL_SPC_BT709,
            AVColorRange::AVCOL_RANGE_UNSPECIFIED,
            AVPixelFormat::AV_PIX_FMT_YUVJ420P,
        );
        assert!(d.full_range);
        assert_eq!(d.sws_colorspace, 1);
    }

    #[test]
    fn tagged_bt2020_is_kept() {
        let o = output_color(
            AVColorSpace::AVCOL_SPC_BT2020_NCL,
            AVColorPrimaries::AVCOL_PRI_BT2020,
            AVColorTransferCharacteristic::AVCOL_TRC_SMPTE2084,
        );
        assert_eq!(o.primaries, AVColorPrimaries::AVCOL_PRI_BT2020);
        assert_eq!(o.encode_conversion().sws_colorspace, 9);
    }
}
