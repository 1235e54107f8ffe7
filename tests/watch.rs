//! `stylize watch` against a real Azurite with real workers and the real network: videos
//! uploaded to an inbox come out styled in the outbox with their audio untouched, a file that is
//! no video goes to `failed/` with its reason, an upload still in progress is left alone until it
//! completes, Event Grid messages bring uploads without a listing, and a restarted watcher styles
//! nothing again.
//!
//! `STYLIZE_SKIP_AZURITE=1` skips them.
mod common;

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use common::cloud::*;
use common::*;
use stylize_cloud::{BlobStore, Bytes, Cloud, CloudConfig};

const TONE: &str = "sine=frequency=440:sample_rate=44100";
const LOW_TONE: &str = "sine=frequency=220:sample_rate=48000";

fn put(rt: &tokio::runtime::Runtime, store: &dyn BlobStore, key: &str, bytes: Vec<u8>) {
    rt.block_on(async {
        store.create_if_missing().await.unwrap();
        store.put(key, Bytes::from(bytes)).await.unwrap();
    });
}

fn exists(rt: &tokio::runtime::Runtime, store: &dyn BlobStore, key: &str) -> bool {
    rt.block_on(store.exists(key)).unwrap()
}

/// Every blob under `prefix` with its bytes.
fn contents(
    rt: &tokio::runtime::Runtime,
    store: &dyn BlobStore,
    prefix: &str,
) -> BTreeMap<String, Vec<u8>> {
    rt.block_on(async {
        let mut out = BTreeMap::new();
        for entry in store.list(prefix).await.unwrap() {
            out.insert(
                entry.key.clone(),
                store.get(&entry.key).await.unwrap().to_vec(),
            );
        }
        out
    })
}

