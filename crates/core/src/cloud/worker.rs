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
    dead_letter, existing_frames, load_manifest, BlobStore, Bytes, Cloud, DoneMarker,
    Error as CloudError, FailedMarker, JobSpec, MessageLease, ReceivedMessage, RunId, StyleSpec,
    UnusableJob,
};
use stylize_model::optimize::OptimizeParams;
use stylize_model::{Engine, EngineOptions, ModelError, RgbImage, StyleParams};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinSet;

use self::batches::Batches;

use super::codec;
use super::delivery::{decide, Action, Failure, Finding};
use super::look;
use super::patience::jittered;
use super::StorageOptions;
use crate::cancel::{cancelled, sleep_unless_cancelled};
use crate::optimize::{FrameOptimizer, Method};
use crate::units::clock;

mod batches;
mod segment;

/// How a worker runs (validated by the caller).
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub storage: StorageOptions,
    /// Name used in logs and done markers [default: the host name].
    pub worker_id: Option<String>,
    /// Exit after this many jobs.
    pub max_jobs: Option<u64>,
    /// Exit once the queue has had nothing for this long.
    pub idle_exit: Option<Duration>,
    /// How long a taken job stays hidden from other workers (renewed while it runs).
    pub visibility: Duration,
    /// Deliveries of one job before it is marked failed.
    pub max_deliveries: u32,
    /// On SIGTERM, time to finish the current job before handing it back.
    pub drain: Duration,
    /// The longest one batch may spend in the network before the device is called hung.
    pub batch_deadline: Duration,
    /// Blob transfers in flight at once.
    pub transfers: u32,
    /// Pause between queue polls while the queue is empty.
    pub poll: Duration,
    pub stylizer: StylizerChoice,
}

/// What styles the frames.
#[derive(Debug, Clone)]
pub enum StylizerChoice {
    /// The style network, placed as given; VGG19's weights, for jobs of `--method optimize`.
    Network {
        engine: EngineOptions,
        vgg19: Option<std::path::PathBuf>,
    },
    /// TEST ONLY: sleeps `per_frame` per frame and inverts the colours (or, with `fault`, fails
    /// every batch as a broken GPU would): measures coordination without a network.
    Test { per_frame: Duration, fault: bool },
}

/// Where the worker's log lines go (stderr in the binary).
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// Takes jobs until stopped (Ctrl-C/SIGTERM, `max_jobs`, `idle_exit`); an error when the queue
/// or the device cannot be used any more.
pub fn run(options: &WorkerOptions, log: Log) -> Result<()> {
    let (config, cloud) = options.storage.open()?;
    let id = options.worker_id.clone().unwrap_or_else(default_worker_id);
    let compute = Compute::start(&options.stylizer)?;
    log(&format!(
        "worker {id}: ready ({}), taking jobs from queue {} in {}",
        compute.describe,
        cloud.jobs.name(),
        config
    ));
    let worker = Worker {
        jobs: Arc::new(Jobs {
            id,
            cloud,
            compute,
            visibility: options.visibility,
            max_deliveries: options.max_deliveries,
            transfers: Arc::new(Semaphore::new(options.transfers as usize)),
            prefetch: (options.transfers as usize).max(2),
            drain: options.drain,
            drain_started: Mutex::new(None),
            batch_deadline: options.batch_deadline,
            hung: Mutex::new(None),
            outputs: Mutex::new(HashMap::new()),
            device_failures: Mutex::new((0, String::new())),
            style_picture: tokio::sync::Mutex::new(None),
            log,
        }),
        poll: options.poll,
        idle_exit: options.idle_exit,
        max_jobs: options.max_jobs,
    };
    super::runtime()?.block_on(worker.run())
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
/// Between tries of a hand-back that storage refused (jittered).
const HAND_BACK_PAUSE: Duration = Duration::from_secs(2);

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
    batch_deadline: Duration,
    /// Set when a batch outlived `batch_deadline`: the network's call cannot be cancelled, so
    /// the worker hands its job back and exits for its supervisor to restart it.
    hung: Mutex<Option<String>>,
    /// Clients for runs' separate output containers, made once each.
    outputs: Mutex<HashMap<String, Arc<dyn BlobStore>>>,
    /// Jobs failed in a row by the network itself, with the latest reason.
    device_failures: Mutex<(u32, String)>,
    /// The last `--method optimize` run's style picture, fetched once for all its jobs here.
    style_picture: tokio::sync::Mutex<Option<(RunId, Arc<RgbImage>)>>,
    log: Log,
}

