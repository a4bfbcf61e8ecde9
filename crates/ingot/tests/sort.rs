//! Sort family against plain references: sort, argsort (stability), partition and
//! argpartition (the partitioned property), topk, searchsorted, unique, median. Every dtype,
//! contiguous / stepped / transposed layouts, 0-d and empty arrays, NaN/inf/-0.0, the
//! parallel paths, and exact error messages.

mod common;
use common::*;
use ingot::{c64, Array, DType};
use std::cmp::Ordering;

const ALL_REAL: [DType; 13] = [
    DType::Bool,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::F16,
    DType::BF16,
    DType::F32,
    DType::F64,
];

/// NumPy's real order: NaN after everything.
fn total(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap(),
    }
}

/// Row-major values split into rows along `axis` (each row in axis order).
fn rows_of(vals: &[f64], shape: &[usize], axis: usize) -> Vec<Vec<f64>> {
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    let mut rows = Vec::new();
    for o in 0..outer {
        for i in 0..inner {
            rows.push((0..n).map(|k| vals[(o * n + k) * inner + i]).collect());
        }
    }
    rows
}

/// Inverse of `rows_of`.
fn from_rows(rows: &[Vec<f64>], shape: &[usize], axis: usize) -> Vec<f64> {
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = vec![0.0; shape.iter().product()];
    for (r, row) in rows.iter().enumerate() {
        let (o, i) = (r / inner.max(1), r % inner.max(1));
        for k in 0..n {
            out[(o * n + k) * inner + i] = row[k];
        }
    }
    out
}

/// Values with specials sprinkled in for float dtypes.
fn test_values(rng: &mut Rng, shape: &[usize], dtype: DType) -> Vec<f64> {
    let n: usize = shape.iter().product();
    let mut v = rng.values(n, dtype);
    if dtype.is_float() {
        let specials = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            f64::NAN,
        ];
        for (i, s) in specials.iter().enumerate() {
            if n > 0 {
                let at = (i * 7919 + 3) % n;
                v[at] = *s;
            }
        }
    }
    // duplicates, to exercise stability
    for i in (1..n).step_by(5) {
        v[i] = v[i - 1];
    }
    v.iter().map(|&x| round_to(x, dtype)).collect()
}

fn layouts(vals: &[f64], shape: &[usize], dtype: DType) -> Vec<(&'static str, Array)> {
    vec![
        ("contiguous", array_from_f64(vals, shape, dtype)),
        ("stepped", noncontiguous(vals, shape, dtype)),
        ("transposed", transposed(vals, shape, dtype)),
    ]
}

fn stable_argsort(row: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&a, &b| total(row[a], row[b]));
    idx.into_iter().map(|i| i as f64).collect()
}

fn same_bits(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g.is_nan() && w.is_nan()) || g == w,
            "{what}: element {i}: got {g}, want {w}"
        );
    }
}

#[test]
fn sort_and_argsort_match_reference() {
    let mut rng = Rng::new(11);
    for dtype in ALL_REAL {
        for shape in shapes() {
            let vals = test_values(&mut rng, &shape, dtype);
            let mut axes: Vec<Option<isize>> = (0..shape.len() as isize).map(Some).collect();
            axes.push(Some(-1).filter(|_| !shape.is_empty()));
            axes.push(None);
            for (layout, a) in layouts(&vals, &shape, dtype) {
                for &axis in &axes {
                    let what = format!("{dtype} {shape:?} {layout} axis {axis:?}");
                    let (ref_shape, ax) = match axis {
                        None => (vec![vals.len()], 0),
                        Some(x) => (
                            shape.clone(),
                            if x < 0 {
                                (x + shape.len() as isize) as usize
                            } else {
                                x as usize
                            },
                        ),
                    };
                    let rows = rows_of(&vals, &ref_shape, ax);
                    let sorted: Vec<Vec<f64>> = rows
                        .iter()
                        .map(|r| {
                            let mut r = r.clone();
                            r.sort_by(|a, b| total(*a, *b));
                            r
                        })
                        .collect();
                    let s = ingot::sort(&a, axis).unwrap();
                    assert_eq!(s.shape(), ref_shape.as_slice(), "{what}");
                    assert_eq!(s.dtype(), dtype, "{what}");
                    same_bits(
                        &s.to_f64_vec().unwrap(),
                        &from_rows(&sorted, &ref_shape, ax),
                        &format!("sort {what}"),
                    );
                    let i = ingot::argsort(&a, axis).unwrap();
                    assert_eq!(i.dtype(), DType::I64);
                    let want: Vec<Vec<f64>> = rows.iter().map(|r| stable_argsort(r)).collect();
                    same_bits(
                        &i.to_f64_vec().unwrap(),
                        &from_rows(&want, &ref_shape, ax),
                        &format!("argsort {what}"),
                    );
                }
            }
        }
    }
}

