//! Exported packages: export then import equals the original function on fresh random inputs
//! (several traces, non-contiguous inputs, many op kinds), weights shared by two functions are
//! stored once, metadata round-trips, and corrupted or tampered packages are refused with an
//! error, never a panic.

mod common;
use common::*;
use ingot::{Array, DType, Exporter, Result, SliceArg};
use serde_json::{json, Value};

/// Constants of the many-op function, made once from a fixed seed.
struct Weights {
    w1: Array,
    b1: Array,
    kernel: Array,
    idx: Array,
}

fn weights() -> Weights {
    let mut rng = Rng::new(7);
    Weights {
        w1: rand_array(&mut rng, &[8, 16], DType::F32).0,
        b1: rand_array(&mut rng, &[16], DType::F32).0,
        kernel: rand_array(&mut rng, &[4, 3, 3, 3], DType::F32).0,
        idx: Array::from_slice(&[3i64, 0, 5, 15], &[4]).unwrap(),
    }
}

/// A function using many op kinds: matmul, elementwise, reductions, softmax, views,
/// indexing, sorting, scans, shape ops and a convolution with pooling.
fn many_ops(w: &Weights, xs: &[Array]) -> Result<Vec<Array>> {
    let (x, img) = (&xs[0], &xs[1]);
    let h = ingot::add(ingot::matmul(x, &w.w1)?, &w.b1)?;
    let h = ingot::maximum(&h, 0.1)?;
    let p = ingot::softmax(&h, -1)?;
    let red = ingot::add(
        ingot::sum(&h, Some(&[1]), false)?,
        ingot::max(&p, Some(&[1]), false)?,
    )?;
    let t = ingot::transpose(&h, None)?;
    let sl = ingot::slice(&t, &[SliceArg::new(Some(1), None, 3), SliceArg::ALL])?;
    let taken = ingot::take(&h, &w.idx, Some(1))?;
    let sorted = ingot::sort(&taken, Some(1))?;
    let cs = ingot::cumsum(&sorted, Some(1), false, true)?;
    let am = ingot::argmax(&h, Some(1), false)?;
    let cat = ingot::concatenate(&[cs.clone(), ingot::tanh(&taken)?], Some(1))?;
    let padded = ingot::pad(&cat, &[(0, 0), (1, 2)], ingot::op::PadMode::Constant, 0.5)?;
    let sel = ingot::where_(ingot::greater(&padded, 0.7)?, &padded, ingot::exp(&padded)?)?;
    let conv = ingot::conv2d(img, &w.kernel, &[1, 1], 1usize, &[1, 1], 1)?;
    let pooled = ingot::max_pool2d(&ingot::sigmoid(&conv)?, &[2, 2], None, &[0, 0])?;
    let rows = (pooled.shape()[0] * 9) as isize;
    let lsm = ingot::log_softmax(&ingot::reshape(&pooled, &[rows, 4])?, 0)?;
    Ok(vec![p, red, sl, am, sel, lsm])
}

fn many_ops_fn(xs: &[Array]) -> Result<Vec<Array>> {
    many_ops(&weights(), xs)
}

fn assert_same(got: &[Array], want: &[Array], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: number of outputs");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.shape(), w.shape(), "{what}: output {k} shape");
        assert_eq!(g.dtype(), w.dtype(), "{what}: output {k} dtype");
        assert_close(
            &g.to_f64_vec().unwrap(),
            &w.to_f64_vec().unwrap(),
            1e-5,
            1e-6,
            &format!("{what}: output {k}"),
        );
    }
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ingot-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn inputs_for(rng: &mut Rng, b: usize, contiguous: bool) -> Vec<Array> {
    let xv = rng.values(b * 8, DType::F32);
    let iv = rng.values(b * 6 * 6 * 3, DType::F32);
    if contiguous {
        vec![
            array_from_f64(&xv, &[b, 8], DType::F32),
            array_from_f64(&iv, &[b, 6, 6, 3], DType::F32),
        ]
    } else {
        vec![
            transposed(&xv, &[b, 8], DType::F32),
            noncontiguous(&iv, &[b, 6, 6, 3], DType::F32),
        ]
    }
}

