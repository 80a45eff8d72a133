"""A missing optional package (onnxruntime, torch, tensorrt, rosbags) is one line naming the package
to install, with exit status 2 and no traceback, in the nodes and in ``depth-nodes``.

Each import is made to fail for real in a subprocess: a module of that name first on PYTHONPATH
raises ``ModuleNotFoundError`` exactly as an absent package does.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from depth_nodes.keypoints.reference import KeypointReference, save_reference
from depth_nodes.known_models import write_affine_depth_model, write_colour_descriptor_model
from depth_nodes.optional_deps import missing_package_message

BIN = Path(sys.executable).parent


def _without(tmp_path: Path, *modules: str) -> dict:
    site = tmp_path / "blocked"
    site.mkdir(exist_ok=True)
    for m in modules:
        (site / f"{m}.py").write_text(f"raise ModuleNotFoundError(\"No module named '{m}'\", name={m!r})\n")
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(site)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))


def _one_line(run, *needles):
    assert run.returncode == 2, (run.returncode, run.stdout, run.stderr)
    assert "Traceback" not in run.stderr + run.stdout, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def test_message_only_for_known_optional_packages():
    assert "pip install onnxruntime" in missing_package_message(ModuleNotFoundError("x", name="onnxruntime.capi"))
    assert missing_package_message(ModuleNotFoundError("x", name="depth_nodes.typo")) is None
    assert missing_package_message(ImportError("x", name="torch")) is None  # a broken install is not "missing"


@pytest.mark.parametrize("node", ["mono_depth_node", "descriptor_tracker_node"])
def test_node_without_onnxruntime(tmp_path, node):
    if node == "mono_depth_node":
        model, _ = write_affine_depth_model(tmp_path / "m.onnx", 32, 32)
        args = ["-p", f"model_path:={model}"]
    else:  # a descriptor model and a reference file made for it: only the runtime is missing
        model, side = write_colour_descriptor_model(tmp_path / "m.onnx", 32, 32)
        ref = save_reference(tmp_path / "ref.npz", KeypointReference(
            descriptors=np.eye(3, dtype=np.float32), pixels=np.zeros((3, 2), np.float32), names=["a", "b", "c"],
            model_sha256=json.loads(side.read_text())["source_model_sha256"], input_size=(32, 32), descriptor_dim=3,
            image_size=(32, 32)))
        args = ["-p", f"model_path:={model}", "-p", f"reference_path:={ref}"]
    run = subprocess.run([str(BIN / node), "--ros-args", *args], env=_without(tmp_path, "onnxruntime"),
                         capture_output=True, text=True, timeout=120)
    _one_line(run, f"{node}: model_path: {model}: the onnxruntime backend needs the Python package "
                   "'onnxruntime'", "pip install onnxruntime")


def test_node_without_torch(tmp_path):
    model = tmp_path / "m.pt2"
    model.write_bytes(b"not read: torch is missing first")
    write_affine_depth_model(tmp_path / "m.onnx", 32, 32)
    run = subprocess.run([str(BIN / "mono_depth_node"), "--ros-args", "-p", f"model_path:={model}",
                          "-p", f"description_path:={tmp_path / 'm.json'}"], env=_without(tmp_path, "torch"),
                         capture_output=True, text=True, timeout=120)
    _one_line(run, "mono_depth_node: model_path:", "'torch'", "pip install torch")


def test_node_without_tensorrt(tmp_path):
    write_affine_depth_model(tmp_path / "m.onnx", 32, 32)
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"not read: tensorrt is missing first")
    run = subprocess.run([str(BIN / "mono_depth_node"), "--ros-args", "-p", f"model_path:={engine}",
                          "-p", f"description_path:={tmp_path / 'm.json'}", "-p", "device:=cuda"],
                         env=_without(tmp_path, "tensorrt"), capture_output=True, text=True, timeout=120)
    _one_line(run, "mono_depth_node: model_path:", "tensorrt", "pip install tensorrt")


def test_depth_nodes_tools_without_their_packages(tmp_path):
    model, _ = write_affine_depth_model(tmp_path / "m.onnx", 32, 32)
    run = subprocess.run([str(BIN / "depth-nodes"), "verify", str(model), str(model)],
                         env=_without(tmp_path, "onnxruntime"), capture_output=True, text=True, timeout=120)
    _one_line(run, "depth-nodes verify: error:", "'onnxruntime'", "pip install onnxruntime")
    bag = tmp_path / "bag"
    bag.mkdir()
    run = subprocess.run([str(BIN / "depth-nodes"), "play", str(bag)], env=_without(tmp_path, "rosbags"),
                         capture_output=True, text=True, timeout=120)
    _one_line(run, "depth-nodes play: error:", "'rosbags'", "pip install rosbags")
