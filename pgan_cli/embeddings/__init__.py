"""Feature spaces for pgan's distances: a small registry of embeddings with one contract.

>>> from pgan_cli.embeddings import make_embedding, load_model
>>> emb = make_embedding("pca", dim=20).fit(members)          # fit once, on the fit set
>>> a, b = emb.transform(members), emb.transform(synthetic)    # same space
>>> emb.save("pca.npz"); load_model("pca.npz").transform(holdout)

Methods: ``pixel``, ``pca``, ``umap``, ``autoencoder``, ``discriminator`` (needs ``checkpoint=``)
and ``torchvision:NAME`` (needs ``weights=`` or torchvision's cache). Model files are NPZ read
with ``allow_pickle=False`` (see :mod:`pgan_cli.embeddings.base`).
"""

from __future__ import annotations

import os
from typing import Any

from pgan_cli.embeddings.base import Embedding, read_model_file
from pgan_cli.errors import UsageError

METHODS = ("pixel", "pca", "umap", "autoencoder", "discriminator", "torchvision:NAME")


def _registry() -> dict[str, type[Embedding]]:
    from pgan_cli.embeddings.manifold import UMAPEmbedding
    from pgan_cli.embeddings.neural import AutoencoderEmbedding, DiscriminatorEmbedding, TorchvisionEmbedding
    from pgan_cli.embeddings.simple import PCAEmbedding, PixelEmbedding

    return {c.method: c for c in (PixelEmbedding, PCAEmbedding, UMAPEmbedding, AutoencoderEmbedding,
                                  DiscriminatorEmbedding, TorchvisionEmbedding)}


def parse_method(method: str) -> tuple[str, dict[str, Any]]:
    """``"torchvision:resnet18"`` -> ``("torchvision", {"name": "resnet18"})``; checks the name."""
    m = (method or "").strip()
    base, _, arg = m.partition(":")
    base = base.lower()
    if base not in _registry():
        raise UsageError(f"unknown --method {method!r}; use one of {', '.join(METHODS)}")
    if base == "torchvision":
        if not arg:
            raise UsageError("--method torchvision needs a model name, e.g. torchvision:resnet18")
        return base, {"name": arg}
    if arg:
        raise UsageError(f"--method {base} takes no ':{arg}' suffix")
    return base, {}


def make_embedding(method: str, **options: Any) -> Embedding:
    """A new, unfitted embedding. Options: dim, seed, device, resize, batch_size, and per method
    epochs (autoencoder), checkpoint (discriminator), weights (torchvision), n_neighbors/min_dist (umap)."""
    base, extra = parse_method(method)
    cls = _registry()[base]
    options = {k: v for k, v in options.items() if v is not None}
    allowed = {"pixel": (), "pca": (), "umap": ("n_neighbors", "min_dist"), "autoencoder": ("epochs",),
               "discriminator": ("checkpoint",), "torchvision": ("weights", "name")}[base]
    for key in ("epochs", "checkpoint", "weights", "n_neighbors", "min_dist"):
        if key in options and key not in allowed:
            raise UsageError(f"--{key.replace('_', '-')} does not apply to --method {base}")
    if base == "umap" and "seed" not in options:
        from pgan_cli.embeddings.manifold import UMAP_SEED

        options["seed"] = UMAP_SEED
    return cls(**extra, **options)


def load_model(path: str | os.PathLike, device: str = "cpu", batch_size: int = 256) -> Embedding:
    """A fitted embedding from a model file written by :meth:`Embedding.save` (no pickle)."""
    header, arrays = read_model_file(path)
    method = header.get("method")
    reg = _registry()
    if method not in reg:
        raise UsageError(f"{path}: unknown embedding method {method!r}")
    cls = reg[method]
    kw: dict[str, Any] = {"seed": header.get("seed", 0), "device": device, "batch_size": batch_size,
                          "resize": header.get("resize")}
    if cls.takes_dim:
        kw["dim"] = header.get("dim")
    if method in ("discriminator", "torchvision"):
        kw["_loading"] = True
    emb = cls(**kw)
    emb.input_shape = tuple(int(d) for d in header.get("input_shape") or ())
    emb.adaptation = list(header.get("adaptation") or [])
    emb.set_state(header.get("config") or {}, arrays)
    return emb


__all__ = ["Embedding", "METHODS", "load_model", "make_embedding", "parse_method"]
