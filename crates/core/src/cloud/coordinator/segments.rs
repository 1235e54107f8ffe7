//! The coordinator's side of a segments run: cut the input into pieces of its own bitstream, upload them, queue jobs as their pieces arrive, then join the workers' segments in order with the original audio.
//!
//! No frame is decoded or encoded here (the first one only when the style
//! needs it): the coordinator's cost per frame is a demux, a remux and the
//! transfers, so it keeps up with many GPU workers.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt as _};
use stylize_cloud::{EncodeSpec, PieceSpec, SegmentsSpec};
use stylize_media::{plan_pieces, write_pieces_telling, MediaError, SegmentJoiner, SplitPlan};
use tokio::sync::mpsc;

use super::*;

/// Frames before a job's range that its worker styles and steadies but does not keep, so the
/// job's first frames carry strokes much as a local run's do: the steadier keeps 95% of its state a
/// frame, so after 60 frames what a fresh start leaves is 0.95^60 ≈ 5% of it. Measured with
/// `scripts/bench-seams.sh` (30-frame jobs): the pairs across job boundaries have 1.2× the
/// warping error of the rest with 60 (1.5–2.6× with 30).
pub(super) const WARM_UP_FRAMES: u32 = 60;

/// Whether this input goes as segments: the default, unless `--transport frames`, `--compare`
/// (the side-by-side video needs every original frame here) or an input that cannot be cut
/// cleanly (said in one line). The plan of its pieces and the frames per job when it does.
pub(super) async fn plan(
    shared: &Arc<Shared>,
    info: &VideoInfo,
) -> Result<Option<(SplitPlan, u32)>> {
    if shared.options.transport != Transport::Segments {
        return Ok(None);
    }
    if shared.options.compare {
        shared.say(&format!(
            "{}: --compare needs every original frame on this machine: sending frames, not segments",
            info.path.display()
        ));
        return Ok(None);
    }
    let (scan_info, asked) = (info.clone(), shared.options.frames_per_job);
    // Steadied jobs style their warm-up frames too: at least four times as many frames of their
    // own keep that under a quarter of the work.
    let least = if shared.look.steady > 0.0 {
        4 * WARM_UP_FRAMES
    } else {
        1
    };
    let planned = blocking(move || {
        let mut per_job = 0;
        let plan = plan_pieces(&scan_info, |count| {
            per_job = asked.unwrap_or_else(|| default_frames_per_job(count).max(least).min(count));
            per_job
        })?;
        Ok((plan, per_job))
    })
    .await;
    match planned {
        Ok((plan, per_job)) => {
            // A file cut short is refused, by the same rule as a decode in local mode.
            crate::pipeline::check_whole(info, u64::from(plan.frame_count), plan.shown_secs)?;
            Ok(Some((plan, per_job)))
        }
        Err(e) => match e.downcast_ref::<MediaError>() {
            Some(MediaError::Unsplittable { reason, .. }) => {
                shared.say(&format!(
                    "{}: cannot be cut into pieces ({reason}): sending frames instead",
                    info.path.display()
                ));
                Ok(None)
            }
            _ => Err(e),
        },
    }
}

/// What a segments run adds to its identity: segments bake the encoder settings and the
/// steadying in, so a run that differs in them is another run.
pub(super) fn run_ref_suffix(shared: &Shared, info: &VideoInfo) -> String {
    let e = encode_spec(shared, info);
    // Only another codec than H.264 is named, so runs stored before there was a choice keep
    // their ids.
    let codec = match e.codec.as_str() {
        "h264" => String::new(),
        other => format!(";codec={other}"),
    };
    format!(
        ";segments;crf={};preset={};pix={};steady={};warm={WARM_UP_FRAMES}{codec}",
        e.crf, e.preset, e.pixel_format, shared.look.steady
    )
}

/// The encoder settings for `info`'s segments: the pixel format as resolved for its depth.
fn encode_spec(shared: &Shared, info: &VideoInfo) -> EncodeSpec {
    let encode = shared.encode.for_source(info);
    EncodeSpec {
        codec: encode.codec.name(),
        crf: encode.crf,
        preset: encode.preset,
        pixel_format: encode.pixel_format.name().into(),
    }
}

