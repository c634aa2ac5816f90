"""The pGAN augmentation set for image batches: small zoom, rotation, crop (shift) and intensity shift.

Off by default (medical images should not be altered without thought). Each sample gets its own
random affine transform (zoom 0.9-1.1, rotation +-10 degrees, translation up to 1/16 of the size,
bilinear resampling, border padding) and an additive intensity shift in [-0.1, 0.1], clamped back
to [-1, 1]. Randomness comes from the global torch RNG, so a seeded run is reproducible and
resumable.
"""

from __future__ import annotations

import math

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
