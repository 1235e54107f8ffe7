//! What `stylize watch` adds to a cloud run: from an upload landing in the inbox to its styled video in the outbox, by listing and by Event Grid events, against the same video run straight through `--cloud`.
//!
//! `cargo run --release --example bench_watch` (after `cargo build --release --bin stylize`).
//! A fresh Azurite, two workers on this machine, the bundled sample (480×480, 120 frames, AAC).
//! Each upload is made distinct (a new title tag), so no run reuses another's styled frames.
//! Workers run the test stylizer (`--test-stylizer-ms MS`, default 0) unless `NETWORK=1`: what is
//! measured is the watcher's own share, not the network's.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use stylize_cloud::{testing::Azurite, Bytes, Cloud, CloudConfig};

fn main() {
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("stylize");
    assert!(
        bin.is_file(),
        "build the binary first: cargo build --release --bin stylize"
    );
    let azurite = Azurite::start().expect("Azurite starts");
    let spec = azurite.connection_string();
    let work = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cloud = |container: &str| {
        let config = CloudConfig::from_spec(&spec)
            .unwrap()
            .with_container(container)
            .unwrap();
        Cloud::open(&config).unwrap()
    };
    let (inbox, outbox) = (cloud("inbox").blobs, cloud("outbox").blobs);
    rt.block_on(inbox.create_if_missing()).unwrap();
    let events = Cloud::open(
        &CloudConfig::from_spec(&spec)
            .unwrap()
            .with_queue("inbox-events")
            .unwrap(),
    )
    .unwrap();
    rt.block_on(events.jobs.create_if_missing()).unwrap();

    let stylizer: Vec<String> = match std::env::var("NETWORK").as_deref() {
        Ok("1") => vec![],
        _ => {
            let ms = std::env::var("MS").unwrap_or_else(|_| "0".into());
            vec!["--test-stylizer-ms".into(), ms]
        }
    };
    let workers: Vec<Child> = (0..2)
        .map(|i| {
            let mut args = vec!["worker", "--cloud", &spec, "--poll-interval", "0.2"];
            let id = format!("w{i}");
            args.extend(["--worker-id", &id]);
            args.extend(stylizer.iter().map(String::as_str));
            quiet(&bin, &args).spawn().unwrap()
        })
        .collect();
    let mut copies = 0;
    let mut clip = || {
        copies += 1;
        variant(work.path(), copies)
    };

    let direct = {
        let input = clip();
        let output = work.path().join("direct.mp4");
        let started = Instant::now();
        let status = quiet(
            &bin,
            &[
                input.to_str().unwrap(),
                "--style",
                "starry-blue",
                "--cloud",
                &spec,
                "-o",
                output.to_str().unwrap(),
                "-q",
            ],
        )
        .status()
        .unwrap();
        assert!(status.success());
        started.elapsed()
    };

    let work_dir = work.path().join("watch");
    let watch = |extra: &[&str]| {
        let mut args = vec![
            "watch",
            "--cloud",
            &spec,
            "--inbox",
            "inbox",
            "--outbox",
            "outbox",
            "--work-dir",
            work_dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let mut child = quiet(&bin, &args).spawn().unwrap();
        std::thread::sleep(Duration::from_secs(2));
        assert!(child.try_wait().unwrap().is_none(), "the watcher runs");
        child
    };
    let upload = |names: &[String], clips: &[PathBuf]| -> Instant {
        let started = Instant::now();
        for (name, clip) in names.iter().zip(clips) {
            let bytes = Bytes::from(std::fs::read(clip).unwrap());
            rt.block_on(inbox.put(name, bytes)).unwrap();
        }
        started
    };
    let until_out = |names: &[String], started: Instant| -> Duration {
        while !names.iter().all(|n| rt.block_on(outbox.exists(n)).unwrap()) {
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "no output after 10 minutes"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        started.elapsed()
    };

    // Listing, at the defaults (--poll 5, --settle 2).
    let mut watcher = watch(&[]);
    let one = vec!["starry-blue/listed.mp4".to_string()];
    let listed = until_out(&one, upload(&one, &[clip()]));
    let four: Vec<String> = (1..=4)
        .map(|i| format!("starry-blue/batch-{i}.mp4"))
        .collect();
    let clips: Vec<PathBuf> = (0..4).map(|_| clip()).collect();
    let batch = until_out(&four, upload(&four, &clips));
    stop(&mut watcher);

    // Event Grid: the event arrives as the upload completes (here: sent right after it).
    let mut watcher = watch(&["--events", "inbox-events"]);
    let one = vec!["starry-blue/evented.mp4".to_string()];
    let evented_clip = clip();
    let size = std::fs::metadata(&evented_clip).unwrap().len();
    let started = upload(&one, &[evented_clip]);
    rt.block_on(events.jobs.send(&blob_created(&one[0], size)))
        .unwrap();
    let evented = until_out(&one, started);
    stop(&mut watcher);
    let mut quick = watch(&["--poll", "1", "--settle", "1"]);
    let one = vec!["starry-blue/quick.mp4".to_string()];
    let quickly = until_out(&one, upload(&one, &[clip()]));
    stop(&mut quick);
    for mut worker in workers {
        stop(&mut worker);
    }

    let s = |d: Duration| format!("{:6.1} s", d.as_secs_f64());
    println!(
        "sample.mp4 (480×480, 120 frames), 2 workers ({}), Azurite, {} cores",
        if stylizer.is_empty() {
            "the network".to_string()
        } else {
            format!("test stylizer {} ms", stylizer[1])
        },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "straight through --cloud (no watcher)          {}",
        s(direct)
    );
    println!(
        "watch, listing (--poll 5 --settle 2), 1 video  {}",
        s(listed)
    );
    println!(
        "watch, listing, 4 videos uploaded at once      {}  ({:.1}× one)",
        s(batch),
        batch.as_secs_f64() / listed.as_secs_f64()
    );
    println!(
        "watch, listing (--poll 1 --settle 1), 1 video  {}",
        s(quickly)
    );
    println!(
        "watch, Event Grid event (--settle 2), 1 video  {}",
        s(evented)
    );
}

/// The sample under a new title: same pictures and sound, another file (another run id).
fn variant(dir: &Path, n: usize) -> PathBuf {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/sample.mp4");
    let out = dir.join(format!("clip-{n}.mp4"));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&sample)
        .args(["-c", "copy", "-metadata", &format!("title=copy {n}")])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    out
}

fn quiet(bin: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(bin);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Event Grid's message for a finished upload of `key` to the inbox (Base64 of its JSON).
fn blob_created(key: &str, size: u64) -> String {
    let event = serde_json::json!({
        "subject": format!("/blobServices/default/containers/inbox/blobs/{key}"),
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": key,
        "data": { "api": "PutBlob", "contentLength": size, "blobType": "BlockBlob" },
        "dataVersion": "", "metadataVersion": "1", "eventTime": "2026-12-04T00:00:00Z"
    });
    base64::engine::general_purpose::STANDARD.encode(event.to_string())
}
