//! Cancellation: one process-wide flag that Ctrl-C or SIGTERM raises and every stage checks between frames.
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static CANCELLED: AtomicBool = AtomicBool::new(false);

/// Whether the user asked to stop.
pub fn cancelled() -> bool {
    CANCELLED.load(Ordering::Relaxed)
}

/// Asks every stage to stop; returns whether a stop had been asked for already (a second Ctrl-C).
pub fn request_stop() -> bool {
    CANCELLED.swap(true, Ordering::SeqCst)
}

/// Waits `d`, returning early (false) when a stop is asked for.
pub async fn sleep_unless_cancelled(d: Duration) -> bool {
    let step = Duration::from_millis(100);
    let deadline = tokio::time::Instant::now() + d;
    loop {
        if cancelled() {
            return false;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return true;
        }
        tokio::time::sleep(step.min(deadline - now)).await;
    }
}
