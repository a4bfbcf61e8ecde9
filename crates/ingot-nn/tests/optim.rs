//! Optimizers against their update formulas written as plain f64 loops, schedules against
//! their formulas, gradient clipping, state save/resume, errors, and a small end-to-end fit.

mod common;

use common::{array_from_f64, assert_close, round_to, to_f64, Rng};
use ingot::{Array, DType};
use ingot_nn::optim::*;
use ingot_nn::schedule::{self, Schedule};
use ingot_nn::{value_and_grad, Linear, ModuleExt, Unary};
use std::collections::BTreeMap;

// ---- f64 references --------------------------------------------------------------------

/// One parameter's reference optimizer: updates `p` in place at update `t` (1-based).
trait RefRule {
    fn step(&mut self, t: usize, lr: f64, p: &mut [f64], g: &[f64], shape: &[usize]);
}

/// Lazily sized state vectors.
fn buf(v: &mut Option<Vec<f64>>, n: usize, init: f64) -> &mut Vec<f64> {
    v.get_or_insert_with(|| vec![init; n])
}

struct SgdRef {
    mom: f64,
    damp: f64,
    wd: f64,
    nesterov: bool,
    b: Option<Vec<f64>>,
}
impl RefRule for SgdRef {
    fn step(&mut self, _t: usize, lr: f64, p: &mut [f64], g: &[f64], _s: &[usize]) {
        let first = self.b.is_none();
        let b = buf(&mut self.b, p.len(), 0.0);
        for i in 0..p.len() {
            let mut gi = g[i] + self.wd * p[i];
            if self.mom != 0.0 {
                b[i] = if first {
                    gi
                } else {
                    self.mom * b[i] + (1.0 - self.damp) * gi
                };
                gi = if self.nesterov {
                    gi + self.mom * b[i]
                } else {
                    b[i]
                };
            }
            p[i] -= lr * gi;
        }
    }
}

struct AdamRef {
    b1: f64,
    b2: f64,
    eps: f64,
    wd: f64,
    decoupled: bool,
    amsgrad: bool,
    m: Option<Vec<f64>>,
    v: Option<Vec<f64>>,
    vmax: Option<Vec<f64>>,
}
impl AdamRef {
    fn new(b1: f64, b2: f64, eps: f64, wd: f64, decoupled: bool, amsgrad: bool) -> Self {
        AdamRef {
            b1,
            b2,
            eps,
            wd,
            decoupled,
            amsgrad,
            m: None,
            v: None,
            vmax: None,
        }
    }
}
impl RefRule for AdamRef {
    fn step(&mut self, t: usize, lr: f64, p: &mut [f64], g: &[f64], _s: &[usize]) {
        let n = p.len();
        let (m, v) = (buf(&mut self.m, n, 0.0), buf(&mut self.v, n, 0.0));
        let vmax = buf(&mut self.vmax, n, 0.0);
        let bc1 = 1.0 - self.b1.powi(t as i32);
        let bc2 = 1.0 - self.b2.powi(t as i32);
        for i in 0..n {
            let mut gi = g[i];
            if self.decoupled {
                p[i] *= 1.0 - lr * self.wd;
            } else {
                gi += self.wd * p[i];
            }
            m[i] = self.b1 * m[i] + (1.0 - self.b1) * gi;
            v[i] = self.b2 * v[i] + (1.0 - self.b2) * gi * gi;
            vmax[i] = vmax[i].max(v[i]);
            let second = if self.amsgrad { vmax[i] } else { v[i] };
            p[i] -= lr / bc1 * m[i] / (second.sqrt() / bc2.sqrt() + self.eps);
        }
    }
}

struct AdamaxRef {
    b1: f64,
    b2: f64,
    eps: f64,
    wd: f64,
    m: Option<Vec<f64>>,
    u: Option<Vec<f64>>,
}
impl RefRule for AdamaxRef {
    fn step(&mut self, t: usize, lr: f64, p: &mut [f64], g: &[f64], _s: &[usize]) {
        let n = p.len();
        let (m, u) = (buf(&mut self.m, n, 0.0), buf(&mut self.u, n, 0.0));
        for i in 0..n {
            let gi = g[i] + self.wd * p[i];
            m[i] = self.b1 * m[i] + (1.0 - self.b1) * gi;
            u[i] = (self.b2 * u[i]).max(gi.abs() + self.eps);
            p[i] -= lr / (1.0 - self.b1.powi(t as i32)) * m[i] / u[i];
        }
    }
}

struct AdagradRef {
    lr_decay: f64,
    wd: f64,
    init: f64,
    eps: f64,
    s: Option<Vec<f64>>,
}
impl RefRule for AdagradRef {
    fn step(&mut self, t: usize, lr: f64, p: &mut [f64], g: &[f64], _s: &[usize]) {
        let s = buf(&mut self.s, p.len(), self.init);
        let clr = lr / (1.0 + (t - 1) as f64 * self.lr_decay);
        for i in 0..p.len() {
            let gi = g[i] + self.wd * p[i];
            s[i] += gi * gi;
            p[i] -= clr * gi / (s[i].sqrt() + self.eps);
        }
    }
}

struct AdaDeltaRef {
    rho: f64,
    eps: f64,
    wd: f64,
    v: Option<Vec<f64>>,
    u: Option<Vec<f64>>,
}
impl RefRule for AdaDeltaRef {
    fn step(&mut self, _t: usize, lr: f64, p: &mut [f64], g: &[f64], _s: &[usize]) {
        let n = p.len();
        let (v, u) = (buf(&mut self.v, n, 0.0), buf(&mut self.u, n, 0.0));
        for i in 0..n {
            let gi = g[i] + self.wd * p[i];
            v[i] = self.rho * v[i] + (1.0 - self.rho) * gi * gi;
            let d = (u[i] + self.eps).sqrt() / (v[i] + self.eps).sqrt() * gi;
            u[i] = self.rho * u[i] + (1.0 - self.rho) * d * d;
            p[i] -= lr * d;
        }
    }
}

