"""Data-parallel training across processes with PyTorch's DistributedDataParallel (DDP).

Chapter 6 (and chapter 9, which compares it with Cerebras' weight streaming) explains the idea:
every process holds a full copy of the model, computes the gradient of its own slice of the batch,
and DDP averages the gradients across processes (an all-reduce) during the backward pass, so every
copy takes the same optimizer step. ``torchrun --nproc_per_node=K -m gptlib.train ...`` starts K
processes and tells each its rank through environment variables; :func:`setup` reads them.

Backends: ``nccl`` between GPUs, ``gloo`` between CPU processes. Only rank 0 (the *main* process)
writes checkpoints, logs and progress bars.

**Same run, more processes.** Every process draws the same global batch of B windows from the same
seeded sampler and keeps its own slice of B / K (:func:`shard`). Since the loss is a mean, the mean
of the K slice gradients equals the gradient of the whole batch, so K processes with B / K each take
the same steps as one process with B, up to the order of floating-point additions.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .. import checks


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in a (possibly one-process) run.

    Attributes:
        rank: this process's index in ``[0, world_size)``.
        world_size: K, the number of processes.
        local_rank: index among the processes on this machine (selects the GPU).
        backend: ``"gloo"``, ``"nccl"``, or None when running as a single plain process.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """True when several processes train together."""
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only process that writes files and shows progress."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when ``torchrun`` (or another launcher) set ``RANK`` and ``WORLD_SIZE``."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device_type: str = "cpu") -> DistributedContext:
    """Join the process group described by torchrun's environment variables, if any.

    Args:
        device_type: ``"cuda"`` selects the ``nccl`` backend (and this process's GPU,
            ``cuda:LOCAL_RANK``); anything else selects ``gloo``.
    Returns:
        The :class:`DistributedContext`; a single-process context when not launched by torchrun
        (or launched with one process), so the same code runs either way.
    """
    if not launched_by_torchrun():
        return DistributedContext()
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if world_size == 1:
        return DistributedContext()
    if device_type == "mps":
        raise checks.ArgumentError("several processes cannot share Apple's MPS device; run them on the CPU "
                         "(--device cpu), or run one process on MPS")
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistributedContext(rank, world_size, local_rank, backend)


def teardown(context: DistributedContext) -> None:
    """Leave the process group (a no-op for a single process)."""
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: torch.nn.Module, context: DistributedContext) -> torch.nn.Module:
    """The model wrapped in DistributedDataParallel when several processes train together;
    the model itself otherwise. DDP copies rank 0's weights to every process at construction."""
    if not context.enabled:
        return model
    device_ids = [context.local_rank] if context.backend == "nccl" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def shard(batch: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """This process's slice of a global batch: ``(B, ...) -> (B / K, ...)``.

    Raises:
        ValueError: B is not divisible by the number of processes K.
    """
    if not context.enabled:
        return batch
    b, k = batch.size(0), context.world_size
    if b % k:
        raise checks.ArgumentError(f"the batch of {b} sequences cannot be split evenly over {k} processes; "
                         f"choose a batch size divisible by {k}")
    per_process = b // k
    return batch[context.rank * per_process:(context.rank + 1) * per_process]


def all_reduce_sum(values: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Element-wise sum of ``values`` over all processes (a copy on the input's device; the input
    is unchanged). NCCL reduces GPU tensors only, so a CPU tensor makes a round trip to the GPU."""
    if not context.enabled:
        return values.clone()
    out = values.to(f"cuda:{context.local_rank}") if context.backend == "nccl" else values.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.to(values.device)


def barrier(context: DistributedContext) -> None:
    """Wait until every process gets here (a no-op for a single process)."""
    if context.enabled:
        dist.barrier()
