"""Decode-once cache: build, reuse without touching the source, stale/partial/corrupt rebuilds."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from depth_training.cli import UserError
from depth_training.data.cache import CacheError, cache_key, ensure_cache, open_cache, write_cache
from depth_training.data.cached_dataset import CachedDataset, snippet_centres


def frames(n, h=6, w=8, seed=0, sequence=None):
    rng = np.random.default_rng(seed)
    for i in range(n):
        s = {
            "image": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
            "depth": rng.random((h, w), dtype=np.float32) * 10,
            "K": np.eye(3, dtype=np.float32) * (i + 1),
            "pose": np.eye(4),
            "stamp": np.float64(i * 0.1),
        }
        if sequence is not None:
            s["sequence"] = np.int32(sequence[i])
        yield s


class Counting:
    def __init__(self, n, **kw):
        self.n, self.kw, self.calls = n, kw, 0

    def __call__(self):
        self.calls += 1
        return frames(self.n, **self.kw)


@pytest.fixture()
def bag(tmp_path):
    d = tmp_path / "rec.bag"
    d.mkdir()
    (d / "metadata.yaml").write_text("x")
    (d / "rec_0.db3").write_bytes(b"\0" * 100)
    return d


PARAMS = {"topics": ["/camera/color/image_raw"], "size": [8, 6], "resize": "area"}


def test_build_then_reuse_without_reading_the_source(tmp_path, bag):
    make = Counting(5)
    info = ensure_cache(tmp_path / "c", bag, PARAMS, make)
    assert make.calls == 1 and info.count == 5
    assert info.fields["image"].shape == (6, 8, 3) and info.fields["image"].dtype == np.uint8
    assert info.fields["stamp"].shape == () and info.directory.name.startswith("rec.bag-")
    arr = np.load(info.field_path("depth"), mmap_mode="r")
    ref = list(frames(5))
    assert isinstance(arr, np.memmap) and np.array_equal(arr[3], ref[3]["depth"])
    again = ensure_cache(tmp_path / "c", bag, PARAMS, make)
    assert make.calls == 1 and again.directory == info.directory
    # other preprocessing -> another cache next to it
    other = ensure_cache(tmp_path / "c", bag, {**PARAMS, "size": [16, 12]}, Counting(2))
    assert other.directory != info.directory and open_cache(info.directory).count == 5


def test_changed_source_is_stale_and_rebuilt(tmp_path, bag):
    ensure_cache(tmp_path / "c", bag, PARAMS, Counting(5))
    (bag / "rec_0.db3").write_bytes(b"\0" * 200)  # re-recorded
    make = Counting(3)
    info = ensure_cache(tmp_path / "c", bag, PARAMS, make)
    assert make.calls == 1 and info.count == 3
    assert len([p for p in (tmp_path / "c").iterdir()]) == 1  # replaced in place, nothing left over


def test_missing_source_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="nope.bag: no such file"):
        ensure_cache(tmp_path / "c", tmp_path / "nope.bag", PARAMS, Counting(1))


def test_failed_build_leaves_nothing(tmp_path, bag):
    def broken():
        yield from frames(2)
        raise RuntimeError("decoder crashed")

    with pytest.raises(RuntimeError, match="decoder crashed"):
        ensure_cache(tmp_path / "c", bag, PARAMS, broken)
    assert list((tmp_path / "c").iterdir()) == []


def test_killed_build_is_cleaned_up_and_rebuilt(tmp_path, bag):
    root = tmp_path / "c"
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        from depth_training.data.cache import ensure_cache
        def gen():
            for i in range(3):
                yield {{"x": np.full((4,), i, np.float32)}}
            os.kill(os.getpid(), signal.SIGKILL)   # dies mid-write
        ensure_cache({str(root)!r}, {str(bag)!r}, {PARAMS!r}, gen)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -9
    left = list(root.iterdir())
    assert len(left) == 1 and left[0].name.startswith(".tmp-")  # the half-written build
    make = Counting(4)
    info = ensure_cache(root, bag, PARAMS, make)
    assert make.calls == 1 and info.count == 4
    assert [p.name for p in root.iterdir()] == [info.directory.name]


@pytest.mark.parametrize("damage", ["truncate_field", "drop_meta", "bad_meta", "shape_lie"])
def test_corrupt_cache_is_detected_and_rebuilt(tmp_path, bag, caplog, damage):
    info = ensure_cache(tmp_path / "c", bag, PARAMS, Counting(5))
    if damage == "truncate_field":
        p = info.field_path("image")
        p.write_bytes(p.read_bytes()[:-50])
    elif damage == "drop_meta":
        (info.directory / "meta.json").unlink()
    elif damage == "bad_meta":
        (info.directory / "meta.json").write_text("{")
    else:
        meta = json.loads((info.directory / "meta.json").read_text())
        meta["count"] = 6
        (info.directory / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CacheError):
        open_cache(info.directory)
    make = Counting(5)
    with caplog.at_level("WARNING", logger="depth_training.cache"):
        rebuilt = ensure_cache(tmp_path / "c", bag, PARAMS, make)
    assert make.calls == 1 and rebuilt.count == 5
    assert any("rebuilding cache" in r.getMessage() for r in caplog.records)


def test_inconsistent_samples_are_rejected_with_the_sample_named(tmp_path):
    good = list(frames(3))
    bad_shape = good[:2] + [{**good[2], "depth": np.zeros((5, 8), np.float32)}]
    with pytest.raises(ValueError, match=r"sample 2: field 'depth' has shape \(5, 8\)"):
        write_cache(bad_shape, tmp_path / "a")
    with pytest.raises(ValueError, match="sample 1 has fields"):
        write_cache([good[0], {"image": good[1]["image"]}], tmp_path / "b")
    with pytest.raises(ValueError, match="unsupported type"):
        write_cache([{"name": np.array("x")}], tmp_path / "c")
    with pytest.raises(ValueError, match="no samples"):
        write_cache([], tmp_path / "d")
    with pytest.raises(ValueError, match="dtype"):
        write_cache([good[0], {**good[1], "image": good[1]["image"].astype(np.float32)}], tmp_path / "e")
    assert not any(p.name.startswith(".tmp") for p in tmp_path.iterdir())
    # safe up-casts are fine (int -> float64 pose)
    write_cache([good[0], {**good[1], "pose": np.eye(4, dtype=np.int32)}], tmp_path / "f")


def test_cache_key_depends_on_path_and_params(tmp_path):
    assert cache_key(tmp_path / "a", {"x": 1, "y": 2}) == cache_key(tmp_path / "a", {"y": 2, "x": 1})
    assert cache_key(tmp_path / "a", {"x": 1}) != cache_key(tmp_path / "b", {"x": 1})
    assert cache_key(tmp_path / "a", {"x": 1}) != cache_key(tmp_path / "a", {"x": 2})


def test_cached_dataset_samples_and_snippets(tmp_path):
    seq = [0, 0, 0, 0, 1, 1, 1, 1]
    info = write_cache(frames(8, sequence=seq), tmp_path / "c")
    ref = list(frames(8, sequence=seq))
    single = CachedDataset(info, name="rec")
    assert len(single) == 8
    s = single[5]
    assert s["source"] == "rec" and s["index"] == 5
    assert np.array_equal(s["image"], ref[5]["image"]) and s["image"].flags.writeable

    snip = CachedDataset(info.directory, frame_offsets=(-1, 0, 1), snippet_fields=("image", "pose"))
    # centres 1, 2 (sequence 0) and 5, 6 (sequence 1): no snippet crosses the boundary
    assert snip.centres.tolist() == [1, 2, 5, 6]
    s = snip[2]
    assert s["image"].shape == (3, 6, 8, 3) and s["pose"].shape == (3, 4, 4)
    for j, o in enumerate((-1, 0, 1)):
        assert np.array_equal(s["image"][j], ref[5 + o]["image"])
    assert np.array_equal(s["K"], ref[5]["K"]) and s["depth"].shape == (6, 8)
    with pytest.raises(IndexError):
        snip[4]
    with pytest.raises(ValueError, match="no field"):
        CachedDataset(info, frame_offsets=(0, 1), snippet_fields=("nope",))
    assert snippet_centres(5, (-2, 0)).tolist() == [2, 3, 4]


def test_cached_dataset_pickles_without_memmaps(tmp_path):
    import pickle

    ds = CachedDataset(write_cache(frames(3), tmp_path / "c"))
    ds[0]
    assert ds._arrays is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._arrays is None and np.array_equal(clone[1]["depth"], ds[1]["depth"])


def test_seeded_transform_is_reproducible(tmp_path):
    def transform(sample, rng):
        return {**sample, "r": np.float32(rng.random())}

    ds = CachedDataset(write_cache(frames(3), tmp_path / "c"), transform=transform)
    assert ds[(1, 42)]["r"] == ds[(1, 42)]["r"] != ds[(1, 43)]["r"]
    assert os.path.exists(tmp_path / "c" / "meta.json")
