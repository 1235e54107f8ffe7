//! model_bench: times the style networks alone (no FFmpeg): s/frame and fps per network and precision, u8↔tensor conversion, bf16 drift.
//!
//! ```text
//! model_bench [--size 720x720] [--frames 8] [--threads N] [--device cpu|cuda|auto]
//!             [--precisions f32,bf16] [--batches 1,8,32] [--against-cpu]
//!             [--frame FILE.rgb] [--style FILE.rgb --style-size WxH] [--optimize VGG19]
//! ```
//! `--optimize` times the optimisation method instead (`--method optimize`: VGG19 forward and back
//! per L-BFGS iteration, fp32, on the device) at the size, from the network's picture.
//! `--batches` times each network at each batch size (default: the device's preferred one);
//! `--against-cpu` also styles the frame on the CPU in f32 and says how far each output is from it.
//! `--frame`/`--style` take raw RGB24 (e.g. `ffmpeg -i in.mp4 -frames:v 1 -s 720x720 -f rawvideo
//! -pix_fmt rgb24 frame.rgb`); without them synthetic pictures are used.
use std::process::ExitCode;
use std::time::Instant;

use stylize_model::{
    tensor_to_frames, DeviceChoice, Engine, EngineOptions, Precision, RgbImage, StyleParams,
    StyleSource,
};

struct Args {
    width: u32,
    height: u32,
    frames: usize,
    threads: Option<usize>,
    device: DeviceChoice,
    precisions: Vec<Precision>,
    /// Frames per network call to time; empty: the engine's preferred batch.
    batches: Vec<usize>,
    against_cpu: bool,
    frame: Option<String>,
    style: Option<(String, u32, u32)>,
    /// VGG19's weights: time the optimisation method.
    optimize: Option<String>,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or_else(|| format!("size {s:?}: expected WxH"))?;
    Ok((
        w.parse().map_err(|_| format!("bad width in {s:?}"))?,
        h.parse().map_err(|_| format!("bad height in {s:?}"))?,
    ))
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        width: 720,
        height: 720,
        frames: 8,
        threads: None,
        device: DeviceChoice::Cpu,
        precisions: vec![Precision::F32, Precision::Bf16],
        batches: Vec::new(),
        against_cpu: false,
        frame: None,
        style: None,
        optimize: None,
    };
    let mut style_path = None;
    let mut style_size = (512, 512);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--size" => (a.width, a.height) = parse_size(&value()?)?,
            "--frames" => a.frames = value()?.parse().map_err(|_| "bad --frames")?,
            "--threads" => a.threads = Some(value()?.parse().map_err(|_| "bad --threads")?),
            "--device" => {
                a.device = match value()?.as_str() {
                    "cpu" => DeviceChoice::Cpu,
                    "cuda" => DeviceChoice::Cuda,
                    "auto" => DeviceChoice::Auto,
                    d => return Err(format!("unknown device {d:?}")),
                }
            }
            "--precisions" => {
                a.precisions = value()?
                    .split(',')
                    .map(|p| match p {
                        "f32" => Ok(Precision::F32),
                        "bf16" => Ok(Precision::Bf16),
                        "f16" => Ok(Precision::F16),
                        "auto" => Ok(Precision::Auto),
                        p => Err(format!("unknown precision {p:?}")),
                    })
                    .collect::<Result<_, _>>()?
            }
            "--batches" => {
                a.batches = value()?
                    .split(',')
                    .map(|b| match b.parse::<usize>() {
                        Ok(b) if b > 0 => Ok(b),
                        _ => Err(format!("bad batch size {b:?}")),
                    })
                    .collect::<Result<_, _>>()?
            }
            "--against-cpu" => a.against_cpu = true,
            "--frame" => a.frame = Some(value()?),
            "--style" => style_path = Some(value()?),
            "--style-size" => style_size = parse_size(&value()?)?,
            "--optimize" => a.optimize = Some(value()?),
            "-h" | "--help" => {
                return Err("usage: see the module docs at the top of model_bench.rs".into())
            }
            f => return Err(format!("unknown flag {f:?}")),
        }
    }
    a.style = style_path.map(|p| (p, style_size.0, style_size.1));
    if a.frames == 0 {
        return Err("--frames must be at least 1".into());
    }
    Ok(a)
}

fn read_rgb(path: &str, w: u32, h: u32) -> Result<RgbImage, String> {
    let data = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let img = RgbImage::new(w, h, data);
    img.check().map_err(|e| format!("{path}: {e}"))?;
    Ok(img)
}

