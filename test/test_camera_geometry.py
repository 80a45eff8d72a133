"""Camera model and stereo maths against hand-computed values."""
from types import SimpleNamespace

import numpy as np
import pytest

from depth_nodes.geometry.camera import CameraModelError, PinholeCamera
from depth_nodes.geometry.stereo import StereoGeometryError, depth_to_disparity, disparity_to_depth

K = np.array([[500.0, 0.0, 320.0], [0.0, 400.0, 240.0], [0.0, 0.0, 1.0]])


def info(**kw):
    base = dict(width=640, height=480, k=K.reshape(-1).tolist(), d=[0.0] * 5, r=np.eye(3).reshape(-1).tolist(),
                p=np.hstack([K, np.zeros((3, 1))]).reshape(-1).tolist(), distortion_model="plumb_bob",
                binning_x=0, binning_y=0, roi=SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0),
                header=SimpleNamespace(frame_id="cam_optical"))
    base.update(kw)
    return SimpleNamespace(**base)


def test_rays_and_points_by_hand():
    cam = PinholeCamera(640, 480, K)
    # pixel (420, 290): x = (420-320)/500 = 0.2, y = (290-240)/400 = 0.125
    np.testing.assert_allclose(cam.rays()[290, 420], [0.2, 0.125, 1.0], rtol=1e-6)
    depth = np.full((480, 640), 2.0, np.float32)
    depth[0, 0] = np.nan
    pts = cam.depth_to_points(depth)
    np.testing.assert_allclose(pts[290, 420], [0.4, 0.25, 2.0], rtol=1e-6)
    assert np.all(np.isnan(pts[0, 0]))
    assert cam.rays() is cam.rays()  # cached
    uv, z = cam.project(np.array([[0.4, 0.25, 2.0], [0.0, 0.0, -1.0]]))
    np.testing.assert_allclose(uv[0], [420.0, 290.0])
    assert np.all(np.isnan(uv[1])) and z[1] == -1.0


def test_resize_and_crop_follow_pixel_centres():
    cam = PinholeCamera(640, 480, K)
    half = cam.resized(320, 240)
    # u' + 0.5 = (u + 0.5)/2  ->  cx' = (320.5)/2 - 0.5 = 159.75
    np.testing.assert_allclose(half.K, [[250, 0, 159.75], [0, 200, 119.75], [0, 0, 1]])
    # a 3D point projects to corresponding pixel positions in both
    p = np.array([[0.3, -0.2, 1.7]])
    uv_full, _ = cam.project(p)
    uv_half, _ = half.project(p)
    np.testing.assert_allclose(uv_half, (uv_full + 0.5) / 2 - 0.5)
    crop = cam.cropped(100, 50, 200, 100)
    np.testing.assert_allclose(crop.project(p)[0], uv_full - [100, 50])
    with pytest.raises(CameraModelError, match="roi"):
        cam.cropped(600, 0, 100, 10)


def test_from_camera_info_rectified_baseline_binning_roi():
    P = np.hstack([K, [[-500.0 * 0.12], [0.0], [0.0]]])
    cam = PinholeCamera.from_camera_info(info(p=P.reshape(-1).tolist()))
    assert cam.baseline == pytest.approx(0.12)
    assert cam.Tx == pytest.approx(-60.0)
    assert cam.frame_id == "cam_optical"
    binned = PinholeCamera.from_camera_info(info(binning_x=2, binning_y=2))
    assert (binned.width, binned.height) == (320, 240) and binned.fx == 250.0
    roi = PinholeCamera.from_camera_info(info(roi=SimpleNamespace(x_offset=10, y_offset=20, width=100, height=80)))
    assert (roi.width, roi.height, roi.cx, roi.cy) == (100, 80, 310.0, 220.0)
    # ROS 1 field names
    ros1 = SimpleNamespace(width=640, height=480, K=K.reshape(-1).tolist(), D=[], R=[1, 0, 0, 0, 1, 0, 0, 0, 1],
                           P=np.hstack([K, np.zeros((3, 1))]).reshape(-1).tolist())
    assert PinholeCamera.from_camera_info(ros1).fx == 500.0


