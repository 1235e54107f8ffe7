//! `stylize demo`: reproduces the reference sample end to end — fetch (or make) the clip, style it, and
//! write the styled video, a side-by-side video and a contact sheet.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use stylize_media::{EncodeOptions, VideoInfo};

use stylize_core::cancel::cancelled;
use stylize_core::inputs::{RunConfig, VideoJob};
use stylize_core::look::{LoadedLook, LookConfig};
use stylize_core::output::OutputPlan;
use stylize_core::sheet::canvas::displayed;
use stylize_core::units::clock;
use stylize_core::{compare, files, frames};

use super::fetch::{self, Origin};
use super::{preview, sample};
use crate::cli::{CloudArgs, DemoArgs};
use crate::config::{encode_options, look_config};
use crate::progress::Progress;

/// The demo's style when none is given: a preset, so the demo needs no picture of its own.
pub const DEFAULT_STYLE: &str = "starry-blue";
/// Moments shown on the contact sheet.
const SHEET_MOMENTS: usize = 6;

/// What the reference clip is (and what the bundled sample copies).
const REFERENCE_SHAPE: &str = "720×720, 30 fps, 823 frames, H.264 + AAC 48 kHz mono";

/// Where the demo's frames get styled. Either way the styled video ends at `plan` and the
/// side-by-side video at `side` (both with the clip's audio); the contact sheet is then made from
/// the files alone, whatever styled them.
enum Backend<'a> {
    Local,
    /// The cloud fan-out: frames through storage, styled by `stylize worker` processes.
    Cloud(&'a CloudArgs),
}

pub fn run(args: &DemoArgs) -> Result<()> {
    if args.frames == Some(0) {
        bail!("--frames must be at least 1");
    }
    if args.cloud.no_wait {
        bail!("--no-wait does not fit the demo, which needs the styled video for its side-by-side video and sheet");
    }
    let backend = match &args.cloud.cloud {
        Some(_) => Backend::Cloud(&args.cloud),
        None => Backend::Local,
    };
    let mut look_args = args.look.clone();
    look_args
        .style
        .get_or_insert_with(|| DEFAULT_STYLE.to_string());
    // Validated before anything is downloaded or made.
    let encode = encode_options(&args.encode)?;
    let look = look_config(&look_args)?;
    let cache = super::cache_dir();
    let say = |line: &str| {
        if !args.quiet {
            eprintln!("{line}");
        }
    };

    let clip = obtain_clip(args, &cache, &say)?;
    if args.print_input {
        println!("{}", clip.display());
        return Ok(());
    }
    let clip = match args.frames {
        Some(n) => first_frames(&clip, n)?,
        None => clip,
    };
    let info = stylize_media::probe(&clip)?;

    // Every output is checked before the long run, so a clash fails in a second, not after it.
    let _made = stylize_core::output::FolderIfMade::watch(&args.out_dir);
    let (plan, side, sheet_path) = plan_outputs(&clip, args, encode.codec)?;

    let progress = Progress::new(args.quiet);
    let style_label = look.label();
    let started = Instant::now();
    let (engine_description, frames_styled) = match backend {
        Backend::Local => style_locally(&look, &info, &plan, &side, &encode, &progress)?,
        Backend::Cloud(cloud) => style_in_the_cloud(&look, &info, &plan, &encode, args, cloud)?,
    };
    let elapsed = started.elapsed();
    progress.say(&format!(
        "styled {} with {style_label}: {frames_styled} frames in {} ({:.1} fps), {engine_description}",
        preview::file_name(&clip),
        clock(elapsed),
        frames_styled as f64 / elapsed.as_secs_f64().max(1e-9),
    ));

    // The videos are finished files by now: a failing sheet must not make them look lost.
    contact_sheet(
        &info,
        &plan.final_path,
        &style_label,
        elapsed,
        &engine_description,
    )
    .and_then(|sheet| files::write_new(&sheet_path, &sheet, args.overwrite))
    .with_context(|| {
        format!(
            "{} and {} were written, but not the contact sheet",
            plan.final_path.display(),
            side.final_path.display()
        )
    })?;
    println!("styled video:       {}", plan.final_path.display());
    println!("side-by-side video: {}", side.final_path.display());
    println!("contact sheet:      {}", sheet_path.display());
    Ok(())
}

