"""Attack suite at scale, and pgan's DCR against SDMetrics on the breast-cancer table.

Part 1 (scale): the full black-box suite (dcr, dcr-calibrated, pairwise, density,
logan-blackbox; domias refuses raw 4,096-d inputs, so it runs on a 32-d PCA projection of the
same sets) plus every distance metric, on members + holdout + synthetic (+ reference) at
4,096 dimensions. ``--scale 1`` (the default) is the target size (20k + 20k + 50k, reference
20k); a smaller scale runs proportionally smaller sets (no extrapolation: the k-NN work grows
with the product of set sizes, the rest linearly or not at all). Peers, side by side on the
same data: scikit-learn's brute-force NearestNeighbors for the DCR search (the approach of the
public tools; docs/attacks.md), and, with ``--independent``, the same suite with every search
independent (no shared GEMM passes, no symmetric self-search), i.e. what the suite cost before
:class:`~pgan_cli.attacks.cache.NeighborCache` shared them.

Part 2 (SDMetrics): pgan's DCR metrics and SDMetrics' DCRBaselineProtection /
DCROverfittingProtection on the same breast-cancer splits and synthetic sets (a null set and a
planted leak), SDMetrics run in its own virtual environment (``--sdm-python``) through a
subprocess so its pandas/numpy pins never touch pgan's.

    python bench/attack.py --independent --sdm-python /work/venv-sdm/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _measure import gemm_gflops  # noqa: E402
from pgan_cli.attacks import keys as K  # noqa: E402
from pgan_cli.attacks import run_suite  # noqa: E402
from pgan_cli.leak import plant_leak  # noqa: E402

FULL = {"members": 20000, "holdout": 20000, "synthetic": 50000, "reference": 20000}
DIM = 4096


def structured_population(n: int, d: int, rng: np.random.Generator, rank: int = 64) -> np.ndarray:
    """Image-like vectors: a low-rank signal with a decaying spectrum plus small isotropic noise."""
    basis = np.linalg.qr(np.random.default_rng(123).normal(size=(d, rank)))[0].astype(np.float32)
    scales = (3.0 / np.sqrt(np.arange(1, rank + 1))).astype(np.float32)
    out = np.empty((n, d), dtype=np.float32)
    for a in range(0, n, 8192):
        b = min(n, a + 8192)
        out[a:b] = (rng.normal(size=(b - a, rank)).astype(np.float32) * scales) @ basis.T
        out[a:b] += 0.05 * rng.normal(size=(b - a, d)).astype(np.float32)
    return out


def peak_rss_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def bench_scale(scale: float, seed: int = 0, independent: bool = False) -> dict:
    from pgan_cli.attacks.cache import NeighborCache

    rng = np.random.default_rng(seed)
    n = {k: max(200, int(round(v * scale))) for k, v in FULL.items()}
    total = n["members"] + n["holdout"] + n["reference"] + n["synthetic"]
    t0 = time.perf_counter()
    pool = structured_population(total, DIM, rng)
    M = pool[: n["members"]]
    H = pool[n["members"]: n["members"] + n["holdout"]]
    R = pool[n["members"] + n["holdout"]: n["members"] + n["holdout"] + n["reference"]]
    P = pool[n["members"] + n["holdout"] + n["reference"]:]
    # the released set: 10% noisy member copies, the rest fresh population records
    S = plant_leak(M, P, 0.1, 0.05, n=n["synthetic"], seed=seed).samples
    t_data = time.perf_counter() - t0
    methods = "dcr,dcr-calibrated,pairwise,density,logan-blackbox"
    # warm-up on 300 rows (imports of torch, scipy, sklearn; FAISS threads) so neither timed run pays it
    run_suite(M[:300], H[:300], S[:300], R[:300], methods=methods, seed=seed)
    gemm_before = max(gemm_gflops().values())  # the suite's times follow the machine's GEMM rate
    runs = {}
    for label, shared in (("shared", True), ("independent", False))[: 2 if independent else 1]:
        cache = NeighborCache(shared_passes=shared)
        t0, c0 = time.perf_counter(), time.process_time()
        res = run_suite(M, H, S, R, methods=methods, seed=seed, cache=cache)
        runs[label] = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
                       "searches": cache.searches,
                       "per_attack_seconds": {k: v["seconds"] for k, v in res.json[K.KEY_ATTACKS].items()},
                       "dcr_share": res.json[K.KEY_DISTANCES][K.KEY_DCR_SHARE],
                       "nnaa_privacy_loss": res.json[K.KEY_DISTANCES][K.KEY_NNAA_PRIVACY_LOSS],
                       "authenticity": res.json[K.KEY_DISTANCES][K.KEY_AUTHENTICITY],
                       "near_copies": res.json[K.KEY_DISTANCES][K.KEY_NEAR_COPIES],
                       "auc": {k: v[K.KEY_AUC] for k, v in res.json[K.KEY_ATTACKS].items()}}
        print(json.dumps({label: runs[label]}, default=float), file=sys.stderr, flush=True)
    # domias on a 32-d PCA projection (fitted on the reference set)
    t0 = time.perf_counter()
    mu = R.mean(0)
    _, _, vt = np.linalg.svd(R[:5000] - mu, full_matrices=False)
    proj = lambda x: ((x - mu) @ vt[:32].T).astype(np.float32)  # noqa: E731
    dom = run_suite(proj(M), proj(H), proj(S), proj(R), methods="domias", distances=False, seed=seed)
    t_domias = time.perf_counter() - t0
    # the peer: scikit-learn brute-force nearest neighbour for the DCR search of the candidates
    from sklearn.neighbors import NearestNeighbors

    cand = np.concatenate([M, H])
    sub = cand[: min(len(cand), 4000)]
    t0 = time.perf_counter()
    NearestNeighbors(n_neighbors=1, algorithm="brute").fit(S).kneighbors(sub)
    t_sk = time.perf_counter() - t0
    from pgan_cli.neighbors import knn

    t0 = time.perf_counter()
    knn(sub, S, 1)
    t_faiss = time.perf_counter() - t0
    out = {"sizes": n, "dim": DIM, "scale": scale, "seconds_data": t_data, "suite": runs,
           "gemm_gflops_4096": {"before": gemm_before, "after": max(gemm_gflops().values())},
           "seconds_domias_pca32": t_domias,
           "domias_pca32_auc": dom.json[K.KEY_ATTACKS]["domias"][K.KEY_AUC],
           "seconds_total_with_domias": runs["shared"]["seconds"] + t_domias,
           "load_average": os.getloadavg(), "peak_rss_gib": peak_rss_gib(),
           "dcr_search_4000_queries": {"faiss_s": t_faiss, "sklearn_brute_s": t_sk, "ratio": t_sk / t_faiss}}
    if independent:
        out["speedup_shared_over_independent"] = runs["independent"]["seconds"] / runs["shared"]["seconds"]
    return out


SDM_SCRIPT = r"""
import json, sys, time
import numpy as np, pandas as pd
from sdmetrics.single_table import DCRBaselineProtection, DCROverfittingProtection
d = np.load(sys.argv[1])
cols = [f"f{i}" for i in range(d["M"].shape[1])]
meta = {"tables": {"t": {"columns": {c: {"sdtype": "numerical"} for c in cols}}}}
M, H = pd.DataFrame(d["M"], columns=cols), pd.DataFrame(d["H"], columns=cols)
out = {}
for name in ("S0", "S1"):
    S = pd.DataFrame(d[name], columns=cols)
    t = time.perf_counter()
    base = DCRBaselineProtection.compute_breakdown(M, S, meta, "t")
    over = DCROverfittingProtection.compute_breakdown(M, S, H, meta, "t")
    out[name] = {"seconds": time.perf_counter() - t, "baseline": base, "overfitting": over}
