"""Sets of outputs in one folder (``data split``, ``embed --out-dir``, ``data export --png-dir``,
``audit --out-dir``): staged and moved into the folder together, so readers never see parts of two
runs side by side, and pgan deletes only the files it wrote there before (recorded in the folder's
manifest, ``.pgan-outputs.json``; docs/security.md).

The manifest and the commit journal are untrusted input like any file in the folder: an entry
is acted on only when its tag proves pgan wrote it (:mod:`pgan_cli.ownership`), when it names a
path inside the folder reached through real folders only (never a symlink), and when the file
is still the one pgan wrote (size, modification time and inode). Entries that fail are left
alone and named on stderr.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgan_cli import console, interrupts, ownership
from pgan_cli.errors import InputError
from pgan_cli.atomic import out_of_space_error, owned_temp, sweep
from pgan_cli.files import JOURNAL, MANIFEST, MANIFEST_VERSION, committed, make_dirs, refuse_input_target

KEPT = ".pgan-replaced"  # inside a stage: hard links to the files a commit replaces, to put back on failure


def _safe_relative(rel: Any) -> str | None:
    """A manifest entry as a relative path inside the folder, or None if it is anything else."""
    if not isinstance(rel, str) or not rel or "\x00" in rel:
        return None
    p = Path(rel)
    if p.is_absolute() or any(part in ("..", "") for part in p.parts) or rel.startswith(".pgan-"):
        return None
    return p.as_posix()


def _stat_key(p: Path) -> list[int] | None:
    """What identifies the file pgan wrote at ``p``: size, modification time, inode (never through a link)."""
    try:
        st = p.lstat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _valid_entry(folder: Path, set_name: Any, rel: Any, value: Any) -> bool:
    return (isinstance(set_name, str) and _safe_relative(rel) is not None and isinstance(value, list)
            and len(value) == 4 and all(type(x) is int for x in value[:3])
            and ownership.verify(value[3], "output", set_name, rel, *value[:3])
            and ownership.inside_without_links(folder, rel))


def _read_manifest(folder: Path) -> dict[str, dict[str, list[int]]]:
    """The folder's manifest ``{set: {relative path: [size, mtime_ns, inode]}}``: only the entries pgan
    can prove it wrote; the others are named on stderr and otherwise ignored."""
    path = folder / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError):
        raw = None
    sets = raw.get("sets") if isinstance(raw, dict) else None
    out: dict[str, dict[str, list[int]]] = {}
    ignored: list[str] = []
    for name, files in (sets.items() if isinstance(sets, dict) else ()):
        for rel, value in (files.items() if isinstance(files, dict) else ()):
            if _valid_entry(folder, name, rel, value):
                out.setdefault(name, {})[rel] = value[:3]
            else:
                ignored.append(repr(rel))
    if not isinstance(sets, dict):
        console.warn(f"{path}: ignored, not a manifest pgan wrote; no file it names is removed")
    elif ignored:
        more = ", ..." if len(ignored) > 5 else ""
        console.warn(f"{path}: ignored {len(ignored)} entries pgan cannot prove it wrote "
                     f"({', '.join(ignored[:5])}{more}); the files they name are left in place")
    return out


def _write_manifest(folder: Path, sets: dict[str, dict[str, list[int]]]) -> None:
    signed = {name: {rel: [*key, ownership.tag("output", name, rel, *key)] for rel, key in files.items()}
              for name, files in sets.items() if files}
    body = json.dumps({"format": "pgan-outputs", "version": MANIFEST_VERSION, "sets": signed},
                      indent=1, sort_keys=True)
    with owned_temp(folder, MANIFEST, ".tmp") as tmp:
        tmp.write_text(body + "\n", encoding="utf-8")
        os.replace(tmp, folder / MANIFEST)


def _write_journal(folder: Path, stage: Path, set_name: str, files: list[str]) -> None:
    with owned_temp(folder, JOURNAL, ".tmp") as tmp:
        tmp.write_text(json.dumps(ownership.journal_record(stage.name, set_name, files)), encoding="utf-8")
        os.replace(tmp, folder / JOURNAL)


def _roll_forward(folder: Path) -> None:
    """Finish a commit a killed pgan run left half done (its journal lists the moves still to make).
    A journal pgan cannot prove it wrote is left alone, and named on stderr."""
    journal = ownership.read_journal(folder / JOURNAL)
    if journal is None:
        console.warn(f"{folder / JOURNAL}: ignored, pgan cannot prove it wrote it; nothing was moved")
        return
    stage = folder / journal["stage"]
    _apply(folder, stage, [r for r in journal["files"] if _safe_relative(r)], journal["set"])
    (folder / JOURNAL).unlink(missing_ok=True)
    shutil.rmtree(stage, ignore_errors=True)


def _file_or_link(p: Path) -> bool:
    """Whether ``p`` itself (not what it links to) is a regular file or a symbolic link."""
    try:
        mode = p.lstat().st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) or stat.S_ISLNK(mode)


def _keep_replaced(folder: Path, stage: Path, moves: list[str]) -> Path:
    """Hard-link every file the set will replace into the stage, so a failed commit can put it back.
    A file that cannot be linked (immutable, say) cannot be replaced either: refused before any move."""
    kept = stage / KEPT
    for rel in moves:
        dst = folder / rel
        if not os.path.lexists(dst) or os.path.lexists(kept / rel):
            continue
        (kept / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(dst, kept / rel, follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EMLINK):  # no way back there, but no sign it will fail
                raise InputError(f"cannot replace {dst} ({e.strerror}); nothing in {folder} was changed") from None
    return kept


def _move_all(folder: Path, stage: Path, moves: list[str], kept: Path) -> None:
    """Move the staged files into place; on a failure put back what was moved and raise."""
    done: list[str] = []
    try:
        for rel in moves:
            dst = folder / rel
            make_dirs(dst.parent)
            if dst.is_dir() and not dst.is_symlink():
                raise InputError(f"{dst} is a folder; pgan will not replace it with a file")
            os.replace(stage / rel, dst)
            done.append(rel)
    except OSError as e:
        for rel in reversed(done):
            try:
                os.replace(kept / rel, folder / rel) if os.path.lexists(kept / rel) else \
                    os.replace(folder / rel, stage / rel)
            except OSError:
                pass
        raise out_of_space_error(e, folder) or InputError(
            f"cannot write {folder / moves[len(done)]} ({e.strerror}); nothing in {folder} was changed") from None


def _remove_unchanged(folder: Path, old: dict[str, list[int]], keep: set[str]) -> None:
    """Remove the set's earlier files not in ``keep``: only those still as pgan wrote them."""
    for rel, key in old.items():
        p = folder / rel
        if rel in keep or _stat_key(p) != key or not _file_or_link(p):
            continue
        p.unlink(missing_ok=True)  # pgan wrote it (tagged, same size, time and inode): ours to remove
        for parent in Path(rel).parents:
            if str(parent) == ".":
                break
            try:
                (folder / parent).rmdir()
            except OSError:
                break


