"""Disjoint, stratified, seeded splits of a dataset (members / holdout / reference)."""

from __future__ import annotations

import numpy as np

from pgan_cli.errors import InputError


def row_digests(x: np.ndarray) -> np.ndarray:
    """A 16-byte BLAKE2b digest of each row's bytes (float32), as an ``(N,)`` array of ``|S16``."""
    import hashlib

    rows = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(len(x), -1))
    rows = rows + np.float32(0.0)  # -0.0 and 0.0 are one value
    return np.array([hashlib.blake2b(r.tobytes(), digest_size=16).digest() for r in rows], dtype="S16")


def count_shared_rows(a: np.ndarray, b: np.ndarray) -> int:
    """How many rows of ``b`` also occur, value for value, in ``a``."""
    return int(np.isin(row_digests(b), row_digests(a)).sum())


def require_disjoint(sets: list[tuple[str, object, np.ndarray | None]], what: str) -> None:
    """Refuse sets that share records: ``[(role, path, rows), ...]`` compared pairwise.

    A record in both the members and the holdout makes every membership figure meaningless
    (the attack is asked to tell a record from itself), so this is an input error, not a warning.
    """
    digests = [(f"{role} {path}".strip(), row_digests(x)) for role, path, x in sets if x is not None]
    for i, (a, da) in enumerate(digests):
        for b, db in digests[i + 1:]:
            shared = int(np.isin(db, da).sum())
            if shared:
                raise InputError(f"{a} and {b} share {shared} record(s); {what} need disjoint sets "
                                 f"(split them with `pgan data split`)")


def parse_fractions(text: str) -> list[float]:
    """Parse ``"0.5,0.25,0.25"``; fractions must be positive and sum to 1."""
    try:
        fr = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--fractions {text!r} must be comma-separated numbers, e.g. 0.5,0.25,0.25") from None
    if not fr or any(not np.isfinite(f) or f <= 0 for f in fr):
        raise InputError(f"--fractions {text!r} must all be positive")
    if abs(sum(fr) - 1.0) > 1e-6:
        raise InputError(f"--fractions {text!r} sum to {sum(fr):g}, not 1")
    return fr


def _allocate(n: int, fractions: list[float]) -> np.ndarray:
    """Split the integer n by fractions with the largest-remainder method (sums exactly to n)."""
    raw = np.asarray(fractions) * n
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def stratified_split(n: int, fractions: list[float], labels: np.ndarray | None = None,
                     seed: int = 0) -> list[np.ndarray]:
    """Row indices of each part: disjoint, covering all n rows, stratified by label when given.

    Each class is shuffled with the seed and cut by the fractions (largest remainder), so class
    proportions match in every part up to one row per class; indices are returned sorted.
    """
    if n < len(fractions):
        raise InputError(f"cannot split {n} rows into {len(fractions)} non-empty parts")
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    # allocate per class, then fix the totals so every part gets its overall share
    for idx in groups:
        idx = idx[rng.permutation(len(idx))]
        counts = _allocate(len(idx), fractions)
        for p, (a, b) in enumerate(zip(np.cumsum(counts) - counts, np.cumsum(counts))):
            parts[p].append(idx[a:b])
    out = [np.sort(np.concatenate(p)) if p else np.empty(0, dtype=np.int64) for p in parts]
    for name, part in zip(range(len(out)), out):
        if len(part) == 0:
            raise InputError(f"part {name + 1} of the split would be empty; use fewer parts or larger fractions")
    return [o.astype(np.int64) for o in out]
