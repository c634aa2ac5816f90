"""Shadow modelling (`pgan attack --methods shadow`) on the breast-cancer table and 8x8 digits.

For each data set (MLP dcgan generators; the shadows always train with the release's own recipe,
read from its checkpoint):

1. ``pgan data <set>`` -> ``pgan data split --fractions 0.2,0.2,0.6`` (members / holdout /
   reference: the shadow training sets are drawn from the reference, which must hold the
   release's training size);
2. **duplicated**: a release with the memorising recipe (``--memorising``: 1,000 steps at
   learning rate 1e-3) trained on ``--base`` members plus ``--targets`` other members each
   repeated 10 times; the attack's member targets are exactly those records, its non-member
   targets ``--targets`` holdout records. Run with shadows that hold a target once
   (``shadow_copies`` 1: the game of Stadler et al.) and ten times (``shadow_copies`` 10: "would
   a record present ten times be found");
3. **random, memorising**: the memorising recipe on the base members plus the same records once
   each (no duplicates); ``--random-targets`` targets at random from its members and from the
   holdout;
4. **random, regularised**: the same training set with the regularised recipe
   (``--regularised``: 300 steps at the default learning rate, EMA of G's weights).

Every attack runs :func:`pgan_cli.attacks.run_suite` (the library behind ``pgan attack``) on the
files; the shadows stay in ``--work`` (a re-run reuses them and reports their recorded cost). The
table gives the shadow attack's AUC over targets with its bootstrap 95% interval, TPR at FPR 0.1,
the shadows' own validation AUC, the AUC of the per-target and of the unconstrained classifier on
the same shadows, the dcr attack's AUC over the same targets (in the space of the shadow
features), and CPU minutes per target (all shadow training, sampling and features, divided by the
number of targets).

    python bench/shadow.py --work /tmp/pgan-shadow-bench --shadow-models 12 --targets 10 --random-targets 25
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _measure import machine  # noqa: E402


def pgan(*args, cwd: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "pgan_cli", *map(str, args)], cwd=cwd, env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"pgan {' '.join(map(str, args))} failed:\n{p.stderr[-3000:]}")
    print(f"[{time.perf_counter() - t:7.1f} s] pgan {' '.join(map(str, args))}", file=sys.stderr, flush=True)
    return p.stdout


def write(path: Path, x: np.ndarray, kind: str, note: str) -> None:
    from pgan_cli.dataset import write_dataset

    if not path.exists():
        write_dataset(path, x, provenance={"bench": "bench/shadow.py", "note": note}, kind=kind)


def attack(w: Path, gen: str, synth: str, members: np.ndarray, holdout: np.ndarray, reference: np.ndarray,
           args, copies: int, exposed: float, tag: str, targets: int) -> dict:
    from pgan_cli.attacks import run_suite
    from pgan_cli.attacks.evaluation import auc, bootstrap_auc_ci
    from pgan_cli.attacks.shadow import model_space, pairwise_distances
    from pgan_cli.gan.checkpoint import load_checkpoint
    from pgan_cli.dataset import read_dataset

    ck = load_checkpoint(w / gen)
    S = read_dataset(w / synth).samples
    S = S.reshape(len(S), -1)
    t = time.perf_counter()
    r = run_suite(members, holdout, S, reference, generator=ck, methods="shadow", distances=False, seed=args.seed,
                  params={"shadow": {"shadow_models": args.shadow_models, "targets": targets,
                                     "shadow_dir": w / f"shadows-{tag}", "shadow_copies": copies,
                                     "exposed_fraction": exposed}})
    a = r.json["attacks"]["shadow"]
    p = a["params"]
    truth = np.array([t_["member"] for t_ in a["targets"]])
    # dcr over the same targets, in the space the shadow features use (standardised columns for
    # vectors): minus the distance to the closest released record
    space = model_space(ck)
    rows = np.stack([(members if t_["source"] == "members" else holdout)[t_["index"]] for t_ in a["targets"]])
    dcr = -pairwise_distances(space(rows), space(S)).min(1)
    # the same shadows (reused from the work folder) under the other classifiers of the design discussion
    variants = {}
    for label, extra in (("per_target", {"classifier": "per-target"}), ("unconstrained", {"monotone": False})):
        rv = run_suite(members, holdout, S, reference, generator=ck, methods="shadow", distances=False, seed=args.seed,
                       n_boot=0, params={"shadow": {"shadow_models": args.shadow_models, "targets": targets,
                                                    "shadow_dir": w / f"shadows-{tag}", "shadow_copies": copies,
                                                    "exposed_fraction": exposed, **extra}})
        assert rv.json["attacks"]["shadow"]["params"]["shadows_trained"] == 0
        variants[label] = rv.json["attacks"]["shadow"]["auc"]
    return {"auc": a["auc"], "auc_ci": a["auc_ci"], "tpr_at_fpr_0.1": a["tpr_at_fpr"]["0.1"],
            "auc_per_target_classifier": variants["per_target"], "auc_unconstrained": variants["unconstrained"],
            "validation_auc": p["shadow_validation_auc"], "dcr_auc": auc(dcr, truth),
            "dcr_auc_ci": list(bootstrap_auc_ci(dcr, truth, seed=args.seed)),
            "targets": len(truth), "shadow_models": p["shadow_models"], "trained": p["shadows_trained"],
            "reused": p["shadows_reused"], "cpu_min_per_target": p["cpu_minutes_per_target"],
            "cpu_seconds": p["cpu_seconds"], "wall_seconds_this_run": round(time.perf_counter() - t, 1),
            "training_size": p["training_size"], "recipe": {k: p["recipe"][k] for k in
                                                            ("arch", "net", "steps", "width", "batch_size")},
            "probabilities": [[t_["member"], round(t_["membership_probability"], 3)] for t_ in a["targets"]]}


def one_dataset(name: str, args, out: dict) -> None:
    from pgan_cli.dataset import read_dataset

    w = Path(args.work) / name
    w.mkdir(parents=True, exist_ok=True)
    if not (w / "data.h5").exists():
        pgan("data", name, "-o", "data.h5", "-q", cwd=w)
    if not (w / "splits/train.h5").exists():
        pgan("data", "split", "data.h5", "--out-dir", "splits", "--fractions", "0.2,0.2,0.6", "--seed", "0", "-q",
             cwd=w)
    tr, ho, ref = (read_dataset(w / f"splits/{s}.h5") for s in ("train", "holdout", "reference"))
    kind = tr.kind
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(tr.n)
    n_base = min(args.base, tr.n - args.targets)
    base, dup = tr.samples[order[:n_base]], tr.samples[order[n_base:n_base + args.targets]]
    with_dups = np.concatenate([base, np.repeat(dup, 10, axis=0)])
    once = np.concatenate([base, dup])
    write(w / "train_dup.h5", with_dups[rng.permutation(len(with_dups))], kind, "base + targets x 10")
    write(w / "train_once.h5", once[rng.permutation(len(once))], kind, "base + targets once")
    common = ["--arch", "dcgan", "--net", "mlp", "--seed", "0", "--device", "cpu", "-q"]
    for tag, data, recipe in (("dup", "train_dup.h5", args.memorising), ("once", "train_once.h5", args.memorising),
                              ("regular", "train_once.h5", args.regularised)):
        if not (w / f"gen_{tag}.pt").exists():
            pgan("train", data, *common, *recipe.split(), "-o", f"gen_{tag}.pt", cwd=w)
        if not (w / f"synth_{tag}.h5").exists():
            pgan("sample", f"gen_{tag}.pt", "-n", str(args.n_synthetic), "--seed", "1", "-o", f"synth_{tag}.h5", "-q",
                 cwd=w)
    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    R = flat(ref.samples)
    hold = flat(ho.samples)
    rows = {}
    for copies in (1, 10):
        rows[f"duplicated x10, shadows hold a target x{copies}"] = attack(
            w, "gen_dup.pt", "synth_dup.h5", flat(dup), hold, R, args, copies, 0.5, f"dup-c{copies}", args.targets)
        print(json.dumps({name: rows}, indent=1), flush=True)
    members_once = flat(once)
    rows["memorising, no duplicates, random targets"] = attack(w, "gen_once.pt", "synth_once.h5", members_once, hold,
                                                               R, args, 1, 0.0, "once", args.random_targets)
    print(json.dumps({name: rows}, indent=1), flush=True)
    rows["regularised, no duplicates, random targets"] = attack(w, "gen_regular.pt", "synth_regular.h5", members_once,
                                                                hold, R, args, 1, 0.0, "regular", args.random_targets)
    print(json.dumps({name: rows}, indent=1), flush=True)
    out[name] = {"members": {"base": n_base, "targets": args.targets, "training_size_dup": len(with_dups),
                             "training_size_once": len(once)}, "holdout": ho.n, "reference": ref.n, "rows": rows}


def table(out: dict) -> str:
    lines = ["| data | release, targets | targets | shadow AUC [95% CI] | TPR@FPR 0.1 | shadow validation AUC | "
             "AUC per-target / unconstrained classifier | dcr AUC, same targets | CPU min / target |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, d in out.items():
        if not isinstance(d, dict) or "rows" not in d:
            continue
        for scen, r in d["rows"].items():
            ci = r["auc_ci"]
            val = "n/a" if r["validation_auc"] is None else f"{r['validation_auc']:.3f}"
            lines.append(f"| {name} | {scen} | {r['targets'] // 2} + {r['targets'] // 2} | {r['auc']:.3f} "
                         f"[{ci[0]:.3f}, {ci[1]:.3f}] | {r['tpr_at_fpr_0.1']:.2f} | {val} | "
                         f"{r['auc_per_target_classifier']:.3f} / {r['auc_unconstrained']:.3f} | "
                         f"{r['dcr_auc']:.3f} [{r['dcr_auc_ci'][0]:.3f}, {r['dcr_auc_ci'][1]:.3f}] | "
                         f"{r['cpu_min_per_target']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/pgan-shadow-bench")
    ap.add_argument("--datasets", default="breast-cancer,digits")
    ap.add_argument("--shadow-models", type=int, default=12)
    ap.add_argument("--targets", type=int, default=10, help="targets per side (duplicated members, holdout)")
    ap.add_argument("--random-targets", type=int, default=25, help="targets per side of the random scenarios")
    ap.add_argument("--base", type=int, default=100, help="members trained on besides the targets")
    ap.add_argument("--memorising", default="--steps 1000 --lr-g 1e-3 --lr-d 1e-3",
                    help="pgan train options of the memorising release")
    ap.add_argument("--regularised", default="--steps 300 --ema", help="pgan train options of the regularised release")
    ap.add_argument("--n-synthetic", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    out: dict = {"machine": machine(), "args": vars(args)}
    t0 = time.perf_counter()
    for name in args.datasets.split(","):
        one_dataset(name, args, out)
    out["seconds_total"] = round(time.perf_counter() - t0, 1)
    out["load_average_at_end"] = os.getloadavg()
    print(f"\nMachine: {out['machine']}; load average at the end {out['load_average_at_end'][0]:.1f}; "
          f"{out['seconds_total'] / 60:.1f} min in all\n")
    print(table(out))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
