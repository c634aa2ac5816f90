"""Exact k-NN: pgan (FAISS, the code behind `pgan knn`) against scikit-learn brute force and
torch cdist + topk, side by side, each peer in its own subprocess (peak memory = that process's
ru_maxrss), on the same seeded data.

For each dimension (default 784 and 4,096; 10,000 queries x 50,000 references, k = 5) every peer
reports: search time, peak RSS, the ratio of its time to pgan's, and its achieved GFLOP/s
(2·Nq·Nr·D per search) next to the machine's float32 GEMM rate measured in the same subprocess
just before the search (best of numpy and torch matmul, 4096³), so a shared, noisy machine
still gives a fair "fraction of GEMM peak". Neighbours of every peer are checked against pgan's
(same distances to 1e-4 relative).

`--self N` times `pgan knn X X --exclude-self` on N rows (the symmetric self-search: each
distance computed once) against the one-direction FAISS search and scikit-learn, same process.

`--stream-refs N --stream-queries M` also runs the `pgan knn` command itself on memory-mapped
NPY files of N references x M queries at 4,096 dimensions and reports its peak RSS, to check
that memory stays bounded by the reference set (queries are streamed in batches).

`--files NQxNRxD,...` times the `pgan knn` command on NPY files (its own process) against the
in-process call plus start-up (the bar: within 15%).

`--shared-passes` times the shared passes (the symmetric self-search, both directions of a pair
from one product) against separate per-core searches at 16 to 4,096 dimensions: the measurement
behind gemm.SHARED_PASS_MIN_DIM.

`--stages` splits one per-core worker's time at each sweep shape into its product (the
single-threaded GEMM into a cache-sized score block) and its selection (FAISS's heaps on that
block), per score, beside a one-thread 4096³ GEMM: where the engine's time goes at each shape.

`--sweep all` runs the shapes of the neighbour engine's bars (SWEEP below) and adds each
search's rate as a share of one GEMM of the same shape, measured in the same process. Peers:
``pgan`` (the blocked GEMM engine, pgan_cli/neighbors/gemm.py, choosing per batch: per-core
workers with cache-sized blocks), ``pgan-heap`` (the same engine forced to FAISS's heaps on large
multi-threaded GEMM blocks), ``pgan-faiss``
(the same search with faiss.knn as the candidate engine), scikit-learn brute force, torch cdist + topk.

Run: PYTHONPATH=. python bench/knn.py [--nq 10000 --nr 50000 --dims 784,4096] [--json out.json]
     PYTHONPATH=. python bench/knn.py --sweep all --peers pgan,pgan-faiss,sklearn
     PYTHONPATH=. python bench/knn.py --dims 4096 --stream-refs 100000 --stream-queries 5000
     PYTHONPATH=. python bench/knn.py --dims 4096 --peers "" --self 30000
     PYTHONPATH=. python bench/knn.py --peers "" --files 2000x12000x4096,100000x1600x64
     PYTHONPATH=. python bench/knn.py --peers "" --shared-passes
     PYTHONPATH=. python bench/knn.py --peers "" --stages --sweep all
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _measure import gemm_gflops

REPO = Path(__file__).resolve().parents[1]
PEERS = ("pgan", "pgan-heap", "pgan-faiss", "sklearn", "torch")
# the engine's selection each pgan peer forces (None: pgan's own choice per batch)
PGAN_SELECTION = {"pgan": None, "pgan-heap": "heap", "pgan-faiss": None}
# The shapes of the bars (Nq x Nr x D, every one with Nq·Nr·D >= 1e10): Nq from 1,000 to
# 100,000, D from 64 to 4,096, the common audit (2,000 x 12,000 x 4,096) and the old table's.
SWEEP = ("1000x160000x64", "100000x1600x64", "20000x20000x64", "10000x10000x512", "2000x12000x4096",
         "1000x50000x4096", "10000x50000x784", "10000x50000x4096")


def make_data(nq: int, nr: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Clustered float32 data (100 Gaussian clusters), queries near reference points."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((100, d), dtype=np.float32) * 2
    out = []
    for n in (nq, nr):  # filled in chunks: no temporaries, so RSS before the search is just the data
        x = np.empty((n, d), dtype=np.float32)
        for a in range(0, n, 4096):
            b = min(n, a + 4096)
            x[a:b] = centres[rng.integers(0, 100, b - a)]
            x[a:b] += rng.standard_normal((b - a, d), dtype=np.float32)
        out.append(x)
    return out[0], out[1]


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run_peer(peer: str, nq: int, nr: int, d: int, k: int, out_dir: Path, rates: bool = True) -> dict:
    """Runs inside the peer's own subprocess (``rates``: also measure the GEMM rates after it)."""
    query, ref = make_data(nq, nr, d)
    cores = len(os.sched_getaffinity(0))
    import faiss  # noqa: F401  (imported before the baseline so every peer starts alike)
    import sklearn.neighbors  # noqa: F401
    import torch  # noqa: F401

    from pgan_cli.neighbors import knn

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    if peer in PGAN_SELECTION:
        from pgan_cli.neighbors import gemm, search

        search.CPU_ENGINE = "faiss" if peer == "pgan-faiss" else "gemm"
        gemm.SELECTION = PGAN_SELECTION[peer]
        res = knn(query, ref, k)
        dist, ind = res.distances, res.indices
    elif peer == "sklearn":
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(ref)
        dist, ind = nn.kneighbors(query)
    else:
        import torch

        torch.set_num_threads(cores)
        tq, tr = torch.from_numpy(query), torch.from_numpy(ref)
        ds, ids = [], []
        with torch.no_grad():
            for a in range(0, nq, 1024):
                dd = torch.cdist(tq[a:a + 1024], tr)
                v, i = torch.topk(dd, k, dim=1, largest=False)
                ds.append(v)
                ids.append(i)
        dist, ind = torch.cat(ds).numpy(), torch.cat(ids).numpy()
    secs = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if not rates:
        return {"peer": peer, "seconds": secs, "peak_rss_mib": peak}
    gemm = gemm_gflops()  # right after the search, in the same process (a shared machine drifts)
    same = same_shape_gemm_gflops(query, ref)
    np.save(out_dir / f"{peer}_{nq}_{nr}_{d}_dist.npy", np.asarray(dist, np.float32))
    flops = 2.0 * nq * nr * d
    return {"peer": peer, "dim": d, "nq": nq, "nr": nr, "seconds": secs, "peak_rss_mib": peak,
            "data_rss_mib": base_rss, "gflops": flops / secs / 1e9, "gemm_gflops": max(gemm.values()),
            "gemm": gemm, "same_shape_gemm_gflops": same, "cores": cores}


