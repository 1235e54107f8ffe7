//! Shared helpers for the binary's integration tests: clip generation with the ffmpeg CLI, ffprobe
//! queries, frame extraction, and picture comparisons.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub mod showcase;

pub fn stylize() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stylize"))
}

/// Runs stylize with `args`; returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = stylize().args(args).output().expect("run stylize");
    decode(out)
}

pub fn decode(out: Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Generates a clip with the ffmpeg CLI: `args` go between `ffmpeg -y` and the output path.
pub fn ffmpeg_clip(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y"])
        .args(args)
        .arg(&path)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// A short scene with texture (so styling and edges are measurable) and optional audio inputs.
pub fn scene_clip(
    dir: &Path,
    name: &str,
    size: &str,
    rate: &str,
    frames: u32,
    audio: &[&str],
    extra: &[&str],
) -> PathBuf {
    let video = format!("testsrc2=size={size}:rate={rate}");
    let mut args: Vec<String> = vec!["-f".into(), "lavfi".into(), "-i".into(), video];
    for a in audio {
        args.extend(["-f".into(), "lavfi".into(), "-i".into(), a.to_string()]);
    }
    args.extend(["-map".into(), "0:v".into()]);
    for i in 0..audio.len() {
        args.extend(["-map".into(), format!("{}:a", i + 1)]);
    }
    args.extend([
        "-frames:v".into(),
        frames.to_string(),
        "-c:v".into(),
        "libx264".into(),
        "-preset".into(),
        "ultrafast".into(),
    ]);
    args.extend(["-pix_fmt".into(), "yuv420p".into()]);
    if !audio.is_empty() {
        args.extend(["-c:a".into(), "aac".into(), "-shortest".into()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ffmpeg_clip(dir, name, &refs)
}

pub fn ffprobe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
            "-count_frames",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe json")
}

pub fn video_stream(probe: &Value) -> &Value {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("video stream")
}

pub fn audio_streams(probe: &Value) -> Vec<&Value> {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["codec_type"] == "audio")
        .collect()
}

pub fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(f64::NAN),
        Value::Number(n) => n.as_f64().unwrap(),
        _ => f64::NAN,
    }
}

/// The display rotation in degrees from a stream's display-matrix side data (0 when none).
pub fn rotation(stream: &Value) -> i64 {
    stream["side_data_list"]
        .as_array()
        .and_then(|l| {
            l.iter()
                .find_map(|sd| sd.get("rotation").and_then(Value::as_i64))
        })
        .unwrap_or(0)
}

/// md5 of one audio stream's packets, copied without decoding.
pub fn audio_md5(path: &Path, index: usize) -> String {
    let out = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-i"])
        .arg(path)
        .args([
            "-map",
            &format!("0:a:{index}"),
            "-c",
            "copy",
            "-f",
            "md5",
            "-",
        ])
        .output()
        .expect("run ffmpeg md5");
    assert!(
        out.status.success(),
        "md5 of {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Decodes frame `index` of a video to packed RGB24 (coded size, no rotation applied).
pub fn frame_rgb(path: &Path, index: u32) -> (u32, u32, Vec<u8>) {
    decode_frame(path, index, false)
}

/// Frame `index` as packed RGB24; with `as_displayed`, turned by the display matrix as a player
/// shows it (ffmpeg's autorotate), else in coded orientation.
pub fn decode_frame(path: &Path, index: u32, as_displayed: bool) -> (u32, u32, Vec<u8>) {
    let probe = ffprobe(path);
    let v = video_stream(&probe);
    let (w, h) = (
        v["width"].as_u64().unwrap() as u32,
        v["height"].as_u64().unwrap() as u32,
    );
    let (w, h) = if as_displayed && rotation(v).rem_euclid(180) == 90 {
        (h, w)
    } else {
        (w, h)
    };
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-loglevel", "error"]);
    if !as_displayed {
        cmd.arg("-noautorotate");
    }
    let out = cmd
        .arg("-i")
        .arg(path)
        .args([
            "-vf",
            &format!("select=eq(n\\,{index})"),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .output()
        .expect("run ffmpeg frame");
    assert!(out.status.success());
    assert_eq!(
        out.stdout.len(),
        (w * h * 3) as usize,
        "frame {index} of {}",
        path.display()
    );
    (w, h, out.stdout)
}

fn luma(rgb: &[u8]) -> Vec<f32> {
    rgb.chunks_exact(3)
        .map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)
        .collect()
}

fn sobel(l: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0.0; w * h];
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let p = |dx: isize, dy: isize| {
                l[(y as isize + dy) as usize * w + (x as isize + dx) as usize]
            };
            let gx = p(1, -1) + 2.0 * p(1, 0) + p(1, 1) - p(-1, -1) - 2.0 * p(-1, 0) - p(-1, 1);
            let gy = p(-1, 1) + 2.0 * p(0, 1) + p(1, 1) - p(-1, -1) - 2.0 * p(0, -1) - p(1, -1);
            out[y * w + x] = (gx * gx + gy * gy).sqrt();
        }
    }
    out
}

fn pearson(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (
        a.iter().map(|&v| v as f64).sum::<f64>() / n,
        b.iter().map(|&v| v as f64).sum::<f64>() / n,
    );
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x as f64 - ma, y as f64 - mb);
        cov += dx * dy;
        va += dx * dx;
        vb += dy * dy;
    }
    cov / (va.sqrt() * vb.sqrt()).max(1e-12)
}

/// Box-averages a luma plane by `f` in each direction.
fn shrink(l: &[f32], w: usize, h: usize, f: usize) -> (Vec<f32>, usize, usize) {
    let (sw, sh) = (w / f, h / f);
    let mut out = vec![0.0; sw * sh];
    for y in 0..sh * f {
        for x in 0..sw * f {
            out[(y / f) * sw + x / f] += l[y * w + x] / (f * f) as f32;
        }
    }
    (out, sw, sh)
}

/// Correlation of the Sobel edge maps of two same-sized frames, at a quarter of their size: the same
/// scene keeps its outlines there, while a style's own brush texture (finer) mostly averages out.
pub fn edge_correlation(w: u32, h: u32, a: &[u8], b: &[u8]) -> f64 {
    let (w, h) = (w as usize, h as usize);
    let (la, sw, sh) = shrink(&luma(a), w, h, 4);
    let (lb, _, _) = shrink(&luma(b), w, h, 4);
    pearson(&sobel(&la, sw, sh), &sobel(&lb, sw, sh))
}

/// `b` moved right by `dx` pixels: a control showing the metric notices a shifted picture.
pub fn shifted(w: u32, h: u32, b: &[u8], dx: u32) -> Vec<u8> {
    let mut out = b.to_vec();
    for y in 0..h {
        for x in dx..w {
            let (dst, src) = (((y * w + x) * 3) as usize, ((y * w + x - dx) * 3) as usize);
            out[dst..dst + 3].copy_from_slice(&b[src..src + 3]);
        }
    }
    out
}

/// Mean absolute difference per channel value (0..255).
pub fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).abs())
        .sum::<f64>()
        / a.len() as f64
}

/// Ctrl-C, as a terminal sends it.
pub fn send_sigint(pid: u32) {
    let ok = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Files in `dir` (names), to prove nothing was left behind.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A folder this process cannot write to, even as root (sysfs refuses new files).
pub fn unwritable_dir(scratch: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch.join("readonly");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(dir.join("probe"), b"").is_ok() {
        let _ = std::fs::remove_file(dir.join("probe"));
        return PathBuf::from("/sys/kernel");
    }
    dir
}
