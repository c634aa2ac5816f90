"""Golden outputs of every command, so a restructuring of the library cannot change a result unnoticed.

A module-scoped fixture runs one tiny chain on the bundled 8x8 digits with fixed seeds
(``data digits`` -> ``data split`` -> ``train`` -> ``sample`` -> ``embed`` -> ``knn`` -> ``mmd``
-> ``fidelity`` -> ``utility`` -> ``cluster`` -> ``attack`` -> ``privatize`` -> ``data leak`` ... -> ``report``
-> ``audit``; the list is ``STEPS`` below). Every run carries the global ``--no-provenance`` flag
(docs/CLI.md: a fixed provenance stub, no time, command line, paths or hashes). For each step,
``tests/golden/<step>.json`` holds the command line, the exit code, the ``--json`` stdout (or the
text stdout of commands without ``--json``) and a description of every file the step wrote:

* HDF5 / NPY / NPZ: each array's shape and dtype, and its values (small arrays in full; larger
  ones as sum, sum of squares, min, max and the first 16 values); HDF5 attributes JSON-decoded;
* JSON / JSONL: the normalised JSON; PNG: size, mode and the SHA-256 of the decoded pixels;
* the checkpoint: its config and every tensor's shape, dtype and sum (``weights_only`` load);
* HTML: the title and the section headings; symbolic links: their (normalised) target.

Normalisation (``normalise``): keys named ``seconds*``, ``wall_time``, ``images_per_s`` and
``queries_per_second`` are timings and are dropped; a ``time`` key holding an ISO timestamp (when
a step ran) is dropped, so are ``versions`` (the installed packages, in full provenance records)
and the output-set ledger (``.pgan-outputs.json``) keeps only its file names (it records sizes
and modification times); any string that contains the temporary folder's path gets that path
removed (paths relative to the chain's folder); a string that is the SHA-256 of a file of the chain
becomes ``sha256:<that file's path>``. The last one is needed because ``pgan train`` saves numpy's
and Python's global RNG states in the checkpoint without seeding them (pgan_cli/checkpoint.py), so
the checkpoint's bytes, and the bytes of every file recording its digest, differ on every run;
those two states are recorded as ``UNSEEDED``. Nothing else is normalised.

Comparison: keys must match exactly; ints, strings, bools and shapes exactly; floats with
``np.allclose(rtol=1e-5, atol=1e-6)`` (BLAS may differ in the last bits). A failure names the step
and the key path of the first difference.

Regenerate the golden files (after an intended change of output, or a new step) with::

    PGAN_REGEN_GOLDEN=1 python -m pytest -q tests/test_golden.py

then review ``git diff tests/golden`` before committing. The chain runs in-process (as the
``cli`` fixture of tests/conftest.py, one import of torch); ``PGAN_GOLDEN_SUBPROCESS=1`` runs each
step as a real ``python -m pgan_cli`` process instead (slower; the results must be the same).

Not covered: ``pgan env`` (its output is the environment itself) and ``pgan completions`` (pinned
against the committed scripts and docs/CLI.md by tests/test_completions.py). ``privatize`` runs
with ``--no-provenance`` like every other step.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import Result, run_pgan

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("PGAN_REGEN_GOLDEN", "") not in ("", "0")
SUBPROCESS = os.environ.get("PGAN_GOLDEN_SUBPROCESS", "") not in ("", "0")

RTOL, ATOL = 1e-5, 1e-6
SMALL_ARRAY = 64  # arrays with at most this many values are recorded in full
HEAD = 16  # values recorded from the start of a larger array

# Timings: legitimately different on every run (docs/CLI.md: results may hold timings).
TIMING_KEYS = {"wall_time", "images_per_s", "queries_per_second"}
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)?$")
UNSEEDED = "<global RNG state, not seeded by pgan: varies>"
COMMANDS_SH_TIME = re.compile(r"(Written by pgan \S+ at )\S+( for:)")

# The chain: (step name, argv). Paths are relative to the chain's folder ({T} is replaced by it).
# Steps whose stdout is saved to a file for later steps (as a shell redirection would) name it.
STEPS: list[tuple[str, list[str], str | None]] = [
    ("data_digits", ["data", "digits", "-o", "{T}/digits.h5"], None),
    ("data_split", ["data", "split", "{T}/digits.h5", "--fractions", "0.1,0.05,0.05,0.02,0.78",
                    "--names", "train,holdout,reference,tiny,rest", "--out-dir", "{T}/splits", "--seed", "0"], None),
    ("data_info", ["data", "info", "{T}/splits/train.h5", "--json"], None),
    ("train", ["train", "{T}/splits/train.h5", "--conditional", "--steps", "20", "--width", "8",
               "--latent-dim", "16", "--batch-size", "32", "--log", "{T}/train.jsonl", "--log-every", "5",
               "--sample-every", "10", "--sample-dir", "{T}/train_samples", "--checkpoint-every", "0",
               "--seed", "0", "--device", "cpu", "-o", "{T}/gen.pt", "--json"], None),
    ("sample", ["sample", "{T}/gen.pt", "-n", "100", "--seed", "1", "--device", "cpu",
                "-o", "{T}/synth.h5", "--json"], None),
    ("sample_interpolate", ["sample", "{T}/gen.pt", "--interpolate", "--rows", "3", "--steps", "4",
                            "--grid", "{T}/interp.png", "--seed", "2", "--device", "cpu", "--json"], None),
    ("embed_pixel", ["embed", "{T}/splits/train.h5", "{T}/splits/holdout.h5", "{T}/synth.h5",
                     "--method", "pixel", "--out-dir", "{T}/emb_pixel", "--device", "cpu", "--json"], None),
    ("embed_pca", ["embed", "{T}/splits/train.h5", "{T}/splits/holdout.h5", "{T}/splits/reference.h5",
                   "{T}/synth.h5", "--method", "pca", "--dim", "8", "--out-dir", "{T}/emb_pca",
                   "--save-model", "{T}/pca.npz", "--device", "cpu", "--json"], None),
    ("embed_pca_model", ["embed", "{T}/splits/tiny.h5", "--model", "{T}/pca.npz", "-o", "{T}/tiny_pca.npy",
                         "--device", "cpu", "--json"], None),
    ("knn", ["knn", "{T}/emb_pca/synth.npy", "{T}/emb_pca/train.npy", "-k", "3", "-o", "{T}/knn.h5",
             "--device", "cpu", "--json"], None),
    ("mmd", ["mmd", "{T}/emb_pca/train.npy", "{T}/emb_pca/synth.npy", "--permutations", "50", "--seed", "0",
             "--device", "cpu", "-o", "{T}/mmd.json", "--json"], None),
    ("fidelity", ["fidelity", "{T}/emb_pca/train.npy", "{T}/emb_pca/synth.npy", "--k", "3", "--seed", "0",
                  "-o", "{T}/fidelity.json", "--json"], None),
    ("utility", ["utility", "--synthetic", "{T}/synth.h5", "--real-train", "{T}/splits/train.h5",
                 "--test", "{T}/splits/holdout.h5", "--classifier", "logreg", "--permutations", "20",
                 "--kmeans", "--seed", "0", "-o", "{T}/utility.json", "--json"], None),
    ("cluster_kmeans", ["cluster", "{T}/splits/train.h5", "--method", "kmeans", "--k", "10", "--seed", "0",
                        "-o", "{T}/clusters.h5", "--json"], None),
    ("attack", ["attack", "--members", "{T}/emb_pca/train.npy", "--non-members", "{T}/emb_pca/holdout.npy",
                "--synthetic", "{T}/emb_pca/synth.npy", "--reference", "{T}/emb_pca/reference.npy",
                "--methods", "dcr,dcr-calibrated,density,domias", "--scores", "{T}/scores.h5",
                "--bootstrap", "10", "--seed", "0", "--device", "cpu", "--json"], "{T}/attack.json"),
    ("privatize_gaussian", ["privatize", "{T}/splits/train.h5", "-m", "gaussian", "--epsilon", "50",
                            "--labels-epsilon", "2", "--seed", "0", "-o", "{T}/private_gaussian.h5", "--json"], None),
    ("privatize_rr", ["privatize", "{T}/splits/train.h5", "-m", "randomized-response", "--epsilon", "64",
                      "--keep-raw-labels", "--seed", "0", "-o", "{T}/private_rr.h5", "--json"], None),
    ("data_leak", ["data", "leak", "--members", "{T}/splits/train.h5", "--population", "{T}/splits/reference.h5",
                   "--fraction", "0.5", "--noise", "0.1", "--seed", "0", "-o", "{T}/leak.h5", "--json"], None),
    ("data_gaussian", ["data", "gaussian", "--modes", "4", "-n", "200", "--seed", "0", "-o", "{T}/gaussian.h5"],
     None),
    ("data_breast_cancer", ["data", "breast-cancer", "-o", "{T}/breast_cancer.h5"], None),
    ("data_export_grid", ["data", "export", "{T}/synth.h5", "--grid", "{T}/synth_grid.png", "--n", "16"], None),
    ("data_export_pngs", ["data", "export", "{T}/splits/tiny.h5", "--png-dir", "{T}/tiny_png"], None),
    ("data_import", ["data", "import", "{T}/tiny_png", "-o", "{T}/tiny_imported.h5"], None),
    ("report", ["report", "{T}/attack.json", "{T}/mmd.json", "{T}/fidelity.json", "{T}/utility.json",
                "{T}/train.jsonl", "{T}/knn.h5", "{T}/scores.h5", "--synthetic", "{T}/synth.h5",
                "--holdout", "{T}/splits/holdout.h5", "--title", "golden report", "--seed", "0",
                "-o", "{T}/report.html", "--summary", "{T}/summary.json", "--json"], None),
    ("audit", ["audit", "--members", "{T}/splits/train.h5", "--holdout", "{T}/splits/holdout.h5",
               "--synthetic", "{T}/synth.h5", "--reference", "{T}/splits/reference.h5",
               "--train-log", "{T}/train.jsonl", "--attacks", "dcr,density", "--bootstrap", "10",
               "--seed", "0", "--out-dir", "{T}/audit", "--json"], None),
]
FULL_PROVENANCE: set[str] = set()  # steps run without --no-provenance (none)
STEP_NAMES = [s[0] for s in STEPS]


# ---- running --------------------------------------------------------------------------------

def _run_in_process(args: list[str]) -> Result:
    """``pgan ARGS`` in this process, as the ``cli`` fixture of tests/conftest.py does, with
    ``sys.argv`` set to the command line (provenance records it as the command)."""
    from typer.testing import CliRunner

    from pgan_cli import console
    from pgan_cli.cli.app import app, normalize_argv

    old_argv = sys.argv
    sys.argv = ["pgan", *args]
    try:
        console.configure(quiet=False, verbose=False, provenance=True)
        r = CliRunner().invoke(app, normalize_argv(list(args)), catch_exceptions=False)
        return Result(r.exit_code, r.stdout, r.stderr)
    finally:
        sys.argv = old_argv
        console.configure(quiet=False, verbose=False, provenance=True)


def run_step(args: list[str]) -> Result:
    return run_pgan(*args) if SUBPROCESS else _run_in_process(args)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns)
    return out


# ---- normalising ----------------------------------------------------------------------------

class Normaliser:
    """Drop timings and timestamps; make paths relative to the chain's folder (module docstring)."""

    def __init__(self, root: Path, digests: dict[str, str] | None = None):
        # Longest first, so that the resolved form is not cut by a shorter prefix.
        self.prefixes = sorted({str(root), str(root.resolve()), os.path.realpath(root)}, key=len, reverse=True)
        self.digests = digests or {}

    def path(self, s: str) -> str:
        for p in self.prefixes:
            s = s.replace(p + os.sep, "").replace(p, ".")
        return s

    def __call__(self, obj: Any) -> Any:
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                k = self.path(str(k))
                if k.startswith("seconds") or k in TIMING_KEYS:  # timings
                    continue
                if k == "time" and isinstance(v, str) and ISO_TIME.match(v):  # when a step ran
                    continue
                if k == "versions" and isinstance(v, dict):  # installed packages (full provenance)
                    continue
                out[k] = self(v)
            return out
        if isinstance(obj, (list, tuple)):
            return [self(v) for v in obj]
        if isinstance(obj, str):
            return self.digests.get(obj) or self.path(obj)
        if isinstance(obj, (np.integer,)):
            return int(obj)
        if isinstance(obj, (np.floating,)):
            return float(obj)
        if isinstance(obj, np.bool_):
            return bool(obj)
        return obj


