"""Several training processes (``torchrun --nproc-per-node N --no-python kgrec train ...``): the process group,
each rank's device and share of the batches, and the few collective steps the trainer needs.

Outside ``torchrun`` (``WORLD_SIZE`` unset) everything here is a no-op and the trainer runs as one process. Under it,
even with one process, :func:`context` joins the process group (NCCL on GPUs, gloo on CPUs), each rank takes every
N-th batch of
the epoch (:func:`shard`: all ranks draw the same seeded epoch, so the shares are disjoint and cover it, the last
ones padded by wrapping around so every rank takes as many steps), gradients are averaged by
``DistributedDataParallel``, losses are averaged across ranks (:func:`mean`), and rank 0 alone validates (its
scores broadcast, so every rank stops at the same epoch) and writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    joined: bool = False  # a process group was joined (under torchrun, with any number of processes)

    @property
    def distributed(self) -> bool:
        return self.joined


def context() -> Context:
    """This process's rank and the world size, from ``torchrun``'s environment; joins the process group once."""
    if "WORLD_SIZE" not in os.environ:
        return Context()
    if not dist.is_initialized():
        if torch.cuda.is_available():  # NCCL: each rank on its own GPU, set before the group forms
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return Context(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                   joined=True)


def device(ctx: Context, name: str) -> str:
    """The device a rank trains on: its own GPU (``cuda:LOCAL_RANK``) when it is to use CUDA."""
    if ctx.distributed and (name == "cuda" or (name == "auto" and torch.cuda.is_available())):
        return f"cuda:{ctx.local_rank}"
    return name


def shard(items: list[T], ctx: Context) -> list[T]:
    """Rank r's share of ``items``: positions r, r + N, ...; every rank gets ceil(len / N), wrapping around."""
    if not ctx.distributed or not items:
        return items
    steps = -(-len(items) // ctx.world)
    return [items[(ctx.rank + i * ctx.world) % len(items)] for i in range(steps)]


def mean(values: dict[str, float], ctx: Context) -> dict[str, float]:
    """Each value averaged over the ranks."""
    if not ctx.distributed or not values:
        return values
    tensor = torch.tensor(list(values.values()), dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return dict(zip(values, (tensor.cpu() / ctx.world).tolist(), strict=True))


def from_main(value: Any, ctx: Context) -> Any:
    """Rank 0's ``value`` on every rank."""
    if not ctx.distributed:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


class Objective(torch.nn.Module):
    """``model`` behind a ``forward(loss, batch) = loss(batch)``, so that ``DistributedDataParallel`` sees every
    phase's loss (the models have ``loss``/``kg_loss`` rather than one ``forward``)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, loss: Any, batch: Any) -> torch.Tensor:
        return loss(batch)
