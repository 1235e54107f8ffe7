//! The job protocol's documents (run manifest, job message, done/failed markers), run ids, blob names and job splitting.
//!
//! Everything here is pure data: no I/O, so the coordinator, the workers and
//! the tests agree on names and shapes without a storage account.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::{fmt, io::Read, path::Path};
use time::OffsetDateTime;

/// Version of every document below. A worker refuses jobs of another version
/// instead of guessing at their meaning.
pub const FORMAT_VERSION: u32 = 1;

/// Hex digits of the sha256 kept in a [`RunId`]: 64 bits, far beyond any
/// number of runs one account will hold, and short enough to read.
pub const RUN_ID_HEX_LEN: usize = 16;

/// Identifies one run: one input video + one style + parameters.
///
/// It is a content hash of those (see [`RunId::derive`]), so running the same
/// command again finds the same blobs and resumes instead of duplicating work.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

impl RunId {
    /// The run id for an input (its sha256, hex, e.g. from [`sha256_file`]),
    /// a style reference (a preset name, or the style image's sha256) and the
    /// styling parameters.
    ///
    /// `params` is hashed in a canonical form (object keys sorted, no
    /// whitespace), so the order in which the caller built it does not matter.
    pub fn derive(input_sha256: &str, style: &str, params: &serde_json::Value) -> RunId {
        let mut h = Sha256::new();
        h.update(b"stylize-run\0");
        h.update(FORMAT_VERSION.to_le_bytes());
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        for part in [
            input_sha256.as_bytes(),
            style.as_bytes(),
            canonical_json(params).as_bytes(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        let hex = hex(&h.finalize());
        RunId(hex[..RUN_ID_HEX_LEN].to_owned())
    }

    /// Parses a run id as printed by `Display` (e.g. from `stylize runs`).
    pub fn parse(s: &str) -> Result<RunId> {
        let ok =
            s.len() == RUN_ID_HEX_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            Ok(RunId(s.to_owned()))
        } else {
            Err(Error::Config(format!(
                "{s:?} is not a run id ({RUN_ID_HEX_LEN} lowercase hex digits)"
            )))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `runs/<run>/`: every blob of the run lies under it.
    pub fn prefix(&self) -> String {
        format!("runs/{}/", self.0)
    }

    /// `runs/<run>/manifest.json`, written once by the coordinator.
    pub fn manifest_key(&self) -> String {
        format!("runs/{}/manifest.json", self.0)
    }

    /// `runs/<run>/frames/`: the input frames.
    pub fn frames_prefix(&self) -> String {
        format!("runs/{}/frames/", self.0)
    }

    /// `runs/<run>/frames/<n:06>.<ext>`: input frame `n` (0-based).
    pub fn frame_key(&self, n: u32, format: FrameFormat) -> String {
        format!("runs/{}/frames/{n:06}.{}", self.0, format.extension())
    }

    /// `runs/<run>/styled/`: the styled frames.
    pub fn styled_prefix(&self) -> String {
        format!("runs/{}/styled/", self.0)
    }

    /// `runs/<run>/styled/<n:06>.<ext>`: styled frame `n`.
    pub fn styled_key(&self, n: u32, format: FrameFormat) -> String {
        format!("runs/{}/styled/{n:06}.{}", self.0, format.extension())
    }

    /// `runs/<run>/done/`: one marker per finished job.
    pub fn done_prefix(&self) -> String {
        format!("runs/{}/done/", self.0)
    }

    /// `runs/<run>/done/<job:05>.json`, written by a worker after all the job's styled frames.
    pub fn done_key(&self, job: u32) -> String {
        format!("runs/{}/done/{job:05}.json", self.0)
    }

    /// `runs/<run>/queued/`: one marker per job the coordinator has put on the queue.
    pub fn queued_prefix(&self) -> String {
        format!("runs/{}/queued/", self.0)
    }

    /// `runs/<run>/queued/<job:05>.json`, written by the coordinator right after it
    /// sends the job's message, so a resumed coordinator does not queue it twice.
    pub fn queued_key(&self, job: u32) -> String {
        format!("runs/{}/queued/{job:05}.json", self.0)
    }

    /// `runs/<run>/failed/`: one marker per job given up on.
    pub fn failed_prefix(&self) -> String {
        format!("runs/{}/failed/", self.0)
    }

    /// `runs/<run>/failed/<job:05>.json`.
    pub fn failed_key(&self, job: u32) -> String {
        format!("runs/{}/failed/{job:05}.json", self.0)
    }
}

impl TryFrom<String> for RunId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        RunId::parse(&s)
    }
}

impl From<RunId> for String {
    fn from(id: RunId) -> String {
        id.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunId({})", self.0)
    }
}

/// The number in a frame or styled-frame blob name (`.../frames/000042.png` → 42),
/// for finding which frames a resumed run already has.
pub fn frame_number_of(key: &str) -> Option<u32> {
    number_in_file_name(key, 6)
}

/// The job index in a done/failed marker name (`.../done/00007.json` → 7).
pub fn job_index_of(key: &str) -> Option<u32> {
    number_in_file_name(key, 5)
}

fn number_in_file_name(key: &str, min_digits: usize) -> Option<u32> {
    let name = key.rsplit('/').next()?;
    let (stem, _ext) = name.split_once('.')?;
    if stem.len() < min_digits || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// How frames travel through blob storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameFormat {
    /// Lossless, larger.
    Png,
    /// Lossy at high quality, smallest.
    Jpeg,
    /// Lossless WebP.
    Webp,
}

impl FrameFormat {
    /// File extension used in blob names.
    pub fn extension(self) -> &'static str {
        match self {
            FrameFormat::Png => "png",
            FrameFormat::Jpeg => "jpg",
            FrameFormat::Webp => "webp",
        }
    }

