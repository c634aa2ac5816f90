"""``pgan sample``: release a synthetic set (or an interpolation grid) from a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pgan_cli import console
from pgan_cli.cli.frame import DeviceOpt, JsonOpt, SeedOpt, command
from pgan_cli.params import Only, check_applies, defaults_of

# --interpolate draws a picture instead of a synthetic set: the set's options and the picture's
# each act in one of the two modes only
APPLIES = {**{name: Only("interpolate") for name in ("grid", "rows", "steps")},
           **{name: Only("interpolate", (False,)) for name in ("n", "output", "class_name", "classes_from",
                                                               "uniform_classes", "batch_size")}}


@command("sample", help="Draw N samples from a checkpoint into a dataset file, or draw an interpolation grid.")
def sample_cmd(
    ctx: typer.Context,
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint written by `pgan train` (.pt).")],
    n: Annotated[int, typer.Option("-n", "--n", help="Number of samples.")] = 1000,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Synthetic dataset file to write (.h5).", dir_okay=False)] = None,
    class_name: Annotated[Optional[str], typer.Option("--class", help="Conditional models: draw only this class (name or index).")] = None,
    classes_from: Annotated[Optional[Path], typer.Option("--classes-from", help="Conditional models: match the class prior of this dataset file.", dir_okay=False)] = None,
    uniform_classes: Annotated[bool, typer.Option("--uniform-classes", help="Conditional models: classes drawn uniformly.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Samples per generator call.")] = 256,
    interpolate: Annotated[bool, typer.Option("--interpolate", help="Draw latent-interpolation (and class-morph) rows instead.")] = False,
    grid: Annotated[Optional[Path], typer.Option("--grid", help="PNG file for --interpolate.", dir_okay=False)] = None,
    rows: Annotated[int, typer.Option("--rows", help="Rows of the interpolation grid.")] = 8,
    steps: Annotated[int, typer.Option("--steps", help="Images per interpolation row.")] = 10,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Write N samples with their latents (and labels for conditional models) as a pgan dataset file.

    Classes come from the training prior unless --class, --classes-from or --uniform-classes says
    otherwise. The same seed gives the same samples whatever --batch-size.

    Example: pgan sample gen.pt -n 1000 --seed 1 -o synth.h5
    Example: pgan sample gen.pt --interpolate --grid interp.png
    """
    from pgan_cli.gan.checkpoint import load_checkpoint
    from pgan_cli.cli.frame import resolve_device
    from pgan_cli.errors import UsageError
    from pgan_cli.files import check_input
    from pgan_cli.imaging import save_png
    from pgan_cli.gan.sampling import interpolation_grid, sample_file

    check_input(checkpoint, "checkpoint")
    check_applies(APPLIES, ctx.params, defaults_of(sample_cmd))
    if n <= 0:
        raise UsageError(f"-n must be a positive number of samples, got {n}")
    if interpolate:
        if grid is None:
            raise UsageError("--interpolate needs --grid FILE.png for the picture")
        ck = load_checkpoint(checkpoint, resolve_device(device))
        picture = interpolation_grid(ck, seed=seed, rows=rows, steps=steps)
        save_png(picture, grid, scale=max(1, 64 // ck.sample_shape[1]))
        result = {"grid": str(grid), "rows": rows, "steps": steps, "checkpoint_sha256": ck.sha256}
    else:
        if output is None:
            raise UsageError("missing --output/-o: the synthetic dataset file to write (e.g. -o synth.h5)")
        result = sample_file(checkpoint, output, n, class_name=class_name, classes_from=classes_from,
                             uniform_classes=uniform_classes, batch_size=batch_size, seed=seed,
                             device=resolve_device(device))
    if json_out:
        console.emit_json(result)
    elif interpolate:
        console.emit(f"wrote {grid} ({rows} rows x {steps})")
    else:
        console.emit(f"wrote {output}: {n} samples of shape {tuple(result['sample_shape'])}")
