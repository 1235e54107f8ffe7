//! The coordinator: `stylize INPUT... --style X --cloud STORAGE` uploads frames, queues jobs, follows them, downloads styled frames and restitches each video.
//!
//! Per input: hash the file (the run id), count its frames and compute the
//! style once (new runs only), write the manifest, then decode the frames
//! again and upload those storage lacks, queueing each job as soon as its
//! frames are all up, so workers start before the upload ends. Then follow the
//! done markers, download each done job's styled frames into a spool folder,
//! and restitch: decode the input a third time for its timestamps, swap in the
//! styled picture, encode with the original audio copied. Inputs upload one
//! at a time but wait and restitch side by side, so each video is written as
//! soon as its own jobs are done.
use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use stylize_cloud::{
    default_frames_per_job, existing_frames, load_manifest, publish_manifest, sha256_file,
    BlobStore, Bytes, Cloud, DoneMarker, Error as CloudError, FrameFormat, FrameRate, RunId,
    RunManifest, RunProgress,
};
use stylize_media::{EncodeOptions, FrameReader, RgbImage, VideoInfo, VideoWriter};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use super::bookkeeping::{self, LostJobs, Standing, Standstill, StandstillAction};
use super::look;
use super::patience::Patience;
use super::{blocking, codec, StorageOptions};
use crate::cancel::cancelled;
use crate::compare::SideBySideWriter;
use crate::inputs::{check_inputs, CheckedInput, RunConfig};
use crate::look::LookConfig;
use crate::output::{
    forget_live_temp, track_live_temp, work_name, OutputPlan, TempGuard, WorkKind,
};
use crate::units::clock;
use stylize_motion::{Steadied, SteadyStream};

mod segments;

/// How often the coordinator reads the markers while it waits.
const POLL: Duration = Duration::from_secs(1);
/// The wait after a poll that found jobs newly done: with many workers jobs finish in quick
/// succession, and the last ones are what the run's end waits for. Back to [`POLL`] by doubling
/// while nothing changes.
const POLL_SOON: Duration = Duration::from_millis(250);
/// The wait throughout the last round (every job left is running): its end is the run's end, and
/// a poll is a few listings, cheap beside a run's wait on it (four a second left the output
/// 0.12 s late on average).
const POLL_LAST: Duration = Duration::from_millis(100);
/// Styled frames the coordinator downloads ahead of the restitcher. The restitcher takes them in
/// order, so when an early job lags, later done jobs wait in storage rather than fill the disk
/// beside the output; this is seconds of encoding, enough to keep the encoder fed.
const DOWNLOAD_AHEAD_FRAMES: u32 = 256;

/// How a cloud run is submitted and collected (besides the run's look and encoder settings).
#[derive(Debug, Clone)]
pub struct CoordinatorOptions {
    pub storage: StorageOptions,
    /// Container for the styled frames and markers, when not the run container.
    pub output_container: Option<String>,
    /// Frames per job; by default about 96 jobs per video.
    pub frames_per_job: Option<u32>,
    pub frame_format: FrameFormat,
    /// Blob transfers in flight at once.
    pub transfers: u32,
    /// Upload and queue, then stop without waiting for the result.
    pub no_wait: bool,
    /// Also write each input's side-by-side video.
    pub compare: bool,
    /// How long a job may show no progress before its message is presumed lost.
    pub requeue_after: Duration,
    /// How long to keep retrying storage that is unreachable or throttling.
    pub storage_patience: Duration,
    /// How the video travels through storage.
    pub transport: Transport,
    /// What computes a picture's style (a presets style needs nothing).
    pub style_network: Arc<dyn look::StyleNetwork>,
}

/// How a cloud run's video travels through storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// Pieces of the input's own bitstream up, encoded segments down; the coordinator only cuts
    /// and joins, so it keeps up with many GPU workers (the default).
    #[default]
    Segments,
    /// Every frame up and down as a picture (`--frame-format`), restitched and encoded here.
    Frames,
}

/// Where the coordinator tells what it does (the binary draws progress bars from it).
pub trait Reporter: Send + Sync {
    /// A line for the user (resumes, retries, hints).
    fn say(&self, line: &str);
    /// The progress display of one input, by its file name.
    fn input(&self, name: &str) -> Box<dyn InputProgress>;
}

/// One input's progress: a stage message and a count of frames.
pub trait InputProgress: Send + Sync {
    /// What is happening now (`"hashing the input"`, jobs queued/running/done...).
    fn message(&self, text: &str);
    /// A new count starts (frames to upload, frames to style), with its rate reset.
    fn restart(&self, total: u64);
    /// Frames counted so far.
    fn set(&self, done: u64);
    /// One more frame counted.
    fn advance(&self);
    /// The input is finished; the display goes away.
    fn finish(&self);
}

/// What became of one input.
#[derive(Debug)]
pub enum Outcome {
    Written {
        output: PathBuf,
        /// The side-by-side video, with `compare`.
        side: Option<PathBuf>,
        frames: u64,
        elapsed: Duration,
        run: RunId,
        jobs: u32,
        workers: usize,
        /// Bytes uploaded and downloaded.
        up: u64,
        down: u64,
    },
    /// Uploaded and queued (`no_wait`).
    Submitted { run: RunId, queued: usize },
}

struct Shared {
    cloud: Cloud,
    storage: String,
    look: LookConfig,
    encode: EncodeOptions,
    options: CoordinatorOptions,
    transfers: Arc<Semaphore>,
    /// Inputs upload one at a time: the coordinator's CPU and uplink are shared.
    upload_slot: Semaphore,
    reporter: Arc<dyn Reporter>,
    /// Storage outages and throttling are waited out, up to `--storage-patience`.
    patience: Arc<Patience>,
}

impl Shared {
    fn say(&self, line: &str) {
        self.reporter.say(line);
    }
}

