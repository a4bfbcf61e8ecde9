//! The BERT encoder against transformers and sentence-transformers: a tiny random
//! `BertModel` that transformers saved (scripts/hf/bert_fixture.py) gives its float64
//! hidden states for a padded batch with token types; all-MiniLM-L6-v2, when a local copy
//! is named by `INGOT_MINILM_DIR`, gives sentence-transformers' embeddings of the sentences
//! in fixtures/minilm-embeddings.json (scripts/hf/minilm_reference.py). Also padding
//! invariance, the loader's handling of prefixes and stray tensors, and errors.

use ingot::{Array, DType};
use ingot_nn::models::{Bert, BertActivation, BertConfig, Pooling};
use ingot_nn::module::ModuleExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Tests run from the package root under cargo and from the repository root elsewhere.
fn fixture(name: &str) -> PathBuf {
    [
        format!("tests/fixtures/{name}"),
        format!("crates/ingot-nn/tests/fixtures/{name}"),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .unwrap_or_else(|| panic!("the {name} fixture"))
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn ints(v: &Value) -> Vec<Vec<i64>> {
    serde_json::from_value(v.clone()).unwrap()
}

fn batch(rows: &[Vec<i64>]) -> Array {
    let flat: Vec<i64> = rows.concat();
    Array::from_slice(&flat, &[rows.len(), rows[0].len()]).unwrap()
}

fn f64s(a: &Array) -> Vec<f64> {
    ingot::astype(a, DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ingot-nn-bert-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Tiny {
    ids: Vec<Vec<i64>>,
    mask: Vec<Vec<i64>>,
    types: Vec<Vec<i64>>,
    hidden: Vec<f64>,
    pooled: Vec<f64>,
    width: usize,
}

fn tiny() -> Tiny {
    let v = read_json(&fixture("hf-bert").join("hidden.json"));
    Tiny {
        ids: ints(&v["ids"]),
        mask: ints(&v["attention_mask"]),
        types: ints(&v["token_type_ids"]),
        hidden: serde_json::from_value(v["last_hidden_state"].clone()).unwrap(),
        pooled: serde_json::from_value(v["pooler_output"].clone()).unwrap(),
        width: v["shape"][2].as_u64().unwrap() as usize,
    }
}

/// The largest difference at kept positions and the largest reference magnitude there.
fn masked_err(got: &[f64], want: &[f64], mask: &[Vec<i64>], width: usize) -> (f64, f64) {
    let keep: Vec<i64> = mask.concat();
    assert_eq!(got.len(), keep.len() * width);
    let (mut err, mut scale) = (0.0f64, 0.0f64);
    for (p, &k) in keep.iter().enumerate() {
        if k == 0 {
            continue;
        }
        for i in p * width..(p + 1) * width {
            err = err.max((got[i] - want[i]).abs());
            scale = scale.max(want[i].abs());
        }
    }
    (err, scale)
}

fn tiny_hidden(dtype: DType) -> (Vec<f64>, Bert) {
    let t = tiny();
    let m = Bert::from_pretrained(fixture("hf-bert"), dtype).unwrap();
    let h = m
        .forward(
            &batch(&t.ids),
            Some(&batch(&t.mask)),
            Some(&batch(&t.types)),
        )
        .unwrap();
    assert_eq!(h.dtype(), dtype);
    assert_eq!(h.shape(), [2, 12, t.width]);
    (f64s(&h), m)
}

#[test]
fn tiny_bert_matches_transformers_in_f32_and_f64() {
    let t = tiny();
    for (dtype, tol) in [(DType::F32, 1e-4), (DType::F64, 1e-9)] {
        let (got, m) = tiny_hidden(dtype);
        let (err, scale) = masked_err(&got, &t.hidden, &t.mask, t.width);
        println!("{dtype}: max error {err:.3e} of {scale:.3}");
        assert!(err <= tol * scale, "{dtype}: max error {err} of {scale}");
        // The pooler reads position 0, which both rows keep.
        let h = Array::from_slice(&got, &[2, 12, t.width]).unwrap();
        let h = ingot::astype(&h, dtype).unwrap();
        let p = f64s(&m.pooler_output(&h).unwrap());
        let perr = p
            .iter()
            .zip(&t.pooled)
            .fold(0.0f64, |a, (g, w)| a.max((g - w).abs()));
        assert!(perr <= tol * 10.0, "{dtype} pooler: max error {perr}");
    }
}

#[test]
fn tiny_bert_in_bf16_is_close() {
    let t = tiny();
    let (got, _) = tiny_hidden(DType::BF16);
    let (err, scale) = masked_err(&got, &t.hidden, &t.mask, t.width);
    println!("bf16: max error {err:.3e} of {scale:.3}");
    assert!(err <= 0.05 * scale, "bf16: max error {err} of {scale}");
}

#[test]
fn parameter_names_are_the_checkpoint_names() {
    let (file, _) =
        ingot::io::load_safetensors(fixture("hf-bert").join("model.safetensors")).unwrap();
    let mut want: Vec<String> = file.into_keys().collect();
    want.sort();
    let c = BertConfig::from_json(&read_json(&fixture("hf-bert").join("config.json"))).unwrap();
    assert_eq!(c.hidden_act, BertActivation::Gelu);
    let m = Bert::random(&c, DType::F32).unwrap();
    let got: Vec<String> = m.parameters().into_keys().collect();
    assert_eq!(got, want);
}

#[test]
fn padding_does_not_change_embeddings() {
    let t = tiny();
    let m = Bert::from_pretrained(fixture("hf-bert"), DType::F32).unwrap();
    let ids = batch(&t.ids);
    let mask = batch(&t.mask);
    // Row 1 has 7 real tokens; alone it needs no mask.
    let alone = batch(&[t.ids[1][..7].to_vec()]);
    for pooling in [Pooling::Mean, Pooling::Cls, Pooling::Max] {
        let both = f64s(&m.embed(&ids, Some(&mask), pooling, true).unwrap());
        let one = f64s(&m.embed(&alone, None, pooling, true).unwrap());
        let err = one
            .iter()
            .zip(&both[t.width..])
            .fold(0.0f64, |a, (x, y)| a.max((x - y).abs()));
        assert!(err <= 1e-5, "{pooling:?}: alone vs padded differ by {err}");
        let norm: f64 = one.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{pooling:?}: norm {norm}");
    }
    // The hidden states of kept positions do not see the padding either (token types 0).
    let h_both = f64s(&m.forward(&ids, Some(&mask), None).unwrap());
    let h_one = f64s(&m.forward(&alone, None, None).unwrap());
    let row1 = &h_both[12 * t.width..(12 + 7) * t.width];
    let err = h_one
        .iter()
        .zip(row1)
        .fold(0.0f64, |a, (x, y)| a.max((x - y).abs()));
    assert!(err <= 1e-5, "hidden states alone vs padded differ by {err}");
    // A bool mask is the same as an integer one.
    let bmask = ingot::astype(&mask, DType::Bool).unwrap();
    let a = f64s(&m.embed(&ids, Some(&bmask), Pooling::Mean, false).unwrap());
    let b = f64s(&m.embed(&ids, Some(&mask), Pooling::Mean, false).unwrap());
    assert_eq!(a, b);
}

#[test]
fn pooling_matches_its_definition() {
    // hidden (1, 3, 2) with the last position padded.
    let h = Array::from_slice(&[1.0f32, -2.0, 3.0, 4.0, 100.0, 100.0], &[1, 3, 2]).unwrap();
    let mask = Array::from_slice(&[1i64, 1, 0], &[1, 3]).unwrap();
    let get = |p: Pooling| f64s(&p.apply(&h, Some(&mask)).unwrap());
    assert_eq!(get(Pooling::Mean), [2.0, 1.0]);
    assert_eq!(get(Pooling::Max), [3.0, 4.0]);
    assert_eq!(get(Pooling::Cls), [1.0, -2.0]);
    // Left padding: CLS is the first kept token, as in sentence-transformers.
    let left = Array::from_slice(&[0i64, 1, 1], &[1, 3]).unwrap();
    assert_eq!(
        f64s(&Pooling::Cls.apply(&h, Some(&left)).unwrap()),
        [3.0, 4.0]
    );
    let e = Pooling::Mean
        .apply(&h, Some(&Array::from_slice(&[1i64, 1], &[1, 2]).unwrap()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("Pooling") && e.contains("[1, 2]"), "{e}");
}

#[test]
fn loader_strips_prefixes_and_drops_stray_tensors() {
    let src = fixture("hf-bert");
    let reference = Bert::from_pretrained(&src, DType::F32).unwrap();
    assert!(reference.has_pooler());
    let (file, _) = ingot::io::load_safetensors(src.join("model.safetensors")).unwrap();
    let file: BTreeMap<String, Array> = file.into_iter().collect();
    let dir = tmp("load");
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    let save = |t: &BTreeMap<String, Array>| {
        ingot::io::save_safetensors(
            dir.join("model.safetensors"),
            t.iter().map(|(n, a)| (n.clone(), a)),
            &Default::default(),
        )
        .unwrap()
    };
    let err = || {
        Bert::from_pretrained(&dir, DType::F32)
            .err()
            .expect("an error")
            .to_string()
    };
    let t = tiny();
    let (ids, mask) = (batch(&t.ids), batch(&t.mask));
    let want = f64s(&reference.forward(&ids, Some(&mask), None).unwrap());

    // A BertForMaskedLM-style file: "bert." names, a head and the position_ids buffer.
    let mut prefixed: BTreeMap<String, Array> = file
        .iter()
        .filter(|(n, _)| !n.starts_with("pooler."))
        .map(|(n, a)| (format!("bert.{n}"), a.clone()))
        .collect();
    prefixed.insert(
        "bert.embeddings.position_ids".into(),
        ingot::arange(0.0, 32.0, 1.0, DType::I64).unwrap(),
    );
    prefixed.insert(
        "cls.predictions.bias".into(),
        ingot::zeros(&[64], DType::F32).unwrap(),
    );
    save(&prefixed);
    let m = Bert::from_pretrained(&dir, DType::F32).unwrap();
    assert!(!m.has_pooler());
    assert_eq!(f64s(&m.forward(&ids, Some(&mask), None).unwrap()), want);
    let h = m.forward(&ids, None, None).unwrap();
    let e = m.pooler_output(&h).unwrap_err().to_string();
    assert!(e.contains("pooler"), "{e}");

    // A missing tensor is named.
    let mut missing = file.clone();
    missing.remove("encoder.layer.1.intermediate.dense.bias");
    save(&missing);
    let e = err();
    assert!(e.contains("encoder.layer.1.intermediate.dense.bias"), "{e}");

    // A wrong shape names the tensor and both shapes.
    let mut wrong = file.clone();
    wrong.insert(
        "encoder.layer.0.output.dense.weight".into(),
        ingot::zeros(&[32, 48], DType::F32).unwrap(),
    );
    save(&wrong);
    let e = err();
    assert!(
        e.contains("encoder.layer.0.output.dense.weight")
            && e.contains("[32, 48]")
            && e.contains("[32, 64]"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_configs_are_named() {
    let base = read_json(&fixture("hf-bert").join("config.json"));
    let err = |edit: &dyn Fn(&mut Value)| {
        let mut c = base.clone();
        edit(&mut c);
        BertConfig::from_json(&c).unwrap_err().to_string()
    };
    let e = err(&|c| c["position_embedding_type"] = json!("relative_key"));
    assert!(
        e.contains("BertConfig") && e.contains("relative_key"),
        "{e}"
    );
    let e = err(&|c| c["hidden_act"] = json!("swish"));
    assert!(e.contains("BertConfig") && e.contains("swish"), "{e}");
    let e = err(&|c| c["num_attention_heads"] = json!(5));
    assert!(
        e.contains("hidden_size 32") && e.contains("num_attention_heads 5"),
        "{e}"
    );
    let e = err(&|c| c["type_vocab_size"] = json!(0));
    assert!(e.contains("type_vocab_size"), "{e}");
    let e = err(&|c| c["num_hidden_layers"] = json!(1u64 << 40));
    assert!(
        e.contains("num_hidden_layers") && e.contains("largest supported"),
        "{e}"
    );
    let e = err(&|c| {
        c.as_object_mut().unwrap().remove("vocab_size");
    });
    assert!(e.contains("vocab_size"), "{e}");
    let e = err(&|c| c["intermediate_size"] = json!(-3));
    assert!(e.contains("intermediate_size"), "{e}");
    // Absent or "absolute" positions, and the tanh GELUs, are accepted.
    let ok = |edit: &dyn Fn(&mut Value)| {
        let mut c = base.clone();
        edit(&mut c);
        BertConfig::from_json(&c).unwrap()
    };
    ok(&|c| {
        c.as_object_mut().unwrap().remove("position_embedding_type");
    });
    ok(&|c| c["position_embedding_type"] = json!("absolute"));
    assert_eq!(
        ok(&|c| c["hidden_act"] = json!("gelu_new")).hidden_act,
        BertActivation::GeluTanh
    );
    assert_eq!(
        ok(&|c| c["hidden_act"] = json!("relu")).hidden_act,
        BertActivation::Relu
    );
}

#[test]
fn bad_inputs_are_errors() {
    let m = Bert::from_pretrained(fixture("hf-bert"), DType::F32).unwrap();
    let ids = |v: &[i64], shape: &[usize]| Array::from_slice(v, shape).unwrap();
    let fwd = |i: &Array, mask: Option<&Array>, types: Option<&Array>| {
        m.forward(i, mask, types).unwrap_err().to_string()
    };
    let good = ids(&[2, 5, 9, 3], &[1, 4]);
    // Float ids, rank 1 ids.
    let e = fwd(&ingot::astype(&good, DType::F32).unwrap(), None, None);
    assert!(
        e.contains("Bert::forward") && e.contains("[1, 4]") && e.contains("float32"),
        "{e}"
    );
    let e = fwd(&ids(&[2, 5], &[2]), None, None);
    assert!(e.contains("Bert::forward") && e.contains("[2]"), "{e}");
    // Ids outside the vocabulary.
    let e = fwd(&ids(&[2, 64, 9, 3], &[1, 4]), None, None);
    assert!(e.contains("ids[0, 1] = 64") && e.contains("0..64"), "{e}");
    let e = fwd(&ids(&[2, 5, -1, 3], &[1, 4]), None, None);
    assert!(e.contains("ids[0, 2] = -1"), "{e}");
    // Longer than max_position_embeddings (32).
    let e = fwd(&ids(&[1; 33], &[1, 33]), None, None);
    assert!(
        e.contains("33") && e.contains("max_position_embeddings"),
        "{e}"
    );
    // Mask and token types of the wrong shape, token types outside 0..2.
    let e = fwd(&good, Some(&ids(&[1, 1, 1], &[1, 3])), None);
    assert!(e.contains("attention_mask") && e.contains("[1, 3]"), "{e}");
    let e = fwd(&good, None, Some(&ids(&[0, 0], &[1, 2])));
    assert!(e.contains("token_type_ids") && e.contains("[1, 2]"), "{e}");
    let e = fwd(&good, None, Some(&ids(&[0, 2, 0, 0], &[1, 4])));
    assert!(e.contains("token_type_ids[0, 1] = 2"), "{e}");
    let e = m
        .embed(&good, Some(&ids(&[1, 1], &[2, 1])), Pooling::Mean, true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("attention_mask") && e.contains("[2, 1]"), "{e}");
}

#[test]
fn sentence_transformers_folders_give_pooling_and_normalization() {
    let dir = tmp("st");
    let read = || Pooling::from_sentence_transformers(&dir);
    // Nothing there: mean, normalized.
    assert_eq!(read().unwrap(), (Pooling::Mean, true));
    let modules = |kinds: &[&str]| {
        let v: Vec<Value> = kinds
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let path = match *k {
                    "Pooling" => "1_Pooling".to_string(),
                    "Transformer" => String::new(),
                    k => format!("{i}_{k}"),
                };
                json!({"idx": i, "name": i.to_string(), "path": path,
                       "type": format!("sentence_transformers.models.{k}")})
            })
            .collect();
        std::fs::write(dir.join("modules.json"), Value::Array(v).to_string()).unwrap();
    };
    let pooling = |v: Value| {
        std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
        std::fs::write(dir.join("1_Pooling/config.json"), v.to_string()).unwrap();
    };
    modules(&["Transformer", "Pooling", "Normalize"]);
    pooling(
        json!({"word_embedding_dimension": 32, "pooling_mode_cls_token": true,
                   "pooling_mode_mean_tokens": false}),
    );
    assert_eq!(read().unwrap(), (Pooling::Cls, true));
    modules(&["Transformer", "Pooling"]);
    pooling(json!({"embedding_dimension": 32, "pooling_mode": "max"}));
    assert_eq!(read().unwrap(), (Pooling::Max, false));
    pooling(json!({"pooling_mode_cls_token": false, "pooling_mode_mean_tokens": false}));
    assert_eq!(read().unwrap(), (Pooling::Mean, false));
    pooling(json!({"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true}));
    let e = read().unwrap_err().to_string();
    assert!(e.contains("combined"), "{e}");
    pooling(json!({"pooling_mode": "weightedmean"}));
    let e = read().unwrap_err().to_string();
    assert!(e.contains("weightedmean"), "{e}");
    modules(&["Transformer", "Pooling", "Dense", "Normalize"]);
    let e = read().unwrap_err().to_string();
    assert!(e.contains("sentence_transformers.models.Dense"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The local all-MiniLM-L6-v2 folder, if `INGOT_MINILM_DIR` names one.
fn minilm_dir() -> Option<PathBuf> {
    let d = PathBuf::from(std::env::var_os("INGOT_MINILM_DIR")?);
    d.join("model.safetensors").exists().then_some(d)
}

#[test]
fn all_minilm_matches_sentence_transformers() {
    let Some(dir) = minilm_dir() else {
        println!("skipped: INGOT_MINILM_DIR does not name an all-MiniLM-L6-v2 folder");
        return;
    };
    let want = read_json(&fixture("minilm-embeddings.json"));
    let sentences: Vec<String> = serde_json::from_value(want["sentences"].clone()).unwrap();
    let want_ids = ints(&want["ids"]);
    let want_mask = ints(&want["attention_mask"]);
    let want_emb: Vec<Vec<f64>> = serde_json::from_value(want["embeddings"].clone()).unwrap();

    // sentence-transformers pads to the batch's longest and truncates at max_seq_length,
    // whatever tokenizer.json says.
    let mut tok = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    let mut pad = tok.get_padding().cloned().unwrap_or_default();
    pad.strategy = tokenizers::PaddingStrategy::BatchLongest;
    tok.with_padding(Some(pad));
    let max_len = want["max_seq_length"].as_u64().unwrap() as usize;
    tok.with_truncation(Some(tokenizers::TruncationParams {
        max_length: max_len,
        ..Default::default()
    }))
    .unwrap();
    let enc = tok
        .encode_batch(sentences.iter().map(|s| s.as_str()).collect(), true)
        .unwrap();
    let ids: Vec<Vec<i64>> = enc
        .iter()
        .map(|e| e.get_ids().iter().map(|&i| i as i64).collect())
        .collect();
    let mask: Vec<Vec<i64>> = enc
        .iter()
        .map(|e| e.get_attention_mask().iter().map(|&i| i as i64).collect())
        .collect();
    assert_eq!(
        ids, want_ids,
        "token ids differ from the Python tokenizer's"
    );
    assert_eq!(mask, want_mask);

    let (pooling, normalize) = Pooling::from_sentence_transformers(&dir).unwrap();
    assert_eq!((pooling, normalize), (Pooling::Mean, true));
    let m = Bert::from_pretrained(&dir, DType::F32).unwrap();
    let emb = m
        .embed(&batch(&ids), Some(&batch(&mask)), pooling, normalize)
        .unwrap();
    let h = m.config.hidden_size;
    assert_eq!(emb.shape(), [sentences.len(), h]);
    let got = f64s(&emb);
    let mut min_cos = f64::INFINITY;
    for (i, w) in want_emb.iter().enumerate() {
        let g = &got[i * h..(i + 1) * h];
        let dot: f64 = g.iter().zip(w).map(|(a, b)| a * b).sum();
        let n = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let cos = dot / (n(g) * n(w));
        let maxdiff = g
            .iter()
            .zip(w)
            .fold(0.0f64, |a, (x, y)| a.max((x - y).abs()));
        println!("sentence {i}: cosine {cos:.9}, max |diff| {maxdiff:.2e}");
        assert!(
            cos >= 0.9999,
            "sentence {i} {:?}: cosine {cos}",
            sentences[i]
        );
        min_cos = min_cos.min(cos);
    }
    println!(
        "all-MiniLM-L6-v2 f32: min cosine vs sentence-transformers {min_cos:.12} (1 - cos {:.1e})",
        1.0 - min_cos
    );

    // bf16 weights and activations stay close in direction.
    let m = Bert::from_pretrained(&dir, DType::BF16).unwrap();
    let got = f64s(
        &m.embed(&batch(&ids), Some(&batch(&mask)), pooling, normalize)
            .unwrap(),
    );
    let mut min_cos = f64::INFINITY;
    for (i, w) in want_emb.iter().enumerate() {
        let g = &got[i * h..(i + 1) * h];
        let dot: f64 = g.iter().zip(w).map(|(a, b)| a * b).sum();
        let n = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        min_cos = min_cos.min(dot / (n(g) * n(w)));
    }
    println!("all-MiniLM-L6-v2 bf16: minimum cosine {min_cos:.6}");
    assert!(min_cos >= 0.99, "bf16: minimum cosine {min_cos}");
}
