//! What ffprobe says about a file: the whole JSON probe, or single fields (rotation, durations,
//! packet and frame counts, per-stream audio hashes).

use std::path::Path;

use serde_json::Value;

use crate::cli::{ffmpeg_stdout, ffprobe};

/// ffprobe's JSON for every stream and the format, with frames counted (`nb_read_frames`).
pub fn probe_json(path: &Path) -> Value {
    let json = ffprobe(
        &[
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
            "-count_frames",
        ],
        path,
    );
    serde_json::from_str(&json).expect("ffprobe json")
}

/// The first video stream of a [`probe_json`].
pub fn video_stream(probe: &Value) -> &Value {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("video stream")
}

/// The audio streams of a [`probe_json`], in file order.
pub fn audio_streams(probe: &Value) -> Vec<&Value> {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["codec_type"] == "audio")
        .collect()
}

/// A JSON number or numeric string (ffprobe writes most numbers as strings); NaN otherwise.
pub fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(f64::NAN),
        Value::Number(n) => n.as_f64().unwrap(),
        _ => f64::NAN,
    }
}

/// One field of the first video stream, e.g. `color_space`.
pub fn video_field(path: &Path, key: &str) -> String {
    ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            &format!("stream={key}"),
            "-of",
            "default=nw=1:nk=1",
        ],
        path,
    )
    .trim()
    .to_string()
}

/// The display rotation in degrees from the first video stream's display matrix, 0 when none.
pub fn rotation(path: &Path) -> i32 {
    let out = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream_side_data=rotation",
            "-of",
            "default=nw=1:nk=1",
        ],
        path,
    );
    out.lines().find_map(|l| l.trim().parse().ok()).unwrap_or(0)
}

/// Video packets in the file (one per frame for H.264).
pub fn video_packets(path: &Path) -> u64 {
    first_video_count(path, "-count_packets", "stream=nb_read_packets")
}

/// Frames ffprobe decodes from the first video stream (what a player shows).
pub fn decoded_frame_count(path: &Path) -> u64 {
    first_video_count(path, "-count_frames", "stream=nb_read_frames")
}

/// A count ffprobe makes of the first video stream by reading it through (`how`), as `entry`.
fn first_video_count(path: &Path, how: &str, entry: &str) -> u64 {
    let args = ["-select_streams", "v:0", how, "-show_entries", entry];
    ffprobe(&[&args[..], &["-of", "default=nw=1:nk=1"]].concat(), path)
        .trim()
        .parse()
        .unwrap()
}

/// Every video frame's presentation time as a player reads it (ffprobe's text, in order).
pub fn frame_times(path: &Path) -> Vec<String> {
    let args = [
        "-select_streams",
        "v:0",
        "-show_entries",
        "frame=best_effort_timestamp_time",
        "-of",
        "csv=p=0",
    ];
    ffprobe(&args, path)
        .lines()
        // A frame with side data (x264's SEI at each encode's start) prints more fields.
        .filter_map(|line| line.split(',').next().filter(|t| !t.is_empty()))
        .map(str::to_owned)
        .collect()
}

/// Seconds from the first video frame's start to the last one's end, from the packets.
pub fn video_span(path: &Path) -> f64 {
    let csv = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,duration_time",
            "-of",
            "csv=p=0",
        ],
        path,
    );
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for line in csv.lines().filter(|l| !l.trim().is_empty()) {
        let mut it = line.split(',');
        let pts: f64 = it.next().unwrap().parse().unwrap();
        let dur: f64 = it.next().and_then(|d| d.parse().ok()).unwrap_or(0.0);
        lo = lo.min(pts);
        hi = hi.max(pts + dur);
    }
    hi - lo
}

/// `format=duration` in seconds.
pub fn format_duration(path: &Path) -> f64 {
    ffprobe(
        &[
            "-show_entries",
            "format=duration",
            "-of",
            "default=nw=1:nk=1",
        ],
        path,
    )
    .trim()
    .parse()
    .unwrap()
}

/// `format=start_time` in seconds (0 when ffprobe reports none).
pub fn format_start(path: &Path) -> f64 {
    ffprobe(
        &[
            "-show_entries",
            "format=start_time",
            "-of",
            "default=nw=1:nk=1",
        ],
        path,
    )
    .trim()
    .parse()
    .unwrap_or(0.0)
}

/// When the first video frame is shown, in seconds, as ffprobe decodes it
/// (edit lists applied, frames they hide dropped).
pub fn first_frame_time(path: &Path) -> f64 {
    ffprobe(
        &[
            "-select_streams",
            "v:0",
            // A time span, not a packet count: the first packets may all be audio.
            "-read_intervals",
            "%+2",
            "-show_entries",
            "frame=best_effort_timestamp_time",
            "-of",
            "default=nw=1:nk=1",
        ],
        path,
    )
    .lines()
    .next()
    .and_then(|l| l.trim().parse().ok())
    .expect("a video frame in the first 2 s")
}

/// Audio streams in the file.
pub fn audio_stream_count(path: &Path) -> usize {
    ffprobe(
        &[
            "-select_streams",
            "a",
            "-show_entries",
            "stream=index",
            "-of",
            "csv=p=0",
        ],
        path,
    )
    .lines()
    .filter(|l| !l.trim().is_empty())
    .count()
}

/// MD5 of audio stream `n`'s packets, copied without decoding (equal hashes: the audio was copied,
/// not re-encoded).
pub fn audio_md5(path: &Path, n: usize) -> String {
    let md5 = ffmpeg_stdout(&[
        "-i",
        path.to_str().expect("a UTF-8 path"),
        "-map",
        &format!("0:a:{n}"),
        "-c",
        "copy",
        "-f",
        "md5",
        "-",
    ]);
    String::from_utf8(md5).unwrap().trim().to_string()
}

/// Audio stream `n`'s packets in file order: pts in seconds and the MD5 of the payload.
pub fn audio_packets(path: &Path, n: usize) -> Vec<(f64, String)> {
    let out = ffprobe(
        &[
            "-select_streams",
            &format!("a:{n}"),
            "-show_data_hash",
            "md5",
            "-show_entries",
            "packet=pts_time,data_hash",
            "-of",
            "default=nw=1",
        ],
        path,
    );
    let mut packets = Vec::new();
    let mut pts = None;
    for line in out.lines() {
        if let Some(v) = line.strip_prefix("pts_time=") {
            pts = Some(v.parse().unwrap_or(f64::NAN));
        } else if let Some(v) = line.strip_prefix("data_hash=") {
            packets.push((
                pts.take().expect("pts_time before data_hash"),
                v.to_string(),
            ));
        }
    }
    packets
}
