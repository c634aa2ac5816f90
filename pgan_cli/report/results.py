"""Reading the results of pgan's measuring commands for the report: each file is recognised by its
stamp (:mod:`pgan_cli.formats`): the ``format`` of a JSON result (``pgan-attack``, ``pgan-mmd``,
``pgan-fidelity``, ``pgan-utility``, ``pgan-dp-audit``, ``pgan-summary``) or of an HDF5 result (``pgan-knn``,
``pgan-attack-scores``); a training log is read by its owner (:mod:`pgan_cli.gan.training.callbacks`).
Attack results are checked so that no gate can misread them (docs/report.md, "Fail closed").
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pgan_cli import formats
from pgan_cli.attacks import keys as K
from pgan_cli.dataset import decode_attr
from pgan_cli.errors import FormatError
from pgan_cli.files import check_input, sha256_file

KIND_ATTACK = "attack"
KIND_MMD = "mmd"
KIND_FIDELITY = "fidelity"
KIND_UTILITY = "utility"
KIND_TRAIN_LOG = "train-log"
KIND_KNN = "knn"
KIND_SCORES = "scores"
KIND_SUMMARY = "summary"  # summary.json of another report/audit: the runs of a comparison
KIND_DP_AUDIT = "dp-audit"
JSON_KINDS = (KIND_ATTACK, KIND_MMD, KIND_FIDELITY, KIND_UTILITY, KIND_DP_AUDIT)
# Privacy results: given any of these and no --gate, the default preset applies (docs/report.md,
# "Fail closed"), even when they hold no attack at all.
PRIVACY_KINDS = (KIND_ATTACK, KIND_KNN, KIND_SCORES)

_KIND_OF_STAMP = {formats.ATTACK: KIND_ATTACK, formats.MMD: KIND_MMD, formats.FIDELITY: KIND_FIDELITY,
                  formats.UTILITY: KIND_UTILITY, formats.SUMMARY: KIND_SUMMARY, formats.DP_AUDIT: KIND_DP_AUDIT}


@dataclass
class ResultFile:
    """One input of the report: its path, recognised kind, content and hash."""

    path: Path
    kind: str
    data: Any = None
    sha256: str = ""
    provenance: dict[str, Any] | None = None
    space: str = "pixel"
    name: str = ""  # the label used in the summary (``dcr``, ``dcr@pca``, a knn pair ...)
    extra: dict[str, Any] = field(default_factory=dict)


# ---- recognising inputs -----------------------------------------------------------------------
def _command_of(prov: Any) -> str | None:
    """The pgan subcommand recorded in a provenance record (``attack`` for ``pgan attack ...``)."""
    if not isinstance(prov, dict) or not isinstance(prov.get("command"), str):
        return None
    try:
        tokens = shlex.split(prov["command"])
    except ValueError:
        return None
    if len(tokens) >= 2 and Path(tokens[0]).name in ("pgan", "pgan_cli", "__main__.py"):
        return tokens[1]
    return None


def _foreign(path: Path, what: str) -> FormatError:
    return FormatError(f"{path} is {what}, not a pgan result; report takes the --json output of "
                       f"pgan attack, mmd, fidelity or utility, a training log (.jsonl from pgan train "
                       f"--log), or knn / scores files (.h5)")


def _load_json(path: Path) -> ResultFile:
    from pgan_cli.files import read_json

    data = read_json(path, "result file")
    kind = _KIND_OF_STAMP[formats.stamp_of(data, str(path))]
    if kind == KIND_ATTACK:
        _check_attack(path, data)
    elif kind == KIND_DP_AUDIT:
        _check_dp_audit(path, data)
    else:
        _check_required(path, data, kind)
    if kind == KIND_FIDELITY:
        _check_fidelity(path, data)
    return ResultFile(path=path, kind=kind, data=data, provenance=data.get("provenance"))


# The figures of pgan attack's JSON that gates compare (pgan_cli/attacks/keys.py): each must be a
# number, or null where it could not be computed (NaN and Infinity read as null too).
_ATTACK_NUMBERS = ("auc", "advantage", "balanced_accuracy", "epsilon_lower_bound")
_DISTANCE_NUMBERS = ("dcr_share", "nnaa_privacy_loss", "authenticity", "data_copying_ct",
                     "near_copies_excess", "near_copies_expected")


# the figure ranges a result must respect, by key (attack, dp-audit and fidelity results): a figure
# outside its range is a tampered or foreign file, never a pass (an AUC of -3 would pass "auc <= 0.6")
_RANGES = {"auc": (0.0, 1.0), "balanced_accuracy": (0.0, 1.0), "advantage": (-1.0, 1.0),
           "epsilon_lower_bound": (0.0, math.inf), "dcr_share": (0.0, 1.0), "authenticity": (0.0, 1.0),
           "tpr_at_fpr": (0.0, 1.0), "near_copies_excess": (0.0, math.inf), "near_copies_expected": (0.0, math.inf),
           "epsilon": (0.0, math.inf), "delta": (0.0, 1.0), "confidence": (0.0, 1.0), "guesses": (0.0, math.inf),
           "correct": (0.0, math.inf), "p_value": (0.0, 1.0), "alpha": (0.0, 1.0), "c2st_auc": (0.0, 1.0)}
# what each other JSON kind must hold, with the type of each: a file stamped as one kind but
# holding another's figures is refused, not read as a result without figures
_REQUIRED = {KIND_MMD: {"mmd2": "number", "p_value": "number"}, KIND_UTILITY: {"tstr": "object", "trtr": "object"},
             KIND_FIDELITY: {"metrics": "list"}}


def _is_number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _in_range(key: str, v: Any) -> bool:
    """Whether a number (None and non-finite values read as missing) lies in ``key``'s range."""
    lo, hi = _RANGES.get(key, (-math.inf, math.inf))
    return v is None or not math.isfinite(v) or lo <= v <= hi


