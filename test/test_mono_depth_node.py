"""mono_depth_node end to end: real node processes fed over DDS, checked against networks with known outputs.

The network is ``y = a + b * R`` (``R`` = red / 255; :mod:`depth_nodes.known_models`) at the
camera's size, so the depth image must equal the formula exactly, the cloud must be its
back-projection, and ``align`` must recover a known scale and shift from sparse metric depth.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_nodes.geometry.pointcloud import unpack_rgb
from depth_nodes.image_encodings import decode_image
from depth_nodes.known_models import write_affine_depth_model
from depth_nodes.ros.harness import NodeProcess, RosIO
from node_inputs import camera, header, image_msg, info_msg, malformed_images, new_stamp, output_for, publish_until

REPO = Path(__file__).resolve().parents[1]
W, H = 64, 48
CAM = camera(W, H)


def _image(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    img[:, :8, 0] = 255  # a strip of known red
    return img


def _expected_depth(img: np.ndarray, a=1.0, b=4.0) -> np.ndarray:
    return (np.float32(a) + np.float32(b) * (img[:, :, 0].astype(np.float32) * np.float32(1 / 255))).astype(np.float32)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    metric, _ = write_affine_depth_model(d / "metric.onnx", H, W, a=1.0, b=4.0, kind="metric_depth")
    inverse, _ = write_affine_depth_model(d / "inverse.onnx", H, W, a=0.1, b=0.8, kind="relative_inverse_depth")
    return {"metric": metric, "inverse": inverse}


@pytest.fixture(scope="module")
def mono(models, tmp_path_factory):
    log = tmp_path_factory.mktemp("node") / "mono_depth_node.log"
    node = NodeProcess("mono_depth_node", "--params-file", str(REPO / "config/mono_depth.yaml"),
                       "-p", f"model_path:={models['metric']}", "-p", "report_period_s:=0.0",
                       "-p", "camera_info_timeout_s:=0.5", "-p", "max_depth:=4.5", log_path=log)
    io = RosIO("mono_test_io")
    pubs = {"image": io.publisher(Image, "image"), "camera_info": io.publisher(CameraInfo, "camera_info")}
    for t, typ in (("depth/image", Image), ("depth/camera_info", CameraInfo), ("depth/points", PointCloud2),
                   ("depth/colorized", Image)):
        io.collect(typ, t)
    assert node.wait_for_log("scale_mode metric", 20), node.log()
    yield node, io, pubs
    io.close()
    assert node.stop() == 0, node.log()


def _serve(io, pubs, img, topic="depth/points"):
    stamp = new_stamp()
    msgs = (info_msg(CAM, stamp), image_msg(img, "rgb8", stamp))

    def publish():
        pubs["camera_info"].publish(msgs[0])
        pubs["image"].publish(msgs[1])

    return stamp, publish_until(io, publish, topic, stamp)


def test_depth_cloud_and_preview_match_the_known_network(mono):
    node, io, pubs = mono
    img = _image(0)
    stamp, cloud_msg = _serve(io, pubs, img)
    depth_msg = output_for(io, "depth/image", stamp)
    info = output_for(io, "depth/camera_info", stamp)
    colour = output_for(io, "depth/colorized", stamp)
    assert depth_msg.encoding == "32FC1" and (depth_msg.width, depth_msg.height) == (W, H)
    assert depth_msg.header.frame_id == "camera_optical_frame" and info.header.frame_id == "camera_optical_frame"
    depth = decode_image(depth_msg)
    expected = _expected_depth(img)
    expected[expected > 4.5] = np.nan  # max_depth
    np.testing.assert_allclose(depth, expected, rtol=1e-6, equal_nan=True)
    assert np.isnan(depth).sum() == (img[:, :, 0] > 223).sum() > 0  # 1 + 4 R > 4.5  <=>  R > 223.1
    assert info.k.tolist() == CAM.K.ravel().tolist()
    # cloud: X = z K^-1 [u, v, 1], colour of the input pixel
    assert [f.name for f in cloud_msg.fields] == ["x", "y", "z", "rgb"] and cloud_msg.height == H
    cloud = np.frombuffer(bytes(cloud_msg.data), np.float32).reshape(H, W, 4)
    v, u = np.mgrid[0:H, 0:W]
    np.testing.assert_allclose(cloud[..., 2], expected, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(cloud[..., 0], (u - CAM.cx) / CAM.fx * expected, rtol=1e-5, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(cloud[..., 1], (v - CAM.cy) / CAM.fy * expected, rtol=1e-5, atol=1e-6, equal_nan=True)
    ok = np.isfinite(expected)
    assert np.array_equal(unpack_rgb(cloud[..., 3])[ok], img[ok])
    assert colour.encoding == "bgr8" and (colour.width, colour.height) == (W, H)
    # input_qos auto (config default): the test's reliable publishers are followed
    assert node.wait_for_log("input QoS auto: image -> reliable", 5), node.log()[:3000]
    preview = decode_image(colour)
    assert (preview[np.isnan(expected)] == 0).all() and preview[ok].max() > 0


def test_survives_a_burst_of_malformed_inputs_then_serves_a_good_frame(mono):
    node, io, pubs = mono
    img = _image(1)
    _serve(io, pubs, img)  # one good frame first: a burst sent while the node follows its publishers' QoS can be lost
    good_stamp = new_stamp()
    bad = malformed_images(img, good_stamp)
    bad_info = info_msg(camera(W // 2, H // 2), good_stamp)     # calibration of another size
    zero_info = info_msg(CAM, good_stamp)
    zero_info.k = [0.0] * 9
    zero_info.p = [0.0] * 12
    kinds = [k for k, _ in bad] + ["camera_info of another size", "uncalibrated camera_info"]
    assert len(kinds) >= 10
    sent = 0
    while sent < 1100:
        for _, msg in bad:
            pubs["image"].publish(msg)
            sent += 1
        pubs["camera_info"].publish(bad_info if sent % 2 else zero_info)
        pubs["image"].publish(image_msg(img, "rgb8", good_stamp - 10_000))  # paired with the bad info
        sent += 2
    for needle in ("bad image", "camera_info"):
        assert node.wait_for_log(needle, 10), node.log()[-3000:]
    assert node.alive()
    stamp, _ = _serve(io, pubs, img)
    np.testing.assert_allclose(decode_image(output_for(io, "depth/image", stamp)),
                               np.where(_expected_depth(img) > 4.5, np.nan, _expected_depth(img)), rtol=1e-6,
                               equal_nan=True)
    # each kind, one at a time (in the burst most were replaced by newer ones before processing)
    expected = {"unknown encoding": "unsupported image encoding 'yuv422_yuy2'", "short data": "expected step*height",
                "out-of-order stamp": "out-of-order stamp", "depth encoding as colour": "bad image"}
    for kind, msg in malformed_images(img, new_stamp()):
        if kind in expected:
            before = node.log().count(expected[kind])
            pubs["image"].publish(msg)
            assert io.wait_for(lambda: node.log().count(expected[kind]) > before, 5), (kind, node.log()[-2000:])
    # each camera_info kind alone too: which infos the burst's processed frames met is up to timing
    for info, needle in ((bad_info, "camera_info is 32x24 but the image 64x48"),
                         (zero_info, "intrinsic matrix K is all zeros")):
        before = node.log().count(needle)
        stamp = new_stamp()
        info.header = header(stamp)
        pubs["camera_info"].publish(info)
        io.wait_for(lambda: False, 0.1)  # the info first, so the image meets it
        pubs["image"].publish(image_msg(img, "rgb8", stamp))
        assert io.wait_for(lambda: node.log().count(needle) > before, 5), (needle, node.log()[-2000:])
        # depth needs no intrinsics: the frame is served, without cloud and camera_info
        depth = output_for(io, "depth/image", stamp)
        np.testing.assert_allclose(decode_image(depth), np.where(_expected_depth(img) > 4.5, np.nan,
                                                                 _expected_depth(img)), rtol=1e-6, equal_nan=True)
    assert node.alive()


def test_when_camera_info_stops_depth_is_still_served_and_the_gap_reported(mono):
    node, io, pubs = mono
    img = _image(2)
    for _ in range(8):  # images only, for longer than camera_info_timeout_s (0.5 s)
        stamp = new_stamp()
        pubs["image"].publish(image_msg(img, "rgb8", stamp))
        io.wait_for(lambda: False, 0.15)
    assert node.wait_for_log("images arrive but no /camera_info for 0.5 s", 5), node.log()[-2000:]
    depth = publish_until(io, lambda: pubs["image"].publish(image_msg(img, "rgb8", stamp)), "depth/image", stamp)
    assert np.isfinite(decode_image(depth)).any()


def _stamp_of(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def test_align_recovers_scale_and_shift_from_sparse_metric_depth(models, tmp_path):
    node = NodeProcess("mono_depth_node", "-p", f"model_path:={models['inverse']}", "-p", "scale_mode:=align",
                       "-p", "report_period_s:=0.0", "-p", "max_depth:=1000.0",
                       "-r", "__ns:=/align", log_path=tmp_path / "align.log")  # away from the module's node
    io = RosIO("mono_align_io")
    try:
        pub_img, pub_sparse = io.publisher(Image, "/align/image"), io.publisher(Image, "/align/sparse_depth")
        io.collect(Image, "/align/depth/image")
        io.collect(PointCloud2, "/align/depth/points")
        assert node.wait_for_log("scale_mode align", 20), node.log()
        img = _image(3)
        x = _expected_depth(img, 0.1, 0.8)            # the network's inverse depth
        truth = (1.0 / (2.5 * x + 0.05)).astype(np.float32)  # 1/z = 2.5 x + 0.05
        sparse = np.full((H, W), np.nan, np.float32)
        rng = np.random.default_rng(0)
        idx = rng.choice(H * W, 300, replace=False)
        sparse.flat[idx] = truth.flat[idx]
        sparse.flat[idx[:30]] *= 4.0                  # 10 % wrong returns
        sparse.flat[idx[30:35]] = np.inf              # and a few non-finite ones
        stamp = new_stamp()

        def publish():
            pub_sparse.publish(image_msg(sparse, "32FC1", stamp))
            pub_img.publish(image_msg(img, "rgb8", stamp))

        depth = decode_image(publish_until(io, publish, "/align/depth/image", stamp))
        np.testing.assert_allclose(depth, truth, rtol=1e-4)
        assert node.wait_for_log("align: scale 2.5", 5), node.log()
        line = [ln for ln in node.log().splitlines() if "align: scale" in ln][-1]
        assert "shift 0.05" in line and "inliers 265/295" in line, line
        # this node never got a camera_info: depth, but no cloud, and the gap is reported
        for _ in range(10):
            publish()
            io.wait_for(lambda: False, 0.1)
        assert node.wait_for_log("images arrive but no /align/camera_info", 5), node.log()
        assert io.messages("/align/depth/points") == []
        # a sparse depth from another moment is not used: the frame is skipped with the age named
        stale = new_stamp()
        fresh = stale + 2_000_000_000
        pub_sparse.publish(image_msg(sparse, "32FC1", stale))
        io.wait_for(lambda: False, 0.3)
        for _ in range(5):
            pub_img.publish(image_msg(img, "rgb8", fresh))
            io.wait_for(lambda: False, 0.1)
        assert node.wait_for_log("align: no /align/sparse_depth for this frame: the nearest sparse_depth is 2.000 s "
                                 "from the image (max_age 0.5 s", 5), node.log()[-2000:]
        assert not any(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec == fresh
                       for m in io.messages("/align/depth/image"))
        # ... and the next frame with a current one is served again
        stamp = new_stamp() + 3_000_000_000
        depth = decode_image(publish_until(io, publish, "/align/depth/image", stamp))
        np.testing.assert_allclose(depth, truth, rtol=1e-4)
        # a sparse depth that arrives after its image (same stamp, 30 ms later, another scale) is the one used,
        # not the previous frame's (0.1 s older, within align_max_age_s)
        truth2 = (1.0 / (1.5 * x + 0.2)).astype(np.float32)
        sparse2 = np.full((H, W), np.nan, np.float32)
        sparse2.flat[idx[35:]] = truth2.flat[idx[35:]]
        for k in range(3):
            pub_sparse.publish(image_msg(sparse, "32FC1", stamp + k * 100_000_000))  # the old scene, frames before
        later = stamp + 300_000_000
        io.wait_for(lambda: False, 0.3)
        pub_img.publish(image_msg(img, "rgb8", later))
        io.wait_for(lambda: False, 0.03)
        pub_sparse.publish(image_msg(sparse2, "32FC1", later))
        assert io.wait_for(lambda: any(_stamp_of(m) == later for m in io.received["/align/depth/image"]), 10)
        depth = decode_image([m for m in io.messages("/align/depth/image") if _stamp_of(m) == later][0])
        np.testing.assert_allclose(depth, truth2, rtol=1e-4)
    finally:
        io.close()
        assert node.stop() == 0, node.log()


@pytest.mark.parametrize("override, message", [
    ("scale_mode:=metric", "outputs relative_inverse_depth, not metric depth"),
    ("scale_mode:=fixed", "cannot make metres from it; use scale_mode 'align'"),
    ("model_path:=/nonexistent/model.onnx", "model_path: /nonexistent/model.onnx: no such file"),  # not "no description"
    ("scale_mode:=guess", "scale_mode: 'guess' is not one of"),
])
def test_invalid_start_up_is_refused_with_one_clear_message(models, tmp_path, override, message):
    args = ["-p", f"model_path:={models['inverse']}", "-p", override]
    node = NodeProcess("mono_depth_node", *args, "-r", "__ns:=/bad", log_path=tmp_path / "bad.log")
    node.proc.wait(30)
    assert node.stop() == 2
    assert message in node.log() and "Traceback" not in node.log(), node.log()


@pytest.mark.parametrize("exe", ["mono_depth_node", "descriptor_tracker_node"])
def test_help_lists_topics_and_parameters_and_a_bad_params_file_is_one_line(exe, tmp_path):
    import subprocess

    from depth_nodes.ros.harness import VENV_BIN

    r = subprocess.run([str(VENV_BIN / exe), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "model_path" in r.stdout and "image" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([str(VENV_BIN / exe), "--ros-args", "--params-file", str(tmp_path / "none.yaml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "none.yaml: no such file" in r.stderr and "Traceback" not in r.stderr, r.stderr


def _set_param(io, name, value):
    return io.set_parameter("/mono_depth_node", name, float(value))


def test_runtime_parameter_changes_are_validated_and_applied(mono):
    node, io, pubs = mono
    bad = _set_param(io, "max_depth", -1.0)
    assert not bad.successful and "max_depth" in bad.reason and "-1.0" in bad.reason
    bad = _set_param(io, "min_depth", 10.0)  # above max_depth (4.5)
    assert not bad.successful and "must exceed min_depth" in bad.reason
    assert _set_param(io, "max_depth", 3.0).successful
    try:
        img = _image(5)
        stamp, _ = _serve(io, pubs, img)
        depth = decode_image(output_for(io, "depth/image", stamp))
        expected = _expected_depth(img)
        np.testing.assert_allclose(depth, np.where(expected > 3.0, np.nan, expected), rtol=1e-6, equal_nan=True)
    finally:
        assert _set_param(io, "max_depth", 4.5).successful
