"""Mode coverage on toy Gaussian mixtures (Metz et al., "Unrolled GANs", ICLR 2017;
Srivastava et al., "VEEGAN", NeurIPS 2017).

The mixture is the ``mixture`` attribute that ``pgan data gaussian`` stores: ``means`` (K, 2),
an isotropic ``std`` and ``weights``. A sample is *high quality* when it lies within 3 std
(Euclidean) of its nearest mode; a mode is *covered* when at least one sample lies within
3 std of it. The log-likelihood is the mean of log Σ_k w_k N(x; μ_k, std² I) over the samples
(log-sum-exp, so it never underflows).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pgan_cli.errors import InputError

QUALITY_STDS = 3.0


def parse_mixture(mixture: Any) -> tuple[np.ndarray, float, np.ndarray]:
    """(means, std, weights) from the stored attribute, validated."""
    if not isinstance(mixture, dict) or not {"means", "std"} <= set(mixture):
        raise InputError("the 'mixture' attribute must hold 'means' and 'std' (as `pgan data gaussian` writes)")
    means = np.asarray(mixture["means"], dtype=np.float64)
    std = float(mixture["std"])
    weights = np.asarray(mixture.get("weights") or [1.0 / len(means)] * len(means), dtype=np.float64)
    if means.ndim != 2 or len(weights) != len(means) or not std > 0:
        raise InputError("the 'mixture' attribute is malformed (means (K, D), std > 0, K weights)")
    return means, std, weights / weights.sum()


def log_likelihood(x: np.ndarray, means: np.ndarray, std: float, weights: np.ndarray) -> np.ndarray:
    """log p(x) under the isotropic Gaussian mixture, one value per row."""
    from scipy.special import logsumexp

    x = np.asarray(x, dtype=np.float64)
    d = x.shape[1]
    sq = ((x[:, None, :] - means[None, :, :]) ** 2).sum(-1)
    comp = -sq / (2 * std * std) - 0.5 * d * np.log(2 * np.pi * std * std) + np.log(weights)[None, :]
    return logsumexp(comp, axis=1)


def check_dims(synthetic: np.ndarray, mixture: Any) -> None:
    """The samples live in the mixture's space."""
    means, _, _ = parse_mixture(mixture)
    if synthetic.shape[1] != means.shape[1]:
        raise InputError(f"the mixture has {means.shape[1]}-D modes but the samples are "
                         f"{synthetic.shape[1]}-D; score the raw toy samples, not an embedding")


def mode_scores(synthetic: np.ndarray, mixture: Any, real: np.ndarray | None = None) -> dict:
    """``modes_covered``, ``modes_total``, ``high_quality_fraction``, ``log_likelihood`` (mean),
    plus ``log_likelihood_real`` (the same for the real set, the value to compare with)."""
    means, std, weights = parse_mixture(mixture)
    synthetic = np.asarray(synthetic, dtype=np.float64)
    check_dims(synthetic, mixture)
    dist = np.sqrt(((synthetic[:, None, :] - means[None, :, :]) ** 2).sum(-1))  # (M, K)
    close = dist <= QUALITY_STDS * std
    out = {
        "modes_covered": int(close.any(0).sum()),
        "modes_total": int(len(means)),
        "high_quality_fraction": float(close.any(1).mean()),
        "log_likelihood": float(log_likelihood(synthetic, means, std, weights).mean()),
    }
    if real is not None:
        out["log_likelihood_real"] = float(log_likelihood(real, means, std, weights).mean())
    return out