@pytest.mark.parametrize("field,value,match", [
    ("k", [0.0] * 9, "k: camera_info intrinsic matrix K is all zeros"),
    ("k", [1.0] * 4, "k: expected 9 values"),
    ("p", [1.0] * 3, "p: expected 12 values"),
    ("width", 0, "width/height"),
])
def test_bad_camera_info_names_the_field(field, value, match):
    with pytest.raises(CameraModelError, match=match):
        PinholeCamera.from_camera_info(info(**{field: value}))


def test_disparity_depth_round_trip_by_hand():
    # f = 500 px, B = 0.1 m: d = 25 px <-> z = 2 m
    assert disparity_to_depth(np.array([25.0]), 500.0, 0.1)[0] == pytest.approx(2.0)
    assert depth_to_disparity(np.array([2.0]), 500.0, 0.1)[0] == pytest.approx(25.0)
    # principal point offset doffs = 5: measured d = 30 means z = 50/(30-5)
    assert disparity_to_depth(np.array([30.0]), 500.0, 0.1, doffs=5.0)[0] == pytest.approx(2.0)
    out = disparity_to_depth(np.array([0.0, -1.0, np.nan, np.inf]), 500.0, 0.1)
    assert np.all(np.isnan(out))
    assert np.all(np.isnan(depth_to_disparity(np.array([0.0, -2.0, np.nan]), 500.0, 0.1)))
    z = np.random.default_rng(0).uniform(0.3, 20, 1000).astype(np.float32)
    np.testing.assert_allclose(disparity_to_depth(depth_to_disparity(z, 400, 0.2, 3), 400, 0.2, 3), z, rtol=1e-5)
    with pytest.raises(StereoGeometryError, match="baseline"):
        disparity_to_depth(np.ones(3), 500.0, 0.0)


def test_camera_model_cache_reuses_models_until_the_calibration_changes():
    from depth_nodes.geometry.camera import CameraModelCache

    cache = CameraModelCache(maxsize=2)
    a = cache.get(info())
    assert cache.get(info()) is a  # same content -> same model (and its cached rays)
    rays = a.rays()
    assert cache.get(info()).rays() is rays
    K2 = np.array([[510.0, 0, 320], [0, 400.0, 240], [0, 0, 1]])
    changed = cache.get(info(k=K2.reshape(-1).tolist(), p=np.hstack([K2, np.zeros((3, 1))]).reshape(-1).tolist()))
    assert changed is not a and changed.fx == 510.0
    cache.get(info(binning_x=2, binning_y=2))  # a third model evicts the least recently used
    assert cache.get(info()) is not a


def test_resize_with_different_factors_per_axis_on_an_off_centre_camera():
    """160x90 -> 64x48: s_x = 0.4, s_y = 8/15; ``c' = s (c + 0.5) - 0.5`` with each axis's factor."""
    import cameras

    cam = cameras.camera()
    small = cam.resized(64, 48)
    sx, sy = 0.4, 48 / 90
    np.testing.assert_allclose(small.K, [[0.4 * 230.0, 0, 0.4 * 97.8 - 0.5], [0, sy * 170.0, sy * 53.1 - 0.5],
                                         [0, 0, 1]], rtol=1e-12)
    np.testing.assert_allclose(small.P[:, :3], small.K, rtol=1e-12)
    p = np.array([[0.3, -0.2, 1.7], [-0.5, 0.4, 3.0]])
    uv, _ = cam.project(p)
    np.testing.assert_allclose(small.project(p)[0], (uv + 0.5) * [sx, sy] - 0.5, rtol=1e-12)
    with pytest.raises(CameraModelError, match="width/height: invalid target size 0x48"):
        cam.resized(0, 48)
    with pytest.raises(CameraModelError, match="width/height: invalid target size 64x0"):
        cam.resized(64, 0)


