"""Build the audit summary (``summary.json``) from the result files :mod:`pgan_cli.report.results`
read: objects nested so a gate names a figure by a dotted path (``privacy.attacks.dcr.auc``); see
``docs/report.md`` for every key. The keys of attack results are those of pgan attack's JSON
(:mod:`pgan_cli.attacks.keys`), whether an attack is white-box comes from the attack itself
(``white_box``), and AUCs from :func:`pgan_cli.attacks.evaluation.auc`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from pgan_cli import formats
from pgan_cli.attacks import keys as K
from pgan_cli.attacks.evaluation import auc as attack_auc
from pgan_cli.dataset import decode_attr
from pgan_cli.errors import FormatError, InputError
from pgan_cli.files import sha256_file
from pgan_cli.privacy.one_run_audit import exceeds_claim
from pgan_cli.report.results import (KIND_ATTACK, KIND_DP_AUDIT, KIND_FIDELITY, KIND_KNN, KIND_MMD, KIND_SCORES, KIND_SUMMARY,
                                     KIND_TRAIN_LOG, KIND_UTILITY, ResultFile, _command_of, knn_pair,
                                     near_copy_count)


# Top-level keys of summary.json (constants, imported by gates, html and the tests); the keys of
# an attack result are those of pgan attack's JSON (pgan_cli.attacks.keys), kept as they are.
KEY_PRIVACY, KEY_FIDELITY, KEY_UTILITY, KEY_TRAINING = "privacy", "fidelity", "utility", "training"
KEY_ATTACKS, KEY_DISTANCES, KEY_DCR_SHARE, KEY_NEAR_COPIES = (K.KEY_ATTACKS, K.KEY_DISTANCES, K.KEY_DCR_SHARE,
                                                              K.KEY_NEAR_COPIES)
KEY_VERDICT, KEY_GATES, KEY_INPUTS = "verdict", "gates", "inputs"
KEY_AUC, KEY_TPR = K.KEY_AUC, K.KEY_TPR_AT_FPR
KEY_BLACK_BOX = "black_box"
SUMMARY_FORMAT = formats.SUMMARY
MAX_LIST = 400  # lists with more numbers than this (per-sample arrays) stay out of the summary


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


# the figures the report derives beside each near_copies count; a result file that gives them must
# give the report's own values (pgan attack writes none of them)
NEAR_COPY_DERIVED = ("near_copies_expected", "near_copies_excess", "near_copies_basis")


def _near_copy_figures(res: ResultFile, count: Any, scores: list[ResultFile]) -> dict[str, Any]:
    """``near_copies_expected``, ``near_copies_excess`` and ``near_copies_basis`` of one attack
    result (:func:`near_copy_allowance`); empty when its near-copy count or set size is unknown."""
    dist = res.data.get("distances") or {}
    threshold = dist.get("near_copy_threshold")
    sets = res.data.get("sets") or {}
    syn = sets.get("synthetic")
    n_syn = syn.get("n") if isinstance(syn, dict) else syn if isinstance(syn, int) else None
    match = next((s for s in scores if s.space == res.space and s.data.get("dcr_arrays")), None)
    hold = match.data["dcr_arrays"].get(K.SCORES_DCR_HOLDOUT) if match else None
    if n_syn is None and match is not None and K.SCORES_DCR_SYNTHETIC in match.data["dcr_arrays"]:
        n_syn = len(match.data["dcr_arrays"][K.SCORES_DCR_SYNTHETIC])
    if not isinstance(count, int) or not isinstance(n_syn, int) or n_syn <= 0:
        return {}
    allowed, rate, basis = near_copy_allowance(n_syn, hold, threshold if isinstance(threshold, (int, float)) else None)
    return dict(zip(NEAR_COPY_DERIVED, (allowed, max(0, count - allowed), basis)))


def _near_copies_beyond_chance(results: list[ResultFile], privacy: dict[str, Any]) -> None:
    """Add ``near_copies_expected`` and ``near_copies_excess`` next to each ``near_copies`` count,
    derived here whatever the file says: a file that gives other values (or values the report
    cannot derive, without a set size) is malformed, so a forged excess of 0 never passes."""
    scores = [r for r in results if r.kind == KIND_SCORES]
    for res in results:
        key = res.extra.get("distances_key")
        if res.kind != KIND_ATTACK or key is None:
            continue
        d = privacy[key]
        given = {k: d.pop(k) for k in NEAR_COPY_DERIVED if k in d}
        d.update(_near_copy_figures(res, d.get(KEY_NEAR_COPIES), scores))
        for k, v in res.data["distances"].items():
            if k in given and v is not None and v != d.get(k):
                why = ("the report derives it from near_copies and sets.synthetic, which this file does not "
                       "give" if k not in d else f"the report derives {json.dumps(d[k])} (near_copies "
                       f"{d[KEY_NEAR_COPIES]}, allowance {d['near_copies_expected']}: {d['near_copies_basis']})")
                raise FormatError(f"{res.path}: distances.{k} is {json.dumps(v)[:60]}, but {why}; give the "
                                  f"--json output of pgan attack unchanged")


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
                entry["targeted"] = isinstance(fig.get(K.KEY_TARGETS), list)  # scored over chosen targets
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
        elif res.kind == KIND_DP_AUDIT:
            a, c = res.data["audited"], res.data.get("claimed")
            key = _unique("dp_audit", taken["attack"], res)
            taken["attack"].add(key)
            privacy[key] = {"claimed_epsilon": _num(c.get("epsilon")) if c else None,
                            "claimed_delta": _num(c.get("delta")) if c else None,
                            "epsilon_lower_bound": _num(a["epsilon_lower_bound"]),
                            "confidence": _num(a.get("confidence")), "guesses": _num(a.get("guesses")),
                            "correct": _num(a.get("correct")), "auc": _num(a.get("auc")),
                            "canaries": _num((res.data.get("canaries") or {}).get("m")),
                            "score": res.data.get("score"),
                            "exceeds_claim": int(exceeds_claim(a["epsilon_lower_bound"], c.get("epsilon") if c else None))}
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
