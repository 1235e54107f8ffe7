//! Entra ID end to end: Azurite over HTTPS with `--oauth basic`, a fake App
//! Service managed-identity endpoint handing out JWTs, and the crate's own
//! clients getting tokens through `azure_identity`'s `ManagedIdentityCredential`.
//!
//! Azurite checks a bearer token's format, lifetime, issuer and audience (not
//! its signature), so an unsigned JWT with the right claims passes and an
//! expired one or one for another audience is refused, as Azure would.
//!
//! The client finds the endpoint and trusts the test CA through the process
//! environment (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`, `SSL_CERT_FILE`, the
//! last read by rustls-native-certs each time reqwest builds a client), so
//! this binary holds one test that sets them before any client or runtime
//! thread exists and then runs its cases in order.

use base64::Engine as _;
use std::{
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use stylize_cloud::{testing::Azurite, Bytes, Cloud, CloudConfig, Error};

/// The App Service endpoint's shared secret (`IDENTITY_HEADER`): must reach
/// the endpoint, and never an error message.
const IDENTITY_SECRET: &str = "identity-header-secret-0123456789";
const TENANT: &str = "3f0b1c2d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const STORAGE_RESOURCE: &str = "https://storage.azure.com";

/// What the fake token endpoint answers next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// A token Azurite accepts.
    Valid,
    /// A token whose `exp` has passed, though the endpoint says it is good for
    /// an hour (as with a skewed clock), so the client sends it.
    Expired,
    /// A token for Azure Resource Manager instead of storage.
    WrongAudience,
    /// 400: no identity assigned.
    NoIdentity,
}

/// One request the endpoint saw.
#[derive(Debug, Clone)]
struct TokenRequest {
    path_and_query: String,
    secret_ok: bool,
    metadata: bool,
}

/// An App Service-style managed-identity endpoint on 127.0.0.1 (plain HTTP).
struct TokenEndpoint {
    url: String,
    mode: Arc<Mutex<Mode>>,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    issued: Arc<Mutex<Vec<String>>>,
}

