//! The runs in storage: their listing with progress, deleting them (`runs clean`) and queueing their unfinished jobs again (`runs requeue`).
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use serde::Serialize;
use stylize_cloud::protocol::{frame_number_of, job_index_of};
use stylize_cloud::{
    delete_run, list_runs, load_manifest, BlobEntry, BlobStore, Cloud, DoneMarker,
    Error as CloudError, RunId, RunManifest, RunProgress,
};
use tokio::task::JoinSet;

/// One run as `stylize runs` lists it.
#[derive(Debug, Serialize)]
pub struct RunLine {
    pub run: String,
    pub input: String,
    pub frames: u32,
    pub width: u32,
    pub height: u32,
    pub frame_format: String,
    pub style: String,
    pub jobs: u32,
    pub jobs_done: usize,
    pub jobs_failed: usize,
    pub frames_uploaded: usize,
    pub frames_styled: usize,
    /// Bytes stored for the input frames and for the styled frames.
    pub bytes_frames: u64,
    pub bytes_styled: u64,
    pub created: String,
    pub state: &'static str,
    /// Each failed job: its frames and why.
    pub failures: Vec<String>,
    /// With details: the done markers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_jobs: Option<Vec<DoneMarker>>,
}

/// Every run in storage, and the queues' depths.
#[derive(Debug, Serialize)]
pub struct Listing {
    pub runs: Vec<RunLine>,
    pub queue: String,
    pub queued_messages: Option<u64>,
    /// The poison queue's name (the JSON listing leaves it out, as it always has).
    #[serde(skip)]
    pub poison: String,
    pub poison_messages: Option<u64>,
}

/// Lists the runs; with `details`, each done job's marker too (one read per job). Runs whose
/// manifest cannot be read are left out, each with a line to `warn`.
pub async fn list(cloud: &Cloud, details: bool, warn: &dyn Fn(&str)) -> Result<Listing> {
    let mut runs = Vec::new();
    for run in list_runs(cloud.blobs.as_ref()).await? {
        let manifest = match load_manifest(cloud.blobs.as_ref(), &run).await {
            Ok(m) => m,
            // Cleaned between the listing and now.
            Err(CloudError::NotFound(_)) => continue,
            Err(e) => {
                warn(&format!("run {run}: unreadable manifest: {e}"));
                continue;
            }
        };
        runs.push(describe_run(cloud, &manifest, details).await?);
    }
    Ok(Listing {
        runs,
        queue: cloud.jobs.name().to_owned(),
        queued_messages: cloud.jobs.approximate_len().await.ok(),
        poison: cloud.poison.name().to_owned(),
        poison_messages: cloud.poison.approximate_len().await.ok(),
    })
}

async fn describe_run(cloud: &Cloud, manifest: &RunManifest, details: bool) -> Result<RunLine> {
    let run = &manifest.run_id;
    let outputs = cloud.outputs_of(manifest.output_container.as_deref())?;
    let progress = RunProgress::load(outputs.as_ref(), manifest).await?;
    let size = |entries: &[BlobEntry]| entries.iter().map(|e| e.size).sum::<u64>();
    let (frames, styled_blobs, uploaded, styled, format) =
        stored(cloud, &outputs, manifest).await?;
    let state = if progress.is_complete() {
        "done"
    } else if !progress.failed.is_empty() {
        "failed"
    } else if (uploaded as u32) < manifest.frame_count {
        "uploading"
    } else {
        "styling"
    };
    let done_jobs = if details {
        Some(done_markers(&outputs, manifest, &progress).await?)
    } else {
        None
    };
    Ok(RunLine {
        run: run.to_string(),
        input: manifest.input_name.clone(),
        frames: manifest.frame_count,
        width: manifest.width,
        height: manifest.height,
        frame_format: format,
        style: manifest.style.label.clone(),
        jobs: manifest.job_count,
        jobs_done: progress.done.len(),
        jobs_failed: progress.failed.len(),
        frames_uploaded: uploaded,
        frames_styled: styled,
        bytes_frames: size(&frames),
        bytes_styled: size(&styled_blobs),
        created: manifest.created.to_string(),
        state,
        failures: progress
            .failed
            .values()
            .map(|f| format!("job {} ({}): {}", f.job, f.frames, f.reason))
            .collect(),
        done_jobs,
    })
}

/// The done markers of a run, in job order.
async fn done_markers(
    outputs: &Arc<dyn BlobStore>,
    manifest: &RunManifest,
    progress: &RunProgress,
) -> Result<Vec<DoneMarker>> {
    let mut reads = JoinSet::new();
    for &job in &progress.done {
        let key = manifest.run_id.done_key(job, &manifest.incarnation);
        let blobs = outputs.clone();
        reads.spawn(async move {
            let bytes = blobs.get(&key).await?;
            Ok::<_, anyhow::Error>(DoneMarker::from_json(&bytes)?)
        });
    }
    let mut markers = Vec::new();
    while let Some(read) = reads.join_next().await {
        markers.push(read.map_err(|e| anyhow!("read task failed: {e}"))??);
    }
    markers.sort_by_key(|m| m.job);
    Ok(markers)
}

