"""``pgan knn``: search files, streaming the queries, and write ``knn.h5`` (format ``pgan-knn``)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pgan_cli.samples import SampleReader
from pgan_cli.errors import InputError, UsageError
from pgan_cli.formats import KNN as KNN_FORMAT
from pgan_cli.neighbors.search import (INDEXES, METRICS, QUERY_BATCH, NeighborIndex, check_shapes, knn_batches,
                                       recall_against_exact, recall_rows)
from pgan_cli.neighbors.gemm import prefer_shared_pass
from pgan_cli.neighbors.shared import TILE, _pair_blocks, knn_self_batches

# ---- files ---------------------------------------------------------------------------------------
class VectorSource(SampleReader):
    """A set of vectors read in batches (:class:`pgan_cli.samples.SampleReader`, flattened), so
    :func:`search_files` can stream a query set larger than memory."""

    def __init__(self, path: str | os.PathLike, what: str = "query"):
        super().__init__(path, what, flatten=True)

    def batches(self, batch_size: int = QUERY_BATCH) -> Iterator[tuple[int, np.ndarray]]:
        return super().batches(batch_size)


def load_reference(path: str | os.PathLike) -> np.ndarray:
    """The whole reference set as float32 (N, D) (the index needs it in memory)."""
    with VectorSource(path, "reference") as src:
        out = np.empty((src.n, src.dim), dtype=np.float32)
        step = max(1, (128 << 20) // (4 * src.dim))
        for start in range(0, src.n, step):  # straight into the array: no second copy of the set
            src.read_into(out[start:start + step], start)
        return out


def _stats(x: np.ndarray) -> dict[str, float]:
    x = x[np.isfinite(x)].astype(np.float64)
    if x.size == 0:
        return {}
    q = np.percentile(x, [5, 50, 95])
    return {"mean": float(x.mean()), "min": float(x.min()), "p05": float(q[0]), "median": float(q[1]),
            "p95": float(q[2]), "max": float(x.max())}


def _check_same_rows(src: VectorSource, nidx: NeighborIndex, batch_size: int) -> None:
    """--exclude-self: the query file's rows must be the reference rows, in order."""
    for start, q in src.batches(batch_size):
        stop = start + len(q)
        qr = nidx.refine_space(q, nidx.prepare(q))
        if stop > len(nidx.refine_ref) or not np.array_equal(qr, nidx.refine_ref[start:stop]):
            raise InputError("--exclude-self needs the query set to be the reference set, but query rows "
                             f"{start}..{stop - 1} differ from the reference rows")


