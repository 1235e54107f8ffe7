//! The optimisation method's loss curve from three starts — the content frame (as the reference did), noise, and the fast network's picture — on one frame of a video, and what each costs per iteration.
//!
//! `cargo run --release -p stylize-core --example optimize_curve -- VIDEO STYLE_PICTURE [SIDE [ITERATIONS [FRAME]]]`
//! (defaults: 256 on the long side, the default iterations, frame 0). Prints the loss every 10
//! iterations for each start, and how many iterations the content and noise starts need to reach
//! the loss the network's start has after 10, 30 and 100.
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use stylize_core::frames::grab;
use stylize_core::sheet::canvas::resize;
use stylize_core::style::load_picture;
use stylize_model::optimize::{optimize, Losses, OptimizeParams, StyleGoal};
use stylize_model::vgg::Vgg19;
use stylize_model::{Engine, EngineOptions, RgbImage, StyleParams, StyleSource};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (video, style_path) = match (args.first(), args.get(1)) {
        (Some(v), Some(s)) => (Path::new(v), Path::new(s)),
        _ => anyhow::bail!("usage: optimize_curve VIDEO STYLE_PICTURE [SIDE [ITERATIONS [FRAME]]]"),
    };
    let number =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (side, iterations, frame) = (
        number(2, 256) as u32,
        number(3, stylize_model::optimize::DEFAULT_ITERATIONS),
        number(4, 0) as u64,
    );
    let info = stylize_media::probe(video)?;
    let (_, frame) = grab(&info, &[frame])?
        .into_iter()
        .next()
        .context("no such frame")?;
    let content = fit(&frame, side);
    let style = fit(&load_picture(style_path)?, side);
    let vgg = Vgg19::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../weights/vgg19_q.safetensors"
    )))?;
    let goal = StyleGoal::new(&vgg, &style)?;
    let engine = Engine::new(&EngineOptions::default())?;
    let prepared = engine.prepare(
        &StyleSource::Image(style.clone()),
        &StyleParams::default(),
        None,
    )?;
    let network = engine
        .stylize(&prepared, std::slice::from_ref(&content))?
        .remove(0);
    let noise = noise(content.width, content.height);
    println!(
        "{}x{} frame, style {}x{}, {iterations} iterations",
        content.width, content.height, style.width, style.height
    );
    let params = OptimizeParams {
        iterations,
        ..OptimizeParams::default()
    };
    let mut curves = Vec::new();
    for (name, start) in [
        ("network", &network),
        ("content", &content),
        ("noise", &noise),
    ] {
        let started = Instant::now();
        let result = optimize(&vgg, &goal, &content, start, None, &params, |_, _| {})?;
        let seconds = started.elapsed().as_secs_f64();
        let every_10: Vec<String> = result
            .curve
            .iter()
            .step_by(10)
            .map(|l| format!("{:.3}", l.total))
            .collect();
        println!(
            "{name:>8}: {seconds:.1} s ({:.2} s an iteration); loss every 10: {}",
            seconds / iterations as f64,
            every_10.join(" ")
        );
        curves.push((name, result.curve));
    }
    compare_starts(&curves, iterations);
    Ok(())
}

/// How many iterations the other starts need for the network start's loss after 10, 30 and all.
fn compare_starts(curves: &[(&str, Vec<Losses>)], iterations: usize) {
    let network_curve = &curves[0].1;
    for at in [10, 30, iterations] {
        let Some(target) = network_curve.get(at).map(|l| l.total) else {
            continue;
        };
        let needed: Vec<String> = curves[1..]
            .iter()
            .map(|(name, curve)| format!("{name} {}", reached(curve, target)))
            .collect();
        println!(
            "network start's loss after {at} ({target:.3}) reached by: {}",
            needed.join(", ")
        );
    }
}

/// The first iteration whose loss is at most `target`, or `>N` when none is.
fn reached(curve: &[Losses], target: f64) -> String {
    match curve.iter().position(|l| l.total <= target) {
        Some(i) => i.to_string(),
        None => format!(">{}", curve.len() - 1),
    }
}

fn fit(picture: &RgbImage, side: u32) -> RgbImage {
    let scale = f64::from(side) / f64::from(picture.width.max(picture.height));
    let size = |n: u32| ((f64::from(n) * scale).round() as u32).max(1);
    resize(picture, size(picture.width), size(picture.height))
}

/// Uniform noise, reproducible.
fn noise(width: u32, height: u32) -> RgbImage {
    let mut state = 0x2545_f491u32;
    let data = (0..width * height * 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect();
    RgbImage::new(width, height, data)
}
