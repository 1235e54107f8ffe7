//! The Azure transport: Blob Storage and Storage Queues through the official SDK 1.x, authenticated by account SAS, user SAS or Entra ID.

use crate::{
    config::{AzureAccount, EntraCredential},
    store::{
        validate_key, validate_resource_name, visibility_secs, BlobEntry, BlobStore, JobQueue,
        ReceivedMessage,
    },
    Auth, Error, Result,
};
use async_trait::async_trait;
use azure_core::{
    credentials::{AccessToken, TokenCredential, TokenRequestOptions},
    error::ErrorKind,
    http::{
        headers::HeaderName,
        policies::{Policy, PolicyResult},
        ClientOptions, Context, ExponentialRetryOptions, NoFormat, Request, RequestContent,
        RetryOptions, Transport, Url,
    },
};
use azure_identity::{
    DeveloperToolsCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId, WorkloadIdentityCredential,
};
use azure_storage_blob::{
    models::{BlobClientUploadOptions, BlobContainerClientListBlobsOptions},
    BlobContainerClient, BlobServiceClient, BlobServiceClientOptions,
};
use azure_storage_queue::{
    models::{
        QueueClientGetPropertiesResultHeaders, QueueClientReceiveMessagesOptions,
        QueueClientSendMessageOptions, QueueClientUpdateMessageOptions, QueueMessage,
    },
    QueueClient, QueueServiceClient, QueueServiceClientOptions,
};
use bytes::Bytes;
use futures::TryStreamExt as _;
use std::{
    fmt,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Once,
    },
    time::Duration,
};

/// How long each signed account SAS lives. Every request is signed afresh,
/// so this only has to cover one request and its retries.
const SAS_LIFETIME: time::Duration = time::Duration::hours(1);

/// rustls needs a process-wide crypto provider; reqwest is built without its
/// own (aws-lc-rs, a large C build), so install ring's before any client exists.
pub(crate) fn ensure_tls() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means some other part of the program installed one first; that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Appends a SAS to every request URL: a fixed token, or an account SAS
/// signed per request from the account key.
struct SasPolicy {
    source: Auth,
}

impl fmt::Debug for SasPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SasPolicy").finish_non_exhaustive()
    }
}

#[async_trait]
impl Policy for SasPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let url = request.url_mut();
        match &self.source {
            Auth::SharedKey { account, key } => {
                let expiry = time::OffsetDateTime::now_utc() + SAS_LIFETIME;
                let pairs = crate::sas::account_sas(account, key.expose(), expiry);
                let mut q = url.query_pairs_mut();
                for (k, v) in &pairs {
                    q.append_pair(k, v);
                }
            }
            Auth::Sas(token) => {
                let query = match url.query() {
                    Some(q) if !q.is_empty() => format!("{q}&{}", token.expose()),
                    _ => token.expose().clone(),
                };
                url.set_query(Some(&query));
            }
            // A grant is resolved to one container's or queue's SAS before a client is built.
            Auth::Entra(_) | Auth::Scoped(_) => {}
        }
        next[0].send(ctx, request, &next[1..]).await
    }
}

/// Entra credentials tried in order; the first to give a token is kept for
/// every later request (as the SDK's `DeveloperToolsCredential` does).
#[derive(Debug)]
struct CredentialChain {
    sources: Vec<(&'static str, Arc<dyn TokenCredential>)>,
    chosen: AtomicUsize,
}

#[async_trait]
impl TokenCredential for CredentialChain {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let chosen = self.chosen.load(Ordering::Relaxed);
        if let Some((_, source)) = self.sources.get(chosen) {
            return source.get_token(scopes, options).await;
        }
        let mut failures = Vec::new();
        for (i, (name, source)) in self.sources.iter().enumerate() {
            match source.get_token(scopes, options.clone()).await {
                Ok(token) => {
                    self.chosen.store(i, Ordering::Relaxed);
                    return Ok(token);
                }
                Err(e) => failures.push(format!("{name}: {e}")),
            }
        }
        Err(azure_core::Error::with_message(
            ErrorKind::Credential,
            format!("no Entra credential worked ({})", failures.join("; ")),
        ))
    }
}

