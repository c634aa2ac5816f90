"""Pictures in and out: read PNG/JPEG/TIFF (Pillow), DICOM (pydicom) and NPY/NPZ image files into
(N, C, H, W) arrays in [-1, 1], and write samples back as PNG files or grids.

Intensity mapping (recorded in the dataset's ``intensity_mapping`` attribute):

- 8-bit images: [0, 255] -> [-1, 1];
- DICOM with a window (centre C, width W, in rescaled units after RescaleSlope/Intercept):
  [C - W/2, C + W/2] -> [-1, 1], clipped (as a radiology viewer displays it);
- other data (16-bit, float, DICOM without a window): the data set's 0.5th-99.5th percentile
  range -> [-1, 1], clipped;
- DICOM ``MONOCHROME1`` (low values bright) is inverted so that bright is always +1.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pgan_cli.errors import InputError

PIL_EXTENSIONS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"}
DICOM_EXTENSIONS = {".dcm", ".dicom", ".ima"}
ARRAY_EXTENSIONS = {".npy", ".npz"}
PERCENTILES = (0.5, 99.5)

KIND_8BIT, KIND_DICOM_WINDOW, KIND_RANGE = "8bit", "dicom-window", "percentile"

# Pixels decoded at once (one PNG/JPEG/TIFF frame, one image of an NPY stack, a whole NPZ member,
# all frames of a DICOM file) above which a file is refused before decoding (docs/FORMAT.md,
# "Hostile inputs"). 2**25 = 33,554,432 pixels, e.g. 5792 x 5792: a grey 8-bit image of that
# size decodes to 32 MiB and its float32 working copy is 128 MiB. --max-pixels raises it.
DEFAULT_MAX_PIXELS = 2**25
# Resize in two steps when shrinking: an integer reduction (JPEG DCT scaling, Image.reduce) to no
# less than REDUCING_GAP x the target, then Lanczos. Pillow's docs for Image.resize/thumbnail:
# with reducing_gap >= 3 the result is "indistinguishable from fair resampling" in most cases.
REDUCING_GAP = 3.0
MAX_CSV_LINE = 65536  # characters per labels-CSV line
MAX_LABEL_CHARS = 255  # a class name becomes a folder name on export (NAME_MAX is 255 bytes)


def _is_dicom(path: Path) -> bool:
    if path.suffix.lower() in DICOM_EXTENSIONS:
        return True
    if path.suffix:
        return False
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def is_image_file(path: Path) -> bool:
    ext = path.suffix.lower()
    return ext in PIL_EXTENSIONS or ext in ARRAY_EXTENSIONS or _is_dicom(path)


@dataclass
class RawImage:
    """One decoded image before scaling: values in native units, (C, H, W)."""

    pixels: np.ndarray
    kind: str  # KIND_8BIT | KIND_DICOM_WINDOW | KIND_RANGE
    source: str
    invert: bool = False


def _too_big(path: Path, what: str, pixels: int, max_pixels: int) -> InputError:
    return InputError(f"{path}: {what} is {pixels:,} pixels, above the cap of {max_pixels:,} pixels decoded "
                      f"at once (a possible decompression bomb); if the file is trusted and fits in memory, "
                      f"raise the cap with --max-pixels {pixels}")


@contextlib.contextmanager
def _pillow_bomb_limit(max_pixels: int):
    """Pillow's own decompression-bomb check at our cap, its warning raised as an error.

    Pillow warns (``DecompressionBombWarning``) when an image declares more than
    ``Image.MAX_IMAGE_PIXELS`` pixels and raises ``DecompressionBombError`` above twice that
    (Pillow docs, "Image.open"); the import treats both as a refusal.
    """
    from PIL import Image

    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _reduce_8bit(im, size: int):
    """Integer box reduction (``Image.reduce``) down to no less than REDUCING_GAP x --size per side,
    done on the 8-bit image before it becomes float32 (Pillow's ``resize(reducing_gap=...)``)."""
    fx, fy = int(im.width / size / REDUCING_GAP), int(im.height / size / REDUCING_GAP)
    if max(fx, fy) > 1:
        im = im.reduce((max(fx, 1), max(fy, 1)))
    return im


def _read_pil(path: Path, size: int | None, max_pixels: int) -> Iterator[RawImage]:
    """Frames one at a time; each checked against the cap on its declared size before it is decoded.

    With --size, a JPEG is decoded at 1/2, 1/4 or 1/8 scale (``Image.draft``, libjpeg's DCT
    scaling) while staying at least REDUCING_GAP x --size per side, and 8-bit images are
    box-reduced before conversion to float32. Formats without reduced decoding (PNG, TIFF, ...)
    cost their declared size, which is why the cap is checked first.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with _pillow_bomb_limit(max_pixels), Image.open(path) as im:  # lazy: reads the header only
            n_frames = getattr(im, "n_frames", 1)
            for i in range(n_frames):
                if i:
                    im.seek(i)
                w, h = im.size
                if w * h > max_pixels:
                    raise _too_big(path, f"frame {i} ({w}x{h})" if n_frames > 1 else f"the image ({w}x{h})",
                                   w * h, max_pixels)
                if size is not None and n_frames == 1:
                    im.draft(None, (int(size * REDUCING_GAP), int(size * REDUCING_GAP)))
                yield _pil_frame(im, size, path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        declared = re.search(r"\((\d+) pixels\)", str(e))
        raise InputError(f"{path}: refused as a possible decompression bomb ({e}); if the file is trusted "
                         f"and fits in memory, raise the cap with --max-pixels "
                         f"{declared.group(1) if declared else 'N'}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        raise InputError(f"cannot read image {path}: {e}") from None


def _pil_frame(im, size: int | None, path: Path) -> RawImage:
    if im.mode in ("1", "L", "P", "LA", "PA", "RGB", "RGBA", "CMYK", "YCbCr"):
        target = ("RGB" if im.mode in ("P", "PA", "RGBA", "CMYK", "YCbCr") else
                  ("L" if im.mode in ("1", "LA") else im.mode))
        im.load()
        frame = im if target == im.mode else im.convert(target)
        if size is not None:
            frame = _reduce_8bit(frame, size)
        arr = np.asarray(frame, dtype=np.float32)
        kind = KIND_8BIT
    else:  # I;16, I, F: 16-bit or float
        arr = np.asarray(im, dtype=np.float32)
        kind = KIND_RANGE
    arr = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
    return RawImage(arr, kind, str(path))


def _read_dicom(path: Path, window: tuple[float, float] | None, max_pixels: int) -> Iterator[RawImage]:
    """The header is read first (``stop_before_pixels``); Rows x Columns x NumberOfFrames is checked
    against the cap before pydicom decodes the pixel data (all frames of a file decode together)."""
    import pydicom

    def first_line(e: Exception) -> str:
        return str(e).splitlines()[0] if str(e) else type(e).__name__

    try:
        head = pydicom.dcmread(path, stop_before_pixels=True)
        rows, cols = int(head.get("Rows", 0) or 0), int(head.get("Columns", 0) or 0)
        frames = int(head.get("NumberOfFrames", 1) or 1)
        samples_per_pixel = int(head.get("SamplesPerPixel", 1) or 1)
    except Exception as e:
        raise InputError(f"cannot read DICOM {path}: {first_line(e)}") from None
    if samples_per_pixel not in (1, 3, 4):
        raise InputError(f"{path}: SamplesPerPixel is {samples_per_pixel}; pgan reads 1 (grey), 3 or 4 samples")
    if rows * cols * frames > max_pixels:
        what = f"the pixel data declared in the header ({cols}x{rows}" + (f" x {frames} frames)" if frames > 1 else ")")
        raise _too_big(path, what, rows * cols * frames, max_pixels)
    try:
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array.astype(np.float32)
    except Exception as e:
        raise InputError(f"cannot read DICOM {path}: {first_line(e)}") from None
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    arr = arr * slope + intercept
    invert = str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1"
    if samples_per_pixel == 1:
        stack = arr[None] if frames == 1 and arr.ndim == 2 else arr
        images = [s[None] for s in stack]
    else:
        stack = arr[None] if frames == 1 else arr
        images = [np.moveaxis(s, -1, 0) for s in stack]
    kind = KIND_DICOM_WINDOW if window else KIND_RANGE
    for im in images:
        yield RawImage(im, kind, str(path), invert)


def _npy_header(fp, name: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and header length of an NPY stream, from its header alone (NumPy's NPY format
    spec, ``numpy.lib.format``); object (pickled) and non-numeric arrays are refused here."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fp)
        if version == (1, 0):
            shape, _fortran, dtype = fmt.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, _fortran, dtype = fmt.read_array_header_2_0(fp)
        else:
            raise ValueError(f"NPY format version {version[0]}.{version[1]} is not read (1.0 and 2.0 are)")
    except Exception as e:
        raise InputError(f"cannot read array file {name}: {e}") from None
    if dtype.hasobject:
        raise InputError(f"{name} holds Python objects (a pickled array); pgan reads numeric arrays only, "
                         f"never unpickles; save it with a numeric dtype")
    if dtype.kind not in "biuf":
        raise InputError(f"{name}: array dtype {dtype} is not numeric")
    if len(shape) not in (2, 3, 4):
        raise InputError(f"{name}: array of shape {shape}; expected (H, W), (N, H, W) or (N, C, H, W)")
    if len(shape) == 4 and shape[1] not in (1, 3, 4):
        raise InputError(f"{name}: array of shape {shape} has {shape[1]} channels; expected 1, 3 or 4")
    return tuple(int(d) for d in shape), dtype, fp.tell()


def _array_images(a: np.ndarray) -> Iterator[np.ndarray]:
    if a.ndim == 2:
        yield a[None]
    elif a.ndim == 3:
        for s in a:  # a stack of grey images (N, H, W)
            yield s[None]
    else:
        yield from a  # (N, C, H, W)


def _check_array(name: str, shape: tuple[int, ...], dtype: np.dtype, data_bytes: int, max_pixels: int,
                 whole: bool) -> None:
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if declared > data_bytes:
        raise InputError(f"{name} is truncated or lies about its size: its header declares shape {shape} "
                         f"({declared:,} bytes of {dtype}) but {data_bytes:,} bytes follow")
    if declared == 0:
        raise InputError(f"{name} holds an empty array (shape {shape})")
    h, w = shape[-2:]
    n = 1 if len(shape) == 2 else shape[0]
    if whole and h * w * n > max_pixels:
        raise _too_big(Path(name), f"the array (shape {shape}, read whole)", h * w * n, max_pixels)
    if h * w > max_pixels:
        raise _too_big(Path(name), f"each image of the array (shape {shape})", h * w, max_pixels)


def _read_array(path: Path, max_pixels: int) -> Iterator[RawImage]:
    """NPY: header checked, then read through a memory map one image at a time. NPZ: each member's
    header checked against the size the zip directory declares before that member is read whole."""
    if path.suffix.lower() == ".npz":
        yield from _read_npz(path, max_pixels)
        return
    try:
        with open(path, "rb") as f:
            shape, dtype, offset = _npy_header(f, str(path))
        _check_array(str(path), shape, dtype, path.stat().st_size - offset, max_pixels, whole=False)
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"cannot read array file {path}: {e}") from None
    kind = KIND_8BIT if a.dtype == np.uint8 else KIND_RANGE
    for im in _array_images(a):
        yield RawImage(np.array(im, dtype=np.float32), kind, str(path))


def _read_npz(path: Path, max_pixels: int) -> Iterator[RawImage]:
    try:
        zf = zipfile.ZipFile(path)
    except Exception as e:
        raise InputError(f"cannot read array file {path}: {e}") from None
    with zf:
        for info in zf.infolist():
            name = f"{path}:{info.filename}"
            if not info.filename.endswith(".npy"):
                raise InputError(f"{name} is not an NPY member; an NPZ file for pgan holds only .npy arrays")
            try:
                with zf.open(info) as fp:
                    shape, dtype, offset = _npy_header(fp, name)
                _check_array(name, shape, dtype, info.file_size - offset, max_pixels, whole=True)
                with zf.open(info) as fp:
                    a = np.lib.format.read_array(fp, allow_pickle=False)
            except InputError:
                raise
            except Exception as e:
                raise InputError(f"cannot read array file {name}: {e}") from None
            kind = KIND_8BIT if a.dtype == np.uint8 else KIND_RANGE
            for im in _array_images(a):
                yield RawImage(im.astype(np.float32), kind, str(path))
            del a


def read_raw(path: Path, window: tuple[float, float] | None = None, size: int | None = None,
             channels: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[RawImage]:
    """Decode one file into one or more images (multi-frame files give several).

    With ``channels``/``size`` each image is converted and resized as soon as it is decoded, so a
    multi-frame file or an NPY stack never holds all its frames at full size.
    """
    ext = path.suffix.lower()
    if ext in ARRAY_EXTENSIONS:
        images = _read_array(path, max_pixels)
    elif _is_dicom(path):
        images = _read_dicom(path, window, max_pixels)
    else:
        images = _read_pil(path, size, max_pixels)
    out = []
    for im in images:
        if not np.isfinite(im.pixels).all():
            raise InputError(f"{path} contains NaN or Inf pixel values")
        if min(im.pixels.shape[1:]) == 0:
            raise InputError(f"{path} holds an empty image")
        if channels is not None:
            im = RawImage(_fit(convert_channels(im.pixels, channels, str(path)), size), im.kind, im.source, im.invert)
        out.append(im)
    return out


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


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Resize (C, H, W) to (C, size, size) with Pillow's antialiased Lanczos filter.

    One channel at a time in float32; shrinking by more than REDUCING_GAP first reduces by an
    integer factor (Pillow's ``reducing_gap``), so the Lanczos pass runs on a small image.
    """
    from PIL import Image

    if image.shape[1:] == (size, size):
        return image
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(c, dtype=np.float32), mode="F")
                                .resize((size, size), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP))
                     for c in image])


