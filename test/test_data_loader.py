"""EpochLoader: restart mid-epoch with the same batches; worker count does not change the data."""
import numpy as np
import torch

from depth_training.data.augment import Augment
from depth_training.data.cache import write_cache
from depth_training.data.cached_dataset import CachedDataset
from depth_training.data.loader import EpochLoader
from depth_training.data.mixing import MixedDataset, MixingSampler


def _mixed(tmp_path):
    sets = []
    for name, n in (("a", 9), ("b", 14)):
        rng = np.random.default_rng(len(name) + n)
        samples = ({"image": rng.integers(0, 256, (4, 5, 3), dtype=np.uint8),
                    "depth": np.full((4, 5), i, np.float32), "K": np.eye(3, dtype=np.float32)} for i in range(n))
        sets.append(CachedDataset(write_cache(samples, tmp_path / name), transform=Augment(), name=name))
    return MixedDataset(sets)


def _flat(batches):
    return [(s, int(i)) for b in batches for s, i in zip(b["source"], b["index"], strict=True)]


def test_restart_mid_epoch_continues_with_the_same_batches(tmp_path):
    mixed = _mixed(tmp_path)
    loader = EpochLoader(mixed, MixingSampler.for_mixed(mixed, [1, 1], 30, seed=3), batch_size=4)
    assert loader.batches_per_epoch == len(loader) == 7
    full = list(loader.iter_epoch(2))
    assert len(full) == 7
    tail = list(loader.iter_epoch(2, start_batch=4))
    assert len(tail) == 3 and _flat(tail) == _flat(full[4:])
    for a, b in zip(tail, full[4:], strict=True):
        assert torch.equal(a["image_aug"], b["image_aug"]) and torch.equal(a["depth"], b["depth"])
    assert _flat(list(loader.iter_epoch(3))) != _flat(full)
    assert list(loader.iter_epoch(2, start_batch=7)) == []


def test_worker_count_does_not_change_batches(tmp_path):
    mixed = _mixed(tmp_path)
    out = []
    for workers in (0, 2):
        sampler = MixingSampler.for_mixed(mixed, [0.5, 0.5], 16, seed=1)
        loader = EpochLoader(mixed, sampler, batch_size=4, num_workers=workers, seed=1)
        out.append([list(loader.iter_epoch(e)) for e in (0, 1)])  # persistent workers, two epochs
    assert len(out) == 2 and len(out[0]) == len(out[1]) == 2
    for ea, eb in zip(*out, strict=True):
        assert len(ea) == len(eb) == 4  # 16 samples in batches of 4
        for a, b in zip(ea, eb, strict=True):
            assert a.keys() == b.keys()
            for k in ("image", "image_aug", "depth", "K", "index"):
                assert torch.equal(a[k], b[k]), k
    batch = out[0][0][0]
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (4, 4, 5, 3)
