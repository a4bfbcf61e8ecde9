//! Convolution, transposed convolution, pooling and upsampling layers against plain f64
//! references written from the definitions (PyTorch's semantics, channels-last layout).

mod common;

use common::{assert_close, to_f64, Rng};
use ingot::{Array, DType, Padding};
use ingot_nn::{
    conv_transpose_weight_from_torch, conv_transpose_weight_to_torch, conv_weight_from_torch,
    conv_weight_to_torch, rng, value_and_grad, AvgPool1d, AvgPool2d, AvgPool3d, Conv1d, Conv2d,
    Conv3d, ConvOptions, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, MaxPool1d, MaxPool2d,
    MaxPool3d, Module, ModuleExt, PaddingMode, Unary, Upsample, UpsampleMode,
};
use std::collections::BTreeMap;

fn arr(v: &[f64], shape: &[usize]) -> Array {
    Array::from_slice(v, shape).unwrap()
}

fn rand(rng: &mut Rng, shape: &[usize]) -> (Array, Vec<f64>) {
    let v = rng.normals(shape.iter().product(), 1.0);
    (arr(&v, shape), v)
}

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &n)| acc * n + i)
}

fn set(m: &mut impl Module, name: &str, a: Array) {
    let mut one = BTreeMap::new();
    one.insert(name.to_string(), a);
    m.update(&one).unwrap();
}

// ---- convolution reference ----------------------------------------------------------------

#[derive(Clone)]
struct Cfg {
    stride: Vec<usize>,
    lo: Vec<usize>,
    hi: Vec<usize>,
    dil: Vec<usize>,
    groups: usize,
    mode: PaddingMode,
}

/// Index `p` of an axis of `n` cells under a padding mode (None: a zero).
fn fetch_pos(p: isize, n: usize, mode: PaddingMode) -> Option<usize> {
    let n = n as isize;
    if (0..n).contains(&p) {
        return Some(p as usize);
    }
    match mode {
        PaddingMode::Zeros => None,
        PaddingMode::Reflect => Some(if p < 0 { -p } else { 2 * (n - 1) - p } as usize),
        PaddingMode::Replicate => Some(p.clamp(0, n - 1) as usize),
        PaddingMode::Circular => Some(p.rem_euclid(n) as usize),
    }
}

/// Cross-correlation by its definition: x `(B, *S, Cin)`, PyTorch weight `(Cout, Cin/g,
/// *K)`; returns `(B, *S', Cout)`.
fn conv_ref(
    x: &[f64],
    xs: &[usize],
    wt: &[f64],
    ws: &[usize],
    bias: Option<&[f64]>,
    c: &Cfg,
) -> (Vec<f64>, Vec<usize>) {
    let nd = xs.len() - 2;
    let (b, cin) = (xs[0], xs[nd + 1]);
    let (cout, cig) = (ws[0], ws[1]);
    assert_eq!(cig * c.groups, cin);
    let k = &ws[2..];
    let mut os = vec![b];
    for i in 0..nd {
        let span = c.dil[i] * (k[i] - 1) + 1;
        os.push((xs[i + 1] + c.lo[i] + c.hi[i] - span) / c.stride[i] + 1);
    }
    os.push(cout);
    let n: usize = os.iter().product();
    let kn: usize = k.iter().product();
    let mut out = vec![0.0; n];
    for (oi, o) in out.iter_mut().enumerate() {
        let idx = unravel(oi, &os);
        let co = idx[nd + 1];
        let g = co / (cout / c.groups);
        let mut s = bias.map_or(0.0, |b| b[co]);
        for kf in 0..kn {
            let kk = unravel(kf, k);
            let mut xi = vec![idx[0]];
            let mut inside = true;
            for i in 0..nd {
                let p = (idx[i + 1] * c.stride[i] + kk[i] * c.dil[i]) as isize - c.lo[i] as isize;
                match fetch_pos(p, xs[i + 1], c.mode) {
                    Some(q) => xi.push(q),
                    None => inside = false,
                }
            }
            if !inside {
                continue;
            }
            for ci in 0..cig {
                let mut xfull = xi.clone();
                xfull.push(g * cig + ci);
                let mut widx = vec![co, ci];
                widx.extend_from_slice(&kk);
                s += x[ravel(&xfull, xs)] * wt[ravel(&widx, ws)];
            }
        }
        *o = s;
    }
    (out, os)
}

/// Transposed convolution by its definition (the scatter): x `(B, *S, Cin)`, PyTorch weight
/// `(Cin, Cout/g, *K)`; `out[o = i*s + k*d - p] += x[i] * w`.
fn conv_transpose_ref(
    x: &[f64],
    xs: &[usize],
    wt: &[f64],
    ws: &[usize],
    bias: Option<&[f64]>,
    c: &Cfg,
    outpad: &[usize],
) -> (Vec<f64>, Vec<usize>) {
    let nd = xs.len() - 2;
    let (b, cin) = (xs[0], xs[nd + 1]);
    let (cog, cig) = (ws[1], cin / c.groups);
    let cout = cog * c.groups;
    let k = &ws[2..];
    let mut os = vec![b];
    for i in 0..nd {
        os.push(
            (xs[i + 1] - 1) * c.stride[i] + c.dil[i] * (k[i] - 1) + outpad[i] + 1 - 2 * c.lo[i],
        );
    }
    os.push(cout);
    let mut out = vec![0.0; os.iter().product()];
    if let Some(bv) = bias {
        for (i, o) in out.iter_mut().enumerate() {
            *o = bv[i % cout];
        }
    }
    let kn: usize = k.iter().product();
    for xi in 0..x.len() {
        let idx = unravel(xi, xs);
        let ci = idx[nd + 1];
        let g = ci / cig;
        for kf in 0..kn {
            let kk = unravel(kf, k);
            let mut oidx = vec![idx[0]];
            let mut inside = true;
            for i in 0..nd {
                let o = (idx[i + 1] * c.stride[i] + kk[i] * c.dil[i]) as isize - c.lo[i] as isize;
                if o < 0 || o >= os[i + 1] as isize {
                    inside = false;
                }
                oidx.push(o.max(0) as usize);
            }
            if !inside {
                continue;
            }
            for co in 0..cog {
                let mut full = oidx.clone();
                full.push(g * cog + co);
                let mut widx = vec![ci, co];
                widx.extend_from_slice(&kk);
                out[ravel(&full, &os)] += x[xi] * wt[ravel(&widx, ws)];
            }
        }
    }
    (out, os)
}

