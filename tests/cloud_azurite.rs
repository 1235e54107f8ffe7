//! Cloud mode against a real Azurite, for what only Azure has: account keys, SAS tokens and how
//! their refusals read. Every scenario that any storage backend can run is in `cloud.rs`, against
//! Azurite and `dir:PATH` alike.
//!
//! Each test starts its own Azurite (fresh data folder, free loopback ports, killed by PID on drop).
//! `STYLIZE_SKIP_AZURITE=1` skips them.
mod common;

use base64::Engine as _;
use common::cloud::*;
use common::*;
use std::time::Duration;

fn azurite() -> Option<Backend> {
    Backend::azurite()
}

/// A wrong account key or an expired SAS: one clear line, no secret, non-zero exit, for the
/// coordinator and a worker alike.
#[test]
fn wrong_key_and_expired_sas_give_one_clear_error_line() {
    let Some(backend) = azurite() else { return };
    let azurite = backend.azurite_process();
    let dir = tempdir();
    let input = scene_clip(dir.path(), "in.mp4", "64x48", "25", 3, &[], &[]);
    let wrong_key = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
    let wrong = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={wrong_key};BlobEndpoint={};QueueEndpoint={}",
        azurite.blob_endpoint(),
        azurite.queue_endpoint()
    );
    let dev_key = dev_key();
    let expired = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let sas: String = stylize_cloud::sas::account_sas("devstoreaccount1", &dev_key, expired)
        .into_iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(&v)))
        .collect::<Vec<_>>()
        .join("&");
    let signature = sas.split("sig=").nth(1).unwrap().to_string();
    let expired_sas = format!(
        "BlobEndpoint={};QueueEndpoint={};SharedAccessSignature={sas}",
        azurite.blob_endpoint(),
        azurite.queue_endpoint()
    );
    for (spec, secret) in [(&wrong, &wrong_key), (&expired_sas, &signature)] {
        let (code, stdout, stderr) = run(&[
            input.to_str().unwrap(),
            "--style",
            "preset:0",
            "--cloud",
            spec,
        ]);
        assert_eq!(code, 1, "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with("error: cannot use storage account devstoreaccount1"),
            "{stderr}"
        );
        assert!(
            stderr.contains("storage rejected the credentials (403 "),
            "{stderr}"
        );
        let (wcode, wout, werr) = run(&[
            "worker",
            "--cloud",
            spec,
            "--test-stylizer-ms",
            "1",
            "--worker-id",
            "w0",
        ]);
        assert_eq!(wcode, 1, "{werr}");
        let error_lines: Vec<&str> = werr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(error_lines.len(), 1, "{werr}");
        assert!(
            error_lines[0].contains("storage rejected the credentials (403 "),
            "{werr}"
        );
        for text in [&stdout, &stderr, &wout, &werr] {
            assert!(
                !text.contains(secret.as_str()) && !text.contains("sig="),
                "secret shown: {text}"
            );
        }
    }
    assert_eq!(listing(dir.path()), vec!["in.mp4"]);
}

/// Inputs in one container, outputs in another, and a worker holding only an account SAS that
/// can read, write, list and process messages but create and delete nothing: the run completes,
/// each blob lands where it belongs, and the worker's signature shows nowhere; the SAS may not
/// clean the run, the key may.
#[test]
fn separate_output_container_and_a_worker_with_a_narrow_sas() {
    let Some(backend) = azurite() else { return };
    let azurite = backend.azurite_process();
    let cs = format!("{};Container=inputs", azurite.connection_string());
    let dev_key = dev_key();
    let valid = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let pairs =
        stylize_cloud::sas::account_sas_with("devstoreaccount1", &dev_key, valid, "co", "rwlaup");
    let sas = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let signature = percent_encode(&pairs.iter().find(|(k, _)| *k == "sig").unwrap().1);
    let worker_spec = format!(
        "BlobEndpoint={}?{sas};QueueEndpoint={}?{sas};Container=inputs",
        azurite.blob_endpoint(),
        azurite.queue_endpoint()
    );
    let dir = tempdir();
    // The coordinator (full key) creates the containers and queues before the worker starts.
    let done = run_into_an_output_container(
        dir.path(),
        open(&cs, None),
        &["--cloud", &cs],
        (&worker_spec, &[]),
    );
    assert!(
        !done.worker_log.contains(&signature) && !done.worker_log.contains("sig="),
        "{}",
        done.worker_log
    );

    // The narrow SAS really is narrow: it may not delete, so cleaning needs the key.
    let (code, _, stderr) = run(&["runs", "clean", done.run.as_str(), "--cloud", &worker_spec]);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("lack the permission") || stderr.contains("rejected"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&signature) && !stderr.contains("sig="),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["runs", "clean", done.run.as_str(), "--cloud", &cs]);
    assert_eq!(code, 0, "{stderr}");
    let prefix = done.run.prefix();
    assert_eq!(
        count(&done.rt, &done.outputs, &prefix) + count(&done.rt, &done.inputs.blobs, &prefix),
        0
    );
}

