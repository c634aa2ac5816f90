"""``pgan cluster``: cluster a set without its labels (k-means or IIC) and score the clusters
against the labels when the file has them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pgan_cli import console
from pgan_cli.cli.frame import DeviceOpt, JsonOpt, OutputOpt, SeedOpt, command
from pgan_cli.params import (DEFAULT_CLUSTERS, DEFAULT_IIC_BATCH, DEFAULT_IIC_EPOCHS, DEFAULT_IIC_HEADS,
                             DEFAULT_IIC_OVERCLUSTER, DEFAULT_IIC_REPEATS, Only, check_applies, defaults_of)

# the options of IIC's net and its training (docs/cluster.md): k-means (scikit-learn, on the CPU)
# has none of them, so with --method kmeans each is refused unless it holds its default
APPLIES = {name: Only("method", ("iic",)) for name in ("epochs", "heads", "overcluster", "batch_size", "repeats",
                                                        "device")}


@command("cluster", help="Cluster a set without labels (k-means or IIC); accuracy, NMI and ARI when it has labels.")
def cluster_cmd(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Dataset file (.h5) or NPY array; its labels, if any, only score the clusters.")],
    output: OutputOpt,
    method: Annotated[str, typer.Option("--method", "-m", help="kmeans (scikit-learn, 10 restarts) or iic (Invariant Information Clustering, a small net trained here).")] = "kmeans",
    k: Annotated[int, typer.Option("-k", "--k", help="Number of clusters (2 to 1,000).")] = DEFAULT_CLUSTERS,
    epochs: Annotated[int, typer.Option("--epochs", help="iic: epochs, each one pass of the overclustering head and one of the main head.")] = DEFAULT_IIC_EPOCHS,
    heads: Annotated[int, typer.Option("--heads", help="iic: sub-heads per head; the main head's lowest-loss sub-head gives the clusters.")] = DEFAULT_IIC_HEADS,
    overcluster: Annotated[int, typer.Option("--overcluster", help="iic: the overclustering head has this many times k clusters (0: no overclustering head).")] = DEFAULT_IIC_OVERCLUSTER,
    batch_size: Annotated[int, typer.Option("--batch-size", help="iic: distinct rows per batch.")] = DEFAULT_IIC_BATCH,
    repeats: Annotated[int, typer.Option("--repeats", help="iic: perturbations of each row per batch.")] = DEFAULT_IIC_REPEATS,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    json_out: JsonOpt = False,
) -> None:
    """Cluster the rows of DATA into k clusters without looking at its labels, and write the
    assignments (int64), the cluster sizes, the method's parameters and provenance to an HDF5
    file (format pgan-clusters, docs/FORMAT.md).

    kmeans: scikit-learn's k-means on the flattened rows, the best of 10 runs. iic: Invariant
    Information Clustering (Ji, Henriques & Vedaldi, ICCV 2019): a small net learns clusters
    that agree between each row and a random perturbation of it (affine maps and noise for
    images, dropout and noise for vectors), with an overclustering head and sub-heads;
    minutes on a CPU for the 8x8 digits, a progress bar on stderr (docs/cluster.md).

    When DATA has labels: accuracy (clusters mapped to classes by the Hungarian assignment),
    nmi and ari. JSON keys: output, method, k, n, seed, device, sizes, empty_clusters, params,
    kmeans.{inertia,...} or iic.{sub_head,sub_head_losses,loss,...}, accuracy, nmi, ari,
    mapping, num_classes (labelled data only), seconds.

    Example: pgan cluster digits.h5 --method kmeans --k 10 -o clusters.h5 --json

    Example: pgan cluster private.h5 --method iic --k 10 --epochs 30 --seed 0 -o clusters.h5
    """
    from pgan_cli.metrics.clustering import cluster_file

    check_applies(APPLIES, ctx.params, defaults_of(cluster_cmd))
    r = cluster_file(data, output, method=method, k=k, seed=seed, device=device, epochs=epochs, heads=heads,
                     overcluster=overcluster, batch_size=batch_size, repeats=repeats)
    if json_out:
        console.emit_json(r)
        return
    line = (f"wrote {r['output']}: {r['n']} rows in {r['k']} clusters ({r['method']} on {r['device']}), "
            f"sizes {min(r['sizes'])}-{max(r['sizes'])}")
    if "accuracy" in r:
        line += f"; against the labels: accuracy {r['accuracy']:.3f}, NMI {r['nmi']:.3f}, ARI {r['ari']:.3f}"
    console.emit(line)
