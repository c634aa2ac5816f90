"""UMAP for the report's 2-D map (optional; umap-learn compiles for about 40 s in a fresh process)."""

from __future__ import annotations

import numpy as np


def umap_2d(members: np.ndarray, synthetic: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit UMAP (pGAN's settings: n_neighbors 20, min_dist 0) on PCA-50 features of the members,
    then place the synthetic records with ``transform`` (McInnes et al. 2018)."""
    from sklearn.decomposition import PCA

    from pgan_cli import console

    console.log("fitting UMAP for the map (umap-learn compiles for about 40 s in a fresh process)")
    import umap

    k = min(50, members.shape[1], len(members))
    pca = PCA(n_components=k, random_state=seed).fit(members)
    model = umap.UMAP(n_components=2, n_neighbors=min(20, len(members) - 1), min_dist=0.0, random_state=seed)
    pm = model.fit_transform(pca.transform(members))
    return pm, model.transform(pca.transform(synthetic))
