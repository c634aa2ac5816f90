"""Precision, recall, density and coverage (Naeem, Oh, Uh, Choi & Yoo, "Reliable fidelity and
diversity metrics for generative models", ICML 2020; recall and precision of Kynkäänniemi et
al., NeurIPS 2019).

With r(x) the distance from a real point x to its k-th nearest *other* real point, r'(y) the
same among synthetic points, and 1[.] with a strict ``<``:

- precision = 1/M Σ_j 1[∃ i: d(x_i, y_j) < r(x_i)]
- recall    = 1/N Σ_i 1[∃ j: d(x_i, y_j) < r'(y_j)]
- density   = 1/(kM) Σ_j Σ_i 1[d(x_i, y_j) < r(x_i)]
- coverage  = 1/N Σ_i 1[min_j d(x_i, y_j) < r(x_i)]

These are exactly the conventions of the authors' ``prdc`` package (strict ``<``, the k-th
neighbour excluding the point itself, duplicates kept). Unlike that package, which builds three
dense N x N matrices (10 GB each at 50k points), radii come from FAISS kNN and the real-synthetic
comparisons run in float64 row blocks, so memory stays O(block x N).

Exact ties: when a synthetic row is an exact copy of a real row, some distances equal a radius
mathematically and the strict ``<`` is decided by the last bit of floating-point rounding, in
the ``prdc`` package and here alike (it computes distances with scikit-learn's expanded form,
pgan with the same form but another BLAS call). Values then agree to about one count in
N x M comparisons, not bit for bit; on continuous data they are identical.
"""

from __future__ import annotations

import numpy as np

from pgan_cli.arrays import check_rows, check_same_space
from pgan_cli.errors import InputError
from pgan_cli.metrics._blocks import BLOCK_BYTES, distance_blocks, exact_kth_distance

DEFAULT_K = 5


def check_pair(real: np.ndarray, synthetic: np.ndarray, k: int) -> None:
    """Both sets 2-D, same dimension, finite, with more than k rows."""
    for name, a in (("real", real), ("synthetic", synthetic)):
        check_rows(a, f"the {name} set")
        if len(a) < k + 1:
            raise InputError(f"the {name} set has {len(a)} rows; k = {k} needs at least {k + 1}")
    check_same_space(real, synthetic, "the real set", "the synthetic set")
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")


def prdc(real: np.ndarray, synthetic: np.ndarray, k: int = DEFAULT_K,
         block_bytes: int = BLOCK_BYTES) -> dict[str, float]:
    """Precision, recall, density and coverage of ``synthetic`` against ``real``."""
    real = np.asarray(real)
    synthetic = np.asarray(synthetic)
    check_pair(real, synthetic, k)
    r_real = exact_kth_distance(real, k)
    r_syn = exact_kth_distance(synthetic, k)
    n, m = len(real), len(synthetic)
    inside = np.zeros(m, dtype=np.int64)          # per synthetic: # real balls containing it
    recalled = np.zeros(n, dtype=bool)            # per real: inside some synthetic ball
    nearest = np.full(n, np.inf)                  # per real: distance to nearest synthetic
    for start, stop, d in distance_blocks(synthetic, real, block_bytes):  # d: (block of syn, n)
        inside[start:stop] = (d < r_real[None, :]).sum(1)
        recalled |= (d < r_syn[start:stop, None]).any(0)
        np.minimum(nearest, d.min(0), out=nearest)
    return {
        "precision": float((inside > 0).mean()),
        "recall": float(recalled.mean()),
        "density": float(inside.sum() / (k * m)),
        "coverage": float((nearest < r_real).mean()),
    }
