"""The training configuration: every option of ``pgan train`` resolved per architecture and data
kind (:func:`make_config`), and which options a resumed run may change (docs/train.md, "Resume")."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from pgan_cli.dataset import MANAGED_ATTRS
from pgan_cli.errors import UsageError
from pgan_cli.training import losses

ARCHS = losses.ARCHS
NETS = ("conv", "mlp")
PRECISIONS = ("fp32", "bf16", "fp16")
DEFAULT_EPOCHS = 20


def make_config(data, *, arch: str = "dcgan", net: str | None = None, norm: str | None = None,
                epochs: int | None = None, steps: int | None = None, batch_size: int = 64,
                lr_g: float | None = None, lr_d: float | None = None, n_critic: int | None = None,
                latent_dim: int = 100, width: int = 64, seed: int = 0, precision: str = "fp32",
                augment: bool = False, ema: bool = False, ema_decay: float = 0.999,
                conditional: bool = False, class_loss_weight: float = 1.0, class_balanced: bool = False,
                gp_weight: float | None = None, clip: float | None = None,
                data_sha256: str | None = None, data_path: str | None = None) -> dict[str, Any]:
    """Validate the options against the data and fill in the arch's published defaults.

    ``data`` is a :class:`pgan_cli.dataset.DataBundle`. Returns the plain-dict config stored in
    the checkpoint.
    """
    from pgan_cli.models.nets import NORMS, SIZES

    if arch not in ARCHS:
        raise UsageError(f"unknown --arch {arch!r}; choose one of {', '.join(ARCHS)}")
    d = losses.ARCH_DEFAULTS[arch]
    is_images = data.kind == "images"
    net = net or ("conv" if is_images else "mlp")
    if net not in NETS:
        raise UsageError(f"unknown --net {net!r}; choose one of {', '.join(NETS)}")
    shape = tuple(int(s) for s in data.samples.shape[1:])
    if net == "conv" and not is_images:
        raise UsageError(f"--net conv needs images, but the data holds vectors of shape {shape}; "
                         f"use --net mlp")
    if net == "conv" and (shape[1] != shape[2] or shape[1] not in SIZES):
        raise UsageError(f"--net conv needs square images of size 8, 16, ..., 256; got {shape[1]}x{shape[2]}; "
                         f"resize the data (e.g. `pgan data digits --size 32`) or use --net mlp")
    norm = norm or d["norm"]
    if norm not in NORMS:
        raise UsageError(f"unknown --norm {norm!r}; choose one of {', '.join(NORMS)}")
    if arch == "wgan-gp" and norm == "batchnorm":
        raise UsageError("--arch wgan-gp penalises per-sample gradients, which BatchNorm in the critic "
                         "breaks (Gulrajani et al. 2017); use --norm none or --norm groupnorm")
    if net == "mlp" and norm == "batchnorm" and arch != "dcgan":
        norm = "none"  # the seeds' fully connected WGAN critic had no normalisation
    if precision not in PRECISIONS:
        raise UsageError(f"unknown --precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if epochs is not None and steps is not None:
        raise UsageError("give --epochs or --steps, not both")
    if epochs is None and steps is None:
        epochs = DEFAULT_EPOCHS
    for name, value in (("--epochs", epochs), ("--steps", steps)):
        if value is not None and value <= 0:
            raise UsageError(f"{name} must be a positive number, got {value}")
    for name, value, lo in (("--batch-size", batch_size, 1), ("--latent-dim", latent_dim, 1), ("--width", width, 1)):
        if value < lo:
            raise UsageError(f"{name} must be at least {lo}, got {value}")
    n_critic = d["n_critic"] if n_critic is None else n_critic
    if n_critic < 1:
        raise UsageError(f"--n-critic must be at least 1, got {n_critic}")
    lr_g = d["lr_g"] if lr_g is None else lr_g
    lr_d = d["lr_d"] if lr_d is None else lr_d
    for name, value in (("--lr-g", lr_g), ("--lr-d", lr_d)):
        if not (value > 0 and math.isfinite(value)):
            raise UsageError(f"{name} must be a positive number, got {value}")
    if not 0.0 <= ema_decay < 1.0:
        raise UsageError(f"--ema-decay must be in [0, 1), got {ema_decay}")
    if augment and not is_images:
        raise UsageError("--augment applies to images; the data holds vectors")
    num_classes = data.num_classes or 0
    prior = None
    if conditional:
        if data.labels is None:
            raise UsageError(f"--conditional needs labels, but {data.path} has none; drop --conditional "
                             f"or import the data with labels")
        if num_classes < 2:
            raise UsageError(f"--conditional needs at least 2 classes, {data.path} has {num_classes}")
        counts = np.bincount(data.labels, minlength=num_classes)
        prior = (counts / counts.sum()).tolist()
    for name, value in (("--gp-weight", gp_weight), ("--clip", clip)):
        if value is not None and not (value >= 0 and math.isfinite(value)):
            raise UsageError(f"{name} must be a non-negative number, got {value}")
    if class_loss_weight < 0:
        raise UsageError(f"--class-loss-weight must be >= 0, got {class_loss_weight}")
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
        "class_loss_weight": float(class_loss_weight), "class_balanced": bool(class_balanced),
        "epochs": epochs, "steps": steps, "batch_size": int(batch_size), "n_critic": int(n_critic),
        "optimizer": d["optimizer"], "lr_g": float(lr_g), "lr_d": float(lr_d),
        "betas": list(d["betas"]) if d["betas"] else None,
        "gp_weight": float(gp_weight if gp_weight is not None else d.get("gp_weight", 0.0)),
        "clip": float(clip if clip is not None else d.get("clip", 0.0)),
        "seed": int(seed), "precision": precision, "augment": bool(augment), "ema": bool(ema),
        "ema_decay": float(ema_decay), "data_scaling": scaling, "data_sha256": data_sha256,
        "data_path": data_path, "data_n": int(data.n), "data_attrs": attrs,
    }


# ---- distributed helpers ---------------------------------------------------------------------------


# options that define the model or the training: (flag, where the checkpoint's config keeps the value)
RESUME_FIXED = {
    "arch": ("--arch", "arch"), "net": ("--net", "net"), "norm": ("--norm", "norm"),
    "conditional": ("--conditional", "conditional"), "class_loss_weight": ("--class-loss-weight", "class_loss_weight"),
    "class_balanced": ("--class-balanced", "class_balanced"), "batch_size": ("--batch-size", "batch_size"),
    "lr_g": ("--lr-g", "lr_g"), "lr_d": ("--lr-d", "lr_d"), "n_critic": ("--n-critic", "n_critic"),
    "gp_weight": ("--gp-weight", "gp_weight"), "clip": ("--clip", "clip"), "latent_dim": ("--latent-dim", "latent_dim"),
    "width": ("--width", "width"), "precision": ("--precision", "precision"), "augment": ("--augment", "augment"),
    "ema": ("--ema", "ema"), "ema_decay": ("--ema-decay", "ema_decay"), "seed": ("--seed", "seed"),
    "dp_epsilon": ("--dp-epsilon", "target_epsilon"), "dp_delta": ("--dp-delta", "delta"),
    "max_grad_norm": ("--max-grad-norm", "max_grad_norm"),
}
RESUME_FREE = ("epochs", "steps")  # new totals: how a resumed run trains longer


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
    value differs from the checkpoint's ``config``, one phrase each.

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
        flag, key = RESUME_FIXED[name]
        if name.startswith("dp_") or name == "max_grad_norm":
            if dp is None:
                if value is not None:
                    out.append(f"{flag} {_shown(value)} differs from the checkpoint's none (trained without DP: "
                               f"its earlier steps are not private)")
                continue
            stored = dp.get(key)
        else:
            stored = config.get(key)
        if value is None:  # "the default": nothing asked for
            continue
        if name == "norm":
            # the stored norm is the effective one: batchnorm becomes none in an mlp WGAN critic
            # (make_config) and groupnorm under DP-SGD (dpsgd); the run was started with batchnorm
            replaced = config.get("dp_norm_replaced") or (
                "batchnorm -> none" if config.get("net") == "mlp" and config.get("arch") != "dcgan" else "")
            if value == "batchnorm" and replaced.startswith("batchnorm ->"):
                continue
        if not _same(value, stored):
            out.append(f"{flag} {_shown(value)} differs from the checkpoint's {_shown(stored)}")
    return out


def check_resume_options(config: dict[str, Any], given: dict[str, Any], resume: str | os.PathLike) -> None:
    """Raise :class:`UsageError` naming every option of ``given`` that differs from the checkpoint."""
    bad = resume_conflicts(config, given)
    if bad:
        raise UsageError(f"resuming {resume}: " + "; ".join(bad)
                         + f"; drop {'it' if len(bad) == 1 else 'them'} or start a new run")
