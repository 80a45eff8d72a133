"""Issue 8 item 7: no file the training package loads can run code.

Each loader is handed a crafted file whose unpickling would create a marker file (``os.system``
via ``__reduce__``); the loader must refuse it with a message naming the file, and the marker
must not exist afterwards.
"""
import json
import logging
import os

import numpy as np
import pytest
import torch

from depth_training.cli import main as depth_train
from depth_training.engine.checkpoint import CheckpointManager, sha256_file, training_state
from depth_training.models import build_depth_net
from depth_training.models.artifact import ModelFileError, load_depth_model, save_depth_model

CONFIG = {"encoder": "mobile", "num_scales": 4, "decoder_channels": [8, 16, 32, 64, 128],
          "height": 64, "width": 96, "min_depth": 0.1, "max_depth": 10.0, "output": "metric_depth",
          "mode": "stereo"}


class _Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture()
def marker(tmp_path):
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "loading the crafted file executed code"


def _net():
    torch.manual_seed(0)
    return build_depth_net("mobile", decoder_channels=(8, 16, 32, 64, 128))


def _crafted_model(path, marker):
    torch.save({"format": "depth_nodes.depth_model/1", "config": {**CONFIG, "extra": _Payload(marker)},
                "state_dict": _net().state_dict()}, path)


def test_the_payload_really_runs_when_unpickled_unsafely(tmp_path):
    # Guards the other tests: the crafted file is live, so "marker absent" means "refused".
    m = tmp_path / "m"
    _crafted_model(tmp_path / "evil.pt", m)
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert m.exists()


def test_model_file_with_code_is_refused_naming_the_file(tmp_path, marker):
    _crafted_model(tmp_path / "evil.pt", marker)
    with pytest.raises(ModelFileError, match=r"evil\.pt: refused: .*posix\.system.*could run code"):
        load_depth_model(tmp_path / "evil.pt")


def test_model_file_with_numpy_values_in_its_config_still_loads(tmp_path):
    # Provenance often carries numpy scalars; they are stored as plain values (weights_only-safe).
    save_depth_model(tmp_path / "model.pt", _net(), {**CONFIG, "max_depth": np.float32(10.0),
                                                     "step": np.int64(12), "metric": np.float64(0.25)})
    _, cfg = load_depth_model(tmp_path / "model.pt")
    assert cfg["step"] == 12 and type(cfg["metric"]) is float and cfg["max_depth"] == 10.0


@pytest.mark.parametrize("command", ["export", "eval"])
def test_cli_refuses_a_crafted_model_in_one_line(tmp_path, marker, capsys, command):
    _crafted_model(tmp_path / "evil.pt", marker)
    if command == "export":
        argv = ["export", "--model", str(tmp_path / "evil.pt"), "--onnx", str(tmp_path / "x.onnx")]
    else:
        np.savez(tmp_path / "gt.npz", rgb=np.zeros((2, 64, 96, 3), np.uint8), depth=np.ones((2, 64, 96), np.float32))
        argv = ["eval", "--model", str(tmp_path / "evil.pt"), "--npz", str(tmp_path / "gt.npz")]
    assert depth_train(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "evil.pt: refused" in err
    assert not (tmp_path / "x.onnx").exists()


def test_checkpoint_with_code_is_skipped_for_the_older_good_one(tmp_path, marker, caplog):
    mgr = CheckpointManager(tmp_path / "ckpt", keep_last=5)
    net = _net()
    opt = torch.optim.Adam(net.parameters())
    net(torch.rand(1, 3, 64, 96))[0].mean().backward()
    opt.step()
    mgr.save(training_state(1, net, opt, config={"model": CONFIG}))
    evil = mgr.path_for(2)
    torch.save({"format": 1, "step": 2, "model": net.state_dict(), "rng": _Payload(marker)}, evil)
    # A sidecar that matches, as an attacker who replaced both files would write it.
    evil.with_suffix(".json").write_text(json.dumps({"step": 2, "epoch": 0, "bytes": evil.stat().st_size,
                                                     "sha256": sha256_file(evil)}))
    (tmp_path / "ckpt" / "latest").write_text(evil.name + "\n")
    with caplog.at_level(logging.WARNING, logger="depth_training.checkpoint"):
        state = mgr.load_latest()
    assert state is not None and state["step"] == 1
    assert "optimizer" in state and state["optimizer"]["state"]  # optimizer state survives weights_only
    assert any(evil.name in r.getMessage() and "refused" in r.getMessage() for r in caplog.records)
    with pytest.raises(ModelFileError, match="ckpt-00000002.pt: refused"):
        load_depth_model(evil)


def _object_array(marker):
    return np.array([_Payload(marker)], dtype=object)


def test_groundtruth_npz_with_pickled_objects_is_refused(tmp_path, marker):
    from depth_training.sim.groundtruth import GroundTruthError, load_groundtruth

    np.savez(tmp_path / "x.groundtruth.npz", format_version=np.array(1), stamps_ns=_object_array(marker))
    with pytest.raises(GroundTruthError, match=r"x\.groundtruth\.npz"):
        load_groundtruth(tmp_path / "x.groundtruth.npz")


def test_eval_npz_with_pickled_objects_is_refused(tmp_path, marker):
    from depth_training.evaluation.selection import FrameSelection
    from depth_training.evaluation.sources import EvalSourceError, load_generic_npz_frames

    np.savez(tmp_path / "frames.npz", rgb=_object_array(marker), depth=np.ones((1, 4, 4), np.float32))
    with pytest.raises(EvalSourceError, match=r"frames\.npz: not a readable \.npz"):
        load_generic_npz_frames(tmp_path / "frames.npz", FrameSelection())


def test_frame_cache_with_pickled_objects_is_refused(tmp_path, marker):
    from depth_training.data.cache import CacheError, open_cache

    d = tmp_path / "cache"
    d.mkdir()
    (d / "meta.json").write_text(json.dumps({"format": 1, "count": 1, "fields": {"rgb": {"dtype": "object", "shape": []}}}))
    np.save(d / "rgb.npy", _object_array(marker), allow_pickle=True)
    with pytest.raises(CacheError, match=r"rgb\.npy: unreadable"):
        open_cache(d)
