"""``pgan knn``: exact (or approximate) k nearest neighbours with FAISS, streamed over queries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pgan_cli import console
from pgan_cli.cli.frame import JsonOpt, OutputOpt, SeedOpt, command


@command("knn", help="k nearest neighbours of QUERY rows among REF rows (FAISS; exact by default) to HDF5.")
def knn_cmd(
    query: Annotated[Path, typer.Argument(help="Query set: NPY (N, D) or dataset file (flattened).")],
    ref: Annotated[Path, typer.Argument(help="Reference set: NPY (N, D) or dataset file (flattened).")],
    output: OutputOpt,
    k: Annotated[int, typer.Option("-k", "--k", help="Number of neighbours.")] = 5,
    metric: Annotated[str, typer.Option("--metric", help="l2 (Euclidean), cosine (1 - cosine similarity) or linf (CPU).")] = "l2",
    index: Annotated[str, typer.Option("--index", help="flat (exact), ivf or hnsw (approximate, for very large sets).")] = "flat",
    exclude_self: Annotated[bool, typer.Option("--exclude-self", help="QUERY is REF: leave each row out of its own neighbours.")] = False,
    check_recall: Annotated[bool, typer.Option("--check-recall", help="Measure recall@k against exact search on up to 1,000 queries.")] = False,
    nlist: Annotated[Optional[int], typer.Option("--nlist", help="ivf: number of cells (default 4*sqrt(N)).")] = None,
    nprobe: Annotated[Optional[int], typer.Option("--nprobe", help="ivf: cells scanned per query (default nlist/8, at least 16).")] = None,
    ef_search: Annotated[Optional[int], typer.Option("--ef-search", help="hnsw: search breadth (default max(64, 2k)).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Queries per batch (memory: batch x D floats).")] = 8192,
    device: Annotated[str, typer.Option("--device", help="auto (FAISS GPU when present), cpu, cuda, cuda:N, or cuda:all (shard REF over all GPUs).")] = "auto",
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
) -> None:
    """Find the k nearest REF rows of every QUERY row and write `distances` (Nq, k) float32 (true
    distances) and `indices` (Nq, k) int64 to an HDF5 file with metric, index, exactness and
    provenance attributes. Queries are streamed in batches, so QUERY may exceed memory.

    --device auto uses FAISS GPU indexes when faiss-gpu sees a GPU (cuda:all shards over all GPUs).

    Example: pgan knn synth_emb.npy members_emb.npy -k 5 -o knn.h5 --json
    """
    from pgan_cli.neighbors import search_files

    s = search_files(query, ref, output, k, metric=metric.lower(), index=index.lower(), device=device,
                     exclude_self=exclude_self, batch_size=batch_size, check_recall=check_recall, seed=seed,
                     nlist=nlist, nprobe=nprobe, ef_search=ef_search)
    if json_out:
        console.emit_json(s)
        return
    nd = s["nearest_distance"]
    line = (f"{output}: {s['n_query']} queries x {s['n_reference']} references, k={k}, {s['metric']}, "
            f"{s['index']} ({'exact' if s['exact'] else 'approximate'}) on {s['device']}; "
            f"nearest distance median {nd.get('median', float('nan')):.4g}")
    if s["recall"] is not None:
        line += f"; recall@{k} {s['recall']:.4f}"
    console.emit(line)
