"""Bundled real data sets and toy Gaussian mixtures, as in-memory arrays ready for the dataset file.

- :func:`digits`: scikit-learn's 1,797 real 8x8 handwritten digits (Alpaydin & Kaynak, UCI 1998),
  optionally resized with antialiasing;
- :func:`breast_cancer`: scikit-learn's Wisconsin diagnostic breast-cancer table (Street et al.
  1993), 569 patients x 30 features, unscaled;
- :func:`gaussian_mixture`: one 2-D Gaussian, or K equal-weight modes on a circle (the ring of
  Metz et al. 2017, "Unrolled GANs", and Srivastava et al. 2017, "VEEGAN").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pgan_cli.errors import InputError

DIGIT_SIZES = (8, 16, 32, 64)
MAX_MODES = 1 << 16  # data gaussian --modes: a mixture with more components than that is not a toy


@dataclass
class Bundle:
    """Arrays plus the attributes that describe them."""

    samples: np.ndarray
    labels: np.ndarray | None
    class_names: list[str] | None
    attrs: dict[str, Any] = field(default_factory=dict)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize (N, C, H, W) float images to (N, C, size, size) with antialiasing (Pillow)."""
    from PIL import Image

    n, c, h, w = images.shape
    if (h, w) == (size, size):
        return images.astype(np.float32, copy=False)
    out = np.empty((n, c, size, size), dtype=np.float32)
    for i in range(n):
        for j in range(c):
            img = Image.fromarray(images[i, j].astype(np.float32), mode="F")
            out[i, j] = np.asarray(img.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float32)
    return out


def digits(size: int = 8) -> Bundle:
    """scikit-learn's handwritten digits as (1797, 1, size, size) images in [-1, 1]."""
    from sklearn.datasets import load_digits

    if size not in DIGIT_SIZES:
        raise InputError(f"--size {size} is not supported; choose one of {', '.join(map(str, DIGIT_SIZES))}")
    d = load_digits()
    images = (d.images.astype(np.float32) / 16.0) * 2.0 - 1.0  # 0..16 -> [-1, 1]
    images = resize_images(images[:, None], size)
    np.clip(images, -1.0, 1.0, out=images)
    return Bundle(images, d.target.astype(np.int64), [str(i) for i in range(10)],
                  {"source": "sklearn.datasets.load_digits", "original_size": 8,
                   "intensity_mapping": {"kind": "linear", "from": [0, 16], "to": [-1, 1]},
                   "resize": "lanczos (antialiased)" if size != 8 else "none"})


def breast_cancer() -> Bundle:
    """scikit-learn's Wisconsin breast-cancer table: (569, 30) vectors, unscaled; 0 malignant, 1 benign."""
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return Bundle(d.data.astype(np.float32), d.target.astype(np.int64), [str(n) for n in d.target_names],
                  {"source": "sklearn.datasets.load_breast_cancer",
                   "feature_names": [str(f) for f in d.feature_names]})


def mixture_means(modes: int, radius: float) -> np.ndarray:
    """Centres of the toy mixture: the origin for one mode, else ``modes`` points on a circle."""
    if modes == 1:
        return np.zeros((1, 2))
    angles = 2 * np.pi * np.arange(modes) / modes
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def gaussian_mixture(modes: int, n: int, radius: float = 2.0, std: float = 0.02, seed: int = 0) -> Bundle:
    """``n`` 2-D points from ``modes`` equal-weight isotropic Gaussians; labels are the mode index.

    The true mixture (means, std, weights) goes into the ``mixture`` attribute so later metrics
    can score samples against the true density.
    """
    if not 1 <= modes <= MAX_MODES:
        raise InputError(f"--modes must be from 1 to {MAX_MODES}, got {modes}")
    if n < 1:
        raise InputError(f"-n must be at least 1, got {n}")
    if std <= 0 or not np.isfinite(std):
        raise InputError(f"--std must be a positive number, got {std}")
    if radius <= 0 or not np.isfinite(radius):
        raise InputError(f"--radius must be a positive number, got {radius}")
    rng = np.random.default_rng(seed)
    means = mixture_means(modes, radius)
    labels = rng.integers(0, modes, size=n)
    points = means[labels] + rng.normal(0.0, std, size=(n, 2))
    mixture = {"means": means.tolist(), "std": float(std), "weights": [1.0 / modes] * modes,
               "radius": float(radius), "modes": int(modes)}
    return Bundle(points.astype(np.float32), labels.astype(np.int64), [f"mode{i}" for i in range(modes)],
                  {"source": "pgan gaussian mixture", "mixture": mixture})
