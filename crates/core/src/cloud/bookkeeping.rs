//! The coordinator's bookkeeping as pure functions: what to upload, which jobs are ready, running or within download reach, and when lost jobs are queued again.
//!
//! Nothing here touches storage or the clock: the coordinator feeds in what it
//! read (markers, listings) and the time, and acts on the answers. That keeps
//! every rule testable on its own.
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use stylize_cloud::{job_range, RunProgress};

/// The input frames to upload for the jobs in `to_queue` of a run of `frame_count` frames:
/// those storage lacks (not in `present`), and those of jobs that failed before (`reupload`:
/// uploaded afresh in case a damaged frame was the cause).
pub fn frames_to_upload(
    (frame_count, frames_per_job): (u32, u32),
    to_queue: &BTreeSet<u32>,
    present: &BTreeSet<u32>,
    reupload: &BTreeSet<u32>,
) -> BTreeSet<u32> {
    to_queue
        .iter()
        .filter_map(|&job| job_range(frame_count, frames_per_job, job))
        .flat_map(|range| range.frames())
        .filter(|n| !present.contains(n) || reupload.contains(n))
        .collect()
}

/// For each job to queue, how many of its frames are still to be uploaded; a job is queued
/// once its count reaches zero.
pub fn missing_per_job(
    to_queue: &BTreeSet<u32>,
    need: &BTreeSet<u32>,
    frames_per_job: u32,
) -> BTreeMap<u32, u32> {
    let mut missing: BTreeMap<u32, u32> = to_queue.iter().map(|&j| (j, 0)).collect();
    for n in need {
        *missing.entry(n / frames_per_job).or_default() += 1;
    }
    missing
}

/// Jobs whose frames are all in storage already (a resumed run): queued before any upload.
pub fn ready_jobs(missing: &BTreeMap<u32, u32>) -> Vec<u32> {
    missing
        .iter()
        .filter(|(_, left)| **left == 0)
        .map(|(job, _)| *job)
        .collect()
}

/// Notes one more frame of `frame`'s job uploaded; the job when that was its last.
pub fn frame_uploaded(
    missing: &mut BTreeMap<u32, u32>,
    frame: u32,
    frames_per_job: u32,
) -> Option<u32> {
    let job = frame / frames_per_job;
    let left = missing.get_mut(&job)?;
    *left = left.saturating_sub(1);
    (*left == 0).then_some(job)
}

/// Where a run stands, from its markers and the styled frames listed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    /// Jobs with styled frames but no done or failed marker: a worker has them.
    pub running: BTreeSet<u32>,
    /// Frames styled: those of done jobs and those already up from running ones.
    pub frames_styled: u64,
    /// Jobs waiting on the queue (not done, failed or running).
    pub queued: usize,
}

/// Where a run stands (see [`Standing`]).
pub fn standing(
    progress: &RunProgress,
    styled: &BTreeSet<u32>,
    frames_per_job: u32,
    frame_count: u32,
) -> Standing {
    let settled = |job: &u32| progress.done.contains(job) || progress.failed.contains_key(job);
    let running: BTreeSet<u32> = styled
        .iter()
        .map(|n| n / frames_per_job)
        .filter(|job| !settled(job))
        .collect();
    let partial = styled
        .iter()
        .filter(|n| running.contains(&(*n / frames_per_job)))
        .count() as u64;
    let frames_styled = (progress.frames_done + partial).min(u64::from(frame_count));
    let queued = progress.pending().len().saturating_sub(running.len());
    Standing {
        running,
        frames_styled,
        queued,
    }
}

/// The first job the restitcher cannot reach yet, having written `written` frames: done jobs
/// before it are downloaded. It stays `ahead_frames` (at least two jobs) ahead, so a lagging
/// early job leaves later done jobs in storage instead of on the output's disk.
pub fn download_reach(written: u64, frames_per_job: u32, ahead_frames: u32) -> u32 {
    let next_needed = (written / u64::from(frames_per_job)) as u32;
    next_needed.saturating_add((ahead_frames / frames_per_job).max(2))
}