fn options(c: &Cfg, bias: bool) -> ConvOptions {
    ConvOptions::default()
        .stride(c.stride.clone())
        .padding(c.lo.clone())
        .dilation(c.dil.clone())
        .groups(c.groups)
        .bias(bias)
        .padding_mode(c.mode)
}

fn cfg(nd: usize, stride: usize, pad: usize, dil: usize, groups: usize) -> Cfg {
    Cfg {
        stride: vec![stride; nd],
        lo: vec![pad; nd],
        hi: vec![pad; nd],
        dil: vec![dil; nd],
        groups,
        mode: PaddingMode::Zeros,
    }
}

/// A conv layer built from a random PyTorch-layout weight, run against the reference.
fn check_conv(seed: u64, xs: &[usize], cout: usize, k: &[usize], c: &Cfg, bias: bool) {
    let mut r = Rng::new(seed);
    let nd = xs.len() - 2;
    let cin = xs[nd + 1];
    let (x, xv) = rand(&mut r, xs);
    let mut ws = vec![cout, cin / c.groups];
    ws.extend_from_slice(k);
    let (w, wv) = rand(&mut r, &ws);
    let (b, bv) = rand(&mut r, &[cout]);
    let (want, os) = conv_ref(&xv, xs, &wv, &ws, bias.then_some(&bv[..]), c);
    let b = bias.then_some(b);
    let opts = options(c, bias);
    let y = match nd {
        1 => Conv1d::from_torch(&w, b, &opts).unwrap().forward(&x),
        2 => Conv2d::from_torch(&w, b, &opts).unwrap().forward(&x),
        _ => Conv3d::from_torch(&w, b, &opts).unwrap().forward(&x),
    }
    .unwrap();
    assert_eq!(y.shape(), os, "conv{nd}d shape");
    assert_close(
        &to_f64(&y),
        &want,
        1e-10,
        1e-10,
        &format!("conv{nd}d {xs:?} k {k:?}"),
    );
}

#[test]
fn conv_layers_match_definition() {
    check_conv(1, &[2, 9, 4], 6, &[3], &cfg(1, 1, 0, 1, 1), true);
    check_conv(2, &[2, 11, 4], 6, &[3], &cfg(1, 2, 2, 2, 2), true);
    check_conv(3, &[1, 10, 6], 3, &[4], &cfg(1, 3, 1, 1, 3), false);
    check_conv(4, &[2, 6, 7, 4], 6, &[3, 2], &cfg(2, 1, 1, 1, 1), true);
    check_conv(5, &[1, 9, 8, 4], 4, &[3, 3], &cfg(2, 2, 1, 2, 4), true);
    let mut mixed = cfg(2, 1, 0, 1, 2);
    mixed.stride = vec![2, 1];
    mixed.lo = vec![0, 2];
    mixed.hi = vec![0, 2];
    mixed.dil = vec![1, 2];
    check_conv(6, &[2, 7, 6, 2], 4, &[2, 3], &mixed, false);
    check_conv(
        7,
        &[1, 5, 4, 6, 2],
        3,
        &[2, 3, 2],
        &cfg(3, 1, 1, 1, 1),
        true,
    );
    check_conv(
        8,
        &[2, 6, 5, 5, 4],
        4,
        &[3, 2, 2],
        &cfg(3, 2, 1, 1, 2),
        true,
    );
}

#[test]
fn conv_padding_modes_and_same() {
    for (i, mode) in [
        PaddingMode::Reflect,
        PaddingMode::Replicate,
        PaddingMode::Circular,
        PaddingMode::Zeros,
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = cfg(2, 1, 2, 1, 1);
        c.mode = mode;
        check_conv(20 + i as u64, &[2, 5, 6, 3], 4, &[3, 3], &c, true);
        let mut c1 = cfg(1, 2, 1, 2, 1);
        c1.mode = mode;
        check_conv(30 + i as u64, &[1, 7, 2], 3, &[2], &c1, true);
    }
    // padding="same" (stride 1): dilation * (k - 1) cells, the odd one at the end
    let mut r = Rng::new(40);
    let xs = [1, 6, 5, 2];
    let (x, xv) = rand(&mut r, &xs);
    let ws = [3, 2, 2, 3];
    let (w, wv) = rand(&mut r, &ws);
    let mut c = cfg(2, 1, 0, 1, 1);
    c.dil = vec![2, 1];
    c.lo = vec![1, 1];
    c.hi = vec![1, 1];
    for mode in [PaddingMode::Zeros, PaddingMode::Replicate] {
        c.mode = mode;
        let (want, os) = conv_ref(&xv, &xs, &wv, &ws, None, &c);
        let opts = ConvOptions::default()
            .padding(Padding::Same)
            .dilation([2, 1])
            .bias(false)
            .padding_mode(mode);
        let layer = Conv2d::from_torch(&w, None, &opts).unwrap();
        let y = layer.forward(&x).unwrap();
        assert_eq!(y.shape(), os);
        assert_close(
            &to_f64(&y),
            &want,
            1e-10,
            1e-10,
            &format!("same padding {mode:?}"),
        );
    }
    // and odd total padding: k=4 pads (1, 2); "same" parsed as a config file would give it
    let ws = [2, 2, 4, 1];
    let (w, wv) = rand(&mut r, &ws);
    let mut c = cfg(2, 1, 0, 1, 1);
    c.lo = vec![1, 0];
    c.hi = vec![2, 0];
    let (want, _) = conv_ref(&xv, &xs, &wv, &ws, None, &c);
    let same = Padding::parse("same").unwrap();
    let layer =
        Conv2d::from_torch(&w, None, &ConvOptions::default().padding(same).bias(false)).unwrap();
    assert_close(
        &to_f64(&layer.forward(&x).unwrap()),
        &want,
        1e-10,
        1e-10,
        "same, even kernel",
    );
}

