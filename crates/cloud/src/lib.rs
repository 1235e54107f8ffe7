//! stylize-cloud: the fan-out job contract (every document typed) and its storage/queue transports.
//!
//! A run is one input video + one style + parameters, identified by a content
//! hash ([`RunId::derive`]). The coordinator uploads frames to
//! `runs/<run>/frames/`, writes `runs/<run>/manifest.json` once
//! ([`publish_manifest`]) and enqueues one [`JobSpec`] per range of frames
//! ([`split_jobs`], [`default_frames_per_job`]), noting each queued job with a
//! [`QueuedMarker`] so a resumed coordinator does not queue it twice. Workers receive jobs
//! ([`JobQueue::receive`]), keep them invisible while they work
//! ([`MessageLease`]), write `runs/<run>/styled/` frames and then a
//! [`DoneMarker`], and only then delete the message. A message delivered too
//! often goes to `<queue>-poison` ([`dead_letter`]) with a [`FailedMarker`],
//! so the coordinator ([`RunProgress`]) reports those frames instead of
//! waiting forever.
//!
//! # The contract
//!
//! Every document is a type of [`protocol`], at [`FORMAT_VERSION`]; blob names
//! come from [`RunId`]'s `*_key` methods.
//!
//! | document | type | written by | read by |
//! |---|---|---|---|
//! | `runs/<run>/manifest.json`, once | [`RunManifest`] ([`to_json`](RunManifest::to_json), [`from_json`](RunManifest::from_json)) | the coordinator | a resumed coordinator, `stylize runs` |
//! | a queue message | [`JobSpec`] ([`to_message`](JobSpec::to_message), [`from_message`](JobSpec::from_message)) | the coordinator | workers |
//! | the `style` of both | [`StyleSpec`]: [`StyleKind`], a label, the values ([`PRESET_COUNT`] weights for presets) | the coordinator | workers |
//! | the `params` of both | [`StyleParamsSpec`]: `max_size`, `preserve_colors`, `strength`, `optimize` (absent for the fast method); hashed into the run id | the coordinator | workers |
//! | `runs/<run>/queued/<job:05>.json` | [`QueuedMarker`] (only its name is read) | the coordinator, after the send | a resumed coordinator |
//! | `runs/<run>/frames/<n:06>.<ext>`, `styled/<n:06>.<ext>` | images in the run's [`FrameFormat`] | the coordinator, workers | workers, the coordinator |
//! | `runs/<run>/done/<job:05>.json` | [`DoneMarker`] | a worker, last | the coordinator |
//! | `runs/<run>/failed/<job:05>.json` | [`FailedMarker`] | a worker giving up | the coordinator |
//!
//! Parsing checks as well as reads: [`RunManifest::from_json`] and
//! [`RunManifest::new`] refuse a style or parameters a worker could not use
//! ([`StyleSpec::validate`], [`StyleParamsSpec::validate`]:
//! [`Error::InvalidStyle`]). [`JobSpec::from_message`] keeps two failures
//! apart: [`Error::MalformedMessage`] for a message that is not a job of this
//! version (set it aside), and [`Error::UnusableJob`] for a job of this
//! protocol whose style or parameters this build cannot use, which names its
//! run and job so the worker writes its [`FailedMarker`]
//! ([`UnusableJob::failed_marker`]) and the coordinator stops waiting.
//! `JobSpec`, `StyleSpec` and `StyleParamsSpec` reject unknown fields.
//!
//! Two transports implement [`BlobStore`] and [`JobQueue`]: a local folder
//! ([`local`], safe for several processes on one machine) and Azure Blob
//! Storage + Azure Storage Queues ([`azure`], SDK 1.x over rustls). The same
//! test suite runs against both (the Azure one against a real Azurite).
//!
//! # Storage specs (`--cloud SPEC`)
//!
//! [`CloudConfig::from_spec`] accepts:
//!
//! | spec | meaning |
//! |---|---|
//! | `env` | the value of `$AZURE_STORAGE_CONNECTION_STRING`, read as a spec (keeps keys out of `ps` and shell history) |
//! | `env:VAR` | the value of `$VAR`, read as a spec |
//! | `dir:PATH` | the local-directory transport rooted at `PATH` (no cloud account) |
//! | `UseDevelopmentStorage=true` | Azurite on 127.0.0.1:10000 (blob) and :10001 (queue) |
//! | `AccountName=A;AccountKey=K[;EndpointSuffix=S][;DefaultEndpointsProtocol=https]` | an account key: each request carries an account SAS signed with it (HMAC-SHA256), valid 1 h |
//! | `BlobEndpoint=URL;QueueEndpoint=URL;SharedAccessSignature=SAS` | a SAS for both services |
//! | `BlobEndpoint=URL?SAS;QueueEndpoint=URL?SAS` | a separate SAS per service (e.g. a worker's narrower one) |
//! | `BlobEndpoint=URL;QueueEndpoint=URL;ContainerSas.NAME=SAS;...;QueueSas.NAME=SAS;...` | a grant ([`grant`], `stylize runs grant`): one service SAS per container and per queue, and no other container or queue reachable |
//! | `AccountName=A[;Credential=chain\|workload\|managed\|developer]` | Entra ID (no key or SAS given) |
//! | `https://A.blob.core.windows.net[/CONTAINER]?SAS` | an account URL with a SAS; the queue endpoint is `A.queue.<same suffix>` |
//! | `https://A.blob.core.windows.net[/CONTAINER]` | an account URL with Entra ID (the credential chain) |
//!
//! Connection strings also take two stylize keys, `Container=NAME` (default
//! `stylize`) and `Queue=NAME` (default `stylize-jobs`; the poison queue is
//! `NAME-poison`); [`CloudConfig::with_container`] and
//! [`CloudConfig::with_queue`] set them from flags. The Entra chain tries
//! workload identity (when `AZURE_FEDERATED_TOKEN_FILE` is set), then the
//! `az`/`azd` login, then the managed identity (user-assigned when
//! `AZURE_CLIENT_ID` is set), and keeps the first that works.
//!
//! Secrets never reach output: keys and SAS tokens are held in [`Redacted`],
//! and every message from the SDK or the service passes through
//! [`redact_secrets`] before it becomes an [`Error`].

