"""The command-line frame: the root Typer app, shared options, and the one error path.

Each module in :mod:`pgan_cli.cli.commands` registers its commands with :func:`command` (a single
command) or :func:`group` (a group such as ``pgan data``). Both wrap the command function so
that any :class:`~pgan_cli.errors.PganError`, bad file or interrupt ends in one stderr line
``pgan <command>: error: <message>`` and the right exit code; ``--verbose`` adds the traceback
(without local variables, which may hold patient pixels).

Heavy libraries (torch, faiss, umap) are imported inside command functions, never at module
level, so ``pgan --help`` and shell completion stay instant.
"""

from __future__ import annotations

import errno
import functools
import signal
import sys
import traceback
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from typer.core import TyperGroup

from pgan_cli import atomic, console, files, interrupts
from pgan_cli.errors import EXIT_BAD_INPUT, PganError
from pgan_cli.params import DEFAULT_MLFLOW_STORE, DEFAULT_TRACK_EXPERIMENT, SEED, TRACK_BACKENDS

PIPELINE_ORDER = ["data", "train", "sample", "embed", "knn", "mmd", "fidelity", "utility", "cluster", "attack",
                  "dp-audit", "privatize", "report", "audit", "env", "completions"]


class PipelineOrderGroup(TyperGroup):
    """Lists commands in the order a user runs them (data -> train -> ... -> audit), and turns
    every usage error into one line (``pgan sample: error: no such option: --bogus; see pgan
    sample --help``) instead of click's boxed block."""

    def list_commands(self, ctx):
        rank = {n: i for i, n in enumerate(PIPELINE_ORDER)}
        return sorted(self.commands, key=lambda n: (rank.get(n, len(rank)), n))

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        from typer._click import exceptions as ce

        try:
            _refuse_empty_paths(self, args)
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except ce.NoArgsIsHelpError as e:
            e.show()
            rv = e.exit_code
        except ce.UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else "pgan"
            see = f"; see {where} --help" if e.ctx is not None else ""
            report_error(where, f"{e.format_message()}{see}")
            rv = EXIT_BAD_INPUT
        except ce.ClickException as e:
            report_error("pgan", e.format_message())
            rv = e.exit_code
        except (getattr(ce, "Abort", KeyboardInterrupt), KeyboardInterrupt) as e:  # Abort: not in every typer
            rv = report_interrupt("pgan", e, [])
            interrupts.clear()
        if interrupts.pending() is not None:  # outside a command; typer turns it into a silent exit 130
            rv = report_interrupt("pgan", interrupts.Interrupted(interrupts.pending()), [])
            interrupts.clear()
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


def _refuse_empty_paths(group, args) -> None:
    """``-o ''`` and other empty paths, named before parsing (which reads them as '.')."""
    from pgan_cli.cli.emptypaths import empty_path_error

    error = empty_path_error(group, list(sys.argv[1:] if args is None else args))
    if error is not None:
        raise error


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
JsonOutputOpt = Annotated[Optional[Path], typer.Option(
    "--output", "-o", dir_okay=False, help="Also write the JSON result to this file ('-': to stdout, as --json).")]
# Experiment tracking (pgan train, pgan audit; pgan_cli/tracking/)
TrackOpt = Annotated[str, typer.Option(
    "--track", help="Log to an experiment tracker: " + ", ".join(TRACK_BACKENDS)
    + " (optional extras: pip install 'pgan-cli[mlflow]' or 'pgan-cli[tensorboard]').")]
TrackUriOpt = Annotated[Optional[str], typer.Option(
    "--track-uri", help="--track mlflow: the local file store, a folder or a file: URI (no server) "
    f"[default: ./{DEFAULT_MLFLOW_STORE}].")]
TrackExperimentOpt = Annotated[Optional[str], typer.Option(
    "--track-experiment", help=f"--track mlflow: the experiment the run goes in [default: {DEFAULT_TRACK_EXPERIMENT}].")]

# One vocabulary (docs/CLI.md): the same set has the same option in every command, ``-n`` is a
# count, ``-o`` a file and ``--out-dir`` a folder. Earlier spellings still work: they are
# rewritten to these before parsing and are not shown in --help.
DEPRECATED_SPELLINGS: dict[tuple[str, ...], dict[str, str]] = {
    ("attack",): {"--non-members": "--holdout"},
    ("utility",): {"--real-train": "--members", "--test": "--holdout"},
    ("audit",): {"-o": "--out-dir", "--output": "--out-dir"},
    ("data", "export"): {"--n": "-n"},
}

