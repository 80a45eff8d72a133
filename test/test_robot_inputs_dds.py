"""Robot inputs over DDS, against real node processes: compressed transports, transport mismatch
lines and lens distortion.

* A JPEG ``CompressedImage`` camera and a ``compressedDepth`` sparse depth (as ROS 2's
  image_transport plugins publish them) drive ``mono_depth_node`` in ``scale_mode: align``; its
  depth is within 2 % of a second node fed the same frame raw.
* A CompressedImage remapped onto an Image input (and the reverse) gives one line naming the
  parameter that fixes it; a silent camera_info is named too.
* A camera_info with plumb_bob distortion: the mono node's output is rectified (a checkerboard's
  corners lie on straight lines within 0.5 px while the input's bend by 1.6 px) and its
  camera_info has ``D = 0`` and the rectified ``K``; with ``distortion: refuse`` the frame is
  refused in one line.
The tracker and stereo nodes: ``test_robot_inputs_tracker_stereo.py``.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from depth_nodes.compressed_depth import encode_compressed_depth
from depth_nodes.geometry.camera import PinholeCamera
from depth_nodes.image_encodings import decode_image
from depth_nodes.known_models import write_affine_depth_model
from depth_nodes.ros.harness import NodeProcess, RosIO, stamp_of
from node_inputs import header, image_msg, info_msg, new_stamp, output_for, publish_until

REPO = Path(__file__).resolve().parents[1]
W, H = 160, 120


def _smooth_image() -> np.ndarray:
    """Smooth colour (as a camera sees most of a scene): JPEG moves red by at most 3 levels here."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float32)
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = (160 + 85 * (u / W) * (0.8 + 0.2 * np.sin(v / 19.0))).astype(np.uint8)
    img[..., 1] = (110 + 30 * (v / H)).astype(np.uint8)
    img[..., 2] = (90 + 20 * np.cos(u / 40.0)).astype(np.uint8)
    return img


