"""``pgan data import``: decode, resize, map intensities to [-1, 1] and stack a folder of images."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pgan_cli.errors import InputError
from pgan_cli.imaging.decode import (DEFAULT_MAX_PIXELS, KIND_8BIT, KIND_DICOM_WINDOW, KIND_RANGE, PERCENTILES,
                                     RawImage, read_raw)
from pgan_cli.imaging.folders import collect_files, read_label_csv


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
                  follow_symlinks: bool = False, output: Path | None = None) -> ImportResult:
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
    if output is not None:  # before any decoding: an image found in a folder is an input too
        from pgan_cli.files import same_file

        for f, _ in files:
            if same_file(output, f):
                raise InputError(f"output {output} is the input image {f}; writing it would destroy the input: "
                                 f"choose another output path")
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


def import_file(paths: list, output, *, size: int | None = None, channels: int = 1,
                window: tuple[float, float] | None = None, labels_csv=None, skip_bad: bool = False,
                max_pixels: int = DEFAULT_MAX_PIXELS, follow_symlinks: bool = False) -> dict:
    """``pgan data import``: images of folders or files into one dataset file; returns what the
    command prints with ``--json`` (``output``, ``n``, ``shape``, ``files``, ``skipped``, ``mapping``)."""
    from pgan_cli import console
    from pgan_cli.dataset import write_dataset
    from pgan_cli.params import Interval, ParameterError, check
    from pgan_cli.provenance import make_provenance, shown_path

    if channels not in (1, 3) or isinstance(channels, bool):
        raise ParameterError("channels", "1 (grey) or 3 (RGB)", channels)
    check("max_pixels", max_pixels, Interval(1, None))
    result = import_images(list(paths), size=size, channels=channels, window=window, labels_csv=labels_csv,
                           skip_bad=skip_bad, on_skip=lambda m: console.log(f"skipped: {m}"),
                           max_pixels=max_pixels, follow_symlinks=follow_symlinks, output=Path(output))
    for note in result.notes:
        console.warn(note)
    if result.skipped:
        console.warn(f"skipped {len(result.skipped)} file(s) (unreadable, too large, or links leaving the folder); "
                     f"they are listed in the provenance")
    prov = make_provenance(([labels_csv] if labels_csv else []), size=size, channels=channels,
                           window=None if window is None else ",".join(f"{v:g}" for v in window),
                           files=len(result.files), skipped=result.skipped, max_pixels=max_pixels,
                           follow_symlinks=follow_symlinks)
    prov["source_paths"] = [shown_path(p) for p in paths]
    write_dataset(output, result.samples, labels=result.labels, class_names=result.class_names,
                  attrs={"intensity_mapping": result.mapping, "source": "pgan data import"}, provenance=prov)
    return {"output": shown_path(output), "n": int(len(result.samples)), "shape": list(result.samples.shape[1:]),
            "files": len(result.files), "skipped": result.skipped, "mapping": result.mapping,
            "class_names": result.class_names}
