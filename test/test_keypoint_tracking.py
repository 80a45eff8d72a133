"""Descriptor keypoint tracking core (ROS-free): best match, window + fallback, lost, re-acquisition, PCA view."""
from __future__ import annotations

import numpy as np
import pytest

from depth_nodes.pipelines.keypoint_tracking import (
    DescriptorPCA, KeypointTracker, TrackerConfig, descriptors_dhw, squared_distance_maps)


def _field(h=40, w=50, dim=8, seed=0):
    return np.random.default_rng(seed).normal(size=(dim, h, w)).astype(np.float32)  # channels first


def test_squared_distances_match_brute_force():
    f = _field(7, 9, 5)
    refs = np.random.default_rng(1).normal(size=(3, 5)).astype(np.float32)
    d = squared_distance_maps(f, refs)
    brute = ((f[None] - refs[:, :, None, None]) ** 2).sum(1)
    np.testing.assert_allclose(d, brute, rtol=1e-5, atol=1e-5)


def test_tracks_planted_descriptors_to_their_pixels_and_follows_motion():
    f = _field()
    pts = [(5, 7), (30, 20), (44, 35)]
    refs = np.stack([f[:, v, u] for u, v in pts])
    tr = KeypointTracker(refs, TrackerConfig(lost_threshold=0.5, search_radius=6))
    r = tr.update(f)
    assert r.tracked.all() and not r.in_window.any()  # first frame: whole-image search
    np.testing.assert_array_equal(r.pixels, np.array(pts, np.float32))
    np.testing.assert_allclose(r.scores, 1.0, atol=1e-3)
    moved = np.roll(f, shift=(2, 3), axis=(1, 2))  # everything moves by du=3, dv=2
    r2 = tr.update(moved)
    assert r2.tracked.all() and r2.in_window.all()
    np.testing.assert_array_equal(r2.pixels, np.array([(u + 3, v + 2) for u, v in pts], np.float32))
    np.testing.assert_array_equal(r2.ids, [0, 1, 2])


def test_window_falls_back_to_whole_image_on_a_jump():
    f = _field()
    refs = f[:, 10, 10][None]
    tr = KeypointTracker(refs, TrackerConfig(lost_threshold=0.5, search_radius=3))
    tr.update(f)
    jumped = np.roll(f, shift=(20, 25), axis=(1, 2))
    r = tr.update(jumped)
    assert r.tracked[0] and not r.in_window[0]
    np.testing.assert_array_equal(r.pixels[0], (35, 30))


def test_lost_then_reacquired_with_the_same_id():
    f = _field()
    refs = np.stack([f[:, 10, 10], f[:, 20, 30]])
    tr = KeypointTracker(refs, TrackerConfig(lost_threshold=0.5, search_radius=4))
    tr.update(f)
    occluded = f.copy()
    occluded[:, 5:16, 5:16] = 10.0  # keypoint 0's surroundings replaced: nothing within threshold
    r = tr.update(occluded)
    assert not r.tracked[0] and r.tracked[1]
    assert np.isnan(r.pixels[0]).all() and r.scores[0] == 0 and r.distances[0] > 0.5
    r = tr.update(f)
    assert r.tracked.all() and tr.reacquired == 1
    np.testing.assert_array_equal(r.pixels[0], (10, 10))
    np.testing.assert_array_equal(r.ids, [0, 1])


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="lost_threshold"):
        TrackerConfig(lost_threshold=0)
    with pytest.raises(ValueError, match="NaN"):
        KeypointTracker(np.array([[np.nan, 1.0]]))
    tr = KeypointTracker(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="descriptor image"):
        tr.update(np.zeros((3, 5, 5), np.float32))
    with pytest.raises(ValueError, match="batch 1"):
        descriptors_dhw(np.zeros((2, 3, 4, 4)))


def test_descriptors_dhw_drops_the_batch_axis():
    d = np.arange(2 * 3 * 4, dtype=np.float64).reshape(1, 2, 3, 4)
    out = descriptors_dhw(d)
    assert out.shape == (2, 3, 4) and out.dtype == np.float32 and out[1, 2, 1] == d[0, 1, 2, 1]


def test_pca_view_maps_principal_axis_to_colour_and_is_stable():
    rng = np.random.default_rng(0)
    t = np.linspace(-1, 1, 30 * 40).reshape(30, 40)
    axis = np.array([0.0, 3.0, 0.0, 4.0]) / 5.0
    f = np.moveaxis(t[..., None] * axis + 0.01 * rng.normal(size=(30, 40, 4)), -1, 0).astype(np.float32)
    pca = DescriptorPCA()
    rgb = pca.colorize(f)
    assert rgb.shape == (30, 40, 3) and rgb.dtype == np.uint8
    np.testing.assert_allclose(np.abs(pca.axes[:, 0]), axis, atol=0.02)
    # red follows the principal component monotonically (sign fixed: largest loading positive)
    assert rgb[0, 0, 0] < rgb[15, 20, 0] < rgb[-1, -1, 0]
    again = pca.colorize(f[:, ::-1].copy())  # fitted once: same colours for the same descriptors
    np.testing.assert_array_equal(again[::-1], rgb)


