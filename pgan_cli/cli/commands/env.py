"""``pgan env``: versions of Python, torch, faiss, CUDA and the GPUs, for bug reports."""

from __future__ import annotations

from pgan_cli import console
from pgan_cli.cli.frame import JsonOpt, command


@command("env", help="Print versions of Python, torch, faiss, CUDA and the GPUs (for bug reports).")
def env(json_out: JsonOpt = False) -> None:
    """Print the environment pgan runs in; every output's provenance records the same versions.

    Example: pgan env --json
    """
    from pgan_cli.provenance import env_info

    info = env_info()
    if json_out:
        console.emit_json(info)
        return
    lines = [f"{k}: {v}" for k, v in info["packages"].items()]
    for key in ("platform", "cpu_count", "torch_threads", "cuda_available", "cuda", "gpus", "faiss", "faiss_gpus"):
        if key in info:
            lines.append(f"{key}: {info[key]}")
    console.emit("\n".join(lines))
