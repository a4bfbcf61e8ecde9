//! User-written operations: a [`Kernel`] is an op of the user's own, with CPU code, an
//! optional CUDA C++ kernel (compiled by NVRTC for the running GPU, like ingot's own) and
//! an optional gradient written with ordinary ops.
//!
//! A kernel without GPU source still runs for GPU arrays: on the CPU, counted in
//! `ingot::cuda::fallbacks()` (as `kernel`), so a profile shows where it falls back until it
//! gets a kernel of its own. Kernels are found by name when a graph is evaluated, so a
//! compiled function or a saved package that uses one needs it defined in the process.
//!
//! The CUDA source is the body of a kernel that ingot wraps in a signature made from the
//! declared names: each input `x` is `const x_t* x` (with `x_n` elements), each output
//! `out` is `out_t* out`, each parameter is a `double`, `n` is the first output's length
//! and `idx` the thread's global index (one thread per element of the first output, in
//! blocks of 256). `T` is the first input's storage type and `C` the type it computes in
//! (f32 for f16 and bf16); `ld(v)` reads a stored element as `C` and `st<T>(c)` stores one.

use crate::array::{Array, Data};
use crate::dtype::{DType, Element, Scalar};
use crate::op::Op;
use crate::shape::size_of;
use crate::{Error, Result};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// An input of a kernel's CPU code: row-major elements on the host.
pub struct HostIn<'a> {
    pub shape: &'a [usize],
    pub dtype: DType,
    bytes: &'a [u8],
}

impl HostIn<'_> {
    /// The elements as `T`, which must be the input's dtype.
    pub fn as_slice<T: Element>(&self) -> Result<&[T]> {
        check_type::<T>(self.dtype)?;
        Ok(bytemuck_cast(self.bytes))
    }
}

/// An output of a kernel's CPU code: row-major elements to fill (they start as zeros).
pub struct HostOut<'a> {
    pub shape: &'a [usize],
    pub dtype: DType,
    bytes: &'a mut [u8],
}

impl HostOut<'_> {
    /// The elements as `T`, which must be the output's dtype.
    pub fn as_mut_slice<T: Element>(&mut self) -> Result<&mut [T]> {
        check_type::<T>(self.dtype)?;
        Ok(bytemuck_cast_mut(self.bytes))
    }
}

fn check_type<T: Element>(d: DType) -> Result<()> {
    if T::DTYPE != d {
        return Err(Error::invalid(
            "kernel",
            format!("the CPU code read a {d} buffer as {}", T::DTYPE),
        ));
    }
    Ok(())
}

fn bytemuck_cast<T: Element>(b: &[u8]) -> &[T] {
    let n = b.len() / std::mem::size_of::<T>();
    // An empty buffer's pointer is dangling and need not be aligned for T.
    if n == 0 {
        return &[];
    }
    // Safety: eval_cpu hands over only slices aligned for their dtype (copying any that are
    // not), ingot's buffers of a dtype hold valid elements of it (bools are 0 or 1), and
    // `n` elements fit in `b`.
    unsafe { std::slice::from_raw_parts(b.as_ptr() as *const T, n) }
}

fn bytemuck_cast_mut<T: Element>(b: &mut [u8]) -> &mut [T] {
    let n = b.len() / std::mem::size_of::<T>();
    if n == 0 {
        return &mut [];
    }
    // Safety: output buffers are fresh allocations (16-byte aligned), zeroed (a valid
    // element of every dtype), and the borrow is unique.
    unsafe { std::slice::from_raw_parts_mut(b.as_mut_ptr() as *mut T, n) }
}

/// The CPU implementation: inputs, outputs to fill, parameter values (in declared order).
pub type CpuFn = dyn Fn(&[HostIn], &mut [HostOut], &[f64]) -> Result<()> + Send + Sync;
/// The backward rule: (inputs, outputs, cotangents of the outputs, parameters) to one
/// cotangent per input (`None`: no gradient). Written with ingot ops (or kernels), it is
/// itself differentiable, which also gives the kernel a `jvp`.
pub type VjpFn =
    dyn Fn(&[Array], &[Array], &[Array], &[f64]) -> Result<Vec<Option<Array>>> + Send + Sync;
