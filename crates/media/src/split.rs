//! Splitting: the input's video bitstream cut at keyframes into pieces by stream copy (no decoding), each one decodable on its own.
//!
//! A cloud run's workers each decode only the pieces their frames lie in. A cut
//! is made only where decoding can start afresh: at a keyframe (an IDR picture
//! for H.264, an IRAP for HEVC) that every packet before it displays before, and
//! every packet after it displays after (so open GOPs are never cut between a
//! keyframe and the pictures leading it). Pieces are written as Matroska, which
//! holds any codec; their timestamps do not matter, since frames are counted
//! by their order, not their time.
//!
//! Frame numbers are presentation order over the frames the input shows: an
//! MP4 edit list can hide the first frames of the stream (a file cut with
//! `-c copy`); they stay in the first piece, which says how many to drop.

use std::ops::Range;
use std::path::{Path, PathBuf};

use ff::ffi;
use ff::packet::{Mut as _, Ref as _};
use ffmpeg_next as ff;

use crate::probe::{discard_streams, open_input};
use crate::writer::write_error;
use crate::{DecodedFrame, FrameReader, MediaError, VideoInfo};

/// One piece of the input's video stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// The input's frame number (presentation order, shown frames) of the piece's first shown frame.
    pub first_frame: u32,
    /// Shown frames in the piece.
    pub frames: u32,
    /// Frames decoded from the piece before its first shown one, which the input's edit list
    /// hides: a decoder of the piece drops them.
    pub hidden: u32,
}

/// Where the input's video stream can be cut, and how many frames it shows.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitPlan {
    pub pieces: Vec<Piece>,
    pub frame_count: u32,
    /// How far into the video its shown frames reach, in seconds from [`VideoInfo::start_secs`]
    /// (the last one's pts plus one frame), as [`FrameReader::decoded_duration_secs`] measures a
    /// decode: a file that ends early without an error shows it here.
    pub shown_secs: f64,
}

/// What one video packet says about its frame, read without decoding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PacketFacts {
    pub pts: Option<i64>,
    /// A keyframe where decoding can start afresh.
    pub fresh_start: bool,
    /// Hidden by the container's edit list.
    pub hidden: bool,
}

/// Reads the video stream's packets (no decoding) and plans pieces of at least `min_frames(n)`
/// shown frames each, `n` being the stream's shown frames (so a job size that depends on the
/// length needs one read of the file), the last piece possibly shorter; cut only where each piece
/// decodes on its own.
///
/// # Errors
/// [`MediaError::Unsplittable`] when the stream cannot be cut and counted this way (packets
/// without timestamps, hidden frames after shown ones); the caller then sends frames instead.
/// Demuxing errors as [`MediaError::Corrupt`].
pub fn plan_pieces(
    input: &VideoInfo,
    min_frames: impl FnOnce(u32) -> u32,
) -> Result<SplitPlan, MediaError> {
    let packets = video_packets(input)?;
    let unsplittable = |reason: &str| MediaError::Unsplittable {
        path: input.path.clone(),
        reason: reason.to_owned(),
    };
    if packets.is_empty() {
        return Err(unsplittable("its video stream has no packets"));
    }
    if packets.iter().any(|p| p.pts.is_none()) {
        return Err(unsplittable("some video packets carry no timestamp"));
    }
    let shown = packets.iter().filter(|p| !p.hidden).count() as u32;
    let pieces = cut_points(&packets, min_frames(shown)).map_err(unsplittable)?;
    let frame_count = pieces.iter().map(|p| p.frames).sum();
    if frame_count == 0 {
        return Err(unsplittable("its edit list hides every frame"));
    }
    // Hidden frames must display before every shown frame of their piece, or dropping the first
    // decoded frames would drop the wrong ones.
    let pts_of = |hidden: bool| {
        packets
            .iter()
            .filter(move |p| p.hidden == hidden)
            .filter_map(|p| p.pts)
    };
    if pieces[0].hidden > 0 && pts_of(true).max() >= pts_of(false).min() {
        return Err(unsplittable(
            "its edit list hides frames between shown ones",
        ));
    }
    let last_shown = pts_of(false).max().unwrap_or(0);
    let shown_secs = last_shown as f64 * input.time_base.as_f64() - input.start_secs
        + 1.0 / input.frame_rate.as_f64();
    Ok(SplitPlan {
        pieces,
        frame_count,
        shown_secs,
    })
}

