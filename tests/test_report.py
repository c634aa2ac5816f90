"""pgan report and pgan audit: summary keys, gates and presets, exit codes, the HTML page
(structure, no external URL, no member image unless asked), a real headless browser, the audit
folder (commands.sh, caching)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import REPO, Result, assert_clean_error
from pgan_cli.errors import GateFailed, UsageError
from pgan_cli.report import gates as G
from pgan_cli.imaging import image_to_uint8
from pgan_cli.report.html import SECTION_PAIRS, SECTIONS
from pgan_cli.report.summary import get_path

DATA_URI = re.compile(r'src="(data:image/png;base64,[^"]+)"')


# ---- result files shaped as issues 5 and 6 specify ----------------------------------------------
def _attack_entry(auc: float, tpr01: float = 0.012, white_box: bool = False) -> dict:
    return {"auc": auc, "auc_ci": [auc - 0.03, auc + 0.03], "tpr_at_fpr": {"0.001": 0.001, "0.01": tpr01, "0.1": 0.11},
            "advantage": 0.04, "balanced_accuracy": 0.52, "epsilon_lower_bound": 0.05, "white_box": white_box}


def stamped(fmt: str, data: dict) -> str:
    """A result as pgan writes it: stamped with its format (pgan_cli.formats)."""
    from pgan_cli import formats

    return json.dumps(formats.stamped(fmt, data))


def write_attack(path: Path, auc: float = 0.52, dcr_share: float = 0.5, near: int = 0, white: float = 0.7) -> Path:
    data = {"attacks": {"dcr": _attack_entry(auc), "pairwise": _attack_entry(0.51),
                        "logan": _attack_entry(white, white_box=True)},
            "distances": {"dcr": {"synthetic_to_members": {"p5": 1.0, "median": 2.0},
                                  "holdout_to_members": {"p5": 1.0, "median": 2.0}},
                          "dcr_share": dcr_share, "nndr": 0.9, "nnaa": 0.5, "nnaa_privacy_loss": 0.0,
                          "authenticity": 0.8, "data_copying_ct": 0.1, "near_copies": near,
                          "near_copy_pairs": [{"synthetic": 0, "member": 1, "distance": 0.1}] * near},
            "sets": {"members": 200, "non_members": 200, "synthetic": 200},
            "provenance": {"command": "pgan attack --members m.h5 --non-members h.h5 --synthetic s.h5", "seed": 0,
                           "inputs": [], "versions": {"pgan": "0.1.0"}}}
    path.write_text(stamped("pgan-attack", data))
    return path


def write_results(d: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    out = {"attack": write_attack(d / "attack.json")}
    out["mmd"] = d / "mmd.json"
    out["mmd"].write_text(stamped("pgan-mmd", {"mmd2": 0.002, "p_value": 0.31, "kernel": "rbf", "bandwidth": 4.1, "n_x": 200,
                                      "n_y": 200, "permutations": 1000, "estimator": "unbiased",
                                      "provenance": {"command": "pgan mmd m.h5 s.h5 --json", "seed": 3}}))
    out["fidelity"] = d / "fidelity.json"
    out["fidelity"].write_text(stamped("pgan-fidelity", {"precision": 0.8, "recall": 0.7, "density": 0.95, "coverage": 0.9,
                                           "alpha_precision": 0.7, "beta_recall": 0.6, "frechet": 10.5,
                                           "c2st_auc": 0.62}))
    out["utility"] = d / "utility.json"
    out["utility"].write_text(stamped("pgan-utility", {"tstr": {"accuracy": 0.81, "balanced_accuracy": 0.8, "auc": 0.95,
                                                   "confusion_matrix": [[9, 1], [2, 8]]},
                                          "trtr": {"accuracy": 0.93, "balanced_accuracy": 0.93, "auc": 0.99},
                                          "roc_test": {"p_value": 0.04}}))
    out["log"] = d / "train.jsonl"
    out["log"].write_text("".join(json.dumps({"step": s, "epoch": s / 20, "loss_d": -1 / (1 + s), "loss_g": 0.3,
                                              "d_real": 0.6, "d_fake": 0.4, "wasserstein": 2 / (1 + s),
                                              "gradient_penalty": 0.1, "grad_norm_d": 1.0, "grad_norm_g": 0.5,
                                              "images_per_s": 90.0, "wall_time": s * 0.1}) + "\n"
                                  for s in range(5, 100, 5)) + json.dumps({"step": 95}) + "\n")
    out["scores"] = d / "scores.h5"
    with h5py.File(out["scores"], "w") as f:
        f.attrs["format"], f.attrs["format_version"] = "pgan-attack-scores", 1
        t = np.r_[np.ones(200), np.zeros(200)].astype(np.int8)
        f["membership"] = t
        f["scores/dcr"] = rng.normal(size=400) + 0.1 * t
        f["scores/pairwise"] = rng.normal(size=400)
        f["distances/dcr_synthetic_to_members"] = np.abs(rng.normal(2, 0.4, 200))
        f["distances/dcr_holdout_to_members"] = np.abs(rng.normal(2, 0.4, 200))
    for q in ("synthetic", "holdout"):
        out[f"knn_{q}"] = d / f"{q}_members.h5"
        with h5py.File(out[f"knn_{q}"], "w") as f:
            f["distances"] = np.abs(rng.normal(2, 0.4, (200, 1))).astype(np.float32)
            f["indices"] = rng.integers(0, 200, (200, 1))
            f.attrs["format"] = "pgan-knn"
            f.attrs["provenance"] = json.dumps({"command": f"pgan knn {q}.h5 members.h5 -k 1 -o x.h5",
                                                "inputs": [{"path": f"{q}.h5"}, {"path": "members.h5"}]})
    return out


MARK = np.zeros((1, 8, 8), dtype=np.float32) - 1
MARK[0, ::2, ::2] = 1.0  # a checkerboard no digit looks like
MARK[0, 1::2, 1::2] = 1.0


# every black-box attack but logan-blackbox (it fits a model: seconds), few bootstrap resamples
FAST = ("--attacks", "dcr,dcr-calibrated,pairwise,density,domias", "--bootstrap", "200")


def invoke(*args) -> Result:
    """``pgan ARGS`` in-process (as the ``cli`` fixture, usable in module-scoped fixtures)."""
    from typer.testing import CliRunner

    from pgan_cli import console
    from pgan_cli.cli.app import app, normalize_argv

    console.configure(quiet=False, verbose=False, provenance=True)
    r = CliRunner().invoke(app, normalize_argv([str(a) for a in args]), catch_exceptions=False)
    console.configure(quiet=False, verbose=False, provenance=True)
    return Result(r.exit_code, r.stdout, r.stderr)


@pytest.fixture(scope="module")
def real(tmp_path_factory, digits_splits) -> dict[str, Path]:
    """Real files: members with a planted pattern, a clean and a leaky synthetic set from
    `pgan data leak`, a training log with `pgan train --log`'s keys, and `pgan audit` of the clean set."""
    d = tmp_path_factory.mktemp("real")
    members = d / "members.h5"
    shutil.copy(digits_splits["train"], members)
    with h5py.File(members, "r+") as f:
        f["samples"][0] = MARK
        f["samples"][1] = MARK
    files = {"members": members, "holdout": digits_splits["holdout"], "reference": digits_splits["reference"]}
    for name, frac in (("clean", "0"), ("leak", "0.5")):
        files[name] = d / f"{name}.h5"
        r = invoke("data", "leak", "--members", members, "--population", digits_splits["reference"],
                   "--fraction", frac, "--noise", "0.05", "-n", "300", "--seed", "0", "-o", files[name])
        assert r.exit_code == 0, r
    files["log"] = write_results(d)["log"]  # a training log with pgan train's keys (training is slow on CPU)
    files["audit"] = d / "audit_clean"
    r = invoke("audit", "--members", members, "--holdout", files["holdout"], "--synthetic", files["clean"],
               "--reference", files["reference"], "--train-log", files["log"], *FAST, "-o", files["audit"], "--json")
    assert r.exit_code == 0, r
    files["audit_json"] = json.loads(r.stdout)
    return files


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, real) -> dict[str, Path]:
    """Every kind of result (real ones from the clean audit; mmd, fidelity and utility hand-made with
    the measuring commands' keys where `pgan audit` could not run them) rendered into one report."""
    d = tmp_path_factory.mktemp("report")
    files = dict(real)
    a = real["audit"]
    files.update({"attack": a / "attack/pixel/attack.json", "scores": a / "attack/pixel/scores.h5",
                  "knn_synthetic": a / "knn/pixel/synthetic_members.h5",
                  "knn_holdout": a / "knn/pixel/holdout_members.h5"})
    hand = write_results(d)
    for k in ("mmd", "fidelity", "utility"):
        files[k] = a / f"{k}.json" if (a / f"{k}.json").exists() else hand[k]
    files["synthetic"] = real["clean"]
    r = invoke("report", *[files[k] for k in ("attack", "mmd", "fidelity", "utility", "log", "scores",
                                               "knn_synthetic", "knn_holdout")],
               "--members", real["members"], "--synthetic", files["synthetic"], "-o", d / "report.html",
               "--summary", d / "summary.json", "--preset", "default")
    assert r.exit_code == 0, r
    assert "PASS" in r.stdout
    files["html"], files["summary"] = d / "report.html", d / "summary.json"
    return files