#[test]
fn export_import_equals_original_for_several_traces() {
    let mut rng = Rng::new(1);
    let batches = [2usize, 5, 0];
    let examples: Vec<Vec<Array>> = batches
        .iter()
        .map(|&b| inputs_for(&mut rng, b, true))
        .collect();
    let path = tmp("many.ingot");
    let size = Exporter::new()
        .function_named(
            "main",
            many_ops_fn,
            &examples,
            &["x", "image"],
            &["probs", "red", "slice", "argmax", "select", "logsoftmax"],
        )
        .unwrap()
        .write(&path)
        .unwrap();
    assert_eq!(size, std::fs::metadata(&path).unwrap().len());
    let pkg = ingot::import(&path).unwrap();
    assert_eq!(pkg.functions(), vec!["main"]);
    let sigs = pkg.signature("main").unwrap();
    assert_eq!(sigs.len(), 3);
    for (s, &b) in sigs.iter().zip(&batches) {
        assert_eq!(s.inputs[0].name, "x");
        assert_eq!(s.inputs[0].shape, vec![b, 8]);
        assert_eq!(s.inputs[1].shape, vec![b, 6, 6, 3]);
        assert_eq!(s.outputs[3].name, "argmax");
        assert_eq!(s.outputs[3].dtype, DType::I64);
    }
    // Fresh inputs, contiguous and not, for every traced shape.
    for &b in &batches {
        for contiguous in [true, false] {
            let xs = inputs_for(&mut rng, b, contiguous);
            let want = many_ops_fn(&xs).unwrap();
            let got = pkg.call("main", &xs).unwrap();
            assert_same(&got, &want, &format!("batch {b}, contiguous {contiguous}"));
        }
    }
    // The same from bytes (weights copied rather than mapped).
    let bytes = std::fs::read(&path).unwrap();
    let pkg2 = ingot::import_bytes(&bytes).unwrap();
    let xs = inputs_for(&mut rng, 5, false);
    assert_same(
        &pkg2.call("main", &xs).unwrap(),
        &many_ops_fn(&xs).unwrap(),
        "import_bytes",
    );
}

const N: usize = 1000;

fn shared_w() -> Array {
    let mut rng = Rng::new(99);
    rand_array(&mut rng, &[N, N], DType::F32).0
}

fn project(w: &Array, xs: &[Array]) -> Result<Vec<Array>> {
    Ok(vec![ingot::matmul(&xs[0], w)?])
}

fn weighted_sum(w: &Array, xs: &[Array]) -> Result<Vec<Array>> {
    Ok(vec![ingot::sum(
        &ingot::multiply(w, &xs[0])?,
        Some(&[0]),
        false,
    )?])
}

#[test]
fn two_functions_share_one_stored_weight() {
    let w = shared_w();
    let mut rng = Rng::new(2);
    let ex1 = vec![
        vec![rand_array(&mut rng, &[2, N], DType::F32).0],
        vec![rand_array(&mut rng, &[3, N], DType::F32).0],
    ];
    let ex2 = vec![vec![rand_array(&mut rng, &[N], DType::F32).0]];
    let wf = w.clone();
    let wg = w.clone();
    let path = tmp("shared.ingot");
    let size = Exporter::new()
        .function("project", move |x| project(&wf, x), &ex1)
        .unwrap()
        .function("weighted_sum", move |x| weighted_sum(&wg, x), &ex2)
        .unwrap()
        .write(&path)
        .unwrap();
    let wbytes = (N * N * 4) as u64;
    // Three traces use the weight; it is stored once: one weight plus a small manifest.
    assert!(size < 2 * wbytes, "size {size} holds the weight twice");
    assert!(
        size >= wbytes && size - wbytes < 16_384,
        "size {size} vs weight {wbytes}"
    );
    let pkg = ingot::import(&path).unwrap();
    assert_eq!(pkg.functions(), vec!["project", "weighted_sum"]);
    for b in [2usize, 3] {
        let (x, _) = rand_array(&mut rng, &[b, N], DType::F32);
        let got = pkg.call("project", std::slice::from_ref(&x)).unwrap();
        assert_same(&got, &project(&w, &[x]).unwrap(), "project");
    }
    let (_, vals) = rand_array(&mut rng, &[N], DType::F32);
    let v = noncontiguous(&vals, &[N], DType::F32);
    let got = pkg.call("weighted_sum", std::slice::from_ref(&v)).unwrap();
    assert_same(&got, &weighted_sum(&w, &[v]).unwrap(), "weighted_sum");
}

