"""`pgan data import` on hostile folders: oversized and bomb images, lying NPY/NPZ/DICOM headers,
symbolic links leaving the folder, link loops and untrusted label CSVs (docs/FORMAT.md)."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import pytest
from conftest import REPO, assert_clean_error
from PIL import Image

from pgan_cli.dataset import read_dataset


def _pngs(folder, n, size=12, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(folder / f"{i}.png")


def _huge_png(path, side=10000):
    Image.new("L", (side, side), 7).save(path)  # constant: about 100 KB on disk, 100 MB decoded
    assert path.stat().st_size < 200_000


def _lying_png(path, width, height):
    """A 1x1 PNG whose IHDR declares width x height (CRC fixed): Pillow's header says it is huge."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    raw = bytearray(buf.getvalue())
    assert raw[12:16] == b"IHDR"
    raw[16:24] = struct.pack(">II", width, height)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    path.write_bytes(bytes(raw))


def _skipped(out):
    return json.dumps(read_dataset(out).attrs["provenance"]["params"]["skipped"])


def test_huge_png_refused_skipped_or_allowed(cli, tmp_path):
    d = tmp_path / "d"
    _pngs(d, 2)
    _huge_png(d / "huge.png")
    out = tmp_path / "o.h5"
    r = cli("data", "import", d, "--size", "8", "-o", out)
    assert_clean_error(r, "huge.png", "--max-pixels")
    assert not out.exists()
    r = cli("data", "import", d, "--size", "8", "--skip-bad", "-o", out)
    assert r.exit_code == 0, r
    assert read_dataset(out).n == 2 and "huge.png" in _skipped(out)
    r = cli("data", "import", d, "--size", "8", "--max-pixels", "100000000", "-o", out)
    assert r.exit_code == 0, r
    b = read_dataset(out)
    assert b.n == 3 and np.allclose(b.samples[2], 7 / 127.5 - 1, atol=1e-5)


def test_cap_between_limit_and_twice_is_an_error_too(cli, tmp_path):
    """Pillow only warns between MAX_IMAGE_PIXELS and twice that; the import refuses."""
    Image.new("L", (300, 300)).save(tmp_path / "a.png")  # 90,000 pixels
    for cap in ("60000", "40000"):  # above the cap: Pillow's warning; above twice: its error
        r = cli("data", "import", tmp_path / "a.png", "--max-pixels", cap, "-o", tmp_path / "o.h5")
        assert_clean_error(r, "a.png", "decompression bomb", "--max-pixels 90000")
    assert not (tmp_path / "o.h5").exists()
    assert cli("data", "import", tmp_path / "a.png", "--max-pixels", "90000", "-o", tmp_path / "o.h5").exit_code == 0


def test_decompression_bomb_png_default_cap(cli, tmp_path):
    d = tmp_path / "d"
    _pngs(d, 1)
    _lying_png(d / "bomb.png", 20000, 20000)  # 400 M pixels declared, above twice the cap
    r = cli("data", "import", d, "-o", tmp_path / "o.h5")
    assert_clean_error(r, "bomb.png", "decompression bomb")
    assert not (tmp_path / "o.h5").exists()
    r = cli("data", "import", d, "--skip-bad", "-o", tmp_path / "o.h5")
    assert r.exit_code == 0 and "bomb.png" in _skipped(tmp_path / "o.h5")


def test_huge_png_peak_memory_with_size(tmp_path):
    """Allowed by --max-pixels, a 10000x10000 grey PNG at --size 64 costs its 100 MB decode, not
    the 1.2 GB of float32 copies (measured 1204 MiB peak RSS before, about 150 MiB after)."""
    _huge_png(tmp_path / "huge.png")
    # VmHWM is this process's own peak: getrusage's ru_maxrss survives exec, so it would report
    # the forking pytest worker's size when that is larger
    code = ("import sys; from pgan_cli.cli.app import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print([ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0])")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", code, "data", "import", tmp_path / "huge.png", "--size", "64",
                        "--max-pixels", "100000000", "-o", tmp_path / "o.h5"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    peak_mib = int(p.stdout.split()[-1]) / 1024
    assert peak_mib < 600, peak_mib  # 100 MB decoded + the libraries; was 1204 MiB


