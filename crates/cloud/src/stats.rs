//! Counting what a process asks of storage, for measuring bookkeeping costs: with `STYLIZE_STORAGE_STATS=1` every store and queue counts its requests, and a line on stderr says each minute's totals.
//!
//! Requests are counted as Azure bills them: one per call, and one per 5,000 entries of a listing
//! (the service's page size), so the `dir:` transport measures what Azure would be asked.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::store::{BlobEntry, BlobStore, JobQueue, ReceivedMessage};
use crate::Result;

/// The environment variable that turns counting on.
pub const STATS_VAR: &str = "STYLIZE_STORAGE_STATS";
/// Entries per page of a listing.
const PAGE: u64 = 5000;

/// The process's counters, shared by every counted store and queue.
#[derive(Debug, Default)]
pub struct Counters {
    requests: AtomicU64,
    listed: AtomicU64,
    queue: AtomicU64,
}

impl Counters {
    fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn listing(&self, entries: usize) {
        let entries = entries as u64;
        self.requests
            .fetch_add(entries.div_ceil(PAGE).max(1), Ordering::Relaxed);
        self.listed.fetch_add(entries, Ordering::Relaxed);
    }

    fn queue_request(&self) {
        self.request();
        self.queue.fetch_add(1, Ordering::Relaxed);
    }
}

/// The counters when counting is on (`STYLIZE_STORAGE_STATS` set and not `0`), with the reporting
/// thread started on first use.
pub fn counters() -> Option<Arc<Counters>> {
    static COUNTERS: OnceLock<Option<Arc<Counters>>> = OnceLock::new();
    COUNTERS
        .get_or_init(|| {
            let on = std::env::var(STATS_VAR).is_ok_and(|v| !v.is_empty() && v != "0");
            on.then(|| {
                let counters = Arc::new(Counters::default());
                let reported = counters.clone();
                std::thread::spawn(move || report_every_minute(&reported));
                counters
            })
        })
        .clone()
}

fn report_every_minute(counters: &Counters) {
    let take = |c: &AtomicU64| c.swap(0, Ordering::Relaxed);
    loop {
        std::thread::sleep(Duration::from_secs(60));
        eprintln!(
            "storage: {} requests in the last minute ({} of them on queues), {} entries listed",
            take(&counters.requests),
            take(&counters.queue),
            take(&counters.listed)
        );
    }
}

/// A blob store that counts the requests made of it.
#[derive(Debug)]
pub struct CountedBlobs {
    pub inner: Arc<dyn BlobStore>,
    pub counters: Arc<Counters>,
}

#[async_trait]
impl BlobStore for CountedBlobs {
    async fn create_if_missing(&self) -> Result<()> {
        self.counters.request();
        self.inner.create_if_missing().await
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.counters.request();
        self.inner.put(key, bytes).await
    }

    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool> {
        self.counters.request();
        self.inner.put_if_absent(key, bytes).await
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        self.counters.request();
        self.inner.get(key).await
    }

    async fn get_to_file(&self, key: &str, path: &std::path::Path) -> Result<u64> {
        self.counters.request();
        self.inner.get_to_file(key, path).await
    }

    async fn put_file(&self, key: &str, path: &std::path::Path) -> Result<u64> {
        self.counters.request();
        self.inner.put_file(key, path).await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.counters.request();
        self.inner.exists(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>> {
        let entries = self.inner.list(prefix).await?;
        self.counters.listing(entries.len());
        Ok(entries)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.counters.request();
        self.inner.delete(key).await
    }

    fn location(&self) -> String {
        self.inner.location()
    }
}

/// A queue that counts the requests made of it.
#[derive(Debug)]
pub struct CountedQueue {
    pub inner: Arc<dyn JobQueue>,
    pub counters: Arc<Counters>,
}

#[async_trait]
impl JobQueue for CountedQueue {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn create_if_missing(&self) -> Result<()> {
        self.counters.queue_request();
        self.inner.create_if_missing().await
    }

    async fn send(&self, body: &str) -> Result<()> {
        self.counters.queue_request();
        self.inner.send(body).await
    }

    async fn receive(&self, visibility: Duration) -> Result<Option<ReceivedMessage>> {
        self.counters.queue_request();
        self.inner.receive(visibility).await
    }

    async fn set_visibility(
        &self,
        message: &mut ReceivedMessage,
        visibility: Duration,
    ) -> Result<()> {
        self.counters.queue_request();
        self.inner.set_visibility(message, visibility).await
    }

    async fn set_visibility_and_body(
        &self,
        message: &mut ReceivedMessage,
        visibility: Duration,
        body: &str,
    ) -> Result<()> {
        self.counters.queue_request();
        self.inner
            .set_visibility_and_body(message, visibility, body)
            .await
    }

    async fn delete(&self, message: &ReceivedMessage) -> Result<()> {
        self.counters.queue_request();
        self.inner.delete(message).await
    }

    async fn approximate_len(&self) -> Result<u64> {
        self.counters.queue_request();
        self.inner.approximate_len().await
    }

    async fn clear(&self) -> Result<()> {
        self.counters.queue_request();
        self.inner.clear().await
    }
}

/// `blobs`, counted when counting is on.
pub fn blobs(blobs: Arc<dyn BlobStore>) -> Arc<dyn BlobStore> {
    match counters() {
        Some(counters) => Arc::new(CountedBlobs {
            inner: blobs,
            counters,
        }),
        None => blobs,
    }
}

/// `queue`, counted when counting is on.
pub fn queue(queue: Arc<dyn JobQueue>) -> Arc<dyn JobQueue> {
    match counters() {
        Some(counters) => Arc::new(CountedQueue {
            inner: queue,
            counters,
        }),
        None => queue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_count_one_request_per_page() {
        let c = Counters::default();
        c.listing(0);
        c.listing(5000);
        c.listing(5001);
        c.request();
        c.queue_request();
        assert_eq!(c.requests.load(Ordering::Relaxed), 1 + 1 + 2 + 1 + 1);
        assert_eq!(c.listed.load(Ordering::Relaxed), 10_001);
        assert_eq!(c.queue.load(Ordering::Relaxed), 1);
    }
}
