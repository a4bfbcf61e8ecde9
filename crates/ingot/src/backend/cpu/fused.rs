//! The fused elementwise kernel: a program of unary and binary float ops run over tiles of
//! the output small enough to stay in cache, so a chain of n ops reads its inputs and writes
//! its outputs once instead of making n - 1 intermediate arrays.

use super::elementwise::{with_float_binary, with_float_unary, FastMath};
use super::strided::{out_data, rows, View, PAR_MIN};
use super::Outs;
use crate::array::{Array, Data};
use crate::buffer::Buffer;
use crate::op::{FusedOp, FusedProgram};
use crate::shape::{collapse_dims, fmt_shape, size_of};
use crate::{DType, Error, Result};
use rayon::prelude::*;

/// Elements per tile: each live value of the program gets a tile, and a handful of f32
/// tiles stay in L1.
const TILE: usize = 1024;

pub fn eval(program: &FusedProgram, inputs: &[Array], outs: Outs) -> Result<Vec<Data>> {
    program.validate(inputs.len())?;
    let (shape, dtype) = match outs.first() {
        Some((s, d)) => (s.as_slice(), *d),
        None => return Err(Error::invalid("fused", "a fused node needs an output")),
    };
    if outs.len() != program.outputs.len() || outs.iter().any(|(s, d)| s != shape || *d != dtype) {
        return Err(Error::invalid(
            "fused",
            "every output must have the program's shape and dtype",
        ));
    }
    for (i, x) in inputs.iter().enumerate() {
        let fits =
            x.ndim() == shape.len() && x.shape().iter().zip(shape).all(|(&a, &b)| a == b || a == 1);
        if !fits || x.dtype() != dtype {
            return Err(Error::invalid(
                "fused",
                format!(
                    "input {i} is {} {} but the program computes {} {}",
                    fmt_shape(x.shape()),
                    x.dtype(),
                    fmt_shape(shape),
                    dtype
                ),
            ));
        }
    }
    match dtype {
        DType::F32 => run::<f32>(program, inputs, shape),
        DType::F64 => run::<f64>(program, inputs, shape),
        // Each instruction rounds to the half type, as the unfused op would: fused and
        // unfused programs give the same bits; what fusion saves is the memory traffic.
        DType::F16 => run::<half::f16>(program, inputs, shape),
        DType::BF16 => run::<half::bf16>(program, inputs, shape),
        _ => Err(Error::invalid(
            "fused",
            format!("fused programs run on float dtypes, not {dtype}"),
        )),
    }
}

/// How a tile of one input is read.
enum Load<'a, T> {
    /// Row-major and unbroadcast: the tile is a subslice.
    Direct(&'a [T]),
    /// One value broadcast everywhere: its tile is filled once per thread.
    Splat(T),
    /// Anything else: gathered row by row.
    Strided {
        view: View<'a, T>,
        shape: Vec<usize>,
        strides: Vec<isize>,
    },
}

