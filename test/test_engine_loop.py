"""The training loop with a real (tiny) model: loss falls, bad batches are skipped and logged,
clipping, validation, images, exact in-process resume."""
import logging

import pytest
import torch

from depth_training.data.loader import EpochLoader
from depth_training.data.mixing import MixingSampler
from depth_training.engine.checkpoint import CheckpointManager
from depth_training.engine.loop import SkipBatch, TrainingAborted, describe_batch, train
from depth_training.engine.monitor import Monitor
from depth_training.engine.precision import resolve_precision
from depth_training.engine.toy import TinyDepthNet, build_data, depth_step, images_to_float


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    return build_data(tmp_path_factory.mktemp("cache"), height=16, width=20, frames=12)


def _setup(mixed, seed=0, batch_size=4, epoch_samples=24, lr=3e-3):
    sampler = MixingSampler.for_mixed(mixed, [0.7, 0.3], epoch_samples, seed=seed)
    data = EpochLoader(mixed, sampler, batch_size=batch_size, seed=seed)
    torch.manual_seed(seed)
    model = TinyDepthNet()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return model, opt, data


def _first_loss(model, data):
    batch = next(iter(data.iter_epoch(0)))
    with torch.no_grad():
        return float(depth_step(model, batch)[0])


def test_loss_falls(mixed):
    model, opt, data = _setup(mixed)
    before = _first_loss(model, data)
    result = train(model, opt, depth_step, data, max_steps=40, log_every=10)
    assert result.step == 40 and result.skipped_batches == 0
    assert result.last_scalars["loss"] < 0.6 * before
    assert result.last_scalars["lr"] == pytest.approx(3e-3)
    assert result.last_scalars["images_per_s"] > 0


def test_nan_loss_and_skipbatch_are_skipped_and_logged(mixed, caplog):
    model, opt, data = _setup(mixed)
    calls = {"n": 0}

    def step_fn(model, batch):
        calls["n"] += 1
        if calls["n"] == 3:
            return torch.tensor(float("nan"), requires_grad=True), {}
        if calls["n"] == 5:
            raise SkipBatch("all-invalid depth")
        return depth_step(model, batch)

    snapshots = []

    def val_fn(net, step):
        snapshots.append((step, [p.detach().clone() for p in net.parameters()]))
        return {"l1": 0.0}

    with caplog.at_level(logging.WARNING, logger="depth_training.train"):
        result = train(model, opt, step_fn, data, max_steps=8, val_fn=val_fn, val_every=1)
    assert result.skipped_batches == 2 and result.step == 8
    msgs = [r.getMessage() for r in caplog.records if "skipped batch" in r.getMessage()]
    assert len(msgs) == 2
    assert msgs[0].startswith("step 3:") and "non-finite loss" in msgs[0]
    assert "all-invalid depth" in msgs[1] and msgs[1].startswith("step 5:")
    assert "rec_" in msgs[0] and "#" in msgs[0]  # names the source dataset and sample index
    weights = dict(snapshots)
    for a, b in zip(weights[2], weights[3]):  # the skipped step left the weights alone
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(weights[3], weights[4]))


def test_nonfinite_gradient_is_skipped(mixed, caplog):
    model, opt, data = _setup(mixed)
    calls = {"n": 0}

    def step_fn(model, batch):
        calls["n"] += 1
        loss, logs = depth_step(model, batch)
        if calls["n"] == 2:
            w = model.conv2.bias.sum()
            loss = loss + torch.sqrt(w - w.detach())  # value 0, gradient +inf
        return loss, logs

    with caplog.at_level(logging.WARNING):
        result = train(model, opt, step_fn, data, max_steps=4)
    assert result.skipped_batches == 1
    assert any("non-finite gradient norm" in r.getMessage() for r in caplog.records)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_too_many_bad_batches_aborts_with_checkpoint(mixed, tmp_path):
    model, opt, data = _setup(mixed)

    def step_fn(model, batch):
        raise SkipBatch("all-invalid depth")

    mgr = CheckpointManager(tmp_path)
    with pytest.raises(TrainingAborted, match="3 batches in a row were skipped"):
        train(model, opt, step_fn, data, max_steps=10, max_bad_in_row=3, checkpoints=mgr)
    assert [c.step for c in mgr.list()] == [3]


def test_grad_clip_bounds_the_update(mixed):
    model, opt, data = _setup(mixed)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    train(model, opt, depth_step, data, max_steps=1, grad_clip=0.01)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert (after - before).norm() <= 0.01 + 1e-6
    assert (after - before).norm() > 0.005


