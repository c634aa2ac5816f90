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

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pgan_cli.errors import InputError

PIL_EXTENSIONS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"}
DICOM_EXTENSIONS = {".dcm", ".dicom", ".ima"}
ARRAY_EXTENSIONS = {".npy", ".npz"}
PERCENTILES = (0.5, 99.5)

KIND_8BIT, KIND_DICOM_WINDOW, KIND_RANGE = "8bit", "dicom-window", "percentile"


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


def _read_pil(path: Path) -> list[RawImage]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            frames = []
            for i in range(getattr(im, "n_frames", 1)):
                im.seek(i)
                frames.append(im.copy())
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InputError(f"cannot read image {path}: {e}") from None
    out = []
    for im in frames:
        if im.mode in ("1", "L", "P", "LA", "PA", "RGB", "RGBA", "CMYK", "YCbCr"):
            im = im.convert("RGB" if im.mode in ("P", "PA", "RGBA", "CMYK", "YCbCr") else
                            ("L" if im.mode in ("1", "LA") else im.mode))
            arr = np.asarray(im, dtype=np.float32)
            kind = KIND_8BIT
        else:  # I;16, I, F: 16-bit or float
            arr = np.asarray(im, dtype=np.float32)
            kind = KIND_RANGE
        arr = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
        out.append(RawImage(arr, kind, str(path)))
    return out


