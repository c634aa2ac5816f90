"""Writing an output so that it is whole or absent (``docs/security.md``).

- :func:`atomic_path`: a temporary file beside the target, renamed onto it only when complete and
  only if no stop signal came (:mod:`pgan_cli.interrupts`); never onto an input of the running
  command, a device, a FIFO or a socket;
- temporary files and staging folders carry their process and pgan's tag in their names
  (:func:`new_temp`, :mod:`pgan_cli.ownership`), so the next run in a folder removes what dead
  runs left (:func:`sweep`) and nothing else;
- a full disk is one :class:`NoSpace` line, also where HDF5 writes (:func:`h5_create`: HDF5 told
  of a failed write crashes the process when its objects are freed).
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pgan_cli import console, interrupts, ownership
from pgan_cli.errors import InputError
from pgan_cli.files import (STAGE_PREFIX, committed, current_run, make_dirs, refuse_input_target,
                            refuse_special_output)


class NoSpace(InputError):
    """The disk (or quota) filled up while writing an output."""

    def __init__(self, folder: Path):
        super().__init__(f"no space left on {os.path.realpath(folder)}; free some space there or choose another "
                         f"output folder (nothing was replaced)")


def _out_of_space(exc: BaseException) -> bool:
    """Whether a write failed because the disk is full: ENOSPC/EDQUOT anywhere in the exception's
    chain (every output's bytes go through :class:`OutputFile`, so torch and HDF5 failures carry
    the system's error too)."""
    e: BaseException | None = exc
    while e is not None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(e) or "Disk quota exceeded" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


def out_of_space_error(exc: BaseException, folder: str | os.PathLike) -> NoSpace | None:
    """A :class:`NoSpace` for ``folder`` when ``exc`` is a full disk, else None."""
    return NoSpace(Path(folder)) if _out_of_space(exc) else None


_noted: set[str] = set()


def sweep(folder: str | os.PathLike) -> None:
    """Remove what dead pgan runs left in ``folder``: staging folders and temporary files whose names
    carry pgan's tag (:func:`pgan_cli.ownership.owned_name`) and whose process is gone. A folder
    named like a staging folder that pgan cannot prove it made is left, and named on stderr. Once
    per folder and command, and never inside a staging folder (which only its own run writes)."""
    real = os.path.realpath(folder)
    run = current_run()
    if (run is not None and real in run.swept) or any(part.startswith(STAGE_PREFIX) for part in Path(real).parts):
        return
    if run is not None:
        run.swept.add(real)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if ".pgan-" not in entry.name:
            continue
        kind = "stage" if entry.name.startswith(STAGE_PREFIX) else "tmp"
        run = ownership.owner_of(entry.name, kind)
        try:
            mode = os.lstat(entry.path).st_mode
        except OSError:
            continue
        if run is None:
            if kind == "stage" and entry.path not in _noted:
                _noted.add(entry.path)
                console.warn(f"left {entry.path} in place: named like a pgan staging folder, but not one pgan "
                             f"made on this account")
            continue
        if ownership.alive(run):
            continue
        if kind == "stage" and stat.S_ISDIR(mode):
            shutil.rmtree(entry.path, ignore_errors=True)  # never follows a link inside
        elif kind == "tmp" and stat.S_ISREG(mode):
            os.unlink(entry.path)


def new_temp(folder: str | os.PathLike, stem: str, suffix: str = ".tmp") -> Path:
    """A new empty file in ``folder`` whose name proves pgan made it, for this process (:func:`sweep`
    removes it once the process is gone)."""
    tmp = Path(folder) / f".{stem.lstrip('.')[:80]}{ownership.owned_name('tmp')}{suffix}"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666))
    return tmp


@contextmanager
def owned_temp(folder: str | os.PathLike, stem: str, suffix: str = ".tmp") -> Iterator[Path]:
    """A :func:`new_temp` file, removed when the block fails."""
    tmp = new_temp(folder, stem, suffix)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class OutputFile(io.FileIO):
    """The file an output's bytes are written through (HDF5 files and checkpoints), so that a full
    disk reaches pgan as the ``OSError(ENOSPC)`` the system gives, never as a library's own error."""


class _DropsWritesWhenFull(OutputFile):
    """A file HDF5 writes through (h5py's ``fileobj`` driver) that, once the disk is full, drops
    further writes instead of failing them: HDF5, told of a failed write, leaves objects that
    crash the process when they are freed. :func:`h5_create` raises the failure once HDF5 has
    closed the file cleanly."""

    full: OSError | None = None

    def _tolerant(self, call, *args):
        if self.full is None:
            try:
                return call(*args)
            except OSError as e:
                if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                self.full = e
        return None

    def write(self, b) -> int:
        n = self._tolerant(super().write, b)
        return memoryview(b).nbytes if n is None else n

    def truncate(self, size: int | None = None) -> int:
        n = self._tolerant(super().truncate, size)
        return self.tell() if n is None else n


@contextmanager
def h5_create(path: str | os.PathLike) -> Iterator[Any]:
    """A new HDF5 file at ``path`` (an :func:`atomic_path` temporary) open for writing; a full disk
    is an ``OSError(ENOSPC)`` after HDF5 has let go of the file, never a crash."""
    import h5py

    raw = _DropsWritesWhenFull(path, "w+")
    try:
        with h5py.File(raw, "w") as f:
            yield f
    except BaseException:
        raw.close()
        if raw.full is not None:
            raise raw.full from None
        raise
    raw.close()
    if raw.full is not None:
        raise raw.full


@contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success.

    On any exception (a stop signal that arrived at any time included) the temporary file is
    removed and ``target`` is left untouched. A target that is one of the running command's
    inputs, or a device, FIFO or socket, is refused before anything is written.
    """
    target = Path(target)
    refuse_input_target(target)
    refuse_special_output(target)
    folder = target.parent if str(target.parent) else Path(".")
    make_dirs(folder)
    sweep(folder)
    try:
        tmp_path = new_temp(folder, target.name, suffix or ".tmp")
    except OSError as e:
        raise out_of_space_error(e, folder) or InputError(
            f"cannot write {target}: {e.strerror} ({os.path.realpath(folder)})") from None
    try:
        yield tmp_path
        with interrupts.held():
            interrupts.poll()  # a stop signal whose exception was lost still stops the commit
            refuse_input_target(target)
            refuse_special_output(target)
            if target.is_dir():
                raise InputError(f"{target} is a folder; give a file path")
            os.replace(tmp_path, target)
            committed(target)
    except BaseException as e:
        full = out_of_space_error(e, folder)
        tmp_path.unlink(missing_ok=True)
        if full is not None:
            raise full from None
        raise



def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as sorted, indented JSON atomically."""
    with atomic_path(path, suffix=".json.tmp") as tmp:
        tmp.write_text(console.to_json(obj) + "\n")
