//! File IO: .npy, .npz and safetensors round trips for every dtype and layout, files written
//! by hand in the variants NumPy and others produce (versions, byte orders, Fortran order,
//! misaligned data), exact error messages, and thousands of mutated files that must give
//! Ok or Err, never a panic.

mod common;

use common::*;
use ingot::io::*;
use ingot::{Array, DType};
use std::collections::HashMap;
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ingot-io-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// Random values of every dtype, with NaN, inf and -0.0 in the float ones.
fn sample(rng: &mut Rng, shape: &[usize], dtype: DType) -> Array {
    let n: usize = shape.iter().product();
    let mut vals = rng.values(n, dtype);
    if dtype.is_inexact() {
        let specials = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0];
        for (i, s) in specials.iter().enumerate() {
            if i < n {
                vals[i] = *s;
            }
        }
    }
    if dtype == DType::C64 {
        // Give complex values a nonzero imaginary part.
        let re = array_from_f64(&vals, shape, DType::F32);
        let im = array_from_f64(&rng.values(n, DType::F32), shape, DType::F32);
        let j = Array::scalar(ingot::c64::new(0.0, 1.0));
        return ingot::add(
            ingot::astype(&re, DType::C64).unwrap(),
            ingot::multiply(&im, &j).unwrap(),
        )
        .unwrap();
    }
    array_from_f64(&vals, shape, dtype)
}

fn all_shapes() -> Vec<Vec<usize>> {
    let mut s = shapes();
    s.push(vec![2, 3, 1, 4]);
    s
}

