"""Checks of the arrays every measuring step takes: one place, one message.

A set of records is a 2-D array (N, D) of numbers. Every value must be finite and within
``±MAX_ABS_VALUE``: a float32 squared distance over a record of up to 2^26 values (the largest a
dataset file holds, 256 MiB) stays below float32's maximum 3.4e38 only while D·(2M)² does, which
gives M ≤ 1.1e15; FAISS's ‖a‖² + ‖b‖² − 2a·b is bounded the same way (``docs/FORMAT.md``). The
file readers (:mod:`pgan_cli.dataset`, :mod:`pgan_cli.samples`) and the in-memory library calls
(:mod:`pgan_cli.metrics`, :mod:`pgan_cli.neighbors`, :mod:`pgan_cli.attacks`) check with the same
functions, so a set refused from a file is refused from a notebook too.
"""

from __future__ import annotations

import numpy as np

from pgan_cli.errors import InputError

FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_ABS_VALUE = 1e15


def value_problem(x: np.ndarray, start: int = 0) -> str | None:
    """What makes rows ``x`` (row ``start`` onwards, any numeric dtype) unusable, or None: NaN or
    Inf, a value beyond float32 range (a float64 input) or beyond ±MAX_ABS_VALUE."""
    x = x.reshape(len(x), -1)
    ok = (x >= -MAX_ABS_VALUE) & (x <= MAX_ABS_VALUE)  # False for NaN too
    if ok.all():
        return None
    row = int(np.argmin(ok.all(axis=1)))
    bad = x[row][~ok[row]].astype(np.float64)
    where = f"first at row {start + row}"
    if not np.isfinite(bad).all():
        return f"contains NaN or Inf ({where}); clean the data first"
    v = float(bad[np.argmax(np.abs(bad))])
    if abs(v) > FLOAT32_MAX:
        return f"holds {v:.3g} ({where}), beyond float32 range (+-3.4e38); rescale the data"
    return (f"holds {v:.3g} ({where}); values beyond +-1e15 overflow float32 distance arithmetic; "
            f"rescale the data")


def check_values(a: np.ndarray, name: str, start: int = 0) -> None:
    """Raise when ``a`` holds a value :func:`value_problem` refuses (``name`` says which set)."""
    problem = value_problem(np.asarray(a), start) if np.asarray(a).size else None
    if problem is not None:
        raise InputError(f"{name} {problem}")


def check_rows(a: np.ndarray, name: str, *, min_rows: int = 1, flatten: bool = False) -> np.ndarray:
    """``a`` as a set of records: a 2-D numeric array (N, D) with D > 0 and at least ``min_rows``
    rows, every value usable (:func:`value_problem`). ``flatten`` first makes each record (an
    image, say) one row. Returns ``a`` as an array, not copied."""
    a = np.asarray(a)
    if flatten and a.ndim > 2:
        a = a.reshape(len(a), -1)
    if a.ndim != 2:
        raise InputError(f"{name} must be a set of vectors, a 2-D array (N, D); got shape {a.shape}")
    if a.dtype.kind not in "fiub":
        raise InputError(f"{name} has dtype {a.dtype}; expected numbers")
    if a.shape[1] == 0:
        raise InputError(f"{name} has no features (shape {a.shape})")
    if len(a) < min_rows:
        raise InputError(f"{name} has {len(a)} row(s); at least {min_rows} are needed")
    check_values(a, name)
    return a


def check_same_space(a: np.ndarray, b: np.ndarray, a_name: str, b_name: str) -> None:
    """Raise when two sets of vectors have different dimensions (they are in different spaces)."""
    if a.shape[1] != b.shape[1]:
        raise InputError(f"{a_name} and {b_name} have different dimensions ({a.shape[1]} vs {b.shape[1]}); "
                         f"compare sets in the same space (the same `pgan embed` model)")
