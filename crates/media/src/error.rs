//! The crate's one error type: every message names the file and the problem on one line.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while probing, decoding or encoding a video.
///
/// Messages carry FFmpeg's own reason in parentheses instead of a `source()`,
/// so an `anyhow` chain printed with `{:#}` does not repeat it; where FFmpeg
/// logged an error line while failing, that line follows the errno text after a
/// `;` (`Invalid argument; mov: opus only supported in MP4.`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// FFmpeg itself could not be initialised (a broken installation).
    #[error("cannot initialise FFmpeg ({reason})")]
    Init { reason: String },

    /// The input path does not exist.
    #[error("{}: no such file", .path.display())]
    NotFound { path: PathBuf },

    /// The input exists but could not be opened (permissions, I/O error).
    #[error("{}: cannot open ({reason})", .path.display())]
    Open { path: PathBuf, reason: String },

    /// The input exists but no demuxer could read it (not a media file, or cut
    /// off before its index).
    #[error("{}: not a video file ({reason})", .path.display())]
    NotAVideo { path: PathBuf, reason: String },

    /// The input is a media file without a video stream (audio only, or only a
    /// cover picture).
    #[error("{}: no video stream", .path.display())]
    NoVideoStream { path: PathBuf },

    /// The video is HDR (a PQ or HLG transfer): the networks style SDR pictures, and reading it
    /// as SDR would give a washed-out picture, so it is refused rather than silently converted.
    #[error("{}: HDR video ({transfer} transfer) is not supported: stylize styles SDR pictures and would wash it out; tone-map it to SDR first (for example with FFmpeg's zscale and tonemap filters)", .path.display())]
    Hdr { path: PathBuf, transfer: String },

    /// The video stream's codec has no decoder here, or the decoder refused to open.
    #[error("{}: cannot decode the video stream ({reason})", .path.display())]
    Decoder { path: PathBuf, reason: String },

    /// Reading or decoding failed part way. `frame` frames were delivered
    /// before this error, which [`crate::FrameReader`] yields last.
    #[error("{}: truncated or corrupt at frame {frame}: {reason}", .path.display())]
    Corrupt {
        path: PathBuf,
        frame: u64,
        reason: String,
    },

    /// The output file extension names no container this crate writes.
    #[error("{}: unsupported container (use .mp4, .mkv or .mov)", .path.display())]
    UnsupportedContainer { path: PathBuf },

    /// An input audio stream cannot be stored, unchanged, in the chosen container.
    #[error("{}: the .{container} container cannot hold audio stream {stream} ({codec}); use .mkv", .path.display())]
    AudioNotSupported {
        path: PathBuf,
        container: String,
        stream: usize,
        codec: String,
    },

    /// An input audio stream whose parameters FFmpeg could not work out (no
    /// sample rate or no channel count, typically a stream declared in an
    /// MPEG-TS program whose packets come too late or never); copying it would
    /// make an unplayable track. `path` is the input file.
    #[error("{}: audio stream {stream} ({codec}) cannot be copied: {reason}", .path.display())]
    AudioUnusable {
        path: PathBuf,
        stream: usize,
        codec: String,
        reason: String,
    },

    /// The codec's encoder is missing from the FFmpeg build (`stylize codecs` lists those present).
    #[error("{}: this FFmpeg has no {encoder} encoder (see `stylize codecs` for those it has)", .path.display())]
    EncoderUnavailable { path: PathBuf, encoder: String },

    /// The encode options are out of range (CRF, preset, odd size too small).
    #[error("{}: invalid encode options: {reason}", .path.display())]
    InvalidOptions { path: PathBuf, reason: String },

    /// The input is meant to be shown rotated and the chosen container cannot
    /// say so (FFmpeg 5.1 writes no rotation into Matroska); the output would play sideways.
    #[error("{}: the .{container} container cannot keep the input's {degrees}° rotation; use .mp4 or .mov", .path.display())]
    RotationNotSupported {
        path: PathBuf,
        container: String,
        degrees: i32,
    },

    /// A frame handed to the writer does not match the input it was created for.
    #[error("{}: frame {frame} is {got}, expected {expected}", .path.display())]
    FrameMismatch {
        path: PathBuf,
        frame: u64,
        got: String,
        expected: String,
    },

    /// The encoder failed (on open, on a frame, or on flush).
    #[error("{}: H.264 encoding failed ({reason})", .path.display())]
    Encode { path: PathBuf, reason: String },

    /// Creating or writing the output file failed (disk full, permissions, muxer refusal).
    #[error("{}: cannot write output ({reason})", .path.display())]
    Write { path: PathBuf, reason: String },

    /// Reading the input's audio packets for copying failed.
    #[error("{}: cannot read audio for copying ({reason})", .path.display())]
    AudioRead { path: PathBuf, reason: String },

    /// The input's video stream cannot be cut into independently decodable pieces and counted
    /// without decoding (see [`crate::plan_pieces`]).
    #[error("{}: cannot be sent as pieces of its bitstream: {reason}", .path.display())]
    Unsplittable { path: PathBuf, reason: String },

    /// Encoded segments do not join into one stream (wrong order, frame count, or codec).
    #[error("{}: cannot join segment {segment}: {reason}", .path.display())]
    Join {
        path: PathBuf,
        segment: String,
        reason: String,
    },
}

impl MediaError {
    pub(crate) fn open_failed(path: &Path, err: ffmpeg_next::Error) -> Self {
        let path_buf = path.to_path_buf();
        if !path.exists() {
            MediaError::NotFound { path: path_buf }
        } else if matches!(err, ffmpeg_next::Error::Other { .. }) {
            // Plain errno values (EACCES, EIO, EISDIR) are about the file, not its content.
            MediaError::Open {
                path: path_buf,
                reason: crate::log::reason(err),
            }
        } else {
            MediaError::NotAVideo {
                path: path_buf,
                reason: crate::log::reason(err),
            }
        }
    }
}
