"""The dataset file: round trips, validation on open, streaming reads, atomic writes."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgan_cli import FORMAT_VERSION
from pgan_cli.dataset import Dataset, DatasetWriter, read_dataset, write_dataset
from pgan_cli.samples import load_vectors
from pgan_cli.errors import FormatError, InputError
from pgan_cli.provenance import make_provenance

PROV = {"command": "test"}


def test_round_trip_images_labels_latents(tmp_path, rng):
    x = rng.uniform(-1, 1, size=(37, 3, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, size=37)
    z = rng.normal(size=(37, 5)).astype(np.float32)
    p = write_dataset(tmp_path / "a.h5", x, labels=y, latents=z, class_names=list("abcd"),
                      attrs={"mixture": {"std": 0.1}}, provenance=make_provenance(seed=3))
    b = read_dataset(p)
    np.testing.assert_array_equal(b.samples, x)
    np.testing.assert_array_equal(b.labels, y)
    np.testing.assert_array_equal(b.latents, z)
    assert b.kind == "images" and b.class_names == list("abcd") and b.num_classes == 4
    assert b.attrs["mixture"] == {"std": 0.1}
    assert b.attrs["format_version"] == FORMAT_VERSION
    assert b.attrs["provenance"]["seed"] == 3 and b.attrs["provenance"]["pgan_version"]


def test_vectors_unscaled_and_streamed(tmp_path, rng):
    x = (rng.normal(size=(10_000, 4)) * 100).astype(np.float32)
    write_dataset(tmp_path / "v.h5", x, provenance=PROV)
    with Dataset(tmp_path / "v.h5") as ds:
        assert ds.kind == "vectors" and ds.n == 10_000 and ds.dim == 4
        parts = [b for _, b, _ in ds.iter_batches(3000)]
        assert [len(b) for b in parts] == [3000, 3000, 3000, 1000]
        np.testing.assert_array_equal(np.concatenate(parts), x)
    np.testing.assert_array_equal(load_vectors(tmp_path / "v.h5"), x)


def test_npy_vectors(tmp_path, rng):
    x = rng.normal(size=(20, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.testing.assert_array_equal(load_vectors(tmp_path / "x.npy"), x)
    x[3, 1] = np.nan
    np.save(tmp_path / "bad.npy", x)
    with pytest.raises(InputError, match="NaN"):
        load_vectors(tmp_path / "bad.npy")
    np.save(tmp_path / "empty.npy", np.zeros((0, 3), np.float32))
    with pytest.raises(InputError, match="empty"):
        load_vectors(tmp_path / "empty.npy")
    np.save(tmp_path / "obj.npy", np.array(["a", "b"]))
    with pytest.raises(InputError, match="dtype"):
        load_vectors(tmp_path / "obj.npy")


def _raw_file(path, samples, **attrs):
    with h5py.File(path, "w") as f:
        f.create_dataset("samples", data=samples)
        f.attrs["format_version"] = attrs.pop("format_version", FORMAT_VERSION)
        for k, v in attrs.items():
            if k in ("labels", "latents"):
                f.create_dataset(k, data=v)
            else:
                f.attrs[k] = v


@pytest.mark.parametrize("case, needle", [
    ("float64", "dtype float64"),
    ("nan", "NaN"),
    ("inf", "NaN or Inf"),
    ("range", "[-1, 1]"),
    ("ndim3", "shape"),
    ("empty", "empty"),
    ("labels_dtype", "int64"),
    ("labels_len", "int64"),
    ("labels_negative", ">= 0"),
    ("labels_range", "out of range"),
    ("version", "format_version 7"),
    ("no_version", "format_version"),
    ("kind", "kind"),
])
def test_validation_on_open(tmp_path, case, needle):
    x = np.zeros((4, 1, 4, 4), np.float32)
    attrs: dict = {}
    if case == "float64":
        x = x.astype(np.float64)
    elif case == "nan":
        x[2, 0, 1, 1] = np.nan
    elif case == "inf":
        x[0, 0, 0, 0] = np.inf
    elif case == "range":
        x[1] = 3.0
    elif case == "ndim3":
        x = x[:, 0]
    elif case == "empty":
        x = x[:0]
    elif case == "labels_dtype":
        attrs["labels"] = np.zeros(4, np.float32)
    elif case == "labels_len":
        attrs["labels"] = np.zeros(3, np.int64)
    elif case == "labels_negative":
        attrs["labels"] = np.array([0, -1, 0, 0])
    elif case == "labels_range":
        attrs["labels"] = np.array([0, 1, 2, 0])
        attrs["class_names"] = json.dumps(["a", "b"])
    elif case == "version":
        attrs["format_version"] = 7
    elif case == "kind":
        attrs["kind"] = "vectors"
    p = tmp_path / "bad.h5"
    _raw_file(p, x, **attrs)
    if case == "no_version":
        with h5py.File(p, "a") as f:
            del f.attrs["format_version"]
    with pytest.raises(FormatError, match=None) as e:
        Dataset(p).close()
    assert needle in str(e.value) and str(p) in str(e.value)


def test_missing_samples_and_not_hdf5(tmp_path):
    p = tmp_path / "nosamples.h5"
    with h5py.File(p, "w") as f:
        f.attrs["format_version"] = FORMAT_VERSION
        f.create_dataset("other", data=np.zeros(3))
    with pytest.raises(FormatError, match="missing the 'samples'"):
        Dataset(p)
    q = tmp_path / "text.h5"
    q.write_text("hello")
    with pytest.raises(FormatError, match="not a readable HDF5"):
        Dataset(q)
    with pytest.raises(InputError, match="does not exist"):
        Dataset(tmp_path / "missing.h5")


def test_writer_is_atomic(tmp_path):
    target = tmp_path / "out.h5"
    with pytest.raises(RuntimeError):
        with DatasetWriter(target, 10, (2,), provenance=PROV) as w:
            w.write(np.zeros((5, 2), np.float32))
            raise RuntimeError("killed half way")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="only 5 of 10"):
        with DatasetWriter(target, 10, (2,), provenance=PROV) as w:
            w.write(np.zeros((5, 2), np.float32))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="NaN"):
        write_dataset(target, np.full((3, 2), np.nan, np.float32), provenance=PROV)
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 0.98), junk=st.binary(min_size=0, max_size=64))
def test_truncated_or_garbled_files_fail_cleanly(tmp_path_factory, cut, junk):
    d = tmp_path_factory.mktemp("t")
    good = d / "good.h5"
    write_dataset(good, np.zeros((50, 1, 8, 8), np.float32), labels=np.zeros(50, np.int64), provenance=PROV)
    raw = good.read_bytes()
    bad = d / "bad.h5"
    bad.write_bytes(raw[: int(len(raw) * cut)] + junk)
    with pytest.raises(InputError):
        with Dataset(bad) as ds:
            ds.samples()
            ds.labels()