/// The manifest's segments part for `plan`.
pub(super) fn spec(shared: &Shared, info: &VideoInfo, plan: &SplitPlan) -> SegmentsSpec {
    SegmentsSpec {
        pieces: plan
            .pieces
            .iter()
            .map(|p| PieceSpec {
                first_frame: p.first_frame,
                frames: p.frames,
                hidden: p.hidden,
            })
            .collect(),
        encode: encode_spec(shared, info),
        steady: shared.look.steady,
        warm_up: if shared.look.steady > 0.0 {
            WARM_UP_FRAMES
        } else {
            0
        },
    }
}

/// Cuts the input into its pieces, uploads those storage lacks or that hold frames of `reupload`
/// (jobs that failed before: their pieces go up afresh in case one was damaged), `transfers` at a
/// time, and queues each job of `to_queue` as soon as every piece it needs is up. Returns the
/// bytes uploaded.
pub(super) async fn upload_and_enqueue(
    shared: &Arc<Shared>,
    info: &VideoInfo,
    plan: &OutputPlan,
    manifest: &RunManifest,
    (to_queue, reupload): (&BTreeSet<u32>, &BTreeSet<u32>),
    bar: &dyn InputProgress,
) -> Result<u64> {
    let segments = manifest.segments.as_ref().expect("a segments run");
    let present = pieces_in_storage(shared, manifest, reupload).await?;
    let piece_count = segments.pieces.len() as u32;
    let mut queuing = Queuing::new(shared, manifest, to_queue);
    queuing.queue_ready(&present, bar).await?;
    if present.len() as u32 == piece_count {
        queuing.finish().await?;
        return Ok(0);
    }
    bar.message("cutting the input into pieces");
    let spool = Spool::create(plan)?;
    bar.restart(u64::from(piece_count));
    // Each piece goes up as soon as it is cut: a long input's first jobs need not wait for its
    // whole cut. Uploads start in the order of the pieces, `--transfers` at a time: started all
    // at once, they took their transfer slots in whatever order the runtime ran them, and the
    // first round's jobs waited behind later pieces (0.3 s and more, traced).
    let (cut_tx, mut cut_rx) = mpsc::unbounded_channel::<u32>();
    let cutting = cut_pieces(info, manifest, &spool.0, cut_tx);
    let mut uploads: JoinSet<Result<(u32, u64)>> = JoinSet::new();
    let mut cut_waiting = BTreeSet::new();
    let slots = shared.options.transfers.max(1) as usize;
    let (mut done, mut bytes_up, mut cut_open) = (present, 0, true);
    while cut_open || !uploads.is_empty() || !cut_waiting.is_empty() || !queuing.noting.is_empty() {
        while uploads.len() < slots {
            let Some(index) = cut_waiting.pop_first() else {
                break;
            };
            let path = piece_path(&spool.0, index);
            uploads.spawn(upload_piece(shared, &manifest.run_id, index, path));
        }
        tokio::select! {
            cut = cut_rx.recv(), if cut_open => match cut {
                Some(index) if !done.contains(&index) => {
                    cut_waiting.insert(index);
                }
                Some(_) => {}
                None => cut_open = false,
            },
            Some(finished) = uploads.join_next() => {
                let (index, size) = finished.map_err(|e| anyhow!("upload task failed: {e}"))??;
                bytes_up += size;
                done.insert(index);
                bar.advance();
                // The messages are awaited here, pausing the next uploads: sent beside them
                // (measured), the first jobs' messages waited behind those uploads, and whole
                // runs took as long. Their notes go beside.
                queuing.queue_ready(&done, bar).await?;
            }
            Some(noted) = queuing.noting.next() => noted?,
        }
        if cancelled() {
            bail!("interrupted");
        }
    }
    cutting
        .await
        .map_err(|e| anyhow!("cutting task failed: {e}"))??;
    Ok(bytes_up)
}

