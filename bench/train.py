"""Training throughput of `pgan train` against a plain PyTorch loop written as the PyTorch DCGAN
tutorial does (https://pytorch.org/tutorials/beginner/dcgan_faces_tutorial.html), same networks.

For each image size (32, 64), arch (dcgan, wgan-gp) and precision (fp32, bf16 autocast +
channels_last for both sides), both loops train the same ConvGenerator / ConvDiscriminator
(width 64, latent 100, batch 64) on random images; after warm-up steps we time generator
steps and report real images per second (the images the discriminator reads), and the ratio
pgan / tutorial (target >= 1.0). Runs alternate (pgan, tutorial, pgan, tutorial ...) and the
best of the repeats is kept, so the shared machine's load hits both sides alike.

Run: PYTHONPATH=. python bench/train.py [--sizes 32,64] [--archs dcgan,wgan-gp]
     [--precisions fp32,bf16] [--steps 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import platform
import time
from contextlib import nullcontext

import numpy as np
import torch
from torch import nn


def tutorial_loop(size: int, arch: str, precision: str, steps: int, warmup: int, batch: int = 64) -> float:
    """The tutorial's loop (DataLoader, BCE on D(real) then D(fake), G step), or its WGAN-GP form."""
    from torch.utils.data import DataLoader, TensorDataset

    from pgan_cli.gan.models.nets import ConvDiscriminator, ConvGenerator

    torch.manual_seed(0)
    n_critic = 1 if arch == "dcgan" else 5
    netG = ConvGenerator(100, 1, size, 64)
    netD = ConvDiscriminator(1, size, 64, norm="batchnorm" if arch == "dcgan" else "none")
    amp = precision == "bf16"
    if amp:
        netG = netG.to(memory_format=torch.channels_last)
        netD = netD.to(memory_format=torch.channels_last)
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if amp else nullcontext
    lr, betas = (2e-4, (0.5, 0.999)) if arch == "dcgan" else (1e-4, (0.5, 0.9))
    optD = torch.optim.Adam(netD.parameters(), lr=lr, betas=betas)
    optG = torch.optim.Adam(netG.parameters(), lr=lr, betas=betas)
    criterion = nn.BCEWithLogitsLoss()
    data = torch.rand(batch * (steps + warmup) * n_critic, 1, size, size) * 2 - 1
    loader = DataLoader(TensorDataset(data), batch_size=batch, shuffle=True, drop_last=True)
    it = iter(loader)
    t0, images = None, 0
    for g_step in range(warmup + steps):
        if g_step == warmup:
            t0, images = time.perf_counter(), 0
        for _ in range(n_critic):
            (real,) = next(it)
            if amp:
                real = real.contiguous(memory_format=torch.channels_last)
            b = real.size(0)
            netD.zero_grad()
            noise = torch.randn(b, 100)
            with ctx():
                fake = netG(noise)
                out_real = netD(real)[0]
                out_fake = netD(fake.detach())[0]
                if arch == "dcgan":
                    errD = criterion(out_real.float(), torch.ones(b)) + criterion(out_fake.float(), torch.zeros(b))
                else:
                    errD = out_fake.float().mean() - out_real.float().mean()
            if arch == "wgan-gp":
                eps = torch.rand(b, 1, 1, 1)
                x_hat = (eps * real + (1 - eps) * fake.detach().float()).requires_grad_(True)
                grad, = torch.autograd.grad(netD(x_hat)[0].sum(), x_hat, create_graph=True)
                errD = errD + 10 * ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
            errD.backward()
            optD.step()
            images += b
        netG.zero_grad()
        if arch != "dcgan":
            with ctx():
                fake = netG(torch.randn(batch, 100))
        with ctx():
            out = netD(fake)[0].float()
            errG = criterion(out, torch.ones(batch)) if arch == "dcgan" else -out.mean()
        errG.backward()
        optG.step()
    return images / (time.perf_counter() - t0)


def pgan_loop(size: int, arch: str, precision: str, steps: int, warmup: int, batch: int = 64) -> float:
    """pgan's Trainer on the same networks and data sizes."""
    from pgan_cli.dataset import DataBundle
    from pgan_cli.gan.training.config import make_config
    from pgan_cli.gan.training.loop import Trainer

    n_critic = 1 if arch == "dcgan" else 5
    x = (np.random.default_rng(0).random((batch * (steps + warmup) * n_critic, 1, size, size)) * 2 - 1)
    data = DataBundle(samples=x.astype(np.float32), kind="images")
    cfg = make_config(data, arch=arch, steps=warmup, batch_size=batch, precision=precision)
    t = Trainer(cfg, data.samples, None, progress=False, checkpoint_every=0)
    t.train()
    t.config["steps"] = warmup + steps
    t0 = time.perf_counter()
    t.train()
    return steps * n_critic * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="32,64")
    ap.add_argument("--archs", default="dcgan,wgan-gp")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = ap.parse_args()
    from pgan_cli import console

    console.configure(quiet=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()} {platform.processor()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; images/s = real images read by D per second")
    print("| size | arch | precision | pgan img/s | tutorial img/s | ratio |")
    print("|---|---|---|---|---|---|")
    for size in map(int, args.sizes.split(",")):
        for arch in args.archs.split(","):
            for prec in args.precisions.split(","):
                steps = args.steps if arch == "dcgan" else max(1, args.steps // 2)
                a, b = [], []
                for _ in range(args.repeats):
                    a.append(pgan_loop(size, arch, prec, steps, args.warmup))
                    b.append(tutorial_loop(size, arch, prec, steps, args.warmup))
                print(f"| {size} | {arch} | {prec} | {max(a):.0f} | {max(b):.0f} | {max(a) / max(b):.2f} |",
                      flush=True)


if __name__ == "__main__":
    main()
