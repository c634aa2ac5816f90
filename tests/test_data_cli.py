"""Every `pgan data` command from the CLI: outputs, reproducibility, bad inputs (exit 2, one line)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from conftest import assert_clean_error, run_pgan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pgan_cli.dataset import read_dataset


def test_digits_sizes(cli, tmp_path):
    for size in (8, 32):
        r = cli("data", "digits", "--size", size, "-o", tmp_path / f"d{size}.h5")
        assert r.exit_code == 0, r
        b = read_dataset(tmp_path / f"d{size}.h5")
        assert b.samples.shape == (1797, 1, size, size)
        assert -1.0 <= b.samples.min() < -0.99 and 0.99 < b.samples.max() <= 1.0
        assert np.bincount(b.labels).tolist()[:3] == [178, 182, 177]
    assert r.stdout == ""  # results of data commands are files; logs go to stderr
    assert "wrote" in r.stderr


def test_breast_cancer_and_gaussian(cli, tmp_path):
    assert cli("data", "breast-cancer", "-o", tmp_path / "b.h5").exit_code == 0
    b = read_dataset(tmp_path / "b.h5")
    assert b.samples.shape == (569, 30) and b.kind == "vectors" and b.class_names == ["malignant", "benign"]
    assert b.samples.max() > 100  # stored unscaled
    r = cli("data", "gaussian", "--modes", "8", "-n", "4000", "--seed", "1", "-o", tmp_path / "g.h5")
    assert r.exit_code == 0, r
    g = read_dataset(tmp_path / "g.h5")
    mix = g.attrs["mixture"]
    means = np.array(mix["means"])
    assert means.shape == (8, 2) and np.allclose(np.linalg.norm(means, axis=1), 2.0)
    d = np.linalg.norm(g.samples - means[g.labels], axis=1)
    assert d.max() < 6 * mix["std"] and abs(d.std() - 0.02 * 0.655) < 0.003  # Rayleigh spread of 2-D noise
    one = cli("data", "gaussian", "--modes", "1", "-n", "500", "-o", tmp_path / "one.h5")
    assert one.exit_code == 0 and np.abs(read_dataset(tmp_path / "one.h5").samples.mean(0)).max() < 0.01


def test_split_disjoint_stratified_reproducible(pgan, tmp_path):
    """The split's contract: digits -> split -> info; sizes add up, disjoint, stratified, same per seed."""
    assert pgan("data", "digits", "-o", tmp_path / "d.h5").exit_code == 0
    for out in ("s1", "s2"):
        r = pgan("data", "split", tmp_path / "d.h5", "--out-dir", tmp_path / out, "--seed", "0")
        assert r.exit_code == 0, r
    info = pgan("data", "info", tmp_path / "s1/train.h5", "--json")
    assert info.exit_code == 0 and json.loads(info.stdout)["n"] == 899
    parts = {n: h5py.File(tmp_path / f"s1/{n}.h5")["source_indices"][:] for n in ("train", "holdout", "reference")}
    allidx = np.concatenate(list(parts.values()))
    assert len(allidx) == 1797 and len(np.unique(allidx)) == 1797
    labels = read_dataset(tmp_path / "d.h5").labels
    for n, idx in parts.items():
        frac = np.bincount(labels[idx], minlength=10) / np.bincount(labels, minlength=10)
        assert np.all(np.abs(frac - {"train": .5, "holdout": .25, "reference": .25}[n]) < 0.02)
        np.testing.assert_array_equal(read_dataset(tmp_path / f"s1/{n}.h5").labels, labels[idx])
        with h5py.File(tmp_path / f"s1/{n}.h5") as a, h5py.File(tmp_path / f"s2/{n}.h5") as b:
            np.testing.assert_array_equal(a["samples"][:], b["samples"][:])
    r3 = pgan("data", "split", tmp_path / "d.h5", "--out-dir", tmp_path / "s3", "--seed", "1",
              "--fractions", "0.7,0.3", "--names", "members,holdout")
    assert r3.exit_code == 0
    assert not np.array_equal(h5py.File(tmp_path / "s3/members.h5")["source_indices"][:899], parts["train"])
    assert sorted(p.name for p in (tmp_path / "s3").iterdir()) == [".pgan-outputs.json", "holdout.h5", "members.h5"]


