"""Read the results of pgan's measuring commands and build the audit summary (``summary.json``).

Each input is recognised by its stamp (:mod:`pgan_cli.formats`): the ``format`` of a JSON result
(``pgan-attack``, ``pgan-mmd``, ``pgan-fidelity``, ``pgan-utility``, ``pgan-summary``) or the
``format`` attribute of an HDF5 result (``pgan-knn``, ``pgan-attack-scores``); a training log
(``pgan train --log``) is JSON lines whose records hold ``step``. The keys of attack results
and scores files come from :mod:`pgan_cli.attacks.keys`, whether an attack is white-box from the
attack itself (``white_box``), and AUCs from :func:`pgan_cli.attacks.evaluation.auc`.

Anything else (a dataset file, a foreign JSON, a missing file) is refused with a message saying
what was expected. The summary nests objects so a gate names a figure by a dotted path
(``privacy.attacks.dcr.auc``); see ``docs/report.md`` for every key.
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
from pgan_cli.attacks.evaluation import auc as attack_auc
from pgan_cli.dataset import decode_attr
from pgan_cli.errors import FormatError, InputError
from pgan_cli.files import check_input, sha256_file

KIND_ATTACK = "attack"
KIND_MMD = "mmd"
KIND_FIDELITY = "fidelity"
KIND_UTILITY = "utility"
KIND_TRAIN_LOG = "train-log"
KIND_KNN = "knn"
KIND_SCORES = "scores"
KIND_SUMMARY = "summary"  # summary.json of another report/audit: the runs of a comparison
JSON_KINDS = (KIND_ATTACK, KIND_MMD, KIND_FIDELITY, KIND_UTILITY)
# Privacy results: given any of these and no --gate, the default preset applies (docs/report.md,
# "Fail closed"), even when they hold no attack at all.
PRIVACY_KINDS = (KIND_ATTACK, KIND_KNN, KIND_SCORES)
KINDS = JSON_KINDS + (KIND_TRAIN_LOG, KIND_KNN, KIND_SCORES, KIND_SUMMARY)

# Top-level keys of summary.json (constants, imported by gates, html and the tests); the keys of
# an attack result are those of pgan attack's JSON (pgan_cli.attacks.keys), kept as they are.
KEY_PRIVACY, KEY_FIDELITY, KEY_UTILITY, KEY_TRAINING = "privacy", "fidelity", "utility", "training"
KEY_ATTACKS, KEY_DISTANCES, KEY_DCR_SHARE, KEY_NEAR_COPIES = (K.KEY_ATTACKS, K.KEY_DISTANCES, K.KEY_DCR_SHARE,
                                                              K.KEY_NEAR_COPIES)
KEY_VERDICT, KEY_GATES, KEY_INPUTS = "verdict", "gates", "inputs"
KEY_AUC, KEY_TPR = K.KEY_AUC, K.KEY_TPR_AT_FPR
KEY_BLACK_BOX = "black_box"
SUMMARY_FORMAT = formats.SUMMARY
_KIND_OF_STAMP = {formats.ATTACK: KIND_ATTACK, formats.MMD: KIND_MMD, formats.FIDELITY: KIND_FIDELITY,
                  formats.UTILITY: KIND_UTILITY, formats.SUMMARY: KIND_SUMMARY}
MAX_LIST = 400  # lists with more numbers than this (per-sample arrays) stay out of the summary


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
    return ResultFile(path=path, kind=kind, data=data, provenance=data.get("provenance"))


# The figures of pgan attack's JSON that gates compare (pgan_cli/attacks/keys.py): each must be a
# number, or null where it could not be computed (NaN and Infinity read as null too).
_ATTACK_NUMBERS = ("auc", "advantage", "balanced_accuracy", "epsilon_lower_bound")
_DISTANCE_NUMBERS = ("dcr_share", "nnaa_privacy_loss", "authenticity", "data_copying_ct",
                     "near_copies_excess", "near_copies_expected")


def _is_number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _check_attack(path: Path, data: dict[str, Any]) -> None:
    """Refuse an attack result whose shape a gate could misread: ``attacks`` not an object, an
    attack that is not an object, or a gated figure that is a string (or a bool, a list ...).
    A malformed privacy result is bad input (exit 2), never an empty one that passes."""
    def bad(where: str, v: Any, want: str) -> FormatError:
        return FormatError(f"{path}: {where} is {json.dumps(v)[:60]}, not {want}; "
                           f"give the --json output of pgan attack unchanged")

    attacks = data.get("attacks", {})
    if not isinstance(attacks, dict):
        raise bad("attacks", attacks, "an object of attack results")
    for name, fig in attacks.items():
        if not isinstance(fig, dict):
            raise bad(f"attacks.{name}", fig, "an object")
        for key in _ATTACK_NUMBERS:
            if key in fig and not _is_number(fig[key]):
                raise bad(f"attacks.{name}.{key}", fig[key], "a number")
        tpr = fig.get("tpr_at_fpr")
        if "tpr_at_fpr" in fig and not isinstance(tpr, dict):
            raise bad(f"attacks.{name}.tpr_at_fpr", tpr, "an object of numbers")
        for level, v in (tpr or {}).items():
            if not _is_number(v):
                raise bad(f"attacks.{name}.tpr_at_fpr.{level}", v, "a number")
    dist = data.get("distances")
    if dist is None:
        return
    if not isinstance(dist, dict):
        raise bad("distances", dist, "an object")
    for key in _DISTANCE_NUMBERS:
        if key in dist and not _is_number(dist[key]):
            raise bad(f"distances.{key}", dist[key], "a number")
    nc = dist.get(KEY_NEAR_COPIES)
    if nc is not None and not (isinstance(nc, float) and not math.isfinite(nc)) and near_copy_count(nc) is None:
        raise bad(f"distances.{KEY_NEAR_COPIES}", dist[KEY_NEAR_COPIES], "a count")


def _load_jsonl(path: Path) -> ResultFile:
    from pgan_cli.training.callbacks import read_training_log

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
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError:
        raise FormatError(f"{path} is not a readable HDF5 file; is it truncated? Re-create it with "
                          f"the pgan command that wrote it") from None
    with f:
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
        return ResultFile(path=path, kind=KIND_SCORES, data={"truth": truth, "scores": scores, "dcr": dcr, "dcr_arrays": dcr_arrays,
                                                                "attrs": attrs}, provenance=prov)


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


def _unique(name: str, taken: set[str], res: ResultFile) -> str:
    if name not in taken:
        return name
    for cand in (f"{name}@{res.space}", f"{name}@{res.path.stem}"):
        if cand not in taken:
            return cand
    i = 2
    while f"{name}@{res.path.stem}{i}" in taken:
        i += 1
    return f"{name}@{res.path.stem}{i}"


# ---- building the summary ---------------------------------------------------------------------
def _num(v: Any) -> Any:
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(float(v)) else None
    return v


def _count_numbers(v: Any) -> int:
    if isinstance(v, list):
        return sum(_count_numbers(x) for x in v)
    return 1


def figures(obj: Any) -> Any:
    """The figures of a result: nested dicts of numbers, strings and small lists; no provenance,
    no per-sample arrays (those stay in the result files)."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k == "provenance":
                continue
            c = figures(v)
            if c is not _DROP:
                out[str(k)] = c
        return out
    if isinstance(obj, list):
        if _count_numbers(obj) > MAX_LIST or any(isinstance(x, dict) for x in obj):
            return _DROP
        return [figures(x) for x in obj]
    return _num(obj)


