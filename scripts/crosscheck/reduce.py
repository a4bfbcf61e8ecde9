"""NumPy cross-check cases for reductions and scans (see common.py).

Expected outputs carry ingot's dtypes where they differ from NumPy's by design: mean, var
and std of integers and bool are float32 in ingot (float64 in NumPy), logsumexp and
logcumsumexp of integers compute in float32. Exclusive and reversed scans are built from
NumPy's inclusive ones.
"""
import warnings

import numpy as np

try:
    from .common import Case, rand
except ImportError:  # run as a plain script directory on sys.path
    from common import Case, rand

SHAPES = [(), (0,), (7,), (3, 4), (2, 0, 3), (2, 3, 5), (33, 17)]
REAL = [np.bool_, np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32,
        np.int64, np.float16, np.float32, np.float64]
FLOAT = [np.float16, np.float32, np.float64]


def _axes(ndim):
    out = [None]
    for i in range(ndim):
        out.append(i)
    if ndim >= 1:
        out.append(-1)
    if ndim >= 2:
        out.append([0, ndim - 1])
    return out


def _np_axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _name(dt):
    return np.dtype(dt).name


def _sum_dtype(dt):
    dt = np.dtype(dt)
    if dt == np.bool_ or (dt.kind == "i" and dt.itemsize < 8):
        return np.dtype(np.int64)
    if dt.kind == "u" and dt.itemsize < 8:
        return np.dtype(np.uint64)
    return dt


def _inexact(dt):
    dt = np.dtype(dt)
    return dt if dt.kind in "fc" else np.dtype(np.float32)