def test_info_text_and_npy(cli, tmp_path, digits8):
    r = cli("data", "info", digits8)
    assert r.exit_code == 0 and "1797 images of shape (1, 8, 8)" in r.stdout and "labels: 0=178" in r.stdout
    np.save(tmp_path / "e.npy", np.ones((5, 3), np.float32))
    j = json.loads(cli("data", "info", tmp_path / "e.npy", "--json").stdout)
    assert j["n"] == 5 and j["shape"] == [3]


def _write_pngs(folder, n, size=12, mode="L", seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        shape = (size, size) if mode == "L" else (size, size, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(folder / f"{i}.png")


def test_import_imagefolder_and_export_round_trip(cli, tmp_path):
    _write_pngs(tmp_path / "imgs/cat", 3)
    _write_pngs(tmp_path / "imgs/dog", 2, seed=1)
    r = cli("data", "import", tmp_path / "imgs", "-o", tmp_path / "a.h5")
    assert r.exit_code == 0, r
    a = read_dataset(tmp_path / "a.h5")
    assert a.samples.shape == (5, 1, 12, 12) and a.class_names == ["cat", "dog"]
    assert a.labels.tolist() == [0, 0, 0, 1, 1]
    raw = np.asarray(Image.open(tmp_path / "imgs/cat/0.png"), dtype=np.float32)
    np.testing.assert_allclose(a.samples[0, 0], raw / 127.5 - 1, atol=1e-6)
    assert a.attrs["intensity_mapping"] == {"8bit": "[0, 255] -> [-1, 1]"}
    # export to class folders and import again: identical pixels and labels
    assert cli("data", "export", tmp_path / "a.h5", "--png-dir", tmp_path / "png").exit_code == 0
    assert cli("data", "import", tmp_path / "png", "-o", tmp_path / "b.h5").exit_code == 0
    b = read_dataset(tmp_path / "b.h5")
    np.testing.assert_allclose(b.samples, a.samples, atol=1e-6)
    assert b.labels.tolist() == a.labels.tolist()
    # RGB to 3 channels, resized with --size; grid export
    _write_pngs(tmp_path / "rgb", 2, size=20, mode="RGB")
    assert cli("data", "import", tmp_path / "rgb", "--channels", "3", "--size", "8", "-o", tmp_path / "c.h5").exit_code == 0
    assert read_dataset(tmp_path / "c.h5").samples.shape == (2, 3, 8, 8)
    assert cli("data", "export", tmp_path / "c.h5", "--grid", tmp_path / "g.png", "--n", "2").exit_code == 0
    assert Image.open(tmp_path / "g.png").mode == "RGB"


def test_import_refuses_an_output_that_is_one_of_the_images_found(cli, tmp_path):
    """An image found inside an imported folder is an input: writing the dataset over it, however
    the path is spelled, is refused before any work and the image is left as it was."""
    _write_pngs(tmp_path / "x/a", 2)
    _write_pngs(tmp_path / "x/b", 2, seed=1)
    before = (tmp_path / "x/b/1.png").read_bytes()
    for out in (tmp_path / "x/b/1.png", tmp_path / "x/a/../b/1.png"):
        r = cli("data", "import", tmp_path / "x", "-o", out)
        assert_clean_error(r, "is the input image", "1.png")
    assert (tmp_path / "x/b/1.png").read_bytes() == before
    assert cli("data", "import", tmp_path / "x", "-o", tmp_path / "x/b/new.h5").exit_code == 0  # a new file is fine


def test_import_labels_csv_npy_and_16bit(cli, tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "mixed"
    d.mkdir()
    np.save(d / "stack.npy", rng.uniform(0, 4000, (3, 16, 16)).astype(np.float32))
    Image.fromarray(rng.integers(0, 65535, (16, 16), dtype=np.uint16)).save(d / "x16.png")
    (tmp_path / "labels.csv").write_text("path,label\nstack.npy,b\nx16.png,a\n")
    r = cli("data", "import", d, "--labels", tmp_path / "labels.csv", "-o", tmp_path / "m.h5")
    assert r.exit_code == 0, r
    m = read_dataset(tmp_path / "m.h5")
    assert m.samples.shape == (4, 1, 16, 16) and m.class_names == ["a", "b"]
    assert sorted(m.labels.tolist()) == [0, 1, 1, 1]
    assert m.attrs["intensity_mapping"]["percentile"]["percentiles"] == [0.5, 99.5]
    assert m.samples.min() == -1.0 and m.samples.max() == 1.0


def _dicom_files():
    from pydicom.data import get_testdata_file

    return get_testdata_file("CT_small.dcm"), get_testdata_file("MR_small.dcm")


def test_import_dicom_window_rescale_and_monochrome1(cli, tmp_path):
    import pydicom

    ct, _ = _dicom_files()
    ds = pydicom.dcmread(ct)
    hu = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    r = cli("data", "import", ct, "--window", "40,400", "-o", tmp_path / "ct.h5")
    assert r.exit_code == 0, r
    x = read_dataset(tmp_path / "ct.h5").samples[0, 0]
    np.testing.assert_allclose(x, np.clip((hu - (40 - 200)) / 400 * 2 - 1, -1, 1), atol=1e-5)
    # a DICOM written by the test, MONOCHROME1 and with slope/intercept: inverted, rescaled
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.RescaleSlope, ds.RescaleIntercept = 2, -100
    ds.save_as(tmp_path / "mono1.dcm")
    assert cli("data", "import", tmp_path / "mono1.dcm", "--window", "0,1000", "-o", tmp_path / "m1.h5").exit_code == 0
    y = read_dataset(tmp_path / "m1.h5").samples[0, 0]
    v = ds.pixel_array.astype(np.float32) * 2 - 100
    np.testing.assert_allclose(y, -np.clip((v + 500) / 1000 * 2 - 1, -1, 1), atol=1e-5)
    # without a window: percentile mapping; MR too; mixed sizes need --size
    r = cli("data", "import", *_dicom_files(), "-o", tmp_path / "both.h5")
    assert_clean_error(r, "mixed image sizes")
    assert cli("data", "import", *_dicom_files(), "--size", "32", "-o", tmp_path / "both.h5").exit_code == 0
    assert read_dataset(tmp_path / "both.h5").samples.shape == (2, 1, 32, 32)


def test_skip_bad(cli, tmp_path):
    _write_pngs(tmp_path / "d", 2)
    (tmp_path / "d/broken.png").write_bytes(b"\x89PNG not really")
    r = cli("data", "import", tmp_path / "d", "-o", tmp_path / "x.h5")
    assert_clean_error(r, "broken.png")
    assert not (tmp_path / "x.h5").exists()
    r = cli("data", "import", tmp_path / "d", "--skip-bad", "-o", tmp_path / "x.h5")
    assert r.exit_code == 0 and "skipped 1" in r.stderr
    b = read_dataset(tmp_path / "x.h5")
    assert b.n == 2 and "broken.png" in json.dumps(b.attrs["provenance"]["params"]["skipped"])


@pytest.mark.parametrize("args, needle", [
    (["data", "digits", "--size", "12", "-o", "{o}"], "--size 12"),
    (["data", "gaussian", "--modes", "0", "-o", "{o}"], "--modes"),
    (["data", "gaussian", "--std", "-1", "-o", "{o}"], "--std"),
    (["data", "info", "{missing}"], "does not exist"),
    (["data", "split", "{missing}", "--out-dir", "{d}"], "does not exist"),
    (["data", "split", "{digits}", "--out-dir", "{d}", "--fractions", "0.5,0.6"], "summing to 1"),
    (["data", "split", "{digits}", "--out-dir", "{d}", "--names", "a,b"], "--names"),
    (["data", "import", "{emptydir}", "-o", "{o}"], "no images found"),
    (["data", "import", "{textfile}", "-o", "{o}"], "cannot read"),
    (["data", "import", "{emptydir}", "--window", "40", "-o", "{o}"], "--window"),
    (["data", "export", "{digits}", "-o", "x"], "No such option"),
    (["data", "export", "{digits}"], "exactly one of"),
    (["data", "export", "{vectors}", "--grid", "{png}"], "vectors"),
])
def test_bad_inputs(cli, tmp_path, digits8, args, needle):
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "t.png").write_text("not an image")
    vectors = tmp_path / "v.h5"
    assert cli("data", "gaussian", "-n", "10", "-o", vectors).exit_code == 0
    subs = {"o": tmp_path / "out.h5", "missing": tmp_path / "nope.h5", "d": tmp_path / "split",
            "digits": digits8, "emptydir": tmp_path / "emptydir", "textfile": tmp_path / "t.png",
            "vectors": vectors, "png": tmp_path / "g.png"}
    r = cli(*[a.format(**subs) for a in args])
    if needle == "No such option":  # typer's own usage error: exit 2, no traceback
        assert r.exit_code == 2 and needle in r.stderr and "Traceback" not in r.stderr
    else:
        assert_clean_error(r, needle)
    assert not (tmp_path / "out.h5").exists() and not (tmp_path / "g.png").exists()
    assert not (tmp_path / "split").exists() or not any((tmp_path / "split").iterdir())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.05, 0.95), flip=st.integers(0, 2000))