impl TokenEndpoint {
    fn start() -> TokenEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the token endpoint");
        let url = format!(
            "http://{}/msi/token",
            listener.local_addr().expect("token endpoint address")
        );
        let mode = Arc::new(Mutex::new(Mode::Valid));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let issued = Arc::new(Mutex::new(Vec::new()));
        let (m, r, i) = (mode.clone(), requests.clone(), issued.clone());
        // Serves until the test process exits; one request per connection.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut reader = BufReader::new(stream.try_clone().expect("cloning the stream"));
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let (mut secret_ok, mut metadata) = (false, false);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        let (name, value) = (name.trim(), value.trim());
                        if name.eq_ignore_ascii_case("x-identity-header") {
                            secret_ok = value == IDENTITY_SECRET;
                        }
                        if name.eq_ignore_ascii_case("metadata") {
                            metadata = value == "true";
                        }
                    }
                }
                let path_and_query = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                r.lock().unwrap().push(TokenRequest {
                    path_and_query,
                    secret_ok,
                    metadata,
                });
                let mode = *m.lock().unwrap();
                let (status, body) = if !secret_ok {
                    ("401 Unauthorized", r#"{"error":"bad secret"}"#.to_owned())
                } else if mode == Mode::NoIdentity {
                    (
                        "400 Bad Request",
                        r#"{"statusCode":400,"message":"No managed identity found"}"#.to_owned(),
                    )
                } else {
                    let token = jwt(mode);
                    i.lock().unwrap().push(token.clone());
                    let expires_on = now() + 3600;
                    (
                        "200 OK",
                        format!(
                            r#"{{"access_token":"{token}","expires_on":"{expires_on}","resource":"{STORAGE_RESOURCE}","token_type":"Bearer","client_id":"00000000-0000-0000-0000-000000000001"}}"#
                        ),
                    )
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenEndpoint {
            url,
            mode,
            requests,
            issued,
        }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap().clone()
    }

    fn issued(&self) -> Vec<String> {
        self.issued.lock().unwrap().clone()
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// An unsigned (junk-signature) JWT shaped like an Entra access token.
fn jwt(mode: Mode) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let now = now();
    let (aud, iat, exp) = match mode {
        Mode::Expired => (STORAGE_RESOURCE, now - 7200, now - 3600),
        Mode::WrongAudience => ("https://management.azure.com/", now - 60, now + 3600),
        _ => (STORAGE_RESOURCE, now - 60, now + 3600),
    };
    let claims = format!(
        r#"{{"aud":"{aud}","iss":"https://sts.windows.net/{TENANT}/","iat":{iat},"nbf":{iat},"exp":{exp},"oid":"11111111-2222-3333-4444-555555555555","tid":"{TENANT}","sub":"stylize-test","ver":"1.0"}}"#
    );
    format!(
        "{}.{}.{}",
        b64(r#"{"alg":"RS256","typ":"JWT","kid":"test"}"#),
        b64(&claims),
        b64("not a real signature")
    )
}

/// A `--cloud` spec for Azurite's HTTPS endpoints with no key or SAS, so
/// Entra ID (`credential`, or the default chain when `None`).
fn spec(azurite: &Azurite, credential: Option<&str>, queue: &str) -> String {
    let mut spec = format!(
        "BlobEndpoint={};QueueEndpoint={};Container=entra;Queue={queue}",
        azurite.blob_endpoint(),
        azurite.queue_endpoint()
    );
    if let Some(c) = credential {
        spec.push_str(&format!(";Credential={c}"));
    }
    spec
}

fn open(spec: &str) -> Cloud {
    let config = CloudConfig::from_spec(spec).expect("the spec parses");
    assert!(config.to_string().contains("Entra ID"), "{config}");
    Cloud::open(&config).expect("the clients build")
}

/// Blob put/get/list/exists/delete and queue send/receive/delete through `cloud`.
async fn round_trip(cloud: &Cloud, tag: &str) {
    cloud
        .create_if_missing()
        .await
        .expect("create with a token");
    let key = format!("runs/{tag}/frames/000000.png");
    cloud
        .blobs
        .put(&key, Bytes::from(format!("pixels {tag}")))
        .await
        .expect("put with a token");
    assert_eq!(
        cloud.blobs.get(&key).await.expect("get with a token"),
        Bytes::from(format!("pixels {tag}"))
    );
    assert!(cloud.blobs.exists(&key).await.unwrap());
    let listed = cloud.blobs.list(&format!("runs/{tag}/")).await.unwrap();
    assert_eq!(
        listed.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
        [key.as_str()]
    );
    assert!(!cloud
        .blobs
        .put_if_absent(&key, Bytes::from_static(b"again"))
        .await
        .unwrap());

    cloud
        .jobs
        .send(&format!("job {tag}"))
        .await
        .expect("send with a token");
    assert_eq!(cloud.jobs.approximate_len().await.unwrap(), 1);
    let mut m = cloud
        .jobs
        .receive(Duration::from_secs(30))
        .await
        .expect("receive with a token")
        .expect("the message just sent");
    assert_eq!(m.body, format!("job {tag}"));
    cloud
        .jobs
        .set_visibility(&mut m, Duration::from_secs(30))
        .await
        .unwrap();
    cloud.jobs.delete(&m).await.expect("delete with a token");
    assert!(cloud.blobs.delete(&key).await.unwrap());
}

/// One line, the given kind, and no token, identity secret or JWT fragment.
fn assert_clear(e: &Error, issued: &[String], what: &str) {
    let text = e.to_string();
    eprintln!("{what}: {text}");
    assert!(!text.contains('\n'), "{what}: not one line: {text:?}");
    for shown in [text.clone(), format!("{e:?}")] {
        assert!(!shown.contains(IDENTITY_SECRET), "{what}: {shown}");
        assert!(!shown.contains("eyJ"), "{what}: {shown}");
        for token in issued {
            assert!(!shown.contains(token.as_str()), "{what}: {shown}");
            // The signature part alone is distinctive too.
            let sig = token.rsplit('.').next().unwrap();
            assert!(!shown.contains(sig), "{what}: {shown}");
        }
    }
    assert!(e.is_auth(), "{what}: {e:?}");
}

/// Storage refused the token itself: `Error::Auth`, not retryable.
fn assert_refused(e: &Error, issued: &[String], what: &str) {
    assert_clear(e, issued, what);
    match e {
        Error::Auth {
            status, account, ..
        } => {
            assert!(matches!(status, 401 | 403), "{what}: {e:?}");
            assert_eq!(account, "devstoreaccount1");
        }
        other => panic!("{what}: expected Error::Auth, got {other:?}"),
    }
    assert!(!e.is_retryable(), "{what}: {e:?}");
    assert!(
        e.to_string()
            .starts_with("storage rejected the credentials ("),
        "{what}: {e}"
    );
}

#[test]
fn entra_managed_identity_against_azurite_with_oauth() {
    let started = Instant::now();
    let Some(azurite) = Azurite::start_oauth_or_skip()
        .expect("Azurite must start (set STYLIZE_SKIP_AZURITE=1 to skip)")
    else {
        return;
    };
    let endpoint = TokenEndpoint::start();
    // Before any client or runtime thread exists (see the module docs); the
    // only test in this binary, so nothing reads the environment meanwhile.
    std::env::set_var(
        "SSL_CERT_FILE",
        azurite.ca_cert().expect("an HTTPS Azurite"),
    );
    std::env::set_var("IDENTITY_ENDPOINT", &endpoint.url);
    std::env::set_var("IDENTITY_HEADER", IDENTITY_SECRET);
    for var in [
        "IDENTITY_SERVER_THUMBPRINT",
        "IMDS_ENDPOINT",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        "AZURE_CLIENT_ID",
        "AZURE_FEDERATED_TOKEN_FILE",
    ] {
        std::env::remove_var(var);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The managed identity alone, as `Credential=managed-identity` picks it.
        let cloud = open(&spec(&azurite, Some("managed-identity"), "entra-mi"));
        round_trip(&cloud, "mi").await;
        let requests = endpoint.requests();
        assert!(!requests.is_empty(), "no token was requested");
        // One token per client (blob, job queue, poison queue), cached after.
        assert!(requests.len() <= 3, "tokens not cached: {requests:?}");
        for r in &requests {
            assert!(r.secret_ok && r.metadata, "{r:?}");
            assert!(
                r.path_and_query.starts_with("/msi/token?")
                    && r.path_and_query.contains("api-version=2019-08-01")
                    && r.path_and_query
                        .contains("resource=https%3A%2F%2Fstorage.azure.com"),
                "{r:?}"
            );
        }

        // No Credential=: the default chain, where the developer tools find no
        // login here and the managed identity answers.
        let cloud = open(&spec(&azurite, None, "entra-chain"));
        round_trip(&cloud, "chain").await;

        // Fresh clients (so no cached token) for each refusal.
        for (mode, what) in [
            (Mode::Expired, "expired token"),
            (Mode::WrongAudience, "wrong audience"),
        ] {
            endpoint.set(mode);
            let cloud = open(&spec(&azurite, Some("managed"), "entra-mi"));
            let e = cloud
                .blobs
                .put("runs/x/a", Bytes::from_static(b"x"))
                .await
                .unwrap_err();
            assert_refused(&e, &endpoint.issued(), &format!("{what}, blob put"));
            let e = cloud.blobs.get("runs/x/a").await.unwrap_err();
            assert_refused(&e, &endpoint.issued(), &format!("{what}, blob get"));
            let e = cloud.blobs.exists("runs/x/a").await.unwrap_err();
            assert_refused(&e, &endpoint.issued(), &format!("{what}, blob HEAD"));
            let e = cloud.jobs.send("x").await.unwrap_err();
            assert_refused(&e, &endpoint.issued(), &format!("{what}, queue send"));
            let e = cloud
                .jobs
                .receive(Duration::from_secs(5))
                .await
                .unwrap_err();
            assert_refused(&e, &endpoint.issued(), &format!("{what}, queue receive"));
        }

        // The identity endpoint itself says no: a credential error, no secret.
        endpoint.set(Mode::NoIdentity);
        let cloud = open(&spec(&azurite, Some("managed"), "entra-mi"));
        let e = cloud
            .blobs
            .put("runs/x/a", Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert_clear(&e, &endpoint.issued(), "no identity, blob put");
        assert!(matches!(e, Error::Credential(_)), "{e:?}");
        let e = cloud.jobs.send("x").await.unwrap_err();
        assert_clear(&e, &endpoint.issued(), "no identity, queue send");
        assert!(matches!(e, Error::Credential(_)), "{e:?}");
        // Through the chain, every source's failure is named, still one line.
        let cloud = open(&spec(&azurite, None, "entra-chain"));
        let e = cloud.jobs.send("x").await.unwrap_err();
        assert_clear(&e, &endpoint.issued(), "no identity, chain, queue send");
        assert!(
            matches!(&e, Error::Credential(m) if m.contains("managed identity: ")),
            "{e:?}"
        );
    });
    eprintln!("entra test took {:?}", started.elapsed());
}
