"""Run one benchmark case in a fresh subprocess and report its wall time and peak memory.

Each case is a separate process so that peak RSS (``ru_maxrss``) belongs to that case only;
``rss_baseline`` is the resident memory after imports and data generation, and
``peak_increment`` = peak - baseline is what the method itself added.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed(fn):
    """Call fn() and return (result, seconds, baseline_rss, peak_rss)."""
    base = rss_bytes()
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, base, peak_bytes()


def gemm_gflops(n: int = 4096, reps: int = 3) -> dict[str, float]:
    """The float32 n³ matrix-multiply rate of numpy (BLAS) and of torch in this process, best of
    ``reps``: benchmarks state their times beside it (a shared machine's rate drifts)."""
    import numpy as np
    import torch

    a = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(2).standard_normal((n, n), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    out = {}
    for name, fn in (("numpy", lambda: a @ b), ("torch", lambda: ta @ tb)):
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        out[name] = 2 * n ** 3 / best / 1e9
    return out


def run_case(script: str, *args: str) -> dict:
    """Run ``python script --case ARGS`` and parse the JSON line it prints last."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.run([sys.executable, script, "--case", *args], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"case {args} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def machine() -> str:
    import platform

    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (f"{cpu}, {len(os.sched_getaffinity(0))} cores available, "
            f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB RAM, "
            f"Python {platform.python_version()}, load average {load:.1f} at start")