/// The .npy bytes NumPy would write for a header dict and data, version `major`.
fn npy_raw(major: u8, dict: &str, data: &[u8], pad_to: usize) -> Vec<u8> {
    let pre = if major == 1 { 10 } else { 12 };
    let mut h = dict.as_bytes().to_vec();
    while (pre + h.len() + 1) % pad_to != 0 {
        h.push(b' ');
    }
    h.push(b'\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[major, 0]);
    if major == 1 {
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

fn is_mapped(a: &Array) -> bool {
    a.data().unwrap().buffer.is_mapped()
}

#[test]
fn npy_round_trip_every_dtype_and_shape() {
    let mut rng = Rng::new(1);
    for dtype in DType::ALL {
        for shape in all_shapes() {
            let a = sample(&mut rng, &shape, dtype);
            let want = a.to_bytes().unwrap();
            let path = tmp(&format!("rt-{dtype}-{}.npy", shape.len()));
            save_npy(&path, &a).unwrap();
            let b = load_npy(&path).unwrap();
            assert_eq!(b.shape(), shape.as_slice(), "{dtype}");
            assert_eq!(b.dtype(), dtype);
            assert_eq!(b.to_bytes().unwrap(), want, "{dtype} {shape:?}");
            if !want.is_empty() {
                assert!(
                    is_mapped(&b),
                    "{dtype} {shape:?} should read the mapped file"
                );
            }
            let c = load_npy_bytes(&npy_to_bytes(&a).unwrap()).unwrap();
            assert_eq!(c.to_bytes().unwrap(), want);
        }
    }
}

#[test]
fn npy_saves_noncontiguous_views_in_logical_order() {
    let mut rng = Rng::new(2);
    for dtype in [DType::F32, DType::I16, DType::F64] {
        for shape in [vec![3, 4], vec![2, 3, 5], vec![4]] {
            let (a, vals) = rand_array(&mut rng, &shape, dtype);
            for v in [
                noncontiguous(&vals, &shape, dtype),
                transposed(&vals, &shape, dtype),
            ] {
                let b = load_npy_bytes(&npy_to_bytes(&v).unwrap()).unwrap();
                assert_eq!(b.to_f64_vec().unwrap(), vals);
                assert_eq!(b.to_bytes().unwrap(), a.to_bytes().unwrap());
            }
        }
    }
    // A negative-stride view too.
    let (_, vals) = rand_array(&mut rng, &[5], DType::F32);
    let f = ingot::flip(&array_from_f64(&vals, &[5], DType::F32), None).unwrap();
    let b = load_npy_bytes(&npy_to_bytes(&f).unwrap()).unwrap();
    let rev: Vec<f64> = vals.iter().rev().copied().collect();
    assert_eq!(b.to_f64_vec().unwrap(), rev);
}

#[test]
fn npy_header_matches_numpy_layout() {
    let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    let b = npy_to_bytes(&a).unwrap();
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0);
    let h = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    assert_eq!(
        h.trim_end(),
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
    );
    let bf = Array::from_slice(&[ingot::bf16::from_f32(1.5)], &[1]).unwrap();
    let b = npy_to_bytes(&bf).unwrap();
    assert!(std::str::from_utf8(&b[10..64]).unwrap().contains("'<V2'"));
    let s = npy_to_bytes(&Array::scalar(true)).unwrap();
    assert!(std::str::from_utf8(&s[10..64])
        .unwrap()
        .contains("'|b1', 'fortran_order': False, 'shape': ()"));
}

#[test]
fn npy_versions_byte_orders_and_fortran_order() {
    // Version 2.0 and 3.0 headers (u32 length, latin-1/UTF-8).
    let data: Vec<u8> = [1i32, -2, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
    for major in [1u8, 2, 3] {
        let f = npy_raw(
            major,
            "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }",
            &data,
            64,
        );
        let a = load_npy_bytes(&f).unwrap();
        assert_eq!(
            a.to_vec::<i32>().unwrap(),
            vec![1, -2, 3],
            "version {major}"
        );
    }
    // Big-endian data of several widths, including complex (each half swapped).
    let be: Vec<u8> = [1.5f64, -0.0, f64::INFINITY]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let a = load_npy_bytes(&npy_raw(
        1,
        "{'descr': '>f8', 'fortran_order': False, 'shape': (3,), }",
        &be,
        64,
    ))
    .unwrap();
    let v = a.to_vec::<f64>().unwrap();
    assert_eq!(v[0], 1.5);
    assert!(v[1] == 0.0 && v[1].is_sign_negative());
    assert_eq!(v[2], f64::INFINITY);
    let be: Vec<u8> = [1.0f32, 2.0, -3.0, 4.5]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let c = load_npy_bytes(&npy_raw(
        1,
        "{'descr': '>c8', 'fortran_order': False, 'shape': (2,), }",
        &be,
        64,
    ))
    .unwrap();
    assert_eq!(
        c.to_vec::<ingot::c64>().unwrap(),
        vec![ingot::c64::new(1.0, 2.0), ingot::c64::new(-3.0, 4.5)]
    );
    let be: Vec<u8> = [258u16, 7].iter().flat_map(|v| v.to_be_bytes()).collect();
    let u = load_npy_bytes(&npy_raw(
        1,
        "{'descr': '>u2', 'fortran_order': False, 'shape': (2,), }",
        &be,
        64,
    ))
    .unwrap();
    assert_eq!(u.to_vec::<u16>().unwrap(), vec![258, 7]);
    // Fortran order: column-major data, read from a mapped file without a copy.
    let col: Vec<u8> = [0f32, 3.0, 1.0, 4.0, 2.0, 5.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let f = npy_raw(
        1,
        "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
        &col,
        64,
    );
    let path = tmp("fortran.npy");
    std::fs::write(&path, &f).unwrap();
    let a = load_npy(&path).unwrap();
    assert!(is_mapped(&a));
    assert_eq!(
        a.to_vec::<f32>().unwrap(),
        vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    );
    assert_eq!(
        ingot::add(&a, 1.0).unwrap().to_vec::<f32>().unwrap(),
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );
    // Misaligned data (a header padded to an odd length) is copied once.
    let data: Vec<u8> = [1.25f64, 2.5]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let f = npy_raw(
        1,
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
        &data,
        3,
    );
    assert_ne!((f.len() - 16) % 8, 0);
    let path = tmp("misaligned.npy");
    std::fs::write(&path, &f).unwrap();
    let a = load_npy(&path).unwrap();
    assert!(!is_mapped(&a));
    assert_eq!(a.to_vec::<f64>().unwrap(), vec![1.25, 2.5]);
    // Bool bytes other than 0/1 are normalized (copied rather than mapped).
    let f = npy_raw(
        1,
        "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }",
        &[0, 2, 255],
        64,
    );
    let path = tmp("bool.npy");
    std::fs::write(&path, &f).unwrap();
    let a = load_npy(&path).unwrap();
    assert_eq!(a.to_vec::<bool>().unwrap(), vec![false, true, true]);
    assert_eq!(a.to_bytes().unwrap(), vec![0, 1, 1]);
    // bfloat16 as ml_dtypes writes it.
    let bits: Vec<u8> = [ingot::bf16::from_f32(-2.5), ingot::bf16::from_f32(0.75)]
        .iter()
        .flat_map(|v| v.to_bits().to_le_bytes())
        .collect();
    let a = load_npy_bytes(&npy_raw(
        1,
        "{'descr': '<V2', 'fortran_order': False, 'shape': (2,), }",
        &bits,
        64,
    ))
    .unwrap();
    assert_eq!(a.dtype(), DType::BF16);
    assert_eq!(a.to_f64_vec().unwrap(), vec![-2.5, 0.75]);
}

fn err_msg<T: std::fmt::Debug>(r: ingot::Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn npy_errors_name_the_op_and_file() {
    let data = vec![0u8; 40];
    let f = npy_raw(
        1,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }",
        &data,
        64,
    );
    let path = tmp("data.npy");
    std::fs::write(&path, &f).unwrap();
    assert_eq!(
        err_msg(load_npy(&path)),
        format!(
            "[load_npy] {}: header declares shape (3, 4) of float32 (48 bytes) but 40 bytes follow",
            path.display()
        )
    );
    assert_eq!(
        err_msg(load_npy_bytes(b"hello world")),
        "[load_npy] <bytes>: not a .npy file (bad magic string)"
    );
    let cases = [
        (
            "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }",
            "complex128 ('c16') is not an ingot dtype",
        ),
        (
            "{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }",
            "unsupported dtype '<U3'",
        ),
        (
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
            "structured dtypes are not supported",
        ),
        (
            "{'descr': '<f4', 'shape': (1,), }",
            "missing key 'fortran_order'",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
            "bad dimension -1 in shape",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }",
            "bad dimension",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4), }",
            "is too large",
        ),
        (
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }",
            "fortran_order must be True or False",
        ),
        ("{'descr': '<f4'", "bad header"),
    ];
    for (dict, want) in cases {
        let e = err_msg(load_npy_bytes(&npy_raw(1, dict, &[0; 8], 64)));
        assert!(e.starts_with("[load_npy] <bytes>: "), "{e}");
        assert!(e.contains(want), "{dict}: {e}");
    }
    // Header length beyond the file; unsupported version.
    let mut f = npy_raw(
        1,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
        &[0; 4],
        64,
    );
    f[8] = 0xff;
    f[9] = 0xff;
    f.truncate(100);
    assert_eq!(
        err_msg(load_npy_bytes(&f)),
        "[load_npy] <bytes>: header declares 65535 bytes but only 90 follow"
    );
    f[6] = 9;
    assert!(err_msg(load_npy_bytes(&f)).contains("unsupported .npy format version 9.0"));
    let mut f = npy_raw(2, "{}", &[], 64);
    f[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(err_msg(load_npy_bytes(&f)).contains("exceeds the limit"));
    assert!(err_msg(load_npy(tmp("missing.npy"))).starts_with("[load_npy] "));
}

#[test]
fn npz_round_trip_stored_and_deflated() {
    let mut rng = Rng::new(3);
    let arrays: Vec<(String, Array)> = DType::ALL
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let shapes = all_shapes();
            (
                format!("arr_{i}"),
                sample(&mut rng, &shapes[i % shapes.len()], d),
            )
        })
        .collect();
    let named: Vec<(&str, &Array)> = arrays.iter().map(|(n, a)| (n.as_str(), a)).collect();
    for compressed in [false, true] {
        let path = tmp(&format!("rt-{compressed}.npz"));
        save_npz(&path, &named, compressed).unwrap();
        let back = load_npz(&path).unwrap();
        assert_eq!(back.len(), arrays.len());
        for ((n, a), (m, b)) in arrays.iter().zip(&back) {
            assert_eq!(n, m);
            assert_eq!(a.shape(), b.shape());
            assert_eq!(a.dtype(), b.dtype());
            assert_eq!(
                a.to_bytes().unwrap(),
                b.to_bytes().unwrap(),
                "{n} compressed={compressed}"
            );
            // save_npz aligns stored members, so they read the mapped file in place.
            if a.nbytes() > 0 {
                assert_eq!(is_mapped(b), !compressed, "{n} compressed={compressed}");
            }
        }
        let bytes = npz_to_bytes(&named, compressed).unwrap();
        let back = load_npz_bytes(&bytes).unwrap();
        assert_eq!(back.len(), arrays.len());
        assert_eq!(
            back[3].1.to_bytes().unwrap(),
            arrays[3].1.to_bytes().unwrap()
        );
    }
    let big = ingot::zeros(&[1000, 100], DType::F32).unwrap();
    let small = npz_to_bytes(&[("z", &big)], true).unwrap();
    assert!(
        small.len() < 10_000,
        "deflate should shrink zeros: {}",
        small.len()
    );
    assert!(
        err_msg(npz_to_bytes(&[("a", &big), ("a", &big)], false)).contains("name 'a' given twice")
    );
    assert!(err_msg(load_npz_bytes(b"PK\x03\x04 not really"))
        .starts_with("[load_npz] <bytes>: bad zip archive"));
}

