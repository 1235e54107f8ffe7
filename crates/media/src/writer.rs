//! Encoding and muxing: RGB frames to H.264 (libx264) in MP4/MKV/MOV, with the input's audio copied alongside.
//!
//! Timestamps pass through, moved to start at 0: each frame keeps its input pts
//! minus the input's start ([`VideoInfo::start_secs`], the earliest first
//! timestamp of the video and audio, as ffmpeg subtracts), audio packets shift
//! by the same amount so they stay in sync, and the stream keeps the input's
//! frame rate and rotation. Audio is read from a second handle on
//! the input and interleaved as video packets come out of the encoder, so
//! memory stays flat however long the video is. Subtitle, data and attachment
//! streams are not copied.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use ff::ffi;
use ff::format::context::{Input, Output};
use ff::util::error::EAGAIN;
use ffmpeg_next as ff;

use crate::codecs::VideoCodec;
use crate::color::{output_color, OutputColor};
use crate::pixels::{fill_plane, packed_rgb, pixel_bits, PixelFormatChoice};
use crate::probe::{
    discard_streams, display_matrix, open_input, presentation_start, rescale, rotation_of,
};
use crate::scale::Scaler;
use crate::{DecodedFrame, MediaError, Rational, RgbImage, VideoInfo};

/// How to encode: the codec, x264's constant rate factor and preset (mapped onto the codec's own
/// scales: see [`crate::codecs`]), and the chroma.
#[derive(Clone, Debug)]
pub struct EncodeOptions {
    pub codec: VideoCodec,
    /// 0 (lossless) to 51; 18 is visually lossless, 23 is x264's default.
    pub crf: f32,
    /// An x264 preset name: ultrafast ... medium ... veryslow, placebo.
    pub preset: String,
    pub pixel_format: PixelFormatChoice,
    /// Whether a source of more than 8 bits widens `pixel_format` to its 10-bit form where the
    /// codec keeps the source's depth (see [`VideoCodec::keeps_source_depth`]); true unless the
    /// user named a pixel format.
    pub follow_source_depth: bool,
}

impl EncodeOptions {
    /// These options for `source`: its depth followed where they say so.
    pub fn for_source(&self, source: &VideoInfo) -> EncodeOptions {
        let widen = self.follow_source_depth
            && source.bits_per_sample > 8
            && self.codec.keeps_source_depth();
        EncodeOptions {
            pixel_format: match widen {
                true => self.pixel_format.widened(),
                false => self.pixel_format,
            },
            follow_source_depth: false,
            ..self.clone()
        }
    }

    /// Whether the output for `source`, as [`for_source`](Self::for_source) resolves it, holds
    /// more than 8 bits a sample: then frames are best read with their full depth
    /// ([`crate::FrameReader::keep_depth`]).
    pub fn deep_output_for(&self, source: &VideoInfo) -> bool {
        self.for_source(source).deep_output()
    }

    /// Whether these options (resolved: see [`for_source`](Self::for_source)) write more than 8
    /// bits a sample.
    pub fn deep_output(&self) -> bool {
        self.codec
            .pixel_format(self.pixel_format)
            .is_ok_and(|pix| pixel_bits(pix as i32).is_some_and(|bits| bits > 8))
    }
}

/// stylize's defaults: CRF 18 and the `fast` preset keep the picture (fast is the quickest preset
/// that does) while the encoder stays a small share of the CPU beside the network.
impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            codec: VideoCodec::H264,
            crf: 18.0,
            preset: "fast".into(),
            pixel_format: PixelFormatChoice::Yuv420p,
            follow_source_depth: true,
        }
    }
}

/// x264's presets, fastest first.
pub const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// The size the output is encoded at.
///
/// 4:2:0 chroma covers 2×2 pixels, so yuv420p cannot hold an odd width or
/// height: the last column and/or row is dropped (rounded down to even) rather
/// than scaling every pixel or inventing a padded edge. yuv444p keeps the
/// exact size. (ProRes's 4:2:2 halves the width only: see `size_for_chroma`.)
pub fn encoded_size(width: u32, height: u32, pix: PixelFormatChoice) -> (u32, u32) {
    size_for_chroma(width, height, pix.av_format())
}

/// What [`VideoWriter::finish`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteSummary {
    /// Video frames (encoded packets) written.
    pub frames: u64,
    /// Audio packets copied, all streams together.
    pub audio_packets: u64,
}

/// The muxer for an output file name, by extension.
fn muxer_for(container_of: &Path) -> Result<(&'static str, String), MediaError> {
    let ext = container_of
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    let muxer = match ext.as_str() {
        "mp4" => "mp4",
        "mov" => "mov",
        "mkv" => "matroska",
        _ => {
            return Err(MediaError::UnsupportedContainer {
                path: container_of.to_path_buf(),
            })
        }
    };
    Ok((muxer, ext))
}

/// Encodes frames to H.264 and writes them, with the input's audio, into one file.
///
/// `Send`: create it on one thread, write from another; its scaler is created
/// on the first frame.
pub struct VideoWriter {
    shell: OutputShell,
    encoder: ff::encoder::Video,
    packet: ff::Packet,
    /// Input size (what frames arrive at) and encode size (after the odd-size policy).
    src_size: (u32, u32),
    enc_size: (u32, u32),
    codec: VideoCodec,
    pix: ffi::AVPixelFormat,
    color: OutputColor,
    staging: Option<ff::frame::Video>,
    /// Whether `staging` is RGB48 (deep frames into a deeper output) rather than RGB24.
    deep_staging: bool,
    yuv: Option<ff::frame::Video>,
    scaler: Option<Scaler>,
    frames_in: u64,
}

