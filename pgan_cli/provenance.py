"""Provenance records: who made an output, from what, how (as samtools' @PG / bcftools' headers).

Every output carries :func:`make_provenance`'s record: pgan version, command line, UTC time,
seed, device, each input's path and SHA-256, and the inputs' own provenance (so a report can
show the whole chain back to the raw data).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from importlib import metadata
from pathlib import Path
from typing import Any

from pgan_cli import FORMAT_VERSION, __version__
from pgan_cli.files import sha256_file

_PACKAGES = ("numpy", "torch", "torchvision", "faiss-cpu", "faiss-gpu", "scikit-learn", "h5py",
             "umap-learn", "opacus", "pydicom", "pillow")


def package_versions() -> dict[str, str]:
    """Installed versions of the libraries pgan's results depend on (no imports, fast)."""
    out = {"python": platform.python_version(), "pgan": __version__}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def env_info() -> dict[str, Any]:
    """Versions of Python, torch, faiss, CUDA and the GPUs (for ``pgan env`` and bug reports)."""
    info: dict[str, Any] = {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                            "packages": package_versions()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda_available"] = bool(torch.cuda.is_available())
        info["cuda"] = torch.version.cuda
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["torch_threads"] = torch.get_num_threads()
    except Exception as e:  # pragma: no cover - torch is a dependency
        info["torch_error"] = str(e)
    try:
        import faiss

        info["faiss"] = faiss.__version__
        info["faiss_gpus"] = int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0
    except Exception as e:  # pragma: no cover
        info["faiss_error"] = str(e)
    return info


# Set by a pipeline (pgan audit) running a step through the library: the equivalent command line,
# and the folder whose files are named relative to it (``recorded_as``).
_RECORDING: ContextVar[tuple[str, Path] | None] = ContextVar("pgan_recording", default=None)


@contextmanager
def recorded_as(argv: list[str], base: str | os.PathLike) -> Iterator[None]:
    """Within the block, outputs record ``pgan ARGV`` as their command and name files under
    ``base`` relative to it (as if ``pgan ARGV`` had been run in ``base``)."""
    token = _RECORDING.set((shlex.join(["pgan", *argv]), Path(os.path.abspath(base))))
    try:
        yield
    finally:
        _RECORDING.reset(token)


def shown_path(path: str | os.PathLike) -> str:
    """How an output names a file: as given, or relative to the folder of :func:`recorded_as`."""
    rec = _RECORDING.get()
    if rec is None:
        return str(path)
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(rec[1]).as_posix()
    except ValueError:
        return str(path)


def command_line() -> str:
    """The command line that is running, as the user could paste it again."""
    rec = _RECORDING.get()
    if rec is not None:
        return rec[0]
    argv = list(sys.argv)
    if argv and argv[0].endswith(("__main__.py", "pgan")):
        argv[0] = "pgan"
    return shlex.join(argv)


def input_record(path: str | os.PathLike) -> dict[str, Any]:
    """Path, size and SHA-256 of one input, plus its own provenance when it is a pgan file."""
    p = Path(path)
    rec: dict[str, Any] = {"path": shown_path(p), "sha256": sha256_file(p), "bytes": p.stat().st_size}
    parent = read_provenance(p)
    if parent is not None:
        rec["provenance"] = parent
    return rec


def read_provenance(path: str | os.PathLike) -> dict[str, Any] | None:
    """The provenance stored in a pgan output (HDF5 attribute, JSON field or NPY sidecar)."""
    p = Path(path)
    try:
        if p.suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(p, "r") as f:
                raw = f.attrs.get("provenance")
                return json.loads(raw) if raw is not None else None
        if p.suffix == ".json":
            data = json.loads(p.read_text())
            return data.get("provenance") if isinstance(data, dict) else None
        if p.suffix == ".npy":
            side = p.with_suffix(".json")
            if side.exists():
                data = json.loads(side.read_text())
                return data.get("provenance") if isinstance(data, dict) else None
    except Exception:
        return None
    return None


def timestamp(minutes: bool = False) -> str:
    """Now in UTC (ISO 8601, or ``YYYY-MM-DD HH:MM UTC``); ``omitted`` under ``--no-provenance``,
    so outputs stay byte-comparable."""
    from pgan_cli import console

    if not console.state.provenance:
        return "omitted"
    now = _dt.datetime.now(_dt.timezone.utc)
    return now.strftime("%Y-%m-%d %H:%M UTC") if minutes else now.isoformat(timespec="seconds")


def make_provenance(inputs: list[str | os.PathLike] | tuple = (), seed: int | None = None,
                    device: str | None = None, **params: Any) -> dict[str, Any]:
    """A provenance record for an output made now from ``inputs`` (a fixed stub with ``--no-provenance``)."""
    from pgan_cli import console

    if not console.state.provenance:
        return {"pgan_version": __version__, "format_version": FORMAT_VERSION, "omitted": True,
                "seed": seed, **({"params": params} if params else {})}
    return {
        "pgan_version": __version__,
        "format_version": FORMAT_VERSION,
        "command": command_line(),
        "time": timestamp(),
        "seed": seed,
        "device": device,
        "inputs": [input_record(p) for p in inputs],
        "versions": package_versions(),
        **({"params": params} if params else {}),
    }