/// Done jobs within `reach` whose frames are not being fetched yet (marked as started).
pub fn jobs_to_download(done: &BTreeSet<u32>, reach: u32, started: &mut BTreeSet<u32>) -> Vec<u32> {
    done.range(..reach)
        .copied()
        .filter(|job| started.insert(*job))
        .collect()
}

/// Jobs per done-marker bucket and frames per styled bucket (the names' shared prefixes).
pub const JOBS_PER_BUCKET: u32 = 100;
pub const FRAMES_PER_BUCKET: u32 = 1000;

/// The buckets a poll lists: those holding `frontier` (what the restitcher needs next), then one
/// more in rotation, each only while it still holds something `pending`. A poll costs a few
/// listings of at most a bucket each, however long the run; every pending bucket is seen once
/// per `pending.len()` polls.
pub fn buckets_to_list(pending: &BTreeSet<u32>, frontier: &BTreeSet<u32>, poll: u64) -> Vec<u32> {
    let mut buckets: Vec<u32> = frontier.intersection(pending).copied().collect();
    if !pending.is_empty() {
        let turn = (poll % pending.len() as u64) as usize;
        if let Some(&next) = pending.iter().nth(turn) {
            if !buckets.contains(&next) {
                buckets.push(next);
            }
        }
    }
    buckets
}

/// The done-marker buckets holding a job not settled yet, and the styled buckets holding a frame
/// of one.
pub fn pending_buckets(
    progress: &RunProgress,
    frame_count: u32,
    frames_per_job: u32,
) -> (BTreeSet<u32>, BTreeSet<u32>) {
    let (mut jobs, mut frames) = (BTreeSet::new(), BTreeSet::new());
    for job in progress.pending() {
        jobs.insert(job / JOBS_PER_BUCKET);
        if let Some(range) = job_range(frame_count, frames_per_job, job) {
            frames
                .extend((range.start / FRAMES_PER_BUCKET)..=((range.end - 1) / FRAMES_PER_BUCKET));
        }
    }
    (jobs, frames)
}

/// The buckets of the jobs `first_job..reach` (the restitcher's frontier): the done buckets and
/// the styled buckets.
pub fn frontier_buckets(
    first_job: u32,
    reach: u32,
    frame_count: u32,
    frames_per_job: u32,
) -> (BTreeSet<u32>, BTreeSet<u32>) {
    let (mut jobs, mut frames) = (BTreeSet::new(), BTreeSet::new());
    for job in first_job..reach {
        let Some(range) = job_range(frame_count, frames_per_job, job) else {
            break;
        };
        jobs.insert(job / JOBS_PER_BUCKET);
        frames.extend((range.start / FRAMES_PER_BUCKET)..=((range.end - 1) / FRAMES_PER_BUCKET));
    }
    (jobs, frames)
}

/// Watches a run for standstill: when nothing moves, it says so once, and when the queue stays
/// empty while jobs are pending (their messages were lost: the queue was cleared, or a clean
/// raced the run), it asks for those jobs to be queued again.
#[derive(Clone, Debug)]
pub struct Standstill {
    last_seen: (usize, usize),
    last_change: Instant,
    hinted: bool,
    empty_queue_checks: u32,
}

/// What the coordinator should do about a standstill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StandstillAction {
    /// Nothing.
    Wait,
    /// Say that no worker seems to be running (once per run), after this much quiet.
    HintNoWorker(Duration),
    /// Look at the queue's length, then tell [`Standstill::queue_length`].
    CheckQueue,
}

