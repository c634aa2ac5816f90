"""The pgan checkpoint file (``gen.pt``): save atomically, load safely with ``weights_only=True``.

API (used by ``pgan sample``, the white-box attacks, embeddings and DP training)::

    from pgan_cli.gan.checkpoint import load_checkpoint, save_checkpoint
    ck = load_checkpoint("gen.pt", device="cpu")
    ck.config            # plain dict: arch, net, norm, latent_dim, width, sample_shape, kind,
                         #   num_classes, class_names, class_prior, data_scaling, data_sha256, ...
    ck.generator         # nn.Module in eval mode (EMA weights when trained with --ema)
    ck.discriminator     # nn.Module in eval mode; forward(x) -> (logit, class_logits|None),
                         #   features(x) -> (N, F) penultimate features (inputs in MODEL space)
    ck.latent_dim, ck.num_classes, ck.class_names, ck.sample_shape, ck.data_scaling
    x = ck.generate(z, labels=None)        # differentiable; returns samples in DATA space
    s = ck.discriminate(x_data)            # D logit of data-space inputs (scaling applied)
    f = ck.features(x_data)                # D penultimate features of data-space inputs
    y = ck.sample_labels(n, generator)     # classes drawn from the training prior

File layout (a dict of tensors, dicts, lists, str/int/float/bool/None only, so
``torch.load(path, weights_only=True)`` reads it): ``format`` = "pgan-checkpoint",
``format_version`` (1), ``pgan_version``, ``config`` (JSON string), ``generator``,
``discriminator``, ``generator_ema`` (state dicts, or None), ``optimizer_g``, ``optimizer_d``,
``progress`` (step, epoch, batch, d_steps, finished), ``rng`` (torch/numpy/python states as
tensors), ``data_sha256``, ``provenance`` (JSON string).

Data scaling: image data is used as stored ([-1, 1], tanh output). Vector data is standardised
for training, ``data_scaling = {"kind": "standardize", "mean": [...], "std": [...]}``;
:meth:`Checkpoint.generate` undoes it so samples come out in the input's space.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pgan_cli import __version__, formats
from pgan_cli.errors import FormatError, InputError
from pgan_cli.atomic import OutputFile, atomic_path
from pgan_cli.files import check_input, sha256_file

CHECKPOINT_FORMAT = formats.CHECKPOINT
MAX_LATENT_DIM, MAX_WIDTH = 1 << 16, 1 << 14  # the config's bounds, also pgan train's option bounds
CHECKPOINT_VERSION = 1


# ---- helpers -------------------------------------------------------------------------------
def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside DDP / Opacus / torch.compile wrappers."""
    for attr in ("module", "_module", "_orig_mod"):
        while hasattr(module, attr) and isinstance(getattr(module, attr), nn.Module):
            module = getattr(module, attr)
    return module


def state_dict_cpu(module: nn.Module | None) -> dict[str, torch.Tensor] | None:
    """A detached CPU copy of a module's state dict (wrappers removed)."""
    if module is None:
        return None
    return {k: v.detach().cpu().clone() for k, v in unwrap(module).state_dict().items()}


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def get_rng_state() -> dict[str, Any]:
    """torch, CUDA, numpy and Python RNG states as tensors and plain values."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": int(py_state[0]), "state": torch.tensor(py_state[1], dtype=torch.int64),
                   "gauss_next": py_state[2]},
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states saved by :func:`get_rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss_next"]))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])


def save_checkpoint(path: str | os.PathLike, *, config: dict[str, Any], generator: nn.Module,
                    discriminator: nn.Module, generator_ema: nn.Module | None = None,
                    optimizer_g: torch.optim.Optimizer | None = None,
                    optimizer_d: torch.optim.Optimizer | None = None,
                    progress: dict[str, Any] | None = None, rng: dict[str, Any] | None = None,
                    provenance: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (temporary file + rename): never half-written on disk.

    ``extra`` holds additional weights_only-safe entries (e.g. a DP accountant's state).
    """
    blob = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "pgan_version": __version__,
        "config": json.dumps(config, sort_keys=True),
        "generator": state_dict_cpu(generator),
        "discriminator": state_dict_cpu(discriminator),
        "generator_ema": state_dict_cpu(generator_ema),
        "optimizer_g": _to_cpu(optimizer_g.state_dict()) if optimizer_g is not None else None,
        "optimizer_d": _to_cpu(optimizer_d.state_dict()) if optimizer_d is not None else None,
        "progress": dict(progress or {}),
        "rng": rng if rng is not None else get_rng_state(),
        "data_sha256": config.get("data_sha256"),
        "provenance": json.dumps(provenance or {}, sort_keys=True, default=str),
        "extra": _to_cpu(extra or {}),
    }
    with atomic_path(path, suffix=".pt.tmp") as tmp, OutputFile(tmp, "w") as f:
        torch.save(blob, f)
    return Path(path)