/// The pieces storage holds, less those holding frames of `reupload` (to go up afresh).
async fn pieces_in_storage(
    shared: &Shared,
    manifest: &RunManifest,
    reupload: &BTreeSet<u32>,
) -> Result<BTreeSet<u32>> {
    let segments = manifest.segments.as_ref().expect("a segments run");
    let holds_a_retried_frame = |i: u32| {
        segments.pieces.get(i as usize).is_some_and(|p| {
            reupload
                .range(p.first_frame..p.first_frame + p.frames)
                .next()
                .is_some()
        })
    };
    Ok(shared
        .cloud
        .blobs
        .list(&manifest.run_id.pieces_prefix())
        .await?
        .into_iter()
        .filter(|e| e.size > 0)
        .filter_map(|e| stylize_cloud::protocol::job_index_of(&e.key))
        .filter(|&i| !holds_a_retried_frame(i))
        .collect())
}

/// Writes the manifest's pieces of the input into `dir` ([`piece_path`]) on a blocking thread,
/// sending each piece's index to `cut` once it is complete.
fn cut_pieces(
    info: &VideoInfo,
    manifest: &RunManifest,
    dir: &std::path::Path,
    cut: mpsc::UnboundedSender<u32>,
) -> tokio::task::JoinHandle<Result<()>> {
    let segments = manifest.segments.as_ref().expect("a segments run");
    let media_plan = SplitPlan {
        pieces: segments
            .pieces
            .iter()
            .map(|p| stylize_media::Piece {
                first_frame: p.first_frame,
                frames: p.frames,
                hidden: p.hidden,
            })
            .collect(),
        frame_count: manifest.frame_count,
        shown_secs: 0.0,
    };
    let (info, dir) = (info.clone(), dir.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let path_of = |i: usize| piece_path(&dir, i as u32);
        // The receiver only goes away when the upload loop has failed, which reports that.
        let tell = |i: usize, _size: u64| {
            let _ = cut.send(i as u32);
        };
        write_pieces_telling(&info, &media_plan, path_of, tell)?;
        Ok(())
    })
}

/// Where piece `index` is cut to in the spool `dir`.
fn piece_path(dir: &std::path::Path, index: u32) -> std::path::PathBuf {
    dir.join(format!("{index:05}.mkv"))
}

/// Uploads piece `index` from `path` once a transfer slot is free, riding out storage trouble;
/// its index and size.
fn upload_piece(
    shared: &Arc<Shared>,
    run: &stylize_cloud::RunId,
    index: u32,
    path: std::path::PathBuf,
) -> impl std::future::Future<Output = Result<(u32, u64)>> + Send + 'static {
    let (blobs, transfers, patience) = (
        shared.cloud.blobs.clone(),
        shared.transfers.clone(),
        shared.patience.clone(),
    );
    let key = run.piece_key(index);
    async move {
        let _permit = transfers.acquire_owned().await.expect("never closed");
        let bytes = Bytes::from(tokio::fs::read(&path).await?);
        let what = format!("uploading piece {index}");
        let size = put_patiently(&patience, blobs.as_ref(), &key, bytes, what).await?;
        Ok((index, size))
    }
}

/// The jobs of a segments run still to queue, each with the pieces it needs; how many were
/// queued; and the notes that they are queued (see [`crate::cloud::note_queued`]) being written.
struct Queuing<'a> {
    shared: &'a Arc<Shared>,
    manifest: &'a RunManifest,
    waiting: Vec<(RangeInclusive<u32>, u32)>,
    queued: u32,
    noting: FuturesUnordered<BoxFuture<'a, Result<()>>>,
}

impl<'a> Queuing<'a> {
    fn new(shared: &'a Arc<Shared>, manifest: &'a RunManifest, to_queue: &BTreeSet<u32>) -> Self {
        let waiting = to_queue
            .iter()
            .filter_map(|&job| manifest.job_spec(job))
            .filter_map(|spec| {
                let seg = spec.segment?;
                let pieces = seg.first_piece..=seg.first_piece + seg.pieces.len() as u32 - 1;
                Some((pieces, spec.job))
            })
            .collect();
        Queuing {
            shared,
            manifest,
            waiting,
            queued: 0,
            noting: FuturesUnordered::new(),
        }
    }

