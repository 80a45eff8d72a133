"""Correspondence rules at their edges (issue 21): the occlusion tolerance boundary, masks given as
0/1, the workspace radius, viewpoint angles, empty pools, pair acceptance at exactly ``min_matches``,
frames without the object, and a fully augmented training sample against the plain one."""
import warnings

import numpy as np
import pytest

from depth_training.correspondence.dataset import PairDataset, SampleConfig, flip_flat
from depth_training.correspondence import dataset as dataset_module
from depth_training.correspondence.geometry import (MATCH, VIOLATION, Correspondences, find_correspondences,
                                                    project_pixels, static_violation_fraction)
from depth_training.correspondence.masks import Plane, fit_plane_ransac, object_mask, workspace_centre
from depth_training.correspondence.pairs import PairRules, PairStats, candidate_pairs, viewpoint_change
from depth_training.correspondence.sampling import sample_local_nonmatches, sample_matches, sample_nonmatches
from depth_training.correspondence.scenes import MaskRules, scene_from_arrays
from depth_training.sim.transforms import look_at_optical
from test_correspondence_roll import TA, TB, H, K, W, _plane_depth, _plane_scene, _textured


def test_a_depth_difference_of_exactly_the_tolerance_is_a_match():
    depth_a = np.ones((4, 5), np.float32)
    depth_b = np.full((4, 5), 1.5, np.float32)  # tol = 0.25 + 0.25 * 1.0 = 0.5 = the difference
    c = find_correspondences(depth_a, depth_b, K, K, np.eye(4), np.eye(4), abs_tol=0.25, rel_tol=0.25)
    assert c.count == 20 and (c.status == MATCH).all()
    assert find_correspondences(depth_a, depth_b + 0.01, K, K, np.eye(4), np.eye(4), abs_tol=0.25,
                                rel_tol=0.25).count == 0


def test_a_0_1_mask_selects_its_pixels_and_projection_at_the_camera_centre_is_quiet():
    depth = np.ones((4, 5), np.float32)
    mask = np.zeros((4, 5), np.uint8)
    mask[1, 2] = mask[3, 4] = 1
    c = find_correspondences(depth, depth, K, K, np.eye(4), np.eye(4), mask_a=mask)
    assert sorted(c.idx_a.tolist()) == [7, 19]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0/0 at the centre of B: NaN, no warning
        uv, z = project_pixels(np.array([[3.0, 4.0]]), np.array([0.0]), K, K, np.eye(4), np.eye(4))
    assert np.isnan(uv).all() and z[0] == 0.0


def test_object_mask_keeps_only_points_within_the_workspace_radius():
    depth = _plane_depth(TA)
    table = Plane(np.array([0.0, 0.0, 1.0]), 0.01)  # the table is 1 cm above this plane: all "object"
    everything = object_mask(depth, K, TA, table, centre=None)
    assert everything.sum() == np.isfinite(depth).sum()
    near = object_mask(depth, K, TA, table, centre=np.array([0.0, 0.0, 0.0]), workspace_radius=0.05)
    assert 0 < near.sum() < everything.sum() and not (near & ~everything).any()
    assert not object_mask(depth, K, TA, table, centre=np.zeros(3), min_height=0.02).any()  # too low, even near
    pts = np.array([[0.1, 0.2, 0.05], [0.3, 0.2, 0.07], [0.2, 0.4, 0.5], [0.2, 0.1, 0.0]])
    centre = workspace_centre(pts, Plane(np.array([0.0, 0.0, 1.0]), 0.0))  # median of the two above, on the plane
    np.testing.assert_allclose(centre, [0.2, 0.2, 0.0])
    assert workspace_centre(pts[3:], Plane(np.array([0.0, 0.0, 1.0]), 0.0)) is None


@pytest.mark.parametrize("deg", [10.0, 30.0, 90.0, 150.0])
def test_viewpoint_change_is_the_rotation_angle_and_the_centre_distance(deg):
    t = np.deg2rad(deg)
    T_b = np.eye(4)
    T_b[:3, :3] = [[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]]
    T_b[:3, 3] = [0.3, 0.4, 0.0]
    angle, dist = viewpoint_change(np.eye(4), T_b)
    assert angle == pytest.approx(deg, abs=1e-6) and dist == pytest.approx(0.5)


