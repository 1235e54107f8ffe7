//! Probing: what a video file holds (size, frame rate, time base, rotation, audio streams), read once up front.
//!
//! Also the demuxing and timestamp helpers the reader and the writer share:
//! opening an input, stream starts, rescaling, skipping unused streams.

use std::path::{Path, PathBuf};

use ff::ffi;
use ff::format::context::Input;
use ff::format::stream::Disposition;
use ff::media;
use ffmpeg_next as ff;

use crate::MediaError;

/// An exact fraction, as FFmpeg keeps frame rates and time bases (30000/1001 stays 30000/1001).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rational {
    pub num: i32,
    pub den: i32,
}

impl Rational {
    pub const fn new(num: i32, den: i32) -> Self {
        Rational { num, den }
    }

    /// The value as a float; 0.0 when the denominator is 0.
    pub fn as_f64(self) -> f64 {
        if self.den == 0 {
            0.0
        } else {
            f64::from(self.num) / f64::from(self.den)
        }
    }

    /// Both parts positive: usable as a rate or a time base.
    pub fn is_positive(self) -> bool {
        self.num > 0 && self.den > 0
    }

    /// The reciprocal (a frame rate's frame duration, a time base's tick rate).
    pub fn invert(self) -> Self {
        Rational {
            num: self.den,
            den: self.num,
        }
    }

    pub(crate) fn to_ff(self) -> ff::Rational {
        ff::Rational(self.num, self.den)
    }

    pub(crate) fn from_ff(r: ff::Rational) -> Self {
        Rational {
            num: r.numerator(),
            den: r.denominator(),
        }
    }

    pub(crate) fn from_av(r: ffi::AVRational) -> Self {
        Rational {
            num: r.num,
            den: r.den,
        }
    }
}

