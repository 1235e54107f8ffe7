//! The watcher's ledger: one small blob per inbox video, `watch/<inbox container>/<video>.json` in the run container, saying whether it is being styled or done and where its result went.
use serde::{Deserialize, Serialize};
use stylize_cloud::{BlobStore, Bytes, Error as CloudError};

/// How far one inbox video got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Its run was submitted; a restart resumes that run (the run id is the video's hash, so the
    /// jobs done stay done).
    Started,
    /// Its styled video is in the outbox.
    Done,
}

/// The ledger entry of one inbox video.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub state: State,
    /// The video's size when it was taken: a new upload under the same name (another size) is
    /// styled again.
    pub size: u64,
    /// The outbox blob it is (or will be) written to, `container/name`.
    pub output: String,
}

/// Where the entry of `inbox_container`/`key` lives.
pub fn key_of(inbox_container: &str, key: &str) -> String {
    format!("watch/{inbox_container}/{key}.json")
}

/// The entry, if any. One that cannot be read counts as none: the worst it costs is a resumed run.
pub async fn read(
    blobs: &dyn BlobStore,
    inbox_container: &str,
    key: &str,
) -> Result<Option<Entry>, CloudError> {
    match blobs.get(&key_of(inbox_container, key)).await {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(CloudError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn write(
    blobs: &dyn BlobStore,
    inbox_container: &str,
    key: &str,
    entry: &Entry,
) -> Result<(), CloudError> {
    let json = serde_json::to_vec(entry).expect("an entry serialises");
    blobs
        .put(&key_of(inbox_container, key), Bytes::from(json))
        .await
}

pub async fn forget(
    blobs: &dyn BlobStore,
    inbox_container: &str,
    key: &str,
) -> Result<(), CloudError> {
    blobs.delete(&key_of(inbox_container, key)).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_and_name_their_video() {
        let entry = Entry {
            state: State::Started,
            size: 12,
            output: "outbox/starry/clip.mp4".into(),
        };
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(
            json,
            r#"{"state":"started","size":12,"output":"outbox/starry/clip.mp4"}"#
        );
        assert_eq!(serde_json::from_str::<Entry>(&json).unwrap(), entry);
        assert_eq!(key_of("inbox", "a/b.mp4"), "watch/inbox/a/b.mp4.json");
    }
}
