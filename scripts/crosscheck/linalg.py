"""NumPy cross-check cases for the linear-algebra ops of runner/linalg.rs.

References are computed in float64 (exact integers for integer matmul) and cast to the
dtype ingot returns. Deliberate differences from NumPy, applied where named:
  * INT_DECOMP: decompositions, solvers, det and norm of integer inputs compute in float32
    (NumPy: float64); float16 inputs compute in float32 and round to float16 (NumPy refuses
    float16).
  * Decompositions whose outputs are not unique (qr, svd, eigh, lu, lu_factor) are checked
    through `check` callables: reconstruction, orthonormality, triangularity, and the
    sign-invariant parts (singular values, eigenvalues) against NumPy.
Without scipy, solve_triangular and lu are checked against NumPy-only formulations.
"""
import numpy as np

from common import Case, rand

F = ["float32", "float64"]


def _out_dtype(dt):
    """INT_DECOMP: the float dtype ingot's decompositions return for input dtype `dt`."""
    dt = np.dtype(dt)
    return dt if dt.kind == "f" else np.dtype(np.float32)


def _tol(dt):
    return {"float16": 2e-2, "float32": 2e-4, "float64": 1e-9}[np.dtype(dt).name]


def _mats(rng, shape, dt):
    """Well-conditioned random matrices: small integers, or normals plus a diagonal shift."""
    dt = np.dtype(dt)
    if dt.kind in "iu":
        a = rng.integers(-5, 6, size=shape).astype(dt)
    else:
        a = rng.standard_normal(shape)
        if len(shape) >= 2 and shape[-1] == shape[-2]:
            a = a + 3 * np.eye(shape[-1])
        a = a.astype(dt)
    return a


def _spd(rng, batch, n, dt):
    x = rng.standard_normal(tuple(batch) + (n, n))
    a = x @ np.swapaxes(x, -1, -2) + n * np.eye(n)
    return a.astype(dt)


def _close(got, want, tol, what):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        raise AssertionError(f"{what}: shape {got.shape} vs {want.shape}")
    scale = max(1.0, float(np.abs(want).max()) if want.size else 1.0)
    err = float(np.abs(got - want).max()) if want.size else 0.0
    if not err <= tol * scale * 10:
        raise AssertionError(f"{what}: max error {err} (tol {tol * scale * 10})")


def _eye_like(k, batch):
    return np.broadcast_to(np.eye(k), tuple(batch) + (k, k))


def matmul_cases(rng):
    shapes = [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
              ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (3, 4, 2)), ((0, 4), (4, 5)),
              ((3, 0), (0, 5)), ((64, 48), (48, 40))]
    for dt in ["float32", "float64", "float16", "complex64", "int32", "int8", "uint8", "bool"]:
        for i, (sa, sb) in enumerate(shapes):
            a, b = rand(rng, sa, dt), rand(rng, sb, dt)
            if dt == "bool":
                want = (a.astype(np.int64) @ b.astype(np.int64)) > 0
            elif np.dtype(dt).kind in "iu":
                want = (a.astype(np.int64) @ b.astype(np.int64)).astype(dt)  # wraps
            else:
                wide = np.complex128 if dt == "complex64" else np.float64
                want = (a.astype(wide) @ b.astype(wide)).astype(dt)
            yield Case(f"matmul_{dt}_{i}", "matmul", [a, b], [np.asarray(want)], kind="reduction",
                       rtol=2e-3 if dt == "float16" else None, atol=2e-2 if dt == "float16" else None)
    # transposed operand and mixed dtypes
    a = rand(rng, (5, 3), "float32")
    yield Case("matmul_T", "matmul", [a.T.copy(), a], [a.T @ a], kind="reduction")
    x, y = rand(rng, (3, 4), "int32"), rand(rng, (4, 2), "float32")
    yield Case("matmul_mixed", "matmul", [x, y], [(x.astype(np.float64) @ y).astype(np.float32)],
               kind="reduction")
    yield Case("matmul_err_inner", "matmul", [rand(rng, (2, 3), "float32"), rand(rng, (4, 5), "float32")],
               [], expect_error=True)
    yield Case("matmul_err_0d", "matmul", [np.float32(1.0).reshape(()), rand(rng, (2, 3), "float32")],
               [], expect_error=True)


