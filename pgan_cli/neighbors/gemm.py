"""Exact candidate search on the CPU as blocked matrix products: for a block of queries Q and the
(centred or normalised) reference R, ``||r||² - 2 Q·Rᵀ`` (L2) or ``-Q·Rᵀ`` (cosine) by one torch
GEMM, then the ``kk`` best of each row; the caller re-ranks them with exact distances
(:mod:`pgan_cli.neighbors`, "Exactness").

Why not ``faiss.knn``: on the CPU, FAISS's exhaustive search multiplies small blocks (1,024
references) with its own BLAS inside an OpenMP loop, so the threads oversubscribe the cores and
each product is too thin to run at the GEMM rate; its heaps, though, select fast. This engine
keeps the heaps and gives the products to torch (BENCHMARKS.md, "Nearest neighbours": measured
side by side at the shapes of the bars).

Selection (``SELECTION``): ``heap``, FAISS's heaps fed one score block at a time with sequential
reference ids (the GEMM's threads and the heaps' OpenMP loop take turns, never overlap; blocks of
about ``HEAP_BLOCK_BYTES``); or ``topk``, ``torch.topk`` inside single-threaded per-core workers
(blocks of about ``BLOCK_BYTES``, kept in cache). Both keep the earlier reference row among equal
scores. References beyond ``REF_CHUNK`` rows are taken in chunks.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pgan_cli.devices import cpu_threads

BLOCK_BYTES = 8 << 20   # score matrix per block (float32)
MIN_BLOCK_ROWS = 64     # queries per block at least
MAX_BLOCK_ROWS = 4096
WIDE_DIM, WIDE_BLOCK_ROWS = 512, 1024  # from this dimension on, heap blocks of at least 1,024 queries
REF_CHUNK = 1 << 16     # references per chunk (candidates merged across chunks)
HEAP_BLOCK_BYTES = 32 << 20  # score matrix per block with heap selection (measured best of 8-256 MiB)
# Selecting the best kk of each row: "heap" (FAISS's heaps, fed one GEMM block at a time; its
# OpenMP loop and torch's GEMM threads take turns) or "topk" (torch.topk inside each worker).
SELECTIONS = ("heap", "topk")
SELECTION = "heap"


class GemmSearch:
    """Candidate rows (the ``kk`` best by GEMM score) for query batches against a fixed reference.

    ``base`` is the reference as the index holds it: centred (``l2``) or row-normalised
    (``cosine``), float32, C-contiguous; it is shared, not copied.
    """

    def __init__(self, base: np.ndarray, metric: str, threads: int | None = None, selection: str | None = None):
        import torch

        if metric not in ("l2", "cosine"):
            raise ValueError(f"the GEMM engine handles l2 and cosine, not {metric}")
        self.selection = selection or SELECTION
        if self.selection not in SELECTIONS:
            raise ValueError(f"unknown selection {self.selection!r}; one of {SELECTIONS}")
        self.metric = metric
        self.ref = torch.from_numpy(base)
        self.norms = None
        if metric == "l2":  # squared row norms, a chunk at a time (no temporary copy of the reference)
            self.norms = torch.cat([(c * c).sum(1) for c in self.ref.split(REF_CHUNK // 4)])
        self.threads = max(1, int(threads or min(torch.get_num_threads(), cpu_threads())))

    def block_rows(self, n_ref: int) -> int:
        return int(min(MAX_BLOCK_ROWS, max(MIN_BLOCK_ROWS, BLOCK_BYTES // (4 * max(1, n_ref)))))

    def _block(self, q, kk: int):
        """(scores, rows) of the ``kk`` best references for each row of ``q`` (a torch tensor)."""
        import torch

        best_s = best_i = None
        n = self.ref.shape[0]
        for a in range(0, n, REF_CHUNK):
            b = min(n, a + REF_CHUNK)
            s = self._scores(q, a, b)
            vals, idx = _smallest(s, min(kk, b - a))
            idx += a
            if best_s is None:
                best_s, best_i = vals, idx
            else:
                best_s, best_i = _first(torch.cat([best_s, vals], 1), torch.cat([best_i, idx], 1), kk)
        return best_s, best_i

    def _scores(self, q, a: int, b: int):
        """Scores of query rows ``q`` against reference rows a..b (smaller is nearer)."""
        import torch

        r = self.ref[a:b]
        if self.metric == "l2":
            return torch.addmm(self.norms[a:b], q, r.T, beta=1.0, alpha=-2.0)
        return torch.mm(q, r.T).neg_()

    def _search_heap(self, qt, kk: int) -> np.ndarray:
        """Candidates by FAISS's heaps: each block's scores go into the heaps of its rows with
        sequential ids, in reference order (on equal scores the earlier row stays)."""
        from pgan_cli.neighbors.search import _faiss

        faiss = _faiss()
        nq, n = qt.shape[0], self.ref.shape[0]
        dist = np.empty((nq, kk), dtype=np.float32)
        ind = np.empty((nq, kk), dtype=np.int64)
        heaps = faiss.float_maxheap_array_t()
        heaps.k, heaps.nh = kk, nq
        heaps.val, heaps.ids = faiss.swig_ptr(dist), faiss.swig_ptr(ind)
        heaps.heapify()
        chunk = min(n, REF_CHUNK)
        # at high dimension the product dominates and wants fat blocks; at low dimension the score
        # matrix does, and wants blocks that stay in the caches
        fat = WIDE_BLOCK_ROWS if self.ref.shape[1] >= WIDE_DIM else MIN_BLOCK_ROWS
        rows = int(min(MAX_BLOCK_ROWS * 4, max(fat, HEAP_BLOCK_BYTES // (4 * chunk))))
        for a in range(0, nq, rows):
            b = min(nq, a + rows)
            for c in range(0, n, chunk):
                s = np.ascontiguousarray(self._scores(qt[a:b], c, min(n, c + chunk)).numpy())
                heaps.addn(s.shape[1], faiss.swig_ptr(s), c, a, b - a)
        heaps.reorder()
        return ind

    def search(self, q: np.ndarray, kk: int) -> np.ndarray:
        """int64 candidate rows (Nq, kk), best first by score (exact order is the caller's job)."""
        import torch

        kk = min(kk, self.ref.shape[0])
        if self.selection == "heap":
            return self._search_heap(torch.from_numpy(np.ascontiguousarray(q, dtype=np.float32)), kk)
        qt = torch.from_numpy(np.ascontiguousarray(q, dtype=np.float32))
        out = np.empty((len(q), kk), dtype=np.int64)
        step = self.block_rows(min(self.ref.shape[0], REF_CHUNK))
        starts = range(0, len(q), step)

        def run(a: int) -> None:
            s, i = self._block(qt[a:a + step], kk)
            out[a:a + step] = _first(s, i, kk)[1].numpy()

        if self.threads == 1 or len(starts) == 1:
            for a in starts:
                run(a)
            return out
        old = torch.get_num_threads()
        torch.set_num_threads(1)  # one core per worker: no oversubscription
        try:
            with ThreadPoolExecutor(self.threads) as pool:
                for f in [pool.submit(run, a) for a in starts]:
                    f.result()
        finally:
            torch.set_num_threads(old)
        return out


def _smallest(s, kk: int):
    """The ``kk`` smallest scores of each row of ``s`` and their columns; among equal scores the
    lower columns, as a scan in row order would keep them (the tie rule of the exact re-ranking:
    lower reference rows first). ``torch.topk`` leaves ties in any order, so the rare rows with
    more entries at or below their kk-th score than kk are selected again in (score, column) order."""
    import torch

    vals, idx = torch.topk(s, kk, dim=1, largest=False, sorted=False)
    kth = vals.max(1, keepdim=True).values
    for r in ((s <= kth).sum(1) > kk).nonzero().flatten().tolist():
        row = s[r].numpy()
        cols = np.lexsort((np.arange(len(row)), row))[:kk]
        idx[r] = torch.from_numpy(cols)
        vals[r] = s[r, idx[r]]
    return vals, idx


def _first(vals, idx, kk: int):
    """The ``kk`` first candidates of each row in (score, row) order."""
    import torch

    o = torch.argsort(idx, dim=1, stable=True)
    vals, idx = vals.gather(1, o), idx.gather(1, o)
    o = torch.argsort(vals, dim=1, stable=True)[:, :kk]
    return vals.gather(1, o), idx.gather(1, o)