    /// Queues the waiting jobs (by their last piece, in order) whose pieces are all in `up`;
    /// their notes are left in `noting`, for the caller to see through.
    async fn queue_ready(&mut self, up: &BTreeSet<u32>, bar: &dyn InputProgress) -> Result<()> {
        // A job goes as soon as its own pieces are up, whichever uploads finish first: on a busy
        // storage account the uploads end out of order, and waiting for all pieces before a
        // job's kept most of the first round's workers idle.
        let (ready, still): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(pieces, _)| pieces.clone().all(|p| up.contains(&p)));
        self.waiting = still;
        // Side by side: jobs that become ready together reach the workers together (one after
        // the other, eight first jobs started over 0.3 s on a loaded machine). Only the messages
        // are waited for: the workers wait on them, not on the notes.
        let (cloud, patience, manifest) =
            (&self.shared.cloud, &self.shared.patience, self.manifest);
        let sends = ready
            .iter()
            .map(|&(_, job)| crate::cloud::send_job(cloud, manifest, job, patience));
        futures::future::try_join_all(sends).await?;
        for (_, job) in ready {
            self.queued += 1;
            let note = crate::cloud::note_queued(cloud, manifest, job, patience);
            self.noting.push(Box::pin(note));
        }
        bar.message(&format!("pieces uploaded · {} jobs queued", self.queued));
        Ok(())
    }

    /// Waits for the notes still being written.
    async fn finish(&mut self) -> Result<()> {
        while let Some(noted) = self.noting.next().await {
            noted?;
        }
        Ok(())
    }
}

/// Segments downloading at once, at most, ahead of the join (within `--transfers`).
const JOIN_BATCH: usize = 32;

/// A segment downloaded into the spool, waiting for its turn to be joined.
struct Fetched {
    spec: stylize_cloud::JobSpec,
    path: std::path::PathBuf,
    size: u64,
}

/// Starts downloading job `job`'s segment into `dir`, riding out storage trouble.
fn spawn_fetch(
    fetches: &mut JoinSet<Result<(u32, Fetched)>>,
    (shared, outputs): (&Arc<Shared>, &Arc<dyn BlobStore>),
    manifest: &RunManifest,
    job: u32,
    dir: &std::path::Path,
) {
    let spec = manifest.job_spec(job).expect("jobs are in range");
    let key = manifest.run_id.segment_key(job);
    let path = dir.join(format!("{job:05}.mkv"));
    let (shared, outputs) = (shared.clone(), outputs.clone());
    fetches.spawn(async move {
        let what = format!("downloading the segment of job {job}");
        let store = outputs.as_ref();
        let size = get_patiently_to_file(
            &shared.patience,
            &shared.transfers,
            store,
            (&key, &path),
            what,
        )
        .await?;
        Ok((job, Fetched { spec, path, size }))
    });
}

/// The segments downloading and downloaded, not yet joined.
struct Segments {
    fetching: JoinSet<Result<(u32, Fetched)>>,
    started: BTreeSet<u32>,
    fetched: BTreeMap<u32, Fetched>,
    bytes_down: u64,
}

impl Segments {
    /// Starts downloading done jobs' segments from `next_job` on, lowest first, up to
    /// `JOIN_BATCH` at once: a round's segments arrive while the workers style the next, whatever
    /// order the jobs finish in, and the join waits only for the last.
    fn fetch_done(
        &mut self,
        (shared, outputs): (&Arc<Shared>, &Arc<dyn BlobStore>),
        (manifest, done): (&RunManifest, &BTreeSet<u32>),
        next_job: u32,
        dir: &std::path::Path,
    ) {
        let room = JOIN_BATCH.saturating_sub(self.fetching.len());
        let wanted: Vec<u32> = done
            .range(next_job..)
            .filter(|job| !self.started.contains(job))
            .take(room)
            .copied()
            .collect();
        for job in wanted {
            self.started.insert(job);
            spawn_fetch(&mut self.fetching, (shared, outputs), manifest, job, dir);
        }
    }