/// Deletes a run's blobs, outputs first: the manifest, which says where they are, goes last.
/// Works without a manifest too, so a half-cleaned run can be finished off. The blobs deleted.
pub async fn clean(cloud: &Cloud, run: &RunId) -> Result<usize> {
    let mut n = 0;
    match load_manifest(cloud.blobs.as_ref(), run).await {
        Ok(manifest) if manifest.output_container.is_some() => {
            let outputs = cloud.outputs_of(manifest.output_container.as_deref())?;
            n += delete_run(outputs.as_ref(), run)
                .await
                .with_context(|| format!("cleaning run {run}'s outputs"))?;
        }
        Ok(_) | Err(CloudError::NotFound(_)) => {}
        Err(e) => return Err(anyhow::Error::from(e).context(format!("run {run}"))),
    }
    n += delete_run(cloud.blobs.as_ref(), run)
        .await
        .with_context(|| format!("cleaning run {run}"))?;
    Ok(n)
}

/// What `requeue` did to one run.
#[derive(Debug)]
pub struct Requeued {
    /// Jobs sent to the queue.
    pub queued: usize,
    pub done: usize,
    /// Jobs that had failed and were retried.
    pub failed_before: usize,
}

/// Queues a run's unfinished jobs again, failed ones included (their failed markers go).
pub async fn requeue(cloud: &Cloud, run: &RunId) -> Result<Requeued> {
    let manifest = load_manifest(cloud.blobs.as_ref(), run)
        .await
        .with_context(|| format!("run {run}"))?;
    let outputs = cloud.outputs_of(manifest.output_container.as_deref())?;
    let progress = RunProgress::load(outputs.as_ref(), &manifest).await?;
    for &job in progress.failed.keys() {
        outputs
            .delete(&run.failed_key(job, &manifest.incarnation))
            .await?;
    }
    let unfinished: Vec<u32> = (0..manifest.job_count)
        .filter(|j| !progress.done.contains(j))
        .collect();
    // Sent side by side: a long run has thousands of jobs, each one round trip.
    let mut sends = JoinSet::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(16));
    for job in unfinished.iter().copied() {
        let (cloud, manifest, slots) = (cloud.clone(), manifest.clone(), slots.clone());
        sends.spawn(async move {
            let _slot = slots.acquire_owned().await.expect("never closed");
            super::enqueue(&cloud, &manifest, job, &super::patience::Patience::none()).await
        });
    }
    while let Some(sent) = sends.join_next().await {
        sent.map_err(|e| anyhow!("send task failed: {e}"))??;
    }
    Ok(Requeued {
        queued: unfinished.len(),
        done: progress.done.len(),
        failed_before: progress.failed.len(),
    })
}

/// What a run holds in storage: the blobs sent up and those styled back, with the frames each
/// holds, and how it travels (`png`, `webp`, `jpg` frames or `segments`).
async fn stored(
    cloud: &Cloud,
    outputs: &Arc<dyn BlobStore>,
    manifest: &RunManifest,
) -> Result<(Vec<BlobEntry>, Vec<BlobEntry>, usize, usize, String)> {
    let run = &manifest.run_id;
    Ok(match &manifest.segments {
        None => {
            let frames = cloud.blobs.list(&run.frames_prefix()).await?;
            let styled_blobs = outputs.list(&run.styled_prefix()).await?;
            // Counted as `existing_frames` counts: numbered, non-empty frame blobs.
            let count = |entries: &[BlobEntry]| {
                entries
                    .iter()
                    .filter(|e| e.size > 0 && frame_number_of(&e.key).is_some())
                    .count()
            };
            let (uploaded, styled) = (count(&frames), count(&styled_blobs));
            let format = manifest.frame_format.extension().to_string();
            (frames, styled_blobs, uploaded, styled, format)
        }
        Some(segments) => {
            let pieces = cloud.blobs.list(&run.pieces_prefix()).await?;
            let encoded = outputs.list(&run.segments_prefix()).await?;
            // Frames held by the pieces up and by the segments back.
            let numbered = |entries: &[BlobEntry]| -> Vec<u32> {
                entries
                    .iter()
                    .filter(|e| e.size > 0)
                    .filter_map(|e| job_index_of(&e.key))
                    .collect()
            };
            let uploaded = numbered(&pieces)
                .into_iter()
                .filter_map(|i| segments.pieces.get(i as usize))
                .map(|p| p.frames as usize)
                .sum();
            let styled = numbered(&encoded)
                .into_iter()
                .filter_map(|job| manifest.job_spec(job))
                .map(|spec| spec.frames.len() as usize)
                .sum();
            (pieces, encoded, uploaded, styled, "segments".to_string())
        }
    })
}
