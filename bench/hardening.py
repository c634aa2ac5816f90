"""What the safety checks of docs/security.md cost, side by side with the work they guard.

- members/holdout disjointness: pgan's row digests (BLAKE2b per row + ``np.isin``) against
  NumPy's ``np.unique(axis=0)`` on the stacked sets (a sort of whole rows), and against reading
  the two sets;
- the self-contained HDF5 check (links, external storage, allocated chunks) against opening
  and reading the file;
- a split's set commit (staging, lock, signed journal and manifest, the replaced files kept to
  put back on failure) against writing the same parts directly;
- HDF5 written through the file that survives a full disk (``atomic.h5_create``: h5py's
  ``fileobj`` driver) against h5py's own file driver.

Usage: python bench/hardening.py [--rows 20000] [--dim 4096]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=4096)
    args = ap.parse_args()
    from pgan_cli.dataset import Dataset, check_self_contained, read_dataset, write_dataset
    from pgan_cli.outputs import output_set
    from pgan_cli.split import count_shared_rows

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"numpy {np.__version__}")
    rng = np.random.default_rng(0)
    a = rng.normal(size=(args.rows, args.dim)).astype(np.float32)
    b = rng.normal(size=(args.rows, args.dim)).astype(np.float32)
    b[:7] = a[100:107]
    t_pgan = timed(lambda: count_shared_rows(a, b))

    def numpy_unique():
        both = np.concatenate([a, b])
        _, counts = np.unique(both, axis=0, return_counts=True)
        return int((counts > 1).sum())

    assert count_shared_rows(a, b) == numpy_unique() == 7
    t_np = timed(numpy_unique, repeat=1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, x in (("a", a), ("b", b)):
            write_dataset(tmp / f"{name}.h5", x, provenance={})
        t_read = timed(lambda: (read_dataset(tmp / "a.h5"), read_dataset(tmp / "b.h5")))
        print(f"disjointness of {args.rows} x {args.dim} members and holdout: pgan {t_pgan:.2f} s, "
              f"np.unique(axis=0) {t_np:.2f} s ({t_np / t_pgan:.1f}x slower); reading both files "
              f"{t_read:.2f} s (the check is {t_pgan / t_read:.2f}x the read)")

        import h5py

        def check():
            with h5py.File(tmp / "a.h5", "r") as f:
                check_self_contained(f, tmp / "a.h5")

        t_check = timed(check)
        t_open = timed(lambda: Dataset(tmp / "a.h5").close())
        print(f"self-contained HDF5 check: {t_check * 1e3:.1f} ms; opening and validating the file "
              f"{t_open * 1e3:.0f} ms, reading it {t_read / 2 * 1e3:.0f} ms")

        parts = np.array_split(a, 3)

        def direct():
            out = tmp / "direct"
            out.mkdir(exist_ok=True)
            for i, x in enumerate(parts):
                write_dataset(out / f"p{i}.h5", x, provenance={})

        def as_set():
            with output_set(tmp / "set", "bench") as staged:
                for i, x in enumerate(parts):
                    write_dataset(staged.path(f"p{i}.h5"), x, provenance={})

        t_direct, t_set = timed(direct), timed(as_set)
        print(f"split-like commit of 3 parts ({a.nbytes / 2**20:.0f} MiB): direct {t_direct:.2f} s, "
              f"as a set {t_set:.2f} s ({t_set / t_direct:.2f}x)")
        shutil.rmtree(tmp / "set", ignore_errors=True)

        from pgan_cli.atomic import h5_create

        def write_with(opener):
            def run():
                with opener(tmp / "w.h5") as f:
                    d = f.create_dataset("samples", shape=a.shape, dtype=np.float32,
                                         chunks=(max(1, (1 << 20) // (4 * args.dim)), args.dim))
                    for i in range(0, len(a), 4096):
                        d[i:i + 4096] = a[i:i + 4096]
            return run

        t_native = timed(write_with(lambda p: h5py.File(p, "w")))
        t_tolerant = timed(write_with(h5_create))
        print(f"HDF5 write of {a.nbytes / 2**20:.0f} MiB: h5py's driver {t_native:.2f} s, through the file that "
              f"survives a full disk {t_tolerant:.2f} s ({t_tolerant / t_native:.2f}x)")


if __name__ == "__main__":
    main()
