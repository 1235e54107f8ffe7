//! A real Azurite for tests: started on free loopback ports with a fresh data folder, killed by PID on drop.
//!
//! Enabled by the `testing` feature, so the binary's tests can use it too:
//!
//! ```no_run
//! # async fn demo() -> stylize_cloud::Result<()> {
//! let Some(azurite) = stylize_cloud::testing::Azurite::start_or_skip()? else { return Ok(()) };
//! let cloud = stylize_cloud::Cloud::open(&azurite.config())?;
//! cloud.create_if_missing().await?;
//! # Ok(()) }
//! ```
//!
//! [`Azurite::start_oauth_or_skip`] starts it over HTTPS with `--oauth basic`
//! instead, so requests can carry Entra ID bearer tokens: the certificate is
//! issued at start by a throwaway CA (made with the `openssl` CLI) whose PEM,
//! [`Azurite::ca_cert`], a client must trust (e.g. via `SSL_CERT_FILE`).
//!
//! Azurite comes from `scripts/azurite.sh path` (which installs the pinned
//! version into the cache on first use), or from `$STYLIZE_AZURITE_JS` when
//! set. If it cannot be installed or started, tests fail with the reason;
//! only `STYLIZE_SKIP_AZURITE=1` skips them.

use crate::{CloudConfig, Error, Result};
use std::{
    fs,
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

/// Set to `1` to skip Azurite-backed tests (they print that they were skipped).
pub const SKIP_VAR: &str = "STYLIZE_SKIP_AZURITE";
/// Path of Azurite's `azurite.js`, to use instead of the cached install.
pub const ENTRY_VAR: &str = "STYLIZE_AZURITE_JS";

const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Azurite process, blob and queue services on 127.0.0.1.
#[derive(Debug)]
pub struct Azurite {
    child: Child,
    blob_port: u16,
    queue_port: u16,
    // `https` (with `ca_cert`) when started with OAuth, else `http`.
    scheme: &'static str,
    ca_cert: Option<PathBuf>,
    // Held so the data folder lives as long as the process and is removed after it.
    data: tempfile::TempDir,
}

impl Azurite {
    /// Starts Azurite, or returns `None` when `STYLIZE_SKIP_AZURITE=1`.
    /// Any other failure is an error, so a broken setup cannot pass silently.
    pub fn start_or_skip() -> Result<Option<Azurite>> {
        if skip() {
            return Ok(None);
        }
        Azurite::start().map(Some)
    }

    /// Starts Azurite on free ports with a fresh data folder and waits until
    /// both services accept connections.
    pub fn start() -> Result<Azurite> {
        Self::start_retrying(false)
    }

    /// Like [`Azurite::start_or_skip`], but serving HTTPS with `--oauth basic`,
    /// so it accepts Entra ID bearer tokens (checked for format, lifetime,
    /// issuer and audience, not signature) besides keys and SAS.
    pub fn start_oauth_or_skip() -> Result<Option<Azurite>> {
        if skip() {
            return Ok(None);
        }
        Self::start_retrying(true).map(Some)
    }

    fn start_retrying(oauth: bool) -> Result<Azurite> {
        let entry = entry_script()?;
        let mut last_error = None;
        // Free ports are found by binding and releasing them, so another
        // process can grab one in between; a second attempt gets new ones.
        for _ in 0..3 {
            match Self::start_once(&entry, oauth) {
                Ok(a) => return Ok(a),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| other("Azurite did not start")))
    }

    fn start_once(entry: &Path, oauth: bool) -> Result<Azurite> {
        let data = tempfile::Builder::new()
            .prefix("stylize-azurite-")
            .tempdir()
            .map_err(|e| Error::io("creating", std::env::temp_dir(), e))?;
        let tls = if oauth {
            Some(issue_certificate(data.path())?)
        } else {
            None
        };
        let ports = free_ports(3)?;
        let (blob_port, queue_port, table_port) = (ports[0], ports[1], ports[2]);
        let log_path = data.path().join("azurite.log");
        let log = fs::File::create(&log_path).map_err(|e| Error::io("creating", &log_path, e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| Error::io("opening", &log_path, e))?;
        let location = data.path().join("data");
        fs::create_dir_all(&location).map_err(|e| Error::io("creating", &location, e))?;
        // `node` runs the entry script itself, so the child's PID is Azurite's
        // (an npx or shell wrapper would leave the server running on kill).
        let mut command = Command::new("node");
        command.arg(entry);
        if let Some(tls) = &tls {
            command
                .args(["--oauth", "basic", "--cert"])
                .arg(&tls.cert)
                .arg("--key")
                .arg(&tls.key);
        }
        let mut child = command
            .arg("--location")
            .arg(&location)
            .args(service_addresses(&[
                ("blob", blob_port),
                ("queue", queue_port),
                ("table", table_port),
            ]))
            .args(["--skipApiVersionCheck", "--disableTelemetry", "--silent"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| Error::io("starting node for", entry, e))?;

        wait_until_ready(&mut child, &[blob_port, queue_port], &log_path)?;
        Ok(Azurite {
            child,
            blob_port,
            queue_port,
            scheme: if tls.is_some() { "https" } else { "http" },
            ca_cert: tls.map(|t| t.ca),
            data,
        })
    }

    /// The process id of Azurite itself.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Blob service URL, path-style with the account: `http://127.0.0.1:PORT/devstoreaccount1`
    /// (`https://` when started with OAuth).
    pub fn blob_endpoint(&self) -> String {
        format!(
            "{}://127.0.0.1:{}/{}",
            self.scheme,
            self.blob_port,
            crate::config::DEV_ACCOUNT
        )
    }

    /// Queue service URL.
    pub fn queue_endpoint(&self) -> String {
        format!(
            "{}://127.0.0.1:{}/{}",
            self.scheme,
            self.queue_port,
            crate::config::DEV_ACCOUNT
        )
    }

    /// The PEM of the CA that issued the HTTPS certificate, when started with OAuth.
    pub fn ca_cert(&self) -> Option<&Path> {
        self.ca_cert.as_deref()
    }

    /// A connection string for this instance (the emulator's public development key).
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol={};AccountName={};AccountKey={};BlobEndpoint={};QueueEndpoint={}",
            self.scheme,
            crate::config::DEV_ACCOUNT,
            crate::config::DEV_ACCOUNT_KEY,
            self.blob_endpoint(),
            self.queue_endpoint()
        )
    }

    /// The [`CloudConfig`] for this instance, default container and queue.
    pub fn config(&self) -> CloudConfig {
        CloudConfig::azurite(&self.blob_endpoint(), &self.queue_endpoint())
            .unwrap_or_else(|e| unreachable!("the Azurite connection string is well-formed: {e}"))
    }

    /// The blob store of `container` here, with its test-only upload steps
    /// ([`crate::azure::AzureBlobStore::stage_uncommitted`]).
    pub fn blob_store(&self, container: &str) -> Result<crate::azure::AzureBlobStore> {
        match &self.config().backend {
            crate::config::Backend::Azure(account) => {
                crate::azure::AzureBlobStore::new(account, container)
            }
            crate::config::Backend::Local { .. } => unreachable!("Azurite is an Azure account"),
        }
    }

    /// The data folder (`--location`) and log live under this path.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn skip() -> bool {
    let skip = std::env::var(SKIP_VAR).is_ok_and(|v| v == "1");
    if skip {
        eprintln!("{SKIP_VAR}=1: skipping a test that needs Azurite");
    }
    skip
}

/// Files of a server certificate for 127.0.0.1 and localhost.
struct Tls {
    /// The issuing CA, for clients to trust.
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// OpenSSL settings for the CA and the server certificate. webpki (rustls)
/// refuses a CA certificate as a server's own, so a self-signed one will not do.
const OPENSSL_CONFIG: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = stylize test
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
";

/// Makes a throwaway CA and a server certificate it signs (P-256, valid two
/// days) in `dir` with the `openssl` CLI.
fn issue_certificate(dir: &Path) -> Result<Tls> {
    let config = dir.join("openssl.cnf");
    fs::write(&config, OPENSSL_CONFIG).map_err(|e| Error::io("writing", &config, e))?;
    let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let config = file("openssl.cnf");
    let (ca, ca_key, csr, cert, key) = (
        file("ca.pem"),
        file("ca-key.pem"),
        file("server.csr"),
        file("cert.pem"),
        file("key.pem"),
    );
    let new_key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let steps: [Vec<&str>; 3] = [
        [
            &["req", "-x509", "-config", &config, "-extensions", "ca"][..],
            &new_key,
            &["-keyout", &ca_key, "-out", &ca, "-days", "2"],
            &["-subj", "/CN=stylize test CA"],
        ]
        .concat(),
        [
            &["req", "-new", "-config", &config][..],
            &new_key,
            &["-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"],
        ]
        .concat(),
        vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-set_serial",
            "2",
            "-days",
            "2",
            "-extfile",
            &config,
            "-extensions",
            "server",
            "-out",
            &cert,
        ],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::io("running", "openssl", e))?;
        if !out.status.success() {
            return Err(other(&format!(
                "openssl {} failed ({}): {}",
                args[0],
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    Ok(Tls {
        ca: ca.into(),
        cert: cert.into(),
        key: key.into(),
    })
}

/// The `azurite.js` to run: `$STYLIZE_AZURITE_JS`, or `scripts/azurite.sh path`
/// (installing once per process; concurrent tests wait for the first).
pub fn entry_script() -> Result<PathBuf> {
    static ENTRY: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    let mut cached = ENTRY
        .get_or_init(|| Mutex::new(None))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(p) = cached.as_ref() {
        return Ok(p.clone());
    }
    let path = match std::env::var_os(ENTRY_VAR) {
        Some(p) => PathBuf::from(p),
        None => {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/azurite.sh");
            let out = Command::new("bash")
                .arg(&script)
                .arg("path")
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| Error::io("running", &script, e))?;
            if !out.status.success() {
                return Err(other(&format!(
                    "{} path failed ({}); install Node.js and npm, or set {SKIP_VAR}=1 to skip Azurite tests",
                    script.display(),
                    out.status
                )));
            }
            let text = String::from_utf8_lossy(&out.stdout);
            PathBuf::from(text.lines().last().unwrap_or_default().trim())
        }
    };
    if !path.is_file() {
        return Err(other(&format!(
            "Azurite entry script {} does not exist",
            path.display()
        )));
    }
    *cached = Some(path.clone());
    Ok(path)
}

fn free_ports(n: usize) -> Result<Vec<u16>> {
    // All listeners stay open until every port is chosen, so the n ports differ.
    let listeners = (0..n)
        .map(|_| {
            TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("binding", "127.0.0.1:0", e))
        })
        .collect::<Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(|e| Error::io("binding", "127.0.0.1:0", e))
        })
        .collect()
}

/// `--blobHost 127.0.0.1 --blobPort N` and the same for each service.
fn service_addresses(services: &[(&str, u16)]) -> Vec<String> {
    services
        .iter()
        .flat_map(|(service, port)| {
            [
                format!("--{service}Host"),
                "127.0.0.1".to_string(),
                format!("--{service}Port"),
                port.to_string(),
            ]
        })
        .collect()
}

/// Waits until every port accepts connections; a server that exits or stays deaf is an error
/// carrying its log (and is killed).
fn wait_until_ready(child: &mut Child, ports: &[u16], log_path: &Path) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = fs::read_to_string(log_path).unwrap_or_default();
            return Err(other(&format!(
                "Azurite exited with {status} before it was ready:\n{log}"
            )));
        }
        if ports.iter().all(|&port| accepts(port)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let log = fs::read_to_string(log_path).unwrap_or_default();
            return Err(other(&format!(
                "Azurite not ready after {READY_TIMEOUT:?}:\n{log}"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

fn other(message: &str) -> Error {
    Error::Other {
        operation: "starting Azurite".into(),
        message: message.to_owned(),
    }
}