/// Pieces of at least `min_frames` shown frames, cut before keyframes that start decoding afresh
/// and that everything before displays before and everything after displays after.
fn cut_points(packets: &[PacketFacts], min_frames: u32) -> Result<Vec<Piece>, &'static str> {
    let pts: Vec<i64> = packets.iter().map(|p| p.pts.unwrap_or_default()).collect();
    let mut suffix_min = vec![i64::MAX; pts.len() + 1];
    for k in (0..pts.len()).rev() {
        suffix_min[k] = suffix_min[k + 1].min(pts[k]);
    }
    let mut pieces: Vec<Piece> = Vec::new();
    let mut current = Piece {
        first_frame: 0,
        frames: 0,
        hidden: 0,
    };
    let mut prefix_max = i64::MIN;
    for (k, packet) in packets.iter().enumerate() {
        let clean_cut = packet.fresh_start && !packet.hidden && prefix_max < suffix_min[k];
        if k > 0 && clean_cut && current.frames >= min_frames.max(1) {
            let next_first = current.first_frame + current.frames;
            pieces.push(current);
            current = Piece {
                first_frame: next_first,
                frames: 0,
                hidden: 0,
            };
        }
        if packet.hidden {
            if current.frames > 0 {
                return Err("its edit list hides frames after shown ones");
            }
            current.hidden += 1;
        } else {
            current.frames += 1;
        }
        prefix_max = prefix_max.max(pts[k]);
    }
    pieces.push(current);
    Ok(pieces)
}

/// Writes the pieces of `plan` by stream copy, piece `i` to `path_of(i)` (Matroska, video only).
/// Returns each piece's size in bytes.
pub fn write_pieces(
    input: &VideoInfo,
    plan: &SplitPlan,
    path_of: impl Fn(usize) -> PathBuf,
) -> Result<Vec<u64>, MediaError> {
    write_pieces_telling(input, plan, path_of, |_, _| {})
}

/// [`write_pieces`], calling `finished(i, size)` as soon as piece `i` is complete on disk, so it
/// can go on its way while the rest are cut.
pub fn write_pieces_telling(
    input: &VideoInfo,
    plan: &SplitPlan,
    path_of: impl Fn(usize) -> PathBuf,
    mut finished: impl FnMut(usize, u64),
) -> Result<Vec<u64>, MediaError> {
    let (mut ictx, ist_tb, params) = open_video_only(input)?;
    let video = input.video_stream_index;
    let mut sizes = Vec::with_capacity(plan.pieces.len());
    let mut piece_index = 0usize;
    let mut left = plan.pieces[0].frames + plan.pieces[0].hidden;
    let mut out: Option<PieceWriter> = None;
    for packet in packets(&mut ictx) {
        let mut packet = match packet {
            Some(p) if p.stream() == video => p,
            Some(_) => continue,
            None => return Err(stream_corrupt_error(input, piece_index)),
        };
        if left == 0 {
            let done = out.take().expect("a piece is open").finish()?;
            finished(piece_index, done);
            sizes.push(done);
            piece_index += 1;
            let Some(next) = plan.pieces.get(piece_index) else {
                return Err(MediaError::Unsplittable {
                    path: input.path.clone(),
                    reason: "it holds more video packets than when it was planned".into(),
                });
            };
            left = next.frames + next.hidden;
        }
        if out.is_none() {
            out = Some(PieceWriter::create(&path_of(piece_index), &params, ist_tb)?);
        }
        out.as_mut()
            .expect("opened above")
            .write(&mut packet, ist_tb)?;
        left -= 1;
    }
    if sizes.len() + 1 != plan.pieces.len() || left != 0 {
        return Err(MediaError::Unsplittable {
            path: input.path.clone(),
            reason: "it holds fewer video packets than when it was planned".into(),
        });
    }
    if let Some(piece) = out {
        let done = piece.finish()?;
        finished(piece_index, done);
        sizes.push(done);
    }
    if sizes.len() != plan.pieces.len() {
        return Err(MediaError::Unsplittable {
            path: input.path.clone(),
            reason: "it holds fewer video packets than when it was planned".into(),
        });
    }
    Ok(sizes)
}

