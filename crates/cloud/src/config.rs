//! Turning a `--cloud` spec (connection string, SAS URL, Entra URL, local folder) into one validated [`CloudConfig`].

use crate::{
    store::{poison_queue_name, validate_resource_name},
    Error, Redacted, Result,
};
use azure_core::http::Url;
use base64::Engine as _;
use std::{collections::BTreeMap, fmt, path::PathBuf};

/// Container used when the spec names none.
pub const DEFAULT_CONTAINER: &str = "stylize";
/// Job queue used when the spec names none; its poison queue is `stylize-jobs-poison`.
pub const DEFAULT_QUEUE: &str = "stylize-jobs";
/// Variable read by the `env` spec.
pub const CONNECTION_STRING_VAR: &str = "AZURE_STORAGE_CONNECTION_STRING";

/// Azurite's account and key: public, documented, the same on every machine.
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known account key (public, not a secret).
pub const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Where runs live and how to authenticate: the result of [`CloudConfig::from_spec`].
///
/// `Debug` and `Display` never show a key or SAS signature.
#[derive(Clone, Debug)]
pub struct CloudConfig {
    /// The storage service.
    pub backend: Backend,
    /// Blob container holding `runs/`.
    pub container: String,
    /// Job queue name; its poison queue is [`CloudConfig::poison_queue`].
    pub queue: String,
}

/// Which transport a [`CloudConfig`] uses.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Backend {
    /// Files under a local folder (the local-directory transport).
    Local {
        /// The folder.
        root: PathBuf,
    },
    /// An Azure Storage account (or Azurite).
    Azure(Box<AzureAccount>),
}

/// An Azure Storage account's endpoints and credentials.
#[derive(Clone, Debug)]
pub struct AzureAccount {
    /// Account name, for messages (`devstoreaccount1` for Azurite).
    pub account: String,
    /// Blob service URL, no query, no trailing slash.
    pub blob_endpoint: Url,
    /// Queue service URL, no query, no trailing slash.
    pub queue_endpoint: Url,
    /// How blob requests authenticate.
    pub blob_auth: Auth,
    /// How queue requests authenticate.
    pub queue_auth: Auth,
}

/// How requests to one service authenticate.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Auth {
    /// An account key: every request carries a short-lived account SAS signed with it.
    SharedKey {
        /// Account name the key belongs to.
        account: String,
        /// The decoded key.
        key: Redacted<Vec<u8>>,
    },
    /// A SAS token (the query string, without `?`) appended to every request.
    Sas(Redacted<String>),
    /// An Entra ID token from `azure_identity`.
    Entra(EntraCredential),
    /// One SAS per container (or per queue), by name: a worker's grant (`stylize runs grant`).
    /// Only the named containers and queues can be used; [`AzureAccount::blob_auth_for`] and
    /// [`AzureAccount::queue_auth_for`] pick the SAS.
    Scoped(BTreeMap<String, Redacted<String>>),
}

impl AzureAccount {
    /// How requests to `container` authenticate: its own SAS under a grant (which covers no
    /// other container), else the blob service's credential.
    pub fn blob_auth_for(&self, container: &str) -> Result<Auth> {
        resolve(&self.blob_auth, "container", container)
    }

    /// How requests to `queue` authenticate, as [`AzureAccount::blob_auth_for`].
    pub fn queue_auth_for(&self, queue: &str) -> Result<Auth> {
        resolve(&self.queue_auth, "queue", queue)
    }
}

fn resolve(auth: &Auth, kind: &'static str, name: &str) -> Result<Auth> {
    match auth {
        Auth::Scoped(grants) => match grants.get(name) {
            Some(sas) => Ok(Auth::Sas(sas.clone())),
            None => Err(Error::NotGranted {
                kind,
                name: name.to_owned(),
                granted: grants.keys().cloned().collect::<Vec<_>>().join(", "),
            }),
        },
        other => Ok(other.clone()),
    }
}

