"""The perception demo's accuracy measures (scripts/perception_demo.py): keypoint ground truth and AbsRel."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("perception_demo", REPO / "scripts/perception_demo.py")
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)


def _gt(depth_frames, shifts):
    K = np.array([[100.0, 0, 39.5], [0, 100.0, 29.5], [0, 0, 1]])
    T = []
    for dx in shifts:  # camera f at world x = dx, looking along +z
        t = np.eye(4)
        t[0, 3] = dx
        T.append(t)
    return {"K_color": K, "T_world_color_optical": np.stack(T), "depth_m": np.stack(depth_frames)}


def test_true_keypoints_follow_the_camera_and_hide_occluded_ones():
    flat = np.full((60, 80), 2.0, np.float32)
    occluder = flat.copy()
    occluder[:, :30] = 1.0  # something in front of the left part in frame 2
    gt = _gt([flat, flat, occluder], [0.0, 0.1, 0.1])
    ref = np.array([[40.0, 30.0], [20.0, 10.0]])
    out = demo.true_keypoints(ref, gt, 0, [0, 1, 2])
    np.testing.assert_allclose(out[0], ref, atol=1e-9)
    # camera moved +0.1 m in x at 2 m depth: points move -fx * 0.1 / 2 = -5 px
    np.testing.assert_allclose(out[1], ref - [5.0, 0.0], atol=1e-9)
    assert np.isnan(out[2][1]).all() and np.allclose(out[2][0], [35.0, 30.0])


def test_absrel_counts_only_pixels_valid_in_both():
    gt = np.array([[1.0, 2.0], [np.nan, 4.0]], np.float32)
    pred = np.array([[1.1, np.nan], [3.0, 2.0]], np.float32)
    err, cover = demo.absrel(pred, gt)
    assert np.isclose(err, (0.1 + 0.5) / 2) and np.isclose(cover, 2 / 3)
    assert np.isnan(demo.absrel(np.full((2, 2), np.nan), gt)[0])
