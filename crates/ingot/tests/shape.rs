//! Shape and view ops against plain index-mapping references: every dtype for the copying
//! kernels, contiguous / stepped / transposed / negative-stride inputs, empty and 0-d
//! arrays, large inputs that split across threads, and exact error messages.

mod common;
use common::*;
use ingot::{Array, DType, PadMode, SliceArg, SplitSpec};
use std::sync::Arc;

// ---- reference helpers ------------------------------------------------------------------

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &n)| acc * n + i)
}

/// The values of an output of `shape` whose element at `idx` is `f(idx)`.
fn build(shape: &[usize], f: impl Fn(&[usize]) -> f64) -> Vec<f64> {
    let n: usize = shape.iter().product();
    (0..n).map(|i| f(&unravel(i, shape))).collect()
}

/// Equal bit for bit (so -0.0 differs from 0.0), any NaN equal to any NaN.
fn assert_same(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
            "{what}: element {i}: got {g}, want {w}"
        );
    }
}

fn check(a: &Array, shape: &[usize], dtype: DType, want: &[f64], what: &str) {
    assert_eq!(a.shape(), shape, "{what}: shape");
    assert_eq!(a.dtype(), dtype, "{what}: dtype");
    assert_same(&a.to_f64_vec().unwrap(), want, what);
}

/// The same values with negative strides: stored reversed on every axis, then flipped.
fn negstride(vals: &[f64], shape: &[usize], dtype: DType) -> Array {
    let src = build(shape, |idx| {
        let r: Vec<usize> = idx.iter().zip(shape).map(|(&i, &n)| n - 1 - i).collect();
        vals[ravel(&r, shape)]
    });
    let a = array_from_f64(&src, shape, dtype);
    ingot::flip(&a, None).unwrap()
}

/// The same values in four layouts: contiguous, stepped, transposed, negative strides.
fn layouts(vals: &[f64], shape: &[usize], dtype: DType) -> Vec<(&'static str, Array)> {
    vec![
        ("contiguous", array_from_f64(vals, shape, dtype)),
        ("stepped", noncontiguous(vals, shape, dtype)),
        ("transposed", transposed(vals, shape, dtype)),
        ("negative", negstride(vals, shape, dtype)),
    ]
}

fn err_msg<T: std::fmt::Debug>(r: ingot::Result<T>) -> String {
    r.unwrap_err().to_string()
}

fn buffer_of(a: &Array) -> Arc<ingot::buffer::Buffer> {
    a.data().unwrap().buffer
}

// ---- concatenate / stack ------------------------------------------------------------------

fn concat_ref(parts: &[(Vec<f64>, Vec<usize>)], axis: usize) -> (Vec<f64>, Vec<usize>) {
    let mut shape = parts[0].1.clone();
    shape[axis] = parts.iter().map(|p| p.1[axis]).sum();
    let vals = build(&shape, |idx| {
        let mut i = idx[axis];
        for (v, s) in parts {
            if i < s[axis] {
                let mut j = idx.to_vec();
                j[axis] = i;
                return v[ravel(&j, s)];
            }
            i -= s[axis];
        }
        unreachable!()
    });
    (vals, shape)
}

#[test]
fn concatenate_matches_reference_all_dtypes_and_layouts() {
    let mut rng = Rng::new(11);
    let cases: Vec<(Vec<Vec<usize>>, isize)> = vec![
        (vec![vec![3], vec![4], vec![0], vec![1]], 0),
        (vec![vec![2, 3], vec![4, 3]], 0),
        (vec![vec![2, 3], vec![2, 5], vec![2, 1]], 1),
        (vec![vec![2, 3], vec![2, 5]], -1),
        (vec![vec![2, 3, 4], vec![2, 1, 4], vec![2, 0, 4]], 1),
        (vec![vec![3, 2, 2], vec![3, 2, 3]], 2),
        (vec![vec![0, 3], vec![0, 3]], 0),
        (vec![vec![0, 3], vec![0, 2]], 1),
    ];
    for dtype in DType::ALL {
        for (shapes, axis) in &cases {
            let parts: Vec<(Vec<f64>, Vec<usize>)> = shapes
                .iter()
                .map(|s| (rand_array(&mut rng, s, dtype).1, s.clone()))
                .collect();
            let ax = if *axis < 0 {
                (shapes[0].len() as isize + axis) as usize
            } else {
                *axis as usize
            };
            let (want, wshape) = concat_ref(&parts, ax);
            for li in 0..4 {
                // Mix layouts: input k uses layout (li + k) % 4.
                let arrays: Vec<Array> = parts
                    .iter()
                    .enumerate()
                    .map(|(k, (v, s))| layouts(v, s, dtype).swap_remove((li + k) % 4).1)
                    .collect();
                let out = ingot::concatenate(&arrays, Some(*axis)).unwrap();
                check(
                    &out,
                    &wshape,
                    dtype,
                    &want,
                    &format!("concatenate {dtype} {shapes:?} axis {axis} layout {li}"),
                );
            }
        }
    }
}

#[test]
fn concatenate_large_inputs_split_across_threads() {
    let mut rng = Rng::new(12);
    for dtype in [DType::F32, DType::U8, DType::F64, DType::C64, DType::BF16] {
        for (s1, s2, axis) in [
            (vec![300, 257], vec![300, 3], 1usize),
            (vec![300, 257], vec![41, 257], 0),
            (vec![5, 200, 77], vec![5, 13, 77], 1),
            (vec![70000], vec![1], 0),
        ] {
            let (_, v1) = rand_array(&mut rng, &s1, dtype);
            let (_, v2) = rand_array(&mut rng, &s2, dtype);
            let (want, wshape) =
                concat_ref(&[(v1.clone(), s1.clone()), (v2.clone(), s2.clone())], axis);
            for (l1, l2) in [(0, 0), (2, 1), (3, 2), (1, 3)] {
                let a = layouts(&v1, &s1, dtype).swap_remove(l1).1;
                let b = layouts(&v2, &s2, dtype).swap_remove(l2).1;
                let out = ingot::concatenate(&[a, b], Some(axis as isize)).unwrap();
                check(
                    &out,
                    &wshape,
                    dtype,
                    &want,
                    &format!("large concat {dtype} {s1:?} {s2:?} {l1}/{l2}"),
                );
            }
        }
    }
}

#[test]
fn concatenate_flattened_promotes_and_handles_broadcast_inputs() {
    let a = Array::from_slice(&[1i32, 2, 3, 4], &[2, 2]).unwrap();
    let b = Array::from_slice(&[0.5f32, -0.0], &[2]).unwrap();
    let out = ingot::concatenate(&[a.clone(), b], None).unwrap();
    check(
        &out,
        &[6],
        DType::F32,
        &[1.0, 2.0, 3.0, 4.0, 0.5, -0.0],
        "flattened",
    );
    // u8 with i8 promotes to i16, as NumPy.
    let u = Array::from_slice(&[200u8], &[1]).unwrap();
    let i = Array::from_slice(&[-3i8], &[1]).unwrap();
    check(
        &ingot::concatenate(&[u, i], Some(0)).unwrap(),
        &[2],
        DType::I16,
        &[200.0, -3.0],
        "u8+i8",
    );
    // A broadcast (stride-0) input.
    let row = Array::from_slice(&[1.0f64, 2.0, 3.0], &[1, 3]).unwrap();
    let bc = ingot::broadcast_to(&row, &[2, 3]).unwrap();
    let out =
        ingot::concatenate(&[bc, ingot::zeros(&[1, 3], DType::F64).unwrap()], Some(0)).unwrap();
    check(
        &out,
        &[3, 3],
        DType::F64,
        &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 0.0, 0.0, 0.0],
        "broadcast input",
    );
    // One input: the same values back.
    check(
        &ingot::concatenate(&[a], Some(1)).unwrap(),
        &[2, 2],
        DType::I32,
        &[1.0, 2.0, 3.0, 4.0],
        "single",
    );
    // Special float values travel untouched.
    let s = Array::from_slice(&[f32::NAN, f32::INFINITY, -0.0, f32::NEG_INFINITY], &[4]).unwrap();
    let out = ingot::concatenate(&[s.clone(), s], Some(0)).unwrap();
    let v = out.to_f64_vec().unwrap();
    assert!(v[0].is_nan() && v[1] == f64::INFINITY && v[2].to_bits() == (-0.0f64).to_bits());
    assert_eq!(v[7], f64::NEG_INFINITY);
}

#[test]
fn concatenate_errors() {
    let a = ingot::zeros(&[2, 3], DType::F32).unwrap();
    let b = ingot::zeros(&[2, 4], DType::F32).unwrap();
    let c = ingot::zeros(&[2], DType::F32).unwrap();
    assert_eq!(
        err_msg(ingot::concatenate(&[], Some(0))),
        "[concatenate] need at least one array to concatenate"
    );
    assert_eq!(
        err_msg(ingot::concatenate(&[a.clone(), b.clone()], Some(0))),
        "[concatenate] all the input array dimensions except for the concatenation axis must match exactly, but along dimension 1, the array at index 0 has shape (2, 3) and the array at index 1 has shape (2, 4)"
    );
    assert_eq!(
        err_msg(ingot::concatenate(&[a.clone(), c], Some(0))),
        "[concatenate] all the input arrays must have the same number of dimensions, but the array at index 0 has shape (2, 3) and the array at index 1 has shape (2,)"
    );
    assert_eq!(
        err_msg(ingot::concatenate(&[a.clone(), b], Some(2))),
        "[concatenate] axis 2 is out of bounds for an array of dimension 2"
    );
    let s = Array::scalar(1.0f32);
    assert_eq!(
        err_msg(ingot::concatenate(&[s.clone(), s], Some(0))),
        "[concatenate] zero-dimensional arrays cannot be concatenated"
    );
}

