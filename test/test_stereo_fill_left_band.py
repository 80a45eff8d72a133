"""fill_left_band: the stereo matcher fills the left band that OpenCV leaves empty.

On the demo scene (:func:`depth_nodes.synthetic.default_scene`, exact disparity) the band gets
disparities whose bad-2 is within 2x of the rest of the image, at full resolution and with
``downscale``; on the real Middlebury Cones pair bad-2 over the whole frame falls; a real node over
DDS publishes a DisparityImage whose valid_window starts at the left edge, and switching the
parameter off at run time brings the empty band back.

bad-2 in the band is counted where a match exists at all (``x - d_gt >= 0``: the point is inside
the right image); left of that, no matcher can be right, with or without padding.
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image
from stereo_msgs.msg import DisparityImage

from depth_nodes.backends.sgbm import SgbmMatcher, SgbmParams
from depth_nodes.image_encodings import decode_image
from depth_nodes.ros.harness import NodeProcess, RosIO, stamp_of, stereo_messages
from depth_nodes.synthetic import default_scene
from real_data import real_path

REPO = Path(__file__).resolve().parents[1]
INPUTS = ("left/image_rect", "left/camera_info", "right/image_rect", "right/camera_info")


def band_and_rest_bad2(disp: np.ndarray, gt: np.ndarray, band: int) -> tuple[float, float, float]:
    """(bad-2 in the left ``band`` columns, bad-2 right of it, density in the band); bad-2 over pixels
    whose match lies inside the right image; a missing disparity counts as bad."""
    w = gt.shape[1]
    inside = (np.arange(w)[None, :] - gt) >= 0
    bad = ~(np.abs(disp - gt) <= 2.0)
    in_band = np.zeros_like(inside)
    in_band[:, :band] = True
    return (float(bad[in_band & inside].mean()), float(bad[~in_band & inside].mean()),
            float(np.isfinite(disp[:, :band]).mean()))


@pytest.mark.parametrize("size, rng, downscale", [((640, 480), 128, 1), ((640, 480), 128, 2), ((320, 240), 64, 1)])
def test_left_band_gets_disparities_as_good_as_the_rest(size, rng, downscale):
    scene = default_scene(*size, seed=0)
    on = SgbmMatcher(SgbmParams(disparity_range=rng, downscale=downscale)).compute(scene.left, scene.right)
    off = SgbmMatcher(SgbmParams(disparity_range=rng, downscale=downscale, fill_left_band=False)).compute(
        scene.left, scene.right)
    assert np.all(np.isnan(off[:, :rng - 2 * downscale]))  # OpenCV alone: the band is empty
    band_bad, rest_bad, density = band_and_rest_bad2(on, scene.disparity, rng)
    assert density > 0.85, density
    assert band_bad <= 2 * rest_bad, (band_bad, rest_bad)
    # right of the band padding changes nothing for the worse
    assert rest_bad <= band_and_rest_bad2(off, scene.disparity, rng)[1] + 0.005
    # the search range is kept at every scale
    finite = on[np.isfinite(on)]
    assert finite.min() >= 0 and finite.max() <= rng - 1


def test_padding_is_by_the_search_range_and_cropped_back():
    """Equal to padding by hand with min_disparity + disparity_range replicated columns (min_disparity 8)."""
    scene = default_scene(320, 240, seed=1)
    p = SgbmParams(min_disparity=8, disparity_range=48)
    grey = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in (scene.left, scene.right)]
    padded = [cv2.copyMakeBorder(g, 0, 0, 56, 0, cv2.BORDER_REPLICATE) for g in grey]
    by_hand = SgbmMatcher(SgbmParams(min_disparity=8, disparity_range=48, fill_left_band=False)).compute(*padded)
    np.testing.assert_array_equal(SgbmMatcher(p).compute(scene.left, scene.right), by_hand[:, 56:])


def test_real_cones_pair_bad2_falls_and_density_rises():
    folder = real_path("stereo", "cones")
    left, right = (cv2.imread(str(folder / f"{s}.png"), cv2.IMREAD_GRAYSCALE) for s in ("left", "right"))
    gt = np.load(folder / "disp_left.npy")
    known = gt > 0
    result = {}
    for fill in (False, True):
        disp = SgbmMatcher(SgbmParams(disparity_range=128, fill_left_band=fill)).compute(left, right)
        result[fill] = (float(np.mean(~(np.abs(disp - gt) <= 2.0)[known])), float(np.isfinite(disp).mean()))
    (bad_off, dens_off), (bad_on, dens_on) = result[False], result[True]
    # measured: bad-2 35.0 % -> 14.3 %, density 68 % -> 91 % (benchmarks: sgbm_fill_left_band_*)
    assert bad_on < 0.6 * bad_off and dens_on > dens_off + 0.15, result


def _publish_until(io, pubs, msgs, topic, timeout=20.0):
    stamp = stamp_of(msgs[0])
    have = lambda: any(stamp_of(m) == stamp for m in io.received[topic])  # noqa: E731
    deadline = time.monotonic() + timeout
    while not have() and time.monotonic() < deadline:
        for pub, msg in zip(pubs, msgs):
            pub.publish(msg)
        io.wait_for(have, 0.5)
    assert have(), f"no {topic} for stamp {stamp}"
    return [m for m in io.messages(topic) if stamp_of(m) == stamp][0]


def test_node_publishes_the_left_band_and_the_parameter_switches_it_at_run_time(tmp_path):
    scene = default_scene(320, 240, seed=3)
    node = NodeProcess("stereo_depth_node", "--params-file", str(REPO / "config/stereo_depth.yaml"),
                       "-p", "disparity_range:=64", "-p", "input_qos:=reliable", log_path=tmp_path / "node.log")
    io = RosIO("fill_band_test_io")
    try:
        pubs = [io.publisher(Image if "image" in t else CameraInfo, t) for t in INPUTS]
        io.collect(DisparityImage, "disparity")
        assert node.wait_for_log("matching with", 20), node.log()
        stamp = 1_700_000_000_000_000_000
        msg = _publish_until(io, pubs, stereo_messages(scene, stamp), "disparity")
        disp = decode_image(msg.image)
        disp[disp < msg.min_disparity] = np.nan  # the message's own "invalid" rule
        assert msg.valid_window.x_offset < 8, msg.valid_window
        band_bad, rest_bad, density = band_and_rest_bad2(disp, scene.disparity, 64)
        assert density > 0.85 and band_bad <= 2 * rest_bad, (band_bad, rest_bad, density)

        result = io.set_parameter("/stereo_depth_node", "fill_left_band", False)
        assert result.successful, result.reason
        msg = _publish_until(io, pubs, stereo_messages(scene, stamp + 100_000_000), "disparity")
        disp = decode_image(msg.image)
        assert msg.valid_window.x_offset >= 60, msg.valid_window
        assert np.all(disp[:, :60] < msg.min_disparity)

        # with downscale the padding is made at the matched scale: the band is filled again
        for name, value in (("fill_left_band", True), ("downscale", 2)):
            result = io.set_parameter("/stereo_depth_node", name, value)
            assert result.successful, result.reason
        msg = _publish_until(io, pubs, stereo_messages(scene, stamp + 200_000_000), "disparity")
        disp = decode_image(msg.image)
        disp[disp < msg.min_disparity] = np.nan
        assert msg.valid_window.x_offset < 8 and (msg.min_disparity, msg.max_disparity) == (0.0, 63.0), msg
        band_bad, rest_bad, density = band_and_rest_bad2(disp, scene.disparity, 64)
        assert density > 0.85 and band_bad <= 2 * rest_bad, (band_bad, rest_bad, density)
    finally:
        io.close()
        assert node.stop() == 0, node.log()
