"""Shared definitions for the NumPy cross-check of `ingot ops run`.

Each family module (elementwise.py, reduce.py, ...) defines `cases(rng)` yielding `Case`s:
the op name and attrs as `ingot ops list` prints them, the input arrays, and the outputs
NumPy computes. The driver (run.py) writes the inputs as .npy, runs ingot, and compares.
"""
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np


@dataclass
class Case:
    id: str                       # unique, file-name safe: letters, digits, '-', '_'
    op: str                       # ingot op name
    inputs: list                  # list of np.ndarray
    expected: list                # list of np.ndarray (NumPy's outputs, in order)
    attrs: dict = field(default_factory=dict)
    rtol: Optional[float] = None  # None: by dtype (f32 1e-5 elementwise; see run.py)
    atol: Optional[float] = None
    kind: str = "elementwise"     # "elementwise" or "reduction" (reductions, matmul: 1e-4)
    expect_error: bool = False    # the case must produce <id>.error.txt
    check: Any = None             # optional callable(outputs) -> None raising on mismatch,
                                  # for ops whose outputs are not unique (eigenvectors, ...)
    vjp: Optional[list] = None    # cotangents, one per output: ingot also writes vjp<i>.npy
    expected_vjp: Optional[list] = None  # per input: the expected vjp, or None (not compared)
    vjp_rtol: float = 1e-5        # finite differences are good to about 1e-7 relative
    vjp_atol: float = 1e-6


def rand(rng, shape, dtype):
    """Random values suited to a dtype: normal floats, small ints, random bools."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if dtype.kind == "u":
        return rng.integers(0, 50, size=shape).astype(dtype)
    if dtype.kind == "i":
        return rng.integers(-50, 50, size=shape).astype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return (rng.standard_normal(shape) * 2).astype(dtype)
