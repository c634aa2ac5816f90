"""Searches that share one pass over the distance matrix: M->S with S->M, and self-searches over the
blocks on and above the diagonal (docs/privacy-metrics.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from pgan_cli.devices import cpu_threads
from pgan_cli.neighbors import gemm
from pgan_cli.neighbors.search import (EXTRA_CANDIDATES, KnnResult, _faiss, _select, check_pair, check_shapes, knn,
                                       pair_distances)


# ---- searches that share one pass over the distance matrix -------------------------------------
TILE = 512  # rows per side of one worker's tile: 1 MiB of float32 distances, kept in the core's cache
WORKERS: int | None = None  # None: one per core (gemm.GemmSearch's threads); a number forces it (tests)


def _pair_blocks(n: int, block: int) -> list[tuple[int, int]]:
    return [(a, min(n, a + block)) for a in range(0, n, block)]


PROGRESS_WORK = 10 ** 11  # pairs x dims above which a search shows a progress bar (about a second)


@contextmanager
def _block_progress(description: str, total: int, work: int):
    """A progress bar over distance tiles when the search is long enough to want one."""
    from pgan_cli import console

    if work < PROGRESS_WORK:
        yield lambda n=1: None
        return
    with console.progress_task(description, total) as advance:
        yield advance


def _heaps(vals: np.ndarray, ids: np.ndarray):
    """FAISS max-heaps (smallest kept) over the rows of ``vals``/``ids``, empty (+inf, -1)."""
    faiss = _faiss()
    h = faiss.float_maxheap_array_t()
    h.nh, h.k = vals.shape
    h.val, h.ids = faiss.swig_ptr(vals), faiss.swig_ptr(ids)
    h.heapify()
    return h


def _best(vals: list[np.ndarray], ids: list[np.ndarray], kk: int) -> np.ndarray:
    """Per row, the ids of the ``kk`` smallest values among several heaps' entries, ties to the
    lower id (-1, an empty slot, last): the order one heap fed every candidate by increasing id
    keeps. One sort of 64-bit keys (the value's bits made order-preserving, then the id)."""
    v = np.ascontiguousarray(np.concatenate(vals, axis=1), dtype=np.float32)
    i = np.concatenate(ids, axis=1)
    u = (v + np.float32(0.0)).view(np.uint32)  # + 0.0: -0.0 sorts with 0.0
    u = np.where(u >> np.uint32(31), ~u, u | np.uint32(1 << 31)).astype(np.uint64)
    key = (u << np.uint64(32)) | np.where(i < 0, 0xFFFFFFFF, i).astype(np.uint64)
    key.sort(axis=1)
    out = (key[:, :kk] & np.uint64(0xFFFFFFFF)).astype(np.int64)
    out[out == 0xFFFFFFFF] = -1
    return out


def _tiled_pass(xa: np.ndarray, xb: np.ndarray, kk_a: int, kk_b: int, tile: int, symmetric: bool,
                col_vals: np.ndarray, col_ids: np.ndarray, step) -> Iterator[tuple[int, int, np.ndarray]]:
    """Both directions' candidates from one pass over the tiles of the ``xa`` x ``xb`` distance
    matrix (``symmetric``: xb is xa and only tiles on and above the diagonal are computed).

    One worker per core takes the tiles of its columns (tile column J belongs to worker J mod W):
    for each, one single-threaded torch GEMM into a ``tile`` x ``tile`` block that stays in the
    core's cache, whose rows feed the worker's own heaps for the current row block of xa and
    whose transpose feeds the heaps of xb's rows J (``col_vals``/``col_ids``, written only by
    J's worker, so no locks and no copies per worker). Row block I is final once every worker
    has passed it: its heaps (and, when symmetric, the column heaps of the same rows, filled by
    the tiles above them) are merged by :func:`_best` and yielded as ``(i0, i1, candidates)``;
    the workers never wait for each other or for the caller. Every heap receives its candidates
    by increasing row, which with strict replacement keeps the lower row among equal distances.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import torch

    faiss = _faiss()
    n_a, n_b = len(xa), len(xb)
    ta, tb = torch.from_numpy(xa), torch.from_numpy(xb)
    na = (ta * ta).sum(1)
    nb = na if symmetric else (tb * tb).sum(1)
    rows, cols = _pair_blocks(n_a, tile), _pair_blocks(n_b, tile)
    n_workers = max(1, int(WORKERS or min(torch.get_num_threads(), cpu_threads())))
    n_workers = min(n_workers, len(cols))
    col_heap = _heaps(col_vals, col_ids) if kk_b else None
    lock = threading.Condition()
    done = [0] * n_workers  # row blocks each worker has finished
    partial: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}  # (row block, worker) -> its heaps
    stop = threading.Event()

    def work(w: int) -> None:
        scores, flipped = torch.empty(tile * tile), torch.empty(tile * tile)
        for p, (i0, i1) in enumerate(rows):
            mine = [(c, j) for c, j in enumerate(cols) if c % n_workers == w and (not symmetric or c >= p)]
            if mine:
                vals, ids = np.empty((i1 - i0, kk_a), np.float32), np.empty((i1 - i0, kk_a), np.int64)
                heap = _heaps(vals, ids)
            for c, (j0, j1) in mine:
                if stop.is_set():
                    return
                d = scores[:(i1 - i0) * (j1 - j0)].view(i1 - i0, j1 - j0)
                torch.addmm(nb[j0:j1], ta[i0:i1], tb[j0:j1].T, beta=1.0, alpha=-2.0, out=d).add_(na[i0:i1, None])
                if symmetric and c == p:  # the diagonal tile: each pair once, never a row with itself
                    d.fill_diagonal_(float("inf"))
                heap.addn(j1 - j0, faiss.swig_ptr(d.numpy()), j0, 0, i1 - i0)
                if col_heap is not None and not (symmetric and c == p):
                    t = flipped[:d.numel()].view(j1 - j0, i1 - i0).copy_(d.T)
                    col_heap.addn(i1 - i0, faiss.swig_ptr(t.numpy()), i0, j0, j1 - j0)
            with lock:
                if mine:
                    partial[p, w] = vals, ids
                done[w] = p + 1
                lock.notify_all()

    old = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread per worker: the workers are the parallelism
    try:
        with ThreadPoolExecutor(n_workers, initializer=lambda: faiss.omp_set_num_threads(1)) as pool:
            futures = [pool.submit(work, w) for w in range(n_workers)]
            try:
                for p, (i0, i1) in enumerate(rows):
                    with lock:
                        while min(done) <= p:
                            failed = [f for f in futures if f.done() and f.exception() is not None]
                            if failed:
                                raise failed[0].exception()
                            lock.wait(0.5)
                        parts = [partial.pop((p, w)) for w in range(n_workers) if (p, w) in partial]
                    if symmetric:
                        parts.append((col_vals[i0:i1], col_ids[i0:i1]))
                    step(sum(1 for c in range(len(cols)) if not symmetric or c >= p))
                    yield i0, i1, _best([v for v, _ in parts], [i for _, i in parts], kk_a)
            finally:
                stop.set()  # the caller stopped early or failed: the workers end after their tile
            for f in futures:
                f.result()
    finally:
        torch.set_num_threads(old)


def _refined(q: np.ndarray, ref: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest of each row's candidates (heap order, -1 for none) by exact distances."""
    return _select(pair_distances(q, ref, cand, "l2"), cand, k)


def knn_pair(a: np.ndarray, b: np.ndarray, k_ab: int, k_ba: int | None = None,
             block: int = TILE) -> tuple[KnnResult, KnnResult]:
    """Exact L2 k-NN of ``a`` in ``b`` *and* of ``b`` in ``a`` from one pass over the a x b distances.

    Each distance tile comes from one torch GEMM (on data centred on b's mean) on a per-core
    worker and feeds both directions' FAISS heaps (:func:`_tiled_pass`), so the pair costs one
    search's products instead of two. Candidates (k + 4 per row) are then re-ranked by exact
    distances and ties broken by the lower row, as :func:`knn` does: the results equal two
    :func:`knn` calls. Below ``gemm.SHARED_PASS_MIN_DIM`` dimensions it makes those two calls
    instead, which are faster there (:func:`~pgan_cli.neighbors.gemm.prefer_shared_pass`).
    """
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    k_ba = k_ab if k_ba is None else k_ba
    check_pair(a, b, k_ab)
    check_shapes(b.shape, a.shape, k_ba)
    if not gemm.prefer_shared_pass(a.shape[1]):
        return knn(a, b, k_ab), knn(b, a, k_ba)
    shift = b.mean(axis=0, dtype=np.float64).astype(np.float32)
    ac, bc = a - shift, b - shift
    kk_ab, kk_ba = min(len(b), k_ab + EXTRA_CANDIDATES), min(len(a), k_ba + EXTRA_CANDIDATES)
    col_vals, col_ids = np.empty((len(b), kk_ba), np.float32), np.empty((len(b), kk_ba), np.int64)
    d_ab = np.empty((len(a), k_ab), np.float32)
    i_ab = np.empty((len(a), k_ab), np.int64)
    n_tiles = len(_pair_blocks(len(a), block)) * len(_pair_blocks(len(b), block))
    with _block_progress(f"kNN {len(a)} <-> {len(b)}", n_tiles, len(a) * len(b) * a.shape[1]) as step:
        for i0, i1, cand in _tiled_pass(ac, bc, kk_ab, kk_ba, block, False, col_vals, col_ids, step):
            d_ab[i0:i1], i_ab[i0:i1] = _refined(ac[i0:i1], bc, cand, k_ab)
    d_ba, i_ba = _refined(bc, ac, col_ids, k_ba)
    return KnnResult(d_ab, i_ab, "l2"), KnnResult(d_ba, i_ba, "l2")


def knn_self_batches(x: np.ndarray, k: int, block: int = TILE, centred: bool = False,
                     progress: bool = False) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Exact L2 k-NN of every row of ``x`` among the other rows, computing each distance once;
    yields ``(start, distances, indices)`` per block of rows, each final when yielded.

    The distance matrix is symmetric: only tiles on and above the diagonal are computed (per-core
    torch GEMMs, :func:`_tiled_pass`), each feeding the heaps of its rows and, transposed, of its
    columns, so row block i is complete once its own row of tiles is done (tiles above it
    reached it earlier, transposed). A row never counts as its own neighbour (its duplicates
    do). Candidates are re-ranked by exact distances, ties to the lower row, as :func:`knn` does:
    half the products of ``knn(x, x, k, exclude_self=True)`` with the same results. ``centred``:
    x is already centred on its mean (no copy is made). ``progress``: a progress bar over the
    tiles when the work is large (callers that show their own bar over the yielded batches
    leave it off).
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    check_pair(x, x, k, exclude_self=True)
    xc = x if centred else x - x.mean(axis=0, dtype=np.float64).astype(np.float32)
    kk = min(len(x) - 1, k + EXTRA_CANDIDATES)
    col_vals, col_ids = np.empty((len(x), kk), np.float32), np.empty((len(x), kk), np.int64)
    n_blocks = len(_pair_blocks(len(x), block))
    work = len(x) * len(x) * x.shape[1] // 2 if progress else 0
    with _block_progress(f"kNN {len(x)} x itself", n_blocks * (n_blocks + 1) // 2, work) as step:
        for i0, i1, cand in _tiled_pass(xc, xc, kk, kk, block, True, col_vals, col_ids, step):
            dist, ind = _refined(xc[i0:i1], xc, cand, k)
            yield i0, dist, ind


def knn_self(x: np.ndarray, k: int, block: int = TILE) -> KnnResult:
    """:func:`knn_self_batches` collected: the k nearest other rows of every row of ``x``. Below
    ``gemm.SHARED_PASS_MIN_DIM`` dimensions, ``knn(x, x, k, exclude_self=True)`` instead (the
    per-core one-direction search is faster there; same results)."""
    if x.ndim == 2 and not gemm.prefer_shared_pass(x.shape[1]):
        return knn(x, x, k, exclude_self=True)
    out_d = np.empty((len(x), k), dtype=np.float32)
    out_i = np.empty((len(x), k), dtype=np.int64)
    for start, dist, ind in knn_self_batches(x, k, block, progress=True):
        out_d[start:start + len(dist)] = dist
        out_i[start:start + len(dist)] = ind
    return KnnResult(out_d, out_i, "l2")
