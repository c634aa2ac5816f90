"""Bundled real data sets and toy Gaussian mixtures, as in-memory arrays ready for the dataset file.

- :func:`digits`: scikit-learn's 1,797 real 8x8 handwritten digits (Alpaydin & Kaynak, UCI 1998),
  optionally resized with antialiasing;
- :func:`breast_cancer`: scikit-learn's Wisconsin diagnostic breast-cancer table (Street et al.
  1993), 569 patients x 30 features, unscaled;
- :func:`gaussian_mixture`: one 2-D Gaussian, or K equal-weight modes on a circle (the ring of
  Metz et al. 2017, "Unrolled GANs", and Srivastava et al. 2017, "VEEGAN").
"""

from __future__ import annotations

import numpy as np

from pgan_cli.dataset import KIND_IMAGES, KIND_VECTORS, DataBundle
from pgan_cli.errors import InputError

DIGIT_SIZES = (8, 16, 32, 64)
MAX_MODES = 1 << 16  # data gaussian --modes: a mixture with more components than that is not a toy


def digits(size: int = 8) -> DataBundle:
    """scikit-learn's handwritten digits as (1797, 1, size, size) images in [-1, 1]."""
    from sklearn.datasets import load_digits

    from pgan_cli.imaging.decode import resize

    if size not in DIGIT_SIZES:
        raise InputError(f"--size {size} is not supported; choose one of {', '.join(map(str, DIGIT_SIZES))}")
    d = load_digits()
    images = (d.images.astype(np.float32) / 16.0) * 2.0 - 1.0  # 0..16 -> [-1, 1]
    images = np.stack([resize(image, size) for image in images[:, None]]).astype(np.float32, copy=False)
    np.clip(images, -1.0, 1.0, out=images)
    return DataBundle(images, d.target.astype(np.int64), kind=KIND_IMAGES, class_names=[str(i) for i in range(10)],
                      attrs={"source": "sklearn.datasets.load_digits", "original_size": 8,
                             "intensity_mapping": {"kind": "linear", "from": [0, 16], "to": [-1, 1]},
                             "resize": "lanczos (antialiased)" if size != 8 else "none"})


def breast_cancer() -> DataBundle:
    """scikit-learn's Wisconsin breast-cancer table: (569, 30) vectors, unscaled; 0 malignant, 1 benign."""
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return DataBundle(d.data.astype(np.float32), d.target.astype(np.int64), kind=KIND_VECTORS,
                      class_names=[str(n) for n in d.target_names],
                      attrs={"source": "sklearn.datasets.load_breast_cancer",
                             "feature_names": [str(f) for f in d.feature_names]})


def mixture_means(modes: int, radius: float) -> np.ndarray:
    """Centres of the toy mixture: the origin for one mode, else ``modes`` points on a circle."""
    if modes == 1:
        return np.zeros((1, 2))
    angles = 2 * np.pi * np.arange(modes) / modes
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def gaussian_mixture(modes: int, n: int, radius: float = 2.0, std: float = 0.02, seed: int = 0) -> DataBundle:
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
    return DataBundle(points.astype(np.float32), labels.astype(np.int64), kind=KIND_VECTORS,
                      class_names=[f"mode{i}" for i in range(modes)],
                      attrs={"source": "pgan gaussian mixture", "mixture": mixture})
