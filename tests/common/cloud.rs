//! The cloud suites' harness: the storage backends a scenario runs against (`dir:PATH` and a real
//! Azurite), `stylize` coordinator and worker processes whose output is collected as they run, and
//! looks into the storage they share.
#![allow(dead_code)]
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stylize_cloud::{testing::Azurite, BlobStore, Cloud, CloudConfig, RunId};

pub const STYLE_PICTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/swirls.jpg");
/// How long any one process may take before the test gives up on it (a hang is a failure, not a wait).
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(180);

/// Where a scenario's runs, frames and queues live: the same scenario runs against each.
pub enum Backend {
    /// The shared-folder transport, `--cloud dir:PATH`, rooted in a fresh temporary folder.
    Dir(tempfile::TempDir),
    /// Azure Blob Storage + Queues on a real Azurite of its own (fresh data, killed on drop),
    /// reached with its account key. `STYLIZE_SKIP_AZURITE=1` skips these.
    Azurite(Azurite),
}

impl Backend {
    pub fn dir() -> Option<Backend> {
        Some(Backend::Dir(super::tempdir()))
    }

    pub fn azurite() -> Option<Backend> {
        Azurite::start_or_skip()
            .expect("Azurite must start (set STYLIZE_SKIP_AZURITE=1 to skip)")
            .map(Backend::Azurite)
    }

    /// The value of `--cloud`.
    pub fn spec(&self) -> String {
        match self {
            Backend::Dir(root) => format!("dir:{}", root.path().display()),
            Backend::Azurite(azurite) => azurite.connection_string(),
        }
    }

    /// The Azurite behind an Azure backend.
    pub fn azurite_process(&self) -> &Azurite {
        match self {
            Backend::Azurite(azurite) => azurite,
            Backend::Dir(_) => panic!("not an Azurite backend"),
        }
    }

    /// The storage as `--cloud SPEC` sees it (default container and queue).
    pub fn cloud(&self) -> Cloud {
        open(&self.spec(), None)
    }

    /// The storage as `--cloud SPEC --container NAME` sees it.
    pub fn cloud_in(&self, container: &str) -> Cloud {
        open(&self.spec(), Some(container))
    }

    /// Asserts that `text` (`what`: a log, stored markers) shows none of the backend's secrets:
    /// for Azure the account key (whole or its first 20 characters) and any SAS signature. A
    /// shared folder holds no secret.
    pub fn assert_no_secret(&self, what: &str, text: &str) {
        if let Backend::Azurite(_) = self {
            // The key is Azurite's public one, but it stands for any account key here.
            let key = stylize_cloud::config::DEV_ACCOUNT_KEY;
            assert!(
                !text.contains(key) && !text.contains(&key[..20]),
                "{what} show the account key:\n{text}"
            );
            assert!(
                !text.contains("sig="),
                "{what} show a SAS signature:\n{text}"
            );
        }
    }
}