/// A worker whose credential cannot read the run's container (a service SAS for the outputs
/// container only) cannot check its job: the job ends after `--max-deliveries` with a failed
/// marker and its message in the poison queue, and the coordinator exits 1 naming it, rather
/// than the message circling between workers with no end.
#[test]
fn a_worker_scoped_away_from_the_run_container_fails_the_job_within_its_deliveries() {
    let Some(backend) = azurite() else { return };
    let azurite = backend.azurite_process();
    let cs = format!("{};Container=inputs", azurite.connection_string());
    let valid = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let key = dev_key();
    let outputs_only = query(&stylize_cloud::sas::container_sas(
        "devstoreaccount1",
        &key,
        "outputs",
        valid,
        "racwl",
    ));
    let queue_messages = query(&stylize_cloud::sas::account_sas_with(
        "devstoreaccount1",
        &key,
        valid,
        "co",
        "raup",
    ));
    let worker_spec = format!(
        "BlobEndpoint={}?{outputs_only};QueueEndpoint={}?{queue_messages};Container=outputs",
        azurite.blob_endpoint(),
        azurite.queue_endpoint()
    );
    let dir = tempdir();
    let input = scene_clip(dir.path(), "in.mp4", "64x48", "25", 4, &[], &[]);
    let coordinator = Coordinator::new(&input, "preset:5", &cs, &["--output-container", "outputs"]);
    coordinator.submit();
    let w = worker(
        &worker_spec,
        "w0",
        &["--test-stylizer-ms", "1", "--max-deliveries", "3"],
    );
    let (code, log) = coordinator.run(&[]);
    let (_, worker_log) = stop(w);
    assert_eq!(code, 1, "{log}\nworker:\n{worker_log}");
    assert!(log.contains("1 of 1 jobs failed"), "{log}");
    assert!(
        log.contains("job 0 (frames 0..4): could not check the job"),
        "{log}"
    );
    assert!(log.contains("3 deliveries"), "{log}");
    assert!(!dir.path().join("in.styled.mp4").exists());

    let cloud = open(&cs, None);
    let rt = rt();
    let run = the_run(&rt, &cloud);
    let outputs = cloud.container("outputs").unwrap();
    assert_eq!(count(&rt, &outputs, &run.failed_prefix()), 1);
    assert_eq!(count(&rt, &outputs, &run.done_prefix()), 0);
    // At least once: a send whose reply is lost to a slow emulator is retried by the SDK.
    let poisoned = rt.block_on(cloud.poison.approximate_len()).unwrap();
    assert!(poisoned >= 1, "the job's message is in the poison queue");
    assert_eq!(rt.block_on(cloud.jobs.approximate_len()).unwrap(), 0);
}

/// Storage frozen in the middle of a run (the emulator stopped with SIGSTOP, then resumed) for
/// longer than every retry budget of a single request (here the per-try read timeout is scaled
/// down to 2 s, so one request gives up after ~17 s; the outage lasts 30 s): the coordinator
/// waits it out and the video is complete, with no job marked failed.
#[test]
fn storage_frozen_mid_run_costs_time_not_the_run() {
    with_transport("segments", storage_frozen_mid_run);
}

#[test]
fn storage_frozen_mid_upload_costs_time_not_the_run_frames() {
    with_transport("frames", storage_frozen_mid_run);
}

