"""The ROS-free rules behind the nodes' robot inputs: stamp order with clock jumps, colour/depth
pairing by stamp, the compressedDepth wire format, transport mismatch hints and rectification."""
from __future__ import annotations

import struct
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from depth_nodes.compressed_depth import decode_compressed_depth, encode_compressed_depth
from depth_nodes.geometry.rectify import RectifyCache, RectifyError, rectified_info, rectify
from depth_nodes.image_encodings import ImageConversionError, decode_compressed
from depth_nodes.pipelines.depth_pairing import DepthPairing
from depth_nodes.ros.image_transport import IMAGE_TRANSPORTS, mismatch_hint
from depth_nodes.ros.stamp_order import StampOrder, Verdict

S = 1_000_000_000
T0 = 1_700_000_000 * S


# ---------------------------------------------------------------- stamp order
def test_small_reorderings_are_dropped_and_a_jump_back_starts_over():
    order = StampOrder(jump_back_s=1.0)
    for k in range(3):
        assert order.check(T0 + k * S // 10)[0] is Verdict.IN_ORDER
        order.accept(T0 + k * S // 10)
    verdict, back = order.check(T0 + S // 10)          # 0.1 s older than the last processed (0.2 s)
    assert verdict is Verdict.REORDERED and back == pytest.approx(0.1)
    assert order.check(T0 - S // 2)[0] is Verdict.REORDERED  # 0.7 s back: still a reordering
    assert order.last_ns == T0 + 2 * S // 10                  # nothing forgotten
    verdict, back = order.check(T0 - 5 * S)                   # the recording looped: 5.2 s back
    assert verdict is Verdict.JUMPED_BACK and back == pytest.approx(5.2)
    order.accept(T0 - 5 * S)
    assert order.check(T0 - 5 * S + S // 10)[0] is Verdict.IN_ORDER  # the new pass is in order
    order.accept(T0 - 5 * S + S // 10)
    assert order.check(T0 - 5 * S)[0] is Verdict.REORDERED   # and reorderings within it are dropped again


def test_a_clock_jump_back_starts_over_whatever_the_stamp_gap():
    order = StampOrder(jump_back_s=10.0)
    order.accept(T0)
    order.clock_jumped_back()
    verdict, back = order.check(T0 - S // 2)  # only 0.5 s back, but /clock went back
    assert verdict is Verdict.CLOCK_JUMPED_BACK and back == pytest.approx(0.5)
    order.accept(T0 - S // 2)
    assert order.check(T0 - S)[0] is Verdict.REORDERED  # the clock flag is used once
    with pytest.raises(ValueError):
        StampOrder(0.0)


# ---------------------------------------------------------------- pairing
class _Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_an_image_waits_for_its_late_depth_and_gets_that_one():
    clock = _Clock()
    p = DepthPairing(wait_s=0.1, max_age_s=0.05, jump_back_s=1.0, clock=clock)
    assert p.add_depth(T0, "d0") == []
    r = p.add_image(T0, "i0")                       # its depth is already there: released at once
    assert [(x.item, x.depth) for x in r] == [("i0", "d0")]
    assert p.add_image(T0 + S // 10, "i1") == []    # the previous frame's depth is 0.1 s away: wait
    clock.t += 0.02
    r = p.add_depth(T0 + S // 10, "d1")             # same-stamp depth, a moment later
    assert [(x.item, x.depth) for x in r] == [("i1", "d1")] and r[0].waited_s == pytest.approx(0.02)
    # no depth for the next one: released after wait_s, 2D only, with the reason
    assert p.add_image(T0 + 2 * S // 10, "i2") == [] and p.expire() == []
    clock.t += 0.11
    (r,) = p.expire()
    assert r.item == "i2" and r.depth is None and "0.100 s from the image" in r.why
    assert p.dropped == 0


def test_latest_frame_semantics_and_a_jump_back_resets_the_buffers():
    clock = _Clock()
    p = DepthPairing(wait_s=0.5, max_age_s=0.05, jump_back_s=1.0, max_images=2, clock=clock)
    p.add_depth(T0, "d0")
    p.add_image(T0, "i0")
    for k in (1, 2, 3):                       # three images wait; only two are kept
        assert p.add_image(T0 + k * S // 10, f"i{k}") == []
    assert p.pending() == 2 and p.dropped == 1
    r = p.add_depth(T0 + 3 * S // 10, "d3")   # the newest gets its depth; the older one is superseded
    assert [(x.item, x.depth) for x in r] == [("i3", "d3")] and p.pending() == 0 and p.dropped == 2
    late = p.add_depth(T0 + 2 * S // 10, "d2")  # out of order: nothing waits for it
    assert late == []
    (r,) = p.add_image(T0 + 2 * S // 10, "i2")  # passed on at once, without depth, for the node to skip
    assert (r.item, r.depth, r.why) == ("i2", None, "out of order")
    # the recording loops: old depths must not pair with the new pass
    r = p.add_image(T0 - 5 * S, "j0")
    assert r == [] and p.resets == 1
    r = p.add_depth(T0 - 5 * S, "e0")
    assert [(x.item, x.depth) for x in r] == [("j0", "e0")]


# ---------------------------------------------------------------- compressedDepth
def _hand_built(encoding: str, png: np.ndarray, a: float, b: float) -> SimpleNamespace:
    ok, data = cv2.imencode(".png", png)
    return SimpleNamespace(format=f"{encoding}; compressedDepth png", data=struct.pack("<i2f", 0, a, b) + data.tobytes())


def test_compressed_depth_32fc1_decodes_inverse_depth_with_the_header_parameters():
    q, depth_max = 100.0, 10.0
    a, b = q * (q + 1), 1 - q * (q + 1) / depth_max         # as the C++ publisher computes them
    inv = np.array([[0, 4041, 2020], [3000, 65535, 10100]], np.uint16)  # 0 = no reading
    msg = _hand_built("32FC1", inv, a, b)
    depth, enc = decode_compressed(msg)
    assert enc == "32FC1" and depth.dtype == np.float32 and depth.shape == (2, 3)
    expected = np.float32(a) / (inv.astype(np.float32) - np.float32(b))
    assert np.isnan(depth[0, 0]) and np.isfinite(depth[0, 1:]).all()
    np.testing.assert_allclose(depth[inv > 0], expected[inv > 0], rtol=1e-6)
    assert depth[0, 1] == pytest.approx(2.0, abs=1e-3)       # 10100 / (4041 + 1009)
    # the encoder writes what the publisher writes; a round trip keeps depth to the quantisation step z^2 / A
    z = np.array([[0.3, 1.0, 2.0, np.nan], [5.0, 9.9, 12.0, 0.0]], np.float32)
    fmt, data = encode_compressed_depth(z, "32FC1")
    assert fmt == "32FC1; compressedDepth png" and struct.unpack("<i2f", data[:12]) == (0, pytest.approx(a),
                                                                                       pytest.approx(b))
    back, _ = decode_compressed_depth(fmt, data)
    ok = np.isfinite(z) & (z > 0) & (z < depth_max)
    assert np.array_equal(np.isfinite(back), ok)
    assert (np.abs(back[ok] - z[ok]) <= z[ok] ** 2 / a * 1.01).all()


def test_compressed_depth_16uc1_and_bad_messages():
    mm = np.array([[0, 1500, 65000], [800, 9999, 10001]], np.uint16)
    depth, enc = decode_compressed(_hand_built("16UC1", mm, 0.0, 0.0))
    assert enc == "16UC1" and np.array_equal(depth, mm)
    fmt, data = encode_compressed_depth(mm, "16UC1")          # depth_max 10 m: 10001 mm and up become 0
    back, _ = decode_compressed_depth(fmt, data)
    assert np.array_equal(back, np.where(mm > 10000, 0, mm))
    with pytest.raises(ImageConversionError, match="rvl"):
        decode_compressed(SimpleNamespace(format="32FC1; compressedDepth rvl", data=data))
    with pytest.raises(ImageConversionError, match="12-byte header"):
        decode_compressed(SimpleNamespace(format="16UC1; compressedDepth", data=data[:10]))
    with pytest.raises(ImageConversionError, match="expected 32FC1 or 16UC1"):
        decode_compressed(SimpleNamespace(format="rgb8; compressedDepth png", data=data))


# ---------------------------------------------------------------- transport mismatch
def test_mismatch_hints_name_the_parameter_that_fixes_them():
    graph = {"/cam/image_raw/compressed": {"sensor_msgs/msg/CompressedImage"}}
    types_on = lambda t: graph.get(t, set())  # noqa: E731
    # the base topic is right, the transport is not
    hint = mismatch_hint("/cam/image_raw", "image_transport", "raw", IMAGE_TRANSPORTS, types_on)
    assert "set -p image_transport:=compressed" in hint and "/cam/image_raw/compressed carries" in hint
    # remapped straight onto the compressed topic
    hint = mismatch_hint("/cam/image_raw/compressed", "image_transport", "raw", IMAGE_TRANSPORTS, types_on)
    assert "image_transport:=compressed" in hint and "remap the input to /cam/image_raw " in hint
    # the reverse: compressed asked for, only raw published
    graph = {"/cam/image_raw": {"sensor_msgs/msg/Image"}}
    hint = mismatch_hint("/cam/image_raw", "image_transport", "compressed", IMAGE_TRANSPORTS, types_on)
    assert "set -p image_transport:=raw" in hint
    assert mismatch_hint("/other", "image_transport", "raw", IMAGE_TRANSPORTS, types_on) is None
    assert mismatch_hint("/cam/image_raw", "image_transport", "raw", IMAGE_TRANSPORTS, types_on) is None


# ---------------------------------------------------------------- rectification
def _info(model, d, w=160, h=120):
    K = [150.0, 0, 83.0, 0, 140.0, 57.0, 0, 0, 1]       # fx != fy, off-centre
    return SimpleNamespace(width=w, height=h, distortion_model=model, d=list(d), k=K,
                           r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1], p=[120.0, 0, 80.0, 0, 0, 115.0, 60.0, 0, 0, 0, 1, 0],
                           binning_x=0, binning_y=0, roi=SimpleNamespace(width=0))


@pytest.mark.parametrize("model, d", [("plumb_bob", [-0.3, 0.1, 0.001, -0.002, 0.0]),
                                      ("rational_polynomial", [-0.3, 0.1, 0.001, -0.002, 0.0, 0.01, 0.0, 0.0]),
                                      ("equidistant", [0.05, -0.01, 0.0, 0.0])])
def test_rectified_pixels_sample_the_distorted_projection_of_their_ray(model, d):
    info = _info(model, d)
    rect = RectifyCache().get(info)
    K, Kp = np.array(info.k).reshape(3, 3), np.array(info.p).reshape(3, 4)[:, :3]
    # an output pixel's ray through K' projects, distorted by K and D, to where the map samples
    u, v = 30.0, 100.0
    ray = np.linalg.solve(Kp, [u, v, 1.0])
    pts = ray[None, None, :2] / ray[2]
    if model == "equidistant":
        raw = cv2.fisheye.distortPoints(pts.astype(np.float64), K, np.array(d))[0, 0]
    else:
        raw, _ = cv2.projectPoints(np.array([[ray / ray[2]]]), np.zeros(3), np.zeros(3), K, np.array(d))
        raw = raw[0, 0]
    assert abs(rect.map_x[int(v), int(u)] - raw[0]) < 1e-3 and abs(rect.map_y[int(v), int(u)] - raw[1]) < 1e-3
    out = rectified_info(info, rect)
    assert out.d == [0.0] * len(d) and out.k == Kp.reshape(-1).tolist() and out.p == info.p
    img = np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)
    assert rectify(img, rect).shape == img.shape
    depth = np.full((120, 160), 2.0, np.float32)
    assert set(np.unique(rectify(depth, rect, nearest=True)[40:80, 60:100])) == {2.0}  # nearest: no new values


def test_without_distortion_nothing_is_built_and_unknown_models_are_refused():
    cache = RectifyCache()
    assert cache.get(_info("plumb_bob", [0.0] * 5)) is None
    assert cache.get(_info("", [])) is None
    with pytest.raises(RectifyError, match="'fov'"):
        cache.get(_info("fov", [0.5]))
    with pytest.raises(RectifyError, match="takes 5 coefficients"):
        cache.get(_info("plumb_bob", [0.1, 0.0, 0.0]))
    info = _info("plumb_bob", [-0.3, 0.1, 0, 0, 0])
    assert cache.get(info) is cache.get(_info("plumb_bob", [-0.3, 0.1, 0, 0, 0]))  # cached by content