/// Runs every input of `config` through the cloud; one result per input, in order (errors
/// name the input).
pub fn run(
    config: &RunConfig,
    options: &CoordinatorOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<Vec<Result<Outcome>>> {
    let mut options = options.clone();
    if config.look.method != crate::optimize::Method::Fast {
        if config.look.style_picture().is_none() {
            bail!("{}", crate::optimize::NEEDS_A_PICTURE);
        }
        // A job of the slow method is a few minutes of a GPU's work, not a fraction of a second.
        options.frames_per_job = options.frames_per_job.or(Some(OPTIMIZE_FRAMES_PER_JOB));
    }
    let options = &options;
    let (storage, cloud) = options.storage.open()?;
    // Same up-front checks as local mode: every input probed before any work.
    let inputs: Vec<_> = config
        .jobs
        .iter()
        .map(|j| j.input.clone())
        .zip(check_inputs(config, options.compare))
        .collect();
    let shared = Arc::new(Shared {
        cloud,
        storage: storage.to_string(),
        look: config.look.clone(),
        encode: config.encode.clone(),
        options: options.clone(),
        transfers: Arc::new(Semaphore::new(options.transfers as usize)),
        upload_slot: Semaphore::new(1),
        patience: Arc::new(Patience::new(options.storage_patience, {
            let reporter = reporter.clone();
            Arc::new(move |line: &str| reporter.say(line))
        })),
        reporter,
    });
    super::runtime()?.block_on(async {
        if inputs.iter().any(|(_, c)| c.is_ok()) {
            // The first request: a wrong key or an expired SAS stops here, in one line.
            shared
                .cloud
                .create_if_missing()
                .await
                .with_context(|| format!("cannot use {storage}"))?;
        }
        let handles: Vec<_> = inputs
            .into_iter()
            .map(|(input, checked)| {
                let shared = shared.clone();
                tokio::spawn(async move {
                    process_input(shared, checked?)
                        .await
                        .with_context(|| input.display().to_string())
                })
            })
            .collect();
        let mut results = Vec::new();
        for handle in handles {
            results.push(
                handle
                    .await
                    .unwrap_or_else(|e| Err(anyhow!("task failed: {e}"))),
            );
        }
        Ok(results)
    })
}

async fn process_input(shared: Arc<Shared>, input: CheckedInput) -> Result<Outcome> {
    let CheckedInput { info, plan, side } = input;
    let started = Instant::now();
    let name = info
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bar = shared.reporter.input(&name);
    let result =
        submit_and_collect(&shared, &info, &plan, side.as_ref(), bar.as_ref(), started).await;
    bar.finish();
    result
}

async fn submit_and_collect(
    shared: &Arc<Shared>,
    info: &VideoInfo,
    plan: &OutputPlan,
    side: Option<&OutputPlan>,
    bar: &dyn InputProgress,
    started: Instant,
) -> Result<Outcome> {
    bar.message("waiting for its turn to upload");
    let slot = shared.upload_slot.acquire().await.expect("never closed");
    let (manifest, resumed) = open_run(shared, info, bar).await?;
    let outputs = shared
        .cloud
        .outputs_of(manifest.output_container.as_deref())?;
    if manifest.output_container.is_some() {
        stylize_cloud::made_or_not_ours_to_make(outputs.create_if_missing().await)
            .context("creating the output container")?;
    }
    let mut progress = RunProgress::load(outputs.as_ref(), &manifest).await?;
    let reupload =
        forget_failures(shared, info, &manifest, outputs.as_ref(), &mut progress).await?;
    // Jobs queued by an earlier (killed or --no-wait) coordinator are still
    // on the queue: sending them again would only make duplicates.
    let to_queue: BTreeSet<u32> = progress.unqueued().into_iter().collect();
    if resumed {
        shared.say(&format!(
            "{}: resuming run {}: {} of {} jobs done, {} to queue",
            info.path.display(),
            manifest.run_id,
            progress.done.len(),
            manifest.job_count,
            to_queue.len()
        ));
    }
    let mut up = 0;
    if !to_queue.is_empty() && manifest.segments.is_some() {
        let queue = (&to_queue, &reupload);
        up = segments::upload_and_enqueue(shared, info, plan, &manifest, queue, bar).await?;
    } else if !to_queue.is_empty() {
        let blobs = shared.cloud.blobs.as_ref();
        let present = existing_frames(blobs, &manifest.run_id.frames_prefix()).await?;
        let shape = (manifest.frame_count, manifest.frames_per_job);
        let need = bookkeeping::frames_to_upload(shape, &to_queue, &present, &reupload);
        up = upload_and_enqueue(shared, info, &manifest, need, &to_queue, bar).await?;
    }
    drop(slot);
    if shared.options.no_wait {
        // Everything pending is on the queue now: sent just now or by an earlier run.
        return Ok(Outcome::Submitted {
            run: manifest.run_id.clone(),
            queued: progress.pending().len(),
        });
    }
    let (frames, down, workers) = match manifest.segments {
        Some(_) => segments::follow_and_join(shared, info, plan, &manifest, bar).await?,
        None => follow_and_restitch(shared, info, plan, side, &manifest, bar).await?,
    };
    Ok(Outcome::Written {
        output: plan.final_path.clone(),
        side: side.map(|s| s.final_path.clone()),
        frames,
        elapsed: started.elapsed(),
        run: manifest.run_id.clone(),
        jobs: manifest.job_count,
        workers,
        up,
        down,
    })
}

/// The run for this input and look: the one in storage (resumed: true), or a new one.
async fn open_run(
    shared: &Arc<Shared>,
    info: &VideoInfo,
    bar: &dyn InputProgress,
) -> Result<(RunManifest, bool)> {
    bar.message("hashing the input");
    let path = info.path.clone();
    let sha = blocking(move || Ok(sha256_file(&path)?)).await?;
    let pieces = segments::plan(shared, info).await?;
    let mut style_ref = look::style_ref(&shared.look);
    if pieces.is_some() {
        style_ref.push_str(&segments::run_ref_suffix(shared, info));
    }
    let params = look::params_spec(&shared.look.params, &shared.look.method);
    let run_id = RunId::derive(&sha, &style_ref, &params);
    match load_manifest(shared.cloud.blobs.as_ref(), &run_id).await {
        Ok(m) => {
            if m.input_sha256 != sha || (m.width, m.height) != (info.width, info.height) {
                bail!("run {run_id} in storage is for another video (a hash collision or a tampered manifest)");
            }
            note_kept_settings(shared, info, &m);
            Ok((m, true))
        }
        Err(CloudError::NotFound(_)) => {
            let run = (&sha[..], &style_ref[..], params, run_id);
            let m = new_manifest(shared, info, run, pieces.as_ref(), bar).await?;
            Ok((m, false))
        }
        Err(e) => Err(e.into()),
    }
}

/// A resumed run keeps the settings it was made with; says so when this command asked for others.
fn note_kept_settings(shared: &Shared, info: &VideoInfo, m: &RunManifest) {
    let asked = &shared.options;
    let differs = m.frame_format != asked.frame_format
        || asked.frames_per_job.is_some_and(|n| n != m.frames_per_job)
        || asked
            .output_container
            .as_ref()
            .is_some_and(|c| Some(c) != m.output_container.as_ref());
    if differs {
        shared.say(&format!(
            "{}: run {} exists and keeps its own settings: {} frames, {} frames per job, outputs in {}",
            info.path.display(),
            m.run_id,
            m.frame_format.extension(),
            m.frames_per_job,
            m.output_container.as_deref().unwrap_or("the run's container")
        ));
    }
}

/// A re-run retries what failed last time: the failed markers go, and the frames of those jobs
/// are returned for uploading afresh in case a damaged frame was the cause.
async fn forget_failures(
    shared: &Shared,
    info: &VideoInfo,
    manifest: &RunManifest,
    outputs: &dyn BlobStore,
    progress: &mut RunProgress,
) -> Result<BTreeSet<u32>> {
    let mut reupload = BTreeSet::new();
    if progress.failed.is_empty() {
        return Ok(reupload);
    }
    for (&job, marker) in &progress.failed {
        outputs
            .delete(&manifest.run_id.failed_key(job, &manifest.incarnation))
            .await?;
        outputs.delete(&manifest.run_id.queued_key(job)).await?;
        progress.queued.remove(&job);
        reupload.extend(marker.frames.frames());
    }
    shared.say(&format!(
        "{}: retrying {} job(s) of run {} that failed before",
        info.path.display(),
        progress.failed.len(),
        manifest.run_id
    ));
    progress.failed.clear();
    Ok(reupload)
}

/// A new run: count the frames (the manifest holds the exact number, which the
/// container's own count may not be), compute the style, publish the manifest.
async fn new_manifest(
    shared: &Arc<Shared>,
    info: &VideoInfo,
    (sha, style_ref, params, run_id): (&str, &str, stylize_cloud::StyleParamsSpec, RunId),
    pieces: Option<&(stylize_media::SplitPlan, u32)>,
    bar: &dyn InputProgress,
) -> Result<RunManifest> {
    bar.message("counting frames");
    let want_first = shared.look.needs_first_frame();
    let scan_info = info.clone();
    let (count, first) = match pieces {
        // The pieces counted the frames; only the first is decoded, if the style needs it.
        Some((plan, _)) => {
            let count = plan.frame_count;
            let first = match want_first {
                true => blocking(move || first_frame(&scan_info)).await?,
                false => None,
            };
            (count, first)
        }
        None => blocking(move || scan(&scan_info, want_first)).await?,
    };
    bar.message("preparing the style");
    let style = match look::without_network(&shared.look) {
        Some(style) => style?,
        None => compute_style(shared.clone(), first).await?,
    };
    let frames_per_job = match pieces {
        Some((_, per_job)) => *per_job,
        None => shared
            .options
            .frames_per_job
            .unwrap_or_else(|| default_frames_per_job(count)),
    };
    let rate = if info.frame_rate.is_positive() {
        info.frame_rate
    } else {
        stylize_media::Rational::new(25, 1)
    };
    let manifest = RunManifest::new(
        info.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sha,
        count,
        (info.width, info.height),
        FrameRate {
            num: rate.num as u32,
            den: rate.den as u32,
        },
        shared.options.frame_format,
        frames_per_job,
        style_ref,
        style,
        params,
    )?;
    let manifest = match &shared.options.output_container {
        Some(container) => manifest.with_output_container(container)?,
        None => manifest,
    };
    let manifest = match pieces {
        Some((plan, _)) => manifest.with_segments(segments::spec(shared, info, plan))?,
        None => manifest,
    };
    debug_assert_eq!(manifest.run_id, run_id);
    store_style_picture(shared, &run_id).await?;
    // Another coordinator may have published the same run meanwhile: theirs is in force.
    Ok(publish_manifest(shared.cloud.blobs.as_ref(), &manifest).await?)
}

/// The run's style computed by the network (a picture's style).
async fn compute_style(
    shared: Arc<Shared>,
    first: Option<RgbImage>,
) -> Result<stylize_cloud::StyleSpec> {
    blocking(move || {
        let network = &shared.options.style_network;
        network.compute(&shared.look, first.as_ref())
    })
    .await
}

/// `--method optimize`: the style picture beside the run, before any job can ask for it
/// (lossless PNG, so workers aim at the picture local mode aims at).
async fn store_style_picture(shared: &Arc<Shared>, run: &RunId) -> Result<()> {
    let optimizing = shared.look.method != crate::optimize::Method::Fast;
    let Some(picture) = shared.look.style_picture().filter(|_| optimizing) else {
        return Ok(());
    };
    let picture = picture.clone();
    let bytes = Bytes::from(blocking(move || codec::encode(FrameFormat::Png, &picture)).await?);
    let what = "uploading the style picture".to_string();
    put_patiently(
        &shared.patience,
        shared.cloud.blobs.as_ref(),
        &run.style_picture_key(),
        bytes,
        what,
    )
    .await?;
    Ok(())
}

/// The input's first frame, for a style that needs it.
fn first_frame(info: &VideoInfo) -> Result<Option<RgbImage>> {
    let mut reader = FrameReader::open(info)?;
    Ok(Some(
        reader
            .next()
            .ok_or_else(|| anyhow!("{}: no frame could be decoded", info.path.display()))??
            .image,
    ))
}

/// Decodes the whole input once: its exact frame count, and the first frame when the style needs
/// it. A file cut short is refused here, by the same rule as local mode.
fn scan(info: &VideoInfo, want_first: bool) -> Result<(u32, Option<RgbImage>)> {
    let mut count: u32 = 0;
    let mut first = None;
    let mut reader = FrameReader::open(info)?;
    for frame in reader.by_ref() {
        if cancelled() {
            bail!("interrupted");
        }
        let frame = frame?;
        if want_first && first.is_none() {
            first = Some(frame.image);
        }
        count = count
            .checked_add(1)
            .ok_or_else(|| anyhow!("more than 2^32 frames"))?;
    }
    crate::pipeline::check_whole(info, u64::from(count), reader.decoded_duration_secs())?;
    Ok((count, first))
}

/// Uploads the frames in `need` (decode, encode and upload overlapped, at most
/// `transfers` in flight) and queues each job of `to_queue` once all its
/// frames are in storage. Returns the bytes uploaded.
async fn upload_and_enqueue(
    shared: &Arc<Shared>,
    info: &VideoInfo,
    manifest: &RunManifest,
    need: BTreeSet<u32>,
    to_queue: &BTreeSet<u32>,
    bar: &dyn InputProgress,
) -> Result<u64> {
    let per_job = manifest.frames_per_job;
    let mut missing = bookkeeping::missing_per_job(to_queue, &need, per_job);
    let mut queued = 0;
    // Jobs whose frames are all up already (a resumed run) go first.
    for job in bookkeeping::ready_jobs(&missing) {
        enqueue(shared, manifest, job).await?;
        queued += 1;
    }
    bar.restart(need.len() as u64);
    bar.message(&format!("frames uploaded · {queued} jobs queued"));
    let Some(&last_needed) = need.last() else {
        return Ok(0);
    };
    let (tx, mut rx) =
        mpsc::channel::<Result<(u32, RgbImage)>>((shared.options.transfers as usize).max(2));
    // Only PNG stores 16-bit samples: a deep output over JPEG or WebP frames gets 8 bits anyway.
    let deep = manifest.frame_format == FrameFormat::Png && shared.encode.deep_output_for(info);
    let decoder = spawn_frame_decoder(info, deep, manifest.frame_count, need, last_needed, tx);
    let mut uploads: JoinSet<Result<(u32, u64)>> = JoinSet::new();
    let mut bytes_up = 0u64;
    // Counts one finished upload; the job it completes, if any.
    let mut finish =
        |result: Result<Result<(u32, u64)>, tokio::task::JoinError>| -> Result<Option<u32>> {
            let (n, size) = result.map_err(|e| anyhow!("upload task failed: {e}"))??;
            bytes_up += size;
            bar.advance();
            Ok(bookkeeping::frame_uploaded(&mut missing, n, per_job))
        };
    let mut complete = Vec::new();
    while let Some(item) = rx.recv().await {
        if cancelled() {
            bail!("interrupted");
        }
        spawn_upload(shared, manifest, &mut uploads, item?).await;
        while let Some(done) = uploads.try_join_next() {
            complete.extend(finish(done)?);
        }
        for job in complete.drain(..) {
            enqueue(shared, manifest, job).await?;
            queued += 1;
            bar.message(&format!("frames uploaded · {queued} jobs queued"));
        }
    }
    while let Some(done) = uploads.join_next().await {
        complete.extend(finish(done)?);
    }
    for job in complete.drain(..) {
        enqueue(shared, manifest, job).await?;
    }
    decoder
        .await
        .map_err(|e| anyhow!("decoder thread failed: {e}"))?;
    if cancelled() {
        bail!("interrupted");
    }
    if let Some((job, left)) = missing.iter().find(|(_, left)| **left > 0) {
        bail!("job {job} still lacks {left} frames after the upload");
    }
    Ok(bytes_up)
}

/// Starts one frame's upload once a transfer slot is free (the slot is held until it ends).
async fn spawn_upload(
    shared: &Arc<Shared>,
    manifest: &RunManifest,
    uploads: &mut JoinSet<Result<(u32, u64)>>,
    (n, frame): (u32, RgbImage),
) {
    let permit = shared
        .transfers
        .clone()
        .acquire_owned()
        .await
        .expect("never closed");
    let key = manifest.run_id.frame_key(n, manifest.frame_format);
    let upload = upload_frame(
        shared.cloud.blobs.clone(),
        shared.patience.clone(),
        key,
        manifest.frame_format,
        (n, frame),
    );
    uploads.spawn(async move {
        let _permit = permit;
        upload.await
    });
}

/// Whether a frames run's frames keep the input's full depth: for an output that holds it, over
/// PNG (JPEG and WebP store 8 bits). The originals the restitcher reads beside the styled frames
/// follow suit, so its steadier sees what local mode's does.
fn frames_travel_deep(encode: &EncodeOptions, info: &VideoInfo, manifest: &RunManifest) -> bool {
    manifest.frame_format == FrameFormat::Png && encode.deep_output_for(info)
}

/// Frames per job of `--method optimize` unless asked: at 720×720 about 1.5–3 s a frame on an
/// H100-class GPU at the default iterations, so a job is a few minutes' work.
const OPTIMIZE_FRAMES_PER_JOB: u32 = 60;

/// Decodes the input on its own thread (with the full depth when `deep`) and sends the frames in
/// `need` (then stops after `last_needed`). The bounded channel keeps it at most a few frames ahead
/// of the uploads, so memory stays flat; an error is sent as the last item.
fn spawn_frame_decoder(
    info: &VideoInfo,
    deep: bool,
    frame_count: u32,
    need: BTreeSet<u32>,
    last_needed: u32,
    tx: mpsc::Sender<Result<(u32, RgbImage)>>,
) -> tokio::task::JoinHandle<()> {
    let info = info.clone();
    tokio::task::spawn_blocking(move || {
        let outcome = (|| -> Result<()> {
            for (n, frame) in (0u32..).zip(FrameReader::open(&info)?.keep_depth(deep)) {
                if cancelled() {
                    bail!("interrupted");
                }
                let frame = frame?;
                if n >= frame_count {
                    bail!("the input now decodes to more than the run's {frame_count} frames");
                }
                if need.contains(&n) && tx.blocking_send(Ok((n, frame.image))).is_err() {
                    return Ok(()); // the uploader stopped and reports why
                }
                // The count was checked when the run was made (same file, same hash),
                // so a resumed run stops decoding after its last missing frame.
                if n >= last_needed {
                    return Ok(());
                }
            }
            bail!("the input decodes to fewer frames than the run's {frame_count}")
        })();
        if let Err(e) = outcome {
            let _ = tx.blocking_send(Err(e));
        }
    })
}

/// Encodes one input frame in the run's frame format and uploads it; its number and size.
async fn upload_frame(
    blobs: Arc<dyn BlobStore>,
    patience: Arc<Patience>,
    key: String,
    format: FrameFormat,
    (n, frame): (u32, RgbImage),
) -> Result<(u32, u64)> {
    let bytes = Bytes::from(blocking(move || codec::encode(format, &frame)).await?);
    let what = format!("uploading frame {n}");
    let size = put_patiently(&patience, blobs.as_ref(), &key, bytes, what).await?;
    Ok((n, size))
}

/// Uploads `bytes` to `key`, riding out storage trouble (`what` names it in what is said); its size.
async fn put_patiently(
    patience: &Patience,
    blobs: &dyn BlobStore,
    key: &str,
    bytes: Bytes,
    what: String,
) -> Result<u64> {
    let size = bytes.len() as u64;
    patience
        .retry(&what, || blobs.put(key, bytes.clone()))
        .await
        .context(what)?;
    Ok(size)
}

/// Downloads `key` into the file at `path` once a transfer slot is free, riding out storage
/// trouble (`what` names it in what is said); its size.
async fn get_patiently_to_file(
    patience: &Patience,
    transfers: &Semaphore,
    blobs: &dyn BlobStore,
    (key, path): (&str, &std::path::Path),
    what: String,
) -> Result<u64> {
    let _permit = transfers.acquire().await.expect("never closed");
    patience
        .retry(&what, || blobs.get_to_file(key, path))
        .await
        .context(what)
}

async fn enqueue(shared: &Shared, manifest: &RunManifest, job: u32) -> Result<()> {
    super::enqueue(&shared.cloud, manifest, job, &shared.patience).await
}

/// Where downloaded styled frames wait for the encoder: a hidden folder beside
/// the output (same disk as the result, not a small /tmp), removed on drop.
struct Spool(PathBuf);

impl Spool {
    fn create(plan: &OutputPlan) -> Result<Spool> {
        let dir = work_name(&plan.final_path, WorkKind::Frames, None);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create the download folder", dir.display()))?;
        track_live_temp(&dir);
        Ok(Spool(dir))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        forget_live_temp(&self.0);
    }
}

/// A styled frame downloaded into the spool: its number, file and size.
type Downloaded = (u32, PathBuf, u64);

/// Follows the run until every job is done (downloading each done job's frames
/// and feeding the restitcher) or until every job is settled with some failed.
/// Returns frames written, bytes downloaded and how many workers took part.
async fn follow_and_restitch(
    shared: &Arc<Shared>,
    info: &VideoInfo,
    plan: &OutputPlan,
    side: Option<&OutputPlan>,
    manifest: &RunManifest,
    bar: &dyn InputProgress,
) -> Result<(u64, u64, usize)> {
    let spool = Spool::create(plan)?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<(u32, PathBuf)>();
    let written = Arc::new(AtomicU64::new(0));
    let restitcher = tokio::task::spawn_blocking({
        let (info, plan, side, encode, manifest, written) = (
            info.clone(),
            plan.clone(),
            side.cloned(),
            shared.encode.clone(),
            manifest.clone(),
            written.clone(),
        );
        let steady = shared.look.steady;
        move || {
            let outputs = RestitchOutputs::create(&info, &plan, side.as_ref(), &encode)?;
            let deep = frames_travel_deep(&encode, &info, &manifest);
            let originals = FrameReader::open(&info)?.keep_depth(deep);
            restitch(originals, outputs, &manifest, steady, ready_rx, &written)
        }
    });
    bar.restart(u64::from(manifest.frame_count));
    let mut follow = Follow::new(shared, info, manifest, bar)?;
    let mut downloads = Downloads::default();
    let mut next_poll = tokio::time::Instant::now();
    // The loop's errors wait until the restitcher has stopped (it sees the
    // channel close), so its temporary file is gone before the error is told.
    let followed: Result<()> = async {
        loop {
            if cancelled() {
                bail!("interrupted; run {} goes on in storage, and re-running the same command picks it up", manifest.run_id);
            }
            if tokio::time::Instant::now() >= next_poll {
                follow.poll(written.load(Ordering::Relaxed)).await?;
                next_poll = tokio::time::Instant::now() + follow.next_wait();
            }
            // Checked on every pass, so the window moves as soon as frames are encoded.
            downloads.start_within_reach(&follow, written.load(Ordering::Relaxed), &spool.0);
            let all_fetched = downloads.tasks.is_empty()
                && downloads.started.len() as u32 == manifest.job_count;
            if restitcher.is_finished() || (follow.progress.is_complete() && all_fetched) {
                return Ok(());
            }
            tokio::select! {
                Some(done) = downloads.tasks.join_next() => {
                    let (n, path, size) = done.map_err(|e| anyhow!("download task failed: {e}"))??;
                    downloads.bytes += size;
                    // The restitcher may have stopped on an error, reported below.
                    let _ = ready_tx.send((n, path));
                }
                () = tokio::time::sleep_until(next_poll) => {}
            }
        }
    }
    .await;
    // Downloads still in flight must end before the spool folder is removed (on any return),
    // or a late write could recreate a file in it.
    downloads.tasks.shutdown().await;
    drop(ready_tx);
    let restitched = restitcher
        .await
        .map_err(|e| anyhow!("restitch thread failed: {e}"))?;
    followed?;
    let frames = restitched?;
    let workers = count_workers(&follow).await;
    drop(spool);
    Ok((frames, downloads.bytes, workers))
}

/// What the coordinator knows of a run it follows, refreshed by each [`Follow::poll`].
struct Follow<'a> {
    shared: &'a Arc<Shared>,
    info: &'a VideoInfo,
    manifest: &'a RunManifest,
    bar: &'a dyn InputProgress,
    outputs: Arc<dyn BlobStore>,
    progress: RunProgress,
    styled: BTreeSet<u32>,
    standstill: Standstill,
    lost: LostJobs,
    polls: u64,
    /// Done jobs at the last poll, and the wait before the next one.
    pace: (usize, Duration),
    /// Jobs still waiting on the queue at the last poll: none, and the run is in its last round.
    queued_left: usize,
}