struct RmsRef {
    alpha: f64,
    eps: f64,
    wd: f64,
    mom: f64,
    centered: bool,
    v: Option<Vec<f64>>,
    ga: Option<Vec<f64>>,
    b: Option<Vec<f64>>,
}
impl RefRule for RmsRef {
    fn step(&mut self, _t: usize, lr: f64, p: &mut [f64], g: &[f64], _s: &[usize]) {
        let n = p.len();
        let v = buf(&mut self.v, n, 0.0);
        let ga = buf(&mut self.ga, n, 0.0);
        let b = buf(&mut self.b, n, 0.0);
        for i in 0..n {
            let gi = g[i] + self.wd * p[i];
            v[i] = self.alpha * v[i] + (1.0 - self.alpha) * gi * gi;
            let avg = if self.centered {
                ga[i] = self.alpha * ga[i] + (1.0 - self.alpha) * gi;
                (v[i] - ga[i] * ga[i]).sqrt() + self.eps
            } else {
                v[i].sqrt() + self.eps
            };
            if self.mom > 0.0 {
                b[i] = self.mom * b[i] + gi / avg;
                p[i] -= lr * b[i];
            } else {
                p[i] -= lr * gi / avg;
            }
        }
    }
}

struct LionRef {
    b1: f64,
    b2: f64,
    wd: f64,
    m: Option<Vec<f64>>,
}
impl RefRule for LionRef {
    fn step(&mut self, _t: usize, lr: f64, p: &mut [f64], g: &[f64], _s: &[usize]) {
        let m = buf(&mut self.m, p.len(), 0.0);
        for i in 0..p.len() {
            let c = self.b1 * m[i] + (1.0 - self.b1) * g[i];
            m[i] = self.b2 * m[i] + (1.0 - self.b2) * g[i];
            let sign = if c > 0.0 {
                1.0
            } else if c < 0.0 {
                -1.0
            } else {
                0.0
            };
            p[i] = p[i] * (1.0 - lr * self.wd) - lr * sign;
        }
    }
}

fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt()
}

struct AdafactorRef {
    cfg: AdafactorConfig,
    row: Option<Vec<f64>>,
    col: Option<Vec<f64>>,
    v: Option<Vec<f64>>,
    m: Option<Vec<f64>>,
}
impl RefRule for AdafactorRef {
    fn step(&mut self, t: usize, lr: f64, p: &mut [f64], g: &[f64], shape: &[usize]) {
        let c = &self.cfg;
        let tf = t as f64;
        let n = p.len();
        let rho = if c.relative_step {
            let min_step = if c.warmup_init { 1e-6 * tf } else { 1e-2 };
            min_step.min(1.0 / tf.sqrt())
        } else {
            lr
        };
        let alpha = if c.scale_parameter {
            c.eps.1.max(rms(p)) * rho
        } else {
            rho
        };
        let beta2 = 1.0 - tf.powf(c.decay_rate);
        let u: Vec<f64> = g.iter().map(|x| x * x + c.eps.0).collect();
        let mut upd = vec![0.0; n];
        let nd = shape.len();
        if nd >= 2 {
            let (r, cc) = (shape[nd - 2], shape[nd - 1]);
            let lead = n / (r * cc);
            let row = buf(&mut self.row, lead * r, 0.0);
            let col = buf(&mut self.col, lead * cc, 0.0);
            for l in 0..lead {
                for i in 0..r {
                    let mean = (0..cc).map(|j| u[(l * r + i) * cc + j]).sum::<f64>() / cc as f64;
                    row[l * r + i] = beta2 * row[l * r + i] + (1.0 - beta2) * mean;
                }
                for j in 0..cc {
                    let mean = (0..r).map(|i| u[(l * r + i) * cc + j]).sum::<f64>() / r as f64;
                    col[l * cc + j] = beta2 * col[l * cc + j] + (1.0 - beta2) * mean;
                }
                let rm = (0..r).map(|i| row[l * r + i]).sum::<f64>() / r as f64;
                for i in 0..r {
                    for j in 0..cc {
                        let k = (l * r + i) * cc + j;
                        upd[k] = 1.0 / (row[l * r + i] / rm).sqrt() / col[l * cc + j].sqrt() * g[k];
                    }
                }
            }
        } else {
            let v = buf(&mut self.v, n, 0.0);
            for i in 0..n {
                v[i] = beta2 * v[i] + (1.0 - beta2) * u[i];
                upd[i] = g[i] / v[i].sqrt();
            }
        }
        let clip = (rms(&upd) / c.clip_threshold).max(1.0);
        for x in upd.iter_mut() {
            *x = *x / clip * alpha;
        }
        if let Some(b1) = c.beta1 {
            let m = buf(&mut self.m, n, 0.0);
            for i in 0..n {
                m[i] = b1 * m[i] + (1.0 - b1) * upd[i];
                upd[i] = m[i];
            }
        }
        for i in 0..n {
            p[i] = p[i] - c.weight_decay * alpha * p[i] - upd[i];
        }
    }
}

/// `a (n, k) @ b (k, m)`.
fn mm(a: &[f64], b: &[f64], n: usize, k: usize, m: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            out[i * m + j] = (0..k).map(|q| a[i * k + q] * b[q * m + j]).sum();
        }
    }
    out
}

fn tr(a: &[f64], n: usize, m: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            out[j * n + i] = a[i * m + j];
        }
    }
    out
}

/// Newton-Schulz in f64 loops.
fn ns_ref(u: &[f64], rows: usize, cols: usize, steps: usize) -> Vec<f64> {
    let (a, b, c) = (3.4445, -4.7750, 2.0315);
    let tall = rows > cols;
    let (mut x, r, k) = if tall {
        (tr(u, rows, cols), cols, rows)
    } else {
        (u.to_vec(), rows, cols)
    };
    let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-7);
    x.iter_mut().for_each(|v| *v /= norm);
    for _ in 0..steps {
        let gram = mm(&x, &tr(&x, r, k), r, k, r);
        let gg = mm(&gram, &gram, r, r, r);
        let poly: Vec<f64> = gram.iter().zip(&gg).map(|(p, q)| b * p + c * q).collect();
        let px = mm(&poly, &x, r, r, k);
        x = x.iter().zip(&px).map(|(p, q)| a * p + q).collect();
    }
    if tall {
        tr(&x, r, k)
    } else {
        x
    }
}