impl VideoWriter {
    /// Opens `path` for writing and sets up the encoder and the audio copy.
    ///
    /// `path` is where bytes go (a temporary name the caller renames later);
    /// `container_of` is the final output path, whose extension picks the
    /// muxer (.mp4, .mkv, .mov) and which names the file in errors.
    pub fn create(
        path: &Path,
        container_of: &Path,
        input: &VideoInfo,
        opts: &EncodeOptions,
    ) -> Result<Self, MediaError> {
        let opts = &opts.for_source(input);
        let (enc_size, pix) = check_options(container_of, input, opts)?;
        let mut opened = None;
        let shell = OutputShell::open(path, container_of, input, |octx, timing, source, name| {
            let (codec, encoder) = open_encoder(octx, opts, (enc_size, pix), timing, source, name)?;
            let params = ff::codec::Parameters::from(&encoder);
            let ost = add_video_stream(octx, codec, params, timing, source, name)?;
            opened = Some((encoder, source.color));
            Ok(ost)
        })?;
        let (encoder, color) = opened.expect("the video stream was added");
        Ok(VideoWriter {
            shell,
            encoder,
            packet: ff::Packet::empty(),
            src_size: (input.width, input.height),
            enc_size,
            codec: opts.codec,
            pix,
            color,
            staging: None,
            deep_staging: false,
            yuv: None,
            scaler: None,
            frames_in: 0,
        })
    }

    /// Encodes one frame: RGB at the input size, cropped and converted here.
    pub fn write(&mut self, frame: &DecodedFrame) -> Result<(), MediaError> {
        crate::log::clear();
        let (sw, sh) = self.src_size;
        let img = &frame.image;
        if img.width != sw || img.height != sh || img.data.len() != RgbImage::byte_len(sw, sh) {
            return Err(MediaError::FrameMismatch {
                path: self.shell.name.clone(),
                frame: frame.index,
                got: format!("{}x{} ({} bytes)", img.width, img.height, img.data.len()),
                expected: format!("{sw}x{sh} RGB24"),
            });
        }
        self.prepare_buffers(img.is_deep())?;
        let pts = self.shell.clock.next_pts(frame.pts, frame.index);
        let (ew, eh) = (self.enc_size.0 as usize, self.enc_size.1 as usize);

        // Copy into an FFmpeg-allocated (aligned, padded) frame: swscale's SIMD
        // may read past the end of a row, which a bare Vec does not allow.
        let staging = self.staging.as_mut().expect("prepared");
        let stride = staging.stride(0);
        fill_plane(
            img,
            self.deep_staging,
            staging.data_mut(0),
            stride,
            (ew, eh),
        );

        let yuv = self.yuv.as_mut().expect("prepared");
        // SAFETY: the encoder may still reference the previous frame's buffers;
        // make_writable gives us fresh ones in that case.
        let rc = unsafe { ffi::av_frame_make_writable(yuv.as_mut_ptr()) };
        if rc < 0 {
            return Err(encode_error(&self.shell.name)(ff::Error::from(rc)));
        }
        let scaler = self.scaler.as_mut().expect("prepared");
        // SAFETY: staging and yuv were allocated at the scaler's shapes.
        unsafe { scaler.run(&*staging.as_ptr(), &mut *yuv.as_mut_ptr()) };

        yuv.set_pts(Some(pts));
        self.encoder
            .send_frame(yuv)
            .map_err(|e| MediaError::Encode {
                path: self.shell.name.clone(),
                reason: format!("frame {}: {}", frame.index, crate::log::reason(e)),
            })?;
        self.frames_in += 1;
        self.drain()
    }

    /// Flushes the encoder and the remaining audio, and writes the trailer.
    pub fn finish(mut self) -> Result<WriteSummary, MediaError> {
        crate::log::clear();
        self.encoder.send_eof().map_err(|e| MediaError::Encode {
            path: self.shell.name.clone(),
            reason: format!("flush: {}", crate::log::reason(e)),
        })?;
        self.drain()?;
        self.shell.finish()
    }

    /// Allocates the reusable frames and the scaler on first use (on the writing thread). Deep
    /// frames are staged at 16 bits when the output holds more than 8.
    fn prepare_buffers(&mut self, deep_frames: bool) -> Result<(), MediaError> {
        if self.scaler.is_some() {
            return Ok(());
        }
        self.deep_staging = deep_frames && pixel_bits(self.pix as i32).is_some_and(|b| b > 8);
        let (ew, eh) = self.enc_size;
        let oom = || MediaError::Encode {
            path: self.shell.name.clone(),
            reason: "out of memory for frame buffers".into(),
        };
        let rgb = packed_rgb(self.deep_staging);
        let staging = ff::frame::Video::new(rgb.into(), ew, eh);
        let yuv = ff::frame::Video::new(self.pix.into(), ew, eh);
        // SAFETY: reading data pointers of frames we own.
        if unsafe { (*staging.as_ptr()).data[0].is_null() || (*yuv.as_ptr()).data[0].is_null() } {
            return Err(oom());
        }
        let scaler = Scaler::new(
            (rgb, ew as i32, eh as i32),
            (self.pix, ew as i32, eh as i32),
            self.color.encode_conversion(),
        )
        .ok_or_else(oom)?;
        self.staging = Some(staging);
        self.yuv = Some(yuv);
        self.scaler = Some(scaler);
        Ok(())
    }