#[test]
fn safetensors_round_trip_with_metadata() {
    let mut rng = Rng::new(4);
    let mut tensors: HashMap<String, Array> = HashMap::new();
    for (i, &d) in DType::ALL.iter().enumerate() {
        let shapes = all_shapes();
        tensors.insert(
            format!("t{i}.{d}"),
            sample(&mut rng, &shapes[(i + 2) % shapes.len()], d),
        );
    }
    let meta: HashMap<String, String> = [
        ("format".to_string(), "pt".to_string()),
        ("note".into(), "ünïcode \"q\"".into()),
    ]
    .into();
    let path = tmp("model.safetensors");
    save_safetensors(&path, &tensors, &meta).unwrap();
    let (back, m) = load_safetensors(&path).unwrap();
    assert_eq!(m, meta);
    assert_eq!(back.len(), tensors.len());
    for (k, a) in &tensors {
        let b = &back[k];
        assert_eq!(a.shape(), b.shape(), "{k}");
        assert_eq!(a.dtype(), b.dtype(), "{k}");
        assert_eq!(a.to_bytes().unwrap(), b.to_bytes().unwrap(), "{k}");
        if a.nbytes() > 0 && a.dtype() != DType::Bool {
            assert!(is_mapped(b), "{k}: aligned tensors read the mapped file");
        }
    }
    // The bytes variants, a slice of pairs, no metadata.
    let x = Array::from_slice(&[1u8, 2, 3], &[3]).unwrap();
    let y = Array::from_slice(&[1.0f64], &[]).unwrap();
    let b = safetensors_to_bytes([("x", &x), ("y", &y)], &HashMap::new()).unwrap();
    let (back, m) = load_safetensors_bytes(&b).unwrap();
    assert!(m.is_empty());
    assert_eq!(back["x"].to_vec::<u8>().unwrap(), vec![1, 2, 3]);
    assert_eq!(back["y"].shape(), &[] as &[usize]);
    // Header padded to 8 and tensors sorted by alignment: the f64 comes first.
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0);
    let h: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    assert_eq!(h["y"]["data_offsets"], serde_json::json!([0, 8]));
    assert_eq!(h["x"]["dtype"], "U8");
    // Slices of pairs and what load_npz returns fit too.
    let pairs = [("x", &x), ("y", &y)];
    assert_eq!(
        safetensors_to_bytes(pairs.iter(), &HashMap::new()).unwrap(),
        b
    );
    let owned: Vec<(String, Array)> = vec![("x".into(), x.clone()), ("y".into(), y.clone())];
    assert_eq!(safetensors_to_bytes(&owned, &HashMap::new()).unwrap(), b);
    assert!(err_msg(safetensors_to_bytes(
        [("a", &x), ("a", &x)],
        &HashMap::new()
    ))
    .contains("given twice"));
    assert!(err_msg(safetensors_to_bytes(
        [("__metadata__", &x)],
        &HashMap::new()
    ))
    .contains("cannot name a tensor"));
}

