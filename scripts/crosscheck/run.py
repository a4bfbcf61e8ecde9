#!/usr/bin/env python3
"""NumPy cross-check of `ingot ops run`.

Imports every family module beside this file (missing ones are skipped), collects their
`cases(rng)`, writes the inputs and one spec into a temporary folder, runs the ingot binary
once, and compares every output with NumPy's: dtype (unless the case checks for itself),
shape, NaN positions, and values within a tolerance chosen by dtype and case kind. Prints a
per-op table and `crosscheck: N passed, M failed`; exits 1 on any failure.

    python3 scripts/crosscheck/run.py [--ingot PATH] [--seed N] [--only OP,..] [--keep DIR]

Besides the fields of common.Case, a case may carry two optional attributes (set them on
the instance): `check_dtype = False` to accept any output dtype, and `zero_sign = False`
to accept 0.0 for -0.0 (checked by default for elementwise float outputs).
"""
import argparse
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections import defaultdict

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

FAMILIES = ["elementwise", "reduce", "shape", "index", "sort", "linalg", "conv", "fft", "misc", "vjp"]
ID_RE = re.compile(r"^[A-Za-z0-9_.-]+$")

# (rtol, atol) by dtype and case kind. atol matters only near zero.
TOL = {
    ("float16", "elementwise"): (1e-3, 1e-3),
    ("float16", "reduction"): (4e-3, 4e-3),
    ("bfloat16", "elementwise"): (1e-2, 1e-2),
    ("bfloat16", "reduction"): (2e-2, 2e-2),
    ("float32", "elementwise"): (1e-5, 1e-6),
    ("float32", "reduction"): (1e-4, 1e-5),
    ("complex64", "elementwise"): (1e-5, 1e-6),
    ("complex64", "reduction"): (1e-4, 1e-5),
    ("float64", "elementwise"): (1e-12, 1e-13),
    ("float64", "reduction"): (1e-10, 1e-11),
    ("complex128", "elementwise"): (1e-12, 1e-13),
    ("complex128", "reduction"): (1e-10, 1e-11),
}


def default_binary():
    """target/release/ingot or target/debug/ingot, the newer when both exist (a stale
    release build must not hide a fresh debug one)."""
    found = [p for p in (os.path.join(ROOT, "target", k, "ingot") for k in ("release", "debug"))
             if os.path.exists(p)]
    if not found:
        return os.path.join(ROOT, "target", "debug", "ingot")
    return max(found, key=os.path.getmtime)


def load_families(names):
    """[(family, module or None, error or None)]"""
    out = []
    for fam in names:
        if not os.path.exists(os.path.join(HERE, fam + ".py")):
            out.append((fam, None, None))
            continue
        try:
            out.append((fam, importlib.import_module(fam), None))
        except Exception:
            out.append((fam, None, traceback.format_exc()))
    return out


def load_output(path):
    """np.load, turning ingot's bfloat16 ('<V2', as ml_dtypes writes it) into float32."""
    a = np.load(path)
    if a.dtype.kind == "V" and a.dtype.itemsize == 2:
        bits = a.view(np.uint16).astype(np.uint32) << 16
        return bits.view(np.float32), "bfloat16"
    return a, str(a.dtype)


def dtype_name(a):
    try:
        import ml_dtypes  # noqa: F401  (optional: expected bf16 arrays)
        if a.dtype == np.dtype("bfloat16"):
            return "bfloat16"
    except (ImportError, TypeError):
        pass
    return str(a.dtype)


def _first(mask):
    return tuple(int(v) for v in np.argwhere(mask)[0])