def _fit(image: np.ndarray, size: int | None) -> np.ndarray:
    return image if size is None else resize(image, size)


def convert_channels(image: np.ndarray, channels: int, source: str) -> np.ndarray:
    c = image.shape[0]
    if c == channels:
        return image
    if c == 4:  # RGBA from arrays: drop alpha
        image, c = image[:3], 3
    if c == 3 and channels == 1:
        return (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None]
    if c == 1 and channels == 3:
        return np.repeat(image, 3, axis=0)
    if c == channels:
        return image
    raise InputError(f"{source} has {c} channels; cannot convert to --channels {channels}")


@dataclass
class ImportResult:
    samples: np.ndarray
    labels: np.ndarray | None
    class_names: list[str] | None
    mapping: dict
    files: list[str]
    skipped: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # warnings for the user (e.g. unused CSV rows)


def import_images(paths: list[Path], size: int | None = None, channels: int = 1,
                  window: tuple[float, float] | None = None, labels_csv: Path | None = None,
                  skip_bad: bool = False, on_skip=None, max_pixels: int = DEFAULT_MAX_PIXELS,
                  follow_symlinks: bool = False) -> ImportResult:
    """Read every image under ``paths`` into (N, C, S, S) float32 in [-1, 1] (see module docstring).

    Files over ``max_pixels`` decoded at once, decompression bombs and (unless
    ``follow_symlinks``) links leaving a folder are refused, or skipped with ``skip_bad``
    (docs/FORMAT.md, "Hostile inputs").
    """
    if channels < 1:
        raise InputError(f"--channels must be at least 1, got {channels}")
    if size is not None and size < 1:
        raise InputError(f"--size must be positive, got {size}")
    if window is not None and window[1] <= 0:
        raise InputError(f"--window width must be positive, got {window[1]}")
    if max_pixels < 1:
        raise InputError(f"--max-pixels must be positive, got {max_pixels}")
    skipped: list[dict] = []

    def skip(path: str, reason: str) -> None:
        skipped.append({"path": path, "reason": reason})
        if on_skip:
            on_skip(reason)

    files = collect_files(paths, follow_symlinks, skip if skip_bad else None)
    notes: list[str] = []
    csv_labels = None
    if labels_csv:
        csv_labels, note = read_label_csv(labels_csv, [f for f, _ in files])
        notes += [note] if note else []
    raws: list[RawImage] = []
    names: list[str | None] = []
    for f, cls in files:
        try:
            # converted and resized as each image is decoded (the mapping below comes after
            # resizing either way), so memory holds N images at --size, not at the scanner's resolution
            imgs = read_raw(f, window, size=size, channels=channels, max_pixels=max_pixels)
        except InputError as e:
            if not skip_bad:
                raise
            skip(str(f), str(e))
            continue
        if csv_labels is not None:
            if f not in csv_labels:
                raise InputError(f"{f} has no row in labels file {labels_csv}")
            cls = csv_labels[f]
        raws.extend(imgs)
        names.extend([cls] * len(imgs))
    if not raws:
        raise InputError("no readable images were found (all were skipped)")
    if size is None:
        shapes = {r.pixels.shape[1:] for r in raws}
        if len(shapes) > 1:
            a = raws[0]
            b = next(r for r in raws if r.pixels.shape[1:] != a.pixels.shape[1:])
            raise InputError(f"mixed image sizes: {a.pixels.shape[2]}x{a.pixels.shape[1]} in {a.source}, "
                             f"{b.pixels.shape[2]}x{b.pixels.shape[1]} in {b.source}; pass --size N to resize all")
    mapping: dict = {}
    if any(r.kind == KIND_8BIT for r in raws):
        mapping["8bit"] = "[0, 255] -> [-1, 1]"
    range_vals = [r.pixels.ravel() for r in raws if r.kind == KIND_RANGE]
    lo = hi = None
    if range_vals:
        allv = np.concatenate(range_vals)
        del range_vals
        lo, hi = (float(v) for v in np.percentile(allv, PERCENTILES))
        del allv
        if hi <= lo:
            raise InputError(f"16-bit/float images have a constant value ({lo:g}) between the "
                             f"{PERCENTILES[0]}th and {PERCENTILES[1]}th percentiles; nothing to scale")
        mapping["percentile"] = {"percentiles": list(PERCENTILES), "range": [lo, hi]}
    if any(r.kind == KIND_DICOM_WINDOW for r in raws):
        mapping["dicom_window"] = {"center": window[0], "width": window[1]}
    out = np.empty((len(raws), *raws[0].pixels.shape), dtype=np.float32)
    sources = sorted({r.source for r in raws})
    inverted = any(r.invert for r in raws)
    for i, r in enumerate(raws):
        raws[i] = None  # type: ignore[call-overload]  # each raw image is freed once mapped
        if r.kind == KIND_8BIT:
            v = r.pixels / 127.5 - 1.0
        elif r.kind == KIND_DICOM_WINDOW:
            c, w = window
            v = (r.pixels - (c - w / 2)) / w * 2.0 - 1.0
        else:
            v = (r.pixels - lo) / (hi - lo) * 2.0 - 1.0
        v = np.clip(v, -1.0, 1.0)
        out[i] = -v if r.invert else v
    if inverted:
        mapping["monochrome1"] = "inverted so that bright is +1"
    labels = class_names = None
    if any(n is not None for n in names):
        if any(n is None for n in names):
            raise InputError("some images have a class and others do not; give every image a class folder or CSV row")
        class_names = sorted(set(names))  # type: ignore[arg-type]
        index = {n: i for i, n in enumerate(class_names)}
        labels = np.array([index[n] for n in names], dtype=np.int64)
    return ImportResult(out, labels, class_names, mapping, sources, skipped, notes)