    /// MIME type for the blob's content type.
    pub fn content_type(self) -> &'static str {
        match self {
            FrameFormat::Png => "image/png",
            FrameFormat::Jpeg => "image/jpeg",
            FrameFormat::Webp => "image/webp",
        }
    }
}

/// A frame rate as an exact fraction (30000/1001 stays exact; 29.97 would not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameRate {
    /// Frames per `den` seconds.
    pub num: u32,
    /// Seconds per `num` frames.
    pub den: u32,
}

impl FrameRate {
    /// Frames per second as a float, for display and ETA.
    pub fn fps(self) -> f64 {
        f64::from(self.num) / f64::from(self.den.max(1))
    }
}

/// Frames `[start, end)` of a run: a job's share, exclusive of every other job's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameRange {
    /// First frame, 0-based.
    pub start: u32,
    /// One past the last frame.
    pub end: u32,
}

impl FrameRange {
    /// Number of frames in the range.
    pub fn len(self) -> u32 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range holds no frame.
    pub fn is_empty(self) -> bool {
        self.end <= self.start
    }

    /// The frame numbers, in order.
    pub fn frames(self) -> std::ops::Range<u32> {
        self.start..self.end
    }
}

impl fmt::Display for FrameRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len() == 1 {
            write!(f, "frame {}", self.start)
        } else {
            write!(f, "frames {}..{}", self.start, self.end)
        }
    }
}

/// Frames per job when the user does not choose: about 96 jobs per run, so a
/// pool of up to ~12 workers ends with at most one short round (≥ 90% busy),
/// but never under 8 frames (per-job overhead: one receive, one marker) nor
/// over 240 (a redelivered job repeats at most that much work).
pub fn default_frames_per_job(frame_count: u32) -> u32 {
    frame_count.div_ceil(96).clamp(8, 240)
}

/// Splits `frame_count` frames into jobs of `frames_per_job` (the last one
/// shorter when it does not divide): exclusive, in order, covering every frame.
///
/// # Panics
/// If `frames_per_job` is 0.
pub fn split_jobs(frame_count: u32, frames_per_job: u32) -> Vec<FrameRange> {
    assert!(frames_per_job > 0, "frames_per_job must be at least 1");
    (0..frame_count.div_ceil(frames_per_job))
        .map(|job| {
            let start = job * frames_per_job;
            FrameRange {
                start,
                end: start.saturating_add(frames_per_job).min(frame_count),
            }
        })
        .collect()
}

/// The frames job `job` covers in a run split by [`split_jobs`], or `None` past the last job.
pub fn job_range(frame_count: u32, frames_per_job: u32, job: u32) -> Option<FrameRange> {
    let start = job.checked_mul(frames_per_job)?;
    (frames_per_job > 0 && start < frame_count).then(|| FrameRange {
        start,
        end: start.saturating_add(frames_per_job).min(frame_count),
    })
}

