"""The completion scripts in completions/ are generated from the CLI and must match it."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import REPO

from pgan_cli.cli.completions import SHELLS, command_tree, render


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_completion_files_are_up_to_date(shell):
    on_disk = (REPO / "completions" / SHELLS[shell]).read_text()
    assert on_disk == render(shell) + "\n" or on_disk == render(shell), (
        f"completions/{SHELLS[shell]} is stale: run `pgan completions --write completions`")


def test_every_command_and_option_is_in_the_scripts():
    tree = command_tree()
    text = {sh: render(sh) for sh in SHELLS}

    def walk(node):
        yield node
        for c in node.children.values():
            yield from walk(c)

    for node in walk(tree):
        for name in node.children:
            assert all(name in t for t in text.values())
        for flag, _ in node.options:
            if flag.startswith("--"):
                assert flag in text["bash"] and flag in text["zsh"] and f"-l {flag[2:]}" in text["fish"]


def test_bash_completion_runs():
    bash = shutil.which("bash")
    script = REPO / "completions" / "pgan.bash"
    cmd = (f"source {script}; COMP_WORDS=(pgan data sp); COMP_CWORD=2; _pgan; echo ${{COMPREPLY[@]}}; "
           f"COMP_WORDS=(pgan data split x.h5 --se); COMP_CWORD=4; _pgan; echo ${{COMPREPLY[@]}}")
    out = subprocess.run([bash, "-c", cmd], capture_output=True, text=True)
    assert out.stdout.split("\n")[:2] == ["split", "--seed"]


def test_cli_reference_is_up_to_date():
    from pgan_cli.cli.docs import render_cli_reference

    text = render_cli_reference()
    assert (REPO / "docs" / "CLI.md").read_text() == text, (
        "docs/CLI.md is stale: run `pgan completions --write completions`")
    assert "### pgan data split" in text and "`--fractions`" in text
