"""The shipped mono depth model in mono_depth_node over DDS: metres from sparse depth, and relative alone.

A held-out simulated room (seed 1901: the model's training used 1000-1059, 2000-2059, 3000-3059 and
validated on 1900 and 2900) is rendered at the camera size 640x480, with its exact depth. The node
is started with no ``model_path`` (so it takes ``depth_nodes/models/mono_depth_xfeat.onnx``) and
``scale_mode: align``; a sparse depth image (the exact depth on a 16-pixel grid, 0.4 % of the
pixels, like a projected lidar; NaN elsewhere) comes on ``sparse_depth``. The published metric
depth must be within 10 % of the scene's depth (median relative error over every pixel with a
depth), cover it, and beat a vertical ramp aligned to the same sparse depths (0.13 here): the image
content, not the prior that depth grows with height in the image, has to carry it. Without ``scale_mode`` the same node publishes relative inverse depth only.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image

from depth_nodes.geometry.camera import PinholeCamera
from depth_nodes.image_encodings import decode_image
from depth_nodes.pipelines.mono_scale import fit_inverse_depth
from depth_nodes.ros.harness import NodeProcess, RosIO
from depth_nodes.shipped_models import shipped_model
from node_inputs import image_msg, info_msg, new_stamp, publish_until

REPO = Path(__file__).resolve().parents[1]
GRID = 16


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    """(rgb (480, 640, 3) uint8, exact depth (480, 640) metres, PinholeCamera) of a held-out room."""
    from depth_training.cli import main as depth_train
    from depth_training.evaluation.selection import FrameSelection
    from depth_training.evaluation.sources import load_sim_groundtruth_frames

    bag = tmp_path_factory.mktemp("shipped_mono") / "room1901"
    assert depth_train(["sim", "--out", str(bag), "--frames", "2", "--rate", "2", "--width", "640", "--height", "480",
                        "--seed", "1901", "--variety", "room", "--no-stereo", "--quiet"]) == 0
    frames = load_sim_groundtruth_frames(bag.with_suffix(".groundtruth.npz"), FrameSelection(stop=1))
    k = np.load(bag.with_suffix(".groundtruth.npz"), allow_pickle=False)["K_color"]
    return frames.rgb[0], frames.depth[0].astype(np.float32), PinholeCamera(640, 480, k)


def _sparse(depth: np.ndarray) -> np.ndarray:
    out = np.full_like(depth, np.nan)
    out[GRID // 2::GRID, GRID // 2::GRID] = depth[GRID // 2::GRID, GRID // 2::GRID]
    return out


def test_shipped_model_gives_metres_aligned_to_sparse_depth_over_dds(room, tmp_path):
    assert shipped_model("mono_depth") is not None, "the repository ships depth_nodes/models/mono_depth_xfeat.onnx"
    rgb, depth, cam = room
    node = NodeProcess("mono_depth_node", "--params-file", str(REPO / "config/mono_depth.yaml"),
                       "-p", "scale_mode:=align", "-r", "__ns:=/shipped_mono", log_path=tmp_path / "node.log")
    io = RosIO("shipped_mono_io")
    try:
        pub_img = io.publisher(Image, "/shipped_mono/image")
        pub_info = io.publisher(CameraInfo, "/shipped_mono/camera_info")
        pub_sparse = io.publisher(Image, "/shipped_mono/sparse_depth")
        io.collect(Image, "/shipped_mono/depth/image")
        assert node.wait_for_log("using the shipped mono_depth model", 120), node.log()
        assert node.wait_for_log("scale_mode align", 120), node.log()
        stamp = new_stamp()

        def publish():
            pub_info.publish(info_msg(cam, stamp))
            pub_sparse.publish(image_msg(_sparse(depth), "32FC1", stamp))
            pub_img.publish(image_msg(rgb, "rgb8", stamp))

        msg = publish_until(io, publish, "/shipped_mono/depth/image", stamp, timeout=120)
    finally:
        io.close()
        node.stop()
    pred = decode_image(msg)
    assert pred.shape == depth.shape
    valid = np.isfinite(depth) & (depth > 0)
    both = valid & np.isfinite(pred) & (pred > 0)
    assert both.sum() >= 0.95 * valid.sum(), f"depth on {both.sum() / valid.sum():.2%} of the scene's pixels"
    rel = np.abs(pred[both] - depth[both]) / depth[both]
    print(f"shipped mono model, room 1901 aligned to {np.isfinite(_sparse(depth)).sum()} sparse depths: "
          f"median relative error {np.median(rel):.3f}, AbsRel {rel.mean():.3f}, "
          f"delta1 {np.mean(np.maximum(pred[both] / depth[both], depth[both] / pred[both]) < 1.25):.3f}",
          file=sys.stderr)
    assert np.median(rel) < 0.10, f"median relative error {np.median(rel):.3f}"
    ramp = np.repeat(np.linspace(0.0, 1.0, depth.shape[0], dtype=np.float32)[:, None], depth.shape[1], axis=1)
    fit = fit_inverse_depth(ramp, _sparse(depth))
    ramp_depth = 1.0 / np.maximum(fit.scale * ramp + fit.shift, 1e-6)
    ramp_rel = np.abs(ramp_depth[both] - depth[both]) / depth[both]
    assert np.median(rel) < 0.8 * np.median(ramp_rel), (np.median(rel), np.median(ramp_rel))
    # not the sparse depth's own values spread around: the scene's depth range is reproduced
    assert np.percentile(pred[both], 90) / np.percentile(pred[both], 10) > 0.7 * (
        np.percentile(depth[both], 90) / np.percentile(depth[both], 10))


def test_shipped_model_without_sparse_depth_publishes_relative_inverse_depth(room, tmp_path):
    rgb, depth, cam = room
    node = NodeProcess("mono_depth_node", "-r", "__ns:=/shipped_rel", log_path=tmp_path / "node.log")
    io = RosIO("shipped_rel_io")
    try:
        pub_img = io.publisher(Image, "/shipped_rel/image")
        pub_info = io.publisher(CameraInfo, "/shipped_rel/camera_info")
        io.collect(Image, "/shipped_rel/depth/relative_inverse")
        assert node.wait_for_log("scale_mode relative (auto)", 120), node.log()
        stamp = new_stamp()

        def publish():
            pub_info.publish(info_msg(cam, stamp))
            pub_img.publish(image_msg(rgb, "rgb8", stamp))

        msg = publish_until(io, publish, "/shipped_rel/depth/relative_inverse", stamp, timeout=120)
        assert "/shipped_rel/depth/image" not in [name for name, _ in io.node.get_topic_names_and_types()]
    finally:
        io.close()
        node.stop()
    inv = decode_image(msg)
    valid = np.isfinite(depth) & (depth > 0)
    # relative inverse depth: larger where nearer (rank correlation with 1/depth over the scene)
    a = np.argsort(np.argsort(inv[valid]))
    b = np.argsort(np.argsort(1.0 / depth[valid]))
    assert np.corrcoef(a, b)[0, 1] > 0.5
