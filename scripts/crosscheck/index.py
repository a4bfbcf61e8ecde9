"""NumPy cross-check cases for the index family: take, take_along_axis, put_along_axis,
nonzero, argwhere, boolean_mask (a[mask]), scatter_add (np.add.at), slice_update (a[win] = u),
gather (MLX-style, checked against a NumPy loop), and expected errors."""
import numpy as np

try:  # imported as part of a package or with scripts/crosscheck on sys.path
    from .common import Case, rand
except ImportError:
    from common import Case, rand

DTYPES = ["float32", "float64", "float16", "int32", "int64", "uint8", "int8", "bool", "complex64"]
IDX_DTYPES = ["int64", "int32", "int16", "uint8"]


def _idx(rng, shape, n, dtype):
    """Random valid indices in [-n, n) ([0, n) for unsigned dtypes)."""
    lo = 0 if np.dtype(dtype).kind == "u" else -n
    return rng.integers(lo, n, size=shape).astype(dtype)


def _take(rng):
    shapes = [((7,), (5,), 0), ((3, 4), (2, 3), 1), ((3, 4), (6,), -2), ((2, 3, 5), (4,), 1),
              ((2, 3, 5), (2, 2), None), ((2, 0, 3), (3,), 0), ((3, 4), (0,), 0), ((), (3,), None),
              ((3, 4), (), 1)]
    for dt in DTYPES:
        for k, (ashape, ishape, axis) in enumerate(shapes):
            a = rand(rng, ashape, dt)
            n = a.size if axis is None else ashape[axis]
            idt = IDX_DTYPES[k % len(IDX_DTYPES)]
            i = _idx(rng, ishape, n, idt)
            yield Case(id=f"take_{dt}_{k}", op="take", inputs=[a, i],
                       expected=[np.take(a, i, axis=axis)], attrs={"axis": axis})
    a = rand(rng, (3, 4), "float32")
    yield Case(id="take_oob", op="take", inputs=[a, np.array([0, 4])], expected=[],
               attrs={"axis": 1}, expect_error=True)
    yield Case(id="take_bool_idx", op="take", inputs=[a, np.array([True, False])], expected=[],
               attrs={"axis": 0}, expect_error=True)
    yield Case(id="take_float_idx", op="take", inputs=[a, np.array([0.0])], expected=[],
               attrs={"axis": 0}, expect_error=True)


def _along(rng):
    cases = [((7,), (4,), 0), ((3, 4), (3, 6), 1), ((3, 4), (2, 4), 0), ((3, 4), (5, 1), 0),
             ((2, 3, 5), (2, 3, 2), -1), ((2, 3, 5), (1, 4, 5), 1), ((3, 4), (3, 0), 1)]
    for dt in DTYPES:
        for k, (ashape, ishape, axis) in enumerate(cases):
            a = rand(rng, ashape, dt)
            i = _idx(rng, ishape, ashape[axis], IDX_DTYPES[k % len(IDX_DTYPES)])
            yield Case(id=f"take_along_axis_{dt}_{k}", op="take_along_axis", inputs=[a, i],
                       expected=[np.take_along_axis(a, i, axis=axis)], attrs={"axis": axis})
    a = rand(rng, (2, 3), "int32")
    i = np.array([5, -6, 2])
    yield Case(id="take_along_axis_none", op="take_along_axis", inputs=[a, i],
               expected=[np.take_along_axis(a, i, axis=None)], attrs={"axis": None})
    yield Case(id="take_along_axis_ndim", op="take_along_axis", inputs=[a, np.array([0, 1])],
               expected=[], attrs={"axis": 1}, expect_error=True)
    # put_along_axis: indices of the array's shape outside the axis; values broadcast.
    put = [((7,), (3,), 0), ((3, 4), (3, 2), 1), ((3, 4), (2, 4), 0), ((3, 4), (1, 4), 0),
           ((2, 3, 5), (2, 3, 1), -1)]
    for dt in DTYPES:
        for k, (ashape, ishape, axis) in enumerate(put):
            a = rand(rng, ashape, dt)
            # distinct indices along the axis, so NumPy's result does not depend on the order
            # in which it writes repeats
            n = ashape[axis]
            i = np.argsort(rng.random(ishape[:axis % len(ashape)] + (n,)
                                      + ishape[axis % len(ashape) + 1:]), axis=axis)
            i = np.take(i, np.arange(ishape[axis]), axis=axis)
            i = np.broadcast_to(i, ishape).astype("int32") if i.shape != ishape else i
            v = rand(rng, i.shape, dt)
            want = a.copy()
            np.put_along_axis(want, i, v, axis=axis)
            yield Case(id=f"put_along_axis_{dt}_{k}", op="put_along_axis", inputs=[a, i, v],
                       expected=[want], attrs={"axis": axis})
    # with repeats and kind=add: the same as np.add.at through the along-axis index
    a = rand(rng, (3, 4), "float32")
    i = rng.integers(0, 4, size=(3, 6))
    v = rand(rng, (3, 6), "float32")
    want = a.copy()
    np.add.at(want, (np.arange(3)[:, None], i), v)
    yield Case(id="put_along_axis_add_repeats", op="put_along_axis", inputs=[a, i, v],
               expected=[want], attrs={"axis": 1, "kind": "add"}, kind="reduction")
    # axis None: flattened, 1-D indices
    a = rand(rng, (2, 3), "float64")
    i = np.array([5, 0])
    want = a.copy()
    np.put_along_axis(want, i, np.array(9.0), axis=None)
    yield Case(id="put_along_axis_none", op="put_along_axis", inputs=[a, i, np.array(9.0)],
               expected=[want], attrs={"axis": None})
    yield Case(id="put_along_axis_oob", op="put_along_axis",
               inputs=[a, np.array([[0], [3]]), np.array(1.0)], expected=[], attrs={"axis": 1},
               expect_error=True)