# ---- gates ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,path,op,num", [
    ("privacy.attacks.dcr.auc <= 0.6", "privacy.attacks.dcr.auc", "<=", 0.6),
    ("privacy.attacks.dcr.auc<0.6", "privacy.attacks.dcr.auc", "<", 0.6),
    ("  fidelity.mmd.p_value >= 1e-3 ", "fidelity.mmd.p_value", ">=", 1e-3),
    ("privacy.distances.near_copies == 0", "privacy.distances.near_copies", "==", 0.0),
    ("utility.tstr.balanced_accuracy > .75", "utility.tstr.balanced_accuracy", ">", 0.75),
    ("privacy.attacks.*.tpr_at_fpr.0.01 != -2", "privacy.attacks.*.tpr_at_fpr.0.01", "!=", -2.0),
])
def test_parse_gate(text, path, op, num):
    g = G.parse_gate(text)
    assert (g.path, g.op, g.threshold) == (path, op, num)


@pytest.mark.parametrize("text", ["privacy.attacks.dcr.auc", "auc <= ", "auc <= x", "<= 0.6", "a =< 0.6",
                                  "a = 0.6", "a <= 0.6 0.7", "a b <= 1", "a..b <= 1", "a <== 1", ""])
def test_malformed_gate_is_usage_error(text):
    with pytest.raises(UsageError, match="malformed gate"):
        G.parse_gate(text)