/// `runs/<run>/manifest.json`: what the run is, written once by the coordinator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    /// [`FORMAT_VERSION`] when written.
    pub version: u32,
    /// The run's id (also its blob prefix).
    pub run_id: RunId,
    /// The input's file name, for display (never a full local path).
    pub input_name: String,
    /// sha256 of the input file, hex.
    pub input_sha256: String,
    /// Number of frames in the input, all of which the run styles.
    pub frame_count: u32,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// The input's frame rate.
    pub frame_rate: FrameRate,
    /// How frames are stored in `frames/` and `styled/`.
    pub frame_format: FrameFormat,
    /// Frames per job (the last job may be shorter).
    pub frames_per_job: u32,
    /// Number of jobs: `ceil(frame_count / frames_per_job)`.
    pub job_count: u32,
    /// The style reference, as the binary describes it (opaque here).
    pub style: serde_json::Value,
    /// Styling parameters, as the binary describes them (opaque here).
    pub params: serde_json::Value,
    /// When the run was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// The container that receives `styled/`, `queued/`, `done/` and `failed/`
    /// when it is not the one holding the manifest and the input frames
    /// (inputs and outputs under separate grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_container: Option<String>,
}

impl RunManifest {
    /// A manifest for a new run; `job_count` follows from the frame count and
    /// `frames_per_job`, and the run id from the input hash, style and params.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        input_name: impl Into<String>,
        input_sha256: impl Into<String>,
        frame_count: u32,
        (width, height): (u32, u32),
        frame_rate: FrameRate,
        frame_format: FrameFormat,
        frames_per_job: u32,
        style_ref: &str,
        style: serde_json::Value,
        params: serde_json::Value,
    ) -> Result<RunManifest> {
        if frames_per_job == 0 {
            return Err(Error::Config("frames per job must be at least 1".into()));
        }
        if frame_count == 0 {
            return Err(Error::Config("the input has no frames".into()));
        }
        let input_sha256 = input_sha256.into();
        Ok(RunManifest {
            version: FORMAT_VERSION,
            run_id: RunId::derive(&input_sha256, style_ref, &params),
            input_name: input_name.into(),
            input_sha256,
            frame_count,
            width,
            height,
            frame_rate,
            frame_format,
            frames_per_job,
            job_count: frame_count.div_ceil(frames_per_job),
            style,
            params,
            created: OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            output_container: None,
        })
    }

    /// Sends the run's outputs (styled frames and markers) to another container.
    pub fn with_output_container(mut self, container: &str) -> Result<RunManifest> {
        crate::store::validate_resource_name("output container", container)?;
        self.output_container = Some(container.to_owned());
        Ok(self)
    }

    /// The jobs of this run, in order.
    pub fn jobs(&self) -> Vec<JobSpec> {
        split_jobs(self.frame_count, self.frames_per_job)
            .into_iter()
            .enumerate()
            .map(|(i, frames)| self.job(i as u32, frames))
            .collect()
    }

    /// Job `index`, or `None` past the last job.
    pub fn job_spec(&self, index: u32) -> Option<JobSpec> {
        job_range(self.frame_count, self.frames_per_job, index)
            .map(|frames| self.job(index, frames))
    }

    fn job(&self, job: u32, frames: FrameRange) -> JobSpec {
        JobSpec {
            version: FORMAT_VERSION,
            run_id: self.run_id.clone(),
            job,
            frames,
            frame_format: self.frame_format,
            width: self.width,
            height: self.height,
            style: self.style.clone(),
            params: self.params.clone(),
            output_container: self.output_container.clone(),
            container: None,
        }
    }

    /// JSON bytes for the blob.
    pub fn to_json(&self) -> Vec<u8> {
        to_json_bytes(self)
    }

    /// Parses a manifest blob, refusing other format versions.
    pub fn from_json(bytes: &[u8]) -> Result<RunManifest> {
        let m: RunManifest =
            serde_json::from_slice(bytes).map_err(|e| Error::json("run manifest", e))?;
        if m.version != FORMAT_VERSION {
            return Err(Error::MalformedMessage(format!(
                "run manifest {} has format version {}, this build reads {FORMAT_VERSION}",
                m.run_id, m.version
            )));
        }
        Ok(m)
    }
}

/// One queue message: style frames `[start, end)` of a run.
///
/// Self-contained: a worker finds its inputs at `run_id.frame_key(n,
/// frame_format)` for each `n` in `frames` and needs nothing else to start.
/// Unknown fields are rejected, so a message from another tool or another
/// protocol version is recognised as foreign instead of half-understood.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// The run the job belongs to.
    pub run_id: RunId,
    /// The job's index (0-based), which names its done/failed marker.
    pub job: u32,
    /// The frames to style.
    pub frames: FrameRange,
    /// How the frames are stored.
    pub frame_format: FrameFormat,
    /// Frame width, so a worker can size its batches before downloading.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// The style reference (as in the manifest).
    pub style: serde_json::Value,
    /// The styling parameters (as in the manifest).
    pub params: serde_json::Value,
    /// Where the outputs go when not beside the inputs (as in the manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_container: Option<String>,
    /// The container holding the run (manifest, input frames), set by the
    /// coordinator so one worker pool serves runs of any container; absent,
    /// the worker's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