#[test]
fn sort_keeps_negative_zero_order_stable() {
    // -0.0 and 0.0 compare equal: a stable sort keeps them in input order.
    let a = Array::from_slice(&[0.0f32, -0.0, 1.0, -1.0, -0.0], &[5]).unwrap();
    let s = ingot::sort(&a, Some(0)).unwrap().to_vec::<f32>().unwrap();
    let bits: Vec<bool> = s.iter().map(|x| x.is_sign_negative()).collect();
    assert_eq!(s, vec![-1.0, 0.0, 0.0, 0.0, 1.0]);
    assert_eq!(bits, vec![true, false, true, true, false]);
    let i = ingot::argsort(&a, Some(0))
        .unwrap()
        .to_vec::<i64>()
        .unwrap();
    assert_eq!(i, vec![3, 0, 1, 4, 2]);
}

#[test]
fn complex_sorts_lexicographically_with_numpy_nan_classes() {
    let nan = f32::NAN;
    let vals = [
        c64::new(1.0, 2.0),
        c64::new(nan, 0.0),
        c64::new(1.0, nan),
        c64::new(-1.0, 5.0),
        c64::new(1.0, -3.0),
        c64::new(nan, nan),
        c64::new(0.0, nan),
        c64::new(nan, -1.0),
        c64::new(-1.0, 5.0),
    ];
    let a = Array::from_slice(&vals, &[9]).unwrap();
    let want_idx = vec![3i64, 8, 4, 0, 6, 2, 7, 1, 5];
    assert_eq!(
        ingot::argsort(&a, Some(0))
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        want_idx
    );
    let s = ingot::sort(&a, Some(0)).unwrap().to_vec::<c64>().unwrap();
    for (got, &i) in s.iter().zip(&want_idx) {
        let w = vals[i as usize];
        let eq = |x: f32, y: f32| (x.is_nan() && y.is_nan()) || x == y;
        assert!(eq(got.re, w.re) && eq(got.im, w.im), "{got} vs {w}");
    }
    // strided complex: a column of a transposed 2-D array
    let m = Array::from_slice(&vals[..8], &[2, 4]).unwrap();
    let t = ingot::transpose(&m, None).unwrap();
    let idx = ingot::argsort(&t, Some(0))
        .unwrap()
        .to_vec::<i64>()
        .unwrap();
    // column 0 is vals[0..4], column 1 is vals[4..8]
    assert_eq!(idx, vec![3, 0, 0, 2, 2, 3, 1, 1]);
}

/// Values over the whole width of `dtype`'s keys (every radix byte varies), with zeros of
/// both signs, NaNs, infinities and runs of duplicates.
fn wide_values(rng: &mut Rng, n: usize, dtype: DType) -> Vec<f64> {
    let bits = match dtype {
        DType::Bool => 1,
        DType::U8 | DType::I8 => 8,
        DType::U16 | DType::I16 => 16,
        DType::U32 | DType::I32 => 32,
        _ => 52,
    };
    let mut v: Vec<f64> = (0..n)
        .map(|i| {
            let r = rng.next_u64() >> (64 - bits);
            match dtype.kind() {
                ingot::Kind::Float => match i % 97 {
                    0 => f64::NAN,
                    1 => -0.0,
                    2 => 0.0,
                    3 => f64::INFINITY,
                    4 => f64::NEG_INFINITY,
                    _ => rng.normal() * 10f64.powi(rng.below(9) as i32 - 4),
                },
                ingot::Kind::Int => r as f64 - (1u64 << (bits - 1)) as f64,
                _ => r as f64,
            }
        })
        .collect();
    for i in (3..n).step_by(7) {
        v[i] = v[i - 3];
    }
    v.iter().map(|&x| round_to(x, dtype)).collect()
}

