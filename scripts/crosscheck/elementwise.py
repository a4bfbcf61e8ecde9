"""NumPy cross-check cases for the elementwise ops of runner/elementwise.rs.

Expected dtypes are NumPy's except where ingot deliberately differs; each difference is
named where it is applied:
  * FLOAT_MATH: integer and bool inputs of float math (exp, sin, divide, arctan2, ...)
    compute in float32 (NumPy: float64, or float16 for 1-byte ints and bool).
  * f16 computes in float32 and rounds once (NumPy rounds f16 ufuncs the same way for most
    functions; the tolerance covers the rest).
  * MIXED: an int array with a float array keeps the float dtype (int32 + float32 is
    float32; NumPy widens to float64), as MLX does.
  * ROUNDING_INT: floor/ceil of integers keep the integer dtype (NumPy >= 2.1 does too).
"""
import math
import warnings

import numpy as np

from common import Case, rand

SHAPES = [(), (0,), (7,), (3, 4), (2, 0, 3), (2, 3, 5)]
BCAST = [((3, 4), (4,)), ((2, 1, 5), (3, 1)), ((), (3, 2)), ((4, 1), (1, 0))]
F = ["float16", "float32", "float64"]
I = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
C = ["complex64"]


def _f32_math(dt):
    """FLOAT_MATH: the dtype float math on `dt` gives in ingot."""
    dt = np.dtype(dt)
    return dt if dt.kind in "fc" else np.dtype(np.float32)


def _compute(fn, xs, out_dtype):
    """Reference in float64/complex128 (or exact ints), then cast to the output dtype."""
    wide = []
    out_kind = np.dtype(out_dtype).kind
    for x in xs:
        if x.dtype.kind == "f" or (x.dtype.kind in "biu" and out_kind in "fc"):
            wide.append(x.astype(np.float64))
        elif x.dtype.kind == "c":
            wide.append(x.astype(np.complex128))
        else:
            wide.append(x)
    with np.errstate(all="ignore"):
        r = fn(*wide)
        return np.asarray(r).astype(out_dtype)


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def _rsqrt(x):
    return 1.0 / np.sqrt(x)


def _angle(x):
    return np.angle(x)


# name: (numpy function, domain, dtypes it accepts, complex ok)
FLOAT_UNARY = {
    "exp": (np.exp, "any"), "expm1": (np.expm1, "any"), "log": (np.log, "pos"),
    "log1p": (np.log1p, "pos"), "log2": (np.log2, "pos"), "log10": (np.log10, "pos"),
    "sqrt": (np.sqrt, "pos"), "rsqrt": (_rsqrt, "pos"), "reciprocal": (np.reciprocal, "nz"),
    "sin": (np.sin, "any"), "cos": (np.cos, "any"), "tan": (np.tan, "small"),
    "arcsin": (np.arcsin, "unit"), "arccos": (np.arccos, "unit"), "arctan": (np.arctan, "any"),
    "sinh": (np.sinh, "any"), "cosh": (np.cosh, "any"), "tanh": (np.tanh, "any"),
    "arcsinh": (np.arcsinh, "any"), "arccosh": (np.arccosh, "ge1"),
    "arctanh": (np.arctanh, "unit"), "erf": (_erf, "any"), "sigmoid": (_sigmoid, "any"),
    "gelu": (_gelu, "any"), "gelu_tanh": (_gelu_tanh, "any"),
}
NO_COMPLEX = {"erf", "sigmoid", "gelu", "gelu_tanh"}


def _domain(rng, shape, dtype, domain):
    x = rand(rng, shape, dtype)
    if np.dtype(dtype).kind in "fc":
        if domain == "pos":
            x = np.abs(x) + np.asarray(0.1, x.dtype)
        elif domain == "unit":
            x = np.tanh(x.astype(np.complex128 if x.dtype.kind == "c" else np.float64)).astype(dtype) * np.asarray(0.9, x.dtype)
        elif domain == "ge1":
            x = np.abs(x) + np.asarray(1.1, x.dtype)
        elif domain == "small":
            x = x * np.asarray(0.5, x.dtype)
        elif domain == "nz":
            x = np.where(np.abs(x) < 0.1, np.asarray(0.5, x.dtype), x).astype(dtype)
    else:
        if domain in ("pos", "nz"):
            x = np.where(x == 0, 1, x).astype(dtype)
            if np.dtype(dtype).kind == "i":
                x = np.abs(x).astype(dtype) + np.asarray(1, dtype)
        elif domain == "unit":
            x = rng.integers(0, 2, size=shape).astype(dtype)
        elif domain == "ge1":
            x = (np.abs(x.astype(np.int64)) + 1).astype(dtype)
    return np.ascontiguousarray(x)


