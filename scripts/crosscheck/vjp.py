"""vjp cases: ingot's vector-Jacobian products against NumPy central finite differences.

Each case runs an op on float64 inputs with a random cotangent per output; the expected
vjp of input i, element k, is <g, (f(x + h e_k) - f(x - h e_k)) / 2h>, computed with the
NumPy reference of the op. Integer inputs (indices) get no gradient and are not compared.
"""
import numpy as np

from common import Case

H = 1e-6


def fd_vjp(f, inputs, cots, diff):
    """Finite-difference vjp of f (list of arrays -> list of arrays) for inputs in diff."""
    out = []
    for i, x in enumerate(inputs):
        if i not in diff:
            out.append(None)
            continue
        g = np.zeros_like(x, dtype=np.float64)
        flat = g.reshape(-1)
        for k in range(x.size):
            xp = [a.copy() for a in inputs]
            xm = [a.copy() for a in inputs]
            xp[i].reshape(-1)[k] += H
            xm[i].reshape(-1)[k] -= H
            fp, fm = f(xp), f(xm)
            flat[k] = sum(np.sum(c * (p - m)) for c, p, m in zip(cots, fp, fm)) / (2 * H)
        out.append(g)
    return out


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _conv1d(x, w, stride, pad):
    # x (N, L, C), w (O, K, C): cross-correlation, channels last.
    x = np.pad(x, ((0, 0), (pad, pad), (0, 0)))
    n, length, _ = x.shape
    o, k, _ = w.shape
    lo = (length - k) // stride + 1
    y = np.zeros((n, lo, o))
    for t in range(lo):
        y[:, t, :] = np.einsum("nkc,okc->no", x[:, t * stride:t * stride + k, :], w)
    return y


