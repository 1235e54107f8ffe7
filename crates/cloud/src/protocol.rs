//! The job protocol's documents (run manifest, job message, style and parameters, queued/done/failed markers), run ids, blob names and job splitting.
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
pub const FORMAT_VERSION: u32 = 2;

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

/// Where the run index's entries lie (see [`RunId::index_key`]).
pub const RUN_INDEX_PREFIX: &str = "index/runs/";

impl RunId {
    /// The run id for an input (its sha256, hex, e.g. from [`sha256_file`]),
    /// a style reference (the binary's canonical text for the look, e.g. the
    /// style image's size and sha256 or the normalised preset blend) and the
    /// styling parameters.
    ///
    /// `params` is hashed as the [`canonical_json`] of its JSON value (keys
    /// sorted, no whitespace, `strength` as its `f64` widening), exactly as
    /// format version 1 always has, so a re-run finds the runs stored before.
    pub fn derive(input_sha256: &str, style: &str, params: &StyleParamsSpec) -> RunId {
        let params = serde_json::to_value(params)
            .unwrap_or_else(|_| unreachable!("StyleParamsSpec always serialises"));
        let mut h = Sha256::new();
        h.update(b"stylize-run\0");
        h.update(FORMAT_VERSION.to_le_bytes());
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        for part in [
            input_sha256.as_bytes(),
            style.as_bytes(),
            canonical_json(&params).as_bytes(),
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

    /// `index/runs/<run>`: an empty blob naming the run, so finding the runs lists one blob per
    /// run rather than every blob of every run.
    pub fn index_key(&self) -> String {
        format!("{RUN_INDEX_PREFIX}{}", self.0)
    }

    /// `runs/<run>/style.png`: the style picture, for runs whose frames are optimised against it.
    pub fn style_picture_key(&self) -> String {
        format!("runs/{}/style.png", self.0)
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

    /// `runs/<run>/done/<job:05>.<incarnation>.json`, written by a worker after all the job's
    /// styled frames. The incarnation keeps a marker of a cleaned run's job from counting for a
    /// new run of the same id, whose jobs may be split differently.
    pub fn done_key(&self, job: u32, incarnation: &str) -> String {
        format!("runs/{}/done/{job:05}.{incarnation}.json", self.0)
    }

    /// The done markers of jobs `100 * bucket ..= 100 * bucket + 99` share this name prefix
    /// (`runs/<run>/done/BBB`), so a follower lists a hundred jobs, not the whole run. `None` for
    /// runs of over 100,000 jobs, whose indices outgrow the five digits.
    pub fn done_bucket_prefix(&self, bucket: u32, job_count: u32) -> Option<String> {
        (job_count <= 100_000).then(|| format!("runs/{}/done/{bucket:03}", self.0))
    }

    /// The styled frames `1000 * bucket ..= 1000 * bucket + 999` share this name prefix
    /// (`runs/<run>/styled/BBB`). `None` for runs of over a million frames.
    pub fn styled_bucket_prefix(&self, bucket: u32, frame_count: u32) -> Option<String> {
        (frame_count <= 1_000_000).then(|| format!("runs/{}/styled/{bucket:03}", self.0))
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

    /// `runs/<run>/sources/`: the input's bitstream in pieces (segments runs).
    pub fn pieces_prefix(&self) -> String {
        format!("runs/{}/sources/", self.0)
    }

    /// `runs/<run>/sources/<piece:05>.mkv`: piece `piece` of the input's video stream.
    pub fn piece_key(&self, piece: u32) -> String {
        format!("runs/{}/sources/{piece:05}.mkv", self.0)
    }

    /// `runs/<run>/segments/`: the encoded segments (segments runs).
    pub fn segments_prefix(&self) -> String {
        format!("runs/{}/segments/", self.0)
    }

    /// `runs/<run>/segments/<job:05>.mkv`: job `job`'s styled frames, encoded.
    pub fn segment_key(&self, job: u32) -> String {
        format!("runs/{}/segments/{job:05}.mkv", self.0)
    }

    /// `runs/<run>/styled/<n:06>.mark`: a segments job's sign of life, styled up to frame `n`
    /// (the coordinator reads styled names as a running job's progress).
    pub fn progress_mark_key(&self, n: u32) -> String {
        format!("runs/{}/styled/{n:06}.mark", self.0)
    }

    /// `runs/<run>/failed/`: one marker per job given up on.
    pub fn failed_prefix(&self) -> String {
        format!("runs/{}/failed/", self.0)
    }

    /// `runs/<run>/failed/<job:05>.<incarnation>.json`.
    pub fn failed_key(&self, job: u32, incarnation: &str) -> String {
        format!("runs/{}/failed/{job:05}.{incarnation}.json", self.0)
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

/// The job index in a queued marker name (`.../queued/00007.json` → 7).
pub fn job_index_of(key: &str) -> Option<u32> {
    number_in_file_name(key, 5)
}

/// The job index in a done/failed marker name of `incarnation`
/// (`.../done/00007.<incarnation>.json` → 7); `None` for another incarnation's marker.
pub fn marker_job_of(key: &str, incarnation: &str) -> Option<u32> {
    let name = key.rsplit('/').next()?;
    let (_, rest) = name.split_once('.')?;
    (rest.strip_suffix(".json")? == incarnation)
        .then(|| number_in_file_name(key, 5))
        .flatten()
}

/// A fresh incarnation: 12 hex digits, different for every manifest written (time, process and
/// a counter hashed, so two coordinators starting in the same nanosecond still differ).
pub fn new_incarnation() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let seed = format!(
        "{now} {} {} {:p}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        &COUNTER
    );
    let digest = Sha256::digest(seed.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
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

/// One piece of the input's video bitstream: frames it shows, counted in the input's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PieceSpec {
    /// The input's frame number of the piece's first shown frame.
    pub first_frame: u32,
    /// Frames the piece shows.
    pub frames: u32,
    /// Frames decoded before the first shown one, which the input's edit list hides.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hidden: u32,
}

/// How segments are encoded: the run's `--codec`, `--crf`, `--preset` and `--pixel-format`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncodeSpec {
    /// `h264`, `hevc`, `av1`, `prores:<profile>` or `ffv1` (`--codec`); manifests written before
    /// there was a choice have none and mean H.264.
    #[serde(default = "h264", skip_serializing_if = "is_h264")]
    pub codec: String,
    /// x264's constant rate factor (mapped onto the codec's own scale by the worker).
    pub crf: f32,
    /// x264's preset name (likewise).
    pub preset: String,
    /// `yuv420p` or `yuv444p`.
    pub pixel_format: String,
}

fn h264() -> String {
    "h264".into()
}

fn is_h264(codec: &str) -> bool {
    codec == "h264"
}

/// A segments run (the default transport): the input goes up as pieces of its own bitstream and
/// each worker sends back its frames encoded, so the coordinator only cuts and joins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentsSpec {
    /// The input's video stream in pieces, in order, covering every frame.
    pub pieces: Vec<PieceSpec>,
    pub encode: EncodeSpec,
    /// `--steady`: the workers steady their frames, each job starting from `warm_up` frames
    /// before its range.
    pub steady: f32,
    pub warm_up: u32,
}

/// What a segments job needs beyond its frame range: the pieces to decode, from which frame,
/// and how to steady and encode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSegment {
    /// The index of the first piece in `pieces`; the rest follow it in order.
    pub first_piece: u32,
    pub pieces: Vec<PieceSpec>,
    /// The first frame decoded and styled: the job's start less its warm-up frames.
    pub decode_from: u32,
    pub steady: f32,
    pub encode: EncodeSpec,
    /// The input's frame rate, which the encoder is told.
    pub frame_rate: FrameRate,
}

impl JobSegment {
    /// The piece numbers with their plan, in order.
    pub fn numbered_pieces(&self) -> impl Iterator<Item = (u32, PieceSpec)> + '_ {
        (self.first_piece..).zip(self.pieces.iter().copied())
    }

    /// Whether the pieces run on from each other and cover `decode_from..frames.end`.
    fn covers(&self, frames: FrameRange) -> bool {
        let consecutive = self
            .pieces
            .windows(2)
            .all(|w| w[0].first_frame + w[0].frames == w[1].first_frame);
        let (Some(first), Some(last)) = (self.pieces.first(), self.pieces.last()) else {
            return false;
        };
        consecutive
            && self.decode_from <= frames.start
            && first.first_frame <= self.decode_from
            && last.first_frame + last.frames >= frames.end
            && (0.0..=1.0).contains(&self.steady)
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

/// Number of presets of the preset network: a [`StyleKind::Presets`] style
/// carries exactly this many weights, one per preset in the network's order.
///
/// Fixed by the network's weights (the model crate's preset count); repeated
/// here because the protocol must not depend on the model crate. A build whose
/// network has another count is another protocol, and must change
/// [`FORMAT_VERSION`].
pub const PRESET_COUNT: usize = 26;

/// Which network a [`StyleSpec`]'s values are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StyleKind {
    /// The arbitrary-style network; the values are its style vector.
    Image,
    /// The [`PRESET_COUNT`]-preset network; the values are the normalised preset weights.
    Presets,
}

impl StyleKind {
    /// The name used in the documents (`image`, `presets`).
    pub fn as_str(self) -> &'static str {
        match self {
            StyleKind::Image => "image",
            StyleKind::Presets => "presets",
        }
    }

    /// How many values a style of this kind carries, where the protocol fixes
    /// it: [`PRESET_COUNT`] for presets; `None` for an image style (its vector
    /// length is the network's business).
    pub fn value_count(self) -> Option<usize> {
        match self {
            StyleKind::Image => None,
            StyleKind::Presets => Some(PRESET_COUNT),
        }
    }
}

impl fmt::Display for StyleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The style of a run, computed once by the coordinator: the manifest's and
/// every job's `style` field.
///
/// Workers never see the style picture: the coordinator turns it into the
/// network's style vector (or the normalised preset weights), and a worker
/// rebuilds exactly the style local mode would use from these numbers alone.
/// [`StyleSpec::validate`] says whether a worker can use it;
/// [`RunManifest::from_json`] and [`JobSpec::from_message`] apply it.
///
/// Values are written as their exact `f64` widening (`0.1f32` appears as
/// `0.10000000149011612`), as format version 1 always has, and read back to
/// the same `f32`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StyleSpec {
    /// Which network the values are for.
    pub kind: StyleKind,
    /// For people reading `stylize runs` (a file name or preset names); never
    /// used to compute anything.
    pub label: String,
    /// The prepared style's values: an image style's vector (already blended
    /// with the first frame's own style below full strength), or
    /// [`PRESET_COUNT`] preset weights.
    #[serde(serialize_with = "serialize_f32s_wide")]
    pub values: Vec<f32>,
}

impl StyleSpec {
    /// Checks that a worker can use the style: at least one value, every value
    /// finite, and exactly [`PRESET_COUNT`] of them for a presets style.
    ///
    /// # Errors
    /// [`Error::InvalidStyle`] saying what is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.values.is_empty() {
            return Err(Error::InvalidStyle(format!(
                "the {} style {:?} has no values",
                self.kind, self.label
            )));
        }
        if let Some(n) = self.kind.value_count() {
            if self.values.len() != n {
                return Err(Error::InvalidStyle(format!(
                    "a {} style has {n} values, {:?} has {}",
                    self.kind,
                    self.label,
                    self.values.len()
                )));
            }
        }
        if let Some(i) = self.values.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidStyle(format!(
                "value {i} of the {} style {:?} is not a finite number ({})",
                self.kind, self.label, self.values[i]
            )));
        }
        Ok(())
    }
}

