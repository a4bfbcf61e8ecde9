//! `compile`: trace a function once per input signature, simplify the program, and replay it
//! on later calls without running the Rust function again.
//!
//! Simplification removes no-ops (same-shape reshapes and broadcasts, identity transposes,
//! casts to the same dtype), merges common subexpressions (equal op on equal inputs) and
//! folds ops whose inputs are all constants into constants. Fusion of elementwise chains into
//! single kernels is not built yet (see docs/transforms.md).

use super::trace::{trace, App, Graph, Source, Value};
pub use crate::backend::cuda::graph::GraphStats;
use crate::backend::cuda::graph::Replayer;
use crate::op::Op;
use crate::Device;
use crate::{Array, DType, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Setting this environment variable to `1` makes every compiled function call the
/// original function directly (for debugging).
pub const DISABLE_ENV: &str = "INGOT_DISABLE_COMPILE";

/// What `compile` does to a traced program; turn parts off to bisect a problem.
#[derive(Clone, Copy, Debug)]
pub struct CompileOptions {
    /// Remove no-ops, merge common subexpressions, fold constants.
    pub simplify: bool,
    /// Fuse chains of elementwise ops into single kernels.
    pub fuse: bool,
    /// Key the cache by input ranks and dtypes only: a call whose sizes differ from the
    /// trace replays it with shapes inferred op by op, tracing again only when the program
    /// holds an op whose output shape can't be inferred (see docs/transforms.md). Values
    /// the function computed from shapes while tracing (a mean's 1 / n) stay as traced.
    pub shapeless: bool,
    /// On a GPU, record the program as a CUDA graph at its second call and replay that
    /// graph from then on: one launch per call instead of one per kernel
    /// (`backend/cuda/graph.rs` has the rules). Off unless `INGOT_CUDA_GRAPH=1`.
    pub cuda_graph: bool,
}

/// Setting this environment variable to `1` makes `CompileOptions::default()` replay
/// compiled functions as CUDA graphs on the GPU.
pub const CUDA_GRAPH_ENV: &str = "INGOT_CUDA_GRAPH";

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            simplify: true,
            fuse: true,
            shapeless: false,
            cuda_graph: std::env::var(CUDA_GRAPH_ENV).is_ok_and(|v| v == "1"),
        }
    }
}

/// Counters of a compiled function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompileStats {
    /// Calls that ran the Rust function to trace it.
    pub traces: usize,
    /// Calls answered from the cache.
    pub hits: usize,
}

type Key = Vec<(Vec<usize>, DType)>;

/// A compiled function: call it like the original.
pub struct Compiled<F> {
    f: F,
    options: CompileOptions,
    cache: Mutex<HashMap<Key, Arc<Graph>>>,
    /// The CUDA graphs of each traced program on each GPU (with `cuda_graph`).
    replayers: Mutex<HashMap<(Key, usize), Arc<Replayer>>>,
    traces: AtomicUsize,
    hits: AtomicUsize,
}

/// Compiles `f` with the default options.
pub fn compile<F>(f: F) -> Compiled<F>
where
    F: Fn(&[Array]) -> Result<Vec<Array>>,
{
    compile_with(f, CompileOptions::default())
}

/// Compiles `f` with `options`.
pub fn compile_with<F>(f: F, options: CompileOptions) -> Compiled<F>
where
    F: Fn(&[Array]) -> Result<Vec<Array>>,
{
    Compiled {
        f,
        options,
        cache: Mutex::new(HashMap::new()),
        replayers: Mutex::new(HashMap::new()),
        traces: AtomicUsize::new(0),
        hits: AtomicUsize::new(0),
    }
}

