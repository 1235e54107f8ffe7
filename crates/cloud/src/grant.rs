//! Grants: connection strings of service SASes, each scoped to one container or queue with only the permissions its holder uses, signed with the account key.
//!
//! A worker's grant ([`worker_grant`]) reads the run container (manifest, input frames); reads,
//! writes and lists the output container (done checks, styled frames, markers); takes, renews
//! and deletes messages on the job queue; adds messages to its poison queue. It can create,
//! delete or overwrite nothing else, so the outputs must have a container of their own: a SAS
//! that may write styled frames beside the inputs may overwrite the manifest and input frames
//! too. The scaler's grant ([`scaler_grant`], for KEDA) only reads the job queue.

use crate::{
    config::{Backend, CONTAINER_SAS_PREFIX, QUEUE_SAS_PREFIX},
    sas, Auth, AzureAccount, CloudConfig, Error, Redacted, Result,
};
use azure_core::http::Url;
use time::OffsetDateTime;

/// SAS permission letters and what they let the holder do, in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permissions {
    /// The letters, in the order a SAS lists them.
    pub letters: &'static str,
    /// What they allow, for the operator.
    pub allows: &'static str,
}

/// The run container: `r` (HEAD the manifest, GET input frames).
pub const RUN_CONTAINER: Permissions = Permissions {
    letters: "r",
    allows: "read",
};
/// The output container: `r` (HEAD the done marker), `w` (styled frames, done and failed
/// markers, overwritten on a redelivery), `l` (which styled frames exist).
pub const OUTPUT_CONTAINER: Permissions = Permissions {
    letters: "rwl",
    allows: "read, write, list",
};
/// The job queue: `p` (get and delete messages), `u` (renew and hand back: update visibility).
pub const JOB_QUEUE: Permissions = Permissions {
    letters: "up",
    allows: "take, renew, delete messages",
};
/// The poison queue: `a` (add the messages moved aside).
pub const POISON_QUEUE: Permissions = Permissions {
    letters: "a",
    allows: "add messages",
};
/// The watcher's run container: `r` (manifests, markers, the ledger), `w` (manifests, input
/// pieces or frames, the ledger), `d` (markers of retried jobs, the ledger of a video moved to
/// `failed/`), `l` (which pieces, markers and styled frames exist).
pub const WATCHER_RUNS: Permissions = Permissions {
    letters: "rwdl",
    allows: "read, write, delete, list",
};
/// The watcher's inbox: `r` (videos, sidecars, style pictures), `w` and `d` (moving a file to
/// `failed/`), `l` (what was uploaded).
pub const WATCHER_INBOX: Permissions = Permissions {
    letters: "rwdl",
    allows: "read, write, delete, list",
};
/// The watcher's outbox: `r` (HEAD: is a name taken), `w` (the styled videos). It cannot list,
/// read back through a listing or delete what is there.
pub const WATCHER_OUTBOX: Permissions = Permissions {
    letters: "rw",
    allows: "read, write",
};
/// The job queue, for the watcher: `a` (queue the jobs of its runs).
pub const WATCHER_JOB_QUEUE: Permissions = Permissions {
    letters: "a",
    allows: "add messages",
};
/// The poison queue, for the watcher: `r` (the least a SAS can hold; a run only names it).
pub const WATCHER_POISON_QUEUE: Permissions = Permissions {
    letters: "r",
    allows: "count and peek messages",
};
/// Event Grid's queue, for the watcher: `p` (take and delete the events).
pub const WATCHER_EVENTS_QUEUE: Permissions = Permissions {
    letters: "p",
    allows: "take, delete messages",
};
/// The job queue, for the scaler: `r` (queue properties with the message count, peek).
pub const SCALER_QUEUE: Permissions = Permissions {
    letters: "r",
    allows: "count and peek messages",
};

/// A signed grant and what it allows.
#[derive(Debug)]
pub struct Grant {
    /// The connection string: the only secret, for the holder's `--cloud`.
    pub connection_string: Redacted<String>,
    /// Each container or queue it covers, with its permissions, in the order granted.
    pub scopes: Vec<Scope>,
    /// When every SAS in it stops working.
    pub expiry: OffsetDateTime,
}

/// One container or queue of a [`Grant`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// `container` or `queue`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// What it may do there.
    pub permissions: Permissions,
}