impl JobSpec {
    /// The message body to enqueue.
    pub fn to_message(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("JobSpec always serialises"))
    }

    /// Parses a queue message body; anything that is not a well-formed job of
    /// this protocol version is [`Error::MalformedMessage`].
    pub fn from_message(body: &str) -> Result<JobSpec> {
        let spec: JobSpec =
            serde_json::from_str(body).map_err(|e| Error::MalformedMessage(e.to_string()))?;
        if spec.version != FORMAT_VERSION {
            return Err(Error::MalformedMessage(format!(
                "job format version {} (this build reads {FORMAT_VERSION})",
                spec.version
            )));
        }
        for container in [&spec.container, &spec.output_container]
            .into_iter()
            .flatten()
        {
            crate::store::validate_resource_name("container", container)
                .map_err(|e| Error::MalformedMessage(e.to_string()))?;
        }
        if spec.frames.is_empty() {
            return Err(Error::MalformedMessage(format!(
                "job {} of run {} has an empty frame range {}..{}",
                spec.job, spec.run_id, spec.frames.start, spec.frames.end
            )));
        }
        Ok(spec)
    }

    /// Blob names of this job's input frames, in order.
    pub fn frame_keys(&self) -> impl Iterator<Item = (u32, String)> + '_ {
        self.frames
            .frames()
            .map(|n| (n, self.run_id.frame_key(n, self.frame_format)))
    }

    /// Blob names of this job's styled frames, in order.
    pub fn styled_keys(&self) -> impl Iterator<Item = (u32, String)> + '_ {
        self.frames
            .frames()
            .map(|n| (n, self.run_id.styled_key(n, self.frame_format)))
    }

    /// The container of the run's outputs: its output container, else the
    /// run's own (`container`), else `None` for the worker's default.
    pub fn outputs_container(&self) -> Option<&str> {
        self.output_container
            .as_deref()
            .or(self.container.as_deref())
    }

    /// This job's done marker.
    pub fn done_key(&self) -> String {
        self.run_id.done_key(self.job)
    }

    /// This job's failed marker.
    pub fn failed_key(&self) -> String {
        self.run_id.failed_key(self.job)
    }
}

/// `runs/<run>/done/<job:05>.json`: written by the worker after every styled
/// frame of the job is uploaded, before it deletes the message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DoneMarker {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// The job's index.
    pub job: u32,
    /// The frames the job styled.
    pub frames: FrameRange,
    /// Which worker did it (host name, pod name, or `worker N`).
    pub worker: String,
    /// Wall time the worker spent on the job, seconds.
    pub seconds: f64,
    /// When it finished.
    #[serde(with = "time::serde::rfc3339")]
    pub finished: OffsetDateTime,
}

impl DoneMarker {
    /// A marker finished now.
    pub fn new(spec: &JobSpec, worker: impl Into<String>, seconds: f64) -> DoneMarker {
        DoneMarker {
            version: FORMAT_VERSION,
            job: spec.job,
            frames: spec.frames,
            worker: worker.into(),
            seconds,
            finished: now(),
        }
    }

    /// JSON bytes for the blob.
    pub fn to_json(&self) -> Vec<u8> {
        to_json_bytes(self)
    }

    /// Parses a done-marker blob.
    pub fn from_json(bytes: &[u8]) -> Result<DoneMarker> {
        serde_json::from_slice(bytes).map_err(|e| Error::json("done marker", e))
    }
}

/// `runs/<run>/failed/<job:05>.json`: the job was given up on after too many
/// deliveries; the coordinator reports its frames instead of waiting forever.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailedMarker {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// The job's index.
    pub job: u32,
    /// The frames that were not styled.
    pub frames: FrameRange,
    /// Why (the last error a worker saw), redacted.
    pub reason: String,
    /// How many times the message had been delivered.
    pub dequeue_count: u32,
    /// The worker that gave up.
    pub worker: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub failed: OffsetDateTime,
}