def cases(rng):
    def r(*shape, lo=-2.0, hi=2.0):
        return rng.uniform(lo, hi, size=shape)

    spd = lambda a: a @ a.T + 3 * np.eye(a.shape[0])  # noqa: E731
    table = [
        # (op, inputs, attrs, numpy function of the input list, indices to differentiate)
        ("exp", [r(3, 4)], {}, lambda a: [np.exp(a[0])], [0]),
        ("tanh", [r(5)], {}, lambda a: [np.tanh(a[0])], [0]),
        ("log", [r(4, lo=0.5)], {}, lambda a: [np.log(a[0])], [0]),
        ("sqrt", [r(2, 3, lo=0.5)], {}, lambda a: [np.sqrt(a[0])], [0]),
        ("arctan", [r(4)], {}, lambda a: [np.arctan(a[0])], [0]),
        ("multiply", [r(3, 4), r(4)], {}, lambda a: [a[0] * a[1]], [0, 1]),
        ("divide", [r(3, 1), r(1, 4, lo=0.5)], {}, lambda a: [a[0] / a[1]], [0, 1]),
        ("power", [r(2, 3, lo=0.5), r(2, 3)], {}, lambda a: [a[0] ** a[1]], [0, 1]),
        ("maximum", [r(6), r(6)], {}, lambda a: [np.maximum(a[0], a[1])], [0, 1]),
        ("arctan2", [r(5), r(5, lo=0.5)], {}, lambda a: [np.arctan2(a[0], a[1])], [0, 1]),
        ("where", [r(4) > 0, r(4), r(4)], {}, lambda a: [np.where(a[0], a[1], a[2])], [1, 2]),
        ("sum", [r(3, 4, 2)], {"axis": [0, 2]}, lambda a: [a[0].sum(axis=(0, 2))], [0]),
        ("mean", [r(3, 4)], {"axis": 1, "keepdims": True}, lambda a: [a[0].mean(axis=1, keepdims=True)], [0]),
        ("var", [r(3, 5)], {"axis": 1, "ddof": 1}, lambda a: [a[0].var(axis=1, ddof=1)], [0]),
        ("prod", [r(3, 4, lo=0.5)], {"axis": 1}, lambda a: [a[0].prod(axis=1)], [0]),
        ("max", [r(4, 5)], {"axis": 0}, lambda a: [a[0].max(axis=0)], [0]),
        ("logsumexp", [r(3, 4)], {"axis": -1}, lambda a: [np.log(np.exp(a[0]).sum(axis=-1))], [0]),
        ("cumsum", [r(3, 4)], {"axis": 1}, lambda a: [np.cumsum(a[0], axis=1)], [0]),
        ("cumprod", [r(5, lo=0.5)], {"axis": 0}, lambda a: [np.cumprod(a[0])], [0]),
        ("softmax", [r(3, 5)], {"axis": -1}, lambda a: [_softmax(a[0], -1)], [0]),
        ("log_softmax", [r(3, 5)], {"axis": 0}, lambda a: [np.log(_softmax(a[0], 0))], [0]),
        ("transpose", [r(2, 3, 4)], {"axes": [2, 0, 1]}, lambda a: [a[0].transpose(2, 0, 1)], [0]),
        ("concatenate", [r(2, 3), r(1, 3)], {"axis": 0}, lambda a: [np.concatenate(a, 0)], [0, 1]),
        ("pad", [r(3, 4)], {"pad_width": [[1, 2], [0, 1]], "mode": "reflect"},
         lambda a: [np.pad(a[0], ((1, 2), (0, 1)), mode="reflect")], [0]),
        ("tile", [r(2, 3)], {"reps": [2, 2]}, lambda a: [np.tile(a[0], (2, 2))], [0]),
        ("roll", [r(5)], {"shift": 2}, lambda a: [np.roll(a[0], 2)], [0]),
        ("diagonal", [r(3, 4)], {"offset": 1}, lambda a: [np.diagonal(a[0], 1)], [0]),
        ("sort", [r(3, 5)], {"axis": 1}, lambda a: [np.sort(a[0], axis=1)], [0]),
        ("take", [r(5, 3), np.array([4, 0, 4, 2])], {"axis": 0}, lambda a: [np.take(a[0], a[1], axis=0)], [0]),
        ("take_along_axis", [r(4, 3), np.array([[0, 3, 3]])], {"axis": 0},
         lambda a: [np.take_along_axis(a[0], a[1], axis=0)], [0]),
        ("matmul", [r(2, 3, 4), r(4, 5)], {}, lambda a: [a[0] @ a[1]], [0, 1]),
        ("einsum", [r(2, 3), r(3, 4)], {"subscripts": "ij,jk->ki"}, lambda a: [np.einsum("ij,jk->ki", *a)], [0, 1]),
        ("inv", [spd(r(3, 3))], {}, lambda a: [np.linalg.inv(a[0])], [0]),
        ("solve", [spd(r(3, 3)), r(3, 2)], {}, lambda a: [np.linalg.solve(a[0], a[1])], [0, 1]),
        ("norm", [r(3, 4)], {"ord": "fro", "axis": [0, 1]}, lambda a: [np.linalg.norm(a[0], "fro")], [0]),
        ("conv1d", [r(2, 7, 3), r(4, 3, 3)], {"stride": 2, "padding": 1},
         lambda a: [_conv1d(a[0], a[1], 2, 1)], [0, 1]),
    ]
    for k, (op, inputs, attrs, f, diff) in enumerate(table):
        inputs = [np.asarray(x) for x in inputs]
        outs = [np.asarray(o, dtype=np.float64) for o in f(inputs)]
        cots = [rng.standard_normal(o.shape) for o in outs]
        want = fd_vjp(f, inputs, cots, set(diff))
        yield Case(
            id=f"vjp-{op}-{k}",
            op=op,
            inputs=inputs,
            expected=outs,
            attrs=attrs,
            kind="reduction",
            rtol=1e-9,
            atol=1e-9,
            vjp=cots,
            expected_vjp=want,
        )
