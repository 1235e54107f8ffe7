//! Picking a handful of frames spread through a video, for sheets and previews.
use anyhow::Result;
use stylize_media::{FrameReader, RgbFrame, VideoInfo};

/// `n` frame indices spread evenly through `count` frames: the middle of `n` equal stretches,
/// so neither the first black frame nor the fade-out at the very end is picked.
pub fn spread(count: u64, n: usize) -> Vec<u64> {
    let count = count.max(1);
    let mut picks: Vec<u64> = (0..n as u64).map(|i| ((2 * i + 1) * count / (2 * n as u64)).min(count - 1)).collect();
    picks.dedup();
    picks
}

/// Decodes `info` from the start and keeps the frames at `indices` (ascending), stopping after the
/// last one, so a preview of the first minutes of a long video costs only those minutes.
///
/// When the video ends before an index (its frame count was an estimate), the last frame stands in
/// for the first missing pick instead, so the sheet still shows the end.
pub fn grab(info: &VideoInfo, indices: &[u64]) -> Result<Vec<(u64, RgbFrame)>> {
    let mut wanted = indices.iter().copied().peekable();
    let mut picked = Vec::with_capacity(indices.len());
    let mut last: Option<(u64, RgbFrame)> = None;
    for frame in FrameReader::open(info)? {
        let Some(&next) = wanted.peek() else { break };
        let frame = frame?;
        if frame.index == next {
            picked.push((frame.index, frame.image.clone()));
            wanted.next();
        }
        last = Some((frame.index, frame.image));
        if crate::pipeline::cancelled() {
            anyhow::bail!("interrupted");
        }
    }
    if wanted.peek().is_some() {
        if let Some((index, image)) = last {
            if picked.last().map(|(i, _)| *i) != Some(index) {
                picked.push((index, image));
            }
        }
    }
    if picked.is_empty() {
        anyhow::bail!("{}: no video frames could be decoded", info.path.display());
    }
    Ok(picked)
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
