//! Downloading the reference clip: resumable (HTTP Range), with a progress bar, cached, and checked.
//!
//! The file grows as `<name>.part` next to its final place and is renamed only
//! when complete, so an interrupted download resumes where it stopped and a
//! half file is never taken for the clip. The server's validator (ETag or
//! Last-Modified) is kept beside the part and sent as `If-Range`, so a file
//! changed on the server restarts instead of being spliced. A sha256 of the
//! finished file is stored beside it; a cached copy that no longer matches is
//! fetched again.
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

/// How long to wait for the server to accept the connection: an offline machine should not hang.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(4);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(20);
/// Bounds a stalled transfer; what arrived is kept and the next run resumes.
const BODY_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Why the file could not be had; `Display` is one line meant for the user.
#[derive(Debug)]
pub enum FetchError {
    /// Nothing came back: no route, no name, refused, timed out, or an HTTP error status.
    Unreachable(String),
    /// The transfer started but stopped; what arrived is kept for the next run.
    Interrupted { bytes: u64, reason: String },
    /// The local side failed (cache folder, disk).
    Local(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Unreachable(reason) => write!(f, "unreachable ({reason})"),
            FetchError::Interrupted { bytes, reason } => {
                write!(
                    f,
                    "download stopped after {} ({reason}; the next run resumes)",
                    megabytes(*bytes)
                )
            }
            FetchError::Local(reason) => write!(f, "cannot be stored ({reason})"),
        }
    }
}

/// Where the file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Cache,
    Network,
}

/// `dest` when it is already complete, else downloads `url` into it.
pub fn fetch(url: &str, dest: &Path, quiet: bool) -> Result<Origin, FetchError> {
    if dest.exists() {
        if cached_copy_is_intact(dest).map_err(local)? {
            return Ok(Origin::Cache);
        }
        // Damaged since it was fetched: fetch it again from the start.
        let _ = std::fs::remove_file(dest);
    }
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(local)?;
    }
    let part = Part::beside(dest);
    let response = part.request(url)?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (start, total) = part.resume_point(response.status().as_u16(), &header)?;
    let mut file = part.open_at(start, header("etag").or_else(|| header("last-modified")))?;
    let bar = download_bar(dest, start, total, quiet);
    let got = copy_body(response.into_body().into_reader(), &mut file, start, &bar)?;
    bar.finish_and_clear();
    drop(file);
    if let Some(total) = total.filter(|&total| total != got) {
        return Err(FetchError::Interrupted {
            bytes: got,
            reason: format!("expected {}", megabytes(total)),
        });
    }
    part.complete(dest)?;
    Ok(Origin::Network)
}

fn local(e: std::io::Error) -> FetchError {
    FetchError::Local(e.to_string())
}

/// The growing `<name>.part` and the server validator it was started under.
struct Part {
    path: PathBuf,
    validator_path: PathBuf,
}

impl Part {
    fn beside(dest: &Path) -> Part {
        Part {
            path: with_suffix(dest, ".part"),
            validator_path: with_suffix(dest, ".part.validator"),
        }
    }

