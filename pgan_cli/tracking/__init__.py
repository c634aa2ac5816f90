"""Experiment tracking: ``pgan train --track`` and ``pgan audit --track`` (docs/train.md and
docs/audit.md, "Tracking").

Two backends behind one small interface, :class:`Tracker` (``start``, ``log_params``,
``log_metrics`` by step, ``log_image``, ``log_artifact``, ``set_tags``, ``end``):

- **MLflow** (:class:`~pgan_cli.tracking.mlflow_run.MlflowTracker`): a run in a local file store, a folder (``./mlruns`` by
  default, or ``--track-uri``) written by ``MlflowClient`` with no server. MLflow 3 keeps its file
  store in "maintenance mode" and refuses it unless ``MLFLOW_ALLOW_FILE_STORE=true``: pgan sets that
  around its own calls only, and silences the library's deprecation warnings, so stderr stays
  pgan's. Only file stores are accepted (a server, a database or a remote URI is refused).
- **TensorBoard** (:class:`~pgan_cli.tracking.tensorboard_run.TensorBoardTracker`): event files in one folder (``--track-dir``),
  written by ``torch.utils.tensorboard.SummaryWriter``; TensorBoard has no artifact store, so a
  file "logged" there is a text entry with its path and SHA-256.

Both libraries are optional extras (``pip install 'pgan-cli[mlflow]'``, ``'pgan-cli[tensorboard]'``),
imported only here and only when asked for: pgan imports and runs without them.
:func:`check_tracking` checks what was asked for before any work (the library is installed, the
store or folder can be written, an MLflow run to log into exists) and writes nothing.

Training feeds a tracker through :class:`pgan_cli.gan.training.callbacks.TrackRun` (the log records the
JSON-lines log gets, the sample grids, the final checkpoint); the audit through :func:`log_audit`.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pgan_cli.params import (DEFAULT_MLFLOW_STORE, DEFAULT_TRACK_EXPERIMENT, TRACK_BACKENDS, OptionError,
                             Options, check)

EXTRAS = {"mlflow": "mlflow", "tensorboard": "tensorboard"}  # backend -> the pyproject extra installing it
PACKAGE = "pgan-cli"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")  # two letters at least: C:\ is a drive
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,255}")  # MLflow's run-id rule, ASCII (no path tricks)
MAX_EXPERIMENT_NAME = 500
MAX_KEY = 250            # MLflow's longest param, metric or tag key
FALLBACK_PARAM_VALUE = 500  # MLflow < 2.3's longest param value; newer versions say theirs
MAX_TAG_VALUE = 5000


@dataclass(frozen=True)
class TrackSpec:
    """What ``--track`` asked for, checked (:func:`check_tracking`)."""

    backend: str                 # "mlflow" or "tensorboard"
    uri: str | None = None       # mlflow: the file store's file: URI
    store: Path | None = None    # mlflow: the store's folder
    experiment: str = DEFAULT_TRACK_EXPERIMENT
    folder: Path | None = None   # tensorboard: the folder of the run's event files
    run_id: str | None = None    # mlflow: an existing run to log into (pgan audit --track-run)


def _missing_extra(backend: str) -> OptionError:
    extra = EXTRAS[backend]
    return OptionError(f"$track {backend} needs the '{extra}' extra: pip install '{PACKAGE}[{extra}]'", "track")


def _import(backend: str) -> None:
    """Import the backend's library, or fail with one line naming the extra that installs it."""
    try:
        with _quiet():
            if backend == "mlflow":
                import mlflow.tracking  # noqa: F401
            else:
                import tensorboard  # noqa: F401
                import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        raise _missing_extra(backend) from None
    except Exception as e:  # installed but broken (e.g. a protobuf it does not support)
        extra = EXTRAS[backend]
        raise OptionError(f"$track {backend}: importing {backend} failed ({OptionError.literal(_why(e))}); "
                          f"reinstall the '{extra}' extra: pip install '{PACKAGE}[{extra}]'", "track") from None


