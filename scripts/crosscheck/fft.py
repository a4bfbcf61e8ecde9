"""NumPy cross-check cases for the fft ops of runner/fft.rs.

Differences from NumPy, applied where named:
  * C64: transforms compute in complex64 (ingot has no complex128); float64 inputs are
    rounded to float32 first, so expected values are NumPy's complex128 result cast to
    complex64 and compared with the "reduction" tolerance.
  * IRFFT_F32: irfft* return float32.
  * FREQ_F32: fftfreq/rfftfreq return float32.
"""
import numpy as np

from common import Case, rand

SIZES = [1, 2, 3, 5, 7, 8, 12, 16, 17, 31, 64]


def _c64(x):
    """The input as the transform sees it (C64), in complex128 for the reference."""
    if x.dtype.kind == "c":
        return x.astype(np.complex64).astype(np.complex128)
    return x.astype(np.float32).astype(np.complex128)


def _r32(x):
    return x.astype(np.float32).astype(np.float64)


def cases(rng):
    """The cases below, with an absolute tolerance that scales with the spectrum's size:
    single-precision FFT error grows like log n relative to the largest magnitude."""
    for c in _cases(rng):
        if c.expected and c.kind == "reduction" and c.atol is None:
            w = np.abs(c.expected[0])
            peak = float(w.max()) if w.size else 1.0
            c.atol = 4e-6 * max(1.0, peak) * max(1.0, np.log2(max(2, w.size)))
        yield c


