//! Cloud mode on the terminal: `--cloud` runs with their summaries, `stylize worker` with its log, and `stylize runs` as a table or JSON.
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use stylize_cloud::grant::WatcherPlaces;
use stylize_cloud::RunId;
use stylize_core::cloud::coordinator::{self, CoordinatorOptions, Outcome};
use stylize_core::cloud::grant::{self, Holder};
use stylize_core::cloud::runs::{self, Listing, RunLine};
use stylize_core::cloud::{worker, StorageOptions};
use stylize_core::inputs::RunConfig;
use stylize_core::units::bytes;

use crate::cli::{RunsAction, RunsArgs, WorkerArgs};
use crate::progress::CloudProgress;

/// `stylize INPUT... --style X --cloud STORAGE`: every input's outcome told; the exit code.
pub fn coordinate(config: RunConfig, options: &CoordinatorOptions, quiet: bool) -> Result<i32> {
    let results = submit(&config, options, quiet)?;
    Ok(i32::from(results.iter().any(|r| r.is_err())))
}

/// One input through the cloud with its side-by-side video (`stylize demo --cloud`): the frames
/// written, or an error once the outcome has been told.
pub fn coordinate_one(config: RunConfig, options: &CoordinatorOptions, quiet: bool) -> Result<u64> {
    match submit(&config, options, quiet)?.first() {
        Some(Ok(Outcome::Written { frames, .. })) => Ok(*frames),
        _ => bail!("the cloud run did not complete; run the same command again to resume it"),
    }
}

fn submit(
    config: &RunConfig,
    options: &CoordinatorOptions,
    quiet: bool,
) -> Result<Vec<Result<Outcome>>> {
    let display = Arc::new(CloudProgress::new(quiet));
    let results = coordinator::run(config, options, display)?;
    report(config, &results, quiet);
    Ok(results)
}

fn report(config: &RunConfig, results: &[Result<Outcome>], quiet: bool) {
    let style = format!("{}, {}", config.look.label(), config.look.painting());
    for (job, result) in config.jobs.iter().zip(results) {
        let line = match result {
            Ok(Outcome::Written { output, side, frames, elapsed, run, jobs, workers, up, down }) => format!(
                "{}, style {style}, run {run}: {jobs} jobs on {workers} worker{}, {} up, {} down",
                crate::run::summary(&job.input, output, side.as_deref(), *frames, *elapsed),
                if *workers == 1 { "" } else { "s" },
                bytes(*up as f64),
                bytes(*down as f64),
            ),
            Ok(Outcome::Submitted { run, queued }) => format!(
                "{}: run {run} submitted ({queued} jobs queued); run the same command again (without --no-wait) to collect the video",
                job.input.display()
            ),
            // Errors always show, --quiet or not: they explain the exit code.
            Err(e) => {
                eprintln!("error: {e:#}");
                continue;
            }
        };
        if !quiet {
            eprintln!("{line}");
        }
    }
    if results.len() > 1 && !quiet {
        let failed = results.iter().filter(|r| r.is_err()).count();
        eprintln!(
            "{} of {} inputs done, {failed} failed",
            results.len() - failed,
            results.len()
        );
    }
}

/// `stylize worker --cloud STORAGE`: its log goes to stderr.
pub fn worker(args: &WorkerArgs) -> Result<i32> {
    let options = crate::config::worker_options(args)?;
    worker::run(&options, Arc::new(|line: &str| eprintln!("{line}")))?;
    Ok(0)
}

/// `stylize runs [clean|requeue RUN...|grant] --cloud STORAGE`.
pub fn runs(args: &RunsArgs) -> Result<i32> {
    let Some(spec) = args.cloud.as_deref() else {
        bail!("--cloud STORAGE is required (the storage the runs were made in)");
    };
    let storage = crate::config::storage(spec, &args.container, &args.queue);
    if let Some(grant @ RunsAction::Grant { hours, .. }) = &args.action {
        // Signing makes no request: issued without opening the storage.
        return print_grant(&storage, grant_holder(grant)?, *hours);
    }
    let (config, cloud) = storage.open()?;
    let rt = stylize_core::cloud::runtime()?;
    let ids = |runs: &[String]| -> Result<Vec<RunId>> {
        Ok(runs
            .iter()
            .map(|r| RunId::parse(r.trim()))
            .collect::<Result<Vec<_>, _>>()?)
    };
    rt.block_on(async {
        match &args.action {
            Some(RunsAction::Clean { runs }) => {
                for run in ids(runs)? {
                    match runs::clean(&cloud, &run).await? {
                        0 => eprintln!("run {run}: nothing stored"),
                        n => eprintln!("run {run}: deleted {n} blobs; workers drop its queued jobs when they take them"),
                    }
                }
            }
            Some(RunsAction::Requeue { runs }) => {
                cloud.jobs.create_if_missing().await.with_context(|| format!("cannot use {config}"))?;
                for run in ids(runs)? {
                    let r = runs::requeue(&cloud, &run).await?;
                    let retried = if r.failed_before == 0 {
                        String::new()
                    } else {
                        format!(", {} failed before and retried", r.failed_before)
                    };
                    eprintln!(
                        "run {run}: queued {} unfinished job(s) on {} ({} done{retried})",
                        r.queued,
                        cloud.jobs.name(),
                        r.done
                    );
                }
            }
            Some(RunsAction::Grant { .. }) => unreachable!("issued above"),
            None => {
                let listing = runs::list(&cloud, args.details, &|line| eprintln!("{line}"))
                    .await
                    .with_context(|| format!("listing runs in {config}"))?;
                if args.json {
                    crate::print_out(&serde_json::to_string_pretty(&listing)?)?;
                } else {
                    print_listing(&listing);
                }
            }
        }
        Ok(0)
    })
}

/// Whose grant `stylize runs grant` signs, from its options.
fn grant_holder(action: &RunsAction) -> Result<Holder<'_>> {
    let RunsAction::Grant {
        output_container,
        scaler,
        watcher,
        inbox,
        outbox,
        events,
        ..
    } = action
    else {
        unreachable!("called for grants only")
    };
    Ok(match (scaler, watcher, inbox, outbox, output_container) {
        (true, ..) => Holder::Scaler,
        (false, true, Some(inbox), Some(outbox), output_container) => {
            Holder::Watcher(WatcherPlaces {
                inbox,
                outbox,
                events: events.as_deref(),
                output_container: output_container.as_deref(),
            })
        }
        (false, false, .., Some(output_container)) => Holder::Worker { output_container },
        _ => bail!(
            "--output-container NAME is required (or --scaler, or --watcher with --inbox and --outbox)"
        ),
    })
}

/// `stylize runs grant`: the grant alone on stdout (for `$(...)`), what it allows on stderr.
fn print_grant(storage: &StorageOptions, holder: Holder<'_>, hours: u32) -> Result<i32> {
    let who = match holder {
        Holder::Worker { .. } => "worker",
        Holder::Scaler => "scaler",
        Holder::Watcher(_) => "watcher",
    };
    let grant = grant::issue(storage, holder, hours)?;
    println!("{}", grant.connection_string.expose());
    eprintln!(
        "{who} grant, expires {} (in {hours} h): {}",
        grant.expires(),
        grant.describe()
    );
    Ok(0)
}

fn print_listing(listing: &Listing) {
    print_table(&listing.runs);
    let count = |n: Option<u64>| n.map_or("?".to_string(), |n| n.to_string());
    println!(
        "queue {}: ~{} messages, {}: ~{}",
        listing.queue,
        count(listing.queued_messages),
        listing.poison,
        count(listing.poison_messages)
    );
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