fn double(xs: &[Array]) -> Result<Vec<Array>> {
    Ok(vec![ingot::multiply(&xs[0], 2.0)?])
}

#[test]
fn metadata_round_trip_and_untraced_shapes() {
    let mut rng = Rng::new(3);
    let (x, _) = rand_array(&mut rng, &[2, 3], DType::F32);
    let bytes = Exporter::new()
        .function("double", double, &[vec![x.clone()]])
        .unwrap()
        .metadata("author", "ingot tests")
        .metadata("license", "MIT")
        .to_bytes()
        .unwrap();
    let pkg = ingot::import_bytes(&bytes).unwrap();
    assert_eq!(pkg.metadata().get("author").unwrap(), "ingot tests");
    assert_eq!(pkg.metadata().get("license").unwrap(), "MIT");
    assert_eq!(pkg.metadata().len(), 2);
    assert_eq!(pkg.ingot_version(), env!("CARGO_PKG_VERSION"));
    let (y, yv) = rand_array(&mut rng, &[2, 3], DType::F32);
    let got = pkg.call("double", &[y]).unwrap()[0].to_f64_vec().unwrap();
    let want: Vec<f64> = yv.iter().map(|v| v * 2.0).collect();
    assert_close(&got, &want, 0.0, 0.0, "double");
    let (z, _) = rand_array(&mut rng, &[4, 3], DType::F32);
    let e = pkg.call("double", &[z]).unwrap_err().to_string();
    assert!(e.contains("not traced for inputs ((4, 3) float32)"), "{e}");
    assert!(e.contains("input0: (2, 3) float32"), "{e}");
    let e = pkg.call("triple", &[x]).unwrap_err().to_string();
    assert!(
        e.contains("no function 'triple'") && e.contains("double"),
        "{e}"
    );
}

#[test]
fn export_path_function_and_custom_ops_pass_through() {
    // `checkpoint` leaves an Op::Custom node in the trace: export drops it.
    fn f(xs: &[Array]) -> Result<Vec<Array>> {
        let g = ingot::checkpoint(|a: &[Array]| Ok(vec![ingot::sin(&a[0])?]));
        let y = g(&[ingot::exp(&xs[0])?])?;
        Ok(vec![ingot::add(&y[0], 1.0)?])
    }
    let mut rng = Rng::new(4);
    let (x, _) = rand_array(&mut rng, &[3, 4], DType::F64);
    let path = tmp("custom.ingot");
    ingot::export(&path, f, std::slice::from_ref(&x)).unwrap();
    let pkg = ingot::import(&path).unwrap();
    let (y, _) = rand_array(&mut rng, &[3, 4], DType::F64);
    assert_same(
        &pkg.call("main", std::slice::from_ref(&y)).unwrap(),
        &f(&[y]).unwrap(),
        "checkpointed",
    );
}

// ---- corruption ---------------------------------------------------------------------------

