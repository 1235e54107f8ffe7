//! Joining: encoded segments copied packet for packet, in order, into one file on the input's own timeline, with the input's audio.
//!
//! Each segment is a run of consecutive frames encoded on its own (starting with
//! a keyframe). Its timestamps are only used to order its frames: every frame
//! is stamped with the time a local run gives the same frame (the input's
//! timestamp, moved to start at 0), so variable frame rates and odd time bases
//! come through exactly. A packet's decode time lags its decode position by the
//! encoder's reorder depth, the same for every segment of a run, so decode
//! times rise across the joins.
//!
//! Codec headers: the output's come from the first segment. A later segment
//! whose H.264 headers differ from those a decoder holds at the join (another
//! x264 build, other settings) gets its own parameter sets in-band at its first
//! picture, which decoders take over the header's; so does the segment after it
//! if its headers are the stream's again. Other codecs' differing headers are refused.

use std::path::Path;

use ffmpeg_next as ff;

use crate::probe::{open_input, open_packets_only, pick_video_stream};
use crate::split::video_packets;
use crate::writer::{add_video_stream, OutputShell};
use crate::{MediaError, VideoInfo, WriteSummary};

/// Joins segments into one output, in frame order.
pub struct SegmentJoiner {
    shell: OutputShell,
    /// Every shown frame's pts in the encoder time base, as a local run stamps it.
    timeline: Vec<i64>,
    /// Frames by which a packet's decode time lags its decode position.
    delay: u32,
    /// The codec and its header (extradata) as the output stream carries them.
    codec: ff::codec::Id,
    header: Vec<u8>,
    /// The header whose parameter sets a decoder holds at the join point: the stream's, or the
    /// last in-band ones.
    active_header: Vec<u8>,
    next_frame: u32,
}

/// A segment's video packets in decode order, with each one's display rank.
struct SegmentPackets {
    input: ff::format::context::Input,
    stream: usize,
    ranks: Vec<u32>,
    header: Vec<u8>,
}

impl SegmentJoiner {
    /// Opens `path` (muxer from `container_of`'s extension) for the joined video of `input`,
    /// with its stream parameters from `first_segment`.
    pub fn create(
        path: &Path,
        container_of: &Path,
        input: &VideoInfo,
        first_segment: &Path,
    ) -> Result<Self, MediaError> {
        let shown = shown_timestamps(input)?;
        let first = open_input(first_segment)?;
        let stream = pick_video_stream(&first).ok_or_else(|| MediaError::NoVideoStream {
            path: first_segment.to_path_buf(),
        })?;
        let params = first.stream(stream).expect("picked above").parameters();
        let codec = params.id();
        let header = extradata(&params);
        // SAFETY: a plain field of an open stream's parameters.
        let reorder = unsafe { (*params.as_ptr()).video_delay }.max(0) as u32;
        let mut shell =
            OutputShell::open(path, container_of, input, |octx, timing, source, name| {
                let copy = ff::encoder::find(ff::codec::Id::None);
                add_video_stream(octx, copy, params.clone(), timing, source, name)
            })?;
        let timeline = shown
            .iter()
            .enumerate()
            .map(|(i, pts)| shell.clock.next_pts(Some(*pts), i as u64))
            .collect();
        Ok(SegmentJoiner {
            shell,
            timeline,
            delay: reorder.max(2),
            codec,
            active_header: header.clone(),
            header,
            next_frame: 0,
        })
    }

    /// Frames the input shows, which the joined segments must add up to.
    pub fn frame_count(&self) -> u32 {
        self.timeline.len() as u32
    }

    /// Frames joined so far.
    pub fn frames_joined(&self) -> u32 {
        self.next_frame
    }

    /// Appends `segment`, which holds frames `first_frame..first_frame + frames` of the input.
    pub fn append(
        &mut self,
        segment: &Path,
        first_frame: u32,
        frames: u32,
    ) -> Result<(), MediaError> {
        let refuse = |reason: String| MediaError::Join {
            path: self.shell.name.clone(),
            segment: segment.display().to_string(),
            reason,
        };
        let mut packets = SegmentPackets::read(segment)?;
        let in_band = self.check(&packets, first_frame, frames).map_err(refuse)?;
        let copied = self.copy_packets(&mut packets, first_frame, in_band.as_deref())?;
        if copied != Some(frames as usize) {
            let reason = match copied {
                Some(n) => format!("{n} of its {frames} frames could be read"),
                None => "it could not be read to its end".into(),
            };
            return Err(MediaError::Join {
                path: self.shell.name.clone(),
                segment: segment.display().to_string(),
                reason,
            });
        }
        self.next_frame += frames;
        self.active_header = packets.header;
        Ok(())
    }