_DROP = object()


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


def _find_dp(obj: Any, depth: int = 0) -> dict[str, Any] | None:
    """The DP-SGD record (``dp`` with an ``epsilon``) anywhere in a provenance chain."""
    if depth > 12:
        return None
    if isinstance(obj, dict):
        dp = obj.get("dp")
        if isinstance(dp, dict) and isinstance(dp.get("epsilon"), (int, float)):
            return dp
        for v in obj.values():
            found = _find_dp(v, depth + 1)
            if found is not None:
                return found
    elif isinstance(obj, list):
        for v in obj:
            found = _find_dp(v, depth + 1)
            if found is not None:
                return found
    return None


def _find_seeds(obj: Any, out: dict[str, Any], depth: int = 0) -> None:
    if depth > 12 or not isinstance(obj, (dict, list)):
        return
    if isinstance(obj, list):
        for v in obj:
            _find_seeds(v, out, depth + 1)
        return
    cmd = _command_of(obj)
    if cmd and obj.get("seed") is not None:
        out.setdefault(f"pgan {cmd}", obj["seed"])
    for v in obj.values():
        _find_seeds(v, out, depth + 1)


NEAR_COPY_RATE = 0.01  # the threshold is the 1st percentile of member-to-member NN distances
NEAR_COPY_QUANTILE = 0.99  # a clean release exceeds the allowance 1% of the time at most


