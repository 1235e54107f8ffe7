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
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use stylize_cloud::{
    default_frames_per_job, existing_frames, load_manifest, publish_manifest, sha256_file, Bytes,
    Cloud, DoneMarker, Error as CloudError, FrameFormat, FrameRate, RunId, RunManifest,
    RunProgress,
};
use stylize_media::{EncodeOptions, FrameReader, RgbFrame, VideoInfo, VideoWriter};
use stylize_model::{Engine, RgbImage};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use super::args::CloudArgs;
use super::codec;
use super::look::{self, ParamsDoc};
use crate::config::{LookConfig, RunConfig};
use crate::output::{OutputPlan, TempGuard};
use crate::pipeline::cancelled;
use crate::progress::clock;
use crate::run::CheckedInput;
use crate::showcase::compare::SideBySideWriter;

/// How often the coordinator reads the markers while it waits.
const POLL: Duration = Duration::from_secs(1);
/// Quiet time after which the coordinator says that no worker seems to be running.
const NO_WORKER_HINT_AFTER: Duration = Duration::from_secs(60);
/// Styled frames the coordinator downloads ahead of the restitcher. The restitcher takes them in
/// order, so when an early job lags, later done jobs wait in storage rather than fill the disk
/// beside the output; this is seconds of encoding, enough to keep the encoder fed.
const DOWNLOAD_AHEAD_FRAMES: u32 = 256;

struct Shared {
    cloud: Cloud,
    storage: String,
    look: LookConfig,
    encode: EncodeOptions,
    frames_per_job: Option<u32>,
    frame_format: FrameFormat,
    output_container: Option<String>,
    no_wait: bool,
    transfers: Arc<Semaphore>,
    transfer_limit: usize,
    /// The network that turns the style into values, loaded on first need.
    preparer: Mutex<Option<Engine>>,
    /// Inputs upload one at a time: the coordinator's CPU and uplink are shared.
    upload_slot: Semaphore,
    multi: MultiProgress,
    quiet: bool,
}

impl Shared {
    fn say(&self, line: &str) {
        if !self.quiet {
            self.multi.suspend(|| eprintln!("{line}"));
        }
    }
}

/// What became of one input.
enum Outcome {
    Written {
        output: PathBuf,
        /// The side-by-side video, with `--compare`.
        side: Option<PathBuf>,
        frames: u64,
        elapsed: Duration,
        run: RunId,
        jobs: u32,
        workers: usize,
        up: u64,
        down: u64,
    },
    Submitted {
        run: RunId,
        queued: usize,
    },
}

/// What became of one input, as the caller needs it (details have been reported already).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    /// The video was written, with this many frames.
    Written(u64),
    /// Uploaded and queued (`--no-wait`).
    Submitted,
    Failed,
}