fn stream_corrupt_error(input: &VideoInfo, piece: usize) -> MediaError {
    MediaError::Corrupt {
        path: input.path.clone(),
        frame: piece as u64,
        reason: "the video stream could not be read to its end".into(),
    }
}

/// One piece being written.
struct PieceWriter {
    path: PathBuf,
    octx: ff::format::context::Output,
    ost_tb: ff::Rational,
}

impl PieceWriter {
    fn create(
        path: &Path,
        params: &ff::codec::Parameters,
        ist_tb: ff::Rational,
    ) -> Result<Self, MediaError> {
        let mut octx = ff::format::output_as(&path, "matroska").map_err(write_error(path))?;
        {
            let mut ost = octx
                .add_stream(ff::encoder::find(ff::codec::Id::None))
                .map_err(write_error(path))?;
            ost.set_parameters(params.clone());
            ost.set_time_base(ist_tb);
            // SAFETY: plain field write on the stream just added; Matroska picks its own tag.
            unsafe { (*(*ost.as_mut_ptr()).codecpar).codec_tag = 0 };
        }
        octx.write_header().map_err(write_error(path))?;
        let ost_tb = octx.stream(0).expect("added above").time_base();
        Ok(PieceWriter {
            path: path.to_path_buf(),
            octx,
            ost_tb,
        })
    }

    fn write(&mut self, packet: &mut ff::Packet, ist_tb: ff::Rational) -> Result<(), MediaError> {
        packet.rescale_ts(ist_tb, self.ost_tb);
        packet.set_stream(0);
        packet.set_position(-1);
        // SAFETY: a flag on a packet we own; the piece shows every frame it holds.
        unsafe { (*packet.as_mut_ptr()).flags &= !ffi::AV_PKT_FLAG_DISCARD };
        packet
            .write_interleaved(&mut self.octx)
            .map_err(write_error(&self.path))
    }

    fn finish(mut self) -> Result<u64, MediaError> {
        self.octx.write_trailer().map_err(write_error(&self.path))?;
        drop(self.octx);
        Ok(std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0))
    }
}

/// Frames `wanted` of the input decoded from the pieces that hold them, in order, each with its
/// frame number. Each piece is decoded on its own and its hidden frames are dropped; a piece
/// that decodes to another number of frames than planned is an error.
pub struct PieceFrames {
    pieces: std::collections::VecDeque<(PathBuf, Piece)>,
    wanted: Range<u32>,
    current: Option<OpenPiece>,
    done: bool,
    keep_depth: bool,
    /// A piece probed already by the caller (see [`Self::probed`]).
    probed: Option<VideoInfo>,
}

struct OpenPiece {
    path: PathBuf,
    piece: Piece,
    reader: FrameReader,
    decoded: u32,
}

impl PieceFrames {
    /// `pieces`: files of consecutive pieces (as [`write_pieces`] wrote them) with their plan.
    pub fn new(pieces: Vec<(PathBuf, Piece)>, wanted: Range<u32>) -> Self {
        PieceFrames {
            pieces: pieces.into(),
            wanted,
            current: None,
            done: false,
            keep_depth: false,
            probed: None,
        }
    }

    /// The probe of one of the pieces (by its path), which the caller needed as well: that piece
    /// is not probed a second time.
    pub fn probed(mut self, info: VideoInfo) -> Self {
        self.probed = Some(info);
        self
    }

    /// Frames come with their full depth where the pieces have more than 8 bits a sample (see
    /// [`FrameReader::keep_depth`]).
    pub fn keep_depth(mut self, keep: bool) -> Self {
        self.keep_depth = keep;
        self
    }

    fn open_next(&mut self) -> Option<Result<(), MediaError>> {
        loop {
            let (path, piece) = self.pieces.pop_front()?;
            let end = piece.first_frame + piece.frames;
            if end <= self.wanted.start || piece.first_frame >= self.wanted.end {
                continue;
            }
            let info = match self.probed.take_if(|info| info.path == path) {
                Some(info) => Ok(info),
                None => crate::probe(&path),
            };
            let reader = info
                .and_then(|info| FrameReader::open_piece(&info))
                .map(|reader| reader.keep_depth(self.keep_depth));
            return Some(reader.map(|reader| {
                self.current = Some(OpenPiece {
                    path,
                    piece,
                    reader,
                    decoded: 0,
                })
            }));
        }
    }
}

