"""stereo_depth_node end to end: a real node process, real messages over DDS (loopback).

The test process publishes a synthetic rectified pair of fronto-parallel planes at known depths
and checks what the node publishes: depth values, message fields, the point cloud bytes, and
that bad inputs are reported and skipped while the node keeps serving good frames.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from stereo_msgs.msg import DisparityImage

from depth_nodes.geometry.pointcloud import unpack_rgb
from depth_nodes.image_encodings import decode_image
from depth_nodes.synthetic import default_scene
from depth_nodes.ros.harness import NodeProcess, RosIO, stamp_of, stereo_messages

REPO = Path(__file__).resolve().parents[1]

W, H = 320, 240
SCENE = default_scene(W, H, seed=3)
INPUTS = ("left/image_rect", "left/camera_info", "right/image_rect", "right/camera_info")


@pytest.fixture(scope="module")
def stereo(tmp_path_factory):
    log = tmp_path_factory.mktemp("node") / "stereo_depth_node.log"
    node = NodeProcess("stereo_depth_node", "--params-file", str(REPO / "config/stereo_depth.yaml"),
                       "-p", "disparity_range:=64", "-p", "camera_info_timeout_s:=0.5",
                       "-p", "fill_left_band:=false",  # the empty-band checks below; see test_stereo_fill_left_band.py
                       "-p", "report_period_s:=0.0", log_path=log)
    io = RosIO("stereo_test_io")
    pubs = [io.publisher(Image if "image" in t else CameraInfo, t) for t in INPUTS]
    io.collect(DisparityImage, "disparity")
    io.collect(Image, "depth/image")
    io.collect(CameraInfo, "depth/camera_info")
    io.collect(PointCloud2, "points2")
    assert node.wait_for_log("matching with opencv_sgbm", 20), node.log()
    yield node, io, pubs
    io.close()
    assert node.stop() == 0, node.log()


_next_stamp = [1_700_000_000_000_000_000]


def new_stamp() -> int:
    _next_stamp[0] += 100_000_000
    return _next_stamp[0]


def publish(pubs, msgs):
    for pub, msg in zip(pubs, msgs):
        pub.publish(msg)


def publish_until_output(io, pubs, msgs, topic="points2", timeout=20.0):
    """Publish the same set until the node's output with its stamp arrives (covers discovery)."""
    stamp = stamp_of(msgs[0])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        publish(pubs, msgs)
        if io.wait_for(lambda: any(stamp_of(m) == stamp for m in io.received[topic]), timeout=0.5):
            return [m for m in io.messages(topic) if stamp_of(m) == stamp][0]
    raise AssertionError(f"no {topic} output for stamp {stamp}")


def output_for(io, topic, stamp):
    assert io.wait_for(lambda: any(stamp_of(m) == stamp for m in io.received[topic]), timeout=5.0), topic
    return [m for m in io.messages(topic) if stamp_of(m) == stamp][0]


def interior(depth_value, erode=7):
    mask = (SCENE.depth == depth_value).astype(np.uint8)
    return cv2.erode(mask, np.ones((erode, erode), np.uint8)).astype(bool)