GLOBAL_FLAGS = {"--quiet": ("quiet", True), "-q": ("quiet", True), "--verbose": ("verbose", True),
                "--no-provenance": ("provenance", False)}


def report_error(prog: str, message: str) -> None:
    """Write the one error line: ``pgan <command>: error: <message>``."""
    line = " ".join(str(message).split())  # one line, whatever the message held
    sys.stderr.write(f"{prog}: error: {line}\n")
    sys.stderr.flush()


OUT_OF_MEMORY = ("out of memory; give a smaller input or ask for less work (see the command's --help for "
                 "each option's bounds)")


def _out_of_memory(e: BaseException) -> bool:
    """An allocation failure reported as a RuntimeError (torch's CPU and CUDA allocators)."""
    text = str(e).lower()
    return isinstance(e, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


def _print_traceback(exc: BaseException) -> None:
    sys.stderr.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


# Parameters that name what a command writes; every other path parameter is one of its inputs.
OUTPUT_FILES = ("output", "scores", "summary", "log", "grid", "save_model")
OUTPUT_FOLDERS = ("out_dir", "png_dir", "sample_dir", "output_dir", "write", "shadow_dir", "track_dir")


def deliver(result: dict, output: Path | None, json_out: bool) -> bool:
    """A JSON result where the user asked for it: written to ``-o`` (atomically) and printed on stdout
    with ``--json``; True when printed (the command then prints nothing else)."""
    if output is not None:
        atomic.write_json(output, result)
    if json_out:
        console.emit_json(result)
    return json_out


def report_interrupt(prog: str, exc: BaseException, done: list[Path]) -> int:
    """The one line for a stop signal, naming the outputs already complete; its exit code (128 + signal)."""
    signum = getattr(exc, "signum", signal.SIGINT)
    what = "interrupted" if signum == signal.SIGINT else f"terminated ({interrupts.NAMES.get(signum, signum)})"
    kept = f"; complete before it and kept: {', '.join(map(str, done))}" if done else ""
    report_error(prog, f"{what}; unfinished outputs were removed, earlier ones are intact{kept}")
    return 128 + int(signum)


def _stdout_json(kwargs: dict, allowed: bool) -> dict:
    """``-o -``: the JSON result on stdout (as ``--json``) where the command's output is JSON; refused
    for every other output (it would make a file named ``-``)."""
    from pgan_cli.errors import UsageError

    flags = _flag_names()
    for k in OUTPUT_FILES:
        if isinstance(kwargs.get(k), Path) and str(kwargs[k]) == "-":
            if k == "output" and allowed:
                kwargs = {**kwargs, "output": None, "json_out": True}
                continue
            raise UsageError(f"{flags.get(k, '--' + k)} -: '-' (stdout) stands for JSON results only; give a "
                             f"file path" + (" (--json prints the result on stdout)" if "json_out" in kwargs else ""))
    return kwargs


def _flag_names() -> dict[str, str]:
    """``{parameter name: how the user spells it}`` for the running command (``-o``, ``SOURCE``)."""
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    out = {}
    for p in getattr(getattr(ctx, "command", None), "params", []):
        if p.name:
            opts = [o for o in p.opts if o.startswith("--")] or list(p.opts)
            out[p.name] = opts[0] if getattr(p, "param_type_name", "") == "option" else p.name.upper()
    return out


def _paths(value) -> list[Path]:
    if isinstance(value, Path):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, Path)]
    return []


def check_command_paths(kwargs: dict, in_place: tuple[str, ...] = ()) -> None:
    """Before any work: outputs never replace inputs, folders stay folders, seeds are in range."""
    from pgan_cli.errors import UsageError

    seed = kwargs.get("seed")
    if isinstance(seed, int) and not SEED.holds(seed):
        raise UsageError(f"--seed {seed} is outside [0, 2^63); give a seed in that range")
    flags = _flag_names()
    name = lambda k: flags.get(k, "--" + k.replace("_", "-"))  # noqa: E731
    outs = [(name(k), p) for k in OUTPUT_FILES for p in _paths(kwargs.get(k))]
    folders = [(name(k), p) for k in OUTPUT_FOLDERS for p in _paths(kwargs.get(k))]
    inputs = [(name(k), p) for k, v in kwargs.items()
              if k not in OUTPUT_FILES + OUTPUT_FOLDERS for p in _paths(v)]
    allowed = [p for k in in_place for p in _paths(kwargs.get(k))]
    files.begin_run(inputs, allowed)
    files.check_paths(inputs, outs, folders, allowed)


