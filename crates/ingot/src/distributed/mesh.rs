//! The host transport: one TCP connection between every two processes of the world, set up
//! through the store. Collectives of arrays in host memory run over it (NCCL is the GPU's
//! transport). Messages carry a tag (group, sequence number, kind) and a length; a message
//! read while another was wanted is kept until it is asked for, so groups that share a
//! connection do not disturb each other.

use super::store::Store;
use crate::{Error, Result};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// (group key, sequence number, kind): which collective a message belongs to.
pub(crate) type Tag = (u64, u64, u8);

fn err(msg: String) -> Error {
    Error::invalid("distributed", msg)
}

struct Reader {
    stream: TcpStream,
    stash: HashMap<Tag, VecDeque<Vec<u8>>>,
}

struct Peer {
    writer: Mutex<TcpStream>,
    reader: Mutex<Reader>,
}

pub(crate) struct Mesh {
    rank: usize,
    timeout: Duration,
    /// Indexed by world rank; `None` for this process.
    peers: Vec<Option<Peer>>,
}

impl Mesh {
    /// Connects this process to every other one: each publishes its listening address,
    /// connects to the ranks above it and accepts the ranks below it.
    pub(crate) fn connect(
        store: &Store,
        rank: usize,
        size: usize,
        timeout: Duration,
    ) -> Result<Mesh> {
        let listener = TcpListener::bind((store.local_ip(), 0))
            .map_err(|e| err(format!("rank {rank} cannot listen for its peers: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| err(format!("rank {rank}: {e}")))?;
        store.set(&format!("mesh/{rank}"), addr.to_string().as_bytes())?;
        let mut peers: Vec<Option<Peer>> = (0..size).map(|_| None).collect();
        let deadline = Instant::now() + timeout;
        for (j, slot) in peers.iter_mut().enumerate().skip(rank + 1) {
            let a = store.get(&format!("mesh/{j}"), timeout)?;
            let a = String::from_utf8_lossy(&a).to_string();
            let mut s = loop {
                match TcpStream::connect(&a) {
                    Ok(s) => break s,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(e) => {
                        return Err(err(format!(
                            "rank {rank} cannot connect to rank {j} at {a}: {e}"
                        )))
                    }
                }
            };
            s.write_all(&(rank as u64).to_le_bytes())
                .map_err(|e| err(format!("rank {rank} -> rank {j}: {e}")))?;
            *slot = Some(peer(s, timeout)?);
        }
        listener
            .set_nonblocking(true)
            .map_err(|e| err(format!("rank {rank}: {e}")))?;
        let mut waiting = rank;
        while waiting > 0 {
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).ok();
                    s.set_read_timeout(Some(timeout)).ok();
                    let mut hello = [0u8; 8];
                    s.read_exact(&mut hello)
                        .map_err(|e| err(format!("rank {rank}: a peer's greeting: {e}")))?;
                    let j = u64::from_le_bytes(hello) as usize;
                    if j >= rank || peers[j].is_some() {
                        return Err(err(format!(
                            "rank {rank}: a connection announced itself as rank {j}"
                        )));
                    }
                    peers[j] = Some(peer(s, timeout)?);
                    waiting -= 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(err(format!(
                            "rank {rank}: {waiting} lower rank(s) did not connect within {} s",
                            timeout.as_secs()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(err(format!("rank {rank}: accepting peers: {e}"))),
            }
        }
        Ok(Mesh {
            rank,
            timeout,
            peers,
        })
    }

    fn peer(&self, j: usize) -> Result<&Peer> {
        self.peers
            .get(j)
            .and_then(|p| p.as_ref())
            .ok_or_else(|| err(format!("rank {}: no connection to rank {j}", self.rank)))
    }

    pub(crate) fn send(&self, to: usize, tag: Tag, bytes: &[u8]) -> Result<()> {
        let p = self.peer(to)?;
        let mut w = p.writer.lock();
        let mut head = [0u8; 25];
        head[..8].copy_from_slice(&tag.0.to_le_bytes());
        head[8..16].copy_from_slice(&tag.1.to_le_bytes());
        head[16] = tag.2;
        head[17..].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        w.write_all(&head)
            .and_then(|_| w.write_all(bytes))
            .and_then(|_| w.flush())
            .map_err(|e| err(format!("rank {} -> rank {to}: {e}", self.rank)))
    }

    /// The next message tagged `tag` from `from`; it must be `expect` bytes long (every rank
    /// computes the same sizes, so another length means the ranks' arrays differ).
    pub(crate) fn recv(&self, from: usize, tag: Tag, expect: usize, what: &str) -> Result<Vec<u8>> {
        let p = self.peer(from)?;
        let mut r = p.reader.lock();
        let msg = loop {
            if let Some(m) = r.stash.get_mut(&tag).and_then(|q| q.pop_front()) {
                break m;
            }
            let io = |e: std::io::Error| {
                let e = match e.kind() {
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => format!(
                        "nothing came within {} s (INGOT_DIST_TIMEOUT); do all ranks run \
                         the same collectives in the same order?",
                        self.timeout.as_secs()
                    ),
                    std::io::ErrorKind::UnexpectedEof => {
                        "the connection closed (did it fail?)".into()
                    }
                    _ => e.to_string(),
                };
                err(format!(
                    "{what}: rank {} waiting for rank {from}: {e}",
                    self.rank
                ))
            };
            let mut head = [0u8; 25];
            r.stream.read_exact(&mut head).map_err(io)?;
            let t: Tag = (
                u64::from_le_bytes(head[..8].try_into().unwrap()),
                u64::from_le_bytes(head[8..16].try_into().unwrap()),
                head[16],
            );
            let len = u64::from_le_bytes(head[17..].try_into().unwrap()) as usize;
            let mut v = Vec::new();
            v.try_reserve_exact(len)
                .map_err(|_| err(format!("{what}: a message of {len} bytes from rank {from}")))?;
            v.resize(len, 0);
            r.stream.read_exact(&mut v).map_err(io)?;
            if t == tag {
                break v;
            }
            r.stash.entry(t).or_default().push_back(v);
        };
        // Checked after the whole message is read, so the connection stays in step.
        if msg.len() != expect {
            return Err(err(format!(
                "{what}: rank {from} sent {} bytes where rank {} expected {expect}: the \
                 ranks' arrays differ in shape or dtype",
                msg.len(),
                self.rank
            )));
        }
        Ok(msg)
    }

    /// Sends `out[k]` to `members[k]` and receives `expect[k]` bytes from each, for every
    /// member but `me` (whose slot of the result is `out[me]`). Sends run on a thread of
    /// their own while this one receives, so no pair waits on a full socket buffer.
    pub(crate) fn exchange(
        &self,
        members: &[usize],
        me: usize,
        tag: Tag,
        out: &[&[u8]],
        expect: &[usize],
        what: &str,
    ) -> Result<Vec<Vec<u8>>> {
        let n = members.len();
        std::thread::scope(|s| {
            let sender = s.spawn(|| -> Result<()> {
                for k in 1..n {
                    let j = (me + k) % n;
                    self.send(members[j], tag, out[j])?;
                }
                Ok(())
            });
            let mut got: Vec<Vec<u8>> = vec![Vec::new(); n];
            let mut result = Ok(());
            for k in 1..n {
                let j = (me + n - k) % n;
                match self.recv(members[j], tag, expect[j], what) {
                    Ok(v) => got[j] = v,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            let sent = sender
                .join()
                .unwrap_or_else(|_| Err(err(format!("{what}: the sending thread panicked"))));
            result.and(sent)?;
            got[me] = out[me].to_vec();
            Ok(got)
        })
    }
}

fn peer(s: TcpStream, timeout: Duration) -> Result<Peer> {
    s.set_nodelay(true).ok();
    s.set_read_timeout(Some(timeout)).ok();
    let r = s
        .try_clone()
        .map_err(|e| err(format!("cannot share a peer connection: {e}")))?;
    Ok(Peer {
        writer: Mutex::new(s),
        reader: Mutex::new(Reader {
            stream: r,
            stash: HashMap::new(),
        }),
    })
}
