//! Colour policy: which YUV matrix and range frames are read with and written in, so RGB values survive.
//!
//! Decoding uses the stream's tagged matrix and range. An untagged stream (or one
//! tagged with a matrix swscale lacks) is read the way players show it: BT.601
//! when it is standard definition, BT.709 from 1280 columns or 577 rows up (mpv's
//! and VLC's rule; swscale alone would read every size as BT.601, shifting the
//! colours of untagged HD). The output keeps the input's tags when swscale knows
//! its matrix (BT.709 stays BT.709, BT.2020 stays BT.2020) and is otherwise
//! written in the matrix it was read with and tagged so (SMPTE 170M for BT.601,
//! BT.709). The output is always limited range, the form every player handles.
//! HDR transfers (PQ, HLG) are refused at probing: see [`hdr_transfer`].

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
const BT709: i32 = 1;

/// Whether a frame of this size is high definition, for the matrix an untagged stream is read in.
fn is_hd(width: u32, height: u32) -> bool {
    width >= 1280 || height > 576
}

/// The matrix an untagged stream of this size is read and written in.
fn untagged_matrix(width: u32, height: u32) -> i32 {
    if is_hd(width, height) {
        BT709
    } else {
        BT601
    }
}

/// The name of an HDR transfer characteristic (which stylize refuses: its networks see SDR
/// pictures, and reading PQ or HLG as SDR gives a washed-out picture), or `None` for SDR.
pub(crate) fn hdr_transfer(transfer: AVColorTransferCharacteristic) -> Option<&'static str> {
    use AVColorTransferCharacteristic::*;
    match transfer {
        AVCOL_TRC_SMPTE2084 => Some("PQ (SMPTE ST 2084)"),
        AVCOL_TRC_ARIB_STD_B67 => Some("HLG (ARIB STD-B67)"),
        _ => None,
    }
}

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

/// How to read a decoded frame's YUV (of `width` × `height`) into RGB.
pub(crate) fn decode_conversion(
    space: AVColorSpace,
    range: AVColorRange,
    pix: AVPixelFormat,
    (width, height): (u32, u32),
) -> YuvConversion {
    YuvConversion {
        sws_colorspace: sws_index(space).unwrap_or_else(|| untagged_matrix(width, height)),
        full_range: range == AVColorRange::AVCOL_RANGE_JPEG || is_full_range_format(pix),
    }
}

/// The output's colour tags, from the input stream's (of `width` × `height`).
pub(crate) fn output_color(
    space: AVColorSpace,
    primaries: AVColorPrimaries,
    transfer: AVColorTransferCharacteristic,
    (width, height): (u32, u32),
) -> OutputColor {
    if sws_index(space).is_some() {
        OutputColor {
            space,
            primaries,
            transfer,
        }
    } else if untagged_matrix(width, height) == BT601 {
        OutputColor {
            space: AVColorSpace::AVCOL_SPC_SMPTE170M,
            primaries: AVColorPrimaries::AVCOL_PRI_SMPTE170M,
            transfer: AVColorTransferCharacteristic::AVCOL_TRC_SMPTE170M,
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
            sws_colorspace: sws_index(self.space).unwrap_or(BT709),
            full_range: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untagged_reads_and_writes_as_players_show_it_bt601_in_sd_bt709_in_hd() {
        let untagged = |size| {
            let read = decode_conversion(
                AVColorSpace::AVCOL_SPC_UNSPECIFIED,
                AVColorRange::AVCOL_RANGE_UNSPECIFIED,
                AVPixelFormat::AV_PIX_FMT_YUV420P,
                size,
            );
            let written = output_color(
                AVColorSpace::AVCOL_SPC_UNSPECIFIED,
                AVColorPrimaries::AVCOL_PRI_UNSPECIFIED,
                AVColorTransferCharacteristic::AVCOL_TRC_UNSPECIFIED,
                size,
            );
            (read, written)
        };
        for sd in [(640, 480), (720, 576), (720, 720 - 144)] {
            let (read, written) = untagged(sd);
            assert_eq!(
                read,
                YuvConversion {
                    sws_colorspace: BT601,
                    full_range: false
                }
            );
            assert_eq!(written.space, AVColorSpace::AVCOL_SPC_SMPTE170M, "{sd:?}");
            assert_eq!(written.encode_conversion().sws_colorspace, BT601);
        }
        for hd in [(1280, 720), (720, 720), (1920, 1080), (1280, 536)] {
            let (read, written) = untagged(hd);
            assert_eq!(read.sws_colorspace, BT709, "{hd:?}");
            assert_eq!(written.space, AVColorSpace::AVCOL_SPC_BT709, "{hd:?}");
            assert_eq!(written.encode_conversion().sws_colorspace, BT709);
        }
    }

    #[test]
    fn pq_and_hlg_are_hdr() {
        use AVColorTransferCharacteristic::*;
        assert!(hdr_transfer(AVCOL_TRC_SMPTE2084).is_some_and(|n| n.starts_with("PQ")));
        assert!(hdr_transfer(AVCOL_TRC_ARIB_STD_B67).is_some_and(|n| n.starts_with("HLG")));
        for sdr in [AVCOL_TRC_BT709, AVCOL_TRC_UNSPECIFIED, AVCOL_TRC_SMPTE170M] {
            assert_eq!(hdr_transfer(sdr), None);
        }
    }

    #[test]
    fn jpeg_formats_are_full_range() {
        let d = decode_conversion(
            AVColorSpace::AVCOL_SPC_BT709,
            AVColorRange::AVCOL_RANGE_UNSPECIFIED,
            AVPixelFormat::AV_PIX_FMT_YUVJ420P,
            (640, 480),
        );
        assert!(d.full_range);
        assert_eq!(d.sws_colorspace, 1);
    }

    #[test]
    fn tagged_bt2020_is_kept() {
        let o = output_color(
            AVColorSpace::AVCOL_SPC_BT2020_NCL,
            AVColorPrimaries::AVCOL_PRI_BT2020,
            AVColorTransferCharacteristic::AVCOL_TRC_BT2020_10,
            (3840, 2160),
        );
        assert_eq!(o.primaries, AVColorPrimaries::AVCOL_PRI_BT2020);
        assert_eq!(o.encode_conversion().sws_colorspace, 9);
    }
}