def test_resume_in_process_is_exact_and_continues_data(mixed, tmp_path):
    model, opt, data = _setup(mixed)
    sched = torch.optim.lr_scheduler.StepLR(opt, 5, 0.5)
    train(model, opt, depth_step, data, max_steps=14, scheduler=sched)
    reference = [p.detach().clone() for p in model.parameters()]

    mgr = CheckpointManager(tmp_path)
    model, opt, data = _setup(mixed)
    sched = torch.optim.lr_scheduler.StepLR(opt, 5, 0.5)
    train(model, opt, depth_step, data, max_steps=9, scheduler=sched, checkpoints=mgr, ckpt_every=4)
    assert [c.step for c in mgr.list()] == [4, 8, 9]
    # a fresh process-like start: new objects, different initial weights
    model, opt, data = _setup(mixed, seed=0)
    torch.nn.init.zeros_(model.conv1.weight)
    sched = torch.optim.lr_scheduler.StepLR(opt, 5, 0.5)
    result = train(model, opt, depth_step, data, max_steps=14, scheduler=sched, checkpoints=mgr)
    assert result.resumed_from == 9 and result.step == 14
    assert opt.param_groups[0]["lr"] == pytest.approx(3e-3 * 0.25)
    for a, b in zip(reference, model.parameters()):
        assert torch.equal(a, b)
    # already finished: resuming again does nothing
    again = train(model, opt, depth_step, data, max_steps=14, checkpoints=mgr)
    assert again.resumed_from == 14 and again.step == 14


def test_validation_and_images_go_to_tensorboard(mixed, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model, opt, data = _setup(mixed)
    seen = []

    def val_fn(net, step):
        assert not net.training
        seen.append(step)
        return {"abs_rel": 0.5 / step}

    def image_fn(net, batch):
        x = images_to_float(batch["image"][:1])
        return {"depth/pred": net(x)[0, 0].float().numpy(), "rgb/input": batch["image"][0].numpy()}

    mon = Monitor(tmp_path / "tb", progress=False)
    train(model, opt, depth_step, data, max_steps=7, val_fn=val_fn, val_every=3, image_fn=image_fn,
          image_every=5, monitor=mon, log_every=2)
    assert seen == [3, 6, 7]
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("val/abs_rel")] == [3, 6, 7]
    assert [e.step for e in acc.Scalars("train/loss")] == [2, 4, 6, 7]
    assert {"train/lr", "train/grad_norm", "train/images_per_s"} <= set(acc.Tags()["scalars"])
    assert set(acc.Tags()["images"]) == {"depth/pred", "rgb/input"}


def test_precision_resolution_on_cpu():
    p = resolve_precision("bf16", "cpu")
    assert p.dtype is None and not p.scaler.is_enabled() and p.name == "none"
    assert resolve_precision(None, "cpu").name == "none"
    with pytest.raises(ValueError, match="unknown mixed-precision mode"):
        resolve_precision("fp8", "cpu")


def test_describe_batch():
    batch = {"index": torch.tensor([3, 4]), "source": ["a", "b"]}
    assert describe_batch(batch) == "a#3, b#4"
    assert describe_batch({"x": torch.zeros(2)}) == "unknown source"
    many = {"index": torch.arange(10), "source": ["s"] * 10}
    assert describe_batch(many).endswith("(10 samples)")


def test_plain_progress_lines_show_the_loss_of_the_steps_since_the_last_line(mixed, caplog):
    """Issue 20 item 10: piped progress lines showed ``loss=nan`` before the first ``--log-every``
    line and then the same stale value until the next one."""
    model, opt, data = _setup(mixed)
    losses = []

    def step(m, batch):
        loss, logs = depth_step(m, batch)
        losses.append(float(loss))
        return loss, logs

    caplog.set_level(logging.INFO, logger="depth_training")
    monitor = Monitor(None, progress=False, plain_period_s=0.0)  # a progress line at every step
    train(model, opt, step, data, max_steps=12, log_every=100, monitor=monitor)
    lines = [r.getMessage() for r in caplog.records if " steps/s " in r.getMessage()]
    assert len(lines) == 12, lines
    shown = [float(line.split("loss=")[1].split()[0]) for line in lines]
    assert shown == pytest.approx(losses, rel=1e-3), (shown, losses)