/// Which Entra credential to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntraCredential {
    /// Workload identity (when `AZURE_FEDERATED_TOKEN_FILE` is set), then the
    /// developer's `az`/`azd` login, then the managed identity; the first that
    /// gives a token is kept.
    Chain,
    /// Kubernetes workload identity only.
    WorkloadIdentity,
    /// The VM's or App Service's managed identity only (`AZURE_CLIENT_ID`
    /// selects a user-assigned one).
    ManagedIdentity,
    /// `az login` / `azd auth login` only.
    DeveloperTools,
}

impl CloudConfig {
    /// Parses a storage spec. Accepted forms (see the crate docs for examples):
    ///
    /// - `env` or `env:VAR`: the spec is the value of `$VAR`, default
    ///   `AZURE_STORAGE_CONNECTION_STRING` (keeps keys off the command line);
    /// - `dir:PATH`: the local-directory transport rooted at `PATH`;
    /// - a connection string, `Key=Value;...`;
    /// - an account URL `https://ACCOUNT.blob.core.windows.net[/CONTAINER][?SAS]`.
    pub fn from_spec(spec: &str) -> Result<CloudConfig> {
        Self::from_spec_with_env(spec, |var| std::env::var(var).ok())
    }

    /// [`CloudConfig::from_spec`] with the environment given as a function (for tests
    /// and for callers that read variables from elsewhere).
    pub fn from_spec_with_env(
        spec: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<CloudConfig> {
        let spec = spec.trim();
        if spec == "env" || spec.starts_with("env:") {
            let var = spec
                .strip_prefix("env:")
                .filter(|v| !v.is_empty())
                .unwrap_or(CONNECTION_STRING_VAR);
            let value = env(var).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                Error::Config(format!(
                    "--cloud {spec}: the environment variable {var} is not set"
                ))
            })?;
            if value.trim() == "env" || value.trim().starts_with("env:") {
                return Err(Error::Config(format!(
                    "{var} refers to another variable; give the storage itself"
                )));
            }
            return Self::from_spec_with_env(&value, env);
        }
        if let Some(path) = spec.strip_prefix("dir:") {
            if path.is_empty() {
                return Err(Error::Config(
                    "dir: needs a folder, e.g. dir:/data/stylize".into(),
                ));
            }
            return Ok(CloudConfig {
                backend: Backend::Local {
                    root: PathBuf::from(path),
                },
                container: DEFAULT_CONTAINER.into(),
                queue: DEFAULT_QUEUE.into(),
            });
        }
        let lower = spec.to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            return parse_account_url(spec);
        }
        if spec.contains('=') {
            return parse_connection_string(spec);
        }
        Err(Error::Config(format!(
            "cannot read storage spec {:?}: expected env[:VAR], dir:PATH, a connection string or an https:// account URL",
            crate::redact_secrets(spec)
        )))
    }

    /// The spec for Azurite at the given service URLs (as the tests start it).
    pub fn azurite(blob_endpoint: &str, queue_endpoint: &str) -> Result<CloudConfig> {
        parse_connection_string(&format!(
            "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint={blob_endpoint};QueueEndpoint={queue_endpoint}"
        ))
    }

    /// Uses another container.
    pub fn with_container(mut self, container: &str) -> Result<CloudConfig> {
        validate_resource_name("container", container)?;
        self.container = container.to_owned();
        Ok(self)
    }

    /// Uses another job queue (and so another poison queue).
    pub fn with_queue(mut self, queue: &str) -> Result<CloudConfig> {
        validate_queue(queue)?;
        self.queue = queue.to_owned();
        Ok(self)
    }

    /// `<queue>-poison`.
    pub fn poison_queue(&self) -> String {
        poison_queue_name(&self.queue)
    }
}

fn validate_queue(queue: &str) -> Result<()> {
    validate_resource_name("queue", queue)?;
    // Leave room for the "-poison" suffix within Azure's 63 characters.
    validate_resource_name("poison queue", &poison_queue_name(queue))
}