impl Iterator for PieceFrames {
    type Item = Result<(u32, DecodedFrame), MediaError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if self.current.is_none() {
                match self.open_next() {
                    Some(Ok(())) => {}
                    Some(Err(e)) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                    None => {
                        self.done = true;
                        return None;
                    }
                }
            }
            let open = self.current.as_mut().expect("opened above");
            let planned = open.piece.frames + open.piece.hidden;
            match open.reader.next() {
                Some(Ok(frame)) => {
                    let k = open.decoded;
                    open.decoded += 1;
                    if k < open.piece.hidden {
                        continue;
                    }
                    if k >= planned {
                        self.done = true;
                        return Some(Err(piece_miscount(open, "more")));
                    }
                    let n = open.piece.first_frame + (k - open.piece.hidden);
                    if n < self.wanted.start {
                        continue;
                    }
                    self.done = n + 1 >= self.wanted.end;
                    return Some(Ok((n, frame)));
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                None if open.decoded != planned => {
                    self.done = true;
                    return Some(Err(piece_miscount(open, "fewer")));
                }
                None => self.current = None,
            }
        }
    }
}

fn piece_miscount(open: &OpenPiece, more_or_fewer: &str) -> MediaError {
    MediaError::Corrupt {
        path: open.path.clone(),
        frame: u64::from(open.decoded),
        reason: format!(
            "it decodes to {more_or_fewer} frames than the {} planned",
            open.piece.frames + open.piece.hidden
        ),
    }
}

/// The input opened for its video stream alone (the demuxer skips the rest), with the stream's
/// time base and parameters.
fn open_video_only(
    input: &VideoInfo,
) -> Result<
    (
        ff::format::context::Input,
        ff::Rational,
        ff::codec::Parameters,
    ),
    MediaError,
> {
    let mut ictx = open_input(&input.path)?;
    let video = input.video_stream_index;
    discard_streams(&mut ictx, |i| i == video);
    let stream = ictx
        .stream(video)
        .ok_or_else(|| MediaError::NoVideoStream {
            path: input.path.clone(),
        })?;
    let (time_base, params) = (stream.time_base(), stream.parameters());
    Ok((ictx, time_base, params))
}

/// The video stream's packets in file (decode) order, read without decoding.
pub(crate) fn video_packets(input: &VideoInfo) -> Result<Vec<PacketFacts>, MediaError> {
    let (mut ictx, _, params) = open_video_only(input)?;
    let video = input.video_stream_index;
    let (codec, length_size) = (params.id(), nal_length_size(&params));
    let mut facts = Vec::new();
    for packet in packets(&mut ictx) {
        let packet = match packet {
            Some(p) if p.stream() == video => p,
            Some(_) => continue,
            None => return Err(stream_corrupt_error(input, facts.len())),
        };
        // SAFETY: reading the flags of a packet we own.
        let flags = unsafe { (*packet.as_ptr()).flags };
        facts.push(PacketFacts {
            pts: packet.pts(),
            fresh_start: packet.is_key()
                && starts_afresh(codec, length_size, packet.data().unwrap_or(&[])),
            hidden: flags & ffi::AV_PKT_FLAG_DISCARD != 0,
        });
    }
    Ok(facts)
}

/// The input's packets in file order; a read failure yields `None` once and ends.
pub(crate) fn packets(
    ictx: &mut ff::format::context::Input,
) -> impl Iterator<Item = Option<ff::Packet>> + '_ {
    let mut failed = false;
    let mut invalid_in_a_row = 0u32;
    std::iter::from_fn(move || loop {
        if failed {
            return None;
        }
        let mut packet = ff::Packet::empty();
        match packet.read(ictx) {
            Ok(()) => return Some(Some(packet)),
            Err(ff::Error::Eof) => return None,
            // A damaged stretch the demuxer skips over (as the reader does); not the end.
            Err(ff::Error::InvalidData) if invalid_in_a_row < 10_000 => invalid_in_a_row += 1,
            Err(_) => {
                failed = true;
                return Some(None);
            }
        }
    })
}

