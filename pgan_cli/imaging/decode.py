"""Decoding one image file (Pillow, pydicom, NPY/NPZ) with its size checked before any pixel is
decoded (docs/FORMAT.md, "Hostile inputs")."""

from __future__ import annotations

import contextlib
import re
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pgan_cli.errors import InputError
from pgan_cli.params import DEFAULT_MAX_PIXELS


PIL_EXTENSIONS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"}
DICOM_EXTENSIONS = {".dcm", ".dicom", ".ima"}
ARRAY_EXTENSIONS = {".npy", ".npz"}
PERCENTILES = (0.5, 99.5)

KIND_8BIT, KIND_DICOM_WINDOW, KIND_RANGE = "8bit", "dicom-window", "percentile"

# DEFAULT_MAX_PIXELS (pgan_cli.params): pixels decoded at once above which a file is refused.
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
    def load():
        with open(path, "rb") as f:
            shape, dtype, offset = _npy_header(f, str(path))
        _check_array(str(path), shape, dtype, path.stat().st_size - offset, max_pixels, whole=False)
        return np.load(path, mmap_mode="r", allow_pickle=False)

    yield from _array_raw(_checked(load, str(path)), str(path))


def _checked(load, name: str) -> np.ndarray:
    """``load()``, with any failure but a refusal reported as an unreadable array file ``name``."""
    try:
        return load()
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"cannot read array file {name}: {e}") from None


def _array_raw(a: np.ndarray, source: str) -> Iterator[RawImage]:
    from pgan_cli.arrays import FLOAT32_MAX

    kind = KIND_8BIT if a.dtype == np.uint8 else KIND_RANGE
    for im in _array_images(a):
        if a.dtype.kind == "f" and a.dtype.itemsize > 4:  # named before the cast makes it an Inf
            big = np.asarray(im)[np.isfinite(im) & (np.abs(im) > FLOAT32_MAX)]
            if big.size:
                raise InputError(f"{source} holds {float(big[0]):.3g}, beyond float32 range (+-3.4e38); "
                                 f"rescale the data")
        yield RawImage(np.array(im, dtype=np.float32), kind, source)


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
            def load(info=info, name=name):
                with zf.open(info) as fp:
                    shape, dtype, offset = _npy_header(fp, name)
                _check_array(name, shape, dtype, info.file_size - offset, max_pixels, whole=True)
                with zf.open(info) as fp:
                    return np.lib.format.read_array(fp, allow_pickle=False)

            yield from _array_raw(_checked(load, name), str(path))


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
