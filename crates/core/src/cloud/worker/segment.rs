//! A segments job on a worker: fetch its pieces of the input, decode its frames (from its warm-up on), style and steady them, encode its segment and upload it.
//!
//! The decoder and the encoder run on threads of their own beside the network,
//! joined by bounded channels, as in a local run. Warm-up frames (before the
//! job's range) go through the network and the steadier but not into the
//! segment, so the first frames of a job carry strokes much as a local run's
//! do; job 0 has none and matches a local run exactly.

use std::path::{Path, PathBuf};

use stylize_cloud::JobSegment;
use stylize_media::{
    DecodedFrame, EncodeOptions, PieceFrames, PixelFormatChoice, Rational, VideoCodec, VideoWriter,
};
use stylize_motion::SteadyStream;

use super::*;

/// A sign of life (a progress mark, named by the last frame styled) after the first batch and then
/// at most this often, for the coordinator's watch on lost jobs and `stylize runs`: one small write
/// a second at most, whatever the frame rate.
const MARK_EVERY: Duration = Duration::from_secs(1);

/// A frame on its way to the encoder: its number, the original (when steadying), the styled one.
type Styled = (u32, Option<RgbImage>, RgbImage);

/// Where a segments job's time went: each stage's own busy time (decoding, the network and
/// encoding overlap, so these add up to more than the job's wall time when the pipeline flows).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct SegmentTimes {
    fetch: Duration,
    decode: Duration,
    network: Duration,
    steady: Duration,
    encode: Duration,
    upload: Duration,
}

impl std::fmt::Display for SegmentTimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stages = [
            ("pieces", self.fetch),
            ("decode", self.decode),
            ("network", self.network),
            ("steady", self.steady),
            ("encode", self.encode),
            ("upload", self.upload),
        ];
        let parts: Vec<String> = stages
            .iter()
            .filter(|(name, t)| *name != "steady" || !t.is_zero())
            .map(|(name, t)| format!("{name} {:.2} s", t.as_secs_f64()))
            .collect();
        write!(f, "{}", parts.join(", "))
    }
}

impl Jobs {
    /// Styles a segments job into its segment and uploads it (a redelivery whose segment is up
    /// already does nothing more).
    pub(super) async fn style_segment(
        &self,
        job: &ReadyJob,
        segment: &JobSegment,
        lease: &MessageLease,
        near_end: &NearEnd,
    ) -> Result<JobStats, JobError> {
        let spec = &job.spec;
        let key = spec.run_id.segment_key(spec.job);
        let frames = spec.frames.len() as usize;
        if job
            .outputs
            .exists(&key)
            .await
            .context("checking for the job's segment")?
        {
            return Ok(JobStats {
                styled: 0,
                skipped: frames,
                times: None,
            });
        }
        let mut times = SegmentTimes::default();
        let scratch = tempfile::tempdir().context("creating a scratch folder")?;
        let fetching = Instant::now();
        let pieces = self.fetch_pieces(job, segment, scratch.path()).await?;
        times.fetch = fetching.elapsed();
        let options = encode_options(segment)?;
        let (piece_frames, first_info, what) =
            open_pieces(segment, spec.frames.end, pieces, options.deep_output()).await?;
        let (frames_tx, mut frames_rx) = mpsc::channel::<Result<(u32, RgbImage)>>(self.prefetch);
        let decoder = tokio::task::spawn_blocking(move || decode(piece_frames, &what, frames_tx));
        let _abort = AbortOnDrop(decoder.abort_handle());
        let out = scratch.path().join("segment.mkv");
        let (to_encoder, from_network) = std::sync::mpsc::sync_channel::<Styled>(self.prefetch);
        let encoder = tokio::task::spawn_blocking({
            let (out, segment) = (out.clone(), segment.clone());
            let job_frames = spec.frames.start..spec.frames.end;
            move || {
                encode(
                    first_info,
                    &out,
                    &segment,
                    &options,
                    job_frames,
                    from_network,
                )
            }
        });

        times.network = self
            .style_into(job, segment, lease, near_end, (&mut frames_rx, &to_encoder))
            .await?;
        drop(to_encoder);
        (times.steady, times.encode) = encoder
            .await
            .map_err(|e| anyhow!("encoder task failed: {e}"))?
            .context("encoding the segment")?;
        drop(frames_rx); // the decoder is done with a whole range; this frees it if it is not
        times.decode = decoder.await.unwrap_or_default();
        if lease.is_lost() {
            return Err(JobError::LeaseLost);
        }
        times.upload = self.upload_segment(job, &key, &out).await?;
        Ok(JobStats {
            styled: frames,
            skipped: 0,
            times: Some(times),
        })
    }

