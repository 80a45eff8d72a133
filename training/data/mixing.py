"""Several datasets in one run, each drawn with its own sampling weight.

Command-line form: ``--dataset A.bag:0.7 --dataset B.bag:0.3`` (``PATH[:WEIGHT]``, weight 1 when
omitted; weights are relative and normalised). :func:`parse_dataset_spec` parses one argument
and works as an ``argparse`` ``type=``.

An epoch is ``num_samples`` draws, fixed by the user, not by the datasets' sizes. Dataset ``i``
gets ``round(w_i * N)`` of them (largest-remainder rounding, so the counts add up to ``N``).
Within a dataset the draws walk through a stream of random permutations that continues from
one epoch to the next: every sample is used once before any is used twice, whatever the dataset
sizes. The draws are then shuffled together. Everything is a pure function of
``(seed, epoch)`` - :func:`mix_plan` - so a resumed run sees the same order, and under DDP
each rank takes every ``world_size``-th draw of the same plan (disjoint, equal shares).

Each draw also carries a 63-bit augmentation seed, so random augmentation of a sample does not
depend on which DataLoader worker loads it (nor on the number of workers).
"""
from __future__ import annotations

import argparse
import bisect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from torch.utils.data import Dataset, Sampler

from depth_training.argtypes import positive_int
from depth_training.cli import UserError


class DatasetSpecError(UserError, argparse.ArgumentTypeError):
    """A bad ``PATH[:WEIGHT]`` argument (also accepted by argparse as a type error)."""


@dataclass(frozen=True)
class DatasetSpec:
    path: Path
    weight: float = 1.0


_FORM = "expected PATH[:WEIGHT], e.g. run1.bag:0.7"


def parse_dataset_spec(text: str) -> DatasetSpec:
    """``"runs/a.bag:0.7"`` -> ``DatasetSpec(Path("runs/a.bag"), 0.7)``; ``"a.bag"`` -> weight 1.

    The part after the last ``:`` is a weight unless the whole text names an existing path or
    that part contains a ``/``. Raises :class:`DatasetSpecError` naming the argument.
    """
    if text is None or not str(text).strip():
        raise DatasetSpecError(f"empty dataset argument ({_FORM})")
    text = str(text).strip()
    head, sep, tail = text.rpartition(":")
    if not sep or "/" in tail or Path(text).exists():
        return DatasetSpec(Path(text), 1.0)
    if not head:
        raise DatasetSpecError(f"{text}: missing path before ':' ({_FORM})")
    if not tail:
        raise DatasetSpecError(f"{text}: missing weight after ':' ({_FORM})")
    try:
        weight = float(tail)
    except ValueError:
        raise DatasetSpecError(f"{head}: weight {tail!r} is not a number ({_FORM})") from None
    if not math.isfinite(weight) or weight <= 0:
        raise DatasetSpecError(f"{head}: weight must be a positive number, got {tail}")
    return DatasetSpec(Path(head), weight)


def parse_dataset_specs(texts: Sequence[str | DatasetSpec], must_exist: bool = False) -> list[DatasetSpec]:
    """Parse every ``--dataset`` argument; reject duplicates and (optionally) missing paths."""
    specs = [t if isinstance(t, DatasetSpec) else parse_dataset_spec(t) for t in texts]
    if not specs:
        raise DatasetSpecError(f"no dataset given ({_FORM})")
    seen: dict[Path, Path] = {}
    for s in specs:
        key = s.path.expanduser().resolve()
        if key in seen:
            raise DatasetSpecError(f"{s.path}: dataset given twice")
        seen[key] = s.path
        if must_exist and not s.path.exists():
            raise DatasetSpecError(f"{s.path}: no such file or directory")
    return specs


def add_mixing_arguments(parser: argparse.ArgumentParser) -> None:
    """``--dataset PATH[:WEIGHT]`` (repeatable) and ``--epoch-samples N`` for a training subcommand.

    ``args.dataset`` is a list of :class:`DatasetSpec` (pass it through :func:`parse_dataset_specs`
    to reject duplicates / missing paths).
    """
    parser.add_argument(
        "--dataset", type=parse_dataset_spec, action="append", required=True, metavar="PATH[:WEIGHT]",
        help="a bag or dataset to train on, with its relative sampling weight (default 1); repeat to mix, "
             "e.g. --dataset a.bag:0.7 --dataset b.bag:0.3",
    )
    parser.add_argument(
        "--epoch-samples", type=positive_int, default=10000, metavar="N",
        help="samples per epoch over all datasets and ranks (default 10000)",
    )


def allocate(weights: Sequence[float], total: int) -> np.ndarray:
    """Split ``total`` draws in proportion to ``weights`` (largest remainder): (D,) int64, sum == total."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or len(w) == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must be non-negative, finite, not all zero; got {list(weights)}")
    exact = w / w.sum() * total
    counts = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    order = np.argsort(-(exact - counts), kind="stable")  # ties -> lower dataset index first
    counts[order[:short]] += 1
    return counts


def _stream_slice(size: int, start: int, count: int, seed: int, dataset: int) -> np.ndarray:
    """Elements ``[start, start+count)`` of dataset ``dataset``'s endless stream of permutations."""
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    first, last = start // size, (start + count - 1) // size
    perms = [np.random.default_rng([seed, dataset, k, 0x5EED]).permutation(size) for k in range(first, last + 1)]
    stream = np.concatenate(perms)
    off = start - first * size
    return stream[off : off + count]


