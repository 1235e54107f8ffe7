//! A storage front that can throttle: a TCP relay to Azurite that, while switched on, answers every
//! request with `503 Server Busy` as Azure does under load (and drops the connections it was
//! relaying, so pooled ones come back to be throttled too); it can also stall an upload halfway.
#![allow(dead_code)] // each test binary uses its own part
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One relay per storage service (blob, queue), sharing one switch.
pub struct Throttle {
    busy: Arc<AtomicBool>,
    relayed: Arc<Mutex<Vec<TcpStream>>>,
    stall: Arc<Stall>,
    ports: Vec<u16>,
}

/// Uploads to stall: the first `PUT` whose path holds `armed` gets half its body through, then no
/// more; its path is kept in `caught`.
#[derive(Default)]
struct Stall {
    armed: Mutex<Option<String>>,
    caught: Mutex<Option<String>>,
}

impl Throttle {
    /// Relays 127.0.0.1:(new port) → 127.0.0.1:`upstream` for each upstream port.
    pub fn start(upstreams: &[u16]) -> Throttle {
        let busy = Arc::new(AtomicBool::new(false));
        let relayed = Arc::new(Mutex::new(Vec::new()));
        let stall = Arc::new(Stall::default());
        let mut ports = Vec::new();
        for &upstream in upstreams {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            ports.push(listener.local_addr().unwrap().port());
            let (busy, relayed, stall) = (busy.clone(), relayed.clone(), stall.clone());
            std::thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    if busy.load(Ordering::SeqCst) {
                        std::thread::spawn(move || answer_busy(client));
                    } else if let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) {
                        relayed
                            .lock()
                            .unwrap()
                            .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                        relay(client, server, busy.clone(), stall.clone());
                    }
                }
            });
        }
        Throttle {
            busy,
            relayed,
            stall,
            ports,
        }
    }

    /// Stalls the next upload whose path holds `path_part` halfway through its body.
    pub fn stall_upload_to(&self, path_part: &str) {
        *self.stall.armed.lock().unwrap() = Some(path_part.to_owned());
    }

    /// The path of the upload stalled halfway, once one is.
    pub fn stalled_upload(&self) -> Option<String> {
        self.stall.caught.lock().unwrap().clone()
    }

    /// The relay's port for the `i`th upstream.
    pub fn port(&self, i: usize) -> u16 {
        self.ports[i]
    }

    /// Starts or stops answering 503.
    pub fn set_busy(&self, busy: bool) {
        self.busy.store(busy, Ordering::SeqCst);
        if busy {
            for stream in self.relayed.lock().unwrap().drain(..) {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Copies both ways until either side closes, requests one at a time (to see which to stall, and
/// to throttle a connection accepted just as the switch was thrown).
fn relay(client: TcpStream, server: TcpStream, busy: Arc<AtomicBool>, stall: Arc<Stall>) {
    let (mut from_server, mut to_client) =
        (server.try_clone().unwrap(), client.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Write);
    });
    std::thread::spawn(move || {
        let _ = forward_requests(client, &server, &busy, &stall);
        let _ = server.shutdown(Shutdown::Both);
    });
}

/// Forwards the client's requests to the server, one head and body at a time, until the client
/// closes; while busy, a request is answered 503 instead (a connection that slipped past the
/// switch being thrown is throttled too); an armed stall's upload gets half its body through and
/// then nothing, while the client lives.
fn forward_requests(
    client: TcpStream,
    mut server: &TcpStream,
    busy: &AtomicBool,
    stall: &Stall,
) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    loop {
        let head = read_head(&mut client)?;
        if head.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let length = content_length(&text);
        if busy.load(Ordering::SeqCst) {
            std::io::copy(&mut (&mut client).take(length), &mut std::io::sink())?;
            return answer_503(client.get_mut());
        }
        let path = text.split(' ').nth(1).unwrap_or_default().to_owned();
        let mut armed = stall.armed.lock().unwrap();
        let stalled =
            text.starts_with("PUT ") && armed.as_deref().is_some_and(|part| path.contains(part));
        server.write_all(&head)?;
        if stalled {
            *armed = None;
            drop(armed);
            std::io::copy(&mut (&mut client).take(length / 2), &mut server)?;
            *stall.caught.lock().unwrap() = Some(path);
            // Nothing more goes through; the client's end closing ends the connection.
            std::io::copy(&mut client, &mut std::io::sink())?;
            return Ok(());
        }
        drop(armed);
        std::io::copy(&mut (&mut client).take(length), &mut server)?;
    }
}

/// One request head, up to and with its blank line (empty at the end of the stream).
fn read_head(client: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if client.read_until(b'\n', &mut head)? == 0 {
            return Ok(Vec::new());
        }
    }
    Ok(head)
}

fn content_length(head: &str) -> u64 {
    head.to_ascii_lowercase()
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

/// Reads one request (headers, then a body of Content-Length bytes) and answers it as a throttled
/// Azure service does.
fn answer_busy(client: TcpStream) {
    let mut client = BufReader::new(client);
    let Ok(head) = read_head(&mut client) else {
        return;
    };
    let length = content_length(&String::from_utf8_lossy(&head));
    let _ = std::io::copy(&mut (&mut client).take(length), &mut std::io::sink());
    let _ = answer_503(client.get_mut());
}

/// Answers 503 Server Busy and closes the connection.
fn answer_503(client: &mut TcpStream) -> std::io::Result<()> {
    client.write_all(
        b"HTTP/1.1 503 The server is busy.\r\nx-ms-error-code: ServerBusy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )?;
    client.shutdown(Shutdown::Both)
}
