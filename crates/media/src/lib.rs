//! stylize-media: FFmpeg edges — probe, decode to RGB frames, encode (H.264, HEVC, AV1, ProRes, FFV1), mux with the audio copied.
//!
//! The pipeline sees four things: [`probe`] a file into a [`VideoInfo`], pull
//! [`DecodedFrame`]s from a [`FrameReader`], push them into a [`VideoWriter`],
//! and [`VideoWriter::finish`]. Everything FFmpeg-specific (time bases, colour
//! matrices, muxer quirks, audio interleaving) stays inside this crate.
//!
//! Policies a caller should know:
//! - Frames are packed RGB24 at the coded size; rotation stays metadata and is
//!   copied to the output (MP4/MOV; FFmpeg 5.1's Matroska muxer has no field for
//!   it, so a rotated input refuses .mkv rather than play sideways).
//! - Colour: YUV is read with the stream's tagged matrix and range (untagged
//!   means BT.601 in SD and BT.709 in HD, as players show it); the output keeps
//!   the input's tags when swscale supports its matrix, otherwise it is written
//!   and tagged in the matrix it was read with, always limited range. HDR (PQ,
//!   HLG) inputs are refused at [`probe`].
//! - Audio streams are copied packet for packet; subtitle, data and attachment
//!   streams are dropped. An audio stream FFmpeg could not work out (no sample
//!   rate or channels) is refused, naming the input.
//! - Timeline: the output starts at 0. Every timestamp moves back by
//!   [`VideoInfo::start_secs`] (MPEG-TS starts near 1.4 s), video and audio alike,
//!   so they stay in sync. Edit lists (an MP4 cut with `-c copy`) are honoured:
//!   the frames they hide are neither decoded nor counted.
//! - Errors carry FFmpeg's own last error line; nothing is printed.
//! - Odd sizes: see [`encoded_size`].

mod codecs;
mod color;
mod error;
mod join;
mod log;
mod pixels;
mod probe;
mod reader;
mod scale;
mod split;
mod writer;

pub use codecs::{ProResProfile, VideoCodec};
pub use error::MediaError;
pub use join::SegmentJoiner;
pub use pixels::PixelFormatChoice;
pub use probe::{probe, AudioStreamInfo, Rational, VideoInfo};
pub use reader::{DecodedFrame, FrameReader};
pub use split::{plan_pieces, write_pieces, write_pieces_telling, Piece, PieceFrames, SplitPlan};
pub use stylize_frame::RgbImage;
pub use writer::{encoded_size, EncodeOptions, VideoWriter, WriteSummary, X264_PRESETS};

use std::sync::OnceLock;

/// Initialises FFmpeg once per process and keeps its log off the terminal: every
/// failure reaches the caller as a `MediaError` naming the file, with FFmpeg's
/// own last error line appended. Set `STYLIZE_FFMPEG_LOG=1` to also see FFmpeg's
/// error lines as they happen when debugging.
///
/// Every other entry point calls this itself, so calling it is optional; it is
/// public so a binary can fail early with a clear message.
pub fn init() -> Result<(), MediaError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        // SVT-AV1 logs its whole configuration to stderr at every encoder start; FFmpeg 5.1's
        // wrapper has no option for it, only the library's own variable (1: errors only).
        if std::env::var_os("SVT_LOG").is_none() {
            std::env::set_var("SVT_LOG", "1");
        }
        ffmpeg_next::init().map_err(|e| e.to_string())?;
        // The callback sees every level; the level still matters to code in
        // FFmpeg that checks it before building expensive messages.
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Error);
        log::install(std::env::var_os("STYLIZE_FFMPEG_LOG").is_some());
        Ok(())
    })
    .clone()
    .map_err(|reason| MediaError::Init { reason })
}
