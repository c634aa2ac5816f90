"""Differential-privacy benchmarks (results in BENCHMARKS.md, "Differential privacy").

    python bench/dp.py ldp            # local DP on digits: utility vs epsilon (peer: raw data)
    python bench/dp.py accountant     # pgan's epsilon vs Opacus PRV / RDP computed directly
    python bench/dp.py overhead       # DP-SGD vs plain training throughput (same net, same data)
    python bench/dp.py memorization   # ~100 members, many epochs: attack AUC at eps 1/4/10 vs no DP
    python bench/dp.py memorization-defaults  # the same without DP: the trainer before issue 15 vs the defaults
    python bench/dp.py all

Each prints a Markdown table; ``--json PATH`` also writes the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def machine() -> str:
    import torch

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}")


def table(rows: list[dict], cols: list[str]) -> str:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(f"{r.get(c):.4g}" if isinstance(r.get(c), float) else str(r.get(c)) for c in cols) + " |")
    return "\n".join(out)


# ---- local DP ------------------------------------------------------------------------------------
def bench_ldp() -> list[dict]:
    from pgan_cli.report.curve import digits_ldp_utility

    import math

    # 64 ln(.88/.12) = 127.5: the DP-MNIST seed's p = .88, q = .12 on 64 pixels (docs/dp.md)
    grids = {"gaussian": [1, 10, 50, 150, 500, 2000], "laplace": [1, 10, 50, 150, 500, 2000],
             "randomized-response": [1, 10, 50, 64 * math.log(0.88 / 0.12), 150, 500]}
    rows = []
    for mech, eps in grids.items():
        for r in digits_ldp_utility(mech, eps, seed=0):
            r["ratio_to_raw"] = r["accuracy"] / r["raw_accuracy"]
            rows.append(r)
    print(table(rows, ["mechanism", "epsilon", "accuracy", "raw_accuracy", "ratio_to_raw", "sigma", "scale", "p"]))
    return rows


# ---- accountant ------------------------------------------------------------------------------------
def bench_accountant() -> list[dict]:
    from opacus.accountants import PRVAccountant, RDPAccountant

    from pgan_cli.gan.training.dpsgd import compute_epsilon

    rows = []
    for sigma, q, steps, delta in [(0.9375, 64 / 898, 42, 1e-5), (12.03, 0.2, 250, 1e-5), (1.0, 0.01, 10000, 1e-5),
                                   (0.7, 0.05, 2000, 1e-6), (3.0, 0.3, 500, 1e-4)]:
        t = time.perf_counter()
        ours = compute_epsilon(sigma, q, steps, delta)
        t_ours = time.perf_counter() - t
        prv, rdp = PRVAccountant(), RDPAccountant()
        prv.history = rdp.history = [(sigma, q, steps)]
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            e_prv, e_rdp = prv.get_epsilon(delta), rdp.get_epsilon(delta)
        rows.append({"sigma": sigma, "q": q, "steps": steps, "delta": delta, "pgan": ours, "opacus_prv": e_prv,
                     "opacus_rdp": e_rdp, "pgan/prv": ours / e_prv, "pgan/rdp": ours / e_rdp, "seconds": t_ours})
    print(table(rows, ["sigma", "q", "steps", "delta", "pgan", "opacus_prv", "opacus_rdp", "pgan/prv", "pgan/rdp", "seconds"]))
    return rows


# ---- data for the training benchmarks ----------------------------------------------------------------
def digits_sets(tmp: Path, n_members: int = 100, seed: int = 0) -> dict[str, Path]:
    """members (n), holdout (n) and a test set (the rest) from the 8x8 digits, stratified."""
    from sklearn.model_selection import train_test_split

    from pgan_cli.dataset import write_dataset
    from pgan_cli.datasets import digits

    d = digits(8)
    idx = np.arange(len(d.samples))
    rest, mh = train_test_split(idx, test_size=2 * n_members, stratify=d.labels, random_state=seed)
    m, h = train_test_split(mh, test_size=n_members, stratify=d.labels[mh], random_state=seed)
    out = {}
    for name, ix in (("members", m), ("holdout", h), ("test", rest)):
        out[name] = tmp / f"{name}.h5"
        write_dataset(out[name], d.samples[ix], labels=d.labels[ix], class_names=d.class_names,
                      provenance={"bench": "dp", "role": name})
    return out


def train(sets, out: Path, eps: float | None, **opts) -> tuple[dict, float]:
    from pgan_cli.gan.training.dpsgd import dp_trainer
    from pgan_cli.gan.training.run import train_file

    trainer = dp_trainer(eps) if eps is not None else None
    t = time.perf_counter()
    s = train_file(sets["members"], out, device="cpu", progress=False, checkpoint_every=0,
                   **({"trainer_cls": trainer} if trainer else {}), **opts)
    return s, time.perf_counter() - t


def bench_overhead() -> list[dict]:
    from pgan_cli import console

    console.configure(quiet=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets = digits_sets(Path(tmp), n_members=400)
        for net, width in (("mlp", 64), ("conv", 16)):
            opts = dict(arch="dcgan", net=net, width=width, latent_dim=32, batch_size=32, epochs=4, seed=0)
            s0, t0 = train(sets, Path(tmp) / "plain.pt", None, **opts)
            s1, t1 = train(sets, Path(tmp) / "dp.pt", 10.0, **opts)
            n_img = 4 * (400 // 32) * 32
            rows.append({"net": f"{net} (width {width})", "plain_img_per_s": n_img / t0, "dp_img_per_s": n_img / t1,
                         "dp/plain": t0 / t1, "steps": s1["dp"]["steps"]})
    print(table(rows, ["net", "plain_img_per_s", "dp_img_per_s", "dp/plain", "steps"]))
    return rows


# ---- memorisation ----------------------------------------------------------------------------------------
def attack_aucs(ck_path: Path, sets: dict[str, Path], n_synth: int = 2000, seed: int = 0) -> dict[str, float]:
    """White-box (D's logit on M vs H: LOGAN, Hayes et al. 2019) and black-box (-distance to the
    nearest synthetic sample: GAN-Leaks full black-box, Chen et al. 2020) membership AUCs."""
    import torch
    from sklearn.metrics import roc_auc_score

    from pgan_cli.gan.checkpoint import load_checkpoint
    from pgan_cli.dataset import read_dataset
    from pgan_cli.neighbors import nearest_distance
    from pgan_cli.gan.sampling import generate

    ck = load_checkpoint(ck_path)
    m, h = read_dataset(sets["members"]), read_dataset(sets["holdout"])
    cand = np.concatenate([m.samples, h.samples])
    truth = np.r_[np.ones(m.n), np.zeros(h.n)]
    with torch.no_grad():
        wb = ck.discriminate(torch.as_tensor(cand)).float().reshape(-1).numpy()
    synth = np.concatenate([x for x, _, _ in generate(ck, n_synth, seed=seed, progress=False)])
    d = nearest_distance(cand.reshape(len(cand), -1), synth.reshape(len(synth), -1))
    return {"auc_whitebox_D": float(roc_auc_score(truth, wb)), "auc_dcr": float(roc_auc_score(truth, -np.asarray(d)))}


def bench_memorization(epochs: int = 400, eps_list=(None, 1.0, 4.0, 10.0)) -> list[dict]:
    from pgan_cli import console

    console.configure(quiet=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets = digits_sets(Path(tmp), n_members=100)
        for eps in eps_list:
            out = Path(tmp) / f"g_{eps}.pt"
            s, secs = train(sets, out, eps, arch="dcgan", net="mlp", width=64, latent_dim=32, batch_size=20,
                            epochs=epochs, seed=0)
            row = {"epsilon": "none" if eps is None else eps, "spent": s.get("dp", {}).get("epsilon"),
                   "noise_multiplier": s.get("dp", {}).get("noise_multiplier"), "seconds": secs, **attack_aucs(out, sets)}
            print(row, flush=True)
            rows.append(row)
    print(table(rows, ["epsilon", "spent", "noise_multiplier", "auc_whitebox_D", "auc_dcr", "seconds"]))
    return rows


def bench_memorization_defaults(epochs: int = 400, seeds=(0, 1, 2)) -> list[dict]:
    """Does memorisation rise with quality? The memorisation setting without DP (100 members, 400
    epochs, mlp), today's trainer before issue 15 (no augmentation, no EMA) beside pgan train's
    defaults (DiffAugment, EMA) and sngan with them: white-box (D's logit) and DCR AUCs."""
    from pgan_cli import console

    console.configure(quiet=True)
    variants = {"before (augment none, no EMA)": dict(arch="dcgan", augment="none", ema=False),
                "defaults (dcgan, diffaug, EMA)": dict(arch="dcgan"),
                "sngan defaults (diffaug, EMA)": dict(arch="sngan")}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets = digits_sets(Path(tmp), n_members=100)
        for seed in seeds:
            for label, opts in variants.items():
                out = Path(tmp) / "g.pt"
                s, secs = train(sets, out, None, net="mlp", width=64, latent_dim=32, batch_size=20, epochs=epochs,
                                seed=seed, **opts)
                row = {"trainer": label, "seed": seed, "seconds": secs, **attack_aucs(out, sets, seed=seed)}
                print(row, flush=True)
                rows.append(row)
    print(table(rows, ["trainer", "seed", "auc_whitebox_D", "auc_dcr", "seconds"]))
    return rows


def main() -> None:
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))  # small nets: threads only contend
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["ldp", "accountant", "overhead", "memorization", "memorization-defaults", "all"])
    ap.add_argument("--epochs", type=int, default=400, help="memorization: epochs over the 100 members")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    print(f"machine: {machine()}\n")
    res = {}
    for name, fn in (("ldp", bench_ldp), ("accountant", bench_accountant), ("overhead", bench_overhead),
                     ("memorization", lambda: bench_memorization(a.epochs)),
                     ("memorization-defaults", lambda: bench_memorization_defaults(a.epochs))):
        if a.what in (name, "all"):
            print(f"## {name}")
            res[name] = fn()
            print()
    if a.json:
        a.json.write_text(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    main()