def guarded(prog: str, in_place: tuple[str, ...] = (), stdout_json: bool = False) -> Callable[[Callable], Callable]:
    """Decorate a command so every failure ends in one line and an exit code.

    Before the command runs its paths are checked (:func:`check_command_paths`; ``stdout_json``:
    ``-o -`` prints its JSON result); while it runs SIGINT, SIGTERM and SIGHUP unwind (exit 130,
    143, 129: :mod:`pgan_cli.interrupts`) so temporary files are removed and earlier outputs stay
    intact, and the one line names the outputs already complete; a signal that arrived while the
    last outputs were committed ends in success, saying so. After a failure the folders the
    command created are removed when empty (``docs/security.md``).
    """

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*args, **kwargs):
            outermost = files.current_run() is None
            old = interrupts.install()
            if outermost:
                interrupts.begin()
            failed = True
            try:
                kwargs = _stdout_json(kwargs, stdout_json)
                check_command_paths(kwargs, in_place)
                with interrupts.deferred():
                    out = fn(*args, **kwargs)
                failed = False
                signum = interrupts.pending()
                if outermost and signum is not None:
                    console.warn(f"{prog}: {interrupts.NAMES.get(signum, signum)} arrived while its last outputs "
                                 f"were committed; the run is complete and they are kept")
                return out
            except typer.Exit as e:
                failed = bool(getattr(e, "exit_code", 0)) and e.exit_code != 1
                raise
            except PganError as e:
                if console.state.verbose:
                    _print_traceback(e)
                # a parameter's name reads as the option the user typed (params.OptionError)
                report_error(prog, e.render(_flag_names()) if hasattr(e, "render") else str(e))
                raise typer.Exit(e.exit_code) from None
            except typer.BadParameter:
                raise
            except KeyboardInterrupt as e:
                run_paths = files.current_run()
                raise typer.Exit(report_interrupt(prog, e, run_paths.committed if run_paths else [])) from None
            except MemoryError:
                report_error(prog, OUT_OF_MEMORY)
                raise typer.Exit(EXIT_BAD_INPUT) from None
            except OSError as e:
                if console.state.verbose:
                    _print_traceback(e)
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    full = atomic.NoSpace(Path(e.filename or ".").parent if e.filename else Path("."))
                    report_error(prog, str(full))
                    raise typer.Exit(EXIT_BAD_INPUT) from None
                where = f" ({e.filename})" if getattr(e, "filename", None) else ""
                report_error(prog, f"{e.strerror or e}{where}")
                raise typer.Exit(EXIT_BAD_INPUT) from None
            except Exception as e:  # a bug: still one line, the traceback with --verbose
                if console.state.verbose:
                    _print_traceback(e)
                if _out_of_memory(e):  # torch's allocators raise RuntimeError, not MemoryError
                    report_error(prog, OUT_OF_MEMORY)
                    raise typer.Exit(EXIT_BAD_INPUT) from None
                report_error(prog, f"unexpected {type(e).__name__}: {e} (rerun with --verbose for "
                                   f"the traceback and please report it)")
                raise typer.Exit(EXIT_BAD_INPUT) from None
            finally:
                interrupts.restore(old)
                files.forget_run(failed)
                if outermost:
                    interrupts.clear()
                    interrupts.end()

        return run

    return decorate


def _help_kwargs(fn: Callable, kwargs: dict) -> dict:
    """``help=`` is the one-line summary in lists; the docstring (with its example) the full help."""
    if "help" in kwargs and fn.__doc__:
        kwargs = dict(kwargs)
        kwargs["short_help"] = kwargs.pop("help")
    return kwargs


def command(name: str, in_place: tuple[str, ...] = (), stdout_json: bool = False,
            **kwargs) -> Callable[[Callable], Callable]:
    """Register a top-level command ``pgan <name>`` (kwargs go to ``Typer.command``); ``in_place``
    names input parameters the command may rewrite on purpose (``train --resume``); ``stdout_json``:
    its ``-o`` is a JSON result, and ``-o -`` prints it on stdout."""

    def decorate(fn: Callable) -> Callable:
        app.command(name, **_help_kwargs(fn, kwargs))(guarded(f"pgan {name}", in_place, stdout_json)(fn))
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
    """``--device`` as a torch device (:func:`pgan_cli.devices.torch_device`)."""
    from pgan_cli.devices import torch_device

    return torch_device(device)
