"""The training configuration: every option of ``pgan train`` resolved per architecture and data
kind (:func:`make_config`), and which options a resumed run may change (docs/train.md, "Resume")."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from pgan_cli.gan.checkpoint import MAX_LATENT_DIM, MAX_WIDTH, finite_weights
from pgan_cli.dataset import MANAGED_ATTRS
from pgan_cli.errors import FormatError, InputError
from pgan_cli.params import SEED, Interval, OptionError, Optional_, Options, constrained
from pgan_cli.gan.training import defaults
from pgan_cli.gan.training.defaults import ARCH_DEFAULTS, ARCHS, AUGMENTS, NETS, NORMS, PRECISIONS, augment_name

POSITIVE = Interval(1, None)
COUNT = Interval(0, None)
RATE = Interval(0.0, None, real=True, low_open=True)
NON_NEGATIVE = Interval(0.0, None, real=True)


@constrained(arch=Options(ARCHS), net=Optional_(Options(NETS)), norm=Optional_(Options(NORMS)),
             epochs=Optional_(POSITIVE), steps=Optional_(POSITIVE), batch_size=Optional_(POSITIVE),
             lr_g=Optional_(RATE), lr_d=Optional_(RATE), n_critic=Optional_(POSITIVE),
             latent_dim=Interval(1, MAX_LATENT_DIM), width=Interval(1, MAX_WIDTH), precision=Options(PRECISIONS),
             ema_decay=Interval(0.0, 1.0, real=True, high_open=True), class_loss_weight=Optional_(NON_NEGATIVE),
             gp_weight=Optional_(NON_NEGATIVE), clip=Optional_(NON_NEGATIVE), augment=Optional_(Options(AUGMENTS)),
             r1=NON_NEGATIVE)
def make_config(data, *, arch: str = defaults.DEFAULT_ARCH, net: str | None = None, norm: str | None = None,
                epochs: int | None = None, steps: int | None = None,
                batch_size: int | None = None, lr_g: float | None = None,
                lr_d: float | None = None, n_critic: int | None = None,
                latent_dim: int = defaults.DEFAULT_LATENT_DIM, width: int = defaults.DEFAULT_WIDTH,
                seed: int = 0, precision: str = defaults.DEFAULT_PRECISION, augment: str | None = None,
                ema: bool = defaults.DEFAULT_EMA, ema_decay: float = defaults.DEFAULT_EMA_DECAY,
                r1: float = defaults.DEFAULT_R1, conditional: bool = False,
                class_loss_weight: float | None = None, class_balanced: bool = False,
                gp_weight: float | None = None, clip: float | None = None,
                data_sha256: str | None = None, data_path: str | None = None) -> dict[str, Any]:
    """Validate the options against the data and fill in the arch's published defaults
    (:mod:`pgan_cli.gan.training.defaults`; None means "the arch's default").

    ``data`` is a :class:`pgan_cli.dataset.DataBundle`. Returns the plain-dict config stored in
    the checkpoint.
    """
    from pgan_cli.gan.models.nets import SIZES

    arch, precision = arch.lower(), precision.lower()
    net, norm = net and net.lower(), norm and norm.lower()
    d = ARCH_DEFAULTS[arch]
    is_images = data.kind == "images"
    net = net or ("conv" if is_images else "mlp")
    shape = tuple(int(s) for s in data.samples.shape[1:])
    if net == "conv" and not is_images:
        raise OptionError(f"$net conv needs images, but the data holds vectors of shape {shape}; use $net mlp", "net")
    if net == "conv" and (shape[1] != shape[2] or shape[1] not in SIZES):
        raise OptionError(f"$net conv needs square images of size 8, 16, ..., 256; got {shape[1]}x{shape[2]}; "
                          f"resize the data (e.g. `pgan data digits --size 32`) or use $net mlp", "net")
    norm = norm or d["norm"]
    if arch == "wgan-gp" and norm == "batchnorm":
        raise OptionError("$arch wgan-gp penalises per-sample gradients, which BatchNorm in the critic "
                          "breaks (Gulrajani et al. 2017); use $norm none or $norm groupnorm", "arch", "norm")
    if net == "mlp" and norm == "batchnorm" and arch != "dcgan":
        norm = "none"  # a fully connected WGAN critic without normalisation (Arjovsky et al. 2017)
    if epochs is not None and steps is not None:
        raise OptionError("give $epochs or $steps, not both", "epochs", "steps")
    if epochs is None and steps is None:
        epochs = defaults.DEFAULT_EPOCHS
    n_critic = d["n_critic"] if n_critic is None else n_critic
    lr_g = d["lr_g"] if lr_g is None else lr_g
    lr_d = d["lr_d"] if lr_d is None else lr_d
    kind_d = defaults.kind_defaults(arch, data.kind)
    batch_size = kind_d.get("batch_size", defaults.DEFAULT_BATCH_SIZE) if batch_size is None else batch_size
    augment = kind_d["augment"] if augment is None else augment.lower()
    if augment != "none" and not is_images:
        raise OptionError(f"$augment {augment} transforms images; the data holds vectors (use $augment none)",
                          "augment")
    if augment == "ada" and arch in ("wgan", "wgan-gp"):
        raise OptionError("$augment ada tunes itself by the sign of D(real), which a Wasserstein critic's "
                          "output has no meaning for (Karras et al. 2020); use $augment diffaug", "augment", "arch")
    if norm == "spectral" and arch == "wgan":
        raise OptionError("$arch wgan clips D's weights, which spectral normalisation rescales; use $arch sngan "
                          "or another $norm", "arch", "norm")
    num_classes = data.num_classes or 0
    prior = None
    if conditional:
        if data.labels is None:
            raise OptionError(f"$conditional needs labels, but {OptionError.literal(data.path)} has none; drop $conditional "
                              f"or import the data with labels", "conditional")
        if num_classes < 2:
            raise OptionError(f"$conditional needs at least 2 classes, {OptionError.literal(data.path)} has {num_classes}",
                              "conditional")
        counts = np.bincount(data.labels, minlength=num_classes)
        prior = (counts / counts.sum()).tolist()
    if is_images:
        scaling = {"kind": "none", "range": [-1.0, 1.0]}
    else:
        x = data.samples.astype(np.float64)
        mean, std = x.mean(axis=0), x.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)
        scaling = {"kind": "standardize", "mean": mean.tolist(), "std": std.tolist()}
    attrs = {k: v for k, v in (data.attrs or {}).items() if k not in MANAGED_ATTRS}
    return {
        "arch": arch, "net": net, "norm": norm, "kind": data.kind, "sample_shape": list(shape),
        "latent_dim": int(latent_dim), "width": int(width), "conditional": bool(conditional),
        "num_classes": int(num_classes), "class_names": data.class_names, "class_prior": prior,
        "class_loss_weight": float(d["class_loss_weight"] if class_loss_weight is None else class_loss_weight),
        "class_balanced": bool(class_balanced),
        "epochs": epochs, "steps": steps, "batch_size": int(batch_size), "n_critic": int(n_critic),
        "optimizer": d["optimizer"], "lr_g": float(lr_g), "lr_d": float(lr_d),
        "betas": list(d["betas"]) if d["betas"] else None,
        "gp_weight": float(gp_weight if gp_weight is not None else kind_d.get("gp_weight", 0.0)),
        "clip": float(clip if clip is not None else d.get("clip", 0.0)),
        "seed": int(seed), "precision": precision, "augment": augment, "r1": float(r1),
        "r1_every": defaults.R1_EVERY, "ema": bool(ema), "ema_decay": float(ema_decay), "data_scaling": scaling, "data_sha256": data_sha256,
        "data_path": data_path, "data_n": int(data.n), "data_attrs": attrs,
    }


def check_resumable(blob: dict[str, Any], path: str | os.PathLike) -> None:
    """What a resumed run takes from a checkpoint, checked as ``pgan train`` checks its options
    (:func:`make_config`'s constraints, the same objects) before anything is built: a tampered
    checkpoint is refused, not trained on and written back."""
    import torch

    config = blob["config"]

    def fail(what: str) -> None:
        raise FormatError(f"{path}: the checkpoint's {what}; use a checkpoint written by `pgan train`")

    for name, constraint in make_config.constraints.items():  # type: ignore[attr-defined]
        if not constraint.holds(config.get(name)):
            fail(f"config has {name} = {config.get(name)!r}, not {constraint.describe()}")
    for name in ("ema", "conditional", "class_balanced"):
        if not isinstance(config.get(name), bool):
            fail(f"config has {name} = {config.get(name)!r}, not true or false")
    for name, constraint in (("seed", SEED), ("r1_every", POSITIVE)):
        if not constraint.holds(config.get(name)):
            fail(f"config has {name} = {config.get(name)!r}, not {constraint.describe()}")
    progress = blob.get("progress") or {}
    if not isinstance(progress, dict):
        fail("progress record is not a mapping")
    for name, constraint, what in (("step", COUNT, "a count"), ("epoch", COUNT, "a count"),
                                   ("batch", COUNT, "a count"), ("d_steps", COUNT, "a count"),
                                   ("wall_time", NON_NEGATIVE, "a duration")):
        if not constraint.holds(progress.get(name, 0)):
            fail(f"progress has {name} = {progress.get(name)!r}, not {what}")
    for name in ("optimizer_g", "optimizer_d", "rng"):  # the state a resumed run continues from
        if not isinstance(blob.get(name), dict) or not blob[name]:
            fail(f"{name} record is {'missing' if blob.get(name) is None else 'not a saved state'}")
    for net in ("generator", "discriminator", "generator_ema"):
        state = blob.get(net)
        if state is None and net == "generator_ema":
            continue
        if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
            fail(f"{net} is not a set of weights")
        if not finite_weights(state.values()):
            fail(f"{net} has NaN or Inf weights (a diverged run)")


# options that define the model or the training: {parameter: where the checkpoint's config keeps it}
RESUME_FIXED = {
    "arch": "arch", "net": "net", "norm": "norm", "conditional": "conditional",
    "class_loss_weight": "class_loss_weight", "class_balanced": "class_balanced", "batch_size": "batch_size",
    "lr_g": "lr_g", "lr_d": "lr_d", "n_critic": "n_critic", "gp_weight": "gp_weight", "clip": "clip",
    "latent_dim": "latent_dim", "width": "width", "precision": "precision", "augment": "augment",
    "r1": "r1", "ema": "ema", "ema_decay": "ema_decay", "seed": "seed",
    # DP-SGD: kept in the config's "dp" record
    "dp_epsilon": "target_epsilon", "dp_delta": "delta", "max_grad_norm": "max_grad_norm",
}
RESUME_FREE = ("epochs", "steps")  # new totals: how a resumed run trains longer
DP_OPTIONS = ("dp_epsilon", "dp_delta", "max_grad_norm")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    return a == b


def _shown(v: Any) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, float):
        return f"{v:g}"
    return "none" if v is None else str(v)


def resume_conflicts(config: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """The options in ``given`` (``make_config`` / DP keyword names: what the user asked for) whose
    value differs from the checkpoint's ``config``, one phrase each, naming the option as
    ``$name`` (an :class:`~pgan_cli.params.OptionError` template).

    A resumed run is the saved run continued (``docs/train.md``, Resume): its model and its
    optimisation come from the checkpoint, so an option that would change them is refused rather
    than silently ignored or half-applied; ``epochs``/``steps`` are free.
    """
    out = []
    dp = config.get("dp") if isinstance(config.get("dp"), dict) else None
    for name, value in given.items():
        if name in RESUME_FREE:
            continue
        if name not in RESUME_FIXED:
            raise TypeError(f"unknown training option {name!r}")
        key = RESUME_FIXED[name]
        if name in DP_OPTIONS:
            if dp is None:
                if value is not None:
                    out.append(f"${name} {_shown(value)} differs from the checkpoint's none (trained without DP: "
                               f"its earlier steps are not private)")
                continue
            stored = dp.get(key)
        else:
            stored = config.get(key)
            if name == "augment":
                stored = augment_name(stored)
            elif name == "r1":
                stored = config.get(key, 0.0)  # checkpoints from before --r1 trained without it
        if value is None:  # "the default": nothing asked for
            continue
        if name == "norm":
            # the stored norm is the effective one: batchnorm becomes none in an mlp WGAN critic
            # (make_config) and groupnorm under DP-SGD (dpsgd); the run was started with batchnorm
            replaced = config.get("dp_norm_replaced") or (
                "batchnorm -> none" if config.get("net") == "mlp" and config.get("arch") != "dcgan" else "")
            if value == replaced.split(" ->")[0] and replaced:
                continue
        if not _same(value, stored):
            out.append(f"${name} {_shown(value)} differs from the checkpoint's {_shown(stored)}")
    return out


def check_resume_options(config: dict[str, Any], given: dict[str, Any], resume: str | os.PathLike) -> None:
    """Raise :class:`OptionError` naming every option of ``given`` that differs from the checkpoint."""
    bad = resume_conflicts(config, given)
    if bad:
        raise OptionError(f"resuming {OptionError.literal(resume)}: " + "; ".join(bad)
                          + f"; drop {'it' if len(bad) == 1 else 'them'} or start a new run", *RESUME_FIXED)


# BatchNorm1d normalises each feature by its variance over the batch in training (Ioffe &
# Szegedy 2015), which one row does not have; the fully connected critic with $norm batchnorm
# has it (its conv layers' BatchNorm2d also average over the 4x4 positions, so one row is enough)
BATCH_NORM_MIN_ROWS = 2


def batch_per_process(batch_size: int, n: int, world: int, minimum: int = 1) -> int:
    """Rows per batch in each of ``world`` processes: ``batch_size`` split, capped by the data's
    ``n`` rows; refused below ``minimum`` (:data:`BATCH_NORM_MIN_ROWS` for batch norm over features)."""
    per_rank, local_n = batch_size // world, n // world
    if per_rank < 1:
        raise OptionError(f"$batch_size {batch_size} is smaller than the {world} processes", "batch_size")
    if local_n < 1:
        raise InputError(f"{n} training samples cannot be shared by {world} processes")
    if min(per_rank, local_n) >= minimum:
        return min(per_rank, local_n)
    each = " per process" if world > 1 else ""
    why = (f"the critic's batch norm needs at least {minimum} rows per batch{each} (a variance over the "
           f"batch)")
    if per_rank < minimum:
        raise OptionError(f"$batch_size {batch_size} is too small: {why}; raise it or use $norm groupnorm",
                          "batch_size", "norm")
    raise InputError(f"{n} training sample{'s are' if n != 1 else ' is'} too few: {why}; give more rows or "
                     f"use --norm groupnorm")
