"""The ``pgan`` entry point: the root app, global flags, and command discovery.

Every module in :mod:`pgan_cli.cli.commands` registers itself on import; they are imported in
pipeline order so ``pgan --help`` lists them as a user runs them.
"""

from __future__ import annotations

import importlib
import pkgutil
import os
import sys
from typing import Annotated

import typer

from pgan_cli import __version__, console
from pgan_cli.cli.frame import DEPRECATED_SPELLINGS, GLOBAL_FLAGS, PIPELINE_ORDER, app


def _load_commands() -> None:
    import pgan_cli.cli.commands as pkg

    names = [m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")]
    rank = {n: i for i, n in enumerate(PIPELINE_ORDER)}
    for name in sorted(names, key=lambda n: (rank.get(n, len(rank)), n)):
        importlib.import_module(f"pgan_cli.cli.commands.{name}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pgan {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or logs on stderr.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show tracebacks on errors.")] = False,
    no_provenance: Annotated[bool, typer.Option("--no-provenance", help="Write a fixed provenance stub (no time, "
                                                "command, paths or hashes): byte-comparable outputs for tests.")] = False,
) -> None:
    """[bold]pgan[/bold]: train GANs on sensitive images and audit what they release.

    Commands read and write HDF5 dataset files and NPY arrays so they chain in shell scripts;
    results go to stdout (JSON with --json), progress and logs to stderr. Exit codes: 0 ok,
    1 an audit gate failed, 2 bad input.

    Example: pgan data digits -o real.h5 && pgan data split real.h5 --out-dir splits --seed 0
    """
    console.configure(quiet=quiet or console.state.quiet, verbose=verbose or console.state.verbose,
                      provenance=console.state.provenance and not no_provenance)


_load_commands()


def normalize_argv(argv: list[str]) -> list[str]:
    """Let the global flags (--quiet, -q, --verbose, --no-provenance) appear anywhere on the command
    line, and rewrite earlier option spellings to today's (:data:`pgan_cli.cli.DEPRECATED_SPELLINGS`)."""
    argv = _respell(argv)
    head, rest = [], []
    for i, a in enumerate(argv):
        if a == "--":
            rest.extend(argv[i:])
            break
        if a in GLOBAL_FLAGS:
            attr, value = GLOBAL_FLAGS[a]
            console.configure(**{attr: value})
            head.append(a)
        else:
            rest.append(a)
    return head + rest


def _respell(argv: list[str]) -> list[str]:
    words = [a for a in argv if not a.startswith("-")][:2]
    table = DEPRECATED_SPELLINGS.get(tuple(words[:2])) or DEPRECATED_SPELLINGS.get(tuple(words[:1])) or {}
    if not table:
        return list(argv)
    out = []
    for i, a in enumerate(argv):
        if a == "--":
            return out + list(argv[i:])
        name, eq, value = a.partition("=")
        out.append(table[name] + eq + value if name in table else a)
    return out


EXIT_BROKEN_PIPE = 141


def main(argv: list[str] | None = None) -> None:
    """Run the tool (the ``pgan`` console script and ``python -m pgan_cli``)."""
    args = normalize_argv(list(sys.argv[1:] if argv is None else argv))
    null_before = _stdout_is_devnull()
    try:
        app(args=args, prog_name="pgan")
    except SystemExit as e:
        from click.utils import PacifyFlushWrapper

        # stdout was closed early (`pgan train --help | head`): click (on EPIPE) and rich (which
        # points stdout at /dev/null) exit 1, which pgan reserves for a failed gate; exit as a
        # shell reports a process ended by SIGPIPE (128 + 13) instead (docs/CLI.md, "Exit codes")
        if e.code == 1 and (isinstance(sys.stdout, PacifyFlushWrapper) or (not null_before and _stdout_is_devnull())):
            raise SystemExit(EXIT_BROKEN_PIPE) from None
        raise


def _stdout_is_devnull() -> bool:
    try:
        return os.path.samestat(os.fstat(1), os.stat(os.devnull))
    except OSError:
        return False