/// The styling parameters of a run: the manifest's and every job's `params`
/// field, and part of the run id (see [`RunId::derive`]).
///
/// The fields are declared in alphabetical order on purpose: format version 1
/// wrote them in that order (through a sorted JSON map), and keeping it keeps
/// stored manifests and queued messages byte for byte what this type writes.
/// `strength` is written as its exact `f64` widening, as it always was.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StyleParamsSpec {
    /// Longest side, in pixels, the network sees (`None`: the frame's own
    /// size); the styled frame is scaled back to the input's size.
    pub max_size: Option<u32>,
    /// Keep the original colours (only the styled luminance is used).
    pub preserve_colors: bool,
    /// How much of the styled frame to use, 0 to 1 (1: fully styled).
    #[serde(serialize_with = "serialize_f32_wide")]
    pub strength: f32,
    /// `--method optimize`: the network's picture optimised further against the style picture
    /// (stored at [`RunId::style_picture_key`]); absent for the network alone, so runs of the
    /// fast method keep their ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimize: Option<OptimizeSpec>,
}

/// The optimisation method's parameters (see stylize-model's `optimize`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizeSpec {
    /// L-BFGS iterations per frame.
    pub iterations: u32,
    /// Weight of the content distance against the style distance's 1.
    pub content_weight: f64,
}