SUMMARY = {"privacy": {"attacks": {"dcr": {"auc": 0.7, "black_box": True, "tpr_at_fpr": {"0.001": 0.0, "0.01": 0.05}},
                                   "pairwise": {"auc": 0.5, "black_box": True, "tpr_at_fpr": {"0.01": 0.01}},
                                   "logan": {"auc": 0.9, "black_box": False, "tpr_at_fpr": {"0.01": 0.5}}},
                       "distances": {"dcr_share": 0.58, "near_copies": 3, "near_copies_excess": 0}},
           "fidelity": {"mmd": {"p_value": 0.2, "kernel": "rbf"}}}


def test_dotted_paths_and_wildcards():
    assert get_path(SUMMARY, "privacy.attacks.dcr.tpr_at_fpr.0.01") == 0.05
    assert get_path(SUMMARY, "privacy.attacks.dcr.tpr_at_fpr.0.001") == 0.0
    with pytest.raises(KeyError):
        get_path(SUMMARY, "privacy.attacks.nope.auc")
    got = {".".join(k): v for k, v in G.expand(SUMMARY, "privacy.attacks.*.auc")}
    assert got == {"privacy.attacks.dcr.auc": 0.7, "privacy.attacks.pairwise.auc": 0.5, "privacy.attacks.logan.auc": 0.9}
    res = G.evaluate(SUMMARY, [G.parse_gate("privacy.attacks.*.auc <= 0.6")])
    assert [(r.path, r.passed) for r in res] == [("privacy.attacks.dcr.auc", False),
                                                ("privacy.attacks.pairwise.auc", True),
                                                ("privacy.attacks.logan.auc", False)]


