"""Where work runs: one parser for ``auto|cpu|cuda|cuda:N|cuda:all`` and its two resolvers.

torch (training, sampling, embeddings, MMD blocks, white-box attacks) and FAISS (neighbour
searches) see GPUs differently: torch through CUDA, FAISS only with the ``gpu`` extra
(faiss-gpu). :func:`torch_device` and :func:`faiss_device` turn the same spelling into a device
each library can use, or an error naming the device; :func:`faiss_device_for` is the FAISS
side of a command whose device is a torch device (``pgan attack --device``).
"""

from __future__ import annotations

from pgan_cli.errors import InputError

SPELLINGS = "auto, cpu, cuda, cuda:N or cuda:all"


def cpu_threads() -> int:
    """Threads pgan's CPU kernels may use: ``OMP_NUM_THREADS`` when set (the user's or the test
    runner's limit, which torch also follows), else the cores this process may run on."""
    import os

    try:
        given = int(os.environ.get("OMP_NUM_THREADS", "0"))
    except ValueError:
        given = 0
    if given > 0:
        return given
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def parse_device(device: str | None) -> tuple[str, int | str | None]:
    """``"cuda:1"`` -> ``("cuda", 1)``; ``"cuda:all"`` -> ``("cuda", "all")``; ``"auto"``, ``"cpu"``,
    ``"cuda"`` -> ``(name, None)``. Anything else is an :class:`InputError`."""
    d = (device or "auto").strip().lower()
    if d in ("auto", "cpu", "cuda"):
        return d, None
    if d == "cuda:all":
        return "cuda", "all"
    if d.startswith("cuda:") and d[5:].isdigit():
        return "cuda", int(d[5:])
    raise InputError(f"unknown device {device!r}; use {SPELLINGS}")


def torch_device(device: str | None) -> str:
    """A torch device string: ``auto`` is the GPU when torch sees one; ``cuda:all`` is ``cuda``."""
    import torch

    kind, index = parse_device(device)
    if kind == "cpu" or (kind == "auto" and not torch.cuda.is_available()):
        return "cpu"
    if not torch.cuda.is_available():
        raise InputError(f"device {device} asked for a GPU but torch sees none; use cpu")
    if kind == "auto" or index in (None, "all"):
        return "cuda"
    if index >= torch.cuda.device_count():
        raise InputError(f"device {device}: torch sees only {torch.cuda.device_count()} GPU(s)")
    return f"cuda:{index}"


def faiss_num_gpus() -> int:
    """GPUs FAISS can use (0 with faiss-cpu)."""
    import faiss

    return int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0


def faiss_device(device: str | None) -> str:
    """``cpu``, ``cuda:N`` or ``cuda:all`` for FAISS: ``auto`` is GPU 0 when FAISS sees a GPU."""
    kind, index = parse_device(device)
    if kind == "cpu":
        return "cpu"
    n = faiss_num_gpus()
    if kind == "auto":
        return "cuda:0" if n else "cpu"
    if n == 0:
        raise InputError(f"device {device} asked for a GPU but FAISS sees none (faiss-cpu is installed, or "
                         f"no GPU is present); install the gpu extra (faiss-gpu) or use cpu")
    if index is None:
        return "cuda:0"
    if index == "all":
        return "cuda:all"
    if index >= n:
        raise InputError(f"device {device}: FAISS sees only {n} GPU(s) (cuda:0..cuda:{n - 1})")
    return f"cuda:{index}"


def faiss_device_for(device: str | None) -> str:
    """The FAISS device of a command whose device is a torch device: a FAISS GPU when FAISS sees
    one and the device is not ``cpu``, else the CPU (said when a GPU was asked for)."""
    kind, _ = parse_device(device)
    if kind == "cpu":
        return "cpu"
    if faiss_num_gpus() == 0:
        if kind != "auto":
            from pgan_cli import console

            console.log(f"neighbour searches run on the CPU: FAISS sees no GPU (install the gpu extra for "
                        f"GPU searches); {device} is used for the white-box attacks")
        return "cpu"
    return faiss_device(device)