def mix_plan(
    sizes: Sequence[int], weights: Sequence[float], num_samples: int, seed: int, epoch: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The draws of one epoch, in order.

    Returns ``(dataset_ids, local_indices, aug_seeds)``, each of shape (num_samples,) int64.
    """
    if len(sizes) != len(weights):
        raise ValueError(f"{len(sizes)} datasets but {len(weights)} weights")
    for i, (n, w) in enumerate(zip(sizes, weights)):
        if n <= 0 and w > 0:
            raise ValueError(f"dataset {i} is empty but has sampling weight {w}")
    counts = allocate(weights, num_samples)
    ids = np.repeat(np.arange(len(sizes), dtype=np.int64), counts)
    local = np.concatenate(
        [_stream_slice(int(n), epoch * int(c), int(c), seed, i) for i, (n, c) in enumerate(zip(sizes, counts))]
    ).astype(np.int64)
    rng = np.random.default_rng([seed, epoch, 0x313])
    order = rng.permutation(num_samples)
    aug = rng.integers(0, 2**63 - 1, size=num_samples, dtype=np.int64)
    return ids[order], local[order], aug


class MixedDataset(Dataset):
    """Concatenation of datasets addressed by a global index (dataset ``i`` occupies
    ``[offsets[i], offsets[i+1])``). Keys may be ``int`` or ``(int, aug_seed)`` - the seed is
    passed on to datasets that declare ``accepts_seeded_keys = True``. Dict samples get
    ``source`` (the dataset's name) and ``index`` (its local index) added, which the training
    loop prints when a batch has to be skipped.
    """

    accepts_seeded_keys = True

    def __init__(self, datasets: Sequence[Dataset], names: Sequence[str] | None = None):
        if not datasets:
            raise ValueError("MixedDataset needs at least one dataset")
        self.datasets = list(datasets)
        self.names = list(names) if names is not None else [
            str(getattr(d, "name", f"dataset{i}")) for i, d in enumerate(self.datasets)
        ]
        if len(self.names) != len(self.datasets):
            raise ValueError(f"{len(self.datasets)} datasets but {len(self.names)} names")
        self.sizes = [len(d) for d in self.datasets]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64).tolist()

    def __len__(self) -> int:
        return self.offsets[-1]

    def locate(self, index: int) -> tuple[int, int]:
        """Global index -> (dataset id, local index)."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        d = bisect.bisect_right(self.offsets, index) - 1
        return d, index - self.offsets[d]

    def __getitem__(self, key: int | tuple[int, int]) -> Any:
        index, seed = (key if isinstance(key, tuple) else (key, None))
        d, local = self.locate(int(index))
        child = self.datasets[d]
        sample = child[(local, seed)] if seed is not None and getattr(child, "accepts_seeded_keys", False) else child[local]
        if isinstance(sample, dict):
            sample = {**sample, "source": self.names[d], "index": local}
        return sample


class MixingSampler(Sampler):
    """Yields ``(global_index, aug_seed)`` keys of :func:`mix_plan` for one rank.

    ``num_samples`` (the epoch length, all ranks together) is rounded up to a multiple of
    ``world_size`` so every rank gets the same number of draws. Call :meth:`set_epoch` before
    each epoch; ``start`` skips that many of this rank's draws (resume mid-epoch).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        weights: Sequence[float],
        num_samples: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if num_samples <= 0:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        allocate(weights, 1)  # validates the weights
        self.sizes, self.weights = [int(s) for s in sizes], [float(w) for w in weights]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.world_size, self.rank, self.seed = world_size, rank, int(seed)
        self.total = math.ceil(num_samples / world_size) * world_size
        self.per_rank = self.total // world_size
        self.epoch, self.start = 0, 0

    @classmethod
    def for_mixed(cls, mixed: MixedDataset, weights: Sequence[float], num_samples: int, **kw) -> "MixingSampler":
        return cls(mixed.sizes, weights, num_samples, **kw)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        if not 0 <= start <= self.per_rank:
            raise ValueError(f"start {start} outside this rank's {self.per_rank} draws")
        self.epoch, self.start = int(epoch), int(start)

    def keys(self, epoch: int) -> list[tuple[int, int]]:
        """All of this rank's keys for ``epoch`` (ignores ``start``)."""
        ids, local, aug = mix_plan(self.sizes, self.weights, self.total, self.seed, epoch)
        glob = self.offsets[ids] + local
        sl = slice(self.rank, None, self.world_size)
        return list(zip(glob[sl].tolist(), aug[sl].tolist()))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.keys(self.epoch)[self.start :])

    def __len__(self) -> int:
        return self.per_rank - self.start