def test_presets_exactly_as_documented():
    d = {(g.path, g.op, g.threshold, g.black_box_only) for g in G.preset_gates("default")}
    assert d == {("privacy.attacks.*.auc", "<=", 0.60, True), ("privacy.distances*.dcr_share", "<=", 0.60, False),
                 ("privacy.distances*.near_copies_excess", "==", 0, False)}
    s = {(g.path, g.op, g.threshold, g.black_box_only) for g in G.preset_gates("strict")}
    assert s == {("privacy.attacks.*.auc", "<=", 0.55, True), ("privacy.attacks.*.tpr_at_fpr.0.01", "<=", 0.03, True),
                 ("privacy.distances*.dcr_share", "<=", 0.55, False),
                 ("privacy.distances*.near_copies_excess", "==", 0, False)}
    # default: the white-box logan (0.9) is not gated; dcr (0.7) fails; DCR share 0.58 passes
    res = G.evaluate(SUMMARY, G.preset_gates("default"))
    assert {r.path: r.passed for r in res} == {"privacy.attacks.dcr.auc": False, "privacy.attacks.pairwise.auc": True,
                                               "privacy.distances.dcr_share": True,
                                               "privacy.distances.near_copies_excess": True}
    assert G.verdict(res) == "fail"
    strict = {r.path: r.passed for r in G.evaluate(SUMMARY, G.preset_gates("strict"))}
    assert strict["privacy.distances.dcr_share"] is False and strict["privacy.attacks.pairwise.tpr_at_fpr.0.01"] is True
    with pytest.raises(GateFailed, match=r"privacy.attacks.dcr.auc = 0.7 \(gate <= 0.6\)"):
        G.raise_if_failed(res)
    with pytest.raises(UsageError, match="unknown preset"):
        G.preset_gates("lenient")


def test_gate_errors():
    # a gate on a key that is not there is a failed gate naming what is there (fail closed)
    res = G.evaluate(SUMMARY, [G.parse_gate("privacy.attacks.dcr.aucc <= 1")])
    assert [(r.path, r.value, r.passed) for r in res] == [("privacy.attacks.dcr.aucc", None, False)]
    assert "it has: auc" in res[0].missing and G.verdict(res) == "fail"
    with pytest.raises(UsageError, match="is an object"):
        G.evaluate(SUMMARY, [G.parse_gate("fidelity.mmd <= 1")])
    with pytest.raises(UsageError, match="not a number"):
        G.evaluate(SUMMARY, [G.parse_gate("fidelity.mmd.kernel <= 1")])
    res = G.evaluate({"fidelity": {}}, G.preset_gates("default"))
    assert [r.passed for r in res] == [False, False, False] and G.verdict(res) == "fail"
    with pytest.raises(GateFailed, match=r"privacy.attacks.\*.auc: missing \(no attack results\)"):
        G.raise_if_failed(res)