fn st_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn safetensors_errors() {
    let e = |h: &str, data: &[u8]| err_msg(load_safetensors_bytes(&st_file(h, data)));
    assert_eq!(
        e(r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#, &[0; 20]),
        "[load_safetensors] <bytes>: tensor 'w': data_offsets [0, 24] extend past the 20 bytes of data"
    );
    assert_eq!(
        e(r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#, &[0; 24]),
        "[load_safetensors] <bytes>: tensor 'w': shape (2, 3) of float32 needs 24 bytes but data_offsets [0, 20] hold 20"
    );
    assert!(e(
        r#"{"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}"#,
        &[0]
    )
    .contains("unsupported dtype F8_E4M3"));
    assert!(e(
        r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#,
        &[0; 4]
    )
    .contains("bad data_offsets"));
    assert!(e(
        r#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
        &[0; 4]
    )
    .contains("bad dimension -1"));
    assert!(e(
        r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,4]}}"#,
        &[0; 4]
    )
    .contains("too large"));
    assert!(e(r#"{"__metadata__":{"a":1}}"#, &[]).contains("must be a string"));
    assert!(e("[1, 2]", &[]).contains("header is not a JSON object"));
    let mut f = st_file("{}", &[]);
    f[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(err_msg(load_safetensors_bytes(&f)).contains("exceeds the limit"));
    f[..8].copy_from_slice(&1000u64.to_le_bytes());
    assert_eq!(
        err_msg(load_safetensors_bytes(&f)),
        "[load_safetensors] <bytes>: header declares 1000 bytes but only 2 follow"
    );
    assert!(err_msg(load_safetensors_bytes(&[1, 2])).contains("has no header length"));
    // Misaligned data in a file is copied, and still right.
    let h = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}}"#;
    let mut data = vec![0u8];
    data.extend(1.5f32.to_le_bytes());
    data.extend((-2.0f32).to_le_bytes());
    let path = tmp("misaligned.safetensors");
    std::fs::write(&path, st_file(h, &data)).unwrap();
    let (t, _) = load_safetensors(&path).unwrap();
    assert_eq!(t["w"].to_vec::<f32>().unwrap(), vec![1.5, -2.0]);
}