def _with_specials(a):
    """NaN, inf and -0.0 in float arrays that have room."""
    if a.dtype.kind == "f" and a.size > 8:
        f = a.reshape(-1).copy()
        f[1] = np.nan
        f[a.size // 2] = np.inf
        f[a.size - 2] = -np.inf
        f[3] = -0.0
        return f.reshape(a.shape)
    return a


def _reduced_size(shape, axis):
    if axis is None:
        return int(np.prod(shape)) if len(shape) else 1
    axes = axis if isinstance(axis, list) else [axis]
    return int(np.prod([shape[a] for a in axes]))


def _reduction_cases(rng):
    ops = {
        "sum": lambda a, ax, k: np.sum(a, axis=ax, keepdims=k, dtype=_sum_dtype(a.dtype)),
        "prod": lambda a, ax, k: np.prod(a, axis=ax, keepdims=k, dtype=_sum_dtype(a.dtype)),
        "max": lambda a, ax, k: np.max(a, axis=ax, keepdims=k),
        "min": lambda a, ax, k: np.min(a, axis=ax, keepdims=k),
        "all": lambda a, ax, k: np.all(a, axis=ax, keepdims=k),
        "any": lambda a, ax, k: np.any(a, axis=ax, keepdims=k),
        "mean": lambda a, ax, k: np.mean(a, axis=ax, keepdims=k).astype(_inexact(a.dtype)),
        "count_nonzero": lambda a, ax, k: np.asarray(
            np.count_nonzero(a, axis=ax, keepdims=k), dtype=np.int64),
        "logsumexp": lambda a, ax, k: np.logaddexp.reduce(
            a.astype(_inexact(a.dtype)), axis=ax, keepdims=k),
    }
    for op, f in ops.items():
        for dt in REAL:
            if op == "prod" and np.dtype(dt).kind == "f":
                continue  # float products below, on values near 1
            for shape in SHAPES:
                a = _with_specials(rand(rng, shape, dt))
                for axis in _axes(len(shape)):
                    for keepdims in ((False, True) if shape == (2, 3, 5) else (False,)):
                        cid = f"{op}-{_name(dt)}-{'x'.join(map(str, shape)) or 'scalar'}-ax{axis}-k{int(keepdims)}"
                        cid = _clean(cid)
                        attrs = {"axis": axis, "keepdims": keepdims}
                        if op in ("max", "min") and _reduced_size(shape, axis) == 0:
                            yield Case(cid, op, [a], [], attrs, expect_error=True, kind="reduction")
                            continue
                        with np.errstate(all="ignore"), warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            want = np.asarray(f(a, _np_axis(axis), keepdims))
                        yield Case(cid, op, [a], [want], attrs, kind="reduction")
    for dt in FLOAT:
        for shape in [(7,), (3, 4), (2, 3, 5)]:
            a = rng.uniform(0.7, 1.4, size=shape).astype(dt)
            for axis in _axes(len(shape)):
                want = np.asarray(np.prod(a, axis=_np_axis(axis)))
                yield Case(_clean(f"prod-{_name(dt)}-{shape}-ax{axis}"), "prod", [a], [want],
                           {"axis": axis}, kind="reduction")
    # complex sums, products, means
    for shape in [(7,), (3, 4)]:
        a = rand(rng, shape, np.complex64)
        for axis in _axes(len(shape)):
            for op, f in [("sum", np.sum), ("mean", np.mean)]:
                want = np.asarray(f(a, axis=_np_axis(axis))).astype(np.complex64)
                yield Case(_clean(f"{op}-complex64-{shape}-ax{axis}"), op, [a], [want],
                           {"axis": axis}, kind="reduction")
        yield Case(_clean(f"max-complex64-{shape}"), "max", [a], [], {}, expect_error=True)


def _var_cases(rng):
    for op, f in [("var", np.var), ("std", np.std)]:
        for dt in REAL + [np.complex64]:
            for shape in [(), (7,), (3, 4), (2, 3, 5)]:
                a = rand(rng, shape, dt)
                out_dt = np.float32 if np.dtype(dt).kind in "buic" else dt
                for axis in _axes(len(shape)):
                    for ddof in (0, 1):
                        with np.errstate(all="ignore"), warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            want = np.asarray(f(a, axis=_np_axis(axis), ddof=ddof, keepdims=True)).astype(out_dt)
                        yield Case(_clean(f"{op}-{_name(dt)}-{shape}-ax{axis}-d{ddof}"), op, [a], [want],
                                   {"axis": axis, "ddof": ddof, "keepdims": True}, kind="reduction")


def _arg_cases(rng):
    for op, f in [("argmax", np.argmax), ("argmin", np.argmin)]:
        for dt in REAL:
            for shape in SHAPES:
                # few distinct values: ties, so the first occurrence matters
                a = rng.integers(0, 5, size=shape).astype(dt)
                if a.dtype.kind == "f" and a.size > 8:
                    a.reshape(-1)[a.size // 2] = np.nan
                axes = [None] + list(range(len(shape)))
                for axis in axes:
                    for keepdims in (False, True):
                        cid = _clean(f"{op}-{_name(dt)}-{shape}-ax{axis}-k{int(keepdims)}")
                        attrs = {"axis": axis, "keepdims": keepdims}
                        n = a.size if axis is None else shape[axis]
                        if n == 0:
                            yield Case(cid, op, [a], [], attrs, expect_error=True)
                            continue
                        want = np.asarray(f(a, axis=axis, keepdims=keepdims)).astype(np.int64)
                        yield Case(cid, op, [a], [want], attrs)
    a = rand(rng, (3, 4), np.float32)
    yield Case("argmax-axis-out-of-bounds", "argmax", [a], [], {"axis": 2}, expect_error=True)
    yield Case("sum-axis-out-of-bounds", "sum", [a], [], {"axis": -3}, expect_error=True)
    yield Case("sum-repeated-axis", "sum", [a], [], {"axis": [0, 0]}, expect_error=True)


def _scan(a, axis, reverse, inclusive, acc, identity, out_dt):
    """An MLX-style scan from NumPy's inclusive accumulate."""
    if axis is None:
        a = a.reshape(-1)
        axis = 0
    x = np.flip(a, axis) if reverse else a
    with np.errstate(all="ignore"):
        y = np.asarray(acc(x, axis)).astype(out_dt)
    n = y.shape[axis]
    if not inclusive and n:
        first = np.full_like(np.take(y, [0], axis=axis), identity)
        y = np.concatenate([first, np.take(y, np.arange(n - 1), axis=axis)], axis=axis)
    return np.flip(y, axis) if reverse else y


def _lowest(dt):
    dt = np.dtype(dt)
    if dt == np.bool_:
        return False
    return -np.inf if dt.kind == "f" else np.iinfo(dt).min


def _highest(dt):
    dt = np.dtype(dt)
    if dt == np.bool_:
        return True
    return np.inf if dt.kind == "f" else np.iinfo(dt).max


def _scan_cases(rng):
    for dt in [np.bool_, np.uint8, np.int8, np.int32, np.int64, np.uint64, np.float16, np.float32,
               np.float64]:
        for shape in [(), (0,), (9,), (3, 4), (2, 3, 5)]:
            a = rand(rng, shape, dt)
            if np.dtype(dt).kind in "iu":
                a = (a // 10).astype(dt)  # small, so products stay in range
            sd = _sum_dtype(dt)
            ops = [
                ("cumsum", lambda x, ax: np.cumsum(x, axis=ax, dtype=sd), 0, sd),
                ("cumprod", lambda x, ax: np.cumprod(x, axis=ax, dtype=sd), 1, sd),
                ("cummax", lambda x, ax: np.maximum.accumulate(x, axis=ax), _lowest(dt), np.dtype(dt)),
                ("cummin", lambda x, ax: np.minimum.accumulate(x, axis=ax), _highest(dt), np.dtype(dt)),
                ("logcumsumexp", lambda x, ax: np.logaddexp.accumulate(x.astype(_inexact(dt)), axis=ax),
                 -np.inf, _inexact(dt)),
            ]
            for op, acc, identity, out_dt in ops:
                for axis in [None] + list(range(len(shape))):
                    for reverse in (False, True):
                        for inclusive in (True, False):
                            want = _scan(a, axis, reverse, inclusive, acc, identity, out_dt)
                            yield Case(_clean(f"{op}-{_name(dt)}-{shape}-ax{axis}-r{int(reverse)}-i{int(inclusive)}"),
                                       op, [a], [want],
                                       {"axis": axis, "reverse": reverse, "inclusive": inclusive},
                                       kind="reduction")


def _predicate_cases(rng):
    a = rand(rng, (3, 4), np.float32)
    b = (a * (1 + 1e-7)).astype(np.float32)
    c = a.copy()
    c[0, 0] = np.nan
    for x, y, name in [(a, b, "near"), (a, a + 1, "far"), (c, c, "nan")]:
        for equal_nan in (False, True):
            yield Case(f"allclose-{name}-n{int(equal_nan)}", "allclose", [x, y],
                       [np.asarray(np.allclose(x, y, equal_nan=equal_nan))], {"equal_nan": equal_nan})
            yield Case(f"array_equal-{name}-n{int(equal_nan)}", "array_equal", [x, y],
                       [np.asarray(np.array_equal(x, y, equal_nan=equal_nan))], {"equal_nan": equal_nan})
    yield Case("array_equal-shapes", "array_equal", [a, a[:2]], [np.asarray(False)])
    yield Case("allclose-broadcast", "allclose", [a, a[:1]], [np.asarray(np.allclose(a, a[:1]))])
    yield Case("allclose-bad-shapes", "allclose", [a, a[:2]], [], expect_error=True)


def _clean(s):
    """A file-name safe id: letters, digits, '-' and '_'."""
    out = []
    for ch in str(s):
        if ch.isalnum() or ch in "-_":
            out.append(ch)
        elif ch in " ,":
            out.append("_")
    return "".join(out).replace("__", "_")


def cases(rng):
    seen = set()
    for gen in (_reduction_cases, _var_cases, _arg_cases, _scan_cases, _predicate_cases):
        for c in gen(rng):
            # ids must be unique; a negative axis and its positive twin differ only by '-'
            base, k = c.id, 1
            while c.id in seen:
                k += 1
                c.id = f"{base}-{k}"
            seen.add(c.id)
            yield c