#[test]
fn long_float_rows_without_signed_zeros_or_nans() {
    // A GPU sorts such floats by their keys alone and decodes them; one -0.0 in a row (the
    // other rows plain) must bring the carried bits back, with -0.0 and 0.0 in stable order.
    let mut rng = Rng::new(31);
    let (rows, n) = (3, 20011);
    for dtype in [DType::F16, DType::BF16, DType::F32, DType::F64] {
        for zeros in [false, true] {
            let mut vals: Vec<f64> = (0..rows * n)
                .map(|_| round_to(rng.normal() * 10f64.powi(rng.below(5) as i32 - 2), dtype))
                .map(|x| if x == 0.0 { 1.0 } else { x })
                .collect();
            if zeros {
                vals[n + 17] = 0.0;
                vals[n + 4000] = -0.0;
                vals[n + 9000] = 0.0;
            }
            let a = array_from_f64(&vals, &[rows, n], dtype);
            let s = ingot::sort(&a, Some(-1)).unwrap().to_f64_vec().unwrap();
            assert_rows_sorted(&vals, &s, n, &format!("sort {dtype} (zeros {zeros})"));
        }
    }
}

/// Checks each row of `sorted` against the stable sort of the same row of `vals`, bit for
/// bit (any NaN matches any NaN); returns each row's stable order.
fn assert_rows_sorted(vals: &[f64], sorted: &[f64], n: usize, what: &str) -> Vec<Vec<f64>> {
    let mut orders = Vec::new();
    for (r, row) in vals.chunks(n).enumerate() {
        let want = stable_argsort(row);
        for k in 0..n {
            let (g, w) = (sorted[r * n + k], row[want[k] as usize]);
            assert!(
                (g.is_nan() && w.is_nan()) || g.to_bits() == w.to_bits(),
                "{what} row {r} position {k}: got {g}, want {w}"
            );
        }
        orders.push(want);
    }
    orders
}

