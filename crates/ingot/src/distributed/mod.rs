//! Several processes computing together: a [`Group`] of ranks and collective operations
//! over it (`all_sum`, `all_max`, `all_min`, `all_gather`, `reduce_scatter`, `broadcast`,
//! `send`, `recv`) as lazy primitives with gradients.
//!
//! The world is set up from the environment, as torchrun and MLX do: the rank in `RANK`
//! (or `INGOT_RANK`), the world size in `WORLD_SIZE` (or `INGOT_WORLD_SIZE`), and where the
//! processes meet in `INGOT_STORE` (`host:port` of a TCP store that rank 0 serves, or
//! `file:DIR` for a directory they share) or `MASTER_ADDR` and `MASTER_PORT`. `ingot
//! launch -n N -- COMMAND` sets all of it. Without those variables the world is this
//! process alone: every collective of a group of one is its input, so single-process
//! programs need no special case.
//!
//! Arrays in host memory travel over TCP connections between every two processes
//! ([`mesh`]); a collective over GPU arrays runs the same way through host memory (counted
//! as a CPU fallback), until the NCCL transport lands (docs/distributed.md).
//! Every rank must build and evaluate the same collectives in the same order; a node's
//! tag is given when it is built, so a mismatch fails (timeout or a size error naming the
//! ranks) instead of combining the wrong arrays.

mod mesh;
pub(crate) mod nccl;
mod store;

pub use nccl::version as nccl_version;

use crate::array::{Array, Data};
use crate::backend::cpu::strided::{row_major_bytes, row_major_data};
use crate::buffer::Buffer;
use crate::dtype::{DType, Kind};
use crate::op::{CollectiveKind, Op};
use crate::shape::{fmt_shape, size_of};
use crate::{Error, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Messages of a group: (group key, ...) in every tag.
fn group_key(ranks: &[usize]) -> u64 {
    // FNV-1a over the member list: the same on every process.
    let mut h: u64 = 0xcbf29ce484222325;
    for &r in ranks {
        for b in (r as u64).to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

struct World {
    rank: usize,
    size: usize,
    mesh: Option<mesh::Mesh>,
}

struct GroupInner {
    /// World ranks of the members, in group order.
    ranks: Vec<usize>,
    /// This process's place in `ranks`.
    me: usize,
    key: u64,
    /// Tags handed to the group's collectives as they are built (every rank builds the
    /// same collectives in the same order).
    next_tag: Mutex<u64>,
    /// Point-to-point tags: the k-th send to a peer matches the peer's k-th receive from
    /// this rank. Keyed by (peer, is_send); only the two ranks involved build them.
    p2p: Mutex<HashMap<(usize, bool), u64>>,
}

impl GroupInner {
    /// Every member's `bytes` (all of one length), in group order, now.
    fn exchange_all(&self, tag: mesh::Tag, bytes: &[u8], what: &str) -> Result<Vec<Vec<u8>>> {
        let n = self.ranks.len();
        mesh()?.exchange(
            &self.ranks,
            self.me,
            tag,
            &vec![bytes; n],
            &vec![bytes.len(); n],
            what,
        )
    }
}

/// A set of processes that run collectives together: the world, or a part of it made by
/// [`Group::split`].
#[derive(Clone)]
pub struct Group(Arc<GroupInner>);

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Group(rank {} of {}, world ranks {:?})",
            self.rank(),
            self.size(),
            self.0.ranks
        )
    }
}

static WORLD: OnceLock<World> = OnceLock::new();
/// Every group this process belongs to, by its members' world ranks: collectives name
/// their group that way, so graphs (and compiled functions) carry no handle.
static GROUPS: Mutex<Option<HashMap<Vec<usize>, Arc<GroupInner>>>> = Mutex::new(None);

fn err(msg: String) -> Error {
    Error::invalid("distributed", msg)
}

fn env_usize(names: &[&str]) -> Result<Option<usize>> {
    for n in names {
        if let Ok(v) = std::env::var(n) {
            return v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| err(format!("{n}={v:?} is not a non-negative integer")));
        }
    }
    Ok(None)
}