impl Standstill {
    /// Quiet time after which the coordinator says that no worker seems to be running.
    pub const HINT_AFTER: Duration = Duration::from_secs(60);
    /// Polls between two looks at the queue's length while nothing moves.
    pub const QUEUE_CHECK_EVERY: u64 = 15;
    /// Looks in a row at an empty queue before the pending jobs are queued again.
    pub const EMPTY_CHECKS_BEFORE_REQUEUE: u32 = 2;

    pub fn new(now: Instant) -> Self {
        Standstill {
            last_seen: (usize::MAX, usize::MAX),
            last_change: now,
            hinted: false,
            empty_queue_checks: 0,
        }
    }

    /// One poll: `settled_jobs` (done + failed) and `styled_frames` are what moves; `poll` counts
    /// polls from 1, each `poll_interval` apart.
    pub fn observe(
        &mut self,
        poll: u64,
        poll_interval: Duration,
        (settled_jobs, styled_frames): (usize, usize),
        standing: &Standing,
        run_settled: bool,
        now: Instant,
    ) -> StandstillAction {
        let seen = (settled_jobs, styled_frames);
        if seen != self.last_seen {
            self.last_seen = seen;
            self.last_change = now;
            return StandstillAction::Wait;
        }
        let quiet = now.saturating_duration_since(self.last_change);
        let idle = standing.running.is_empty();
        if idle && !self.hinted && quiet > Self::HINT_AFTER {
            self.hinted = true;
            return StandstillAction::HintNoWorker(quiet);
        }
        let check_due = poll.is_multiple_of(Self::QUEUE_CHECK_EVERY)
            && quiet > poll_interval * Self::QUEUE_CHECK_EVERY as u32;
        if check_due && idle && !run_settled {
            return StandstillAction::CheckQueue;
        }
        StandstillAction::Wait
    }

    /// The queue's length (counting hidden messages) as just read, `None` when it could not be
    /// read; true when the pending jobs should be queued again now.
    pub fn queue_length(&mut self, length: Option<u64>) -> bool {
        match length {
            Some(0) => self.empty_queue_checks += 1,
            _ => self.empty_queue_checks = 0,
        }
        if self.empty_queue_checks >= Self::EMPTY_CHECKS_BEFORE_REQUEUE {
            self.empty_queue_checks = 0;
            return true;
        }
        false
    }
}

/// Finds jobs whose message is gone while other runs keep the shared queue busy (so an empty
/// queue never says so): moved to the poison queue when its failed marker could not be written,
/// deleted by hand, or set aside by a worker of another protocol version.
///
/// Evidence that a job lives is its being queued and its styled frames growing. A job without
/// evidence for `requeue_after` is queued again once the queue has moved past it (a job queued
/// after it has shown evidence: the queue is roughly first in, first out); with nothing after it
/// to go by, after six times as long. Each requeue doubles its wait, so a job that only waits
/// behind a long backlog gets a few duplicates (dropped by workers as already done), not a flood.
#[derive(Clone, Debug)]
pub struct LostJobs {
    requeue_after: Duration,
    /// The least wait, however short `requeue_after`: how stale the evidence read can be.
    floor: Duration,
    jobs: BTreeMap<u32, JobWatch>,
}

#[derive(Clone, Debug)]
struct JobWatch {
    queued_at: Instant,
    evidence_at: Instant,
    styled: usize,
    requeues: u32,
    /// Styled frames or a marker seen since it was queued: it has been taken from the queue.
    taken: bool,
    settled: bool,
}

impl LostJobs {
    /// Jobs waited for longer than this between requeues, at most.
    const LONGEST_WAIT_FACTOR: u32 = 64;
    /// Without later jobs to show the queue moved on, a job waits this many times longer.
    const ALONE_FACTOR: u32 = 6;

    pub fn new(requeue_after: Duration) -> Self {
        LostJobs {
            requeue_after,
            floor: Duration::ZERO,
            jobs: BTreeMap::new(),
        }
    }

    /// Evidence may be up to `floor` old (styled frames are read in rotation): never wait less.
    pub fn set_floor(&mut self, floor: Duration) {
        self.floor = floor;
    }

