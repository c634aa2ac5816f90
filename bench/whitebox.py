"""White-box attacks (logan, gan-leaks) on real `pgan train` checkpoints, and the worked example.

Runs the real command line end to end on scikit-learn's digits (8x8):

1. ``pgan data digits`` -> ``pgan data split`` (members / holdout / reference, seed 0);
2. overfitted: ``pgan train`` (dcgan) on a 100-member subset for many steps; attacked with
   its 100 members against 100 holdout records;
3. regularised: ``pgan train --arch wgan-gp`` on all members for fewer steps; attacked with
   100 of its members against the same 100 holdout records;
4. worked example (docs/attacks.md): the wgan-gp generator is sampled, the sets are embedded
   with PCA (32-d, fitted on the reference set) and attacked black-box on the embeddings (all
   methods, domias included) and white-box on pixels.

    python bench/whitebox.py --work /tmp/wb --steps-overfit 3000 --steps-regular 1500
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def pgan(*args, cwd: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "pgan_cli", *map(str, args)], cwd=cwd, env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"pgan {' '.join(map(str, args))} failed:\n{p.stderr[-3000:]}")
    print(f"[{time.perf_counter() - t:7.1f} s] pgan {' '.join(map(str, args))}", file=sys.stderr, flush=True)
    return p.stdout


def subset(src: Path, dst: Path, n: int, seed: int) -> None:
    from pgan_cli.dataset import read_dataset, write_dataset
    from pgan_cli.provenance import make_provenance

    b = read_dataset(src)
    idx = np.sort(np.random.default_rng(seed).choice(b.n, n, replace=False))
    write_dataset(dst, b.samples[idx], labels=b.labels[idx], class_names=b.class_names,
                  provenance=make_provenance([src], seed=seed, subset=n), extra={"source_indices": idx})


def short(attacks: dict) -> dict:
    return {k: {"auc": round(v["auc"], 3), "ci": [round(c, 3) for c in v["auc_ci"]],
                "tpr_at_1pct": round(v["tpr_at_fpr"]["0.01"], 3), "eps_lb": round(v["epsilon_lower_bound"], 2)}
            for k, v in attacks.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/pgan-whitebox")
    ap.add_argument("--steps-overfit", type=int, default=3000)
    ap.add_argument("--steps-regular", type=int, default=1500)
    ap.add_argument("--out", default=None)
    ap.add_argument("--reuse", action="store_true",
                    help="reuse checkpoints already in --work (e.g. one saved mid-run by --checkpoint-every)")
    args = ap.parse_args()
    w = Path(args.work)
    w.mkdir(parents=True, exist_ok=True)
    res = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()}}
    t0 = time.perf_counter()
    pgan("data", "digits", "-o", "digits.h5", "-q", cwd=w)
    pgan("data", "split", "digits.h5", "--out-dir", "splits", "--seed", "0", "-q", cwd=w)
    subset(w / "splits/train.h5", w / "m100.h5", 100, 1)
    subset(w / "splits/holdout.h5", w / "h100.h5", 100, 2)
    # 2. overfitted generator: 100 members, many steps
    t = time.perf_counter()
    if not (args.reuse and (w / "overfit.pt").exists()):
        pgan("train", "m100.h5", "--arch", "dcgan", "--steps", args.steps_overfit, "--batch-size", "50",
             "--seed", "0", "-o", "overfit.pt", "-q", cwd=w)
    res["overfit_train_seconds"] = time.perf_counter() - t
    from pgan_cli.gan.checkpoint import read_checkpoint_file

    res["overfit_progress"] = read_checkpoint_file(w / "overfit.pt")["progress"]
    pgan("sample", "overfit.pt", "-n", "1000", "--seed", "1", "-o", "s_overfit.h5", "-q", cwd=w)
    out = json.loads(pgan("attack", "--members", "m100.h5", "--holdout", "h100.h5", "--synthetic", "s_overfit.h5",
                          "--generator", "overfit.pt", "--methods", "logan,gan-leaks,dcr", "--json", "--device", "cpu",
                          "-q", cwd=w))
    res["overfit"] = {"members": 100, "steps": res["overfit_progress"]["step"], "attacks": short(out["attacks"])}
    print(json.dumps(res["overfit"]), flush=True)
    # 3. regularised generator: all members, wgan-gp
    t = time.perf_counter()
    if not (args.reuse and (w / "wgan.pt").exists()):
        pgan("train", "splits/train.h5", "--arch", "wgan-gp", "--steps", args.steps_regular, "--seed", "0",
             "-o", "wgan.pt", "-q", cwd=w)
    res["regular_train_seconds"] = time.perf_counter() - t
    res["regular_progress"] = read_checkpoint_file(w / "wgan.pt")["progress"]
    pgan("sample", "wgan.pt", "-n", "1000", "--seed", "1", "-o", "s_wgan.h5", "-q", cwd=w)
    from pgan_cli.dataset import read_dataset, write_dataset

    tr = read_dataset(w / "splits/train.h5")
    idx = np.sort(np.random.default_rng(3).choice(tr.n, 100, replace=False))
    write_dataset(w / "m100_of_full.h5", tr.samples[idx], labels=tr.labels[idx], class_names=tr.class_names,
                  provenance={"subset_of": "splits/train.h5"})
    out = json.loads(pgan("attack", "--members", "m100_of_full.h5", "--holdout", "h100.h5", "--synthetic",
                          "s_wgan.h5", "--generator", "wgan.pt", "--methods", "logan,gan-leaks,dcr", "--json",
                          "--device", "cpu", "-q", cwd=w))
    res["regular"] = {"members_trained_on": tr.n, "attacked": 100, "steps": res["regular_progress"]["step"],
                      "attacks": short(out["attacks"])}
    print(json.dumps(res["regular"]), flush=True)
    # 4. worked example: all members vs holdout, pixels (white-box + black-box) and PCA-32 (black-box)
    pix = json.loads(pgan("attack", "--members", "splits/train.h5", "--holdout", "splits/holdout.h5",
                          "--synthetic", "s_wgan.h5", "--reference", "splits/reference.h5", "--generator", "wgan.pt",
                          "--methods", "dcr,dcr-calibrated,pairwise,density,logan-blackbox,logan,gan-leaks",
                          "--scores", "scores_pixels.h5", "--json", "--device", "cpu", "-q", cwd=w))
    pgan("embed", "splits/train.h5", "splits/holdout.h5", "s_wgan.h5", "splits/reference.h5", "--method", "pca",
         "--dim", "32", "--fit-on", "splits/reference.h5", "--out-dir", "emb", "-q", cwd=w)
    emb = json.loads(pgan("attack", "--members", "emb/train.npy", "--holdout", "emb/holdout.npy", "--synthetic",
                          "emb/s_wgan.npy", "--reference", "emb/reference.npy", "--scores", "scores_pca32.h5",
                          "--json", "-q", cwd=w))
    keep = ("dcr_share", "authenticity", "nnaa_privacy_loss", "data_copying_ct", "near_copies")
    res["worked_example"] = {
        "pixels": {"attacks": short(pix["attacks"]), "distances": {k: pix["distances"][k] for k in keep},
                   "sets": {k: pix["sets"][k] for k in ("members", "non_members", "synthetic", "balanced_subsampling")}},
        "pca32": {"attacks": short(emb["attacks"]), "distances": {k: emb["distances"][k] for k in keep}},
    }
    print(json.dumps(res["worked_example"], indent=1), flush=True)
    res["seconds_total"] = time.perf_counter() - t0
    res["machine"]["load_average_at_end"] = os.getloadavg()
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
