"""Distance-based privacy metrics of a synthetic set S against members M and holdout H.

All neighbour searches go through :func:`pgan_cli.neighbors.knn` (via a shared
:class:`~pgan_cli.attacks.cache.NeighborCache`). Distances are L2 in the given space.

- DCR: d(s, M) for s in S against d(h, M) for h in H (and d(s, H)); 5th percentile, median, mean.
- DCR share: fraction of S closer to M than to H (ties count one half); ideal 0.5 when
  |M| = |H|; with unequal sizes the larger set is subsampled to the smaller (10 seeded repeats,
  mean), so the ideal stays 0.5.
- NNDR: d1 / d2, the distances to the two nearest members, per synthetic record; the same per
  holdout record is the baseline (``nndr_holdout``).
- NNAA (Yale et al., "Generation and evaluation of privacy preserving synthetic health data",
  Neurocomputing 2020): AA(A, S) = 1/2 [mean_i 1(d_AS(i) > d_AA(i)) + mean_j 1(d_SA(j) > d_SS(j))],
  self excluded from d_AA and d_SS; privacy loss = AA(H, S) - AA(M, S). With unequal sizes
  M, H and S are subsampled to the smallest size 10 times (seeded) and the mean is reported.
- Authenticity (Alaa et al., "How faithful is your synthetic data?", ICML 2022), per synthetic
  s: i* = the nearest member to s; s is authentic when d(s, x_i*) > d(x_i*, its nearest other
  member). The member-to-member radius is indexed by i* (a member index), not by s's index,
  the indexing slip of the reference code and synthcity.
- Data-copying test C_T (Meehan, Chaudhuri & Dasgupta, "A non-parametric test to detect
  data-copying in generative models", AISTATS 2020): cells by k-means on M ∪ H; in each cell
  with at least 20 synthetic records, the Mann-Whitney z-score of d(S, M) against d(H, M);
  C_T = the holdout-weighted mean of the z-scores. C_T << 0 means copying (about 0 is ideal,
  >> 0 underfitting).
- Near-copies: synthetic records with d(s, M) below the 1st percentile of member-to-member
  nearest-neighbour distances; the worst pairs are listed (indices and distance only).
- epsilon-identifiability (Yoon, Drumright & van der Schaar, "Anonymization through data
  synthesis using generative adversarial networks (ADS-GAN)", IEEE JBHI 2020): the share of
  members m with d(m, S) < d(m, M without m) (strict); the baseline is the same share for holdout
  records h with d(h, S) < d(h, M), so both are measured against the same real set. Reported in
  L2 and, as the paper, with each feature scaled by w_j = 1/H_j, H_j the entropy of the
  members' column j rounded to integers (the authors' code; a column with H_j = 0 gets w_j = 0,
  where their code divides by zero). docs/privacy-metrics.md says where synthcity and SynthEval
  differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pgan_cli.attacks import keys as K
from pgan_cli.errors import InputError
from pgan_cli.neighbors import knn
from pgan_cli.attacks.cache import NeighborCache, nearest_in_subset

REPEATS = 10
TOP_PAIRS = 10
NEAR_COPY_QUANTILE = 0.01
MIN_CELL_SYNTHETIC = 20
KMEANS_ITERS = 20


@dataclass
class DistanceReport:
    """``summary``: the JSON ``distances`` object; ``arrays``: per-record arrays for the scores file."""

    summary: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def _stats(d: np.ndarray) -> dict:
    return {K.KEY_P5: float(np.percentile(d, 5)), K.KEY_MEDIAN: float(np.median(d)), K.KEY_MEAN: float(d.mean())}


def _subset_mask(n: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if size >= n:
        return np.ones(n, dtype=bool), np.arange(n)
    rows = np.sort(rng.choice(n, size, replace=False))
    keep = np.zeros(n, dtype=bool)
    keep[rows] = True
    return keep, rows


def dcr_share(d_sm: np.ndarray, d_sh: np.ndarray) -> float:
    """Fraction of synthetic records closer to M than to H; ties count one half."""
    return float(np.mean((d_sm < d_sh) + 0.5 * (d_sm == d_sh)))


def authenticity(d_sm: np.ndarray, nearest_member: np.ndarray, member_radius: np.ndarray) -> np.ndarray:
    """Per synthetic record: 1 if d(s, x_i*) > d(x_i*, nearest other member), i* = nearest member."""
    return (d_sm > member_radius[nearest_member]).astype(np.int8)


def identifiability(d_to_synthetic: np.ndarray, d_to_real: np.ndarray) -> float:
    """Share of records whose nearest synthetic record is strictly closer than their nearest real
    one (Yoon et al. 2020: r-hat_i < r_i)."""
    return float(np.mean(np.asarray(d_to_synthetic, np.float64) < np.asarray(d_to_real, np.float64)))


def entropy_weights(members: np.ndarray) -> np.ndarray:
    """ADS-GAN's feature weights: w_j = 1/H_j, H_j the entropy (nats) of the members' column j
    rounded to integers (as the authors' code, ``np.round`` then ``scipy.stats.entropy`` of the
    counts); 0 where H_j = 0 (one rounded value: the authors' code divides by zero there)."""
    from scipy.stats import entropy

    h = np.array([entropy(np.unique(np.round(members[:, j]), return_counts=True)[1])
                  for j in range(members.shape[1])], dtype=np.float64)
    w = np.zeros_like(h)
    np.divide(1.0, h, out=w, where=h > 0)
    return w


def eps_identifiability(members: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray,
                        cache: NeighborCache) -> dict:
    """epsilon-identifiability of the members and of the holdout baseline, in L2 and entropy-weighted.

    L2 searches come from ``cache`` (shared with the other metrics); the weighted space is searched
    once more with a cache of its own (same device), k = 1.
    """
    M, H, S = members, holdout, synthetic
    k = cache.default_k

    def shares(c: NeighborCache, m, h, s, kk: int) -> dict:
        r_m = c.knn(m, m, kk, exclude_self=True).distances[:, 0]
        r_h = c.knn(h, m, kk).distances[:, 0]
        return {K.KEY_EPS_MEMBERS: identifiability(c.knn(m, s, kk).distances[:, 0], r_m),
                K.KEY_EPS_HOLDOUT: identifiability(c.knn(h, s, kk).distances[:, 0], r_h)}

    out = shares(cache, M, H, S, k)
    w = entropy_weights(M)
    zero = int(np.count_nonzero(w == 0))
    weighted: dict = {K.KEY_EPS_MEMBERS: None, K.KEY_EPS_HOLDOUT: None}
    if zero < len(w):
        w32 = w.astype(np.float32)
        mw, hw, sw = (np.ascontiguousarray(a * w32) for a in (M, H, S))
        own = NeighborCache(default_k=1, shared_passes=cache.shared_passes, device=cache.device)
        weighted = shares(own, mw, hw, sw, 1)
    weighted.update({K.KEY_EPS_FEATURES: int(len(w)), K.KEY_EPS_ZERO_ENTROPY_FEATURES: zero})
    out[K.KEY_EPS_WEIGHTED] = weighted
    return out


def _aa(d_as: np.ndarray, d_aa: np.ndarray, d_sa: np.ndarray, d_ss: np.ndarray) -> float:
    return 0.5 * (float(np.mean(d_as > d_aa)) + float(np.mean(d_sa > d_ss)))


def nnaa(members: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, cache: NeighborCache,
         repeats: int = REPEATS, seed: int = 0) -> dict:
    """NNAA of members and of holdout against S, and the privacy loss (subsampled when sizes differ)."""
    M, H, S = members, holdout, synthetic
    n = min(len(M), len(H), len(S))
    if n < 2:
        raise InputError("NNAA needs at least 2 records in each of members, holdout and synthetic")
    equal = len(M) == len(H) == len(S)
    reps = 1 if equal else int(repeats)
    k = cache.default_k
    ms, mm = cache.knn(M, S, k), cache.knn(M, M, k, exclude_self=True)
    sm, ss = cache.knn(S, M, k), cache.knn(S, S, k, exclude_self=True)
    hs, hh = cache.knn(H, S, k), cache.knn(H, H, k, exclude_self=True)
    sh = cache.knn(S, H, k)
    rng = np.random.default_rng(seed + 101)
    aa_m, aa_h = [], []
    for _ in range(reps):
        km, rm = _subset_mask(len(M), n, rng)
        kh, rh = _subset_mask(len(H), n, rng)
        ks, rs = _subset_mask(len(S), n, rng)
        d_ms, _ = nearest_in_subset(ms, ks, M, S, rm)
        d_mm, _ = nearest_in_subset(mm, km, M, M, rm, self_rows=np.arange(len(M)))
        d_sm, _ = nearest_in_subset(sm, km, S, M, rs)
        d_ss, _ = nearest_in_subset(ss, ks, S, S, rs, self_rows=np.arange(len(S)))
        d_hs, _ = nearest_in_subset(hs, ks, H, S, rh)
        d_hh, _ = nearest_in_subset(hh, kh, H, H, rh, self_rows=np.arange(len(H)))
        d_sh, _ = nearest_in_subset(sh, kh, S, H, rs)
        aa_m.append(_aa(d_ms, d_mm, d_sm, d_ss))
        aa_h.append(_aa(d_hs, d_hh, d_sh, d_ss))
    am, ah = float(np.mean(aa_m)), float(np.mean(aa_h))
    return {"members": am, "holdout": ah, "privacy_loss": ah - am, "subsample_size": n, "repeats": reps}


def kmeans_cells(points: np.ndarray, n_cells: int, seed: int = 0, iters: int = KMEANS_ITERS) -> np.ndarray:
    """k-means centroids of ``points`` (FAISS ``Kmeans``: Lloyd iterations on at most 256 points
    per centroid, seeded); returns the centroids."""
    import faiss

    x = np.ascontiguousarray(points, dtype=np.float32)
    n_cells = max(1, min(int(n_cells), len(x)))
    if n_cells == 1:
        return x.mean(axis=0, keepdims=True)
    km = faiss.Kmeans(x.shape[1], n_cells, niter=int(iters), seed=int(seed) % (2 ** 31), verbose=False,
                      min_points_per_centroid=1, max_points_per_centroid=256)
    km.train(x)
    return np.asarray(km.centroids, dtype=np.float32)


def data_copying_ct(d_hm: np.ndarray, d_sm: np.ndarray, cells_h: np.ndarray, cells_s: np.ndarray,
                    n_cells: int, min_synthetic: int = MIN_CELL_SYNTHETIC) -> dict:
    """Meehan et al.'s C_T from per-record distances to M and cell assignments."""
    from scipy.stats import mannwhitneyu

    zs, weights, used = [], [], []
    for c in range(n_cells):
        q = d_sm[cells_s == c]
        p = d_hm[cells_h == c]
        if len(q) < min_synthetic or len(p) == 0:
            continue
        m, n = len(q), len(p)
        u = mannwhitneyu(q, p, alternative="two-sided").statistic  # pairs with q > p (+ ties / 2)
        z = (u - m * n / 2.0) / np.sqrt(m * n * (m + n + 1) / 12.0)
        zs.append(float(z))
        weights.append(n)
        used.append(c)
    if not zs:
        return {"value": None, "cells": n_cells, "cells_used": 0,
                "note": f"no cell had {min_synthetic} synthetic records and a holdout record"}
    w = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    return {"value": float(np.dot(w, zs)), "cells": n_cells, "cells_used": len(used),
            "cell_z": dict(zip(map(int, used), zs)), "min_synthetic_per_cell": min_synthetic}


def privacy_distances(members: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray,
                      cache: NeighborCache | None = None, seed: int = 0, repeats: int = REPEATS,
                      n_cells: int | None = None, top: int = TOP_PAIRS) -> DistanceReport:
    """Every distance metric of docs/privacy-metrics.md, as the JSON ``distances`` object plus per-record arrays."""
    M, H, S = (np.ascontiguousarray(a, dtype=np.float32) for a in (members, holdout, synthetic))
    for name, x in (("members", M), ("holdout", H), ("synthetic", S)):
        if x.ndim != 2 or len(x) < 2:
            raise InputError(f"the {name} set needs at least 2 records (got {len(x)})")
    if not (M.shape[1] == H.shape[1] == S.shape[1]):
        raise InputError(f"members, holdout and synthetic have different dimensions "
                         f"({M.shape[1]}, {H.shape[1]}, {S.shape[1]}); put all sets in one space")
    cache = cache or NeighborCache()
    k = cache.default_k
    notes = []
    sm = cache.knn(S, M, k)
    d_sm, nearest = sm.distances[:, 0].astype(np.float64), sm.indices[:, 0]
    hm = cache.knn(H, M, k)
    d_hm = hm.distances[:, 0].astype(np.float64)
    sh = cache.knn(S, H, k)
    d_sh = sh.distances[:, 0].astype(np.float64)
    mm = cache.knn(M, M, k, exclude_self=True)
    radius = mm.distances[:, 0].astype(np.float64)

    # DCR share, balanced when |M| != |H|
    rng = np.random.default_rng(seed + 11)
    if len(M) == len(H):
        share = dcr_share(d_sm, d_sh)
    else:
        n = min(len(M), len(H))
        vals = []
        for _ in range(repeats):
            km, _ = _subset_mask(len(M), n, rng)
            kh, _ = _subset_mask(len(H), n, rng)
            a, _ = nearest_in_subset(sm, km, S, M)
            b, _ = nearest_in_subset(sh, kh, S, H)
            vals.append(dcr_share(a, b))
        share = float(np.mean(vals))
        notes.append(f"dcr_share: |members| = {len(M)} and |holdout| = {len(H)} differ; the larger was "
                     f"subsampled to {n} ({repeats} repeats, mean)")

    def ratio(res, d1):  # NNDR: d1/d2 to the two nearest members (1 where d2 = 0)
        d2 = res.distances[:, 1].astype(np.float64) if res.distances.shape[1] > 1 else np.full(len(d1), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(d2 > 0, d1 / d2, 1.0)

    nndr, nndr_h = ratio(sm, d_sm), ratio(hm, d_hm)
    auth = authenticity(d_sm, nearest, radius)

    # near-copies
    thr = float(np.quantile(radius, NEAR_COPY_QUANTILE))
    close = np.flatnonzero(d_sm < thr)
    order = np.argsort(d_sm, kind="stable")[:top]
    pairs = [{"synthetic": int(i), "member": int(nearest[i]), "distance": float(d_sm[i])} for i in order]

    # data-copying C_T
    if n_cells is None:
        n_cells = int(max(1, min(50, len(H) // 50)))
    centers = kmeans_cells(np.concatenate([M, H]), n_cells, seed=seed)
    cells_h = knn(H, centers, 1).indices[:, 0]
    cells_s = knn(S, centers, 1).indices[:, 0]
    ct = data_copying_ct(d_hm, d_sm, cells_h, cells_s, len(centers))

    aa = nnaa(M, H, S, cache, repeats=repeats, seed=seed)
    eps = eps_identifiability(M, H, S, cache)
    if eps[K.KEY_EPS_WEIGHTED][K.KEY_EPS_ZERO_ENTROPY_FEATURES]:
        z = eps[K.KEY_EPS_WEIGHTED]
        notes.append(f"eps_identifiability.weighted: {z[K.KEY_EPS_ZERO_ENTROPY_FEATURES]} of {z[K.KEY_EPS_FEATURES]} "
                     f"features take one rounded value in the members (entropy 0) and get weight 0"
                     + ("; no feature is left, so no weighted value" if z[K.KEY_EPS_MEMBERS] is None else ""))
    if aa["repeats"] > 1:
        notes.append(f"nnaa: set sizes differ; members, holdout and synthetic were subsampled to "
                     f"{aa['subsample_size']} ({aa['repeats']} repeats, mean)")
    summary = {
        K.KEY_DCR: {K.KEY_DCR_SYNTHETIC_TO_MEMBERS: _stats(d_sm), K.KEY_DCR_HOLDOUT_TO_MEMBERS: _stats(d_hm),
                    K.KEY_DCR_SYNTHETIC_TO_HOLDOUT: _stats(d_sh)},
        K.KEY_DCR_SHARE: share,
        K.KEY_NNDR: _stats(nndr),
        K.KEY_NNDR_HOLDOUT: _stats(nndr_h),
        K.KEY_NNAA: {"members": aa["members"], "holdout": aa["holdout"],
                     "subsample_size": aa["subsample_size"], "repeats": aa["repeats"]},
        K.KEY_NNAA_PRIVACY_LOSS: aa["privacy_loss"],
        K.KEY_AUTHENTICITY: float(auth.mean()),
        K.KEY_DATA_COPYING_CT: ct["value"],
        K.KEY_NEAR_COPIES: int(len(close)),
        K.KEY_NEAR_COPY_THRESHOLD: thr,
        K.KEY_NEAR_COPY_PAIRS: pairs,
        K.KEY_EPS_IDENTIFIABILITY: eps,
        K.KEY_DETAILS: {"data_copying": ct, "notes": notes, "metric": "l2"},
    }
    arrays = {K.SCORES_DCR_SYNTHETIC: d_sm, K.SCORES_DCR_HOLDOUT: d_hm, K.SCORES_DCR_SYNTHETIC_HOLDOUT: d_sh,
              K.SCORES_NEAREST_MEMBER: nearest.astype(np.int64), K.SCORES_AUTHENTIC: auth}
    return DistanceReport(summary, arrays)