# ---- describing files -----------------------------------------------------------------------

def _decode_attr(v: Any) -> Any:
    if isinstance(v, bytes):
        v = v.decode("utf-8", "surrogateescape")
    if isinstance(v, str):
        try:
            return json.loads(v)
        except (json.JSONDecodeError, ValueError):
            return v
    if isinstance(v, np.ndarray):
        return describe_array(v)
    if isinstance(v, np.generic):
        return v.item()
    return v


def _finite(x: float) -> float | str:
    return x if math.isfinite(x) else repr(x)


def describe_array(a: np.ndarray) -> dict[str, Any]:
    a = np.asarray(a)
    d: dict[str, Any] = {"shape": list(a.shape), "dtype": str(a.dtype)}
    if a.dtype.kind in "SUO":
        vals = [x.decode("utf-8", "surrogateescape") if isinstance(x, bytes) else str(x) for x in a.ravel()]
        d["values" if a.size <= SMALL_ARRAY else "head"] = vals[:SMALL_ARRAY if a.size <= SMALL_ARRAY else HEAD]
        if a.size > SMALL_ARRAY:
            d["sha256"] = hashlib.sha256("\0".join(vals).encode("utf-8", "surrogateescape")).hexdigest()
        return d
    if a.size <= SMALL_ARRAY:
        d["values"] = a.tolist()
        return d
    if a.dtype.kind == "b":
        d["sum"] = int(a.sum())
        d["head"] = a.ravel()[:HEAD].tolist()
        return d
    exact = a.dtype.kind in "iu"
    w = a.astype(np.int64 if exact else np.float64)
    d["sum"] = int(w.sum()) if exact else _finite(float(w.sum()))
    d["sum_sq"] = int((w * w).sum()) if exact else _finite(float((w * w).sum()))
    d["min"] = w.min().item()
    d["max"] = w.max().item()
    d["head"] = a.ravel()[:HEAD].tolist()
    return d