fn run<T: FastMath>(
    program: &FusedProgram,
    inputs: &[Array],
    shape: &[usize],
) -> Result<Vec<Data>> {
    // Every op must have a float form before any work starts.
    for ins in &program.instrs {
        let known = match ins.op {
            FusedOp::Unary(u) => with_float_unary!(u, T, _f => true, false),
            FusedOp::Binary(b) => with_float_binary!(b, T, _f => true, false),
        };
        if !known {
            return Err(Error::invalid(
                "fused",
                format!("{:?} has no {} form", ins.op, T::DTYPE),
            ));
        }
    }
    let n = size_of(shape);
    let datas: Vec<Data> = inputs.iter().map(|x| x.ready_data()).collect();
    let loads: Vec<Load<T>> = inputs
        .iter()
        .zip(&datas)
        .map(|(x, d)| {
            let view = View::<T>::new(d, x.shape(), shape);
            if let Some(s) = view.contiguous(shape) {
                Load::Direct(s)
            } else if view.strides.iter().all(|&s| s == 0) {
                Load::Splat(view.data[view.offset as usize])
            } else {
                let (cs, st) = collapse_dims(shape, &[&view.strides]);
                Load::Strided {
                    view,
                    shape: cs,
                    strides: st.into_iter().next().unwrap_or_default(),
                }
            }
        })
        .collect();
    let mut bufs: Vec<Buffer> = program
        .outputs
        .iter()
        .map(|_| Buffer::uninit(n * std::mem::size_of::<T>()))
        .collect::<Result<_>>()?;
    // Each output address is written by exactly one tile, so tiles may run in parallel.
    let outs: Vec<usize> = bufs
        .iter_mut()
        .map(|b| b.as_slice_mut::<T>().as_mut_ptr() as usize)
        .collect();
    let (slot, slots) = assign_slots(program, inputs.len());
    let avx2 = has_avx2();
    let new_scratch = || {
        let mut scratch = vec![T::zero(); slots * TILE];
        for (i, l) in loads.iter().enumerate() {
            if let Load::Splat(v) = l {
                scratch[i * TILE..(i + 1) * TILE].fill(*v);
            }
        }
        scratch
    };
    let run_span = |scratch: &mut Vec<T>, start: usize, end: usize| {
        let mut s = start;
        while s < end {
            let len = TILE.min(end - s);
            run_tile(program, &loads, &slot, scratch, &outs, (s, len), avx2);
            s += len;
        }
    };
    if n < PAR_MIN {
        run_span(&mut new_scratch(), 0, n);
    } else {
        let threads = rayon::current_num_threads().max(1);
        let span = (n / (threads * 4)).max(PAR_MIN / 2).next_multiple_of(TILE);
        (0..n.div_ceil(span))
            .into_par_iter()
            .for_each_init(new_scratch, |scratch, c| {
                run_span(scratch, c * span, ((c + 1) * span).min(n))
            });
    }
    Ok(bufs.into_iter().map(|b| out_data(b, shape)).collect())
}

/// Where each value of a tile lives: an input's own scratch tile (`Slot::Scratch(i)`), a
/// result's tile, shared with other results once the values it held were read for the last
/// time (so the live tiles of a long chain stay in L1), or output buffer `k`
/// (`Slot::Out(k)`) for a result the program returns, written there directly. A result
/// never shares a tile with its own arguments. Returns the places and the scratch tiles.
fn assign_slots(program: &FusedProgram, n_in: usize) -> (Vec<Slot>, usize) {
    let n = n_in + program.instrs.len();
    let mut last_use = vec![0usize; n];
    for (k, ins) in program.instrs.iter().enumerate() {
        for &a in &ins.args {
            last_use[a] = k;
        }
    }
    let mut slot: Vec<Slot> = (0..n_in).map(Slot::Scratch).collect();
    let (mut free, mut used) = (Vec::new(), n_in);
    for (k, ins) in program.instrs.iter().enumerate() {
        let v = n_in + k;
        if let Some(o) = program.outputs.iter().position(|&o| o == v) {
            slot.push(Slot::Out(o));
        } else {
            slot.push(Slot::Scratch(free.pop().unwrap_or_else(|| {
                used += 1;
                used - 1
            })));
        }
        for (j, &a) in ins.args.iter().enumerate() {
            if let Slot::Scratch(t) = slot[a] {
                if a >= n_in && last_use[a] == k && !ins.args[..j].contains(&a) {
                    free.push(t);
                }
            }
        }
    }
    (slot, used)
}

#[derive(Clone, Copy)]
enum Slot {
    Scratch(usize),
    Out(usize),
}

/// Does this CPU have AVX2 and FMA (for the per-op loops)?
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

// Each op's loop is its own small function, one instance per element function, so the
// element function inlines and the loop vectorizes (inside one large tile function the
// optimizer called them through pointers, one element at a time).
#[inline(always)]
fn loop1<T: Copy, F: Fn(T) -> T>(x: &[T], out: &mut [T], f: F) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f(v);
    }
}

