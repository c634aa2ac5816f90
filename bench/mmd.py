"""Benchmark: MMD² permutation test, pgan vs hyppo's MMD test vs a naive NumPy implementation.

Default case: 5,000 x 5,000 points in 64 dimensions, RBF kernel with the median
bandwidth, 1,000 permutations. Each method runs in its own subprocess (time and peak RSS).

- pgan: ``pgan_cli.metrics.mmd.mmd_test`` (kernel rows computed once in blocks, all
  permutations from one float64 GEMM);
- naive: full float64 K in NumPy, each permutation re-indexes K (K[p][:, p]) and sums blocks;
- hyppo: ``hyppo.ksample.MMD(compute_kernel="gaussian").test(x, y, reps, auto=False)``
  (permutation test through its HSIC equivalence).

The peers are too slow for 1,000 permutations on a 2-core machine, so they run
``--peer-reps`` permutations (default 20) and their time is extrapolated linearly to 1,000
(setup time counted once; the per-permutation cost is measured); the table says so.

Usage: python bench/mmd.py [--n 5000] [--dim 64] [--permutations 1000] [--peer-reps 20] [--scale]
``--scale`` (or ``--scale-only``) adds a pgan-only run at 50,000 + 50,000 points
(``--scale-n``, ``--scale-permutations`` 20) to show memory stays far below an (N+M)² matrix
(75 GiB in float64).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from _measure import machine, run_case, timed


def data(n: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)).astype(np.float32), (rng.normal(size=(n, dim)) + 0.02).astype(np.float32)


def naive(x, y, sigma, reps, seed=0):
    """Full K, then per permutation re-index K and recompute the U-statistic."""
    z = np.concatenate([x, y]).astype(np.float64)
    sq = (z * z).sum(1)
    k = np.exp(-np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0) / (2 * sigma ** 2))
    np.fill_diagonal(k, 0.0)
    n, m = len(x), len(y)

    def stat(idx):
        kk = k[np.ix_(idx, idx)]
        return (kk[:n, :n].sum() / (n * (n - 1)) + kk[n:, n:].sum() / (m * (m - 1))
                - 2 * kk[:n, n:].sum() / (n * m))

    t_setup = time.perf_counter()
    obs = stat(np.arange(n + m))
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    null = [stat(rng.permutation(n + m)) for _ in range(reps)]
    per_perm = (time.perf_counter() - t0) / reps
    return obs, float((1 + sum(v >= obs for v in null)) / (reps + 1)), per_perm, t0 - t_setup


def case(args) -> dict:
    x, y = data(args.n, args.dim)
    if args.method == "pgan":
        import torch  # noqa: F401  (imported before timing: import cost is not the method's)

        from pgan_cli.metrics import mmd

        mmd.mmd_test(x[:50], y[:50], permutations=10)  # warm-up (thread pools, kernels)
        res, sec, base, peak = timed(lambda: mmd.mmd_test(x, y, permutations=args.permutations, seed=0))
        return {"method": "pgan", "seconds": sec, "rss_baseline": base, "peak": peak, "mmd2": res.mmd2,
                "p_value": res.p_value, "bandwidth": res.bandwidth, "reps": args.permutations}
    if args.method == "naive":
        from pgan_cli.metrics import mmd

        sigma = mmd.median_bandwidth(x, y)
        (obs, p, per_perm, _), sec, base, peak = timed(lambda: naive(x, y, sigma, args.peer_reps))
        setup = sec - per_perm * args.peer_reps
        return {"method": "naive", "seconds": sec, "seconds_extrapolated": setup + per_perm * args.permutations,
                "per_permutation": per_perm, "rss_baseline": base, "peak": peak, "mmd2": float(obs),
                "p_value": p, "reps": args.peer_reps}
    from hyppo.ksample import MMD

    MMD(compute_kernel="gaussian").test(x[:50], y[:50], reps=2, auto=False, random_state=0)  # numba warm-up
    _, t_small, base, _ = timed(lambda: MMD(compute_kernel="gaussian").test(x, y, reps=2, auto=False,
                                                                            random_state=0))
    out, sec, _, peak = timed(lambda: MMD(compute_kernel="gaussian").test(x, y, reps=args.peer_reps, auto=False,
                                                                          random_state=0))
    per_perm = (sec - t_small) / (args.peer_reps - 2)
    one = sec - per_perm * args.peer_reps
    return {"method": "hyppo", "seconds": sec, "seconds_extrapolated": one + per_perm * args.permutations,
            "per_permutation": per_perm, "rss_baseline": base, "peak": peak, "statistic": float(out[0]),
            "p_value": float(out[1]), "reps": args.peer_reps}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", action="store_true")
    ap.add_argument("--method", default="pgan")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--peer-reps", type=int, default=20)
    ap.add_argument("--scale", action="store_true")
    ap.add_argument("--scale-only", action="store_true")
    ap.add_argument("--scale-n", type=int, default=50000)
    ap.add_argument("--scale-permutations", type=int, default=20)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(case(args)))
        return
    print(f"machine: {machine()}", file=sys.stderr)
    common = ["--n", str(args.n), "--dim", str(args.dim), "--permutations", str(args.permutations),
              "--peer-reps", str(args.peer_reps)]
    results = {}
    for method in () if args.scale_only else ("pgan", "naive", "hyppo"):
        print(f"running {method} ...", file=sys.stderr)
        results[method] = run_case(__file__, "--method", method, *common)
        print(json.dumps(results[method]), file=sys.stderr)
    gib = 2 ** 30
    if not args.scale_only:
        report(args, results, gib)
    if args.scale or args.scale_only:
        n2 = 2 * args.scale_n
        print(f"running pgan at {args.scale_n} + {args.scale_n} points, {args.scale_permutations} permutations ...",
              file=sys.stderr)
        big = run_case(__file__, "--method", "pgan", "--n", str(args.scale_n), "--dim", str(args.dim),
                       "--permutations", str(args.scale_permutations))
        print(f"\nScale: pgan at {args.scale_n:,} + {args.scale_n:,} points, {args.dim}-d, "
              f"{args.scale_permutations} permutations: {big['seconds']:.0f} s, peak RSS {big['peak'] / gib:.2f} GiB "
              f"(added {(big['peak'] - big['rss_baseline']) / gib:.2f} GiB; a dense float64 (N+M)² matrix "
              f"would be {n2 ** 2 * 8 / gib:.0f} GiB); MMD² = {big['mmd2']:.3e}, p = {big['p_value']:.3f}")


def report(args, results, gib) -> None:
    pg = results["pgan"]
    print(f"\nMMD permutation test, {args.n} x {args.n} points, {args.dim}-d, RBF median bandwidth, "
          f"{args.permutations} permutations\n")
    print(f"| method | permutations run | time (s, measured) | time for {args.permutations} perms (s) | peak RSS (GiB) | added by method (GiB) | time ratio vs pgan | memory ratio vs pgan (added) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        t_full = r.get("seconds_extrapolated", r["seconds"])
        inc = (r["peak"] - r["rss_baseline"]) / gib
        pinc = (pg["peak"] - pg["rss_baseline"]) / gib
        print(f"| {name} | {r['reps']} | {r['seconds']:.1f} | {t_full:.1f}{' (extrapolated)' if name != 'pgan' else ''} | "
              f"{r['peak'] / gib:.2f} | {inc:.2f} | {t_full / pg['seconds']:.1f}x | {inc / max(pinc, 1e-9):.1f}x |")
    print(f"\npgan MMD² = {pg['mmd2']:.6e}, naive MMD² = {results['naive']['mmd2']:.6e} "
          f"(relative difference {abs(pg['mmd2'] - results['naive']['mmd2']) / abs(results['naive']['mmd2']):.1e}); "
          f"p-values: pgan {pg['p_value']:.4f} ({args.permutations} perms), naive {results['naive']['p_value']:.3f} "
          f"({args.peer_reps} perms), hyppo {results['hyppo']['p_value']:.3f} ({args.peer_reps} perms)")


if __name__ == "__main__":
    main()