impl<F> Compiled<F>
where
    F: Fn(&[Array]) -> Result<Vec<Array>>,
{
    /// Runs the function: from the cache when these input shapes and dtypes were seen.
    pub fn call(&self, inputs: &[Array]) -> Result<Vec<Array>> {
        if std::env::var(DISABLE_ENV).is_ok_and(|v| v == "1") {
            return (self.f)(inputs);
        }
        let key = shape_key(inputs);
        let cached = self.cache.lock().get(&key).cloned();
        if let Some(g) = cached {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return self.run(key, &g, inputs);
        }
        if self.options.shapeless {
            let cached = self.cache.lock().get(&rank_key(inputs)).cloned();
            if let Some(g) = cached {
                if let Some(ys) = super::shapeless::replay(&g, inputs)? {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(ys);
                }
            }
        }
        let g = self.graph(inputs)?;
        self.run(key, &g, inputs)
    }

    /// Runs the program `g` (traced for `key`): through its CUDA graph where that applies.
    fn run(&self, key: Key, g: &Arc<Graph>, inputs: &[Array]) -> Result<Vec<Array>> {
        if self.options.cuda_graph {
            if let Device::Cuda(n) = crate::device::default_device() {
                let r = self.replayers.lock().entry((key, n)).or_default().clone();
                if let Some(ys) = r.call(n, g, inputs)? {
                    return Ok(ys);
                }
            }
        }
        g.call(inputs)
    }

    /// Counters of the CUDA graphs of every traced program (all zero off the GPU or
    /// without `cuda_graph`).
    pub fn graph_stats(&self) -> GraphStats {
        let mut total = GraphStats::default();
        for r in self.replayers.lock().values() {
            let s = r.stats();
            total.captures += s.captures;
            total.replays += s.replays;
            total.uncaptured += s.uncaptured;
            total.bytes += s.bytes;
        }
        total
    }

    /// Why a program runs without its CUDA graph, for each program whose capture failed.
    pub fn graph_failures(&self) -> Vec<String> {
        self.replayers
            .lock()
            .values()
            .filter_map(|r| r.uncapturable())
            .collect()
    }

    /// The simplified program for these inputs' shapes and dtypes (tracing if needed, even
    /// when compilation is disabled by the environment).
    pub fn graph(&self, inputs: &[Array]) -> Result<Arc<Graph>> {
        let key = shape_key(inputs);
        if let Some(g) = self.cache.lock().get(&key) {
            return Ok(g.clone());
        }
        let g = self.trace(inputs)?;
        self.traces.fetch_add(1, Ordering::Relaxed);
        let mut cache = self.cache.lock();
        cache.insert(key, g.clone());
        if self.options.shapeless {
            cache.entry(rank_key(inputs)).or_insert_with(|| g.clone());
        }
        Ok(g)
    }

    pub fn stats(&self) -> CompileStats {
        CompileStats {
            traces: self.traces.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
        }
    }

    fn trace(&self, inputs: &[Array]) -> Result<Arc<Graph>> {
        let g = trace(|x| (self.f)(x), inputs)?;
        Ok(Arc::new(optimize(&g, self.options)?))
    }
}

/// The cache key of a call: each input's shape and dtype, and the autocast dtype in effect
/// (a trace under autocast holds its casts, so it serves only calls under the same one).
fn shape_key(inputs: &[Array]) -> Key {
    let mut k: Key = inputs
        .iter()
        .map(|x| (x.shape().to_vec(), x.dtype()))
        .collect();
    autocast_entry(&mut k);
    k
}

/// Marks a key made under autocast, with a shape no input has.
fn autocast_entry(k: &mut Key) {
    if let Some(d) = crate::amp::autocast_dtype() {
        k.push((vec![usize::MAX, usize::MAX - 1], d));
    }
}

/// A shapeless cache key: each input's rank (as a shape of `usize::MAX`s, which no real
/// shape has) and dtype.
fn rank_key(inputs: &[Array]) -> Key {
    let mut k: Key = inputs
        .iter()
        .map(|x| (vec![usize::MAX; x.ndim()], x.dtype()))
        .collect();
    autocast_entry(&mut k);
    k
}

/// The program as `options` transform it: simplified, then fused.
pub(crate) fn optimize(g: &Graph, options: CompileOptions) -> Result<Graph> {
    let g = if options.simplify {
        simplify(g)?
    } else {
        g.clone()
    };
    if options.fuse {
        super::fuse::fuse(&g)
    } else {
        Ok(g)
    }
}

/// Is this application the identity on its (first) input?
fn is_noop(app: &App, g: &Graph) -> bool {
    if app.outs.len() != 1 || app.inputs.is_empty() {
        return false;
    }
    let (i, o) = (&g.values[app.inputs[0]], &g.values[app.outs[0]]);
    if i.shape != o.shape || i.dtype != o.dtype {
        return false;
    }
    match &app.op {
        Op::Reshape | Op::Broadcast | Op::AsType(_) => true,
        Op::Transpose { perm } => perm.iter().enumerate().all(|(k, &p)| k == p),
        _ => false,
    }
}

