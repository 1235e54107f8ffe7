//! A job's frames on their way through the compute thread: two batches handed over at once, so the network starts its next batch the moment it ends one.
//!
//! With one batch at a time the device idles after every batch while this task
//! wakes, takes the result, hands it on, gathers the next frames and sends them:
//! a few milliseconds on a loaded machine, a large share of a GPU's ~10 ms
//! batch. A second batch already waiting on the compute thread hides that.

use std::collections::VecDeque;

use super::*;

/// Batches handed to the compute thread ahead of the one being waited for.
const BATCHES_IN_FLIGHT: usize = 2;

/// One batch with the compute thread.
struct Handed {
    numbers: Vec<u32>,
    /// The frames as decoded, kept for the steadier when asked for.
    originals: Vec<Option<RgbImage>>,
    reply: oneshot::Receiver<Answer>,
}

/// A styled batch: the frames' numbers, the originals when kept, the styled frames.
pub(super) struct StyledBatch {
    pub numbers: Vec<u32>,
    pub originals: Vec<Option<RgbImage>>,
    pub styled: Vec<RgbImage>,
}

/// The frames of one job, taken from `frames` and styled in order.
pub(super) struct Batches<'a> {
    jobs: &'a Jobs,
    job: &'a ReadyJob,
    lease: &'a MessageLease,
    near_end: &'a NearEnd,
    frames: &'a mut Decoded,
    style: Arc<StyleSpec>,
    /// Frames not yet taken from `frames`.
    left: usize,
    keep_originals: bool,
    handed: VecDeque<Handed>,
    /// The compute thread's busy time on this job's batches.
    network: Duration,
}

impl<'a> Batches<'a> {
    /// Styles `total` frames from `frames`; frames before the job's range only warm the steadier
    /// up (for `--method optimize` they keep the network's picture); with `keep_originals` each
    /// batch comes back with its frames as decoded.
    pub(super) fn new(
        (jobs, job, lease, near_end): (&'a Jobs, &'a ReadyJob, &'a MessageLease, &'a NearEnd),
        frames: &'a mut Decoded,
        total: usize,
        keep_originals: bool,
    ) -> Self {
        Batches {
            jobs,
            job,
            lease,
            near_end,
            frames,
            style: Arc::new(job.spec.style.clone()),
            left: total,
            keep_originals,
            handed: VecDeque::new(),
            network: Duration::ZERO,
        }
    }

    /// The next styled batch in order; `None` once all are out.
    pub(super) async fn next(&mut self) -> Result<Option<StyledBatch>, JobError> {
        while self.handed.len() < BATCHES_IN_FLIGHT && self.left > 0 {
            self.hand_over_next().await?;
        }
        let Some(handed) = self.handed.pop_front() else {
            return Ok(None);
        };
        let count = handed.numbers.len();
        // The deadline counts from here: the batch before this one is back, so the device has
        // been on this one at most this long.
        let (styled, busy) = match tokio::time::timeout(self.jobs.batch_deadline, handed.reply)
            .await
        {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => return Err(device_fault("the compute thread stopped mid-batch").into()),
            Err(_) => {
                return Err(JobError::Hung(format!(
                "the network did not return a batch of {count} frame{} within {} s (--batch-deadline)",
                if count == 1 { "" } else { "s" },
                self.jobs.batch_deadline.as_secs_f64()
            )))
            }
        };
        self.network += busy;
        Ok(Some(StyledBatch {
            numbers: handed.numbers,
            originals: handed.originals,
            styled: styled?,
        }))
    }

    /// The compute thread's busy time on the batches returned so far.
    pub(super) fn network_time(&self) -> Duration {
        self.network
    }

    /// Takes the next batch of frames and hands it to the compute thread, unless the worker is
    /// shutting down or has lost the job.
    async fn hand_over_next(&mut self) -> Result<(), JobError> {
        let batch = self.next_frames().await?;
        self.left -= batch.len();
        if self.left <= self.jobs.compute.batch {
            // At most one batch after this one: time to fetch the next job.
            self.near_end.raise();
        }
        self.jobs.check_drain()?;
        if self.lease.is_lost() {
            return Err(JobError::LeaseLost);
        }
        let (numbers, images): (Vec<u32>, Vec<RgbImage>) = batch.into_iter().unzip();
        let originals = match self.keep_originals {
            true => images.iter().cloned().map(Some).collect(),
            false => vec![None; images.len()],
        };
        let job = self.job;
        let optimize = match &job.optimize {
            Some(params) => Some(Optimize {
                params: params.clone(),
                picture: self.jobs.style_picture(job).await?,
                // Frames before the job's range only warm the steadier up.
                warm_up: numbers
                    .iter()
                    .filter(|&&n| n < job.spec.frames.start)
                    .count(),
            }),
            None => None,
        };
        let reply = self.jobs.compute.hand_over(
            &job.spec.run_id,
            (&self.style, &job.params),
            images,
            optimize,
        )?;
        self.handed.push_back(Handed {
            numbers,
            originals,
            reply,
        });
        Ok(())
    }

    /// The next batch of frames: at least one, at most a batch or what is left.
    async fn next_frames(&mut self) -> Result<Vec<(u32, RgbImage)>, JobError> {
        let size = self.jobs.compute.batch.min(self.left);
        let mut batch = Vec::with_capacity(size);
        match self.frames.recv().await {
            Some(frame) => batch.push(frame?),
            None => {
                return Err(JobError::Failed(anyhow!(
                    "the frame downloads stopped early"
                )))
            }
        }
        while batch.len() < size {
            match self.frames.recv().await {
                Some(frame) => batch.push(frame?),
                None => break,
            }
        }
        Ok(batch)
    }
}