#[test]
fn conv_stored_layout_update_and_unbatched() {
    // The stored weight is (out, *kernel, in/groups): permuted here by hand, set via update.
    let mut r = Rng::new(50);
    let xs = [2, 5, 6, 4];
    let (x, xv) = rand(&mut r, &xs);
    let ws = [6, 2, 3, 2]; // torch (out, in/g, kh, kw), groups 2
    let (_, wv) = rand(&mut r, &ws);
    let (b, bv) = rand(&mut r, &[6]);
    let mut stored = vec![0.0; wv.len()];
    let ss = [6, 3, 2, 2];
    for o in 0..6 {
        for i in 0..2 {
            for kh in 0..3 {
                for kw in 0..2 {
                    stored[ravel(&[o, kh, kw, i], &ss)] = wv[ravel(&[o, i, kh, kw], &ws)];
                }
            }
        }
    }
    let c = cfg(2, 1, 1, 1, 2);
    let mut layer =
        Conv2d::with(4, 6, [3, 2], &options(&c, true), &rng::key(1), DType::F64).unwrap();
    set(&mut layer, "weight", arr(&stored, &ss));
    set(&mut layer, "bias", b);
    let (want, _) = conv_ref(&xv, &xs, &wv, &ws, Some(&bv), &c);
    assert_close(
        &to_f64(&layer.forward(&x).unwrap()),
        &want,
        1e-10,
        1e-10,
        "stored layout",
    );
    // the conversions agree with the hand permutation and go back
    let tw = arr(&wv, &ws);
    assert_eq!(to_f64(&conv_weight_from_torch(&tw).unwrap()), stored);
    assert_eq!(to_f64(&layer.torch_weight().unwrap()), wv);
    assert_eq!(
        to_f64(&conv_weight_to_torch(&arr(&stored, &ss)).unwrap()),
        wv
    );
    // unbatched (*spatial, C) gives the batch's first row
    let x0 = ingot::take(&x, &Array::scalar(0i32), Some(0)).unwrap();
    let y0 = layer.forward(&x0).unwrap();
    let n0 = want.len() / 2;
    assert_eq!(y0.shape(), &[5, 7, 6]);
    assert_close(&to_f64(&y0), &want[..n0], 1e-10, 1e-10, "unbatched");
}

fn check_conv_transpose(
    seed: u64,
    xs: &[usize],
    cout: usize,
    k: &[usize],
    c: &Cfg,
    outpad: &[usize],
) {
    let mut r = Rng::new(seed);
    let nd = xs.len() - 2;
    let cin = xs[nd + 1];
    let (x, xv) = rand(&mut r, xs);
    let mut ws = vec![cin, cout / c.groups];
    ws.extend_from_slice(k);
    let (w, wv) = rand(&mut r, &ws);
    let (b, bv) = rand(&mut r, &[cout]);
    let (want, os) = conv_transpose_ref(&xv, xs, &wv, &ws, Some(&bv), c, outpad);
    let opts = options(c, true).output_padding(outpad.to_vec());
    let what = format!("conv_transpose{nd}d {xs:?} k {k:?}");
    let (y, y2) = match nd {
        1 => {
            let l = ConvTranspose1d::from_torch(&w, Some(b), &opts).unwrap();
            (l.forward(&x), l.forward_with_output_size(&x, &os[1..2]))
        }
        2 => {
            let l = ConvTranspose2d::from_torch(&w, Some(b), &opts).unwrap();
            assert_eq!(
                to_f64(&l.torch_weight().unwrap()),
                wv,
                "{what}: torch_weight"
            );
            (l.forward(&x), l.forward_with_output_size(&x, &os[1..3]))
        }
        _ => {
            let l = ConvTranspose3d::from_torch(&w, Some(b), &opts).unwrap();
            (l.forward(&x), l.forward_with_output_size(&x, &os[1..4]))
        }
    };
    let (y, y2) = (y.unwrap(), y2.unwrap());
    assert_eq!(y.shape(), os, "{what}: shape");
    assert_close(&to_f64(&y), &want, 1e-10, 1e-10, &what);
    assert_eq!(to_f64(&y2), to_f64(&y), "{what}: output size");
}

#[test]
fn conv_transpose_layers_match_definition() {
    check_conv_transpose(60, &[2, 5, 4], 6, &[3], &cfg(1, 1, 0, 1, 1), &[0]);
    check_conv_transpose(61, &[2, 4, 4], 6, &[3], &cfg(1, 2, 1, 1, 2), &[1]);
    check_conv_transpose(62, &[1, 5, 3], 3, &[2], &cfg(1, 3, 0, 2, 1), &[2]);
    check_conv_transpose(63, &[2, 3, 4, 4], 2, &[3, 2], &cfg(2, 2, 1, 1, 2), &[1, 0]);
    let mut mixed = cfg(2, 1, 0, 1, 1);
    mixed.stride = vec![1, 2];
    mixed.lo = vec![1, 0];
    mixed.hi = vec![1, 0];
    mixed.dil = vec![2, 1];
    check_conv_transpose(64, &[1, 4, 3, 3], 4, &[2, 3], &mixed, &[1, 1]);
    check_conv_transpose(
        65,
        &[1, 3, 2, 3, 2],
        4,
        &[2, 2, 3],
        &cfg(3, 2, 1, 1, 2),
        &[0, 1, 0],
    );
}

