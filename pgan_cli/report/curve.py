"""The privacy-utility curve: utility and membership-attack AUC against epsilon.

- :func:`privacy_utility_points` reads several audit summaries (the ``summary.json`` of
  ``pgan report``/``pgan audit``, as dicts or paths), one per training run, and returns one point
  per run: epsilon (``privacy.dp.epsilon``, or ``privacy.ldp.epsilon_total`` for local DP; None
  when the run was not private), the utility figure and the attack AUC.
- :func:`privacy_utility_figure` draws the points in one matplotlib figure (utility on the left
  axis, attack AUC on the right, epsilon on a log axis with "no DP" at the right end).
- :func:`privacy_utility_curve` does both (what ``pgan report`` calls with several audits).
- :func:`digits_ldp_utility`: the DP-MNIST seed's experiment on scikit-learn's digits: a
  logistic regression trained on locally privatized images (raw labels) and tested on raw images.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from pgan_cli.errors import FormatError, InputError

# The summary.json keys (pgan_cli.report.summary) of each figure: the privacy budget of a run
# trained with DP-SGD, or of a release privatised with local DP (labels included); the TSTR
# balanced accuracy; the strongest black-box attack.
EPSILON_PATHS = ("privacy.dp.epsilon", "privacy.ldp.epsilon_total")
UTILITY_PATHS = ("utility.tstr.balanced_accuracy",)
ATTACK_PATHS = ("privacy.max_black_box_auc",)
NO_DP_LABEL = "no DP"


def get_path(obj: Any, path: str) -> Any:
    """The summary's figure at a dotted path (:func:`pgan_cli.report.summary.get_path`), None when absent."""
    from pgan_cli.report.summary import get_path as follow

    try:
        return follow(obj, path)
    except KeyError:
        return None


def _first(obj: Any, paths: tuple[str, ...] | list[str]) -> tuple[float | None, str | None]:
    for p in paths:
        v = get_path(obj, p)
        if isinstance(v, dict):
            v = v.get("value", v.get("mean"))
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            return float(v), p
    return None, None


