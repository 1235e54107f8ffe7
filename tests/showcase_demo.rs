//! `stylize demo` on the bundled sample (offline) and through a local HTTP server: the one-line
//! fallback message, the three outputs (styled video, side-by-side video, contact sheet), a
//! resumed download, and the refusal to overwrite.
mod common;

use std::path::{Path, PathBuf};

use common::showcase::*;
use common::*;

/// An address that refuses connections at once, standing in for the unreachable reference URL.
const DEAD_URL: &str = "http://127.0.0.1:9/videos/orangutan.mp4";

fn run_demo(cache: &Path, args: &[&str]) -> (i32, String, String) {
    let out = stylize()
        .env("STYLIZE_CACHE", cache)
        .arg("demo")
        .args(args)
        .output()
        .expect("run stylize demo");
    decode(out)
}

/// A private cache that shares the (slow to make) bundled sample with every other test.
fn cache_with_shared_sample(dir: &Path) -> PathBuf {
    let sample_dir = bundled_sample().parent().unwrap().to_path_buf();
    let cache = dir.join("cache");
    std::fs::create_dir_all(cache.join("demo")).unwrap();
    std::os::unix::fs::symlink(
        &sample_dir,
        cache.join("demo").join(sample_dir.file_name().unwrap()),
    )
    .unwrap();
    cache
}

fn frame_count(probe: &serde_json::Value) -> u64 {
    video_stream(probe)["nb_read_frames"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn bundled_sample_has_the_reference_shape() {
    let sample = bundled_sample();
    let probe = probe_json(&sample);
    let v = video_stream(&probe);
    assert_eq!(
        (v["codec_name"].as_str(), v["profile"].as_str()),
        (Some("h264"), Some("High"))
    );
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(720), Some(720))
    );
    assert_eq!(v["r_frame_rate"], "30/1");
    assert_eq!(frame_count(&probe), 823);
    let audio = audio_streams(&probe);
    assert_eq!(audio.len(), 1);
    assert_eq!(
        (
            audio[0]["codec_name"].as_str(),
            audio[0]["profile"].as_str()
        ),
        (Some("aac"), Some("LC"))
    );
    assert_eq!(
        (
            audio[0]["sample_rate"].as_str(),
            audio[0]["channels"].as_u64()
        ),
        (Some("48000"), Some(1))
    );
    let duration = num(&probe["format"]["duration"]);
    assert!((duration - 27.43).abs() < 0.05, "duration {duration}");
}

