//! The lazy array handle: a cheap clone of an `Arc` to a node that is either a pending
//! operation on input arrays or a materialized buffer with a layout.

use crate::buffer::Buffer;
use crate::device::{default_device, Device};
use crate::dtype::{DType, Element, Kind, Scalar, TypeInfo};
use crate::op::Op;
use crate::shape::{checked_size, contiguous_strides, fmt_shape, is_row_contiguous, size_of};
use crate::{Error, Result};
use parking_lot::Mutex;
use std::sync::{Arc, Weak};

/// A materialized array: a shared buffer viewed through strides and an offset (in elements).
#[derive(Clone, Debug)]
pub struct Data {
    pub buffer: Arc<Buffer>,
    pub strides: Vec<isize>,
    pub offset: usize,
}

#[derive(Clone)]
pub(crate) struct Pending {
    pub op: Op,
    pub inputs: Vec<Array>,
    pub device: Device,
    /// For ops with several outputs: every output node (this one included), in order.
    pub siblings: Option<Arc<[Weak<Node>]>>,
    /// The backward rule of an `Op::Custom` node.
    pub rule: Option<crate::transforms::VjpRule>,
}

pub(crate) enum State {
    Pending(Pending),
    /// Taken out by the scheduler while its kernel runs.
    Running,
    Ready(Data),
}

pub struct Node {
    pub(crate) shape: Vec<usize>,
    pub(crate) dtype: DType,
    /// A Python-style weak scalar (made from a Rust number): promotion defers to the other side.
    pub(crate) weak: bool,
    pub(crate) state: Mutex<State>,
    /// The recipe of a node evaluated while a transform was tracing: autodiff still needs
    /// the graph behind values that the traced function evaluated (printing a loss, `item`).
    /// Boxed: it is rarely set, and inline it would double the size of every node.
    pub(crate) kept: Mutex<Option<Box<Pending>>>,
}

