//! `stylize worker`: takes jobs from the queue, styles their frames with download, compute and upload overlapped, and marks them done.
//!
//! Delivery is at least once, so everything here is idempotent: a job whose
//! done marker exists is dropped, frames already styled are skipped, and the
//! message is deleted only after the done marker is written. A job that keeps
//! failing is marked failed and moved to the poison queue on its last allowed
//! delivery; a message that is not a job is moved there at once.
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt as _;
use stylize_cloud::{
    dead_letter, existing_frames, BlobStore, Bytes, Cloud, DoneMarker, Error as CloudError,
    FailedMarker, JobSpec, MessageLease, ReceivedMessage, RunId,
};
use stylize_model::{Engine, ModelError, RgbImage, StyleParams};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinSet;

use super::args::WorkerArgs;
use super::codec;
use super::look::{ParamsDoc, StyleDoc};
use crate::pipeline::cancelled;

pub fn run(args: &WorkerArgs) -> Result<i32> {
    let idle_exit = args
        .idle_exit
        .map(|secs| seconds_option("--idle-exit", secs, true))
        .transpose()?;
    let drain = seconds_option("--drain-timeout", args.drain_timeout, true)?;
    let poll = seconds_option("--poll-interval", args.poll_interval, false)?;
    if args.max_jobs == Some(0) {
        bail!("--max-jobs must be at least 1");
    }
    let (config, cloud) = super::open(
        &args.cloud,
        args.container.as_deref(),
        args.queue.as_deref(),
    )?;
    let id = args.worker_id.clone().unwrap_or_else(default_worker_id);
    let compute = Compute::start(args)?;
    eprintln!(
        "worker {id}: ready ({}), taking jobs from queue {} in {}",
        compute.describe,
        cloud.jobs.name(),
        config
    );
    let worker = Worker {
        jobs: Arc::new(Jobs {
            id,
            cloud,
            compute,
            visibility: Duration::from_secs(args.visibility_timeout),
            max_deliveries: args.max_deliveries,
            transfers: Arc::new(Semaphore::new(args.transfers as usize)),
            prefetch: (args.transfers as usize).max(2),
            drain,
            drain_started: Mutex::new(None),
            outputs: Mutex::new(HashMap::new()),
            device_failures: Mutex::new((0, String::new())),
        }),
        poll,
        idle_exit,
        max_jobs: args.max_jobs,
    };
    super::runtime()?.block_on(worker.run())
}

/// A number of seconds from the command line; one line naming the option when it is unusable.
fn seconds_option(name: &str, secs: f64, zero_allowed: bool) -> Result<Duration> {
    // Thirty days: anything longer is a typo, and Duration would overflow on the absurd.
    const LONGEST: f64 = 30.0 * 24.0 * 3600.0;
    let above_floor = secs > 0.0 || (zero_allowed && secs == 0.0);
    if !(secs.is_finite() && above_floor && secs <= LONGEST) {
        let floor = if zero_allowed {
            "zero"
        } else {
            "more than zero"
        };
        bail!("{name} must be {floor} to {LONGEST} seconds, not {secs}");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The pod name under Kubernetes, the machine's name elsewhere.
fn default_worker_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("pid-{}", std::process::id()))
}

/// Jobs a worker holds at once. The second is taken only when the first is
/// down to its last batches, so its queue receive, checks and first downloads
/// overlap the first job's last frames and uploads instead of leaving the
/// network idle between jobs; it is never more, so a worker does not sit on
/// jobs that an idle worker could take.
const JOBS_IN_FLIGHT: usize = 2;

/// Jobs in a row that the network may fail before the worker gives up on its
/// device and exits. A GPU in a sticky error state fails every job in
/// milliseconds; left running, it would take most of the queue and spend every
/// job's deliveries, while a restart (or a healthy node) would style them.
const DEVICE_FAILURES_BEFORE_EXIT: u32 = 3;