#[test]
fn stack_matches_reference() {
    let mut rng = Rng::new(13);
    for dtype in [DType::F32, DType::I64, DType::Bool, DType::F16] {
        for shape in [
            vec![],
            vec![0],
            vec![3],
            vec![2, 3],
            vec![2, 0, 4],
            vec![3, 2, 4],
        ] {
            let vals: Vec<Vec<f64>> = (0..3)
                .map(|_| rand_array(&mut rng, &shape, dtype).1)
                .collect();
            for axis in -(shape.len() as isize + 1)..=shape.len() as isize {
                let ax = if axis < 0 {
                    (axis + shape.len() as isize + 1) as usize
                } else {
                    axis as usize
                };
                let mut wshape = shape.clone();
                wshape.insert(ax, 3);
                let want = build(&wshape, |idx| {
                    let mut j = idx.to_vec();
                    let k = j.remove(ax);
                    vals[k][ravel(&j, &shape)]
                });
                let arrays: Vec<Array> = vals
                    .iter()
                    .enumerate()
                    .map(|(k, v)| layouts(v, &shape, dtype).swap_remove(k % 4).1)
                    .collect();
                let out = ingot::stack(&arrays, axis).unwrap();
                check(
                    &out,
                    &wshape,
                    dtype,
                    &want,
                    &format!("stack {dtype} {shape:?} axis {axis}"),
                );
            }
        }
    }
    let a = ingot::zeros(&[2], DType::F32).unwrap();
    let b = ingot::zeros(&[3], DType::F32).unwrap();
    assert_eq!(
        err_msg(ingot::stack(&[], 0)),
        "[stack] need at least one array to stack"
    );
    assert_eq!(
        err_msg(ingot::stack(&[a.clone(), b], 0)),
        "[stack] all input arrays must have the same shape, but the array at index 0 has shape (2,) and the array at index 1 has shape (3,)"
    );
    assert_eq!(
        err_msg(ingot::stack(&[a], 2)),
        "[stack] axis 2 is out of bounds for an array of dimension 2"
    );
}

// ---- split --------------------------------------------------------------------------------

#[test]
fn split_and_array_split_match_reference() {
    let mut rng = Rng::new(14);
    let shape = vec![4, 7, 6];
    let (a, vals) = rand_array(&mut rng, &shape, DType::F32);
    let t = transposed(&vals, &shape, DType::F32);
    // Reference: pieces of the axis between boundaries (Python slice semantics).
    let piece = |ax: usize, lo: usize, hi: usize| {
        let mut s = shape.clone();
        s[ax] = hi - lo;
        let v = build(&s, |idx| {
            let mut j = idx.to_vec();
            j[ax] += lo;
            vals[ravel(&j, &shape)]
        });
        (v, s)
    };
    let check_pieces = |got: Vec<Array>, ax: usize, bounds: &[usize], what: &str| {
        assert_eq!(got.len(), bounds.len() - 1, "{what}: count");
        for (k, g) in got.iter().enumerate() {
            let (v, s) = piece(ax, bounds[k], bounds[k + 1]);
            check(g, &s, DType::F32, &v, &format!("{what} piece {k}"));
        }
    };
    for x in [&a, &t] {
        check_pieces(
            ingot::split(x, SplitSpec::Sections(2), 0).unwrap(),
            0,
            &[0, 2, 4],
            "split 2",
        );
        check_pieces(
            ingot::split(x, SplitSpec::Sections(3), -1).unwrap(),
            2,
            &[0, 2, 4, 6],
            "split 3 axis -1",
        );
        check_pieces(
            ingot::array_split(x, SplitSpec::Sections(3), 1).unwrap(),
            1,
            &[0, 3, 5, 7],
            "array_split 3",
        );
        check_pieces(
            ingot::array_split(x, SplitSpec::Sections(9), 1).unwrap(),
            1,
            &[0, 1, 2, 3, 4, 5, 6, 7, 7, 7],
            "array_split 9",
        );
        check_pieces(
            ingot::split(x, SplitSpec::Indices(vec![2, 5]), 1).unwrap(),
            1,
            &[0, 2, 5, 7],
            "indices",
        );
        check_pieces(
            ingot::split(x, SplitSpec::Indices(vec![-2]), 1).unwrap(),
            1,
            &[0, 5, 7],
            "negative index",
        );
        check_pieces(
            ingot::split(x, SplitSpec::Indices(vec![]), 2).unwrap(),
            2,
            &[0, 6],
            "no index",
        );
        // Out-of-range and decreasing indices give empty pieces, as Python slicing does.
        let got = ingot::split(x, SplitSpec::Indices(vec![5, 3, 10]), 1).unwrap();
        let shapes: Vec<Vec<usize>> = got.iter().map(|g| g.shape().to_vec()).collect();
        assert_eq!(
            shapes,
            vec![vec![4, 5, 6], vec![4, 0, 6], vec![4, 4, 6], vec![4, 0, 6]]
        );
        let (v, s) = piece(1, 3, 7);
        check(&got[2], &s, DType::F32, &v, "indices 3..10");
    }
    // Pieces are views of the input's buffer.
    let parts = ingot::split(&a, SplitSpec::Sections(2), 0).unwrap();
    assert!(Arc::ptr_eq(&buffer_of(&parts[1]), &buffer_of(&a)));
    // An empty axis splits into empty pieces.
    let e = ingot::zeros(&[0, 2], DType::F32).unwrap();
    let got = ingot::split(&e, SplitSpec::Sections(3), 0).unwrap();
    assert!(got.iter().all(|g| g.shape() == [0, 2]));
    assert_eq!(
        err_msg(ingot::split(&a, SplitSpec::Sections(3), 0)),
        "[split] array split does not result in an equal division: axis 0 of shape (4, 7, 6) into 3 sections"
    );
    assert_eq!(
        err_msg(ingot::split(&a, SplitSpec::Sections(0), 0)),
        "[split] number of sections must be larger than 0"
    );
    assert_eq!(
        err_msg(ingot::array_split(&a, SplitSpec::Sections(0), 0)),
        "[array_split] number of sections must be larger than 0"
    );
    assert_eq!(
        err_msg(ingot::split(&a, SplitSpec::Sections(1), 3)),
        "[split] axis 3 is out of bounds for an array of dimension 3"
    );
    assert_eq!(
        err_msg(ingot::split(
            &Array::scalar(1i32),
            SplitSpec::Sections(1),
            0
        )),
        "[split] axis 0 is out of bounds for an array of dimension 0"
    );
}

// ---- tile / repeat ----------------------------------------------------------------------

#[test]
fn tile_matches_reference() {
    let mut rng = Rng::new(15);
    let cases: Vec<(Vec<usize>, Vec<usize>)> = vec![
        (vec![], vec![3]),
        (vec![], vec![]),
        (vec![3], vec![2]),
        (vec![3], vec![2, 2]),
        (vec![2, 3], vec![2]),
        (vec![2, 3], vec![1, 1]),
        (vec![2, 3], vec![3, 1, 2]),
        (vec![2, 0], vec![2, 2]),
        (vec![2, 3], vec![0, 2]),
        (vec![3, 1, 2], vec![2, 5, 1]),
        (vec![40, 33], vec![3, 11]),
    ];
    for dtype in [DType::F32, DType::I8, DType::Bool, DType::C64, DType::F64] {
        for (shape, reps) in &cases {
            let (_, vals) = rand_array(&mut rng, shape, dtype);
            let d = shape.len().max(reps.len());
            let mut s = vec![1; d - shape.len()];
            s.extend(shape);
            let mut r = vec![1; d - reps.len()];
            r.extend(reps);
            let wshape: Vec<usize> = s.iter().zip(&r).map(|(a, b)| a * b).collect();
            let want = build(&wshape, |idx| {
                let j: Vec<usize> = idx.iter().zip(&s).map(|(&i, &n)| i % n).collect();
                vals[ravel(&j, &s)]
            });
            for (l, x) in layouts(&vals, shape, dtype) {
                let out = ingot::tile(&x, reps).unwrap();
                check(
                    &out,
                    &wshape,
                    dtype,
                    &want,
                    &format!("tile {dtype} {shape:?} {reps:?} {l}"),
                );
            }
        }
    }
}

fn repeat_ref(
    vals: &[f64],
    shape: &[usize],
    reps: &[usize],
    axis: usize,
) -> (Vec<f64>, Vec<usize>) {
    let n = shape[axis];
    let counts: Vec<usize> = if reps.len() == 1 {
        vec![reps[0]; n]
    } else {
        reps.to_vec()
    };
    let src: Vec<usize> = counts
        .iter()
        .enumerate()
        .flat_map(|(i, &c)| std::iter::repeat_n(i, c))
        .collect();
    let mut wshape = shape.to_vec();
    wshape[axis] = src.len();
    let v = build(&wshape, |idx| {
        let mut j = idx.to_vec();
        j[axis] = src[idx[axis]];
        vals[ravel(&j, shape)]
    });
    (v, wshape)
}

