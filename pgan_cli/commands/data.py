"""``pgan data``: get real data in (bundled sets, image folders, DICOM, NPY), split it, inspect it,
and export it back to pictures."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from pgan_cli import console
from pgan_cli.cli import JsonOpt, OutputOpt, SeedOpt, group
from pgan_cli.errors import UsageError

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


@data.command("gaussian", help="The seeds' 2-D toy sets: one Gaussian or K modes on a ring.")
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

    _write_bundle(gaussian_mixture(modes, n, radius, std, seed), output, seed=seed,
                  modes=modes, n=n, radius=radius, std=std)


@data.command("split", help="Split a dataset into disjoint, stratified, seeded parts (train/holdout/reference).")
def split_cmd(
    source: Annotated[Path, typer.Argument(help="Dataset file to split.")],
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for the parts (<name>.h5 each).")],
    fractions: Annotated[str, typer.Option("--fractions", help="Comma-separated fractions summing to 1.")] = "0.5,0.25,0.25",
    names: Annotated[str, typer.Option("--names", help="Comma-separated names of the parts.")] = "train,holdout,reference",
    seed: SeedOpt = 0,
) -> None:
    """Split SOURCE into members (train), holdout and reference parts, stratified by label.

    Each part records the row numbers it came from (`source_indices`). The same seed gives
    the same files.

    Example: pgan data split real.h5 --fractions 0.5,0.25,0.25 --names train,holdout,reference --out-dir splits --seed 0
    """
    from pgan_cli.dataset import DatasetWriter, read_dataset
    from pgan_cli.provenance import make_provenance
    from pgan_cli.split import parse_fractions, stratified_split

    fr = parse_fractions(fractions)
    name_list = [n.strip() for n in names.split(",") if n.strip()]
    if len(name_list) != len(fr):
        raise UsageError(f"--names has {len(name_list)} names but --fractions has {len(fr)} parts")
    if len(set(name_list)) != len(name_list) or any("/" in n for n in name_list):
        raise UsageError(f"--names {names!r} must be distinct plain file names")
    bundle = read_dataset(source)
    parts = stratified_split(bundle.n, fr, bundle.labels, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    prov = make_provenance([source], seed=seed, fractions=fr, names=name_list)
    with tempfile.TemporaryDirectory(prefix=".split-", dir=out_dir) as tmp_name:
        tmp = Path(tmp_name)
        for name, idx in zip(name_list, parts):
            w = DatasetWriter(tmp / f"{name}.h5", len(idx), bundle.samples.shape[1:],
                              provenance={**prov, "split": name}, kind=bundle.kind,
                              with_labels=bundle.labels is not None, class_names=bundle.class_names,
                              latent_dim=None if bundle.latents is None else bundle.latents.shape[1],
                              attrs={k: v for k, v in bundle.attrs.items() if k not in _MANAGED_ATTRS})
            with w:
                w.write(bundle.samples[idx], None if bundle.labels is None else bundle.labels[idx],
                        None if bundle.latents is None else bundle.latents[idx])
                w.add_dataset("source_indices", idx)
        for name in name_list:  # all parts written: move them into place together
            (tmp / f"{name}.h5").replace(out_dir / f"{name}.h5")
    sizes = ", ".join(f"{n}={len(i)}" for n, i in zip(name_list, parts))
    console.log(f"split {source} ({bundle.n} rows) into {out_dir}: {sizes}")


_MANAGED_ATTRS = {"kind", "pgan_version", "format_version", "provenance", "class_names"}


def describe(path: Path) -> dict:
    """What `pgan data info` reports about a dataset or NPY file."""
    import numpy as np

    from pgan_cli.dataset import Dataset, load_vectors
    from pgan_cli.provenance import read_provenance

    if path.suffix.lower() == ".npy":
        x = load_vectors(path)
        return {"path": str(path), "format": "npy", "kind": "vectors", "n": int(x.shape[0]),
                "shape": list(x.shape[1:]), "dtype": "float32",
                "value_range": [float(x.min()), float(x.max())], "provenance": read_provenance(path)}
    with Dataset(path) as ds:
        info = {"path": str(path), "format": "pgan-h5", "kind": ds.kind, "n": ds.n,
                "shape": list(ds.sample_shape), "dtype": "float32",
                "value_range": [float(v) for v in ds.value_range], "has_latents": ds.has_latents,
                "latent_dim": int(ds._f["latents"].shape[1]) if ds.has_latents else None,
                "class_names": ds.class_names, "provenance": ds.provenance}
        if ds.has_labels:
            counts = np.bincount(ds.labels(), minlength=ds.num_classes or 0)
            names = ds.class_names or [str(i) for i in range(len(counts))]
            info["label_counts"] = {names[i]: int(c) for i, c in enumerate(counts)}
        attrs = {k: v for k, v in ds.attrs.items() if k not in _MANAGED_ATTRS}
        info["attributes"] = attrs
        return info


@data.command("info", help="Show N, shape, value range, label counts and provenance of a file.")
def info_cmd(
    path: Annotated[Path, typer.Argument(help="Dataset file (.h5) or NPY array.")],
    json_out: JsonOpt = False,
) -> None:
    """Describe a dataset file or NPY array (validates it on the way).

    Example: pgan data info splits/train.h5 --json | jq .label_counts
    """
    from pgan_cli.files import check_input

    check_input(path, "dataset file")
    info = describe(path)
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