def test_an_empty_pool_gives_invalid_boolean_non_matches_and_the_minimum_distance_is_allowed():
    idx, valid = sample_nonmatches(np.zeros((3, 2)), np.zeros(0, np.int64), 8, 4, np.random.default_rng(0))
    assert idx.shape == valid.shape == (3, 4) and valid.dtype == bool and not valid.any()
    idx, valid = sample_local_nonmatches(np.zeros((2, 2)), np.zeros((6, 8), bool), 0, np.random.default_rng(0))
    assert idx.shape == valid.shape == (2, 0) and valid.dtype == bool
    idx, valid = sample_nonmatches(np.array([[1.0, 2.0]]), np.array([2 * 8 + 6]), 8, 3, np.random.default_rng(0),
                                   min_distance=5.0)  # the only pixel is exactly 5 px away
    assert (idx == 22).all() and valid.all()


def test_violation_fraction_and_status_counts():
    status = np.array([MATCH, MATCH, MATCH, VIOLATION, 0, 1, 1], np.int8)
    c = Correspondences(status, np.array([0, 1, 2]), np.zeros((3, 2)), np.zeros(3, np.int64), (4, 5))
    assert static_violation_fraction(c) == 0.25
    assert static_violation_fraction(c, mask_a=np.array([0, 0, 1, 1, 0, 0, 0], bool)) == 0.5
    assert c.counts() == {"outside": 1, "no_depth": 2, "match": 3, "occluded": 0, "violation": 1}


