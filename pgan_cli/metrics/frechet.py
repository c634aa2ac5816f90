"""Fréchet distance between Gaussian fits of two sets (Dowson & Landau 1982; as FID in Heusel
et al., "GANs trained by a two time-scale update rule...", NeurIPS 2017)::

    FD = ||μ_r - μ_s||² + Tr(Σ_r + Σ_s - 2 (Σ_r Σ_s)^{1/2})

computed in whatever space the vectors are in (FID only when that space is Inception-v3
pool features; pgan reports the space it used). The matrix square root is scipy's ``sqrtm``;
as in pytorch-fid, a non-finite result is retried with ε·I added to both covariances, and a
small imaginary part (numerical noise) is dropped; a large one is an error.
"""

from __future__ import annotations

import warnings

import numpy as np

from pgan_cli.errors import InputError

EPS = 1e-6
IMAG_TOL = 1e-3


def gaussian_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, N-1) covariance of the rows of ``x``, float64."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        raise InputError(f"a Gaussian fit needs at least 2 samples, got {len(x)}")
    return x.mean(0), np.atleast_2d(np.cov(x, rowvar=False))


def frechet_from_stats(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """Fréchet distance of N(mu1, s1) and N(mu2, s2)."""
    from scipy import linalg

    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            off = np.eye(len(s1)) * EPS
            covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=IMAG_TOL * max(1.0, np.abs(covmean).max())):
            raise InputError("the covariance square root has a large imaginary part; the covariances "
                             "are numerically singular (use a lower-dimensional embedding)")
        covmean = covmean.real
    fd = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))
    return max(fd, 0.0)


def frechet_distance(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Fréchet distance between Gaussian fits of two sets of vectors."""
    mu1, s1 = gaussian_fit(real)
    mu2, s2 = gaussian_fit(synthetic)
    if len(mu1) != len(mu2):
        raise InputError(f"the sets have different dimensions ({len(mu1)} vs {len(mu2)})")
    return frechet_from_stats(mu1, s1, mu2, s2)