    /// Whether the segment can go next: its place, its frame count, its reordering; the
    /// parameter sets to put in-band at its first picture when its headers differ. Else why not.
    fn check(
        &self,
        packets: &SegmentPackets,
        first_frame: u32,
        frames: u32,
    ) -> Result<Option<Vec<u8>>, String> {
        if first_frame != self.next_frame {
            return Err(format!(
                "it starts at frame {first_frame}, the join is at frame {}",
                self.next_frame
            ));
        }
        if first_frame as usize + frames as usize > self.timeline.len() {
            return Err(format!(
                "frames {first_frame}..{} run past the input's {}",
                first_frame + frames,
                self.timeline.len()
            ));
        }
        if packets.ranks.len() != frames as usize {
            return Err(format!(
                "it holds {} frames, not {frames}",
                packets.ranks.len()
            ));
        }
        let ranks = packets.ranks.iter().enumerate();
        let depth = ranks
            .map(|(i, r)| i as i64 - i64::from(*r))
            .max()
            .unwrap_or(0);
        if depth > i64::from(self.delay) {
            return Err(format!(
                "its frames reorder {depth} deep, the stream's header allows {}",
                self.delay
            ));
        }
        if packets.header == self.active_header {
            return Ok(None);
        }
        self.parameter_sets_in_band(&packets.header)
            .map(Some)
            .ok_or_else(|| "its codec headers differ from the first segment's".into())
    }

    /// Copies the segment's packets onto the timeline from `first_frame`, `in_band` before the
    /// first; how many were copied (`None` when the segment could not be read to its end).
    fn copy_packets(
        &mut self,
        packets: &mut SegmentPackets,
        first_frame: u32,
        in_band: Option<&[u8]>,
    ) -> Result<Option<usize>, MediaError> {
        let (enc_tb, ost_tb) = (self.shell.clock.enc_tb.to_ff(), self.shell.clock.ost_tb);
        let frame = i64::from(first_frame);
        let mut decode_position = 0usize;
        for packet in crate::split::packets(&mut packets.input) {
            let packet = match packet {
                Some(p) if p.stream() == packets.stream => p,
                Some(_) => continue,
                None => return Ok(None),
            };
            let Some(&rank) = packets.ranks.get(decode_position) else {
                return Ok(Some(decode_position + 1));
            };
            let pts = self.time_at(frame + i64::from(rank));
            let dts = self.time_at(frame + decode_position as i64 - i64::from(self.delay));
            let mut out = match (in_band, decode_position) {
                (Some(sets), 0) => {
                    let body = packet.data().unwrap_or(&[]);
                    let mut joined = ff::Packet::copy(&[sets, body].concat());
                    joined.set_flags(packet.flags());
                    joined
                }
                _ => packet,
            };
            out.set_pts(Some(crate::probe::rescale(pts, enc_tb, ost_tb)));
            out.set_dts(Some(crate::probe::rescale(dts, enc_tb, ost_tb)));
            out.set_duration(0);
            self.shell.write_video(&mut out)?;
            decode_position += 1;
        }
        Ok(Some(decode_position))
    }

    /// Writes the rest of the audio and the trailer; refuses a join that misses frames.
    pub fn finish(self) -> Result<WriteSummary, MediaError> {
        if self.next_frame as usize != self.timeline.len() {
            return Err(MediaError::Join {
                path: self.shell.name.clone(),
                segment: "(end)".into(),
                reason: format!(
                    "{} of the input's {} frames were joined",
                    self.next_frame,
                    self.timeline.len()
                ),
            });
        }
        self.shell.finish()
    }

    /// The pts of frame `n` on the output's timeline (encoder time base); before frame 0, whole
    /// frame durations earlier (decode times of the first packets).
    fn time_at(&self, n: i64) -> i64 {
        if n >= 0 {
            self.timeline[n as usize]
        } else {
            self.timeline[0] + n * self.shell.clock.frame_dur_enc
        }
    }

