//! Reductions, arg-reductions and scans against f64 references: every dtype, contiguous,
//! stepped and transposed layouts, several axes sets, keepdims, NaN/inf/-0.0, large inputs
//! that take the parallel and column paths, and the error messages of bad calls.

mod common;
use common::*;
use ingot::{c64, Array, DType};

type Axes = Option<Vec<isize>>;

/// Axes worth testing for an array of `nd` dims.
fn axes_cases(nd: usize) -> Vec<Axes> {
    let mut v: Vec<Axes> = vec![None, Some(vec![])];
    for i in 0..nd as isize {
        v.push(Some(vec![i]));
    }
    if nd >= 1 {
        v.push(Some(vec![-1]));
    }
    if nd >= 2 {
        v.push(Some(vec![nd as isize - 1, 0]));
        v.push(Some((0..nd as isize).collect()));
    }
    v
}

fn norm_axes(axes: &Axes, nd: usize) -> Vec<usize> {
    match axes {
        None => (0..nd).collect(),
        Some(a) => {
            let mut v: Vec<usize> = a
                .iter()
                .map(|&x| {
                    if x < 0 {
                        (x + nd as isize) as usize
                    } else {
                        x as usize
                    }
                })
                .collect();
            v.sort();
            v
        }
    }
}

/// For each output (row-major over the kept dims), the flat input indices it reduces, in
/// row-major order. Also the output shape with and without kept dims.
fn groups(shape: &[usize], axes: &[usize]) -> (Vec<usize>, Vec<usize>, Vec<Vec<usize>>) {
    let keep: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect();
    let squeezed: Vec<usize> = shape
        .iter()
        .enumerate()
        .filter(|(i, _)| !axes.contains(i))
        .map(|(_, &d)| d)
        .collect();
    let nout: usize = keep.iter().product();
    let mut g = vec![Vec::new(); nout];
    let n: usize = shape.iter().product();
    for i in 0..n {
        let mut rem = i;
        let mut idx = vec![0; shape.len()];
        for d in (0..shape.len()).rev() {
            idx[d] = rem % shape[d];
            rem /= shape[d];
        }
        let mut o = 0;
        for d in 0..shape.len() {
            o = o * keep[d] + if axes.contains(&d) { 0 } else { idx[d] };
        }
        g[o].push(i);
    }
    (keep, squeezed, g)
}

/// The array in several layouts holding the same values.
fn layouts(vals: &[f64], shape: &[usize], dtype: DType) -> Vec<(&'static str, Array)> {
    let mut v = vec![
        ("contiguous", array_from_f64(vals, shape, dtype)),
        ("strided", noncontiguous(vals, shape, dtype)),
    ];
    if shape.len() >= 2 {
        v.push(("transposed", transposed(vals, shape, dtype)));
    }
    v
}

/// Values for `dtype` with NaN, infinities and -0.0 mixed in (floats only) when `specials`.
fn test_values(rng: &mut Rng, n: usize, dtype: DType, specials: bool) -> Vec<f64> {
    let mut v = rng.values(n, dtype);
    if specials && dtype.is_float() && n > 8 {
        v[1] = f64::NAN;
        v[n / 2] = f64::INFINITY;
        v[n - 2] = f64::NEG_INFINITY;
        v[3] = -0.0;
    }
    v.iter().map(|&x| round_to(x, dtype)).collect()
}

type RedFn = fn(&Array, Option<&[isize]>, bool) -> ingot::Result<Array>;

/// Runs `f` over shapes x axes x layouts x keepdims and compares with `reference` applied
/// to each group of values.
fn check_reduction(
    name: &str,
    f: RedFn,
    dtypes: &[DType],
    out_dtype: fn(DType) -> DType,
    reference: fn(&[f64], DType) -> f64,
    specials: bool,
    rtol: fn(DType) -> f64,
) {
    let mut rng = Rng::new(7);
    for &dtype in dtypes {
        for shape in shapes() {
            let n: usize = shape.iter().product();
            let vals = test_values(&mut rng, n, dtype, specials);
            for axes in axes_cases(shape.len()) {
                let ax = norm_axes(&axes, shape.len());
                let (keep, squeezed, g) = groups(&shape, &ax);
                let want: Vec<f64> = g
                    .iter()
                    .map(|idx| {
                        let xs: Vec<f64> = idx.iter().map(|&i| vals[i]).collect();
                        round_to(reference(&xs, dtype), out_dtype(dtype))
                    })
                    .collect();
                let scale: Vec<f64> = g
                    .iter()
                    .map(|idx| {
                        idx.iter()
                            .map(|&i| vals[i].abs())
                            .filter(|v| v.is_finite())
                            .sum::<f64>()
                    })
                    .collect();
                for (layout, x) in layouts(&vals, &shape, dtype) {
                    for keepdims in [false, true] {
                        let what = format!(
                            "{name} {dtype} {shape:?} axes {axes:?} {layout} keepdims {keepdims}"
                        );
                        let out = f(&x, axes.as_deref(), keepdims)
                            .unwrap_or_else(|e| panic!("{what}: {e}"));
                        assert_eq!(out.dtype(), out_dtype(dtype), "{what}");
                        assert_eq!(
                            out.shape(),
                            if keepdims { &keep } else { &squeezed },
                            "{what}"
                        );
                        let got = out.to_f64_vec().unwrap();
                        let t = rtol(dtype);
                        for i in 0..want.len() {
                            assert_close(
                                &got[i..i + 1],
                                &want[i..i + 1],
                                t,
                                t * (1.0 + scale[i]),
                                &format!("{what} out {i}"),
                            );
                        }
                    }
                }
            }
        }
    }
}

fn all_real() -> Vec<DType> {
    let mut v = vec![DType::Bool];
    v.extend(INTS);
    v.extend(FLOATS);
    v
}

fn sum_dtype(d: DType) -> DType {
    match d {
        DType::Bool | DType::I8 | DType::I16 | DType::I32 => DType::I64,
        DType::U8 | DType::U16 | DType::U32 => DType::U64,
        d => d,
    }
}

fn ftol(d: DType) -> f64 {
    tol(d) * 4.0
}

