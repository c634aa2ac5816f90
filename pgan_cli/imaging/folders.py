"""Finding the images of a folder (symlinks that leave it refused, loops ended) and their labels
(sub-folders or a label CSV that never names another file)."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from pgan_cli.errors import InputError
from pgan_cli.imaging.decode import MAX_CSV_LINE, MAX_LABEL_CHARS, is_image_file


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


class _Walker:
    """Lists one folder given on the command line without leaving it through symbolic links.

    A link (to a file or a folder) whose real path (``os.path.realpath``) is outside the folder is
    refused, skipped (``skip_bad``) or followed (``follow_symlinks``). Each real folder is read
    once: real sub-folders are walked before linked ones, so a link to a folder already read (an
    in-folder link, a loop back to a parent) adds nothing and a loop ends.
    """

    def __init__(self, top: Path, follow_symlinks: bool, skip: Callable[[str, str], None] | None):
        self.top, self.root = top, os.path.realpath(top)
        self.follow, self.skip = follow_symlinks, skip
        self.visited = {self.root}

    def entries(self, folder: Path) -> tuple[list[Path], list[Path], list[Path]]:
        """(real sub-folders, linked sub-folders, files) of ``folder``, sorted by name."""
        try:
            with os.scandir(folder) as it:
                listing = sorted(it, key=lambda e: e.name)
        except OSError as e:
            raise InputError(f"cannot list folder {folder}: {e.strerror or e}") from None
        dirs, links, files = [], [], []
        for e in listing:
            p = Path(e.path)
            is_link = e.is_symlink()
            if is_link:
                target = os.path.realpath(p)
                if not self.follow and not _inside(target, self.root):
                    msg = (f"{p} is a symbolic link to {target}, outside {self.top}; "
                           f"pass --follow-symlinks to read it")
                    if self.skip is None:
                        raise InputError(msg)
                    self.skip(str(p), msg)
                    continue
            try:
                if e.is_dir():
                    (links if is_link else dirs).append(p)
                elif e.is_file():
                    files.append(p)
            except OSError:
                continue  # vanished, or a broken link: not an image file
        return dirs, links, files

    def files_under(self, classes: list[Path], linked: set[Path]) -> dict[str, list[Path]]:
        """Image files under each class folder, by class name, each sorted. All real folders (of
        every class) are read before any linked one, so a link never takes a real folder's files."""
        out: dict[str, list[Path]] = {d.name: [] for d in classes}
        real_stack = [(d, d.name) for d in reversed(classes) if d not in linked]
        link_queue = [(d, d.name) for d in classes if d in linked]
        while real_stack or link_queue:
            d, cls = real_stack.pop() if real_stack else link_queue.pop(0)
            real = os.path.realpath(d)
            if real in self.visited:
                continue
            self.visited.add(real)
            dirs, links, files = self.entries(d)
            out[cls].extend(f for f in files if not f.name.startswith(".") and is_image_file(f))
            real_stack.extend((x, cls) for x in reversed(dirs))
            link_queue.extend((x, cls) for x in links)
        return {c: sorted(fs) for c, fs in out.items()}


def collect_files(paths: list[Path], follow_symlinks: bool = False,
                  skip: Callable[[str, str], None] | None = None) -> list[tuple[Path, str | None]]:
    """Files to import with their class name from the immediate sub-folder (ImageFolder convention).

    A folder with sub-folders: each sub-folder is a class (files are found recursively within).
    A folder without sub-folders, or a file: unlabelled. A file given directly is read as given;
    inside a folder, symbolic links are handled as :class:`_Walker` says. ``skip(path, reason)``
    (``--skip-bad``) is called for each link refused instead of raising.
    """
    found: list[tuple[Path, str | None]] = []
    for p in paths:
        if not p.exists():
            raise InputError(f"{p} does not exist; check the path")
        if p.is_file():
            found.append((p, None))
            continue
        if not p.is_dir():
            raise InputError(f"{p} is neither a regular file nor a folder (a device, pipe or socket); "
                             f"give image files or folders")
        walker = _Walker(p, follow_symlinks, skip)
        dirs, links, files = walker.entries(p)
        subdirs = sorted(d for d in dirs + links if not d.name.startswith("."))
        loose = sorted(f for f in files if is_image_file(f))
        if subdirs:
            if loose:
                raise InputError(f"{p} holds both class sub-folders and loose image files ({loose[0].name}); "
                                 f"move the loose files into a class folder")
            per_class = walker.files_under(subdirs, set(links))
            for d in subdirs:
                found.extend((f, d.name) for f in per_class[d.name])
        else:
            found.extend((f, None) for f in loose)
    if not found:
        names = ", ".join(str(p) for p in paths)
        raise InputError(f"no images found in {names} (looked for PNG, JPEG, TIFF, DICOM, NPY/NPZ files)")
    return found