    /// GET `url`, asking only for what the part lacks, and only if the file is still the one it began.
    fn request(&self, url: &str) -> Result<ureq::http::Response<ureq::Body>, FetchError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(RESPONSE_TIMEOUT))
            .timeout_recv_body(Some(BODY_TIMEOUT))
            .http_status_as_error(false)
            .user_agent(concat!("stylize/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let offset = self.len();
        let validator = std::fs::read_to_string(&self.validator_path)
            .ok()
            .filter(|v| !v.trim().is_empty());
        let mut request = agent.get(url);
        if offset > 0 {
            request = request.header("Range", format!("bytes={offset}-"));
            if let Some(v) = &validator {
                request = request.header("If-Range", v.trim());
            }
        }
        request
            .call()
            .map_err(|e| FetchError::Unreachable(describe(&e, url)))
    }

    fn len(&self) -> u64 {
        std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }

    /// Where the response's body starts and the whole file's size, if known; a response that
    /// cannot continue this part drops it so the next run starts clean.
    fn resume_point(
        &self,
        status: u16,
        header: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(u64, Option<u64>), FetchError> {
        let offset = self.len();
        let start_over = |reason: &str| {
            let _ = std::fs::remove_file(&self.path);
            FetchError::Interrupted {
                bytes: 0,
                reason: reason.into(),
            }
        };
        match status {
            206 => match header("content-range")
                .as_deref()
                .and_then(parse_content_range)
            {
                Some((start, total)) if start == offset => Ok((start, total)),
                _ => Err(start_over("the server resumed at the wrong place")),
            },
            200 => Ok((0, header("content-length").and_then(|v| v.parse().ok()))),
            416 => Err(start_over("the partial download no longer matches")),
            code => Err(FetchError::Unreachable(format!("HTTP {code}"))),
        }
    }

    /// The part opened for writing at `start`, with the validator of the response now arriving.
    fn open_at(&self, start: u64, validator: Option<String>) -> Result<File, FetchError> {
        let file = if start == 0 {
            File::create(&self.path).map_err(local)?
        } else {
            OpenOptions::new()
                .append(true)
                .open(&self.path)
                .map_err(local)?
        };
        match validator {
            Some(v) => std::fs::write(&self.validator_path, v).map_err(local)?,
            None => {
                let _ = std::fs::remove_file(&self.validator_path);
            }
        }
        Ok(file)
    }

    /// Renames the finished part to `dest` and records its sha256 beside it.
    fn complete(&self, dest: &Path) -> Result<(), FetchError> {
        let digest = sha256_of(&self.path).map_err(local)?;
        std::fs::rename(&self.path, dest).map_err(local)?;
        std::fs::write(
            with_suffix(dest, ".sha256"),
            format!("{digest}  {}\n", dest.display()),
        )
        .map_err(local)?;
        let _ = std::fs::remove_file(&self.validator_path);
        Ok(())
    }
}

fn download_bar(dest: &Path, start: u64, total: Option<u64>, quiet: bool) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total.unwrap_or(0))
    };
    let template = if total.is_some() {
        "downloading {prefix} [{bar:32.cyan/blue}] {bytes}/{total_bytes}  {bytes_per_sec}  ETA {eta}"
    } else {
        "downloading {prefix} {spinner} {bytes}  {bytes_per_sec}"
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(
        dest.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    bar.set_position(start);
    bar
}

/// Appends the body to `file` until it ends; returns the part's length then. Stops on Ctrl-C.
fn copy_body(
    mut reader: impl Read,
    file: &mut File,
    start: u64,
    bar: &ProgressBar,
) -> Result<u64, FetchError> {
    let mut got = start;
    let mut buffer = vec![0u8; 256 * 1024];
    let stopped = |got: u64, reason: String| {
        bar.abandon();
        FetchError::Interrupted { bytes: got, reason }
    };
    loop {
        if stylize_core::cancel::cancelled() {
            return Err(stopped(got, "interrupted".into()));
        }
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(stopped(got, e.to_string())),
        };
        file.write_all(&buffer[..n]).map_err(local)?;
        got += n as u64;
        bar.set_position(got);
    }
    file.sync_all().map_err(local)?;
    Ok(got)
}

/// True unless a stored sha256 says the file changed since it was downloaded.
fn cached_copy_is_intact(path: &Path) -> std::io::Result<bool> {
    let Ok(record) = std::fs::read_to_string(with_suffix(path, ".sha256")) else {
        return Ok(true);
    };
    let expected = record.split_whitespace().next().unwrap_or_default();
    Ok(sha256_of(path)? == expected)
}

pub fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut file = File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// `bytes 100-199/1000` → (100, Some(1000)); `bytes 100-199/*` → (100, None).
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    let total = if total.trim() == "*" {
        None
    } else {
        Some(total.trim().parse().ok()?)
    };
    Some((start, total))
}

/// The user's words for why nothing came back.
fn describe(e: &ureq::Error, url: &str) -> String {
    let host = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split(['/', ':']).next())
        .unwrap_or(url);
    match e {
        ureq::Error::HostNotFound => format!("cannot resolve {host}"),
        ureq::Error::Timeout(_) => format!(
            "no answer from {host} within {} s",
            CONNECT_TIMEOUT.as_secs()
        ),
        ureq::Error::ConnectionFailed => format!("cannot connect to {host}"),
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => format!("connection to {host} refused"),
            std::io::ErrorKind::TimedOut => format!(
                "no answer from {host} within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
            // The resolver's failure arrives as a plain I/O error; say it the way a user thinks of it.
            _ if io.to_string().contains("lookup address") => format!("cannot resolve {host}"),
            _ => format!("{host}: {io}"),
        },
        ureq::Error::BadUri(_) => format!("{url} is not a valid address"),
        other => other.to_string(),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parses() {
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            Some((100, Some(1000)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
