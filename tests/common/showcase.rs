//! Helpers for the showcase tests: the shared sample cache, reading sheets and their embedded layout,
//! comparing tiles, and a tiny HTTP server for the download path.
#![allow(dead_code)]
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// One cache for every showcase test run, so the bundled sample is made once per target folder.
pub fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("showcase-cache")
}

/// `stylize` with the shared cache.
pub fn stylize_cached() -> Command {
    let mut cmd = super::stylize();
    cmd.env("STYLIZE_CACHE", shared_cache());
    cmd
}

/// The bundled sample's path, made first when needed (once per test process, even when tests race).
pub fn bundled_sample() -> PathBuf {
    static SAMPLE: OnceLock<PathBuf> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    SAMPLE
        .get_or_init(|| {
            let out = stylize_cached()
                .args(["demo", "--offline", "--print-input", "--quiet"])
                .output()
                .unwrap();
            let (code, stdout, stderr) = super::decode(out);
            assert_eq!(code, 0, "making the sample: {stderr}");
            PathBuf::from(stdout.trim())
        })
        .clone()
}

/// A decoded sheet with its layout (from the PNG's `stylize:layout` chunk).
pub struct SheetPng {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
    pub layout: Value,
}

pub fn read_sheet(path: &Path) -> SheetPng {
    let file = BufReader::new(
        std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    );
    let reader = png::Decoder::new(file).read_info().expect("a PNG");
    let info = reader.info();
    let chunk = info
        .utf8_text
        .iter()
        .find(|c| c.keyword == "stylize:layout")
        .expect("layout chunk");
    let layout: Value = serde_json::from_str(&chunk.get_text().unwrap()).unwrap();
    let img = image::open(path).unwrap().to_rgb8();
    SheetPng {
        width: img.width(),
        height: img.height(),
        rgb: img.into_raw(),
        layout,
    }
}

impl SheetPng {
    pub fn tiles(&self) -> &Vec<Value> {
        self.layout["tiles"].as_array().unwrap()
    }

    /// The pixels of tile `i` (its picture, not its label).
    pub fn tile(&self, i: usize) -> (u32, u32, Vec<u8>) {
        let t = &self.tiles()[i];
        let g = |k: &str| t[k].as_u64().unwrap() as u32;
        let (x, y, w, h) = (g("x"), g("y"), g("w"), g("h"));
        assert!(
            x + w <= self.width && y + h <= self.height,
            "tile {i} outside the sheet"
        );
        let mut out = Vec::with_capacity((w * h * 3) as usize);
        for row in y..y + h {
            let start = ((row * self.width + x) * 3) as usize;
            out.extend_from_slice(&self.rgb[start..start + (w * 3) as usize]);
        }
        (w, h, out)
    }

    /// Asserts the basic geometry: layout size = picture size, tiles on a grid of `columns`, equal sizes,
    /// the picture's aspect `aspect` (w/h) kept.
    pub fn assert_grid(&self, tiles: usize, columns: usize, aspect: f64) {
        assert_eq!(
            (
                self.layout["width"].as_u64().unwrap() as u32,
                self.layout["height"].as_u64().unwrap() as u32
            ),
            (self.width, self.height)
        );
        let t = self.tiles();
        assert_eq!(t.len(), tiles, "tile count");
        let first = &t[0];
        for (i, tile) in t.iter().enumerate() {
            assert_eq!(
                tile["column"].as_u64().unwrap() as usize,
                i % columns,
                "tile {i} column"
            );
            assert_eq!(
                tile["row"].as_u64().unwrap() as usize,
                i / columns,
                "tile {i} row"
            );
            assert_eq!(
                (tile["w"].clone(), tile["h"].clone()),
                (first["w"].clone(), first["h"].clone()),
                "tile {i} size"
            );
            // Aligned: same column → same x, same row → same y.
            let same_col = &t[i % columns];
            assert_eq!(tile["x"], same_col["x"], "tile {i} x");
            let same_row = &t[(i / columns) * columns];
            assert_eq!(tile["y"], same_row["y"], "tile {i} y");
        }
        let (w, h) = (first["w"].as_f64().unwrap(), first["h"].as_f64().unwrap());
        assert!(
            (w / h - aspect).abs() < 0.02,
            "tile aspect {w}x{h} vs {aspect}"
        );
    }
}

