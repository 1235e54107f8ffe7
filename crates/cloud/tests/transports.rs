//! One test suite, run against every transport: the local directory and Azure (a real Azurite started per test).

use std::{collections::BTreeSet, sync::Arc, time::Duration};
use stylize_cloud::{
    dead_letter, delete_run, existing_frames, list_runs, publish_manifest, testing::Azurite, Bytes,
    Cloud, CloudConfig, DoneMarker, Error, FailedMarker, FrameFormat, FrameRate, JobSpec,
    MessageLease, RunManifest, RunProgress, StyleKind, StyleParamsSpec, StyleSpec, PRESET_COUNT,
};

/// A connected transport plus whatever keeps it alive (a temp folder or an Azurite process).
struct Harness {
    cloud: Cloud,
    _guard: Guard,
}

#[allow(dead_code)]
enum Guard {
    Dir(tempfile::TempDir),
    Azurite(Azurite),
}

async fn local() -> Option<Harness> {
    let dir = tempfile::tempdir().unwrap();
    let config = CloudConfig::from_spec(&format!("dir:{}", dir.path().display())).unwrap();
    let cloud = Cloud::open(&config).unwrap();
    cloud.create_if_missing().await.unwrap();
    Some(Harness {
        cloud,
        _guard: Guard::Dir(dir),
    })
}

async fn azurite() -> Option<Harness> {
    let azurite = Azurite::start_or_skip()
        .expect("Azurite must start (set STYLIZE_SKIP_AZURITE=1 to skip)")?;
    let config = CloudConfig::from_spec(&azurite.connection_string()).unwrap();
    let cloud = Cloud::open(&config).unwrap();
    cloud.create_if_missing().await.unwrap();
    Some(Harness {
        cloud,
        _guard: Guard::Azurite(azurite),
    })
}

/// Declares each suite function once per transport, as `local::NAME` and `azurite::NAME`.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(h) = super::local().await { super::$name(&h.cloud).await }
                }
            )*
        }
        mod azurite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(h) = super::azurite().await { super::$name(&h.cloud).await }
                }
            )*
        }
    };
}

suite!(
    blob_put_get_list_delete,
    blob_put_if_absent_writes_once,
    queue_send_receive_delete,
    queue_visibility_extension_and_stale_receipts,
    queue_redelivery_after_timeout_counts_dequeues,
    queue_each_message_goes_to_one_receiver,
    queue_poison_move_and_malformed_messages,
    lease_renews_completes_and_releases,
    queue_hand_back_with_a_new_body,
    lease_outlives_a_receipt_spent_by_its_own_earlier_attempt,
    run_manifest_progress_resume_and_clean,
    blob_files_go_up_and_down_whole,
);

/// Files up and down: one larger than an upload block (Azure: staged blocks, committed at the
/// end) and one small, replacing what was there; a missing blob is NotFound.
async fn blob_files_go_up_and_down_whole(cloud: &Cloud) {
    cloud.blobs.create_if_missing().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 20 MiB of a pattern that no block boundary repeats exactly.
    let big: Vec<u8> = (0..20u32 << 20)
        .map(|i| (i % 251) as u8 ^ (i >> 20) as u8)
        .collect();
    let (up, down) = (dir.path().join("up.bin"), dir.path().join("down.bin"));
    std::fs::write(&up, &big).unwrap();
    assert_eq!(
        cloud.blobs.put_file("files/big.bin", &up).await.unwrap(),
        big.len() as u64
    );
    assert_eq!(
        cloud
            .blobs
            .get_to_file("files/big.bin", &down)
            .await
            .unwrap(),
        big.len() as u64
    );
    assert!(
        std::fs::read(&down).unwrap() == big,
        "the file came back changed"
    );
    std::fs::write(&up, b"small").unwrap();
    cloud.blobs.put_file("files/big.bin", &up).await.unwrap();
    cloud
        .blobs
        .get_to_file("files/big.bin", &down)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&down).unwrap(), b"small");
    assert!(matches!(
        cloud.blobs.get_to_file("files/none.bin", &down).await,
        Err(Error::NotFound(_))
    ));
}