def read_checkpoint_file(path: str | os.PathLike, device: str = "cpu") -> dict[str, Any]:
    """Load the raw checkpoint dict with ``weights_only=True``, refusing files pgan did not write."""
    p = check_input(path, "checkpoint")
    if not zipfile.is_zipfile(p):
        raise FormatError(f"{p} is not a readable checkpoint (not a torch zip archive: corrupt, truncated "
                          f"or another format); use a checkpoint written by `pgan train`")
    try:
        blob = torch.load(p, map_location=device, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsafe content"
        raise FormatError(f"{p} holds Python objects that pgan will not unpickle ({first[:120]}); "
                          f"only checkpoints written by `pgan train` can be loaded") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError) as e:
        msg = " ".join(str(e).split())[:120]
        raise FormatError(f"{p} is not a readable checkpoint (corrupt or truncated: {msg}); "
                          f"use a checkpoint written by `pgan train`") from None
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        what = "a bare state_dict" if isinstance(blob, dict) and blob and all(
            isinstance(v, torch.Tensor) for v in blob.values()) else "not a pgan checkpoint"
        raise FormatError(f"{p} is {what} (no 'format: {CHECKPOINT_FORMAT}' entry); pgan needs the "
                          f"full checkpoint written by `pgan train`")
    version = blob.get("format_version")
    if version != CHECKPOINT_VERSION:
        raise FormatError(f"{p} has checkpoint format_version {version}; pgan {__version__} reads "
                          f"version {CHECKPOINT_VERSION}; upgrade pgan")
    for key in ("config", "generator", "discriminator"):
        if blob.get(key) is None:
            raise FormatError(f"{p} has no '{key}' entry; the checkpoint is incomplete")
    try:
        blob["config"] = json.loads(blob["config"]) if isinstance(blob["config"], str) else dict(blob["config"])
    except (json.JSONDecodeError, TypeError, ValueError, RecursionError) as e:
        raise FormatError(f"{p}: the checkpoint's config is not valid JSON ({' '.join(str(e).split())[:80]})") from None
    check_config(blob["config"], p)
    return blob


