//! Cloud mode end to end, every scenario against every storage backend: the real `stylize` binary
//! as coordinator and as several worker processes, on tiny clips (64×48) so the suite stays fast on
//! two cores.
//!
//! Each scenario is a function taking a [`Backend`]; `every_backend!` declares it once per backend,
//! as `dir::NAME` (`--cloud dir:PATH`, a fresh folder) and `azurite::NAME` (a real Azurite of its
//! own: fresh data folder, free loopback ports, killed by PID on drop; `STYLIZE_SKIP_AZURITE=1`
//! skips those). What only Azure has (keys, SAS, their errors) is in `cloud_azurite.rs`.
mod common;

use std::path::Path;
use std::time::Duration;

use common::cloud::*;
use common::*;
use stylize_cloud::{Bytes, DoneMarker};

/// Declares each scenario once per backend and transport: `dir::NAME` and `azurite::NAME` with
/// segments (the default), `dir_frames::NAME` and `azurite_frames::NAME` with `--transport frames`
/// (through `STYLIZE_TRANSPORT`, which every coordinator the scenario starts inherits).
macro_rules! every_backend {
    ($($name:ident),* $(,)?) => {
        every_backend!(@each dir, dir, "segments"; $($name),*);
        every_backend!(@each azurite, azurite, "segments"; $($name),*);
        every_backend!(@each dir_frames, dir, "frames"; $($name),*);
        every_backend!(@each azurite_frames, azurite, "frames"; $($name),*);
    };
    (@each $module:ident, $backend:ident, $transport:literal; $($name:ident),*) => {
        mod $module {
            $(
                #[test]
                fn $name() {
                    super::with_transport($transport, || {
                        if let Some(b) = super::Backend::$backend() { super::$name(&b) }
                    })
                }
            )*
        }
    };
}

every_backend!(
    two_workers_match_local_mode_for_two_inputs_and_never_show_a_secret,
    demo_and_compare_run_through_the_cloud,
    job_of_a_killed_worker_reappears_and_the_run_completes,
    poison_job_is_reported_with_its_frames_and_a_rerun_repairs_it,
    a_worker_with_a_broken_device_exits_and_leaves_the_jobs_to_others,
    a_run_longer_than_the_download_window_is_restitched_in_order,
    malformed_messages_are_moved_aside_and_the_worker_keeps_going,
    killed_coordinator_resumes_without_redoing_done_jobs,
    runs_lists_and_cleans,
    requeue_queues_only_the_unfinished_jobs_again,
    outputs_in_a_separate_container,
    a_cut_matroska_file_is_refused,
    a_hung_device_hands_its_job_back_and_the_worker_exits,
    a_cleaned_and_rerun_run_ignores_its_predecessors_messages,
    a_lost_message_is_queued_again_while_other_runs_keep_the_queue_busy,
    a_variable_frame_rate_comes_back_with_every_timestamp,
);

