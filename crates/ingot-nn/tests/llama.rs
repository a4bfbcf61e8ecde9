//! The Llama-layout model: Hugging Face names, a forward pass against an f64 reference
//! written from the architecture, causality, the KV cache, the folder round trip, and
//! learning.

use ingot::{Array, DType};
use ingot_nn::models::{KvCache, Llama, LlamaConfig};
use ingot_nn::optim::{AdamW, Optimizer};
use ingot_nn::{rng, value_and_grad, ModuleExt};

fn config(layers: usize, tied: bool) -> LlamaConfig {
    LlamaConfig {
        vocab_size: 11,
        hidden_size: 8,
        intermediate_size: 12,
        num_hidden_layers: layers,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 2,
        rms_norm_eps: 1e-6,
        rope_theta: 100.0,
        max_position_embeddings: 64,
        tie_word_embeddings: tied,
        bos_token_id: Some(0),
        eos_token_ids: vec![1],
        ..LlamaConfig::default()
    }
}

fn f64s(a: &Array) -> Vec<f64> {
    ingot::astype(a, DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap()
}

fn ids(v: &[i32], b: usize) -> Array {
    Array::from_slice(v, &[b, v.len() / b]).unwrap()
}

/// y (T, out) = x (T, in) W^T for W (out, in).
fn mm(x: &[f64], w: &[f64], inp: usize) -> Vec<f64> {
    let t = x.len() / inp;
    let out = w.len() / inp;
    let mut y = vec![0.0; t * out];
    for p in 0..t {
        for o in 0..out {
            y[p * out + o] = (0..inp).map(|i| x[p * inp + i] * w[o * inp + i]).sum();
        }
    }
    y
}

fn rms(x: &[f64], w: &[f64], eps: f64) -> Vec<f64> {
    let d = w.len();
    let mut y = x.to_vec();
    for row in y.chunks_mut(d) {
        let ms = row.iter().map(|v| v * v).sum::<f64>() / d as f64;
        for (i, v) in row.iter_mut().enumerate() {
            *v = *v / (ms + eps).sqrt() * w[i];
        }
    }
    y
}

/// The model's logits for one sequence, in f64 loops from the architecture's definition.
fn reference(m: &Llama, seq: &[i32]) -> Vec<f64> {
    let c = &m.config;
    let p = m.parameters();
    let g = |k: &str| f64s(&p[k]);
    let (h, hd, nh, nkv) = (
        c.hidden_size,
        c.head_dim,
        c.num_attention_heads,
        c.num_key_value_heads,
    );
    let t = seq.len();
    let emb = g("model.embed_tokens.weight");
    let mut x: Vec<f64> = seq
        .iter()
        .flat_map(|&i| emb[i as usize * h..(i as usize + 1) * h].to_vec())
        .collect();
    for l in 0..c.num_hidden_layers {
        let pre = format!("model.layers.{l}.");
        let xn = rms(
            &x,
            &g(&(pre.clone() + "input_layernorm.weight")),
            c.rms_norm_eps,
        );
        let mut q = mm(&xn, &g(&(pre.clone() + "self_attn.q_proj.weight")), h);
        let mut k = mm(&xn, &g(&(pre.clone() + "self_attn.k_proj.weight")), h);
        let v = mm(&xn, &g(&(pre.clone() + "self_attn.v_proj.weight")), h);
        // rotate_half RoPE on every head
        let rope = |a: &mut Vec<f64>, heads: usize| {
            for pos in 0..t {
                for hh in 0..heads {
                    let base = pos * heads * hd + hh * hd;
                    for i in 0..hd / 2 {
                        let th = pos as f64 * c.rope_theta.powf(-2.0 * i as f64 / hd as f64);
                        let (x0, x1) = (a[base + i], a[base + i + hd / 2]);
                        a[base + i] = x0 * th.cos() - x1 * th.sin();
                        a[base + i + hd / 2] = x1 * th.cos() + x0 * th.sin();
                    }
                }
            }
        };
        rope(&mut q, nh);
        rope(&mut k, nkv);
        let mut o = vec![0.0; t * nh * hd];
        for hh in 0..nh {
            let kh = hh / (nh / nkv);
            for i in 0..t {
                let sc: Vec<f64> = (0..=i)
                    .map(|j| {
                        (0..hd)
                            .map(|d| q[i * nh * hd + hh * hd + d] * k[j * nkv * hd + kh * hd + d])
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let mx = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = sc.iter().map(|s| (s - mx).exp()).collect();
                let z: f64 = w.iter().sum();
                for d in 0..hd {
                    o[i * nh * hd + hh * hd + d] = (0..=i)
                        .map(|j| w[j] / z * v[j * nkv * hd + kh * hd + d])
                        .sum();
                }
            }
        }
        let a = mm(&o, &g(&(pre.clone() + "self_attn.o_proj.weight")), nh * hd);
        for (xi, ai) in x.iter_mut().zip(&a) {
            *xi += ai;
        }
        let xn = rms(
            &x,
            &g(&(pre.clone() + "post_attention_layernorm.weight")),
            c.rms_norm_eps,
        );
        let gate = mm(&xn, &g(&(pre.clone() + "mlp.gate_proj.weight")), h);
        let up = mm(&xn, &g(&(pre.clone() + "mlp.up_proj.weight")), h);
        let act: Vec<f64> = gate
            .iter()
            .zip(&up)
            .map(|(gt, u)| gt / (1.0 + (-gt).exp()) * u)
            .collect();
        let dn = mm(
            &act,
            &g(&(pre + "mlp.down_proj.weight")),
            c.intermediate_size,
        );
        for (xi, di) in x.iter_mut().zip(&dn) {
            *xi += di;
        }
    }
    let xn = rms(&x, &g("model.norm.weight"), c.rms_norm_eps);
    let head = if c.tie_word_embeddings {
        emb
    } else {
        g("lm_head.weight")
    };
    mm(&xn, &head, h)
}

#[test]
fn names_and_logits_match_the_reference() {
    let m = Llama::new(&config(2, false), &rng::key(3), DType::F64).unwrap();
    let names: Vec<String> = m.parameters().into_keys().collect();
    for want in [
        "model.embed_tokens.weight",
        "model.layers.1.self_attn.k_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
        "model.layers.1.post_attention_layernorm.weight",
        "model.norm.weight",
        "lm_head.weight",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    assert_eq!(names.len(), 2 + 2 * 9 + 1);
    assert_eq!(
        m.parameters()["model.layers.0.self_attn.k_proj.weight"].shape(),
        [4, 8]
    );
    // norms with non-trivial weights, so the reference checks where they apply
    let mut m = m;
    let mut u = std::collections::BTreeMap::new();
    for (i, n) in ["model.norm.weight", "model.layers.1.input_layernorm.weight"]
        .iter()
        .enumerate()
    {
        u.insert(
            n.to_string(),
            ingot::random::uniform(&rng::key(10 + i as u64), &[8], 0.5, 1.5, DType::F64).unwrap(),
        );
    }
    m.update(&u).unwrap();
    let seq = [3, 7, 7, 1, 0, 10];
    let got = f64s(&m.forward(&ids(&seq, 1)).unwrap());
    let want = reference(&m, &seq);
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert!(
            (a - b).abs() < 1e-12 * (1.0 + b.abs()),
            "logit {i}: {a} vs {b}"
        );
    }
    // tied embeddings: no lm_head, logits from the embedding table
    let tied = Llama::new(&config(1, true), &rng::key(4), DType::F64).unwrap();
    assert!(!tied.parameters().contains_key("lm_head.weight"));
    let got = f64s(&tied.forward(&ids(&seq, 1)).unwrap());
    let want = reference(&tied, &seq);
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() < 1e-12 * (1.0 + b.abs()));
    }
    assert!(m
        .forward(&Array::from_slice(&[1.0f32, 2.0], &[1, 2]).unwrap())
        .is_err());
}

#[test]
fn the_cache_gives_the_same_logits_token_by_token() {
    let m = Llama::new(&config(2, false), &rng::key(5), DType::F32).unwrap();
    let seq = [2, 9, 4, 4, 6, 1, 3, 8, 5, 0];
    let b = 2;
    let both: Vec<i32> = seq.iter().chain(seq.iter().rev()).copied().collect();
    let full = f64s(&m.forward(&ids(&both, b)).unwrap());
    let n = seq.len();
    let mut cache = KvCache::new();
    // a prefix of 4, then one token at a time
    let take = |from: usize, to: usize| -> Vec<i32> {
        (0..b)
            .flat_map(|r| both[r * n + from..r * n + to].to_vec())
            .collect()
    };
    let mut got = vec![0.0; full.len()];
    let v = 11;
    let mut put = |logits: Vec<f64>, from: usize, to: usize| {
        let w = to - from;
        for r in 0..b {
            for p in 0..w {
                for k in 0..v {
                    got[(r * n + from + p) * v + k] = logits[(r * w + p) * v + k];
                }
            }
        }
    };
    put(
        f64s(
            &m.forward_cached(&ids(&take(0, 4), b), Some(&mut cache))
                .unwrap(),
        ),
        0,
        4,
    );
    assert_eq!(cache.len(), 4);
    for p in 4..n {
        put(
            f64s(
                &m.forward_cached(&ids(&take(p, p + 1), b), Some(&mut cache))
                    .unwrap(),
            ),
            p,
            p + 1,
        );
    }
    assert_eq!(cache.len(), n);
    for (i, (a, w)) in got.iter().zip(&full).enumerate() {
        assert!(
            (a - w).abs() < 1e-5 * (1.0 + w.abs()),
            "logit {i}: cached {a} vs full {w}"
        );
    }
    // causality: a later token does not change earlier logits
    let mut other = both.clone();
    other[n - 1] = 10;
    let changed = f64s(&m.forward(&ids(&other, b)).unwrap());
    assert_eq!(changed[..(n - 1) * v], full[..(n - 1) * v]);
    assert_ne!(changed[(n - 1) * v..n * v], full[(n - 1) * v..n * v]);
}

#[test]
fn hugging_face_folders_round_trip() {
    let dir = std::env::temp_dir().join(format!("ingot-nn-llama-{}", std::process::id()));
    let m = Llama::new(&config(2, false), &rng::key(6), DType::F32).unwrap();
    m.save_pretrained(&dir).unwrap();
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["architectures"][0], "LlamaForCausalLM");
    assert_eq!(cfg["num_key_value_heads"], 2);
    let back = Llama::from_pretrained(&dir, DType::F32).unwrap();
    assert_eq!(back.config, m.config);
    let x = ids(&[1, 2, 3, 4], 1);
    assert_eq!(
        f64s(&back.forward(&x).unwrap()),
        f64s(&m.forward(&x).unwrap())
    );
    // a bf16 load of the same folder
    let half = Llama::from_pretrained(&dir, DType::BF16).unwrap();
    assert_eq!(half.forward(&x).unwrap().dtype(), DType::BF16);
    // bad configs name the problem
    let mut bad = config(1, false);
    bad.num_key_value_heads = 3;
    let e = Llama::new(&bad, &rng::key(1), DType::F32)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("DecoderConfig") && e.contains("3 key/value heads"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_small_model_learns_a_repeating_sequence() {
    let mut m = Llama::new(&config(2, true), &rng::key(7), DType::F32).unwrap();
    let pattern: Vec<i32> = (0..33).map(|i| [2, 5, 3, 9, 4, 7][i % 6]).collect();
    let x = ids(&pattern[..32], 1);
    let y = ids(&pattern[1..], 1);
    let mut opt = AdamW::new(3e-2);
    let loss = |m: &Llama| {
        let logits = m.forward(&x)?;
        ingot_nn::losses::cross_entropy(&logits, &y, &Default::default())
    };
    let first = loss(&m).unwrap().item::<f32>().unwrap();
    assert!((first - (11f32).ln()).abs() < 0.3, "initial loss {first}");
    for _ in 0..60 {
        let (_, g) = value_and_grad(&mut m, loss).unwrap();
        opt.update(&mut m, &g).unwrap();
    }
    let last = loss(&m).unwrap().item::<f32>().unwrap();
    assert!(last < 0.1, "loss {first} -> {last}");
}

/// The folder transformers itself saved (scripts/hf/llama_fixture.py: random weights,
/// grouped-query heads, rope_theta inside rope_parameters) gives transformers' logits, in
/// f32 and, within bf16's precision, in bf16; token by token through the cache too.
#[test]
fn a_transformers_folder_gives_transformers_logits() {
    // Tests run from the package root under cargo and from the repository root elsewhere.
    let dir = [
        "tests/fixtures/hf-llama",
        "crates/ingot-nn/tests/fixtures/hf-llama",
    ]
    .into_iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.join("config.json").exists())
    .expect("the hf-llama fixture");
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("logits.json")).unwrap()).unwrap();
    let rows: Vec<Vec<i32>> = serde_json::from_value(want["ids"].clone()).unwrap();
    let logits: Vec<f64> = serde_json::from_value(want["logits"].clone()).unwrap();
    let (b, l) = (rows.len(), rows[0].len());
    let flat: Vec<i32> = rows.concat();
    let x = Array::from_slice(&flat, &[b, l]).unwrap();
    let m = Llama::from_pretrained(&dir, DType::F32).unwrap();
    assert_eq!(m.config.rope_theta, 50000.0);
    let got = f64s(&m.forward(&x).unwrap());
    let scale = logits.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let err = got
        .iter()
        .zip(&logits)
        .fold(0.0f64, |a, (g, w)| a.max((g - w).abs()));
    assert!(err <= 1e-4 * scale, "f32: max error {err} of {scale}");
    // Greedy choices agree everywhere.
    let vocab = m.config.vocab_size;
    let argmax = |v: &[f64]| -> Vec<usize> {
        v.chunks(vocab)
            .map(|r| (0..vocab).max_by(|&i, &j| r[i].total_cmp(&r[j])).unwrap())
            .collect()
    };
    assert_eq!(argmax(&got), argmax(&logits));
    let half = Llama::from_pretrained(&dir, DType::BF16).unwrap();
    let got = f64s(&half.forward(&x).unwrap());
    let err = got
        .iter()
        .zip(&logits)
        .fold(0.0f64, |a, (g, w)| a.max((g - w).abs()));
    assert!(err <= 0.05 * scale, "bf16: max error {err} of {scale}");
    // One token at a time through the cache, first row.
    let mut cache = ingot_nn::models::KvCache::new();
    let mut steps = Vec::new();
    for &t in &rows[0] {
        let y = m
            .forward_cached(&Array::from_slice(&[t], &[1, 1]).unwrap(), Some(&mut cache))
            .unwrap();
        steps.extend(f64s(&y));
    }
    let err = steps
        .iter()
        .zip(&logits[..l * vocab])
        .fold(0.0f64, |a, (g, w)| a.max((g - w).abs()));
    assert!(err <= 1e-4 * scale, "cached: max error {err} of {scale}");
}