/// Mean absolute difference per channel value between two tiles of the same size.
pub fn tile_diff(a: &(u32, u32, Vec<u8>), b: &(u32, u32, Vec<u8>)) -> f64 {
    assert_eq!((a.0, a.1), (b.0, b.1), "tiles of different sizes");
    super::mean_abs_diff(&a.2, &b.2)
}

/// What a served request looked like.
#[derive(Debug, Clone)]
pub struct Request {
    pub range: Option<u64>,
    pub if_range: Option<String>,
}

/// Serves `body` for `connections` requests on 127.0.0.1; the first `cut_first` requests stop after
/// half the body (a dropped transfer). Returns the URL and a handle yielding the requests seen.
pub fn serve(
    body: Vec<u8>,
    connections: usize,
    cut_first: usize,
    name: &str,
) -> (String, std::thread::JoinHandle<Vec<Request>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/videos/{name}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for n in 0..connections {
            let (stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(30)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = Request {
                range: None,
                if_range: None,
            };
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("range: bytes=") {
                    request.range = v.trim().trim_end_matches('-').parse().ok();
                }
                if lower.starts_with("if-range:") {
                    request.if_range = Some(line[9..].trim().to_string());
                }
            }
            let mut stream = stream;
            let start = request.range.unwrap_or(0) as usize;
            let len = body.len();
            let head = if start > 0 {
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{len}\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n",
                    len - start,
                    len - 1
                )
            } else {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n")
            };
            let _ = stream.write_all(head.as_bytes());
            let end = if n < cut_first {
                start + (len - start) / 2
            } else {
                len
            };
            let _ = stream.write_all(&body[start..end]);
            let _ = stream.flush();
            let _ = stream.shutdown(std::net::Shutdown::Both);
            // Drain whatever the client still sends so the close is clean.
            let _ = reader.read_to_end(&mut Vec::new());
            seen.push(request);
        }
        seen
    });
    (url, handle)
}

/// A `size` test-pattern clip with a display matrix turning it 90° counter-clockwise (ffprobe's
/// `rotation=90`). FFmpeg 5.1 writes the matrix only on a stream copy, so a plain clip is made first.
pub fn rotated_clip(dir: &Path, name: &str, size: &str, frames: u32) -> PathBuf {
    let plain = super::scene_clip(dir, &format!("plain-{name}"), size, "25", frames, &[], &[]);
    let rotated = dir.join(name);
    super::ffmpeg(&[
        "-i",
        plain.to_str().unwrap(),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        rotated.to_str().unwrap(),
    ]);
    std::fs::remove_file(&plain).unwrap();
    assert_eq!(super::rotation(&rotated), 90, "display matrix written");
    rotated
}

/// Columns `x0..x0 + width` of a packed RGB picture `w` pixels wide.
pub fn columns(w: u32, rgb: &[u8], x0: u32, width: u32) -> Vec<u8> {
    rgb.chunks_exact(w as usize * 3)
        .flat_map(|row| row[x0 as usize * 3..(x0 + width) as usize * 3].to_vec())
        .collect()
}

/// Asserts that a wide frame (`w` pixels across, two pictures side by side) shows `original` on
/// the left and `styled` on the right. Each video went through its own lossy encode, so each half
/// must be close to its own source and far closer to it than to the other one.
pub fn assert_side_by_side(w: u32, wide: &[u8], original: &[u8], styled: &[u8], what: &str) {
    let (left, right) = (columns(w, wide, 0, w / 2), columns(w, wide, w / 2, w / 2));
    let (lo, ls) = (
        super::mean_abs_diff(&left, original),
        super::mean_abs_diff(&left, styled),
    );
    let (rs, ro) = (
        super::mean_abs_diff(&right, styled),
        super::mean_abs_diff(&right, original),
    );
    assert!(
        lo < 6.0 && lo < ls / 3.0,
        "{what}: left half is not the original ({lo:.1} vs {ls:.1})"
    );
    assert!(
        rs < 8.0 && rs < ro / 3.0,
        "{what}: right half is not the styled frame ({rs:.1} vs {ro:.1})"
    );
}

/// A packed RGB picture resized (Lanczos, as the sheets do) to `width` × `height`.
pub fn resized(w: u32, h: u32, rgb: Vec<u8>, width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_raw(w, h, rgb).unwrap();
    image::imageops::resize(&img, width, height, image::imageops::FilterType::Lanczos3).into_raw()
}
