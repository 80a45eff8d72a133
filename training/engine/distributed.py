"""Data-parallel training under ``torchrun``.

``torchrun`` (or any launcher that sets the same variables) starts one process per GPU and
exports ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
:func:`init_distributed` reads them; with ``WORLD_SIZE`` unset or 1 it returns a single-process
context and touches nothing, so the same script runs with ``python`` and with ``torchrun``.

Backend: ``nccl`` when the process drives a CUDA device, ``gloo`` on CPU. Each process pins
``cuda:LOCAL_RANK``. Rules the engine follows (and step functions should too):

* every rank runs the same number of optimizer steps (the mixing sampler gives each rank an
  equal share, see :mod:`depth_training.data.mixing`);
* decisions that change control flow (skip a bad batch, stop) are agreed with
  :func:`any_rank` so no rank waits forever in a collective;
* only the main rank (rank 0) writes checkpoints, TensorBoard events and progress output.

Examples::

    torchrun --nproc_per_node=8 -m depth_training.engine.toy --out runs/toy        # one node
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d \\
             --rdzv-endpoint=HOST:29400 -m depth_training.engine.toy --out runs/toy # two nodes
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist

LOG = logging.getLogger("depth_training.distributed")


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job. ``world_size == 1`` means no process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"environment variable {name}={raw!r} is not an integer") from exc


def default_device(local_rank: int = 0) -> torch.device:
    """``cuda:LOCAL_RANK`` when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def init_distributed(
    device: str | torch.device | None = None, timeout_s: float = 1800.0
) -> DistContext:
    """Set up the process group from the torchrun environment (no-op for a single process).

    Args:
        device: force a device (``"cpu"`` to test DDP on a GPU box); default: :func:`default_device`.
        timeout_s: collective timeout; a rank that died makes the others fail after this long.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    dev = torch.device(device) if device is not None else default_device(local_rank)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank % torch.cuda.device_count())
    if world <= 1:
        return DistContext(device=dev)
    if not (0 <= rank < world):
        raise RuntimeError(f"RANK={rank} is outside WORLD_SIZE={world}")
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        kwargs = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(
            backend=backend,
            rank=rank,
            world_size=world,
            timeout=_dt.timedelta(seconds=timeout_s),
            **kwargs,
        )
    LOG.info("rank %d/%d (local %d) on %s, backend %s", rank, world, local_rank, dev, backend)
    return DistContext(rank, world, local_rank, dev, backend)


def wrap_model(model: torch.nn.Module, ctx: DistContext, **ddp_kwargs) -> torch.nn.Module:
    """Move ``model`` to the context's device and wrap it in DDP when there are several ranks.

    DDP broadcasts rank 0's parameters and buffers at construction, so all ranks start equal.
    ``ddp_kwargs`` go to :class:`~torch.nn.parallel.DistributedDataParallel`
    (e.g. ``find_unused_parameters=True`` for multi-head models that skip a head).
    """
    model = model.to(ctx.device)
    if not ctx.is_distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if ctx.device.type == "cuda":
        ddp_kwargs.setdefault("device_ids", [ctx.device.index])
        ddp_kwargs.setdefault("output_device", ctx.device.index)
    return DistributedDataParallel(model, **ddp_kwargs)


def barrier(ctx: DistContext) -> None:
    if ctx.is_distributed:
        if ctx.backend == "nccl":
            dist.barrier(device_ids=[ctx.device.index])
        else:
            dist.barrier()


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True when ``flag`` is true on at least one rank (one tiny all-reduce; local when single)."""
    if not ctx.is_distributed:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def all_equal_int(value: int, ctx: DistContext) -> bool:
    """True when every rank holds the same integer (e.g. the step a checkpoint resumed at)."""
    if not ctx.is_distributed:
        return True
    t = torch.tensor([float(value), -float(value)], device=ctx.device, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t[0].item() == -t[1].item()


def mean_over_ranks(values: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """Average a dict of scalars over ranks (same keys on every rank), for logging."""
    if not ctx.is_distributed or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], device=ctx.device, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= ctx.world_size
    return dict(zip(keys, t.tolist()))


@contextlib.contextmanager
def main_process_first(ctx: DistContext) -> Iterator[None]:
    """Run the body on rank 0 first, then on the others (e.g. build a data cache once)."""
    if not ctx.is_main:
        barrier(ctx)
    try:
        yield
    finally:
        if ctx.is_main:
            barrier(ctx)


def teardown(ctx: DistContext) -> None:
    """Destroy the process group (safe to call twice or for a single process), after a barrier, so
    that no rank closes its connections while another is still between its last collective and its
    own teardown (one CI run saw rank 1 abort, ``terminate called without an active exception``,
    after all 30 steps and the last checkpoint, when teardown destroyed the group at once)."""
    if ctx.is_distributed and dist.is_initialized():
        try:
            barrier(ctx)
        except RuntimeError as exc:  # a peer already gone: nothing to wait for
            LOG.warning("teardown: barrier failed (%s); destroying the process group anyway", exc)
        dist.destroy_process_group()
