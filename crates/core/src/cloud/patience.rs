//! Riding out storage outages and throttling: retries with exponential backoff and jitter for as long as the run is worth waiting.
//!
//! The SDK retries each request for seconds; an outage or a throttled account lasts minutes.
//! Everything the coordinator has done so far (frames uploaded, jobs queued, a restitch half
//! written) is lost if it gives up, so storage trouble must cost time, not the run.
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use stylize_cloud::Error as CloudError;

use crate::cancel::sleep_unless_cancelled;
use crate::units::clock;

/// The first pause after a failure; it doubles up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(30);

/// Retries storage calls that fail with retryable errors, each for up to `limit`; tells once
/// when trouble starts and once when storage answers again.
pub struct Patience {
    limit: Duration,
    say: Arc<dyn Fn(&str) + Send + Sync>,
    trouble_since: Mutex<Option<Instant>>,
}

impl Patience {
    pub fn new(limit: Duration, say: Arc<dyn Fn(&str) + Send + Sync>) -> Patience {
        Patience {
            limit,
            say,
            trouble_since: Mutex::new(None),
        }
    }

    /// No retries beyond the SDK's own (for commands a person runs and watches).
    pub fn none() -> Patience {
        Patience::new(Duration::ZERO, Arc::new(|_: &str| {}))
    }

    /// `op` until it succeeds, fails for good, or storage has been failing it for `limit`.
    pub async fn retry<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        let started = Instant::now();
        let mut pause = FIRST_PAUSE;
        loop {
            // Drawn before the check, so the jittered pause never carries past the limit.
            let wait = jittered(pause);
            match op().await {
                Ok(value) => {
                    self.recovered();
                    return Ok(value);
                }
                Err(e) if e.is_retryable() && started.elapsed() + wait <= self.limit => {
                    self.troubled(what, &e);
                    if !sleep_unless_cancelled(wait).await {
                        return Err(e);
                    }
                    pause = (pause * 2).min(LONGEST_PAUSE);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The value of a call whose failure costs nothing but what it would have told (a check, a
    /// count): not retried, but storage trouble is told as for any other call, so a stall spent
    /// in such calls is never silent.
    pub fn best_effort<T>(&self, what: &str, result: Result<T, CloudError>) -> Option<T> {
        match result {
            Ok(value) => {
                self.recovered();
                Some(value)
            }
            Err(e) => {
                if e.is_retryable() {
                    self.troubled(what, &e);
                }
                None
            }
        }
    }

    /// Tells (once per spell of trouble) that storage is failing `what`.
    pub fn troubled(&self, what: &str, e: &CloudError) {
        let mut since = self.trouble_since.lock().unwrap_or_else(|p| p.into_inner());
        if since.is_none() {
            *since = Some(Instant::now());
            (self.say)(&format!(
                "storage trouble while {what} ({e}); retrying for up to {} (--storage-patience)",
                clock(self.limit)
            ));
        }
    }

    /// Tells (once) that storage answers again after trouble.
    pub fn recovered(&self) {
        let mut since = self.trouble_since.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(start) = since.take() {
            (self.say)(&format!(
                "storage answers again after {}; going on",
                clock(start.elapsed())
            ));
        }
    }
}

/// `pause` scaled by a factor in [0.5, 1.5): many clients failing together do not retry in step.
pub fn jittered(pause: Duration) -> Duration {
    pause.mul_f64(0.5 + unit_random())
}

/// A number in [0, 1) that differs between calls, threads and processes; not for cryptography.
fn unit_random() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded per process and per instance: enough to spread retries apart.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn unavailable() -> CloudError {
        CloudError::Connection {
            operation: "put".into(),
            detail: "connection reset".into(),
        }
    }

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half() {
        let pause = Duration::from_secs(10);
        let samples: Vec<Duration> = (0..200).map(|_| jittered(pause)).collect();
        assert!(samples
            .iter()
            .all(|d| *d >= pause / 2 && *d < pause * 3 / 2));
        assert!(samples.iter().any(|d| *d != samples[0]), "not all equal");
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_failures_are_ridden_out_and_others_are_not() {
        let said = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = said.clone();
        let patience = Patience::new(
            Duration::from_secs(60),
            Arc::new(move |line: &str| log.lock().unwrap().push(line.to_owned())),
        );
        let calls = AtomicU32::new(0);
        let value = patience
            .retry("uploading frame 3", || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0..=3 => Err(unavailable()),
                    _ => Ok(7),
                }
            })
            .await
            .unwrap();
        assert_eq!((value, calls.load(Ordering::SeqCst)), (7, 5));
        let said = said.lock().unwrap().clone();
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].starts_with("storage trouble while uploading frame 3"));
        assert!(said[1].starts_with("storage answers again after"));

        let calls = AtomicU32::new(0);
        let refused = patience
            .retry("reading", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(CloudError::NotFound("x".into()))
            })
            .await;
        assert!(refused.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "not retryable: once");

        let started = tokio::time::Instant::now();
        let gave_up = patience
            .retry("listing", || async { Err::<(), _>(unavailable()) })
            .await;
        assert!(gave_up.is_err());
        let waited = started.elapsed();
        assert!(
            waited <= Duration::from_secs(60) && waited >= Duration::from_secs(20),
            "{waited:?}"
        );
    }

    /// A stall spent in checks and counts is told like any other (a frozen storage whose first
    /// failures all fell on such calls once went unsaid for its whole 30 s).
    #[test]
    fn best_effort_calls_tell_trouble_and_recovery_without_retrying() {
        let said = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = said.clone();
        let patience = Patience::new(
            Duration::from_secs(60),
            Arc::new(move |line: &str| log.lock().unwrap().push(line.to_owned())),
        );
        let missing =
            patience.best_effort("reading the queue's length", Err::<u64, _>(unavailable()));
        assert_eq!(missing, None);
        let absent =
            patience.best_effort("counting", Err::<u64, _>(CloudError::NotFound("x".into())));
        assert_eq!(absent, None);
        assert_eq!(patience.best_effort("counting", Ok(3u64)), Some(3));
        let said = said.lock().unwrap().clone();
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].starts_with("storage trouble while reading the queue's length"));
        assert!(said[1].starts_with("storage answers again after"));
    }
}