def check_config(config: Any, path: Path) -> None:
    """The types and ranges of a checkpoint's config, checked before any network is built."""

    def fail(what: str) -> None:
        raise FormatError(f"{path}: the checkpoint's config {what}; use a checkpoint written by `pgan train`")

    def is_int(v: Any, lo: int, hi: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi

    if not isinstance(config, dict):
        fail(f"is a {type(config).__name__}, not a mapping")
    for key in ("net", "arch"):
        if key in config and not isinstance(config[key], str):
            fail(f"has {key} = {config[key]!r}, not a name")
    shape = config.get("sample_shape")
    if (not isinstance(shape, list) or len(shape) not in (1, 3) or not all(is_int(d, 1, 1 << 16) for d in shape)
            or int(np.prod(shape, dtype=np.float64)) > (64 << 20)):
        fail(f"has sample_shape = {shape!r}, not 1 or 3 positive sizes of at most 64 Mi values")
    for key, hi in (("latent_dim", MAX_LATENT_DIM), ("width", MAX_WIDTH)):
        if not is_int(config.get(key), 1, hi):
            fail(f"has {key} = {config.get(key)!r}, not an integer in 1..{hi}")
    if "conditional" in config and not isinstance(config["conditional"], bool):
        fail(f"has conditional = {config['conditional']!r}, not true or false")
    k = config.get("num_classes")
    if k is not None and not is_int(k, 0, 1 << 20):
        fail(f"has num_classes = {k!r}, not a count")
    names = config.get("class_names")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        fail("has class_names that are not a list of names")
    prior = config.get("class_prior")
    if prior is not None and (not isinstance(prior, list)
                              or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                         and np.isfinite(v) and v >= 0 for v in prior)
                              or (k is not None and config.get("conditional") and len(prior) != k)):
        fail("has a class_prior that is not one non-negative number per class")
    sc = config.get("data_scaling")
    if sc is not None and not isinstance(sc, dict):
        fail("has a data_scaling that is not a mapping")
    from pgan_cli.gan import canaries

    if canaries.CONFIG_KEY in config:  # checked before any canary is drawn, read or scored
        canaries.check_record(config[canaries.CONFIG_KEY], config, str(path))


