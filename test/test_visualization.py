"""depth_nodes.visualization.colorize against its formula: t = clip((x - lo) / (hi - lo), 0, 1)."""
import cv2
import numpy as np
import pytest

from depth_nodes.visualization import colorize


def _expected(x, lo, hi, inverse):
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(1, 256), cv2.COLORMAP_TURBO)[0]  # BGR
    t = np.clip((np.nan_to_num(x, nan=lo, posinf=lo, neginf=lo) - lo) / (hi - lo), 0.0, 1.0)
    if inverse:
        t = 1.0 - t
    out = lut[np.rint(t * 255.0).astype(int)].copy()
    out[~np.isfinite(x)] = 0
    return out


@pytest.mark.parametrize("inverse", [False, True])
def test_colorize_matches_formula_and_blacks_out_invalid(inverse):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1.0, 6.0, (37, 53)).astype(np.float32)
    x[3, 4], x[10, 11], x[20, 0] = np.nan, np.inf, -np.inf
    bgr = colorize(x, 0.5, 5.0, inverse=inverse, bgr=True)
    want = _expected(x, 0.5, 5.0, inverse)
    # index rounding may differ by one step at exact .5 boundaries; colours of adjacent indices are close
    index_diff = np.abs(bgr.astype(int) - want.astype(int)).max(axis=2)
    assert (index_diff <= 8).all() and (index_diff == 0).mean() > 0.99
    assert (bgr[3, 4] == 0).all() and (bgr[10, 11] == 0).all() and (bgr[20, 0] == 0).all()
    rgb = colorize(x, 0.5, 5.0, inverse=inverse)
    assert np.array_equal(rgb, bgr[:, :, ::-1])
    # clipping: below vmin is the cold (or, inverted, warm) end, above vmax the other end
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(1, 256), cv2.COLORMAP_TURBO)[0]
    lo_i, hi_i = (255, 0) if inverse else (0, 255)
    low = np.argwhere(x < 0.5)[0]
    high = np.argwhere((x > 5.0) & np.isfinite(x))[0]
    assert np.array_equal(bgr[tuple(low)], lut[lo_i]) and np.array_equal(bgr[tuple(high)], lut[hi_i])


def test_colorize_automatic_range_degenerate_and_empty():
    x = np.linspace(0.0, 1.0, 100 * 50, dtype=np.float32).reshape(50, 100)
    auto = colorize(x, bgr=True)
    lo, hi = np.percentile(x, [2, 98])
    assert np.array_equal(auto, colorize(x, float(lo), float(hi), bgr=True))
    flat = colorize(np.full((4, 5), 2.0, np.float32), 2.0, 2.0, bgr=True)  # vmax <= vmin: t = 0
    lut0 = cv2.applyColorMap(np.zeros((1, 1), np.uint8), cv2.COLORMAP_TURBO)[0, 0]
    assert (flat == lut0).all()
    assert (colorize(np.full((4, 5), np.nan, np.float32)) == 0).all()
    with pytest.raises(ValueError, match="shape"):
        colorize(np.zeros((2, 3, 4), np.float32))
