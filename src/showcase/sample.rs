//! The bundled sample clip: a painted landscape the project makes itself, the reference clip's shape exactly.
//!
//! Nothing is downloaded: the frames are drawn here (sky, setting sun,
//! drifting clouds, two ranges of hills scrolling at different speeds, a
//! forest line, a lake with a boat) and piped to the `ffmpeg` command with a
//! generated melody, giving 720×720, 30 fps, 823 frames, H.264 High and AAC-LC
//! 48 kHz mono — what `stylize demo` would have got from the orangutan clip.
//! The result is cached; a recipe change gets a new folder name.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

pub const WIDTH: u32 = 720;
pub const HEIGHT: u32 = 720;
pub const FPS: u32 = 30;
pub const FRAMES: u64 = 823;
/// Bumped whenever the picture or the sound changes, so cached copies are made again.
const RECIPE: &str = "v1";
pub const FILE_NAME: &str = "stylize-sample.mp4";

/// The cached sample, made first if missing or unreadable.
pub fn ensure(cache: &Path, quiet: bool) -> Result<PathBuf> {
    let dir = cache.join("demo").join(format!("sample-{RECIPE}"));
    let path = dir.join(FILE_NAME);
    if path.exists() && has_sample_shape(&path) {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("{}: cannot create cache folder", dir.display()))?;
    let temp = dir.join(format!(".{FILE_NAME}.{}.mp4", std::process::id()));
    let made = generate(&temp, quiet);
    if let Err(e) = made {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    if !has_sample_shape(&temp) {
        let _ = std::fs::remove_file(&temp);
        bail!("the generated sample clip does not have the expected shape (720×720, 30 fps, 823 frames)");
    }
    std::fs::rename(&temp, &path)
        .with_context(|| format!("{}: cannot store the sample clip", path.display()))?;
    Ok(path)
}

fn has_sample_shape(path: &Path) -> bool {
    stylize_media::probe(path).is_ok_and(|info| {
        info.width == WIDTH
            && info.height == HEIGHT
            && info.frame_count == Some(FRAMES)
            && info.frame_rate.num == FPS as i32 * info.frame_rate.den
            && info.audio.len() == 1
    })
}

/// A plucked pentatonic line over a low drone; every note starts where the last has died away.
fn melody() -> String {
    let seconds = FRAMES as f64 / FPS as f64;
    let step = "mod(floor(t*4)*3,5)";
    let note = format!("220*pow(2,floor({step}*12/5+0.5)/12)");
    format!(
        "aevalsrc=exprs='0.22*sin(2*PI*t*{note})*exp(-14*mod(t,0.25))+0.05*sin(2*PI*t*110)':s=48000:c=mono:d={seconds:.4}"
    )
}

fn generate(out: &Path, quiet: bool) -> Result<()> {
    let size = format!("{WIDTH}x{HEIGHT}");
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", &size, "-r", &FPS.to_string(), "-i", "pipe:0"])
        .args(["-f", "lavfi", "-i", &melody()])
        .args(["-map", "0:v", "-map", "1:a"])
        .args(["-c:v", "libx264", "-preset", "medium", "-crf", "20", "-profile:v", "high", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-b:a", "96k", "-ar", "48000", "-ac", "1"])
        .args(["-metadata", "title=stylize bundled sample", "-movflags", "+faststart", "-f", "mp4"])
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                anyhow!("the bundled sample is made with the ffmpeg command, which is not installed (apt-get install ffmpeg)")
            }
            _ => anyhow!("cannot start ffmpeg to make the bundled sample: {e}"),
        })?;
    // Drained on its own thread so a chatty ffmpeg can never block on a full pipe.
    let mut stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(FRAMES)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "making the bundled sample clip (once) [{bar:32.cyan/blue}] {pos}/{len} frames",
        )
        .expect("valid template"),
    );
    let scene = Scene::new(WIDTH as usize, HEIGHT as usize);
    let mut frame = vec![0u8; WIDTH as usize * HEIGHT as usize * 3];
    let mut stdin = child.stdin.take().expect("piped");
    let mut write_error = None;
    for i in 0..FRAMES {
        if stylize_core::cancel::cancelled() {
            let _ = child.kill();
            bail!("interrupted");
        }
        scene.render(i as f32 / FPS as f32, &mut frame);
        if let Err(e) = stdin.write_all(&frame) {
            write_error = Some(e);
            break;
        }
        bar.inc(1);
    }
    drop(stdin);
    bar.finish_and_clear();
    let status = child.wait().context("waiting for ffmpeg")?;
    let errors = errors.join().unwrap_or_default();
    if !status.success() || write_error.is_some() {
        let reason = errors
            .lines()
            .last()
            .map(str::to_string)
            .or(write_error.map(|e| e.to_string()));
        bail!(
            "ffmpeg could not make the bundled sample: {}",
            reason.unwrap_or_else(|| status.to_string())
        );
    }
    Ok(())
}

