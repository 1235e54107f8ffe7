//! The deployment files agree with the code: the Kubernetes Deployments (workers, the watcher) and
//! KEDA ScaledObject parse, name the image the Dockerfile builds, the queue and the
//! connection-string variable the binary uses, and their arguments are ones the real binary
//! accepts; the workers, the watcher and KEDA each read a grant of their own (`stylize runs
//! grant`), never the account key.
mod common;

use std::path::Path;

use serde_yaml::Value;
use stylize_cloud::config::{CONNECTION_STRING_VAR, DEFAULT_QUEUE};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The documents of a multi-document YAML file, by `kind`.
fn yaml_doc(path: &str, kind: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    text.split("\n---\n")
        .map(|doc| serde_yaml::from_str::<Value>(doc).unwrap_or_else(|e| panic!("{path}: {e}")))
        .find(|doc| doc["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("{path} has no {kind}"))
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

/// The value after `flag` in an argument list.
fn flag<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .map(|i| args[i + 1].as_str())
}

fn image_tag() -> String {
    format!("stylize-worker:{}", env!("CARGO_PKG_VERSION"))
}

#[test]
fn deployment_and_scaler_match_the_code_defaults() {
    let deployment = yaml("deploy/kubernetes/worker.yaml");
    let scaler = yaml_doc("deploy/kubernetes/keda.yaml", "ScaledObject");
    assert_eq!(s(&deployment["kind"]), "Deployment");
    assert_eq!(s(&scaler["kind"]), "ScaledObject");
    assert_eq!(s(&scaler["apiVersion"]), "keda.sh/v1alpha1");

    let pod = &deployment["spec"]["template"]["spec"];
    let containers = pod["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1);
    let worker = &containers[0];
    assert_eq!(
        s(&worker["image"]),
        image_tag(),
        "the image the Dockerfile's build line tags"
    );
    let dockerfile = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!("-t {}", image_tag())),
        "Dockerfile documents building {}",
        image_tag()
    );
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("-t {}", image_tag())),
        "README builds {}",
        image_tag()
    );

    // One GPU per pod.
    assert_eq!(
        worker["resources"]["limits"]["nvidia.com/gpu"].as_u64(),
        Some(1)
    );
    assert_eq!(
        worker["resources"]["requests"]["nvidia.com/gpu"].as_u64(),
        Some(1)
    );

    // The connection string reaches the variable `--cloud env` reads, from a Secret.
    let args: Vec<String> = worker["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| s(a).to_string())
        .collect();
    assert_eq!(args[0], "worker");
    assert_eq!(flag(&args, "--cloud"), Some("env"));
    let env = worker["env"].as_sequence().unwrap();
    let var = env
        .iter()
        .find(|e| s(&e["name"]) == CONNECTION_STRING_VAR)
        .expect("connection string variable");
    let secret = &var["valueFrom"]["secretKeyRef"];
    assert!(
        secret["name"].is_string() && secret["key"].is_string(),
        "from a Secret: {var:?}"
    );

    // The scaler watches the queue the workers take from, down to zero.
    let queue = flag(&args, "--queue").unwrap_or(DEFAULT_QUEUE);
    assert_eq!(queue, DEFAULT_QUEUE);
    assert_eq!(
        s(&scaler["spec"]["scaleTargetRef"]["name"]),
        s(&deployment["metadata"]["name"])
    );
    assert_eq!(
        scaler["spec"]["minReplicaCount"].as_u64(),
        Some(0),
        "scale to zero"
    );
    let triggers = scaler["spec"]["triggers"].as_sequence().unwrap();
    assert_eq!(triggers.len(), 1);
    assert_eq!(s(&triggers[0]["type"]), "azure-queue");
    assert_eq!(s(&triggers[0]["metadata"]["queueName"]), queue);

    // A pod told to stop gets longer than the worker's drain time before SIGKILL.
    let grace = pod["terminationGracePeriodSeconds"].as_f64().unwrap();
    let drain: f64 = flag(&args, "--drain-timeout")
        .unwrap_or("20")
        .parse()
        .unwrap();
    assert!(
        grace > drain + 5.0,
        "grace {grace} s must exceed --drain-timeout {drain} s"
    );
    // Renewals every third of the visibility timeout must fit well inside it.
    let visibility: u64 = flag(&args, "--visibility-timeout")
        .unwrap_or("60")
        .parse()
        .unwrap();
    assert!(visibility >= 15, "{visibility}");
}