    /// Whether no job is watched yet.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// The job was put on the queue (again) at `now`.
    pub fn queued(&mut self, job: u32, now: Instant) {
        let watch = self.jobs.entry(job).or_insert(JobWatch {
            queued_at: now,
            evidence_at: now,
            styled: 0,
            requeues: 0,
            taken: false,
            settled: false,
        });
        watch.queued_at = now;
        watch.evidence_at = now;
        watch.taken = false;
    }

    /// One look at the run: the settled jobs, the styled frames per job; the jobs to queue again now.
    pub fn observe(
        &mut self,
        progress: &RunProgress,
        styled_per_job: &BTreeMap<u32, usize>,
        now: Instant,
    ) -> Vec<u32> {
        for (job, watch) in &mut self.jobs {
            let styled = styled_per_job.get(job).copied().unwrap_or(0);
            if progress.done.contains(job) || progress.failed.contains_key(job) {
                watch.settled = true;
                watch.taken = true;
            } else if styled > watch.styled {
                watch.evidence_at = now;
                watch.taken = true;
            }
            watch.styled = styled;
        }
        let lost: Vec<u32> = self
            .jobs
            .iter()
            .filter(|(job, watch)| !watch.settled && self.seems_lost(**job, watch, now))
            .map(|(job, _)| *job)
            .collect();
        for &job in &lost {
            self.queued(job, now);
            if let Some(watch) = self.jobs.get_mut(&job) {
                watch.requeues += 1;
            }
        }
        lost
    }

    fn seems_lost(&self, job: u32, watch: &JobWatch, now: Instant) -> bool {
        let factor = 1u32
            .checked_shl(watch.requeues)
            .unwrap_or(u32::MAX)
            .min(Self::LONGEST_WAIT_FACTOR);
        let wait = self.requeue_after.max(self.floor) * factor;
        let quiet = now.saturating_duration_since(watch.evidence_at);
        if quiet <= wait {
            return false;
        }
        // Queued after it (later, or at the same moment with a higher index) and taken since.
        let passed_over = self.jobs.iter().any(|(&other, o)| {
            other != job
                && o.taken
                && (o.queued_at > watch.queued_at
                    || (o.queued_at == watch.queued_at && other > job))
        });
        passed_over || quiet > wait * Self::ALONE_FACTOR
    }
}

