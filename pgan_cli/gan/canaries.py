"""Audit canaries: records added to a training run, each with probability 1/2, so that one run can
be audited for its differential-privacy claim (Steinke, Nasr & Jagielski, "Privacy auditing with
one (1) training run", NeurIPS 2023; docs/dp.md, "Auditing the claim").

A run with ``pgan train --audit-canaries M`` draws M canaries, either rows of a held-out dataset
file (``--canary-source``: in-distribution records, as a real patient would be) or crafted ones
(uniform noise over the model's input range: [-1, 1] per pixel for images, [-3, 3] standard
deviations per feature for vectors; out-of-distribution records, the easiest to memorise and so
the strongest audit), and includes each independently with probability 1/2. The design (the
canaries' origin, which were included, the seed) is recorded in the checkpoint's config under
``audit_canaries``, never the records themselves: the audit regenerates crafted canaries from
the seed and re-reads held-out ones from their file, checked by its SHA-256. The canaries do not
enter the data scaling (``data_scaling`` is computed on the training data alone).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pgan_cli.errors import FormatError, InputError
from pgan_cli.params import SEED, Interval, OptionError

CONFIG_KEY = "audit_canaries"
CRAFTED = "crafted"
SOURCE_FILE = "file"
SOURCES = (CRAFTED, SOURCE_FILE)
INCLUSION_PROBABILITY = 0.5  # each canary's chance of entering training (the paper's design)
MAX_CANARIES = 100_000
COUNT = Interval(0, MAX_CANARIES)  # pgan train --audit-canaries M (0: no canaries)
_STREAM = 0xCA7A  # a separate random stream: the canaries do not change the run's other draws


@dataclass(frozen=True)
class CanaryDesign:
    """Which canaries a run was given and which of them it trained on."""

    m: int
    seed: int
    source: str                       # CRAFTED or SOURCE_FILE
    included: tuple[bool, ...]
    source_path: str | None = None    # SOURCE_FILE: the held-out file, as given
    source_sha256: str | None = None
    rows: tuple[int, ...] | None = None  # SOURCE_FILE: the rows of that file
    label_classes: int = 0            # CRAFTED: classes drawn uniformly for them (0: no labels)

    @property
    def n_included(self) -> int:
        return int(sum(self.included))

    def record(self) -> dict[str, Any]:
        """The design as stored in the checkpoint's config (plain JSON types)."""
        return {"m": self.m, "seed": self.seed, "source": self.source, "included": [bool(b) for b in self.included],
                "source_path": self.source_path, "source_sha256": self.source_sha256,
                "rows": None if self.rows is None else [int(r) for r in self.rows],
                "label_classes": self.label_classes, "inclusion_probability": INCLUSION_PROBABILITY}

    @classmethod
    def from_record(cls, rec: Any, config: dict[str, Any], where: str) -> CanaryDesign:
        """The design stored by :meth:`record`, checked (:func:`check_record`: a checkpoint is
        untrusted input)."""
        check_record(rec, config, where)
        rows = None if rec["rows"] is None else tuple(rec["rows"])
        return cls(m=rec["m"], seed=rec["seed"], source=rec["source"], included=tuple(rec["included"]),
                   source_path=rec["source_path"], source_sha256=rec["source_sha256"], rows=rows,
                   label_classes=rec["label_classes"])


# ---- the recorded design, checked like the options that made it ----------------------------------
FIELDS = ("m", "seed", "source", "included", "source_path", "source_sha256", "rows", "label_classes",
          "inclusion_probability")
_SHA256 = re.compile(r"[0-9a-f]{64}")  # files.sha256_file: a SHA-256 digest in hex


def _bad(where: str, field_: str, what: str) -> FormatError:
    return FormatError(f"{where}: the checkpoint's {CONFIG_KEY}.{field_} {what}; use a checkpoint written by "
                       f"`pgan train --audit-canaries`")