/// The landscape; `render` draws it at a time `t` in seconds.
struct Scene {
    w: usize,
    h: usize,
    /// Sky colour per row (does not move).
    sky: Vec<[f32; 3]>,
}

const SKY_STOPS: [(f32, [f32; 3]); 4] = [
    (0.0, [42.0, 66.0, 146.0]),
    (0.30, [110.0, 116.0, 176.0]),
    (0.50, [222.0, 160.0, 140.0]),
    (0.62, [252.0, 184.0, 118.0]),
];
const LAKE: f32 = 0.86;
const CLOUDS: [(f32, f32, f32, f32, f32); 4] = [
    // x at t=0 (fraction of width), y (fraction of height), half width, half height (pixels), speed (px/s)
    (0.10, 0.14, 120.0, 26.0, 9.0),
    (0.55, 0.09, 90.0, 18.0, 6.0),
    (0.85, 0.24, 140.0, 22.0, 11.0),
    (0.35, 0.30, 70.0, 14.0, 7.5),
];

impl Scene {
    fn new(w: usize, h: usize) -> Self {
        let sky = (0..h)
            .map(|y| gradient(&SKY_STOPS, y as f32 / h as f32))
            .collect();
        Scene { w, h, sky }
    }

    fn render(&self, t: f32, out: &mut [u8]) {
        let (w, h) = (self.w as f32, self.h as f32);
        let duration = FRAMES as f32 / FPS as f32;
        // The camera drifts right; farther things move less (parallax).
        let cam = t * 22.0;
        let (sun_x, sun_y, sun_r) = (0.70 * w, (0.28 + 0.12 * t / duration) * h, 0.05 * w);
        let far: Vec<f32> = (0..self.w)
            .map(|x| far_ridge(x as f32 + 0.35 * cam, h))
            .collect();
        let near: Vec<f32> = (0..self.w).map(|x| near_ridge(x as f32 + cam, h)).collect();
        let boat_x = (t * 16.0 + 80.0) % (w + 160.0) - 80.0;
        let boat_y = (LAKE + 0.05) * h + 2.0 * (t * 2.0).sin();

        for y in 0..self.h {
            let fy = y as f32;
            let v = fy / h;
            for x in 0..self.w {
                let fx = x as f32;
                let mut c = if v >= LAKE {
                    self.water(fx, fy, t, sun_x)
                } else if fy >= near[x] {
                    grass(fx + cam, fy, near[x], h)
                } else if let Some(tree) = tree(fx + cam, fy, near[x], h) {
                    tree
                } else if fy >= far[x] {
                    let depth = ((fy - far[x]) / (0.15 * h)).min(1.0);
                    mix([116.0, 94.0, 156.0], [78.0, 66.0, 124.0], depth)
                } else {
                    self.sky_at(fx, fy, t, (sun_x, sun_y, sun_r))
                };
                if let Some(boat) = boat(fx - boat_x, fy - boat_y) {
                    c = boat;
                }
                let i = (y * self.w + x) * 3;
                out[i] = c[0].clamp(0.0, 255.0) as u8;
                out[i + 1] = c[1].clamp(0.0, 255.0) as u8;
                out[i + 2] = c[2].clamp(0.0, 255.0) as u8;
            }
        }
    }

