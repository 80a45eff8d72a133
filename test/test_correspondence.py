"""Correspondences from recorded poses + depth: exact against the simulator, occlusion, rounding,
K from camera_info, non-match distance, static-scene rejection, geometry masks, pair rules."""
import numpy as np
import pytest

from depth_training.correspondence.geometry import (
    MATCH, OCCLUDED, VIOLATION, find_correspondences, pixel_grid, project_pixels, round_pixels)
from depth_training.correspondence.pairs import PairRules, viewpoint_change
from depth_training.correspondence.sampling import flat_to_uv, sample_nonmatches
from depth_training.correspondence.masks import Plane
from depth_training.correspondence.scenes import MaskRules, scene_from_arrays

from descriptor_helpers import H, W, descriptor_bags, groundtruth, scaled_K
from descriptor_helpers import scene as _scene


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    return descriptor_bags(tmp_path_factory)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "descriptor_cache"


_SCENES = {}


def scene(bag, cache, pose="tf", **kw):
    """Scenes built once per module and settings (building one decodes the bag and tests every pair)."""
    key = (str(bag), str(cache), pose, tuple(sorted(kw.items())))
    if key not in _SCENES:
        _SCENES[key] = _scene(bag, cache, pose, **kw)
    return _SCENES[key]


def _gt_error(sc, gt, pairs, sx=1.0, sy=1.0):
    """Max distance between our matches and the simulator's exact projection (exact depth, poses, K)."""
    worst, total = 0.0, 0
    K = scaled_K(gt.K_color, sx, sy)
    for i, j in pairs:
        c = find_correspondences(sc.depth[i], sc.depth[j], sc.K[i], sc.K[j], sc.poses[i], sc.poses[j], mask_a=sc.masks[i])
        uv = pixel_grid(*sc.shape)[c.idx_a]
        # exact depth at our pixel centre in the simulator's own image
        ua = np.floor((uv[:, 0] + 0.5) / sx).astype(int)
        va = np.floor((uv[:, 1] + 0.5) / sy).astype(int)
        if sx == 1.0:
            z = gt.depth_m[i][va, ua]
        else:
            z = sc.depth[i].reshape(-1)[c.idx_a]  # resized depth is nearest-neighbour of the exact one
        uv_gt, _ = project_pixels(uv, z, K, K, gt.T_world_color_optical[i], gt.T_world_color_optical[j])
        worst = max(worst, float(np.linalg.norm(uv_gt - c.uv_b, axis=1).max()))
        total += c.count
    return worst, total


