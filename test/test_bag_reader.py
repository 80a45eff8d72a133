"""open_bag on rosbag2 (MCAP, sqlite3, directory or single file) and ROS 1 bags; bad files."""
import os
import shutil

import numpy as np
import pytest

from depth_nodes.geometry.camera import PinholeCamera
from depth_training.bags import BagOpenError, BagTopicError, BagWarning, BagWriter, open_bag
from depth_training.bags.decode import CameraInfoTrack
from depth_training.cli import UserError

CAM = PinholeCamera(8, 6, [[10, 0, 3.5], [0, 12, 2.5], [0, 0, 1]])
T0 = 1_650_000_000_123_456_789


def write_small(path, fmt, n=5):
    with BagWriter(path, fmt) as w:
        for i in range(n):
            t = T0 + i * 50_000_000
            w.image("/cam/image", t, np.full((6, 8, 3), i, np.uint8), "rgb8", "cam")
            w.camera_info("/cam/info", t, CAM, "cam")
        w.string("/note", "hello", T0)
    return path


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("bags")
    return {"mcap": write_small(root / "m", "mcap"), "sqlite3": write_small(root / "s", "sqlite3"),
            "ros1": write_small(root / "r.bag", "ros1")}


@pytest.mark.parametrize("fmt,sub", [("mcap", None), ("mcap", "m.mcap"), ("sqlite3", None), ("sqlite3", "s.db3"),
                                     ("ros1", None)])
def test_reads_every_format(bags, fmt, sub):
    path = bags[fmt] / sub if sub else bags[fmt]
    with open_bag(path) as bag:
        assert bag.topics["/cam/image"].msgtype == "sensor_msgs/msg/Image"
        assert bag.topics["/cam/image"].count == 5 and bag.topics["/cam/image"].has_header
        assert bag.topics["/note"].msgtype == "std_msgs/msg/String" and not bag.topics["/note"].has_header
        assert bag.is_ros1 == (fmt == "ros1")
        assert bag.start_ns == T0 and bag.end_ns == T0 + 4 * 50_000_000
        raws = list(bag.raw_messages(["/cam/image"]))
        # header stamps read from the bytes equal the deserialised ones
        for i, raw in enumerate(raws):
            msg = bag.deserialize(raw)
            fast = bag.header_stamp_ns(raw)
            assert fast == msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == T0 + i * 50_000_000
        # camera_info: ROS 1 field names (K, P) and ROS 2 (k, p) give the same model
        track = CameraInfoTrack.from_bag(bag, "/cam/info")
        assert track.count == 5 and len(track.cameras) == 1  # unchanged calibration kept once
        np.testing.assert_array_equal(track.camera_at(T0).K, CAM.K)


def test_ros1_camera_info_uses_uppercase_fields(bags):
    with open_bag(bags["ros1"]) as bag:
        msg = bag.first_message("/cam/info")
        assert hasattr(msg, "K") and not hasattr(msg, "k")
        assert msg.header.seq == 0


def test_missing_path_and_unknown_format(tmp_path):
    with pytest.raises(BagOpenError, match="nope.mcap: no such file"):
        open_bag(tmp_path / "nope.mcap")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(BagOpenError, match="notes.txt: not a bag"):
        open_bag(tmp_path / "notes.txt")
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(BagOpenError, match="emptydir: not a rosbag2 directory"):
        open_bag(tmp_path / "emptydir")
    assert issubclass(BagOpenError, UserError)


@pytest.mark.parametrize("fmt,file", [("mcap", "m.mcap")])
def test_truncated_rosbag2_files_are_read_up_to_the_cut(bags, tmp_path, fmt, file):
    # (test_bag_recover.py covers the recovery itself: several cut points, zstd chunks, repair)
    dst = tmp_path / bags[fmt].name
    shutil.copytree(bags[fmt], dst)
    target = dst / file
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    for path in {dst, target}:
        with pytest.warns(BagWarning, match=rf"{path.name}: recording was cut off .*recovered \d+ complete messages"):
            bag = open_bag(path)
        with bag:
            assert 0 < bag.message_count < 10


