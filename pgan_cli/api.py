"""pgan as a library: each step of the command line as one call, returning exactly what its
``--json`` prints (``from pgan_cli.api import attack, fidelity, audit``).

The measuring calls (:func:`attack`, :func:`fidelity`, :func:`mmd`) take files (dataset ``.h5`` or
NPY) or arrays in memory: an array of records is written to a private temporary NPY for the call
(the same code path as the command line, so the figures are the same), and its provenance entry
reads ``<array ROLE>`` instead of that file's path. The other calls take files, as their
commands do. Library calls print nothing unless asked (``progress=True``: the command line's
progress lines and logs on stderr). ``docs/API.md`` is generated from these docstrings.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Union

import numpy as np

from pgan_cli import console

Source = Union[str, os.PathLike, np.ndarray]  # a file (dataset .h5 or NPY) or an (N, D) array of records
STAGES = ("attack", "audit", "cluster", "dp_audit", "embed", "fidelity", "knn", "mmd", "privatize", "report",
          "sample", "split", "train", "utility")


@contextmanager
def _shown(progress: bool) -> Iterator[None]:
    """stderr for this call: the command line's logs and progress with ``progress``, else nothing."""
    before = console.state.quiet
    console.configure(quiet=not progress)
    try:
        yield
    finally:
        console.configure(quiet=before)


@contextmanager
def _files(stack: ExitStack, **sets: Any) -> Iterator[tuple[dict[str, Path | None], dict[str, str]]]:
    """Each set as a file: paths as given, arrays written to a private temporary NPY (removed after
    the call); also ``{temporary path: "<array ROLE>"}`` to rename them in provenance."""
    folder = None
    paths: dict[str, Path | None] = {}
    names: dict[str, str] = {}
    for role, value in sets.items():
        if value is None or isinstance(value, (str, os.PathLike)):
            paths[role] = None if value is None else Path(value)
            continue
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pgan-api-")))
        path = folder / f"{role}.npy"
        np.save(path, np.ascontiguousarray(np.asarray(value)))
        paths[role], names[str(path)] = path, f"<array {role}>"
    yield paths, names


def _renamed(obj: Any, names: dict[str, str]) -> Any:
    """``obj`` with every string that is a temporary file's path replaced by its array's name."""
    if not names:
        return obj
    if isinstance(obj, dict):
        return {k: _renamed(v, names) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_renamed(v, names) for v in obj]
    if isinstance(obj, str):
        for path, name in names.items():
            obj = obj.replace(path, name)
    return obj


