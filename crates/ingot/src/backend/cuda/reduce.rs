//! Reductions (sum, prod, max, min, all, any) over any axes, with the CPU's accumulator
//! types: integers and bools sum in 64 bits (wrapping), f16/bf16 in f32, max/min propagate
//! NaN. Work is split across blocks when there are too few outputs to fill the GPU.

use super::elementwise::{collapse, ctype, KShape, KStrides, COMMON, FUNCS};
use super::{Args, Gpu};
use crate::array::{Array, Data};
use crate::backend::cpu::strided::out_data;
use crate::backend::cpu::Outs;
use crate::buffer::Buffer;
use crate::dtype::{DType, Kind};
use crate::op::{Op, ReduceKind};
use crate::shape::size_of;
use crate::Result;

const REDUCE: &str = include_str!("kernels/reduce.cuh");

/// (ACC, INIT, FOLD, COMB, FIN) for `kind` on input `ti` with output `to`.
pub(super) fn recipe(kind: ReduceKind, ti: DType, to: DType) -> Option<[String; 5]> {
    if ti == DType::C64 {
        // complex sums and products in complex64, with the CPU's complex arithmetic.
        let (init, op) = match kind {
            ReduceKind::Sum => ("cx(0.f, 0.f)", "c_add"),
            ReduceKind::Prod => ("cx(1.f, 0.f)", "c_mul"),
            _ => return None,
        };
        if to != DType::C64 {
            return None;
        }
        return Some([
            "c64".into(),
            init.into(),
            format!("{op}(a, X_)"),
            format!("{op}(a, b)"),
            "a".into(),
        ]);
    }
    let t = ctype(ti);
    let o = ctype(to);
    let float = ti.kind() == Kind::Float;
    let acc = match ti {
        DType::F16 | DType::BF16 | DType::F32 => "float",
        DType::F64 => "double",
        DType::U8 | DType::U16 | DType::U32 | DType::U64 => "u64",
        _ => "i64",
    };
    let s = |x: &str| x.to_string();
    Some(match kind {
        ReduceKind::Sum | ReduceKind::Prod => {
            let (init, op) = match (kind, float) {
                (ReduceKind::Sum, true) => ("0", "+"),
                (ReduceKind::Sum, false) => ("0", "w_add"),
                (_, true) => ("1", "*"),
                (_, false) => ("1", "w_mul"),
            };
            let f = |a: &str, b: &str| {
                if float {
                    format!("(({a}) {op} ({b}))")
                } else {
                    format!("{op}<{acc}>(({a}), ({b}))")
                }
            };
            [
                s(acc),
                format!("(({acc}){init})"),
                f("a", &format!("({acc})ld<{t}>(X_)")),
                f("a", "b"),
                format!("st<{o}>((typename Ct<{o}>::type)(a))"),
            ]
        }
        ReduceKind::Max | ReduceKind::Min => {
            let c = match ti {
                DType::F16 | DType::BF16 => "float",
                DType::Bool => "bool",
                _ => t,
            };
            let inf = if ti == DType::F64 {
                "__longlong_as_double(0x7ff0000000000000ll)"
            } else {
                "__int_as_float(0x7f800000)"
            };
            let (lo, cmp) = match (kind, ti.kind()) {
                (ReduceKind::Max, Kind::Float) => (format!("-{inf}"), ">"),
                (ReduceKind::Min, Kind::Float) => (s(inf), "<"),
                (ReduceKind::Max, Kind::Bool) => (s("false"), ">"),
                (ReduceKind::Min, Kind::Bool) => (s("true"), "<"),
                (ReduceKind::Max, Kind::UInt) => (s("0"), ">"),
                (ReduceKind::Min, Kind::UInt) => (format!("(({t})~0ull)"), "<"),
                (ReduceKind::Max, _) => (
                    format!("(({t})(1ull << ({bits} - 1)))", bits = ti.size() * 8),
                    ">",
                ),
                (_, _) => (
                    format!("(({t})~(1ull << ({bits} - 1)))", bits = ti.size() * 8),
                    "<",
                ),
            };
            [
                s(c),
                format!("(({c}){lo})"),
                format!("pick({c}, a, ld<{t}>(X_), {cmp})"),
                format!("pick({c}, a, b, {cmp})"),
                format!("st<{o}>(a)"),
            ]
        }
        // A 0/1 word with bitwise and/or, not a bool with && and ||: the bool version of
        // the row kernel over contiguous bool elements never finished on an H200 (what in
        // it spun was not found); bitwise folds have no branch and pass.
        ReduceKind::All => [
            s("u32"),
            s("1u"),
            format!("((a) & (u32)(ld<{t}>(X_) != (typename Ct<{t}>::type)0))"),
            s("((a) & (b))"),
            format!("st<{o}>((a) != 0u)"),
        ],
        ReduceKind::Any => [
            s("u32"),
            s("0u"),
            format!("((a) | (u32)(ld<{t}>(X_) != (typename Ct<{t}>::type)0))"),
            s("((a) | (b))"),
            format!("st<{o}>((a) != 0u)"),
        ],
    })
}