# ---- summary.json ------------------------------------------------------------------------------
def test_summary_keys(bundle):
    s = json.loads(bundle["summary"].read_text())
    attack = json.loads(bundle["attack"].read_text())
    assert get_path(s, "privacy.attacks.dcr.auc") == attack["attacks"]["dcr"]["auc"]
    assert 0.4 < get_path(s, "privacy.attacks.dcr.auc") < 0.6  # clean set: chance
    assert get_path(s, "privacy.attacks.dcr.tpr_at_fpr.0.01") == attack["attacks"]["dcr"]["tpr_at_fpr"]["0.01"]
    assert set(get_path(s, "privacy.attacks")) == {"dcr", "dcr-calibrated", "pairwise", "density", "domias"}
    assert all(a["black_box"] for a in get_path(s, "privacy.attacks").values())
    assert get_path(s, "privacy.distances.dcr_share") == attack["distances"]["dcr_share"]
    assert get_path(s, "privacy.distances.near_copies") == attack["distances"]["near_copies"]
    assert get_path(s, "privacy.distances.near_copies_excess") == 0
    assert get_path(s, "privacy.distances.near_copies_expected") >= 3  # 99% quantile of Bin(300, ~1%)
    assert abs(get_path(s, "privacy.scores_auc.dcr") - get_path(s, "privacy.attacks.dcr.auc")) < 0.02
    mmd = json.loads(bundle["mmd"].read_text())
    assert get_path(s, "fidelity.mmd.p_value") == mmd["p_value"]
    assert get_path(s, "utility.tstr.balanced_accuracy") == json.loads(bundle["utility"].read_text())["tstr"]["balanced_accuracy"]
    assert get_path(s, "training.steps") == 95 and get_path(s, "training.records") == 20
    assert set(get_path(s, "privacy.nearest_neighbours")) == {"synthetic_to_members", "holdout_to_members"}
    assert s["verdict"] == "pass" and s["preset"] == "default"
    n_bb = len(get_path(s, "privacy.attacks"))
    assert len(s["gates"]) == n_bb + 2 and all(g["passed"] for g in s["gates"])
    kinds = sorted(i["kind"] for i in s["inputs"])
    assert kinds.count("knn") == 2 and "scores" in kinds and "train-log" in kinds and "dataset (members)" in kinds
    assert all(len(i["sha256"]) == 64 for i in s["inputs"])
    assert s["seeds"].get("pgan attack") == 0


def test_leaky_set_fails_default_preset_clean_passes(cli, tmp_path, real):
    """A planted leak (`pgan data leak`, half the set copies members) fails the default preset with
    exit 1 naming the gates; the clean set of the same size passed (the `real` fixture's audit)."""
    assert real["audit_json"]["verdict"] == "pass"
    d = tmp_path / "leak"
    r = cli("audit", "--members", real["members"], "--holdout", real["holdout"], "--synthetic", real["leak"],
            "--reference", real["reference"],
            "--embedding", "pixel,pca", *FAST, "-o", d)
    assert r.exit_code == 1, r
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("pgan audit: error: ") and "gates failed" in line
    for gate in ("privacy.attacks.dcr.auc = ", "privacy.attacks.dcr@pca.auc = ", "privacy.distances.dcr_share = ",
                 "privacy.distances.near_copies_excess = ", "privacy.distances@pca.near_copies_excess = "):
        assert gate in line, gate
    assert r.stdout.strip() == f"verdict: FAIL; report: {d / 'report.html'}"
    s = json.loads((d / "summary.json").read_text())
    assert s["verdict"] == "fail" and get_path(s, "privacy.attacks.dcr.auc") > 0.6
    assert "FAIL" in (d / "report.html").read_text()
    # the same figures through pgan report with an explicit gate that passes: exit 0, no preset added
    r = cli("report", d / "attack/pixel/attack.json", "--summary", tmp_path / "s2.json",
            "--gate", "privacy.attacks.dcr.auc >= 0.6")
    assert r.exit_code == 0, r
    assert [g["path"] for g in json.loads((tmp_path / "s2.json").read_text())["gates"]] == ["privacy.attacks.dcr.auc"]
    # several audits' summaries: one privacy-utility comparison (docs/report.md's curve), no gates
    r = cli("report", real["audit"] / "summary.json", d / "summary.json", "-o", tmp_path / "cmp.html",
            "--summary", tmp_path / "cmp.json")
    assert r.exit_code == 0, r
    runs = json.loads((tmp_path / "cmp.json").read_text())["comparison"]["runs"]
    assert [p["label"] for p in runs] == ["audit_clean", "leak"] and runs[1]["attack_auc"] > runs[0]["attack_auc"]
    assert all(p["utility"] is not None for p in runs)
    assert re.search(r'<section id="comparison">.*?<img class="fig" src="data:image/png', (tmp_path / "cmp.html").read_text(), re.S)
    # strict preset on the clean audit: the stricter thresholds are evaluated, TPR at 1% FPR included
    r = cli("report", real["audit"] / "attack/pixel/attack.json", real["audit"] / "attack/pixel/scores.h5",
            "--summary", tmp_path / "s3.json", "--preset", "strict")
    paths = {g["path"] for g in json.loads((tmp_path / "s3.json").read_text())["gates"]}
    assert "privacy.attacks.dcr.tpr_at_fpr.0.01" in paths and r.exit_code in (0, 1)


