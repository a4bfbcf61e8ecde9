//! Indexing ops against plain f64 references: take, take_along_axis, put_along_axis, gather,
//! scatter (every kind), slice_update (every kind, donation), nonzero, argwhere,
//! boolean_mask. Every dtype, contiguous and strided layouts, empty and 0-d shapes, index
//! arrays of several integer dtypes with negative entries, repeated indices, the parallel
//! paths (large inputs), and the exact error messages.

mod common;
use common::*;
use ingot::op::ScatterKind;
use ingot::{Array, DType, SliceArg};

const ALL: [DType; 14] = DType::ALL;
const IDX_DTYPES: [DType; 6] = [
    DType::I64,
    DType::I32,
    DType::I8,
    DType::U8,
    DType::U64,
    DType::I16,
];

fn prod(s: &[usize]) -> usize {
    s.iter().product()
}

fn wrap(i: i64, n: usize) -> usize {
    let r = if i < 0 { i + n as i64 } else { i };
    assert!(
        r >= 0 && (r as usize) < n,
        "reference: bad index {i} for {n}"
    );
    r as usize
}

/// Row-major coordinates of flat position `p` in `shape`.
fn unravel(mut p: usize, shape: &[usize]) -> Vec<usize> {
    let mut c = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        c[d] = p % shape[d];
        p /= shape[d];
    }
    c
}
fn ravel(c: &[usize], shape: &[usize]) -> usize {
    c.iter().zip(shape).fold(0, |acc, (&i, &n)| acc * n + i)
}

/// Random valid indices in [-n, n) (or [0, n) for unsigned dtypes), as i64.
fn rand_idx(rng: &mut Rng, count: usize, n: usize, dtype: DType) -> Vec<i64> {
    (0..count)
        .map(|_| {
            let v = rng.below(n as u64) as i64;
            if dtype.is_signed() && rng.below(2) == 1 && (n as i64) <= 128 {
                v - n as i64
            } else {
                v
            }
        })
        .collect()
}

fn idx_array(v: &[i64], shape: &[usize], dtype: DType) -> Array {
    let f: Vec<f64> = v.iter().map(|&x| x as f64).collect();
    array_from_f64(&f, shape, dtype)
}
fn idx_strided(v: &[i64], shape: &[usize], dtype: DType) -> Array {
    let f: Vec<f64> = v.iter().map(|&x| x as f64).collect();
    noncontiguous(&f, shape, dtype)
}

fn vals_of(a: &Array) -> Vec<f64> {
    a.to_f64_vec().unwrap()
}

fn exact(got: &[f64], want: &[f64], what: &str) {
    assert_close(got, want, 0.0, 0.0, what);
}