impl FailedMarker {
    /// A marker for a job given up on now.
    pub fn new(
        spec: &JobSpec,
        reason: impl AsRef<str>,
        dequeue_count: u32,
        worker: impl Into<String>,
    ) -> FailedMarker {
        FailedMarker {
            version: FORMAT_VERSION,
            job: spec.job,
            frames: spec.frames,
            reason: crate::redact_secrets(reason.as_ref()),
            dequeue_count,
            worker: worker.into(),
            failed: now(),
        }
    }

    /// JSON bytes for the blob.
    pub fn to_json(&self) -> Vec<u8> {
        to_json_bytes(self)
    }

    /// Parses a failed-marker blob.
    pub fn from_json(bytes: &[u8]) -> Result<FailedMarker> {
        serde_json::from_slice(bytes).map_err(|e| Error::json("failed marker", e))
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn to_json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value)
        .unwrap_or_else(|_| unreachable!("protocol documents always serialise"));
    out.push(b'\n');
    out
}

/// sha256 of a byte slice, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// sha256 of a file's contents, lowercase hex, read in 1 MiB pieces so a
/// large video never sits in memory whole.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// JSON with object keys sorted at every level and no whitespace, so equal
/// values hash equally whatever order their keys were inserted in (serde_json
/// keeps insertion order when some crate in the build enables `preserve_order`).
pub fn canonical_json(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let body: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical_json(&map[k])))
                .collect();
            format!("{{{}}}", body.join(","))
        }
        Value::Array(items) => {
            let body: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", body.join(","))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(frames: u32, per_job: u32) -> RunManifest {
        RunManifest::new(
            "orangutan.mp4",
            sha256_hex(b"video bytes"),
            frames,
            (720, 720),
            FrameRate { num: 30, den: 1 },
            FrameFormat::Png,
            per_job,
            "preset:mosaic",
            json!({"preset": "mosaic"}),
            json!({"strength": 1.0, "preserve_colors": false}),
        )
        .unwrap()
    }

    #[test]
    fn run_id_is_stable_and_depends_on_every_component() {
        let p = json!({"a": 1, "b": [1, 2]});
        let a = RunId::derive("abc", "style", &p);
        assert_eq!(
            a,
            RunId::derive("abc", "style", &json!({"b": [1, 2], "a": 1}))
        );
        assert_eq!(a.as_str().len(), RUN_ID_HEX_LEN);
        assert_ne!(a, RunId::derive("abd", "style", &p));
        assert_ne!(a, RunId::derive("abc", "style2", &p));
        assert_ne!(
            a,
            RunId::derive("abc", "style", &json!({"a": 2, "b": [1, 2]}))
        );
        assert_ne!(
            RunId::derive("ab", "cstyle", &p),
            RunId::derive("abc", "style", &p)
        );
        assert_eq!(RunId::parse(a.as_str()).unwrap(), a);
        assert!(RunId::parse("../etc").is_err());
        assert!(RunId::parse("ABCDEF0123456789").is_err());
    }

    #[test]
    fn blob_layout_matches_the_design() {
        let run = RunId::parse("0123456789abcdef").unwrap();
        assert_eq!(run.manifest_key(), "runs/0123456789abcdef/manifest.json");
        assert_eq!(
            run.frame_key(7, FrameFormat::Png),
            "runs/0123456789abcdef/frames/000007.png"
        );
        assert_eq!(
            run.styled_key(822, FrameFormat::Jpeg),
            "runs/0123456789abcdef/styled/000822.jpg"
        );
        assert_eq!(run.done_key(3), "runs/0123456789abcdef/done/00003.json");
        assert_eq!(
            run.failed_key(12),
            "runs/0123456789abcdef/failed/00012.json"
        );
        assert_eq!(run.queued_key(4), "runs/0123456789abcdef/queued/00004.json");
        assert_eq!(job_index_of(&run.queued_key(4)), Some(4));
        assert_eq!(
            frame_number_of(&run.styled_key(822, FrameFormat::Webp)),
            Some(822)
        );
        assert_eq!(job_index_of(&run.done_key(3)), Some(3));
        assert_eq!(frame_number_of("runs/x/frames/7.png"), None);
        assert_eq!(frame_number_of("runs/x/frames/00000a.png"), None);
    }

    #[test]
    fn split_covers_every_frame_exactly_once() {
        for frames in [0u32, 1, 7, 8, 9, 49, 50, 51, 823, 1000, 4096] {
            for per_job in [1u32, 3, 8, 50, 64, 823, 5000] {
                let jobs = split_jobs(frames, per_job);
                let mut next = 0;
                for (i, r) in jobs.iter().enumerate() {
                    assert_eq!(
                        r.start, next,
                        "{frames}/{per_job}: job {i} does not start where the last ended"
                    );
                    assert!(!r.is_empty() && r.len() <= per_job);
                    assert_eq!(job_range(frames, per_job, i as u32), Some(*r));
                    next = r.end;
                }
                assert_eq!(
                    next, frames,
                    "{frames}/{per_job}: frames dropped at the end"
                );
                assert_eq!(jobs.len() as u32, frames.div_ceil(per_job));
                assert_eq!(job_range(frames, per_job, jobs.len() as u32), None);
            }
        }
    }

    #[test]
    fn default_frames_per_job_is_sane() {
        assert_eq!(default_frames_per_job(1), 8);
        assert_eq!(default_frames_per_job(823), 9);
        assert_eq!(default_frames_per_job(10_000_000), 240);
        for n in [1, 100, 823, 5000, 216_000] {
            let per = default_frames_per_job(n);
            assert!((8..=240).contains(&per));
            assert!(n.div_ceil(per) <= 96 || per == 240);
        }
    }

    #[test]
    fn manifest_and_jobs_round_trip() {
        let m = manifest(823, 50);
        assert_eq!(m.job_count, 17);
        let back = RunManifest::from_json(&m.to_json()).unwrap();
        assert_eq!(back, m);

        let jobs = m.jobs();
        assert_eq!(jobs.len(), 17);
        assert_eq!(
            jobs[16].frames,
            FrameRange {
                start: 800,
                end: 823
            }
        );
        for j in &jobs {
            assert_eq!(JobSpec::from_message(&j.to_message()).unwrap(), *j);
        }
        assert_eq!(m.job_spec(16).unwrap(), jobs[16]);
        assert!(m.job_spec(17).is_none());
        let split = m.clone().with_output_container("styled-out").unwrap();
        let job = JobSpec::from_message(&split.jobs()[3].to_message()).unwrap();
        assert_eq!(job.output_container.as_deref(), Some("styled-out"));
        assert_eq!(RunManifest::from_json(&split.to_json()).unwrap(), split);
        assert!(
            !String::from_utf8(m.to_json())
                .unwrap()
                .contains("output_container"),
            "absent when unused"
        );
        assert!(m.clone().with_output_container("Bad_Name").is_err());
        let keys: Vec<_> = jobs[16].styled_keys().collect();
        assert_eq!(keys.len(), 23);
        assert_eq!(keys[0], (800, m.run_id.styled_key(800, FrameFormat::Png)));

        let done = DoneMarker::new(&jobs[2], "worker 0", 1.25);
        assert_eq!(DoneMarker::from_json(&done.to_json()).unwrap(), done);
        let failed = FailedMarker::new(&jobs[3], "decode error at sig=abc&x=1", 5, "worker 1");
        assert!(!failed.reason.contains("abc"));
        assert_eq!(FailedMarker::from_json(&failed.to_json()).unwrap(), failed);
    }

    #[test]
    fn foreign_and_malformed_messages_are_rejected() {
        let good = manifest(100, 10).jobs()[0].to_message();
        let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
        v["extra"] = json!(1);
        assert!(matches!(
            JobSpec::from_message(&v.to_string()),
            Err(Error::MalformedMessage(_))
        ));

        let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
        v["frames"]["step"] = json!(2);
        assert!(matches!(
            JobSpec::from_message(&v.to_string()),
            Err(Error::MalformedMessage(_))
        ));

        let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
        v["version"] = json!(2);
        assert!(matches!(
            JobSpec::from_message(&v.to_string()),
            Err(Error::MalformedMessage(_))
        ));

        let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
        v["frames"] = json!({"start": 5, "end": 5});
        assert!(matches!(
            JobSpec::from_message(&v.to_string()),
            Err(Error::MalformedMessage(_))
        ));

        for foreign in [
            "",
            "hello",
            "{}",
            "eyJqb2IiOjF9",
            r#"{"run_id":"../../x","job":1}"#,
        ] {
            assert!(
                matches!(
                    JobSpec::from_message(foreign),
                    Err(Error::MalformedMessage(_))
                ),
                "{foreign:?} accepted"
            );
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = json!({"b": {"y": 1, "x": [ {"d": 1, "c": 2} ]}, "a": "s"});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":"s","b":{"x":[{"c":2,"d":1}],"y":1}}"#
        );
    }
}
