"""The report's members-at-risk table and its density map: p-values against a brute-force count,
a planted leak whose copied members must head the table with near-zero distances, rows that do
not refer to --members (no distances), hostile candidate rows, and the kernel-density panels."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import assert_clean_error, run_pgan
from pgan_cli.attacks import keys as K
from pgan_cli.report.exposure import FLAG_P, chance_count, empirical_p_values
from pgan_cli.report.measure import density_panel


def test_empirical_p_values_match_a_count(rng):
    h = rng.normal(size=200).round(1)  # ties on purpose
    m = np.r_[rng.normal(size=50).round(1), 99.0, -99.0]
    want = np.array([(1 + (h >= s).sum()) / (1 + len(h)) for s in m])
    np.testing.assert_allclose(empirical_p_values(m, h), want)
    assert empirical_p_values(np.array([99.0]), h)[0] == pytest.approx(1 / 201)
    assert empirical_p_values(np.array([-99.0]), h)[0] == 1.0


def test_chance_count_is_the_null_rate(rng):
    """When members score like non-members, the share of members with p <= 0.01 is what
    chance_count predicts (2,000 repetitions of 100 members against 299 non-members)."""
    hits = []
    for _ in range(2000):
        s = rng.normal(size=399)
        hits.append((empirical_p_values(s[:100], s[100:]) <= FLAG_P).sum())
    assert np.mean(hits) == pytest.approx(chance_count(100, 299), rel=0.1)
    assert chance_count(100, 299) == pytest.approx(100 * 3 / 300)


def test_density_panel_overlap_and_levels(rng):
    a, b = rng.normal(size=(600, 2)), rng.normal(size=(600, 2))
    same = density_panel(a, b)
    apart = density_panel(a, b + 6.0)
    assert same.overlap > 0.85 and apart.overlap < 0.05
    # the 50% and 90% levels enclose about that share of each set's own points
    from scipy.stats import gaussian_kde

    dens_at = gaussian_kde(a.T)(a.T)
    lo, hi = same.levels_real
    assert (dens_at >= hi).mean() == pytest.approx(0.5, abs=0.01)
    assert (dens_at >= lo).mean() == pytest.approx(0.9, abs=0.01)
    # fewer than 3 distinct points, or collinear ones: no density, no crash
    few = density_panel(a[:2], b)
    assert few.real is None and few.overlap is None and few.synthetic is not None
    line = np.c_[np.arange(10.0), 2 * np.arange(10.0)]
    assert density_panel(line, b).real is None


@pytest.fixture(scope="module")
def leaky(tmp_path_factory, digits_splits):
    """A synthetic set in which 30 of 300 rows copy a member (noise 0.01), attacked with --scores."""
    d = tmp_path_factory.mktemp("exposure")
    synth = d / "leak.h5"
    r = run_pgan("data", "leak", "--members", digits_splits["train"], "--population", digits_splits["reference"],
                 "--fraction", "0.1", "--noise", "0.01", "-n", "300", "--seed", "0", "-o", synth)
    assert r.exit_code == 0, r
    with h5py.File(synth, "r") as f:
        copied = sorted(set(np.asarray(f["leak_member_index"][:])[np.asarray(f["leak_is_copy"][:]).astype(bool)]))
    scores = d / "scores.h5"
    r = run_pgan("attack", "--members", digits_splits["train"], "--non-members", digits_splits["holdout"],
                 "--synthetic", synth, "--methods", "dcr,density", "--scores", scores, "--seed", "0", "--json")
    assert r.exit_code == 0, r
    (d / "attack.json").write_text(r.stdout)
    return {"dir": d, "synthetic": synth, "scores": scores, "attack": d / "attack.json", "copied": copied}


def _section(page: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">(.*?)</section>', page, re.S)
    assert m, sid
    return m.group(1)


def _table_after(body: str, heading: str) -> list[list[str]]:
    part = body.split(heading, 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", part, re.S)[1:]
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows]


def test_planted_copies_head_the_table(leaky, digits_splits):
    out = leaky["dir"] / "report.html"
    r = run_pgan("report", leaky["attack"], leaky["scores"], "--members", digits_splits["train"],
                 "--synthetic", leaky["synthetic"], "--preset", "none", "-o", out)
    assert r.exit_code == 0, r
    body = _section(out.read_text(), "exposure")
    assert "Not available" not in body
    rows = _table_after(body, "dcr (")
    assert len(rows) == 8
    copied = set(leaky["copied"])
    top_rows = [int(c[1]) for c in rows]
    assert set(top_rows) <= copied, (top_rows, sorted(copied))  # every top member is a planted copy
    for c in rows:
        p, dist = float(c[3]), float(c[4])
        assert p <= FLAG_P and dist < 0.5  # noise 0.01 on 64 values: distance about 0.08
    summary = _table_after(body, "</div>")  # the first table, after the how-to: one line per attack
    dcr_line = next(c for c in summary if c[0] == "dcr")
    singled, chance = int(dcr_line[3]), float(dcr_line[4])
    assert singled >= 0.6 * len(copied) and singled > 4 * chance, (singled, chance, len(copied))
    assert "<img" not in body  # no real image without --show-real-images


def test_real_images_only_when_asked(leaky, digits_splits):
    out = leaky["dir"] / "shown.html"
    r = run_pgan("report", leaky["attack"], leaky["scores"], "--members", digits_splits["train"],
                 "--synthetic", leaky["synthetic"], "--preset", "none", "--show-real-images", "-o", out)
    assert r.exit_code == 0, r
    body = _section(out.read_text(), "exposure")
    assert body.count('alt="member ') == 2 * 8  # two attacks, eight members each


def test_rows_of_another_file_get_no_distances(leaky, digits_splits):
    """Given a --members file the attack did not read, the rows cannot be located: no distance."""
    out = leaky["dir"] / "other.html"
    r = run_pgan("report", leaky["attack"], leaky["scores"], "--members", digits_splits["holdout"],
                 "--synthetic", leaky["synthetic"], "--preset", "none", "-o", out)
    assert r.exit_code == 0, r
    body = _section(out.read_text(), "exposure")
    assert "do not refer to the --members file" in body
    rows = _table_after(body, "dcr (")
    assert rows and all(c[4] == "n/a" for c in rows), rows


@pytest.mark.parametrize("damage", ["short", "negative", "swapped"])
def test_hostile_candidate_rows(leaky, tmp_path, damage):
    bad = tmp_path / "scores.h5"
    shutil.copy(leaky["scores"], bad)
    with h5py.File(bad, "r+") as f:
        idx = np.asarray(f[K.SCORES_CANDIDATE_INDEX][:])
        src = np.asarray(f[K.SCORES_CANDIDATE_SOURCE][:])
        del f[K.SCORES_CANDIDATE_INDEX]
        if damage == "short":
            f[K.SCORES_CANDIDATE_INDEX] = idx[:-1]
        elif damage == "negative":
            f[K.SCORES_CANDIDATE_INDEX] = idx - 10_000
        else:
            f[K.SCORES_CANDIDATE_INDEX] = idx
            del f[K.SCORES_CANDIDATE_SOURCE]
            f[K.SCORES_CANDIDATE_SOURCE] = 1 - src
    out = tmp_path / "r.html"
    r = run_pgan("report", leaky["attack"], bad, "-o", out)
    assert_clean_error(r, "candidate")
    assert not out.exists()


def test_copying_c2st_is_flagged_not_ideal(leaky, digits_splits, tmp_path):
    """A synthetic set that copies its members exactly: pgan fidelity's C2ST AUC falls far below 0.5
    (0.03 here), and the report says "copying signal" at the top and in the fidelity section. (Even
    noise 0.001 makes copies of the quantised digits separable: AUC 1.0.)"""
    copy = tmp_path / "copy.h5"
    r = run_pgan("data", "leak", "--members", digits_splits["train"], "--population", digits_splits["reference"],
                 "--fraction", "1", "--noise", "0", "-n", "899", "--seed", "0", "-o", copy)
    assert r.exit_code == 0, r
    r = run_pgan("fidelity", digits_splits["train"], copy, "--metrics", "c2st", "--json")
    assert r.exit_code == 0, r
    fid = tmp_path / "fidelity.json"
    fid.write_text(r.stdout)
    import json

    assert json.loads(r.stdout)["c2st_copying"] is True
    out = tmp_path / "r.html"
    r = run_pgan("report", fid, "--preset", "none", "-o", out)
    assert r.exit_code == 0, r
    page = out.read_text()
    for sid in ("verdict", "fidelity"):
        assert "Copying signal" in _section(page, sid), sid
    clean = tmp_path / "clean.html"
    r = run_pgan("report", leaky["attack"], "--preset", "none", "-o", clean)
    assert r.exit_code == 0 and "Copying signal" not in clean.read_text()