/// The storage a spec names, in `container` when given.
pub fn open(spec: &str, container: Option<&str>) -> Cloud {
    let mut config = CloudConfig::from_spec(spec).unwrap();
    if let Some(container) = container {
        config = config.with_container(container).unwrap();
    }
    Cloud::open(&config).unwrap()
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A child `stylize` whose stdout and stderr are collected line by line as it runs, so a test can
/// wait for a log line and still read everything at the end.
pub struct Proc {
    child: Child,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Proc {
    pub fn spawn(args: &[&str]) -> Proc {
        Self::spawn_with_env(args, &[])
    }

    pub fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut command = super::stylize();
        // Coordinators of a scenario run with its transport (workers take whatever jobs say).
        if let Some(transport) = transport() {
            if args.contains(&"--cloud") && args.first() != Some(&"worker") {
                command.env("STYLIZE_TRANSPORT", transport);
            }
        }
        let mut child = command
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start stylize");
        let log = Arc::new(Mutex::new(String::new()));
        let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let reader = std::thread::spawn({
            let log = log.clone();
            move || {
                let out_log = log.clone();
                let out = std::thread::spawn(move || {
                    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                        let mut l = out_log.lock().unwrap();
                        l.push_str(&line);
                        l.push('\n');
                    }
                });
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
                let _ = out.join();
            }
        });
        Proc {
            child,
            log,
            reader: Some(reader),
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits for the exit; returns (code, everything it printed).
    pub fn wait(mut self) -> (i32, String) {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if let Some(r) = self.reader.take() {
                    r.join().unwrap();
                }
                return (status.code().unwrap_or(-1), self.log());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "stylize did not finish within {PROCESS_TIMEOUT:?}; it printed:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn sigkill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

thread_local! {
    static TRANSPORT: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

/// Runs a scenario with every coordinator it starts on this thread using `transport`.
pub fn with_transport(transport: &'static str, scenario: impl FnOnce()) {
    TRANSPORT.with(|t| t.set(Some(transport)));
    scenario();
    TRANSPORT.with(|t| t.set(None));
}

/// The transport of the scenario running on this thread, if one was set.
pub fn transport() -> Option<&'static str> {
    TRANSPORT.with(|t| t.get())
}

/// Whether coordinators started on this thread send segments (the default) rather than frames.
pub fn segments() -> bool {
    transport() != Some("frames")
}

/// A coordinator's command line for one input on one storage, run as each scenario needs it.
pub struct Coordinator {
    args: Vec<String>,
}

impl Coordinator {
    /// `stylize INPUT --style STYLE --cloud SPEC`, then `options`.
    pub fn new(input: &Path, style: &str, spec: &str, options: &[&str]) -> Coordinator {
        let head = [input.to_str().unwrap(), "--style", style, "--cloud", spec];
        Coordinator {
            args: head.iter().chain(options).map(|a| a.to_string()).collect(),
        }
    }

    /// Starts it, with `more` appended (for scenarios that stop it midway).
    pub fn spawn(&self, more: &[&str]) -> Proc {
        let args: Vec<&str> = self
            .args
            .iter()
            .map(String::as_str)
            .chain(more.iter().copied())
            .collect();
        Proc::spawn(&args)
    }

    /// Runs it, with `more` appended, to its end: (exit code, everything it printed).
    pub fn run(&self, more: &[&str]) -> (i32, String) {
        self.spawn(more).wait()
    }

    /// `--no-wait`, which must succeed: the frames are up and the jobs queued. Its log.
    pub fn submit(&self) -> String {
        let (code, log) = self.run(&["--no-wait"]);
        assert_eq!(code, 0, "{log}");
        log
    }
}

/// `stylize worker --cloud SPEC --worker-id ID` polling every 0.2 s, plus `extra`.
pub fn worker(spec: &str, id: &str, extra: &[&str]) -> Proc {
    let mut args = vec![
        "worker",
        "--cloud",
        spec,
        "--worker-id",
        id,
        "--poll-interval",
        "0.2",
    ];
    args.extend_from_slice(extra);
    Proc::spawn(&args)
}

/// Stops a worker with SIGTERM (as Kubernetes does); returns its exit code and log.
pub fn stop(worker: Proc) -> (i32, String) {
    worker.sigterm();
    worker.wait()
}

pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The one run in the storage.
pub fn the_run(rt: &tokio::runtime::Runtime, cloud: &Cloud) -> RunId {
    let runs = rt
        .block_on(stylize_cloud::list_runs(cloud.blobs.as_ref()))
        .unwrap();
    assert_eq!(runs.len(), 1, "expected one run, found {runs:?}");
    runs[0].clone()
}

/// The done marker's name of `job` in the one run in storage (its incarnation is the manifest's).
pub fn done_key(rt: &tokio::runtime::Runtime, cloud: &Cloud, job: u32) -> String {
    let run = the_run(rt, cloud);
    let manifest = rt
        .block_on(stylize_cloud::load_manifest(cloud.blobs.as_ref(), &run))
        .unwrap();
    run.done_key(job, &manifest.incarnation)
}

/// Blobs under `prefix` in the run container.
pub fn blob_count(rt: &tokio::runtime::Runtime, cloud: &Cloud, prefix: &str) -> usize {
    count(rt, &cloud.blobs, prefix)
}

/// Blobs under `prefix` in `store`.
pub fn count(rt: &tokio::runtime::Runtime, store: &Arc<dyn BlobStore>, prefix: &str) -> usize {
    rt.block_on(store.list(prefix)).unwrap().len()
}

/// What [`run_into_an_output_container`] leaves for the caller to check further.
pub struct OutputContainerRun {
    pub rt: tokio::runtime::Runtime,
    pub run: RunId,
    /// The run container, `inputs`.
    pub inputs: Cloud,
    /// The `outputs` container.
    pub outputs: Arc<dyn BlobStore>,
    pub worker_log: String,
}

/// An 8-frame clip in `dir` styled in two jobs with `--output-container outputs`: the coordinator
/// reaches storage with `coordinator` (the `--cloud` options naming the run container `inputs`),
/// the worker with `worker_cloud` (its `--cloud` value and options). The coordinator queues the
/// run first (`--no-wait`: it creates the containers and queues, which a worker may not be
/// allowed to), then collects it. Checks the video and where each blob landed.
pub fn run_into_an_output_container(
    dir: &Path,
    inputs: Cloud,
    coordinator: &[&str],
    worker_cloud: (&str, &[&str]),
) -> OutputContainerRun {
    let rt = rt();
    let input = super::scene_clip(dir, "in.mp4", "64x48", "25", 8, &[], &[]);
    let cmd = [
        &[
            input.to_str().unwrap(),
            "--style",
            "preset:5",
            "--output-container",
            "outputs",
            "--frames-per-job",
            "4",
        ],
        coordinator,
    ]
    .concat();
    let (code, log) = Proc::spawn(&[&cmd[..], &["--no-wait"]].concat()).wait();
    assert_eq!(code, 0, "{log}");

    let w = worker(
        worker_cloud.0,
        "w0",
        &[worker_cloud.1, &["--test-stylizer-ms", "1"]].concat(),
    );
    let (code, log) = Proc::spawn(&cmd).wait();
    assert_eq!(code, 0, "{log}");
    assert_eq!(super::all_frames(&dir.join("in.styled.mp4")).len(), 8);
    let (_, worker_log) = stop(w);
    assert!(worker_log.contains("processed 8 frames"), "{worker_log}");

    let run = the_run(&rt, &inputs);
    let outputs = inputs.container("outputs").unwrap();
    let (sent, returned) = match segments() {
        true => (run.pieces_prefix(), run.segments_prefix()),
        false => (run.frames_prefix(), run.styled_prefix()),
    };
    let (sent_count, returned_count) = if segments() { (1, 2) } else { (8, 8) };
    assert_eq!(count(&rt, &inputs.blobs, &sent), sent_count);
    assert_eq!(count(&rt, &inputs.blobs, &returned), 0);
    assert_eq!(count(&rt, &inputs.blobs, &run.styled_prefix()), 0);
    assert_eq!(count(&rt, &inputs.blobs, &run.manifest_key()), 1);
    assert_eq!(count(&rt, &outputs, &returned), returned_count);
    assert_eq!(count(&rt, &outputs, &run.done_prefix()), 2);
    assert_eq!(count(&rt, &outputs, &run.queued_prefix()), 2);
    assert_eq!(count(&rt, &outputs, &run.manifest_key()), 0);
    OutputContainerRun {
        rt,
        run,
        inputs,
        outputs,
        worker_log,
    }
}

/// Asserts that `output` has `frames` frames, each the colour-inverted frame of `input` (what the
/// test stylizer makes) within `tolerance` levels mean: H.264's 4:2:0 loss is large on small test
/// patterns, and the uninverted frame is ~100 off.
pub fn assert_inverted(input: &Path, output: &Path, frames: usize, tolerance: f64) {
    let (inp, out) = (
        stylize_testkit::all_frames(input),
        stylize_testkit::all_frames(output),
    );
    assert_eq!(out.len(), frames);
    for (i, (a, b)) in inp.iter().zip(&out).enumerate() {
        let inverted: Vec<u8> = a.iter().map(|v| 255 - v).collect();
        let diff = stylize_testkit::mean_abs_diff(&inverted, b);
        assert!(
            diff < tolerance,
            "frame {i} is not the inverted input frame (mean diff {diff})"
        );
    }
}
