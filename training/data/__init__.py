"""Training data plumbing, independent of where samples come from.

* :mod:`.cache` - decode-once cache of fixed-shape sample arrays (``ensure_cache``)
* :mod:`.cached_dataset` - ``CachedDataset``: memmap reads, snippets, augmentation hook
* :mod:`.augment` - flip (geometry-consistent) and colour jitter
* :mod:`.mixing` - ``--dataset PATH[:WEIGHT]`` parsing, ``MixedDataset``, ``MixingSampler``
* :mod:`.loader` - ``EpochLoader``: restartable per-epoch batches for ``engine.loop.train``
"""
from .augment import Augment, color_jitter_torch, hflip_sample
from .cache import CacheError, CacheInfo, ensure_cache, open_cache, write_cache
from .cached_dataset import CachedDataset
from .loader import EpochLoader
from .mixing import add_mixing_arguments, DatasetSpec, DatasetSpecError, MixedDataset, MixingSampler, mix_plan, parse_dataset_spec, parse_dataset_specs

__all__ = [
    "Augment",
    "add_mixing_arguments",
    "color_jitter_torch",
    "CacheError",
    "CacheInfo",
    "CachedDataset",
    "DatasetSpec",
    "DatasetSpecError",
    "EpochLoader",
    "MixedDataset",
    "MixingSampler",
    "ensure_cache",
    "hflip_sample",
    "mix_plan",
    "open_cache",
    "parse_dataset_spec",
    "parse_dataset_specs",
    "write_cache",
]
