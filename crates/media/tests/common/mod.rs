//! Test helpers: clips generated with the ffmpeg CLI, the identity round trip, and ffprobe queries.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use stylize_media::{
    probe, EncodeOptions, FrameReader, PixelFormatChoice, VideoInfo, VideoWriter, WriteSummary,
};

/// Runs the ffmpeg CLI quietly, overwriting outputs; panics with its stderr on failure.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg CLI on PATH");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs ffprobe and returns stdout.
pub fn ffprobe(args: &[&str], path: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(path)
        .output()
        .expect("ffprobe on PATH");
    assert!(
        out.status.success(),
        "ffprobe {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One `key=value` of the first video stream.
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

/// Video packets in the file (one per frame for H.264).
pub fn video_packets(path: &Path) -> u64 {
    ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets",
            "-of",
            "default=nw=1:nk=1",
        ],
        path,
    )
    .trim()
    .parse()
    .unwrap()
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

/// The rotation ffprobe reports from the display matrix, 0 when there is none.
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

/// MD5 of audio stream `n`'s packets, copied without re-encoding.
pub fn audio_md5(path: &Path, n: usize) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-map", &format!("0:a:{n}"), "-c", "copy", "-f", "md5", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

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

pub fn opts(pix: PixelFormatChoice) -> EncodeOptions {
    EncodeOptions {
        crf: 23.0,
        preset: "ultrafast".into(),
        pixel_format: pix,
    }
}

/// probe → FrameReader → VideoWriter, writing every decoded frame back unchanged.
pub fn identity(
    input: &Path,
    output: &Path,
    opts: &EncodeOptions,
) -> (VideoInfo, u64, WriteSummary) {
    let info = probe(input).unwrap();
    let tmp = output.with_extension("partial");
    let mut writer = VideoWriter::create(&tmp, output, &info, opts).unwrap();
    let mut decoded = 0;
    for frame in FrameReader::open(&info).unwrap() {
        writer.write(&frame.unwrap()).unwrap();
        decoded += 1;
    }
    let summary = writer.finish().unwrap();
    std::fs::rename(&tmp, output).unwrap();
    (info, decoded, summary)
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn p(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// Parses ffprobe's "num/den".
pub fn ratio(s: &str) -> (i32, i32) {
    let (a, b) = s.split_once('/').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
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

/// Frames ffprobe decodes from the first video stream (what a player shows).
pub fn decoded_frame_count(path: &Path) -> u64 {
    ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "default=nw=1:nk=1",
        ],
        path,
    )
    .trim()
    .parse()
    .unwrap()
}

/// Runs the ffmpeg CLI and returns what it wrote to stdout.
pub fn ffmpeg_stdout(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(args)
        .output()
        .expect("ffmpeg CLI on PATH");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