struct MuonRef {
    mom: f64,
    nesterov: bool,
    wd: f64,
    adam_fallback: bool,
    b: Option<Vec<f64>>,
    adam: AdamRef,
}
impl RefRule for MuonRef {
    fn step(&mut self, t: usize, lr: f64, p: &mut [f64], g: &[f64], shape: &[usize]) {
        if shape.len() < 2 && self.adam_fallback {
            return self.adam.step(t, lr, p, g, shape);
        }
        let n = p.len();
        let b = buf(&mut self.b, n, 0.0);
        let mut u = vec![0.0; n];
        for i in 0..n {
            b[i] = self.mom * b[i] + (1.0 - self.mom) * g[i];
            u[i] = if self.nesterov {
                (1.0 - self.mom) * g[i] + self.mom * b[i]
            } else {
                b[i]
            };
        }
        let (o, scale) = if shape.len() >= 2 {
            let rows = shape[0];
            let cols = n / rows;
            (
                ns_ref(&u, rows, cols, 5),
                (rows as f64 / cols as f64).max(1.0).sqrt(),
            )
        } else {
            (u, 1.0)
        };
        for i in 0..n {
            p[i] = p[i] * (1.0 - lr * self.wd) - lr * scale * o[i];
        }
    }
}

// ---- harness ----------------------------------------------------------------------------

const SHAPES: &[(&str, &[usize])] = &[
    ("layer.bias", &[5]),
    ("layer.weight", &[3, 4]),
    ("scale", &[]),
];

/// Runs `opt` and one reference per parameter for `steps` updates on random parameters and
/// fresh random gradients each step, comparing every parameter after every step. f16/bf16
/// parameters: the reference rounds the parameter to the dtype after each step.
fn check(
    what: &str,
    opt: &mut dyn Optimizer,
    make_ref: &dyn Fn() -> Box<dyn RefRule>,
    shapes: &[(&str, &[usize])],
    dtype: DType,
    steps: usize,
    rtol: f64,
    atol: f64,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let mut params = BTreeMap::new();
    let mut refs = BTreeMap::new();
    let mut want: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (name, shape) in shapes {
        let n: usize = shape.iter().product();
        let vals: Vec<f64> = rng
            .normals(n, 1.0)
            .iter()
            .map(|&v| round_to(v, dtype))
            .collect();
        params.insert(name.to_string(), array_from_f64(&vals, shape, dtype));
        want.insert(name.to_string(), vals);
        refs.insert(name.to_string(), make_ref());
    }
    for t in 1..=steps {
        let lr = opt.learning_rate();
        let mut grads = BTreeMap::new();
        for (name, shape) in shapes {
            let n: usize = shape.iter().product();
            let g: Vec<f64> = rng
                .normals(n, 0.5)
                .iter()
                .map(|&v| round_to(v, dtype))
                .collect();
            grads.insert(name.to_string(), array_from_f64(&g, shape, dtype));
            let p = want.get_mut(*name).unwrap();
            refs.get_mut(*name).unwrap().step(t, lr, p, &g, shape);
            if dtype != DType::F64 && dtype != DType::F32 {
                p.iter_mut().for_each(|v| *v = round_to(*v, dtype));
            }
        }
        let new = opt.step(&params, &grads).unwrap();
        assert_eq!(opt.step_count(), t as u64, "{what}: step count");
        for (name, shape) in shapes {
            let a = &new[*name];
            assert_eq!(a.shape(), *shape, "{what}: {name} shape");
            assert_eq!(a.dtype(), dtype, "{what}: {name} dtype");
            assert!(
                a.is_evaluated(),
                "{what}: {name} not evaluated after the step"
            );
            let got = to_f64(a);
            assert_close(
                &got,
                &want[*name],
                rtol,
                atol,
                &format!("{what}: {name} at step {t}"),
            );
        }
        params = new;
    }
}

fn check64(what: &str, opt: &mut dyn Optimizer, make_ref: &dyn Fn() -> Box<dyn RefRule>) {
    check(what, opt, make_ref, SHAPES, DType::F64, 6, 1e-10, 1e-12, 7);
}

// ---- optimizers against formulas --------------------------------------------------------

#[test]
fn sgd_matches_formula() {
    for (mom, damp, wd, nesterov) in [
        (0.0, 0.0, 0.0, false),
        (0.9, 0.0, 0.0, false),
        (0.9, 0.0, 0.0, true),
        (0.8, 0.3, 0.01, false),
        (0.9, 0.0, 0.05, true),
        (0.0, 0.0, 0.1, false),
    ] {
        let mut opt = Sgd::new(0.1)
            .momentum(mom)
            .dampening(damp)
            .weight_decay(wd)
            .nesterov(nesterov);
        let mk = move || -> Box<dyn RefRule> {
            Box::new(SgdRef {
                mom,
                damp,
                wd,
                nesterov,
                b: None,
            })
        };
        check64(&format!("SGD {mom} {damp} {wd} {nesterov}"), &mut opt, &mk);
        let has_buf = opt
            .param_state("layer.weight")
            .unwrap()
            .contains_key("momentum_buffer");
        assert_eq!(has_buf, mom != 0.0);
    }
}

