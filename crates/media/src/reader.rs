//! Decoding: the video stream of a file as a sequence of packed RGB24 frames with their timestamps.

use std::path::PathBuf;

use ff::ffi;
use ff::format::context::Input;
use ff::util::error::EAGAIN;
use ffmpeg_next as ff;

use crate::color::decode_conversion;
use crate::probe::open_input;
use crate::scale::Scaler;
use crate::{MediaError, VideoInfo};

/// A picture as packed RGB24 rows, top to bottom, no padding: `data.len() == width * height * 3`.
#[derive(Clone, Debug)]
pub struct RgbFrame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl RgbFrame {
    /// A frame of one colour, handy for tests and placeholders.
    pub fn solid(width: u32, height: u32, rgb: [u8; 3]) -> Self {
        let data = rgb
            .iter()
            .copied()
            .cycle()
            .take(width as usize * height as usize * 3)
            .collect();
        RgbFrame {
            width,
            height,
            data,
        }
    }
}

/// One decoded frame: its position in decode output order, its timestamp, its picture.
#[derive(Debug)]
pub struct DecodedFrame {
    /// 0, 1, 2, ... in presentation order.
    pub index: u64,
    /// Presentation time in the input stream's time base ([`VideoInfo::time_base`]);
    /// FFmpeg's best-effort timestamp, `None` when the file gives none.
    pub pts: Option<i64>,
    pub image: RgbFrame,
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

/// Decodes the chosen video stream of a file to RGB24 at the coded size.
///
/// An iterator of `Result<DecodedFrame, MediaError>`. When the file is
/// truncated or corrupt, every frame that can be decoded is yielded first and
/// a [`MediaError::Corrupt`] comes last, so a caller may keep what it got. A
/// file that simply ends early (a cut Matroska file) ends cleanly: compare
/// [`FrameReader::frames_read`] with [`VideoInfo::frame_count`].
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
    packet: ff::Packet,
    next_index: u64,
    state: State,
    first_error: Option<String>,
}

/// What a scaler was built for; a change in any part needs a new one.
type ScalerKey = (
    ffi::AVPixelFormat,
    i32,
    i32,
    ffi::AVColorSpace,
    ffi::AVColorRange,
);

impl FrameReader {
    /// Opens the file again and prepares the decoder (frame threads, auto count).
    pub fn open(info: &VideoInfo) -> Result<Self, MediaError> {
        let path = info.path.clone();
        let mut input = open_input(&path)?;
        let stream_index = info.video_stream_index;
        let decoder_err = |reason: String| MediaError::Decoder {
            path: path.clone(),
            reason,
        };

        let stream = input
            .stream(stream_index)
            .filter(|s| s.parameters().medium() == ff::media::Type::Video)
            .ok_or_else(|| MediaError::NoVideoStream { path: path.clone() })?;
        let time_base = stream.time_base();
        let mut ctx = ff::codec::context::Context::from_parameters(stream.parameters())
            .map_err(|e| decoder_err(e.to_string()))?;
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
            e => decoder_err(format!("{codec_name}: {e}")),
        })?;

        // The demuxer then skips the other streams' payloads instead of reading them.
        // SAFETY: stream pointers belong to the open context; discard is a plain field.
        unsafe {
            let ctx = input.as_mut_ptr();
            for i in 0..(*ctx).nb_streams as usize {
                if i != stream_index {
                    (**(*ctx).streams.add(i)).discard = ffi::AVDiscard::AVDISCARD_ALL;
                }
            }
        }

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
            packet: ff::Packet::empty(),
            next_index: 0,
            state: State::Reading,
            first_error: None,
        })
    }

    /// Frames delivered so far.
    pub fn frames_read(&self) -> u64 {
        self.next_index
    }

    fn note_error(&mut self, what: &str, err: ff::Error) {
        if self.first_error.is_none() {
            self.first_error = Some(format!("{what} ({err})"));
        }
    }

    /// Sends the next packet of our stream to the decoder, or end-of-stream.
    fn feed(&mut self) {
        let mut invalid_in_a_row = 0u32;
        loop {
            match self.packet.read(&mut self.input) {
                Ok(()) => {
                    if self.packet.stream() != self.stream_index {
                        continue;
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
        let key: ScalerKey = (
            pix,
            frame.width,
            frame.height,
            frame.colorspace,
            frame.color_range,
        );
        if self.scaler.as_ref().is_none_or(|(_, k)| *k != key) {
            let conv = decode_conversion(frame.colorspace, frame.color_range, pix);
            let scaler = Scaler::new(
                (pix, frame.width, frame.height),
                (ffi::AVPixelFormat::AV_PIX_FMT_RGB24, width, height),
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
            let rgb = ff::frame::Video::new(ff::format::Pixel::RGB24, self.width, self.height);
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

        let row = self.width as usize * 3;
        let stride = rgb.stride(0);
        let plane = rgb.data(0);
        let mut data = Vec::with_capacity(row * self.height as usize);
        if stride == row {
            data.extend_from_slice(&plane[..row * self.height as usize]);
        } else {
            for y in 0..self.height as usize {
                data.extend_from_slice(&plane[y * stride..y * stride + row]);
            }
        }

        let index = self.next_index;
        self.next_index += 1;
        Ok(DecodedFrame {
            index,
            pts: self.decoded.timestamp(),
            image: RgbFrame {
                width: self.width,
                height: self.height,
                data,
            },
        })
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
        loop {
            if self.state == State::Done {
                return None;
            }
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => {
                    let out = self.convert();
                    if out.is_err() {
                        self.state = State::Done;
                    }
                    return Some(out);
                }
                Err(ff::Error::Other { errno })
                    if errno == EAGAIN && self.state == State::Reading =>
                {
                    self.feed()
                }
                // A draining decoder that asks for input has nothing more: treat it as the end.
                Err(ff::Error::Eof) | Err(ff::Error::Other { errno: EAGAIN }) => {
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
                    self.state = State::Done;
                    let reason = self.first_error.take().unwrap_or_default();
                    return Some(Err(self.corrupt(reason)));
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

    #[test]
    fn solid_frame_has_the_right_size() {
        let f = RgbFrame::solid(3, 2, [1, 2, 3]);
        assert_eq!(f.data.len(), 18);
        assert_eq!(&f.data[15..], &[1, 2, 3]);
    }
}
