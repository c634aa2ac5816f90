"""Pictures out: samples in [-1, 1] as uint8 images, grids and PNG files (one path for export,
sample grids, training grids and the report)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def to_uint8(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W) or (N, H, W, 3) uint8 for display.

    One channel is shown grey, three as RGB; any other count shows the middle channel in grey
    (e.g. the centre slice of pGAN's 9-slice inputs).
    """
    images = np.asarray(images, dtype=np.float32)
    c = images.shape[1]
    if c == 3:
        x = np.moveaxis(images, 1, -1)
    else:
        x = images[:, c // 2]
    return np.clip((x + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def image_to_uint8(image: np.ndarray) -> np.ndarray:
    """One (C, H, W) image in [-1, 1] as :func:`to_uint8` shows it."""
    return to_uint8(np.asarray(image)[None])[0]


def make_grid(images: np.ndarray, ncol: int | None = None, pad: int = 2, background: int = 255) -> np.ndarray:
    """Tile (N, C, H, W) images in [-1, 1] into one uint8 picture (H', W') or (H', W', 3), ``ncol``
    per row (default: a square), ``pad`` pixels of ``background`` between them."""
    pics = to_uint8(images)
    n = len(pics)
    ncol = max(1, ncol or int(np.ceil(np.sqrt(n))))
    nrow = int(np.ceil(n / ncol))
    h, w = pics.shape[1:3]
    shape = (nrow * (h + pad) + pad, ncol * (w + pad) + pad) + pics.shape[3:]
    grid = np.full(shape, background, dtype=np.uint8)
    for i, p in enumerate(pics):
        r, c = divmod(i, ncol)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = p
    return grid


def save_png(picture: np.ndarray, path: str | os.PathLike, scale: int = 1) -> Path:
    """Write a uint8 picture as PNG atomically, nearest-neighbour upscaled by ``scale``."""
    from PIL import Image

    from pgan_cli.files import atomic_path

    img = Image.fromarray(picture)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    with atomic_path(path, suffix=".png.tmp") as tmp:
        img.save(tmp, format="PNG")
    return Path(path)