fn entra_credential(choice: EntraCredential) -> Result<Arc<dyn TokenCredential>> {
    let cred_err = |e: azure_core::Error| credential_error(&e.to_string());
    let workload = || -> Result<Arc<dyn TokenCredential>> {
        Ok(WorkloadIdentityCredential::new(None).map_err(cred_err)?)
    };
    let managed = || -> Result<Arc<dyn TokenCredential>> {
        let options = std::env::var("AZURE_CLIENT_ID")
            .ok()
            .filter(|s| !s.is_empty())
            .map(|id| ManagedIdentityCredentialOptions {
                user_assigned_id: Some(UserAssignedId::ClientId(id)),
                ..Default::default()
            });
        Ok(ManagedIdentityCredential::new(options).map_err(cred_err)?)
    };
    let developer = || -> Result<Arc<dyn TokenCredential>> {
        Ok(DeveloperToolsCredential::new(None).map_err(cred_err)?)
    };
    match choice {
        EntraCredential::WorkloadIdentity => workload(),
        EntraCredential::ManagedIdentity => managed(),
        EntraCredential::DeveloperTools => developer(),
        EntraCredential::Chain => {
            let mut sources: Vec<(&'static str, Arc<dyn TokenCredential>)> = Vec::new();
            // Workload identity is only configured inside a pod that has it.
            if std::env::var_os("AZURE_FEDERATED_TOKEN_FILE").is_some() {
                sources.push(("workload identity", workload()?));
            }
            // The CLI fails fast where it is absent or logged out, while the
            // managed-identity endpoint can take seconds to time out off Azure.
            sources.push(("developer tools", developer()?));
            if let Ok(mi) = managed() {
                sources.push(("managed identity", mi));
            }
            Ok(Arc::new(CredentialChain {
                sources,
                chosen: AtomicUsize::new(usize::MAX),
            }))
        }
    }
}

fn client_setup(auth: &Auth) -> Result<(ClientOptions, Option<Arc<dyn TokenCredential>>)> {
    ensure_tls();
    let mut options = ClientOptions {
        // The SDK's default retries a refused connection for over a minute; a
        // user waiting on `--cloud` with a wrong endpoint should hear within
        // seconds, and a worker's own loop retries whatever `is_retryable` says.
        retry: RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: time::Duration::milliseconds(200),
            max_retries: 5,
            max_total_elapsed: time::Duration::seconds(15),
            max_delay: time::Duration::seconds(4),
        }),
        transport: Some(transport()),
        ..Default::default()
    };
    match auth {
        Auth::Entra(choice) => Ok((options, Some(entra_credential(*choice)?))),
        other => {
            options.per_call_policies.push(Arc::new(SasPolicy {
                source: other.clone(),
            }));
            Ok((options, None))
        }
    }
}

/// The environment variable that overrides the per-try read timeout, in seconds.
pub const READ_TIMEOUT_VAR: &str = "STYLIZE_STORAGE_READ_TIMEOUT";

/// The HTTP client under every request: the SDK's limits (20 s to connect, 60 s without a byte
/// read), the read limit overridable by [`READ_TIMEOUT_VAR`] (the outage tests scale it down
/// with the outage).
fn transport() -> Transport {
    let read_timeout = std::env::var(READ_TIMEOUT_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|secs| secs.is_finite() && *secs > 0.0)
        .map_or(
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs_f64,
        );
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(20))
        .read_timeout(read_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| unreachable!("a client of fixed settings builds: {e}"));
    Transport::new(Arc::new(client))
}

