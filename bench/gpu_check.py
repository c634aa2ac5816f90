"""GPU check: run every GPU path of pgan on small and large data, compare each result with the
CPU result, time both, and write ``gpu-check.json`` and ``gpu-check.md`` to a folder.

GPU time is lent rarely and for minutes, so this is a tool to run first thing on a lent GPU,
not a test: ``bash scripts/gpu-check.sh OUT_DIR`` (default budget 300 s). Without a CUDA GPU it
prints one line and exits 0 without running anything; ``--dry-run`` runs the same driver with
the CPU standing in for the GPU on tiny sizes (how its CPU-side logic is tested:
tests/test_gpu_check.py).

Every check is a function returning one record per size: ``status`` (pass, fail, skip, error),
``cpu_s``/``gpu_s`` (the same work on the CPU and on the device), ``speedup``, ``gemm_tflops``
(the device's fp32 GEMM rate, measured by the first check), ``fraction_of_gemm`` (the check's
GEMM-shaped flops per second over the device's rate of the same precision, where the work is
GEMM-shaped: exact k-NN, MMD blocks), ``detail`` (the comparison: max abs/rel difference,
neighbours equal, ...), and for failures the one-line error and the tail of the traceback.

What is compared (the CPU result is the reference):

- ``gemm``: the device's fp32, tf32 and fp64 GEMM rates; fp64 products equal the CPU's to 1e-12.
- ``knn``, ``knn-sharded`` (``cuda:all``, needs 2+ GPUs), ``knn-variants`` (cosine, exclude-self,
  IVF recall), ``knn-cli`` (``pgan knn`` files): exact neighbour indices equal, distances equal
  to 1e-6 relative. pgan re-ranks FAISS's candidates with exact distances and breaks ties by the
  lower reference row (:mod:`pgan_cli.neighbors`), so the device may change only which
  candidates FAISS proposes, never the answer; the data plant exact duplicates to test the ties.
- ``mmd``: MMD² of every permutation, float64 on both sides (:mod:`pgan_cli.metrics.mmd`), equal
  to 1e-9 relative; p-values equal; also the linear-time estimator and ``pgan mmd``.
- ``train-fp32``/``train-fp16``/``train-bf16``: ``pgan train`` on the device (a fresh process
  each), then ``--resume`` to twice the steps must succeed and advance the step count; losses
  finite; the first step's losses near the CPU run's (same seeded weights, batch and noise).
- ``sample``: ``pgan sample`` on the device: the same latents and labels, samples within
  TF32 rounding (1e-2 on [-1, 1] images).
- ``dist-probe``: pgan's torchrun helper (:class:`pgan_cli.gan.training.distributed.Dist`) with NCCL:
  broadcast, gradient all-reduce, barrier, teardown (2 ranks with 2+ GPUs, else 1 rank).
- ``torchrun-train``: ``torchrun -m pgan_cli train`` on the device and its resume.
- ``attack``: ``pgan attack --device cuda`` against ``--device cpu`` on the same files:
  black-box figures equal (1e-9), white-box AUCs within 0.02, distance metrics to 1e-5.
- ``embed-autoencoder``, ``embed-discriminator``, ``embed-torchvision``: features of one model
  computed on the device against the CPU (within 1e-2 of the features' scale: cuDNN convolutions
  use TF32 by default); the autoencoder is also fitted on the device (final MSE within 1.5x).

Budget: the checks run small sizes first, then large; each has an estimated cost, and one that
would exceed the time left is recorded as skipped. With ``--isolate`` (the default on a GPU)
the checks run in a worker process that is replaced after an error (a CUDA error poisons the
context) and killed at the end of the budget; ``--no-isolate`` (the default in a dry run) runs
them in this process.

Run: bash scripts/gpu-check.sh OUT_DIR [--budget 300] [--only knn,mmd] [--sizes small]
     PYTHONPATH=. python bench/gpu_check.py OUT_DIR --dry-run
Exit: 0 when every check that ran passed (or no GPU here), 1 when any failed or errored.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
FORMAT = "pgan-gpu-check"
FORMAT_VERSION = 1
DEFAULT_BUDGET = 300.0
NO_GPU_LINE = "no CUDA GPU here (torch.cuda.is_available() is False); nothing run"
STATUSES = ("pass", "fail", "skip", "error")
WRITE_RESERVE_S = 3.0  # kept back from the budget for writing the outputs
TRACEBACK_LINES = 25
# attacks whose --device matters (logan-blackbox trains its classifier on the CPU whatever the device)
ATTACK_METHODS = "dcr,dcr-calibrated,pairwise,density,domias,logan,gan-leaks"
WHITE_BOX_AUC_TOL = 0.02
SMALL_SPLIT = "0.05,0.05,0.05,0.85"  # members, holdout, reference (90 rows each of digits) and the rest
TF32_TOL = 1e-2  # cuDNN convolutions run in TF32 by default: ~1e-3 relative per layer


class Skip(Exception):
    """The check does not apply here (the reason is recorded)."""


class Failed(Exception):
    """The GPU path ran and gave a wrong result, or a command failed (one line; ``tail``: its stderr)."""

    def __init__(self, message: str, tail: str | None = None):
        super().__init__(message)
        self.tail = tail


def log(msg: str) -> None:
    sys.stderr.write(msg.rstrip("\n") + "\n")
    sys.stderr.flush()


# ---- records ------------------------------------------------------------------------------------
def new_record(name: str, size: str, label: str = "") -> dict[str, Any]:
    return {"name": name, "size": size, "label": label, "status": None, "cpu_s": None, "gpu_s": None,
            "speedup": None, "gemm_tflops": None, "gemm_basis": None, "fraction_of_gemm": None,
            "flops": None, "detail": {}, "error": None, "traceback": None, "elapsed_s": None}


def outcome(cpu_s: float | None, gpu_s: float | None, ok: bool, why: str | None = None,
            flops: float | None = None, basis: str | None = None, **detail: Any) -> dict[str, Any]:
    """What a check function returns: its times, whether the comparison held, and the detail."""
    return {"cpu_s": cpu_s, "gpu_s": gpu_s, "ok": bool(ok), "why": why, "flops": flops, "basis": basis,
            "detail": detail}


def finish_record(rec: dict[str, Any], gemm: dict[str, float] | None) -> dict[str, Any]:
    """Fill in the derived fields: speedup, the device's GEMM rate and the fraction of it reached."""
    cpu, dev = rec.get("cpu_s"), rec.get("gpu_s")
    if cpu and dev and dev > 0:
        rec["speedup"] = cpu / dev
    gemm = gemm or {}
    rec["gemm_tflops"] = gemm.get("fp32")
    basis, flops = rec.get("gemm_basis"), rec.get("flops")
    if basis and flops and dev and gemm.get(basis):
        rec["fraction_of_gemm"] = flops / dev / 1e12 / gemm[basis]
    return rec


def exit_code(records: list[dict[str, Any]]) -> int:
    return 1 if any(r["status"] in ("fail", "error") for r in records) else 0


# ---- comparisons --------------------------------------------------------------------------------
def compare_values(a: Any, b: Any, rtol: float, atol: float = 0.0, scale: float | None = None) -> dict[str, Any]:
    """Elementwise |a - b| <= atol + rtol * s, with s = max(|a|, |b|) per element, or ``scale``
    for all elements (for values near zero whose size is set by others, e.g. features)."""
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return {"ok": False, "shape_a": list(a.shape), "shape_b": list(b.shape), "max_abs_diff": None,
                "max_rel_diff": None}
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    finite = np.isfinite(a) & np.isfinite(b)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(same, 0.0, np.where(finite, np.abs(a - b), np.inf))
    s = np.maximum(np.abs(np.where(finite, a, 0)), np.abs(np.where(finite, b, 0))) if scale is None else \
        np.full(a.shape, float(scale))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / np.where(s > 0, s, np.inf))
        rel = np.where((diff > 0) & (s == 0), np.inf, rel)
    ok = bool(np.all(diff <= atol + rtol * s)) if a.size else True
    return {"ok": ok, "max_abs_diff": float(diff.max()) if a.size else 0.0,
            "max_rel_diff": float(rel.max()) if a.size else 0.0, "n": int(a.size)}


def compare_neighbours(idx_dev: Any, idx_cpu: Any, dist_dev: Any, dist_cpu: Any,
                       rtol: float = 1e-6) -> dict[str, Any]:
    """Exact neighbours: the index arrays equal (pgan's ties go to the lower row on both sides)
    and the distances equal to ``rtol``."""
    import numpy as np

    idx_dev, idx_cpu = np.asarray(idx_dev), np.asarray(idx_cpu)
    out: dict[str, Any] = {"indices_equal": False, "rows_differing": None, "first_row_differing": None}
    if idx_dev.shape == idx_cpu.shape:
        bad = np.flatnonzero((idx_dev != idx_cpu).reshape(len(idx_dev), -1).any(axis=1))
        out.update(indices_equal=not len(bad), rows_differing=int(len(bad)),
                   first_row_differing=int(bad[0]) if len(bad) else None)
        if len(bad):
            r = int(bad[0])
            out["example"] = {"row": r, "device": idx_dev[r].tolist()[:12], "cpu": idx_cpu[r].tolist()[:12]}
    d = compare_values(dist_dev, dist_cpu, rtol=rtol)
    out.update(max_abs_diff=d["max_abs_diff"], max_rel_diff=d["max_rel_diff"], distances_ok=d["ok"])
    out["ok"] = bool(out["indices_equal"] and d["ok"])
    return out


