"""k-nearest-neighbour search with FAISS: exact or approximate, CPU or GPU, streamed over queries.

All neighbour work in pgan (knn, fidelity, attacks) goes through :func:`knn` (arrays in memory)
or :func:`knn_batches` / :func:`search_files` (query set streamed in batches, so it may exceed
memory; the reference set is held once, as the index).

Exactness. FAISS computes squared L2 as ``||x||² + ||y||² - 2x·y`` in float32 (Johnson, Douze &
Jégou, "Billion-scale similarity search with GPUs", IEEE TBD 2019), which loses precision when
the vectors' norms are large next to their distances and can go slightly negative for
near-duplicates. pgan therefore (1) centres both sets on the reference mean before an L2 search
(L2 is translation-invariant), (2) asks FAISS for a few more candidates than ``k`` and (3)
recomputes the distance of every candidate directly from the differences, re-sorts, and keeps
the ``k`` best (ties broken by the lower reference row). Distances returned are true distances:
Euclidean for ``l2``, ``1 - cosine similarity`` for ``cosine`` (computed as ``||a/|a| - b/|b|||² / 2``,
a zero vector has similarity 0 with everything), max-abs difference for ``linf``. A point is
never assumed to be its own first hit: ``exclude_self`` removes row ``i`` wherever it appears
among query ``i``'s candidates, so exact duplicates still count as neighbours.

Indexes: ``flat`` (exact; on the CPU blocked torch GEMMs with FAISS's heaps,
:mod:`~pgan_cli.neighbors.gemm`; ``GpuIndexFlat`` on GPU), ``ivf`` (IndexIVFFlat,
approximate, ``nlist`` cells of which ``nprobe`` are scanned) and ``hnsw`` (IndexHNSWFlat,
approximate, CPU only). ``recall`` compares an approximate search with the exact one on a
sample of queries.

The package: :mod:`~pgan_cli.neighbors.search` (the index, exact re-ranking, :func:`knn`, recall),
:mod:`~pgan_cli.neighbors.shared` (shared passes) and :mod:`~pgan_cli.neighbors.files` (``pgan knn``
on files, ``knn.h5``). Devices: :mod:`pgan_cli.devices`.
"""

from __future__ import annotations

from pgan_cli.neighbors.files import VectorSource, load_reference, search_files
from pgan_cli.neighbors.search import (EXTRA_CANDIDATES, GPU_MAX_K, INDEXES, METRICS, QUERY_BATCH, KnnResult,
                                       NeighborIndex, attack_knn_device, check_pair, check_shapes, default_nlist,
                                       default_nprobe, faiss_num_gpus, knn, knn_batches, nearest_distance,
                                       pair_distances, recall_against_exact, recall_at_k, recall_rows,
                                       resolve_knn_device)
from pgan_cli.neighbors.shared import knn_pair, knn_self, knn_self_batches

__all__ = ["EXTRA_CANDIDATES", "GPU_MAX_K", "INDEXES", "METRICS", "QUERY_BATCH", "KnnResult",
           "NeighborIndex", "VectorSource", "attack_knn_device", "check_pair", "check_shapes", "default_nlist",
           "default_nprobe", "faiss_num_gpus", "knn", "knn_batches", "knn_pair", "knn_self", "knn_self_batches",
           "load_reference", "nearest_distance", "pair_distances", "recall_against_exact", "recall_at_k",
           "recall_rows", "resolve_knn_device", "search_files"]
