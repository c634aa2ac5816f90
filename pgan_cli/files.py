"""File helpers: input checks, SHA-256, and outputs that never destroy an input nor leave debris.

The promises (``docs/security.md``):

- every output is written to a temporary file beside its target and renamed into place only
  when complete (:func:`pgan_cli.atomic.atomic_path`), so a failed or interrupted command leaves
  the old file or nothing, never a truncated one;
- an output never replaces one of the running command's inputs, however spelled
  (:func:`check_paths` before any work, and again at every rename);
- outputs of several files are staged and moved into their folder together
  (:func:`pgan_cli.outputs.output_set`; this module keeps the names of its manifest and journal);
- folders pgan created for a run that then failed are removed again (:func:`forget_run`);
- an output that is not a regular file (a device, a FIFO, a socket) is refused, never replaced,
  and so is such an input (it would block or never end);
- a full disk is one line naming the folder, and the temporary files and staging folders of
  dead runs are removed by the next run in that folder, only those pgan can prove it made
  (:mod:`pgan_cli.atomic`, :mod:`pgan_cli.ownership`).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgan_cli import ownership
from pgan_cli.errors import InputError

_HASH_CACHE: dict[tuple[str, int, int], str] = {}
MANIFEST = ".pgan-outputs.json"
JOURNAL = ".pgan-commit.json"
STAGE_PREFIX = ".pgan-stage-"
MANIFEST_VERSION = 2


# ---- the running command's paths ------------------------------------------------------------
@dataclass
class RunPaths:
    """The paths the running command reads and writes (set by the CLI frame before any work).

    ``in_place`` names inputs the command may replace on purpose (``pgan train --resume ck.pt``
    writes the continued run back to ``ck.pt`` by default).
    """

    inputs: list[tuple[str, Path]] = field(default_factory=list)
    in_place: list[Path] = field(default_factory=list)
    created_dirs: list[Path] = field(default_factory=list)
    committed: list[Path] = field(default_factory=list)  # outputs already complete on disk
    swept: set[str] = field(default_factory=set)  # folders cleared of dead runs' debris (atomic.sweep)


def committed(path: Path) -> None:
    """Record that the running command's output ``path`` is now complete on disk (a file written into
    a staging folder is not: its set is, once moved into place)."""
    if _RUNS and not any(part.startswith(STAGE_PREFIX) for part in Path(path).parts):
        _RUNS[-1].committed.append(Path(path))


def current_run() -> RunPaths | None:
    """The innermost running command's paths, or None outside a command."""
    return _RUNS[-1] if _RUNS else None


_RUNS: list[RunPaths] = []  # a stack: ``pgan audit`` runs other commands in-process


def begin_run(inputs: Iterable[tuple[str, Path]] = (), in_place: Iterable[Path] = ()) -> RunPaths:
    """Start tracking a command's inputs (what no output may replace) and the folders it creates."""
    run = RunPaths(inputs=[(flag, Path(p)) for flag, p in inputs], in_place=[Path(p) for p in in_place])
    _RUNS.append(run)
    return run


def forget_run(failed: bool) -> None:
    """End the innermost run; after a failure remove the folders it created that are still empty."""
    if not _RUNS:
        return
    run = _RUNS.pop()
    if failed:
        for d in sorted(run.created_dirs, key=lambda p: len(p.parts), reverse=True):
            try:
                d.rmdir()  # only empty folders: pgan deletes only what it wrote
            except OSError:
                pass
    elif _RUNS:
        _RUNS[-1].created_dirs.extend(run.created_dirs)
        _RUNS[-1].committed.extend(run.committed)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two spellings name one file: ``./x``, ``d/../x``, symlinks and hard links alike."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _input_named(target: Path, follow_links: bool) -> tuple[str, Path] | None:
    if not follow_links and os.path.islink(target):  # replacing a link leaves what it points to
        for run in _RUNS:
            for flag, p in run.inputs:
                if os.path.abspath(p) == os.path.abspath(target):
                    return flag, p
        return None
    for run in _RUNS:
        for flag, p in run.inputs:
            if any(same_file(target, q) for q in run.in_place):
                continue
            if same_file(target, p):
                return flag, p
    return None


def refuse_input_target(target: str | os.PathLike, flag: str = "output", follow_links: bool = True) -> None:
    """Raise when writing ``target`` would replace an input of a running command (however spelled;
    with ``follow_links`` false, replacing a symbolic link to an input is allowed)."""
    hit = _input_named(Path(target), follow_links)
    if hit is not None:
        raise InputError(f"{flag} {target} is the input {hit[1]} ({hit[0]}); writing it would destroy "
                         f"the input: choose another output path")


def nearest_existing(p: Path) -> Path:
    """``p`` itself, or its nearest ancestor that exists."""
    p = Path(os.path.abspath(p))
    while not os.path.lexists(p):
        p = p.parent
    return p


def write_probe(folder: str | os.PathLike) -> str | None:
    """Why a file cannot be made in the existing ``folder`` (None when it can): a real probe, since
    permission bits say nothing to root, nor about a read-only file system."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".pgan-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return e.strerror or str(e)
    return None


def _check_writable_folder(folder: Path, flag: str, target: Path) -> None:
    anc = nearest_existing(folder)
    if not anc.is_dir():
        raise InputError(f"{flag} {target}: {anc} is a file, not a folder; choose another output path")
    why = write_probe(anc)
    if why is not None:
        raise InputError(f"{flag} {target}: cannot write to {os.path.realpath(anc)} ({why}); "
                         f"choose another output path")


_SPECIAL = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
            (stat.S_ISSOCK, "a socket"))


def special_file(path: str | os.PathLike) -> str | None:
    """What ``path`` is (``"a FIFO"``, ...) when it exists, through links, and is neither a regular
    file nor a folder; None otherwise."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return next((what for test, what in _SPECIAL if test(mode)), None)


