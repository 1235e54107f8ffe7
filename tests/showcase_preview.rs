//! `stylize preview`: a before/after sheet of a few moments at several strengths, and its rules.
mod common;

use common::showcase::*;
use common::*;

#[test]
fn preview_shows_moments_at_several_strengths() {
    let dir = tempfile::tempdir().unwrap();
    let clip = scene_clip(dir.path(), "clip.mp4", "256x144", "25", 50, &[], &[]);
    let style = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/swirls.jpg");
    let (code, stdout, stderr) =
        run(&["preview", clip.to_str().unwrap(), "--style", style, "--strength", "0.3,0.7", "--strength", "1", "--frames", "3"]);
    assert_eq!(code, 0, "{stderr}");
    let sheet = dir.path().join("clip.preview.png");
    assert!(stdout.contains(sheet.to_str().unwrap()), "says where the sheet went: {stdout}");

    // Three moments across, the originals then one row per strength.
    let png = read_sheet(&sheet);
    png.assert_grid(12, 3, 256.0 / 144.0);
    for c in 0..3 {
        let original = png.tile(c);
        let rows: Vec<_> = (1..4).map(|r| png.tile(r * 3 + c)).collect();
        let weak = tile_diff(&rows[0], &original);
        let full = tile_diff(&rows[2], &original);
        assert!(weak > 3.0, "moment {c}: strength 0.3 changed nothing ({weak:.1})");
        assert!(full > weak + 3.0, "moment {c}: strength 1 ({full:.1}) should depart more than 0.3 ({weak:.1})");
        assert!(tile_diff(&rows[0], &rows[1]) > 2.0 && tile_diff(&rows[1], &rows[2]) > 2.0, "moment {c}: strengths alike");
        if c > 0 {
            assert!(tile_diff(&original, &png.tile(c - 1)) > 2.0, "moments {c} and {} are the same frame", c - 1);
            assert!(tile_diff(&rows[2], &png.tile(9 + c - 1)) > 2.0, "styled moments {c} and {} alike", c - 1);
        }
    }
    let labels: Vec<String> = png.tiles().iter().map(|t| t["label"].as_str().unwrap().to_string()).collect();
    assert!(labels[3].starts_with("strength 0.3"), "{labels:?}");

    // The sheet is not replaced without --overwrite.
    let (code, _, stderr) = run(&["preview", clip.to_str().unwrap(), "--style", "preset:1"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("already exists (add --overwrite"), "{stderr}");
}

#[test]
fn preview_with_a_preset_and_a_chosen_name() {
    let dir = tempfile::tempdir().unwrap();
    let clip = scene_clip(dir.path(), "clip.mp4", "160x120", "25", 20, &[], &[]);
    let sheet = dir.path().join("look.png");
    let (code, _, stderr) =
        run(&["preview", clip.to_str().unwrap(), "--style", "preset:7", "-o", sheet.to_str().unwrap(), "--frames", "2"]);
    assert_eq!(code, 0, "{stderr}");
    let png = read_sheet(&sheet);
    png.assert_grid(4, 2, 160.0 / 120.0);
    assert!(tile_diff(&png.tile(0), &png.tile(2)) > 12.0);
    assert_eq!(png.tiles()[2]["role"], "styled");
}

#[test]
fn preview_refuses_bad_input_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let clip = scene_clip(dir.path(), "clip.mp4", "64x64", "25", 5, &[], &[]);
    let c = clip.to_str().unwrap();
    for (args, expect) in [
        (vec!["preview", c, "--style", "preset:1", "--strength", "1.5"], "out of range"),
        (vec!["preview", c, "--style", "preset:1", "--frames", "0"], "out of range"),
        (vec!["preview", "missing.mp4", "--style", "preset:1"], "no such file"),
        (vec!["preview", c, "--style", "nope"], "unknown style"),
        (vec!["preview", c, "--style", "preset:1", "-o", "x.gif"], "name the file .png"),
    ] {
        let (code, _, stderr) = run(&args);
        assert_ne!(code, 0, "{args:?}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}
