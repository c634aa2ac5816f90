"""The command-line frame: the root Typer app, shared options, and the one error path.

Each module in :mod:`pgan_cli.commands` registers its commands with :func:`command` (a single
command) or :func:`group` (a group such as ``pgan data``). Both wrap the command function so
that any :class:`~pgan_cli.errors.PganError`, bad file or interrupt ends in one stderr line
``pgan <command>: error: <message>`` and the right exit code; ``--verbose`` adds the traceback
(without local variables, which may hold patient pixels).

Heavy libraries (torch, faiss, umap) are imported inside command functions, never at module
level, so ``pgan --help`` and shell completion stay instant.
"""

from __future__ import annotations

import functools
import sys
import traceback
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from typer.core import TyperGroup

from pgan_cli import console
from pgan_cli.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, PganError

PIPELINE_ORDER = ["data", "train", "sample", "embed", "knn", "mmd", "fidelity", "utility", "attack",
                  "privatize", "report", "audit", "env", "completions"]


class PipelineOrderGroup(TyperGroup):
    """Lists commands in the order a user runs them (data -> train -> ... -> audit)."""

    def list_commands(self, ctx):
        rank = {n: i for i, n in enumerate(PIPELINE_ORDER)}
        return sorted(self.commands, key=lambda n: (rank.get(n, len(rank)), n))


app = typer.Typer(
    name="pgan",
    cls=PipelineOrderGroup,
    help="Train GANs on sensitive images and audit what they release: fidelity, utility, privacy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

# ---- options shared by every command (defined once, mean the same everywhere) -------------
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same output.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (GPU when present), cpu, cuda or cuda:N.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Output file.", dir_okay=False)]
OptionalOutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o", help="Output file.", dir_okay=False)]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or logs on stderr.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", help="Show the traceback when a command fails.")]

GLOBAL_FLAGS = {"--quiet": ("quiet", True), "-q": ("quiet", True), "--verbose": ("verbose", True)}


def report_error(prog: str, message: str) -> None:
    """Write the one error line: ``pgan <command>: error: <message>``."""
    line = " ".join(str(message).split())  # one line, whatever the message held
    sys.stderr.write(f"{prog}: error: {line}\n")
    sys.stderr.flush()


def _print_traceback(exc: BaseException) -> None:
    sys.stderr.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


def guarded(prog: str) -> Callable[[Callable], Callable]:
    """Decorate a command so every failure ends in one line and an exit code."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except typer.Exit:
                raise
            except PganError as e:
                if console.state.verbose:
                    _print_traceback(e)
                report_error(prog, str(e))
                raise typer.Exit(e.exit_code) from None
            except typer.BadParameter:
                raise
            except KeyboardInterrupt:
                report_error(prog, "interrupted; no output was written")
                raise typer.Exit(EXIT_INTERRUPTED) from None
            except MemoryError:
                report_error(prog, "out of memory; use smaller batches (--batch-size) or a smaller input")
                raise typer.Exit(EXIT_BAD_INPUT) from None
            except OSError as e:
                if console.state.verbose:
                    _print_traceback(e)
                where = f" ({e.filename})" if getattr(e, "filename", None) else ""
                report_error(prog, f"{e.strerror or e}{where}")
                raise typer.Exit(EXIT_BAD_INPUT) from None
            except Exception as e:  # a bug: still one line, the traceback with --verbose
                if console.state.verbose:
                    _print_traceback(e)
                report_error(prog, f"unexpected {type(e).__name__}: {e} (rerun with --verbose for "
                                   f"the traceback and please report it)")
                raise typer.Exit(EXIT_BAD_INPUT) from None

        return run

    return decorate


def _help_kwargs(fn: Callable, kwargs: dict) -> dict:
    """``help=`` is the one-line summary in lists; the docstring (with its example) the full help."""
    if "help" in kwargs and fn.__doc__:
        kwargs = dict(kwargs)
        kwargs["short_help"] = kwargs.pop("help")
    return kwargs


def command(name: str, **kwargs) -> Callable[[Callable], Callable]:
    """Register a top-level command ``pgan <name>`` (kwargs go to ``Typer.command``)."""

    def decorate(fn: Callable) -> Callable:
        app.command(name, **_help_kwargs(fn, kwargs))(guarded(f"pgan {name}")(fn))
        return fn

    return decorate


class Group:
    """A command group such as ``pgan data``, whose subcommands share the error path."""

    def __init__(self, name: str, help: str):
        self.name = name
        self.typer = typer.Typer(name=name, help=help, no_args_is_help=True, add_completion=False,
                                 pretty_exceptions_enable=False, rich_markup_mode="rich",
                                 context_settings={"help_option_names": ["-h", "--help"]})
        app.add_typer(self.typer, name=name, help=help)

    def command(self, name: str, **kwargs) -> Callable[[Callable], Callable]:
        def decorate(fn: Callable) -> Callable:
            self.typer.command(name, **_help_kwargs(fn, kwargs))(guarded(f"pgan {self.name} {name}")(fn))
            return fn

        return decorate


def group(name: str, help: str) -> Group:
    """Register a command group ``pgan <name> ...``."""
    return Group(name, help)


def resolve_device(device: str) -> str:
    """Turn ``auto|cpu|cuda|cuda:N|cuda:all`` into a concrete torch device string."""
    import torch

    from pgan_cli.errors import InputError

    d = device.strip().lower()
    if d == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if d == "cpu":
        return "cpu"
    if d.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"--device {device} asked for a GPU but none is available; use --device cpu")
        return "cuda" if d == "cuda:all" else d
    raise InputError(f"unknown --device {device!r}; use auto, cpu, cuda or cuda:N")