/// The simplified program: no-ops removed, common subexpressions merged, constant
/// subexpressions folded. Values are renumbered; inputs and outputs keep their order.
pub fn simplify(g: &Graph) -> Result<Graph> {
    let mut out = Graph {
        values: Vec::new(),
        apps: Vec::new(),
        consts: Vec::new(),
        inputs: vec![0; g.inputs.len()],
        outputs: Vec::new(),
        rules: HashMap::new(),
    };
    let mut map = vec![usize::MAX; g.values.len()];
    // Equal op on equal inputs *and* equal output shapes and dtypes: arange and broadcast
    // take their output's shape and dtype from the node, not from the op.
    type CseKey = (Op, Vec<usize>, Vec<(Vec<usize>, DType)>);
    let mut seen: HashMap<CseKey, Vec<usize>> = HashMap::new();
    let mut lifted: HashMap<usize, Array> = HashMap::new();
    for (v, val) in g.values.iter().enumerate() {
        match &val.source {
            Source::Input(i) => {
                map[v] = out.values.len();
                out.inputs[*i] = out.values.len();
                out.values.push(val.clone());
            }
            Source::Const(c) => {
                map[v] = push_const(&mut out, g.consts[*c].clone(), val);
            }
            Source::Op { index, .. } if *index > 0 => {} // defined with output 0
            Source::Op { app, .. } => {
                let a = &g.apps[*app];
                let inputs: Vec<usize> = a.inputs.iter().map(|&i| map[i]).collect();
                let custom = g.rules.get(app).cloned();
                if custom.is_none() && is_noop(a, g) {
                    map[a.outs[0]] = inputs[0];
                    continue;
                }
                let outs_sig: Vec<(Vec<usize>, DType)> = a
                    .outs
                    .iter()
                    .map(|&o| (g.values[o].shape.clone(), g.values[o].dtype))
                    .collect();
                let key = (a.op.clone(), inputs.clone(), outs_sig);
                if custom.is_none() {
                    if let Some(prev) = seen.get(&key) {
                        for (&o, &p) in a.outs.iter().zip(prev) {
                            map[o] = p;
                        }
                        continue;
                    }
                }
                // A constant, or an op on constants kept as an op because folding it would
                // have grown a constant (a broadcast scalar): the value, unevaluated.
                let const_value = |i: usize, out: &Graph| match out.values[i].source {
                    Source::Const(c) => Some(out.consts[c].clone()),
                    _ => lifted.get(&i).cloned(),
                };
                let consts: Option<Vec<Array>> =
                    if custom.is_none() && !inputs.is_empty() && a.outs.len() == 1 {
                        inputs.iter().map(|&i| const_value(i, &out)).collect()
                    } else {
                        None
                    };
                let o = &g.values[a.outs[0]];
                let lazy =
                    consts.map(|ins| Array::from_op(a.op.clone(), ins, o.shape.clone(), o.dtype));
                // Folding must not grow a constant: a broadcast scalar stays a scalar, read
                // in place by the fused kernel and free to follow new sizes (shapeless).
                let n: usize = o.shape.iter().product();
                let grows = inputs
                    .iter()
                    .all(|&i| out.values[i].shape.iter().product::<usize>() < n);
                if let (Some(folded), false) = (&lazy, grows) {
                    folded.eval()?;
                    map[a.outs[0]] = push_const(&mut out, folded.clone(), o);
                    continue;
                }
                let k = out.apps.len();
                let mut outs = Vec::with_capacity(a.outs.len());
                for (idx, &o) in a.outs.iter().enumerate() {
                    map[o] = out.values.len();
                    outs.push(out.values.len());
                    out.values.push(Value {
                        source: Source::Op { app: k, index: idx },
                        shape: g.values[o].shape.clone(),
                        dtype: g.values[o].dtype,
                    });
                }
                if let Some(rule) = custom {
                    out.rules.insert(k, rule);
                } else {
                    seen.insert(key, outs.clone());
                }
                if let Some(l) = lazy {
                    lifted.insert(outs[0], l);
                }
                out.apps.push(App {
                    op: a.op.clone(),
                    inputs,
                    outs,
                });
            }
        }
    }
    out.outputs = g.outputs.iter().map(|&o| map[o]).collect();
    // Ops whose only consumers were folded (a broadcast scalar) are dead now.
    // renumber reads the graph's values, inputs, constants and outputs, not its apps.
    let (apps, rules) = (
        std::mem::take(&mut out.apps),
        std::mem::take(&mut out.rules),
    );
    let values = out.values.clone();
    Ok(super::fuse::renumber(&out, values, apps, rules))
}

fn push_const(out: &mut Graph, a: Array, like: &Value) -> usize {
    let v = out.values.len();
    out.values.push(Value {
        source: Source::Const(out.consts.len()),
        shape: like.shape.clone(),
        dtype: like.dtype,
    });
    out.consts.push(a);
    v
}