/// The receive loop: when to take a job, when to stop.
struct Worker {
    jobs: Arc<Jobs>,
    poll: Duration,
    idle_exit: Option<Duration>,
    max_jobs: Option<u64>,
}

/// What every job handler shares.
struct Jobs {
    id: String,
    cloud: Cloud,
    compute: Compute,
    visibility: Duration,
    max_deliveries: u32,
    transfers: Arc<Semaphore>,
    prefetch: usize,
    drain: Duration,
    /// When SIGTERM arrived: the current jobs may run `drain` past it.
    drain_started: Mutex<Option<Instant>>,
    /// Clients for runs' separate output containers, made once each.
    outputs: Mutex<HashMap<String, Arc<dyn BlobStore>>>,
    /// Jobs failed in a row by the network itself, with the latest reason.
    device_failures: Mutex<(u32, String)>,
}

/// How one delivery of a job ended, when it did not succeed.
enum JobError {
    /// Shutting down and the job did not finish within the drain time.
    Interrupted,
    /// The visibility ran out and another worker owns the message now.
    LeaseLost,
    /// The job itself failed.
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for JobError {
    fn from(e: anyhow::Error) -> Self {
        let lost = e.chain().any(|c| {
            matches!(
                c.downcast_ref::<CloudError>(),
                Some(CloudError::LeaseLost { .. })
            )
        });
        if lost {
            JobError::LeaseLost
        } else {
            JobError::Failed(e)
        }
    }
}

/// Whether trying the job again later can help (storage hiccups, a GPU out of
/// memory beside another process) rather than failing the same way (a corrupt frame).
fn is_retryable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<CloudError>()
            .is_some_and(CloudError::is_retryable)
            || c.downcast_ref::<ModelError>()
                .is_some_and(ModelError::is_retryable)
    })
}

/// Whether the network (its device, or the thread running it) failed, rather than storage or
/// the job's data.
fn is_device_fault(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<ModelError>(),
            Some(ModelError::Inference { .. })
        )
    })
}

struct JobStats {
    styled: usize,
    skipped: usize,
}

/// What one delivery amounted to.
#[derive(Default)]
struct Handled {
    frames: u64,
    jobs: u64,
}

