"""Killed and terminated runs (docs/security.md): no debris, earlier outputs intact, sets whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import REPO, run_pgan


def _start(*args, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "pgan_cli", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _debris(folder: Path) -> list[str]:
    """Temporary files and staging folders pgan would leave if it did not clean up."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.name.endswith(".tmp") or p.name.startswith((".pgan-stage-", ".pgan-commit")))


@pytest.mark.slow
def test_sigterm_unwinds_and_keeps_the_old_output(tmp_path, digits8):
    """SIGTERM in the middle of training: exit 143, one line, the previous checkpoint untouched."""
    old = tmp_path / "gen.pt"
    old.write_bytes(b"an earlier checkpoint the user keeps")
    p = _start("train", digits8, "--steps", "100000", "--width", "8", "--checkpoint-every", "0",
               "-o", old, "--log", tmp_path / "new" / "train.jsonl", cwd=tmp_path)
    deadline = time.time() + 60
    while not (tmp_path / "new").exists() and time.time() < deadline:  # training has started
        time.sleep(0.2)
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 143, (p.returncode, err)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert lines[-1].startswith("pgan train: error: terminated (SIGTERM)"), err
    assert "Traceback" not in err
    assert old.read_bytes() == b"an earlier checkpoint the user keeps"
    assert _debris(tmp_path) == []


@pytest.mark.slow
def test_killed_splits_never_mix_two_runs(tmp_path):
    """Kill `pgan data split` at many moments (SIGTERM and SIGKILL), alternating two seeds into one
    folder: the folder always holds the parts of one run (disjoint, covering every row), or a
    journal that makes readers refuse until the next run finishes the moves."""
    from pgan_cli.dataset import write_dataset

    rng = np.random.default_rng(0)
    src = tmp_path / "src.h5"
    write_dataset(src, rng.normal(size=(6000, 1, 32, 32)).clip(-1, 1).astype(np.float32),
                  labels=rng.integers(0, 4, 6000), class_names=list("abcd"), provenance={})
    out = tmp_path / "parts"
    assert run_pgan("data", "split", src, "--out-dir", out, "--seed", "0", "-q").exit_code == 0
    (out / "notes.txt").write_text("the steward's notes\n")
    delays = np.linspace(0.3, 4.0, 10)
    for i, delay in enumerate(delays):
        p = _start("data", "split", src, "--out-dir", out, "--seed", str(i + 1), "-q", cwd=tmp_path)
        time.sleep(float(delay))
        p.send_signal(signal.SIGKILL if i % 2 else signal.SIGTERM)
        p.communicate(timeout=60)
        if (out / ".pgan-commit.json").exists():  # killed mid-commit: readers refuse until finished
            r = run_pgan("data", "info", out / "train.h5")
            assert r.exit_code == 2 and "unfinished" in r.stderr, r
            assert run_pgan("data", "split", src, "--out-dir", out, "--seed", "0", "-q").exit_code == 0
        seeds, rows = set(), []
        for name in ("train", "holdout", "reference"):
            with h5py.File(out / f"{name}.h5", "r") as f:
                import json

                seeds.add(json.loads(f.attrs["provenance"])["seed"])
                rows.append(f["source_indices"][:])
        assert len(seeds) == 1, (i, seeds)  # one run's parts, never two
        allrows = np.concatenate(rows)
        assert len(allrows) == 6000 and len(np.unique(allrows)) == 6000
        assert (out / "notes.txt").read_text() == "the steward's notes\n"
        assert [d for d in _debris(out) if not d.startswith(".pgan-stage-")] == []
    # a later run clears the staging folders that SIGKILLed runs left behind
    assert run_pgan("data", "split", src, "--out-dir", out, "--seed", "0", "-q").exit_code == 0
    assert _debris(out) == []
    assert sorted(p.name for p in out.iterdir()) == [".pgan-outputs.json", "holdout.h5", "notes.txt",
                                                     "reference.h5", "train.h5"]