    fn sky_at(&self, x: f32, y: f32, t: f32, (sx, sy, sr): (f32, f32, f32)) -> [f32; 3] {
        let mut c = self.sky[y as usize];
        let d = ((x - sx).powi(2) + (y - sy).powi(2)).sqrt();
        let glow = (-d / (0.11 * self.w as f32)).exp();
        c = [c[0] + 90.0 * glow, c[1] + 62.0 * glow, c[2] + 22.0 * glow];
        let disc = (sr - d + 0.5).clamp(0.0, 1.0);
        c = mix(c, [255.0, 242.0, 210.0], disc);
        let cover = self.clouds(x, y, t);
        mix(c, [255.0, 212.0, 198.0], cover * 0.88)
    }

    fn clouds(&self, x: f32, y: f32, t: f32) -> f32 {
        let span = self.w as f32 + 400.0;
        let mut cover: f32 = 0.0;
        for &(x0, y0, rx, ry, speed) in &CLOUDS {
            let cx = (x0 * self.w as f32 + speed * t + 200.0) % span - 200.0;
            let dx = (x - cx) / rx;
            // Lumpy tops: the cloud's height varies along its length.
            let lump = 1.0 + 0.35 * (dx * 5.0 + x0 * 20.0).sin();
            let dy =
                (y - y0 * self.h as f32) / (ry * if y < y0 * self.h as f32 { lump } else { 0.7 });
            let density = 1.0 - (dx * dx + dy * dy);
            cover = cover.max(smoothstep(0.0, 0.35, density));
        }
        cover
    }

    fn water(&self, x: f32, y: f32, t: f32, sun_x: f32) -> [f32; 3] {
        let h = self.h as f32;
        let below = y - LAKE * h;
        // The sky seen in the water, darkened and blued.
        let mirrored = ((0.45 * h - below * 3.0).max(0.0) as usize).min(self.h - 1);
        let mut c = mix(self.sky[mirrored], [28.0, 70.0, 140.0], 0.6);
        let ripple = 1.0 + 0.12 * (y * 0.8 + t * 2.5 + (x * 0.015 + t).sin() * 2.0).sin();
        c = [c[0] * ripple, c[1] * ripple, c[2] * ripple];
        let reach = 22.0 * (1.0 + below / (0.14 * h) * 2.0);
        if (x - sun_x).abs() < reach && (y * 1.3 + t * 4.0 + x * 0.1).sin() > 0.55 {
            c = mix(c, [255.0, 226.0, 170.0], 0.75);
        }
        c
    }
}

fn far_ridge(xw: f32, h: f32) -> f32 {
    h * (0.54 + 0.035 * (xw * 0.0105 + 0.5).sin() + 0.014 * (xw * 0.031 + 1.3).sin())
}

fn near_ridge(xw: f32, h: f32) -> f32 {
    h * (0.67 + 0.055 * (xw * 0.0062 + 2.0).sin() + 0.02 * (xw * 0.021 + 0.7).sin())
}

/// A pine in every 24-pixel cell of the near ridge that has one; `None` outside its silhouette.
fn tree(xw: f32, y: f32, ridge: f32, h: f32) -> Option<[f32; 3]> {
    const CELL: f32 = 24.0;
    let cell = (xw / CELL).floor();
    if hash(cell as i32) < 0.25 {
        return None;
    }
    let height = h * (0.04 + 0.035 * hash(cell as i32 + 7919));
    let base = near_ridge((cell + 0.5) * CELL, h);
    let top = base - height;
    let local = xw / CELL - cell - 0.5;
    if y < top || y > ridge + 2.0 || local.abs() * CELL > (y - top) / height * CELL * 0.45 {
        return None;
    }
    // The sun is to the right: right-hand flanks catch a little light.
    let lit = if local > 0.0 { 14.0 } else { 0.0 };
    Some([30.0 + lit, 66.0 + lit, 44.0 + lit * 0.5])
}