def test_asymmetric_camera_rays_projection_crop_and_binning():
    import cameras

    cam = cameras.camera()
    # pixel (u, v) = (120, 70): x = (120 - 97.3)/230, y = (70 - 52.6)/170
    np.testing.assert_allclose(cam.rays()[70, 120], [22.7 / 230, 17.4 / 170, 1.0], rtol=1e-6)
    xs, ys = cam.ray_planes()
    assert xs.shape == ys.shape == (90, 160) and xs[70, 120] == cam.rays()[70, 120, 0]
    assert ys[70, 120] == cam.rays()[70, 120, 1] and not xs.flags.writeable
    uv, z = cam.project(np.array([[0.5, -0.25, 2.0]]))
    np.testing.assert_allclose(uv[0], [230 * 0.25 + 97.3, 170 * -0.125 + 52.6])
    crop = cam.cropped(10, 20, 100, 50)
    assert (crop.width, crop.height, crop.cx, crop.cy) == (100, 50, pytest.approx(87.3), pytest.approx(32.6))
    for x, y, w, h in [(-1, 0, 10, 10), (0, -1, 10, 10), (0, 0, 0, 10), (0, 0, 10, 0), (151, 0, 10, 10),
                       (0, 81, 10, 10)]:
        with pytest.raises(CameraModelError, match=r"roi: crop .* does not fit the 160x90 image"):
            cam.cropped(x, y, w, h)
    assert cam.cropped(150, 80, 10, 10).width == 10  # touching the far edges fits
    binned = PinholeCamera.from_camera_info(cameras.camera_info(binning_x=2, binning_y=3))
    assert (binned.width, binned.height) == (80, 30)
    np.testing.assert_allclose([binned.fx, binned.fy, binned.cx, binned.cy],
                               [115.0, 170 / 3, 97.8 / 2 - 0.5, 53.1 / 3 - 0.5])
    only_x = PinholeCamera.from_camera_info(cameras.camera_info(binning_x=2))
    assert (only_x.width, only_x.height, only_x.fy) == (80, 90, 170.0)
    roi = PinholeCamera.from_camera_info(cameras.camera_info(roi=SimpleNamespace(x_offset=7, y_offset=3, width=50,
                                                                                 height=40)))
    assert (roi.width, roi.height, roi.cx, roi.cy) == (50, 40, pytest.approx(90.3), pytest.approx(49.6))
    unrect = PinholeCamera.from_camera_info(cameras.camera_info(p=(2 * np.hstack([cameras.K, np.zeros((3, 1))]))
                                                                .reshape(-1).tolist()), use_rectified=False)
    assert unrect.fx == 230.0 and PinholeCamera.from_camera_info(
        cameras.camera_info(p=(2 * np.hstack([cameras.K, np.zeros((3, 1))])).reshape(-1).tolist())).fx == 460.0
    assert PinholeCamera.from_camera_info(cameras.camera_info(p=[0.0] * 12)).fy == 170.0
    depth = np.full((90, 160), 2.0, np.float32)
    with pytest.raises(CameraModelError, match=r"depth: image is \(90, 160\) but the camera is 160x90"):
        cam.depth_to_points(depth.T)
    assert cam.matches(160, 90) and not cam.matches(90, 160)


def test_camera_model_cache_keys_on_every_field_the_model_reads():
    import cameras
    from depth_nodes.geometry.camera import CameraModelCache

    cache = CameraModelCache()
    a = cache.get(cameras.camera_info())
    fisheye = cache.get(cameras.camera_info(distortion_model="equidistant"))
    assert fisheye is not a and fisheye.distortion_model == "equidistant"
    other = cache.get(cameras.camera_info(header=SimpleNamespace(frame_id="other_optical")))
    assert other is not a and other.frame_id == "other_optical"
    doubled = (2 * np.hstack([cameras.K, np.zeros((3, 1))])).reshape(-1).tolist()
    assert cache.get(cameras.camera_info(p=doubled)).fx == 460.0  # rectified (P) by default
    assert cache.get(cameras.camera_info(p=doubled), use_rectified=False).fx == 230.0