/// Mutations of a valid file: bit flips, byte overwrites with interesting values,
/// truncations, insertions and deletions.
fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut f = base.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let n = f.len().max(1) as u64;
        match rng.below(6) {
            0 if !f.is_empty() => {
                let i = rng.below(n) as usize;
                f[i] ^= 1 << rng.below(8);
            }
            1 if !f.is_empty() => {
                let i = rng.below(n) as usize;
                f[i] = [0u8, 0xff, 0x7f, 0x80, b'9', b',', b')', b'('][rng.below(8) as usize];
            }
            2 => f.truncate(rng.below(n + 1) as usize),
            3 => {
                let i = rng.below(n + 1) as usize;
                f.insert(i.min(f.len()), rng.next_u64() as u8);
            }
            4 if !f.is_empty() => {
                let i = rng.below(n) as usize;
                f.remove(i);
            }
            _ if f.len() >= 8 => {
                // Overwrite a length field with something huge or wrong.
                let i = rng.below(n.min(16)) as usize;
                let v = [u64::MAX, 1 << 40, 0, 7, rng.next_u64()][rng.below(5) as usize];
                for (k, b) in v.to_le_bytes().iter().enumerate() {
                    if i + k < f.len() {
                        f[i + k] = *b;
                    }
                }
            }
            _ => {}
        }
    }
    f
}

