"""``pgan embed``: fit one embedding on the fit set and write every input into its space.

Each input becomes a float32 NPY ``(N, D)`` plus a JSON sidecar (same stem) holding the
embedding's description and provenance. Inputs are read and embedded in batches and written
into the NPY as they go; all outputs appear together only when every input succeeded.
"""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from pgan_cli import console, formats
from pgan_cli.samples import SampleReader
from pgan_cli.errors import InputError, UsageError
from pgan_cli.params import OptionError
from pgan_cli.atomic import atomic_path
from pgan_cli.outputs import output_set

BATCH = 256


def SampleSource(path: str | os.PathLike) -> SampleReader:
    """An input of ``pgan embed``: samples in their natural shape, read in batches."""
    return SampleReader(path, "input")


def output_paths(inputs: list[Path], out_dir: Path | None, output: Path | None) -> list[Path]:
    """Where each input's NPY goes (``DIR/<stem>.npy`` or ``-o``); refuses clashes."""
    if (out_dir is None) == (output is None):
        raise UsageError("give exactly one of --out-dir DIR (one NPY per input) or -o OUT.npy (one input)")
    if output is not None:
        if len(inputs) != 1:
            raise UsageError(f"-o takes one input, got {len(inputs)}; use --out-dir for several")
        if output.suffix.lower() != ".npy":
            raise UsageError(f"-o {output}: the output must be an .npy file")
        return [output]
    outs = [out_dir / f"{Path(p).stem}.npy" for p in inputs]
    seen: dict[Path, Path] = {}
    for p, o in zip(inputs, outs):
        if o in seen:
            raise UsageError(f"inputs {seen[o]} and {p} would both write {o}; rename one or embed them separately")
        seen[o] = p
    return outs


def _where_it_runs(emb, asked: str, device: str) -> str:
    """The device ``emb`` runs on (what provenance records): ``device`` for a torch network, the CPU
    for the others, which refuse a GPU asked for (it would be ignored)."""
    if emb.uses_device:
        return device
    if asked.lower() not in ("auto", "cpu"):
        raise OptionError(f"$device {asked} applies to the autoencoder, discriminator and torchvision embeddings "
                          f"only; {emb.method} runs on the CPU: drop it", "device")
    return "cpu"


