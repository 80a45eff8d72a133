"""``depth-train stereo`` on the simulator's fixed stereo rig: metric depth from the baseline in the
right camera_info, checked against the simulator's exact left-camera depth (which the training
never sees); the pair geometry, disparity <-> depth and the flip-and-swap augmentation."""
import numpy as np
import pytest
import torch

from depth_nodes.geometry.stereo import depth_to_disparity
from depth_training.cli import build_parser
from depth_training.cli import main as depth_train
from depth_training.geometry_torch import disp_to_depth, stereo_transform, warp
from depth_training.losses import photometric_error
from depth_training.metrics import compute_depth_metrics
from depth_training.models.artifact import load_depth_model
from depth_training.modes.bag_frames import resize_depth
from depth_training.modes.cli import check_args
from depth_training.modes.recordings import DecodeOptions
from depth_training.modes.stereo import (
    StereoAugment,
    depth_to_disparity_px,
    disparity_px_to_depth,
    stereo_setup,
    stereo_transforms,
)
from depth_training.sim.groundtruth import load_groundtruth
from train_modes_helpers import FAST, SIM_H, SIM_W, first_and_last, sim_bags


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    return sim_bags(tmp_path_factory)[0]


@pytest.fixture(scope="module")
def pairs(bag):
    """Cached rows of the bag (left, right, K, baseline) and the simulator's left depth at 96x64."""
    args = build_parser().parse_args(["stereo", "--dataset", str(bag), "--out", "unused", *FAST])
    check_args(args)
    rows = list(stereo_setup(args).plan(bag).rows(DecodeOptions(SIM_W, SIM_H)))
    gt = load_groundtruth(bag.with_name(bag.name + ".groundtruth.npz"))
    depth = np.stack([resize_depth(d, SIM_W, SIM_H) for d in gt.stereo_left_depth_m])
    return rows, depth, gt


def _abs_rel(net, cfg, rows, depth, frames):
    left = torch.from_numpy(np.stack([rows[i]["left"] for i in frames])).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        pred = disp_to_depth(net(left)[0], cfg["min_depth"], cfg["max_depth"])[1]
    return compute_depth_metrics(pred, depth[frames], cfg["min_depth"], cfg["max_depth"], alignment="none")["abs_rel"]


def test_stereo_learns_metric_depth(bag, pairs, tmp_path):
    rows, depth, _ = pairs
    out = tmp_path / "stereo"
    # the untrained network predicts ~2 x min-depth everywhere: 0.6 m is inside this scene (0.45-3.4 m)
    assert depth_train(["stereo", "--dataset", str(bag), "--out", str(out), "--min-depth", "0.3", "--steps", "40",
                        "--val-every", "40", "--ckpt-every", "20", *FAST]) == 0
    before, after = first_and_last(out)
    assert "abs_rel" not in before  # the bag's depth topic belongs to the wrist camera, not to the left one
    assert after["loss"] < 0.6 * before["loss"], (before, after)

    net, cfg = load_depth_model(out / "model.pt")
    assert cfg["output"] == "metric_depth" and cfg["mode"] == "stereo" and cfg["min_depth"] == 0.3
    untrained, _ = load_depth_model(out / "checkpoints" / "ckpt-00000020.pt")
    held_out = list(range(32, 40))
    # metric depth without any alignment, against the simulator's exact depth of the left camera
    trained_err = _abs_rel(net, cfg, rows, depth, held_out)
    initial = build_parser()  # the untrained network: same seed, same construction as the run
    args = initial.parse_args(["stereo", "--dataset", str(bag), "--out", "unused", *FAST, "--min-depth", "0.3"])
    check_args(args)
    torch.manual_seed(0)
    fresh = stereo_setup(args).build_model().depth.eval()
    fresh_err = _abs_rel(fresh, cfg, rows, depth, held_out)
    assert fresh_err > 0.3
    assert trained_err < 0.65 * fresh_err, (fresh_err, trained_err)
    assert _abs_rel(untrained, cfg, rows, depth, held_out) > trained_err  # halfway is worse than the end


def test_cached_pairs_hold_the_rig_geometry(pairs):
    """Baseline from P[0,3] = -fx*B, K at 96x64; warping the right image into the left view with the
    exact depth and T_{left->right} reproduces the left image far better than no warp."""
    rows, depth, gt = pairs
    assert rows[0]["baseline"] == pytest.approx(gt.baseline_m, rel=1e-6)
    np.testing.assert_allclose(rows[0]["K"][0, 0], gt.K_stereo[0, 0] * SIM_W / gt.width, rtol=1e-6)
    ratios = []
    for i in range(0, 40, 5):
        left = torch.from_numpy(rows[i]["left"]).permute(2, 0, 1)[None].float() / 255
        right = torch.from_numpy(rows[i]["right"]).permute(2, 0, 1)[None].float() / 255
        z = torch.from_numpy(depth[i])[None, None]
        T = stereo_transforms(torch.tensor([float(rows[i]["baseline"])]), "left")
        warped, ok = warp(right, torch.nan_to_num(z, nan=1.0), T, torch.from_numpy(rows[i]["K"]))
        m = ok & torch.isfinite(z)
        ratios.append(float(photometric_error(warped, left)[m].mean() / photometric_error(right, left)[m].mean()))
    assert max(ratios) < 0.5, ratios


def test_stereo_transforms_and_disparity_conversions():
    B = torch.tensor([0.06, 0.12], dtype=torch.float64)
    for target in ("left", "right"):
        T = stereo_transforms(B, target)
        for i in range(2):
            torch.testing.assert_close(T[i], stereo_transform(float(B[i]), target, dtype=torch.float64))
    depth = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=torch.float64).reshape(1, 1, 2, 2).repeat(2, 1, 1, 1)
    fx = torch.tensor([77.25, 154.5], dtype=torch.float64)
    d = depth_to_disparity_px(depth, fx, B)
    for i in range(2):
        np.testing.assert_allclose(d[i, 0].numpy(), depth_to_disparity(depth[i, 0].numpy(), float(fx[i]), float(B[i])))
    torch.testing.assert_close(disparity_px_to_depth(d, fx, B), depth)
    # halving the training width halves fx and the disparity, the depth stays
    torch.testing.assert_close(depth_to_disparity_px(depth, fx / 2, B), d / 2)


def test_flip_and_swap_gives_a_valid_rectified_pair():
    rng = np.random.default_rng(1)
    H, W, disparity = 8, 40, 5
    scene = rng.integers(0, 256, (H, W + disparity, 3), dtype=np.uint8)
    left, right = scene[:, :W], scene[:, disparity:]  # a point at u in the left image is at u - d in the right
    np.testing.assert_array_equal(left[:, disparity:], right[:, :W - disparity])
    K = np.array([[30.0, 0, 17.0], [0, 30.0, 3.5], [0, 0, 1]], np.float32)
    sample = {"left": left, "right": right, "K": K}
    flipped = StereoAugment(flip_p=1.0, jitter_p=0.0)(sample, np.random.default_rng(0))
    L, R = flipped["left"], flipped["right"]
    # the same rectified-pair relation holds for the new pair: L(u) = R(u - d) with d > 0
    np.testing.assert_array_equal(L[:, disparity:], R[:, :W - disparity])
    assert flipped["K"][0, 2] == pytest.approx(W - 1 - 17.0)
    assert not np.array_equal(L, left)