impl Worker {
    async fn run(self) -> Result<i32> {
        let started = Instant::now();
        let (mut frames, mut jobs_done) = (0u64, 0u64);
        let mut active: JoinSet<Handled> = JoinSet::new();
        // Each job raises its flag when it is down to its last batches, and wakes
        // this loop: a next job is taken only when every job in hand has.
        let mut near_end: HashMap<tokio::task::Id, Arc<AtomicBool>> = HashMap::new();
        let (wake_tx, mut wake_rx) = mpsc::unbounded_channel::<()>();
        let mut idle_since = Instant::now();
        let mut backoff = Duration::from_secs(1);
        let id = self.jobs.id.clone();
        loop {
            while let Some(done) = active.try_join_next_with_id() {
                let handled = finished(done, &mut near_end);
                (frames, jobs_done) = (frames + handled.frames, jobs_done + handled.jobs);
            }
            if let Some(last) = self.jobs.device_given_up() {
                // Jobs in hand are dropped with their leases and reappear for other workers.
                bail!(
                    "worker {id}: the network failed {DEVICE_FAILURES_BEFORE_EXIT} jobs in a row ({last}); exiting so that a restarted or another worker styles them"
                );
            }
            let may_take = near_end.values().all(|flag| flag.load(Ordering::SeqCst));
            let stopping = cancelled()
                || self
                    .max_jobs
                    .is_some_and(|m| jobs_done + active.len() as u64 >= m);
            if stopping && active.is_empty() {
                break;
            }
            if !active.is_empty() {
                idle_since = Instant::now();
            }
            let mut wait = self.poll;
            if !stopping && may_take && active.len() < JOBS_IN_FLIGHT {
                match self.jobs.cloud.jobs.receive(self.jobs.visibility).await {
                    Ok(Some(message)) => {
                        backoff = Duration::from_secs(1);
                        idle_since = Instant::now();
                        let flag = Arc::new(AtomicBool::new(false));
                        let signal = NearEnd {
                            flag: flag.clone(),
                            wake: wake_tx.clone(),
                        };
                        let jobs = self.jobs.clone();
                        let task = active.spawn(async move { jobs.handle(message, signal).await });
                        near_end.insert(task.id(), flag);
                        continue;
                    }
                    // No job, or no queue yet (no run was ever submitted): both are an empty queue.
                    Ok(None) | Err(CloudError::NotFound(_)) => {
                        if active.is_empty()
                            && self
                                .idle_exit
                                .is_some_and(|limit| idle_since.elapsed() >= limit)
                        {
                            eprintln!(
                                "worker {id}: queue empty for {:.0} s, exiting",
                                idle_since.elapsed().as_secs_f64()
                            );
                            break;
                        }
                    }
                    Err(e) if e.is_retryable() => {
                        eprintln!(
                            "worker {id}: cannot receive from the queue ({e}); retrying in {} s",
                            backoff.as_secs()
                        );
                        wait = backoff;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                    // Jobs in hand are dropped with their leases and reappear for other workers.
                    Err(e) => {
                        return Err(anyhow::Error::from(e).context(format!(
                            "worker {id}: queue {}",
                            self.jobs.cloud.jobs.name()
                        )))
                    }
                }
            }
            tokio::select! {
                Some(done) = active.join_next_with_id(), if !active.is_empty() => {
                    let handled = finished(done, &mut near_end);
                    (frames, jobs_done) = (frames + handled.frames, jobs_done + handled.jobs);
                }
                Some(()) = wake_rx.recv() => {}
                _ = super::sleep_unless_cancelled(wait) => {}
            }
        }
        eprintln!(
            "worker {id} processed {frames} frames in {} ({jobs_done} jobs)",
            super::hms(started.elapsed())
        );
        Ok(0)
    }
}

/// A finished job task's result, its near-end flag forgotten.
fn finished(
    done: Result<(tokio::task::Id, Handled), tokio::task::JoinError>,
    near_end: &mut HashMap<tokio::task::Id, Arc<AtomicBool>>,
) -> Handled {
    match done {
        Ok((id, handled)) => {
            near_end.remove(&id);
            handled
        }
        Err(e) => {
            near_end.remove(&e.id());
            Handled::default()
        }
    }
}

/// How a job tells the receive loop it is down to its last batches.
struct NearEnd {
    flag: Arc<AtomicBool>,
    wake: mpsc::UnboundedSender<()>,
}

impl NearEnd {
    fn raise(&self) {
        if !self.flag.swap(true, Ordering::SeqCst) {
            // The loop may be gone when the worker is stopping; then nobody needs to know.
            let _ = self.wake.send(());
        }
    }
}

impl Jobs {
    /// Counts a job the network failed (or resets the count after one it styled).
    fn note_device(&self, failure: Option<&anyhow::Error>) {
        let mut state = self
            .device_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *state = match failure {
            Some(e) => (state.0 + 1, format!("{e:#}")),
            None => (0, String::new()),
        };
    }

    /// The latest reason, once the network has failed too many jobs in a row.
    fn device_given_up(&self) -> Option<String> {
        let state = self
            .device_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        (state.0 >= DEVICE_FAILURES_BEFORE_EXIT).then(|| state.1.clone())
    }

    /// Where a job's run lives (manifest, input frames).
    fn inputs_for(&self, spec: &JobSpec) -> Result<Arc<dyn BlobStore>> {
        self.store(spec.container.as_deref())
    }

    /// Where a job's styled frames and markers go.
    fn outputs_for(&self, spec: &JobSpec) -> Result<Arc<dyn BlobStore>> {
        self.store(spec.outputs_container())
    }