impl fmt::Display for CloudConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backend {
            Backend::Local { root } => write!(f, "local folder {}", root.display())?,
            Backend::Azure(a) => write!(
                f,
                "storage account {} (blob {}, queue {}, {})",
                a.account,
                a.blob_endpoint,
                a.queue_endpoint,
                describe_auth(a)
            )?,
        }
        write!(f, ", container {}, queue {}", self.container, self.queue)
    }
}

fn describe_auth(a: &AzureAccount) -> String {
    match (&a.blob_auth, &a.queue_auth) {
        (Auth::Scoped(containers), Auth::Scoped(queues)) => {
            let names = |m: &BTreeMap<String, _>| m.keys().cloned().collect::<Vec<_>>().join(", ");
            format!(
                "grant for containers {} and queues {}",
                names(containers),
                names(queues)
            )
        }
        (Auth::SharedKey { .. }, _) => "account key".into(),
        (Auth::Sas(_), _) => "SAS".into(),
        (Auth::Entra(_), _) => "Entra ID".into(),
        (Auth::Scoped(_), _) => "grant".into(),
    }
}

/// A connection string's settings, keys compared case-insensitively.
struct Settings(Vec<(String, String)>);

impl Settings {
    /// `Key=Value;Key=Value`, refusing unknown keys (a typo must not be silently ignored).
    fn parse(spec: &str) -> Result<Settings> {
        let mut pairs = Vec::new();
        for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                Error::Config(format!(
                    "connection string part {:?} is not Key=Value",
                    crate::redact_secrets(part)
                ))
            })?;
            let k = k.trim();
            let known = KNOWN_KEYS.iter().any(|known| known.eq_ignore_ascii_case(k))
                || GRANT_PREFIXES
                    .iter()
                    .any(|p| strip_prefix_ci(k, p).is_some());
            if !known {
                return Err(Error::Config(format!(
                    "connection string has an unknown key {k:?}"
                )));
            }
            pairs.push((k.to_owned(), v.trim().to_owned()));
        }
        Ok(Settings(pairs))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// The `PREFIX<name>=SAS` entries of a grant, by name (`kind`: container or queue).
    fn scoped(&self, prefix: &str, kind: &str) -> Result<BTreeMap<String, Redacted<String>>> {
        let mut out = BTreeMap::new();
        for (k, v) in &self.0 {
            let Some(name) = strip_prefix_ci(k, prefix) else {
                continue;
            };
            validate_resource_name(kind, name)?;
            let sas = v.trim_start_matches('?');
            if sas.is_empty() {
                return Err(Error::Config(format!("{prefix}{name} has no SAS")));
            }
            if out
                .insert(name.to_owned(), Redacted::new(sas.to_owned()))
                .is_some()
            {
                return Err(Error::Config(format!("{prefix}{name} is given twice")));
            }
        }
        Ok(out)
    }
}

/// `key` without `prefix`, compared case-insensitively.
fn strip_prefix_ci<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    let head = key.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &key[prefix.len()..])
}

/// A grant's keys: `ContainerSas.<container>=<service SAS>`, `QueueSas.<queue>=<service SAS>`.
pub const CONTAINER_SAS_PREFIX: &str = "ContainerSas.";
/// See [`CONTAINER_SAS_PREFIX`].
pub const QUEUE_SAS_PREFIX: &str = "QueueSas.";
const GRANT_PREFIXES: &[&str] = &[CONTAINER_SAS_PREFIX, QUEUE_SAS_PREFIX];

const KNOWN_KEYS: &[&str] = &[
    "DefaultEndpointsProtocol",
    "AccountName",
    "AccountKey",
    "EndpointSuffix",
    "BlobEndpoint",
    "QueueEndpoint",
    "TableEndpoint",
    "FileEndpoint",
    "SharedAccessSignature",
    "UseDevelopmentStorage",
    "DevelopmentStorageProxyUri",
    "Container",
    "Queue",
    "Credential",
];

