"""The shipped descriptor model in descriptor_tracker_node over DDS, on a real photograph.

A keypoint reference file is made from a real Kinect frame of ``../shared/real`` with the shipped
ONNX (``depth-train keypoints --model depth_nodes/models/descriptors_xfeat.onnx``); the node,
started with no ``model_path`` (so it takes the shipped model), then sees that frame and the frame
shifted by a known offset, at the camera's 640x480, and must find the keypoints where they are.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_nodes.geometry.camera import PinholeCamera
from depth_nodes.ros.harness import NodeProcess, RosIO, stamp_of
from depth_nodes.shipped_models import shipped_model
from node_inputs import image_msg, info_msg, new_stamp, publish_until
from real_data import real_path

REPO = Path(__file__).resolve().parents[1]
SHIFT = (14, -9)  # pixels the second frame is moved by (u, v)


def _corners(grey: np.ndarray, count: int, margin: int = 40) -> np.ndarray:
    kps = sorted(cv2.FastFeatureDetector_create(30, True).detect(grey, None), key=lambda k: -k.response)
    chosen: list[tuple[int, int]] = []
    h, w = grey.shape
    for k in kps:
        u, v = int(round(k.pt[0])), int(round(k.pt[1]))
        if margin <= u < w - margin and margin <= v < h - margin and all(abs(u - a) + abs(v - b) > 40 for a, b in chosen):
            chosen.append((u, v))
        if len(chosen) == count:
            break
    return np.array(chosen, np.float32)


def _points(msg):
    rec = np.frombuffer(bytes(msg.data), np.float32).reshape(msg.width, 7)
    return rec[:, 3:5], rec[:, 5]


def test_shipped_model_tracks_real_keypoints_over_dds(tmp_path):
    model = shipped_model("descriptors")
    assert model is not None, "the repository ships depth_nodes/models/descriptors_xfeat.onnx (+ .json)"
    frame_path = real_path("rgbd", "kinect_5_frames_with_poses", "1_color.png")
    rgb = cv2.imread(str(frame_path))[..., ::-1].copy()
    h, w = rgb.shape[:2]
    pix = _corners(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 8)
    assert len(pix) == 8
    ref = tmp_path / "real_ref.npz"
    r = subprocess.run([str(Path(sys.executable).parent / "depth-train"), "keypoints", "--model", str(model),
                        "--image", str(frame_path), "--pixels", *[f"{u:g},{v:g}" for u, v in pix],
                        "--out", str(ref)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    shifted = cv2.warpAffine(rgb, np.float32([[1, 0, SHIFT[0]], [0, 1, SHIFT[1]]]), (w, h),
                             borderMode=cv2.BORDER_REFLECT_101)
    cam = PinholeCamera(w, h, np.array([[518.0, 0, 325.5], [0, 519.0, 253.5], [0, 0, 1]]))
    node = NodeProcess("descriptor_tracker_node", "--params-file", str(REPO / "config/descriptor_tracker.yaml"),
                       "-p", f"reference_path:={ref}", "-p", "use_depth:=false", "-p", "search_radius:=24",
                       "-p", "lost_threshold:=1.5", "-r", "__ns:=/shipped", log_path=tmp_path / "node.log")
    io = RosIO("shipped_tracker_io")
    try:
        pub_img = io.publisher(Image, "/shipped/image")
        pub_info = io.publisher(CameraInfo, "/shipped/camera_info")
        io.collect(PointCloud2, "/shipped/keypoints")
        assert node.wait_for_log("using the shipped descriptors model", 120), node.log()
        assert node.wait_for_log("tracking 8 keypoints", 120), node.log()
        found = []
        for img in (rgb, shifted):
            stamp = new_stamp()

            def publish(img=img, stamp=stamp):
                pub_info.publish(info_msg(cam, stamp))
                pub_img.publish(image_msg(img, "rgb8", stamp))

            msg = publish_until(io, publish, "/shipped/keypoints", stamp, timeout=120)
            assert stamp_of(msg) == stamp
            found.append(_points(msg))
        (uv0, s0), (uv1, s1) = found
        err0 = np.linalg.norm(uv0 - pix, axis=1)
        err1 = np.linalg.norm(uv1 - (pix + np.float32(SHIFT)), axis=1)
        assert np.nanmedian(err0) <= 1.0 and np.mean(err0 <= 2) >= 0.75, (uv0, pix)
        assert np.nanmedian(err1) <= 3.0 and np.mean(err1 <= 4) >= 0.75, (uv1, pix + np.float32(SHIFT))
    finally:
        io.close()
        assert node.stop() == 0, node.log()
