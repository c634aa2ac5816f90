"""The pgan dataset file (HDF5), the one format every command reads and writes.

Layout (see ``docs/FORMAT.md``):

- ``samples``: float32, ``(N, C, H, W)`` images in [-1, 1], or ``(N, D)`` vectors (unscaled);
- ``labels``: int64 ``(N,)``, optional, in ``0..K-1``; root attribute ``class_names`` (JSON list);
- ``latents``: float32 ``(N, Z)``, optional (the codes that made each synthetic sample);
- ``source_indices``: int64 ``(N,)``, optional (row numbers in the file a split came from);
- root attributes ``kind`` ("images" | "vectors"), ``pgan_version``, ``format_version`` (1),
  ``provenance`` (JSON), and any extra JSON attributes (``intensity_mapping``, ``mixture``...).

:class:`Dataset` validates on open and reads in batches, so a file larger than memory can be
streamed. :class:`DatasetWriter` writes batches to a temporary file in the target folder and
renames it only when complete. Sets of samples, from dataset files or NPY ``(N, D)`` arrays, are
read by :mod:`pgan_cli.samples`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pgan_cli import FORMAT_VERSION, __version__
from pgan_cli.arrays import value_problem
from pgan_cli.errors import FormatError, InputError
from pgan_cli.atomic import atomic_path, h5_create
from pgan_cli.files import check_input

KIND_IMAGES = "images"
KIND_VECTORS = "vectors"
IMAGE_RANGE_TOLERANCE = 1e-3
_BATCH = 4096
MANAGED_ATTRS = {"kind", "pgan_version", "format_version", "provenance", "class_names"}


MAX_SAMPLE_BYTES = 256 << 20  # one record: a 4-channel 4096 x 4096 float32 image
MAX_ATTR_BYTES = 16 << 20


def decode_attr(value: Any) -> Any:
    """An HDF5 attribute as Python: JSON strings decoded, numpy scalars unwrapped.

    Text that is not UTF-8 raises :class:`FormatError`; JSON nested too deeply stays a string.
    """
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("an attribute is not UTF-8 text; was the file written by pgan?") from None
    if isinstance(value, str):
        if len(value) > MAX_ATTR_BYTES:
            raise FormatError(f"an attribute holds {len(value)} characters (at most {MAX_ATTR_BYTES}); "
                              f"was the file written by pgan?")
        try:
            return json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def open_h5(path: Path):
    """An HDF5 file opened for reading, refused unless readable and self-contained."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        reason = str(e).split("(")[0].strip() or "unreadable"
        raise FormatError(f"{path} is not a readable HDF5 file ({reason}); is it truncated or "
                          f"corrupt? Re-create it with the pgan command that wrote it") from None
    try:
        check_self_contained(f, path)
    except BaseException:
        f.close()
        raise
    return f


def check_self_contained(f, path: Path) -> None:
    """Refuse an HDF5 file that would make pgan read anything but its own bytes (``docs/security.md``).

    Soft and external links, datasets whose values live in other files (external storage,
    virtual datasets) and datasets that declare rows they do not store (unallocated chunks, a
    10 KB file declaring 10^12 rows) are refused, so the SHA-256 in provenance covers every byte
    read and the work is bounded by the file's size.
    """
    import h5py

    def fail(what: str) -> None:
        raise FormatError(f"{path}: {what}; pgan reads only self-contained files it can hash "
                          f"(re-create the file with `pgan data import`)")

    def visit(group, prefix: str, depth: int) -> None:
        if depth > 8:
            fail(f"groups nested deeper than 8 levels at {prefix!r}")
        for name in group:
            link = group.get(name, getlink=True)
            where = f"{prefix}{name}"
            if isinstance(link, h5py.ExternalLink):
                fail(f"{where!r} is an external link to {link.filename!r}")
            if isinstance(link, h5py.SoftLink):
                fail(f"{where!r} is a soft link to {link.path!r}")
            obj = group[name]
            if isinstance(obj, h5py.Group):
                visit(obj, where + "/", depth + 1)
            elif isinstance(obj, h5py.Dataset):
                if obj.is_virtual:
                    fail(f"{where!r} is a virtual dataset (its values live in other files)")
                if obj.external:
                    fail(f"{where!r} stores its values in external files ({obj.external[0][0]!r})")
                _check_allocated(obj, where, fail)

    try:
        visit(f, "", 0)
    except (KeyError, OSError, RuntimeError) as e:  # a dangling or malformed link
        raise FormatError(f"{path}: an object cannot be opened ({e}); is the file corrupt?") from None


def _check_allocated(ds, where: str, fail) -> None:
    """A dataset must store every value it declares (pgan writes every row)."""
    nbytes = int(np.prod(ds.shape, dtype=np.float64) * ds.dtype.itemsize) if ds.shape else ds.dtype.itemsize
    if ds.ndim >= 1 and ds.shape[0] and nbytes / ds.shape[0] > MAX_SAMPLE_BYTES:
        fail(f"{where!r} declares {nbytes / ds.shape[0] / 2**20:.0f} MiB per row (at most "
             f"{MAX_SAMPLE_BYTES >> 20} MiB)")
    if nbytes == 0:
        return
    if ds.chunks is None:
        if ds.id.get_storage_size() < nbytes and ds.compression is None:
            fail(f"{where!r} declares shape {ds.shape} but stores only {ds.id.get_storage_size()} bytes")
        return
    total = int(np.prod([-(-n // c) for n, c in zip(ds.shape, ds.chunks)], dtype=np.float64))
    stored = ds.id.get_num_chunks()
    if stored < total:
        fail(f"{where!r} declares shape {ds.shape} but stores {stored} of its {total} chunks")


class Dataset:
    """An open, validated pgan dataset file. Use as a context manager or call :meth:`close`.

    Validation on open: ``samples`` present, float32, 2-D or 4-D and consistent with ``kind``,
    N > 0, no NaN/Inf (checked in batches), images within [-1, 1], labels int64 of length N in
    ``0..K-1``, latents of length N, and a known ``format_version``.
    """

    def __init__(self, path: str | os.PathLike, check_values: bool = True):
        self.path = check_input(path, "dataset file")
        if self.path.suffix.lower() == ".npy":
            raise FormatError(f"{self.path} is an NPY array, not a pgan dataset file; commands that "
                              f"take vectors accept it, others need `pgan data import` first")
        self._f = open_h5(self.path)
        try:
            self._validate(check_values)
        except BaseException:
            self._f.close()
            raise

    # -- validation -------------------------------------------------------------------------
    def _fail(self, what: str) -> None:
        raise FormatError(f"{self.path}: {what}")

    def _validate(self, check_values: bool) -> None:
        import h5py

        f = self._f
        try:
            self._attrs = {k: decode_attr(v) for k, v in f.attrs.items()}
        except FormatError as e:
            self._fail(str(e))
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as e:
            self._fail(f"its attributes cannot be read ({type(e).__name__}); was it written by pgan?")
        version = self._attrs.get("format_version")
        if version is None:
            self._fail("no format_version attribute; not a pgan dataset file "
                       "(create one with `pgan data import` or `pgan data digits`)")
        if isinstance(version, bool) or not isinstance(version, int):
            self._fail(f"format_version is {version!r}, expected the integer {FORMAT_VERSION}; "
                       f"was the file written by pgan?")
        if version != FORMAT_VERSION:
            self._fail(f"format_version {version} is not supported by pgan {__version__} "
                       f"(reads version {FORMAT_VERSION}); upgrade pgan")
        if "samples" not in f or not isinstance(f["samples"], h5py.Dataset):
            self._fail("missing the 'samples' dataset")
        for name in ("labels", "latents", "source_indices"):
            if name in f and not isinstance(f[name], h5py.Dataset):
                self._fail(f"'{name}' is a {type(f[name]).__name__}, expected a dataset")
        s = f["samples"]
        if s.dtype != np.float32:
            self._fail(f"'samples' has dtype {s.dtype}, expected float32")
        if s.ndim not in (2, 4):
            self._fail(f"'samples' has shape {s.shape}; expected (N, C, H, W) images or (N, D) vectors")
        if s.shape[0] == 0:
            self._fail("'samples' is empty (N = 0)")
        if any(d == 0 for d in s.shape[1:]):
            self._fail(f"'samples' has an empty dimension: shape {s.shape}")
        kind = self._attrs.get("kind", KIND_IMAGES if s.ndim == 4 else KIND_VECTORS)
        if not isinstance(kind, str):
            self._fail(f"attribute kind is not text ({type(kind).__name__}); expected 'images' or 'vectors'")
        if kind not in (KIND_IMAGES, KIND_VECTORS):
            self._fail(f"unknown kind {kind!r}; expected 'images' or 'vectors'")
        if (kind == KIND_IMAGES) != (s.ndim == 4):
            self._fail(f"kind is {kind!r} but 'samples' has shape {s.shape}")
        self.kind: str = kind
        self.n: int = int(s.shape[0])
        self.sample_shape: tuple[int, ...] = tuple(int(d) for d in s.shape[1:])
        names = self._attrs.get("class_names")
        if names is not None and (not isinstance(names, list) or not all(isinstance(x, str) for x in names)):
            self._fail("attribute class_names is not a JSON list of strings")
        if names is not None and len(set(names)) < len(names):
            twice = next(x for i, x in enumerate(names) if x in names[:i])
            self._fail(f"attribute class_names names {twice!r} more than once; each class needs its own name")
        self.class_names: list[str] | None = names
        self.has_labels = "labels" in f
        if self.has_labels:
            lab = f["labels"]
            if lab.dtype != np.int64 or lab.shape != (self.n,):
                self._fail(f"'labels' must be int64 of shape ({self.n},), got {lab.dtype} {lab.shape}")
        self.has_latents = "latents" in f
        if self.has_latents:
            lat = f["latents"]
            if lat.dtype != np.float32 or lat.ndim != 2 or lat.shape[0] != self.n:
                self._fail(f"'latents' must be float32 of shape ({self.n}, Z), got {lat.dtype} {lat.shape}")
        if check_values:
            self._check_values()

    def _check_values(self, loaded: dict[str, np.ndarray | None] | None = None) -> None:
        """Check values batch by batch, from the file or from arrays already ``loaded`` in memory."""
        source = self._f if loaded is None else loaded
        lo, hi = np.inf, -np.inf
        max_label, min_label = -1, 0
        for start in range(0, self.n, self._batch_rows()):
            stop = min(self.n, start + self._batch_rows())
            x = source["samples"][start:stop]
            problem = value_problem(x, start)
            if problem:
                self._fail(f"'samples' {problem}")
            lo, hi = min(lo, float(x.min())), max(hi, float(x.max()))
            if self.has_labels:
                lab = source["labels"][start:stop]
                max_label, min_label = max(max_label, int(lab.max())), min(min_label, int(lab.min()))
            if self.has_latents and not np.isfinite(source["latents"][start:stop]).all():
                self._fail("'latents' contains NaN or Inf")
        if self.kind == KIND_IMAGES and (lo < -1 - IMAGE_RANGE_TOLERANCE or hi > 1 + IMAGE_RANGE_TOLERANCE):
            self._fail(f"image samples must lie in [-1, 1], found [{lo:.4g}, {hi:.4g}]")
        self.value_range = (lo, hi)
        if self.has_labels:
            if min_label < 0:
                self._fail(f"labels must be >= 0, found {min_label}")
            if self.class_names is not None and max_label >= len(self.class_names):
                self._fail(f"label {max_label} is out of range for {len(self.class_names)} class_names")

    def _batch_rows(self) -> int:
        per_row = int(np.prod(self.sample_shape)) * 4
        return max(1, min(_BATCH, (64 << 20) // max(per_row, 1)))

    # -- properties ------------------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, Any]:
        """Root attributes, JSON ones decoded (read and checked once, on open)."""
        return dict(self._attrs)

    @property
    def provenance(self) -> dict[str, Any] | None:
        p = self.attrs.get("provenance")
        return p if isinstance(p, dict) else None

    @property
    def num_classes(self) -> int | None:
        if self.class_names is not None:
            return len(self.class_names)
        if self.has_labels:
            return int(self._f["labels"][:].max()) + 1
        return None

    @property
    def dim(self) -> int:
        """Number of values per sample (C*H*W or D)."""
        return int(np.prod(self.sample_shape))

    # -- reading ---------------------------------------------------------------------------
    def samples(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        return np.asarray(self._f["samples"][start:stop], dtype=np.float32)

    def labels(self, start: int = 0, stop: int | None = None) -> np.ndarray | None:
        return np.asarray(self._f["labels"][start:stop]) if self.has_labels else None

    def latents(self, start: int = 0, stop: int | None = None) -> np.ndarray | None:
        return np.asarray(self._f["latents"][start:stop]) if self.has_latents else None

    def extra(self, name: str) -> np.ndarray | None:
        """Any other dataset in the file (``source_indices`` ...), or None."""
        return np.asarray(self._f[name][:]) if name in self._f else None

    def iter_batches(self, batch_size: int = 1024) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
        """Yield ``(start, samples, labels)`` batches in file order."""
        for start in range(0, self.n, batch_size):
            stop = min(self.n, start + batch_size)
            yield start, self.samples(start, stop), self.labels(start, stop)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class DataBundle:
    """A dataset file loaded into memory."""

    samples: np.ndarray
    labels: np.ndarray | None = None
    latents: np.ndarray | None = None
    kind: str = KIND_IMAGES
    class_names: list[str] | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def n(self) -> int:
        return int(self.samples.shape[0])

    @property
    def num_classes(self) -> int | None:
        if self.class_names is not None:
            return len(self.class_names)
        return int(self.labels.max()) + 1 if self.labels is not None else None


def read_dataset(path: str | os.PathLike) -> DataBundle:
    """Open, validate and load a whole dataset file (the values are read once, then checked in memory)."""
    with Dataset(path, check_values=False) as ds:
        loaded = {"samples": ds.samples(), "labels": ds.labels(), "latents": ds.latents()}
        ds._check_values(loaded)
        return DataBundle(samples=loaded["samples"], labels=loaded["labels"], latents=loaded["latents"],
                          kind=ds.kind, class_names=ds.class_names, attrs=ds.attrs, path=ds.path)


def load_labels(path: str | os.PathLike) -> np.ndarray | None:
    """Labels of a dataset file (None for NPY inputs or unlabelled files)."""
    p = Path(path)
    if p.suffix.lower() == ".npy":
        return None
    with Dataset(p, check_values=False) as ds:
        return ds.labels()


class DatasetWriter:
    """Write a dataset file in batches; the file appears only when :meth:`__exit__` succeeds.

    >>> with DatasetWriter("out.h5", n=10, sample_shape=(1, 8, 8), provenance=prov) as w:
    ...     w.write(samples, labels=labels)
    """

    def __init__(self, path: str | os.PathLike, n: int, sample_shape: tuple[int, ...], *,
                 provenance: dict[str, Any], kind: str | None = None, with_labels: bool = False,
                 class_names: list[str] | None = None, latent_dim: int | None = None,
                 attrs: dict[str, Any] | None = None, compression: str | None = None):
        if n <= 0:
            raise InputError(f"cannot write an empty dataset to {path} (N = {n})")
        self.path = Path(path)
        self.n, self.sample_shape = int(n), tuple(int(d) for d in sample_shape)
        self.kind = kind or (KIND_IMAGES if len(self.sample_shape) == 3 else KIND_VECTORS)
        self.with_labels, self.latent_dim = with_labels, latent_dim
        self.class_names, self.attrs, self.provenance = class_names, attrs or {}, provenance
        self.compression = compression
        self._cursor = 0
        self._ctx = None

    def __enter__(self) -> DatasetWriter:
        import h5py

        self._ctx = atomic_path(self.path, suffix=".h5.tmp")
        tmp = self._ctx.__enter__()
        self._h5 = h5_create(tmp)
        f = self._f = self._h5.__enter__()
        chunk_rows = max(1, min(self.n, (1 << 20) // max(4 * int(np.prod(self.sample_shape)), 1)))
        f.create_dataset("samples", shape=(self.n, *self.sample_shape), dtype=np.float32,
                         chunks=(chunk_rows, *self.sample_shape), compression=self.compression)
        if self.with_labels:
            f.create_dataset("labels", shape=(self.n,), dtype=np.int64)
        if self.latent_dim:
            f.create_dataset("latents", shape=(self.n, self.latent_dim), dtype=np.float32)
        f.attrs["kind"] = self.kind
        f.attrs["pgan_version"] = __version__
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["provenance"] = json.dumps(self.provenance, sort_keys=True, default=str)
        if self.class_names is not None:
            f.attrs["class_names"] = json.dumps(list(self.class_names))
        for k, v in self.attrs.items():
            f.attrs[k] = v if isinstance(v, (str, int, float)) else json.dumps(v, sort_keys=True, default=str)
        return self

    def write(self, samples: np.ndarray, labels: np.ndarray | None = None,
              latents: np.ndarray | None = None) -> None:
        """Append a batch of rows."""
        samples = np.asarray(samples, dtype=np.float32)
        m = samples.shape[0]
        if samples.shape[1:] != self.sample_shape:
            raise InputError(f"batch shape {samples.shape[1:]} does not match {self.sample_shape}")
        if not np.isfinite(samples).all():
            raise InputError(f"refusing to write NaN or Inf samples to {self.path}")
        a, b = self._cursor, self._cursor + m
        if b > self.n:
            raise InputError(f"writing {b} rows into a dataset declared with {self.n}")
        self._f["samples"][a:b] = samples
        if self.with_labels:
            if labels is None:
                raise InputError("labels are required for every batch of this dataset")
            self._f["labels"][a:b] = np.asarray(labels, dtype=np.int64)
        if self.latent_dim:
            self._f["latents"][a:b] = np.asarray(latents, dtype=np.float32)
        self._cursor = b

    def add_dataset(self, name: str, data: np.ndarray) -> None:
        """Store another array (e.g. ``source_indices``) in the file."""
        self._f.create_dataset(name, data=data)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._h5.__exit__(exc_type, exc, tb)
        except BaseException as e:  # the disk filled up: HDF5 has let go, the temporary goes
            self._ctx.__exit__(type(e), e, e.__traceback__)
            raise
        if exc_type is None and self._cursor != self.n:
            exc = InputError(f"only {self._cursor} of {self.n} rows were written to {self.path}")
            self._ctx.__exit__(InputError, exc, None)
            raise exc
        self._ctx.__exit__(exc_type, exc, tb)


def write_dataset(path: str | os.PathLike, samples: np.ndarray, *, provenance: dict[str, Any],
                  labels: np.ndarray | None = None, latents: np.ndarray | None = None,
                  kind: str | None = None, class_names: list[str] | None = None,
                  attrs: dict[str, Any] | None = None,
                  extra: dict[str, np.ndarray] | None = None) -> Path:
    """Write a whole dataset file atomically and return its path."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim not in (2, 4):
        raise InputError(f"samples must be (N, C, H, W) or (N, D); got shape {samples.shape}")
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (len(samples),):
            raise InputError(f"labels shape {labels.shape} does not match {len(samples)} samples")
        if labels.size and (labels.min() < 0 or (class_names is not None and labels.max() >= len(class_names))):
            raise InputError(f"labels out of range 0..{len(class_names or []) - 1}")
    w = DatasetWriter(path, len(samples), samples.shape[1:], provenance=provenance, kind=kind,
                      with_labels=labels is not None, class_names=class_names,
                      latent_dim=None if latents is None else int(np.asarray(latents).shape[1]), attrs=attrs)
    with w:
        w.write(samples, labels=labels, latents=latents)
        for name, data in (extra or {}).items():
            w.add_dataset(name, data)
    return Path(path)