#[test]
fn sum_matches_reference() {
    check_reduction(
        "sum",
        ingot::sum,
        &all_real(),
        sum_dtype,
        |xs, _| xs.iter().sum(),
        true,
        ftol,
    );
}

#[test]
fn signed_zeros_and_empty_sums() {
    // As NumPy 2: sums start from +0.0, cumulative sums keep a leading -0.0.
    let a = Array::from_slice(&[-0.0f32, -0.0], &[2]).unwrap();
    let s = ingot::sum(&a, None, false).unwrap().item::<f32>().unwrap();
    assert!(s == 0.0 && s.is_sign_positive());
    let c = ingot::cumsum(&a, None, false, true)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert!(c.iter().all(|v| *v == 0.0 && v.is_sign_negative()));
    let e = Array::from_slice::<f32>(&[], &[0, 3]).unwrap();
    let s = ingot::sum(&e, None, false).unwrap().item::<f32>().unwrap();
    assert!(s == 0.0 && s.is_sign_positive());
    let p = ingot::prod(&e, Some(&[0]), false).unwrap();
    assert_eq!(p.to_vec::<f32>().unwrap(), vec![1.0; 3]);
}

#[test]
fn prod_matches_reference() {
    // Floats near 1 so products stay finite; integers wrap as in NumPy.
    let mut rng = Rng::new(3);
    for dtype in all_real() {
        for shape in shapes() {
            let n: usize = shape.iter().product();
            let vals: Vec<f64> = (0..n)
                .map(|_| {
                    round_to(
                        if dtype.is_float() {
                            rng.range(0.7, 1.4)
                        } else {
                            rng.values(1, dtype)[0]
                        },
                        dtype,
                    )
                })
                .collect();
            for axes in axes_cases(shape.len()) {
                let ax = norm_axes(&axes, shape.len());
                let (_, squeezed, g) = groups(&shape, &ax);
                let out_dt = sum_dtype(dtype);
                let want: Vec<f64> = g
                    .iter()
                    .map(|idx| {
                        if dtype.is_float() {
                            round_to(idx.iter().map(|&i| vals[i]).product(), dtype)
                        } else {
                            let p = idx
                                .iter()
                                .fold(1i64, |p, &i| p.wrapping_mul(vals[i] as i64));
                            if out_dt == DType::U64 {
                                p as u64 as f64
                            } else {
                                p as f64
                            }
                        }
                    })
                    .collect();
                for (layout, x) in layouts(&vals, &shape, dtype) {
                    let out = ingot::prod(&x, axes.as_deref(), false).unwrap();
                    assert_eq!(out.dtype(), out_dt);
                    assert_eq!(out.shape(), squeezed.as_slice());
                    let got = out.to_f64_vec().unwrap();
                    let t = ftol(dtype) * 4.0;
                    assert_close(
                        &got,
                        &want,
                        t,
                        t,
                        &format!("prod {dtype} {shape:?} {axes:?} {layout}"),
                    );
                }
            }
        }
    }
}

fn ref_max(xs: &[f64], _: DType) -> f64 {
    if xs.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
}
fn ref_min(xs: &[f64], _: DType) -> f64 {
    if xs.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    xs.iter().cloned().fold(f64::INFINITY, f64::min)
}