def numeric_leaves(obj: Any, prefix: str = "") -> dict[str, float]:
    """Every number in a JSON-like tree, by its path (``a.b[2].c``); booleans and strings left out."""
    out: dict[str, float] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(numeric_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(numeric_leaves(v, f"{prefix}[{i}]"))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix] = float(obj)
    return out


def compare_trees(a: Any, b: Any, rtol: float, skip: tuple[str, ...] = ("seconds",)) -> dict[str, Any]:
    """Every number of two JSON results, to ``rtol``; the worst key is named."""
    la, lb = numeric_leaves(a), numeric_leaves(b)
    la = {k: v for k, v in la.items() if not any(s in k for s in skip)}
    lb = {k: v for k, v in lb.items() if not any(s in k for s in skip)}
    missing = sorted(set(la) ^ set(lb))
    worst, worst_rel, ok = None, 0.0, not missing
    for k in sorted(set(la) & set(lb)):
        c = compare_values(la[k], lb[k], rtol=rtol, atol=1e-12)
        if c["max_rel_diff"] > worst_rel:
            worst, worst_rel = k, c["max_rel_diff"]
        ok = ok and c["ok"]
    return {"ok": ok, "values": len(la), "worst_key": worst, "max_rel_diff": worst_rel, "keys_missing": missing[:10]}


# ---- the context a check runs in ----------------------------------------------------------------
@dataclass
class CliResult:
    rc: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.stdout[self.stdout.index("{"):])

    def last_line(self) -> str:
        lines = [ln for ln in self.stderr.strip().splitlines() if ln.strip()]
        return lines[-1][:300] if lines else f"exit code {self.rc}"


@dataclass
class Ctx:
    """Where and how the checks run. ``dev`` is the torch device of the GPU side (``cpu`` in a
    dry run), ``faiss_dev`` its FAISS device (None when FAISS sees no GPU)."""

    mode: str  # "gpu" or "dry"
    work: Path
    deadline: float  # time.time() at which the budget ends
    cli_mode: str = "subprocess"  # how "fresh process" pgan commands run: subprocess or inprocess
    dev: str = "cuda"
    faiss_dev: str | None = None
    faiss_gpus: int = 0
    n_gpus: int = 0
    checks_file: str | None = None  # checks from this file instead of CHECKS (the tests' stand-ins)

    @classmethod
    def make(cls, mode: str, work: Path, deadline: float, cli_mode: str) -> Ctx:
        ctx = cls(mode=mode, work=Path(work), deadline=deadline, cli_mode=cli_mode)
        if mode == "dry":
            ctx.dev, ctx.faiss_dev, ctx.faiss_gpus, ctx.n_gpus = "cpu", "cpu", 0, 0
            return ctx
        import torch

        from pgan_cli.devices import faiss_num_gpus

        ctx.dev, ctx.n_gpus = "cuda", torch.cuda.device_count()
        ctx.faiss_gpus = faiss_num_gpus()
        ctx.faiss_dev = "cuda:0" if ctx.faiss_gpus else None
        return ctx

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "work": str(self.work), "deadline": self.deadline, "cli_mode": self.cli_mode,
                "checks_file": self.checks_file}

    # -- time ----------------------------------------------------------------------------------
    def remaining(self) -> float:
        return self.deadline - time.time()

    def timeout(self) -> float:
        """For a subprocess: what is left of the budget (at least a few seconds, so it can fail)."""
        return max(5.0, self.remaining())

    def sync(self) -> None:
        if self.dev.startswith("cuda"):
            import torch

            torch.cuda.synchronize()

    def timed(self, fn: Callable[[], Any]) -> tuple[Any, float]:
        self.sync()
        t0 = time.perf_counter()
        out = fn()
        self.sync()
        return out, time.perf_counter() - t0

    def timed_warm(self, fn: Callable[[], Any]) -> tuple[Any, float, float]:
        """Run twice: ``(result of the second run, its seconds, the first (cold) run's seconds)``.
        The first run on a device pays for CUDA/cuBLAS/FAISS set-up; the second is the work."""
        _, cold = self.timed(fn)
        out, warm = self.timed(fn)
        return out, warm, cold

    # -- files ---------------------------------------------------------------------------------
    def item_dir(self, name: str) -> Path:
        d = self.work / name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        return d

    def data(self, name: str) -> Path:
        """A dataset file made with pgan (``digits8``/``digits16``/``digits32``), shared by the checks;
        ``digits8:members`` is a part of the split :data:`SMALL_SPLIT` (90 rows)."""
        if ":" in name:
            base, part = name.split(":", 1)
            return self.split(base, SMALL_SPLIT)[part]
        path = self.work / "data" / f"{name}.h5"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            size = int(name.removeprefix("digits"))
            self.pgan_ok("data", "digits", "--size", size, "-o", path)
        return path

    def split(self, data: str, fractions: str) -> dict[str, Path]:
        """``pgan data split`` of a dataset into members, holdout, reference (and the rest)."""
        n = len(fractions.split(","))
        names = ["members", "holdout", "reference", "rest"][:n]
        out = self.work / "data" / f"{data}-split-{fractions.replace(',', '_')}"
        if not (out / "members.h5").exists():
            self.pgan_ok("data", "split", self.data(data), "--out-dir", out, "--fractions", fractions,
                         "--names", ",".join(names), "--seed", 0)
        return {k: out / f"{k}.h5" for k in names}

    def cpu_checkpoint(self, data: Path, key: str, *options: Any) -> Path:
        """A few generator steps trained on the CPU: the white-box inputs of other checks."""
        path = self.work / "data" / f"{key.replace(':', '-')}.pt"
        if not path.exists():
            self.pgan_ok("train", data, "--device", "cpu", "-o", path, "--checkpoint-every", 0, *options)
        return path

    # -- the command line ----------------------------------------------------------------------
    def pgan(self, *args: Any, fresh: bool = False, timeout: float | None = None) -> CliResult:
        """Run ``pgan ARGS``; ``fresh``: in a new process (when ``cli_mode`` is subprocess), as a
        user runs it (what training and its resume need: nothing carried over in memory)."""
        argv = [str(a) for a in args]
        if "-q" not in argv and "--quiet" not in argv:
            argv.append("-q")
        if fresh and self.cli_mode == "subprocess":
            return run_subprocess([sys.executable, "-m", "pgan_cli", *argv], timeout or self.timeout())
        return run_inprocess(argv)

    def pgan_ok(self, *args: Any, fresh: bool = False) -> CliResult:
        r = self.pgan(*args, fresh=fresh)
        if r.rc != 0:
            shown = " ".join(str(a) for a in args[:3])
            raise Failed(f"pgan {shown} ... exited {r.rc}: {r.last_line()}", r.stderr[-4000:])
        return r

    def need_faiss_gpu(self, device: str | None = None) -> str:
        if self.faiss_dev is None:
            raise Skip("FAISS sees no GPU (faiss-cpu is installed: install the gpu extra, faiss-gpu)")
        return device or self.faiss_dev


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


_CHILD_GROUPS: set[int] = set()  # process groups of the commands running now (killed with the worker)


