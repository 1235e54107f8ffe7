//! What the steadier costs per frame, alone on one thread: `cargo run --release -p stylize-motion
//! --example steady_cost [WIDTH HEIGHT FRAMES]` (default 720 720 60) on a synthetic pan.
use std::time::Instant;

use stylize_frame::RgbImage;
use stylize_motion::Steadier;

fn pan(width: u32, height: u32, shift: u32, seed: u32) -> RgbImage {
    let mut data = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let (u, v) = ((x + shift) as f32, y as f32);
            let g = 128.0
                + 60.0 * (u * 0.05).sin() * (v * 0.07).cos()
                + 30.0 * ((u + v + seed as f32) * 0.31).sin();
            data.extend_from_slice(&[g as u8, (255.0 - g) as u8, (g * 0.6) as u8]);
        }
    }
    RgbImage {
        width,
        height,
        data,
    }
}

fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (width, height, frames) = match args[..] {
        [w, h, n] => (w, h, n),
        _ => (720, 720, 60),
    };
    let originals: Vec<RgbImage> = (0..frames).map(|t| pan(width, height, t * 2, 0)).collect();
    let styled: Vec<RgbImage> = (0..frames)
        .map(|t| pan(width, height, t * 2, t * 7))
        .collect();
    let mut steadier = Steadier::new(stylize_motion::DEFAULT_STEADY);
    let started = Instant::now();
    for (original, styled) in originals.iter().zip(&styled) {
        steadier.process(original, styled).expect("steadier");
    }
    let per_frame = started.elapsed().as_secs_f64() * 1e3 / frames as f64;
    println!("{width}x{height}: {per_frame:.1} ms per frame ({frames} frames)");
}
