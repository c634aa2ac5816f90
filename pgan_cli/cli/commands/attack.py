"""``pgan attack``: membership inference and distance-based privacy of a released synthetic set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pgan_cli import console
from pgan_cli.cli.frame import DeviceOpt, JsonOpt, SeedOpt, command
from pgan_cli.params import DEFAULT_BOOTSTRAP, DEFAULT_SHADOW_MODELS, DEFAULT_SHADOW_TARGETS

_FileOpt = Optional[Path]


@command("attack", help="Membership-inference attacks and distance privacy metrics on a synthetic set.")
def attack_cmd(
    members: Annotated[Path, typer.Option("--members", help="Members M: the generator's training records.")],
    non_members: Annotated[Path, typer.Option("--holdout", help="Holdout H (the non-members): real records of "
                                                                "the same source, never trained on.")],
    synthetic: Annotated[_FileOpt, typer.Option("--synthetic", help="Synthetic set S that is released.")] = None,
    reference: Annotated[_FileOpt, typer.Option("--reference", help="Reference records R from the population "
                                                                    "(dcr-calibrated, domias, logan-blackbox).")] = None,
    generator: Annotated[_FileOpt, typer.Option("--generator", help="Checkpoint gen.pt (white-box logan, gan-leaks).")] = None,
    reference_generator: Annotated[_FileOpt, typer.Option("--reference-generator",
                                                          help="Checkpoint trained on other data (calibrates gan-leaks).")] = None,
    methods: Annotated[str, typer.Option("--methods", help="Comma-separated attacks, or 'all' (those whose inputs "
                                                           "were given).")] = "all",
    scores: Annotated[_FileOpt, typer.Option("--scores", help="Write per-candidate scores and membership "
                                                              "truth here (HDF5).", dir_okay=False)] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples for the AUC interval (0: no interval; 10 to 100,000).")] = DEFAULT_BOOTSTRAP,
    distances: Annotated[bool, typer.Option("--distances/--no-distances", help="Also compute the distance "
                                                                               "metrics (needs --synthetic).")] = True,
    shadow_models: Annotated[Optional[int], typer.Option("--shadow-models", help="shadow: generators trained with "
                                                         f"the release's recipe (at least 2) [default: {DEFAULT_SHADOW_MODELS}].")] = None,
    targets: Annotated[Optional[int], typer.Option("--targets", help="shadow: targets per side (members, holdout): "
                                                   "half the most exposed by DCR, half at random "
                                                   f"[default: {DEFAULT_SHADOW_TARGETS}].")] = None,
    shadow_dir: Annotated[_FileOpt, typer.Option("--shadow-dir", help="shadow: work folder for the shadow generators "
                                                 "and their samples; a re-run reuses finished ones [default: a "
                                                 "temporary folder, removed].", file_okay=False)] = None,
    shadow_steps: Annotated[Optional[int], typer.Option("--shadow-steps", help="shadow: generator steps per shadow "
                                                        "instead of the release's recipe (recorded in the result).")] = None,
    shadow_copies: Annotated[Optional[int], typer.Option("--shadow-copies", help="shadow: copies of a target in a shadow "
                                                         "training set that holds it (1: the record once; more: would "
                                                         "a record repeated that often be found).")] = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Score every candidate of M ∪ H with each attack (higher = more likely a member) and report
    AUC with a bootstrap 95% interval, TPR at FPR 0.1%/1%/10%, advantage, balanced accuracy and
    an effective-epsilon lower bound; plus DCR, DCR share, NNDR (synthetic and holdout), NNAA,
    authenticity, the data-copying test C_T, near-copies and epsilon-identifiability (members
    and the holdout baseline, L2 and entropy-weighted). Inputs are dataset files (pixels) or NPY embeddings
    from `pgan embed`, all in one space. Methods: dcr, dcr-calibrated, pairwise, density,
    domias, logan-blackbox, and with --generator logan and gan-leaks. Named only: shadow
    (--synthetic, --reference, --generator): trains --shadow-models generators with the
    release's recipe and scores --targets members and holdout records.

    Example: pgan attack --members splits/train.h5 --holdout splits/holdout.h5 --synthetic synth.h5 --reference splits/reference.h5 --scores scores.h5 --json
    Example: pgan attack --members splits/train.h5 --holdout splits/holdout.h5 --synthetic synth.h5 --reference splits/reference.h5 --generator gen.pt --methods shadow --shadow-dir shadows --json
    """
    from pgan_cli.attacks import audit_files
    from pgan_cli.neighbors import attack_knn_device
    from pgan_cli.attacks import keys as K
    from pgan_cli.cli.frame import resolve_device
    from pgan_cli.errors import UsageError

    if synthetic is None and generator is None:
        raise UsageError("give --synthetic (black-box attacks) and/or --generator (white-box attacks)")
    dev = resolve_device(device) if generator is not None else "cpu"
    result = audit_files(members, non_members, synthetic, reference, generator, reference_generator, methods,
                         scores, seed, dev, bootstrap, distances, knn_device=attack_knn_device(device),
                         shadow_models=shadow_models, targets=targets, shadow_dir=shadow_dir,
                         shadow_steps=shadow_steps, shadow_copies=shadow_copies)
    if json_out:
        console.emit_json(result)
        return
    lines = [f"{'attack':16s} {'AUC':>6s}  {'95% CI':15s} {'TPR@1%':>7s} {'adv':>6s} {'eps_lb':>6s}"]
    for name, r in result[K.KEY_ATTACKS].items():
        ci = r[K.KEY_AUC_CI]
        ci_text = "(none)         " if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"
        lines.append(f"{name:16s} {r[K.KEY_AUC]:6.3f}  {ci_text}  {r[K.KEY_TPR_AT_FPR]['0.01']:7.3f} "
                     f"{r[K.KEY_ADVANTAGE]:6.3f} {r[K.KEY_EPSILON_LOWER_BOUND]:6.2f}")
    for name, r in result[K.KEY_ATTACKS].items():
        if K.KEY_TARGETS in r:
            p = r[K.KEY_PARAMS]
            lines.append(f"{name}: over {len(r[K.KEY_TARGETS])} targets; {p.get(K.KEY_SHADOWS_TRAINED)} shadow "
                         f"models trained, {p.get(K.KEY_SHADOWS_REUSED)} reused; "
                         f"{p.get(K.KEY_CPU_MINUTES_PER_TARGET)} CPU minutes per target")
    d = result[K.KEY_DISTANCES]
    if d:
        ct = d[K.KEY_DATA_COPYING_CT]
        lines.append(f"DCR share {d[K.KEY_DCR_SHARE]:.3f} (ideal 0.5), authenticity {d[K.KEY_AUTHENTICITY]:.3f}, "
                     f"NNAA privacy loss {d[K.KEY_NNAA_PRIVACY_LOSS]:+.3f}, C_T "
                     f"{'n/a' if ct is None else f'{ct:.2f}'}, near-copies {d[K.KEY_NEAR_COPIES]}")
        eps = d[K.KEY_EPS_IDENTIFIABILITY]
        lines.append(f"epsilon-identifiability {eps[K.KEY_EPS_MEMBERS]:.3f} (holdout baseline "
                     f"{eps[K.KEY_EPS_HOLDOUT]:.3f})")
    if result[K.KEY_SETS]["balanced_subsampling"]:
        lines.append(result[K.KEY_SETS]["note"])
    if scores is not None:
        lines.append(f"scores written to {scores}")
    console.emit("\n".join(lines))
