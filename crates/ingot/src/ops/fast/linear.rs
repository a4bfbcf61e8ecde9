//! `linear`: `act(x @ w + bias)` as one node. On the GPU it is one cuBLASLt call whose
//! epilogue adds the bias and applies the activation while the product's tile is still in
//! registers (no pass over the output for each), as PyTorch's `addmm` and
//! `_addmm_activation` do; elsewhere the product, then the bias and the activation in one
//! pass over it. Its gradient is ordinary products and a sum.

use super::norm_rope::fmt_sigs;
use crate::array::Array;
use crate::dtype::DType;
use crate::op::{LinearAct, Op};
use crate::shape::fmt_shape;
use crate::{Error, Result};

type Sig = (Vec<usize>, DType);

const OP: &str = "linear";

/// Whether a node of dtype `dt` exists: the kernels cover f16, bf16 and f32 (cuBLASLt's
/// epilogues); other dtypes build the decomposition.
fn fused_dtype(dt: DType) -> bool {
    matches!(dt, DType::F16 | DType::BF16 | DType::F32)
}

/// The output of a linear node on normalized inputs, or why they do not fit it.
pub(crate) fn linear_out(op: &Op, inputs: &[Sig]) -> Result<Sig> {
    let Op::Linear { has_bias, .. } = op else {
        return Err(Error::invalid(OP, "internal: not a linear op"));
    };
    let bad = |why: &str| Error::invalid(OP, format!("{why}: inputs {}", fmt_sigs(inputs)));
    if inputs.len() != 2 + *has_bias as usize {
        return Err(bad(if *has_bias {
            "takes x, w and the bias"
        } else {
            "takes x and w"
        }));
    }
    let ((xs, dt), (ws, wdt)) = (&inputs[0], &inputs[1]);
    if !fused_dtype(*dt) || wdt != dt || inputs.iter().any(|(_, d)| d != dt) {
        return Err(bad(
            "operands must all be float16, bfloat16 or float32 alike",
        ));
    }
    if xs.len() != 2 || ws.len() != 2 || xs[1] != ws[0] {
        return Err(bad("x must be (m, k) and w (k, n)"));
    }
    if *has_bias && inputs[2].0[..] != [ws[1]] {
        return Err(bad("the bias must be (n,)"));
    }
    Ok((vec![xs[0], ws[1]], *dt))
}

/// `act(x @ w + bias)`: x `(..., k)`, w `(k, n)` (a layer's `(n, k)` weight transposed, a
/// view read in place), the optional bias `(n,)`; the result is `(..., n)`. Operands take
/// matmul's dtype promotion and autocast. f16, bf16 and f32 make one node (on the GPU one
/// cuBLASLt call with the bias and activation as its epilogue, rounded once); other
/// dtypes, and k = 0, make the decomposition, [`linear_reference`].
pub fn linear(x: &Array, w: &Array, bias: Option<&Array>, act: LinearAct) -> Result<Array> {
    let (x2, w, b, lead) = operands(x, w, bias)?;
    let dt = x2.dtype();
    // An empty sum (k = 0) is act(bias) on every row: the decomposition says it plainly.
    // On a CUDA default device the node's kernel is cuBLASLt's epilogue: without cuBLASLt
    // (INGOT_CUDA_GEMM=ex), or for a few rows (the matrix-vector kernel's), the
    // decomposition is built instead.
    let cuda_decomposes = matches!(crate::default_device(), crate::Device::Cuda(_))
        && !crate::backend::cuda::blaslt::takes_linear(x2.shape()[0]);
    let y = if fused_dtype(dt) && x2.shape()[1] > 0 && !cuda_decomposes {
        let op = Op::Linear {
            act,
            has_bias: b.is_some(),
        };
        let mut inputs = vec![x2, w];
        inputs.extend(b);
        let sigs: Vec<Sig> = inputs
            .iter()
            .map(|a| (a.shape().to_vec(), a.dtype()))
            .collect();
        let (shape, dtype) = linear_out(&op, &sigs)?;
        Array::from_op(op, inputs, shape, dtype)
    } else {
        reference(&x2, &w, b.as_ref(), act)?
    };
    let mut shape = lead;
    shape.push(y.shape()[1]);
    crate::reshape_to(&y, &shape)
}

/// [`linear`] built from ordinary ops: matmul, add, then the activation (its reference).
pub fn linear_reference(
    x: &Array,
    w: &Array,
    bias: Option<&Array>,
    act: LinearAct,
) -> Result<Array> {
    let (x2, w, b, lead) = operands(x, w, bias)?;
    let y = reference(&x2, &w, b.as_ref(), act)?;
    let mut shape = lead;
    shape.push(y.shape()[1]);
    crate::reshape_to(&y, &shape)
}

