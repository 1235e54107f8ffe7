//! The two transport traits (blob store, job queue) every implementation provides, and the name rules they share.

use crate::{Error, Result};
use async_trait::async_trait;
use bytes::Bytes;
use std::{fmt, path::Path, time::Duration};

/// One blob in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobEntry {
    /// The blob's name within the container, e.g. `runs/<id>/done/00003.json`.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Blob storage holding one container's worth of named byte strings.
///
/// Keys are `/`-separated names such as `runs/<id>/frames/000001.png` (see
/// [`validate_key`]). Writes replace whole blobs atomically: a reader sees
/// the old bytes or the new ones, never a mix.
#[async_trait]
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// Creates the container if it does not exist yet.
    async fn create_if_missing(&self) -> Result<()>;

    /// Writes `bytes` under `key`, replacing any existing blob.
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()>;

    /// Writes `bytes` under `key` only if no blob has that name; returns
    /// whether it wrote. Two racing writers: exactly one gets `true`.
    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool>;

    /// Reads a whole blob; [`Error::NotFound`] if it does not exist.
    async fn get(&self, key: &str) -> Result<Bytes>;

    /// Whether a blob exists.
    async fn exists(&self, key: &str) -> Result<bool>;

    /// Every blob whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>>;

    /// Deletes a blob; returns whether it existed.
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Writes a whole blob into the file at `path` (made or replaced); its size. Transports that
    /// can stream it hold one chunk in memory, not the blob ([`Error::NotFound`] as [`get`]).
    ///
    /// [`get`]: BlobStore::get
    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64> {
        let bytes = self.get(key).await?;
        tokio::fs::write(path, &bytes)
            .await
            .map_err(|e| Error::io("writing", path, e))?;
        Ok(bytes.len() as u64)
    }

    /// Writes the file at `path` as blob `key`, replacing any; its size. Transports that can
    /// upload it block by block hold one block in memory, not the file.
    async fn put_file(&self, key: &str, path: &Path) -> Result<u64> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| Error::io("reading", path, e))?;
        let size = bytes.len() as u64;
        self.put(key, Bytes::from(bytes)).await?;
        Ok(size)
    }

    /// Where the blobs live, for messages (never contains a secret).
    fn location(&self) -> String;
}

/// A message taken from a [`JobQueue`]: invisible to other receivers until
/// its visibility timeout runs out, then delivered again (at least once).
#[derive(Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The queue's id for the message (stable across deliveries).
    pub id: String,
    /// Proof of this delivery, needed to extend or delete it. It changes
    /// with every delivery and every visibility update.
    pub pop_receipt: String,
    /// How many times the message has been delivered, this time included.
    pub dequeue_count: u32,
    /// The message text.
    pub body: String,
}

impl fmt::Debug for ReceivedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The pop receipt is a capability for this delivery: keep it out of logs.
        f.debug_struct("ReceivedMessage")
            .field("id", &self.id)
            .field("dequeue_count", &self.dequeue_count)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A named queue with visibility timeouts (the Azure Storage Queue model).
#[async_trait]
pub trait JobQueue: Send + Sync + fmt::Debug {
    /// The queue's name.
    fn name(&self) -> &str;

    /// Creates the queue if it does not exist yet.
    async fn create_if_missing(&self) -> Result<()>;

    /// Adds a message (at most 48 KiB of text; job specs are far smaller).
    async fn send(&self, body: &str) -> Result<()>;

    /// Takes the next visible message, hiding it for `visibility` (rounded up
    /// to whole seconds, at least 1 s, at most 7 days); `None` when none is visible.
    async fn receive(&self, visibility: Duration) -> Result<Option<ReceivedMessage>>;

    /// Hides the message for `visibility` from now (0 makes it visible again at
    /// once, releasing it). Updates `message.pop_receipt` to the new receipt.
    /// [`Error::LeaseLost`] if the delivery is no longer current.
    async fn set_visibility(
        &self,
        message: &mut ReceivedMessage,
        visibility: Duration,
    ) -> Result<()>;

    /// As [`JobQueue::set_visibility`], and replaces the message's text with `body` (so a
    /// message can carry what its deliveries learnt, e.g. how many failed on storage alone).
    async fn set_visibility_and_body(
        &self,
        message: &mut ReceivedMessage,
        visibility: Duration,
        body: &str,
    ) -> Result<()>;