def _malformed(path: Path, kind: str, where: str, v: Any, want: str) -> FormatError:
    """The error for a figure of a ``kind`` result that is not what its writer writes."""
    return FormatError(f"{path}: {where} is {json.dumps(v)[:60]}, not {want}; "
                       f"give the --json output of pgan {kind} unchanged")


def _number(path: Path, kind: str, where: str, v: Any, key: str | None = None, required: bool = False) -> float | None:
    """The figure ``v`` (at ``where`` in the file) as a float in the range of ``key`` (the last part of
    ``where`` unless given), or None when it is null or not finite; a required figure must be finite."""
    key = key or where.rsplit(".", 1)[-1]
    finite = _is_number(v) and v is not None and math.isfinite(v)
    if not _is_number(v) or not _in_range(key, v) or (required and not finite):
        want = ("a finite number" if required else "a number") + (
            " in [{:g}, {:g}]".format(*_RANGES[key]) if key in _RANGES else "")
        raise _malformed(path, kind, where, v, want)
    return float(v) if finite else None


def _derived(path: Path, kind: str, where: str, given: Any, derived: Any, because: str) -> None:
    """Refuse a file whose summary figure ``given`` (a flag such as ``exceeds_claim``) is not what its
    writer derives from the file's own figures (``derived``, ``because``)."""
    if given != derived or type(given) is not type(derived):
        raise FormatError(f"{path}: {where} is {json.dumps(given)[:60]}, but {because} makes it "
                          f"{json.dumps(derived)}; give the --json output of pgan {kind} unchanged")


def _check_required(path: Path, data: dict[str, Any], kind: str) -> None:
    """Refuse an mmd, fidelity or utility result that lacks its own figures."""
    types = {"number": _is_number, "object": lambda v: isinstance(v, dict),
             "list": lambda v: isinstance(v, list)}
    for key, want in _REQUIRED.get(kind, {}).items():
        if key not in data or not types[want](data[key]):
            raise FormatError(f"{path}: a pgan {kind} result needs {key} as {'a' if want != 'object' else 'an'} "
                              f"{want}, got {json.dumps(data.get(key))[:60]}; give the --json output of pgan "
                              f"{kind} unchanged")
        if want == "number":
            _number(path, kind, key, data[key])


