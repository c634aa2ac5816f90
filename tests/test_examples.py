"""The examples run end to end in a fast mode (their own knobs: fewer steps, smaller images), so
a change that breaks one fails CI instead of a user (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def run_example(name: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    path = f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"  # ci_gate.sh expects pgan on PATH
    full = dict(os.environ, OMP_NUM_THREADS="1", PATH=path, **env)
    return subprocess.run(["bash", str(REPO / "examples" / name), *args], env=full, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    out = tmp_path_factory.mktemp("main_job")
    p = run_example("audit_digits.sh", OUT=str(out), STEPS="20", SIZE="8")
    assert p.returncode in (0, 1), p.stderr[-3000:]
    return out


def test_main_job_fast(main_job):
    summary = json.loads((main_job / "audit" / "summary.json").read_text())
    assert summary["verdict"] in ("pass", "fail") and summary["gates"]
    assert (main_job / "audit" / "report.html").stat().st_size > 10_000
    assert "privacy" in summary and "utility" in summary and "fidelity" in summary


def test_ci_gate_passes_clean_and_blocks_a_leak(main_job, tmp_path):
    s = main_job / "splits"
    p = run_example("ci_gate.sh", str(s / "train.h5"), str(s / "holdout.h5"), str(main_job / "synthetic.h5"),
                    str(tmp_path / "clean"))
    assert p.returncode in (0, 1), p.stderr[-2000:]
    assert (tmp_path / "clean" / "summary.json").exists()
    leaky = tmp_path / "leaky.h5"
    r = subprocess.run([str(REPO / ".venv" / "bin" / "pgan"), "data", "leak", "--members", str(s / "train.h5"),
                        "--population", str(s / "reference.h5"), "--fraction", "0.5", "--noise", "0.05", "-n", "400",
                        "-o", str(leaky), "-q"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    p = run_example("ci_gate.sh", str(s / "train.h5"), str(s / "holdout.h5"), str(leaky), str(tmp_path / "leak"))
    assert p.returncode == 1, (p.stdout, p.stderr[-2000:])
    assert "audit FAILED" in p.stderr


@pytest.mark.skipif(shutil.which("jq") is None, reason="examples/pipeline.sh needs jq (.ci/run installs it)")
def test_pipeline_by_hand_catches_the_planted_leak(tmp_path):
    p = run_example("pipeline.sh", OUT=str(tmp_path))
    assert p.returncode == 1, p.stderr[-3000:]  # the planted leak fails its gate, by design
    assert "FAIL  privacy.max_black_box_auc" in p.stdout


def test_gaussian_mixture_fast(tmp_path):
    p = run_example("gaussian_mixture.sh", OUT=str(tmp_path), STEPS="10")
    assert p.returncode == 0, p.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert {(r["arch"], r["modes"]) for r in rows} == {(a, m) for a in ("dcgan", "wgan", "wgan-gp") for m in (1, 8)}


def test_dp_sweep_fast(tmp_path):
    p = run_example("dp_sweep.sh", OUT=str(tmp_path), EPOCHS="1", SIZE="8", EPSILONS="4 none")
    assert p.returncode == 0, p.stderr[-3000:]
    curve = json.loads((tmp_path / "dp_curve.json").read_text())
    assert len(curve["points"] if isinstance(curve, dict) else curve) == 2
