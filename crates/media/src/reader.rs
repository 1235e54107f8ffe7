//! Decoding: the video stream of a file as a sequence of packed RGB24 frames with their timestamps.

use std::path::PathBuf;

use ff::ffi;
use ff::format::context::Input;
use ff::util::error::EAGAIN;
use ffmpeg_next as ff;

use crate::color::decode_conversion;
use crate::pixels::{image_from_plane, packed_rgb, pixel_bits};
use crate::probe::{
    discard_streams, open_input, open_packets_only, presentation_start, rescale, stream_start,
};
use crate::scale::Scaler;
use crate::{MediaError, Rational, RgbImage, VideoInfo};

/// One decoded frame: its position in presentation order, its timestamp, its picture.
#[derive(Debug)]
pub struct DecodedFrame {
    /// 0, 1, 2, ... in presentation order, counted from the first frame of the video.
    ///
    /// After a seek ([`FrameReader::open_at`], [`FrameReader::seek_to`]) the first
    /// frame's index is computed as `round((pts − video start) × frame rate)` and
    /// the following frames count on from it: the frame's true index for
    /// constant-frame-rate video, an estimate for variable-rate video.
    pub index: u64,
    /// Presentation time in the input stream's time base ([`VideoInfo::time_base`]);
    /// FFmpeg's best-effort timestamp, `None` when the file gives none.
    pub pts: Option<i64>,
    pub image: RgbImage,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Packets are still being read and sent.
    Reading,
    /// End of input was signalled to the decoder; only buffered frames remain.
    Draining,
    Done,
}

/// Demuxer reads that fail with "invalid data" in a row before the file is given up on;
/// a truncated MP4 reports one per missing sample and then ends.
const MAX_INVALID_READS_IN_A_ROW: u32 = 10_000;

/// Decodes the chosen video stream of a file to RGB24 at the coded size (with 16-bit samples too
/// for a deeper source, when asked: [`FrameReader::keep_depth`]).
///
/// An iterator of `Result<DecodedFrame, MediaError>`. When the file is
/// truncated or corrupt, every frame that can be decoded is yielded first and
/// a [`MediaError::Corrupt`] comes last, so a caller may keep what it got. A
/// file that simply ends early (a cut Matroska file) ends cleanly: compare
/// [`FrameReader::frames_read`] with [`VideoInfo::frame_count`], or
/// [`FrameReader::decoded_duration_secs`] with [`VideoInfo::container_duration_secs`].
///
/// For previews, [`FrameReader::open_at`] starts at a given time instead of the
/// beginning: it seeks to the keyframe before it and decodes forward, without
/// converting the frames it passes over.
///
/// `Send`: it can be opened on one thread and consumed on another; the
/// scaler is created on the first frame.
pub struct FrameReader {
    path: PathBuf,
    input: Input,
    stream_index: usize,
    decoder: ff::decoder::Video,
    width: u32,
    height: u32,
    decoded: ff::frame::Video,
    rgb: Option<ff::frame::Video>,
    scaler: Option<(Scaler, ScalerKey)>,
    /// Whether frames of more than 8 bits a sample come with their 16-bit samples
    /// ([`RgbImage::deep`]); see [`FrameReader::keep_depth`].
    keep_depth: bool,
    packet: ff::Packet,
    /// The index the next yielded frame gets (see [`DecodedFrame::index`]).
    next_index: u64,
    /// Frames yielded since opening or the last seek.
    delivered: u64,
    state: State,
    first_error: Option<String>,
    /// The video stream's time base, frame rate and its own first pts (0 when unknown).
    time_base: ff::Rational,
    frame_rate: Rational,
    video_start: i64,
    /// The timeline's origin ([`VideoInfo::start_secs`]) in the video's time base.
    origin: i64,
    /// The latest pts decoded since opening or the last seek.
    max_pts: Option<i64>,
    seek: Option<Seek>,
}

/// A seek in progress: frames are decoded but not converted until one reaches `target`.
struct Seek {
    /// The wanted pts, in the video's time base.
    target: i64,
    /// Where the demuxer was last asked to go (at or before `target`).
    from: i64,
    /// Demuxers that seek by byte position (MPEG-TS) land on any packet; the
    /// decoder gets nothing until a keyframe, so it starts from a clean picture.
    need_key: bool,
    /// Whether the first frame after the demuxer seek has been checked for overshoot.
    checked_first: bool,
    /// How far before `target` the next retry goes, in seconds, doubling each time.
    backoff_secs: f64,
    /// The next yielded frame takes its index from its pts.
    index_from_pts: bool,
}