def search_files(query_path: str | os.PathLike, ref_path: str | os.PathLike, output: str | os.PathLike,
                 k: int, metric: str = "l2", index: str = "flat", device: str = "auto",
                 exclude_self: bool = False, batch_size: int = QUERY_BATCH, check_recall: bool = False,
                 seed: int = 0, nlist: int | None = None, nprobe: int | None = None,
                 ef_search: int | None = None) -> dict[str, Any]:
    """``pgan knn``: search QUERY against REF and write ``distances``/``indices`` to an HDF5 file.

    The reference is loaded once and indexed; queries are read, searched and written batch by
    batch (memory: the reference, its index copy, and one query batch). The output is written to
    a temporary file and renamed when complete. Returns summary statistics (the ``--json`` output).
    """
    import json

    from pgan_cli import FORMAT_VERSION, __version__, console
    from pgan_cli.atomic import atomic_path, h5_create
    from pgan_cli.provenance import make_provenance

    if metric not in METRICS:
        raise InputError(f"unknown --metric {metric!r}; use one of {', '.join(METRICS)}")
    if index not in INDEXES:
        raise InputError(f"unknown --index {index!r}; use one of {', '.join(INDEXES)}")
    if batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {batch_size}")
    if index != "ivf" and (nlist is not None or nprobe is not None):
        raise UsageError("--nlist and --nprobe apply to --index ivf only")
    if index != "hnsw" and ef_search is not None:
        raise UsageError("--ef-search applies to --index hnsw only")
    for name, v in (("--nlist", nlist), ("--nprobe", nprobe), ("--ef-search", ef_search)):
        if v is not None and v < 1:
            raise UsageError(f"{name} must be >= 1, got {v}")
    t0 = time.perf_counter()
    with VectorSource(query_path, "query") as src:
        ref_shape = VectorSource(ref_path, "reference")
        ref_shape.close()
        check_shapes(src.shape, ref_shape.shape, k, exclude_self)
        src.validate()  # before the warning: a refused input gets its one line only
        if not exclude_self and Path(query_path).resolve() == Path(ref_path).resolve():
            console.warn("QUERY and REF are the same file: every row finds itself first; "
                         "add --exclude-self to leave each row out of its own neighbours")
        ref = load_reference(ref_path)
        nidx = NeighborIndex(ref, metric, index, device, k=k + (1 if exclude_self else 0), nlist=nlist,
                             nprobe=nprobe, ef_search=ef_search, seed=seed, in_place=True)
        if exclude_self and Path(query_path).resolve() != Path(ref_path).resolve():
            _check_same_rows(src, nidx, batch_size)  # one file is its own rows: nothing to read twice
        t_index = time.perf_counter() - t0
        console.log(f"indexed {len(ref)} references of dimension {ref.shape[1]} ({index}, {metric}, "
                    f"{nidx.device}) in {t_index:.1f} s; searching {src.n} queries")
        rows = recall_rows(src.n, seed) if check_recall else np.empty(0, dtype=np.int64)
        rec_q = np.empty((len(rows), src.dim), dtype=np.float32)
        rec_d = np.empty((len(rows), k), dtype=np.float32)
        first = np.empty(src.n, dtype=np.float32)
        kth = np.empty(src.n, dtype=np.float32)
        prov = make_provenance([query_path, ref_path], seed=seed, device=nidx.device, k=k, metric=metric,
                               index=index, exclude_self=exclude_self, batch_size=batch_size,
                               **nidx.params)
        with atomic_path(output, suffix=".h5.tmp") as tmp:
            with h5_create(tmp) as f:
                chunk = (max(1, min(src.n, (1 << 20) // (8 * k))), k)
                dset_d = f.create_dataset("distances", shape=(src.n, k), dtype=np.float32, chunks=chunk)
                dset_i = f.create_dataset("indices", shape=(src.n, k), dtype=np.int64, chunks=chunk)
                n_batches = (src.n + batch_size - 1) // batch_size
                current: dict[str, np.ndarray] = {}

                def feed():
                    for start, q in src.batches(batch_size):
                        current["q"] = q
                        yield start, q

                symmetric = (exclude_self and index == "flat" and metric == "l2" and nidx.device == "cpu"
                             and prefer_shared_pass(src.dim))
                if symmetric:  # QUERY is REF: compute each distance once (half the GEMM work)
                    stream = knn_self_batches(nidx.refine_ref, k, centred=nidx.centred)
                    n_batches = len(_pair_blocks(src.n, TILE))
                else:
                    stream = knn_batches(feed(), ref, k, metric, exclude_self, nidx)
                for start, dist, ind in console.progress(stream, total=n_batches, description="knn"):
                    stop = start + len(dist)
                    dset_d[start:stop] = dist
                    dset_i[start:stop] = ind
                    first[start:stop], kth[start:stop] = dist[:, 0], dist[:, -1]
                    sel = (rows >= start) & (rows < stop)
                    if sel.any() and not nidx.exact:
                        q_batch = current["q"][rows[sel] - start]
                        rec_q[sel] = nidx.refine_space(q_batch, nidx.prepare(q_batch))
                        rec_d[sel] = dist[rows[sel] - start]
                t_search = time.perf_counter() - t0 - t_index
                recall = None
                if check_recall:
                    recall = 1.0 if nidx.exact else recall_against_exact(rec_q, rows, rec_d, nidx.refine_ref, k,
                                                                         metric, exclude_self)
                attrs = {"format": KNN_FORMAT, "kind": "knn", "metric": metric, "index": index, "exact": bool(nidx.exact), "k": k,
                         "exclude_self": bool(exclude_self), "device": nidx.device,
                         "pgan_version": __version__, "format_version": FORMAT_VERSION,
                         "provenance": json.dumps(prov, sort_keys=True, default=str),
                         "index_params": json.dumps(nidx.params, sort_keys=True)}
                if recall is not None:
                    attrs["recall"] = recall
                    attrs["recall_queries"] = int(len(rows))
                for key, v in attrs.items():
                    f.attrs[key] = v
    n_missing = int((~np.isfinite(kth)).sum())
    from pgan_cli.provenance import shown_path

    summary = {"output": shown_path(output), "n_query": src.n, "n_reference": len(ref), "dim": src.dim, "k": k,
               "metric": metric, "index": index, "exact": bool(nidx.exact), "device": nidx.device,
               "exclude_self": bool(exclude_self), "index_params": nidx.params,
               "nearest_distance": _stats(first), "kth_distance": _stats(kth),
               "recall": recall, "recall_queries": int(len(rows)) if check_recall else None,
               "missing_neighbours": n_missing, "seconds_index": round(t_index, 4),
               "seconds_search": round(t_search, 4),
               "queries_per_second": round(src.n / max(t_search, 1e-9), 1)}
    return summary
