"""Release synthetic sets from a checkpoint, and draw sample / interpolation grids.

- :func:`write_samples`: N samples (batched, reproducible from ``seed`` whatever the batch size)
  into a pgan dataset file with ``samples``, ``latents`` (the noise z alone), ``labels`` (the
  class, for conditional models), ``class_names``, the training data's own attributes (e.g. the
  true ``mixture`` of a Gaussian toy set) and provenance with the checkpoint's and the training
  data's SHA-256.
- :func:`interpolation_grid`: rows of spherical latent interpolation (White 2016, "Sampling
  generative networks") and, for conditional models, class morphing with z held fixed (the
  class embedding interpolated), as in pGAN's fidelity figures.
- pictures are tiled and written by :mod:`pgan_cli.imaging` (``make_grid``, ``save_png``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pgan_cli.errors import InputError, UsageError

CHUNK = 1024  # z and labels are drawn per chunk of this many rows, so batch size never changes them


def _chunk_generator(seed: int, chunk: int) -> torch.Generator:
    s = int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, chunk]).generate_state(1, np.uint64)[0])
    return torch.Generator().manual_seed(s & ((1 << 63) - 1))


def class_index(names: list[str] | None, num_classes: int, name: str) -> int:
    """The index of class ``name`` (a class name, or an integer index)."""
    if names and name in names:
        return names.index(name)
    if name.lstrip("-").isdigit() and 0 <= int(name) < num_classes:
        return int(name)
    known = ", ".join(names or [str(i) for i in range(num_classes)])
    raise InputError(f"--class {name!r} is not a class of this model; known classes: {known}")


def class_probabilities(ck, class_name: str | None = None, classes_from: str | os.PathLike | None = None,
                        uniform: bool = False) -> np.ndarray | None:
    """The class distribution to sample from: the training prior unless told otherwise."""
    chosen = sum(x is not None and x is not False for x in (class_name, classes_from, uniform or None))
    if not ck.conditional:
        if chosen:
            raise UsageError("--class, --classes-from and --uniform-classes need a conditional model "
                             "(trained with --conditional)")
        return None
    if chosen > 1:
        raise UsageError("use only one of --class, --classes-from and --uniform-classes")
    k = ck.num_classes
    if class_name is not None:
        p = np.zeros(k)
        p[class_index(ck.class_names, k, class_name)] = 1.0
        return p
    if uniform:
        return np.full(k, 1.0 / k)
    if classes_from is not None:
        from pgan_cli.dataset import Dataset

        with Dataset(classes_from, check_values=False) as ds:
            labels = ds.labels()
        if labels is None:
            raise InputError(f"--classes-from {classes_from} has no labels to take the class prior from")
        if labels.max() >= k:
            raise InputError(f"--classes-from {classes_from} has label {int(labels.max())}, but the model "
                             f"knows {k} classes")
        counts = np.bincount(labels, minlength=k).astype(np.float64)
        return counts / counts.sum()
    prior = ck.class_prior or [1.0 / k] * k
    return np.asarray(prior, dtype=np.float64) / np.sum(prior)


def generate(ck, n: int, seed: int = 0, batch_size: int = 256, probs: np.ndarray | None = None,
             progress: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray | None, np.ndarray]]:
    """Yield ``(samples, labels_or_None, latents)`` batches, ``n`` rows in all, in data space."""
    from pgan_cli import console

    if n <= 0:
        raise InputError(f"-n must be a positive number of samples, got {n}")
    if batch_size <= 0:
        raise InputError(f"--batch-size must be positive, got {batch_size}")
    chunks = range(0, n, CHUNK)
    it = console.progress(chunks, total=len(chunks), description="sample") if progress else chunks
    pt = None if probs is None else torch.tensor(probs, dtype=torch.float64)
    for start in it:
        m = min(CHUNK, n - start)
        g = _chunk_generator(seed, start // CHUNK)
        z = torch.randn(m, ck.latent_dim, generator=g)
        y = torch.multinomial(pt, m, replacement=True, generator=g) if pt is not None else None
        for a in range(0, m, batch_size):
            b = min(m, a + batch_size)
            with torch.no_grad():
                x = ck.generate(z[a:b], None if y is None else y[a:b]).cpu().numpy()
            if ck.kind == "images":
                np.clip(x, -1.0, 1.0, out=x)
            yield x.astype(np.float32), (None if y is None else y[a:b].numpy()), z[a:b].numpy()


def write_samples(ck, output: str | os.PathLike, n: int, seed: int = 0, batch_size: int = 256,
                  probs: np.ndarray | None = None, provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``n`` samples of checkpoint ``ck`` as a dataset file; return a summary."""
    from pgan_cli.dataset import DatasetWriter

    if n <= 0:
        raise InputError(f"-n must be a positive number of samples, got {n}")
    attrs = dict(ck.config.get("data_attrs") or {})
    if ck.config.get("audit_canaries"):
        attrs["audit_canaries"] = {k: ck.config["audit_canaries"].get(k) for k in ("m", "source", "seed")}
    from pgan_cli.gan.training.defaults import TRAINING_SETTINGS, augment_name

    settings = {k: ck.config.get(k) for k in TRAINING_SETTINGS if k in ck.config}
    if "augment" in settings:
        settings["augment"] = augment_name(settings["augment"])
    attrs["generator"] = {**settings, "checkpoint_sha256": ck.sha256, "data_sha256": ck.data_sha256,
                          "step": ck.step, "conditional": ck.conditional}
    counts = np.zeros(ck.num_classes, dtype=np.int64) if ck.conditional else None
    with DatasetWriter(output, n, ck.sample_shape, provenance=provenance or {}, kind=ck.kind,
                       with_labels=ck.conditional, class_names=ck.class_names, latent_dim=ck.latent_dim,
                       attrs=attrs) as w:
        for x, y, z in generate(ck, n, seed, batch_size, probs):
            w.write(x, labels=y, latents=z)
            if counts is not None:
                counts += np.bincount(y, minlength=ck.num_classes)
    from pgan_cli.provenance import shown_path

    out = {"output": shown_path(output), "n": int(n), "sample_shape": list(ck.sample_shape), "seed": seed,
           "checkpoint_sha256": ck.sha256, "data_sha256": ck.data_sha256}
    if counts is not None:
        names = ck.class_names or [str(i) for i in range(ck.num_classes)]
        out["label_counts"] = {names[i]: int(c) for i, c in enumerate(counts)}
    return out