/// Runs every input through the cloud and reports each outcome.
pub fn run(config: RunConfig, args: &CloudArgs, compare: bool) -> Result<Vec<Finished>> {
    let spec = args
        .cloud
        .as_deref()
        .ok_or_else(|| anyhow!("--cloud is required"))?;
    let (storage, cloud) = super::open(spec, args.container.as_deref(), args.queue.as_deref())?;
    // Same up-front checks as local mode: every input probed before any work.
    let inputs: Vec<_> = config
        .jobs
        .iter()
        .map(|j| j.input.clone())
        .zip(crate::run::check_inputs(&config, compare))
        .collect();
    let multi = MultiProgress::with_draw_target(if config.quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    let shared = Arc::new(Shared {
        cloud,
        storage: storage.to_string(),
        look: config.look.clone(),
        encode: config.encode.clone(),
        frames_per_job: args.frames_per_job,
        frame_format: args.frame_format.into(),
        output_container: args.output_container.clone(),
        no_wait: args.no_wait,
        transfers: Arc::new(Semaphore::new(args.transfers as usize)),
        transfer_limit: args.transfers as usize,
        preparer: Mutex::new(None),
        upload_slot: Semaphore::new(1),
        multi,
        quiet: config.quiet,
    });
    let rt = super::runtime()?;
    let results: Vec<Result<Outcome>> = rt.block_on(async {
        if inputs.iter().any(|(_, c)| c.is_ok()) {
            // The first request: a wrong key or an expired SAS stops here, in one line.
            shared
                .cloud
                .create_if_missing()
                .await
                .with_context(|| format!("cannot use {storage}"))?;
        }
        let mut handles = Vec::new();
        for (input, checked) in inputs {
            let shared = shared.clone();
            handles.push(tokio::spawn(async move {
                process_input(shared, checked?)
                    .await
                    .with_context(|| input.display().to_string())
            }));
        }
        let mut results = Vec::new();
        for handle in handles {
            results.push(
                handle
                    .await
                    .unwrap_or_else(|e| Err(anyhow!("task failed: {e}"))),
            );
        }
        Ok::<_, anyhow::Error>(results)
    })?;
    report(&shared, &config, &results);
    Ok(results
        .iter()
        .map(|r| match r {
            Ok(Outcome::Written { frames, .. }) => Finished::Written(*frames),
            Ok(Outcome::Submitted { .. }) => Finished::Submitted,
            Err(_) => Finished::Failed,
        })
        .collect())
}

fn report(shared: &Shared, config: &RunConfig, results: &[Result<Outcome>]) {
    let style = crate::style::describe(&shared.look.style_spec, &shared.look.style);
    for (job, result) in config.jobs.iter().zip(results) {
        match result {
            Ok(Outcome::Written { output, side, frames, elapsed, run, jobs, workers, up, down }) => shared.say(&format!(
                "{} → {}{}: {frames} frames in {} ({:.1} fps), style {style}, run {run}: {jobs} jobs on {workers} worker{}, {} up, {} down",
                job.input.display(),
                output.display(),
                side.as_ref().map(|s| format!(" (side by side: {})", s.display())).unwrap_or_default(),
                clock(*elapsed),
                *frames as f64 / elapsed.as_secs_f64().max(1e-9),
                if *workers == 1 { "" } else { "s" },
                super::bytes(*up as f64),
                super::bytes(*down as f64),
            )),
            Ok(Outcome::Submitted { run, queued }) => shared.say(&format!(
                "{}: run {run} submitted ({queued} jobs queued); run the same command again (without --no-wait) to collect the video",
                job.input.display()
            )),
            // Errors always show, --quiet or not: they explain the exit code.
            Err(e) => eprintln!("error: {e:#}"),
        }
    }
    if results.len() > 1 && !shared.quiet {
        let failed = results.iter().filter(|r| r.is_err()).count();
        eprintln!(
            "{} of {} inputs done, {failed} failed",
            results.len() - failed,
            results.len()
        );
    }
}

fn new_bar(shared: &Shared, name: &str) -> ProgressBar {
    let bar = shared.multi.add(ProgressBar::new(0));
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:.bold} [{bar:28.cyan/blue}] {pos}/{len} {msg}  {per_sec}  ETA {eta}",
        )
        .expect("valid template")
        .with_key(
            "per_sec",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1} fps", state.per_sec());
            },
        )
        .progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow!("worker thread failed: {e}"))?
}

async fn process_input(shared: Arc<Shared>, input: CheckedInput) -> Result<Outcome> {
    let CheckedInput { info, plan, side } = input;
    let started = Instant::now();
    let name = info
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bar = new_bar(&shared, &name);
    let result = submit_and_collect(&shared, &info, &plan, side.as_ref(), &bar, started).await;
    bar.finish_and_clear();
    shared.multi.remove(&bar);
    result
}

