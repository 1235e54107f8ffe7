//! Grants against a real Azurite: a worker's grant does what a worker does and nothing else, each
//! permission it carries is needed, and the scaler's grant only reads the queue.

use std::{sync::Arc, time::Duration};
use stylize_cloud::{
    dead_letter,
    grant::{self, scaler_grant, worker_grant},
    sas,
    testing::Azurite,
    BlobStore, Bytes, Cloud, CloudConfig, Error, Result,
};
use time::OffsetDateTime;

const MANIFEST: &str = "runs/r/manifest.json";
const FRAME: &str = "runs/r/frames/000000.png";
const STYLED: &str = "runs/r/styled/000000.png";

fn start() -> Option<Azurite> {
    Azurite::start_or_skip().expect("Azurite must start (set STYLIZE_SKIP_AZURITE=1 to skip)")
}

fn in_an_hour() -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::hours(1)
}

/// The coordinator's view (account key): run container `inputs` with a manifest and a frame,
/// an empty `outputs`, queues `jobs` and `jobs-poison`.
async fn coordinator(azurite: &Azurite) -> Cloud {
    let config = azurite
        .config()
        .with_container("inputs")
        .unwrap()
        .with_queue("jobs")
        .unwrap();
    let cloud = Cloud::open(&config).unwrap();
    cloud.create_if_missing().await.unwrap();
    cloud
        .container("outputs")
        .unwrap()
        .create_if_missing()
        .await
        .unwrap();
    for key in [MANIFEST, FRAME] {
        cloud
            .blobs
            .put(key, Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
    cloud
}

fn open(spec: &str) -> Cloud {
    Cloud::open(&CloudConfig::from_spec(spec).unwrap()).unwrap()
}

/// Refused for want of a permission by the service, or before any request for a container or
/// queue outside the grant; never for a bad signature (which would prove nothing).
fn refused<T: std::fmt::Debug>(what: &str, result: Result<T>) {
    match result {
        Err(e @ (Error::PermissionDenied { .. } | Error::NotGranted { .. })) => {
            assert!(!e.to_string().contains("sig="), "{e}")
        }
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_grant_does_what_a_worker_does_and_nothing_else() {
    let Some(azurite) = start() else { return };
    let key = coordinator(&azurite).await;
    let grant = worker_grant(
        &azurite
            .config()
            .with_container("inputs")
            .unwrap()
            .with_queue("jobs")
            .unwrap(),
        "outputs",
        in_an_hour(),
    )
    .unwrap();
    let worker = open(grant.connection_string.expose());

    // The run container: read only.
    assert_eq!(
        worker.blobs.get(FRAME).await.unwrap(),
        Bytes::from_static(b"x")
    );
    assert!(worker.blobs.exists(MANIFEST).await.unwrap());
    refused(
        "overwrite the manifest",
        worker.blobs.put(MANIFEST, Bytes::from_static(b"{}")).await,
    );
    refused(
        "write an input frame",
        worker.blobs.put(FRAME, Bytes::from_static(b"y")).await,
    );
    refused(
        "add an input frame",
        worker
            .blobs
            .put_if_absent("runs/r/frames/000001.png", Bytes::from_static(b"y"))
            .await,
    );
    refused("delete an input frame", worker.blobs.delete(FRAME).await);
    refused("create a container", worker.blobs.create_if_missing().await);
    assert_eq!(
        key.blobs.get(MANIFEST).await.unwrap(),
        Bytes::from_static(b"x")
    );

    // The output container: read, write (again), list; no delete.
    let outputs = worker.container("outputs").unwrap();
    assert!(!outputs.exists(STYLED).await.unwrap());
    outputs.put(STYLED, Bytes::from_static(b"s")).await.unwrap();
    outputs.put(STYLED, Bytes::from_static(b"t")).await.unwrap();
    assert_eq!(outputs.list("runs/r/styled/").await.unwrap().len(), 1);
    assert_eq!(outputs.get(STYLED).await.unwrap(), Bytes::from_static(b"t"));
    refused("delete a styled frame", outputs.delete(STYLED).await);

    // Nothing else, whatever a message names.
    for other in ["other", "inputs-2"] {
        let e = worker.container(other).unwrap_err();
        assert!(
            matches!(&e, Error::NotGranted { name, .. } if name == other),
            "{e:?}"
        );
    }
    let config = CloudConfig::from_spec(grant.connection_string.expose()).unwrap();
    refused(
        "another run container",
        Cloud::open(&config.clone().with_container("other").unwrap()),
    );
    refused(
        "another queue",
        Cloud::open(&config.with_queue("other").unwrap()),
    );

    // The job queue: take, renew, hand back, delete; not send or count. The poison queue: add only.
    key.jobs.send("job").await.unwrap();
    let mut m = worker
        .jobs
        .receive(Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    worker
        .jobs
        .set_visibility(&mut m, Duration::from_secs(30))
        .await
        .unwrap();
    worker
        .jobs
        .set_visibility(&mut m, Duration::ZERO)
        .await
        .unwrap();
    let m = worker
        .jobs
        .receive(Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    dead_letter(worker.jobs.as_ref(), worker.poison.as_ref(), &m)
        .await
        .unwrap();
    assert_eq!(key.poison.approximate_len().await.unwrap(), 1);
    assert_eq!(key.jobs.approximate_len().await.unwrap(), 0);
    refused("send a job", worker.jobs.send("forged").await);
    refused("count the jobs", worker.jobs.approximate_len().await);
    refused(
        "take from the poison queue",
        worker.poison.receive(Duration::from_secs(5)).await,
    );
    key.jobs.send("job").await.unwrap();
    let m = worker
        .jobs
        .receive(Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    worker.jobs.delete(&m).await.unwrap();
}

/// A grant with the given permissions for `inputs`, `outputs`, `jobs` and `jobs-poison`.
fn grant_with(azurite: &Azurite, permissions: [&str; 4]) -> Cloud {
    let (account, key) = (stylize_cloud::config::DEV_ACCOUNT, dev_key());
    let expiry = in_an_hour();
    let query = |pairs: Vec<(&str, String)>| {
        let mut url = azure_core::http::Url::parse("http://x/").unwrap();
        url.query_pairs_mut()
            .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
        url.query().unwrap().to_owned()
    };
    let [inputs, outputs, jobs, poison] = permissions;
    open(&format!(
        "BlobEndpoint={};QueueEndpoint={};Container=inputs;Queue=jobs;\
         ContainerSas.inputs={};ContainerSas.outputs={};QueueSas.jobs={};QueueSas.jobs-poison={}",
        azurite.blob_endpoint(),
        azurite.queue_endpoint(),
        query(sas::container_sas(account, &key, "inputs", expiry, inputs)),
        query(sas::container_sas(
            account, &key, "outputs", expiry, outputs
        )),
        query(sas::queue_sas(account, &key, "jobs", expiry, jobs)),
        query(sas::queue_sas(account, &key, "jobs-poison", expiry, poison)),
    ))
}

fn dev_key() -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(stylize_cloud::config::DEV_ACCOUNT_KEY)
        .unwrap()
}

/// Each letter the worker grant carries, taken away, refuses the worker operation that needs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_permission_in_a_worker_grant_is_needed() {
    let Some(azurite) = start() else { return };
    let key = coordinator(&azurite).await;
    assert_eq!(
        [
            grant::RUN_CONTAINER.letters,
            grant::OUTPUT_CONTAINER.letters,
            grant::JOB_QUEUE.letters,
            grant::POISON_QUEUE.letters
        ],
        ["r", "rwl", "up", "a"]
    );
    key.container("outputs")
        .unwrap()
        .put(STYLED, Bytes::from_static(b"s"))
        .await
        .unwrap();

    // Run container without r: neither the manifest check nor a frame download.
    let w = grant_with(&azurite, ["l", "rwl", "up", "a"]);
    refused("manifest check without r", w.blobs.exists(MANIFEST).await);
    refused("frame download without r", w.blobs.get(FRAME).await);

    // Output container without r, w or l.
    let outputs = |w: &Cloud| -> Arc<dyn BlobStore> { w.container("outputs").unwrap() };
    let w = grant_with(&azurite, ["r", "wl", "up", "a"]);
    refused(
        "done check without r",
        outputs(&w).exists("runs/r/done/00000.json").await,
    );
    let w = grant_with(&azurite, ["r", "rl", "up", "a"]);
    refused(
        "styled upload without w",
        outputs(&w).put(STYLED, Bytes::from_static(b"t")).await,
    );
    refused(
        "done marker without w",
        outputs(&w)
            .put("runs/r/done/00000.json", Bytes::from_static(b"{}"))
            .await,
    );
    let w = grant_with(&azurite, ["r", "rw", "up", "a"]);
    refused(
        "styled listing without l",
        outputs(&w).list("runs/r/styled/").await,
    );

    // Job queue without p (take, delete) or u (renew, hand back).
    key.jobs.send("job").await.unwrap();
    let w = grant_with(&azurite, ["r", "rwl", "u", "a"]);
    refused(
        "receive without p",
        w.jobs.receive(Duration::from_secs(30)).await,
    );
    let mut m = key
        .jobs
        .receive(Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    refused("delete without p", w.jobs.delete(&m).await);
    let w = grant_with(&azurite, ["r", "rwl", "p", "a"]);
    refused(
        "renew without u",
        w.jobs.set_visibility(&mut m, Duration::from_secs(30)).await,
    );

    // Poison queue without a.
    let w = grant_with(&azurite, ["r", "rwl", "up", "r"]);
    refused("move aside without a", w.poison.send("job").await);

    // And with every letter, each of those works.
    let w = grant_with(&azurite, ["r", "rwl", "up", "a"]);
    assert!(w.blobs.exists(MANIFEST).await.unwrap());
    assert!(!outputs(&w).exists("runs/r/done/00000.json").await.unwrap());
    assert_eq!(outputs(&w).list("runs/r/styled/").await.unwrap().len(), 1);
    w.jobs
        .set_visibility(&mut m, Duration::from_secs(30))
        .await
        .unwrap();
    w.jobs.delete(&m).await.unwrap();
    w.poison.send("job").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scaler_grant_counts_the_queue_and_takes_nothing() {
    let Some(azurite) = start() else { return };
    let key = coordinator(&azurite).await;
    key.jobs.send("one").await.unwrap();
    key.jobs.send("two").await.unwrap();
    let config = azurite.config().with_queue("jobs").unwrap();
    let grant = scaler_grant(&config, in_an_hour()).unwrap();
    // KEDA takes the queue's name from the trigger; stylize from --queue.
    let scaler = CloudConfig::from_spec(grant.connection_string.expose())
        .and_then(|c| c.with_queue("jobs"))
        .and_then(|c| Cloud::open(&c))
        .unwrap();
    assert_eq!(scaler.jobs.approximate_len().await.unwrap(), 2);
    refused(
        "take a job",
        scaler.jobs.receive(Duration::from_secs(5)).await,
    );
    refused("send a job", scaler.jobs.send("forged").await);
    // A SAS signed for one queue does not even authenticate on another.
    let e = scaler.poison.approximate_len().await.unwrap_err();
    assert!(matches!(e, Error::Auth { .. }), "{e:?}");
}