#[test]
fn offline_demo_falls_back_to_the_bundled_sample_and_writes_three_files() {
    let dir = tempdir();
    let cache = cache_with_shared_sample(dir.path());
    let out = dir.path().join("out");
    let out_s = out.to_str().unwrap();
    let (code, stdout, stderr) = run_demo(
        &cache,
        &["--url", DEAD_URL, "--frames", "24", "--out-dir", out_s],
    );
    assert_eq!(code, 0, "stderr: {stderr}");

    // Exactly one line says the address could not be reached and what happens instead.
    let notes: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("orangutan.mp4"))
        .collect();
    assert_eq!(notes.len(), 1, "stderr: {stderr}");
    assert!(
        notes[0].starts_with("orangutan.mp4 unreachable ("),
        "{}",
        notes[0]
    );
    assert!(
        notes[0].ends_with("); using the bundled sample instead"),
        "{}",
        notes[0]
    );

    // The summary counts the frames really styled.
    assert!(stderr.contains(": 24 frames in "), "stderr: {stderr}");

    let styled = out.join("stylize-sample.styled.mp4");
    let side = out.join("stylize-sample.styled.compare.mp4");
    let sheet = out.join("stylize-sample.styled.sheet.png");
    for path in [&styled, &side, &sheet] {
        assert!(path.exists(), "{} missing", path.display());
        assert!(
            stdout.contains(path.to_str().unwrap()),
            "stdout names {}: {stdout}",
            path.display()
        );
    }

    // Both videos: the clip's frame count and rate, the right sizes, the audio copied untouched.
    let clip = bundled_sample()
        .parent()
        .unwrap()
        .join("first-24")
        .join("stylize-sample.mp4");
    let (ps, pc) = (probe_json(&styled), probe_json(&side));
    assert_eq!(frame_count(&ps), 24);
    assert_eq!(frame_count(&pc), 24);
    assert_eq!(
        (
            video_stream(&ps)["width"].as_u64(),
            video_stream(&ps)["height"].as_u64()
        ),
        (Some(720), Some(720))
    );
    assert_eq!(
        (
            video_stream(&pc)["width"].as_u64(),
            video_stream(&pc)["height"].as_u64()
        ),
        (Some(1440), Some(720))
    );
    assert_eq!(video_stream(&pc)["r_frame_rate"], "30/1");
    let source_audio = audio_md5(&clip, 0);
    assert_eq!(audio_md5(&styled, 0), source_audio, "styled video audio");
    assert_eq!(audio_md5(&side, 0), source_audio, "side-by-side audio");

    // Left half of the side-by-side is the original, right half the styled frame.
    let (w, _, wide) = frame_rgb(&side, 10);
    let (_, _, original) = frame_rgb(&clip, 10);
    let (_, _, painted) = frame_rgb(&styled, 10);
    assert_side_by_side(w, &wide, &original, &painted, "frame 10");
    assert!(
        mean_abs_diff(&original, &painted) > 12.0,
        "styled frame barely differs"
    );

    // The contact sheet: originals on the first row, styled frames below, six moments.
    let png = read_sheet(&sheet);
    png.assert_grid(12, 6, 1.0);
    for c in 0..6 {
        let (orig, styl) = (png.tile(c), png.tile(6 + c));
        assert_eq!(png.tiles()[c]["role"], "original");
        assert_eq!(png.tiles()[6 + c]["role"], "styled");
        assert!(
            tile_diff(&orig, &styl) > 12.0,
            "moment {c}: styled tile looks like the original"
        );
        if c > 0 {
            // Different moments: the scene moves, so neighbours are never the same picture.
            assert!(
                tile_diff(&styl, &png.tile(6 + c - 1)) > 0.5,
                "styled tiles {c} and {} are the same",
                c - 1
            );
            assert!(
                tile_diff(&orig, &png.tile(c - 1)) > 0.5,
                "original tiles {c} and {} are the same",
                c - 1
            );
        }
    }

    // A second run refuses to replace anything, says so in one line, and leaves the files alone.
    let before = std::fs::metadata(&styled).unwrap().modified().unwrap();
    let (code, _, stderr) = run_demo(&cache, &["--offline", "--frames", "24", "--out-dir", out_s]);
    assert_ne!(code, 0);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "stderr: {stderr}");
    assert!(
        errors[0].contains("already exists (add --overwrite"),
        "{}",
        errors[0]
    );
    assert_eq!(
        std::fs::metadata(&styled).unwrap().modified().unwrap(),
        before
    );
}