def same_shape_gemm_gflops(query: np.ndarray, ref: np.ndarray, reps: int = 2) -> float:
    """The rate of one float32 torch GEMM of the search's own shape (Nq x D) · (D x Nr), best of
    ``reps``: what the search would take if it were nothing but its products."""
    import torch

    tq, tr = torch.from_numpy(query), torch.from_numpy(ref)
    best = min(_timed(lambda: torch.mm(tq, tr.T)) for _ in range(reps))
    return 2.0 * len(query) * len(ref) * query.shape[1] / best / 1e9


def spawn(args: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    p = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"peer failed: {args}\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def stream_check(nr: int, nq: int, d: int, k: int, folder: Path) -> dict:
    """`pgan knn` on memory-mapped NPY files; peak RSS of the command's process."""
    rng = np.random.default_rng(0)
    paths = {}
    for name, n in (("ref", nr), ("query", nq)):
        path = folder / f"{name}.npy"
        arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
        for a in range(0, n, 8192):
            arr[a:a + 8192] = rng.standard_normal((min(8192, n - a), d), dtype=np.float32)
        arr.flush()
        del arr
        paths[name] = path
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "pgan_cli", "knn", str(paths["query"]), str(paths["ref"]), "-k",
                          str(k), "-o", str(folder / "knn.h5"), "--json", "--device", "cpu", "--quiet"],
                         stdout=subprocess.PIPE, env=env)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)  # this child's own peak RSS
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit("pgan knn failed")
    s = json.loads(out)
    peak = usage.ru_maxrss / 1024
    return {"n_reference": nr, "n_query": nq, "dim": d, "k": k, "wall_seconds": wall, "peak_rss_mib": peak,
            "reference_mib": nr * d * 4 / 2 ** 20, "search_seconds": s["seconds_search"],
            "gflops": 2.0 * nq * nr * d / s["seconds_search"] / 1e9,
            "extrapolated_seconds_for_100k_queries": s["seconds_search"] * 100_000 / nq}