def test_failed_run_leaves_no_new_folder(cli, tmp_path):
    """An output in folders that do not exist yet: a failure removes the folders it made."""
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    r = cli("privatize", bad, "--epsilon", "5", "-o", tmp_path / "a" / "b" / "p.h5")
    assert r.exit_code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.h5"]


def test_export_replaces_only_its_own_pngs(cli, tmp_path, digits_splits):
    """`data export --png-dir` into a folder with other files: only pgan's earlier PNGs go."""
    out = tmp_path / "png"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    (out / "0").mkdir()
    (out / "0" / "user.png").write_bytes(b"not pgan's")
    assert cli("data", "export", digits_splits["train"], "--png-dir", out).exit_code == 0
    first = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(first) == 899 + 1
    assert cli("data", "export", digits_splits["holdout"], "--png-dir", out).exit_code == 0
    second = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(second) == 451 + 1  # the earlier export's files are gone, the user's stayed
    assert (out / "mine.txt").read_text() == "keep me"
    assert (out / "0" / "user.png").read_bytes() == b"not pgan's"


def test_manifest_cannot_make_pgan_delete_other_files(cli, tmp_path, digits_splits):
    """A manifest edited to name files outside the folder (or a user's file) deletes nothing."""
    import json

    out = tmp_path / "parts"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    assert cli("data", "split", digits_splits["train"], "--out-dir", out).exit_code == 0
    (out / "user.h5").write_text("the user's own file")
    manifest = json.loads((out / ".pgan-outputs.json").read_text())
    manifest["sets"]["pgan data split"].update({"../victim.txt": [8, 0], str(victim): [8, 0],
                                                "user.h5": [1, 1]})
    (out / ".pgan-outputs.json").write_text(json.dumps(manifest))
    assert cli("data", "split", digits_splits["train"], "--out-dir", out, "--names", "a,b,c").exit_code == 0
    assert victim.read_text() == "precious"
    assert (out / "user.h5").read_text() == "the user's own file"
    assert not (out / "train.h5").exists()  # the earlier split's own parts were replaced as a set


# ---- every stop signal, at random moments (hardening round two) -----------------------------

SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