#[test]
fn adam_and_adamw_match_formula() {
    for (wd, amsgrad) in [(0.0, false), (0.0, true), (0.1, false), (0.05, true)] {
        let mut opt = Adam::new(0.01).weight_decay(wd).amsgrad(amsgrad);
        let mk = move || -> Box<dyn RefRule> {
            Box::new(AdamRef::new(0.9, 0.999, 1e-8, wd, false, amsgrad))
        };
        check64(&format!("Adam wd {wd} amsgrad {amsgrad}"), &mut opt, &mk);
        let st = opt.param_state("layer.bias").unwrap();
        assert_eq!(st.contains_key("max_exp_avg_sq"), amsgrad);
    }
    for (wd, amsgrad, betas) in [
        (0.01, false, (0.9, 0.999)),
        (0.1, true, (0.8, 0.95)),
        (0.0, false, (0.5, 0.9)),
    ] {
        let mut opt = AdamW::new(0.02)
            .weight_decay(wd)
            .amsgrad(amsgrad)
            .betas(betas.0, betas.1)
            .eps(1e-6);
        let mk = move || -> Box<dyn RefRule> {
            Box::new(AdamRef::new(betas.0, betas.1, 1e-6, wd, true, amsgrad))
        };
        check64(&format!("AdamW wd {wd} amsgrad {amsgrad}"), &mut opt, &mk);
    }
    // AdamW's default weight decay is PyTorch's 0.01.
    assert_eq!(AdamW::new(1e-3).config.weight_decay, 0.01);
}

#[test]
fn adamax_matches_formula() {
    for wd in [0.0, 0.1] {
        let mut opt = Adamax::new(0.02).weight_decay(wd).betas(0.85, 0.99);
        let mk = move || -> Box<dyn RefRule> {
            Box::new(AdamaxRef {
                b1: 0.85,
                b2: 0.99,
                eps: 1e-8,
                wd,
                m: None,
                u: None,
            })
        };
        check64(&format!("Adamax wd {wd}"), &mut opt, &mk);
    }
}

#[test]
fn adagrad_matches_formula() {
    for (lr_decay, wd, init) in [(0.0, 0.0, 0.0), (0.1, 0.0, 0.5), (0.05, 0.1, 0.1)] {
        let mut opt = Adagrad::new(0.1)
            .lr_decay(lr_decay)
            .weight_decay(wd)
            .initial_accumulator_value(init);
        let mk = move || -> Box<dyn RefRule> {
            Box::new(AdagradRef {
                lr_decay,
                wd,
                init,
                eps: 1e-10,
                s: None,
            })
        };
        check64(&format!("Adagrad {lr_decay} {wd} {init}"), &mut opt, &mk);
    }
}

#[test]
fn adadelta_matches_formula() {
    assert_eq!(AdaDelta::default().learning_rate(), 1.0);
    for (rho, wd) in [(0.9, 0.0), (0.5, 0.1)] {
        let mut opt = AdaDelta::default().rho(rho).weight_decay(wd);
        let mk = move || -> Box<dyn RefRule> {
            Box::new(AdaDeltaRef {
                rho,
                eps: 1e-6,
                wd,
                v: None,
                u: None,
            })
        };
        check64(&format!("AdaDelta {rho} {wd}"), &mut opt, &mk);
    }
}

#[test]
fn rmsprop_matches_formula() {
    for (mom, centered, wd) in [
        (0.0, false, 0.0),
        (0.9, false, 0.0),
        (0.0, true, 0.0),
        (0.9, true, 0.05),
    ] {
        let mut opt = RmsProp::new(0.01)
            .momentum(mom)
            .centered(centered)
            .weight_decay(wd)
            .alpha(0.9);
        let mk = move || -> Box<dyn RefRule> {
            Box::new(RmsRef {
                alpha: 0.9,
                eps: 1e-8,
                wd,
                mom,
                centered,
                v: None,
                ga: None,
                b: None,
            })
        };
        check64(&format!("RMSprop {mom} {centered} {wd}"), &mut opt, &mk);
        let st = opt.param_state("layer.weight").unwrap();
        assert_eq!(st.contains_key("grad_avg"), centered);
        assert_eq!(st.contains_key("momentum_buffer"), mom > 0.0);
    }
}

#[test]
fn lion_matches_formula() {
    for wd in [0.0, 0.1] {
        let mut opt = Lion::new(0.01).weight_decay(wd);
        assert_eq!(opt.config.betas, (0.9, 0.99));
        let mk = move || -> Box<dyn RefRule> {
            Box::new(LionRef {
                b1: 0.9,
                b2: 0.99,
                wd,
                m: None,
            })
        };
        check64(&format!("Lion wd {wd}"), &mut opt, &mk);
    }
}

const FACTOR_SHAPES: &[(&str, &[usize])] = &[
    ("bias", &[5]),
    ("weight", &[3, 4]),
    ("conv", &[2, 3, 4]),
    ("scale", &[]),
];

#[test]
fn adafactor_matches_formula() {
    let cases: Vec<(&str, Adafactor)> = vec![
        ("relative", Adafactor::new()),
        (
            "relative, beta1, wd",
            Adafactor::new().beta1(Some(0.9)).weight_decay(0.1),
        ),
        (
            "warmup_init, no scale",
            Adafactor::new().warmup_init(true).scale_parameter(false),
        ),
        (
            "external lr, clip 0.5",
            Adafactor::with_lr(0.05).clip_threshold(0.5),
        ),
    ];
    for (what, mut opt) in cases {
        let cfg = opt.config.clone();
        let mk = move || -> Box<dyn RefRule> {
            Box::new(AdafactorRef {
                cfg: cfg.clone(),
                row: None,
                col: None,
                v: None,
                m: None,
            })
        };
        check(
            what,
            &mut opt,
            &mk,
            FACTOR_SHAPES,
            DType::F64,
            6,
            1e-10,
            1e-12,
            11,
        );
        // Factored second moments for >= 2-D parameters.
        let w = opt.param_state("conv").unwrap();
        assert_eq!(w["exp_avg_sq_row"].shape(), [2, 3]);
        assert_eq!(w["exp_avg_sq_col"].shape(), [2, 4]);
        assert!(!w.contains_key("exp_avg_sq"));
        assert!(opt.param_state("bias").unwrap().contains_key("exp_avg_sq"));
    }
}

