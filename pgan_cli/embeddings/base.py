"""The embedding contract and its model file (NPZ, read without pickle).

An embedding maps samples of one shape to float32 vectors: ``fit(X)`` on the fit set, then
``transform(X)`` on every set (members, holdout, synthetic...) so they land in the same space.
``save(path)`` writes one ``.npz`` file of plain numeric arrays plus a JSON config string; it is
read back with ``numpy.load(..., allow_pickle=False)``, so a model file from someone else can
never run code on load (torch state dicts are stored as arrays, not pickles).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pgan_cli import __version__, formats
from pgan_cli.errors import FormatError, InputError, UsageError
from pgan_cli.atomic import atomic_path
from pgan_cli.files import check_input, loads_json

MODEL_FORMAT = formats.EMBEDDING_MODEL
MODEL_VERSION = 1
MAX_RESIZE = 4096  # --resize: images larger than 4,096 pixels a side are not an embedding input
_CONFIG_KEY = "__config__"


class Embedding:
    """Base class: subclasses set ``method`` and implement ``_fit``/``_transform``/state hooks."""

    method: ClassVar[str] = ""
    takes_dim: ClassVar[bool] = False  # whether --dim means something
    needs_images: ClassVar[bool] = False
    uses_device: ClassVar[bool] = False  # a torch network that --device places; the others run on the CPU

    def __init__(self, dim: int | None = None, seed: int = 0, device: str = "cpu", resize: int | None = None,
                 batch_size: int = 256, **options: Any):
        if dim is not None and not self.takes_dim:
            raise UsageError(f"--dim does not apply to --method {self.method}")
        if dim is not None and dim < 1:
            raise UsageError(f"--dim must be >= 1, got {dim}")
        if resize is not None and not 1 <= resize <= MAX_RESIZE:
            raise UsageError(f"--resize must be from 1 to {MAX_RESIZE}, got {resize}")
        self.dim, self.seed, self.device, self.resize = dim, int(seed), device, resize
        self.batch_size = int(batch_size)
        self.input_shape: tuple[int, ...] | None = None
        self.adaptation: list[str] = []
        self.options = options

    # ---- contract ----------------------------------------------------------------------------
    def fit(self, x: np.ndarray) -> Embedding:
        """Fit on the fit set ``x`` ((N, C, H, W) images or (N, D) vectors)."""
        x = np.asarray(x, dtype=np.float32)
        if len(x) == 0:
            raise InputError("the fit set is empty")
        if self.needs_images and x.ndim != 4:
            raise InputError(f"--method {self.method} needs images (N, C, H, W); got vectors of shape {x.shape[1:]}")
        if self.resize is not None and x.ndim != 4:
            raise UsageError(f"--resize applies to images only; the fit set holds vectors {x.shape[1:]}")
        self.input_shape = tuple(int(d) for d in x.shape[1:])
        self._fit(x)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Embed a batch; returns float32 (N, out_dim)."""
        x = np.asarray(x, dtype=np.float32)
        self.check_shape(tuple(x.shape[1:]))
        out = np.asarray(self._transform(x), dtype=np.float32)
        return out.reshape(len(x), -1)

    def check_shape(self, shape: tuple[int, ...], where: str = "the input") -> None:
        if self.input_shape is None:
            raise UsageError(f"the {self.method} embedding is not fitted yet")
        if tuple(shape) != self.input_shape:
            raise InputError(f"{where} has samples of shape {tuple(shape)} but the {self.method} embedding "
                             f"was fitted on shape {self.input_shape}; embed sets of the same shape")

    @property
    def out_dim(self) -> int:
        raise NotImplementedError

    def _fit(self, x: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _transform(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able config, arrays) that restore the fitted model."""
        return {}, {}

    def set_state(self, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        pass

    # ---- shared helpers --------------------------------------------------------------------------
    def resized(self, x: np.ndarray) -> np.ndarray:
        """Images resized to ``resize`` x ``resize`` (antialiased bilinear), or ``x`` unchanged."""
        if self.resize is None or x.ndim != 4 or x.shape[2:] == (self.resize, self.resize):
            return x
        return resize_images(x, self.resize)

    def describe(self) -> dict[str, Any]:
        """What the sidecar JSON and ``--json`` say about the embedding."""
        return {"method": self.method, "out_dim": self.out_dim, "input_shape": list(self.input_shape or []),
                "resize": self.resize, "seed": self.seed, "adaptation": self.adaptation,
                **self.extra_description()}

    def extra_description(self) -> dict[str, Any]:
        return {}

    # ---- model file ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to ``path`` (.npz) atomically."""
        cfg, arrays = self.get_state()
        header = {"format": MODEL_FORMAT, "format_version": MODEL_VERSION, "pgan_version": __version__,
                  "method": self.method, "dim": self.dim, "seed": self.seed, "resize": self.resize,
                  "batch_size": self.batch_size, "input_shape": list(self.input_shape or []),
                  "adaptation": self.adaptation, "config": cfg}
        for key, a in arrays.items():
            if not isinstance(a, np.ndarray) or a.dtype == object:
                raise TypeError(f"model array {key} is not a plain numeric array")
        path = Path(path)
        if path.suffix != ".npz":
            raise UsageError(f"--save-model {path}: the model file must end in .npz")
        with atomic_path(path, suffix=".npz.tmp") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **{_CONFIG_KEY: np.array(json.dumps(header, sort_keys=True))}, **arrays)
        return path