fn register(ranks: Vec<usize>, me: usize) -> Group {
    let mut g = GROUPS.lock();
    let map = g.get_or_insert_with(HashMap::new);
    let inner = map
        .entry(ranks.clone())
        .or_insert_with(|| {
            Arc::new(GroupInner {
                key: group_key(&ranks),
                ranks,
                me,
                next_tag: Mutex::new(0),
                p2p: Mutex::new(HashMap::new()),
            })
        })
        .clone();
    Group(inner)
}

fn world_state() -> Result<&'static World> {
    if let Some(w) = WORLD.get() {
        return Ok(w);
    }
    // One thread sets the world up; another arriving meanwhile waits and takes its result.
    static SETUP: Mutex<()> = Mutex::new(());
    let _one = SETUP.lock();
    if let Some(w) = WORLD.get() {
        return Ok(w);
    }
    let size = env_usize(&["INGOT_WORLD_SIZE", "WORLD_SIZE"])?.unwrap_or(1);
    let rank = env_usize(&["INGOT_RANK", "RANK"])?.unwrap_or(0);
    if size == 0 || rank >= size {
        return Err(err(format!("rank {rank} is not in a world of size {size}")));
    }
    let timeout = Duration::from_secs(env_usize(&["INGOT_DIST_TIMEOUT"])?.unwrap_or(300) as u64);
    let mesh = if size > 1 {
        let spec = match std::env::var("INGOT_STORE") {
            Ok(s) => s,
            Err(_) => match (std::env::var("MASTER_ADDR"), std::env::var("MASTER_PORT")) {
                (Ok(a), Ok(p)) => format!("{a}:{p}"),
                _ => {
                    return Err(err(format!(
                        "a world of {size} processes needs INGOT_STORE (host:port or \
                         file:DIR) or MASTER_ADDR and MASTER_PORT (`ingot launch` sets them)"
                    )))
                }
            },
        };
        let store = store::Store::connect(&spec, rank, timeout)?;
        Some(mesh::Mesh::connect(&store, rank, size, timeout)?)
    } else {
        None
    };
    let w = World { rank, size, mesh };
    let _ = WORLD.set(w);
    Ok(WORLD.get().expect("set above"))
}

/// Joins the world described by the environment (see the module docs) and returns it;
/// later calls return the same group. Without the variables, a world of this process alone.
pub fn init() -> Result<Group> {
    let w = world_state()?;
    Ok(register((0..w.size).collect(), w.rank))
}

/// The world group, set up by [`init`] (called here if it was not).
pub fn world() -> Result<Group> {
    init()
}

impl Group {
    /// This process's rank in the group.
    pub fn rank(&self) -> usize {
        self.0.me
    }
    /// How many processes the group has.
    pub fn size(&self) -> usize {
        self.0.ranks.len()
    }
    /// The members' ranks in the world, in group order.
    pub fn world_ranks(&self) -> &[usize] {
        &self.0.ranks
    }

    /// Splits the group: every member calls this, and those with the same `color` form a
    /// new group, ordered by `key` (then by rank). Runs at once (not lazily).
    pub fn split(&self, color: u64, key: u64) -> Result<Group> {
        let n = self.size();
        if n == 1 {
            return Ok(self.clone());
        }
        let mine: Vec<u8> = [color.to_le_bytes(), key.to_le_bytes()].concat();
        // Kind 2: apart from the collectives' (0) and point-to-point messages' (1) tags.
        let tag = (self.0.key, self.take_tag(), 2);
        let all = self.0.exchange_all(tag, &mine, "split")?;
        let mut members: Vec<(u64, usize, usize)> = all
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let c = u64::from_le_bytes(b[..8].try_into().unwrap());
                let k = u64::from_le_bytes(b[8..].try_into().unwrap());
                (c == color).then_some((k, i, self.0.ranks[i]))
            })
            .collect();
        members.sort();
        let ranks: Vec<usize> = members.iter().map(|m| m.2).collect();
        let me = members
            .iter()
            .position(|m| m.1 == self.rank())
            .expect("this rank has its own color");
        Ok(register(ranks, me))
    }

    fn take_tag(&self) -> u64 {
        let mut t = self.0.next_tag.lock();
        *t += 1;
        *t
    }
}

