"""Shared fixtures: run the CLI in-process (CliRunner) or as a real subprocess, and small data files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pgan_cli import console
from pgan_cli.cli.app import app, normalize_argv

REPO = Path(__file__).resolve().parents[1]

# pgan's bookkeeping key (pgan_cli/ownership.py) lives in a state folder of the test run's own,
# shared with the subprocesses it starts, never in the user's home
if "PGAN_STATE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["PGAN_STATE_DIR"] = tempfile.mkdtemp(prefix="pgan-test-state-")
    atexit.register(shutil.rmtree, os.environ["PGAN_STATE_DIR"], True)


class Result:
    def __init__(self, exit_code: int, stdout: str, stderr: str):
        self.exit_code, self.stdout, self.stderr = exit_code, stdout, stderr

    def __repr__(self) -> str:
        return f"Result(exit_code={self.exit_code}, stdout={self.stdout[-2000:]!r}, stderr={self.stderr[-2000:]!r})"


@pytest.fixture
def cli():
    """Run ``pgan ARGS`` in-process: ``cli("data", "info", path)`` -> Result (stdout and stderr apart)."""
    runner = CliRunner()

    def run(*args: str | os.PathLike) -> Result:
        console.configure(quiet=False, verbose=False, provenance=True)
        argv = normalize_argv([str(a) for a in args])
        r = runner.invoke(app, argv, catch_exceptions=False)
        console.configure(quiet=False, verbose=False, provenance=True)
        return Result(r.exit_code, r.stdout, r.stderr)

    return run


def run_pgan(*args: str | os.PathLike, cwd: str | os.PathLike | None = None, timeout: float = 600,
             input: str | None = None) -> Result:
    """Run ``python -m pgan_cli ARGS`` as a real subprocess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    p = subprocess.run([sys.executable, "-m", "pgan_cli", *map(str, args)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=timeout, input=input)
    return Result(p.returncode, p.stdout, p.stderr)


@pytest.fixture
def pgan():
    """Run the CLI as a subprocess: ``pgan("mmd", a, b, "--json")``."""
    return run_pgan


def assert_clean_error(result: Result, *needles: str) -> None:
    """Exit 2, exactly one stderr line starting with 'pgan', no traceback, mentioning each needle."""
    assert result.exit_code == 2, result
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result
    assert lines[0].startswith("pgan") and ": error: " in lines[0], result
    assert "Traceback" not in result.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture(scope="session")
def digits8(tmp_path_factory) -> Path:
    """scikit-learn digits at 8x8 as a dataset file (shared, read-only)."""
    path = tmp_path_factory.mktemp("data") / "digits8.h5"
    r = run_pgan("data", "digits", "-o", path, "--quiet")
    assert r.exit_code == 0, r
    return path


@pytest.fixture(scope="session")
def digits_splits(tmp_path_factory, digits8) -> dict[str, Path]:
    """train/holdout/reference splits of the 8x8 digits (seed 0)."""
    out = tmp_path_factory.mktemp("splits")
    r = run_pgan("data", "split", digits8, "--out-dir", out, "--seed", "0", "--quiet")
    assert r.exit_code == 0, r
    return {name: out / f"{name}.h5" for name in ("train", "holdout", "reference")}


@pytest.fixture(scope="session")
def ring8(tmp_path_factory) -> Path:
    """The 8-mode ring, 2,000 points (seed 0)."""
    path = tmp_path_factory.mktemp("data") / "ring8.h5"
    r = run_pgan("data", "gaussian", "--modes", "8", "-n", "2000", "--seed", "0", "-o", path, "--quiet")
    assert r.exit_code == 0, r
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)