    fn store(&self, container: Option<&str>) -> Result<Arc<dyn BlobStore>> {
        let Some(name) = container else {
            return Ok(self.cloud.blobs.clone());
        };
        let mut cache = self.outputs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(store) = cache.get(name) {
            return Ok(store.clone());
        }
        let store = self.cloud.container(name)?;
        cache.insert(name.to_owned(), store.clone());
        Ok(store)
    }

    /// One delivery: never returns an error, because nothing a single message
    /// holds may stop the worker; every outcome is logged.
    async fn handle(&self, message: ReceivedMessage, near_end: NearEnd) -> Handled {
        let mut totals = Handled::default();
        let id = self.id.clone();
        let spec = match JobSpec::from_message(&message.body) {
            Ok(spec) => spec,
            Err(e) => {
                self.move_aside(&message, &e.to_string()).await;
                return totals;
            }
        };
        let tag = format!("run {} job {}", spec.run_id, spec.job);
        let stores = self
            .inputs_for(&spec)
            .and_then(|i| Ok((i, self.outputs_for(&spec)?)));
        let (inputs, outputs) = match stores {
            Ok(stores) => stores,
            Err(e) => {
                self.move_aside(&message, &format!("{tag}: {e:#}")).await;
                return totals;
            }
        };
        let look = StyleDoc::from_value(&spec.style)
            .and_then(|s| Ok((s, ParamsDoc::from_value(&spec.params)?)));
        let (style, params) = match look {
            Ok(look) => look,
            Err(e) => {
                // A job of this protocol whose style this build cannot use: mark it
                // failed so its coordinator stops waiting, then set it aside.
                self.mark_failed(&spec, &format!("{e:#}"), message.dequeue_count)
                    .await;
                self.move_aside(&message, &format!("{tag}: {e:#}")).await;
                return totals;
            }
        };
        match inputs.exists(&spec.run_id.manifest_key()).await {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("worker {id}: dropped {tag}: the run was cleaned (no manifest)");
                self.delete(&message, &tag).await;
                return totals;
            }
            Err(e) => {
                self.give_back(message, &tag, &anyhow::Error::from(e)).await;
                return totals;
            }
        }
        match outputs.exists(&spec.done_key()).await {
            Ok(false) => {}
            Ok(true) => {
                eprintln!("worker {id}: dropped {tag}: already done (a duplicate delivery)");
                self.delete(&message, &tag).await;
                return totals;
            }
            Err(e) => {
                self.give_back(message, &tag, &anyhow::Error::from(e)).await;
                return totals;
            }
        }
        if message.dequeue_count > self.max_deliveries {
            let reason = format!(
                "gave up after {} deliveries: no worker finished the job (killed, out of memory, or stuck past the visibility timeout)",
                message.dequeue_count - 1
            );
            self.mark_failed(&spec, &reason, message.dequeue_count)
                .await;
            self.move_aside(&message, &format!("{tag}: {reason}")).await;
            return totals;
        }

