"""What SIGINT, SIGTERM and SIGHUP mean to a pgan command: stop, and say what is on disk.

A signal is remembered as well as raised (:class:`Interrupted`, a ``KeyboardInterrupt``), so
one that Python swallows (raised inside a weakref callback or a ``__del__``) still stops the
run: every commit of an output checks :func:`poll` first, so a run that was told to stop
never replaces an output afterwards. Inside :func:`polled` (the training loop, where torch
calls back into Python from C++ and an exception raised there aborts the process) a signal is
only remembered and raised at the next :func:`poll`. ``docs/security.md`` states the promise.

This module imports nothing of pgan's: the entry point installs it before any heavy import,
so a signal during start-up gets the same one line.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}

_pending: list[int] = []
_late: list[int] = []  # arrived after the command had ended and said how
_quiet_depth = 0  # inside polled() or held(): a signal is remembered, not raised
_ended = False


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived; a command ends with exit 128 + its number (130, 143, 129)."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def name(self) -> str:
        return NAMES.get(self.signum, f"signal {self.signum}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _on_signal(signum: int, frame) -> None:
    if _ended:
        _late.append(signum)
        return
    _pending.append(signum)
    if _quiet_depth == 0:
        raise Interrupted(signum)


def begin() -> None:
    """A command starts: no signal received yet."""
    global _ended
    _ended = False
    _pending.clear()
    _late.clear()


def end() -> None:
    """The command has ended and said how (its result, or its one error line): a signal from now
    on changes nothing; :func:`late` tells whether one came."""
    global _ended
    _ended = True


def late() -> int | None:
    """The first stop signal that arrived after :func:`end`, or None."""
    return _late[0] if _late else None


def _unraisable(hook):
    """A ``sys.unraisablehook`` that drops :class:`Interrupted` (raised where Python can only print
    it, in a weakref callback or a ``__del__``: it is remembered, and the next :func:`poll` raises
    it again) and hands everything else to ``hook``."""
    def quiet(unraisable) -> None:
        if not isinstance(unraisable.exc_value, Interrupted):
            hook(unraisable)

    quiet.pgan = True
    return quiet


def install() -> dict[int, object]:
    """Handle the stop signals in this (main) thread; return the handlers they replace."""
    if not getattr(sys.unraisablehook, "pgan", False):
        sys.unraisablehook = _unraisable(sys.unraisablehook)
    old = {}
    for sig in SIGNALS:
        try:
            old[sig] = signal.signal(sig, _on_signal)
        except (ValueError, OSError):  # not the main thread
            pass
    return old


def ignore() -> None:
    """Ignore the stop signals from now on (the process is exiting)."""
    for sig in SIGNALS:
        try:
            signal.signal(sig, signal.SIG_IGN)
        except (ValueError, OSError):
            pass


def restore(old: dict[int, object]) -> None:
    """Put back the handlers :func:`install` replaced."""
    for sig, handler in old.items():
        signal.signal(sig, handler)


def pending() -> int | None:
    """The first stop signal received since :func:`clear`, or None."""
    return _pending[0] if _pending else None


def clear() -> None:
    """Forget received signals (a command's run ended and reported them)."""
    _pending.clear()


def poll() -> None:
    """Raise :class:`Interrupted` if a stop signal arrived, even one whose exception was lost."""
    if _pending:
        raise Interrupted(_pending[0])


@contextmanager
def _quiet() -> Iterator[None]:
    global _quiet_depth
    _quiet_depth += 1
    try:
        yield
    finally:
        _quiet_depth -= 1


@contextmanager
def deferred() -> Iterator[None]:
    """Within the block (a command's whole run) a signal is only remembered, and raised at the next
    safe point: :func:`poll`, which every progress tick, log line and commit of an output calls.
    torch runs Python from C++ (its Python kernels, callbacks), where an exception raised by the
    handler aborts the process instead of unwinding."""
    with _quiet():
        yield


@contextmanager
def polled() -> Iterator[None]:
    """Within the block a signal is only remembered; :func:`poll` (and the block's end) raises it."""
    with _quiet():
        yield
    poll()


@contextmanager
def held() -> Iterator[None]:
    """Within the block a signal is only remembered, and not raised at its end either: the block
    (a commit of renames) is never cut in half, and what it committed stays committed. The next
    :func:`poll`, or the command's end, reports the signal."""
    with _quiet():
        yield