def test_crop_keeps_a_proper_intrinsic_matrix_and_binning_keeps_integer_sizes():
    import cameras

    crop = cameras.camera().cropped(10, 20, 100, 50)
    np.testing.assert_allclose(crop.K, [[230.0, 0, 87.3], [0, 170.0, 32.6], [0, 0, 1]], rtol=1e-12)
    np.testing.assert_allclose(crop.P, np.hstack([crop.K, np.zeros((3, 1))]), rtol=1e-12)
    binned = PinholeCamera.from_camera_info(cameras.camera_info(binning_x=3, binning_y=2))
    assert (binned.width, binned.height) == (53, 45)
    assert type(binned.width) is int and type(binned.height) is int  # they go into CameraInfo messages
    bare = SimpleNamespace(width=160, height=90, K=cameras.K.reshape(-1).tolist(), D=[], R=[0.0] * 9, P=[0.0] * 12)
    cam = PinholeCamera.from_camera_info(bare)
    assert cam.distortion_model == "plumb_bob" and cam.frame_id == "" and cam.fy == 170.0
    np.testing.assert_array_equal(cam.R, np.eye(3))


def test_resize_and_crop_keep_distortion_baseline_and_float_intrinsics():
    import cameras
    from depth_nodes.geometry.camera import CameraModelCache

    P = np.hstack([cameras.K, [[-230.0 * 0.12], [0.0], [0.0]]])
    right = cameras.camera(D=[0.1, -0.2, 0.0, 0.0, 0.01], P=P)
    small = right.resized(80, 45)
    assert small.baseline == pytest.approx(0.12) and small.Tx == pytest.approx(-115.0 * 0.12)
    np.testing.assert_array_equal(small.D, right.D)
    full = right.cropped(0, 0, 160, 90)  # the whole image is a valid crop
    np.testing.assert_array_equal(full.K, right.K)
    integer = PinholeCamera(160, 90, np.array([[230, 0, 97], [0, 170, 52], [0, 0, 1]]))
    assert integer.K.dtype == np.float64
    cache = CameraModelCache()
    base = cache.get(cameras.camera_info())
    wide = cache.get(cameras.camera_info(binning_x=2))
    assert wide is not base and wide.width == 80
    roi = cache.get(cameras.camera_info(roi=SimpleNamespace(x_offset=4, y_offset=2, width=40, height=30)))
    assert roi is not base and (roi.width, roi.height) == (40, 30)


def test_cache_keys_on_binning_y_and_roi_height_and_an_empty_p_becomes_k():
    import cameras
    from depth_nodes.geometry.camera import CameraModelCache

    cache = CameraModelCache()
    base = cache.get(cameras.camera_info())
    tall = cache.get(cameras.camera_info(binning_y=2))
    assert tall is not base and (tall.width, tall.height) == (160, 45)
    roi = dict(x_offset=4, y_offset=2, width=40, height=30)
    a = cache.get(cameras.camera_info(roi=SimpleNamespace(**roi)))
    b = cache.get(cameras.camera_info(roi=SimpleNamespace(**{**roi, "height": 20})))
    assert b is not a and (a.height, b.height) == (30, 20)
    cam = PinholeCamera.from_camera_info(cameras.camera_info(p=[0.0] * 12))
    np.testing.assert_array_equal(cam.P, np.hstack([cameras.K, np.zeros((3, 1))]))
    assert cam.ray_planes()[0] is cam.ray_planes()[0]  # cached