fn kernel_base(kind: ReduceKind, ti: DType, to: DType) -> String {
    format!(
        "red_{}_{}_{}",
        format!("{kind:?}").to_lowercase(),
        ctype(ti),
        ctype(to),
    )
}

/// The start of a reduction-like module: the prelude, the NaN-propagating `pick`, and the
/// recipe as macros TI, TO, ACC, INIT, FOLD, COMB, FIN, with kernels named `{base}_k`.
pub(super) fn recipe_defines(base: &str, ti: DType, to: DType, r: [&str; 5]) -> String {
    let [acc, init, fold, comb, fin] = r;
    format!(
        "{COMMON}\n{FUNCS}\n#define pick(C, a, b, op) ([&](C p, C q) {{ return (q op p || q != q) ? q : p; }}((a), (b)))\n\
         #define TI {t}\n#define TO {o}\n#define ACC {acc}\n#define INIT {init}\n\
         #define FOLD(a, X_) {fold}\n#define COMB(a, b) {comb}\n#define FIN(a) {fin}\n\
         #define KNAME(k) {base}_##k\n",
        t = ctype(ti),
        o = ctype(to),
    )
}

/// The module holding kernels `{base}_row`, `{base}_rowc`, `{base}_roww`, `{base}_col` and
/// `{base}_fin`.
fn reduce_source(base: &str, ti: DType, to: DType, r: [&str; 5]) -> String {
    // Reduced positions along one collapsed dim are a multiply, not a division per element
    // (a uniform branch: one module serves both).
    let roff = "(rs.nd == 1 ? (r) * rst.st[0] : offset_of<long long>((r), rs, rst))";
    format!(
        "{}#define ROFF(r) {roff}\n{REDUCE}\n",
        recipe_defines(base, ti, to, r)
    )
}

/// Reduction modules of every kind for a sample of dtypes, for the compile check.
pub(crate) fn sample_sources() -> Vec<(String, String)> {
    use crate::dtype::DType::*;
    let mut v = Vec::new();
    for kind in [
        ReduceKind::Sum,
        ReduceKind::Prod,
        ReduceKind::Max,
        ReduceKind::Min,
        ReduceKind::All,
        ReduceKind::Any,
    ] {
        for ti in [Bool, U8, I32, I64, F16, BF16, F32, F64, C64] {
            let to = match kind {
                ReduceKind::Sum | ReduceKind::Prod => crate::backend::cpu::reduce::sum_dtype(ti),
                ReduceKind::Max | ReduceKind::Min => ti,
                _ => Bool,
            };
            if let Some(r) = recipe(kind, ti, to) {
                let base = kernel_base(kind, ti, to);
                let [a, b, c, d, e] = &r;
                let src = reduce_source(&base, ti, to, [a, b, c, d, e]);
                v.push((base, src));
            }
        }
    }
    v
}

