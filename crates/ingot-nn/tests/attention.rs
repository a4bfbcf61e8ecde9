//! Positions (RoPE, sinusoidal, ALiBi), scaled dot-product attention, multi-head attention
//! and transformer layers against plain f64 loops.

use ingot::{Array, DType};
use ingot_nn::{
    alibi_bias, alibi_slopes, rng, scaled_dot_product_attention, sinusoidal_positions,
    value_and_grad, DecoderMasks, FeedForwardActivation, Mask, ModuleExt, MultiHeadAttention, RoPE,
    SinusoidalPositionalEncoding, TransformerConfig, TransformerDecoderLayer, TransformerEncoder,
    TransformerEncoderLayer, Unary,
};
use std::collections::BTreeMap;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn vals(&mut self, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| (self.next() * 2.0 - 1.0) * scale).collect()
    }
}

fn arr(v: &[f64], shape: &[usize]) -> Array {
    Array::from_slice(v, shape).unwrap()
}

fn f64s(a: &Array) -> Vec<f64> {
    ingot::astype(a, DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap()
}

fn close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()) || (g.is_nan() && w.is_nan()),
            "{what}: element {i}: got {g}, want {w}"
        );
    }
}

#[test]
fn rope_rotates_halves_or_pairs_from_an_offset() {
    let mut r = Rng(1);
    let (b, l, d, dims) = (2, 5, 10, 8);
    let xv = r.vals(b * l * d, 2.0);
    let x = arr(&xv, &[b, l, d]);
    for traditional in [false, true] {
        let rope = RoPE::new(dims, traditional, 500.0).unwrap();
        let y = f64s(&rope.forward_at(&x, 7).unwrap());
        let mut want = xv.clone();
        for s in 0..b {
            for p in 0..l {
                let base = (s * l + p) * d;
                for i in 0..dims / 2 {
                    let th = (p + 7) as f64 * 500f64.powf(-2.0 * i as f64 / dims as f64);
                    let (a, c) = if traditional {
                        (2 * i, 2 * i + 1)
                    } else {
                        (i, i + dims / 2)
                    };
                    let (x0, x1) = (xv[base + a], xv[base + c]);
                    want[base + a] = x0 * th.cos() - x1 * th.sin();
                    want[base + c] = x0 * th.sin() + x1 * th.cos();
                }
            }
        }
        close(&y, &want, 1e-12, &format!("RoPE traditional={traditional}"));
    }
    // f16 in, f16 out; wrong widths refused
    let rope = RoPE::new(dims, false, 10000.0).unwrap();
    assert_eq!(
        rope.forward(&ingot::astype(&x, DType::F16).unwrap())
            .unwrap()
            .dtype(),
        DType::F16
    );
    assert!(rope.forward(&arr(&xv[..12], &[2, 6])).is_err());
    assert!(RoPE::new(7, false, 10000.0).is_err());
}

#[test]
fn sinusoidal_and_alibi_match_their_formulas() {
    let pe = f64s(&sinusoidal_positions(6, 8, 10000.0, DType::F64).unwrap());
    for p in 0..6 {
        for i in 0..4 {
            let a = p as f64 / 10000f64.powf(2.0 * i as f64 / 8.0);
            assert!((pe[p * 8 + 2 * i] - a.sin()).abs() < 1e-15);
            assert!((pe[p * 8 + 2 * i + 1] - a.cos()).abs() < 1e-15);
        }
    }
    let enc = SinusoidalPositionalEncoding::new(8);
    let x = ingot::ones(&[2, 3, 8], DType::F64).unwrap();
    let y = f64s(&enc.forward_at(&x, 2).unwrap());
    for p in 0..3 {
        for k in 0..8 {
            assert!((y[p * 8 + k] - 1.0 - pe[(p + 2) * 8 + k]).abs() < 1e-15);
        }
    }
    assert_eq!(alibi_slopes(4), vec![0.25, 0.0625, 0.015625, 0.00390625]);
    // 6 heads: the 4-head slopes, then every other slope of 8 heads
    let s6 = alibi_slopes(6);
    assert_eq!(s6[..4], alibi_slopes(4)[..]);
    assert_eq!(s6[4..], [alibi_slopes(8)[0], alibi_slopes(8)[2]]);
    let bias = f64s(&alibi_bias(2, 2, 5, 3, DType::F64).unwrap());
    for h in 0..2 {
        for i in 0..2 {
            for j in 0..5 {
                let want = -alibi_slopes(2)[h] * ((i + 3) as f64 - j as f64).abs();
                assert_eq!(bias[(h * 2 + i) * 5 + j], want);
            }
        }
    }
}

