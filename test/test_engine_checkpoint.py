"""Checkpoints: atomic writes, keep-last-K, exact round trip, corrupt/truncated ones skipped."""
import json
import logging
import random

import numpy as np
import pytest
import torch

from depth_training.engine.checkpoint import CheckpointManager, restore_training_state, training_state
from depth_training.engine.seeding import capture_rng_state, restore_rng_state, seed_everything


def _objects(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return model, opt, sched


def _train_some(model, opt, sched, steps):
    for _ in range(steps):
        x = torch.randn(16, 4)
        loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def _save(mgr, step, model, opt, sched):
    return mgr.save(training_state(step, model, opt, sched, epoch=step // 3, config={"lr": 1e-2, "name": "t"}))


def test_round_trip_restores_everything_exactly(tmp_path):
    model, opt, sched = _objects()
    _train_some(model, opt, sched, 3)
    seed_everything(123)
    mgr = CheckpointManager(tmp_path)
    path = _save(mgr, 3, model, opt, sched)
    # what the original would do next
    _train_some(model, opt, sched, 2)
    expected = [p.detach().clone() for p in model.parameters()]
    expected_draws = (random.random(), float(np.random.rand()), torch.rand(1).item())

    model2, opt2, sched2 = _objects(seed=99)  # different initial weights
    state = mgr.load_latest()
    assert state["step"] == 3 and state["config"] == {"lr": 1e-2, "name": "t"}
    assert restore_training_state(state, model2, opt2, sched2) == 3
    # the file loads without unpickling arbitrary objects
    torch.load(path, weights_only=True)
    assert sched2.last_epoch == 3
    # RNG restored: the next random draws continue the saved streams (data + dropout order)
    _train_some(model2, opt2, sched2, 2)
    for a, b in zip(expected, model2.parameters()):
        assert torch.equal(a, b)
    assert (random.random(), float(np.random.rand()), torch.rand(1).item()) == expected_draws


def test_rng_capture_restore():
    seed_everything(5)
    state = capture_rng_state()
    a = (random.random(), np.random.normal(), torch.randn(3))
    restore_rng_state(state)
    b = (random.random(), np.random.normal(), torch.randn(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])


def test_keep_last_and_latest_pointer(tmp_path):
    model, opt, sched = _objects()
    mgr = CheckpointManager(tmp_path, keep_last=2)
    for step in (5, 10, 15, 20):
        _save(mgr, step, model, opt, sched)
    assert [c.step for c in mgr.list()] == [15, 20]
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["ckpt-00000015.json", "ckpt-00000020.json"]
    assert (tmp_path / "latest").read_text().strip() == "ckpt-00000020.pt"
    assert not list(tmp_path.glob("*.tmp"))
    meta = json.loads((tmp_path / "ckpt-00000020.json").read_text())
    assert meta["step"] == 20 and meta["bytes"] == (tmp_path / "ckpt-00000020.pt").stat().st_size


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "no_sidecar", "garbage_sidecar"])
def test_damaged_newest_checkpoint_is_reported_and_skipped(tmp_path, caplog, damage):
    model, opt, sched = _objects()
    mgr = CheckpointManager(tmp_path, keep_last=3)
    _save(mgr, 10, model, opt, sched)
    _train_some(model, opt, sched, 1)
    newest = _save(mgr, 20, model, opt, sched)
    data = newest.read_bytes()
    if damage == "truncate":
        newest.write_bytes(data[: len(data) // 2])
    elif damage == "flip_byte":
        i = len(data) // 2
        newest.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :])
    elif damage == "no_sidecar":
        newest.with_suffix(".json").unlink()
    else:
        newest.with_suffix(".json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="depth_training.checkpoint"):
        state = mgr.load_latest()
    assert state is not None and state["step"] == 10
    assert any("ckpt-00000020.pt" in r.getMessage() for r in caplog.records)


def test_torn_file_with_matching_sidecar_fails_torch_load(tmp_path, caplog):
    """A file whose bytes match its sidecar but is not a torch checkpoint (e.g. copied over)."""
    model, opt, sched = _objects()
    mgr = CheckpointManager(tmp_path)
    _save(mgr, 1, model, opt, sched)
    bad = _save(mgr, 2, model, opt, sched)
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    from depth_training.engine.checkpoint import sha256_file

    bad.with_suffix(".json").write_text(json.dumps({"step": 2, "bytes": bad.stat().st_size, "sha256": sha256_file(bad)}))
    with caplog.at_level(logging.WARNING):
        assert mgr.load_latest()["step"] == 1
    assert any("torch.load failed" in r.getMessage() for r in caplog.records)


def test_no_checkpoint_and_stale_tmp(tmp_path):
    mgr = CheckpointManager(tmp_path / "none")
    assert mgr.load_latest() is None
    mgr2 = CheckpointManager(tmp_path)
    (tmp_path / "ckpt-00000007.pt.tmp").write_bytes(b"half written")
    assert mgr2.load_latest() is None  # a .tmp is never a candidate
    model, opt, sched = _objects()
    _save(mgr2, 8, model, opt, sched)
    assert not list(tmp_path.glob("*.tmp"))  # cleaned by the next save