def test_jpeg_decoded_at_reduced_scale(cli, tmp_path):
    """With --size, a JPEG is decoded with Image.draft (DCT scaling), close to a full decode."""
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 256, (16, 16)), np.ones((128, 128))).astype(np.uint8)  # 2048x2048
    Image.fromarray(smooth).save(tmp_path / "a.jpg", quality=95)
    with Image.open(tmp_path / "a.jpg") as im:
        im.draft(None, (96, 96))
        assert im.size == (256, 256)  # what the import decodes: 1/8 scale
    r = cli("data", "import", tmp_path / "a.jpg", "--size", "32", "-o", tmp_path / "o.h5")
    assert r.exit_code == 0, r
    got = read_dataset(tmp_path / "o.h5").samples[0, 0]
    full = np.asarray(Image.open(tmp_path / "a.jpg").convert("F").resize((32, 32), Image.Resampling.LANCZOS))
    assert np.abs(got - (full / 127.5 - 1)).mean() < 0.02


def _npy_header_only(path, shape, dtype="<f4", tail=b"\0" * 16):
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": dtype, "fortran_order": False, "shape": shape})
        f.write(tail)


def test_npy_huge_declared_shape_refused_from_header(cli, tmp_path):
    d = tmp_path / "d"
    _pngs(d, 1, size=8)
    _npy_header_only(d / "lie.npy", (10**6, 10**6))
    r = cli("data", "import", d, "-o", tmp_path / "o.h5")  # would be 4 TB: returns at once
    assert_clean_error(r, "lie.npy", "truncated")
    _npy_header_only(tmp_path / "wide.npy", (8, 8000, 8000), tail=b"")
    with open(tmp_path / "wide.npy", "ab") as f:  # a real (sparse) file as large as it declares
        f.truncate(f.tell() + 8 * 8000 * 8000 * 4)
    assert_clean_error(cli("data", "import", tmp_path / "wide.npy", "-o", tmp_path / "o.h5"),
                       "wide.npy", "64,000,000", "--max-pixels")
    assert not (tmp_path / "o.h5").exists()
    r = cli("data", "import", d, "--skip-bad", "-o", tmp_path / "o.h5")
    assert r.exit_code == 0 and read_dataset(tmp_path / "o.h5").n == 1 and "lie.npy" in _skipped(tmp_path / "o.h5")


def test_npy_stack_streams_and_object_arrays_refused(cli, tmp_path):
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 256, (5, 20, 20)).astype(np.uint8)
    np.save(tmp_path / "s.npy", stack)
    assert cli("data", "import", tmp_path / "s.npy", "--size", "10", "-o", tmp_path / "o.h5").exit_code == 0
    assert read_dataset(tmp_path / "o.h5").samples.shape == (5, 1, 10, 10)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    assert_clean_error(cli("data", "import", tmp_path / "obj.npy", "-o", tmp_path / "x.h5"), "obj.npy", "pickled")
    assert not (tmp_path / "x.h5").exists()


def test_npz_member_checked_before_reading(cli, tmp_path):
    """A zip bomb: a member declaring a huge array, deflated to almost nothing."""
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("x.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False,
                                                     "shape": (64, 4096, 4096)})
            zeros = bytes(1 << 24)
            for _ in range(64):  # 1 GiB of zeros: about 1 MB compressed
                f.write(zeros)
    assert bomb.stat().st_size < 5_000_000
    assert_clean_error(cli("data", "import", bomb, "--size", "8", "-o", tmp_path / "o.h5"),
                       "bomb.npz:x.npy", "--max-pixels")
    with zipfile.ZipFile(tmp_path / "pickle.npz", "w") as z:
        with z.open("y.npy", "w") as f:
            np.save(f, np.array([None], dtype=object), allow_pickle=True)
    assert_clean_error(cli("data", "import", tmp_path / "pickle.npz", "-o", tmp_path / "o.h5"), "pickled")
    np.savez(tmp_path / "ok.npz", a=np.zeros((2, 6, 6), np.uint8), b=np.full((6, 6), 255, np.uint8))
    assert cli("data", "import", tmp_path / "ok.npz", "-o", tmp_path / "o.h5").exit_code == 0
    assert read_dataset(tmp_path / "o.h5").n == 3


def test_dicom_huge_declared_rows_columns(cli, tmp_path):
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))  # shipped with pydicom, no download
    ds.Rows, ds.Columns = 60000, 60000  # the pixel data stays 128x128: only the header lies
    ds.save_as(tmp_path / "huge.dcm")
    r = cli("data", "import", tmp_path / "huge.dcm", "-o", tmp_path / "o.h5")
    assert_clean_error(r, "huge.dcm", "60000x60000", "--max-pixels")
    ds.Rows, ds.Columns, ds.NumberOfFrames = 4096, 4096, 3  # 50 M pixels over three frames
    ds.save_as(tmp_path / "frames.dcm")
    assert_clean_error(cli("data", "import", tmp_path / "frames.dcm", "-o", tmp_path / "o.h5"), "3 frames")
    assert not (tmp_path / "o.h5").exists()


