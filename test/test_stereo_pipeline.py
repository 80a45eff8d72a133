"""Stereo pipeline and OpenCV matcher on a synthetic scene with exact ground truth (no ROS)."""
import numpy as np
import pytest

from depth_nodes.backends.base import BackendError, StereoMatcher
from depth_nodes.backends.sgbm import SgbmMatcher, SgbmParams
from depth_nodes.geometry.camera import PinholeCamera
from depth_nodes.pipelines.stereo import StereoFrame, StereoInputError, StereoPipeline
from depth_nodes.synthetic import Plane, default_scene, render_stereo


def test_synthetic_scene_is_a_true_second_view():
    scene = render_stereo(96, 64, 80.0, 0.2, [Plane(2.0)], seed=0)
    d = 80.0 * 0.2 / 2.0  # 8 px, integer: the right image is the left shifted by d
    np.testing.assert_array_equal(scene.right[:, 10:80], scene.left[:, 18:88])
    np.testing.assert_allclose(scene.disparity, d)
    assert scene.right_camera.baseline == pytest.approx(0.2)


@pytest.mark.parametrize("algorithm", [0, 1])
def test_matchers_recover_plane_disparities(algorithm):
    scene = default_scene(320, 240, seed=5)
    matcher = SgbmMatcher(SgbmParams(stereo_algorithm=algorithm, disparity_range=64,
                                     correlation_window_size=5 if algorithm else 9))
    assert isinstance(matcher, StereoMatcher)
    disp = matcher.compute(scene.left, scene.right)
    gt = scene.disparity
    ok = np.isfinite(disp)
    ok[:, :64] = False
    err = np.abs(disp[ok] - gt[ok])
    assert ok.mean() > 0.5
    assert np.median(err) < 0.35
    assert np.mean(err < 1.0) > 0.9


def test_pipeline_outputs_are_consistent():
    scene = default_scene(320, 240, seed=2)
    pipe = StereoPipeline(SgbmMatcher(SgbmParams(disparity_range=64)), min_depth=1.5, max_depth=3.0, decimation=2)
    res = pipe.process(StereoFrame(scene.left, scene.right, scene.left_camera, scene.right_camera))
    fB = scene.left_camera.fx * 0.12
    finite = np.isfinite(res.depth)
    assert np.all((res.depth[finite] >= 1.5) & (res.depth[finite] <= 3.0))
    inside = np.isfinite(res.disparity) & finite
    np.testing.assert_allclose(res.depth[inside], fB / res.disparity[inside], rtol=1e-6)
    assert res.cloud.shape == (120, 160, 4)
    np.testing.assert_allclose(res.cloud[..., 2], res.depth[::2, ::2], equal_nan=True)
    assert (res.min_disparity, res.max_disparity) == (0.0, 63.0)


def test_pipeline_rejects_inconsistent_frames():
    scene = default_scene(160, 120)
    pipe = StereoPipeline(SgbmMatcher(SgbmParams(disparity_range=32)))
    L, R, lc, rc = scene.left, scene.right, scene.left_camera, scene.right_camera
    with pytest.raises(StereoInputError, match="left image is 160x120 but right image is 80x120"):
        pipe.process(StereoFrame(L, R[:, :80], lc, rc))
    with pytest.raises(StereoInputError, match="right camera_info is 80x60"):
        pipe.process(StereoFrame(L, R, lc, rc.resized(80, 60)))
    no_baseline = PinholeCamera(160, 120, rc.K, P=np.hstack([rc.K, np.zeros((3, 1))]))
    with pytest.raises(StereoInputError, match="baseline is 0 m"):
        pipe.process(StereoFrame(L, R, lc, no_baseline))
    other_f = PinholeCamera(160, 120, rc.K * [[2], [2], [1]], P=rc.P * [[2], [2], [1]])
    with pytest.raises(StereoInputError, match="not a rectified pair"):
        pipe.process(StereoFrame(L, R, lc, other_f))


@pytest.mark.parametrize("change,match", [
    (dict(disparity_range=100), "disparity_range: must be a positive multiple of 16"),
    (dict(correlation_window_size=4), "correlation_window_size"),
    (dict(stereo_algorithm=0, correlation_window_size=3), "correlation_window_size"),
    (dict(P1=100.0, P2=50.0), "P1/P2"),
    (dict(stereo_algorithm=2), "stereo_algorithm"),
])
def test_matcher_parameter_validation(change, match):
    with pytest.raises(BackendError, match=match):
        SgbmMatcher(SgbmParams(**change))


def test_a_minimum_depth_below_one_metre_with_no_maximum_still_applies():
    scene = default_scene(160, 120, seed=3)
    frame = StereoFrame(scene.left, scene.right, scene.left_camera, scene.right_camera)
    # without the left band's padding the matcher's wrong matches there give depths under 0.9 m
    params = SgbmParams(disparity_range=64, fill_left_band=False)
    free = StereoPipeline(SgbmMatcher(params)).process(frame, with_cloud=False)
    near = StereoPipeline(SgbmMatcher(params), min_depth=0.9).process(frame, with_cloud=False)
    assert np.count_nonzero(free.depth < 0.9) > 0  # the matcher does see nearer depths (wrong matches)
    np.testing.assert_array_equal(near.depth, np.where(free.depth >= np.float32(0.9), free.depth, np.nan))