def _measured(call, progress: bool, sets: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """``call`` (a ``*_files`` function) on ``sets`` as files, positionally in order, arrays named."""
    with ExitStack() as stack, _shown(progress), _files(stack, **sets) as (paths, names):
        return _renamed(call(*paths.values(), **kwargs), names)


def attack(members: Source, holdout: Source, synthetic: Source | None = None, reference: Source | None = None,
           *, methods: str = "all", seed: int = 0, bootstrap: int | None = None, scores: str | os.PathLike | None = None,
           progress: bool = False, **options: Any) -> dict[str, Any]:
    """Membership inference on a release (``pgan attack``): every attack of ``methods`` scores the
    members against the holdout, with the synthetic set and the reference population as each
    attack needs them. Files or (N, D) arrays. ``options``: the other keywords of
    :func:`pgan_cli.attacks.suite.audit_files` (generator, shadow settings, ``distances`` ...).
    Returns the ``pgan-attack`` JSON."""
    from pgan_cli.attacks.evaluation import N_BOOTSTRAP
    from pgan_cli.attacks.suite import audit_files

    return _measured(audit_files, progress, {"members": members, "holdout": holdout, "synthetic": synthetic,
                                             "reference": reference},
                     methods=methods, seed=seed, bootstrap=N_BOOTSTRAP if bootstrap is None else bootstrap,
                     scores=scores, **options)


def fidelity(real: Source, synthetic: Source, *, progress: bool = False, **options: Any) -> dict[str, Any]:
    """Fidelity and diversity of a synthetic set against real data (``pgan fidelity``): PRDC,
    alpha-precision/beta-recall, Fréchet distance, C2ST. Files or (N, D) arrays; ``options``: ``k``,
    ``metrics``, ``seed``, ``c2st_classifier``. Returns the ``pgan-fidelity`` JSON."""
    from pgan_cli.metrics.fidelity import fidelity_files

    return _measured(fidelity_files, progress, {"real": real, "synthetic": synthetic}, **options)


def mmd(x: Source, y: Source, *, progress: bool = False, **options: Any) -> dict[str, Any]:
    """The unbiased MMD² between two sets and its permutation p-value (``pgan mmd``). Files or
    (N, D) arrays; ``options``: ``kernel``, ``bandwidth``, ``permutations``, ``estimator``, ``seed``,
    ``device``, ``kid_subsets``, ``kid_subset_size``. Returns the ``pgan-mmd`` JSON."""
    from pgan_cli.metrics.mmd import mmd_files

    return _measured(mmd_files, progress, {"x": x, "y": y}, **options)


def _file_call(target: str, doc: str):
    """A library call that takes files, as its command does: ``target`` is ``module:function``."""
    module, name = target.split(":")

    def call(*args: Any, progress: bool = False, **kwargs: Any) -> Any:
        import importlib

        with _shown(progress):
            return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__doc__ = f"{doc} Takes files; the keywords of :func:`{module}.{name}`."
    call.__qualname__ = call.__name__ = target.split(":")[1]
    call.target = target
    return call


utility = _file_call("pgan_cli.metrics.utility:utility_files",
                     "Train on synthetic, test on real against train on real (``pgan utility``): the "
                     "``pgan-utility`` JSON.")
knn = _file_call("pgan_cli.neighbors.files:search_files",
                 "The k nearest references of every query, written to a ``knn.h5`` (``pgan knn``); returns "
                 "its summary.")
embed = _file_call("pgan_cli.embeddings.api:embed_files",
                   "Sets mapped into a feature space (``pgan embed``); returns the written files.")
cluster = _file_call("pgan_cli.metrics.clustering:cluster_file",
                     "Clusters of a set, written to ``clusters.h5`` (``pgan cluster``); returns the summary.")
dp_audit = _file_call("pgan_cli.privacy.one_run_audit:dp_audit_file",
                      "An empirical lower bound on a run's ε from its canaries (``pgan dp-audit``): the "
                      "``pgan-dp-audit`` JSON.")
train = _file_call("pgan_cli.gan.training.run:train_file",
                   "Train a generator on a dataset file into a checkpoint (``pgan train``); returns the summary.")
sample = _file_call("pgan_cli.gan.sampling:sample_file",
                    "A synthetic set from a checkpoint, written as a dataset file (``pgan sample``).")
split = _file_call("pgan_cli.split:split_file",
                   "Disjoint, stratified, seeded parts of a dataset file (``pgan data split``).")
privatize = _file_call("pgan_cli.privacy.ldp:privatize_file",
                       "A locally private copy of a dataset file (``pgan privatize``).")
report = _file_call("pgan_cli.report.build:make_report",
                    "The HTML report and ``summary.json`` of result files, with the gates' verdict (``pgan "
                    "report``); returns (summary, gate results).")
audit = _file_call("pgan_cli.audit:run_audit",
                   "The whole audit of a release into one folder (``pgan audit``): every step, the report, "
                   "``commands.sh``; returns the summary.")


def render_reference() -> str:
    """``docs/API.md``: every call of :data:`STAGES` with its signature and docstring."""
    import inspect

    lines = ["# The library API", "",
             "Generated from `pgan_cli/api.py` (`python -m pgan_cli.api > docs/API.md`); a test checks it is "
             "current.", "", inspect.getdoc(__import__(__name__, fromlist=["_"])), ""]
    for name in STAGES:
        fn = globals()[name]
        target = getattr(fn, "target", None)
        if target is not None:
            import importlib

            module, real = target.split(":")
            sig = inspect.signature(getattr(importlib.import_module(module), real))
            lines += [f"## `{name}{sig}`", "", inspect.getdoc(fn), ""]
        else:
            lines += [f"## `{name}{inspect.signature(fn)}`", "", inspect.getdoc(fn), ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render_reference(), end="")