def test_bad_inputs_exit_2_one_line(cli, tmp_path, bundle, digits_splits):
    out = tmp_path / "r.html"
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"accuracy": 1, "model": "x"}))
    broken = tmp_path / "broken.json"
    broken.write_text('{"attacks": ')
    empty_log = tmp_path / "e.jsonl"
    empty_log.write_text("\n")
    cases = [
        ((tmp_path / "missing.json",), "does not exist"),
        ((foreign,), "not a pgan result"),
        ((broken,), "not valid JSON"),
        ((empty_log,), "empty training log"),
        ((digits_splits["train"],), "is a dataset file"),
        ((bundle["attack"], "--gate", "privacy.attacks.dcr.auc <== 0.6"), "malformed gate"),
        ((bundle["attack"], "--gate", "privacy.attacks.dcr.auc"), "malformed gate"),
        ((bundle["attack"], "--preset", "loose"), "unknown preset"),
        ((bundle["attack"], "--show-real-images"), "needs --members"),
        ((bundle["attack"], bundle["attack"]), "same file"),
    ]
    for args, needle in cases:
        r = cli("report", *args, "-o", out)
        assert_clean_error(r, needle)
        assert not out.exists(), args
    assert list(tmp_path.glob(".r.html*")) == []


def test_file_names_that_are_not_utf8(cli, tmp_path, digits8):
    """A synthetic set, a scores file and a training log named with a byte that is not UTF-8
    (``os.fsdecode`` keeps it as a lone surrogate): the page shows the byte as ``\\xff`` (in text
    and in the ROC's title) and is written, as pgan audit reads the same names."""
    def renamed(p: Path, stem: bytes) -> Path:
        return p.rename(p.with_name(os.fsdecode(stem + p.suffix.encode())))

    hand = write_results(tmp_path)
    syn = tmp_path / os.fsdecode(b"syn\xff.h5")
    shutil.copy(digits8, syn)
    files = [renamed(hand["attack"], b"attack\xfe"), renamed(hand["scores"], b"scores\xff"),
             renamed(hand["log"], b"train\xff")]
    out, summ = tmp_path / "r.html", tmp_path / "s.json"
    r = cli("report", *files, "--synthetic", syn, "-o", out, "--summary", summ)
    assert r.exit_code == 0, r
    assert "unexpected" not in r.stderr
    page = out.read_text(encoding="utf-8")
    for shown in ("syn\\xff.h5", "train\\xff.jsonl"):
        assert shown in page, shown
    assert json.loads(summ.read_text())["verdict"] == "pass"


# ---- the HTML page -------------------------------------------------------------------------------
def test_html_structure(bundle):
    page = bundle["html"].read_text()
    for sid in SECTIONS:
        m = re.search(rf'<section id="{sid}">(.*?)</section>', page, re.S)
        assert m, sid
        assert "How to read this" in m.group(1), sid
        assert "Not available" not in m.group(1), sid  # every input was given: every section is filled
    assert f'id="{SECTION_PAIRS}"' not in page
    # every picture is embedded; nothing is fetched from anywhere
    srcs = re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs), [s[:40] for s in srcs]
    assert not re.search(r'(?:src|href|action|poster)\s*=\s*["\']?\s*(?:https?:)?//', page, re.I)
    assert "url(" not in page and "@import" not in page and "<script" not in page.lower()
    assert "<link" not in page.lower() and "<iframe" not in page.lower()
    figs = re.findall(r'<img class="fig" src="data:image/png;base64,([^"]+)"', page)
    assert len(figs) == 5  # ROC, DCR histograms, map, training curves, alpha-beta curves
    assert not any(b"http" in base64.b64decode(b) for b in figs)  # no URL even in PNG metadata
    for b64 in figs:  # each figure is a real PNG with pixels on it
        from PIL import Image

        img = np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("L"), dtype=np.float64)
        assert img.shape[0] > 100 and img.std() > 5
    assert "log-scale FPR" in page and "PASS" in page and "@media print" in page
    from pgan_cli.report.page import fmt

    summary = json.loads(bundle["summary"].read_text())
    for path in ("privacy.attacks.dcr.auc", "fidelity.mmd.p_value", "utility.tstr.balanced_accuracy"):
        assert f">{fmt(get_path(summary, path))}<" in page, path  # figures in the tables
    assert "No DP-SGD record" in page


