"""Fit the rational tanh that ingot's f32 kernels use, and check it on every f32.

tanh(x) ~ x * P(x^2) / Q(x^2) on [0, 9], P and Q of degree 4, Q(0) = 1, fitted for least
maximum relative error by Lawson-weighted linearised least squares (Loeb's method).
The kernel (crates/ingot/src/backend/cpu/elementwise.rs, tanh_f32) evaluates it in f64
with fused multiply-adds and rounds once to f32; the check here uses plain f64 Horner
(NumPy has no fma), which differs from it by about 1e-16, far below one f32 rounding.

    python3 scripts/fit/tanh_rational.py            # fit and print the coefficients
    python3 scripts/fit/tanh_rational.py --check    # also compare all 2^31 f32 >= 0 (minutes)
"""
import sys

import numpy as np

CLAMP = 9.0  # tanh(x) rounds to 1 (or one ulp below it) in f32 past here
M, K = 4, 4


def fit(m=M, k=K, iters=60):
    x = np.sort(np.concatenate([np.linspace(1e-4, CLAMP, 20000), np.geomspace(1e-4, 1, 2000)]))
    z = x * x
    f = np.tanh(x) / x
    w = np.ones_like(z)
    q_prev = np.ones_like(z)
    best = None
    for _ in range(iters):
        # Unknowns p0..pm, q1..qk in P(z) - f (Q(z) - 1) = f, weighted to relative error.
        a = np.concatenate(
            [np.vander(z, m + 1, increasing=True), -(f[:, None] * np.vander(z, k + 1, increasing=True)[:, 1:])],
            axis=1,
        )
        scale = np.sqrt(w) / (f * q_prev)
        coef, *_ = np.linalg.lstsq(a * scale[:, None], f * scale, rcond=None)
        p, q = coef[: m + 1], np.concatenate([[1.0], coef[m + 1 :]])
        pz, qz = np.polyval(p[::-1], z), np.polyval(q[::-1], z)
        err = (pz / qz - f) / f
        e = np.abs(err).max()
        if best is None or e < best[0]:
            best = (e, p, q)
        q_prev = qz
        w = w * np.abs(err) / e + 1e-12  # Lawson: weight where the error is largest
        w /= w.sum()
    return best


def evaluate(x, p, q):
    """The kernel's arithmetic: f64 Horner, one rounding to f32."""
    x = np.clip(x.astype(np.float64), -CLAMP, CLAMP)
    z = x * x
    pz = np.zeros_like(z)
    for c in p[::-1]:
        pz = pz * z + c
    qz = np.zeros_like(z)
    for c in q[::-1]:
        qz = qz * z + c
    return (x * pz / qz).astype(np.float32)


def ordered(bits):
    b = bits.astype(np.int64)
    return np.where(b < 0x80000000, b, 0x80000000 - b)


def check(p, q):
    """Largest ulp distance from tanh over every f32 in [0, inf]; the rational is odd."""
    top = int(np.float32(np.inf).view(np.uint32))
    hist = np.zeros(3, np.int64)
    step = 1 << 24
    for s in range(0, top + 1, step):
        x = np.arange(s, min(s + step, top + 1), dtype=np.uint32).view(np.float32)
        got = evaluate(x, p, q)
        want = np.tanh(x.astype(np.float64)).astype(np.float32)
        d = np.abs(ordered(got.view(np.uint32)) - ordered(want.view(np.uint32)))
        hist += np.bincount(np.minimum(d, 2), minlength=3)
    return hist


if __name__ == "__main__":
    e, p, q = fit()
    print(f"max relative error {e:.3e}")
    print("P =", [repr(float(v)) for v in p])
    print("Q =", [repr(float(v)) for v in q])
    if "--check" in sys.argv:
        h = check(p, q)
        print(f"exact: {h[0]}, 1 ulp: {h[1]}, 2 ulp or more: {h[2]}")
