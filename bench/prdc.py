"""Benchmark: PRDC (Naeem et al. 2020), pgan vs the authors' ``prdc`` package.

Default case: 20,000 real x 20,000 synthetic points, 64 dimensions, k = 5. Each
method runs in its own subprocess (time and peak RSS). The ``prdc`` package builds three dense
N x N distance matrices with scikit-learn; pgan gets radii from FAISS kNN and compares in
float64 row blocks.

Inputs are float32 (the package's documented dtype; scikit-learn then returns float32
distances, pgan compares in float64), so a few comparisons that sit within float32 rounding of
a radius can differ: the table reports the absolute differences. A second, smaller case
(``--exact-n``, default 3,000) feeds both float64 inputs and must agree to 1e-6.

Usage: python bench/prdc.py [--n 20000] [--dim 64] [--k 5] [--exact-n 3000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys

import numpy as np

from _measure import machine, run_case, timed

# this file is named prdc.py: keep its folder off the path so `import prdc` finds the package
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]


def data(n: int, dim: int, dtype: str):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(n, dim))
    synth = rng.normal(size=(n, dim)) * 1.1 + 0.05
    return real.astype(dtype), synth.astype(dtype)


def case(args) -> dict:
    real, synth = data(args.n, args.dim, args.dtype)
    if args.method == "pgan":
        import faiss  # noqa: F401  (imported before timing)

        from pgan_cli.metrics.prdc import prdc

        prdc(real[:100], synth[:100], args.k)  # warm-up
        out, sec, base, peak = timed(lambda: prdc(real, synth, args.k))
    else:
        from prdc import compute_prdc

        with contextlib.redirect_stdout(io.StringIO()):  # the package prints sizes
            out, sec, base, peak = timed(lambda: compute_prdc(real, synth, args.k))
        out = {k: float(v) for k, v in out.items()}
    return {"method": args.method, "seconds": sec, "rss_baseline": base, "peak": peak, **out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", action="store_true")
    ap.add_argument("--method", default="pgan")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--exact-n", type=int, default=3000)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(case(args)))
        return
    print(f"machine: {machine()}", file=sys.stderr)
    gib = 2 ** 30
    keys = ("precision", "recall", "density", "coverage")
    for n, dtype in ((args.n, "float32"), (args.exact_n, "float64")):
        common = ["--n", str(n), "--dim", str(args.dim), "--k", str(args.k), "--dtype", dtype]
        res = {}
        for method in ("pgan", "prdc"):
            print(f"running {method} at {n} ({dtype}) ...", file=sys.stderr)
            res[method] = run_case(__file__, "--method", method, *common)
            print(json.dumps(res[method]), file=sys.stderr)
        pg, pk = res["pgan"], res["prdc"]
        print(f"\nPRDC, {n} real x {n} synthetic, {args.dim}-d, k = {args.k}, {dtype} inputs\n")
        print("| method | time (s) | peak RSS (GiB) | added by method (GiB) | " + " | ".join(keys) + " |")
        print("|---|---|---|---|" + "---|" * len(keys))
        for name, r in res.items():
            print(f"| {name} | {r['seconds']:.1f} | {r['peak'] / gib:.2f} | {(r['peak'] - r['rss_baseline']) / gib:.2f} | "
                  + " | ".join(f"{r[k]:.6f}" for k in keys) + " |")
        inc = lambda r: (r["peak"] - r["rss_baseline"]) / gib  # noqa: E731
        diff = max(abs(pg[k] - pk[k]) for k in keys)
        print(f"\nratios (prdc / pgan): time {pk['seconds'] / pg['seconds']:.1f}x, peak RSS "
              f"{pk['peak'] / pg['peak']:.1f}x, memory added {inc(pk) / max(inc(pg), 1e-9):.1f}x; "
              f"largest |difference| of the four values: {diff:.2e}")


if __name__ == "__main__":
    main()