thread_local! {
    static RETAIN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// While alive, evaluation on this thread keeps each node's recipe and donates no buffers,
/// so a transform can walk back through values computed inside the traced function.
pub(crate) struct RetainGraph(());
impl RetainGraph {
    pub(crate) fn new() -> RetainGraph {
        RETAIN.with(|r| r.set(r.get() + 1));
        RetainGraph(())
    }
}
impl Drop for RetainGraph {
    fn drop(&mut self) {
        RETAIN.with(|r| r.set(r.get() - 1));
    }
}
pub(crate) fn retaining_graph() -> bool {
    RETAIN.with(|r| r.get() > 0)
}

thread_local! {
    static DONATING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with input donation allowed (`on`) or not on this thread, then restores the
/// previous setting. Only node evaluation allows it: there an input held by nothing but
/// the node is never read again, while a direct caller of a backend (a benchmark timing one
/// op, a helper that copies an operand and reads it later) may read its inputs again.
pub(crate) fn with_donation<R>(on: bool, f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            DONATING.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(DONATING.with(|d| d.replace(on)));
    f()
}

impl Drop for Node {
    // Dropping a long chain of pending nodes recursively would overflow the stack: unlink
    // inputs iteratively instead.
    fn drop(&mut self) {
        let mut stack: Vec<Array> = match std::mem::replace(self.state.get_mut(), State::Running) {
            State::Pending(p) => p.inputs,
            _ => Vec::new(),
        };
        if let Some(k) = self.kept.get_mut().take() {
            stack.extend(k.inputs);
        }
        while let Some(a) = stack.pop() {
            if let Ok(mut node) = Arc::try_unwrap(a.0) {
                if let State::Pending(p) = std::mem::replace(node.state.get_mut(), State::Running) {
                    stack.extend(p.inputs);
                }
                if let Some(k) = node.kept.get_mut().take() {
                    stack.extend(k.inputs);
                }
            }
        }
    }
}

/// A lazy n-dimensional array. Cloning is cheap and shares the node.
#[derive(Clone)]
pub struct Array(pub(crate) Arc<Node>);

impl Array {
    // ---- construction ------------------------------------------------------------------

    /// A node for `op` on `inputs`, with its output shape and dtype already inferred.
    pub fn from_op(op: Op, inputs: Vec<Array>, shape: Vec<usize>, dtype: DType) -> Array {
        Array(Arc::new(Node {
            shape,
            dtype,
            weak: false,
            kept: Mutex::new(None),
            state: Mutex::new(State::Pending(Pending {
                op,
                inputs,
                device: default_device(),
                siblings: None,
                rule: None,
            })),
        }))
    }

    /// Nodes for an op with several outputs; evaluating any one computes all of them.
    pub fn from_op_multi(op: Op, inputs: Vec<Array>, outs: Vec<(Vec<usize>, DType)>) -> Vec<Array> {
        Self::from_op_with_rule(op, inputs, outs, None)
    }

    /// [`Array::from_op_multi`] for a node that carries its own backward rule.
    pub(crate) fn from_op_with_rule(
        op: Op,
        inputs: Vec<Array>,
        outs: Vec<(Vec<usize>, DType)>,
        rule: Option<crate::transforms::VjpRule>,
    ) -> Vec<Array> {
        let device = default_device();
        let n = outs.len();
        let nodes: Vec<Arc<Node>> = outs
            .into_iter()
            .map(|(shape, dtype)| {
                Arc::new(Node {
                    shape,
                    dtype,
                    weak: false,
                    kept: Mutex::new(None),
                    state: Mutex::new(State::Running),
                })
            })
            .collect();
        let siblings: Arc<[Weak<Node>]> = nodes.iter().map(Arc::downgrade).collect();
        for node in &nodes {
            *node.state.lock() = State::Pending(Pending {
                op: op.clone(),
                inputs: inputs.clone(),
                device,
                siblings: Some(siblings.clone()),
                rule: rule.clone(),
            });
        }
        debug_assert_eq!(nodes.len(), n);
        nodes.into_iter().map(Array).collect()
    }

    /// A materialized array over `data`.
    pub fn from_data(data: Data, shape: Vec<usize>, dtype: DType) -> Array {
        Self::ready(data, shape, dtype, false)
    }

    fn ready(data: Data, shape: Vec<usize>, dtype: DType, weak: bool) -> Array {
        Array(Arc::new(Node {
            shape,
            dtype,
            weak,
            kept: Mutex::new(None),
            state: Mutex::new(State::Ready(data)),
        }))
    }

    /// A row-major array over a whole buffer.
    pub fn from_buffer(buffer: Buffer, shape: Vec<usize>, dtype: DType) -> Result<Array> {
        let n = checked_size("from_buffer", &shape)?;
        if n * dtype.size() != buffer.len() {
            return Err(Error::invalid(
                "from_buffer",
                format!(
                    "{} bytes cannot hold shape {} of {dtype}",
                    buffer.len(),
                    fmt_shape(&shape)
                ),
            ));
        }
        let strides = contiguous_strides(&shape);
        Ok(Array::from_data(
            Data {
                buffer: Arc::new(buffer),
                strides,
                offset: 0,
            },
            shape,
            dtype,
        ))
    }

    /// An array holding a copy of `data` with `shape`.
    pub fn from_slice<T: Element>(data: &[T], shape: &[usize]) -> Result<Array> {
        let n = checked_size("from_slice", shape)?;
        if n != data.len() {
            return Err(Error::invalid(
                "from_slice",
                format!(
                    "{} elements cannot have shape {}",
                    data.len(),
                    fmt_shape(shape)
                ),
            ));
        }
        Array::from_buffer(Buffer::from_slice(data)?, shape.to_vec(), T::DTYPE)
    }

    /// An array that takes `data` with `shape`.
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Result<Array> {
        Array::from_slice(&data, shape)
    }

    /// A 0-d array of `value` (strongly typed: it promotes like an array).
    pub fn scalar<T: Element>(value: T) -> Array {
        Array::from_slice(&[value], &[]).expect("a scalar always fits")
    }

    /// A 0-d array of `value` in `dtype`.
    pub fn scalar_as(value: impl Into<Scalar>, dtype: DType) -> Array {
        let s: Scalar = value.into();
        crate::dispatch_dtype!(dtype, T => Array::scalar::<T>(s.to_elem::<T>()))
    }

    /// A Python-style weak scalar: in a binary op it takes the other operand's dtype when that
    /// dtype's kind can hold it (an f32 array plus 2.0 stays f32).
    pub fn weak_scalar(value: impl Into<Scalar>) -> Array {
        let s: Scalar = value.into();
        // Held at full width (f64, i64, u64) so that promotion rounds the value only once,
        // into the other operand's dtype: `multiply(x_f64, 0.1)` must use 0.1, not 0.1f32.
        let dtype = match s {
            Scalar::Bool(_) => DType::Bool,
            Scalar::Int(_) => DType::I64,
            Scalar::UInt(_) => DType::U64,
            Scalar::Float(_) => DType::F64,
            Scalar::Complex(..) => DType::C64,
        };
        let buffer = crate::dispatch_dtype!(dtype, T => Buffer::from_slice(&[s.to_elem::<T>()]))
            .expect("a scalar always fits");
        let data = Data {
            buffer: Arc::new(buffer),
            strides: Vec::new(),
            offset: 0,
        };
        Self::ready(data, Vec::new(), dtype, true)
    }

    // ---- properties ---------------------------------------------------------------------

    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }
    pub fn ndim(&self) -> usize {
        self.0.shape.len()
    }
    pub fn size(&self) -> usize {
        size_of(&self.0.shape)
    }
    pub fn nbytes(&self) -> usize {
        self.size() * self.dtype().size()
    }
    /// Is this a weak scalar (see [`Array::weak_scalar`])?
    pub fn is_weak(&self) -> bool {
        self.0.weak
    }
    pub fn type_info(&self) -> TypeInfo {
        TypeInfo {
            dtype: self.dtype(),
            weak: self.0.weak,
        }
    }
    /// Size of `axis` (negative counts from the end).
    pub fn dim(&self, axis: isize) -> Result<usize> {
        let a = crate::shape::normalize_axis("dim", axis, self.ndim())?;
        Ok(self.0.shape[a])
    }
    /// Has this array been computed?
    pub fn is_evaluated(&self) -> bool {
        matches!(*self.0.state.lock(), State::Ready(_))
    }
    /// Do two handles share one node?
    pub fn same_node(&self, other: &Array) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }
    /// The operation that will produce this array, if it is still pending.
    pub fn op(&self) -> Option<Op> {
        match &*self.0.state.lock() {
            State::Pending(p) => Some(p.op.clone()),
            _ => None,
        }
    }
    /// How this array is computed, if it is (or was, under a transform) an operation's
    /// output: the op, its inputs, and its sibling outputs for ops with several.
    pub(crate) fn recipe(&self) -> Option<Pending> {
        if let State::Pending(p) = &*self.0.state.lock() {
            return Some(p.clone());
        }
        self.0.kept.lock().as_deref().cloned()
    }

    /// The inputs of the pending operation (empty once evaluated).
    pub fn inputs(&self) -> Vec<Array> {
        match &*self.0.state.lock() {
            State::Pending(p) => p.inputs.clone(),
            _ => Vec::new(),
        }
    }

    // ---- evaluation and host access -------------------------------------------------------

    /// Computes this array (and what it needs), then drops the graph behind it.
    pub fn eval(&self) -> Result<()> {
        crate::graph::eval(std::slice::from_ref(self))
    }

    /// The materialized data; evaluates first.
    pub fn data(&self) -> Result<Data> {
        self.eval()?;
        match &*self.0.state.lock() {
            State::Ready(d) => Ok(d.clone()),
            _ => Err(Error::invalid("data", "array was not evaluated")),
        }
    }

    /// The data with its bytes on the host, for the readers that copy elements out. The
    /// copy from a GPU can fail (a bad index a CUDA graph met): an error, not a panic.
    fn host_data(&self) -> Result<Data> {
        let d = self.data()?;
        d.buffer.ensure_host()?;
        Ok(d)
    }

    /// The materialized data of an array that has been evaluated (kernels use this).
    pub(crate) fn ready_data(&self) -> Data {
        match &*self.0.state.lock() {
            State::Ready(d) => d.clone(),
            _ => panic!("internal: kernel input was not evaluated"),
        }
    }

    /// Takes the data of a kernel input that nobody else holds (not the user, not another
    /// node) and whose buffer is shared with nothing, so the kernel may write into it:
    /// donation. The input node is left empty; call it only once the kernel cannot fail.
    pub(crate) fn try_donate(&self) -> Option<Data> {
        self.try_donate_if(|_| true)
    }

    /// [`Array::try_donate`], only when `want` accepts the data's layout; otherwise the
    /// input is left as it was.
    pub(crate) fn try_donate_if(&self, want: impl FnOnce(&Data) -> bool) -> Option<Data> {
        if Arc::strong_count(&self.0) != 1 || retaining_graph() || !DONATING.with(|d| d.get()) {
            return None;
        }
        let mut st = self.0.state.lock();
        match &*st {
            // A CUDA graph's output is never written in place: the graph tracks it by its
            // buffer, which an in-place update may re-wrap (backend/cuda/graph.rs).
            State::Ready(d)
                if Arc::strong_count(&d.buffer) == 1
                    && !d.buffer.is_mapped()
                    && !d.buffer.in_graph_pool()
                    && want(d) => {}
            _ => return None,
        }
        match std::mem::replace(&mut *st, State::Running) {
            State::Ready(d) => Some(d),
            _ => None,
        }
    }

    /// [`Array::try_donate_if`] for a kernel that already holds `held`, a clone of this
    /// input's data (its own clone would otherwise rule donation out): `Ok` with the data
    /// to write into, or `Err` with the clone back when the input cannot be donated.
    pub(crate) fn try_donate_held(
        &self,
        held: Data,
        want: impl FnOnce(&Data) -> bool,
    ) -> std::result::Result<Data, Data> {
        drop(held);
        // A node nobody else holds cannot change between the drop and the check.
        self.try_donate_if(want).ok_or_else(|| self.ready_data())
    }

    /// Puts back data taken by [`Array::try_donate_if`] whose kernel then did not run (a
    /// failed allocation or launch), so the input reads as before.
    pub(crate) fn undonate(&self, d: Data) {
        let mut st = self.0.state.lock();
        debug_assert!(matches!(*st, State::Running));
        *st = State::Ready(d);
    }

    /// The elements in row-major order. `T` must match the dtype; see [`Array::astype`].
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype() {
            return Err(Error::invalid(
                "to_vec",
                format!("array has dtype {}, asked for {}", self.dtype(), T::DTYPE),
            ));
        }
        let d = self.host_data()?;
        Ok(gather_elems::<T>(&d, self.shape()))
    }

    /// The elements converted to f64 (complex gives its real part).
    pub fn to_f64_vec(&self) -> Result<Vec<f64>> {
        crate::dispatch_dtype!(self.dtype(), T => Ok(self.to_vec::<T>()?.into_iter().map(|v| v.to_f64()).collect()))
    }

    /// The one element of a size-1 array.
    pub fn item<T: Element>(&self) -> Result<T> {
        if self.size() != 1 {
            return Err(Error::invalid(
                "item",
                format!(
                    "only size-1 arrays have an item, this one has shape {}",
                    fmt_shape(self.shape())
                ),
            ));
        }
        Ok(self.to_vec::<T>()?[0])
    }

    /// Row-major bytes of the elements (a copy).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let d = self.host_data()?;
        let shape = self.shape().to_vec();
        Ok(crate::dispatch_dtype!(self.dtype(), T => {
            let v = gather_elems::<T>(&d, &shape);
            let nbytes = v.len() * std::mem::size_of::<T>();
            let mut out = vec![0u8; nbytes];
            unsafe { std::ptr::copy_nonoverlapping(v.as_ptr().cast::<u8>(), out.as_mut_ptr(), nbytes) };
            out
        }))
    }

    /// An array from row-major bytes of `dtype` (bool bytes are normalized to 0/1).
    pub fn from_bytes(bytes: &[u8], shape: &[usize], dtype: DType) -> Result<Array> {
        let n = checked_size("from_bytes", shape)?;
        let need = n
            .checked_mul(dtype.size())
            .ok_or_else(|| Error::invalid("from_bytes", "size overflow"))?;
        if need != bytes.len() {
            return Err(Error::invalid(
                "from_bytes",
                format!(
                    "{} bytes cannot hold shape {} of {dtype}",
                    bytes.len(),
                    fmt_shape(shape)
                ),
            ));
        }
        let mut buf = Buffer::zeroed(need)?;
        buf.as_bytes_mut().copy_from_slice(bytes);
        if dtype == DType::Bool {
            for b in buf.as_bytes_mut() {
                *b = (*b != 0) as u8;
            }
        }
        Array::from_buffer(buf, shape.to_vec(), dtype)
    }
}