/// Output shapes and dtypes from the inputs' and the parameters.
pub type ShapeFn =
    dyn Fn(&[(Vec<usize>, DType)], &[f64]) -> Result<Vec<(Vec<usize>, DType)>> + Send + Sync;

pub(crate) struct KernelDef {
    name: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    params: Vec<String>,
    cuda: Option<(String, String)>,
    cuda_dtypes: Option<Vec<DType>>,
    cpu: Arc<CpuFn>,
    vjp: Option<Arc<VjpFn>>,
    shapes: Option<Arc<ShapeFn>>,
    /// Tells two definitions under one name apart in GPU kernel caches.
    version: u64,
}

/// A user-written operation, defined once with [`Kernel::new`] and applied with
/// [`Kernel::call`].
///
/// ```
/// use ingot::custom::Kernel;
/// let softshrink = Kernel::new("softshrink_doc")
///     .inputs(&["x"])
///     .outputs(&["out"])
///     .params(&["lambd"])
///     .cuda(
///         "if (idx < n) { C v = ld(x[idx]); C l = (C)lambd; \
///          out[idx] = st<T>(v > l ? v - l : (v < -l ? v + l : v * (C)0)); }",
///     )
///     .cpu(|ins, outs, p| {
///         let x = ins[0].as_slice::<f32>()?;
///         let l = p[0] as f32;
///         for (o, &v) in outs[0].as_mut_slice::<f32>()?.iter_mut().zip(x) {
///             *o = if v > l { v - l } else if v < -l { v + l } else { v * 0.0 };
///         }
///         Ok(())
///     })
///     .build()?;
/// let x = ingot::Array::from_slice(&[-2.0f32, 0.25, 3.0], &[3])?;
/// let y = softshrink.call(&[&x], &[0.5])?.remove(0);
/// assert_eq!(y.to_vec::<f32>()?, vec![-1.5, 0.0, 2.5]);
/// # Ok::<(), ingot::Error>(())
/// ```
#[derive(Clone)]
pub struct Kernel {
    def: Arc<KernelDef>,
}

/// Builds a [`Kernel`]; [`KernelBuilder::build`] checks and registers it.
pub struct KernelBuilder {
    name: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    params: Vec<String>,
    cuda: Option<(String, String)>,
    cuda_dtypes: Option<Vec<DType>>,
    cpu: Option<Arc<CpuFn>>,
    vjp: Option<Arc<VjpFn>>,
    shapes: Option<Arc<ShapeFn>>,
}

fn registry() -> &'static RwLock<HashMap<String, Arc<KernelDef>>> {
    static R: OnceLock<RwLock<HashMap<String, Arc<KernelDef>>>> = OnceLock::new();
    R.get_or_init(|| RwLock::new(HashMap::new()))
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

