"""``commands.sh``, the audit's replayable script: one ``pgan`` line per step, every word quoted so
that no file name can ever become a live shell line (docs/audit.md).

The writer (:func:`write_commands`) and the quoting it uses (:func:`shell_word`,
:func:`shell_join`, :func:`shell_comment`) live here; :mod:`pgan_cli.audit` plans the steps.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from pgan_cli import __version__
from pgan_cli.atomic import atomic_path

COMMANDS_FILE = "commands.sh"

# control characters, and the Unicode line breaks (NEL, LINE and PARAGRAPH SEPARATOR) that
# editors, pagers and Python's str.splitlines show as new lines although bash does not
_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def _escape(ch: str) -> str:
    """One such character as bash's ANSI-C escapes of its UTF-8 bytes (``\\xHH`` each: ``\\u``
    would depend on the locale bash runs in)."""
    return "".join(f"\\x{b:02x}" for b in ch.encode("utf-8"))


def shell_word(arg: str) -> str:
    """``arg`` as one bash word, byte for byte, on one line.

    :func:`shlex.quote` when ``arg`` has no control character or Unicode line break; else bash's
    ANSI-C quoting (``$'...'``, such characters as ``\\xHH`` bytes, backslash and quote
    escaped), so a file name holding a newline (or U+2028) never spreads over two lines of
    ``commands.sh``, not even as an editor shows it (docs/audit.md).
    """
    if not _CONTROL.search(arg):
        return shlex.quote(arg)
    out = []
    for ch in arg:
        if ch in "\\'":
            out.append("\\" + ch)
        elif _CONTROL.match(ch):
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"


def shell_join(argv: list[str]) -> str:
    """A command line of :func:`shell_word` words."""
    return " ".join(shell_word(a) for a in argv)


def shell_comment(text: str) -> str:
    """``# text`` on one line: every control character (a newline above all, which would end the
    comment and start a live line) is written as ``\\xHH``."""
    return "# " + _CONTROL.sub(lambda m: _escape(m.group()), text)


# Run from the script's own folder; ${0%/*} keeps every byte of the path (a command substitution
# would strip trailing newlines) and `cd --` reads a folder starting with '-' as a folder.
CD_LINE = 'case "$0" in */*) cd -- "${0%/*}" ;; esac'


def write_commands(path: str | os.PathLike, steps: list, skipped: dict[str, str], links: dict[str, Path],
                   audit_line: str) -> None:
    """Write ``commands.sh``: a comment header, then only ``pgan`` lines (and the ``mkdir -p`` of
    their output folders). No character of a user-given path reaches the script unquoted: the
    lines quote every word with :func:`shell_word`, the comments escape control characters."""
    from pgan_cli.provenance import timestamp

    when = timestamp()
    comments = [f"Written by pgan {__version__} at {when} for:",
                f"  {audit_line}",
                "Each line is one step of the audit, as it was run; re-run any of them by hand.",
                "Paths are relative to this folder; inputs/ links to the files audited:"]
    comments += [f"  {shell_word(name)} -> {shell_word(str(target))}" for name, target in links.items()]
    comments += [f"skipped {name}: {why}" for name, why in skipped.items()]
    lines = ["#!/usr/bin/env bash", *map(shell_comment, comments), "set -euo pipefail", CD_LINE]
    made: set[str] = set()
    for s in steps:
        for d in sorted({str(Path(o).parent) for o in s.outputs if str(Path(o).parent) != "."} - made):
            made.add(d)
            if s.argv[0] != "embed":
                lines.append(f"mkdir -p -- {shell_word(d)}")
        lines.append(s.line)
    text = "\n".join(lines) + "\n"
    assert all(ln.startswith(("#", "pgan ", "mkdir -p -- ")) or ln in ("set -euo pipefail", CD_LINE)
               for ln in text.split("\n")[:-1]), "commands.sh: a line that is not a pgan step"
    with atomic_path(path, suffix=".tmp") as tmp:
        tmp.write_bytes(text.encode("utf-8", "surrogateescape"))
        os.chmod(tmp, 0o755)