/// A variable frame rate (a 0.7 s pause after frame 19, keyframes every 8 frames, jobs of 6):
/// every frame comes back at its own time, and the pictures are local mode's (each job's warm-up
/// reaches back to frame 0 on so short a clip, so steadied segments match exactly too).
fn a_variable_frame_rate_comes_back_with_every_timestamp(b: &Backend) {
    let spec = b.spec();
    let dir = tempdir();
    let input = scene_clip(
        dir.path(),
        "in.mkv",
        "64x48",
        "25",
        40,
        &[],
        &[
            "-vf",
            "setpts='(N+if(gt(N,19),17,0))/25/TB'",
            "-fps_mode",
            "passthrough",
            "-g",
            "8",
        ],
    );
    let local_dir = dir.path().join("local");
    local_lossless(&[&input], &local_dir, &[]);
    let w = worker(&spec, "w0", &["--threads", "1"]);
    let out = dir.path().join("cloud.mkv");
    let coordinator = Coordinator::new(
        &input,
        STYLE_PICTURE,
        &spec,
        &[
            "--frames-per-job",
            "6",
            "--crf",
            "0",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let (code, log) = coordinator.run(&[]);
    assert_eq!(code, 0, "{log}");
    stop(w);
    let local = local_dir.join("in.styled.mkv");
    let times = frame_times(&out);
    assert_eq!(times.len(), 40);
    assert_eq!(times, frame_times(&local), "every frame at its own time");
    let t = |i: usize| times[i].parse::<f64>().unwrap();
    assert!((t(20) - t(19) - 0.72).abs() < 0.005, "the pause: {times:?}");
    let (fl, fc) = (all_frames(&local), all_frames(&out));
    assert!(fl == fc, "the pictures are local mode's");
}

/// Scenarios of one transport, once per backend.
mod segments_only {
    #[test]
    fn dir() {
        let b = super::Backend::dir().unwrap();
        super::segments_match_local_mode_and_leave_no_frames_in_storage(&b);
    }

    #[test]
    fn azurite() {
        if let Some(b) = super::Backend::azurite() {
            super::segments_match_local_mode_and_leave_no_frames_in_storage(&b);
        }
    }
}

/// Styles `inputs` locally, lossless on one thread (the same arithmetic order as a worker with
/// `--threads 1`; lossless, as x264's frame threads make the bitstream depend on when frames
/// arrive), into `out_dir`, with `more` options.
fn local_lossless(inputs: &[&Path], out_dir: &Path, more: &[&str]) {
    let mut args: Vec<&str> = inputs.iter().map(|p| p.to_str().unwrap()).collect();
    args.extend([
        "--style",
        STYLE_PICTURE,
        "--crf",
        "0",
        "--threads",
        "1",
        "--out-dir",
        out_dir.to_str().unwrap(),
        "-q",
    ]);
    args.extend_from_slice(more);
    let (code, _, stderr) = run(&args);
    assert_eq!(code, 0, "local mode: {stderr}");
}

/// `--transport segments`: the input goes up as pieces of its own bitstream (B-frames, keyframes
/// every 12 frames, jobs of 20 that do not fall on them) and workers send back encoded segments.
/// Frame by frame (`--steady 0`) the joined video is local mode's exactly, timing and audio too.
/// Steadied, jobs whose 60 warm-up frames reach back to frame 0 match local mode exactly and later
/// ones differ by the state their warm-up leaves: within 3 levels on average per frame.
fn segments_match_local_mode_and_leave_no_frames_in_storage(b: &Backend) {
    let spec = b.spec();
    let dir = tempdir();
    let input = scene_clip(
        dir.path(),
        "in.mp4",
        "64x48",
        "25",
        90,
        &["sine=f=440:sample_rate=48000"],
        &["-preset", "medium", "-bf", "2", "-g", "12"],
    );
    let (local_plain, local_steady) = (
        dir.path().join("local0/in.styled.mp4"),
        dir.path().join("local1/in.styled.mp4"),
    );
    local_lossless(&[&input], &dir.path().join("local0"), &["--steady", "0"]);
    local_lossless(&[&input], &dir.path().join("local1"), &[]);
    let workers = [
        worker(&spec, "w0", &["--threads", "1"]),
        worker(&spec, "w1", &["--threads", "1"]),
    ];
    let cloud_run = |out: &str, more: &[&str]| {
        let out_dir = dir.path().join(out);
        let mut args = vec![
            input.to_str().unwrap(),
            "--style",
            STYLE_PICTURE,
            "--cloud",
            &spec,
            "--transport",
            "segments",
            "--frames-per-job",
            "20",
            "--crf",
            "0",
            "--out-dir",
            out_dir.to_str().unwrap(),
        ];
        args.extend_from_slice(more);
        let (code, log) = Proc::spawn(&args).wait();
        assert_eq!(code, 0, "coordinator: {log}");
        out_dir.join("in.styled.mp4")
    };
    let cloud_plain = cloud_run("cloud0", &["--steady", "0"]);
    let cloud_steady = cloud_run("cloud1", &[]);
    for w in workers {
        w.sigterm();
        w.wait();
    }
    let (fl, fc) = (all_frames(&local_plain), all_frames(&cloud_plain));
    assert_eq!(fl.len(), 90);
    assert_eq!(fl.len(), fc.len());
    for (i, (l, c)) in fl.iter().zip(&fc).enumerate() {
        assert!(l == c, "frame {i} differs (mean {})", mean_abs_diff(l, c));
    }
    for key in ["r_frame_rate", "duration", "codec_name", "nb_read_frames"] {
        let (pl, pc) = (probe_json(&local_plain), probe_json(&cloud_plain));
        assert_eq!(video_stream(&pl)[key], video_stream(&pc)[key], "{key}");
    }
    assert_eq!(audio_md5(&cloud_plain, 0), audio_md5(&input, 0), "audio");

    let (sl, sc) = (all_frames(&local_steady), all_frames(&cloud_steady));
    assert_eq!(sl.len(), sc.len());
    let diffs: Vec<f64> = sl
        .iter()
        .zip(&sc)
        .map(|(l, c)| mean_abs_diff(l, c))
        .collect();
    // Jobs 0 to 3 (frames 0..80) decode from frame 0, as local mode does.
    assert!(diffs[..80].iter().all(|d| *d == 0.0), "{diffs:?}");
    let worst = diffs.iter().copied().fold(0.0, f64::max);
    eprintln!("steadied segments vs local: worst frame mean diff {worst:.3}");
    assert!(worst <= 3.0, "{diffs:?}");

    let rt = rt();
    let cloud = b.cloud();
    let stored: Vec<String> = rt
        .block_on(cloud.blobs.list("runs/"))
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert!(stored.iter().any(|k| k.contains("/sources/")), "{stored:?}");
    assert!(
        stored.iter().any(|k| k.contains("/segments/")),
        "{stored:?}"
    );
    assert!(!stored.iter().any(|k| k.contains("/frames/")), "{stored:?}");
}

/// Two inputs fanned out over two worker processes give, frame for frame, what local mode gives,
/// with the same timing and audio; and the storage's secret (Azure: the account key) appears in
/// no output, log or stored marker.
fn two_workers_match_local_mode_for_two_inputs_and_never_show_a_secret(backend: &Backend) {
    let spec = backend.spec();
    let dir = tempdir();
    let a = scene_clip(
        dir.path(),
        "a.mp4",
        "64x48",
        "25",
        24,
        &["sine=f=440:sample_rate=48000"],
        &["-ac", "1"],
    );
    let b = scene_clip(dir.path(), "b.mkv", "48x32", "30000/1001", 17, &[], &[]);
    let (local_dir, cloud_dir) = (dir.path().join("local"), dir.path().join("cloud"));
    local_lossless(&[&a, &b], &local_dir, &[]);

    let workers = [
        worker(&spec, "w0", &["--threads", "1"]),
        worker(&spec, "w1", &["--threads", "1"]),
    ];
    let coordinator = Proc::spawn(&[
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--style",
        STYLE_PICTURE,
        "--cloud",
        &spec,
        "--frames-per-job",
        "3",
        "--crf",
        "0",
        "--out-dir",
        cloud_dir.to_str().unwrap(),
    ]);
    let (code, coordinator_log) = coordinator.wait();
    assert_eq!(code, 0, "coordinator: {coordinator_log}");
    let mut worker_logs = String::new();
    let mut processed = Vec::new();
    for w in workers {
        w.sigterm();
        let (code, log) = w.wait();
        assert_eq!(code, 130, "a worker stopped by SIGTERM exits 130: {log}");
        let summary = log
            .lines()
            .find(|l| l.contains(" processed "))
            .unwrap_or_else(|| panic!("no summary in {log}"));
        let frames: u32 = summary
            .split(" processed ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        processed.push(frames);
        worker_logs.push_str(&log);
    }
    assert_eq!(
        processed.iter().sum::<u32>(),
        24 + 17,
        "each frame styled once: {worker_logs}"
    );
    assert!(
        processed.iter().all(|&n| n > 0),
        "both workers took jobs: {processed:?}\n{worker_logs}"
    );

    for (local, cloud) in [
        ("a.styled.mp4", "a.styled.mp4"),
        ("b.styled.mkv", "b.styled.mkv"),
    ] {
        let (local, cloud) = (local_dir.join(local), cloud_dir.join(cloud));
        let (pl, pc) = (probe_json(&local), probe_json(&cloud));
        let (vl, vc) = (video_stream(&pl), video_stream(&pc));
        for key in [
            "width",
            "height",
            "nb_read_frames",
            "r_frame_rate",
            "duration",
            "codec_name",
        ] {
            assert_eq!(vl[key], vc[key], "{key} of {}", cloud.display());
        }
        assert_eq!(audio_streams(&pl).len(), audio_streams(&pc).len());
        for n in 0..audio_streams(&pl).len() {
            assert_eq!(
                audio_md5(&local, n),
                audio_md5(&cloud, n),
                "audio copied unchanged"
            );
        }
        let (fl, fc) = (all_frames(&local), all_frames(&cloud));
        assert_eq!(fl.len(), fc.len());
        for (i, (l, c)) in fl.iter().zip(&fc).enumerate() {
            assert_eq!(
                l,
                c,
                "frame {i} of {} differs from local mode (mean diff {})",
                cloud.display(),
                mean_abs_diff(l, c)
            );
        }
    }
    assert_eq!(
        listing(&cloud_dir),
        vec!["a.styled.mp4", "b.styled.mkv"],
        "no temporaries or download folders left"
    );

    let rt = rt();
    let cloud = backend.cloud();
    let mut stored = String::new();
    for entry in rt.block_on(cloud.blobs.list("runs/")).unwrap() {
        if entry.key.ends_with(".json") {
            stored.push_str(&String::from_utf8_lossy(
                &rt.block_on(cloud.blobs.get(&entry.key)).unwrap(),
            ));
        }
    }
    assert!(stored.contains("\"run_id\""), "manifests were read");
    for (what, text) in [
        ("coordinator output", &coordinator_log),
        ("worker logs", &worker_logs),
        ("manifests and markers", &stored),
    ] {
        backend.assert_no_secret(what, text);
    }
}

/// `stylize demo --cloud` and `--compare --cloud`: the same three files as the local demo, styled
/// by a worker, frame for frame the same videos as local mode's; the plain command's side-by-side
/// video holds the original on the left and the styled frame on the right.
fn demo_and_compare_run_through_the_cloud(b: &Backend) {
    let spec = b.spec();
    let dir = tempdir();
    let (local_dir, cloud_dir) = (dir.path().join("local"), dir.path().join("cloud"));
    fn demo<'a>(out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "demo",
            "--offline",
            "--frames",
            "12",
            "--threads",
            "1",
            // Lossless: x264's frame threads make the bitstream depend on when frames arrive,
            // so only lossless encodes decode to the same pixels in both modes.
            "--crf",
            "0",
            "--out-dir",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args
    }
    // Made before the clocks start: the bundled sample takes a while the first time.
    let sample = common::showcase::bundled_sample();
    let cache = common::showcase::shared_cache();
    let out = stylize()
        .env("STYLIZE_CACHE", &cache)
        .args(demo(&local_dir, &["-q"]))
        .output()
        .unwrap();
    let (code, _, stderr) = decode(out);
    assert_eq!(code, 0, "local demo: {stderr}");

    let w = worker(&spec, "w0", &["--threads", "1"]);
    let coordinator = Proc::spawn_with_env(
        &demo(&cloud_dir, &["--cloud", &spec, "--frames-per-job", "4"]),
        &[("STYLIZE_CACHE", cache.to_str().unwrap())],
    );
    let (code, log) = coordinator.wait();
    assert_eq!(code, 0, "cloud demo: {log}");
    let names = [
        "stylize-sample.styled.compare.mp4",
        "stylize-sample.styled.mp4",
        "stylize-sample.styled.sheet.png",
    ];
    for name in names {
        let path = cloud_dir.join(name);
        assert!(log.contains(path.to_str().unwrap()), "names {name}: {log}");
    }
    assert_eq!(
        listing(&cloud_dir),
        names,
        "the three files and nothing else"
    );
    // The demo's own summary line, with the frames the coordinator wrote.
    assert!(
        log.contains("styled stylize-sample.mp4 with starry-blue: 12 frames in"),
        "the summary counts the frames: {log}"
    );
    for name in &names[..2] {
        let (local, cloud) = (local_dir.join(name), cloud_dir.join(name));
        assert_eq!(
            audio_md5(&cloud, 0),
            audio_md5(&local, 0),
            "{name}: audio copied"
        );
        let (fl, fc) = (all_frames(&local), all_frames(&cloud));
        assert_eq!((fl.len(), fc.len()), (12, 12), "{name}: frame counts");
        for (i, (l, c)) in fl.iter().zip(&fc).enumerate() {
            assert!(
                l == c,
                "{name}: frame {i} differs from the local demo's (mean diff {})",
                mean_abs_diff(l, c)
            );
        }
    }
    let sheet = common::showcase::read_sheet(&cloud_dir.join(names[2]));
    sheet.assert_grid(12, 6, 1.0);
    let (_, _, first) = frame_rgb(&sample, 0);
    assert!(mean_abs_diff(&first, &all_frames(&cloud_dir.join(names[1]))[0]) > 12.0);

    // The plain command with --compare: both videos written as the frames come back.
    let clip = scene_clip(
        dir.path(),
        "c.mp4",
        "64x48",
        "25",
        8,
        &["sine=f=440:sample_rate=48000"],
        &["-ac", "1"],
    );
    let coordinator = Proc::spawn(&[
        clip.to_str().unwrap(),
        "--style",
        "preset:3",
        "--cloud",
        &spec,
        "--compare",
        "--out-dir",
        cloud_dir.to_str().unwrap(),
    ]);
    let (code, log) = coordinator.wait();
    assert_eq!(code, 0, "cloud --compare: {log}");
    let (styled, side) = (
        cloud_dir.join("c.styled.mp4"),
        cloud_dir.join("c.styled.compare.mp4"),
    );
    assert!(
        log.contains(&format!("side by side: {}", side.display())),
        "{log}"
    );
    let probe = probe_json(&side);
    let v = video_stream(&probe);
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(128), Some(48))
    );
    assert_eq!(v["nb_read_frames"], "8");
    assert_eq!(
        audio_md5(&side, 0),
        audio_md5(&clip, 0),
        "side-by-side audio"
    );
    let (wide, styled_frames, originals) =
        (all_frames(&side), all_frames(&styled), all_frames(&clip));
    for i in 0..8 {
        common::showcase::assert_side_by_side(
            128,
            &wide[i],
            &originals[i],
            &styled_frames[i],
            &format!("frame {i}"),
        );
    }
    assert_eq!(
        listing(&cloud_dir),
        [
            "c.styled.compare.mp4",
            "c.styled.mp4",
            "stylize-sample.styled.compare.mp4",
            "stylize-sample.styled.mp4",
            "stylize-sample.styled.sheet.png"
        ],
        "no temporaries or download folders left"
    );
    drop(w);
}

