"""NumPy cross-check cases for the convolution and pooling ops of runner/conv.rs.

NumPy has no convolution, so the reference is written here in float64 (channels last, as
MLX): the input is dilated and padded, then every kernel tap adds one einsum per group.
Transposed convolution is computed from its scatter definition (every input cell adds
x * w[co, k, ci] at i * stride + k * dilation - pad_lo), independently of the conv path.
Outputs are cast to the input dtype (f16 computes in f32 in ingot and rounds once).
"""
import itertools

import numpy as np

from common import Case, rand


def _dilate(x, idil):
    """Inserts idil - 1 zeros between neighbouring cells of each spatial dim."""
    nd = x.ndim - 2
    shape = [x.shape[0]] + [0 if n == 0 else (n - 1) * d + 1 for n, d in zip(x.shape[1:-1], idil)] + [x.shape[-1]]
    out = np.zeros(shape, dtype=x.dtype)
    out[(slice(None),) + tuple(slice(None, None, d) for d in idil) + (slice(None),)] = x
    assert out.ndim == nd + 2
    return out


def conv_general_ref(x, w, stride, lo, hi, kd, idil, groups, flip):
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    nd = x.ndim - 2
    if flip:
        w = w[(slice(None),) + (slice(None, None, -1),) * nd + (slice(None),)]
    xp = np.pad(_dilate(x, idil), [(0, 0)] + list(zip(lo, hi)) + [(0, 0)])
    ksp = w.shape[1:-1]
    span = [(k - 1) * d + 1 for k, d in zip(ksp, kd)]
    osp = [(xp.shape[1 + i] - span[i]) // stride[i] + 1 for i in range(nd)]
    cin, cout = x.shape[-1], w.shape[0]
    cin_g, cout_g = cin // groups, cout // groups
    out = np.zeros([x.shape[0]] + osp + [cout])
    for k in itertools.product(*[range(n) for n in ksp]):
        sl = tuple(
            slice(k[i] * kd[i], k[i] * kd[i] + (osp[i] - 1) * stride[i] + 1, stride[i]) for i in range(nd)
        )
        patch = xp[(slice(None),) + sl + (slice(None),)]
        for g in range(groups):
            wk = w[(slice(g * cout_g, (g + 1) * cout_g),) + k + (slice(None),)]
            out[..., g * cout_g:(g + 1) * cout_g] += np.einsum(
                "...c,oc->...o", patch[..., g * cin_g:(g + 1) * cin_g], wk
            )
    return out


def conv_transpose_ref(x, w, stride, pads, dil, outpad, groups):
    """pads: (lo, hi) per dim; hi may be negative (extra cells, as "same" gives)."""
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    nd = x.ndim - 2
    isp, ksp = x.shape[1:-1], w.shape[1:-1]
    osp = [(isp[i] - 1) * stride[i] - pads[i][0] - pads[i][1] + dil[i] * (ksp[i] - 1) + 1 + outpad[i] for i in range(nd)]
    full = [max((isp[i] - 1) * stride[i] + (ksp[i] - 1) * dil[i] + 1, pads[i][0] + osp[i]) for i in range(nd)]
    cin, cout = x.shape[-1], w.shape[0]
    cin_g, cout_g = cin // groups, cout // groups
    buf = np.zeros([x.shape[0]] + full + [cout])
    for k in itertools.product(*[range(n) for n in ksp]):
        sl = tuple(slice(k[i] * dil[i], k[i] * dil[i] + (isp[i] - 1) * stride[i] + 1, stride[i]) for i in range(nd))
        for g in range(groups):
            wk = w[(slice(g * cout_g, (g + 1) * cout_g),) + k + (slice(None),)]
            buf[(slice(None),) + sl + (slice(g * cout_g, (g + 1) * cout_g),)] += np.einsum(
                "...c,oc->...o", x[..., g * cin_g:(g + 1) * cin_g], wk
            )
    crop = tuple(slice(pads[i][0], pads[i][0] + osp[i]) for i in range(nd))
    return buf[(slice(None),) + crop + (slice(None),)]


def pool_ref(x, kernel, stride, padding, kind, count_include_pad=True):
    x64 = x.astype(np.float64)
    nd = x.ndim - 2
    fill = -np.inf if kind == "max" else 0.0
    pw = [(0, 0)] + [(p, p) for p in padding] + [(0, 0)]
    xp = np.pad(x64, pw, constant_values=fill)
    ones = np.pad(np.ones(x.shape[1:-1]), [(p, p) for p in padding])
    osp = [(xp.shape[1 + i] - kernel[i]) // stride[i] + 1 for i in range(nd)]
    acc = np.full([x.shape[0]] + osp + [x.shape[-1]], fill)
    cnt = np.zeros(osp)
    for k in itertools.product(*[range(n) for n in kernel]):
        sl = tuple(slice(k[i], k[i] + (osp[i] - 1) * stride[i] + 1, stride[i]) for i in range(nd))
        win = xp[(slice(None),) + sl + (slice(None),)]
        acc = np.maximum(acc, win) if kind == "max" else acc + win
        cnt += ones[sl]
    if kind == "avg":
        div = np.prod(kernel) if count_include_pad else cnt[None, ..., None]
        acc = acc / div
    return acc


def _tol(dtype):
    return {"float16": (3e-3, 3e-2), "float32": (1e-4, 1e-4), "float64": (1e-10, 1e-10)}[str(np.dtype(dtype))]


def _pairs(padding, nd):
    if isinstance(padding, int):
        return [(padding, padding)] * nd
    if padding and isinstance(padding[0], (list, tuple)):
        return [tuple(p) for p in (padding * nd if len(padding) == 1 else padding)]
    return [(p, p) for p in (padding * nd if len(padding) == 1 else padding)]


def _vec(v, nd):
    v = [v] if isinstance(v, int) else list(v)
    return v * nd if len(v) == 1 else v


def _same_pairs(isp, ksp, stride, dil):
    out = []
    for n, k, s, d in zip(isp, ksp, stride, dil):
        span = (k - 1) * d + 1
        o = -(-n // s)
        total = max((max(o, 1) - 1) * s + span - n, 0)
        out.append((total // 2, total - total // 2))
    return out


CONV = [
    # (op, x shape, w shape, attrs)
    ("conv1d", (2, 9, 3), (4, 3, 3), {}),
    ("conv1d", (1, 10, 4), (6, 4, 2), {"stride": 3, "padding": 2, "dilation": 2, "groups": 2}),
    ("conv1d", (2, 8, 4), (4, 3, 1), {"padding": "same", "groups": 4}),
    ("conv1d", (1, 7, 2), (3, 2, 2), {"padding": [[0, 2]]}),
    ("conv2d", (2, 6, 7, 3), (5, 3, 3, 3), {"padding": 1}),
    ("conv2d", (1, 9, 8, 4), (4, 3, 2, 2), {"stride": [2, 3], "padding": [[0, 2], [1, 0]], "dilation": [2, 1], "groups": 2}),
    ("conv2d", (3, 5, 5, 6), (12, 3, 3, 1), {"stride": [1, 2], "padding": "same", "groups": 6}),
    ("conv2d", (2, 4, 5, 3), (7, 1, 1, 3), {"padding": "valid"}),
    ("conv2d", (2, 12, 11, 8), (16, 3, 3, 8), {"stride": 2, "padding": "same"}),
    ("conv3d", (2, 4, 5, 4, 2), (3, 2, 3, 2, 2), {"stride": [1, 2, 1], "padding": [1, 1, 0], "dilation": [1, 1, 2]}),
    ("conv3d", (1, 5, 4, 4, 4), (4, 3, 2, 2, 2), {"padding": "same", "groups": 2}),
]

CONV_T = [
    ("conv_transpose1d", (2, 5, 3), (4, 3, 3), {}),
    ("conv_transpose1d", (1, 6, 4), (6, 4, 2), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}),
    ("conv_transpose1d", (1, 7, 2), (2, 2, 2), {"stride": 2, "padding": 3}),
    ("conv_transpose2d", (2, 4, 5, 3), (4, 3, 3, 3), {"stride": 2, "padding": 1, "output_padding": [1, 0]}),
    ("conv_transpose2d", (1, 3, 4, 4), (6, 2, 3, 2), {"stride": [1, 3], "padding": [0, 2], "dilation": [2, 1], "output_padding": [1, 2], "groups": 2}),
    ("conv_transpose2d", (2, 3, 3, 4), (4, 3, 3, 1), {"stride": 2, "padding": "same", "groups": 4}),
    ("conv_transpose3d", (1, 3, 2, 3, 2), (3, 2, 3, 2, 2), {"stride": [2, 1, 2], "padding": [0, 1, 1], "output_padding": [1, 0, 1]}),
]

POOL = [
    ("max_pool1d", (2, 9, 3), {"kernel_size": 3}),
    ("max_pool1d", (1, 10, 2), {"kernel_size": 4, "stride": 1, "padding": 2}),
    ("max_pool2d", (2, 6, 7, 3), {"kernel_size": 2}),
    ("max_pool2d", (1, 7, 8, 2), {"kernel_size": [3, 2], "stride": [2, 1], "padding": [1, 1]}),
    ("max_pool3d", (2, 4, 5, 6, 2), {"kernel_size": [2, 3, 2], "stride": [2, 1, 2], "padding": [1, 1, 0]}),
    ("avg_pool1d", (2, 7, 1), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("avg_pool1d", (2, 7, 3), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
    ("avg_pool2d", (3, 5, 5, 4), {"kernel_size": 3, "stride": [1, 2], "padding": [1, 0]}),
    ("avg_pool2d", (1, 8, 8, 2), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
    ("avg_pool3d", (1, 3, 4, 3, 3), {"kernel_size": [3, 2, 3], "padding": [1, 0, 1]}),
]


def _conv_expected(op, x, w, attrs):
    nd = x.ndim - 2
    stride = _vec(attrs.get("stride", 1), nd)
    dil = _vec(attrs.get("dilation", 1), nd)
    groups = attrs.get("groups", 1)
    pad = attrs.get("padding", 0)
    if op.startswith("conv_transpose"):
        outpad = _vec(attrs.get("output_padding", 0), nd)
        if pad == "same":
            pads = []
            for k, s, d in zip(w.shape[1:-1], stride, dil):
                total = (k - 1) * d + 1 - s
                pads.append((total // 2, total - total // 2) if total >= 0 else (0, total))
        elif pad == "valid":
            pads = [(0, 0)] * nd
        else:
            pads = _pairs(pad, nd)
        return conv_transpose_ref(x, w, stride, pads, dil, outpad, groups)
    if pad == "same":
        pairs = _same_pairs(x.shape[1:-1], w.shape[1:-1], stride, dil)
    elif pad == "valid":
        pairs = [(0, 0)] * nd
    else:
        pairs = _pairs(pad, nd)
    return conv_general_ref(
        x, w, stride, [p[0] for p in pairs], [p[1] for p in pairs], dil, [1] * nd, groups, False
    )


def cases(rng):
    for i, (op, xs, ws, attrs) in enumerate(CONV + CONV_T):
        for dt in ["float32", "float64", "float16"]:
            x, w = rand(rng, xs, dt), rand(rng, ws, dt)
            want = _conv_expected(op, x, w, attrs)
            rtol, atol = _tol(dt)
            yield Case(
                id=f"{op}_{i}_{dt}",
                op=op,
                inputs=[x, w],
                expected=[want.astype(dt)],
                attrs=attrs,
                rtol=rtol,
                atol=atol * (1 + float(np.abs(want).max(initial=0.0))),
                kind="reduction",
            )
    # conv_general: input dilation and flipped kernels
    for i, (xs, ws, attrs) in enumerate([
        ((2, 5, 3), (2, 3, 3), {"padding": [[2, 1]], "input_dilation": 2, "flip": True}),
        ((1, 4, 5, 4), (4, 2, 3, 2), {"stride": [2, 1], "padding": [[1, 0], [0, 2]], "kernel_dilation": [2, 1], "input_dilation": [3, 2], "groups": 2}),
        ((2, 3, 4, 3, 2), (2, 2, 2, 2, 2), {"stride": [1, 1, 2], "padding": 1, "input_dilation": [2, 1, 2], "flip": True}),
    ]):
        nd = len(xs) - 2
        x, w = rand(rng, xs, "float32"), rand(rng, ws, "float32")
        pairs = _pairs(attrs.get("padding", 0), nd)
        want = conv_general_ref(
            x, w, _vec(attrs.get("stride", 1), nd), [p[0] for p in pairs], [p[1] for p in pairs],
            _vec(attrs.get("kernel_dilation", 1), nd), _vec(attrs.get("input_dilation", 1), nd),
            attrs.get("groups", 1), attrs.get("flip", False),
        )
        yield Case(id=f"conv_general_{i}", op="conv_general", inputs=[x, w],
                   expected=[want.astype(np.float32)], attrs=attrs, kind="reduction")
    for i, (op, xs, attrs) in enumerate(POOL):
        nd = len(xs) - 2
        for dt in ["float32", "float64", "float16"]:
            x = rand(rng, xs, dt)
            if x.size > 10:
                x.flat[3] = np.nan
                x.flat[7] = -np.inf
            k = _vec(attrs["kernel_size"], nd)
            s = _vec(attrs["stride"], nd) if "stride" in attrs else k
            p = _vec(attrs.get("padding", 0), nd)
            kind = "max" if op.startswith("max") else "avg"
            want = pool_ref(x, k, s, p, kind, attrs.get("count_include_pad", True))
            rtol, atol = _tol(dt)
            yield Case(id=f"{op}_{i}_{dt}", op=op, inputs=[x], expected=[want.astype(dt)],
                       attrs=attrs, rtol=rtol, atol=atol * 10, kind="reduction")
    # bad calls
    f = lambda *s: rand(rng, s, "float32")  # noqa: E731
    errors = [
        ("conv2d", [f(1, 5, 5, 3), f(4, 3, 3, 2)], {}),                    # channel mismatch
        ("conv2d", [f(1, 5, 5, 3), f(4, 3, 3, 3)], {"groups": 2}),         # groups do not divide
        ("conv2d", [f(1, 5, 5, 3), f(4, 6, 3, 3)], {}),                    # kernel > padded input
        ("conv2d", [rand(rng, (1, 5, 5, 3), "int32"), f(4, 3, 3, 3)], {}),  # not float
        ("conv1d", [f(1, 5, 5, 3), f(4, 3, 3, 3)], {}),                    # wrong rank
        ("conv2d", [f(1, 5, 5, 3), f(4, 3, 3, 3)], {"padding": "full"}),   # bad padding
        ("conv_transpose2d", [f(1, 5, 5, 3), f(4, 3, 3, 3)], {"stride": 2, "output_padding": 2}),
        ("max_pool2d", [f(1, 5, 5, 3)], {"kernel_size": 3, "padding": 2}),  # pad > kernel / 2
        ("avg_pool2d", [f(1, 5, 5, 3)], {"kernel_size": [6, 2]}),          # kernel > input
    ]
    for i, (op, inputs, attrs) in enumerate(errors):
        yield Case(id=f"{op}_error_{i}", op=op, inputs=inputs, expected=[], attrs=attrs,
                   expect_error=True)
