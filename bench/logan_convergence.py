"""logan-blackbox (the S-vs-R classifier) against LOGAN D1 as the domias package trains it, on planted leaks.

Setting: an 8-d Gaussian mixture (5 components, means N(0, 3²) per axis, each component a random
rotation with axis scales 0.5 to 1.5); members M, holdout H, reference R 1,000 rows each and a
disjoint population pool for the fresh rows of a partial leak, all drawn from the same mixture. The
released set S (1,000 rows) comes from ``pgan_cli.leak.plant_leak``: F of its rows are members plus
N(0, sigma²) noise, the rest fresh population rows. Cases: a noisy copy of M (F = 1, sigma = 0.2:
the copy noise is a fifth of the smallest within-component scale, so the copy is close but not exact
and the classifiers separate clearly from one another), the same with 50% and 10% of S copied, a
noisier copy (F = 1, sigma = 0.5) and the null (F = 0). AUC over the 1,000 + 1,000 candidates M ∪ H;
several seeds (each a new population, leak and training seed); seconds of fit + score per method.

Side by side, on the same arrays, in one run:

- **pgan**: ``logan-blackbox`` through ``pgan_cli.attacks.get_attack`` (the library the attack suite
  runs), with its JSON parameters (steps run, whether training converged);
- **domias D1 (fixed)**: LOGAN D1 as the ``domias`` package's baseline trains it (``LOGAN_D1`` /
  ``hayes_torch`` in ``src/domias/baselines.py`` of vanderschaarlab/DOMIAS), re-implemented here
  with its batch-sampling bug fixed (see :func:`domias_logan_d1`);
- **sklearn early stop**: scikit-learn's ``MLPClassifier`` (two hidden layers of 256 like the
  others) with ``early_stopping=True`` (10% of S ∪ R held out, stops when the held-out accuracy
  stops improving for 10 epochs), on pgan's standardised inputs; score = the network's output
  logit;
- **sklearn converged**: the same without early stopping (it stops when the training loss
  improves by less than 1e-4 for 10 epochs), as a check of what early stopping costs.

``--curve``: the classifier pgan trains, with a stratified 20% of S and R held out, printing every
250 steps the training loss, the held-out (validation) loss and the membership AUC: whether
early stopping on a held-out split of S and R can find the point where the membership signal
peaks. ``--large``: pgan's cost and AUC at 20,000 members, holdout, synthetic (10% noisy copies)
and reference rows of a 64-d mixture, and on bench/attack.py's 4,096-d sets at ``--scale 0.25``
(12,500 synthetic rows); the peers are not run there (domias D1 would take 300 x 40,000 / 256 =
46,875 steps at 20,000 rows).

    python bench/logan_convergence.py --seeds 3 --curve --large --out logan.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _measure import machine  # noqa: E402

from pgan_cli import console  # noqa: E402
from pgan_cli.attacks import AttackInputs, get_attack  # noqa: E402
from pgan_cli.attacks.evaluation import auc  # noqa: E402
from pgan_cli.leak import plant_leak  # noqa: E402

N = 1000
CASES = (("noisy copy (F 1, sigma 0.2)", 1.0, 0.2), ("50% copied (F 0.5, sigma 0.2)", 0.5, 0.2),
         ("10% copied (F 0.1, sigma 0.2)", 0.1, 0.2), ("noisier copy (F 1, sigma 0.5)", 1.0, 0.5),
         ("null (F 0)", 0.0, 0.2))


def mixture(rng: np.random.Generator, n: int, d: int = 8, k: int = 5) -> np.ndarray:
    """n rows of a fixed k-component Gaussian mixture in d dimensions (components from seed 7)."""
    g = np.random.default_rng(7)
    means = g.normal(0.0, 3.0, size=(k, d))
    rot = np.stack([np.linalg.qr(g.normal(size=(d, d)))[0] * g.uniform(0.5, 1.5, d) for _ in range(k)])
    c = rng.integers(0, k, n)
    return (means[c] + np.einsum("nij,nj->ni", rot[c], rng.normal(size=(n, d)))).astype(np.float32)


def world(seed: int, fraction: float, sigma: float, n: int = N, d: int = 8) -> dict:
    rng = np.random.default_rng(seed)
    x = mixture(rng, 5 * n, d)
    M, H, R, P = x[:n], x[n:2 * n], x[2 * n:3 * n], x[3 * n:]
    S = plant_leak(M, P, fraction, sigma, seed=seed).samples
    return {"M": M, "H": H, "R": R, "S": S}


def standardiser(S: np.ndarray, R: np.ndarray):
    both = np.concatenate([S, R])
    mu, sd = both.mean(0), both.std(0)
    sd[sd < 1e-8] = 1.0
    return lambda x: ((x - mu) / sd).astype(np.float32)


def pgan_logan(S, R, C, seed):
    att = get_attack("logan-blackbox").fit(AttackInputs(synthetic=S, reference=R, seed=seed))
    return att.score(C), att.describe()


def domias_logan_d1(S, R, C, seed):
    """LOGAN D1 as the domias package's baseline trains it, with its batch sampling fixed.

    What domias does (``LOGAN_D1``, and ``hayes_torch`` in later versions): keep num = min(|S|, |R|)
    rows of each, stack them as [S[:num]; R[:num]] with labels [1 ... 1, 0 ... 0], and train an MLP
    (input -> 256 -> ReLU -> 256 -> ReLU -> 2 outputs, cross-entropy, Adam at 1e-3, batches of 256)
    for int(300 * n_candidates / 256) iterations on the raw (unscaled) inputs; the score of a
    candidate is the network's output for class 1 (the "synthetic" logit, not the log-odds).

    The bug: each batch is drawn as ``np.random.choice(num, batch_size)`` (``hayes_torch``:
    ``choice(len(X_test), ...)``), i.e. row indices below num, which are all S rows of the stacked
    array. Every batch is labelled 1, the classifier never sees a reference row, and its "synthetic"
    output says nothing about S against R (``hayes_torch`` reaches into R only when there are more
    candidates than num). The fix: batches drawn from all 2 * num rows; here, shuffled passes over
    them (each row once per pass, a new permutation per pass), seeded. Everything else as domias.
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    num = min(len(S), len(R))
    x = torch.from_numpy(np.ascontiguousarray(np.concatenate([S[:num], R[:num]]), dtype=np.float32))
    y = torch.cat([torch.ones(num), torch.zeros(num)]).long()
    net = nn.Sequential(nn.Linear(x.shape[1], 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    batch, iters = 256, int(300 * len(C) / 256)
    order, at = torch.randperm(2 * num, generator=gen), 0
    for _ in range(iters):
        if at + batch > len(order):
            order, at = torch.randperm(2 * num, generator=gen), 0
        i = order[at:at + batch]
        at += batch
        loss = nn.functional.cross_entropy(net(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(C, dtype=np.float32)))[:, 1].double().numpy(), {
            "iterations": iters}


def _mlp_logit(clf, x: np.ndarray) -> np.ndarray:
    """The output logit of a fitted binary MLPClassifier (ReLU layers), from its public weights:
    predict_proba saturates at exactly 1.0 for confident rows, which would turn into ties."""
    h = x.astype(np.float64)
    for w, b in zip(clf.coefs_[:-1], clf.intercepts_[:-1]):
        h = np.maximum(h @ w + b, 0.0)
    return (h @ clf.coefs_[-1] + clf.intercepts_[-1])[:, 0]


def sklearn_mlp(S, R, C, seed, early_stopping: bool):
    from sklearn.neural_network import MLPClassifier

    f = standardiser(S, R)
    clf = MLPClassifier(hidden_layer_sizes=(256, 256), early_stopping=early_stopping, random_state=seed,
                        max_iter=1000)
    clf.fit(f(np.concatenate([S, R])), np.r_[np.ones(len(S)), np.zeros(len(R))])
    return _mlp_logit(clf, f(C)), {"epochs": int(clf.n_iter_)}


METHODS = {"pgan": pgan_logan, "domias D1 (fixed)": domias_logan_d1,
           "sklearn early stop": lambda S, R, C, seed: sklearn_mlp(S, R, C, seed, True),
           "sklearn converged": lambda S, R, C, seed: sklearn_mlp(S, R, C, seed, False)}


def compare(seeds: int) -> dict:
    import torch

    torch.set_num_threads(1)  # pgan trains on one thread (logan.single_thread); so does the peer here
    out = {}
    for label, fraction, sigma in CASES:
        rows = {m: {"auc": [], "seconds": [], "info": []} for m in METHODS}
        for seed in range(seeds):
            w = world(seed, fraction, sigma)
            C = np.concatenate([w["M"], w["H"]])
            truth = np.r_[np.ones(N), np.zeros(N)]
            for name, fn in METHODS.items():
                t = time.perf_counter()
                s, info = fn(w["S"], w["R"], C, seed)
                rows[name]["seconds"].append(time.perf_counter() - t)
                rows[name]["auc"].append(auc(s, truth))
                rows[name]["info"].append(info)
            print(f"{label}, seed {seed}: " + ", ".join(f"{m} {r['auc'][-1]:.3f} ({r['seconds'][-1]:.1f} s)"
                                                       for m, r in rows.items()), file=sys.stderr, flush=True)
        out[label] = rows
    return out


def table(res: dict) -> str:
    names = list(METHODS)
    lines = ["| case | " + " | ".join(f"{m} AUC" for m in names) + " | " + " | ".join(f"{m} s" for m in names) + " |",
             "|---" * (1 + 2 * len(names)) + "|"]
    for label, rows in res.items():
        aucs = [f"{np.mean(rows[m]['auc']):.3f} ± {np.std(rows[m]['auc']):.3f}" for m in names]
        secs = [f"{np.mean(rows[m]['seconds']):.1f}" for m in names]
        lines.append(f"| {label} | " + " | ".join(aucs) + " | " + " | ".join(secs) + " |")
    return "\n".join(lines)


def curve(seed: int = 0, steps: int = 4000, every: int = 250, holdout: float = 0.2) -> list[dict]:
    """pgan's classifier (its architecture, batches and optimiser) with a stratified ``holdout`` of S
    and of R kept out of training: training loss, held-out loss and membership AUC over steps."""
    import torch
    from torch import nn

    from pgan_cli.attacks import logan

    torch.set_num_threads(1)
    w = world(seed, 1.0, 0.2)
    f = standardiser(w["S"], w["R"])
    xs, xr = torch.from_numpy(f(w["S"])), torch.from_numpy(f(w["R"]))
    xc = torch.from_numpy(f(np.concatenate([w["M"], w["H"]])))
    truth = np.r_[np.ones(N), np.zeros(N)]
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    ps, pr = torch.randperm(len(xs), generator=gen), torch.randperm(len(xr), generator=gen)
    vs, vr = int(holdout * len(xs)), int(holdout * len(xr))
    ts, tr = xs[ps[vs:]], xr[pr[vr:]]
    xv = torch.cat([xs[ps[:vs]], xr[pr[:vr]]])
    yv = torch.cat([torch.ones(vs), torch.zeros(vr)])
    xt = torch.cat([ts, tr])
    yt = torch.cat([torch.ones(len(ts)), torch.zeros(len(tr))])
    net = logan.classifier(xs.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=logan.LR)
    half = logan.BATCH // 2
    y = torch.cat([torch.ones(half), torch.zeros(half)])
    loss_fn = nn.BCEWithLogitsLoss()
    rows_s, rows_r, out = logan.ShuffledRows(len(ts), gen), logan.ShuffledRows(len(tr), gen), []
    for step in range(1, steps + 1):
        loss = loss_fn(net(torch.cat([ts[rows_s.take(half)], tr[rows_r.take(half)]])).squeeze(1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % every == 0:
            with torch.no_grad():
                row = {"step": step, "train_loss": loss_fn(net(xt).squeeze(1), yt).item(),
                       "validation_loss": loss_fn(net(xv).squeeze(1), yv).item(),
                       "membership_auc": auc(net(xc).squeeze(1).double().numpy(), truth)}
            out.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return out


def large(seed: int = 0, n: int = 20000, d: int = 64) -> dict:
    """pgan's cost at larger sizes: ``n`` rows of each set of a ``d``-dimensional mixture (F 0.1,
    sigma 0.2), and bench/attack.py's sets at ``--scale 0.25`` (members, holdout, reference 5,000,
    synthetic 12,500 with 10% noisy copies, 4,096-d, projected on 64 principal components)."""
    import attack

    out = {}
    w = world(seed, 0.1, 0.2, n=n, d=d)
    sets = {f"{n} rows x {d}-d mixture": (w["M"], w["H"], w["R"], w["S"])}
    rng = np.random.default_rng(seed)
    size = {k: int(round(v * 0.25)) for k, v in attack.FULL.items()}
    pool = attack.structured_population(sum(size.values()), attack.DIM, rng)
    cut = np.cumsum([size["members"], size["holdout"], size["reference"]])
    M, H, R, P = pool[:cut[0]], pool[cut[0]:cut[1]], pool[cut[1]:cut[2]], pool[cut[2]:]
    sets["bench/attack.py --scale 0.25 (12,500 synthetic, 4,096-d)"] = (
        M, H, R, plant_leak(M, P, 0.1, 0.05, n=size["synthetic"], seed=seed).samples)
    for label, (M, H, R, S) in sets.items():
        t = time.perf_counter()
        s, params = pgan_logan(S, R, np.concatenate([M, H]), seed)
        out[label] = {"seconds": time.perf_counter() - t, "auc": auc(s, np.r_[np.ones(len(M)), np.zeros(len(H))]),
                      "params": params}
        print(json.dumps({label: out[label]}, default=str), file=sys.stderr, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--curve", action="store_true", help="held-out loss against membership AUC over steps")
    ap.add_argument("--large", action="store_true", help="pgan's cost at 20,000 rows x 64-d")
    ap.add_argument("--out", default=None, help="write the JSON results here")
    args = ap.parse_args()
    console.configure(quiet=True)
    res = {"machine": machine()}
    print(res["machine"], flush=True)
    t0 = time.perf_counter()
    res["compare"] = compare(args.seeds)
    print(table(res["compare"]), flush=True)
    if args.curve:
        res["curve"] = curve()
        print("| step | training loss | held-out loss | membership AUC |\n|---|---|---|---|", flush=True)
        for r in res["curve"]:
            print(f"| {r['step']} | {r['train_loss']:.3f} | {r['validation_loss']:.3f} | {r['membership_auc']:.3f} |")
    if args.large:
        res["large"] = large()
        for label, r in res["large"].items():
            print(f"{label}: AUC {r['auc']:.3f}, {r['seconds']:.1f} s, params {r['params']}", flush=True)
    res["seconds_total"] = time.perf_counter() - t0
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
