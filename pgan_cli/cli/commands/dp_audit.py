"""``pgan dp-audit``: an empirical lower bound on a run's epsilon from its audit canaries (one-run
auditing, Steinke, Nasr & Jagielski, NeurIPS 2023)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pgan_cli import console
from pgan_cli.cli.frame import DeviceOpt, JsonOpt, JsonOutputOpt, SeedOpt, command, deliver


@command("dp-audit", stdout_json=True, help="Audit a run's DP claim with its canaries: an empirical lower bound on epsilon.")
def dp_audit_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint of a run trained with `pgan train --audit-canaries M`.")],
    canary_source: Annotated[Optional[Path], typer.Option("--canary-source", help="The held-out file the canaries came from (default: the path recorded at training; its SHA-256 must match).", dir_okay=False)] = None,
    score: Annotated[str, typer.Option("--score", help="How each canary is scored: logan (the discriminator's logit) or gan-leaks (minus the generator's reconstruction error).")] = "logan",
    confidence: Annotated[float, typer.Option("--confidence", help="Confidence of the lower bound (1 - beta), in [0.5, 1).")] = 0.95,
    guesses: Annotated[Optional[str], typer.Option("--guesses", help="One pre-registered test: K+ or K+,K- (guess 'in' for the K+ highest scores, 'out' for the K- lowest). Default: a fixed grid, Bonferroni-corrected.")] = None,
    delta: Annotated[Optional[float], typer.Option("--delta", help="Delta of the bound (default: the run's claimed delta; 1e-5 without DP).")] = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    output: JsonOutputOpt = None,
) -> None:
    """Score the run's canaries with the trained model, guess which were trained on, and turn the
    correct guesses into a lower bound on epsilon that holds with the given confidence. A bound
    above the claimed epsilon means the claim is false (a bug in the training's privacy), not a
    lucky draw at that confidence.

    JSON keys: claimed.epsilon, claimed.delta, audited.epsilon_lower_bound, audited.confidence,
    audited.guesses, audited.correct, audited.tests, exceeds_claim, canaries, provenance.

    Example: pgan train splits/train.h5 --dp-epsilon 4 --audit-canaries 200 --canary-source splits/reference.h5 -o dp.pt
    Example: pgan dp-audit dp.pt --json -o dp-audit.json
    """
    from pgan_cli.cli.frame import resolve_device
    from pgan_cli.privacy.one_run_audit import dp_audit_file

    result = dp_audit_file(checkpoint, canary_source=canary_source, score=score, confidence=confidence,
                           guesses=guesses, delta=delta, seed=seed, device=resolve_device(device))
    if deliver(result, output, json_out):
        return
    a, c = result["audited"], result["claimed"]
    claim = (f"claimed epsilon {c['epsilon']:.3g} at delta {c['delta']:.2g}" if c else "no DP claim (trained without DP)")
    console.emit(f"audited epsilon >= {a['epsilon_lower_bound']:.3g} at {a['confidence']:.0%} confidence "
                 f"({a['correct']} of {a['guesses']} guesses right on {result['canaries']['m']} canaries, "
                 f"{result['score']} scores); {claim}"
                 + ("; THE AUDIT EXCEEDS THE CLAIM" if result["exceeds_claim"] else ""))
