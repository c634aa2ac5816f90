"""``pgan embed``: put every set (members, holdout, synthetic...) into one feature space."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pgan_cli import console
from pgan_cli.cli.frame import DeviceOpt, JsonOpt, command


@command("embed", help="Embed sets into one feature space (pixel, pca, umap, autoencoder, discriminator, torchvision:NAME).")
def embed_cmd(
    inputs: Annotated[list[Path], typer.Argument(help="Dataset files (.h5) or NPY arrays to embed.")],
    method: Annotated[Optional[str], typer.Option("--method", "-m", help="pixel, pca, umap, autoencoder, discriminator or torchvision:NAME (e.g. torchvision:resnet18).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out-dir", help="Folder for DIR/<input stem>.npy and .json.", file_okay=False)] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output NPY (one input only).", dir_okay=False)] = None,
    fit_on: Annotated[Optional[Path], typer.Option("--fit-on", help="Fit the embedding on this file (default: the first INPUT, the members).")] = None,
    dim: Annotated[Optional[int], typer.Option("--dim", help="Output dimension (pca 50, umap 2, autoencoder 64 by default).")] = None,
    model: Annotated[Optional[Path], typer.Option("--model", help="Reuse a fitted embedding saved with --save-model (no fitting).")] = None,
    save_model: Annotated[Optional[Path], typer.Option("--save-model", help="Store the fitted embedding here (.npz, loads without pickle).")] = None,
    resize: Annotated[Optional[int], typer.Option("--resize", help="Resize images to RxR first (pixel/pca/umap/autoencoder); torchvision: default 224, 0 keeps the size.")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="discriminator: the checkpoint from `pgan train` (gen.pt).")] = None,
    weights: Annotated[Optional[Path], typer.Option("--weights", help="torchvision: a state_dict file of the backbone's weights.")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="autoencoder: training epochs (default 30).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Samples per batch.")] = 256,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (default 0; umap 10 as pGAN).")] = None,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Fit one embedding on the fit set and write each INPUT into its space: a float32 NPY (N, D)
    plus a JSON sidecar with provenance. Members, holdout and synthetic sets embedded together land
    in the same space; --save-model/--model reuse the fitted embedding later.

    UMAP compiles for about 40 s in every fresh process; pixel and pca are the fast defaults.

    Example: pgan embed splits/train.h5 splits/holdout.h5 synth.h5 --method pca --dim 20 --out-dir emb --save-model emb/pca.npz
    """
    from pgan_cli.embeddings.api import embed_files

    summary = embed_files(inputs, method, out_dir=out_dir, output=output, fit_on=fit_on, model=model,
                          save_model=save_model, dim=dim, seed=seed, device=device, batch_size=batch_size,
                          resize=resize, checkpoint=checkpoint, weights=weights, epochs=epochs)
    if json_out:
        console.emit_json(summary)
    else:
        console.emit("\n".join(f"{o['output']}: {o['n']} x {o['dim']} ({summary['method']})" for o in summary["outputs"]))