def product_cases(rng):
    for dt in F:
        c, a, b = rand(rng, (2,), dt), rand(rng, (3, 4), dt), rand(rng, (4, 2), dt)
        yield Case(f"addmm_{dt}", "addmm", [c, a, b], [(0.5 * (a @ b) - 2.0 * c).astype(dt)],
                   attrs={"alpha": 0.5, "beta": -2.0}, kind="reduction")
        x, y = rand(rng, (2, 3), dt), rand(rng, (4,), dt)
        yield Case(f"outer_{dt}", "outer", [x, y], [np.outer(x, y)])
        p, q = rand(rng, (2, 3, 5), dt), rand(rng, (4, 5), dt)
        yield Case(f"inner_{dt}", "inner", [p, q], [np.inner(p, q)], kind="reduction")
        k1, k2 = rand(rng, (2, 3), dt), rand(rng, (3, 1, 2), dt)
        yield Case(f"kron_{dt}", "kron", [k1, k2], [np.kron(k1, k2)])
        t1, t2 = rand(rng, (2, 3, 4), dt), rand(rng, (3, 4, 5), dt)
        yield Case(f"tensordot2_{dt}", "tensordot", [t1, t2], [np.tensordot(t1, t2, 2)], kind="reduction")
        t3 = rand(rng, (4, 2), dt)
        yield Case(f"tensordot_lists_{dt}", "tensordot", [t1, t3],
                   [np.tensordot(t1, t3, ([0, 2], [1, 0]))], attrs={"axes": [[0, 2], [1, 0]]},
                   kind="reduction")
        u, v = rand(rng, (4, 3), dt), rand(rng, (3,), dt)
        yield Case(f"cross3_{dt}", "cross", [u, v], [np.cross(u, v)])
        u2, v2 = rand(rng, (5, 2), dt), rand(rng, (5, 2), dt)
        # NumPy 2 refuses 2-vectors in np.cross; the 2-D cross product is the z component.
        yield Case(f"cross2_{dt}", "cross", [u2, v2], [u2[..., 0] * v2[..., 1] - u2[..., 1] * v2[..., 0]])
        ut, vt = rand(rng, (3, 4), dt), rand(rng, (3, 4), dt)
        yield Case(f"cross_axis0_{dt}", "cross", [ut, vt], [np.cross(ut, vt, axis=0)], attrs={"axis": 0})
    i1, i2 = rand(rng, (3, 4), "int32"), rand(rng, (4,), "int32")
    yield Case("inner_int32", "inner", [i1, i2], [np.inner(i1, i2)])
    yield Case("tensordot_err", "tensordot", [rand(rng, (2, 3), "float32"), rand(rng, (4, 5), "float32")],
               [], attrs={"axes": [[0], [0]]}, expect_error=True)
    yield Case("cross_err", "cross", [rand(rng, (4,), "float32"), rand(rng, (4,), "float32")], [],
               expect_error=True)


def einsum_cases(rng):
    specs = [
        ("ij,jk->ik", [(3, 4), (4, 5)]),
        ("ij->ji", [(3, 4)]),
        ("ii->i", [(4, 4)]),
        ("ii", [(4, 4)]),
        ("ij->", [(3, 4)]),
        ("i,i", [(5,), (5,)]),
        ("i,j->ij", [(3,), (4,)]),
        ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
        ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
        ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]),
        ("...j,jk", [(2, 3, 4), (4, 5)]),
        ("iij,jk->ik", [(3, 3, 2), (2, 4)]),
        ("abc,cd,de->bae", [(2, 3, 4), (4, 2), (2, 3)]),
        ("ij,jk", [(0, 4), (4, 5)]),
    ]
    for n, (spec, shapes) in enumerate(specs):
        for dt in ["float32", "float64", "int32"]:
            ops = [rand(rng, s, dt) for s in shapes]
            want = np.einsum(spec, *[o.astype(np.float64) if dt != "int32" else o for o in ops])
            yield Case(f"einsum_{n}_{dt}", "einsum", ops, [np.asarray(want).astype(dt)],
                       attrs={"subscripts": spec}, kind="reduction")
    yield Case("einsum_err_shape", "einsum", [rand(rng, (2, 3), "float32"), rand(rng, (4, 5), "float32")],
               [], attrs={"subscripts": "ij,jk->ik"}, expect_error=True)
    yield Case("einsum_err_count", "einsum", [rand(rng, (2, 3), "float32")], [],
               attrs={"subscripts": "ij,jk->ik"}, expect_error=True)


