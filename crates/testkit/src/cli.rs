//! Running the ffmpeg and ffprobe CLIs quietly, and generating test clips with them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn checked(what: &str, args: &[&str], out: std::io::Result<Output>) -> Output {
    let out = out.unwrap_or_else(|e| panic!("{what} CLI on PATH: {e}"));
    assert!(
        out.status.success(),
        "{what} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs the ffmpeg CLI quietly, overwriting outputs (the output path is the last of `args`);
/// panics with its stderr on failure.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .output();
    checked("ffmpeg", args, out);
}

/// Runs the ffmpeg CLI and returns what it wrote to stdout (`-` as the output).
pub fn ffmpeg_stdout(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(args)
        .output();
    checked("ffmpeg", args, out).stdout
}

/// Runs ffprobe with `args` on `path` and returns its stdout.
pub fn ffprobe(args: &[&str], path: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(path)
        .output();
    let what = format!("ffprobe on {}", path.display());
    String::from_utf8(checked(&what, args, out).stdout).expect("ffprobe prints UTF-8")
}

/// `source` cut at `seconds` by stream copy into `dir/name` (`ffmpeg -ss S -i SOURCE -c copy`):
/// stream copy cannot cut between keyframes, so the file keeps everything from the keyframe before
/// the cut and an MP4 edit list hides what lies before it.
pub fn copy_cut(source: &Path, seconds: &str, dir: &Path, name: &str) -> PathBuf {
    let cut = dir.join(name);
    let (source, out) = (
        source.to_str().expect("a UTF-8 path"),
        cut.to_str().expect("a UTF-8 path"),
    );
    ffmpeg(&["-ss", seconds, "-i", source, "-c", "copy", out]);
    cut
}

/// A short HDR clip at `path`: a 64×48 test pattern tagged BT.2020 with the transfer `trc`
/// (`smpte2084` for PQ, `arib-std-b67` for HLG), as a camera's HDR file is.
pub fn hdr_clip(path: &Path, trc: &str) {
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25:duration=0.4",
        "-pix_fmt",
        "yuv420p",
        "-colorspace",
        "bt2020nc",
        "-color_primaries",
        "bt2020",
        "-color_trc",
        trc,
        "-c:v",
        "libx264",
        path.to_str().expect("a UTF-8 path"),
    ]);
}

/// A short H.264 test pattern (`testsrc2`, textured so styling and edges are measurable) of
/// `frames` frames at `size` and `rate`, with one AAC track per lavfi source in `audio`
/// (cut to the picture), then `extra` output options; written to `dir/name`.
pub fn scene_clip(
    dir: &Path,
    name: &str,
    size: &str,
    rate: &str,
    frames: u32,
    audio: &[&str],
    extra: &[&str],
) -> PathBuf {
    let path = dir.join(name);
    let video = format!("testsrc2=size={size}:rate={rate}");
    let mut args: Vec<String> = vec!["-f".into(), "lavfi".into(), "-i".into(), video];
    for a in audio {
        args.extend(["-f".into(), "lavfi".into(), "-i".into(), a.to_string()]);
    }
    args.extend(["-map".into(), "0:v".into()]);
    for i in 0..audio.len() {
        args.extend(["-map".into(), format!("{}:a", i + 1)]);
    }
    args.extend(
        [
            "-frames:v",
            &frames.to_string(),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ]
        .map(String::from),
    );
    if !audio.is_empty() {
        args.extend(["-c:a", "aac", "-shortest"].map(String::from));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(path.to_str().expect("a UTF-8 path").to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ffmpeg(&refs);
    path
}
