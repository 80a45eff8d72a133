"""Inference backends (issue 10): ONNX Runtime and torch give the trained model's output, bad files get
clear errors, torch is imported only by the torch backend, `depth-nodes verify`, public-model descriptions."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from depth_nodes.backends.base import BackendError
from depth_nodes.backends.description import IMAGENET_MEAN, IMAGENET_STD, load_description
from depth_nodes.backends.inference import InferenceBackend, bind_description, load_backend
from depth_nodes.backends.torch_backend import export_pt2
from depth_nodes.cli import main as depth_nodes
from depth_nodes.pipelines.depth_io import postprocess_depth, preprocess
from depth_training.evaluation.export import export_onnx
from depth_training.models import DepthInference, build_depth_net
from depth_training.models.artifact import save_depth_model

torch.set_num_threads(2)
REPO = Path(__file__).resolve().parents[1]
CONFIG = {"encoder": "mobile", "num_scales": 4, "decoder_channels": [8, 16, 32, 64, 128], "height": 64,
          "width": 96, "min_depth": 0.2, "max_depth": 20.0, "output": "metric_depth", "mode": "stereo"}


class _Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A trained-looking tiny DepthNet as model.pt, its ONNX export (+ sidecar) and a torch.export .pt2."""
    d = tmp_path_factory.mktemp("backends")
    torch.manual_seed(0)
    net = build_depth_net("mobile", decoder_channels=(8, 16, 32, 64, 128))
    with torch.no_grad():  # non-trivial BatchNorm statistics
        net.train()
        net(torch.rand(2, 3, 64, 96))
    net.eval()
    save_depth_model(d / "model.pt", net, CONFIG)
    export_onnx(net, CONFIG, d / "depth.onnx", source=str(d / "model.pt"))
    module = DepthInference(net, "depth", CONFIG["min_depth"], CONFIG["max_depth"]).eval()
    export_pt2(module, (torch.rand(2, 3, 64, 96),), d / "depth.pt2")
    return {"dir": d, "module": module, "pt": d / "model.pt", "onnx": d / "depth.onnx", "pt2": d / "depth.pt2"}