/// The styled video, the side-by-side video and the contact sheet, each checked free.
fn plan_outputs(
    clip: &Path,
    args: &DemoArgs,
    codec: stylize_media::VideoCodec,
) -> Result<(OutputPlan, OutputPlan, PathBuf)> {
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("{}: cannot create output folder", args.out_dir.display()))?;
    let plan = OutputPlan::new(codec, clip, None, Some(&args.out_dir), args.overwrite, &[])?;
    let side = compare::plan_for(clip, &plan, std::slice::from_ref(&plan.final_path))?;
    let sheet_path = files::sibling(&plan.final_path, ".sheet.png");
    files::check_free(&sheet_path, args.overwrite)?;
    Ok((plan, side, sheet_path))
}

/// The local pipeline, with the side-by-side video written in the same pass. Returns the engine's
/// description and the frames really styled (the container's count can be an estimate).
fn style_locally(
    look: &LookConfig,
    info: &VideoInfo,
    plan: &OutputPlan,
    side: &OutputPlan,
    encode: &EncodeOptions,
    progress: &Progress,
) -> Result<(String, u64)> {
    let loaded = LoadedLook::load(look)?;
    let outcome =
        stylize_core::pipeline::style_video(&loaded, info, plan, Some(side), encode, progress)?;
    Ok((loaded.engine.describe(), outcome.frames))
}

/// The cloud path: the same coordinator as `stylize INPUT --cloud STORAGE --compare`, which writes
/// both videos as the workers' frames come back. Returns how it was styled and the frames written.
fn style_in_the_cloud(
    look: &LookConfig,
    info: &VideoInfo,
    plan: &OutputPlan,
    encode: &EncodeOptions,
    args: &DemoArgs,
    cloud: &CloudArgs,
) -> Result<(String, u64)> {
    let config = RunConfig {
        look: look.clone(),
        jobs: vec![VideoJob {
            input: info.path.clone(),
            plan: Ok(plan.clone()),
        }],
        encode: encode.clone(),
    };
    let options = crate::config::coordinator_options(cloud, true, crate::torch::network())?;
    let frames = crate::cloud::coordinate_one(config, &options, args.quiet)?;
    Ok(("cloud workers".to_string(), frames))
}

/// The reference clip when it can be had (cached or downloaded), else the bundled sample.
fn obtain_clip(args: &DemoArgs, cache: &Path, say: &dyn Fn(&str)) -> Result<PathBuf> {
    if !args.offline {
        let name = args
            .url
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty() && !n.contains('?'))
            .unwrap_or("reference.mp4");
        let dest = cache.join("demo").join(name);
        match fetch::fetch(&args.url, &dest, args.quiet) {
            Ok(origin) => {
                match stylize_media::probe(&dest) {
                    Ok(info) => {
                        let from = if origin == Origin::Cache {
                            "cached"
                        } else {
                            "downloaded"
                        };
                        say(&format!("using {} ({from})", dest.display()));
                        let differences = shape_differences(&info);
                        if !differences.is_empty() {
                            say(&format!(
                            "note: {name} differs from the reference clip ({}); styling it anyway",
                            differences.join(", ")
                        ));
                        }
                        return Ok(dest);
                    }
                    Err(e) => {
                        // Not a video (an error page saved as the clip?): drop it so the next run fetches again.
                        let _ = std::fs::remove_file(&dest);
                        say(&format!("{name} is not a readable video ({e}); using the bundled sample instead"));
                    }
                }
            }
            // Ctrl-C during the download stops the demo; it is not a reason to fall back.
            Err(_) if cancelled() => {
                bail!("interrupted; the partial download of {name} resumes on the next run")
            }
            Err(e) => say(&format!("{name} {e}; using the bundled sample instead")),
        }
    }
    sample::ensure(cache, args.quiet)
}

