"""``pgan fidelity``: is the synthetic data faithful and diverse? PRDC, alpha/beta, Fréchet, C2ST, modes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pgan_cli import console
from pgan_cli.cli.frame import JsonOpt, JsonOutputOpt, SeedOpt, command, deliver
from pgan_cli.params import DEFAULT_PRDC_K


@command("fidelity", stdout_json=True, help="Precision/recall/density/coverage, alpha-precision/beta-recall, Fréchet distance, C2ST AUC.")
def fidelity_cmd(
    real: Annotated[Path, typer.Argument(metavar="REAL", help="Real set: dataset file (.h5) or NPY (N, D).")],
    synthetic: Annotated[Path, typer.Argument(metavar="SYNTH", help="Synthetic set, same space.")],
    k: Annotated[int, typer.Option("--k", help="Neighbours for the PRDC radii (Naeem et al. use 5).")] = DEFAULT_PRDC_K,
    metrics: Annotated[Optional[str], typer.Option("--metrics", help="Subset: comma-separated from prdc, alpha-beta, frechet, c2st (default all).")] = None,
    c2st_classifier: Annotated[str, typer.Option("--c2st-classifier", help="gbm (gradient boosting) or logreg.")] = "gbm",
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
    output: JsonOutputOpt = None,
) -> None:
    """Fidelity and diversity of SYNTH against REAL, in the space of the given files.

    For files made by `pgan data gaussian`, the true mixture stored in REAL also gives
    modes_covered, modes_total, high_quality_fraction and log_likelihood.

    A C2ST AUC significantly below 0.5 (one-sided Mann-Whitney test on the held-out scores,
    p < 0.01) means the synthetic set copies the real one: c2st_copying is true, its test is in
    c2st_copying_test, and a warning says so on stderr.

    Example: pgan fidelity splits/train.h5 synthetic.h5 --k 5 --json
    """
    from pgan_cli.metrics.fidelity import fidelity_files, parse_metrics

    result = fidelity_files(real, synthetic, k=k, metrics=parse_metrics(metrics), seed=seed,
                            c2st_classifier=c2st_classifier)
    if deliver(result, output, json_out):
        return
    names = ["precision", "recall", "density", "coverage", "alpha_precision", "beta_recall", "frechet",
             "c2st_auc", "high_quality_fraction", "log_likelihood"]
    # a C2ST AUC significantly below 0.5 is a copying signal, not an ideal score
    copying = " (below chance: copying)" if result.get("c2st_copying") else ""
    parts = [f"{n} {result[n]:.4g}" + (copying if n == "c2st_auc" else "") for n in names if n in result]
    if "modes_covered" in result:
        parts.insert(0, f"modes {result['modes_covered']}/{result['modes_total']}")
    console.emit(", ".join(parts))