fn mesh() -> Result<&'static mesh::Mesh> {
    world_state()?
        .mesh
        .as_ref()
        .ok_or_else(|| err("this process has no peers".into()))
}

fn group_or_world(group: Option<&Group>) -> Result<Group> {
    match group {
        Some(g) => Ok(g.clone()),
        None => world(),
    }
}

/// A collective node of `group` on `x` with the output shape `shape`.
fn node(
    kind: CollectiveKind,
    g: &Group,
    inputs: Vec<Array>,
    shape: Vec<usize>,
    dtype: DType,
) -> Array {
    let tag = match kind {
        CollectiveKind::Send { peer } | CollectiveKind::Recv { peer } => {
            let send = matches!(kind, CollectiveKind::Send { .. });
            let mut m = g.0.p2p.lock();
            let t = m.entry((peer, send)).or_insert(0);
            *t += 1;
            *t
        }
        _ => g.take_tag(),
    };
    Array::from_op(
        Op::Collective {
            kind,
            ranks: g.0.ranks.clone(),
            tag,
        },
        inputs,
        shape,
        dtype,
    )
}

fn check_reducible(op: &str, x: &Array, max_min: bool) -> Result<()> {
    match x.dtype().kind() {
        Kind::Bool => Err(Error::invalid(
            op,
            "bool arrays have no sum, max or min across processes; cast them first",
        )),
        Kind::Complex if max_min => Err(Error::invalid(op, format!("{} has no order", x.dtype()))),
        _ => Ok(()),
    }
}

/// The elementwise sum of `x` over the group's processes, on every one of them (the same
/// bits everywhere: each process adds the arrays in rank order).
pub fn all_sum(x: &Array, group: Option<&Group>) -> Result<Array> {
    reduce("all_sum", CollectiveKind::Sum, x, group)
}

/// The elementwise maximum over the group's processes (NaN wins, as in `maximum`).
pub fn all_max(x: &Array, group: Option<&Group>) -> Result<Array> {
    reduce("all_max", CollectiveKind::Max, x, group)
}

/// The elementwise minimum over the group's processes (NaN wins, as in `minimum`).
pub fn all_min(x: &Array, group: Option<&Group>) -> Result<Array> {
    reduce("all_min", CollectiveKind::Min, x, group)
}

fn reduce(op: &str, kind: CollectiveKind, x: &Array, group: Option<&Group>) -> Result<Array> {
    check_reducible(op, x, kind != CollectiveKind::Sum)?;
    let g = group_or_world(group)?;
    if g.size() == 1 {
        return Ok(x.clone());
    }
    Ok(node(
        kind,
        &g,
        vec![x.clone()],
        x.shape().to_vec(),
        x.dtype(),
    ))
}

fn axis_of(op: &str, x: &Array, axis: isize) -> Result<usize> {
    crate::shape::normalize_axis(op, axis, x.ndim())
}

/// The group and the normalized axis of a collective along `axis` (`None`: a group of
/// one, whose result is `x`).
fn along_axis(
    op: &str,
    x: &Array,
    axis: isize,
    group: Option<&Group>,
) -> Result<Option<(Group, usize)>> {
    if x.ndim() == 0 {
        return Err(Error::invalid(
            op,
            "a 0-d array has no axis to gather or cut along",
        ));
    }
    let axis = axis_of(op, x, axis)?;
    let g = group_or_world(group)?;
    Ok((g.size() > 1).then_some((g, axis)))
}