/// softmax(q k^T * scale + bias) v over (B, L, E) x (B, S, E) x (B, S, Ev), with `allow`.
fn attention_ref(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    (b, l, s, e, ev): (usize, usize, usize, usize, usize),
    allow: &dyn Fn(usize, usize, usize) -> bool,
) -> Vec<f64> {
    let mut out = vec![0.0; b * l * ev];
    let scale = 1.0 / (e as f64).sqrt();
    for bi in 0..b {
        for i in 0..l {
            let sc: Vec<f64> = (0..s)
                .map(|j| {
                    if !allow(bi, i, j) {
                        return f64::NEG_INFINITY;
                    }
                    (0..e)
                        .map(|t| q[(bi * l + i) * e + t] * k[(bi * s + j) * e + t])
                        .sum::<f64>()
                        * scale
                })
                .collect();
            let m = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let w: Vec<f64> = sc.iter().map(|x| (x - m).exp()).collect();
            let z: f64 = w.iter().sum();
            for c in 0..ev {
                out[(bi * l + i) * ev + c] =
                    (0..s).map(|j| w[j] / z * v[(bi * s + j) * ev + c]).sum();
            }
        }
    }
    out
}

#[test]
fn scaled_dot_product_attention_masks() {
    let mut r = Rng(2);
    let (b, l, s, e, ev) = (3, 4, 6, 5, 3);
    let q = r.vals(b * l * e, 1.5);
    let k = r.vals(b * s * e, 1.5);
    let v = r.vals(b * s * ev, 1.0);
    let (qa, ka, va) = (
        arr(&q, &[b, l, e]),
        arr(&k, &[b, s, e]),
        arr(&v, &[b, s, ev]),
    );
    let dims = (b, l, s, e, ev);
    let got = f64s(&scaled_dot_product_attention(&qa, &ka, &va, None, None, None).unwrap());
    close(
        &got,
        &attention_ref(&q, &k, &v, dims, &|_, _, _| true),
        1e-12,
        "no mask",
    );
    // causal aligned to the last key: query i sees keys j <= i + s - l
    let got = f64s(
        &scaled_dot_product_attention(&qa, &ka, &va, Some(&Mask::Causal), None, None).unwrap(),
    );
    close(
        &got,
        &attention_ref(&q, &k, &v, dims, &|_, i, j| j <= i + s - l),
        1e-12,
        "causal",
    );
    // a boolean allow mask per batch
    let allow: Vec<bool> = (0..b * l * s).map(|t| t % 3 != 1).collect();
    let am = Array::from_slice(&allow, &[b, l, s]).unwrap();
    let got = f64s(
        &scaled_dot_product_attention(&qa, &ka, &va, Some(&Mask::Allow(am)), None, None).unwrap(),
    );
    close(
        &got,
        &attention_ref(&q, &k, &v, dims, &|bi, i, j| allow[(bi * l + i) * s + j]),
        1e-12,
        "allow mask",
    );
    // bf16 inputs: scores in f32, result bf16 and close
    let bf = |a: &Array| ingot::astype(a, DType::BF16).unwrap();
    let y = scaled_dot_product_attention(&bf(&qa), &bf(&ka), &bf(&va), None, None, None).unwrap();
    assert_eq!(y.dtype(), DType::BF16);
    close(
        &f64s(&y),
        &attention_ref(&q, &k, &v, dims, &|_, _, _| true),
        3e-2,
        "bf16",
    );
    let e = scaled_dot_product_attention(&qa, &va, &va, None, None, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("scaled_dot_product_attention") && e.contains("[3, 6, 3]"),
        "{e}"
    );
}

