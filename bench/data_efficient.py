"""Data-efficient training on the README's main job: today's trainer against the new defaults, side
by side on the same data and the same CPU budget.

The main job: scikit-learn digits at 16x16, members/holdout/reference split (seed 0, 899
members), a class-conditional generator, a synthetic set as large as the members, and the
audit (pixel space, default preset). Each candidate trains for as many generator steps as fit
the budget (its cost per step measured on a short run first), then the same audit scores it:

- utility: TSTR / TRTR balanced accuracy (bar >= 0.95);
- fidelity: PRDC coverage (>= 0.7), beta-recall (>= 0.3), C2ST AUC (<= 0.85);
- privacy: the strongest black-box attack's AUC (<= 0.6), the default preset's verdict.

Costs are CPU seconds of the training process with one torch thread (robust to other jobs on a
shared machine); the default budget is what today's 1,200 steps cost in the same run.

Run: PYTHONPATH=. python bench/data_efficient.py [--budget CPU_S] [--candidates today,sngan-diffaug,...]
     [--json out.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

# name -> pgan train options (library keywords); "today" is the trainer of the README before
# issue 15: WGAN-GP, AC-GAN weight 3, no augmentation, no EMA, 1,200 steps
CANDIDATES = {
    "today": dict(arch="wgan-gp", class_loss_weight=3.0, augment="none", ema=False),
    "defaults": dict(),
    "sngan-diffaug": dict(arch="sngan", augment="diffaug"),
    "sngan-ada": dict(arch="sngan", augment="ada"),
    "sngan-none": dict(arch="sngan", augment="none"),
    "dcgan-diffaug": dict(arch="dcgan", augment="diffaug"),
    "sngan-diffaug-r1": dict(arch="sngan", augment="diffaug", r1=0.1),
    "sngan-diffaug-clw3": dict(arch="sngan", augment="diffaug", class_loss_weight=3.0),
    "wgan-gp-ema": dict(arch="wgan-gp", class_loss_weight=3.0, augment="none"),
    "wgan-gp-diffaug-ema": dict(arch="wgan-gp", class_loss_weight=3.0, augment="diffaug"),
    "dcgan-ada": dict(arch="dcgan", augment="ada"),
}
TODAY_STEPS = 1200


def prepare(folder: Path, size: int = 16) -> dict[str, Path]:
    from pgan_cli.dataset import write_dataset
    from pgan_cli.datasets import digits
    from pgan_cli.split import split_file

    real = folder / "real.h5"
    b = digits(size)
    write_dataset(real, b.samples, labels=b.labels, class_names=b.class_names, attrs=b.attrs, provenance={})
    out = folder / "splits"
    split_file(real, out, seed=0)
    return {name: out / f"{name}.h5" for name in ("train", "holdout", "reference")}


def train(sets: dict[str, Path], folder: Path, name: str, options: dict, steps: int, seed: int = 0) -> dict:
    """Train one candidate; its cost is CPU time of this process (one torch thread), which other
    jobs on a shared machine slow down far less than wall time."""
    from pgan_cli.gan.training.run import train_file

    ck = folder / f"{name}.pt"
    t0, c0 = time.perf_counter(), time.process_time()
    train_file(sets["train"], ck, conditional=True, steps=steps, seed=seed, progress=False,
               log_path=folder / f"{name}.jsonl", log_every=25, **options)
    return {"checkpoint": ck, "log": folder / f"{name}.jsonl", "train_s": time.perf_counter() - t0,
            "train_cpu_s": time.process_time() - c0}


def cost_per_step(sets, folder: Path, name: str, options: dict) -> float:
    """CPU seconds per generator step, from two short runs (the difference removes start-up)."""
    times = []
    for steps in (10, 40):
        times.append(train(sets, folder / "calib", f"{name}-{steps}", options, steps)["train_cpu_s"])
    return max(1e-3, (times[1] - times[0]) / 30)


def evaluate(sets, folder: Path, name: str, trained: dict, seed: int = 0) -> dict:
    from pgan_cli.audit import run_audit
    from pgan_cli.dataset import read_dataset
    from pgan_cli.gan.sampling import sample_file

    synth = folder / f"{name}-synthetic.h5"
    n = read_dataset(sets["train"]).n
    sample_file(trained["checkpoint"], synth, n=n, seed=1, classes_from=sets["train"])
    out = folder / f"{name}-audit"
    run_audit(out, members=sets["train"], holdout=sets["holdout"], reference=sets["reference"],
              synthetic=synth, embeddings=["pixel"], preset="default", seed=seed)
    s = json.loads((out / "summary.json").read_text())
    fid, util, priv = s.get("fidelity", {}), s.get("utility", {}), s.get("privacy", {})
    black = [a["auc"] for a in (priv.get("attacks") or {}).values()
             if isinstance(a, dict) and not a.get("white_box") and not a.get("targeted") and a.get("auc") is not None]
    tstr = (util.get("tstr") or {}).get("balanced_accuracy")
    trtr = (util.get("trtr") or {}).get("balanced_accuracy")
    return {"tstr_over_trtr": tstr / trtr if tstr and trtr else None, "tstr": tstr, "trtr": trtr,
            "coverage": fid.get("coverage"), "beta_recall": fid.get("beta_recall"),
            "c2st_auc": fid.get("c2st_auc"), "max_blackbox_auc": max(black) if black else None,
            "verdict": s.get("verdict")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=None,  # today's cost, e.g. 394 CPU s measured on this VM
                    help="CPU seconds of training per candidate (default: what today's 1,200 steps cost)")
    ap.add_argument("--candidates", default="today,defaults", help="comma-separated: " + ", ".join(CANDIDATES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="append one JSON line per candidate")
    ap.add_argument("--keep", type=Path, help="keep the work folder here")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "calib").mkdir(exist_ok=True)
        sets = prepare(folder)
        print("| candidate | steps | train CPU s | TSTR/TRTR | coverage | beta-recall | C2ST AUC | max black-box AUC | verdict |")
        print("|---|---|---|---|---|---|---|---|---|")
        budget = args.budget
        for name in args.candidates.split(","):
            options = CANDIDATES[name]
            if name == "today":
                steps = TODAY_STEPS
            else:
                if budget is None:
                    budget = TODAY_STEPS * cost_per_step(sets, folder, "today", CANDIDATES["today"])
                steps = max(50, int(budget / cost_per_step(sets, folder, name, options)))
            trained = train(sets, folder, name, options, steps, args.seed)
            if name == "today" and budget is None:
                budget = trained["train_cpu_s"]
            row = {"candidate": name, "options": options, "steps": steps, "train_s": round(trained["train_s"], 1),
                   "train_cpu_s": round(trained["train_cpu_s"], 1),
                   **evaluate(sets, folder, name, trained, args.seed), "load": os.getloadavg()[0]}
            f = lambda v: "n/a" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))  # noqa: E731
            print(f"| {name} | {steps} | {row['train_cpu_s']} | {f(row['tstr_over_trtr'])} | {f(row['coverage'])} | "
                  f"{f(row['beta_recall'])} | {f(row['c2st_auc'])} | {f(row['max_blackbox_auc'])} | {row['verdict']} |",
                  flush=True)
            if args.json:
                with open(args.json, "a") as fh:
                    fh.write(json.dumps(row, default=str) + "\n")


if __name__ == "__main__":
    main()
