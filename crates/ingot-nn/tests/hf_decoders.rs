//! Folders that transformers itself saved (scripts/hf/decoder_fixtures.py: tiny random
//! models of every architecture the decoder implements) give transformers' logits: the
//! whole sequence in f32 and bf16, a greedy continuation of 32 tokens token by token
//! through the KV cache (past the sliding windows of 8), the same in chunks, and the cache
//! written in place.

use ingot::{Array, DType};
use ingot_nn::models::{Arch, Decoder, DecoderConfig, KvCache};
use serde_json::Value;
use std::path::PathBuf;

const ARCHS: [&str; 6] = [
    "hf-llama3",
    "hf-mistral",
    "hf-qwen2",
    "hf-qwen3",
    "hf-phi3",
    "hf-gemma2",
];

/// Tests run from the package root under cargo and from the repository root elsewhere.
fn fixture(name: &str) -> PathBuf {
    [
        format!("tests/fixtures/{name}"),
        format!("crates/ingot-nn/tests/fixtures/{name}"),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.join("config.json").exists())
    .unwrap_or_else(|| panic!("the {name} fixture"))
}

struct Want {
    ids: Vec<Vec<i32>>,
    logits: Vec<f64>,
    prompt: Vec<i32>,
    greedy: Vec<i32>,
    greedy_logits: Vec<f64>,
}

fn want(name: &str) -> Want {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(name).join("logits.json")).unwrap())
            .unwrap();
    let get = |k: &str| v[k].clone();
    Want {
        ids: serde_json::from_value(get("ids")).unwrap(),
        logits: serde_json::from_value(get("logits")).unwrap(),
        prompt: serde_json::from_value(get("prompt")).unwrap(),
        greedy: serde_json::from_value(get("greedy")).unwrap(),
        greedy_logits: serde_json::from_value(get("greedy_logits")).unwrap(),
    }
}

fn f64s(a: &Array) -> Vec<f64> {
    ingot::astype(a, DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap()
}

fn row(ids: &[i32]) -> Array {
    Array::from_slice(ids, &[1, ids.len()]).unwrap()
}

fn max_err(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .fold(0.0f64, |a, (g, w)| a.max((g - w).abs()))
}

fn scale(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |a, x| a.max(x.abs()))
}

/// The argmax of each row of `vocab`, where the top two differ by more than `margin` in
/// `reference` (elsewhere a rounding difference may pick either).
fn check_argmax(got: &[f64], reference: &[f64], vocab: usize, margin: f64, what: &str) {
    for (r, (g, w)) in got.chunks(vocab).zip(reference.chunks(vocab)).enumerate() {
        let mut sorted = w.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        if sorted[0] - sorted[1] <= margin {
            continue;
        }
        let am = |v: &[f64]| (0..vocab).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap();
        assert_eq!(am(g), am(w), "{what}: argmax of row {r}");
    }
}

fn buffer_ptr(a: &Array) -> usize {
    let d = a.data().unwrap();
    match d.buffer.device_address() {
        Some(p) => p as usize,
        None => d.buffer.as_bytes().as_ptr() as usize,
    }
}

#[test]
fn every_architecture_reads_its_config() {
    let expect = [
        ("hf-llama3", Arch::Llama),
        ("hf-mistral", Arch::Mistral),
        ("hf-qwen2", Arch::Qwen2),
        ("hf-qwen3", Arch::Qwen3),
        ("hf-phi3", Arch::Phi3),
        ("hf-gemma2", Arch::Gemma2),
    ];
    for (name, arch) in expect {
        let text = std::fs::read_to_string(fixture(name).join("config.json")).unwrap();
        let c = DecoderConfig::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(c.arch, arch, "{name}");
        // Written back and read again, the config is the same.
        let again = DecoderConfig::from_json(&c.to_json(DType::F32)).unwrap();
        assert_eq!(again, c, "{name}: to_json round trip");
    }
    let read = |n: &str| {
        let t = std::fs::read_to_string(fixture(n).join("config.json")).unwrap();
        DecoderConfig::from_json(&serde_json::from_str(&t).unwrap()).unwrap()
    };
    assert_eq!(read("hf-mistral").window(0), Some(8));
    assert_eq!(read("hf-qwen2").window(0), None);
    assert_eq!(read("hf-qwen2").window(1), Some(8));
    assert_eq!(read("hf-gemma2").window(0), Some(8));
    assert_eq!(read("hf-gemma2").window(1), None);
    assert_eq!(read("hf-phi3").rope_dims(), 4);
    assert!(read("hf-qwen2").qkv_bias && !read("hf-qwen2").o_bias);
}