def embed_files(inputs: list[str | os.PathLike], method: str | None = None, *, out_dir: str | os.PathLike | None = None,
                output: str | os.PathLike | None = None, fit_on: str | os.PathLike | None = None,
                model: str | os.PathLike | None = None, save_model: str | os.PathLike | None = None,
                dim: int | None = None, seed: int | None = None, device: str = "auto", batch_size: int = BATCH,
                **options: Any) -> dict[str, Any]:
    """Fit an embedding on ``fit_on`` (default: the first input) or load ``model``, then write each
    input's embedding. Returns a summary (the ``--json`` output)."""
    from pgan_cli.embeddings import load_model, make_embedding
    from pgan_cli.atomic import write_json
    from pgan_cli.provenance import make_provenance, shown_path

    if not inputs:
        raise UsageError("give at least one INPUT file")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {batch_size}")
    paths = [Path(p) for p in inputs]
    outs = output_paths(paths, Path(out_dir) if out_dir is not None else None,
                        Path(output) if output is not None else None)
    from pgan_cli.files import check_planned

    for o in outs:
        check_planned(o.parent, [o.name, o.with_suffix(".json").name], "--out-dir" if output is None else "-o")
    if save_model is not None and Path(save_model).suffix != ".npz":
        raise UsageError(f"--save-model {save_model}: the model file must end in .npz")
    from pgan_cli.devices import torch_device

    asked_device, device = device, torch_device(device)
    sources = [SampleSource(p) for p in paths]  # validate every input before any work
    for src in sources:
        src.validate()
    try:
        if model is not None:
            if fit_on is not None or dim is not None or any(v is not None for v in options.values()):
                raise UsageError("--model reuses a fitted embedding: --fit-on, --dim and method options do not apply")
            emb = load_model(model, device=device, batch_size=batch_size)
            device = _where_it_runs(emb, asked_device, device)
            if method is not None and method.split(":")[0].lower() != emb.method:
                raise UsageError(f"--method {method} does not match the model file {model} ({emb.method})")
            for src in sources:
                emb.check_shape(src.sample_shape, where=str(src.path))
            console.log(f"loaded the {emb.method} embedding from {model}")
        else:
            if method is None:
                raise UsageError("give --method (pixel, pca, umap, autoencoder, discriminator, torchvision:NAME) "
                                 "or --model FILE")
            emb = make_embedding(method, dim=dim, seed=seed, device=device, batch_size=batch_size, **options)
            device = _where_it_runs(emb, asked_device, device)
            fit_path = Path(fit_on) if fit_on is not None else paths[0]
            fit_src = SampleSource(fit_path)
            try:
                for src in sources:
                    if src.sample_shape != fit_src.sample_shape:
                        raise InputError(f"{src.path} has samples of shape {src.sample_shape} but the fit set "
                                         f"{fit_path} has {fit_src.sample_shape}; embed sets of the same shape")
                t0 = time.perf_counter()
                emb.fit(fit_src.read())
                console.log(f"fitted {method} on {fit_path} ({fit_src.n} samples) in {time.perf_counter() - t0:.1f} s")
            finally:
                fit_src.close()
        for src in sources:
            emb.check_shape(src.sample_shape, where=str(src.path))
        if save_model is not None:
            emb.save(save_model)
            console.log(f"saved the fitted {emb.method} model to {save_model}")
        desc = emb.describe()
        parents = [model] if model is not None else [fit_on if fit_on is not None else paths[0]]
        parents += [v for k, v in options.items() if k in ("checkpoint", "weights") and v is not None]
        results = []
        with ExitStack() as stack:  # every output appears only when all inputs succeeded
            # --out-dir: the NPY files of one space replace an earlier run's set there together
            staged = stack.enter_context(output_set(out_dir, "pgan embed")) if output is None else None
            for src, out in zip(sources, outs):
                tmp_npy = (staged.path(out.name) if staged is not None
                           else stack.enter_context(atomic_path(out, suffix=".npy.tmp")))
                arr = np.lib.format.open_memmap(tmp_npy, mode="w+", dtype=np.float32, shape=(src.n, emb.out_dim))
                n_b = (src.n + batch_size - 1) // batch_size
                for start, x in console.progress(src.batches(batch_size), total=n_b, description=f"embed {src.path.name}"):
                    y = emb.transform(x)
                    if not np.isfinite(y).all():
                        raise InputError(f"the {emb.method} embedding of {src.path} produced NaN/Inf values")
                    arr[start:start + len(y)] = y
                arr.flush()
                del arr
                prov = make_provenance([src.path, *parents], seed=emb.seed, device=device, method=emb.method,
                                       batch_size=batch_size)
                side = out.with_suffix(".json")
                record = {"format": formats.EMBEDDED_SET, "format_version": formats.RESULT_VERSION,
                          "input": shown_path(src.path), "output": shown_path(out), "shape": [src.n, emb.out_dim],
                          "embedding": desc,
                          "model": shown_path(model or save_model) if (model or save_model) else None,
                          "provenance": prov}
                side_tmp = (staged.path(side.name) if staged is not None
                            else stack.enter_context(atomic_path(side, suffix=".json.tmp")))
                write_json(side_tmp, record)
                results.append({"input": shown_path(src.path), "output": shown_path(out), "sidecar": shown_path(side),
                                "n": src.n, "dim": emb.out_dim})
    finally:
        for s in sources:
            s.close()
    for o in results:
        console.log(f"wrote {o['output']} ({o['n']} x {o['dim']}) and {o['sidecar']}")
    return {"method": emb.method, "embedding": desc, "outputs": results,
            "model": shown_path(model) if model else (shown_path(save_model) if save_model else None)}
