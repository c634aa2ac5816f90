"""One-run auditing of pgan's DP claim (Steinke, Nasr & Jagielski, NeurIPS 2023); results in
BENCHMARKS.md, "Auditing the DP claim".

    python bench/dp_audit.py                 # DP at eps 1, 4, 10 over 3 seeds; no DP at 50/100/200 members
    python bench/dp_audit.py --quick         # one seed, fewer epochs (a smoke run)

Set-up: bench/dp.py's memorisation run (8x8 digits, stratified members, DCGAN loss with the MLP
nets, width 64, latent 32, batch 20, 400 epochs) plus M = 100 audit canaries drawn from the test
digits (held out from members and holdout), each trained on with probability 1/2. Every run is
audited with the discriminator's logit (logan) and the generator's reconstruction error
(gan-leaks), at 95 % confidence, Bonferroni over pgan's guess grid. The claim must never be
exceeded; without DP the bound should be clearly above 0 and grow as the members get fewer.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dp import digits_sets, machine, table  # noqa: E402


def run(sets, tmp: Path, eps: float | None, seed: int, epochs: int, canaries: int) -> list[dict]:
    from pgan_cli.privacy.one_run_audit import dp_audit_file
    from pgan_cli.gan.training.dpsgd import dp_trainer
    from pgan_cli.gan.training.run import train_file

    out = tmp / f"g_{eps}_{seed}_{sets['n']}.pt"
    trainer = dp_trainer(eps) if eps is not None else None
    t = time.perf_counter()
    s = train_file(sets["members"], out, device="cpu", progress=False, checkpoint_every=0,
                   audit_canaries=canaries, canary_source=sets["test"], arch="dcgan", net="mlp", width=64,
                   latent_dim=32, batch_size=20, epochs=epochs, seed=seed,
                   **({"trainer_cls": trainer} if trainer else {}))
    secs = time.perf_counter() - t
    rows = []
    for score in ("logan", "gan-leaks"):
        a = dp_audit_file(out, score=score, seed=seed)
        au = a["audited"]
        rows.append({"members": sets["n"], "epsilon": "none" if eps is None else eps,
                     "spent": (s.get("dp") or {}).get("epsilon"), "seed": seed, "score": score,
                     "canaries_in": a["canaries"]["included"], "audited": round(au["epsilon_lower_bound"], 3),
                     "guesses": f"{au['correct']}/{au['guesses']}", "auc": au["auc"],
                     "exceeds": a["exceeds_claim"], "train_s": round(secs, 1)})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    import torch

    from pgan_cli import console

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--canaries", type=int, default=100)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    console.configure(quiet=True)
    epochs = 100 if a.quick else 400
    seeds = (0,) if a.quick else (0, 1, 2)
    print(f"machine: {machine()}\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for n in (50, 100, 200):
            sets = {**digits_sets(tmp / f"n{n}" if (tmp / f"n{n}").mkdir() is None else tmp, n_members=n), "n": n}
            for seed in seeds if n == 100 else (0,):
                rows += run(sets, tmp, None, seed, epochs, a.canaries)
            if n == 100:
                for eps in (1.0, 4.0, 10.0):
                    for seed in seeds:
                        rows += run(sets, tmp, eps, seed, epochs, a.canaries)
    print()
    print(table(rows, ["members", "epsilon", "spent", "seed", "score", "canaries_in", "guesses", "audited",
                       "auc", "exceeds", "train_s"]))
    bad = [r for r in rows if r["exceeds"]]
    print(f"\nclaims exceeded: {len(bad)} of {sum(r['epsilon'] != 'none' for r in rows)} audited DP runs")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