def _check_fidelity(path: Path, data: dict[str, Any]) -> None:
    """Refuse a fidelity result whose C2ST figures are out of range, or whose ``c2st_copying`` is not
    what pgan fidelity derives from its test (:func:`pgan_cli.metrics.c2st.is_copying`)."""
    from pgan_cli.metrics.c2st import COPYING_ALPHA, is_copying
    from pgan_cli.metrics.fidelity import KEY_C2ST_AUC, KEY_C2ST_COPYING, KEY_C2ST_COPYING_TEST

    _number(path, KIND_FIDELITY, KEY_C2ST_AUC, data.get(KEY_C2ST_AUC))
    if KEY_C2ST_COPYING not in data and KEY_C2ST_COPYING_TEST not in data:
        return
    test = data.get(KEY_C2ST_COPYING_TEST)
    if not isinstance(test, dict):
        raise _malformed(path, KIND_FIDELITY, KEY_C2ST_COPYING_TEST, test, "an object")
    where = f"{KEY_C2ST_COPYING_TEST}.p_value"
    p = _number(path, KIND_FIDELITY, where, test.get("p_value"), required=True)
    if test.get("alpha") != COPYING_ALPHA:
        raise _malformed(path, KIND_FIDELITY, f"{KEY_C2ST_COPYING_TEST}.alpha", test.get("alpha"),
                         f"{COPYING_ALPHA} (the level pgan fidelity tests at)")
    _derived(path, KIND_FIDELITY, KEY_C2ST_COPYING, data.get(KEY_C2ST_COPYING), is_copying(p),
             f"{where} {p:g} against alpha {COPYING_ALPHA:g}")


def _check_dp_audit(path: Path, data: dict[str, Any]) -> None:
    """Refuse a DP-audit result whose gated figures a gate could misread: figures out of range, or an
    ``exceeds_claim`` that is not what pgan dp-audit derives from the bound and the claim
    (:func:`pgan_cli.privacy.one_run_audit.exceeds_claim`)."""
    from pgan_cli.privacy.one_run_audit import exceeds_claim

    audited, claimed = data.get("audited"), data.get("claimed")
    if not isinstance(audited, dict):
        raise _malformed(path, KIND_DP_AUDIT, "audited", audited, "an object")
    if claimed is not None and not isinstance(claimed, dict):
        raise _malformed(path, KIND_DP_AUDIT, "claimed", claimed, "an object or null")
    bound = _number(path, KIND_DP_AUDIT, "audited.epsilon_lower_bound", audited.get("epsilon_lower_bound"),
                    required=True)
    fig = {key: _number(path, KIND_DP_AUDIT, f"audited.{key}", audited.get(key))
           for key in ("auc", "confidence", "delta", "guesses", "correct")}
    if None not in (fig["guesses"], fig["correct"]) and fig["correct"] > fig["guesses"]:
        raise _malformed(path, KIND_DP_AUDIT, "audited.correct", audited["correct"],
                         f"at most audited.guesses ({audited['guesses']})")
    eps = None
    if claimed is not None:
        eps = _number(path, KIND_DP_AUDIT, "claimed.epsilon", claimed.get("epsilon"), required=True)
        _number(path, KIND_DP_AUDIT, "claimed.delta", claimed.get("delta"))
    flag = data.get("exceeds_claim")
    if not isinstance(flag, bool):
        raise _malformed(path, KIND_DP_AUDIT, "exceeds_claim", flag, "true or false")
    why = (f"audited.epsilon_lower_bound {bound:g} against claimed.epsilon {eps:g}" if eps is not None
           else "a null claim (trained without DP)")
    _derived(path, KIND_DP_AUDIT, "exceeds_claim", flag, exceeds_claim(bound, eps), why)


def _check_attack(path: Path, data: dict[str, Any]) -> None:
    """Refuse an attack result whose shape a gate could misread: ``attacks`` not an object, an
    attack that is not an object, or a gated figure that is a string (or a bool, a list ...) or
    out of its range. A malformed privacy result is bad input (exit 2), never an empty one that passes."""
    def bad(where: str, v: Any, want: str) -> FormatError:
        return _malformed(path, KIND_ATTACK, where, v, want)

    attacks = data.get("attacks", {})
    if not isinstance(attacks, dict):
        raise bad("attacks", attacks, "an object of attack results")
    for name, fig in attacks.items():
        if not isinstance(fig, dict):
            raise bad(f"attacks.{name}", fig, "an object")
        for key in _ATTACK_NUMBERS:
            if key in fig:
                _number(path, KIND_ATTACK, f"attacks.{name}.{key}", fig[key])
        tpr = fig.get("tpr_at_fpr")
        if "tpr_at_fpr" in fig and not isinstance(tpr, dict):
            raise bad(f"attacks.{name}.tpr_at_fpr", tpr, "an object of numbers")
        for level, v in (tpr or {}).items():
            _number(path, KIND_ATTACK, f"attacks.{name}.tpr_at_fpr.{level}", v, key="tpr_at_fpr")
    dist = data.get("distances")
    if dist is None:
        return
    if not isinstance(dist, dict):
        raise bad("distances", dist, "an object")
    for key in _DISTANCE_NUMBERS:
        if key in dist:
            _number(path, KIND_ATTACK, f"distances.{key}", dist[key])
    nc = dist.get(K.KEY_NEAR_COPIES)
    if nc is None or (isinstance(nc, float) and not math.isfinite(nc)):
        return
    count = near_copy_count(nc)
    if count is None or count < 0:
        raise bad(f"distances.{K.KEY_NEAR_COPIES}", nc, "a count")


