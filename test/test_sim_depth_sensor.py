"""The 16UC1 sensor model: millimetre rounding, range limits, edge holes, random dropout."""
import numpy as np
import pytest

from depth_training.sim.depth_sensor import DepthSensorParams, depth_edges, sensor_depth_mm

NO_DROPOUT = DepthSensorParams(dropout=0.0)


def test_valid_pixels_are_rounded_millimetres():
    z = np.full((6, 8), 0.12345)
    z[3:, :] = 0.12355  # a 0.1 mm step: far below the edge threshold
    out = sensor_depth_mm(z, np.random.default_rng(0), NO_DROPOUT)
    assert out.dtype == np.uint16
    assert np.all(out[:3] == 123) and np.all(out[3:] == 124)


def test_out_of_range_and_no_surface_are_holes():
    z = np.full((5, 5), 1.0)
    z[0, 0], z[0, 4], z[4, 0] = 0.05, 3.5, np.nan
    p = DepthSensorParams(min_range_m=0.1, max_range_m=3.0, dropout=0.0, edge_dilate_px=0)
    out = sensor_depth_mm(z, np.random.default_rng(0), p)
    assert out[0, 0] == 0 and out[0, 4] == 0 and out[4, 0] == 0
    assert out[2, 2] == 1000


def test_depth_step_makes_a_hole_band_of_dilated_edges():
    z = np.ones((4, 12))
    z[:, 6:] = 2.0  # an occlusion edge between columns 5 and 6
    edges = depth_edges(z, 0.05)
    assert edges[:, 5:7].all() and not edges[:, :5].any() and not edges[:, 7:].any()
    out = sensor_depth_mm(z, np.random.default_rng(0), DepthSensorParams(dropout=0.0, edge_dilate_px=1))
    assert (out[:, 4:8] == 0).all()
    assert (out[:, :4] == 1000).all() and (out[:, 8:] == 2000).all()


def test_smooth_slope_is_not_an_edge():
    # A plane seen at a grazing angle: 1 % depth change per pixel, below the 5 % threshold.
    z = np.tile(1.0 * 1.01 ** np.arange(40), (5, 1))
    assert not depth_edges(z, 0.05).any()


def test_dropout_rate_and_reproducibility():
    z = np.full((200, 200), 1.5)
    p = DepthSensorParams(dropout=0.02)
    a = sensor_depth_mm(z, np.random.default_rng(7), p)
    b = sensor_depth_mm(z, np.random.default_rng(7), p)
    c = sensor_depth_mm(z, np.random.default_rng(8), p)
    rate = (a == 0).mean()
    assert abs(rate - 0.02) < 4 * np.sqrt(0.02 * 0.98 / z.size)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_bad_parameters_and_shapes_are_rejected():
    with pytest.raises(ValueError, match="min_range"):
        DepthSensorParams(min_range_m=2.0, max_range_m=1.0)
    with pytest.raises(ValueError, match="shape"):
        sensor_depth_mm(np.ones((2, 2, 2)), np.random.default_rng(0))
