"""Dataset mixing: PATH[:WEIGHT] parsing, weighted epochs, determinism, rank sharding."""
import argparse
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from depth_training.cli import UserError
from depth_training.data.mixing import (
    DatasetSpec, DatasetSpecError, MixedDataset, MixingSampler, add_mixing_arguments, allocate, mix_plan,
    parse_dataset_spec, parse_dataset_specs,
)


def test_parse_spec_forms(tmp_path):
    assert parse_dataset_spec("runs/a.bag:0.7") == DatasetSpec(tmp_path.__class__("runs/a.bag"), 0.7)
    assert parse_dataset_spec("a.bag").weight == 1.0
    assert parse_dataset_spec("b.mcap:2").weight == 2.0
    assert parse_dataset_spec("/data/x:y/bag").path.as_posix() == "/data/x:y/bag"  # ':' inside a path
    odd = tmp_path / "odd:name"
    odd.mkdir()
    assert parse_dataset_spec(str(odd)).path == odd and parse_dataset_spec(str(odd)).weight == 1.0
    assert parse_dataset_spec(f"{odd}:0.5") == DatasetSpec(odd, 0.5)


@pytest.mark.parametrize(
    "text, message",
    [
        ("a.bag:abc", "a.bag: weight 'abc' is not a number"),
        ("a.bag:", "missing weight"),
        (":0.3", "missing path"),
        ("a.bag:0", "weight must be a positive number"),
        ("a.bag:-1", "weight must be a positive number"),
        ("a.bag:nan", "weight must be a positive number"),
        ("", "empty dataset argument"),
    ],
)
def test_parse_spec_errors(text, message):
    with pytest.raises(DatasetSpecError, match=message) as info:
        parse_dataset_spec(text)
    assert isinstance(info.value, UserError)


def test_parse_specs_duplicates_and_missing(tmp_path):
    with pytest.raises(DatasetSpecError, match="given twice"):
        parse_dataset_specs(["a.bag:0.5", "./a.bag:0.5"])
    with pytest.raises(DatasetSpecError, match="no such file"):
        parse_dataset_specs([str(tmp_path / "missing.bag")], must_exist=True)
    with pytest.raises(DatasetSpecError, match="no dataset given"):
        parse_dataset_specs([])
    assert [s.weight for s in parse_dataset_specs(["a:0.7", "b:0.3"])] == [0.7, 0.3]


def test_parse_spec_as_argparse_type(capsys):
    parser = argparse.ArgumentParser(prog="depth-train train")
    parser.add_argument("--dataset", type=parse_dataset_spec, action="append")
    ns = parser.parse_args(["--dataset", "A.bag:0.7", "--dataset", "B.bag:0.3"])
    assert [(s.path.name, s.weight) for s in ns.dataset] == [("A.bag", 0.7), ("B.bag", 0.3)]
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--dataset", "A.bag:x"])
    assert exc.value.code == 2
    assert "A.bag: weight 'x' is not a number" in capsys.readouterr().err

    train = argparse.ArgumentParser(prog="depth-train train")
    add_mixing_arguments(train)
    ns = train.parse_args(["--dataset", "a.bag", "--dataset", "b.bag:3", "--epoch-samples", "500"])
    assert [s.weight for s in ns.dataset] == [1.0, 3.0] and ns.epoch_samples == 500


def test_allocate():
    assert allocate([0.7, 0.3], 1000).tolist() == [700, 300]
    assert allocate([1, 1, 1], 10).tolist() == [4, 3, 3]
    assert allocate([2, 0, 1], 7).sum() == 7
    with pytest.raises(ValueError):
        allocate([0, 0], 5)
    with pytest.raises(ValueError):
        allocate([1, -1], 5)


def test_plan_proportions_coverage_and_determinism():
    sizes, weights = [50, 7, 1000], [0.5, 0.2, 0.3]
    ids, local, aug = mix_plan(sizes, weights, 1000, seed=1, epoch=0)
    assert Counter(ids.tolist()) == {0: 500, 1: 200, 2: 300}
    for d, n in enumerate(sizes):
        assert local[ids == d].max() < n
    # every sample of a dataset is drawn before any is drawn again (200 draws of 7 samples)
    counts = np.bincount(local[ids == 1], minlength=7)
    assert counts.max() - counts.min() <= 1
    # the within-dataset stream continues across epochs: dataset 2 (size 1000, 300 per epoch)
    seen = np.concatenate([mix_plan(sizes, weights, 1000, 1, e)[1][mix_plan(sizes, weights, 1000, 1, e)[0] == 2]
                           for e in range(3)])
    assert len(np.unique(seen)) == 900
    again = mix_plan(sizes, weights, 1000, seed=1, epoch=0)
    assert all(np.array_equal(a, b) for a, b in zip((ids, local, aug), again))
    other = mix_plan(sizes, weights, 1000, seed=1, epoch=1)
    assert not np.array_equal(ids, other[0])
    assert not np.array_equal(ids, mix_plan(sizes, weights, 1000, seed=2, epoch=0)[0])
    with pytest.raises(ValueError, match="empty"):
        mix_plan([0, 5], [1, 1], 10, 0, 0)


def test_sampler_rank_shards_are_disjoint_equal_and_cover_the_plan():
    sizes, weights = [30, 40], [0.7, 0.3]
    full = MixingSampler(sizes, weights, 101, seed=4)
    shards = [MixingSampler(sizes, weights, 101, seed=4, rank=r, world_size=3) for r in range(3)]
    for s in shards:
        s.set_epoch(2)
    keys = [list(s) for s in shards]
    assert [len(k) for k in keys] == [34, 34, 34]  # 101 rounded up to 102
    merged = [keys[i % 3][i // 3] for i in range(102)]
    assert merged == MixingSampler(sizes, weights, 102, seed=4).keys(2)
    full.set_epoch(2, start=10)
    assert list(full) == full.keys(2)[10:] and len(full) == 91


class _Tagged(Dataset):
    accepts_seeded_keys = True

    def __init__(self, n, tag):
        self.n, self.tag = n, tag

    def __len__(self):
        return self.n

    def __getitem__(self, key):
        i, seed = key if isinstance(key, tuple) else (key, None)
        rng = np.random.default_rng(seed)
        return {"x": np.float32(self.tag * 1000 + i), "noise": np.float32(rng.random())}


def test_empirical_proportions_through_a_dataloader_and_worker_invariance():
    mixed = MixedDataset([_Tagged(20, 1), _Tagged(300, 2)], names=["small", "big"])
    assert len(mixed) == 320 and mixed.locate(25) == (1, 5)
    sampler = MixingSampler.for_mixed(mixed, [0.7, 0.3], 2000, seed=0)
    sampler.set_epoch(0)
    outs = []
    for workers in (0, 2):
        loader = DataLoader(mixed, batch_size=50, sampler=sampler, num_workers=workers)
        outs.append([b for b in loader])
    src = [s for b in outs[0] for s in b["source"]]
    frac = Counter(src)["small"] / len(src)
    assert abs(frac - 0.7) < 0.01  # 20 samples drawn 1400 times, 300 drawn 600 times
    first = Counter(outs[0][0]["source"])["small"] / 50
    assert 0.4 < first < 0.95  # mixed within a batch, not dataset by dataset
    # the sample content (incl. per-draw random augmentation) does not depend on worker count
    for a, b in zip(*outs):
        assert torch.equal(a["x"], b["x"]) and torch.equal(a["noise"], b["noise"])
    assert isinstance(mixed[3], dict) and mixed[3]["source"] == "small" and mixed[3]["index"] == 3