#[inline(always)]
fn loop2<T: Copy, F: Fn(T, T) -> T>(x: &[T], y: &[T], out: &mut [T], f: F) {
    for ((o, &p), &q) in out.iter_mut().zip(x).zip(y) {
        *o = f(p, q);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn loop1_avx2<T: Copy, F: Fn(T) -> T>(x: &[T], out: &mut [T], f: F) {
    loop1(x, out, f)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn loop2_avx2<T: Copy, F: Fn(T, T) -> T>(x: &[T], y: &[T], out: &mut [T], f: F) {
    loop2(x, y, out, f)
}

#[inline(never)]
fn apply1<T: Copy, F: Fn(T) -> T>(avx2: bool, x: &[T], out: &mut [T], f: F) {
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // Safety: the caller checked that the CPU has AVX2 and FMA.
        return unsafe { loop1_avx2(x, out, f) };
    }
    let _ = avx2;
    loop1(x, out, f)
}

#[inline(never)]
fn apply2<T: Copy, F: Fn(T, T) -> T>(avx2: bool, x: &[T], y: &[T], out: &mut [T], f: F) {
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // Safety: the caller checked that the CPU has AVX2 and FMA.
        return unsafe { loop2_avx2(x, y, out, f) };
    }
    let _ = avx2;
    loop2(x, y, out, f)
}

fn run_tile<T: FastMath>(
    program: &FusedProgram,
    loads: &[Load<T>],
    slot: &[Slot],
    scratch: &mut [T],
    outs: &[usize],
    (start, len): (usize, usize),
    avx2: bool,
) {
    let n_in = loads.len();
    for (i, l) in loads.iter().enumerate() {
        if let Load::Strided {
            view,
            shape,
            strides,
        } = l
        {
            let tile = &mut scratch[i * TILE..i * TILE + len];
            let step = strides.last().copied().unwrap_or(0);
            rows::<1>(
                shape,
                [strides],
                [view.offset],
                start,
                len,
                |pos, [o], run| {
                    let dst = &mut tile[pos - start..pos - start + run];
                    for (k, d) in dst.iter_mut().enumerate() {
                        *d = view.data[(o + k as isize * step) as usize];
                    }
                },
            );
        }
    }
    // This tile of every value, as a pointer to `len` elements.
    let base = scratch.as_mut_ptr();
    let place = |v: usize| -> *mut T {
        match (loads.get(v), slot[v]) {
            (Some(Load::Direct(s)), _) => s[start..].as_ptr() as *mut T,
            // Safety: output buffers have n elements and start + len <= n; scratch has a
            // TILE for every slot.
            (_, Slot::Out(k)) => unsafe { (outs[k] as *mut T).add(start) },
            (_, Slot::Scratch(t)) => unsafe { base.add(t * TILE) },
        }
    };
    for (k, ins) in program.instrs.iter().enumerate() {
        // Safety: the result's place is written by this instruction alone and is none of
        // its arguments' places (assign_slots), and the tile of an output buffer is this
        // tile's alone (tiles are disjoint); arguments are only read.
        let out = unsafe { std::slice::from_raw_parts_mut(place(n_in + k), len) };
        let arg = |a: usize| -> &[T] { unsafe { std::slice::from_raw_parts(place(a), len) } };
        // A broadcast scalar operand is passed as a value, not read from a filled tile.
        let splat = |a: usize| match loads.get(a) {
            Some(Load::Splat(v)) => Some(*v),
            _ => None,
        };
        match ins.op {
            FusedOp::Unary(u) => {
                let x = arg(ins.args[0]);
                with_float_unary!(u, T, f => apply1(avx2, x, out, f), {})
            }
            FusedOp::Binary(b) => {
                let (a0, a1) = (ins.args[0], ins.args[1]);
                match (splat(a0), splat(a1)) {
                    (None, Some(q)) => with_float_binary!(b, T, f => {
                        apply1(avx2, arg(a0), out, move |p| f(p, q))
                    }, {}),
                    (Some(p), None) => with_float_binary!(b, T, f => {
                        apply1(avx2, arg(a1), out, move |q| f(p, q))
                    }, {}),
                    _ => with_float_binary!(b, T, f => {
                        apply2(avx2, arg(a0), arg(a1), out, f)
                    }, {}),
                }
            }
        }
    }
    // Outputs not written in place: an input returned as is, or a value returned twice.
    for (k, (&v, &ptr)) in program.outputs.iter().zip(outs).enumerate() {
        if matches!(slot[v], Slot::Out(j) if j == k) {
            continue;
        }
        // Safety: as above; the source is another buffer or scratch.
        let dst = unsafe { std::slice::from_raw_parts_mut((ptr as *mut T).add(start), len) };
        dst.copy_from_slice(unsafe { std::slice::from_raw_parts(place(v), len) });
    }
}
