"""``pgan data leak``: a synthetic set with a planted share of member copies (attack validation)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pgan_cli import console
from pgan_cli.cli.frame import JsonOpt, OutputOpt, SeedOpt
from pgan_cli.cli.commands.data import data


@data.command("leak", help="Write a synthetic set in which a fraction F are noisy copies of members.")
def leak_cmd(
    members: Annotated[Path, typer.Option("--members", help="Members dataset file (the training set).")],
    population: Annotated[Path, typer.Option("--population", help="Population records disjoint from members "
                                                                   "and non-members (e.g. the reference split).")],
    output: OutputOpt,
    fraction: Annotated[float, typer.Option("--fraction", help="Share F of rows that copy a member (0..1).")] = 0.5,
    noise: Annotated[float, typer.Option("--noise", help="Std of the Gaussian noise added to each copy.")] = 0.0,
    n: Annotated[Optional[int], typer.Option("-n", help="Number of rows (default: the number of members).")] = None,
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
) -> None:
    """Plant a known leak: round(F * N) rows are members plus N(0, noise²), the rest fresh population rows.

    The file is a normal dataset file; `leak_is_copy` and `leak_member_index` record which rows
    copy which member (tests use them), the `leak` attribute the settings. Draw detection curves
    by attacking sets made with increasing --fraction.

    Example: pgan data leak --members splits/train.h5 --population splits/reference.h5 --fraction 0.5 --noise 0.1 -o leak.h5
    """
    from pgan_cli.leak import leak_files

    leak = leak_files(members, population, output, fraction, noise, n, seed)
    s = leak.summary
    if json_out:
        console.emit_json({"output": str(output), **s})
    else:
        console.log(f"wrote {output}: {s['n']} rows, {s['n_copies']} member copies (noise {s['noise']:g}), "
                    f"{s['n_fresh']} fresh population rows")