def near_copy_allowance(n_synthetic: int, holdout_dcr: np.ndarray | None, threshold: float | None) -> tuple[int, float, str]:
    """How many near-copies a release with no copying shows by chance, and the rate it assumes.

    The near-copy threshold of ``pgan attack`` is the 1st percentile of member-to-member
    nearest-neighbour distances (docs/report.md), so records the generator never saw fall below it
    at a rate of about 1%. The rate is measured on the holdout records (their distance to the
    nearest member) when the scores file gives them, taking the Clopper-Pearson 95% upper bound;
    else it is 1%. The allowance is the 99% quantile of Binomial(|S|, rate).
    """
    from scipy.stats import beta, binom

    if holdout_dcr is not None and threshold is not None and len(holdout_dcr) > 0:
        k, n = int((holdout_dcr < threshold).sum()), len(holdout_dcr)
        rate = float(beta.ppf(0.95, k + 1, n - k)) if k < n else 1.0
        basis = f"holdout rate {k}/{n} (95% upper bound {rate:.4f})"
    else:
        rate, basis = NEAR_COPY_RATE, "1% by the threshold's definition"
    return int(binom.ppf(NEAR_COPY_QUANTILE, n_synthetic, rate)), rate, basis


def _near_copies_beyond_chance(results: list[ResultFile], privacy: dict[str, Any]) -> None:
    """Add ``near_copies_expected`` and ``near_copies_excess`` next to each ``near_copies`` count."""
    scores = [r for r in results if r.kind == KIND_SCORES]
    for res in results:
        key = res.extra.get("distances_key")
        if res.kind != KIND_ATTACK or key is None:
            continue
        d = privacy[key]
        count = d.get(KEY_NEAR_COPIES)
        if not isinstance(count, int):
            continue
        dist = res.data.get("distances") or {}
        threshold = dist.get("near_copy_threshold")
        sets = res.data.get("sets") or {}
        syn = sets.get("synthetic")
        n_syn = syn.get("n") if isinstance(syn, dict) else syn if isinstance(syn, int) else None
        match = next((s for s in scores if s.space == res.space and s.data.get("dcr_arrays")), None)
        hold = match.data["dcr_arrays"].get(K.SCORES_DCR_HOLDOUT) if match else None
        if n_syn is None and match is not None and K.SCORES_DCR_SYNTHETIC in match.data["dcr_arrays"]:
            n_syn = len(match.data["dcr_arrays"][K.SCORES_DCR_SYNTHETIC])
        if not isinstance(n_syn, int) or n_syn <= 0:
            continue
        allowed, rate, basis = near_copy_allowance(n_syn, hold, threshold if isinstance(threshold, (int, float)) else None)
        d["near_copies_expected"] = allowed
        d["near_copies_excess"] = max(0, count - allowed)
        d["near_copies_basis"] = basis


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