/// x (N, T, E) @ W[rows]^T + b[rows].
fn proj(
    x: &[f64],
    w: &[f64],
    bias: &[f64],
    n: usize,
    e: usize,
    row0: usize,
    out: usize,
) -> Vec<f64> {
    let t = x.len() / e;
    let mut y = vec![0.0; t * out];
    for p in 0..t {
        for o in 0..out {
            y[p * out + o] = bias[row0 + o]
                + (0..e)
                    .map(|i| x[p * e + i] * w[(row0 + o) * e + i])
                    .sum::<f64>();
        }
    }
    let _ = n;
    y
}

fn mha_ref(
    m: &MultiHeadAttention,
    x: &[f64],
    mem: &[f64],
    (n, l, s): (usize, usize, usize),
    allow: &dyn Fn(usize, usize, usize) -> bool,
) -> Vec<f64> {
    let p = m.parameters();
    let (e, h) = (m.embed_dim, m.heads);
    let dh = e / h;
    let w = f64s(&p["in_proj_weight"]);
    let bias = f64s(&p["in_proj_bias"]);
    let q = proj(x, &w, &bias, n, e, 0, e);
    let k = proj(mem, &w, &bias, n, e, e, e);
    let v = proj(mem, &w, &bias, n, e, 2 * e, e);
    // heads: gather (N*H, T, dh)
    let heads = |a: &[f64], t: usize| -> Vec<f64> {
        let mut o = vec![0.0; n * h * t * dh];
        for b in 0..n {
            for hh in 0..h {
                for p in 0..t {
                    for c in 0..dh {
                        o[((b * h + hh) * t + p) * dh + c] = a[(b * t + p) * e + hh * dh + c];
                    }
                }
            }
        }
        o
    };
    let att = attention_ref(
        &heads(&q, l),
        &heads(&k, s),
        &heads(&v, s),
        (n * h, l, s, dh, dh),
        &|bh, i, j| allow(bh / h, i, j),
    );
    let mut cat = vec![0.0; n * l * e];
    for b in 0..n {
        for hh in 0..h {
            for p in 0..l {
                for c in 0..dh {
                    cat[(b * l + p) * e + hh * dh + c] = att[((b * h + hh) * l + p) * dh + c];
                }
            }
        }
    }
    proj(
        &cat,
        &f64s(&p["out_proj.weight"]),
        &f64s(&p["out_proj.bias"]),
        n,
        e,
        0,
        e,
    )
}