#[test]
fn long_rows_sort_stably_in_every_dtype() {
    // Rows longer than a block sorts in shared memory: the radix path on a GPU, several
    // tiles a row and a partial last tile, two rows. Values compared bit for bit (the
    // order of -0.0 and 0.0 is the stable one).
    let mut rng = Rng::new(29);
    let (rows, n) = (2, 9001);
    for dtype in ALL_REAL {
        let vals = wide_values(&mut rng, rows * n, dtype);
        let a = array_from_f64(&vals, &[rows, n], dtype);
        let s = ingot::sort(&a, Some(-1)).unwrap().to_f64_vec().unwrap();
        let i = ingot::argsort(&a, Some(-1))
            .unwrap()
            .to_vec::<i64>()
            .unwrap();
        let orders = assert_rows_sorted(&vals, &s, n, &format!("sort {dtype}"));
        for (r, want) in orders.iter().enumerate() {
            for k in 0..n {
                assert_eq!(
                    i[r * n + k] as f64,
                    want[k],
                    "argsort {dtype} row {r} position {k}"
                );
            }
        }
    }
    // complex64: NumPy's NaN classes, then real and imaginary parts
    let class = |z: c64| (z.re.is_nan() as u8) * 2 + z.im.is_nan() as u8;
    let key = |z: c64| {
        let f = |x: f32| if x.is_nan() { 0.0 } else { x };
        (class(z), f(z.re), f(z.im))
    };
    let n = 5003;
    let vals: Vec<c64> = (0..rows * n)
        .map(|i| {
            let pick = |rng: &mut Rng| match rng.below(13) {
                0 => f32::NAN,
                1 => -0.0,
                2 => 0.0,
                3 => 1.0,
                _ => rng.normal() as f32,
            };
            if i % 5 == 4 {
                c64::new(1.0, -0.0)
            } else {
                c64::new(pick(&mut rng), pick(&mut rng))
            }
        })
        .collect();
    let a = Array::from_slice(&vals, &[rows, n]).unwrap();
    let got = ingot::argsort(&a, Some(-1))
        .unwrap()
        .to_vec::<i64>()
        .unwrap();
    let sorted = ingot::sort(&a, Some(-1)).unwrap().to_vec::<c64>().unwrap();
    for r in 0..rows {
        let row = &vals[r * n..(r + 1) * n];
        let mut want: Vec<usize> = (0..n).collect();
        want.sort_by(|&x, &y| key(row[x]).partial_cmp(&key(row[y])).unwrap());
        for k in 0..n {
            assert_eq!(
                got[r * n + k],
                want[k] as i64,
                "c64 argsort row {r} position {k}"
            );
            let (g, w) = (sorted[r * n + k], row[want[k]]);
            let same = |x: f32, y: f32| (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits();
            assert!(
                same(g.re, w.re) && same(g.im, w.im),
                "c64 sort row {r} position {k}: got {g}, want {w}"
            );
        }
    }
}

/// Checks the partitioned property of `part` (row-wise along axis) against the sorted rows.
fn check_partitioned(part: &[f64], sorted: &[f64], kth: usize, what: &str) {
    let pivot = part[kth];
    assert!(
        total(pivot, sorted[kth]) == Ordering::Equal,
        "{what}: kth element {pivot}, want {}",
        sorted[kth]
    );
    for (i, &v) in part.iter().enumerate() {
        let c = total(v, pivot);
        if i < kth {
            assert!(
                c != Ordering::Greater,
                "{what}: {v} before kth is > {pivot}"
            );
        } else if i > kth {
            assert!(c != Ordering::Less, "{what}: {v} after kth is < {pivot}");
        }
    }
}

#[test]
fn partition_and_argpartition_have_the_partitioned_property() {
    let mut rng = Rng::new(12);
    for dtype in ALL_REAL {
        for shape in [vec![7], vec![3, 4], vec![2, 3, 5], vec![65, 33], vec![1]] {
            let vals = test_values(&mut rng, &shape, dtype);
            for (layout, a) in layouts(&vals, &shape, dtype) {
                for ax in 0..shape.len() {
                    let n = shape[ax] as isize;
                    for kth in [0, n / 2, n - 1, -1] {
                        let what = format!("{dtype} {shape:?} {layout} axis {ax} kth {kth}");
                        let k = if kth < 0 { kth + n } else { kth } as usize;
                        let p = ingot::partition(&a, kth, Some(ax as isize)).unwrap();
                        let ip = ingot::argpartition(&a, kth, Some(ax as isize)).unwrap();
                        assert_eq!(p.shape(), shape.as_slice());
                        assert_eq!(ip.dtype(), DType::I64);
                        let rows = rows_of(&vals, &shape, ax);
                        let prow = rows_of(&p.to_f64_vec().unwrap(), &shape, ax);
                        let irow = rows_of(&ip.to_f64_vec().unwrap(), &shape, ax);
                        for ((row, pr), ir) in rows.iter().zip(&prow).zip(&irow) {
                            let mut sorted = row.clone();
                            sorted.sort_by(|a, b| total(*a, *b));
                            check_partitioned(pr, &sorted, k, &format!("partition {what}"));
                            let mut seen = vec![false; row.len()];
                            let gathered: Vec<f64> = ir
                                .iter()
                                .map(|&i| {
                                    let i = i as usize;
                                    assert!(!seen[i], "{what}: index {i} twice");
                                    seen[i] = true;
                                    row[i]
                                })
                                .collect();
                            check_partitioned(
                                &gathered,
                                &sorted,
                                k,
                                &format!("argpartition {what}"),
                            );
                        }
                    }
                }
            }
        }
    }
    // axis None partitions the flattened array
    let a = Array::from_slice(&[5i32, 1, 4, 2, 3, 0], &[2, 3]).unwrap();
    let p = ingot::partition(&a, 2, None).unwrap();
    assert_eq!(p.shape(), &[6]);
    assert_eq!(p.to_vec::<i32>().unwrap()[2], 2);
}

#[test]
fn large_arrays_take_parallel_paths() {
    let mut rng = Rng::new(13);
    // One long row (parallel sort inside the row) and many rows (parallel over rows).
    for shape in [vec![100_003], vec![300, 400], vec![400, 300]] {
        let n: usize = shape.iter().product();
        let vals: Vec<f64> = (0..n).map(|_| (rng.below(1000) as f64) - 500.0).collect();
        for dtype in [DType::F32, DType::I32] {
            let a = array_from_f64(&vals, &shape, dtype);
            let ax = shape.len() - 1;
            let rows = rows_of(&vals, &shape, ax);
            let s = ingot::sort(&a, Some(-1)).unwrap().to_f64_vec().unwrap();
            let want: Vec<Vec<f64>> = rows
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.sort_by(|a, b| total(*a, *b));
                    r
                })
                .collect();
            same_bits(
                &s,
                &from_rows(&want, &shape, ax),
                &format!("sort {shape:?} {dtype}"),
            );
            let i = ingot::argsort(&a, Some(-1)).unwrap().to_f64_vec().unwrap();
            let want: Vec<Vec<f64>> = rows.iter().map(|r| stable_argsort(r)).collect();
            same_bits(
                &i,
                &from_rows(&want, &shape, ax),
                &format!("argsort {shape:?} {dtype}"),
            );
            // a column sort of the same data: rows are strided in the input
            let s0 = ingot::sort(&a, Some(0)).unwrap().to_f64_vec().unwrap();
            let cols = rows_of(&vals, &shape, 0);
            let want: Vec<Vec<f64>> = cols
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.sort_by(|a, b| total(*a, *b));
                    r
                })
                .collect();
            same_bits(
                &s0,
                &from_rows(&want, &shape, 0),
                &format!("sort axis 0 {shape:?}"),
            );
        }
    }
}