/// A small package whose trace has a reduction, a transpose, elementwise ops and a weight.
fn small_package() -> Vec<u8> {
    fn f(xs: &[Array]) -> Result<Vec<Array>> {
        let w = Array::from_slice(&[0.5f32, -1.0, 2.0, 0.25, 1.5, -0.75], &[3, 2]).unwrap();
        let h = ingot::matmul(&xs[0], &w)?;
        let t = ingot::transpose(&ingot::tanh(&h)?, None)?;
        Ok(vec![ingot::sum(&t, Some(&[1]), true)?, ingot::exp(&h)?])
    }
    let mut rng = Rng::new(5);
    let (x, _) = rand_array(&mut rng, &[4, 3], DType::F32);
    Exporter::new()
        .function("f", f, &[vec![x]])
        .unwrap()
        .to_bytes()
        .unwrap()
}

/// (manifest JSON, weights section) of a package.
fn split(p: &[u8]) -> (Value, Vec<u8>) {
    let m = u64::from_le_bytes(p[16..24].try_into().unwrap()) as usize;
    let w = u64::from_le_bytes(p[24..32].try_into().unwrap()) as usize;
    let manifest = serde_json::from_slice(&p[32..32 + m]).unwrap();
    (manifest, p[p.len() - w..].to_vec())
}

/// A package with this manifest and weights section, lengths and padding right.
fn join(manifest: &Value, weights: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(manifest).unwrap();
    let mut out = b"INGOTPKG".to_vec();
    out.extend(1u32.to_le_bytes());
    out.extend(0u32.to_le_bytes());
    out.extend((json.len() as u64).to_le_bytes());
    out.extend((weights.len() as u64).to_le_bytes());
    out.extend(&json);
    while out.len() % 64 != 0 {
        out.push(0);
    }
    out.extend(weights);
    out
}

fn import_err(bytes: &[u8]) -> String {
    match ingot::import_bytes(bytes) {
        Ok(_) => panic!("a corrupted package was accepted"),
        Err(e) => e.to_string(),
    }
}

/// The index of the first app whose op is the given variant.
fn app_with(m: &Value, variant: &str) -> usize {
    m["functions"][0]["traces"][0]["apps"]
        .as_array()
        .unwrap()
        .iter()
        .position(|a| a["op"].get(variant).is_some() || a["op"] == json!(variant))
        .unwrap_or_else(|| panic!("no {variant} app in {m}"))
}

fn edit_app(p: &[u8], variant: &str, f: impl Fn(&mut Value)) -> Vec<u8> {
    let (mut m, w) = split(p);
    let k = app_with(&m, variant);
    f(&mut m["functions"][0]["traces"][0]["apps"][k]);
    join(&m, &w)
}

#[test]
fn split_and_join_keep_a_package_valid() {
    let p = small_package();
    let (m, w) = split(&p);
    let q = join(&m, &w);
    assert_eq!(q.len(), p.len());
    let mut rng = Rng::new(9);
    let (x, _) = rand_array(&mut rng, &[4, 3], DType::F32);
    let a = ingot::import_bytes(&p)
        .unwrap()
        .call("f", std::slice::from_ref(&x))
        .unwrap();
    let b = ingot::import_bytes(&q).unwrap().call("f", &[x]).unwrap();
    assert_same(&b, &a, "rejoined package");
}