/// Every process's `x` joined along `axis`, in rank order, on every process.
pub fn all_gather(x: &Array, axis: isize, group: Option<&Group>) -> Result<Array> {
    let Some((g, axis)) = along_axis("all_gather", x, axis, group)? else {
        return Ok(x.clone());
    };
    let mut shape = x.shape().to_vec();
    shape[axis] *= g.size();
    Ok(node(
        CollectiveKind::Gather { axis },
        &g,
        vec![x.clone()],
        shape,
        x.dtype(),
    ))
}

/// The sum over the processes of `x`, cut along `axis` into one equal part per process:
/// process r gets part r.
pub fn reduce_scatter(x: &Array, axis: isize, group: Option<&Group>) -> Result<Array> {
    let op = "reduce_scatter";
    check_reducible(op, x, false)?;
    let Some((g, axis)) = along_axis(op, x, axis, group)? else {
        return Ok(x.clone());
    };
    let n = g.size();
    if x.shape()[axis] % n != 0 {
        return Err(Error::invalid(
            op,
            format!(
                "axis {axis} of shape {} does not split into {n} equal parts",
                fmt_shape(x.shape())
            ),
        ));
    }
    let mut shape = x.shape().to_vec();
    shape[axis] /= n;
    Ok(node(
        CollectiveKind::ScatterSum { axis },
        &g,
        vec![x.clone()],
        shape,
        x.dtype(),
    ))
}

/// Process `root`'s `x` on every process (each passes an array of the same shape and dtype).
pub fn broadcast(x: &Array, root: usize, group: Option<&Group>) -> Result<Array> {
    let g = group_or_world(group)?;
    if root >= g.size() {
        return Err(Error::invalid(
            "broadcast",
            format!("root {root} is not a rank of a group of {}", g.size()),
        ));
    }
    if g.size() == 1 {
        return Ok(x.clone());
    }
    Ok(node(
        CollectiveKind::Broadcast { root },
        &g,
        vec![x.clone()],
        x.shape().to_vec(),
        x.dtype(),
    ))
}

/// Sends `x` to rank `dst` of the group when the returned array (equal to `x`) is
/// evaluated; `dst` receives it with [`recv`].
pub fn send(x: &Array, dst: usize, group: Option<&Group>) -> Result<Array> {
    let g = group_or_world(group)?;
    if dst >= g.size() || dst == g.rank() {
        return Err(Error::invalid(
            "send",
            format!(
                "cannot send from rank {} to rank {dst} of a group of {}",
                g.rank(),
                g.size()
            ),
        ));
    }
    Ok(node(
        CollectiveKind::Send { peer: dst },
        &g,
        vec![x.clone()],
        x.shape().to_vec(),
        x.dtype(),
    ))
}

/// The array of `shape` and `dtype` that rank `src` of the group sends with [`send`].
pub fn recv(shape: &[usize], dtype: DType, src: usize, group: Option<&Group>) -> Result<Array> {
    let g = group_or_world(group)?;
    if src >= g.size() || src == g.rank() {
        return Err(Error::invalid(
            "recv",
            format!(
                "cannot receive at rank {} from rank {src} of a group of {}",
                g.rank(),
                g.size()
            ),
        ));
    }
    crate::shape::checked_size("recv", shape)?;
    Ok(node(
        CollectiveKind::Recv { peer: src },
        &g,
        vec![],
        shape.to_vec(),
        dtype,
    ))
}

// ---- NCCL --------------------------------------------------------------------------------

/// `INGOT_NCCL`: `0` sends GPU collectives through host memory, `1` requires NCCL (an
/// error where it cannot be loaded); unset, NCCL where it loads, else host memory.
fn nccl_policy() -> Option<bool> {
    static P: OnceLock<Option<bool>> = OnceLock::new();
    *P.get_or_init(|| match std::env::var("INGOT_NCCL").ok()?.trim() {
        "0" | "off" | "false" => Some(false),
        "" => None,
        _ => Some(true),
    })
}

