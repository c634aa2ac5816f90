"""The CLI frame: version, help, env, the error path, fast start-up, python -m."""

from __future__ import annotations

import os

import json
import subprocess
import sys

from conftest import REPO, run_pgan

from pgan_cli import __version__
from pgan_cli.cli.app import PIPELINE_ORDER


def test_version_and_module_entry():
    r = run_pgan("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"pgan {__version__}"


def test_help_lists_every_command_with_a_description(cli):
    import typer

    from pgan_cli.cli.app import app

    r = cli("--help")
    assert r.exit_code == 0
    root = typer.main.get_command(app)
    assert set(root.commands) >= {"data", "env", "completions"}
    for name, cmd in root.commands.items():
        assert name in r.stdout
        assert (cmd.short_help or cmd.help or "").strip(), f"{name} has no description"
        assert name in PIPELINE_ORDER, f"add {name} to PIPELINE_ORDER"
        sub = cli(*name.split(), "--help")
        assert sub.exit_code == 0 and "Usage" in sub.stdout
        for subname, subcmd in (getattr(cmd, "commands", None) or {"": cmd}).items():
            assert "Example" in (subcmd.help or ""), f"pgan {name} {subname} --help needs an example"


def test_help_does_not_import_heavy_libraries():
    code = ("import sys; import pgan_cli.cli.app; "
            "print(json.dumps(sorted(m for m in ('torch', 'faiss', 'umap', 'sklearn', 'h5py') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [], "heavy imports at module level slow down --help and completion"


def test_env_json():
    r = run_pgan("env", "--json")
    assert r.exit_code == 0
    info = json.loads(r.stdout)
    assert info["packages"]["pgan"] == __version__
    assert info["torch"] and info["faiss"] and isinstance(info["cuda_available"], bool)


def test_unknown_command_and_option_exit_2(cli):
    r = cli("no-such-command")
    assert r.exit_code == 2 and "Traceback" not in r.stderr
    r = cli("data", "digits", "--bogus")
    assert r.exit_code == 2 and "Traceback" not in r.stderr


def test_unexpected_errors_are_one_line(monkeypatch, cli, tmp_path):
    """A bug in a command still ends in one line and exit 2 (the traceback only with --verbose)."""
    import pgan_cli.datasets as datasets

    def boom(size):
        raise ZeroDivisionError("deliberate")

    monkeypatch.setattr(datasets, "digits", boom)
    r = cli("data", "digits", "-o", tmp_path / "x.h5")
    assert r.exit_code == 2 and r.stderr.strip().count("\n") == 0
    assert "unexpected ZeroDivisionError: deliberate" in r.stderr and "--verbose" in r.stderr
    r = cli("--verbose", "data", "digits", "-o", tmp_path / "x.h5")
    assert r.exit_code == 2 and "Traceback" in r.stderr
    assert not (tmp_path / "x.h5").exists()


def test_stdout_closed_early_is_not_a_failed_gate(tmp_path):
    """`pgan train --help | head -1`: click and rich exit 1 on a broken pipe, which pgan keeps for a
    failed gate; pgan exits 141 (128 + SIGPIPE) instead. Output sent to /dev/null on purpose
    keeps its own exit codes."""
    import subprocess
    import sys

    from conftest import REPO

    cmd = f"{sys.executable} -m pgan_cli train --help | true; echo ${{PIPESTATUS[0]}}"  # the reader is gone first
    p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.stdout.strip() == "141", p
    p = subprocess.run([sys.executable, "-m", "pgan_cli", "train", "--help"], stdout=subprocess.DEVNULL,
                       cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 0


def test_progress_in_a_log_is_a_plain_line_every_30_s(monkeypatch, capsys):
    """Where stderr is not a terminal (a CI log) long steps say where they are: a plain line every
    PLAIN_EVERY_S seconds with the step, the count, the rate and the ETA; none with --quiet."""
    from pgan_cli import console

    clock = iter(float(t) for t in range(0, 1000, 10))  # 10 s per item
    monkeypatch.setattr(console, "_now", lambda: next(clock))
    assert list(console.progress(range(9), description="knn")) == list(range(9))
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert lines == ["knn: 3/9 (33%), 0.1/s, 0:30 elapsed, ETA 1:00", "knn: 6/9 (67%), 0.1/s, 1:00 elapsed, ETA 0:30",
                     "knn: 9/9 (100%), 0.1/s, 1:30 elapsed, ETA 0:00"]
    clock = iter(float(t) for t in range(0, 1000, 40))
    with console.progress_task("train", None) as step:
        step(2, info="loss_d 0.69")
    assert capsys.readouterr().err.strip() == "train: 2, 0.05/s, 0:40 elapsed, loss_d 0.69"
    console.configure(quiet=True)
    try:
        list(console.progress(range(9), description="knn"))
    finally:
        console.configure(quiet=False)
    assert capsys.readouterr().err == ""


def test_help_examples_use_todays_spellings():
    """Every 'Example:' line of every command's --help (and so of docs/CLI.md) uses today's option
    spellings, never a deprecated one (DEPRECATED_SPELLINGS)."""
    import shlex

    import typer

    from pgan_cli.cli.app import app
    from pgan_cli.cli.frame import DEPRECATED_SPELLINGS

    def walk(cmd, path):
        yield path, cmd
        for name, sub in sorted((getattr(cmd, "commands", None) or {}).items()):
            yield from walk(sub, (*path, name))

    found = 0
    for path, cmd in walk(typer.main.get_command(app), ()):
        table = DEPRECATED_SPELLINGS.get(path) or {}
        for line in (cmd.help or "").splitlines():
            if not line.strip().startswith("Example: pgan "):
                continue
            found += 1
            words = shlex.split(line.strip()[len("Example: "):].split("&&")[0].split("|")[0])
            old = [w.split("=")[0] for w in words if w.split("=")[0] in table]
            assert old == [], (" ".join(path), old, line)
    assert found >= 20