        let dequeue_count = message.dequeue_count;
        let lease = MessageLease::start(self.cloud.jobs.clone(), message, self.visibility);
        let started = Instant::now();
        let outcome = self
            .style_job(
                &spec,
                &style,
                &params.to_params(),
                (&inputs, &outputs),
                &lease,
                &near_end,
            )
            .await;
        let outcome = match outcome {
            // The marker goes last: its presence says every styled frame is there.
            Ok(stats) => {
                let marker = DoneMarker::new(&spec, &id, started.elapsed().as_secs_f64());
                match outputs
                    .put(&spec.done_key(), Bytes::from(marker.to_json()))
                    .await
                {
                    Ok(()) => Ok(stats),
                    Err(e) => Err(JobError::from(
                        anyhow::Error::from(e).context("writing the done marker"),
                    )),
                }
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(stats) => {
                self.note_device(None);
                match lease.complete().await {
                    Ok(()) => {}
                    // Someone else holds it now; they will find the done marker and drop it.
                    Err(CloudError::LeaseLost { .. }) => {}
                    Err(e) => eprintln!("worker {id}: {tag}: done, but deleting its message failed ({e}); it will be dropped as a duplicate"),
                }
                totals.frames += stats.styled as u64;
                totals.jobs += 1;
                let skipped = if stats.skipped > 0 {
                    format!(", {} already styled", stats.skipped)
                } else {
                    String::new()
                };
                eprintln!(
                    "worker {id}: {tag} ({}): {} frames in {:.2} s{skipped}",
                    spec.frames,
                    stats.styled,
                    started.elapsed().as_secs_f64()
                );
            }
            Err(JobError::Interrupted) => {
                let result = lease.release().await;
                let note = result.err().map(|e| {
                    format!(" (release failed: {e}; it returns after the visibility timeout)")
                });
                eprintln!(
                    "worker {id}: {tag}: handed back unfinished (shutting down){}",
                    note.unwrap_or_default()
                );
            }
            Err(JobError::LeaseLost) => {
                eprintln!("worker {id}: {tag}: lost to another worker (the visibility timeout ran out); stopped");
            }
            Err(JobError::Failed(e)) => {
                if is_device_fault(&e) {
                    self.note_device(Some(&e));
                }
                let message = lease.into_message().await;
                if dequeue_count >= self.max_deliveries {
                    self.mark_failed(&spec, &format!("{e:#}"), dequeue_count)
                        .await;
                    self.move_aside(
                        &message,
                        &format!(
                            "{tag}: failed on delivery {dequeue_count} of {}: {e:#}",
                            self.max_deliveries
                        ),
                    )
                    .await;
                } else {
                    self.give_back(message, &tag, &e).await;
                }
            }
        }
        totals
    }

    /// Hands a failed delivery back: at once when it failed on its data (the
    /// next delivery fails as fast, so the job reaches its end quickly), after
    /// a pause growing with the deliveries when storage or the device hiccuped.
    async fn give_back(&self, mut message: ReceivedMessage, tag: &str, e: &anyhow::Error) {
        let delay = if is_retryable(e) {
            Duration::from_secs(5 * u64::from(message.dequeue_count.min(12)))
        } else {
            Duration::ZERO
        };
        eprintln!(
            "worker {}: {tag}: failed on delivery {} of {}: {e:#}; handed back{}",
            self.id,
            message.dequeue_count,
            self.max_deliveries,
            if delay.is_zero() {
                String::new()
            } else {
                format!(" for retry in {} s", delay.as_secs())
            }
        );
        if let Err(e) = self.cloud.jobs.set_visibility(&mut message, delay).await {
            eprintln!("worker {}: {tag}: could not hand it back ({e}); it returns after the visibility timeout", self.id);
        }
    }

    async fn mark_failed(&self, spec: &JobSpec, reason: &str, dequeue_count: u32) {
        let marker = FailedMarker::new(spec, reason, dequeue_count, &self.id);
        let written = match self.outputs_for(spec) {
            Ok(outputs) => outputs
                .put(&spec.failed_key(), Bytes::from(marker.to_json()))
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            eprintln!(
                "worker {}: run {} job {}: could not write its failed marker: {e}",
                self.id, spec.run_id, spec.job
            );
        }
    }

    async fn move_aside(&self, message: &ReceivedMessage, why: &str) {
        let poison = self.cloud.poison.name();
        // The poison queue may not exist when storage was set up by hand.
        let _ = self.cloud.poison.create_if_missing().await;
        match dead_letter(
            self.cloud.jobs.as_ref(),
            self.cloud.poison.as_ref(),
            message,
        )
        .await
        {
            Ok(()) => eprintln!(
                "worker {}: moved message {} to {poison}: {}",
                self.id,
                message.id,
                one_line(why)
            ),
            Err(e) => eprintln!(
                "worker {}: could not move message {} to {poison} ({e}): {}",
                self.id,
                message.id,
                one_line(why)
            ),
        }
    }