/// Styled frames per job, from the styled frames listed.
pub fn styled_per_job(styled: &BTreeSet<u32>, frames_per_job: u32) -> BTreeMap<u32, usize> {
    let mut counts = BTreeMap::new();
    for n in styled {
        *counts.entry(n / frames_per_job).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use stylize_cloud::FailedMarker;

    fn set(items: &[u32]) -> BTreeSet<u32> {
        items.iter().copied().collect()
    }

    fn progress(job_count: u32, done: &[u32], failed: &[u32], frames_done: u64) -> RunProgress {
        let failed = failed
            .iter()
            .map(|&job| {
                let json = format!(
                    r#"{{"version":{},"job":{job},"frames":{{"start":{},"end":{}}},"reason":"bad","dequeue_count":5,"worker":"w","failed":"2026-12-03T00:00:00Z"}}"#,
                    stylize_cloud::FORMAT_VERSION,
                    job * 10,
                    job * 10 + 10
                );
                (job, FailedMarker::from_json(json.as_bytes()).unwrap())
            })
            .collect();
        RunProgress {
            done: set(done),
            queued: (0..job_count).collect(),
            failed,
            job_count,
            frames_done,
        }
    }

    #[test]
    fn uploads_what_storage_lacks_and_what_failed_before() {
        // Three jobs of 4 frames, the last one short.
        let need = frames_to_upload((11, 4), &set(&[0, 2]), &set(&[0, 1, 2, 3, 8]), &set(&[1]));
        // Job 0: only the re-uploaded frame; job 1 is not to be queued; job 2: all but frame 8.
        assert_eq!(need, set(&[1, 9, 10]));
        let mut missing = missing_per_job(&set(&[0, 2, 5]), &need, 4);
        assert_eq!(missing, BTreeMap::from([(0, 1), (2, 2), (5, 0)]));
        assert_eq!(ready_jobs(&missing), vec![5]);
        assert_eq!(frame_uploaded(&mut missing, 9, 4), None);
        assert_eq!(frame_uploaded(&mut missing, 1, 4), Some(0));
        assert_eq!(frame_uploaded(&mut missing, 10, 4), Some(2));
        assert_eq!(
            frame_uploaded(&mut missing, 40, 4),
            None,
            "not a job to queue"
        );
    }

    #[test]
    fn running_jobs_are_those_with_styled_frames_and_no_marker() {
        // Jobs of 10 frames: 0 done, 1 failed, 2 half styled, 3 untouched.
        let p = progress(4, &[0], &[1], 10);
        let styled: BTreeSet<u32> = (0..10).chain(10..13).chain(20..25).collect();
        let s = standing(&p, &styled, 10, 40);
        assert_eq!(s.running, set(&[2]));
        assert_eq!(s.frames_styled, 15, "10 done + 5 of the running job");
        assert_eq!(s.queued, 1, "job 3 waits on the queue");
        let capped = standing(&progress(4, &[0, 2, 3], &[], 40), &styled, 10, 38);
        assert_eq!(capped.frames_styled, 38, "never past the frame count");
    }

    #[test]
    fn downloads_stay_within_reach_of_the_restitcher() {
        assert_eq!(download_reach(0, 10, 256), 25);
        assert_eq!(download_reach(95, 10, 256), 34);
        assert_eq!(download_reach(0, 240, 256), 2, "at least two jobs ahead");
        let mut started = set(&[0]);
        let done = set(&[0, 1, 2, 7, 30]);
        assert_eq!(jobs_to_download(&done, 25, &mut started), vec![1, 2, 7]);
        assert_eq!(
            jobs_to_download(&done, 25, &mut started),
            Vec::<u32>::new(),
            "each job once"
        );
        assert_eq!(jobs_to_download(&done, 34, &mut started), vec![30]);
        // Two hours at 60 fps in 240-frame jobs: a poll lists a frontier bucket and one more.
        let (frame_count, per_job) = (432_000, 240);
        let p = progress(1800, &(0..150).collect::<Vec<_>>(), &[], 150 * 240);
        let (jobs, frames) = pending_buckets(&p, frame_count, per_job);
        assert_eq!(jobs.len(), 17, "buckets of jobs 150..1800");
        assert_eq!(frames.len(), 432 - 36, "frame 36,000 on");
        let (front_jobs, front_frames) = frontier_buckets(150, 152, frame_count, per_job);
        assert_eq!((front_jobs, front_frames.clone()), (set(&[1]), set(&[36])));
        for poll in 0..500 {
            let listed = buckets_to_list(&frames, &front_frames, poll);
            assert!(listed.len() <= 2 && listed[0] == 36, "{listed:?}");
        }
        let seen: BTreeSet<u32> = (0..396)
            .flat_map(|poll| buckets_to_list(&frames, &set(&[]), poll))
            .collect();
        assert_eq!(seen, frames, "every pending bucket in one rotation");
        assert!(
            buckets_to_list(&set(&[]), &set(&[4]), 9).is_empty(),
            "nothing pending"
        );
    }

    #[test]
    fn a_job_passed_over_without_progress_is_queued_again_with_growing_waits() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut lost = LostJobs::new(Duration::from_secs(10));
        for job in 0..3 {
            lost.queued(job, start);
        }
        let none = BTreeMap::new();
        let p = progress(3, &[], &[], 0);
        assert!(lost.observe(&p, &none, at(5)).is_empty());
        // Job 0 starts (frames appear), then stops; job 1 is taken after it; job 2 never shows.
        let some = BTreeMap::from([(0, 2), (1, 1)]);
        assert!(lost.observe(&p, &some, at(6)).is_empty());
        assert!(
            lost.observe(&p, &some, at(15)).is_empty(),
            "within its wait"
        );
        // Job 0 was passed over by job 1; job 1 itself has nothing taken after it yet.
        assert_eq!(lost.observe(&p, &some, at(17)), vec![0]);
        assert!(
            lost.observe(&p, &some, at(40)).is_empty(),
            "job 0 now waits 20 s"
        );
        // Job 2, queued last with nothing after it to go by, waits six times as long.
        let p = progress(3, &[1], &[], 0);
        assert_eq!(lost.observe(&p, &some, at(61)), vec![2]);
        assert!(lost.observe(&p, &some, at(62)).is_empty());
        // Job 2's copy is taken: job 0, requeued before it and still quiet, was passed over again.
        let more = BTreeMap::from([(0, 2), (1, 1), (2, 1)]);
        assert_eq!(lost.observe(&p, &more, at(70)), vec![0]);
        let p = progress(3, &[0, 1, 2], &[], 0);
        assert!(
            lost.observe(&p, &more, at(10_000)).is_empty(),
            "settled jobs never"
        );
        assert_eq!(
            styled_per_job(&set(&[0, 1, 5, 12]), 4),
            BTreeMap::from([(0, 2), (1, 1), (3, 1)])
        );
    }

    #[test]
    fn a_standstill_hints_once_then_requeues_after_two_empty_looks() {
        let start = Instant::now();
        let poll = Duration::from_secs(1);
        let idle = Standing::default();
        let mut watch = Standstill::new(start);
        let at = |s: u64| start + Duration::from_secs(s);
        assert_eq!(
            watch.observe(1, poll, (0, 0), &idle, false, at(1)),
            StandstillAction::Wait
        );
        assert_eq!(
            watch.observe(15, poll, (0, 0), &idle, false, at(15)),
            StandstillAction::Wait,
            "not quiet for 15 polls yet"
        );
        assert_eq!(
            watch.observe(30, poll, (0, 0), &idle, false, at(30)),
            StandstillAction::CheckQueue
        );
        assert!(!watch.queue_length(Some(0)));
        assert!(
            !watch.queue_length(Some(3)),
            "a message seen resets the count"
        );
        assert!(!watch.queue_length(Some(0)));
        assert!(
            !watch.queue_length(None),
            "an unreadable length is not an empty queue"
        );
        assert!(!watch.queue_length(Some(0)));
        assert!(watch.queue_length(Some(0)), "two empty looks in a row");
        assert!(!watch.queue_length(Some(0)), "and the count starts over");
        assert_eq!(
            watch.observe(62, poll, (0, 0), &idle, false, at(62)),
            StandstillAction::HintNoWorker(Duration::from_secs(61))
        );
        assert_eq!(
            watch.observe(63, poll, (0, 0), &idle, false, at(63)),
            StandstillAction::Wait,
            "the hint is said once"
        );
        assert_eq!(
            watch.observe(75, poll, (0, 0), &idle, true, at(75)),
            StandstillAction::Wait,
            "a settled run needs no requeue"
        );
        let busy = Standing {
            running: set(&[3]),
            ..Standing::default()
        };
        assert_eq!(
            watch.observe(90, poll, (0, 0), &busy, false, at(90)),
            StandstillAction::Wait,
            "a running job is not a standstill"
        );
        assert_eq!(
            watch.observe(91, poll, (1, 0), &idle, false, at(91)),
            StandstillAction::Wait,
            "progress resets the quiet time"
        );
        assert_eq!(
            watch.observe(105, poll, (1, 0), &idle, false, at(105)),
            StandstillAction::Wait
        );
    }
}
