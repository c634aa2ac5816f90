"""Density (Monte Carlo) attack: how much of the synthetic set lies close to a candidate.

s(x) = |{s_j in S : d(x, s_j) < eps}| / |S| (Hilprecht, Härterich & Bernau, "Monte Carlo and
reconstruction membership inference attacks against generative models", PETS 2019; the pGAN
"density attack" of Sun et al. 2021). Choice of eps (``epsilon`` parameter):

- ``"median"`` (default, Hilprecht's heuristic): the median over candidates of the distance to
  their nearest synthetic record;
- ``"quantile:Q"`` (pGAN): the Q quantile of all candidate-to-synthetic distances (pGAN used
  Q = 0.01 in pixel space, 0.001 in UMAP space), estimated on a seeded subset of S.

Counts come from the k-NN lists (FAISS); a candidate whose k neighbours all lie inside eps is
counted exactly against all of S with blocked distance computations (FAISS's top-k with a very
large k is pathologically slow on CPU).
"""

from __future__ import annotations

import numpy as np

from pgan_cli.attacks.base import SYNTHETIC, Attack, check_space, register
from pgan_cli.attacks.pairwise import MEDIAN_SAMPLES, distance_blocks, synthetic_subset
from pgan_cli.errors import UsageError


def count_within(candidates: np.ndarray, synthetic: np.ndarray, eps: float, first: np.ndarray) -> np.ndarray:
    """Exact number of synthetic rows strictly closer than eps, given k-NN distances ``first``."""
    counts = (first < eps).sum(axis=1)
    todo = np.flatnonzero(counts == first.shape[1])
    if len(todo) and first.shape[1] < len(synthetic):
        for a, d in distance_blocks(candidates[todo], synthetic, block=512):
            counts[todo[a:a + len(d)]] = (d < eps).sum(axis=1)
    return counts


@register
class Density(Attack):
    name = "density"
    requires = (SYNTHETIC,)
    citation = "Hilprecht et al., Monte Carlo MIA, PETS 2019; Sun et al., pGAN, 2021"
    summary = "share of synthetic records within eps of the candidate"

    def _epsilon(self, candidates: np.ndarray, dmin: np.ndarray) -> float:
        rule = str(self.params.get("epsilon", "median"))
        if rule == "median":
            return float(np.median(dmin))
        if rule.startswith("quantile:"):
            q = float(rule.split(":", 1)[1])
            if not 0 < q < 1:
                raise UsageError(f"density epsilon quantile must be in (0, 1), got {q}")
            sub = synthetic_subset(self.inputs.synthetic, MEDIAN_SAMPLES, self.inputs.seed)
            rng = np.random.default_rng(self.inputs.seed)
            qs = rng.choice(len(candidates), min(len(candidates), 2048), replace=False)
            d = np.concatenate([blk.ravel() for _, blk in distance_blocks(candidates[qs], sub)])
            return float(np.quantile(d, q))
        raise UsageError(f"density epsilon rule {rule!r} unknown; use 'median' or 'quantile:Q'")

    def score(self, candidates: np.ndarray) -> np.ndarray:
        s = self.inputs.synthetic
        check_space(candidates, s, "synthetic")
        res = self.cache.knn(candidates, s, self.cache.default_k)
        dmin = res.distances[:, 0].astype(np.float64)
        eps = self._epsilon(candidates, dmin)
        self.params["epsilon_value"] = eps
        self.params.setdefault("epsilon", "median")
        counts = count_within(candidates, s, eps, res.distances)
        return counts.astype(np.float64) / len(s)