def _tol(out_dtype):
    # f16 inputs give f16 results rounded once from float32.
    return (2e-3, 2e-3) if np.dtype(out_dtype) == np.float16 else (None, None)


SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 1e-30, 700.0])


def unary_cases(rng):
    for name, (fn, domain) in FLOAT_UNARY.items():
        dtypes = F + ["int32", "uint8", "bool"] + ([] if name in NO_COMPLEX else C)
        for dt in dtypes:
            for si, shape in enumerate(SHAPES):
                if dt not in ("float32", "float64") and si not in (0, 3, 5):
                    continue
                x = _domain(rng, shape, dt, domain)
                out = _f32_math(dt)  # FLOAT_MATH
                rtol, atol = _tol(out)
                if np.dtype(dt).kind == "c":
                    rtol, atol = 1e-4, 1e-5  # complex transcendental functions in c64
                yield Case(f"{name}-{dt}-{si}", name, [x], [_compute(fn, [x], out)], rtol=rtol, atol=atol)
        for dt in ("float32", "float64"):
            x = SPECIALS.astype(dt)
            rtol, atol = (1e-5, 1e-6) if dt == "float32" else (None, None)
            yield Case(f"{name}-{dt}-special", name, [x], [_compute(fn, [x], np.dtype(dt))], rtol=rtol, atol=atol)
    # A non-contiguous input written out contiguous by the driver, and a large one.
    x = rand(rng, (300, 257), "float32")
    yield Case("exp-float32-large", "exp", [x], [_compute(np.exp, [x], np.float32)])
    yield Case("erf-complex64-error", "erf", [rand(rng, (3,), "complex64")], [], expect_error=True)

    # Ops that keep the dtype.
    same = {
        "negative": (np.negative, F + I + C),
        "square": (np.square, F + I + C),
        "abs": (np.abs, F + I + C + ["bool"]),
        "sign": (np.sign, F + I + C),
        "conj": (np.conj, F + I + C),
        "real": (np.real, F + I + C),
        "imag": (np.imag, F + I + C),
        "floor": (np.floor, F + I),   # ROUNDING_INT for ints
        "ceil": (np.ceil, F + I),
        "stop_gradient": (lambda x: x, F + I + C + ["bool"]),
        "bitwise_invert": (np.invert, I + ["bool"]),
    }
    for name, (fn, dtypes) in same.items():
        for dt in dtypes:
            for si, shape in enumerate(SHAPES):
                if si not in (0, 1, 3) and dt != "float32":
                    continue
                x = rand(rng, shape, dt)
                out = np.dtype(dt)
                if name in ("abs", "real", "imag") and out.kind == "c":
                    out = np.dtype(np.float32)
                if name == "abs" and dt == "bool":
                    out = np.dtype(np.bool_)
                if name in ("floor", "ceil") and out.kind in "iu":
                    exp = x.copy()  # ROUNDING_INT: exact for integers
                elif name == "square" and out.kind in "iu":
                    exp = (x * x).astype(out)  # wraps like NumPy
                elif name == "negative" and out.kind == "u":
                    exp = (np.zeros_like(x) - x).astype(out)  # wraps like NumPy
                else:
                    exp = _compute(fn, [x], out)
                rtol, atol = _tol(out)
                yield Case(f"{name}-{dt}-{si}", name, [x], [exp], rtol=rtol, atol=atol)
        if name in ("negative", "sign", "abs", "floor", "ceil"):
            for dt in ("float32", "float64"):
                x = SPECIALS.astype(dt)
                yield Case(f"{name}-{dt}-special", name, [x], [_compute(fn, [x], np.dtype(dt))])
    yield Case("negative-bool-error", "negative", [rand(rng, (3,), "bool")], [], expect_error=True)
    yield Case("floor-complex-error", "floor", [rand(rng, (3,), "complex64")], [], expect_error=True)
    yield Case("bitwise_invert-float-error", "bitwise_invert", [rand(rng, (3,), "float32")], [], expect_error=True)

    # Predicates: bool results.
    preds = {"isnan": np.isnan, "isinf": np.isinf, "isfinite": np.isfinite,
             "signbit": np.signbit, "logical_not": np.logical_not}
    for name, fn in preds.items():
        for dt in F + ["int32", "uint8", "bool"] + (C if name not in ("signbit",) else []):
            x = rand(rng, (3, 4), dt)
            yield Case(f"{name}-{dt}", name, [x], [fn(x)])
        for dt in ("float32", "float64"):
            x = SPECIALS.astype(dt)
            yield Case(f"{name}-{dt}-special", name, [x], [fn(x)])

    # angle: FLOAT_MATH for ints; complex gives float32.
    for dt in ["float32", "float64", "int32", "complex64"]:
        x = rand(rng, (3, 4), dt)
        out = np.dtype(np.float32) if dt in ("int32", "complex64") else np.dtype(dt)
        yield Case(f"angle-{dt}", "angle", [x], [_compute(np.angle, [x], out)], rtol=1e-5, atol=1e-6)

    # round with decimals (half to even, as NumPy).
    for dt in ("float32", "float64", "int32"):
        for dec in (0, 1, 2, -1):
            x = rand(rng, (4, 5), dt)
            if dt != "int32":
                x = (x * 10).astype(dt)
            exp = np.round(x, dec)
            yield Case(f"round-{dt}-d{dec}".replace("-d-", "-dm"), "round", [x], [exp], attrs={"decimals": dec},
                       rtol=1e-5 if dt == "float32" else None)
    yield Case("round-halves", "round", [np.array([0.5, 1.5, 2.5, -0.5, -1.5], np.float64)],
               [np.array([0.0, 2.0, 2.0, -0.0, -2.0])])
    yield Case("round-bad-attr", "round", [rand(rng, (3,), "float32")], [], attrs={"decimals": "x"},
               expect_error=True)

    # astype between every pair of NumPy-representable dtypes (values safe for the target).
    alld = ["bool"] + I + F + C
    for src in alld:
        for dst in alld:
            x = rand(rng, (2, 3), src)
            if np.dtype(src).kind in "fc" and np.dtype(dst).kind in "biu":
                if np.dtype(src).kind == "c":
                    continue  # NumPy warns and drops the imaginary part; ingot's rule: docs/dtypes.md
                x = np.abs(np.trunc(x)).astype(src)  # in range, no fraction: casts exactly
            if np.dtype(src).kind == "i" and np.dtype(dst).kind == "u":
                x = np.abs(x).astype(src)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # complex -> real keeps the real part, as ingot
                exp = x.astype(dst)
            yield Case(f"astype-{src}-{dst}", "astype", [x], [exp], attrs={"dtype": dst})
    yield Case("astype-bad-dtype", "astype", [rand(rng, (3,), "float32")], [], attrs={"dtype": "float128"},
               expect_error=True)
    yield Case("astype-no-dtype", "astype", [rand(rng, (3,), "float32")], [], expect_error=True)