#[test]
fn repeat_matches_reference() {
    let mut rng = Rng::new(16);
    let cases: Vec<(Vec<usize>, Vec<usize>, Option<isize>)> = vec![
        (vec![], vec![3], None),
        (vec![4], vec![2], Some(0)),
        (vec![4], vec![0], Some(0)),
        (vec![4], vec![1, 0, 3, 2], Some(0)),
        (vec![2, 3], vec![2], None),
        (vec![2, 3], vec![3], Some(0)),
        (vec![2, 3], vec![2, 1, 1], Some(1)),
        (vec![2, 3], vec![1, 1, 1], Some(-1)),
        (vec![2, 3], vec![4, 4, 4], Some(-1)),
        (vec![2, 3], vec![0, 0, 0], Some(1)),
        (vec![3, 4, 2], vec![1, 3, 0, 1], Some(1)),
        (vec![0, 3], vec![2], Some(0)),
        (vec![200, 130], vec![3], Some(1)),
    ];
    for dtype in [DType::F32, DType::U16, DType::Bool, DType::F16] {
        for (shape, reps, axis) in &cases {
            let (_, vals) = rand_array(&mut rng, shape, dtype);
            let (fvals, fshape, ax) = match axis {
                None => (vals.clone(), vec![vals.len()], 0usize),
                Some(a) => (
                    vals.clone(),
                    shape.clone(),
                    if *a < 0 {
                        (*a + shape.len() as isize) as usize
                    } else {
                        *a as usize
                    },
                ),
            };
            let (want, wshape) = repeat_ref(&fvals, &fshape, reps, ax);
            for (l, x) in layouts(&vals, shape, dtype) {
                let out = ingot::repeat(&x, reps, *axis).unwrap();
                check(
                    &out,
                    &wshape,
                    dtype,
                    &want,
                    &format!("repeat {dtype} {shape:?} {reps:?} {axis:?} {l}"),
                );
            }
        }
    }
    let a = ingot::zeros(&[2, 3], DType::F32).unwrap();
    assert_eq!(
        err_msg(ingot::repeat(&a, &[1, 2], Some(1))),
        "[repeat] repeats has 2 entries for axis 1 of length 3 in shape (2, 3): need 1 or 3"
    );
    assert_eq!(
        err_msg(ingot::repeat(&a, &[1], Some(2))),
        "[repeat] axis 2 is out of bounds for an array of dimension 2"
    );
}

// ---- pad --------------------------------------------------------------------------------

/// NumPy's reflect/symmetric padding of one line, literally as numpy/lib/_arraypad_impl.py
/// does it: fill both sides from the area already filled, repeatedly, in chunks no longer
/// than a whole number of periods of the original values.
fn reflect_line(x: &mut [f64], l: usize, n: usize, h: usize, include_edge: bool) {
    let len = x.len();
    if n == 1 {
        let v = x[l];
        x.fill(v);
        return;
    }
    let (mut lp, mut rp) = (l, h);
    while lp > 0 || rp > 0 {
        let mut old = len - rp - lp;
        let e = usize::from(include_edge);
        if include_edge {
            old = old / n * n;
        } else {
            old = (old - 1) / (n - 1) * (n - 1) + 1;
            old -= 1;
        }
        if lp > 0 {
            let chunk = old.min(lp);
            let stop = lp - e;
            let vals: Vec<f64> = (0..chunk).map(|i| x[stop + chunk - i]).collect();
            x[lp - chunk..lp].copy_from_slice(&vals);
            lp -= chunk;
        }
        if rp > 0 {
            let chunk = old.min(rp);
            let start = len as isize - rp as isize + e as isize - 2;
            let vals: Vec<f64> = (0..chunk)
                .map(|i| x[(start - i as isize) as usize])
                .collect();
            let ps = len - rp;
            x[ps..ps + chunk].copy_from_slice(&vals);
            rp -= chunk;
        }
    }
}

/// Reference pad: axis by axis over every line of the padded array, as NumPy does.
fn pad_ref(
    vals: &[f64],
    shape: &[usize],
    pads: &[(usize, usize)],
    mode: PadMode,
    cv: f64,
) -> (Vec<f64>, Vec<usize>) {
    let nd = shape.len();
    let oshape: Vec<usize> = (0..nd).map(|d| shape[d] + pads[d].0 + pads[d].1).collect();
    let mut out = build(&oshape, |idx| {
        let inside = (0..nd).all(|d| (pads[d].0..pads[d].0 + shape[d]).contains(&idx[d]));
        if inside {
            let j: Vec<usize> = (0..nd).map(|d| idx[d] - pads[d].0).collect();
            vals[ravel(&j, shape)]
        } else {
            cv
        }
    });
    if mode == PadMode::Constant {
        return (out, oshape);
    }
    for ax in 0..nd {
        let (l, h) = pads[ax];
        let m = oshape[ax];
        let total: usize = oshape.iter().product();
        if total == 0 {
            continue;
        }
        for start in 0..total {
            let idx = unravel(start, &oshape);
            if idx[ax] != 0 {
                continue;
            }
            let pos = |k: usize| {
                let mut j = idx.clone();
                j[ax] = k;
                ravel(&j, &oshape)
            };
            let mut line: Vec<f64> = (0..m).map(|k| out[pos(k)]).collect();
            let n = shape[ax];
            match mode {
                PadMode::Edge => {
                    for k in 0..m {
                        line[k] = line[k.clamp(l, l + n - 1)];
                    }
                }
                PadMode::Reflect => reflect_line(&mut line, l, n, h, false),
                PadMode::Symmetric => reflect_line(&mut line, l, n, h, true),
                PadMode::Constant => unreachable!(),
            }
            for k in 0..m {
                out[pos(k)] = line[k];
            }
        }
    }
    (out, oshape)
}

#[test]
fn pad_matches_numpy_algorithm_all_modes() {
    let mut rng = Rng::new(17);
    let cases: Vec<(Vec<usize>, Vec<(usize, usize)>)> = vec![
        (vec![5], vec![(2, 3)]),
        (vec![3], vec![(7, 11)]),
        (vec![2], vec![(5, 4)]),
        (vec![1], vec![(2, 3)]),
        (vec![4], vec![(0, 0)]),
        (vec![3, 4], vec![(1, 2)]),
        (vec![3, 4], vec![(0, 0), (5, 1)]),
        (vec![3, 4], vec![(4, 0), (0, 0)]),
        (vec![2, 3, 4], vec![(1, 0), (0, 0), (0, 0)]),
        (vec![2, 3, 4], vec![(0, 0), (2, 9), (0, 0)]),
        (vec![2, 3, 4], vec![(1, 1), (2, 2), (3, 3)]),
        (vec![2, 1, 3, 2], vec![(0, 0), (1, 2), (2, 0), (0, 0)]),
        (vec![2, 0, 3], vec![(1, 1), (0, 0), (1, 1)]),
    ];
    let modes = [
        PadMode::Constant,
        PadMode::Edge,
        PadMode::Reflect,
        PadMode::Symmetric,
    ];
    for dtype in DType::ALL {
        for (shape, pads) in &cases {
            let (_, vals) = rand_array(&mut rng, shape, dtype);
            let full: Vec<(usize, usize)> = if pads.len() == 1 {
                vec![pads[0]; shape.len()]
            } else {
                pads.clone()
            };
            for mode in modes {
                let cv = round_to(3.0, dtype);
                let (want, wshape) = pad_ref(&vals, shape, &full, mode, cv);
                for (l, x) in layouts(&vals, shape, dtype) {
                    let out = ingot::pad(&x, pads, mode, 3.0).unwrap();
                    check(
                        &out,
                        &wshape,
                        dtype,
                        &want,
                        &format!("pad {dtype} {shape:?} {pads:?} {mode:?} {l}"),
                    );
                }
            }
        }
    }
}

#[test]
fn pad_large_and_blocked_layouts() {
    let mut rng = Rng::new(18);
    // Big enough to split across threads; the (N, H, W, C) case pads H and W so trailing C
    // merges into blocks; the transposed layouts take the strided paths.
    let cases: Vec<(Vec<usize>, Vec<(usize, usize)>)> = vec![
        (vec![4, 30, 30, 16], vec![(0, 0), (2, 2), (3, 1), (0, 0)]),
        (vec![90000], vec![(5, 7)]),
        (vec![300, 300], vec![(0, 0), (1, 250)]),
        (vec![300, 300], vec![(290, 1), (0, 0)]),
    ];
    for dtype in [DType::F32, DType::U8, DType::C64] {
        for (shape, pads) in &cases {
            let (_, vals) = rand_array(&mut rng, shape, dtype);
            for mode in [
                PadMode::Constant,
                PadMode::Reflect,
                PadMode::Symmetric,
                PadMode::Edge,
            ] {
                let (want, wshape) = pad_ref(&vals, shape, pads, mode, 0.0);
                for (l, x) in layouts(&vals, shape, dtype) {
                    let out = ingot::pad(&x, pads, mode, 0.0).unwrap();
                    check(
                        &out,
                        &wshape,
                        dtype,
                        &want,
                        &format!("large pad {dtype} {shape:?} {mode:?} {l}"),
                    );
                }
            }
        }
    }
}

