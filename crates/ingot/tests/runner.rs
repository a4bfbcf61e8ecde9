//! The op runner's spec handling: inputs read from .npy files, outputs and error files
//! written, bad cases reported without stopping the run, unreadable specs refused.

mod common;

use common::*;
use ingot::io::{load_npy, save_npy};
use ingot::runner::spec::{exit_code, run_spec, run_spec_with};
use ingot::{Array, DType, Device};
use std::path::{Path, PathBuf};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ingot-runner-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_spec(d: &Path, spec: &serde_json::Value) -> PathBuf {
    let p = d.join("spec.json");
    std::fs::write(&p, serde_json::to_string_pretty(spec).unwrap()).unwrap();
    p
}

fn error_text(d: &Path, id: &str) -> String {
    std::fs::read_to_string(d.join(format!("{id}.error.txt"))).unwrap_or_default()
}

#[test]
fn runs_cases_writes_outputs_and_errors() {
    let d = dir("main");
    let mut rng = Rng::new(7);
    let (_, av) = rand_array(&mut rng, &[3, 4], DType::F32);
    let (_, bv) = rand_array(&mut rng, &[4], DType::F32);
    save_npy(d.join("a.npy"), &array_from_f64(&av, &[3, 4], DType::F32)).unwrap();
    save_npy(d.join("b.npy"), &array_from_f64(&bv, &[4], DType::F32)).unwrap();
    save_npy(
        d.join("i.npy"),
        &Array::from_slice(&[1i32, -2, 3], &[3]).unwrap(),
    )
    .unwrap();
    save_npy(
        d.join("bad.npy"),
        &Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap(),
    )
    .unwrap();
    std::fs::write(d.join("garbage.npy"), b"not npy").unwrap();
    let spec = serde_json::json!({"device": "cpu", "cases": [
        {"id": "add-1", "op": "add", "inputs": ["a.npy", "b.npy"]},
        {"id": "astype-1", "op": "astype", "inputs": ["i.npy"], "attrs": {"dtype": "float64"}},
        {"id": "round-1", "op": "round", "inputs": ["a.npy"], "attrs": {"decimals": 1}},
        {"id": "unknown-op", "op": "frobnicate", "inputs": ["a.npy"]},
        {"id": "bad-attr", "op": "round", "inputs": ["a.npy"], "attrs": {"decimals": "x"}},
        {"id": "unknown-attr", "op": "add", "inputs": ["a.npy", "b.npy"], "attrs": {"axis": 0}},
        {"id": "shape-err", "op": "add", "inputs": ["a.npy", "bad.npy"]},
        {"id": "missing", "op": "add", "inputs": ["a.npy", "nope.npy"]},
        {"id": "garbage", "op": "negative", "inputs": ["garbage.npy"]},
        {"id": "arity", "op": "add", "inputs": ["a.npy"]},
        {"id": "vjp-1", "op": "add", "inputs": ["a.npy", "b.npy"], "vjp": ["a.npy"]},
        {"id": "vjp-2", "op": "add", "inputs": ["a.npy", "b.npy"], "vjp": ["a.npy", "b.npy"]}
    ]});
    let p = write_spec(&d, &spec);
    let r = run_spec(&p, None, None);
    assert_eq!(exit_code(&r), 0);
    let s = r.unwrap();
    assert_eq!(s.total, 12);
    assert_eq!(s.passed, 4);
    assert_eq!(s.failed.len(), 8);
    assert!(s
        .line()
        .starts_with("ops run: 12 cases, 4 ok, 8 with errors"));

    let out = load_npy(d.join("add-1.out0.npy")).unwrap();
    assert_eq!(out.shape(), &[3, 4]);
    let want: Vec<f64> = (0..12)
        .map(|i| round_to(av[i] + bv[i % 4], DType::F32))
        .collect();
    assert_close(&out.to_f64_vec().unwrap(), &want, 1e-6, 0.0, "add");
    let c = load_npy(d.join("astype-1.out0.npy")).unwrap();
    assert_eq!(c.dtype(), DType::F64);
    assert_eq!(c.to_vec::<f64>().unwrap(), vec![1.0, -2.0, 3.0]);
    assert!(d.join("round-1.out0.npy").exists());
    assert!(!d.join("add-1.error.txt").exists());

    assert_eq!(
        error_text(&d, "unknown-op"),
        "[ops run] unknown op 'frobnicate'\n"
    );
    assert_eq!(
        error_text(&d, "bad-attr"),
        "[round] attribute 'decimals' must be an integer, got \"x\"\n"
    );
    assert!(error_text(&d, "unknown-attr").contains("unknown attribute 'axis'"));
    assert!(
        error_text(&d, "shape-err").starts_with("[add] "),
        "{}",
        error_text(&d, "shape-err")
    );
    assert!(error_text(&d, "missing").starts_with("[load_npy] "));
    assert!(error_text(&d, "missing").contains("nope.npy"));
    assert!(error_text(&d, "garbage").contains("not a .npy file"));
    assert!(error_text(&d, "arity").contains("takes 2 input(s), got 1"));
    // A vjp case writes its outputs and one cotangent per input: add broadcasts b over
    // the rows of a, so b's cotangent sums the rows.
    assert!(d.join("vjp-2.out0.npy").exists());
    assert!(error_text(&d, "vjp-2").contains("vjp gives 2 cotangent(s) for 1 output(s)"));
    assert!(!d.join("vjp-1.error.txt").exists());
    let g0 = load_npy(d.join("vjp-1.vjp0.npy")).unwrap();
    assert_eq!(g0.shape(), &[3, 4]);
    assert_close(&g0.to_f64_vec().unwrap(), &av, 0.0, 0.0, "vjp a");
    let g1 = load_npy(d.join("vjp-1.vjp1.npy")).unwrap();
    let want: Vec<f64> = (0..4)
        .map(|j| (0..3).map(|i| av[i * 4 + j] as f32).sum::<f32>() as f64)
        .collect();
    assert_close(&g1.to_f64_vec().unwrap(), &want, 1e-6, 0.0, "vjp b");

    // A second run into another folder, with progress reports; stale files are cleared.
    let out_dir = d.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("add-1.error.txt"), "stale").unwrap();
    std::fs::write(out_dir.join("unknown-op.out0.npy"), "stale").unwrap();
    let mut seen = Vec::new();
    let s2 = run_spec_with(
        &p,
        Some(&out_dir),
        Some(Device::Cpu),
        &mut |done, total, id| seen.push((done, total, id.to_string())),
    )
    .unwrap();
    assert_eq!(s2.passed, 4);
    assert_eq!(seen.len(), 12);
    assert_eq!(seen[11], (12, 12, "vjp-2".to_string()));
    assert!(!out_dir.join("add-1.error.txt").exists());
    assert!(!out_dir.join("unknown-op.out0.npy").exists());
    assert!(out_dir.join("add-1.out0.npy").exists());
}