def run_subprocess(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> CliResult:
    """Run a command in its own process group (torchrun and its ranks, pgan and its children), all
    of which are killed when it runs past ``timeout`` or when the worker running it is stopped."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or child_env(),
                         start_new_session=True)
    _CHILD_GROUPS.add(p.pid)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(p.pid)
        out, err = p.communicate()
        return CliResult(124, out, err + f"\ntimed out after {timeout:.0f} s", time.perf_counter() - t0)
    finally:
        _CHILD_GROUPS.discard(p.pid)
    return CliResult(p.returncode, out, err, time.perf_counter() - t0)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_children(signum: int, frame: Any) -> None:
    """The worker's SIGTERM handler: kill the commands it started, then exit."""
    for g in list(_CHILD_GROUPS):
        _kill_group(g)
    os._exit(128 + signum)


def run_inprocess(argv: list[str]) -> CliResult:
    """``pgan ARGV`` in this process (the typer app, as the tests' ``cli`` fixture runs it)."""
    from typer.testing import CliRunner

    from pgan_cli import console
    from pgan_cli.cli.app import app, normalize_argv

    t0 = time.perf_counter()
    console.configure(quiet=False, verbose=False, provenance=True)
    try:
        r = CliRunner().invoke(app, normalize_argv(argv), catch_exceptions=True)
    finally:
        console.configure(quiet=True, verbose=False, provenance=True)
    err = r.stderr
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        err += "".join(traceback.format_exception(*r.exc_info))
    return CliResult(r.exit_code, r.stdout, err, time.perf_counter() - t0)


# ---- data ---------------------------------------------------------------------------------------
def clustered(n: int, d: int, rng, centres) -> Any:
    import numpy as np

    x = centres[rng.integers(0, len(centres), n)].astype(np.float32)
    x += rng.standard_normal((n, d), dtype=np.float32)
    return x


def knn_data(nq: int, nr: int, d: int, seed: int = 0) -> tuple[Any, Any]:
    """Clustered references with planted exact duplicates (groups of 2 and 3 rows: ties that pgan
    breaks by the lower row), and queries of which some are exact copies of duplicated rows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, d)).astype(np.float32) * 3
    ref = clustered(nr, d, rng, centres)
    n_groups = max(2, nr // 100)
    rows = rng.choice(nr, size=3 * n_groups, replace=False).reshape(n_groups, 3)
    for g, (a, b, c) in enumerate(rows):
        ref[b] = ref[a]
        if g % 2:
            ref[c] = ref[a]
    q = clustered(nq, d, rng, centres)
    n_copy = min(nq // 4, n_groups)
    q[:n_copy] = ref[rows[:n_copy, 0]]
    return np.ascontiguousarray(q), np.ascontiguousarray(ref)


def two_samples(n: int, d: int, seed: int = 0) -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = rng.standard_normal((n, d))
    y[:, : max(1, d // 8)] += 0.3
    return x, y


# ---- checks -------------------------------------------------------------------------------------
def check_gemm(ctx: Ctx, p: dict) -> dict:
    """The device's own GEMM rates (best of 3 after a warm-up), and fp64 products against the CPU."""
    import numpy as np
    import torch

    n = int(p["n"])
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g)
    b = torch.randn(n, n, generator=g)
    flops = 2.0 * n ** 3

    def rate(x, y, tf32: bool = False) -> float:
        prev = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        try:
            x, y = x.to(ctx.dev), y.to(ctx.dev)
            ctx.timed(lambda: x @ y)
            best = min(ctx.timed(lambda: x @ y)[1] for _ in range(3))
        finally:
            torch.backends.cuda.matmul.allow_tf32 = prev
        return best

    t_dev = rate(a, b)
    rates = {"fp32": flops / t_dev / 1e12}
    if ctx.dev.startswith("cuda"):
        rates["tf32"] = flops / rate(a, b, tf32=True) / 1e12
        rates["bf16"] = flops / rate(a.bfloat16(), b.bfloat16()) / 1e12
    rates["fp64"] = flops / rate(a.double(), b.double()) / 1e12
    t_cpu = min(_timed_cpu(lambda: a @ b) for _ in range(3))
    m = min(n, 1024)
    ad, bd = a[:m, :m].double(), b[:m, :m].double()
    prod_dev = (ad.to(ctx.dev) @ bd.to(ctx.dev)).cpu().numpy()
    cmp = compare_values(prod_dev, (ad @ bd).numpy(), rtol=0, atol=1e-12 * float(np.abs((ad @ bd).numpy()).max()))
    ok = cmp["ok"] and all(math.isfinite(v) and v > 0 for v in rates.values())
    return outcome(t_cpu, t_dev, ok, None if ok else f"fp64 product differs from the CPU's by {cmp['max_abs_diff']:.3g}",
                   tflops=rates, fp64_product=cmp, n=n, cpu_fp32_tflops=flops / t_cpu / 1e12)