/// For H.264 and HEVC in length-prefixed form (MP4, Matroska): the prefix size from the
/// extradata; `None` for Annex B (start codes) or other codecs.
fn nal_length_size(params: &ff::codec::Parameters) -> Option<usize> {
    // SAFETY: reading the extradata of an open stream's parameters.
    let extradata = unsafe {
        let par = &*params.as_ptr();
        if par.extradata.is_null() || par.extradata_size < 5 {
            return None;
        }
        std::slice::from_raw_parts(par.extradata, par.extradata_size as usize)
    };
    match params.id() {
        // avcC: version 1, then the size minus one in the low bits of byte 4.
        ff::codec::Id::H264 if extradata[0] == 1 => Some(usize::from(extradata[4] & 3) + 1),
        // hvcC: version 1, the size minus one in the low bits of byte 21.
        ff::codec::Id::HEVC if extradata[0] == 1 && extradata.len() > 22 => {
            Some(usize::from(extradata[21] & 3) + 1)
        }
        _ => None,
    }
}

/// Whether a keyframe packet lets decoding start afresh: for H.264 an IDR slice, for HEVC an
/// IRAP picture (leading pictures of a CRA are kept with it by the timestamp rule); other
/// codecs' keyframes are taken at their word.
fn starts_afresh(codec: ff::codec::Id, length_size: Option<usize>, data: &[u8]) -> bool {
    let fresh = |header: u8| match codec {
        ff::codec::Id::H264 => header & 0x1f == 5,
        _ => (16..=21).contains(&((header >> 1) & 0x3f)),
    };
    match codec {
        ff::codec::Id::H264 | ff::codec::Id::HEVC => nal_units(data, length_size)
            .iter()
            .any(|nal| !nal.is_empty() && fresh(nal[0])),
        _ => true,
    }
}

/// The NAL units of a packet, length-prefixed (`Some(size)`) or in Annex B start-code form.
pub(crate) fn nal_units(data: &[u8], length_size: Option<usize>) -> Vec<&[u8]> {
    let mut units = Vec::new();
    match length_size {
        Some(size) => {
            let mut at = 0;
            while at + size <= data.len() {
                let len = data[at..at + size]
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                at += size;
                if len == 0 || at + len > data.len() {
                    break;
                }
                units.push(&data[at..at + len]);
                at += len;
            }
        }
        None => {
            // Start codes 00 00 01 (or 00 00 00 01): each unit runs to the next one.
            let mut starts = Vec::new();
            let mut i = 0;
            while i + 3 <= data.len() {
                if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
                    starts.push(i + 3);
                    i += 3;
                } else {
                    i += 1;
                }
            }
            for (k, &s) in starts.iter().enumerate() {
                let end = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
                let mut end = end;
                while end > s && data[end - 1] == 0 {
                    end -= 1;
                }
                units.push(&data[s..end]);
            }
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nal_units_of_both_forms() {
        let prefixed = [0, 0, 0, 2, 0x65, 0x88, 0, 0, 0, 1, 0x06];
        let units = nal_units(&prefixed, Some(4));
        assert_eq!(units, vec![&[0x65, 0x88][..], &[0x06][..]]);
        let annex_b = [0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x65, 0x88];
        let units = nal_units(&annex_b, None);
        assert_eq!(units, vec![&[0x67, 0x42][..], &[0x65, 0x88][..]]);
    }

    #[test]
    fn only_idr_slices_start_h264_afresh() {
        let idr = [0, 0, 0, 2, 0x65, 0x88];
        let non_idr_i = [0, 0, 0, 2, 0x41, 0x9a];
        assert!(starts_afresh(ff::codec::Id::H264, Some(4), &idr));
        assert!(!starts_afresh(ff::codec::Id::H264, Some(4), &non_idr_i));
        // HEVC CRA (21) starts afresh, a trailing picture (1) does not.
        assert!(starts_afresh(
            ff::codec::Id::HEVC,
            Some(4),
            &[0, 0, 0, 2, 21 << 1, 1]
        ));
        assert!(!starts_afresh(
            ff::codec::Id::HEVC,
            Some(4),
            &[0, 0, 0, 2, 1 << 1, 1]
        ));
    }
}