/// Frames: frozen in the middle of the upload. Segments (whose upload is a few pieces): once jobs
/// are done, while the coordinator follows and joins.
fn storage_frozen_mid_run() {
    let Some(backend) = azurite() else { return };
    let azurite = backend.azurite_process();
    let cs = azurite.connection_string();
    let dir = tempdir();
    let input = scene_clip(dir.path(), "in.mp4", "320x240", "25", 300, &[], &[]);
    let timeout = [(stylize_cloud::azure::READ_TIMEOUT_VAR, "2")];
    let w = Proc::spawn_with_env(
        &[
            "worker",
            "--cloud",
            &cs,
            "--worker-id",
            "w0",
            "--poll-interval",
            "0.2",
            "--visibility-timeout",
            "10",
            "--test-stylizer-ms",
            "1",
        ],
        &timeout,
    );
    // One transfer at a time: the upload of 300 frames is still going when storage freezes.
    let coordinator = patient_coordinator(&input, &cs, &timeout);
    let cloud = open(&cs, None);
    let rt = rt();
    wait_for_the_run(&rt, &cloud, "the run is under way", |run| {
        match segments() {
            true => blob_count(&rt, &cloud, &run.done_prefix()) >= 2,
            false => blob_count(&rt, &cloud, &run.frames_prefix()) >= 100,
        }
    });
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &azurite.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    signal("-STOP");
    std::thread::sleep(Duration::from_secs(30));
    signal("-CONT");
    let (code, log) = coordinator.wait();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("storage trouble while"), "{log}");
    assert!(log.contains("storage answers again after"), "{log}");
    assert_eq!(all_frames(&dir.path().join("in.styled.mp4")).len(), 300);
    let run = the_run(&rt, &cloud);
    assert_eq!(blob_count(&rt, &cloud, &run.failed_prefix()), 0);
    let (_, worker_log) = stop(w);
    assert!(worker_log.contains("processed"), "{worker_log}");
}

/// Storage throttled in the middle of a run: for 20 s every request is answered `503 Server Busy`
/// (as Azure answers under load), fast, instead of hanging. The coordinator rides it out, the
/// worker hands its job back without spending the job's deliveries (one allowed here: counted, the
/// second delivery would fail the job), and the video is complete with no job marked failed.
#[test]
fn storage_throttled_mid_run_costs_time_not_the_run() {
    with_transport("segments", storage_throttled_mid_run);
}

#[test]
fn storage_throttled_mid_run_costs_time_not_the_run_frames() {
    with_transport("frames", storage_throttled_mid_run);
}

fn storage_throttled_mid_run() {
    let Some(backend) = azurite() else { return };
    let azurite = backend.azurite_process();
    let (cs, throttle) = relayed(azurite);
    let dir = tempdir();
    let input = scene_clip(dir.path(), "in.mp4", "320x240", "25", 300, &[], &[]);
    let w = Proc::spawn(&[
        "worker",
        "--cloud",
        &cs,
        "--worker-id",
        "w0",
        "--poll-interval",
        "0.2",
        "--visibility-timeout",
        "10",
        "--max-deliveries",
        "1",
        "--test-stylizer-ms",
        "100",
    ]);
    let coordinator = patient_coordinator(&input, &cs, &[]);
    // Watched through Azurite directly, past the throttle.
    let cloud = open(&azurite.connection_string(), None);
    let rt = rt();
    // Every frame up, two jobs done: the worker is in the middle of a job (2 s each).
    wait_for_the_run(
        &rt,
        &cloud,
        "the worker is in the middle of the run",
        |run| {
            blob_count(&rt, &cloud, &run.done_prefix()) >= 2
                && (segments() || blob_count(&rt, &cloud, &run.frames_prefix()) >= 300)
        },
    );
    throttle.set_busy(true);
    std::thread::sleep(Duration::from_secs(20));
    throttle.set_busy(false);
    let (code, log) = coordinator.wait();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("storage trouble while"), "{log}");
    assert_eq!(all_frames(&dir.path().join("in.styled.mp4")).len(), 300);
    let run = the_run(&rt, &cloud);
    assert_eq!(blob_count(&rt, &cloud, &run.failed_prefix()), 0);
    let (_, worker_log) = stop(w);
    assert!(worker_log.contains("processed"), "{worker_log}");
    // With --max-deliveries 1 no job failed: the throttle cost time only. A frames job caught by
    // it (a frame upload out of retries) was handed back and its second delivery was not its
    // last; a segments job writes one segment at its end, whose upload's own retries may outlast
    // the throttle instead.
    let handed_back = worker_log.contains("not counted against its 1 deliveries")
        && worker_log.contains("delivery 2");
    assert!(handed_back || segments(), "{worker_log}");
}

