"""Augmentation of the images the discriminator sees (``pgan train --augment``).

- ``pgan``: the pGAN set, applied to the real batch only: small zoom, rotation, crop (shift) and
  intensity shift. Each sample gets its own random affine transform (zoom 0.9-1.1, rotation +-10
  degrees, translation up to 1/16 of the size, bilinear resampling, border padding) and an
  additive intensity shift in [-0.1, 0.1], clamped back to [-1, 1]. Since G is trained to match
  the augmented reals, its samples carry the augmentation.
- ``diffaug``: Differentiable Augmentation (Zhao, Liu, Lin, Zhu & Han, NeurIPS 2020), policy
  ``color,translation,cutout``: the same random transforms applied to real AND generated images
  every time D looks at them (in D's and in G's update, gradients flowing through them), so D
  cannot memorise the few real images it has while G still learns the un-augmented data.
  Translation by up to 1/8 of the size with zero padding, one cutout square of half the size,
  brightness +-0.5, saturation x[0, 2], contrast x[0.5, 1.5] (the paper's ``DiffAugment`` ops).
- ``ada``: the same ops, each applied per sample with probability p, where p follows the
  overfitting heuristic of ADA (Karras, Aittala, Hellsten, Laine, Lehtinen & Aila, NeurIPS 2020):
  r_t = E[sign(D(real))] over the last 4 D steps, p += sign(r_t - 0.6) * images / (ADA_KIMG *
  1000). :class:`AdaptiveP` keeps p; it is saved in the checkpoint and logged.

Randomness comes from the global torch RNG, so a seeded run is reproducible and resumable.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

ZOOM = 0.1
ROTATE_DEG = 10.0
SHIFT = 1.0 / 16.0
INTENSITY = 0.1


def augment_images(x: torch.Tensor) -> torch.Tensor:
    """Randomly zoom, rotate, shift and intensity-shift a batch ``(N, C, H, W)`` in [-1, 1]."""
    n = x.shape[0]
    dev = x.device
    u = torch.rand(n, 5).to(dev)
    scale = 1.0 + ZOOM * (2 * u[:, 0] - 1)
    angle = math.radians(ROTATE_DEG) * (2 * u[:, 1] - 1)
    tx, ty = 2 * SHIFT * (2 * u[:, 2] - 1), 2 * SHIFT * (2 * u[:, 3] - 1)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    shift = (INTENSITY * (2 * u[:, 4] - 1)).to(x.dtype).view(n, 1, 1, 1)
    return (out + shift).clamp_(-1.0, 1.0)


# ---- Differentiable Augmentation (Zhao et al. 2020) ------------------------------------------------
TRANSLATION = 0.125  # shift up to 1/8 of the image size, zero padding
CUTOUT = 0.5         # one square of half the image size set to zero


def _apply(x: torch.Tensor, out: torch.Tensor, p: float | None) -> torch.Tensor:
    """Keep ``out`` for each sample with probability ``p`` (all when None), else ``x``."""
    if p is None:
        return out
    keep = (torch.rand(x.shape[0], 1, 1, 1).to(x.device) < p).to(x.dtype)
    return keep * out + (1 - keep) * x


def color(x: torch.Tensor, p: float | None = None) -> torch.Tensor:
    """DiffAugment's colour op: brightness, saturation and contrast, each random per sample."""
    n = x.shape[0]
    r = torch.rand(n, 3, 1, 1, 1).to(x.device, x.dtype)
    out = x + (r[:, 0] - 0.5)
    mean = out.mean(dim=1, keepdim=True)
    out = (out - mean) * (r[:, 1] * 2) + mean
    mean = out.mean(dim=[1, 2, 3], keepdim=True)
    out = (out - mean) * (r[:, 2] + 0.5) + mean
    return _apply(x, out, p)


def translation(x: torch.Tensor, p: float | None = None, ratio: float = TRANSLATION) -> torch.Tensor:
    """DiffAugment's translation: an integer shift of up to ``ratio`` of the size, zero padding."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sh, sh + 1, (n, 1, 1)).to(x.device)
    ty = torch.randint(-sw, sw + 1, (n, 1, 1)).to(x.device)
    gb, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    out = padded.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)
    return _apply(x, out, p)


def cutout(x: torch.Tensor, p: float | None = None, ratio: float = CUTOUT) -> torch.Tensor:
    """DiffAugment's cutout: one square of ``ratio`` of the size, at a random place, set to 0."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), (n, 1, 1)).to(x.device)
    oy = torch.randint(0, w + (1 - cw % 2), (n, 1, 1)).to(x.device)
    gb, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(ch, device=x.device),
                                torch.arange(cw, device=x.device), indexing="ij")
    gx = torch.clamp(gx + ox - ch // 2, 0, h - 1)
    gy = torch.clamp(gy + oy - cw // 2, 0, w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    return _apply(x, x * mask.unsqueeze(1), p)


DIFFAUG_POLICY = (color, translation, cutout)


def diff_augment(x: torch.Tensor, p: float | None = None) -> torch.Tensor:
    """The ``color,translation,cutout`` policy on a batch ``(N, C, H, W)``; with ``p`` each op is
    applied to each sample with probability p (ADA), without it always (DiffAugment)."""
    if p is not None and p <= 0:
        return x
    for op in DIFFAUG_POLICY:
        x = op(x, p)
    return x


# ---- ADA's overfitting heuristic (Karras et al. 2020) -------------------------------------------
ADA_TARGET = 0.6    # the paper's target for r_t = E[sign(D(real))]
ADA_INTERVAL = 4    # D steps between adjustments
ADA_KIMG = 100      # thousands of real images for p to go from 0 to 1 (the paper: 500, for runs of
                    # tens of millions of images; pgan's CPU runs see about a million)


class AdaptiveP:
    """The augmentation probability p of ADA and its update from D's outputs on real images."""

    def __init__(self, p: float = 0.0):
        self.p = float(p)
        self._signs: list[torch.Tensor] = []
        self._images = 0

    def observe(self, real_logit: torch.Tensor) -> None:
        """Record one D step's logits on (augmented) real images; adjust p every ADA_INTERVAL steps."""
        self._signs.append(torch.sign(real_logit.detach().float()).mean())
        self._images += int(real_logit.shape[0])
        if len(self._signs) >= ADA_INTERVAL:
            r_t = float(torch.stack(self._signs).mean())
            step = self._images / (ADA_KIMG * 1000.0)
            self.p = float(min(1.0, max(0.0, self.p + step * float(np.sign(r_t - ADA_TARGET)))))
            self._signs, self._images = [], 0

    def state_dict(self) -> dict[str, float]:
        return {"p": self.p}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.p = float(state["p"])


class DiscriminatorView:
    """What D sees of a batch under a config's ``augment`` (``pgan`` acts on real batches as they are
    drawn, not here): DiffAugment always, ADA with its adaptive p, or the images as they are. Used
    for real and generated images alike, in D's and in G's update."""

    def __init__(self, augment: str):
        self.augment = augment
        self.ada = AdaptiveP() if augment == "ada" else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.augment == "diffaug":
            return diff_augment(x)
        if self.ada is not None:
            return diff_augment(x, p=self.ada.p)
        return x

    def observe(self, real_logit: torch.Tensor) -> None:
        """D's logits on the (viewed) real batch: ADA's overfitting signal."""
        if self.ada is not None:
            self.ada.observe(real_logit)

    def state_dict(self) -> dict[str, float] | None:
        return self.ada.state_dict() if self.ada is not None else None

    def load_state_dict(self, state: dict[str, float] | None) -> None:
        if self.ada is not None and state:
            self.ada.load_state_dict(state)