#[test]
fn corrupted_packages_are_refused_with_clear_errors() {
    let p = small_package();
    // Header fields.
    let mut v = p.clone();
    v[8..12].copy_from_slice(&2u32.to_le_bytes());
    assert!(import_err(&v).contains("format version 2 is not supported"));
    let mut v = p.clone();
    v[0] = b'X';
    assert!(import_err(&v).contains("bad magic"));
    let mut v = p.clone();
    v[16..24].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
    assert!(import_err(&v).contains("runs past the end"));
    let mut v = p.clone();
    v[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(import_err(&v).contains("does not end at the end"));
    assert!(import_err(&p[..p.len() - 1]).contains("truncated"));
    assert!(import_err(&p[..20]).contains("shorter than the 32-byte header"));

    // Weights table: offsets past the end of the data.
    let (m, w) = split(&p);
    let n = u64::from_le_bytes(w[..8].try_into().unwrap()) as usize;
    let mut header: Value = serde_json::from_slice(&w[8..8 + n]).unwrap();
    let key = header
        .as_object()
        .unwrap()
        .keys()
        .find(|k| *k != "__metadata__")
        .unwrap()
        .clone();
    header[&key]["data_offsets"] = json!([0, 1u64 << 50]);
    let mut text = serde_json::to_vec(&header).unwrap();
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut w2 = (text.len() as u64).to_le_bytes().to_vec();
    w2.extend(&text);
    w2.extend(&w[8 + n..]);
    assert!(import_err(&join(&m, &w2)).contains("are not inside"));

    // Ops.
    let e = import_err(&edit_app(&p, "Reduce", |a| {
        a["op"]["Reduce"]["axes"] = json!([7])
    }));
    assert!(e.contains("reduce") && e.contains("axis"), "{e}");
    let e = import_err(&edit_app(&p, "Transpose", |a| {
        a["op"]["Transpose"]["perm"] = json!([0, 0])
    }));
    assert!(e.contains("transpose"), "{e}");
    let e = import_err(&edit_app(&p, "Unary", |a| {
        a["op"] = json!({"Fused": {"program": {
            "instrs": [{"op": {"Unary": "Exp"}, "args": [5]}], "outputs": [1]}}})
    }));
    assert!(e.contains("reads value 5"), "{e}");
    let e = import_err(&edit_app(&p, "Unary", |a| a["op"] = json!({"NoSuchOp": 3})));
    assert!(e.contains("manifest is not valid"), "{e}");
    let e = import_err(&edit_app(&p, "Matmul", |a| a["inputs"][0] = json!(1000)));
    assert!(e.contains("only 2 values are defined"), "{e}");
    let e = import_err(&edit_app(&p, "Matmul", |a| {
        a["outputs"][0]["shape"] = json!([4, 3])
    }));
    assert!(
        e.contains("declared (4, 3) float32 but the op makes (4, 2) float32"),
        "{e}"
    );
    let e = import_err(&edit_app(&p, "Matmul", |a| a["op"] = json!("Copy")));
    assert!(e.contains("copy") && e.contains("takes 1 inputs"), "{e}");
    let e = import_err(&edit_app(&p, "Unary", |a| {
        a["op"] = json!("Broadcast");
        a["outputs"][0]["shape"] = json!([1u64 << 40, 1u64 << 40, 1u64 << 40]);
    }));
    assert!(e.contains("broadcast_to"), "{e}");
    let e = import_err(&edit_app(&p, "Unary", |a| {
        a["op"] = json!({"Arange": {"start": {"Float": 0.0}, "step": {"Float": 1.0}}});
        a["inputs"] = json!([]);
        a["outputs"][0]["shape"] = json!([1u64 << 62]);
    }));
    assert!(e.contains("does not fit in memory"), "{e}");
    let e = import_err(&edit_app(&p, "Unary", |a| {
        a["op"] = json!({"Pad": {"low": [usize::MAX / 2, 0], "high": [usize::MAX / 2, 0],
            "mode": "Constant", "value": {"Float": 0.0}}});
    }));
    assert!(e.contains("pad"), "{e}");

    // Constants and outputs.
    let (mut m, w) = split(&p);
    m["functions"][0]["traces"][0]["consts"][0]["weight"] = json!("00ff");
    assert!(import_err(&join(&m, &w)).contains("weight '00ff', which is not stored"));
    let (mut m, w) = split(&p);
    m["functions"][0]["traces"][0]["consts"][0]["shape"] = json!([2, 3]);
    assert!(import_err(&join(&m, &w)).contains("declared (2, 3) float32 but weight"));
    let (mut m, w) = split(&p);
    m["functions"][0]["traces"][0]["outputs"][0]["value"] = json!(99);
    assert!(import_err(&join(&m, &w)).contains("which is not defined"));
}

#[test]
fn every_truncation_is_refused() {
    let p = small_package();
    for n in 0..p.len() {
        assert!(
            ingot::import_bytes(&p[..n]).is_err(),
            "prefix of {n} bytes accepted"
        );
    }
}

/// Imports `bytes`; when that succeeds, runs every trace of every function on random inputs
/// of its signature. Returns whether the import succeeded. Panics only on a bug.
fn import_and_run(bytes: &[u8], rng: &mut Rng) -> bool {
    let Ok(pkg) = ingot::import_bytes(bytes) else {
        return false;
    };
    for name in pkg.functions() {
        for sig in pkg.signature(name).unwrap() {
            // An edit may declare a huge input: such traces are not run.
            if sig.inputs.iter().any(|t| {
                t.shape
                    .iter()
                    .try_fold(1usize, |a, &d| a.checked_mul(d))
                    .is_none_or(|n| n > 1 << 16)
            }) {
                continue;
            }
            let xs: Vec<Array> = sig
                .inputs
                .iter()
                .map(|t| rand_array(rng, &t.shape, t.dtype).0)
                .collect();
            if let Ok(ys) = pkg.call(name, &xs) {
                let _ = ingot::eval(&ys);
            }
        }
    }
    true
}

#[test]
fn flipped_bytes_never_panic() {
    let p = small_package();
    let mut rng = Rng::new(6);
    let mut refused = 0;
    let tries = 1500;
    for _ in 0..tries {
        let mut v = p.clone();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(v.len() as u64) as usize;
            v[i] ^= 1 << rng.below(8);
        }
        if !import_and_run(&v, &mut rng) {
            refused += 1;
        }
    }
    // Most flips land in the header or manifest; flips in weight bytes or names still import.
    assert!(refused > tries / 2, "only {refused} of {tries} refused");
}