fn parse_connection_string(spec: &str) -> Result<CloudConfig> {
    let s = Settings::parse(spec)?;
    let dev = s
        .get("UseDevelopmentStorage")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let account = match s.get("AccountName") {
        Some(a) => a.to_owned(),
        None if dev => DEV_ACCOUNT.to_owned(),
        None => String::new(),
    };
    let protocol = s
        .get("DefaultEndpointsProtocol")
        .unwrap_or(if dev { "http" } else { "https" });
    if !matches!(protocol, "http" | "https") {
        return Err(Error::Config(format!(
            "DefaultEndpointsProtocol must be http or https, not {protocol:?}"
        )));
    }
    let suffix = s.get("EndpointSuffix").unwrap_or("core.windows.net");

    let endpoint = |key: &str, service: &str, dev_port: u16| -> Result<(Url, Option<String>)> {
        if let Some(url) = s.get(key) {
            return service_url(url, key);
        }
        if dev {
            let host = s
                .get("DevelopmentStorageProxyUri")
                .unwrap_or("http://127.0.0.1");
            return service_url(&format!("{host}:{dev_port}/{DEV_ACCOUNT}"), key);
        }
        if account.is_empty() {
            return Err(Error::Config(format!(
                "connection string needs AccountName or {key}"
            )));
        }
        service_url(&format!("{protocol}://{account}.{service}.{suffix}"), key)
    };
    let (blob_endpoint, blob_sas) = endpoint("BlobEndpoint", "blob", 10000)?;
    let (queue_endpoint, queue_sas) = endpoint("QueueEndpoint", "queue", 10001)?;
    let account = if account.is_empty() {
        account_from_url(&blob_endpoint).unwrap_or_default()
    } else {
        account
    };

    let (blob_auth, queue_auth) = match grant_auth(&s, blob_sas.is_some() || queue_sas.is_some())? {
        Some(scoped) => scoped,
        None => {
            let base = account_wide_auth(&s, dev, &account)?;
            // A SAS carried in an endpoint URL's query applies to that service only.
            let pick = |own: Option<String>| match (own, &base) {
                (Some(t), _) => Auth::Sas(Redacted::new(t)),
                (None, Some(a)) => a.clone(),
                (None, None) => Auth::Entra(EntraCredential::Chain),
            };
            (pick(blob_sas), pick(queue_sas))
        }
    };

    let container = s.get("Container").unwrap_or(DEFAULT_CONTAINER).to_owned();
    validate_resource_name("container", &container)?;
    let queue = s.get("Queue").unwrap_or(DEFAULT_QUEUE).to_owned();
    validate_queue(&queue)?;
    Ok(CloudConfig {
        backend: Backend::Azure(Box::new(AzureAccount {
            account,
            blob_endpoint,
            queue_endpoint,
            blob_auth,
            queue_auth,
        })),
        container,
        queue,
    })
}

/// A grant's per-container and per-queue SASes, when the string has any; they must be its only
/// credentials, so a worker holding it can reach nothing else.
fn grant_auth(s: &Settings, endpoint_sas: bool) -> Result<Option<(Auth, Auth)>> {
    let containers = s.scoped(CONTAINER_SAS_PREFIX, "container")?;
    let queues = s.scoped(QUEUE_SAS_PREFIX, "queue")?;
    if containers.is_empty() && queues.is_empty() {
        return Ok(None);
    }
    let other = [
        "AccountKey",
        "SharedAccessSignature",
        "Credential",
        "UseDevelopmentStorage",
    ]
    .into_iter()
    .find(|k| s.get(k).is_some());
    if let Some(other) = other {
        return Err(Error::Config(format!(
            "a grant (ContainerSas./QueueSas. entries) cannot be combined with {other}"
        )));
    }
    if endpoint_sas {
        return Err(Error::Config(
            "a grant (ContainerSas./QueueSas. entries) cannot be combined with a SAS in an endpoint URL".into(),
        ));
    }
    if containers.is_empty() || queues.is_empty() {
        return Err(Error::Config(
            "a grant needs ContainerSas.<container> and QueueSas.<queue> entries".into(),
        ));
    }
    Ok(Some((Auth::Scoped(containers), Auth::Scoped(queues))))
}