    /// Styles the decoded frames in batches and hands each, with its original when steadying, to
    /// the encoder; leaves a progress mark now and then. Stops early if the encoder has stopped.
    /// Returns the compute thread's time on the job.
    async fn style_into(
        &self,
        job: &ReadyJob,
        segment: &JobSegment,
        lease: &MessageLease,
        near_end: &NearEnd,
        (frames_rx, to_encoder): (&mut Decoded, &std::sync::mpsc::SyncSender<Styled>),
    ) -> Result<Duration, JobError> {
        let total = (job.spec.frames.end - segment.decode_from) as usize;
        let mut batches = Batches::new(
            (self, job, lease, near_end),
            frames_rx,
            total,
            segment.steady > 0.0,
        );
        let mut marks = ProgressMarks::default();
        while let Some(batch) = batches.next().await? {
            let last = *batch.numbers.last().expect("a batch holds a frame");
            let frames = batch.numbers.into_iter().zip(batch.originals);
            for ((n, original), image) in frames.zip(batch.styled) {
                // A closed channel means the encoder stopped on an error, told by the caller.
                if to_encoder.send((n, original, image)).is_err() {
                    return Ok(batches.network_time());
                }
            }
            marks.leave(job, last);
        }
        marks.finish().await;
        Ok(batches.network_time())
    }

    /// Uploads the encoded segment (published whole or not at all); returns the upload's time.
    async fn upload_segment(&self, job: &ReadyJob, key: &str, file: &Path) -> Result<Duration> {
        let bytes = tokio::fs::read(file).await.context("reading the segment")?;
        let _permit = self.transfers.acquire().await.expect("never closed");
        let uploading = Instant::now();
        job.outputs
            .put(key, Bytes::from(bytes))
            .await
            .context("uploading the segment")?;
        Ok(uploading.elapsed())
    }

    /// Downloads the job's pieces into `dir` (`piece-<index>.mkv`), `transfers` at a time.
    async fn fetch_pieces(
        &self,
        job: &ReadyJob,
        segment: &JobSegment,
        dir: &Path,
    ) -> Result<Vec<(PathBuf, stylize_media::Piece)>> {
        let fetches = segment.numbered_pieces().map(|(index, piece)| {
            let key = job.spec.run_id.piece_key(index);
            let path = dir.join(format!("piece-{index:05}.mkv"));
            let (inputs, transfers) = (job.inputs.clone(), self.transfers.clone());
            async move {
                let bytes = {
                    let _permit = transfers.acquire().await.expect("never closed");
                    inputs
                        .get(&key)
                        .await
                        .with_context(|| format!("downloading piece {index} ({key})"))?
                };
                tokio::fs::write(&path, &bytes)
                    .await
                    .with_context(|| format!("writing {}", path.display()))?;
                let plan = stylize_media::Piece {
                    first_frame: piece.first_frame,
                    frames: piece.frames,
                    hidden: piece.hidden,
                };
                Ok::<_, anyhow::Error>((path, plan))
            }
        });
        futures::future::try_join_all(fetches).await
    }
}

/// Signs of life for a job: a progress mark (named by the last frame styled) after the first batch
/// and then at most every `MARK_EVERY`, written beside the styling so a slow write never keeps
/// the network waiting; one at a time.
#[derive(Default)]
struct ProgressMarks {
    last: Option<Instant>,
    writing: Option<tokio::task::JoinHandle<()>>,
}

impl ProgressMarks {
    /// Leaves a mark for frame `n` unless one was left less than `MARK_EVERY` ago or is still
    /// being written; a failed write only costs the sign of life.
    fn leave(&mut self, job: &ReadyJob, n: u32) {
        let due = self.last.is_none_or(|at| at.elapsed() >= MARK_EVERY);
        if !due || self.writing.as_ref().is_some_and(|w| !w.is_finished()) {
            return;
        }
        let (outputs, key) = (job.outputs.clone(), job.spec.run_id.progress_mark_key(n));
        self.writing = Some(tokio::spawn(async move {
            let _ = outputs.put(&key, Bytes::from_static(b"1")).await;
        }));
        self.last = Some(Instant::now());
    }

    /// Waits for the mark being written, so none lands after the job's segment.
    async fn finish(self) {
        if let Some(writing) = self.writing {
            let _ = writing.await;
        }
    }
}

