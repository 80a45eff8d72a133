"""Real-pair evaluation (HPatches layout): the resize carried into the homography, query pixels,
and the error of a describer whose best match is known."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from depth_training.evaluation.homography_pairs import (HomographyError, HomographyPair, apply_homography,
                                                        evaluate_pairs, load_sequence, query_pixels, scale_matrix)


def _texture(h, w, seed=0):
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(60):
        p = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(img, p, int(rng.integers(3, 20)), tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
    return img


def test_scale_matrix_is_the_pixel_centre_resize():
    S = scale_matrix(0.5, 0.25)
    # x' + 0.5 = s (x + 0.5): the edge between pixels 0 and 1 (x = 0.5) becomes the centre of pixel 0 at s = 1/2
    assert np.allclose(apply_homography(S, np.array([[0.5, 1.5], [3.0, 5.0]])), [[0.0, 0.0], [1.25, 0.875]])


def test_sequence_resize_keeps_the_homography_exact(tmp_path):
    h, w = 300, 500                                # not multiples of 32; x and y factors differ after rounding
    img = _texture(h, w)
    H = np.array([[0.9, 0.05, 20.0], [-0.04, 1.1, -10.0], [1e-4, -5e-5, 1.0]])
    warped = cv2.warpPerspective(img, H, (w, h), flags=cv2.INTER_LINEAR)
    cv2.imwrite(str(tmp_path / "1.png"), img)
    cv2.imwrite(str(tmp_path / "2.png"), warped)
    np.savetxt(tmp_path / "H_1_2", H)
    (pair,) = load_sequence(tmp_path, max_side=256)
    assert pair.image_a.shape == (160, 256, 3) and pair.image_b.shape == (160, 256, 3)
    sx, sy = 256 / 500, 160 / 300
    q = np.array([[10.0, 20.0], [250.0, 150.0], [400.0, 30.0]])
    expect = apply_homography(H, q)
    got = apply_homography(pair.H, np.c_[(q[:, 0] + 0.5) * sx - 0.5, (q[:, 1] + 0.5) * sy - 0.5])
    assert np.allclose(got, np.c_[(expect[:, 0] + 0.5) * sx - 0.5, (expect[:, 1] + 0.5) * sy - 0.5], atol=1e-9)
    pts = query_pixels(pair, 50)
    assert 0 < len(pts) <= 50
    inside = apply_homography(pair.H, pts)
    assert (inside >= 0).all() and (inside[:, 0] <= 255).all() and (inside[:, 1] <= 159).all()
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1) + np.eye(len(pts)) * 99
    assert d.min() >= 4


def test_errors_of_a_describer_with_a_known_best_match():
    """Descriptors = the pixel's own coordinates mapped into B (exact) vs shifted by 3 px in x:
    errors 0 and 3 for every query (B is wider than A, so the shifted match stays inside it)."""
    h, w = 96, 128
    H = np.array([[1.0, 0.0, 5.0], [0.0, 1.0, -4.0], [0.0, 0.0, 1.0]])
    pair = HomographyPair("t", _texture(h, w, 1), _texture(h, w + 32, 2), H)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    yb, xb = np.mgrid[0:h, 0:w + 32].astype(np.float32)
    grid_b = torch.from_numpy(np.stack([xb, yb]))

    def exact(image):
        if image is pair.image_a:   # A's pixel described by where it lands in B
            return torch.from_numpy(np.stack([xs + 5.0, ys - 4.0])), False
        return grid_b, False

    def shifted(image):
        d, ham = exact(image)
        return (d + torch.tensor([3.0, 0.0])[:, None, None] if image is pair.image_a else d), ham

    rep = evaluate_pairs([pair], {"exact": exact, "shifted": shifted}, points=40)
    n = rep["overall"]["exact"]["count"]
    assert n > 10
    assert rep["overall"]["exact"]["median_px"] == 0 and rep["overall"]["exact"]["pck@1"] == 1.0
    s = rep["overall"]["shifted"]
    assert s["count"] == n and s["pck@1"] == 0.0 and s["pck@3"] == 1.0 and s["median_px"] == pytest.approx(3.0)


def test_bad_sequence_folders_are_named(tmp_path):
    with pytest.raises(HomographyError, match="no such folder"):
        load_sequence(tmp_path / "none")
    with pytest.raises(HomographyError, match="no homography files"):
        load_sequence(tmp_path)
    np.savetxt(tmp_path / "H_1_2", np.eye(3))
    with pytest.raises(HomographyError, match="no image 1"):
        load_sequence(tmp_path)
    cv2.imwrite(str(tmp_path / "1.png"), _texture(64, 64))
    cv2.imwrite(str(tmp_path / "2.png"), _texture(64, 64))
    (tmp_path / "H_1_2").write_text("1 0 0\n0 1 0\n")
    with pytest.raises(HomographyError, match="H_1_2: not an invertible 3x3"):
        load_sequence(tmp_path)