/// Communicators by group members and GPU; `None` when the group's rank 0 chose the host
/// transport.
#[allow(clippy::type_complexity)]
static NCCL_COMMS: Mutex<Option<HashMap<(Vec<usize>, usize), Option<Arc<nccl::Comm>>>>> =
    Mutex::new(None);

/// Rank 0 of the group decides whether its GPU collectives use NCCL and hands the
/// communicator's id to the others (one flag byte, then the id), so all take the same path.
fn nccl_id(g: &GroupInner, tag: u64) -> Result<Option<nccl::UniqueId>> {
    // Kind 3: apart from collectives (0), point-to-point messages (1) and splits (2).
    let t = (g.key, tag, 3u8);
    let what = "the NCCL id of a group";
    if g.me == 0 {
        let id = match nccl_policy() {
            Some(false) => Ok(None),
            Some(true) => nccl::unique_id().map(Some),
            None => Ok(nccl::unique_id()
                .map_err(|e| {
                    static WARNED: OnceLock<()> = OnceLock::new();
                    WARNED.get_or_init(|| {
                        eprintln!(
                            "ingot: GPU collectives go through host memory ({e}; INGOT_NCCL=0 \
                             silences this)"
                        )
                    });
                })
                .ok()),
        };
        // 0: host memory, 1: NCCL with this id, 2: rank 0 failed (the others fail too
        // instead of waiting).
        let mut msg = vec![match &id {
            Ok(None) => 0u8,
            Ok(Some(_)) => 1,
            Err(_) => 2,
        }];
        let bytes = id.as_ref().ok().and_then(|i| i.map(|i| i.internal));
        msg.extend_from_slice(&bytes.unwrap_or([0; 128]));
        for &r in &g.ranks[1..] {
            mesh()?.send(r, t, &msg)?;
        }
        return id;
    }
    let msg = mesh()?.recv(g.ranks[0], t, 129, what)?;
    match msg[0] {
        0 => Ok(None),
        1 if nccl_policy() == Some(false) => Err(err(format!(
            "rank 0 of group {:?} uses NCCL but INGOT_NCCL=0 here: every rank must set it alike",
            g.ranks
        ))),
        1 => {
            let mut internal = [0u8; 128];
            internal.copy_from_slice(&msg[1..]);
            Ok(Some(nccl::UniqueId { internal }))
        }
        _ => Err(err(format!(
            "rank 0 of group {:?} could not set up NCCL (its error says why)",
            g.ranks
        ))),
    }
}

/// The handshake a group's first GPU collective makes, run on its own: every member gets
/// the same NCCL id, or all get none (tests check it across processes without GPUs).
#[doc(hidden)]
pub fn nccl_handshake(group: &Group) -> Result<Option<[u8; 128]>> {
    let tag = group.take_tag();
    Ok(nccl_id(&group.0, tag)?.map(|i| i.internal))
}

/// The NCCL communicator of group `ranks` on GPU `ordinal`, set up by the group's first GPU
/// collective (node `tag`): rank 0 decides whether NCCL is used and hands its id to the
/// others, so every member takes the same path. `None`: the host transport.
pub(crate) fn nccl_comm(
    ranks: &[usize],
    tag: u64,
    ordinal: usize,
) -> Result<Option<Arc<nccl::Comm>>> {
    let key = (ranks.to_vec(), ordinal);
    if let Some(c) = NCCL_COMMS.lock().as_ref().and_then(|m| m.get(&key)) {
        return Ok(c.clone());
    }
    let g = group_of(ranks, "nccl")?;
    let id = nccl_id(&g, tag)?;
    let comm = match id {
        // Blocks until every member has joined (NCCL's own timeout applies).
        Some(id) => Some(Arc::new(nccl::Comm::init(&id, g.me, g.ranks.len())?)),
        None => None,
    };
    NCCL_COMMS
        .lock()
        .get_or_insert_with(HashMap::new)
        .insert(key, comm.clone());
    Ok(comm)
}

