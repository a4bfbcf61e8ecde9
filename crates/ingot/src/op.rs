//! Every primitive of ingot, with its parameters: the vocabulary of the whole system.
//!
//! Public operations (src/ops/) validate their arguments, promote dtypes and broadcast
//! shapes *before* building a node, so a kernel sees uniform inputs: elementwise inputs have
//! the output's shape and a common dtype, axes are non-negative, slices are resolved.
//! Composite operations (mean, var, tile, einsum, ...) are built from these and need no
//! variant. `Op` is hashable and serializable: CSE, compile-cache keys and package export
//! rely on that.

use crate::dtype::{DType, Scalar};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UnaryOp {
    Abs,
    Negative,
    Sign,
    Exp,
    Expm1,
    Log,
    Log1p,
    Log2,
    Log10,
    Sqrt,
    Rsqrt,
    Square,
    Reciprocal,
    Sin,
    Cos,
    Tan,
    Arcsin,
    Arccos,
    Arctan,
    Sinh,
    Cosh,
    Tanh,
    Arcsinh,
    Arccosh,
    Arctanh,
    Erf,
    Erfinv,
    Floor,
    Ceil,
    /// Round half to even at `decimals` decimal places (NumPy's `round`).
    Round {
        decimals: i32,
    },
    Sigmoid,
    /// `x Phi(x) = 0.5 x (1 + erf(x / sqrt 2))`, exact GELU.
    Gelu,
    /// GELU's tanh form, `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`; a node of its
    /// own so its gradient keeps x alone rather than the form's intermediates.
    GeluTanh,
    LogicalNot,
    BitwiseInvert,
    IsNan,
    IsInf,
    IsFinite,
    SignBit,
    Real,
    Imag,
    Conj,
    Angle,
    /// Identity on values; transforms treat it as a constant.
    StopGradient,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BinaryOp {
    Add,
    Subtract,
    Multiply,
    Divide,
    FloorDivide,
    Remainder,
    Power,
    Maximum,
    Minimum,
    Arctan2,
    LogAddExp,
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    LogicalAnd,
    LogicalOr,
    LogicalXor,
    BitwiseAnd,
    BitwiseOr,
    BitwiseXor,
    LeftShift,
    RightShift,
    /// `b * gelu'(a)`: exact GELU's gradient in one pass (its vjp's own op).
    GeluGrad,
    /// `b * gelu_tanh'(a)`.
    GeluTanhGrad,
}

impl UnaryOp {
    /// Every unary op (Round twice), for checks that cover them all.
    pub const ALL_FOR_CHECK: [UnaryOp; 45] = {
        use UnaryOp::*;
        [
            Abs,
            Negative,
            Sign,
            Exp,
            Expm1,
            Log,
            Log1p,
            Log2,
            Log10,
            Sqrt,
            Rsqrt,
            Square,
            Reciprocal,
            Sin,
            Cos,
            Tan,
            Arcsin,
            Arccos,
            Arctan,
            Sinh,
            Cosh,
            Tanh,
            Arcsinh,
            Arccosh,
            Arctanh,
            Erf,
            Erfinv,
            Floor,
            Ceil,
            Round { decimals: -1 },
            Round { decimals: 2 },
            Sigmoid,
            Gelu,
            GeluTanh,
            LogicalNot,
            BitwiseInvert,
            IsNan,
            IsInf,
            IsFinite,
            SignBit,
            Real,
            Imag,
            Conj,
            Angle,
            StopGradient,
        ]
    };
}

impl BinaryOp {
    /// Every binary op, for checks that cover them all.
    pub const ALL_FOR_CHECK: [BinaryOp; 27] = {
        use BinaryOp::*;
        [
            Add,
            Subtract,
            Multiply,
            Divide,
            FloorDivide,
            Remainder,
            Power,
            Maximum,
            Minimum,
            Arctan2,
            LogAddExp,
            Equal,
            NotEqual,
            Less,
            LessEqual,
            Greater,
            GreaterEqual,
            LogicalAnd,
            LogicalOr,
            LogicalXor,
            BitwiseAnd,
            BitwiseOr,
            BitwiseXor,
            LeftShift,
            RightShift,
            GeluGrad,
            GeluTanhGrad,
        ]
    };

    /// Comparisons and logical ops produce bool.
    pub fn returns_bool(self) -> bool {
        use BinaryOp::*;
        matches!(
            self,
            Equal
                | NotEqual
                | Less
                | LessEqual
                | Greater
                | GreaterEqual
                | LogicalAnd
                | LogicalOr
                | LogicalXor
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReduceKind {
    Sum,
    Prod,
    Min,
    Max,
    All,
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ArgReduceKind {
    ArgMin,
    ArgMax,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScanKind {
    Sum,
    Prod,
    Max,
    Min,
    LogAddExp,
}

/// How a scatter combines updates with what is there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScatterKind {
    Set,
    Add,
    Prod,
    Max,
    Min,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PadMode {
    Constant,
    Edge,
    Reflect,
    Symmetric,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PoolKind {
    Max,
    Avg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FftKind {
    /// complex -> complex, forward
    Forward,
    /// complex -> complex, inverse (unnormalized: scaling is a separate multiply)
    Inverse,
    /// real -> half-spectrum complex over the last of `axes`
    RealForward,
    /// half-spectrum complex -> real over the last of `axes`; the output length is on the node
    RealInverse,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InterpMode {
    Nearest,
    Bilinear,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GridPadding {
    Zeros,
    Border,
    Reflection,
}

/// One primitive. Output shapes and dtypes live on the node, not here.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    // ---- creation (no inputs) -------------------------------------------------------------
    /// `start + i * step` in the node's dtype.
    Arange {
        start: Scalar,
        step: Scalar,
    },

    // ---- elementwise (inputs already broadcast to the output shape) ------------------------
    Unary(UnaryOp),
    /// Both inputs have the same dtype (promoted by the public op).
    Binary(BinaryOp),
    /// `where(cond, x, y)`: cond is bool, x and y share a dtype.
    Select,
    /// Conversion to the node's dtype.
    AsType(DType),

    // ---- views: no copy where the layout allows ------------------------------------------
    /// Reshape to the node's shape (a view when strides allow, a copy otherwise).
    Reshape,
    Transpose {
        perm: Vec<usize>,
    },
    /// Per axis: first index and step (may be negative); lengths are the node's shape.
    Slice {
        start: Vec<usize>,
        step: Vec<isize>,
    },
    /// Broadcast to the node's shape (stride 0 on the new dims).
    Broadcast,
    /// The diagonal of axes (axis1, axis2) with `offset`, appended as the last axis.
    Diagonal {
        offset: isize,
        axis1: usize,
        axis2: usize,
    },
    /// Reinterpret the bytes as another dtype (last axis scales by the size ratio).
    ViewDtype(DType),
    /// A row-major contiguous copy.
    Copy,

    // ---- reductions and scans -----------------------------------------------------------
    /// Reduces `axes`, keeping them as size-1 dims (public ops squeeze them).
    Reduce {
        kind: ReduceKind,
        axes: Vec<usize>,
    },
    /// Index of the first min/max along `axis` (kept as a size-1 dim), as int64 like NumPy.
    ArgReduce {
        kind: ArgReduceKind,
        axis: usize,
    },
    Scan {
        kind: ScanKind,
        axis: usize,
        reverse: bool,
        inclusive: bool,
    },

    // ---- shape ----------------------------------------------------------------------------
    Concatenate {
        axis: usize,
    },
    Pad {
        low: Vec<usize>,
        high: Vec<usize>,
        mode: PadMode,
        value: Scalar,
    },

    // ---- indexing -------------------------------------------------------------------------
    /// `take(a, indices, axis)`: inputs (a, indices).
    Take {
        axis: usize,
    },
    /// inputs (a, indices) with indices broadcast against a except on `axis`.
    TakeAlongAxis {
        axis: usize,
    },
    /// inputs (a, indices, values).
    PutAlongAxis {
        axis: usize,
        kind: ScatterKind,
    },
    /// MLX-style gather: inputs (a, idx_0, .., idx_k) indexing `axes`; each index picks a
    /// slice of `slice_sizes`. Output: broadcast index shape + slice_sizes.
    Gather {
        axes: Vec<usize>,
        slice_sizes: Vec<usize>,
    },
    /// MLX-style scatter: inputs (a, idx_0, .., idx_k, updates).
    Scatter {
        axes: Vec<usize>,
        kind: ScatterKind,
    },
    /// Writes inputs[1] into a copy of inputs[0] at the strided window (start, step);
    /// in place when the destination buffer is held by nothing else (donation).
    SliceUpdate {
        start: Vec<usize>,
        step: Vec<isize>,
        kind: ScatterKind,
    },

    // ---- sorting --------------------------------------------------------------------------
    /// Stable sort along `axis` (NaN last, as NumPy).
    Sort {
        axis: usize,
    },
    ArgSort {
        axis: usize,
    },
    Partition {
        kth: usize,
        axis: usize,
    },
    ArgPartition {
        kth: usize,
        axis: usize,
    },
    /// inputs (sorted 1-D, values); outputs int64 indices.
    SearchSorted {
        right: bool,
    },

    // ---- linear algebra ---------------------------------------------------------------------
    /// (..., m, k) @ (..., k, n) with batch dims already broadcast.
    Matmul,
    Cholesky {
        upper: bool,
    },
    Inv,
    /// outputs (lu, pivots) as LAPACK's getrf gives them (pivots 0-based, int32), and a third,
    /// the row permutation (int32), when the node asks for three outputs.
    LuFactor,
    /// outputs (q, r), reduced.
    Qr,
    /// outputs (u, s, vt) when `compute_uv`, else (s).
    Svd {
        compute_uv: bool,
        full_matrices: bool,
    },
    /// outputs (eigenvalues ascending, eigenvectors in columns).
    Eigh {
        upper: bool,
    },
    /// solve a @ x = b with a triangular; `left = false` solves x @ a = b.
    SolveTriangular {
        upper: bool,
        unit_diagonal: bool,
        left: bool,
    },
    Solve,

    // ---- convolution and pooling (channels last: (N, *spatial, C)) ---------------------------
    /// inputs (x, w) with w (C_out, *kernel, C_in / groups). `input_dilation` > 1 makes a
    /// transposed convolution; `flip` flips the kernel (convolution vs correlation).
    Conv {
        stride: Vec<usize>,
        padding_lo: Vec<usize>,
        padding_hi: Vec<usize>,
        kernel_dilation: Vec<usize>,
        input_dilation: Vec<usize>,
        groups: usize,
        flip: bool,
    },
    /// Pooling over the spatial dims of (N, *spatial, C); padded cells never win a max and
    /// count in an average only when `count_pad`.
    Pool {
        kind: PoolKind,
        window: Vec<usize>,
        stride: Vec<usize>,
        padding: Vec<usize>,
        count_pad: bool,
    },

    // ---- FFT ----------------------------------------------------------------------------
    Fft {
        axes: Vec<usize>,
        kind: FftKind,
    },

    // ---- fast ops (each has a reference decomposition in ops/) -------------------------------
    Softmax {
        axis: usize,
        log: bool,
    },
    GridSample {
        mode: InterpMode,
        padding: GridPadding,
        align_corners: bool,
    },
    /// Fused scaled dot-product attention (`ops::fast`): inputs q `(..., Hq, L, E)`,
    /// k `(..., Hkv, S, E)`, v `(..., Hkv, S, Ev)` and, for the boolean and additive kinds,
    /// the mask `(..., Hq, L, S)`; output `(..., Hq, L, Ev)`.
    Attention {
        scale: Scalar,
        mask: AttentionMask,
    },
    /// The gradient of `Attention` with no mask input (kinds none and causal): inputs q, k,
    /// v and the output's cotangent g `(..., Hq, L, Ev)`; outputs dq, dk and dv, shaped
    /// and typed as q, k and v. Built by attention's vjp so that the backward pass, like
    /// the forward one, never materializes the scores.
    AttentionGrad {
        scale: Scalar,
        mask: AttentionMask,
    },
    /// Softmax cross entropy over the last axis with class-index targets
    /// (`ops::fast::softmax_cross_entropy`): inputs logits `(..., V)` (float) and targets
    /// `(...)` (int64); output `(...)` in the compute dtype (f64 for f64, else f32),
    /// `logsumexp(row) - row[t]`; 0 where t is negative (an ignored row); t >= V is an
    /// out-of-bounds error on evaluation.
    CrossEntropy,
    /// The gradient of `CrossEntropy`: inputs logits, targets and the cotangent `(...)` of
    /// the compute dtype; output `(softmax(row) - onehot(t)) * g` of the logits' shape and
    /// dtype (zero on ignored rows, the same error past the classes); no f32 copy of the
    /// logits.
    CrossEntropyGrad,
    /// RMS normalization over the last axis (`ops::fast::rms_norm`): inputs x `(..., D)`
    /// and, when `has_weight`, the weight `(D,)`, both of the output's float dtype.
    RmsNorm {
        eps: Scalar,
        has_weight: bool,
    },
    /// Layer normalization over the last axis (`ops::fast::layer_norm`): inputs x
    /// `(..., D)`, then the weight and the bias `(D,)` that the flags say are there, all of
    /// the output's float dtype.
    LayerNorm {
        eps: Scalar,
        has_weight: bool,
        has_bias: bool,
    },
    /// Rotary position embedding (`ops::fast::rope`) of the first `dims` features of x
    /// `(..., L, D)` at positions `(offset + i) * scale`: inputs x, then the int64 offset
    /// when it is not `Fixed`, then the `dims / 2` inverse frequencies in the compute dtype
    /// when `base` is `None`. The output has x's shape and dtype.
    Rope {
        dims: usize,
        traditional: bool,
        base: Option<Scalar>,
        scale: Scalar,
        offset: RopeOffsetKind,
    },
    /// `act(x @ w + bias)` (`ops::fast::linear`): inputs x `(m, k)`, w `(k, n)` and, when
    /// `has_bias`, the bias `(n,)`, all of the output's dtype (f16, bf16 or f32); output
    /// `(m, n)`. On the GPU one cuBLASLt call, the bias and activation its epilogue.
    Linear {
        act: LinearAct,
        has_bias: bool,
    },
    /// Walsh-Hadamard transform over the last axis (a power of two), times `scale`.
    Hadamard {
        scale: Scalar,
    },

    // ---- random ---------------------------------------------------------------------------
    /// Counter-based random bits (Threefry-2x32) from a key: uint32 of the node's shape.
    RandomBits,

    // ---- transforms -------------------------------------------------------------------------
    /// A chain of elementwise ops run as one pass over cache-sized tiles (made by `compile`).
    /// Inputs have the output's rank, each dim equal to the output's or 1 (broadcast); every
    /// input, intermediate and output has the node's dtype, f32 or f64.
    Fused {
        program: FusedProgram,
    },
    /// A function with its own backward rule (`custom_vjp`, `checkpoint`): inputs are the
    /// function's `n_in` arguments followed by its outputs, which the node passes through.
    /// The rule lives on the node, not here; `id` keeps two such nodes distinct.
    Custom {
        name: String,
        id: u64,
        n_in: usize,
    },
    /// A user-written kernel (`ingot::custom::Kernel`), found by `name` in the process's
    /// registry when evaluated, with its scalar parameters.
    Kernel {
        name: String,
        params: Vec<Scalar>,
    },

    // ---- distributed ------------------------------------------------------------------------
    /// A collective over the processes of a group (`ingot::distributed`): `ranks` are its
    /// members' world ranks in group order; `tag` matches the node with its counterparts on
    /// the other processes (given in build order, the same on every rank).
    Collective {
        kind: CollectiveKind,
        ranks: Vec<usize>,
        tag: u64,
    },
}

/// What a collective computes; ranks (`root`, `peer`) are places in the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CollectiveKind {
    Sum,
    Max,
    Min,
    /// Every process's input joined along `axis`, in rank order.
    Gather {
        axis: usize,
    },
    /// The sum, cut along `axis`: process r keeps part r.
    ScatterSum {
        axis: usize,
    },
    Broadcast {
        root: usize,
    },
    Send {
        peer: usize,
    },
    Recv {
        peer: usize,
    },
}

/// The activation a `Linear` node applies after its bias (cuBLASLt's epilogues).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LinearAct {
    None,
    Relu,
    /// GELU with the tanh approximation, `0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))`
    /// (PyTorch's `approximate="tanh"`, GPT-2's).
    GeluTanh,
}

/// The mask of an attention node: none, causal (aligned to the last key), or a mask input
/// that is boolean (true: attend) or added to the scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AttentionMask {
    None,
    Causal,
    Allow,
    Additive,
}

/// Where a rope node's positions start: a constant, a 0-d int64 input shared by every row,
/// or a `(B,)` int64 input giving batch row b (x's first axis) its own offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RopeOffsetKind {
    Fixed(usize),
    Scalar,
    PerBatch,
}

/// One step of a fused program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FusedOp {
    Unary(UnaryOp),
    Binary(BinaryOp),
}

/// The body of an `Op::Fused` node. Values are numbered: the node's `n` inputs are 0..n, and
/// instruction k defines value n + k from earlier values.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FusedProgram {
    pub instrs: Vec<FusedInstr>,
    /// The value each node output takes.
    pub outputs: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FusedInstr {
    pub op: FusedOp,
    pub args: Vec<usize>,
}

impl FusedProgram {
    /// Checks the program is well formed for `n_inputs` inputs: every argument an earlier
    /// value, arities right, only float ops that keep the dtype, outputs in range.
    pub fn validate(&self, n_inputs: usize) -> crate::Result<()> {
        let bad = |why: String| Err(crate::Error::invalid("fused", why));
        for (k, ins) in self.instrs.iter().enumerate() {
            let defined = n_inputs + k;
            let arity = match ins.op {
                FusedOp::Unary(u) if u.fusable() => 1,
                FusedOp::Binary(b) if b.fusable() => 2,
                op => return bad(format!("instruction {k}: {op:?} cannot be fused")),
            };
            if ins.args.len() != arity {
                return bad(format!(
                    "instruction {k}: {:?} takes {arity} arguments, got {}",
                    ins.op,
                    ins.args.len()
                ));
            }
            if let Some(a) = ins.args.iter().find(|&&a| a >= defined) {
                return bad(format!(
                    "instruction {k} reads value {a}, only {defined} are defined before it"
                ));
            }
        }
        let total = n_inputs + self.instrs.len();
        if self.outputs.is_empty() {
            return bad("the program has no outputs".into());
        }
        if let Some(o) = self.outputs.iter().find(|&&o| o >= total) {
            return bad(format!("output value {o} is out of range ({total} values)"));
        }
        Ok(())
    }
}

impl UnaryOp {
    /// Float-to-float ops the fused CPU kernel runs (same dtype in and out).
    pub fn fusable(self) -> bool {
        use UnaryOp::*;
        !matches!(
            self,
            LogicalNot
                | BitwiseInvert
                | IsNan
                | IsInf
                | IsFinite
                | SignBit
                | StopGradient
                | Real
                | Imag
                | Conj
                | Angle
        )
    }
}

impl BinaryOp {
    /// Float-to-float ops the fused CPU kernel runs.
    pub fn fusable(self) -> bool {
        use BinaryOp::*;
        !self.returns_bool()
            && !matches!(
                self,
                BitwiseAnd | BitwiseOr | BitwiseXor | LeftShift | RightShift
            )
    }
}

impl Op {
    /// A short name for errors and the profiler.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Arange { .. } => "arange",
            Op::Unary(_) => "unary",
            Op::Binary(_) => "binary",
            Op::Select => "where",
            Op::AsType(_) => "astype",
            Op::Reshape => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::Slice { .. } => "slice",
            Op::Broadcast => "broadcast_to",
            Op::Diagonal { .. } => "diagonal",
            Op::ViewDtype(_) => "view",
            Op::Copy => "copy",
            Op::Reduce { .. } => "reduce",
            Op::ArgReduce { .. } => "arg_reduce",
            Op::Scan { .. } => "scan",
            Op::Concatenate { .. } => "concatenate",
            Op::Pad { .. } => "pad",
            Op::Take { .. } => "take",
            Op::TakeAlongAxis { .. } => "take_along_axis",
            Op::PutAlongAxis { .. } => "put_along_axis",
            Op::Gather { .. } => "gather",
            Op::Scatter { .. } => "scatter",
            Op::SliceUpdate { .. } => "slice_update",
            Op::Sort { .. } => "sort",
            Op::ArgSort { .. } => "argsort",
            Op::Partition { .. } => "partition",
            Op::ArgPartition { .. } => "argpartition",
            Op::SearchSorted { .. } => "searchsorted",
            Op::Matmul => "matmul",
            Op::Cholesky { .. } => "cholesky",
            Op::Inv => "inv",
            Op::LuFactor => "lu_factor",
            Op::Qr => "qr",
            Op::Svd { .. } => "svd",
            Op::Eigh { .. } => "eigh",
            Op::SolveTriangular { .. } => "solve_triangular",
            Op::Solve => "solve",
            Op::Conv { .. } => "conv",
            Op::Pool { .. } => "pool",
            Op::Fft { .. } => "fft",
            Op::Softmax { .. } => "softmax",
            Op::Attention { .. } => "scaled_dot_product_attention",
            Op::AttentionGrad { .. } => "scaled_dot_product_attention_grad",
            Op::GridSample { .. } => "grid_sample",
            Op::CrossEntropy => "softmax_cross_entropy",
            Op::CrossEntropyGrad => "softmax_cross_entropy_grad",
            Op::RmsNorm { .. } => "rms_norm",
            Op::LayerNorm { .. } => "layer_norm",
            Op::Rope { .. } => "rope",
            Op::Hadamard { .. } => "hadamard_transform",
            Op::Linear { .. } => "linear",
            Op::RandomBits => "random_bits",
            Op::Fused { .. } => "fused",
            Op::Custom { .. } => "custom",
            Op::Kernel { .. } => "kernel",
            Op::Collective { kind, .. } => match kind {
                CollectiveKind::Sum => "all_sum",
                CollectiveKind::Max => "all_max",
                CollectiveKind::Min => "all_min",
                CollectiveKind::Gather { .. } => "all_gather",
                CollectiveKind::ScatterSum { .. } => "reduce_scatter",
                CollectiveKind::Broadcast { .. } => "broadcast",
                CollectiveKind::Send { .. } => "send",
                CollectiveKind::Recv { .. } => "recv",
            },
        }
    }
}