/// How one delivery of a job ended, when it did not succeed.
enum JobError {
    /// Shutting down and the job did not finish within the drain time.
    Interrupted,
    /// The visibility ran out and another worker owns the message now.
    LeaseLost,
    /// A batch outlived the deadline: the device is hung.
    Hung(String),
    /// The run was cleaned (and perhaps started again) while the job ran.
    Stale,
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

impl From<CloudError> for JobError {
    fn from(e: CloudError) -> Self {
        JobError::from(anyhow::Error::from(e))
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

/// An error as the delivery decision sees it.
fn failure(e: &anyhow::Error) -> Failure {
    Failure {
        error: format!("{e:#}"),
        retryable: is_retryable(e),
        storage: is_storage_trouble(e),
    }
}

/// Whether storage itself was unreachable or throttling (not the job's data, not the device).
fn is_storage_trouble(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<CloudError>()
            .is_some_and(CloudError::is_retryable)
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
    /// A segments job's stage times, for the log.
    times: Option<segment::SegmentTimes>,
}

/// What one delivery amounted to.
#[derive(Default)]
struct Handled {
    frames: u64,
    jobs: u64,
}

/// A job that passed the checks: its spec, look and stores.
struct ReadyJob {
    spec: JobSpec,
    tag: String,
    params: StyleParams,
    /// `--method optimize`'s parameters, when the run asks for it.
    optimize: Option<OptimizeParams>,
    inputs: Arc<dyn BlobStore>,
    outputs: Arc<dyn BlobStore>,
}

/// The job a message names, as far as it could be read: whole, or only enough to mark it failed
/// (a job of this protocol whose style or parameters this build cannot use).
// One per message read, briefly: the size difference costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Subject {
    Job(JobSpec),
    Unusable(Box<UnusableJob>),
}

impl Subject {
    fn tag(&self) -> String {
        let (run, job) = match self {
            Subject::Job(spec) => (&spec.run_id, spec.job),
            Subject::Unusable(u) => (&u.run_id, u.job),
        };
        format!("run {run} job {job}")
    }

    fn outputs_container(&self) -> Option<&str> {
        match self {
            Subject::Job(spec) => spec.outputs_container(),
            Subject::Unusable(u) => u.outputs_container(),
        }
    }

    fn failed_key(&self) -> String {
        match self {
            Subject::Job(spec) => spec.failed_key(),
            Subject::Unusable(u) => u.failed_key(),
        }
    }

    fn failed_marker(&self, reason: &str, dequeue_count: u32, worker: &str) -> FailedMarker {
        match self {
            Subject::Job(spec) => FailedMarker::new(spec, reason, dequeue_count, worker),
            Subject::Unusable(u) => FailedMarker {
                reason: stylize_cloud::redact_secrets(reason),
                ..u.failed_marker(dequeue_count, worker)
            },
        }
    }
}

/// What the worker learnt from the checks: the finding, and the job when the message names one.
struct Examined {
    finding: Finding,
    subject: Option<Subject>,
    ready: Option<ReadyJob>,
}

impl Worker {
    async fn run(self) -> Result<()> {
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
            if let Some(why) = self.jobs.hung() {
                // The stuck call cannot be cancelled: only a new process gets a working device.
                bail!(
                    "worker {id}: {why}; the job was handed back, and the worker exits so that its supervisor restarts it"
                );
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
                match self.receive(&mut backoff).await? {
                    Received::Job(message) => {
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
                    Received::Empty if active.is_empty() && self.idle_for_too_long(idle_since) => {
                        (self.jobs.log)(&format!(
                            "worker {id}: queue empty for {:.0} s, exiting",
                            idle_since.elapsed().as_secs_f64()
                        ));
                        break;
                    }
                    Received::Empty => {}
                    Received::RetryIn(delay) => wait = delay,
                }
            }
            tokio::select! {
                Some(done) = active.join_next_with_id(), if !active.is_empty() => {
                    let handled = finished(done, &mut near_end);
                    (frames, jobs_done) = (frames + handled.frames, jobs_done + handled.jobs);
                }
                Some(()) = wake_rx.recv() => {}
                _ = sleep_unless_cancelled(wait) => {}
            }
        }
        (self.jobs.log)(&format!(
            "worker {id} processed {frames} frames in {} ({jobs_done} jobs)",
            clock(started.elapsed())
        ));
        Ok(())
    }

    fn idle_for_too_long(&self, idle_since: Instant) -> bool {
        self.idle_exit
            .is_some_and(|limit| idle_since.elapsed() >= limit)
    }