/// The run's encoder settings, as its manifest records them (resolved for the input already).
fn encode_options(segment: &JobSegment) -> Result<EncodeOptions> {
    let (codec, pixel_format) = (&segment.encode.codec, &segment.encode.pixel_format);
    Ok(EncodeOptions {
        codec: VideoCodec::parse(codec)
            .ok_or_else(|| anyhow!("codec {codec:?} is not one this build encodes"))?,
        crf: segment.encode.crf,
        preset: segment.encode.preset.clone(),
        pixel_format: PixelFormatChoice::parse(pixel_format).ok_or_else(|| {
            anyhow!("pixel format {pixel_format:?} is not one this build encodes")
        })?,
        follow_source_depth: false,
    })
}

/// The job's pieces ready to decode from `segment.decode_from` to `job_end`, the first piece's
/// probe, and what decoding them is called in errors. The first piece lends the encoder its colour
/// tags and size: it is probed once, for decoder and encoder, as each probe decodes frames.
async fn open_pieces(
    segment: &JobSegment,
    job_end: u32,
    pieces: Vec<(PathBuf, stylize_media::Piece)>,
    deep: bool,
) -> Result<(PieceFrames, stylize_media::VideoInfo, String)> {
    let (first, last) = (
        segment.first_piece,
        segment.first_piece + segment.pieces.len() as u32 - 1,
    );
    let what = match first == last {
        true => format!("decoding piece {first} of the input"),
        false => format!("decoding pieces {first}..={last} of the input"),
    };
    let first_piece = pieces
        .first()
        .map(|(path, _)| path.clone())
        .unwrap_or_default();
    let info = tokio::task::spawn_blocking(move || stylize_media::probe(&first_piece))
        .await
        .map_err(|e| anyhow!("probe task failed: {e}"))?
        .with_context(|| what.clone())?;
    let frames = PieceFrames::new(pieces, segment.decode_from..job_end)
        .keep_depth(deep)
        .probed(info.clone());
    Ok((frames, info, what))
}

/// Decodes the job's frames into `out` (an error as the last item); returns the time spent
/// decoding (not waiting for the network to take frames).
fn decode(
    mut frames: PieceFrames,
    what: &str,
    out: mpsc::Sender<Result<(u32, RgbImage)>>,
) -> Duration {
    let mut busy = Duration::ZERO;
    loop {
        let decoding = Instant::now();
        let Some(frame) = frames.next() else {
            return busy;
        };
        busy += decoding.elapsed();
        let item = frame
            .map(|(n, frame)| (n, frame.image))
            .map_err(|e| anyhow::Error::from(e).context(what.to_owned()));
        let failed = item.is_err();
        if out.blocking_send(item).is_err() || failed {
            return busy;
        }
    }
}

/// Steadies the styled frames in order and encodes those of `job_frames` into `out`, with the
/// run's encoder settings; the first piece (`info`, its probe) lends its colour tags and size.
/// Returns the time spent steadying and encoding.
fn encode(
    mut info: stylize_media::VideoInfo,
    out: &Path,
    segment: &JobSegment,
    options: &EncodeOptions,
    job_frames: std::ops::Range<u32>,
    frames: std::sync::mpsc::Receiver<Styled>,
) -> Result<(Duration, Duration)> {
    let rate = Rational::new(segment.frame_rate.num as i32, segment.frame_rate.den as i32);
    if rate.is_positive() {
        info.frame_rate = rate;
        info.time_base = rate.invert();
    }
    let start = job_frames.start;
    let mut writer = VideoWriter::create(out, out, &info, options)?;
    let mut steadier = SteadyStream::at(segment.steady);
    let (mut steadying, mut encoding) = (Duration::ZERO, Duration::ZERO);
    let mut write = |n: u32, image: RgbImage| -> Result<()> {
        if n >= start {
            let started = Instant::now();
            let frame = DecodedFrame {
                index: u64::from(n - start),
                pts: None,
                image,
            };
            writer.write(&frame)?;
            encoding += started.elapsed();
        }
        Ok(())
    };
    for (n, original, styled) in frames {
        let Some((steadier, original)) = steadier.as_mut().zip(original) else {
            write(n, styled)?;
            continue;
        };
        let started = Instant::now();
        let done = steadier.push(n, original, styled);
        steadying += started.elapsed();
        if let Some(done) = done.with_context(|| format!("steadying frame {n}"))? {
            write(done.tag, done.image)?;
        }
    }
    while let Some(steadier) = steadier.as_mut() {
        let started = Instant::now();
        let done = steadier.next_left().context("steadying the last frames")?;
        steadying += started.elapsed();
        let Some(done) = done else { break };
        write(done.tag, done.image)?;
    }
    let started = Instant::now();
    writer.finish()?;
    Ok((steadying, encoding + started.elapsed()))
}