impl StyleParamsSpec {
    /// Checks that a worker can use the parameters: `strength` within `0..=1`
    /// (the rule the command line and the networks apply too).
    ///
    /// # Errors
    /// [`Error::InvalidStyle`] saying what is wrong.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.strength) {
            return Err(Error::InvalidStyle(format!(
                "strength must be within 0..=1, got {}",
                self.strength
            )));
        }
        if let Some(o) = &self.optimize {
            if o.iterations == 0 || !o.content_weight.is_finite() || o.content_weight < 0.0 {
                return Err(Error::InvalidStyle(format!(
                    "optimisation needs at least one iteration and a content weight of 0 or more, got {} and {}",
                    o.iterations, o.content_weight
                )));
            }
        }
        Ok(())
    }
}

/// `f32` written as its exact `f64` widening (what a `serde_json::Value` made
/// from an `f32` holds), so the protocol's text is what format version 1 wrote.
fn serialize_f32_wide<S: serde::Serializer>(v: &f32, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(f64::from(*v))
}

fn serialize_f32s_wide<S: serde::Serializer>(
    v: &[f32],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|&x| f64::from(x)))
}

/// Reads a style and its parameters from their JSON, applying both
/// `validate`s; the error says which part is unusable, for a failed marker.
fn parse_look(
    style: serde_json::Value,
    params: serde_json::Value,
) -> std::result::Result<(StyleSpec, StyleParamsSpec), String> {
    let style: StyleSpec = serde_json::from_value(style)
        .map_err(|e| format!("its style is not one this build reads: {e}"))?;
    style.validate().map_err(|e| e.to_string())?;
    let params: StyleParamsSpec = serde_json::from_value(params)
        .map_err(|e| format!("its parameters are not ones this build reads: {e}"))?;
    params.validate().map_err(|e| e.to_string())?;
    Ok((style, params))
}

/// `runs/<run>/manifest.json`: what the run is, written once by the coordinator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    /// [`FORMAT_VERSION`] when written.
    pub version: u32,
    /// The run's id (also its blob prefix).
    pub run_id: RunId,
    /// This manifest's incarnation of the run ([`new_incarnation`]): a run cleaned and started
    /// again has a new one, and jobs and markers of the old one no longer count.
    pub incarnation: String,
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
    /// The run's style, computed once by the coordinator.
    pub style: StyleSpec,
    /// The styling parameters.
    pub params: StyleParamsSpec,
    /// When the run was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// The container that receives `styled/`, `queued/`, `done/` and `failed/`
    /// when it is not the one holding the manifest and the input frames
    /// (inputs and outputs under separate grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_container: Option<String>,
    /// Present for a segments run (pieces up, segments down); absent for a frames run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<SegmentsSpec>,
}

impl RunManifest {
    /// A manifest for a new run; `job_count` follows from the frame count and
    /// `frames_per_job`, and the run id from the input hash, `style_ref` and
    /// `params` ([`RunId::derive`]).
    ///
    /// # Errors
    /// [`Error::Config`] for no frames or 0 frames per job;
    /// [`Error::InvalidStyle`] for a style or parameters a worker could not use.
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
        style: StyleSpec,
        params: StyleParamsSpec,
    ) -> Result<RunManifest> {
        if frames_per_job == 0 {
            return Err(Error::Config("frames per job must be at least 1".into()));
        }
        if frame_count == 0 {
            return Err(Error::Config("the input has no frames".into()));
        }
        style.validate()?;
        params.validate()?;
        let input_sha256 = input_sha256.into();
        Ok(RunManifest {
            version: FORMAT_VERSION,
            run_id: RunId::derive(&input_sha256, style_ref, &params),
            incarnation: new_incarnation(),
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
            segments: None,
        })
    }

    /// Makes this a segments run.
    ///
    /// # Errors
    /// [`Error::Config`] when the pieces do not cover the run's frames in order.
    pub fn with_segments(mut self, segments: SegmentsSpec) -> Result<RunManifest> {
        let mut next = 0;
        for piece in &segments.pieces {
            if piece.first_frame != next || piece.frames == 0 {
                return Err(Error::Config(format!(
                    "piece at frame {} does not follow on from frame {next}",
                    piece.first_frame
                )));
            }
            next += piece.frames;
        }
        if next != self.frame_count {
            return Err(Error::Config(format!(
                "the pieces cover {next} frames, the run has {}",
                self.frame_count
            )));
        }
        self.segments = Some(segments);
        Ok(self)
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
            incarnation: self.incarnation.clone(),
            job,
            frames,
            frame_format: self.frame_format,
            width: self.width,
            height: self.height,
            style: self.style.clone(),
            params: self.params.clone(),
            output_container: self.output_container.clone(),
            container: None,
            storage_retries: 0,
            segment: self
                .segments
                .as_ref()
                .map(|s| Box::new(job_segment(s, frames, self.frame_rate))),
        }
    }

    /// JSON bytes for the blob.
    pub fn to_json(&self) -> Vec<u8> {
        to_json_bytes(self)
    }

    /// Parses a manifest blob, refusing other format versions and styles a
    /// worker could not use.
    ///
    /// # Errors
    /// [`Error::MalformedMessage`] for another format version, [`Error::Json`]
    /// for a document that is not a manifest, [`Error::InvalidStyle`] for an
    /// unusable style or parameters.
    pub fn from_json(bytes: &[u8]) -> Result<RunManifest> {
        // The version first, so a manifest of another version says so rather
        // than failing on whichever field that version changed.
        if let Ok(probe) = serde_json::from_slice::<VersionProbe>(bytes) {
            if probe.version != FORMAT_VERSION {
                return Err(Error::MalformedMessage(format!(
                    "run manifest {} has format version {}, this build reads {FORMAT_VERSION}",
                    probe.run_id.as_deref().unwrap_or("?"),
                    probe.version
                )));
            }
        }
        let m: RunManifest =
            serde_json::from_slice(bytes).map_err(|e| Error::json("run manifest", e))?;
        for check in [m.style.validate(), m.params.validate()] {
            check.map_err(|e| match e {
                Error::InvalidStyle(why) => Error::InvalidStyle(format!("run {}: {why}", m.run_id)),
                other => other,
            })?;
        }
        Ok(m)
    }
}