#[test]
fn whole_sequences_give_transformers_logits_in_f32_and_bf16() {
    for name in ARCHS {
        let w = want(name);
        let (b, l) = (w.ids.len(), w.ids[0].len());
        let x = Array::from_slice(&w.ids.concat(), &[b, l]).unwrap();
        let m = Decoder::from_pretrained(fixture(name), DType::F32).unwrap();
        let vocab = m.config.vocab_size;
        let got = f64s(&m.forward(&x).unwrap());
        let s = scale(&w.logits);
        let err = max_err(&got, &w.logits);
        assert!(err <= 1e-4 * s, "{name} f32: max error {err} of {s}");
        check_argmax(&got, &w.logits, vocab, 1e-4 * s, name);
        let half = Decoder::from_pretrained(fixture(name), DType::BF16).unwrap();
        let got = half.forward(&x).unwrap();
        assert_eq!(got.dtype(), DType::BF16);
        let err = max_err(&f64s(&got), &w.logits);
        assert!(err <= 0.05 * s, "{name} bf16: max error {err} of {s}");
    }
}

#[test]
fn greedy_decoding_through_the_cache_follows_transformers() {
    for name in ARCHS {
        let w = want(name);
        let m = Decoder::from_pretrained(fixture(name), DType::F32).unwrap();
        let vocab = m.config.vocab_size;
        let s = scale(&w.greedy_logits);
        let p = w.prompt.len();
        let mut cache = KvCache::new();
        let mut logits = m.forward_cached(&row(&w.prompt), Some(&mut cache)).unwrap();
        let got = f64s(&logits);
        let err = max_err(&got, &w.greedy_logits[..p * vocab]);
        assert!(err <= 1e-4 * s, "{name} prefill: max error {err} of {s}");
        let mut pointers: Option<Vec<usize>> = None;
        for (step, &tok) in w.greedy.iter().enumerate() {
            let pos = p + step;
            let last = f64s(&logits);
            let last = &last[last.len() - vocab..];
            let reference = &w.greedy_logits[(pos - 1) * vocab..pos * vocab];
            let err = max_err(last, reference);
            assert!(
                err <= 1e-4 * s,
                "{name} step {step}: max error {err} of {s}"
            );
            check_argmax(last, reference, vocab, 1e-4 * s, name);
            // Teacher-forced: transformers' token goes in, so one near-tie cannot derail
            // the comparison of every later step.
            logits = m.forward_cached(&row(&[tok]), Some(&mut cache)).unwrap();
            logits.eval().unwrap();
            // Every layer's cache stays in the buffers it had after the first token.
            let now: Vec<usize> = (0..m.config.num_hidden_layers)
                .flat_map(|li| {
                    let (k, v) = cache.buffers(li).unwrap();
                    [buffer_ptr(k), buffer_ptr(v)]
                })
                .collect();
            assert_eq!(
                &now,
                pointers.get_or_insert(now.clone()),
                "{name} step {step}: the cache was copied"
            );
        }
        assert_eq!(cache.len(), p + w.greedy.len());
    }
}

