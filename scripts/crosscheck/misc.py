"""NumPy cross-check cases for the misc ops of runner/misc.rs: softmax and log_softmax
(NumPy formula), hadamard_transform (explicit Sylvester matrix), histogram
(np.histogram). grid_sample has no NumPy counterpart; its tests are in tests/misc.rs.

Differences from NumPy, applied where named:
  * FLOAT_MATH: integer inputs of softmax/hadamard compute in float32.
  * HIST_EDGES: bin edges are float64 and counts int64 (as NumPy); weighted counts keep the
    weights' float dtype.
"""
import numpy as np

from common import Case, rand

SHAPES = [(1,), (7,), (3, 4), (2, 0, 3), (2, 3, 5), (65, 33)]


def _softmax(x, axis, log):
    x = x.astype(np.float64)
    if x.size == 0:
        return x
    with np.errstate(all="ignore"):
        m = np.max(x, axis=axis, keepdims=True)
        e = np.exp(x - m)
        s = np.sum(e, axis=axis, keepdims=True)
        return (x - m - np.log(s)) if log else e / s


def _out(dt):
    """FLOAT_MATH"""
    dt = np.dtype(dt)
    return dt if dt.kind == "f" else np.dtype(np.float32)


def _hadamard(n):
    h = np.array([[1.0]])
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def cases(rng):
    for shape in SHAPES:
        for dt in ["float16", "float32", "float64", "int32"]:
            x = rand(rng, shape, dt)
            sh = "x".join(map(str, shape))
            for axis in range(-len(shape), 0):
                for op, log in [("softmax", False), ("log_softmax", True)]:
                    want = _softmax(x, axis, log).astype(_out(dt))
                    yield Case(f"{op}-{sh}-{dt}-ax{-axis}", op, [x], [want], attrs={"axis": axis},
                               kind="reduction")
    x = np.array([[-np.inf, -np.inf, -np.inf], [1.0, -np.inf, 2.0], [1000.0, 1000.0, -1000.0]],
                 dtype=np.float32)
    for op, log in [("softmax", False), ("log_softmax", True)]:
        yield Case(f"{op}-special", op, [x], [_softmax(x, -1, log).astype(np.float32)],
                   kind="reduction")
    yield Case("softmax-err-axis", "softmax", [rand(rng, (2, 3), "float32")], [],
               attrs={"axis": 2}, expect_error=True)
    yield Case("softmax-err-complex", "softmax", [rand(rng, (3,), "complex64")], [],
               expect_error=True)

    for n in [1, 2, 4, 8, 64, 256]:
        for dt in ["float32", "float64", "float16", "int16"]:
            x = rand(rng, (3, n), dt)
            h = _hadamard(n)
            y = x.astype(np.float64) @ h.T
            yield Case(f"hadamard-{n}-{dt}", "hadamard_transform", [x],
                       [(y / np.sqrt(n)).astype(_out(dt))], kind="reduction")
            yield Case(f"hadamard-{n}-{dt}-s", "hadamard_transform", [x],
                       [(y * 0.5).astype(_out(dt))], attrs={"scale": 0.5}, kind="reduction")
    yield Case("hadamard-err-n3", "hadamard_transform", [rand(rng, (2, 3), "float32")], [],
               expect_error=True)

    for shape in [(0,), (1,), (50,), (7, 9), (300, 40)]:
        for dt in ["float32", "float64", "int32"]:
            a = rand(rng, shape, dt)
            sh = "x".join(map(str, shape))
            for bins in [1, 3, 10]:
                for ri, rg in enumerate([None, (-1.0, 2.5), (0.0, 0.0)]):
                    attrs = {"bins": bins}
                    if rg is not None:
                        attrs["range"] = list(rg)
                    # ingot's edges are float64 (NumPy: the input's float dtype), so edges and
                    # counts are NumPy's for the same values held in float64 (a value on an
                    # edge can fall in another bin with float32 edges).
                    c, e = np.histogram(a.astype(np.float64), bins=bins, range=rg)
                    yield Case(f"hist-{sh}-{dt}-{bins}-r{ri}", "histogram", [a],
                               [c.astype(np.int64), e.astype(np.float64)], attrs=attrs)
                    w = rand(rng, shape, "float32")
                    cw, _ = np.histogram(a.astype(np.float64), bins=bins, range=rg, weights=w.astype(np.float64))
                    yield Case(f"hist-{sh}-{dt}-{bins}-r{ri}-w", "histogram", [a, w],
                               [cw.astype(np.float32), e.astype(np.float64)], attrs=attrs,
                               kind="reduction")
    a = np.array([1.0, np.nan], dtype=np.float32)
    yield Case("hist-err-nan", "histogram", [a], [], attrs={"bins": 4}, expect_error=True)
    yield Case("hist-err-range", "histogram", [a], [], attrs={"bins": 4, "range": [2.0, 1.0]},
               expect_error=True)
    yield Case("hist-err-bins", "histogram", [a], [], attrs={"bins": 0}, expect_error=True)