async fn blob_put_get_list_delete(cloud: &Cloud) {
    let b = &cloud.blobs;
    b.put("runs/r1/frames/000001.png", Bytes::from_static(b"one"))
        .await
        .unwrap();
    b.put("runs/r1/frames/000000.png", Bytes::from_static(b"zero"))
        .await
        .unwrap();
    b.put("runs/r1/styled/000000.png", Bytes::from_static(b"s0"))
        .await
        .unwrap();
    b.put("runs/r2/frames/000000.png", Bytes::new())
        .await
        .unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    b.put("runs/r1/big.bin", Bytes::from(big.clone()))
        .await
        .unwrap();

    assert_eq!(
        b.get("runs/r1/frames/000001.png").await.unwrap(),
        Bytes::from_static(b"one")
    );
    assert_eq!(b.get("runs/r1/big.bin").await.unwrap().as_ref(), &big[..]);
    b.put("runs/r1/frames/000001.png", Bytes::from_static(b"uno"))
        .await
        .unwrap();
    assert_eq!(
        b.get("runs/r1/frames/000001.png").await.unwrap(),
        Bytes::from_static(b"uno")
    );

    assert!(b.exists("runs/r1/frames/000000.png").await.unwrap());
    assert!(!b.exists("runs/r1/frames/000009.png").await.unwrap());
    assert!(matches!(
        b.get("runs/r1/frames/000009.png").await,
        Err(Error::NotFound(_))
    ));

    let keys = |v: Vec<stylize_cloud::BlobEntry>| v.into_iter().map(|e| e.key).collect::<Vec<_>>();
    assert_eq!(
        keys(b.list("runs/r1/frames/").await.unwrap()),
        ["runs/r1/frames/000000.png", "runs/r1/frames/000001.png"]
    );
    let all = b.list("runs/").await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(
        all.iter()
            .find(|e| e.key == "runs/r1/big.bin")
            .unwrap()
            .size,
        3_000_000
    );
    // A prefix that ends inside a name segment matches like a string prefix.
    assert_eq!(keys(b.list("runs/r1/fr").await.unwrap()).len(), 2);
    assert!(b.list("runs/none/").await.unwrap().is_empty());

    assert!(b.delete("runs/r1/frames/000000.png").await.unwrap());
    assert!(!b.delete("runs/r1/frames/000000.png").await.unwrap());
    assert_eq!(
        keys(b.list("runs/r1/frames/").await.unwrap()),
        ["runs/r1/frames/000001.png"]
    );

    assert!(matches!(
        b.put("../escape", Bytes::new()).await,
        Err(Error::Config(_))
    ));
    assert!(matches!(b.get("runs//x").await, Err(Error::Config(_))));
}

