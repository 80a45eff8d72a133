"""``depth-nodes play``: a real player process publishes bags (MCAP, sqlite3, ROS 1) to a real subscriber."""
from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from std_msgs.msg import String

from depth_nodes.cli import UserError
from depth_nodes.ros.harness import RosIO, VENV_BIN
from depth_nodes.tools.play import parse_min_subscribers, parse_remaps

TS = get_typestore(Stores.ROS2_KILTED)
T0 = 1_700_000_000_000_000_000
N = 12
DT = 50_000_000  # 20 Hz


def _messages():
    Header, Time = TS.types["std_msgs/msg/Header"], TS.types["builtin_interfaces/msg/Time"]
    ImageT, StringT = TS.types["sensor_msgs/msg/Image"], TS.types["std_msgs/msg/String"]
    for i in range(N):
        t = T0 + i * DT
        data = np.full((4, 6), i, np.uint8)
        img = ImageT(header=Header(stamp=Time(sec=t // 10**9, nanosec=t % 10**9), frame_id="cam"),
                     height=4, width=6, encoding="mono8", is_bigendian=0, step=6, data=data.ravel())
        yield "/cam/image", "sensor_msgs/msg/Image", t, img
        yield "/note", "std_msgs/msg/String", t + 1000, StringT(data=f"note {i}")


def _write_rosbag2(path, storage):
    from rosbags.rosbag2 import StoragePlugin, Writer

    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    with Writer(path, version=9, storage_plugin=plugin) as w:
        conns = {}
        for topic, typ, t, msg in _messages():
            if topic not in conns:
                conns[topic] = w.add_connection(topic, typ, typestore=TS)
            w.write(conns[topic], t, TS.serialize_cdr(msg, typ))


def _write_ros1(path):
    from rosbags.rosbag1 import Writer

    ts1 = get_typestore(Stores.ROS1_NOETIC)
    with Writer(path) as w:
        conns = {}
        for topic, typ, t, msg in _messages():
            if topic not in conns:
                conns[topic] = w.add_connection(topic, typ, typestore=ts1)
            if typ == "sensor_msgs/msg/Image":
                H = ts1.types["std_msgs/msg/Header"]
                msg = ts1.types[typ](header=H(seq=0, stamp=msg.header.stamp, frame_id="cam"), height=4, width=6,
                                     encoding="mono8", is_bigendian=0, step=6, data=msg.data)
            w.write(conns[topic], t, ts1.serialize_ros1(msg, typ))


@pytest.fixture(scope="module")
def io():
    io = RosIO("play_test_io")
    yield io
    io.close()


def _play(*args):
    return subprocess.run([str(VENV_BIN / "depth-nodes"), "play", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("kind", ["mcap", "sqlite3", "ros1"])
def test_plays_every_message_in_order_with_remap_and_clock(tmp_path, io, kind):
    bag = tmp_path / ("rec.bag" if kind == "ros1" else "rec")
    _write_ros1(bag) if kind == "ros1" else _write_rosbag2(bag, kind)
    topic = f"/{kind}/image"
    io.collect(Image, topic, depth=50)
    note = f"/{kind}/note"
    io.collect(String, note, depth=50)
    io.collect(Clock, "/clock", depth=50)
    r = _play(str(bag), "--remap", f"/cam/image:={topic}", "-m", f"/note:={note}", "--clock", "100",
              "--wait-for-subscribers", "10", "--rate", "2")
    assert r.returncode == 0, r.stderr
    assert "[playing] bag time" in r.stderr and f"{2 * N} msgs" in r.stderr and "(done)" in r.stderr
    assert io.wait_for(lambda: len(io.received[topic]) == N and len(io.received[note]) == N, 5)
    images = io.messages(topic)
    assert [int(np.frombuffer(bytes(m.data), np.uint8)[0]) for m in images] == list(range(N))
    assert images[3].header.stamp.sec * 10**9 + images[3].header.stamp.nanosec == T0 + 3 * DT
    assert images[0].encoding == "mono8" and images[0].header.frame_id == "cam"
    assert [m.data for m in io.messages(note)] == [f"note {i}" for i in range(N)]
    clock = [c.clock.sec * 10**9 + c.clock.nanosec for c in io.messages("/clock")]
    assert len(clock) >= 3 and clock == sorted(clock)
    assert T0 <= clock[0] and clock[-1] <= T0 + N * DT


def test_loop_repeats_from_the_offset(tmp_path, io):
    bag = tmp_path / "rec"
    _write_rosbag2(bag, "mcap")
    io.collect(Image, "/loop2/image", depth=100)
    proc = subprocess.Popen([str(VENV_BIN / "depth-nodes"), "play", str(bag), "--topics", "/cam/image",
                             "--remap", "/cam/image:=/loop2/image", "--start-offset", "0.4", "--loop",
                             "--wait-for-subscribers", "10", "--rate", "4"], stderr=subprocess.PIPE, text=True)
    try:
        # offset 0.4 s skips frames 0..7 (t < 0.4 s): each pass sends 8..11
        assert io.wait_for(lambda: len(io.received["/loop2/image"]) >= 12, 20)
    finally:
        proc.send_signal(2)
        _, err = proc.communicate(timeout=10)
    values = [int(np.frombuffer(bytes(m.data), np.uint8)[0]) for m in io.messages("/loop2/image")]
    # only frames 8..11, and after the first full pass each pass repeats them in order (the very first
    # message can be lost to discovery, which is not what this test is about)
    assert len(values) >= 12 and set(values) <= {8, 9, 10, 11}
    first = values.index(8)
    assert first <= 3 and values[first:first + 8] == [8, 9, 10, 11] * 2
    assert proc.returncode == 130 and "loop" in err and "(interrupted)" in err


def test_bad_arguments_give_one_line_errors(tmp_path):
    r = _play(str(tmp_path / "missing.mcap"))
    assert r.returncode == 2 and "missing.mcap: no such file" in r.stderr and "Traceback" not in r.stderr
    junk = tmp_path / "junk.bag"
    junk.write_bytes(b"not a bag at all")
    r = _play(str(junk))
    assert r.returncode == 2 and "junk.bag: cannot open" in r.stderr and "Traceback" not in r.stderr
    bag = tmp_path / "rec"
    _write_rosbag2(bag, "mcap")
    r = _play(str(bag), "--topics", "/nope")
    assert r.returncode == 2 and "no topic /nope" in r.stderr and "/cam/image" in r.stderr
    r = _play(str(bag), "--start-offset", "100")
    assert r.returncode == 2 and "past the end" in r.stderr
    with pytest.raises(UserError, match="expected FROM:=TO"):
        parse_remaps(["/a=/b"])
    assert parse_remaps(["/a:=/b"]) == {"/a": "/b"}
    assert parse_min_subscribers(["/cam/image=2", "/x=1"]) == {"/cam/image": 2, "/x": 1}
    for bad in ("/cam/image", "/cam/image=0", "=2", "/cam/image=two"):
        with pytest.raises(UserError, match="expected TOPIC=N"):
            parse_min_subscribers([bad])
    r = _play(str(bag), "--min-subscribers", "/cam/image=2")
    assert r.returncode == 2 and "needs --wait-for-subscribers" in r.stderr
    r = _play(str(bag), "--wait-for-subscribers", "1", "--min-subscribers", "/nope=2")
    assert r.returncode == 2 and "/nope is not a topic being played" in r.stderr


def test_min_subscribers_waits_for_a_second_subscriber(tmp_path):
    """Two nodes take the same camera, one starts later: with --min-subscribers TOPIC=2 playback
    starts only once both are matched, and both get every message; with one of two, it says so."""
    bag = tmp_path / "rec"
    _write_rosbag2(bag, "mcap")
    first, second = RosIO("play_min_first"), RosIO("play_min_second")
    try:
        first.collect(Image, "/min/image", depth=50)
        proc = subprocess.Popen([str(VENV_BIN / "depth-nodes"), "play", str(bag), "--topics", "/cam/image", "--remap",
                                 "/cam/image:=/min/image", "--wait-for-subscribers", "20", "--min-subscribers",
                                 "/cam/image=2"], stderr=subprocess.PIPE, text=True)
        time.sleep(3.0)  # the first subscriber is matched by now: playback must still be waiting
        assert len(first.received["/min/image"]) == 0 and proc.poll() is None
        second.collect(Image, "/min/image", depth=50)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        for io in (first, second):
            assert io.wait_for(lambda io=io: len(io.received["/min/image"]) == N, 5), len(io.received["/min/image"])
        r = _play(str(bag), "--topics", "/cam/image", "--remap", "/cam/image:=/min/image", "--wait-for-subscribers",
                  "4", "--min-subscribers", "/cam/image=3", "-q")
        assert r.returncode == 0 and "after 4 s /cam/image has 2 of 3 subscribers; playing anyway" in r.stderr, r.stderr
        assert "[rcl]" not in r.stderr  # our --remap is not handed to rcl as its own (deprecated) remap rule
    finally:
        first.close()
        second.close()


def test_help_is_whole_sentences_and_sigterm_stops_without_a_traceback(tmp_path):
    """Issue 20 item 10: ``play --help`` stopped mid-sentence; SIGTERM printed an RCLError traceback."""
    r = _play("--help")
    description = r.stdout.split("\n\n")[1]
    assert r.returncode == 0 and description.rstrip().endswith(".") and "SIGTERM" in description
    bag = tmp_path / "rec"
    _write_rosbag2(bag, "mcap")
    proc = subprocess.Popen([str(VENV_BIN / "depth-nodes"), "play", str(bag), "--topics", "/cam/image", "--loop"],
                            stderr=subprocess.PIPE, text=True)
    try:
        note = proc.stderr.readline()  # the transport set-up line, then
        first = proc.stderr.readline()  # the first progress line: rclpy is up and publishing
        proc.send_signal(15)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert note.startswith("depth-nodes play: Fast DDS") and "[playing]" in first, (note, first)
    assert proc.returncode == 143 and "Traceback" not in err and "(interrupted)" in err, err