/// What a scaler was built for; a change in any part needs a new one.
/// What the scaler was made for: the decoded format, size and colour, and whether it converts to
/// 16-bit RGB.
type ScalerKey = (
    ffi::AVPixelFormat,
    i32,
    i32,
    ffi::AVColorSpace,
    ffi::AVColorRange,
    bool,
);

impl FrameReader {
    /// Opens the file again and prepares the decoder (frame threads, auto count).
    pub fn open(info: &VideoInfo) -> Result<Self, MediaError> {
        Self::from_input(info, open_input(&info.path)?)
    }

    /// [`Self::open`] for a piece this tool wrote ([`crate::write_pieces`]), probed already: its
    /// Matroska header carries what the decoder needs, so FFmpeg's stream analysis, which decodes
    /// frames on every open (~7 ms for a 720×720 piece, as long as the probe), is skipped.
    pub fn open_piece(info: &VideoInfo) -> Result<Self, MediaError> {
        Self::from_input(info, open_packets_only(&info.path)?)
    }

    fn from_input(info: &VideoInfo, mut input: Input) -> Result<Self, MediaError> {
        let path = info.path.clone();
        let stream_index = info.video_stream_index;
        let decoder_err = |reason: String| MediaError::Decoder {
            path: path.clone(),
            reason,
        };

        let stream = input
            .stream(stream_index)
            .filter(|s| s.parameters().medium() == ff::media::Type::Video)
            .ok_or_else(|| MediaError::NoVideoStream { path: path.clone() })?;
        let time_base = match stream.time_base() {
            tb if tb.numerator() > 0 && tb.denominator() > 0 => tb,
            _ => info.frame_rate.invert().to_ff(),
        };
        let mut ctx = ff::codec::context::Context::from_parameters(stream.parameters())
            .map_err(|e| decoder_err(crate::log::reason(e)))?;
        // SAFETY: the context is not open yet; these fields are read by avcodec_open2.
        unsafe {
            let raw = ctx.as_mut_ptr();
            // Frame threads where the codec has them, slice threads otherwise; 0 = one per core.
            (*raw).thread_type = ffi::FF_THREAD_FRAME | ffi::FF_THREAD_SLICE;
            (*raw).thread_count = 0;
            // Lets the decoder compute best-effort timestamps in the stream's units.
            (*raw).pkt_timebase = time_base.into();
        }
        let codec_name = stream.parameters().id().name();
        let decoder = ctx.decoder().video().map_err(|e| match e {
            ff::Error::DecoderNotFound => {
                decoder_err(format!("no {codec_name} decoder in this FFmpeg"))
            }
            e => decoder_err(format!("{codec_name}: {}", crate::log::reason(e))),
        })?;

        let video_start = stream_start(&stream).map_or(0, |(ts, _)| ts);
        let origin = presentation_start(&input, stream_index)
            .map_or(0, |(ts, tb)| rescale(ts, tb, time_base));
        discard_streams(&mut input, |i| i == stream_index);

        Ok(FrameReader {
            path,
            input,
            stream_index,
            decoder,
            width: info.width,
            height: info.height,
            decoded: ff::frame::Video::empty(),
            rgb: None,
            scaler: None,
            keep_depth: false,
            packet: ff::Packet::empty(),
            next_index: 0,
            delivered: 0,
            state: State::Reading,
            first_error: None,
            time_base,
            frame_rate: if info.frame_rate.is_positive() {
                info.frame_rate
            } else {
                Rational::new(25, 1)
            },
            video_start,
            origin,
            max_pts: None,
            seek: None,
        })
    }

    /// From now on, frames of a source with more than 8 bits a sample come with their samples at
    /// 16 bits as well ([`RgbImage::deep`]), converted from YUV in one step. Costs a 16-bit
    /// conversion and twice the memory a frame; for outputs that keep the depth.
    pub fn keep_depth(mut self, keep: bool) -> Self {
        self.keep_depth = keep;
        self
    }

    /// Opens the file and positions it at `seconds` from the start of the video's
    /// timeline ([`VideoInfo::start_secs`], as ffmpeg's `-ss` counts): the first
    /// frame yielded is the first whose pts is at or after that time. See [`FrameReader::seek_to`].
    pub fn open_at(info: &VideoInfo, seconds: f64) -> Result<Self, MediaError> {
        let mut reader = FrameReader::open(info)?;
        reader.seek_to(seconds)?;
        Ok(reader)
    }

