//! Run-level operations over a blob store: publishing the manifest once, reading progress from markers, resuming, cleaning.

use crate::{
    protocol::{
        frame_number_of, job_index_of, marker_job_of, FailedMarker, RunId, RunManifest,
        RUN_INDEX_PREFIX,
    },
    store::BlobStore,
    Error, Result,
};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

/// Writes the run's manifest unless one exists, and its entry in the run index, and returns the
/// manifest in force: the new one, or on a re-run the one written first (whose job split the
/// queued jobs and markers follow, so a resumed run must use it).
pub async fn publish_manifest(
    blobs: &dyn BlobStore,
    manifest: &RunManifest,
) -> Result<RunManifest> {
    let run = &manifest.run_id;
    let written = blobs
        .put_if_absent(&run.manifest_key(), Bytes::from(manifest.to_json()))
        .await?;
    // After the manifest, so an indexed run always has one (but for a clean under way); on a
    // re-run too, which indexes a run made before the index existed.
    blobs.put_if_absent(&run.index_key(), Bytes::new()).await?;
    match written {
        true => Ok(manifest.clone()),
        false => load_manifest(blobs, run).await,
    }
}

/// Reads a run's manifest.
pub async fn load_manifest(blobs: &dyn BlobStore, run: &RunId) -> Result<RunManifest> {
    let key = run.manifest_key();
    let bytes = blobs.get(&key).await?;
    RunManifest::from_json(&bytes).map_err(|e| match e {
        Error::Json { source, .. } => Error::json(key, source),
        other => other,
    })
}

/// Every run in the store, from the run index: one small blob per run, however many blobs each
/// run has. A store with no index (written before there was one) is searched for manifests.
pub async fn list_runs(blobs: &dyn BlobStore) -> Result<Vec<RunId>> {
    let indexed: Vec<RunId> = blobs
        .list(RUN_INDEX_PREFIX)
        .await?
        .iter()
        .filter_map(|e| e.key.strip_prefix(RUN_INDEX_PREFIX))
        .filter_map(|id| RunId::parse(id).ok())
        .collect();
    match indexed.is_empty() {
        true => runs_by_manifest(blobs).await,
        false => Ok(indexed),
    }
}

/// Every run with a manifest, found by listing every blob under `runs/`.
async fn runs_by_manifest(blobs: &dyn BlobStore) -> Result<Vec<RunId>> {
    let mut runs = Vec::new();
    for entry in blobs.list("runs/").await? {
        let mut parts = entry.key.split('/');
        if let (Some("runs"), Some(id), Some("manifest.json"), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            if let Ok(run) = RunId::parse(id) {
                runs.push(run);
            }
        }
    }
    Ok(runs)
}

/// The frame numbers present under a prefix such as [`RunId::frames_prefix`]
/// or [`RunId::styled_prefix`]: what a resumed coordinator need not upload
/// again, or what a redelivered job need not style again.
pub async fn existing_frames(blobs: &dyn BlobStore, prefix: &str) -> Result<BTreeSet<u32>> {
    Ok(blobs
        .list(prefix)
        .await?
        .into_iter()
        .filter(|e| e.size > 0)
        .filter_map(|e| frame_number_of(&e.key))
        .collect())
}

/// Where a run stands, from its done and failed markers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunProgress {
    /// Jobs with a done marker.
    pub done: BTreeSet<u32>,
    /// Jobs the coordinator has queued (done, failed or still waiting).
    pub queued: BTreeSet<u32>,
    /// Jobs given up on, with why.
    pub failed: BTreeMap<u32, FailedMarker>,
    /// Number of jobs in the run.
    pub job_count: u32,
    /// Frames covered by done jobs.
    pub frames_done: u64,
}

impl RunProgress {
    /// Reads the markers of `manifest`'s run (one listing per marker kind,
    /// plus one read per failed job).
    pub async fn load(blobs: &dyn BlobStore, manifest: &RunManifest) -> Result<RunProgress> {
        let mut progress = RunProgress::default();
        progress
            .refresh(blobs, manifest, &[manifest.run_id.done_prefix()])
            .await?;
        progress.queued = blobs
            .list(&manifest.run_id.queued_prefix())
            .await?
            .into_iter()
            .filter_map(|e| job_index_of(&e.key))
            .filter(|&j| j < manifest.job_count)
            .collect();
        Ok(progress)
    }

