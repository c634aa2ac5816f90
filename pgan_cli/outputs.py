"""Sets of outputs in one folder (``data split``, ``embed --out-dir``, ``data export --png-dir``,
``audit --out-dir``): staged and moved into the folder together, so readers never see parts of two
runs side by side, and pgan deletes only the files it wrote there before (recorded in the folder's
manifest, ``.pgan-outputs.json``; docs/security.md).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgan_cli.errors import InputError
from pgan_cli.files import (JOURNAL, MANIFEST, MANIFEST_VERSION, STAGE_PREFIX, _umask, make_dirs,
                            refuse_input_target, signals_deferred)


def _safe_relative(rel: Any) -> str | None:
    """A manifest entry as a relative path inside the folder, or None if it is anything else."""
    if not isinstance(rel, str) or not rel or "\x00" in rel:
        return None
    p = Path(rel)
    if p.is_absolute() or any(part in ("..", "") for part in p.parts) or rel.startswith(".pgan-"):
        return None
    return p.as_posix()


def _stat_key(p: Path) -> list[int] | None:
    try:
        st = p.lstat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _read_manifest(folder: Path) -> dict[str, dict[str, list[int]]]:
    """The folder's manifest ``{set: {relative path: [size, mtime_ns]}}``; anything malformed is ignored."""
    try:
        raw = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    sets = raw.get("sets") if isinstance(raw, dict) else None
    out: dict[str, dict[str, list[int]]] = {}
    for name, files in (sets or {}).items() if isinstance(sets, dict) else ():
        if isinstance(name, str) and isinstance(files, dict):
            out[name] = {r: v for r, v in files.items() if _safe_relative(r) and isinstance(v, list)}
    return out


def _write_manifest(folder: Path, sets: dict[str, dict[str, list[int]]]) -> None:
    body = json.dumps({"format": "pgan-outputs", "version": MANIFEST_VERSION,
                       "sets": {k: v for k, v in sets.items() if v}}, indent=1, sort_keys=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{MANIFEST}.", dir=folder)
    os.chmod(tmp, 0o666 & ~_umask())
    with os.fdopen(fd, "w") as f:
        f.write(body + "\n")
    os.replace(tmp, folder / MANIFEST)


def _roll_forward(folder: Path) -> None:
    """Finish a commit a killed run left half done (its journal lists the moves still to make)."""
    jpath = folder / JOURNAL
    try:
        journal = json.loads(jpath.read_text(encoding="utf-8"))
        stage = folder / journal["stage"]
        moves = [r for r in journal["files"] if _safe_relative(r)]
        set_name = str(journal["set"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        jpath.unlink(missing_ok=True)
        return
    if not stage.name.startswith(STAGE_PREFIX) or stage.parent != folder:
        jpath.unlink(missing_ok=True)
        return
    _apply(folder, stage, moves, set_name)
    jpath.unlink(missing_ok=True)
    shutil.rmtree(stage, ignore_errors=True)


def _apply(folder: Path, stage: Path, files: list[str], set_name: str) -> None:
    """Move the staged files into place, drop the set's earlier files that are not in it, record it."""
    for rel in files:
        src, dst = stage / rel, folder / rel
        if os.path.lexists(src):
            make_dirs(dst.parent)
            if dst.is_dir() and not dst.is_symlink():
                raise InputError(f"{dst} is a folder; pgan will not replace it with a file")
            os.replace(src, dst)
    manifest = _read_manifest(folder)
    old = manifest.get(set_name, {})
    new = {rel: _stat_key(folder / rel) for rel in files}
    for rel, key in old.items():
        p = folder / rel
        if rel not in new and _stat_key(p) == key and not p.is_dir():
            p.unlink(missing_ok=True)  # pgan wrote it (same size and time as recorded): ours to remove
            for parent in Path(rel).parents:
                if str(parent) == ".":
                    break
                try:
                    (folder / parent).rmdir()
                except OSError:
                    break
    manifest[set_name] = {rel: key for rel, key in new.items() if key is not None}
    _write_manifest(folder, manifest)


def _stale_stages(folder: Path) -> None:
    """Remove staging folders that killed pgan runs left here (their process is gone)."""
    for d in folder.glob(f"{STAGE_PREFIX}*"):
        try:
            pid = int(d.name[len(STAGE_PREFIX):].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except (ValueError, PermissionError, OSError):
            continue


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


@contextmanager
def output_set(folder: str | os.PathLike, name: str, *, reuse_previous: bool = False) -> Iterator[OutputSet]:
    """Stage a set of files, then move them into ``folder`` together (``docs/security.md``).

    Files of the set are written under a staging folder inside ``folder``. On success they are
    moved into place under a lock on the folder with SIGINT/SIGTERM held, a journal on disk (a
    killed commit is finished by the next pgan run there and refused by readers until then), and
    the folder's files from the set's previous run that the new run did not write are removed:
    only those, and only while unchanged since pgan wrote them. Everything else in the folder
    stays byte for byte. ``reuse_previous`` hard-links the previous run's files into the staging
    folder first (the audit's step cache). On failure the staging folder is removed and nothing
    in ``folder`` changes.
    """
    folder = Path(folder)
    if os.path.lexists(folder) and not folder.is_dir():
        raise InputError(f"{folder} is a file, not a folder; writing there would replace it")
    make_dirs(folder)
    with _folder_lock(folder):
        if (folder / JOURNAL).exists():
            _roll_forward(folder)
        _stale_stages(folder)
    stage = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-", dir=folder))
    try:
        if reuse_previous:
            for rel in _read_manifest(folder).get(name, {}):
                src = folder / rel
                if src.is_file() and not src.is_symlink():
                    (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.link(src, stage / rel)
                    except OSError:
                        shutil.copy2(src, stage / rel)
                elif src.is_symlink():
                    (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(os.readlink(src), stage / rel)
        out = OutputSet(folder=folder, stage=stage, name=name)
        yield out
        files = _files_under(stage)
        for rel in files:
            refuse_input_target(folder / rel, f"the output {folder}/", follow_links=False)
        with signals_deferred(), _folder_lock(folder):
            journal = folder / JOURNAL
            fd, tmp = tempfile.mkstemp(prefix=f"{JOURNAL}.", dir=folder)
            with os.fdopen(fd, "w") as f:
                json.dump({"stage": stage.name, "set": name, "files": files}, f)
            os.replace(tmp, journal)
            _apply(folder, stage, files, name)
            journal.unlink()
    finally:
        shutil.rmtree(stage, ignore_errors=True)