#[test]
fn pad_constant_values_and_edge_cases() {
    // The constant is cast to the array's dtype, as NumPy does.
    let i = Array::from_slice(&[1i32, 2], &[2]).unwrap();
    check(
        &ingot::pad(&i, &[(1, 1)], PadMode::Constant, 2.7).unwrap(),
        &[4],
        DType::I32,
        &[2.0, 1.0, 2.0, 2.0],
        "int constant",
    );
    // A constant the dtype can't hold is an error, as in NumPy 2 (not a silent wrap).
    let u = Array::from_slice(&[1u8], &[1]).unwrap();
    for v in [
        ingot::Scalar::Int(-1),
        ingot::Scalar::Int(256),
        ingot::Scalar::Float(f64::NAN),
    ] {
        let e = ingot::pad(&u, &[(1, 0)], PadMode::Constant, v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("[pad]") && e.contains("uint8"), "{e}");
    }
    check(
        &ingot::pad(&u, &[(1, 0)], PadMode::Constant, 255i64).unwrap(),
        &[2],
        DType::U8,
        &[255.0, 1.0],
        "u8 max",
    );
    // A scalar flattens like a 1-d array: axes other than 0 and -1 don't exist.
    let s0 = Array::scalar(1.0f32);
    assert_eq!(ingot::flatten(&s0, 0, -1).unwrap().shape(), &[1][..]);
    assert!(ingot::flatten(&s0, 2, 3).is_err());
    let b = Array::from_slice(&[false], &[1]).unwrap();
    check(
        &ingot::pad(&b, &[(0, 1)], PadMode::Constant, 5).unwrap(),
        &[2],
        DType::Bool,
        &[0.0, 1.0],
        "bool constant",
    );
    let f = Array::from_slice(&[1.0f32], &[1]).unwrap();
    for v in [f64::NAN, f64::NEG_INFINITY, -0.0] {
        let out = ingot::pad(&f, &[(1, 0)], PadMode::Constant, v).unwrap();
        assert_same(&out.to_f64_vec().unwrap(), &[v, 1.0], "special constant");
    }
    let c = Array::from_slice(&[ingot::c64::new(1.0, 2.0)], &[1]).unwrap();
    let out = ingot::pad(&c, &[(1, 0)], PadMode::Constant, ingot::c64::new(0.5, -1.0)).unwrap();
    assert_eq!(
        out.to_vec::<ingot::c64>().unwrap(),
        vec![ingot::c64::new(0.5, -1.0), ingot::c64::new(1.0, 2.0)]
    );
    // 0-d arrays have no axes to pad.
    let s = Array::scalar(4.0f32);
    check(
        &ingot::pad(&s, &[(2, 2)], PadMode::Edge, 0).unwrap(),
        &[],
        DType::F32,
        &[4.0],
        "0-d",
    );
    // An empty axis can be extended only with a constant.
    let e = ingot::zeros(&[0, 2], DType::F32).unwrap();
    check(
        &ingot::pad(&e, &[(1, 1)], PadMode::Constant, 1.0).unwrap(),
        &[2, 4],
        DType::F32,
        &[1.0; 8],
        "empty constant",
    );
    check(
        &ingot::pad(&e, &[(0, 0), (1, 1)], PadMode::Reflect, 0).unwrap(),
        &[0, 4],
        DType::F32,
        &[],
        "empty axis unpadded",
    );
    assert_eq!(
        err_msg(ingot::pad(&e, &[(1, 0), (0, 0)], PadMode::Edge, 0)),
        "[pad] can't extend empty axis 0 of shape (0, 2) using mode Edge; only Constant can"
    );
    assert_eq!(
        err_msg(ingot::pad(
            &e,
            &[(1, 0), (0, 0), (1, 1)],
            PadMode::Constant,
            0
        )),
        "[pad] pad_width has 3 pairs for an array of shape (0, 2): need 1 or 2"
    );
    assert_eq!(
        err_msg(ingot::pad(&f, &[(usize::MAX, 1)], PadMode::Constant, 0)),
        "[pad] pad width on axis 0 is too large"
    );
    assert_eq!(
        err_msg(ingot::pad(
            &ingot::zeros(&[4, 4], DType::U8).unwrap(),
            &[(1 << 40, 0)],
            PadMode::Constant,
            0
        )),
        "[pad] shape (1099511627780, 1099511627780) has too many elements"
    );
}

// ---- roll / diag / tril / triu / meshgrid ----------------------------------------------

#[test]
fn roll_matches_reference() {
    let mut rng = Rng::new(19);
    let cases: Vec<(Vec<usize>, Vec<isize>, Option<Vec<isize>>)> = vec![
        (vec![], vec![3], None),
        (vec![5], vec![2], None),
        (vec![5], vec![-7], Some(vec![0])),
        (vec![3, 4], vec![5], None),
        (vec![3, 4], vec![1, 2], None),
        (vec![3, 4], vec![1], Some(vec![1])),
        (vec![3, 4], vec![1, -1], Some(vec![0, 1])),
        (vec![3, 4], vec![2], Some(vec![0, 1])),
        (vec![3, 4], vec![1, 2], Some(vec![1, 1])),
        (vec![2, 3, 4], vec![4, 3, 2], Some(vec![-1, -2, -3])),
        (vec![2, 0, 4], vec![1], Some(vec![1])),
        (vec![3, 4], vec![12], Some(vec![1])),
    ];
    for dtype in [DType::F64, DType::I16, DType::Bool] {
        for (shape, shift, axis) in &cases {
            let (_, vals) = rand_array(&mut rng, shape, dtype);
            let want = match axis {
                None => {
                    let n = vals.len() as isize;
                    let s: isize = shift.iter().sum();
                    (0..n)
                        .map(|i| vals[(i - s).rem_euclid(n.max(1)) as usize])
                        .collect::<Vec<_>>()
                }
                Some(ax) => {
                    let mut per = vec![0isize; shape.len()];
                    let m = shift.len().max(ax.len());
                    for k in 0..m {
                        let a = ax[if ax.len() == 1 { 0 } else { k }];
                        let a = if a < 0 { a + shape.len() as isize } else { a } as usize;
                        per[a] += shift[if shift.len() == 1 { 0 } else { k }];
                    }
                    build(shape, |idx| {
                        let j: Vec<usize> = idx
                            .iter()
                            .zip(shape)
                            .zip(&per)
                            .map(|((&i, &n), &s)| (i as isize - s).rem_euclid(n as isize) as usize)
                            .collect();
                        vals[ravel(&j, shape)]
                    })
                }
            };
            for (l, x) in layouts(&vals, shape, dtype) {
                let out = ingot::roll(&x, shift, axis.as_deref()).unwrap();
                check(
                    &out,
                    shape,
                    dtype,
                    &want,
                    &format!("roll {shape:?} {shift:?} {axis:?} {l}"),
                );
            }
        }
    }
    let a = ingot::zeros(&[2, 3], DType::F32).unwrap();
    assert_eq!(
        err_msg(ingot::roll(&a, &[1, 2, 3], Some(&[0, 1]))),
        "[roll] shift has 3 entries and axis 2: they must match or one must have a single entry"
    );
    assert_eq!(
        err_msg(ingot::roll(&a, &[1], Some(&[2]))),
        "[roll] axis 2 is out of bounds for an array of dimension 2"
    );
}

#[test]
fn diag_matches_reference() {
    let mut rng = Rng::new(20);
    for dtype in [DType::F32, DType::I64, DType::Bool, DType::C64] {
        for n in [0usize, 1, 4, 300] {
            let (_, v) = rand_array(&mut rng, &[n], dtype);
            for k in [-3isize, -1, 0, 1, 2, 5] {
                let m = n + k.unsigned_abs();
                let want = build(&[m, m], |idx| {
                    let (i, j) = (idx[0] as isize, idx[1] as isize);
                    if j - i == k {
                        v[i.min(j) as usize]
                    } else {
                        0.0
                    }
                });
                for (l, x) in layouts(&v, &[n], dtype) {
                    let out = ingot::diag(&x, k).unwrap();
                    check(
                        &out,
                        &[m, m],
                        dtype,
                        &want,
                        &format!("diag 1-d {dtype} n {n} k {k} {l}"),
                    );
                }
            }
        }
        let shape = [3usize, 5];
        let (_, v) = rand_array(&mut rng, &shape, dtype);
        for k in [-4isize, -1, 0, 2, 4, 6] {
            let len = if k >= 0 {
                (5 - k).clamp(0, 3)
            } else {
                (3 + k).clamp(0, 5)
            } as usize;
            let want: Vec<f64> = (0..len)
                .map(|t| {
                    let (i, j) = if k >= 0 {
                        (t, t + k as usize)
                    } else {
                        (t + k.unsigned_abs(), t)
                    };
                    v[i * 5 + j]
                })
                .collect();
            for (l, x) in layouts(&v, &shape, dtype) {
                check(
                    &ingot::diag(&x, k).unwrap(),
                    &[len],
                    dtype,
                    &want,
                    &format!("diag 2-d k {k} {l}"),
                );
            }
        }
    }
    assert_eq!(
        err_msg(ingot::diag(
            &ingot::zeros(&[2, 2, 2], DType::F32).unwrap(),
            0
        )),
        "[diag] input must be 1-d or 2-d, got shape (2, 2, 2)"
    );
    assert_eq!(
        err_msg(ingot::diag(&Array::scalar(1.0f32), 0)),
        "[diag] input must be 1-d or 2-d, got shape ()"
    );
}