def test_a_window_of_whole_rows_is_used_without_a_copy_and_gives_the_copys_results():
    """The letterbox crop of a wide image (rows top..bottom of every channel) is matched and coloured
    through a strided (D, h*W) view; other windows are copied. Both give what a contiguous copy gives."""
    import cv2

    from depth_nodes.pipelines.descriptor_tracking import DescriptorTrackingPipeline
    from depth_nodes.pipelines.keypoint_tracking import DescriptorPCA, flat_channels

    rng = np.random.default_rng(0)
    full = rng.normal(size=(16, 48, 64)).astype(np.float32)
    rows = full[:, 6:42, :]                                    # whole rows: a view
    flat = flat_channels(rows)
    assert np.shares_memory(flat, full) and flat.shape == (16, 36 * 64)
    np.testing.assert_array_equal(flat, np.ascontiguousarray(rows).reshape(16, -1))
    cols = full[:, :, 5:60]                                    # part of each row: copied
    assert not np.shares_memory(flat_channels(cols), full)
    np.testing.assert_array_equal(flat_channels(cols), np.ascontiguousarray(cols).reshape(16, -1))
    refs = rng.normal(size=(3, 16)).astype(np.float32)
    np.testing.assert_allclose(squared_distance_maps(rows, refs), squared_distance_maps(rows.copy(), refs),
                               rtol=1e-6, atol=1e-5)
    pipe = object.__new__(DescriptorTrackingPipeline)         # only the preview is exercised
    pipe.pca = DescriptorPCA().fit(flat.T)
    view = pipe.descriptor_image(rows, 72, 128)
    expect = cv2.resize(DescriptorPCA().fit(flat.T).colorize(rows.copy()), (128, 72), interpolation=cv2.INTER_NEAREST)
    assert view.shape == (72, 128, 3) and np.array_equal(view, expect)
    # every second row (the preview of large windows): per-row products on the strided rows
    pca = DescriptorPCA().fit(flat.T)
    np.testing.assert_array_equal(pca.colorize(full[:, ::2, :]), pca.colorize(np.ascontiguousarray(full[:, ::2, :])))
    # large windows: a grid of every step-th row and column (step = ceil(sqrt(pixels / 5000))), the
    # pixel in the middle of each block, scaled back linearly
    for h, w, step in ((320, 400, 6), (600, 400, 7), (480, 640, 8)):
        assert DescriptorTrackingPipeline.preview_step(h, w) == step
        big = rng.normal(size=(4, h, w)).astype(np.float32)
        pipe.pca = DescriptorPCA().fit(big.reshape(4, -1).T)
        grid = big[:, step // 2::step, step // 2::step]
        expect = cv2.resize(pipe.pca.colorize(np.ascontiguousarray(grid)), (w, h), interpolation=cv2.INTER_LINEAR)
        assert np.array_equal(pipe.descriptor_image(big, h, w), expect)
        # the grid's pixels are those of the full view's projection (linear scaling keeps grid points
        # only approximately, so compare the grid's projection itself)
        full_view = pipe.pca.colorize(big)
        assert np.array_equal(pipe.pca.colorize(np.ascontiguousarray(grid)), full_view[step // 2::step, step // 2::step])
    assert DescriptorTrackingPipeline.preview_step(96, 128) == 1 and DescriptorTrackingPipeline.preview_step(250, 400) == 1


def test_distances_and_scores_of_an_inexact_match():
    """A match off by a known vector: distance = its L2 norm, score = 1 - d / lost_threshold."""
    f = np.zeros((4, 20, 30), np.float32)
    f[:, 12, 7] = [1.0, 2.0, 0.0, 0.0]
    ref = np.array([[1.3, 2.4, 0.0, 0.0]], np.float32)  # off by (0.3, 0.4): distance 0.5
    r = KeypointTracker(ref, TrackerConfig(lost_threshold=0.8)).update(f)
    assert r.tracked[0] and tuple(r.pixels[0]) == (7.0, 12.0)
    assert r.distances[0] == pytest.approx(0.5, rel=1e-5) and r.scores[0] == pytest.approx(1 - 0.5 / 0.8, rel=1e-5)


def test_search_radius_zero_always_searches_the_whole_image():
    """With no window the best match anywhere wins, even when the old position still matches."""
    f = np.zeros((4, 20, 30), np.float32)
    f[:, 5, 5] = [1.0, 0.0, 0.0, 0.0]
    ref = f[:, 5, 5][None].copy()
    tr = KeypointTracker(ref, TrackerConfig(lost_threshold=0.5, search_radius=0))
    assert tuple(tr.update(f).pixels[0]) == (5.0, 5.0)
    g = np.zeros_like(f)
    g[:, 5, 5] = [1.0, 0.3, 0.0, 0.0]  # still within the threshold at the old position
    g[:, 15, 25] = [1.0, 0.0, 0.0, 0.0]  # exact match elsewhere
    r = tr.update(g)
    assert tuple(r.pixels[0]) == (25.0, 15.0) and not r.in_window[0] and r.distances[0] == 0.0


def test_pca_view_puts_the_mean_descriptor_at_mid_grey():
    rng = np.random.default_rng(3)
    f = (5.0 + rng.normal(size=(6, 30, 40))).astype(np.float32)  # far from the origin
    pca = DescriptorPCA()
    rgb = pca.colorize(f)
    mean_pixel = pca.mean.reshape(6, 1, 1)
    np.testing.assert_allclose(pca.colorize(mean_pixel).reshape(3), 127.5, atol=1.0)
    assert abs(float(rgb.mean()) - 127.5) < 10


def test_pca_axes_are_the_principal_directions_of_a_subsample_around_the_mean():
    rng = np.random.default_rng(5)
    t = rng.normal(size=(400, 1))
    direction = np.array([0.0, 0.6, 0.8, 0.0])
    samples = 10.0 + t * direction + 0.01 * rng.normal(size=(400, 4))  # far from the origin, along one line
    pca = DescriptorPCA(max_samples=100).fit(samples)
    np.testing.assert_allclose(pca.axes[:, 0], direction, atol=0.02)  # sign: largest loading positive
    np.testing.assert_allclose(pca.mean, samples.mean(axis=0), atol=0.2)
    assert pca.std[0] == pytest.approx(1.0, abs=0.2)


def test_coarse_to_fine_search_maps_grid_cells_to_window_pixels():
    """A stride-8 grid and the window of the map it interpolates (bilinear, align_corners=False, as the
    network does) 16 rows down and 8 columns in (a letterbox): references taken from the map at known
    window pixels are found there exactly by the coarse-to-fine search (distance 0), and a grid whose
    offset is not applied would look two cells away (beyond the refinement window)."""
    import torch

    from depth_nodes.pipelines.descriptor_grid import GridDescriptors

    rng = np.random.default_rng(7)
    grid = rng.normal(size=(6, 9, 13)).astype(np.float32)                     # (D, gh, gw), stride 8
    full = torch.nn.functional.interpolate(torch.from_numpy(grid)[None], size=(72, 104), mode="bilinear",
                                           align_corners=False)[0].numpy()
    top, left = 16, 8
    window = np.ascontiguousarray(full[:, top:top + 40, left:left + 88])     # (D, 40, 88)
    # pixels next to cell centres (network pixel 8 j + 4), where the map is 15/16 of that cell's
    # descriptor (a random grid has no smoothness: between cells the nearest cells need not be its own)
    us, vs = 8 * rng.integers(0, 11, 12) + 4, 8 * rng.integers(0, 5, 12) + 4
    refs = np.ascontiguousarray(window[:, vs, us].T)
    config = TrackerConfig(lost_threshold=100.0)
    result = KeypointTracker(refs, config).update(GridDescriptors(grid, 8, left, top, 40, 88))
    np.testing.assert_array_equal(result.pixels, np.stack([us, vs], 1).astype(np.float32))
    assert np.all(result.distances < 1e-3)
    np.testing.assert_array_equal(KeypointTracker(refs, config).update(window).pixels, result.pixels)  # every pixel
    wrong = KeypointTracker(refs, config).update(GridDescriptors(grid, 8, 0, 0, 40, 88))
    assert not np.array_equal(wrong.pixels, result.pixels)


def test_grid_descriptors_are_the_interpolated_map():
    """Windows, single pixels and the whole window of GridDescriptors against torch's bilinear
    interpolation (align_corners=False) of a non-square grid cut at a letterbox offset: edges, corners
    and the last cell (where both taps fall on one cell) included."""
    import torch

    from depth_nodes.pipelines.descriptor_grid import GridDescriptors

    rng = np.random.default_rng(3)
    grid = rng.normal(size=(5, 7, 11)).astype(np.float32)                      # stride 4: 28 x 44 pixels
    full = torch.nn.functional.interpolate(torch.from_numpy(grid)[None], size=(28, 44), mode="bilinear",
                                           align_corners=False)[0].numpy()
    g = GridDescriptors(grid, 4, left=3, top=2, height=25, width=40)
    assert g.shape == (5, 25, 40)
    np.testing.assert_allclose(g.dense(), full[:, 2:27, 3:43], atol=1e-5)
    np.testing.assert_allclose(g.window(0, 7, 30, 40), full[:, 2:9, 33:43], atol=1e-5)
    us, vs = np.array([0, 39, 17, 39]), np.array([0, 24, 11, 0])
    np.testing.assert_allclose(g.at(us, vs), full[:, vs + 2, us + 3].T, atol=1e-5)
    whole = GridDescriptors(grid, 4)  # no letterbox: the grid's full extent
    np.testing.assert_allclose(whole.dense(), full, atol=1e-5)
    with pytest.raises(ValueError, match="not inside"):
        GridDescriptors(grid, 4, left=8, top=0, height=28, width=40)            # 8 + 40 > 44 columns