def files_check(nq: int, nr: int, d: int, k: int, folder: Path, reps: int = 2) -> dict:
    """`pgan knn QUERY.npy REF.npy` (the whole command, its own process) against the in-process
    call (`pgan_cli.neighbors.knn` on arrays already in memory, its own process) plus start-up (a
    process that imports what the command imports), alternated ``reps`` times; the bar is the
    command within 15% of in-process + start-up."""
    query, ref = make_data(nq, nr, d)
    paths = {"query": folder / "fq.npy", "ref": folder / "fr.npy"}
    np.save(paths["query"], query)
    np.save(paths["ref"], ref)
    del query, ref
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    imports = "import pgan_cli.cli.frame, pgan_cli.neighbors, pgan_cli.samples, torch, faiss, h5py"
    t = {"cli": [], "in_process": [], "start_up": [], "cli_search": [], "cli_index": []}
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", imports], check=True, env=env)
        t["start_up"].append(time.perf_counter() - t0)
        t["in_process"].append(spawn(["--peer", "pgan", "--nq", str(nq), "--nr", str(nr), "--dim", str(d),
                                      "-k", str(k), "--out-dir", str(folder), "--no-gemm"])["seconds"])
        (folder / "fknn.h5").unlink(missing_ok=True)
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "pgan_cli", "knn", str(paths["query"]), str(paths["ref"]), "-k",
                            str(k), "-o", str(folder / "fknn.h5"), "--json", "--device", "cpu", "--quiet"],
                           capture_output=True, text=True, env=env)
        t["cli"].append(time.perf_counter() - t0)
        if p.returncode != 0:
            raise SystemExit(f"pgan knn failed: {p.stderr[-2000:]}")
        s = json.loads(p.stdout)
        t["cli_search"].append(s["seconds_search"])
        t["cli_index"].append(s["seconds_index"])
    best = {key: min(v) for key, v in t.items()}
    return {"nq": nq, "nr": nr, "dim": d, "k": k, "seconds": t, "best": best,
            "ratio_cli_over_in_process_plus_start_up": best["cli"] / (best["in_process"] + best["start_up"])}


SHARED_SWEEP = ((20000, 25000, 16), (20000, 25000, 64), (20000, 25000, 128), (20000, 25000, 256), (20000, 25000, 512),
                (10000, 12000, 1024), (8000, 10000, 4096))


