"""Exact candidate search on the CPU as blocked matrix products: for queries Q and the reference R
(both centred on R's mean for L2, row-normalised for cosine), the scores ``||r||² - 2 Q·Rᵀ`` (L2) or
``-Q·Rᵀ`` (cosine) by torch GEMMs, then the ``kk`` best of each row by FAISS's heaps; the caller
re-ranks them with exact distances (:mod:`pgan_cli.neighbors`, "Exactness").

Why not ``faiss.knn``: on the CPU, FAISS's exhaustive search multiplies small blocks with its own
BLAS inside an OpenMP loop, so the threads oversubscribe the cores and each product is too thin to
run at the GEMM rate; its heaps, though, select fast. This engine keeps the heaps and gives the
products to torch.

Two ways to run them (:func:`choose_selection` picks one per query batch):

- ``fused``: one worker per core, each taking a block of up to ``FUSED_QUERY_ROWS`` queries
  through the reference in slices of ``FUSED_REF_ROWS`` rows: a single-threaded GEMM into a score
  block small enough (2 MiB) to stay in the core's cache, then the heaps over it. The scores never
  travel to memory and no OpenMP or BLAS threads oversubscribe the cores.
- ``heap``: one multi-threaded GEMM per large block (about ``HEAP_BLOCK_BYTES`` of scores), then
  the heaps' own OpenMP loop; the two take turns. Only for batches too small to give every core a
  block of queries.

Measured side by side (BENCHMARKS.md, "The neighbour engine"): at 64 dimensions a score costs 128
flops (1.4 ns on one core) and the heap test 0.4-0.5 ns, so where the scores live decides the
speed (fused 1.6-2.6x heap); at 4,096 dimensions the product dominates and both run near the
GEMM rate (fused 1.05-1.13x heap).

Both keep the earlier reference row among equal scores: the heaps replace their worst entry only
for a strictly better score, and every row's references arrive in order. A reference given
un-centred (``shift``) is centred slice by slice as it is multiplied, so the search makes no
copy of it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pgan_cli.devices import cpu_threads

FUSED_QUERY_ROWS, FUSED_REF_ROWS = 512, 1024  # one worker's block: 512 x 1,024 scores (2 MiB)
FUSED_MIN_ROWS = 32      # fused needs this many queries per worker at least; fewer go to "heap"
HEAP_BLOCK_BYTES = 32 << 20  # score matrix per block with heap selection (measured best of 8-256 MiB)
HEAP_MIN_ROWS = 64       # queries per heap block at least
HEAP_MAX_ROWS = 16384
WIDE_DIM, WIDE_BLOCK_ROWS = 512, 1024  # from this dimension on, heap blocks of at least 1,024 queries
REF_CHUNK = 1 << 16      # references per heap chunk (at most CENTRE_BYTES when centred on the fly)
CENTRE_BYTES = 64 << 20  # a reference chunk centred on the fly (heap selection)
SELECTION: str | None = None  # None: choose_selection decides per batch; a name forces it (benchmarks, tests)


# From this dimension on a shared pass (pgan_cli.neighbors.shared: the symmetric self-search, both
# directions of a pair from one product) beats separate per-core searches: it does half the
# products, but each of its tiles also pays a transpose, a second heap update and merges of the
# workers' heaps, which only pays where the product weighs enough. Measured (BENCHMARKS.md,
# "Self-search", k = 32, per-core workers on both sides, four runs): the shared passes took
# 1.3-1.8x (self) and 1.05-1.3x (pair) the separate searches' time at 16-d, 1.1-1.2x and
# 0.8-0.95x at 64-d, 0.96-1.08x and 0.8-1.05x at 128-d, and 0.44-0.88x from 256-d to 4,096-d.
SHARED_PASS_MIN_DIM = 128


def prefer_shared_pass(dim: int) -> bool:
    """Whether a self-search or a pair of searches should share one pass over the distances."""
    return dim >= SHARED_PASS_MIN_DIM


def choose_selection(n_queries: int, threads: int) -> str:
    """``fused`` when every worker gets at least ``FUSED_MIN_ROWS`` queries, else ``heap``.

    The cost model behind it (BENCHMARKS.md): per score, fused costs one single-core GEMM step
    plus one heap test, both in cache, on every core at once; heap costs the same work plus a
    round trip of the score block through memory, and its product and selection take turns. Fused
    was faster at every measured shape (64 to 4,096 dimensions, 1,000 to 100,000 queries); it
    loses only when some cores would sit idle, i.e. when the batch has too few queries to hand
    each worker a block, where heap's one multi-threaded product over the references keeps every
    core busy.
    """
    if SELECTION is not None:
        return SELECTION
    return "fused" if n_queries >= FUSED_MIN_ROWS * max(1, threads) else "heap"


class GemmSearch:
    """Candidate rows (the ``kk`` best by GEMM score) for query batches against a fixed reference.

    ``base`` is the reference as the index holds it: row-normalised (``cosine``) or, for ``l2``,
    centred, or as given with its mean in ``shift`` (then centred slice by slice: no copy);
    float32, C-contiguous, shared, not copied. Queries come centred (``l2``) or normalised.
    """

    def __init__(self, base: np.ndarray, metric: str, threads: int | None = None, shift: np.ndarray | None = None):
        import torch

        if metric not in ("l2", "cosine"):
            raise ValueError(f"the GEMM engine handles l2 and cosine, not {metric}")
        if shift is not None and metric != "l2":
            raise ValueError("only an l2 reference is centred on the fly")
        self.metric = metric
        self.ref = torch.from_numpy(base)
        self.shift = None if shift is None else torch.from_numpy(np.ascontiguousarray(shift, dtype=np.float32))
        self.norms = None
        if metric == "l2":  # squared norms of the centred rows, a chunk at a time through one buffer
            self.norms = torch.empty(base.shape[0])
            step = max(1, CENTRE_BYTES // (4 * max(1, base.shape[1])))
            buf = torch.empty(min(step, base.shape[0]) * base.shape[1]) if self.shift is not None else None
            for a in range(0, base.shape[0], step):
                r = self.ref[a:a + step]
                r = self._centred(r, None if buf is None else buf[:r.numel()].view(r.shape))
                torch.linalg.vector_norm(r, dim=1, out=self.norms[a:a + step]).square_()
        self.threads = max(1, int(threads or min(torch.get_num_threads(), cpu_threads())))
        self.selection: str | None = None  # the last search's

    def _centred(self, r, out=None):
        """Reference rows ``r`` centred (into ``out`` when given), or ``r`` itself when stored centred."""
        import torch

        if self.shift is None:
            return r
        return torch.sub(r, self.shift, out=out) if out is not None else r - self.shift

    def _scores(self, q, r, norms, out=None):
        """Scores of query rows ``q`` against centred reference rows ``r`` (smaller is nearer)."""
        import torch

        if self.metric == "l2":
            return torch.addmm(norms, q, r.T, beta=1.0, alpha=-2.0, out=out)
        return torch.mm(q, r.T, out=out).neg_()

    def _search_fused(self, qt, kk: int) -> np.ndarray:
        """Candidates by per-core workers (module docstring, ``fused``)."""
        import torch

        from pgan_cli.neighbors.search import _faiss

        faiss = _faiss()
        nq, n = qt.shape[0], self.ref.shape[0]
        dist = np.empty((nq, kk), dtype=np.float32)
        ind = np.empty((nq, kk), dtype=np.int64)
        # enough query blocks to keep every worker busy, no more rows than fit the cache
        rows = int(max(FUSED_MIN_ROWS, min(FUSED_QUERY_ROWS, -(-nq // self.threads))))
        width = min(n, FUSED_REF_ROWS)
        d = self.ref.shape[1]

        def run(a: int) -> None:
            b = min(nq, a + rows)
            heaps = faiss.float_maxheap_array_t()
            heaps.k, heaps.nh = kk, b - a
            heaps.val, heaps.ids = faiss.swig_ptr(dist[a:b]), faiss.swig_ptr(ind[a:b])
            heaps.heapify()
            scores = torch.empty((b - a) * width)
            slab = torch.empty(width * d) if self.shift is not None else None
            q = qt[a:b]
            for c in range(0, n, width):
                e = min(n, c + width)
                s = scores[:(b - a) * (e - c)].view(b - a, e - c)
                r = self._centred(self.ref[c:e], None if slab is None else slab[:(e - c) * d].view(e - c, d))
                self._scores(q, r, None if self.norms is None else self.norms[c:e], out=s)
                heaps.addn(e - c, faiss.swig_ptr(s.numpy()), c, 0, b - a)
            heaps.reorder()

        # each worker's OpenMP regions (the heaps') on its own core only
        _in_workers(run, range(0, nq, rows), self.threads, initializer=lambda: faiss.omp_set_num_threads(1))
        return ind

    def _search_heap(self, qt, kk: int) -> np.ndarray:
        """Candidates by FAISS's heaps fed large multi-threaded GEMM blocks (module docstring, ``heap``)."""
        from pgan_cli.neighbors.search import _faiss

        faiss = _faiss()
        nq, n, d = qt.shape[0], self.ref.shape[0], self.ref.shape[1]
        dist = np.empty((nq, kk), dtype=np.float32)
        ind = np.empty((nq, kk), dtype=np.int64)
        heaps = faiss.float_maxheap_array_t()
        heaps.k, heaps.nh = kk, nq
        heaps.val, heaps.ids = faiss.swig_ptr(dist), faiss.swig_ptr(ind)
        heaps.heapify()
        chunk = min(n, REF_CHUNK if self.shift is None else max(1024, CENTRE_BYTES // (4 * d)))
        # at high dimension the product dominates and wants fat blocks; at low dimension the score
        # matrix does, and wants blocks that stay in the caches
        fat = WIDE_BLOCK_ROWS if d >= WIDE_DIM else HEAP_MIN_ROWS
        rows = int(min(HEAP_MAX_ROWS, max(fat, HEAP_BLOCK_BYTES // (4 * chunk))))
        import torch

        buf = torch.empty(chunk * d) if self.shift is not None else None
        for c in range(0, n, chunk):
            e = min(n, c + chunk)
            r = self._centred(self.ref[c:e], None if buf is None else buf[:(e - c) * d].view(e - c, d))
            norms = None if self.norms is None else self.norms[c:e]
            for a in range(0, nq, rows):
                b = min(nq, a + rows)
                s = np.ascontiguousarray(self._scores(qt[a:b], r, norms).numpy())
                heaps.addn(e - c, faiss.swig_ptr(s), c, a, b - a)
        heaps.reorder()
        return ind

    def search(self, q: np.ndarray, kk: int) -> np.ndarray:
        """int64 candidate rows (Nq, kk), best first by score (exact order is the caller's job)."""
        import torch

        kk = min(kk, self.ref.shape[0])
        qt = torch.from_numpy(np.ascontiguousarray(q, dtype=np.float32))
        self.selection = choose_selection(len(q), self.threads)
        if self.selection == "fused":
            return self._search_fused(qt, kk)
        return self._search_heap(qt, kk)


def _in_workers(run, starts: range, threads: int, initializer=None) -> None:
    """``run(start)`` for every start, on ``threads`` workers with one torch thread each (no
    oversubscription; ``initializer`` runs once in each worker); in this thread when there is one
    worker or one start."""
    import torch

    if threads == 1 or len(starts) == 1:
        for a in starts:
            run(a)
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(threads, initializer=initializer) as pool:
            for f in [pool.submit(run, a) for a in starts]:
                f.result()
    finally:
        torch.set_num_threads(old)
