//! The two binaries: `stylize` links no LibTorch and runs the commands that need none itself (a cloud run of a presets style, `runs`, `codecs`, `styles`); every command that runs a network goes to `stylize-torch` beside it.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cloud::*;
use common::*;

/// The shared libraries `binary` asks the loader for (its ELF `NEEDED` entries).
fn needed_libraries(binary: &str) -> Vec<String> {
    let out = Command::new("readelf")
        .args(["-d", binary])
        .output()
        .expect("run readelf (binutils)");
    assert!(out.status.success(), "readelf -d {binary} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split('[').nth(1)?.trim_end_matches(']').to_owned()))
        .collect()
}

fn is_libtorch(library: &str) -> bool {
    library.starts_with("libtorch") || library.starts_with("libc10")
}

#[test]
fn stylize_needs_no_libtorch_and_stylize_torch_does() {
    let light = needed_libraries(env!("CARGO_BIN_EXE_stylize"));
    assert!(
        light.iter().any(|l| l.starts_with("libavcodec")),
        "stylize decodes and cuts videos itself: {light:?}"
    );
    assert!(
        !light.iter().any(|l| is_libtorch(l)),
        "stylize loads LibTorch ({light:?}), and with it ~0.2 s of static initialisers at every \
         start: something reachable from `run_without_torch` calls LibTorch (rust-lld's \
         --gc-sections leaves LibTorch out only when no live code refers to it)"
    );
    let torch = needed_libraries(env!("CARGO_BIN_EXE_stylize-torch"));
    assert!(
        torch.iter().any(|l| l.starts_with("libtorch_cpu")),
        "{torch:?}"
    );
}

/// `stylize` copied alone into `dir`, without `stylize-torch` beside it.
fn lone_stylize(dir: &Path) -> PathBuf {
    let lone = dir.join("stylize");
    std::fs::copy(env!("CARGO_BIN_EXE_stylize"), &lone).unwrap();
    lone
}

fn run_binary(binary: &Path, args: &[&str]) -> (i32, String, String) {
    decode(Command::new(binary).args(args).output().unwrap())
}

#[test]
fn stylize_alone_lists_and_refuses_what_needs_the_network_by_name() {
    let dir = tempdir();
    let lone = lone_stylize(dir.path());
    let (code, codecs, stderr) = run_binary(&lone, &["codecs"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(codecs.contains("libx264"), "{codecs}");
    let (code, styles, stderr) = run_binary(&lone, &["styles", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&styles).unwrap()[3]["index"],
        3
    );

    let input = scene_clip(dir.path(), "clip.mp4", "64x48", "25", 4, &[], &[]);
    let output = dir.path().join("styled.mp4");
    let (code, _, stderr) = run_binary(
        &lone,
        &[
            input.to_str().unwrap(),
            "--style",
            "preset:3",
            "-o",
            output.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    let torch = dir.path().join("stylize-torch");
    assert!(
        stderr.starts_with(&format!("error: {}: ", torch.display()))
            && stderr.contains("install the two binaries side by side")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(!output.exists());

    // The same binaries, side by side, run everything: stylize-torch directly too.
    let (code, torch_codecs, stderr) = decode(
        Command::new(env!("CARGO_BIN_EXE_stylize-torch"))
            .arg("codecs")
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(torch_codecs, codecs);
}

/// A cloud run of a presets style is coordinated by `stylize` alone, start to end; a picture's
/// style, which the coordinator turns into values with the network, is handed to
/// `stylize-torch` (here missing, so refused by name).
#[test]
fn stylize_alone_coordinates_a_presets_cloud_run() {
    let dir = tempdir();
    let lone = lone_stylize(dir.path());
    let spec = format!("dir:{}", dir.path().join("storage").display());
    let input = scene_clip(dir.path(), "clip.mp4", "64x48", "25", 10, &[], &[]);
    let output = dir.path().join("styled.mp4");
    let coordinate = |more: &[&str]| {
        let mut args = vec![
            input.to_str().unwrap(),
            "--style",
            "preset:3",
            "--cloud",
            &spec,
            "--frames-per-job",
            "5",
            "-o",
            output.to_str().unwrap(),
        ];
        args.extend_from_slice(more);
        run_binary(&lone, &args)
    };
    let (code, _, stderr) = coordinate(&["--no-wait"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("submitted (2 jobs queued)"), "{stderr}");

    let w = worker(
        &spec,
        "w0",
        &["--test-stylizer-ms", "1", "--idle-exit", "1"],
    );
    let (code, _, stderr) = coordinate(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("2 jobs on 1 worker"), "{stderr}");
    assert_eq!(decoded_frame_count(&output), 10);
    let (code, log) = w.wait();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("processed 10 frames"), "{log}");

    let picture = dir.path().join("picture.png");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=32x32",
        "-frames:v",
        "1",
        picture.to_str().unwrap(),
    ]);
    let other = dir.path().join("other.mp4");
    let (code, _, stderr) = run_binary(
        &lone,
        &[
            input.to_str().unwrap(),
            "--style",
            picture.to_str().unwrap(),
            "--cloud",
            &spec,
            "-o",
            other.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("stylize-torch"), "{stderr}");
    assert!(!other.exists());
}
