"""``pgan audit``: every measurement and the report in one go, with the commands to redo each step."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pgan_cli import console
from pgan_cli.cli.frame import JsonOpt, SeedOpt, TrackExperimentOpt, TrackOpt, TrackUriOpt, command
from pgan_cli.cli.commands.report import GateOpt, PresetOpt, ShowRealOpt
from pgan_cli.params import DEFAULT_TENSORBOARD_ROOT, DEFAULT_TRACK

FileOpt = Optional[Path]


@command("audit", help="Audit a synthetic set: embed, knn, mmd, fidelity, utility, attack and report in one go.")
def audit_cmd(
    members: Annotated[Path, typer.Option("--members", help="The generator's training set (dataset file).")],
    holdout: Annotated[Path, typer.Option("--holdout", help="Real records never shown to the generator.")],
    synthetic: Annotated[Path, typer.Option("--synthetic", help="The synthetic set to release.")],
    output_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for every intermediate file and the report.",
                                             file_okay=False)],
    reference: Annotated[FileOpt, typer.Option("--reference", help="More real records (calibrated attacks, domias).")] = None,
    generator: Annotated[FileOpt, typer.Option("--generator", help="The generator checkpoint (white-box attacks).")] = None,
    train_log: Annotated[FileOpt, typer.Option("--train-log", help="The training log (pgan train --log) for curves.")] = None,
    canary_source: Annotated[FileOpt, typer.Option("--canary-source", help="The held-out file a --generator trained with audit canaries drew them from (pgan train --canary-source): adds the dp-audit step.")] = None,
    embedding: Annotated[str, typer.Option("--embedding", help="Comma-separated spaces: pixel, pca, umap, "
                                                               "autoencoder ...; the first one is used for MMD "
                                                               "and fidelity.")] = "pixel",
    gate: GateOpt = None,
    preset: PresetOpt = None,
    show_real_images: ShowRealOpt = False,
    attacks: Annotated[str, typer.Option("--attacks", help="Attacks to run (pgan attack --methods): 'all' (every "
                                                           "one whose inputs are given) or a comma-separated list.")] = "all",
    bootstrap: Annotated[Optional[int], typer.Option("--bootstrap", help="Bootstrap resamples for the attacks' AUC "
                                                                        "intervals (pgan attack's default: 1000).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-run every step, even unchanged ones.")] = False,
    track: TrackOpt = DEFAULT_TRACK,
    track_uri: TrackUriOpt = None,
    track_experiment: TrackExperimentOpt = None,
    track_run: Annotated[Optional[str], typer.Option("--track-run", help="--track mlflow: log into this existing run (the training run's ID, pgan train --json's tracking.run_id) instead of a new one.")] = None,
    track_dir: Annotated[Optional[Path], typer.Option("--track-dir", help=f"--track tensorboard: the folder for the event files (the training run's, to log beside it) [default: {DEFAULT_TENSORBOARD_ROOT}/<--out-dir name>].", file_okay=False)] = None,
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
) -> None:
    """Run the whole audit into a folder: every intermediate file lands there, with
    commands.sh holding the exact pgan command of each step. Re-running skips steps whose
    inputs and arguments have not changed. Exit 0 when the gates pass, 1 when one fails.

    With --track mlflow (or tensorboard) the summary's figures, the verdict and report.html +
    summary.json are logged once the report is written (--track-run: into the training run).

    Example: pgan audit --members s/train.h5 --holdout s/holdout.h5 --synthetic synth.h5 --out-dir audit
    Example: pgan audit --members s/train.h5 --holdout s/holdout.h5 --synthetic synth.h5 --out-dir audit --track mlflow --track-run RUN_ID
    """
    from pgan_cli.audit import StepFailed, run_audit

    try:
        res = run_audit(output_dir, members=members, holdout=holdout, synthetic=synthetic, reference=reference,
                        generator=generator, train_log=train_log, embeddings=embedding.split(","), gates=gate,
                        preset=preset, show_real_images=show_real_images, seed=seed, force=force,
                        bootstrap=bootstrap, attacks=attacks, track=track, track_uri=track_uri, track_dir=track_dir,
                        track_experiment=track_experiment, track_run=track_run, canary_source=canary_source)
    except StepFailed as e:  # the step printed its own error line
        raise typer.Exit(e.exit_code) from None
    from pgan_cli.errors import InputError
    from pgan_cli.formats import VERDICT_FAIL, VERDICT_NONE, VERDICT_PASS
    from pgan_cli.tracking import describe

    verdict = (res.summary or {}).get("verdict")
    if verdict not in (VERDICT_PASS, VERDICT_FAIL, VERDICT_NONE):  # fail closed: no verdict is no pass
        raise InputError(f"the report step left no verdict in {output_dir / 'summary.json'}; re-run with --force")
    report = output_dir / "report.html"
    if json_out:
        console.emit_json({"verdict": verdict, "report": str(report), "summary": str(output_dir / "summary.json"),
                           "commands": str(output_dir / "commands.sh"), "steps_run": res.steps_run,
                           "steps_cached": res.steps_cached, "steps_skipped": res.steps_skipped,
                           "gates": (res.summary or {}).get("gates", []),
                           **({"tracking": res.tracking} if res.tracking else {})})
    else:
        console.emit(f"verdict: {verdict.upper()}; report: {report}" + describe(res.tracking))
    if res.exit_code or verdict == VERDICT_FAIL:
        from pgan_cli.cli.frame import report_error

        report_error("pgan audit", res.failed_gates or "a gate failed; see the report")
        raise typer.Exit(res.exit_code or 1)