def _probe_folder(folder: Path, param: str, shown: str | None = None) -> None:
    """``folder`` (which may not exist yet) can be made and written: its nearest existing
    ancestor is a folder we can write to. Writes nothing that stays."""
    p = Path(os.path.abspath(folder))
    if os.path.lexists(p) and not p.is_dir():
        raise OptionError(f"${param} {OptionError.literal(shown or folder)} is a file, not a folder; give a folder "
                          f"path", param)
    anc = p
    while not os.path.lexists(anc):
        anc = anc.parent
    if not anc.is_dir():
        raise OptionError(f"${param} {OptionError.literal(folder)}: {OptionError.literal(anc)} is a file, not a "
                          f"folder; give another path", param)
    from pgan_cli.files import write_probe

    why = write_probe(anc)
    if why is not None:
        raise OptionError(f"${param} {OptionError.literal(folder)}: cannot write to "
                          f"{OptionError.literal(os.path.realpath(anc))} ({why}); give another path", param)


def _is_store(folder: Path) -> bool:
    """Whether an existing non-empty folder looks like an MLflow file store (an experiment's
    ``meta.yaml`` or the ``.trash`` folder MLflow makes)."""
    if (folder / ".trash").is_dir():
        return True
    with os.scandir(folder) as it:
        return any(e.is_dir() and (Path(e.path) / "meta.yaml").is_file() for e in it)


def store_path(uri: str | os.PathLike) -> Path:
    """The folder of the MLflow file store ``uri`` (a folder path or a ``file:`` URI), checked."""
    from urllib.parse import unquote, urlsplit

    text = os.fspath(uri)
    lit = OptionError.literal(text)
    if not text.strip():
        raise OptionError("$track_uri is empty; give a folder (e.g. mlruns) or a file: URI", "track_uri")
    if _CONTROL.search(text):
        raise OptionError(f"$track_uri {lit!r} holds a control character; give a plain folder path", "track_uri")
    m = _SCHEME.match(text)
    if m:
        scheme = m.group(1).lower()
        if scheme != "file":
            raise OptionError(f"$track_uri {lit} is not a local MLflow file store ({scheme}: URI); pgan logs to "
                              f"a folder with no server: give a folder path or a file: URI (a folder whose name "
                              f"has a colon: ./NAME)", "track_uri")
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise OptionError(f"$track_uri {lit} names another host ({OptionError.literal(parts.netloc)}); give a "
                              f"local folder", "track_uri")
        if parts.query or parts.fragment or "?" in text or "#" in text:
            raise OptionError(f"$track_uri {lit}: a file: URI with '?' or '#'; percent-encode them (%3F, %23) or "
                              f"give the folder as a plain path", "track_uri")
        path = unquote(parts.path)
        if not path or _CONTROL.search(path):
            raise OptionError(f"$track_uri {lit} names no usable folder; give a folder path", "track_uri")
    else:
        path = text
    folder = Path(os.path.abspath(path))
    _probe_folder(folder, "track_uri", text)
    if folder.is_dir() and any(folder.iterdir()) and not _is_store(folder):
        raise OptionError(f"$track_uri {lit}: {OptionError.literal(folder)} holds files but no MLflow store; give "
                          f"a new or empty folder, or an existing store", "track_uri")
    return folder