fn count_numbers(v: &Value) -> usize {
    match v {
        Value::Number(_) => 1,
        Value::Array(a) => a.iter().map(count_numbers).sum(),
        Value::Object(o) => o.values().map(count_numbers).sum(),
        _ => 0,
    }
}

/// Replaces the `k`-th number (depth first) inside `v` by `n`.
fn replace_number(v: &mut Value, k: &mut usize, n: u64) -> bool {
    match v {
        Value::Number(_) if *k == 0 => {
            *v = json!(n);
            true
        }
        Value::Number(_) => {
            *k -= 1;
            false
        }
        Value::Array(a) => a.iter_mut().any(|x| replace_number(x, k, n)),
        Value::Object(o) => o.values_mut().any(|x| replace_number(x, k, n)),
        _ => false,
    }
}

#[test]
fn edited_numbers_in_the_manifest_never_panic() {
    let p = small_package();
    let (m, w) = split(&p);
    let mut rng = Rng::new(8);
    let mut refused = 0;
    let tries = 600;
    for t in 0..tries {
        let mut m2 = m.clone();
        let n = match t % 4 {
            0 => rng.below(8),
            1 => rng.below(100),
            2 => u64::MAX - rng.below(4),
            _ => 1 << (20 + rng.below(44)),
        };
        let t = &mut m2["functions"][0]["traces"][0];
        let mut k = rng.below(count_numbers(t) as u64) as usize;
        assert!(replace_number(t, &mut k, n));
        if !import_and_run(&join(&m2, &w), &mut rng) {
            refused += 1;
        }
    }
    assert!(refused > tries / 2, "only {refused} of {tries} refused");
}

// ---- every op family --------------------------------------------------------------------

fn idx(v: &[i64]) -> Array {
    Array::from_slice(v, &[v.len()]).unwrap()
}

fn fam_linalg(xs: &[Array]) -> Result<Vec<Array>> {
    let a = &xs[0];
    let n = a.shape()[1];
    let spd = ingot::add(
        ingot::matmul(a, &ingot::transpose(a, Some(&[0, 2, 1]))?)?,
        ingot::eye(n, None, 0, DType::F64)?,
    )?;
    let l = ingot::cholesky(&spd, false)?;
    let (q, r) = ingot::qr(a)?;
    let (w, v) = ingot::eigh(&spd, false)?;
    let s = ingot::svd(a, false, false)?;
    let inv = ingot::inv(&spd)?;
    let x = ingot::solve(&spd, &xs[1])?;
    let t = ingot::solve_triangular(&l, &xs[1], false, false, true)?;
    // Not `lu`: simplify's CSE merges its int32 arange with eye's int64 one (equal ops, no
    // inputs, different node dtypes), and the import check rightly refuses the result.
    let (lu, piv) = ingot::lu_factor(&spd)?;
    Ok(vec![
        l,
        q,
        r,
        w,
        ingot::abs(&v)?,
        s[0].clone(),
        inv,
        x,
        t,
        lu,
        piv,
    ])
}