pub(super) fn eval(g: &Gpu, op: &Op, inputs: &[Array], outs: Outs) -> Result<Option<Vec<Data>>> {
    let Op::Reduce { kind, axes } = op else {
        return Ok(None);
    };
    let x = &inputs[0];
    let (out_shape, to) = (&outs[0].0, outs[0].1);
    let ti = x.dtype();
    let Some([acc, init, fold, comb, fin]) = recipe(*kind, ti, to) else {
        return Ok(None);
    };
    let d = x.ready_data();
    let shape = x.shape();
    let kdims: Vec<usize> = (0..shape.len()).filter(|i| !axes.contains(i)).collect();
    let kshape: Vec<usize> = kdims.iter().map(|&i| shape[i]).collect();
    let kst: Vec<isize> = kdims.iter().map(|&i| d.strides[i]).collect();
    let rshape: Vec<usize> = axes.iter().map(|&i| shape[i]).collect();
    let rst: Vec<isize> = axes.iter().map(|&i| d.strides[i]).collect();
    let nout = size_of(&kshape);
    let nred = size_of(&rshape);
    let mem = g.alloc(nout * to.size())?;
    let result = |mem| Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]));
    if nout == 0 {
        return result(mem);
    }
    let (Some((kd, ks)), Some((rd, rs))) = (collapse(&kshape, &[kst]), collapse(&rshape, &[rst]))
    else {
        return Ok(None);
    };
    let kern = |dims: &[usize], st: &[isize], off: usize| {
        let mut a = [0i64; 6];
        let mut b = [0i64; 6];
        for (i, (&n, &s)) in dims.iter().zip(st).enumerate() {
            a[i] = n as i64;
            b[i] = s as i64;
        }
        (
            KShape {
                nd: dims.len() as i32,
                dim: a,
            },
            KStrides {
                off: off as i64,
                st: b,
                mode: 0,
            },
        )
    };
    let (kshape_k, kst_k) = kern(&kd, &ks[0], d.offset);
    let (rshape_k, rst_k) = kern(&rd, &rs[0], 0);
    let one = rd.len() == 1;
    // Column mode when the reduced positions are far apart in memory but neighbouring
    // outputs are neighbours.
    let rinner = *rs[0].last().unwrap();
    let kinner = *ks[0].last().unwrap();
    let col = rinner.unsigned_abs() != 1 && kinner.unsigned_abs() == 1 && nout >= 32;
    let sm = g.sm_count as usize;
    let splits = if col {
        let blocks = nout.div_ceil(256);
        (4 * sm).div_ceil(blocks).min(nred.div_ceil(64)).max(1)
    } else {
        (4 * sm).div_ceil(nout).min(nred.div_ceil(2048)).max(1)
    };
    let base = kernel_base(*kind, ti, to);
    let src = || reduce_source(&base, ti, to, [&acc, &init, &fold, &comb, &fin]);
    let part = if splits > 1 {
        Some(g.alloc(nout * splits * 8)?)
    } else {
        None
    };
    let part_ptr = part.as_ref().map_or(0, |p| p.ptr());
    let xptr = d.buffer.device_ptr(g.ordinal)?;
    let mut args = Args::new();
    args.push(mem.ptr())
        .push(part_ptr)
        .push(xptr)
        .push(nout as i64)
        .push(nred as i64)
        .push(splits as i32)
        .push(kshape_k)
        .push(kst_k)
        .push(rshape_k)
        .push(rst_k);
    // Column mode: a thread per output. Many short consecutive runs: a warp each (8 per
    // block), when that gives enough warps to fill every SM. Otherwise a block per output,
    // vectorized when the reduced positions are consecutive.
    let (which, blocks) = if col {
        ("col", nout.div_ceil(256))
    } else if one && rinner == 1 && nout * splits >= 8 * sm && nred / splits <= 1 << 16 {
        ("roww", nout.div_ceil(8))
    } else if one && rinner == 1 {
        ("rowc", nout)
    } else {
        ("row", nout)
    };
    let f = g.kernel_in(&base, &format!("{base}_{which}"), src)?;
    g.launch(&f, (blocks as u32, splits as u32, 1), (256, 1, 1), 0, &args)?;
    if splits > 1 {
        // A warp per output.
        let f = g.kernel_in(&base, &format!("{base}_fin"), src)?;
        let mut args = Args::new();
        args.push(mem.ptr())
            .push(part_ptr)
            .push(nout as i64)
            .push(splits as i32);
        g.launch_1d(&f, nout * 32, &args)?;
    }
    // `part` is freed into the cache here; later work on the stream runs after the kernels.
    drop(part);
    result(mem)
}
