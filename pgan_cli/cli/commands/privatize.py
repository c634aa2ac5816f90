"""``pgan privatize``: local differential privacy of a dataset file (randomised response, Gaussian or
Laplace mechanism per record; k-ary randomised response on labels)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pgan_cli import console
from pgan_cli.cli.frame import JsonOpt, OutputOpt, command
from pgan_cli.params import Only, check_applies, defaults_of

# the bit threshold is randomised response's (Warner 1965), the sigma calibration the Gaussian
# mechanism's (Balle & Wang 2018); the other mechanisms would ignore them
APPLIES = {"threshold": Only("mechanism", ("randomized-response",)), "calibration": Only("mechanism", ("gaussian",))}

@command("privatize", help="Local DP: randomise every record (randomized response, Gaussian, Laplace) and its label.")
def privatize_cmd(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="Dataset file (.h5) to privatize.")],
    output: OutputOpt,
    mechanism: Annotated[str, typer.Option("--mechanism", "-m", help="randomized-response (binarised pixels), gaussian (L2 clip) or laplace (L1 clip).")] = "gaussian",
    epsilon: Annotated[Optional[float], typer.Option("--epsilon", help="Privacy budget of one record's values (all pixels together).")] = None,
    delta: Annotated[Optional[float], typer.Option("--delta", help="gaussian only: delta in (0, 1) [default 1e-5].")] = None,
    clip: Annotated[Optional[float], typer.Option("--clip", help="Norm C records are clipped to (L2 gaussian, L1 laplace); sensitivity 2C. Default for images: sqrt(d) / d (no clipping); required for vectors.")] = None,
    calibration: Annotated[str, typer.Option("--calibration", help="gaussian sigma: analytic (Balle & Wang 2018, any epsilon) or classic (epsilon < 1 only).")] = "analytic",
    threshold: Annotated[float, typer.Option("--threshold", help="randomized-response: a pixel is 1 when above this value.")] = 0.0,
    rr_p: Annotated[Optional[float], typer.Option("--rr-p", help="randomized-response: P(report 1 | bit 1), instead of --epsilon.")] = None,
    rr_q: Annotated[Optional[float], typer.Option("--rr-q", help="randomized-response: P(report 1 | bit 0), instead of --epsilon.")] = None,
    labels_epsilon: Annotated[Optional[float], typer.Option("--labels-epsilon", help="Privatize labels by k-ary randomized response at this epsilon (else labels are dropped).")] = None,
    keep_raw_labels: Annotated[bool, typer.Option("--keep-raw-labels", help="Copy labels unprotected (NOT private; for experiments).")] = False,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed for a reproducible run; it is NOT stored in the output (knowing it undoes the noise). Default: fresh OS entropy.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Write a locally differentially private copy of SOURCE: each record is randomised on its own.

    --epsilon is the budget of a whole record (for randomized-response: pixels x per-pixel
    epsilon); labels add --labels-epsilon. The output keeps the input's value range (images
    clipped back to [-1, 1]) and records the guarantee in its `ldp` attribute.

    Example: pgan privatize splits/train.h5 --mechanism gaussian --epsilon 50 --labels-epsilon 2 -o private.h5
    """
    from pgan_cli.privacy.ldp import privatize_file

    check_applies(APPLIES, ctx.params, defaults_of(privatize_cmd))
    summary = privatize_file(source, output, mechanism=mechanism, epsilon=epsilon, delta=delta, clip=clip,
                             threshold=threshold, p=rr_p, q=rr_q, calibration=calibration,
                             labels_epsilon=labels_epsilon, keep_raw_labels=keep_raw_labels, seed=seed)
    info = summary
    if json_out:
        console.emit_json(summary)
    else:
        extra = f", labels epsilon {info['labels_epsilon']:g}" if info.get("labels_epsilon") else ""
        d = f", delta {info['delta']:g}" if info.get("delta") else ""
        console.emit(f"wrote {output}: {info['mechanism']}, epsilon {info['epsilon']:.4g} per record{d}{extra}")