impl Kernel {
    /// Starts the definition of kernel `name` (a C identifier). Defaults: one input `x`, one
    /// output `out` with the first input's shape and dtype, no parameters.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(name: &str) -> KernelBuilder {
        KernelBuilder {
            name: name.to_string(),
            inputs: vec!["x".into()],
            outputs: vec!["out".into()],
            params: Vec::new(),
            cuda: None,
            cuda_dtypes: None,
            cpu: None,
            vjp: None,
            shapes: None,
        }
    }

    /// The kernel registered under `name`, if any.
    pub fn get(name: &str) -> Option<Kernel> {
        registry()
            .read()
            .get(name)
            .map(|d| Kernel { def: d.clone() })
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// Whether the kernel has GPU source (without it, GPU arrays run it on the CPU).
    pub fn has_cuda(&self) -> bool {
        self.def.cuda.is_some()
    }

    /// Compiles the CUDA source for inputs of `in_dtypes` with NVRTC for `arch` (e.g.
    /// "sm_90"), without a GPU: a body that does not compile fails here with NVRTC's log.
    pub fn compile_cuda(&self, in_dtypes: &[DType], arch: &str) -> Result<()> {
        let d = &self.def;
        let specs: Vec<(Vec<usize>, DType)> = in_dtypes.iter().map(|&t| (vec![1], t)).collect();
        let params = vec![0.0; d.params.len()];
        let outs: Vec<DType> = out_specs(d, &specs, &params)?
            .into_iter()
            .map(|o| o.1)
            .collect();
        crate::backend::cuda::compile_user_kernel(d, in_dtypes, &outs, arch)
    }

    /// Applies the kernel: one array per declared output. Shapes and dtypes are checked
    /// here, so a bad call fails where it is made.
    pub fn call(&self, inputs: &[&Array], params: &[f64]) -> Result<Vec<Array>> {
        let d = &self.def;
        for (kind, names, got) in [
            ("input(s)", &d.inputs, inputs.len()),
            ("parameter(s)", &d.params, params.len()),
        ] {
            if got != names.len() {
                return Err(Error::invalid(
                    format!("kernel {}", d.name),
                    format!(
                        "takes {} {kind} ({}), got {got}",
                        names.len(),
                        names.join(", ")
                    ),
                ));
            }
        }
        let specs: Vec<(Vec<usize>, DType)> = inputs
            .iter()
            .map(|a| (a.shape().to_vec(), a.dtype()))
            .collect();
        let outs = out_specs(d, &specs, params)?;
        let op = Op::Kernel {
            name: d.name.clone(),
            params: params.iter().map(|&p| Scalar::Float(p)).collect(),
        };
        let inputs: Vec<Array> = inputs.iter().map(|&a| a.clone()).collect();
        Ok(Array::from_op_multi(op, inputs, outs))
    }
}

fn out_specs(
    d: &KernelDef,
    specs: &[(Vec<usize>, DType)],
    params: &[f64],
) -> Result<Vec<(Vec<usize>, DType)>> {
    let outs = match &d.shapes {
        Some(f) => f(specs, params)?,
        None => {
            let first = specs.first().cloned().ok_or_else(|| {
                Error::invalid(
                    format!("kernel {}", d.name),
                    "a kernel without inputs needs .output_shapes",
                )
            })?;
            vec![first; d.outputs.len()]
        }
    };
    if outs.len() != d.outputs.len() {
        return Err(Error::invalid(
            format!("kernel {}", d.name),
            format!(
                "output_shapes gave {} outputs for {} declared",
                outs.len(),
                d.outputs.len()
            ),
        ));
    }
    Ok(outs)
}

