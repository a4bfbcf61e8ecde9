"""Cross-check cases for the sort family: sort, argsort (stable), partition and
argpartition (checked by the partitioned property: the result is not unique), searchsorted,
unique, median."""
import numpy as np

from common import Case, rand

DTYPES = ["float32", "float64", "float16", "int32", "int64", "uint8", "int8", "bool"]
SHAPES = [(7,), (3, 4), (2, 3, 5), (0,), (4, 0), (1,)]


def _with_specials(rng, shape, dtype):
    a = rand(rng, shape, dtype)
    if np.dtype(dtype).kind == "f" and a.size >= 6:
        flat = a.reshape(-1)
        idx = rng.choice(a.size, size=5, replace=False)
        flat[idx] = [np.nan, np.inf, -np.inf, -0.0, np.nan]
    if a.size >= 4:
        # duplicates, so stability matters
        flat = a.reshape(-1)
        flat[1::3] = flat[0:-1:3][: len(flat[1::3])]
    return a


def _sid(*parts):
    return "_".join(str(p).replace("-", "m").replace(" ", "").replace(",", "x")
                    .replace("(", "").replace(")", "").replace("[", "").replace("]", "")
                    for p in parts)


def _axes(shape):
    return list(range(-len(shape), len(shape))) + [None]


def _partition_check(a, kth, axis, arg):
    """Checks the partitioned property along `axis` (None: flattened)."""
    def check(outputs):
        out = np.asarray(outputs[0])
        x = a.reshape(-1) if axis is None else a
        ax = 0 if axis is None else axis
        if out.shape != x.shape:
            raise AssertionError(f"shape {out.shape}, want {x.shape}")
        n = x.shape[ax]
        k = kth % n
        if arg:
            if out.dtype != np.int64:
                raise AssertionError(f"dtype {out.dtype}, want int64")
            if not (np.sort(out, axis=ax) == np.arange(n).reshape(
                    [-1 if i == ax % x.ndim else 1 for i in range(x.ndim)])).all():
                raise AssertionError("indices are not a permutation of each row")
            vals = np.take_along_axis(x, out, axis=ax)
        else:
            vals = out
        ref = np.sort(x, axis=ax)
        v = np.moveaxis(vals, ax, -1)
        r = np.moveaxis(ref, ax, -1)
        pivot = v[..., k:k + 1]
        if not np.array_equal(pivot, r[..., k:k + 1], equal_nan=True):
            raise AssertionError("kth element is not where a sort puts it")
        # NaN is the largest value: compare with NaN-aware order
        def le(p, q):
            return (p <= q) | np.isnan(q)
        if not le(v[..., :k], pivot).all():
            raise AssertionError("an element before kth is greater than it")
        if not le(pivot, v[..., k + 1:]).all():
            raise AssertionError("an element after kth is smaller than it")
    return check


