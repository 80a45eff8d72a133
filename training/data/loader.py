"""Per-epoch, restartable batching: the ``data`` argument of ``engine.loop.train``.

:class:`EpochLoader` pairs a dataset with a :class:`~.mixing.MixingSampler` (or any sampler
with ``set_epoch(epoch, start)``) inside one ``DataLoader`` with persistent workers.
``iter_epoch(epoch, start_batch)`` yields that epoch's batches from ``start_batch`` on - the same
batches, in the same order, that an uninterrupted run would have seen, because the sampler's
order is a function of (seed, epoch) and ``drop_last`` keeps batch boundaries fixed.

Workers: 0 loads in the main process (tests, debugging). On a GPU box use about as many as
there are CPU cores per GPU (``benchmarks/bench_train.py`` measures the loader/step time ratio).
"""
from __future__ import annotations

from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from depth_training.engine.seeding import loader_generator, seed_worker


class EpochLoader:
    """Batches of ``dataset`` drawn by ``sampler``; ``batches_per_epoch`` full batches per epoch."""

    def __init__(
        self,
        dataset: Dataset,
        sampler: Any,
        *,
        batch_size: int,
        num_workers: int = 0,
        seed: int = 0,
        pin_memory: bool | None = None,
        prefetch_factor: int | None = None,
        collate_fn: Any | None = None,
    ):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.sampler = sampler
        self.batch_size = batch_size
        sampler.set_epoch(0, 0)
        self.batches_per_epoch = len(sampler) // batch_size
        kwargs: dict[str, Any] = {}
        if num_workers > 0:
            kwargs.update(persistent_workers=True, prefetch_factor=prefetch_factor or 4)
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=num_workers,
            drop_last=True,
            pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
            worker_init_fn=seed_worker,
            generator=loader_generator(seed),
            collate_fn=collate_fn,
            **kwargs,
        )

    def __len__(self) -> int:
        return self.batches_per_epoch

    def iter_epoch(self, epoch: int, start_batch: int = 0) -> Iterator[Any]:
        """Batches ``start_batch, start_batch + 1, ...`` of ``epoch``."""
        if not 0 <= start_batch <= self.batches_per_epoch:
            raise ValueError(f"start_batch {start_batch} outside 0..{self.batches_per_epoch}")
        self.sampler.set_epoch(epoch, start_batch * self.batch_size)
        return iter(self.loader)