def _load(s: Any) -> tuple[dict[str, Any], str]:
    if isinstance(s, dict):
        return s, str(s.get("name", ""))
    p = Path(s)
    if p.is_dir():
        p = p / "summary.json"
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"{p} does not exist; give the summary.json of pgan report/audit") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise FormatError(f"{p} is not a JSON summary ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise FormatError(f"{p} is not a JSON object")
    return data, p.parent.name if p.name == "summary.json" else p.stem


def privacy_utility_points(summaries: list[Any], *, utility_path: str | None = None,
                           attack_path: str | None = None) -> list[dict[str, Any]]:
    """One point per audit summary: ``{label, epsilon, delta, utility, attack_auc, ...}``,
    sorted by epsilon (non-private runs, epsilon None, last)."""
    if not summaries:
        raise InputError("no audit summaries given for the privacy-utility curve")
    points = []
    for s in summaries:
        data, label = _load(s)
        eps, eps_from = _first(data, EPSILON_PATHS)
        util, util_from = _first(data, [utility_path] if utility_path else UTILITY_PATHS)
        auc, auc_from = _first(data, [attack_path] if attack_path else ATTACK_PATHS)
        if util is None and auc is None:
            raise FormatError(f"summary {label or '?'} has neither a utility figure ({', '.join(UTILITY_PATHS)}) "
                              f"nor an attack AUC ({', '.join(ATTACK_PATHS)})")
        delta = get_path(data, "privacy.dp.delta") if eps_from == "privacy.dp.epsilon" else get_path(data, "privacy.ldp.delta")
        points.append({"label": label or (f"eps={eps:g}" if eps is not None else NO_DP_LABEL),
                       "epsilon": eps, "delta": delta, "utility": util, "attack_auc": auc,
                       "epsilon_from": eps_from, "utility_from": util_from, "attack_from": auc_from})
    points.sort(key=lambda p: (p["epsilon"] is None, p["epsilon"] or 0.0))
    return points


def privacy_utility_figure(points: list[dict[str, Any]], *, title: str = "Privacy-utility trade-off",
                           utility_label: str = "utility (TSTR balanced accuracy)",
                           attack_label: str = "membership attack AUC"):
    """A matplotlib Figure: utility (left axis) and attack AUC (right axis) against epsilon."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    finite = [p["epsilon"] for p in points if p["epsilon"] is not None]
    hi = max(finite) if finite else 1.0
    lo = min(finite) if finite else 1.0
    x_none = hi * 4.0 if finite else 1.0
    xs = [p["epsilon"] if p["epsilon"] is not None else x_none for p in points]
    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xscale("log")
    ax.set_xlim(lo / 2.0, x_none * 2.0)
    ticks = sorted(set(finite)) + ([x_none] if any(p["epsilon"] is None for p in points) else [])
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:.3g}" for t in sorted(set(finite))] + ([NO_DP_LABEL] if len(ticks) > len(set(finite)) else []))
    ax.minorticks_off()
    ax.set_xlabel("epsilon (lower = more private)")
    u = [(x, p["utility"]) for x, p in zip(xs, points) if p["utility"] is not None]
    a = [(x, p["attack_auc"]) for x, p in zip(xs, points) if p["attack_auc"] is not None]
    if u:
        ax.plot(*zip(*u), "o-", color="tab:blue", label=utility_label)
    ax.set_ylabel(utility_label, color="tab:blue")
    ax.set_ylim(0.0, 1.02)
    ax2 = ax.twinx()
    if a:
        ax2.plot(*zip(*a), "s--", color="tab:red", label=attack_label)
    ax2.axhline(0.5, color="tab:red", lw=0.8, alpha=0.4)
    ax2.set_ylabel(attack_label, color="tab:red")
    ax2.set_ylim(0.4, 1.02)
    ax.set_title(title)
    return fig


def privacy_utility_curve(summaries: list[Any], **kwargs: Any):
    """``(points, figure)`` for several audit summaries (see the two functions above)."""
    fig_kwargs = {k: kwargs.pop(k) for k in ("title", "utility_label", "attack_label") if k in kwargs}
    points = privacy_utility_points(summaries, **kwargs)
    return points, privacy_utility_figure(points, **fig_kwargs)


# ---- the seed's local-DP experiment -------------------------------------------------------------
def digits_ldp_utility(mechanism: str, epsilons: list[float], *, seed: int = 0, delta: float = 1e-5,
                       clip: float | None = None) -> list[dict[str, Any]]:
    """Accuracy on raw digits of a logistic regression trained on LDP-privatized digits.

    scikit-learn digits in [-1, 1], a stratified 50/50 split (seed), raw labels; one row per
    epsilon with the mechanism's parameters. Row ``epsilon=None`` is not added: the raw baseline
    is in every row as ``raw_accuracy``.
    """
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from pgan_cli.privacy.ldp import privatize

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0 * 2.0 - 1.0)[:, None]
    xa, xb, ya, yb = train_test_split(x, d.target, test_size=0.5, stratify=d.target, random_state=seed)
    flat_b = xb.reshape(len(xb), -1)

    def fit_score(train_x: np.ndarray) -> float:
        clf = LogisticRegression(max_iter=2000)
        clf.fit(train_x.reshape(len(train_x), -1), ya)
        return float(clf.score(flat_b, yb))

    raw = fit_score(xa)
    rows = []
    for i, eps in enumerate(epsilons):
        r = privatize(xa, ya, mechanism=mechanism, epsilon=float(eps), keep_raw_labels=True,
                      delta=delta if mechanism == "gaussian" else None, clip=clip, seed=seed * 1000 + i)
        info = {k: r.info[k] for k in ("sigma", "scale", "p", "q", "epsilon_per_pixel", "clip") if r.info.get(k) is not None}
        rows.append({"mechanism": mechanism, "epsilon": float(eps), "accuracy": fit_score(r.samples),
                     "raw_accuracy": raw, **info})
    return rows