/// Copies a strided layout's elements into a row-major Vec.
pub(crate) fn gather_elems<T: Element>(d: &Data, shape: &[usize]) -> Vec<T> {
    let src = d.buffer.as_slice::<T>();
    let n = size_of(shape);
    if n == 0 {
        return Vec::new();
    }
    if is_row_contiguous(shape, &d.strides) {
        return src[d.offset..d.offset + n].to_vec();
    }
    let mut out = Vec::with_capacity(n);
    crate::backend::cpu::strided::for_each_offset(shape, &d.strides, d.offset as isize, |o| {
        out.push(src[o as usize])
    });
    out
}

/// Anything that can stand where an array is expected: arrays, and Rust numbers as weak
/// scalars (`add(&x, 2.0)`).
pub trait IntoArray {
    fn into_array(self) -> Array;
}
impl IntoArray for Array {
    fn into_array(self) -> Array {
        self
    }
}
impl IntoArray for &Array {
    fn into_array(self) -> Array {
        self.clone()
    }
}
macro_rules! weak_into {
    ($($t:ty),*) => {$(
        impl IntoArray for $t {
            fn into_array(self) -> Array { Array::weak_scalar(self) }
        }
    )*};
}
weak_into!(
    bool,
    i8,
    i16,
    i32,
    i64,
    isize,
    u8,
    u16,
    u32,
    u64,
    usize,
    f32,
    f64,
    num_complex::Complex32
);

impl std::fmt::Debug for Array {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Array(shape={}, dtype={}{})",
            fmt_shape(self.shape()),
            self.dtype(),
            if self.is_evaluated() { "" } else { ", pending" }
        )
    }
}

/// Kind of a weak scalar, for ops that need to decide promotion themselves.
pub fn weak_kind(a: &Array) -> Option<Kind> {
    a.is_weak().then(|| a.dtype().kind())
}
