"""Pictures out: samples in [-1, 1] as uint8 images, grids and PNG files (one path for export,
sample grids, training grids and the report)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from pgan_cli.errors import InputError


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

    from pgan_cli.atomic import atomic_path

    img = Image.fromarray(picture)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    with atomic_path(path, suffix=".png.tmp") as tmp:
        img.save(tmp, format="PNG")
    return Path(path)


def class_folder(name: str) -> str:
    """A class name as a safe sub-folder name (``docs/security.md``: names never leave the folder)."""
    safe = "".join(c if c.isprintable() and c not in '/\\' else "_" for c in name).strip()
    if safe in ("", ".", "..") or safe.startswith(".pgan"):
        safe = f"_{safe}"
    return safe + "/"


def export_file(source, *, png_dir=None, grid=None, n: int = 64) -> dict[str, Any]:
    """``pgan data export``: a dataset's images as one PNG per sample in ``png_dir`` (class
    sub-folders when labelled; written as a set that replaces only an earlier export's files), or
    the first ``n`` as one grid; returns ``{"output", "files", "samples"}``."""
    from pgan_cli import console
    from pgan_cli.dataset import Dataset
    from pgan_cli.outputs import output_set
    from pgan_cli.params import Interval, check
    from pgan_cli.provenance import shown_path

    check("n", n, Interval(1, None))
    with Dataset(source) as ds:
        if ds.kind != "images":
            raise InputError(f"{source} holds vectors, not images; only image datasets can be exported to PNG")
        if grid is not None:
            save_png(make_grid(ds.samples(0, min(n, ds.n))), grid)
            return {"output": shown_path(grid), "files": 1, "samples": min(n, ds.n)}
        names = ds.class_names
        with output_set(png_dir, "pgan data export") as staged:
            for start, x, y in console.progress(ds.iter_batches(512), total=-(-ds.n // 512), description="export"):
                for i, pic in enumerate(to_uint8(x)):
                    folder = "" if y is None else class_folder(names[y[i]] if names else str(y[i]))
                    save_png(pic, staged.path(f"{folder}{start + i:06d}.png"))
        return {"output": shown_path(png_dir), "files": ds.n, "samples": ds.n}