/// A collective node even in a group of one (which the public functions skip): tests of
/// the GPU transport on a machine with one GPU use it.
#[doc(hidden)]
pub fn collective_of_one(x: &Array, what: &str) -> Result<Array> {
    let g = world()?;
    if g.size() != 1 {
        return Err(err("collective_of_one is for a world of one process".into()));
    }
    let (kind, shape) = match what {
        "all_sum" => (CollectiveKind::Sum, x.shape().to_vec()),
        "all_max" => (CollectiveKind::Max, x.shape().to_vec()),
        "all_min" => (CollectiveKind::Min, x.shape().to_vec()),
        "broadcast" => (CollectiveKind::Broadcast { root: 0 }, x.shape().to_vec()),
        w => {
            let (name, axis) = w
                .split_once(':')
                .ok_or_else(|| err(format!("unknown collective {w:?}")))?;
            let axis: usize = axis
                .parse()
                .map_err(|_| err(format!("bad axis in {w:?}")))?;
            match name {
                "all_gather" => (CollectiveKind::Gather { axis }, x.shape().to_vec()),
                "reduce_scatter" => (CollectiveKind::ScatterSum { axis }, x.shape().to_vec()),
                _ => return Err(err(format!("unknown collective {w:?}"))),
            }
        }
    };
    Ok(node(kind, &g, vec![x.clone()], shape, x.dtype()))
}

// ---- evaluation --------------------------------------------------------------------------

/// The group named by a node, which this process must belong to.
fn group_of(ranks: &[usize], op: &str) -> Result<Arc<GroupInner>> {
    world_state()?;
    GROUPS
        .lock()
        .as_ref()
        .and_then(|m| m.get(ranks).cloned())
        .ok_or_else(|| {
            Error::invalid(
                op,
                format!("this process is not in a distributed group of world ranks {ranks:?}"),
            )
        })
}

fn data_from(bytes: &[u8], shape: &[usize]) -> Result<Data> {
    let mut b = Buffer::uninit(bytes.len())?;
    b.as_bytes_mut().copy_from_slice(bytes);
    Ok(crate::backend::cpu::strided::out_data(b, shape))
}

/// `acc[i] = f(acc[i], x[i])` over elements of `dtype` (little-endian bytes).
fn fold(acc: &mut [u8], x: &[u8], dtype: DType, kind: CollectiveKind) -> Result<()> {
    macro_rules! each {
        ($t:ty, $read:expr, $write:expr, $f:expr) => {{
            let sz = std::mem::size_of::<$t>();
            for (a, b) in acc.chunks_exact_mut(sz).zip(x.chunks_exact(sz)) {
                let (u, v): ($t, $t) = ($read(&*a), $read(b));
                let r: $t = $f(u, v);
                a.copy_from_slice(&$write(r));
            }
        }};
    }
    macro_rules! num {
        ($t:ty, $sum:expr, $max:expr, $min:expr) => {{
            let read = |b: &[u8]| <$t>::from_le_bytes(b.try_into().unwrap());
            let write = |v: $t| v.to_le_bytes();
            match kind {
                CollectiveKind::Sum => each!($t, read, write, $sum),
                CollectiveKind::Max => each!($t, read, write, $max),
                _ => each!($t, read, write, $min),
            }
        }};
    }
    macro_rules! int {
        ($t:ty) => {
            num!(
                $t,
                |a: $t, b: $t| a.wrapping_add(b),
                |a: $t, b: $t| a.max(b),
                |a: $t, b: $t| a.min(b)
            )
        };
    }
    macro_rules! float {
        ($t:ty) => {
            num!(
                $t,
                |a: $t, b: $t| a + b,
                |a: $t, b: $t| if a.is_nan() || b.is_nan() {
                    <$t>::NAN
                } else if a >= b {
                    a
                } else {
                    b
                },
                |a: $t, b: $t| if a.is_nan() || b.is_nan() {
                    <$t>::NAN
                } else if a <= b {
                    a
                } else {
                    b
                }
            )
        };
    }
    match dtype {
        DType::U8 => int!(u8),
        DType::I8 => int!(i8),
        DType::U16 => int!(u16),
        DType::I16 => int!(i16),
        DType::U32 => int!(u32),
        DType::I32 => int!(i32),
        DType::U64 => int!(u64),
        DType::I64 => int!(i64),
        DType::F32 => float!(f32),
        DType::F64 => float!(f64),
        // Half types add in f32 and round once, as the CPU's `add` does.
        DType::F16 => float!(half::f16),
        DType::BF16 => float!(half::bf16),
        DType::C64 => {
            let read = |b: &[u8]| {
                (
                    f32::from_le_bytes(b[..4].try_into().unwrap()),
                    f32::from_le_bytes(b[4..].try_into().unwrap()),
                )
            };
            let write = |v: (f32, f32)| {
                let mut o = [0u8; 8];
                o[..4].copy_from_slice(&v.0.to_le_bytes());
                o[4..].copy_from_slice(&v.1.to_le_bytes());
                o
            };
            each!((f32, f32), read, write, |a: (f32, f32), b: (f32, f32)| (
                a.0 + b.0,
                a.1 + b.1
            ))
        }
        d => {
            return Err(Error::invalid(
                "distributed",
                format!("no reduction across processes for {d}"),
            ))
        }
    }
    Ok(())
}