/// Photo-like test content: smooth colour waves, a few hard-edged discs, mild noise.
fn synthetic(w: u32, h: u32, seed: u32) -> RgbImage {
    let mut data = Vec::with_capacity(RgbImage::byte_len(w, h));
    let mut rng = 0x9e37_79b9u32 ^ seed;
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let mut px = [
                128.0 + 90.0 * (7.0 * fx + 3.0 * fy + seed as f32).sin(),
                120.0 + 80.0 * (5.0 * fy - 4.0 * fx).cos(),
                110.0 + 70.0 * (11.0 * fx * fy).sin(),
            ];
            for (cx, cy, r, col) in [
                (0.3, 0.35, 0.12, [230.0, 200.0, 60.0]),
                (0.7, 0.6, 0.18, [40.0, 60.0, 150.0]),
            ] {
                if (fx - cx).powi(2) + (fy - cy).powi(2) < r * r {
                    px = col;
                }
            }
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            let noise = (rng % 9) as f32 - 4.0;
            data.extend(px.map(|v| (v + noise).clamp(0.0, 255.0) as u8));
        }
    }
    RgbImage::new(w, h, data)
}

fn mean_abs(a: &[RgbImage], b: &[RgbImage]) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for (x, y) in a.iter().zip(b) {
        sum += x
            .data
            .iter()
            .zip(&y.data)
            .map(|(p, q)| (*p as f64 - *q as f64).abs())
            .sum::<f64>();
        n += x.data.len();
    }
    sum / n as f64
}

struct Timing {
    mean: f64,
    min: f64,
}

fn time_frames(
    engine: &Engine,
    style: &stylize_model::PreparedStyle,
    frame: &RgbImage,
    (n, batch): (usize, usize),
) -> (Timing, Vec<RgbImage>) {
    let batch = vec![frame.clone(); batch];
    let mut out = engine.stylize(style, &batch).expect("warm-up"); // first call primes oneDNN kernels
    let (mut total, mut min, mut done) = (0.0, f64::MAX, 0);
    while done < n {
        let t = Instant::now();
        out = engine.stylize(style, &batch).expect("stylize");
        let dt = t.elapsed().as_secs_f64() / batch.len() as f64;
        total += dt * batch.len() as f64;
        min = min.min(dt);
        done += batch.len();
    }
    (
        Timing {
            mean: total / done as f64,
            min,
        },
        out,
    )
}

/// One network's output, kept to compare precisions.
type Output = (Precision, &'static str, Vec<RgbImage>);

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let frame = match &args.frame {
        Some(p) => read_rgb(p, args.width, args.height)?,
        None => synthetic(args.width, args.height, 1),
    };
    let style_img = match &args.style {
        Some((p, w, h)) => read_rgb(p, *w, *h)?,
        None => synthetic(512, 512, 7),
    };
    println!(
        "model_bench: {}x{} frames, {} timed per case, LibTorch {}",
        args.width,
        args.height,
        args.frames,
        tch_version()
    );
    if let Some(vgg19) = &args.optimize {
        return time_optimize(&args, vgg19, &frame, &style_img);
    }
    let mut outputs: Vec<Output> = Vec::new();
    for &precision in &args.precisions {
        let engine = ready_engine(&args, precision)?;
        let batches = match args.batches.is_empty() {
            true => vec![engine.preferred_batch()],
            false => args.batches.clone(),
        };
        for (name, out) in time_styles(&engine, &frame, &style_img, (args.frames, &batches))? {
            outputs.push((precision, name, out));
        }
        time_conversion(&engine, &frame)?;
    }
    print_drift(&outputs);
    if args.against_cpu {
        print_against_cpu(&args, &frame, &style_img, &outputs)?;
    }
    Ok(())
}

/// The optimisation method's cost: a few L-BFGS iterations from the network's picture, on the
/// engine's device, and what a frame at the default iterations comes to.
fn time_optimize(
    args: &Args,
    vgg19: &str,
    frame: &RgbImage,
    style_img: &RgbImage,
) -> Result<(), String> {
    use stylize_model::optimize::{optimize, OptimizeParams, StyleGoal, DEFAULT_ITERATIONS};
    let engine = ready_engine(args, Precision::F32)?;
    let err = |e: stylize_model::ModelError| e.to_string();
    let vgg = stylize_model::vgg::Vgg19::load(std::path::Path::new(vgg19))
        .map_err(err)?
        .to_device(engine.device());
    let style = engine
        .prepare(
            &StyleSource::Image(style_img.clone()),
            &StyleParams::default(),
            None,
        )
        .map_err(err)?;
    let start = engine
        .stylize(&style, std::slice::from_ref(frame))
        .map_err(err)?
        .remove(0);
    let goal = StyleGoal::new(&vgg, style_img).map_err(err)?;
    for iterations in [1, 6] {
        // The first call warms the device up; the second is timed.
        let params = OptimizeParams {
            iterations,
            ..OptimizeParams::default()
        };
        let started = Instant::now();
        let result = optimize(&vgg, &goal, frame, &start, None, &params, |_, _| {}).map_err(err)?;
        let seconds = started.elapsed().as_secs_f64();
        if iterations > 1 {
            let each = seconds / iterations as f64;
            let losses: Vec<String> = result
                .curve
                .iter()
                .map(|l| format!("{:.3}", l.total))
                .collect();
            println!(
                "optimize on {}: {:.1} ms an iteration, {:.1} s a frame at the default {DEFAULT_ITERATIONS}; loss {}",
                engine.describe(),
                each * 1e3,
                each * DEFAULT_ITERATIONS as f64,
                losses.join(" ")
            );
        }
    }
    Ok(())
}