impl std::fmt::Display for Rational {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

/// One audio stream of the input, copied unchanged to the output.
#[derive(Clone, Debug)]
pub struct AudioStreamInfo {
    /// The stream's index in the input file (as in ffprobe's `Stream #0:N`).
    pub index: usize,
    /// FFmpeg's codec name (`aac`, `opus`, `pcm_s16le`, ...).
    pub codec: String,
    pub channels: u16,
    pub sample_rate: u32,
}

/// What the pipeline needs to know about an input video before decoding it.
#[derive(Clone, Debug)]
pub struct VideoInfo {
    pub path: PathBuf,
    /// Coded size after the codec's cropping, before any rotation.
    pub width: u32,
    pub height: u32,
    /// FFmpeg's codec name of the video stream (`h264`, `hevc`, `vp9`, ...).
    pub codec: String,
    /// FFmpeg's best guess (`av_guess_frame_rate`: r_frame_rate unless the
    /// average is clearly the real one); 25/1 when the file gives none.
    pub frame_rate: Rational,
    /// The input video stream's time base; [`crate::DecodedFrame::pts`] counts in it.
    pub time_base: Rational,
    /// From the container when it records it (see `frame_count_exact`), else
    /// estimated as duration × frame rate; for progress and sanity checks.
    /// When an MP4/MOV edit list hides frames (a file cut with `-c copy`), the
    /// count of frames it presents, which is what [`crate::FrameReader`] yields.
    pub frame_count: Option<u64>,
    /// True when `frame_count` is the container's own count rather than an
    /// estimate; false too when an edit list hides some of the stored frames
    /// (the container's own count then includes frames never shown).
    pub frame_count_exact: bool,
    /// The video stream's duration, else the container's; 0.0 when neither is known.
    pub duration_secs: f64,
    /// The video stream's own length when the file records one: MP4/MOV's stream
    /// duration, or the `DURATION` tag Matroska muxers write per track. Unlike
    /// `container_duration_secs` it leaves out audio that runs on past the picture.
    pub video_duration_secs: Option<f64>,
    /// The container's duration (ffprobe's `format=duration`: from the earliest
    /// start to the latest end over all streams), `None` when the file gives none.
    /// Matroska records it in its header, so a cut file still claims the full
    /// length: compare with [`crate::FrameReader::decoded_duration_secs`]. MPEG-TS
    /// has no such field and FFmpeg estimates it from the last packets present,
    /// so a cut TS file looks complete by this measure.
    pub container_duration_secs: Option<f64>,
    /// Where the video's timeline starts, in seconds of the input's clock: the
    /// earliest first timestamp of the video and audio streams (MPEG-TS usually
    /// starts near 1.4 s; edit lists are already applied, so a cut MP4 starts at 0).
    /// [`crate::VideoWriter`] subtracts it so the output starts at 0, as ffmpeg does;
    /// [`crate::FrameReader::open_at`] and `decoded_duration_secs` count from it.
    pub start_secs: f64,
    /// The display matrix's rotation in degrees counter-clockwise, as
    /// `av_display_rotation_get` and ffprobe report it (0, 90, -90, 180); 0 when none.
    pub rotation_degrees: i32,
    /// Bits per sample of the decoded picture (8 for most video; 10 for 10-bit camera and HDR
    /// formats); 8 when the stream does not say.
    pub bits_per_sample: u8,
    pub audio: Vec<AudioStreamInfo>,
    pub video_stream_index: usize,
}

/// Opens a media file for demuxing, mapping FFmpeg's failure to the file's problem.
pub(crate) fn open_input(path: &Path) -> Result<Input, MediaError> {
    crate::init()?;
    crate::log::clear();
    ff::format::input(&path).map_err(|e| MediaError::open_failed(path, e))
}

/// Opens a piece or segment this tool wrote, to read its packets only. Its Matroska header names
/// the streams and carries the codec headers; FFmpeg's stream analysis, which decodes up to seven
/// H.264 frames on every open, is skipped (a join opens each segment twice).
pub(crate) fn open_packets_only(path: &Path) -> Result<Input, MediaError> {
    use std::os::unix::ffi::OsStrExt as _;
    crate::init()?;
    crate::log::clear();
    let url =
        std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| MediaError::Open {
            path: path.to_path_buf(),
            reason: "the path holds a NUL byte".into(),
        })?;
    let mut context = std::ptr::null_mut();
    // SAFETY: `context` starts null as avformat_open_input requires; on success it owns the
    // opened context, which `Input::wrap` takes over (and closes on drop).
    unsafe {
        match ffi::avformat_open_input(
            &mut context,
            url.as_ptr(),
            std::ptr::null(),
            std::ptr::null_mut(),
        ) {
            0 => Ok(Input::wrap(context)),
            e => Err(MediaError::open_failed(path, ff::Error::from(e))),
        }
    }
}

/// Makes the demuxer skip the payload of every stream `keep` says no to, instead of reading it.
pub(crate) fn discard_streams(input: &mut Input, keep: impl Fn(usize) -> bool) {
    // SAFETY: stream pointers belong to the open context; discard is a plain
    // field the demuxer checks on each read.
    unsafe {
        let ctx = input.as_mut_ptr();
        for i in 0..(*ctx).nb_streams as usize {
            if !keep(i) {
                (**(*ctx).streams.add(i)).discard = ffi::AVDiscard::AVDISCARD_ALL;
            }
        }
    }
}

/// The stream to decode: FFmpeg's best video stream, skipping cover pictures
/// (an attached picture is a one-frame "video" stream that is not the video).
pub(crate) fn pick_video_stream(ictx: &Input) -> Option<usize> {
    let is_real_video = |s: &ff::Stream| {
        s.parameters().medium() == media::Type::Video
            && !s.disposition().contains(Disposition::ATTACHED_PIC)
    };
    if let Some(best) = ictx.streams().best(media::Type::Video) {
        if is_real_video(&best) {
            return Some(best.index());
        }
    }
    ictx.streams().find(|s| is_real_video(s)).map(|s| s.index())
}

