"""Benchmark: how much class structure survives local DP? k-means against IIC (`pgan cluster`) on
scikit-learn's 8x8 digits, raw and privatised by `pgan privatize` at several epsilons.

Pipeline (all through the CLI, seeded):
  pgan data digits -o digits.h5                                               (1,797 8x8 digits)
  pgan privatize digits.h5 -m gaussian --epsilon E --keep-raw-labels --seed 0 -o gauss_E.h5
  pgan privatize digits.h5 -m randomized-response --rr-p 0.88 --rr-q 0.12 --keep-raw-labels ...
  pgan cluster X.h5 --method kmeans --k 10 --seed 0 --json
  pgan cluster X.h5 --method iic --k 10 --epochs EPOCHS --seed 0 --json

`--keep-raw-labels` keeps the true digits beside the privatised pixels only to score the
clusters (Hungarian accuracy, NMI, ARI); the clustering never sees them. Each `pgan cluster` is a
fresh process; the time column is its wall time (start-up and data loading included).

``--tune`` instead runs IIC on the raw digits with the defaults under two more seeds and with one
setting changed at a time (no overclustering head; 64 rows x 4 repeats per batch).

Usage: python bench/cluster.py [--epochs 30] [--eps 10,50,150,500] [--workdir DIR] [--tune]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measure import REPO, machine


def pgan(*args) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.run([sys.executable, "-m", "pgan_cli", *map(str, args)], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"pgan {' '.join(map(str, args))} failed: {p.stderr[-2000:]}")
    return p.stdout


def cluster(path: Path, method: str, seed: int, *extra) -> tuple[dict, float]:
    t0 = time.perf_counter()
    out = json.loads(pgan("cluster", path, "--method", method, "--k", "10", "--seed", seed, "--json", "-q",
                          "-o", path.with_name(f"{path.stem}.{method}.clusters.h5"), *extra))
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--eps", default="10,50,150,500", help="Gaussian-mechanism epsilons (per record)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--tune", action="store_true")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}; work dir {work}", file=sys.stderr)
    digits = work / "digits.h5"
    pgan("data", "digits", "-o", digits, "-q")
    if args.tune:
        tune(digits, args.seed)
        return
    sets = [("raw digits", "-", digits)]
    for eps in [e.strip() for e in args.eps.split(",") if e.strip()]:
        path = work / f"gauss_{eps}.h5"
        pgan("privatize", digits, "-m", "gaussian", "--epsilon", eps, "--keep-raw-labels", "--seed", args.seed,
             "-o", path, "-q")
        sets.append(("gaussian", eps, path))
    rr = work / "rr_seed.h5"  # the DP-MNIST seed's p = .88, q = .12: ln(.88/.12) per pixel, 64 pixels
    info = json.loads(pgan("privatize", digits, "-m", "randomized-response", "--rr-p", "0.88", "--rr-q", "0.12",
                           "--keep-raw-labels", "--seed", args.seed, "-o", rr, "--json", "-q"))
    sets.append(("randomized-response (p .88, q .12)", f"{info['epsilon']:.1f}", rr))
    rows = []
    for name, eps, path in sets:
        for method, extra in (("kmeans", ()), ("iic", ("--epochs", args.epochs))):
            out, sec = cluster(path, method, args.seed, *extra)
            rows.append((name, eps, method, out, sec))
            print(name, eps, method, {k: round(out[k], 3) for k in ("accuracy", "nmi", "ari")}, f"{sec:.0f} s",
                  file=sys.stderr, flush=True)
    print(f"\n`pgan cluster` on the 1,797 8x8 digits, k = 10, seed {args.seed}; IIC {args.epochs} epochs "
          f"(defaults otherwise); epsilon per record (all 64 pixels), Gaussian: analytic calibration, "
          f"delta 1e-5, no clipping\n")
    print("| data | epsilon | method | Hungarian accuracy | NMI | ARI | wall time (s) |")
    print("|---|---|---|---|---|---|---|")
    for name, eps, method, o, sec in rows:
        print(f"| {name} | {eps} | {method} | {o['accuracy']:.3f} | {o['nmi']:.3f} | {o['ari']:.3f} | {sec:.0f} |")


def tune(digits: Path, seed: int) -> None:
    """IIC on the raw digits: the defaults under two more seeds, and one change at a time."""
    settings = [("defaults, seed 1", 1, ()), ("defaults, seed 2", 2, ()),
                ("no overclustering head (--overcluster 0)", seed, ("--overcluster", "0")),
                ("batch 64 x 4 repeats", seed, ("--batch-size", "64", "--repeats", "4"))]
    print("| IIC on raw digits, 30 epochs | seed | Hungarian accuracy | NMI | ARI | chosen sub-head loss | wall time (s) |")
    print("|---|---|---|---|---|---|---|")
    for name, s, extra in settings:
        out, sec = cluster(digits, "iic", s, *extra)
        print(f"| {name} | {s} | {out['accuracy']:.3f} | {out['nmi']:.3f} | {out['ari']:.3f} | "
              f"{out['iic']['loss']:.3f} | {sec:.0f} |", flush=True)


if __name__ == "__main__":
    main()