/// The element-wise fold of equal-length buffers, in their order (rank order: the same
/// bits on every rank).
fn fold_all(bufs: &[Vec<u8>], dtype: DType, kind: CollectiveKind) -> Result<Vec<u8>> {
    let mut acc = bufs[0].clone();
    for b in &bufs[1..] {
        fold(&mut acc, b, dtype, kind)?;
    }
    Ok(acc)
}

/// `chunks[k]` holds part k of a row-major array cut along `axis` into `n` equal parts.
fn split_axis(bytes: &[u8], shape: &[usize], axis: usize, n: usize, esize: usize) -> Vec<Vec<u8>> {
    let outer: usize = shape[..axis].iter().product();
    let row = size_of(&shape[axis..]) * esize;
    let part = row / n;
    (0..n)
        .map(|k| {
            let mut v = Vec::with_capacity(outer * part);
            for o in 0..outer {
                v.extend_from_slice(&bytes[o * row + k * part..o * row + (k + 1) * part]);
            }
            v
        })
        .collect()
}

/// The inverse of split_axis: parts of `part_shape` joined along `axis`.
fn join_axis(parts: &[Vec<u8>], part_shape: &[usize], axis: usize, esize: usize) -> Vec<u8> {
    let outer: usize = part_shape[..axis].iter().product();
    let part = size_of(&part_shape[axis..]) * esize;
    let mut v = Vec::with_capacity(outer * part * parts.len());
    for o in 0..outer {
        for p in parts {
            v.extend_from_slice(&p[o * part..(o + 1) * part]);
        }
    }
    v
}

