//! The local-directory transport: blobs as files and queues as folders of message files, safe across processes.
//!
//! Layout under the root given in `dir:PATH`:
//!
//! ```text
//! PATH/blobs/<container>/<key>          one file per blob
//! PATH/queues/<queue>/<id>.json         one file per message (body, dequeue count, visibility, receipt)
//! PATH/queues/<queue>/.lock             taken (flock) around every read-modify-write of the queue
//! PATH/tmp/                             staging for atomic writes (same filesystem, then rename)
//! ```
//!
//! Every write lands with a rename, so readers never see a half-written blob
//! or message, and workers in several processes can share one root.

use crate::{
    store::{
        validate_key, validate_resource_name, visibility_secs, BlobEntry, BlobStore, JobQueue,
        ReceivedMessage,
    },
    Error, Result,
};
use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// A container's blobs as files under `ROOT/blobs/<container>/`.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    dir: PathBuf,
    tmp: PathBuf,
}

impl LocalBlobStore {
    /// The store for `container` under `root` (nothing is created until
    /// [`BlobStore::create_if_missing`] or the first write).
    pub fn new(root: &Path, container: &str) -> Result<Self> {
        validate_resource_name("container", container)?;
        Ok(Self {
            dir: root.join("blobs").join(container),
            tmp: root.join("tmp"),
        })
    }

    fn path_of(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.dir.join(key))
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn create_if_missing(&self) -> Result<()> {
        let (dir, tmp) = (self.dir.clone(), self.tmp.clone());
        blocking(move || {
            fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
            fs::create_dir_all(&tmp).map_err(|e| Error::io("creating", &tmp, e))
        })
        .await
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        let path = self.path_of(key)?;
        let tmp = self.tmp.clone();
        blocking(move || {
            let staged = stage(&tmp, &bytes)?;
            make_parent(&path)?;
            fs::rename(&staged, &path).map_err(|e| {
                let _ = fs::remove_file(&staged);
                Error::io("writing", &path, e)
            })
        })
        .await
    }

    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool> {
        let path = self.path_of(key)?;
        let tmp = self.tmp.clone();
        blocking(move || {
            let staged = stage(&tmp, &bytes)?;
            make_parent(&path)?;
            // A hard link fails if the name exists, and publishes the complete file in one step.
            let linked = fs::hard_link(&staged, &path);
            let _ = fs::remove_file(&staged);
            match linked {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(Error::io("writing", &path, e)),
            }
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let path = self.path_of(key)?;
        let key = key.to_owned();
        blocking(move || match fs::read(&path) {
            Ok(b) => Ok(Bytes::from(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::NotFound(format!("blob {key}")))
            }
            Err(e) => Err(Error::io("reading", &path, e)),
        })
        .await
    }

    async fn get_to_file(&self, key: &str, to: &Path) -> Result<u64> {
        let path = self.path_of(key)?;
        let (key, to) = (key.to_owned(), to.to_path_buf());
        blocking(move || match fs::copy(&path, &to) {
            Ok(size) => Ok(size),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !path.exists() => {
                Err(Error::NotFound(format!("blob {key}")))
            }
            Err(e) => Err(Error::io("copying", &to, e)),
        })
        .await
    }

    async fn put_file(&self, key: &str, from: &Path) -> Result<u64> {
        let path = self.path_of(key)?;
        let (tmp, from) = (self.tmp.clone(), from.to_path_buf());
        blocking(move || {
            fs::create_dir_all(&tmp).map_err(|e| Error::io("creating", &tmp, e))?;
            let staged = tmp.join(unique_name());
            let size = fs::copy(&from, &staged).map_err(|e| {
                let _ = fs::remove_file(&staged);
                Error::io("reading", &from, e)
            })?;
            make_parent(&path)?;
            fs::rename(&staged, &path).map_err(|e| {
                let _ = fs::remove_file(&staged);
                Error::io("writing", &path, e)
            })?;
            Ok(size)
        })
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let path = self.path_of(key)?;
        blocking(move || match fs::metadata(&path) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("reading", &path, e)),
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>> {
        let dir = self.dir.clone();
        let prefix = prefix.to_owned();
        blocking(move || {
            // Walk only the folder the prefix names, not the whole container.
            let base = match prefix.rfind('/') {
                Some(i) => &prefix[..i],
                None => "",
            };
            if !base.is_empty() {
                validate_key(base)?;
            }
            let mut out = Vec::new();
            walk(&dir.join(base), base, &prefix, &mut out)?;
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let path = self.path_of(key)?;
        blocking(move || match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("deleting", &path, e)),
        })
        .await
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
    }
}

fn walk(dir: &Path, rel: &str, prefix: &str, out: &mut Vec<BlobEntry>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("listing", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing", dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let key = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        // Names first: a bucket's listing reads a folder of a whole run's frames, and only the
        // entries it wants are worth a metadata call.
        let folder = format!("{key}/");
        let may_hold = folder.starts_with(prefix) || prefix.starts_with(&folder);
        if !key.starts_with(prefix) && !may_hold {
            continue;
        }
        let kind = entry
            .file_type()
            .map_err(|e| Error::io("listing", entry.path(), e))?;
        if kind.is_dir() {
            // Descend only where keys below could still start with the prefix.
            if may_hold {
                walk(&entry.path(), &key, prefix, out)?;
            }
        } else if kind.is_file() && key.starts_with(prefix) {
            let meta = entry
                .metadata()
                .map_err(|e| Error::io("listing", entry.path(), e))?;
            out.push(BlobEntry {
                key,
                size: meta.len(),
            });
        }
    }
    Ok(())
}

/// A queue as a folder of message files under `ROOT/queues/<queue>/`.
#[derive(Debug, Clone)]
pub struct LocalQueue {
    name: String,
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct StoredMessage {
    body: String,
    dequeue_count: u32,
    visible_at_ms: u64,
    pop_receipt: String,
}

impl LocalQueue {
    /// The queue `name` under `root`.
    pub fn new(root: &Path, name: &str) -> Result<Self> {
        validate_resource_name("queue", name)?;
        Ok(Self {
            name: name.to_owned(),
            dir: root.join("queues").join(name),
        })
    }

    async fn locked<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Path) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let dir = self.dir.clone();
        let name = self.name.clone();
        blocking(move || {
            let lock_path = dir.join(".lock");
            let lock = match fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(Error::NotFound(format!("queue {name}")))
                }
                Err(e) => return Err(Error::io("opening", &lock_path, e)),
            };
            lock.lock()
                .map_err(|e| Error::io("locking", &lock_path, e))?;
            // Dropping the file releases the lock, on every path out of `f`.
            f(&dir)
        })
        .await
    }
}

