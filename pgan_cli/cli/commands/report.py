"""``pgan report``: the audit's results in one self-contained HTML page, summary.json and a verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pgan_cli import console
from pgan_cli.cli.frame import JsonOpt, SeedOpt, command

GateOpt = Annotated[Optional[list[str]], typer.Option(
    "--gate", help="A gate 'PATH OP NUMBER' on summary.json, e.g. 'privacy.attacks.dcr.auc <= 0.6' (repeatable).")]
PresetOpt = Annotated[Optional[str], typer.Option(
    "--preset", help="Gate preset: default, strict or none (default: 'default' when attack results are given "
                     "and no --gate).")]
ShowRealOpt = Annotated[bool, typer.Option(
    "--show-real-images", help="Show the closest synthetic/member pairs (puts real training images in the report).")]


@command("report", help="Assemble results into a self-contained HTML report, summary.json and a verdict.")
def report_cmd(
    results: Annotated[Optional[list[Path]], typer.Argument(help="Result files: JSON of attack/mmd/fidelity/"
                                                                 "utility, train log .jsonl, knn.h5, scores.h5.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="The HTML report to write.",
                                                   dir_okay=False)] = None,
    summary: Annotated[Optional[Path], typer.Option("--summary", help="Write summary.json here.", dir_okay=False)] = None,
    gate: GateOpt = None,
    preset: PresetOpt = None,
    members: Annotated[Optional[Path], typer.Option("--members", help="Members dataset (map; pairs with --show-real-images).")] = None,
    synthetic: Annotated[Optional[Path], typer.Option("--synthetic", help="Synthetic dataset (sample grids, map).")] = None,
    holdout: Annotated[Optional[Path], typer.Option("--holdout", help="Holdout dataset (DCR histogram when no knn files).")] = None,
    show_real_images: ShowRealOpt = False,
    map_method: Annotated[str, typer.Option("--map", help="2-D map: pca (fast) or umap (about 40 s to compile).")] = "pca",
    title: Annotated[str, typer.Option("--title", help="Title of the report.")] = "pgan audit report",
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
) -> None:
    """Read the results of pgan attack, mmd, fidelity and utility (and a training log, knn and
    scores files), write one HTML page with every figure embedded, and gate on the figures.

    Exit 0 when every gate passes, 1 when one fails or a gated figure is missing (each is listed),
    2 on bad input. Privacy results without --gate get the default preset; only --preset none
    gives NO GATES on them. Real training images appear only with --show-real-images.

    Example: pgan report attack.json mmd.json scores.h5 --synthetic s.h5 -o report.html --summary summary.json
    """
    from pgan_cli.report.build import make_report
    from pgan_cli.report.gates import raise_if_failed

    summ, gate_results = make_report(results or [], output, summary_path=summary, gates=gate, preset=preset,
                                     members=members, synthetic=synthetic, holdout=holdout,
                                     show_real_images=show_real_images, map_method=map_method, seed=seed,
                                     title=title)
    where = ", ".join(str(p) for p in (output, summary) if p is not None)
    if json_out:
        console.emit_json({"verdict": summ["verdict"], "preset": summ["preset"], "gates": summ["gates"],
                           "report": str(output) if output else None, "summary": str(summary) if summary else None})
    elif gate_results:
        failed = sum(1 for g in gate_results if not g.passed)
        console.emit(f"verdict: {summ['verdict'].upper()} ({len(gate_results)} gates, {failed} failed); wrote {where}")
    else:  # only --preset none without --gate, or results with no privacy figure (docs/report.md)
        console.emit(f"verdict: NO GATES (nothing was checked: preset {summ['preset']}, no --gate); wrote {where}")
    raise_if_failed(gate_results)