def test_cut_before_the_first_message_names_the_file(bags, tmp_path):
    dst = tmp_path / "m"
    shutil.copytree(bags["mcap"], dst)
    (dst / "m.mcap").write_bytes((dst / "m.mcap").read_bytes()[:40])
    with pytest.raises(BagOpenError, match=r"m: cannot open: .*reading it up to the cut failed too: "
                                           r"nothing recoverable"):
        open_bag(dst)
    # this 7-page .db3 cut in half has lost its topics table (page 4) and its messages (page 6)
    dst = tmp_path / "s"
    shutil.copytree(bags["sqlite3"], dst)
    (dst / "s.db3").write_bytes((dst / "s.db3").read_bytes()[:3 * 4096 + 100])
    with pytest.raises(BagOpenError, match=r"s.db3: cannot open: .*corrupt or truncated sqlite3.*the topics table "
                                           r"is lost"):
        open_bag(dst / "s.db3")


@pytest.mark.parametrize("fmt,file,hint", [("ros1", None, "truncated")])
def test_truncated_files_name_the_file(bags, tmp_path, fmt, file, hint):
    src = bags[fmt]
    if file:
        dst = tmp_path / src.name
        shutil.copytree(src, dst)
        target = dst / file
    else:
        dst = target = tmp_path / src.name
        shutil.copy(src, dst)
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    for path in {dst, target}:
        with pytest.raises(BagOpenError) as exc:
            open_bag(path)
        assert str(path) in str(exc.value) and hint in str(exc.value)


@pytest.mark.parametrize("name", ["junk.mcap", "junk.db3", "junk.bag"])
def test_random_bytes_name_the_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(BagOpenError, match=rf"{name}: cannot open"):
        open_bag(path)


def test_empty_file(tmp_path):
    (tmp_path / "e.mcap").write_bytes(b"")
    with pytest.raises(BagOpenError, match="e.mcap: cannot open.*empty"):
        open_bag(tmp_path / "e.mcap")


def test_directory_without_metadata_reads_the_single_file_with_a_warning(bags, tmp_path):
    dst = tmp_path / "nometa"
    shutil.copytree(bags["mcap"], dst)
    os.remove(dst / "metadata.yaml")
    with pytest.warns(BagWarning, match="metadata.yaml is missing"):
        bag = open_bag(dst)
    with bag:
        assert bag.topics["/cam/image"].count == 5


def test_topic_of_wrong_type_missing_or_empty(bags):
    with open_bag(bags["mcap"]) as bag:
        with pytest.raises(BagTopicError, match=r"/note \(image\): has type std_msgs/msg/String, expected"):
            bag.require_topic("/note", ["sensor_msgs/msg/Image"], "image")
        with pytest.raises(BagTopicError, match=r"/camera/color/image_raw \(color\): topic not in the bag; "
                                                r"topics of type sensor_msgs/msg/Image in the bag: /cam/image"):
            bag.require_topic("/camera/color/image_raw", ["sensor_msgs/msg/Image"], "color")
        with pytest.raises(BagTopicError, match=r"m: /cam/info: no camera_info|has type"):
            CameraInfoTrack.from_bag(bag, "/cam/image")


def test_bag_without_messages_warns(tmp_path):
    with BagWriter(tmp_path / "empty", "mcap"):
        pass
    with pytest.warns(BagWarning, match="empty: no messages are indexed"):
        bag = open_bag(tmp_path / "empty")
    with bag:
        assert bag.message_count == 0 and bag.topics == {}


def test_ros1_bag_that_was_never_closed(tmp_path):
    writer = BagWriter(tmp_path / "live.bag", "ros1").__enter__()
    for i in range(200):
        writer.image("/cam/image", T0 + i * 10_000_000, np.zeros((60, 80, 3), np.uint8), "rgb8", "cam")
    shutil.copy(tmp_path / "live.bag", tmp_path / "crashed.bag")  # what a killed recorder leaves behind
    writer.__exit__(None, None, None)
    with pytest.raises(BagOpenError, match=r"crashed.bag: cannot open: .*not indexed.*rosbag reindex"):
        open_bag(tmp_path / "crashed.bag")
