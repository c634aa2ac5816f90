"""Where output goes: results on stdout, people (logs, progress bars, tables) on stderr.

Library code may call :func:`log` and :func:`progress`; both respect ``--quiet`` and never
write to stdout, so ``pgan mmd a.npy b.npy --json | jq .p_value`` always works.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from rich.console import Console

from pgan_cli import interrupts

T = TypeVar("T")


class _State:
    quiet: bool = False
    verbose: bool = False
    provenance: bool = True  # --no-provenance: outputs carry a fixed stub (golden tests)


state = _State()
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def size_text(nbytes: float) -> str:
    """A byte count in the largest binary unit that keeps it at least 1 (up to TiB): "512 B",
    "3.2 MiB", "1,536.0 TiB"."""
    value, unit = float(nbytes), 0
    while abs(value) >= 1024 and unit < len(BYTE_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{value:,.0f} B" if unit == 0 else f"{value:,.1f} {BYTE_UNITS[unit]}"


def configure(quiet: bool | None = None, verbose: bool | None = None, provenance: bool | None = None) -> None:
    """Set the global ``--quiet`` / ``--verbose`` / ``--no-provenance`` flags."""
    if quiet is not None:
        state.quiet = quiet
    if verbose is not None:
        state.verbose = verbose
    if provenance is not None:
        state.provenance = provenance


def log(message: str) -> None:
    """A progress or information line on stderr (silenced by ``--quiet``); a safe point where a
    stop signal that arrived is raised (:func:`pgan_cli.interrupts.poll`)."""
    interrupts.poll()
    if not state.quiet:
        stderr.print(message, markup=False)


def warn(message: str) -> None:
    """A warning on stderr; shown even with ``--quiet``."""
    stderr.print(f"warning: {message}", markup=False)


def _progress_bar():
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                    console=stderr, transient=True, disable=state.quiet or not stderr.is_terminal)


PLAIN_EVERY_S = 30.0  # stderr not a terminal (a CI log, a file): a plain progress line this often
_now = time.monotonic


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class _PlainProgress:
    """Progress for a log: a line every :data:`PLAIN_EVERY_S` seconds (step, done, rate, ETA), where
    a bar would draw nothing and a long step would otherwise be silent until its end."""

    def __init__(self, description: str, total: int | None):
        self.description, self.total, self.done, self.info = description or "working", total, 0, ""
        self.t0 = self.last = _now()

    def advance(self, n: int = 1, info: str | None = None) -> None:
        self.done += n
        self.info = self.info if info is None else info
        now = _now()
        if now - self.last >= PLAIN_EVERY_S:
            self.last = now
            stderr.print(self.line(now), markup=False)

    def line(self, now: float) -> str:
        rate = self.done / max(now - self.t0, 1e-9)
        parts = [f"{self.description}: {self.done:,}" + (f"/{self.total:,}" if self.total else "")]
        if self.total:
            parts[0] += f" ({100 * self.done / self.total:.0f}%)"
        parts.append(f"{rate:.3g}/s, {_duration(now - self.t0)} elapsed")
        if self.total and rate > 0:
            parts.append(f"ETA {_duration((self.total - self.done) / rate)}")
        if self.info:
            parts.append(self.info)
        return ", ".join(parts)


def _plain(description: str, total: int | None) -> _PlainProgress | None:
    return None if state.quiet or stderr.is_terminal else _PlainProgress(description, total)


def progress(iterable: Iterable[T], total: int | None = None, description: str = "") -> Iterator[T]:
    """Iterate with a rich progress bar on stderr on a terminal, a plain line every 30 s elsewhere
    (a CI log), nothing with ``--quiet``."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    plain = _plain(description, total)
    with _progress_bar() as bar:
        task = bar.add_task(description, total=total, info="")
        for item in iterable:
            interrupts.poll()  # a safe point: each step of a long loop
            yield item
            bar.advance(task)
            if plain is not None:
                plain.advance()


@contextmanager
def progress_task(description: str, total: int | None):
    """A progress bar driven by hand: ``with progress_task("train", n) as step: step(1, info="loss 0.3")``
    (a plain line every 30 s where stderr is not a terminal, as :func:`progress`)."""
    plain = _plain(description, total)
    with _progress_bar() as bar:
        task = bar.add_task(description, total=total, info="")

        def advance(n: int = 1, info: str | None = None) -> None:
            interrupts.poll()
            if info is None:
                bar.advance(task, n)
            else:
                bar.update(task, advance=n, info=info)
            if plain is not None:
                plain.advance(n, info)

        yield advance


def _clean(value: Any) -> Any:
    """Make a result JSON-safe: numpy scalars/arrays to Python, non-finite floats refused."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(result: Any) -> str:
    """Serialise a result with sorted keys; NaN/Inf become ``null`` (never invalid JSON)."""
    return json.dumps(_clean(result), indent=2, sort_keys=True, allow_nan=False)


def emit_json(result: Any) -> None:
    """Print a result as JSON on stdout."""
    sys.stdout.write(to_json(result) + "\n")
    sys.stdout.flush()


def emit(text: str) -> None:
    """Print a short human-readable result on stdout."""
    sys.stdout.write(text.rstrip("\n") + "\n")
    sys.stdout.flush()