#[test]
fn muon_matches_formula() {
    let shapes: &[(&str, &[usize])] = &[
        ("bias", &[5]),
        ("wide", &[3, 5]),
        ("tall", &[6, 3]),
        ("conv", &[4, 2, 3]),
        ("scale", &[]),
    ];
    for (nesterov, wd, adam) in [(true, 0.1, true), (false, 0.0, true), (true, 0.05, false)] {
        let fallback = if adam {
            MuonFallback::AdamW {
                betas: (0.9, 0.999),
                eps: 1e-8,
            }
        } else {
            MuonFallback::Momentum
        };
        let mut opt = Muon::new(0.02)
            .nesterov(nesterov)
            .weight_decay(wd)
            .fallback(fallback);
        let mk = move || -> Box<dyn RefRule> {
            Box::new(MuonRef {
                mom: 0.95,
                nesterov,
                wd,
                adam_fallback: adam,
                b: None,
                adam: AdamRef::new(0.9, 0.999, 1e-8, wd, true, false),
            })
        };
        check(
            &format!("Muon nesterov {nesterov} wd {wd} adam {adam}"),
            &mut opt,
            &mk,
            shapes,
            DType::F64,
            5,
            1e-9,
            1e-11,
            13,
        );
        let b = opt.param_state("bias").unwrap();
        assert_eq!(b.contains_key("exp_avg"), adam);
    }
    // The iteration drives singular values towards 1 (into roughly [0.7, 1.2]).
    let mut rng = Rng::new(3);
    let x = array_from_f64(&rng.normals(24, 1.0), &[4, 6], DType::F64);
    let o = newton_schulz5(&x, 5, (3.4445, -4.7750, 2.0315), 1e-7).unwrap();
    let s = to_f64(&ingot::svd(&o, false, false).unwrap()[0]);
    assert!(
        s.iter().all(|&v| v > 0.6 && v < 1.25),
        "singular values {s:?}"
    );
}

#[test]
fn f32_parameters_match_formula() {
    let mut opt = Adam::new(0.01).amsgrad(true);
    let mk = || -> Box<dyn RefRule> { Box::new(AdamRef::new(0.9, 0.999, 1e-8, 0.0, false, true)) };
    check(
        "Adam f32",
        &mut opt,
        &mk,
        SHAPES,
        DType::F32,
        5,
        1e-5,
        1e-6,
        5,
    );
    assert_eq!(
        opt.param_state("scale").unwrap()["exp_avg"].dtype(),
        DType::F32
    );
}

#[test]
fn half_parameters_keep_f32_state() {
    for dtype in [DType::F16, DType::BF16] {
        let mut opt = AdamW::new(0.01);
        let mk =
            || -> Box<dyn RefRule> { Box::new(AdamRef::new(0.9, 0.999, 1e-8, 0.01, true, false)) };
        // One ulp of slack: f32 math can round the other way from the f64 reference.
        let rtol = if dtype == DType::BF16 { 8e-3 } else { 1e-3 };
        check(
            &format!("AdamW {dtype}"),
            &mut opt,
            &mk,
            SHAPES,
            dtype,
            5,
            rtol,
            1e-3,
            9,
        );
        for st in [
            opt.param_state("layer.weight").unwrap(),
            opt.param_state("scale").unwrap(),
        ] {
            assert!(st.values().all(|a| a.dtype() == DType::F32));
        }
        let mut sgd = Sgd::new(0.1).momentum(0.9).nesterov(true);
        let mk = || -> Box<dyn RefRule> {
            Box::new(SgdRef {
                mom: 0.9,
                damp: 0.0,
                wd: 0.0,
                nesterov: true,
                b: None,
            })
        };
        check(
            &format!("SGD {dtype}"),
            &mut sgd,
            &mk,
            SHAPES,
            dtype,
            5,
            rtol,
            1e-3,
            9,
        );
    }
}

#[test]
fn schedule_drives_learning_rate() {
    // SGD's step t (1-based) uses the schedule at t - 1.
    let sched = schedule::step_decay(0.1, 0.5, 2);
    let mut opt = Sgd::new(sched.clone());
    let mk = || -> Box<dyn RefRule> {
        Box::new(SgdRef {
            mom: 0.0,
            damp: 0.0,
            wd: 0.0,
            nesterov: false,
            b: None,
        })
    };
    check64("SGD step_decay", &mut opt, &mk);
    assert_eq!(opt.learning_rate(), sched.at(6));
    assert_eq!(opt.learning_rate(), 0.1 * 0.125);
    // A new schedule takes effect at the next step.
    opt.set_learning_rate(0.3.into());
    assert_eq!(opt.learning_rate(), 0.3);
}

// ---- schedules ----------------------------------------------------------------------------