    /// x265 (3.5) measures its B-frame delay in time when the third frame arrives; given fewer
    /// frames (a two-frame clip, the tail job of a segments run) it stamps its packets with a
    /// decode time made from uninitialised memory, and the muxer refuses them ("pts < dts") or
    /// worse. Such a packet gets the decode time x265 would have given it: its pts less the delay
    /// FFmpeg reports (frames), in nominal frame durations. Longer streams are left as they are.
    fn mend_short_x265_decode_time(&mut self) {
        if self.codec != VideoCodec::Hevc || self.frames_in >= 3 {
            return;
        }
        // SAFETY: a plain field read of the open encoder's context.
        let delay = i64::from(unsafe { (*self.encoder.as_ptr()).has_b_frames });
        if let Some(pts) = self.packet.pts() {
            self.packet
                .set_dts(Some(pts - delay * self.shell.clock.frame_dur_enc));
        }
    }

    /// Writes every packet the encoder has ready, and the audio up to each one's time.
    fn drain(&mut self) -> Result<(), MediaError> {
        loop {
            match self.encoder.receive_packet(&mut self.packet) {
                Ok(()) => {}
                Err(ff::Error::Other { errno }) if errno == EAGAIN => return Ok(()),
                Err(ff::Error::Eof) => return Ok(()),
                Err(e) => return Err(encode_error(&self.shell.name)(e)),
            }
            self.mend_short_x265_decode_time();
            let enc_tb = self.shell.clock.enc_tb.to_ff();
            self.packet.rescale_ts(enc_tb, self.shell.clock.ost_tb);
            self.shell.write_video(&mut self.packet)?;
        }
    }
}

/// The output file around its video stream: the muxer, the audio copied beside the video, the
/// clock both keep to. The encoder ([`VideoWriter`]) and the segment joiner
/// ([`crate::SegmentJoiner`]) differ only in where the video packets come from.
pub(crate) struct OutputShell {
    /// The final output name, used in messages (the bytes go to a temporary name).
    pub name: PathBuf,
    pub octx: Output,
    pub video_ost: usize,
    pub clock: VideoClock,
    audio: Option<AudioCopier>,
    packets_out: u64,
}

impl OutputShell {
    /// Opens `path` (muxer from `container_of`'s extension) with the input's audio streams and
    /// the video stream `add_video` adds (given the timing and what the input's video stream
    /// hands on), and writes the header.
    pub fn open(
        path: &Path,
        container_of: &Path,
        input: &VideoInfo,
        add_video: impl FnOnce(
            &mut Output,
            StreamTiming,
            &SourceVideo,
            &Path,
        ) -> Result<usize, MediaError>,
    ) -> Result<Self, MediaError> {
        crate::init()?;
        crate::log::clear();
        let name = container_of.to_path_buf();
        let (muxer, ext) = muxer_for(container_of)?;
        let timing = StreamTiming::of(input);

        // A second handle on the input: colour tags, rotation and aspect of the
        // video stream, and the audio packets to copy.
        let ictx = open_input(&input.path)?;
        let source = SourceVideo::read(&ictx, input)?;
        refuse_lost_rotation(source.matrix.as_ref(), muxer, &ext, &name)?;
        let oformat = find_muxer(muxer, &name)?;
        // Refuse audio the container cannot carry before the output file exists.
        let audio_streams = audio_to_copy(&ictx, &input.path, oformat, &ext, &name)?;
        let mut octx = ff::format::output_as(&path, muxer).map_err(write_error(&name))?;

        let video_ost = add_video(&mut octx, timing, &source, &name)?;
        // Everything moves back by the input's start so the output starts at 0,
        // the same amount for every stream so audio stays in sync with the video.
        let origin = presentation_start(&ictx, input.video_stream_index);
        let mut routes = add_audio_streams(&mut octx, &ictx, &audio_streams, origin, &name)?;
        copy_container_metadata(&ictx, &mut octx);
        write_header(&mut octx, muxer, &name)?;

        // The muxer may have changed every time base while writing the header.
        let ost_tb = octx.stream(video_ost).expect("added above").time_base();
        for route in routes.iter_mut().flatten() {
            route.ost_tb = octx.stream(route.ost).expect("added above").time_base();
        }
        let clock = VideoClock::new(timing, origin, ost_tb);
        let audio = (!audio_streams.is_empty()).then(|| {
            let negative_ts_ok = accepts_negative_timestamps(oformat);
            AudioCopier::new(input.path.clone(), ictx, routes, negative_ts_ok)
        });
        Ok(OutputShell {
            name,
            octx,
            video_ost,
            clock,
            audio,
            packets_out: 0,
        })
    }

