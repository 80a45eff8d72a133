"""mono_depth_node and descriptor_tracker_node at 640x480 on CPU: latency, sustained rate, time outside inference.

Both nodes run as real processes fed over DDS (loopback) from this one, with the training code's
default architectures exported to ONNX (``resnet18`` encoder, 192x256 input; depth: metric
``DepthNet``, descriptors: ``DescriptorNet`` with D = 16). The weights are freshly initialised:
speed depends on the architecture, not on what it learnt.

Rows per node (``<node>`` = ``mono`` or ``tracker``):

* ``<node>_latency_640x480``: median time from publishing a frame here to receiving the node's
  output (``depth/image`` / ``keypoints``), one frame in flight (the next frame is sent once every
  output of the last one has arrived); baseline: the median inference
  time the node reports for the same frames (its debug log), ratio = latency / inference (info).
* ``<node>_outside_inference_640x480``: median of the node's per-frame ``total - inference``
  (receive -> last publish, from its debug log); baseline: median ``total``; ratio = the fraction
  of the frame's time spent outside inference. Target: ratio < 0.15.
* ``<node>_max_rate_640x480``: outputs per second while frames are published faster than the node
  can process them for a few seconds (the latest-frame worker drops the rest); baseline:
  ``1 / median inference`` (what the bare network would sustain), ratio = rate / that (info).

The mono node runs with every output subscribed (depth, cloud, colour preview, camera_info); the
tracker with ``keypoints``, markers and both overlay images, and no depth, following 8 keypoints
taken from the benchmark's frame (so they are tracked in their search windows).
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", "43")

WIDTH, HEIGHT = 640, 480
REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_shm.xml"))
_TOTAL = re.compile(r"frame (\d+)\.(\d+): .*inference ([\d.]+) ms.* total ([\d.]+) ms")


def _row(name, value, unit, baseline, ratio, target):
    return {"name": name, "value": round(value, 3), "unit": unit, "baseline": round(baseline, 3),
            "ratio": round(ratio, 3), "target": target}


def export_default_depth_model(out: Path) -> Path:
    """The training default depth network (ResNet-18, 192x256, untrained weights, seed 0) as ONNX."""
    import torch

    from depth_training.evaluation.export import export_onnx
    from depth_training.models import artifact

    torch.manual_seed(0)
    cfg = artifact.check_model_config({"encoder": "resnet18", "num_scales": 4,
                                       "decoder_channels": [16, 32, 64, 128, 256], "height": 192, "width": 256,
                                       "min_depth": 0.1, "max_depth": 10.0, "output": "metric_depth"})
    return export_onnx(artifact.build_from_config(cfg), cfg, out / "depth.onnx").onnx_path


def export_default_models(out: Path) -> dict[str, Path]:
    """The training defaults exported to ONNX (untrained weights), plus a reference file for the tracker."""
    from depth_nodes.keypoints.reference import KeypointReference, save_reference
    from depth_training.evaluation.export import export_descriptor_onnx
    from depth_training.models import descriptor

    depth = export_default_depth_model(out)
    dcfg = descriptor.check_descriptor_config({"encoder": "resnet18", "descriptor_dim": 16,
                                               "decoder_channels": [16, 32, 64, 128, 256], "height": 192,
                                               "width": 256})
    dnet = descriptor.build_from_config(dcfg)
    model_file = out / "desc_model.pt"
    descriptor.save_descriptor_model(model_file, dnet, dcfg)
    desc = export_descriptor_onnx(dnet, dcfg, out / "desc.onnx", source=str(model_file))
    sha = desc.sidecar["source_model_sha256"]
    # 8 keypoints of the benchmark's own frame (as `depth-train keypoints` would pick from the scene),
    # so the tracker follows them in its search windows, as it does on a robot
    from depth_nodes.nodes.model_loading import load_model
    from depth_nodes.pipelines.depth_io import crop_output, preprocess
    from depth_nodes.synthetic import default_scene

    backend, ddesc = load_model(str(desc.onnx_path), "", "auto", "cpu")
    x, lb = preprocess(default_scene(WIDTH, HEIGHT, seed=0).left, "rgb8", ddesc)
    features = crop_output(backend.infer({ddesc.input_name: x})[ddesc.output_name], lb)
    backend.close()
    uv = np.array([(u, v) for v in (48, 144) for u in (32, 96, 160, 224)])
    ref = save_reference(out / "ref.npz", KeypointReference(
        descriptors=np.ascontiguousarray(features[:, uv[:, 1], uv[:, 0]].T, np.float32),
        pixels=((uv + 0.5) / lb.scale_x - 0.5).astype(np.float32), names=[f"k{i}" for i in range(8)],
        model_sha256=sha, input_size=(192, 256), descriptor_dim=16, image_size=(HEIGHT, WIDTH)))
    return {"depth": depth, "desc": desc.onnx_path, "ref": ref}


def _stamp(msg) -> int:
    from depth_nodes.ros.harness import stamp_of

    if hasattr(msg, "markers"):  # MarkerArray (when not collected raw): the stamp of its markers
        return stamp_of(msg.markers[-1]) if msg.markers else -1
    return stamp_of(msg)


def _frame_msgs(stamp_ns: int):
    from depth_nodes.synthetic import default_scene
    from depth_nodes.ros.harness import camera_info_msg
    from depth_nodes.ros.image_conversion import numpy_to_image
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    scene = _frame_msgs.scene = getattr(_frame_msgs, "scene", None) or default_scene(WIDTH, HEIGHT, seed=0)
    header = Header(stamp=Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id="camera_optical_frame")
    return numpy_to_image(scene.left, "rgb8", header), camera_info_msg(scene.left_camera, header)


def bench_node(label: str, executable: str, params: list[str], outputs: list[tuple], main_output: str,
               frames: int, flood_s: float, workdir: Path, raw: bool = True) -> list[dict]:
    from sensor_msgs.msg import CameraInfo, Image

    from depth_nodes.ros.harness import NodeProcess, RosIO, stamp_of

    ns = f"/bench_{label}"
    node = NodeProcess(executable, *params, "-r", f"__ns:={ns}", "--log-level", f"{ns[1:]}.{executable}:=debug",
                       log_path=workdir / f"{label}.log")
    io = RosIO(f"bench_{label}_io")
    try:
        pub_img = io.publisher(Image, f"{ns}/image", depth=1)
        pub_info = io.publisher(CameraInfo, f"{ns}/camera_info", depth=1)
        for typ, topic in outputs:  # raw: the harness does not decode (and keep) ~7 MB a frame on the shared cores
            io.collect(typ, f"{ns}/{topic}", depth=2, raw=raw)
        out_topic = f"{ns}/{main_output}"
        if not node.wait_for_log("[INFO]", 60):
            raise RuntimeError(f"{executable} did not start: {node.log()[-2000:]}")
        stamp = 1_700_000_000_000_000_000
        latencies = []
        for i in range(frames + 3):  # the first 3 warm up (discovery, allocations)
            stamp += 33_000_000
            img, info = _frame_msgs(stamp)
            deadline = time.monotonic() + 30
            t0 = time.perf_counter()
            got = False
            while time.monotonic() < deadline and not got:
                pub_info.publish(info)
                t0 = time.perf_counter()
                pub_img.publish(img)
                got = io.wait_for(lambda: any(stamp_of(m) == stamp for m in io.received[out_topic]), 2.0, 0.001)
            if not got:
                raise RuntimeError(f"{executable}: no {main_output} output: {node.log()[-2000:]}")
            if i >= 3:
                latencies.append(time.perf_counter() - t0)
            # one frame in flight: the next goes out once the node has published all of this one's outputs
            io.wait_for(lambda: all(any(_stamp(m) == stamp for m in io.received[f"{ns}/{t}"]) for _, t in outputs),
                        2.0, 0.001)
        first_timed, last_timed = stamp - (frames - 1) * 33_000_000, stamp
        stats = [(float(m.group(3)), float(m.group(4))) for m in _TOTAL.finditer(node.log())
                 if first_timed <= int(m.group(1)) * 10**9 + int(m.group(2)) <= last_timed]
        if not stats:
            raise RuntimeError(f"{executable}: no per-frame timing in its debug log")
        inference = float(np.median([s[0] for s in stats]))
        total = float(np.median([s[1] for s in stats]))
        outside = float(np.median([s[1] - s[0] for s in stats]))
        # sustained rate: publish as fast as we can build messages, count outputs
        received_before = len(io.messages(out_topic))
        t_end = time.monotonic() + flood_s
        t_start = time.monotonic()
        while time.monotonic() < t_end:
            stamp += 33_000_000
            img, info = _frame_msgs(stamp)
            pub_info.publish(info)
            pub_img.publish(img)
            time.sleep(0.005)
        elapsed = time.monotonic() - t_start
        time.sleep(0.5)
        rate = (len(io.messages(out_topic)) - received_before) / elapsed
    finally:
        io.close()
        node.stop()
    lat = float(np.median(latencies)) * 1e3
    return [
        _row(f"{label}_latency_640x480", lat, "ms", inference, lat / inference, "info"),
        _row(f"{label}_outside_inference_640x480", outside, "ms", total, outside / total, "< 0.15"),
        _row(f"{label}_max_rate_640x480", rate, "Hz", 1e3 / inference, rate * inference / 1e3, "info"),
    ]


def run(quick: bool) -> list[dict]:
    from geometry_msgs.msg import Point  # noqa: F401  (fail early without ROS messages)
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2
    from visualization_msgs.msg import MarkerArray

    frames, flood = (8, 3.0) if quick else (30, 8.0)
    with tempfile.TemporaryDirectory(prefix="bench_nodes_") as tmp:
        work = Path(tmp)
        models = export_default_models(work)
        rows = bench_node("mono", "mono_depth_node", ["-p", f"model_path:={models['depth']}"],
                          [(Image, "depth/image"), (PointCloud2, "depth/points"), (Image, "depth/colorized"),
                           (CameraInfo, "depth/camera_info")], "depth/image", frames, flood, work)
        rows += bench_node("tracker", "descriptor_tracker_node",
                           ["-p", f"model_path:={models['desc']}", "-p", f"reference_path:={models['ref']}"],
                           [(PointCloud2, "keypoints"), (MarkerArray, "keypoints/markers"),
                            (Image, "keypoints/image"), (Image, "descriptors/image")], "keypoints", frames, flood, work)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv[1:]):
        print(f"{row['name']:<34} {row['value']:>10} {row['unit']:<3} baseline {row['baseline']:>10}  "
              f"ratio {row['ratio']:<7} target {row['target']}")
