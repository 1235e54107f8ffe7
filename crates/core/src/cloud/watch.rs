//! `stylize watch`: every video that lands in an inbox (container and prefix) is styled through the run queue and its workers, and its result written to an outbox, with a ledger so a restart restyles nothing.
//!
//! Detection: the inbox is listed every `poll` (any account, Azurite, `dir:`), and with an
//! events queue Event Grid's `BlobCreated` messages bring new uploads at once (the listing then
//! only catches what events missed). A video is taken once it has stayed the same size for
//! `settle`: a listing shows only committed blobs on Azure, but a file still being copied into a
//! `dir:` inbox grows, and a sidecar uploaded just after its video is still read.
//!
//! Each video gets its own thread and its own cloud run, so several are styled at once through
//! the one queue. What a video becomes is kept in the ledger ([`ledger`]); a video that cannot
//! be styled as uploaded moves to `failed/` with a one-line reason beside it.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use stylize_cloud::events::{parse_event_message, BlobEvent};
use stylize_cloud::store::{validate_key, validate_resource_name};
use stylize_cloud::{made_or_not_ours_to_make, BlobStore, Cloud, JobQueue};

use super::coordinator::CoordinatorOptions;
use crate::cancel::cancelled;
use crate::inputs::RunConfig;

mod ledger;
mod video;

/// The options a sidecar may set: the look and the encoder, by their long option names.
pub const SIDECAR_KEYS: &[&str] = &[
    "style",
    "strength",
    "preserve-colors",
    "max-size",
    "steady",
    "method",
    "iterations",
    "codec",
    "prores-profile",
    "crf",
    "preset",
    "pixel-format",
];

/// The file names a style folder's picture may have: `style.<ext>`.
pub const STYLE_PICTURE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp"];

/// The work folder's per-video folders start so; a killed watcher's are removed at the next start.
const WORK_PREFIX: &str = "stylize-watch-";

/// How long a video whose run hit trouble (storage, an interruption) waits before another try.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// A container and a prefix in it (`inbox` or `media/inbox`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub container: String,
    /// Empty, or ending in `/`.
    pub prefix: String,
}

impl Place {
    /// `CONTAINER[/PREFIX]`.
    pub fn parse(what: &str, text: &str) -> Result<Place> {
        let (container, prefix) = text.split_once('/').unwrap_or((text, ""));
        validate_resource_name("container", container)
            .with_context(|| format!("{what} {text:?}"))?;
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            validate_key(prefix).with_context(|| format!("{what} {text:?}"))?;
            format!("{prefix}/")
        };
        Ok(Place {
            container: container.to_owned(),
            prefix,
        })
    }

    /// The blob name of `rel` here.
    pub fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }

    /// `key` relative to the prefix, if it lies under it.
    pub fn rel<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(self.prefix.as_str())
            .filter(|rel| !rel.is_empty())
    }

    /// Whether blob `key` lies here and may be a video (see [`is_a_video_candidate`]).
    fn holds_a_video(&self, key: &str) -> bool {
        self.rel(key).is_some_and(is_a_video_candidate)
    }

    fn contains(&self, other: &Place) -> bool {
        self.container == other.container && other.prefix.starts_with(&self.prefix)
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.container, self.prefix)
    }
}

/// One option of one video, as on the command line (`value` is `None` for a flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoOption {
    pub name: String,
    pub value: Option<String>,
}

impl VideoOption {
    pub fn new(name: &str, value: impl Into<String>) -> VideoOption {
        VideoOption {
            name: name.to_owned(),
            value: Some(value.into()),
        }
    }
}

/// Turns a video's options into its run (the binary's own option parsing, so a sidecar reads
/// exactly as the command line does).
pub trait Planner: Send + Sync {
    /// The run of `input` into a file in `out_dir` (named by the codec's container) with the
    /// watcher's own options and then `options`.
    fn plan(&self, input: &Path, out_dir: &Path, options: &[VideoOption]) -> Result<RunConfig>;
}