    /// Writes one video packet (timestamps already in the output stream's time base), then the
    /// audio up to its time.
    pub fn write_video(&mut self, packet: &mut ff::Packet) -> Result<(), MediaError> {
        packet.set_stream(self.video_ost);
        packet.set_position(-1);
        // libx264 leaves durations at 0, which would cut the last frame short.
        if packet.duration() <= 0 {
            packet.set_duration(self.clock.frame_dur_ost);
        }
        let watermark = packet.dts().or(packet.pts());
        packet
            .write_interleaved(&mut self.octx)
            .map_err(write_error(&self.name))?;
        self.packets_out += 1;
        if let (Some(audio), Some(ts)) = (self.audio.as_mut(), watermark) {
            let limit = Some((ts, self.clock.ost_tb));
            audio.copy_until(&mut self.octx, &self.name, limit)?;
        }
        Ok(())
    }

    /// Copies the rest of the audio and writes the trailer.
    pub fn finish(mut self) -> Result<WriteSummary, MediaError> {
        if let Some(audio) = self.audio.as_mut() {
            audio.copy_until(&mut self.octx, &self.name, None)?;
        }
        self.octx.write_trailer().map_err(write_error(&self.name))?;
        Ok(WriteSummary {
            frames: self.packets_out,
            audio_packets: self.audio.as_ref().map_or(0, |a| a.packets),
        })
    }
}

// The steps of `VideoWriter::create`, in the order it takes them.

/// Checks the CRF, the preset, the container and the size; returns the size and pixel format the
/// video is encoded in.
fn check_options(
    name: &Path,
    input: &VideoInfo,
    opts: &EncodeOptions,
) -> Result<((u32, u32), ffi::AVPixelFormat), MediaError> {
    let invalid = |reason: String| MediaError::InvalidOptions {
        path: name.to_path_buf(),
        reason,
    };
    if !(0.0..=51.0).contains(&opts.crf) {
        return Err(invalid(format!("CRF {} is outside 0–51", opts.crf)));
    }
    if !X264_PRESETS.contains(&opts.preset.as_str()) {
        return Err(invalid(format!(
            "unknown x264 preset {:?} (use one of {})",
            opts.preset,
            X264_PRESETS.join(", ")
        )));
    }
    let (_, ext) = muxer_for(name)?;
    if let Some(why) = opts.codec.refuse_container(&ext) {
        return Err(invalid(why));
    }
    let pix = opts
        .codec
        .pixel_format(opts.pixel_format)
        .map_err(invalid)?;
    let enc_size = size_for_chroma(input.width, input.height, pix);
    if enc_size.0 < 2 || enc_size.1 < 2 {
        return Err(invalid(format!(
            "{}x{} is too small to encode",
            input.width, input.height
        )));
    }
    Ok((enc_size, pix))
}

/// [`encoded_size`] for any pixel format: each dimension its chroma halves rounded down to even.
fn size_for_chroma(width: u32, height: u32, pix: ffi::AVPixelFormat) -> (u32, u32) {
    // SAFETY: a static descriptor table lookup; null only for unknown formats.
    let (log2_w, log2_h) = unsafe {
        let desc = ffi::av_pix_fmt_desc_get(pix);
        match desc.is_null() {
            true => (1, 1),
            false => ((*desc).log2_chroma_w, (*desc).log2_chroma_h),
        }
    };
    let even = |n: u32, halved: u8| if halved > 0 { n & !1 } else { n };
    (even(width, log2_w), even(height, log2_h))
}

/// The output video's frame rate and the time base its frames are stamped in.
#[derive(Clone, Copy)]
pub(crate) struct StreamTiming {
    frame_rate: Rational,
    /// The input's own time base, also the encoder's: timestamps pass through unchanged.
    time_base: Rational,
}

impl StreamTiming {
    /// The input's rate and time base, with FFmpeg's 25 fps where it states no rate.
    fn of(input: &VideoInfo) -> Self {
        let frame_rate = if input.frame_rate.is_positive() {
            input.frame_rate
        } else {
            Rational::new(25, 1)
        };
        let time_base = if input.time_base.is_positive() {
            input.time_base
        } else {
            frame_rate.invert()
        };
        StreamTiming {
            frame_rate,
            time_base,
        }
    }
}

/// What the output's video stream takes over from the input's.
pub(crate) struct SourceVideo {
    /// The display matrix (rotation), copied as side data.
    matrix: Option<[u8; 36]>,
    color: OutputColor,
    /// Sample (pixel) aspect ratio; 0/0 or 0/1 when unknown.
    sar: ffi::AVRational,
    language: Option<String>,
}

impl SourceVideo {
    fn read(ictx: &Input, input: &VideoInfo) -> Result<Self, MediaError> {
        let stream = ictx
            .stream(input.video_stream_index)
            .filter(|s| s.parameters().medium() == ff::media::Type::Video)
            .ok_or_else(|| MediaError::NoVideoStream {
                path: input.path.clone(),
            })?;
        // SAFETY: codecpar of an open stream; plain field reads.
        let (color, sar) = unsafe {
            let par = &*stream.parameters().as_ptr();
            (
                output_color(
                    par.color_space,
                    par.color_primaries,
                    par.color_trc,
                    (input.width, input.height),
                ),
                par.sample_aspect_ratio,
            )
        };
        Ok(SourceVideo {
            matrix: display_matrix(&stream),
            color,
            sar,
            language: stream.metadata().get("language").map(str::to_owned),
        })
    }

    fn has_aspect(&self) -> bool {
        self.sar.num > 0 && self.sar.den > 0
    }
}