    /// Brings the progress up to date from the failed markers (all listed; each read once) and the
    /// done markers under `done_prefixes` (some of [`RunId::done_bucket_prefix`], or the whole
    /// [`RunId::done_prefix`]): what a coordinator following its run reads on each poll, at a cost
    /// that does not grow with the run's length.
    pub async fn refresh(
        &mut self,
        blobs: &dyn BlobStore,
        manifest: &RunManifest,
        done_prefixes: &[String],
    ) -> Result<()> {
        // Markers of an earlier incarnation (a cleaned run's late workers) do not count.
        let incarnation = manifest.incarnation.as_str();
        self.job_count = manifest.job_count;
        for prefix in done_prefixes {
            for entry in blobs.list(prefix).await? {
                if let Some(job) = marker_job_of(&entry.key, incarnation) {
                    if job < manifest.job_count {
                        self.done.insert(job);
                    }
                }
            }
        }
        // Rebuilt from the listing (a requeue elsewhere deletes markers), reading only new ones.
        let mut failed = BTreeMap::new();
        for entry in blobs.list(&manifest.run_id.failed_prefix()).await? {
            let Some(job) = marker_job_of(&entry.key, incarnation) else {
                continue;
            };
            // A job that failed once and later succeeded counts as done.
            if job >= manifest.job_count || self.done.contains(&job) {
                continue;
            }
            let marker = match self.failed.remove(&job) {
                Some(known) => known,
                None => FailedMarker::from_json(&blobs.get(&entry.key).await?)?,
            };
            failed.insert(job, marker);
        }
        self.failed = failed;
        self.frames_done = self
            .done
            .iter()
            .filter_map(|&j| manifest.job_spec(j))
            .map(|spec| u64::from(spec.frames.len()))
            .sum();
        Ok(())
    }

    /// Jobs neither done nor failed.
    pub fn pending(&self) -> Vec<u32> {
        (0..self.job_count)
            .filter(|j| !self.done.contains(j) && !self.failed.contains_key(j))
            .collect()
    }

    /// Pending jobs not queued yet: what a (resumed) coordinator still has to send.
    pub fn unqueued(&self) -> Vec<u32> {
        self.pending()
            .into_iter()
            .filter(|j| !self.queued.contains(j))
            .collect()
    }

    /// Whether every job is done or failed (nothing left to wait for).
    pub fn is_settled(&self) -> bool {
        self.done.len() + self.failed.len() >= self.job_count as usize
    }

    /// Whether every job is done.
    pub fn is_complete(&self) -> bool {
        self.done.len() >= self.job_count as usize
    }
}

/// Deletes every blob of a run, and its entry in the run index; returns how many blobs the run had.
pub async fn delete_run(blobs: &dyn BlobStore, run: &RunId) -> Result<usize> {
    use futures::{StreamExt as _, TryStreamExt as _};
    /// Deletes in flight at once: a long run has hundreds of thousands of blobs, each one request.
    const DELETES_IN_FLIGHT: usize = 32;
    let entries = blobs.list(&run.prefix()).await?;
    // The manifest and then the index entry go last, so an interrupted clean still lists as a run.
    let (manifest, rest): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .partition(|e| e.key == run.manifest_key());
    let mut deleted = futures::stream::iter(rest)
        .map(|entry| async move { blobs.delete(&entry.key).await })
        .buffer_unordered(DELETES_IN_FLIGHT)
        .try_fold(0, |n, gone| async move { Ok(n + usize::from(gone)) })
        .await?;
    for entry in manifest {
        deleted += usize::from(blobs.delete(&entry.key).await?);
    }
    // Bookkeeping, not one of the run's blobs: not counted.
    blobs.delete(&run.index_key()).await?;
    Ok(deleted)
}
