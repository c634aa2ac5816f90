"""Searches that share one pass over the distance matrix: M->S with S->M, and self-searches over the
blocks on and above the diagonal (docs/privacy-metrics.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from pgan_cli.neighbors import gemm
from pgan_cli.neighbors.search import (EXTRA_CANDIDATES, KnnResult, _faiss, _select, check_pair, check_shapes, knn,
                                       pair_distances)


# ---- searches that share one pass over the distance matrix -------------------------------------
PAIR_BLOCK = 4096  # rows per side of one distance block (64 MiB of float32)


def _pair_blocks(n: int, block: int) -> list[tuple[int, int]]:
    return [(a, min(n, a + block)) for a in range(0, n, block)]


PROGRESS_WORK = 10 ** 11  # pairs x dims above which a search shows a progress bar (about a second)


@contextmanager
def _block_progress(description: str, total: int, work: int):
    """A progress bar over distance blocks when the search is long enough to want one."""
    from pgan_cli import console

    if work < PROGRESS_WORK:
        yield lambda: None
        return
    with console.progress_task(description, total) as advance:
        yield advance


class _Buffers:
    """The distance block and its transpose, allocated once per pass: a fresh 64 MiB block per
    GEMM costs its page faults every time (about 2 s per GiB on the 2-vCPU VM; BENCHMARKS.md)."""

    def __init__(self, block: int):
        import torch

        self.scores = torch.empty(block * block)
        self.transposed = np.empty(block * block, dtype=np.float32)

    def distances(self, x, y, xn, yn) -> np.ndarray:
        """Squared L2 between the rows of ``x`` and ``y`` (torch tensors; ``xn``, ``yn`` their
        squared norms) as ``||x||² + ||y||² - 2 x·yᵀ``, by one torch GEMM into the block buffer:
        FAISS's ``pairwise_distances`` runs the same product through its own BLAS at a fraction of
        the rate (pgan_cli.neighbors.gemm)."""
        import torch

        out = self.scores[:len(x) * len(y)].view(len(x), len(y))
        return torch.addmm(yn, x, y.T, beta=1.0, alpha=-2.0, out=out).add_(xn[:, None]).numpy()

    def feed(self, d: np.ndarray, rows: np.ndarray, cols: np.ndarray, row_heap, col_heap) -> None:
        """One distance block into the heaps of its rows and, transposed, of its columns."""
        row_heap.add_result_subset(rows, d, cols)
        col_heap.add_result_subset(cols, _transposed(d, self.transposed[:d.size].reshape(d.shape[::-1])), rows)


def _gemm_ready(x: np.ndarray):
    """``x`` as a torch tensor (shared memory) with its squared row norms."""
    import torch

    t = torch.from_numpy(x)
    return t, (t * t).sum(1)


def _transposed(d: np.ndarray, out: np.ndarray, strip: int = 64) -> np.ndarray:
    """A C-contiguous transpose of a distance block into ``out``, in strips of 64 rows (about 5x
    faster than ``np.ascontiguousarray(d.T)`` on a 4,096 x 4,096 block, which strides through memory)."""
    for a in range(0, d.shape[0], strip):
        out[:, a:a + strip] = d[a:a + strip].T
    return out


def _refined(q: np.ndarray, ref: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest of each row's candidates (heap order, -1 for none) by exact distances."""
    return _select(pair_distances(q, ref, cand, "l2"), cand, k)


