"""Shared nearest-neighbour results, so the attack suite and the distance metrics search once.

Every search goes through :mod:`pgan_cli.neighbors` (FAISS, exact). Self-searches (a set
against itself, self excluded) compute each distance once (``knn_self``), and pairs declared
with :meth:`NeighborCache.pair` get both directions from one pass (``knn_pair``), so the attack
suite and the distance metrics at 20k/20k/50k do about half the GEMM work of independent
searches.

The cache keys arrays by identity and keeps a reference to them. An array built as the
concatenation of rows of other arrays (the candidate set ``M[mi] ∪ H[hi]``) can be declared
with :meth:`register_rows`; its neighbours are then sliced from the parents' results instead of
searched again.

:func:`nearest_in_subset` answers "nearest neighbour within a random subset of the reference"
from the full k-NN lists (the first listed neighbour that lies in the subset), falling back to
an exact search for the rare rows whose k neighbours all lie outside it. It makes the repeated
subsampling of NNAA and of the balanced DCR share exact without searching again.
"""

from __future__ import annotations

import numpy as np

from pgan_cli.neighbors import KnnResult, knn, knn_pair, knn_self

DEFAULT_K = 32


class NeighborCache:
    """Memoised ``knn(query, ref, k, exclude_self)``; results for the largest k asked are kept."""

    def __init__(self, default_k: int = DEFAULT_K, shared_passes: bool = True, device: str = "cpu"):
        self.default_k = int(default_k)
        self.shared_passes = bool(shared_passes)  # False: every search independent (for comparisons)
        self.device = device  # a FAISS device (resolve_knn_device); on a GPU every search is a GPU knn
        self._results: dict[tuple[int, int, bool], tuple[KnnResult, np.ndarray, np.ndarray]] = {}
        self._views: dict[int, tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]] = {}
        self._pairs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.searches = 0

    def pair(self, a: np.ndarray, b: np.ndarray) -> None:
        """Declare that both ``knn(a, b)`` and ``knn(b, a)`` will be asked: the first of them
        computes both from one pass over the distance matrix (:func:`~pgan_cli.neighbors.knn_pair`)."""
        self._pairs[(id(a), id(b))] = (a, b)
        self._pairs[(id(b), id(a))] = (b, a)

    def register_rows(self, view: np.ndarray, parts: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Declare ``view == np.concatenate([parent[rows] for parent, rows in parts])``."""
        total = sum(len(rows) for _, rows in parts)
        if total != len(view):
            raise ValueError("register_rows: the parts do not add up to the view")
        self._views[id(view)] = (view, [(p, np.asarray(r, dtype=np.int64)) for p, r in parts])

    def knn(self, query: np.ndarray, ref: np.ndarray, k: int, exclude_self: bool = False) -> KnnResult:
        """The k nearest rows of ``ref`` for each row of ``query`` (ascending distances)."""
        avail = len(ref) - (1 if exclude_self else 0)
        k = int(min(k, avail))
        view = self._views.get(id(query))
        if view is not None and view[0] is query and not exclude_self:
            pieces = [self.knn(parent, ref, k) for parent, _ in view[1]]
            d = np.concatenate([p.distances[rows, :k] for p, (_, rows) in zip(pieces, view[1])])
            i = np.concatenate([p.indices[rows, :k] for p, (_, rows) in zip(pieces, view[1])])
            return KnnResult(d, i, "l2", True)
        key = (id(query), id(ref), bool(exclude_self))
        hit = self._results.get(key)
        if hit is not None and hit[1] is query and hit[2] is ref and hit[0].distances.shape[1] >= k:
            r = hit[0]
            return KnnResult(r.distances[:, :k], r.indices[:, :k], r.metric, r.exact)
        kk = int(min(max(k, self.default_k), avail))
        pair = self._pairs.get((id(query), id(ref)))
        if self.device != "cpu":  # FAISS GPU index (flat, exact); the shared passes are CPU code
            res = knn(query, ref, kk, exclude_self=exclude_self, device=self.device)
        elif not self.shared_passes:
            res = knn(query, ref, kk, exclude_self=exclude_self)
        elif exclude_self and query is ref:
            res = knn_self(query, kk)  # symmetric: each distance computed once
        elif not exclude_self and pair is not None and pair[0] is query and pair[1] is ref:
            back = int(min(self.default_k, len(query)))
            res, rev = knn_pair(query, ref, kk, back)  # one GEMM pass gives both directions
            self._results[(id(ref), id(query), False)] = (rev, ref, query)
        else:
            res = knn(query, ref, kk, exclude_self=exclude_self)
        self.searches += 1
        self._results[key] = (res, query, ref)
        return KnnResult(res.distances[:, :k], res.indices[:, :k], res.metric, res.exact)


def nearest_in_subset(res: KnnResult, keep: np.ndarray, query: np.ndarray, ref: np.ndarray,
                      query_rows: np.ndarray | None = None, self_rows: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Distance and index (into ``ref``) of each query's nearest neighbour among ``ref[keep]``.

    ``res`` holds the k-NN lists of ``query`` in the full ``ref`` (self already excluded when
    query is ref). ``query_rows`` selects which queries to answer (default all). ``self_rows``:
    for a self-search, the row of ``ref`` each query is (never its own neighbour). Queries whose
    k listed neighbours are all outside the subset are searched exactly in ``ref[keep]``.
    """
    rows = np.arange(len(res.indices)) if query_rows is None else np.asarray(query_rows)
    idx = res.indices[rows]
    dist = res.distances[rows]
    ok = keep[idx]
    found = ok.any(axis=1)
    first = np.argmax(ok, axis=1)
    out_d = dist[np.arange(len(rows)), first].astype(np.float64)
    out_i = idx[np.arange(len(rows)), first].astype(np.int64)
    missing = np.flatnonzero(~found)
    if len(missing):
        sub = np.flatnonzero(keep)
        q = query[rows[missing]]
        if self_rows is None:
            r = knn(q, ref[sub], 1)
            out_d[missing] = r.distances[:, 0]
            out_i[missing] = sub[r.indices[:, 0]]
        else:
            own = np.asarray(self_rows)[rows[missing]]
            kk = min(2, len(sub))
            r = knn(q, ref[sub], kk)
            cand_i = sub[r.indices]
            pick = np.where(cand_i[:, 0] == own, 1, 0) if kk > 1 else np.zeros(len(q), dtype=int)
            out_d[missing] = r.distances[np.arange(len(q)), pick]
            out_i[missing] = cand_i[np.arange(len(q)), pick]
    return out_d, out_i
