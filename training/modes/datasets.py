"""Planned recordings -> decode-once caches -> training mix and held-out validation sets.

Each recording is decoded once into a cache (:func:`depth_training.data.cache.ensure_cache`,
keyed by the bag path and every decode parameter, rebuilt when the bag changes). Training uses,
per training recording, the frames before its held-out tail (:mod:`.holdout`), all recordings
mixed with their ``--dataset PATH:WEIGHT`` weights (:class:`~depth_training.data.mixing.MixedDataset`);
validation uses the tails, or the whole ``--val-bag`` recordings when given.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from depth_training.cli import UserError
from depth_training.data.cache import CacheInfo, ensure_cache
from depth_training.data.cached_dataset import CachedDataset
from depth_training.data.mixing import MixedDataset

from .holdout import FrameRange, tail_start
from .recordings import NO_DEPTH_NOTE, DecodeOptions, Recording

__all__ = ["ModeData", "build_mode_data", "cache_recording"]

LOG = logging.getLogger("depth_training.modes")


@dataclass
class ModeData:
    """The datasets of one run.

    Attributes:
        train: training frames of all training recordings (one child per recording).
        weights: sampling weight of each child of ``train``.
        val: held-out frames, one :class:`FrameRange` per recording that has some.
        caches: the cache of every recording (training first, then ``--val-bag`` ones).
    """

    train: MixedDataset
    weights: list[float]
    val: list[FrameRange]
    caches: list[CacheInfo]


def cache_recording(recording: Recording, options: DecodeOptions, cache_root: Path) -> CacheInfo:
    """The decode-once cache of ``recording`` (built now if missing or stale)."""
    name = Path(recording.path).name or "bag"
    return ensure_cache(cache_root, recording.path, recording.cache_params(options),
                        lambda: recording.rows(options), name=name)


def _dataset(info: CacheInfo, offsets: Sequence[int], snippet_fields: Sequence[str], transform) -> CachedDataset:
    fields = [f for f in snippet_fields if f in info.fields]
    return CachedDataset(info, frame_offsets=offsets, snippet_fields=fields, transform=transform)


def build_mode_data(
    train_recordings: Sequence[tuple[Recording, float]],
    val_recordings: Sequence[Recording],
    options: DecodeOptions,
    cache_root: Path,
    *,
    frame_offsets: Sequence[int] = (0,),
    snippet_fields: Sequence[str] = (),
    train_transform: Callable | None = None,
    val_fraction: float = 0.2,
    verbose: bool = True,
) -> ModeData:
    """Cache every recording and split it (module docstring); ``verbose``: log the split (main rank).

    Raises:
        UserError: a recording leaves no training sample (too short for the snippet, or all
            held out), naming the bag and the counts.
    """
    caches, train_sets, weights, val_sets = [], [], [], []
    fraction = 0.0 if val_recordings else val_fraction
    for recording, weight in train_recordings:
        info = cache_recording(recording, options, cache_root)
        caches.append(info)
        split = tail_start(info.count, fraction)
        base = _dataset(info, frame_offsets, snippet_fields, train_transform)
        train = FrameRange(base, 0, split, name=f"{recording.path.name}")
        if len(train) == 0:
            span = max(frame_offsets) - min(frame_offsets) + 1
            held = f", {info.count - split} held out for validation" if split < info.count else ""
            fixes = (["a smaller --frame-stride"] if span > len(frame_offsets) else []) + \
                ["a longer recording"] + (["a smaller --val-fraction (or --val-bag)"] if held else [])
            raise UserError(f"{recording.path}: {info.count} frames decoded{held}: a sample spans {span} consecutive "
                            f"frames (offsets {', '.join(f'{o:+d}' for o in frame_offsets)}), so the {split} training "
                            f"frames give no sample; use {' or '.join(fixes)}")
        train_sets.append(train)
        weights.append(weight)
        if split < info.count:
            val_base = _dataset(info, frame_offsets, snippet_fields, None)
            val = FrameRange(val_base, split, info.count, name=f"{recording.path.name}[val]")
            if len(val):
                val_sets.append(val)
        if verbose:
            if split < info.count:
                LOG.info("%s: %d frames, training on frames 0..%d (%d samples), validating on %d..%d",
                         recording.path, info.count, split - 1, len(train), split, info.count - 1)
            else:
                LOG.info("%s: %d frames, training on all of them (%d samples)%s", recording.path, info.count,
                         len(train), "" if val_recordings else "; no validation (--val-fraction 0)")
            for note in recording.notes:
                # no frames held out (--val-bag validates instead, or --val-fraction 0): the note does not apply
                if not (note.endswith(NO_DEPTH_NOTE) and (val_recordings or split >= info.count)):
                    LOG.info("%s", note)
    for recording in val_recordings:
        info = cache_recording(recording, options, cache_root)
        caches.append(info)
        val = FrameRange(_dataset(info, frame_offsets, snippet_fields, None), 0, info.count,
                         name=f"{recording.path.name}[val]")
        if len(val) == 0:
            raise UserError(f"{recording.path}: {info.count} frames decoded: no validation sample of "
                            f"{len(frame_offsets)} frame(s)")
        val_sets.append(val)
        if verbose:
            LOG.info("%s: %d frames, all for validation", recording.path, info.count)
            for note in recording.notes:
                LOG.info("%s", note)
    return ModeData(MixedDataset(train_sets), weights, val_sets, caches)
