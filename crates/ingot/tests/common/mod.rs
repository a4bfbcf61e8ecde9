//! Helpers shared by the op test suites: random inputs, non-contiguous views of the same
//! values, and NaN-aware comparison against f64 references.
#![allow(dead_code)]

use ingot::{Array, DType, Element, Result};

/// A small deterministic generator (SplitMix64): tests are reproducible without a crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Random values suited to `dtype`: normal floats, small integers, random bools.
    pub fn values(&mut self, n: usize, dtype: DType) -> Vec<f64> {
        (0..n)
            .map(|_| match dtype.kind() {
                ingot::Kind::Bool => (self.below(2)) as f64,
                ingot::Kind::UInt => self.below(50) as f64,
                ingot::Kind::Int => self.below(100) as f64 - 50.0,
                _ => self.normal() * 2.0,
            })
            .collect()
    }
}

/// An array of `dtype` holding `vals` (converted), row-major.
pub fn array_from_f64(vals: &[f64], shape: &[usize], dtype: DType) -> Array {
    ingot::dispatch_dtype!(dtype, T => {
        let v: Vec<T> = vals.iter().map(|&x| T::from_f64(x)).collect();
        Array::from_slice(&v, shape).unwrap()
    })
}

/// A random array and its values as f64 (after rounding to the dtype).
pub fn rand_array(rng: &mut Rng, shape: &[usize], dtype: DType) -> (Array, Vec<f64>) {
    let n: usize = shape.iter().product();
    let vals = rng.values(n, dtype);
    let a = array_from_f64(&vals, shape, dtype);
    let back = a.to_f64_vec().unwrap();
    (a, back)
}

/// The same values as `vals`/`shape`, laid out non-contiguously: a stepped slice of a wider
/// array (every other element of a doubled last axis), so kernels take their strided path.
pub fn noncontiguous(vals: &[f64], shape: &[usize], dtype: DType) -> Array {
    if shape.is_empty() {
        return array_from_f64(vals, shape, dtype);
    }
    let last = *shape.last().unwrap();
    let mut wide_shape = shape.to_vec();
    *wide_shape.last_mut().unwrap() = last * 2;
    let mut wide = vec![f64::NAN; vals.len() * 2];
    for (i, &v) in vals.iter().enumerate() {
        let row = i / last.max(1);
        let col = i % last.max(1);
        wide[row * last * 2 + col * 2] = v;
    }
    // Poison the gaps so a kernel that reads them shows it.
    for i in 0..wide.len() {
        if i % 2 == 1 {
            wide[i] = 7777.0;
        }
    }
    let w = array_from_f64(&wide, &wide_shape, dtype);
    let mut args = vec![ingot::SliceArg::ALL; shape.len()];
    *args.last_mut().unwrap() = ingot::SliceArg::new(None, None, 2);
    let v = ingot::slice(&w, &args).unwrap();
    assert_eq!(v.shape(), shape);
    v
}

/// A transposed view holding `vals`/`shape` (2-D and up): built contiguous as the reversed
/// shape, then transposed.
pub fn transposed(vals: &[f64], shape: &[usize], dtype: DType) -> Array {
    let nd = shape.len();
    if nd < 2 {
        return noncontiguous(vals, shape, dtype);
    }
    let rev: Vec<usize> = shape.iter().rev().copied().collect();
    // element at index (i0..in) of the result sits at reversed index in the source
    let n = vals.len();
    let mut src = vec![0.0; n];
    let rstr = ingot::shape::contiguous_strides(&rev);
    let str_ = ingot::shape::contiguous_strides(shape);
    for (i, &v) in vals.iter().enumerate() {
        let mut rem = i;
        let mut off = 0isize;
        for d in 0..nd {
            let idx = rem / str_[d] as usize;
            rem %= str_[d] as usize;
            off += idx as isize * rstr[nd - 1 - d];
        }
        src[off as usize] = v;
    }
    let a = array_from_f64(&src, &rev, dtype);
    ingot::transpose(&a, None).unwrap()
}

/// Compares with NaN == NaN and infinities equal; tolerance `atol + rtol * |want|`.
pub fn assert_close(got: &[f64], want: &[f64], rtol: f64, atol: f64, what: &str) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length {} vs {}",
        got.len(),
        want.len()
    );
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= atol + rtol * w.abs()
        };
        assert!(
            ok,
            "{what}: element {i}: got {g}, want {w} (rtol {rtol}, atol {atol})"
        );
    }
}

/// Relative tolerance suited to a dtype's precision.
pub fn tol(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => 2e-3,
        DType::BF16 => 1.6e-2,
        DType::F32 | DType::C64 => 1e-5,
        DType::F64 => 1e-12,
        _ => 0.0,
    }
}