def decomposition_cases(rng):
    for dt in F + ["int32", "float16"]:
        od = _out_dtype(dt)
        if dt == "float16":
            od = np.dtype(np.float16)
        tol = _tol(od.name)
        rt = {"float16": 2e-2, "float32": 1e-3, "float64": 1e-9}[od.name]
        for batch in [(), (3,)]:
            tag = f"{dt}_{len(batch)}"
            a = _mats(rng, batch + (4, 4), dt)
            a64 = a.astype(np.float64)
            yield Case(f"inv_{tag}", "inv", [a], [np.linalg.inv(a64).astype(od)], rtol=rt, atol=rt)
            yield Case(f"det_{tag}", "det", [a], [np.asarray(np.linalg.det(a64)).astype(od)], rtol=rt, atol=rt)
            s, l = np.linalg.slogdet(a64)
            yield Case(f"slogdet_{tag}", "slogdet", [a], [np.asarray(s).astype(od), np.asarray(l).astype(od)],
                       rtol=rt, atol=rt)
            b = _mats(rng, batch + (4, 2), dt)
            yield Case(f"solve_{tag}", "solve", [a, b], [np.linalg.solve(a64, b.astype(np.float64)).astype(od)],
                       rtol=rt, atol=rt)
            bv = _mats(rng, (4,), dt)
            yield Case(f"solve_vec_{tag}", "solve", [a, bv],
                       [np.linalg.solve(a64, bv.astype(np.float64)[..., None])[..., 0].astype(od)],
                       rtol=rt, atol=rt)
            if dt != "int32":
                p = _spd(rng, batch, 5, dt)
                L = np.linalg.cholesky(p.astype(np.float64))
                yield Case(f"cholesky_{tag}", "cholesky", [p], [L.astype(od)], rtol=rt, atol=rt)
                yield Case(f"cholesky_upper_{tag}", "cholesky", [p], [np.swapaxes(L, -1, -2).astype(od)],
                           attrs={"upper": True}, rtol=rt, atol=rt)
            sym = a64 + np.swapaxes(a64, -1, -2)
            yield Case(f"eigvalsh_{tag}", "eigvalsh", [sym.astype(dt)], [np.linalg.eigvalsh(sym).astype(od)],
                       rtol=rt, atol=rt)
            yield Case(f"eigh_{tag}", "eigh", [sym.astype(dt)],
                       [np.zeros(batch + (4,), od), np.zeros(batch + (4, 4), od)],
                       check=_check_eigh(sym, tol))
            for shape in [(5, 3), (3, 5), (4, 4)]:
                m = _mats(rng, batch + shape, dt)
                st = f"{tag}_{shape[0]}x{shape[1]}"
                k = min(shape)
                yield Case(f"qr_{st}", "qr", [m], [np.zeros(batch + (shape[0], k), od),
                                                    np.zeros(batch + (k, shape[1]), od)],
                           check=_check_qr(m.astype(np.float64), tol))
                for full in [True, False]:
                    yield Case(f"svd_{st}_{full}", "svd", [m], [np.zeros(1)] * 3, attrs={"full_matrices": full},
                               check=_check_svd(m.astype(np.float64), full, tol))
                yield Case(f"svdvals_{st}", "svd", [m],
                           [np.linalg.svd(m.astype(np.float64), compute_uv=False).astype(od)],
                           attrs={"compute_uv": False}, rtol=rt, atol=rt)
                yield Case(f"lu_factor_{st}", "lu_factor", [m], [np.zeros(1), np.zeros(1)],
                           check=_check_lu_factor(m.astype(np.float64), tol))
                yield Case(f"lu_{st}", "lu", [m], [np.zeros(1)] * 3, check=_check_lu(m.astype(np.float64), tol))
                if dt != "float16":
                    yield Case(f"pinv_{st}", "pinv", [m], [np.linalg.pinv(m.astype(np.float64)).astype(od)],
                               rtol=rt * 10, atol=rt * 10)
    for lower in [False, True]:
        for unit in [False, True]:
            for left in [True, False]:
                a = _mats(rng, (4, 4), "float64")
                b = rand(rng, (4, 3) if left else (3, 4), "float64")
                t = np.tril(a) if lower else np.triu(a)
                if unit:
                    np.fill_diagonal(t, 1.0)
                want = np.linalg.solve(t, b) if left else np.linalg.solve(t.T, b.T).T
                yield Case(f"solve_triangular_{lower}_{unit}_{left}", "solve_triangular", [a, b], [want],
                           attrs={"lower": lower, "unit_diagonal": unit, "left": left}, rtol=1e-9, atol=1e-9)
    sing = np.array([[1.0, 2.0], [2.0, 4.0]])
    yield Case("inv_singular", "inv", [sing], [], expect_error=True)
    yield Case("solve_singular", "solve", [sing, np.ones(2)], [], expect_error=True)
    yield Case("cholesky_not_pd", "cholesky", [np.array([[1.0, 2.0], [2.0, 1.0]])], [], expect_error=True)
    yield Case("inv_not_square", "inv", [np.zeros((2, 3))], [], expect_error=True)
    yield Case("det_singular", "det", [sing], [np.asarray(0.0)], atol=1e-12)