async fn submit_and_collect(
    shared: &Arc<Shared>,
    info: &VideoInfo,
    plan: &OutputPlan,
    side: Option<&OutputPlan>,
    bar: &ProgressBar,
    started: Instant,
) -> Result<Outcome> {
    let blobs = shared.cloud.blobs.clone();
    bar.set_message("waiting for its turn to upload");
    let slot = shared.upload_slot.acquire().await.expect("never closed");
    bar.set_message("hashing the input");
    let path = info.path.clone();
    let sha = blocking(move || Ok(sha256_file(&path)?)).await?;
    let style_ref = look::style_ref(&shared.look);
    let params = ParamsDoc::from_params(&shared.look.params).to_value();
    let run_id = RunId::derive(&sha, &style_ref, &params);

    let mut resumed = false;
    let manifest = match load_manifest(blobs.as_ref(), &run_id).await {
        Ok(m) => {
            resumed = true;
            if m.input_sha256 != sha || (m.width, m.height) != (info.width, info.height) {
                bail!("run {run_id} in storage is for another video (a hash collision or a tampered manifest)");
            }
            if m.frame_format != shared.frame_format
                || shared.frames_per_job.is_some_and(|n| n != m.frames_per_job)
                || shared
                    .output_container
                    .as_ref()
                    .is_some_and(|c| Some(c) != m.output_container.as_ref())
            {
                shared.say(&format!(
                    "{}: run {run_id} exists and keeps its own settings: {} frames, {} frames per job, outputs in {}",
                    info.path.display(),
                    m.frame_format.extension(),
                    m.frames_per_job,
                    m.output_container.as_deref().unwrap_or("the run's container")
                ));
            }
            m
        }
        Err(CloudError::NotFound(_)) => {
            new_manifest(shared, info, &sha, &style_ref, params, run_id.clone(), bar).await?
        }
        Err(e) => return Err(e.into()),
    };

    let outputs = shared
        .cloud
        .outputs_of(manifest.output_container.as_deref())?;
    if manifest.output_container.is_some() {
        outputs
            .create_if_missing()
            .await
            .context("creating the output container")?;
    }
    let mut progress = RunProgress::load(outputs.as_ref(), &manifest).await?;
    // A re-run retries what failed last time, uploading those jobs' frames
    // afresh in case a damaged frame was the cause.
    let mut reupload = BTreeSet::new();
    if !progress.failed.is_empty() {
        for (&job, marker) in &progress.failed {
            outputs.delete(&manifest.run_id.failed_key(job)).await?;
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
    }
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
    if !to_queue.is_empty() {
        let present = existing_frames(blobs.as_ref(), &manifest.run_id.frames_prefix()).await?;
        let need: BTreeSet<u32> = manifest
            .jobs()
            .iter()
            .filter(|j| to_queue.contains(&j.job))
            .flat_map(|j| j.frames.frames())
            .filter(|n| !present.contains(n) || reupload.contains(n))
            .collect();
        (up, _) = upload_and_enqueue(shared, info, &manifest, need, &to_queue, bar).await?;
    }
    drop(slot);
    if shared.no_wait {
        // Everything pending is on the queue now: sent just now or by an earlier run.
        return Ok(Outcome::Submitted {
            run: manifest.run_id.clone(),
            queued: progress.pending().len(),
        });
    }
    let (frames, down, workers) =
        follow_and_restitch(shared, info, plan, side, &manifest, bar).await?;
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

/// A new run: count the frames (the manifest holds the exact number, which the
/// container's own count may not be), compute the style, publish the manifest.
async fn new_manifest(
    shared: &Arc<Shared>,
    info: &VideoInfo,
    sha: &str,
    style_ref: &str,
    params: serde_json::Value,
    run_id: RunId,
    bar: &ProgressBar,
) -> Result<RunManifest> {
    bar.set_message("counting frames");
    let want_first = look::needs_first_frame(&shared.look);
    let scan_info = info.clone();
    let (count, first) = blocking(move || scan(&scan_info, want_first)).await?;
    bar.set_message("preparing the style");
    let prep = shared.clone();
    let style = blocking(move || {
        let mut engine = prep.preparer.lock().unwrap_or_else(|p| p.into_inner());
        if engine.is_none() {
            *engine = Some(look::coordinator_engine(&prep.look)?);
        }
        look::compute(
            engine.as_ref().expect("loaded above"),
            &prep.look,
            first.as_ref(),
        )
    })
    .await?;
    let frames_per_job = shared
        .frames_per_job
        .unwrap_or_else(|| default_frames_per_job(count));
    let output_container = shared.output_container.clone();
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
        shared.frame_format,
        frames_per_job,
        style_ref,
        style.to_value(),
        params,
    )?;
    let manifest = match &output_container {
        Some(container) => manifest.with_output_container(container)?,
        None => manifest,
    };
    debug_assert_eq!(manifest.run_id, run_id);
    // Another coordinator may have published the same run meanwhile: theirs is in force.
    Ok(publish_manifest(shared.cloud.blobs.as_ref(), &manifest).await?)
}

/// Decodes the whole input once: its exact frame count, and the first frame when the style needs it.
fn scan(info: &VideoInfo, want_first: bool) -> Result<(u32, Option<RgbImage>)> {
    let mut count: u32 = 0;
    let mut first = None;
    for frame in FrameReader::open(info)? {
        if cancelled() {
            bail!("interrupted");
        }
        let frame = frame?;
        if want_first && first.is_none() {
            first = Some(RgbImage {
                width: frame.image.width,
                height: frame.image.height,
                data: frame.image.data,
            });
        }
        count = count
            .checked_add(1)
            .ok_or_else(|| anyhow!("more than 2^32 frames"))?;
    }
    if count == 0 {
        bail!("no video frames could be decoded");
    }
    if let (Some(expected), true) = (info.frame_count, info.frame_count_exact) {
        // As in local mode: missing more than one frame means a file cut short.
        if u64::from(count) + 1 < expected {
            bail!("truncated or damaged: decoded {count} of {expected} frames");
        }
    }
    Ok((count, first))
}

/// Uploads the frames in `need` (decode, encode and upload overlapped, at most
/// `--transfers` in flight) and queues each job of `to_queue` once all its
/// frames are in storage. Returns the bytes uploaded and the jobs queued.
async fn upload_and_enqueue(
    shared: &Arc<Shared>,
    info: &VideoInfo,
    manifest: &RunManifest,
    need: BTreeSet<u32>,
    to_queue: &BTreeSet<u32>,
    bar: &ProgressBar,
) -> Result<(u64, usize)> {
    let per_job = manifest.frames_per_job;
    let mut missing: BTreeMap<u32, u32> = to_queue.iter().map(|&j| (j, 0)).collect();
    for n in &need {
        *missing.entry(n / per_job).or_default() += 1;
    }
    let mut queued = 0;
    // Jobs whose frames are all up already (a resumed run) go first.
    let ready: Vec<u32> = missing
        .iter()
        .filter(|(_, m)| **m == 0)
        .map(|(j, _)| *j)
        .collect();
    for job in ready {
        enqueue(shared, manifest, job).await?;
        queued += 1;
    }
    bar.set_length(need.len() as u64);
    bar.set_position(0);
    bar.reset_eta();
    bar.set_message(format!("frames uploaded · {queued} jobs queued"));
    if need.is_empty() {
        return Ok((0, queued));
    }

    let (tx, mut rx) =
        mpsc::channel::<Result<(u32, stylize_media::RgbFrame)>>(shared.transfer_limit.max(2));
    let decode_info = info.clone();
    let (frame_count, need_decode) = (manifest.frame_count, need.clone());
    let last_needed = *need.last().expect("not empty");
    // The decoder reads on its own thread; the bounded channel keeps it at most
    // a few frames ahead of the uploads, so memory stays flat.
    let decoder = tokio::task::spawn_blocking(move || {
        let outcome = (|| -> Result<()> {
            let mut count: u32 = 0;
            for frame in FrameReader::open(&decode_info)? {
                if cancelled() {
                    bail!("interrupted");
                }
                let frame = frame?;
                let n = count;
                count += 1;
                if n >= frame_count {
                    bail!("the input now decodes to more than the run's {frame_count} frames");
                }
                if need_decode.contains(&n) && tx.blocking_send(Ok((n, frame.image))).is_err() {
                    return Ok(()); // the uploader stopped and reports why
                }
                // The count was checked when the run was made (same file, same hash),
                // so a resumed run stops decoding after its last missing frame.
                if n >= last_needed {
                    return Ok(());
                }
            }
            bail!("the input decodes to {count} frames, but run has {frame_count}")
        })();
        if let Err(e) = outcome {
            let _ = tx.blocking_send(Err(e));
        }
    });

    let format = manifest.frame_format;
    let mut uploads: JoinSet<Result<(u32, u64)>> = JoinSet::new();
    let mut bytes_up = 0u64;
    let mut finish = |result: Result<Result<(u32, u64)>, tokio::task::JoinError>,
                      missing: &mut BTreeMap<u32, u32>|
     -> Result<Option<u32>> {
        let (n, size) = result.map_err(|e| anyhow!("upload task failed: {e}"))??;
        bytes_up += size;
        bar.inc(1);
        let job = n / per_job;
        let left = missing
            .get_mut(&job)
            .expect("every needed frame belongs to a job to queue");
        *left -= 1;
        Ok((*left == 0).then_some(job))
    };
    let mut to_queue = Vec::new();
    while let Some(item) = rx.recv().await {
        if cancelled() {
            bail!("interrupted");
        }
        let (n, frame) = item?;
        let permit = shared
            .transfers
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        let (blobs, key) = (
            shared.cloud.blobs.clone(),
            manifest.run_id.frame_key(n, format),
        );
        uploads.spawn(async move {
            let _permit = permit;
            let bytes = tokio::task::spawn_blocking(move || {
                codec::encode(format, frame.width, frame.height, &frame.data)
            })
            .await
            .map_err(|e| anyhow!("encoder task failed: {e}"))??;
            let size = bytes.len() as u64;
            blobs
                .put(&key, Bytes::from(bytes))
                .await
                .with_context(|| format!("uploading frame {n}"))?;
            Ok((n, size))
        });
        while let Some(done) = uploads.try_join_next() {
            to_queue.extend(finish(done, &mut missing)?);
        }
        for job in to_queue.drain(..) {
            enqueue(shared, manifest, job).await?;
            queued += 1;
            bar.set_message(format!("frames uploaded · {queued} jobs queued"));
        }
    }
    while let Some(done) = uploads.join_next().await {
        to_queue.extend(finish(done, &mut missing)?);
    }
    for job in to_queue.drain(..) {
        enqueue(shared, manifest, job).await?;
        queued += 1;
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
    Ok((bytes_up, queued))
}

async fn enqueue(shared: &Shared, manifest: &RunManifest, job: u32) -> Result<()> {
    super::enqueue(&shared.cloud, manifest, job).await
}

/// Where downloaded styled frames wait for the encoder: a hidden folder beside
/// the output (same disk as the result, not a small /tmp), removed on drop.
struct Spool(PathBuf);

impl Spool {
    fn create(plan: &OutputPlan) -> Result<Spool> {
        let name = plan
            .final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = plan
            .final_path
            .with_file_name(format!(".{name}.stylize-frames-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create the download folder", dir.display()))?;
        crate::output::track_live_temp(&dir);
        Ok(Spool(dir))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        crate::output::forget_live_temp(&self.0);
    }
}

/// Follows the run until every job is done (downloading each done job's frames
/// and feeding the restitcher) or until every job is settled with some failed.
/// Returns frames written, bytes downloaded and how many workers took part.
async fn follow_and_restitch(
    shared: &Arc<Shared>,
    info: &VideoInfo,
    plan: &OutputPlan,
    side: Option<&OutputPlan>,
    manifest: &RunManifest,
    bar: &ProgressBar,
) -> Result<(u64, u64, usize)> {
    let (inputs, blobs) = (
        shared.cloud.blobs.clone(),
        shared
            .cloud
            .outputs_of(manifest.output_container.as_deref())?,
    );
    let run = &manifest.run_id;
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
        move || {
            restitch(
                &info,
                &plan,
                side.as_ref(),
                &encode,
                &manifest,
                ready_rx,
                &written,
            )
        }
    });
    bar.set_length(u64::from(manifest.frame_count));
    bar.set_position(0);
    bar.reset_eta();

    let mut downloads: JoinSet<Result<(u32, PathBuf, u64)>> = JoinSet::new();
    let mut started_jobs = BTreeSet::new();
    let mut bytes_down = 0u64;
    let mut downloaded = 0u32;
    let mut last_seen = (usize::MAX, usize::MAX);
    let mut last_change = Instant::now();
    let mut hinted = false;
    let mut empty_queue_checks = 0;
    let mut polls: u64 = 0;
    // Listing every styled frame is what shows partial jobs; for very long
    // videos it is done less often to keep the request count modest.
    let styled_every = u64::from(manifest.frame_count / 20_000 + 1);
    let mut styled: BTreeSet<u32> = BTreeSet::new();
    let mut progress = RunProgress::default();
    let mut next_poll = tokio::time::Instant::now();
    // The loop's errors wait until the restitcher has stopped (it sees the
    // channel close), so its temporary file is gone before the error is told.
    let followed: Result<()> = async { loop {
        if cancelled() {
            bail!("interrupted; run {run} goes on in storage, and re-running the same command picks it up");
        }
        if tokio::time::Instant::now() >= next_poll {
            next_poll = tokio::time::Instant::now() + POLL;
            polls += 1;
            match RunProgress::load(blobs.as_ref(), manifest).await {
                Ok(p) => progress = p,
                // A hiccup in one poll is no reason to give up on the run.
                Err(e) if e.is_retryable() => {}
                Err(e) => return Err(e.into()),
            }
            if polls % styled_every == 1 || styled_every == 1 {
                if let Ok(s) = existing_frames(blobs.as_ref(), &run.styled_prefix()).await {
                    styled = s;
                }
            }
            if polls.is_multiple_of(10) && !inputs.exists(&run.manifest_key()).await.unwrap_or(true) {
                bail!("run {run} was cleaned while waiting for it");
            }
            // Jobs with styled frames but no done marker are being worked on.
            let per_job = manifest.frames_per_job;
            let running: BTreeSet<u32> =
                styled.iter().map(|n| n / per_job).filter(|j| !progress.done.contains(j) && !progress.failed.contains_key(j)).collect();
            let partial = styled.iter().filter(|n| running.contains(&(*n / per_job))).count() as u64;
            let done_frames = progress.frames_done;
            let queued = progress.pending().len().saturating_sub(running.len());
            bar.set_position((done_frames + partial).min(u64::from(manifest.frame_count)));
            let restitching = if progress.is_complete() {
                format!(" · restitched {}", written.load(Ordering::Relaxed))
            } else {
                String::new()
            };
            bar.set_message(format!(
                "frames styled · jobs {queued} queued, {} running, {} done, {} failed{restitching}",
                running.len(),
                progress.done.len(),
                progress.failed.len()
            ));
            let seen = (progress.done.len() + progress.failed.len(), styled.len());
            if seen != last_seen {
                last_seen = seen;
                last_change = Instant::now();
            } else if !hinted && running.is_empty() && last_change.elapsed() > NO_WORKER_HINT_AFTER {
                hinted = true;
                shared.say(&format!(
                    "{}: no worker has taken a job for {}; start some with `stylize worker --cloud STORAGE` on {}",
                    info.path.display(),
                    clock(last_change.elapsed()),
                    shared.storage
                ));
            }
            if !progress.failed.is_empty() && progress.is_settled() {
                return Err(failure_report(manifest, &progress));
            }
            // Queued jobs whose messages are gone (the queue was cleared, or a
            // clean raced this run) would be waited for forever: when the queue
            // stays empty, counting hidden messages too, and nothing moves, queue
            // the pending jobs again.
            if polls.is_multiple_of(15) && !progress.is_settled() && running.is_empty() && last_change.elapsed() > POLL * 15 {
                match shared.cloud.jobs.approximate_len().await {
                    Ok(0) => empty_queue_checks += 1,
                    _ => empty_queue_checks = 0,
                }
                if empty_queue_checks >= 2 {
                    empty_queue_checks = 0;
                    let pending = progress.pending();
                    shared.say(&format!(
                        "{}: the queue is empty but {} job(s) of run {run} are not done; queueing them again",
                        info.path.display(),
                        pending.len()
                    ));
                    for job in pending {
                        enqueue(shared, manifest, job).await?;
                    }
                }
            }
        }
        // Done jobs within reach of the restitcher are fetched (checked on every pass, so the
        // window moves as soon as frames are encoded, not only at the next poll).
        let per_job = manifest.frames_per_job;
        let next_needed_job = (written.load(Ordering::Relaxed) / u64::from(per_job)) as u32;
        let reach = next_needed_job.saturating_add((DOWNLOAD_AHEAD_FRAMES / per_job).max(2));
        for &job in progress.done.range(..reach) {
            if started_jobs.insert(job) {
                let spec = manifest.job_spec(job).expect("done jobs are in range");
                for (n, key) in spec.styled_keys() {
                    let (blobs, transfers, path) = (blobs.clone(), shared.transfers.clone(), spool.0.join(format!("{n:06}")));
                    downloads.spawn(async move {
                        let _permit = transfers.acquire_owned().await.expect("never closed");
                        let bytes = blobs.get(&key).await.with_context(|| format!("downloading styled frame {n}"))?;
                        tokio::fs::write(&path, &bytes).await.with_context(|| format!("{}: cannot write", path.display()))?;
                        Ok((n, path, bytes.len() as u64))
                    });
                }
            }
        }
        if restitcher.is_finished() {
            break;
        }
        if progress.is_complete() && downloads.is_empty() && started_jobs.len() as u32 == manifest.job_count {
            break;
        }
        tokio::select! {
            Some(done) = downloads.join_next() => {
                let (n, path, size) = done.map_err(|e| anyhow!("download task failed: {e}"))??;
                bytes_down += size;
                downloaded += 1;
                // The restitcher may have stopped on an error, reported below.
                let _ = ready_tx.send((n, path));
            }
            () = tokio::time::sleep_until(next_poll) => {}
        }
    } Ok(()) }.await;
    // Downloads still in flight must end before the spool folder is removed (on any return),
    // or a late write could recreate a file in it.
    downloads.shutdown().await;
    drop(ready_tx);
    let restitched = restitcher
        .await
        .map_err(|e| anyhow!("restitch thread failed: {e}"))?;
    followed?;
    let frames = restitched?;
    debug_assert_eq!(downloaded, manifest.frame_count);
    let workers = count_workers(&blobs, manifest).await;
    drop(spool);
    Ok((frames, bytes_down, workers))
}

