"""Density (Monte Carlo) attack: how much of the synthetic set lies close to a candidate.

s(x) = |{s_j in S : d(x, s_j) < eps}| / |S| (Hilprecht, Härterich & Bernau, "Monte Carlo and
reconstruction membership inference attacks against generative models", PETS 2019; the pGAN
"density attack" of Sun et al. 2021). Choice of eps (``epsilon`` parameter):

- ``"median"`` (default, Hilprecht's heuristic): the median over candidates of the distance to
  their nearest synthetic record;
- ``"quantile:Q"`` (pGAN): the Q quantile of all candidate-to-synthetic distances (pGAN used
  Q = 0.01 in pixel space, 0.001 in UMAP space), estimated on a seeded subset of S.

Counts come from the k-NN lists; a candidate whose k neighbours are all inside eps is searched
again with a larger k until its count is exact.
"""

from __future__ import annotations

import numpy as np

from pgan_cli.attacks.base import SYNTHETIC, Attack, check_space, register
from pgan_cli.errors import UsageError
from pgan_cli.neighbors import knn


def count_within(candidates: np.ndarray, synthetic: np.ndarray, eps: float, first: np.ndarray) -> np.ndarray:
    """Exact number of synthetic rows strictly closer than eps, given k-NN distances ``first``."""
    counts = (first < eps).sum(axis=1)
    k = first.shape[1]
    todo = np.flatnonzero(counts == k)
    while len(todo) and k < len(synthetic):
        k = min(len(synthetic), k * 4)
        d = knn(candidates[todo], synthetic, k).distances
        c = (d < eps).sum(axis=1)
        counts[todo] = c
        todo = todo[c == k]
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
            from pgan_cli.attacks.pairwise import MEDIAN_SAMPLES

            q = float(rule.split(":", 1)[1])
            if not 0 < q < 1:
                raise UsageError(f"density epsilon quantile must be in (0, 1), got {q}")
            s = self.inputs.synthetic
            rng = np.random.default_rng(self.inputs.seed)
            sub = s if len(s) <= MEDIAN_SAMPLES else s[rng.choice(len(s), MEDIAN_SAMPLES, replace=False)]
            qs = rng.choice(len(candidates), min(len(candidates), 2048), replace=False)
            d = knn(candidates[qs], sub, len(sub)).distances
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