def test_symlink_to_outside_file(cli, tmp_path):
    outside = tmp_path / "secret"
    _pngs(outside, 1, seed=5)
    d = tmp_path / "d"
    _pngs(d / "a", 2)
    os.symlink(outside / "0.png", d / "a" / "link.png")
    out = tmp_path / "o.h5"
    r = cli("data", "import", d, "-o", out)
    assert_clean_error(r, "link.png", str(outside / "0.png"), "--follow-symlinks")
    assert not out.exists()
    r = cli("data", "import", d, "--skip-bad", "-o", out)
    assert r.exit_code == 0, r
    assert sum("link.png" in ln for ln in r.stderr.splitlines() if "skipped:" in ln) == 1
    assert read_dataset(out).n == 2 and "link.png" in _skipped(out)
    r = cli("data", "import", d, "--follow-symlinks", "-o", out)
    assert r.exit_code == 0 and read_dataset(out).n == 3
    # a link given on the command line is read as given; a link staying inside the folder is fine
    assert cli("data", "import", d / "a" / "link.png", "-o", out).exit_code == 0
    os.remove(d / "a" / "link.png")
    os.symlink(d / "a" / "0.png", d / "a" / "same.png")
    assert cli("data", "import", d, "-o", out).exit_code == 0 and read_dataset(out).n == 3


def test_symlinked_folder_outside_and_loops(cli, tmp_path):
    outside = tmp_path / "elsewhere"
    _pngs(outside, 2, seed=3)
    d = tmp_path / "d"
    _pngs(d / "cat", 1)
    _pngs(d / "dog", 1, seed=1)
    os.symlink(outside, d / "cat" / "more")
    assert_clean_error(cli("data", "import", d, "-o", tmp_path / "o.h5"), "more", "--follow-symlinks")
    r = cli("data", "import", d, "--follow-symlinks", "-o", tmp_path / "o.h5")
    assert r.exit_code == 0 and read_dataset(tmp_path / "o.h5").labels.tolist() == [0, 0, 0, 1]
    os.remove(d / "cat" / "more")
    # loops: a folder linking to itself, to its class root and to the top; also a link cycle
    os.symlink(d / "cat", d / "cat" / "self")
    os.symlink(d, d / "dog" / "top")
    os.symlink(d / "dog", d / "cat" / "todog")
    (d / "dog" / "x").mkdir()
    os.symlink(d / "dog" / "x", d / "dog" / "x" / "y")
    for extra in ([], ["--follow-symlinks"]):
        r = cli("data", "import", d, *extra, "-o", tmp_path / "o.h5")
        assert r.exit_code == 0, r
        assert read_dataset(tmp_path / "o.h5").labels.tolist() == [0, 1]  # each file once, in its own class


def test_labels_csv_cannot_reach_other_files(cli, tmp_path, monkeypatch):
    d = tmp_path / "d"
    _pngs(d, 2)
    _pngs(tmp_path / "o", 1)
    (tmp_path / "outside.png").write_bytes((tmp_path / "o" / "0.png").read_bytes())
    csv = d / "labels.csv"
    csv.write_text("path,label\n0.png,a\n1.png,b\n../outside.png,c\n../../etc/passwd,d\n")
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda fp, *a, **k: (opened.append(str(fp)), real_open(fp, *a, **k))[1])
    r = cli("data", "import", d, "--labels", csv, "-o", tmp_path / "o.h5")
    assert r.exit_code == 0, r
    assert not any("outside" in p or "passwd" in p for p in opened), opened
    b = read_dataset(tmp_path / "o.h5")
    assert b.n == 2 and b.class_names == ["a", "b"]
    assert "2 row(s)" in r.stderr and "ignored" in r.stderr


@pytest.mark.parametrize("content, needle", [
    (b"path,label\n0.png,\xff\xfe\xfa\n", "not UTF-8"),
    (b"path,label\n0.png," + b"x" * 70000 + b"\n", "longer than"),
    (b"path,label\n0.png,../../x\n", "plain name"),
    (b"path,label\n0.png,a\n0.png,b\n", "two labels"),
    (b"path,label\n0.png\n", "two columns"),
    (b"path,label\n0.png,a\0b\n", "labels.csv"),
])
def test_labels_csv_malformed(cli, tmp_path, content, needle):
    _pngs(tmp_path / "d", 1)
    (tmp_path / "labels.csv").write_bytes(content)
    r = cli("data", "import", tmp_path / "d", "--labels", tmp_path / "labels.csv", "-o", tmp_path / "o.h5")
    assert_clean_error(r, "labels.csv", needle)
    assert not (tmp_path / "o.h5").exists()