impl<'a> Follow<'a> {
    fn new(
        shared: &'a Arc<Shared>,
        info: &'a VideoInfo,
        manifest: &'a RunManifest,
        bar: &'a dyn InputProgress,
    ) -> Result<Self> {
        Ok(Follow {
            shared,
            info,
            manifest,
            bar,
            outputs: shared
                .cloud
                .outputs_of(manifest.output_container.as_deref())?,
            progress: RunProgress::default(),
            styled: BTreeSet::new(),
            standstill: Standstill::new(Instant::now()),
            lost: LostJobs::new(shared.options.requeue_after),
            polls: 0,
            pace: (0, POLL),
            queued_left: usize::MAX,
        })
    }

    /// How long to wait before the next poll: [`POLL_SOON`] after a poll that found jobs newly
    /// done, doubling back to [`POLL`] while none are; [`POLL_LAST`] throughout the last round
    /// (every job left is running), whose end is the run's end.
    fn next_wait(&mut self) -> Duration {
        let (seen, wait) = self.pace;
        let done = self.progress.done.len();
        let wait = match (self.queued_left == 0, done > seen) {
            (true, _) => POLL_LAST,
            (false, true) => POLL_SOON,
            (false, false) => (wait * 2).min(POLL),
        };
        self.pace = (done, wait);
        wait
    }

