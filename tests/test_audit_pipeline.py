"""`pgan audit` runs its steps through the library; its commands.sh, run as a shell script with
the real CLI, must reproduce the same figures (docs/audit.md)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from tests.conftest import REPO, assert_clean_error, run_pgan


def _figures(obj):
    """A result without what legitimately differs between runs: provenance and timings."""
    if isinstance(obj, dict):
        return {k: _figures(v) for k, v in obj.items()
                if k not in ("provenance", "inputs") and not k.startswith("seconds")}
    if isinstance(obj, list):
        return [_figures(v) for v in obj]
    return obj


@pytest.mark.slow
def test_commands_sh_reproduces_the_library_pipeline(tmp_path, digits_splits):
    syn = tmp_path / "syn.h5"
    r = run_pgan("data", "leak", "--members", digits_splits["train"], "--population", digits_splits["reference"],
                 "--fraction", "0.1", "--noise", "0.1", "-n", "300", "--seed", "0", "-o", syn, "-q")
    assert r.exit_code == 0, r
    audit = tmp_path / "audit"
    r = run_pgan("audit", "--members", digits_splits["train"], "--holdout", digits_splits["holdout"],
                 "--synthetic", syn, "--reference", digits_splits["reference"], "--embedding", "pixel,pca",
                 "--attacks", "dcr,density", "--bootstrap", "20", "--out-dir", audit, "-q")
    assert r.exit_code in (0, 1), r
    results = ["attack/pixel/attack.json", "attack/pca/attack.json", "mmd.json", "fidelity.json", "utility.json",
               "summary.json"]
    by_library = {name: json.loads((audit / name).read_text()) for name in results}
    # every step recorded its equivalent command line and audit-relative paths, as the CLI would
    attack = by_library["attack/pixel/attack.json"]
    assert attack["provenance"]["command"].startswith("pgan attack --members inputs/members.h5 --holdout ")
    assert attack["sets"]["members"]["path"] == "inputs/members.h5"
    assert json.loads((audit / "embed/pca/members.json").read_text())["output"] == "embed/pca/members.npy"

    # re-run commands.sh in a copy, with `pgan` the real command line
    copy = tmp_path / "copy"
    shutil.copytree(audit, copy, symlinks=True)
    for name in results:
        (copy / name).unlink()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "pgan"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pgan_cli "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(REPO),
               OMP_NUM_THREADS="1")
    p = subprocess.run(["bash", str(copy / "commands.sh")], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode in (0, 1), p.stderr[-3000:]  # the report step exits 1 when a gate fails
    by_cli = {name: json.loads((copy / name).read_text()) for name in results}
    for name in results:  # floats to 1e-6: BLAS sums in another order with another thread count
        _same(_figures(by_cli[name]), _figures(by_library[name]), name)


def _same(a, b, where: str) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-9), where
    else:
        assert a == b, where


def test_audit_runs_dp_audit_for_a_generator_with_canaries(tmp_path, digits_splits):
    """A generator trained with audit canaries gets a dp-audit step: its result reaches the
    summary and commands.sh names it."""
    gen, syn = tmp_path / "g.pt", tmp_path / "s.h5"
    r = run_pgan("train", digits_splits["train"], "--net", "mlp", "--width", "8", "--latent-dim", "8", "--epochs", "1",
                 "--audit-canaries", "20", "-o", gen, "-q")
    assert r.exit_code == 0, r
    assert run_pgan("sample", gen, "-n", "200", "-o", syn, "-q").exit_code == 0
    audit = tmp_path / "audit"
    r = run_pgan("audit", "--members", digits_splits["train"], "--holdout", digits_splits["holdout"],
                 "--synthetic", syn, "--generator", gen, "--attacks", "dcr", "--bootstrap", "20", "--out-dir", audit, "-q")
    assert r.exit_code in (0, 1), r
    result = json.loads((audit / "dp-audit.json").read_text())
    assert result["format"] == "pgan-dp-audit" and result["canaries"]["m"] == 20
    assert result["provenance"]["command"].startswith("pgan dp-audit inputs/generator.pt")
    summary = json.loads((audit / "summary.json").read_text())
    assert summary["privacy"]["dp_audit"]["canaries"] == 20
    assert any(g["path"] == "privacy.dp_audit.exceeds_claim" for g in summary["gates"])
    assert "pgan dp-audit inputs/generator.pt --seed 0 --json > dp-audit.json" in (audit / "commands.sh").read_text()


def test_audit_opens_a_canary_source_only_when_given(tmp_path, digits_splits):
    """Held-out canaries: the checkpoint names their file, but the audit opens only a file given
    with --canary-source (checked by SHA-256); without it the dp-audit step is skipped, saying why."""
    gen, syn = tmp_path / "g.pt", tmp_path / "s.h5"
    r = run_pgan("train", digits_splits["train"], "--net", "mlp", "--width", "8", "--latent-dim", "8", "--epochs", "1",
                 "--audit-canaries", "20", "--canary-source", digits_splits["reference"], "-o", gen, "-q")
    assert r.exit_code == 0, r
    assert run_pgan("sample", gen, "-n", "200", "-o", syn, "-q").exit_code == 0
    common = ["audit", "--members", digits_splits["train"], "--holdout", digits_splits["holdout"], "--synthetic", syn,
              "--generator", gen, "--attacks", "dcr", "--bootstrap", "20", "--json"]
    r = run_pgan(*common, "--out-dir", tmp_path / "a1")
    assert r.exit_code in (0, 1), r
    assert "--canary-source" in json.loads(r.stdout)["steps_skipped"]["dp-audit"]
    assert not (tmp_path / "a1" / "dp-audit.json").exists()
    r = run_pgan(*common, "--canary-source", digits_splits["holdout"], "--out-dir", tmp_path / "a2")
    assert_clean_error(r, "--canary-source", "not the file")
    r = run_pgan(*common, "--canary-source", digits_splits["reference"], "--out-dir", tmp_path / "a3")
    assert r.exit_code in (0, 1), r
    assert json.loads((tmp_path / "a3" / "dp-audit.json").read_text())["canaries"]["m"] == 20
    assert "--canary-source inputs/canary-source.h5" in (tmp_path / "a3" / "commands.sh").read_text()