fn grass(xw: f32, y: f32, ridge: f32, h: f32) -> [f32; 3] {
    let depth = ((y - ridge) / (0.2 * h)).min(1.0);
    let base = mix([74.0, 136.0, 62.0], [34.0, 82.0, 42.0], depth);
    let texture = 0.6 * value_noise(xw / 6.0, y / 3.0) + 0.4 * value_noise(xw / 19.0, y / 8.0);
    let k = 0.85 + 0.3 * texture;
    [base[0] * k, base[1] * k, base[2] * k]
}

/// A small sailing boat; (dx, dy) is relative to its waterline centre.
fn boat(dx: f32, dy: f32) -> Option<[f32; 3]> {
    if (0.0..9.0).contains(&dy) && dx.abs() < 28.0 - dy * 1.2 {
        return Some([92.0, 52.0, 38.0]);
    }
    if (-44.0..0.0).contains(&dy) && dx >= -2.0 && dx < -2.0 + (dy + 44.0) * 0.5 {
        return Some([240.0, 234.0, 222.0]);
    }
    if (-46.0..0.0).contains(&dy) && (-4.0..-2.0).contains(&dx) {
        return Some([60.0, 40.0, 30.0]);
    }
    None
}

fn gradient(stops: &[(f32, [f32; 3])], v: f32) -> [f32; 3] {
    let last = stops[stops.len() - 1];
    if v >= last.0 {
        return last.1;
    }
    for pair in stops.windows(2) {
        let ((a, ca), (b, cb)) = (pair[0], pair[1]);
        if v < b {
            return mix(ca, cb, smoothstep(a, b, v));
        }
    }
    last.1
}

fn mix(a: [f32; 3], b: [f32; 3], k: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * k,
        a[1] + (b[1] - a[1]) * k,
        a[2] + (b[2] - a[2]) * k,
    ]
}

fn smoothstep(a: f32, b: f32, x: f32) -> f32 {
    let t = ((x - a) / (b - a)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// A well-mixed integer hash in [0, 1): fixed, so every machine paints the same clip.
fn hash(n: i32) -> f32 {
    let mut x = (n as u32).wrapping_mul(0x9E37_79B1);
    x ^= x >> 15;
    x = x.wrapping_mul(0x85EB_CA77);
    x ^= x >> 13;
    (x & 0xFFFF) as f32 / 65536.0
}

/// Smooth noise in [0, 1): hashed lattice values, blended with smoothstep.
fn value_noise(x: f32, y: f32) -> f32 {
    let (xi, yi) = (x.floor(), y.floor());
    let (fx, fy) = (smoothstep(0.0, 1.0, x - xi), smoothstep(0.0, 1.0, y - yi));
    let at = |dx: i32, dy: i32| {
        hash((xi as i32 + dx).wrapping_mul(73_856_093) ^ (yi as i32 + dy).wrapping_mul(19_349_663))
    };
    let top = at(0, 0) + (at(1, 0) - at(0, 0)) * fx;
    let bottom = at(0, 1) + (at(1, 1) - at(0, 1)) * fx;
    top + (bottom - top) * fy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_move_and_are_deterministic() {
        let scene = Scene::new(96, 96);
        let (mut a, mut b, mut c) = (
            vec![0; 96 * 96 * 3],
            vec![0; 96 * 96 * 3],
            vec![0; 96 * 96 * 3],
        );
        scene.render(0.0, &mut a);
        scene.render(0.0, &mut b);
        scene.render(5.0, &mut c);
        assert_eq!(a, b);
        let changed = a.iter().zip(&c).filter(|(x, y)| x != y).count();
        assert!(
            changed > a.len() / 10,
            "only {changed} values changed in 5 s"
        );
    }

    #[test]
    fn melody_lasts_as_long_as_the_video() {
        assert!(melody().ends_with(":d=27.4333"));
    }
}