    /// Reads the markers (and now and then the styled frames), shows where the run stands, and
    /// acts on failures and standstills. `written`: frames restitched so far.
    async fn poll(&mut self, written: u64) -> Result<()> {
        let (manifest, run) = (self.manifest, &self.manifest.run_id);
        self.polls += 1;
        let (done_prefixes, styled_prefixes) = self.prefixes_to_list(written);
        let outputs = self.outputs.as_ref();
        match self
            .progress
            .refresh(outputs, manifest, &done_prefixes)
            .await
        {
            Ok(()) => self.shared.patience.recovered(),
            // Trouble in a poll is no reason to give up on the run; it is told, and nothing is
            // decided on what the failed poll could not see.
            Err(e) if e.is_retryable() => {
                self.shared.patience.troubled("following the run", &e);
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        let patience = &self.shared.patience;
        for (frames, prefix) in styled_prefixes {
            let found = existing_frames(outputs, &prefix).await;
            if let Some(found) = patience.best_effort("following the run", found) {
                self.styled.retain(|n| !frames.contains(n));
                self.styled.extend(found);
            }
        }
        if self.polls.is_multiple_of(10) {
            let exists = self.shared.cloud.blobs.exists(&run.manifest_key()).await;
            if patience.best_effort("following the run", exists) == Some(false) {
                bail!("run {run} was cleaned while waiting for it");
            }
        }
        let standing = bookkeeping::standing(
            &self.progress,
            &self.styled,
            manifest.frames_per_job,
            manifest.frame_count,
        );
        self.show(&standing, written);
        self.queued_left = standing.queued;
        if !self.progress.failed.is_empty() && self.progress.is_settled() {
            return Err(failure_report(manifest, &self.progress));
        }
        self.requeue_lost().await?;
        self.watch_standstill(&standing).await
    }

    /// Queues again the jobs whose messages seem lost while the queue stays busy (see [`LostJobs`]).
    async fn requeue_lost(&mut self) -> Result<()> {
        if self.lost.is_empty() {
            // Every job still pending was queued by now (by this coordinator or an earlier one).
            let now = Instant::now();
            for job in self.progress.pending() {
                self.lost.queued(job, now);
            }
        }
        // A running job's frames are seen once per rotation of the buckets polled: evidence can
        // be that old, and must not be taken for silence.
        let m = self.manifest;
        let (jobs, frames) =
            bookkeeping::pending_buckets(&self.progress, m.frame_count, m.frames_per_job);
        let rotation = jobs.len().max(frames.len()).max(1) as u32;
        self.lost.set_floor(POLL * rotation * 2);
        let styled = bookkeeping::styled_per_job(&self.styled, m.frames_per_job);
        for job in self.lost.observe(&self.progress, &styled, Instant::now()) {
            self.shared.say(&format!(
                "{}: job {job} of run {} has shown no progress for a while and its message seems lost; queueing it again",
                self.info.path.display(),
                self.manifest.run_id
            ));
            enqueue(self.shared, self.manifest, job).await?;
        }
        Ok(())
    }

    /// The done-marker and styled-frame name prefixes this poll lists (with the frames each styled
    /// one covers). The first poll reads the whole run once; later ones a few buckets each (those
    /// the restitcher needs next, and one more in rotation), so a poll costs the same for a
    /// minute of video as for two hours.
    fn prefixes_to_list(&self, written: u64) -> (Vec<String>, Vec<(Range<u32>, String)>) {
        let m = self.manifest;
        let run = &m.run_id;
        if self.polls == 1 {
            return (
                vec![run.done_prefix()],
                vec![(0..u32::MAX, run.styled_prefix())],
            );
        }
        let (pending_jobs, pending_frames) =
            bookkeeping::pending_buckets(&self.progress, m.frame_count, m.frames_per_job);
        let first_job = (written / u64::from(m.frames_per_job)) as u32;
        let reach = bookkeeping::download_reach(written, m.frames_per_job, DOWNLOAD_AHEAD_FRAMES);
        let (front_jobs, front_frames) =
            bookkeeping::frontier_buckets(first_job, reach, m.frame_count, m.frames_per_job);
        let done = bookkeeping::buckets_to_list(&pending_jobs, &front_jobs, self.polls)
            .into_iter()
            .map(|b| run.done_bucket_prefix(b, m.job_count))
            .collect::<Option<Vec<_>>>()
            .unwrap_or_else(|| vec![run.done_prefix()]);
        let per = bookkeeping::FRAMES_PER_BUCKET;
        let styled = bookkeeping::buckets_to_list(&pending_frames, &front_frames, self.polls)
            .into_iter()
            .map(|b| {
                let frames = b * per..(b + 1) * per;
                run.styled_bucket_prefix(b, m.frame_count)
                    .map(|prefix| (frames, prefix))
            })
            .collect::<Option<Vec<_>>>()
            .unwrap_or_else(|| vec![(0..u32::MAX, run.styled_prefix())]);
        (done, styled)
    }

    fn show(&self, standing: &Standing, written: u64) {
        let progress = &self.progress;
        self.bar.set(standing.frames_styled);
        let restitching = if progress.is_complete() {
            format!(" · restitched {written}")
        } else {
            String::new()
        };
        self.bar.message(&format!(
            "frames styled · jobs {} queued, {} running, {} done, {} failed{restitching}",
            standing.queued,
            standing.running.len(),
            progress.done.len(),
            progress.failed.len()
        ));
    }

    /// Says when no worker seems to run, and queues lost jobs again (see [`Standstill`]).
    async fn watch_standstill(&mut self, standing: &Standing) -> Result<()> {
        let moved = (
            self.progress.done.len() + self.progress.failed.len(),
            self.styled.len(),
        );
        let action = self.standstill.observe(
            self.polls,
            POLL,
            moved,
            standing,
            self.progress.is_settled(),
            Instant::now(),
        );
        let path = self.info.path.display();
        match action {
            StandstillAction::Wait => {}
            StandstillAction::HintNoWorker(quiet) => self.shared.say(&format!(
                "{path}: no worker has taken a job for {}; start some with `stylize worker --cloud STORAGE` on {}",
                clock(quiet),
                self.shared.storage
            )),
            StandstillAction::CheckQueue => {
                let length = self.shared.cloud.jobs.approximate_len().await;
                let patience = &self.shared.patience;
                let length = patience.best_effort("reading the queue's length", length);
                if self.standstill.queue_length(length) {
                    let pending = self.progress.pending();
                    self.shared.say(&format!(
                        "{path}: the queue is empty but {} job(s) of run {} are not done; queueing them again",
                        pending.len(),
                        self.manifest.run_id
                    ));
                    for job in pending {
                        enqueue(self.shared, self.manifest, job).await?;
                        self.lost.queued(job, Instant::now());
                    }
                }
            }
        }
        Ok(())
    }
}

/// The styled frames being fetched into the spool.
#[derive(Default)]
struct Downloads {
    tasks: JoinSet<Result<Downloaded>>,
    /// Jobs whose frames are being (or were) fetched.
    started: BTreeSet<u32>,
    /// Bytes downloaded.
    bytes: u64,
}

impl Downloads {
    /// Starts fetching every done job within reach of the restitcher (which has written `written`
    /// frames) that is not being fetched yet.
    fn start_within_reach(&mut self, follow: &Follow<'_>, written: u64, spool: &std::path::Path) {
        let manifest = follow.manifest;
        let reach =
            bookkeeping::download_reach(written, manifest.frames_per_job, DOWNLOAD_AHEAD_FRAMES);
        for job in bookkeeping::jobs_to_download(&follow.progress.done, reach, &mut self.started) {
            let spec = manifest.job_spec(job).expect("done jobs are in range");
            for (n, key) in spec.styled_keys() {
                let (blobs, transfers) = (follow.outputs.clone(), follow.shared.transfers.clone());
                let patience = follow.shared.patience.clone();
                let path = spool.join(format!("{n:06}"));
                self.tasks.spawn(async move {
                    let what = format!("downloading styled frame {n}");
                    let size = get_patiently_to_file(
                        &patience,
                        &transfers,
                        blobs.as_ref(),
                        (&key, &path),
                        what,
                    )
                    .await?;
                    Ok((n, path, size))
                });
            }
        }
    }
}

/// Which worker did each job, from the done markers (one read per job; skipped for huge runs).
/// A read that fails leaves its worker out of the count (storage trouble is told).
async fn count_workers(follow: &Follow<'_>) -> usize {
    let manifest = follow.manifest;
    if manifest.job_count > 2000 {
        return 0;
    }
    let mut reads = JoinSet::new();
    for job in 0..manifest.job_count {
        let (blobs, key) = (
            follow.outputs.clone(),
            manifest.run_id.done_key(job, &manifest.incarnation),
        );
        reads.spawn(async move { blobs.get(&key).await });
    }
    let mut names = BTreeSet::new();
    while let Some(read) = reads.join_next().await {
        let Ok(read) = read else { continue };
        let marker = follow
            .shared
            .patience
            .best_effort("counting the run's workers", read);
        if let Some(marker) = marker.and_then(|b| DoneMarker::from_json(&b).ok()) {
            names.insert(marker.worker);
        }
    }
    names.len()
}

/// Exactly which frames failed and why; the rest of the run stays in storage.
fn failure_report(manifest: &RunManifest, progress: &RunProgress) -> anyhow::Error {
    let frames: u32 = progress.failed.values().map(|m| m.frames.len()).sum();
    let mut text = format!(
        "{} of {} jobs failed ({frames} frames), so no video was written; run {} keeps the {} styled frames of the other jobs, and re-running the same command retries only the failed jobs:",
        progress.failed.len(),
        manifest.job_count,
        manifest.run_id,
        progress.frames_done
    );
    for marker in progress.failed.values() {
        text.push_str(&format!(
            "\n  job {} ({}): {} [worker {}, {} deliveries]",
            marker.job, marker.frames, marker.reason, marker.worker, marker.dequeue_count
        ));
    }
    anyhow::Error::new(JobsFailed(text))
}

/// A run ended with jobs that failed for good (their poison-queue deliveries spent): retrying the
/// same input as it is will not help. `stylize watch` tells this apart from storage trouble.
#[derive(Debug)]
pub struct JobsFailed(String);

impl std::fmt::Display for JobsFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JobsFailed {}

/// The restitcher's files: the styled video and, with `--compare`, the side-by-side video, each
/// written under a temporary name and committed by the output plan (as in local mode).
struct RestitchOutputs<'a> {
    plan: &'a OutputPlan,
    temp: TempGuard,
    writer: VideoWriter,
    side: Option<(&'a OutputPlan, TempGuard, SideBySideWriter)>,
}

impl<'a> RestitchOutputs<'a> {
    fn create(
        info: &VideoInfo,
        plan: &'a OutputPlan,
        side: Option<&'a OutputPlan>,
        encode: &EncodeOptions,
    ) -> Result<Self> {
        let temp = TempGuard::new(plan.temp_path());
        let writer = VideoWriter::create(temp.path(), &plan.final_path, info, encode)?;
        let side = match side {
            Some(side_plan) => {
                let side_temp = TempGuard::new(side_plan.temp_path());
                let side_writer = SideBySideWriter::create(
                    side_temp.path(),
                    &side_plan.final_path,
                    info,
                    encode,
                )?;
                Some((side_plan, side_temp, side_writer))
            }
            None => None,
        };
        Ok(RestitchOutputs {
            plan,
            temp,
            writer,
            side,
        })
    }

    /// Writes `frame` (its picture now the styled one) and, beside it, the `original`.
    fn write(&mut self, original: &RgbImage, frame: &stylize_media::DecodedFrame) -> Result<()> {
        self.writer.write(frame)?;
        if let Some((_, _, side_writer)) = self.side.as_mut() {
            side_writer.write(original, frame)?;
        }
        Ok(())
    }

    /// Finishes and commits every file; the frames written.
    fn finish(self) -> Result<u64> {
        let summary = self.writer.finish()?;
        let side = match self.side {
            Some((side_plan, side_temp, side_writer)) => {
                side_writer.finish(summary.frames)?;
                Some((side_plan, side_temp))
            }
            None => None,
        };
        self.plan.commit_with_side(self.temp, side)?;
        Ok(summary.frames)
    }
}

/// Decodes the input again for each frame's timestamp, swaps in the styled
/// picture as it arrives, and writes the outputs with the original audio.
///
/// The steadier runs here, in frame order, over the workers' frame-by-frame pictures: the
/// restitcher is the one place that sees every frame in order beside its original, so the output is
/// the local run's exactly, with no seam where one job hands over to the next. (It also makes
/// `--steady` a choice of the restitch alone: the workers' frames, and so the run, are the same.)
fn restitch(
    originals: FrameReader,
    mut outputs: RestitchOutputs<'_>,
    manifest: &RunManifest,
    steady: f32,
    ready: std::sync::mpsc::Receiver<(u32, PathBuf)>,
    written: &AtomicU64,
) -> Result<u64> {
    let mut steadier = SteadyStream::at(steady);
    let mut arrived: HashMap<u32, PathBuf> = HashMap::new();
    let mut count: u32 = 0;
    for frame in originals {
        if cancelled() {
            bail!("interrupted");
        }
        let mut frame = frame?;
        let n = count;
        if n >= manifest.frame_count {
            bail!(
                "the input decodes to more than the run's {} frames",
                manifest.frame_count
            );
        }
        let styled = styled_frame(manifest, n, &mut arrived, &ready)?;
        count += 1;
        let Some(steadier) = steadier.as_mut() else {
            let original = std::mem::replace(&mut frame.image, styled);
            outputs.write(&original, &frame)?;
            written.store(u64::from(count), Ordering::Relaxed);
            continue;
        };
        let original = frame.image.take();
        let done = steadier.push(frame, original, styled);
        if let Some(done) = done.with_context(|| format!("steadying frame {n}"))? {
            write_steadied(&mut outputs, done, written)?;
        }
    }
    while let Some(steadier) = steadier.as_mut() {
        match steadier.next_left().context("steadying the last frames")? {
            Some(done) => write_steadied(&mut outputs, done, written)?,
            None => break,
        }
    }
    if count != manifest.frame_count {
        bail!(
            "the input decodes to {count} frames, but run {} has {}",
            manifest.run_id,
            manifest.frame_count
        );
    }
    outputs.finish()
}

/// A steadied frame into the outputs, counted as written.
fn write_steadied(
    outputs: &mut RestitchOutputs<'_>,
    done: Steadied<stylize_media::DecodedFrame>,
    written: &AtomicU64,
) -> Result<()> {
    let mut frame = done.tag;
    frame.image = done.image;
    outputs.write(&done.original, &frame)?;
    written.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Styled frame `n`: waits for its download (keeping others that arrive first), then reads and
/// decodes it, removing the spool file.
fn styled_frame(
    manifest: &RunManifest,
    n: u32,
    arrived: &mut HashMap<u32, PathBuf>,
    ready: &std::sync::mpsc::Receiver<(u32, PathBuf)>,
) -> Result<RgbImage> {
    let path = loop {
        if let Some(path) = arrived.remove(&n) {
            break path;
        }
        match ready.recv() {
            Ok((k, path)) => {
                arrived.insert(k, path);
            }
            // The coordinator stopped feeding frames; it reports why.
            Err(_) => bail!("stopped before styled frame {n} arrived"),
        }
    };
    let bytes = std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    let _ = std::fs::remove_file(&path);
    codec::decode(
        manifest.frame_format,
        &bytes,
        manifest.width,
        manifest.height,
    )
    .with_context(|| {
        format!(
            "styled frame {n} ({})",
            manifest.run_id.styled_key(n, manifest.frame_format)
        )
    })
}