/// Refuses a rotated input for Matroska: FFmpeg 5.1's muxer has no field for the
/// rotation, so the output would play sideways.
fn refuse_lost_rotation(
    matrix: Option<&[u8; 36]>,
    muxer: &str,
    ext: &str,
    name: &Path,
) -> Result<(), MediaError> {
    if let (Some(m), "matroska") = (matrix, muxer) {
        let degrees = rotation_of(m);
        if degrees != 0 {
            return Err(MediaError::RotationNotSupported {
                path: name.to_path_buf(),
                container: ext.to_string(),
                degrees,
            });
        }
    }
    Ok(())
}

/// FFmpeg's static description of the muxer, to ask what it can store before writing anything.
fn find_muxer(muxer: &str, name: &Path) -> Result<*const ffi::AVOutputFormat, MediaError> {
    let muxer_c = std::ffi::CString::new(muxer).expect("static name");
    // SAFETY: looks up a static muxer description by name; no allocation.
    let oformat =
        unsafe { ffi::av_guess_format(muxer_c.as_ptr(), std::ptr::null(), std::ptr::null()) };
    if oformat.is_null() {
        return Err(MediaError::UnsupportedContainer {
            path: name.to_path_buf(),
        });
    }
    Ok(oformat)
}

/// Whether the muxer stores timestamps below 0 as they are. MP4/MOV hide audio that
/// starts before the video behind an edit list; other muxers shift the whole file to
/// make it fit, moving the video too.
fn accepts_negative_timestamps(oformat: *const ffi::AVOutputFormat) -> bool {
    // SAFETY: a static muxer description from `find_muxer`; flags is a plain field.
    unsafe { (*oformat).flags & ffi::AVFMT_TS_NEGATIVE != 0 }
}

/// The input's audio streams, each checked to be copyable into the container.
fn audio_to_copy(
    ictx: &Input,
    input_path: &Path,
    oformat: *const ffi::AVOutputFormat,
    ext: &str,
    name: &Path,
) -> Result<Vec<usize>, MediaError> {
    let audio_streams: Vec<usize> = ictx
        .streams()
        .filter(|s| s.parameters().medium() == ff::media::Type::Audio)
        .map(|s| s.index())
        .collect();
    for &i in &audio_streams {
        let params = ictx.stream(i).expect("listed above").parameters();
        check_audio_parameters(&params, i, input_path)?;
        // SAFETY: a static muxer description and a codec id; 1 = can store, 0 = cannot, <0 = unknown.
        let fits = unsafe {
            ffi::avformat_query_codec(oformat, params.id().into(), ffi::FF_COMPLIANCE_NORMAL)
        };
        if fits == 0 {
            return Err(MediaError::AudioNotSupported {
                path: name.to_path_buf(),
                container: ext.to_string(),
                stream: i,
                codec: params.id().name().to_string(),
            });
        }
    }
    Ok(audio_streams)
}

/// Refuses an audio stream whose sample rate or channel count FFmpeg could not work out.
fn check_audio_parameters(
    params: &ff::codec::Parameters,
    stream: usize,
    input_path: &Path,
) -> Result<(), MediaError> {
    // SAFETY: codecpar of an open stream; plain field reads.
    let (channels, sample_rate) = unsafe {
        let par = params.as_ptr();
        ((*par).ch_layout.nb_channels, (*par).sample_rate)
    };
    if channels > 0 && sample_rate > 0 {
        return Ok(());
    }
    // The muxer would refuse it with a bare "Invalid argument" naming the
    // output, or write a track nothing can play; the fault is the input's.
    let missing = match (sample_rate <= 0, channels <= 0) {
        (true, true) => "sample rate and channel count",
        (true, false) => "sample rate",
        _ => "channel count",
    };
    Err(MediaError::AudioUnusable {
        path: input_path.to_path_buf(),
        stream,
        codec: params.id().name().to_string(),
        reason: format!(
            "its {missing} could not be determined (its packets may be missing or start too late)"
        ),
    })
}

/// Opens libx264 at the encode size, the input's rate, aspect and colour tags, with
/// the chosen preset and CRF; returns the codec too, which the output stream is added with.
fn open_encoder(
    octx: &Output,
    opts: &EncodeOptions,
    (enc_size, pix): ((u32, u32), ffi::AVPixelFormat),
    timing: StreamTiming,
    source: &SourceVideo,
    name: &Path,
) -> Result<(ff::Codec, ff::encoder::Video), MediaError> {
    // By name: a codec id may resolve to another encoder (H.264 to a hardware one, say).
    let encoder_name = opts.codec.encoder();
    let codec =
        ff::encoder::find_by_name(encoder_name).ok_or_else(|| MediaError::EncoderUnavailable {
            path: name.to_path_buf(),
            encoder: encoder_name.to_string(),
        })?;
    let global_header = octx
        .format()
        .flags()
        .contains(ff::format::Flags::GLOBAL_HEADER);
    let mut enc = ff::codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(encode_error(name))?;
    enc.set_width(enc_size.0);
    enc.set_height(enc_size.1);
    enc.set_format(pix.into());
    if let Some(gop) = opts.codec.gop() {
        enc.set_gop(gop);
    }
    enc.set_time_base(timing.time_base.to_ff());
    enc.set_frame_rate(Some(timing.frame_rate.to_ff()));
    if source.has_aspect() {
        enc.set_aspect_ratio(Rational::from_av(source.sar).to_ff());
    }
    if global_header {
        enc.set_flags(ff::codec::Flags::GLOBAL_HEADER);
    }
    // SAFETY: the encoder is not open yet; these fields are read by avcodec_open2.
    unsafe {
        let raw = enc.as_mut_ptr();
        (*raw).colorspace = source.color.space;
        (*raw).color_primaries = source.color.primaries;
        (*raw).color_trc = source.color.transfer;
        (*raw).color_range = ffi::AVColorRange::AVCOL_RANGE_MPEG;
        (*raw).thread_count = 0;
    }
    let mut options = ff::Dictionary::new();
    for (key, value) in opts.codec.options(opts.crf, &opts.preset) {
        options.set(key, &value);
    }
    let encoder = enc.open_with(options).map_err(|e| MediaError::Encode {
        path: name.to_path_buf(),
        reason: format!("opening {encoder_name}: {}", crate::log::reason(e)),
    })?;
    Ok((codec, encoder))
}