    /// Moves to `seconds` from the start of the timeline (negative means 0): the
    /// demuxer jumps to the keyframe at or before that time, and the frames decoded
    /// from there up to it are dropped without being converted to RGB. Past the
    /// end, the reader simply ends.
    ///
    /// Seeking is only a shortcut: where the container cannot seek, the file is
    /// read again from the start, so the frames are the same either way. Errors
    /// only when reopening the file fails. [`FrameReader::frames_read`] counts
    /// again from the new position; [`FrameReader::decoded_duration_secs`] still
    /// measures from the start of the timeline, up to the latest frame decoded since.
    pub fn seek_to(&mut self, seconds: f64) -> Result<(), MediaError> {
        let seconds = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
        let ticks = (seconds * f64::from(self.time_base.denominator())
            / f64::from(self.time_base.numerator()))
        .round() as i64;
        let target = self.origin.saturating_add(ticks);
        self.delivered = 0;
        self.max_pts = None;
        self.seek = Some(Seek {
            target,
            from: target,
            need_key: true,
            checked_first: false,
            backoff_secs: 1.0,
            index_from_pts: true,
        });
        self.seek_demuxer(target)
    }

    /// Frames delivered since opening (or since the last seek).
    pub fn frames_read(&self) -> u64 {
        self.delivered
    }

    /// How far into the timeline decoding has got: the end of the latest frame
    /// decoded (its pts plus one frame at [`VideoInfo::frame_rate`]), in seconds
    /// from [`VideoInfo::start_secs`]; 0.0 before any frame.
    ///
    /// After reading to the end, a complete file gives about
    /// [`VideoInfo::container_duration_secs`] (which also covers audio, so it may
    /// be longer by an audio packet or so); a file that ends early without an
    /// error (cut Matroska) gives much less. Frames without timestamps count as
    /// one frame each from the start.
    pub fn decoded_duration_secs(&self) -> f64 {
        let frame = 1.0 / self.frame_rate.as_f64();
        match self.max_pts {
            Some(pts) => {
                let tb =
                    f64::from(self.time_base.numerator()) / f64::from(self.time_base.denominator());
                (pts - self.origin) as f64 * tb + frame
            }
            None => self.next_index as f64 * frame,
        }
    }

    /// Asks the demuxer for the keyframe at or before `ts` and resets the decoder;
    /// reopens the file when the container cannot seek.
    fn seek_demuxer(&mut self, ts: i64) -> Result<(), MediaError> {
        crate::log::clear();
        // SAFETY: the context is open; min/max bound the result to at or before `ts`.
        let rc = unsafe {
            ffi::avformat_seek_file(
                self.input.as_mut_ptr(),
                self.stream_index as i32,
                i64::MIN,
                ts,
                ts,
                0,
            )
        };
        if rc < 0 {
            // Reading from the start reaches the same frames, only slower.
            self.reopen_input()?;
        }
        self.restart_decoder();
        Ok(())
    }

    /// Opens the file again, positioned at its first packet, with no keyframe wait
    /// for a seek in progress (the first packet starts a clean picture).
    fn reopen_input(&mut self) -> Result<(), MediaError> {
        let mut input = open_input(&self.path)?;
        discard_streams(&mut input, |i| i == self.stream_index);
        self.input = input;
        if let Some(seek) = self.seek.as_mut() {
            seek.from = i64::MIN;
            seek.need_key = false;
        }
        Ok(())
    }

    /// Drops what the decoder holds and reads packets again, forgetting earlier errors.
    fn restart_decoder(&mut self) {
        self.decoder.flush();
        self.state = State::Reading;
        self.first_error = None;
    }

    /// Called on the first frame after a demuxer seek: when it is already past the
    /// target (a byte-position seek landed after the keyframe that was needed),
    /// seeks further back and returns true; false when it is usable.
    fn overshot(&mut self, pts: Option<i64>) -> Result<bool, MediaError> {
        let Some(seek) = self.seek.as_mut() else {
            return Ok(false);
        };
        seek.checked_first = true;
        match pts {
            Some(pts) if pts > seek.target => self.back_off(),
            _ => Ok(false),
        }
    }

    /// Seeks again further before the target (1 s, then 2, 4, ...), waiting for a
    /// keyframe; false when the last try already started at the beginning.
    fn back_off(&mut self) -> Result<bool, MediaError> {
        let tb = self.time_base;
        let floor = self.origin.min(self.video_start);
        let Some(seek) = self.seek.as_mut() else {
            return Ok(false);
        };
        if seek.from <= floor {
            return Ok(false);
        }
        let back =
            (seek.backoff_secs * f64::from(tb.denominator()) / f64::from(tb.numerator())) as i64;
        seek.backoff_secs *= 2.0;
        // Past the start, asking for the start itself lets the demuxer settle on the first keyframe.
        seek.from = seek.target.saturating_sub(back).max(floor);
        seek.checked_first = false;
        seek.need_key = true;
        let from = seek.from;
        self.seek_demuxer(from)?;
        Ok(true)
    }