/// The credential the string gives for both services (a key, a SAS or an Entra ID choice), if any.
fn account_wide_auth(s: &Settings, dev: bool, account: &str) -> Result<Option<Auth>> {
    let shared = match (s.get("AccountKey"), dev) {
        (Some(key), _) => Some(key),
        (None, true) => Some(DEV_ACCOUNT_KEY),
        (None, false) => None,
    };
    let sas = s
        .get("SharedAccessSignature")
        .map(|t| t.trim_start_matches('?').to_owned());
    let credential = s.get("Credential").map(parse_credential).transpose()?;
    Ok(match (shared, &sas, credential) {
        (Some(_), Some(_), _) => {
            return Err(Error::Config(
                "connection string has both AccountKey and SharedAccessSignature; give one".into(),
            ))
        }
        (Some(key), None, None) => {
            if account.is_empty() {
                return Err(Error::Config("AccountKey needs AccountName".into()));
            }
            Some(Auth::SharedKey {
                account: account.to_owned(),
                key: Redacted::new(decode_key(key)?),
            })
        }
        (None, Some(t), None) => Some(Auth::Sas(Redacted::new(t.clone()))),
        (None, None, Some(c)) => Some(Auth::Entra(c)),
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            return Err(Error::Config(
                "Credential= selects Entra ID and cannot be combined with a key or SAS".into(),
            ))
        }
        (None, None, None) => None,
    })
}

fn parse_credential(v: &str) -> Result<EntraCredential> {
    match v.to_ascii_lowercase().as_str() {
        "chain" | "default" => Ok(EntraCredential::Chain),
        "workload" | "workload-identity" => Ok(EntraCredential::WorkloadIdentity),
        "managed" | "managed-identity" => Ok(EntraCredential::ManagedIdentity),
        "developer" | "developer-tools" | "cli" => Ok(EntraCredential::DeveloperTools),
        other => Err(Error::Config(format!(
            "Credential={other:?}: expected chain, workload, managed or developer"
        ))),
    }
}

fn decode_key(key: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| Error::Config("AccountKey is not valid base64".into()))
}