#[test]
fn schedules_match_formulas() {
    let pi = std::f64::consts::PI;
    let c = schedule::constant(0.25);
    let e = schedule::exponential_decay(0.1, 0.9);
    let s = schedule::step_decay(0.1, 0.5, 3);
    let cos = schedule::cosine_decay(0.1, 10, 0.01);
    let lin = schedule::linear_schedule(0.0, 0.1, 4).unwrap();
    let from: Schedule = 0.5f64.into();
    for t in [0u64, 1, 2, 3, 5, 7, 10, 11, 20, 100] {
        let tf = t as f64;
        assert_eq!(c.at(t), 0.25);
        assert_eq!(from.at(t), 0.5);
        assert!((e.at(t) - 0.1 * 0.9f64.powf(tf)).abs() < 1e-15, "exp {t}");
        assert!(
            (s.at(t) - 0.1 * 0.5f64.powi((t / 3) as i32)).abs() < 1e-15,
            "step {t}"
        );
        let ct = tf.min(10.0);
        let want = 0.01 + (0.1 - 0.01) * 0.5 * (1.0 + (pi * ct / 10.0).cos());
        assert!((cos.at(t) - want).abs() < 1e-15, "cosine {t}");
        let want = tf.min(4.0) * (0.1 / 4.0);
        assert!((lin.at(t) - want).abs() < 1e-15, "linear {t}");
    }
    assert_eq!(cos.at(0), 0.1);
    assert!((cos.at(5) - 0.055).abs() < 1e-15);
    assert_eq!(cos.at(50), 0.01);
    assert_eq!(lin.at(4), 0.1);

    // Warmup then cosine: the second schedule counts from its boundary.
    let warm = schedule::linear_schedule(0.0, 0.1, 5).unwrap();
    let j = schedule::join_schedules(vec![warm.clone(), cos.clone()], &[5]).unwrap();
    for t in 0..5 {
        assert_eq!(j.at(t), warm.at(t));
    }
    for t in 5..30 {
        assert_eq!(j.at(t), cos.at(t - 5));
    }
    // Three pieces.
    let j3 = schedule::join_schedules(
        vec![schedule::constant(1.0), schedule::constant(2.0), e.clone()],
        &[2, 4],
    )
    .unwrap();
    let got: Vec<f64> = (0..7).map(|t| j3.at(t)).collect();
    assert_eq!(got[..4], [1.0, 1.0, 2.0, 2.0]);
    assert_eq!(got[4], e.at(0));
    assert_eq!(got[6], e.at(2));

    assert!(schedule::linear_schedule(0.0, 1.0, 0).is_err());
    assert!(schedule::join_schedules(vec![c.clone(), c.clone()], &[]).is_err());
    assert!(schedule::join_schedules(vec![c.clone(), c.clone(), c.clone()], &[5, 2]).is_err());
    assert!(format!("{cos:?}").contains("cosine_decay"));
}

// ---- clipping -----------------------------------------------------------------------------

fn grads_of(vals: &[(&str, Vec<f64>, Vec<usize>, DType)]) -> BTreeMap<String, Array> {
    vals.iter()
        .map(|(n, v, s, d)| (n.to_string(), array_from_f64(v, s, *d)))
        .collect()
}

#[test]
fn clip_grad_norm_scales_jointly() {
    let mut rng = Rng::new(21);
    let a = rng.normals(6, 2.0);
    let b = rng.normals(4, 2.0);
    let grads = grads_of(&[
        ("a", a.clone(), vec![2, 3], DType::F64),
        ("b", b.clone(), vec![4], DType::F64),
    ]);
    let total: f64 = a.iter().chain(&b).map(|v| v * v).sum::<f64>().sqrt();
    // Clipped: everything scales by max_norm / (total + 1e-6).
    let max_norm = total / 3.0;
    let (clipped, norm) = clip_grad_norm(&grads, max_norm).unwrap();
    assert!((norm.item::<f64>().unwrap() - total).abs() < 1e-12);
    let coef = max_norm / (total + 1e-6);
    let want_a: Vec<f64> = a.iter().map(|v| v * coef).collect();
    let want_b: Vec<f64> = b.iter().map(|v| v * coef).collect();
    assert_close(&to_f64(&clipped["a"]), &want_a, 1e-12, 0.0, "clipped a");
    assert_close(&to_f64(&clipped["b"]), &want_b, 1e-12, 0.0, "clipped b");
    let new_norm: f64 = want_a
        .iter()
        .chain(&want_b)
        .map(|v| v * v)
        .sum::<f64>()
        .sqrt();
    assert!((new_norm - max_norm).abs() < 1e-5);
    // Below the limit: unchanged.
    let (same, _) = clip_grad_norm(&grads, total * 2.0).unwrap();
    assert_eq!(to_f64(&same["a"]), a);
    assert_eq!(to_f64(&same["b"]), b);

    // Half-precision gradients keep their dtype; the norm is f32.
    let h = grads_of(&[("h", vec![3.0, 4.0], vec![2], DType::F16)]);
    let (hc, hn) = clip_grad_norm(&h, 1.0).unwrap();
    assert_eq!(hc["h"].dtype(), DType::F16);
    assert_eq!(hn.dtype(), DType::F32);
    assert_close(&to_f64(&hn), &[5.0], 1e-7, 0.0, "f16 norm");
    assert_close(&to_f64(&hc["h"]), &[0.6, 0.8], 1e-3, 0.0, "f16 clipped");

    // A NaN anywhere makes the total and every clipped gradient NaN.
    let n = grads_of(&[
        ("a", vec![1.0, f64::NAN], vec![2], DType::F32),
        ("b", vec![1.0, 2.0], vec![2], DType::F32),
    ]);
    let (nc, nn) = clip_grad_norm(&n, 1.0).unwrap();
    assert!(nn.item::<f32>().unwrap().is_nan());
    assert!(to_f64(&nc["b"]).iter().all(|v| v.is_nan()));

    // Nothing to clip: total 0. A negative max_norm is an error.
    let (e, en) = clip_grad_norm(&BTreeMap::new(), 1.0).unwrap();
    assert!(e.is_empty());
    assert_eq!(en.item::<f32>().unwrap(), 0.0);
    assert!(clip_grad_norm(&grads, -1.0).is_err());
}

// ---- state save / resume ------------------------------------------------------------------

fn random_problem(
    seed: u64,
    steps: usize,
) -> (BTreeMap<String, Array>, Vec<BTreeMap<String, Array>>) {
    let mut rng = Rng::new(seed);
    let mut params = BTreeMap::new();
    for (name, shape) in FACTOR_SHAPES {
        let n: usize = shape.iter().product();
        params.insert(
            name.to_string(),
            array_from_f64(&rng.normals(n, 1.0), shape, DType::F32),
        );
    }
    let grads = (0..steps)
        .map(|_| {
            FACTOR_SHAPES
                .iter()
                .map(|(name, shape)| {
                    let n: usize = shape.iter().product();
                    (
                        name.to_string(),
                        array_from_f64(&rng.normals(n, 0.5), shape, DType::F32),
                    )
                })
                .collect()
        })
        .collect();
    (params, grads)
}