def _shown(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def check_record(rec: Any, config: dict[str, Any], where: str) -> None:
    """The audit-canary design of a checkpoint's ``config``, checked with exact JSON types against
    what ``pgan train --audit-canaries`` could have written (its option's constraint, the run's
    seed and classes) before any canary is drawn or read: a checkpoint is untrusted input
    (docs/security.md), and a design the run never used would audit canaries it never saw."""
    if not isinstance(rec, dict):
        raise FormatError(f"{where}: the checkpoint's {CONFIG_KEY} is a {type(rec).__name__}, not a mapping; "
                          f"use a checkpoint written by `pgan train --audit-canaries`")
    for name in FIELDS:
        if name not in rec:
            raise _bad(where, name, "is missing")
    _check_scalars(rec, config, where)
    _check_list(rec, "included", lambda v: isinstance(v, bool), "true or false", where)
    if rec["source"] == CRAFTED:
        for name in ("source_path", "source_sha256", "rows"):
            if rec[name] is not None:
                raise _bad(where, name, f"= {_shown(rec[name])}, not null (the canaries are crafted)")
    else:
        _check_source_file(rec, where)


def _check_scalars(rec: dict[str, Any], config: dict[str, Any], where: str) -> None:
    classes = config.get("num_classes") or 0
    for name, constraint in (("m", Interval(1, COUNT.high)), ("seed", SEED), ("label_classes", Interval(0, classes))):
        if not constraint.holds(rec[name]):
            raise _bad(where, name, f"= {_shown(rec[name])}, not {constraint.describe()}")
    if rec["seed"] != config.get("seed"):
        raise _bad(where, "seed", f"= {rec['seed']}, not the run's seed {_shown(config.get('seed'))}")
    if not isinstance(rec["source"], str) or rec["source"] not in SOURCES:
        raise _bad(where, "source", f"= {_shown(rec['source'])}, not one of {', '.join(SOURCES)}")
    p = rec["inclusion_probability"]
    if not isinstance(p, float) or p != INCLUSION_PROBABILITY:
        raise _bad(where, "inclusion_probability", f"= {_shown(p)}, not {INCLUSION_PROBABILITY}")


def _check_list(rec: dict[str, Any], name: str, holds, what: str, where: str) -> None:
    """``rec[name]`` is a list of ``m`` values that each ``holds`` (its length first: no long walk)."""
    values, m = rec[name], rec["m"]
    if not isinstance(values, list):
        raise _bad(where, name, f"= {_shown(values)}, not a list of m = {m} entries")
    if len(values) != m:
        raise _bad(where, name, f"has {len(values)} entries, not m = {m}")
    for i, v in enumerate(values):
        if not holds(v):
            raise _bad(where, f"{name}[{i}]", f"= {_shown(v)}, not {what}")


def _check_source_file(rec: dict[str, Any], where: str) -> None:
    """A held-out design: the file named and hashed, ``m`` distinct rows of it (the rows' upper
    bound, the file's row count, is checked when the file is read: :func:`canary_records`)."""
    if rec["label_classes"] != 0:
        raise _bad(where, "label_classes", f"= {_shown(rec['label_classes'])}, not 0 (held-out canaries keep "
                                           f"their file's labels)")
    if not isinstance(rec["source_path"], str) or not rec["source_path"]:
        raise _bad(where, "source_path", f"= {_shown(rec['source_path'])}, not a file name")
    if not isinstance(rec["source_sha256"], str) or not _SHA256.fullmatch(rec["source_sha256"]):
        raise _bad(where, "source_sha256", f"= {_shown(rec['source_sha256'])}, not a SHA-256 in hex")
    row = Interval(0, None)
    _check_list(rec, "rows", row.holds, f"a row number ({row.describe()})", where)
    if len(set(rec["rows"])) != rec["m"]:
        raise _bad(where, "rows", "repeats a row (the canaries are distinct rows of the file)")


def _rng(seed: int, part: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFFFFFFFFFF, _STREAM, part])


CRAFTED_RANGE = {"images": 1.0, "vectors": 3.0}  # half-width of the box, in model units