# ---- the loaded checkpoint -------------------------------------------------------------------
@dataclass
class Checkpoint:
    """A loaded checkpoint: config, networks in eval mode, and data-space helpers."""

    path: Path
    config: dict[str, Any]
    generator: nn.Module
    discriminator: nn.Module
    device: str = "cpu"
    progress: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def latent_dim(self) -> int:
        return int(self.config["latent_dim"])

    @property
    def num_classes(self) -> int:
        return int(self.config.get("num_classes") or 0) if self.config.get("conditional") else 0

    @property
    def conditional(self) -> bool:
        return bool(self.config.get("conditional"))

    @property
    def class_names(self) -> list[str] | None:
        return self.config.get("class_names")

    @property
    def class_prior(self) -> list[float] | None:
        return self.config.get("class_prior")

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.config["sample_shape"])

    @property
    def kind(self) -> str:
        return self.config.get("kind", "images" if len(self.sample_shape) == 3 else "vectors")

    @property
    def data_scaling(self) -> dict[str, Any]:
        return self.config.get("data_scaling") or {"kind": "none"}

    @property
    def data_sha256(self) -> str | None:
        return self.config.get("data_sha256")

    @property
    def sha256(self) -> str:
        return sha256_file(self.path)

    @property
    def step(self) -> int:
        return int(self.progress.get("step", 0))

    def _scale_tensors(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        sc = self.data_scaling
        if sc.get("kind") != "standardize":
            return None
        mean = torch.tensor(sc["mean"], dtype=like.dtype, device=like.device).reshape(self.sample_shape)
        std = torch.tensor(sc["std"], dtype=like.dtype, device=like.device).reshape(self.sample_shape)
        return mean, std

    def to_data_space(self, x: torch.Tensor) -> torch.Tensor:
        """Model output -> data space (undo standardisation for vectors)."""
        ms = self._scale_tensors(x)
        return x if ms is None else x * ms[1] + ms[0]

    def to_model_space(self, x: torch.Tensor) -> torch.Tensor:
        """Data space -> the space the networks work in (standardise vectors)."""
        ms = self._scale_tensors(x)
        return x if ms is None else (x - ms[0]) / ms[1]

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """G(z, labels) in data space; differentiable in z (wrap in ``torch.no_grad()`` to sample).

        Conditional models need ``labels`` (int64, shape (N,)); unconditional ones ignore them.
        """
        z = z.to(self.device, torch.float32)
        if self.conditional:
            if labels is None:
                raise ValueError("this checkpoint is conditional: pass labels (see sample_labels)")
            out = self.generator(z, labels.to(self.device, torch.long))
        else:
            out = self.generator(z)
        return self.to_data_space(out.float())

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """The discriminator's logit (critic value for WGANs) of data-space inputs, shape (N,)."""
        x = self.to_model_space(torch.as_tensor(x, dtype=torch.float32, device=self.device))
        return self.discriminator(x.reshape(len(x), *self.sample_shape))[0].float()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The discriminator's penultimate features of data-space inputs, shape (N, F)."""
        x = self.to_model_space(torch.as_tensor(x, dtype=torch.float32, device=self.device))
        return self.discriminator.features(x.reshape(len(x), *self.sample_shape)).float()

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """``n`` classes drawn from the training class prior (None for unconditional models)."""
        if not self.conditional:
            return None
        prior = torch.tensor(self.class_prior or [1.0] * self.num_classes, dtype=torch.float64)
        return torch.multinomial(prior, n, replacement=True, generator=generator)


def build_networks(config: dict[str, Any]) -> tuple[nn.Module, nn.Module]:
    """Fresh generator and discriminator for a checkpoint/training config."""
    from pgan_cli.gan.models.nets import build_discriminator, build_generator

    k = int(config.get("num_classes") or 0) if config.get("conditional") else 0
    shape = tuple(int(d) for d in config["sample_shape"])
    g = build_generator(config["net"], int(config["latent_dim"]), shape, int(config["width"]), k)
    d = build_discriminator(config["net"], shape, int(config["width"]), config.get("norm", "none"), k)
    return g, d


TRAINING_COPIES = 5  # float32 copies of the weights training holds: weights, gradients, Adam's two moments, EMA


def finite_weights(tensors) -> bool:
    """Whether every floating-point tensor (parameters or a state dict's values) is finite."""
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


def network_parameters(config: dict[str, Any]) -> int:
    """The parameters of a config's generator and discriminator, counted on torch's meta device
    (nothing is allocated, so a huge --width is measured, not attempted)."""
    with torch.device("meta"):
        g, d = build_networks(config)
    return sum(p.numel() for m in (g, d) for p in m.parameters())


def check_model_fits(config: dict[str, Any]) -> None:
    """Refuse, before anything is built, a model whose training state alone exceeds this machine's
    memory (the kernel would kill the process instead of raising)."""
    n = network_parameters(config)
    need = n * 4 * TRAINING_COPIES
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if need > total:
        from pgan_cli.console import size_text

        raise InputError(f"the model has {n / 1e6:,.0f} M parameters: training it needs about "
                         f"{size_text(need)} for its weights, gradients and optimiser state, more than "
                         f"this machine's {size_text(total)}; lower --width or --latent-dim")


def load_checkpoint(path: str | os.PathLike, device: str = "cpu") -> Checkpoint:
    """Load a checkpoint written by ``pgan train`` (``weights_only=True``) onto ``device``.

    The generator carries the EMA weights when the run used ``--ema``. Both networks are in
    eval mode. Raises :class:`~pgan_cli.errors.FormatError` for files pgan did not write,
    corrupt or truncated files, and configs that do not match the stored weights.
    """
    p = Path(path)
    blob = read_checkpoint_file(p, device="cpu")
    config = blob["config"]
    try:
        g, d = build_networks(config)
        g.load_state_dict(blob.get("generator_ema") or blob["generator"])
        d.load_state_dict(blob["discriminator"])
    except (KeyError, ValueError, RuntimeError, TypeError) as e:
        msg = " ".join(str(e).split())[:160]
        raise FormatError(f"{p}: the stored weights do not match the checkpoint's config ({msg})") from None
    g.to(device).eval()
    d.to(device).eval()
    return Checkpoint(path=p, config=config, generator=g, discriminator=d, device=device,
                      progress=dict(blob.get("progress") or {}), raw=blob)
