"""descriptor_tracker_node end to end: a real node process fed over DDS, with a network of known output.

The network's descriptor of a pixel is its scaled colour (:mod:`depth_nodes.known_models`), so
keypoints planted as uniquely coloured dots must be found exactly where the dots are drawn, move
with them, be reported lost when a dot disappears and come back with the same id.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from visualization_msgs.msg import Marker, MarkerArray

from depth_nodes.image_encodings import decode_image
from depth_nodes.keypoints.reference import KeypointReference, save_reference
from depth_nodes.known_models import write_colour_descriptor_model
from depth_nodes.ros.harness import NodeProcess, RosIO, stamp_of
from node_inputs import camera, image_msg, info_msg, malformed_images, new_stamp, output_for, publish_until

REPO = Path(__file__).resolve().parents[1]
W, H = 80, 60
CAM = camera(W, H)
COLOURS = np.array([[250, 20, 20], [20, 250, 20], [20, 20, 250]], np.uint8)
NAMES = ["red", "green", "blue"]


def _frame(positions, seed=0) -> np.ndarray:
    """Dark noisy background (descriptors far from the dots') with a 3x3 dot per visible keypoint."""
    img = np.random.default_rng(seed).integers(90, 150, (H, W, 3), dtype=np.uint8)
    for colour, p in zip(COLOURS, positions):
        if p is not None:
            u, v = p
            img[v - 1:v + 2, u - 1:u + 2] = (colour * 0.85).astype(np.uint8)  # a ring close in colour..
            img[v, u] = colour                                                  # ..around the exact match
    return img


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tracker")
    model, side = write_colour_descriptor_model(d / "desc.onnx", H, W, scale=4.0)
    import json
    sha = json.loads(side.read_text())["source_model_sha256"]

    def ref(path, model_sha):
        save_reference(path, KeypointReference(
            descriptors=(4.0 * COLOURS / 255.0).astype(np.float32), pixels=np.array([[10, 10], [40, 30], [70, 50]],
                                                                                   np.float32),
            names=NAMES, model_sha256=model_sha, input_size=(H, W), descriptor_dim=3, image_size=(H, W)))
        return path

    return {"model": model, "ref": ref(d / "ref.npz", sha), "other_ref": ref(d / "other.npz", "0" * 64)}


@pytest.fixture(scope="module")
def tracker(files, tmp_path_factory):
    log = tmp_path_factory.mktemp("node") / "descriptor_tracker_node.log"
    node = NodeProcess("descriptor_tracker_node", "--params-file", str(REPO / "config/descriptor_tracker.yaml"),
                       "-p", f"model_path:={files['model']}", "-p", f"reference_path:={files['ref']}",
                       "-p", "use_depth:=true", "-p", "depth_max_age_s:=0.01", "-p", "search_radius:=6", "-p", "report_period_s:=0.0",
                       "-r", "__ns:=/tracker", log_path=log)
    io = RosIO("tracker_test_io")
    pubs = {t: io.publisher(CameraInfo if t.endswith("info") else Image, f"/tracker/{t}")
            for t in ("image", "depth/image", "camera_info")}
    io.collect(PointCloud2, "/tracker/keypoints")
    io.collect(MarkerArray, "/tracker/keypoints/markers")
    io.collect(Image, "/tracker/keypoints/image")
    io.collect(Image, "/tracker/descriptors/image")
    assert node.wait_for_log("tracking 3 keypoints (red, green, blue)", 20), node.log()
    yield node, io, pubs
    io.close()
    assert node.stop() == 0, node.log()


def _send(io, pubs, img, depth_value=2.0):
    stamp = new_stamp()
    depth = np.full((H, W), depth_value, np.float32)

    def publish():
        pubs["camera_info"].publish(info_msg(CAM, stamp))
        pubs["depth/image"].publish(image_msg(depth, "32FC1", stamp))
        pubs["image"].publish(image_msg(img, "rgb8", stamp))

    publish_until(io, publish, "/tracker/keypoints", stamp)
    # the first output may predate the depth publisher's discovery: wait for one with 3D
    for _ in range(40):
        found = [_points(m) for m in io.messages("/tracker/keypoints") if stamp_of(m) == stamp]
        with_3d = [kp for kp in found if np.isfinite(kp["xyz"][kp["score"] > 0]).all()]
        if with_3d:
            return stamp, with_3d[-1]
        publish()
        io.wait_for(lambda: False, 0.1)
    raise AssertionError("no keypoints with 3D positions")


def _points(msg):
    assert [f.name for f in msg.fields] == ["x", "y", "z", "u", "v", "score", "id"] and msg.point_step == 28
    rec = np.frombuffer(bytes(msg.data), np.float32).reshape(msg.width, 7)
    return {"xyz": rec[:, :3], "uv": rec[:, 3:5], "score": rec[:, 5], "id": rec[:, 6].view(np.uint32)}


def test_keypoints_are_found_followed_lost_and_reacquired(tracker):
    node, io, pubs = tracker
    pos = [(10, 10), (40, 30), (70, 50)]
    stamp, kp = _send(io, pubs, _frame(pos))
    assert kp["id"].tolist() == [0, 1, 2]
    np.testing.assert_array_equal(kp["uv"], np.array(pos, np.float32))
    np.testing.assert_allclose(kp["score"], 1.0, atol=1e-6)
    # 3D: z K^-1 [u, v, 1] with the registered depth (2 m)
    for (u, v), p in zip(pos, kp["xyz"]):
        np.testing.assert_allclose(p, [(u - CAM.cx) / CAM.fx * 2, (v - CAM.cy) / CAM.fy * 2, 2.0], rtol=1e-5)
    assert io.wait_for(lambda: any(stamp_of(a.markers[0]) == stamp and len(a.markers) == 7
                                   for a in io.received["/tracker/keypoints/markers"]), 5)
    markers = [a for a in io.messages("/tracker/keypoints/markers")
               if stamp_of(a.markers[0]) == stamp and len(a.markers) == 7][-1].markers
    assert markers[0].action == Marker.DELETEALL
    spheres = [m for m in markers if m.type == Marker.SPHERE]
    assert sorted(m.id for m in spheres) == [0, 1, 2] and all(m.header.frame_id == "camera_optical_frame"
                                                              for m in spheres)
    assert any(m.type == Marker.TEXT_VIEW_FACING and m.text == "1 green" for m in markers)
    overlay = decode_image(output_for(io, "/tracker/keypoints/image", stamp))
    assert overlay.shape == (H, W, 3) and not np.array_equal(overlay, _frame(pos))
    view = output_for(io, "/tracker/descriptors/image", stamp)
    assert view.encoding == "rgb8" and (view.width, view.height) == (W, H)

    # small motion: found inside the search window
    moved = [(13, 12), (38, 33), (66, 48)]
    _, kp = _send(io, pubs, _frame(moved, seed=1))
    np.testing.assert_array_equal(kp["uv"], np.array(moved, np.float32))
    # green disappears: lost (NaN position, score 0), the others tracked
    _, kp = _send(io, pubs, _frame([moved[0], None, moved[2]], seed=2))
    assert np.isnan(kp["uv"][1]).all() and kp["score"][1] == 0 and np.isnan(kp["xyz"][1]).all()
    np.testing.assert_array_equal(kp["uv"][[0, 2]], np.array([moved[0], moved[2]], np.float32))
    assert node.wait_for_log("lost green", 5), node.log()[-2000:]
    # it comes back far away (whole-image fallback) with the same id; depth changes too
    back = [moved[0], (5, 50), moved[2]]
    _, kp = _send(io, pubs, _frame(back, seed=3), depth_value=3.0)
    np.testing.assert_array_equal(kp["uv"], np.array(back, np.float32))
    assert kp["id"].tolist() == [0, 1, 2] and kp["xyz"][1, 2] == 3.0


def test_survives_a_burst_of_malformed_inputs_then_tracks_a_good_frame(tracker):
    node, io, pubs = tracker
    pos = [(20, 20), (50, 25), (60, 40)]
    img = _frame(pos, seed=4)
    # one good frame first: the node follows its publishers' QoS (re-made subscriptions), and a burst
    # sent while that settles could be lost entirely when this test runs first (as with -k)
    _send(io, pubs, img)
    stamp = new_stamp()
    bad = malformed_images(img, stamp)
    wrong_depth = image_msg(np.full((H // 2, W // 2), 1.0, np.float32), "32FC1", stamp)  # not registered
    bad_depth_enc = image_msg(np.zeros((H, W, 3), np.uint8), "rgb8", stamp)             # not a depth encoding
    nan_depth = image_msg(np.full((H, W), np.nan, np.float32), "32FC1", stamp)
    sent = 0
    while sent < 1100:
        for _, msg in bad:
            pubs["image"].publish(msg)
            sent += 1
        pubs["depth/image"].publish((wrong_depth, bad_depth_enc, nan_depth)[sent % 3])
        pubs["camera_info"].publish(info_msg(CAM, stamp))
        pubs["image"].publish(image_msg(img, "rgb8", stamp - 1000))
        sent += 3
    assert node.wait_for_log("bad image", 10) and node.alive(), node.log()[-3000:]
    _, kp = _send(io, pubs, img)
    np.testing.assert_array_equal(kp["uv"], np.array(pos, np.float32))
    # each kind, one at a time (in the burst most were replaced by newer ones before processing)
    expected = {"unknown encoding": "unsupported image encoding 'yuv422_yuy2'", "short data": "expected step*height",
                "out-of-order stamp": "out-of-order stamp", "depth encoding as colour": "bad image"}
    for kind, msg in malformed_images(img, new_stamp()):
        if kind in expected:
            before = node.log().count(expected[kind])
            pubs["image"].publish(msg)
            assert io.wait_for(lambda: node.log().count(expected[kind]) > before, 5), (kind, node.log()[-2000:])
    # an uncalibrated camera_info: tracking needs no intrinsics, the keypoints come without 3D
    stamp = new_stamp()
    zero_info = info_msg(CAM, stamp)
    zero_info.k = [0.0] * 9
    before = node.log().count("intrinsic matrix K is all zeros")
    pubs["camera_info"].publish(zero_info)
    pubs["depth/image"].publish(image_msg(np.full((H, W), 2.0, np.float32), "32FC1", stamp))
    io.wait_for(lambda: False, 0.1)  # info and depth before the image, so the image meets them
    pubs["image"].publish(image_msg(img, "rgb8", stamp))
    kp = _points(output_for(io, "/tracker/keypoints", stamp))
    np.testing.assert_array_equal(kp["uv"], np.array(pos, np.float32))
    assert np.isnan(kp["xyz"]).all()
    assert io.wait_for(lambda: node.log().count("intrinsic matrix K is all zeros") > before, 5), node.log()[-2000:]
    assert node.alive()


def test_both_missing_required_parameters_are_named_at_once(tmp_path):
    """Issue 20 item 10: the tracker named only reference_path when model_path was missing too."""
    node = NodeProcess("descriptor_tracker_node", "-r", "__ns:=/bad_required", log_path=tmp_path / "required.log")
    node.proc.wait(30)
    assert node.stop() == 2
    log = node.log()
    from depth_nodes.shipped_models import shipped_model

    assert "  reference_path: required" in log and "Traceback" not in log, log
    assert ("  model_path: required" in log) == (shipped_model("descriptors") is None), log  # empty: the shipped one


def test_a_mistyped_model_path_is_named_as_such(files, tmp_path):
    node = NodeProcess("descriptor_tracker_node", "-p", f"model_path:={files['model']}x",
                       "-p", f"reference_path:={files['other_ref']}", "-r", "__ns:=/bad_model",
                       log_path=tmp_path / "model.log")
    node.proc.wait(30)
    assert node.stop() == 2
    assert f"model_path: {files['model']}x: no such file" in node.log() and "description" not in node.log(), node.log()


def test_reference_from_another_model_is_refused(files, tmp_path):
    node = NodeProcess("descriptor_tracker_node", "-p", f"model_path:={files['model']}",
                       "-p", f"reference_path:={files['other_ref']}", "-r", "__ns:=/bad",
                       log_path=tmp_path / "bad.log")
    node.proc.wait(30)
    assert node.stop() == 2
    log = node.log()
    assert "keypoints were made with model 000000000000, this node runs model" in log and "Traceback" not in log, log


def test_runtime_parameter_changes_are_validated_and_applied(tracker):
    node, io, pubs = tracker
    fqn = "/tracker/descriptor_tracker_node"
    bad = io.set_parameter(fqn, "lost_threshold", -1.0)
    assert not bad.successful and "lost_threshold" in bad.reason
    bad = io.set_parameter(fqn, "search_radius", 5000)
    assert not bad.successful and "search_radius" in bad.reason
    ro = io.set_parameter(fqn, "use_depth", False)  # needs new subscriptions: start-up only
    assert not ro.successful
    pos = [(15, 15), (45, 35), (65, 20)]
    img = _frame(pos, seed=5)
    img[35, 45] = (COLOURS[1] * 0.9).astype(np.uint8)  # green's best match is now 0.1 x its colour away
    distance = np.linalg.norm(4.0 * (COLOURS[1] - img[35, 45]) / 255.0)
    assert 0.05 < distance < 0.5  # inside the default lost_threshold (0.5)
    _, kp = _send(io, pubs, img)
    assert np.isfinite(kp["uv"]).all() and abs(kp["score"][1] - 1.0) > 1e-3
    try:
        assert io.set_parameter(fqn, "lost_threshold", float(distance / 2)).successful
        assert io.set_parameter(fqn, "marker_scale", 0.07).successful
        stamp, kp = _send(io, pubs, img)
        assert np.isnan(kp["uv"][1]).all() and kp["score"][1] == 0, kp  # green is now beyond the threshold
        np.testing.assert_array_equal(kp["uv"][[0, 2]], np.array([pos[0], pos[2]], np.float32))
        assert io.wait_for(lambda: any(stamp_of(a.markers[0]) == stamp for a in io.received["/tracker/keypoints/markers"]), 5)
        markers = [a for a in io.messages("/tracker/keypoints/markers") if stamp_of(a.markers[0]) == stamp][-1].markers
        spheres = [m for m in markers if m.type == Marker.SPHERE]
        assert spheres and all(abs(m.scale.x - 0.07) < 1e-9 for m in spheres)
    finally:
        assert io.set_parameter(fqn, "lost_threshold", 0.5).successful
        assert io.set_parameter(fqn, "marker_scale", 0.02).successful
    _, kp = _send(io, pubs, img)
    assert np.isfinite(kp["uv"]).all()
