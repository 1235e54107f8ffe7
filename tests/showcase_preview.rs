//! `stylize preview`: a before/after sheet of a few moments at several strengths, and its rules.
mod common;

use common::showcase::*;
use common::*;

#[test]
fn preview_shows_moments_at_several_strengths() {
    let dir = tempdir();
    let clip = scene_clip(dir.path(), "clip.mp4", "256x144", "25", 50, &[], &[]);
    let style = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/swirls.jpg");
    let (code, stdout, stderr) = run(&[
        "preview",
        clip.to_str().unwrap(),
        "--style",
        style,
        "--strength",
        "0.3,0.7",
        "--strength",
        "1",
        "--frames",
        "3",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let sheet = dir.path().join("clip.preview.png");
    assert!(
        stdout.contains(sheet.to_str().unwrap()),
        "says where the sheet went: {stdout}"
    );

    // Three moments across, the originals then one row per strength.
    let png = read_sheet(&sheet);
    png.assert_grid(12, 3, 256.0 / 144.0);
    for c in 0..3 {
        let original = png.tile(c);
        let rows: Vec<_> = (1..4).map(|r| png.tile(r * 3 + c)).collect();
        let weak = tile_diff(&rows[0], &original);
        let full = tile_diff(&rows[2], &original);
        assert!(
            weak > 3.0,
            "moment {c}: strength 0.3 changed nothing ({weak:.1})"
        );
        assert!(
            full > weak + 3.0,
            "moment {c}: strength 1 ({full:.1}) should depart more than 0.3 ({weak:.1})"
        );
        assert!(
            tile_diff(&rows[0], &rows[1]) > 2.0 && tile_diff(&rows[1], &rows[2]) > 2.0,
            "moment {c}: strengths alike"
        );
        if c > 0 {
            assert!(
                tile_diff(&original, &png.tile(c - 1)) > 2.0,
                "moments {c} and {} are the same frame",
                c - 1
            );
            assert!(
                tile_diff(&rows[2], &png.tile(9 + c - 1)) > 2.0,
                "styled moments {c} and {} alike",
                c - 1
            );
        }
    }
    let labels: Vec<String> = png
        .tiles()
        .iter()
        .map(|t| t["label"].as_str().unwrap().to_string())
        .collect();
    assert!(labels[3].starts_with("strength 0.3"), "{labels:?}");

    // The sheet is not replaced without --overwrite.
    let (code, _, stderr) = run(&["preview", clip.to_str().unwrap(), "--style", "preset:1"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("already exists (add --overwrite"),
        "{stderr}"
    );
    // Nor is the style picture, even with --overwrite.
    let style = dir.path().join("look.png");
    std::fs::copy(&sheet, &style).unwrap();
    let style_bytes = std::fs::read(&style).unwrap();
    let style_arg = style.to_str().unwrap();
    let (code, _, stderr) = run(&[
        "preview",
        clip.to_str().unwrap(),
        "--style",
        style_arg,
        "-o",
        style_arg,
        "--overwrite",
    ]);
    assert_ne!(code, 0);
    assert!(
        stderr.trim().lines().count() == 1 && stderr.contains("would replace its own source"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&style).unwrap(), style_bytes);
}

#[test]
fn preview_with_a_preset_and_a_chosen_name() {
    let dir = tempdir();
    let clip = scene_clip(dir.path(), "clip.mp4", "160x120", "25", 20, &[], &[]);
    let sheet = dir.path().join("look.png");
    let (code, _, stderr) = run(&[
        "preview",
        clip.to_str().unwrap(),
        "--style",
        "preset:7",
        "-o",
        sheet.to_str().unwrap(),
        "--frames",
        "2",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let png = read_sheet(&sheet);
    png.assert_grid(4, 2, 160.0 / 120.0);
    assert!(tile_diff(&png.tile(0), &png.tile(2)) > 12.0);
    assert_eq!(png.tiles()[2]["role"], "styled");
}

#[test]
fn preview_refuses_bad_input_in_one_line() {
    let dir = tempdir();
    let clip = scene_clip(dir.path(), "clip.mp4", "64x64", "25", 5, &[], &[]);
    let c = clip.to_str().unwrap();
    for (args, expect) in [
        (
            vec!["preview", c, "--style", "preset:1", "--strength", "1.5"],
            "out of range",
        ),
        (
            vec!["preview", c, "--style", "preset:1", "--frames", "0"],
            "out of range",
        ),
        (
            vec!["preview", "missing.mp4", "--style", "preset:1"],
            "no such file",
        ),
        (vec!["preview", c, "--style", "nope"], "unknown style"),
        (
            vec!["preview", c, "--style", "preset:1", "-o", "x.gif"],
            "name the file .png",
        ),
    ] {
        let (code, _, stderr) = run(&args);
        assert_ne!(code, 0, "{args:?}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}

#[test]
fn preview_of_a_rotated_video_shows_it_upright() {
    let dir = tempdir();
    // 200×120 coded, shown 120×200.
    let clip = rotated_clip(dir.path(), "rot.mp4", "200x120", 20);
    let (code, _, stderr) = run(&[
        "preview",
        clip.to_str().unwrap(),
        "--style",
        "preset:7",
        "--frames",
        "2",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let png = read_sheet(&dir.path().join("rot.preview.png"));
    png.assert_grid(4, 2, 120.0 / 200.0);
    // spread(20, 2) picks frames 5 and 15; each original tile is that frame as displayed.
    for (column, n) in [(0, 5), (1, 15)] {
        let (tw, th, tile) = png.tile(column);
        let (w, h, frame) = displayed_frame_rgb(&clip, n);
        let upright = resized(w, h, frame.clone(), tw, th);
        let upside_down = resized(
            w,
            h,
            frame.chunks_exact(3).rev().flatten().copied().collect(),
            tw,
            th,
        );
        let (good, bad) = (
            mean_abs_diff(&tile, &upright),
            mean_abs_diff(&tile, &upside_down),
        );
        assert!(
            good < 4.0 && good < bad / 3.0,
            "moment {column}: tile is not the displayed frame ({good:.1} vs {bad:.1})"
        );
    }
}

#[test]
fn preview_seeks_to_exactly_the_picked_frames() {
    let dir = tempdir();
    // Every frame its own flat colour (from its number), keyframes every 2 s: the picks lie
    // inside groups of pictures, so a seek that stopped at the keyframe would show.
    let source =
        "color=c=black:s=64x48:r=25:d=25,geq=r='mod(N*7,256)':g='mod(N*13,256)':b='mod(N*29,256)'";
    let clip = dir.path().join("numbered.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        source,
        "-c:v",
        "libx264",
        "-g",
        "50",
        "-pix_fmt",
        "yuv420p",
        clip.to_str().unwrap(),
    ]);
    let (code, _, stderr) = run(&[
        "preview",
        clip.to_str().unwrap(),
        "--style",
        "preset:1",
        "--frames",
        "4",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let png = read_sheet(&dir.path().join("numbered.preview.png"));
    png.assert_grid(8, 4, 64.0 / 48.0);
    let colour = |n: u64| {
        [
            (n * 7 % 256) as f64,
            (n * 13 % 256) as f64,
            (n * 29 % 256) as f64,
        ]
    };
    // 625 frames in four stretches: the middles.
    for (column, want) in [78u64, 234, 390, 546].into_iter().enumerate() {
        let (w, h, tile) = png.tile(column);
        let centre = ((h / 2 * w + w / 2) * 3) as usize;
        let got = [
            tile[centre] as f64,
            tile[centre + 1] as f64,
            tile[centre + 2] as f64,
        ];
        let distance = |n: u64| {
            colour(n)
                .iter()
                .zip(&got)
                .map(|(a, b)| (a - b).abs())
                .sum::<f64>()
        };
        // Colours repeat every 256 frames; a keyframe interval either side is the room for mistakes.
        let nearest = (want - 60..want + 60)
            .min_by(|&a, &b| distance(a).total_cmp(&distance(b)))
            .unwrap();
        assert_eq!(
            nearest, want,
            "moment {column}: shows frame {nearest} (colour {got:?})"
        );
    }
    assert!(
        png.tiles()[0]["label"]
            .as_str()
            .unwrap()
            .ends_with("0:03.1"),
        "{}",
        png.tiles()[0]["label"]
    );
}
