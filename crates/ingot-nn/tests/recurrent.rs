//! RNN, GRU and LSTM layers and cells against the recurrences written out in f64, with
//! PyTorch's parameter names, shapes, gate order and initialization.

mod common;

use common::{assert_close, to_f64, Rng};
use ingot::{Array, DType};
use ingot_nn::{
    rng, value_and_grad, GRUCell, LSTMCell, Module, ModuleExt, Nonlinearity, RNNCell,
    RecurrentOptions, Unary, GRU, LSTM, RNN,
};
use std::collections::BTreeMap;

fn arr(v: &[f64], shape: &[usize]) -> Array {
    Array::from_slice(v, shape).unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum K {
    Tanh,
    Relu,
    Gru,
    Lstm,
}

impl K {
    fn gates(self) -> usize {
        match self {
            K::Tanh | K::Relu => 1,
            K::Gru => 3,
            K::Lstm => 4,
        }
    }
}

/// One cell's weights as plain vectors (absent biases are zeros).
struct W {
    wih: Vec<f64>,
    whh: Vec<f64>,
    bih: Vec<f64>,
    bhh: Vec<f64>,
    input: usize,
}

fn sig(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `rows x cols` matrix times vector.
fn mv(m: &[f64], cols: usize, x: &[f64]) -> Vec<f64> {
    m.chunks(cols)
        .map(|r| r.iter().zip(x).map(|(a, b)| a * b).sum())
        .collect()
}

/// One step of the recurrence for one batch row.
fn step(k: K, w: &W, hd: usize, x: &[f64], h: &[f64], c: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let gi: Vec<f64> = mv(&w.wih, w.input, x)
        .iter()
        .zip(&w.bih)
        .map(|(a, b)| a + b)
        .collect();
    let gh: Vec<f64> = mv(&w.whh, hd, h)
        .iter()
        .zip(&w.bhh)
        .map(|(a, b)| a + b)
        .collect();
    match k {
        K::Tanh => ((0..hd).map(|j| (gi[j] + gh[j]).tanh()).collect(), vec![]),
        K::Relu => ((0..hd).map(|j| (gi[j] + gh[j]).max(0.0)).collect(), vec![]),
        K::Gru => {
            let hn = (0..hd)
                .map(|j| {
                    let r = sig(gi[j] + gh[j]);
                    let z = sig(gi[hd + j] + gh[hd + j]);
                    let n = (gi[2 * hd + j] + r * gh[2 * hd + j]).tanh();
                    (1.0 - z) * n + z * h[j]
                })
                .collect();
            (hn, vec![])
        }
        K::Lstm => {
            let mut hn = vec![0.0; hd];
            let mut cn = vec![0.0; hd];
            for j in 0..hd {
                let g = |q: usize| gi[q * hd + j] + gh[q * hd + j];
                let (i, f, gg, o) = (sig(g(0)), sig(g(1)), g(2).tanh(), sig(g(3)));
                cn[j] = f * c[j] + i * gg;
                hn[j] = o * cn[j].tanh();
            }
            (hn, cn)
        }
    }
}

/// The stack over time-major `x (L, B, I)` from states `(layers * dirs, B, H)`: output
/// `(L, B, dirs * H)`, `h_n`, `c_n`.
#[allow(clippy::too_many_arguments)]
fn stack_ref(
    k: K,
    ws: &[W],
    layers: usize,
    dirs: usize,
    hd: usize,
    x: &[f64],
    (l, b, i0): (usize, usize, usize),
    h0: &[f64],
    c0: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut inp: Vec<Vec<Vec<f64>>> = (0..l)
        .map(|t| {
            (0..b)
                .map(|n| x[(t * b + n) * i0..(t * b + n + 1) * i0].to_vec())
                .collect()
        })
        .collect();
    let (mut hn, mut cn) = (vec![], vec![]);
    for layer in 0..layers {
        let mut out = vec![vec![vec![]; b]; l];
        for d in 0..dirs {
            let w = &ws[layer * dirs + d];
            let s = layer * dirs + d;
            for n in 0..b {
                let mut h = h0[(s * b + n) * hd..(s * b + n + 1) * hd].to_vec();
                let mut c = if k == K::Lstm {
                    c0[(s * b + n) * hd..(s * b + n + 1) * hd].to_vec()
                } else {
                    vec![]
                };
                for q in 0..l {
                    let t = if d == 0 { q } else { l - 1 - q };
                    let (nh, nc) = step(k, w, hd, &inp[t][n], &h, &c);
                    out[t][n].extend_from_slice(&nh);
                    h = nh;
                    c = nc;
                }
                hn.push(h);
                cn.push(c);
            }
        }
        inp = out;
    }
    let out = inp.into_iter().flatten().flatten().collect();
    // h_n rows were pushed per (layer, dir, batch): already (layers * dirs, B, H)
    (out, hn.concat(), cn.concat())
}

/// Random values for every parameter, set through `update`; returns them by name.
fn randomize(m: &mut impl Module, r: &mut Rng, scale: f64) -> BTreeMap<String, Vec<f64>> {
    let mut new = BTreeMap::new();
    let mut vals = BTreeMap::new();
    for (name, a) in m.parameters() {
        let v = r.normals(a.size(), scale);
        new.insert(name.clone(), arr(&v, a.shape()));
        vals.insert(name, v);
    }
    m.update(&new).unwrap();
    vals
}

fn weights(p: &BTreeMap<String, Vec<f64>>, suffix: &str, gh: usize, input: usize) -> W {
    let get = |n: &str| {
        p.get(&format!("{n}{suffix}"))
            .cloned()
            .unwrap_or(vec![0.0; gh])
    };
    W {
        wih: get("weight_ih"),
        whh: get("weight_hh"),
        bih: get("bias_ih"),
        bhh: get("bias_hh"),
        input,
    }
}

fn opts(layers: usize, bidir: bool, batch_first: bool, bias: bool) -> RecurrentOptions {
    RecurrentOptions::default()
        .num_layers(layers)
        .bidirectional(bidir)
        .batch_first(batch_first)
        .bias(bias)
}

/// (B, L, I) row-major values to (L, B, I).
fn swap01(v: &[f64], a: usize, b: usize, c: usize) -> Vec<f64> {
    let mut out = vec![0.0; v.len()];
    for i in 0..a {
        for j in 0..b {
            for k in 0..c {
                out[(j * a + i) * c + k] = v[(i * b + j) * c + k];
            }
        }
    }
    out
}

/// Runs the layer of kind `k` with `o` on random inputs and states and compares all outputs.
fn check_stack(seed: u64, k: K, o: &RecurrentOptions, give_state: bool) {
    let mut r = Rng::new(seed);
    let (l, b, i, hd) = (4, 3, 3, 4);
    let key = rng::key(seed);
    let dirs = if o.bidirectional { 2 } else { 1 };
    let what = format!("{k:?} {o:?} state {give_state}");
    // inputs in the layer's layout; the reference is time-major
    let xs = if o.batch_first { [b, l, i] } else { [l, b, i] };
    let xv = r.normals(l * b * i, 1.0);
    let x = arr(&xv, &xs);
    let xt = if o.batch_first {
        swap01(&xv, b, l, i)
    } else {
        xv.clone()
    };
    let sshape = [o.num_layers * dirs, b, hd];
    let ns: usize = sshape.iter().product();
    let (h0v, c0v) = if give_state {
        (r.normals(ns, 0.5), r.normals(ns, 0.5))
    } else {
        (vec![0.0; ns], vec![0.0; ns])
    };
    let (h0, c0) = (arr(&h0v, &sshape), arr(&c0v, &sshape));
    let (y, h, c, p) = match k {
        K::Tanh | K::Relu => {
            let act = if k == K::Tanh {
                Nonlinearity::Tanh
            } else {
                Nonlinearity::Relu
            };
            let mut m = RNN::with(i, hd, act, o, &key, DType::F64).unwrap();
            let p = randomize(&mut m, &mut r, 0.5);
            let (y, h) = m.forward(&x, give_state.then_some(&h0)).unwrap();
            (y, h, None, p)
        }
        K::Gru => {
            let mut m = GRU::with(i, hd, o, &key, DType::F64).unwrap();
            let p = randomize(&mut m, &mut r, 0.5);
            let (y, h) = m.forward(&x, give_state.then_some(&h0)).unwrap();
            // the Unary forward is the output sequence from zeros
            let (z, _) = m.forward(&x, None).unwrap();
            assert_eq!(to_f64(&Unary::forward(&m, &x).unwrap()), to_f64(&z));
            (y, h, None, p)
        }
        K::Lstm => {
            let mut m = LSTM::with(i, hd, o, &key, DType::F64).unwrap();
            let p = randomize(&mut m, &mut r, 0.5);
            let (y, (h, c)) = m.forward(&x, give_state.then_some((&h0, &c0))).unwrap();
            (y, h, Some(c), p)
        }
    };
    let ws: Vec<W> = (0..o.num_layers * dirs)
        .map(|s| {
            let (layer, d) = (s / dirs, s % dirs);
            let suffix = format!("_l{layer}{}", if d == 1 { "_reverse" } else { "" });
            let input = if layer == 0 { i } else { dirs * hd };
            weights(&p, &suffix, k.gates() * hd, input)
        })
        .collect();
    let (wy, wh, wc) = stack_ref(k, &ws, o.num_layers, dirs, hd, &xt, (l, b, i), &h0v, &c0v);
    let ys = if o.batch_first {
        [b, l, dirs * hd]
    } else {
        [l, b, dirs * hd]
    };
    assert_eq!(y.shape(), ys, "{what}: output shape");
    let yv = to_f64(&y);
    let yv = if o.batch_first {
        swap01(&yv, b, l, dirs * hd)
    } else {
        yv
    };
    assert_close(&yv, &wy, 1e-12, 1e-12, &format!("{what}: output"));
    assert_eq!(h.shape(), sshape, "{what}: h_n shape");
    assert_close(&to_f64(&h), &wh, 1e-12, 1e-12, &format!("{what}: h_n"));
    if let Some(c) = c {
        assert_eq!(c.shape(), sshape, "{what}: c_n shape");
        assert_close(&to_f64(&c), &wc, 1e-12, 1e-12, &format!("{what}: c_n"));
    }
}

#[test]
fn stacks_match_recurrences() {
    for (s, k) in [K::Tanh, K::Relu, K::Gru, K::Lstm].into_iter().enumerate() {
        let s = s as u64 * 10;
        check_stack(s + 1, k, &opts(1, false, false, true), true);
        check_stack(s + 2, k, &opts(2, true, true, true), false);
        check_stack(s + 3, k, &opts(2, false, false, false), true);
        check_stack(s + 4, k, &opts(3, true, false, true), true);
    }
}

#[test]
fn unbatched_sequences() {
    let mut r = Rng::new(5);
    let (l, i, hd) = (5, 2, 3);
    let mut m = LSTM::with(i, hd, &opts(2, true, false, true), &rng::key(1), DType::F64).unwrap();
    let p = randomize(&mut m, &mut r, 0.5);
    let xv = r.normals(l * i, 1.0);
    let h0v = r.normals(4 * hd, 0.5);
    let c0v = r.normals(4 * hd, 0.5);
    let (y, (h, c)) = m
        .forward(
            &arr(&xv, &[l, i]),
            Some((&arr(&h0v, &[4, hd]), &arr(&c0v, &[4, hd]))),
        )
        .unwrap();
    assert_eq!(y.shape(), &[l, 2 * hd]);
    assert_eq!(h.shape(), &[4, hd]);
    assert_eq!(c.shape(), &[4, hd]);
    let ws: Vec<W> = ["_l0", "_l0_reverse", "_l1", "_l1_reverse"]
        .iter()
        .enumerate()
        .map(|(s, suf)| weights(&p, suf, 4 * hd, if s < 2 { i } else { 2 * hd }))
        .collect();
    let (wy, wh, wc) = stack_ref(K::Lstm, &ws, 2, 2, hd, &xv, (l, 1, i), &h0v, &c0v);
    assert_close(&to_f64(&y), &wy, 1e-12, 1e-12, "unbatched output");
    assert_close(&to_f64(&h), &wh, 1e-12, 1e-12, "unbatched h_n");
    assert_close(&to_f64(&c), &wc, 1e-12, 1e-12, "unbatched c_n");
}

#[test]
fn cells_match_one_step() {
    let mut r = Rng::new(7);
    let (b, i, hd) = (3, 4, 5);
    let xv = r.normals(b * i, 1.0);
    let hv = r.normals(b * hd, 0.5);
    let cv = r.normals(b * hd, 0.5);
    let (x, h, c) = (arr(&xv, &[b, i]), arr(&hv, &[b, hd]), arr(&cv, &[b, hd]));
    let rows = |v: &[f64], w: usize, n: usize| v[n * w..(n + 1) * w].to_vec();
    let check =
        |k: K, p: &BTreeMap<String, Vec<f64>>, got_h: &Array, got_c: Option<&Array>, zero: bool| {
            let w = weights(p, "", k.gates() * hd, i);
            let (mut wh, mut wc) = (vec![], vec![]);
            for n in 0..b {
                let h0 = if zero {
                    vec![0.0; hd]
                } else {
                    rows(&hv, hd, n)
                };
                let c0 = if zero {
                    vec![0.0; hd]
                } else {
                    rows(&cv, hd, n)
                };
                let (a, cc) = step(k, &w, hd, &rows(&xv, i, n), &h0, &c0);
                wh.extend(a);
                wc.extend(cc);
            }
            assert_eq!(got_h.shape(), &[b, hd]);
            assert_close(&to_f64(got_h), &wh, 1e-12, 1e-12, &format!("{k:?} cell h"));
            if let Some(gc) = got_c {
                assert_close(&to_f64(gc), &wc, 1e-12, 1e-12, &format!("{k:?} cell c"));
            }
        };
    for act in [Nonlinearity::Tanh, Nonlinearity::Relu] {
        let mut m = RNNCell::with(i, hd, true, act, &rng::key(1), DType::F64).unwrap();
        let p = randomize(&mut m, &mut r, 0.5);
        let k = if act == Nonlinearity::Tanh {
            K::Tanh
        } else {
            K::Relu
        };
        check(k, &p, &m.forward(&x, Some(&h)).unwrap(), None, false);
        check(k, &p, &Unary::forward(&m, &x).unwrap(), None, true);
    }
    let mut g = GRUCell::with(i, hd, false, &rng::key(2), DType::F64).unwrap();
    let p = randomize(&mut g, &mut r, 0.5);
    assert_eq!(p.keys().collect::<Vec<_>>(), ["weight_hh", "weight_ih"]);
    check(K::Gru, &p, &g.forward(&x, Some(&h)).unwrap(), None, false);
    check(K::Gru, &p, &g.forward(&x, None).unwrap(), None, true);
    let mut l = LSTMCell::with(i, hd, true, &rng::key(3), DType::F64).unwrap();
    let p = randomize(&mut l, &mut r, 0.5);
    let (nh, nc) = l.forward(&x, Some((&h, &c))).unwrap();
    check(K::Lstm, &p, &nh, Some(&nc), false);
    let (nh, nc) = l.forward(&x, None).unwrap();
    check(K::Lstm, &p, &nh, Some(&nc), true);
    // unbatched: one row
    let x0 = arr(&xv[..i], &[i]);
    let (h0, c0) = (arr(&hv[..hd], &[hd]), arr(&cv[..hd], &[hd]));
    let (uh, uc) = l.forward(&x0, Some((&h0, &c0))).unwrap();
    let (bh, bc) = l.forward(&x, Some((&h, &c))).unwrap();
    assert_eq!(uh.shape(), &[hd]);
    assert_close(
        &to_f64(&uh),
        &to_f64(&bh)[..hd],
        1e-12,
        1e-12,
        "unbatched cell h",
    );
    assert_close(
        &to_f64(&uc),
        &to_f64(&bc)[..hd],
        1e-12,
        1e-12,
        "unbatched cell c",
    );
}

#[test]
fn parameter_names_shapes_and_init() {
    let o = opts(2, true, false, true);
    let m = LSTM::with(3, 4, &o, &rng::key(1), DType::F32).unwrap();
    let p = m.parameters();
    let mut want = BTreeMap::new();
    for suf in ["_l0", "_l0_reverse", "_l1", "_l1_reverse"] {
        let input = if suf.starts_with("_l0") { 3 } else { 8 };
        want.insert(format!("weight_ih{suf}"), vec![16, input]);
        want.insert(format!("weight_hh{suf}"), vec![16, 4]);
        want.insert(format!("bias_ih{suf}"), vec![16]);
        want.insert(format!("bias_hh{suf}"), vec![16]);
    }
    let got: BTreeMap<String, Vec<usize>> = p
        .iter()
        .map(|(n, a)| (n.clone(), a.shape().to_vec()))
        .collect();
    assert_eq!(got, want);
    let bound = 0.5; // 1 / sqrt(hidden = 4)
    for (n, a) in &p {
        let v = to_f64(a);
        assert!(v.iter().all(|x| x.abs() <= bound), "{n} within U(-b, b)");
        assert!(v.iter().any(|x| x.abs() > bound / 2.0), "{n} spreads");
    }
    assert_eq!(
        m.num_parameters(),
        2 * (16 * 3 + 16 * 4 + 32) + 2 * (16 * 8 + 16 * 4 + 32)
    );
    let g = GRU::with(
        2,
        5,
        &opts(1, false, false, false),
        &rng::key(2),
        DType::F32,
    )
    .unwrap();
    let names: Vec<String> = g.parameters().into_keys().collect();
    assert_eq!(names, ["weight_hh_l0", "weight_ih_l0"]);
    assert_eq!(g.weights()[0].weight_ih.value.shape(), &[15, 2]);
    let rn = RNN::new(2, 6).unwrap();
    assert_eq!(rn.parameters()["weight_hh_l0"].shape(), &[6, 6]);
    assert_eq!(rn.parameters()["bias_ih_l0"].shape(), &[6]);
    assert!(
        !rn.options().batch_first,
        "time-major by default, as PyTorch"
    );
    let c = LSTMCell::new(3, 2).unwrap();
    let names: Vec<String> = c.parameters().into_keys().collect();
    assert_eq!(names, ["bias_hh", "bias_ih", "weight_hh", "weight_ih"]);
    assert_eq!(c.weights.weight_ih.value.shape(), &[8, 3]);
    assert_eq!(
        GRUCell::new(3, 2).unwrap().weights.weight_hh.value.shape(),
        &[6, 2]
    );
    assert_eq!(
        RNNCell::new(3, 2).unwrap().weights.weight_hh.value.shape(),
        &[2, 2]
    );
}

#[test]
fn lstm_gradients_match_finite_differences() {
    let mut r = Rng::new(11);
    let (l, b, i, hd) = (3, 2, 3, 2);
    let mut m = LSTM::with(i, hd, &opts(2, false, true, true), &rng::key(4), DType::F64).unwrap();
    randomize(&mut m, &mut r, 0.6);
    let x = arr(&r.normals(b * l * i, 1.0), &[b, l, i]);
    let h0 = arr(&r.normals(2 * b * hd, 0.5), &[2, b, hd]);
    let c0 = arr(&r.normals(2 * b * hd, 0.5), &[2, b, hd]);
    let cy = arr(&r.normals(b * l * hd, 1.0), &[b, l, hd]);
    let ch = arr(&r.normals(2 * b * hd, 1.0), &[2, b, hd]);
    let cc = arr(&r.normals(2 * b * hd, 1.0), &[2, b, hd]);
    let loss = move |m: &LSTM| -> ingot::Result<Array> {
        let (y, (h, c)) = m.forward(&x, Some((&h0, &c0)))?;
        let dot = |a: &Array, w: &Array| ingot::sum(&ingot::multiply(a, w)?, None, false);
        ingot::add(&ingot::add(&dot(&y, &cy)?, &dot(&h, &ch)?)?, &dot(&c, &cc)?)
    };
    let (_, grads) = value_and_grad(&mut m, &loss).unwrap();
    let params = m.parameters();
    assert_eq!(grads.len(), params.len());
    for (name, p) in &params {
        let v = to_f64(p);
        let shape = p.shape().to_vec();
        let fd: Vec<f64> = (0..v.len())
            .map(|j| {
                let at = |d: f64| {
                    let mut mm = m.clone();
                    let mut w = v.clone();
                    w[j] += d;
                    let mut one = BTreeMap::new();
                    one.insert(name.clone(), arr(&w, &shape));
                    mm.update(&one).unwrap();
                    loss(&mm).unwrap().item::<f64>().unwrap()
                };
                (at(1e-6) - at(-1e-6)) / 2e-6
            })
            .collect();
        assert_close(
            &to_f64(&grads[name]),
            &fd,
            1e-6,
            1e-8,
            &format!("d loss / d {name}"),
        );
    }
}

#[test]
fn dropout_between_layers_only_in_training() {
    let mut r = Rng::new(13);
    let (l, b, i, hd) = (4, 2, 3, 5);
    let o = opts(2, false, false, true).dropout(0.5);
    let mut m = GRU::with(i, hd, &o, &rng::key(5), DType::F64).unwrap();
    let p = randomize(&mut m, &mut r, 0.5);
    let xv = r.normals(l * b * i, 1.0);
    let x = arr(&xv, &[l, b, i]);
    rng::seed(1);
    let (ytrain, htrain) = m.forward(&x, None).unwrap();
    m.eval_mode();
    let (y, h) = m.forward(&x, None).unwrap();
    let ws = vec![
        weights(&p, "_l0", 3 * hd, i),
        weights(&p, "_l1", 3 * hd, hd),
    ];
    let zeros = vec![0.0; 2 * b * hd];
    let (wy, wh, _) = stack_ref(K::Gru, &ws, 2, 1, hd, &xv, (l, b, i), &zeros, &zeros);
    assert_close(&to_f64(&y), &wy, 1e-12, 1e-12, "eval mode ignores dropout");
    assert_close(&to_f64(&h), &wh, 1e-12, 1e-12, "eval h_n");
    // training: the first layer's final state is untouched, the second layer's input was dropped
    let (ht, hv) = (to_f64(&htrain), to_f64(&h));
    assert_close(&ht[..b * hd], &hv[..b * hd], 1e-12, 1e-12, "layer 0 state");
    assert_ne!(to_f64(&ytrain), to_f64(&y), "training drops");
}

fn err_text<T>(r: ingot::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn errors_name_layer_and_shapes() {
    let m = RNN::new(3, 4).unwrap();
    let e = err_text(m.forward(&ingot::zeros(&[5, 2, 4], DType::F32).unwrap(), None));
    assert!(
        e.contains("RNN") && e.contains("[5, 2, 4]") && e.contains("input_size=3"),
        "{e}"
    );
    let e = err_text(m.forward(&ingot::zeros(&[3], DType::F32).unwrap(), None));
    assert!(e.contains("RNN") && e.contains("[3]"), "{e}");
    let e = err_text(m.forward(&ingot::zeros(&[0, 2, 3], DType::F32).unwrap(), None));
    assert!(e.contains("RNN") && e.contains("empty"), "{e}");
    let l = LSTM::with(3, 4, &opts(2, false, false, true), &rng::key(1), DType::F32).unwrap();
    let x = ingot::zeros(&[5, 2, 3], DType::F32).unwrap();
    let h = ingot::zeros(&[1, 2, 4], DType::F32).unwrap();
    let c = ingot::zeros(&[2, 2, 4], DType::F32).unwrap();
    let e = err_text(l.forward(&x, Some((&h, &c))));
    assert!(
        e.contains("LSTM")
            && e.contains("h0")
            && e.contains("[1, 2, 4]")
            && e.contains("[2, 2, 4]"),
        "{e}"
    );
    let e = err_text(l.forward(&x, Some((&c, &h))));
    assert!(
        e.contains("LSTM") && e.contains("c0") && e.contains("[1, 2, 4]"),
        "{e}"
    );
    let e = err_text(
        GRU::new(3, 4)
            .unwrap()
            .forward(&ingot::zeros(&[5, 2, 3], DType::I32).unwrap(), None),
    );
    assert!(e.contains("GRU") && e.contains("int32"), "{e}");
    let e = err_text(GRU::with(
        3,
        4,
        &opts(0, false, false, true),
        &rng::key(1),
        DType::F32,
    ));
    assert!(e.contains("GRU") && e.contains("num_layers"), "{e}");
    let e = err_text(LSTM::with(
        3,
        4,
        &RecurrentOptions::default().dropout(1.0),
        &rng::key(1),
        DType::F32,
    ));
    assert!(e.contains("LSTM") && e.contains("dropout"), "{e}");
    let e = err_text(RNN::with(
        3,
        4,
        Nonlinearity::Tanh,
        &RecurrentOptions::default(),
        &rng::key(1),
        DType::I32,
    ));
    assert!(e.contains("RNN") && e.contains("int32"), "{e}");
    let cell = LSTMCell::new(3, 4).unwrap();
    let e = err_text(cell.forward(&ingot::zeros(&[2, 5], DType::F32).unwrap(), None));
    assert!(e.contains("LSTMCell") && e.contains("[2, 5]"), "{e}");
    let hh = ingot::zeros(&[3, 4], DType::F32).unwrap();
    let e = err_text(cell.forward(
        &ingot::zeros(&[2, 3], DType::F32).unwrap(),
        Some((&hh, &hh)),
    ));
    assert!(
        e.contains("LSTMCell") && e.contains("[3, 4]") && e.contains("[2, 3]"),
        "{e}"
    );
    let e = err_text(
        GRUCell::new(3, 4)
            .unwrap()
            .forward(&ingot::zeros(&[1, 2, 3], DType::F32).unwrap(), None),
    );
    assert!(e.contains("GRUCell") && e.contains("[1, 2, 3]"), "{e}");
}