/// A worker's grant for `config`'s run container and queue, with outputs in `output_container`,
/// valid until `expiry`. `config` must hold the account key; `output_container` must differ
/// from the run container.
pub fn worker_grant(
    config: &CloudConfig,
    output_container: &str,
    expiry: OffsetDateTime,
) -> Result<Grant> {
    let (account, key) = signing_key(config)?;
    crate::store::validate_resource_name("container", output_container)?;
    if output_container == config.container {
        return Err(Error::Config(format!(
            "a worker grant needs an output container apart from the run container {}: a SAS that \
             may write styled frames beside the inputs may overwrite the manifest and input frames too",
            config.container
        )));
    }
    let scopes = vec![
        Scope::container(&config.container, RUN_CONTAINER),
        Scope::container(output_container, OUTPUT_CONTAINER),
        Scope::queue(&config.queue, JOB_QUEUE),
        Scope::queue(&config.poison_queue(), POISON_QUEUE),
    ];
    Ok(scoped_grant(config, account, key, scopes, expiry))
}

/// The containers and queues a watcher works with, besides the run container and job queue.
#[derive(Clone, Copy, Debug)]
pub struct WatcherPlaces<'a> {
    pub inbox: &'a str,
    pub outbox: &'a str,
    /// Event Grid's queue, when the watcher reads events.
    pub events: Option<&'a str>,
    /// The runs' separate output container, when they have one.
    pub output_container: Option<&'a str>,
}

