"""Exact float64 distances in row blocks, so no metric ever holds a dense N x M matrix."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BLOCK_BYTES = 128 << 20


def block_rows(n_cols: int, block_bytes: int = BLOCK_BYTES) -> int:
    """Rows per block so a (rows, n_cols) float64 block stays under ``block_bytes``."""
    return max(1, block_bytes // (8 * max(n_cols, 1)))


def distance_blocks(a: np.ndarray, b: np.ndarray, block_bytes: int = BLOCK_BYTES
                    ) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start, stop, D)`` with D[i, j] = ||a[start+i] - b[j]|| in float64.

    Uses ||a||² + ||b||² - 2 a·b clamped at 0 (the form scikit-learn's ``euclidean_distances``
    uses in float64), so comparisons agree with it to rounding.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    sq_b = np.einsum("ij,ij->i", b, b)
    rows = block_rows(len(b), block_bytes)
    for start in range(0, len(a), rows):
        stop = min(len(a), start + rows)
        blk = a[start:stop]
        d2 = blk @ b.T
        d2 *= -2.0
        d2 += np.einsum("ij,ij->i", blk, blk)[:, None]
        d2 += sq_b[None, :]
        np.maximum(d2, 0.0, out=d2)
        np.sqrt(d2, out=d2)
        yield start, stop, d2


def exact_kth_distance(x: np.ndarray, k: int, extra: int = 4) -> np.ndarray:
    """Distance from each row of ``x`` to its k-th nearest other row (self excluded), float64.

    FAISS (:func:`pgan_cli.neighbors.knn`) finds the k + ``extra`` candidates in float32; their
    distances are recomputed in float64 and re-sorted, so float32 misranking of near-ties
    cannot change the k-th value. Duplicated rows count as neighbours at distance 0 (as in the
    ``prdc`` package, where only the row itself is excluded).
    """
    from pgan_cli.neighbors import knn

    x64 = np.asarray(x, dtype=np.float64)
    kk = min(len(x) - 1, k + extra)
    res = knn(x, x, kk, exclude_self=True)
    d = np.empty(res.indices.shape)
    for j in range(kk):
        diff = x64[res.indices[:, j]] - x64
        d[:, j] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    d.sort(axis=1)
    return d[:, k - 1]