/// Parses a service URL, splitting off a SAS in its query and the trailing
/// slash that would make the SDK build `//container` paths.
fn service_url(raw: &str, what: &str) -> Result<(Url, Option<String>)> {
    let mut url = Url::parse(raw.trim()).map_err(|e| {
        Error::Config(format!(
            "{what} is not a URL ({e}): {}",
            crate::redact_secrets(raw)
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::Config(format!(
            "{what} must be an http(s) URL with a host"
        )));
    }
    let sas = url.query().filter(|q| !q.is_empty()).map(str::to_owned);
    url.set_query(None);
    url.set_fragment(None);
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    Ok((url, sas))
}

/// The account in `https://ACCOUNT.blob.core.windows.net`, or in the first
/// path segment of a path-style URL (`http://127.0.0.1:10000/ACCOUNT`).
fn account_from_url(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    let path_style = host.parse::<std::net::IpAddr>().is_ok() || host == "localhost";
    if path_style {
        url.path_segments()?
            .next()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    } else {
        host.split('.').next().map(str::to_owned)
    }
}

fn parse_account_url(spec: &str) -> Result<CloudConfig> {
    let (mut url, sas) = service_url(spec, "account URL")?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let Some((account, rest)) = host.split_once(".blob.") else {
        return Err(Error::Config(format!(
            "cannot derive the queue endpoint from {url}: give a blob URL like https://ACCOUNT.blob.core.windows.net, \
             or a connection string with BlobEndpoint= and QueueEndpoint="
        )));
    };
    // The path, if any, names the container.
    let container = url
        .path_segments()
        .and_then(|mut s| s.next().map(str::to_owned))
        .filter(|c| !c.is_empty());
    url.set_path("");
    let mut queue_endpoint = url.clone();
    queue_endpoint
        .set_host(Some(&format!("{account}.queue.{rest}")))
        .map_err(|e| Error::Config(format!("cannot build the queue endpoint: {e}")))?;
    let auth = match sas {
        Some(t) => Auth::Sas(Redacted::new(t)),
        None => Auth::Entra(EntraCredential::Chain),
    };
    let container = container.unwrap_or_else(|| DEFAULT_CONTAINER.to_owned());
    validate_resource_name("container", &container)?;
    Ok(CloudConfig {
        backend: Backend::Azure(Box::new(AzureAccount {
            account: account.to_owned(),
            blob_endpoint: url,
            queue_endpoint,
            blob_auth: auth.clone(),
            queue_auth: auth,
        })),
        container,
        queue: DEFAULT_QUEUE.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn azure(c: &CloudConfig) -> &AzureAccount {
        match &c.backend {
            Backend::Azure(a) => a,
            other => panic!("expected Azure, got {other:?}"),
        }
    }

    const KEY: &str = "c2VjcmV0LWtleS1ieXRlcy1mb3ItdGVzdHM=";

    #[test]
    fn connection_string_with_key() {
        let cs = format!("DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey={KEY};EndpointSuffix=core.windows.net");
        let c = CloudConfig::from_spec(&cs).unwrap();
        let a = azure(&c);
        assert_eq!(a.account, "myacct");
        assert_eq!(
            a.blob_endpoint.as_str(),
            "https://myacct.blob.core.windows.net/"
        );
        assert_eq!(
            a.queue_endpoint.as_str(),
            "https://myacct.queue.core.windows.net/"
        );
        assert!(
            matches!(&a.blob_auth, Auth::SharedKey { key, .. } if key.expose() == b"secret-key-bytes-for-tests")
        );
        assert_eq!(
            (c.container.as_str(), c.queue.as_str()),
            (DEFAULT_CONTAINER, DEFAULT_QUEUE)
        );
        assert_eq!(c.poison_queue(), "stylize-jobs-poison");
        for shown in [format!("{c}"), format!("{c:?}")] {
            assert!(!shown.contains(KEY) && !shown.contains("secret"), "{shown}");
        }
    }

    #[test]
    fn development_storage() {
        let c = CloudConfig::from_spec("UseDevelopmentStorage=true").unwrap();
        let a = azure(&c);
        assert_eq!(a.account, DEV_ACCOUNT);
        assert_eq!(
            a.blob_endpoint.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert_eq!(
            a.queue_endpoint.as_str(),
            "http://127.0.0.1:10001/devstoreaccount1"
        );
        assert!(matches!(a.queue_auth, Auth::SharedKey { .. }));
    }

    #[test]
    fn explicit_endpoints_drop_trailing_slash_and_take_names() {
        let cs = format!(
            "AccountName=devstoreaccount1;AccountKey={KEY};BlobEndpoint=http://127.0.0.1:5000/devstoreaccount1/;\
             QueueEndpoint=http://127.0.0.1:5001/devstoreaccount1;Container=frames-a;Queue=jobs-a"
        );
        let c = CloudConfig::from_spec(&cs).unwrap();
        let a = azure(&c);
        assert_eq!(
            a.blob_endpoint.as_str(),
            "http://127.0.0.1:5000/devstoreaccount1"
        );
        assert_eq!(c.container, "frames-a");
        assert_eq!(c.queue, "jobs-a");
        assert_eq!(c.poison_queue(), "jobs-a-poison");
    }

    #[test]
    fn sas_url_and_entra_url() {
        let c = CloudConfig::from_spec(
            "https://acct.blob.core.windows.net/frames?sv=2022-11-02&ss=bq&sig=SECRETSIG",
        )
        .unwrap();
        let a = azure(&c);
        assert_eq!(a.account, "acct");
        assert_eq!(c.container, "frames");
        assert_eq!(
            a.blob_endpoint.as_str(),
            "https://acct.blob.core.windows.net/"
        );
        assert_eq!(
            a.queue_endpoint.as_str(),
            "https://acct.queue.core.windows.net/"
        );
        assert!(matches!(&a.queue_auth, Auth::Sas(t) if t.expose().contains("sig=SECRETSIG")));
        assert!(!format!("{c} {c:?}").contains("SECRETSIG"));

        let c = CloudConfig::from_spec("https://acct.blob.core.windows.net").unwrap();
        assert!(matches!(
            azure(&c).blob_auth,
            Auth::Entra(EntraCredential::Chain)
        ));
        assert!(CloudConfig::from_spec("http://127.0.0.1:10000/devstoreaccount1").is_err());
    }

    #[test]
    fn per_endpoint_sas_and_credential_choice() {
        let cs = "BlobEndpoint=https://a.blob.core.windows.net?sv=1&sig=B;QueueEndpoint=https://a.queue.core.windows.net?sv=1&sig=Q";
        let c = CloudConfig::from_spec(cs).unwrap();
        let a = azure(&c);
        assert_eq!(a.account, "a");
        assert!(matches!(&a.blob_auth, Auth::Sas(t) if t.expose() == "sv=1&sig=B"));
        assert!(matches!(&a.queue_auth, Auth::Sas(t) if t.expose() == "sv=1&sig=Q"));

        let cs = "AccountName=a;Credential=managed";
        let c = CloudConfig::from_spec(cs).unwrap();
        assert!(matches!(
            azure(&c).blob_auth,
            Auth::Entra(EntraCredential::ManagedIdentity)
        ));
    }

    const GRANT: &str = "BlobEndpoint=https://a.blob.core.windows.net;QueueEndpoint=https://a.queue.core.windows.net;\
        Container=inputs;Queue=jobs;containersas.inputs=?sv=1&sr=c&sp=r&sig=SIGIN;ContainerSas.outputs=sv=1&sr=c&sp=rwl&sig=SIGOUT;\
        QueueSas.jobs=sv=1&sp=up&sig=SIGJOBS;QUEUESAS.jobs-poison=sv=1&sp=a&sig=SIGPOISON";

    #[test]
    fn grant_connection_string_scopes_each_container_and_queue() {
        let c = CloudConfig::from_spec(GRANT).unwrap();
        let a = azure(&c);
        assert_eq!(a.account, "a");
        let sas = |auth: Result<Auth>| match auth.unwrap() {
            Auth::Sas(t) => t.expose().clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(sas(a.blob_auth_for("inputs")), "sv=1&sr=c&sp=r&sig=SIGIN");
        assert_eq!(
            sas(a.blob_auth_for("outputs")),
            "sv=1&sr=c&sp=rwl&sig=SIGOUT"
        );
        assert_eq!(sas(a.queue_auth_for("jobs")), "sv=1&sp=up&sig=SIGJOBS");
        assert_eq!(
            sas(a.queue_auth_for("jobs-poison")),
            "sv=1&sp=a&sig=SIGPOISON"
        );
        let e = a.blob_auth_for("elsewhere").unwrap_err();
        assert!(
            matches!(&e, Error::NotGranted { kind: "container", name, .. } if name == "elsewhere")
        );
        assert!(
            a.queue_auth_for("inputs").is_err(),
            "a container's SAS is not a queue's"
        );

        // Neither the config nor the string itself, once redacted, shows a signature.
        let shown = format!("{c} {c:?} {}", crate::redact_secrets(GRANT));
        assert!(!shown.contains("SIG"), "{shown}");
        assert!(shown.contains("grant for containers inputs, outputs and queues jobs, jobs-poison"));
    }

    #[test]
    fn grant_strings_are_refused_when_mixed_or_malformed() {
        let refused = |cs: &str, why: &str| {
            let e = CloudConfig::from_spec(cs).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(why), "{cs}: {text}");
            assert!(!text.contains("SIG") && !text.contains(KEY), "{text}");
        };
        let key = format!("{GRANT};AccountName=a;AccountKey={KEY}");
        refused(&key, "cannot be combined with AccountKey");
        refused(
            &format!("{GRANT};SharedAccessSignature=sv=1&sig=SIGALL"),
            "SharedAccessSignature",
        );
        refused(&format!("{GRANT};Credential=workload"), "Credential");
        refused(
            &format!("{GRANT};UseDevelopmentStorage=true"),
            "UseDevelopmentStorage",
        );
        refused(
            "BlobEndpoint=https://a.blob.core.windows.net?sv=1&sig=SIGB;QueueEndpoint=https://a.queue.core.windows.net;\
             ContainerSas.inputs=sig=SIG1;QueueSas.jobs=sig=SIG2",
            "endpoint URL",
        );
        refused(
            "AccountName=a;ContainerSas.inputs=sv=1&sig=SIG1",
            "needs ContainerSas.<container> and QueueSas.<queue>",
        );
        refused(
            &format!("{GRANT};ContainerSas.inputs=sig=SIGAGAIN"),
            "given twice",
        );
        refused(
            &format!("{GRANT};ContainerSas.Bad_Name=sig=SIG3"),
            "Bad_Name",
        );
        refused(
            &format!("{GRANT};ContainerSas.x1=sig=SIG3;ContainerSas.=sig=SIG4"),
            "name",
        );
        refused(&format!("{GRANT};QueueSas.jobs2="), "has no SAS");
        refused(
            &format!("{GRANT};ContainerSasX.c1=sig=SIG5"),
            "unknown key \"ContainerSasX.c1\"",
        );
        refused(&format!("{GRANT};ContainerSas.c1"), "not Key=Value");
    }

    #[test]
    fn env_and_dir_specs() {
        let env =
            |v: &str| (v == CONNECTION_STRING_VAR).then(|| "UseDevelopmentStorage=true".to_owned());
        let c = CloudConfig::from_spec_with_env("env", env).unwrap();
        assert_eq!(azure(&c).account, DEV_ACCOUNT);
        let err = CloudConfig::from_spec_with_env("env:OTHER", env).unwrap_err();
        assert!(err.to_string().contains("OTHER is not set"), "{err}");

        let c = CloudConfig::from_spec("dir:/tmp/x").unwrap();
        assert!(matches!(&c.backend, Backend::Local { root } if root == &PathBuf::from("/tmp/x")));
    }

    #[test]
    fn bad_specs_are_clear_and_redacted() {
        let err =
            CloudConfig::from_spec(&format!("AccountName=a;AccountKey={KEY};Bogus=1")).unwrap_err();
        assert!(err.to_string().contains("Bogus"));
        let err = CloudConfig::from_spec("AccountName=a;AccountKey=not base64!").unwrap_err();
        assert!(err.to_string().contains("base64"));
        let err = CloudConfig::from_spec(&format!(
            "AccountName=a;AccountKey={KEY};SharedAccessSignature=sig=x"
        ))
        .unwrap_err();
        assert!(!err.to_string().contains(KEY));
        assert!(CloudConfig::from_spec("nonsense").is_err());
        assert!(CloudConfig::from_spec("UseDevelopmentStorage=true;Queue=Bad_Name").is_err());
        assert!(CloudConfig::from_spec("UseDevelopmentStorage=true")
            .unwrap()
            .with_queue(&"q".repeat(60))
            .is_err());
    }
}