def _load_jsonl(path: Path) -> ResultFile:
    from pgan_cli.gan.training.callbacks import read_training_log

    records = read_training_log(path)
    if not records:
        raise FormatError(f"{path} is an empty training log; did training log anything (--log-every)?")
    return ResultFile(path=path, kind=KIND_TRAIN_LOG, data=records)


def _h5_datasets(f) -> dict[str, Any]:
    import h5py

    out: dict[str, Any] = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
    return out


def _load_h5(path: Path) -> ResultFile:
    from pgan_cli.dataset import open_h5

    with open_h5(path) as f:  # refuses links and external storage: pgan reads only the file given
        attrs = {k: decode_attr(v) for k, v in f.attrs.items()}
        prov = attrs.get("provenance") if isinstance(attrs.get("provenance"), dict) else None
        dsets = _h5_datasets(f)
        if "samples" in dsets:
            raise FormatError(f"{path} is a dataset file, not a result; give it with --members or "
                              f"--synthetic for pictures, or measure it first (pgan attack, mmd ...)")
        stamp = attrs.get("format")
        if stamp not in (formats.KNN, formats.ATTACK_SCORES):
            raise _foreign(path, f"an HDF5 file with format {stamp!r}" if stamp is not None
                           else "an HDF5 file without a pgan format stamp")
        if stamp == formats.KNN:
            if "distances" not in dsets or "indices" not in dsets:
                raise FormatError(f"{path}: a pgan-knn file without 'distances' and 'indices'; re-run pgan knn")
            d = np.asarray(dsets["distances"][:], dtype=np.float64)
            if d.ndim != 2 or d.shape[0] == 0:
                raise FormatError(f"{path}: 'distances' has shape {d.shape}; expected (Nq, k) from pgan knn")
            if not np.isfinite(d).all():
                raise FormatError(f"{path}: 'distances' holds NaN or Inf; re-run pgan knn")
            return ResultFile(path=path, kind=KIND_KNN, data={"distances": d, "attrs": attrs},
                              provenance=prov)
        if attrs.get("format_version") != K.SCORES_FORMAT_VERSION:
            raise FormatError(f"{path}: scores format_version {attrs.get('format_version')!r} is not "
                              f"{K.SCORES_FORMAT_VERSION}; re-run pgan attack --scores")
        if K.SCORES_MEMBERSHIP not in dsets or dsets[K.SCORES_MEMBERSHIP].ndim != 1:
            raise FormatError(f"{path}: a scores file without '{K.SCORES_MEMBERSHIP}'; re-run pgan attack --scores")
        truth = np.asarray(dsets[K.SCORES_MEMBERSHIP][:]).astype(np.int64)
        if len(truth) == 0 or not set(np.unique(truth)) <= {0, 1} or len(np.unique(truth)) < 2:
            raise FormatError(f"{path}: '{K.SCORES_MEMBERSHIP}' must hold 0/1 membership for members and "
                              f"non-members")
        scores: dict[str, np.ndarray] = {}
        for name in (n for n in dsets if n.startswith(K.SCORES_GROUP + "/")):
            ds = dsets[name]
            label = name[len(K.SCORES_GROUP) + 1:]
            if ds.ndim != 1 or ds.shape[0] != len(truth) or ds.dtype.kind != "f":
                raise FormatError(f"{path}: '{name}' is not one score per candidate; re-run pgan attack --scores")
            s = np.asarray(ds[:], dtype=np.float64)
            if not np.isfinite(s).all():
                raise FormatError(f"{path}: scores of '{label}' hold NaN or Inf; an AUC on them would be "
                                  f"meaningless; re-run pgan attack")
            scores[label] = s
        dcr, dcr_arrays = {}, {}
        for key, label in ((K.SCORES_DCR_SYNTHETIC, "synthetic -> members"),
                           (K.SCORES_DCR_HOLDOUT, "holdout -> members")):
            name = f"{K.SCORES_DISTANCES_GROUP}/{key}"
            if name in dsets and dsets[name].ndim == 1 and dsets[name].shape[0] > 0:
                d = np.asarray(dsets[name][:], dtype=np.float64)
                if np.isfinite(d).all():
                    dcr[label] = d
                    dcr_arrays[key] = d
        if not scores:
            raise FormatError(f"{path} holds membership truth but no per-candidate scores")
        rows = None  # each candidate's row in its own file (members or non-members), when the file says
        if K.SCORES_CANDIDATE_INDEX in dsets and K.SCORES_CANDIDATE_SOURCE in dsets:
            idx, src = dsets[K.SCORES_CANDIDATE_INDEX], dsets[K.SCORES_CANDIDATE_SOURCE]
            if (idx.ndim != 1 or src.ndim != 1 or idx.shape[0] != len(truth) or src.shape[0] != len(truth)
                    or idx.dtype.kind not in "iu" or src.dtype.kind not in "iu"):
                raise FormatError(f"{path}: '{K.SCORES_CANDIDATE_INDEX}' and '{K.SCORES_CANDIDATE_SOURCE}' must "
                                  f"hold one integer per candidate; re-run pgan attack --scores")
            idx, src = np.asarray(idx[:], dtype=np.int64), np.asarray(src[:], dtype=np.int64)
            if (idx < 0).any() or not np.array_equal(src, truth):
                raise FormatError(f"{path}: candidate rows are negative or disagree with '{K.SCORES_MEMBERSHIP}'; "
                                  f"re-run pgan attack --scores")
            rows = idx
        return ResultFile(path=path, kind=KIND_SCORES, data={"truth": truth, "scores": scores, "dcr": dcr, "dcr_arrays": dcr_arrays,
                                                                "rows": rows, "attrs": attrs}, provenance=prov)