    fn note_error(&mut self, what: &str, err: ff::Error) {
        if self.first_error.is_none() {
            self.first_error = Some(format!("{what} ({})", crate::log::reason(err)));
        }
    }

    /// Sends the next packet of our stream to the decoder, or end-of-stream.
    fn feed(&mut self) {
        let mut invalid_in_a_row = 0u32;
        loop {
            // av_read_frame does not release what the packet held: reading into the same
            // packet again would keep every packet of the file allocated. Dropping unrefs it.
            self.packet = ff::Packet::empty();
            match self.packet.read(&mut self.input) {
                Ok(()) => {
                    if self.packet.stream() != self.stream_index {
                        continue;
                    }
                    if let Some(seek) = self.seek.as_mut().filter(|s| s.need_key) {
                        if !self.packet.is_key() {
                            continue;
                        }
                        seek.need_key = false;
                    }
                    match self.decoder.send_packet(&self.packet) {
                        Ok(()) => return,
                        // A damaged packet: the decoder resynchronises on the next one.
                        Err(e @ ff::Error::InvalidData) => {
                            self.note_error("undecodable packet", e);
                            continue;
                        }
                        Err(e) => {
                            self.note_error("decoder failed", e);
                            break;
                        }
                    }
                }
                Err(ff::Error::Eof) => break,
                // The demuxer resyncs past invalid data, so reading on makes progress.
                Err(e @ ff::Error::InvalidData) => {
                    self.note_error("damaged container", e);
                    invalid_in_a_row += 1;
                    if invalid_in_a_row >= MAX_INVALID_READS_IN_A_ROW {
                        break;
                    }
                }
                // I/O errors latch in FFmpeg: every further read would fail the same way.
                Err(e) => {
                    self.note_error("read error", e);
                    break;
                }
            }
        }
        // Ignoring the result: a decoder that refuses EOF has nothing left to give anyway.
        let _ = self.decoder.send_eof();
        self.state = State::Draining;
    }

    fn convert(&mut self) -> Result<DecodedFrame, MediaError> {
        let (width, height) = (self.width as i32, self.height as i32);
        // SAFETY: `decoded` holds a frame just returned by the decoder.
        let frame: &ffi::AVFrame = unsafe { &*self.decoded.as_ptr() };
        // SAFETY: a decoded video frame's format is a valid AVPixelFormat value.
        let pix: ffi::AVPixelFormat =
            unsafe { std::mem::transmute::<i32, ffi::AVPixelFormat>(frame.format) };
        let deep = self.keep_depth && pixel_bits(frame.format).is_some_and(|bits| bits > 8);
        let key: ScalerKey = (
            pix,
            frame.width,
            frame.height,
            frame.colorspace,
            frame.color_range,
            deep,
        );
        if self.scaler.as_ref().is_none_or(|(_, k)| *k != key) {
            // The RGB frame follows the scaler's output format.
            self.rgb = None;
            let size = (frame.width as u32, frame.height as u32);
            let conv = decode_conversion(frame.colorspace, frame.color_range, pix, size);
            let scaler = Scaler::new(
                (pix, frame.width, frame.height),
                (packed_rgb(deep), width, height),
                conv,
            )
            .ok_or_else(|| {
                self.corrupt(format!(
                    "cannot convert {pix:?} {}x{} to RGB",
                    frame.width, frame.height
                ))
            })?;
            self.scaler = Some((scaler, key));
        }
        if self.rgb.is_none() {
            let rgb = ff::frame::Video::new(packed_rgb(deep).into(), self.width, self.height);
            // SAFETY: reading the data pointer of a frame we own.
            if unsafe { (*rgb.as_ptr()).data[0].is_null() } {
                return Err(self.corrupt("out of memory for an RGB frame".into()));
            }
            self.rgb = Some(rgb);
        }
        let rgb = self.rgb.as_mut().expect("allocated above");
        let (scaler, _) = self.scaler.as_mut().expect("created above");
        // SAFETY: both frames match the scaler's shapes (key check above, allocation size).
        unsafe { scaler.run(&*self.decoded.as_ptr(), &mut *rgb.as_mut_ptr()) };
        let image = image_from_plane(rgb.data(0), rgb.stride(0), (self.width, self.height), deep);

        let index = self.next_index;
        self.next_index += 1;
        self.delivered += 1;
        Ok(DecodedFrame {
            index,
            pts: self.decoded.timestamp(),
            image,
        })
    }

