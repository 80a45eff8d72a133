"""stereo_depth_node's command line, start-up, shutdown and robot-only code paths, with a real node
process over DDS: --help, a missing --params-file, every bad parameter at once, the resolved topics
and silent inputs in the log, Ctrl-C in the middle of a frame, and PyPI's cv-bridge (the ROS 1 one)
on the Python path (the node must notice it is wrong and serve correct frames with its own codec)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_nodes.geometry.pointcloud import unpack_rgb
from depth_nodes.image_encodings import decode_image
from depth_nodes.ros.harness import NodeProcess, RosIO, stamp_of, stereo_messages
from depth_nodes.ros.image_conversion import numpy_to_image
from depth_nodes.synthetic import default_scene

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "config/stereo_depth.yaml")
EXE = str(Path(sys.executable).parent / "stereo_depth_node")
INPUTS = ("left/image_rect", "left/camera_info", "right/image_rect", "right/camera_info")


def test_help_prints_parameters_and_topics_without_starting_the_node():
    run = subprocess.run([EXE, "--help"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert out.startswith("usage: stereo_depth_node")
    for needle in ("left/image_rect", "right/camera_info", "points2", "depth/image", "sgbm_mode", "downscale",
                   "default '3way' {sgbm, 3way, hh, hh4}", "min_depth"):
        assert needle in out, needle
    assert "matching with" not in out + run.stderr  # the node did not start


def test_missing_params_file_is_one_line_and_exit_2(tmp_path):
    run = subprocess.run([EXE, "--ros-args", "--params-file", str(tmp_path / "missing.yaml")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr == f"stereo_depth_node: --params-file {tmp_path / 'missing.yaml'}: no such file\n"


def test_every_bad_parameter_is_named_at_once():
    run = subprocess.run([EXE, "--ros-args", "--params-file", CONFIG, "-p", "disparity_range:=100",
                          "-p", "sgbm_mode:=fast", "-p", "max_depth:=0.0", "-p", "output_qos:=bogus",
                          "-p", "correlation_window_size:=4"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    for name in ("disparity_range", "sgbm_mode", "max_depth", "output_qos", "correlation_window_size"):
        assert f"\n  {name}: " in run.stderr, (name, run.stderr)
    assert "Traceback" not in run.stderr


def _wait_matched(io, pubs, timeout=20.0):
    return io.wait_for(lambda: all(p.get_subscription_count() > 0 for p in pubs), timeout=timeout)


def test_start_up_logs_resolved_topics_and_silent_inputs_are_named(tmp_path):
    import threading

    io = RosIO("silent_test_io")
    # camera_info keeps arriving on one input (from before the node starts); the others stay silent.
    # 6 s: Fast DDS may take one 3 s announcement period to discover a peer
    pub = io.publisher(CameraInfo, "/cam/left/camera_info")
    info = stereo_messages(default_scene(64, 48), time.time_ns())[1]
    stop = threading.Event()

    def keep_publishing():
        while not stop.wait(0.1):
            pub.publish(info)

    thread = threading.Thread(target=keep_publishing, daemon=True)
    thread.start()
    node = NodeProcess("stereo_depth_node", "--params-file", CONFIG, "-r", "__ns:=/cam",
                       "-r", "left/image_rect:=/typo/left", "-p", "report_period_s:=6.0", log_path=tmp_path / "n.log")
    try:
        assert node.wait_for_log("outputs:", 20), node.log()
        assert ("inputs: /typo/left, /cam/left/camera_info, /cam/right/image_rect, /cam/right/camera_info; "
                "outputs: /cam/disparity, /cam/depth/image, /cam/depth/camera_info, /cam/points2") in node.log()
        assert "image conversion: built-in" in node.log()
        assert node.wait_for_log("nothing received on /cam/right/image_rect for", 15), node.log()
        time.sleep(0.5)
        log = node.log()
        assert "nothing received on /typo/left for" in log and "no publisher on this topic" in log, log
        assert "nothing received on /cam/left/camera_info" not in log, log
    finally:
        stop.set()
        thread.join(2)
        io.close()
        assert node.stop() == 0, node.log()


def test_sigint_during_a_frame_exits_cleanly(tmp_path):
    """A slow frame (1280x720, full 8-direction DP, 256 disparities) is in the matcher when SIGINT comes."""
    scene = default_scene(1280, 720, seed=1)
    node = NodeProcess("stereo_depth_node", "--params-file", CONFIG, "-p", "sgbm_mode:=hh",
                       "-p", "disparity_range:=256", "-p", "input_qos:=reliable",
                       "--log-level", "stereo_depth_node:=debug", log_path=tmp_path / "sigint.log")
    io = RosIO("sigint_test_io")
    try:
        pubs = [io.publisher(Image if "image" in t else CameraInfo, t) for t in INPUTS]
        io.collect(PointCloud2, "points2")
        assert node.wait_for_log("matching with", 20), node.log()
        assert _wait_matched(io, pubs), node.log()
        stamp = time.time_ns()
        msgs = stereo_messages(scene, stamp, encoding="mono8")
        started = f"frame {stamp // 10**9}.{stamp % 10**9:09d}: started"
        deadline = time.monotonic() + 20
        while started not in node.log() and time.monotonic() < deadline:
            for p, m in zip(pubs, msgs):
                p.publish(m)
            node.wait_for_log(started, 1.0)
        assert started in node.log(), node.log()
        node.proc.send_signal(signal.SIGINT)
        in_flight = f"frame {stamp // 10**9}.{stamp % 10**9:09d}: decode" not in node.log()
        code = node.proc.wait(30)
    finally:
        io.close()
        node.stop()
    log = node.log()
    assert in_flight, "the frame had finished before SIGINT: the test did not test anything"
    assert code == 0, log
    for bad in ("ERROR", "unexpected", "Traceback", "RCLError", "context is invalid"):
        assert bad not in log, log


def _pip_install_cv_bridge(target: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check",
                          "--target", str(target), "cv-bridge==1.13.0.post0"], capture_output=True, text=True,
                         timeout=180)
    if run.returncode != 0:
        pytest.skip(f"PyPI's cv-bridge cannot be installed here: {run.stderr.strip().splitlines()[-1:]}")


def test_pypi_cv_bridge_is_rejected_and_frames_stay_correct(tmp_path, monkeypatch):
    target = tmp_path / "site"
    _pip_install_cv_bridge(target)
    assert (target / "cv_bridge" / "__init__.py").exists()
    scene = default_scene(320, 240, seed=3)
    with monkeypatch.context() as env:  # the node process sees cv_bridge; this process does not
        env.setenv("PYTHONPATH", os.pathsep.join([str(target)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        node = NodeProcess("stereo_depth_node", "--params-file", CONFIG, "-p", "disparity_range:=64",
                           log_path=tmp_path / "bridge.log")
    io = RosIO("bridge_test_io")
    try:
        pubs = [io.publisher(Image if "image" in t else CameraInfo, t) for t in INPUTS]
        io.collect(PointCloud2, "points2")
        io.collect(Image, "depth/image")
        assert node.wait_for_log("image conversion:", 20), node.log()
        line = [t for t in node.log().splitlines() if "image conversion:" in t][0]
        assert f"built-in; the cv_bridge at {target}" in line and "fails the round-trip check" in line, line
        assert _wait_matched(io, pubs), node.log()
        fB = scene.left_camera.fx * 0.12
        grey16 = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257 for im in (scene.left, scene.right)]
        for encoding in ("rgb8", "mono16"):
            stamp = time.time_ns()
            msgs = list(stereo_messages(scene, stamp))
            if encoding == "mono16":
                msgs[0] = numpy_to_image(grey16[0], "mono16", msgs[0].header)
                msgs[2] = numpy_to_image(grey16[1], "mono16", msgs[2].header)
            have = lambda: any(stamp_of(m) == stamp for m in io.received["depth/image"])  # noqa: E731
            deadline = time.monotonic() + 15
            while not have() and time.monotonic() < deadline:
                for p, m in zip(pubs, msgs):
                    p.publish(m)
                io.wait_for(have, 1.0)
            assert have(), (encoding, node.log())
            depth = decode_image([m for m in io.messages("depth/image") if stamp_of(m) == stamp][0])
            mask = cv2.erode((scene.depth == 2.0).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
            mask &= np.isfinite(depth)
            assert mask.sum() > 200 and abs(np.median(fB / depth[mask]) - fB / 2.0) < 0.35, encoding
            if encoding == "rgb8":
                cloud = [m for m in io.messages("points2") if stamp_of(m) == stamp][0]
                rgb = np.frombuffer(bytes(cloud.data), np.float32).reshape(240, 320, 4)[..., 3]
                np.testing.assert_array_equal(unpack_rgb(rgb), scene.left)
        assert "bad image" not in node.log() and "unexpected" not in node.log(), node.log()
    finally:
        io.close()
        assert node.stop() == 0, node.log()


# A stand-in for ROS 2's message_filters (absent from the pip-installed ROS 2): the same API
# (Subscriber, TimeSynchronizer, ApproximateTimeSynchronizer, registerCallback) with matching done
# by our TimeSynchronizer. Like the real one it exposes no unmatched counter to the node.
_FAKE_MESSAGE_FILTERS = '''
class Subscriber:
    def __init__(self, node, msg_type, topic, qos_profile=None, **kwargs):
        self._callbacks = []
        self.sub = node.create_subscription(msg_type, topic, self._signal, qos_profile, **kwargs)

    def registerCallback(self, cb, *args):
        self._callbacks.append((cb, args))

    def _signal(self, msg):
        for cb, args in self._callbacks:
            cb(msg, *args)


class _Sync:
    def __init__(self, filters, queue_size, slop=None):
        from depth_nodes.ros.sync import TimeSynchronizer as _Ours  # imported here: sync.py imports us

        self._callbacks = []
        slop_ns = None if slop is None else int(round(slop * 1e9))
        self._sync = _Ours(len(filters), queue_size, slop_ns, self._emit)
        for i, f in enumerate(filters):
            f.registerCallback(lambda msg, i=i: self._sync.add(i, msg))

    def registerCallback(self, cb, *args):
        self._callbacks.append((cb, args))

    def _emit(self, *msgs):
        for cb, args in self._callbacks:
            cb(*msgs, *args)


class TimeSynchronizer(_Sync):
    def __init__(self, filters, queue_size):
        super().__init__(filters, queue_size, None)


class ApproximateTimeSynchronizer(_Sync):
    def __init__(self, filters, queue_size, slop, allow_headerless=False):
        super().__init__(filters, queue_size, slop)
'''


def test_unsynchronised_inputs_are_diagnosed_on_the_message_filters_path_too(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "message_filters").mkdir(parents=True)
    (site / "message_filters" / "__init__.py").write_text(_FAKE_MESSAGE_FILTERS)
    scene = default_scene(160, 120, seed=2)
    with monkeypatch.context() as env:
        env.setenv("PYTHONPATH", os.pathsep.join([str(site)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        node = NodeProcess("stereo_depth_node", "--params-file", CONFIG, "-p", "disparity_range:=32",
                           "-p", "report_period_s:=0.0", "-p", "input_qos:=reliable", log_path=tmp_path / "mf.log")
    io = RosIO("mf_test_io")
    try:
        pubs = [io.publisher(Image if "image" in t else CameraInfo, t) for t in INPUTS]
        io.collect(Image, "depth/image")
        assert node.wait_for_log("matching with", 20), node.log()
        assert "(message_filters)" in node.log(), node.log()
        assert _wait_matched(io, pubs), node.log()
        # a good set first: the message_filters path really serves frames
        stamp = time.time_ns()
        msgs = stereo_messages(scene, stamp)
        deadline = time.monotonic() + 10
        while not any(stamp_of(m) == stamp for m in io.received["depth/image"]) and time.monotonic() < deadline:
            for p, m in zip(pubs, msgs):
                p.publish(m)
            io.wait_for(lambda: any(stamp_of(m) == stamp for m in io.received["depth/image"]), 1.0)
        assert any(stamp_of(m) == stamp for m in io.messages("depth/image")), node.log()
        assert "dropped without a partner" not in node.log()
        # right stamps 50 ms after left (slop 10 ms): nothing pairs up
        for k in range(10):
            s = stamp + (k + 1) * 100_000_000
            left = stereo_messages(scene, s)
            right = stereo_messages(scene, s + 50_000_000)
            for p, m in zip(pubs, (left[0], left[1], right[2], right[3])):
                p.publish(m)
            time.sleep(0.05)
        assert node.wait_for_log("dropped without a partner", 5), node.log()
    finally:
        io.close()
        assert node.stop() == 0, node.log()
