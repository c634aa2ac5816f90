"""A tiny GAN trainer for the white-box attack tests (not the product's `pgan train`).

Trains pgan's MLP generator/discriminator with the non-saturating GAN loss and saves a real
pgan checkpoint with :func:`pgan_cli.checkpoint.save_checkpoint`, so the attacks load it with
the same API as a checkpoint written by `pgan train`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pgan_cli.checkpoint import build_networks, save_checkpoint


def train_tiny_gan(data: np.ndarray, path: Path, steps: int, latent_dim: int = 8, width: int = 32,
                   lr: float = 1e-3, seed: int = 0, batch: int = 128, weight_decay: float = 0.0, d_steps: int = 1) -> Path:
    x = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
    dim = x.shape[1]
    config = {"arch": "gan", "net": "mlp", "norm": "none", "latent_dim": latent_dim, "width": width,
              "sample_shape": [dim], "kind": "vectors", "conditional": False, "num_classes": 0,
              "data_scaling": {"kind": "none"}}
    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g, d = build_networks(config)
        og = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.5, 0.999))
        od = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.5, 0.999), weight_decay=weight_decay)
        bce = torch.nn.BCEWithLogitsLoss()
        gen = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            for _ in range(d_steps):
                idx = torch.randint(0, len(x), (min(batch, len(x)),), generator=gen)
                real = x[idx]
                z = torch.randn(len(real), latent_dim, generator=gen)
                fake = g(z)
                lr_, _ = d(real)
                lf, _ = d(fake.detach())
                loss_d = bce(lr_, torch.ones_like(lr_)) + bce(lf, torch.zeros_like(lf))
                od.zero_grad()
                loss_d.backward()
                od.step()
            lf, _ = d(fake)
            loss_g = bce(lf, torch.ones_like(lf))
            og.zero_grad()
            loss_g.backward()
            og.step()
    finally:
        torch.set_num_threads(threads)
    g.eval()
    d.eval()
    return save_checkpoint(path, config=config, generator=g, discriminator=d, progress={"step": steps})


def sample_tiny_gan(ck, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Samples and their latents from a loaded checkpoint."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, ck.latent_dim, generator=gen)
    with torch.no_grad():
        x = ck.generate(z).reshape(n, -1).numpy()
    return x.astype(np.float32), z.numpy().astype(np.float32)