def compare(case, k, got, got_dtype, want):
    """None when equal enough, else a message."""
    want = np.asarray(want)
    want_dtype = dtype_name(want)
    if getattr(case, "check_dtype", True) and got_dtype != want_dtype:
        return f"out{k}: dtype {got_dtype}, expected {want_dtype}"
    if got.shape != want.shape:
        return f"out{k}: shape {got.shape}, expected {want.shape}"
    if got.size == 0:
        return None
    if want_dtype == "bfloat16":
        want = want.astype(np.float32)
    kind = want.dtype.kind
    if kind in "biuSU" or (kind == "V"):
        if not np.array_equal(got, want):
            bad = np.argwhere(got != want)
            i = tuple(int(v) for v in bad[0]) if len(bad) else ()
            return f"out{k}: {len(bad)} elements differ, first at {i}: got {got[i]!r}, expected {want[i]!r}"
        return None
    rtol, atol = TOL.get((want_dtype, case.kind), TOL.get((want_dtype, "elementwise"), (1e-5, 1e-6)))
    if case.rtol is not None:
        rtol = case.rtol
    if case.atol is not None:
        atol = case.atol
    g = got.astype(np.complex128 if kind == "c" else np.float64)
    w = want.astype(np.complex128 if kind == "c" else np.float64)
    parts = [(g.real, w.real), (g.imag, w.imag)] if kind == "c" else [(g, w)]
    for gp, wp in parts:
        gn, wn = np.isnan(gp), np.isnan(wp)
        if not np.array_equal(gn, wn):
            i = _first(gn != wn)
            return f"out{k}: NaN positions differ, first at {i}: got {got[i]!r}, expected {want[i]!r}"
        gi, wi = np.isinf(gp), np.isinf(wp)
        if not np.array_equal(gp[gi | wi], wp[gi | wi]):
            i = _first((gi | wi) & (gp != wp))
            return f"out{k}: infinities differ at {i}: got {got[i]!r}, expected {want[i]!r}"
        if case.kind == "elementwise" and kind == "f" and getattr(case, "zero_sign", True):
            # -0.0 where NumPy gives -0.0 (negative, round, tanh, ...).
            zs = (gp == 0) & (wp == 0) & (np.signbit(gp) != np.signbit(wp))
            if zs.any():
                i = _first(zs)
                return f"out{k}: sign of zero differs at {i}: got {got[i]!r}, expected {want[i]!r}"
    fin = np.isfinite(w.real) & np.isfinite(w.imag) if kind == "c" else np.isfinite(w)
    with np.errstate(all="ignore"):  # inf - inf where both are inf: already checked
        err = np.abs(g - w)
        lim = atol + rtol * np.abs(w)
    bad = fin & ~(err <= lim)
    if bad.any():
        i = _first(bad)
        worst = float(np.max(np.where(fin, err / np.maximum(np.abs(w), 1e-300), 0)))
        return (f"out{k}: {int(bad.sum())} of {bad.size} elements off (rtol {rtol}, atol {atol}), "
                f"first at {i}: got {got[i]!r}, expected {want[i]!r}; worst relative error {worst:.3g}")
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ingot", default=None, help="the ingot binary (default: target/release, else target/debug)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--families", default=",".join(FAMILIES), help="comma-separated family modules")
    ap.add_argument("--only", default=None, help="comma-separated op names to run")
    ap.add_argument("--keep", default=None, help="write inputs and outputs here and keep them")
    ap.add_argument("--show", type=int, default=40, help="failures to print in full")
    args = ap.parse_args()
    binary = args.ingot or default_binary()
    only = set(args.only.split(",")) if args.only else None

    failures = []  # (op, id, message)
    table = defaultdict(lambda: [0, 0])  # op -> [passed, failed]

    cases = []
    for fam, mod, err in load_families(args.families.split(",")):
        if err:
            failures.append((f"<{fam}>", fam, "import failed:\n" + err))
            table[f"<{fam}>"][1] += 1
            continue
        if mod is None:
            print(f"crosscheck: {fam}.py not present, skipped", file=sys.stderr)
            continue
        try:
            got = list(mod.cases(np.random.default_rng(args.seed)))
        except Exception:
            failures.append((f"<{fam}>", fam, "cases() failed:\n" + traceback.format_exc()))
            table[f"<{fam}>"][1] += 1
            continue
        cases += [c for c in got if only is None or c.op in only]

    seen = set()
    good = []
    for c in cases:
        if not ID_RE.match(c.id) or ".." in c.id or c.id in seen:
            failures.append((c.op, c.id, "bad or duplicate case id"))
            table[c.op][1] += 1
            continue
        seen.add(c.id)
        good.append(c)
    cases = good

    work = args.keep or tempfile.mkdtemp(prefix="ingot-crosscheck-")
    os.makedirs(work, exist_ok=True)
    out_dir = os.path.join(work, "out")
    os.makedirs(out_dir, exist_ok=True)
    try:
        spec_cases = []
        for c in cases:
            names = []
            for k, x in enumerate(c.inputs):
                name = f"{c.id}.in{k}.npy"
                np.save(os.path.join(work, name), np.asarray(x))
                names.append(name)
            entry = {"id": c.id, "op": c.op, "inputs": names}
            if c.vjp is not None:
                cnames = []
                for k, g in enumerate(c.vjp):
                    name = f"{c.id}.cot{k}.npy"
                    np.save(os.path.join(work, name), np.asarray(g))
                    cnames.append(name)
                entry["vjp"] = cnames
            if c.attrs:
                entry["attrs"] = c.attrs
            spec_cases.append(entry)
        spec = os.path.join(work, "spec.json")
        with open(spec, "w") as f:
            json.dump({"device": args.device, "cases": spec_cases}, f, indent=1)
        cmd = [binary, "ops", "run", spec, "--out", out_dir]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True)
            rc, log = proc.returncode, proc.stderr.strip()
        except OSError as e:
            rc, log = -1, str(e)
        if rc != 0:
            print(f"crosscheck: `{' '.join(cmd)}` failed with status {rc}:\n{log}", file=sys.stderr)
            for c in cases:
                failures.append((c.op, c.id, "ingot did not run"))
                table[c.op][1] += 1
            cases = []
        elif log:
            print(log.splitlines()[-1], file=sys.stderr)

        for c in cases:
            msg = check_case(c, out_dir)
            if msg is None:
                table[c.op][0] += 1
            else:
                table[c.op][1] += 1
                failures.append((c.op, c.id, msg))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    width = max([len(op) for op in table] + [2])
    print(f"{'op':<{width}}  passed  failed")
    for op in sorted(table):
        p, f = table[op]
        print(f"{op:<{width}}  {p:>6}  {f:>6}{'  <-' if f else ''}")
    for op, cid, msg in failures[: args.show]:
        print(f"FAIL {cid} ({op}): {msg}")
    if len(failures) > args.show:
        print(f"... and {len(failures) - args.show} more failures")
    passed = sum(p for p, _ in table.values())
    failed = sum(f for _, f in table.values())
    print(f"crosscheck: {passed} passed, {failed} failed")
    return 1 if failed else 0