/// Maps an SDK error to this crate's, naming the operation and redacting secrets.
fn map_error(e: azure_core::Error, operation: &str, account: &str) -> Error {
    match e.kind() {
        ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } => {
            let status = u16::from(*status);
            let code = error_code.clone().unwrap_or_else(|| {
                azure_core::http::StatusCode::from(status)
                    .canonical_reason()
                    .into_owned()
            });
            // Codes for valid credentials that lack a grant; any other 401/403
            // (bad signature, expired SAS, wrong tenant, no code at all on a
            // HEAD request) means the credentials themselves were refused.
            let permission_codes = [
                "AuthorizationPermissionMismatch",
                "AuthorizationServiceMismatch",
                "AuthorizationResourceTypeMismatch",
                "AuthorizationProtocolMismatch",
                "AuthorizationSourceIPMismatch",
                "KeyBasedAuthenticationNotPermitted",
            ];
            if status == 403 && permission_codes.contains(&code.as_str()) {
                return Error::PermissionDenied {
                    operation: operation.to_owned(),
                    status,
                    code,
                    account: account.to_owned(),
                };
            }
            if status == 401 || status == 403 {
                return Error::Auth {
                    status,
                    code,
                    account: account.to_owned(),
                };
            }
            let message = raw_response
                .as_ref()
                .and_then(|r| service_message(r.body().as_ref()))
                .unwrap_or_default();
            Error::Service {
                operation: operation.to_owned(),
                status,
                code,
                message: crate::redact_secrets(&message),
            }
        }
        ErrorKind::Connection | ErrorKind::Io => Error::Connection {
            operation: operation.to_owned(),
            detail: crate::redact_secrets(&error_chain(&e)),
        },
        ErrorKind::Credential => credential_error(&error_chain(&e)),
        _ => Error::Other {
            operation: operation.to_owned(),
            message: crate::redact_secrets(&error_chain(&e)),
        },
    }
}

/// `azure_identity` appends a second line ("To troubleshoot, visit ...") to
/// its messages; an error here is one line, so the lines are joined.
fn credential_error(message: &str) -> Error {
    let one_line = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Error::Credential(crate::redact_secrets(&one_line))
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

/// The `<Message>` of a storage error body, first line only.
fn service_message(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Message>")? + "<Message>".len();
    let end = text[start..].find("</Message>")? + start;
    text[start..end]
        .lines()
        .next()
        .map(|l| l.trim().chars().take(300).collect())
}

fn status_of(e: &azure_core::Error) -> Option<u16> {
    e.http_status().map(u16::from)
}

fn error_code_of(e: &azure_core::Error) -> Option<&str> {
    match e.kind() {
        ErrorKind::HttpResponse { error_code, .. } => error_code.as_deref(),
        _ => None,
    }
}

/// Blobs in one container of an Azure Storage account.
pub struct AzureBlobStore {
    container: BlobContainerClient,
    account: String,
    container_name: String,
    endpoint: Url,
}

impl fmt::Debug for AzureBlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureBlobStore")
            .field("location", &self.location())
            .finish_non_exhaustive()
    }
}

impl AzureBlobStore {
    /// A store for `container` in `account` (no request is made yet).
    pub fn new(account: &AzureAccount, container: &str) -> Result<Self> {
        validate_resource_name("container", container)?;
        let (client_options, credential) = client_setup(&account.blob_auth_for(container)?)?;
        let options = BlobServiceClientOptions {
            client_options,
            ..Default::default()
        };
        let service =
            BlobServiceClient::new(account.blob_endpoint.clone(), credential, Some(options))
                .map_err(|e| map_error(e, "creating the blob client", &account.account))?;
        Ok(Self {
            container: service.blob_container_client(container),
            account: account.account.clone(),
            container_name: container.to_owned(),
            endpoint: account.blob_endpoint.clone(),
        })
    }

    fn err(&self, e: azure_core::Error, operation: impl FnOnce() -> String) -> Error {
        map_error(e, &operation(), &self.account)
    }