    /// A segment's H.264 parameter sets as NAL units prefixed the way the output's packets are.
    fn parameter_sets_in_band(&self, segment_header: &[u8]) -> Option<Vec<u8>> {
        if self.codec != ff::codec::Id::H264 {
            return None;
        }
        let length_size = avcc_length_size(&self.header)?;
        let sets = avcc_parameter_sets(segment_header)?;
        let mut out = Vec::new();
        for nal in sets {
            let len = nal.len().to_be_bytes();
            out.extend_from_slice(&len[len.len() - length_size..]);
            out.extend_from_slice(nal);
        }
        Some(out)
    }
}

impl SegmentPackets {
    /// Reads the segment's video packets once for their order; the input is reopened for the copy.
    fn read(segment: &Path) -> Result<Self, MediaError> {
        let mut input = open_packets_only(segment)?;
        let stream = pick_video_stream(&input).ok_or_else(|| MediaError::NoVideoStream {
            path: segment.to_path_buf(),
        })?;
        let header = extradata(&input.stream(stream).expect("picked above").parameters());
        let mut pts = Vec::new();
        for packet in crate::split::packets(&mut input) {
            match packet {
                Some(p) if p.stream() == stream => pts.push(p.pts().or(p.dts()).unwrap_or(0)),
                Some(_) => {}
                None => {
                    return Err(MediaError::Corrupt {
                        path: segment.to_path_buf(),
                        frame: pts.len() as u64,
                        reason: "the segment could not be read to its end".into(),
                    })
                }
            }
        }
        let mut sorted = pts.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != pts.len() {
            return Err(MediaError::Join {
                path: segment.to_path_buf(),
                segment: segment.display().to_string(),
                reason: "two of its frames share a timestamp".into(),
            });
        }
        let ranks = pts
            .iter()
            .map(|t| {
                sorted
                    .binary_search(t)
                    .expect("every pts is in the sorted list") as u32
            })
            .collect();
        Ok(SegmentPackets {
            input: open_packets_only(segment)?,
            stream,
            ranks,
            header,
        })
    }
}

/// The shown frames' timestamps in presentation order, read without decoding.
fn shown_timestamps(input: &VideoInfo) -> Result<Vec<i64>, MediaError> {
    let mut shown: Vec<i64> = video_packets(input)?
        .into_iter()
        .filter(|p| !p.hidden)
        .filter_map(|p| p.pts)
        .collect();
    shown.sort_unstable();
    Ok(shown)
}

fn extradata(params: &ff::codec::Parameters) -> Vec<u8> {
    // SAFETY: reading the extradata of a stream's parameters, which outlive this call.
    unsafe {
        let par = &*params.as_ptr();
        if par.extradata.is_null() || par.extradata_size <= 0 {
            return Vec::new();
        }
        std::slice::from_raw_parts(par.extradata, par.extradata_size as usize).to_vec()
    }
}

/// The NAL length prefix size of an avcC header.
fn avcc_length_size(avcc: &[u8]) -> Option<usize> {
    (avcc.len() > 5 && avcc[0] == 1).then(|| usize::from(avcc[4] & 3) + 1)
}

/// The SPS and PPS NAL units of an avcC header, in order.
fn avcc_parameter_sets(avcc: &[u8]) -> Option<Vec<&[u8]>> {
    if avcc.len() < 7 || avcc[0] != 1 {
        return None;
    }
    let mut sets = Vec::new();
    let mut at = 5;
    for count_mask in [0x1f, 0xff] {
        let count = usize::from(*avcc.get(at)? & count_mask);
        at += 1;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([*avcc.get(at)?, *avcc.get(at + 1)?]));
            at += 2;
            sets.push(avcc.get(at..at + len)?);
            at += len;
        }
    }
    (!sets.is_empty()).then_some(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avcc_parameter_sets_are_read_in_order() {
        // version 1, profile/compat/level, 4-byte lengths, 1 SPS (2 bytes), 1 PPS (1 byte).
        let avcc = [
            1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 2, 0x67, 0x64, 1, 0, 1, 0x68,
        ];
        assert_eq!(avcc_length_size(&avcc), Some(4));
        let sets = avcc_parameter_sets(&avcc).unwrap();
        assert_eq!(sets, vec![&[0x67, 0x64][..], &[0x68][..]]);
        assert!(avcc_parameter_sets(&avcc[..9]).is_none(), "cut short");
        assert!(
            avcc_parameter_sets(&[0, 0, 0, 1, 0x67]).is_none(),
            "Annex B"
        );
    }
}