/// The video stream's tag in the container `name` is written as, from the codec and the tag the
/// encoder or segment came with (`given`). Mostly 0, so the container picks its own; but HEVC in
/// MP4 and MOV is `hvc1` (parameter sets in the header), the tag Apple's players and editors
/// require where FFmpeg's default `hev1` fails to open there; and ProRes keeps its own, which
/// names the profile (`apch` HQ, `ap4h` 4444): left to MOV, every profile would read as HQ.
fn codec_tag(codec: ff::codec::Id, given: u32, name: &Path) -> u32 {
    let in_iso = matches!(muxer_for(name), Ok(("mp4" | "mov", _)));
    match codec {
        ff::codec::Id::HEVC if in_iso => u32::from_le_bytes(*b"hvc1"),
        ff::codec::Id::PRORES => given,
        _ => 0,
    }
}

/// Adds the video stream: the encoder's parameters, the input's rate, language,
/// pixel aspect and display matrix. Returns its index.
pub(crate) fn add_video_stream(
    octx: &mut Output,
    codec: impl ff::codec::traits::Encoder,
    params: ff::codec::Parameters,
    timing: StreamTiming,
    source: &SourceVideo,
    name: &Path,
) -> Result<usize, MediaError> {
    // SAFETY: a plain field read of the parameters we own.
    let given = unsafe { (*params.as_ptr()).codec_tag };
    let tag = codec_tag(params.id(), given, name);
    let mut ost = octx.add_stream(codec).map_err(write_error(name))?;
    ost.set_parameters(params);
    // SAFETY: plain field write on the stream just added.
    unsafe { (*(*ost.as_mut_ptr()).codecpar).codec_tag = tag };
    ost.set_time_base(timing.time_base.to_ff());
    ost.set_avg_frame_rate(timing.frame_rate.to_ff());
    ost.set_rate(timing.frame_rate.to_ff());
    let mut meta = ff::Dictionary::new();
    if let Some(lang) = &source.language {
        meta.set("language", lang);
    }
    ost.set_metadata(meta);
    // SAFETY: the stream belongs to octx; side data is copied into a
    // buffer FFmpeg allocates and frees with the stream.
    unsafe {
        let st = ost.as_mut_ptr();
        if source.has_aspect() {
            (*st).sample_aspect_ratio = source.sar;
        }
        if let Some(m) = source.matrix {
            let dst = ffi::av_stream_new_side_data(
                st,
                ffi::AVPacketSideDataType::AV_PKT_DATA_DISPLAYMATRIX,
                m.len(),
            );
            if dst.is_null() {
                return Err(write_error(name)(ff::Error::Other {
                    errno: ff::util::error::ENOMEM,
                }));
            }
            std::ptr::copy_nonoverlapping(m.as_ptr(), dst, m.len());
        }
    }
    Ok(ost.index())
}

/// Adds one stream per copied audio stream: parameters as they are, codec tag
/// cleared so the new container picks its own. Returns the routes, indexed by input
/// stream; their output time bases are only known once the header is written.
fn add_audio_streams(
    octx: &mut Output,
    ictx: &Input,
    audio_streams: &[usize],
    origin: Option<(i64, ff::Rational)>,
    name: &Path,
) -> Result<Vec<Option<AudioRoute>>, MediaError> {
    let mut routes = vec![None; ictx.nb_streams() as usize];
    for &i in audio_streams {
        let ist = ictx.stream(i).expect("listed above");
        let mut ost = octx
            .add_stream(ff::encoder::find(ff::codec::Id::None))
            .map_err(write_error(name))?;
        ost.set_parameters(ist.parameters());
        ost.set_time_base(ist.time_base());
        let mut meta = ff::Dictionary::new();
        for key in ["language", "title", "handler_name"] {
            if let Some(v) = ist.metadata().get(key) {
                meta.set(key, v);
            }
        }
        ost.set_metadata(meta);
        // SAFETY: both streams are live; plain field writes on the new one.
        unsafe {
            let st = ost.as_mut_ptr();
            (*(*st).codecpar).codec_tag = 0;
            (*st).disposition = (*ist.as_ptr()).disposition;
        }
        routes[i] = Some(AudioRoute {
            ost: ost.index(),
            ist_tb: ist.time_base(),
            ost_tb: ff::Rational(0, 1),
            shift: origin_in(origin, ist.time_base()),
        });
    }
    Ok(routes)
}