#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The storage, queue and transport of the runs.
    pub coordinator: CoordinatorOptions,
    pub inbox: Place,
    pub outbox: Place,
    /// The queue Event Grid delivers the inbox's `BlobCreated` events to.
    pub events: Option<String>,
    /// How often the inbox is listed.
    pub poll: Duration,
    /// How long a new video must keep its size before it is taken.
    pub settle: Duration,
    /// Videos styled at once.
    pub concurrent: usize,
    /// Style what the inbox holds, then exit.
    pub once: bool,
    /// Where videos are downloaded and styled.
    pub work_dir: PathBuf,
    /// Whether the watcher's own options name a style (else each video must find one).
    pub default_style: bool,
}

/// The watcher's whole state, shared with the video threads.
struct Watch {
    options: WatchOptions,
    planner: Box<dyn Planner>,
    log: Arc<dyn Fn(&str) + Send + Sync>,
}

/// What the watcher knows of one inbox video.
#[derive(Debug)]
struct Seen {
    size: u64,
    /// When it was first seen at this size.
    since: Instant,
    /// When it was last seen, still at this size.
    confirmed: Instant,
    state: Tracking,
}

impl Seen {
    fn new(size: u64) -> Seen {
        let now = Instant::now();
        Seen {
            size,
            since: now,
            confirmed: now,
            state: Tracking::Waiting,
        }
    }

    /// Seen at one size across `settle`: its upload is over, and a sidecar sent with it is in.
    fn settled(&self, settle: Duration) -> bool {
        self.confirmed.duration_since(self.since) >= settle
    }
}

#[derive(Debug, PartialEq)]
enum Tracking {
    Waiting,
    Running,
    Finished,
    RetryAt(Instant),
}

/// What one pass of the watcher did, for `--once` and the summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub styled: usize,
    pub failed: usize,
    pub already_done: usize,
    /// With `once`: videos that met storage trouble, left for the next run.
    pub unfinished: usize,
}

/// Watches until stopped (Ctrl-C/SIGTERM), or with `once` until the inbox's videos are done.
pub fn run(
    options: WatchOptions,
    planner: Box<dyn Planner>,
    log: Arc<dyn Fn(&str) + Send + Sync>,
) -> Result<Tally> {
    let (_, cloud) = options.coordinator.storage.open()?;
    check_places(&options, &cloud)?;
    std::fs::create_dir_all(&options.work_dir).with_context(|| {
        format!(
            "{}: cannot create the work folder",
            options.work_dir.display()
        )
    })?;
    remove_leftovers(&options.work_dir);
    let watch = Arc::new(Watch {
        options,
        planner,
        log,
    });
    let rt = super::runtime()?;
    let inbox = cloud.container(&watch.options.inbox.container)?;
    let events = match &watch.options.events {
        Some(name) => Some(cloud.queue(name)?),
        None => None,
    };
    rt.block_on(async {
        // The first request: a wrong key or an expired SAS stops here, in one line.
        cloud
            .create_if_missing()
            .await
            .with_context(|| format!("cannot use {cloud}"))?;
        if let Some(events) = &events {
            // Made by the operator with the Event Grid subscription; made here for a first try.
            made_or_not_ours_to_make(events.create_if_missing().await)
                .with_context(|| format!("cannot use the events queue {}", events.name()))?;
        }
        anyhow::Ok(())
    })?;
    (watch.log)(&format!(
        "watching {} (every {:.0} s{}), styled videos go to {}",
        watch.options.inbox,
        watch.options.poll.as_secs_f64(),
        watch
            .options
            .events
            .as_deref()
            .map(|q| format!(", and Event Grid events on queue {q}"))
            .unwrap_or_default(),
        watch.options.outbox
    ));
    Watcher {
        watch,
        inbox,
        events,
        seen: HashMap::new(),
        tally: Tally::default(),
        running: 0,
    }
    .go(&rt)
}

