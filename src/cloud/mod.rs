//! Cloud mode: fan styling out over `stylize worker` processes through blob storage and a queue (coordinator, worker, run listing).
//!
//! The protocol itself (manifest, jobs, markers, transports) lives in the
//! `stylize-cloud` crate; this module is the binary's side of it: the
//! coordinator that uploads frames and restitches the result, the worker that
//! styles jobs, and `stylize runs`.
mod args;
mod codec;
mod coordinator;
mod look;
mod runs;
mod worker;

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use stylize_cloud::{Bytes, Cloud, CloudConfig, RunManifest};

pub use args::{CloudArgs, RunsArgs, WorkerArgs};
use coordinator::Finished;

use crate::config::RunConfig;

/// `stylize INPUT... --style X --cloud STORAGE`.
/// With `compare`, each input also gets its side-by-side video, as in local mode.
pub fn coordinate(config: RunConfig, args: &CloudArgs, compare: bool) -> Result<i32> {
    let finished = coordinator::run(config, args, compare)?;
    Ok(i32::from(finished.contains(&Finished::Failed)))
}

/// One input through the cloud with its side-by-side video (`stylize demo --cloud`): the frames
/// written, or an error once the coordinator has reported why.
pub fn coordinate_with_side(config: RunConfig, args: &CloudArgs) -> Result<u64> {
    match coordinator::run(config, args, true)?.first() {
        Some(Finished::Written(frames)) => Ok(*frames),
        _ => bail!("the cloud run did not complete; run the same command again to resume it"),
    }
}

/// `stylize worker --cloud STORAGE`.
pub fn worker(args: &WorkerArgs) -> Result<i32> {
    worker::run(args)
}

/// `stylize runs [clean RUN] --cloud STORAGE`.
pub fn runs(args: &RunsArgs) -> Result<i32> {
    runs::run(args)
}

/// Parses a `--cloud` spec with the `--container`/`--queue` overrides. The
/// error never quotes the spec: it may hold a key.
fn open_config(spec: &str, container: Option<&str>, queue: Option<&str>) -> Result<CloudConfig> {
    let mut config = CloudConfig::from_spec(spec)?;
    if let Some(container) = container {
        config = config.with_container(container)?;
    }
    if let Some(queue) = queue {
        config = config.with_queue(queue)?;
    }
    Ok(config)
}

fn open(spec: &str, container: Option<&str>, queue: Option<&str>) -> Result<(CloudConfig, Cloud)> {
    let config = open_config(spec, container, queue)?;
    let cloud = Cloud::open(&config)?;
    Ok((config, cloud))
}

/// The async runtime for transfers. Two worker threads at least: one can sit
/// in a blocking SDK call while the other keeps leases renewed.
fn runtime() -> Result<tokio::runtime::Runtime> {
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
async fn enqueue(cloud: &Cloud, manifest: &RunManifest, job: u32) -> Result<()> {
    let mut spec = manifest
        .job_spec(job)
        .ok_or_else(|| anyhow!("job {job} is past the run's end"))?;
    // Workers started with another --container still find the run.
    spec.container = Some(cloud.container_name().to_owned());
    cloud
        .jobs
        .send(&spec.to_message())
        .await
        .with_context(|| format!("queueing job {job}"))?;
    // After the send: a crash in between costs at worst a duplicate message,
    // which workers drop once the job is done; never a job that is not queued.
    let marker = serde_json::json!({ "job": job, "queue": cloud.jobs.name() });
    cloud
        .outputs_of(manifest.output_container.as_deref())?
        .put(
            &manifest.run_id.queued_key(job),
            Bytes::from(marker.to_string()),
        )
        .await
        .with_context(|| format!("noting job {job} as queued"))
}

/// Waits `d`, returning early (false) when Ctrl-C or SIGTERM arrives.
async fn sleep_unless_cancelled(d: Duration) -> bool {
    let step = Duration::from_millis(100);
    let deadline = tokio::time::Instant::now() + d;
    loop {
        if crate::pipeline::cancelled() {
            return false;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return true;
        }
        tokio::time::sleep(step.min(deadline - now)).await;
    }
}

/// `h:mm:ss`, as in `worker 0 processed 3124 frames in 0:10:43`.
fn hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// `1.4 MB`, `512 KB`: sizes for summaries.
fn bytes(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else {
        format!("{:.0} KB", n / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(hms(Duration::from_secs(643)), "0:10:43");
        assert_eq!(hms(Duration::from_secs(3725)), "1:02:05");
        assert_eq!(bytes(540_000.0), "540 KB");
        assert_eq!(bytes(1_384_000.0), "1.4 MB");
    }

    #[test]
    fn bad_spec_errors_never_quote_the_key() {
        let key = "c2VjcmV0LWtleS1ieXRlcy1zZWNyZXQta2V5LWJ5dGVz";
        for spec in [
            format!("AccountName=a;AccountKey={key};Bogus"),
            format!("AccountName=a;AccountKey={key};Queue=Bad_Name"),
        ] {
            let err = format!("{:#}", open_config(&spec, None, None).unwrap_err());
            assert!(!err.contains(key), "{err}");
        }
    }
}
