"""``make_report``: results in, summary.json and the HTML page out, the verdict back."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from pgan_cli.errors import UsageError
from pgan_cli.console import to_json
from pgan_cli.atomic import atomic_path
from pgan_cli.files import check_paths
from pgan_cli.report import gates as G
from pgan_cli.report.results import KIND_DP_AUDIT, PRIVACY_KINDS, load_result
from pgan_cli.report.summary import KEY_GATES, KEY_VERDICT, build_summary

MAP_METHODS = ("pca", "umap")


def make_report(results: list[str | os.PathLike], output: str | os.PathLike | None = None, *,
                summary_path: str | os.PathLike | None = None, gates: list[str] | None = None,
                preset: str | None = None, members: str | os.PathLike | None = None,
                synthetic: str | os.PathLike | None = None, holdout: str | os.PathLike | None = None,
                show_real_images: bool = False, map_method: str = "pca", seed: int = 0,
                title: str = "pgan audit report") -> tuple[dict[str, Any], list[G.GateResult]]:
    """Load ``results``, evaluate the gates, write the HTML page and ``summary.json``.

    Returns the summary and the gate results; the caller decides the exit code (see
    :func:`pgan_cli.report.gates.raise_if_failed`). Every check that can fail on bad input runs
    before anything is written, so a failed call leaves no output behind.
    """
    from pgan_cli.dataset import read_dataset
    from pgan_cli.report.html import render

    if show_real_images and members is None:
        raise UsageError("--show-real-images needs --members (the images to compare with)")
    if map_method not in MAP_METHODS:
        raise UsageError(f"unknown --map {map_method!r}; use pca or umap")
    if output is None and summary_path is None:
        raise UsageError("nothing to write: give -o report.html and/or --summary summary.json")
    # the one output check of every command (docs/security.md), also for callers from Python
    check_paths([("input", Path(p)) for p in [*results, members, synthetic, holdout] if p is not None],
                [(flag, Path(p)) for flag, p in (("-o", output), ("--summary", summary_path)) if p is not None],
                [])
    gate_list = [G.parse_gate(t) for t in gates or []]  # malformed gates fail before any work
    loaded = [load_result(p) for p in results]
    roles = {k: Path(v) for k, v in (("members", members), ("synthetic", synthetic), ("holdout", holdout)) if v}
    bundles = {role: read_dataset(p) for role, p in roles.items()}
    summary = build_summary(loaded, roles)
    # Fail closed (docs/report.md): privacy results with no --gate imply the default preset, even
    # when they hold no attack at all; a gated figure that is missing is a failed gate.
    has_privacy = any(r.kind in PRIVACY_KINDS for r in loaded)
    preset_used = G.implied_preset(preset, has_privacy, bool(gate_list))
    has_dp_audit = any(r.kind == KIND_DP_AUDIT for r in loaded)
    all_gates = G.preset_gates(preset_used) + G.dp_audit_gates(preset, has_dp_audit) + gate_list
    results_g = G.evaluate(summary, all_gates)
    if all_gates and not results_g:  # evaluate gives every gate a result; never let a gate vanish
        raise AssertionError("gates were given but none was evaluated")
    summary[KEY_VERDICT] = G.verdict(results_g)
    summary[KEY_GATES] = [r.as_dict() for r in results_g]
    summary["preset"] = preset_used
    # Everything is computed before anything is written; both files are then written to temporary
    # names and renamed together, so a failed call (exit 2) leaves neither behind.
    contents: list[tuple[Path, str, str]] = []
    if output is not None:
        from pgan_cli.report.measure import measure_page

        measured = measure_page(loaded, members=bundles.get("members"), synthetic=bundles.get("synthetic"),
                                holdout=bundles.get("holdout"), show_real_images=show_real_images,
                                map_method=map_method, seed=seed)
        page = render(summary, loaded, measured, members=bundles.get("members"), synthetic=bundles.get("synthetic"),
                      show_real_images=show_real_images, seed=seed, title=title)
        contents.append((Path(output), ".html.tmp", page))
    if summary_path is not None:
        contents.append((Path(summary_path), ".json.tmp", to_json(summary) + "\n"))
    with contextlib.ExitStack() as stack:
        for target, suffix, text in contents:
            stack.enter_context(atomic_path(target, suffix=suffix)).write_text(text, encoding="utf-8")
    return summary, results_g