def _read_dicom(path: Path, window: tuple[float, float] | None) -> list[RawImage]:
    import pydicom

    try:
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array.astype(np.float32)
    except Exception as e:
        raise InputError(f"cannot read DICOM {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    arr = arr * slope + intercept
    invert = str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1"
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    samples_per_pixel = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if samples_per_pixel == 1:
        stack = arr[None] if frames == 1 and arr.ndim == 2 else arr
        images = [s[None] for s in stack]
    else:
        stack = arr[None] if frames == 1 else arr
        images = [np.moveaxis(s, -1, 0) for s in stack]
    kind = KIND_DICOM_WINDOW if window else KIND_RANGE
    return [RawImage(im, kind, str(path), invert) for im in images]


def _read_array(path: Path) -> list[RawImage]:
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                arrays = [z[k] for k in z.files]
        else:
            arrays = [np.load(path, allow_pickle=False)]
    except Exception as e:
        raise InputError(f"cannot read array file {path}: {e}") from None
    out = []
    for a in arrays:
        if a.dtype.kind not in "biuf":
            raise InputError(f"{path}: array dtype {a.dtype} is not numeric")
        kind = KIND_8BIT if a.dtype == np.uint8 else KIND_RANGE
        a = a.astype(np.float32)
        if a.ndim == 2:
            images = [a[None]]
        elif a.ndim == 3:
            images = [s[None] for s in a]  # a stack of grey images (N, H, W)
        elif a.ndim == 4:
            images = list(a)  # (N, C, H, W)
        else:
            raise InputError(f"{path}: array of shape {a.shape}; expected (H, W), (N, H, W) or (N, C, H, W)")
        out.extend(RawImage(im, kind, str(path)) for im in images)
    return out


def read_raw(path: Path, window: tuple[float, float] | None = None) -> list[RawImage]:
    """Decode one file into one or more raw images (multi-frame files give several)."""
    ext = path.suffix.lower()
    if ext in ARRAY_EXTENSIONS:
        images = _read_array(path)
    elif _is_dicom(path):
        images = _read_dicom(path, window)
    else:
        images = _read_pil(path)
    for im in images:
        if not np.isfinite(im.pixels).all():
            raise InputError(f"{path} contains NaN or Inf pixel values")
        if min(im.pixels.shape[1:]) == 0:
            raise InputError(f"{path} holds an empty image")
    return images


def collect_files(paths: list[Path]) -> list[tuple[Path, str | None]]:
    """Files to import with their class name from the immediate sub-folder (ImageFolder convention).

    A folder with sub-folders: each sub-folder is a class (files are found recursively within).
    A folder without sub-folders, or a file: unlabelled.
    """
    found: list[tuple[Path, str | None]] = []
    for p in paths:
        if not p.exists():
            raise InputError(f"{p} does not exist; check the path")
        if p.is_file():
            found.append((p, None))
            continue
        subdirs = sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
        loose = sorted(f for f in p.iterdir() if f.is_file() and is_image_file(f))
        if subdirs:
            if loose:
                raise InputError(f"{p} holds both class sub-folders and loose image files ({loose[0].name}); "
                                 f"move the loose files into a class folder")
            for d in subdirs:
                for f in sorted(d.rglob("*")):
                    if f.is_file() and not f.name.startswith(".") and is_image_file(f):
                        found.append((f, d.name))
        else:
            found.extend((f, None) for f in loose)
    if not found:
        names = ", ".join(str(p) for p in paths)
        raise InputError(f"no images found in {names} (looked for PNG, JPEG, TIFF, DICOM, NPY/NPZ files)")
    return found


def read_label_csv(csv_path: Path) -> dict[str, str]:
    """``path,label`` rows (a header row is optional); keys are file names or relative paths."""
    if not csv_path.is_file():
        raise InputError(f"labels file {csv_path} does not exist")
    out: dict[str, str] = {}
    with open(csv_path, newline="") as f:
        for row in csv.reader(f):
            if not row or row[0].strip().lower() in ("path", "file", "filename"):
                continue
            if len(row) < 2:
                raise InputError(f"labels file {csv_path}: row {row!r} needs two columns: path,label")
            out[row[0].strip()] = row[1].strip()
    if not out:
        raise InputError(f"labels file {csv_path} has no rows")
    return out


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Resize (C, H, W) to (C, size, size) with Pillow's antialiased Lanczos filter."""
    from PIL import Image

    if image.shape[1:] == (size, size):
        return image
    return np.stack([np.asarray(Image.fromarray(c, mode="F").resize((size, size), Image.Resampling.LANCZOS))
                     for c in image.astype(np.float32)])


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


def import_images(paths: list[Path], size: int | None = None, channels: int = 1,
                  window: tuple[float, float] | None = None, labels_csv: Path | None = None,
                  skip_bad: bool = False, on_skip=None) -> ImportResult:
    """Read every image under ``paths`` into (N, C, S, S) float32 in [-1, 1] (see module docstring)."""
    if channels < 1:
        raise InputError(f"--channels must be at least 1, got {channels}")
    if size is not None and size < 1:
        raise InputError(f"--size must be positive, got {size}")
    if window is not None and window[1] <= 0:
        raise InputError(f"--window width must be positive, got {window[1]}")
    files = collect_files(paths)
    csv_labels = read_label_csv(labels_csv) if labels_csv else None
    raws: list[RawImage] = []
    names: list[str | None] = []
    skipped: list[dict] = []
    for f, cls in files:
        try:
            imgs = read_raw(f, window)
            # resized as soon as read (the mapping below comes after resizing either way), so
            # memory holds N images at --size, not N images at the scanner's resolution
            imgs = [RawImage(_fit(convert_channels(r.pixels, channels, str(f)), size), r.kind, r.source, r.invert)
                    for r in imgs]
        except InputError as e:
            if not skip_bad:
                raise
            skipped.append({"path": str(f), "reason": str(e)})
            if on_skip:
                on_skip(str(e))
            continue
        if csv_labels is not None:
            key = next((k for k in (str(f), f.name, os.path.relpath(f, labels_csv.parent)) if k in csv_labels), None)
            if key is None:
                raise InputError(f"{f} has no row in labels file {labels_csv}")
            cls = csv_labels[key]
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
    return ImportResult(out, labels, class_names, mapping, sources, skipped)


# ---- export ---------------------------------------------------------------------------------
def to_uint8(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W) or (N, H, W, 3) uint8 for display.

    One channel is shown grey, three as RGB; any other count shows the middle channel in grey
    (e.g. the centre slice of pGAN's 9-slice inputs).
    """
    c = images.shape[1]
    if c == 3:
        x = np.moveaxis(images, 1, -1)
    else:
        x = images[:, c // 2]
    return np.clip((x + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def make_grid(images: np.ndarray, ncol: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile (N, C, H, W) images in [-1, 1] into one uint8 picture (H', W') or (H', W', 3)."""
    pics = to_uint8(images)
    n = len(pics)
    ncol = ncol or int(np.ceil(np.sqrt(n)))
    nrow = int(np.ceil(n / ncol))
    h, w = pics.shape[1:3]
    shape = (nrow * (h + pad) + pad, ncol * (w + pad) + pad) + pics.shape[3:]
    grid = np.full(shape, 255, dtype=np.uint8)
    for i, p in enumerate(pics):
        r, c = divmod(i, ncol)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = p
    return grid


def save_png(picture: np.ndarray, path: str | os.PathLike) -> None:
    """Write a uint8 picture as PNG (the caller makes the write atomic)."""
    from PIL import Image

    Image.fromarray(picture).save(path, format="PNG")