    /// One receive from the queue; a queue error that retrying cannot cure ends the worker
    /// (jobs in hand are dropped with their leases and reappear for other workers).
    async fn receive(&self, backoff: &mut Duration) -> Result<Received> {
        match self.jobs.cloud.jobs.receive(self.jobs.visibility).await {
            Ok(Some(message)) => {
                *backoff = Duration::from_secs(1);
                Ok(Received::Job(message))
            }
            // No job, or no queue yet (no run was ever submitted): both are an empty queue.
            Ok(None) | Err(CloudError::NotFound(_)) => Ok(Received::Empty),
            Err(e) if e.is_retryable() => {
                (self.jobs.log)(&format!(
                    "worker {}: cannot receive from the queue ({e}); retrying in {} s",
                    self.jobs.id,
                    backoff.as_secs()
                ));
                let wait = *backoff;
                *backoff = (*backoff * 2).min(Duration::from_secs(30));
                Ok(Received::RetryIn(wait))
            }
            Err(e) => Err(anyhow::Error::from(e).context(format!(
                "worker {}: queue {}",
                self.jobs.id,
                self.jobs.cloud.jobs.name()
            ))),
        }
    }
}

/// What one receive brought.
enum Received {
    Job(ReceivedMessage),
    Empty,
    /// The queue could not be reached; try again after this pause.
    RetryIn(Duration),
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
    fn log(&self, line: &str) {
        (self.log)(&format!("worker {}: {line}", self.id));
    }

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

