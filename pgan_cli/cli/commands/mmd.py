"""``pgan mmd``: kernel two-sample test (MMD², Gretton et al. 2012) between two sets of vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pgan_cli import console
from pgan_cli.cli.frame import DeviceOpt, JsonOpt, JsonOutputOpt, SeedOpt, command, deliver
from pgan_cli.params import DEFAULT_PERMUTATIONS


@command("mmd", stdout_json=True, help="MMD² between two sets (NPY or dataset files) with a permutation-test p-value.")
def mmd_cmd(
    x_path: Annotated[Path, typer.Argument(metavar="X", help="First set: NPY (N, D) or dataset file (.h5).")],
    y_path: Annotated[Path, typer.Argument(metavar="Y", help="Second set, same dimension.")],
    kernel: Annotated[str, typer.Option("--kernel", help="rbf exp(-d²/2σ²), laplace exp(-d/σ), or poly (x·y/d+1)³ (KID; also KID's mean and std over subsets).")] = "rbf",
    bandwidth: Annotated[Optional[str], typer.Option("--bandwidth", help="σ of rbf and laplace: 'median' (default: median pooled distance, seeded subsample of ≤1000 per side) or a number. The poly kernel has none: refused with it.")] = None,
    permutations: Annotated[int, typer.Option("--permutations", help="Permutations for the p-value (0: statistic only; at most 100,000).")] = DEFAULT_PERMUTATIONS,
    estimator: Annotated[str, typer.Option("--estimator", help="unbiased (U-statistic, permutation test) or linear (linear time, Gaussian p-value).")] = "unbiased",
    kid_subsets: Annotated[Optional[int], typer.Option("--kid-subsets", help="poly only: KID subsets (torch-fidelity's kid_subsets; default 100).")] = None,
    kid_subset_size: Annotated[Optional[int], typer.Option("--kid-subset-size", help="poly only: rows per side in each KID subset (default min(1000, |X|, |Y|)).")] = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    output: JsonOutputOpt = None,
) -> None:
    """Maximum mean discrepancy between X and Y: the unbiased MMD² and its p-value.

    The kernel matrix is computed once, in row blocks (no (N+M)² matrix in memory), and all
    permutations come from one float64 GEMM. JSON keys: mmd2, p_value, kernel, bandwidth, n_x,
    n_y, permutations, estimator, provenance.

    With --kernel poly (KID's kernel) also kid_mean and kid_std over --kid-subsets random subsets
    of --kid-subset-size rows per side, as torch-fidelity computes KID (unbiased MMD² per subset,
    std with ddof 0; --seed 2020 draws torch-fidelity's default subsets), and kid_subsets,
    kid_subset_size. The poly kernel has no bandwidth: --bandwidth with it is refused.

    Example: pgan mmd real.h5 synthetic.h5 --permutations 1000 --seed 0 --json
    """
    from pgan_cli.cli.frame import resolve_device
    from pgan_cli.metrics.mmd import mmd_files

    result = mmd_files(x_path, y_path, kernel=kernel, bandwidth=bandwidth, permutations=permutations,
                       estimator=estimator, seed=seed, device=resolve_device(device), kid_subsets=kid_subsets,
                       kid_subset_size=kid_subset_size)
    if deliver(result, output, json_out):
        return
    r = result
    p = "n/a" if r["p_value"] is None else f"{r['p_value']:.4g}"
    bw = "" if r["bandwidth"] is None else f", σ = {r['bandwidth']:.4g} ({r['bandwidth_rule']})"
    kid = (f"; KID = {r['kid_mean']:.6g} ± {r['kid_std']:.3g} ({r['kid_subsets']} subsets of "
           f"{r['kid_subset_size']})") if "kid_mean" in r else ""
    console.emit(f"MMD² = {r['mmd2']:.6g}, p = {p} ({r['kernel']}{bw}, {r['estimator']}, "
                 f"{r['permutations']} permutations, n_x = {r['n_x']}, n_y = {r['n_y']}){kid}")