    /// Deletes the message for good. [`Error::LeaseLost`] if the delivery is no
    /// longer current (it was redelivered to someone else, or deleted).
    async fn delete(&self, message: &ReceivedMessage) -> Result<()>;

    /// Approximate number of messages, visible or not.
    async fn approximate_len(&self) -> Result<u64>;

    /// Deletes every message.
    async fn clear(&self) -> Result<()>;
}

/// The outcome of a `create_if_missing` where the credentials may not create (a grant of
/// `stylize runs grant`, scoped roles): a refusal for want of permission is no error, as whoever
/// scoped the credentials made the container or queue; any other error stays one.
pub fn made_or_not_ours_to_make(created: Result<()>) -> Result<()> {
    match created {
        Err(Error::PermissionDenied { .. }) => Ok(()),
        other => other,
    }
}

/// The longest visibility timeout Azure accepts.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(7 * 24 * 3600);

/// A visibility timeout in whole seconds, rounded up and capped, as both
/// transports apply it (Azure counts whole seconds).
pub(crate) fn visibility_secs(d: Duration, min: u64) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.clamp(min, MAX_VISIBILITY.as_secs())
}

/// Moves a message to the poison queue: sends its body there, then deletes it
/// here. A crash between the two leaves a copy in both, which is harmless for
/// a dead-letter queue (delivery is at least once everywhere).
pub async fn dead_letter(
    queue: &dyn JobQueue,
    poison: &dyn JobQueue,
    message: &ReceivedMessage,
) -> Result<()> {
    poison.send(&message.body).await?;
    queue.delete(message).await
}

/// The name of `queue`'s poison queue: `<queue>-poison`.
pub fn poison_queue_name(queue: &str) -> String {
    format!("{queue}-poison")
}

/// Checks a blob key: 1..=1024 bytes of `/`-separated segments, none empty,
/// `.` or `..`, no backslash or control character, so the same key means the
/// same thing in a local directory and in a container.
pub fn validate_key(key: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::Config(format!("blob name {key:?} {why}")));
    if key.is_empty() || key.len() > 1024 {
        return bad("must be 1 to 1024 bytes long");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return bad("contains a control character or backslash");
    }
    if key
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return bad("has an empty, `.` or `..` path segment");
    }
    Ok(())
}

/// Checks a container or queue name by Azure's rules (3-63 characters,
/// lowercase letters, digits and single hyphens, starting and ending with a
/// letter or digit), so a name that works locally also works in Azure.
pub fn validate_resource_name(kind: &str, name: &str) -> Result<()> {
    let ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{kind} name {name:?} is not valid: use 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(validate_key("runs/abc/frames/000001.png").is_ok());
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/../b",
            "a/./b",
            "trailing/",
            "back\\slash",
            "nl\nx",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn resource_names() {
        assert!(validate_resource_name("queue", "stylize-jobs").is_ok());
        assert!(validate_resource_name("queue", &poison_queue_name("stylize-jobs")).is_ok());
        for bad in [
            "ab",
            "Upper",
            "-lead",
            "trail-",
            "dou--ble",
            "under_score",
            &"x".repeat(64),
        ] {
            assert!(
                validate_resource_name("queue", bad).is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn visibility_rounds_up_to_whole_seconds() {
        assert_eq!(visibility_secs(Duration::from_millis(1), 1), 1);
        assert_eq!(visibility_secs(Duration::from_millis(1500), 1), 2);
        assert_eq!(visibility_secs(Duration::ZERO, 0), 0);
        assert_eq!(visibility_secs(Duration::ZERO, 1), 1);
        assert_eq!(
            visibility_secs(Duration::from_secs(30 * 24 * 3600), 1),
            MAX_VISIBILITY.as_secs()
        );
    }

    #[test]
    fn received_message_debug_hides_the_receipt() {
        let m = ReceivedMessage {
            id: "id1".into(),
            pop_receipt: "secret-receipt".into(),
            dequeue_count: 1,
            body: "{}".into(),
        };
        assert!(!format!("{m:?}").contains("secret-receipt"));
    }
}