def shared_pass_sweep(k: int = 32) -> list[dict]:
    """The cost model behind gemm.SHARED_PASS_MIN_DIM (k = 32, the attacks' neighbour lists), side by side in this process: the
    symmetric self-search (knn_self's pass) against the per-core one-direction search
    knn(x, x, exclude_self=True), and knn_pair's one pass against two per-core searches."""
    from pgan_cli.neighbors import gemm, knn, knn_pair, knn_self

    knn(*make_data(100, 200, 8), 2)  # warm-up (threads, imports)
    rows = []
    for na, nb, d in SHARED_SWEEP:
        a, b = make_data(na // 2, nb, d)
        x = np.concatenate([a, b[: na - len(a)]])
        t = {}
        for label, min_dim in (("shared", 0), ("separate", 10 ** 9)):
            gemm.SHARED_PASS_MIN_DIM = min_dim
            t0 = time.perf_counter()
            knn_self(x, k)
            t[f"self_{label}"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            knn_pair(a, b, k)
            t[f"pair_{label}"] = time.perf_counter() - t0
        rows.append({"n_self": len(x), "pair": [len(a), len(b)], "dim": d, "k": k, "seconds": t,
                     "self_shared_over_separate": t["self_shared"] / t["self_separate"],
                     "pair_shared_over_separate": t["pair_shared"] / t["pair_separate"]})
        print(f"# shared passes {d}-d: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    return rows


def stage_costs(nq: int, nr: int, d: int, k: int, max_queries: int = 4096, reps: int = 3) -> dict:
    """One per-core worker of the fused engine (gemm.GemmSearch._search_fused's loop, on one
    thread): its product alone, then product + heaps, over up to ``max_queries`` queries against
    the whole reference; nanoseconds per score (best of ``reps``) and the product's rate against
    a one-thread 4096³ GEMM in this process."""
    import faiss
    import torch

    from pgan_cli.neighbors import gemm
    from pgan_cli.neighbors.search import EXTRA_CANDIDATES

    query, ref = make_data(min(nq, max_queries), nr, d)
    mu = ref.mean(axis=0)
    qt, rt = torch.from_numpy(query - mu), torch.from_numpy(ref - mu)
    norms = (rt * rt).sum(dim=1)
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    m, kk = len(query), min(nr, k + EXTRA_CANDIDATES)
    rows, width = gemm.FUSED_QUERY_ROWS, min(nr, gemm.FUSED_REF_ROWS)
    dist, ind = np.empty((m, kk), np.float32), np.empty((m, kk), np.int64)
    scores = torch.empty(rows * width)

    def worker(select: bool) -> None:
        for a in range(0, m, rows):
            b = min(m, a + rows)
            heaps = faiss.float_maxheap_array_t()
            heaps.k, heaps.nh = kk, b - a
            heaps.val, heaps.ids = faiss.swig_ptr(dist[a:b]), faiss.swig_ptr(ind[a:b])
            heaps.heapify()
            for c in range(0, nr, width):
                e = min(nr, c + width)
                s = scores[:(b - a) * (e - c)].view(b - a, e - c)
                torch.addmm(norms[c:e], qt[a:b], rt[c:e].T, beta=1.0, alpha=-2.0, out=s)
                if select:
                    heaps.addn(e - c, faiss.swig_ptr(s.numpy()), c, 0, b - a)
            heaps.reorder()

    try:
        worker(True)  # warm-up
        product = min(_timed(lambda: worker(False)) for _ in range(reps))
        both = min(_timed(lambda: worker(True)) for _ in range(reps))
        one_thread = gemm_gflops()["torch"]  # torch is on one thread here
    finally:
        torch.set_num_threads(old)
    n_scores = m * nr
    return {"nq": nq, "nr": nr, "dim": d, "k": k, "queries_timed": m,
            "product_ns_per_score": 1e9 * product / n_scores,
            "heaps_ns_per_score": 1e9 * (both - product) / n_scores,
            "product_gflops_one_thread": 2.0 * n_scores * d / product / 1e9,
            "worker_gflops_one_thread": 2.0 * n_scores * d / both / 1e9,
            "gemm_gflops_one_thread": one_thread}


def self_check(n: int, d: int, k: int, folder: Path) -> dict:
    """`pgan knn X X --exclude-self` (symmetric: each distance once) against the one-direction
    FAISS search it replaced and scikit-learn brute force, side by side in this process."""
    from sklearn.neighbors import NearestNeighbors

    from pgan_cli.neighbors import knn, search_files

    _, x = make_data(1, n, d)
    path = folder / "self.npy"
    np.save(path, x)
    knn(x[:500], x[:500], k, exclude_self=True)  # warm-up (FAISS threads, imports)
    t = {}
    t0 = time.perf_counter()
    s = search_files(path, path, folder / "self.h5", k, exclude_self=True, device="cpu")
    t["pgan_symmetric"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    one = knn(x, x, k, exclude_self=True)
    t["faiss_one_direction"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sk_d, _ = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(x).kneighbors(x)
    t["sklearn_brute"] = time.perf_counter() - t0
    import h5py

    with h5py.File(folder / "self.h5", "r") as f:
        dist = f["distances"][:]
    err = float(np.max(np.abs(dist - one.distances) / np.maximum(one.distances, 1e-12)))
    return {"n": n, "dim": d, "k": k, "seconds": t, "search_seconds_cli": s["seconds_search"],
            "ratio_one_direction_over_symmetric": t["faiss_one_direction"] / t["pgan_symmetric"],
            "ratio_sklearn_over_symmetric": t["sklearn_brute"] / t["pgan_symmetric"],
            "max_rel_diff": err, "sklearn_max_abs_diff": float(np.max(np.abs(sk_d[:, 1:] - dist)))}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nq", type=int, default=10_000)
    ap.add_argument("--nr", type=int, default=50_000)
    ap.add_argument("--dims", default="784,4096")
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--stream-refs", type=int, default=0)
    ap.add_argument("--stream-queries", type=int, default=5000)
    ap.add_argument("--self", type=int, default=0, dest="self_n",
                    help="also time `pgan knn X X --exclude-self` on N rows of the last --dims")
    ap.add_argument("--sweep", default="", help="'all' (the shapes of the bars) or NQxNRxD,... instead of --nq/--nr/--dims")
    ap.add_argument("--files", default="", help="NQxNRxD,...: also time `pgan knn` on NPY files of these shapes "
                    "against the in-process call plus start-up")
    ap.add_argument("--stages", action="store_true",
                    help="split one per-core worker's time into product and heaps at each --sweep shape")
    ap.add_argument("--shared-passes", action="store_true",
                    help="also time the shared passes (knn_self, knn_pair) against separate searches, 16-4,096-d")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--peer", help=argparse.SUPPRESS)
    ap.add_argument("--no-gemm", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dim", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.peer:  # child mode
        print(json.dumps(run_peer(a.peer, a.nq, a.nr, a.dim, a.k, a.out_dir, rates=not a.no_gemm)))
        return
    dims = [int(x) for x in a.dims.split(",") if x]
    peers = [p for p in a.peers.split(",") if p]
    if a.sweep:
        shapes = [tuple(int(v) for v in s.split("x")) for s in (SWEEP if a.sweep == "all" else a.sweep.split(","))]
    else:
        shapes = [(a.nq, a.nr, d) for d in dims]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for nq, nr, d in shapes:
            for peer in peers:
                r = spawn(["--peer", peer, "--nq", str(nq), "--nr", str(nr), "--dim", str(d), "-k", str(a.k),
                           "--out-dir", tmp])
                rows.append(r)
                print(f"# {peer:10s} {nq}x{nr}x{d}: {r['seconds']:.2f} s, {r['gflops']:.1f} GFLOP/s "
                      f"(GEMM {r['gemm_gflops']:.1f}, same shape {r['same_shape_gemm_gflops']:.1f}), "
                      f"peak {r['peak_rss_mib']:.0f} MiB", file=sys.stderr, flush=True)
            if "pgan" not in peers:
                continue
            ref_d = np.load(Path(tmp) / f"pgan_{nq}_{nr}_{d}_dist.npy")
            for peer in peers:
                other = np.load(Path(tmp) / f"{peer}_{nq}_{nr}_{d}_dist.npy")
                err = float(np.max(np.abs(other - ref_d) / np.maximum(ref_d, 1e-12)))
                for r in rows:
                    if r["peer"] == peer and (r["nq"], r["nr"], r["dim"]) == (nq, nr, d):
                        r["max_rel_diff_vs_pgan"] = err
        stream = self_res = None
        shared = shared_pass_sweep() if a.shared_passes else []
        stages = []
        for nq, nr, d in (shapes if a.stages else []):
            stages.append(stage_costs(nq, nr, d, a.k))
            print(f"# stages {nq}x{nr}x{d}: {json.dumps(stages[-1])}", file=sys.stderr, flush=True)
        files = []
        for shape in (x for x in a.files.split(",") if x):
            nq, nr, d = (int(v) for v in shape.split("x"))
            files.append(files_check(nq, nr, d, a.k, Path(tmp)))
            print(f"# files {shape}: {json.dumps(files[-1]['best'])}", file=sys.stderr, flush=True)
        if a.self_n:
            self_res = self_check(a.self_n, dims[-1], a.k, Path(tmp))
            print(json.dumps(self_res, indent=1), flush=True)
        if a.stream_refs:
            stream = stream_check(a.stream_refs, a.stream_queries, dims[-1], a.k, Path(tmp))
    base = {(r["nq"], r["nr"], r["dim"]): r["seconds"] for r in rows if r["peer"] == "pgan"}
    print(f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs "
          f"(affinity {len(os.sched_getaffinity(0))}), load {os.getloadavg()[0]:.1f}; k = {a.k}\n")
    if rows:
        print_table(rows, base)
    if shared:
        markdown_table(["D", "self-search rows", "shared pass (s)", "separate (s)", "shared / separate", "pair",
                        "shared pass (s)", "two searches (s)", "shared / separate"],
                       [[r["dim"], r["n_self"], f"{r['seconds']['self_shared']:.2f}",
                         f"{r['seconds']['self_separate']:.2f}", f"{r['self_shared_over_separate']:.2f}",
                         f"{r['pair'][0]} <-> {r['pair'][1]}", f"{r['seconds']['pair_shared']:.2f}",
                         f"{r['seconds']['pair_separate']:.2f}", f"{r['pair_shared_over_separate']:.2f}"] for r in shared])
    if stages:
        markdown_table(["Nq x Nr x D", "product (ns/score)", "heaps (ns/score)", "heaps / product",
                        "product GFLOP/s (1 thread)", "worker GFLOP/s (1 thread)", "GEMM 4096³ (1 thread)",
                        "worker / GEMM"],
                       [[f"{r['nq']} x {r['nr']} x {r['dim']}", f"{r['product_ns_per_score']:.2f}",
                         f"{r['heaps_ns_per_score']:.2f}", f"{r['heaps_ns_per_score'] / r['product_ns_per_score']:.2f}",
                         f"{r['product_gflops_one_thread']:.1f}", f"{r['worker_gflops_one_thread']:.1f}",
                         f"{r['gemm_gflops_one_thread']:.1f}",
                         f"{100 * r['worker_gflops_one_thread'] / r['gemm_gflops_one_thread']:.0f}%"] for r in stages])
    if files:
        markdown_table(["Nq x Nr x D", "`pgan knn` on NPY files (s)", "in-process call (s)", "start-up (s)",
                        "command / (in-process + start-up)", "command's index + search (s)"],
                       [[f"{f['nq']} x {f['nr']} x {f['dim']}", f"{f['best']['cli']:.2f}", f"{f['best']['in_process']:.2f}",
                         f"{f['best']['start_up']:.2f}", f"{f['ratio_cli_over_in_process_plus_start_up']:.2f}",
                         f"{f['best']['cli_index']:.2f} + {f['best']['cli_search']:.2f}"] for f in files])
    if stream:
        print(f"\nStreaming `pgan knn` ({stream['n_query']} queries x {stream['n_reference']} references x "
              f"{stream['dim']}-d, memory-mapped NPY): peak RSS {stream['peak_rss_mib']:.0f} MiB for a "
              f"{stream['reference_mib']:.0f} MiB reference set; search {stream['search_seconds']:.1f} s "
              f"({stream['gflops']:.1f} GFLOP/s); 100k queries extrapolate to "
              f"{stream['extrapolated_seconds_for_100k_queries'] / 60:.1f} min at the same rate.")
    if a.json:
        a.json.write_text(json.dumps({"rows": rows, "shared_passes": shared, "stages": stages, "files": files, "stream": stream, "self": self_res, "nq": a.nq, "nr": a.nr, "k": a.k}, indent=2))


def markdown_table(header: list[str], rows: list[list]) -> None:
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(v) for v in r) + " |")


def print_table(rows: list[dict], base: dict) -> None:
    print("| Nq x Nr x D | peer | time (s) | time / pgan's | GFLOP/s | % of GEMM (4096³, same process) | "
          "% of same-shape GEMM | peak RSS (MiB) | max rel. diff vs pgan |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        key = (r["nq"], r["nr"], r["dim"])
        print(f"| {r['nq']} x {r['nr']} x {r['dim']} | {r['peer']} | {r['seconds']:.2f} | "
              f"{r['seconds'] / base.get(key, np.nan):.2f} | {r['gflops']:.1f} | "
              f"{100 * r['gflops'] / r['gemm_gflops']:.0f}% | {100 * r['gflops'] / r['same_shape_gemm_gflops']:.0f}% | "
              f"{r['peak_rss_mib']:.0f} | {r.get('max_rel_diff_vs_pgan', float('nan')):.1e} |")


if __name__ == "__main__":
    main()
