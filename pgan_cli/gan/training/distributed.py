"""torchrun: one all-reduce of the gradients per update (docs/train.md, "Distributed training")."""

from __future__ import annotations

import os

import torch
from torch import nn


class Dist:
    """World size and rank under torchrun (1 and 0 otherwise)."""

    def __init__(self, device: str):
        import torch.distributed as td

        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.enabled = self.world > 1
        self._owns = False
        if self.enabled and not td.is_initialized():
            self._init_group(device, self.local_rank)
            self._owns = True

    @staticmethod
    def _init_group(device: str, local_rank: int) -> None:
        """The process group: NCCL on GPUs (one GPU per rank, bound before the group exists, so
        NCCL's communicator and every barrier use this rank's GPU: torch.distributed docs,
        ``init_process_group(device_id=...)``), gloo on CPU."""
        import torch.distributed as td

        if device.startswith("cuda"):
            torch.cuda.set_device(local_rank)
            try:
                td.init_process_group(backend="nccl", device_id=torch.device("cuda", local_rank))
            except TypeError:  # torch < 2.3: no device_id; the current device set above is used
                td.init_process_group(backend="nccl")
        else:
            td.init_process_group(backend="gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def broadcast_module(self, module: nn.Module) -> None:
        import torch.distributed as td

        if self.enabled:
            for t in list(module.parameters()) + list(module.buffers()):
                td.broadcast(t.data, src=0)

    def average_gradients(self, params: list[nn.Parameter]) -> None:
        """All-reduce and average the gradients of ``params`` across ranks (one flat bucket)."""
        import torch.distributed as td

        if not self.enabled:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        td.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset: offset + g.numel()].view_as(g))
            offset += g.numel()

    def barrier(self) -> None:
        import torch.distributed as td

        if self.enabled:
            td.barrier()

    def close(self) -> None:
        import torch.distributed as td

        if self._owns and td.is_initialized():
            td.barrier()  # every rank is done with gloo before any tears it down (an early teardown aborts)
            td.destroy_process_group()
