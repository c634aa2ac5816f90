"""The neighbour index, exact re-ranking and in-memory searches (:mod:`pgan_cli.neighbors` says
how distances are made exact), and the recall of approximate searches (docs/knn.md)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pgan_cli import devices
from pgan_cli.arrays import check_values
from pgan_cli.errors import InputError, UsageError

METRICS = ("l2", "cosine", "linf")
INDEXES = ("flat", "ivf", "hnsw")
QUERY_BATCH = 8192
GPU_MAX_K = 2048  # FAISS GPU k-selection limit (flat and IVF indexes)
EXTRA_CANDIDATES = 4  # candidates fetched beyond k, re-ranked with exact distances
RECALL_SAMPLE = 1000  # queries compared with exact search by the recall check
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
_REFINE_BYTES = 64 << 20
# exact CPU search (flat index, l2 or cosine): blocked torch GEMM + top-k (pgan_cli.neighbors.gemm),
# or faiss.knn; linf, GPUs and the approximate indexes always use FAISS
CPU_ENGINES = ("gemm", "faiss")
CPU_ENGINE = "gemm"


@dataclass
class KnnResult:
    """``distances`` (Nq, k) float32 true distances, ``indices`` (Nq, k) int64 rows of the reference.

    ``exact`` is False for ``ivf``/``hnsw`` searches; ``recall`` (tie-tolerant recall@k against
    exact search on a sample of queries) is set when the check was asked for. An approximate
    search that finds fewer than k candidates marks the missing ones with index -1 and distance inf.
    """

    distances: np.ndarray
    indices: np.ndarray
    metric: str
    exact: bool = True
    index: str = "flat"
    device: str = "cpu"
    recall: float | None = None


def _faiss():
    import faiss

    # FAISS and torch share the OpenMP runtime: set it to pgan's limit, never above OMP_NUM_THREADS
    faiss.omp_set_num_threads(devices.cpu_threads())
    return faiss


# the devices module owns the parsing; these names stay for the neighbour API's callers
resolve_knn_device = devices.faiss_device
attack_knn_device = devices.faiss_device_for
faiss_num_gpus = devices.faiss_num_gpus


def check_pair(query: np.ndarray, ref: np.ndarray, k: int, exclude_self: bool = False) -> None:
    """Validate a query/reference pair and k, with messages a user can act on."""
    if query.ndim != 2 or ref.ndim != 2:
        raise InputError(f"expected 2-D arrays (N, D), got {query.shape} and {ref.shape}")
    check_shapes(query.shape, ref.shape, k, exclude_self)
    for name, x in (("query", query), ("reference", ref)):
        check_values(x, f"the {name} set")


def check_shapes(qshape: tuple[int, ...], rshape: tuple[int, ...], k: int, exclude_self: bool = False) -> None:
    """Shape and k checks shared by the in-memory and streamed searches."""
    if qshape[0] == 0 or rshape[0] == 0:
        raise InputError(f"empty input: {qshape[0]} queries, {rshape[0]} references")
    if qshape[1] != rshape[1]:
        raise InputError(f"query and reference have different dimensions ({qshape[1]} vs "
                         f"{rshape[1]}); embed both with the same `pgan embed` model")
    if exclude_self and qshape[0] != rshape[0]:
        raise InputError(f"exclude_self needs the query set to be the reference set, but they have "
                         f"{qshape[0]} and {rshape[0]} rows")
    n_avail = rshape[0] - (1 if exclude_self else 0)
    if k < 1 or k > n_avail:
        raise InputError(f"k = {k} must be between 1 and the number of references ({n_avail}"
                         f"{', excluding self' if exclude_self else ''})")


def _normalise(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(n, 1e-30)).astype(np.float32, copy=False)


def default_nlist(n: int) -> int:
    """IVF cells: about 4·sqrt(N), with at least 39 training points per cell (FAISS's minimum)."""
    return int(max(1, min(int(4 * np.sqrt(n)), n // 39)))


def default_nprobe(nlist: int) -> int:
    """IVF cells scanned per query: 1/8 of the cells, at least 16 (or all when fewer)."""
    return int(min(nlist, max(16, nlist // 8)))


class NeighborIndex:
    """The reference set as a FAISS index; :meth:`search` returns candidate rows for a query batch.

    ``ref`` must stay alive and unchanged while the index is used (distances are re-computed
    from it). The L2 search works on data centred on the reference's mean: the exact CPU engine
    centres the reference slice by slice as it multiplies (no copy), or in place with
    ``in_place`` (the caller gives the array up); FAISS indexes hold a centred copy. The cosine
    index holds a row-normalised copy.
    """

    def __init__(self, ref: np.ndarray, metric: str = "l2", index: str = "flat", device: str = "cpu",
                 k: int = 1, nlist: int | None = None, nprobe: int | None = None, hnsw_m: int = HNSW_M,
                 ef_search: int | None = None, seed: int = 0, in_place: bool = False, engine: str | None = None):
        from pgan_cli import console

        if metric not in METRICS:
            raise InputError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
        if index not in INDEXES:
            raise InputError(f"unknown index {index!r}; use one of {', '.join(INDEXES)}")
        if metric == "linf" and index != "flat":
            raise UsageError(f"--metric linf works with the exact flat index only, not {index}")
        if engine not in (None,) + CPU_ENGINES:
            raise ValueError(f"unknown engine {engine!r}; one of {CPU_ENGINES}")
        self.faiss = faiss = _faiss()
        self.ref, self.metric, self.kind = ref, metric, index
        self.engine = "faiss"
        self.device = resolve_knn_device(device)
        if self.device != "cpu" and (metric == "linf" or index == "hnsw"):
            console.warn(f"{'--metric linf' if metric == 'linf' else 'the hnsw index'} runs on the CPU "
                         f"only; searching on the CPU instead of {self.device}")
            self.device = "cpu"
        if self.device != "cpu" and k + EXTRA_CANDIDATES > GPU_MAX_K:
            raise UsageError(f"k = {k} is too large for FAISS on GPU (k <= {GPU_MAX_K - EXTRA_CANDIDATES} "
                             f"here); use --device cpu")
        n, d = ref.shape
        self.shift = None
        self.centred = False  # whether refine_ref (and the queries' refine space) is centred
        engine = engine or CPU_ENGINE
        on_the_fly = index == "flat" and self.device == "cpu" and engine == "gemm"
        if metric == "l2":
            self.shift = ref.mean(axis=0, dtype=np.float64).astype(np.float32)
            if in_place and ref.dtype == np.float32 and ref.flags.c_contiguous and ref.flags.writeable:
                ref -= self.shift  # the caller gave up this array: no second copy of the reference
                base, self.centred = ref, True
            elif on_the_fly:  # the GEMM engine centres slices as it multiplies them: no copy
                base = np.ascontiguousarray(ref, dtype=np.float32)
            else:
                base, self.centred = np.ascontiguousarray(ref - self.shift, dtype=np.float32), True
            # distances are re-computed from the differences of these rows (the mean, when
            # subtracted, cancels in every difference)
            self.refine_ref = base
        elif metric == "cosine":
            base = _normalise(ref)
            self.refine_ref = ref
        else:
            base = np.ascontiguousarray(ref, dtype=np.float32)
            self.refine_ref = ref
        fmetric = {"l2": faiss.METRIC_L2, "cosine": faiss.METRIC_INNER_PRODUCT, "linf": faiss.METRIC_Linf}[metric]
        self._fmetric = fmetric
        self._gpu_res = None
        self._base = None
        self.params: dict[str, Any] = {}
        self._gemm = None
        if index == "flat":
            if self.device == "cpu" and metric != "linf":
                self._base, self._index = base, None  # no copy of the reference
                self.engine = engine
                if self.engine == "gemm":
                    from pgan_cli.neighbors.gemm import GemmSearch

                    shift = self.shift if metric == "l2" and not self.centred else None
                    self._gemm = GemmSearch(base, metric, shift=shift)
                return
            idx = faiss.IndexFlat(d, fmetric)
            idx.add(base)
            del base
        elif index == "ivf":
            nlist = int(nlist or default_nlist(n))
            if not 1 <= nlist <= n:
                raise UsageError(f"--nlist {nlist} must be between 1 and the number of references ({n})")
            nprobe = int(nprobe or default_nprobe(nlist))
            quantizer = faiss.IndexFlat(d, fmetric)
            idx = faiss.IndexIVFFlat(quantizer, d, nlist, fmetric)
            idx.cp.seed = int(seed)
            rng = np.random.default_rng(seed)
            n_train = min(n, 256 * nlist)
            train = base if n_train == n else base[np.sort(rng.choice(n, n_train, replace=False))]
            idx.train(np.ascontiguousarray(train))
            idx.add(base)
            idx.nprobe = min(nprobe, nlist)
            self._quantizer = quantizer
            self.params = {"nlist": nlist, "nprobe": int(idx.nprobe), "train_rows": int(n_train)}
            del base
        else:
            idx = faiss.IndexHNSWFlat(d, int(hnsw_m), fmetric)
            idx.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            idx.add(base)
            idx.hnsw.efSearch = int(ef_search or max(64, 2 * (k + EXTRA_CANDIDATES)))
            self.params = {"M": int(hnsw_m), "ef_construction": HNSW_EF_CONSTRUCTION,
                           "ef_search": int(idx.hnsw.efSearch)}
            del base
        if self.device != "cpu":
            idx = self._to_gpu(idx)
        self._index = idx

    def _to_gpu(self, idx):
        faiss = self.faiss
        if self.device == "cuda:all":
            co = faiss.GpuMultipleClonerOptions()
            co.shard = True  # split the reference rows over the GPUs
            return faiss.index_cpu_to_all_gpus(idx, co=co)
        self._gpu_res = faiss.StandardGpuResources()
        return faiss.index_cpu_to_gpu(self._gpu_res, int(self.device.split(":")[1]), idx)

    @property
    def exact(self) -> bool:
        return self.kind == "flat"

    def prepare(self, q: np.ndarray) -> np.ndarray:
        q = np.ascontiguousarray(q, dtype=np.float32)
        if self.metric == "l2":
            return np.ascontiguousarray(q - self.shift)
        if self.metric == "cosine":
            return _normalise(q)
        return q

    def refine_space(self, q: np.ndarray, prepared: np.ndarray) -> np.ndarray:
        """Queries in the space of :attr:`refine_ref` (centred when it is, as given otherwise)."""
        return prepared if self.centred else np.ascontiguousarray(q, dtype=np.float32)

    def search(self, q: np.ndarray, kk: int, prepared: bool = False) -> np.ndarray:
        """Candidate reference rows (int64, -1 where none) for each query row, best first."""
        qp = q if prepared else self.prepare(q)
        kk = min(kk, len(self.ref))
        if self._gemm is not None:
            return self._gemm.search(qp, kk)
        if self._index is None:
            _, idx = self.faiss.knn(qp, self._base, kk, metric=self._fmetric)
        else:
            _, idx = self._index.search(qp, kk)
        return np.asarray(idx, dtype=np.int64)


def pair_distances(q: np.ndarray, ref: np.ndarray, idx: np.ndarray, metric: str) -> np.ndarray:
    """True distances between query row i and reference rows ``idx[i, :]`` (inf where idx < 0).

    Computed from the differences (no ``||x||² + ||y||² - 2x·y`` cancellation): L2 by FAISS's
    indexed distance kernel, cosine and L-inf one candidate column at a time over row chunks.
    """
    m, kk = idx.shape
    if metric != "linf" and kk > 32 and 4 * kk >= len(ref):
        return _dense_pair_distances(q, ref, idx, metric)
    if metric == "l2":
        return _indexed_l2(q, ref, idx)
    out = np.empty((m, kk), dtype=np.float32)
    step = max(1, _REFINE_BYTES // max(1, q.shape[1] * 8))
    for a in range(0, m, step):
        b = min(m, a + step)
        qq = np.asarray(q[a:b], dtype=np.float32)
        if metric == "cosine":  # float64: 1 - cos of near-parallel rows is below float32 resolution
            qq = qq.astype(np.float64)
            qn = np.linalg.norm(qq, axis=1)
            qq = qq / np.maximum(qn, 1e-300)[:, None]
        for j in range(kk):
            ii = idx[a:b, j]
            valid = ii >= 0
            r = ref[np.where(valid, ii, 0)]
            if metric == "l2":
                diff = r - qq
                dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
            elif metric == "linf":
                dist = np.abs(r - qq).max(axis=1)
            else:
                r = r.astype(np.float64)
                rn = np.linalg.norm(r, axis=1)
                diff = r / np.maximum(rn, 1e-300)[:, None] - qq
                dist = np.clip(0.5 * np.einsum("ij,ij->i", diff, diff), 0.0, 2.0)
                dist = np.where((rn > 0) & (qn > 0), dist, 1.0)
            dist = np.asarray(dist, dtype=np.float32)
            dist[~valid] = np.inf
            out[a:b, j] = dist
    return out


def _indexed_l2(q: np.ndarray, ref: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """L2 between q[i] and ref[idx[i, j]] from the differences, by FAISS's
    ``pairwise_indexed_L2sqr`` (SIMD, OpenMP; about 14x the numpy gather loop at 4,096-d)."""
    faiss = _faiss()
    m, kk = idx.shape
    qq = np.ascontiguousarray(q, dtype=np.float32)
    rr = np.ascontiguousarray(ref, dtype=np.float32)
    valid = idx >= 0
    iy = np.ascontiguousarray(np.where(valid, idx, 0).ravel(), dtype=np.int64)
    ix = np.repeat(np.arange(m, dtype=np.int64), kk)
    d2 = np.empty(m * kk, dtype=np.float32)
    faiss.pairwise_indexed_L2sqr(qq.shape[1], m * kk, faiss.swig_ptr(qq), faiss.swig_ptr(ix),
                                 faiss.swig_ptr(rr), faiss.swig_ptr(iy), faiss.swig_ptr(d2))
    out = np.sqrt(np.maximum(d2, 0.0)).reshape(m, kk)
    out[~valid] = np.inf
    return out


def _dense_pair_distances(q: np.ndarray, ref: np.ndarray, idx: np.ndarray, metric: str) -> np.ndarray:
    """:func:`pair_distances` when k is a large share of the reference (e.g. all of it): one float64
    GEMM per query chunk, centred (l2) or normalised (cosine), instead of k gathers. The float64
    expansion keeps the relative error of d² near 1e-16·|x|²/d² (|x| measured from the mean)."""
    r = np.asarray(ref, dtype=np.float64)
    if metric == "l2":
        mu = r.mean(axis=0)
        r = r - mu
        r2 = np.einsum("ij,ij->i", r, r)
    else:
        rn = np.linalg.norm(r, axis=1)
        r = r / np.maximum(rn, 1e-300)[:, None]
    m = len(idx)
    out = np.empty(idx.shape, dtype=np.float32)
    step = max(1, _REFINE_BYTES // max(1, 8 * len(ref)))
    for a in range(0, m, step):
        b = min(m, a + step)
        qq = np.asarray(q[a:b], dtype=np.float64)
        ii = idx[a:b]
        valid = ii >= 0
        safe = np.where(valid, ii, 0)
        if metric == "l2":
            qq = qq - mu
            g = np.take_along_axis(qq @ r.T, safe, 1)
            d2 = np.einsum("ij,ij->i", qq, qq)[:, None] + r2[safe] - 2 * g
            dist = np.sqrt(np.maximum(d2, 0.0))
        else:
            qn = np.linalg.norm(qq, axis=1)
            g = np.take_along_axis((qq / np.maximum(qn, 1e-300)[:, None]) @ r.T, safe, 1)
            dist = np.clip(1.0 - g, 0.0, 2.0)
            dist = np.where((qn[:, None] > 0) & (rn[safe] > 0), dist, 1.0)
        dist = dist.astype(np.float32)
        dist[~valid] = np.inf
        out[a:b] = dist
    return out


def _select(dist: np.ndarray, idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest distances per row, ties broken by the lower reference row (-1 rows last)."""
    key_idx = np.where(idx < 0, np.iinfo(np.int64).max, idx)
    order = np.lexsort((key_idx, dist), axis=1)[:, :k]
    return np.take_along_axis(dist, order, 1), np.take_along_axis(idx, order, 1)


def _drop_self(idx: np.ndarray, start: int) -> np.ndarray:
    """Remove query row ``start + i`` from its own candidates (the farthest candidate if absent)."""
    m, kk = idx.shape
    rows = np.arange(start, start + m)[:, None]
    keep = idx != rows
    keep[keep.all(axis=1), -1] = False
    return idx[keep].reshape(m, kk - 1)


def knn_batches(batches: Iterable[np.ndarray | tuple[int, np.ndarray]], ref: np.ndarray, k: int,
                metric: str = "l2", exclude_self: bool = False, index: str | NeighborIndex = "flat",
                device: str = "cpu", **index_opts) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Stream a query set through the search: yields ``(start, distances, indices)`` per batch.

    ``batches`` yields arrays (consecutive query rows) or ``(start, array)`` pairs, e.g. from
    :meth:`VectorSource.batches`, so the query set never has to be in memory at once. With
    ``exclude_self`` the query rows must be the reference rows (checked batch by batch).
    ``index`` is an index name or a :class:`NeighborIndex` built earlier.
    """
    if isinstance(index, NeighborIndex):
        nidx = index
    else:
        nidx = NeighborIndex(np.ascontiguousarray(ref, dtype=np.float32), metric, index, device,
                             k=k + (1 if exclude_self else 0), **index_opts)
    n_avail = len(nidx.ref) - (1 if exclude_self else 0)
    kk = min(n_avail, k + EXTRA_CANDIDATES) + (1 if exclude_self else 0)
    cursor = 0
    for item in batches:
        start, q = item if isinstance(item, tuple) else (cursor, item)
        q = np.asarray(q, dtype=np.float32).reshape(len(q), -1)
        cursor = start + len(q)
        if len(q) == 0:
            continue
        if q.shape[1] != nidx.ref.shape[1]:
            raise InputError(f"query and reference have different dimensions ({q.shape[1]} vs {nidx.ref.shape[1]})")
        check_values(q, "the query set", start)
        qp = nidx.prepare(q)
        qr = nidx.refine_space(q, qp)
        space = nidx.refine_ref
        if exclude_self and (cursor > len(space) or not np.array_equal(qr, space[start:cursor])):
            raise InputError("--exclude-self needs the query set to be the reference set, but query rows "
                             f"{start}..{cursor - 1} differ from the reference rows")
        cand = nidx.search(qp, kk, prepared=True)
        if exclude_self:
            cand = _drop_self(cand, start)
        dist, ind = _select(pair_distances(qr, space, cand, metric), cand, k)
        yield start, dist, ind


def knn(query: np.ndarray, ref: np.ndarray, k: int, metric: str = "l2", exclude_self: bool = False,
        batch_size: int = QUERY_BATCH, index: str = "flat", device: str = "cpu",
        check_recall: bool = False, seed: int = 0, **index_opts) -> KnnResult:
    """k nearest neighbours of each query row among the reference rows (exact by default).

    ``metric``: ``l2`` (Euclidean distances), ``cosine`` (1 - cosine similarity) or ``linf``.
    ``exclude_self``: the query set *is* the reference set; row i never counts as its own
    neighbour (correct with duplicate rows: the duplicate stays, only the row itself goes).
    ``index``: ``flat`` (exact), ``ivf`` or ``hnsw`` (approximate; ``index_opts``: nlist, nprobe,
    hnsw_m, ef_search). ``device``: cpu, auto, cuda, cuda:N or cuda:all (FAISS GPU indexes).
    ``check_recall``: also measure recall@k against exact search on up to 1,000 queries.
    """
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    query = np.ascontiguousarray(query, dtype=np.float32)
    ref = np.ascontiguousarray(ref, dtype=np.float32)
    check_pair(query, ref, k, exclude_self)
    if exclude_self and not np.array_equal(query, ref):
        raise InputError("exclude_self needs the query set to be the reference set (same rows)")
    nidx = NeighborIndex(ref, metric, index, device, k=k + (1 if exclude_self else 0), seed=seed, **index_opts)
    out_d = np.empty((len(query), k), dtype=np.float32)
    out_i = np.empty((len(query), k), dtype=np.int64)
    batches = ((s, query[s:s + batch_size]) for s in range(0, len(query), batch_size))
    for start, dist, ind in knn_batches(batches, ref, k, metric, exclude_self, nidx):
        out_d[start:start + len(dist)] = dist
        out_i[start:start + len(dist)] = ind
    recall = None
    if check_recall:
        rows = recall_rows(len(query), seed)
        recall = recall_against_exact(query[rows], rows, out_d[rows], ref, k, metric, exclude_self)
    return KnnResult(out_d, out_i, metric, exact=nidx.exact, index=index, device=nidx.device, recall=recall)


def nearest_distance(query: np.ndarray, ref: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    """L2 distance from each query row to its nearest reference row (a 1-D array)."""
    return knn(query, ref, 1, exclude_self=exclude_self).distances[:, 0]


# ---- recall of approximate search --------------------------------------------------------------
def recall_rows(n: int, seed: int = 0, sample: int = RECALL_SAMPLE) -> np.ndarray:
    """The (sorted) query rows the recall check uses: all of them, or a seeded sample."""
    if n <= sample:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))


def recall_at_k(approx_distances: np.ndarray, exact_distances: np.ndarray, rtol: float = 1e-5) -> float:
    """Tie-tolerant recall@k: the share of returned neighbours at least as close as the exact k-th.

    With ties at the k-th distance, any of the tied rows counts as correct (as faiss's
    ``contrib/evaluation.py:check_ref_knn_with_draws``), so exact search scores exactly 1.
    """
    kth = exact_distances[:, -1:].astype(np.float64)
    ok = approx_distances.astype(np.float64) <= kth * (1 + rtol) + 1e-12
    return float(ok.mean())


def recall_against_exact(queries: np.ndarray, rows: np.ndarray, approx_distances: np.ndarray,
                         ref: np.ndarray, k: int, metric: str, exclude_self: bool) -> float:
    """Recall@k of ``approx_distances`` (for query ``rows``) against an exact CPU search."""
    nidx = NeighborIndex(ref, metric, "flat", "cpu", k=k)
    ex = np.empty((len(rows), k), dtype=np.float32)
    kk = min(len(ref) - (1 if exclude_self else 0), k + EXTRA_CANDIDATES) + (1 if exclude_self else 0)
    cand = nidx.search(queries, kk)
    if exclude_self:
        keep = cand != rows[:, None]
        keep[keep.all(axis=1), -1] = False
        cand = cand[keep].reshape(len(rows), kk - 1)
    ex[:], _ = _select(pair_distances(queries, ref, cand, metric), cand, k)
    return recall_at_k(approx_distances, ex)
