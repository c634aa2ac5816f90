"""Exceptions the library raises; the command line turns each into one stderr line and an exit code.

Exit codes of the ``pgan`` tool: 0 success, 1 an audit gate failed, 2 bad input or usage, 128 +
the signal when stopped (130 SIGINT, 143 SIGTERM, 129 SIGHUP: :mod:`pgan_cli.interrupts`).
Library code raises :class:`PganError` subclasses with a message that says what is wrong, which
file, and what to do; it never prints.
"""

from __future__ import annotations

EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2


class PganError(Exception):
    """Base class of every error pgan reports to the user (exit code 2)."""

    exit_code = EXIT_BAD_INPUT


class InputError(PganError):
    """A file or value given by the user is missing, unreadable or invalid."""


class FormatError(InputError):
    """A file is not a valid pgan dataset/checkpoint/result file."""


class UsageError(PganError):
    """Options that cannot be combined, or a required option that is missing."""


class GateFailed(PganError):
    """The audit ran and at least one gate failed (exit code 1)."""

    exit_code = EXIT_GATE_FAILED