/// Which worker did each job, from the done markers (one read per job; skipped for huge runs).
async fn count_workers(
    outputs: &Arc<dyn stylize_cloud::BlobStore>,
    manifest: &RunManifest,
) -> usize {
    if manifest.job_count > 2000 {
        return 0;
    }
    let mut reads = JoinSet::new();
    for job in 0..manifest.job_count {
        let (blobs, key) = (outputs.clone(), manifest.run_id.done_key(job));
        reads.spawn(async move {
            blobs
                .get(&key)
                .await
                .ok()
                .and_then(|b| DoneMarker::from_json(&b).ok())
                .map(|m| m.worker)
        });
    }
    let mut names = BTreeSet::new();
    while let Some(Ok(Some(name))) = reads.join_next().await {
        names.insert(name);
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
    anyhow!(text)
}

/// Decodes the input again for each frame's timestamp, swaps in the styled
/// picture as it arrives, and writes the output with the original audio; the
/// same output rules as local mode (temporary name, then rename). With `side`,
/// the side-by-side video is written in the same pass from the decoded original.
fn restitch(
    info: &VideoInfo,
    plan: &OutputPlan,
    side: Option<&OutputPlan>,
    encode: &EncodeOptions,
    manifest: &RunManifest,
    ready: std::sync::mpsc::Receiver<(u32, PathBuf)>,
    written: &AtomicU64,
) -> Result<u64> {
    let temp = TempGuard::new(plan.temp_path());
    let mut writer = VideoWriter::create(temp.path(), &plan.final_path, info, encode)?;
    let side_temp = side.map(|s| TempGuard::new(s.temp_path()));
    let mut side_writer = match (side, &side_temp) {
        (Some(s), Some(t)) => Some(SideBySideWriter::create(
            t.path(),
            &s.final_path,
            info,
            encode,
        )?),
        _ => None,
    };
    let mut arrived: HashMap<u32, PathBuf> = HashMap::new();
    let mut count: u32 = 0;
    for frame in FrameReader::open(info)? {
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
        let bytes =
            std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
        let _ = std::fs::remove_file(&path);
        let styled = codec::decode(
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
        })?;
        let original_data = std::mem::replace(&mut frame.image.data, styled);
        writer.write(&frame)?;
        if let Some(side_writer) = side_writer.as_mut() {
            let original = RgbFrame {
                width: frame.image.width,
                height: frame.image.height,
                data: original_data,
            };
            side_writer.write(&original, &frame)?;
        }
        count += 1;
        written.store(u64::from(count), Ordering::Relaxed);
    }
    if count != manifest.frame_count {
        bail!(
            "the input decodes to {count} frames, but run {} has {}",
            manifest.run_id,
            manifest.frame_count
        );
    }
    let summary = writer.finish()?;
    if let Some(side_writer) = side_writer {
        side_writer.finish(summary.frames)?;
    }
    plan.commit_with_side(temp, side.zip(side_temp))?;
    Ok(summary.frames)
}
