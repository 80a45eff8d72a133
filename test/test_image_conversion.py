"""The node-side glue on real rclpy messages: numpy -> Image -> numpy, CompressedImage, errors,
and cv_bridge agreement where cv_bridge is installed."""
import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from depth_nodes.image_encodings import ENCODINGS
from depth_nodes.ros.image_conversion import (
    ImageConversionError,
    compressed_to_numpy,
    have_cv_bridge,
    image_to_numpy,
    numpy_to_image,
)

rng = np.random.default_rng(1)


def sample(encoding, h=6, w=9):
    dtype, c = ENCODINGS[encoding]
    shape = (h, w) if c == 1 else (h, w, c)
    if dtype == np.float32:
        return rng.uniform(0, 10, shape).astype(np.float32)
    return rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_rclpy_message_round_trip(encoding):
    array = sample(encoding)
    header = Header(frame_id="cam")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = numpy_to_image(array, encoding, header)
    assert isinstance(msg, Image)
    assert (msg.height, msg.width, msg.encoding) == (6, 9, encoding)
    assert msg.header.frame_id == "cam" and msg.header.stamp.nanosec == 345
    assert len(msg.data) == msg.step * msg.height
    out = image_to_numpy(msg, use_cv_bridge=False)
    assert out.dtype == array.dtype and np.array_equal(out, array)


def test_padded_big_endian_message_from_another_machine():
    # A mono16 image from a big-endian publisher with 4 bytes of padding per row.
    array = sample("mono16", 4, 5)
    rows = [array[r].astype(">u2").tobytes() + b"\xee" * 4 for r in range(4)]
    msg = Image(height=4, width=5, encoding="mono16", is_bigendian=1, step=14, data=b"".join(rows))
    assert np.array_equal(image_to_numpy(msg, use_cv_bridge=False), array)


def test_compressed_png_and_jpeg():
    bgr = rng.integers(0, 255, (16, 24, 3), dtype=np.uint8)
    ok, png = cv2.imencode(".png", bgr)
    msg = CompressedImage(format="bgr8; png compressed bgr8", data=png.tobytes())
    arr, enc = compressed_to_numpy(msg)
    assert enc == "bgr8" and np.array_equal(arr, bgr)
    ok, jpg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    arr, enc = compressed_to_numpy(CompressedImage(format="jpeg", data=jpg.tobytes()))
    assert arr.shape == (16, 24, 3)


@pytest.mark.parametrize(
    "fields, match",
    [
        (dict(height=4, width=5, encoding="rgb8", step=15, data=b"\0" * 59), "data"),
        (dict(height=4, width=5, encoding="yuv422_yuy2", step=10, data=b"\0" * 40), "encoding"),
        (dict(height=0, width=5, encoding="mono8", step=5, data=b""), "height"),
        (dict(height=4, width=5, encoding="rgb8", step=10, data=b"\0" * 40), "step"),
    ],
)
def test_inconsistent_messages_name_the_field(fields, match):
    with pytest.raises(ImageConversionError, match=match):
        image_to_numpy(Image(**fields))


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "mono16", "16UC1", "32FC1"])
def test_cv_bridge_and_our_codec_agree(encoding):
    if not have_cv_bridge():
        pytest.skip("cv_bridge is not installed (pip ROS wheels); runs on a full ROS install")
    array = sample(encoding)
    msg = numpy_to_image(array, encoding)
    assert np.array_equal(image_to_numpy(msg, use_cv_bridge=True), image_to_numpy(msg, use_cv_bridge=False))
