//! Credentials against a real Azurite: a wrong key or expired SAS is a clear error with no secret in it; a user SAS works.

use base64::Engine as _;
use std::time::Duration;
use stylize_cloud::{sas::account_sas, testing::Azurite, Bytes, Cloud, CloudConfig, Error};

const WRONG_KEY: &str = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==";

fn start() -> Option<Azurite> {
    Azurite::start_or_skip().expect("Azurite must start (set STYLIZE_SKIP_AZURITE=1 to skip)")
}

/// Azurite's queue service answers a bad signature with `AuthenticationFailed`
/// (as Azure does for both services); its blob service says `AuthorizationFailure`.
fn assert_clear_auth_error(e: &Error, code: &str) {
    let text = e.to_string();
    assert_eq!(
        text,
        format!("storage rejected the credentials (403 {code}) for account devstoreaccount1"),
        "{e:?}"
    );
    assert!(!e.is_retryable());
    assert!(e.is_auth());
    for shown in [text, format!("{e:?}")] {
        assert!(
            !shown.contains(WRONG_KEY) && !shown.contains("sig="),
            "{shown}"
        );
    }
}

const QUEUE_CODE: &str = "AuthenticationFailed";
const BLOB_CODE: &str = "AuthorizationFailure";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_is_a_clear_auth_error() {
    let Some(azurite) = start() else { return };
    let spec = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={WRONG_KEY};BlobEndpoint={};QueueEndpoint={}",
        azurite.blob_endpoint(),
        azurite.queue_endpoint()
    );
    let cloud = Cloud::open(&CloudConfig::from_spec(&spec).unwrap()).unwrap();
    assert_clear_auth_error(
        &cloud.blobs.create_if_missing().await.unwrap_err(),
        BLOB_CODE,
    );
    assert_clear_auth_error(
        &cloud
            .blobs
            .put("runs/x/a", Bytes::from_static(b"x"))
            .await
            .unwrap_err(),
        BLOB_CODE,
    );
    assert_clear_auth_error(
        &cloud.jobs.create_if_missing().await.unwrap_err(),
        QUEUE_CODE,
    );
    assert_clear_auth_error(&cloud.jobs.send("x").await.unwrap_err(), QUEUE_CODE);
    // HEAD requests carry no error body; the refusal must still read as one.
    let e = cloud.blobs.exists("runs/x/a").await.unwrap_err();
    assert!(matches!(e, Error::Auth { status: 403, .. }), "{e:?}");
}

fn sas_query(pairs: &[(&'static str, String)]) -> String {
    let mut url = azure_core::http::Url::parse("http://x/").unwrap();
    url.query_pairs_mut()
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
    url.query().unwrap().to_owned()
}

fn dev_key() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(stylize_cloud::config::DEV_ACCOUNT_KEY)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sas_is_a_clear_auth_error() {
    let Some(azurite) = start() else { return };
    let expired = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let sas = sas_query(&account_sas("devstoreaccount1", &dev_key(), expired));
    let spec = format!(
        "BlobEndpoint={};QueueEndpoint={};SharedAccessSignature={sas}",
        azurite.blob_endpoint(),
        azurite.queue_endpoint()
    );
    let config = CloudConfig::from_spec(&spec).unwrap();
    assert!(!format!("{config} {config:?}").contains("sig="));
    let cloud = Cloud::open(&config).unwrap();
    assert_clear_auth_error(
        &cloud.blobs.create_if_missing().await.unwrap_err(),
        BLOB_CODE,
    );
    assert_clear_auth_error(&cloud.jobs.send("x").await.unwrap_err(), QUEUE_CODE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_sas_per_service_works() {
    let Some(azurite) = start() else { return };
    let valid = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let sas = sas_query(&account_sas("devstoreaccount1", &dev_key(), valid));
    // Each endpoint carries its own SAS, as a worker with narrow grants would.
    let spec = format!(
        "BlobEndpoint={}?{sas};QueueEndpoint={}?{sas};Container=frames;Queue=jobs-b",
        azurite.blob_endpoint(),
        azurite.queue_endpoint()
    );
    let cloud = Cloud::open(&CloudConfig::from_spec(&spec).unwrap()).unwrap();
    cloud.create_if_missing().await.unwrap();
    cloud
        .blobs
        .put("runs/r/frames/000000.png", Bytes::from_static(b"px"))
        .await
        .unwrap();
    assert_eq!(
        cloud.blobs.get("runs/r/frames/000000.png").await.unwrap(),
        Bytes::from_static(b"px")
    );
    cloud.jobs.send("hello").await.unwrap();
    let m = cloud
        .jobs
        .receive(Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.body, "hello");
    cloud.jobs.delete(&m).await.unwrap();
    assert_eq!(cloud.poison.name(), "jobs-b-poison");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_blob_and_queue_are_not_found() {
    let Some(azurite) = start() else { return };
    let cloud = Cloud::open(&azurite.config().with_queue("never-created").unwrap()).unwrap();
    cloud.blobs.create_if_missing().await.unwrap();
    assert!(matches!(
        cloud.blobs.get("runs/none").await,
        Err(Error::NotFound(_))
    ));
    let err = cloud.jobs.send("x").await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert!(!err.is_retryable());
}
