//! The local pipeline: decode, style and encode on their own threads joined by bounded channels.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use stylize_media::{DecodedFrame, EncodeOptions, FrameReader, RgbImage, VideoInfo, VideoWriter};
use stylize_model::{Engine, PreparedStyle};
use stylize_motion::{Steadied, SteadyStream};

use crate::cancel::cancelled;
use crate::compare;
use crate::look::LoadedLook;
use crate::optimize::FrameOptimizer;
use crate::output::{OutputPlan, TempGuard};

/// Frames in flight between stages: enough to keep each stage busy, few enough that memory stays flat.
const CHANNEL_DEPTH: usize = 4;

/// How a video's progress is shown (a progress bar in the binary; nothing in tests).
pub trait FrameProgress: Sync {
    /// A video starts: its name and, when known, its frame count.
    fn start(&self, info: &VideoInfo);
    /// One more frame is encoded.
    fn frame_done(&self);
    /// `--method optimize`: frame `frame` has reached iteration `iteration` of `of`.
    fn iteration(&self, _frame: u64, _iteration: usize, _of: usize) {}
    /// The video is finished (or stopped).
    fn finish(&self);
}

/// Shows nothing.
pub struct NoProgress;

impl FrameProgress for NoProgress {
    fn start(&self, _: &VideoInfo) {}
    fn frame_done(&self) {}
    fn finish(&self) {}
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
enum StyleForVideo<'a> {
    Ready(&'a PreparedStyle),
    FromFirstFrame(&'a LoadedLook),
}

/// A styled frame on its way to the encoder, with its original when the steadier or a side-by-side
/// video needs it (`None` otherwise, so a plain run copies no pixels).
struct Styled {
    frame: DecodedFrame,
    original: Option<RgbImage>,
}

/// Where the encoder stage writes: the styled video's temporary and final names, and the
/// side-by-side video's when one is wanted.
struct EncodeTargets<'a> {
    temp: &'a Path,
    final_path: &'a Path,
    side: Option<(&'a Path, &'a Path)>,
}

/// Styles one video into `plan`'s output, and with `compare` also writes the side-by-side video
/// (original | styled) there. Nothing is left behind on error or Ctrl-C.
pub fn style_video(
    look: &LoadedLook,
    info: &VideoInfo,
    plan: &OutputPlan,
    compare: Option<&OutputPlan>,
    encode: &EncodeOptions,
    progress: &dyn FrameProgress,
) -> Result<VideoOutcome> {
    let started = Instant::now();
    let temp = TempGuard::new(plan.temp_path());
    let compare_temp = compare.map(|c| TempGuard::new(c.temp_path()));
    let targets = EncodeTargets {
        temp: temp.path(),
        final_path: &plan.final_path,
        side: compare
            .zip(compare_temp.as_ref())
            .map(|(c, t)| (t.path(), c.final_path.as_path())),
    };
    let style = match &look.shared {
        Some(prepared) => StyleForVideo::Ready(prepared),
        None => StyleForVideo::FromFirstFrame(look),
    };
    let config = look.look();
    // The optimisation's temporal term steadies the frames itself.
    let optimizer = FrameOptimizer::new(
        &config.method,
        config.style_picture(),
        config.steady,
        look.engine.device(),
    )?;
    let steady = if optimizer.is_some() {
        0.0
    } else {
        config.steady
    };
    progress.start(info);
    let stages = run_stages(
        &look.engine,
        (style, optimizer),
        info,
        &targets,
        encode,
        progress,
        steady,
    );
    progress.finish();
    if cancelled() {
        bail!("{}: interrupted; no output written", info.path.display());
    }
    // The first stage to fail explains the others (they stop because a channel closed).
    let (decoded, styling, encoded) = stages;
    let (decoded_frames, decoded_secs) = decoded?;
    styling.with_context(|| format!("{}: styling failed", info.path.display()))?;
    let written = encoded?;
    check_whole(info, decoded_frames, decoded_secs)
        .map_err(|e| anyhow!("{}: {e}; no output written", info.path.display()))?;
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

type StageResults = (Result<(u64, f64)>, Result<()>, Result<u64>);

/// Decoder, steadier and encoder on their own threads, the network on this one.
fn run_stages(
    engine: &Engine,
    (style, optimizer): (StyleForVideo<'_>, Option<FrameOptimizer>),
    info: &VideoInfo,
    targets: &EncodeTargets<'_>,
    encode: &EncodeOptions,
    progress: &dyn FrameProgress,
    steady: f32,
) -> StageResults {
    let (decoded_tx, decoded_rx) = bounded::<Result<DecodedFrame>>(CHANNEL_DEPTH);
    let (styled_tx, styled_rx) = bounded::<Styled>(CHANNEL_DEPTH);
    let side_by_side = targets.side.is_some();
    std::thread::scope(|scope| {
        let deep = encode.deep_output_for(info);
        let decoder = scope.spawn(move || decode_stage(info, deep, decoded_tx));
        // With --steady, a stage between the network and the encoder carries strokes along the motion.
        let (steadier, to_encode) = match SteadyStream::at(steady) {
            Some(steadier) => {
                let (steadied_tx, steadied_rx) = bounded::<Styled>(CHANNEL_DEPTH);
                let stage = scope
                    .spawn(move || steady_stage(steadier, side_by_side, styled_rx, steadied_tx));
                (Some(stage), steadied_rx)
            }
            None => (None, styled_rx),
        };
        let encoder = scope.spawn(|| encode_stage(targets, info, encode, to_encode, progress));
        let keep_originals = side_by_side || steadier.is_some();
        let styling = style_stage(
            engine,
            (style, optimizer),
            keep_originals,
            decoded_rx,
            (styled_tx, progress),
        );
        let steadied = match steadier {
            Some(stage) => stage
                .join()
                .unwrap_or_else(|_| Err(anyhow!("steadier thread panicked"))),
            None => Ok(()),
        };
        let decoded = decoder
            .join()
            .unwrap_or_else(|_| Err(anyhow!("decoder thread panicked")));
        let encoded = encoder
            .join()
            .unwrap_or_else(|_| Err(anyhow!("encoder thread panicked")));
        (decoded, styling.and(steadied), encoded)
    })
}

/// Whether a video decoded to its end: `decoded_frames` reaching `decoded_secs` into it. The
/// one truncation rule of local and cloud runs alike; the error says what is missing.
pub fn check_whole(info: &VideoInfo, decoded_frames: u64, decoded_secs: f64) -> Result<()> {
    if decoded_frames == 0 {
        bail!("no video frames could be decoded");
    }
    if let (Some(expected), true) = (info.frame_count, info.frame_count_exact) {
        // The container's own count is exact; missing more than one frame means the file is cut short.
        if decoded_frames + 1 < expected {
            bail!("truncated or damaged: decoded {decoded_frames} of {expected} frames");
        }
    }
    // A cut Matroska file ends early without any error but still states its full length. The
    // video's own length leaves out audio that runs on past the last picture; the container's,
    // used when a file does not record the video's, needs the slack for it.
    if let Some(stated_secs) = info.video_duration_secs.or(info.container_duration_secs) {
        let slack = (stated_secs * 0.1).max(1.0);
        if decoded_secs + slack < stated_secs {
            bail!("truncated or damaged: the picture ends at {decoded_secs:.1} s of {stated_secs:.1} s");
        }
    }
    Ok(())
}

/// Returns the frames decoded and how far into the video they reach, in seconds. `deep`: frames
/// keep their full depth, for an output that holds it.
fn decode_stage(
    info: &VideoInfo,
    deep: bool,
    out: Sender<Result<DecodedFrame>>,
) -> Result<(u64, f64)> {
    let mut reader = FrameReader::open(info)?.keep_depth(deep);
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
    (style, mut optimizer): (StyleForVideo<'_>, Option<FrameOptimizer>),
    keep_originals: bool,
    input: Receiver<Result<DecodedFrame>>,
    (out, progress): (Sender<Styled>, &dyn FrameProgress),
) -> Result<()> {
    let batch_size = engine.preferred_batch().max(1);
    let mut owned_style: Option<PreparedStyle> = None;
    let mut pending: Vec<DecodedFrame> = Vec::with_capacity(batch_size);
    loop {
        if cancelled() {
            return Ok(());
        }
        let finished = match fill_batch(&input, &mut pending, batch_size) {
            Batch::Decoder => return Ok(()), // the decoder reports its own error
            Batch::Waiting => continue,
            Batch::Ready => false,
            Batch::Last => true,
        };
        if !pending.is_empty() {
            let prepared = match &style {
                StyleForVideo::Ready(prepared) => *prepared,
                StyleForVideo::FromFirstFrame(look) => match &owned_style {
                    Some(prepared) => prepared,
                    None => owned_style.insert(look.prepare_for(&pending[0].image)?),
                },
            };
            let optimizing = optimizer.as_mut().map(|o| (o, progress));
            if !style_batch(
                engine,
                prepared,
                keep_originals,
                optimizing,
                &mut pending,
                &out,
            )? {
                return Ok(()); // the encoder stopped and reports why
            }
        }
        if finished {
            return Ok(());
        }
    }
}

/// How filling a batch ended.
enum Batch {
    /// The batch is full, or holds what came without waiting.
    Ready,
    /// The decoder finished: what the batch holds is the last.
    Last,
    /// Nothing came within the poll interval (checked again after a look at Ctrl-C).
    Waiting,
    /// The decoder failed.
    Decoder,
}

/// Fills `pending` up to `batch_size` frames. A short first wait keeps Ctrl-C prompt while the
/// decoder is idle; batches of one never wait for a second frame.
fn fill_batch(
    input: &Receiver<Result<DecodedFrame>>,
    pending: &mut Vec<DecodedFrame>,
    batch_size: usize,
) -> Batch {
    match input.recv_timeout(Duration::from_millis(200)) {
        Ok(Ok(frame)) => pending.push(frame),
        Ok(Err(_)) => return Batch::Decoder,
        Err(RecvTimeoutError::Timeout) => return Batch::Waiting,
        Err(RecvTimeoutError::Disconnected) => return Batch::Last,
    }
    while pending.len() < batch_size {
        let next = match input.try_recv() {
            Ok(frame) => Ok(frame),
            Err(crossbeam_channel::TryRecvError::Empty) if batch_size == 1 => break,
            Err(crossbeam_channel::TryRecvError::Empty) => input.recv().map_err(|_| ()),
            Err(crossbeam_channel::TryRecvError::Disconnected) => Err(()),
        };
        match next {
            Ok(Ok(frame)) => pending.push(frame),
            Ok(Err(_)) => return Batch::Decoder,
            Err(()) => return Batch::Last,
        }
    }
    Batch::Ready
}

/// Styles the frames in `pending` (emptying it) and sends them on; false when the encoder is gone.
fn style_batch(
    engine: &Engine,
    prepared: &PreparedStyle,
    keep_originals: bool,
    optimizing: Option<(&mut FrameOptimizer, &dyn FrameProgress)>,
    pending: &mut Vec<DecodedFrame>,
    out: &Sender<Styled>,
) -> Result<bool> {
    // The side-by-side video needs the original beside the styled frame: the one copy compare costs.
    let originals: Vec<Option<RgbImage>> = pending
        .iter()
        .map(|f| keep_originals.then(|| f.image.clone()))
        .collect();
    let images: Vec<RgbImage> = pending.iter_mut().map(|f| f.image.take()).collect();
    let mut styled = engine.stylize(prepared, &images)?;
    if let Some((optimizer, progress)) = optimizing {
        for ((image, original), frame) in styled.iter_mut().zip(&images).zip(pending.iter()) {
            let of = optimizer.iterations();
            let fast = image.take();
            *image = optimizer.next(original, fast, |iteration, _| {
                progress.iteration(frame.index, iteration, of)
            })?;
            if cancelled() {
                return Ok(false);
            }
        }
    }
    for ((mut frame, image), original) in pending.drain(..).zip(styled).zip(originals) {
        frame.image = image;
        if out.send(Styled { frame, original }).is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Steadies the styled frames in order (see stylize-motion), the motion of those behind them
/// analysed ahead on other threads; the originals travel on only for a side-by-side video.
fn steady_stage(
    mut steadier: SteadyStream<DecodedFrame>,
    side_by_side: bool,
    input: Receiver<Styled>,
    out: Sender<Styled>,
) -> Result<()> {
    let send_on = |done: Steadied<DecodedFrame>| {
        let mut frame = done.tag;
        frame.image = done.image;
        let original = side_by_side
            .then(|| Arc::try_unwrap(done.original).unwrap_or_else(|shared| (*shared).clone()));
        out.send(Styled { frame, original }).is_ok()
    };
    for mut styled in input {
        if cancelled() {
            return Ok(());
        }
        let original = styled
            .original
            .take()
            .ok_or_else(|| anyhow!("the steadier needs each frame's original"))?;
        let image = styled.frame.image.take();
        let index = styled.frame.index;
        let done = steadier
            .push(styled.frame, original, image)
            .with_context(|| format!("steadying frame {index}"))?;
        if done.is_some_and(|done| !send_on(done)) {
            return Ok(()); // the encoder stopped and reports why
        }
    }
    while let Some(done) = steadier.next_left().context("steadying the last frames")? {
        if !send_on(done) {
            return Ok(());
        }
    }
    Ok(())
}

fn encode_stage(
    targets: &EncodeTargets<'_>,
    info: &VideoInfo,
    encode: &EncodeOptions,
    input: Receiver<Styled>,
    progress: &dyn FrameProgress,
) -> Result<u64> {
    let mut writer = VideoWriter::create(targets.temp, targets.final_path, info, encode)?;
    let mut side = targets
        .side
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