#[test]
fn tril_triu_match_reference() {
    let mut rng = Rng::new(21);
    for dtype in [DType::F32, DType::I32, DType::Bool, DType::BF16] {
        for shape in [
            vec![4],
            vec![3, 5],
            vec![5, 3],
            vec![2, 3, 4],
            vec![2, 0, 3],
            vec![0, 4],
            vec![2, 2, 3, 3],
        ] {
            let (_, mut vals) = rand_array(&mut rng, &shape, dtype);
            if dtype == DType::F32 && !vals.is_empty() {
                let last = vals.len() - 1;
                vals[last] = f64::NAN;
                vals[0] = -0.0;
            }
            let (n, m) = if shape.len() == 1 {
                (shape[0], shape[0])
            } else {
                (shape[shape.len() - 2], shape[shape.len() - 1])
            };
            let wshape = if shape.len() == 1 {
                vec![n, m]
            } else {
                shape.clone()
            };
            for k in [-7isize, -1, 0, 1, 2, 9] {
                let get = |idx: &[usize]| -> f64 {
                    if shape.len() == 1 {
                        vals[idx[1]]
                    } else {
                        vals[ravel(idx, &shape)]
                    }
                };
                let nd = wshape.len();
                let lower = build(&wshape, |idx| {
                    if idx[nd - 1] as isize - idx[nd - 2] as isize <= k {
                        get(idx)
                    } else {
                        0.0
                    }
                });
                let upper = build(&wshape, |idx| {
                    if idx[nd - 1] as isize - idx[nd - 2] as isize >= k {
                        get(idx)
                    } else {
                        0.0
                    }
                });
                for (l, x) in layouts(&vals, &shape, dtype) {
                    check(
                        &ingot::tril(&x, k).unwrap(),
                        &wshape,
                        dtype,
                        &lower,
                        &format!("tril {dtype} {shape:?} {k} {l}"),
                    );
                    check(
                        &ingot::triu(&x, k).unwrap(),
                        &wshape,
                        dtype,
                        &upper,
                        &format!("triu {dtype} {shape:?} {k} {l}"),
                    );
                }
            }
        }
    }
    assert_eq!(
        err_msg(ingot::tril(&Array::scalar(1.0f32), 0)),
        "[tril] input must have at least 1 dimension, got shape ()"
    );
    assert_eq!(
        err_msg(ingot::triu(&Array::scalar(1.0f32), 0)),
        "[triu] input must have at least 1 dimension, got shape ()"
    );
}

#[test]
fn meshgrid_matches_reference() {
    let x = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    let y = Array::from_slice(&[10i32, 20], &[2, 1]).unwrap();
    let z = Array::from_slice(&[5u8, 6, 7, 8], &[4]).unwrap();
    let xs = [
        x.to_f64_vec().unwrap(),
        y.to_f64_vec().unwrap(),
        z.to_f64_vec().unwrap(),
    ];
    let dts = [DType::F32, DType::I32, DType::U8];
    for indexing in ["xy", "ij"] {
        for sparse in [false, true] {
            let out =
                ingot::meshgrid(&[x.clone(), y.clone(), z.clone()], indexing, sparse).unwrap();
            // Full grid shape: (len1, len0, len2) for "xy", (len0, len1, len2) for "ij".
            let full = if indexing == "xy" {
                vec![2, 3, 4]
            } else {
                vec![3, 2, 4]
            };
            // Axis of the grid that input i varies along.
            let along = |i: usize| if indexing == "xy" && i < 2 { 1 - i } else { i };
            for (i, o) in out.iter().enumerate() {
                let mut s = if sparse { vec![1; 3] } else { full.clone() };
                s[along(i)] = full[along(i)];
                let want = build(&s, |idx| xs[i][idx[along(i)]]);
                check(
                    o,
                    &s,
                    dts[i],
                    &want,
                    &format!("meshgrid {indexing} sparse {sparse} output {i}"),
                );
            }
        }
    }
    assert!(ingot::meshgrid(&[], "xy", false).unwrap().is_empty());
    let one = ingot::meshgrid(std::slice::from_ref(&x), "xy", false).unwrap();
    check(&one[0], &[3], DType::F32, &xs[0], "meshgrid one input");
    assert_eq!(
        err_msg(ingot::meshgrid(&[x], "yx", false)),
        "[meshgrid] indexing must be 'xy' or 'ij', got 'yx'"
    );
}

// ---- view ops ---------------------------------------------------------------------------

#[test]
fn reshape_views_and_copies() {
    let mut rng = Rng::new(22);
    let shape = [4usize, 6];
    for dtype in [DType::F32, DType::I8, DType::C64] {
        let (a, vals) = rand_array(&mut rng, &shape, dtype);
        for (l, x) in layouts(&vals, &shape, dtype) {
            for to in [
                vec![24isize],
                vec![2, -1, 3],
                vec![6, 4],
                vec![1, 24, 1],
                vec![-1],
            ] {
                let out = ingot::reshape(&x, &to).unwrap();
                let want_shape: Vec<usize> = ingot::reshape(&a, &to).unwrap().shape().to_vec();
                check(
                    &out,
                    &want_shape,
                    dtype,
                    &vals,
                    &format!("reshape {l} {to:?}"),
                );
            }
            check(
                &ingot::flatten(&x, 0, -1).unwrap(),
                &[24],
                dtype,
                &vals,
                "flatten",
            );
        }
        // A contiguous reshape is a view; a transposed one must copy.
        let v = ingot::reshape(&a, &[3, 8]).unwrap();
        assert!(Arc::ptr_eq(&buffer_of(&v), &buffer_of(&a)));
        let t = ingot::transpose(&a, None).unwrap();
        let tv = ingot::transpose(&ingot::reshape(&t, &[24]).unwrap(), None).unwrap();
        let want = build(&[24], |idx| vals[(idx[0] % 4) * 6 + idx[0] / 4]);
        check(
            &tv,
            &[24],
            dtype,
            &want,
            "reshape of transposed copies in transposed order",
        );
        // Splitting a stepped axis stays a view.
        let s = ingot::slice(&a, &[SliceArg::ALL, SliceArg::new(None, None, 2)]).unwrap();
        let r = ingot::reshape(&s, &[4, 3, 1]).unwrap();
        assert!(Arc::ptr_eq(&buffer_of(&r), &buffer_of(&a)));
        let want = build(&[4, 3, 1], |idx| vals[idx[0] * 6 + idx[1] * 2]);
        check(&r, &[4, 3, 1], dtype, &want, "reshape of stepped view");
    }
    // Views of views: reshape of a slice of a transposed reshape.
    let (a, vals) = rand_array(&mut rng, &[2, 3, 4], DType::F64);
    let v1 = ingot::transpose(&a, Some(&[2, 0, 1])).unwrap(); // (4, 2, 3)
    let v2 = ingot::slice(
        &v1,
        &[
            SliceArg::new(Some(-1), None, -2),
            SliceArg::ALL,
            SliceArg::range(1, 3),
        ],
    )
    .unwrap(); // (2, 2, 2)
    let v3 = ingot::reshape(&v2, &[2, 4]).unwrap();
    let want = build(&[2, 4], |idx| {
        let (i, rest) = (idx[0], idx[1]);
        let (j, k) = (rest / 2, rest % 2 + 1);
        let d2 = 3 - 2 * i; // axis 2 of a
        vals[j * 12 + k * 4 + d2]
    });
    check(&v3, &[2, 4], DType::F64, &want, "views of views");
    // 0-d and empty
    let s = Array::scalar(7i32);
    check(
        &ingot::reshape(&s, &[1, 1]).unwrap(),
        &[1, 1],
        DType::I32,
        &[7.0],
        "0-d reshape",
    );
    check(
        &ingot::flatten(&s, 0, -1).unwrap(),
        &[1],
        DType::I32,
        &[7.0],
        "0-d flatten",
    );
    let e = ingot::zeros(&[0, 3], DType::F32).unwrap();
    check(
        &ingot::reshape(&e, &[3, -1, 2]).unwrap(),
        &[3, 0, 2],
        DType::F32,
        &[],
        "empty reshape",
    );
    let a = ingot::zeros(&[2, 3, 4], DType::F32).unwrap();
    assert_eq!(ingot::flatten(&a, 1, 2).unwrap().shape(), &[2, 12]);
    assert_eq!(ingot::flatten(&a, -3, -2).unwrap().shape(), &[6, 4]);
    assert_eq!(
        err_msg(ingot::reshape(&a, &[5, -1])),
        "[reshape] cannot reshape array of shape (2, 3, 4) into [5, -1]"
    );
    assert_eq!(
        err_msg(ingot::reshape(&a, &[-1, -1])),
        "[reshape] can only specify one unknown dimension (-1)"
    );
    assert_eq!(
        err_msg(ingot::reshape(&a, &[5, 5])),
        "[reshape] cannot reshape array of size 24 and shape (2, 3, 4) into shape (5, 5)"
    );
    assert_eq!(
        err_msg(ingot::reshape(&a, &[-2, 12])),
        "[reshape] negative dimension -2 in [-2, 12]"
    );
    assert_eq!(
        err_msg(ingot::flatten(&a, 2, 1)),
        "[flatten] start axis 2 is after end axis 1"
    );
}

