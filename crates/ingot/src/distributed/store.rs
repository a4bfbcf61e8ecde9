//! The rendezvous store: a key-value table that the processes of a world use to find each
//! other (each rank's listening address, later NCCL's unique id). Either a TCP server run
//! by rank 0 (`host:port`, as torchrun's MASTER_ADDR and MASTER_PORT) or a directory shared
//! by the processes (`file:PATH`). A `get` waits for its key until the timeout.

use crate::{Error, Result};
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest key or value the TCP store accepts (a value is an address or an id).
const MAX_ITEM: usize = 1 << 20;

fn err(msg: String) -> Error {
    Error::invalid("distributed", msg)
}

pub(crate) enum Store {
    Tcp(Mutex<TcpStream>),
    Dir(PathBuf),
}

/// The server's table (rank 0's server thread owns it for the life of the process).
#[derive(Default)]
struct Table {
    items: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    changed: Condvar,
}

impl Store {
    /// Connects to the store at `spec` (`host:port` or `file:PATH`); rank 0 of a TCP store
    /// starts the server first.
    pub(crate) fn connect(spec: &str, rank: usize, timeout: Duration) -> Result<Store> {
        if let Some(path) = spec.strip_prefix("file:") {
            let dir = PathBuf::from(path);
            std::fs::create_dir_all(&dir)
                .map_err(|e| err(format!("cannot create the store directory {path}: {e}")))?;
            return Ok(Store::Dir(dir));
        }
        if rank == 0 {
            let listener = TcpListener::bind(spec)
                .map_err(|e| err(format!("rank 0 cannot serve the store at {spec}: {e}")))?;
            let table = Arc::new(Table::default());
            std::thread::Builder::new()
                .name("ingot-store".into())
                .spawn(move || serve(listener, table))
                .map_err(|e| err(format!("cannot start the store thread: {e}")))?;
        }
        let deadline = Instant::now() + timeout;
        let conn = loop {
            let addrs: Vec<_> = spec
                .to_socket_addrs()
                .map_err(|e| err(format!("bad store address {spec}: {e}")))?
                .collect();
            match addrs.iter().find_map(|a| TcpStream::connect(a).ok()) {
                Some(c) => break c,
                // Rank 0 may not be listening yet.
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                None => {
                    return Err(err(format!(
                        "rank {rank} could not reach the store at {spec} within {} s",
                        timeout.as_secs()
                    )))
                }
            }
        };
        conn.set_nodelay(true).ok();
        conn.set_read_timeout(Some(timeout)).ok();
        Ok(Store::Tcp(Mutex::new(conn)))
    }

    /// The local address this process reaches the store from: the interface its peers on
    /// other machines can reach it on too (loopback for a file store).
    pub(crate) fn local_ip(&self) -> std::net::IpAddr {
        match self {
            Store::Tcp(conn) => conn
                .lock()
                .local_addr()
                .map(|a| a.ip())
                .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
            Store::Dir(_) => std::net::Ipv4Addr::LOCALHOST.into(),
        }
    }

    pub(crate) fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        match self {
            Store::Tcp(conn) => {
                let mut c = conn.lock();
                let io = |e: std::io::Error| err(format!("store set {key}: {e}"));
                write_item(&mut *c, &[1u8]).map_err(io)?;
                write_item(&mut *c, key.as_bytes()).map_err(io)?;
                write_item(&mut *c, value).map_err(io)?;
                let ack = read_item(&mut *c).map_err(io)?;
                if ack != b"ok" {
                    return Err(err(format!("store set {key}: the server refused")));
                }
                Ok(())
            }
            Store::Dir(dir) => {
                // Written under a temporary name and renamed, so a reader never sees half.
                let name = file_name(key);
                let tmp = dir.join(format!(".{name}.{}", std::process::id()));
                std::fs::write(&tmp, value)
                    .and_then(|_| std::fs::rename(&tmp, dir.join(&name)))
                    .map_err(|e| err(format!("store set {key} in {}: {e}", dir.display())))
            }
        }
    }

    /// The value of `key`, waiting for it to be set (at most `timeout`).
    pub(crate) fn get(&self, key: &str, timeout: Duration) -> Result<Vec<u8>> {
        let late = || {
            err(format!(
                "store: no process set '{key}' within {} s (did every rank start?)",
                timeout.as_secs()
            ))
        };
        match self {
            Store::Tcp(conn) => {
                let mut c = conn.lock();
                let io = |e: std::io::Error| {
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) {
                        late()
                    } else {
                        err(format!("store get {key}: {e}"))
                    }
                };
                write_item(&mut *c, &[2u8]).map_err(io)?;
                write_item(&mut *c, key.as_bytes()).map_err(io)?;
                read_item(&mut *c).map_err(io)
            }
            Store::Dir(dir) => {
                let path = dir.join(file_name(key));
                let deadline = Instant::now() + timeout;
                loop {
                    if let Ok(v) = std::fs::read(&path) {
                        return Ok(v);
                    }
                    if Instant::now() >= deadline {
                        return Err(late());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// A key as a file name: letters, digits, '-' and '_' kept, everything else hex-escaped.
fn file_name(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02x}"),
        })
        .collect()
}

fn write_item(w: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(&(bytes.len() as u32).to_le_bytes())?;
    w.write_all(bytes)
}

fn read_item(r: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_ITEM {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a store item of {len} bytes (at most {MAX_ITEM})"),
        ));
    }
    let mut v = vec![0u8; len];
    r.read_exact(&mut v)?;
    Ok(v)
}

/// The server: a thread per client; `get` blocks until the key is set.
fn serve(listener: TcpListener, table: Arc<Table>) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let table = table.clone();
        let _ = std::thread::Builder::new()
            .name("ingot-store-client".into())
            .spawn(move || {
                conn.set_nodelay(true).ok();
                // A client that sends garbage or goes away ends its own thread only.
                while let Ok(op) = read_item(&mut conn) {
                    let Ok(key) = read_item(&mut conn) else {
                        return;
                    };
                    let reply = match op.as_slice() {
                        [1] => {
                            let Ok(value) = read_item(&mut conn) else {
                                return;
                            };
                            table.items.lock().insert(key, value);
                            table.changed.notify_all();
                            b"ok".to_vec()
                        }
                        [2] => {
                            let mut items = table.items.lock();
                            loop {
                                if let Some(v) = items.get(&key) {
                                    break v.clone();
                                }
                                table.changed.wait(&mut items);
                            }
                        }
                        _ => return,
                    };
                    if write_item(&mut conn, &reply).is_err() {
                        return;
                    }
                }
            });
    }
}
