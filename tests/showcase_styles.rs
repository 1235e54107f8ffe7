//! `stylize styles`: the named list, the labelled sheet of every preset, thumbnails, and the shipped ones.
mod common;

use common::showcase::*;
use common::*;

#[test]
fn lists_every_preset_by_index_and_name() {
    let (code, stdout, stderr) = run(&["styles"]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 26);
    for (i, line) in lines.iter().enumerate() {
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), Some(format!("preset:{i}").as_str()), "{line}");
        let name = words.next().expect("a name");
        assert!(
            !name.starts_with("preset"),
            "preset {i} still has a placeholder name: {line}"
        );
        assert!(words.count() >= 3, "preset {i} has no description: {line}");
    }
}

/// A reader that goes away (`stylize styles --json | head -c 0`) ends the listing quietly: exit 0,
/// nothing on stderr (it used to be a panic about a broken pipe).
#[test]
fn a_closed_pipe_ends_the_listing_quietly() {
    let mut child = stylize()
        .args(["styles", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reading end closes before anything is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn sheet_paints_a_picture_in_every_preset_with_thumbnails() {
    let dir = tempdir();
    let picture = dir.path().join("photo.png");
    let clip = scene_clip(dir.path(), "c.mp4", "300x200", "25", 3, &[], &[]);
    let (w, h, rgb) = frame_rgb(&clip, 1);
    image::RgbImage::from_raw(w, h, rgb)
        .unwrap()
        .save(&picture)
        .unwrap();
    let sheet = dir.path().join("sheet.png");
    let thumbs = dir.path().join("thumbs");
    let args = [
        "styles",
        "--sheet",
        picture.to_str().unwrap(),
        "-o",
        sheet.to_str().unwrap(),
        "--size",
        "240",
    ];
    let (code, stdout, stderr) =
        run(&[&args[..], &["--thumbs", thumbs.to_str().unwrap()]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(sheet.to_str().unwrap()),
        "says where the sheet went: {stdout}"
    );

    let png = read_sheet(&sheet);
    png.assert_grid(27, 7, 300.0 / 200.0);
    assert_eq!(png.tiles()[0]["role"], "original");
    let original = png.tile(0);
    for i in 1..27 {
        assert_eq!(png.tiles()[i]["role"], format!("preset:{}", i - 1));
        let tile = png.tile(i);
        assert!(
            tile_diff(&tile, &original) > 10.0,
            "preset {} looks like the original",
            i - 1
        );
        if i > 1 {
            assert!(
                tile_diff(&tile, &png.tile(i - 1)) > 5.0,
                "presets {} and {} look alike",
                i - 2,
                i - 1
            );
        }
    }

    let names: Vec<String> = std::fs::read_dir(&thumbs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 26);
    for entry in std::fs::read_dir(&thumbs).unwrap() {
        let path = entry.unwrap().path();
        assert!(
            std::fs::metadata(&path).unwrap().len() < 20_000,
            "{} is too big",
            path.display()
        );
        let img = image::open(&path).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            (160, 107),
            "{}",
            path.display()
        );
    }

    // Never over an existing file without --overwrite; with it, fine.
    let (code, _, stderr) = run(&args);
    assert_ne!(code, 0);
    assert!(
        stderr.trim().lines().count() == 1 && stderr.contains("already exists (add --overwrite"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&[&args[..], &["--overwrite"]].concat());
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn sheet_accepts_a_video_and_refuses_bad_input() {
    let dir = tempdir();
    let clip = scene_clip(dir.path(), "clip.mp4", "160x90", "25", 12, &[], &[]);
    let (code, stdout, stderr) =
        run(&["styles", "--sheet", clip.to_str().unwrap(), "--size", "96"]);
    assert_eq!(code, 0, "{stderr}");
    let sheet = dir.path().join("clip.styles.png");
    assert!(
        stdout.contains(sheet.to_str().unwrap()),
        "default name beside the input: {stdout}"
    );
    read_sheet(&sheet).assert_grid(27, 7, 16.0 / 9.0);

    // A picture that is already a PNG: the sheet must not be written over it, even when asked to.
    let picture = dir.path().join("photo.png");
    std::fs::copy(&sheet, &picture).unwrap();
    let picture_bytes = std::fs::read(&picture).unwrap();
    for (args, expect) in [
        (
            vec![
                "styles",
                "--sheet",
                picture.to_str().unwrap(),
                "-o",
                picture.to_str().unwrap(),
                "--overwrite",
            ],
            "would replace its own source",
        ),
        (vec!["styles", "--sheet", "missing.jpg"], "no such file"),
        (
            vec!["styles", "--sheet", clip.to_str().unwrap(), "-o", "x.jpg"],
            "name the file .png",
        ),
        (
            vec!["styles", "--sheet", clip.to_str().unwrap(), "--size", "8"],
            "out of range",
        ),
    ] {
        let (code, _, stderr) = run(&args);
        assert_ne!(code, 0, "{args:?}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
    assert_eq!(
        std::fs::read(&picture).unwrap(),
        picture_bytes,
        "the picture is untouched"
    );
}

#[test]
fn shipped_thumbnails_match_the_catalogue() {
    let (_, stdout, _) = run(&["styles", "--json"]);
    let presets: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("styles/thumbs");
    for p in presets.as_array().unwrap() {
        let path = dir.join(format!(
            "{:02}-{}.jpg",
            p["index"].as_u64().unwrap(),
            p["name"].as_str().unwrap()
        ));
        let len = std::fs::metadata(&path)
            .unwrap_or_else(|_| panic!("{} missing", path.display()))
            .len();
        assert!(len < 20_000, "{} is {len} bytes", path.display());
    }
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        26,
        "no stray thumbnails"
    );
}
