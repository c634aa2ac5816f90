"""The attack contract and registry.

An attack is an object with

- ``name`` (the ``--methods`` name), ``requires`` (the inputs it needs among
  :data:`SYNTHETIC`, :data:`REFERENCE`, :data:`GENERATOR`, :data:`REFERENCE_GENERATOR`),
  ``optional`` (inputs it uses when given), ``citation`` and ``summary``;
- ``fit(inputs: AttackInputs) -> self``;
- ``score(candidates: np.ndarray) -> np.ndarray`` of one float per candidate row, oriented so
  that higher means "more likely a member" (docs/attacks.md);
- optionally ``targets(candidates, truth)``: the rows it scores, for attacks whose cost grows
  with every candidate (shadow modelling scores a few chosen targets; the suite evaluates it over
  them), ``details()``: one JSON object per scored row, and ``only_by_name``: the reason
  ``--methods all`` leaves it out (it must be named).

Register one with ``@register``; :func:`get_attack` builds it by name, :func:`plan` tells which
attacks can run on the inputs given and why others cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from pgan_cli.errors import InputError, UsageError
from pgan_cli.attacks.cache import NeighborCache

SYNTHETIC = "synthetic"
REFERENCE = "reference"
GENERATOR = "generator"
REFERENCE_GENERATOR = "reference_generator"
INPUT_OPTIONS = {SYNTHETIC: "--synthetic", REFERENCE: "--reference", GENERATOR: "--generator",
                 REFERENCE_GENERATOR: "--reference-generator"}


@dataclass
class AttackInputs:
    """What an attacker may use. Arrays are (N, D) float32 in one space (pixels or an embedding)."""

    synthetic: np.ndarray
    reference: np.ndarray | None = None
    generator: Any = None              # pgan_cli.gan.checkpoint.Checkpoint
    reference_generator: Any = None    # pgan_cli.gan.checkpoint.Checkpoint
    synthetic_latents: np.ndarray | None = None
    synthetic_labels: np.ndarray | None = None
    cache: NeighborCache = field(default_factory=NeighborCache)
    seed: int = 0
    device: str = "cpu"
    options: dict[str, Any] = field(default_factory=dict)

    def has(self, what: str) -> bool:
        return getattr(self, what) is not None


class Attack:
    """Base class: subclasses set the class attributes and implement ``fit`` and ``score``."""

    name: ClassVar[str] = ""
    max_dims: ClassVar[int | None] = None  # refuses inputs of more dimensions (skipped by "all")
    requires: ClassVar[tuple[str, ...]] = (SYNTHETIC,)
    optional: ClassVar[tuple[str, ...]] = ()
    whitebox: ClassVar[bool] = False
    citation: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    only_by_name: ClassVar[str] = ""  # non-empty: "all" skips it with this reason (e.g. it trains models)

    def __init__(self, **params: Any):
        self.params = params
        self.inputs: AttackInputs | None = None

    def fit(self, inputs: AttackInputs) -> Attack:
        missing = [r for r in self.requires if not inputs.has(r)]
        if missing:
            raise UsageError(f"attack {self.name} needs {', '.join(INPUT_OPTIONS[m] for m in missing)}")
        self.inputs = inputs
        return self

    def score(self, candidates: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def targets(self, candidates: np.ndarray, truth: np.ndarray) -> np.ndarray | None:
        """Rows of ``candidates`` this attack scores; None (the default) scores every candidate.

        ``truth`` (1 member, 0 non-member) is the auditor's: an attack may use it to choose whom to
        target from each side, never to score."""
        return None

    def details(self) -> list[dict[str, Any]] | None:
        """One JSON object per scored row (for attacks with :meth:`targets`), or None."""
        return None

    def describe(self) -> dict[str, Any]:
        """Parameters actually used (goes into the JSON next to the figures)."""
        return dict(self.params)

    @property
    def cache(self) -> NeighborCache:
        assert self.inputs is not None, "fit() first"
        return self.inputs.cache


REGISTRY: dict[str, type[Attack]] = {}


def register(cls: type[Attack]) -> type[Attack]:
    """Class decorator adding an attack to :data:`REGISTRY` under ``cls.name``."""
    if not cls.name or cls.name in REGISTRY:
        raise ValueError(f"attack name {cls.name!r} is empty or registered twice")
    REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    # importing the family modules registers their attacks
    from pgan_cli.attacks import (dcr, density, domias, gan_leaks, logan,  # noqa: F401
                                  pairwise, shadow)


def names(blackbox_only: bool = False) -> list[str]:
    """Registered attack names in a stable order (black-box first)."""
    _load_all()
    out = [n for n, c in REGISTRY.items() if not c.whitebox]
    if not blackbox_only:
        out += [n for n, c in REGISTRY.items() if c.whitebox]
    return out


def get_attack(name: str, **params: Any) -> Attack:
    """A fresh attack object by name."""
    _load_all()
    if name not in REGISTRY:
        raise UsageError(f"unknown attack {name!r}; choose from {', '.join(names())} or 'all'")
    return REGISTRY[name](**params)


def plan(methods: str | list[str], given: set[str], dim: int | None = None) -> tuple[list[str], dict[str, str]]:
    """Which attacks to run: ``methods`` is "all" or a list/comma-separated string of names.

    With "all", attacks whose inputs are missing, that refuse ``dim`` dimensions, or that run
    only when named (``only_by_name``: shadow modelling trains generators) are skipped (returned
    with the reason); a named attack whose input is missing raises :class:`UsageError`
    (exit 2), and a named attack that refuses the dimension raises its own clear error.
    """
    _load_all()
    if isinstance(methods, str):
        items = [m.strip() for m in methods.split(",") if m.strip()]
    else:
        items = list(methods)
    if not items:
        raise UsageError("--methods is empty; name attacks (e.g. dcr,pairwise) or 'all'")
    run, skipped = [], {}
    if items == ["all"]:
        for n in names():
            missing = [r for r in REGISTRY[n].requires if r not in given]
            limit = REGISTRY[n].max_dims
            if missing:
                skipped[n] = "needs " + ", ".join(INPUT_OPTIONS[m] for m in missing)
            elif REGISTRY[n].only_by_name:
                skipped[n] = REGISTRY[n].only_by_name
            elif limit is not None and dim is not None and dim > limit:
                skipped[n] = (f"works on at most {limit} dimensions, the sets have {dim}; "
                              f"attack a `pgan embed` space (e.g. --method pca --dim 32) to include it")
            else:
                run.append(n)
        return run, skipped
    for n in items:
        if n == "all":
            raise UsageError("'all' cannot be combined with named methods in --methods")
        if n not in REGISTRY:
            raise UsageError(f"unknown attack {n!r} in --methods; choose from {', '.join(names())} or 'all'")
        missing = [r for r in REGISTRY[n].requires if r not in given]
        if missing:
            raise UsageError(f"attack {n} needs {', '.join(INPUT_OPTIONS[m] for m in missing)}, which was not given")
        if n not in run:
            run.append(n)
    return run, skipped


def check_space(candidates: np.ndarray, other: np.ndarray, what: str) -> None:
    """Candidates and an attacker input must live in the same space (same dimension)."""
    if candidates.ndim != 2 or other.ndim != 2 or candidates.shape[1] != other.shape[1]:
        raise InputError(f"candidates have {candidates.shape[-1]} dimensions but the {what} set has "
                         f"{other.shape[-1]}; all sets must be in one space (embed them with the same "
                         f"`pgan embed` model)")