def resize_images(x: np.ndarray, size: int, batch: int = 512) -> np.ndarray:
    """Antialiased bilinear resize of (N, C, H, W) images to ``size`` x ``size``."""
    import torch
    import torch.nn.functional as F

    out = []
    for a in range(0, len(x), batch):
        t = torch.from_numpy(np.ascontiguousarray(x[a:a + batch], dtype=np.float32))
        out.append(F.interpolate(t, size=(size, size), mode="bilinear", antialias=True,
                                 align_corners=False).numpy())
    return np.concatenate(out) if out else np.empty((0, x.shape[1], size, size), np.float32)


def read_model_file(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and arrays of a model file, refusing anything pgan did not write (no pickle)."""
    p = check_input(path, "embedding model")
    if not zipfile.is_zipfile(p):  # np.load reads a plain .npy too, as an array, not an archive
        raise FormatError(f"{p} is not a pgan embedding model (not an NPZ archive); write one with "
                          f"`pgan embed ... --save-model model.npz`")
    try:
        with np.load(p, allow_pickle=False) as z:
            if _CONFIG_KEY not in z.files:
                raise FormatError(f"{p} is not a pgan embedding model (no {_CONFIG_KEY} entry); "
                                  f"write one with `pgan embed ... --save-model model.npz`")
            header = loads_json(str(z[_CONFIG_KEY]), f"the header of {p}")
            arrays = {k: z[k] for k in z.files if k != _CONFIG_KEY}
    except FormatError:
        raise
    except ValueError as e:
        raise FormatError(f"{p} holds Python objects that pgan will not unpickle, or is not an NPZ "
                          f"file ({' '.join(str(e).split())[:100]})") from None
    except (OSError, EOFError, zipfile.BadZipFile, json.JSONDecodeError, KeyError) as e:
        raise FormatError(f"{p} is not a readable embedding model (corrupt or truncated: "
                          f"{' '.join(str(e).split())[:100]})") from None
    if not isinstance(header, dict) or header.get("format") != MODEL_FORMAT:
        raise FormatError(f"{p} is not a pgan embedding model")
    if header.get("format_version") != MODEL_VERSION:
        raise FormatError(f"{p} has embedding format_version {header.get('format_version')}; pgan "
                          f"{__version__} reads version {MODEL_VERSION}; upgrade pgan")
    return header, arrays