/// Shapes worth testing: 0-d, empty, 1-d, 2-d, 3-d.
pub fn shapes() -> Vec<Vec<usize>> {
    vec![
        vec![],
        vec![0],
        vec![1],
        vec![7],
        vec![3, 4],
        vec![2, 0, 3],
        vec![2, 3, 5],
        vec![65, 33],
    ]
}

pub const FLOATS: [DType; 4] = [DType::F16, DType::BF16, DType::F32, DType::F64];
pub const INTS: [DType; 8] = [
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
];

/// Converts a value to the dtype and back (what the array can hold).
pub fn round_to(v: f64, dtype: DType) -> f64 {
    ingot::dispatch_dtype!(dtype, T => T::from_f64(v).to_f64())
}

// ---- differentiation checks -------------------------------------------------------------

pub type F = Box<dyn Fn(&[Array]) -> Result<Array>>;

pub fn dot(a: &Array, b: &Array) -> f64 {
    let x = a.to_f64_vec().unwrap();
    let y = b.to_f64_vec().unwrap();
    x.iter().zip(&y).map(|(p, q)| p * q).sum()
}

pub fn axpy(x: &Array, v: &Array, eps: f64) -> Array {
    ingot::add(x, ingot::multiply(v, eps).unwrap()).unwrap()
}

/// Checks f's vjp and jvp at random points of `domain` along random directions:
/// ⟨u, (f(x+εv) - f(x-εv)) / 2ε⟩ must equal Σ⟨vjp_i, v_i⟩ and ⟨u, jvp⟩.
pub fn check_grad(name: &str, f: &F, shapes: &[&[usize]], domain: (f64, f64), seed: u64) {
    let mut rng = Rng::new(seed);
    let xs: Vec<Array> = shapes
        .iter()
        .map(|s| {
            let n: usize = s.iter().product();
            let v: Vec<f64> = (0..n).map(|_| rng.range(domain.0, domain.1)).collect();
            Array::from_vec(v, s).unwrap()
        })
        .collect();
    let y = f(&xs).unwrap_or_else(|e| panic!("{name}: {e}"));
    let yn = y.size();
    let u = Array::from_vec(
        (0..yn).map(|_| rng.normal()).collect::<Vec<f64>>(),
        y.shape(),
    )
    .unwrap();
    let vs: Vec<Array> = xs
        .iter()
        .map(|x| {
            let n = x.size();
            Array::from_vec(
                (0..n).map(|_| rng.normal()).collect::<Vec<f64>>(),
                x.shape(),
            )
            .unwrap()
        })
        .collect();
    let eps = 1e-6;
    let plus: Vec<Array> = xs.iter().zip(&vs).map(|(x, v)| axpy(x, v, eps)).collect();
    let minus: Vec<Array> = xs.iter().zip(&vs).map(|(x, v)| axpy(x, v, -eps)).collect();
    let fd = (dot(&u, &f(&plus).unwrap()) - dot(&u, &f(&minus).unwrap())) / (2.0 * eps);

    let (ys, gs) = ingot::vjp(|a| Ok(vec![f(a)?]), &xs, std::slice::from_ref(&u))
        .unwrap_or_else(|e| panic!("{name} vjp: {e}"));
    assert_eq!(ys[0].shape(), y.shape());
    let rev: f64 = gs.iter().zip(&vs).map(|(g, v)| dot(g, v)).sum();
    let (_, jv) =
        ingot::jvp(|a| Ok(vec![f(a)?]), &xs, &vs).unwrap_or_else(|e| panic!("{name} jvp: {e}"));
    let fwd = dot(&u, &jv[0]);
    let scale = fd.abs().max(1.0);
    assert!(
        (rev - fd).abs() <= 1e-5 * scale,
        "{name}: vjp gives {rev}, finite differences {fd}"
    );
    assert!(
        (fwd - rev).abs() <= 1e-9 * scale.max(rev.abs()),
        "{name}: jvp gives {fwd}, vjp {rev}"
    );
}

/// What `vmap` over axis 0 should give: `f` run example by example (inputs with `mapped`
/// set indexed, the rest shared), the results stacked.
pub fn vmap_looped(
    f: &dyn Fn(&[Array]) -> Result<Vec<Array>>,
    xs: &[Array],
    mapped: &[bool],
    n: usize,
) -> Array {
    let ys: Vec<Array> = (0..n)
        .map(|e| {
            let args: Vec<Array> = xs
                .iter()
                .zip(mapped)
                .map(|(x, &m)| {
                    if m {
                        ingot::take(x, &Array::scalar(e as i64), Some(0)).unwrap()
                    } else {
                        x.clone()
                    }
                })
                .collect();
            f(&args).unwrap().remove(0)
        })
        .collect();
    ingot::stack(&ys, 0).unwrap()
}