/// A watcher's grant (`stylize watch`): it submits runs as a coordinator does, reads and tidies
/// the inbox, writes the outbox and takes Event Grid's messages; valid until `expiry`. The
/// containers and queues must exist: a grant cannot create them.
pub fn watcher_grant(
    config: &CloudConfig,
    places: WatcherPlaces<'_>,
    expiry: OffsetDateTime,
) -> Result<Grant> {
    let (account, key) = signing_key(config)?;
    let mut containers = vec![
        (places.inbox, WATCHER_INBOX),
        (places.outbox, WATCHER_OUTBOX),
    ];
    containers.push((&config.container, WATCHER_RUNS));
    if let Some(output) = places.output_container {
        containers.push((output, WATCHER_RUNS));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (name, _) in &containers {
        crate::store::validate_resource_name("container", name)?;
        if !seen.insert(*name) {
            return Err(Error::Config(format!(
                "container {name} is named twice: a watcher's inbox, outbox and run containers must differ (a grant gives each its own permissions)"
            )));
        }
    }
    let mut scopes: Vec<Scope> = containers
        .into_iter()
        .map(|(name, permissions)| Scope::container(name, permissions))
        .collect();
    scopes.push(Scope::queue(&config.queue, WATCHER_JOB_QUEUE));
    scopes.push(Scope::queue(&config.poison_queue(), WATCHER_POISON_QUEUE));
    if let Some(events) = places.events {
        crate::store::validate_resource_name("queue", events)?;
        scopes.push(Scope::queue(events, WATCHER_EVENTS_QUEUE));
    }
    Ok(scoped_grant(config, account, key, scopes, expiry))
}

/// A connection string naming the account, its endpoints, the run container and queue, with one
/// SAS per scope.
fn scoped_grant(
    config: &CloudConfig,
    account: &AzureAccount,
    key: &[u8],
    scopes: Vec<Scope>,
    expiry: OffsetDateTime,
) -> Grant {
    let mut parts = vec![
        format!("AccountName={}", account.account),
        format!("BlobEndpoint={}", endpoint(&account.blob_endpoint)),
        format!("QueueEndpoint={}", endpoint(&account.queue_endpoint)),
        format!("Container={}", config.container),
        format!("Queue={}", config.queue),
    ];
    for scope in &scopes {
        parts.push(scope.entry(&account.account, key, expiry));
    }
    Grant {
        connection_string: Redacted::new(parts.join(";")),
        scopes,
        expiry,
    }
}

/// The scaler's grant: reads `config`'s job queue (its length) and nothing else, valid until
/// `expiry`, as `QueueEndpoint=URL;SharedAccessSignature=SAS`, the form KEDA's `azure-queue`
/// trigger reads.
pub fn scaler_grant(config: &CloudConfig, expiry: OffsetDateTime) -> Result<Grant> {
    let (account, key) = signing_key(config)?;
    let scope = Scope::queue(&config.queue, SCALER_QUEUE);
    let connection_string = format!(
        "AccountName={};QueueEndpoint={};SharedAccessSignature={}",
        account.account,
        endpoint(&account.queue_endpoint),
        scope.sas(&account.account, key, expiry)
    );
    Ok(Grant {
        connection_string: Redacted::new(connection_string),
        scopes: vec![scope],
        expiry,
    })
}

impl Grant {
    /// What it allows, one clause per container or queue (no secret in it).
    pub fn describe(&self) -> String {
        self.scopes
            .iter()
            .map(|s| format!("{} {} {}", s.kind, s.name, s.permissions.allows))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// When it expires, as the SAS says it (`2030-03-17T17:46:40Z`).
    pub fn expires(&self) -> String {
        sas::format_expiry(self.expiry)
    }
}

/// The expiry of a grant made now that lasts `lifetime`.
pub fn expiry_after(lifetime: std::time::Duration) -> OffsetDateTime {
    OffsetDateTime::now_utc() + lifetime
}

impl Scope {
    fn container(name: &str, permissions: Permissions) -> Scope {
        Scope {
            kind: "container",
            name: name.to_owned(),
            permissions,
        }
    }

    fn queue(name: &str, permissions: Permissions) -> Scope {
        Scope {
            kind: "queue",
            name: name.to_owned(),
            permissions,
        }
    }

    /// The service SAS for this scope, as a query string.
    fn sas(&self, account: &str, key: &[u8], expiry: OffsetDateTime) -> String {
        let pairs = match self.kind {
            "container" => {
                sas::container_sas(account, key, &self.name, expiry, self.permissions.letters)
            }
            _ => sas::queue_sas(account, key, &self.name, expiry, self.permissions.letters),
        };
        query(&pairs)
    }

    /// Its connection-string entry, `ContainerSas.<name>=SAS` or `QueueSas.<name>=SAS`.
    fn entry(&self, account: &str, key: &[u8], expiry: OffsetDateTime) -> String {
        let prefix = match self.kind {
            "container" => CONTAINER_SAS_PREFIX,
            _ => QUEUE_SAS_PREFIX,
        };
        format!("{prefix}{}={}", self.name, self.sas(account, key, expiry))
    }
}

/// The account and its key, when `config` has one for both services.
fn signing_key(config: &CloudConfig) -> Result<(&AzureAccount, &[u8])> {
    let account = match &config.backend {
        Backend::Azure(account) => account,
        Backend::Local { .. } => {
            return Err(Error::Config(
                "a grant is for an Azure storage account; a local folder (dir:) has no credentials to scope".into(),
            ))
        }
    };
    match (&account.blob_auth, &account.queue_auth) {
        (Auth::SharedKey { key, .. }, Auth::SharedKey { .. }) => Ok((account, key.expose())),
        _ => Err(Error::Config(
            "signing a grant needs the account key (a connection string with AccountKey=); \
             a SAS or Entra ID cannot sign one"
                .into(),
        )),
    }
}

/// A service URL without the trailing slash `Url` adds to a bare host.
fn endpoint(url: &Url) -> &str {
    url.as_str().trim_end_matches('/')
}

/// SAS query pairs, form-encoded (the signature holds `+`, `/` and `=`).
fn query(pairs: &[(&'static str, String)]) -> String {
    let mut url = Url::parse("http://sas.invalid/").unwrap_or_else(|_| unreachable!("a valid URL"));
    url.query_pairs_mut()
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
    url.query().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "c2VjcmV0LWtleS1ieXRlcy1mb3ItdGVzdHM=";

    fn key_config() -> CloudConfig {
        CloudConfig::from_spec(&format!(
            "AccountName=acct;AccountKey={KEY};Container=inputs;Queue=jobs"
        ))
        .unwrap()
    }

    fn expiry() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap()
    }

    fn azure(c: &CloudConfig) -> &AzureAccount {
        match &c.backend {
            Backend::Azure(a) => a,
            other => panic!("expected Azure, got {other:?}"),
        }
    }

    /// The SAS a scoped config uses for `name`.
    fn sas_of(auth: Result<Auth>) -> String {
        match auth.unwrap() {
            Auth::Sas(t) => t.expose().clone(),
            other => panic!("expected a SAS, got {other:?}"),
        }
    }

    /// Each scope as (kind, name, permission letters).
    fn scopes_of(grant: &Grant) -> Vec<(&'static str, &str, &'static str)> {
        grant
            .scopes
            .iter()
            .map(|s| (s.kind, s.name.as_str(), s.permissions.letters))
            .collect()
    }

    #[test]
    fn watcher_grant_covers_its_places_and_refuses_shared_containers() {
        let places = WatcherPlaces {
            inbox: "inbox",
            outbox: "outbox",
            events: Some("inbox-events"),
            output_container: None,
        };
        let grant = watcher_grant(&key_config(), places, expiry()).unwrap();
        assert_eq!(
            scopes_of(&grant),
            [
                ("container", "inbox", "rwdl"),
                ("container", "outbox", "rw"),
                ("container", "inputs", "rwdl"),
                ("queue", "jobs", "a"),
                ("queue", "jobs-poison", "r"),
                ("queue", "inbox-events", "p"),
            ]
        );
        let config = CloudConfig::from_spec(grant.connection_string.expose()).unwrap();
        assert!(sas_of(azure(&config).queue_auth_for("inbox-events")).contains("sp=p"));
        assert!(matches!(
            azure(&config).blob_auth_for("elsewhere"),
            Err(Error::NotGranted { .. })
        ));
        let shared = WatcherPlaces {
            outbox: "inputs",
            ..places
        };
        let err = watcher_grant(&key_config(), shared, expiry()).unwrap_err();
        assert!(
            err.to_string().contains("container inputs is named twice"),
            "{err}"
        );
    }

    #[test]
    fn worker_grant_reads_back_as_the_scoped_config_it_describes() {
        let grant = worker_grant(&key_config(), "outputs", expiry()).unwrap();
        let cs = grant.connection_string.expose();
        assert!(!cs.contains(KEY) && !cs.contains("AccountKey"), "{cs}");
        assert!(!format!("{grant:?}").contains("sig="));
        assert_eq!(
            scopes_of(&grant),
            [
                ("container", "inputs", "r"),
                ("container", "outputs", "rwl"),
                ("queue", "jobs", "up"),
                ("queue", "jobs-poison", "a"),
            ]
        );

        let config = CloudConfig::from_spec(cs).unwrap();
        assert_eq!(
            (config.container.as_str(), config.queue.as_str()),
            ("inputs", "jobs")
        );
        let a = azure(&config);
        assert_eq!(a.account, "acct");
        assert_eq!(
            a.blob_endpoint.as_str(),
            "https://acct.blob.core.windows.net/"
        );
        for (auth, permissions, resource) in [
            (a.blob_auth_for("inputs"), "r", Some("c")),
            (a.blob_auth_for("outputs"), "rwl", Some("c")),
            (a.queue_auth_for("jobs"), "up", None),
            (a.queue_auth_for("jobs-poison"), "a", None),
        ] {
            let sas = sas_of(auth);
            let pairs: Vec<(String, String)> = Url::parse(&format!("http://x/?{sas}"))
                .unwrap()
                .query_pairs()
                .into_owned()
                .collect();
            let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            assert_eq!(get("sp"), Some(permissions), "{sas}");
            assert_eq!(get("sr"), resource, "{sas}");
            assert_eq!(get("se"), Some("2030-03-17T17:46:40Z"));
            assert!(get("sig").is_some_and(|s| s.len() == 44), "{sas}");
        }
        let e = a.blob_auth_for("other").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the credentials grant no access to container other (they cover containers inputs, outputs)"
        );
        assert!(matches!(
            a.queue_auth_for("jobs-2"),
            Err(Error::NotGranted { .. })
        ));
        let shown = format!("{config} {config:?}");
        assert!(!shown.contains("sig="), "{shown}");
        assert!(
            shown.contains("grant for containers inputs, outputs and queues jobs, jobs-poison"),
            "{shown}"
        );
    }

    #[test]
    fn scaler_grant_reads_the_queue_only() {
        let grant = scaler_grant(&key_config(), expiry()).unwrap();
        let cs = grant.connection_string.expose();
        assert!(cs.starts_with(
            "AccountName=acct;QueueEndpoint=https://acct.queue.core.windows.net;SharedAccessSignature=sv="
        ), "{cs}");
        assert!(cs.contains("&sp=r&"), "{cs}");
        let config = CloudConfig::from_spec(cs).unwrap();
        assert!(matches!(azure(&config).queue_auth, Auth::Sas(_)));
    }

    #[test]
    fn grants_need_the_account_key_and_separate_outputs() {
        let e = worker_grant(&key_config(), "inputs", expiry()).unwrap_err();
        assert!(
            e.to_string()
                .contains("apart from the run container inputs"),
            "{e}"
        );
        assert!(worker_grant(&key_config(), "Bad_Name", expiry()).is_err());
        for spec in [
            "dir:/tmp/x",
            "BlobEndpoint=https://a.blob.core.windows.net;QueueEndpoint=https://a.queue.core.windows.net;SharedAccessSignature=sv=1&sig=S",
            "AccountName=a;Credential=workload",
            "https://a.blob.core.windows.net",
        ] {
            let config = CloudConfig::from_spec(spec).unwrap();
            let e = worker_grant(&config, "outputs", expiry()).unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{spec}: {e:?}");
            assert!(scaler_grant(&config, expiry()).is_err(), "{spec}");
        }
    }
}