#[test]
fn transpose_swapaxes_moveaxis() {
    let mut rng = Rng::new(23);
    let shape = [2usize, 3, 4];
    let (a, vals) = rand_array(&mut rng, &shape, DType::I32);
    let perms: Vec<Vec<isize>> = vec![vec![0, 1, 2], vec![2, 1, 0], vec![1, 2, 0], vec![-1, 0, -2]];
    for (l, x) in layouts(&vals, &shape, DType::I32) {
        for p in &perms {
            let pu: Vec<usize> = p
                .iter()
                .map(|&v| if v < 0 { (v + 3) as usize } else { v as usize })
                .collect();
            let ws: Vec<usize> = pu.iter().map(|&q| shape[q]).collect();
            let want = build(&ws, |idx| {
                let mut j = [0usize; 3];
                for (k, &q) in pu.iter().enumerate() {
                    j[q] = idx[k];
                }
                vals[ravel(&j, &shape)]
            });
            check(
                &ingot::transpose(&x, Some(p)).unwrap(),
                &ws,
                DType::I32,
                &want,
                &format!("transpose {p:?} {l}"),
            );
        }
        let want = build(&[4, 3, 2], |idx| {
            vals[ravel(&[idx[2], idx[1], idx[0]], &shape)]
        });
        check(
            &ingot::transpose(&x, None).unwrap(),
            &[4, 3, 2],
            DType::I32,
            &want,
            "transpose None",
        );
        check(
            &ingot::swapaxes(&x, 0, -1).unwrap(),
            &[4, 3, 2],
            DType::I32,
            &want,
            "swapaxes",
        );
        let want = build(&[3, 4, 2], |idx| {
            vals[ravel(&[idx[2], idx[0], idx[1]], &shape)]
        });
        check(
            &ingot::moveaxis(&x, 0, -1).unwrap(),
            &[3, 4, 2],
            DType::I32,
            &want,
            "moveaxis 0 -> -1",
        );
        let want = build(&[4, 2, 3], |idx| {
            vals[ravel(&[idx[1], idx[2], idx[0]], &shape)]
        });
        check(
            &ingot::moveaxis(&x, 2, 0).unwrap(),
            &[4, 2, 3],
            DType::I32,
            &want,
            "moveaxis 2 -> 0",
        );
    }
    let t = ingot::transpose(&a, None).unwrap();
    assert!(
        Arc::ptr_eq(&buffer_of(&t), &buffer_of(&a)),
        "transpose is a view"
    );
    assert_eq!(
        err_msg(ingot::transpose(&a, Some(&[0, 1]))),
        "[transpose] axes [0, 1] don't match array of shape (2, 3, 4)"
    );
    assert_eq!(
        err_msg(ingot::transpose(&a, Some(&[0, 1, 1]))),
        "[transpose] repeated axis 1 in [0, 1, 1]"
    );
    assert_eq!(
        err_msg(ingot::transpose(&a, Some(&[0, 1, 3]))),
        "[transpose] axis 3 is out of bounds for an array of dimension 3"
    );
    assert_eq!(
        err_msg(ingot::swapaxes(&a, 0, 3)),
        "[swapaxes] axis 3 is out of bounds for an array of dimension 3"
    );
    assert_eq!(
        err_msg(ingot::moveaxis(&a, -4, 0)),
        "[moveaxis] axis -4 is out of bounds for an array of dimension 3"
    );
    let s = Array::scalar(1.0f32);
    check(
        &ingot::transpose(&s, None).unwrap(),
        &[],
        DType::F32,
        &[1.0],
        "0-d transpose",
    );
}

#[test]
fn broadcast_expand_squeeze_atleast() {
    let mut rng = Rng::new(24);
    let (_, vals) = rand_array(&mut rng, &[3, 1], DType::F16);
    for (l, x) in layouts(&vals, &[3, 1], DType::F16) {
        let want = build(&[2, 3, 4], |idx| vals[idx[1]]);
        check(
            &ingot::broadcast_to(&x, &[2, 3, 4]).unwrap(),
            &[2, 3, 4],
            DType::F16,
            &want,
            &format!("broadcast_to {l}"),
        );
        // A broadcast of a broadcast, then a copy.
        let b =
            ingot::broadcast_to(&ingot::broadcast_to(&x, &[3, 4]).unwrap(), &[2, 3, 4]).unwrap();
        check(
            &ingot::copy(&b).unwrap(),
            &[2, 3, 4],
            DType::F16,
            &want,
            &format!("copy of broadcast {l}"),
        );
        check(
            &ingot::expand_dims(&x, &[0, -1]).unwrap(),
            &[1, 3, 1, 1],
            DType::F16,
            &vals,
            "expand_dims",
        );
        check(
            &ingot::expand_dims(&x, &[1, 2]).unwrap(),
            &[3, 1, 1, 1],
            DType::F16,
            &vals,
            "expand_dims middle",
        );
        check(
            &ingot::squeeze(&x, None).unwrap(),
            &[3],
            DType::F16,
            &vals,
            "squeeze all",
        );
        check(
            &ingot::squeeze(&x, Some(&[-1])).unwrap(),
            &[3],
            DType::F16,
            &vals,
            "squeeze -1",
        );
        check(
            &ingot::atleast_1d(&x).unwrap(),
            &[3, 1],
            DType::F16,
            &vals,
            "atleast_1d",
        );
        check(
            &ingot::atleast_3d(&x).unwrap(),
            &[3, 1, 1],
            DType::F16,
            &vals,
            "atleast_3d 2-d",
        );
    }
    let b = ingot::broadcast_arrays(&[
        Array::from_slice(&[1i32, 2, 3], &[3]).unwrap(),
        Array::from_slice(&[10i32, 20], &[2, 1]).unwrap(),
        Array::scalar(5i32),
    ])
    .unwrap();
    check(
        &b[0],
        &[2, 3],
        DType::I32,
        &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0],
        "broadcast_arrays 0",
    );
    check(
        &b[1],
        &[2, 3],
        DType::I32,
        &[10.0, 10.0, 10.0, 20.0, 20.0, 20.0],
        "broadcast_arrays 1",
    );
    check(&b[2], &[2, 3], DType::I32, &[5.0; 6], "broadcast_arrays 2");
    let e = ingot::zeros(&[0, 1], DType::F32).unwrap();
    check(
        &ingot::broadcast_to(&e, &[2, 0, 3]).unwrap(),
        &[2, 0, 3],
        DType::F32,
        &[],
        "broadcast empty",
    );
    let s = Array::scalar(2u8);
    check(
        &ingot::atleast_1d(&s).unwrap(),
        &[1],
        DType::U8,
        &[2.0],
        "atleast_1d 0-d",
    );
    check(
        &ingot::atleast_2d(&s).unwrap(),
        &[1, 1],
        DType::U8,
        &[2.0],
        "atleast_2d 0-d",
    );
    check(
        &ingot::atleast_3d(&s).unwrap(),
        &[1, 1, 1],
        DType::U8,
        &[2.0],
        "atleast_3d 0-d",
    );
    let v = Array::from_slice(&[1u8, 2], &[2]).unwrap();
    assert_eq!(ingot::atleast_2d(&v).unwrap().shape(), &[1, 2]);
    assert_eq!(ingot::atleast_3d(&v).unwrap().shape(), &[1, 2, 1]);
    let m = ingot::zeros(&[2, 3], DType::F32).unwrap();
    assert_eq!(ingot::atleast_3d(&m).unwrap().shape(), &[2, 3, 1]);
    check(
        &ingot::expand_dims(&s, &[0]).unwrap(),
        &[1],
        DType::U8,
        &[2.0],
        "expand 0-d",
    );
    assert_eq!(
        err_msg(ingot::broadcast_to(&m, &[3, 3])),
        "[broadcast_to] shapes (2, 3) and (3, 3) cannot be broadcast together"
    );
    assert_eq!(
        err_msg(ingot::broadcast_to(&m, &[3])),
        "[broadcast_to] cannot broadcast array of shape (2, 3) to (3,)"
    );
    assert_eq!(
        err_msg(ingot::broadcast_to(&m, &[1, 3])),
        "[broadcast_to] cannot broadcast array of shape (2, 3) to (1, 3)"
    );
    assert_eq!(
        err_msg(ingot::expand_dims(&m, &[3])),
        "[expand_dims] axis 3 is out of bounds for an array of dimension 3"
    );
    assert_eq!(
        err_msg(ingot::expand_dims(&m, &[0, 0])),
        "[expand_dims] repeated axis 0 in [0, 0]"
    );
    assert_eq!(
        err_msg(ingot::squeeze(&m, Some(&[0]))),
        "[squeeze] cannot squeeze axis 0 of size 2 in shape (2, 3)"
    );
    assert_eq!(
        err_msg(ingot::broadcast_arrays(&[
            m.clone(),
            ingot::zeros(&[4], DType::F32).unwrap()
        ])),
        "[broadcast_arrays] shapes (2, 3) and (4,) cannot be broadcast together"
    );
}

/// Python's `range(start, stop, step)` clamped as slicing does, for the reference.
fn py_slice(n: usize, a: SliceArg) -> Vec<usize> {
    let n = n as isize;
    let norm = |v: isize| if v < 0 { v + n } else { v };
    let mut out = Vec::new();
    if a.step > 0 {
        let s = a.start.map(norm).unwrap_or(0).clamp(0, n);
        let e = a.stop.map(norm).unwrap_or(n).clamp(0, n);
        let mut i = s;
        while i < e {
            out.push(i as usize);
            i += a.step;
        }
    } else {
        let s = a.start.map(norm).unwrap_or(n - 1).clamp(-1, n - 1);
        let e = a.stop.map(norm).unwrap_or(-1).clamp(-1, n - 1);
        let mut i = s;
        while i > e {
            out.push(i as usize);
            i += a.step;
        }
    }
    out
}