    /// The body of blob `key`, still to be read; [`Error::NotFound`] if it does not exist.
    async fn download(&self, key: &str) -> Result<azure_core::http::response::AsyncResponseBody> {
        validate_key(key)?;
        match self.container.blob_client(key).download(None).await {
            Ok(response) => Ok(response.body),
            Err(e) if status_of(&e) == Some(404) => Err(Error::NotFound(format!("blob {key}"))),
            Err(e) => Err(self.err(e, || format!("get {key}"))),
        }
    }
}

/// Files larger than this go up as blocks of this size ([`BlobStore::put_file`]): one block in
/// memory at a time, where a single put would hold the whole file.
const UPLOAD_BLOCK: usize = 8 << 20;

/// A large upload in progress, for tests: its blocks are staged but not yet committed, so the
/// blob is in no listing and cannot be read (Azure's own rule, which `stylize watch` relies on).
#[cfg(feature = "testing")]
impl AzureBlobStore {
    const STAGED_BLOCK: &'static [u8] = b"block-000000";

    /// Stages `bytes` as the one block of blob `key`, uncommitted.
    pub async fn stage_uncommitted(&self, key: &str, bytes: Bytes) -> Result<()> {
        validate_key(key)?;
        let length = bytes.len() as u64;
        self.container
            .blob_client(key)
            .block_blob_client()
            .stage_block(Self::STAGED_BLOCK, length, bytes.into(), None)
            .await
            .map(drop)
            .map_err(|e| self.err(e, || format!("stage a block of {key}")))
    }

    /// Commits the block [`AzureBlobStore::stage_uncommitted`] staged: the upload completes.
    pub async fn commit_staged(&self, key: &str) -> Result<()> {
        let blocks = azure_storage_blob::models::BlockLookupList {
            latest: Some(vec![Self::STAGED_BLOCK.to_vec()]),
            ..Default::default()
        };
        let op = || format!("commit the blocks of {key}");
        self.container
            .blob_client(key)
            .block_blob_client()
            .commit_block_list(blocks.try_into().map_err(|e| self.err(e, op))?, None)
            .await
            .map(drop)
            .map_err(|e| self.err(e, op))
    }
}

#[async_trait]
impl BlobStore for AzureBlobStore {
    async fn create_if_missing(&self) -> Result<()> {
        match self.container.create(None).await {
            Ok(_) => Ok(()),
            Err(e) if status_of(&e) == Some(409) => Ok(()),
            Err(e) => Err(self.err(e, || format!("creating container {}", self.container_name))),
        }
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        validate_key(key)?;
        self.container
            .blob_client(key)
            .upload(
                <_ as Into<RequestContent<Bytes, NoFormat>>>::into(bytes),
                None,
            )
            .await
            .map(drop)
            .map_err(|e| self.err(e, || format!("put {key}")))
    }

    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool> {
        validate_key(key)?;
        let options = BlobClientUploadOptions::default().if_not_exists();
        match self
            .container
            .blob_client(key)
            .upload(
                <_ as Into<RequestContent<Bytes, NoFormat>>>::into(bytes),
                Some(options),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if status_of(&e) == Some(409) || status_of(&e) == Some(412) => Ok(false),
            Err(e) => Err(self.err(e, || format!("put {key}"))),
        }
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        self.download(key)
            .await?
            .collect()
            .await
            .map_err(|e| self.err(e, || format!("get {key}")))
    }

    async fn get_to_file(&self, key: &str, path: &std::path::Path) -> Result<u64> {
        use tokio::io::AsyncWriteExt as _;
        let mut body = self.download(key).await?;
        let io = |e| Error::io("writing", path, e);
        let mut file = tokio::fs::File::create(path).await.map_err(io)?;
        let mut size = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| self.err(e, || format!("get {key}")))?
        {
            size += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        Ok(size)
    }

