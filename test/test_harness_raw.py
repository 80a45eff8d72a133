"""The harness's raw collection (benchmarks): stamps read from the serialized messages."""
import os

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from visualization_msgs.msg import Marker, MarkerArray

from depth_nodes.ros.harness import RawSample, RosIO, raw_stamp, raw_stamp_offset, stamp_of
from depth_nodes.ros.messages import cloud_to_msg
from node_inputs import header, image_msg


def test_stamp_offsets():
    assert raw_stamp_offset(Image) == raw_stamp_offset(PointCloud2) == raw_stamp_offset(CameraInfo) == 4
    assert raw_stamp_offset(MarkerArray) == 8
    from geometry_msgs.msg import Point
    with pytest.raises(ValueError, match="Point"):
        raw_stamp_offset(Point)
    # little-endian CDR: encapsulation 00 01 00 00, then sec (int32), nanosec (uint32)
    data = bytes([0, 1, 0, 0]) + (-2).to_bytes(4, "little", signed=True) + (7).to_bytes(4, "little")
    assert raw_stamp(data, 4) == -2 * 10**9 + 7 and raw_stamp(data[:8], 4) == -1
    big = bytes([0, 0, 0, 0]) + (3).to_bytes(4, "big", signed=True) + (9).to_bytes(4, "big")
    assert raw_stamp(big, 4) == 3 * 10**9 + 9


def test_raw_collection_sees_the_stamps_of_real_messages():
    assert os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST"
    io = RosIO("raw_harness_test")
    try:
        topics = {"img": Image, "cloud": PointCloud2, "markers": MarkerArray}
        pubs = {t: io.publisher(typ, f"/raw_test/{t}") for t, typ in topics.items()}
        for t, typ in topics.items():
            io.collect(typ, f"/raw_test/{t}", raw=True)
        stamp = 1_700_000_123_456_789_012
        img = image_msg(np.zeros((480, 640, 3), np.uint8), "rgb8", stamp)
        cloud = cloud_to_msg(np.zeros((4, 5, 4), np.float32), header(stamp))
        markers = MarkerArray(markers=[Marker(header=header(stamp), id=i) for i in range(3)])

        def arrived():
            return all(any(stamp_of(m) == stamp for m in io.received[f"/raw_test/{t}"]) for t in topics)

        for _ in range(100):
            for t, msg in (("img", img), ("cloud", cloud), ("markers", markers)):
                pubs[t].publish(msg)
            if io.wait_for(arrived, 0.1):
                break
        assert arrived()
        got = io.messages("/raw_test/img")[-1]
        assert isinstance(got, RawSample) and got.nbytes > 640 * 480 * 3
    finally:
        io.close()
