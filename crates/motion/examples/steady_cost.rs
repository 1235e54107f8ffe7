//! What the steadier costs per frame on a synthetic pan: `cargo run --release -p stylize-motion
//! --example steady_cost [WIDTH HEIGHT FRAMES [THREADS]]` (default 720 720 60). Prints the time per frame of
//! one steadier doing everything in order, then of a `SteadyStream` analysing the motion ahead on
//! 1, 2, 4… threads up to THREADS (default: this machine's `steadying_threads()`) (all in one run, side by side).
use std::time::Instant;

use stylize_frame::RgbImage;
use stylize_motion::{steadying_threads, Steadier, SteadyStream, DEFAULT_STEADY};

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
    RgbImage::new(width, height, data)
}

fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (width, height, frames, most) = match args[..] {
        [w, h, n, threads] => (w, h, n, threads as usize),
        [w, h, n] => (w, h, n, steadying_threads()),
        _ => (720, 720, 60, steadying_threads()),
    };
    let originals: Vec<RgbImage> = (0..frames).map(|t| pan(width, height, t * 2, 0)).collect();
    let styled: Vec<RgbImage> = (0..frames)
        .map(|t| pan(width, height, t * 2, t * 7))
        .collect();
    let report = |what: &str, started: Instant| {
        let per_frame = started.elapsed().as_secs_f64() * 1e3 / frames as f64;
        println!(
            "{width}x{height} {what:<28} {per_frame:6.1} ms per frame  {:6.1} fps  ({frames} frames)",
            1e3 / per_frame
        );
    };
    let mut steadier = Steadier::new(DEFAULT_STEADY);
    let started = Instant::now();
    for (original, styled) in originals.iter().zip(&styled) {
        steadier.process(original, styled).expect("steadier");
    }
    report("in order, one thread", started);
    let counts = (0..)
        .map(|k| 1usize << k)
        .take_while(|&n| n < most)
        .chain([most]);
    for threads in counts {
        let mut stream = SteadyStream::with_threads(DEFAULT_STEADY, threads).expect("level > 0");
        let started = Instant::now();
        for (n, (original, styled)) in originals.iter().zip(&styled).enumerate() {
            stream
                .push(n, original.clone(), styled.clone())
                .expect("steadier");
        }
        while stream.next_left().expect("steadier").is_some() {}
        report(&format!("stream on {threads} thread(s)"), started);
    }
}