/// A watcher of `inbox` into `outbox` listing every `poll` seconds.
fn watcher(spec: &str, work: &Path, poll: &str, more: &[&str]) -> Proc {
    let mut args = vec![
        "watch",
        "--cloud",
        spec,
        "--inbox",
        "inbox",
        "--outbox",
        "outbox",
        "--poll",
        poll,
        "--settle",
        "0.5",
        "--work-dir",
        work.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    Proc::spawn(&args)
}

/// Waits until `check` holds; on a timeout or an error line, fails with the watcher's log.
fn wait_for(watch: &Proc, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + PROCESS_TIMEOUT;
    loop {
        let log = watch.log();
        assert!(!log.contains("error:"), "waiting until {what}:\n{log}");
        if check() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Writes the outbox's `key` to `dir` and checks it against its input: styled, same frames and
/// timing, audio packets unchanged.
fn assert_styled_output(
    rt: &tokio::runtime::Runtime,
    outbox: &dyn BlobStore,
    key: &str,
    input: &Path,
    size: (u64, u64),
    dir: &Path,
) {
    let output = dir.join(format!("from-outbox-{}", key.replace('/', "_")));
    std::fs::write(&output, rt.block_on(outbox.get(key)).unwrap()).unwrap();
    assert_same_timing_and_audio("h264", input, &output, size);
    let (_, _, before) = frame_rgb(input, 5);
    let (_, _, after) = frame_rgb(&output, 5);
    let diff = mean_abs_diff(&before, &after);
    assert!(
        diff > 10.0,
        "{key} looks like its input ({diff:.1} levels apart): was it styled?"
    );
}

#[test]
fn an_inbox_is_styled_into_the_outbox_and_a_restarted_watcher_styles_nothing_again() {
    let Some(backend) = Backend::azurite() else {
        return;
    };
    let (spec, azurite) = (backend.spec(), backend.azurite_process());
    let dir = tempdir();
    let one = scene_clip(dir.path(), "one.mp4", "96x64", "10", 20, &[TONE], &[]);
    let two = scene_clip(dir.path(), "two.mp4", "80x64", "25", 24, &[LOW_TONE], &[]);
    let three = scene_clip(dir.path(), "three.mp4", "64x48", "10", 12, &[TONE], &[]);
    let rt = rt();
    let inbox = backend.cloud_in("inbox").blobs;
    let outbox = backend.cloud_in("outbox").blobs;
    let read = |path: &Path| std::fs::read(path).unwrap();
    // A preset's folder; a sidecar naming a preset and a strength; a text file named .mp4.
    put(&rt, inbox.as_ref(), "starry-blue/one.mp4", read(&one));
    put(&rt, inbox.as_ref(), "two.mp4", read(&two));
    put(
        &rt,
        inbox.as_ref(),
        "two.mp4.json",
        br#"{"style": "preset:3", "strength": 0.8}"#.to_vec(),
    );
    put(
        &rt,
        inbox.as_ref(),
        "starry-blue/notes.mp4",
        b"meeting notes, not a video\n".to_vec(),
    );
    // A large upload in progress: its block is staged, not committed.
    let uploading = azurite.blob_store("inbox").unwrap();
    rt.block_on(uploading.stage_uncommitted("starry-blue/three.mp4", Bytes::from(read(&three))))
        .unwrap();

    let workers = [worker(&spec, "w1", &[]), worker(&spec, "w2", &[])];
    let work = dir.path().join("work");
    let watch = watcher(&spec, &work, "0.5", &[]);
    wait_for(&watch, "both videos are styled", || {
        let log = watch.log();
        log.contains("starry-blue/one.mp4: styled into") && log.contains("two.mp4: styled into")
    });
    let log = watch.log();
    let first_done = log.find("styled into").expect("a styled line");
    for name in ["starry-blue/one.mp4: styling into", "two.mp4: styling into"] {
        let started = log.find(name).unwrap_or_else(|| panic!("{name}\n{log}"));
        assert!(
            started < first_done,
            "the videos were styled one after the other:\n{log}"
        );
    }
    assert_styled_output(
        &rt,
        outbox.as_ref(),
        "starry-blue/one.mp4",
        &one,
        (96, 64),
        dir.path(),
    );
    assert_styled_output(&rt, outbox.as_ref(), "two.mp4", &two, (80, 64), dir.path());

    // The text file went to failed/ with one line saying why; the videos stay where they were.
    wait_for(&watch, "the text file is moved aside", || {
        !exists(&rt, inbox.as_ref(), "starry-blue/notes.mp4")
    });
    let reason = String::from_utf8(
        rt.block_on(inbox.get("failed/starry-blue/notes.mp4.reason.txt"))
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert_eq!(reason.lines().count(), 1, "{reason}");
    assert!(
        reason.starts_with("not a usable video: starry-blue/notes.mp4: not a video file"),
        "{reason}"
    );
    assert_eq!(
        rt.block_on(inbox.get("failed/starry-blue/notes.mp4"))
            .unwrap()
            .as_ref(),
        b"meeting notes, not a video\n"
    );
    assert!(exists(&rt, inbox.as_ref(), "two.mp4") && exists(&rt, inbox.as_ref(), "two.mp4.json"));

    // The upload in progress was left alone; once committed, it is styled.
    let runs = backend.cloud();
    assert!(!exists(
        &rt,
        runs.blobs.as_ref(),
        "watch/inbox/starry-blue/three.mp4.json"
    ));
    assert!(!exists(&rt, outbox.as_ref(), "starry-blue/three.mp4"));
    rt.block_on(uploading.commit_staged("starry-blue/three.mp4"))
        .unwrap();
    wait_for(&watch, "the finished upload is styled", || {
        exists(&rt, outbox.as_ref(), "starry-blue/three.mp4")
    });
    assert_styled_output(
        &rt,
        outbox.as_ref(),
        "starry-blue/three.mp4",
        &three,
        (64, 48),
        dir.path(),
    );
    // Stopped as Kubernetes stops it; 130 as for any interrupted command.
    let (code, log) = stop(watch);
    assert_eq!(code, 130, "{log}");
    backend.assert_no_secret("the watcher's log", &log);

    // Restarted, it finds everything styled: no new run, no job, the outbox as it was.
    let outputs = contents(&rt, outbox.as_ref(), "");
    let run_count = rt
        .block_on(stylize_cloud::list_runs(runs.blobs.as_ref()))
        .unwrap()
        .len();
    assert_eq!(run_count, 3);
    let (code, log) = watcher(&spec, &work, "0.5", &["--once"]).wait();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("inbox done: 0 styled, 0 failed, 3 styled before"),
        "{log}"
    );
    assert_eq!(contents(&rt, outbox.as_ref(), ""), outputs);
    assert_eq!(
        rt.block_on(stylize_cloud::list_runs(runs.blobs.as_ref()))
            .unwrap()
            .len(),
        run_count
    );
    assert_eq!(rt.block_on(runs.jobs.approximate_len()).unwrap(), 0);
    for worker in workers {
        stop(worker);
    }
}

/// The queue Event Grid would deliver to, `inbox-events`, made.
fn events_queue(rt: &tokio::runtime::Runtime, spec: &str) -> Cloud {
    let config = CloudConfig::from_spec(spec).unwrap();
    let events = Cloud::open(&config.with_queue("inbox-events").unwrap()).unwrap();
    rt.block_on(events.jobs.create_if_missing()).unwrap();
    events
}

/// A BlobCreated event as Event Grid puts it on a storage queue (Base64 of the Event Grid
/// schema), for blob `key` of the inbox, written by `api`.
fn blob_created(container: &str, key: &str, api: &str, size: usize) -> String {
    let event = serde_json::json!({
        "topic": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/media/providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
        "subject": format!("/blobServices/default/containers/{container}/blobs/{key}"),
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": format!("event-{key}-{api}"),
        "data": {
            "api": api,
            "contentType": "video/mp4",
            "contentLength": size,
            "blobType": "BlockBlob",
            "url": format!("http://127.0.0.1/devstoreaccount1/{container}/{key}"),
            "sequencer": "00000000000004420000000000028963"
        },
        "dataVersion": "",
        "metadataVersion": "1",
        "eventTime": "2026-11-30T18:41:00.9584103Z"
    });
    base64::engine::general_purpose::STANDARD.encode(event.to_string())
}

#[test]
fn event_grid_messages_bring_finished_uploads_without_a_listing() {
    let Some(backend) = Backend::azurite() else {
        return;
    };
    let spec = backend.spec();
    let dir = tempdir();
    let late = scene_clip(dir.path(), "late.mp4", "64x48", "10", 10, &[TONE], &[]);
    let rt = rt();
    let inbox = backend.cloud_in("inbox").blobs;
    let outbox = backend.cloud_in("outbox").blobs;
    rt.block_on(inbox.create_if_missing()).unwrap();
    let events = events_queue(&rt, &spec);

    let workers = [worker(&spec, "w1", &[])];
    // Listed once at start (empty), then only every hour: what comes now comes by events.
    let watch = watcher(
        &spec,
        &dir.path().join("work"),
        "3600",
        &["--events", "inbox-events"],
    );
    wait_for(&watch, "the watcher is up", || {
        watch.log().contains("watching inbox/")
    });
    let bytes = std::fs::read(&late).unwrap();
    put(&rt, inbox.as_ref(), "starry-blue/late.mp4", bytes.clone());
    put(&rt, inbox.as_ref(), "starry-blue/begun.mp4", bytes.clone());
    for message in [
        // An upload that has only begun (a hierarchical-namespace account's CreateFile).
        blob_created("inbox", "starry-blue/begun.mp4", "CreateFile", 0),
        // Another container's upload.
        blob_created("elsewhere", "starry-blue/late.mp4", "PutBlob", bytes.len()),
        blob_created("inbox", "starry-blue/late.mp4", "PutBlockList", bytes.len()),
        "not an event".to_owned(),
    ] {
        rt.block_on(events.jobs.send(&message)).unwrap();
    }
    wait_for(&watch, "the video named by the event is styled", || {
        exists(&rt, outbox.as_ref(), "starry-blue/late.mp4")
    });
    assert_styled_output(
        &rt,
        outbox.as_ref(),
        "starry-blue/late.mp4",
        &late,
        (64, 48),
        dir.path(),
    );
    wait_for(&watch, "the events queue is drained", || {
        rt.block_on(events.jobs.approximate_len()).unwrap() == 0
    });
    // Only the finished upload's event counted: the other video waits for the next listing.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(!exists(&rt, outbox.as_ref(), "starry-blue/begun.mp4"));
    let (code, log) = stop(watch);
    assert_eq!(code, 130, "{log}");
    assert!(log.contains("events queue: dropping a message"), "{log}");
    assert!(!log.contains("begun.mp4"), "{log}");
    for worker in workers {
        stop(worker);
    }
}

/// The watcher runs on its own grant (`stylize runs grant --watcher`): it styles, moves a bad
/// upload aside and reads events with it, and the grant reaches nothing else.
#[test]
fn a_watcher_works_on_its_own_narrow_grant() {
    let Some(backend) = Backend::azurite() else {
        return;
    };
    let spec = backend.spec();
    let dir = tempdir();
    let clip = scene_clip(dir.path(), "g.mp4", "64x48", "10", 10, &[TONE], &[]);
    let rt = rt();
    // The key's holder makes the containers and queues; a grant cannot.
    let runs = backend.cloud();
    rt.block_on(runs.create_if_missing()).unwrap();
    events_queue(&rt, &spec);
    let (inbox, outbox) = (
        backend.cloud_in("inbox").blobs,
        backend.cloud_in("outbox").blobs,
    );
    rt.block_on(outbox.create_if_missing()).unwrap();
    put(
        &rt,
        inbox.as_ref(),
        "starry-blue/g.mp4",
        std::fs::read(&clip).unwrap(),
    );
    put(
        &rt,
        inbox.as_ref(),
        "starry-blue/bad.mp4",
        b"not a video".to_vec(),
    );

    let (code, grant, stderr) = run(&[
        "runs",
        "grant",
        "--cloud",
        &spec,
        "--watcher",
        "--inbox",
        "inbox",
        "--outbox",
        "outbox",
        "--events",
        "inbox-events",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let grant = grant.trim();
    assert!(!grant.contains("AccountKey"), "{grant}");
    assert!(
        stderr.contains("container outbox read, write;")
            && stderr.contains("queue inbox-events take, delete messages"),
        "{stderr}"
    );

    let workers = [worker(&spec, "w1", &[])];
    let (code, log) = watcher(
        grant,
        &dir.path().join("work"),
        "0.5",
        &["--once", "--events", "inbox-events"],
    )
    .wait();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("inbox done: 1 styled, 1 failed, 0 styled before"),
        "{log}"
    );
    backend.assert_no_secret("the watcher's log", &log);
    assert_styled_output(
        &rt,
        outbox.as_ref(),
        "starry-blue/g.mp4",
        &clip,
        (64, 48),
        dir.path(),
    );
    assert!(exists(&rt, inbox.as_ref(), "failed/starry-blue/bad.mp4"));
    assert!(!exists(&rt, inbox.as_ref(), "starry-blue/bad.mp4"));

    // What it may not do: list or delete in the outbox, touch any other container.
    let granted = Cloud::open(&CloudConfig::from_spec(grant).unwrap()).unwrap();
    let granted_outbox = granted.container("outbox").unwrap();
    let refused = rt.block_on(granted_outbox.list("")).unwrap_err();
    assert!(
        matches!(refused, stylize_cloud::Error::PermissionDenied { .. }),
        "{refused}"
    );
    let refused = rt
        .block_on(granted_outbox.delete("starry-blue/g.mp4"))
        .unwrap_err();
    assert!(
        matches!(refused, stylize_cloud::Error::PermissionDenied { .. }),
        "{refused}"
    );
    assert!(matches!(
        granted.container("stylize-private"),
        Err(stylize_cloud::Error::NotGranted { .. })
    ));
    for worker in workers {
        stop(worker);
    }
}

/// A watcher killed while a video's jobs run: restarted, it resumes that run (the run id is the
/// video's hash) and its jobs done before the kill are not styled again.
#[test]
fn a_watcher_killed_mid_run_resumes_that_run_on_restart() {
    let Some(backend) = Backend::azurite() else {
        return;
    };
    let spec = backend.spec();
    let dir = tempdir();
    let clip = scene_clip(dir.path(), "long.mp4", "64x48", "10", 48, &[TONE], &[]);
    let rt = rt();
    let inbox = backend.cloud_in("inbox").blobs;
    put(
        &rt,
        inbox.as_ref(),
        "starry-blue/long.mp4",
        std::fs::read(&clip).unwrap(),
    );
    // Six jobs of 8 frames at 0.1 s a frame: about five seconds of styling.
    let worker = worker(&spec, "w1", &["--test-stylizer-ms", "100"]);
    let work = dir.path().join("work");
    let watch = watcher(&spec, &work, "0.5", &["--frames-per-job", "8"]);
    let runs = backend.cloud();
    let done = |run: &stylize_cloud::RunId| contents(&rt, runs.blobs.as_ref(), &run.done_prefix());
    wait_for(&watch, "two jobs are done", || {
        let ids = rt
            .block_on(stylize_cloud::list_runs(runs.blobs.as_ref()))
            .unwrap();
        ids.first().is_some_and(|run| done(run).len() >= 2)
    });
    watch.sigkill();
    let run = the_run(&rt, &runs);
    let done_before = done(&run);
    assert!(done_before.len() < 6, "the run ended before the kill");

    let (code, log) = watcher(&spec, &work, "0.5", &["--once", "--frames-per-job", "8"]).wait();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains(&format!("resuming run {run}")), "{log}");
    assert!(log.contains("inbox done: 1 styled, 0 failed"), "{log}");
    assert_eq!(the_run(&rt, &runs), run, "one run, resumed");
    let done_after = done(&run);
    assert_eq!(done_after.len(), 6);
    for (key, marker) in &done_before {
        assert_eq!(done_after.get(key), Some(marker), "{key} was styled again");
    }
    let outbox = backend.cloud_in("outbox").blobs;
    let output = dir.path().join("from-outbox.mp4");
    std::fs::write(
        &output,
        rt.block_on(outbox.get("starry-blue/long.mp4")).unwrap(),
    )
    .unwrap();
    assert_same_timing_and_audio("h264", &clip, &output, (64, 48));
    // The killed watcher's copy of the video was cleared away by the next.
    assert_eq!(listing(&work), Vec::<String>::new());
    stop(worker);
}