#[test]
fn topk_matches_reference() {
    let mut rng = Rng::new(14);
    for dtype in [DType::F32, DType::I16, DType::U8, DType::F64, DType::BF16] {
        for shape in [vec![9], vec![4, 6], vec![3, 5, 2]] {
            let vals = test_values(&mut rng, &shape, dtype);
            for (layout, a) in layouts(&vals, &shape, dtype) {
                for ax in 0..shape.len() {
                    let n = shape[ax];
                    for k in [0, 1, n / 2, n] {
                        for largest in [true, false] {
                            let what = format!(
                                "{dtype} {shape:?} {layout} axis {ax} k {k} largest {largest}"
                            );
                            let (v, i) = ingot::topk(&a, k, ax as isize, largest, true).unwrap();
                            let mut oshape = shape.clone();
                            oshape[ax] = k;
                            assert_eq!(v.shape(), oshape.as_slice(), "{what}");
                            assert_eq!(i.dtype(), DType::I64);
                            let rows = rows_of(&vals, &shape, ax);
                            let (mut wv, mut wi) = (Vec::new(), Vec::new());
                            for row in &rows {
                                let mut idx: Vec<usize> = (0..n).collect();
                                if largest {
                                    idx.sort_by(|&p, &q| total(row[q], row[p]).then(p.cmp(&q)));
                                } else {
                                    idx.sort_by(|&p, &q| total(row[p], row[q]).then(p.cmp(&q)));
                                }
                                wv.push(idx[..k].iter().map(|&j| row[j]).collect::<Vec<_>>());
                                wi.push(idx[..k].iter().map(|&j| j as f64).collect::<Vec<_>>());
                            }
                            same_bits(
                                &v.to_f64_vec().unwrap(),
                                &from_rows(&wv, &oshape, ax),
                                &what,
                            );
                            same_bits(
                                &i.to_f64_vec().unwrap(),
                                &from_rows(&wi, &oshape, ax),
                                &what,
                            );
                        }
                    }
                }
            }
        }
    }
    let a = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    assert_eq!(
        ingot::topk(&a, 4, 0, true, true).unwrap_err().to_string(),
        "[topk] k = 4 is larger than the size 3 of axis 0 in shape (3,)"
    );
}