/// Just the version (and run id, for the message) of a document of any format version.
#[derive(Deserialize)]
struct VersionProbe {
    version: u32,
    run_id: Option<String>,
}

/// One queue message: style frames `[start, end)` of a run.
///
/// Self-contained: a worker finds its inputs at `run_id.frame_key(n,
/// frame_format)` for each `n` in `frames` and needs nothing else to start.
/// Unknown fields are rejected, so a message from another tool or another
/// protocol version is recognised as foreign instead of half-understood.
/// Parse messages with [`JobSpec::from_message`], which also checks the
/// version, the frame range, the container names and the style.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// The run the job belongs to.
    pub run_id: RunId,
    /// The run's incarnation when the job was queued ([`RunManifest::incarnation`]).
    pub incarnation: String,
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
    /// The run's style (as in the manifest).
    pub style: StyleSpec,
    /// The styling parameters (as in the manifest).
    pub params: StyleParamsSpec,
    /// Where the outputs go when not beside the inputs (as in the manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_container: Option<String>,
    /// The container holding the run (manifest, input frames), set by the
    /// coordinator so one worker pool serves runs of any container; absent,
    /// the worker's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Deliveries that failed on storage trouble alone (unreachable, throttled), counted by the
    /// workers in the message itself: they cost time, not the job's delivery budget.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub storage_retries: u32,
    /// For a segments run: the pieces to decode and how to encode; absent for a frames run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<Box<JobSegment>>,
}

/// The share of a segments run that job `frames` needs: the pieces from its warm-up on.
fn job_segment(run: &SegmentsSpec, frames: FrameRange, frame_rate: FrameRate) -> JobSegment {
    let decode_from = frames.start.saturating_sub(run.warm_up);
    let needed: Vec<(u32, PieceSpec)> = (0u32..)
        .zip(run.pieces.iter().copied())
        .filter(|(_, p)| p.first_frame + p.frames > decode_from && p.first_frame < frames.end)
        .collect();
    JobSegment {
        first_piece: needed.first().map_or(0, |(i, _)| *i),
        pieces: needed.into_iter().map(|(_, p)| p).collect(),
        decode_from,
        steady: run.steady,
        encode: run.encode.clone(),
        frame_rate,
    }
}

/// A job's outputs container: its output container, else its run's container, else `None`.
fn outputs_container_of<'a>(
    output_container: &'a Option<String>,
    container: &'a Option<String>,
) -> Option<&'a str> {
    output_container.as_deref().or(container.as_deref())
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl JobSpec {
    /// The message body to enqueue.
    pub fn to_message(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("JobSpec always serialises"))
    }

    /// Parses a queue message body.
    ///
    /// # Errors
    /// - [`Error::MalformedMessage`]: not a job of this protocol version at
    ///   all (not JSON, unknown or missing fields, another version, an empty
    ///   frame range, a bad container name). Nothing in it can be trusted to
    ///   name a run: set the message aside.
    /// - [`Error::UnusableJob`]: a job of this protocol whose style or
    ///   parameters this build cannot use (another shape, or failing
    ///   [`StyleSpec::validate`] / [`StyleParamsSpec::validate`]). It carries
    ///   the job's run, index, frames and containers, so a worker can write
    ///   its failed marker ([`UnusableJob::failed_marker`]) and the
    ///   coordinator stops waiting for it.
    pub fn from_message(body: &str) -> Result<JobSpec> {
        // The version first, so a job of another version says so rather than failing on
        // whichever field that version changed.
        if let Ok(probe) = serde_json::from_str::<VersionProbe>(body) {
            if probe.version != FORMAT_VERSION {
                return Err(Error::MalformedMessage(format!(
                    "job format version {} (this build reads {FORMAT_VERSION})",
                    probe.version
                )));
            }
        }
        let raw: JobEnvelope =
            serde_json::from_str(body).map_err(|e| Error::MalformedMessage(e.to_string()))?;
        if raw.version != FORMAT_VERSION {
            return Err(Error::MalformedMessage(format!(
                "job format version {} (this build reads {FORMAT_VERSION})",
                raw.version
            )));
        }
        for container in [&raw.container, &raw.output_container]
            .into_iter()
            .flatten()
        {
            crate::store::validate_resource_name("container", container)
                .map_err(|e| Error::MalformedMessage(e.to_string()))?;
        }
        if raw.frames.is_empty() {
            return Err(Error::MalformedMessage(format!(
                "job {} of run {} has an empty frame range {}..{}",
                raw.job, raw.run_id, raw.frames.start, raw.frames.end
            )));
        }
        if raw.segment.as_ref().is_some_and(|s| !s.covers(raw.frames)) {
            return Err(Error::MalformedMessage(format!(
                "job {} of run {}: its pieces do not cover frames {}",
                raw.job, raw.run_id, raw.frames
            )));
        }
        let (style, params) = match parse_look(raw.style, raw.params) {
            Ok(look) => look,
            Err(reason) => {
                return Err(Error::UnusableJob(Box::new(UnusableJob {
                    run_id: raw.run_id,
                    incarnation: raw.incarnation,
                    job: raw.job,
                    frames: raw.frames,
                    output_container: raw.output_container,
                    container: raw.container,
                    reason,
                })))
            }
        };
        Ok(JobSpec {
            version: raw.version,
            run_id: raw.run_id,
            incarnation: raw.incarnation,
            job: raw.job,
            frames: raw.frames,
            frame_format: raw.frame_format,
            width: raw.width,
            height: raw.height,
            style,
            params,
            output_container: raw.output_container,
            container: raw.container,
            storage_retries: raw.storage_retries,
            segment: raw.segment,
        })
    }

    /// The deliveries that count against the job's budget: all but those lost to storage.
    pub fn counted_deliveries(&self, dequeue_count: u32) -> u32 {
        dequeue_count.saturating_sub(self.storage_retries).max(1)
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
        outputs_container_of(&self.output_container, &self.container)
    }

    /// This job's done marker.
    pub fn done_key(&self) -> String {
        self.run_id.done_key(self.job, &self.incarnation)
    }

    /// This job's failed marker.
    pub fn failed_key(&self) -> String {
        self.run_id.failed_key(self.job, &self.incarnation)
    }

    /// Whether this message is the job `manifest` (the run in storage now) would send: the same
    /// incarnation, frames and frame shape. A message of a cleaned run's earlier incarnation
    /// may name other frames or another format.
    pub fn matches(&self, manifest: &RunManifest) -> bool {
        manifest.job_spec(self.job).is_some_and(|expected| {
            expected.incarnation == self.incarnation
                && expected.frames == self.frames
                && expected.frame_format == self.frame_format
                && (expected.width, expected.height) == (self.width, self.height)
                && expected.segment == self.segment
        })
    }
}