def _reference(models, x):
    with torch.no_grad():
        return models["module"](torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("kind", ["onnx", "pt2", "pt"])
def test_each_backend_gives_the_trained_models_output(models, kind):
    backend = load_backend(models[kind])
    assert isinstance(backend, InferenceBackend)
    assert backend.name == ("onnxruntime" if kind == "onnx" else "torch")
    (inp,), (out,) = backend.inputs, backend.outputs
    assert inp.name == "image" and inp.shape[1:] == (3, 64, 96) and inp.dtype == "float32"
    assert out.name == "depth" and out.shape[1:] == (1, 64, 96)
    backend.warmup()
    rng = np.random.default_rng(0)
    for batch in (1, 3):  # 3: not the traced batch
        x = rng.random((batch, 3, 64, 96), dtype=np.float32)
        y = backend.infer({"image": x})["depth"]
        ref = _reference(models, x)
        assert y.shape == (batch, 1, 64, 96)
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
    backend.close()


def test_onnxruntime_reuses_its_output_buffer_and_stays_correct(models):
    backend = load_backend(models["onnx"])
    rng = np.random.default_rng(1)
    x1, x2 = (rng.random((1, 3, 64, 96), dtype=np.float32) for _ in range(2))
    y1 = backend.infer({"image": x1})["depth"]
    first = y1.copy()
    y2 = backend.infer({"image": x2})["depth"]
    y3 = backend.infer({"image": x1})["depth"]
    assert np.shares_memory(y2, y3)  # the second frame of a shape is written into the first one's buffer
    np.testing.assert_allclose(y3, first, rtol=1e-6)
    np.testing.assert_allclose(backend.infer({"image": x2})["depth"], _reference(models, x2), rtol=1e-4, atol=1e-5)


def test_camera_image_to_metric_depth_through_the_shared_pipeline(models):
    desc = load_description(models["onnx"])
    assert desc.output_kind == "metric_depth" and (desc.height, desc.width) == (64, 96)
    backend = load_backend(models["onnx"])
    inp, out = bind_description(backend, desc)
    img = np.random.default_rng(2).integers(0, 256, (120, 160, 3), dtype=np.uint8)  # 4:3 into a 3:2 network
    x, lb = preprocess(img, "bgr8", desc)
    assert (lb.resized_height, lb.resized_width) == (64, 85)
    depth = postprocess_depth(backend.infer({inp.name: x})[out.name], lb, desc)
    assert depth.shape == (120, 160) and depth.dtype == np.float32
    assert np.isfinite(depth).all() and 0.2 <= depth.min() and depth.max() <= 20.0
    # the network saw exactly RGB/255 in the letterbox window
    rgb = cv2.resize(img[:, :, ::-1], (85, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    np.testing.assert_allclose(x[0, :, :, lb.left:lb.left + 85].transpose(1, 2, 0), rgb, atol=1e-6)
    with pytest.raises(BackendError, match="has height 64, configured height is 128"):
        bind_description(backend, desc.with_size(128, 96))


def test_missing_unknown_and_corrupt_files_name_the_file(models, tmp_path):
    with pytest.raises(BackendError, match=r"nope\.onnx: no such model file"):
        load_backend(tmp_path / "nope.onnx")
    (tmp_path / "m.tflite").write_bytes(b"x")
    with pytest.raises(BackendError, match=r"m\.tflite: unknown model file type '\.tflite'"):
        load_backend(tmp_path / "m.tflite")
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(BackendError, match=r"bad\.onnx: not a loadable ONNX model"):
        load_backend(tmp_path / "bad.onnx")
    data = models["onnx"].read_bytes()
    (tmp_path / "trunc.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(BackendError, match=r"trunc\.onnx: not a loadable ONNX model"):
        load_backend(tmp_path / "trunc.onnx")
    data = models["pt2"].read_bytes()
    (tmp_path / "trunc.pt2").write_bytes(data[: len(data) // 2])
    with pytest.raises(BackendError, match=r"trunc\.pt2: not a torch\.export \.pt2 archive"):
        load_backend(tmp_path / "trunc.pt2")
    (tmp_path / "other.pt").write_bytes(b"")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(BackendError, match=r"other\.pt: not a depth model file"):
        load_backend(tmp_path / "other.pt")
    with pytest.raises(BackendError, match=r"backend must be one of"):
        load_backend(models["onnx"], backend="openvino")


def test_device_and_input_errors(models):
    import onnxruntime as ort

    if not any(p in ort.get_available_providers() for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")):
        with pytest.raises(BackendError, match=r"depth\.onnx: device 'cuda' requested but this onnxruntime has no GPU"):
            load_backend(models["onnx"], device="cuda")
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match=r"depth\.pt2: device 'cuda' requested but torch has no CUDA"):
            load_backend(models["pt2"], device="cuda")
    with pytest.raises(BackendError, match=r"TensorRT engines run on device 'cuda' only"):
        (models["dir"] / "x.engine").write_bytes(b"x")
        load_backend(models["dir"] / "x.engine", device="cpu")
    for kind in ("onnx", "pt2"):
        backend = load_backend(models[kind])
        with pytest.raises(BackendError, match=r"input 'image' has shape \(1, 3, 32, 96\), the network takes image"):
            backend.infer({"image": np.zeros((1, 3, 32, 96), np.float32)})
        with pytest.raises(BackendError, match=r"inputs \['img'\] given, the network takes \['image'\]"):
            backend.infer({"img": np.zeros((1, 3, 64, 96), np.float32)})
        with pytest.raises(BackendError, match=r"has dtype float64"):
            backend.infer({"image": np.zeros((1, 3, 64, 96))})


def _rewrite_zip(src, dst, replace):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, replace.get(item.filename.split("/", 1)[1], zin.read(item.filename)))


def test_pt2_that_would_run_code_is_refused(models, tmp_path):
    marker = tmp_path / "PWNED"
    import io

    buf = io.BytesIO()
    torch.save((_Payload(marker),), buf)
    evil = tmp_path / "evil.pt2"
    with zipfile.ZipFile(models["pt2"]) as z:
        sample = [n.split("/", 1)[1] for n in z.namelist() if "sample_inputs" in n]
    assert sample, "the .pt2 layout changed: no sample inputs member"
    _rewrite_zip(models["pt2"], evil, {sample[0]: buf.getvalue()})
    with pytest.raises(BackendError, match=r"evil\.pt2: .*sample_inputs.* is a pickle that needs more than tensors"):
        load_backend(evil)
    assert not marker.exists()
    # the guard is needed: torch.export.load itself runs the payload
    try:
        torch.export.load(str(evil))
    except Exception:
        pass
    assert marker.exists()
    marker.unlink()


def test_model_file_that_would_run_code_is_refused(models, tmp_path):
    marker = tmp_path / "PWNED"
    blob = torch.load(models["pt"], weights_only=True)
    blob["config"]["extra"] = _Payload(marker)
    torch.save(blob, tmp_path / "evil.pt")
    with pytest.raises(BackendError, match=r"evil\.pt: not a readable torch file without code"):
        load_backend(tmp_path / "evil.pt")
    assert not marker.exists()


def test_runtime_imports_no_torch_unless_the_torch_backend_is_used(models):
    # (the torch backend imports torch: test_each_backend_gives_the_trained_models_output[pt2])
    code = (
        "import sys, numpy as np\n"
        "from depth_nodes.cli import build_parser; build_parser()\n"
        "from depth_nodes.backends.inference import load_backend\n"
        "from depth_nodes.backends.description import load_description\n"
        "from depth_nodes.pipelines import depth_io\n"
        f"b = load_backend({str(models['onnx'])!r}); d = load_description({str(models['onnx'])!r})\n"
        "x, lb = depth_io.preprocess(np.zeros((48, 64, 3), np.uint8), 'rgb8', d)\n"
        "depth_io.postprocess_depth(b.infer({'image': x})['depth'], lb, d)\n"
        "bad = [m for m in ('torch', 'tensorrt', 'depth_training', 'rclpy') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_verify_passes_for_matching_files_and_fails_above_tolerance(models, tmp_path, capsys):
    report = tmp_path / "v.json"
    assert depth_nodes(["verify", str(models["onnx"]), str(models["pt2"]), "--samples", "2", "--repeat", "1",
                        "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "depth: max|A-B|" in out and "OK" in out and "ms median" in out
    rep = json.loads(report.read_text())
    assert rep["ok"] and rep["outputs"]["depth"]["max_rel"] < 1e-4 and rep["a"]["backend"] == "onnxruntime"
    assert rep["b"]["backend"] == "torch" and rep["a"]["median_latency_ms"] > 0
    # a slightly different network: every weight perturbed by 2 %
    blob = torch.load(models["pt"], weights_only=True)
    blob["state_dict"] = {k: v * 1.02 if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    torch.save(blob, tmp_path / "other.pt")
    assert depth_nodes(["verify", str(models["onnx"]), str(tmp_path / "other.pt"), "--samples", "2",
                        "--repeat", "1"]) == 1
    assert "ABOVE TOLERANCE" in capsys.readouterr().out
    # image and npz inputs go through the model description's preprocessing
    img = np.random.default_rng(4).integers(0, 256, (48, 72, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "frame.png"), img)
    np.savez(tmp_path / "frame.npz", image=img[:, :, ::-1].copy())
    assert depth_nodes(["verify", str(models["onnx"]), str(models["pt"]), "--inputs", str(tmp_path / "frame.png"),
                        str(tmp_path / "frame.npz"), "--repeat", "1"]) == 0
    assert "2 inputs of shape (1, 3, 64, 96)" in capsys.readouterr().out
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    assert depth_nodes(["verify", str(tmp_path / "junk.onnx"), str(models["pt2"])]) == 2
    assert "junk.onnx: not a loadable ONNX model" in capsys.readouterr().err


def _public_like_onnx(path, input_name, output_name, fixed_hw):
    """A graph with a public model's I/O signature: y = relu(mean_c(x)) + 0.5, shape (B, H, W)."""
    h, w = fixed_hw if fixed_hw else ("height", "width")
    x = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", 3, h, w])
    y = helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", h, w])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    nodes = [helper.make_node("ReduceMean", [input_name, "axes"], ["m"], keepdims=0),
             helper.make_node("Relu", ["m"], ["r"]), helper.make_node("Add", ["r", "half"], [output_name])]
    graph = helper.make_graph(nodes, "public_like", [x], [y], initializer=[axes, half])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9  # what onnxruntime 1.16+ reads
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("name,input_name,output_name,fixed", [
    ("midas_v21_small", "0", "1", (256, 256)),
    ("depth_anything_v2_small", "pixel_values", "predicted_depth", None)])
def test_public_model_descriptions_run_graphs_with_their_signatures(tmp_path, name, input_name, output_name, fixed):
    yaml_path = REPO / "config" / "models" / f"{name}.yaml"
    onnx_path = _public_like_onnx(tmp_path / f"{name}.onnx", input_name, output_name, fixed)
    desc = load_description(onnx_path, yaml_path)
    assert desc.output_kind == "relative_inverse_depth"
    # the release MiDaS ONNX normalises inside its graph (see test_public_models.py), Depth Anything does not
    assert (desc.mean, desc.std) == (((0.0,) * 3, (1.0,) * 3) if fixed else (IMAGENET_MEAN, IMAGENET_STD))
    backend = load_backend(onnx_path)
    inp, out = bind_description(backend, desc)
    assert (inp.name, out.name) == (input_name, output_name)
    img = np.random.default_rng(5).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    x, lb = preprocess(img, "rgb8", desc)
    if fixed:
        assert x.shape == (1, 3, 256, 256) and (lb.resized_height, lb.resized_width) == (256, 256)
    else:
        assert x.shape[2:] == (518, 686) and (lb.top, lb.left) == (0, 0)  # short side 518, multiples of 14
    y = backend.infer({inp.name: x})[out.name]
    np.testing.assert_allclose(y, np.maximum(x.mean(axis=1), 0) + 0.5, rtol=1e-5, atol=1e-6)
    depth = postprocess_depth(y, lb, desc)
    assert depth.shape == (480, 640) and np.isfinite(depth).all()
    # depth = 1 / inverse depth at camera resolution: check one pixel in the middle of the image
    yy = cv2.resize(y[0, lb.top:lb.top + lb.resized_height, lb.left:lb.left + lb.resized_width], (640, 480))
    np.testing.assert_allclose(depth, 1.0 / yy, rtol=1e-5)
    if fixed:  # a fixed 256x256 network does not take a dynamic description, and vice versa
        dyn = load_description(onnx_path, REPO / "config" / "models" / "depth_anything_v2_small.yaml")
        with pytest.raises(BackendError, match="dynamic size, network input .* is fixed"):
            bind_description(backend, dyn)
