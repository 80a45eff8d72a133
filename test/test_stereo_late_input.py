"""The stereo node says when its inputs arrive late: a set stamped 2 s before it is published is
reported with its age at arrival (one throttled line per input), a fresh one is not."""
from __future__ import annotations

import re
import time
from pathlib import Path

from sensor_msgs.msg import CameraInfo, Image

from depth_nodes.ros.harness import NodeProcess, RosIO, stamp_of, stereo_messages
from depth_nodes.ros.input_age import input_age_s, late_input_message
from depth_nodes.synthetic import default_scene

REPO = Path(__file__).resolve().parents[1]
INPUTS = ("left/image_rect", "left/camera_info", "right/image_rect", "right/camera_info")


def test_age_and_message():
    assert input_age_s(5_250_000_000, 3_000_000_000) == 2.25
    assert input_age_s(1, 2) < 0
    big = late_input_message("/cam/left", 2.9, 0.5, 1_111_500)
    assert big.startswith("input /cam/left (1.1 MB) arrived 2.900 s after its stamp (late_input_s 0.5)")
    assert "config/fastdds_shm.xml" in big
    assert "clocks that differ" in late_input_message("/cam/left/camera_info", 0.7, 0.5)
    # beyond a minute it is no transport delay: a recording's clock (the README's quick start plays without --clock)
    old = late_input_message("/stereo/left/image_rect", 96_662_391.6, 0.5, 230_400)
    assert old.startswith("input /stereo/left/image_rect (0.2 MB) is stamped 96662392 s (1118.8 days) before this "
                          "node's clock"), old
    assert "--clock" in old and "use_sim_time:=true" in old and "heartbeat" not in old and "slow publisher" not in old
    assert "days" not in late_input_message("/cam/left", 61.0, 0.5) and "another clock" in late_input_message("/cam/left", 61.0, 0.5)
    assert "another clock" not in late_input_message("/cam/left", 59.0, 0.5, 2_000_000)


def test_late_inputs_are_reported_with_their_age(tmp_path):
    scene = default_scene(160, 120, seed=1)
    node = NodeProcess("stereo_depth_node", "--params-file", str(REPO / "config/stereo_depth.yaml"),
                       "-p", "disparity_range:=32", "-p", "input_qos:=reliable", "-p", "report_period_s:=0.0",
                       log_path=tmp_path / "node.log")
    io = RosIO("late_input_test_io")
    try:
        pubs = [io.publisher(Image if "image" in t else CameraInfo, t) for t in INPUTS]
        io.collect(Image, "depth/image")
        assert node.wait_for_log("matching with", 20), node.log()

        def serve(age_ns):
            """Publish sets stamped ``age_ns`` before now (a new stamp each try) until one is served."""
            sent = []
            have = lambda: any(stamp_of(m) in sent for m in io.received["depth/image"])  # noqa: E731
            deadline = time.monotonic() + 20
            while not have() and time.monotonic() < deadline:
                sent.append(time.time_ns() - age_ns)
                for pub, msg in zip(pubs, stereo_messages(scene, sent[-1])):
                    pub.publish(msg)
                io.wait_for(have, 0.3)
            return have()

        assert serve(0), node.log()  # fresh: served, nothing late
        assert "after its stamp" not in node.log(), node.log()
        assert serve(2_000_000_000), node.log()  # stamped 2 s ago: still served, and reported
        assert node.wait_for_log("after its stamp", 5), node.log()
        ages = {topic: float(age) for topic, age in
                re.findall(r"input (/\S+)(?: \([\d.]+ MB\))? arrived ([\d.]+) s after its stamp", node.log())}
        assert set(ages) == {"/" + t for t in INPUTS}, node.log()
        assert all(1.9 < a < 15 for a in ages.values()), ages
    finally:
        io.close()
        assert node.stop() == 0, node.log()