def dcr_stats(d: np.ndarray) -> dict[str, float]:
    d = np.asarray(d, dtype=np.float64)
    return {"p5": float(np.percentile(d, 5)), "median": float(np.median(d)),
            "mean": float(d.mean()), "n": int(len(d))}


def build_summary(results: list[ResultFile], datasets: dict[str, Path] | None = None) -> dict[str, Any]:
    """The nested summary of every figure in ``results`` (verdict and gates are added later).

    ``datasets`` maps roles (``members``, ``synthetic``) to dataset files given for pictures;
    they count as inputs (hash recorded) and their provenance is searched for DP records.
    """
    if not results and not datasets:
        raise InputError("no result files given; pass the JSON of pgan attack, mmd, fidelity or "
                         "utility (or run pgan audit, which runs them all)")
    privacy: dict[str, Any] = {}
    fidelity: dict[str, Any] = {}
    utility: dict[str, Any] = {}
    training: dict[str, Any] = {}
    attacks: dict[str, Any] = {}
    taken: dict[str, set[str]] = {"attack": set(), "fidelity": set(), "utility": set(), "knn": set(),
                                  "scores": set(), "log": set()}
    seen: dict[str, Path] = {}
    for res in results:
        if res.sha256 in seen:
            raise InputError(f"{res.path} is the same file as {seen[res.sha256]} (same SHA-256); give each result once")
        seen[res.sha256] = res.path
        if res.kind == KIND_ATTACK:
            data = res.data
            for name, fig in (data.get("attacks") or {}).items():
                if not isinstance(fig, dict):
                    raise FormatError(f"{res.path}: attacks.{name} is not an object")
                label = _unique(str(name), taken["attack"], res)
                taken["attack"].add(label)
                entry = figures(fig)
                if not isinstance(fig.get(K.KEY_WHITE_BOX), bool):
                    raise FormatError(f"{res.path}: attacks.{name} does not say whether it is white-box "
                                      f"('{K.KEY_WHITE_BOX}'); re-run pgan attack")
                entry[KEY_BLACK_BOX] = not fig[K.KEY_WHITE_BOX]
                entry["space"] = res.space
                attacks[label] = entry
            dist = data.get("distances")
            if isinstance(dist, dict):
                d = figures(dist)
                if KEY_NEAR_COPIES in dist:
                    d[KEY_NEAR_COPIES] = near_copy_count(dist[KEY_NEAR_COPIES])
                key = _unique(KEY_DISTANCES, taken["attack"], res)
                taken["attack"].add(key)
                privacy[key] = d
                res.extra["distances_key"] = key
            if isinstance(data.get("sets"), dict):
                privacy.setdefault("sets", figures(data["sets"]))
            res.name = res.space
        elif res.kind == KIND_MMD:
            key = _unique("mmd", taken["fidelity"], res)
            taken["fidelity"].add(key)
            fidelity[key] = figures(res.data)
            res.name = key
        elif res.kind == KIND_FIDELITY:
            metrics = res.data.get("metrics") if isinstance(res.data.get("metrics"), dict) else res.data
            for k, v in figures(metrics).items():
                label = _unique(k, taken["fidelity"], res)
                taken["fidelity"].add(label)
                fidelity[label] = v
            res.name = res.space
        elif res.kind == KIND_UTILITY:
            for k, v in figures(res.data).items():
                label = _unique(k, taken["utility"], res)
                taken["utility"].add(label)
                utility[label] = v
            res.name = res.space
        elif res.kind == KIND_TRAIN_LOG:
            recs = res.data
            last = recs[-1]
            key = _unique("log", taken["log"], res)
            taken["log"].add(key)
            entry = {"steps": _num(last.get("step")), "records": len(recs),
                     "final": {k: _num(v) for k, v in last.items() if isinstance(v, (int, float))}}
            if key == "log":
                training.update(entry)
            else:
                training[key] = entry
            res.name = key
        elif res.kind == KIND_SUMMARY:
            res.name = res.path.parent.name if res.path.name == "summary.json" else res.path.stem
        elif res.kind == KIND_KNN:
            q, r = knn_pair(res)
            label = _unique(f"{q}_to_{r}", taken["knn"], res)
            taken["knn"].add(label)
            privacy.setdefault("nearest_neighbours", {})[label] = dcr_stats(res.data["distances"][:, 0])
            res.name = label
        elif res.kind == KIND_SCORES:
            truth = res.data["truth"]
            for name, s in res.data["scores"].items():
                label = _unique(name, taken["scores"], res)
                taken["scores"].add(label)
                privacy.setdefault("scores_auc", {})[label] = attack_auc(s, truth)
            res.name = res.path.stem
    _near_copies_beyond_chance(results, privacy)
    runs = [r for r in results if r.kind == KIND_SUMMARY]
    comparison = None
    if runs:
        from pgan_cli.report.curve import privacy_utility_points

        comparison = {"runs": privacy_utility_points([dict(r.data, name=r.name) for r in runs])}
    if attacks:
        privacy[KEY_ATTACKS] = attacks
        bb = [a for a in attacks.values() if a.get("black_box") and isinstance(a.get(KEY_AUC), (int, float))]
        if bb:
            privacy["max_black_box_auc"] = max(a[KEY_AUC] for a in bb)

    from pgan_cli.provenance import shown_path

    inputs = [{"path": shown_path(r.path), "kind": r.kind, "sha256": r.sha256, "space": r.space,
               **({"command": r.provenance.get("command")} if isinstance(r.provenance, dict) else {})}
              for r in results]
    chains: list[Any] = [r.provenance for r in results]
    for role, p in (datasets or {}).items():
        from pgan_cli.provenance import read_provenance

        prov = read_provenance(p)
        chains.append(prov)
        inputs.append({"path": shown_path(p), "kind": f"dataset ({role})", "sha256": sha256_file(p)})
        try:
            import h5py

            with h5py.File(p, "r") as f:
                ldp = decode_attr(f.attrs["ldp"]) if "ldp" in f.attrs else None
            if isinstance(ldp, dict):
                privacy.setdefault("ldp", figures(ldp))
        except OSError:
            pass
    dp = _find_dp(chains)
    if dp is not None:
        privacy["dp"] = figures(dp)
    seeds: dict[str, Any] = {}
    _find_seeds(chains, seeds)
    versions = next((c.get("versions") for c in chains if isinstance(c, dict) and c.get("versions")), None)

    summary: dict[str, Any] = formats.stamped(SUMMARY_FORMAT, {})
    for key, part in ((KEY_PRIVACY, privacy), (KEY_FIDELITY, fidelity), (KEY_UTILITY, utility),
                      (KEY_TRAINING, training)):
        if part:
            summary[key] = part
    if comparison:
        summary["comparison"] = comparison
    summary[KEY_INPUTS] = inputs
    summary["seeds"] = seeds
    if versions:
        summary["versions"] = versions
    return summary


def get_path(summary: dict[str, Any], path: str) -> Any:
    """Follow a dotted path into nested objects; keys that contain dots (``tpr_at_fpr.0.01``) match
    greedily. Raise KeyError naming the first part that is missing."""
    node: Any = summary
    parts = path.split(".")
    i = 0
    while i < len(parts):
        if not isinstance(node, dict):
            raise KeyError(".".join(parts[:i]))
        for j in range(len(parts), i, -1):
            key = ".".join(parts[i:j])
            if key in node:
                node = node[key]
                i = j
                break
        else:
            raise KeyError(".".join(parts[: i + 1]))
    return node