/// A queue message as [`JobSpec::from_message`] first reads it: every field
/// of a job, the style and parameters still as plain JSON, so a job whose
/// look this build cannot read is still known as a job (and whose).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobEnvelope {
    version: u32,
    run_id: RunId,
    incarnation: String,
    job: u32,
    frames: FrameRange,
    frame_format: FrameFormat,
    width: u32,
    height: u32,
    style: serde_json::Value,
    params: serde_json::Value,
    #[serde(default)]
    output_container: Option<String>,
    #[serde(default)]
    container: Option<String>,
    #[serde(default)]
    storage_retries: u32,
    #[serde(default)]
    segment: Option<Box<JobSegment>>,
}

/// A job of this protocol that this build cannot style: the message is a
/// well-formed job (version, run, index, frames and containers all read) but
/// its style or parameters are not usable here. Carried by
/// [`Error::UnusableJob`].
///
/// Unlike a foreign message, it names its run: the worker writes its failed
/// marker ([`UnusableJob::failed_marker`] at [`UnusableJob::failed_key`], in
/// [`UnusableJob::outputs_container`]) so the coordinator reports its frames
/// instead of waiting, then sets the message aside.
#[derive(Clone, Debug, PartialEq)]
pub struct UnusableJob {
    /// The run the job belongs to.
    pub run_id: RunId,
    /// As in [`JobSpec::incarnation`].
    pub incarnation: String,
    /// The job's index.
    pub job: u32,
    /// The frames it covers.
    pub frames: FrameRange,
    /// As in [`JobSpec::output_container`].
    pub output_container: Option<String>,
    /// As in [`JobSpec::container`].
    pub container: Option<String>,
    /// What is wrong with the style or parameters.
    pub reason: String,
}

impl UnusableJob {
    /// Where its failed marker goes, as [`JobSpec::outputs_container`].
    pub fn outputs_container(&self) -> Option<&str> {
        outputs_container_of(&self.output_container, &self.container)
    }

    /// Its failed marker's blob name.
    pub fn failed_key(&self) -> String {
        self.run_id.failed_key(self.job, &self.incarnation)
    }

    /// Its failed marker, with [`UnusableJob::reason`] as the reason.
    pub fn failed_marker(&self, dequeue_count: u32, worker: impl Into<String>) -> FailedMarker {
        FailedMarker {
            version: FORMAT_VERSION,
            job: self.job,
            frames: self.frames,
            reason: crate::redact_secrets(&self.reason),
            dequeue_count,
            worker: worker.into(),
            failed: now(),
        }
    }
}

impl fmt::Display for UnusableJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "run {} job {} ({}): {}",
            self.run_id, self.job, self.frames, self.reason
        )
    }
}

/// `runs/<run>/done/<job:05>.<incarnation>.json`: written by the worker after every styled
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

/// `runs/<run>/failed/<job:05>.<incarnation>.json`: the job was given up on after too many
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

/// `runs/<run>/queued/<job:05>.json` ([`RunId::queued_key`]): written by the
/// coordinator right after it sends the job's message, so a resumed
/// coordinator does not queue the job twice. Only its presence counts
/// ([`RunProgress::load`](crate::RunProgress::load) reads the names alone);
/// the content is for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMarker {
    /// The job's index.
    pub job: u32,
    /// The queue the message went to.
    pub queue: String,
}

impl QueuedMarker {
    /// A marker for job `job` sent to `queue`.
    pub fn new(job: u32, queue: impl Into<String>) -> QueuedMarker {
        QueuedMarker {
            job,
            queue: queue.into(),
        }
    }