    async fn put_file(&self, key: &str, path: &std::path::Path) -> Result<u64> {
        use tokio::io::AsyncReadExt as _;
        validate_key(key)?;
        let io = |e| Error::io("reading", path, e);
        let mut file = tokio::fs::File::open(path).await.map_err(io)?;
        let size = file.metadata().await.map_err(io)?.len();
        if size <= UPLOAD_BLOCK as u64 {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes).await.map_err(io)?;
            self.put(key, Bytes::from(bytes)).await?;
            return Ok(size);
        }
        // Staged blocks stay invisible until the list commits them: a reader never sees half.
        let blob = self.container.blob_client(key).block_blob_client();
        let op = || format!("put {key}");
        let mut ids = Vec::new();
        loop {
            let mut block = Vec::with_capacity(UPLOAD_BLOCK);
            (&mut file)
                .take(UPLOAD_BLOCK as u64)
                .read_to_end(&mut block)
                .await
                .map_err(io)?;
            if block.is_empty() {
                break;
            }
            // Block ids of one blob must all have the same length.
            let id = format!("stylize-block-{:06}", ids.len()).into_bytes();
            let length = block.len() as u64;
            blob.stage_block(&id, length, Bytes::from(block).into(), None)
                .await
                .map_err(|e| self.err(e, op))?;
            ids.push(id);
        }
        let blocks = azure_storage_blob::models::BlockLookupList {
            latest: Some(ids),
            ..Default::default()
        };
        blob.commit_block_list(blocks.try_into().map_err(|e| self.err(e, op))?, None)
            .await
            .map_err(|e| self.err(e, op))?;
        Ok(size)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        self.container
            .blob_client(key)
            .exists()
            .await
            .map_err(|e| self.err(e, || format!("exists {key}")))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>> {
        let options = BlobContainerClientListBlobsOptions {
            prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
            ..Default::default()
        };
        let op = || format!("list {prefix}");
        let mut pages = self
            .container
            .list_blobs(Some(options))
            .map_err(|e| self.err(e, op))?
            .into_pages();
        let mut out = Vec::new();
        loop {
            let page = match pages.try_next().await {
                Ok(Some(p)) => p,
                Ok(None) => break,
                // A container not created yet holds no blobs.
                Err(e) if error_code_of(&e) == Some("ContainerNotFound") => return Ok(Vec::new()),
                Err(e) => return Err(self.err(e, op)),
            };
            let page = page.into_model().map_err(|e| self.err(e, op))?;
            for item in page.blob_items {
                let Some(key) = item.name else { continue };
                let size = item.properties.and_then(|p| p.content_length).unwrap_or(0);
                out.push(BlobEntry { key, size });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        match self.container.blob_client(key).delete(None).await {
            Ok(_) => Ok(true),
            Err(e) if status_of(&e) == Some(404) => Ok(false),
            Err(e) => Err(self.err(e, || format!("delete {key}"))),
        }
    }

    fn location(&self) -> String {
        format!(
            "{}/{}",
            self.endpoint.as_str().trim_end_matches('/'),
            self.container_name
        )
    }
}

/// One Azure Storage queue.
pub struct AzureQueue {
    client: QueueClient,
    name: String,
    account: String,
}

impl fmt::Debug for AzureQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureQueue")
            .field("name", &self.name)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

const POP_RECEIPT: HeaderName = HeaderName::from_static("x-ms-popreceipt");

impl AzureQueue {
    /// The queue `name` in `account` (no request is made yet).
    pub fn new(account: &AzureAccount, name: &str) -> Result<Self> {
        validate_resource_name("queue", name)?;
        let (client_options, credential) = client_setup(&account.queue_auth_for(name)?)?;
        let options = QueueServiceClientOptions {
            client_options,
            ..Default::default()
        };
        let service =
            QueueServiceClient::new(account.queue_endpoint.clone(), credential, Some(options))
                .map_err(|e| map_error(e, "creating the queue client", &account.account))?;
        let client = service
            .queue_client(name)
            .map_err(|e| map_error(e, "creating the queue client", &account.account))?;
        Ok(Self {
            client,
            name: name.to_owned(),
            account: account.account.clone(),
        })
    }

    fn err(&self, e: azure_core::Error, operation: &str) -> Error {
        if status_of(&e) == Some(404) && error_code_of(&e) == Some("QueueNotFound") {
            return Error::NotFound(format!("queue {}", self.name));
        }
        map_error(
            e,
            &format!("{operation} on queue {}", self.name),
            &self.account,
        )
    }

    /// A stale pop receipt (400 PopReceiptMismatch) or a message already gone
    /// (404 MessageNotFound) both mean another receiver owns it now.
    fn lease_err(&self, e: azure_core::Error, message: &ReceivedMessage, operation: &str) -> Error {
        match (status_of(&e), error_code_of(&e)) {
            (Some(404), Some("MessageNotFound")) | (Some(400), Some("PopReceiptMismatch")) => {
                Error::LeaseLost {
                    message_id: message.id.clone(),
                }
            }
            _ => self.err(e, operation),
        }
    }
}

#[async_trait]
impl JobQueue for AzureQueue {
    fn name(&self) -> &str {
        &self.name
    }

    async fn create_if_missing(&self) -> Result<()> {
        match self.client.create(None).await {
            Ok(_) => Ok(()),
            Err(e) if status_of(&e) == Some(409) => Ok(()),
            Err(e) => Err(self.err(e, "create")),
        }
    }

    async fn send(&self, body: &str) -> Result<()> {
        let message = QueueMessage {
            message_text: Some(body.to_owned()),
        };
        let content = message.try_into().map_err(|e| self.err(e, "send"))?;
        // Never expire: Azure's default of 7 days would silently drop a job of a long backlog
        // or a `--no-wait` run collected later. A job ends as done, failed or cleaned.
        let options = QueueClientSendMessageOptions {
            message_time_to_live: Some(-1),
            ..Default::default()
        };
        self.client
            .send_message(content, Some(options))
            .await
            .map(drop)
            .map_err(|e| self.err(e, "send"))
    }

    async fn receive(&self, visibility: Duration) -> Result<Option<ReceivedMessage>> {
        let options = QueueClientReceiveMessagesOptions {
            number_of_messages: Some(1),
            visibility_timeout: Some(visibility_secs(visibility, 1) as i32),
            ..Default::default()
        };
        let received = self
            .client
            .receive_messages(Some(options))
            .await
            .map_err(|e| self.err(e, "receive"))?
            .into_model()
            .map_err(|e| self.err(e, "receive"))?;
        let Some(m) = received.items.and_then(|v| v.into_iter().next()) else {
            return Ok(None);
        };
        match (m.message_id, m.pop_receipt) {
            (Some(id), Some(pop_receipt)) => Ok(Some(ReceivedMessage {
                id,
                pop_receipt,
                dequeue_count: m.dequeue_count.unwrap_or(1).clamp(0, i64::from(u32::MAX)) as u32,
                body: m.message_text.unwrap_or_default(),
            })),
            _ => Err(Error::Other {
                operation: format!("receive on queue {}", self.name),
                message: "the service returned a message without an id or pop receipt".into(),
            }),
        }
    }

    async fn set_visibility(
        &self,
        message: &mut ReceivedMessage,
        visibility: Duration,
    ) -> Result<()> {
        let secs = visibility_secs(visibility, 0) as i32;
        let response = self
            .client
            .update_message(&message.id, &message.pop_receipt, secs, None)
            .await
            .map_err(|e| self.lease_err(e, message, "update visibility"))?;
        let receipt = response
            .headers()
            .get_optional_string(&POP_RECEIPT)
            .ok_or_else(|| Error::Other {
                operation: format!("update visibility on queue {}", self.name),
                message: "the service returned no new pop receipt".into(),
            })?;
        message.pop_receipt = receipt;
        Ok(())
    }

    async fn set_visibility_and_body(
        &self,
        message: &mut ReceivedMessage,
        visibility: Duration,
        body: &str,
    ) -> Result<()> {
        let secs = visibility_secs(visibility, 0) as i32;
        let content = QueueMessage {
            message_text: Some(body.to_owned()),
        }
        .try_into()
        .map_err(|e| self.err(e, "update"))?;
        let options = QueueClientUpdateMessageOptions {
            queue_message: Some(content),
            ..Default::default()
        };
        let response = self
            .client
            .update_message(&message.id, &message.pop_receipt, secs, Some(options))
            .await
            .map_err(|e| self.lease_err(e, message, "update"))?;
        let receipt = response
            .headers()
            .get_optional_string(&POP_RECEIPT)
            .ok_or_else(|| Error::Other {
                operation: format!("update on queue {}", self.name),
                message: "the service returned no new pop receipt".into(),
            })?;
        message.pop_receipt = receipt;
        message.body = body.to_owned();
        Ok(())
    }

    async fn delete(&self, message: &ReceivedMessage) -> Result<()> {
        self.client
            .delete_message(&message.id, &message.pop_receipt, None)
            .await
            .map(drop)
            .map_err(|e| self.lease_err(e, message, "delete"))
    }

    async fn approximate_len(&self) -> Result<u64> {
        let response = self
            .client
            .get_properties(None)
            .await
            .map_err(|e| self.err(e, "count"))?;
        let count = response
            .approximate_messages_count()
            .map_err(|e| self.err(e, "count"))?;
        Ok(count.unwrap_or(0).max(0) as u64)
    }

    async fn clear(&self) -> Result<()> {
        self.client
            .clear(None)
            .await
            .map(drop)
            .map_err(|e| self.err(e, "clear"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::http::StatusCode;

    fn http(status: u16, code: Option<&str>) -> azure_core::Error {
        ErrorKind::HttpResponse {
            status: StatusCode::from(status),
            error_code: code.map(str::to_owned),
            raw_response: None,
        }
        .into_error()
    }

    #[test]
    fn service_errors_map_to_clear_variants() {
        let e = map_error(http(403, Some("AuthenticationFailed")), "put x", "acct");
        assert_eq!(
            e.to_string(),
            "storage rejected the credentials (403 AuthenticationFailed) for account acct"
        );
        assert!(matches!(
            map_error(http(403, None), "exists x", "acct"),
            Error::Auth { .. }
        ));
        let e = map_error(
            http(403, Some("AuthorizationPermissionMismatch")),
            "delete x",
            "acct",
        );
        assert!(matches!(e, Error::PermissionDenied { .. }), "{e:?}");
        assert!(e.to_string().contains("delete x"));
        let e = map_error(http(503, Some("ServerBusy")), "get x", "acct");
        assert!(e.is_retryable(), "{e:?}");
        let e = map_error(http(400, Some("InvalidBlobOrBlock")), "put x", "acct");
        assert!(!e.is_retryable());
        let e = map_error(
            azure_core::Error::with_message(
                ErrorKind::Connection,
                "connect to http://h/c?sv=1&sig=SECRET failed",
            ),
            "get x",
            "acct",
        );
        assert!(e.is_retryable());
        assert!(!e.to_string().contains("SECRET"), "{e}");
        let e = map_error(
            azure_core::Error::with_message(
                ErrorKind::Credential,
                "ManagedIdentityCredential authentication failed. No identity\nTo troubleshoot, visit https://aka.ms/x",
            ),
            "put x",
            "acct",
        );
        assert_eq!(
            e.to_string(),
            "could not obtain an Entra ID token for storage: ManagedIdentityCredential \
             authentication failed. No identity To troubleshoot, visit https://aka.ms/x"
        );
    }
}
