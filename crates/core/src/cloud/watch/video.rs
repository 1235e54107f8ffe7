//! One inbox video through the cloud: its options (the style folder, a JSON sidecar), its download, the run, the result into the outbox, or the file moved to `failed/` with its reason.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use serde_json::Value;
use stylize_cloud::{BlobStore, Bytes, Cloud, Error as CloudError};

use super::ledger::{self, Entry, State};
use super::{VideoOption, Watch, SIDECAR_KEYS, STYLE_PICTURE_EXTENSIONS};
use crate::cloud::coordinator::{self, InputProgress, JobsFailed, Outcome, Reporter};
use crate::inputs::check_inputs;
use crate::output::{container_for, stem_of};

/// What became of one video.
pub(super) enum Verdict {
    /// Styled into the outbox (`fresh`: this time, not by an earlier watcher).
    Done { output: String, fresh: bool },
    /// Not usable as it is: moved to `failed/` with this reason.
    Failed(String),
    /// Storage trouble, an interruption: tried again later.
    Retry(anyhow::Error),
}

/// Why a video cannot be styled as uploaded (moved aside), or trouble worth another try.
enum Problem {
    Unusable(String),
    Trouble(anyhow::Error),
}

impl From<anyhow::Error> for Problem {
    fn from(e: anyhow::Error) -> Problem {
        Problem::Trouble(e)
    }
}

fn unusable(reason: impl Into<String>) -> Problem {
    Problem::Unusable(reason.into())
}

/// Styles inbox video `key` (of `size` bytes) into the outbox. Runs on its own thread: the
/// coordinator drives its run with a runtime of its own.
pub(super) fn style_one(watch: &Watch, key: &str, size: u64) -> Verdict {
    let work = match tempfile::Builder::new()
        .prefix(super::WORK_PREFIX)
        .tempdir_in(&watch.options.work_dir)
        .with_context(|| {
            format!(
                "{}: cannot make a work folder",
                watch.options.work_dir.display()
            )
        }) {
        Ok(work) => work,
        Err(e) => return Verdict::Retry(e),
    };
    let outcome = (|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let (_, cloud) = watch.options.coordinator.storage.open()?;
        let video = Video {
            watch,
            inbox: cloud.container(&watch.options.inbox.container)?,
            cloud,
            key,
            size,
            work: work.path(),
        };
        match video.style(&rt) {
            Ok((output, fresh)) => Ok(Verdict::Done { output, fresh }),
            Err(Problem::Unusable(reason)) => {
                rt.block_on(video.move_to_failed(&reason))?;
                Ok(Verdict::Failed(reason))
            }
            Err(Problem::Trouble(e)) => Ok(Verdict::Retry(e)),
        }
    })();
    outcome.unwrap_or_else(Verdict::Retry)
}

struct Video<'a> {
    watch: &'a Watch,
    cloud: Cloud,
    inbox: Arc<dyn BlobStore>,
    key: &'a str,
    size: u64,
    work: &'a Path,
}