#[test]
fn interrupted_download_resumes_then_a_differing_clip_is_styled_with_a_note() {
    let dir = tempdir();
    let cache = cache_with_shared_sample(dir.path());
    let clip = scene_clip(
        dir.path(),
        "clip.mp4",
        "160x120",
        "25",
        10,
        &["sine=f=330:sample_rate=44100"],
        &["-ac", "2"],
    );
    let body = std::fs::read(&clip).unwrap();
    let (url, server) = serve(body.clone(), 2, 1, "served.mp4");

    // First try: the transfer drops half way; the demo says so in one line and carries on offline.
    let (code, stdout, stderr) = run_demo(&cache, &["--url", &url, "--print-input"]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let notes: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("served.mp4"))
        .collect();
    assert_eq!(notes.len(), 1, "stderr: {stderr}");
    assert!(
        notes[0].contains("download stopped after")
            && notes[0].ends_with("using the bundled sample instead"),
        "{}",
        notes[0]
    );
    let printed = PathBuf::from(stdout.trim()).canonicalize().unwrap();
    assert_eq!(
        printed,
        bundled_sample().canonicalize().unwrap(),
        "falls back to the bundled sample"
    );
    assert!(
        cache.join("demo/served.mp4.part").exists(),
        "the partial download is kept for resuming"
    );

    // Second try: resumes from where it stopped (Range + If-Range), completes, and styles the clip.
    let out = dir.path().join("out");
    let (code, stdout, stderr) = run_demo(
        &cache,
        &[
            "--url",
            &url,
            "--out-dir",
            out.to_str().unwrap(),
            "--style",
            "preset:2",
        ],
    );
    assert_eq!(code, 0, "stderr: {stderr}");
    let requests = server.join().unwrap();
    assert_eq!(requests[0].range, None);
    assert_eq!(
        requests[1].range,
        Some((body.len() / 2) as u64),
        "second request resumes: {requests:?}"
    );
    assert_eq!(requests[1].if_range.as_deref(), Some("\"v1\""));
    let cached = cache.join("demo/served.mp4");
    assert_eq!(
        std::fs::read(&cached).unwrap(),
        body,
        "downloaded file is complete and intact"
    );
    assert!(!cache.join("demo/served.mp4.part").exists());
    assert!(
        stderr.contains("note: served.mp4 differs from the reference clip (160×120, not 720×720"),
        "stderr: {stderr}"
    );

    let styled = out.join("served.styled.mp4");
    let side = out.join("served.styled.compare.mp4");
    let sheet = out.join("served.styled.sheet.png");
    assert!(stdout.contains(sheet.to_str().unwrap()));
    assert_eq!(frame_count(&probe_json(&styled)), 10);
    assert_eq!(frame_count(&probe_json(&side)), 10);
    assert_eq!(audio_md5(&side, 0), audio_md5(&clip, 0));
    let png = read_sheet(&sheet);
    png.assert_grid(12, 6, 160.0 / 120.0);

    // Third run uses the cache: no server is listening any more.
    let (code, _, stderr) = run_demo(&cache, &["--url", &url, "--print-input"]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stderr.contains("(cached)"), "stderr: {stderr}");
}

#[test]
fn bad_demo_arguments_fail_in_one_line() {
    for (args, expect) in [
        (vec!["demo", "--frames", "0"], "--frames must be at least 1"),
        (vec!["demo", "--style", "no-such-style"], "unknown style"),
        (vec!["demo", "--strength", "2"], "out of range"),
    ] {
        let out = stylize_cached().args(&args).output().unwrap();
        let (code, _, stderr) = decode(out);
        assert_ne!(code, 0, "{args:?}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}

#[test]
fn ctrl_c_during_the_download_stops_the_demo_instead_of_falling_back() {
    use std::io::{Read, Write};
    let dir = tempdir();
    let cache = cache_with_shared_sample(dir.path());
    // A server that trickles a large body, so the download is still running when Ctrl-C comes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/videos/slow.mp4", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        let total = 50_000_000;
        let header = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nContent-Type: video/mp4\r\n\r\n"
        );
        if stream.write_all(header.as_bytes()).is_err() {
            return;
        }
        for _ in 0..1000 {
            if stream.write_all(&[0u8; 4096]).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    let out = dir.path().join("out");
    let mut child = stylize()
        .env("STYLIZE_CACHE", &cache)
        .args(["demo", "--url", &url, "--out-dir", out.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let sent = std::time::Instant::now();
    send_sigint(child.id());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        sent.elapsed().as_secs_f64() < 3.0,
        "took {:?} to stop",
        sent.elapsed()
    );
    assert_ne!(status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("bundled sample") && stderr.contains("interrupted"),
        "{stderr}"
    );
    assert!(
        cache.join("demo/slow.mp4.part").exists(),
        "the partial download is kept for resuming"
    );
    assert!(!out.exists() || listing(&out).is_empty(), "nothing styled");
}
