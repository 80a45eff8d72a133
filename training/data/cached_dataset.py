"""A torch ``Dataset`` over a decode-once cache (:mod:`.cache`).

Each DataLoader worker opens the ``.npy`` files with ``mmap_mode="r"`` on first use (memmaps
are not pickled to workers), and a sample costs a copy of its rows - no decoding, no resizing.

Snippets: with ``frame_offsets=(-1, 0, 1)`` sample ``i`` is built around cached frame ``c``;
the fields named in ``snippet_fields`` are stacked over frames ``c-1, c, c+1`` (new leading
axis, in offset order) and the other fields come from ``c``. Only centres whose neighbours all
exist are used, and when the cache has a ``sequence`` field, neighbours must share its value
(no snippet spans two recordings or a gap the bag reader marked).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from torch.utils.data import Dataset

from .cache import CacheInfo, open_cache

Transform = Callable[[dict[str, Any], np.random.Generator], dict[str, Any]]


def snippet_centres(count: int, offsets: Sequence[int], sequence: np.ndarray | None = None) -> np.ndarray:
    """Frame indices ``c`` such that every ``c + o`` exists (and has ``sequence[c]``): (M,) int64."""
    c = np.arange(count, dtype=np.int64)
    ok = np.ones(count, dtype=bool)
    for o in offsets:
        n = c + o
        inside = (n >= 0) & (n < count)
        ok &= inside
        if sequence is not None:
            same = np.zeros(count, dtype=bool)
            same[inside] = sequence[n[inside]] == sequence[c[inside]]
            ok &= same
    return c[ok]


class CachedDataset(Dataset):
    """Samples from one cache directory.

    Args:
        cache: a :class:`CacheInfo` or the cache directory.
        frame_offsets: frames per sample relative to the centre, e.g. ``(-1, 0, 1)``.
        snippet_fields: fields stacked over ``frame_offsets`` (default: all fields when
            there is more than one offset).
        transform: ``transform(sample, rng) -> sample`` (e.g. :class:`.augment.Augment`).
        name: shown in logs as the sample's ``source`` (default: the cache directory name).

    ``dataset[i]`` or ``dataset[(i, seed)]`` returns a dict of NumPy arrays plus ``index``
    (``i``) and ``source``. With a seed, the transform's generator is
    ``np.random.default_rng(seed)``; without, it is seeded from NumPy's global generator, which
    :func:`depth_training.engine.seeding.seed_worker` seeds per worker.
    """

    accepts_seeded_keys = True

    def __init__(
        self,
        cache: CacheInfo | str | Path,
        *,
        frame_offsets: Sequence[int] = (0,),
        snippet_fields: Sequence[str] | None = None,
        transform: Transform | None = None,
        name: str | None = None,
    ):
        self.info = cache if isinstance(cache, CacheInfo) else open_cache(cache)
        self.offsets = tuple(int(o) for o in frame_offsets)
        if not self.offsets:
            raise ValueError("frame_offsets must not be empty")
        fields = list(self.info.fields)
        if snippet_fields is None:
            snippet_fields = fields if self.offsets != (0,) else ()
        unknown = set(snippet_fields) - set(fields)
        if unknown:
            raise ValueError(f"{self.info.directory}: no field(s) {sorted(unknown)} (has {fields})")
        self.snippet_fields = tuple(snippet_fields)
        self.transform = transform
        self.name = name or self.info.directory.name
        seq = np.load(self.info.field_path("sequence"), allow_pickle=False) if "sequence" in self.info.fields else None
        self.centres = snippet_centres(self.info.count, self.offsets, seq)
        self._arrays: dict[str, np.ndarray] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_arrays"] = None  # reopen the memmaps in the worker
        return state

    def arrays(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            self._arrays = {k: np.load(self.info.field_path(k), mmap_mode="r", allow_pickle=False) for k in self.info.fields}
        return self._arrays

    def __len__(self) -> int:
        return len(self.centres)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples in {self.name}")
        c = int(self.centres[index])
        sample: dict[str, Any] = {}
        for k, arr in self.arrays().items():
            if k in self.snippet_fields:
                sample[k] = np.stack([arr[c + o] for o in self.offsets])
            else:
                sample[k] = np.array(arr[c])
        if self.transform is not None:
            rng = np.random.default_rng(seed if seed is not None else np.random.randint(0, 2**31))
            sample = self.transform(sample, rng)
        sample["index"] = index % len(self)
        sample["source"] = self.name
        return sample