def describe_h5(path: Path) -> dict[str, Any]:
    import h5py

    out: dict[str, Any] = {"format": "hdf5"}
    with h5py.File(path, "r") as f:
        out["attrs"] = {k: _decode_attr(v) for k, v in sorted(f.attrs.items())}
        datasets: dict[str, Any] = {}

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                d = describe_array(obj[()])
                if len(obj.attrs):
                    d["attrs"] = {k: _decode_attr(v) for k, v in sorted(obj.attrs.items())}
                datasets[name] = d
            elif len(obj.attrs):
                datasets[name + "/"] = {"attrs": {k: _decode_attr(v) for k, v in sorted(obj.attrs.items())}}

        f.visititems(visit)
        out["datasets"] = dict(sorted(datasets.items()))
    return out


def describe_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    def walk(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            t = v.detach().cpu()
            s = t.to(torch.float64).sum().item() if t.numel() else 0.0
            return {"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""),
                    "sum": int(s) if not t.is_floating_point() else s}
        if isinstance(v, dict):
            return {str(k): walk(x) for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        if isinstance(v, str):
            return _decode_attr(v) if v[:1] in "{[" else v
        return v

    content = walk(torch.load(path, map_location="cpu", weights_only=True))
    rng = content.get("rng")
    if isinstance(rng, dict):
        # One CUDA RNG state per visible GPU, saved even with --device cpu: depends on the machine.
        if "cuda" in rng:
            rng["cuda"] = "<one state per visible GPU>"
    return {"format": "checkpoint", "content": content}


class _Headings(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.title, self.headings, self._tag, self._text = None, [], None, []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("title", "h1", "h2", "h3"):
            self._tag, self._text = tag, []

    def handle_data(self, data: str) -> None:
        if self._tag:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == self._tag:
            text = " ".join("".join(self._text).split())
            if tag == "title":
                self.title = text
            else:
                self.headings.append(f"{tag}: {text}")
            self._tag = None


def file_digests(root: Path) -> dict[str, str]:
    """{SHA-256 of a file in the chain's folder: 'sha256:<its relative path>'} (links left out)."""
    out: dict[str, str] = {}
    for rel in sorted(_snapshot(root), reverse=True):  # the smallest path wins a tie
        p = root / rel
        if not p.is_symlink():
            out[hashlib.sha256(p.read_bytes()).hexdigest()] = f"sha256:{rel}"
    return out


def describe_file(path: Path, rel: str) -> dict[str, Any]:
    if path.is_symlink():
        return {"format": "symlink", "target": os.readlink(path)}
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return describe_h5(path)
    if suffix == ".npy":
        return {"format": "npy", **describe_array(np.load(path, allow_pickle=False))}
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {"format": "npz", "arrays": {k: describe_array(z[k]) for k in sorted(z.files)}}
    if suffix == ".pt":
        return describe_checkpoint(path)
    if suffix == ".png":
        from PIL import Image

        with Image.open(path) as im:
            im.load()
            return {"format": "png", "size": list(im.size), "mode": im.mode,
                    "pixels_sha256": hashlib.sha256(im.tobytes()).hexdigest()}
    if suffix in (".html", ".htm"):
        p = _Headings()
        p.feed(path.read_text(encoding="utf-8"))
        return {"format": "html", "title": p.title, "headings": p.headings}
    if suffix == ".jsonl":
        return {"format": "jsonl", "lines": [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]}
    if suffix == ".json":
        data = json.loads(path.read_text())
        if Path(rel).name == ".pgan-outputs.json":  # the output-set ledger: [size, mtime_ns] per file,
            # file-system facts (the mtime changes every run); the files themselves are described
            data = {**data, "sets": {s: sorted(files) for s, files in data.get("sets", {}).items()}}
        return {"format": "json", "content": data}
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    if Path(rel).name == "commands.sh":  # its header says when the audit ran
        text = COMMANDS_SH_TIME.sub(r"\1<time>\2", text)
    return {"format": "text", "lines": text.splitlines()}


# ---- the chain ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict[str, dict[str, Any]]:
    """Run every step of STEPS once in a fresh folder; {step: its normalised record}."""
    root = tmp_path_factory.mktemp("golden")
    raw: dict[str, dict[str, Any]] = {}
    for name, argv, stdout_to in STEPS:
        args = [a.replace("{T}", str(root)) for a in argv]
        if name not in FULL_PROVENANCE:
            args.insert(0, "--no-provenance")
        before = _snapshot(root)
        r = run_step(["-q", *args])
        assert r.exit_code == 0, (name, r)
        if stdout_to:
            Path(stdout_to.replace("{T}", str(root))).write_text(r.stdout)
        after = _snapshot(root)
        written = sorted(k for k, v in after.items() if before.get(k) != v
                         and not (stdout_to and os.path.join(root, k) == stdout_to.replace("{T}", str(root))))
        stdout: Any = r.stdout
        if "--json" in args:
            stdout = json.loads(r.stdout)
        rec = {"command": ["pgan", *args], "exit_code": r.exit_code, "stdout": stdout,
               "files": {rel: describe_file(root / rel, rel) for rel in written}}
        raw[name] = rec
    # The SHA-256 of a chain file becomes its name: the bytes of the checkpoint (and so of every file
    # recording its digest) vary (UNSEEDED), and each file's content is described on its own.
    norm = Normaliser(root, file_digests(root))
    # a JSON round trip: the types a golden file holds (lists, not tuples; str keys)
    return {name: json.loads(json.dumps(norm(rec))) for name, rec in raw.items()}


# ---- comparing ------------------------------------------------------------------------------

def first_difference(golden: Any, actual: Any, path: str = "") -> str | None:
    """The key path and a description of the first difference, or None when they match."""
    where = path or "<root>"
    if isinstance(golden, dict) and isinstance(actual, dict):
        for k in golden:
            if k not in actual:
                return f"{path}.{k}: key removed (in the golden file, not in the output)"
        for k in actual:
            if k not in golden:
                return f"{path}.{k}: key added (in the output, not in the golden file)"
        for k in golden:
            d = first_difference(golden[k], actual[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(golden, list) and isinstance(actual, list):
        if len(golden) != len(actual):
            return f"{where}: length {len(actual)} != golden {len(golden)}"
        for i, (g, a) in enumerate(zip(golden, actual)):
            d = first_difference(g, a, f"{path}[{i}]")
            if d:
                return d
        return None
    if isinstance(golden, bool) or isinstance(actual, bool) or not (
            isinstance(golden, (int, float)) and isinstance(actual, (int, float))):
        if type(golden) is not type(actual) or golden != actual:
            return f"{where}: {actual!r} != golden {golden!r}"
        return None
    if isinstance(golden, int) and isinstance(actual, int):
        return None if golden == actual else f"{where}: {actual!r} != golden {golden!r} (int, exact)"
    if isinstance(golden, int) != isinstance(actual, int):
        return f"{where}: {actual!r} ({type(actual).__name__}) != golden {golden!r} ({type(golden).__name__})"
    if np.allclose(actual, golden, rtol=RTOL, atol=ATOL, equal_nan=True):
        return None
    return f"{where}: {actual!r} != golden {golden!r} (rtol={RTOL}, atol={ATOL})"


def _golden_path(name: str) -> Path:
    return GOLDEN_DIR / f"{name}.json"


@pytest.mark.parametrize("name", STEP_NAMES)
def test_golden(chain, name):
    actual = chain[name]
    path = _golden_path(name)
    if REGEN:
        GOLDEN_DIR.mkdir(exist_ok=True)
        path.write_text(json.dumps(actual, indent=1, sort_keys=True, allow_nan=True) + "\n")
        return
    assert path.exists(), f"{name}: no golden file {path}; generate it with PGAN_REGEN_GOLDEN=1"
    golden = json.loads(path.read_text())
    diff = first_difference(golden, actual)
    assert diff is None, f"pgan {name} differs from {path.name} at {diff}"


def test_no_stale_golden_files():
    """Every golden file belongs to a step (a renamed or removed step leaves none behind)."""
    if REGEN:
        for p in GOLDEN_DIR.glob("*.json"):
            if p.stem not in STEP_NAMES:
                p.unlink()
        return
    stale = sorted(p.name for p in GOLDEN_DIR.glob("*.json") if p.stem not in STEP_NAMES)
    assert not stale, f"golden files without a step: {stale}"


def test_comparison_names_the_key_path():
    """The comparison itself: what passes, and what fails with which key path."""
    g = {"a": {"b": [1.0, 2, "x"], "c": True}}
    assert first_difference(g, {"a": {"b": [1.0 + 1e-9, 2, "x"], "c": True}}) is None
    assert first_difference(g, {"a": {"b": [1.01, 2, "x"], "c": True}}).startswith(".a.b[0]:")
    assert first_difference(g, {"a": {"b": [1.0, 3, "x"], "c": True}}).startswith(".a.b[1]:")
    assert first_difference(g, {"a": {"b": [1.0, 2.0, "x"], "c": True}}).startswith(".a.b[1]:")
    assert first_difference(g, {"a": {"b": [1.0, 2, "x"], "c": 1}}).startswith(".a.c:")
    assert "key added" in first_difference(g, {"a": {"b": [1.0, 2, "x"], "c": True, "d": 0}})
    assert first_difference(g, {"a": {"b": [1.0, 2, "x"]}}).startswith(".a.c: key removed")
    assert "length" in first_difference(g, {"a": {"b": [1.0, 2], "c": True}})


def test_normaliser(tmp_path):
    n = Normaliser(tmp_path)
    rec = {"seconds": 1.0, "seconds_index": 2.0, "wall_time": 3.0, "time": "2026-01-02T03:04:05+00:00",
           "output": str(tmp_path / "a" / "b.h5"), "cmd": f"pgan knn {tmp_path}/q.npy", "n": 3,
           "mode": "time", "provenance": {"versions": {"numpy": "2"}, "seed": 0}}
    assert n(rec) == {"output": "a/b.h5", "cmd": "pgan knn q.npy", "n": 3, "mode": "time",
                      "provenance": {"seed": 0}}


def test_privatize_accepts_no_provenance(tmp_path, digits_splits):
    """--no-provenance is accepted by every command (docs/CLI.md), privatize's seed redaction included."""
    r = run_pgan("--no-provenance", "-q", "privatize", digits_splits["train"], "-m", "gaussian", "--epsilon", "50",
                 "--seed", "0", "-o", tmp_path / "p.h5")
    assert r.exit_code == 0, r