def knn_pair(a: np.ndarray, b: np.ndarray, k_ab: int, k_ba: int | None = None,
             block: int = PAIR_BLOCK) -> tuple[KnnResult, KnnResult]:
    """Exact L2 k-NN of ``a`` in ``b`` *and* of ``b`` in ``a`` from one pass over the a x b distances.

    Each distance block comes from one torch GEMM (on data centred on b's mean) and feeds both directions' FAISS heaps (``ResultHeap``; the transposed block for
    b -> a), so the pair costs one search instead of two. Candidates (k + 4 per row) are then
    re-ranked by exact distances and ties broken by the lower row, as :func:`knn` does: the
    results equal two :func:`knn` calls. Below ``gemm.SHARED_PASS_MIN_DIM`` dimensions it makes
    those two calls instead, which are faster there (:func:`~pgan_cli.neighbors.gemm.prefer_shared_pass`).
    """
    faiss = _faiss()
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    k_ba = k_ab if k_ba is None else k_ba
    check_pair(a, b, k_ab)
    check_shapes(b.shape, a.shape, k_ba)
    if not gemm.prefer_shared_pass(a.shape[1]):
        return knn(a, b, k_ab), knn(b, a, k_ba)
    shift = b.mean(axis=0, dtype=np.float64).astype(np.float32)
    ac, bc = a - shift, b - shift
    (ta, na), (tb, nb) = _gemm_ready(ac), _gemm_ready(bc)
    h_ab = faiss.ResultHeap(len(a), min(len(b), k_ab + EXTRA_CANDIDATES))
    h_ba = faiss.ResultHeap(len(b), min(len(a), k_ba + EXTRA_CANDIDATES))
    blocks_a, blocks_b = _pair_blocks(len(a), block), _pair_blocks(len(b), block)
    buf = _Buffers(block)
    with _block_progress(f"kNN {len(a)} <-> {len(b)}", len(blocks_a) * len(blocks_b),
                         len(a) * len(b) * a.shape[1]) as step:
        for i0, i1 in blocks_a:
            rows_a = np.arange(i0, i1, dtype=np.int64)
            for j0, j1 in blocks_b:
                d = buf.distances(ta[i0:i1], tb[j0:j1], na[i0:i1], nb[j0:j1])
                rows_b = np.arange(j0, j1, dtype=np.int64)
                buf.feed(d, rows_a, rows_b, h_ab, h_ba)
                step()
    d_ab, i_ab = _refined(ac, bc, h_ab.I, k_ab)
    d_ba, i_ba = _refined(bc, ac, h_ba.I, k_ba)
    return KnnResult(d_ab, i_ab, "l2"), KnnResult(d_ba, i_ba, "l2")


def knn_self_batches(x: np.ndarray, k: int, block: int = PAIR_BLOCK, centred: bool = False,
                     progress: bool = False) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Exact L2 k-NN of every row of ``x`` among the other rows, computing each distance once;
    yields ``(start, distances, indices)`` per block of rows, each final when yielded.

    The distance matrix is symmetric: only blocks on and above the diagonal are computed (torch
    GEMM), each feeding the heaps of its rows and, transposed, of its columns, so row block i is
    complete once its own row of blocks is done (blocks left of the diagonal reached it earlier,
    transposed). A row never counts as its own neighbour (its duplicates do). Candidates are
    re-ranked by exact distances, ties to the lower row, as :func:`knn` does: half the work of
    ``knn(x, x, k, exclude_self=True)`` with the same results. ``centred``: x is already centred
    on its mean (no copy is made). ``progress``: a progress bar over the blocks when the work is
    large (callers that show their own bar over the yielded batches leave it off).
    """
    faiss = _faiss()
    x = np.ascontiguousarray(x, dtype=np.float32)
    check_pair(x, x, k, exclude_self=True)
    xc = x if centred else x - x.mean(axis=0, dtype=np.float64).astype(np.float32)
    heap = faiss.ResultHeap(len(x), min(len(x) - 1, k + EXTRA_CANDIDATES))
    tx, nx = _gemm_ready(xc)
    blocks = _pair_blocks(len(x), block)
    buf = _Buffers(block)
    work = len(x) * len(x) * x.shape[1] // 2 if progress else 0
    with _block_progress(f"kNN {len(x)} x itself", len(blocks) * (len(blocks) + 1) // 2, work) as step:
        for bi, (i0, i1) in enumerate(blocks):
            rows_i = np.arange(i0, i1, dtype=np.int64)
            for j0, j1 in blocks[bi:]:
                d = buf.distances(tx[i0:i1], tx[j0:j1], nx[i0:i1], nx[j0:j1])
                rows_j = np.arange(j0, j1, dtype=np.int64)
                if i0 == j0:
                    np.fill_diagonal(d, np.inf)
                    heap.add_result_subset(rows_i, d, rows_j)
                else:
                    buf.feed(d, rows_i, rows_j, heap, heap)
                step()
            dist, ind = _refined(xc[i0:i1], xc, heap.I[i0:i1].copy(), k)
            yield i0, dist, ind


def knn_self(x: np.ndarray, k: int, block: int = PAIR_BLOCK) -> KnnResult:
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