#[test]
fn searchsorted_matches_reference() {
    let mut rng = Rng::new(15);
    for dtype in ALL_REAL {
        let n = 40;
        let mut sorted = test_values(&mut rng, &[n], dtype);
        sorted.sort_by(|a, b| total(*a, *b));
        let a = array_from_f64(&sorted, &[n], dtype);
        for shape in [vec![], vec![0], vec![5], vec![3, 7]] {
            let vals = test_values(&mut rng, &shape, dtype);
            for (layout, v) in layouts(&vals, &shape, dtype) {
                for right in [false, true] {
                    let got = ingot::searchsorted(&a, &v, right).unwrap();
                    assert_eq!(got.shape(), shape.as_slice());
                    assert_eq!(got.dtype(), DType::I64);
                    let want: Vec<f64> = vals
                        .iter()
                        .map(|&x| {
                            sorted
                                .iter()
                                .filter(|&&e| {
                                    let c = total(e, x);
                                    c == Ordering::Less || (right && c == Ordering::Equal)
                                })
                                .count() as f64
                        })
                        .collect();
                    same_bits(
                        &got.to_f64_vec().unwrap(),
                        &want,
                        &format!("{dtype} {shape:?} {layout} right {right}"),
                    );
                }
            }
        }
    }
    // a stepped sorted array, and promotion of int `a` with float values
    let a = Array::from_slice(&[0i32, 9, 1, 9, 2, 9, 2, 9, 5, 9], &[10]).unwrap();
    let a = ingot::slice(&a, &[ingot::SliceArg::new(None, None, 2)]).unwrap();
    let v = Array::from_slice(&[2.0f32, 2.5, -1.0, 6.0, f32::NAN], &[5]).unwrap();
    let l = ingot::searchsorted(&a, &v, false)
        .unwrap()
        .to_vec::<i64>()
        .unwrap();
    let r = ingot::searchsorted(&a, &v, true)
        .unwrap()
        .to_vec::<i64>()
        .unwrap();
    assert_eq!(l, vec![2, 4, 0, 5, 5]);
    assert_eq!(r, vec![4, 4, 0, 5, 5]);
    // a Rust number as the value gives a 0-d result
    let s = ingot::searchsorted(&a, 2, true).unwrap();
    assert_eq!(s.shape(), &[] as &[usize]);
    assert_eq!(s.item::<i64>().unwrap(), 4);
}