fn fam_index(xs: &[Array]) -> Result<Vec<Array>> {
    let a = &xs[0];
    let i = idx(&[2, 0, 1]);
    let g = ingot::gather(a, std::slice::from_ref(&i), &[0], &[1, a.shape()[1]])?;
    let sc = ingot::scatter_add(a, std::slice::from_ref(&i), &ingot::tanh(&g)?, &[0])?;
    let ii = ingot::broadcast_to(&ingot::reshape(&i, &[3, 1])?, &[3, 2])?;
    let ta = ingot::take_along_axis(&ingot::slice(a, &[SliceArg::range(0, 3)])?, &ii, Some(1))?;
    let pa = ingot::put_along_axis(
        &ingot::slice(a, &[SliceArg::range(0, 3)])?,
        &ii,
        9.0,
        Some(1),
    )?;
    let su = ingot::slice_update(a, ingot::negative(&xs[1])?, &[SliceArg::new(None, None, 2)])?;
    let fl = ingot::flip(a, Some(&[0, 1]))?;
    let dg = ingot::diagonal(a, 1, 0, 1)?;
    Ok(vec![g, sc, ta, pa, su, fl, dg])
}

fn fam_sort_scan(xs: &[Array]) -> Result<Vec<Array>> {
    let a = &xs[0];
    let srt = ingot::sort(&ingot::reshape(a, &[-1])?, Some(0))?;
    let ss = ingot::searchsorted(&srt, ingot::multiply(a, 0.5)?, false)?;
    Ok(vec![
        ingot::argsort(a, Some(0))?,
        ingot::partition(a, 1, Some(-1))?,
        ingot::argpartition(a, 2, Some(-1))?,
        ss,
        ingot::cumprod(a, Some(0), true, false)?,
        ingot::logcumsumexp(a, Some(1), false, true)?,
        ingot::cummax(a, Some(1), false, true)?,
        ingot::argmin(a, Some(0), true)?,
        ingot::prod(a, Some(&[0]), false)?,
        ingot::min(a, None, false)?,
        ingot::all(&ingot::greater(a, -0.5)?, Some(&[1]), false)?,
        ingot::any(&ingot::isnan(a)?, None, false)?,
        ingot::var(a, Some(&[0, 1]), false, 1)?,
    ])
}

fn fam_shape_dtype(xs: &[Array]) -> Result<Vec<Array>> {
    let a = &xs[0];
    let r = ingot::pad(a, &[(1, 2), (2, 1)], ingot::op::PadMode::Reflect, 0.0)?;
    let e = ingot::pad(a, &[(0, 1), (1, 0)], ingot::op::PadMode::Edge, 0.0)?;
    let bits = ingot::view(&ingot::astype(a, DType::F32)?, DType::U32)?;
    let ints = ingot::astype(&ingot::multiply(a, 10.0)?, DType::I32)?;
    let shifted = ingot::right_shift(
        &ints,
        ingot::astype(&ingot::ones(&[1], DType::I32)?, DType::I32)?,
    )?;
    let ar = ingot::add(ingot::arange(0.0, a.shape()[1] as f64, 1.0, DType::F64)?, a)?;
    let rn = ingot::round(&ingot::power(a, 2.0)?, 2)?;
    let st = ingot::stack(&[a.clone(), ingot::sin(a)?], 1)?;
    let tl = ingot::tile(a, &[2, 1])?;
    let wh = ingot::where_(
        ingot::less(a, 0.0)?,
        ingot::floor_divide(a, 0.3)?,
        ingot::remainder(a, 0.3)?,
    )?;
    Ok(vec![r, e, bits, shifted, ar, rn, st, tl, wh])
}

