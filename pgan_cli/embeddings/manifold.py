"""UMAP (McInnes, Healy & Melville 2018) with pGAN's settings: n_neighbors 20, min_dist 0, seed 10.

Inputs with more than 50 values per sample are first reduced with PCA-50 (fast, and the usual
practice before UMAP). The fit runs once, on the fit set; other sets are placed with
``UMAP.transform``. umap-learn compiles its numba code for about 40 s in every fresh process, and
a seeded fit runs single-threaded.

Saving without pickle: a fitted ``umap.UMAP`` holds numba search trees that cannot be stored as
plain arrays. The model file therefore stores the fit set's PCA features, the parameters and the
resulting embedding; loading refits UMAP on those features with the same seed (deterministic)
and checks that the refit reproduces the saved embedding. The model file thus contains the fit
set's (PCA-reduced) features: treat it with the same care as the data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pgan_cli import console
from pgan_cli.embeddings.base import Embedding
from pgan_cli.errors import FormatError, InputError

UMAP_NEIGHBORS = 20
UMAP_MIN_DIST = 0.0
UMAP_SEED = 10
UMAP_DEFAULT_DIM = 2
UMAP_PCA_DIM = 50


class UMAPEmbedding(Embedding):
    method = "umap"
    takes_dim = True

    def __init__(self, dim: int | None = None, seed: int = UMAP_SEED, n_neighbors: int = UMAP_NEIGHBORS,
                 min_dist: float = UMAP_MIN_DIST, **kw: Any):
        super().__init__(dim=dim, seed=seed, **kw)
        self.n_neighbors, self.min_dist = int(n_neighbors), float(min_dist)

    def _pca(self, flat: np.ndarray) -> np.ndarray:
        return flat if self.pca_components is None else (flat - self.pca_mean) @ self.pca_components.T

    def _fit(self, x: np.ndarray) -> None:
        flat = self.resized(x).reshape(len(x), -1)
        n, d = flat.shape
        if n < 3:
            raise InputError("UMAP needs at least 3 samples in the fit set")
        self.pca_mean = self.pca_components = None
        if d > UMAP_PCA_DIM and n > UMAP_PCA_DIM:
            from sklearn.decomposition import PCA

            pca = PCA(n_components=UMAP_PCA_DIM, random_state=self.seed).fit(flat)
            self.pca_mean, self.pca_components = pca.mean_.astype(np.float32), pca.components_.astype(np.float32)
            self.adaptation.append(f"PCA to {UMAP_PCA_DIM} dimensions before UMAP")
        self.train = np.ascontiguousarray(self._pca(flat), dtype=np.float32)
        if self.n_neighbors >= n:
            console.warn(f"UMAP n_neighbors {self.n_neighbors} >= fit-set size {n}; using {n - 1}")
            self.n_neighbors = n - 1
        self._umap = self._fit_umap()
        self.embedding = np.asarray(self._umap.embedding_, dtype=np.float32)

    def _fit_umap(self):
        import warnings

        console.log(f"UMAP: compiling umap-learn's numba code takes about 40 s in a fresh process; fitting "
                    f"on {len(self.train)} rows of dimension {self.train.shape[1]} (single-threaded: seeded)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import umap

            model = umap.UMAP(n_components=self.dim or UMAP_DEFAULT_DIM, n_neighbors=self.n_neighbors,
                              min_dist=self.min_dist, random_state=self.seed, transform_seed=self.seed)
            return model.fit(self.train)

    @property
    def out_dim(self) -> int:
        return int(self.dim or UMAP_DEFAULT_DIM)

    def _transform(self, x: np.ndarray) -> np.ndarray:
        import warnings

        feats = self._pca(self.resized(x).reshape(len(x), -1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._umap.transform(np.ascontiguousarray(feats, dtype=np.float32))

    def extra_description(self) -> dict[str, Any]:
        return {"n_neighbors": self.n_neighbors, "min_dist": self.min_dist,
                "pca_dim": None if self.pca_components is None else UMAP_PCA_DIM}

    def get_state(self):
        arrays = {"train": self.train, "embedding": self.embedding}
        if self.pca_components is not None:
            arrays.update(pca_mean=self.pca_mean, pca_components=self.pca_components)
        return {"n_neighbors": self.n_neighbors, "min_dist": self.min_dist}, arrays

    def set_state(self, config, arrays):
        self.n_neighbors, self.min_dist = int(config["n_neighbors"]), float(config["min_dist"])
        self.pca_mean = arrays.get("pca_mean")
        self.pca_components = arrays.get("pca_components")
        self.train = np.ascontiguousarray(arrays["train"], dtype=np.float32)
        self._umap = self._fit_umap()
        refit = np.asarray(self._umap.embedding_, dtype=np.float32)
        if refit.shape != arrays["embedding"].shape or not np.allclose(refit, arrays["embedding"], atol=1e-4):
            raise FormatError("refitting the saved UMAP model did not reproduce its embedding (a different "
                              "umap-learn/numba version?); refit with `pgan embed --method umap`")
        self.embedding = refit
