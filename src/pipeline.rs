//! The local pipeline: decode, style and encode on their own threads joined by bounded channels.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use stylize_media::{DecodedFrame, EncodeOptions, FrameReader, RgbFrame, VideoInfo, VideoWriter};
use stylize_model::{Engine, PreparedStyle, RgbImage};

use crate::output::{OutputPlan, TempGuard};
use crate::progress::Progress;
use crate::showcase::compare;

/// Frames in flight between stages: enough to keep each stage busy, few enough that memory stays flat.
const CHANNEL_DEPTH: usize = 4;

/// Set by the Ctrl-C handler; every stage checks it between frames.
pub static CANCELLED: AtomicBool = AtomicBool::new(false);

pub fn cancelled() -> bool {
    CANCELLED.load(Ordering::Relaxed)
}

/// What one finished video reports.
#[derive(Debug)]
pub struct VideoOutcome {
    pub output: PathBuf,
    pub frames: u64,
    pub elapsed: Duration,
}

/// How the style reaches the pipeline: already prepared for the run, or prepared from this video's first
/// frame (needed when strength < 1 blends with the content's own style).
pub enum StyleForVideo<'a> {
    Ready(&'a PreparedStyle),
    FromFirstFrame(&'a dyn Fn(&RgbImage) -> Result<PreparedStyle>),
}

/// A styled frame on its way to the encoder, with its original when a side-by-side video is wanted
/// (`None` otherwise, so a plain run copies no pixels).
struct Styled {
    frame: DecodedFrame,
    original: Option<RgbFrame>,
}

/// Styles one video into `plan`'s output, and with `compare` also writes the side-by-side video
/// (original | styled) there. Nothing is left behind on error or Ctrl-C.
pub fn style_video(
    engine: &Engine,
    style: StyleForVideo<'_>,
    info: &VideoInfo,
    plan: &OutputPlan,
    compare: Option<&OutputPlan>,
    encode: &EncodeOptions,
    progress: &Progress,
) -> Result<VideoOutcome> {
    let started = Instant::now();
    let temp = TempGuard::new(plan.temp_path());
    let compare_temp = compare.map(|c| TempGuard::new(c.temp_path()));
    progress.start(info);
    let (decoded_tx, decoded_rx) = bounded::<Result<DecodedFrame>>(CHANNEL_DEPTH);
    let (styled_tx, styled_rx) = bounded::<Styled>(CHANNEL_DEPTH);

    let (decoded, styling, encoded) = std::thread::scope(|scope| {
        let decoder = scope.spawn(|| decode_stage(info, decoded_tx));
        let side_target = compare
            .zip(compare_temp.as_ref())
            .map(|(c, t)| (t.path(), c.final_path.as_path()));
        let (temp_path, final_path) = (temp.path(), &plan.final_path);
        let encoder = scope.spawn(move || {
            encode_stage(
                temp_path,
                final_path,
                side_target,
                info,
                encode,
                styled_rx,
                progress,
            )
        });
        let styling = style_stage(engine, style, compare.is_some(), decoded_rx, styled_tx);
        let decoded = decoder
            .join()
            .unwrap_or_else(|_| Err(anyhow!("decoder thread panicked")));
        let encoded = encoder
            .join()
            .unwrap_or_else(|_| Err(anyhow!("encoder thread panicked")));
        (decoded, styling, encoded)
    });
    progress.finish();
    if cancelled() {
        bail!("{}: interrupted; no output written", info.path.display());
    }
    // The first stage to fail explains the others (they stop because a channel closed).
    let (decoded_frames, decoded_secs) = decoded?;
    styling.with_context(|| format!("{}: styling failed", info.path.display()))?;
    let written = encoded?;
    if decoded_frames == 0 {
        bail!("{}: no video frames could be decoded", info.path.display());
    }
    if let (Some(expected), true) = (info.frame_count, info.frame_count_exact) {
        // The container's own count is exact; missing more than one frame means the file is cut short.
        if decoded_frames + 1 < expected {
            bail!(
                "{}: truncated or damaged: decoded {decoded_frames} of {expected} frames; no output written",
                info.path.display()
            );
        }
    }
    // A cut Matroska file ends early without any error but still states its full length. The
    // video's own length leaves out audio that runs on past the last picture; the container's,
    // used when a file does not record the video's, needs the slack for it.
    if let Some(stated_secs) = info.video_duration_secs.or(info.container_duration_secs) {
        let slack = (stated_secs * 0.1).max(1.0);
        if decoded_secs + slack < stated_secs {
            bail!(
                "{}: truncated or damaged: the picture ends at {decoded_secs:.1} s of {stated_secs:.1} s; no output written",
                info.path.display()
            );
        }
    }
    if written != decoded_frames {
        bail!(
            "{}: encoded {written} frames but decoded {decoded_frames}",
            plan.final_path.display()
        );
    }
    plan.commit_with_side(temp, compare.zip(compare_temp))?;
    Ok(VideoOutcome {
        output: plan.final_path.clone(),
        frames: written,
        elapsed: started.elapsed(),
    })
}

/// Returns the frames decoded and how far into the video they reach, in seconds.
fn decode_stage(info: &VideoInfo, out: Sender<Result<DecodedFrame>>) -> Result<(u64, f64)> {
    let mut reader = FrameReader::open(info)?;
    let mut count = 0;
    for frame in reader.by_ref() {
        if cancelled() {
            break;
        }
        match frame {
            Ok(frame) => {
                count += 1;
                if out.send(Ok(frame)).is_err() {
                    break; // downstream stopped; its error is the one to report
                }
            }
            Err(e) => {
                let message = anyhow::Error::from(e);
                let _ = out.send(Err(anyhow!("{message:#}")));
                return Err(message);
            }
        }
    }
    Ok((count, reader.decoded_duration_secs()))
}

fn style_stage(
    engine: &Engine,
    style: StyleForVideo<'_>,
    keep_originals: bool,
    input: Receiver<Result<DecodedFrame>>,
    out: Sender<Styled>,
) -> Result<()> {
    let batch_size = engine.preferred_batch().max(1);
    let mut owned_style: Option<PreparedStyle> = None;
    let mut pending: Vec<DecodedFrame> = Vec::with_capacity(batch_size);
    let mut finished = false;
    while !finished {
        if cancelled() {
            return Ok(());
        }
        // Fill a batch; a short timeout keeps Ctrl-C prompt while the decoder is idle.
        match input.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(frame)) => pending.push(frame),
            Ok(Err(_)) => return Ok(()), // the decoder reports its own error
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => finished = true,
        }
        while pending.len() < batch_size && !finished {
            match input.try_recv() {
                Ok(Ok(frame)) => pending.push(frame),
                Ok(Err(_)) => return Ok(()),
                Err(crossbeam_channel::TryRecvError::Empty) if batch_size == 1 => break,
                Err(crossbeam_channel::TryRecvError::Empty) => match input.recv() {
                    Ok(Ok(frame)) => pending.push(frame),
                    Ok(Err(_)) => return Ok(()),
                    Err(_) => finished = true,
                },
                Err(crossbeam_channel::TryRecvError::Disconnected) => finished = true,
            }
        }
        if pending.is_empty() {
            continue;
        }
        let prepared = match &style {
            StyleForVideo::Ready(prepared) => *prepared,
            StyleForVideo::FromFirstFrame(prepare) => {
                if owned_style.is_none() {
                    owned_style = Some(prepare(&to_model(&pending[0].image))?);
                }
                owned_style.as_ref().expect("prepared above")
            }
        };
        // The side-by-side video needs the original beside the styled frame: the one copy compare costs.
        let mut originals: Vec<Option<RgbFrame>> = pending
            .iter()
            .map(|f| keep_originals.then(|| f.image.clone()))
            .collect();
        let images: Vec<RgbImage> = pending
            .iter_mut()
            .map(|f| take_image(&mut f.image))
            .collect();
        let styled = engine.stylize(prepared, &images)?;
        for ((mut frame, image), original) in pending.drain(..).zip(styled).zip(originals.drain(..))
        {
            frame.image = RgbFrame {
                width: image.width,
                height: image.height,
                data: image.data,
            };
            if out.send(Styled { frame, original }).is_err() {
                return Ok(()); // the encoder stopped and reports why
            }
        }
    }
    Ok(())
}

