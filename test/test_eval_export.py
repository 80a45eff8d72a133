"""``depth-train export``: ONNX with fixed names and a dynamic batch, a sidecar for the node, verified."""
import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from depth_training.cli import main as depth_train
from depth_training.evaluation import export as export_module
from depth_training.evaluation.export import ExportVerificationError, export_onnx
from depth_training.models import DepthInference, build_depth_net
from depth_training.models.artifact import load_depth_model, save_depth_model

torch.set_num_threads(2)

CONFIG = {"encoder": "mobile", "num_scales": 4, "decoder_channels": [8, 16, 32, 64, 128], "height": 64,
          "width": 96, "min_depth": 0.2, "max_depth": 20.0, "output": "metric_depth", "mode": "stereo"}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.manual_seed(0)
    net = build_depth_net("mobile", decoder_channels=(8, 16, 32, 64, 128))
    with torch.no_grad():  # non-trivial BatchNorm statistics, so the eval-mode graph is what gets exported
        net.train()
        net(torch.rand(2, 3, 64, 96))
    path = tmp_path_factory.mktemp("export") / "model.pt"
    save_depth_model(path, net, CONFIG)
    return path


def _torch_reference(model_path, output, x):
    net, cfg = load_depth_model(model_path)
    with torch.no_grad():
        return DepthInference(net, output, cfg["min_depth"], cfg["max_depth"]).eval()(torch.from_numpy(x)).numpy()


def test_default_export_is_depth_at_the_training_size_with_a_dynamic_batch(model_path, tmp_path, capsys):
    out = tmp_path / "onnx" / "depth.onnx"
    assert depth_train(["export", "--model", str(model_path), "--onnx", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "max |diff|" in stdout and str(out) in stdout
    model = onnx.load(str(out))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "image" and inp.type == "tensor(float)" and inp.shape[1:] == [3, 64, 96]
    assert isinstance(inp.shape[0], str)  # symbolic batch
    assert outp.name == "depth" and outp.shape[1:] == [1, 64, 96]
    x = np.random.default_rng(0).random((3, 3, 64, 96), dtype=np.float32)  # batch 3: not the traced batch
    (y,) = session.run(None, {"image": x})
    ref = _torch_reference(model_path, "depth", x)
    assert y.shape == (3, 1, 64, 96)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
    assert 0.2 <= y.min() and y.max() <= 20.0

    side = json.loads((tmp_path / "onnx" / "depth.json").read_text())
    assert side["format"] == "depth_nodes.onnx_depth/1" and side["onnx"] == "depth.onnx"
    assert side["onnx_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert (side["height"], side["width"], side["min_depth"], side["max_depth"]) == (64, 96, 0.2, 20.0)
    assert side["input"]["name"] == "image" and side["input"]["range"] == [0.0, 1.0]
    assert side["output"]["name"] == "depth" and side["model_output"] == "metric_depth" and side["depth_is_metric"]
    assert side["model"] == CONFIG and side["opset"] >= 17
    assert side["verification"]["max_rel_diff"] <= 1e-4


def test_disparity_output_at_another_size(model_path, tmp_path, capsys):
    out = tmp_path / "disp.onnx"
    assert depth_train(["export", "--model", str(model_path), "--onnx", str(out), "--height", "96", "--width", "128",
                        "--output", "disparity"]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [3, 96, 128]
    assert [o.name for o in session.get_outputs()] == ["disparity"]
    x = np.random.default_rng(1).random((1, 3, 96, 128), dtype=np.float32)
    (y,) = session.run(None, {"image": x})
    np.testing.assert_allclose(y, _torch_reference(model_path, "disparity", x), rtol=1e-4, atol=1e-6)
    assert 0.0 < y.min() and y.max() < 1.0
    side = json.loads(out.with_suffix(".json").read_text())
    assert (side["height"], side["width"]) == (96, 128) and side["output"]["kind"] == "disparity"
    assert not side["depth_is_metric"] and (side["model"]["height"], side["model"]["width"]) == (64, 96)


def test_bad_requests_exit_2_and_write_nothing(model_path, tmp_path, capsys):
    rc = depth_train(["export", "--model", str(model_path), "--onnx", str(tmp_path / "a.onnx"), "--height", "50"])
    assert rc == 2 and "a.onnx: height/width: must be positive multiples of 32, got 50x96" in capsys.readouterr().err
    rc = depth_train(["export", "--model", str(model_path), "--onnx", str(tmp_path / "a.txt")])
    assert rc == 2 and "a.txt: the output must end in .onnx" in capsys.readouterr().err
    rc = depth_train(["export", "--model", str(tmp_path / "none.pt"), "--onnx", str(tmp_path / "a.onnx")])
    assert rc == 2 and f"{tmp_path / 'none.pt'}: no such model file" in capsys.readouterr().err
    rc = depth_train(["export", "--model", str(model_path), "--onnx", str(tmp_path / "a.onnx"), "--opset", "13"])
    assert rc == 2 and "opset: must be >= 17" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_verification_discards_the_export(model_path, tmp_path, monkeypatch):
    net, cfg = load_depth_model(model_path)
    monkeypatch.setattr(export_module, "verify_onnx", lambda *a, **k: (0.5, 0.01))
    with pytest.raises(ExportVerificationError, match=r"relative 0\.01 > 0\.0001"):
        export_onnx(net, cfg, tmp_path / "bad.onnx")
    assert list(tmp_path.iterdir()) == []
