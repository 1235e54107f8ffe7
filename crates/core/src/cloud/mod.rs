//! Cloud mode's engines: the coordinator that submits videos and restitches them, the worker that styles jobs, and the run listing.
//!
//! The protocol itself (manifest, jobs, markers, transports) lives in the
//! `stylize-cloud` crate; this module drives it.
pub mod bookkeeping;
pub mod codec;
pub mod coordinator;
pub mod delivery;
pub mod grant;
pub mod look;
pub mod patience;
pub mod runs;
pub mod watch;
pub mod worker;

use anyhow::{anyhow, Context, Result};
use stylize_cloud::{Bytes, Cloud, CloudConfig, QueuedMarker, RunManifest};

use patience::Patience;

/// Default seconds a received job stays invisible to other workers. The worker
/// renews it every third of this while it works, so it only bounds how long a
/// job of a worker that died (SIGKILL, lost node) waits before another takes it.
pub const DEFAULT_VISIBILITY_SECS: u64 = 60;
/// Default deliveries of one job before it is given up on and marked failed.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;
/// Default seconds one batch may take in the network before the worker calls its device hung.
/// A batch takes well under a second on a GPU and seconds on a CPU; a call still running after
/// minutes will not return (a wedged driver, a deadlocked kernel).
pub const DEFAULT_BATCH_DEADLINE_SECS: f64 = 300.0;
/// Default seconds a job may show no progress before the coordinator presumes its message lost:
/// five default visibility timeouts, so a job of a killed worker reappears on its own first.
pub const DEFAULT_REQUEUE_AFTER_SECS: f64 = 300.0;
/// Default seconds the coordinator rides out unreachable or throttling storage: outages of
/// minutes happen, and the work done so far is worth the wait.
pub const DEFAULT_STORAGE_PATIENCE_SECS: f64 = 900.0;
/// Default blob transfers in flight per process.
pub const DEFAULT_TRANSFERS: u32 = 16;

/// Which storage to use: a `--cloud` spec with the container and queue overrides.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// A `--cloud` spec (see `stylize_cloud::CloudConfig::from_spec`); may hold a key.
    pub spec: String,
    pub container: Option<String>,
    pub queue: Option<String>,
}

impl StorageOptions {
    /// Parses the spec with the overrides. The error never quotes the spec: it may hold a key.
    pub fn config(&self) -> Result<CloudConfig> {
        let mut config = CloudConfig::from_spec(&self.spec)?;
        if let Some(container) = &self.container {
            config = config.with_container(container)?;
        }
        if let Some(queue) = &self.queue {
            config = config.with_queue(queue)?;
        }
        Ok(config)
    }

    /// The parsed config and the clients for it (no request made yet).
    pub fn open(&self) -> Result<(CloudConfig, Cloud)> {
        let config = self.config()?;
        let cloud = Cloud::open(&config)?;
        Ok((config, cloud))
    }
}

/// The async runtime for transfers. Two worker threads at least: one can sit
/// in a blocking SDK call while the other keeps leases renewed.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("stylize-io")
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Sends job `job` of a run to the queue, then notes it as queued.
pub async fn enqueue(
    cloud: &Cloud,
    manifest: &RunManifest,
    job: u32,
    patience: &Patience,
) -> Result<()> {
    send_job(cloud, manifest, job, patience).await?;
    // After the send: a crash in between costs at worst a duplicate message,
    // which workers drop once the job is done; never a job that is not queued.
    note_queued(cloud, manifest, job, patience).await
}

/// Sends job `job` of a run to the queue (what the workers wait on); [`note_queued`] must follow.
pub async fn send_job(
    cloud: &Cloud,
    manifest: &RunManifest,
    job: u32,
    patience: &Patience,
) -> Result<()> {
    let mut spec = manifest
        .job_spec(job)
        .ok_or_else(|| anyhow!("job {job} is past the run's end"))?;
    // Workers started with another --container still find the run.
    spec.container = Some(cloud.container_name().to_owned());
    let (message, what) = (spec.to_message(), format!("queueing job {job}"));
    patience
        .retry(&what, || cloud.jobs.send(&message))
        .await
        .context(what)
}

/// Notes job `job` as queued, once its message is sent (a resumed coordinator reads the notes).
pub async fn note_queued(
    cloud: &Cloud,
    manifest: &RunManifest,
    job: u32,
    patience: &Patience,
) -> Result<()> {
    let marker = Bytes::from(QueuedMarker::new(job, cloud.jobs.name()).to_json());
    let outputs = cloud.outputs_of(manifest.output_container.as_deref())?;
    let (key, what) = (
        manifest.run_id.queued_key(job),
        format!("noting job {job} as queued"),
    );
    patience
        .retry(&what, || outputs.put(&key, marker.clone()))
        .await
        .context(what)
}

/// Runs blocking work (decoding, hashing, the network) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow!("worker thread failed: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_spec_errors_never_quote_the_key() {
        let key = "c2VjcmV0LWtleS1ieXRlcy1zZWNyZXQta2V5LWJ5dGVz";
        for spec in [
            format!("AccountName=a;AccountKey={key};Bogus"),
            format!("AccountName=a;AccountKey={key};Queue=Bad_Name"),
        ] {
            let options = StorageOptions {
                spec,
                container: None,
                queue: None,
            };
            let err = format!("{:#}", options.config().unwrap_err());
            assert!(!err.contains(key), "{err}");
        }
    }
}