def test_depth_disparity_and_cloud_of_known_planes(stereo):
    node, io, pubs = stereo
    stamp = new_stamp()
    msgs = stereo_messages(SCENE, stamp)
    cloud_msg = publish_until_output(io, pubs, msgs)
    depth_msg = output_for(io, "depth/image", stamp)
    disp_msg = output_for(io, "disparity", stamp)
    info_msg = output_for(io, "depth/camera_info", stamp)

    # depth image: REP 118, header kept, values of the planes
    assert depth_msg.encoding == "32FC1" and (depth_msg.width, depth_msg.height) == (W, H)
    assert depth_msg.header.frame_id == "left_optical_frame"
    depth = decode_image(depth_msg)
    # the right-most planes' regions minus occlusion/border effects
    # SGBM's sub-pixel estimate is biased by up to ~0.3 px (peak locking), so the planes are
    # checked in disparity (pixels) and in depth with the tolerance that implies.
    fB = SCENE.left_camera.fx * 0.12
    for z in (4.0, 2.0, 1.2):
        m = interior(z) & np.isfinite(depth)
        m[:, :64] = False  # no match possible left of the disparity search range
        assert m.sum() > 200, z
        d_gt = fB / z
        assert abs(np.median(fB / depth[m]) - d_gt) < 0.35, z
        assert np.median(depth[m]) == pytest.approx(z, rel=0.35 / d_gt), z
        assert np.mean(np.abs(fB / depth[m] - d_gt) < 1.0) > 0.9, z
    assert np.isfinite(depth).mean() > 0.6
    assert np.all(np.isnan(depth[:, :10]))  # nothing to match at the left border: NaN, not 0

    # disparity message: Z = f T / d, fields filled
    assert disp_msg.f == pytest.approx(SCENE.left_camera.fx)
    assert disp_msg.t == pytest.approx(0.12)
    assert disp_msg.min_disparity == 0.0 and disp_msg.max_disparity == 63.0
    assert disp_msg.delta_d == pytest.approx(1 / 16)
    d = decode_image(disp_msg.image)
    valid = d >= disp_msg.min_disparity
    np.testing.assert_allclose(disp_msg.f * disp_msg.t / d[valid], depth[valid], rtol=1e-5)
    assert np.all(np.isnan(depth[~valid]))
    assert disp_msg.valid_window.width > 0 and disp_msg.valid_window.x_offset >= 50

    assert info_msg.header.frame_id == "left_optical_frame"
    np.testing.assert_allclose(np.array(info_msg.k).reshape(3, 3), SCENE.left_camera.K)

    # point cloud: decode the bytes with a structured dtype built from the message's own fields
    assert (cloud_msg.height, cloud_msg.width) == (H, W) and not cloud_msg.is_dense
    assert [f.name for f in cloud_msg.fields] == ["x", "y", "z", "rgb"]
    assert all(f.datatype == PointField.FLOAT32 and f.count == 1 for f in cloud_msg.fields)
    dtype = np.dtype({"names": [f.name for f in cloud_msg.fields], "formats": ["<f4"] * 4,
                      "offsets": [f.offset for f in cloud_msg.fields], "itemsize": cloud_msg.point_step})
    records = np.frombuffer(bytes(cloud_msg.data), dtype=dtype).reshape(H, W)
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    K = SCENE.left_camera.K
    expect_x = (u - K[0, 2]) / K[0, 0] * depth
    expect_y = (v - K[1, 2]) / K[1, 1] * depth
    np.testing.assert_allclose(records["z"], depth, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(records["x"], expect_x, rtol=1e-5, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(records["y"], expect_y, rtol=1e-5, atol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(unpack_rgb(records["rgb"]), SCENE.left)


def test_mono8_input_matches_too(stereo):
    node, io, pubs = stereo
    stamp = new_stamp()
    publish_until_output(io, pubs, stereo_messages(SCENE, stamp, encoding="mono8"))
    depth = decode_image(output_for(io, "depth/image", stamp))
    m = interior(2.0) & np.isfinite(depth)
    fB = SCENE.left_camera.fx * 0.12
    assert abs(np.median(fB / depth[m]) - fB / 2.0) < 0.35


def _good_after(io, pubs):
    stamp = new_stamp()
    publish_until_output(io, pubs, stereo_messages(SCENE, stamp))
    return stamp


def test_bad_inputs_are_reported_and_skipped(stereo):
    node, io, pubs = stereo
    small = default_scene(160, 120, seed=1)
    # one good pair first: the node follows its publishers' QoS (re-made subscriptions), and a pair
    # sent while that settles can be lost (one CI run lost the K-all-zeros pair that way)
    publish_until_output(io, pubs, stereo_messages(SCENE, new_stamp()))

    # left and right of different sizes
    stamp = new_stamp()
    l_img, l_info, _, _ = stereo_messages(SCENE, stamp)
    _, _, r_img, r_info = stereo_messages(small, stamp)
    publish(pubs, (l_img, l_info, r_img, r_info))
    assert node.wait_for_log("left image is 320x240 but right image is 160x120"), node.log()

    # camera_info that does not match its image
    stamp = new_stamp()
    msgs = list(stereo_messages(SCENE, stamp))
    msgs[1] = stereo_messages(small, stamp)[1]
    publish(pubs, msgs)
    assert node.wait_for_log("left camera_info is 160x120 but its image is 320x240"), node.log()

    # zero baseline
    stamp = new_stamp()
    msgs = list(stereo_messages(SCENE, stamp))
    p = list(msgs[3].p)
    p[3] = 0.0
    msgs[3].p = p
    publish(pubs, msgs)
    assert node.wait_for_log("baseline is 0 m"), node.log()

    # uncalibrated camera (K all zeros)
    stamp = new_stamp()
    msgs = list(stereo_messages(SCENE, stamp))
    msgs[1].k = [0.0] * 9
    msgs[1].p = [0.0] * 12
    publish(pubs, msgs)
    assert node.wait_for_log("k: camera_info intrinsic matrix K is all zeros"), node.log()

    # an image encoding we cannot read
    stamp = new_stamp()
    msgs = list(stereo_messages(SCENE, stamp))
    msgs[0].encoding = "yuv422_yuy2"
    publish(pubs, msgs)
    assert node.wait_for_log("bad image: encoding: unsupported image encoding 'yuv422_yuy2'"), node.log()

    # data shorter than step * height
    stamp = new_stamp()
    msgs = list(stereo_messages(SCENE, stamp))
    msgs[2].data = bytes(msgs[2].data)[: len(msgs[2].data) // 2]
    publish(pubs, msgs)
    assert node.wait_for_log("data: 115200 bytes, expected step*height"), node.log()

    # unsynchronised pair: right stamps 50 ms later than left (slop 10 ms)
    stamp = new_stamp()
    l_img, l_info, _, _ = stereo_messages(SCENE, stamp)
    _, _, r_img, r_info = stereo_messages(SCENE, stamp + 50_000_000)
    for _ in range(10):  # a stream at 20 Hz pushes the unmatched messages out of the queues
        publish(pubs, (l_img, l_info, r_img, r_info))
        time.sleep(0.05)
        stamp += 100_000_000
        l_img, l_info, _, _ = stereo_messages(SCENE, stamp)
        _, _, r_img, r_info = stereo_messages(SCENE, stamp + 50_000_000)
    assert node.wait_for_log("dropped without a partner", 5), node.log()
    assert not any(stamp_of(m) == stamp - 100_000_000 for m in io.messages("points2"))

    # missing camera_info: images only
    for _ in range(15):
        stamp = new_stamp()
        msgs = stereo_messages(SCENE, stamp)
        pubs[0].publish(msgs[0])
        pubs[2].publish(msgs[2])
        time.sleep(0.1)
    assert node.wait_for_log("images arrive but no /right/camera_info", 5), node.log()

    # ... and the node still serves the next good frame
    assert node.alive()
    _good_after(io, pubs)


def _set_param(io, name, value):
    return io.set_parameter("/stereo_depth_node", name, value)


def test_runtime_parameter_changes_are_validated(stereo):
    node, io, pubs = stereo
    bad = _set_param(io, "disparity_range", 100)
    assert not bad.successful and "multiple of 16" in bad.reason
    ro = _set_param(io, "queue_size", 3)
    assert not ro.successful and "read-only" in ro.reason
    rng = _set_param(io, "max_depth", 3.0)
    assert rng.successful, rng.reason
    ok = _set_param(io, "disparity_range", 96)
    assert ok.successful, ok.reason
    stamp = _good_after(io, pubs)
    disp = output_for(io, "disparity", stamp)
    assert disp.max_disparity == 95.0
    depth = decode_image(output_for(io, "depth/image", stamp))
    assert np.all(np.isnan(depth[interior(4.0)]))  # beyond max_depth now
    assert np.nanmax(depth) <= 3.0
    _set_param(io, "max_depth", 100.0)


@pytest.mark.parametrize("override,message", [
    ("disparity_range:=100", "disparity_range: must be a positive multiple of 16"),
    ("output_qos:=bogus", "output_qos: 'bogus' is not one of"),
    ("point_decimation:=0", "point_decimation"),
])
def test_invalid_start_up_parameters_exit_with_a_clear_message(tmp_path, override, message):
    node = NodeProcess("stereo_depth_node", "--params-file", str(REPO / "config/stereo_depth.yaml"),
                       "-p", override, log_path=tmp_path / "bad.log")
    try:
        node.proc.wait(30)
    finally:
        code = node.stop()
    assert code == 2, node.log()
    assert message in node.log(), node.log()


def test_only_subscribed_outputs_are_built(tmp_path):
    """A node whose only subscriber wants depth still serves depth, and builds no cloud (its
    per-frame debug line says so)."""
    node = NodeProcess("stereo_depth_node", "--params-file", str(REPO / "config/stereo_depth.yaml"),
                       "-p", "disparity_range:=64", "-r", "__ns:=/lazy", "--log-level", "lazy.stereo_depth_node:=debug",
                       log_path=tmp_path / "lazy.log")
    io = RosIO("lazy_test_io")
    try:
        pubs = [io.publisher(Image if "image" in t else CameraInfo, f"/lazy/{t}") for t in INPUTS]
        io.collect(Image, "/lazy/depth/image")
        assert node.wait_for_log("matching with", 20), node.log()
        msgs = stereo_messages(SCENE, new_stamp())
        depth_msg = publish_until_output(io, pubs, msgs, topic="/lazy/depth/image")
        depth = decode_image(depth_msg)
        assert np.nanmedian(np.abs(depth[interior(2.0)] - 2.0)) < 0.05 * 2.0
        points = io.node.count_subscribers("/lazy/points2")
        assert points == 0
        stamp = depth_msg.header.stamp
        line = f"frame {stamp.sec}.{stamp.nanosec:09d}: decode "
        assert node.wait_for_log(line, 5), node.log()
        timing = [t for t in node.log().splitlines() if line in t][0]
        ms = {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+) ms", timing)}
        assert set(ms) == {"decode", "match", "depth", "cloud", "publish", "total"}, timing
        assert ms["cloud"] < 0.05 and ms["match"] > 0 and ms["total"] >= ms["match"] + ms["decode"], timing
    finally:
        io.close()
        assert node.stop() == 0, node.log()