/// How a clip differs from [`REFERENCE_SHAPE`], one phrase per difference.
pub fn shape_differences(info: &VideoInfo) -> Vec<String> {
    let mut out = Vec::new();
    if (info.width, info.height) != (sample::WIDTH, sample::HEIGHT) {
        out.push(format!(
            "{}×{}, not {}×{}",
            info.width,
            info.height,
            sample::WIDTH,
            sample::HEIGHT
        ));
    }
    if info.frame_rate.num != sample::FPS as i32 * info.frame_rate.den {
        out.push(format!("{} fps, not {}", info.frame_rate, sample::FPS));
    }
    if info.frame_count != Some(sample::FRAMES) {
        let count = info
            .frame_count
            .map_or("an unknown number of".to_string(), |n| n.to_string());
        out.push(format!("{count} frames, not {}", sample::FRAMES));
    }
    if info.codec != "h264" {
        out.push(format!("{} video, not H.264", info.codec));
    }
    match info.audio.as_slice() {
        [a] if a.codec == "aac" && a.sample_rate == 48_000 && a.channels == 1 => {}
        [a] => out.push(format!(
            "{} {} Hz {}-channel audio, not AAC 48 kHz mono",
            a.codec, a.sample_rate, a.channels
        )),
        list => out.push(format!("{} audio streams, not 1", list.len())),
    }
    if !out.is_empty() {
        out.push(format!("expected {REFERENCE_SHAPE}"));
    }
    out
}

/// The first `n` frames of `clip` with their audio, cached beside it (quick runs and tests).
/// The video is re-encoded (fast, near-lossless) because cutting a stream with B-frames by
/// packet count would not give exactly the first `n` pictures.
fn first_frames(clip: &Path, n: u64) -> Result<PathBuf> {
    let info = stylize_media::probe(clip)?;
    if info.frame_count.is_some_and(|count| n >= count) {
        return Ok(clip.to_path_buf());
    }
    let dir = files::parent_of(clip).join(format!("first-{n}"));
    let path = dir.join(clip.file_name().expect("a clip file"));
    if stylize_media::probe(&path).is_ok_and(|i| i.frame_count == Some(n)) {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("{}: cannot create cache folder", dir.display()))?;
    let temp = dir.join(format!(".cut-{}.mp4", std::process::id()));
    let seconds = n as f64 / info.frame_rate.as_f64().max(1e-9);
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i"])
        .arg(clip)
        .args([
            "-map",
            "0:v:0",
            "-map",
            "0:a?",
            "-frames:v",
            &n.to_string(),
            "-t",
            &format!("{seconds:.6}"),
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "12",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "copy",
        ])
        .args(["-f", "mp4"])
        .arg(&temp)
        .output()
        .context("cannot run ffmpeg to cut the clip (is it installed?)")?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&temp);
        let reason = String::from_utf8_lossy(&output.stderr)
            .lines()
            .last()
            .unwrap_or("")
            .to_string();
        bail!(
            "ffmpeg could not cut the first {n} frames of {}: {reason}",
            clip.display()
        );
    }
    std::fs::rename(&temp, &path)
        .with_context(|| format!("{}: cannot store the cut clip", path.display()))?;
    Ok(path)
}

/// Originals on top, styled frames below, at moments spread through the clip; read back from the
/// files, so the sheet shows exactly what was written.
fn contact_sheet(
    info: &VideoInfo,
    styled_path: &Path,
    style_label: &str,
    elapsed: Duration,
    engine: &str,
) -> Result<Vec<u8>> {
    let styled_info = stylize_media::probe(styled_path)?;
    let picks = frames::spread(info.frame_count.unwrap_or(1), SHEET_MOMENTS);
    // Each file turned by its own display matrix, so the sheet shows both as a player would.
    let originals: Vec<_> = frames::grab(info, &picks)?
        .into_iter()
        .map(|(i, f)| (i, displayed(f, info.rotation_degrees)))
        .collect();
    let styled: Vec<_> = frames::grab(&styled_info, &picks)?
        .into_iter()
        .map(|(_, f)| displayed(f, styled_info.rotation_degrees))
        .collect();
    if styled.len() != originals.len() {
        bail!(
            "{}: fewer frames than the clip it was made from",
            styled_path.display()
        );
    }
    let sheet = preview::build_sheet(
        info,
        &format!(
            "stylize demo: {} with {style_label}",
            preview::file_name(&info.path)
        ),
        &format!(
            "{} · styled in {} on {engine}",
            preview::describe_video(info),
            clock(elapsed)
        ),
        &originals,
        &["styled".to_string()],
        vec![styled],
    );
    Ok(stylize_core::sheet::to_png(&sheet)?.0)
}