def crafted_canaries(design: CanaryDesign, config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """The crafted canaries of ``design`` in data space: uniform over the model-space box (see the
    module doc), mapped back with the run's ``data_scaling``; a function of the seed and config."""
    shape = tuple(int(s) for s in config["sample_shape"])
    rng = _rng(design.seed, 1)
    half = CRAFTED_RANGE["images" if config.get("kind", "images") == "images" else "vectors"]
    x = rng.uniform(-half, half, size=(design.m, *shape))
    sc = config.get("data_scaling") or {}
    if sc.get("kind") == "standardize":
        x = x * np.asarray(sc["std"], dtype=np.float64).reshape(shape) + np.asarray(sc["mean"]).reshape(shape)
    y = rng.integers(0, design.label_classes, size=design.m) if design.label_classes else None
    return x.astype(np.float32), y


def design_canaries(data, config: dict[str, Any], m: int, seed: int, source: str | os.PathLike | None = None):
    """Draw ``m`` canaries for a run on ``data`` (a :class:`~pgan_cli.dataset.DataBundle`) with
    ``config`` (:func:`~pgan_cli.gan.training.config.make_config` on ``data``) and decide, each with
    probability 1/2, which enter training.

    Returns ``(design, samples, labels)``: the canaries' records (all ``m``, in design order).
    Held-out canaries must share no record with ``data`` (checked by row hashes).
    """
    include = tuple(bool(b) for b in _rng(seed, 0).random(m) < 0.5)
    if source is None:
        classes = int(config.get("num_classes") or 0) if data.labels is not None else 0
        design = CanaryDesign(m=m, seed=seed, source=CRAFTED, included=include, label_classes=classes)
        return (design, *crafted_canaries(design, config))
    from pgan_cli.dataset import read_dataset
    from pgan_cli.files import sha256_file
    from pgan_cli.split import require_disjoint

    held = read_dataset(source)
    if held.samples.shape[1:] != data.samples.shape[1:]:
        raise InputError(f"canary source {source} holds records of shape {held.samples.shape[1:]}, the training "
                         f"data {data.samples.shape[1:]}")
    if held.n < m:
        raise InputError(f"canary source {source} has {held.n} records, fewer than the {m} canaries asked for")
    if data.labels is not None and held.labels is None:
        raise InputError(f"canary source {source} has no labels but the training data has; give a labelled "
                         f"held-out file (e.g. the holdout of `pgan data split`)")
    require_disjoint([("training data", data.path or "", data.samples), ("canary source", source, held.samples)],
                     "audit canaries")
    rows = tuple(int(r) for r in np.sort(_rng(seed, 2).choice(held.n, size=m, replace=False)))
    design = CanaryDesign(m=m, seed=seed, source=SOURCE_FILE, included=include, source_path=str(source),
                          source_sha256=sha256_file(source), rows=rows)
    y = held.labels[list(rows)] if data.labels is not None else None
    return design, held.samples[list(rows)].astype(np.float32), y


def canary_records(design: CanaryDesign, config: dict[str, Any], source: str | os.PathLike | None = None,
                   where: str = "the checkpoint") -> tuple[np.ndarray, np.ndarray | None]:
    """The ``m`` canaries of a recorded design, regenerated (crafted) or re-read (held out: from
    ``source``, which must have the recorded SHA-256). The path recorded in the checkpoint is only
    named in the message: pgan opens the files it is given, never a path an input names
    (docs/security.md)."""
    if design.source == CRAFTED:
        refuse_source(design, source, where)
        return crafted_canaries(design, config)
    from pgan_cli.dataset import read_dataset
    from pgan_cli.files import check_input, sha256_file

    if source is None:
        raise InputError(f"{where} was trained with canaries held out from a file (recorded as "
                         f"{str(design.source_path)!r}); give that file with --canary-source")
    path = Path(source)
    check_input(path, "canary source (the held-out file the run's canaries came from)")
    digest = sha256_file(path)
    if digest != design.source_sha256:
        raise InputError(f"{path} is not the canary source {where} was trained with (SHA-256 {digest[:12]}... "
                         f"differs from the recorded {str(design.source_sha256)[:12]}...); give that file "
                         f"with --canary-source")
    held = read_dataset(path)
    shape = tuple(int(s) for s in config["sample_shape"])
    if held.samples.shape[1:] != shape:
        raise InputError(f"{path} does not hold the recorded canary rows; give the run's canary source")
    if max(design.rows) >= held.n:  # the file is the recorded one (its SHA-256): the record was changed
        raise _bad(where, "rows", f"has row {_shown(max(design.rows))}, not a row of {path} (it has {held.n})")
    rows = list(design.rows)
    return held.samples[rows].astype(np.float32), (held.labels[rows] if held.labels is not None else None)


def with_canaries(samples: np.ndarray, labels: np.ndarray | None, design: CanaryDesign, canaries: np.ndarray,
                  canary_labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The training set: the data plus the included canaries (appended; every epoch is shuffled)."""
    keep = np.asarray(design.included, dtype=bool)
    x = np.concatenate([np.asarray(samples, dtype=np.float32), np.asarray(canaries, dtype=np.float32)[keep]])
    if labels is None:
        return x, None
    if canary_labels is None:
        raise InputError("the canaries have no labels but the training data has")
    return x, np.concatenate([labels, np.asarray(canary_labels, dtype=labels.dtype)[keep]])


def refuse_source(design: CanaryDesign | None, given: str | os.PathLike | None, where: str) -> None:
    """A canary source given for a run that has no held-out canaries does not apply: refused
    (:class:`OptionError` naming ``--canary-source``), never silently ignored."""
    if given is None or (design is not None and design.source == SOURCE_FILE):
        return
    why = "without audit canaries" if design is None else "with crafted canaries"
    raise OptionError(f"{OptionError.literal(where)} was trained {why}; drop $canary_source", "canary_source")


def audit_source(generator: str | os.PathLike, given: str | os.PathLike | None = None
                   ) -> tuple[str | None, str | None]:
    """Whether ``pgan audit`` can run ``pgan dp-audit`` on ``generator``: ``("", None)`` for crafted
    canaries, ``(path, None)`` for held-out ones given as ``given`` (the recorded SHA-256; pgan
    never opens the path the checkpoint names), ``(None, why)`` when it cannot, ``(None, None)``
    for a run without canaries."""
    from pgan_cli.gan.checkpoint import read_checkpoint_file
    from pgan_cli.files import sha256_file

    config = read_checkpoint_file(generator)["config"]
    design = CanaryDesign.from_record(config[CONFIG_KEY], config, str(generator)) if CONFIG_KEY in config else None
    refuse_source(design, given, str(generator))
    if design is None:
        return None, None
    if design.source == CRAFTED:
        return "", None
    if given is None:
        return None, (f"the generator's canaries were held out from a file (recorded as {str(design.source_path)!r}); "
                      f"give it with --canary-source to audit the DP claim")
    if sha256_file(given) != design.source_sha256:
        raise InputError(f"--canary-source {given} is not the file the generator's canaries came from "
                         f"(SHA-256 differs from the recorded one)")
    return str(given), None
