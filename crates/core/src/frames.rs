//! Picking a handful of frames spread through a video, for sheets and previews.
use anyhow::Result;
use stylize_media::{DecodedFrame, FrameReader, RgbImage, VideoInfo};

/// `n` frame indices spread evenly through `count` frames: the middle of `n` equal stretches,
/// so neither the first black frame nor the fade-out at the very end is picked.
pub fn spread(count: u64, n: usize) -> Vec<u64> {
    let count = count.max(1);
    let mut picks: Vec<u64> = (0..n as u64)
        .map(|i| ((2 * i + 1) * count / (2 * n as u64)).min(count - 1))
        .collect();
    picks.dedup();
    picks
}

/// The frames at `indices` (ascending), one seek each: the reader jumps to the keyframe before a
/// pick and decodes forward to it without converting the frames it passes, so a preview of a long
/// video costs a few keyframe intervals per moment, not every frame up to the last one.
///
/// When the video ends before an index (its frame count was an estimate), the last frame stands in
/// for the first missing pick instead, so the sheet still shows the end.
pub fn grab(info: &VideoInfo, indices: &[u64]) -> Result<Vec<(u64, RgbImage)>> {
    let rate = frame_rate(info);
    let mut reader = FrameReader::open(info)?;
    let mut picked = Vec::with_capacity(indices.len());
    for &index in indices {
        reader.seek_to(index as f64 / rate)?;
        match first_from(&mut reader, index)? {
            Some(frame) => picked.push((frame.index, frame.image)),
            None => {
                if let Some(last) = last_frame(&mut reader, index as f64 / rate)? {
                    if picked.last().map(|(i, _)| *i) != Some(last.index) {
                        picked.push((last.index, last.image));
                    }
                }
                break;
            }
        }
        if crate::cancel::cancelled() {
            anyhow::bail!("interrupted");
        }
    }
    if picked.is_empty() {
        anyhow::bail!("{}: no video frames could be decoded", info.path.display());
    }
    Ok(picked)
}

/// For each of `indices` (ascending), the frames from `runup` before it up to it, one seek each:
/// what a steadied frame needs styled before it. A run that reaches the end of the video early
/// ends with the video's last frame.
pub fn grab_runs(
    info: &VideoInfo,
    indices: &[u64],
    runup: u64,
) -> Result<Vec<(u64, Vec<RgbImage>)>> {
    let rate = frame_rate(info);
    let mut reader = FrameReader::open(info)?;
    let mut runs = Vec::with_capacity(indices.len());
    for &index in indices {
        let start = index.saturating_sub(runup);
        reader.seek_to(start as f64 / rate)?;
        let Some(first) = first_from(&mut reader, start)? else {
            break;
        };
        let mut last_index = first.index;
        let mut run = vec![first.image];
        while last_index < index {
            match reader.next() {
                Some(frame) => {
                    let frame = frame?;
                    last_index = frame.index;
                    run.push(frame.image);
                }
                None => break,
            }
        }
        if crate::cancel::cancelled() {
            anyhow::bail!("interrupted");
        }
        runs.push((last_index, run));
    }
    if runs.is_empty() {
        anyhow::bail!("{}: no video frames could be decoded", info.path.display());
    }
    Ok(runs)
}

/// The first frame numbered `index` or later. The seek lands on the first frame at or after the
/// time asked for, which is the frame itself in a constant-rate video whose timeline starts with
/// it; when audio starts earlier the timeline does too, and the few frames before it are skipped here.
fn first_from(reader: &mut FrameReader, index: u64) -> Result<Option<DecodedFrame>> {
    for frame in reader {
        let frame = frame?;
        if frame.index >= index {
            return Ok(Some(frame));
        }
    }
    Ok(None)
}

/// The video's last frame, for a pick past its end at `beyond` seconds: seeks back a second, then
/// twice as far each time nothing is left from there, and reads to the end.
fn last_frame(reader: &mut FrameReader, beyond: f64) -> Result<Option<DecodedFrame>> {
    let mut back = 1.0;
    loop {
        let from = (beyond - back).max(0.0);
        reader.seek_to(from)?;
        let mut last = None;
        for frame in &mut *reader {
            last = Some(frame?);
        }
        if last.is_some() || from == 0.0 {
            return Ok(last);
        }
        back *= 2.0;
    }
}

/// The rate that turns frame numbers into seconds (the reader's own fallback when the file states none).
fn frame_rate(info: &VideoInfo) -> f64 {
    let rate = info.frame_rate.as_f64();
    if rate > 0.0 {
        rate
    } else {
        25.0
    }
}

/// A frame's time as `m:ss.s`, from its index and the frame rate.
pub fn timestamp(index: u64, info: &VideoInfo) -> String {
    let rate = info.frame_rate.as_f64();
    let secs = if rate > 0.0 { index as f64 / rate } else { 0.0 };
    let tenths = (secs * 10.0).round() as u64;
    format!("{}:{:02}.{}", tenths / 600, (tenths / 10) % 60, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_through_the_middle_of_stretches() {
        assert_eq!(spread(823, 6), vec![68, 205, 342, 480, 617, 754]);
        assert_eq!(spread(4, 6), vec![0, 1, 2, 3]);
        assert_eq!(spread(0, 2), vec![0]);
    }
}
