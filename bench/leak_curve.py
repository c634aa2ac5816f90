"""Planted-leak detection curve: each black-box attack's AUC against the leaked fraction F.

Part 1: a 16-d correlated Gaussian population (members, holdout, reference 2,000 each, a
disjoint population pool for the fresh rows); synthetic sets from ``pgan_cli.leak.plant_leak``
with F in 0 .. 1 and copy noise sigma = 0.1 (the population's per-axis std is 0.5 to 2).
Part 2: interval honesty at F = 0: across seeds (new population, new null synthetic set), the
share of bootstrap 95% intervals that contain 0.5 (should be about 0.95).
Part 3: digits (the orientation figure of docs/attacks.md): members/holdout = 50/50 split of
scikit-learn's digits, synthetic = members + N(0, sigma²) noise, or a per-class Gaussian
generator fitted on the members; dcr AUC for several sigmas (pixels in [-1, 1]; sigma in
standardised-pixel units too, as other re-implementations scale the data).

    python bench/leak_curve.py [--seeds 20] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pgan_cli import console  # noqa: E402
from pgan_cli.attacks import keys as K  # noqa: E402
from pgan_cli.attacks import run_suite  # noqa: E402
from pgan_cli.leak import plant_leak  # noqa: E402

FRACTIONS = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)
BLACKBOX = "dcr,dcr-calibrated,pairwise,density,domias,logan-blackbox"


def population(rng: np.random.Generator, n: int, d: int = 16) -> np.ndarray:
    a = np.linalg.qr(np.random.default_rng(99).normal(size=(d, d)))[0] * np.linspace(0.5, 2.0, d)
    return (rng.normal(size=(n, d)) @ a.T).astype(np.float32)


def curve(noise: float = 0.1, n: int = 2000, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    x = population(rng, 5 * n)
    M, H, R, P = x[:n], x[n:2 * n], x[2 * n:3 * n], x[3 * n:]
    out = {}
    for f in FRACTIONS:
        S = plant_leak(M, P, f, noise, seed=seed).samples
        t = time.perf_counter()
        r = run_suite(M, H, S, R, methods=BLACKBOX, seed=seed, n_boot=1000)
        out[str(f)] = {name: {"auc": a[K.KEY_AUC], "ci": a[K.KEY_AUC_CI], "tpr_at_1pct": a[K.KEY_TPR_AT_FPR]["0.01"],
                              "eps_lb": a[K.KEY_EPSILON_LOWER_BOUND]} for name, a in r.json[K.KEY_ATTACKS].items()}
        out[str(f)]["dcr_share"] = r.json[K.KEY_DISTANCES][K.KEY_DCR_SHARE]
        out[str(f)]["seconds"] = time.perf_counter() - t
        print(f"F={f}: " + ", ".join(f"{k} {v['auc']:.3f}" for k, v in out[str(f)].items() if isinstance(v, dict)),
              flush=True)
    return out


def coverage(seeds: int, n: int = 1000) -> dict:
    hits: dict[str, list[bool]] = {}
    aucs: dict[str, list[float]] = {}
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        x = population(rng, 4 * n, d=8)
        M, H, R, S = x[:n], x[n:2 * n], x[2 * n:3 * n], x[3 * n:]
        r = run_suite(M, H, S, R, methods=BLACKBOX, seed=seed, n_boot=1000, distances=False)
        for name, a in r.json[K.KEY_ATTACKS].items():
            lo, hi = a[K.KEY_AUC_CI]
            hits.setdefault(name, []).append(lo <= 0.5 <= hi)
            aucs.setdefault(name, []).append(a[K.KEY_AUC])
    return {name: {"coverage": float(np.mean(h)), "seeds": len(h), "mean_auc": float(np.mean(aucs[name])),
                   "max_abs_dev": float(np.max(np.abs(np.array(aucs[name]) - 0.5)))} for name, h in hits.items()}


def digits_figure(seed: int = 0) -> dict:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 8.0 - 1.0).astype(np.float32)  # pgan's mapping 0..16 -> [-1, 1]
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(x))
    mi, hi = perm[: len(x) // 2], perm[len(x) // 2:]
    M, H, yM = x[mi], x[hi], d.target[mi]
    std = M.std(0)
    std[std == 0] = 1
    out = {}
    for sigma in (0.1, 0.25, 0.5, 1.0):
        S = M + rng.normal(0, sigma, size=M.shape).astype(np.float32)
        out[f"copy_noise_{sigma}_pixels"] = run_suite(M, H, S, methods="dcr", distances=False).json[K.KEY_ATTACKS]["dcr"][K.KEY_AUC]
    # sigma = 0.5 in standardised units (each pixel scaled to unit std), attacked in that space
    Ms, Hs = M / std, H / std
    Ss = Ms + rng.normal(0, 0.5, size=M.shape).astype(np.float32)
    out["copy_noise_0.5_standardised"] = run_suite(Ms, Hs, Ss, methods="dcr", distances=False).json[K.KEY_ATTACKS]["dcr"][K.KEY_AUC]
    gmm = []
    for c in range(10):
        xc = M[yM == c]
        cov = np.cov(xc, rowvar=False) + 1e-3 * np.eye(xc.shape[1])
        gmm.append(rng.multivariate_normal(xc.mean(0), cov, size=len(xc)))
    G = np.concatenate(gmm).astype(np.float32)
    out["per_class_gaussian"] = run_suite(M, H, G, methods="dcr", distances=False).json[K.KEY_ATTACKS]["dcr"][K.KEY_AUC]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    console.configure(quiet=True)
    t0 = time.perf_counter()
    res = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()}}
    res["digits"] = digits_figure()
    print(json.dumps(res["digits"], indent=1), flush=True)
    res["curve"] = curve()
    res["coverage_f0"] = coverage(args.seeds)
    print(json.dumps(res["coverage_f0"], indent=1), flush=True)
    res["seconds_total"] = time.perf_counter() - t0
    res["machine"]["load_average_at_end"] = os.getloadavg()
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