/// The stream's 3×3 display matrix (16.16 fixed point, as stored in MP4/MOV), if any.
pub(crate) fn display_matrix(stream: &ff::Stream) -> Option<[u8; 36]> {
    stream
        .side_data()
        .find(|sd| sd.kind() == ff::codec::packet::side_data::Type::DisplayMatrix)
        .and_then(|sd| <[u8; 36]>::try_from(sd.data()).ok())
}

pub(crate) fn rotation_of(matrix: &[u8; 36]) -> i32 {
    let mut words = [0i32; 9];
    for (w, chunk) in words.iter_mut().zip(matrix.chunks_exact(4)) {
        *w = i32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    // SAFETY: av_display_rotation_get only reads the nine words it is given.
    let degrees = unsafe { ffi::av_display_rotation_get(words.as_ptr()) };
    if degrees.is_finite() {
        degrees.round() as i32
    } else {
        0
    }
}

/// Reads a file's streams and returns what the pipeline needs, without decoding any frame.
pub fn probe(path: &Path) -> Result<VideoInfo, MediaError> {
    let ictx = open_input(path)?;
    let video_index = pick_video_stream(&ictx).ok_or_else(|| MediaError::NoVideoStream {
        path: path.to_path_buf(),
    })?;
    let stream = ictx.stream(video_index).expect("index from this context");
    let (width, height) = frame_size(&stream, path)?;
    refuse_hdr(&stream, path)?;

    let frame_rate = guess_frame_rate(&ictx, video_index);
    let time_base = {
        let tb = Rational::from_ff(stream.time_base());
        if tb.is_positive() {
            tb
        } else {
            frame_rate.invert()
        }
    };
    let video_duration_secs = video_duration(&stream, time_base);
    let container_duration_secs =
        (ictx.duration() > 0).then(|| ictx.duration() as f64 / f64::from(ffi::AV_TIME_BASE));
    let duration_secs = video_duration_secs
        .or(container_duration_secs)
        .unwrap_or(0.0);
    let (frame_count, frame_count_exact) = frame_count(&stream, duration_secs, frame_rate);
    let start_secs = presentation_start(&ictx, video_index).map_or(0.0, |(ts, tb)| {
        ts as f64 * f64::from(tb.numerator()) / f64::from(tb.denominator())
    });

    Ok(VideoInfo {
        path: path.to_path_buf(),
        width,
        height,
        codec: stream.parameters().id().name().to_string(),
        frame_rate,
        time_base,
        frame_count,
        frame_count_exact,
        duration_secs,
        video_duration_secs,
        container_duration_secs,
        start_secs,
        rotation_degrees: display_matrix(&stream)
            .map(|m| rotation_of(&m))
            .unwrap_or(0),
        bits_per_sample: bits_per_sample(&stream),
        audio: audio_streams(&ictx),
        video_stream_index: video_index,
    })
}

/// The deepest component of the stream's pixel format, in bits (8 when unknown).
fn bits_per_sample(stream: &ff::Stream) -> u8 {
    // SAFETY: codecpar of an open stream; for video, `format` is an AVPixelFormat value or -1.
    let format = unsafe { (*stream.parameters().as_ptr()).format };
    crate::pixels::pixel_bits(format).unwrap_or(8)
}

/// An error for a stream tagged with an HDR transfer (see [`crate::color`]'s policy).
fn refuse_hdr(stream: &ff::Stream, path: &Path) -> Result<(), MediaError> {
    // SAFETY: codecpar of an open stream; a plain field read.
    let transfer = unsafe { (*stream.parameters().as_ptr()).color_trc };
    match crate::color::hdr_transfer(transfer) {
        Some(transfer) => Err(MediaError::Hdr {
            path: path.to_path_buf(),
            transfer: transfer.to_string(),
        }),
        None => Ok(()),
    }
}

/// The video stream's coded size; an error when the file gives none.
fn frame_size(stream: &ff::Stream, path: &Path) -> Result<(u32, u32), MediaError> {
    let params = stream.parameters();
    // SAFETY: codecpar belongs to the open stream and outlives this read.
    let (width, height) = unsafe {
        let par = params.as_ptr();
        ((*par).width.max(0) as u32, (*par).height.max(0) as u32)
    };
    if width == 0 || height == 0 {
        return Err(MediaError::Decoder {
            path: path.to_path_buf(),
            reason: "the video stream has no frame size".into(),
        });
    }
    Ok((width, height))
}

/// The video stream's own length: its duration field, else Matroska's `DURATION` tag.
fn video_duration(stream: &ff::Stream, time_base: Rational) -> Option<f64> {
    if stream.duration() > 0 {
        Some(stream.duration() as f64 * time_base.as_f64())
    } else {
        stream
            .metadata()
            .get("DURATION")
            .and_then(parse_clock_duration)
    }
}

/// The frames the video presents and whether that is the container's own count
/// (see [`VideoInfo::frame_count`]): what an edit list lets through, else the
/// stream's count, else duration × rate.
fn frame_count(
    stream: &ff::Stream,
    duration_secs: f64,
    frame_rate: Rational,
) -> (Option<u64>, bool) {
    if let Some(shown) = frames_shown_by_edit_list(stream) {
        (Some(shown), false)
    } else if stream.frames() > 0 {
        (Some(stream.frames() as u64), true)
    } else if duration_secs > 0.0 {
        (
            Some((duration_secs * frame_rate.as_f64()).round() as u64),
            false,
        )
    } else {
        (None, false)
    }
}

/// Every audio stream of the input, with what FFmpeg knows of it.
fn audio_streams(ictx: &Input) -> Vec<AudioStreamInfo> {
    ictx.streams()
        .filter(|s| s.parameters().medium() == media::Type::Audio)
        .map(|s| {
            let p = s.parameters();
            // SAFETY: codecpar belongs to the open stream; ch_layout is the FFmpeg 5.1 channel field.
            let (channels, sample_rate) = unsafe {
                let par = p.as_ptr();
                (
                    (*par).ch_layout.nb_channels.max(0) as u16,
                    (*par).sample_rate.max(0) as u32,
                )
            };
            AudioStreamInfo {
                index: s.index(),
                codec: p.id().name().to_string(),
                channels,
                sample_rate,
            }
        })
        .collect()
}

/// Reads Matroska's `DURATION` tag, `HH:MM:SS.fraction` (e.g. `00:00:10.033000000`).
fn parse_clock_duration(text: &str) -> Option<f64> {
    let mut parts = text.trim().splitn(3, ':');
    let hours: f64 = parts.next()?.parse().ok()?;
    let minutes: f64 = parts.next()?.parse().ok()?;
    let seconds: f64 = parts.next()?.parse().ok()?;
    let total = hours * 3600.0 + minutes * 60.0 + seconds;
    (total.is_finite() && total > 0.0).then_some(total)
}

/// A stream's first presented timestamp (FFmpeg's `start_time`, edit lists
/// applied), `None` when unknown or when the time base is unusable.
pub(crate) fn stream_start(stream: &ff::Stream) -> Option<(i64, ff::Rational)> {
    let tb = stream.time_base();
    (stream.start_time() != ffi::AV_NOPTS_VALUE && tb.numerator() > 0 && tb.denominator() > 0)
        .then(|| (stream.start_time(), tb))
}

/// The earliest first timestamp of the video stream and the audio streams, with
/// its time base: the origin ffmpeg subtracts (`-ic->start_time`) so an output
/// starts at 0. Subtitle and data streams are left out because they are not
/// copied. `None` when the video's own start is unknown: shifting by the audio
/// alone could put the video anywhere.
pub(crate) fn presentation_start(ictx: &Input, video_index: usize) -> Option<(i64, ff::Rational)> {
    let mut earliest = stream_start(&ictx.stream(video_index)?)?;
    for s in ictx
        .streams()
        .filter(|s| s.parameters().medium() == media::Type::Audio)
    {
        if let Some((ts, tb)) = stream_start(&s) {
            // SAFETY: pure arithmetic on two timestamps with positive time bases.
            let earlier =
                unsafe { ffi::av_compare_ts(ts, tb.into(), earliest.0, earliest.1.into()) < 0 };
            if earlier {
                earliest = (ts, tb);
            }
        }
    }
    Some(earliest)
}

/// `ts` counted in `from` units, converted to `to` units (rounded to nearest, as FFmpeg does).
pub(crate) fn rescale(ts: i64, from: ff::Rational, to: ff::Rational) -> i64 {
    // SAFETY: pure arithmetic.
    unsafe { ffi::av_rescale_q(ts, from.into(), to.into()) }
}

/// How many of the stream's frames an edit list lets through, when it hides any.
///
/// The MP4/MOV demuxer keeps every stored sample in the stream's index and marks
/// those outside the edit list `AVINDEX_DISCARD_FRAME`; their packets carry
/// `AV_PKT_FLAG_DISCARD` and the decoder drops their frames. `nb_frames` counts
/// them all (a file cut with `-ss 1.5 -c copy` keeps the whole first GOP), so the
/// presented count is the index's unmarked entries. `None` when nothing is hidden
/// (no index, a keyframe-only index as in Matroska, or an edit list that only shifts).
fn frames_shown_by_edit_list(stream: &ff::Stream) -> Option<u64> {
    // SAFETY: the stream belongs to an open context; the index is only read.
    unsafe {
        let st = stream.as_ptr() as *mut ffi::AVStream;
        let entries = ffi::avformat_index_get_entries_count(st);
        let mut hidden = 0u64;
        for i in 0..entries {
            let entry = ffi::avformat_index_get_entry(st, i);
            if !entry.is_null() && (*entry).flags() & ffi::AVINDEX_DISCARD_FRAME != 0 {
                hidden += 1;
            }
        }
        (hidden > 0).then(|| entries as u64 - hidden)
    }
}

fn guess_frame_rate(ictx: &Input, index: usize) -> Rational {
    // SAFETY: both pointers come from the open context; a null frame is allowed.
    let guessed = unsafe {
        let ctx = ictx.as_ptr() as *mut ffi::AVFormatContext;
        let st = *(*ctx).streams.add(index);
        Rational::from_av(ffi::av_guess_frame_rate(ctx, st, std::ptr::null_mut()))
    };
    if guessed.is_positive() {
        reduce(guessed)
    } else {
        // FFmpeg's own fallback when a stream states no rate.
        Rational::new(25, 1)
    }
}

fn reduce(r: Rational) -> Rational {
    fn gcd(a: i64, b: i64) -> i64 {
        if b == 0 {
            a.abs()
        } else {
            gcd(b, a % b)
        }
    }
    let g = gcd(i64::from(r.num), i64::from(r.den)).max(1);
    Rational::new((i64::from(r.num) / g) as i32, (i64::from(r.den) / g) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce_keeps_ntsc_exact() {
        assert_eq!(
            reduce(Rational::new(60000, 2002)),
            Rational::new(30000, 1001)
        );
        assert_eq!(reduce(Rational::new(30, 1)), Rational::new(30, 1));
    }

    #[test]
    fn matroska_duration_tags_read_as_seconds() {
        assert_eq!(parse_clock_duration("00:00:10.033000000"), Some(10.033));
        assert_eq!(parse_clock_duration("01:02:03.5"), Some(3723.5));
        assert_eq!(parse_clock_duration("00:00:00.000000000"), None);
        assert_eq!(parse_clock_duration("ten seconds"), None);
        assert_eq!(parse_clock_duration("00:10"), None);
    }

    #[test]
    fn rotation_of_identity_is_zero() {
        let mut m = [0u8; 36];
        for (i, v) in [0x10000i32, 0, 0, 0, 0x10000, 0, 0, 0, 0x4000_0000]
            .iter()
            .enumerate()
        {
            m[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(rotation_of(&m), 0);
    }
}