@pytest.mark.parametrize("pose", ["tf", "fk"])
def test_matches_within_1px_of_the_simulators_projection(bags, cache, pose):
    sc = scene(bags["a"], cache, pose)
    gt = groundtruth(bags["a"])
    np.testing.assert_allclose(sc.K[0], gt.K_color, atol=1e-4)  # K from camera_info
    worst, total = _gt_error(sc, gt, sc.pairs[:: max(1, len(sc.pairs) // 25)])
    assert total > 1000
    assert worst < 1.0, worst


def test_K_comes_from_camera_info_at_the_decoded_size(bags, cache):
    sc = scene(bags["a"], cache, width=W // 2, height=H // 2, min_matches=5)
    gt = groundtruth(bags["a"])
    np.testing.assert_allclose(sc.K[0], scaled_K(gt.K_color, 0.5, 0.5), atol=1e-4)
    # and the projection uses it: the matches still agree with the exact projection at this size
    c_pairs = sc.pairs[:: max(1, len(sc.pairs) // 10)]
    for i, j in c_pairs:
        c = find_correspondences(sc.depth[i], sc.depth[j], sc.K[i], sc.K[j], sc.poses[i], sc.poses[j], mask_a=sc.masks[i])
        uv = pixel_grid(*sc.shape)[c.idx_a]
        K = scaled_K(gt.K_color, 0.5, 0.5)
        uv_gt, _ = project_pixels(uv, sc.depth[i].reshape(-1)[c.idx_a], K, K, gt.T_world_color_optical[i],
                                  gt.T_world_color_optical[j])
        assert np.abs(uv_gt - c.uv_b).max() < 0.5
    # a K that does not follow camera_info (e.g. the full-size one, hard-coded) would not agree
    i, j = sc.pairs[len(sc.pairs) // 2]
    wrong = gt.K_color
    c = find_correspondences(sc.depth[i], sc.depth[j], sc.K[i], sc.K[j], sc.poses[i], sc.poses[j])
    uv = pixel_grid(*sc.shape)[c.idx_a]
    uv_w, _ = project_pixels(uv, sc.depth[i].reshape(-1)[c.idx_a], wrong, wrong, sc.poses[i], sc.poses[j])
    assert np.abs(uv_w - c.uv_b).max() > 1.0


def test_occluded_points_are_rejected_synthetic():
    K = np.array([[50.0, 0, 15.5], [0, 50.0, 11.5], [0, 0, 1]])
    h, w = 24, 32
    a = np.full((h, w), 1.0, np.float32)  # a wall 1 m ahead
    b = a.copy()
    b[8:16, 10:20] = 0.5  # in B an occluder in front of part of the wall
    T = np.eye(4)
    c = find_correspondences(a, b, K, K, T, T)
    st = c.status.reshape(h, w)
    assert (st[8:16, 10:20] == OCCLUDED).all()
    assert (st[:8] == MATCH).all() and (st[16:] == MATCH).all()
    assert c.count == h * w - 80
    # the opposite: B sees farther than the point (the point moved away) is a violation, not a match
    c2 = find_correspondences(b, a, K, K, T, T)
    assert (c2.status.reshape(h, w)[8:16, 10:20] == VIOLATION).all()


def test_occluded_points_are_rejected_against_ground_truth(bags, cache):
    # the distractor episode: the flying object hides parts of the table and objects in many pairs
    sc = scene(bags["d"], cache, max_violation=1.0)
    gt = groundtruth(bags["d"])
    K = gt.K_color
    checked = 0
    for i, j in sc.pairs[:: max(1, len(sc.pairs) // 25)]:
        c = find_correspondences(sc.depth[i], sc.depth[j], sc.K[i], sc.K[j], sc.poses[i], sc.poses[j])
        uv = pixel_grid(H, W)[c.idx_a]
        uv_b, z_b = project_pixels(uv, gt.depth_m[i].reshape(-1)[c.idx_a], K, K, gt.T_world_color_optical[i],
                                   gt.T_world_color_optical[j])
        r = np.clip(round_pixels(uv_b), 0, [W - 1, H - 1])
        exact_b = gt.depth_m[j][r[:, 1], r[:, 0]]
        # no match of ours is hidden in B by a nearer surface (exact depths), beyond the tolerance
        assert (exact_b >= z_b - (0.004 + 0.01 * z_b) - 1e-3).all()
        checked += int((c.status == OCCLUDED).sum())
    assert checked > 0  # the pairs do contain occlusions, and they were rejected


def test_rounding_is_nearest_never_truncation():
    np.testing.assert_array_equal(round_pixels([-0.4, 0.49, 0.5, 2.5, 2.7, -0.6]), [0, 0, 1, 3, 3, -1])
    K = np.array([[100.0, 0, 10.0], [0, 100.0, 10.0], [0, 0, 1]])
    # B is A shifted by 0.7 px to the left: pixel (5, 5) of A lands at (5.7, 5) in B -> pixel 6, not 5
    T_b = np.eye(4)
    T_b[0, 3] = -0.007  # camera B 7 mm to the left at 1 m: u_b = u_a + 0.7
    depth = np.ones((20, 20), np.float32)
    c = find_correspondences(depth, depth, K, K, np.eye(4), T_b)
    k = np.flatnonzero(c.idx_a == 5 * 20 + 5)[0]
    assert abs(c.uv_b[k, 0] - 5.7) < 1e-9
    assert c.idx_b[k] == 5 * 20 + 6


def test_nonmatches_keep_the_minimum_distance():
    rng = np.random.default_rng(0)
    w = 40
    match = np.array([[10.0, 10.0], [30.0, 5.0], [20.0, 20.0]])
    pool = np.arange(30 * w)  # the whole image, including the pixels at the matches
    idx, valid = sample_nonmatches(match, pool, w, 200, rng, min_distance=8.0)
    d = np.linalg.norm(flat_to_uv(idx, w) - match[:, None], axis=-1)
    assert (d[valid] >= 8.0).all()
    assert valid.mean() > 0.99  # redrawn, not just dropped
    # a pool that lies entirely within the radius gives no valid non-match at all
    near = np.array([10 * w + 10, 10 * w + 11, 11 * w + 10])
    idx, valid = sample_nonmatches(match[:1], near, w, 20, rng, min_distance=8.0)
    assert not valid.any()


def test_moving_distractor_pixels_and_pairs_are_rejected(bags, cache):
    sc = scene(bags["d"], cache)
    gt = groundtruth(bags["d"])
    dis = gt.object_labels[gt.object_is_distractor]
    assert sc.stats.rejected["moving_scene"] > 0
    violations_on_distractor = 0
    everything = scene(bags["d"], cache, max_violation=1.0)  # no pair rejected: test the pixels alone
    for i, j in everything.pairs[:: max(1, len(everything.pairs) // 40)]:
        c = find_correspondences(sc.depth[i], sc.depth[j], sc.K[i], sc.K[j], sc.poses[i], sc.poses[j])
        labels_a = gt.object_ids[i].reshape(-1)
        assert not np.isin(labels_a[c.idx_a], dis).any()  # no match on the moving object
        violations_on_distractor += int(np.isin(labels_a[c.status == VIOLATION], dis).sum())
    assert violations_on_distractor > 0
    # pairs of a static scene are not rejected as moving
    assert scene(bags["a"], cache).stats.rejected["moving_scene"] == 0


def test_object_masks_come_from_the_geometry(bags, cache):
    sc = scene(bags["a"], cache)
    gt = groundtruth(bags["a"])
    assert abs(abs(sc.plane.normal[2]) - 1) < 1e-3 and abs(sc.plane.offset) < 3e-3  # the table is z = 0
    obj = gt.object_ids > 0
    precision = (sc.masks & obj).sum() / sc.masks.sum()
    # recall over the object pixels the geometry can see: with depth, higher than the 8 mm threshold
    seen = obj & np.isfinite(sc.depth) & (sc.depth > 0)
    seen &= np.stack([_height(sc, i) for i in range(len(sc.depth))]) > 0.012
    recall = (sc.masks & seen).sum() / seen.sum()
    assert precision > 0.9 and recall > 0.9, (precision, recall)


def _height(sc, i):
    from depth_training.correspondence.masks import backproject_world

    X, idx = backproject_world(sc.depth[i], sc.K[i], sc.poses[i])
    out = np.full(sc.depth[i].size, -1.0)
    out[idx] = sc.plane.height(X)
    return out.reshape(sc.depth[i].shape)


def test_pairs_respect_the_viewpoint_rules(bags, cache):
    rules = dict(min_rotation_deg=15.0, min_translation_m=0.08)
    sc = scene(bags["a"], cache, **rules)
    assert len(sc.pairs) > 0
    for i, j in sc.pairs:
        ang, dist = viewpoint_change(sc.poses[i], sc.poses[j])
        assert ang >= 15.0 or dist >= 0.08


def test_a_pair_without_overlap_is_skipped():
    K = np.array([[50.0, 0, 15.5], [0, 50.0, 11.5], [0, 0, 1]])
    depth = np.full((2, 24, 32), 0.5, np.float32)
    poses = np.stack([np.eye(4), np.eye(4)])
    poses[1, 0, 3] = 5.0  # 5 m to the side: the two views do not overlap
    table = Plane(np.array([0, 0, -1.0]), 0.6)  # 10 cm behind the wall: the wall is "object"
    sc = scene_from_arrays("x", np.zeros((2, 24, 32, 3), np.uint8), depth, np.stack([K, K]), poses, np.arange(2),
                           MaskRules(plane=table, workspace_radius=100.0), PairRules(min_matches=1))
    assert sc.masks.all()
    assert len(sc.pairs) == 0 and sc.stats.rejected["too_few_matches"] == 2


def test_local_nonmatches_lie_in_the_annulus_on_the_object():
    from depth_training.correspondence.sampling import sample_local_nonmatches

    rng = np.random.default_rng(0)
    h, w = 30, 40
    allowed = np.zeros((h, w), bool)
    allowed[5:25, 5:35] = True
    match = np.array([[10.0, 10.0], [30.0, 20.0], [20.0, 15.0]])
    idx, valid = sample_local_nonmatches(match, allowed, 300, rng, min_distance=3.0, radius=8.0)
    uv = flat_to_uv(idx, w)
    d = np.linalg.norm(uv - match[:, None], axis=-1)
    assert ((d[valid] >= 3.0) & (d[valid] <= 8.0 + 0.75)).all()  # rounding moves a pixel by <= sqrt(2)/2
    assert allowed[uv[valid][:, 1].astype(int), uv[valid][:, 0].astype(int)].all()
    assert valid[2].mean() > 0.95  # the third match is far from the mask's edge
    assert 0.3 < valid[0].mean() < 0.95  # the first is near a corner: the part off the object is invalid
    # spread over the annulus (uniform by area): about (8^2 - 5.5^2) / (8^2 - 3^2) beyond 5.5 px
    outer = (d[2][valid[2]] > 5.5).mean()
    assert abs(outer - (64 - 30.25) / (64 - 9)) < 0.1
    with pytest.raises(ValueError, match="below the minimum distance"):
        sample_local_nonmatches(match, allowed, 4, rng, min_distance=5.0, radius=2.0)
