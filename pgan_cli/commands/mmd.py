"""``pgan mmd``: kernel two-sample test (MMD², Gretton et al. 2012) between two sets of vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pgan_cli import console
from pgan_cli.cli import DeviceOpt, JsonOpt, OptionalOutputOpt, SeedOpt, command
from pgan_cli.params import DEFAULT_PERMUTATIONS


@command("mmd", help="MMD² between two sets (NPY or dataset files) with a permutation-test p-value.")
def mmd_cmd(
    x_path: Annotated[Path, typer.Argument(metavar="X", help="First set: NPY (N, D) or dataset file (.h5).")],
    y_path: Annotated[Path, typer.Argument(metavar="Y", help="Second set, same dimension.")],
    kernel: Annotated[str, typer.Option("--kernel", help="rbf exp(-d²/2σ²), laplace exp(-d/σ), or poly (x·y/d+1)³ (KID).")] = "rbf",
    bandwidth: Annotated[str, typer.Option("--bandwidth", help="σ: 'median' (median pooled distance, seeded subsample of ≤1000 per side) or a number.")] = "median",
    permutations: Annotated[int, typer.Option("--permutations", help="Permutations for the p-value (0: statistic only; at most 100,000).")] = DEFAULT_PERMUTATIONS,
    estimator: Annotated[str, typer.Option("--estimator", help="unbiased (U-statistic, permutation test) or linear (linear time, Gaussian p-value).")] = "unbiased",
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    output: OptionalOutputOpt = None,
) -> None:
    """Maximum mean discrepancy between X and Y: the unbiased MMD² and its p-value.

    The kernel matrix is computed once, in row blocks (no (N+M)² matrix in memory), and all
    permutations come from one float64 GEMM. JSON keys: mmd2, p_value, kernel, bandwidth, n_x,
    n_y, permutations, estimator, provenance.

    Example: pgan mmd real.h5 synthetic.h5 --permutations 1000 --seed 0 --json
    """
    from pgan_cli.cli import resolve_device
    from pgan_cli.files import write_json
    from pgan_cli.metrics.mmd import mmd_files

    result = mmd_files(x_path, y_path, kernel=kernel, bandwidth=bandwidth, permutations=permutations,
                       estimator=estimator, seed=seed, device=resolve_device(device))
    if output is not None:
        write_json(output, result)
    if json_out:
        console.emit_json(result)
        return
    r = result
    p = "n/a" if r["p_value"] is None else f"{r['p_value']:.4g}"
    bw = "" if r["bandwidth"] is None else f", σ = {r['bandwidth']:.4g} ({r['bandwidth_rule']})"
    console.emit(f"MMD² = {r['mmd2']:.6g}, p = {p} ({r['kernel']}{bw}, {r['estimator']}, "
                 f"{r['permutations']} permutations, n_x = {r['n_x']}, n_y = {r['n_y']})")