def _timed_cpu(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _knn_pair(ctx: Ctx, p: dict, device: str, **kw: Any) -> dict:
    from pgan_cli.neighbors import knn

    q, r = knn_data(int(p["nq"]), int(p["nr"]), int(p["d"]))
    k = int(p["k"])
    knn(q[:8], r[: 4 * k], k, device="cpu", **kw)  # warm-up: the CPU side is timed warm too
    cpu, cpu_s = ctx.timed(lambda: knn(q, r, k, device="cpu", **kw))
    dev, dev_s, cold_s = ctx.timed_warm(lambda: knn(q, r, k, device=device, **kw))
    cmp = compare_neighbours(dev.indices, cpu.indices, dev.distances, cpu.distances)
    ok = cmp["ok"] and dev.device == device
    why = None
    if dev.device != device:
        why = f"pgan searched on {dev.device}, not {device}"
    elif not cmp["indices_equal"]:
        why = f"neighbour indices differ in {cmp['rows_differing']} of {len(q)} rows"
    elif not cmp["distances_ok"]:
        why = f"distances differ by {cmp['max_rel_diff']:.3g} relative"
    cmp.pop("ok")
    return outcome(cpu_s, dev_s, ok, why, flops=2.0 * len(q) * len(r) * q.shape[1], basis="fp32",
                   device=dev.device, cold_s=cold_s, **cmp)


def check_knn(ctx: Ctx, p: dict) -> dict:
    return _knn_pair(ctx, p, ctx.need_faiss_gpu())


def check_knn_sharded(ctx: Ctx, p: dict) -> dict:
    if ctx.mode == "dry":
        return _knn_pair(ctx, p, "cpu")  # the CPU stands in for the shards
    ctx.need_faiss_gpu()
    if ctx.faiss_gpus < 2:
        raise Skip(f"FAISS sees {ctx.faiss_gpus} GPU: cuda:all has nothing to shard (needs 2 or more)")
    return _knn_pair(ctx, p, "cuda:all")


def check_knn_variants(ctx: Ctx, p: dict) -> dict:
    """Cosine and exclude-self (exact: equal neighbours) and IVF (approximate: recall no worse)."""
    from pgan_cli.neighbors import knn

    device = ctx.need_faiss_gpu()
    q, r = knn_data(int(p["nq"]), int(p["nr"]), int(p["d"]))
    k = int(p["k"])
    cpu_s = dev_s = 0.0
    parts, whys = {}, []
    for name, query, kw in (("cosine", q, {"metric": "cosine"}), ("exclude_self", r, {"exclude_self": True})):
        cpu, t_c = ctx.timed(lambda: knn(query, r, k, device="cpu", **kw))
        dev, t_d = ctx.timed(lambda: knn(query, r, k, device=device, **kw))
        cpu_s, dev_s = cpu_s + t_c, dev_s + t_d
        cmp = compare_neighbours(dev.indices, cpu.indices, dev.distances, cpu.distances)
        cmp["device"] = dev.device
        parts[name] = cmp
        if not cmp["ok"] or dev.device != device:
            whys.append(f"{name}: {cmp['rows_differing']} rows differ (max rel distance diff {cmp['max_rel_diff']:.3g}, "
                        f"on {dev.device})")
    cpu, t_c = ctx.timed(lambda: knn(q, r, k, index="ivf", device="cpu", check_recall=True))
    dev, t_d = ctx.timed(lambda: knn(q, r, k, index="ivf", device=device, check_recall=True))
    cpu_s, dev_s = cpu_s + t_c, dev_s + t_d
    parts["ivf"] = {"recall_cpu": cpu.recall, "recall_device": dev.recall, "device": dev.device}
    if dev.recall is None or dev.recall < (cpu.recall or 0) - 0.02:
        whys.append(f"ivf recall on the device {dev.recall} < CPU {cpu.recall} - 0.02")
    return outcome(cpu_s, dev_s, not whys, "; ".join(whys) or None, **parts)


def check_knn_cli(ctx: Ctx, p: dict) -> dict:
    """``pgan knn`` on NPY files, on the device and on the CPU; also ``--exclude-self`` (the CPU
    takes the symmetric shared pass there, the device a plain search: the answers must agree)."""
    import h5py
    import numpy as np

    device = ctx.need_faiss_gpu()
    d = ctx.item_dir(f"knn-cli-{p['label_key']}")
    q, r = knn_data(int(p["nq"]), int(p["nr"]), int(p["d"]))
    np.save(d / "q.npy", q)
    np.save(d / "r.npy", r)
    k = str(p["k"])
    times = {"cpu": 0.0, "dev": 0.0}
    parts, whys = {}, []
    for name, query, extra in (("search", d / "q.npy", []), ("exclude_self", d / "r.npy", ["--exclude-self"])):
        res = {}
        for side, dv in (("cpu", "cpu"), ("dev", device)):
            out = d / f"{name}-{side}.h5"
            summ = ctx.pgan_ok("knn", query, d / "r.npy", "-k", k, "--device", dv, "-o", out, "--json", *extra).json()
            times[side] += summ["seconds_index"] + summ["seconds_search"]
            with h5py.File(out, "r") as f:
                res[side] = (f["indices"][:], f["distances"][:], summ["device"])
        cmp = compare_neighbours(res["dev"][0], res["cpu"][0], res["dev"][1], res["cpu"][1])
        cmp["device"] = res["dev"][2]
        parts[name] = cmp
        if not cmp["ok"] or res["dev"][2] != device:
            whys.append(f"{name}: {cmp['rows_differing']} rows differ (on {res['dev'][2]})")
    return outcome(times["cpu"], times["dev"], not whys, "; ".join(whys) or None,
                   flops=2.0 * (len(q) + len(r)) * len(r) * r.shape[1], basis="fp32", **parts)


def check_mmd(ctx: Ctx, p: dict) -> dict:
    """Every permutation's MMD² (float64 on both sides) to 1e-9 relative; p-values equal."""
    import numpy as np

    from pgan_cli.metrics.mmd import linear_time, resolve_bandwidth, unbiased_with_permutations

    n, dim, perms = int(p["n"]), int(p["d"]), int(p["permutations"])
    x, y = two_samples(n, dim)
    total = 2 * n
    cpu_s = dev_s = 0.0
    flops = 0.0
    parts, whys = {}, []
    unbiased_with_permutations(x[:8], y[:8], "rbf", 1.0, 2, 0, "cpu")  # warm-up of the CPU side (and
    linear_time(x[:8], y[:8], "rbf", 1.0, 0, "cpu")  # its first import of scipy.stats)
    for kernel, b in (("rbf", perms), ("laplace", 0), ("poly", 0)):
        sigma, _ = resolve_bandwidth(x, y, kernel, None, 0)  # None: the median heuristic (none for poly)
        cpu, t_c = ctx.timed(lambda: unbiased_with_permutations(x, y, kernel, sigma, b, 0, "cpu"))
        dev, t_d, cold = ctx.timed_warm(lambda: unbiased_with_permutations(x, y, kernel, sigma, b, 0, ctx.dev))
        cpu_s, dev_s = cpu_s + t_c, dev_s + t_d
        flops += 2.0 * total * total * dim + 2.0 * total * total * (b + 1)
        obs = compare_values(dev[0], cpu[0], rtol=1e-9)
        scale = float(np.abs(cpu).max()) or 1.0
        allp = compare_values(dev, cpu, rtol=1e-9, scale=scale)
        p_cpu = p_dev = None
        if b:
            p_cpu = float((1 + np.count_nonzero(cpu[1:] >= cpu[0])) / (b + 1))
            p_dev = float((1 + np.count_nonzero(dev[1:] >= dev[0])) / (b + 1))
        parts[kernel] = {"mmd2_cpu": float(cpu[0]), "mmd2_device": float(dev[0]), "rel_diff": obs["max_rel_diff"],
                         "permutations": b, "perm_max_rel_diff": allp["max_rel_diff"], "p_cpu": p_cpu,
                         "p_device": p_dev, "cold_s": cold}
        if not (obs["ok"] and allp["ok"] and p_cpu == p_dev):
            whys.append(f"{kernel}: MMD² differs by {obs['max_rel_diff']:.3g} relative (permutations "
                        f"{allp['max_rel_diff']:.3g}), p {p_dev} vs {p_cpu}")
    sigma, _ = resolve_bandwidth(x, y, "rbf", "median", 0)
    (s_c, p_c), t_c = ctx.timed(lambda: linear_time(x, y, "rbf", sigma, 0, "cpu"))
    (s_d, p_d), t_d = ctx.timed(lambda: linear_time(x, y, "rbf", sigma, 0, ctx.dev))
    lin = compare_values(s_d, s_c, rtol=1e-9)
    parts["linear"] = {"mmd2_cpu": s_c, "mmd2_device": s_d, "rel_diff": lin["max_rel_diff"], "p_cpu": p_c, "p_device": p_d}
    if not lin["ok"] or abs(p_c - p_d) > 1e-9:
        whys.append(f"linear: MMD² differs by {lin['max_rel_diff']:.3g} relative")
    cpu_s, dev_s = cpu_s + t_c, dev_s + t_d
    if p.get("cli"):  # the command: device resolution, file reading, the JSON
        d = ctx.item_dir(f"mmd-cli-{p['label_key']}")
        np.save(d / "x.npy", x)
        np.save(d / "y.npy", y)
        res = {side: ctx.pgan_ok("mmd", d / "x.npy", d / "y.npy", "--permutations", perms, "--device", dv,
                                 "--json").json() for side, dv in (("cpu", "cpu"), ("dev", ctx.dev))}
        c = compare_values(res["dev"]["mmd2"], res["cpu"]["mmd2"], rtol=1e-9)
        parts["cli"] = {"mmd2_cpu": res["cpu"]["mmd2"], "mmd2_device": res["dev"]["mmd2"],
                        "rel_diff": c["max_rel_diff"], "p_cpu": res["cpu"]["p_value"], "p_device": res["dev"]["p_value"]}
        if not c["ok"] or res["cpu"]["p_value"] != res["dev"]["p_value"]:
            whys.append(f"pgan mmd: MMD² differs by {c['max_rel_diff']:.3g} relative")
    return outcome(cpu_s, dev_s, not whys, "; ".join(whys) or None, flops=flops, basis="fp64", **parts)


def _read_log(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []


def _steady_rate(records: list[dict]) -> float | None:
    """Median images/s of the logged steps after the first three (cuDNN autotuning, warm-up)."""
    import numpy as np

    rates = [r["images_per_s"] for r in records[3:] if r.get("images_per_s")]
    return float(np.median(rates)) if rates else None


def _finite_losses(records: list[dict]) -> bool:
    return bool(records) and all(isinstance(r.get(k), (int, float)) and math.isfinite(r[k])
                                 for r in records for k in ("loss_d", "loss_g"))


def make_train_check(precision: str) -> Callable[[Ctx, dict], dict]:
    def check_train(ctx: Ctx, p: dict) -> dict:
        """``pgan train`` on the device and ``--resume`` to twice the steps (fresh processes), the
        same run on the CPU; first-step losses compared (same seeded weights, batch and noise)."""
        from pgan_cli.gan.checkpoint import read_checkpoint_file

        prec, notes = precision, []
        if precision == "fp16" and not ctx.dev.startswith("cuda"):
            prec = "bf16"
            notes.append("dry run: bf16 stands in for fp16 (fp16 AMP needs CUDA)")
        steps = int(p["steps"])
        data = ctx.data(p["data"])
        d = ctx.item_dir(f"train-{precision}-{p['label_key']}")
        base = ["train", data, "--arch", p["arch"], "--steps", steps, "--batch-size", p["batch"], "--width",
                p["width"], "--latent-dim", p["latent"], "--precision", prec, "--log-every", 1,
                "--checkpoint-every", 0, "--json", *p.get("extra", [])]
        dev_run = ctx.pgan_ok(*base, "--device", ctx.dev, "-o", d / "dev.pt", "--log", d / "dev.jsonl", fresh=True)
        resumed = ctx.pgan_ok("train", data, "--resume", d / "dev.pt", "--steps", 2 * steps, "--device", ctx.dev,
                              "--log", d / "resume.jsonl", "--log-every", 1, "--checkpoint-every", 0, "--json",
                              fresh=True)
        s_dev, s_res = dev_run.json(), resumed.json()
        blob = read_checkpoint_file(d / "dev.pt")
        log_dev, log_res = _read_log(d / "dev.jsonl"), _read_log(d / "resume.jsonl")
        whys = []
        if s_dev["steps"] != steps:
            whys.append(f"the device run stopped at {s_dev['steps']} of {steps} steps")
        if s_res["steps"] != 2 * steps or int(blob["progress"]["step"]) != 2 * steps:
            whys.append(f"the resumed run reports {s_res['steps']} steps, its checkpoint "
                        f"{blob['progress']['step']}, not {2 * steps}")
        if not log_res or log_res[0]["step"] != steps + 1:
            whys.append(f"the resumed log starts at step {log_res[0]['step'] if log_res else None}, not {steps + 1}")
        if not (_finite_losses(log_dev) and _finite_losses(log_res)):
            whys.append("non-finite losses on the device")
        scaler = (blob.get("extra") or {}).get("grad_scaler")
        if prec == "fp16" and not scaler:
            whys.append("the fp16 checkpoint holds no GradScaler state")
        detail: dict[str, Any] = {"precision": prec, "arch": p["arch"], "steps": steps, "resumed_to": s_res["steps"],
                                  "device_wall_s": s_dev["wall_time"], "device_img_per_s": _steady_rate(log_dev),
                                  "grad_scaler": scaler, "notes": notes}
        cpu_s = None
        if prec == "fp16":
            detail["notes"].append("no CPU baseline: fp16 AMP needs CUDA")
        else:
            s_cpu = ctx.pgan_ok(*base, "--device", "cpu", "-o", d / "cpu.pt", "--log", d / "cpu.jsonl").json()
            log_cpu = _read_log(d / "cpu.jsonl")
            cpu_s = s_cpu["wall_time"]
            detail["cpu_img_per_s"] = _steady_rate(log_cpu)
            if log_cpu and log_dev:
                first = {k: compare_values(log_dev[0][k], log_cpu[0][k], rtol=0)["max_rel_diff"]
                         for k in ("loss_d", "loss_g", "d_real", "d_fake") if k in log_cpu[0] and k in log_dev[0]}
                detail["first_step_rel_diff"] = first
                # dcgan's first critic step is one forward pass from identical weights, batch and
                # noise: only rounding separates loss_d, d_real and d_fake of the two (loss_g follows
                # the first Adam step, whose sign(g) flips with rounding where g is near 0; the
                # WGAN-GP critic has taken 5 steps with the penalty's random mixing drawn by each
                # device's own generator: both reported only)
                tol = 1e-2 if prec == "fp32" else 5e-2
                worst = max((v for k, v in first.items() if k != "loss_g"), default=0.0)
                if p["arch"] == "dcgan" and worst > tol:
                    whys.append(f"first-step critic outputs differ from the CPU run's by {worst:.3g} relative (> {tol})")
        return outcome(cpu_s, s_dev["wall_time"], not whys, "; ".join(whys) or None, **detail)

    return check_train


def check_sample(ctx: Ctx, p: dict) -> dict:
    """``pgan sample`` on the device: the same latents and labels as on the CPU, samples within TF32."""
    from pgan_cli.dataset import read_dataset

    data = ctx.data(p["data"])
    ck = ctx.cpu_checkpoint(data, f"{p['data']}-cond-w{p['width']}-z{p['latent']}", "--conditional", "--steps", 3,
                            "--width", p["width"], "--latent-dim", p["latent"], "--batch-size", 32)
    d = ctx.item_dir(f"sample-{p['label_key']}")
    res = {}
    for side, dv in (("cpu", "cpu"), ("dev", ctx.dev)):
        r = ctx.pgan_ok("sample", ck, "-n", p["n"], "--device", dv, "-o", d / f"{side}.h5", "--json")
        res[side] = (read_dataset(d / f"{side}.h5"), r.seconds)
    a, b = res["dev"][0], res["cpu"][0]
    lat = compare_values(a.latents, b.latents, rtol=0)
    lab = compare_values(a.labels, b.labels, rtol=0)
    smp = compare_values(a.samples, b.samples, rtol=0, atol=TF32_TOL)
    ok = lat["ok"] and lab["ok"] and smp["ok"]
    why = None if ok else (f"latents equal {lat['ok']}, labels equal {lab['ok']}, samples differ by up to "
                           f"{smp['max_abs_diff']:.3g}")
    return outcome(res["cpu"][1], res["dev"][1], ok, why, samples=smp, latents_equal=lat["ok"],
                   labels_equal=lab["ok"], n=int(p["n"]))


def _torchrun(ctx: Ctx, nproc: int, *args: Any, env: dict[str, str] | None = None) -> CliResult:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
           *[str(a) for a in args]]
    return run_subprocess(cmd, ctx.timeout(), env=env or child_env(OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1")))


def _nproc(ctx: Ctx, p: dict) -> int:
    want = int(p.get("nproc", 2))
    return want if ctx.mode == "dry" else max(1, min(want, ctx.n_gpus))


def check_dist_probe(ctx: Ctx, p: dict) -> dict:
    """pgan's torchrun helper under torchrun: process group (NCCL on GPUs), broadcast of a module,
    gradient all-reduce, barrier and teardown; at world size 1 the group is made anyway (pgan's
    trainer leaves it off there), so one GPU still exercises NCCL."""
    nproc = _nproc(ctx, p)
    r = _torchrun(ctx, nproc, Path(__file__), "--dist-probe", ctx.dev)
    ranks = [json.loads(ln.split(" ", 1)[1]) for ln in r.stdout.splitlines() if ln.startswith("DIST-PROBE ")]
    whys = []
    if r.rc != 0:
        raise Failed(f"torchrun --nproc-per-node {nproc} exited {r.rc}: {r.last_line()}", r.stderr[-4000:])
    if len(ranks) != nproc:
        whys.append(f"{len(ranks)} of {nproc} ranks reported")
    whys += [f"rank {x['rank']}: {x['why']}" for x in ranks if not x["ok"]]
    backend = ranks[0]["backend"] if ranks else None
    return outcome(None, None, not whys, "; ".join(whys) or None, nproc=nproc, backend=backend, ranks=ranks,
                   launcher_s=r.seconds)


def check_torchrun_train(ctx: Ctx, p: dict) -> dict:
    """``torchrun -m pgan_cli train`` on the device, then its resume under torchrun."""
    from pgan_cli.gan.checkpoint import read_checkpoint_file

    nproc = _nproc(ctx, p)
    data = ctx.data(p["data"])
    d = ctx.item_dir(f"torchrun-{p['label_key']}")
    steps = int(p["steps"])
    common = ["--device", ctx.dev, "--json", "-q", "--checkpoint-every", 0]
    first = _torchrun(ctx, nproc, "-m", "pgan_cli", "--", "train", data, "--steps", steps, "--batch-size", p["batch"],
                      "--width", p["width"], "--latent-dim", p["latent"], "-o", d / "dist.pt", *common)
    if first.rc != 0:
        raise Failed(f"torchrun train exited {first.rc}: {first.last_line()}", first.stderr[-4000:])
    second = _torchrun(ctx, nproc, "-m", "pgan_cli", "--", "train", data, "--resume", d / "dist.pt", "--steps",
                       2 * steps, *common)
    if second.rc != 0:
        raise Failed(f"torchrun train --resume exited {second.rc}: {second.last_line()}", second.stderr[-4000:])
    s1, s2 = first.json(), second.json()
    blob = read_checkpoint_file(d / "dist.pt")
    prog = blob["progress"]
    whys = []
    if s1["world_size"] != nproc or s1["steps"] != steps:
        whys.append(f"first run: world size {s1['world_size']}, {s1['steps']} steps (want {nproc}, {steps})")
    if prog["step"] != 2 * steps or prog["world_size"] != nproc:
        whys.append(f"resumed checkpoint: step {prog['step']}, world size {prog['world_size']}")
    notes = []
    if nproc == 1:
        notes.append("world size 1: pgan's trainer makes no process group there (dist-probe covers NCCL)")
    return outcome(None, s1["wall_time"] + s2["wall_time"], not whys, "; ".join(whys) or None, nproc=nproc,
                   steps=[s1["steps"], s2["steps"]], launcher_s=first.seconds + second.seconds, notes=notes)


def _find_key(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            got = _find_key(v, key)
            if got is not None:
                return got
    return None


def check_attack(ctx: Ctx, p: dict) -> dict:
    """``pgan attack --device cuda`` against ``--device cpu`` on the same files and generator."""
    import h5py

    parts = ctx.split(p["data"], p["fractions"])
    ck = ctx.cpu_checkpoint(parts["members"], f"{p['data']}-members-{p['fractions'].replace(',', '_')}-w{p['width']}"
                            f"-z{p['latent']}-s{p['train_steps']}",
                            "--steps", p["train_steps"], "--width", p["width"], "--latent-dim", p["latent"],
                            "--batch-size", 32)
    d = ctx.item_dir(f"attack-{p['label_key']}")
    ctx.pgan_ok("sample", ck, "-n", p["n_synthetic"], "--device", "cpu", "-o", d / "S.h5")
    res = {}
    for side, dv in (("cpu", "cpu"), ("dev", ctx.dev)):
        r = ctx.pgan_ok("attack", "--members", parts["members"], "--holdout", parts["holdout"], "--synthetic",
                        d / "S.h5", "--reference", parts["reference"], "--generator", ck, "--methods", ATTACK_METHODS,
                        "--bootstrap", 0, "--scores", d / f"scores-{side}.h5", "--device", dv, "--json")
        with h5py.File(d / f"scores-{side}.h5", "r") as f:
            scores = {k: f["scores"][k][:] for k in f["scores"]} if "scores" in f else {}
        res[side] = (r.json(), r.seconds, scores)
    a, b = res["dev"][0], res["cpu"][0]
    whys, aucs = [], {}
    for name, rep in b["attacks"].items():
        other = a["attacks"].get(name)
        if other is None:
            whys.append(f"{name} missing on the device")
            continue
        white = bool(rep.get("white_box"))
        diff = abs((other.get("auc") or 0.0) - (rep.get("auc") or 0.0))
        tol = WHITE_BOX_AUC_TOL if white else 1e-9
        aucs[name] = {"auc_cpu": rep.get("auc"), "auc_device": other.get("auc"), "white_box": white}
        if diff > tol:
            whys.append(f"{name}: AUC {other.get('auc'):.4f} on the device, {rep.get('auc'):.4f} on the CPU")
        if not white and name in res["dev"][2] and name in res["cpu"][2]:
            c = compare_values(res["dev"][2][name], res["cpu"][2][name], rtol=1e-6, atol=1e-9)
            aucs[name]["scores_max_rel_diff"] = c["max_rel_diff"]
            if not c["ok"]:
                whys.append(f"{name}: scores differ by {c['max_rel_diff']:.3g} relative")
    dist = compare_trees(a.get("distances"), b.get("distances"), rtol=1e-5)
    if not dist["ok"]:
        whys.append(f"distance metrics differ ({dist['worst_key']}: {dist['max_rel_diff']:.3g} relative)")
    knn_dev = _find_key(a.get("provenance"), "knn_device")
    return outcome(res["cpu"][1], res["dev"][1], not whys, "; ".join(whys) or None, attacks=aucs, distances=dist,
                   knn_device=knn_dev, candidates=(a.get("sets") or {}).get("candidates"))


def _features_compare(a: Any, b: Any) -> dict:
    import numpy as np

    scale = float(np.abs(b).max()) or 1.0
    return compare_values(a, b, rtol=TF32_TOL, scale=scale)


def check_embed_autoencoder(ctx: Ctx, p: dict) -> dict:
    """The CPU-fitted autoencoder's features on the device against the CPU; a fit on the device
    (timed against the CPU fit) must reach a similar final MSE."""
    import numpy as np

    data = ctx.data(p["data"])
    d = ctx.item_dir(f"embed-ae-{p['label_key']}")
    fit = {}
    for side, dv in (("cpu", "cpu"), ("dev", ctx.dev)):
        r = ctx.pgan_ok("embed", data, "--method", "autoencoder", "--epochs", p["epochs"], "--save-model",
                        d / f"model-{side}.npz", "-o", d / f"fit-{side}.npy", "--device", dv, "--json")
        fit[side] = (r.json()["embedding"]["final_mse"], r.seconds)
    ctx.pgan_ok("embed", data, "--model", d / "model-cpu.npz", "-o", d / "cpu-model-on-dev.npy", "--device", ctx.dev)
    feats = _features_compare(np.load(d / "cpu-model-on-dev.npy"), np.load(d / "fit-cpu.npy"))
    mse_ratio = fit["dev"][0] / fit["cpu"][0] if fit["cpu"][0] else float("inf")
    whys = []
    if not feats["ok"]:
        whys.append(f"features differ by {feats['max_rel_diff']:.3g} of their scale")
    if not (math.isfinite(mse_ratio) and 1 / 1.5 <= mse_ratio <= 1.5):
        whys.append(f"device fit's final MSE {fit['dev'][0]:.4g} vs CPU {fit['cpu'][0]:.4g}")
    return outcome(fit["cpu"][1], fit["dev"][1], not whys, "; ".join(whys) or None, features=feats,
                   final_mse_cpu=fit["cpu"][0], final_mse_device=fit["dev"][0], epochs=int(p["epochs"]))


def check_embed_discriminator(ctx: Ctx, p: dict) -> dict:
    import numpy as np

    data = ctx.data(p["data"])
    ck = ctx.cpu_checkpoint(data, f"{p['data']}-cond-w{p['width']}-z{p['latent']}", "--conditional", "--steps", 3,
                            "--width", p["width"], "--latent-dim", p["latent"], "--batch-size", 32)
    d = ctx.item_dir(f"embed-disc-{p['label_key']}")
    t = {}
    for side, dv in (("cpu", "cpu"), ("dev", ctx.dev)):
        t[side] = ctx.pgan_ok("embed", data, "--method", "discriminator", "--checkpoint", ck, "-o", d / f"{side}.npy",
                              "--device", dv).seconds
    feats = _features_compare(np.load(d / "dev.npy"), np.load(d / "cpu.npy"))
    return outcome(t["cpu"], t["dev"], feats["ok"], None if feats["ok"] else
                   f"features differ by {feats['max_rel_diff']:.3g} of their scale", features=feats)


def check_embed_torchvision(ctx: Ctx, p: dict) -> dict:
    """A torchvision ResNet-18 (seeded random weights given as a state_dict file: pgan loads weights
    only from a file or torchvision's cache) on the device against the CPU."""
    import numpy as np

    try:
        import torch
        from torchvision.models import resnet18
    except ImportError as e:
        raise Skip(f"torchvision is not importable ({e})") from None
    data = ctx.data(p["data"])
    weights = ctx.work / "data" / "resnet18-random.pt"
    if not weights.exists():
        torch.manual_seed(0)
        torch.save(resnet18(weights=None).state_dict(), weights)
    d = ctx.item_dir(f"embed-tv-{p['label_key']}")
    t = {}
    for side, dv in (("cpu", "cpu"), ("dev", ctx.dev)):
        t[side] = ctx.pgan_ok("embed", data, "--method", "torchvision:resnet18", "--weights", weights, "--resize",
                              p["resize"], "-o", d / f"{side}.npy", "--device", dv).seconds
    feats = _features_compare(np.load(d / "dev.npy"), np.load(d / "cpu.npy"))
    return outcome(t["cpu"], t["dev"], feats["ok"], None if feats["ok"] else
                   f"features differ by {feats['max_rel_diff']:.3g} of their scale", features=feats,
                   resize=int(p["resize"]))


# ---- the registry: checks and their sizes ---------------------------------------------------------
@dataclass
class Check:
    """A check and its sizes per mode (``gpu``/``dry``): size key -> parameters, with ``label``
    (shown in the table) and ``est`` (seconds it is expected to take, for the budget)."""

    name: str
    fn: Callable[[Ctx, dict], dict]
    sizes: dict[str, dict[str, dict]]

    def params(self, mode: str, size: str) -> dict:
        p = dict(self.sizes[mode][size])
        p.setdefault("label_key", size)
        return p


def _sizes(gpu: dict[str, dict], dry: dict[str, dict]) -> dict[str, dict[str, dict]]:
    return {"gpu": gpu, "dry": dry}


def _knn_sizes() -> dict[str, dict[str, dict]]:
    return _sizes(
        {"small": {"nq": 2000, "nr": 20000, "d": 128, "k": 10, "est": 6, "label": "2k x 20k x 128, k=10"},
         "large": {"nq": 20000, "nr": 200000, "d": 256, "k": 10, "est": 40, "label": "20k x 200k x 256, k=10"}},
        {"small": {"nq": 200, "nr": 1000, "d": 16, "k": 5, "est": 1, "label": "200 x 1k x 16, k=5"},
         "large": {"nq": 400, "nr": 3000, "d": 32, "k": 5, "est": 2, "label": "400 x 3k x 32, k=5"}})


def _train_sizes() -> dict[str, dict[str, dict]]:
    # small: the gradient penalty's double backward under autocast/GradScaler, with labels;
    # large: dcgan (whose first logged step is one forward pass: compared tightly with the CPU) and EMA
    return _sizes(
        {"small": {"data": "digits16", "arch": "wgan-gp", "extra": ["--conditional"], "steps": 4, "batch": 64,
                   "width": 32, "latent": 64, "est": 20, "label": "16px wgan-gp cond., 4+4 steps"},
         "large": {"data": "digits32", "arch": "dcgan", "extra": ["--ema"], "steps": 20, "batch": 128,
                   "width": 64, "latent": 100, "est": 45, "label": "32px dcgan EMA, 20+20 steps"}},
        {"small": {"data": "digits8", "arch": "wgan-gp", "extra": ["--conditional"], "steps": 2, "batch": 32,
                   "width": 8, "latent": 8, "est": 4, "label": "8px wgan-gp cond., 2+2 steps"},
         "large": {"data": "digits8", "arch": "dcgan", "extra": ["--ema"], "steps": 3, "batch": 32,
                   "width": 8, "latent": 8, "est": 4, "label": "8px dcgan EMA, 3+3 steps"}})


CHECKS: list[Check] = [
    Check("gemm", check_gemm, _sizes({"small": {"n": 8192, "est": 15, "label": "8192^3"}},
                                     {"small": {"n": 256, "est": 1, "label": "256^3"}})),
    Check("knn", check_knn, _knn_sizes()),
    Check("knn-sharded", check_knn_sharded, _knn_sizes()),
    Check("knn-variants", check_knn_variants, _sizes(
        {"small": {"nq": 1000, "nr": 20000, "d": 64, "k": 10, "est": 10, "label": "cosine, self, ivf: 1k x 20k x 64"}},
        {"small": {"nq": 100, "nr": 1000, "d": 8, "k": 5, "est": 2, "label": "cosine, self, ivf: 100 x 1k x 8"}})),
    Check("knn-cli", check_knn_cli, _sizes(
        {"small": {"nq": 5000, "nr": 50000, "d": 128, "k": 10, "est": 15, "label": "pgan knn 5k x 50k x 128"}},
        {"small": {"nq": 150, "nr": 600, "d": 8, "k": 5, "est": 3, "label": "pgan knn 150 x 600 x 8"}})),
    Check("mmd", check_mmd, _sizes(
        {"small": {"n": 1000, "d": 64, "permutations": 200, "cli": True, "est": 10, "label": "1k + 1k x 64, B=200"},
         "large": {"n": 10000, "d": 128, "permutations": 1000, "est": 40, "label": "10k + 10k x 128, B=1000"}},
        {"small": {"n": 60, "d": 4, "permutations": 20, "cli": True, "est": 3, "label": "60 + 60 x 4, B=20"},
         "large": {"n": 150, "d": 8, "permutations": 50, "est": 2, "label": "150 + 150 x 8, B=50"}})),
    Check("train-fp32", make_train_check("fp32"), _train_sizes()),
    Check("train-fp16", make_train_check("fp16"), _train_sizes()),
    Check("train-bf16", make_train_check("bf16"), _train_sizes()),
    Check("sample", check_sample, _sizes(
        {"small": {"data": "digits16", "n": 4096, "width": 32, "latent": 64, "est": 12, "label": "4096 x 16px cond."}},
        {"small": {"data": "digits8:members", "n": 64, "width": 8, "latent": 8, "est": 3, "label": "64 x 8px cond."}})),
    Check("dist-probe", check_dist_probe, _sizes(
        {"small": {"nproc": 2, "est": 15, "label": "Dist: broadcast, all-reduce"}},
        {"small": {"nproc": 1, "est": 8, "label": "Dist: broadcast, all-reduce (gloo, 1 rank)"}})),
    Check("torchrun-train", check_torchrun_train, _sizes(
        {"small": {"data": "digits16", "nproc": 2, "steps": 10, "batch": 64, "width": 32, "latent": 64, "est": 30,
                   "label": "16px dcgan, 10+10 steps"}},
        {"small": {"data": "digits8", "nproc": 1, "steps": 2, "batch": 32, "width": 8, "latent": 8, "est": 15,
                   "label": "8px dcgan, 2+2 steps, 1 rank"}})),
    Check("attack", check_attack, _sizes(
        {"small": {"data": "digits8", "fractions": "0.2,0.2,0.2,0.4", "n_synthetic": 1000, "train_steps": 20,
                   "width": 32, "latent": 64, "est": 30, "label": "digits 8px, 360 + 360 candidates"},
         "large": {"data": "digits16", "fractions": "0.5,0.25,0.25", "n_synthetic": 4000, "train_steps": 20,
                   "width": 32, "latent": 64, "est": 90, "label": "digits 16px, 450 + 450 candidates"}},
        {"small": {"data": "digits8", "fractions": SMALL_SPLIT, "n_synthetic": 90, "train_steps": 3,
                   "width": 8, "latent": 8, "est": 8, "label": "digits 8px, 90 + 90 candidates"}})),
    Check("embed-autoencoder", check_embed_autoencoder, _sizes(
        {"small": {"data": "digits8", "epochs": 10, "est": 20, "label": "1797 x 8px, 10 epochs"},
         "large": {"data": "digits32", "epochs": 10, "est": 45, "label": "1797 x 32px, 10 epochs"}},
        {"small": {"data": "digits8:members", "epochs": 1, "est": 3, "label": "90 x 8px, 1 epoch"}})),
    Check("embed-discriminator", check_embed_discriminator, _sizes(
        {"small": {"data": "digits16", "width": 32, "latent": 64, "est": 8, "label": "1797 x 16px"}},
        {"small": {"data": "digits8:members", "width": 8, "latent": 8, "est": 2, "label": "90 x 8px"}})),
    Check("embed-torchvision", check_embed_torchvision, _sizes(
        {"small": {"data": "digits8", "resize": 32, "est": 12, "label": "resnet18, 1797 x 32px"},
         "large": {"data": "digits16", "resize": 128, "est": 45, "label": "resnet18, 1797 x 128px"}},
        {"small": {"data": "digits8:members", "resize": 0, "est": 3, "label": "resnet18, 90 x 8px"}})),
]
SIZES = ("small", "large")


def load_checks_file(path: str) -> list[Check]:
    """``CHECKS`` of a Python file (whose functions may use this module as ``gpu_check``)."""
    import importlib.util

    sys.modules.setdefault("gpu_check", sys.modules[__name__])
    spec = importlib.util.spec_from_file_location("gpu_check_extra", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return list(mod.CHECKS)


def find_check(name: str, checks: list[Check] | None = None) -> Check:
    for c in checks or CHECKS:
        if c.name == name:
            return c
    raise KeyError(name)


def run_item(ctx: Ctx, check: Check, size: str) -> dict[str, Any]:
    """Run one check at one size; every exception becomes the record's status and error."""
    p = check.params(ctx.mode, size)
    rec = new_record(check.name, size, p.get("label", ""))
    t0 = time.perf_counter()
    try:
        out = check.fn(ctx, p)
        rec.update(cpu_s=out["cpu_s"], gpu_s=out["gpu_s"], flops=out["flops"], gemm_basis=out["basis"],
                   detail=out["detail"], status="pass" if out["ok"] else "fail", error=out["why"])
    except Skip as e:
        rec.update(status="skip", error=str(e))
    except Failed as e:
        rec.update(status="fail", error=str(e), traceback=_tail(e.tail))
    except Exception as e:  # one failing check must not stop the others
        first = (str(e).strip().splitlines() or [""])[0]
        rec.update(status="error", error=f"{type(e).__name__}: {first}"[:500], traceback=_tail(traceback.format_exc()))
    finally:
        restore_threads()
    rec["elapsed_s"] = time.perf_counter() - t0
    return rec


def restore_threads() -> None:
    """Give torch back the OMP_NUM_THREADS it was started with: pgan's FAISS calls set OpenMP's
    thread count to the CPU count (neighbors/search.py ``_faiss``), and torch shares it, so every
    later check in this process would run torch on more threads than asked for (on a loaded
    machine, OpenMP spin-waiting made a tiny training run 30x slower)."""
    want = os.environ.get("OMP_NUM_THREADS", "")
    torch = sys.modules.get("torch")
    if torch is not None and want.isdigit() and int(want) > 0 and torch.get_num_threads() != int(want):
        torch.set_num_threads(int(want))


def _tail(text: str | None, lines: int = TRACEBACK_LINES) -> str | None:
    if not text:
        return None
    return "\n".join(text.rstrip().splitlines()[-lines:])


# ---- running the checks: in this process, or in a worker process --------------------------------
class InProcess:
    def __init__(self, ctx: Ctx, checks: list[Check]):
        self.ctx, self.checks = ctx, checks

    def run(self, name: str, size: str, deadline: float) -> dict[str, Any]:
        self.ctx.deadline = deadline
        return run_item(self.ctx, find_check(name, self.checks), size)

    def close(self) -> None:
        pass


class WorkerPool:
    """One worker process at a time (``--worker``), fed one check per request on stdin and answering
    on a pipe of its own; killed (with its process group: torchrun and pgan children) when a check
    runs past the budget, and replaced after an error (a CUDA error poisons the context)."""

    def __init__(self, ctx: Ctx):
        self.ctx = ctx
        self.proc: subprocess.Popen | None = None
        self.tail: deque[str] = deque(maxlen=200)
        self.starts = 0

    def _start(self) -> None:
        r, w = os.pipe()
        cfg = json.dumps(self.ctx.to_json())
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", cfg, "--result-fd",
                                      str(w)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, pass_fds=(w,), env=child_env(), text=True,
                                     start_new_session=True)
        os.close(w)
        self.rfd = r
        self.buf = b""
        self.starts += 1
        self.tail.clear()
        threading.Thread(target=self._tee, args=(self.proc,), daemon=True).start()

    def _tee(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.tail.append(line.rstrip("\n"))
            sys.stderr.write("    | " + line)
            sys.stderr.flush()

    def _stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()  # the worker kills the commands it started (their own groups)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            _kill_group(self.proc.pid)  # and whatever is left in its own group
        self.proc.wait()
        os.close(self.rfd)
        self.proc = None

    def run(self, name: str, size: str, deadline: float) -> dict[str, Any]:
        if self.proc is None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"check": name, "size": size, "deadline": deadline}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        t0 = time.perf_counter()
        while b"\n" not in self.buf:
            left = deadline - time.time()
            ready = select.select([self.rfd], [], [], max(0.0, left))[0] if left > 0 else []
            if not ready:
                rec = new_record(name, size)
                rec.update(status="error", error=f"stopped at the end of the budget after {time.perf_counter() - t0:.0f} s",
                           traceback="\n".join(list(self.tail)[-TRACEBACK_LINES:]), elapsed_s=time.perf_counter() - t0)
                self._stop()
                return rec
            chunk = os.read(self.rfd, 1 << 16)
            if not chunk:
                code = self.proc.wait()
                rec = new_record(name, size)
                rec.update(status="error", error=f"the worker process died (exit code {code})",
                           traceback="\n".join(list(self.tail)[-TRACEBACK_LINES:]), elapsed_s=time.perf_counter() - t0)
                self._stop()
                return rec
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        rec = json.loads(line)
        if rec["status"] == "error":
            self._stop()  # a fresh CUDA context for the next check
        return rec

    def close(self) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._stop()


def worker_main(cfg_json: str, result_fd: int) -> int:
    cfg = json.loads(cfg_json)
    signal.signal(signal.SIGTERM, _stop_children)
    from pgan_cli import console

    console.configure(quiet=True)
    ctx = Ctx.make(cfg["mode"], Path(cfg["work"]), cfg["deadline"], cfg["cli_mode"])
    registry = load_checks_file(cfg["checks_file"]) if cfg.get("checks_file") else CHECKS
    out = os.fdopen(result_fd, "w")
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        ctx.deadline = req["deadline"]
        rec = run_item(ctx, find_check(req["check"], registry), req["size"])
        out.write(json.dumps(rec, default=_json_default) + "\n")
        out.flush()
    return 0


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def estimate(check: Check, mode: str, size: str, done: dict[tuple[str, str], float]) -> float:
    """Seconds a check is expected to take: its stated estimate, scaled by how the same check's
    smaller size ran against its estimate (a slower machine, a busier GPU; at most halved)."""
    est = float(check.params(mode, size).get("est", 10))
    for s in SIZES:
        if s == size:
            break
        took = done.get((check.name, s))
        if took is not None:
            prior = float(check.params(mode, s).get("est", 10))
            est *= max(0.5, took / prior)
    return est


def run_checks(ctx: Ctx, checks: list[Check], budget: float, sizes: tuple[str, ...] = SIZES,
               isolate: bool = False, started: float | None = None) -> list[dict[str, Any]]:
    """Small sizes of every check first, then the large ones, within ``budget`` seconds."""
    t0 = started if started is not None else time.time()
    deadline = t0 + budget - WRITE_RESERVE_S
    runner = WorkerPool(ctx) if isolate else InProcess(ctx, checks)
    gemm: dict[str, float] = {}
    done: dict[tuple[str, str], float] = {}
    records = []
    items = [(c, s) for s in sizes for c in checks if s in c.sizes[ctx.mode]]
    try:
        for check, size in items:
            label = check.params(ctx.mode, size).get("label", "")
            est, left = estimate(check, ctx.mode, size, done), deadline - time.time()
            if est > left:
                rec = new_record(check.name, size, label)
                rec.update(status="skip", error=f"needs about {est:.0f} s; {max(0.0, left):.0f} s of the "
                                                f"{budget:.0f} s budget left")
            else:
                log(f"[{time.time() - t0:6.1f} s] {check.name} ({size}: {label}) ...")
                rec = runner.run(check.name, size, deadline)
                rec["label"] = rec.get("label") or label
                if rec["status"] in ("pass", "fail"):
                    done[(check.name, size)] = rec["elapsed_s"] or 0.0
            if check.name == "gemm" and rec["status"] == "pass":
                gemm = dict(rec["detail"].get("tflops") or {})
            finish_record(rec, gemm)
            records.append(rec)
            log(f"[{time.time() - t0:6.1f} s] {check.name} ({size}): {rec['status']}"
                + (f" ({rec['error']})" if rec["error"] else "")
                + (f", cpu {rec['cpu_s']:.3g} s, device {rec['gpu_s']:.3g} s" if rec["cpu_s"] and rec["gpu_s"] else ""))
    finally:
        runner.close()
    return records


# ---- outputs ------------------------------------------------------------------------------------
def _fmt_s(x: float | None) -> str:
    return "" if x is None else f"{x:.3g}"


def _pct(x: float) -> str:
    v = 100 * x
    return f"{v:.0f}%" if v >= 10 else f"{v:.1f}%" if v >= 0.1 else f"{v:.2g}%"


def _cell(text: str, limit: int = 140) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def result_cell(rec: dict[str, Any]) -> str:
    st, err = rec["status"], rec.get("error")
    if st == "pass":
        return "pass"
    word = {"fail": "**FAIL**", "error": "**ERROR**", "skip": "skip"}.get(st, str(st))
    return _cell(f"{word}: {err}" if err else word)


def markdown(report: dict[str, Any]) -> str:
    dev, gemm = report["device"], report.get("gemm") or {}
    rates = ", ".join(f"{k} {v:.3g}" for k, v in gemm.items())
    if report["mode"] == "dry":
        head = ("Dry run: the CPU stands in for the GPU on tiny sizes (the times are not GPU figures; "
                "this checks the driver only).")
    else:
        gpus = ", ".join(dev.get("gpus") or []) or "no GPU named"
        head = (f"{gpus}; torch {dev.get('torch')} (CUDA {dev.get('cuda')}), faiss {dev.get('faiss')} "
                f"({dev.get('faiss_gpus')} GPU(s) seen by FAISS).")
    counts = ", ".join(f"{report['counts'][s]} {s}" for s in STATUSES if report["counts"].get(s))
    lines = [f"GPU check of {report['started'][:10]}: {head} GEMM TFLOP/s: {rates or 'not measured'}. "
             f"{counts}; {report['elapsed_s']:.0f} s of a {report['budget_s']:.0f} s budget.", "",
             "| check | size | CPU s | GPU s | speedup | % of GEMM | result |",
             "|---|---|---|---|---|---|---|"]
    for r in report["records"]:
        sp = "" if r.get("speedup") is None else f"{r['speedup']:.3g}x"
        fr = "" if r.get("fraction_of_gemm") is None else _pct(r["fraction_of_gemm"])
        if fr and r.get("gemm_basis") and r["gemm_basis"] != "fp32":
            fr += f" ({r['gemm_basis']})"
        lines.append(f"| {r['name']} | {_cell(r.get('label') or r['size'], 60)} | {_fmt_s(r.get('cpu_s'))} | "
                     f"{_fmt_s(r.get('gpu_s'))} | {sp} | {fr} | {result_cell(r)} |")
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_outputs(out_dir: Path, report: dict[str, Any]) -> str:
    md = markdown(report)
    write_atomic(out_dir / "gpu-check.json", json.dumps(report, indent=2, sort_keys=True, default=_json_default) + "\n")
    write_atomic(out_dir / "gpu-check.md", md)
    return md


def device_info(mode: str) -> dict[str, Any]:
    """The machine: pgan's env_info on a GPU (versions, GPU names); in a dry run only versions
    from the package metadata (importing torch and FAISS here would cost seconds for nothing)."""
    if mode == "dry":
        import platform
        from importlib import metadata

        info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version()}
        for name in ("torch", "faiss-cpu", "faiss-gpu"):
            try:
                info[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                pass
    else:
        from pgan_cli.provenance import env_info

        info = env_info()
        info.pop("packages", None)
    info["mode"] = mode
    return info


# ---- the distributed probe (one rank of torchrun) -------------------------------------------------
def dist_probe(device: str) -> int:
    """Runs in each torchrun rank: pgan's ``Dist`` on a small conv net with BatchNorm in channels_last
    (what the trainer hands it): broadcast from rank 0, then the gradient all-reduce, against the
    mean of every rank's own gradients (all-gathered); then barrier and teardown."""
    import torch
    import torch.distributed as td
    from torch import nn

    from pgan_cli.gan.training.distributed import Dist

    dist = Dist(device)
    forced = not dist.enabled
    if forced:  # world size 1: the trainer makes no group there; make the one it would make
        Dist._init_group(device, dist.local_rank)
        dist.enabled, dist._owns = True, True
    dev = torch.device("cuda", dist.local_rank) if device.startswith("cuda") else torch.device("cpu")
    why = []
    torch.manual_seed(1000 + dist.rank)  # different weights per rank: the broadcast must make them equal
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                        nn.Linear(8 * 8 * 8, 1)).to(dev).to(memory_format=torch.channels_last)
    dist.broadcast_module(net)
    flat = torch.cat([t.detach().reshape(-1).float() for t in list(net.parameters()) + list(net.buffers())])
    gathered = [torch.empty_like(flat) for _ in range(dist.world)]
    td.all_gather(gathered, flat)
    if not all(torch.equal(g, gathered[0]) for g in gathered):
        why.append("weights differ across ranks after broadcast_module")
    x = torch.randn(16, 1, 8, 8, device=dev).contiguous(memory_format=torch.channels_last)
    net(x).square().mean().backward()
    params = [p for p in net.parameters() if p.grad is not None]
    local = torch.cat([p.grad.detach().reshape(-1).clone() for p in params])
    allg = [torch.empty_like(local) for _ in range(dist.world)]
    td.all_gather(allg, local)
    want = torch.stack(allg).mean(0)
    dist.average_gradients(params)
    got = torch.cat([p.grad.detach().reshape(-1) for p in params])
    err = float((got - want).abs().max() / want.abs().max().clamp(min=1e-30))
    if not err <= 1e-5:
        why.append(f"averaged gradients differ from the mean of the ranks' gradients by {err:.3g} relative")
    dist.barrier()
    backend = td.get_backend()
    rec = {"rank": dist.rank, "world": dist.world, "backend": str(backend), "forced_group": forced,
           "grad_rel_err": err, "ok": not why, "why": "; ".join(why) or None}
    dist.close()
    sys.stdout.write("DIST-PROBE " + json.dumps(rec) + "\n")
    sys.stdout.flush()
    return 0 if not why else 1


# ---- the command ----------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Run pgan's GPU paths against the CPU and time them.")
    ap.add_argument("out_dir", nargs="?", help="folder for gpu-check.json and gpu-check.md")
    ap.add_argument("--budget", type=float, default=DEFAULT_BUDGET, help="total seconds (default 300)")
    ap.add_argument("--dry-run", "--cpu-as-device", dest="dry_run", action="store_true",
                    help="the CPU stands in for the GPU, tiny sizes (tests the driver)")
    ap.add_argument("--only", default="", help="comma-separated check names")
    ap.add_argument("--sizes", default=",".join(SIZES), help="small, large or both")
    ap.add_argument("--isolate", dest="isolate", action="store_true", default=None,
                    help="run the checks in a worker process (default on a GPU)")
    ap.add_argument("--no-isolate", dest="isolate", action="store_false")
    ap.add_argument("--cli", choices=("subprocess", "inprocess"), default=None,
                    help="how training runs its fresh pgan processes (default: subprocess on a GPU, "
                         "inprocess in a dry run)")
    ap.add_argument("--workdir", default=None, help="keep the data and outputs of the checks here")
    ap.add_argument("--list", action="store_true", help="list the checks and their sizes")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result-fd", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--dist-probe", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--checks-file", default=None, help=argparse.SUPPRESS)  # stand-in checks (tests)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None, checks: list[Check] | None = None) -> int:
    started = time.time()
    args = parse_args(argv)
    if args.worker is not None:
        return worker_main(args.worker, args.result_fd)
    if args.dist_probe is not None:
        return dist_probe(args.dist_probe)
    checks = list(checks or (load_checks_file(args.checks_file) if args.checks_file else CHECKS))
    mode = "dry" if args.dry_run else "gpu"
    if args.list:
        for c in checks:
            for s in SIZES:
                if s in c.sizes[mode]:
                    p = c.params(mode, s)
                    print(f"{c.name:20s} {s:6s} ~{p.get('est', 10):>4} s  {p.get('label', '')}")
        return 0
    if not args.out_dir:
        print("usage: gpu-check.sh OUT_DIR [--budget S] [--dry-run] [--only NAMES] (see --help)", file=sys.stderr)
        return 2
    if mode == "gpu":
        try:
            import torch
        except Exception as e:  # noqa: BLE001 - any import failure means nothing can run
            print(f"torch is not importable ({type(e).__name__}: {e}); nothing run")
            return 2
        if not torch.cuda.is_available():
            print(NO_GPU_LINE)
            return 0
    if args.only:
        want = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in want if n not in {c.name for c in checks}]
        if unknown:
            print(f"unknown check(s) {', '.join(unknown)}; see --list", file=sys.stderr)
            return 2
        checks = [c for c in checks if c.name in want]
    sizes = tuple(s for s in (x.strip() for x in args.sizes.split(",")) if s in SIZES)
    isolate = (mode == "gpu") if args.isolate is None else args.isolate
    cli_mode = args.cli or ("subprocess" if mode == "gpu" else "inprocess")
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="pgan-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    from pgan_cli import console

    console.configure(quiet=True)
    try:
        ctx = Ctx.make(mode, work, started + args.budget, cli_mode)
        ctx.checks_file = args.checks_file
        log(f"GPU check ({'dry run: cpu stands in for the GPU' if mode == 'dry' else 'device ' + ctx.dev}), "
            f"budget {args.budget:.0f} s, {'isolated worker' if isolate else 'in this process'}, data in {work}")
        records = run_checks(ctx, checks, args.budget, sizes, isolate, started)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    gemm = next((dict(r["detail"].get("tflops") or {}) for r in records if r["name"] == "gemm" and r["status"] == "pass"), {})
    counts = {s: sum(r["status"] == s for r in records) for s in STATUSES}
    report = {"format": FORMAT, "format_version": FORMAT_VERSION, "mode": mode,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
              "budget_s": args.budget, "elapsed_s": time.time() - started, "isolate": isolate, "cli_mode": cli_mode,
              "device": device_info(mode), "gemm": gemm, "counts": counts, "exit_code": exit_code(records),
              "records": records}
    md = write_outputs(Path(args.out_dir), report)
    sys.stdout.write(md)
    sys.stdout.flush()
    return report["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
