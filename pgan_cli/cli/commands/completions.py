"""``pgan completions``: print or write the bash, zsh and fish completion scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pgan_cli import console
from pgan_cli.cli.frame import command
from pgan_cli.errors import UsageError


@command("completions", help="Print (or write) shell completion scripts for bash, zsh or fish.")
def completions(
    shell: Annotated[Optional[str], typer.Argument(help="bash, zsh or fish.")] = None,
    write: Annotated[Optional[Path], typer.Option("--write", help="Write all three scripts into this folder.")] = None,
) -> None:
    """Shell completion for every command and option, generated from the CLI itself.

    With --write DIR inside the repository, docs/CLI.md (the command reference) is regenerated too.

    Example: pgan completions bash > ~/.local/share/bash-completion/completions/pgan
    """
    from pgan_cli.cli.completions import SHELLS, render
    from pgan_cli.atomic import atomic_path

    if write is not None:
        write.mkdir(parents=True, exist_ok=True)
        for sh, name in SHELLS.items():
            with atomic_path(write / name) as tmp:
                tmp.write_text(render(sh))
        docs = write.parent / "docs" / "CLI.md"
        if docs.parent.is_dir():  # in the repository: the command reference too
            from pgan_cli.cli.docs import render_cli_reference

            with atomic_path(docs) as tmp:
                tmp.write_text(render_cli_reference())
        console.log(f"wrote {', '.join(str(write / n) for n in SHELLS.values())}")
        return
    if shell not in SHELLS:
        raise UsageError(f"unknown shell {shell!r}; choose bash, zsh or fish (or use --write DIR)")
    console.emit(render(shell))