def _nonzero(rng):
    for dt in DTYPES:
        for k, shape in enumerate([(7,), (3, 4), (2, 0, 3), (2, 3, 5), (1,)]):
            a = rand(rng, shape, dt)
            a[rng.random(shape) < 0.4] = 0
            if np.dtype(dt).kind == "f" and a.size > 3:
                a.flat[0], a.flat[1], a.flat[2] = np.nan, -0.0, np.inf
            nz = [x.astype(np.int64) for x in np.nonzero(a)]
            yield Case(id=f"nonzero_{dt}_{k}", op="nonzero", inputs=[a], expected=nz)
            yield Case(id=f"argwhere_{dt}_{k}", op="argwhere", inputs=[a],
                       expected=[np.argwhere(a).astype(np.int64)])
    for v in (0.0, 2.0):
        a = np.array(v, dtype=np.float32)
        yield Case(id=f"argwhere_0d_{int(v)}", op="argwhere", inputs=[a],
                   expected=[np.argwhere(a).astype(np.int64)])
    yield Case(id="nonzero_0d", op="nonzero", inputs=[np.array(1.0, dtype=np.float32)],
               expected=[], expect_error=True)


def _boolean_mask(rng):
    for dt in DTYPES:
        for k, (shape, nd) in enumerate([((7,), 1), ((3, 4), 1), ((3, 4), 2), ((2, 3, 5), 2),
                                         ((2, 0, 3), 1), ((4,), 0)]):
            a = rand(rng, shape, dt)
            m = rng.random(shape[:nd]) < 0.5
            m = np.asarray(m)
            yield Case(id=f"boolean_mask_{dt}_{k}", op="boolean_mask", inputs=[a, m],
                       expected=[a[m]])
    a = rand(rng, (2, 3), "float32")
    yield Case(id="boolean_mask_shape", op="boolean_mask", inputs=[a, np.array([True] * 3)],
               expected=[], expect_error=True)
    yield Case(id="boolean_mask_int", op="boolean_mask", inputs=[a, np.array([1, 0])],
               expected=[], expect_error=True)