# ---- pictures ----------------------------------------------------------------------------------
def save_scatter(path: str | os.PathLike, samples: np.ndarray, real: np.ndarray | None = None) -> Path:
    """A scatter plot of the first two coordinates of vector samples (real data in grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pgan_cli.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1 if real.shape[1] > 1 else 0], s=2, c="0.7", label="real")
    ax.scatter(samples[:, 0], samples[:, 1 if samples.shape[1] > 1 else 0], s=2, c="C1", label="synthetic")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="upper right", fontsize=7)
    with atomic_path(path, suffix=".png.tmp") as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def _slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    an, bn = a / a.norm(), b / b.norm()
    omega = torch.arccos((an * bn).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so)[:, None] * a + (torch.sin(t * omega) / so)[:, None] * b


def interpolation_grid(ck, seed: int = 0, rows: int = 8, steps: int = 10) -> np.ndarray:
    """Images of latent interpolation rows (and class-morph rows for conditional models).

    Unconditional: ``rows`` rows, each a spherical interpolation between two random latents.
    Conditional: the first half of the rows interpolates the latent with the class fixed; the
    second half holds z fixed and morphs the class embedding from class k to class k + 1.
    """
    if ck.kind != "images":
        raise UsageError("--interpolate draws image grids; this checkpoint generates vectors")
    if not (1 <= rows <= MAX_GRID_SIDE and 2 <= steps <= MAX_GRID_SIDE):
        raise InputError(f"--rows must be from 1 to {MAX_GRID_SIDE} and --steps from 2 to {MAX_GRID_SIDE}, "
                         f"got {rows} and {steps}")
    g = torch.Generator().manual_seed(int(seed))
    t = torch.linspace(0, 1, steps)
    gen = ck.generator
    n_lat = rows if not ck.conditional else max(1, rows // 2)
    images = []
    with torch.no_grad():
        for r in range(rows):
            z0, z1 = torch.randn(2, ck.latent_dim, generator=g)
            if r < n_lat:
                z = _slerp(z0, z1, t)
                labels = torch.full((steps,), r % ck.num_classes, dtype=torch.long) if ck.conditional else None
                images.append(ck.generate(z, labels))
            else:
                k = r - n_lat
                a, b = k % ck.num_classes, (k + 1) % ck.num_classes
                ea, eb = gen.embed_labels(torch.tensor([a, b], device=ck.device)).float()
                emb = (1 - t.to(ea.device))[:, None] * ea + t.to(ea.device)[:, None] * eb
                z = z0.expand(steps, -1).to(ck.device)
                images.append(ck.to_data_space(gen.from_embedding(z, emb).float()))
    x = torch.cat(images).clamp(-1, 1).cpu().numpy()
    from pgan_cli.imaging import make_grid

    return make_grid(x, ncol=steps, pad=1, background=0)


def training_provenance(ck) -> dict | None:
    """The provenance of the run that made a checkpoint (None when unreadable)."""
    import json

    raw = ck.raw.get("provenance")
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except (ValueError, RecursionError):
        return None


MAX_GRID_SIDE = 256  # --interpolate: rows and steps of the grid (a 256 x 256 grid is 65,536 images)


def _check_room(output, n: int, ck) -> None:
    """Refuse, before any work, ``n`` samples whose float32 values exceed the free space where the
    output goes (HDF5 writes them uncompressed)."""
    import shutil

    from pgan_cli.console import size_text
    from pgan_cli.files import nearest_existing

    need = n * int(np.prod(ck.config["sample_shape"], dtype=np.float64)) * 4
    folder = nearest_existing(Path(output).parent)
    free = shutil.disk_usage(folder).free
    if need > free:
        raise InputError(f"no space left on {os.path.realpath(folder)} for -n {n} samples: they need "
                         f"{size_text(need)} and it has {size_text(free)} free; ask for fewer samples")


def sample_file(checkpoint, output, n: int, *, class_name: str | None = None, classes_from=None,
                uniform_classes: bool = False, batch_size: int = 256, seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    """``pgan sample``: ``n`` samples of a checkpoint written as a dataset file; returns the summary
    the command prints (``--json``)."""
    from pgan_cli.gan.checkpoint import load_checkpoint
    from pgan_cli.files import check_input
    from pgan_cli.provenance import make_provenance

    check_input(checkpoint, "checkpoint")
    if classes_from is not None:
        check_input(classes_from, "dataset file")
    ck = load_checkpoint(checkpoint, device)
    if ck.config.get("audit_canaries"):
        from pgan_cli import console

        console.warn(f"{checkpoint} was trained with {ck.config['audit_canaries'].get('m')} audit canaries "
                     f"(pgan train --audit-canaries): its samples are for the privacy audit, not for release; "
                     f"the output records this (attribute audit_canaries)")
    _check_room(output, n, ck)
    probs = class_probabilities(ck, class_name, classes_from, uniform_classes)
    prov = make_provenance([checkpoint] + ([classes_from] if classes_from else []), seed=seed, device=device,
                           n=n, batch_size=batch_size, checkpoint_sha256=ck.sha256, data_sha256=ck.data_sha256,
                           class_name=class_name, uniform_classes=uniform_classes, arch=ck.config.get("arch"),
                           net=ck.config.get("net"), step=ck.step, training=training_provenance(ck))
    return write_samples(ck, output, n, seed=seed, batch_size=batch_size, probs=probs, provenance=prov)
