//! The crate's error type: what went wrong talking to storage, and whether trying again can help.

use std::{io, path::PathBuf};

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the job protocol and its transports.
///
/// No variant ever carries a secret: messages that come from the Azure SDK or
/// the service pass through [`redact_secrets`](crate::redact_secrets) first.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The storage spec, connection string, URL or a container/queue name is not usable.
    #[error("invalid cloud configuration: {0}")]
    Config(String),

    /// The service refused the credentials themselves: a wrong account key, an
    /// expired or tampered SAS, or an Entra token for the wrong tenant.
    #[error("storage rejected the credentials ({status} {code}) for account {account}")]
    Auth {
        /// HTTP status, 401 or 403.
        status: u16,
        /// The service's error code, e.g. `AuthenticationFailed`.
        code: String,
        /// The storage account the request was for.
        account: String,
    },

    /// The credentials are valid but do not allow this operation (a SAS without
    /// the needed permission, service or resource type; an RBAC role missing).
    #[error("storage denied {operation} ({status} {code}) for account {account}: the credentials lack the permission")]
    PermissionDenied {
        /// What was being attempted, e.g. `put runs/<id>/manifest.json`.
        operation: String,
        /// HTTP status, 403.
        status: u16,
        /// The service's error code, e.g. `AuthorizationPermissionMismatch`.
        code: String,
        /// The storage account the request was for.
        account: String,
    },

    /// The credentials are a grant (`stylize runs grant`) that does not cover this container or
    /// queue: refused before any request, whatever a message names.
    #[error("the credentials grant no access to {kind} {name} (they cover {kind}s {granted})")]
    NotGranted {
        /// `container` or `queue`.
        kind: &'static str,
        /// The container or queue asked for.
        name: String,
        /// Those the grant covers, comma-separated.
        granted: String,
    },

    /// No Entra token could be obtained (no managed identity, not logged in, ...).
    #[error("could not obtain an Entra ID token for storage: {0}")]
    Credential(String),

    /// A blob, container or queue does not exist.
    #[error("{0} not found")]
    NotFound(String),

    /// A write-once blob (such as a run manifest) already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),

    /// The message is no longer ours: its visibility timeout ran out and another
    /// receiver took it (the pop receipt is stale), or it was already deleted.
    #[error("lost the lease on queue message {message_id} (it timed out and was redelivered, or was deleted)")]
    LeaseLost {
        /// The queue's id for the message.
        message_id: String,
    },

    /// A queue message that is not a job of this protocol version (or a
    /// manifest of another version): nothing in it names a run to report to.
    #[error("malformed queue message: {0}")]
    MalformedMessage(String),

    /// A style or styling parameters a worker could not use (no values, a
    /// value that is not finite, a presets style without
    /// [`PRESET_COUNT`](crate::PRESET_COUNT) weights, a strength outside 0..=1):
    /// from [`StyleSpec::validate`](crate::StyleSpec::validate),
    /// [`StyleParamsSpec::validate`](crate::StyleParamsSpec::validate),
    /// [`RunManifest::new`](crate::RunManifest::new) and
    /// [`RunManifest::from_json`](crate::RunManifest::from_json).
    #[error("unusable style or parameters: {0}")]
    InvalidStyle(String),

    /// A queue message that is a job of this protocol, whose style or
    /// parameters this build cannot use: unlike
    /// [`MalformedMessage`](Error::MalformedMessage), it names its run and
    /// job, so the worker writes a failed marker before setting it aside.
    #[error("job cannot be styled by this build: {0}")]
    UnusableJob(Box<crate::protocol::UnusableJob>),

    /// The service answered with an error not covered above.
    #[error("storage service error during {operation}: {status} {code}: {message}")]
    Service {
        /// What was being attempted.
        operation: String,
        /// HTTP status.
        status: u16,
        /// The service's error code, or the status text when it gave none.
        code: String,
        /// Further detail, redacted.
        message: String,
    },

    /// The service could not be reached (refused, reset, DNS, timeout).
    #[error("could not reach storage during {operation}: {detail}")]
    Connection {
        /// What was being attempted.
        operation: String,
        /// What the transport reported, redacted.
        detail: String,
    },

    /// A local file operation failed (the local-directory transport, the Azurite harness).
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `writing`.
        action: &'static str,
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A protocol document (manifest, marker, job) could not be encoded or decoded.
    #[error("{what} is not valid JSON for this protocol: {source}")]
    Json {
        /// Which document, e.g. `runs/<id>/manifest.json`.
        what: String,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },

    /// Anything else the SDK reported, redacted.
    #[error("storage client error during {operation}: {message}")]
    Other {
        /// What was being attempted.
        operation: String,
        /// The SDK's message, redacted.
        message: String,
    },
}

impl Error {
    /// Whether the same call may succeed if tried again later: connection
    /// failures, throttling and server-side errors are; bad credentials,
    /// missing permissions, missing blobs and malformed messages are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connection { .. } => true,
            Error::Service { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Error::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::Interrupted
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::WouldBlock
                    | io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::ConnectionReset
            ),
            Error::Credential(_) => true,
            Error::Config(_)
            | Error::Auth { .. }
            | Error::PermissionDenied { .. }
            | Error::NotGranted { .. }
            | Error::NotFound(_)
            | Error::AlreadyExists(_)
            | Error::LeaseLost { .. }
            | Error::MalformedMessage(_)
            | Error::InvalidStyle(_)
            | Error::UnusableJob(_)
            | Error::Json { .. }
            | Error::Other { .. } => false,
        }
    }

    /// Whether this is the credentials being refused, as opposed to any other failure.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            Error::Auth { .. }
                | Error::PermissionDenied { .. }
                | Error::NotGranted { .. }
                | Error::Credential(_)
        )
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_error_reads_clearly() {
        let e = Error::Auth {
            status: 403,
            code: "AuthenticationFailed".into(),
            account: "devstoreaccount1".into(),
        };
        assert_eq!(
            e.to_string(),
            "storage rejected the credentials (403 AuthenticationFailed) for account devstoreaccount1"
        );
        assert!(!e.is_retryable());
        assert!(e.is_auth());
    }

    #[test]
    fn retryable_classification() {
        let svc = |status| Error::Service {
            operation: "get".into(),
            status,
            code: "x".into(),
            message: String::new(),
        };
        assert!(svc(503).is_retryable());
        assert!(svc(429).is_retryable());
        assert!(!svc(400).is_retryable());
        assert!(Error::Connection {
            operation: "get".into(),
            detail: "refused".into()
        }
        .is_retryable());
        assert!(!Error::NotFound("blob x".into()).is_retryable());
        assert!(!Error::LeaseLost {
            message_id: "m".into()
        }
        .is_retryable());
    }
}