#[test]
fn joined_projections_give_transformers_logits() {
    for name in ARCHS {
        let w = want(name);
        let mut m = Decoder::from_pretrained(fixture(name), DType::F32).unwrap();
        m.fuse_projections().unwrap();
        // Phi-3 keeps them joined already; every other architecture now has them joined.
        assert_eq!(m.projections_fused(), m.config.arch != Arch::Phi3, "{name}");
        let names: Vec<String> = ingot_nn::ModuleExt::parameters(&m).into_keys().collect();
        assert!(
            names.iter().any(|n| n.ends_with("qkv_proj.weight")),
            "{name}"
        );
        assert!(
            !names.iter().any(|n| n.ends_with("q_proj.weight")),
            "{name}"
        );
        let vocab = m.config.vocab_size;
        // The whole sequence, then a few tokens through the cache.
        let (b, l) = (w.ids.len(), w.ids[0].len());
        let x = Array::from_slice(&w.ids.concat(), &[b, l]).unwrap();
        let got = f64s(&m.forward(&x).unwrap());
        let s = scale(&w.logits);
        let err = max_err(&got, &w.logits);
        assert!(err <= 1e-4 * s, "{name} joined: max error {err} of {s}");
        let p = w.prompt.len();
        let mut cache = KvCache::new();
        m.forward_cached(&row(&w.prompt), Some(&mut cache)).unwrap();
        let s = scale(&w.greedy_logits);
        for (step, &tok) in w.greedy.iter().take(4).enumerate() {
            let pos = p + step + 1;
            let got = f64s(&m.forward_cached(&row(&[tok]), Some(&mut cache)).unwrap());
            let err = max_err(&got, &w.greedy_logits[(pos - 1) * vocab..pos * vocab]);
            assert!(
                err <= 1e-4 * s,
                "{name} joined step {step}: max error {err} of {s}"
            );
        }
        // A joined Llama would write names its architecture's loader does not know.
        let dir = std::env::temp_dir().join(format!("ingot-joined-{name}-{}", std::process::id()));
        let saved = m.save_pretrained(&dir);
        if m.config.arch == Arch::Phi3 {
            saved.unwrap();
        } else {
            let e = saved.unwrap_err().to_string();
            assert!(
                e.contains("save_pretrained") && e.contains("fuse_projections"),
                "{e}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn chunks_through_the_cache_give_the_whole_sequence_logits() {
    // Blocks of 5 wrap the sliding windows of 8 mid-block.
    for name in ARCHS {
        let w = want(name);
        let m = Decoder::from_pretrained(fixture(name), DType::F32).unwrap();
        let seq: Vec<i32> = w.prompt.iter().chain(&w.greedy).copied().collect();
        let mut cache = KvCache::with_capacity(seq.len());
        let mut got = Vec::new();
        for chunk in seq[..seq.len() - 1].chunks(5) {
            got.extend(f64s(
                &m.forward_cached(&row(chunk), Some(&mut cache)).unwrap(),
            ));
        }
        let want_part = &w.greedy_logits[..got.len()];
        let s = scale(want_part);
        let err = max_err(&got, want_part);
        assert!(err <= 1e-4 * s, "{name} chunked: max error {err} of {s}");
    }
}

#[test]
fn bad_folders_name_the_problem() {
    let dir = std::env::temp_dir().join(format!("ingot-nn-hf-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = fixture("hf-qwen2");
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    let write = |c: &Value| {
        std::fs::write(dir.join("config.json"), c.to_string()).unwrap();
    };
    std::fs::copy(src.join("model.safetensors"), dir.join("model.safetensors")).unwrap();
    let err = |c: &Value| {
        write(c);
        Decoder::from_pretrained(&dir, DType::F32)
            .err()
            .expect("an error")
            .to_string()
    };
    // A config whose sizes disagree with the weights names the tensor and both shapes.
    let mut c = config.clone();
    c["intermediate_size"] = 48.into();
    let e = err(&c);
    assert!(
        e.contains("mlp.down_proj.weight") && e.contains("[32, 48]"),
        "{e}"
    );
    // Unknown architectures and rope types are refused by name.
    let mut c = config.clone();
    c["model_type"] = "mamba".into();
    assert!(err(&c).contains("\"mamba\""));
    let mut c = config.clone();
    c["rope_parameters"]["rope_type"] = "longrope".into();
    assert!(err(&c).contains("longrope"));
    let mut c = config.clone();
    c["num_key_value_heads"] = 3.into();
    assert!(err(&c).contains("3 key/value heads"));
    // Sizes no model has are refused before anything is built from them.
    for key in ["head_dim", "num_hidden_layers", "vocab_size"] {
        let mut c = config.clone();
        c[key] = (1u64 << 40).into();
        let e = err(&c);
        assert!(e.contains(key) && e.contains("largest supported"), "{e}");
    }
    // A missing weight is named.
    let mut c = config.clone();
    c["num_hidden_layers"] = 3.into();
    c["layer_types"] = serde_json::json!(["full_attention", "sliding_attention", "full_attention"]);
    let e = err(&c);
    assert!(e.contains("model.layers.2"), "{e}");
    // A sharded folder whose index names a file outside it.
    write(&config);
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        r#"{"weight_map": {"lm_head.weight": "../x.safetensors"}}"#,
    )
    .unwrap();
    let e = Decoder::from_pretrained(&dir, DType::F32)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("not a file name"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sharded_folders_load_like_one_file() {
    let dir = std::env::temp_dir().join(format!("ingot-nn-hf-shards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = fixture("hf-mistral");
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    let (tensors, _) = ingot::io::load_safetensors(src.join("model.safetensors")).unwrap();
    let mut map = serde_json::Map::new();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (i, (n, t)) in tensors.into_iter().enumerate() {
        let file = if i % 2 == 0 {
            "model-00001-of-00002.safetensors"
        } else {
            "model-00002-of-00002.safetensors"
        };
        map.insert(n.clone(), file.into());
        if i % 2 == 0 {
            a.push((n, t))
        } else {
            b.push((n, t))
        }
    }
    ingot::io::save_safetensors(
        dir.join("model-00001-of-00002.safetensors"),
        &a,
        &Default::default(),
    )
    .unwrap();
    ingot::io::save_safetensors(
        dir.join("model-00002-of-00002.safetensors"),
        &b,
        &Default::default(),
    )
    .unwrap();
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::json!({"metadata": {}, "weight_map": map}).to_string(),
    )
    .unwrap();
    let x = row(&[1, 2, 3, 4, 5]);
    let one = Decoder::from_pretrained(&src, DType::F32).unwrap();
    let two = Decoder::from_pretrained(&dir, DType::F32).unwrap();
    assert_eq!(
        f64s(&two.forward(&x).unwrap()),
        f64s(&one.forward(&x).unwrap())
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn left_padded_batches_give_each_rows_logits() {
    // Rows of 11 and 4 tokens (7 of padding), then 12 decoding steps past the windows.
    for name in ARCHS {
        let w = want(name);
        let m = Decoder::from_pretrained(fixture(name), DType::F32).unwrap();
        let vocab = m.config.vocab_size;
        let (a, b) = (&w.ids[0][..11], &w.ids[1][..4]);
        let pad = 11 - b.len();
        let mut grid: Vec<i32> = a.to_vec();
        grid.extend(std::iter::repeat_n(63, pad));
        grid.extend(b);
        let mut cache = KvCache::with_capacity(32);
        let got = f64s(
            &m.forward_padded(
                &Array::from_slice(&grid, &[2, 11]).unwrap(),
                &[0, pad],
                Some(&mut cache),
            )
            .unwrap(),
        );
        assert_eq!(cache.pads(), &[0, pad]);
        // Each row alone, through its own cache.
        let mut solo: Vec<(KvCache, Vec<f64>)> = [a, b]
            .iter()
            .map(|r| {
                let mut c = KvCache::new();
                let y = f64s(&m.forward_cached(&row(r), Some(&mut c)).unwrap());
                (c, y)
            })
            .collect();
        let s = scale(&solo[0].1);
        let err_a = max_err(&got[..11 * vocab], &solo[0].1);
        let err_b = max_err(&got[(11 + pad) * vocab..], &solo[1].1);
        assert!(
            err_a.max(err_b) <= 1e-4 * s,
            "{name} padded prefill: {err_a} {err_b} of {s}"
        );
        for step in 0..12 {
            let toks: [i32; 2] = [(step * 5 + 1) % 64, (step * 7 + 2) % 64];
            let y = f64s(
                &m.forward_cached(
                    &Array::from_slice(&toks, &[2, 1]).unwrap(),
                    Some(&mut cache),
                )
                .unwrap(),
            );
            for r in 0..2 {
                let (c, _) = &mut solo[r];
                let want_r = f64s(&m.forward_cached(&row(&[toks[r]]), Some(c)).unwrap());
                let err = max_err(&y[r * vocab..(r + 1) * vocab], &want_r);
                assert!(err <= 1e-4 * s, "{name} step {step} row {r}: {err} of {s}");
            }
        }
    }
}