#[test]
fn unique_matches_reference() {
    let mut rng = Rng::new(16);
    for dtype in ALL_REAL {
        for shape in [vec![], vec![0], vec![9], vec![4, 6], vec![3, 5, 2]] {
            let vals = test_values(&mut rng, &shape, dtype);
            for (layout, a) in layouts(&vals, &shape, dtype) {
                let what = format!("{dtype} {shape:?} {layout}");
                let u = ingot::unique(&a, true, true, true).unwrap();
                // reference: sorted distinct values, all NaNs one value
                let mut distinct: Vec<f64> = Vec::new();
                let mut sorted = vals.clone();
                sorted.sort_by(|a, b| total(*a, *b));
                for &x in &sorted {
                    if distinct
                        .last()
                        .is_none_or(|&l| total(l, x) != Ordering::Equal)
                    {
                        distinct.push(x);
                    }
                }
                let pos = |x: f64| {
                    distinct
                        .iter()
                        .position(|&d| total(d, x) == Ordering::Equal)
                        .unwrap()
                };
                assert_eq!(u.values.dtype(), dtype);
                let got = u.values.to_f64_vec().unwrap();
                // -0.0 and 0.0 are one value; which one shows is the first occurrence's
                same_bits(
                    &got.iter().map(|x| x + 0.0).collect::<Vec<_>>(),
                    &distinct.iter().map(|x| x + 0.0).collect::<Vec<_>>(),
                    &format!("values {what}"),
                );
                let first: Vec<f64> = distinct
                    .iter()
                    .map(|&d| {
                        vals.iter()
                            .position(|&x| total(x, d) == Ordering::Equal)
                            .unwrap() as f64
                    })
                    .collect();
                same_bits(
                    &u.indices.unwrap().to_f64_vec().unwrap(),
                    &first,
                    &format!("index {what}"),
                );
                let inv = u.inverse.unwrap();
                assert_eq!(inv.shape(), shape.as_slice(), "{what}");
                let want_inv: Vec<f64> = vals.iter().map(|&x| pos(x) as f64).collect();
                same_bits(
                    &inv.to_f64_vec().unwrap(),
                    &want_inv,
                    &format!("inverse {what}"),
                );
                let counts: Vec<f64> = distinct
                    .iter()
                    .map(|&d| {
                        vals.iter()
                            .filter(|&&x| total(x, d) == Ordering::Equal)
                            .count() as f64
                    })
                    .collect();
                same_bits(
                    &u.counts.unwrap().to_f64_vec().unwrap(),
                    &counts,
                    &format!("counts {what}"),
                );
            }
        }
    }
    let a = Array::from_slice(&[3i8, 1, 3], &[3]).unwrap();
    let u = ingot::unique(&a, false, false, false).unwrap();
    assert!(u.indices.is_none() && u.inverse.is_none() && u.counts.is_none());
    assert_eq!(u.values.to_vec::<i8>().unwrap(), vec![1, 3]);
}

fn median_ref(row: &[f64]) -> f64 {
    if row.is_empty() || row.iter().any(|x| x.is_nan()) {
        return f64::NAN;
    }
    let mut r = row.to_vec();
    r.sort_by(|a, b| total(*a, *b));
    let m = r.len();
    if m % 2 == 1 {
        r[m / 2]
    } else {
        (r[m / 2 - 1] + r[m / 2]) / 2.0
    }
}