#[test]
fn unreadable_specs_exit_2() {
    let d = dir("bad");
    let r = run_spec(&d.join("nope.json"), None, None);
    assert_eq!(exit_code(&r), 2);
    assert!(r.unwrap_err().to_string().starts_with("[ops run] "));
    let bad = |spec: serde_json::Value, want: &str| {
        let p = write_spec(&d, &spec);
        let r = run_spec(&p, None, None);
        assert_eq!(exit_code(&r), 2, "{spec}");
        let e = r.unwrap_err().to_string();
        assert!(e.contains(want), "{spec}: {e}");
    };
    bad(serde_json::json!([1]), "must be a JSON object");
    bad(serde_json::json!({"cases": 3}), "needs a \"cases\" list");
    bad(
        serde_json::json!({"cases": [], "extra": 1}),
        "unknown key 'extra'",
    );
    bad(
        serde_json::json!({"device": "tpu", "cases": []}),
        "unknown device 'tpu'",
    );
    bad(
        serde_json::json!({"cases": [{"id": "../x", "op": "add"}]}),
        "case id \"../x\" is not allowed",
    );
    bad(
        serde_json::json!({"cases": [{"id": "a/b", "op": "add"}]}),
        "is not allowed",
    );
    bad(
        serde_json::json!({"cases": [{"id": "a\\b", "op": "add"}]}),
        "is not allowed",
    );
    bad(
        serde_json::json!({"cases": [{"id": "", "op": "add"}]}),
        "is not allowed",
    );
    bad(
        serde_json::json!({"cases": [{"id": "a", "op": "add"}, {"id": "a", "op": "add"}]}),
        "appears twice",
    );
    bad(
        serde_json::json!({"cases": [{"op": "add"}]}),
        "has no string \"id\"",
    );
    bad(
        serde_json::json!({"cases": [{"id": "a"}]}),
        "has no string \"op\"",
    );
    bad(
        serde_json::json!({"cases": [{"id": "a", "op": "add", "inputs": "x.npy"}]}),
        "must be a list",
    );
    bad(
        serde_json::json!({"cases": [{"id": "a", "op": "add", "input": []}]}),
        "unknown key 'input'",
    );
    std::fs::write(d.join("broken.json"), "{\"cases\": [").unwrap();
    let r = run_spec(&d.join("broken.json"), None, None);
    assert_eq!(exit_code(&r), 2);
    assert!(r.unwrap_err().to_string().contains("not valid JSON"));
    // An empty spec is readable.
    let p = write_spec(&d, &serde_json::json!({"cases": []}));
    let s = run_spec(&p, None, None).unwrap();
    assert_eq!((s.total, s.passed), (0, 0));
}

#[test]
fn every_registered_op_lists_its_attrs() {
    let reg = ingot::runner::registry();
    assert!(reg.iter().any(|d| d.name == "add"));
    for w in reg.windows(2) {
        assert!(
            w[0].name < w[1].name,
            "registry sorted and unique: {} {}",
            w[0].name,
            w[1].name
        );
    }
}