/// Runs a collective node over the host transport.
pub(crate) fn eval(op: &Op, inputs: &[Array], outs: &[(Vec<usize>, DType)]) -> Result<Vec<Data>> {
    let Op::Collective { kind, ranks, tag } = op else {
        return Err(Error::invalid(op.name(), "internal: not a collective"));
    };
    let name = op.name();
    let g = group_of(ranks, name)?;
    let (oshape, dtype) = (&outs[0].0, outs[0].1);
    let esize = dtype.size();
    let t = (g.key, *tag, 0u8);
    let n = g.ranks.len();
    let mesh = mesh()?;
    let what = format!("{name} of a {dtype} array of shape {}", fmt_shape(oshape));
    let data = match *kind {
        CollectiveKind::Sum | CollectiveKind::Max | CollectiveKind::Min => {
            let d = row_major_data(&inputs[0])?;
            let all = g.exchange_all(t, row_major_bytes(&d, &inputs[0]), &what)?;
            data_from(&fold_all(&all, dtype, *kind)?, oshape)?
        }
        CollectiveKind::Gather { axis } => {
            let x = &inputs[0];
            let d = row_major_data(x)?;
            let all = g.exchange_all(t, row_major_bytes(&d, x), &what)?;
            data_from(&join_axis(&all, x.shape(), axis, esize), oshape)?
        }
        CollectiveKind::ScatterSum { axis } => {
            let x = &inputs[0];
            let d = row_major_data(x)?;
            let parts = split_axis(row_major_bytes(&d, x), x.shape(), axis, n, esize);
            let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
            let len = parts[0].len();
            let got = mesh.exchange(&g.ranks, g.me, t, &refs, &vec![len; n], &what)?;
            data_from(&fold_all(&got, dtype, CollectiveKind::Sum)?, oshape)?
        }
        CollectiveKind::Broadcast { root } => {
            let x = &inputs[0];
            if g.me == root {
                let d = row_major_data(x)?;
                let mine = row_major_bytes(&d, x);
                for (k, &r) in g.ranks.iter().enumerate() {
                    if k != root {
                        mesh.send(r, t, mine)?;
                    }
                }
                d
            } else {
                let b = mesh.recv(g.ranks[root], t, size_of(oshape) * esize, &what)?;
                data_from(&b, oshape)?
            }
        }
        CollectiveKind::Send { peer } => {
            let x = &inputs[0];
            let d = row_major_data(x)?;
            // Point-to-point messages are tagged by direction, so a pair's sends and
            // receives in each direction match in the order they were built.
            mesh.send(g.ranks[peer], (g.key, *tag, 1), row_major_bytes(&d, x))?;
            d
        }
        CollectiveKind::Recv { peer } => {
            let b = mesh.recv(
                g.ranks[peer],
                (g.key, *tag, 1),
                size_of(oshape) * esize,
                &what,
            )?;
            data_from(&b, oshape)?
        }
    };
    Ok(vec![data])
}

// ---- gradients ---------------------------------------------------------------------------

/// The reverse-mode rule of a collective: sums and gathers turn into each other, a
/// broadcast's cotangents are summed back to its root, max and min send the summed
/// cotangent to the processes that held the extreme (split between ties).
pub(crate) fn vjp(op: &Op, x: Option<&Array>, y: &Array, ct: &Array) -> Result<Vec<Option<Array>>> {
    let Op::Collective { kind, ranks, .. } = op else {
        return Err(Error::invalid(op.name(), "internal: not a collective"));
    };
    let g = Group(group_of(ranks, op.name())?);
    let sum = |c: &Array| all_sum(c, Some(&g));
    Ok(match *kind {
        CollectiveKind::Sum => vec![Some(sum(ct)?)],
        CollectiveKind::Max | CollectiveKind::Min => {
            let x = x.ok_or_else(|| Error::invalid(op.name(), "internal: no input"))?;
            let held = crate::astype(&crate::equal(x, y)?, ct.dtype())?;
            let ties = sum(&held)?;
            vec![Some(crate::divide(
                &crate::multiply(sum(ct)?, &held)?,
                &ties,
            )?)]
        }
        CollectiveKind::Gather { axis } => vec![Some(reduce_scatter(ct, axis as isize, Some(&g))?)],
        CollectiveKind::ScatterSum { axis } => vec![Some(all_gather(ct, axis as isize, Some(&g))?)],
        CollectiveKind::Broadcast { root } => {
            // Every rank takes part in the sum; only the root keeps it (a select, not a
            // product with 0, so an inf elsewhere does not make NaN).
            let total = sum(ct)?;
            let keep = crate::full(&[], g.rank() == root, DType::Bool)?;
            vec![Some(crate::where_(
                &keep,
                &total,
                &crate::zeros_like(&total)?,
            )?)]
        }
        CollectiveKind::Send { .. } | CollectiveKind::Recv { .. } => {
            return Err(Error::invalid(
                "vjp",
                format!(
                "no gradient rule for `{}`: point-to-point messages have none; use the collectives",
                op.name()
            ),
            ))
        }
    })
}