ARITH = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply,
         "maximum": np.maximum, "minimum": np.minimum}
CMP = {"equal": np.equal, "not_equal": np.not_equal, "less": np.less,
       "less_equal": np.less_equal, "greater": np.greater, "greater_equal": np.greater_equal}
LOGIC = {"logical_and": np.logical_and, "logical_or": np.logical_or, "logical_xor": np.logical_xor}
BITS = {"bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or, "bitwise_xor": np.bitwise_xor}


def _pairs(rng, dt):
    """(shape a, shape b) pairs: same shape, broadcast, 0-d, empty."""
    for si, s in enumerate(SHAPES[:4]):
        yield f"s{si}", s, s
    for bi, (a, b) in enumerate(BCAST):
        yield f"b{bi}", a, b


def binary_cases(rng):
    for name, fn in ARITH.items():
        dtypes = F + I + (["bool"] if name in ("add", "multiply", "maximum", "minimum") else []) \
            + (C if name in ("add", "subtract", "multiply") else [])
        for dt in dtypes:
            for tag, sa, sb in _pairs(rng, dt):
                if dt not in ("float32", "int32") and not tag.startswith("s"):
                    continue
                a, b = rand(rng, sa, dt), rand(rng, sb, dt)
                rtol, atol = _tol(dt)
                with np.errstate(all="ignore"):
                    exp = fn(a, b)  # ints wrap in NumPy as in ingot
                if np.dtype(dt).kind == "f":
                    exp = _compute(fn, [a, b], np.dtype(dt))
                yield Case(f"{name}-{dt}-{tag}", name, [a, b], [exp], rtol=rtol, atol=atol)
        for dt in ("float32", "float64"):
            a = np.repeat(SPECIALS, len(SPECIALS)).astype(dt)
            b = np.tile(SPECIALS, len(SPECIALS)).astype(dt)
            c = Case(f"{name}-{dt}-special", name, [a, b], [_compute(fn, [a, b], np.dtype(dt))])
            if name in ("maximum", "minimum"):
                c.zero_sign = False  # IEEE leaves max(0.0, -0.0) open; NumPy returns either
            yield c
    # MIXED: int with float keeps the float dtype.
    for ia, fb in (("int32", "float32"), ("int64", "float16"), ("uint8", "float64")):
        a, b = rand(rng, (3, 4), ia), rand(rng, (4,), fb)
        rtol, atol = _tol(fb)
        yield Case(f"add-{ia}-{fb}", "add", [a, b], [_compute(np.add, [a, b], np.dtype(fb))], rtol=rtol, atol=atol)
    # Promotions NumPy and ingot share.
    for x, y in (("int8", "int32"), ("uint8", "int8"), ("uint32", "int32"), ("bool", "int16"),
                 ("float16", "float32"), ("float32", "float64"), ("uint64", "int64")):
        a, b = rand(rng, (5,), x), rand(rng, (5,), y)
        with np.errstate(all="ignore"):
            exp = np.multiply(a, b)
        yield Case(f"multiply-{x}-{y}", "multiply", [a, b], [exp])
    yield Case("subtract-bool-error", "subtract", [rand(rng, (3,), "bool")] * 2, [], expect_error=True)
    yield Case("add-shape-error", "add", [rand(rng, (3,), "float32"), rand(rng, (4,), "float32")], [],
               expect_error=True)
    yield Case("add-arity-error", "add", [rand(rng, (3,), "float32")], [], expect_error=True)

    # True division and float-only binaries: FLOAT_MATH for ints.
    fl = {"divide": (np.divide, F + ["int32", "int64", "uint8", "bool"] + C),
          "arctan2": (np.arctan2, F + ["int32"]), "logaddexp": (np.logaddexp, F + ["int16"])}
    for name, (fn, dtypes) in fl.items():
        for dt in dtypes:
            for tag, sa, sb in _pairs(rng, dt):
                if dt != "float32" and tag not in ("s0", "s3", "b0"):
                    continue
                a, b = rand(rng, sa, dt), rand(rng, sb, dt)
                if name == "divide" and np.dtype(dt).kind != "c":
                    b = np.where(b == 0, np.asarray(1, b.dtype), b).astype(dt)
                out = _f32_math(dt)
                rtol, atol = _tol(out)
                yield Case(f"{name}-{dt}-{tag}", name, [a, b], [_compute(fn, [a, b], out)], rtol=rtol, atol=atol)
        for dt in ("float32", "float64"):
            a = np.repeat(SPECIALS, len(SPECIALS)).astype(dt)
            b = np.tile(SPECIALS, len(SPECIALS)).astype(dt)
            yield Case(f"{name}-{dt}-special", name, [a, b], [_compute(fn, [a, b], np.dtype(dt))],
                       rtol=1e-5 if dt == "float32" else None, atol=1e-6 if dt == "float32" else None)

    # floor_divide and remainder: Python semantics; integer division by zero gives 0.
    for name, fn in (("floor_divide", np.floor_divide), ("remainder", np.remainder)):
        for dt in F + I:
            a, b = rand(rng, (4, 6), dt), rand(rng, (6,), dt)
            if np.dtype(dt).kind == "f":
                b = np.where(np.abs(b) < 0.1, np.asarray(0.7, b.dtype), b).astype(dt)
                exp = _compute(fn, [a, b], np.dtype(dt))
            else:
                b[0] = 0  # NumPy gives 0 for integer x // 0 and x % 0, as ingot
                with np.errstate(all="ignore"):
                    exp = fn(a, b)
            rtol, atol = _tol(dt)
            yield Case(f"{name}-{dt}", name, [a, b], [exp], rtol=rtol, atol=atol or 1e-6)
        yield Case(f"{name}-bool-error", name, [rand(rng, (3,), "bool")] * 2, [], expect_error=True)

    # power: integer exponents small and non-negative (NumPy refuses negative ones).
    for dt in F + I + C:
        a = rand(rng, (3, 5), dt)
        if np.dtype(dt).kind in "iu":
            b = rng.integers(0, 4, size=(3, 5)).astype(dt)
            with np.errstate(all="ignore"):
                exp = np.power(a, b)
        else:
            a = (np.abs(a) + np.asarray(0.1, a.dtype)).astype(dt) if np.dtype(dt).kind == "f" else a
            b = rand(rng, (3, 5), dt)
            exp = _compute(np.power, [a, b], np.dtype(dt))
        rtol, atol = _tol(dt)
        if np.dtype(dt).kind == "c":
            rtol, atol = 1e-4, 1e-5
        yield Case(f"power-{dt}", "power", [a, b], [exp], rtol=rtol, atol=atol)

    # Comparisons and logic: bool outputs.
    for name, fn in CMP.items():
        for dt in F + I + ["bool"] + (C if name in ("equal", "not_equal") else []):
            a, b = rand(rng, (3, 4), dt), rand(rng, (4,), dt)
            a[0, :2] = b[:2]  # some equal pairs
            yield Case(f"{name}-{dt}", name, [a, b], [fn(a, b)])
        a = np.repeat(SPECIALS, len(SPECIALS))
        b = np.tile(SPECIALS, len(SPECIALS))
        yield Case(f"{name}-special", name, [a, b], [fn(a, b)])
    for name, fn in LOGIC.items():
        for dt in ("bool", "float32", "int32", "complex64"):
            for tag, sa, sb in _pairs(rng, dt):
                a, b = rand(rng, sa, dt), rand(rng, sb, dt)
                if dt != "bool":
                    a = np.where(rng.random(sa) < 0.3, np.zeros_like(a), a).astype(dt)
                yield Case(f"{name}-{dt}-{tag}", name, [a, b], [fn(a, b)])
    for name, fn in BITS.items():
        for dt in I + ["bool"]:
            a, b = rand(rng, (3, 4), dt), rand(rng, (3, 4), dt)
            yield Case(f"{name}-{dt}", name, [a, b], [fn(a, b)])
        yield Case(f"{name}-float-error", name, [rand(rng, (3,), "float32")] * 2, [], expect_error=True)
    for name, fn in (("left_shift", np.left_shift), ("right_shift", np.right_shift)):
        for dt in I:
            a = rand(rng, (3, 4), dt)
            b = rng.integers(0, 8, size=(3, 4)).astype(dt)
            yield Case(f"{name}-{dt}", name, [a, b], [fn(a, b)])
        yield Case(f"{name}-float-error", name, [rand(rng, (3,), "float32")] * 2, [], expect_error=True)


def other_cases(rng):
    for dt in F + ["int32", "uint8", "bool", "complex64"]:
        for tag, (sc, sx, sy) in enumerate((((3, 4), (3, 4), (3, 4)), ((4,), (3, 1), ()), ((), (0,), (0,)))):
            c = rand(rng, sc, "bool")
            x, y = rand(rng, sx, dt), rand(rng, sy, dt)
            yield Case(f"where-{dt}-{tag}", "where", [c, x, y], [np.where(c, x, y)])
    c = rand(rng, (5,), "int32")  # a non-bool condition is converted to bool
    x, y = rand(rng, (5,), "float32"), rand(rng, (5,), "float32")
    yield Case("where-intcond", "where", [c, x, y], [np.where(c != 0, x, y)])
    for dt in F + ["int32", "uint8"]:
        a = rand(rng, (4, 5), dt)
        lo, hi = np.asarray(0 if dt == "uint8" else -1, dt), np.asarray(2, dt)
        yield Case(f"clip-{dt}", "clip", [a, lo, hi], [np.clip(a, lo, hi)])
    lo = rand(rng, (5,), "float32") - 1
    hi = lo + 2
    a = rand(rng, (4, 5), "float32")
    yield Case("clip-bcast", "clip", [a, lo, hi], [np.minimum(np.maximum(a, lo), hi)])
    a = SPECIALS.astype(np.float32)
    yield Case("clip-special", "clip", [a, np.float32(-1.0), np.float32(1.0)],
               [np.minimum(np.maximum(a, np.float32(-1)), np.float32(1))])
    for dt in ("float32", "float64", "int32"):
        a = rand(rng, (4, 6), dt)
        b = a.copy()
        if np.dtype(dt).kind == "f":
            b = (b + (rng.standard_normal(b.shape) * 1e-6).astype(dt)).astype(dt)
            b[0, 0] = np.nan
            a[0, 0] = np.nan
            b[1, 1] = np.inf
            a[1, 1] = np.inf
        b[2, :3] += np.asarray(1, dt)
        for rtol, atol, eqn in ((1e-5, 1e-8, False), (1e-3, 0.0, True)):
            yield Case(f"isclose-{dt}-{eqn}", "isclose", [a, b],
                       [np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=eqn)],
                       attrs={"rtol": rtol, "atol": atol, "equal_nan": eqn})


def cases(rng):
    yield from unary_cases(rng)
    yield from binary_cases(rng)
    yield from other_cases(rng)