/// Styles the same frame on the CPU in f32 and says how far each timed output is from it: the
/// device's kernels and precisions against the reference path.
fn print_against_cpu(
    args: &Args,
    frame: &RgbImage,
    style_img: &RgbImage,
    outputs: &[Output],
) -> Result<(), String> {
    let cpu_args = Args {
        device: DeviceChoice::Cpu,
        batches: vec![1],
        frame: None,
        style: None,
        optimize: None,
        precisions: Vec::new(),
        ..*args
    };
    let engine = ready_engine(&cpu_args, Precision::F32)?;
    println!();
    for (name, source) in style_sources(style_img) {
        let style = engine
            .prepare(&source, &StyleParams::default(), Some(frame))
            .map_err(|e| e.to_string())?;
        let reference = engine
            .stylize(&style, std::slice::from_ref(frame))
            .map_err(|e| e.to_string())?;
        for (p, _, out) in outputs.iter().filter(|(_, n, _)| *n == name) {
            println!(
                "{name} {p:?} on {:?} vs F32 on the CPU: mean abs diff {:.2} levels of 255",
                args.device,
                mean_abs(&out[..1], &reference)
            );
        }
    }
    Ok(())
}

/// The networks timed: a preset, then the arbitrary network on `style_img`.
fn style_sources(style_img: &RgbImage) -> [(&'static str, StyleSource); 2] {
    [
        ("presets #7", StyleSource::Presets(vec![(7, 1.0)])),
        ("arbitrary", StyleSource::Image(style_img.clone())),
    ]
}

/// Builds the engine for one precision and says how long that took.
fn ready_engine(args: &Args, precision: Precision) -> Result<Engine, String> {
    let t = Instant::now();
    let engine = Engine::new(&EngineOptions {
        device: args.device,
        precision,
        threads: args.threads,
    })
    .map_err(|e| e.to_string())?;
    println!(
        "\n[{}] engine ready in {:.2} s",
        engine.describe(),
        t.elapsed().as_secs_f64()
    );
    Ok(engine)
}

/// Times each network on `frame` at each batch size (at least `frames` frames each); returns each
/// network's output at the first batch size.
fn time_styles(
    engine: &Engine,
    frame: &RgbImage,
    style_img: &RgbImage,
    (frames, batches): (usize, &[usize]),
) -> Result<Vec<(&'static str, Vec<RgbImage>)>, String> {
    let mut outputs = Vec::new();
    for (name, source) in style_sources(style_img) {
        let t = Instant::now();
        let style = engine
            .prepare(&source, &StyleParams::default(), Some(frame))
            .map_err(|e| e.to_string())?;
        let prep = t.elapsed().as_secs_f64();
        let mut first = None;
        for &batch in batches {
            let (timing, out) = time_frames(engine, &style, frame, (frames.max(batch), batch));
            println!(
                "  {name:11} batch {batch:2}  {:.4} s/frame  {:8.2} fps  (best {:.4} s; prepare {:.3} s)",
                timing.mean,
                1.0 / timing.mean,
                timing.min,
                prep
            );
            first.get_or_insert(out);
        }
        outputs.push((name, first.unwrap_or_default()));
    }
    Ok(outputs)
}

/// Times u8 → tensor and tensor → u8 on their own (they are inside the s/frame above).
fn time_conversion(engine: &Engine, frame: &RgbImage) -> Result<(), String> {
    let reps = 20;
    let batch = vec![frame.clone(); engine.preferred_batch()];
    let t = Instant::now();
    let mut x = engine.frames_to_tensor(&batch).map_err(|e| e.to_string())?;
    for _ in 1..reps {
        x = engine.frames_to_tensor(&batch).map_err(|e| e.to_string())?;
    }
    let to_tensor = t.elapsed().as_secs_f64() / (reps * batch.len()) as f64;
    let t = Instant::now();
    for _ in 0..reps {
        tensor_to_frames(&x).map_err(|e| e.to_string())?;
    }
    let to_u8 = t.elapsed().as_secs_f64() / (reps * batch.len()) as f64;
    println!(
        "  conversion  u8->tensor {:.2} ms/frame, tensor->u8 {:.2} ms/frame",
        to_tensor * 1e3,
        to_u8 * 1e3
    );
    Ok(())
}

/// How far each lower precision's output is from the f32 output of the same network.
fn print_drift(outputs: &[Output]) {
    let f32_out = |name: &str| {
        outputs
            .iter()
            .find(|(p, n, _)| *p == Precision::F32 && *n == name)
    };
    for (p, name, out) in outputs.iter().filter(|(p, _, _)| *p != Precision::F32) {
        if let Some((_, _, reference)) = f32_out(name) {
            println!(
                "\n{name} {p:?} vs F32: mean abs diff {:.2} levels of 255",
                mean_abs(out, reference)
            );
        }
    }
}

fn tch_version() -> String {
    std::env::var("LIBTORCH")
        .ok()
        .and_then(|p| p.rsplit('/').next().map(str::to_string))
        .unwrap_or_else(|| "(embedded rpath)".into())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("model_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
