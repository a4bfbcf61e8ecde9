//! Modules (names, update, freeze, cast, save and load, value_and_grad) and the linear,
//! normalization and dropout layers against plain f64 references.

use ingot::{Array, DType};
use ingot_nn::{
    rng, value_and_grad, BatchNorm, Bilinear, Dropout, Embedding, GroupNorm, InstanceNorm,
    LayerNorm, Linear, Module, ModuleExt, RMSNorm, Role, Sequential, Unary,
};
use std::collections::BTreeMap;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        // splitmix64 to a uniform in [0, 1)
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
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}: element {i}: got {g}, want {w}"
        );
    }
}

fn set(m: &mut impl Module, name: &str, a: Array) {
    let mut one = BTreeMap::new();
    one.insert(name.to_string(), a);
    m.update(&one).unwrap();
}

fn mlp(dtype: DType) -> Sequential {
    let k = rng::key(3);
    Sequential::new()
        .push(Linear::with(4, 8, true, &k, dtype).unwrap())
        .push(LayerNorm::with(&[8], 1e-5, true, true, dtype).unwrap())
        .push(Linear::with(8, 2, false, &rng::key(4), dtype).unwrap())
}

#[test]
fn modules_name_update_freeze_cast_and_round_trip() {
    let mut m = mlp(DType::F32);
    let names: Vec<String> = m.parameters().into_keys().collect();
    assert_eq!(
        names,
        ["0.bias", "0.weight", "1.bias", "1.weight", "2.weight"]
    );
    assert_eq!(m.num_parameters(), 4 * 8 + 8 + 8 + 8 + 8 * 2);
    let tree = m.parameter_tree();
    assert_eq!(
        tree.get("0")
            .unwrap()
            .get("weight")
            .unwrap()
            .array()
            .unwrap()
            .shape(),
        [8, 4]
    );

    // update: unknown names and wrong shapes are refused, nothing changes
    let before = f64s(&m.parameters()["0.weight"]);
    let mut bad = BTreeMap::new();
    bad.insert(
        "0.wieght".to_string(),
        ingot::zeros(&[8, 4], DType::F32).unwrap(),
    );
    let e = m.update(&bad).unwrap_err().to_string();
    assert!(
        e.contains("Module::update") && e.contains("0.wieght"),
        "{e}"
    );
    let mut bad = BTreeMap::new();
    bad.insert(
        "0.weight".to_string(),
        ingot::zeros(&[4, 8], DType::F32).unwrap(),
    );
    let e = m.update(&bad).unwrap_err().to_string();
    assert!(e.contains("[4, 8]") && e.contains("[8, 4]"), "{e}");
    assert_eq!(f64s(&m.parameters()["0.weight"]), before);

    // freezing removes parameters from the trainable set, and gives them back
    m.freeze_where(&|n| n.starts_with("1."));
    let t: Vec<String> = m.trainable_parameters().into_keys().collect();
    assert_eq!(t, ["0.bias", "0.weight", "2.weight"]);
    assert_eq!(m.roles()["1.weight"], Role::Frozen);
    m.unfreeze();
    assert_eq!(m.trainable_parameters().len(), 5);

    // save, load into a differently initialized model, same outputs
    let dir = std::env::temp_dir().join(format!("ingot-nn-layers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.safetensors");
    m.save_safetensors(&path).unwrap();
    let mut other = Sequential::new()
        .push(Linear::with(4, 8, true, &rng::key(9), DType::F32).unwrap())
        .push(LayerNorm::new(&[8]).unwrap())
        .push(Linear::with(8, 2, false, &rng::key(10), DType::F32).unwrap());
    let x = arr(&Rng(1).vals(12, 2.0), &[3, 4]);
    assert_ne!(
        f64s(&m.forward(&x).unwrap()),
        f64s(&other.forward(&x).unwrap())
    );
    other.load_safetensors(&path, true).unwrap();
    assert_eq!(
        f64s(&m.forward(&x).unwrap()),
        f64s(&other.forward(&x).unwrap())
    );
    // strict loading names what is missing
    let mut bigger =
        mlp(DType::F32).push(Linear::with(2, 2, true, &rng::key(5), DType::F32).unwrap());
    let e = bigger
        .load_safetensors(&path, true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("3.weight") && e.contains("missing"), "{e}");
    bigger.load_safetensors(&path, false).unwrap();

    // cast: every float parameter, forward in the new dtype
    m.cast(DType::BF16).unwrap();
    assert!(m.parameters().values().all(|a| a.dtype() == DType::BF16));
    let y = m.forward(&ingot::astype(&x, DType::BF16).unwrap()).unwrap();
    assert_eq!(y.dtype(), DType::BF16);
    assert!(m.cast(DType::I32).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn linear_bilinear_and_embedding_match_references() {
    let mut r = Rng(7);
    let (n, i, o) = (5, 6, 3);
    let w = r.vals(o * i, 1.0);
    let b = r.vals(o, 1.0);
    let x = r.vals(n * i, 3.0);
    let l = Linear::from_arrays(arr(&w, &[o, i]), Some(arr(&b, &[o]))).unwrap();
    let y = f64s(&l.forward(&arr(&x, &[n, i])).unwrap());
    let mut want = vec![0.0; n * o];
    for s in 0..n {
        for k in 0..o {
            want[s * o + k] = b[k] + (0..i).map(|j| x[s * i + j] * w[k * i + j]).sum::<f64>();
        }
    }
    close(&y, &want, 1e-12, "Linear");
    let e = l
        .forward(&arr(&x[..n * 5], &[n, 5]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("Linear") && e.contains("[5, 5]"), "{e}");

    // default initialization: U(-1/sqrt(in), 1/sqrt(in))
    let big = Linear::with(400, 50, true, &rng::key(1), DType::F32).unwrap();
    let ws = f64s(&big.weight.value);
    let bound = 1.0 / 20.0;
    assert!(ws.iter().all(|v| v.abs() <= bound));
    let mean = ws.iter().sum::<f64>() / ws.len() as f64;
    let var = ws.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / ws.len() as f64;
    assert!(mean.abs() < 0.002 && (var - bound * bound / 3.0).abs() < 0.1 * bound * bound / 3.0);

    let (i1, i2) = (3, 4);
    let mut bl = Bilinear::with(i1, i2, o, true, &rng::key(2), DType::F64).unwrap();
    let w = r.vals(o * i1 * i2, 1.0);
    set(&mut bl, "weight", arr(&w, &[o, i1, i2]));
    let x1 = r.vals(n * i1, 1.0);
    let x2 = r.vals(n * i2, 1.0);
    let bias = f64s(&bl.bias.as_ref().unwrap().value);
    let y = f64s(
        &bl.forward(&arr(&x1, &[n, i1]), &arr(&x2, &[n, i2]))
            .unwrap(),
    );
    let mut want = vec![0.0; n * o];
    for s in 0..n {
        for k in 0..o {
            let mut acc = bias[k];
            for a in 0..i1 {
                for c in 0..i2 {
                    acc += x1[s * i1 + a] * w[(k * i1 + a) * i2 + c] * x2[s * i2 + c];
                }
            }
            want[s * o + k] = acc;
        }
    }
    close(&y, &want, 1e-12, "Bilinear");

    let e = Embedding::with(10, 4, &rng::key(3), DType::F32).unwrap();
    let ids = Array::from_slice(&[3i64, 0, 9, 3], &[2, 2]).unwrap();
    let v = e.forward(&ids).unwrap();
    assert_eq!(v.shape(), [2, 2, 4]);
    let table = f64s(&e.weight.value);
    let got = f64s(&v);
    for (p, &id) in [3usize, 0, 9, 3].iter().enumerate() {
        assert_eq!(got[p * 4..p * 4 + 4], table[id * 4..id * 4 + 4]);
    }
    assert!(e.forward(&arr(&[1.0], &[1])).is_err());
    let logits = e
        .as_linear(&ingot::astype(&arr(&r.vals(8, 1.0), &[2, 4]), DType::F32).unwrap())
        .unwrap();
    assert_eq!(logits.shape(), [2, 10]);
}

#[test]
fn value_and_grad_matches_finite_differences() {
    let mut r = Rng(11);
    let mut m = Sequential::new()
        .push(Linear::with(3, 4, true, &rng::key(1), DType::F64).unwrap())
        .push(RMSNorm::with(4, 1e-6, true, DType::F64).unwrap())
        .push(Linear::with(4, 2, true, &rng::key(2), DType::F64).unwrap());
    set(&mut m, "1.weight", arr(&r.vals(4, 2.0), &[4]));
    m.freeze_where(&|n| n == "0.bias");
    let x = arr(&r.vals(15, 2.0), &[5, 3]);
    let t = arr(&r.vals(10, 1.0), &[5, 2]);
    let loss = |m: &Sequential| -> ingot::Result<Array> {
        let d = ingot::subtract(&m.forward(&x)?, &t)?;
        ingot::mean(&ingot::square(&d)?, None, false)
    };
    let (v, grads) = value_and_grad(&mut m, loss).unwrap();
    let names: Vec<&String> = grads.keys().collect();
    assert_eq!(names, ["0.weight", "1.weight", "2.bias", "2.weight"]);
    let v0 = v.item::<f64>().unwrap();
    assert_eq!(v0, loss(&m).unwrap().item::<f64>().unwrap());
    let h = 1e-6;
    for (name, g) in &grads {
        let p = f64s(&m.parameters()[name]);
        let shape = m.parameters()[name].shape().to_vec();
        let g = f64s(g);
        for k in 0..p.len() {
            let at = |d: f64| {
                let mut q = p.clone();
                q[k] += d;
                let mut mm = m.clone();
                set(&mut mm, name, arr(&q, &shape));
                loss(&mm).unwrap().item::<f64>().unwrap()
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            assert!(
                (fd - g[k]).abs() < 1e-6 * (1.0 + fd.abs()),
                "{name}[{k}]: grad {} vs finite difference {fd}",
                g[k]
            );
        }
    }
}

/// (x - mean) / sqrt(var + eps) over groups of `group` consecutive elements of `x` as
/// listed by `index(g, j)`.
fn standardize_ref(x: &[f64], groups: &[Vec<usize>], eps: f64) -> Vec<f64> {
    let mut out = vec![f64::NAN; x.len()];
    for g in groups {
        let n = g.len() as f64;
        let mean = g.iter().map(|&i| x[i]).sum::<f64>() / n;
        let var = g.iter().map(|&i| (x[i] - mean).powi(2)).sum::<f64>() / n;
        for &i in g {
            out[i] = (x[i] - mean) / (var + eps).sqrt();
        }
    }
    out
}

#[test]
fn norms_match_references() {
    let mut r = Rng(5);
    let (n, h, w, c) = (2, 3, 2, 6);
    let total = n * h * w * c;
    let xv: Vec<f64> = r.vals(total, 4.0).iter().map(|v| v + 1.5).collect();
    let x = arr(&xv, &[n, h, w, c]);
    let gamma = r.vals(c, 2.0);
    let beta = r.vals(c, 1.0);
    let idx = |s: usize, p: usize, ch: usize| (s * h * w + p) * c + ch;
    let affine = |y: Vec<f64>| -> Vec<f64> {
        y.iter()
            .enumerate()
            .map(|(i, v)| v * gamma[i % c] + beta[i % c])
            .collect()
    };

    // LayerNorm over the channels
    let mut ln = LayerNorm::with(&[c], 1e-5, true, true, DType::F64).unwrap();
    set(&mut ln, "weight", arr(&gamma, &[c]));
    set(&mut ln, "bias", arr(&beta, &[c]));
    let groups: Vec<Vec<usize>> = (0..n * h * w)
        .map(|p| (0..c).map(|ch| p * c + ch).collect())
        .collect();
    close(
        &f64s(&ln.forward(&x).unwrap()),
        &affine(standardize_ref(&xv, &groups, 1e-5)),
        1e-10,
        "LayerNorm",
    );
    // over two axes, f16 input: computed in f32, result f16
    let ln2 = LayerNorm::new(&[w, c]).unwrap();
    let y16 = ln2
        .forward(&ingot::astype(&x, DType::F16).unwrap())
        .unwrap();
    assert_eq!(y16.dtype(), DType::F16);
    let groups2: Vec<Vec<usize>> = (0..n * h)
        .map(|p| (0..w * c).map(|k| p * w * c + k).collect())
        .collect();
    let x16 = f64s(&ingot::astype(&x, DType::F16).unwrap());
    close(
        &f64s(&y16),
        &standardize_ref(&x16, &groups2, 1e-5),
        2e-3,
        "LayerNorm f16",
    );
    assert!(ln.forward(&arr(&xv[..10], &[2, 5])).is_err());

    // RMSNorm
    let mut rms = RMSNorm::with(c, 1e-6, true, DType::F64).unwrap();
    set(&mut rms, "weight", arr(&gamma, &[c]));
    let want: Vec<f64> = (0..total)
        .map(|i| {
            let p = i / c;
            let ms = (0..c).map(|ch| xv[p * c + ch].powi(2)).sum::<f64>() / c as f64;
            xv[i] / (ms + 1e-6).sqrt() * gamma[i % c]
        })
        .collect();
    close(&f64s(&rms.forward(&x).unwrap()), &want, 1e-10, "RMSNorm");

    // GroupNorm: 3 groups of 2 channels over every position of a sample
    let mut gn = GroupNorm::with(3, c, 1e-5, true, DType::F64).unwrap();
    set(&mut gn, "weight", arr(&gamma, &[c]));
    set(&mut gn, "bias", arr(&beta, &[c]));
    let mut groups = Vec::new();
    for s in 0..n {
        for g in 0..3 {
            groups.push(
                (0..h * w)
                    .flat_map(|p| (0..2).map(move |k| idx(s, p, g * 2 + k)))
                    .collect(),
            );
        }
    }
    close(
        &f64s(&gn.forward(&x).unwrap()),
        &affine(standardize_ref(&xv, &groups, 1e-5)),
        1e-10,
        "GroupNorm",
    );
    assert!(GroupNorm::new(4, 6).is_err());

    // InstanceNorm: per sample and channel over the positions
    let inn = InstanceNorm::new(c).unwrap();
    let groups: Vec<Vec<usize>> = (0..n)
        .flat_map(|s| (0..c).map(move |ch| (0..h * w).map(|p| idx(s, p, ch)).collect()))
        .collect();
    let x32 = ingot::astype(&x, DType::F32).unwrap();
    close(
        &f64s(&inn.forward(&x32).unwrap()),
        &standardize_ref(&xv, &groups, 1e-5),
        1e-5,
        "InstanceNorm",
    );
    assert!(inn.parameters().is_empty());
}

#[test]
fn batch_norm_trains_running_statistics_and_evaluates_with_them() {
    let mut r = Rng(9);
    let (n, l, c) = (4, 3, 5);
    let mut bn = BatchNorm::with(c, 1e-5, 0.1, true, true, DType::F64).unwrap();
    let gamma = r.vals(c, 2.0);
    set(&mut bn, "weight", arr(&gamma, &[c]));
    let names: Vec<String> = bn.parameters().into_keys().collect();
    assert_eq!(
        names,
        [
            "bias",
            "num_batches_tracked",
            "running_mean",
            "running_var",
            "weight"
        ]
    );
    assert_eq!(bn.trainable_parameters().len(), 2);
    let mut rm = vec![0.0; c];
    let mut rv = vec![1.0; c];
    for step in 0..2 {
        let xv: Vec<f64> = r
            .vals(n * l * c, 3.0)
            .iter()
            .map(|v| v + step as f64)
            .collect();
        let x = arr(&xv, &[n, l, c]);
        let y = f64s(&bn.forward(&x).unwrap());
        let groups: Vec<Vec<usize>> = (0..c)
            .map(|ch| (0..n * l).map(|p| p * c + ch).collect())
            .collect();
        let z = standardize_ref(&xv, &groups, 1e-5);
        let want: Vec<f64> = z
            .iter()
            .enumerate()
            .map(|(i, v)| v * gamma[i % c])
            .collect();
        close(&y, &want, 1e-10, "BatchNorm train");
        let m = (n * l) as f64;
        for ch in 0..c {
            let mean = groups[ch].iter().map(|&i| xv[i]).sum::<f64>() / m;
            let var = groups[ch]
                .iter()
                .map(|&i| (xv[i] - mean).powi(2))
                .sum::<f64>()
                / (m - 1.0);
            rm[ch] = 0.9 * rm[ch] + 0.1 * mean;
            rv[ch] = 0.9 * rv[ch] + 0.1 * var;
        }
    }
    let (gm, gv) = bn.running_stats().unwrap();
    close(&f64s(&gm), &rm, 1e-12, "running_mean");
    close(&f64s(&gv), &rv, 1e-12, "running_var");
    assert_eq!(
        bn.parameters()["num_batches_tracked"]
            .item::<i64>()
            .unwrap(),
        2
    );

    // eval mode: the running statistics, no update
    bn.eval_mode();
    let xv = r.vals(n * l * c, 3.0);
    let y = f64s(&bn.forward(&arr(&xv, &[n, l, c])).unwrap());
    let want: Vec<f64> = (0..xv.len())
        .map(|i| (xv[i] - rm[i % c]) / (rv[i % c] + 1e-5).sqrt() * gamma[i % c])
        .collect();
    close(&y, &want, 1e-10, "BatchNorm eval");
    assert_eq!(
        bn.parameters()["num_batches_tracked"]
            .item::<i64>()
            .unwrap(),
        2
    );

    // a training step through value_and_grad moves the statistics once
    bn.train();
    let x = arr(&r.vals(n * l * c, 1.0), &[n, l, c]);
    let (_, g) = value_and_grad(&mut bn, |m| {
        ingot::sum(&ingot::square(&m.forward(&x)?)?, None, false)
    })
    .unwrap();
    assert_eq!(g.len(), 2);
    assert_eq!(
        bn.parameters()["num_batches_tracked"]
            .item::<i64>()
            .unwrap(),
        3
    );
    let e = bn
        .forward(&arr(&[1.0, 2.0], &[1, 2]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("BatchNorm") && e.contains("[1, 2]"), "{e}");
}

#[test]
fn dropout_drops_scales_and_is_identity_in_eval() {
    let x = ingot::ones(&[200, 100], DType::F32).unwrap();
    let mut d = Dropout::new(0.3).unwrap();
    rng::seed(42);
    let y = f64s(&d.forward(&x).unwrap());
    let zeros = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
    assert!((zeros - 0.3).abs() < 0.01, "dropped fraction {zeros}");
    let kept = 1.0f32 / 0.7;
    assert!(y.iter().all(|&v| v == 0.0 || v == kept as f64));
    // the same seed gives the same mask
    rng::seed(42);
    assert_eq!(f64s(&d.forward(&x).unwrap()), y);
    d.eval_mode();
    assert_eq!(f64s(&d.forward(&x).unwrap()), f64s(&x));

    // whole channels of (N, H, W, C)
    let d2 = Dropout::channels_2d(0.5).unwrap();
    let x = ingot::ones(&[4, 3, 3, 16], DType::F32).unwrap();
    let y = f64s(&d2.forward(&x).unwrap());
    let mut dropped = 0;
    for s in 0..4 {
        for ch in 0..16 {
            let vals: Vec<f64> = (0..9).map(|p| y[(s * 9 + p) * 16 + ch]).collect();
            assert!(
                vals.iter().all(|&v| v == vals[0]),
                "channel {s},{ch} mixed: {vals:?}"
            );
            dropped += (vals[0] == 0.0) as usize;
        }
    }
    assert!(
        dropped > 10 && dropped < 54,
        "{dropped} of 64 channels dropped"
    );
    assert!(d2
        .forward(&ingot::ones(&[4, 16], DType::F32).unwrap())
        .is_err());
    assert!(Dropout::new(1.0).is_err());
    assert!(Dropout::new(-0.1).is_err());
}