    /// Collects the finished downloads, waiting for `next_job`'s when it is on its way.
    async fn collect(&mut self, next_job: u32) -> Result<()> {
        loop {
            let waiting = self.started.contains(&next_job) && !self.fetched.contains_key(&next_job);
            let finished = match waiting {
                true => self.fetching.join_next().await,
                false => self.fetching.try_join_next(),
            };
            let Some(finished) = finished else {
                return Ok(());
            };
            let (job, fetched) = finished.map_err(|e| anyhow!("download task failed: {e}"))??;
            self.bytes_down += fetched.size;
            self.fetched.insert(job, fetched);
        }
    }

    /// The downloaded segments from `next_job` on, in order without a gap.
    fn take_in_order(&mut self, mut next_job: u32) -> Vec<Fetched> {
        let mut ready = Vec::new();
        while let Some(fetched) = self.fetched.remove(&next_job) {
            ready.push(fetched);
            next_job += 1;
        }
        ready
    }
}

/// Follows the run and joins each job's segment in order as it is done, into the output with
/// the input's audio. Returns frames written, bytes downloaded and how many workers took part.
pub(super) async fn follow_and_join(
    shared: &Arc<Shared>,
    info: &VideoInfo,
    plan: &OutputPlan,
    manifest: &RunManifest,
    bar: &dyn InputProgress,
) -> Result<(u64, u64, usize)> {
    let spool = Spool::create(plan)?;
    bar.restart(u64::from(manifest.frame_count));
    let mut follow = Follow::new(shared, info, manifest, bar)?;
    let temp = TempGuard::new(plan.temp_path());
    let mut joiner: Option<SegmentJoiner> = None;
    let mut segments = Segments {
        fetching: JoinSet::new(),
        started: BTreeSet::new(),
        fetched: BTreeMap::new(),
        bytes_down: 0,
    };
    let (mut next_job, mut joined) = (0u32, 0u64);
    while next_job < manifest.job_count {
        if cancelled() {
            bail!("interrupted; run {} goes on in storage, and re-running the same command picks it up", manifest.run_id);
        }
        follow.poll(joined).await?;
        let done = (manifest, &follow.progress.done);
        segments.fetch_done((shared, &follow.outputs), done, next_job, &spool.0);
        segments.collect(next_job).await?;
        let ready = segments.take_in_order(next_job);
        let Some(last) = ready.last().map(|f| f.spec.job) else {
            tokio::time::sleep(follow.next_wait()).await;
            continue;
        };
        let (info, temp_path, final_path) = (
            info.clone(),
            temp.path().to_path_buf(),
            plan.final_path.clone(),
        );
        let current = joiner.take();
        joiner = Some(
            blocking(move || {
                let mut joiner = current;
                for Fetched { spec, path, .. } in ready {
                    let mut joining = match joiner.take() {
                        Some(joiner) => joiner,
                        None => SegmentJoiner::create(&temp_path, &final_path, &info, &path)?,
                    };
                    joining.append(&path, spec.frames.start, spec.frames.len())?;
                    let _ = std::fs::remove_file(&path);
                    joiner = Some(joining);
                }
                joiner.ok_or_else(|| anyhow!("no segment to join"))
            })
            .await?,
        );
        let spec = manifest.job_spec(last).expect("jobs are in range");
        joined = u64::from(spec.frames.end);
        bar.set(joined);
        next_job = last + 1;
    }
    let joiner = joiner.ok_or_else(|| anyhow!("the run has no jobs"))?;
    // Who took part is read while the output is finished, not after.
    let (summary, workers) = tokio::join!(
        blocking(move || Ok(joiner.finish()?)),
        count_workers(&follow)
    );
    let summary = summary?;
    plan.commit_with_side(temp, None)?;
    drop(spool);
    Ok((summary.frames, segments.bytes_down, workers))
}
