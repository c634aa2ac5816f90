"""pGAN's pairwise-distance ratio attack.

r(x) = min_j d(x, s_j) / median_j d(x, s_j); s(x) = -r(x): a candidate much closer to its
nearest synthetic record than to a typical one is likely a member (Sun et al., "A deep learning
approach to private data sharing of medical images using conditional GANs", 2021, the pGAN
privacy analysis). The minimum is exact over all of S; the median is taken over a seeded random
subset of at most ``median_samples`` synthetic records (all of S when smaller), which estimates
a median to within about 1/sqrt(n) in rank. The median is not a neighbour search: it needs every
distance to the subset, computed by a blocked GEMM (||x||² + ||s||² - 2x·s, clamped at 0). FAISS's
top-k with k = |subset| is far slower on CPU (BENCHMARKS.md, "Figures behind code choices"), so
the minimum alone goes through FAISS.
"""

from __future__ import annotations

import numpy as np

from pgan_cli.attacks.base import SYNTHETIC, Attack, check_space, register
MEDIAN_SAMPLES = 2048
_BLOCK = 2048


def distance_blocks(query: np.ndarray, ref: np.ndarray, block: int = _BLOCK):
    """Yield ``(start, D)`` with D the exact L2 distances of a block of query rows to all of ``ref``."""
    q_all = np.ascontiguousarray(query, dtype=np.float32)
    r = np.ascontiguousarray(ref, dtype=np.float32)
    rn = (r.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)
    for a in range(0, len(q_all), block):
        q = q_all[a:a + block]
        qn = (q.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)
        d2 = qn[:, None] + rn[None, :] - 2.0 * (q @ r.T)
        yield a, np.sqrt(np.maximum(d2, 0.0, out=d2), out=d2)


def synthetic_subset(synthetic: np.ndarray, max_samples: int, seed: int) -> np.ndarray:
    """All of S when small enough, else a seeded random subset of ``max_samples`` rows."""
    if len(synthetic) <= max_samples:
        return synthetic
    rng = np.random.default_rng(seed)
    return synthetic[np.sort(rng.choice(len(synthetic), max_samples, replace=False))]


def median_distance(candidates: np.ndarray, synthetic: np.ndarray, max_samples: int = MEDIAN_SAMPLES,
                    seed: int = 0) -> np.ndarray:
    """Median over (a subset of) S of d(x, s) for each candidate x (blocked GEMM)."""
    sub = synthetic_subset(synthetic, max_samples, seed)
    out = np.empty(len(candidates))
    for a, d in distance_blocks(candidates, sub):
        out[a:a + len(d)] = np.median(d, axis=1)
    return out


@register
class Pairwise(Attack):
    name = "pairwise"
    requires = (SYNTHETIC,)
    citation = "Sun et al., pGAN (private data sharing of medical images with conditional GANs), 2021"
    summary = "minus min/median distance ratio to the synthetic records"

    def score(self, candidates: np.ndarray) -> np.ndarray:
        s = self.inputs.synthetic
        check_space(candidates, s, "synthetic")
        n_med = int(self.params.get("median_samples", MEDIAN_SAMPLES))
        self.params["median_samples"] = min(n_med, len(s))
        dmin = self.cache.knn(candidates, s, 1).distances[:, 0].astype(np.float64)
        dmed = median_distance(candidates, s, n_med, self.inputs.seed)
        return -(dmin / np.maximum(dmed, 1e-12))
