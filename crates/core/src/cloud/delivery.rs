//! The fate of one delivery of a job message, decided in one place: a pure function from what the worker found to what it does.
//!
//! Delivery is at least once, so the worker checks before it works (is this a
//! job of ours, is the run still there, is the job already done) and decides
//! again after (done, stopped, lost, failed). Every path through the worker
//! goes through [`decide`], which the table test below pins down.
use std::time::Duration;

/// What the worker found out about one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The message is not a job of this protocol (foreign, or another format version).
    NotAJob(String),
    /// A job, but its containers cannot be opened (an invalid name in the message).
    NoStores(String),
    /// A job of this protocol whose style or parameters this build cannot use.
    UnusableLook(String),
    /// The run's manifest is gone: the run was cleaned.
    RunCleaned,
    /// The message is from an earlier incarnation of its run (cleaned and started again).
    Stale,
    /// The job's done marker exists: a duplicate delivery.
    AlreadyDone,
    /// Reading the manifest or the done marker failed.
    CheckFailed(Failure),
    /// Every check passed: the job can be styled.
    Ready,
    /// The job was styled and its done marker written.
    Styled,
    /// The worker is shutting down and the job did not finish within the drain time.
    Interrupted,
    /// The visibility ran out and another worker owns the message now.
    LeaseLost,
    /// A batch outlived its deadline: this worker's device is hung, another worker should try.
    Hung,
    /// Styling the job (or writing its done marker) failed.
    StyleFailed(Failure),
}

/// An error as the decision needs it: its text and whether trying again later can help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub error: String,
    /// True for storage hiccups and transient device trouble; false when the next delivery
    /// would fail the same way (a corrupt frame).
    pub retryable: bool,
    /// Storage was unreachable or throttling: the job itself is not at fault, so the delivery
    /// does not count against its budget.
    pub storage: bool,
}

/// What the worker does with the delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Style the job (with the message's visibility renewed while it works).
    Style,
    /// Delete the message: the job needs no more work (the reason is for the log).
    Drop(&'static str),
    /// Delete the message: the job is done.
    Complete,
    /// Hand the message back: visible to workers again after this delay.
    GiveBack(Duration),
    /// Storage trouble: hand the message back after this delay, noting in it one more delivery
    /// lost to storage, so it does not count against the job's budget.
    RetryLater(Duration),
    /// Write the job's failed marker (so its coordinator stops waiting), then move the message
    /// to the poison queue. The reason goes into the marker.
    FailJob(String),
    /// Move the message to the poison queue without a marker (it names no job that can be marked).
    MoveAside(String),
    /// Leave the message alone: another worker holds it.
    Forget,
}

/// The pause before a retryable failure's message comes back, growing with its deliveries.
pub fn retry_delay(dequeue_count: u32) -> Duration {
    Duration::from_secs(5 * u64::from(dequeue_count.min(12)))
}

/// The pause before a job that failed on storage trouble comes back: doubling from 5 s up to
/// 5 minutes, so a throttled account is given room rather than hammered (jitter is added when
/// the message is handed back).
pub fn storage_retry_delay(storage_retries: u32) -> Duration {
    let doubled = 5u64.saturating_mul(1u64 << storage_retries.min(6));
    Duration::from_secs(doubled.min(300))
}

