"""NumPy cross-check cases for the shape family (concatenate, pad, tile, ...) and the view
ops (reshape, transpose, slice, ...). Attribute names are those of `ingot ops list`.

Mixed-dtype cases use pairs that promote the same way in NumPy and ingot (ingot keeps a
float's width for int-float pairs, NumPy widens to float64), so only such pairs appear.
"""
import numpy as np

try:
    from .common import Case, rand
except ImportError:  # run as a plain module from this directory
    from common import Case, rand

DTYPES = [np.float32, np.float64, np.float16, np.int32, np.int64, np.int8, np.uint8,
          np.uint16, np.bool_, np.complex64]


def _name(dt):
    return np.dtype(dt).name


def cases(rng):
    # ---- concatenate / stack ------------------------------------------------------------
    for dt in DTYPES:
        a, b = rand(rng, (2, 3), dt), rand(rng, (4, 3), dt)
        yield Case(f"concatenate-axis0-{_name(dt)}", "concatenate", [a, b],
                   [np.concatenate([a, b], axis=0)], {"axis": 0})
        c = rand(rng, (2, 5), dt)
        yield Case(f"concatenate-axis-1-{_name(dt)}", "concatenate", [a, c, a],
                   [np.concatenate([a, c, a], axis=-1)], {"axis": -1})
    x, y = rand(rng, (2, 3, 4), np.float32), rand(rng, (2, 1, 4), np.float32)
    e = np.zeros((2, 0, 4), np.float32)
    yield Case("concatenate-3d-empty", "concatenate", [x, e, y],
               [np.concatenate([x, e, y], axis=1)], {"axis": 1})
    yield Case("concatenate-flat", "concatenate", [x, y], [np.concatenate([x, y], axis=None)],
               {"axis": None})
    u8, i8 = rand(rng, (3,), np.uint8), rand(rng, (2,), np.int8)
    yield Case("concatenate-promote-u8-i8", "concatenate", [u8, i8],
               [np.concatenate([u8, i8])], {"axis": 0})
    f32, f64 = rand(rng, (3,), np.float32), rand(rng, (2,), np.float64)
    yield Case("concatenate-promote-f32-f64", "concatenate", [f32, f64],
               [np.concatenate([f32, f64])], {"axis": 0})
    yield Case("concatenate-bad-shapes", "concatenate", [x, rand(rng, (3, 3, 4), np.float32)],
               [], {"axis": 1}, expect_error=True)
    yield Case("concatenate-0d", "concatenate", [np.ones((), np.float32)] * 2,
               [], {"axis": 0}, expect_error=True)
    for axis in (0, 1, -1):
        arrs = [rand(rng, (3, 4), np.int32) for _ in range(3)]
        yield Case(f"stack-axis{axis}", "stack", arrs, [np.stack(arrs, axis=axis)],
                   {"axis": axis})
    yield Case("stack-bad-shapes", "stack", [x, y], [], {"axis": 0}, expect_error=True)

    # ---- split / array_split --------------------------------------------------------------
    a = rand(rng, (6, 7), np.float32)
    yield Case("split-sections", "split", [a], np.split(a, 3, axis=0),
               {"indices_or_sections": 3, "axis": 0})
    yield Case("split-indices", "split", [a], np.split(a, [2, 5, -1], axis=1),
               {"indices_or_sections": [2, 5, -1], "axis": 1})
    yield Case("split-indices-out-of-range", "split", [a], np.split(a, [5, 3, 10], axis=1),
               {"indices_or_sections": [5, 3, 10], "axis": 1})
    yield Case("split-uneven", "split", [a], [], {"indices_or_sections": 3, "axis": 1},
               expect_error=True)
    yield Case("array_split-uneven", "array_split", [a], np.array_split(a, 3, axis=1),
               {"indices_or_sections": 3, "axis": 1})
    yield Case("array_split-more-than-length", "array_split", [a],
               np.array_split(a, 9, axis=-1), {"indices_or_sections": 9, "axis": -1})

    # ---- tile / repeat --------------------------------------------------------------------
    for shape, reps in [((3,), [2]), ((2, 3), [2, 1]), ((2, 3), [2]), ((2, 3), [3, 1, 2]),
                        ((), [4]), ((2, 0), [2, 2]), ((2, 3), [0, 2])]:
        for dt in (np.float32, np.int64, np.bool_):
            t = rand(rng, shape, dt)
            yield Case(f"tile-{'x'.join(map(str, shape)) or 'scalar'}-{'x'.join(map(str, reps))}-{_name(dt)}",
                       "tile", [t], [np.tile(t, reps)], {"reps": reps})
    r = rand(rng, (3, 4), np.float32)
    yield Case("repeat-flat", "repeat", [r], [np.repeat(r, 2)], {"repeats": 2})
    yield Case("repeat-axis0", "repeat", [r], [np.repeat(r, 3, axis=0)],
               {"repeats": 3, "axis": 0})
    yield Case("repeat-per-element", "repeat", [r], [np.repeat(r, [1, 0, 3, 2], axis=1)],
               {"repeats": [1, 0, 3, 2], "axis": 1})
    yield Case("repeat-zero", "repeat", [r], [np.repeat(r, 0, axis=-1)],
               {"repeats": 0, "axis": -1})
    yield Case("repeat-bad-count", "repeat", [r], [], {"repeats": [1, 2], "axis": 1},
               expect_error=True)

    # ---- pad ------------------------------------------------------------------------------
    pads = [(2, 3), [[1, 2], [0, 4]], [[0, 0], [5, 7]], 1, [[4, 0], [0, 0]]]
    for dt in (np.float32, np.int32, np.uint8, np.bool_, np.float64):
        p = rand(rng, (3, 4), dt)
        for k, pw in enumerate(pads):
            for mode in ("constant", "edge", "reflect", "symmetric"):
                kw = {"constant_values": 1} if mode == "constant" else {}
                yield Case(f"pad-{mode}-{k}-{_name(dt)}", "pad", [p],
                           [np.pad(p, pw, mode=mode, **kw)],
                           {"pad_width": pw, "mode": mode, **kw})
    q = rand(rng, (2,), np.float32)
    for mode in ("reflect", "symmetric", "edge"):
        yield Case(f"pad-wide-{mode}", "pad", [q], [np.pad(q, (9, 6), mode=mode)],
                   {"pad_width": [9, 6], "mode": mode})
    one = rand(rng, (1, 3), np.float32)
    yield Case("pad-reflect-length1", "pad", [one], [np.pad(one, 2, mode="reflect")],
               {"pad_width": 2, "mode": "reflect"})
    img = rand(rng, (2, 5, 6, 3), np.float32)
    yield Case("pad-nhwc", "pad", [img],
               [np.pad(img, [(0, 0), (1, 1), (2, 2), (0, 0)], mode="reflect")],
               {"pad_width": [[0, 0], [1, 1], [2, 2], [0, 0]], "mode": "reflect"})
    empty = np.zeros((0, 3), np.float32)
    yield Case("pad-empty-constant", "pad", [empty], [np.pad(empty, 1, constant_values=2.5)],
               {"pad_width": 1, "mode": "constant", "constant_values": 2.5})
    yield Case("pad-empty-reflect", "pad", [empty], [], {"pad_width": 1, "mode": "reflect"},
               expect_error=True)

    # ---- roll / diag / tril / triu / meshgrid ----------------------------------------------
    r = rand(rng, (3, 5), np.int32)
    yield Case("roll-flat", "roll", [r], [np.roll(r, 4)], {"shift": 4})
    yield Case("roll-axis", "roll", [r], [np.roll(r, -2, axis=1)], {"shift": -2, "axis": 1})
    yield Case("roll-multi", "roll", [r], [np.roll(r, (1, 7), axis=(0, 1))],
               {"shift": [1, 7], "axis": [0, 1]})
    yield Case("roll-same-axis", "roll", [r], [np.roll(r, (1, 2), axis=(1, 1))],
               {"shift": [1, 2], "axis": [1, 1]})
    v = rand(rng, (4,), np.float32)
    m = rand(rng, (4, 6), np.float32)
    for k in (-2, 0, 3):
        yield Case(f"diag-1d-k{k}", "diag", [v], [np.diag(v, k)], {"k": k})
        yield Case(f"diag-2d-k{k}", "diag", [m], [np.diag(m, k)], {"k": k})
    yield Case("diag-3d", "diag", [rand(rng, (2, 2, 2), np.float32)], [], {"k": 0},
               expect_error=True)
    for shape in [(4, 5), (2, 3, 3), (5,)]:
        t = rand(rng, shape, np.float64)
        for k in (-1, 0, 2):
            sid = "x".join(map(str, shape))
            yield Case(f"tril-{sid}-k{k}", "tril", [t], [np.tril(t, k)], {"k": k})
            yield Case(f"triu-{sid}-k{k}", "triu", [t], [np.triu(t, k)], {"k": k})
    g1, g2, g3 = rand(rng, (3,), np.float32), rand(rng, (2,), np.float32), rand(rng, (4,), np.float32)
    for indexing in ("xy", "ij"):
        for sparse in (False, True):
            yield Case(f"meshgrid-{indexing}-{'sparse' if sparse else 'full'}", "meshgrid",
                       [g1, g2, g3], list(np.meshgrid(g1, g2, g3, indexing=indexing, sparse=sparse)),
                       {"indexing": indexing, "sparse": sparse})

    # ---- views ----------------------------------------------------------------------------
    a = rand(rng, (2, 3, 4), np.float32)
    for shape in ([24], [4, -1], [2, 1, 12], [-1]):
        yield Case(f"reshape-{'x'.join(map(str, shape))}", "reshape", [a],
                   [a.reshape(shape)], {"shape": shape})
    yield Case("reshape-bad", "reshape", [a], [], {"shape": [5, -1]}, expect_error=True)
    yield Case("flatten", "flatten", [a], [a.ravel()], {})
    yield Case("flatten-1-2", "flatten", [a], [a.reshape(2, 12)],
               {"start_axis": 1, "end_axis": 2})
    yield Case("transpose-default", "transpose", [a], [a.T], {})
    yield Case("transpose-axes", "transpose", [a], [np.transpose(a, (1, 2, 0))],
               {"axes": [1, 2, 0]})
    yield Case("transpose-bad", "transpose", [a], [], {"axes": [0, 1]}, expect_error=True)
    yield Case("swapaxes", "swapaxes", [a], [np.swapaxes(a, 0, -1)],
               {"axis1": 0, "axis2": -1})
    yield Case("moveaxis", "moveaxis", [a], [np.moveaxis(a, 0, -1)],
               {"source": 0, "destination": -1})
    b = rand(rng, (3, 1), np.int32)
    yield Case("broadcast_to", "broadcast_to", [b], [np.broadcast_to(b, (2, 3, 4))],
               {"shape": [2, 3, 4]})
    yield Case("broadcast_to-bad", "broadcast_to", [b], [], {"shape": [2, 2]},
               expect_error=True)
    c = rand(rng, (4,), np.int32)
    yield Case("broadcast_arrays", "broadcast_arrays", [b, c], list(np.broadcast_arrays(b, c)),
               {})
    yield Case("expand_dims", "expand_dims", [a], [np.expand_dims(a, (0, -1))],
               {"axis": [0, -1]})
    s = rand(rng, (1, 3, 1), np.float64)
    yield Case("squeeze-all", "squeeze", [s], [np.squeeze(s)], {})
    yield Case("squeeze-axis", "squeeze", [s], [np.squeeze(s, axis=-1)], {"axis": -1})
    yield Case("squeeze-bad", "squeeze", [s], [], {"axis": 1}, expect_error=True)
    for fn in ("atleast_1d", "atleast_2d", "atleast_3d"):
        for x in (np.array(3.0, np.float32), rand(rng, (3,), np.float32), rand(rng, (2, 3), np.float32)):
            yield Case(f"{fn}-{x.ndim}d", fn, [x], [getattr(np, fn)(x)], {})
    m = rand(rng, (5, 7), np.int64)
    for k, (sl, attrs) in enumerate([
        ((slice(1, 4), slice(None, None, 2)), {"start": [1, None], "stop": [4, None], "step": [1, 2]}),
        ((slice(None, None, -1),), {"step": [-1]}),
        ((slice(-2, None, -2), slice(10, -10, -3)), {"start": [-2, 10], "stop": [None, -10], "step": [-2, -3]}),
        ((slice(3, 3),), {"start": [3], "stop": [3]}),
    ]):
        yield Case(f"slice-{k}", "slice", [m], [m[sl]], attrs)
    yield Case("slice-step0", "slice", [m], [], {"step": [0]}, expect_error=True)
    yield Case("flip-all", "flip", [m], [np.flip(m)], {})
    yield Case("flip-axis", "flip", [m], [np.flip(m, axis=1)], {"axis": 1})
    t = rand(rng, (3, 4, 5), np.float32)
    for off, a1, a2 in [(0, 0, 1), (1, 1, 2), (-2, 2, 0)]:
        yield Case(f"diagonal-{off}-{a1}-{a2}", "diagonal", [t],
                   [np.diagonal(t, off, a1, a2)], {"offset": off, "axis1": a1, "axis2": a2})
    f = rand(rng, (2, 4), np.float32)
    yield Case("view-uint32", "view", [f], [f.view(np.uint32)], {"dtype": "uint32"})
    yield Case("view-uint8", "view", [f], [f.view(np.uint8)], {"dtype": "uint8"})
    yield Case("view-float64", "view", [f], [f.view(np.float64)], {"dtype": "float64"})
    yield Case("view-bad", "view", [rand(rng, (3,), np.uint8)], [], {"dtype": "uint16"},
               expect_error=True)
    yield Case("copy", "copy", [a], [a.copy()], {})