/// `side` is the side-by-side video's (temporary, final) path when one is wanted.
fn encode_stage(
    temp: &Path,
    final_path: &Path,
    side: Option<(&Path, &Path)>,
    info: &VideoInfo,
    encode: &EncodeOptions,
    input: Receiver<Styled>,
    progress: &Progress,
) -> Result<u64> {
    let mut writer = VideoWriter::create(temp, final_path, info, encode)?;
    let mut side = side
        .map(|(temp, path)| compare::SideBySideWriter::create(temp, path, info, encode))
        .transpose()?;
    for styled in input {
        if cancelled() {
            return Ok(0);
        }
        writer.write(&styled.frame)?;
        if let (Some(side), Some(original)) = (side.as_mut(), &styled.original) {
            side.write(original, &styled.frame)?;
        }
        progress.frame_done();
    }
    if cancelled() {
        return Ok(0);
    }
    let frames = writer.finish()?.frames;
    if let Some(side) = side {
        side.finish(frames)?;
    }
    Ok(frames)
}

/// Moves the pixels out without copying; the frame keeps its index and timestamp.
fn take_image(frame: &mut RgbFrame) -> RgbImage {
    RgbImage {
        width: frame.width,
        height: frame.height,
        data: std::mem::take(&mut frame.data),
    }
}

fn to_model(frame: &RgbFrame) -> RgbImage {
    RgbImage {
        width: frame.width,
        height: frame.height,
        data: frame.data.clone(),
    }
}
