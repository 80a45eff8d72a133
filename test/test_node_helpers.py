"""Node-side helpers shared by the nodes (no DDS): --help and --params-file checks, the silent-input
watchdog, the cv_bridge round-trip probe and the unmatched-message accounting for message_filters."""
import io
import random
from types import SimpleNamespace

import numpy as np
import pytest

from depth_nodes.image_encodings import ENCODINGS, decode_image
from depth_nodes.ros.cv_bridge_probe import probe_cv_bridge
from depth_nodes.ros.input_watchdog import InputWatchdog, silent_input_message
from depth_nodes.ros.node_cli import NodeUsage, handle_command_line, params_file_problems, usage_text
from depth_nodes.ros.params import ParamSpec
from depth_nodes.ros.sync import TimeSynchronizer
from depth_nodes.ros.sync_accounting import UnmatchedCounter, attach_unmatched_counter

USAGE = NodeUsage("demo_node", "Does things.", [("image", "sensor_msgs/Image", "rgb8")],
                  [("depth/image", "sensor_msgs/Image", "")],
                  [ParamSpec("rate", 2.0, "Frames per second.", 0.1, 10.0, dynamic=True),
                   ParamSpec("mode", "fast", "How.", choices=("fast", "slow"))])


def test_usage_lists_topics_and_every_parameter():
    text = usage_text(USAGE)
    assert text.startswith("usage: demo_node")
    for needle in ("image  sensor_msgs/Image  (rgb8)", "depth/image", "rate * default 2.0 [0.1..10]: Frames",
                   "mode   default 'fast' {fast, slow}: How."):
        assert needle in text, (needle, text)


def test_help_prints_usage_and_returns_0(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    assert handle_command_line(["demo_node", "--help"], USAGE, out, err) == 0
    assert "parameters" in out.getvalue() and err.getvalue() == ""
    # a --help inside --ros-args belongs to rcl, not to us
    assert handle_command_line(["demo_node", "--ros-args", "-p", "rate:=1.0"], USAGE, out, err) is None


def test_params_file_problems_are_one_line_each(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("/**:\n  ros__parameters: [\n")
    good = tmp_path / "good.yaml"
    good.write_text("/**:\n  ros__parameters:\n    rate: 1.0\n")
    assert params_file_problems(["--ros-args", "--params-file", str(good)]) == []
    problems = params_file_problems(["--ros-args", "--params-file", str(tmp_path / "missing.yaml"),
                                     "--params-file", str(bad), "--params-file", str(tmp_path)])
    assert problems == [f"--params-file {tmp_path / 'missing.yaml'}: no such file",
                        f"--params-file {bad}: not valid YAML at line 3",
                        f"--params-file {tmp_path}: not a file"]
    out, err = io.StringIO(), io.StringIO()
    assert handle_command_line(["demo_node", "--ros-args", "--params-file", "nope.yaml"], USAGE, out, err) == 2
    assert err.getvalue() == "demo_node: --params-file nope.yaml: no such file\n"


def test_watchdog_reports_each_silence_once():
    now = [0.0]
    dog = InputWatchdog(["a", "b"], 2.0, clock=lambda: now[0])
    now[0] = 1.0
    dog.mark(0)
    assert dog.silent() == []
    now[0] = 2.5
    (silent,) = dog.silent()
    assert (silent.topic, silent.ever_received, silent.silent_s) == ("b", False, 2.5)
    assert dog.silent() == []  # once per silence
    now[0] = 3.5
    (silent,) = dog.silent()
    assert (silent.topic, silent.ever_received) == ("a", True)
    dog.mark(1)
    now[0] = 5.6
    assert [s.topic for s in dog.silent()] == ["b"]  # quiet again after a message: reported again
    assert "check the remapping" in silent_input_message("/x/a", silent, 0)
    assert "1 publisher(s) seen" in silent_input_message("/x/a", silent, 1)


class _OwnCodecBridge:
    def imgmsg_to_cv2(self, msg, desired_encoding):
        return decode_image(msg)


class _Ros1LikeBridge(_OwnCodecBridge):
    """Returns 16-bit images as uint8, as PyPI's (ROS 1) cv-bridge does."""

    def imgmsg_to_cv2(self, msg, desired_encoding):
        out = decode_image(msg)
        return out.astype(np.uint8) if msg.encoding == "16UC1" else out


class _RaisingBridge(_OwnCodecBridge):
    def imgmsg_to_cv2(self, msg, desired_encoding):
        if msg.encoding == "rgb8":
            raise TypeError("buffer is too small for requested array")
        return super().imgmsg_to_cv2(msg, desired_encoding)


def test_cv_bridge_probe_accepts_only_exact_bridges():
    assert "16UC1" in ENCODINGS and "rgb8" in ENCODINGS
    assert probe_cv_bridge(_OwnCodecBridge()) is None
    assert probe_cv_bridge(_Ros1LikeBridge()).startswith("16UC1: got uint8")
    assert probe_cv_bridge(_RaisingBridge()) == "rgb8: TypeError: buffer is too small for requested array"


def _stream(rng, n):
    """Four inputs, stamps on a 50 ms grid with jitter, gaps, duplicates and late arrivals."""
    events = []
    for k in range(n):
        base = k * 50_000_000
        for i in range(4):
            if rng.random() < 0.15:
                continue  # lost
            stamp = base + (rng.choice([0, 0, 0, 3_000_000, 30_000_000]) if i >= 2 else 0)
            events.append((base + rng.random() * 40_000_000, i, stamp))
            if rng.random() < 0.05:
                events.append((base + 45_000_000, i, stamp))  # duplicate stamp
    events.sort()
    if n > 4:  # a few late messages
        for _ in range(3):
            j = rng.randrange(len(events) - 5)
            events[j], events[j + 4] = events[j + 4], events[j]
    return [(i, s) for _, i, s in events]


@pytest.mark.parametrize("seed", range(5))
def test_unmatched_counter_counts_like_our_synchroniser(seed):
    rng = random.Random(seed)
    counter = UnmatchedCounter(4, 3)
    sync = TimeSynchronizer(4, 3, 10_000_000, lambda *msgs: counter.emitted([m.stamp for m in msgs]))
    for i, stamp in _stream(rng, 60):
        counter.received(i, stamp)  # message_filters: the per-message hook runs before the synchroniser
        sync.add(i, SimpleNamespace(stamp=stamp), stamp)
    assert sync.emitted > 10 and sum(sync.unmatched) > 5
    assert counter.unmatched == sync.unmatched


def test_attach_unmatched_counter_hooks_the_per_message_mark():
    marks = []
    subs = SimpleNamespace(topics=["l", "r"], mark=lambda i, msg=None: marks.append(i))
    counter = attach_unmatched_counter(subs, 2)
    msg = lambda s: SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=s, nanosec=0)))  # noqa: E731
    for s in (1, 2, 3):
        subs.mark(0, msg(s))
    subs.mark(1, msg(3))
    counter.emitted([3_000_000_000, 3_000_000_000])
    assert marks == [0, 0, 0, 1]
    # stamp 1 pushed out of the 2-deep queue, stamp 2 dropped as stale when the set (3, 3) came out
    assert counter.unmatched == [2, 0]