/// Checked operands of one dtype: x as rows `(m, k)`, w `(k, n)`, the bias `(n,)`, and x's
/// leading dims.
fn operands(
    x: &Array,
    w: &Array,
    bias: Option<&Array>,
) -> Result<(Array, Array, Option<Array>, Vec<usize>)> {
    let bad = |why: &str| {
        let b = bias.map_or(String::new(), |b| {
            format!(", bias {} {}", fmt_shape(b.shape()), b.dtype())
        });
        Error::invalid(
            OP,
            format!(
                "{why}: x {} {}, w {} {}{b}",
                fmt_shape(x.shape()),
                x.dtype(),
                fmt_shape(w.shape()),
                w.dtype()
            ),
        )
    };
    if x.ndim() == 0 || w.ndim() != 2 {
        return Err(bad("x must have a feature axis (the last) and w be (k, n)"));
    }
    let (k, n) = (w.shape()[0], w.shape()[1]);
    if x.shape()[x.ndim() - 1] != k {
        return Err(bad("x's last axis must match w's rows"));
    }
    if bias.is_some_and(|b| b.shape() != [n]) {
        return Err(bad("the bias must be (n,), one value per output feature"));
    }
    let low = |a: &Array| crate::amp::low(a);
    let (xl, wl) = (low(x)?, low(w)?);
    let mut dt = crate::promote_types(xl.dtype(), wl.dtype());
    if let Some(b) = bias {
        dt = crate::promote_types(dt, low(b)?.dtype());
    }
    if !dt.is_float() {
        return Err(bad("operands must be floating"));
    }
    let cast = |a: &Array| crate::astype(a, dt);
    let lead = x.shape()[..x.ndim() - 1].to_vec();
    let m = lead.iter().product::<usize>();
    let x2 = crate::reshape_to(&cast(&xl)?, &[m, k])?;
    let b = bias.map(|b| cast(&low(b)?)).transpose()?;
    Ok((x2, cast(&wl)?, b, lead))
}

/// The decomposition on normalized operands.
fn reference(x: &Array, w: &Array, b: Option<&Array>, act: LinearAct) -> Result<Array> {
    let mut y = crate::matmul(x, w)?;
    if let Some(b) = b {
        y = crate::add(&y, b)?;
    }
    apply_act(&y, act)
}

/// `act(z)` from ordinary ops.
pub(crate) fn apply_act(z: &Array, act: LinearAct) -> Result<Array> {
    match act {
        LinearAct::None => Ok(z.clone()),
        LinearAct::Relu => crate::maximum(z, 0.0),
        LinearAct::GeluTanh => {
            let z3 = crate::multiply(&crate::square(z)?, z)?;
            let inner = crate::multiply(&crate::add(z, &crate::multiply(&z3, GELU_A)?)?, GELU_C)?;
            let t = crate::add(&crate::tanh(&inner)?, 1.0)?;
            crate::multiply(&crate::multiply(z, 0.5)?, &t)
        }
    }
}

/// The tanh approximation's constants: sqrt(2/pi) and the cubic's coefficient.
pub(crate) mod consts {
    pub(crate) const GELU_C: f64 = 0.797_884_560_802_865_4;
    pub(crate) const GELU_A: f64 = 0.044_715;
}
use consts::{GELU_A, GELU_C};

/// The decomposition of a linear node on its normalized inputs (for vmap).
pub(crate) fn linear_reference_of(op: &Op, inputs: &[Array]) -> Result<Array> {
    let Op::Linear { act, has_bias } = op else {
        return Err(Error::invalid(OP, "internal: not a linear op"));
    };
    crate::amp::with(None, || {
        reference(&inputs[0], &inputs[1], has_bias.then(|| &inputs[2]), *act)
    })
}

/// The gradients of a linear node `y = act(z)`, `z = x w + b`, against its cotangent `g`:
/// `gz` is g through the activation (ReLU's from y itself; GELU's needs z, one more
/// product of x and w, as a linear node without the activation), then `x`'s is `gz w^T`,
/// `w`'s `x^T gz` and the bias's the column sums of `gz` (in f32 for half dtypes).
pub(crate) fn linear_grads(
    act: LinearAct,
    inputs: &[Array],
    y: &Array,
    g: &Array,
    needs: &[bool],
) -> Result<Vec<Option<Array>>> {
    let (x, w) = (&inputs[0], &inputs[1]);
    let gz = match act {
        LinearAct::None => g.clone(),
        LinearAct::Relu => crate::where_(&crate::greater(y, 0.0)?, g, 0.0)?,
        LinearAct::GeluTanh => {
            let has_bias = inputs.len() == 3;
            let z = Array::from_op(
                Op::Linear {
                    act: LinearAct::None,
                    has_bias,
                },
                inputs.to_vec(),
                y.shape().to_vec(),
                y.dtype(),
            );
            crate::multiply(g, &gelu_tanh_grad(&z)?)?
        }
    };
    let mt = |a: &Array| crate::transpose(a, None);
    let mut out = vec![
        needs[0].then(|| crate::matmul(&gz, &mt(w)?)).transpose()?,
        needs[1].then(|| crate::matmul(&mt(x)?, &gz)).transpose()?,
    ];
    if inputs.len() == 3 {
        out.push(
            needs[2]
                .then(|| {
                    let cdt = super::compute_dtype(gz.dtype());
                    let s = crate::sum(&crate::astype(&gz, cdt)?, Some(&[0]), false)?;
                    crate::astype(&s, gz.dtype())
                })
                .transpose()?,
        );
    }
    Ok(out)
}

/// d/dz of the tanh-approximated GELU: `0.5 (1 + t) + 0.5 z (1 - t^2) c (1 + 3 a z^2)` with
/// `t = tanh(c (z + a z^3))`.
fn gelu_tanh_grad(z: &Array) -> Result<Array> {
    let z2 = crate::square(z)?;
    let inner = crate::multiply(
        &crate::multiply(z, &crate::add(&crate::multiply(&z2, GELU_A)?, 1.0)?)?,
        GELU_C,
    )?;
    let t = crate::tanh(&inner)?;
    let left = crate::multiply(&crate::add(&t, 1.0)?, 0.5)?;
    let sech2 = crate::subtract(1.0, &crate::square(&t)?)?;
    let dinner = crate::multiply(
        &crate::add(&crate::multiply(&z2, 3.0 * GELU_A)?, 1.0)?,
        GELU_C,
    )?;
    let right = crate::multiply(
        &crate::multiply(&crate::multiply(z, 0.5)?, &sech2)?,
        &dinner,
    )?;
    crate::add(&left, &right)
}