/// Copies the input's file-level tags, except those that describe the old file.
fn copy_container_metadata(ictx: &Input, octx: &mut Output) {
    let mut meta = ff::Dictionary::new();
    for (k, v) in ictx.metadata().iter() {
        // Brands and the encoder name describe the old file, not this one.
        if !matches!(
            k,
            "major_brand" | "minor_version" | "compatible_brands" | "encoder"
        ) {
            meta.set(k, v);
        }
    }
    octx.set_metadata(meta);
}

fn write_header(octx: &mut Output, muxer: &str, name: &Path) -> Result<(), MediaError> {
    let mut header_opts = ff::Dictionary::new();
    if muxer != "matroska" {
        // Index up front, so players and browsers can start before the end arrives.
        header_opts.set("movflags", "+faststart");
    }
    octx.write_header_with(header_opts)
        .map_err(write_error(name))?;
    Ok(())
}

/// The input's start (from [`presentation_start`]) in `tb`; 0 when unknown.
fn origin_in(origin: Option<(i64, ff::Rational)>, tb: ff::Rational) -> i64 {
    origin.map_or(0, |(ts, otb)| rescale(ts, otb, tb))
}

/// An FFmpeg failure while creating or writing the output `name`, with FFmpeg's reason.
pub(crate) fn write_error(name: &Path) -> impl Fn(ff::Error) -> MediaError + '_ {
    move |e| MediaError::Write {
        path: name.to_path_buf(),
        reason: crate::log::reason(e),
    }
}

/// An FFmpeg failure of the H.264 encoder writing `name`, with FFmpeg's reason.
fn encode_error(name: &Path) -> impl Fn(ff::Error) -> MediaError + '_ {
    move |e| MediaError::Encode {
        path: name.to_path_buf(),
        reason: crate::log::reason(e),
    }
}

/// The video's timestamps on their way through: input pts, encoder pts, output stream.
pub(crate) struct VideoClock {
    in_tb: Rational,
    /// The input's start ([`VideoInfo::start_secs`]) in `in_tb`, subtracted from every frame's pts.
    in_origin: i64,
    pub enc_tb: Rational,
    pub ost_tb: ff::Rational,
    /// One frame's duration in the encoder's and in the output stream's time base.
    pub frame_dur_enc: i64,
    pub frame_dur_ost: i64,
    last_pts: Option<i64>,
}

impl VideoClock {
    fn new(
        timing: StreamTiming,
        origin: Option<(i64, ff::Rational)>,
        ost_tb: ff::Rational,
    ) -> Self {
        let in_tb = timing.time_base;
        // The input's own time base lets timestamps pass through unchanged.
        let enc_tb = in_tb;
        let frame = timing.frame_rate.invert().to_ff();
        VideoClock {
            in_tb,
            in_origin: origin_in(origin, in_tb.to_ff()),
            enc_tb,
            ost_tb,
            frame_dur_enc: rescale(1, frame, enc_tb.to_ff()).max(1),
            frame_dur_ost: rescale(1, frame, ost_tb).max(1),
            last_pts: None,
        }
    }

    /// Frame `index`'s pts in the encoder time base: its own (`pts`, in the input's time base)
    /// when it has one, otherwise one frame after the last; always strictly increasing, which
    /// the encoder and muxers require.
    pub fn next_pts(&mut self, pts: Option<i64>, index: u64) -> i64 {
        let wanted = match (pts, self.last_pts) {
            (Some(p), _) => rescale(
                p.saturating_sub(self.in_origin),
                self.in_tb.to_ff(),
                self.enc_tb.to_ff(),
            ),
            (None, Some(last)) => last + self.frame_dur_enc,
            (None, None) => index as i64 * self.frame_dur_enc,
        };
        let pts = match self.last_pts {
            Some(last) if wanted <= last => last + 1,
            _ => wanted,
        };
        self.last_pts = Some(pts);
        pts
    }
}

/// Where one copied audio stream goes and the time bases on each side.
#[derive(Clone, Copy)]
struct AudioRoute {
    ost: usize,
    ist_tb: ff::Rational,
    ost_tb: ff::Rational,
    /// The input's start in `ist_tb`, subtracted from the packets' timestamps.
    shift: i64,
}

/// Reads audio packets from a second handle on the input and writes them in
/// step with the video, holding at most one packet back (plus, for containers
/// without negative timestamps, one pre-roll packet per stream).
///
/// Pre-roll: a file cut with `-ss … -c copy` keeps the audio from the video
/// keyframe before the cut, up to seconds of it, hidden by an edit list. MP4 and
/// MOV outputs keep it hidden the same way, so every packet is copied. A
/// container without negative timestamps (Matroska) would instead move the whole
/// file later by that much, video included; there, of the packets that start
/// before 0 only the last one of each stream is kept: the one the decoder needs
/// to prime (AAC's encoder-delay packet) or that straddles the start.
struct AudioCopier {
    path: PathBuf,
    input: Input,
    /// Indexed by input stream; `None` for streams not copied.
    routes: Vec<Option<AudioRoute>>,
    /// Shifted already, waiting for the video to catch up.
    pending: Option<(ff::Packet, AudioRoute)>,
    /// Shifted packets to hand out before reading more (a pre-roll packet and the one after it).
    ready: VecDeque<(ff::Packet, AudioRoute)>,
    /// Per input stream: the latest packet starting before 0, while none at or after 0 has come.
    preroll: Vec<Option<(ff::Packet, AudioRoute)>>,
    /// Per input stream: a packet at or after 0 has been seen, or every packet is
    /// copied anyway (the container takes negative timestamps).
    started: Vec<bool>,
    done: bool,
    packets: u64,
}