    async fn delete(&self, message: &ReceivedMessage, tag: &str) {
        if let Err(e) = self.cloud.jobs.delete(message).await {
            eprintln!(
                "worker {}: {tag}: could not delete its message ({e})",
                self.id
            );
        }
    }

    fn check_drain(&self) -> Result<(), JobError> {
        if !cancelled() {
            return Ok(());
        }
        let since = *self
            .drain_started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(Instant::now);
        if since.elapsed() > self.drain {
            Err(JobError::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Styles the job's frames not styled yet: a download task keeps up to
    /// `prefetch` frames coming while the compute thread styles a batch and
    /// upload tasks store the previous batches.
    async fn style_job(
        &self,
        spec: &JobSpec,
        style: &StyleDoc,
        params: &StyleParams,
        (inputs, outputs): (&Arc<dyn BlobStore>, &Arc<dyn BlobStore>),
        lease: &MessageLease,
        near_end: &NearEnd,
    ) -> Result<JobStats, JobError> {
        let blobs = inputs.clone();
        let (width, height, format) = (spec.width, spec.height, spec.frame_format);
        let first_key = spec.run_id.styled_key(spec.frames.start, format);
        let last_key = spec.run_id.styled_key(spec.frames.end - 1, format);
        // One listing of the keys this range shares a prefix with, not one request per frame.
        let done: BTreeSet<u32> =
            existing_frames(outputs.as_ref(), common_prefix(&first_key, &last_key))
                .await
                .context("listing styled frames")?
                .into_iter()
                .filter(|n| spec.frames.frames().contains(n))
                .collect();
        let todo: Vec<u32> = spec.frames.frames().filter(|n| !done.contains(n)).collect();
        let stats = JobStats {
            styled: todo.len(),
            skipped: done.len(),
        };
        if todo.is_empty() {
            return Ok(stats);
        }

        let (frames_tx, mut frames_rx) = mpsc::channel::<Result<(u32, RgbImage)>>(self.prefetch);
        let downloader = tokio::spawn({
            let (blobs, transfers, run_id, prefetch) = (
                blobs.clone(),
                self.transfers.clone(),
                spec.run_id.clone(),
                self.prefetch,
            );
            async move {
                let mut frames = futures::stream::iter(todo)
                    .map(|n| {
                        let (blobs, transfers, key) = (
                            blobs.clone(),
                            transfers.clone(),
                            run_id.frame_key(n, format),
                        );
                        async move {
                            let bytes = {
                                let _permit =
                                    transfers.acquire().await.expect("semaphore never closed");
                                blobs
                                    .get(&key)
                                    .await
                                    .with_context(|| format!("frame {n}: downloading {key}"))?
                            };
                            let rgb = tokio::task::spawn_blocking(move || {
                                codec::decode(format, &bytes, width, height)
                            })
                            .await
                            .map_err(|e| anyhow!("frame {n}: decoder task failed: {e}"))?
                            .with_context(|| format!("frame {n} ({key})"))?;
                            Ok((
                                n,
                                RgbImage {
                                    width,
                                    height,
                                    data: rgb,
                                },
                            ))
                        }
                    })
                    .buffered(prefetch);
                while let Some(frame) = frames.next().await {
                    let failed = frame.is_err();
                    if frames_tx.send(frame).await.is_err() || failed {
                        break;
                    }
                }
            }
        });
        // Aborting the downloader on every way out keeps a failed job from
        // fetching frames nobody will style.
        let _abort = AbortOnDrop(downloader.abort_handle());

        let mut uploads: JoinSet<Result<()>> = JoinSet::new();
        let style = Arc::new(style.clone());
        let mut received = 0;
        while received < stats.styled {
            let mut batch: Vec<(u32, RgbImage)> = Vec::with_capacity(self.compute.batch);
            match frames_rx.recv().await {
                Some(frame) => batch.push(frame?),
                None => {
                    return Err(JobError::Failed(anyhow!(
                        "the frame downloads stopped early"
                    )))
                }
            }
            while batch.len() < self.compute.batch && received + batch.len() < stats.styled {
                match frames_rx.recv().await {
                    Some(frame) => batch.push(frame?),
                    None => break,
                }
            }
            received += batch.len();
            if received + self.compute.batch >= stats.styled {
                // At most one batch after this one: time to fetch the next job.
                near_end.raise();
            }
            self.check_drain()?;
            if lease.is_lost() {
                return Err(JobError::LeaseLost);
            }
            let (numbers, images): (Vec<u32>, Vec<RgbImage>) = batch.into_iter().unzip();
            let styled = self
                .compute
                .style(&spec.run_id, &style, params, images)
                .await?;
            for (n, image) in numbers.into_iter().zip(styled) {
                let (blobs, transfers, key) = (
                    outputs.clone(),
                    self.transfers.clone(),
                    spec.run_id.styled_key(n, format),
                );
                uploads.spawn(async move {
                    let bytes = tokio::task::spawn_blocking(move || {
                        codec::encode(format, image.width, image.height, &image.data)
                    })
                    .await
                    .map_err(|e| anyhow!("frame {n}: encoder task failed: {e}"))??;
                    let _permit = transfers.acquire().await.expect("semaphore never closed");
                    blobs
                        .put(&key, Bytes::from(bytes))
                        .await
                        .with_context(|| format!("styled frame {n}: uploading"))
                });
            }
            // Surface upload failures early instead of after the whole job.
            while let Some(done) = uploads.try_join_next() {
                done.map_err(|e| anyhow!("upload task failed: {e}"))??;
            }
        }
        while let Some(done) = uploads.join_next().await {
            done.map_err(|e| anyhow!("upload task failed: {e}"))??;
        }
        if lease.is_lost() {
            return Err(JobError::LeaseLost);
        }
        Ok(stats)
    }
}

impl From<CloudError> for JobError {
    fn from(e: CloudError) -> Self {
        JobError::from(anyhow::Error::from(e))
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let len = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    &a[..len]
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The thread that owns the style network (a LibTorch model is used from one
/// thread), fed batches over a channel so transfers never wait on it.
struct Compute {
    requests: std::sync::mpsc::Sender<Request>,
    batch: usize,
    describe: String,
}

struct Request {
    run: RunId,
    style: Arc<StyleDoc>,
    params: StyleParams,
    frames: Vec<RgbImage>,
    reply: oneshot::Sender<Result<Vec<RgbImage>>>,
}

enum Stylizer {
    Network {
        engine: Box<Engine>,
        prepared: Option<(RunId, stylize_model::PreparedStyle)>,
    },
    /// Test only: a fixed cost per frame and an obvious, exact result, or a device that
    /// fails every batch.
    Test { per_frame: Duration, fault: bool },
}

impl Compute {
    fn start(args: &WorkerArgs) -> Result<Compute> {
        let stylizer_options = match args.test_stylizer_ms {
            Some(ms) => Err((Duration::from_millis(ms), args.test_stylizer_fault)),
            None => Ok(crate::config::engine_options(
                args.device,
                args.precision,
                args.threads,
            )?),
        };
        let (tx, rx) = std::sync::mpsc::channel::<Request>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(usize, String)>>();
        std::thread::Builder::new()
            .name("stylize-compute".into())
            .spawn(move || {
                let mut stylizer = match stylizer_options {
                    Ok(options) => match Engine::new(&options) {
                        Ok(engine) => {
                            let _ = ready_tx
                                .send(Ok((engine.preferred_batch().max(1), engine.describe())));
                            Stylizer::Network {
                                engine: Box::new(engine),
                                prepared: None,
                            }
                        }
                        Err(e) => {
                            let _ = ready_tx
                                .send(Err(anyhow::Error::from(e)
                                    .context("cannot start the style network")));
                            return;
                        }
                    },
                    Err((per_frame, fault)) => {
                        let describe = format!(
                            "TEST STYLIZER: {} ms per frame, inverted colours, no network",
                            per_frame.as_millis()
                        );
                        // One frame per call, as on a CPU: the sleep then tracks frames exactly.
                        let _ = ready_tx.send(Ok((1, describe)));
                        Stylizer::Test { per_frame, fault }
                    }
                };
                for request in rx {
                    // tch panics on some failing ops: one bad batch must not end the thread.
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        stylizer.style(&request)
                    }))
                    .unwrap_or_else(|_| Err(device_fault("the style network panicked")));
                    let _ = request.reply.send(result);
                }
            })
            .context("cannot start the compute thread")?;
        let (batch, describe) = ready_rx
            .recv()
            .map_err(|_| anyhow!("the compute thread stopped while starting"))??;
        Ok(Compute {
            requests: tx,
            batch,
            describe,
        })
    }

    async fn style(
        &self,
        run: &RunId,
        style: &Arc<StyleDoc>,
        params: &StyleParams,
        frames: Vec<RgbImage>,
    ) -> Result<Vec<RgbImage>> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            run: run.clone(),
            style: style.clone(),
            params: params.clone(),
            frames,
            reply,
        };
        self.requests
            .send(request)
            .map_err(|_| device_fault("the compute thread has stopped"))?;
        answer
            .await
            .map_err(|_| device_fault("the compute thread stopped mid-batch"))?
    }
}

/// A failure of the network's device or thread, counted towards giving up on the device.
fn device_fault(reason: &str) -> anyhow::Error {
    anyhow::Error::from(ModelError::Inference {
        reason: reason.to_owned(),
    })
}

impl Stylizer {
    fn style(&mut self, request: &Request) -> Result<Vec<RgbImage>> {
        match self {
            Stylizer::Network { engine, prepared } => {
                // One run's style is rebuilt once, then reused for all its jobs here.
                if prepared.as_ref().is_none_or(|(run, _)| *run != request.run) {
                    *prepared = None;
                    *prepared = Some((
                        request.run.clone(),
                        request.style.prepare(engine, &request.params)?,
                    ));
                }
                let (_, style) = prepared.as_ref().expect("prepared above");
                Ok(engine.stylize(style, &request.frames)?)
            }
            Stylizer::Test { per_frame, fault } => {
                std::thread::sleep(*per_frame * request.frames.len() as u32);
                if *fault {
                    return Err(device_fault("TEST STYLIZER: simulated device fault"));
                }
                Ok(request
                    .frames
                    .iter()
                    .map(|f| RgbImage {
                        width: f.width,
                        height: f.height,
                        data: f.data.iter().map(|v| 255 - v).collect(),
                    })
                    .collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix_covers_the_range() {
        assert_eq!(
            common_prefix("runs/a/styled/000024.png", "runs/a/styled/000031.png"),
            "runs/a/styled/0000"
        );
        assert_eq!(
            common_prefix("runs/a/styled/000099.png", "runs/a/styled/000100.png"),
            "runs/a/styled/000"
        );
        assert_eq!(common_prefix("x", "x"), "x");
    }

    #[test]
    fn retryable_errors_are_found_in_the_chain() {
        let e = anyhow::Error::from(CloudError::Connection {
            operation: "get".into(),
            detail: "reset".into(),
        })
        .context("frame 3");
        assert!(is_retryable(&e));
        assert!(!is_retryable(&anyhow!(
            "frame 3: not a readable png picture"
        )));
        let lost = anyhow::Error::from(CloudError::LeaseLost {
            message_id: "m".into(),
        })
        .context("x");
        assert!(matches!(JobError::from(lost), JobError::LeaseLost));
    }
}