def test_plane_fit_skips_degenerate_samples():
    rng = np.random.default_rng(2)
    table = np.c_[rng.uniform(-1, 1, (30, 2)), np.zeros(30)]
    above = np.c_[rng.uniform(-1, 1, (8, 2)), np.full(8, 0.05)]  # 5 cm above: not on the table
    pts = np.concatenate([np.zeros((60, 3)), table, above])  # most triples repeat a point: no plane through them
    plane = fit_plane_ransac(pts, up_hint=np.array([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(plane.normal, [0.0, 0.0, 1.0], atol=1e-9)
    assert abs(plane.offset) < 1e-9


def test_pairs_are_accepted_at_exactly_min_matches_and_frames_without_the_object_do_not_stop_the_search():
    tc = look_at_optical([-0.3, 0.1, 0.5], [0.0, 0.0, 0.0], up=(0.0, 0.0, -1.0))
    empty = np.full((H, W), np.nan, np.float32)  # frame 0 sees nothing: no object
    depth = np.stack([empty, _plane_depth(TA), _plane_depth(TB)])
    images = np.zeros((3, H, W, 3), np.uint8)
    rules = MaskRules(plane=Plane(np.array([0.0, 0.0, 1.0]), 0.01))
    poses, Ks = np.stack([tc, TA, TB]), np.stack([K, K, K])

    def build(min_matches):
        return scene_from_arrays("s", images, depth, Ks, poses, np.arange(3), rules,
                                 PairRules(min_matches=min_matches, max_violation=1.0))

    first = build(1)
    assert first.stats.rejected["no_object"] == 4 and first.pairs.tolist() == [[1, 2], [2, 1]]
    counts = {(i, j): find_correspondences(depth[i], depth[j], K, K, poses[i], poses[j], mask_a=first.masks[i],
                                           abs_tol=0.004, rel_tol=0.01).count for i, j in ((1, 2), (2, 1))}
    low = min(counts.values())
    edge = build(low)
    assert sorted(map(tuple, edge.pairs.tolist())) == sorted(p for p, n in counts.items() if n >= low)
    assert edge.stats.accepted == len(edge.pairs) >= 1
    over = build(low + 1)
    assert [tuple(p) for p in over.pairs.tolist()] == [p for p, n in counts.items() if n > low]
    assert over.stats.rejected["too_few_matches"] == 2 - len(over.pairs)


def test_augmented_sample_is_the_plain_sample_flipped_jittered_and_on_new_backgrounds():
    scene = _plane_scene(np.stack([_textured(TA), _textured(TB)]))
    plain_cfg = SampleConfig(matches=32, cross_pixels=8, background_p=1.0, jitter_p=1.0, flip_p=0.0)
    plain = PairDataset(scene, 3, plain_cfg, augment=True).sample(0, 1, np.random.default_rng(11))
    flipped = PairDataset(scene, 3, SampleConfig(**{**plain_cfg.__dict__, "flip_p": 1.0}), augment=True).sample(
        0, 1, np.random.default_rng(11))
    assert set(plain) == {"image_a", "image_b", "match_a", "match_b", "match_uv_b", "nonmatch_obj",
                          "nonmatch_obj_valid", "nonmatch_bg", "nonmatch_bg_valid", "obj_a", "obj_b", "scene"}
    assert plain["scene"] == 3 and plain["match_a"].dtype == np.int64 and plain["match_uv_b"].dtype == np.float32
    assert plain["obj_a"].shape == plain["obj_b"].shape == (8,) and plain["match_a"].shape == (32,)
    assert scene.masks[0].reshape(-1)[plain["match_a"]].all()  # matches start on the object of A
    assert scene.masks[1].reshape(-1)[plain["obj_b"]].all() and scene.masks[0].reshape(-1)[plain["obj_a"]].all()
    for key in ("match_a", "match_b", "nonmatch_obj", "nonmatch_bg", "obj_a", "obj_b"):
        np.testing.assert_array_equal(flipped[key], flip_flat(plain[key], W), err_msg=key)
    np.testing.assert_array_equal(flipped["image_a"], plain["image_a"][:, ::-1])
    np.testing.assert_allclose(flipped["match_uv_b"][:, 0], (W - 1) - plain["match_uv_b"][:, 0])
    np.testing.assert_array_equal(flipped["nonmatch_obj_valid"], plain["nonmatch_obj_valid"])
    raw_cfg = SampleConfig(**{**plain_cfg.__dict__, "roll_p": 1.0})  # no augmentation: no roll either
    raw = PairDataset(scene, 3, raw_cfg, augment=False).sample(0, 1, np.random.default_rng(11))
    assert np.array_equal(raw["image_a"], scene.images[0]) and np.array_equal(raw["image_b"], scene.images[1])
    mask = scene.masks[0]
    assert not np.array_equal(plain["image_a"][~mask], scene.images[0][~mask])  # a new background
    assert not np.array_equal(plain["image_a"][mask], scene.images[0][mask])  # colour jitter on the object


def test_colour_jitter_factors_are_drawn_in_their_ranges(monkeypatch):
    drawn = []
    real = dataset_module.jitter_transform
    monkeypatch.setattr(dataset_module, "jitter_transform", lambda *f: drawn.append(f) or real(*f))
    scene = _plane_scene(np.stack([_textured(TA), _textured(TB)]))
    data = PairDataset(scene, 0, SampleConfig(matches=8, cross_pixels=2, jitter_p=1.0), augment=True)
    rng = np.random.default_rng(0)
    for _ in range(10):
        data.sample(0, 1, rng)
    f = np.array(drawn)
    assert f.shape == (20, 4) and (f[:, :3] >= 0.7).all() and (f[:, :3] <= 1.3).all()
    assert (np.abs(f[:, 3]) <= 0.05).all() and f[:, 3].min() < 0 < f[:, 3].max()


def test_candidate_pairs_drawn_at_random_are_the_same_for_the_same_seed():
    tc = look_at_optical([-0.3, 0.1, 0.5], [0.0, 0.0, 0.0], up=(0.0, 0.0, -1.0))
    depth = np.stack([_plane_depth(tc), _plane_depth(TA), _plane_depth(TB)])
    rules = MaskRules(plane=Plane(np.array([0.0, 0.0, 1.0]), 0.01))
    pairs = [scene_from_arrays("s", np.zeros((3, H, W, 3), np.uint8), depth, np.stack([K] * 3), np.stack([tc, TA, TB]),
                               np.arange(3), rules, PairRules(min_matches=1, max_violation=1.0, max_candidates=2),
                               seed=4).pairs.tolist() for _ in range(3)]
    assert pairs[0] == pairs[1] == pairs[2] and len(pairs[0]) <= 2
    poses = np.stack([tc, TA, TB])
    rules_2 = PairRules(max_candidates=2)
    assert pairs[0] == candidate_pairs(poses, rules_2, 4).tolist() != candidate_pairs(poses, rules_2, 0).tolist()


def test_small_helpers_of_the_pair_rules():
    stats = PairStats(candidates=5, accepted=2)
    stats.rejected["too_few_matches"] = 3
    assert stats.line() == "5 candidate pairs, 2 accepted (rejected: 3 too few matches)"
    assert PairStats(candidates=1, accepted=1).line() == "1 candidate pairs, 1 accepted"
    picked = sample_matches(10, 3, np.random.default_rng(0))  # fewer matches than asked: drawn with replacement
    assert picked.shape == (10,) and set(picked.tolist()) <= {0, 1, 2}
    assert sorted(sample_matches(3, 5, np.random.default_rng(0)).tolist()) == sorted(set(
        sample_matches(3, 5, np.random.default_rng(0)).tolist()))
    plane = Plane.parse("0, 0, 2, -1")
    np.testing.assert_allclose(plane.normal, [0, 0, 1]) and np.testing.assert_allclose(plane.offset, -0.5)
    with pytest.raises(ValueError, match="expected a,b,c,d with a non-zero normal, got '0,0,0,1'"):
        Plane.parse("0,0,0,1")
    with pytest.raises(ValueError, match="expected a,b,c,d"):
        Plane.parse("1,2,3")