def check_case(c, out_dir):
    err_path = os.path.join(out_dir, f"{c.id}.error.txt")
    err = open(err_path).read().strip() if os.path.exists(err_path) else None
    if c.expect_error:
        return None if err else "expected an error, got none"
    if err:
        return f"error: {err}"
    outs = []
    for k in range(len(c.expected)):
        p = os.path.join(out_dir, f"{c.id}.out{k}.npy")
        if not os.path.exists(p):
            return f"out{k} was not written"
        outs.append(load_output(p))
    if os.path.exists(os.path.join(out_dir, f"{c.id}.out{len(c.expected)}.npy")):
        return f"more than the {len(c.expected)} expected output(s)"
    if c.check is not None:
        try:
            c.check([o for o, _ in outs])
        except Exception as e:
            return f"check failed: {e}"
        return None
    for k, ((got, gd), want) in enumerate(zip(outs, c.expected)):
        msg = compare(c, k, got, gd, want)
        if msg:
            return msg
    for k, want in enumerate(c.expected_vjp or []):
        p = os.path.join(out_dir, f"{c.id}.vjp{k}.npy")
        if not os.path.exists(p):
            return f"vjp{k} was not written"
        if want is None:
            continue
        got, _ = load_output(p)
        if got.shape != want.shape:
            return f"vjp{k}: shape {got.shape}, expected {want.shape}"
        if not np.allclose(got, want, rtol=c.vjp_rtol, atol=c.vjp_atol):
            err = np.max(np.abs(got - want))
            return f"vjp{k}: max abs difference {err:.3g} from finite differences"
    return None


if __name__ == "__main__":
    sys.exit(main())