fn err(r: ingot::Result<Array>) -> String {
    match r {
        Ok(a) => match a.eval() {
            Ok(()) => panic!("expected an error, got {a:?}"),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

/// Layouts of the same values: contiguous, stepped, transposed.
fn layouts(vals: &[f64], shape: &[usize], dtype: DType) -> Vec<(&'static str, Array)> {
    vec![
        ("contiguous", array_from_f64(vals, shape, dtype)),
        ("stepped", noncontiguous(vals, shape, dtype)),
        ("transposed", transposed(vals, shape, dtype)),
    ]
}

// ---- take --------------------------------------------------------------------------------

fn ref_take(a: &[f64], ashape: &[usize], idx: &[i64], axis: usize) -> Vec<f64> {
    let n = ashape[axis];
    let outer = prod(&ashape[..axis]);
    let inner = prod(&ashape[axis + 1..]);
    let mut out = Vec::new();
    for o in 0..outer {
        for &i in idx {
            let k = wrap(i, n);
            for c in 0..inner {
                out.push(a[(o * n + k) * inner + c]);
            }
        }
    }
    out
}

#[test]
fn take_matches_reference() {
    let mut rng = Rng::new(11);
    let cases: Vec<(Vec<usize>, Vec<usize>, Option<isize>)> = vec![
        (vec![7], vec![5], Some(0)),
        (vec![7], vec![], Some(0)),
        (vec![3, 4], vec![2, 3], Some(1)),
        (vec![3, 4], vec![6], Some(-2)),
        (vec![2, 3, 5], vec![4], Some(1)),
        (vec![2, 3, 5], vec![2, 2], None),
        (vec![2, 0, 3], vec![3], Some(0)),
        (vec![3, 4], vec![0], Some(0)),
        (vec![], vec![3], None),
        (vec![65, 33], vec![9, 2], Some(0)),
    ];
    for dtype in ALL {
        for (ashape, ishape, axis) in &cases {
            let (_, vals) = rand_array(&mut rng, ashape, dtype);
            let (fl_shape, ax) = match axis {
                None => (vec![prod(ashape)], 0),
                Some(a) => (ashape.clone(), a.rem_euclid(ashape.len() as isize) as usize),
            };
            let n = fl_shape[ax];
            for idt in [IDX_DTYPES[rng.below(6) as usize], DType::I32] {
                let iv = if n == 0 {
                    vec![]
                } else {
                    rand_idx(&mut rng, prod(ishape), n, idt)
                };
                if n == 0 && prod(ishape) > 0 {
                    continue;
                }
                let want = ref_take(&vals, &fl_shape, &iv, ax);
                let mut want_shape = fl_shape[..ax].to_vec();
                want_shape.extend_from_slice(ishape);
                want_shape.extend_from_slice(&fl_shape[ax + 1..]);
                for (layout, a) in layouts(&vals, ashape, dtype) {
                    for idx in [idx_array(&iv, ishape, idt), idx_strided(&iv, ishape, idt)] {
                        let out = ingot::take(&a, &idx, *axis).unwrap();
                        assert_eq!(out.shape(), want_shape.as_slice());
                        assert_eq!(out.dtype(), dtype);
                        exact(
                            &vals_of(&out),
                            &want,
                            &format!("take {dtype} {ashape:?} {ishape:?} {axis:?} {idt} {layout}"),
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn take_0d_index_and_large_parallel() {
    // A 0-d index removes the axis.
    let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    let r = ingot::take(&a, &Array::scalar(-1i32), Some(1)).unwrap();
    assert_eq!(r.shape(), &[2]);
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![3.0, 6.0]);
    // Embedding-style lookup large enough for the threaded path, rows copied whole, and
    // along the last axis (rows of one element).
    let mut rng = Rng::new(5);
    let (v, d) = (500, 96);
    let (table, tv) = rand_array(&mut rng, &[v, d], DType::F32);
    let iv = rand_idx(&mut rng, 700, v, DType::I64);
    let idx = idx_array(&iv, &[7, 100], DType::I64);
    let out = ingot::take(&table, &idx, Some(0)).unwrap();
    assert_eq!(out.shape(), &[7, 100, d]);
    exact(&vals_of(&out), &ref_take(&tv, &[v, d], &iv, 0), "embedding");
    let iv2 = rand_idx(&mut rng, 400, d, DType::I64);
    let out = ingot::take(&table, &idx_array(&iv2, &[400], DType::I64), Some(1)).unwrap();
    exact(
        &vals_of(&out),
        &ref_take(&tv, &[v, d], &iv2, 1),
        "last axis",
    );
}

#[test]
fn take_errors() {
    let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    let i = Array::from_slice(&[0i32, 3], &[2]).unwrap();
    assert_eq!(
        err(ingot::take(&a, &i, Some(1))),
        "[take] index 3 is out of bounds for axis 1 with size 3"
    );
    let i = Array::from_slice(&[-3i64], &[1]).unwrap();
    assert_eq!(
        err(ingot::take(&a, &i, Some(0))),
        "[take] index -3 is out of bounds for axis 0 with size 2"
    );
    let i = Array::from_slice(&[u64::MAX], &[1]).unwrap();
    assert_eq!(
        err(ingot::take(&a, &i, None)),
        "[take] index 9223372036854775807 is out of bounds for axis 0 with size 6"
    );
    let b = Array::from_slice(&[true, false], &[2]).unwrap();
    assert_eq!(
        err(ingot::take(&a, &b, Some(0))),
        "[take] indices must be an integer array, got bool of shape (2,)"
    );
    let f = Array::from_slice(&[0.0f32], &[1]).unwrap();
    assert_eq!(
        err(ingot::take(&a, &f, Some(0))),
        "[take] indices must be an integer array, got float32 of shape (1,)"
    );
    let i = Array::from_slice(&[0i32], &[1]).unwrap();
    assert_eq!(
        err(ingot::take(&a, &i, Some(2))),
        "[take] axis 2 is out of bounds for an array of dimension 2"
    );
    let e = ingot::zeros(&[0, 3], DType::F32).unwrap();
    assert_eq!(
        err(ingot::take(&e, &i, Some(0))),
        "[take] index 0 is out of bounds for axis 0 with size 0"
    );
}

// ---- take_along_axis / put_along_axis ----------------------------------------------------

/// Reference for the along-axis ops on already broadcast shapes: calls `f(out_pos, a_pos)`.
fn along_pairs(
    ishape: &[usize],
    ashape: &[usize],
    idx: &[i64],
    axis: usize,
    mut f: impl FnMut(usize, usize),
) {
    for p in 0..prod(ishape) {
        let mut c = unravel(p, ishape);
        for d in 0..c.len() {
            if d != axis && ashape[d] == 1 {
                c[d] = 0;
            }
        }
        c[axis] = wrap(idx[p], ashape[axis]);
        f(p, ravel(&c, ashape));
    }
}

#[test]
fn take_along_axis_matches_reference() {
    let mut rng = Rng::new(21);
    // (a shape, indices shape, axis); indices broadcast against a outside the axis.
    let cases: Vec<(Vec<usize>, Vec<usize>, isize)> = vec![
        (vec![7], vec![4], 0),
        (vec![3, 4], vec![3, 6], 1),
        (vec![3, 4], vec![2, 4], 0),
        (vec![3, 4], vec![5, 1], 0),
        (vec![2, 3, 5], vec![2, 3, 2], -1),
        (vec![2, 3, 5], vec![1, 4, 5], 1),
        (vec![2, 0, 3], vec![2, 0, 3], 2),
        (vec![3, 4], vec![3, 0], 1),
        (vec![65, 33], vec![65, 40], 1),
    ];
    for dtype in ALL {
        for (ashape, ishape, axis) in &cases {
            let ax = axis.rem_euclid(ashape.len() as isize) as usize;
            let (_, vals) = rand_array(&mut rng, ashape, dtype);
            let idt = IDX_DTYPES[rng.below(6) as usize];
            let iv = rand_idx(&mut rng, prod(ishape), ashape[ax].max(1), idt);
            // broadcast shapes as NumPy does
            let mut oshape: Vec<usize> = ashape
                .iter()
                .zip(ishape)
                .map(|(&a, &i)| if a == 1 { i } else { a })
                .collect();
            oshape[ax] = ishape[ax];
            let mut want = vec![0.0; prod(&oshape)];
            let ibshape: Vec<usize> = oshape.clone();
            // indices broadcast to oshape
            let ib: Vec<i64> = (0..prod(&ibshape))
                .map(|p| {
                    let mut c = unravel(p, &ibshape);
                    for d in 0..c.len() {
                        if ishape[d] == 1 {
                            c[d] = 0;
                        }
                    }
                    iv[ravel(&c, ishape)]
                })
                .collect();
            along_pairs(&oshape, ashape, &ib, ax, |p, q| want[p] = vals[q]);
            for (layout, a) in layouts(&vals, ashape, dtype) {
                for idx in [idx_array(&iv, ishape, idt), idx_strided(&iv, ishape, idt)] {
                    let out = ingot::take_along_axis(&a, &idx, Some(*axis)).unwrap();
                    assert_eq!(out.shape(), oshape.as_slice());
                    exact(
                        &vals_of(&out),
                        &want,
                        &format!("take_along_axis {dtype} {ashape:?} {ishape:?} {axis} {layout}"),
                    );
                }
            }
        }
    }
    // Large enough for threads, whose chunks start mid-row: along the last and first axis.
    for (ashape, ishape, ax) in [
        ([300, 200], [300, 150], 1usize),
        ([200, 300], [150, 300], 0),
    ] {
        let (a, vals) = rand_array(&mut rng, &ashape, DType::F32);
        let iv = rand_idx(&mut rng, prod(&ishape), ashape[ax], DType::I64);
        let mut want = vec![0.0; prod(&ishape)];
        along_pairs(&ishape, &ashape, &iv, ax, |p, q| want[p] = vals[q]);
        let out =
            ingot::take_along_axis(&a, &idx_array(&iv, &ishape, DType::I64), Some(ax as isize));
        exact(
            &vals_of(&out.unwrap()),
            &want,
            &format!("large take_along_axis {ax}"),
        );
    }
    // axis None: flattened, 1-D indices.
    let a = Array::from_slice(&[1i32, 2, 3, 4, 5, 6], &[2, 3]).unwrap();
    let i = Array::from_slice(&[5i64, -6, 2], &[3]).unwrap();
    let r = ingot::take_along_axis(&a, &i, None).unwrap();
    assert_eq!(r.to_vec::<i32>().unwrap(), vec![6, 1, 3]);
}

#[test]
fn take_along_axis_errors() {
    let a = Array::from_slice(&[1.0f32; 6], &[2, 3]).unwrap();
    let i = Array::from_slice(&[0i32, 1], &[2]).unwrap();
    assert_eq!(
        err(ingot::take_along_axis(&a, &i, Some(1))),
        "[take_along_axis] indices of shape (2,) must have as many dimensions as the array of shape (2, 3)"
    );
    let i = Array::from_slice(&[0i32; 3], &[3, 1]).unwrap();
    assert_eq!(
        err(ingot::take_along_axis(&a, &i, Some(1))),
        "[take_along_axis] indices of shape (3, 1) do not broadcast against the array of shape (2, 3) outside axis 1"
    );
    let i = Array::from_slice(&[0i32, 3], &[2, 1]).unwrap();
    assert_eq!(
        err(ingot::take_along_axis(&a, &i, Some(1))),
        "[take_along_axis] index 3 is out of bounds for axis 1 with size 3"
    );
    let i = Array::from_slice(&[0i32, 1], &[2, 1]).unwrap();
    assert_eq!(
        err(ingot::take_along_axis(&a, &i, None)),
        "[take_along_axis] with axis None the indices must be 1-D, got shape (2, 1)"
    );
}

fn combine(kind: ScatterKind, dtype: DType, o: f64, u: f64) -> f64 {
    let r = match kind {
        ScatterKind::Set => u,
        ScatterKind::Add => {
            if dtype == DType::Bool {
                ((o != 0.0) | (u != 0.0)) as u8 as f64
            } else {
                o + u
            }
        }
        ScatterKind::Prod => o * u,
        ScatterKind::Max => {
            if o.is_nan() || u.is_nan() {
                f64::NAN
            } else {
                o.max(u)
            }
        }
        ScatterKind::Min => {
            if o.is_nan() || u.is_nan() {
                f64::NAN
            } else {
                o.min(u)
            }
        }
    };
    // integers wrap, halves round at every step, as the kernels do
    wrap_to(r, dtype)
}

/// Converts a value to `dtype` with integer wrap-around (NumPy's integer arithmetic).
fn wrap_to(v: f64, dtype: DType) -> f64 {
    if dtype.is_integer() && v.is_finite() {
        let bits = dtype.size() * 8;
        let m = (v as i128).rem_euclid(1i128 << bits);
        let m = if dtype.is_signed() && m >= 1i128 << (bits - 1) {
            m - (1i128 << bits)
        } else {
            m
        };
        return m as f64;
    }
    round_to(v, dtype)
}

fn kind_tol(kind: ScatterKind, dtype: DType) -> f64 {
    match kind {
        ScatterKind::Add | ScatterKind::Prod => tol(dtype) * 4.0,
        _ => 0.0,
    }
}

const KINDS: [ScatterKind; 5] = [
    ScatterKind::Set,
    ScatterKind::Add,
    ScatterKind::Prod,
    ScatterKind::Max,
    ScatterKind::Min,
];

fn kind_ok(kind: ScatterKind, dtype: DType) -> bool {
    !(dtype == DType::C64 && matches!(kind, ScatterKind::Max | ScatterKind::Min))
}

/// Small values so that products stay exact in every dtype.
fn small_values(rng: &mut Rng, n: usize, dtype: DType) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let v = rng.below(5) as f64 - if dtype.is_signed() { 2.0 } else { 0.0 };
            if dtype == DType::Bool {
                (v != 0.0) as u8 as f64
            } else if dtype.is_inexact() {
                v * 0.5
            } else {
                v
            }
        })
        .collect()
}

#[test]
fn put_along_axis_all_kinds_with_duplicates() {
    let mut rng = Rng::new(31);
    let cases: Vec<(Vec<usize>, Vec<usize>, isize)> = vec![
        (vec![7], vec![12], 0),
        (vec![3, 4], vec![3, 6], 1),
        (vec![3, 4], vec![5, 4], 0),
        (vec![3, 4], vec![5, 1], 0),
        (vec![2, 3, 5], vec![2, 3, 7], -1),
        (vec![2, 3, 5], vec![2, 4, 5], 1),
        (vec![64, 600], vec![64, 700], 1),
        (vec![3, 4], vec![0, 4], 0),
    ];
    for dtype in ALL {
        for kind in KINDS {
            if !kind_ok(kind, dtype) {
                continue;
            }
            for (ashape, ishape, axis) in &cases {
                if prod(ashape) > 1000 && !matches!(dtype, DType::F32 | DType::I64) {
                    continue;
                }
                let ax = axis.rem_euclid(ashape.len() as isize) as usize;
                let avals = small_values(&mut rng, prod(ashape), dtype);
                // (int8/uint8 indices cannot address a long axis)
                let idt = if ashape[ax] > 100 {
                    DType::I32
                } else {
                    IDX_DTYPES[rng.below(6) as usize]
                };
                let iv = rand_idx(&mut rng, prod(ishape), ashape[ax], idt);
                // indices broadcast outside the axis: the reference uses the broadcast shape
                let mut tshape = ashape.clone();
                tshape[ax] = ishape[ax];
                let ib: Vec<i64> = (0..prod(&tshape))
                    .map(|p| {
                        let mut c = unravel(p, &tshape);
                        for d in 0..c.len() {
                            if ishape[d] == 1 {
                                c[d] = 0;
                            }
                        }
                        iv[ravel(&c, ishape)]
                    })
                    .collect();
                let uv = small_values(&mut rng, prod(&tshape), dtype);
                let mut want = avals.clone();
                along_pairs(&tshape, ashape, &ib, ax, |p, q| {
                    want[q] = combine(kind, dtype, want[q], uv[p])
                });
                let what = format!("put_along_axis {kind:?} {dtype} {ashape:?} {ishape:?}");
                for (layout, a) in layouts(&avals, ashape, dtype) {
                    let idx = idx_strided(&iv, ishape, idt);
                    let vals = array_from_f64(&uv, &tshape, dtype);
                    let out =
                        ingot::put_along_axis_kind(&a, &idx, &vals, Some(*axis), kind).unwrap();
                    assert_eq!(out.shape(), ashape.as_slice());
                    let t = kind_tol(kind, dtype);
                    assert_close(&vals_of(&out), &want, t, t, &format!("{what} {layout}"));
                    // the input is untouched
                    exact(&vals_of(&a), &avals, &format!("{what} input"));
                }
            }
        }
    }
}

#[test]
fn put_along_axis_set_last_wins_and_scalar_values() {
    let a = Array::from_slice(&[0.0f32; 4], &[4]).unwrap();
    let i = Array::from_slice(&[1i32, 1, 3, 1], &[4]).unwrap();
    let v = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[4]).unwrap();
    let r = ingot::put_along_axis(&a, &i, &v, Some(0)).unwrap();
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![0.0, 4.0, 0.0, 3.0]);
    let r = ingot::put_along_axis_add(&a, &i, &v, Some(0)).unwrap();
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![0.0, 7.0, 0.0, 3.0]);
    // A weak scalar keeps a's dtype; axis None works on the flattened array.
    let a = Array::from_slice(&[1i16, 2, 3, 4, 5, 6], &[2, 3]).unwrap();
    let i = Array::from_slice(&[-1i64, 0], &[2]).unwrap();
    let r = ingot::put_along_axis(&a, &i, 9, None).unwrap();
    assert_eq!(r.shape(), &[2, 3]);
    assert_eq!(r.dtype(), DType::I16);
    assert_eq!(r.to_vec::<i16>().unwrap(), vec![9, 2, 3, 4, 5, 9]);
}

#[test]
fn put_along_axis_errors() {
    let a = Array::from_slice(&[1.0f32; 6], &[2, 3]).unwrap();
    let i = Array::from_slice(&[0i32, 1, 2], &[3, 1]).unwrap();
    assert_eq!(
        err(ingot::put_along_axis(&a, &i, 1.0, Some(1))),
        "[put_along_axis] indices of shape (3, 1) do not broadcast to the array of shape (2, 3) outside axis 1"
    );
    let i = Array::from_slice(&[0i32, 1], &[2, 1]).unwrap();
    let v = Array::from_slice(&[1.0f32; 3], &[3]).unwrap();
    assert_eq!(
        err(ingot::put_along_axis(&a, &i, &v, Some(1))),
        "[put_along_axis] values of shape (3,) cannot be broadcast to the indices' shape (2, 1)"
    );
    let i = Array::from_slice(&[0i32, -4], &[2, 1]).unwrap();
    assert_eq!(
        err(ingot::put_along_axis_add(&a, &i, 1.0, Some(1))),
        "[put_along_axis_add] index -4 is out of bounds for axis 1 with size 3"
    );
    let c = ingot::astype(&a, DType::C64).unwrap();
    let i = Array::from_slice(&[0i32, 1], &[2, 1]).unwrap();
    assert_eq!(
        err(ingot::put_along_axis_kind(
            &c,
            &i,
            1.0,
            Some(1),
            ScatterKind::Max
        )),
        "[put_along_axis_max] not supported for dtype complex64"
    );
}

// ---- gather / scatter --------------------------------------------------------------------

/// Reference gather/scatter walk: for each index tuple b and slice element s, calls
/// `f(b, s_flat, a_flat)`.
fn slice_walk(
    ashape: &[usize],
    idx: &[Vec<i64>],
    axes: &[usize],
    nb: usize,
    sizes: &[usize],
    mut f: impl FnMut(usize, usize, usize),
) {
    for b in 0..nb {
        let mut start = vec![0usize; ashape.len()];
        for (i, &ax) in idx.iter().zip(axes) {
            start[ax] = wrap(i[b], ashape[ax]);
        }
        for s in 0..prod(sizes) {
            let c = unravel(s, sizes);
            let ac: Vec<usize> = c.iter().zip(&start).map(|(&x, &y)| x + y).collect();
            f(b, s, ravel(&ac, ashape));
        }
    }
}

/// Random starts along `ax` leaving room for a slice of `size`.
fn rand_starts(rng: &mut Rng, count: usize, n: usize, size: usize, dtype: DType) -> Vec<i64> {
    (0..count)
        .map(|_| {
            let v = rng.below((n - size + 1) as u64) as i64;
            if dtype.is_signed() && rng.below(2) == 1 {
                v - n as i64
            } else {
                v
            }
        })
        .collect()
}

type GCase = (Vec<usize>, Vec<isize>, Vec<Vec<usize>>, Vec<usize>);

fn gather_cases() -> Vec<GCase> {
    // (a shape, axes, index shapes, slice sizes)
    vec![
        (vec![7], vec![0], vec![vec![5]], vec![1]),
        (vec![7], vec![0], vec![vec![2, 3]], vec![3]),
        (vec![10, 6], vec![0], vec![vec![4]], vec![1, 6]),
        (
            vec![5, 6],
            vec![1, 0],
            vec![vec![4, 1], vec![3]],
            vec![2, 2],
        ),
        (vec![4, 5, 6], vec![-1], vec![vec![3]], vec![2, 1, 1]),
        (
            vec![4, 5, 6],
            vec![0, 2],
            vec![vec![2, 2], vec![2, 2]],
            vec![1, 5, 3],
        ),
        (vec![4, 5], vec![], vec![], vec![2, 3]),
        (vec![4, 5], vec![0], vec![vec![0]], vec![1, 5]),
        (vec![4, 5], vec![0], vec![vec![3]], vec![1, 0]),
        (vec![], vec![], vec![], vec![]),
    ]
}

fn gather_inputs(
    rng: &mut Rng,
    ashape: &[usize],
    axes: &[isize],
    ishapes: &[Vec<usize>],
    sizes: &[usize],
) -> (Vec<usize>, Vec<usize>, Vec<Vec<i64>>, Vec<Array>) {
    let axes: Vec<usize> = axes
        .iter()
        .map(|&a| a.rem_euclid(ashape.len().max(1) as isize) as usize)
        .collect();
    let mut bshape: Vec<usize> = vec![];
    for s in ishapes {
        let n = bshape.len().max(s.len());
        let mut out = vec![1; n];
        for i in 0..n {
            let a = if i + bshape.len() >= n {
                bshape[i + bshape.len() - n]
            } else {
                1
            };
            let b = if i + s.len() >= n {
                s[i + s.len() - n]
            } else {
                1
            };
            out[i] = if a == 1 { b } else { a };
        }
        bshape = out;
    }
    let nb = prod(&bshape);
    let mut full = Vec::new();
    let mut arrays = Vec::new();
    for (s, &ax) in ishapes.iter().zip(&axes) {
        let idt = IDX_DTYPES[rng.below(6) as usize];
        let v = rand_starts(rng, prod(s), ashape[ax], sizes[ax], idt);
        // broadcast to bshape for the reference
        let f: Vec<i64> = (0..nb)
            .map(|p| {
                let c = unravel(p, &bshape);
                let off = bshape.len() - s.len();
                let cc: Vec<usize> = (0..s.len())
                    .map(|d| if s[d] == 1 { 0 } else { c[off + d] })
                    .collect();
                v[ravel(&cc, s)]
            })
            .collect();
        full.push(f);
        arrays.push(idx_strided(&v, s, idt));
    }
    (axes, bshape, full, arrays)
}

#[test]
fn gather_matches_reference() {
    let mut rng = Rng::new(41);
    for dtype in ALL {
        for (ashape, axes, ishapes, sizes) in gather_cases() {
            let (_, vals) = rand_array(&mut rng, &ashape, dtype);
            let (axn, bshape, full, arrays) =
                gather_inputs(&mut rng, &ashape, &axes, &ishapes, &sizes);
            let nb = prod(&bshape);
            let ns = prod(&sizes);
            let mut want = vec![0.0; nb * ns];
            slice_walk(&ashape, &full, &axn, nb, &sizes, |b, s, q| {
                want[b * ns + s] = vals[q]
            });
            let mut oshape = bshape.clone();
            oshape.extend_from_slice(&sizes);
            for (layout, a) in layouts(&vals, &ashape, dtype) {
                let out = ingot::gather(&a, &arrays, &axes, &sizes).unwrap();
                assert_eq!(out.shape(), oshape.as_slice());
                exact(
                    &vals_of(&out),
                    &want,
                    &format!("gather {dtype} {ashape:?} {axes:?} {ishapes:?} {sizes:?} {layout}"),
                );
            }
        }
    }
    // large: rows copied in parallel
    let (a, vals) = rand_array(&mut rng, &[300, 128], DType::F32);
    let iv = rand_idx(&mut rng, 600, 300, DType::I32);
    let out = ingot::gather(&a, &[idx_array(&iv, &[600], DType::I32)], &[0], &[1, 128]).unwrap();
    exact(
        &vals_of(&out),
        &ref_take(&vals, &[300, 128], &iv, 0),
        "gather large",
    );
}

#[test]
fn gather_errors() {
    let a = Array::from_slice(&[1.0f32; 12], &[3, 4]).unwrap();
    let i = Array::from_slice(&[0i32, 2], &[2]).unwrap();
    assert_eq!(
        err(ingot::gather(&a, std::slice::from_ref(&i), &[0], &[2, 4])),
        "[gather] index 2 with slice size 2 runs past the end of axis 0 with size 3"
    );
    assert_eq!(
        err(ingot::gather(&a, std::slice::from_ref(&i), &[0], &[1])),
        "[gather] slice_sizes [1] must have one entry per axis of the array of shape (3, 4)"
    );
    assert_eq!(
        err(ingot::gather(&a, std::slice::from_ref(&i), &[0], &[1, 5])),
        "[gather] slice_sizes (1, 5) is larger than the array of shape (3, 4) on axis 1"
    );
    assert_eq!(
        err(ingot::gather(
            &a,
            std::slice::from_ref(&i),
            &[0, 1],
            &[1, 1]
        )),
        "[gather] got 1 index arrays for 2 axes [0, 1]"
    );
    let j = Array::from_slice(&[0i32, 1, 2], &[3]).unwrap();
    assert_eq!(
        err(ingot::gather(&a, &[i.clone(), j], &[0, 1], &[1, 1])),
        "[gather] shapes (2,) and (3,) cannot be broadcast together"
    );
    let k = Array::from_slice(&[7i8], &[1]).unwrap();
    assert_eq!(
        err(ingot::gather(&a, &[k], &[1], &[1, 1])),
        "[gather] index 7 is out of bounds for axis 1 with size 4"
    );
}

#[test]
fn scatter_all_kinds_match_sequential_reference() {
    let mut rng = Rng::new(51);
    let mut cases = gather_cases();
    // repeated rows and overlapping slices (slice size > 1 on an indexed axis)
    cases.push((vec![6, 3], vec![0], vec![vec![20]], vec![1, 3]));
    cases.push((vec![9], vec![0], vec![vec![15]], vec![3]));
    for dtype in ALL {
        for kind in KINDS {
            if !kind_ok(kind, dtype) {
                continue;
            }
            for (ashape, axes, ishapes, sizes) in &cases {
                let avals = small_values(&mut rng, prod(ashape), dtype);
                let (axn, bshape, full, arrays) =
                    gather_inputs(&mut rng, ashape, axes, ishapes, sizes);
                let nb = prod(&bshape);
                let ns = prod(sizes);
                let uvals = small_values(&mut rng, nb * ns, dtype);
                let mut want = avals.clone();
                slice_walk(ashape, &full, &axn, nb, sizes, |b, s, q| {
                    want[q] = combine(kind, dtype, want[q], uvals[b * ns + s])
                });
                let mut ushape = bshape.clone();
                ushape.extend_from_slice(sizes);
                let what =
                    format!("scatter {kind:?} {dtype} {ashape:?} {axes:?} {ishapes:?} {sizes:?}");
                for (layout, a) in layouts(&avals, ashape, dtype) {
                    let upd = noncontiguous(&uvals, &ushape, dtype);
                    let out = ingot::scatter_kind(&a, &arrays, &upd, axes, kind).unwrap();
                    assert_eq!(out.shape(), ashape.as_slice());
                    let t = kind_tol(kind, dtype);
                    assert_close(&vals_of(&out), &want, t, t, &format!("{what} {layout}"));
                }
            }
        }
    }
}

#[test]
fn scatter_add_large_parallel_and_np_add_at() {
    let mut rng = Rng::new(61);
    // Gradient of an embedding: many repeated rows, wide enough for the threaded path.
    let (v, d, n) = (50, 700, 400);
    let (a, avals) = rand_array(&mut rng, &[v, d], DType::F32);
    let iv = rand_idx(&mut rng, n, v, DType::I64);
    let (u, uvals) = rand_array(&mut rng, &[n, 1, d], DType::F32);
    let mut want = avals.clone();
    for (b, &i) in iv.iter().enumerate() {
        let r = wrap(i, v);
        for c in 0..d {
            want[r * d + c] += uvals[b * d + c];
        }
    }
    let out = ingot::scatter_add(&a, &[idx_array(&iv, &[n], DType::I64)], &u, &[0]).unwrap();
    assert_close(&vals_of(&out), &want, 1e-5, 1e-5, "scatter_add large");
    // the same with scatter_max (NaN wins)
    let mut u2 = uvals.clone();
    u2[3] = f64::NAN;
    let ua = array_from_f64(&u2, &[n, 1, d], DType::F32);
    let mut want = avals.clone();
    for (b, &i) in iv.iter().enumerate() {
        let r = wrap(i, v);
        for c in 0..d {
            want[r * d + c] = combine(ScatterKind::Max, DType::F32, want[r * d + c], u2[b * d + c]);
        }
    }
    let out = ingot::scatter_max(&a, &[idx_array(&iv, &[n], DType::I64)], &ua, &[0]).unwrap();
    exact(&vals_of(&out), &want, "scatter_max large");
    // np.add.at(x, idx, 1) on 1-D: a histogram; updates broadcast from (1, 1).
    let x = ingot::zeros(&[5], DType::I32).unwrap();
    let idx = Array::from_slice(&[0i32, 4, 4, -1, 2, 0, 4], &[7]).unwrap();
    let ones = Array::from_slice(&[1i32], &[1, 1]).unwrap();
    let h = ingot::scatter_add(&x, std::slice::from_ref(&idx), &ones, &[0]).unwrap();
    assert_eq!(h.to_vec::<i32>().unwrap(), vec![2, 0, 1, 0, 4]);
    // Set with repeats: the last write wins.
    let vals = Array::from_slice(&[1i32, 2, 3, 4, 5, 6, 7], &[7, 1]).unwrap();
    let s = ingot::scatter(&x, &[idx], &vals, &[0]).unwrap();
    assert_eq!(s.to_vec::<i32>().unwrap(), vec![6, 0, 5, 0, 7]);
}

#[test]
fn scatter_errors() {
    let a = Array::from_slice(&[1.0f32; 12], &[3, 4]).unwrap();
    let i = Array::from_slice(&[0i32, 2], &[2]).unwrap();
    let u = Array::from_slice(&[1.0f32; 8], &[2, 4]).unwrap();
    assert_eq!(
        err(ingot::scatter(&a, std::slice::from_ref(&i), &u, &[0])),
        "[scatter] updates of shape (2, 4) must have 1 index dims plus 2 slice dims (index shape (2,), array shape (3, 4))"
    );
    let u = Array::from_slice(&[1.0f32; 10], &[2, 1, 5]).unwrap();
    assert_eq!(
        err(ingot::scatter_add(&a, std::slice::from_ref(&i), &u, &[0])),
        "[scatter_add] update slice (1, 5) is larger than the array of shape (3, 4) on axis 1"
    );
    let u = Array::from_slice(&[1.0f32; 12], &[3, 1, 4]).unwrap();
    assert_eq!(
        err(ingot::scatter(&a, std::slice::from_ref(&i), &u, &[0])),
        "[scatter] updates of shape (3, 1, 4) do not match the index shape (2,)"
    );
    let u = Array::from_slice(&[1.0f32; 8], &[2, 1, 4]).unwrap();
    let j = Array::from_slice(&[0i32, 3], &[2]).unwrap();
    assert_eq!(
        err(ingot::scatter_prod(&a, &[j], &u, &[0])),
        "[scatter_prod] index 3 is out of bounds for axis 0 with size 3"
    );
    let b = Array::from_slice(&[true, false], &[2]).unwrap();
    assert_eq!(
        err(ingot::scatter(&a, &[b], &u, &[0])),
        "[scatter] indices must be an integer array, got bool of shape (2,)"
    );
    let c = ingot::astype(&a, DType::C64).unwrap();
    assert_eq!(
        err(ingot::scatter_min(&c, std::slice::from_ref(&i), &u, &[0])),
        "[scatter_min] not supported for dtype complex64"
    );
    assert_eq!(
        err(ingot::scatter(&a, std::slice::from_ref(&i), &u, &[2])),
        "[scatter] axis 2 is out of bounds for an array of dimension 2"
    );
}

// ---- slice_update ------------------------------------------------------------------------

#[test]
fn slice_update_all_kinds_match_reference() {
    let mut rng = Rng::new(71);
    type SCase = (Vec<usize>, Vec<SliceArg>, bool);
    let s = SliceArg::new;
    // (shape, window, update broadcast from a smaller shape?)
    let cases: Vec<SCase> = vec![
        (vec![7], vec![s(Some(1), Some(5), 1)], false),
        (vec![7], vec![s(None, None, -2)], false),
        (
            vec![3, 4],
            vec![s(Some(1), None, 1), s(Some(-1), Some(0), -1)],
            false,
        ),
        (
            vec![3, 4],
            vec![SliceArg::ALL, s(Some(1), Some(3), 1)],
            true,
        ),
        (
            vec![2, 3, 5],
            vec![s(Some(1), Some(2), 1), s(None, None, 2)],
            false,
        ),
        (
            vec![2, 3, 5],
            vec![SliceArg::ALL, SliceArg::ALL, s(Some(4), None, -3)],
            true,
        ),
        (vec![], vec![], false),
        (vec![2, 0, 3], vec![], false),
        (
            vec![300, 260],
            vec![s(Some(10), Some(290), 1), s(Some(3), None, 2)],
            false,
        ),
    ];
    for dtype in ALL {
        for kind in KINDS {
            if !kind_ok(kind, dtype) {
                continue;
            }
            for (shape, args, bcast) in &cases {
                if prod(shape) > 1000 && !matches!(dtype, DType::F32 | DType::U8) {
                    continue;
                }
                let avals = small_values(&mut rng, prod(shape), dtype);
                // resolve the window by hand
                let mut starts = vec![];
                let mut steps = vec![];
                let mut win = vec![];
                for (d, &n) in shape.iter().enumerate() {
                    let a = args.get(d).copied().unwrap_or(SliceArg::ALL);
                    let (st, len) = a.resolve("t", n).unwrap();
                    starts.push(st as isize);
                    steps.push(a.step);
                    win.push(len);
                }
                // update: full window, or its last axis only (broadcast over the rest)
                let ushape: Vec<usize> = if *bcast {
                    vec![*win.last().unwrap()]
                } else {
                    win.clone()
                };
                let uvals = small_values(&mut rng, prod(&ushape), dtype);
                let mut want = avals.clone();
                for p in 0..prod(&win) {
                    let c = unravel(p, &win);
                    let ac: Vec<usize> = (0..c.len())
                        .map(|d| (starts[d] + c[d] as isize * steps[d]) as usize)
                        .collect();
                    let q = ravel(&ac, shape);
                    let u = if *bcast {
                        uvals[*c.last().unwrap()]
                    } else {
                        uvals[p]
                    };
                    want[q] = combine(kind, dtype, want[q], u);
                }
                let what = format!("slice_update {kind:?} {dtype} {shape:?} {args:?}");
                for (layout, a) in layouts(&avals, shape, dtype) {
                    let upd = transposed(&uvals, &ushape, dtype);
                    let out = ingot::slice_update_kind(&a, &upd, args, kind).unwrap();
                    assert_eq!(out.shape(), shape.as_slice());
                    let t = kind_tol(kind, dtype);
                    assert_close(&vals_of(&out), &want, t, t, &format!("{what} {layout}"));
                    exact(&vals_of(&a), &avals, &format!("{what} input kept"));
                }
            }
        }
    }
}

/// Where the array's bytes are: the GPU copy's address when there is one, else the host's.
fn buffer_ptr(a: &Array) -> usize {
    let d = a.data().unwrap();
    match d.buffer.device_address() {
        Some(p) => p as usize,
        None => d.buffer.as_bytes().as_ptr() as usize,
    }
}

fn on_gpu() -> bool {
    matches!(ingot::default_device(), ingot::Device::Cuda(_))
}

#[test]
fn slice_update_donates_when_nothing_else_holds_the_input() {
    // A KV cache of 8 positions filled one token at a time, in place.
    let (h, t, d) = (2, 8, 3);
    let mut cache = Array::from_slice(&vec![0.0f32; h * t * d], &[h, t, d]).unwrap();
    // On a GPU the cache moves there at the first update (into the same buffer object),
    // and every later update must write into that device memory.
    let mut first = (!on_gpu()).then(|| buffer_ptr(&cache));
    for step in 0..t {
        let tok: Vec<f32> = (0..h * d).map(|i| (step * 100 + i) as f32).collect();
        let tok = Array::from_slice(&tok, &[h, 1, d]).unwrap();
        let s = step as isize;
        cache =
            ingot::slice_update(&cache, &tok, &[SliceArg::ALL, SliceArg::range(s, s + 1)]).unwrap();
        cache.eval().unwrap();
        let p = buffer_ptr(&cache);
        assert_eq!(p, *first.get_or_insert(p), "step {step} copied the cache");
    }
    let got = cache.to_vec::<f32>().unwrap();
    for hh in 0..h {
        for tt in 0..t {
            for dd in 0..d {
                assert_eq!(got[(hh * t + tt) * d + dd], (tt * 100 + hh * d + dd) as f32);
            }
        }
    }
    // The same through a lazy chain: the intermediate is donated too.
    let a = Array::from_slice(&[1.0f64, 2.0, 3.0, 4.0], &[4]).unwrap();
    let mut p = buffer_ptr(&a);
    let b = ingot::slice_update_add(&a, 10.0, &[SliceArg::range(0, 2)]).unwrap();
    drop(a);
    if on_gpu() {
        // The first update moved the bytes to the GPU; the second must stay in them.
        b.eval().unwrap();
        p = buffer_ptr(&b);
    }
    let c = ingot::slice_update_max(&b, 3.5, &[SliceArg::range(2, 4)]).unwrap();
    drop(b);
    assert_eq!(c.to_vec::<f64>().unwrap(), vec![11.0, 12.0, 3.5, 4.0]);
    assert_eq!(buffer_ptr(&c), p);
}

#[test]
fn slice_update_copies_when_the_input_is_held() {
    let a = Array::from_slice(&[1i32, 2, 3, 4], &[4]).unwrap();
    let p = buffer_ptr(&a);
    let b = ingot::slice_update(&a, 9, &[SliceArg::range(1, 3)]).unwrap();
    assert_eq!(b.to_vec::<i32>().unwrap(), vec![1, 9, 9, 4]);
    assert_ne!(buffer_ptr(&b), p);
    assert_eq!(a.to_vec::<i32>().unwrap(), vec![1, 2, 3, 4]);
    // A view shares its buffer with its base: no donation either.
    let base = Array::from_slice(&[1i32, 2, 3, 4], &[4]).unwrap();
    let v = ingot::reshape(&base, &[2, 2]).unwrap();
    let r = ingot::slice_update(&v, 0, &[SliceArg::range(0, 1)]).unwrap();
    drop(v);
    assert_eq!(r.to_vec::<i32>().unwrap(), vec![0, 0, 3, 4]);
    assert_eq!(base.to_vec::<i32>().unwrap(), vec![1, 2, 3, 4]);
    // A failing update leaves the donatable input intact (checked before donation).
    let x = Array::from_slice(&[0.0f32; 3], &[3]).unwrap();
    let px = buffer_ptr(&x);
    let bad = ingot::scatter(
        &x,
        &[Array::from_slice(&[5i32], &[1]).unwrap()],
        &Array::from_slice(&[1.0f32], &[1, 1]).unwrap(),
        &[0],
    )
    .unwrap();
    drop(x);
    assert!(bad.eval().is_err());
    let inputs = bad.inputs();
    assert_eq!(buffer_ptr(&inputs[0]), px);
    assert_eq!(inputs[0].to_vec::<f32>().unwrap(), vec![0.0; 3]);
}

#[test]
fn scatter_and_put_along_axis_donate_too() {
    // Integers: their combining updates run on the GPU in any order with the same result
    // (float updates that can meet go to the CPU there, to keep the CPU's order). Made by
    // an op, so on a GPU its bytes are on the GPU before the scatter reuses them.
    let a = ingot::add(Array::from_slice(&[0i32; 6], &[6]).unwrap(), 0).unwrap();
    let p = buffer_ptr(&a);
    let idx = Array::from_slice(&[1i32, 1, 5], &[3]).unwrap();
    let s = ingot::scatter_add(
        &a,
        std::slice::from_ref(&idx),
        &ingot::ones(&[3, 1], DType::I32).unwrap(),
        &[0],
    )
    .unwrap();
    drop(a);
    let s2 = ingot::put_along_axis_add(&s, &idx, 1, Some(0)).unwrap();
    drop(s);
    assert_eq!(s2.to_vec::<i32>().unwrap(), vec![0, 4, 0, 0, 0, 2]);
    assert_eq!(buffer_ptr(&s2), p);
}

#[test]
fn slice_update_errors() {
    let a = Array::from_slice(&[1.0f32; 12], &[3, 4]).unwrap();
    let u = Array::from_slice(&[1.0f32; 3], &[3]).unwrap();
    assert_eq!(
        err(ingot::slice_update(&a, &u, &[SliceArg::range(0, 2), SliceArg::range(0, 2)])),
        "[slice_update] update of shape (3,) cannot be broadcast to the window (2, 2) of the array of shape (3, 4)"
    );
    assert_eq!(
        err(ingot::slice_update_add(&a, 1.0, &[SliceArg::ALL; 3])),
        "[slice_update_add] 3 slice arguments for an array of shape (3, 4)"
    );
    assert_eq!(
        err(ingot::slice_update(
            &a,
            1.0,
            &[SliceArg::new(None, None, 0)]
        )),
        "[slice_update] slice step cannot be zero"
    );
    let c = ingot::astype(&a, DType::C64).unwrap();
    assert_eq!(
        err(ingot::slice_update_max(&c, 1.0, &[])),
        "[slice_update_max] not supported for dtype complex64"
    );
}

// ---- nonzero / argwhere / boolean_mask ---------------------------------------------------

fn ref_nonzero(vals: &[f64]) -> Vec<usize> {
    (0..vals.len()).filter(|&i| vals[i] != 0.0).collect()
}

#[test]
fn nonzero_and_argwhere_match_reference() {
    let mut rng = Rng::new(81);
    for dtype in ALL {
        for shape in shapes() {
            let (_, mut vals) = rand_array(&mut rng, &shape, dtype);
            for v in vals.iter_mut() {
                if rng.below(3) == 0 {
                    *v = 0.0;
                }
            }
            if dtype.is_float() && vals.len() > 3 {
                vals[0] = f64::NAN; // nonzero
                vals[1] = -0.0; // zero
                vals[2] = f64::NEG_INFINITY;
            }
            let want = ref_nonzero(&vals);
            for (layout, a) in layouts(&vals, &shape, dtype) {
                let what = format!("{dtype} {shape:?} {layout}");
                let aw = ingot::argwhere(&a).unwrap();
                assert_eq!(aw.shape(), &[want.len(), shape.len()], "{what}");
                assert_eq!(aw.dtype(), DType::I64);
                let coords: Vec<i64> = want
                    .iter()
                    .flat_map(|&p| unravel(p, &shape).into_iter().map(|c| c as i64))
                    .collect();
                assert_eq!(aw.to_vec::<i64>().unwrap(), coords, "argwhere {what}");
                if shape.is_empty() {
                    assert_eq!(
                        ingot::nonzero(&a).unwrap_err().to_string(),
                        "[nonzero] not defined for 0-d arrays; use atleast_1d first"
                    );
                    continue;
                }
                let nz = ingot::nonzero(&a).unwrap();
                assert_eq!(nz.len(), shape.len());
                for (d, arr) in nz.iter().enumerate() {
                    assert_eq!(arr.dtype(), DType::I64);
                    let col: Vec<i64> =
                        want.iter().map(|&p| unravel(p, &shape)[d] as i64).collect();
                    assert_eq!(arr.to_vec::<i64>().unwrap(), col, "nonzero {what} axis {d}");
                }
            }
        }
    }
    // Large: counted and filled in parallel.
    let n = 200_003;
    let vals: Vec<f64> = (0..n)
        .map(|i| if i % 7 == 3 || i % 11 == 0 { 1.5 } else { 0.0 })
        .collect();
    let a = array_from_f64(&vals, &[n], DType::F32);
    let nz = ingot::nonzero(&a).unwrap();
    let want: Vec<i64> = ref_nonzero(&vals).into_iter().map(|p| p as i64).collect();
    assert_eq!(nz[0].to_vec::<i64>().unwrap(), want);
}

#[test]
fn boolean_mask_matches_numpy_indexing() {
    let mut rng = Rng::new(91);
    let cases: Vec<(Vec<usize>, usize)> = vec![
        (vec![7], 1),
        (vec![3, 4], 1),
        (vec![3, 4], 2),
        (vec![2, 3, 5], 2),
        (vec![2, 0, 3], 1),
        (vec![4], 0),
        (vec![], 0),
    ];
    for dtype in [DType::F32, DType::I8, DType::C64, DType::Bool, DType::BF16] {
        for (shape, k) in &cases {
            let (_, vals) = rand_array(&mut rng, shape, dtype);
            let mshape = &shape[..*k];
            let mvals: Vec<f64> = (0..prod(mshape)).map(|_| rng.below(2) as f64).collect();
            let rest = prod(&shape[*k..]);
            let mut want = vec![];
            for (i, &m) in mvals.iter().enumerate() {
                if m != 0.0 {
                    want.extend_from_slice(&vals[i * rest..(i + 1) * rest]);
                }
            }
            let count = mvals.iter().filter(|&&m| m != 0.0).count();
            let mut oshape = vec![count];
            oshape.extend_from_slice(&shape[*k..]);
            for (layout, a) in layouts(&vals, shape, dtype) {
                let mask = noncontiguous(&mvals, mshape, DType::Bool);
                let out = ingot::boolean_mask(&a, &mask).unwrap();
                assert_eq!(
                    out.shape(),
                    oshape.as_slice(),
                    "{dtype} {shape:?} {k} {layout}"
                );
                exact(
                    &vals_of(&out),
                    &want,
                    &format!("boolean_mask {dtype} {shape:?} {k} {layout}"),
                );
            }
        }
    }
    let a = Array::from_slice(&[1.0f32; 6], &[2, 3]).unwrap();
    let m = Array::from_slice(&[1i32, 0], &[2]).unwrap();
    assert_eq!(
        err(ingot::boolean_mask(&a, &m)),
        "[boolean_mask] mask must be bool, got int32 of shape (2,)"
    );
    let m = Array::from_slice(&[true, false, true], &[3]).unwrap();
    assert_eq!(
        err(ingot::boolean_mask(&a, &m)),
        "[boolean_mask] mask of shape (3,) does not match the leading axes of the array of shape (2, 3)"
    );
}

// ---- runner ------------------------------------------------------------------------------

fn attrs(op: &str, json: &str) -> ingot::runner::Attrs {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    ingot::runner::Attrs::new(op, Some(&v)).unwrap()
}

#[test]
fn runner_entries() {
    let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    let i = Array::from_slice(&[2i32, 0], &[2]).unwrap();
    let r = ingot::runner::run_op(
        "take",
        &[a.clone(), i.clone()],
        &attrs("take", r#"{"axis": null}"#),
    )
    .unwrap();
    assert_eq!(r[0].to_vec::<f32>().unwrap(), vec![3.0, 1.0]);
    let r = ingot::runner::run_op(
        "take",
        &[a.clone(), i.clone()],
        &attrs("take", r#"{"axis": 1}"#),
    )
    .unwrap();
    assert_eq!(r[0].to_vec::<f32>().unwrap(), vec![3.0, 1.0, 6.0, 4.0]);
    let u = Array::from_slice(&[9.0f32], &[1]).unwrap();
    let r = ingot::runner::run_op(
        "slice_update_add",
        &[a.clone(), u],
        &attrs(
            "slice_update_add",
            r#"{"start": [null, 1], "stop": [1, null], "step": [1, 1]}"#,
        ),
    )
    .unwrap();
    assert_eq!(
        r[0].to_vec::<f32>().unwrap(),
        vec![1.0, 11.0, 12.0, 4.0, 5.0, 6.0]
    );
    let ones = Array::from_slice(&[1.0f32], &[1, 1, 1]).unwrap();
    let r = ingot::runner::run_op(
        "scatter_add",
        &[
            a.clone(),
            Array::from_slice(&[1i64, 1], &[2]).unwrap(),
            ones,
        ],
        &attrs("scatter_add", r#"{"axes": [0]}"#),
    )
    .unwrap();
    assert_eq!(
        r[0].to_vec::<f32>().unwrap(),
        vec![1.0, 2.0, 3.0, 6.0, 5.0, 6.0]
    );
    let r = ingot::runner::run_op("nonzero", std::slice::from_ref(&a), &attrs("nonzero", "{}"))
        .unwrap();
    assert_eq!(r.len(), 2);
    let r = ingot::runner::run_op(
        "put_along_axis",
        &[
            a.clone(),
            Array::from_slice(&[0i32, 2], &[2, 1]).unwrap(),
            Array::scalar(0.0f32),
        ],
        &attrs("put_along_axis", r#"{"axis": 1, "kind": "max"}"#),
    )
    .unwrap();
    assert_eq!(
        r[0].to_vec::<f32>().unwrap(),
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );
    let e = ingot::runner::run_op(
        "put_along_axis",
        &[a.clone(), i.clone(), a.clone()],
        &attrs("put_along_axis", r#"{"kind": "sum"}"#),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "[put_along_axis] attribute 'kind' must be one of set, add, prod, max, min, got 'sum'"
    );
    let r = ingot::runner::run_op(
        "gather",
        &[a.clone(), i.clone()],
        &attrs("gather", r#"{"axes": [1], "slice_sizes": [2, 1]}"#),
    )
    .unwrap();
    assert_eq!(r[0].shape(), &[2, 2, 1]);
    assert_eq!(r[0].to_vec::<f32>().unwrap(), vec![3.0, 6.0, 1.0, 4.0]);
}