def refuse_special_output(target: str | os.PathLike, flag: str = "output") -> None:
    """Raise when ``target`` is a device, FIFO or socket (or a link to one): pgan never replaces it."""
    what = special_file(target)
    if what is not None:
        raise InputError(f"{flag} {target} is {what}, not a regular file; pgan writes regular files only and "
                         f"will not replace it: give a file path")


def refuse_special_input(path: str | os.PathLike, flag: str = "input") -> None:
    """Raise when ``path`` is a device, FIFO or socket: reading it could block or never end."""
    what = special_file(path)
    if what is not None:
        raise InputError(f"{flag} {path} is {what}, not a regular file; pgan reads regular files and folders only")


def check_paths(inputs: Iterable[tuple[str, Path]], files: Iterable[tuple[str, Path]],
                folders: Iterable[tuple[str, Path]], in_place: Iterable[Path] = ()) -> None:
    """Refuse, before any work, outputs that would destroy an input or cannot be written.

    ``files`` are output files, ``folders`` output folders (each ``(flag, path)``). An output file
    may not be an input (however spelled), an existing folder, or two outputs at once; an output
    folder may not be a file or an input; every target's folder must be writable.
    """
    inputs = [(f, Path(p)) for f, p in inputs if p is not None]
    in_place = [Path(p) for p in in_place]
    for iflag, inp in inputs:
        refuse_special_input(inp, iflag)
    seen: list[tuple[str, Path]] = []
    for flag, out in files:
        out = Path(out)
        refuse_special_output(out, flag)
        for iflag, inp in inputs:
            if same_file(out, inp) and not any(same_file(out, q) for q in in_place):
                raise InputError(f"{flag} {out} is the input {inp} ({iflag}); writing it would destroy the "
                                 f"input: choose another output path")
        if out.is_dir():
            raise InputError(f"{flag} {out} is a folder; give a file path")
        for oflag, other in seen:
            if same_file(out, other):
                raise InputError(f"{flag} {out} and {oflag} {other} are the same file; give two paths")
        seen.append((flag, out))
        _check_writable_folder(out.parent, flag, out)
    for flag, folder in folders:
        folder = Path(folder)
        if os.path.lexists(folder) and not folder.is_dir():
            raise InputError(f"{flag} {folder} is a file, not a folder; writing there would replace it: "
                             f"choose a folder path")
        for iflag, inp in inputs:
            if same_file(folder, inp):
                raise InputError(f"{flag} {folder} is the input {inp} ({iflag}); choose another folder")
        _check_writable_folder(folder, flag, folder)


def check_planned(folder: str | os.PathLike, names: Iterable[str], flag: str) -> None:
    """Refuse, before any work, when a file a command will write into ``folder`` is one of its inputs."""
    for name in names:
        refuse_input_target(Path(folder) / name, f"{flag} {folder}: the output")


def make_dirs(folder: str | os.PathLike) -> Path:
    """``mkdir -p`` that remembers which folders it created (removed again if the run fails)."""
    folder = Path(folder)
    missing = []
    p = Path(os.path.abspath(folder))
    while not os.path.lexists(p):
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
            if _RUNS:
                _RUNS[-1].created_dirs.append(d)
        except FileExistsError:
            pass
    if not folder.is_dir():
        raise InputError(f"{folder} exists and is not a folder; choose another output path")
    return folder


# ---- inputs ---------------------------------------------------------------------------------
def check_input(path: str | os.PathLike, what: str = "input file") -> Path:
    """Return ``path`` as a Path, or raise a clear error if it is missing or not a file."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {p} does not exist; check the path")
    if p.is_dir():
        raise InputError(f"{what} {p} is a directory, expected a file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{what} {p} is not readable (permissions)")
    refuse_special_input(p, what)
    if ownership.read_journal(p.parent / JOURNAL) is not None:
        raise InputError(f"{what} {p}: its folder holds an unfinished set of pgan outputs (a run was "
                         f"killed while moving them into place); rerun the command that writes them")
    return p


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex), cached per (path, size, mtime) within a process."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _HASH_CACHE[key] = h.hexdigest()
    return _HASH_CACHE[key]


# ---- JSON -----------------------------------------------------------------------------------
MAX_JSON_BYTES = 256 << 20


def loads_json(text: str | bytes, where: str) -> Any:
    """Parse untrusted JSON text: not UTF-8, malformed or nested too deeply is a :class:`FormatError`
    naming ``where``."""
    from pgan_cli.errors import FormatError

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):
            seen: set[str] = set()
            twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
            raise FormatError(f"{where} names the key {twice!r} twice; was it written by pgan?")
        return out

    try:
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text, object_pairs_hook=unique)
    except UnicodeDecodeError:
        raise FormatError(f"{where} is not UTF-8 text; was it written by pgan?") from None
    except json.JSONDecodeError as e:
        raise FormatError(f"{where} is not valid JSON ({e}); was it written by pgan?") from None
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise FormatError(f"{where} is not a pgan file ({' '.join(str(e).split())[:100]})") from None
    except RecursionError:
        raise FormatError(f"{where} is JSON nested too deeply to be a pgan file") from None


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Read a JSON file, with a clear error when it is missing, malformed, huge or too deeply nested."""
    p = check_input(path, what)
    if p.stat().st_size > MAX_JSON_BYTES:
        raise InputError(f"{what} {p} is larger than {MAX_JSON_BYTES >> 20} MiB; not a pgan result file")
    return loads_json(p.read_bytes(), f"{what} {p}")