def _csv_lines(f, csv_path: Path) -> Iterator[str]:
    """Lines of at most MAX_CSV_LINE characters, so one endless row cannot fill memory."""
    n = 0
    while True:
        line = f.readline(MAX_CSV_LINE + 1)
        if not line:
            return
        n += 1
        if len(line) > MAX_CSV_LINE:
            raise InputError(f"labels file {csv_path}: line {n} is longer than {MAX_CSV_LINE:,} characters; "
                             f"each row must be 'path,label'")
        yield line


def read_label_csv(csv_path: Path, files: list[Path]) -> tuple[dict[Path, str], str | None]:
    """Labels of ``files`` from ``path,label`` rows (a header row is optional).

    A row's path is only a key: it is matched against the files already found (full path as
    given, file name, or path relative to the CSV's folder) and never opened, so a row such as
    ``../../etc/passwd`` labels nothing. Only matching rows are kept in memory. Labels become
    class names (and folder names on export), so they must be non-empty plain names. Returns the
    labels found and a note on rows that matched no file (None when all matched).
    """
    if not csv_path.is_file():
        raise InputError(f"labels file {csv_path} does not exist or is not a regular file")
    keys: dict[str, None] = {}
    for f in files:
        for k in (str(f), f.name, os.path.relpath(f, csv_path.parent)):
            keys[k] = None
    matched: dict[str, str] = {}
    rows = unmatched = 0
    example = ""
    try:
        with open(csv_path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(_csv_lines(fh, csv_path))
            for row in reader:
                if not row or row[0].strip().lower() in ("path", "file", "filename"):
                    continue
                if len(row) < 2:
                    raise InputError(f"labels file {csv_path}: line {reader.line_num} ({row[0][:80]!r}) needs "
                                     f"two columns: path,label")
                key, label = row[0].strip(), row[1].strip()
                rows += 1
                if key not in keys:
                    unmatched += 1
                    example = example or key
                    continue
                bad = _bad_label(label)
                if bad:
                    raise InputError(f"labels file {csv_path}: line {reader.line_num}: label {label[:80]!r} {bad}")
                if matched.setdefault(key, label) != label:
                    raise InputError(f"labels file {csv_path}: {key} has two labels ({matched[key]!r} and "
                                     f"{label!r}); keep one row per file")
    except UnicodeDecodeError as e:
        raise InputError(f"labels file {csv_path} is not UTF-8 text ({e.reason}); save it as UTF-8 CSV") from None
    except csv.Error as e:
        raise InputError(f"labels file {csv_path} is not a valid CSV: {e}") from None
    if not rows:
        raise InputError(f"labels file {csv_path} has no rows")
    out: dict[Path, str] = {}
    for f in files:
        key = next((k for k in (str(f), f.name, os.path.relpath(f, csv_path.parent)) if k in matched), None)
        if key is not None:
            out[f] = matched[key]
    note = (f"{unmatched} row(s) of {csv_path} name no imported file (e.g. {example[:200]!r}); they were ignored"
            if unmatched else None)
    return out, note


def _bad_label(label: str) -> str | None:
    if not label:
        return "is empty"
    if len(label) > MAX_LABEL_CHARS:
        return f"is longer than {MAX_LABEL_CHARS} characters"
    if label in (".", "..") or any(c in label for c in "/\\\0") or not label.isprintable():
        return "must be a plain name (no '/', '\\', control characters, '.' or '..'): it becomes a folder name on export"
    return None