def _embedded_images(page: str) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1]))))
            for u in DATA_URI.findall(page)]


def test_no_member_image_without_show_real_images(bundle, cli, tmp_path):
    from pgan_cli.dataset import read_dataset

    mark = image_to_uint8(MARK)
    members = read_dataset(bundle["members"]).samples
    member_pngs = {image_to_uint8(x).tobytes() for x in members}
    synth_pngs = {image_to_uint8(x).tobytes() for x in read_dataset(bundle["synthetic"]).samples}
    imgs = _embedded_images(bundle["html"].read_text())
    small = [im for im in imgs if im.shape == mark.shape]
    assert len(small) >= 40  # the synthetic grids are there
    assert not any(np.array_equal(im, mark) for im in imgs)
    assert not [im for im in small if im.tobytes() in member_pngs - synth_pngs]
    # with the flag, the closest pairs show the planted member next to its nearest synthetic record
    out = tmp_path / "real.html"
    r = cli("report", bundle["attack"], "--members", bundle["members"], "--synthetic", bundle["members"],
            "--show-real-images", "-o", out)
    assert r.exit_code == 0, r
    page = out.read_text()
    assert f'id="{SECTION_PAIRS}"' in page and "contains real training images" in page
    assert any(np.array_equal(im, mark) for im in _embedded_images(page))