print(json.dumps(out, default=float))
"""


def bench_sdmetrics(sdm_python: str, seed: int = 0, repeats: int = 3) -> dict:
    from sklearn.datasets import load_breast_cancer

    from pgan_cli.attacks.distances import privacy_distances

    x = load_breast_cancer().data.astype(np.float32)
    rng = np.random.default_rng(seed)
    x = x[rng.permutation(len(x))]
    M, H, P = x[:190], x[190:380], x[380:]
    noise = 0.05 * x.std(0)
    leak = plant_leak(M, P, 0.5, 0.0, n=189, seed=seed).samples
    leak = leak + (rng.normal(size=leak.shape) * noise).astype(np.float32)
    sets = {"S0": P.copy(), "S1": leak.astype(np.float32)}
    # SDMetrics normalises each column by its range in the real data and averages |x - y|;
    # pgan's metrics are L2 in the space given, so pgan is given range-normalised columns too
    lo, hi = np.concatenate([M, H]).min(0), np.concatenate([M, H]).max(0)
    norm = lambda a: ((a - lo) / (hi - lo)).astype(np.float32)  # noqa: E731
    out = {"rows": {"members": len(M), "holdout": len(H), "synthetic": {k: len(v) for k, v in sets.items()}}}
    pg = {}
    for name, S in sets.items():
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            rep = privacy_distances(norm(M), norm(H), norm(S), seed=seed)
            times.append(time.perf_counter() - t)
        # DCRBaselineProtection's analogue: median d(S, M) over median d(uniform random rows, M)
        from pgan_cli.neighbors import nearest_distance

        rnd = np.random.default_rng(seed).uniform(0, 1, size=S.shape).astype(np.float32)
        base = float(np.median(nearest_distance(norm(S), norm(M))) / np.median(nearest_distance(rnd, norm(M))))
        pg[name] = {"seconds": min(times), "dcr_share": rep.summary[K.KEY_DCR_SHARE],
                    "baseline_protection_equivalent": min(1.0, base),
                    "median_dcr_synthetic": rep.summary[K.KEY_DCR][K.KEY_DCR_SYNTHETIC_TO_MEMBERS][K.KEY_MEDIAN],
                    "median_dcr_holdout": rep.summary[K.KEY_DCR][K.KEY_DCR_HOLDOUT_TO_MEMBERS][K.KEY_MEDIAN],
                    "overfitting_protection_equivalent": min(1.0, 2 * (1 - rep.summary[K.KEY_DCR_SHARE]))}
    out["pgan"] = pg
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "d.npz"
        np.savez(f, M=M, H=H, **sets)
        script = Path(tmp) / "sdm.py"
        script.write_text(SDM_SCRIPT)
        runs = []
        for _ in range(repeats):
            p = subprocess.run([sdm_python, str(script), str(f)], capture_output=True, text=True, timeout=1200)
            if p.returncode != 0:
                return {**out, "sdmetrics_error": p.stderr[-2000:]}
            runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
        sd = runs[0]
        for name in sets:
            sd[name]["seconds"] = min(r[name]["seconds"] for r in runs)
        out["sdmetrics"] = sd
        ver = subprocess.run([sdm_python, "-c", "import sdmetrics; print(sdmetrics.__version__)"],
                             capture_output=True, text=True).stdout.strip()
        out["sdmetrics_version"] = ver
    out["time_ratio_sdmetrics_over_pgan"] = {n: out["sdmetrics"][n]["seconds"] / pg[n]["seconds"] for n in sets}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the target sizes (1 = 20k/20k/50k)")
    ap.add_argument("--independent", action="store_true",
                    help="also run the suite with independent searches (no shared passes), side by side")
    ap.add_argument("--sdm-python", default="/work/venv-sdm/bin/python", help="python of a venv with sdmetrics")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--skip-sdmetrics", action="store_true")
    ap.add_argument("--out", default=None, help="write the JSON results here")
    args = ap.parse_args()
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "load_average_at_start": os.getloadavg()}}
    if not args.skip_sdmetrics:
        result["sdmetrics"] = bench_sdmetrics(args.sdm_python)
        print(json.dumps(result["sdmetrics"], indent=1, default=float), flush=True)
    if not args.skip_scale:
        result["scale"] = bench_scale(args.scale, independent=args.independent)
        print(json.dumps(result["scale"], indent=1, default=float), flush=True)
    result["machine"]["load_average_at_end"] = os.getloadavg()
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
