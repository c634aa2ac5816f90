"""What the report's page shows beyond summary.json, computed before anything is drawn.

:func:`measure_page` runs the searches and fits a page needs (nearest-neighbour distances when no
knn or scores file gave them, the 2-D map and its kernel densities, the closest synthetic/member
pairs, the members most exposed to each attack) and returns them as :class:`PageData`;
:mod:`pgan_cli.report.html` only draws. A figure that cannot be made
carries the reason instead of numbers (shown as "Not available").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pgan_cli.report.exposure import Exposure, most_exposed
from pgan_cli.report.results import KIND_KNN, KIND_SCORES, ResultFile

MAX_MAP_POINTS = 3000
MAX_PAIRS = 12


@dataclass
class MapPoints:
    """2-D positions of (subsampled) members and synthetic records, with their labels."""

    members: np.ndarray
    synthetic: np.ndarray
    member_labels: np.ndarray | None
    synthetic_labels: np.ndarray | None
    class_names: list[str]
    projection: str
    densities: dict[int | None, DensityPanel] = field(default_factory=dict)  # None: all classes


@dataclass
class DensityPanel:
    """Kernel-density estimates of real and synthetic points on one grid (one map panel).

    ``levels_*`` are the density values whose upper sets hold 50% and 90% of each set's points
    (highest-density regions); ``overlap`` is the integral of min(p_real, p_synthetic), 1 for
    identical densities, 0 for disjoint ones (1 minus the total-variation distance).
    """

    x: np.ndarray
    y: np.ndarray
    real: np.ndarray | None
    synthetic: np.ndarray | None
    levels_real: list[float]
    levels_synthetic: list[float]
    overlap: float | None


@dataclass
class PageData:
    dcr_sets: dict[str, np.ndarray] = field(default_factory=dict)
    map: MapPoints | None = None
    map_unavailable: str | None = None
    pairs: list[tuple[int, int, float]] | None = None  # (synthetic row, member row, distance), closest first
    pairs_unavailable: str | None = None
    exposure: Exposure | None = None


def subsample(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= cap else np.sort(rng.choice(n, cap, replace=False))


def labels_and_names(bundle) -> tuple[np.ndarray, list[str]]:
    """A dataset bundle's labels (zeros when unlabelled) and its class names."""
    if bundle.labels is None:
        return np.zeros(bundle.n, dtype=np.int64), ["all"]
    k = bundle.num_classes or int(bundle.labels.max()) + 1
    return bundle.labels, bundle.class_names or [str(i) for i in range(k)]


def dcr_sets(results: list[ResultFile], members, synthetic, holdout) -> dict[str, np.ndarray]:
    """Nearest-member distances of synthetic and holdout records, when no knn or scores file has them."""
    if (members is None or synthetic is None or any(r.kind == KIND_KNN for r in results)
            or any(r.data.get("dcr") for r in results if r.kind == KIND_SCORES)):
        return {}
    from pgan_cli.neighbors import nearest_distance

    xm = members.samples.reshape(members.n, -1)
    out = {}
    for label, b in (("synthetic -> members", synthetic), ("holdout -> members", holdout)):
        if b is not None and b.samples.reshape(b.n, -1).shape[1] == xm.shape[1]:
            out[label] = nearest_distance(b.samples.reshape(b.n, -1), xm)
    return out


def map_points(members, synthetic, method: str, seed: int) -> MapPoints | str:
    """Members and synthetic records projected to 2-D (PCA or UMAP fitted on the members), or why not."""
    if members is None or synthetic is None:
        return "give --members and --synthetic dataset files"
    rng = np.random.default_rng(seed)
    im = subsample(members.n, MAX_MAP_POINTS, rng)
    isyn = subsample(synthetic.n, MAX_MAP_POINTS, rng)
    xm = members.samples[im].reshape(len(im), -1).astype(np.float64)
    xs = synthetic.samples[isyn].reshape(len(isyn), -1).astype(np.float64)
    if xm.shape[1] != xs.shape[1]:
        return f"members have {xm.shape[1]} values per record, synthetic {xs.shape[1]}"
    if xm.shape[1] <= 2:
        pm, ps = np.pad(xm, ((0, 0), (0, 2 - xm.shape[1]))), np.pad(xs, ((0, 0), (0, 2 - xs.shape[1])))
        used = "raw coordinates"
    elif method == "umap":  # the umap embedding of pgan embed (pGAN's settings), fitted on the members
        from pgan_cli.embeddings import make_embedding

        emb = make_embedding("umap", dim=2, seed=seed)
        emb.fit(xm.astype(np.float32))
        pm, ps = emb.transform(xm.astype(np.float32)), emb.transform(xs.astype(np.float32))
        used = "UMAP (fitted on members)"
    else:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed).fit(xm)
        pm, ps = pca.transform(xm), pca.transform(xs)
        used = f"PCA fitted on members ({pca.explained_variance_ratio_.sum():.0%} of variance)"
    lm, names = labels_and_names(members)
    ls = synthetic.labels[isyn] if synthetic.labels is not None else None
    return MapPoints(pm, ps, lm[im] if members.labels is not None else None, ls, names, used)