impl AudioCopier {
    /// Copies the streams that have a route, reading from `input`, a handle of its own on
    /// the input file; the demuxer skips every other stream's payload.
    fn new(
        path: PathBuf,
        mut input: Input,
        routes: Vec<Option<AudioRoute>>,
        negative_ts_ok: bool,
    ) -> Self {
        discard_streams(&mut input, |i| routes.get(i).is_some_and(Option::is_some));
        let streams = routes.len();
        AudioCopier {
            path,
            input,
            routes,
            pending: None,
            ready: VecDeque::new(),
            preroll: (0..streams).map(|_| None).collect(),
            started: vec![negative_ts_ok; streams],
            done: false,
            packets: 0,
        }
    }

    /// Writes audio packets whose dts is at or before `limit` (all of them when `None`).
    fn copy_until(
        &mut self,
        octx: &mut Output,
        out_name: &Path,
        limit: Option<(i64, ff::Rational)>,
    ) -> Result<(), MediaError> {
        loop {
            if self.pending.is_none() {
                if self.done {
                    return Ok(());
                }
                self.pending = self.read_next()?;
                if self.pending.is_none() {
                    self.done = true;
                    return Ok(());
                }
            }
            let (packet, route) = self.pending.as_mut().expect("filled above");
            // Timestamps were shifted on reading, so they compare with the output's.
            if let (Some((ts, tb)), Some(at)) = (limit, packet.dts().or(packet.pts())) {
                // SAFETY: pure arithmetic on two timestamps.
                if unsafe { ffi::av_compare_ts(at, route.ist_tb.into(), ts, tb.into()) } > 0 {
                    return Ok(());
                }
            }
            packet.rescale_ts(route.ist_tb, route.ost_tb);
            packet.set_position(-1);
            packet.set_stream(route.ost);
            packet
                .write_interleaved(octx)
                .map_err(|e| MediaError::Write {
                    path: out_name.to_path_buf(),
                    reason: format!("audio: {}", crate::log::reason(e)),
                })?;
            self.packets += 1;
            self.pending = None;
        }
    }

    /// The next packet to write, its timestamps moved by the input's start.
    fn read_next(&mut self) -> Result<Option<(ff::Packet, AudioRoute)>, MediaError> {
        if let Some(next) = self.ready.pop_front() {
            return Ok(Some(next));
        }
        let mut invalid_in_a_row = 0u32;
        loop {
            let mut packet = ff::Packet::empty();
            match packet.read(&mut self.input) {
                Ok(()) => {
                    let stream = packet.stream();
                    let Some(Some(route)) = self.routes.get(stream).copied() else {
                        continue;
                    };
                    packet.set_pts(packet.pts().map(|t| t.saturating_sub(route.shift)));
                    packet.set_dts(packet.dts().map(|t| t.saturating_sub(route.shift)));
                    if self.started[stream] {
                        return Ok(Some((packet, route)));
                    }
                    if packet.pts().or(packet.dts()).is_some_and(|t| t < 0) {
                        // Replacing drops the earlier one: only the last before 0 is kept.
                        self.preroll[stream] = Some((packet, route));
                        continue;
                    }
                    self.started[stream] = true;
                    match self.preroll[stream].take() {
                        Some(pre) => {
                            self.ready.push_back((packet, route));
                            return Ok(Some(pre));
                        }
                        None => return Ok(Some((packet, route))),
                    }
                }
                // Pre-roll with nothing after it precedes the video entirely; it is left out.
                Err(ff::Error::Eof) => return Ok(None),
                // A damaged stretch: the demuxer resyncs, the reader reports the damage.
                Err(ff::Error::InvalidData) if invalid_in_a_row < 10_000 => invalid_in_a_row += 1,
                Err(e) => {
                    return Err(MediaError::AudioRead {
                        path: self.path.clone(),
                        reason: crate::log::reason(e),
                    })
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
    fn writer_is_send() {
        assert_send::<VideoWriter>();
    }

    #[test]
    fn odd_sizes_round_down_for_420_only() {
        assert_eq!(
            encoded_size(321, 241, PixelFormatChoice::Yuv420p),
            (320, 240)
        );
        assert_eq!(
            encoded_size(321, 241, PixelFormatChoice::Yuv444p),
            (321, 241)
        );
        assert_eq!(
            encoded_size(720, 720, PixelFormatChoice::Yuv420p),
            (720, 720)
        );
    }

    #[test]
    fn containers_by_extension() {
        assert_eq!(muxer_for(Path::new("a.MP4")).unwrap().0, "mp4");
        assert_eq!(muxer_for(Path::new("a.mkv")).unwrap().0, "matroska");
        assert_eq!(muxer_for(Path::new("a.mov")).unwrap().0, "mov");
        let e = muxer_for(Path::new("out.avi")).unwrap_err().to_string();
        assert_eq!(e, "out.avi: unsupported container (use .mp4, .mkv or .mov)");
        assert!(muxer_for(Path::new("noext")).is_err());
    }
}