#[test]
fn multi_head_attention_matches_reference_with_masks_and_gradients() {
    let mut r = Rng(3);
    let (n, l, s, e, h) = (2, 3, 5, 8, 2);
    let mut m = MultiHeadAttention::with(e, h, 0.0, true, &rng::key(1), DType::F64).unwrap();
    let names: Vec<String> = m.parameters().into_keys().collect();
    assert_eq!(
        names,
        [
            "in_proj_bias",
            "in_proj_weight",
            "out_proj.bias",
            "out_proj.weight"
        ]
    );
    // non-zero biases, so the reference checks where they go
    let mut upd = BTreeMap::new();
    upd.insert(
        "in_proj_bias".to_string(),
        arr(&r.vals(3 * e, 0.5), &[3 * e]),
    );
    upd.insert("out_proj.bias".to_string(), arr(&r.vals(e, 0.5), &[e]));
    m.update(&upd).unwrap();
    let x = r.vals(n * l * e, 1.0);
    let mem = r.vals(n * s * e, 1.0);
    let (xa, ma) = (arr(&x, &[n, l, e]), arr(&mem, &[n, s, e]));
    let got = f64s(&m.forward(&xa, &ma, &ma, None, None).unwrap());
    close(
        &got,
        &mha_ref(&m, &x, &mem, (n, l, s), &|_, _, _| true),
        1e-12,
        "MHA",
    );
    // key padding (true = ignore) with a causal mask
    let pad = vec![
        false, false, false, true, true, false, false, false, false, true,
    ];
    let pa = Array::from_slice(&pad, &[n, s]).unwrap();
    let got = f64s(
        &m.forward(&xa, &ma, &ma, Some(&Mask::Causal), Some(&pa))
            .unwrap(),
    );
    let want = mha_ref(&m, &x, &mem, (n, l, s), &|b, i, j| {
        !pad[b * s + j] && j <= i + s - l
    });
    close(&got, &want, 1e-12, "MHA causal + padding");

    // gradients of the in-projection against central differences
    let loss = |mm: &MultiHeadAttention| -> ingot::Result<Array> {
        let y = mm.forward(&xa, &ma, &ma, Some(&Mask::Causal), None)?;
        ingot::sum(&ingot::multiply(&y, &y)?, None, false)
    };
    let (_, g) = value_and_grad(&mut m, loss).unwrap();
    let gw = f64s(&g["in_proj_weight"]);
    let w0 = f64s(&m.parameters()["in_proj_weight"]);
    for &k in &[0usize, 17, 70, 130, 191] {
        let at = |d: f64| {
            let mut w = w0.clone();
            w[k] += d;
            let mut mm = m.clone();
            let mut u = BTreeMap::new();
            u.insert("in_proj_weight".to_string(), arr(&w, &[3 * e, e]));
            mm.update(&u).unwrap();
            loss(&mm).unwrap().item::<f64>().unwrap()
        };
        let fd = (at(1e-6) - at(-1e-6)) / 2e-6;
        assert!(
            (fd - gw[k]).abs() < 1e-6 * (1.0 + fd.abs()),
            "in_proj_weight[{k}]: {} vs {fd}",
            gw[k]
        );
    }
    assert!(MultiHeadAttention::new(10, 3).is_err());
    let e2 = m
        .forward(&xa, &arr(&mem[..n * s * 4], &[n, s, 4]), &ma, None, None)
        .unwrap_err();
    assert!(e2.to_string().contains("MultiHeadAttention"), "{e2}");
}

fn layer_norm_ref(x: &[f64], e: usize, w: &[f64], b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for p in 0..x.len() / e {
        let row = &x[p * e..(p + 1) * e];
        let mean = row.iter().sum::<f64>() / e as f64;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / e as f64;
        for i in 0..e {
            y[p * e + i] = (row[i] - mean) / (var + 1e-5).sqrt() * w[i] + b[i];
        }
    }
    y
}