def test_corrupted_inputs_every_data_command(cli, digits8, tmp_path_factory, cut, flip):
    """Truncated or garbled dataset files: exit 2 naming the file, no traceback, no output."""
    d = tmp_path_factory.mktemp("c")
    raw = bytearray(digits8.read_bytes()[: int(digits8.stat().st_size * cut)])
    if raw:
        raw[flip % len(raw)] ^= 0xFF
    bad = d / "bad.h5"
    bad.write_bytes(bytes(raw))
    for args in (["data", "info", bad], ["data", "split", bad, "--out-dir", d / "s"],
                 ["data", "export", bad, "--grid", d / "g.png"]):
        r = cli(*args)
        assert_clean_error(r, "bad.h5")
    assert sorted(p.name for p in d.iterdir()) in (["bad.h5"], ["bad.h5", "s"])
    assert not (d / "s").exists() or not any((d / "s").iterdir())


def test_wrong_dtype_file_every_command(cli, tmp_path):
    p = tmp_path / "ints.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("samples", data=np.zeros((4, 1, 4, 4), np.int32))
        f.attrs["format_version"] = 1
    for args in (["data", "info", p], ["data", "split", p, "--out-dir", tmp_path / "s"],
                 ["data", "export", p, "--grid", tmp_path / "g.png"]):
        assert_clean_error(cli(*args), "int32", "ints.h5")


def test_subprocess_pipeline_and_global_flags(tmp_path):
    """A real shell-style chain: digits -> split -> export, with --quiet anywhere."""
    assert run_pgan("data", "digits", "--size", "16", "-o", tmp_path / "d.h5", "--quiet").stderr == ""
    assert run_pgan("-q", "data", "split", tmp_path / "d.h5", "--out-dir", tmp_path / "s").exit_code == 0
    r = run_pgan("data", "export", tmp_path / "s/holdout.h5", "--grid", tmp_path / "h.png")
    assert r.exit_code == 0 and Image.open(tmp_path / "h.png").size[0] > 16 * 8
    bad = run_pgan("data", "info", tmp_path / "nope.h5", "--verbose")
    assert bad.exit_code == 2 and "Traceback" in bad.stderr  # --verbose shows it
