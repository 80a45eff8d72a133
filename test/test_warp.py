"""Differentiable camera maths (depth_training.geometry_torch) against formulas, the numpy camera model
and synthetic scenes with known geometry."""
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from depth_training import geometry_torch as G
from depth_scenes import POSES, intrinsics, plane_scene, rigid

torch.set_num_threads(2)


# --------------------------------------------------------------------------- basic maths
def test_pixel_grid_holds_pixel_centre_coordinates():
    g = G.pixel_grid(2, 3)
    assert g.shape == (3, 2, 3)
    assert g[:, 1, 2].tolist() == [2.0, 1.0, 1.0]
    assert g[:, 0, 0].tolist() == [0.0, 0.0, 1.0]


def test_backproject_and_project_match_numpy_camera_model():
    camera = pytest.importorskip("depth_nodes.geometry.camera")
    h, w = 6, 8
    K = intrinsics(fx=7.0, fy=6.5, cx=3.7, cy=2.2, skew=0.3)
    cam = camera.PinholeCamera(w, h, K.numpy())
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 5.0, size=(h, w))
    pts_t = G.backproject(torch.from_numpy(depth)[None, None], torch.linalg.inv(K))  # 1 3 H W
    pts_np = cam.depth_to_points(depth)  # float32 H W 3
    np.testing.assert_allclose(pts_t[0].permute(1, 2, 0).numpy(), pts_np, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose((pts_t / torch.from_numpy(depth)).numpy()[0].transpose(1, 2, 0), cam.rays(),
                               rtol=1e-5, atol=1e-6)
    uv_t, z_t = G.project(pts_t, K)
    uv_np, z_np = cam.project(pts_t[0].permute(1, 2, 0).reshape(-1, 3).numpy())
    np.testing.assert_allclose(uv_t[0].permute(1, 2, 0).reshape(-1, 2).numpy(), uv_np, atol=1e-9)
    np.testing.assert_allclose(z_t.reshape(-1).numpy(), z_np, atol=1e-12)
    # and the projection of the back-projection is the pixel grid itself
    np.testing.assert_allclose(uv_t[0].numpy(), G.pixel_grid(h, w, torch.float64)[:2].numpy(), atol=1e-9)


def test_project_applies_pose_first():
    pts = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64).reshape(1, 3, 1, 1)
    T = rigid(np.eye(3), [0.5, 0.0, 2.0])
    uv, z = G.project(pts, intrinsics(fx=10, fy=10, cx=5, cy=4), T)
    # X' = (1.5, -0.5, 4): u = 10*1.5/4 + 5 = 8.75, v = 10*(-0.5)/4 + 4 = 2.75
    assert uv.flatten().tolist() == pytest.approx([8.75, 2.75])
    assert z.item() == pytest.approx(4.0)