#[test]
fn conv_transpose_weight_conversion_round_trips() {
    let mut r = Rng::new(70);
    // torch (in=6, out/g=2, k=3, k=2), groups 3: stored (out=6, 3, 2, in/g=2)
    let (w, wv) = rand(&mut r, &[6, 2, 3, 2]);
    let s = conv_transpose_weight_from_torch(&w, 3).unwrap();
    assert_eq!(s.shape(), &[6, 3, 2, 2]);
    let sv = to_f64(&s);
    for g in 0..3 {
        for o in 0..2 {
            for kh in 0..3 {
                for kw in 0..2 {
                    for i in 0..2 {
                        assert_eq!(
                            sv[ravel(&[g * 2 + o, kh, kw, i], &[6, 3, 2, 2])],
                            wv[ravel(&[g * 2 + i, o, kh, kw], &[6, 2, 3, 2])]
                        );
                    }
                }
            }
        }
    }
    assert_eq!(to_f64(&conv_transpose_weight_to_torch(&s, 3).unwrap()), wv);
    assert!(conv_transpose_weight_from_torch(&w, 4).is_err());
}

#[test]
fn conv_parameter_names_shapes_and_init() {
    let opts = ConvOptions::default().groups(2);
    let c = Conv2d::with(4, 6, [3, 2], &opts, &rng::key(5), DType::F32).unwrap();
    let p = c.parameters();
    assert_eq!(p.keys().collect::<Vec<_>>(), ["bias", "weight"]);
    assert_eq!(p["weight"].shape(), &[6, 3, 2, 2]);
    assert_eq!(p["bias"].shape(), &[6]);
    let bound = 1.0 / ((2 * 3 * 2) as f64).sqrt();
    for (name, a) in &p {
        let v = to_f64(a);
        assert!(v.iter().all(|x| x.abs() <= bound), "{name} within U(-b, b)");
        assert!(
            v.iter().any(|x| x.abs() > bound / 2.0),
            "{name} spreads over the range"
        );
    }
    let c1 = Conv1d::with(
        3,
        5,
        4,
        &ConvOptions::default().bias(false),
        &rng::key(6),
        DType::F64,
    )
    .unwrap();
    assert_eq!(c1.parameters().keys().collect::<Vec<_>>(), ["weight"]);
    assert_eq!(c1.weight.value.shape(), &[5, 4, 3]);
    assert_eq!(c1.weight.value.dtype(), DType::F64);
    let c3 = Conv3d::new(2, 4, [1, 2, 3]).unwrap();
    assert_eq!(c3.weight.value.shape(), &[4, 1, 2, 3, 2]);
    // transposed: stored (out, *k, in/g), fan_in = out/g * prod(k) as PyTorch computes it
    let t = ConvTranspose2d::with(
        6,
        4,
        3,
        &ConvOptions::default().groups(2),
        &rng::key(7),
        DType::F32,
    )
    .unwrap();
    assert_eq!(t.weight.value.shape(), &[4, 3, 3, 3]);
    assert_eq!(t.torch_weight().unwrap().shape(), &[6, 2, 3, 3]);
    let bound = 1.0 / ((2 * 9) as f64).sqrt();
    for (name, a) in t.parameters() {
        let v = to_f64(&a);
        assert!(v.iter().all(|x| x.abs() <= bound), "{name} within U(-b, b)");
        assert!(v.iter().any(|x| x.abs() > bound / 2.0), "{name} spreads");
    }
    assert_eq!(
        ConvTranspose1d::new(2, 3, 2).unwrap().weight.value.shape(),
        &[3, 2, 2]
    );
    assert_eq!(
        ConvTranspose3d::new(2, 3, 2).unwrap().weight.value.shape(),
        &[3, 2, 2, 2, 2]
    );
}

#[test]
fn conv_gradients_match_finite_differences() {
    let mut r = Rng::new(80);
    let xs = [2, 5, 4, 4];
    let (x, _) = rand(&mut r, &xs);
    let opts = ConvOptions::default()
        .stride([2, 1])
        .padding(1)
        .dilation([1, 2])
        .groups(2);
    let mut layer = Conv2d::with(4, 4, [2, 2], &opts, &rng::key(8), DType::F64).unwrap();
    let y0 = layer.forward(&x).unwrap();
    let (cot, _) = rand(&mut r, y0.shape());
    let loss = move |m: &Conv2d| -> ingot::Result<Array> {
        ingot::sum(&ingot::multiply(&m.forward(&x)?, &cot)?, None, false)
    };
    let (_, grads) = value_and_grad(&mut layer, &loss).unwrap();
    let params = layer.parameters();
    for (name, p) in &params {
        let v = to_f64(p);
        let shape = p.shape().to_vec();
        let h = 1e-6;
        let fd: Vec<f64> = (0..v.len())
            .map(|i| {
                let at = |d: f64| {
                    let mut m = layer.clone();
                    let mut w = v.clone();
                    w[i] += d;
                    set(&mut m, name, arr(&w, &shape));
                    loss(&m).unwrap().item::<f64>().unwrap()
                };
                (at(h) - at(-h)) / (2.0 * h)
            })
            .collect();
        assert_close(
            &to_f64(&grads[name]),
            &fd,
            1e-6,
            1e-7,
            &format!("d loss / d {name}"),
        );
    }
    // and a transposed conv's weight
    let mut t = ConvTranspose1d::with(
        4,
        2,
        3,
        &ConvOptions::default()
            .stride(2)
            .padding(1)
            .output_padding(1),
        &rng::key(9),
        DType::F64,
    )
    .unwrap();
    let (x, _) = rand(&mut r, &[2, 4, 4]);
    let y0 = t.forward(&x).unwrap();
    let (cot, _) = rand(&mut r, y0.shape());
    let loss = move |m: &ConvTranspose1d| -> ingot::Result<Array> {
        ingot::sum(&ingot::multiply(&m.forward(&x)?, &cot)?, None, false)
    };
    let (_, grads) = value_and_grad(&mut t, &loss).unwrap();
    let v = to_f64(&t.weight.value);
    let shape = t.weight.value.shape().to_vec();
    let fd: Vec<f64> = (0..v.len())
        .map(|i| {
            let at = |d: f64| {
                let mut m = t.clone();
                let mut w = v.clone();
                w[i] += d;
                set(&mut m, "weight", arr(&w, &shape));
                loss(&m).unwrap().item::<f64>().unwrap()
            };
            (at(1e-6) - at(-1e-6)) / 2e-6
        })
        .collect();
    assert_close(
        &to_f64(&grads["weight"]),
        &fd,
        1e-6,
        1e-7,
        "conv transpose weight grad",
    );
}

