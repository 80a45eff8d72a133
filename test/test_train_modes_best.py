"""model_best.pt: written at each new validation low, chosen by the right value, kept across resumes."""
import logging

import pytest
import torch

from depth_training.models import build_depth_net
from depth_training.models.artifact import load_depth_model
from depth_training.modes.best import BestModelKeeper
from depth_training.modes.setup import DepthOnly

CONFIG = {"encoder": "mobile", "num_scales": 1, "decoder_channels": [8, 16, 32, 64, 128], "height": 64,
          "width": 96, "min_depth": 0.1, "max_depth": 10.0, "output": "metric_depth", "mode": "supervised"}


def _net(seed):
    torch.manual_seed(seed)
    return DepthOnly(build_depth_net("mobile", 1, (8, 16, 32, 64, 128)))


def _replay(keeper, records):
    """Run the wrapped val_fn over ``records`` (step -> values), each with its own weights."""
    nets = {}
    for step, values in records:
        nets[step] = _net(step)
        keeper.wrap(lambda net, s, v=values: dict(v))(nets[step], step)
    return nets


def _same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_best_abs_rel_wins_and_is_written_with_its_step(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="depth_training")
    path = tmp_path / "model_best.pt"
    keeper = BestModelKeeper(path, "auto", CONFIG)
    records = [(0, {"loss": 0.9, "abs_rel": 0.5}), (10, {"loss": 0.5, "abs_rel": 0.2}),
               (20, {"loss": 0.3, "abs_rel": 0.25}), (30, {"loss": float("nan"), "abs_rel": float("nan")})]
    nets = _replay(keeper, records)
    net, cfg = load_depth_model(path)
    assert cfg["step"] == 10 and cfg["selected_by"] == "abs_rel" and cfg["val"]["abs_rel"] == 0.2
    assert _same_weights(net, nets[10].depth)  # not the later, lower-loss weights
    assert keeper.best == 0.2 and keeper.best_step == 10
    assert "best validation abs_rel so far (0.2 at step 10)" in caplog.text


def test_auto_without_depth_metrics_uses_the_loss(tmp_path):
    keeper = BestModelKeeper(tmp_path / "b.pt", "auto", CONFIG)
    _replay(keeper, [(0, {"loss": 0.9}), (5, {"loss": 0.4}), (9, {"loss": 0.6})])
    _, cfg = load_depth_model(tmp_path / "b.pt")
    assert cfg["step"] == 5 and cfg["selected_by"] == "loss"


def test_a_metric_the_validation_lacks_falls_back_to_the_loss_with_a_warning(tmp_path, caplog):
    keeper = BestModelKeeper(tmp_path / "b.pt", "rmse", CONFIG)
    _replay(keeper, [(0, {"loss": 0.9}), (5, {"loss": 0.4})])
    assert "no rmse" in caplog.text
    assert load_depth_model(tmp_path / "b.pt")[1]["step"] == 5


def test_a_resumed_run_only_replaces_the_best_with_a_better_one(tmp_path):
    path = tmp_path / "model_best.pt"
    first = BestModelKeeper(path, "abs_rel", CONFIG)
    _replay(first, [(0, {"loss": 1.0, "abs_rel": 0.5}), (10, {"loss": 0.5, "abs_rel": 0.2})])
    history = [{"step": 0, "loss": 1.0, "abs_rel": 0.5}, {"step": 10, "loss": 0.5, "abs_rel": 0.2}]
    resumed = BestModelKeeper(path, "abs_rel", CONFIG, history)
    assert resumed.best == 0.2 and resumed.best_step == 10
    _replay(resumed, [(20, {"loss": 0.4, "abs_rel": 0.3})])
    assert load_depth_model(path)[1]["step"] == 10
    _replay(resumed, [(30, {"loss": 0.4, "abs_rel": 0.1})])
    assert load_depth_model(path)[1]["step"] == 30
    # without a model_best.pt, the history says nothing about the weights: start afresh
    fresh = BestModelKeeper(tmp_path / "other.pt", "abs_rel", CONFIG, history)
    assert fresh.best is None


def test_none_is_not_a_keeper():
    with pytest.raises(ValueError, match="metric"):
        BestModelKeeper("x.pt", "none", CONFIG)
