"""Exact k-nearest-neighbour search with FAISS, streamed over query batches.

All neighbour work in pgan (knn, fidelity, attacks) goes through :func:`knn`. FAISS returns
squared L2 from ``||x||² + ||y||² - 2x·y``, which can go slightly negative for near-duplicates:
it is clamped at 0 before the square root, and a point is never assumed to be its own first hit
(Johnson, Douze & Jégou, "Billion-scale similarity search with GPUs", 2019).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from pgan_cli.errors import InputError

METRICS = ("l2", "cosine", "linf")
QUERY_BATCH = 8192


@dataclass
class KnnResult:
    """``distances`` (Nq, k) float32 true distances, ``indices`` (Nq, k) int64 rows of the reference."""

    distances: np.ndarray
    indices: np.ndarray
    metric: str
    exact: bool = True


def _faiss():
    import faiss

    faiss.omp_set_num_threads(max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                  else (os.cpu_count() or 1)))
    return faiss


def check_pair(query: np.ndarray, ref: np.ndarray, k: int, exclude_self: bool = False) -> None:
    """Validate a query/reference pair and k, with messages a user can act on."""
    if query.ndim != 2 or ref.ndim != 2:
        raise InputError(f"expected 2-D arrays (N, D), got {query.shape} and {ref.shape}")
    if len(query) == 0 or len(ref) == 0:
        raise InputError(f"empty input: {len(query)} queries, {len(ref)} references")
    if query.shape[1] != ref.shape[1]:
        raise InputError(f"query and reference have different dimensions ({query.shape[1]} vs "
                         f"{ref.shape[1]}); embed both with the same `pgan embed` model")
    n_avail = len(ref) - (1 if exclude_self else 0)
    if k < 1 or k > n_avail:
        raise InputError(f"k = {k} must be between 1 and the number of references ({n_avail})")
    for name, x in (("query", query), ("reference", ref)):
        if not np.isfinite(x).all():
            raise InputError(f"{name} set contains NaN or Inf values")


def _normalise(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def knn(query: np.ndarray, ref: np.ndarray, k: int, metric: str = "l2", exclude_self: bool = False,
        batch_size: int = QUERY_BATCH) -> KnnResult:
    """Exact k nearest neighbours of each query row among the reference rows.

    ``metric``: ``l2`` (Euclidean distances), ``cosine`` (1 - cosine similarity) or ``linf``.
    ``exclude_self``: the query set *is* the reference set; row i never counts as its own
    neighbour (correct with duplicate rows: the duplicate stays, only the row itself goes).
    """
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    query = np.ascontiguousarray(query, dtype=np.float32)
    ref = np.ascontiguousarray(ref, dtype=np.float32)
    check_pair(query, ref, k, exclude_self)
    if exclude_self and len(query) != len(ref):
        raise InputError("exclude_self needs the query set to be the reference set (same rows)")
    faiss = _faiss()
    d = ref.shape[1]
    if metric == "cosine":
        index = faiss.IndexFlatIP(d)
        index.add(_normalise(ref))
    elif metric == "linf":
        index = faiss.IndexFlat(d, faiss.METRIC_Linf)
        index.add(ref)
    else:
        index = faiss.IndexFlatL2(d)
        index.add(ref)
    kk = k + 1 if exclude_self else k
    out_d = np.empty((len(query), k), dtype=np.float32)
    out_i = np.empty((len(query), k), dtype=np.int64)
    for start in range(0, len(query), batch_size):
        q = query[start:start + batch_size]
        if metric == "cosine":
            q = _normalise(q)
        dist, idx = index.search(q, kk)
        if exclude_self:
            rows = np.arange(start, start + len(q))[:, None]
            keep = idx != rows
            # drop the row itself where it was found, else the farthest hit
            no_self = keep.all(axis=1)
            keep[no_self, -1] = False
            dist = dist[keep].reshape(len(q), k)
            idx = idx[keep].reshape(len(q), k)
        out_d[start:start + len(q)] = dist
        out_i[start:start + len(q)] = idx
    if metric == "l2":
        np.sqrt(np.maximum(out_d, 0, out=out_d), out=out_d)
    elif metric == "cosine":
        out_d = np.clip(1.0 - out_d, 0.0, 2.0).astype(np.float32)
    return KnnResult(out_d, out_i, metric, exact=True)


def nearest_distance(query: np.ndarray, ref: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    """L2 distance from each query row to its nearest reference row (a 1-D array)."""
    return knn(query, ref, 1, exclude_self=exclude_self).distances[:, 0]
