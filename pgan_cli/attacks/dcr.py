"""Distance to the closest synthetic record (GAN-Leaks full black-box) and its calibrated form.

- ``dcr``: s(x) = -min_{y in S} d(x, y) (Chen et al., "GAN-Leaks: a taxonomy of membership
  inference attacks against generative models", CCS 2020, full black-box attack). The raw
  negative distance is used, not exp(-d²), which underflows in high dimension and makes ties.
- ``dcr-calibrated``: s(x) = -[min_{y in S} d(x, y) - min_{r in R} d(x, r)]: the distance to S
  relative to the distance to fresh reference records, so that candidates in dense regions are
  not mistaken for members (the calibration of GAN-Leaks, with reference data as in DOMIAS,
  van Breugel et al. AISTATS 2023).
"""

from __future__ import annotations

import numpy as np

from pgan_cli.attacks.base import REFERENCE, SYNTHETIC, Attack, check_space, register


@register
class DCR(Attack):
    name = "dcr"
    requires = (SYNTHETIC,)
    citation = "Chen et al., GAN-Leaks, CCS 2020 (full black-box)"
    summary = "minus the distance to the closest synthetic record"

    def score(self, candidates: np.ndarray) -> np.ndarray:
        check_space(candidates, self.inputs.synthetic, "synthetic")
        d = self.cache.knn(candidates, self.inputs.synthetic, 1).distances[:, 0]
        return -d.astype(np.float64)


@register
class DCRCalibrated(Attack):
    name = "dcr-calibrated"
    requires = (SYNTHETIC, REFERENCE)
    citation = "Chen et al., GAN-Leaks, CCS 2020 (calibrated); reference data as van Breugel et al., DOMIAS, AISTATS 2023"
    summary = "minus (distance to S - distance to R)"

    def score(self, candidates: np.ndarray) -> np.ndarray:
        check_space(candidates, self.inputs.synthetic, "synthetic")
        check_space(candidates, self.inputs.reference, "reference")
        ds = self.cache.knn(candidates, self.inputs.synthetic, 1).distances[:, 0].astype(np.float64)
        dr = self.cache.knn(candidates, self.inputs.reference, 1).distances[:, 0].astype(np.float64)
        return -(ds - dr)