def test_browser_renders_report(bundle, tmp_path):
    """Render the report in headless Chromium (installed by .ci/run) and check the screenshot."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    assert browser, "chromium is not installed: apt-get install -y chromium"
    shot = tmp_path / "shot.png"
    p = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,2000",
                        bundle["html"].resolve().as_uri()], capture_output=True, text=True, timeout=90)
    assert shot.exists(), p.stderr[-2000:]
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert img.shape[:2] == (2000, 1200)
    assert img.std() > 20  # not blank
    rows = img.std(axis=(1, 2))
    assert (rows > 1).mean() > 0.3  # content down the page, not one line of text
    # the green PASS badge near the top
    top = img[:400]
    green = (top[..., 1] > 200) & (top[..., 0] > 190) & (top[..., 0] < 230) & (top[..., 2] < 235)
    assert green.sum() > 200


# ---- pgan audit ------------------------------------------------------------------------------------
def test_audit_folder_commands_and_cache(cli, real):
    d, out = real["audit"], real["audit_json"]
    assert out["report"] == str(d / "report.html") and (d / "report.html").exists()
    assert {"knn/pixel/synthetic", "knn/pixel/holdout", "attack/pixel", "report"} <= set(out["steps_run"])
    commands = (d / "commands.sh").read_text()
    lines = [ln for ln in commands.splitlines() if ln.startswith("pgan ")]
    assert lines[0] == "pgan knn inputs/synthetic.h5 inputs/members.h5 -k 1 -o knn/pixel/synthetic_members.h5"
    assert any(ln.startswith("pgan attack --members inputs/members.h5 --holdout inputs/holdout.h5 ")
               and ln.endswith("--json > attack/pixel/attack.json") for ln in lines)
    assert lines[-1].startswith("pgan report ") and "-o report.html --summary summary.json" in lines[-1]
    assert (d / "inputs" / "members.h5").resolve() == real["members"].resolve()
    state = json.loads((d / "audit-state.json").read_text())
    assert set(state["steps"]) == set(out["steps_run"])
    for name in out["steps_run"]:
        assert state["steps"][name]["inputs"] and all(len(h) == 64 for h in state["steps"][name]["inputs"].values())
    # every output records the step's own command line
    prov = json.loads((d / "attack/pixel/attack.json").read_text())["provenance"]
    assert prov["command"] == next(ln for ln in lines if ln.startswith("pgan attack")).split(" > ")[0]
    # the second run skips every cached step (the report always runs)
    args = ("audit", "--members", real["members"], "--holdout", real["holdout"], "--synthetic", real["clean"],
            "--reference", real["reference"], "--train-log", real["log"], *FAST, "-o", d, "--json")
    out2 = json.loads(cli(*args).stdout)
    assert out2["steps_run"] == ["report"]
    assert sorted(out2["steps_cached"]) == sorted(n for n in out["steps_run"] if n != "report")
    # an output edited by hand is made again; a changed argument re-runs its step only
    (d / "knn/pixel/holdout_members.h5").write_bytes(b"garbage")
    out3 = json.loads(cli(*args[:-3], "--gate", "privacy.attacks.dcr.auc <= 0.7", "-o", d, "--json").stdout)
    assert out3["steps_run"] == ["knn/pixel/holdout", "report"]
    assert json.loads((d / "summary.json").read_text())["gates"][-1]["gate"] == "privacy.attacks.dcr.auc <= 0.7"
    # the lines of commands.sh reproduce the files by hand, from the folder (the attack and the report
    # here: each line runs a fresh process, and every step kind is covered by the same mechanism)
    before = json.loads((d / "attack/pixel/attack.json").read_text())
    (d / "attack/pixel/attack.json").unlink()
    (d / "summary.json").unlink()
    keep = [ln for ln in commands.splitlines() if not ln.startswith(("pgan ", "mkdir "))
            or ln.startswith(("pgan attack ", "pgan report "))]
    (d / "redo.sh").write_text("\n".join(keep) + "\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    sh = subprocess.run(["bash", "-c", f"pgan() {{ {shlex.quote(sys.executable)} -m pgan_cli \"$@\"; }}; "
                         f"export -f pgan; bash {shlex.quote(str(d / 'redo.sh'))}"],
                        capture_output=True, text=True, env=env, timeout=300)
    assert sh.returncode == 0, sh.stderr[-2000:]
    after = json.loads((d / "attack/pixel/attack.json").read_text())
    for name in after["attacks"]:  # the same figures; only the timing differs
        after["attacks"][name].pop("seconds", None)
        before["attacks"][name].pop("seconds", None)
    assert {k: v for k, v in after.items() if k != "provenance"} == {k: v for k, v in before.items() if k != "provenance"}
    assert after["provenance"]["command"] == before["provenance"]["command"]
    assert json.loads((d / "summary.json").read_text())["verdict"] == "pass"


def test_audit_bad_inputs(cli, tmp_path, digits_splits, ring8):
    base = ["--members", digits_splits["train"], "--holdout", digits_splits["holdout"]]
    r = cli("audit", *base, "--synthetic", tmp_path / "nope.h5", "-o", tmp_path / "a")
    assert_clean_error(r, "does not exist")
    r = cli("audit", *base, "--synthetic", ring8, "-o", tmp_path / "a")
    assert_clean_error(r, "different sizes per record")
    r = cli("audit", *base, "--synthetic", digits_splits["reference"], "-o", tmp_path / "a", "--gate", "x <=")
    assert_clean_error(r, "malformed gate")
    assert not (tmp_path / "a").exists()


def test_near_copy_allowance():
    from scipy.stats import binom

    from pgan_cli.report.summary import near_copy_allowance

    allowed, rate, _ = near_copy_allowance(400, None, None)
    assert rate == 0.01 and allowed == int(binom.ppf(0.99, 400, 0.01)) and 6 <= allowed <= 10
    hold = np.r_[np.full(10, 0.1), np.full(990, 5.0)]  # 1% of holdout records fall below the threshold
    allowed_h, rate_h, basis = near_copy_allowance(400, hold, 1.0)
    assert 0.01 < rate_h < 0.02 and allowed_h >= allowed and "10/1000" in basis
    # a clean release of 400 records (4 near-copies by chance) passes; 40 copies do not
    assert 4 <= allowed and 40 > allowed_h