def _handles_sigterm(pid: int) -> bool:
    """Whether the process catches SIGTERM yet (its ``SigCgt`` mask in ``/proc``): pgan's entry point
    installs its handlers first thing, Python's own start-up before that is outside its reach."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True  # gone already, or no /proc: nothing to wait for
    mask = int(next(ln.split()[1] for ln in text.splitlines() if ln.startswith("SigCgt:")), 16)
    return bool(mask & (1 << (signal.SIGTERM - 1)))


def _race(args: list, cwd: Path, delay: float, signum: int) -> tuple[int, str]:
    """Start ``pgan ARGS``, send ``signum`` ``delay`` seconds after pgan's code starts to run (its
    handlers are in place), return (exit code, stderr)."""
    p = _start(*args, cwd=cwd)
    deadline = time.time() + 60
    while not _handles_sigterm(p.pid) and time.time() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    p.send_signal(signum)
    _, err = p.communicate(timeout=120)
    return p.returncode, err


def _check_ending(code: int, err: str, signum: int, prog: str) -> str:
    """Exit 0 or 128 + signal, one error line when stopped, never a traceback or an abort; returns
    the error line ('' on success)."""
    assert code in (0, SIGNAL_EXIT[signum]), (code, err)
    for bad in ("Traceback", "ignored in", "terminate called", "unexpected"):
        assert bad not in err, err
    errors = [ln for ln in err.splitlines() if ": error: " in ln]
    if code == 0:
        assert errors == [], err
        return ""
    assert len(errors) == 1, err
    assert errors[0].startswith((f"{prog}: error: ", "pgan: error: ")), err
    assert ("interrupted" if signum == signal.SIGINT else "terminated") in errors[0], err
    return errors[0]


def _moments(n: int, last: float, seed: int) -> list[tuple[float, int]]:
    """``n`` random (delay, signal) pairs: delays from the moment pgan's code runs (its start-up, the
    imports of seconds, included) to past the command's end, mostly SIGINT."""
    rng = np.random.default_rng(seed)
    sigs = [signal.SIGINT, signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    return [(float(rng.uniform(0.0, last)), int(rng.choice(sigs))) for _ in range(n)]


@pytest.mark.slow
def test_sample_always_stops_or_finishes_saying_so(tmp_path, digits8):
    """20 stop signals at random moments of `pgan sample`: the earlier output intact unless the
    line (or success) says the new one is complete; never swallowed, never a traceback."""
    assert run_pgan("train", digits8, "--steps", "2", "--width", "8", "-o", tmp_path / "g.pt", "-q").exit_code == 0
    out = tmp_path / "s.h5"
    for i, (delay, signum) in enumerate(_moments(20, 3.0, seed=1)):
        out.write_bytes(b"an earlier synthetic set")
        code, err = _race(["sample", "g.pt", "-n", "300", "-o", "s.h5", "--seed", str(i)], tmp_path, delay, signum)
        line = _check_ending(code, err, signum, "pgan sample")
        if code == 0 or "kept: s.h5" in line:
            with h5py.File(out, "r") as f:
                assert f["samples"].shape[0] == 300
        else:
            assert out.read_bytes() == b"an earlier synthetic set", (i, delay, line)
        assert _debris(tmp_path) == [], (i, delay)


@pytest.mark.slow
def test_train_always_stops_cleanly(tmp_path, digits8):
    """20 stop signals at random moments of `pgan train` (start-up, training steps, the save): never
    an abort from a signal raised inside torch's C++ callbacks, the earlier checkpoint intact."""
    out = tmp_path / "g.pt"
    for i, (delay, signum) in enumerate(_moments(20, 3.2, seed=2)):
        out.write_bytes(b"an earlier checkpoint")
        code, err = _race(["train", digits8, "--steps", "30", "--width", "8", "--checkpoint-every", "0", "-o", "g.pt",
                           "--seed", str(i)], tmp_path, delay, signum)
        line = _check_ending(code, err, signum, "pgan train")
        if code != 0 and "kept: g.pt" not in line:
            assert out.read_bytes() == b"an earlier checkpoint", (i, delay, line)
        else:
            assert out.read_bytes() != b"an earlier checkpoint"
        assert _debris(tmp_path) == [], (i, delay)


@pytest.mark.slow
def test_export_says_what_is_on_disk(tmp_path, digits_splits):
    """20 stop signals at random moments of `pgan data export --png-dir`: the folder holds the
    earlier set, or the new set whole with a line (or success) that says so; never a message that
    unfinished outputs were removed over a committed set."""
    def pngs(folder: Path) -> dict[str, int]:
        return {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*.png")}

    sets = {}
    for name in ("train", "holdout"):  # each split's complete export, to compare with
        assert run_pgan("data", "export", digits_splits[name], "--png-dir", tmp_path / name, "-q").exit_code == 0
        sets[name] = pngs(tmp_path / name)
    out = tmp_path / "png"
    assert run_pgan("data", "export", digits_splits["holdout"], "--png-dir", out, "-q").exit_code == 0
    for i, (delay, signum) in enumerate(_moments(20, 1.4, seed=3)):
        old_set = pngs(out)
        name = "train" if old_set == sets["holdout"] else "holdout"  # the other split replaces it
        code, err = _race(["data", "export", digits_splits[name], "--png-dir", "png", "-q"], tmp_path, delay, signum)
        line = _check_ending(code, err, signum, "pgan data export")
        now = pngs(out)
        if code == 0 or "kept: png" in line:
            assert now == sets[name], (i, delay, line)
        else:
            assert now == old_set, (i, delay, line)
        assert _debris(tmp_path) == [], (i, delay)