fn bits(m: &BTreeMap<String, Array>) -> BTreeMap<String, Vec<u32>> {
    m.iter()
        .map(|(n, a)| {
            let v: Vec<u32> = a
                .to_vec::<f32>()
                .unwrap()
                .iter()
                .map(|x| x.to_bits())
                .collect();
            (n.clone(), v)
        })
        .collect()
}

fn all_optimizers() -> Vec<(&'static str, fn() -> Box<dyn Optimizer>)> {
    vec![
        ("sgd", || {
            Box::new(
                Sgd::new(0.05)
                    .momentum(0.9)
                    .nesterov(true)
                    .weight_decay(0.01),
            )
        }),
        ("adam", || Box::new(Adam::new(0.01).amsgrad(true))),
        ("adamw", || {
            Box::new(AdamW::new(schedule::cosine_decay(0.01, 5, 0.001)))
        }),
        ("adamax", || Box::new(Adamax::default())),
        ("adagrad", || Box::new(Adagrad::new(0.1).lr_decay(0.01))),
        ("adadelta", || Box::new(AdaDelta::default())),
        ("rmsprop", || {
            Box::new(RmsProp::new(0.01).momentum(0.9).centered(true))
        }),
        ("lion", || Box::new(Lion::new(0.001).weight_decay(0.1))),
        ("adafactor", || Box::new(Adafactor::new().beta1(Some(0.9)))),
        ("muon", || Box::new(Muon::new(0.02))),
    ]
}