/// A worker SIGKILLed in the middle of a job: the job reappears after the visibility timeout,
/// another worker finishes it (skipping the frames already styled), and the video has every frame.
fn job_of_a_killed_worker_reappears_and_the_run_completes(b: &Backend) {
    let spec = b.spec();
    let (rt, cloud) = (rt(), b.cloud());
    let dir = tempdir();
    let input = scene_clip(dir.path(), "in.mp4", "64x48", "25", 16, &[], &[]);
    let output = dir.path().join("out.mp4");
    let coordinator = Coordinator::new(&input, "preset:1", &spec, &["--frames-per-job", "8"]);
    let log = coordinator.submit();
    assert!(log.contains("submitted (2 jobs queued)"), "{log}");
    let run = the_run(&rt, &cloud);

    // Slow enough (0.4 s a frame) to be killed mid-job.
    let doomed = worker(
        &spec,
        "doomed",
        &[
            "--test-stylizer-ms",
            "400",
            "--visibility-timeout",
            "4",
            "--max-jobs",
            "1",
        ],
    );
    wait_until(
        "the first worker has styled part of its job",
        Duration::from_secs(60),
        || blob_count(&rt, &cloud, &run.styled_prefix()) >= 2,
    );
    doomed.sigkill();
    let partial = blob_count(&rt, &cloud, &run.styled_prefix());
    assert!(partial < 16, "killed mid-job");
    assert_eq!(
        blob_count(&rt, &cloud, &run.done_prefix()),
        0,
        "the killed worker wrote no done marker"
    );

    let rescuer = worker(
        &spec,
        "rescuer",
        &[
            "--test-stylizer-ms",
            "5",
            "--visibility-timeout",
            "4",
            "--idle-exit",
            "30",
        ],
    );
    let (code, log) = coordinator.run(&["-o", output.to_str().unwrap()]);
    assert_eq!(code, 0, "{log}");
    rescuer.sigterm();
    let (_, rescuer_log) = rescuer.wait();
    // A frames job resumes where the killed worker stopped; a segment is made whole or not at all.
    let resumed = match segments() {
        true => "job 0 (frames 0..8): 8 frames in",
        false => "already styled",
    };
    assert!(
        rescuer_log.contains(resumed),
        "the redelivered job: {rescuer_log}"
    );
    for job in 0..2 {
        let marker = DoneMarker::from_json(
            &rt.block_on(cloud.blobs.get(&done_key(&rt, &cloud, job)))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(marker.worker, "rescuer");
    }
    // Order is checked exactly by the comparison with local mode above.
    assert_inverted(&input, &output, 16, 10.0);
}

/// A job whose frame is corrupt fails on every delivery: it is marked failed and moved to the
/// poison queue; the coordinator names the frames and the reason, writes no video, exits 1, and
/// keeps the other jobs' frames. Re-running uploads that job's frames again and finishes.
fn poison_job_is_reported_with_its_frames_and_a_rerun_repairs_it(b: &Backend) {
    let spec = b.spec();
    let (rt, cloud) = (rt(), b.cloud());
    let dir = tempdir();
    // A keyframe every 4 frames: with segments, job 1's frames are one piece of their own.
    let input = scene_clip(dir.path(), "in.mp4", "64x48", "25", 12, &[], &["-g", "4"]);
    let output = dir.path().join("out.mp4");
    let coordinator = Coordinator::new(
        &input,
        "preset:2",
        &spec,
        &["--frames-per-job", "4", "-o", output.to_str().unwrap()],
    );
    coordinator.submit();
    let run = the_run(&rt, &cloud);
    // The damaged job: with segments the last, as every later job warms up over earlier pieces.
    let (damaged, says, job, frames) = match segments() {
        true => (
            run.piece_key(2),
            ["piece-00002.mkv", "not a video file"],
            2,
            8..12,
        ),
        false => (
            run.frame_key(5, stylize_cloud::FrameFormat::Png),
            ["frame 5", "not a readable png picture"],
            1,
            4..8,
        ),
    };
    let job_line = format!("job {job} (frames {}..{})", frames.start, frames.end);
    rt.block_on(
        cloud
            .blobs
            .put(&damaged, Bytes::from_static(b"not a picture at all")),
    )
    .unwrap();

    // The worker starts only once this coordinator has looked at the run: a job that failed
    // before a coordinator looks is "failed before", which a re-run retries.
    let following = coordinator.spawn(&[]);
    wait_until("the coordinator resumed the run", PROCESS_TIMEOUT, || {
        following.log().contains("resuming run")
    });
    let w = worker(
        &spec,
        "w0",
        &["--test-stylizer-ms", "1", "--max-deliveries", "3"],
    );
    let (code, log) = following.wait();
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("1 of 3 jobs failed (4 frames)"), "{log}");
    assert!(log.contains(&job_line), "names the frames: {log}");
    assert!(
        log.contains(says[0]) && log.contains(says[1]),
        "says why: {log}"
    );
    assert!(!output.exists(), "no output video");
    assert_eq!(listing(dir.path()), vec!["in.mp4"], "no temporaries left");
    if segments() {
        let has = |j| blob_count(&rt, &cloud, &run.segment_key(j)) == 1;
        assert!(
            (0..3).all(|j| has(j) == (j != job)),
            "the other jobs' segments stay"
        );
    } else {
        let styled = rt
            .block_on(stylize_cloud::existing_frames(
                cloud.blobs.as_ref(),
                &run.styled_prefix(),
            ))
            .unwrap();
        assert!(
            (0..12)
                .filter(|n| !frames.contains(n))
                .all(|n| styled.contains(&n)),
            "the other jobs' styled frames stay: {styled:?}"
        );
        assert!(!styled.contains(&5), "{styled:?}");
    }
    assert_eq!(blob_count(&rt, &cloud, &run.failed_prefix()), 1);
    assert_eq!(
        rt.block_on(cloud.poison.approximate_len()).unwrap(),
        1,
        "the job went to the poison queue"
    );
    let log = w.log();
    assert!(
        log.contains("failed on delivery 1 of 3") && log.contains("failed on delivery 3 of 3"),
        "{log}"
    );

    // The re-run retries only the failed job, with its frames uploaded afresh.
    let (code, log) = coordinator.run(&[]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("retrying 1 job(s)"), "{log}");
    assert_eq!(all_frames(&output).len(), 12);
    w.sigterm();
    let (_, log) = w.wait();
    // Frame 4 may have been styled before frame 5 failed the first attempt; then it is skipped.
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("{job_line}: ")) && l.contains(" frames in ")),
        "the failed job succeeded the second time: {log}"
    );
}