#[test]
fn mutated_files_never_panic() {
    let mut rng = Rng::new(5);
    let a = sample(&mut rng, &[3, 4], DType::F32);
    let b = sample(&mut rng, &[5], DType::I64);
    let c = sample(&mut rng, &[2, 2], DType::Bool);
    let npy = npy_to_bytes(&a).unwrap();
    let npz_s = npz_to_bytes(&[("a", &a), ("b", &b)], false).unwrap();
    let npz_d = npz_to_bytes(&[("a", &a), ("c", &c)], true).unwrap();
    let meta: HashMap<String, String> = [("k".to_string(), "v".to_string())].into();
    let st = safetensors_to_bytes([("a", &a), ("b", &b), ("c", &c)], &meta).unwrap();
    let mut oks = 0;
    for i in 0..4000 {
        let f = mutate(&mut rng, &npy);
        if let Ok(x) = load_npy_bytes(&f) {
            x.to_bytes().unwrap();
            oks += 1;
        }
        let f = mutate(&mut rng, &st);
        if let Ok((t, _)) = load_safetensors_bytes(&f) {
            for x in t.values() {
                x.to_bytes().unwrap();
            }
            oks += 1;
        }
        if i % 4 == 0 {
            let base = if i % 8 == 0 { &npz_s } else { &npz_d };
            let f = mutate(&mut rng, base);
            if let Ok(list) = load_npz_bytes(&f) {
                for (_, x) in list {
                    x.to_bytes().unwrap();
                }
                oks += 1;
            }
        }
    }
    // Some mutations (padding bytes, data bytes) leave a valid file.
    assert!(oks > 100, "only {oks} mutated files were still readable");
    // Every truncation of every format.
    for base in [&npy, &npz_s, &npz_d, &st] {
        for n in 0..base.len() {
            let f = &base[..n];
            let _ = load_npy_bytes(f);
            let _ = load_npz_bytes(f);
            let _ = load_safetensors_bytes(f);
        }
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `np.savez` and `np.savez_compressed` (NumPy 2.4) of a = arange(6, float32).reshape(2, 3),
/// b = big-endian int16 [[1, -2, 3], [4, 5, -6]] in Fortran order, c = True (0-d).
const NUMPY_NPZ_STORED: &str = "504b03042d0000000000000021004fe9002affffffffffffffff05001400612e6e70790100100098000000000000009800000000000000934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a000000000000803f0000004000004040000080400000a040504b03042d00000000000000210046b1ec3bffffffffffffffff05001400622e6e7079010010008c000000000000008c00000000000000934e554d5059010076007b276465736372273a20273e6932272c2027666f727472616e5f6f72646572273a20547275652c20277368617065273a2028322c2033292c207d20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a00010004fffe00050003fffa504b03042d000000000000002100822df8d3ffffffffffffffff05001400632e6e70790100100081000000000000008100000000000000934e554d5059010076007b276465736372273a20277c6231272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028292c207d20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a01504b01022d032d0000000000000021004fe9002a9800000098000000050000000000000000000000800100000000612e6e7079504b01022d032d00000000000000210046b1ec3b8c0000008c0000000500000000000000000000008001cf000000622e6e7079504b01022d032d000000000000002100822df8d38100000081000000050000000000000000000000800192010000632e6e7079504b05060000000003000300990000004a0200000000";
const NUMPY_NPZ_DEFLATED: &str = "504b03042d0000000800000021004fe9002affffffffffffffff05001400612e6e707901001000980000000000000055000000000000009bec17ea1b10c9c850c650ad9e925a9c5ca46ea5a06e9366a2aea3a09e965f54529498179f5f94920a12774bcc294e058a17672416a402f91a463a0ac69a3a0ab50a64032e063068b007120e4004c40d40bcc00100504b03042d00000008000000210046b1ec3bffffffffffffffff05001400622e6e7079010010008c0000000000000052000000000000009bec17ea1b10c9c850c650ad9e925a9c5ca46ea5a06e9769a4aea3a09e965f54529498179f5f94920a120f292a4d050a17672416a402b91a463a0ac69a3a0ab50ae4032e06460696ffff18581998ffff0200504b03042d000000080000002100822df8d3ffffffffffffffff05001400632e6e707901001000810000000000000043000000000000009bec17ea1b10c9c850c650ad9e925a9c5ca46ea5a05e9364a8aea3a09e965f54529498179f5f94920a12774bcc294e058a17672416a402f91a9a3a0ab50a14012e4600504b01022d032d0000000800000021004fe9002a5500000098000000050000000000000000000000800100000000612e6e7079504b01022d032d00000008000000210046b1ec3b520000008c00000005000000000000000000000080018c000000622e6e7079504b01022d032d000000080000002100822df8d34300000081000000050000000000000000000000800115010000632e6e7079504b05060000000003000300990000008f0100000000";

#[test]
fn reads_npz_written_by_numpy() {
    for hex in [NUMPY_NPZ_STORED, NUMPY_NPZ_DEFLATED] {
        let bytes = unhex(hex);
        let list = load_npz_bytes(&bytes).unwrap();
        let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["a", "b", "c"]);
        assert_eq!(list[0].1.shape(), &[2, 3]);
        assert_eq!(
            list[0].1.to_vec::<f32>().unwrap(),
            vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        );
        assert_eq!(list[1].1.dtype(), DType::I16);
        assert_eq!(list[1].1.to_vec::<i16>().unwrap(), vec![1, -2, 3, 4, 5, -6]);
        assert_eq!(list[2].1.shape(), &[] as &[usize]);
        assert!(list[2].1.item::<bool>().unwrap());
        // And from a file, where stored members may be mapped.
        let path = tmp("numpy.npz");
        std::fs::write(&path, &bytes).unwrap();
        let list = load_npz(&path).unwrap();
        assert_eq!(list[1].1.to_vec::<i16>().unwrap(), vec![1, -2, 3, 4, 5, -6]);
    }
}
