"""Benchmark: TSTR utility on scikit-learn's digits with a synthetic set from `pgan sample`.

Pipeline (all through the CLI, seeded):
  pgan data digits -o digits.h5
  pgan data split digits.h5 --out-dir splits --seed 0          (train 50% / holdout 25% / reference 25%)
  pgan train splits/train.h5 --arch dcgan --conditional --epochs E --seed 0 -o gen.pt
  pgan sample gen.pt -n N_train --classes-from splits/train.h5 --seed 1 -o synthetic.h5
  pgan utility --synthetic synthetic.h5 --members splits/train.h5 --holdout splits/holdout.h5 \
               --classifier C --kmeans --json                 (C = logreg, knn, cnn)

Side by side, the same utility runs on a generator-free stand-in (members + N(0, 0.5) noise,
clipped to [-1, 1]; the "copying" generator of docs/attacks.md), so the GAN's TSTR can be read
against TRTR (the ceiling) and against a crude copy-and-blur release.

Usage: python bench/utility.py [--epochs 60] [--workdir DIR]
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

import numpy as np

from _measure import REPO, machine


def pgan(*args) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.run([sys.executable, "-m", "pgan_cli", *map(str, args)], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"pgan {' '.join(map(str, args))} failed: {p.stderr[-2000:]}")
    return p.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-utility-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}; work dir {work}", file=sys.stderr)
    pgan("data", "digits", "-o", work / "digits.h5", "-q")
    pgan("data", "split", work / "digits.h5", "--out-dir", work / "splits", "--seed", "0", "-q")
    train, holdout = work / "splits/train.h5", work / "splits/holdout.h5"
    t0 = time.perf_counter()
    pgan("train", train, "--arch", "dcgan", "--conditional", "--epochs", args.epochs, "--seed", "0",
         "-o", work / "gen.pt", "-q")
    t_train = time.perf_counter() - t0
    n_train = json.loads(pgan("data", "info", train, "--json"))["n"]
    pgan("sample", work / "gen.pt", "-n", n_train, "--classes-from", train, "--seed", "1",
         "-o", work / "synthetic.h5", "-q")
    # the generator-free stand-in: members + N(0, 0.5) noise
    from pgan_cli.dataset import read_dataset, write_dataset
    from pgan_cli.provenance import make_provenance

    b = read_dataset(train)
    noisy = np.clip(b.samples + np.random.default_rng(0).normal(0, 0.5, b.samples.shape), -1, 1).astype(np.float32)
    write_dataset(work / "standin.h5", noisy, labels=b.labels, class_names=b.class_names,
                  provenance=make_provenance([train], seed=0, standin="members + N(0, 0.5)"))
    rows = []
    for synth_name in ("synthetic", "standin"):
        for clf in ("logreg", "knn", "cnn"):
            t0 = time.perf_counter()
            out = json.loads(pgan("utility", "--synthetic", work / f"{synth_name}.h5", "--members", train,
                                  "--holdout", holdout, "--classifier", clf, "--kmeans", "--json", "--seed", "0"))
            rows.append((synth_name, clf, out, time.perf_counter() - t0))
            print(synth_name, clf, json.dumps({k: out[k] for k in ("tstr", "trtr", "roc_test")})[:300], file=sys.stderr)
    print(f"\nTSTR on digits (8x8), train {n_train} / test {rows[0][2]['n_test']} (holdout), conditional DCGAN "
          f"{args.epochs} epochs (training took {t_train:.0f} s), synthetic set of {n_train} from `pgan sample`\n")
    print("| synthetic set | classifier | TSTR acc | TSTR bal. acc | TSTR AUC | TRTR acc | TRTR bal. acc | TRTR AUC | "
          "TSTR/TRTR bal. acc | Venkatraman p | k-means acc (synth / real) | time (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for synth_name, clf, o, sec in rows:
        t, r = o["tstr"], o["trtr"]
        label = "pgan sample (DCGAN)" if synth_name == "synthetic" else "stand-in: members + N(0, 0.5)"
        print(f"| {label} | {clf} | {t['accuracy']:.3f} | {t['balanced_accuracy']:.3f} | {t['auc']:.3f} | "
              f"{r['accuracy']:.3f} | {r['balanced_accuracy']:.3f} | {r['auc']:.3f} | "
              f"{t['balanced_accuracy'] / r['balanced_accuracy']:.3f} | {o['roc_test']['p_value']:.4f} | "
              f"{o['kmeans']['synthetic']['accuracy']:.3f} / {o['kmeans']['real']['accuracy']:.3f} | {sec:.0f} |")


if __name__ == "__main__":
    main()