/// The pods read the worker grant and KEDA its scaler grant, each from its own Secret, made by the
/// `stylize runs grant` line the file documents; the binary accepts that line and prints a grant
/// (no key in it) that the worker reads back.
#[test]
fn pods_and_scaler_hold_grants_not_the_account_key() {
    let deployment = yaml("deploy/kubernetes/worker.yaml");
    let worker = &deployment["spec"]["template"]["spec"]["containers"][0];
    let var = worker["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| s(&e["name"]) == CONNECTION_STRING_VAR)
        .expect("connection string variable");
    let worker_secret = s(&var["valueFrom"]["secretKeyRef"]["name"]);

    let scaler = yaml_doc("deploy/kubernetes/keda.yaml", "ScaledObject");
    let trigger = &scaler["spec"]["triggers"][0];
    assert!(
        trigger["metadata"]["connectionFromEnv"].is_null()
            && trigger["metadata"]["connection"].is_null(),
        "KEDA gets its own credential, not the pods' variable: {trigger:?}"
    );
    let auth = yaml_doc("deploy/kubernetes/keda.yaml", "TriggerAuthentication");
    assert_eq!(
        s(&trigger["authenticationRef"]["name"]),
        s(&auth["metadata"]["name"])
    );
    let refs = auth["spec"]["secretTargetRef"].as_sequence().unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(s(&refs[0]["parameter"]), "connection");
    let scaler_secret = s(&refs[0]["name"]);
    assert_ne!(scaler_secret, worker_secret, "KEDA may only read the queue");

    for (path, secret) in [
        ("deploy/kubernetes/worker.yaml", worker_secret),
        ("deploy/kubernetes/keda.yaml", scaler_secret),
    ] {
        let text = std::fs::read_to_string(root().join(path)).unwrap();
        assert!(
            !text.contains("AccountKey"),
            "{path} puts the account key in a pod"
        );
        let grant = run_grant(&documented_grant(&text, secret));
        assert!(!grant.contains("AccountKey"), "{path}: {grant}");
        let config = stylize_cloud::CloudConfig::from_spec(&grant).unwrap();
        if secret == worker_secret {
            assert!(
                config.to_string().contains("grant for containers"),
                "{config}"
            );
        } else {
            // KEDA's form: QueueEndpoint=URL;SharedAccessSignature=SAS, read only.
            assert!(
                grant.contains(";SharedAccessSignature=") && grant.contains("&sp=r&"),
                "{grant}"
            );
        }
    }
}

/// The `stylize runs grant ...` arguments of the `kubectl create secret generic SECRET` line in a
/// manifest's comments.
fn documented_grant(text: &str, secret: &str) -> Vec<String> {
    let at = text
        .find(&format!("kubectl create secret generic {secret} "))
        .unwrap_or_else(|| panic!("no command creating the Secret {secret}"));
    let rest = &text[at..];
    let start = rest.find("$(stylize ").expect("a grant from stylize") + "$(stylize ".len();
    let end = rest[start..].find(')').unwrap() + start;
    rest[start..end]
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Runs `stylize ARGS` with `--cloud env` reading an account key (signing makes no request).
fn run_grant(args: &[String]) -> String {
    assert_eq!(&args[..2], ["runs", "grant"], "{args:?}");
    let key = "AccountName=acct;AccountKey=c2VjcmV0LWtleS1ieXRlcy1mb3ItdGVzdHM=";
    let out = common::stylize()
        .args(args)
        .env(CONNECTION_STRING_VAR, key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

/// The Deployment's arguments, run by the real binary (on a local folder, with the test stylizer
/// so no GPU is needed), start a worker that finds the queue empty and exits cleanly.
#[test]
fn deployment_arguments_are_accepted_by_the_worker() {
    let deployment = yaml("deploy/kubernetes/worker.yaml");
    let worker = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = worker["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| s(a).to_string())
        .collect();
    let stderr = run_worker_until_idle(args);
    assert!(stderr.contains("processed 0 frames"), "{stderr}");
}

/// Runs `stylize` with a worker's `args` against an empty shared-folder store (with the
/// test stylizer, exiting once idle), asserts it succeeded, and returns what it printed.
fn run_worker_until_idle(mut args: Vec<String>) -> String {
    args.extend(["--test-stylizer-ms", "1", "--idle-exit", "0"].map(String::from));
    let dir = common::tempdir();
    let out = common::stylize()
        .args(&args)
        .env(
            CONNECTION_STRING_VAR,
            format!("dir:{}", dir.path().display()),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    stderr
}

/// The systemd unit in the README runs a worker with arguments the binary accepts.
#[test]
fn readme_systemd_unit_runs_a_worker() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let exec = readme
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .expect("a systemd unit with ExecStart= in README.md");
    let mut words = exec.trim_start_matches("ExecStart=").split_whitespace();
    assert!(words.next().unwrap().ends_with("/stylize"));
    let mut args: Vec<String> = words.map(String::from).collect();
    assert_eq!(args[0], "worker");
    assert_eq!(
        flag(&args, "--cloud"),
        Some("env"),
        "the key stays in the environment file, off the command line"
    );
    // Replace the unit's own idle exit (if any) so the test ends at once.
    if let Some(i) = args.iter().position(|a| a == "--idle-exit") {
        args.drain(i..i + 2);
    }
    run_worker_until_idle(args);
}

/// The watcher's Deployment: one replica replaced with Recreate (two never take one upload), the
/// image the Dockerfile builds, a grant of its own made by the line its comments document, and
/// arguments the real binary runs (on an empty local inbox, once).
#[test]
fn watcher_deployment_is_one_replica_on_its_own_grant() {
    let path = "deploy/kubernetes/watcher.yaml";
    let deployment = yaml(path);
    assert_eq!(s(&deployment["kind"]), "Deployment");
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(1));
    assert_eq!(s(&deployment["spec"]["strategy"]["type"]), "Recreate");
    let pod = &deployment["spec"]["template"]["spec"];
    let watcher = &pod["containers"][0];
    assert_eq!(s(&watcher["image"]), image_tag());
    let var = &watcher["env"][0];
    assert_eq!(s(&var["name"]), CONNECTION_STRING_VAR);
    let secret = s(&var["valueFrom"]["secretKeyRef"]["name"]);
    let worker = yaml("deploy/kubernetes/worker.yaml");
    let worker_secret = s(
        &worker["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]
            ["name"],
    );
    assert_ne!(
        secret, worker_secret,
        "the watcher holds a grant of its own"
    );

    let text = std::fs::read_to_string(root().join(path)).unwrap();
    assert!(
        !text.contains("AccountKey"),
        "{path} puts the account key in a pod"
    );
    let grant_args = documented_grant(&text, secret);
    let grant = run_grant(&grant_args);
    let config = stylize_cloud::CloudConfig::from_spec(&grant).unwrap();
    assert!(
        config.to_string().contains("grant for containers"),
        "{config}"
    );
    let args: Vec<String> = watcher["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| s(a).to_string())
        .collect();
    // The grant and the Deployment name the same places.
    for option in ["--inbox", "--outbox", "--events", "--output-container"] {
        assert_eq!(flag(&args, option), flag(&grant_args, option), "{option}");
    }
    assert_eq!(flag(&args, "--queue"), Some(DEFAULT_QUEUE));

    let dir = common::tempdir();
    let work = dir.path().join("work");
    let mut args = args;
    let at = args.iter().position(|a| a == "--work-dir").unwrap();
    args[at + 1] = work.display().to_string();
    args.push("--once".into());
    let out = common::stylize()
        .args(&args)
        .env(
            CONNECTION_STRING_VAR,
            format!("dir:{}", dir.path().join("store").display()),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    assert!(
        stderr.contains("inbox done: 0 styled, 0 failed"),
        "{stderr}"
    );
}