#[test]
fn resume_is_bit_identical() {
    let dir = std::env::temp_dir().join(format!("ingot-nn-optim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, make) in all_optimizers() {
        let (p0, grads) = random_problem(31, 6);
        // Six uninterrupted steps.
        let mut a = make();
        let mut pa = p0.clone();
        for g in &grads {
            pa = a.step(&pa, g).unwrap();
        }
        // Three steps, save, load into a fresh optimizer, three more.
        let mut b = make();
        let mut pb = p0.clone();
        for g in &grads[..3] {
            pb = b.step(&pb, g).unwrap();
        }
        let path = dir.join(format!("{name}.safetensors"));
        b.save_state_safetensors(&path).unwrap();
        let saved = b.state();
        assert!(saved.contains_key("step"));
        drop(b);
        let mut c = make();
        c.load_state_safetensors(&path).unwrap();
        assert_eq!(c.step_count(), 3, "{name}");
        assert_eq!(
            bits(&c.state().into_iter().filter(|(k, _)| k != "step").collect()),
            bits(&saved.into_iter().filter(|(k, _)| k != "step").collect()),
            "{name} state"
        );
        for g in &grads[3..] {
            pb = c.step(&pb, g).unwrap();
        }
        assert_eq!(bits(&pa), bits(&pb), "{name}: resumed parameters differ");
        assert_eq!(
            bits(&a.state().into_iter().filter(|(k, _)| k != "step").collect()),
            bits(&c.state().into_iter().filter(|(k, _)| k != "step").collect()),
            "{name}: resumed state differs"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn state_names_and_load_errors() {
    let (p0, grads) = random_problem(5, 2);
    let mut opt = Adam::new(0.01);
    opt.step(&p0, &grads[0]).unwrap();
    let st = opt.state();
    let keys: Vec<&str> = st.keys().map(|s| s.as_str()).collect();
    assert!(keys.contains(&"weight.exp_avg") && keys.contains(&"conv.exp_avg_sq"));
    assert_eq!(st["step"].item::<u64>().unwrap(), 1);
    assert_eq!(st.len(), 2 * FACTOR_SHAPES.len() + 1);

    let mut fresh = Adam::new(0.01);
    // Missing "step".
    let mut s = st.clone();
    s.remove("step");
    assert!(fresh
        .load_state(&s)
        .unwrap_err()
        .to_string()
        .contains("step"));
    // A missing entry.
    let mut s = st.clone();
    s.remove("weight.exp_avg_sq");
    let e = fresh.load_state(&s).unwrap_err().to_string();
    assert!(e.contains("weight") && e.contains("Adam"), "{e}");
    // An entry Adam does not use.
    let mut s = st.clone();
    s.insert(
        "weight.momentum_buffer".into(),
        st["weight.exp_avg"].clone(),
    );
    assert!(fresh
        .load_state(&s)
        .unwrap_err()
        .to_string()
        .contains("momentum_buffer"));
    // A non-integer step.
    let mut s = st.clone();
    s.insert("step".into(), Array::scalar(1.5f32));
    assert!(fresh.load_state(&s).is_err());
    assert_eq!(fresh.step_count(), 0, "failed loads change nothing");
    // A mismatched shape loads, and is caught at the next step, naming the entry.
    let mut s = st.clone();
    s.insert(
        "weight.exp_avg".into(),
        ingot::zeros(&[4, 3], DType::F32).unwrap(),
    );
    fresh.load_state(&s).unwrap();
    let e = fresh.step(&p0, &grads[1]).unwrap_err().to_string();
    assert!(e.contains("weight.exp_avg") && e.contains("[4, 3]"), "{e}");
    assert_eq!(fresh.step_count(), 1);
    // A file saved by another optimizer.
    let path = std::env::temp_dir().join(format!(
        "ingot-nn-optim-sgd-{}.safetensors",
        std::process::id()
    ));
    let mut sgd = Sgd::new(0.1).momentum(0.9);
    sgd.step(&p0, &grads[0]).unwrap();
    sgd.save_state_safetensors(&path).unwrap();
    let e = Adam::new(0.1)
        .load_state_safetensors(&path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("SGD"), "{e}");
    std::fs::remove_file(&path).ok();
    // reset forgets everything.
    opt.reset();
    assert_eq!(opt.step_count(), 0);
    assert_eq!(opt.state().len(), 1);
}

#[test]
fn step_errors_name_the_parameter() {
    let (p0, grads) = random_problem(8, 1);
    let mut opt = AdamW::new(0.01);
    // Unknown name.
    let mut g = grads[0].clone();
    g.insert("nope".into(), ingot::zeros(&[2], DType::F32).unwrap());
    let e = opt.step(&p0, &g).unwrap_err().to_string();
    assert!(e.contains("AdamW") && e.contains("nope"), "{e}");
    // Shape mismatch.
    let mut g = grads[0].clone();
    g.insert("weight".into(), ingot::zeros(&[4, 3], DType::F32).unwrap());
    let e = opt.step(&p0, &g).unwrap_err().to_string();
    assert!(
        e.contains("weight") && e.contains("[4, 3]") && e.contains("[3, 4]"),
        "{e}"
    );
    // Dtype mismatch.
    let mut g = grads[0].clone();
    g.insert("bias".into(), ingot::zeros(&[5], DType::F64).unwrap());
    let e = opt.step(&p0, &g).unwrap_err().to_string();
    assert!(e.contains("bias") && e.contains("float64"), "{e}");
    // Integer parameters.
    let ip: BTreeMap<String, Array> =
        [("i".to_string(), ingot::zeros(&[2], DType::I32).unwrap())].into();
    assert!(opt.step(&ip, &ip).is_err());
    // Bad hyperparameters.
    let e = Sgd::new(0.1)
        .nesterov(true)
        .step(&p0, &grads[0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("nesterov"), "{e}");
    assert!(Adam::new(0.1).betas(1.0, 0.9).step(&p0, &grads[0]).is_err());
    assert!(Adam::new(f64::NAN).step(&p0, &grads[0]).is_err());
    // Nothing changed by the failures; a parameter without a gradient is left out.
    assert_eq!(opt.step_count(), 0);
    assert!(opt.state().len() == 1);
    let mut g = grads[0].clone();
    g.remove("conv");
    let new = opt.step(&p0, &g).unwrap();
    assert!(!new.contains_key("conv") && opt.param_state("conv").is_none());
    assert_eq!(opt.step_count(), 1);
}

// ---- end to end -----------------------------------------------------------------------------

#[test]
fn linear_fit_with_adamw() {
    let mut rng = Rng::new(42);
    let (n, din, dout) = (64, 4, 2);
    let x = array_from_f64(&rng.normals(n * din, 1.0), &[n, din], DType::F32);
    let w_true = array_from_f64(&rng.normals(dout * din, 1.0), &[dout, din], DType::F32);
    let b_true = array_from_f64(&[0.5, -1.0], &[dout], DType::F32);
    let y = ingot::add(
        ingot::matmul(&x, &ingot::transpose(&w_true, None).unwrap()).unwrap(),
        &b_true,
    )
    .unwrap();
    let mut model = Linear::with(din, dout, true, &ingot_nn::rng::key(1), DType::F32).unwrap();
    let mut opt = AdamW::new(0.05).weight_decay(0.0);
    let loss_fn = |m: &Linear| {
        ingot::mean(
            &ingot::square(&ingot::subtract(m.forward(&x)?, &y)?)?,
            None,
            false,
        )
    };
    let first = loss_fn(&model).unwrap().item::<f32>().unwrap();
    let mut last = first;
    for _ in 0..100 {
        let (loss, grads) = value_and_grad(&mut model, loss_fn).unwrap();
        assert_eq!(grads.keys().collect::<Vec<_>>(), ["bias", "weight"]);
        opt.update(&mut model, &grads).unwrap();
        last = loss.item::<f32>().unwrap();
    }
    let end = loss_fn(&model).unwrap().item::<f32>().unwrap();
    assert!(end < first / 100.0, "loss {first} -> {last} -> {end}");
    assert_eq!(opt.step_count(), 100);
    assert!(model
        .trainable_parameters()
        .values()
        .all(|a| a.is_evaluated()));
    // A gradient the model has no parameter for is an error.
    let mut bad = BTreeMap::new();
    bad.insert(
        "layers.0.weight".to_string(),
        ingot::zeros(&[2, 4], DType::F32).unwrap(),
    );
    let e = opt.update(&mut model, &bad).unwrap_err().to_string();
    assert!(e.contains("layers.0.weight"), "{e}");
}

/// The eager step runs a compiled update: traced once, replayed after, traced again when a
/// hyperparameter or the set of stepped parameters changes, and the new hyperparameter
/// takes effect (SGD with weight decay, in f64: p' = p - lr (g + wd p)).
#[test]
fn eager_updates_are_compiled_and_follow_changed_hyperparameters() {
    let p0 = vec![0.5, -1.25, 2.0, 0.75];
    let g = vec![0.1, 0.2, -0.3, 0.4];
    let arr = |v: &[f64]| Array::from_slice(v, &[2, 2]).unwrap();
    let mut params = BTreeMap::from([("w".to_string(), arr(&p0)), ("b".to_string(), arr(&p0))]);
    let grads = BTreeMap::from([("w".to_string(), arr(&g)), ("b".to_string(), arr(&g))]);
    let mut opt = Sgd::new(0.1);
    assert_eq!(opt.update_compile_stats().traces, 0);
    let mut want = p0.clone();
    for _ in 0..3 {
        params = opt.step(&params, &grads).unwrap();
        for (w, gi) in want.iter_mut().zip(&g) {
            *w -= 0.1 * gi;
        }
    }
    let stats = opt.update_compile_stats();
    assert_eq!((stats.traces, stats.hits), (1, 2));
    opt.config.weight_decay = 0.5;
    params = opt.step(&params, &grads).unwrap();
    for (w, gi) in want.iter_mut().zip(&g) {
        *w -= 0.1 * (gi + 0.5 * *w);
    }
    assert_eq!(
        opt.update_compile_stats().traces,
        1,
        "a new trace for the new decay"
    );
    for name in ["w", "b"] {
        let got = params[name].to_vec::<f64>().unwrap();
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-14, "{name}: {got:?} against {want:?}");
        }
    }
    // Only one parameter stepped: another layout, another trace.
    let one = BTreeMap::from([("w".to_string(), arr(&g))]);
    let out = opt.step(&params, &one).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(opt.update_compile_stats().traces, 1);
    assert_eq!(opt.update_compile_stats().hits, 0);
}