/// A worker killed while its segment is half uploaded: storage never shows a partial segment (an
/// upload is published whole or not at all), the job has no done marker, and after the visibility
/// timeout another worker styles it again; the video is complete and every frame right.
#[test]
fn a_worker_killed_while_uploading_its_segment_leaves_no_partial_segment() {
    let Some(backend) = azurite() else { return };
    let azurite = backend.azurite_process();
    let (cs, relay) = relayed(azurite);
    let dir = tempdir();
    let input = scene_clip(dir.path(), "in.mp4", "320x240", "25", 60, &[], &[]);
    let output = dir.path().join("out.mp4");
    let direct = azurite.connection_string();
    let coordinator = Coordinator::new(&input, "preset:1", &direct, &["--frames-per-job", "20"]);
    coordinator.submit();
    let (rt, cloud) = (rt(), open(&direct, None));
    let run = the_run(&rt, &cloud);

    relay.stall_upload_to("segments");
    let doomed = worker(
        &cs,
        "doomed",
        &["--test-stylizer-ms", "5", "--visibility-timeout", "4"],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while relay.stalled_upload().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "no segment upload reached the relay: {}",
            doomed.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    doomed.sigkill();
    let stalled = relay.stalled_upload().unwrap();
    // The SDK may send the blob name's slashes percent-encoded.
    let job: u32 = stalled
        .replace("%2F", "/")
        .split('?')
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .and_then(|name| name.strip_suffix(".mkv"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a segment's path: {stalled}"));
    // The worker's end is gone and so is the relay's to storage: the upload was cut short.
    std::thread::sleep(Duration::from_secs(1));
    let segment = run.segment_key(job);
    let exists = |key: &str| rt.block_on(cloud.blobs.exists(key)).unwrap();
    assert!(!exists(&segment), "no partial {segment} in storage");
    assert!(
        !exists(&done_key(&rt, &cloud, job)),
        "no done marker for job {job}"
    );

    let rescuer = worker(
        &direct,
        "rescuer",
        &["--test-stylizer-ms", "5", "--idle-exit", "30"],
    );
    let (code, log) = coordinator.run(&["-o", output.to_str().unwrap()]);
    assert_eq!(code, 0, "{log}");
    let (_, rescuer_log) = stop(rescuer);
    let redone = format!(
        "job {job} (frames {}..{}): 20 frames in",
        job * 20,
        job * 20 + 20
    );
    assert!(rescuer_log.contains(&redone), "{rescuer_log}");
    assert_inverted(&input, &output, 60, 10.0);
}

/// Blob storage and the queue both out for 25 s in the middle of a job: the job fails on storage
/// and its hand-back is refused too. The worker keeps trying the hand-back while its delivery
/// holds the message, so the outage is not counted against the job (one delivery allowed): before,
/// the message came back after its visibility timeout as a second, counted delivery and the job
/// failed. The video is complete and no job is marked failed.
#[test]
fn a_hand_back_refused_in_an_outage_is_tried_again_and_costs_no_delivery() {
    with_transport("frames", || {
        let Some(backend) = azurite() else { return };
        let azurite = backend.azurite_process();
        let (blob_port, queue_port) = (
            endpoint_port(&azurite.blob_endpoint()),
            endpoint_port(&azurite.queue_endpoint()),
        );
        let (blobs, queue) = (
            common::throttle::Throttle::start(&[blob_port]),
            common::throttle::Throttle::start(&[queue_port]),
        );
        let direct = azurite.connection_string();
        let cs = direct
            .replace(&format!(":{blob_port}/"), &format!(":{}/", blobs.port(0)))
            .replace(&format!(":{queue_port}/"), &format!(":{}/", queue.port(0)));
        let dir = tempdir();
        let input = scene_clip(dir.path(), "in.mp4", "64x48", "25", 40, &[], &[]);
        let output = dir.path().join("out.mp4");
        let coordinator =
            Coordinator::new(&input, "preset:1", &direct, &["--frames-per-job", "20"]);
        coordinator.submit();
        let w = worker(
            &cs,
            "w0",
            &[
                "--test-stylizer-ms",
                "300",
                "--visibility-timeout",
                "40",
                "--max-deliveries",
                "1",
                "--idle-exit",
                "60",
            ],
        );
        wait_until(
            "the worker is in its first job",
            Duration::from_secs(60),
            || w.log().contains("started, delivery 1"),
        );
        std::thread::sleep(Duration::from_millis(500));
        blobs.set_busy(true);
        queue.set_busy(true);
        std::thread::sleep(Duration::from_secs(25));
        blobs.set_busy(false);
        queue.set_busy(false);
        let (code, log) =
            coordinator.run(&["-o", output.to_str().unwrap(), "--storage-patience", "300"]);
        let (_, worker_log) = stop(w);
        assert_eq!(code, 0, "{log}\n{worker_log}");
        assert!(
            worker_log.contains("could not hand it back yet")
                && worker_log.contains("handed back once storage answered again"),
            "{worker_log}"
        );
        assert!(
            !worker_log.contains("returns after the visibility timeout"),
            "{worker_log}"
        );
        let (rt, cloud) = (rt(), open(&direct, None));
        let run = the_run(&rt, &cloud);
        assert_eq!(blob_count(&rt, &cloud, &run.failed_prefix()), 0);
        assert_eq!(all_frames(&output).len(), 40);
    });
}

/// The port of a service endpoint such as `http://127.0.0.1:10000/devstoreaccount1`.
fn endpoint_port(endpoint: &str) -> u16 {
    endpoint
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// A relay in front of Azurite's blob and queue services: the connection string through it, and
/// the relay (to throttle or stall what passes).
fn relayed(azurite: &stylize_cloud::testing::Azurite) -> (String, common::throttle::Throttle) {
    let (blob, queue) = (
        endpoint_port(&azurite.blob_endpoint()),
        endpoint_port(&azurite.queue_endpoint()),
    );
    let relay = common::throttle::Throttle::start(&[blob, queue]);
    // Azurite's own connection string, its two ports swapped for the relay's.
    let cs = azurite
        .connection_string()
        .replace(&format!(":{blob}/"), &format!(":{}/", relay.port(0)))
        .replace(&format!(":{queue}/"), &format!(":{}/", relay.port(1)));
    (cs, relay)
}

/// One 300-frame input through storage at one transfer at a time (so the upload is still going
/// when trouble starts), riding out up to 5 minutes of storage trouble.
fn patient_coordinator(input: &std::path::Path, cs: &str, env: &[(&str, &str)]) -> Proc {
    Proc::spawn_with_env(
        &[
            input.to_str().unwrap(),
            "--style",
            "preset:5",
            "--cloud",
            cs,
            "--frames-per-job",
            "20",
            "--transfers",
            "1",
            "--storage-patience",
            "300",
        ],
        env,
    )
}

/// Waits (up to 2 minutes) until the one run in storage satisfies `ready`.
fn wait_for_the_run(
    rt: &tokio::runtime::Runtime,
    cloud: &stylize_cloud::Cloud,
    what: &str,
    ready: impl Fn(&stylize_cloud::RunId) -> bool,
) {
    wait_until(what, Duration::from_secs(120), || {
        let runs = rt
            .block_on(stylize_cloud::list_runs(cloud.blobs.as_ref()))
            .unwrap();
        runs.first().is_some_and(&ready)
    });
}

/// `stylize runs grant` with `args`: the grant (stdout, one line), after checking that stderr is one
/// line saying what it grants, with no secret.
fn issue_grant(args: &[&str]) -> String {
    let (code, grant, note) = run(&[&["runs", "grant"], args].concat());
    assert_eq!(code, 0, "{note}");
    assert_eq!(grant.lines().count(), 1, "{grant}");
    assert_eq!(note.lines().count(), 1, "{note}");
    assert!(
        note.contains(" grant, expires ") && !note.contains("sig="),
        "{note}"
    );
    assert!(
        !grant.contains("AccountKey") && !grant.contains(&DEV_KEY[..20]),
        "{grant}"
    );
    grant.trim_end().to_owned()
}

const DEV_KEY: &str = stylize_cloud::config::DEV_ACCOUNT_KEY;

/// Workers holding the grant `stylize runs grant` prints (not the account key) style a run whose
/// outputs have their own container; with that grant, writing the run's manifest or an input
/// frame is refused. Without an account key to sign with, or for `dir:`, the command refuses in
/// one line.
#[test]
fn a_worker_with_its_grant_styles_a_run_and_cannot_write_its_inputs() {
    let Some(backend) = azurite() else { return };
    let azurite = backend.azurite_process();
    let cs = format!("{};Container=inputs", azurite.connection_string());
    let grant = issue_grant(&["--cloud", &cs, "--output-container", "outputs"]);
    assert!(
        grant.contains(";ContainerSas.inputs=") && grant.contains(";QueueSas.stylize-jobs-poison=")
    );

    let dir = tempdir();
    let done = run_into_an_output_container(
        dir.path(),
        open(&cs, None),
        &["--cloud", &cs],
        (&grant, &[]),
    );
    let log = &done.worker_log;
    assert!(
        !log.contains("sig=") && !log.contains(&DEV_KEY[..20]),
        "{log}"
    );
    assert!(
        log.contains(
            "grant for containers inputs, outputs and queues stylize-jobs, stylize-jobs-poison"
        ),
        "{log}"
    );

    let worker = open(&grant, None);
    let frame = done.run.frame_key(0, stylize_cloud::FrameFormat::Png);
    for (what, key) in [
        ("the manifest", done.run.manifest_key()),
        ("an input frame", frame),
    ] {
        let write = done.rt.block_on(
            worker
                .blobs
                .put(&key, stylize_cloud::Bytes::from_static(b"forged")),
        );
        assert!(
            matches!(write, Err(stylize_cloud::Error::PermissionDenied { .. })),
            "writing {what} with the worker grant: {write:?}"
        );
    }
    let manifest = done
        .rt
        .block_on(done.inputs.blobs.get(&done.run.manifest_key()))
        .unwrap();
    assert_ne!(&manifest[..], b"forged");

    let sas_only = format!(
        "BlobEndpoint={};QueueEndpoint={};SharedAccessSignature=sv=2022-11-02&sig=SECRETSIG",
        azurite.blob_endpoint(),
        azurite.queue_endpoint()
    );
    for (spec, why) in [
        (sas_only.as_str(), "needs the account key"),
        ("dir:/tmp/stylize-no-such-folder", "local folder (dir:)"),
    ] {
        let (code, stdout, stderr) = run(&[
            "runs",
            "grant",
            "--cloud",
            spec,
            "--output-container",
            "outputs",
        ]);
        assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: cannot issue the grant: ") && stderr.contains(why),
            "{stderr}"
        );
        assert!(!stderr.contains("SECRETSIG"), "{stderr}");
    }
}

/// A job whose message names a run container outside the worker's grant is moved to the poison
/// queue untouched: nothing is read from or written to any container for it.
#[test]
fn a_job_naming_a_container_outside_the_grant_is_moved_aside() {
    let Some(backend) = azurite() else { return };
    let azurite = backend.azurite_process();
    let cs = azurite.connection_string();
    let grant = issue_grant(&[
        "--cloud",
        &cs,
        "--container",
        "inputs",
        "--output-container",
        "outputs",
    ]);
    let dir = tempdir();
    let input = scene_clip(dir.path(), "in.mp4", "64x48", "25", 4, &[], &[]);
    let (code, log) = Proc::spawn(&[
        input.to_str().unwrap(),
        "--style",
        "preset:5",
        "--cloud",
        &cs,
        "--container",
        "elsewhere",
        "--output-container",
        "outputs",
        "--no-wait",
    ])
    .wait();
    assert_eq!(code, 0, "{log}");

    let key = open(&cs, Some("elsewhere"));
    let rt = rt();
    let w = worker(&grant, "w0", &["--test-stylizer-ms", "1"]);
    wait_until("the job is moved aside", PROCESS_TIMEOUT, || {
        rt.block_on(key.poison.approximate_len()).unwrap() == 1
    });
    let (_, worker_log) = stop(w);
    assert!(
        worker_log.contains("moved message")
            && worker_log.contains(
                "no access to container elsewhere (they cover containers inputs, outputs)"
            ),
        "{worker_log}"
    );
    assert!(!worker_log.contains("sig="), "{worker_log}");
    assert_eq!(rt.block_on(key.jobs.approximate_len()).unwrap(), 0);
    let run = the_run(&rt, &key);
    let outputs = key.container("outputs").unwrap();
    for prefix in [run.styled_prefix(), run.done_prefix(), run.failed_prefix()] {
        assert_eq!(count(&rt, &outputs, &prefix), 0, "{prefix}");
        assert_eq!(count(&rt, &key.blobs, &prefix), 0, "{prefix}");
    }
}

fn dev_key() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(stylize_cloud::config::DEV_ACCOUNT_KEY)
        .unwrap()
}

/// A SAS's query pairs as a query string.
fn query(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
