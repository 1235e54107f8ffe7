//! A storage front that can throttle: a TCP relay to Azurite that, while switched on, answers every
//! request with `503 Server Busy` as Azure does under load (and drops the connections it was
//! relaying, so pooled ones come back to be throttled too).
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One relay per storage service (blob, queue), sharing one switch.
pub struct Throttle {
    busy: Arc<AtomicBool>,
    relayed: Arc<Mutex<Vec<TcpStream>>>,
    ports: Vec<u16>,
}

impl Throttle {
    /// Relays 127.0.0.1:(new port) → 127.0.0.1:`upstream` for each upstream port.
    pub fn start(upstreams: &[u16]) -> Throttle {
        let busy = Arc::new(AtomicBool::new(false));
        let relayed = Arc::new(Mutex::new(Vec::new()));
        let mut ports = Vec::new();
        for &upstream in upstreams {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            ports.push(listener.local_addr().unwrap().port());
            let (busy, relayed) = (busy.clone(), relayed.clone());
            std::thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    if busy.load(Ordering::SeqCst) {
                        std::thread::spawn(move || answer_busy(client));
                    } else if let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) {
                        relayed
                            .lock()
                            .unwrap()
                            .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                        relay(client, server);
                    }
                }
            });
        }
        Throttle {
            busy,
            relayed,
            ports,
        }
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

/// Copies both ways until either side closes.
fn relay(client: TcpStream, server: TcpStream) {
    let pairs = [
        (client.try_clone().unwrap(), server.try_clone().unwrap()),
        (server, client),
    ];
    for (mut from, mut to) in pairs {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        });
    }
}

/// Reads one request (headers, then a body of Content-Length bytes) and answers it as a throttled
/// Azure service does.
fn answer_busy(mut client: TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let _ = std::io::copy(&mut (&mut client).take(length), &mut std::io::sink());
    let _ = client.write_all(
        b"HTTP/1.1 503 The server is busy.\r\nx-ms-error-code: ServerBusy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let _ = client.shutdown(Shutdown::Both);
}