    /// JSON bytes for the blob: compact, one line without a newline
    /// (`{"job":7,"queue":"stylize-jobs"}`), as the coordinator has always written it.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| unreachable!("QueuedMarker always serialises"))
    }

    /// Parses a queued-marker blob.
    pub fn from_json(bytes: &[u8]) -> Result<QueuedMarker> {
        serde_json::from_slice(bytes).map_err(|e| Error::json("queued marker", e))
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

    fn presets_style() -> StyleSpec {
        let mut values = vec![0f32; PRESET_COUNT];
        values[3] = 0.5;
        values[5] = 0.5;
        StyleSpec {
            kind: StyleKind::Presets,
            label: "mosaic + candy".into(),
            values,
        }
    }

    fn params(strength: f32) -> StyleParamsSpec {
        StyleParamsSpec {
            max_size: None,
            preserve_colors: false,
            strength,
            optimize: None,
        }
    }

    fn manifest(frames: u32, per_job: u32) -> RunManifest {
        RunManifest::new(
            "orangutan.mp4",
            sha256_hex(b"video bytes"),
            frames,
            (720, 720),
            FrameRate { num: 30, den: 1 },
            FrameFormat::Png,
            per_job,
            "presets:3=0.500000,5=0.500000",
            presets_style(),
            params(1.0),
        )
        .unwrap()
    }

    #[test]
    fn run_id_is_stable_and_depends_on_every_component() {
        let p = params(1.0);
        let a = RunId::derive("abc", "style", &p);
        assert_eq!(a, RunId::derive("abc", "style", &p.clone()));
        assert_eq!(a.as_str().len(), RUN_ID_HEX_LEN);
        assert_ne!(a, RunId::derive("abd", "style", &p));
        assert_ne!(a, RunId::derive("abc", "style2", &p));
        assert_ne!(a, RunId::derive("abc", "style", &params(0.5)));
        assert_ne!(
            a,
            RunId::derive(
                "abc",
                "style",
                &StyleParamsSpec {
                    preserve_colors: true,
                    ..p.clone()
                }
            )
        );
        assert_ne!(
            a,
            RunId::derive(
                "abc",
                "style",
                &StyleParamsSpec {
                    max_size: Some(360),
                    ..p.clone()
                }
            )
        );
        let optimised = StyleParamsSpec {
            optimize: Some(OptimizeSpec {
                iterations: 60,
                content_weight: 0.2,
            }),
            ..p.clone()
        };
        assert_ne!(a, RunId::derive("abc", "style", &optimised));
        // The fast method's parameters are written as before, so stored runs keep their ids.
        assert!(!serde_json::to_string(&p).unwrap().contains("optimize"));
        let read: StyleParamsSpec =
            serde_json::from_str(&serde_json::to_string(&optimised).unwrap()).unwrap();
        assert_eq!(read, optimised);
        let none = StyleParamsSpec {
            optimize: Some(OptimizeSpec {
                iterations: 0,
                content_weight: 0.2,
            }),
            ..p.clone()
        };
        assert!(none.validate().is_err() && optimised.validate().is_ok());
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
        assert_eq!(run.style_picture_key(), "runs/0123456789abcdef/style.png");
        assert_eq!(
            run.frame_key(7, FrameFormat::Png),
            "runs/0123456789abcdef/frames/000007.png"
        );
        assert_eq!(
            run.styled_key(822, FrameFormat::Jpeg),
            "runs/0123456789abcdef/styled/000822.jpg"
        );
        assert_eq!(
            run.done_key(3, "a1b2c3d4e5f6"),
            "runs/0123456789abcdef/done/00003.a1b2c3d4e5f6.json"
        );
        assert_eq!(
            run.failed_key(12, "a1b2c3d4e5f6"),
            "runs/0123456789abcdef/failed/00012.a1b2c3d4e5f6.json"
        );
        assert_eq!(run.queued_key(4), "runs/0123456789abcdef/queued/00004.json");
        assert_eq!(job_index_of(&run.queued_key(4)), Some(4));
        assert_eq!(
            frame_number_of(&run.styled_key(822, FrameFormat::Webp)),
            Some(822)
        );
        assert_eq!(marker_job_of(&run.done_key(3, "a1b2"), "a1b2"), Some(3));
        assert_eq!(marker_job_of(&run.failed_key(3, "a1b2"), "a1b2"), Some(3));
        // Another incarnation's marker, or a version-1 marker without one, does not count.
        assert_eq!(marker_job_of(&run.done_key(3, "ffff"), "a1b2"), None);
        assert_eq!(marker_job_of("runs/x/done/00003.json", "a1b2"), None);
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
    fn a_segments_job_carries_the_pieces_of_its_warm_up_and_range() {
        // 823 frames in pieces of 250, 250, 250, 73; jobs of 50 warming up over 30 frames.
        let pieces = [0, 250, 500, 750]
            .map(|first| PieceSpec {
                first_frame: first,
                frames: if first == 750 { 73 } else { 250 },
                hidden: 0,
            })
            .to_vec();
        let encode = EncodeSpec {
            codec: "hevc".into(),
            crf: 18.0,
            preset: "fast".into(),
            pixel_format: "yuv420p".into(),
        };
        let spec = SegmentsSpec {
            pieces: pieces.clone(),
            encode,
            steady: 0.95,
            warm_up: 30,
        };
        let m = manifest(823, 50).with_segments(spec.clone()).unwrap();
        assert_eq!(RunManifest::from_json(&m.to_json()).unwrap(), m);
        let job = |i: u32| m.job_spec(i).unwrap().segment.unwrap();
        // Job 0: no warm-up before frame 0, one piece.
        assert_eq!(
            (job(0).decode_from, job(0).first_piece, job(0).pieces.len()),
            (0, 0, 1)
        );
        // Job 5 (250..300) warms up from 220, in piece 0: two pieces.
        assert_eq!(
            (job(5).decode_from, job(5).first_piece, job(5).pieces.len()),
            (220, 0, 2)
        );
        // Job 16 (800..823) lies in the last piece only.
        assert_eq!(
            (
                job(16).decode_from,
                job(16).first_piece,
                job(16).pieces.len()
            ),
            (770, 3, 1)
        );
        for j in m.jobs() {
            let back = JobSpec::from_message(&j.to_message()).unwrap();
            assert!(back.matches(&m));
            assert_eq!(back, j);
        }
        // Pieces that leave a gap, or do not cover the run, are refused.
        let mut gap = spec.clone();
        gap.pieces[1].first_frame = 251;
        assert!(manifest(823, 50).with_segments(gap).is_err());
        let mut short = spec;
        short.pieces.pop();
        assert!(manifest(823, 50).with_segments(short).is_err());
        // A message whose pieces do not cover its frames is not a job.
        let mut bad = m.job_spec(5).unwrap();
        bad.segment.as_mut().unwrap().pieces.pop();
        let e = JobSpec::from_message(&bad.to_message()).unwrap_err();
        assert!(e.to_string().contains("do not cover"), "{e}");
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
        v["version"] = json!(1);
        assert!(matches!(
            JobSpec::from_message(&v.to_string()),
            Err(Error::MalformedMessage(_))
        ));

        // A format-1 job (before incarnations) names its version rather than a missing field.
        let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
        v["version"] = json!(1);
        v.as_object_mut().unwrap().remove("incarnation");
        assert!(matches!(
            JobSpec::from_message(&v.to_string()),
            Err(Error::MalformedMessage(why)) if why.contains("format version 1")
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

    // Documents of format version 2, pinned byte for byte: a change to any of them is a change of
    // the protocol (and of FORMAT_VERSION), never an accident. Format 1 (before incarnations)
    // is refused by its version.

    /// `RunManifest::to_json`, output container set, `created` and `incarnation` fixed.
    const MANIFEST_V2: &str = r#"{
  "version": 2,
  "run_id": "39fbc78604f25c9a",
  "incarnation": "a1b2c3d4e5f6",
  "input_name": "orangutan.mp4",
  "input_sha256": "96b050b919f3fca2fc8b6923537136a197ad13c583beb1438d1a12ccbc999c42",
  "frame_count": 823,
  "width": 720,
  "height": 480,
  "frame_rate": {
    "num": 30000,
    "den": 1001
  },
  "frame_format": "png",
  "frames_per_job": 50,
  "job_count": 17,
  "style": {
    "kind": "presets",
    "label": "mosaic + candy",
    "values": [
      0.0,
      0.0,
      0.0,
      0.5,
      0.0,
      0.5,
      0.0,
      0.3333333432674408,
      0.0,
      0.0,
      0.0,
      0.0,
      0.0,
      0.0,
      0.0,
      0.0,
      0.0,
      0.0,
      0.0,
      0.0,
      0.0,
      0.0,
      0.0,
      0.0,
      0.0,
      0.0
    ]
  },
  "params": {
    "max_size": 360,
    "preserve_colors": true,
    "strength": 0.699999988079071
  },
  "created": "2025-03-01T12:34:56Z",
  "output_container": "styled-out"
}
"#;

    /// `JobSpec::to_message`: job 16 of `MANIFEST_V2`, `container` set.
    const JOB_PRESETS_V2: &str = r#"{"version":2,"run_id":"39fbc78604f25c9a","incarnation":"a1b2c3d4e5f6","job":16,"frames":{"start":800,"end":823},"frame_format":"png","width":720,"height":480,"style":{"kind":"presets","label":"mosaic + candy","values":[0.0,0.0,0.0,0.5,0.0,0.5,0.0,0.3333333432674408,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0]},"params":{"max_size":360,"preserve_colors":true,"strength":0.699999988079071},"output_container":"styled-out","container":"stylize"}"#;

    /// `JobSpec::to_message`: an image style, strength 1, no containers.
    const JOB_IMAGE_V2: &str = r#"{"version":2,"run_id":"2cf8bf1ba67e7a18","incarnation":"0f0f0f0f0f0f","job":0,"frames":{"start":0,"end":8},"frame_format":"jpeg","width":64,"height":48,"style":{"kind":"image","label":"starry.jpg","values":[0.10000000149011612,-1.25,0.000029999999242136255,12345.677734375,0.0]},"params":{"max_size":null,"preserve_colors":false,"strength":1.0}}"#;

    /// The old coordinator's `json!({ "job": job, "queue": queue_name }).to_string()`.
    const QUEUED_V1: &str = r#"{"job":7,"queue":"stylize-jobs"}"#;

    fn old_params() -> StyleParamsSpec {
        StyleParamsSpec {
            max_size: Some(360),
            preserve_colors: true,
            strength: 0.7,
            optimize: None,
        }
    }

    fn old_presets_style() -> StyleSpec {
        let mut style = presets_style();
        style.values[7] = 1.0 / 3.0;
        style
    }

    #[test]
    fn run_ids_are_pinned() {
        // Pinned for format 2 (the version is part of the hash); the params are hashed as the
        // format-1 code hashed a `serde_json::Value` of them.
        let sha = sha256_hex(b"video bytes");
        assert_eq!(
            RunId::derive(&sha, "presets:3=0.500000,5=0.500000", &old_params()).as_str(),
            "39fbc78604f25c9a"
        );
        let image_params = StyleParamsSpec {
            max_size: None,
            preserve_colors: false,
            strength: 1.0,
            optimize: None,
        };
        assert_eq!(
            RunId::derive(&sha, "image:512x384:abcdef", &image_params).as_str(),
            "06a6f3068d495ae4"
        );
        assert_eq!(
            canonical_json(&serde_json::to_value(old_params()).unwrap()),
            r#"{"max_size":360,"preserve_colors":true,"strength":0.699999988079071}"#
        );
    }

    #[test]
    fn format_2_documents_parse_and_are_written_byte_for_byte() {
        let m = RunManifest::from_json(MANIFEST_V2.as_bytes()).unwrap();
        assert_eq!(m.run_id.as_str(), "39fbc78604f25c9a");
        assert_eq!(m.style, old_presets_style());
        assert_eq!(m.params, old_params());
        assert_eq!(m.output_container.as_deref(), Some("styled-out"));
        assert_eq!(String::from_utf8(m.to_json()).unwrap(), MANIFEST_V2);

        // A new manifest from the same inputs is the same document.
        let mut fresh = RunManifest::new(
            "orangutan.mp4",
            sha256_hex(b"video bytes"),
            823,
            (720, 480),
            FrameRate {
                num: 30000,
                den: 1001,
            },
            FrameFormat::Png,
            50,
            "presets:3=0.500000,5=0.500000",
            old_presets_style(),
            old_params(),
        )
        .unwrap()
        .with_output_container("styled-out")
        .unwrap();
        fresh.created = m.created;
        assert_ne!(
            fresh.incarnation, m.incarnation,
            "every manifest gets its own"
        );
        fresh.incarnation = m.incarnation.clone();
        assert_eq!(fresh, m);
        assert_eq!(String::from_utf8(fresh.to_json()).unwrap(), MANIFEST_V2);

        let job = JobSpec::from_message(JOB_PRESETS_V2).unwrap();
        let mut expected = m.job_spec(16).unwrap();
        expected.container = Some("stylize".into());
        assert_eq!(job, expected);
        assert_eq!(job.to_message(), JOB_PRESETS_V2);

        let job = JobSpec::from_message(JOB_IMAGE_V2).unwrap();
        assert_eq!(job.run_id.as_str(), "2cf8bf1ba67e7a18");
        assert_eq!(job.style.kind, StyleKind::Image);
        assert_eq!(job.style.values, [0.1, -1.25, 3.0e-5, 12345.678, 0.0]);
        assert_eq!(job.params.max_size, None);
        assert_eq!(job.outputs_container(), None);
        assert_eq!(job.to_message(), JOB_IMAGE_V2);

        let queued = QueuedMarker::from_json(QUEUED_V1.as_bytes()).unwrap();
        assert_eq!(queued, QueuedMarker::new(7, "stylize-jobs"));
        assert_eq!(queued.to_json(), QUEUED_V1.as_bytes());
    }

    #[test]
    fn styles_and_params_a_worker_cannot_use_are_refused() {
        presets_style().validate().unwrap();
        let image = StyleSpec {
            kind: StyleKind::Image,
            label: "starry.jpg".into(),
            values: vec![0.25; 100],
        };
        image.validate().unwrap();
        let bad_styles = [
            StyleSpec {
                values: vec![0.5; 3],
                ..presets_style()
            },
            StyleSpec {
                values: vec![],
                ..image.clone()
            },
            StyleSpec {
                values: vec![0.0, f32::NAN],
                ..image.clone()
            },
            StyleSpec {
                values: vec![f32::INFINITY; PRESET_COUNT],
                ..presets_style()
            },
        ];
        for bad in bad_styles {
            assert!(
                matches!(bad.validate(), Err(Error::InvalidStyle(_))),
                "{bad:?} accepted"
            );
        }
        for strength in [0.0, 0.5, 1.0] {
            params(strength).validate().unwrap();
        }
        for strength in [-0.1, 1.5, f32::NAN] {
            assert!(matches!(
                params(strength).validate(),
                Err(Error::InvalidStyle(_))
            ));
        }

        let new = |style: StyleSpec, params: StyleParamsSpec| {
            RunManifest::new(
                "a.mp4",
                "00",
                10,
                (8, 8),
                FrameRate { num: 1, den: 1 },
                FrameFormat::Png,
                5,
                "x",
                style,
                params,
            )
        };
        assert!(matches!(
            new(
                StyleSpec {
                    values: vec![1.0],
                    ..presets_style()
                },
                params(1.0)
            ),
            Err(Error::InvalidStyle(_))
        ));
        assert!(matches!(
            new(presets_style(), params(2.0)),
            Err(Error::InvalidStyle(_))
        ));

        // A stored manifest is checked as it is read.
        let mut v: serde_json::Value = serde_json::from_str(MANIFEST_V2).unwrap();
        v["style"]["values"] = json!([0.5, 0.5]);
        let err = RunManifest::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidStyle(why) if why.contains("39fbc78604f25c9a")),
            "{err}"
        );
        let mut v: serde_json::Value = serde_json::from_str(MANIFEST_V2).unwrap();
        v["style"]["kind"] = json!("video");
        assert!(matches!(
            RunManifest::from_json(v.to_string().as_bytes()),
            Err(Error::Json { .. })
        ));
        // Another version is reported as such, whatever else it changed.
        let mut v: serde_json::Value = serde_json::from_str(MANIFEST_V2).unwrap();
        v["version"] = json!(1);
        v["style"] = json!("mosaic");
        let err = RunManifest::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(
            matches!(&err, Error::MalformedMessage(why) if why.contains("format version 1")),
            "{err}"
        );
    }

    #[test]
    fn a_job_whose_style_is_unusable_still_names_its_run() {
        let unusable = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v: serde_json::Value = serde_json::from_str(JOB_PRESETS_V2).unwrap();
            edit(&mut v);
            match JobSpec::from_message(&v.to_string()) {
                Err(Error::UnusableJob(job)) => *job,
                other => panic!("{v}: {other:?}"),
            }
        };
        let edits: [&dyn Fn(&mut serde_json::Value); 8] = [
            &|v| v["style"]["values"] = json!([0.5, 0.5, 0.5]),
            &|v| v["style"]["values"] = json!([]),
            &|v| v["style"]["kind"] = json!("video"),
            &|v| v["style"]["extra"] = json!(1),
            &|v| v["style"] = json!(null),
            &|v| v["params"]["strength"] = json!(1.5),
            &|v| v["params"] = json!({"strength": 1.0}),
            &|v| v["params"]["sharpness"] = json!(2),
        ];
        for edit in edits {
            let job = unusable(edit);
            assert_eq!(job.run_id.as_str(), "39fbc78604f25c9a");
            assert_eq!(job.job, 16);
            assert_eq!(
                job.frames,
                FrameRange {
                    start: 800,
                    end: 823
                }
            );
            assert_eq!(job.outputs_container(), Some("styled-out"));
            assert_eq!(job.container.as_deref(), Some("stylize"));
            assert_eq!(
                job.failed_key(),
                "runs/39fbc78604f25c9a/failed/00016.a1b2c3d4e5f6.json"
            );
            let marker = job.failed_marker(1, "worker 0");
            assert_eq!((marker.job, marker.frames), (job.job, job.frames));
            assert_eq!(marker.reason, job.reason);
            assert!(!Error::UnusableJob(Box::new(job.clone())).is_retryable());
            assert!(
                FailedMarker::from_json(&marker.to_json()).unwrap() == marker,
                "marker round trips"
            );
        }
        assert!(unusable(&|v| v["style"]["values"] = json!([0.5]))
            .reason
            .contains("26"));

        // What is not a job of this version stays malformed, style or not.
        let malformed: [&dyn Fn(&mut serde_json::Value); 4] = [
            &|v| {
                v["version"] = json!(1);
                v["style"] = json!("mosaic");
            },
            &|v| {
                v["extra"] = json!(1);
                v["style"] = json!(null);
            },
            &|v| {
                v["frames"] = json!({"start": 3, "end": 3});
                v["style"] = json!(null);
            },
            &|v| {
                v.as_object_mut().unwrap().remove("params");
            },
        ];
        for edit in malformed {
            let mut v: serde_json::Value = serde_json::from_str(JOB_PRESETS_V2).unwrap();
            edit(&mut v);
            assert!(
                matches!(
                    JobSpec::from_message(&v.to_string()),
                    Err(Error::MalformedMessage(_))
                ),
                "{v}"
            );
        }
    }

    #[test]
    fn queued_marker_round_trips() {
        let m = QueuedMarker::new(12, "jobs-eu");
        assert_eq!(m.to_json(), br#"{"job":12,"queue":"jobs-eu"}"#);
        assert_eq!(QueuedMarker::from_json(&m.to_json()).unwrap(), m);
        assert!(matches!(
            QueuedMarker::from_json(b"{}"),
            Err(Error::Json { .. })
        ));
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
