"""pGAN's pairwise-distance ratio attack.

r(x) = min_j d(x, s_j) / median_j d(x, s_j); s(x) = -r(x): a candidate much closer to its
nearest synthetic record than to a typical one is likely a member (Sun et al., "A deep learning
approach to private data sharing of medical images using conditional GANs", 2021, the pGAN
privacy analysis). The minimum is exact over all of S; the median is taken over a seeded random
subset of at most ``median_samples`` synthetic records (all of S when smaller), which estimates
a median to within about 1/sqrt(n) in rank.
"""

from __future__ import annotations

import numpy as np

from pgan_cli.attacks.base import SYNTHETIC, Attack, check_space, register
from pgan_cli.neighbors import knn

MEDIAN_SAMPLES = 2048
_BLOCK = 4096


def median_distance(candidates: np.ndarray, synthetic: np.ndarray, max_samples: int = MEDIAN_SAMPLES,
                    seed: int = 0) -> np.ndarray:
    """Median over (a subset of) S of d(x, s) for each candidate x, via FAISS in query blocks."""
    rng = np.random.default_rng(seed)
    sub = synthetic if len(synthetic) <= max_samples else synthetic[rng.choice(len(synthetic), max_samples, replace=False)]
    out = np.empty(len(candidates))
    for a in range(0, len(candidates), _BLOCK):
        d = knn(candidates[a:a + _BLOCK], sub, len(sub)).distances
        out[a:a + _BLOCK] = np.median(d, axis=1)
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
