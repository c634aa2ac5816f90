"""Pixel space and PCA: the fast, deterministic defaults."""

from __future__ import annotations

from typing import Any

import numpy as np

from pgan_cli.embeddings.base import Embedding
from pgan_cli.errors import InputError

PCA_DEFAULT_DIM = 50


class PixelEmbedding(Embedding):
    """Flattened samples, optionally resized first (``resize``): pGAN's pixel space (Table 2 of the
    pGAN write-up measures every attack there). Nothing is learnt; fitting records the shape."""

    method = "pixel"

    def _fit(self, x: np.ndarray) -> None:
        pass

    @property
    def out_dim(self) -> int:
        shape = self.input_shape or ()
        if self.resize is not None and len(shape) == 3:
            return shape[0] * self.resize * self.resize
        return int(np.prod(shape))

    def _transform(self, x: np.ndarray) -> np.ndarray:
        return self.resized(x).reshape(len(x), -1)


def _power_of_two_scale(x: np.ndarray) -> float:
    """1, or the power of two at or above max |x| when that exceeds 2^20: the float32 SVD squares
    the singular values (N·D values up to 1e15, ``arrays.MAX_ABS_VALUE``, would overflow), and
    dividing by a power of two is exact in IEEE 754 arithmetic, so the components and explained
    variance ratios do not change."""
    top = float(np.abs(x).max())
    return float(2.0 ** np.ceil(np.log2(top))) if top > 2.0 ** 20 else 1.0


class PCAEmbedding(Embedding):
    """scikit-learn PCA of the flattened (optionally resized) samples, ``dim`` components (default 50).

    scikit-learn picks the randomised SVD (Halko et al. 2011) for large inputs (``svd_solver="auto"``);
    the seed fixes it. Stored as ``mean`` and ``components`` arrays; transform is ``(x - mean) @ Cᵀ``.
    """

    method = "pca"
    takes_dim = True

    def _fit(self, x: np.ndarray) -> None:
        from sklearn.decomposition import PCA

        flat = self.resized(x).reshape(len(x), -1)
        n, d = flat.shape
        want = self.dim or PCA_DEFAULT_DIM
        dim = min(want, n, d)
        if self.dim is not None and dim < self.dim:
            raise InputError(f"--dim {self.dim} is larger than the fit set allows (min(N, D) = {min(n, d)})")
        if n < 2:
            raise InputError("PCA needs at least 2 samples in the fit set")
        scale = _power_of_two_scale(flat)
        pca = PCA(n_components=dim, svd_solver="auto", random_state=self.seed).fit(flat / scale if scale > 1 else flat)
        self.mean = (pca.mean_ * scale).astype(np.float32)
        self.components = pca.components_.astype(np.float32)
        self.explained = pca.explained_variance_ratio_.astype(np.float64)

    @property
    def out_dim(self) -> int:
        return int(self.components.shape[0])

    def _transform(self, x: np.ndarray) -> np.ndarray:
        flat = self.resized(x).reshape(len(x), -1)
        return (flat - self.mean) @ self.components.T

    def extra_description(self) -> dict[str, Any]:
        return {"explained_variance": float(self.explained.sum())}

    def get_state(self):
        return {}, {"mean": self.mean, "components": self.components, "explained": self.explained}

    def set_state(self, config, arrays):
        self.mean, self.components, self.explained = arrays["mean"], arrays["components"], arrays["explained"]