/// max/min over non-empty reductions only (empty ones are errors, tested below).
fn nonempty_shapes_check(name: &str, f: RedFn, reference: fn(&[f64], DType) -> f64) {
    let mut rng = Rng::new(11);
    for dtype in all_real() {
        for shape in shapes() {
            let n: usize = shape.iter().product();
            let vals = test_values(&mut rng, n, dtype, true);
            for axes in axes_cases(shape.len()) {
                let ax = norm_axes(&axes, shape.len());
                if ax.iter().any(|&i| shape[i] == 0) || (axes.is_none() && n == 0) {
                    continue;
                }
                let (keep, squeezed, g) = groups(&shape, &ax);
                let want: Vec<f64> = g
                    .iter()
                    .map(|idx| reference(&idx.iter().map(|&i| vals[i]).collect::<Vec<_>>(), dtype))
                    .collect();
                for (layout, x) in layouts(&vals, &shape, dtype) {
                    for keepdims in [false, true] {
                        let out = f(&x, axes.as_deref(), keepdims).unwrap();
                        assert_eq!(out.dtype(), dtype);
                        assert_eq!(out.shape(), if keepdims { &keep } else { &squeezed });
                        assert_close(
                            &out.to_f64_vec().unwrap(),
                            &want,
                            0.0,
                            0.0,
                            &format!("{name} {dtype} {shape:?} {axes:?} {layout}"),
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn max_min_match_reference() {
    nonempty_shapes_check("max", ingot::max, ref_max);
    nonempty_shapes_check("min", ingot::min, ref_min);
}

#[test]
fn all_any_match_reference() {
    let mut dts = all_real();
    dts.push(DType::C64);
    check_reduction(
        "all",
        ingot::all,
        &dts,
        |_| DType::Bool,
        |xs, _| xs.iter().all(|&v| v != 0.0) as u8 as f64,
        true,
        |_| 0.0,
    );
    check_reduction(
        "any",
        ingot::any,
        &dts,
        |_| DType::Bool,
        |xs, _| xs.iter().any(|&v| v != 0.0) as u8 as f64,
        true,
        |_| 0.0,
    );
    check_reduction(
        "count_nonzero",
        ingot::count_nonzero,
        &dts,
        |_| DType::I64,
        |xs, _| xs.iter().filter(|&&v| v != 0.0).count() as f64,
        true,
        |_| 0.0,
    );
    // Zeros of every sign are zero, NaN is not.
    let a = Array::from_slice(&[-0.0f32, 0.0, f32::NAN], &[3]).unwrap();
    assert!(ingot::any(&a, None, false).unwrap().item::<bool>().unwrap());
    let z = ingot::slice(&a, &[ingot::SliceArg::range(0, 2)]).unwrap();
    assert!(!ingot::any(&z, None, false).unwrap().item::<bool>().unwrap());
}

#[test]
fn mean_matches_reference() {
    check_reduction(
        "mean",
        ingot::mean,
        &all_real(),
        |d| if d.is_float() { d } else { DType::F32 },
        |xs, _| xs.iter().sum::<f64>() / xs.len() as f64,
        true,
        |d| ftol(if d.is_float() { d } else { DType::F32 }),
    );
}

fn c64_array(rng: &mut Rng, shape: &[usize]) -> (Array, Vec<(f64, f64)>) {
    let n: usize = shape.iter().product();
    let v: Vec<c64> = (0..n)
        .map(|_| c64::new(rng.normal() as f32, rng.normal() as f32))
        .collect();
    let vals = v.iter().map(|z| (z.re as f64, z.im as f64)).collect();
    (Array::from_slice(&v, shape).unwrap(), vals)
}

#[test]
fn complex_sum_prod_mean_var() {
    let mut rng = Rng::new(5);
    for shape in [vec![], vec![0], vec![7], vec![3, 4], vec![65, 33]] {
        let (a, vals) = c64_array(&mut rng, &shape);
        let views = [a.clone(), ingot::transpose(&a, None).unwrap()];
        for (k, x) in views.iter().enumerate() {
            let order: Vec<usize> = if k == 0 || shape.len() < 2 {
                (0..vals.len()).collect()
            } else {
                let (r, c) = (shape[0], shape[1]);
                (0..c)
                    .flat_map(|j| (0..r).map(move |i| i * c + j))
                    .collect()
            };
            let xs: Vec<(f64, f64)> = order.iter().map(|&i| vals[i]).collect();
            let n = xs.len();
            let (sr, si) = xs.iter().fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
            let s = ingot::sum(x, None, false).unwrap();
            assert_eq!(s.dtype(), DType::C64);
            let got = s.item::<c64>().unwrap();
            let scale: f64 = xs.iter().map(|z| z.0.abs() + z.1.abs()).sum::<f64>() + 1.0;
            assert!(
                (got.re as f64 - sr).abs() < 1e-5 * scale
                    && (got.im as f64 - si).abs() < 1e-5 * scale
            );
            let m = ingot::mean(x, None, false).unwrap().item::<c64>().unwrap();
            if n == 0 {
                assert!(m.re.is_nan());
            } else {
                assert!((m.re as f64 - sr / n as f64).abs() < 1e-5 * scale);
            }
            // var of complex: mean |z - mean|^2, as float32
            let v = ingot::var(x, None, false, 0).unwrap();
            assert_eq!(v.dtype(), DType::F32);
            let vv = v.item::<f32>().unwrap() as f64;
            if n > 0 {
                let (mr, mi) = (sr / n as f64, si / n as f64);
                let want = xs
                    .iter()
                    .map(|z| (z.0 - mr).powi(2) + (z.1 - mi).powi(2))
                    .sum::<f64>()
                    / n as f64;
                assert!(
                    (vv - want).abs() < 1e-4 * (1.0 + want),
                    "var {vv} vs {want}"
                );
            }
            // product of a few
            if n > 0 && n <= 12 {
                let p = ingot::prod(x, None, false).unwrap().item::<c64>().unwrap();
                let want = xs.iter().fold((1.0, 0.0), |a: (f64, f64), b| {
                    (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0)
                });
                let sc = 1e-4 * (1.0 + want.0.abs() + want.1.abs());
                assert!((p.re as f64 - want.0).abs() < sc && (p.im as f64 - want.1).abs() < sc);
            }
        }
    }
}

fn ref_var(xs: &[f64], ddof: usize) -> f64 {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    ss / (n - ddof as f64).max(0.0)
}

#[test]
fn var_std_match_reference() {
    let mut rng = Rng::new(13);
    for dtype in all_real() {
        for shape in shapes() {
            let n: usize = shape.iter().product();
            let vals = test_values(&mut rng, n, dtype, false);
            for axes in axes_cases(shape.len()) {
                let ax = norm_axes(&axes, shape.len());
                let (keep, squeezed, g) = groups(&shape, &ax);
                for ddof in [0usize, 1] {
                    let want_v: Vec<f64> = g
                        .iter()
                        .map(|idx| ref_var(&idx.iter().map(|&i| vals[i]).collect::<Vec<_>>(), ddof))
                        .collect();
                    let out_dt = if dtype.is_float() { dtype } else { DType::F32 };
                    for (layout, x) in layouts(&vals, &shape, dtype) {
                        for keepdims in [false, true] {
                            let what =
                                format!("var {dtype} {shape:?} {axes:?} ddof {ddof} {layout}");
                            let v = ingot::var(&x, axes.as_deref(), keepdims, ddof).unwrap();
                            let s = ingot::std(&x, axes.as_deref(), keepdims, ddof).unwrap();
                            assert_eq!(v.dtype(), out_dt, "{what}");
                            assert_eq!(s.dtype(), out_dt, "{what}");
                            assert_eq!(
                                v.shape(),
                                if keepdims { &keep } else { &squeezed },
                                "{what}"
                            );
                            let t = ftol(out_dt) * 2.0;
                            let wv: Vec<f64> =
                                want_v.iter().map(|&w| round_to(w, out_dt)).collect();
                            let ws: Vec<f64> =
                                want_v.iter().map(|&w| round_to(w.sqrt(), out_dt)).collect();
                            assert_close(&v.to_f64_vec().unwrap(), &wv, t, t, &what);
                            assert_close(
                                &s.to_f64_vec().unwrap(),
                                &ws,
                                t,
                                t,
                                &format!("std: {what}"),
                            );
                        }
                    }
                }
            }
        }
    }
    // Two passes: a large offset does not swamp the variance.
    let vals: Vec<f32> = (0..1000).map(|i| 1.0e4 + (i % 2) as f32).collect();
    let a = Array::from_slice(&vals, &[1000]).unwrap();
    let v = ingot::var(&a, None, false, 0)
        .unwrap()
        .item::<f32>()
        .unwrap();
    assert!((v - 0.25).abs() < 1e-4, "var {v}");
}

fn ref_lse(xs: &[f64], _: DType) -> f64 {
    if xs.is_empty() {
        return f64::NEG_INFINITY;
    }
    if xs.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if m.is_infinite() {
        return m;
    }
    m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

#[test]
fn logsumexp_matches_reference() {
    check_reduction(
        "logsumexp",
        ingot::logsumexp,
        &all_real(),
        |d| if d.is_float() { d } else { DType::F32 },
        ref_lse,
        true,
        |d| ftol(if d.is_float() { d } else { DType::F32 }),
    );
    // Large values do not overflow; all -inf gives -inf; +inf gives +inf.
    let a = Array::from_slice(&[1000.0f32, 1000.0], &[2]).unwrap();
    let v = ingot::logsumexp(&a, None, false)
        .unwrap()
        .item::<f32>()
        .unwrap();
    assert!((v - (1000.0 + std::f32::consts::LN_2)).abs() < 1e-3);
    let a = Array::from_slice(&[f32::NEG_INFINITY; 3], &[3]).unwrap();
    assert_eq!(
        ingot::logsumexp(&a, None, false)
            .unwrap()
            .item::<f32>()
            .unwrap(),
        f32::NEG_INFINITY
    );
    let a = Array::from_slice(&[1.0f64, f64::INFINITY], &[2]).unwrap();
    assert_eq!(
        ingot::logsumexp(&a, None, false)
            .unwrap()
            .item::<f64>()
            .unwrap(),
        f64::INFINITY
    );
}

fn ref_arg(xs: &[f64], max: bool) -> i64 {
    if let Some(i) = xs.iter().position(|v| v.is_nan()) {
        return i as i64;
    }
    let mut b = 0;
    for i in 1..xs.len() {
        if (max && xs[i] > xs[b]) || (!max && xs[i] < xs[b]) {
            b = i;
        }
    }
    b as i64
}

#[test]
fn argmax_argmin_match_reference() {
    let mut rng = Rng::new(17);
    for dtype in all_real() {
        for shape in shapes() {
            let n: usize = shape.iter().product();
            // Few distinct values: many ties, so "first occurrence" is exercised.
            let mut vals: Vec<f64> = (0..n)
                .map(|_| round_to(rng.below(5) as f64, dtype))
                .collect();
            if dtype.is_float() && n > 8 {
                vals[n / 2] = f64::NAN;
                vals[n - 1] = f64::NAN;
                vals[2] = f64::NEG_INFINITY;
            }
            let mut axes: Vec<Option<isize>> = vec![None];
            axes.extend((0..shape.len() as isize).map(Some));
            if !shape.is_empty() {
                axes.push(Some(-1));
            }
            for axis in axes {
                let ax: Vec<usize> = match axis {
                    None => (0..shape.len()).collect(),
                    Some(a) => vec![if a < 0 {
                        (a + shape.len() as isize) as usize
                    } else {
                        a as usize
                    }],
                };
                let empty = match axis {
                    None => n == 0,
                    Some(_) => shape[ax[0]] == 0,
                };
                for (name, f, max) in [
                    (
                        "argmax",
                        ingot::argmax as fn(&Array, Option<isize>, bool) -> ingot::Result<Array>,
                        true,
                    ),
                    ("argmin", ingot::argmin, false),
                ] {
                    for (layout, x) in layouts(&vals, &shape, dtype) {
                        for keepdims in [false, true] {
                            let what = format!("{name} {dtype} {shape:?} axis {axis:?} {layout} keepdims {keepdims}");
                            let r = f(&x, axis, keepdims);
                            if empty {
                                let e = r.unwrap_err().to_string();
                                assert!(
                                    e.starts_with(&format!(
                                        "[{name}] attempt to get {name} of an empty sequence"
                                    )),
                                    "{what}: {e}"
                                );
                                continue;
                            }
                            let out = r.unwrap();
                            assert_eq!(out.dtype(), DType::I64);
                            let (keep, squeezed, g) = groups(&shape, &ax);
                            let want_shape = match (axis, keepdims) {
                                (None, true) => vec![1; shape.len()],
                                (None, false) => vec![],
                                (_, true) => keep,
                                (_, false) => squeezed,
                            };
                            assert_eq!(out.shape(), want_shape.as_slice(), "{what}");
                            let want: Vec<i64> = g
                                .iter()
                                .map(|idx| {
                                    ref_arg(&idx.iter().map(|&i| vals[i]).collect::<Vec<_>>(), max)
                                })
                                .collect();
                            assert_eq!(out.to_vec::<i64>().unwrap(), want, "{what}");
                        }
                    }
                }
            }
        }
    }
}

type ScanFn = fn(&Array, Option<isize>, bool, bool) -> ingot::Result<Array>;

/// Reference scan of one line: inclusive, or exclusive starting at `identity`.
fn ref_scan(
    xs: &[f64],
    reverse: bool,
    inclusive: bool,
    identity: f64,
    f: fn(f64, f64) -> f64,
) -> Vec<f64> {
    let n = xs.len();
    let mut out = vec![0.0; n];
    let mut acc: Option<f64> = None;
    for s in 0..n {
        let k = if reverse { n - 1 - s } else { s };
        if !inclusive {
            out[k] = acc.unwrap_or(identity);
        }
        acc = Some(match acc {
            None => xs[k],
            Some(a) => f(a, xs[k]),
        });
        if inclusive {
            out[k] = acc.unwrap();
        }
    }
    out
}

fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}
fn nan_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}
fn lae(a: f64, b: f64) -> f64 {
    ref_lse(&[a, b], DType::F64)
}

fn lowest(d: DType) -> f64 {
    match d {
        DType::Bool => 0.0,
        DType::U8 | DType::U16 | DType::U32 | DType::U64 => 0.0,
        DType::I8 => i8::MIN as f64,
        DType::I16 => i16::MIN as f64,
        DType::I32 => i32::MIN as f64,
        DType::I64 => i64::MIN as f64,
        _ => f64::NEG_INFINITY,
    }
}
fn highest(d: DType) -> f64 {
    match d {
        DType::Bool => 1.0,
        DType::U8 => u8::MAX as f64,
        DType::U16 => u16::MAX as f64,
        DType::U32 => u32::MAX as f64,
        DType::U64 => u64::MAX as f64,
        DType::I8 => i8::MAX as f64,
        DType::I16 => i16::MAX as f64,
        DType::I32 => i32::MAX as f64,
        DType::I64 => i64::MAX as f64,
        _ => f64::INFINITY,
    }
}

#[test]
fn scans_match_reference() {
    let mut rng = Rng::new(19);
    let scan_shapes: Vec<Vec<usize>> = vec![
        vec![],
        vec![0],
        vec![1],
        vec![9],
        vec![3, 4],
        vec![2, 0, 3],
        vec![2, 3, 5],
        vec![40, 1100],
    ];
    for dtype in all_real() {
        for shape in &scan_shapes {
            let n: usize = shape.iter().product();
            let vals: Vec<f64> = if dtype.is_float() {
                test_values(&mut rng, n, dtype, n < 1000)
            } else {
                (0..n)
                    .map(|_| round_to(rng.values(1, dtype)[0] / 10.0, dtype).trunc())
                    .collect()
            };
            let mut axes: Vec<Option<isize>> = vec![None];
            axes.extend((0..shape.len() as isize).map(Some));
            let cases: Vec<(&str, ScanFn, fn(f64, f64) -> f64, f64, DType)> = vec![
                ("cumsum", ingot::cumsum, |a, b| a + b, 0.0, sum_dtype(dtype)),
                ("cummax", ingot::cummax, nan_max, lowest(dtype), dtype),
                ("cummin", ingot::cummin, nan_min, highest(dtype), dtype),
                (
                    "logcumsumexp",
                    ingot::logcumsumexp,
                    lae,
                    f64::NEG_INFINITY,
                    if dtype.is_float() { dtype } else { DType::F32 },
                ),
            ];
            for axis in &axes {
                let (lshape, ax) = match axis {
                    None => (vec![n], 0usize),
                    Some(a) => (shape.clone(), *a as usize),
                };
                // lines along `ax` of the (possibly flattened) shape
                let outer: usize = lshape[..ax].iter().product();
                let len = lshape[ax];
                let inner: usize = lshape[ax + 1..].iter().product();
                for (name, f, op, identity, out_dt) in &cases {
                    if *name == "logcumsumexp" && n > 1000 {
                        continue;
                    }
                    for reverse in [false, true] {
                        for inclusive in [true, false] {
                            let mut want = vec![0.0; n];
                            for o in 0..outer {
                                for i in 0..inner {
                                    let idx: Vec<usize> =
                                        (0..len).map(|k| (o * len + k) * inner + i).collect();
                                    let xs: Vec<f64> = idx.iter().map(|&j| vals[j]).collect();
                                    let ys = ref_scan(&xs, reverse, inclusive, *identity, *op);
                                    for (j, y) in idx.iter().zip(ys) {
                                        want[*j] = round_to(y, *out_dt);
                                    }
                                }
                            }
                            for (layout, x) in layouts(&vals, shape, dtype) {
                                let what = format!("{name} {dtype} {shape:?} axis {axis:?} rev {reverse} incl {inclusive} {layout}");
                                let out = f(&x, *axis, reverse, inclusive).unwrap();
                                assert_eq!(out.dtype(), *out_dt, "{what}");
                                assert_eq!(out.shape(), lshape.as_slice(), "{what}");
                                let t = if out_dt.is_float() {
                                    ftol(*out_dt) * 4.0
                                } else {
                                    0.0
                                };
                                assert_close(
                                    &out.to_f64_vec().unwrap(),
                                    &want,
                                    t,
                                    t * (1.0 + len as f64),
                                    &what,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Lines of many tiles (the GPU scans them in one pass, a block a tile, each tile finding
/// the fold of the tiles before it by a look-back): several lines, reverse and exclusive,
/// non-contiguous layouts, and the same bits on every run.
#[test]
fn long_scans_match_reference_and_repeat() {
    let mut rng = Rng::new(29);
    type Case = (&'static str, ScanFn, fn(f64, f64) -> f64, fn(DType) -> f64);
    let cases: Vec<Case> = vec![
        ("cumsum", ingot::cumsum, |a, b| a + b, |_| 0.0),
        ("cummax", ingot::cummax, nan_max, lowest),
        ("cummin", ingot::cummin, nan_min, highest),
    ];
    for (shape, dtypes) in [
        (
            vec![3, 50_001],
            vec![DType::F32, DType::F64, DType::I32, DType::U8, DType::BF16],
        ),
        (vec![(1 << 20) + 77], vec![DType::F32, DType::I64]),
    ] {
        let len = *shape.last().unwrap();
        let lines = shape.iter().product::<usize>() / len;
        for dtype in dtypes {
            let n: usize = shape.iter().product();
            let vals: Vec<f64> = if dtype.is_float() {
                test_values(&mut rng, n, dtype, false)
            } else {
                (0..n)
                    .map(|_| round_to(rng.values(1, dtype)[0] / 10.0, dtype).trunc())
                    .collect()
            };
            for (name, f, op, identity) in &cases {
                let out_dt = if *name == "cumsum" {
                    sum_dtype(dtype)
                } else {
                    dtype
                };
                for reverse in [false, true] {
                    for inclusive in [true, false] {
                        let mut want = vec![0.0; n];
                        let mut scale = vec![0.0; n];
                        for l in 0..lines {
                            let xs = &vals[l * len..(l + 1) * len];
                            let ys = ref_scan(xs, reverse, inclusive, identity(dtype), *op);
                            let abs: Vec<f64> = xs.iter().map(|v| v.abs()).collect();
                            let sc = ref_scan(&abs, reverse, true, 0.0, |a, b| a + b);
                            for k in 0..len {
                                want[l * len + k] = round_to(ys[k], out_dt);
                                scale[l * len + k] = sc[k];
                            }
                        }
                        for (layout, x) in layouts(&vals, &shape, dtype) {
                            let what = format!(
                                "{name} {dtype} {shape:?} rev {reverse} incl {inclusive} {layout}"
                            );
                            let out = f(&x, Some(-1), reverse, inclusive).unwrap();
                            assert_eq!(out.dtype(), out_dt, "{what}");
                            let got = out.to_f64_vec().unwrap();
                            let t = if out_dt.is_float() { ftol(out_dt) } else { 0.0 };
                            for i in 0..n {
                                assert_close(
                                    &got[i..i + 1],
                                    &want[i..i + 1],
                                    t,
                                    t * (1.0 + scale[i]),
                                    &format!("{what} at {i}"),
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    // Float sums in a fixed order: the same bits however the tiles are scheduled.
    let vals = test_values(&mut rng, (1 << 21) + 5, DType::F32, false);
    let x = array_from_f64(&vals, &[vals.len()], DType::F32);
    let first = ingot::cumsum(&x, None, false, true)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    for run in 0..4 {
        let again = ingot::cumsum(&x, None, false, true)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let same = first
            .iter()
            .zip(&again)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "cumsum of {} f32: run {run} differs from the first",
            vals.len()
        );
    }
}

#[test]
fn cumprod_matches_reference() {
    let mut rng = Rng::new(23);
    for dtype in [DType::I32, DType::U8, DType::F32, DType::F64, DType::BF16] {
        let shape = [4usize, 6];
        let vals: Vec<f64> = (0..24)
            .map(|_| {
                round_to(
                    if dtype.is_float() {
                        rng.range(0.5, 1.5)
                    } else {
                        rng.below(4) as f64
                    },
                    dtype,
                )
            })
            .collect();
        for axis in [None, Some(0), Some(1)] {
            for reverse in [false, true] {
                for inclusive in [true, false] {
                    let out =
                        ingot::cumprod(&transposed(&vals, &shape, dtype), axis, reverse, inclusive)
                            .unwrap();
                    let (lshape, ax) = match axis {
                        None => (vec![24usize], 0usize),
                        Some(a) => (shape.to_vec(), a as usize),
                    };
                    let outer: usize = lshape[..ax].iter().product();
                    let len = lshape[ax];
                    let inner: usize = lshape[ax + 1..].iter().product();
                    let mut want = vec![0.0; 24];
                    for o in 0..outer {
                        for i in 0..inner {
                            let idx: Vec<usize> =
                                (0..len).map(|k| (o * len + k) * inner + i).collect();
                            let xs: Vec<f64> = idx.iter().map(|&j| vals[j]).collect();
                            for (j, y) in
                                idx.iter()
                                    .zip(ref_scan(&xs, reverse, inclusive, 1.0, |a, b| a * b))
                            {
                                want[*j] = y;
                            }
                        }
                    }
                    assert_eq!(out.dtype(), sum_dtype(dtype));
                    let t = ftol(dtype) * 8.0;
                    assert_close(
                        &out.to_f64_vec().unwrap(),
                        &want,
                        t,
                        t,
                        &format!("cumprod {dtype} {axis:?} {reverse} {inclusive}"),
                    );
                }
            }
        }
    }
}

#[test]
fn large_reductions_take_parallel_paths() {
    let mut rng = Rng::new(29);
    // f32 sum of 4M normal values: pairwise summation keeps it within 1e-4 of f64.
    let n = 1 << 22;
    let vals: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
    let want: f64 = vals.iter().map(|&v| v as f64).sum();
    let a = Array::from_slice(&vals, &[n]).unwrap();
    let got = ingot::sum(&a, None, false).unwrap().item::<f32>().unwrap() as f64;
    let abs_sum: f64 = vals.iter().map(|&v| (v as f64).abs()).sum();
    assert!(
        (got - want).abs() <= 1e-4 * want.abs().max(1e-3 * abs_sum),
        "sum {got} vs {want}"
    );
    // argmax/argmin with the extreme planted late, ties earlier.
    let mut v2 = vals.clone();
    v2[3_000_001] = 100.0;
    v2[3_500_000] = 100.0;
    v2[123] = -100.0;
    let b = Array::from_slice(&v2, &[n]).unwrap();
    assert_eq!(
        ingot::argmax(&b, None, false)
            .unwrap()
            .item::<i64>()
            .unwrap(),
        3_000_001
    );
    assert_eq!(
        ingot::argmin(&b, None, false)
            .unwrap()
            .item::<i64>()
            .unwrap(),
        123
    );
    v2[3_900_000] = f32::NAN;
    let b = Array::from_slice(&v2, &[n]).unwrap();
    assert_eq!(
        ingot::argmax(&b, None, false)
            .unwrap()
            .item::<i64>()
            .unwrap(),
        3_900_000
    );
    assert!(ingot::max(&b, None, false)
        .unwrap()
        .item::<f32>()
        .unwrap()
        .is_nan());

    // Shapes for the column path (leading axis), the row path with few long rows, and
    // several axes of a transposed view.
    let f64s: Vec<f64> = vals.iter().map(|&v| v as f64).collect();
    for (shape, axes) in [
        (vec![1 << 16, 64], vec![0isize]),
        (vec![1 << 14, 256], vec![0]),
        (vec![64, 1 << 16], vec![0]),
        (vec![2, 1 << 21], vec![1]),
        (vec![4096, 1024], vec![1]),
        (vec![64, 256, 256], vec![0, 2]),
        (vec![64, 256, 256], vec![1]),
    ] {
        let ax = norm_axes(&Some(axes.clone()), shape.len());
        let (_, _, g) = groups(&shape, &ax);
        let want_sum: Vec<f64> = g
            .iter()
            .map(|idx| idx.iter().map(|&i| f64s[i]).sum())
            .collect();
        let scale: Vec<f64> = g
            .iter()
            .map(|idx| idx.iter().map(|&i| f64s[i].abs()).sum())
            .collect();
        let want_max: Vec<f64> = g
            .iter()
            .map(|idx| {
                idx.iter()
                    .map(|&i| f64s[i])
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect();
        for (layout, x) in [
            ("contiguous", Array::from_slice(&vals, &shape).unwrap()),
            ("transposed", transposed(&f64s, &shape, DType::F32)),
        ] {
            let what = format!("{shape:?} {axes:?} {layout}");
            let s = ingot::sum(&x, Some(&axes), false)
                .unwrap()
                .to_f64_vec()
                .unwrap();
            for i in 0..s.len() {
                assert!(
                    (s[i] - want_sum[i]).abs() <= 1e-5 * scale[i] + 1e-6,
                    "sum {what} {i}: {} vs {}",
                    s[i],
                    want_sum[i]
                );
            }
            let m = ingot::max(&x, Some(&axes), false)
                .unwrap()
                .to_f64_vec()
                .unwrap();
            assert_eq!(m, want_max, "max {what}");
            if axes.len() == 1 {
                let am = ingot::argmax(&x, Some(axes[0]), false)
                    .unwrap()
                    .to_vec::<i64>()
                    .unwrap();
                let want: Vec<i64> = g
                    .iter()
                    .map(|idx| ref_arg(&idx.iter().map(|&i| f64s[i]).collect::<Vec<_>>(), true))
                    .collect();
                assert_eq!(am, want, "argmax {what}");
            }
        }
    }
    // A long cumsum.
    let c = ingot::cumsum(&a, None, false, true)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let mut run = 0.0f64;
    for (i, &v) in vals.iter().enumerate() {
        run += v as f64;
        if i % 100_003 == 0 {
            assert!(
                (c[i] as f64 - run).abs() < 1.0 + 1e-3 * run.abs(),
                "cumsum {i}: {} vs {run}",
                c[i]
            );
        }
    }
}

#[test]
fn integer_sums_are_exact_and_wrap() {
    let a = Array::from_slice(&[i32::MAX, i32::MAX, 2], &[3]).unwrap();
    let s = ingot::sum(&a, None, false).unwrap();
    assert_eq!(s.dtype(), DType::I64);
    assert_eq!(s.item::<i64>().unwrap(), 2 * i32::MAX as i64 + 2);
    let b = Array::from_slice(&[i64::MAX, 1], &[2]).unwrap();
    assert_eq!(
        ingot::sum(&b, None, false).unwrap().item::<i64>().unwrap(),
        i64::MIN
    );
    let u = Array::from_slice(&[200u8, 100], &[2]).unwrap();
    let s = ingot::sum(&u, None, false).unwrap();
    assert_eq!(s.dtype(), DType::U64);
    assert_eq!(s.item::<u64>().unwrap(), 300);
    let bools = Array::from_slice(&[true, false, true], &[3]).unwrap();
    assert_eq!(
        ingot::sum(&bools, None, false)
            .unwrap()
            .item::<i64>()
            .unwrap(),
        2
    );
    // mean of ints: exact 64-bit sum, float32 result
    let big = Array::from_slice(&[i64::MAX / 2, i64::MAX / 2], &[2]).unwrap();
    let m = ingot::mean(&big, None, false).unwrap();
    assert_eq!(m.dtype(), DType::F32);
    assert_eq!(m.item::<f32>().unwrap(), (i64::MAX / 2) as f32);
}

#[test]
fn empty_reductions() {
    let e = Array::from_slice::<f32>(&[], &[2, 0]).unwrap();
    assert_eq!(
        ingot::sum(&e, Some(&[1]), false)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![0.0; 2]
    );
    assert_eq!(
        ingot::prod(&e, Some(&[1]), false)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![1.0; 2]
    );
    assert_eq!(
        ingot::all(&e, Some(&[1]), false)
            .unwrap()
            .to_vec::<bool>()
            .unwrap(),
        vec![true; 2]
    );
    assert_eq!(
        ingot::any(&e, Some(&[1]), false)
            .unwrap()
            .to_vec::<bool>()
            .unwrap(),
        vec![false; 2]
    );
    assert!(ingot::mean(&e, None, false)
        .unwrap()
        .item::<f32>()
        .unwrap()
        .is_nan());
    assert!(ingot::var(&e, Some(&[1]), false, 0)
        .unwrap()
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .all(|v| v.is_nan()));
    // A reduction over a non-empty axis of an empty array is empty, not an error.
    let m = ingot::max(&e, Some(&[0]), false).unwrap();
    assert_eq!(m.shape(), &[0]);
    assert_eq!(m.to_vec::<f32>().unwrap(), Vec::<f32>::new());
    let s = ingot::argmax(&e, Some(0), false).unwrap();
    assert_eq!(s.shape(), &[0]);
    // ddof >= n: inf (or NaN for zero deviations), as NumPy
    let a = Array::from_slice(&[1.0f64, 3.0], &[2]).unwrap();
    assert_eq!(
        ingot::var(&a, None, false, 2)
            .unwrap()
            .item::<f64>()
            .unwrap(),
        f64::INFINITY
    );
}

#[test]
fn allclose_and_array_equal() {
    let a = Array::from_slice(&[1.0f32, 2.0, f32::NAN], &[3]).unwrap();
    let b = Array::from_slice(&[1.0f32, 2.000001, f32::NAN], &[3]).unwrap();
    assert!(!ingot::allclose(&a, &b, 1e-5, 1e-8, false).unwrap());
    assert!(ingot::allclose(&a, &b, 1e-5, 1e-8, true).unwrap());
    assert!(!ingot::array_equal(&a, &b, true).unwrap());
    assert!(ingot::array_equal(&a, &a, true).unwrap());
    assert!(!ingot::array_equal(&a, &a, false).unwrap());
    let c = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    assert!(!ingot::array_equal(&a, &c, true).unwrap());
    // allclose broadcasts, array_equal does not
    let one = Array::from_slice(&[1i32], &[1]).unwrap();
    let ones = Array::from_slice(&[1i32, 1, 1], &[3]).unwrap();
    assert!(ingot::allclose(&one, &ones, 0.0, 0.0, false).unwrap());
    assert!(!ingot::array_equal(&one, &ones, false).unwrap());
    assert!(ingot::array_equal(&ones, &ones, false).unwrap());
    let err = ingot::allclose(&c, &ones, 1e-5, 1e-8, false)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "[allclose] shapes (2,) and (3,) cannot be broadcast together"
    );
}

#[test]
fn methods_on_array() {
    let a = Array::from_slice(&[1.0f32, 5.0, 3.0, 2.0], &[2, 2]).unwrap();
    assert_eq!(a.sum(None, false).unwrap().item::<f32>().unwrap(), 11.0);
    assert_eq!(
        a.mean(Some(&[0]), false).unwrap().to_vec::<f32>().unwrap(),
        vec![2.0, 3.5]
    );
    assert_eq!(
        a.max(Some(&[1]), true).unwrap().to_vec::<f32>().unwrap(),
        vec![5.0, 3.0]
    );
    assert_eq!(a.min(None, false).unwrap().item::<f32>().unwrap(), 1.0);
    assert_eq!(a.argmax(None, false).unwrap().item::<i64>().unwrap(), 1);
    assert_eq!(
        a.argmin(Some(1), false).unwrap().to_vec::<i64>().unwrap(),
        vec![0, 1]
    );
}

#[test]
fn error_messages() {
    let a = Array::from_slice(&[1.0f32; 6], &[2, 3]).unwrap();
    let e = |r: ingot::Result<Array>| r.unwrap_err().to_string();
    assert_eq!(
        e(ingot::sum(&a, Some(&[2]), false)),
        "[sum] axis 2 is out of bounds for an array of dimension 2"
    );
    assert_eq!(
        e(ingot::mean(&a, Some(&[-3]), false)),
        "[mean] axis -3 is out of bounds for an array of dimension 2"
    );
    assert_eq!(
        e(ingot::max(&a, Some(&[0, 0]), false)),
        "[max] repeated axis 0 in [0, 0]"
    );
    assert_eq!(
        e(ingot::argmax(&a, Some(2), false)),
        "[argmax] axis 2 is out of bounds for an array of dimension 2"
    );
    assert_eq!(
        e(ingot::cumsum(&a, Some(-3), false, true)),
        "[cumsum] axis -3 is out of bounds for an array of dimension 2"
    );
    assert_eq!(
        e(ingot::var(&a, Some(&[5]), false, 0)),
        "[var] axis 5 is out of bounds for an array of dimension 2"
    );
    assert_eq!(
        e(ingot::std(&a, Some(&[5]), false, 0)),
        "[std] axis 5 is out of bounds for an array of dimension 2"
    );
    let empty = Array::from_slice::<f32>(&[], &[0, 3]).unwrap();
    assert_eq!(
        e(ingot::max(&empty, None, false)),
        "[max] zero-size array to reduction operation max which has no identity (shape (0, 3), axes [0, 1])"
    );
    assert_eq!(
        e(ingot::min(&empty, Some(&[0]), false)),
        "[min] zero-size array to reduction operation min which has no identity (shape (0, 3), axes [0])"
    );
    assert_eq!(
        e(ingot::argmin(&empty, None, false)),
        "[argmin] attempt to get argmin of an empty sequence (shape (0, 3), axis 0)"
    );
    assert_eq!(
        e(ingot::argmax(&empty, Some(0), false)),
        "[argmax] attempt to get argmax of an empty sequence (shape (0, 3), axis 0)"
    );
    let z = Array::from_slice(&[c64::new(1.0, 2.0)], &[1]).unwrap();
    assert_eq!(
        e(ingot::max(&z, None, false)),
        "[max] not supported for dtype complex64 (shape (1,))"
    );
    assert_eq!(
        e(ingot::argmin(&z, None, false)),
        "[argmin] not supported for dtype complex64 (shape (1,))"
    );
    assert_eq!(
        e(ingot::cummax(&z, None, false, true)),
        "[cummax] not supported for dtype complex64 (shape (1,))"
    );
    assert_eq!(
        e(ingot::logsumexp(&z, None, false)),
        "[logsumexp] not supported for dtype complex64 (shape (1,))"
    );
    assert_eq!(
        e(ingot::logcumsumexp(&z, None, false, true)),
        "[logcumsumexp] not supported for dtype complex64 (shape (1,))"
    );
    let s = Array::scalar(1.0f32);
    assert_eq!(
        e(ingot::argmax(&s, Some(0), false)),
        "[argmax] axis 0 is out of bounds for an array of dimension 0"
    );
    // 0-d reductions are fine
    assert_eq!(
        ingot::sum(&s, None, false).unwrap().item::<f32>().unwrap(),
        1.0
    );
    assert_eq!(
        ingot::argmax(&s, None, false)
            .unwrap()
            .item::<i64>()
            .unwrap(),
        0
    );
    assert_eq!(ingot::cumsum(&s, None, false, true).unwrap().shape(), &[1]);
}

/// Long lines, which the GPU scans in runs of tiles: two lines whose second starts off a
/// 16-byte boundary, forward and reverse, inclusive and exclusive, exact in integers and
/// within rounding in f32, and cummax (whose runs must combine, not add).
#[test]
fn long_scans_match_sequential_reference() {
    let n = 2_500_003usize;
    let mut rng = Rng::new(23);
    let ints: Vec<i32> = rng
        .values(2 * n, DType::I32)
        .iter()
        .map(|&v| v as i32)
        .collect();
    let floats: Vec<f32> = rng
        .values(2 * n, DType::F32)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let ai = Array::from_slice(&ints, &[2, n]).unwrap();
    let af = Array::from_slice(&floats, &[2, n]).unwrap();
    for reverse in [false, true] {
        for inclusive in [true, false] {
            let what = format!("reverse {reverse} inclusive {inclusive}");
            let si = ingot::cumsum(&ai, Some(1), reverse, inclusive)
                .unwrap()
                .to_vec::<i64>()
                .unwrap();
            let sf = ingot::cumsum(&af, Some(1), reverse, inclusive)
                .unwrap()
                .to_vec::<f32>()
                .unwrap();
            let mx = ingot::cummax(&af, Some(1), reverse, inclusive)
                .unwrap()
                .to_vec::<f32>()
                .unwrap();
            for r in 0..2 {
                let (mut ri, mut rf, mut rm) = (0i64, 0f64, f32::NEG_INFINITY);
                let (mut max_err, mut scale) = (0f64, 1f64);
                for k in 0..n {
                    let p = if reverse { n - 1 - k } else { k };
                    let j = r * n + p;
                    if !inclusive {
                        assert_eq!(si[j], ri, "cumsum i32 {what} row {r} at {p}");
                        assert_eq!(mx[j], rm, "cummax {what} row {r} at {p}");
                    }
                    ri += ints[j] as i64;
                    rm = rm.max(floats[j]);
                    let before = rf;
                    rf += floats[j] as f64;
                    if inclusive {
                        assert_eq!(si[j], ri, "cumsum i32 {what} row {r} at {p}");
                        assert_eq!(mx[j], rm, "cummax {what} row {r} at {p}");
                    }
                    let want = if inclusive { rf } else { before };
                    scale = scale.max(want.abs());
                    max_err = max_err.max((sf[j] as f64 - want).abs());
                }
                // A sequential f32 sum's rounding walks like sqrt(n) steps of half an ulp of
                // the partial sums (about 0.3 here); any order of adding stays within this.
                assert!(
                    max_err <= 1e-3 * scale + 0.1,
                    "cumsum f32 {what} row {r}: error {max_err} (partial sums up to {scale})"
                );
            }
        }
    }
}
