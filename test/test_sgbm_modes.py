"""SGBM variants (sgbm_mode), matching on a downscaled pair, and the inclusive depth range (no ROS)."""
import cv2
import numpy as np
import pytest

from depth_nodes.backends.base import BackendError
from depth_nodes.backends.sgbm import SGBM_MODES, SgbmMatcher, SgbmParams
from depth_nodes.geometry.stereo import disparity_to_depth
from depth_nodes.pipelines.stereo import StereoFrame, StereoPipeline
from depth_nodes.synthetic import default_scene

SCENE = default_scene(320, 240, seed=5)


def _errors(disp, gt, border=64):
    ok = np.isfinite(disp)
    ok[:, :border] = False
    return ok, np.abs(disp[ok] - gt[ok])


@pytest.mark.parametrize("mode", list(SGBM_MODES))
def test_every_sgbm_mode_recovers_the_planes(mode):
    matcher = SgbmMatcher(SgbmParams(disparity_range=64, sgbm_mode=mode))
    assert matcher.name == f"opencv_sgbm_{mode}"
    ok, err = _errors(matcher.compute(SCENE.left, SCENE.right), SCENE.disparity)
    assert ok.mean() > 0.5 and np.median(err) < 0.35 and np.mean(err < 1.0) > 0.9


def test_modes_are_really_different_matchers_and_full_dp_selects_hh():
    disp = {m: SgbmMatcher(SgbmParams(disparity_range=64, sgbm_mode=m)).compute(SCENE.left, SCENE.right)
            for m in ("sgbm", "3way", "hh")}
    assert not np.array_equal(disp["sgbm"], disp["3way"], equal_nan=True)
    full_dp = SgbmMatcher(SgbmParams(disparity_range=64, sgbm_mode="3way", full_dp=True))
    assert full_dp.name == "opencv_sgbm_hh"
    np.testing.assert_array_equal(full_dp.compute(SCENE.left, SCENE.right), disp["hh"])


@pytest.mark.parametrize("s", [2, 3])
def test_downscaled_matching_keeps_full_resolution_semantics(s):
    p = SgbmParams(disparity_range=64, min_disparity=0, downscale=s)
    matcher = SgbmMatcher(p)
    assert matcher.disparity_bounds == (0.0, 63.0)  # the same search range as at full resolution
    disp = matcher.compute(SCENE.left, SCENE.right)
    assert disp.shape == SCENE.disparity.shape and disp.dtype == np.float32
    finite = disp[np.isfinite(disp)]
    assert finite.min() >= 0.0 and finite.max() <= 63.0
    ok, err = _errors(disp, SCENE.disparity)
    # disparity in full-resolution pixels: sub-pixel error grows with s, but no factor-s mistake
    assert ok.mean() > 0.5 and np.median(err) < 0.35 * s and np.mean(err < s) > 0.85
    # equal to matching the shrunk pair by hand and scaling back
    small = (round(320 / s), round(240 / s))
    g = [cv2.resize(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), small, interpolation=cv2.INTER_AREA)
         for im in (SCENE.left, SCENE.right)]
    raw = SgbmMatcher(SgbmParams(disparity_range=matcher._small_range, min_disparity=matcher._small_min)).compute(*g)
    up = cv2.resize(raw, (320, 240), interpolation=cv2.INTER_LINEAR) * np.float32(320 / small[0])
    up[~((up >= 0) & (up <= 63))] = np.nan
    np.testing.assert_array_equal(disp, up)


def test_downscaled_depth_is_exact_for_its_disparity():
    pipe = StereoPipeline(SgbmMatcher(SgbmParams(disparity_range=64, downscale=2)))
    res = pipe.process(StereoFrame(SCENE.left, SCENE.right, SCENE.left_camera, SCENE.right_camera))
    fB = SCENE.left_camera.fx * 0.12
    ok = np.isfinite(res.disparity) & (res.disparity > 0)
    np.testing.assert_allclose(res.depth[ok], fB / res.disparity[ok], rtol=1e-6)
    assert np.all(np.isnan(res.depth[~ok]))
    assert (res.min_disparity, res.max_disparity) == (0.0, 63.0)


def test_every_bad_matcher_parameter_is_named_at_once():
    params = SgbmParams(disparity_range=100, correlation_window_size=4, sgbm_mode="fast", downscale=0)
    problems = params.problems()
    assert [p.split(":")[0] for p in problems] == ["disparity_range", "correlation_window_size", "sgbm_mode",
                                                   "downscale"]
    with pytest.raises(BackendError) as info:
        SgbmMatcher(params)
    assert str(info.value).count("\n") == 3


class _FixedDisparity:
    """A matcher returning a given disparity map (to put depths exactly on the range bounds)."""

    name = "fixed"
    disparity_bounds = (0.0, 255.0)

    def __init__(self, disparity):
        self.disparity = disparity

    def compute(self, left, right):
        return self.disparity.copy()


def test_depth_range_bounds_are_inclusive():
    cam_l, cam_r = SCENE.left_camera, SCENE.right_camera
    fx, B = cam_l.fx, cam_r.baseline
    d = np.array([[10.0, 12.0, 14.0, 16.0, 20.0, 24.0]], np.float32).repeat(2, axis=0)
    d = np.pad(d, ((0, 238), (0, 314)), constant_values=np.nan)
    z = disparity_to_depth(d, fx, B)
    lo, hi = float(z[0, 4]), float(z[0, 1])  # exactly the float32 depths of two pixels
    pipe = StereoPipeline(_FixedDisparity(d), min_depth=lo, max_depth=hi)
    res = pipe.process(StereoFrame(SCENE.left, SCENE.right, cam_l, cam_r), with_cloud=False)
    row = res.depth[0, :6]
    assert row[4] == np.float32(lo) and row[1] == np.float32(hi)  # on the bounds: kept
    assert np.isnan(row[0]) and np.isnan(row[5])  # just outside: NaN
    np.testing.assert_array_equal(row[1:5], z[0, 1:5])
    # a bound given in float64 a hair beyond the float32 depth still keeps it (bounds are rounded to float32)
    pipe.min_depth = np.nextafter(lo, np.inf)
    pipe.max_depth = np.nextafter(hi, -np.inf)
    res = pipe.process(StereoFrame(SCENE.left, SCENE.right, cam_l, cam_r), with_cloud=False)
    assert np.isfinite(res.depth[0, 4]) and np.isfinite(res.depth[0, 1])
    # one float32 step inside the bounds: the boundary pixels go
    pipe.min_depth = float(np.nextafter(np.float32(lo), np.float32(np.inf)))
    pipe.max_depth = float(np.nextafter(np.float32(hi), np.float32(-np.inf)))
    res = pipe.process(StereoFrame(SCENE.left, SCENE.right, cam_l, cam_r), with_cloud=False)
    assert np.isnan(res.depth[0, 4]) and np.isnan(res.depth[0, 1]) and np.isfinite(res.depth[0, 2])