/// Removes the per-video folders a killed watcher left (only those: the folder may hold more).
fn remove_leftovers(work_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(work_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let ours = entry.file_name().to_string_lossy().starts_with(WORK_PREFIX);
        if ours && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The inbox may not hold the outbox, the runs or the ledger: the watcher would take its own
/// blobs for uploads.
fn check_places(options: &WatchOptions, cloud: &Cloud) -> Result<()> {
    let (inbox, outbox) = (&options.inbox, &options.outbox);
    if inbox.contains(outbox) || outbox.contains(inbox) {
        bail!("the inbox {inbox} and the outbox {outbox} overlap: give each its own container or prefix");
    }
    let runs = [
        Some(cloud.container_name()),
        options.coordinator.output_container.as_deref(),
    ];
    if runs.contains(&Some(inbox.container.as_str())) && inbox.prefix.is_empty() {
        bail!(
            "the inbox {inbox} is the run container: give the inbox a container of its own or a prefix (e.g. {}/inbox)",
            inbox.container
        );
    }
    if let Some(events) = &options.events {
        validate_resource_name("queue", events)?;
    }
    if options.concurrent == 0 {
        bail!("--concurrent must be at least 1");
    }
    Ok(())
}

struct Watcher {
    watch: Arc<Watch>,
    inbox: Arc<dyn BlobStore>,
    events: Option<Arc<dyn JobQueue>>,
    seen: HashMap<String, Seen>,
    tally: Tally,
    running: usize,
}

impl Watcher {
    fn go(mut self, rt: &tokio::runtime::Runtime) -> Result<Tally> {
        let (done_tx, done_rx) = mpsc::channel::<(String, video::Verdict)>();
        let mut next_poll = Instant::now();
        loop {
            if Instant::now() >= next_poll {
                rt.block_on(self.list())?;
                next_poll = Instant::now() + self.watch.options.poll;
            }
            let (due, _) = self.confirmations();
            if !due.is_empty() {
                rt.block_on(self.confirm(due))?;
            }
            if let Some(events) = self.events.clone() {
                rt.block_on(self.take_events(events.as_ref()))?;
            }
            if cancelled() && self.running == 0 {
                return Ok(self.tally);
            }
            if !cancelled() {
                self.start_ready(&done_tx);
            }
            if self.watch.options.once && self.running == 0 && self.all_settled() {
                let unfinished = match self.tally.unfinished {
                    0 => String::new(),
                    n => format!(", {n} left for the next run"),
                };
                (self.watch.log)(&format!(
                    "inbox done: {} styled, {} failed, {} styled before{unfinished}",
                    self.tally.styled, self.tally.failed, self.tally.already_done
                ));
                return Ok(self.tally);
            }
            let (_, next_confirmation) = self.confirmations();
            let wake = next_confirmation.map_or(next_poll, |at| at.min(next_poll));
            let wait = wake.saturating_duration_since(Instant::now());
            let wait = match self.events {
                Some(_) => wait.min(Duration::from_millis(500)),
                None => wait,
            };
            match done_rx.recv_timeout(wait.max(Duration::from_millis(50))) {
                Ok((key, verdict)) => self.finished(key, verdict),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => unreachable!("we hold a sender"),
            }
        }
    }

    /// Notes what the inbox holds now; a video gone from it is forgotten.
    async fn list(&mut self) -> Result<()> {
        let place = &self.watch.options.inbox;
        let entries = self
            .watch_storage("listing the inbox", || self.inbox.list(&place.prefix))
            .await?;
        let Some(entries) = entries else {
            return Ok(());
        };
        let now: HashMap<String, u64> = entries
            .into_iter()
            .filter(|e| place.holds_a_video(&e.key))
            .map(|e| (e.key, e.size))
            .collect();
        self.seen
            .retain(|key, seen| seen.state == Tracking::Running || now.contains_key(key));
        for (key, size) in now {
            self.saw(key, size);
        }
        Ok(())
    }

    /// Storage trouble while watching is told and waited out, not fatal: the next poll retries.
    async fn watch_storage<T, F>(&self, what: &str, op: impl FnOnce() -> F) -> Result<Option<T>>
    where
        F: std::future::Future<Output = stylize_cloud::Result<T>>,
    {
        match op().await {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.is_retryable() => {
                (self.watch.log)(&format!("{what}: {e} (trying again at the next poll)"));
                Ok(None)
            }
            Err(e) => Err(anyhow::Error::from(e).context(what.to_owned())),
        }
    }

    fn saw(&mut self, key: String, size: u64) {
        match self.seen.get_mut(&key) {
            Some(seen) if seen.size == size => seen.confirmed = Instant::now(),
            Some(seen) if seen.state == Tracking::Running => {}
            // Still growing, or uploaded again: wait for it to settle (again).
            Some(seen) => *seen = Seen::new(size),
            None => {
                self.seen.insert(key, Seen::new(size));
            }
        }
    }

    /// The new videos that can be confirmed settled now, and when the next one can.
    fn confirmations(&self) -> (Vec<String>, Option<Instant>) {
        let (settle, now) = (self.watch.options.settle, Instant::now());
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        for (key, seen) in &self.seen {
            if seen.state != Tracking::Waiting || seen.settled(settle) {
                continue;
            }
            let at = seen.since + settle;
            if at <= now {
                due.push(key.clone());
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        (due, next)
    }

    /// Looks again at videos seen `settle` ago: by a listing of the inbox, or with events, at
    /// each video alone (a listing would take up uploads whose events have not come).
    async fn confirm(&mut self, due: Vec<String>) -> Result<()> {
        if self.events.is_none() {
            return self.list().await;
        }
        for key in due {
            let listed = self
                .watch_storage("looking at an upload", || self.inbox.list(&key))
                .await?;
            let Some(listed) = listed else { continue };
            match listed.into_iter().find(|e| e.key == key) {
                Some(entry) => self.saw(entry.key, entry.size),
                None => {
                    self.seen.remove(&key);
                }
            }
        }
        Ok(())
    }

    /// Takes Event Grid's messages: a finished upload in the inbox is seen at once (and still
    /// settles, for its sidecar); anything else is dropped. A message goes once it is noted.
    async fn take_events(&mut self, events: &dyn JobQueue) -> Result<()> {
        for _ in 0..32 {
            let received = self
                .watch_storage("reading the events queue", || {
                    events.receive(Duration::from_secs(30))
                })
                .await?;
            let Some(Some(message)) = received else {
                return Ok(());
            };
            let events_seen = match parse_event_message(&message.body) {
                Ok(parsed) => parsed,
                Err(e) => {
                    (self.watch.log)(&format!("events queue: dropping a message: {e}"));
                    Vec::new()
                }
            };
            let watch = self.watch.clone();
            let inbox = &watch.options.inbox;
            for event in events_seen {
                if let BlobEvent::Created {
                    container,
                    key,
                    size: Some(size),
                } = event
                {
                    if container == inbox.container && inbox.holds_a_video(&key) {
                        self.saw(key, size);
                    }
                }
            }
            self.watch_storage("deleting an event", || events.delete(&message))
                .await?;
        }
        Ok(())
    }

    fn all_settled(&self) -> bool {
        self.seen
            .values()
            .all(|s| matches!(s.state, Tracking::Finished))
    }

    fn start_ready(&mut self, done: &mpsc::Sender<(String, video::Verdict)>) {
        let now = Instant::now();
        let settle = self.watch.options.settle;
        let mut ready: Vec<(String, u64)> = self
            .seen
            .iter()
            .filter(|(_, s)| match s.state {
                Tracking::Waiting => s.settled(settle),
                Tracking::RetryAt(at) => now >= at,
                _ => false,
            })
            .map(|(k, s)| (k.clone(), s.size))
            .collect();
        ready.sort();
        for (key, size) in ready {
            if self.running >= self.watch.options.concurrent {
                return;
            }
            if let Some(seen) = self.seen.get_mut(&key) {
                seen.state = Tracking::Running;
            }
            self.running += 1;
            let (watch, done) = (self.watch.clone(), done.clone());
            std::thread::Builder::new()
                .name("stylize-watch".into())
                .spawn(move || {
                    let verdict = video::style_one(&watch, &key, size);
                    let _ = done.send((key, verdict));
                })
                .expect("a thread starts");
        }
    }

    fn finished(&mut self, key: String, verdict: video::Verdict) {
        self.running -= 1;
        let log = &self.watch.log;
        let state = match verdict {
            video::Verdict::Done { output, fresh } => {
                if fresh {
                    self.tally.styled += 1;
                    log(&format!("{key}: styled into {output}"));
                } else {
                    self.tally.already_done += 1;
                }
                Tracking::Finished
            }
            video::Verdict::Failed(reason) => {
                self.tally.failed += 1;
                log(&format!("{key}: moved to failed/: {reason}"));
                Tracking::Finished
            }
            video::Verdict::Retry(e) if cancelled() => {
                log(&format!("{key}: stopped ({e:#}); a restart resumes it"));
                Tracking::Finished
            }
            video::Verdict::Retry(e) if self.watch.options.once => {
                self.tally.unfinished += 1;
                log(&format!("{key}: {e:#} (left for the next run)"));
                Tracking::Finished
            }
            video::Verdict::Retry(e) => {
                log(&format!(
                    "{key}: {e:#} (trying again in {} s)",
                    RETRY_AFTER.as_secs()
                ));
                Tracking::RetryAt(Instant::now() + RETRY_AFTER)
            }
        };
        if let Some(seen) = self.seen.get_mut(&key) {
            seen.state = state;
        }
    }
}

/// Whether an inbox-relative name may be a video: not a sidecar, a style folder's picture or
/// what was moved to `failed/`.
fn is_a_video_candidate(rel: &str) -> bool {
    if rel.starts_with("failed/") || rel.ends_with(".json") {
        return false;
    }
    let is_style_picture = rel.split_once('/').is_some_and(|(_, name)| {
        name.split_once('.').is_some_and(|(stem, ext)| {
            stem == "style" && STYLE_PICTURE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
        })
    });
    !is_style_picture
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_parse_with_and_without_a_prefix() {
        let inbox = Place::parse("--inbox", "media/in/").unwrap();
        assert_eq!(inbox.key("a.mp4"), "in/a.mp4");
        assert_eq!(inbox.rel("in/x/a.mp4"), Some("x/a.mp4"));
        assert_eq!(inbox.rel("out/a.mp4"), None);
        let whole = Place::parse("--inbox", "inbox").unwrap();
        assert_eq!(whole.key("a.mp4"), "a.mp4");
        assert!(
            whole.contains(&inbox) == false
                && Place::parse("--x", "media").unwrap().contains(&inbox)
        );
        assert!(Place::parse("--inbox", "Bad_Name/x").is_err());
        assert!(Place::parse("--inbox", "media/a//b").is_err());
    }

    #[test]
    fn sidecars_pictures_and_failures_are_not_videos() {
        for rel in [
            "clip.mp4",
            "starry/clip.mov",
            "starry/deeper/style.jpg",
            "notes.txt",
        ] {
            assert!(is_a_video_candidate(rel), "{rel}");
        }
        for rel in [
            "clip.mp4.json",
            "vangogh/style.jpg",
            "vangogh/style.PNG",
            "failed/clip.mp4",
        ] {
            assert!(!is_a_video_candidate(rel), "{rel}");
        }
    }
}
