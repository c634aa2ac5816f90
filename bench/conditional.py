"""Conditional digits (the on-class bar of docs/train.md): a conditional GAN trained on `pgan data digits --size 32`
for at most 15 epochs must produce samples that a logistic regression trained on the real digits
assigns to the conditioned class at least 80% of the time.

The peer is the same classifier on held-out real digits (its accuracy is the ceiling).

Run: PYTHONPATH=. python bench/conditional.py [--size 32] [--epochs 15] [--arch dcgan] [--width 32]
     [--class-loss-weight 3] [--options JSON]   (no option: pgan train's defaults only)
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def class_agreement(size: int, epochs: int, arch: str | None = None, width: int | None = None, seed: int = 0,
                    ema: bool | None = None, class_loss_weight: float | None = None, options: dict | None = None) -> dict:
    """Train conditionally for ``epochs`` with ``options`` (pgan train's keywords; the ones given as
    arguments are added when not None: None leaves pgan's default) and score the samples."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from pgan_cli.gan.checkpoint import load_checkpoint
    from pgan_cli.dataset import write_dataset
    from pgan_cli.datasets import digits
    from pgan_cli.gan.training.run import train_file

    b = digits(size)
    x = b.samples.reshape(len(b.samples), -1)
    xa, xb, ya, yb = train_test_split(x, b.labels, test_size=0.25, random_state=0, stratify=b.labels)
    clf = LogisticRegression(max_iter=2000).fit(xa, ya)
    real_acc = float(clf.score(xb, yb))
    clf = LogisticRegression(max_iter=2000).fit(x, b.labels)  # the judge: all real digits
    with tempfile.TemporaryDirectory() as tmp:
        data, ck = Path(tmp) / "digits.h5", Path(tmp) / "gen.pt"
        write_dataset(data, b.samples, labels=b.labels, class_names=b.class_names, attrs=b.attrs, provenance={})
        t0 = time.perf_counter()
        kw = dict(options or {})
        kw.update({k: v for k, v in (("arch", arch), ("width", width), ("ema", ema),
                                     ("class_loss_weight", class_loss_weight)) if v is not None})
        train_file(data, ck, conditional=True, epochs=epochs, seed=seed, checkpoint_every=0, progress=False, **kw)
        seconds = time.perf_counter() - t0
        c = load_checkpoint(ck)
    g = torch.Generator().manual_seed(1)
    y = torch.arange(1000) % 10
    with torch.no_grad():
        s = c.generate(torch.randn(1000, c.latent_dim, generator=g), y).clamp(-1, 1).numpy()
    agree = float((clf.predict(s.reshape(1000, -1)) == y.numpy()).mean())
    cfg = c.config
    return {"size": size, "arch": cfg["arch"], "epochs": epochs, "width": cfg["width"], "ema": cfg["ema"],
            "class_loss_weight": cfg["class_loss_weight"], "augment": cfg.get("augment"), "options": kw,
            "agreement": agree,
            "real_holdout_accuracy": real_acc, "train_seconds": round(seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--arch", default=None, help="default: pgan train's")
    ap.add_argument("--width", type=int, default=None, help="default: pgan train's")
    ap.add_argument("--class-loss-weight", type=float, default=None, help="default: pgan train's")
    ap.add_argument("--options", default="{}", help="more pgan train keywords as JSON, e.g. '{\"augment\": \"none\"}'")
    args = ap.parse_args()
    import json
    from pgan_cli import console

    console.configure(quiet=True)
    r = class_agreement(args.size, args.epochs, args.arch, args.width, class_loss_weight=args.class_loss_weight,
                        options=json.loads(args.options))
    print(f"conditional {r['arch']} {r['size']}x{r['size']}, {r['epochs']} epochs, width {r['width']}, ema {r['ema']}, "
          f"augment {r['augment']}, class-loss-weight {r['class_loss_weight']:g} (options {r['options']}): "
          f"{100 * r['agreement']:.1f}% of samples classified as their conditioned class "
          f"(real holdout accuracy {100 * r['real_holdout_accuracy']:.1f}%), trained in {r['train_seconds']} s")
    print(f"machine: {platform.machine()}, {platform.platform()}")


if __name__ == "__main__":
    main()