/// The one decision: what to do with a delivery given what was found, the job's deliveries that
/// count (all but those lost to storage, see `JobSpec::counted_deliveries`), its storage retries
/// so far, and the most deliveries a job gets.
pub fn decide(
    finding: &Finding,
    dequeue_count: u32,
    storage_retries: u32,
    max_deliveries: u32,
) -> Action {
    let give_back = |failure: &Failure| {
        // A failure on the data comes back at once: the next delivery fails as fast, so the
        // job reaches its end quickly. A hiccup waits, longer each time.
        Action::GiveBack(if failure.retryable {
            retry_delay(dequeue_count)
        } else {
            Duration::ZERO
        })
    };
    match finding {
        // Storage trouble costs time, not the job: a minute of throttling must not fail it.
        Finding::CheckFailed(f) | Finding::StyleFailed(f) if f.storage => {
            Action::RetryLater(storage_retry_delay(storage_retries))
        }
        Finding::NotAJob(why) | Finding::NoStores(why) => Action::MoveAside(why.clone()),
        Finding::UnusableLook(why) => Action::FailJob(why.clone()),
        Finding::RunCleaned => Action::Drop("the run was cleaned (no manifest)"),
        Finding::Stale => Action::Drop(
            "the run was cleaned and started again since the job was queued (its manifest no longer lists this job)",
        ),
        Finding::AlreadyDone => Action::Drop("already done (a duplicate delivery)"),
        // The limit holds for checks too: one that always fails (a credential that cannot read
        // the run's container) must end the job, not pass it between workers forever. Storage
        // trouble only costs time.
        Finding::CheckFailed(failure) if !failure.retryable && dequeue_count >= max_deliveries => Action::FailJob(
            format!("could not check the job: {}", failure.error),
        ),
        Finding::CheckFailed(failure) => give_back(failure),
        Finding::Ready if dequeue_count > max_deliveries => Action::FailJob(format!(
            "gave up after {} deliveries: no worker finished the job (killed, out of memory, or stuck past the visibility timeout)",
            dequeue_count - 1
        )),
        Finding::Ready => Action::Style,
        Finding::Styled => Action::Complete,
        Finding::Interrupted | Finding::Hung => Action::GiveBack(Duration::ZERO),
        Finding::LeaseLost => Action::Forget,
        Finding::StyleFailed(failure) if dequeue_count >= max_deliveries => {
            Action::FailJob(failure.error.clone())
        }
        Finding::StyleFailed(failure) => give_back(failure),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(retryable: bool) -> Failure {
        Failure {
            error: "boom".into(),
            retryable,
            storage: false,
        }
    }

    fn storage_trouble() -> Failure {
        Failure {
            error: "503 ServerBusy".into(),
            retryable: true,
            storage: true,
        }
    }

    #[test]
    fn every_finding_has_one_action() {
        let secs = Duration::from_secs;
        let max = 5;
        #[rustfmt::skip]
        let table: Vec<(Finding, u32, Action)> = vec![
            (Finding::NotAJob("x".into()), 1, Action::MoveAside("x".into())),
            (Finding::NotAJob("x".into()), 9, Action::MoveAside("x".into())),
            (Finding::NoStores("bad name".into()), 1, Action::MoveAside("bad name".into())),
            (Finding::UnusableLook("style".into()), 1, Action::FailJob("style".into())),
            (Finding::RunCleaned, 1, Action::Drop("the run was cleaned (no manifest)")),
            (Finding::Stale, 2, Action::Drop("the run was cleaned and started again since the job was queued (its manifest no longer lists this job)")),
            (Finding::AlreadyDone, 3, Action::Drop("already done (a duplicate delivery)")),
            (Finding::CheckFailed(failure(true)), 1, Action::GiveBack(secs(5))),
            (Finding::CheckFailed(failure(true)), 20, Action::GiveBack(secs(60))),
            (Finding::CheckFailed(failure(false)), 2, Action::GiveBack(Duration::ZERO)),
            (Finding::CheckFailed(failure(false)), 5, Action::FailJob("could not check the job: boom".into())),
            (Finding::CheckFailed(failure(false)), 9, Action::FailJob("could not check the job: boom".into())),
            (Finding::Ready, 1, Action::Style),
            (Finding::Ready, 5, Action::Style),
            (Finding::Ready, 6, Action::FailJob("gave up after 5 deliveries: no worker finished the job (killed, out of memory, or stuck past the visibility timeout)".into())),
            (Finding::Styled, 6, Action::Complete),
            (Finding::Interrupted, 2, Action::GiveBack(Duration::ZERO)),
            (Finding::LeaseLost, 2, Action::Forget),
            (Finding::Hung, 5, Action::GiveBack(Duration::ZERO)),
            (Finding::StyleFailed(failure(true)), 2, Action::GiveBack(secs(10))),
            (Finding::StyleFailed(failure(false)), 4, Action::GiveBack(Duration::ZERO)),
            (Finding::StyleFailed(failure(true)), 5, Action::FailJob("boom".into())),
            (Finding::StyleFailed(failure(false)), 7, Action::FailJob("boom".into())),
        ];
        for (finding, dequeue_count, expected) in table {
            assert_eq!(
                decide(&finding, dequeue_count, 0, max),
                expected,
                "{finding:?} on delivery {dequeue_count}"
            );
        }
    }

    #[test]
    fn storage_trouble_never_spends_the_job_budget() {
        let secs = Duration::from_secs;
        for (finding, retries, expected) in [
            (Finding::StyleFailed(storage_trouble()), 0, secs(5)),
            (Finding::StyleFailed(storage_trouble()), 3, secs(40)),
            (Finding::CheckFailed(storage_trouble()), 20, secs(300)),
        ] {
            // Even far past the budget by the raw count: the job is not at fault.
            assert_eq!(
                decide(&finding, 30, retries, 5),
                Action::RetryLater(expected)
            );
        }
    }

    #[test]
    fn retry_delays_grow_then_stop_growing() {
        assert_eq!(retry_delay(1), Duration::from_secs(5));
        assert_eq!(retry_delay(12), Duration::from_secs(60));
        assert_eq!(retry_delay(1000), Duration::from_secs(60));
    }
}