def check_tracking(track: str = "none", *, track_uri: str | None = None, track_dir: str | os.PathLike | None = None,
                   track_experiment: str | None = None, track_run: str | None = None,
                   default_dir: str | os.PathLike | None = None) -> TrackSpec | None:
    """What ``track`` asks for, checked before any work; None for ``none``. Writes nothing.

    ``track_uri`` (mlflow: the file store; default ``./mlruns``), ``track_experiment`` (mlflow;
    default ``pgan``), ``track_run`` (mlflow: an existing run to log into, which must be in the
    store), ``track_dir`` (tensorboard: the folder of event files; default ``default_dir``). An
    option for the other backend is refused rather than ignored.
    """
    backend = check("track", track, Options(TRACK_BACKENDS)).lower()
    given = {"track_uri": track_uri, "track_dir": track_dir, "track_experiment": track_experiment,
             "track_run": track_run}
    mine = {"none": (), "mlflow": ("track_uri", "track_experiment", "track_run"), "tensorboard": ("track_dir",)}
    for name, value in given.items():
        if value is not None and name not in mine[backend]:
            owner = "mlflow" if name in mine["mlflow"] else "tensorboard"
            raise OptionError(f"${name} is for $track {owner}, not $track {backend}", name, "track")
    if backend == "none":
        return None
    if backend == "tensorboard":
        folder = Path(track_dir if track_dir is not None else (default_dir or "runs"))
        if _CONTROL.search(str(folder)):
            raise OptionError(f"$track_dir {OptionError.literal(str(folder))!r} holds a control character; give a "
                              f"plain folder path", "track_dir")
        _probe_folder(folder, "track_dir")
        _import(backend)
        return TrackSpec("tensorboard", folder=folder)
    experiment = DEFAULT_TRACK_EXPERIMENT if track_experiment is None else track_experiment
    if not experiment.strip() or len(experiment) > MAX_EXPERIMENT_NAME or _CONTROL.search(experiment):
        raise OptionError(f"$track_experiment {OptionError.literal(experiment)!r} is not an experiment name (1 to "
                          f"{MAX_EXPERIMENT_NAME} printable characters)", "track_experiment")
    if track_run is not None and not RUN_ID.fullmatch(track_run):
        raise OptionError(f"$track_run {OptionError.literal(track_run)!r} is not an MLflow run ID (the 32 "
                          f"hexadecimal digits pgan train --json prints as tracking.run_id)", "track_run")
    store = store_path(track_uri if track_uri is not None else DEFAULT_MLFLOW_STORE)
    _import(backend)
    spec = TrackSpec("mlflow", uri=store.as_uri(), store=store, experiment=experiment, run_id=track_run)
    if track_run is not None:
        _check_run(spec)
    elif store.is_dir() and _is_store(store):
        _check_experiment(spec)
    return spec


def _check_experiment(spec: TrackSpec) -> None:
    """The experiment of ``spec`` is not deleted in its (existing) store."""
    with _mlflow(spec.uri) as (client, errors):
        try:
            exp = client.get_experiment_by_name(spec.experiment)
        except errors as e:
            raise OptionError(f"$track_uri {OptionError.literal(spec.uri)} is not a readable MLflow store "
                              f"({OptionError.literal(_why(e))})", "track_uri") from None
    if exp is not None and exp.lifecycle_stage != "active":
        raise OptionError(f"$track_experiment {OptionError.literal(spec.experiment)!r} is deleted in "
                          f"{OptionError.literal(spec.uri)}; restore it or name another", "track_experiment")


def _check_run(spec: TrackSpec) -> None:
    """The run ``spec.run_id`` is in the store (read only: a missing store is not created)."""
    where = OptionError.literal(spec.uri)
    if not spec.store.is_dir() or not _is_store(spec.store):
        raise OptionError(f"$track_run {spec.run_id}: there is no MLflow store at {where}; give the $track_uri "
                          f"the training run logged to", "track_run", "track_uri")
    with _mlflow(spec.uri) as (client, errors):
        try:
            run = client.get_run(spec.run_id)
        except errors as e:
            raise OptionError(f"$track_run {spec.run_id} is not a run in {where} ({OptionError.literal(_why(e))}); "
                              f"give the run ID pgan train printed, with its $track_uri", "track_run",
                              "track_uri") from None
        if run.info.lifecycle_stage != "active":
            raise OptionError(f"$track_run {spec.run_id} is deleted in {where}; restore it or leave $track_run out "
                              f"(a new run)", "track_run")


def _why(e: BaseException) -> str:
    text = getattr(e, "message", None) or str(e)
    return " ".join(str(text).split())[:300]