pub mod azure;
pub mod config;
pub mod error;
pub mod events;
pub mod grant;
pub mod lease;
pub mod local;
pub mod protocol;
pub mod redact;
pub mod run;
pub mod sas;
pub mod stats;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use bytes::Bytes;
pub use config::{
    Auth, AzureAccount, Backend, CloudConfig, EntraCredential, DEFAULT_CONTAINER, DEFAULT_QUEUE,
};
pub use error::{Error, Result};
pub use lease::MessageLease;
pub use protocol::{
    default_frames_per_job, job_range, sha256_file, sha256_hex, split_jobs, DoneMarker, EncodeSpec,
    FailedMarker, FrameFormat, FrameRange, FrameRate, JobSegment, JobSpec, OptimizeSpec, PieceSpec,
    QueuedMarker, RunId, RunManifest, SegmentsSpec, StyleKind, StyleParamsSpec, StyleSpec,
    UnusableJob, FORMAT_VERSION, PRESET_COUNT,
};
pub use redact::{redact_secrets, Redacted};
pub use run::{
    delete_run, existing_frames, list_runs, load_manifest, publish_manifest, RunProgress,
};
pub use store::{
    dead_letter, made_or_not_ours_to_make, poison_queue_name, BlobEntry, BlobStore, JobQueue,
    ReceivedMessage,
};

use std::{fmt, sync::Arc};

/// The three handles a coordinator or worker needs: the run container, the
/// job queue and its poison queue, whichever transport the config names.
#[derive(Clone)]
pub struct Cloud {
    /// The container holding `runs/`.
    pub blobs: Arc<dyn BlobStore>,
    /// The job queue.
    pub jobs: Arc<dyn JobQueue>,
    /// `<queue>-poison`.
    pub poison: Arc<dyn JobQueue>,
    description: String,
    config: CloudConfig,
}

impl Cloud {
    /// Builds the clients for `config`. Makes no request: a wrong key shows
    /// up on the first operation, as [`Error::Auth`].
    pub fn open(config: &CloudConfig) -> Result<Cloud> {
        let poison = config.poison_queue();
        let (blobs, jobs, poison): (Arc<dyn BlobStore>, Arc<dyn JobQueue>, Arc<dyn JobQueue>) =
            match &config.backend {
                Backend::Local { root } => (
                    Arc::new(local::LocalBlobStore::new(root, &config.container)?),
                    Arc::new(local::LocalQueue::new(root, &config.queue)?),
                    Arc::new(local::LocalQueue::new(root, &poison)?),
                ),
                Backend::Azure(account) => (
                    Arc::new(azure::AzureBlobStore::new(account, &config.container)?),
                    Arc::new(azure::AzureQueue::new(account, &config.queue)?),
                    Arc::new(azure::AzureQueue::new(account, &poison)?),
                ),
            };
        Ok(Cloud {
            blobs: stats::blobs(blobs),
            jobs: stats::queue(jobs),
            poison: stats::queue(poison),
            description: config.to_string(),
            config: config.clone(),
        })
    }

    /// The run container's name.
    pub fn container_name(&self) -> &str {
        &self.config.container
    }

    /// Another container of the same account and credentials (a run's
    /// separate output container, see [`RunManifest::output_container`]).
    /// Under a grant, a container it does not cover is [`Error::NotGranted`]: a
    /// worker acts only on the containers it was given, whatever a message names.
    pub fn container(&self, name: &str) -> Result<Arc<dyn BlobStore>> {
        if name == self.config.container {
            return Ok(self.blobs.clone());
        }
        Ok(stats::blobs(match &self.config.backend {
            Backend::Local { root } => Arc::new(local::LocalBlobStore::new(root, name)?),
            Backend::Azure(account) => Arc::new(azure::AzureBlobStore::new(account, name)?),
        }))
    }

    /// Another queue of the same account and credentials (Event Grid's, for `stylize watch`);
    /// under a grant, one it does not cover is [`Error::NotGranted`].
    pub fn queue(&self, name: &str) -> Result<Arc<dyn JobQueue>> {
        Ok(stats::queue(match &self.config.backend {
            Backend::Local { root } => Arc::new(local::LocalQueue::new(root, name)?),
            Backend::Azure(account) => Arc::new(azure::AzureQueue::new(account, name)?),
        }))
    }

    /// Where a run's outputs (styled frames, markers) live: its output
    /// container, or the run container itself.
    pub fn outputs_of(&self, output_container: Option<&str>) -> Result<Arc<dyn BlobStore>> {
        match output_container {
            Some(name) => self.container(name),
            None => Ok(self.blobs.clone()),
        }
    }

    /// Creates the container and both queues where missing (the coordinator
    /// does this; a worker whose SAS may not create things need not).
    /// Credentials that may not create (a grant) leave making them to whoever issued them.
    pub async fn create_if_missing(&self) -> Result<()> {
        made_or_not_ours_to_make(self.blobs.create_if_missing().await)?;
        made_or_not_ours_to_make(self.jobs.create_if_missing().await)?;
        made_or_not_ours_to_make(self.poison.create_if_missing().await)
    }
}

impl fmt::Debug for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cloud")
            .field("storage", &self.description)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}