def load_result(path: str | Path) -> ResultFile:
    """Read and recognise one result file; raise FormatError for anything else."""
    p = check_input(path, "result file")
    suffix = p.suffix.lower()
    if suffix == ".json":
        res = _load_json(p)
    elif suffix in (".jsonl", ".ndjson"):
        res = _load_jsonl(p)
    elif suffix in (".h5", ".hdf5"):
        res = _load_h5(p)
    else:
        with open(p, "rb") as f:
            head = f.read(8)
        if head.startswith(b"\x89HDF"):
            res = _load_h5(p)
        elif head.lstrip()[:1] in (b"{", b"["):
            res = _load_json(p)
        else:
            raise _foreign(p, f"a '{suffix or 'extension-less'}' file")
    res.sha256 = sha256_file(p)
    res.space = space_of(res.provenance)
    return res


def space_of(prov: Any) -> str:
    """The feature space a result was computed in: the embed method of its inputs, else pixel."""
    if not isinstance(prov, dict):
        return "pixel"
    for rec in prov.get("inputs") or []:
        parent = rec.get("provenance") if isinstance(rec, dict) else None
        if isinstance(parent, dict):
            params = parent.get("params") or {}
            method = params.get("method") if isinstance(params, dict) else None
            if isinstance(method, str) and _command_of(parent) in ("embed", None):
                return method.replace(":", "-")
    return "pixel"


def near_copy_count(value: Any) -> int | None:
    """The near-copy count whether the attack JSON gives a number or an object with a count."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        for key in ("count", "n", "number"):
            v = value.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                return int(v)
        for key in ("indices", "pairs", "worst_pairs"):
            if isinstance(value.get(key), list) and "count" not in value:
                return len(value[key])
    return None


def knn_pair(res: ResultFile) -> tuple[str, str]:
    """(query, reference) names of a knn file, from its provenance inputs."""
    prov = res.provenance or {}
    paths = [Path(r.get("path", "")).stem for r in prov.get("inputs") or [] if isinstance(r, dict)]
    if len(paths) >= 2:
        return paths[0], paths[1]
    stem = res.path.stem
    if "_" in stem:
        q, _, r = stem.rpartition("_")
        return q.replace("knn_", ""), r
    return stem, "reference"
