"""``depth-train supervised`` on simulator recordings: MiDaS SSI and Eigen SILog both learn; two
bags mixed with weights; all-invalid depth batches and a NaN loss are skipped without losing the run."""
import logging

import numpy as np
import pytest
import torch

from depth_training.cli import main as depth_train
from depth_training.data.cached_dataset import CachedDataset
from depth_training.engine.loop import SkipBatch
from depth_training.models.artifact import load_depth_model
from depth_training.modes import supervised
from depth_training.modes.supervised import supervised_loss
from train_modes_helpers import FAST, first_and_last, sim_bags, write_tiny_bag


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    return sim_bags(tmp_path_factory)


def test_ssi_on_two_mixed_bags_learns_relative_disparity(bags, tmp_path, caplog):
    a, b = bags
    out = tmp_path / "ssi"
    caplog.set_level(logging.INFO, logger="depth_training")
    rc = depth_train(["supervised", "--dataset", f"{a}:0.75", "--dataset", f"{b}:0.25", "--out", str(out),
                      "--loss", "ssi", "--steps", "60", "--val-every", "60", "--ckpt-every", "30", *FAST])
    assert rc == 0
    before, after = first_and_last(out)
    # held-out tails of both bags: 8 frames each (the last 20 % of 40)
    assert before["depth_images"] == after["depth_images"] == 16
    # the untrained network scores like a constant disparity; SSI training must beat it clearly
    assert after["abs_rel"] < 0.75 * before["abs_rel"], (before, after)
    assert after["loss"] < 0.7 * before["loss"], (before, after)
    assert "training mix: a 75% (32 samples), b 25% (32 samples)" in caplog.text

    net, cfg = load_depth_model(out / "model.pt")
    assert cfg["output"] == "relative_disparity" and cfg["mode"] == "supervised" and cfg["loss"] == "ssi"
    assert cfg["num_scales"] == 1 and (cfg["height"], cfg["width"]) == (64, 96) and cfg["step"] == 60
    assert cfg["bags"] == [str(a), str(b)] and cfg["weights"] == [0.75, 0.25]
    # a training checkpoint loads as a model too, with the same weights
    ckpt_net, ckpt_cfg = load_depth_model(out / "checkpoints" / "ckpt-00000060.pt")
    assert ckpt_cfg["output"] == "relative_disparity"
    for (k, v), (k2, v2) in zip(net.state_dict().items(), ckpt_net.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k


def test_silog_learns_metric_depth_and_shows_it_in_tensorboard(bags, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    a, _ = bags
    out = tmp_path / "silog"
    assert depth_train(["supervised", "--dataset", str(a), "--out", str(out), "--loss", "silog", "--steps", "40",
                        "--val-every", "20", "--ckpt-every", "40", *FAST, "--image-every", "20"]) == 0
    before, after = first_and_last(out)
    # metric depth, no alignment: the untrained net says ~0.2 m, the table is 0.2-0.6 m away
    assert before["abs_rel"] > 0.3
    assert after["abs_rel"] < 0.5 * before["abs_rel"], (before, after)
    _, cfg = load_depth_model(out / "model.pt")
    assert cfg["output"] == "metric_depth" and cfg["loss"] == "silog"

    events = EventAccumulator(str(out / "tb"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    assert {"sample/image", "sample/depth"} <= set(events.Tags()["images"])
    assert [e.step for e in events.Images("sample/depth")] == [20, 40]
    assert [e.step for e in events.Scalars("val/abs_rel")] == [0, 20, 40]
    assert events.Scalars("val/abs_rel")[-1].value == pytest.approx(after["abs_rel"])


def test_val_bag_holds_out_a_whole_recording(bags, tmp_path, caplog):
    a, b = bags
    out = tmp_path / "valbag"
    caplog.set_level(logging.INFO, logger="depth_training")
    assert depth_train(["supervised", "--dataset", str(a), "--val-bag", str(b), "--out", str(out), *FAST,
                        "--steps", "2", "--ckpt-every", "0"]) == 0
    assert "40 frames, training on all of them (40 samples)" in caplog.text  # no tail held out of the training bag
    assert f"{b}: 40 frames, all for validation" in caplog.text
    before, after = first_and_last(out)
    assert before["depth_images"] == after["depth_images"] == 40


def test_invalid_depth_is_masked_and_an_all_invalid_batch_is_skipped():
    disp = torch.full((2, 1, 8, 8), 0.5, requires_grad=True)
    depth = torch.full((2, 1, 8, 8), float("nan"))
    with pytest.raises(SkipBatch, match="no valid depth"):
        supervised_loss(disp, depth, "ssi")
    depth[0, 0, :4] = 0.0  # 16UC1 "no reading" decoded as... NaN, but a 0 must be masked too
    depth[1, 0, :4] = torch.linspace(0.5, 2.0, 32).reshape(4, 8)
    for kind in ("ssi", "silog"):
        value, valid = supervised_loss(disp, depth, kind, min_depth=0.1, max_depth=10.0)
        assert torch.isfinite(value) and valid.item() == pytest.approx(32 / 128)
        (grad,) = torch.autograd.grad(value, disp)
        assert torch.isfinite(grad).all() and grad[0].abs().sum() == 0 and grad[1, 0, 4:].abs().sum() == 0


# the engine steps the LR scheduler on skipped batches too (step = batches consumed), so a run that
# starts with a skipped batch makes torch warn about the order of scheduler and optimizer steps
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before:UserWarning")
def test_all_invalid_depth_batches_are_skipped_and_logged(tmp_path, caplog):
    bag = write_tiny_bag(tmp_path / "holes", frames=12, invalid_depth_frames=tuple(range(0, 9, 2)))
    out = tmp_path / "run"
    caplog.set_level(logging.INFO, logger="depth_training")
    assert depth_train(["supervised", "--dataset", str(bag), "--out", str(out), *FAST, "--steps", "8",
                        "--batch-size", "1", "--val-every", "0", "--ckpt-every", "0"]) == 0
    skipped = [r.getMessage() for r in caplog.records if "skipped batch" in r.getMessage()]
    assert skipped and all("no valid depth pixel" in m for m in skipped)
    assert all("holes#" in m for m in skipped)  # names the recording and the sample
    _, cfg = load_depth_model(out / "model.pt")
    assert cfg["step"] == 8 and cfg["skipped_batches"] == len(skipped) < 8


def test_a_nan_loss_is_skipped_and_the_run_finishes(tmp_path, caplog, monkeypatch):
    bag = write_tiny_bag(tmp_path / "tiny", frames=12)
    calls = []

    def nan_on_third_call(*args, **kwargs):
        value, valid = supervised_loss(*args, **kwargs)
        if torch.is_grad_enabled():  # a training step, not validation
            calls.append(1)
        return (value * float("nan") if len(calls) == 3 else value), valid

    monkeypatch.setattr(supervised, "supervised_loss", nan_on_third_call)
    caplog.set_level(logging.INFO, logger="depth_training")
    out = tmp_path / "run"
    assert depth_train(["supervised", "--dataset", str(bag), "--out", str(out), *FAST, "--steps", "6",
                        "--batch-size", "2", "--val-every", "0", "--ckpt-every", "0"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("step 3: skipped batch" in m and "non-finite loss" in m for m in warnings), warnings
    net, cfg = load_depth_model(out / "model.pt")
    assert cfg["step"] == 6 and cfg["skipped_batches"] == 1
    assert all(torch.isfinite(v).all() for v in net.state_dict().values())


def test_supervised_needs_registered_depth(tmp_path, capsys):
    bag = write_tiny_bag(tmp_path / "nodepth", frames=4, depth=False)
    rc = depth_train(["supervised", "--dataset", str(bag), "--out", str(tmp_path / "run"), *FAST])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert str(bag) in err and "/camera/depth/image_rect_raw" in err and "not in the bag" in err
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.parametrize("mode", ["supervised", "descriptors"])
def test_depth_topic_that_is_the_colour_topic_is_one_line(tmp_path, capsys, mode):
    """--topics depth=<the colour topic>: one line naming the topic and both roles, exit 2 (was the
    bag reader's ValueError with a traceback)."""
    bag = write_tiny_bag(tmp_path / "rgbd", frames=4)
    rc = depth_train([mode, "--dataset", str(bag), "--topics", "depth=/camera/color/image_raw",
                      "--out", str(tmp_path / "run"), *FAST])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert str(bag) in err and "/camera/color/image_raw is given as both the image and the depth topic" in err
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_cached_depth_keeps_no_reading_as_nan(bags, tmp_path):
    """The supervision the loss sees: 16UC1 zeros from the sensor arrive as NaN at training size."""
    a, _ = bags
    out = tmp_path / "decode"
    assert depth_train(["supervised", "--dataset", str(a), "--out", str(out), "--steps", "1", "--val-fraction", "0",
                        "--ckpt-every", "0", *FAST]) == 0
    (cache,) = (out / "cache").iterdir()
    ds = CachedDataset(cache)
    depth = np.stack([ds[i]["depth"] for i in range(len(ds))])
    assert depth.shape == (40, 64, 96)
    assert np.isnan(depth).any() and not (depth == 0).any()
    assert np.nanmin(depth) > 0.15 and np.nanmax(depth) < 1.0


def test_a_fresh_mobile_network_matches_its_batchnorm_running_statistics():
    """Validation of short runs relies on eval mode (running statistics, which start at mean 0 and
    variance 1) matching train mode: every BatchNorm input of a fresh network, depthwise layers
    included, must have a variance near 1 (it was ~1e-3 after depthwise convolutions with
    PyTorch's group-blind fan_out, and eval-mode depth saturated for the first ~100 steps)."""
    from depth_training.models import build_depth_net

    torch.manual_seed(0)
    net = build_depth_net("mobile", 4, (8, 16, 32, 64, 128)).train()
    variances = {}

    def record(name):
        return lambda module, inputs, output: variances.__setitem__(name, float(inputs[0].var((0, 2, 3)).median()))

    for name, m in net.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.register_forward_hook(record(name))
    smooth = torch.nn.functional.interpolate(torch.rand(4, 3, 8, 12), size=(64, 96), mode="bilinear")
    with torch.no_grad():
        net(smooth)
    assert len(variances) > 40 and any(".block.1.1" in k for k in variances)  # depthwise BatchNorms included
    assert all(0.05 < v < 20 for v in variances.values()), variances