fn fam_signal(xs: &[Array]) -> Result<Vec<Array>> {
    let img = &xs[0];
    let norm = ingot::FftNorm::Backward;
    let f = ingot::rfft(img, None, -1, norm)?;
    let back = ingot::irfft(&f, Some(img.shape()[3]), -1, norm)?;
    let c = ingot::fft(&f, None, 1, ingot::FftNorm::Ortho)?;
    let mag = ingot::abs(&ingot::ifft(&c, None, 1, norm)?)?;
    let h = ingot::hadamard_transform(img, None)?;
    let avg = ingot::avg_pool2d(img, &[2, 2], Some(&[1, 1]), &[1, 1], true)?;
    let k = ingot::ones(&[2, 2, 2, 4], DType::F32)?;
    let ct = ingot::conv_transpose2d(img, &k, &[2, 2], 0usize, &[1, 1], &[0, 0], 1)?;
    let grid = ingot::multiply(ingot::tanh(&xs[1])?, 0.9)?;
    let gs = ingot::grid_sample(
        img,
        &grid,
        ingot::op::InterpMode::Bilinear,
        ingot::op::GridPadding::Border,
        false,
    )?;
    let key = ingot::random::key(3);
    let noise = ingot::random::normal(&key, img.shape(), 0.0, 1.0, DType::F32)?;
    Ok(vec![back, mag, h, avg, ct, gs, ingot::add(img, &noise)?])
}

type Family = (
    &'static str,
    fn(&[Array]) -> Result<Vec<Array>>,
    DType,
    [&'static [&'static [usize]]; 2],
);

#[test]
fn every_op_family_round_trips() {
    let table: [Family; 5] = [
        (
            "linalg",
            fam_linalg,
            DType::F64,
            [&[&[2, 4, 4], &[2, 4, 3]], &[&[1, 3, 3], &[1, 3, 2]]],
        ),
        (
            "index",
            fam_index,
            DType::F32,
            [&[&[5, 4], &[3, 4]], &[&[4, 6], &[2, 6]]],
        ),
        (
            "sort_scan",
            fam_sort_scan,
            DType::F64,
            [&[&[4, 5]], &[&[3, 7]]],
        ),
        (
            "shape_dtype",
            fam_shape_dtype,
            DType::F64,
            [&[&[3, 4]], &[&[5, 3]]],
        ),
        (
            "signal",
            fam_signal,
            DType::F32,
            [
                &[&[1, 4, 4, 4], &[1, 3, 3, 2]],
                &[&[2, 4, 8, 4], &[2, 2, 5, 2]],
            ],
        ),
    ];
    let mut rng = Rng::new(11);
    for (name, f, dtype, shape_sets) in table {
        let examples: Vec<Vec<Array>> = shape_sets
            .iter()
            .map(|set| {
                set.iter()
                    .map(|s| rand_array(&mut rng, s, dtype).0)
                    .collect()
            })
            .collect();
        let bytes = Exporter::new()
            .function(name, f, &examples)
            .unwrap_or_else(|e| panic!("{name}: export: {e}"))
            .to_bytes()
            .unwrap();
        let pkg = ingot::import_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: import: {e}"));
        for set in shape_sets {
            for contiguous in [true, false] {
                let xs: Vec<Array> = set
                    .iter()
                    .map(|s| {
                        let n: usize = s.iter().product();
                        let v = rng.values(n, dtype);
                        if contiguous {
                            array_from_f64(&v, s, dtype)
                        } else {
                            transposed(&v, s, dtype)
                        }
                    })
                    .collect();
                let got = pkg.call(name, &xs).unwrap();
                assert_same(&got, &f(&xs).unwrap(), &format!("{name} {set:?}"));
            }
        }
    }
}