def _check_eigh(sym, tol):
    def check(outs):
        w, v = outs
        _close(w, np.linalg.eigvalsh(sym), tol, "eigenvalues")
        _close(sym @ v, v * w[..., None, :], tol, "a v = v w")
        _close(np.swapaxes(v, -1, -2) @ v, _eye_like(sym.shape[-1], sym.shape[:-2]), tol, "v orthonormal")
    return check


def _check_qr(a, tol):
    def check(outs):
        q, r = (o.astype(np.float64) for o in outs)
        _close(q @ r, a, tol, "q r = a")
        _close(np.swapaxes(q, -1, -2) @ q, _eye_like(q.shape[-1], a.shape[:-2]), tol, "q orthonormal")
        if np.abs(np.tril(r, -1)).max(initial=0.0) != 0.0:
            raise AssertionError("r is not upper triangular")
    return check


def _check_svd(a, full, tol):
    def check(outs):
        u, s, vt = (o.astype(np.float64) for o in outs)
        m, n = a.shape[-2:]
        k = min(m, n)
        want_u = (m, m) if full else (m, k)
        want_vt = (n, n) if full else (k, n)
        if u.shape[-2:] != want_u or vt.shape[-2:] != want_vt:
            raise AssertionError(f"shapes {u.shape} {vt.shape}")
        _close(s, np.linalg.svd(a, compute_uv=False), tol, "singular values")
        _close((u[..., :, :k] * s[..., None, :]) @ vt[..., :k, :], a, tol, "u s vt = a")
        _close(np.swapaxes(u, -1, -2) @ u, _eye_like(u.shape[-1], a.shape[:-2]), tol, "u orthonormal")
    return check


def _unpack_lu(lu, m, n):
    k = min(m, n)
    l = np.tril(lu[..., :, :k], -1) + np.eye(m, k)
    u = np.triu(lu[..., :k, :])
    return l, u


def _check_lu_factor(a, tol):
    def check(outs):
        lu, piv = outs
        if piv.dtype != np.int32:
            raise AssertionError(f"pivots dtype {piv.dtype}")
        m, n = a.shape[-2:]
        l, u = _unpack_lu(lu.astype(np.float64), m, n)
        pa = a.copy().reshape((-1, m, n))
        pv = piv.reshape((pa.shape[0], -1))
        for b in range(pa.shape[0]):
            for i, j in enumerate(pv[b]):
                pa[b, [i, j]] = pa[b, [j, i]]
        _close(l @ u, pa.reshape(a.shape), tol, "l u = swapped a")
    return check


def _check_lu(a, tol):
    def check(outs):
        p, l, u = (o.astype(np.float64) for o in outs)
        _close(p @ l @ u, a, tol, "p l u = a")
        if np.abs(np.triu(l, 1)).max(initial=0.0) != 0.0 or np.abs(np.tril(u, -1)).max(initial=0.0) != 0.0:
            raise AssertionError("l / u not triangular")
    return check


def norm_cases(rng):
    for dt in F:
        x = rand(rng, (3, 5), dt)
        x64 = x.astype(np.float64)
        for ord_ in [None, 1, 2, 3, 0, 0.5, "inf", "-inf"]:
            o = {"inf": np.inf, "-inf": -np.inf}.get(ord_, ord_)
            attrs = {"axis": -1}
            if ord_ is not None:
                attrs["ord"] = ord_
            yield Case(f"norm_vec_{ord_}_{dt}", "norm", [x], [np.linalg.norm(x64, o, axis=-1).astype(dt)],
                       attrs=attrs, kind="reduction")
        for ord_ in [None, "fro", "nuc", 1, -1, 2, -2, "inf", "-inf"]:
            o = {"inf": np.inf, "-inf": -np.inf}.get(ord_, ord_)
            attrs = {} if ord_ is None else {"ord": ord_}
            yield Case(f"norm_mat_{ord_}_{dt}", "norm", [x], [np.asarray(np.linalg.norm(x64, o)).astype(dt)],
                       attrs=attrs, kind="reduction")
        y = rand(rng, (2, 3, 4), dt)
        yield Case(f"norm_all_{dt}", "norm", [y], [np.asarray(np.linalg.norm(y.astype(np.float64))).astype(dt)],
                   kind="reduction")
        yield Case(f"norm_keepdims_{dt}", "norm", [y],
                   [np.linalg.norm(y.astype(np.float64), axis=(0, 2), keepdims=True).astype(dt)],
                   attrs={"axis": [0, 2], "keepdims": True}, kind="reduction")
    yield Case("norm_err_order", "norm", [rand(rng, (3, 3), "float32")], [], attrs={"ord": 3, "axis": [0, 1]},
               expect_error=True)


def cases(rng):
    yield from matmul_cases(rng)
    yield from product_cases(rng)
    yield from einsum_cases(rng)
    yield from decomposition_cases(rng)
    yield from norm_cases(rng)