DENSITY_GRID = 80
DENSITY_MASS = (0.9, 0.5)  # contours enclosing 90% and 50% of each set's points
MAX_DENSITY_PANELS = 10


def _kde(points: np.ndarray):
    """A Gaussian KDE (Scott's rule, scipy) of 2-D points, or None when it is undefined (fewer than
    3 distinct points, or points on a line)."""
    from scipy.stats import gaussian_kde

    if len(np.unique(points, axis=0)) < 3:
        return None
    try:
        return gaussian_kde(points.T)
    except (np.linalg.LinAlgError, ValueError):  # a singular covariance: collinear points
        return None


def density_panel(real: np.ndarray, synthetic: np.ndarray, grid: int = DENSITY_GRID) -> DensityPanel:
    """The density map of one panel (pGAN's privacy figure: real against synthetic density in the
    2-D embedding), with the 50%/90% highest-density levels of each set and their overlap."""
    both = np.concatenate([real, synthetic])
    lo, hi = both.min(0), both.max(0)
    pad = 0.08 * np.maximum(hi - lo, 1e-9)
    x = np.linspace(lo[0] - pad[0], hi[0] + pad[0], grid)
    y = np.linspace(lo[1] - pad[1], hi[1] + pad[1], grid)
    xx, yy = np.meshgrid(x, y)
    flat = np.vstack([xx.ravel(), yy.ravel()])
    cell = (x[1] - x[0]) * (y[1] - y[0])
    zs, levels = [], []
    for pts in (real, synthetic):
        k = _kde(pts) if len(pts) else None
        if k is None:
            zs.append(None)
            levels.append([])
            continue
        z = k(flat).reshape(grid, grid)
        at_points = k(pts.T)
        zs.append(z)
        levels.append(sorted(float(np.quantile(at_points, 1 - m)) for m in DENSITY_MASS))
    overlap = None
    if zs[0] is not None and zs[1] is not None:
        # both KDEs renormalised on the grid, so truncated tails do not bias the overlap
        a, b = zs[0] / (zs[0].sum() * cell), zs[1] / (zs[1].sum() * cell)
        overlap = float(np.minimum(a, b).sum() * cell)
    return DensityPanel(x, y, zs[0], zs[1], levels[0], levels[1], overlap)


def density_panels(m: MapPoints) -> dict[int | None, DensityPanel]:
    """One density panel for all records and one per class (when both sets are labelled)."""
    out = {None: density_panel(m.members, m.synthetic)}
    if m.member_labels is not None and m.synthetic_labels is not None:
        for c in range(min(len(m.class_names), MAX_DENSITY_PANELS)):
            out[c] = density_panel(m.members[m.member_labels == c], m.synthetic[m.synthetic_labels == c])
    return out


def closest_pairs(members, synthetic) -> list[tuple[int, int, float]] | str:
    """The synthetic records closest to a member (pixel space), closest first, or why not."""
    xm = members.samples.reshape(members.n, -1)
    xs = synthetic.samples.reshape(synthetic.n, -1)
    if xm.shape[1] != xs.shape[1] or members.kind != "images":
        return "needs image members and synthetic records of the same shape"
    from pgan_cli.neighbors import knn

    res = knn(xs, xm, 1)
    d = res.distances[:, 0]
    order = np.argsort(d, kind="stable")[:MAX_PAIRS]
    return [(int(i), int(res.indices[i, 0]), float(d[i])) for i in order]


def measure_page(results: list[ResultFile], *, members=None, synthetic=None, holdout=None,
                 show_real_images: bool = False, map_method: str = "pca", seed: int = 0) -> PageData:
    """Every measurement the page draws (see the module docstring)."""
    page = PageData(dcr_sets=dcr_sets(results, members, synthetic, holdout))
    m = map_points(members, synthetic, map_method, seed)
    page.map, page.map_unavailable = (m, None) if isinstance(m, MapPoints) else (None, m)
    if page.map is not None:
        page.map.densities = density_panels(page.map)
    page.exposure = most_exposed(results, members, synthetic)
    if show_real_images and members is not None and synthetic is not None:
        p = closest_pairs(members, synthetic)
        page.pairs, page.pairs_unavailable = (p, None) if isinstance(p, list) else (None, p)
    return page
