"""Robot inputs of the tracker and stereo nodes over DDS, against real node processes.

* The tracker takes PNG-compressed images and compressedDepth depth, and finds keypoints at their
  rectified pixels when the camera_info has lens distortion (3D from the rectified ``K``).
* The stereo node takes compressed pairs (the same depth as raw, PNG being lossless) and says
  once per camera that a distorted calibration is matched as given.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from depth_nodes.geometry.camera import PinholeCamera
from depth_nodes.image_encodings import decode_image
from depth_nodes.keypoints.reference import KeypointReference, save_reference
from depth_nodes.known_models import write_colour_descriptor_model
from depth_nodes.ros.harness import NodeProcess, RosIO, stamp_of
from node_inputs import header, image_msg, info_msg, new_stamp, publish_until
from test_robot_inputs_dds import D, H, K, W, _compressed_depth, _distorted_info

REPO = Path(__file__).resolve().parents[1]


def _png(msg: Image) -> CompressedImage:
    ok, data = cv2.imencode(".png", np.ascontiguousarray(decode_image(msg)[..., ::-1]))
    return CompressedImage(header=msg.header, format="rgb8; png compressed bgr8", data=data.tobytes())


def test_stereo_node_takes_compressed_pairs_and_says_once_that_distorted_inputs_are_matched_as_given(tmp_path):
    from depth_nodes.ros.harness import stereo_messages
    from depth_nodes.synthetic import default_scene

    scene = default_scene(160, 120, seed=3)
    args = ["--params-file", str(REPO / "config/stereo_depth.yaml"), "-p", "disparity_range:=32"]
    raw = NodeProcess("stereo_depth_node", *args, "-r", "__ns:=/sraw", log_path=tmp_path / "sraw.log")
    cmp_ = NodeProcess("stereo_depth_node", *args, "-p", "image_transport:=compressed", "-r", "__ns:=/scmp",
                       log_path=tmp_path / "scmp.log")
    io = RosIO("stereo_compressed_io")
    try:
        pubs = {}
        for ns, kind in (("sraw", Image), ("scmp", CompressedImage)):
            suffix = "/compressed" if kind is CompressedImage else ""
            pubs[ns] = [io.publisher(kind, f"/{ns}/left/image_rect{suffix}"), io.publisher(CameraInfo, f"/{ns}/left/camera_info"),
                        io.publisher(kind, f"/{ns}/right/image_rect{suffix}"), io.publisher(CameraInfo, f"/{ns}/right/camera_info")]
            io.collect(Image, f"/{ns}/depth/image")
        for node in (raw, cmp_):
            assert node.wait_for_log("inputs:", 30), node.log()
        assert "/scmp/left/image_rect/compressed" in cmp_.log()
        stamp = new_stamp()
        msgs = list(stereo_messages(scene, stamp))
        for m in (msgs[1], msgs[3]):
            m.d = [0.01, 0.0, 0.0, 0.0, 0.0]  # distorted calibration on a pair given as rectified

        def publish():
            for ns in ("sraw", "scmp"):
                for pub, m in zip(pubs[ns], msgs):
                    pub.publish(_png(m) if ns == "scmp" and isinstance(m, Image) else m)

        d_raw = decode_image(publish_until(io, publish, "/sraw/depth/image", stamp, timeout=40))
        d_cmp = decode_image(publish_until(io, publish, "/scmp/depth/image", stamp, timeout=40))
        assert np.isfinite(d_raw).mean() > 0.3
        np.testing.assert_array_equal(d_cmp, d_raw)  # PNG is lossless: the same disparities
        for _ in range(3):
            publish()
        io.wait_for(lambda: False, 1.0)
        log = cmp_.log()
        assert log.count("has non-zero distortion (plumb_bob") == 2, log  # left and right, once each
        assert "this node expects rectified images (image_rect)" in log
    finally:
        io.close()
        assert raw.stop() == 0, raw.log()
        assert cmp_.stop() == 0, cmp_.log()


def test_tracker_takes_png_compressed_images_and_compressed_depth(tmp_path):
    w, h = 80, 60
    colours = np.array([[250, 20, 20], [20, 250, 20], [20, 20, 250]], np.uint8)
    model, side = write_colour_descriptor_model(tmp_path / "desc.onnx", h, w, scale=4.0)
    ref = save_reference(tmp_path / "ref.npz", KeypointReference(
        descriptors=(4.0 * colours / 255.0).astype(np.float32), pixels=np.zeros((3, 2), np.float32),
        names=["r", "g", "b"], model_sha256=json.loads(side.read_text())["source_model_sha256"], input_size=(h, w),
        descriptor_dim=3, image_size=(h, w)))
    node = NodeProcess("descriptor_tracker_node", "--params-file", str(REPO / "config/descriptor_tracker.yaml"),
                       "-p", f"model_path:={model}", "-p", f"reference_path:={ref}", "-p", "use_depth:=true",
                       "-p", "image_transport:=compressed", "-p", "depth_transport:=compressedDepth",
                       "-r", "__ns:=/ctr", log_path=tmp_path / "ctr.log")
    io = RosIO("tracker_compressed_io")
    try:
        pub_img = io.publisher(CompressedImage, "/ctr/image/compressed")
        pub_depth = io.publisher(CompressedImage, "/ctr/depth/image/compressedDepth")
        pub_info = io.publisher(CameraInfo, "/ctr/camera_info")
        io.collect(PointCloud2, "/ctr/keypoints")
        assert node.wait_for_log("tracking 3 keypoints", 30), node.log()
        img = np.random.default_rng(0).integers(90, 150, (h, w, 3), dtype=np.uint8)
        pos = [(10, 12), (40, 30), (70, 50)]
        for c, (u, v) in zip(colours, pos):
            img[v, u] = c
        depth = np.full((h, w), 2.0, np.float32)
        depth[30, 40] = 1.25
        cam = PinholeCamera(w, h, np.array([[70.0, 0, 41.0], [0, 64.0, 28.0], [0, 0, 1]]))
        stamp = new_stamp()

        def publish():
            pub_info.publish(info_msg(cam, stamp))
            ok, png = cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]))
            pub_img.publish(CompressedImage(header=header(stamp), format="rgb8; png compressed bgr8",
                                            data=png.tobytes()))
            pub_depth.publish(_compressed_depth(depth, stamp))

        for _ in range(30):  # until an output with 3D (the depth publisher may be discovered later)
            publish_until(io, publish, "/ctr/keypoints", stamp, timeout=40)
            rec = np.frombuffer(bytes([m for m in io.messages("/ctr/keypoints") if stamp_of(m) == stamp][-1].data),
                                np.float32).reshape(3, 7)
            if np.isfinite(rec[:, 2]).all():
                break
            stamp = new_stamp()
        np.testing.assert_array_equal(rec[:, 3:5], np.array(pos, np.float32))
        # z from the compressedDepth image, to its quantisation step z^2 / 10100
        np.testing.assert_allclose(rec[:, 2], [2.0, 1.25, 2.0], atol=4.0 / 10100)
        np.testing.assert_allclose(rec[1, 0], (40 - 41.0) / 70.0 * rec[1, 2], rtol=1e-5)
    finally:
        io.close()
        assert node.stop() == 0, node.log()


def test_tracker_keypoints_are_found_in_the_rectified_image(tmp_path):
    """Colour encodes the *rectified* position (R = 1.5 x, G = 2 y); the lens moves it in the raw image.
    Keypoints whose reference colour is that of pixel p must come out at p (and at the distorted
    position, pixels away, without rectification), with 3D from the rectified K."""
    def colour(x, y):
        return np.stack([1.5 * x, 2.0 * y, np.full_like(x, 60.0)], -1)

    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    rect = cv2.undistortPoints(np.stack([u.ravel(), v.ravel()], 1)[:, None, :], K, D, P=K).reshape(H, W, 2)
    raw = np.clip(np.rint(colour(rect[..., 0], rect[..., 1])), 0, 255).astype(np.uint8)
    targets = np.array([(30, 25), (80, 60), (130, 95)], np.float64)
    descriptors = (4.0 * colour(targets[:, 0], targets[:, 1]) / 255.0).astype(np.float32)
    model, side = write_colour_descriptor_model(tmp_path / "desc.onnx", H, W, scale=4.0)
    ref = save_reference(tmp_path / "ref.npz", KeypointReference(
        descriptors=descriptors, pixels=targets.astype(np.float32), names=["a", "b", "c"],
        model_sha256=json.loads(side.read_text())["source_model_sha256"], input_size=(H, W), descriptor_dim=3,
        image_size=(H, W)))
    node = NodeProcess("descriptor_tracker_node", "--params-file", str(REPO / "config/descriptor_tracker.yaml"),
                       "-p", f"model_path:={model}", "-p", f"reference_path:={ref}", "-p", "use_depth:=true",
                       "-r", "__ns:=/rtr", log_path=tmp_path / "rtr.log")
    io = RosIO("tracker_rectify_io")
    try:
        pubs = [io.publisher(CameraInfo, "/rtr/camera_info"), io.publisher(Image, "/rtr/depth/image"),
                io.publisher(Image, "/rtr/image")]
        io.collect(PointCloud2, "/rtr/keypoints")
        assert node.wait_for_log("tracking 3 keypoints", 30), node.log()
        depth = np.full((H, W), 2.0, np.float32)
        for _ in range(30):
            stamp = new_stamp()

            def publish():
                pubs[0].publish(_distorted_info(stamp))
                pubs[1].publish(image_msg(depth, "32FC1", stamp))
                pubs[2].publish(image_msg(raw, "rgb8", stamp))

            publish_until(io, publish, "/rtr/keypoints", stamp, timeout=40)
            rec = np.frombuffer(bytes([m for m in io.messages("/rtr/keypoints") if stamp_of(m) == stamp][-1].data),
                                np.float32).reshape(3, 7)
            if np.isfinite(rec[:, 2]).all():  # processed with camera_info and depth
                break
        np.testing.assert_array_equal(rec[:, 3:5], targets.astype(np.float32))
        np.testing.assert_allclose(rec[:, 2], 2.0)
        np.testing.assert_allclose(rec[:, 0], (targets[:, 0] - K[0, 2]) / K[0, 0] * 2.0, rtol=1e-5)
        # without rectification the colours sit at the distorted positions, pixels away
        moved = np.array([np.unravel_index(np.argmin(np.abs(raw.astype(float) - c * 255 / 4).sum(-1)), (H, W))[::-1]
                          for c in descriptors])
        assert np.abs(moved - targets).max() >= 3, moved
    finally:
        io.close()
        assert node.stop() == 0, node.log()
