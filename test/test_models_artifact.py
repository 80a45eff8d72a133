"""The model file written after training round-trips and bad files get clear errors."""
import pytest
import torch

from depth_training.engine.checkpoint import CheckpointManager, training_state
from depth_training.models import build_depth_net, build_pose_net
from depth_training.models.artifact import ModelFileError, load_depth_model, save_depth_model

CONFIG = {"encoder": "mobile", "num_scales": 4, "decoder_channels": [8, 16, 32, 64, 128],
          "height": 64, "width": 96, "min_depth": 0.1, "max_depth": 10.0, "output": "metric_depth",
          "mode": "stereo"}


def _net():
    torch.manual_seed(0)
    return build_depth_net("mobile", decoder_channels=(8, 16, 32, 64, 128))


def test_round_trip_gives_the_same_predictions(tmp_path):
    net = _net().eval()
    save_depth_model(tmp_path / "model.pt", net, CONFIG)
    loaded, cfg = load_depth_model(tmp_path / "model.pt")
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(net(x)[0], loaded(x)[0])
    assert cfg["output"] == "metric_depth" and cfg["mode"] == "stereo"
    assert not loaded.training


def test_training_checkpoint_with_wrapped_depth_net_loads(tmp_path):
    wrapper = torch.nn.ModuleDict({"depth": _net(), "pose": build_pose_net("mobile")})
    mgr = CheckpointManager(tmp_path / "ckpt")
    path = mgr.save(training_state(7, wrapper, config={"model": CONFIG}))
    loaded, _ = load_depth_model(path)
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(wrapper["depth"].eval()(x)[0], loaded(x)[0])


def test_bad_files_name_the_file_and_the_problem(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_depth_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelFileError, match="junk.pt: not a readable torch file"):
        load_depth_model(tmp_path / "junk.pt")
    with pytest.raises(ModelFileError, match="multiple of 32"):
        save_depth_model(tmp_path / "m.pt", _net(), {**CONFIG, "height": 50})
    other = {**CONFIG, "encoder": "resnet18"}
    torch.save({"format": "depth_nodes.depth_model/1", "config": other, "state_dict": _net().state_dict()},
               tmp_path / "mismatch.pt")
    with pytest.raises(ModelFileError, match="mismatch.pt: weights do not match a resnet18"):
        load_depth_model(tmp_path / "mismatch.pt")