def _jpeg(img_rgb: np.ndarray, stamp: int) -> CompressedImage:
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(img_rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return CompressedImage(header=header(stamp), format="rgb8; jpeg compressed bgr8", data=data.tobytes())


def _compressed_depth(depth: np.ndarray, stamp: int) -> CompressedImage:
    fmt, data = encode_compressed_depth(depth, "32FC1")
    return CompressedImage(header=header(stamp), format=fmt, data=data)


def _node(ns: str, model: Path, tmp_path: Path, *params: str) -> NodeProcess:
    args = ["--params-file", str(REPO / "config/mono_depth.yaml"), "-p", f"model_path:={model}",
            "-p", "scale_mode:=align", "-p", "max_depth:=1000.0"]
    for p in params:
        args += ["-p", p]
    return NodeProcess("mono_depth_node", *args, "-r", f"__ns:=/{ns}", log_path=tmp_path / f"{ns}.log")


@pytest.fixture(scope="module")
def inverse_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return write_affine_depth_model(d / "inverse.onnx", H, W, a=0.1, b=0.8, kind="relative_inverse_depth")[0]


def test_jpeg_camera_and_compressed_depth_drive_the_mono_node_like_raw_images(inverse_model, tmp_path):
    raw = _node("raw", inverse_model, tmp_path)
    cmp_ = _node("cmp", inverse_model, tmp_path, "image_transport:=compressed", "depth_transport:=compressedDepth")
    io = RosIO("compressed_test_io")
    try:
        pubs = {"raw_image": io.publisher(Image, "/raw/image"), "raw_sparse": io.publisher(Image, "/raw/sparse_depth"),
                "jpeg": io.publisher(CompressedImage, "/cmp/image/compressed"),
                "cdepth": io.publisher(CompressedImage, "/cmp/sparse_depth/compressedDepth")}
        io.collect(Image, "/raw/depth/image")
        io.collect(Image, "/cmp/depth/image")
        for node in (raw, cmp_):
            assert node.wait_for_log("scale_mode align", 30), node.log()
        img = _smooth_image()
        x = 0.1 + 0.8 * img[..., 0].astype(np.float32) / 255     # the network's inverse depth
        truth = (1.0 / (2.5 * x + 0.05)).astype(np.float32)       # 1/z = 2.5 x + 0.05: 0.44 .. 0.65 m
        sparse = np.full((H, W), np.nan, np.float32)
        idx = np.random.default_rng(0).choice(H * W, 400, replace=False)
        sparse.flat[idx] = truth.flat[idx]
        stamp = new_stamp()

        def publish():
            pubs["raw_sparse"].publish(image_msg(sparse, "32FC1", stamp))
            pubs["raw_image"].publish(image_msg(img, "rgb8", stamp))
            pubs["cdepth"].publish(_compressed_depth(sparse, stamp))
            pubs["jpeg"].publish(_jpeg(img, stamp))

        d_raw = decode_image(publish_until(io, publish, "/raw/depth/image", stamp, timeout=40))
        d_cmp = decode_image(publish_until(io, publish, "/cmp/depth/image", stamp, timeout=40))
        np.testing.assert_allclose(d_raw, truth, rtol=1e-4)
        assert np.isfinite(d_cmp).all()
        rel = np.abs(d_cmp - d_raw) / d_raw
        print(f"compressed vs raw depth: max {100 * rel.max():.2f} %, mean {100 * rel.mean():.3f} %")
        assert rel.max() <= 0.02, rel.max()
        assert rel.mean() > 1e-5  # it did go through JPEG and the depth quantisation
        # the QoS follower names the compressed topic once it has seen its publisher (a periodic check)
        assert cmp_.wait_for_log("image/compressed", 10), cmp_.log()
    finally:
        io.close()
        assert raw.stop() == 0, raw.log()
        assert cmp_.stop() == 0, cmp_.log()


def test_a_mistyped_transport_is_named_with_the_parameter_that_fixes_it(inverse_model, tmp_path):
    mono = _node("mm", inverse_model, tmp_path, "depth_transport:=compressedDepth", "silent_input_s:=1.0",
                 "report_period_s:=5.0")
    io = RosIO("mismatch_test_io")
    try:
        # remapped straight onto the compressed topic, and a raw sparse depth where compressedDepth is expected
        jpeg_pub = io.publisher(CompressedImage, "/mm/image/compressed")
        raw_sparse_pub = io.publisher(Image, "/mm/sparse_depth")
        img = _smooth_image()
        for _ in range(40):
            stamp = new_stamp()
            jpeg_pub.publish(_jpeg(img, stamp))
            raw_sparse_pub.publish(image_msg(np.ones((H, W), np.float32), "32FC1", stamp))
            if mono.wait_for_log("set -p depth_transport:=raw", 0.1) and "image_transport:=compressed" in mono.log():
                break
        log = mono.log()
        assert ("nothing arrives on /mm/image (sensor_msgs/msg/Image, image_transport: raw) but /mm/image/compressed "
                "carries sensor_msgs/msg/CompressedImage: set -p image_transport:=compressed") in log, log
        assert "set -p depth_transport:=raw" in log and "/mm/sparse_depth carries sensor_msgs/msg/Image" in log, log
        assert "nothing received on /mm/camera_info" in log and "no publisher on this topic" in log, log
        # throttled: one line per report_period_s (5 s) per topic, not one per check
        assert log.count("set -p image_transport:=compressed") <= 2, log
    finally:
        io.close()
        assert mono.stop() == 0, mono.log()


# ---------------------------------------------------------------- distortion
K = np.array([[130.0, 0, 83.0], [0, 120.0, 57.0], [0, 0, 1]])   # fx != fy, off-centre
D = np.array([-0.45, 0.15, 0.001, -0.002, 0.0])                   # plumb_bob barrel distortion
SQUARE = 14.0


def _board(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A soft-edged checkerboard in rectified pixels (inner corners at (20 + i*14, 18 + j*14))."""
    s = np.sin(np.pi * (x - 20) / SQUARE) * np.sin(np.pi * (y - 18) / SQUARE)
    inside = (x > 20 - SQUARE) & (x < 20 + 9 * SQUARE) & (y > 18 - SQUARE) & (y < 18 + 6 * SQUARE)
    return np.where(inside, 0.5 + 0.5 * np.tanh(3.0 * s), 0.5)


def _distorted_board() -> np.ndarray:
    """What the lens shows: each raw pixel sees the board at its undistorted (rectified) position."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    pts = np.stack([u.ravel(), v.ravel()], 1)[:, None, :]
    rect = cv2.undistortPoints(pts, K, D, P=K).reshape(H, W, 2)
    grey = _board(rect[..., 0], rect[..., 1])
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = img[..., 1] = img[..., 2] = np.clip(np.rint(255 * grey), 0, 255).astype(np.uint8)
    return img


def _line_residual(corners: np.ndarray, cols: int, rows: int) -> float:
    """Largest distance (px) of a corner from the line fitted to its row or column of the board."""
    grid = corners.reshape(rows, cols, 2)
    worst = 0.0
    for line in list(grid) + list(grid.transpose(1, 0, 2)):
        c = line - line.mean(0)
        normal = np.linalg.svd(c)[2][1]
        worst = max(worst, float(np.abs(c @ normal).max()))
    return worst


def _corners(grey: np.ndarray) -> np.ndarray:
    found, corners = cv2.findChessboardCornersSB(grey, (9, 6), flags=cv2.CALIB_CB_EXHAUSTIVE | cv2.CALIB_CB_ACCURACY)
    assert found
    return corners.reshape(-1, 2)


def _distorted_info(stamp: int) -> CameraInfo:
    msg = info_msg(PinholeCamera(W, H, K), stamp)
    msg.d = D.tolist()
    return msg


def test_a_distorted_camera_info_gives_rectified_output_or_the_refusal_line(tmp_path):
    model, _ = write_affine_depth_model(tmp_path / "metric.onnx", H, W, a=1.0, b=4.0, kind="metric_depth")
    args = ["--params-file", str(REPO / "config/mono_depth.yaml"), "-p", f"model_path:={model}"]
    rectifying = NodeProcess("mono_depth_node", *args, "-r", "__ns:=/lens", log_path=tmp_path / "lens.log")
    refusing = NodeProcess("mono_depth_node", *args, "-p", "distortion:=refuse", "-r", "__ns:=/refuse",
                           log_path=tmp_path / "refuse.log")
    io = RosIO("distortion_test_io")
    try:
        pubs = {ns: (io.publisher(Image, f"/{ns}/image"), io.publisher(CameraInfo, f"/{ns}/camera_info"))
                for ns in ("lens", "refuse")}
        io.collect(Image, "/lens/depth/image")
        io.collect(CameraInfo, "/lens/depth/camera_info")
        io.collect(Image, "/refuse/depth/image")
        for node in (rectifying, refusing):
            assert node.wait_for_log("scale_mode metric", 30), node.log()
        raw = _distorted_board()
        raw_residual = _line_residual(_corners(raw[..., 0]), 9, 6)
        assert raw_residual > 1.0, raw_residual  # the lens bends the board's lines (1.6 px)
        stamp = new_stamp()

        def publish(ns):
            pubs[ns][1].publish(_distorted_info(stamp))
            io.wait_for(lambda: False, 0.05)
            pubs[ns][0].publish(image_msg(raw, "rgb8", stamp))

        # (depth/camera_info is published only for frames processed with a camera_info: the
        # frame's depth image, published just before it, is the last one with its stamp)
        publish_until(io, lambda: publish("lens"), "/lens/depth/camera_info", stamp, timeout=40)
        depth = decode_image([m for m in io.messages("/lens/depth/image") if stamp_of(m) == stamp][-1])
        grey = np.clip(np.rint((depth - 1.0) / 4.0 * 255), 0, 255).astype(np.uint8)  # depth = 1 + 4 R
        residual = _line_residual(_corners(grey), 9, 6)
        print(f"checkerboard line residual: rectified output {residual:.3f} px, distorted input {raw_residual:.3f} px")
        assert residual < 0.5, (residual, raw_residual)
        info = output_for(io, "/lens/depth/camera_info", stamp)
        assert list(info.d) == [0.0] * 5 and np.allclose(np.array(info.k).reshape(3, 3), K)
        assert "lens distortion" not in rectifying.log()
        for _ in range(40):
            publish("refuse")
            if refusing.wait_for_log("distortion is refuse", 0.2):
                break
        log = refusing.log()
        assert "camera_info has lens distortion (plumb_bob, D = [-0.45, 0.15, 0.001, -0.002, 0.0])" in log, log
        assert "set -p distortion:=rectify" in log
        # once the node has the camera_info, no frame gets through
        stamp = new_stamp()
        for _ in range(5):
            publish("refuse")
        io.wait_for(lambda: False, 1.5)
        assert not [m for m in io.messages("/refuse/depth/image") if stamp_of(m) == stamp]
    finally:
        io.close()
        assert rectifying.stop() == 0, rectifying.log()
        assert refusing.stop() == 0, refusing.log()
