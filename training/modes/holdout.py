"""Held-out validation frames: a contiguous tail of each recording, never mixed into training.

Frames of a cached recording are numbered ``0 .. n-1`` in header-stamp order. With a validation
fraction ``f`` the last ``ceil(f * n)`` frames are held out (the same tail that
``depth-train eval --tail f`` evaluates), so validation frames are later in time than every
training frame and neighbouring, nearly identical frames cannot leak from one side to the other.
With ``--val-bag`` whole recordings are held out instead and the training recordings are used
entire.

:class:`FrameRange` is the view of a :class:`~depth_training.data.cached_dataset.CachedDataset`
restricted to frames ``first <= i < stop``: a sample (a snippet ``c + o`` for every offset ``o``)
belongs to it only when all of its frames do, so no snippet straddles the boundary.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from depth_training.data.cached_dataset import CachedDataset

__all__ = ["tail_start", "FrameRange"]


def tail_start(n: int, fraction: float) -> int:
    """First frame of the held-out tail of ``n`` frames: ``n - ceil(fraction * n)``.

    ``fraction = 0`` holds nothing out (returns ``n``). A tolerance of 1e-9 keeps float products
    such as ``0.2 * 10`` from rounding up to one frame more.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    return n - int(math.ceil(fraction * n - 1e-9))


class FrameRange(Dataset):
    """The samples of ``base`` whose frames all lie in ``[first, stop)``.

    Keys are ``i`` or ``(i, aug_seed)`` as for :class:`CachedDataset`; ``sample["frame"]`` is the
    centre frame's index in the recording (for log lines about a bad batch).
    """

    accepts_seeded_keys = True

    def __init__(self, base: CachedDataset, first: int, stop: int, name: str | None = None):
        self.base, self.first, self.stop = base, int(first), int(stop)
        self.name = name or f"{base.name}[{first}:{stop}]"
        centres = np.asarray(base.centres, dtype=np.int64)
        lo, hi = min(base.offsets), max(base.offsets)
        self.keep = np.flatnonzero((centres + lo >= self.first) & (centres + hi < self.stop))

    def __len__(self) -> int:
        return len(self.keep)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        index = int(index)
        if not 0 <= index < len(self.keep):
            raise IndexError(f"index {index} out of range for {len(self.keep)} samples in {self.name}")
        base_index = int(self.keep[index])
        sample = self.base[(base_index, seed)] if seed is not None else self.base[base_index]
        sample["frame"] = int(self.base.centres[base_index])
        sample["index"] = index
        sample["source"] = self.name
        return sample