def _cases(rng):
    # 1-D complex transforms: sizes, crop/pad, axes, norms, input dtypes
    for n in SIZES:
        for dt in ["complex64", "float32", "float64", "int32"]:
            x = rand(rng, (3, n), dt)
            for op, fn in [("fft", np.fft.fft), ("ifft", np.fft.ifft)]:
                yield Case(f"{op}-{n}-{dt}", op, [x], [fn(_c64(x), axis=-1).astype(np.complex64)],
                           kind="reduction")
    x = rand(rng, (4, 6, 5), "complex64")
    for axis in [0, 1, -1]:
        for n in [1, 4, 9]:
            for norm in ["backward", "ortho", "forward"]:
                for op, fn in [("fft", np.fft.fft), ("ifft", np.fft.ifft)]:
                    yield Case(f"{op}-ax{axis}-n{n}-{norm}".replace("-ax-", "-axm"), op, [x],
                               [fn(_c64(x), n=n, axis=axis, norm=norm).astype(np.complex64)],
                               attrs={"n": n, "axis": axis, "norm": norm}, kind="reduction")
    # real transforms
    for n in SIZES:
        x = rand(rng, (2, n), "float32")
        yield Case(f"rfft-{n}", "rfft", [x], [np.fft.rfft(_r32(x)).astype(np.complex64)],
                   kind="reduction")
        for m in sorted({n, n + 3, max(1, n // 2)}):
            yield Case(f"rfft-{n}-n{m}", "rfft", [x],
                       [np.fft.rfft(_r32(x), n=m, norm="ortho").astype(np.complex64)],
                       attrs={"n": m, "norm": "ortho"}, kind="reduction")
        h = n // 2 + 1
        b = rand(rng, (2, h), "complex64")
        for m in [n, n + 2]:
            # IRFFT_F32
            yield Case(f"irfft-{h}-n{m}", "irfft", [b],
                       [np.fft.irfft(_c64(b), n=m).astype(np.float32)],
                       attrs={"n": m}, kind="reduction")
    b = rand(rng, (3, 5), "complex64")
    yield Case("irfft-default-n", "irfft", [b], [np.fft.irfft(_c64(b)).astype(np.float32)],
               kind="reduction")
    # 2-D and N-D
    x = rand(rng, (3, 4, 6), "complex64")
    xr = rand(rng, (3, 4, 6), "float32")
    nd = [
        ("fft2", np.fft.fft2, None, None), ("ifft2", np.fft.ifft2, [5, 3], None),
        ("fftn", np.fft.fftn, None, None), ("ifftn", np.fft.ifftn, None, [0, 2]),
        ("fftn", np.fft.fftn, [2, 7], [2, 0]),
    ]
    for i, (op, fn, s, axes) in enumerate(nd):
        attrs = {}
        if s is not None:
            attrs["s"] = s
        if axes is not None:
            attrs["axes"] = axes
        # NumPy 2 reads an explicit axes=None as "all axes": pass only what is given.
        kw = {k: v for k, v in (("s", s), ("axes", axes)) if v is not None}
        yield Case(f"{op}-nd{i}", op, [x], [fn(_c64(x), **kw).astype(np.complex64)],
                   attrs=attrs, kind="reduction")
    for i, (s, axes) in enumerate([(None, None), (None, [0, 2]), ([5, 4], [0, 1]), ([2, 9], None)]):
        attrs = {k: v for k, v in [("s", s), ("axes", axes)] if v is not None}
        y = np.fft.rfftn(_r32(xr), s=s, axes=axes)
        yield Case(f"rfftn-{i}", "rfftn", [xr], [y.astype(np.complex64)], attrs=attrs,
                   kind="reduction")
        yc = y.astype(np.complex64)
        yield Case(f"irfftn-{i}", "irfftn", [yc],
                   [np.fft.irfftn(_c64(yc), s=s, axes=axes).astype(np.float32)], attrs=attrs,
                   kind="reduction")
    yield Case("rfft2", "rfft2", [xr], [np.fft.rfft2(_r32(xr), norm="ortho").astype(np.complex64)],
               attrs={"norm": "ortho"}, kind="reduction")
    y2 = np.fft.rfft2(_r32(xr)).astype(np.complex64)
    yield Case("irfft2", "irfft2", [y2], [np.fft.irfft2(_c64(y2)).astype(np.float32)],
               kind="reduction")
    # shifts and frequencies
    for shape in [(7,), (8,), (3, 4), (5, 2, 3)]:
        for dt in ["float32", "int64", "complex64"]:
            a = rand(rng, shape, dt)
            sh = "x".join(map(str, shape))
            yield Case(f"fftshift-{sh}-{dt}", "fftshift", [a], [np.fft.fftshift(a)])
            yield Case(f"ifftshift-{sh}-{dt}", "ifftshift", [a], [np.fft.ifftshift(a)])
            yield Case(f"fftshift-{sh}-{dt}-ax0", "fftshift", [a], [np.fft.fftshift(a, axes=[0])],
                       attrs={"axes": [0]})
    for n in [1, 2, 5, 8]:
        for d in [1.0, 0.25]:
            # FREQ_F32
            yield Case(f"fftfreq-{n}-{d}", "fftfreq", [], [np.fft.fftfreq(n, d).astype(np.float32)],
                       attrs={"n": n, "d": d})
            yield Case(f"rfftfreq-{n}-{d}", "rfftfreq", [], [np.fft.rfftfreq(n, d).astype(np.float32)],
                       attrs={"n": n, "d": d})
    # errors
    x = rand(rng, (3, 4), "float32")
    yield Case("fft-err-axis", "fft", [x], [], attrs={"axis": 2}, expect_error=True)
    yield Case("fft-err-n0", "fft", [x], [], attrs={"n": 0}, expect_error=True)
    yield Case("fft-err-norm", "fft", [x], [], attrs={"norm": "bogus"}, expect_error=True)
    yield Case("rfft-err-complex", "rfft", [rand(rng, (4,), "complex64")], [], expect_error=True)
    yield Case("fftn-err-s-axes", "fftn", [x], [], attrs={"s": [2, 2], "axes": [0]},
               expect_error=True)
    yield Case("fftfreq-err-n0", "fftfreq", [], [], attrs={"n": 0}, expect_error=True)
