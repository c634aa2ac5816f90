"""The privacy-utility curve library (pgan_cli.report.curve) on audit summaries."""

from __future__ import annotations

import json

import pytest

from pgan_cli.errors import FormatError, InputError
from pgan_cli.report.curve import privacy_utility_curve, privacy_utility_points


def _summary(eps, util, auc):
    s = {"format": "pgan-summary", "utility": {"tstr": {"balanced_accuracy": util, "accuracy": util + 0.01}},
         "privacy": {"max_black_box_auc": auc, "attacks": {"dcr": {"auc": auc}}}}
    if eps is not None:
        s["privacy"]["dp"] = {"epsilon": eps, "delta": 1e-5}
    return s


def test_points_sorted_with_no_dp_last(tmp_path):
    paths = []
    for name, eps, util, auc in (("none", None, 0.9, 0.7), ("e10", 10.0, 0.8, 0.6), ("e1", 1.0, 0.5, 0.52)):
        d = tmp_path / f"audit_{name}"
        d.mkdir()
        (d / "summary.json").write_text(json.dumps(_summary(eps, util, auc)))
        paths.append(d / "summary.json")
    points = privacy_utility_points(paths)
    assert [p["epsilon"] for p in points] == [1.0, 10.0, None]
    assert [p["utility"] for p in points] == [0.5, 0.8, 0.9]
    assert [p["attack_auc"] for p in points] == [0.52, 0.6, 0.7]
    assert points[0]["label"] == "audit_e1" and points[0]["delta"] == 1e-5
    assert points[0]["utility_from"] == "utility.tstr.balanced_accuracy"


def test_local_dp_epsilon_and_custom_paths():
    s = {"privacy": {"ldp": {"epsilon": 50.0, "epsilon_total": 52.0}, "attacks": {"logan": {"auc": 0.55}}},
         "utility": {"tstr": {"balanced_accuracy": 0.7}}}
    (p,) = privacy_utility_points([s], attack_path="privacy.attacks.logan.auc")
    assert p["epsilon"] == 52.0 and p["attack_auc"] == 0.55 and p["utility"] == 0.7


def test_figure_has_both_series():
    points, fig = privacy_utility_curve([_summary(1.0, 0.5, 0.5), _summary(4.0, 0.7, 0.55), _summary(None, 0.9, 0.8)])
    ax, ax2 = fig.axes
    (u_line,), (a_line,) = [ln for ln in ax.lines], [ln for ln in ax2.lines if ln.get_marker() == "s"]
    assert list(u_line.get_ydata()) == [0.5, 0.7, 0.9] and list(a_line.get_ydata()) == [0.5, 0.55, 0.8]
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "no DP"
    assert len(points) == 3


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError):
        privacy_utility_points([])
    with pytest.raises(InputError):
        privacy_utility_points([tmp_path / "missing.json"])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(FormatError):
        privacy_utility_points([bad])
    with pytest.raises(FormatError, match="neither a utility"):
        privacy_utility_points([{"privacy": {"dp": {"epsilon": 1.0}}}])