def _scatter(rng):
    # np.add.at(a, idx, v) on axis 0 is ingot's scatter_add with updates (N, 1, *rest).
    for dt in ["float32", "float64", "int32", "int64", "uint8", "complex64"]:
        for k, (ashape, n) in enumerate([((5,), 9), ((6, 3), 20), ((4, 2, 3), 7), ((5,), 0)]):
            a = rand(rng, ashape, dt)
            i = _idx(rng, (n,), ashape[0], "int64")
            v = rand(rng, (n,) + ashape[1:], dt)
            want = a.copy()
            np.add.at(want, i, v)
            upd = v.reshape((n, 1) + ashape[1:])
            yield Case(id=f"scatter_add_{dt}_{k}", op="scatter_add", inputs=[a, i, upd],
                       expected=[want], attrs={"axes": [0]}, kind="reduction")
            for name, ufunc in [("scatter_max", np.maximum), ("scatter_min", np.minimum)]:
                if dt == "complex64":
                    continue
                want = a.copy()
                ufunc.at(want, i, v)
                yield Case(id=f"{name}_{dt}_{k}", op=name, inputs=[a, i, upd],
                           expected=[want], attrs={"axes": [0]})
    # two index arrays: a[i, j] updates of single elements
    a = rand(rng, (4, 5), "float32")
    i = _idx(rng, (6,), 4, "int32")
    j = _idx(rng, (6,), 5, "int64")
    v = rand(rng, (6,), "float32")
    want = a.copy()
    np.add.at(want, (i, j), v)
    yield Case(id="scatter_add_2idx", op="scatter_add", inputs=[a, i, j, v.reshape(6, 1, 1)],
               expected=[want], attrs={"axes": [0, 1]}, kind="reduction")
    # scatter (set) with distinct indices
    i = rng.permutation(4)[:3]
    v = rand(rng, (3, 5), "float32")
    want = a.copy()
    want[i] = v
    yield Case(id="scatter_set", op="scatter", inputs=[a, i, v.reshape(3, 1, 5)],
               expected=[want], attrs={"axes": [0]})
    yield Case(id="scatter_oob", op="scatter_add",
               inputs=[a, np.array([4]), np.ones((1, 1, 5), np.float32)], expected=[],
               attrs={"axes": [0]}, expect_error=True)


def _gather(rng):
    # MLX-style gather; NumPy reference by slicing.
    a = rand(rng, (5, 6), "float32")
    i = rng.integers(0, 4, size=(3,))
    j = rng.integers(0, 5, size=(3,))
    want = np.stack([a[x:x + 2, y:y + 2] for x, y in zip(i, j)])
    yield Case(id="gather_2d", op="gather", inputs=[a, i, j], expected=[want],
               attrs={"axes": [0, 1], "slice_sizes": [2, 2]})
    e = rand(rng, (10, 4), "float16")
    i = rng.integers(-10, 10, size=(2, 3))
    yield Case(id="gather_embedding", op="gather", inputs=[e, i],
               expected=[e[i][:, :, None, :]], attrs={"axes": [0], "slice_sizes": [1, 4]})
    yield Case(id="gather_past_end", op="gather", inputs=[a, np.array([4])], expected=[],
               attrs={"axes": [0], "slice_sizes": [2, 6]}, expect_error=True)


def _slice_update(rng):
    wins = [((7,), [1], [5], [1]), ((7,), [None], [None], [-2]), ((3, 4), [1, -1], [None, 0], [1, -1]),
            ((2, 3, 5), [1, None, 4], [2, None, None], [1, 2, -3])]
    for dt in DTYPES:
        for k, (shape, start, stop, step) in enumerate(wins):
            a = rand(rng, shape, dt)
            win = tuple(slice(s, e, t) for s, e, t in zip(start, stop, step))
            u = rand(rng, a[win].shape, dt)
            want = a.copy()
            want[win] = u
            attrs = {"start": start, "stop": stop, "step": step}
            yield Case(id=f"slice_update_{dt}_{k}", op="slice_update", inputs=[a, u],
                       expected=[want], attrs=attrs)
            if dt != "bool":
                want = a.copy()
                want[win] += u
                yield Case(id=f"slice_update_add_{dt}_{k}", op="slice_update_add", inputs=[a, u],
                           expected=[want], attrs=attrs)
    a = rand(rng, (3, 4), "float32")
    yield Case(id="slice_update_bad_shape", op="slice_update", inputs=[a, np.ones(3, np.float32)],
               expected=[], attrs={"start": [0, 0], "stop": [2, 2]}, expect_error=True)


def cases(rng):
    for gen in (_take, _along, _nonzero, _boolean_mask, _scatter, _gather, _slice_update):
        for c in gen(rng):
            # 0-d results of rand and NumPy come back as scalars: the driver wants arrays
            c.inputs = [np.asarray(x) for x in c.inputs]
            c.expected = [np.asarray(x) for x in c.expected]
            yield c
