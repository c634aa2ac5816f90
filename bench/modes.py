"""Mode coverage of `pgan train` on the 8-mode ring (Metz et al. 2017; Srivastava et al. 2017, VEEGAN).

For each arch (--net mlp, defaults of `pgan data gaussian --modes 8`: radius 2, std 0.02, 2,000
points), train for at most 5,000 generator steps, draw 2,500 samples, and score them against
the true mixture stored in the data file:

- modes covered: modes with at least one sample within 3 std of their mean;
- high-quality share: samples within 3 std of some mode.

Bar: wgan-gp covers >= 7/8 modes with >= 50% high-quality samples. The published
peer: VEEGAN reports 8 modes and 52.9% high-quality samples on this ring.

Run: PYTHONPATH=. python bench/modes.py [--steps 5000] [--archs dcgan,wgan,wgan-gp] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def score_modes(samples: np.ndarray, means: np.ndarray, std: float) -> tuple[int, float]:
    """(modes covered, share of high-quality samples) with the 3-std rule."""
    d = np.linalg.norm(samples[:, None, :] - means[None], axis=2)
    near = d.min(axis=1) < 3 * std
    return int(len(np.unique(d.argmin(axis=1)[near]))), float(near.mean())


def run(arch: str, steps: int, folder: Path, seed: int = 0, batch_size: int = 256,
        gp_weight: float | None = None, width: int = 64, options: dict | None = None) -> dict:
    import h5py

    from pgan_cli.gan.checkpoint import load_checkpoint
    from pgan_cli.dataset import write_dataset
    from pgan_cli.datasets import gaussian_mixture
    from pgan_cli.gan.sampling import class_probabilities, write_samples
    from pgan_cli.gan.training.run import train_file

    data = folder / "ring.h5"
    if not data.exists():
        b = gaussian_mixture(8, 2000, seed=0)
        write_dataset(data, b.samples, labels=b.labels, class_names=b.class_names, attrs=b.attrs, provenance={})
    ck = folder / f"{arch}.pt"
    t0 = time.perf_counter()
    if options is not None:  # `pgan train DATA --arch ARCH` plus exactly these options
        train_file(data, ck, arch=arch, steps=steps, seed=seed, checkpoint_every=0, progress=False,
                   log_path=folder / f"{arch}.jsonl", log_every=250, **options)
    else:
        train_file(data, ck, arch=arch, steps=steps, batch_size=batch_size, seed=seed, checkpoint_every=0,
                   gp_weight=gp_weight if arch == "wgan-gp" else None, width=width,
                   progress=False, log_path=folder / f"{arch}.jsonl", log_every=250)
    train_s = time.perf_counter() - t0
    c = load_checkpoint(ck)
    out = folder / f"{arch}.h5"
    write_samples(c, out, 2500, seed=1, probs=class_probabilities(c))
    with h5py.File(out) as f:
        x = f["samples"][:]
        mixture = json.loads(f.attrs["mixture"])
    modes, hq = score_modes(x, np.asarray(mixture["means"]), mixture["std"])
    return {"arch": arch, "net": "mlp", "steps": steps, "modes": modes, "high_quality": hq,
            "train_seconds": round(train_s, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--archs", default="dcgan,wgan,wgan-gp")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--gp-weight", type=float, default=None, help="wgan-gp lambda (default 10)")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--defaults", action="store_true",
                    help="`pgan train DATA --arch ARCH` with no other option, beside today's trainer before "
                         "issue 15 (penalty 10, no EMA)")
    args = ap.parse_args()
    from pgan_cli import console

    console.configure(quiet=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        variants = ([("defaults", {}), ("before", {"gp_weight": 10.0, "ema": False})] if args.defaults
                    else [("options", None)])
        for arch in args.archs.split(","):
            for label, options in variants:
                r = run(arch, args.steps, Path(tmp), args.seed, gp_weight=args.gp_weight, width=args.width,
                        options=options)
                r["variant"] = label
                rows.append(r)
                print(f"{arch:8s} {label:8s} mlp  steps {r['steps']:5d}  modes {r['modes']}/8  high-quality "
                      f"{100 * r['high_quality']:.1f}%  ({r['train_seconds']} s)", flush=True)
    print("peer (VEEGAN, published): modes 8/8, high-quality 52.9%")
    print(f"machine: {platform.processor() or platform.machine()}, {platform.platform()}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