# ---- MLflow -------------------------------------------------------------------------------------------------
@contextmanager
def _quiet() -> Iterator[None]:
    """The tracking libraries' own warnings (deprecations, maintenance mode) kept off stderr."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextmanager
def _file_store_allowed() -> Iterator[None]:
    """``MLFLOW_ALLOW_FILE_STORE=true`` for the block (MLflow 3 refuses its file store without it),
    unless the user set it: then theirs holds."""
    key = "MLFLOW_ALLOW_FILE_STORE"
    if key in os.environ:
        yield
        return
    os.environ[key] = "true"
    try:
        yield
    finally:
        os.environ.pop(key, None)


@contextmanager
def _mlflow(uri: str):
    """``(client, MlflowException)`` for the store ``uri`` with the file store allowed and the
    library quiet. Constructing the client makes the store's folder when it is missing."""
    with _quiet(), _file_store_allowed():
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        yield MlflowClient(tracking_uri=uri), MlflowException


class Tracker:
    """One tracked run. ``start`` opens it, ``end`` closes it; the rest log into it."""

    backend = ""

    def __init__(self, spec: TrackSpec):
        self.spec = spec

    def start(self, name: str, tags: dict[str, str] | None = None, *, resume: dict[str, Any] | None = None,
              step: int = 0) -> None:
        raise NotImplementedError

    def log_params(self, params: dict[str, Any]) -> None:
        raise NotImplementedError

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def log_image(self, path: str | os.PathLike, step: int, tag: str = "samples") -> None:
        raise NotImplementedError

    def log_artifact(self, path: str | os.PathLike, folder: str | None = None) -> None:
        raise NotImplementedError

    def set_tags(self, tags: dict[str, str]) -> None:
        raise NotImplementedError

    def end(self, status: str = "FINISHED") -> None:
        raise NotImplementedError

    def record(self) -> dict[str, Any]:
        """Where the run is (the checkpoint's provenance keeps it so ``--resume`` continues it)."""
        raise NotImplementedError


def open_tracker(spec: TrackSpec) -> Tracker:
    """The tracker of ``spec`` (not started): :mod:`.mlflow_run` or :mod:`.tensorboard_run`."""
    if spec.backend == "mlflow":
        from pgan_cli.tracking.mlflow_run import MlflowTracker

        return MlflowTracker(spec)
    from pgan_cli.tracking.tensorboard_run import TensorBoardTracker

    return TensorBoardTracker(spec)


# ---- values -------------------------------------------------------------------------------------------------
def _key(name: str) -> str:
    """A key MLflow accepts (letters, digits, ``_ - . /`` and spaces; no ``..``, at most 250 characters)."""
    k = re.sub(r"[^A-Za-z0-9_\-. /]", "_", str(name)).strip(" /") or "_"
    k = re.sub(r"\.{2,}", "_", re.sub(r"/{2,}", "/", k))
    return k[:MAX_KEY]


def _md(text: str) -> str:
    """Text for a Markdown table cell (TensorBoard renders text summaries as Markdown)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def flatten_params(params: dict[str, Any], *, limit: int, prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` as ``{"a.b": "1"}``: nested dicts joined with dots, every other value as
    text (lists and numbers as JSON); values longer than ``limit`` are cut, saying how long they were."""
    out: dict[str, str] = {}
    for k, v in params.items():
        key = _key(f"{prefix}{k}")
        if isinstance(v, dict) and v:
            out.update(flatten_params(v, limit=limit, prefix=f"{key}."))
            continue
        text = _shown(v)
        if len(text) > limit:
            note = f"... ({len(text)} characters)"
            text = text[:max(0, limit - len(note))] + note
        out[key] = text
    return out


def numbers(record: dict[str, Any], *, skip: tuple[str, ...] = ("step",)) -> dict[str, float]:
    """The numbers of a flat record (a training log record): every int or float value but
    booleans, NaN and infinities included (a diverging loss is worth seeing)."""
    return {k: float(v) for k, v in record.items()
            if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool)}


def summary_figures(summary: Any, prefix: str = "audit") -> dict[str, float]:
    """The finite numbers of a report summary (``summary.json``) by dotted path (lists, text,
    booleans and format versions left out): ``audit.privacy.attacks.dcr.auc``."""
    out: dict[str, float] = {}

    def walk(obj: Any, path: str) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k not in ("format_version", "inputs"):
                    walk(v, f"{path}.{k}")
        elif isinstance(obj, (int, float)) and not isinstance(obj, bool) and math.isfinite(obj):
            out[_key(path)] = float(obj)

    walk(summary, prefix)
    return out