def cases(rng):
    # sort / argsort
    for dtype in DTYPES:
        for shape in SHAPES:
            a = _with_specials(rng, shape, dtype)
            for axis in _axes(shape):
                attrs = {"axis": axis}
                yield Case(id=_sid("sort", dtype, shape, axis), op="sort", inputs=[a],
                           expected=[np.sort(a, axis=axis, kind="stable")], attrs=attrs)
                yield Case(id=_sid("argsort", dtype, shape, axis), op="argsort", inputs=[a],
                           expected=[np.argsort(a, axis=axis, kind="stable").astype(np.int64)],
                           attrs=attrs)
    c = (rng.standard_normal(12) + 1j * rng.standard_normal(12)).astype(np.complex64)
    c[[2, 5]] = c[[3, 8]]
    c[7] = complex(np.nan, 1.0)
    yield Case(id="sort_complex", op="sort", inputs=[c], expected=[np.sort(c, kind="stable")])
    yield Case(id="argsort_complex", op="argsort", inputs=[c],
               expected=[np.argsort(c, kind="stable")])
    # partition / argpartition: the property, not NumPy's exact arrangement
    for dtype in ["float32", "float64", "int16", "uint8"]:
        for shape in [(9,), (4, 6), (3, 5, 2)]:
            a = _with_specials(rng, shape, dtype)
            for axis in [-1, 0, None]:
                n = a.size if axis is None else a.shape[axis]
                for kth in sorted({0, n // 2, n - 1, -1}):
                    for op, arg in [("partition", False), ("argpartition", True)]:
                        f = np.argpartition if arg else np.partition
                        yield Case(id=_sid(op, dtype, shape, axis, kth), op=op, inputs=[a],
                                   expected=[f(a, kth, axis=axis)],
                                   attrs={"kth": kth, "axis": axis},
                                   check=_partition_check(a, kth, axis, arg))
    # searchsorted
    for dtype in ["float32", "float64", "int32", "uint16", "int8"]:
        s = np.sort(_with_specials(rng, (30,), dtype))
        for vshape in [(), (5,), (3, 4), (0,)]:
            v = _with_specials(rng, vshape, dtype)
            if v.size:
                v.reshape(-1)[0] = s[3]  # a value present in `a`
            for side in ["left", "right"]:
                yield Case(id=_sid("searchsorted", dtype, vshape, side), op="searchsorted",
                           inputs=[s, v], attrs={"side": side},
                           expected=[np.searchsorted(s, v, side=side).astype(np.int64)])
    # unique
    for dtype in ["float32", "float64", "int32", "uint8", "bool"]:
        for shape in [(12,), (3, 5), (0,), ()]:
            a = _with_specials(rng, shape, dtype)
            if np.dtype(dtype).kind in "iu":
                a = (a % 4).astype(dtype)
            for ri, rv, rc in [(False, False, False), (True, True, True), (False, True, False)]:
                res = np.unique(a, return_index=ri, return_inverse=rv, return_counts=rc)
                res = list(res) if isinstance(res, tuple) else [res]
                res = [res[0]] + [np.asarray(r).astype(np.int64) for r in res[1:]]
                yield Case(id=_sid("unique", dtype, shape, int(ri), int(rv), int(rc)),
                           op="unique", inputs=[a], expected=res,
                           attrs={"return_index": ri, "return_inverse": rv,
                                  "return_counts": rc})
    # median: ints and bool give float32 in ingot (NumPy: float64), values alike
    for dtype in ["float32", "float64", "int32", "uint8", "float16"]:
        for shape in [(7,), (6,), (4, 6), (3, 5, 2), (1,)]:
            a = rand(rng, shape, dtype)
            axes = [None] + list(range(len(shape)))
            if len(shape) == 3:
                axes += [[0, 2], [-1, 1]]
            for axis in axes:
                for keepdims in [False, True]:
                    ax = tuple(axis) if isinstance(axis, list) else axis
                    want = np.median(a, axis=ax, keepdims=keepdims)
                    if np.dtype(dtype).kind != "f":
                        want = np.asarray(want).astype(np.float32)
                    yield Case(id=_sid("median", dtype, shape, axis, int(keepdims)),
                               op="median", inputs=[a], expected=[np.asarray(want)],
                               attrs={"axis": axis, "keepdims": keepdims}, kind="reduction")
    a = rand(rng, (3, 4), "float32")
    a[1, 2] = np.nan
    yield Case(id="median_nan_rows", op="median", inputs=[a], attrs={"axis": 1},
               expected=[np.median(a, axis=1)], kind="reduction")
    # bad calls
    a = rand(rng, (2, 3), "float32")
    yield Case(id="sort_bad_axis", op="sort", inputs=[a], expected=[], attrs={"axis": 2},
               expect_error=True)
    yield Case(id="partition_bad_kth", op="partition", inputs=[a], expected=[],
               attrs={"kth": 3, "axis": 1}, expect_error=True)
    yield Case(id="searchsorted_2d", op="searchsorted", inputs=[a, a], expected=[],
               expect_error=True)
    yield Case(id="median_repeated_axis", op="median", inputs=[a], expected=[],
               attrs={"axis": [0, 0]}, expect_error=True)