impl KernelBuilder {
    /// The inputs' names (as the CUDA source refers to them).
    pub fn inputs(mut self, names: &[&str]) -> Self {
        self.inputs = names.iter().map(|s| s.to_string()).collect();
        self
    }
    /// The outputs' names.
    pub fn outputs(mut self, names: &[&str]) -> Self {
        self.outputs = names.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Scalar parameters, passed to the CUDA kernel as `double`s and to the CPU code as f64.
    pub fn params(mut self, names: &[&str]) -> Self {
        self.params = names.iter().map(|s| s.to_string()).collect();
        self
    }
    /// The CUDA kernel body (see the module docs for what it can use).
    pub fn cuda(self, body: &str) -> Self {
        self.cuda_with_header("", body)
    }
    /// The CUDA kernel body and source placed before the kernel (helper functions).
    pub fn cuda_with_header(mut self, header: &str, body: &str) -> Self {
        self.cuda = Some((header.to_string(), body.to_string()));
        self
    }
    /// The dtypes (of the first input) the CUDA source handles; others run the CPU code.
    /// Default: every dtype.
    pub fn cuda_dtypes(mut self, dtypes: &[DType]) -> Self {
        self.cuda_dtypes = Some(dtypes.to_vec());
        self
    }
    /// The CPU implementation (required: it is the reference and the fallback).
    pub fn cpu(
        mut self,
        f: impl Fn(&[HostIn], &mut [HostOut], &[f64]) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.cpu = Some(Arc::new(f));
        self
    }
    /// The backward rule (without it, differentiating through the kernel is an error).
    pub fn vjp(
        mut self,
        f: impl Fn(&[Array], &[Array], &[Array], &[f64]) -> Result<Vec<Option<Array>>>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        self.vjp = Some(Arc::new(f));
        self
    }
    /// Output shapes and dtypes (default: each output like the first input).
    pub fn output_shapes(
        mut self,
        f: impl Fn(&[(Vec<usize>, DType)], &[f64]) -> Result<Vec<(Vec<usize>, DType)>>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        self.shapes = Some(Arc::new(f));
        self
    }

    /// Checks the definition and registers it under its name, replacing an earlier one
    /// (graphs built since use the new definition).
    pub fn build(self) -> Result<Kernel> {
        let what = format!("kernel {}", self.name);
        let all = std::iter::once(&self.name)
            .chain(&self.inputs)
            .chain(&self.outputs)
            .chain(&self.params);
        let mut seen = std::collections::HashSet::new();
        for n in all.clone() {
            if !is_ident(n) {
                return Err(Error::invalid(
                    what.as_str(),
                    format!("{n:?} is not a C identifier (letters, digits and _)"),
                ));
            }
        }
        for n in all.skip(1) {
            if !seen.insert(n.as_str()) || ["n", "idx", "T", "C"].contains(&n.as_str()) {
                return Err(Error::invalid(
                    what.as_str(),
                    format!("the name {n:?} is used twice or is reserved (n, idx, T, C)"),
                ));
            }
        }
        if self.outputs.is_empty() {
            return Err(Error::invalid(&what, "a kernel needs at least one output"));
        }
        let cpu = self.cpu.ok_or_else(|| {
            Error::invalid(
                what.as_str(),
                "a kernel needs CPU code (.cpu): it is the reference and the fallback",
            )
        })?;
        static VERSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let def = Arc::new(KernelDef {
            name: self.name.clone(),
            inputs: self.inputs,
            outputs: self.outputs,
            params: self.params,
            cuda: self.cuda,
            cuda_dtypes: self.cuda_dtypes,
            cpu,
            vjp: self.vjp,
            shapes: self.shapes,
            version: VERSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        });
        registry().write().insert(self.name, def.clone());
        Ok(Kernel { def })
    }
}

/// The definition registered under `name`: nodes name their kernel, so a graph built before
/// a redefinition (or loaded from a package) runs the current one.
pub(crate) fn lookup(name: &str) -> Result<Arc<KernelDef>> {
    let def = registry().read().get(name).cloned();
    match def {
        Some(d) => Ok(d),
        None => Err(Error::invalid(
            "kernel",
            format!("no kernel named {name:?} is defined in this process"),
        )),
    }
}

impl KernelDef {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

fn params_f64(params: &[Scalar]) -> Vec<f64> {
    params.iter().map(|p| p.to_f64()).collect()
}

/// Runs a kernel's CPU code over row-major host copies of its inputs.
pub(crate) fn eval_cpu(
    name: &str,
    params: &[Scalar],
    inputs: &[Array],
    outs: &[(Vec<usize>, DType)],
) -> Result<Vec<Data>> {
    let def = lookup(name)?;
    // Aligned row-major slices, so the CPU code can view them as its element type.
    let datas: Vec<Data> = inputs
        .iter()
        .map(crate::backend::cpu::strided::row_major_data)
        .collect::<Result<_>>()?;
    let ins: Vec<HostIn> = inputs
        .iter()
        .zip(&datas)
        .map(|(a, d)| HostIn {
            shape: a.shape(),
            dtype: a.dtype(),
            bytes: crate::backend::cpu::strided::row_major_bytes(d, a),
        })
        .collect();
    let mut bufs: Vec<crate::buffer::Buffer> = outs
        .iter()
        .map(|(s, d)| crate::buffer::Buffer::zeroed(size_of(s) * d.size()))
        .collect::<Result<_>>()?;
    {
        let mut host_outs: Vec<HostOut> = bufs
            .iter_mut()
            .zip(outs)
            .map(|(b, (s, d))| HostOut {
                shape: s,
                dtype: *d,
                bytes: b.as_bytes_mut(),
            })
            .collect();
        (def.cpu)(&ins, &mut host_outs, &params_f64(params))?;
    }
    Ok(bufs
        .into_iter()
        .zip(outs)
        .map(|(b, (s, _))| crate::backend::cpu::strided::out_data(b, s))
        .collect())
}

/// The CUDA source of kernel `def` for these input and output dtypes, and its entry name;
/// `None` when the kernel has no GPU source for them.
pub(crate) fn cuda_source(
    def: &KernelDef,
    in_dtypes: &[DType],
    out_dtypes: &[DType],
    common: &str,
    ctype: fn(DType) -> &'static str,
) -> Option<(String, String)> {
    let (header, body) = def.cuda.as_ref()?;
    let first = *in_dtypes.first().or(out_dtypes.first())?;
    if let Some(ok) = &def.cuda_dtypes {
        if !ok.contains(&first) {
            return None;
        }
    }
    let tag: Vec<&str> = in_dtypes
        .iter()
        .chain(out_dtypes)
        .map(|&d| ctype(d))
        .collect();
    let entry = format!("user_{}_{}_{}", def.name, def.version, tag.join("_"));
    let mut src = format!(
        "{common}\ntypedef {} T;\ntypedef Ct<T>::type C;\n",
        ctype(first)
    );
    let mut sig = Vec::new();
    for (name, &d) in def.inputs.iter().zip(in_dtypes) {
        src.push_str(&format!("typedef {} {name}_t;\n", ctype(d)));
        sig.push(format!(
            "const {name}_t* __restrict__ {name}, long long {name}_n"
        ));
    }
    for (name, &d) in def.outputs.iter().zip(out_dtypes) {
        src.push_str(&format!("typedef {} {name}_t;\n", ctype(d)));
        sig.push(format!("{name}_t* __restrict__ {name}"));
    }
    for p in &def.params {
        sig.push(format!("double {p}"));
    }
    sig.push("long long n".into());
    src.push_str(&format!(
        "{header}\nextern \"C\" __global__ void {entry}({}) {{\n  const long long idx = \
         (long long)blockIdx.x * blockDim.x + threadIdx.x;\n{body}\n}}\n",
        sig.join(", ")
    ));
    Some((entry, src))
}

/// The user's backward rule for a kernel node.
pub(crate) fn vjp(
    name: &str,
    params: &[Scalar],
    inputs: &[Array],
    outs: &[Option<Array>],
    cts: &[Option<Array>],
) -> Result<Vec<Option<Array>>> {
    let def = lookup(name)?;
    let Some(rule) = &def.vjp else {
        return Err(Error::invalid(
            "vjp",
            format!("kernel {name:?} has no gradient rule (define one with .vjp)"),
        ));
    };
    let p = params_f64(params);
    // A dropped sibling output is computed again for the rule.
    let outs: Vec<Array> = if outs.iter().all(Option::is_some) {
        outs.iter().flatten().cloned().collect()
    } else {
        let refs: Vec<&Array> = inputs.iter().collect();
        Kernel { def: def.clone() }.call(&refs, &p)?
    };
    let cts = crate::transforms::autodiff::zero_filled(cts, &outs)?;
    let grads = rule(inputs, &outs, &cts, &p)?;
    if grads.len() != inputs.len() {
        return Err(Error::invalid(
            "vjp",
            format!(
                "kernel {name:?}'s rule returned {} cotangents for {} inputs",
                grads.len(),
                inputs.len()
            ),
        ));
    }
    for (g, x) in grads.iter().zip(inputs) {
        if let Some(g) = g {
            if g.shape() != x.shape() {
                return Err(Error::invalid(
                    "vjp",
                    format!(
                        "kernel {name:?}'s rule returned a cotangent of shape {:?} for an input of shape {:?}",
                        g.shape(),
                        x.shape()
                    ),
                ));
            }
        }
    }
    Ok(grads)
}

/// The outputs a kernel node of these inputs makes (import checks).
pub(crate) fn specs_for(
    name: &str,
    params: &[f64],
    inputs: &[(Vec<usize>, DType)],
) -> Result<Vec<(Vec<usize>, DType)>> {
    let def = lookup(name)?;
    if inputs.len() != def.inputs.len() || params.len() != def.params.len() {
        return Err(Error::invalid(
            format!("kernel {name}"),
            format!(
                "takes {} inputs and {} parameters, the node has {} and {}",
                def.inputs.len(),
                def.params.len(),
                inputs.len(),
                params.len()
            ),
        ));
    }
    out_specs(&def, inputs, params)
}
