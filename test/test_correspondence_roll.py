"""Camera-roll augmentation: rolled frames are exact views, so correspondences through them are exact."""
import numpy as np
import pytest

from depth_training.correspondence.dataset import PairDataset, SampleConfig
from depth_training.correspondence.geometry import find_correspondences, pixel_grid
from depth_training.correspondence.masks import Plane
from depth_training.correspondence.roll import roll_frame, roll_homography, roll_matrix
from depth_training.correspondence.scenes import Scene
from depth_training.sim.transforms import look_at_optical

H, W = 48, 64
K = np.array([[70.0, 0.0, 30.5], [0.0, 64.0, 25.0], [0.0, 0.0, 1.0]])  # fx != fy, off-centre principal point


# two views of the table z = 0 (world z up), from different places
TA = look_at_optical([0.3, 0.0, 0.5], [0.0, 0.0, 0.0], up=(0.0, 0.0, -1.0))
TB = look_at_optical([0.2, 0.25, 0.45], [0.02, 0.0, 0.0], up=(0.0, 0.0, -1.0))


def _plane_depth(T):
    """Depth of the table z = 0 seen by camera T (world z up)."""
    rays = np.concatenate([pixel_grid(H, W), np.ones((H * W, 1))], 1) @ np.linalg.inv(K).T
    d_world = rays @ T[:3, :3].T
    t = -T[2, 3] / d_world[:, 2]
    return np.where(t > 0, t, np.nan).reshape(H, W).astype(np.float32)


def test_rolled_correspondences_are_the_originals_moved_by_the_homography():
    da, db = _plane_depth(TA), _plane_depth(TB)
    c = find_correspondences(da, db, K, K, TA, TB)
    theta = np.deg2rad(37.0)
    img = np.zeros((H, W, 3), np.uint8)
    _, db_r, _, TB_r, outside = roll_frame(img, db, np.ones((H, W), bool), K, TB, theta)
    cr = find_correspondences(da, db_r, K, K, TA, TB_r)
    common, ia, ir = np.intersect1d(c.idx_a, cr.idx_a, return_indices=True)
    assert common.size > 0.4 * c.count
    Hm = roll_homography(K, theta)
    p = np.concatenate([c.uv_b[ia], np.ones((common.size, 1))], 1) @ Hm.T
    np.testing.assert_allclose(p[:, :2] / p[:, 2:], cr.uv_b[ir], atol=1e-9)
    # the pose turned about its own optical axis only: same centre, same viewing direction
    np.testing.assert_allclose(TB_r[:3, 3], TB[:3, 3])
    np.testing.assert_allclose(TB_r[:3, 2], TB[:3, 2], atol=1e-12)
    assert np.allclose(roll_matrix(theta) @ roll_matrix(-theta), np.eye(3))
    # the rolled depth is the plane seen by the rolled camera (nearest-neighbour resampling)
    ok = ~outside & np.isfinite(db_r)
    np.testing.assert_allclose(db_r[ok], _plane_depth(TB_r)[ok], rtol=0.03)
    assert outside.any() and np.isnan(db_r[outside]).all()


def test_a_dot_moves_to_the_homography_of_its_pixel():
    img = np.zeros((H, W, 3), np.uint8)
    img[20, 40] = 255
    depth = np.ones((H, W), np.float32)
    mask = np.zeros((H, W), bool)
    mask[20, 40] = True
    theta = np.deg2rad(-75.0)
    out, _, m, _, _ = roll_frame(img, depth, mask, K, np.eye(4), theta)
    q = roll_homography(K, theta) @ [40.0, 20.0, 1.0]
    u, v = np.floor(q[:2] / q[2] + 0.5).astype(int)
    assert m[v, u] and m.sum() == 1
    assert np.unravel_index(out[..., 0].argmax(), (H, W)) == (v, u)


def _textured(T):
    """Colour of the table under camera T: a smooth function of the world point (so views agree)."""
    rays = np.concatenate([pixel_grid(H, W), np.ones((H * W, 1))], 1) @ np.linalg.inv(K).T
    X = T[:3, 3] + (rays @ T[:3, :3].T) * _plane_depth(T).reshape(-1, 1)
    c = np.stack([np.sin(25 * X[:, 0]), np.cos(21 * X[:, 1]), np.sin(17 * (X[:, 0] + X[:, 1]))], 1)
    return np.nan_to_num(127.5 + 120 * c).reshape(H, W, 3).astype(np.uint8)


def _plane_scene(images) -> Scene:
    """The two views as a one-pair scene, with an object mask over the image's middle."""
    masks = np.zeros((2, H, W), bool)
    masks[:, 8:40, 10:54] = True
    return Scene("plane", images, np.stack([_plane_depth(TA), _plane_depth(TB)]), np.stack([K, K]), np.stack([TA, TB]),
                 np.zeros(2, np.int64), masks, np.array([[0, 1]]), Plane(np.array([0.0, 0.0, 1.0]), 0.0))


def test_rolled_training_samples_index_the_rolled_images():
    """With roll_p = 1 the matches of a sample show the same surface point in the rolled images."""
    images = np.stack([_textured(TA), _textured(TB)])
    sc = _plane_scene(images)
    cfg = SampleConfig(matches=128, roll_p=1.0, background_p=0.0, jitter_p=0.0, flip_p=0.0)
    for seed in range(3):
        s = PairDataset(sc, 0, cfg).sample(0, 1, np.random.default_rng(seed))
        assert not np.array_equal(s["image_a"], images[0]) and not np.array_equal(s["image_b"], images[1])
        ca = s["image_a"].reshape(-1, 3)[s["match_a"]].astype(float)
        cb = s["image_b"].reshape(-1, 3)[s["match_b"]].astype(float)
        diff = np.abs(ca - cb).mean()
        shuffled = np.abs(ca - np.roll(cb, 7, axis=0)).mean()
        assert diff < 0.2 * shuffled, (diff, shuffled)
        r = np.floor(s["match_uv_b"] + 0.5).astype(int)
        assert np.array_equal(r[:, 1] * W + r[:, 0], s["match_b"])


@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_exact_match_coordinates_follow_the_flip(flip):
    sc = _plane_scene(np.random.default_rng(1).integers(0, 256, (2, H, W, 3), dtype=np.uint8))
    s = PairDataset(sc, 0, SampleConfig(matches=32, flip_p=flip, background_p=0, jitter_p=0)).sample(0, 1,
                                                                                              np.random.default_rng(0))
    r = np.floor(s["match_uv_b"] + 0.5).astype(int)
    assert np.array_equal(r[:, 1] * W + r[:, 0], s["match_b"])
