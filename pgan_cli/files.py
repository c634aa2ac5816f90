"""File helpers: input checks, SHA-256, and outputs that never destroy an input nor leave debris.

The promises (``docs/security.md``):

- every output is written to a temporary file beside its target and renamed into place only
  when complete (:func:`atomic_path`), so a failed or interrupted command leaves the old file or
  nothing, never a truncated one;
- an output never replaces one of the running command's inputs, however spelled
  (:func:`check_paths` before any work, and again at every rename);
- outputs of several files (``data split``, ``embed --out-dir``, ``data export --png-dir``,
  ``audit -o``) are staged and moved into their folder together (:func:`output_set`): readers
  never see parts of two runs side by side, and pgan deletes only the files it wrote there
  before (recorded in the folder's manifest, ``.pgan-outputs.json``);
- folders pgan created for a run that then failed are removed again (:func:`forget_run`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgan_cli.errors import InputError

_HASH_CACHE: dict[tuple[str, int, int], str] = {}
MANIFEST = ".pgan-outputs.json"
JOURNAL = ".pgan-commit.json"
STAGE_PREFIX = ".pgan-stage-"
MANIFEST_VERSION = 1
_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


def _nearest_existing(p: Path) -> Path:
    p = Path(os.path.abspath(p))
    while not os.path.lexists(p):
        p = p.parent
    return p


def _check_writable_folder(folder: Path, flag: str, target: Path) -> None:
    anc = _nearest_existing(folder)
    if not anc.is_dir():
        raise InputError(f"{flag} {target}: {anc} is a file, not a folder; choose another output path")
    try:  # a real probe: permission bits say nothing to root, nor about a read-only file system
        fd, probe = tempfile.mkstemp(prefix=".pgan-probe-", dir=anc)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise InputError(f"{flag} {target}: cannot write to {os.path.realpath(anc)} ({e.strerror}); "
                         f"choose another output path") from None


def check_paths(inputs: Iterable[tuple[str, Path]], files: Iterable[tuple[str, Path]],
                folders: Iterable[tuple[str, Path]], in_place: Iterable[Path] = ()) -> None:
    """Refuse, before any work, outputs that would destroy an input or cannot be written.

    ``files`` are output files, ``folders`` output folders (each ``(flag, path)``). An output file
    may not be an input (however spelled), an existing folder, or two outputs at once; an output
    folder may not be a file or an input; every target's folder must be writable.
    """
    inputs = [(f, Path(p)) for f, p in inputs if p is not None]
    in_place = [Path(p) for p in in_place]
    seen: list[tuple[str, Path]] = []
    for flag, out in files:
        out = Path(out)
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
    if (p.parent / JOURNAL).exists():
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


# ---- single outputs -------------------------------------------------------------------------
@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP until the block ends, so a commit of renames is never cut in half."""
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    except (AttributeError, ValueError, OSError):  # not the main thread, or no POSIX signals
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success.

    On any exception the temporary file is removed and ``target`` is left untouched. A target that
    is one of the running command's inputs is refused before anything is written.
    """
    target = Path(target)
    refuse_input_target(target)
    folder = target.parent if str(target.parent) else Path(".")
    make_dirs(folder)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=folder)
    except OSError as e:
        raise InputError(f"cannot write {target}: {e.strerror} ({os.path.realpath(folder)})") from None
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        refuse_input_target(target)
        if target.is_dir():
            raise InputError(f"{target} is a folder; give a file path")
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


# ---- sets of outputs in one folder ----------------------------------------------------------
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


# ---- JSON -----------------------------------------------------------------------------------
def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as sorted, indented JSON atomically."""
    from pgan_cli.console import to_json

    with atomic_path(path, suffix=".json.tmp") as tmp:
        tmp.write_text(to_json(obj) + "\n")


MAX_JSON_BYTES = 256 << 20


def loads_json(text: str | bytes, where: str) -> Any:
    """Parse untrusted JSON text: not UTF-8, malformed or nested too deeply is a :class:`FormatError`
    naming ``where``."""
    from pgan_cli.errors import FormatError

    try:
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except UnicodeDecodeError:
        raise FormatError(f"{where} is not UTF-8 text; was it written by pgan?") from None
    except json.JSONDecodeError as e:
        raise FormatError(f"{where} is not valid JSON ({e}); was it written by pgan?") from None
    except RecursionError:
        raise FormatError(f"{where} is JSON nested too deeply to be a pgan file") from None


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Read a JSON file, with a clear error when it is missing, malformed, huge or too deeply nested."""
    p = check_input(path, what)
    if p.stat().st_size > MAX_JSON_BYTES:
        raise InputError(f"{what} {p} is larger than {MAX_JSON_BYTES >> 20} MiB; not a pgan result file")
    return loads_json(p.read_bytes(), f"{what} {p}")