    fn hung(&self) -> Option<String> {
        self.hung.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The latest reason, once the network has failed too many jobs in a row.
    fn device_given_up(&self) -> Option<String> {
        let state = self
            .device_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        (state.0 >= DEVICE_FAILURES_BEFORE_EXIT).then(|| state.1.clone())
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
        let examined = self.examine(&message).await;
        let (counted, storage_retries) = match &examined.subject {
            Some(Subject::Job(spec)) => (
                spec.counted_deliveries(message.dequeue_count),
                spec.storage_retries,
            ),
            _ => (message.dequeue_count, 0),
        };
        let action = decide(
            &examined.finding,
            counted,
            storage_retries,
            self.max_deliveries,
        );
        match (action, examined.ready) {
            (Action::Style, Some(job)) => self.style_delivery(job, message, &near_end).await,
            (action, _) => {
                let subject = examined.subject.as_ref();
                self.carry_out(action, &examined.finding, message, subject)
                    .await;
                Handled::default()
            }
        }
    }

    /// The checks made before any work: is the message a job this build can do, is its run
    /// still there, is the job done already.
    async fn examine(&self, message: &ReceivedMessage) -> Examined {
        let spec = match JobSpec::from_message(&message.body) {
            Ok(spec) => spec,
            Err(CloudError::UnusableJob(job)) => {
                let finding = Finding::UnusableLook(job.reason.clone());
                return Examined::about(Subject::Unusable(job), finding);
            }
            Err(e) => return Examined::without_job(Finding::NotAJob(e.to_string())),
        };
        let tag = format!("run {} job {}", spec.run_id, spec.job);
        let stores = self
            .store(spec.container.as_deref())
            .and_then(|i| Ok((i, self.store(spec.outputs_container())?)));
        let (inputs, outputs) = match stores {
            Ok(stores) => stores,
            Err(e) => return Examined::without_job(Finding::NoStores(format!("{tag}: {e:#}"))),
        };
        let finding = match current_run(inputs.as_ref(), &spec).await {
            Err(finding) => finding,
            Ok(()) => match outputs.exists(&spec.done_key()).await {
                Ok(true) => Finding::AlreadyDone,
                Err(e) => Finding::CheckFailed(failure(&e.into())),
                Ok(false) => Finding::Ready,
            },
        };
        let ready = (finding == Finding::Ready).then(|| ReadyJob {
            spec: spec.clone(),
            tag,
            params: look::style_params(&spec.params),
            optimize: look::optimize_params(&spec.params),
            inputs,
            outputs,
        });
        Examined {
            finding,
            subject: Some(Subject::Job(spec)),
            ready,
        }
    }

    /// Does what [`decide`] said for a delivery that was not styled (no lease is held).
    async fn carry_out(
        &self,
        action: Action,
        finding: &Finding,
        mut message: ReceivedMessage,
        subject: Option<&Subject>,
    ) {
        let tag = subject.map(Subject::tag).unwrap_or_default();
        match action {
            Action::Drop(why) => {
                self.log(&format!("dropped {tag}: {why}"));
                self.delete(&message, &tag).await;
            }
            Action::GiveBack(delay) => {
                let error = match finding {
                    Finding::CheckFailed(f) | Finding::StyleFailed(f) => f.error.as_str(),
                    _ => "",
                };
                self.give_back(&mut message, &tag, error, delay).await;
            }
            Action::RetryLater(delay) => {
                if let (Some(Subject::Job(spec)), Finding::CheckFailed(f)) = (subject, finding) {
                    self.retry_later(&mut message, spec, &f.error, delay).await;
                }
            }
            Action::FailJob(reason) => {
                if let Some(subject) = subject {
                    self.mark_failed(subject, &reason, message.dequeue_count)
                        .await;
                }
                self.move_aside(&message, &format!("{tag}: {reason}")).await;
            }
            Action::MoveAside(why) => self.move_aside(&message, &why).await,
            // Only reached after styling, which holds the message through its lease.
            Action::Style | Action::Complete | Action::Forget => {}
        }
    }

    /// Styles a checked job with its message leased, writes the done marker, and settles the
    /// message as [`decide`] says.
    async fn style_delivery(
        &self,
        job: ReadyJob,
        message: ReceivedMessage,
        near_end: &NearEnd,
    ) -> Handled {
        let dequeue_count = message.dequeue_count;
        let counted = job.spec.counted_deliveries(dequeue_count);
        self.log(&format!(
            "{} ({}): started, delivery {dequeue_count}",
            job.tag, job.spec.frames
        ));
        let lease = MessageLease::start(self.cloud.jobs.clone(), message, self.visibility);
        let started = Instant::now();
        let outcome = self.style_and_mark(&job, &lease, near_end, started).await;
        let finding = self.finding_of(&outcome);
        let action = decide(
            &finding,
            counted,
            job.spec.storage_retries,
            self.max_deliveries,
        );
        let tag = &job.tag;
        match (action, outcome) {
            (Action::Complete, Ok(stats)) => {
                self.note_device(None);
                self.complete(lease, tag).await;
                self.log_done(&job, &stats, started);
                return Handled {
                    frames: stats.styled as u64,
                    jobs: 1,
                };
            }
            (Action::Drop(why), _) => {
                let message = lease.into_message().await;
                self.log(&format!("dropped {tag}: {why}"));
                self.delete(&message, tag).await;
            }
            (Action::Forget, _) => self.log(&format!(
                "{tag}: lost to another worker (the visibility timeout ran out); stopped"
            )),
            (Action::GiveBack(_), Err(JobError::Hung(why))) => {
                let line = format!("{tag}: {why}; handed back for another worker");
                self.release(lease, &line).await;
                *self.hung.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
            }
            (Action::GiveBack(_), Err(JobError::Interrupted)) => {
                let line = format!("{tag}: handed back unfinished (shutting down)");
                self.release(lease, &line).await;
            }
            (Action::FailJob(reason), _) => {
                let message = lease.into_message().await;
                let subject = Subject::Job(job.spec.clone());
                self.mark_failed(&subject, &reason, dequeue_count).await;
                let why = format!(
                    "{tag}: failed on delivery {dequeue_count} of {}: {reason}",
                    self.max_deliveries
                );
                self.move_aside(&message, &why).await;
            }
            (action, _) => {
                let mut message = lease.into_message().await;
                match (action, &finding) {
                    (Action::GiveBack(delay), Finding::StyleFailed(f)) => {
                        self.give_back(&mut message, tag, &f.error, delay).await;
                    }
                    (Action::RetryLater(delay), Finding::StyleFailed(f)) => {
                        self.retry_later(&mut message, &job.spec, &f.error, delay)
                            .await;
                    }
                    _ => {}
                }
            }
        }
        Handled::default()
    }

    /// Styles the job (its frames, or its segment) and writes its done marker.
    async fn style_and_mark(
        &self,
        job: &ReadyJob,
        lease: &MessageLease,
        near_end: &NearEnd,
        started: Instant,
    ) -> Result<JobStats, JobError> {
        let stats = match &job.spec.segment {
            Some(segment) => self.style_segment(job, segment, lease, near_end).await?,
            None => self.style_job(job, lease, near_end).await?,
        };
        self.mark_done(job, started).await?;
        Ok(stats)
    }

    /// What a styling attempt amounted to, for [`decide`] (counting the network's own faults).
    fn finding_of<T>(&self, outcome: &Result<T, JobError>) -> Finding {
        match outcome {
            Ok(_) => Finding::Styled,
            Err(JobError::Interrupted) => Finding::Interrupted,
            Err(JobError::LeaseLost) => Finding::LeaseLost,
            Err(JobError::Hung(_)) => Finding::Hung,
            Err(JobError::Stale) => Finding::Stale,
            Err(JobError::Failed(e)) => {
                if is_device_fault(e) {
                    self.note_device(Some(e));
                }
                Finding::StyleFailed(failure(e))
            }
        }
    }

    /// Makes the leased message visible again at once, and logs `line` (with why, if it could not).
    async fn release(&self, lease: MessageLease, line: &str) {
        let note =
            lease.release().await.err().map(|e| {
                format!(" (release failed: {e}; it returns after the visibility timeout)")
            });
        self.log(&format!("{line}{}", note.unwrap_or_default()));
    }

    /// Writes the job's done marker, last: its presence says every styled frame is there.
    async fn mark_done(&self, job: &ReadyJob, started: Instant) -> Result<(), JobError> {
        // A run cleaned (and perhaps started again) while the job ran must not get a marker
        // describing frames of its old split. A failed read is no such evidence.
        if let Err(Finding::Stale | Finding::RunCleaned) =
            current_run(job.inputs.as_ref(), &job.spec).await
        {
            return Err(JobError::Stale);
        }
        let marker = DoneMarker::new(&job.spec, &self.id, started.elapsed().as_secs_f64());
        job.outputs
            .put(&job.spec.done_key(), Bytes::from(marker.to_json()))
            .await
            .map_err(|e| JobError::from(anyhow::Error::from(e).context("writing the done marker")))
    }

    async fn complete(&self, lease: MessageLease, tag: &str) {
        match lease.complete().await {
            Ok(()) => {}
            // Someone else holds it now; they will find the done marker and drop it.
            Err(CloudError::LeaseLost { .. }) => {}
            Err(e) => self.log(&format!(
                "{tag}: done, but deleting its message failed ({e}); it will be dropped as a duplicate"
            )),
        }
    }

    fn log_done(&self, job: &ReadyJob, stats: &JobStats, started: Instant) {
        let skipped = if stats.skipped > 0 {
            format!(", {} already styled", stats.skipped)
        } else {
            String::new()
        };
        let times = match &stats.times {
            Some(times) => format!(" ({times})"),
            None => String::new(),
        };
        self.log(&format!(
            "{} ({}): {} frames in {:.2} s{skipped}{times}",
            job.tag,
            job.spec.frames,
            stats.styled,
            started.elapsed().as_secs_f64()
        ));
    }

    /// Hands a failed delivery back to the queue, visible again after `delay`.
    async fn give_back(
        &self,
        message: &mut ReceivedMessage,
        tag: &str,
        error: &str,
        delay: Duration,
    ) {
        // Jitter, so jobs that failed together do not all come back in the same second.
        let delay = if delay.is_zero() {
            delay
        } else {
            jittered(delay)
        };
        self.log(&format!(
            "{tag}: failed on delivery {} of {}: {error}; handed back{}",
            message.dequeue_count,
            self.max_deliveries,
            if delay.is_zero() {
                String::new()
            } else {
                format!(" for retry in {} s", delay.as_secs())
            }
        ));
        self.hand_back(message, delay, None, tag).await;
    }

    /// Makes the message visible again after `delay` (with a new body, if given). Storage
    /// trouble is tried through for as long as this delivery may still hold the message (one
    /// visibility timeout): a hand-back lost to an outage would bring the message back after the
    /// timeout with one more delivery counted against the job, the outage's cost not its own.
    async fn hand_back(
        &self,
        message: &mut ReceivedMessage,
        delay: Duration,
        body: Option<&str>,
        tag: &str,
    ) {
        let holds_until = Instant::now() + self.visibility;
        let mut troubled = false;
        loop {
            let handed = match body {
                Some(body) => {
                    self.cloud
                        .jobs
                        .set_visibility_and_body(message, delay, body)
                        .await
                }
                None => self.cloud.jobs.set_visibility(message, delay).await,
            };
            let e = match handed {
                Ok(()) if troubled => {
                    return self.log(&format!("{tag}: handed back once storage answered again"))
                }
                Ok(()) => return,
                Err(e) => e,
            };
            let pause = jittered(HAND_BACK_PAUSE);
            if !e.is_retryable() || Instant::now() + pause >= holds_until || cancelled() {
                return self.log(&format!(
                    "{tag}: could not hand it back ({e}); it returns after the visibility timeout"
                ));
            }
            if !troubled {
                self.log(&format!(
                    "{tag}: could not hand it back yet ({e}); trying again while the delivery holds it"
                ));
                troubled = true;
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Hands a delivery that failed on storage trouble back after `delay` (with jitter), noting in
    /// the message one more delivery lost to storage, so it does not count against the job.
    async fn retry_later(
        &self,
        message: &mut ReceivedMessage,
        spec: &JobSpec,
        error: &str,
        delay: Duration,
    ) {
        let delay = jittered(delay);
        let tag = format!("run {} job {}", spec.run_id, spec.job);
        self.log(&format!(
            "{tag}: storage trouble ({error}); handed back for retry in {} s, not counted against its {} deliveries",
            delay.as_secs(),
            self.max_deliveries
        ));
        let next = JobSpec {
            storage_retries: spec.storage_retries.saturating_add(1),
            ..spec.clone()
        };
        self.hand_back(message, delay, Some(&next.to_message()), &tag)
            .await;
    }

    async fn mark_failed(&self, subject: &Subject, reason: &str, dequeue_count: u32) {
        let marker = subject.failed_marker(reason, dequeue_count, &self.id);
        let written = match self.store(subject.outputs_container()) {
            Ok(outputs) => outputs
                .put(&subject.failed_key(), Bytes::from(marker.to_json()))
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            self.log(&format!(
                "{}: could not write its failed marker: {e}",
                subject.tag()
            ));
        }
    }

    async fn move_aside(&self, message: &ReceivedMessage, why: &str) {
        let poison = self.cloud.poison.name();
        // The poison queue may not exist when storage was set up by hand.
        let _ = self.cloud.poison.create_if_missing().await;
        let moved = dead_letter(
            self.cloud.jobs.as_ref(),
            self.cloud.poison.as_ref(),
            message,
        )
        .await;
        match moved {
            Ok(()) => self.log(&format!(
                "moved message {} to {poison}: {}",
                message.id,
                one_line(why)
            )),
            Err(e) => self.log(&format!(
                "could not move message {} to {poison} ({e}): {}",
                message.id,
                one_line(why)
            )),
        }
    }

    async fn delete(&self, message: &ReceivedMessage, tag: &str) {
        if let Err(e) = self.cloud.jobs.delete(message).await {
            self.log(&format!("{tag}: could not delete its message ({e})"));
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
        job: &ReadyJob,
        lease: &MessageLease,
        near_end: &NearEnd,
    ) -> Result<JobStats, JobError> {
        let spec = &job.spec;
        let todo = self.frames_to_style(job).await?;
        let stats = JobStats {
            styled: todo.len(),
            skipped: spec.frames.len() as usize - todo.len(),
            times: None,
        };
        if todo.is_empty() {
            return Ok(stats);
        }
        let (frames_tx, mut frames_rx) = mpsc::channel::<Result<(u32, RgbImage)>>(self.prefetch);
        let downloader = tokio::spawn(self.download_frames(job, todo, frames_tx));
        // Aborting the downloader on every way out keeps a failed job from
        // fetching frames nobody will style.
        let _abort = AbortOnDrop(downloader.abort_handle());

        let mut uploads: JoinSet<Result<()>> = JoinSet::new();
        let mut batches = Batches::new(
            (self, job, lease, near_end),
            &mut frames_rx,
            stats.styled,
            false,
        );
        while let Some(batch) = batches.next().await? {
            for (n, image) in batch.numbers.into_iter().zip(batch.styled) {
                let key = spec.run_id.styled_key(n, spec.frame_format);
                let upload = upload_styled(
                    job.outputs.clone(),
                    self.transfers.clone(),
                    key,
                    spec.frame_format,
                    (n, image),
                );
                uploads.spawn(upload);
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

    /// The run's style picture (`--method optimize`), fetched from beside the run once per run.
    async fn style_picture(&self, job: &ReadyJob) -> Result<Arc<RgbImage>> {
        let mut cached = self.style_picture.lock().await;
        if let Some((run, picture)) = cached.as_ref().filter(|(run, _)| *run == job.spec.run_id) {
            debug_assert_eq!(*run, job.spec.run_id);
            return Ok(picture.clone());
        }
        let key = job.spec.run_id.style_picture_key();
        let bytes = job
            .inputs
            .get(&key)
            .await
            .with_context(|| format!("downloading the style picture {key}"))?;
        let picture = tokio::task::spawn_blocking(move || {
            codec::decode_any(stylize_cloud::FrameFormat::Png, &bytes)
        })
        .await
        .map_err(|e| anyhow!("style picture decoder task failed: {e}"))?
        .with_context(|| format!("the style picture {key}"))?;
        let picture = Arc::new(picture);
        *cached = Some((job.spec.run_id.clone(), picture.clone()));
        Ok(picture)
    }

    /// The job's frames without a styled frame in storage yet (a redelivered job resumes).
    async fn frames_to_style(&self, job: &ReadyJob) -> Result<Vec<u32>> {
        let spec = &job.spec;
        let first_key = spec.run_id.styled_key(spec.frames.start, spec.frame_format);
        let last_key = spec
            .run_id
            .styled_key(spec.frames.end - 1, spec.frame_format);
        // One listing of the keys this range shares a prefix with, not one request per frame.
        let done: BTreeSet<u32> =
            existing_frames(job.outputs.as_ref(), common_prefix(&first_key, &last_key))
                .await
                .context("listing styled frames")?
                .into_iter()
                .filter(|n| spec.frames.frames().contains(n))
                .collect();
        Ok(spec.frames.frames().filter(|n| !done.contains(n)).collect())
    }

    /// Downloads and decodes the frames `todo` in order, `prefetch` at a time, into `out`; stops
    /// at the first error (sent as the last item) or when nobody listens.
    fn download_frames(
        &self,
        job: &ReadyJob,
        todo: Vec<u32>,
        out: mpsc::Sender<Result<(u32, RgbImage)>>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (blobs, transfers, run_id, prefetch) = (
            job.inputs.clone(),
            self.transfers.clone(),
            job.spec.run_id.clone(),
            self.prefetch,
        );
        let (width, height, format) = (job.spec.width, job.spec.height, job.spec.frame_format);
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
                        let image = tokio::task::spawn_blocking(move || {
                            codec::decode(format, &bytes, width, height)
                        })
                        .await
                        .map_err(|e| anyhow!("frame {n}: decoder task failed: {e}"))?
                        .with_context(|| format!("frame {n} ({key})"))?;
                        Ok((n, image))
                    }
                })
                .buffered(prefetch);
            while let Some(frame) = frames.next().await {
                let failed = frame.is_err();
                if out.send(frame).await.is_err() || failed {
                    break;
                }
            }
        }
    }
}

/// Whether the job's message belongs to the run in storage now; else what the worker found
/// (the run cleaned, the message from a cleaned run's earlier incarnation, or a failed read).
async fn current_run(inputs: &dyn BlobStore, spec: &JobSpec) -> Result<(), Finding> {
    match load_manifest(inputs, &spec.run_id).await {
        Ok(manifest) if spec.matches(&manifest) => Ok(()),
        Ok(_) => Err(Finding::Stale),
        Err(CloudError::NotFound(_)) => Err(Finding::RunCleaned),
        Err(e) => Err(Finding::CheckFailed(failure(&e.into()))),
    }
}

/// Encodes one styled frame and uploads it.
async fn upload_styled(
    outputs: Arc<dyn BlobStore>,
    transfers: Arc<Semaphore>,
    key: String,
    format: stylize_cloud::FrameFormat,
    (n, image): (u32, RgbImage),
) -> Result<()> {
    let bytes = tokio::task::spawn_blocking(move || codec::encode(format, &image))
        .await
        .map_err(|e| anyhow!("frame {n}: encoder task failed: {e}"))??;
    let _permit = transfers.acquire().await.expect("semaphore never closed");
    outputs
        .put(&key, Bytes::from(bytes))
        .await
        .with_context(|| format!("styled frame {n}: uploading"))
}

impl Examined {
    /// A message that names no job this worker can mark.
    fn without_job(finding: Finding) -> Self {
        Examined {
            finding,
            subject: None,
            ready: None,
        }
    }

    /// A job that will not be styled.
    fn about(subject: Subject, finding: Finding) -> Self {
        Examined {
            finding,
            subject: Some(subject),
            ready: None,
        }
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
    style: Arc<StyleSpec>,
    params: StyleParams,
    frames: Vec<RgbImage>,
    optimize: Option<Optimize>,
    reply: oneshot::Sender<Answer>,
}

/// A job's frames as they are decoded or downloaded, with their numbers; an error as the last item.
type Decoded = mpsc::Receiver<Result<(u32, RgbImage)>>;

/// A batch's styled frames and the compute thread's time on it.
type Answer = (Result<Vec<RgbImage>>, Duration);

/// `--method optimize` for a batch: the run's parameters and style picture, and how many of the
/// batch's first frames only warm the steadier up (a segment's frames before its range), which
/// keep the network's picture.
struct Optimize {
    params: OptimizeParams,
    picture: Arc<RgbImage>,
    warm_up: usize,
}

enum Stylizer {
    Network {
        engine: Box<Engine>,
        prepared: Option<(RunId, stylize_model::PreparedStyle)>,
        vgg19: Option<std::path::PathBuf>,
        /// The last run's optimiser (its VGG19 and the style's Gram matrices).
        optimizer: Option<(RunId, Box<FrameOptimizer>)>,
    },
    /// Test only: a fixed cost per frame and an obvious, exact result, or a device that
    /// fails every batch.
    Test { per_frame: Duration, fault: bool },
}

impl Compute {
    fn start(choice: &StylizerChoice) -> Result<Compute> {
        let choice = choice.clone();
        let (tx, rx) = std::sync::mpsc::channel::<Request>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(usize, String)>>();
        std::thread::Builder::new()
            .name("stylize-compute".into())
            .spawn(move || {
                let stylizer = Stylizer::load(choice);
                let mut stylizer = match stylizer {
                    Ok((stylizer, batch, describe)) => {
                        let _ = ready_tx.send(Ok((batch, describe)));
                        stylizer
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for request in rx {
                    let started = Instant::now();
                    // tch panics on some failing ops: one bad batch must not end the thread.
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        stylizer.style(&request)
                    }))
                    .unwrap_or_else(|_| Err(device_fault("the style network panicked")));
                    let _ = request.reply.send((result, started.elapsed()));
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

    /// Hands a batch to the compute thread; the answer comes on the returned channel.
    fn hand_over(
        &self,
        run: &RunId,
        (style, params): (&Arc<StyleSpec>, &StyleParams),
        frames: Vec<RgbImage>,
        optimize: Option<Optimize>,
    ) -> Result<oneshot::Receiver<Answer>> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            run: run.clone(),
            style: style.clone(),
            params: params.clone(),
            frames,
            optimize,
            reply,
        };
        self.requests
            .send(request)
            .map_err(|_| device_fault("the compute thread has stopped"))?;
        Ok(answer)
    }
}

/// The optimiser for the request's run, made (VGG19 loaded, once per run) when the last one was
/// another run's.
fn run_optimizer<'a>(
    slot: &'a mut Option<(RunId, Box<FrameOptimizer>)>,
    (vgg19, device): (Option<&std::path::Path>, stylize_model::Device),
    request: &Request,
    optimize: &Optimize,
) -> Result<&'a mut FrameOptimizer> {
    if slot.as_ref().is_none_or(|(run, _)| *run != request.run) {
        *slot = None;
        let vgg19 = vgg19.ok_or_else(|| {
            anyhow!("the run optimises its frames (--method optimize) but this worker has no VGG19 weights (set STYLIZE_VGG19)")
        })?;
        let method = Method::Optimize {
            params: optimize.params.clone(),
            vgg19: vgg19.to_path_buf(),
        };
        // Each frame on its own: a job's first frame has no result before it to carry, so the
        // run's steadier (the workers' or the restitcher's) steadies the optimised frames.
        let optimizer = FrameOptimizer::new(&method, Some(&optimize.picture), 0.0, device)?
            .expect("an optimising method");
        *slot = Some((request.run.clone(), Box::new(optimizer)));
    }
    Ok(&mut slot.as_mut().expect("made above").1)
}

/// The network's pictures `styled` of `frames`, optimised from the `warm_up`th on.
fn optimized(
    optimizer: &mut FrameOptimizer,
    frames: &[RgbImage],
    styled: Vec<RgbImage>,
    warm_up: usize,
) -> Result<Vec<RgbImage>> {
    frames
        .iter()
        .zip(styled)
        .enumerate()
        .map(|(i, (frame, fast))| match i < warm_up {
            true => Ok(fast),
            false => optimizer.next(frame, fast, |_, _| {}),
        })
        .collect()
}

/// A failure of the network's device or thread, counted towards giving up on the device.
fn device_fault(reason: &str) -> anyhow::Error {
    anyhow::Error::from(ModelError::Inference {
        reason: reason.to_owned(),
    })
}

impl Stylizer {
    /// Loads the stylizer (on the compute thread: the network lives there); with its batch size
    /// and a description for the log.
    fn load(choice: StylizerChoice) -> Result<(Stylizer, usize, String)> {
        match choice {
            StylizerChoice::Network { engine, vgg19 } => {
                let engine = Engine::new(&engine).context("cannot start the style network")?;
                let (batch, describe) = (engine.preferred_batch().max(1), engine.describe());
                let stylizer = Stylizer::Network {
                    engine: Box::new(engine),
                    prepared: None,
                    vgg19,
                    optimizer: None,
                };
                Ok((stylizer, batch, describe))
            }
            StylizerChoice::Test { per_frame, fault } => {
                let describe = format!(
                    "TEST STYLIZER: {} ms per frame, inverted colours, no network",
                    per_frame.as_millis()
                );
                // One frame per call, as on a CPU: the sleep then tracks frames exactly.
                Ok((Stylizer::Test { per_frame, fault }, 1, describe))
            }
        }
    }

    fn style(&mut self, request: &Request) -> Result<Vec<RgbImage>> {
        match self {
            Stylizer::Network {
                engine,
                prepared,
                vgg19,
                optimizer,
            } => {
                // One run's style is rebuilt once, then reused for all its jobs here.
                if prepared.as_ref().is_none_or(|(run, _)| *run != request.run) {
                    *prepared = None;
                    *prepared = Some((
                        request.run.clone(),
                        look::prepare(&request.style, engine, &request.params)?,
                    ));
                }
                let (_, style) = prepared.as_ref().expect("prepared above");
                let styled = engine.stylize(style, &request.frames)?;
                match &request.optimize {
                    Some(optimize) => {
                        let device = engine.device();
                        let optimizer = run_optimizer(
                            optimizer,
                            (vgg19.as_deref(), device),
                            request,
                            optimize,
                        )?;
                        optimized(optimizer, &request.frames, styled, optimize.warm_up)
                    }
                    None => Ok(styled),
                }
            }
            Stylizer::Test { per_frame, fault } => {
                std::thread::sleep(*per_frame * request.frames.len() as u32);
                if *fault {
                    return Err(device_fault("TEST STYLIZER: simulated device fault"));
                }
                Ok(request
                    .frames
                    .iter()
                    .map(|f| match &f.deep {
                        Some(deep) => RgbImage::from_deep(
                            f.width,
                            f.height,
                            deep.iter().map(|v| 65535 - v).collect(),
                        ),
                        None => RgbImage::new(
                            f.width,
                            f.height,
                            f.data.iter().map(|v| 255 - v).collect(),
                        ),
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
