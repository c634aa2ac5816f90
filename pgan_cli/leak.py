"""Planted leaks: synthetic sets with a known share of (noisy) member copies, to validate attacks.

:func:`plant_leak` builds N records of which round(F * N) are copies of members plus
N(0, sigma²) noise and the rest are fresh population records (never members). The rows are
shuffled; which rows are copies, and of which member, is returned (and stored in the file by
``pgan data leak``), so a test can check that an attack finds exactly the planted members.
F = 0 gives the null (an attack must score AUC 0.5), F = 1 with small noise a blatant leak.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pgan_cli.errors import InputError

LEAK_ATTR = "leak"
LEAK_IS_COPY = "leak_is_copy"                    # int8 (N,): 1 for a member copy
LEAK_MEMBER_INDEX = "leak_member_index"          # int64 (N,): copied member's row, -1 for fresh rows
LEAK_POPULATION_INDEX = "leak_population_index"  # int64 (N,): population row, -1 for copies


@dataclass
class Leak:
    samples: np.ndarray
    labels: np.ndarray | None
    is_copy: np.ndarray
    member_index: np.ndarray
    population_index: np.ndarray
    summary: dict


def plant_leak(members: np.ndarray, population: np.ndarray, fraction: float, noise: float, n: int | None = None,
               seed: int = 0, member_labels: np.ndarray | None = None, population_labels: np.ndarray | None = None,
               clip: tuple[float, float] | None = None) -> Leak:
    """A synthetic set with a fraction ``fraction`` of noisy member copies (see the module docstring).

    ``clip``: value range to clip to after adding noise (images: (-1, 1)).
    """
    M = np.asarray(members, dtype=np.float32)
    P = np.asarray(population, dtype=np.float32)
    if not np.isfinite(fraction) or not 0.0 <= fraction <= 1.0:
        raise InputError(f"--fraction must be between 0 and 1, got {fraction}")
    if not np.isfinite(noise) or noise < 0:
        raise InputError(f"--noise must be a non-negative number, got {noise}")
    if len(M) == 0 or len(P) == 0:
        raise InputError(f"members ({len(M)} rows) and population ({len(P)} rows) must not be empty")
    if M.shape[1:] != P.shape[1:]:
        raise InputError(f"members have samples of shape {M.shape[1:]} but the population has {P.shape[1:]}; "
                         f"both must be in one space")
    n = len(M) if n is None else int(n)
    if n < 1:
        raise InputError(f"-n must be at least 1, got {n}")
    n_copy = int(round(fraction * n))
    n_fresh = n - n_copy
    if n_fresh > len(P):
        raise InputError(f"the population has {len(P)} records but {n_fresh} fresh rows are needed "
                         f"(-n {n}, --fraction {fraction}); give a larger population or a smaller -n")
    rng = np.random.default_rng(seed)
    replace = n_copy > len(M)
    mi = rng.choice(len(M), n_copy, replace=replace) if n_copy else np.empty(0, dtype=np.int64)
    pi = rng.choice(len(P), n_fresh, replace=False) if n_fresh else np.empty(0, dtype=np.int64)
    copies = M[mi]
    if n_copy:
        copies += rng.normal(0.0, noise, size=copies.shape).astype(np.float32)
    x = np.concatenate([copies, P[pi]]).astype(np.float32)
    if clip is not None:
        np.clip(x, clip[0], clip[1], out=x)
    is_copy = np.r_[np.ones(n_copy, dtype=np.int8), np.zeros(n_fresh, dtype=np.int8)]
    m_index = np.r_[mi, np.full(n_fresh, -1)].astype(np.int64)
    p_index = np.r_[np.full(n_copy, -1), pi].astype(np.int64)
    labels = None
    if member_labels is not None and population_labels is not None:
        labels = np.r_[np.asarray(member_labels)[mi], np.asarray(population_labels)[pi]].astype(np.int64)
    order = rng.permutation(n)
    summary = {"fraction": float(fraction), "noise": float(noise), "n": n, "n_copies": n_copy,
               "n_fresh": n_fresh, "copies_with_replacement": bool(replace), "seed": int(seed),
               "clipped_to": list(clip) if clip is not None else None,
               "rows": f"datasets {LEAK_IS_COPY}, {LEAK_MEMBER_INDEX}, {LEAK_POPULATION_INDEX}"}
    return Leak(x[order], None if labels is None else labels[order], is_copy[order], m_index[order],
                p_index[order], summary)


def shared_rows(members: np.ndarray, population: np.ndarray) -> int:
    """How many population records are exact copies of a member (they would leak as 'fresh' rows)."""
    from pgan_cli.neighbors import nearest_distance

    m = np.asarray(members, dtype=np.float32).reshape(len(members), -1)
    p = np.asarray(population, dtype=np.float32).reshape(len(population), -1)
    return int((nearest_distance(p, m) <= 1e-6).sum())


def leak_files(members, population, output, fraction: float, noise: float, n: int | None = None,
               seed: int = 0) -> Leak:
    """``pgan data leak``: read the two dataset files, plant the leak, write ``output`` atomically."""
    from pgan_cli import console
    from pgan_cli.dataset import KIND_IMAGES, read_dataset, write_dataset
    from pgan_cli.provenance import make_provenance

    mb, pb = read_dataset(members), read_dataset(population)
    if mb.kind != pb.kind:
        raise InputError(f"{members} holds {mb.kind} but {population} holds {pb.kind}; both must be one kind")
    if mb.samples.shape[1:] != pb.samples.shape[1:]:
        raise InputError(f"{members} has samples of shape {mb.samples.shape[1:]} but {population} has "
                         f"{pb.samples.shape[1:]}; both must be in one space")
    same = shared_rows(mb.samples, pb.samples)
    if same:
        console.warn(f"{same} population records are identical to members; they would leak as 'fresh' rows "
                     f"(use a population disjoint from the members, e.g. the reference split)")
    clip = (-1.0, 1.0) if mb.kind == KIND_IMAGES else None
    leak = plant_leak(mb.samples, pb.samples, fraction, noise, n, seed, mb.labels, pb.labels, clip)
    leak.summary["population_rows_identical_to_members"] = same
    labels = leak.labels
    class_names = mb.class_names if labels is not None else None
    if labels is not None and class_names is not None and labels.max() >= len(class_names):
        class_names = pb.class_names if pb.class_names and labels.max() < len(pb.class_names) else None
    prov = make_provenance([members, population], seed=seed, fraction=fraction, noise=noise, n=leak.summary["n"])
    write_dataset(output, leak.samples, provenance=prov, labels=labels, kind=mb.kind, class_names=class_names,
                  attrs={LEAK_ATTR: leak.summary, "source": "pgan data leak (planted-leak validation set)"},
                  extra={LEAK_IS_COPY: leak.is_copy, LEAK_MEMBER_INDEX: leak.member_index,
                         LEAK_POPULATION_INDEX: leak.population_index})
    return leak