fn message_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io("listing", dir, e))? {
        let entry = entry.map_err(|e| Error::io("listing", dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if let Some(id) = name.strip_suffix(".json") {
            if !name.starts_with('.') {
                out.push((id.to_owned(), entry.path()));
            }
        }
    }
    // Ids start with the send time, so name order is arrival order.
    out.sort();
    Ok(out)
}

fn read_message(path: &Path) -> Result<Option<StoredMessage>> {
    match fs::read(path) {
        // A file put in the folder by hand rather than sent has no envelope: its text is the
        // message, as anything on an Azure queue is, so a worker sets it aside like any foreign
        // message instead of failing on it.
        Ok(b) => Ok(Some(serde_json::from_slice(&b).unwrap_or_else(|_| {
            StoredMessage {
                body: String::from_utf8_lossy(&b).into_owned(),
                dequeue_count: 0,
                visible_at_ms: 0,
                pop_receipt: String::new(),
            }
        }))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("reading", path, e)),
    }
}

fn write_message(dir: &Path, path: &Path, m: &StoredMessage) -> Result<()> {
    let bytes = serde_json::to_vec(m).map_err(|e| Error::json("queue message", e))?;
    let staged = dir.join(format!(".{}.tmp", unique_name()));
    write_file(&staged, &bytes)?;
    fs::rename(&staged, path).map_err(|e| {
        let _ = fs::remove_file(&staged);
        Error::io("writing", path, e)
    })
}

fn current_message(dir: &Path, message: &ReceivedMessage) -> Result<(PathBuf, StoredMessage)> {
    let lost = || Error::LeaseLost {
        message_id: message.id.clone(),
    };
    if message.id.is_empty() || message.id.contains(['/', '\\', '.']) {
        return Err(lost());
    }
    let path = dir.join(format!("{}.json", message.id));
    match read_message(&path)? {
        Some(m) if m.pop_receipt == message.pop_receipt => Ok((path, m)),
        _ => Err(lost()),
    }
}

#[async_trait]
impl JobQueue for LocalQueue {
    fn name(&self) -> &str {
        &self.name
    }

    async fn create_if_missing(&self) -> Result<()> {
        let dir = self.dir.clone();
        blocking(move || fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))).await
    }

    async fn send(&self, body: &str) -> Result<()> {
        let m = StoredMessage {
            body: body.to_owned(),
            dequeue_count: 0,
            visible_at_ms: 0,
            pop_receipt: String::new(),
        };
        self.locked(move |dir| {
            let path = dir.join(format!("{}.json", unique_name()));
            write_message(dir, &path, &m)
        })
        .await
    }

    async fn receive(&self, visibility: Duration) -> Result<Option<ReceivedMessage>> {
        let hide_ms = visibility_secs(visibility, 1) * 1000;
        self.locked(move |dir| {
            let now = now_ms();
            for (id, path) in message_files(dir)? {
                let Some(mut m) = read_message(&path)? else {
                    continue;
                };
                if m.visible_at_ms > now {
                    continue;
                }
                m.dequeue_count += 1;
                m.visible_at_ms = now + hide_ms;
                m.pop_receipt = new_receipt();
                write_message(dir, &path, &m)?;
                return Ok(Some(ReceivedMessage {
                    id,
                    pop_receipt: m.pop_receipt,
                    dequeue_count: m.dequeue_count,
                    body: m.body,
                }));
            }
            Ok(None)
        })
        .await
    }

    async fn set_visibility(
        &self,
        message: &mut ReceivedMessage,
        visibility: Duration,
    ) -> Result<()> {
        let hide_ms = visibility_secs(visibility, 0) * 1000;
        let current = message.clone();
        let receipt = self
            .locked(move |dir| {
                let (path, mut m) = current_message(dir, &current)?;
                m.visible_at_ms = now_ms() + hide_ms;
                m.pop_receipt = new_receipt();
                write_message(dir, &path, &m)?;
                Ok(m.pop_receipt)
            })
            .await?;
        message.pop_receipt = receipt;
        Ok(())
    }

    async fn set_visibility_and_body(
        &self,
        message: &mut ReceivedMessage,
        visibility: Duration,
        body: &str,
    ) -> Result<()> {
        let hide_ms = visibility_secs(visibility, 0) * 1000;
        let (current, new_body) = (message.clone(), body.to_owned());
        let receipt = self
            .locked(move |dir| {
                let (path, mut m) = current_message(dir, &current)?;
                m.visible_at_ms = now_ms() + hide_ms;
                m.pop_receipt = new_receipt();
                m.body = new_body;
                write_message(dir, &path, &m)?;
                Ok(m.pop_receipt)
            })
            .await?;
        message.pop_receipt = receipt;
        message.body = body.to_owned();
        Ok(())
    }

    async fn delete(&self, message: &ReceivedMessage) -> Result<()> {
        let current = message.clone();
        self.locked(move |dir| {
            let (path, _) = current_message(dir, &current)?;
            fs::remove_file(&path).map_err(|e| Error::io("deleting", &path, e))
        })
        .await
    }

    async fn approximate_len(&self) -> Result<u64> {
        self.locked(|dir| Ok(message_files(dir)?.len() as u64))
            .await
    }

    async fn clear(&self) -> Result<()> {
        self.locked(|dir| {
            for (_, path) in message_files(dir)? {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("deleting", &path, e)),
                }
            }
            Ok(())
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Other {
            operation: "local storage".into(),
            message: format!("background task failed: {e}"),
        })?
}

fn stage(tmp: &Path, bytes: &[u8]) -> Result<PathBuf> {
    fs::create_dir_all(tmp).map_err(|e| Error::io("creating", tmp, e))?;
    let staged = tmp.join(unique_name());
    write_file(&staged, bytes)?;
    Ok(staged)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = fs::File::create(path).map_err(|e| Error::io("creating", path, e))?;
    f.write_all(bytes)
        .map_err(|e| Error::io("writing", path, e))
}

fn make_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(p) => fs::create_dir_all(p).map_err(|e| Error::io("creating", p, e)),
        None => Ok(()),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Sortable by creation time, and unique across threads and processes.
fn unique_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:020}-{:010}-{n:08}", std::process::id())
}

fn new_receipt() -> String {
    let digest = Sha256::digest(unique_name().as_bytes());
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}
