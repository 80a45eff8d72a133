"""Image message <-> numpy: every encoding, row padding, byte order, and clear errors."""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from depth_nodes.image_encodings import (
    ENCODINGS,
    ImageConversionError,
    decode_compressed,
    decode_image,
    depth_to_metres,
    encode_image,
    to_rgb8,
)

rng = np.random.default_rng(0)


def sample(encoding, h=5, w=7):
    dtype, c = ENCODINGS[encoding]
    shape = (h, w) if c == 1 else (h, w, c)
    if dtype == np.float32:
        return rng.uniform(0, 10, shape).astype(np.float32)
    return rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_round_trip_every_encoding(encoding):
    arr = sample(encoding)
    enc = encode_image(arr, encoding)
    out = decode_image(enc)
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    assert out.flags.c_contiguous and out.flags.writeable


@pytest.mark.parametrize("encoding", ["rgb8", "mono16", "32FC1", "16UC1"])
def test_row_padding_is_skipped(encoding):
    arr = sample(encoding)
    enc = encode_image(arr, encoding)
    pad = 5
    rows = np.frombuffer(enc.data, np.uint8).reshape(arr.shape[0], enc.step)
    padded = np.concatenate([rows, np.full((arr.shape[0], pad), 0xAB, np.uint8)], axis=1)
    msg = SimpleNamespace(height=enc.height, width=enc.width, encoding=encoding, is_bigendian=enc.is_bigendian,
                          step=enc.step + pad, data=padded.tobytes())
    np.testing.assert_array_equal(decode_image(msg), arr)


def test_big_endian_data_is_swapped():
    arr = np.array([[1, 256], [0x1234, 65535]], dtype=np.uint16)
    msg = SimpleNamespace(height=2, width=2, encoding="16UC1", is_bigendian=1, step=4, data=arr.astype(">u2").tobytes())
    out = decode_image(msg)
    np.testing.assert_array_equal(out, arr)
    assert out.dtype == np.dtype("=u2")
    f = np.array([[1.5, -2.25]], dtype=np.float32)
    msg = SimpleNamespace(height=1, width=2, encoding="32FC1", is_bigendian=1, step=8, data=f.astype(">f4").tobytes())
    np.testing.assert_array_equal(decode_image(msg), f)


@pytest.mark.parametrize("fields,match", [
    (dict(encoding="yuv422"), "encoding: unsupported image encoding 'yuv422'"),
    (dict(height=0), "height/width: empty image"),
    (dict(step=10), "step: 10 bytes is smaller than one row"),
    (dict(data=b"\0" * 20), "data: 20 bytes, expected step\\*height = 21\\*5 = 105"),
])
def test_inconsistent_messages_name_the_field(fields, match):
    base = dict(height=5, width=7, encoding="rgb8", is_bigendian=0, step=21, data=b"\0" * 105)
    base.update(fields)
    with pytest.raises(ImageConversionError, match=match):
        decode_image(SimpleNamespace(**base))


def test_encode_rejects_mismatched_arrays():
    with pytest.raises(ImageConversionError, match="does not fit rgb8"):
        encode_image(np.zeros((4, 4), np.uint8), "rgb8")
    with pytest.raises(ImageConversionError, match="dtype"):
        encode_image(np.zeros((4, 4), np.float64), "32FC1")


def test_depth_to_metres_rep118():
    mm = np.array([[0, 1000, 65535]], dtype=np.uint16)
    np.testing.assert_allclose(depth_to_metres(mm, "16UC1"), [[np.nan, 1.0, 65.535]], equal_nan=True)
    m = np.array([[np.nan, 0.0, -1.0, np.inf, 2.5]], dtype=np.float32)
    np.testing.assert_allclose(depth_to_metres(m, "32FC1"), [[np.nan] * 4 + [2.5]], equal_nan=True)
    with pytest.raises(ImageConversionError, match="not a depth encoding"):
        depth_to_metres(mm, "rgb8")


def test_to_rgb8_channel_orders():
    rgb = sample("rgb8")
    np.testing.assert_array_equal(to_rgb8(rgb[:, :, ::-1].copy(), "bgr8"), rgb)
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(to_rgb8(rgba, "rgba8"), rgb)
    np.testing.assert_array_equal(to_rgb8(rgba[:, :, [2, 1, 0, 3]].copy(), "bgra8"), rgb)
    grey = sample("mono8")
    assert to_rgb8(grey, "mono8").shape == grey.shape + (3,)


def test_compressed_png_and_jpeg():
    bgr = sample("bgr8", 16, 16)
    ok, png = cv2.imencode(".png", bgr)
    arr, enc = decode_compressed(SimpleNamespace(format="bgr8; png compressed bgr8", data=png.tobytes()))
    assert enc == "bgr8"
    np.testing.assert_array_equal(arr, bgr)
    depth = rng.integers(0, 5000, (8, 8), dtype=np.uint16)
    ok, png16 = cv2.imencode(".png", depth)
    arr, enc = decode_compressed(SimpleNamespace(format="16UC1; png compressed", data=png16.tobytes()))
    assert enc == "16UC1"
    np.testing.assert_array_equal(arr, depth)
    smooth = np.full((16, 16, 3), 120, np.uint8)
    ok, jpg = cv2.imencode(".jpg", smooth)
    arr, enc = decode_compressed(SimpleNamespace(format="jpeg", data=jpg.tobytes()))
    assert enc == "bgr8" and np.abs(arr.astype(int) - 120).max() <= 2
    with pytest.raises(ImageConversionError, match="cannot decode"):
        decode_compressed(SimpleNamespace(format="jpeg", data=b"not an image"))


def test_every_node_names_the_same_encodings_by_their_ros_names():
    """Issue 20 item 10: the decoder listed every decodable encoding, the network pre-processing a
    different list with non-ROS names ('gray', 'rgb', '8uc1'); now each input says what it takes,
    in one order, and the node pages list the same."""
    from pathlib import Path
    from types import SimpleNamespace

    from depth_nodes.image_encodings import COLOR_ENCODINGS, ENCODINGS
    from depth_nodes.nodes.stereo_depth_node import STEREO_ENCODINGS
    from depth_nodes.pipelines.depth_io import DepthIOError, to_channels
    from depth_nodes.ros.image_conversion import image_to_numpy

    msg = SimpleNamespace(encoding="32FC1", height=2, width=2, step=8, data=bytes(16), is_bigendian=0)
    with pytest.raises(ImageConversionError) as decoded:
        image_to_numpy(msg, COLOR_ENCODINGS)
    with pytest.raises(DepthIOError) as preprocessed:
        to_channels(np.zeros((2, 2), np.float32), "32FC1", "RGB")
    assert str(decoded.value) == str(preprocessed.value) == (
        "encoding: unsupported image encoding '32FC1' (this input takes rgb8, bgr8, rgba8, bgra8, mono8)")
    for listed in (COLOR_ENCODINGS, STEREO_ENCODINGS):
        assert set(listed) <= set(ENCODINGS)
    docs = Path(__file__).resolve().parents[1] / "docs"
    for page, row, accepted in (("mono_depth_node.md", "| `image` |", COLOR_ENCODINGS),
                                ("descriptor_tracker_node.md", "| `image` |", COLOR_ENCODINGS),
                                ("stereo_depth_node.md", "| `left/image_rect`, `right/image_rect` |", STEREO_ENCODINGS)):
        line = next(ln for ln in (docs / page).read_text().splitlines() if ln.startswith(row))
        assert ", ".join(accepted) in line, (page, line)