#[test]
fn slice_and_flip_match_python() {
    let mut rng = Rng::new(25);
    let shape = [5usize, 7];
    let (a, vals) = rand_array(&mut rng, &shape, DType::I64);
    let args = [
        SliceArg::ALL,
        SliceArg::range(1, 4),
        SliceArg::new(None, None, -1),
        SliceArg::new(Some(-2), None, -2),
        SliceArg::new(Some(10), Some(-10), -3),
        SliceArg::new(Some(-100), Some(100), 2),
        SliceArg::new(Some(3), Some(1), 1),
        SliceArg::new(Some(6), Some(2), -1),
        SliceArg::new(None, Some(-1), 3),
    ];
    for (l, x) in layouts(&vals, &shape, DType::I64) {
        for a0 in args {
            for a1 in args {
                let (r0, r1) = (py_slice(5, a0), py_slice(7, a1));
                let ws = [r0.len(), r1.len()];
                let want = build(&ws, |idx| vals[r0[idx[0]] * 7 + r1[idx[1]]]);
                let out = ingot::slice(&x, &[a0, a1]).unwrap();
                check(
                    &out,
                    &ws,
                    DType::I64,
                    &want,
                    &format!("slice {a0:?} {a1:?} {l}"),
                );
                // A slice of that slice (views of views).
                let (q0, q1) = (py_slice(ws[0], args[3]), py_slice(ws[1], args[8]));
                let ws2 = [q0.len(), q1.len()];
                let want2 = build(&ws2, |idx| vals[r0[q0[idx[0]]] * 7 + r1[q1[idx[1]]]]);
                check(
                    &ingot::slice(&out, &[args[3], args[8]]).unwrap(),
                    &ws2,
                    DType::I64,
                    &want2,
                    "slice of slice",
                );
            }
        }
        // Missing trailing args are whole axes.
        let r = py_slice(5, args[3]);
        let want = build(&[r.len(), 7], |idx| vals[r[idx[0]] * 7 + idx[1]]);
        check(
            &ingot::slice(&x, &[args[3]]).unwrap(),
            &[r.len(), 7],
            DType::I64,
            &want,
            "one arg",
        );
        check(
            &ingot::slice_axis(&x, -1, SliceArg::range(2, 3)).unwrap(),
            &[5, 1],
            DType::I64,
            &build(&[5, 1], |i| vals[i[0] * 7 + 2]),
            "slice_axis",
        );
        let want = build(&shape, |idx| vals[(4 - idx[0]) * 7 + idx[1]]);
        check(
            &ingot::flip(&x, Some(&[0])).unwrap(),
            &shape,
            DType::I64,
            &want,
            "flip 0",
        );
        let want = build(&shape, |idx| vals[(4 - idx[0]) * 7 + 6 - idx[1]]);
        check(
            &ingot::flip(&x, None).unwrap(),
            &shape,
            DType::I64,
            &want,
            "flip all",
        );
        check(
            &ingot::flip(&ingot::flip(&x, Some(&[-1])).unwrap(), Some(&[1])).unwrap(),
            &shape,
            DType::I64,
            &vals,
            "flip twice",
        );
    }
    let s = ingot::slice(&a, &[SliceArg::new(None, None, -2)]).unwrap();
    assert!(
        Arc::ptr_eq(&buffer_of(&s), &buffer_of(&a)),
        "slice is a view"
    );
    let e = ingot::slice(&a, &[SliceArg::range(3, 3)]).unwrap();
    assert_eq!(e.shape(), &[0, 7]);
    assert!(e.to_f64_vec().unwrap().is_empty());
    check(
        &ingot::flip(&Array::scalar(3i64), None).unwrap(),
        &[],
        DType::I64,
        &[3.0],
        "0-d flip",
    );
    assert_eq!(
        err_msg(ingot::slice(&a, &[SliceArg::new(None, None, 0)])),
        "[slice] slice step cannot be zero"
    );
    assert_eq!(
        err_msg(ingot::slice(&a, &[SliceArg::ALL; 3])),
        "[slice] 3 slice arguments for an array of shape (5, 7)"
    );
    assert_eq!(
        err_msg(ingot::flip(&a, Some(&[2]))),
        "[flip] axis 2 is out of bounds for an array of dimension 2"
    );
    assert_eq!(
        err_msg(ingot::slice_axis(&a, 2, SliceArg::ALL)),
        "[slice] axis 2 is out of bounds for an array of dimension 2"
    );
}

#[test]
fn diagonal_matches_reference() {
    let mut rng = Rng::new(26);
    let shape = [3usize, 4, 5];
    let (_, vals) = rand_array(&mut rng, &shape, DType::F32);
    for (l, x) in layouts(&vals, &shape, DType::F32) {
        for (a1, a2) in [(0isize, 1isize), (1, 0), (0, 2), (2, 1), (-1, -3)] {
            for off in [-5isize, -2, 0, 1, 3, 6] {
                let (i, j) = (
                    if a1 < 0 {
                        (a1 + 3) as usize
                    } else {
                        a1 as usize
                    },
                    if a2 < 0 {
                        (a2 + 3) as usize
                    } else {
                        a2 as usize
                    },
                );
                let other = 3 - i - j;
                let (n, m) = (shape[i] as isize, shape[j] as isize);
                let len = if off >= 0 {
                    (m - off).min(n)
                } else {
                    (n + off).min(m)
                }
                .max(0) as usize;
                let ws = [shape[other], len];
                let want = build(&ws, |idx| {
                    let t = idx[1] as isize;
                    let (p, q) = if off >= 0 { (t, t + off) } else { (t - off, t) };
                    let mut full = [0usize; 3];
                    full[other] = idx[0];
                    full[i] = p as usize;
                    full[j] = q as usize;
                    vals[ravel(&full, &shape)]
                });
                let out = ingot::diagonal(&x, off, a1, a2).unwrap();
                check(
                    &out,
                    &ws,
                    DType::F32,
                    &want,
                    &format!("diagonal {a1} {a2} {off} {l}"),
                );
            }
        }
    }
    let a = ingot::zeros(&[3, 3], DType::F32).unwrap();
    assert_eq!(
        err_msg(ingot::diagonal(&a, 0, 0, 0)),
        "[diagonal] axis1 and axis2 are both 0"
    );
    assert_eq!(
        err_msg(ingot::diagonal(&a, 0, 0, 2)),
        "[diagonal] axis 2 is out of bounds for an array of dimension 2"
    );
    assert_eq!(
        err_msg(ingot::diagonal(
            &ingot::zeros(&[3], DType::F32).unwrap(),
            0,
            0,
            1
        )),
        "[diagonal] needs at least 2 dims, got shape (3,)"
    );
}

#[test]
fn dtype_views_and_copy() {
    // float32 bits as uint32, and back.
    let f = Array::from_slice(&[1.0f32, -0.0, f32::INFINITY, 0.5], &[2, 2]).unwrap();
    let u = ingot::view(&f, DType::U32).unwrap();
    assert_eq!(
        u.to_vec::<u32>().unwrap(),
        vec![0x3f80_0000, 0x8000_0000, 0x7f80_0000, 0x3f00_0000]
    );
    assert!(
        Arc::ptr_eq(&buffer_of(&u), &buffer_of(&f)),
        "same-size view shares the buffer"
    );
    let back = ingot::view(&u, DType::F32).unwrap();
    assert_same(
        &back.to_f64_vec().unwrap(),
        &[1.0, -0.0, f64::INFINITY, 0.5],
        "round trip",
    );
    // Size changes scale the last axis (little-endian bytes).
    let b = Array::from_slice(&[1u8, 2, 3, 4, 5, 6], &[3, 2]).unwrap();
    let w = ingot::view(&b, DType::U16).unwrap();
    assert_eq!(w.shape(), &[3, 1]);
    assert_eq!(w.to_vec::<u16>().unwrap(), vec![0x0201, 0x0403, 0x0605]);
    let n = ingot::view(
        &Array::from_slice(&[0x0102_0304u32], &[1]).unwrap(),
        DType::U8,
    )
    .unwrap();
    assert_eq!(n.shape(), &[4]);
    assert_eq!(n.to_vec::<u8>().unwrap(), vec![4, 3, 2, 1]);
    // A transposed input is copied to row-major order first.
    let t = ingot::transpose(&b, None).unwrap(); // (2, 3): [[1,3,5],[2,4,6]]
    let t8 = ingot::view(&t, DType::I8).unwrap();
    assert_eq!(t8.to_vec::<i8>().unwrap(), vec![1, 3, 5, 2, 4, 6]);
    let sl = ingot::slice(&b, &[SliceArg::range(1, 3)]).unwrap(); // offset 2 elements
    assert_eq!(
        ingot::view(&sl, DType::U16)
            .unwrap()
            .to_vec::<u16>()
            .unwrap(),
        vec![0x0403, 0x0605]
    );
    let c = ingot::view(
        &Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap(),
        DType::C64,
    )
    .unwrap();
    assert_eq!(
        c.to_vec::<ingot::c64>().unwrap(),
        vec![ingot::c64::new(1.0, 2.0)]
    );
    // bool views are normalized to 0/1.
    let bb = ingot::view(&Array::from_slice(&[0u8, 7, 1], &[3]).unwrap(), DType::Bool).unwrap();
    assert_eq!(bb.to_vec::<bool>().unwrap(), vec![false, true, true]);
    assert_eq!(
        err_msg(ingot::view(&Array::from_slice(&[1u8, 2, 3], &[3]).unwrap(), DType::U16)),
        "[view] cannot view array of shape (3,) and dtype uint8 as uint16: last axis bytes don't divide"
    );
    assert_eq!(
        err_msg(ingot::view(&Array::scalar(1u8), DType::U16)),
        "[view] cannot view array of shape () and dtype uint8 as uint16: last axis bytes don't divide"
    );
    // copy: row-major, contiguous, a new buffer.
    let mut rng = Rng::new(27);
    for dtype in DType::ALL {
        for shape in shapes() {
            let (_, vals) = rand_array(&mut rng, &shape, dtype);
            for (l, x) in layouts(&vals, &shape, dtype) {
                let c = ingot::copy(&x).unwrap();
                check(
                    &c,
                    &shape,
                    dtype,
                    &vals,
                    &format!("copy {dtype} {shape:?} {l}"),
                );
                let d = c.data().unwrap();
                assert_eq!(d.strides, ingot::shape::contiguous_strides(&shape));
                if !vals.is_empty() {
                    assert!(!Arc::ptr_eq(&d.buffer, &buffer_of(&x)));
                }
            }
        }
    }
}

// ---- runner -----------------------------------------------------------------------------

