"""In-place parsing of serialised sensor_msgs/Image against the rosbags deserialiser."""
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from depth_nodes.image_encodings import decode_image
from depth_training.bags.image_wire import parse_image


def make(ts, ros1, frame_id, encoding, h, w, step, data, stamp=(17, 5)):
    T = ts.types
    hdr = dict(stamp=T["builtin_interfaces/msg/Time"](sec=stamp[0], nanosec=stamp[1]), frame_id=frame_id)
    if ros1:
        hdr["seq"] = 9
    return T["sensor_msgs/msg/Image"](header=T["std_msgs/msg/Header"](**hdr), height=h, width=w, encoding=encoding,
                                      is_bigendian=0, step=step, data=np.frombuffer(data, np.uint8))


CASES = [("cam", "rgb8", 2, 3, 9), ("a_longer_frame_id_x", "16UC1", 3, 2, 5), ("", "mono8", 1, 1, 1),
         ("f", "32FC1", 2, 2, 8)]


@pytest.mark.parametrize("fmt", ["cdr-le", "cdr-be", "ros1"])
@pytest.mark.parametrize("frame_id,encoding,h,w,step", CASES)
def test_parse_matches_deserialiser(fmt, frame_id, encoding, h, w, step):
    ros1 = fmt == "ros1"
    ts = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_KILTED)
    data = bytes(np.arange(h * step, dtype=np.uint8))
    msg = make(ts, ros1, frame_id, encoding, h, w, step, data)
    if ros1:
        raw = ts.serialize_ros1(msg, msg.__msgtype__)
        ref = ts.deserialize_ros1(raw, msg.__msgtype__)
    else:
        raw = ts.serialize_cdr(msg, msg.__msgtype__, little_endian=fmt == "cdr-le")
        ref = ts.deserialize_cdr(raw, msg.__msgtype__)
    got = parse_image(bytes(raw), ros1)
    assert got is not None
    assert got.header.stamp_ns == 17 * 10**9 + 5 and got.header.frame_id == ref.header.frame_id == frame_id
    assert (got.height, got.width, got.encoding, got.is_bigendian, got.step) == \
        (ref.height, ref.width, ref.encoding, ref.is_bigendian, ref.step)
    assert bytes(got.data) == ref.data.tobytes() == data
    np.testing.assert_array_equal(decode_image(got), decode_image(ref))


@pytest.mark.parametrize("ros1", [False, True])
def test_truncated_or_foreign_bytes_give_none(ros1):
    ts = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_KILTED)
    msg = make(ts, ros1, "cam", "rgb8", 2, 2, 6, bytes(12))
    raw = bytes(ts.serialize_ros1(msg, msg.__msgtype__) if ros1 else ts.serialize_cdr(msg, msg.__msgtype__))
    for cut in (3, 10, 20, len(raw) - 1):
        assert parse_image(raw[:cut], ros1) is None
    if not ros1:
        assert parse_image(b"\x00\x03" + raw[2:], ros1) is None  # PL_CDR encapsulation: not handled here