# ---- the audit ----------------------------------------------------------------------------------------------
def log_audit(spec: TrackSpec, out_dir: str | os.PathLike, summary: dict[str, Any], *,
              settings: dict[str, Any]) -> dict[str, Any]:
    """Log an audit's report into ``spec``'s run (``spec.run_id``: an existing run, e.g. the training
    run; else a new one): the summary's figures as metrics ``audit.*`` at step 0, the verdict as the
    tag ``pgan.audit.verdict`` and the metric ``audit.pass`` (1 pass, 0 fail), the audit's settings
    as tags ``pgan.audit.*``, and ``report.html`` + ``summary.json`` as files under ``audit/``.
    Return where it went (:meth:`Tracker.record`)."""
    from pgan_cli.formats import VERDICT_FAIL, VERDICT_PASS

    folder = Path(out_dir)
    verdict = str(summary.get("verdict"))
    tracker = open_tracker(spec)
    tracker.start(f"audit {folder.name}", {"pgan.command": "audit"} if spec.run_id is None else None)
    status = "FAILED"
    try:
        tags = {"pgan.audit.verdict": verdict, "pgan.audit.report": str(folder.resolve() / "report.html")}
        tags.update({f"pgan.audit.{k}": _shown(v) for k, v in settings.items() if v is not None})
        tracker.set_tags(tags)
        figures = summary_figures(summary)
        gates = summary.get("gates") if isinstance(summary.get("gates"), list) else []
        figures["audit.gates.total"] = float(len(gates))
        figures["audit.gates.failed"] = float(sum(1 for g in gates if isinstance(g, dict) and not g.get("passed")))
        if verdict in (VERDICT_PASS, VERDICT_FAIL):
            figures["audit.pass"] = 1.0 if verdict == VERDICT_PASS else 0.0
        tracker.log_metrics(figures, 0)
        for file in ("report.html", "summary.json"):
            if (folder / file).is_file():
                tracker.log_artifact(folder / file, "audit")
        status = "FINISHED"
    finally:
        tracker.end(status)
    return tracker.record()


def resumed_record(provenance: Any) -> dict[str, Any] | None:
    """The tracking record a checkpoint's provenance (a JSON string or a dict) holds; untrusted:
    only plain text fields are kept, and an unreadable provenance holds none."""
    if isinstance(provenance, (str, bytes)):
        try:
            provenance = json.loads(provenance)
        except (ValueError, RecursionError):
            return None
    rec = provenance.get("tracking") if isinstance(provenance, dict) else None
    if not isinstance(rec, dict) or rec.get("backend") not in ("mlflow", "tensorboard"):
        return None
    return {k: v for k, v in rec.items() if isinstance(v, str) and len(v) < 4096 and not _CONTROL.search(v)}


def resumed_folder(spec: TrackSpec, record: dict[str, Any] | None) -> TrackSpec:
    """A resumed TensorBoard run goes on in the folder its checkpoint records, when that is still a
    folder of TensorBoard event files (a checkpoint is untrusted: it cannot send event files
    anywhere else); otherwise ``spec`` as it is."""
    folder = Path(record["dir"]) if record and record.get("backend") == "tensorboard" and record.get("dir") else None
    if folder is None or not folder.is_dir() or not any(folder.glob("events.out.tfevents.*")):
        return spec
    _probe_folder(folder, "track_dir")
    return replace(spec, folder=folder)


def describe(record: dict[str, Any] | None) -> str:
    """Where a run was tracked, as a phrase for a command's summary line (``""`` for none)."""
    if not record:
        return ""
    if record.get("error"):
        return f"; tracking ({record.get('backend')}) stopped early: see the warning"
    if record.get("backend") == "mlflow":
        return f"; MLflow run {record.get('run_id')} in {record.get('uri')}"
    return f"; TensorBoard events in {record.get('dir')}"