def _apply(folder: Path, stage: Path, files: list[str], set_name: str) -> None:
    """Move the staged files into place, drop the set's earlier files that are not in it, record it."""
    for rel in files:
        if not (ownership.inside_without_links(folder, rel) and ownership.inside_without_links(stage, rel)):
            raise InputError(f"{folder / rel}: a folder on its way is a symbolic link; pgan will not write "
                             f"through it")
    moves = [rel for rel in files if _file_or_link(stage / rel)]
    _move_all(folder, stage, moves, _keep_replaced(folder, stage, moves))
    manifest = _read_manifest(folder)
    _remove_unchanged(folder, manifest.get(set_name, {}), set(files))
    manifest[set_name] = {rel: key for rel in files if (key := _stat_key(folder / rel)) is not None}
    _write_manifest(folder, manifest)


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@dataclass
class OutputSet:
    """A staging folder whose files :func:`output_set` moves into the target folder together."""

    folder: Path
    stage: Path
    name: str

    def path(self, rel: str | os.PathLike) -> Path:
        """Where to write the set's file ``rel`` (a path relative to the target folder)."""
        rel_s = _safe_relative(Path(rel).as_posix())
        if rel_s is None:
            raise InputError(f"{rel} is not a plain file name inside {self.folder}")
        p = self.stage / rel_s
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def final(self, rel: str | os.PathLike) -> Path:
        """Where ``rel`` will be once the set is committed."""
        return self.folder / rel


def _files_under(stage: Path) -> list[str]:
    out = []
    for root, dirs, files in os.walk(stage):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            out.append(Path(os.path.relpath(os.path.join(root, name), stage)).as_posix())
    return sorted(out)


def _reuse_previous(folder: Path, stage: Path, name: str) -> None:
    """Hard-link the set's previous files, still as pgan wrote them, into the stage (the audit's cache)."""
    for rel, key in _read_manifest(folder).get(name, {}).items():
        src = folder / rel
        if _stat_key(src) != key or not _file_or_link(src):
            continue
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), stage / rel)
            continue
        try:
            os.link(src, stage / rel)
        except OSError:
            shutil.copy2(src, stage / rel)


def _make_stage(folder: Path) -> Path:
    """A staging folder whose name proves pgan made it, for this process (:func:`ownership.owned_name`)."""
    while True:
        stage = folder / ownership.owned_name("stage")
        try:
            stage.mkdir(mode=0o700)
            return stage
        except FileExistsError:
            continue


@contextmanager
def output_set(folder: str | os.PathLike, name: str, *, reuse_previous: bool = False) -> Iterator[OutputSet]:
    """Stage a set of files, then move them into ``folder`` together (``docs/security.md``).

    Files of the set are written under a staging folder inside ``folder``. On success they are
    moved into place under a lock on the folder with the stop signals held, a journal on disk (a
    killed commit is finished by the next pgan run there and refused by readers until then), and
    the folder's files from the set's previous run that the new run did not write are removed:
    only those, and only while unchanged since pgan wrote them. Everything else in the folder
    stays byte for byte. ``reuse_previous`` hard-links the previous run's files into the staging
    folder first (the audit's step cache). On failure (a full disk, a file that cannot be
    replaced, a stop signal) the staging folder is removed and nothing in ``folder`` changes.
    """
    folder = Path(folder)
    if os.path.lexists(folder) and not folder.is_dir():
        raise InputError(f"{folder} is a file, not a folder; writing there would replace it")
    make_dirs(folder)
    with _folder_lock(folder):
        if os.path.lexists(folder / JOURNAL):
            _roll_forward(folder)
        sweep(folder)
    stage = _make_stage(folder)
    try:
        if reuse_previous:
            _reuse_previous(folder, stage, name)
        yield OutputSet(folder=folder, stage=stage, name=name)
        files = _files_under(stage)
        for rel in files:
            refuse_input_target(folder / rel, f"the output {folder}/", follow_links=False)
        with interrupts.held(), _folder_lock(folder):
            interrupts.poll()  # a stop signal whose exception was lost still stops the commit
            _write_journal(folder, stage, name, files)
            try:
                _apply(folder, stage, files, name)
            finally:
                (folder / JOURNAL).unlink(missing_ok=True)
            committed(folder)
    except (OSError, RuntimeError) as e:
        full = out_of_space_error(e, folder)
        if full is None:
            raise
        raise full from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
