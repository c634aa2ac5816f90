"""Disjoint, stratified, seeded splits of a dataset (members / holdout / reference)."""

from __future__ import annotations

import numpy as np

from pgan_cli.errors import InputError
from pgan_cli.params import ParameterError


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
    require_disjoint_digests([(f"{role} {path}".strip(), row_digests(x)) for role, path, x in sets if x is not None],
                             what)


def require_disjoint_digests(digests: list[tuple[str, np.ndarray]], what: str) -> None:
    """:func:`require_disjoint` on row digests computed already (``[(name, row_digests(x)), ...]``)."""
    for i, (a, da) in enumerate(digests):
        for b, db in digests[i + 1:]:
            shared = int(np.isin(db, da).sum())
            if shared:
                raise InputError(f"{a} and {b} share {shared} record(s); {what} need disjoint sets "
                                 f"(split them with `pgan data split`)")


def parse_fractions(text: str) -> list[float]:
    """Parse ``"0.5,0.25,0.25"``; fractions must be positive and sum to 1."""
    want = "comma-separated positive numbers summing to 1, e.g. 0.5,0.25,0.25"
    try:
        fr = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ParameterError("fractions", want, text) from None
    if not fr or any(not np.isfinite(f) or f <= 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise ParameterError("fractions", want, text)
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


def split_file(source, out_dir, *, fractions: str = "0.5,0.25,0.25", names: str = "train,holdout,reference",
               seed: int = 0) -> dict:
    """``pgan data split``: disjoint, stratified, seeded parts of a dataset file, written into
    ``out_dir`` together (``outputs.output_set``); returns ``{source, out_dir, n, seed, parts}``."""
    from pathlib import Path

    from pgan_cli.dataset import MANAGED_ATTRS, DatasetWriter, read_dataset
    from pgan_cli.files import check_planned
    from pgan_cli.outputs import output_set
    from pgan_cli.provenance import make_provenance, shown_path

    fr = parse_fractions(fractions)
    name_list = [n.strip() for n in names.split(",") if n.strip()]
    if len(name_list) != len(fr):
        raise ParameterError("names", f"{len(fr)} comma-separated names, one per fraction", names)
    if (len(set(name_list)) != len(name_list)
            or any(n in (".", "..") or n.startswith(".pgan") or not n.isprintable() or "/" in n or "\\" in n
                   for n in name_list)):
        raise ParameterError("names", "distinct plain file names", names)
    out_dir = Path(out_dir)
    check_planned(out_dir, [f"{n}.h5" for n in name_list], "--out-dir")
    bundle = read_dataset(source)
    parts = stratified_split(bundle.n, fr, bundle.labels, seed)
    prov = make_provenance([source], seed=seed, fractions=fr, names=name_list)
    # the parts appear together (and replace an earlier split's parts in this folder) or not at all
    with output_set(out_dir, "pgan data split") as staged:
        for name, idx in zip(name_list, parts):
            w = DatasetWriter(staged.path(f"{name}.h5"), len(idx), bundle.samples.shape[1:],
                              provenance={**prov, "split": name}, kind=bundle.kind,
                              with_labels=bundle.labels is not None, class_names=bundle.class_names,
                              latent_dim=None if bundle.latents is None else bundle.latents.shape[1],
                              attrs={k: v for k, v in bundle.attrs.items() if k not in MANAGED_ATTRS})
            with w:
                w.write(bundle.samples[idx], None if bundle.labels is None else bundle.labels[idx],
                        None if bundle.latents is None else bundle.latents[idx])
                w.add_dataset("source_indices", idx)
    return {"source": shown_path(source), "out_dir": shown_path(out_dir), "n": bundle.n, "seed": seed,
            "parts": {name: {"path": shown_path(out_dir / f"{name}.h5"), "n": len(idx)}
                      for name, idx in zip(name_list, parts)}}
