"""The shipped models (depth_nodes/models/: descriptors_xfeat.onnx, mono_depth_xfeat.onnx) on CPU.

Rows (``ratio = value / baseline``):

* ``shipped_descriptor_inference_640x480_{1,2}thr``: median ONNX Runtime time of one 640x480 frame
  through the shipped model; baseline: the from-scratch network of the reference run (mobile
  encoder, decoder 16 32 64 96 128, D = 16; freshly initialised, exported at the same size) in the
  same process and run. Target: ratio < 1 (the pretrained backbone is cheaper, not dearer). The
  shipped model outputs XFeat's stride-8 map (``output.stride``); the tracker's interpolation of it
  in its search windows counts as tracking, outside inference, in the rows below.
* ``shipped_tracker_outside_inference_<W>x<H>``: descriptor_tracker_node with the shipped model
  (``model_path`` empty), fed over DDS at 640x480 and 1280x720 (bench_nodes' harness: a reference
  of 8 keypoints from the benchmark frame, every output subscribed): median time outside
  inference; baseline: the median frame total; ratio = the fraction outside inference. Target < 0.15.
  Also its latency and sustained rate (info), as in bench_nodes.
  ``shipped_tracker_no_view_outside_inference_<W>x<H>``: the same with every output but the PCA colour
  view (``descriptors/image``, built only when subscribed) subscribed.
* ``shipped_mono_inference_{1,2}thr``: median ONNX Runtime time of the shipped relative-depth model at
  its input size (256x192: the node resizes a 640x480 camera frame to it); baseline: the training
  default depth network (ResNet-18 encoder, decoder 16 32 64 128 256; freshly initialised, exported
  at the same size). Target: ratio < 1.
* ``shipped_mono_outside_inference_640x480``: mono_depth_node with the shipped model (``model_path``
  empty, ``scale_mode`` auto = relative), fed 640x480 frames over DDS with its outputs
  (``depth/relative_inverse``, ``depth/colorized``) subscribed: median time outside inference as a
  fraction of the frame total. Target < 0.15. Also its latency and sustained rate (info).
"""
from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _row(name, value, unit, baseline, ratio, target):
    return {"name": name, "value": round(value, 3), "unit": unit, "baseline": round(baseline, 3),
            "ratio": round(ratio, 3), "target": target}


def _ort_ms(path: Path, threads: int, repeats: int, h: int = 480, w: int = 640) -> float:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
    sess.run(None, {name: x})
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def _scratch_model(out: Path) -> Path:
    import torch

    from depth_training.evaluation.export import export_descriptor_onnx
    from depth_training.models import descriptor

    torch.manual_seed(0)
    cfg = descriptor.check_descriptor_config({"encoder": "mobile", "descriptor_dim": 16,
                                              "decoder_channels": [16, 32, 64, 96, 128], "height": 480, "width": 640})
    return export_descriptor_onnx(descriptor.build_from_config(cfg), cfg, out / "scratch.onnx").onnx_path


def _reference(model: Path, out: Path, width: int, height: int) -> Path:
    """8 keypoints of the benchmark frame through the shipped model (``depth-train keypoints``)."""
    import cv2

    from depth_nodes.synthetic import default_scene
    from depth_training.cli import main as depth_train

    frame, ref = out / f"frame_{width}.png", out / f"ref_{width}.npz"
    cv2.imwrite(str(frame), default_scene(width, height, seed=0).left[..., ::-1])
    pixels = [f"{int(u * width)},{int(v * height)}" for v in (0.3, 0.7) for u in (0.15, 0.38, 0.62, 0.85)]
    with contextlib.redirect_stdout(io.StringIO()):  # its table of keypoints is not a benchmark row
        if depth_train(["keypoints", "--model", str(model), "--image", str(frame), "--pixels", *pixels,
                        "--out", str(ref)]) != 0:
            raise RuntimeError(f"depth-train keypoints failed for {model}")
    return ref


def _mono_rows(work: Path, repeats: int, frames: int, flood: float) -> list[dict]:
    import json

    from sensor_msgs.msg import Image

    from depth_nodes.shipped_models import shipped_model

    from . import bench_nodes

    model = shipped_model("mono_depth")
    if model is None:
        raise RuntimeError("no shipped mono depth model in depth_nodes/models")
    size = json.loads(model.with_suffix(".json").read_text())["input"]
    h, w = (int(n) for n in size["shape"][2:])
    base = bench_nodes.export_default_depth_model(work)
    bench_nodes.WIDTH, bench_nodes.HEIGHT = 640, 480
    bench_nodes._frame_msgs.scene = None
    rows = []
    for threads in (1, 2):
        ours, ref = _ort_ms(model, threads, repeats, h, w), _ort_ms(base, threads, repeats, h, w)
        rows.append(_row(f"shipped_mono_inference_{threads}thr", ours, "ms", ref, ours / ref, "< 1"))
    rows += bench_nodes.bench_node("shipped_mono", "mono_depth_node", [],
                                   [(Image, "depth/relative_inverse"), (Image, "depth/colorized")],
                                   "depth/relative_inverse", frames, flood, work)
    return rows


def run(quick: bool) -> list[dict]:
    from depth_nodes.shipped_models import shipped_model

    from . import bench_nodes

    model = shipped_model("descriptors")
    if model is None:
        raise RuntimeError("no shipped descriptor model in depth_nodes/models")
    repeats = 5 if quick else 20
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_shipped_") as tmp:
        work = Path(tmp)
        scratch = _scratch_model(work)
        for threads in (1, 2):
            ours, base = _ort_ms(model, threads, repeats), _ort_ms(scratch, threads, repeats)
            rows.append(_row(f"shipped_descriptor_inference_640x480_{threads}thr", ours, "ms", base, ours / base, "< 1"))
        from sensor_msgs.msg import Image, PointCloud2
        from visualization_msgs.msg import MarkerArray

        frames, flood = (8, 3.0) if quick else (30, 8.0)
        for width, height in ((640, 480), (1280, 720)):
            bench_nodes.WIDTH, bench_nodes.HEIGHT = width, height
            bench_nodes._frame_msgs.scene = None
            ref = _reference(model, work, width, height)
            node_rows = bench_nodes.bench_node(
                "shipped_tracker", "descriptor_tracker_node", ["-p", f"reference_path:={ref}"],
                [(PointCloud2, "keypoints"), (MarkerArray, "keypoints/markers"), (Image, "keypoints/image"),
                 (Image, "descriptors/image")], "keypoints", frames, flood, work)
            # the same without a subscriber to the PCA colour view (built only when subscribed)
            lean = bench_nodes.bench_node(
                "shipped_tracker_no_view", "descriptor_tracker_node", ["-p", f"reference_path:={ref}"],
                [(PointCloud2, "keypoints"), (MarkerArray, "keypoints/markers"), (Image, "keypoints/image")],
                "keypoints", frames, flood, work)
            node_rows += [r for r in lean if "outside_inference" in r["name"]]
            for r in node_rows:
                r["name"] = r["name"].replace("640x480", f"{width}x{height}")
            rows += node_rows
        rows += _mono_rows(work, repeats, frames, flood)
        bench_nodes.WIDTH, bench_nodes.HEIGHT = 640, 480
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv[1:]):
        print(f"{row['name']:<44} {row['value']:>10} {row['unit']:<3} baseline {row['baseline']:>10}  "
              f"ratio {row['ratio']:<7} target {row['target']}")