async fn blob_put_if_absent_writes_once(cloud: &Cloud) {
    let b = cloud.blobs.clone();
    let key = "runs/r/manifest.json";
    // Racing writers: exactly one wins, and its bytes are what everyone reads.
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let b = b.clone();
            tokio::spawn(async move {
                (
                    i,
                    b.put_if_absent(key, Bytes::from(format!("writer {i}")))
                        .await
                        .unwrap(),
                )
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (i, won) = t.await.unwrap();
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(
        b.get(key).await.unwrap(),
        Bytes::from(format!("writer {}", winners[0]))
    );
}

const VIS: Duration = Duration::from_secs(1);

async fn queue_send_receive_delete(cloud: &Cloud) {
    let q = &cloud.jobs;
    assert!(q.receive(VIS).await.unwrap().is_none());
    assert_eq!(q.approximate_len().await.unwrap(), 0);
    for i in 0..3 {
        q.send(&format!(r#"{{"n":{i},"text":"<&>"}}"#))
            .await
            .unwrap();
    }
    assert_eq!(q.approximate_len().await.unwrap(), 3);
    let mut bodies = BTreeSet::new();
    while let Some(m) = q.receive(Duration::from_secs(30)).await.unwrap() {
        assert_eq!(m.dequeue_count, 1);
        bodies.insert(m.body.clone());
        q.delete(&m).await.unwrap();
    }
    let expected: BTreeSet<String> = (0..3)
        .map(|i| format!(r#"{{"n":{i},"text":"<&>"}}"#))
        .collect();
    assert_eq!(bodies, expected);
    assert_eq!(q.approximate_len().await.unwrap(), 0);

    q.send("a").await.unwrap();
    q.send("b").await.unwrap();
    q.clear().await.unwrap();
    assert_eq!(q.approximate_len().await.unwrap(), 0);
}

async fn queue_visibility_extension_and_stale_receipts(cloud: &Cloud) {
    let q = &cloud.jobs;
    q.send("job").await.unwrap();
    let mut m = q.receive(VIS).await.unwrap().unwrap();
    let first = m.clone();
    q.set_visibility(&mut m, Duration::from_secs(4))
        .await
        .unwrap();
    assert_ne!(
        m.pop_receipt, first.pop_receipt,
        "an update must issue a new receipt"
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    // Past the original 1 s, but within the extension: still hidden.
    assert!(q.receive(VIS).await.unwrap().is_none());
    // The receipt from before the update no longer works.
    assert!(matches!(
        q.delete(&first).await,
        Err(Error::LeaseLost { .. })
    ));
    q.delete(&m).await.unwrap();
    assert_eq!(q.approximate_len().await.unwrap(), 0);
    // Deleted: the current receipt is now stale too.
    let mut gone = m.clone();
    assert!(matches!(
        q.set_visibility(&mut gone, VIS).await,
        Err(Error::LeaseLost { .. })
    ));
}

async fn queue_redelivery_after_timeout_counts_dequeues(cloud: &Cloud) {
    let q = &cloud.jobs;
    q.send("again").await.unwrap();
    let first = q.receive(VIS).await.unwrap().unwrap();
    assert_eq!(first.dequeue_count, 1);
    assert!(q.receive(VIS).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let second = q
        .receive(VIS)
        .await
        .unwrap()
        .expect("message must reappear after its timeout");
    assert_eq!(second.id, first.id);
    assert_eq!(second.body, "again");
    assert_eq!(second.dequeue_count, 2);
    // The first worker's receipt is stale: it cannot delete the redelivered job.
    assert!(matches!(
        q.delete(&first).await,
        Err(Error::LeaseLost { .. })
    ));
    q.delete(&second).await.unwrap();

    // Releasing (visibility 0) hands the message back at once.
    q.send("released").await.unwrap();
    let mut m = q.receive(Duration::from_secs(60)).await.unwrap().unwrap();
    q.set_visibility(&mut m, Duration::ZERO).await.unwrap();
    let again = q
        .receive(VIS)
        .await
        .unwrap()
        .expect("released message must be visible");
    assert_eq!((again.id.as_str(), again.dequeue_count), (m.id.as_str(), 2));
    q.delete(&again).await.unwrap();
}

async fn queue_each_message_goes_to_one_receiver(cloud: &Cloud) {
    let q = cloud.jobs.clone();
    for i in 0..20 {
        q.send(&i.to_string()).await.unwrap();
    }
    let receivers: Vec<_> = (0..6)
        .map(|_| {
            let q = q.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(m) = q.receive(Duration::from_secs(60)).await.unwrap() {
                    got.push(m.body.parse::<u32>().unwrap());
                    q.delete(&m).await.unwrap();
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for r in receivers {
        all.extend(r.await.unwrap());
    }
    all.sort();
    assert_eq!(
        all,
        (0..20).collect::<Vec<_>>(),
        "every message exactly once"
    );
}

async fn queue_poison_move_and_malformed_messages(cloud: &Cloud) {
    let (q, poison) = (&cloud.jobs, &cloud.poison);
    assert_eq!(poison.name(), format!("{}-poison", q.name()));
    let manifest = sample_manifest(30, 10);
    let job = manifest.jobs()[1].clone();
    q.send(&job.to_message()).await.unwrap();
    q.send("this is not a job").await.unwrap();
    q.send(r#"{"version":1,"run_id":"0123456789abcdef","job":0,"extra":true}"#)
        .await
        .unwrap();

    let max_deliveries = 2;
    let mut failed_jobs = Vec::new();
    let mut malformed = 0;
    for _ in 0..20 {
        let Some(m) = q.receive(VIS).await.unwrap() else {
            if q.approximate_len().await.unwrap() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(600)).await;
            continue;
        };
        match JobSpec::from_message(&m.body) {
            Err(Error::MalformedMessage(_)) => {
                dead_letter(q.as_ref(), poison.as_ref(), &m).await.unwrap();
                malformed += 1;
            }
            Err(e) => panic!("unexpected {e}"),
            Ok(spec) if m.dequeue_count >= max_deliveries => {
                let marker = FailedMarker::new(
                    &spec,
                    "styling kept failing",
                    m.dequeue_count,
                    "test worker",
                );
                cloud
                    .blobs
                    .put(&spec.failed_key(), Bytes::from(marker.to_json()))
                    .await
                    .unwrap();
                dead_letter(q.as_ref(), poison.as_ref(), &m).await.unwrap();
                failed_jobs.push(spec.job);
            }
            // Simulate a worker that fails: leave it to time out and come back.
            Ok(_) => {}
        }
    }
    assert_eq!(malformed, 2);
    assert_eq!(failed_jobs, [1]);
    assert_eq!(q.approximate_len().await.unwrap(), 0);
    assert_eq!(poison.approximate_len().await.unwrap(), 3);
    let mut poisoned = Vec::new();
    while let Some(m) = poison.receive(Duration::from_secs(30)).await.unwrap() {
        poisoned.push(m.body.clone());
        poison.delete(&m).await.unwrap();
    }
    assert!(poisoned.contains(&job.to_message()));
    assert!(poisoned.contains(&"this is not a job".to_owned()));

    let progress = RunProgress::load(cloud.blobs.as_ref(), &manifest)
        .await
        .unwrap();
    assert_eq!(progress.failed.keys().copied().collect::<Vec<_>>(), [1]);
    assert_eq!(progress.failed[&1].frames.start, 10);
    assert_eq!(progress.failed[&1].dequeue_count, 2);
}

async fn lease_renews_completes_and_releases(cloud: &Cloud) {
    let q: Arc<dyn stylize_cloud::JobQueue> = cloud.jobs.clone();
    q.send("long job").await.unwrap();
    let vis = Duration::from_secs(2);
    let m = q.receive(vis).await.unwrap().unwrap();
    let lease = MessageLease::start(q.clone(), m, vis);
    // Well past the first timeout: renewals keep it hidden.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert!(
        q.receive(VIS).await.unwrap().is_none(),
        "a renewed message must stay hidden"
    );
    assert!(!lease.is_lost());
    lease.complete().await.unwrap();
    assert_eq!(q.approximate_len().await.unwrap(), 0);

    q.send("given back").await.unwrap();
    let m = q.receive(Duration::from_secs(60)).await.unwrap().unwrap();
    let lease = MessageLease::start(q.clone(), m, Duration::from_secs(60));
    lease.release().await.unwrap();
    let again = q
        .receive(VIS)
        .await
        .unwrap()
        .expect("released job is visible at once");
    assert_eq!(again.dequeue_count, 2);
    q.delete(&again).await.unwrap();
}

/// A renewal refused while the message is still hidden: its receipt was spent by an earlier
/// attempt that took effect (as when the SDK retries an update whose reply was lost). Nobody else
/// can hold the message, so the job is not lost: the worker finishes it, and the message, no
/// longer renewable, comes back when the spent attempt's timeout runs out.
async fn lease_outlives_a_receipt_spent_by_its_own_earlier_attempt(cloud: &Cloud) {
    let q: Arc<dyn stylize_cloud::JobQueue> = cloud.jobs.clone();
    q.create_if_missing().await.unwrap();
    q.send("job").await.unwrap();
    let vis = Duration::from_secs(3);
    let m = q.receive(vis).await.unwrap().unwrap();
    let mut spent_by = m.clone();
    let lease = MessageLease::start(q.clone(), m, vis);
    // The attempt that took effect, with the lease's receipt: the lease's next renewal is refused.
    q.set_visibility(&mut spent_by, Duration::from_secs(30))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!lease.is_lost(), "a spent receipt is not a lost job");
    assert!(q.receive(VIS).await.unwrap().is_none(), "still hidden");
    assert!(matches!(
        lease.complete().await,
        Err(Error::LeaseLost { .. })
    ));
    q.delete(&spent_by).await.unwrap();
    assert_eq!(q.approximate_len().await.unwrap(), 0);
}

/// A delivery handed back with a rewritten text (how a worker notes a delivery lost to storage
/// trouble): the next receive sees the new text, the delivery count goes on, the old receipt dies.
async fn queue_hand_back_with_a_new_body(cloud: &Cloud) {
    let q = cloud.jobs.clone();
    q.create_if_missing().await.unwrap();
    q.send("first text").await.unwrap();
    let mut m = q.receive(Duration::from_secs(60)).await.unwrap().unwrap();
    let stale = m.clone();
    q.set_visibility_and_body(&mut m, Duration::ZERO, "second text")
        .await
        .unwrap();
    assert_eq!(m.body, "second text");
    assert!(matches!(
        q.delete(&stale).await,
        Err(Error::LeaseLost { .. })
    ));
    let again = q.receive(VIS).await.unwrap().expect("visible at once");
    assert_eq!(
        (again.body.as_str(), again.dequeue_count),
        ("second text", 2)
    );
    q.delete(&again).await.unwrap();
    assert_eq!(q.approximate_len().await.unwrap(), 0);
}

fn sample_manifest(frames: u32, per_job: u32) -> RunManifest {
    RunManifest::new(
        "clip.mp4",
        stylize_cloud::sha256_hex(format!("clip {frames}").as_bytes()),
        frames,
        (64, 48),
        FrameRate {
            num: 30000,
            den: 1001,
        },
        FrameFormat::Png,
        per_job,
        "preset:mosaic",
        StyleSpec {
            kind: StyleKind::Presets,
            label: "mosaic".into(),
            values: vec![1.0 / 26.0; PRESET_COUNT],
        },
        StyleParamsSpec {
            max_size: None,
            preserve_colors: false,
            strength: 0.8,
            optimize: None,
        },
    )
    .unwrap()
}

async fn run_manifest_progress_resume_and_clean(cloud: &Cloud) {
    let b = cloud.blobs.as_ref();
    let m = sample_manifest(25, 10);
    assert_eq!(publish_manifest(b, &m).await.unwrap(), m);
    // A re-run builds a new manifest (new time, maybe another split): the first one stays in force.
    let mut rerun = sample_manifest(25, 7);
    rerun.created += time::Duration::seconds(5);
    assert_eq!(rerun.run_id, m.run_id);
    assert_eq!(publish_manifest(b, &rerun).await.unwrap(), m);
    assert_eq!(list_runs(b).await.unwrap(), std::slice::from_ref(&m.run_id));

    for n in [0u32, 1, 2, 24] {
        b.put(
            &m.run_id.frame_key(n, m.frame_format),
            Bytes::from(vec![1u8; 10]),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        existing_frames(b, &m.run_id.frames_prefix())
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        [0, 1, 2, 24]
    );

    let jobs = m.jobs();
    assert_eq!(jobs.len(), 3);
    let done = DoneMarker::new(&jobs[2], "w0", 0.5);
    b.put(&jobs[2].done_key(), Bytes::from(done.to_json()))
        .await
        .unwrap();
    let progress = RunProgress::load(b, &m).await.unwrap();
    assert_eq!(progress.done.iter().copied().collect::<Vec<_>>(), [2]);
    assert_eq!(progress.frames_done, 5);
    assert_eq!(progress.pending(), [0, 1]);
    assert!(!progress.is_settled());

    // A job that failed once but was done later counts as done.
    let failed = FailedMarker::new(&jobs[0], "boom", 5, "w1");
    b.put(&jobs[0].failed_key(), Bytes::from(failed.to_json()))
        .await
        .unwrap();
    b.put(
        &jobs[0].done_key(),
        Bytes::from(DoneMarker::new(&jobs[0], "w0", 1.0).to_json()),
    )
    .await
    .unwrap();
    b.put(
        &jobs[1].failed_key(),
        Bytes::from(FailedMarker::new(&jobs[1], "bad frame", 5, "w1").to_json()),
    )
    .await
    .unwrap();
    let progress = RunProgress::load(b, &m).await.unwrap();
    assert!(progress.is_settled() && !progress.is_complete());
    assert_eq!(progress.failed.keys().copied().collect::<Vec<_>>(), [1]);
    assert_eq!(progress.failed[&1].reason, "bad frame");

    let other = sample_manifest(3, 1);
    publish_manifest(b, &other).await.unwrap();
    let deleted = delete_run(b, &m.run_id).await.unwrap();
    // The manifest, the frames, the done and the failed markers (the index entry goes too).
    assert_eq!(deleted, 1 + 4 + 2 + 2);
    assert!(!b.exists(&m.run_id.index_key()).await.unwrap());
    assert!(b.list(&m.run_id.prefix()).await.unwrap().is_empty());
    assert_eq!(
        list_runs(b).await.unwrap(),
        std::slice::from_ref(&other.run_id)
    );

    // Runs are found by the index, not by listing the runs' blobs: a manifest put there by hand,
    // unindexed, is not seen while the index has entries, and is once it has none (storage
    // written before the index) or once its run is published again.
    let unindexed = sample_manifest(4, 2);
    b.put(
        &unindexed.run_id.manifest_key(),
        Bytes::from(unindexed.to_json()),
    )
    .await
    .unwrap();
    assert_eq!(
        list_runs(b).await.unwrap(),
        std::slice::from_ref(&other.run_id)
    );
    delete_run(b, &other.run_id).await.unwrap();
    assert_eq!(
        list_runs(b).await.unwrap(),
        std::slice::from_ref(&unindexed.run_id)
    );
    publish_manifest(b, &unindexed).await.unwrap();
    assert!(b.exists(&unindexed.run_id.index_key()).await.unwrap());
}

/// A file put into a `dir:` queue's folder by hand, not sent, is delivered with its text as the
/// body (so a worker moves it aside as a foreign message) instead of stopping every receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_queue_delivers_a_hand_made_file_as_its_text() {
    let h = local().await.unwrap();
    let Guard::Dir(dir) = &h._guard else {
        unreachable!()
    };
    let folder = dir.path().join("queues").join(h.cloud.jobs.name());
    assert!(folder.is_dir(), "{}", folder.display());
    std::fs::write(folder.join("0-by-hand.json"), b"{ half a message").unwrap();
    let m = h
        .cloud
        .jobs
        .receive(Duration::from_secs(30))
        .await
        .unwrap()
        .expect("delivered");
    assert_eq!(m.body, "{ half a message");
    assert_eq!(m.dequeue_count, 1);
    assert!(matches!(
        JobSpec::from_message(&m.body),
        Err(Error::MalformedMessage(_))
    ));
    h.cloud.jobs.delete(&m).await.unwrap();
    assert_eq!(h.cloud.jobs.approximate_len().await.unwrap(), 0);
}