    /// The index of the frame at `pts` in a constant-rate video (see [`DecodedFrame::index`]).
    fn index_at(&self, pts: i64) -> u64 {
        let secs = (pts - self.video_start) as f64 * f64::from(self.time_base.numerator())
            / f64::from(self.time_base.denominator());
        (secs * self.frame_rate.as_f64()).round().max(0.0) as u64
    }

    /// Starts over from the first packet, keeping the seek's target, with no keyframe wait.
    fn reopen_from_start(&mut self) -> Result<(), MediaError> {
        self.reopen_input()?;
        self.restart_decoder();
        if let Some(seek) = self.seek.as_mut() {
            seek.checked_first = true;
        }
        Ok(())
    }

    /// Handles the frame the decoder just returned: `None` when it is skipped (a seek
    /// overshot and went back, or the frame lies before the seek's target), otherwise
    /// the converted frame or the error that ends the reader.
    fn take_decoded(&mut self) -> Option<Result<DecodedFrame, MediaError>> {
        let pts = self.decoded.timestamp();
        if self.first_frame_unchecked() {
            match self.overshot(pts) {
                Ok(true) => return None,
                Ok(false) => {}
                Err(e) => return Some(self.fail(e)),
            }
        }
        if let Some(p) = pts {
            self.max_pts = Some(self.max_pts.map_or(p, |m| m.max(p)));
        }
        if let Some(seek) = &self.seek {
            if pts.is_some_and(|p| p < seek.target) {
                // Before the target: decoded for its references, never converted.
                return None;
            }
            if seek.index_from_pts {
                let at = pts.unwrap_or(seek.target);
                self.next_index = self.index_at(at);
            }
            self.seek = None;
        }
        let out = self.convert();
        if out.is_err() {
            self.state = State::Done;
        }
        Some(out)
    }

    /// At the end of the stream with nothing at all decoded after a seek: a
    /// byte-position seek near the end landed after the last keyframe, so go back
    /// further. Once at the beginning, no packet was flagged as a keyframe (some
    /// streams flag none): reading from the start without waiting for one still
    /// finds the frames. True when decoding starts again.
    fn retry_seek_at_end(&mut self) -> Result<bool, MediaError> {
        if !self.first_frame_unchecked() {
            return Ok(false);
        }
        if self.back_off()? {
            return Ok(true);
        }
        if self.seek.as_ref().is_some_and(|s| s.from != i64::MIN) {
            self.reopen_from_start()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// A seek is in progress and no frame since the demuxer seek has been checked for overshoot.
    fn first_frame_unchecked(&self) -> bool {
        self.seek.as_ref().is_some_and(|s| !s.checked_first)
    }

    /// Ends the reader with `err`, its last item.
    fn fail(&mut self, err: MediaError) -> Result<DecodedFrame, MediaError> {
        self.state = State::Done;
        Err(err)
    }

    fn corrupt(&self, reason: String) -> MediaError {
        MediaError::Corrupt {
            path: self.path.clone(),
            frame: self.next_index,
            reason,
        }
    }
}

impl Iterator for FrameReader {
    type Item = Result<DecodedFrame, MediaError>;

    fn next(&mut self) -> Option<Self::Item> {
        crate::log::clear();
        loop {
            if self.state == State::Done {
                return None;
            }
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => {
                    if let Some(out) = self.take_decoded() {
                        return Some(out);
                    }
                }
                Err(ff::Error::Other { errno })
                    if errno == EAGAIN && self.state == State::Reading =>
                {
                    self.feed()
                }
                // A draining decoder that asks for input has nothing more: treat it as the end.
                Err(ff::Error::Eof) | Err(ff::Error::Other { errno: EAGAIN }) => {
                    match self.retry_seek_at_end() {
                        Ok(true) => continue,
                        Ok(false) => {}
                        Err(e) => return Some(self.fail(e)),
                    }
                    self.state = State::Done;
                    return self
                        .first_error
                        .take()
                        .map(|reason| Err(self.corrupt(reason)));
                }
                // Frame threads report a damaged frame here; later frames still decode.
                Err(e @ ff::Error::InvalidData) => self.note_error("undecodable frame", e),
                Err(e) => {
                    self.note_error("decoder failed", e);
                    let reason = self.first_error.take().unwrap_or_default();
                    let err = self.corrupt(reason);
                    return Some(self.fail(err));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn reader_is_send() {
        assert_send::<FrameReader>();
    }
}