fn err_text<T>(r: ingot::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn conv_errors_name_layer_and_shapes() {
    let c = Conv2d::with(4, 6, 3, &ConvOptions::default(), &rng::key(1), DType::F32).unwrap();
    let x = ingot::zeros(&[2, 8, 8, 3], DType::F32).unwrap();
    let e = err_text(c.forward(&x));
    assert!(
        e.contains("Conv2d") && e.contains("[2, 8, 8, 3]") && e.contains("4"),
        "{e}"
    );
    let e = err_text(c.forward(&ingot::zeros(&[8, 4], DType::F32).unwrap()));
    assert!(e.contains("Conv2d") && e.contains("[8, 4]"), "{e}");
    // kernel larger than the input: the core's message, relabelled with the layer
    let e = err_text(c.forward(&ingot::zeros(&[1, 2, 2, 4], DType::F32).unwrap()));
    assert!(e.contains("Conv2d") && e.contains("[1, 2, 2, 4]"), "{e}");
    let e = err_text(c.forward(&ingot::zeros(&[1, 5, 5, 4], DType::I32).unwrap()));
    assert!(e.contains("Conv2d") && e.contains("int32"), "{e}");
    let e = err_text(Conv1d::with(
        4,
        6,
        3,
        &ConvOptions::default().groups(4).bias(false),
        &rng::key(1),
        DType::F32,
    ));
    assert!(e.contains("Conv1d") && e.contains("groups=4"), "{e}");
    let e = err_text(Conv2d::with(
        4,
        6,
        [3, 3, 3],
        &ConvOptions::default(),
        &rng::key(1),
        DType::F32,
    ));
    assert!(e.contains("Conv2d") && e.contains("kernel_size"), "{e}");
    let e = err_text(Conv2d::with(
        4,
        6,
        3,
        &ConvOptions::default().padding(Padding::Same).stride(2),
        &rng::key(1),
        DType::F32,
    ));
    assert!(e.contains("Conv2d") && e.contains("same"), "{e}");
    let e = err_text(Conv2d::with(
        4,
        6,
        3,
        &ConvOptions::default(),
        &rng::key(1),
        DType::I32,
    ));
    assert!(e.contains("Conv2d") && e.contains("int32"), "{e}");
    let e = err_text(Conv2d::from_arrays(
        ingot::zeros(&[6, 3, 3], DType::F32).unwrap(),
        None,
        &ConvOptions::default(),
    ));
    assert!(e.contains("Conv2d") && e.contains("[6, 3, 3]"), "{e}");
    let e = err_text(Conv2d::from_arrays(
        ingot::zeros(&[6, 3, 3, 2], DType::F32).unwrap(),
        Some(ingot::zeros(&[5], DType::F32).unwrap()),
        &ConvOptions::default(),
    ));
    assert!(
        e.contains("Conv2d") && e.contains("[5]") && e.contains("[6, 3, 3, 2]"),
        "{e}"
    );
    let e = err_text(Conv2d::from_torch_weight(
        &ingot::zeros(&[6, 3, 3], DType::F32).unwrap(),
    ));
    assert!(e.contains("Conv2d") && e.contains("[6, 3, 3]"), "{e}");
    // reflect padding wider than the input
    let r = Conv1d::with(
        1,
        1,
        3,
        &ConvOptions::default()
            .padding(4)
            .padding_mode(PaddingMode::Reflect),
        &rng::key(1),
        DType::F32,
    )
    .unwrap();
    let e = err_text(r.forward(&ingot::zeros(&[1, 3, 1], DType::F32).unwrap()));
    assert!(e.contains("Conv1d") && e.contains("[1, 3, 1]"), "{e}");
    let t =
        ConvTranspose2d::with(4, 2, 3, &ConvOptions::default(), &rng::key(1), DType::F32).unwrap();
    let e = err_text(t.forward(&ingot::zeros(&[1, 4, 4, 2], DType::F32).unwrap()));
    assert!(
        e.contains("ConvTranspose2d") && e.contains("[1, 4, 4, 2]"),
        "{e}"
    );
    let e = err_text(ConvTranspose1d::with(
        2,
        2,
        3,
        &ConvOptions::default().output_padding(1),
        &rng::key(1),
        DType::F32,
    ));
    assert!(
        e.contains("ConvTranspose1d") && e.contains("output_padding"),
        "{e}"
    );
    let e = err_text(
        t.forward_with_output_size(&ingot::zeros(&[1, 4, 4, 4], DType::F32).unwrap(), &[9, 6]),
    );
    assert!(e.contains("ConvTranspose2d") && e.contains("[9, 6]"), "{e}");
}

// ---- pooling ------------------------------------------------------------------------------

/// Pooling windows by definition: max ignores padded cells; avg divides by the window
/// clipped to the padded input (count_include_pad) or to the real cells.
fn pool_ref(
    x: &[f64],
    xs: &[usize],
    k: &[usize],
    s: &[usize],
    p: &[usize],
    max: bool,
    cip: bool,
) -> (Vec<f64>, Vec<usize>) {
    let nd = xs.len() - 2;
    let mut os = vec![xs[0]];
    for i in 0..nd {
        os.push((xs[i + 1] + 2 * p[i] - k[i]) / s[i] + 1);
    }
    os.push(xs[nd + 1]);
    let kn: usize = k.iter().product();
    let out = (0..os.iter().product())
        .map(|oi| {
            let idx = unravel(oi, &os);
            let (mut best, mut sum, mut real, mut padded) = (f64::NEG_INFINITY, 0.0, 0, 0);
            for kf in 0..kn {
                let kk = unravel(kf, k);
                let mut xi = vec![idx[0]];
                let mut inside = true;
                let mut in_padded = true;
                for i in 0..nd {
                    let q = (idx[i + 1] * s[i] + kk[i]) as isize - p[i] as isize;
                    if q < 0 || q >= xs[i + 1] as isize {
                        inside = false;
                    }
                    if q >= (xs[i + 1] + p[i]) as isize {
                        in_padded = false;
                    }
                    xi.push(q.max(0) as usize);
                }
                if in_padded {
                    padded += 1;
                }
                if inside {
                    xi.push(idx[nd + 1]);
                    let v = x[ravel(&xi, xs)];
                    best = best.max(v);
                    sum += v;
                    real += 1;
                }
            }
            if max {
                best
            } else {
                sum / if cip { padded } else { real } as f64
            }
        })
        .collect();
    (out, os)
}

#[test]
fn pooling_layers_match_windows() {
    let mut r = Rng::new(90);
    let cases: &[(&[usize], &[usize], Option<&[usize]>, &[usize])] = &[
        (&[2, 9, 3], &[3], None, &[0]),
        (&[2, 10, 2], &[4], Some(&[3]), &[2]),
        (&[2, 7, 6, 3], &[3, 2], None, &[1, 1]),
        (&[1, 8, 9, 2], &[3, 3], Some(&[2, 1]), &[1, 0]),
        (&[1, 5, 6, 4, 2], &[2, 3, 2], Some(&[1, 2, 2]), &[1, 1, 0]),
    ];
    for (ci, &(xs, k, s, p)) in cases.iter().enumerate() {
        let (x, xv) = rand(&mut r, xs);
        let st = s.unwrap_or(k);
        let (wmax, os) = pool_ref(&xv, xs, k, st, p, true, false);
        let nd = xs.len() - 2;
        let sv = s.map(|s| s.to_vec());
        let y = match nd {
            1 => MaxPool1d::with(k.to_vec(), sv.clone(), p.to_vec())
                .unwrap()
                .forward(&x),
            2 => MaxPool2d::with(k.to_vec(), sv.clone(), p.to_vec())
                .unwrap()
                .forward(&x),
            _ => MaxPool3d::with(k.to_vec(), sv.clone(), p.to_vec())
                .unwrap()
                .forward(&x),
        }
        .unwrap();
        assert_eq!(y.shape(), os, "case {ci}");
        assert_close(&to_f64(&y), &wmax, 0.0, 0.0, &format!("max pool case {ci}"));
        for cip in [true, false] {
            let (want, _) = pool_ref(&xv, xs, k, st, p, false, cip);
            let y = match nd {
                1 => AvgPool1d::with(k.to_vec(), sv.clone(), p.to_vec(), cip)
                    .unwrap()
                    .forward(&x),
                2 => AvgPool2d::with(k.to_vec(), sv.clone(), p.to_vec(), cip)
                    .unwrap()
                    .forward(&x),
                _ => AvgPool3d::with(k.to_vec(), sv.clone(), p.to_vec(), cip)
                    .unwrap()
                    .forward(&x),
            }
            .unwrap();
            assert_close(
                &to_f64(&y),
                &want,
                1e-12,
                1e-12,
                &format!("avg pool case {ci} cip {cip}"),
            );
        }
    }
    // defaults: stride = kernel, no padding; unbatched input; no parameters
    let m = MaxPool2d::new(2).unwrap();
    assert_eq!(m.stride, vec![2, 2]);
    assert!(m.parameters().is_empty());
    let (x, xv) = rand(&mut r, &[4, 6, 3]);
    let y = m.forward(&x).unwrap();
    let (want, _) = pool_ref(&xv, &[1, 4, 6, 3], &[2, 2], &[2, 2], &[0, 0], true, false);
    assert_eq!(y.shape(), &[2, 3, 3]);
    assert_close(&to_f64(&y), &want, 0.0, 0.0, "unbatched max pool");
    let a = AvgPool1d::new(3).unwrap();
    assert!(a.count_include_pad && a.parameters().is_empty());
}

#[test]
fn pooling_errors_name_layer_and_shapes() {
    let e = err_text(
        MaxPool2d::new(2)
            .unwrap()
            .forward(&ingot::zeros(&[5, 4], DType::F32).unwrap()),
    );
    assert!(e.contains("MaxPool2d") && e.contains("[5, 4]"), "{e}");
    let e = err_text(AvgPool1d::with(2, Some(1), 2, true));
    assert!(e.contains("AvgPool1d") && e.contains("padding"), "{e}");
    let e = err_text(AvgPool3d::new([2, 2]));
    assert!(e.contains("AvgPool3d") && e.contains("kernel_size"), "{e}");
    let e = err_text(
        MaxPool1d::new(5)
            .unwrap()
            .forward(&ingot::zeros(&[1, 3, 2], DType::F32).unwrap()),
    );
    assert!(e.contains("MaxPool1d") && e.contains("[1, 3, 2]"), "{e}");
}

// ---- upsampling ---------------------------------------------------------------------------

fn cc1(x: f64) -> f64 {
    let a = -0.75;
    ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
}
fn cc2(x: f64) -> f64 {
    let a = -0.75;
    ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
}

/// PyTorch's source taps of output cell `d` on one axis (UpSample.h's formulas).
fn taps(
    mode: UpsampleMode,
    inp: usize,
    out: usize,
    scale: Option<f64>,
    ac: bool,
    d: usize,
) -> Vec<(usize, f64)> {
    let clampi = |i: i64| i.clamp(0, inp as i64 - 1) as usize;
    let given = scale.map(|s| 1.0 / s);
    match mode {
        UpsampleMode::Nearest => {
            let sc = given.unwrap_or(inp as f64 / out as f64) as f32;
            let i = if out == inp {
                d
            } else if out == 2 * inp {
                d / 2
            } else {
                ((d as f32 * sc).floor() as usize).min(inp - 1)
            };
            vec![(i, 1.0)]
        }
        UpsampleMode::NearestExact => {
            let sc = given.unwrap_or(inp as f64 / out as f64) as f32;
            let i = (((d as f32 + 0.5) * sc).floor() as usize).min(inp - 1);
            vec![(i, 1.0)]
        }
        UpsampleMode::Linear | UpsampleMode::Cubic => {
            let sc = if ac {
                if out > 1 {
                    (inp as f64 - 1.0) / (out as f64 - 1.0)
                } else {
                    0.0
                }
            } else {
                given.unwrap_or(inp as f64 / out as f64)
            };
            let mut src = if ac {
                sc * d as f64
            } else {
                sc * (d as f64 + 0.5) - 0.5
            };
            if mode == UpsampleMode::Linear {
                src = src.max(0.0);
                let i0 = src.floor() as i64;
                let t = src - i0 as f64;
                vec![(clampi(i0), 1.0 - t), (clampi(i0 + 1), t)]
            } else {
                let i0 = src.floor() as i64;
                let t = src - i0 as f64;
                vec![
                    (clampi(i0 - 1), cc2(t + 1.0)),
                    (clampi(i0), cc1(t)),
                    (clampi(i0 + 1), cc1(1.0 - t)),
                    (clampi(i0 + 2), cc2(2.0 - t)),
                ]
            }
        }
    }
}

/// The interpolation as a tensor product over every combination of per-axis taps (not
/// separable passes, as the layer computes it).
fn upsample_ref(
    x: &[f64],
    xs: &[usize],
    out_sp: &[usize],
    scales: Option<&[f64]>,
    mode: UpsampleMode,
    ac: bool,
) -> (Vec<f64>, Vec<usize>) {
    let nd = xs.len() - 2;
    let mut os = vec![xs[0]];
    os.extend_from_slice(out_sp);
    os.push(xs[nd + 1]);
    let out = (0..os.iter().product())
        .map(|oi| {
            let idx = unravel(oi, &os);
            let per: Vec<Vec<(usize, f64)>> = (0..nd)
                .map(|i| {
                    taps(
                        mode,
                        xs[i + 1],
                        out_sp[i],
                        scales.map(|s| s[i]),
                        ac,
                        idx[i + 1],
                    )
                })
                .collect();
            let counts: Vec<usize> = per.iter().map(|t| t.len()).collect();
            let mut s = 0.0;
            for combo in 0..counts.iter().product() {
                let ci = unravel(combo, &counts);
                let mut xi = vec![idx[0]];
                let mut w = 1.0;
                for i in 0..nd {
                    let (j, wj) = per[i][ci[i]];
                    xi.push(j);
                    w *= wj;
                }
                xi.push(idx[nd + 1]);
                s += w * x[ravel(&xi, xs)];
            }
            s
        })
        .collect();
    (out, os)
}

#[test]
fn upsample_matches_pytorch_formulas() {
    let mut r = Rng::new(100);
    let modes = [
        UpsampleMode::Nearest,
        UpsampleMode::NearestExact,
        UpsampleMode::Linear,
        UpsampleMode::Cubic,
    ];
    // (input shape, scale factors or output size)
    let scaled: &[(&[usize], &[f64])] = &[
        (&[2, 5, 3], &[2.0]),
        (&[1, 4, 2], &[1.7]),
        (&[2, 3, 4, 2], &[2.0, 3.0]),
        (&[1, 5, 3, 1], &[1.5, 0.75]),
        (&[1, 3, 2, 3, 2], &[2.0, 1.5, 1.0]),
    ];
    for (ci, &(xs, sf)) in scaled.iter().enumerate() {
        let (x, xv) = rand(&mut r, xs);
        let nd = xs.len() - 2;
        let out_sp: Vec<usize> = (0..nd)
            .map(|i| (xs[i + 1] as f64 * sf[i]).floor() as usize)
            .collect();
        for mode in modes {
            for ac in [false, true] {
                if ac && matches!(mode, UpsampleMode::Nearest | UpsampleMode::NearestExact) {
                    continue;
                }
                let (want, os) = upsample_ref(&xv, xs, &out_sp, Some(sf), mode, ac);
                let y = Upsample::new(sf, mode)
                    .unwrap()
                    .align_corners(ac)
                    .unwrap()
                    .forward(&x)
                    .unwrap();
                assert_eq!(y.shape(), os, "case {ci} {mode:?}");
                assert_close(
                    &to_f64(&y),
                    &want,
                    1e-12,
                    1e-12,
                    &format!("scale case {ci} {mode:?} ac {ac}"),
                );
            }
        }
    }
    let sized: &[(&[usize], &[usize])] = &[
        (&[1, 5, 2], &[3]),
        (&[2, 4, 3, 2], &[7, 5]),
        (&[1, 6, 2, 1], &[4, 1]),
    ];
    for (ci, &(xs, size)) in sized.iter().enumerate() {
        let (x, xv) = rand(&mut r, xs);
        for mode in modes {
            for ac in [false, true] {
                if ac && matches!(mode, UpsampleMode::Nearest | UpsampleMode::NearestExact) {
                    continue;
                }
                let (want, os) = upsample_ref(&xv, xs, size, None, mode, ac);
                let y = Upsample::with_size(size, mode)
                    .unwrap()
                    .align_corners(ac)
                    .unwrap()
                    .forward(&x)
                    .unwrap();
                assert_eq!(y.shape(), os);
                assert_close(
                    &to_f64(&y),
                    &want,
                    1e-12,
                    1e-12,
                    &format!("size case {ci} {mode:?} ac {ac}"),
                );
            }
        }
    }
}

#[test]
fn upsample_known_values_and_gradient() {
    // F.interpolate(arange(4), scale_factor=2, mode="linear") in PyTorch
    let x = arr(&[0.0, 1.0, 2.0, 3.0], &[1, 4, 1]);
    let y = Upsample::new(&[2.0], UpsampleMode::Linear)
        .unwrap()
        .forward(&x)
        .unwrap();
    assert_close(
        &to_f64(&y),
        &[0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0],
        1e-12,
        1e-12,
        "linear x2",
    );
    let y = Upsample::with_size(&[7], UpsampleMode::Linear)
        .unwrap()
        .align_corners(true)
        .unwrap()
        .forward(&x)
        .unwrap();
    assert_close(
        &to_f64(&y),
        &[0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
        1e-12,
        1e-12,
        "linear align_corners",
    );
    let y = Upsample::new(&[2.0], UpsampleMode::Nearest)
        .unwrap()
        .forward(&x)
        .unwrap();
    assert_eq!(to_f64(&y), [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
    // bicubic of a ramp (A = -0.75 does not reproduce lines): y[0] has src -0.25, taps
    // clamped to [0, 0, 0, 1], so only w3 = cc2(1.25) = -0.10546875 counts; y[3] has src 1.25,
    // taps [0, 1, 2, 3] with weights cc2(1.25), cc1(0.25) = 0.87890625, cc1(0.75) =
    // 0.26171875, cc2(1.75) = -0.03515625.
    let y = to_f64(
        &Upsample::new(&[2.0], UpsampleMode::Cubic)
            .unwrap()
            .forward(&x)
            .unwrap(),
    );
    assert!((y[0] + 0.10546875).abs() < 1e-12, "{y:?}");
    assert!(
        (y[3] - (0.87890625 + 2.0 * 0.26171875 - 3.0 * 0.03515625)).abs() < 1e-12,
        "{y:?}"
    );
    // integer inputs resample with nearest; the mode names parse as PyTorch's
    let xi = Array::from_slice(&[1i32, 2, 3], &[1, 3, 1]).unwrap();
    let yi = Upsample::new(&[2.0], UpsampleMode::Nearest)
        .unwrap()
        .forward(&xi)
        .unwrap();
    assert_eq!(yi.to_vec::<i32>().unwrap(), [1, 1, 2, 2, 3, 3]);
    assert_eq!(UpsampleMode::parse("bilinear"), Some(UpsampleMode::Linear));
    assert_eq!(UpsampleMode::parse("trilinear"), Some(UpsampleMode::Linear));
    assert_eq!(UpsampleMode::parse("bicubic"), Some(UpsampleMode::Cubic));
    assert_eq!(
        UpsampleMode::parse("nearest-exact"),
        Some(UpsampleMode::NearestExact)
    );
    assert_eq!(UpsampleMode::parse("area"), None);
    // gradient with respect to the input, against central differences
    let mut r = Rng::new(110);
    let xs = [1, 3, 4, 2];
    let (_, xv) = rand(&mut r, &xs);
    for (mode, ac) in [
        (UpsampleMode::Cubic, false),
        (UpsampleMode::Linear, true),
        (UpsampleMode::Nearest, false),
    ] {
        let up = Upsample::new(&[1.5, 2.0], mode)
            .unwrap()
            .align_corners(ac)
            .unwrap();
        let (cot, _) = rand(&mut r, &[1, 4, 8, 2]);
        common::check_grad(
            &format!("upsample {mode:?} grad"),
            move |a: &Array| ingot::sum(&ingot::multiply(&up.forward(a)?, &cot)?, None, false),
            &xv,
            &xs,
        );
    }
}

#[test]
fn upsample_errors() {
    let up = Upsample::new(&[2.0, 2.0], UpsampleMode::Linear).unwrap();
    let e = err_text(up.forward(&ingot::zeros(&[1, 4, 2], DType::F32).unwrap()));
    assert!(e.contains("Upsample") && e.contains("[1, 4, 2]"), "{e}");
    let e = err_text(up.forward(&ingot::zeros(&[4, 2], DType::F32).unwrap()));
    assert!(e.contains("Upsample") && e.contains("[4, 2]"), "{e}");
    let e = err_text(up.forward(&ingot::zeros(&[1, 2, 2, 1], DType::I32).unwrap()));
    assert!(e.contains("Upsample") && e.contains("int32"), "{e}");
    let e = err_text(
        Upsample::new(&[2.0], UpsampleMode::Nearest)
            .unwrap()
            .align_corners(true),
    );
    assert!(e.contains("Upsample") && e.contains("align_corners"), "{e}");
    assert!(Upsample::new(&[0.0], UpsampleMode::Nearest).is_err());
    assert!(Upsample::with_size(&[0], UpsampleMode::Nearest).is_err());
    let e = err_text(
        Upsample::new(&[0.2], UpsampleMode::Nearest)
            .unwrap()
            .forward(&ingot::zeros(&[1, 3, 1], DType::F32).unwrap()),
    );
    assert!(e.contains("Upsample") && e.contains("[1, 3, 1]"), "{e}");
}
