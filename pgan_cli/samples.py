"""Reading sets of samples, from a pgan dataset file or an NPY array: streamed in batches
(:class:`SampleReader`), whole (:func:`load_vectors`) or described (:func:`describe_file`,
``pgan data info``). The dataset file itself is :mod:`pgan_cli.dataset`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pgan_cli.arrays import value_problem
from pgan_cli.dataset import MANAGED_ATTRS, Dataset, read_dataset
from pgan_cli.errors import FormatError
from pgan_cli.files import check_input


class SampleReader:
    """A set of samples read in batches: a pgan dataset file or an NPY array (the one reader of
    sample files; ``docs/FORMAT.md``).

    ``flatten=True`` gives (rows, D) vectors (a dataset's samples flattened, an NPY array of any
    rank >= 2 reshaped); otherwise samples keep their shape: (N, D) vectors, (N, C, H, W) images,
    and an NPY (N, H, W) is read as one-channel images. Only the current batch is in memory: NPY
    rows are read with plain file reads from the literal header's offset (never unpickled, never
    a memory map whose pages would count towards resident memory). NaN/Inf and values beyond
    +-MAX_ABS_VALUE (:func:`pgan_cli.arrays.value_problem`) are reported with the row where they
    occur, checked in the file's dtype before the cast to float32; dataset files are validated on
    open (:class:`Dataset`).
    """

    def __init__(self, path: str | os.PathLike, what: str = "input", *, flatten: bool = False):
        self.path = check_input(path, f"{what} file")
        self.what, self.flatten = what, flatten
        self._ds: Dataset | None = None
        self._npy: np.ndarray | str | None = None
        if self.path.suffix.lower() == ".npy":
            self._open_npy()
        else:
            self._ds = Dataset(self.path)  # validates values (NaN/Inf, ranges) in batches on open
            self.n, self.sample_shape = self._ds.n, self._ds.sample_shape
        self.dim = int(np.prod(self.sample_shape)) if self.sample_shape else 0
        if flatten:
            self.sample_shape = (self.dim,)
        if self.n == 0 or self.dim == 0:
            self.close()
            raise FormatError(f"{what} file {self.path} is empty (shape {(self.n, *self.sample_shape)})")

    def _open_npy(self) -> None:
        try:
            with open(self.path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read(f)  # a literal header: never unpickles
                self._offset = f.tell()
        except ValueError as e:
            msg = "an NPZ archive or another format renamed .npy" if zipfile_magic(self.path) else str(e)
            raise FormatError(f"{self.path} is not a plain numeric NPY array ({msg})") from None
        except (OSError, EOFError) as e:
            raise FormatError(f"{self.path} is not a readable NPY file ({e}); is it truncated?") from None
        if dtype.kind not in "fiu" or dtype.hasobject:
            raise FormatError(f"{self.path} has dtype {dtype}; expected a float array (N, D)")
        if len(shape) < 2 or (not self.flatten and len(shape) > 4):
            want = "a 2-D array (N, D) of vectors" if self.flatten else "(N, D), (N, H, W) or (N, C, H, W)"
            raise FormatError(f"{self.path} has shape {shape}; expected {want}")
        self.n = int(shape[0])
        self.sample_shape = tuple(int(d) for d in ((1, *shape[1:]) if len(shape) == 3 else shape[1:]))
        self._dtype = dtype
        expected = self._offset + int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        if self.path.stat().st_size < expected:
            raise FormatError(f"{self.path} is truncated ({self.path.stat().st_size} bytes, expected {expected})")
        self._npy = (np.load(self.path, allow_pickle=False, mmap_mode="r") if fortran and self.n > 0 else "file")

    def _rows(self, start: int, stop: int) -> np.ndarray:
        """NPY rows ``start:stop`` as float32, checked in the file's dtype (a float64 1e300 is
        beyond float32 range, not an Inf)."""
        row = int(np.prod(self.sample_shape))
        if isinstance(self._npy, np.ndarray):
            x = np.array(self._npy[start:stop])
        else:
            with open(self.path, "rb") as f:
                f.seek(self._offset + start * row * self._dtype.itemsize)
                x = np.fromfile(f, dtype=self._dtype, count=(stop - start) * row)
        self._check_values(x.reshape(stop - start, -1), start)
        return x.astype(np.float32, copy=False).reshape(stop - start, *self.sample_shape)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n, *self.sample_shape)

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` as float32 (a writable array, never the file's memory)."""
        stop = self.n if stop is None else min(stop, self.n)
        if self._npy is not None:
            x = self._rows(start, stop)
        else:
            x = self._ds.samples(start, stop)
        return np.ascontiguousarray(x.reshape(stop - start, *self.sample_shape))

    def read_into(self, out: np.ndarray, start: int = 0) -> None:
        """Rows ``start:start + len(out)``, flattened, into ``out`` (float32, C-contiguous), checked
        as :meth:`read` checks them. Native float32 NPY rows are read straight into ``out``: no
        temporary array, so loading a large set costs its own memory once."""
        stop = start + len(out)
        if not (0 <= start and stop <= self.n and out.dtype == np.float32 and out.flags.c_contiguous
                and out.ndim == 2 and out.shape[1] == self.dim):
            raise ValueError(f"read_into: rows {start}..{stop} of {self.shape} into {out.dtype} {out.shape}")
        if isinstance(self._npy, str) and self._dtype == np.dtype(np.float32):
            row = 4 * self.dim
            with open(self.path, "rb") as f:
                f.seek(self._offset + start * row)
                got = f.readinto(memoryview(out).cast("B"))
            if got != out.nbytes:
                raise FormatError(f"{self.what} file {self.path} is truncated at row {start + got // row}")
            self._check_values(out, start)
            return
        out[...] = self.read(start, stop).reshape(len(out), -1)

    def _check_values(self, x: np.ndarray, start: int) -> None:
        problem = value_problem(x, start)
        if problem:
            raise FormatError(f"{self.what} file {self.path} {problem}")

    def batches(self, batch_size: int) -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, self.n, batch_size):
            yield start, self.read(start, start + batch_size)

    def validate(self) -> None:
        """Scan an NPY input's values (NaN/Inf, magnitude) in bounded chunks (dataset files are
        checked on open)."""
        if self._npy is not None:
            for _ in self.batches(max(1, (64 << 20) // (4 * self.dim))):
                pass

    def close(self) -> None:
        if self._ds is not None:
            self._ds.close()

    def __enter__(self) -> SampleReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def zipfile_magic(path: Path) -> bool:
    """Whether a file starts like a zip archive (an NPZ)."""
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def load_vectors(path: str | os.PathLike, what: str = "input") -> np.ndarray:
    """Read a whole set of vectors: an NPY ``(N, D)`` array, or a dataset file flattened to ``(N, D)``.

    Refuses empty sets, NaN/Inf and non-numeric arrays with a clear message.
    """
    p = check_input(path, what)
    if p.suffix.lower() == ".npy":
        with SampleReader(p, what, flatten=True) as reader:
            return reader.read()
    bundle = read_dataset(p)  # values read once and checked in memory
    return bundle.samples.reshape(bundle.n, -1)


def describe_file(path: str | os.PathLike) -> dict[str, Any]:
    """What `pgan data info` reports about a dataset or NPY file (validating it on the way)."""
    from pgan_cli.provenance import read_provenance

    path = Path(path)
    if path.suffix.lower() == ".npy":
        x = load_vectors(path)
        return {"path": str(path), "format": "npy", "kind": "vectors", "n": int(x.shape[0]),
                "shape": list(x.shape[1:]), "dtype": "float32",
                "value_range": [float(x.min()), float(x.max())], "provenance": read_provenance(path)}
    with Dataset(path) as ds:
        info = {"path": str(path), "format": "pgan-h5", "kind": ds.kind, "n": ds.n,
                "shape": list(ds.sample_shape), "dtype": "float32",
                "value_range": [float(v) for v in ds.value_range], "has_latents": ds.has_latents,
                "latent_dim": int(ds._f["latents"].shape[1]) if ds.has_latents else None,
                "class_names": ds.class_names, "provenance": ds.provenance}
        if ds.has_labels:
            counts = np.bincount(ds.labels(), minlength=ds.num_classes or 0)
            names = ds.class_names or [str(i) for i in range(len(counts))]
            info["label_counts"] = {names[i]: int(c) for i, c in enumerate(counts)}
        attrs = {k: v for k, v in ds.attrs.items() if k not in MANAGED_ATTRS}
        info["attributes"] = attrs
        return info
