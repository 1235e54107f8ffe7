//! `stylize runs`: the runs in storage with their progress, and `stylize runs clean RUN` to delete one.
use anyhow::{bail, Context, Result};
use serde::Serialize;
use stylize_cloud::protocol::frame_number_of;
use stylize_cloud::{
    delete_run, list_runs, load_manifest, DoneMarker, Error as CloudError, RunId, RunProgress,
};

use super::args::{RunsAction, RunsArgs};
use super::look::StyleDoc;

#[derive(Serialize)]
struct RunLine {
    run: String,
    input: String,
    frames: u32,
    width: u32,
    height: u32,
    frame_format: String,
    style: String,
    jobs: u32,
    jobs_done: usize,
    jobs_failed: usize,
    frames_uploaded: usize,
    frames_styled: usize,
    /// Bytes stored for the input frames and for the styled frames.
    bytes_frames: u64,
    bytes_styled: u64,
    created: String,
    state: &'static str,
    /// Each failed job: its frames and why.
    failures: Vec<String>,
    /// With --details: the done markers.
    #[serde(skip_serializing_if = "Option::is_none")]
    done_jobs: Option<Vec<DoneMarker>>,
}

pub fn run(args: &RunsArgs) -> Result<i32> {
    let Some(spec) = args.cloud.as_deref() else {
        bail!("--cloud STORAGE is required (the storage the runs were made in)");
    };
    let (config, cloud) = super::open(spec, args.container.as_deref(), args.queue.as_deref())?;
    let rt = super::runtime()?;
    match &args.action {
        Some(RunsAction::Clean { runs }) => rt.block_on(async {
            let ids = runs.iter().map(|r| RunId::parse(r.trim())).collect::<Result<Vec<_>, _>>()?;
            for run in ids {
                // Outputs first: the manifest, which says where they are, goes last. Works
                // without a manifest too, so a half-cleaned run can be finished off.
                let mut n = 0;
                match load_manifest(cloud.blobs.as_ref(), &run).await {
                    Ok(manifest) if manifest.output_container.is_some() => {
                        let outputs = cloud.outputs_of(manifest.output_container.as_deref())?;
                        n += delete_run(outputs.as_ref(), &run).await.with_context(|| format!("cleaning run {run}'s outputs"))?;
                    }
                    Ok(_) | Err(CloudError::NotFound(_)) => {}
                    Err(e) => return Err(anyhow::Error::from(e).context(format!("run {run}"))),
                }
                n += delete_run(cloud.blobs.as_ref(), &run).await.with_context(|| format!("cleaning run {run}"))?;
                if n == 0 {
                    eprintln!("run {run}: nothing stored");
                } else {
                    eprintln!("run {run}: deleted {n} blobs; workers drop its queued jobs when they take them");
                }
            }
            Ok(0)
        }),
        Some(RunsAction::Requeue { runs }) => rt.block_on(async {
            let ids = runs.iter().map(|r| RunId::parse(r.trim())).collect::<Result<Vec<_>, _>>()?;
            cloud.jobs.create_if_missing().await.with_context(|| format!("cannot use {config}"))?;
            for run in ids {
                let manifest = load_manifest(cloud.blobs.as_ref(), &run).await.with_context(|| format!("run {run}"))?;
                let outputs = cloud.outputs_of(manifest.output_container.as_deref())?;
                let progress = RunProgress::load(outputs.as_ref(), &manifest).await?;
                for &job in progress.failed.keys() {
                    outputs.delete(&run.failed_key(job)).await?;
                }
                let unfinished: Vec<u32> = (0..manifest.job_count).filter(|j| !progress.done.contains(j)).collect();
                // Sent side by side: a long run has thousands of jobs, each one round trip.
                let mut sends = tokio::task::JoinSet::new();
                let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
                for job in unfinished.iter().copied() {
                    let (cloud, manifest, slots) = (cloud.clone(), manifest.clone(), slots.clone());
                    sends.spawn(async move {
                        let _slot = slots.acquire_owned().await.expect("never closed");
                        super::enqueue(&cloud, &manifest, job).await
                    });
                }
                while let Some(sent) = sends.join_next().await {
                    sent.map_err(|e| anyhow::anyhow!("send task failed: {e}"))??;
                }
                eprintln!(
                    "run {run}: queued {} unfinished job(s) on {} ({} done{})",
                    unfinished.len(),
                    cloud.jobs.name(),
                    progress.done.len(),
                    if progress.failed.is_empty() { String::new() } else { format!(", {} failed before and retried", progress.failed.len()) }
                );
            }
            Ok(0)
        }),
        None => rt.block_on(async {
            let mut lines = Vec::new();
            for run in list_runs(cloud.blobs.as_ref()).await.with_context(|| format!("listing runs in {config}"))? {
                let manifest = match load_manifest(cloud.blobs.as_ref(), &run).await {
                    Ok(m) => m,
                    // Cleaned between the listing and now.
                    Err(CloudError::NotFound(_)) => continue,
                    Err(e) => {
                        eprintln!("run {run}: unreadable manifest: {e}");
                        continue;
                    }
                };
                let outputs = cloud.outputs_of(manifest.output_container.as_deref())?;
                let progress = RunProgress::load(outputs.as_ref(), &manifest).await?;
                let frames = cloud.blobs.list(&run.frames_prefix()).await?;
                let styled_blobs = outputs.list(&run.styled_prefix()).await?;
                let size = |entries: &[stylize_cloud::BlobEntry]| entries.iter().map(|e| e.size).sum::<u64>();
                // Counted as `existing_frames` counts: numbered, non-empty frame blobs.
                let count = |entries: &[stylize_cloud::BlobEntry]| {
                    entries.iter().filter(|e| e.size > 0 && frame_number_of(&e.key).is_some()).count()
                };
                let (uploaded, styled) = (count(&frames), count(&styled_blobs));
                let state = if progress.is_complete() {
                    "done"
                } else if !progress.failed.is_empty() {
                    "failed"
                } else if (uploaded as u32) < manifest.frame_count {
                    "uploading"
                } else {
                    "styling"
                };
                let done_jobs = if args.details {
                    let mut reads = tokio::task::JoinSet::new();
                    for &job in &progress.done {
                        let (blobs, key) = (outputs.clone(), run.done_key(job));
                        reads.spawn(async move { blobs.get(&key).await.map_err(anyhow::Error::from).and_then(|b| Ok(DoneMarker::from_json(&b)?)) });
                    }
                    let mut markers = Vec::new();
                    while let Some(read) = reads.join_next().await {
                        markers.push(read.map_err(|e| anyhow::anyhow!("read task failed: {e}"))??);
                    }
                    markers.sort_by_key(|m| m.job);
                    Some(markers)
                } else {
                    None
                };
                lines.push(RunLine {
                    run: run.to_string(),
                    input: manifest.input_name.clone(),
                    frames: manifest.frame_count,
                    width: manifest.width,
                    height: manifest.height,
                    frame_format: manifest.frame_format.extension().to_string(),
                    style: StyleDoc::from_value(&manifest.style).map(|s| s.label).unwrap_or_else(|_| "?".into()),
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
                });
            }
            let queued = cloud.jobs.approximate_len().await.ok();
            let poison = cloud.poison.approximate_len().await.ok();
            if args.json {
                let doc = serde_json::json!({ "runs": lines, "queue": cloud.jobs.name(), "queued_messages": queued, "poison_messages": poison });
                println!("{}", serde_json::to_string_pretty(&doc)?);
                return Ok(0);
            }
            print_table(&lines);
            let count = |n: Option<u64>| n.map_or("?".to_string(), |n| n.to_string());
            println!(
                "queue {}: ~{} messages, {}: ~{}",
                cloud.jobs.name(),
                count(queued),
                cloud.poison.name(),
                count(poison)
            );
            Ok(0)
        }),
    }
}

fn print_table(lines: &[RunLine]) {
    if lines.is_empty() {
        println!("no runs");
        return;
    }
    let input_width = lines
        .iter()
        .map(|l| l.input.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 40);
    println!(
        "{:<16}  {:<input_width$}  {:>9}  {:>7}  {:>13}  {:>5}  {:<9}  created",
        "run", "input", "size", "frames", "jobs done/all", "%", "state"
    );
    for l in lines {
        let percent = 100.0 * l.frames_styled as f64 / f64::from(l.frames.max(1));
        println!(
            "{:<16}  {:<input_width$}  {:>9}  {:>7}  {:>13}  {:>4.0}%  {:<9}  {}",
            l.run,
            l.input.chars().take(40).collect::<String>(),
            format!("{}x{}", l.width, l.height),
            l.frames,
            format!("{}/{}", l.jobs_done, l.jobs),
            percent,
            l.state,
            l.created
        );
        for f in &l.failures {
            println!("{:<16}  failed {f}", "");
        }
    }
}
