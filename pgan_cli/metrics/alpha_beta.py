"""Alpha-precision and beta-recall (Alaa, van Breugel, Saveliev & van der Schaar, "How faithful
is your synthetic data? Sample-level metrics for evaluating and auditing generative models",
ICML 2022).

Variant implemented: the paper's metrics *without* the learned one-class (Deep SVDD) embedding,
i.e. the "naive" variant of the authors' reference code and of synthcity's ``AlphaPrecision``
(``delta_precision_alpha_naive`` / ``delta_coverage_beta_naive``), in the space given:

- the real support is a ball around c = mean of the real set; for α in a grid of 30 levels
  on [0, 1], r_α = the α-quantile of ||x_i - c|| over real points;
- P_α = fraction of synthetic points with ||y_j - c|| <= r_α (α-precision curve);
- for each real x_i let y*(i) be its nearest synthetic point and c_s the synthetic mean;
  R_β = fraction of real points with d(x_i, y*(i)) <= d(x_i, nearest other real point) *and*
  ||y*(i) - c_s|| <= the β-quantile of ||y*(·) - c_s|| (β-recall curve);
- the summaries are IP_α = 1 - 2 Σ_α |P_α - α| Δα and IR_β = 1 - 2 Σ_β |R_β - β| Δβ
  (rectangle rule over the 30 levels, as the reference code); 1 is ideal.

The nearest-neighbour queries go through FAISS (:mod:`pgan_cli.neighbors`).
"""

from __future__ import annotations

import numpy as np

from pgan_cli.errors import InputError

N_LEVELS = 30


def alpha_beta(real: np.ndarray, synthetic: np.ndarray, n_levels: int = N_LEVELS) -> dict:
    """``alpha_precision``, ``beta_recall`` (integrated, 1 is ideal) and their curves."""
    from pgan_cli.neighbors import knn

    real = np.asarray(real, dtype=np.float64)
    synthetic = np.asarray(synthetic, dtype=np.float64)
    if len(real) < 2 or len(synthetic) < 1:
        raise InputError(f"alpha-precision needs at least 2 real and 1 synthetic samples "
                         f"(got {len(real)} and {len(synthetic)})")
    alphas = np.linspace(0.0, 1.0, n_levels)
    center = real.mean(0)
    radii = np.quantile(np.linalg.norm(real - center, axis=1), alphas)
    syn_to_center = np.linalg.norm(synthetic - center, axis=1)
    precision_curve = (syn_to_center[None, :] <= radii[:, None]).mean(1)

    real_nn = knn(real, real, 1, exclude_self=True)
    syn_nn = knn(real, synthetic, 1)
    j = syn_nn.indices[:, 0]
    d_real = np.linalg.norm(real - real[real_nn.indices[:, 0]], axis=1)   # exact, float64
    d_syn = np.linalg.norm(real - synthetic[j], axis=1)
    syn_center = synthetic.mean(0)
    closest_d = np.linalg.norm(synthetic[j] - syn_center, axis=1)
    closest_radii = np.quantile(closest_d, alphas)
    near = d_syn <= d_real
    recall_curve = (near[None, :] & (closest_d[None, :] <= closest_radii[:, None])).mean(1)
    step = alphas[1] - alphas[0]
    return {
        "alpha_precision": float(1.0 - 2.0 * np.abs(precision_curve - alphas).sum() * step),
        "beta_recall": float(1.0 - 2.0 * np.abs(recall_curve - alphas).sum() * step),
        "alpha_beta_curves": {"levels": alphas.tolist(), "alpha_precision": precision_curve.tolist(),
                              "beta_recall": recall_curve.tolist()},
    }