def test_resize_intrinsics_matches_numpy_camera_model():
    camera = pytest.importorskip("depth_nodes.geometry.camera")
    K = intrinsics(fx=500.0, fy=490.0, cx=319.5, cy=239.5)
    cam = camera.PinholeCamera(640, 480, K.numpy())
    for s, Ks in enumerate(G.pyramid_intrinsics(K, 4)):
        expected = cam.resized(640 // 2 ** s, 480 // 2 ** s).K
        np.testing.assert_allclose(Ks.numpy(), expected, atol=1e-12)
    # hand value: halving maps cx = 319.5 (image centre) to 159.5 (new centre), fx to 250
    K1 = G.resize_intrinsics(K, 0.5, 0.5)
    assert K1[0, 0].item() == 250.0 and K1[0, 2].item() == 159.5 and K1[1, 2].item() == 119.5


def test_disp_to_depth_range_and_inverse():
    disp = torch.tensor([0.0, 0.5, 1.0])
    scaled, depth = G.disp_to_depth(disp, 0.1, 100.0)
    assert depth[0].item() == pytest.approx(100.0)
    assert depth[2].item() == pytest.approx(0.1)
    assert scaled[1].item() == pytest.approx(0.01 + 0.5 * (10.0 - 0.01))
    assert depth[1].item() == pytest.approx(1.0 / 5.005)
    torch.testing.assert_close(G.depth_to_disp(depth), disp, atol=1e-6, rtol=0)


def test_rodrigues_hand_values_and_opencv():
    R = G.axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    np.testing.assert_allclose(R.numpy(), [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    R = G.axis_angle_to_matrix(torch.tensor([math.pi, 0.0, 0.0], dtype=torch.float64))
    np.testing.assert_allclose(R.numpy(), np.diag([1.0, -1.0, -1.0]), atol=1e-12)
    rng = np.random.default_rng(1)
    vecs = np.concatenate([rng.normal(size=(5, 3)), rng.normal(size=(3, 3)) * 1e-4])  # incl. Taylor branch
    Rs = G.axis_angle_to_matrix(torch.from_numpy(vecs))
    for v, Rt in zip(vecs, Rs):
        np.testing.assert_allclose(Rt.numpy(), cv2.Rodrigues(v)[0], atol=1e-10)
        np.testing.assert_allclose(Rt.numpy() @ Rt.numpy().T, np.eye(3), atol=1e-10)


def test_rodrigues_is_smooth_and_differentiable_at_zero():
    r = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    R = G.axis_angle_to_matrix(r)
    assert torch.equal(R[0], torch.eye(3, dtype=torch.float64))
    R[0, 1, 0].backward()  # d R_10 / d r_z = 1 at r = 0
    assert torch.isfinite(r.grad).all()
    assert r.grad[0].tolist() == pytest.approx([0.0, 0.0, 1.0])
    # no jump at the series/closed-form threshold (theta = 1e-3)
    below = G.axis_angle_to_matrix(torch.tensor([0.999e-3, 0.0, 0.0], dtype=torch.float64))
    above = G.axis_angle_to_matrix(torch.tensor([1.001e-3, 0.0, 0.0], dtype=torch.float64))
    assert (below - above).abs().max().item() < 3e-6


def test_pose_vec_to_matrix_and_exact_inverse():
    aa = torch.tensor([[0.1, -0.2, 0.3], [0.0, 0.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([[1.0, 2.0, -0.5], [0.1, 0.0, 0.0]], dtype=torch.float64)
    T = G.pose_vec_to_matrix(aa, t)
    assert T.shape == (2, 4, 4)
    torch.testing.assert_close(T[:, :3, 3], t)
    torch.testing.assert_close(T[:, 3], torch.tensor([[0, 0, 0, 1.0]] * 2, dtype=torch.float64))
    T_inv = G.pose_vec_to_matrix(aa, t, invert=True)
    torch.testing.assert_close(T @ T_inv, torch.eye(4, dtype=torch.float64).expand(2, 4, 4))


# --------------------------------------------------------------------------- warping
def _shift_scene(w=64, h=32, shift=2.3, depth=4.0):
    """Fronto-parallel plane at ``depth`` seen by a source camera moved by tx along x: a pure
    horizontal image shift of ``fx * tx / depth`` pixels."""
    fx = 40.0
    K = intrinsics(fx=fx, fy=fx, cx=(w - 1) / 2, cy=(h - 1) / 2, dtype=torch.float32)
    T = rigid(np.eye(3), [shift * depth / fx, 0.0, 0.0], torch.float32)
    u = torch.arange(w, dtype=torch.float32).expand(h, w)
    source = (u - shift)[None, None]  # source(u) = u - s: sampling it at u + s gives u back
    return source, torch.full((1, 1, h, w), depth), T, K


def test_warp_reproduces_a_horizontal_shift_to_subpixel_accuracy():
    shift = 2.3
    source, depth, T, K = _shift_scene(shift=shift)
    w = source.shape[-1]
    warped, valid = G.warp(source, depth, T, K)
    u = torch.arange(w, dtype=torch.float32).expand_as(warped[0, 0])
    interior = (u + shift <= w - 1)  # bilinear support fully inside the source image
    err_px = (warped[0, 0] - u)[interior].abs().max().item()
    assert err_px < 0.05, err_px
    # valid: the sample lands on the source image (u + s <= W - 0.5)
    assert torch.equal(valid[0, 0], (u + shift <= w - 0.5))
    assert valid[0, 0].sum() == (w - 2) * source.shape[-2]


def test_monodepth2_grid_convention_would_miss_the_shift():
    """Normalising with 2u/(W-1)-1 but sampling with align_corners=False (Monodepth2) is off by up
    to half a pixel; this is the error our convention avoids."""
    shift = 2.3
    source, depth, T, K = _shift_scene(shift=shift)
    h, w = source.shape[-2:]
    uv, _ = G.project(G.backproject(depth, torch.linalg.inv(K)), K, T)
    grid = torch.stack([2 * uv[:, 0] / (w - 1) - 1, 2 * uv[:, 1] / (h - 1) - 1], dim=-1)
    warped = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
    u = torch.arange(w, dtype=torch.float32).expand(h, w)
    interior = (u + shift <= w - 1)
    assert (warped[0, 0] - u)[interior].abs().max().item() > 0.3


def test_warp_with_true_depth_reproduces_target_of_textured_plane():
    target, source, depth, T, K = plane_scene(POSES)
    warped, valid = G.warp(source, depth, T, K)
    for i in range(len(POSES)):
        v = valid[i, 0]
        assert v.float().mean() > 0.7
        err = (warped[i] - target[i]).abs()[:, v]
        baseline = (source[i] - target[i]).abs()[:, v]
        assert err.mean().item() < 0.005, err.mean().item()
        assert err.max().item() < 0.05, err.max().item()
        assert baseline.mean().item() > 10 * err.mean().item()
    # a wrong depth does not reproduce it
    warped_wrong, _ = G.warp(source, depth * 1.3, T, K)
    v3 = valid.expand_as(target)
    assert (warped_wrong - target).abs()[v3].mean() > 5 * (warped - target).abs()[v3].mean()


@pytest.mark.parametrize("batch", [1, 2, 5])
def test_warp_handles_any_batch_size_and_broadcasts_K_and_T(batch):
    target, source, depth, T, K = plane_scene((POSES * 2)[:batch])
    out_b, valid_b = G.warp(source, depth, T, K.expand(batch, 3, 3))   # batched K, batched T
    out_k, valid_k = G.warp(source, depth, T, K)                        # shared K
    torch.testing.assert_close(out_b, out_k)
    for i in range(batch):
        single, single_valid = G.warp(source[i:i + 1], depth[i:i + 1], T[i], K)  # unbatched T
        torch.testing.assert_close(out_b[i:i + 1], single)
        assert torch.equal(valid_b[i:i + 1], single_valid)


def test_warp_validity_mask_behind_camera_and_outside_image():
    h, w = 8, 10
    K = intrinsics(fx=10.0, fy=10.0, cx=4.5, cy=3.5)
    depth = torch.full((1, 1, h, w), 2.0, dtype=torch.float64)
    src = torch.rand(1, 1, h, w, dtype=torch.float64)
    _, valid = G.warp(src, depth, rigid(np.eye(3), [0, 0, -3.0]), K)    # plane ends up behind the source
    assert not valid.any()
    _, valid = G.warp(src, depth, rigid(np.eye(3), [0, 0, 0]), K)       # identity: every pixel valid
    assert valid.all()
    _, valid = G.warp(src, depth, rigid(np.eye(3), [100.0, 0, 0]), K)   # everything shifted off the image
    assert not valid.any()


def test_warp_is_differentiable_in_depth_andrigid():
    target, source, depth, T, K = plane_scene(POSES[:2])
    depth = (depth * 1.1).clone().requires_grad_(True)
    T = T.clone().requires_grad_(True)
    warped, valid = G.warp(source, depth, T, K)
    loss = ((warped - target).abs() * valid).mean()
    loss.backward()
    assert torch.isfinite(depth.grad).all() and depth.grad.abs().sum() > 0
    assert torch.isfinite(T.grad).all() and T.grad.abs().sum() > 0


@pytest.mark.parametrize("target", ["left", "right"])
def test_stereo_transform_matches_the_disparity_convention(target):
    stereo = pytest.importorskip("depth_nodes.geometry.stereo")
    h, w, f, baseline, z = 4, 40, 50.0, 0.2, 2.5
    K = intrinsics(fx=f, fy=f, cx=19.5, cy=1.5, dtype=torch.float32)
    d = float(stereo.depth_to_disparity(np.array([z]), f, baseline)[0])       # f B / z = 4 px
    assert d == pytest.approx(4.0)
    u = torch.arange(w, dtype=torch.float32).expand(1, 1, h, w)
    warped, _ = G.warp(u, torch.full((1, 1, h, w), z), G.stereo_transform(baseline, target), K)
    expected = u - d if target == "left" else u + d   # left pixel u is at u - d in the right image
    interior = (expected >= 0) & (expected <= w - 1)
    assert (warped - expected)[interior].abs().max().item() < 1e-3
    with pytest.raises(ValueError):
        G.stereo_transform(baseline, "centre")
