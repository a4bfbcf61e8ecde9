//! Helpers shared by ingot-nn's test suites: a deterministic generator, arrays from f64
//! values, NaN-aware comparison and finite-difference gradients.
#![allow(dead_code)]

use ingot::{Array, DType, Result};

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
    /// `n` values of `N(0, scale^2)`.
    pub fn normals(&mut self, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| self.normal() * scale).collect()
    }
}

/// An array of `dtype` holding `vals` (converted by ingot's cast), row-major.
pub fn array_from_f64(vals: &[f64], shape: &[usize], dtype: DType) -> Array {
    let a = Array::from_slice(vals, shape).unwrap();
    ingot::astype(&a, dtype).unwrap()
}

/// An array's values as f64.
pub fn to_f64(a: &Array) -> Vec<f64> {
    a.to_f64_vec().unwrap()
}

/// Converts a value to the dtype and back (what the array can hold).
pub fn round_to(v: f64, dtype: DType) -> f64 {
    to_f64(&array_from_f64(&[v], &[], dtype))[0]
}

/// A transposed view holding `vals`/`shape` (2-D): built contiguous as the reversed shape,
/// then transposed, so kernels take their strided path.
pub fn transposed_2d(vals: &[f64], shape: &[usize], dtype: DType) -> Array {
    assert_eq!(shape.len(), 2);
    let (r, c) = (shape[0], shape[1]);
    let mut src = vec![0.0; vals.len()];
    for i in 0..r {
        for j in 0..c {
            src[j * r + i] = vals[i * c + j];
        }
    }
    let a = array_from_f64(&src, &[c, r], dtype);
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
        DType::F32 => 2e-6,
        DType::F64 => 1e-12,
        _ => 0.0,
    }
}

/// The gradient of a scalar `f` at `x` by central differences, one coordinate at a time.
pub fn fd_grad(
    f: &dyn Fn(&Array) -> Result<Array>,
    x: &[f64],
    shape: &[usize],
    h: f64,
) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let mut p = x.to_vec();
            let mut m = x.to_vec();
            p[i] += h;
            m[i] -= h;
            let fp = f(&Array::from_slice(&p, shape).unwrap())
                .unwrap()
                .item::<f64>()
                .unwrap();
            let fm = f(&Array::from_slice(&m, shape).unwrap())
                .unwrap()
                .item::<f64>()
                .unwrap();
            (fp - fm) / (2.0 * h)
        })
        .collect()
}

/// Checks `ingot::grad` of the scalar `f` at `x` (f64) against central differences.
pub fn check_grad(
    what: &str,
    f: impl Fn(&Array) -> Result<Array> + Clone + 'static,
    x: &[f64],
    shape: &[usize],
) {
    let g = {
        let f = f.clone();
        ingot::grad(move |a: &[Array]| f(&a[0]), &[0])
    };
    let got = to_f64(&g(&[Array::from_slice(x, shape).unwrap()]).unwrap()[0]);
    let want = fd_grad(&f, x, shape, 1e-6);
    assert_close(&got, &want, 1e-5, 1e-6, what);
}

/// A folder of tests/fixtures: tests run from the package root under cargo and from the
/// repository root elsewhere (the GPU machine).
pub fn fixture(name: &str) -> std::path::PathBuf {
    [
        format!("tests/fixtures/{name}"),
        format!("crates/ingot-nn/tests/fixtures/{name}"),
    ]
    .into_iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.exists())
    .unwrap_or_else(|| panic!("the {name} fixture"))
}