impl Video<'_> {
    fn rel(&self) -> &str {
        self.watch.options.inbox.rel(self.key).unwrap_or(self.key)
    }

    /// The outbox blob written, and whether it was written now.
    fn style(&self, rt: &tokio::runtime::Runtime) -> Result<(String, bool), Problem> {
        let inbox_container = &self.watch.options.inbox.container;
        let earlier = rt
            .block_on(ledger::read(
                self.cloud.blobs.as_ref(),
                inbox_container,
                self.key,
            ))
            .context("reading the watch ledger")?;
        if let Some(entry) = &earlier {
            if entry.state == State::Done && entry.size == self.size {
                return Ok((entry.output.clone(), false));
            }
        }
        let options = rt.block_on(self.options())?;
        let input = rt.block_on(self.download())?;
        // A folder, not a file name: the codec picks the container (ProRes goes in .mov).
        let out_dir = self.work.join("out");
        // Reasons name the blob, not the work folder's copy of it.
        let named =
            |e: anyhow::Error| format!("{e:#}").replace(&input.display().to_string(), self.key);
        let config = self
            .watch
            .planner
            .plan(&input, &out_dir, &options)
            .map_err(|e| unusable(named(e)))?;
        if let Some(Err(e)) = check_inputs(&config, false).into_iter().next() {
            return Err(unusable(format!("not a usable video: {}", named(e))));
        }
        let ext = container_for(&input, config.encode.codec);
        let output_key = rt.block_on(self.output_key(&ext, earlier.as_ref()))?;
        let outbox = &self.watch.options.outbox.container;
        let entry = Entry {
            state: State::Started,
            size: self.size,
            output: format!("{outbox}/{output_key}"),
        };
        rt.block_on(ledger::write(
            self.cloud.blobs.as_ref(),
            inbox_container,
            self.key,
            &entry,
        ))
        .context("writing the watch ledger")?;
        (self.watch.log)(&format!("{}: styling into {}", self.key, entry.output));
        let written = self.run(&config)?;
        rt.block_on(async {
            let outbox = self.cloud.container(outbox)?;
            stylize_cloud::made_or_not_ours_to_make(outbox.create_if_missing().await)?;
            outbox.put_file(&output_key, &written).await?;
            let done = Entry {
                state: State::Done,
                ..entry.clone()
            };
            ledger::write(self.cloud.blobs.as_ref(), inbox_container, self.key, &done).await?;
            anyhow::Ok(())
        })
        .with_context(|| format!("writing {}", entry.output))?;
        Ok((entry.output, true))
    }

    /// The run itself, as `stylize VIDEO --cloud ...` would do it.
    fn run(&self, config: &crate::inputs::RunConfig) -> Result<PathBuf, Problem> {
        let reporter = Arc::new(LogReporter {
            name: self.key.to_owned(),
            log: self.watch.log.clone(),
        });
        let results = coordinator::run(config, &self.watch.options.coordinator, reporter)?;
        match results.into_iter().next() {
            Some(Ok(Outcome::Written { output, .. })) => Ok(output),
            Some(Err(e)) => match e.chain().find(|c| c.is::<JobsFailed>()) {
                Some(failed) => Err(unusable(one_line(&failed.to_string()))),
                None => Err(Problem::Trouble(e)),
            },
            Some(Ok(Outcome::Submitted { .. })) | None => {
                Err(Problem::Trouble(anyhow!("the run wrote no video")))
            }
        }
    }

    /// The options from the style folder, then from the sidecar (which wins).
    async fn options(&self) -> Result<Vec<VideoOption>, Problem> {
        let mut options = Vec::new();
        if let Some((folder, _)) = self.rel().split_once('/') {
            options.push(VideoOption::new("style", self.folder_style(folder).await?));
        }
        let sidecar = format!("{}.json", self.key);
        match self.inbox.get(&sidecar).await {
            Ok(bytes) => {
                for option in
                    sidecar_options(&bytes).map_err(|e| unusable(format!("{sidecar}: {e}")))?
                {
                    let option = match (option.name.as_str(), &option.value) {
                        ("style", Some(spec)) if looks_like_a_picture(spec) => {
                            VideoOption::new("style", self.picture(spec).await?)
                        }
                        _ => option,
                    };
                    options.push(option);
                }
            }
            Err(CloudError::NotFound(_)) => {}
            Err(e) => return Err(Problem::Trouble(e.into())),
        }
        if !self.watch.options.default_style && !options.iter().any(|o| o.name == "style") {
            return Err(unusable(
                "no style: upload it into a style's folder (a preset name from `stylize styles`, or a folder holding style.jpg) or beside a NAME.json naming one",
            ));
        }
        Ok(options)
    }

    /// A folder's style: its `style.jpg` (or .jpeg, .png, .webp), else its name as a preset.
    async fn folder_style(&self, folder: &str) -> Result<String, Problem> {
        let place = &self.watch.options.inbox;
        // One listing finds whichever picture the folder holds.
        let pictures = self
            .inbox
            .list(&place.key(&format!("{folder}/style.")))
            .await
            .map_err(anyhow::Error::from)?;
        for ext in STYLE_PICTURE_EXTENSIONS {
            let rel = format!("{folder}/style.{ext}");
            if pictures.iter().any(|p| p.key == place.key(&rel)) {
                return self.picture(&rel).await;
            }
        }
        crate::style::parse_style(folder).map_err(|e| {
            unusable(format!(
                "folder {folder}/ holds no style.jpg and does not name a preset: {e:#}"
            ))
        })?;
        Ok(folder.to_owned())
    }

    /// Downloads the style picture `rel` (inbox-relative) into the work folder.
    async fn picture(&self, rel: &str) -> Result<String, Problem> {
        let key = self.watch.options.inbox.key(rel);
        let path = self.work_file("style", rel)?;
        match self.inbox.get_to_file(&key, &path).await {
            Ok(_) => Ok(path.to_string_lossy().into_owned()),
            Err(CloudError::NotFound(_)) => {
                Err(unusable(format!("style picture {key} is not in the inbox")))
            }
            Err(e) => Err(Problem::Trouble(e.into())),
        }
    }

    /// A path in the work folder's `dir` (made) with the file name of blob `key`.
    fn work_file(&self, dir: &str, key: &str) -> Result<PathBuf> {
        let dir = self.work.join(dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        let name = Path::new(key)
            .file_name()
            .map_or_else(|| "blob".into(), |n| n.to_os_string());
        Ok(dir.join(name))
    }

    async fn download(&self) -> Result<PathBuf, Problem> {
        let path = self.work_file("in", self.key)?;
        // Streamed to disk: a master of gigabytes is never held in memory.
        self.inbox
            .get_to_file(self.key, &path)
            .await
            .map_err(anyhow::Error::from)?;
        Ok(path)
    }

    /// The outbox name: the video's own path with the output's extension; a blob already there
    /// that this video did not write is kept, and the result takes `-2`, `-3`... instead.
    async fn output_key(&self, ext: &str, earlier: Option<&Entry>) -> Result<String> {
        let outbox = self.cloud.container(&self.watch.options.outbox.container)?;
        let rel = Path::new(self.rel());
        let dir = self.rel().rsplit_once('/').map_or("", |(dir, _)| dir);
        let stem = stem_of(rel);
        for n in 1.. {
            let name = match n {
                1 => format!("{stem}.{ext}"),
                n => format!("{stem}-{n}.{ext}"),
            };
            let rel = if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            };
            let key = self.watch.options.outbox.key(&rel);
            let ours = earlier.is_some_and(|e| {
                e.output == format!("{}/{key}", self.watch.options.outbox.container)
            });
            if ours || !outbox.exists(&key).await? {
                return Ok(key);
            }
        }
        unreachable!("some name is free")
    }

    /// Moves the video (and its sidecar) to `failed/` under the inbox prefix, with
    /// `<name>.reason.txt` beside it.
    async fn move_to_failed(&self, reason: &str) -> Result<()> {
        let inbox = &self.inbox;
        let failed = |key: &str| {
            let rel = self.watch.options.inbox.rel(key).unwrap_or(key);
            self.watch.options.inbox.key(&format!("failed/{rel}"))
        };
        inbox
            .put(
                &format!("{}.reason.txt", failed(self.key)),
                Bytes::from(format!("{reason}\n")),
            )
            .await?;
        let copy = self.work.join("failed");
        for key in [self.key.to_owned(), format!("{}.json", self.key)] {
            match inbox.get_to_file(&key, &copy).await {
                Ok(_) => {
                    inbox.put_file(&failed(&key), &copy).await?;
                    inbox.delete(&key).await?;
                }
                Err(CloudError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let inbox_container = &self.watch.options.inbox.container;
        ledger::forget(self.cloud.blobs.as_ref(), inbox_container, self.key).await?;
        Ok(())
    }
}

/// A sidecar's options: a JSON object whose keys are the long options of a run (`style`,
/// `strength`, `codec`...; `_` may stand for `-`), with strings, numbers or booleans.
pub(super) fn sidecar_options(bytes: &[u8]) -> Result<Vec<VideoOption>, String> {
    let json: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(fields) = json else {
        return Err("not a JSON object".into());
    };
    let mut options = Vec::new();
    for (key, value) in fields {
        let name = key.replace('_', "-");
        if !SIDECAR_KEYS.contains(&name.as_str()) {
            return Err(format!(
                "unknown option {key:?} (use: {})",
                SIDECAR_KEYS.join(", ")
            ));
        }
        match value {
            Value::String(s) => options.push(VideoOption::new(&name, s)),
            Value::Number(n) => options.push(VideoOption::new(&name, n.to_string())),
            Value::Bool(true) => options.push(VideoOption { name, value: None }),
            Value::Bool(false) => {}
            other => return Err(format!("{key}: {other} is not a string, number or boolean")),
        }
    }
    Ok(options)
}

/// Whether a sidecar's `style` names a picture in the inbox rather than presets.
fn looks_like_a_picture(spec: &str) -> bool {
    spec.contains('/')
        || Path::new(spec).extension().is_some_and(|e| {
            STYLE_PICTURE_EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str())
        })
}

/// The reason as one line.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The coordinator's lines go to the watcher's log, prefixed with the video; no progress bars.
struct LogReporter {
    name: String,
    log: Arc<dyn Fn(&str) + Send + Sync>,
}

impl Reporter for LogReporter {
    fn say(&self, line: &str) {
        (self.log)(&format!("{}: {line}", self.name));
    }

    fn input(&self, _name: &str) -> Box<dyn InputProgress> {
        Box::new(LogProgress {
            name: self.name.clone(),
            log: self.log.clone(),
            state: std::sync::Mutex::new(ProgressState::default()),
        })
    }
}

/// How often a long run's progress is logged.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// A run's stage and counts, logged at most every [`PROGRESS_EVERY`]: a watcher's log is read
/// later, not watched as a bar.
struct LogProgress {
    name: String,
    log: Arc<dyn Fn(&str) + Send + Sync>,
    state: std::sync::Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    total: u64,
    done: u64,
    logged: Option<std::time::Instant>,
}

impl InputProgress for LogProgress {
    fn message(&self, text: &str) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.logged.is_some_and(|at| at.elapsed() < PROGRESS_EVERY) {
            return;
        }
        state.logged = Some(std::time::Instant::now());
        let counts = match state.total {
            0 => String::new(),
            total => format!(" ({}/{total})", state.done),
        };
        (self.log)(&format!("{}: {text}{counts}", self.name));
    }
    fn restart(&self, total: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (state.total, state.done) = (total, 0);
    }
    fn set(&self, done: u64) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).done = done;
    }
    fn advance(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).done += 1;
    }
    fn finish(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_give_options_and_refuse_unknown_keys() {
        let options =
            sidecar_options(br#"{"style": "preset:3", "max_size": 512, "preserve-colors": true, "steady": 0.5, "overwrite": false}"#);
        assert_eq!(
            options.unwrap_err(),
            format!(
                "unknown option \"overwrite\" (use: {})",
                SIDECAR_KEYS.join(", ")
            )
        );
        let options = sidecar_options(
            br#"{"style": "preset:3", "max_size": 512, "preserve-colors": true, "steady": 0.5}"#,
        )
        .unwrap();
        // In key order: each names a different option, so the order does not matter.
        assert_eq!(
            options,
            [
                VideoOption::new("max-size", "512"),
                VideoOption {
                    name: "preserve-colors".into(),
                    value: None
                },
                VideoOption::new("steady", "0.5"),
                VideoOption::new("style", "preset:3"),
            ]
        );
        assert!(sidecar_options(b"[1]")
            .unwrap_err()
            .contains("not a JSON object"));
        assert!(sidecar_options(b"{").unwrap_err().starts_with("not JSON"));
        assert!(sidecar_options(br#"{"crf": [1]}"#)
            .unwrap_err()
            .contains("not a string"));
    }

    #[test]
    fn pictures_are_told_from_presets() {
        assert!(looks_like_a_picture("styles/vangogh.jpg"));
        assert!(looks_like_a_picture("vangogh.PNG"));
        assert!(!looks_like_a_picture("preset:3=0.7,preset:12=0.3"));
        assert!(!looks_like_a_picture("starry-blue"));
    }
}