#[test]
fn median_matches_reference() {
    let mut rng = Rng::new(17);
    for dtype in ALL_REAL {
        for shape in [
            vec![],
            vec![0],
            vec![1],
            vec![7],
            vec![6],
            vec![4, 6],
            vec![3, 5, 2],
            vec![2, 0, 3],
        ] {
            let mut vals = test_values(&mut rng, &shape, dtype);
            if dtype.is_float() && vals.len() > 20 {
                // keep most slices NaN-free so the means get tested too
                for v in vals.iter_mut().skip(1) {
                    if v.is_nan() {
                        *v = 1.5;
                    }
                }
            }
            let nd = shape.len();
            let mut axes_list: Vec<Option<Vec<isize>>> = vec![None];
            for ax in 0..nd {
                axes_list.push(Some(vec![ax as isize]));
            }
            if nd == 3 {
                axes_list.push(Some(vec![0, 2]));
                axes_list.push(Some(vec![-1, 1]));
            }
            let out_dtype = if dtype.is_float() { dtype } else { DType::F32 };
            for (layout, a) in layouts(&vals, &shape, dtype) {
                for axes in &axes_list {
                    for keepdims in [false, true] {
                        let what =
                            format!("{dtype} {shape:?} {layout} axes {axes:?} keepdims {keepdims}");
                        let m = ingot::median(&a, axes.as_deref(), keepdims).unwrap();
                        assert_eq!(m.dtype(), out_dtype, "{what}");
                        let red: Vec<usize> = match axes {
                            None => (0..nd).collect(),
                            Some(ax) => ax
                                .iter()
                                .map(|&x| {
                                    if x < 0 {
                                        (x + nd as isize) as usize
                                    } else {
                                        x as usize
                                    }
                                })
                                .collect(),
                        };
                        let kept: Vec<usize> = (0..nd).filter(|i| !red.contains(i)).collect();
                        let want_shape: Vec<usize> = if keepdims {
                            (0..nd)
                                .map(|i| if red.contains(&i) { 1 } else { shape[i] })
                                .collect()
                        } else {
                            kept.iter().map(|&i| shape[i]).collect()
                        };
                        assert_eq!(m.shape(), want_shape.as_slice(), "{what}");
                        // reference: group elements by their kept index
                        let kept_shape: Vec<usize> = kept.iter().map(|&i| shape[i]).collect();
                        let nk: usize = kept_shape.iter().product();
                        let mut groups = vec![Vec::new(); nk];
                        let strides = ingot::shape::contiguous_strides(&shape);
                        for (flat, &v) in vals.iter().enumerate() {
                            let idx: Vec<usize> = (0..nd)
                                .map(|d| (flat / strides[d] as usize) % shape[d])
                                .collect();
                            let mut g = 0;
                            for &d in &kept {
                                g = g * shape[d] + idx[d];
                            }
                            groups[g].push(v);
                        }
                        let want: Vec<f64> = groups
                            .iter()
                            .map(|g| round_to(median_ref(g), out_dtype))
                            .collect();
                        let t = tol(out_dtype);
                        assert_close(&m.to_f64_vec().unwrap(), &want, t, t, &what);
                    }
                }
            }
        }
    }
    // NaN anywhere in a slice gives NaN for that slice only
    let a = Array::from_slice(&[1.0f32, f32::NAN, 3.0, 4.0, 2.0, 6.0], &[2, 3]).unwrap();
    let m = ingot::median(&a, Some(&[1]), false)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert!(m[0].is_nan());
    assert_eq!(m[1], 4.0);
    // integers average in float
    let a = Array::from_slice(&[1i64, 2, 4, 100], &[4]).unwrap();
    assert_eq!(
        ingot::median(&a, None, false)
            .unwrap()
            .item::<f32>()
            .unwrap(),
        3.0
    );
}

#[test]
fn bad_calls_give_exact_errors() {
    let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    let s = Array::scalar(1.0f32);
    let err = |r: ingot::Result<Array>| r.unwrap_err().to_string();
    assert_eq!(
        err(ingot::sort(&a, Some(2))),
        "[sort] axis 2 is out of bounds for an array of dimension 2"
    );
    assert_eq!(
        err(ingot::sort(&s, Some(-1))),
        "[sort] axis -1 is out of bounds for an array of dimension 0"
    );
    // axis None flattens a 0-d array to one element
    assert_eq!(ingot::sort(&s, None).unwrap().shape(), &[1]);
    assert_eq!(
        err(ingot::argsort(&a, Some(-3))),
        "[argsort] axis -3 is out of bounds for an array of dimension 2"
    );
    assert_eq!(
        err(ingot::partition(&a, 3, Some(1))),
        "[partition] kth(=3) out of bounds (3) for axis 1 of shape (2, 3)"
    );
    assert_eq!(
        err(ingot::argpartition(&a, -7, None)),
        "[argpartition] kth(=-7) out of bounds (6) for axis 0 of shape (6,)"
    );
    let e = Array::from_slice::<f32>(&[], &[0]).unwrap();
    assert_eq!(
        err(ingot::partition(&e, 0, None)),
        "[partition] kth(=0) out of bounds (0) for axis 0 of shape (0,)"
    );
    assert_eq!(
        err(ingot::searchsorted(&a, &s, false)),
        "[searchsorted] a must be 1-D, got shape (2, 3)"
    );
    assert_eq!(
        err(ingot::median(&a, Some(&[0, 0]), false)),
        "[median] repeated axis 0 in [0, 0]"
    );
    assert_eq!(
        err(ingot::median(&a, Some(&[2]), false)),
        "[median] axis 2 is out of bounds for an array of dimension 2"
    );
    assert_eq!(
        ingot::topk(&a, 1, 2, true, true).unwrap_err().to_string(),
        "[topk] axis 2 is out of bounds for an array of dimension 2"
    );
}