#[test]
fn transformer_layers_match_reference_in_eval_mode() {
    let mut r = Rng(4);
    let (n, l, s, e, h, ff) = (2, 3, 4, 8, 2, 16);
    let mut c = TransformerConfig::new(e, h);
    c.dim_feedforward = ff;
    c.dtype = DType::F64;
    for norm_first in [false, true] {
        c.norm_first = norm_first;
        c.activation = if norm_first {
            FeedForwardActivation::Gelu
        } else {
            FeedForwardActivation::Relu
        };
        let mut layer = TransformerEncoderLayer::with(&c, &rng::key(5)).unwrap();
        layer.eval_mode();
        // norms with non-trivial parameters
        let mut u = BTreeMap::new();
        for name in ["norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"] {
            u.insert(name.to_string(), arr(&r.vals(e, 1.0), &[e]));
        }
        layer.update(&u).unwrap();
        let p = layer.parameters();
        let g = |k: &str| f64s(&p[k]);
        let x = r.vals(n * l * e, 1.0);
        let got = f64s(&layer.forward(&arr(&x, &[n, l, e])).unwrap());
        let act = |v: f64| {
            if norm_first {
                0.5 * v * (1.0 + libm_erf(v / std::f64::consts::SQRT_2))
            } else {
                v.max(0.0)
            }
        };
        let ffn = |z: &[f64]| -> Vec<f64> {
            let hdn: Vec<f64> = proj(z, &g("linear1.weight"), &g("linear1.bias"), n, e, 0, ff)
                .into_iter()
                .map(act)
                .collect();
            proj(&hdn, &g("linear2.weight"), &g("linear2.bias"), n, ff, 0, e)
        };
        let sa = |z: &[f64]| mha_ref(&layer.self_attn, z, z, (n, l, l), &|_, _, _| true);
        let add = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x + y).collect::<Vec<f64>>();
        let ln1 = |z: &[f64]| layer_norm_ref(z, e, &g("norm1.weight"), &g("norm1.bias"));
        let ln2 = |z: &[f64]| layer_norm_ref(z, e, &g("norm2.weight"), &g("norm2.bias"));
        let want = if norm_first {
            let x1 = add(&x, &sa(&ln1(&x)));
            add(&x1, &ffn(&ln2(&x1)))
        } else {
            let x1 = ln1(&add(&x, &sa(&x)));
            ln2(&add(&x1, &ffn(&x1)))
        };
        close(
            &got,
            &want,
            1e-10,
            &format!("encoder layer norm_first={norm_first}"),
        );
    }
    // names as PyTorch's, stacks and the decoder layer run and keep shapes
    let enc = TransformerEncoder::new(&c, 2, true).unwrap();
    let names: Vec<String> = enc.parameters().into_keys().collect();
    assert!(names.contains(&"layers.1.self_attn.out_proj.weight".to_string()));
    assert!(names.contains(&"layers.0.linear2.bias".to_string()));
    assert!(names.contains(&"norm.weight".to_string()));
    let mut dec = TransformerDecoderLayer::with(&c, &rng::key(6)).unwrap();
    dec.eval_mode();
    let dnames: Vec<String> = dec.parameters().into_keys().collect();
    assert!(dnames.contains(&"multihead_attn.in_proj_weight".to_string()));
    assert!(dnames.contains(&"norm3.bias".to_string()));
    let tgt = arr(&r.vals(n * l * e, 1.0), &[n, l, e]);
    let mem = arr(&r.vals(n * s * e, 1.0), &[n, s, e]);
    let masks = DecoderMasks {
        tgt_mask: Some(&Mask::Causal),
        ..Default::default()
    };
    let y = dec.forward(&tgt, &mem, &masks).unwrap();
    assert_eq!(y.shape(), [n, l, e]);
    // causality: changing the last target position leaves earlier outputs unchanged
    let mut t2 = f64s(&tgt);
    for v in &mut t2[(l - 1) * e..l * e] {
        *v += 1.0;
    }
    let y2 = f64s(&dec.forward(&arr(&t2, &[n, l, e]), &mem, &masks).unwrap());
    let y1 = f64s(&y);
    close(
        &y2[..(l - 1) * e],
        &y1[..(l - 1) * e],
        1e-12,
        "causal decoder",
    );
    assert!(y2[(l - 1) * e..l * e] != y1[(l - 1) * e..l * e]);
}

/// erf by its series and continued fraction is overkill here: Abramowitz-Stegun 7.1.26 is
/// too coarse (1e-7), so integrate exp(-t^2) with Simpson's rule finely instead.
fn libm_erf(x: f64) -> f64 {
    let n = 20000;
    let h = x / n as f64;
    let f = |t: f64| (-t * t).exp();
    let mut s = f(0.0) + f(x);
    for i in 1..n {
        s += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
}