# ---- export ---------------------------------------------------------------------------------
def to_uint8(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W) or (N, H, W, 3) uint8 for display.

    One channel is shown grey, three as RGB; any other count shows the middle channel in grey
    (e.g. the centre slice of pGAN's 9-slice inputs).
    """
    images = np.asarray(images, dtype=np.float32)
    c = images.shape[1]
    if c == 3:
        x = np.moveaxis(images, 1, -1)
    else:
        x = images[:, c // 2]
    return np.clip((x + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def image_to_uint8(image: np.ndarray) -> np.ndarray:
    """One (C, H, W) image in [-1, 1] as :func:`to_uint8` shows it."""
    return to_uint8(np.asarray(image)[None])[0]


def make_grid(images: np.ndarray, ncol: int | None = None, pad: int = 2, background: int = 255) -> np.ndarray:
    """Tile (N, C, H, W) images in [-1, 1] into one uint8 picture (H', W') or (H', W', 3), ``ncol``
    per row (default: a square), ``pad`` pixels of ``background`` between them."""
    pics = to_uint8(images)
    n = len(pics)
    ncol = max(1, ncol or int(np.ceil(np.sqrt(n))))
    nrow = int(np.ceil(n / ncol))
    h, w = pics.shape[1:3]
    shape = (nrow * (h + pad) + pad, ncol * (w + pad) + pad) + pics.shape[3:]
    grid = np.full(shape, background, dtype=np.uint8)
    for i, p in enumerate(pics):
        r, c = divmod(i, ncol)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = p
    return grid


def save_png(picture: np.ndarray, path: str | os.PathLike, scale: int = 1) -> Path:
    """Write a uint8 picture as PNG atomically, nearest-neighbour upscaled by ``scale``."""
    from PIL import Image

    from pgan_cli.files import atomic_path

    img = Image.fromarray(picture)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    with atomic_path(path, suffix=".png.tmp") as tmp:
        img.save(tmp, format="PNG")
    return Path(path)
