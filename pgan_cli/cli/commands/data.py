"""``pgan data``: get real data in (bundled sets, image folders, DICOM, NPY), split it, inspect it,
and export it back to pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pgan_cli import console
from pgan_cli.cli.frame import JsonOpt, OutputOpt, SeedOpt, group
from pgan_cli.errors import UsageError
from pgan_cli.params import DEFAULT_MAX_PIXELS, OptionError, defaults_of

data = group("data", help="Create, import, split, inspect and export dataset files (.h5).")


def _write_bundle(bundle, output: Path, seed: int | None = None, inputs=(), **params) -> None:
    from pgan_cli.dataset import write_dataset
    from pgan_cli.provenance import make_provenance

    prov = make_provenance(inputs, seed=seed, **params)
    write_dataset(output, bundle.samples, labels=bundle.labels, class_names=bundle.class_names,
                  attrs=bundle.attrs, provenance=prov)
    shape = "x".join(map(str, bundle.samples.shape))
    console.log(f"wrote {output} ({shape})")


@data.command("digits", help="scikit-learn's 1,797 real handwritten digits (10 classes) as images.")
def digits_cmd(
    output: OutputOpt,
    size: Annotated[int, typer.Option("--size", help="Image size: 8 (native), 16, 32 or 64 (antialiased).")] = 8,
) -> None:
    """Write scikit-learn's bundled handwritten digits as a dataset file (values in [-1, 1]).

    Example: pgan data digits --size 32 -o real.h5
    """
    from pgan_cli.datasets import digits

    _write_bundle(digits(size), output, size=size)


@data.command("breast-cancer", help="scikit-learn's Wisconsin breast-cancer table (569 patients, 30 features).")
def breast_cancer_cmd(output: OutputOpt) -> None:
    """Write the bundled breast-cancer table as vectors (unscaled; 0 = malignant, 1 = benign).

    Example: pgan data breast-cancer -o table.h5
    """
    from pgan_cli.datasets import breast_cancer

    _write_bundle(breast_cancer(), output)


@data.command("gaussian", help="2-D toy sets: one Gaussian or K modes on a ring (the mode-collapse benchmark of Metz et al. 2017).")
def gaussian_cmd(
    output: OutputOpt,
    modes: Annotated[int, typer.Option("--modes", help="Number of modes (1: a single Gaussian at the origin).")] = 8,
    n: Annotated[int, typer.Option("-n", help="Number of points.")] = 2000,
    radius: Annotated[float, typer.Option("--radius", help="Radius of the ring of modes.")] = 2.0,
    std: Annotated[float, typer.Option("--std", help="Standard deviation of each mode.")] = 0.02,
    seed: SeedOpt = 0,
) -> None:
    """Write a 2-D Gaussian mixture; the true mixture is stored so metrics can score against it.

    Example: pgan data gaussian --modes 8 -n 2000 --seed 0 -o ring.h5
    """
    from pgan_cli.datasets import gaussian_mixture

    if modes == 1 and radius != defaults_of(gaussian_cmd)["radius"]:  # one mode sits at the origin
        raise OptionError("$radius applies to a ring ($modes 2 or more); one mode sits at the origin: drop it",
                          "radius", "modes")
    _write_bundle(gaussian_mixture(modes, n, radius, std, seed), output, seed=seed,
                  modes=modes, n=n, radius=radius, std=std)


@data.command("split", help="Split a dataset into disjoint, stratified, seeded parts (train/holdout/reference).")
def split_cmd(
    source: Annotated[Path, typer.Argument(help="Dataset file to split.")],
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for the parts (<name>.h5 each).")],
    fractions: Annotated[str, typer.Option("--fractions", help="Comma-separated fractions summing to 1.")] = "0.5,0.25,0.25",
    names: Annotated[str, typer.Option("--names", help="Comma-separated names of the parts.")] = "train,holdout,reference",
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
) -> None:
    """Split SOURCE into members (train), holdout and reference parts, stratified by label.

    Each part records the row numbers it came from (`source_indices`). The same seed gives
    the same files.

    Example: pgan data split real.h5 --fractions 0.5,0.25,0.25 --names train,holdout,reference --out-dir splits --seed 0
    """
    from pgan_cli.split import split_file

    result = split_file(source, out_dir, fractions=fractions, names=names, seed=seed)
    if json_out:
        console.emit_json(result)
        return
    sizes = ", ".join(f"{n}={p['n']}" for n, p in result["parts"].items())
    console.log(f"split {source} ({result['n']} rows) into {out_dir}: {sizes}")


@data.command("info", help="Show N, shape, value range, label counts and provenance of a file.")
def info_cmd(
    path: Annotated[Path, typer.Argument(help="Dataset file (.h5) or NPY array.")],
    json_out: JsonOpt = False,
) -> None:
    """Describe a dataset file or NPY array (validates it on the way).

    Example: pgan data info splits/train.h5 --json | jq .label_counts
    """
    from pgan_cli.samples import describe_file
    from pgan_cli.files import check_input

    check_input(path, "dataset file")
    info = describe_file(path)
    if json_out:
        console.emit_json(info)
        return
    lines = [f"{info['path']}: {info['n']} {info['kind']} of shape {tuple(info['shape'])}, float32, "
             f"values in [{info['value_range'][0]:.4g}, {info['value_range'][1]:.4g}]"]
    if info.get("label_counts"):
        lines.append("labels: " + ", ".join(f"{k}={v}" for k, v in info["label_counts"].items()))
    prov = info.get("provenance") or {}
    if prov:
        lines.append(f"made by: {prov.get('command')} (pgan {prov.get('pgan_version')}, {prov.get('time')}, "
                     f"seed {prov.get('seed')})")
    console.emit("\n".join(lines))


def _parse_window(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        c, w = (float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--window {text!r} must be 'CENTER,WIDTH', e.g. 40,400 for a CT soft-tissue window") from None
    return c, w


@data.command("import", help="Import folders/files of PNG, JPEG, TIFF, DICOM or NPY images.")
def import_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Folders (sub-folders = classes) or image files.")],
    output: OutputOpt,
    size: Annotated[Optional[int], typer.Option("--size", help="Resize every image to SIZE x SIZE (antialiased). "
                                                "Without it all images must share one size.")] = None,
    channels: Annotated[int, typer.Option("--channels", help="Channels to store: 1 (grey) or 3 (RGB).")] = 1,
    window: Annotated[Optional[str], typer.Option("--window", help="DICOM window 'CENTER,WIDTH' in rescaled "
                                                  "units (e.g. 40,400 for CT soft tissue).")] = None,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="CSV of 'path,label' rows instead of "
                                                   "sub-folder names.")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable or too large files and links "
                                           "leaving the folder (listed in the provenance).")] = False,
    max_pixels: Annotated[int, typer.Option("--max-pixels", help="Refuse a file that would decode more pixels "
                                            "at once (one frame, one NPY image, a DICOM file): a "
                                            "decompression-bomb guard.")] = DEFAULT_MAX_PIXELS,
    follow_symlinks: Annotated[bool, typer.Option("--follow-symlinks", help="Read symbolic links in a folder "
                                                  "that point outside it (refused by default).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Import images into a dataset file with values in [-1, 1].

    Labels come from immediate sub-folder names (PATH/<class>/...) or --labels. 8-bit images
    map [0, 255] to [-1, 1]; DICOM with --window maps [C - W/2, C + W/2]; other 16-bit or float
    data maps its 0.5th-99.5th percentile range. The mapping is stored in the file.

    Folders may be hostile: images over --max-pixels (checked from the header, before
    decoding), decompression bombs and links leaving the folder are refused, or skipped with
    --skip-bad (docs/FORMAT.md).

    Example: pgan data import scans/ --size 64 --window 40,400 -o real.h5
    """
    from pgan_cli.imaging.importer import import_file

    result = import_file(list(paths), output, size=size, channels=channels, window=_parse_window(window),
                         labels_csv=labels, skip_bad=skip_bad, max_pixels=max_pixels,
                         follow_symlinks=follow_symlinks)
    if json_out:
        console.emit_json(result)
    else:
        console.log(f"wrote {result['output']}: {result['n']} images of shape {tuple(result['shape'])} "
                    f"from {result['files']} files")


@data.command("export", help="Write a dataset's images back to PNG files or one PNG grid.")
def export_cmd(
    source: Annotated[Path, typer.Argument(help="Dataset file of images.")],
    png_dir: Annotated[Optional[Path], typer.Option("--png-dir", help="Folder for one PNG per sample "
                                                    "(class sub-folders when labelled).")] = None,
    grid: Annotated[Optional[Path], typer.Option("--grid", help="One PNG with a grid of the first N samples.")] = None,
    n: Annotated[int, typer.Option("-n", help="Number of samples in the grid.")] = 64,
    json_out: JsonOpt = False,
) -> None:
    """Export images to PNG (one channel grey, three RGB, others the middle channel).

    Exported folders re-import with `pgan data import` (class sub-folders keep the labels).

    Example: pgan data export synth.h5 --grid synth.png -n 64
    """
    from pgan_cli.imaging.pictures import export_file

    if (png_dir is None) == (grid is None):
        raise UsageError("give exactly one of --png-dir DIR or --grid FILE.png")
    result = export_file(source, png_dir=png_dir, grid=grid, n=n)
    if json_out:
        console.emit_json(result)
    else:
        console.log(f"wrote {result['files']} PNG file(s) to {result['output']}")


