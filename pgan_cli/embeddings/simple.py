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
        pca = PCA(n_components=dim, svd_solver="auto", random_state=self.seed).fit(flat)
        self.mean = pca.mean_.astype(np.float32)
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