/// A worker whose network fails every batch (a GPU in a sticky error state) exits after a few
/// jobs in a row instead of spending the whole queue's deliveries; nothing is marked failed, and
/// a healthy worker then styles every frame.
fn a_worker_with_a_broken_device_exits_and_leaves_the_jobs_to_others(b: &Backend) {
    let spec = b.spec();
    let (rt, cloud) = (rt(), b.cloud());
    let dir = tempdir();
    let input = scene_clip(dir.path(), "in.mp4", "64x48", "25", 20, &[], &[]);
    let coordinator = Coordinator::new(&input, "preset:5", &spec, &["--frames-per-job", "4"]);
    coordinator.submit();
    let run = the_run(&rt, &cloud);

    let broken = worker(
        &spec,
        "broken",
        &[
            "--test-stylizer-ms",
            "1",
            "--test-stylizer-fault",
            "--visibility-timeout",
            "3",
        ],
    );
    let (code, log) = broken.wait();
    assert_eq!(code, 1, "{log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: worker broken: the network failed 3 jobs in a row")
            && last.contains("simulated device fault"),
        "{log}"
    );
    // A job taken beside the third may fail too before the worker stops.
    assert!(
        log.matches("failed on delivery 1 of 5").count() >= 3,
        "{log}"
    );
    assert_eq!(blob_count(&rt, &cloud, &run.failed_prefix()), 0);
    assert_eq!(blob_count(&rt, &cloud, &run.styled_prefix()), 0);
    assert_eq!(rt.block_on(cloud.poison.approximate_len()).unwrap(), 0);
    assert_eq!(rt.block_on(cloud.jobs.approximate_len()).unwrap(), 5);

    let healthy = worker(&spec, "healthy", &["--test-stylizer-ms", "1"]);
    let (code, log) = coordinator.run(&[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(all_frames(&dir.path().join("in.styled.mp4")).len(), 20);
    healthy.sigterm();
    let (_, log) = healthy.wait();
    assert!(log.contains("processed 20 frames"), "{log}");
}

/// A network call that never returns (a wedged GPU): after `--batch-deadline` the worker hands
/// the job back at once and exits 1 for its supervisor to restart it; another worker styles it.
fn a_hung_device_hands_its_job_back_and_the_worker_exits(b: &Backend) {
    let spec = b.spec();
    let (rt, cloud) = (rt(), b.cloud());
    let dir = tempdir();
    let input = scene_clip(dir.path(), "in.mp4", "64x48", "25", 4, &[], &[]);
    let coordinator = Coordinator::new(&input, "preset:5", &spec, &[]);
    coordinator.submit();

    // An hour per frame stands for a call that never comes back.
    let started = std::time::Instant::now();
    let hung = worker(
        &spec,
        "hung",
        &["--test-stylizer-ms", "3600000", "--batch-deadline", "1.5"],
    );
    let (code, log) = hung.wait();
    assert_eq!(code, 1, "{log}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the watchdog took {:?}",
        started.elapsed()
    );
    assert!(
        log.contains("the network did not return a batch of 1 frame within 1.5 s (--batch-deadline); handed back"),
        "{log}"
    );
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: worker hung: the network did not return")
            && last.ends_with("the worker exits so that its supervisor restarts it"),
        "{log}"
    );
    // Handed back visible at once, not after the visibility timeout.
    assert_eq!(rt.block_on(cloud.jobs.approximate_len()).unwrap(), 1);

    let healthy = worker(&spec, "healthy", &["--test-stylizer-ms", "1"]);
    let (code, log) = coordinator.run(&[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(all_frames(&dir.path().join("in.styled.mp4")).len(), 4);
    let (_, log) = stop(healthy);
    assert!(log.contains("processed 4 frames"), "{log}");
}

/// `runs clean`, then the same input and style again with another job split and frame format:
/// the messages of the cleaned run, still queued, are dropped as stale, not styled into the new
/// run's bookkeeping (a done marker of the old split would make the coordinator fetch frames that
/// were never styled in the new format).
fn a_cleaned_and_rerun_run_ignores_its_predecessors_messages(b: &Backend) {
    let spec = b.spec();
    let (rt, cloud) = (rt(), b.cloud());
    let dir = tempdir();
    let input = scene_clip(dir.path(), "in.mp4", "64x48", "25", 8, &[], &[]);
    let split = |per_job: &str, format: &str| {
        let options = ["--frames-per-job", per_job, "--frame-format", format];
        Coordinator::new(&input, "preset:5", &spec, &options)
    };
    split("4", "png").submit();
    let run = the_run(&rt, &cloud);
    let (code, _, stderr) = common::run(&["runs", "clean", run.as_str(), "--cloud", &spec]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(rt.block_on(cloud.jobs.approximate_len()).unwrap(), 2);

    let coordinator = split("3", "webp");
    coordinator.submit();
    assert_eq!(
        the_run(&rt, &cloud),
        run,
        "the same run id, a new incarnation"
    );
    let w = worker(&spec, "w0", &["--test-stylizer-ms", "1"]);
    let (code, log) = coordinator.run(&[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(all_frames(&dir.path().join("in.styled.mp4")).len(), 8);
    let (_, worker_log) = stop(w);
    assert_eq!(
        worker_log
            .matches("the run was cleaned and started again")
            .count(),
        2,
        "{worker_log}"
    );
    assert!(worker_log.contains("processed 8 frames"), "{worker_log}");
    assert_eq!(blob_count(&rt, &cloud, &run.done_prefix()), 3);
    assert_eq!(
        blob_count(&rt, &cloud, &format!("{}000000.png", run.styled_prefix())),
        0
    );
}

/// A job's message lost after part of the job was styled (its worker killed, then the message
/// gone: moved aside when a failed marker could not be written, expired, or deleted by hand) while
/// another run's job keeps the shared queue from ever looking empty: the coordinator queues the
/// job again within a bounded time (`--requeue-after`), and the run completes.
fn a_lost_message_is_queued_again_while_other_runs_keep_the_queue_busy(b: &Backend) {
    let spec = b.spec();
    let (rt, cloud) = (rt(), b.cloud());
    let dir = tempdir();
    let coordinator = |input: &Path, style: &str| {
        Coordinator::new(input, style, &spec, &["--frames-per-job", "4"])
    };
    // Another run's job, held for the whole test by a slow worker: counted on the queue.
    let other = scene_clip(dir.path(), "other.mp4", "64x48", "25", 4, &[], &[]);
    coordinator(&other, "preset:3").submit();
    let busy = worker(
        &spec,
        "busy",
        &[
            "--test-stylizer-ms",
            "600000",
            "--max-jobs",
            "1",
            "--batch-deadline",
            "900",
        ],
    );
    wait_until(
        "the busy worker took the other run's job",
        Duration::from_secs(30),
        || busy.log().contains("): started"),
    );

    let input = scene_clip(dir.path(), "in.mp4", "64x48", "25", 12, &[], &[]);
    let ours = coordinator(&input, "preset:5");
    ours.submit();
    let run = stylize_cloud::list_runs(cloud.blobs.as_ref());
    let runs = rt.block_on(run).unwrap();
    let run = runs
        .into_iter()
        .find(|r| {
            rt.block_on(stylize_cloud::load_manifest(cloud.blobs.as_ref(), r))
                .unwrap()
                .input_name
                == "in.mp4"
        })
        .unwrap();
    // Slow enough to be killed mid-job: a segments job shows progress once a second at most.
    let per_frame = if segments() { "1000" } else { "400" };
    let doomed = worker(
        &spec,
        "doomed",
        &[
            "--test-stylizer-ms",
            per_frame,
            "--max-jobs",
            "1",
            "--visibility-timeout",
            "3",
        ],
    );
    wait_until(
        "the doomed worker styled part of job 0",
        Duration::from_secs(60),
        || blob_count(&rt, &cloud, &run.styled_prefix()) >= 2,
    );
    doomed.sigkill();
    // Its message reappears after the visibility timeout; then it is lost for good. The other
    // jobs' messages are held meanwhile (one delivery each), then handed back.
    let mut held = Vec::new();
    wait_until(
        "job 0's message is deleted",
        Duration::from_secs(30),
        || {
            let Some(message) = rt
                .block_on(cloud.jobs.receive(Duration::from_secs(60)))
                .unwrap()
            else {
                return false;
            };
            let job = stylize_cloud::JobSpec::from_message(&message.body).unwrap();
            if (job.run_id == run, job.job) == (true, 0) {
                rt.block_on(cloud.jobs.delete(&message)).unwrap();
                return true;
            }
            held.push(message);
            false
        },
    );
    for mut message in held {
        rt.block_on(cloud.jobs.set_visibility(&mut message, Duration::ZERO))
            .unwrap();
    }

    let healthy = worker(&spec, "healthy", &["--test-stylizer-ms", "1"]);
    let started = std::time::Instant::now();
    let (code, log) = ours.run(&["--requeue-after", "2"]);
    assert_eq!(code, 0, "{log}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        log.contains("job 0 of run") && log.contains("its message seems lost; queueing it again"),
        "{log}"
    );
    assert_eq!(all_frames(&dir.path().join("in.styled.mp4")).len(), 12);
    let (_, healthy_log) = stop(healthy);
    // A frames job resumes where the killed worker stopped; a segment is made whole or not at all.
    let resumed = match segments() {
        true => "job 0 (frames 0..4): 4 frames in",
        false => "already styled",
    };
    assert!(healthy_log.contains(resumed), "job 0: {healthy_log}");
    drop(busy);
}

/// A run longer than the coordinator's download window (256 frames ahead of the restitcher; here
/// two 128-frame jobs) is fetched as the window moves and restitched whole and in order.
fn a_run_longer_than_the_download_window_is_restitched_in_order(b: &Backend) {
    let spec = b.spec();
    let dir = tempdir();
    let input = scene_clip(dir.path(), "long.mp4", "32x32", "30", 640, &[], &[]);
    let workers = [
        worker(&spec, "w0", &["--test-stylizer-ms", "0"]),
        worker(&spec, "w1", &["--test-stylizer-ms", "0"]),
    ];
    let (code, log) = Proc::spawn(&[
        input.to_str().unwrap(),
        "--style",
        "preset:6",
        "--cloud",
        &spec,
        "--frames-per-job",
        "128",
    ])
    .wait();
    assert_eq!(code, 0, "{log}");
    for w in workers {
        w.sigterm();
        w.wait();
    }
    assert_inverted(&input, &dir.path().join("long.styled.mp4"), 640, 12.0);
    assert_eq!(listing(dir.path()), vec!["long.mp4", "long.styled.mp4"]);
}

/// Messages that are not jobs are moved to the poison queue and logged; the worker goes on and
/// styles the real job queued after them.
fn malformed_messages_are_moved_aside_and_the_worker_keeps_going(b: &Backend) {
    let spec = b.spec();
    let (rt, cloud) = (rt(), b.cloud());
    rt.block_on(cloud.create_if_missing()).unwrap();
    for garbage in [
        "hello",
        r#"{"version":1,"run_id":"0123456789abcdef","job":0,"surprise":true}"#,
        "{\"truncated\":",
    ] {
        rt.block_on(cloud.jobs.send(garbage)).unwrap();
    }
    let w = worker(&spec, "w0", &["--test-stylizer-ms", "1"]);
    let dir = tempdir();
    let input = scene_clip(dir.path(), "in.mp4", "64x48", "25", 6, &[], &[]);
    let (code, log) = Proc::spawn(&[
        input.to_str().unwrap(),
        "--style",
        "preset:0",
        "--cloud",
        &spec,
    ])
    .wait();
    assert_eq!(code, 0, "{log}");
    assert!(dir.path().join("in.styled.mp4").exists());
    w.sigterm();
    let (code, log) = w.wait();
    assert_eq!(code, 130, "{log}");
    assert_eq!(
        log.matches("to stylize-jobs-poison: malformed queue message")
            .count(),
        3,
        "{log}"
    );
    assert!(log.contains("processed 6 frames"), "{log}");
    assert_eq!(rt.block_on(cloud.poison.approximate_len()).unwrap(), 3);
}

/// The coordinator SIGKILLed mid-run: running the same command again picks the run up, uploads
/// nothing again, and no done job is styled a second time.
fn killed_coordinator_resumes_without_redoing_done_jobs(b: &Backend) {
    let spec = b.spec();
    let (rt, cloud) = (rt(), b.cloud());
    let dir = tempdir();
    let input = scene_clip(
        dir.path(),
        "in.mp4",
        "64x48",
        "25",
        24,
        &["sine=f=330:sample_rate=48000"],
        &[],
    );
    let coordinator = Coordinator::new(&input, "preset:4", &spec, &["--frames-per-job", "4"]);
    let w = worker(&spec, "w0", &["--test-stylizer-ms", "60"]);
    let first = coordinator.spawn(&[]);
    let mut run = None;
    wait_until("two jobs are done", Duration::from_secs(60), || {
        run = rt
            .block_on(stylize_cloud::list_runs(cloud.blobs.as_ref()))
            .unwrap()
            .into_iter()
            .next();
        run.as_ref()
            .is_some_and(|r| blob_count(&rt, &cloud, &r.done_prefix()) >= 2)
    });
    first.sigkill();
    let run = run.unwrap();
    let done_before: Vec<(String, Bytes)> = rt
        .block_on(cloud.blobs.list(&run.done_prefix()))
        .unwrap()
        .into_iter()
        .map(|e| {
            let bytes = rt.block_on(cloud.blobs.get(&e.key)).unwrap();
            (e.key, bytes)
        })
        .collect();
    assert!(done_before.len() < 6, "killed before the end");

    let (code, log) = coordinator.run(&[]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("resuming run"), "{log}");
    assert!(log.contains("0 KB up"), "no frame uploaded again: {log}");
    for (key, bytes) in &done_before {
        assert_eq!(
            &rt.block_on(cloud.blobs.get(key)).unwrap(),
            bytes,
            "{key} was redone"
        );
    }
    let output = dir.path().join("in.styled.mp4");
    assert_eq!(all_frames(&output).len(), 24);
    assert_eq!(audio_md5(&input, 0), audio_md5(&output, 0));
    w.sigterm();
    let (_, log) = w.wait();
    assert!(
        log.contains("processed 24 frames"),
        "every frame styled exactly once: {log}"
    );
}

/// `stylize runs` lists a run with its progress; `stylize runs clean` deletes its blobs, and a
/// worker then drops the run's queued jobs instead of styling them.
fn runs_lists_and_cleans(b: &Backend) {
    let spec = b.spec();
    let (rt, cloud) = (rt(), b.cloud());
    let dir = tempdir();
    let input = scene_clip(dir.path(), "clip.mp4", "64x48", "25", 10, &[], &[]);
    let (code, log) = Proc::spawn(&[
        input.to_str().unwrap(),
        "--style",
        "preset:3",
        "--cloud",
        &spec,
        "--frames-per-job",
        "5",
        "--no-wait",
    ])
    .wait();
    assert_eq!(code, 0, "{log}");
    let run = the_run(&rt, &cloud);

    let (code, stdout, stderr) = common::run(&["runs", "--cloud", &spec]);
    assert_eq!(code, 0, "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(run.as_str()))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains("clip.mp4")
            && line.contains("64x48")
            && line.contains("0/2")
            && line.contains("styling"),
        "{line}"
    );
    assert!(
        stdout.contains("queue stylize-jobs: ~2 messages"),
        "{stdout}"
    );
    let (code, json, _) = common::run(&["runs", "--cloud", &spec, "--json"]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["runs"][0]["frames_uploaded"], 10);
    assert_eq!(doc["runs"][0]["jobs"], 2);

    let stored = blob_count(&rt, &cloud, &run.prefix());
    let (code, _, stderr) = common::run(&["runs", "clean", run.as_str(), "--cloud", &spec]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!("run {run}: deleted {stored} blobs")),
        "{stderr}"
    );
    assert_eq!(blob_count(&rt, &cloud, &run.prefix()), 0);
    let (_, stdout, _) = common::run(&["runs", "--cloud", &spec]);
    assert!(stdout.contains("no runs"), "{stdout}");

    let w = worker(
        &spec,
        "w0",
        &["--test-stylizer-ms", "1", "--idle-exit", "1"],
    );
    let (code, log) = w.wait();
    assert_eq!(code, 0, "{log}");
    assert_eq!(log.matches("the run was cleaned").count(), 2, "{log}");
    assert!(log.contains("processed 0 frames"), "{log}");
    assert_eq!(
        blob_count(&rt, &cloud, &run.prefix()),
        0,
        "nothing written for a cleaned run"
    );
}

/// `stylize runs requeue` after the queue lost its messages: only the run's unfinished job is
/// queued again (a done one is not redone), and the same command then collects the whole video.
fn requeue_queues_only_the_unfinished_jobs_again(b: &Backend) {
    let spec = b.spec();
    let (rt, cloud) = (rt(), b.cloud());
    let dir = tempdir();
    let input = scene_clip(dir.path(), "in.mp4", "64x48", "25", 10, &[], &[]);
    let coordinator = Coordinator::new(&input, "preset:7", &spec, &["--frames-per-job", "5"]);
    let log = coordinator.submit();
    assert!(log.contains("submitted (2 jobs queued)"), "{log}");
    let run = the_run(&rt, &cloud);

    let (code, log) = worker(
        &spec,
        "first",
        &["--test-stylizer-ms", "1", "--max-jobs", "1"],
    )
    .wait();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("processed 5 frames"), "{log}");
    assert_eq!(blob_count(&rt, &cloud, &run.done_prefix()), 1);
    // The other job's message is lost (a queue cleared by hand, say).
    rt.block_on(cloud.jobs.clear()).unwrap();
    assert_eq!(rt.block_on(cloud.jobs.approximate_len()).unwrap(), 0);

    let (code, _, stderr) = common::run(&["runs", "requeue", run.as_str(), "--cloud", &spec]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "run {run}: queued 1 unfinished job(s) on stylize-jobs (1 done)"
        )),
        "{stderr}"
    );
    assert_eq!(rt.block_on(cloud.jobs.approximate_len()).unwrap(), 1);

    let w = worker(&spec, "second", &["--test-stylizer-ms", "1"]);
    let (code, log) = coordinator.run(&[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(all_frames(&dir.path().join("in.styled.mp4")).len(), 10);
    let (_, log) = stop(w);
    assert!(
        log.contains("processed 5 frames"),
        "only the unfinished job was styled again: {log}"
    );
}

/// Inputs in one container (`--container`), styled frames and markers in another
/// (`--output-container`): the run completes, each blob lands where it belongs, and
/// `stylize runs clean` deletes the run from both.
fn outputs_in_a_separate_container(b: &Backend) {
    let spec = b.spec();
    let dir = tempdir();
    let storage = ["--cloud", spec.as_str(), "--container", "inputs"];
    let done = run_into_an_output_container(
        dir.path(),
        b.cloud_in("inputs"),
        &storage,
        (&spec, &storage[2..]),
    );
    assert_eq!(listing(dir.path()), vec!["in.mp4", "in.styled.mp4"]);
    // Nothing went to the default container.
    assert_eq!(blob_count(&done.rt, &b.cloud(), "runs/"), 0);

    let prefix = done.run.prefix();
    let stored =
        count(&done.rt, &done.outputs, &prefix) + count(&done.rt, &done.inputs.blobs, &prefix);
    let (code, _, stderr) = run(&[&["runs", "clean", done.run.as_str()], &storage[..]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!("run {}: deleted {stored} blobs", done.run)),
        "{stderr}"
    );
    assert_eq!(
        count(&done.rt, &done.outputs, &prefix) + count(&done.rt, &done.inputs.blobs, &prefix),
        0
    );
}

/// A Matroska file whose tail was cut off still states its whole duration, and decodes without
/// an error up to the cut. Cloud mode must refuse it as local mode does (see
/// `bad_input::matroska_cut_short_without_an_error`): exit 1, one error naming the file and
/// saying it is truncated, no video written, even with a worker ready to style every frame.
fn a_cut_matroska_file_is_refused(b: &Backend) {
    let spec = b.spec();
    let dir = tempdir();
    let whole = scene_clip(dir.path(), "whole.mkv", "128x96", "30", 150, &[], &[]);
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.mkv");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::remove_file(&whole).unwrap();

    let w = worker(&spec, "w0", &["--test-stylizer-ms", "0"]);
    let (code, log) = Proc::spawn(&[
        cut.to_str().unwrap(),
        "--style",
        "preset:1",
        "--cloud",
        &spec,
        "--frames-per-job",
        "25",
    ])
    .wait();
    drop(w);
    assert_eq!(code, 1, "a cut file is refused: {log}");
    let errors: Vec<&str> = log.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {log}");
    assert!(
        errors[0].contains("cut.mkv") && errors[0].to_lowercase().contains("truncated"),
        "the error names the file and the problem: {log}"
    );
    assert_eq!(
        listing(dir.path()),
        vec!["cut.mkv"],
        "no video and no temporaries written"
    );
}