fn run(op: &str, inputs: &[Array], attrs: serde_json::Value) -> ingot::Result<Vec<Array>> {
    let at = ingot::runner::Attrs::new(op, Some(&attrs))?;
    ingot::runner::run_op(op, inputs, &at)
}

#[test]
fn runner_entries_call_the_ops() {
    use serde_json::json;
    let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    let v = |r: ingot::Result<Vec<Array>>| -> Vec<Vec<f64>> {
        r.unwrap().iter().map(|x| x.to_f64_vec().unwrap()).collect()
    };
    assert_eq!(
        v(run(
            "concatenate",
            &[a.clone(), a.clone()],
            json!({"axis": 1})
        ))[0]
            .len(),
        12
    );
    assert_eq!(
        v(run(
            "concatenate",
            &[a.clone(), a.clone()],
            json!({"axis": null})
        ))[0],
        [1., 2., 3., 4., 5., 6., 1., 2., 3., 4., 5., 6.]
    );
    assert_eq!(
        run("concatenate", &[a.clone(), a.clone()], json!({})).unwrap()[0].shape(),
        &[4, 3]
    );
    assert_eq!(
        run("stack", &[a.clone(), a.clone()], json!({"axis": -1})).unwrap()[0].shape(),
        &[2, 3, 2]
    );
    assert_eq!(
        v(run(
            "split",
            std::slice::from_ref(&a),
            json!({"indices_or_sections": [1], "axis": 1})
        ))[1],
        [2., 3., 5., 6.]
    );
    assert_eq!(
        run(
            "array_split",
            std::slice::from_ref(&a),
            json!({"indices_or_sections": 2, "axis": 1})
        )
        .unwrap()
        .len(),
        2
    );
    assert_eq!(
        run("tile", std::slice::from_ref(&a), json!({"reps": [2, 1]})).unwrap()[0].shape(),
        &[4, 3]
    );
    assert_eq!(
        v(run(
            "repeat",
            std::slice::from_ref(&a),
            json!({"repeats": [1, 0, 2], "axis": 1})
        ))[0],
        [1., 3., 3., 4., 6., 6.]
    );
    assert_eq!(
        v(run(
            "repeat",
            std::slice::from_ref(&a),
            json!({"repeats": 2})
        ))[0]
            .len(),
        12
    );
    assert_eq!(
        v(run(
            "pad",
            std::slice::from_ref(&a),
            json!({"pad_width": [[0, 0], [1, 0]], "mode": "constant", "constant_values": 9})
        ))[0],
        [9., 1., 2., 3., 9., 4., 5., 6.]
    );
    assert_eq!(
        v(run(
            "pad",
            std::slice::from_ref(&a),
            json!({"pad_width": [0, 1], "mode": "reflect"})
        ))[0],
        [1., 2., 3., 2., 4., 5., 6., 5., 1., 2., 3., 2.]
    );
    assert_eq!(
        run(
            "pad",
            std::slice::from_ref(&a),
            json!({"pad_width": 1, "mode": "edge"})
        )
        .unwrap()[0]
            .shape(),
        &[4, 5]
    );
    assert_eq!(
        v(run("roll", std::slice::from_ref(&a), json!({"shift": 1})))[0],
        [6., 1., 2., 3., 4., 5.]
    );
    assert_eq!(
        v(run(
            "roll",
            std::slice::from_ref(&a),
            json!({"shift": [1], "axis": [1]})
        ))[0],
        [3., 1., 2., 6., 4., 5.]
    );
    assert_eq!(
        v(run("diag", std::slice::from_ref(&a), json!({"k": 1})))[0],
        [2., 6.]
    );
    assert_eq!(
        v(run("tril", std::slice::from_ref(&a), json!({})))[0],
        [1., 0., 0., 4., 5., 0.]
    );
    assert_eq!(
        v(run("triu", std::slice::from_ref(&a), json!({"k": 1})))[0],
        [0., 2., 3., 0., 0., 6.]
    );
    assert_eq!(
        run(
            "meshgrid",
            &[a.clone(), a.clone()],
            json!({"indexing": "ij", "sparse": true})
        )
        .unwrap()[1]
            .shape(),
        &[1, 6]
    );
    assert_eq!(
        run(
            "reshape",
            std::slice::from_ref(&a),
            json!({"shape": [3, -1]})
        )
        .unwrap()[0]
            .shape(),
        &[3, 2]
    );
    assert_eq!(
        run("flatten", std::slice::from_ref(&a), json!({})).unwrap()[0].shape(),
        &[6]
    );
    assert_eq!(
        v(run(
            "transpose",
            std::slice::from_ref(&a),
            json!({"axes": [1, 0]})
        ))[0],
        [1., 4., 2., 5., 3., 6.]
    );
    assert_eq!(
        run("transpose", std::slice::from_ref(&a), json!({})).unwrap()[0].shape(),
        &[3, 2]
    );
    assert_eq!(
        run(
            "swapaxes",
            std::slice::from_ref(&a),
            json!({"axis1": 0, "axis2": 1})
        )
        .unwrap()[0]
            .shape(),
        &[3, 2]
    );
    assert_eq!(
        run(
            "moveaxis",
            std::slice::from_ref(&a),
            json!({"source": 0, "destination": 1})
        )
        .unwrap()[0]
            .shape(),
        &[3, 2]
    );
    assert_eq!(
        run(
            "broadcast_to",
            std::slice::from_ref(&a),
            json!({"shape": [4, 2, 3]})
        )
        .unwrap()[0]
            .shape(),
        &[4, 2, 3]
    );
    assert_eq!(
        run(
            "broadcast_arrays",
            &[a.clone(), Array::scalar(1.0f32)],
            json!({})
        )
        .unwrap()[1]
            .shape(),
        &[2, 3]
    );
    assert_eq!(
        run(
            "expand_dims",
            std::slice::from_ref(&a),
            json!({"axis": [0, 3]})
        )
        .unwrap()[0]
            .shape(),
        &[1, 2, 3, 1]
    );
    let e = run("expand_dims", std::slice::from_ref(&a), json!({"axis": 0}))
        .unwrap()
        .remove(0);
    assert_eq!(
        run("squeeze", std::slice::from_ref(&e), json!({"axis": 0})).unwrap()[0].shape(),
        &[2, 3]
    );
    assert_eq!(run("squeeze", &[e], json!({})).unwrap()[0].shape(), &[2, 3]);
    for (op, s) in [
        ("atleast_1d", vec![2, 3]),
        ("atleast_2d", vec![2, 3]),
        ("atleast_3d", vec![2, 3, 1]),
        ("copy", vec![2, 3]),
    ] {
        assert_eq!(
            run(op, std::slice::from_ref(&a), json!({})).unwrap()[0].shape(),
            s.as_slice(),
            "{op}"
        );
    }
    assert_eq!(
        v(run(
            "slice",
            std::slice::from_ref(&a),
            json!({"start": [null, 2], "stop": [1], "step": [null, -1]})
        ))[0],
        [3., 2., 1.]
    );
    assert_eq!(
        v(run("flip", std::slice::from_ref(&a), json!({"axis": 1})))[0],
        [3., 2., 1., 6., 5., 4.]
    );
    assert_eq!(
        v(run(
            "diagonal",
            std::slice::from_ref(&a),
            json!({"offset": -1})
        ))[0],
        [4.]
    );
    assert_eq!(
        run("view", std::slice::from_ref(&a), json!({"dtype": "uint8"})).unwrap()[0].shape(),
        &[2, 12]
    );
    // Bad attributes are errors that name the op.
    assert_eq!(
        err_msg(run(
            "pad",
            std::slice::from_ref(&a),
            json!({"pad_width": 1, "mode": "wrap"})
        )),
        "[pad] mode must be constant, edge, reflect or symmetric, got 'wrap'"
    );
    assert_eq!(
        err_msg(run("pad", std::slice::from_ref(&a), json!({}))),
        "[pad] attribute 'pad_width' is required"
    );
    assert_eq!(
        err_msg(run("concatenate", &[], json!({}))),
        "[concatenate] takes one or more inputs, got 0"
    );
    assert_eq!(err_msg(run("split", std::slice::from_ref(&a), json!({"indices_or_sections": 4, "axis": 1}))), "[split] array split does not result in an equal division: axis 1 of shape (2, 3) into 4 sections");
    assert_eq!(
        err_msg(run("tile", &[a], json!({"reps": [-1]}))),
        "[tile] attribute 'reps' has negative entry -1"
    );
}

#[test]
fn trace_matches_diagonal_sums() {
    let mut rng = common::Rng::new(77);
    let (a, v) = common::rand_array(&mut rng, &[3, 4, 5], DType::F64);
    // trace over axes (1, 2) with offset 1: for each i, sum_j a[i, j, j + 1]
    let got = ingot::trace(&a, 1, 1, 2).unwrap().to_vec::<f64>().unwrap();
    let want: Vec<f64> = (0..3)
        .map(|i| (0..4).map(|j| v[i * 20 + j * 5 + j + 1]).sum())
        .collect();
    common::assert_close(&got, &want, 1e-12, 1e-12, "trace");
    let t = ingot::trace(&common::transposed(&v, &[3, 4, 5], DType::F64), -1, 0, 2).unwrap();
    assert_eq!(t.shape(), &[4]);
    let b = Array::from_slice(&[1i8, 2, 3, 4], &[2, 2]).unwrap();
    assert_eq!(ingot::trace(&b, 0, 0, 1).unwrap().dtype(), DType::I64);
    let e = ingot::trace(&Array::from_slice(&[1.0f32], &[1]).unwrap(), 0, 0, 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "[trace] needs at least 2 dims, got shape (1,)"
    );
}
