"""Per-pixel minimum reprojection, auto-masking and the full-resolution multi-scale loss."""
import pytest
import torch
import torch.nn.functional as F

from depth_training.geometry_torch import depth_to_disp, disp_to_depth, stereo_transform
from depth_training.losses import (edge_aware_smoothness, identity_errors, min_reprojection,
                                   multiscale_reprojection_loss, reprojection_errors)
from depth_scenes import POSES, plane_scene

torch.set_num_threads(2)


def test_min_reprojection_picks_the_best_source_and_masks_identity_wins():
    reproj = torch.tensor([[[[0.1, 0.5, 0.3, 0.9]], [[0.2, 0.4, 0.6, 0.8]]]])   # B=1, S=2, H=1, W=4
    ident = torch.tensor([[[[0.5, 0.5, 0.05, 0.7]], [[0.6, 0.3, 0.9, 0.9]]]])
    out = min_reprojection(reproj, ident, noise_std=0.0)
    assert out.error.flatten().tolist() == pytest.approx([0.1, 0.3, 0.05, 0.7])
    assert out.automask.flatten().tolist() == [True, False, False, False]
    assert out.source_index.flatten().tolist() == [0, -1, -1, -1]
    plain = min_reprojection(reproj, None)
    assert plain.source_index.flatten().tolist() == [0, 1, 0, 1]
    assert plain.automask.all()
    assert plain.error.shape == (1, 1, 1, 4)


def test_invalid_candidates_never_win():
    reproj = torch.tensor([[[[0.1, 0.5]], [[0.2, 0.4]]]])
    valid = torch.tensor([[[[False, True]], [[True, False]]]])
    out = min_reprojection(reproj, None, valid)
    assert out.source_index.flatten().tolist() == [1, 0]
    assert out.error.flatten().tolist() == pytest.approx([0.2, 0.5])
    none_valid = min_reprojection(reproj, None, torch.zeros_like(valid))
    assert not none_valid.valid.any()


def test_tie_break_noise_is_seeded_and_small():
    errs = torch.full((2, 2, 8, 8), 0.25)
    a = min_reprojection(errs, errs.clone(), generator=torch.Generator().manual_seed(3))
    b = min_reprojection(errs, errs.clone(), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.automask, b.automask)
    assert (a.error - 0.25).abs().max().item() < 1e-4
    frac = a.automask.float().mean().item()   # ties are broken at random, both ways
    assert 0.05 < frac < 0.95


def test_auto_mask_flags_pixels_explained_by_the_unwarped_source():
    target, sources, depth, T, K = plane_scene(POSES[:1])
    # moving camera, correct pose: the warp explains the target, the raw source does not
    errors, _ = reprojection_errors(target, [sources], depth, [T], K)
    moving = min_reprojection(errors, identity_errors(target, [sources]), generator=torch.Generator().manual_seed(0))
    assert moving.automask.float().mean().item() > 0.9
    # a static camera (source == target) with a wrongly estimated motion: identity wins almost everywhere
    errors, _ = reprojection_errors(target, [target], depth, [T], K)
    static = min_reprojection(errors, identity_errors(target, [target]), generator=torch.Generator().manual_seed(0))
    assert static.automask.float().mean().item() < 0.1


def _pyramid(disp_full, n=4):
    return [disp_full if s == 0 else F.interpolate(disp_full, scale_factor=0.5 ** s, mode="area") for s in range(n)]


def test_multiscale_loss_is_lowest_at_the_true_depth_and_reports_its_terms():
    target, sources, depth, T, K = plane_scene(POSES[:2], h=32, w=64, dtype=torch.float32)
    true_disp = depth_to_disp(depth)
    src = [sources.roll(1, 0), sources]           # two sources per target, batch of 2
    Ts = [T.roll(1, 0), T]
    g = torch.Generator().manual_seed(0)
    true = multiscale_reprojection_loss(_pyramid(true_disp), target, src, Ts, K, generator=g)
    wrong = multiscale_reprojection_loss(_pyramid(true_disp * 0.6), target, src, Ts, K, generator=g)
    assert true.reprojection[0].item() < 0.5 * wrong.reprojection[0].item()
    assert true.automask.shape == (2, 1, 32, 64) and true.depth.shape == (2, 1, 32, 64)
    torch.testing.assert_close(true.depth, disp_to_depth(true_disp)[1])
    expected = sum(r + 1e-3 / 2 ** s * sm for s, (r, sm) in enumerate(zip(true.reprojection, true.smoothness))) / 4
    torch.testing.assert_close(true.loss, expected)


def test_each_scale_is_warped_at_full_resolution():
    # float64: the comparison is about which resolution is warped, not float32 summation order
    target, sources, depth, T, K = plane_scene(POSES[:1], h=32, w=64, dtype=torch.float64)
    coarse = torch.full((1, 1, 4, 8), 0.02, dtype=torch.float64)      # scale-3 disparity, constant
    disps = [torch.full((1, 1, 32 // 2 ** s, 64 // 2 ** s), 0.02, dtype=torch.float64) for s in range(3)] + [coarse]
    out = multiscale_reprojection_loss(disps, target, [sources], [T], K, automask=False)
    # same constant disparity at full resolution, computed by hand with the full-resolution K
    _, d = disp_to_depth(torch.full((1, 1, 32, 64), 0.02, dtype=torch.float64))
    errors, _ = reprojection_errors(target, [sources], d, [T], K)
    assert out.reprojection[3].item() == pytest.approx(errors.mean().item(), rel=1e-5)
    # a scale-3 disparity with structure is bilinearly upsampled to 32x64 before warping
    ramp = torch.linspace(0.01, 0.05, 8, dtype=torch.float64).expand(1, 1, 4, 8).contiguous()
    out = multiscale_reprojection_loss(disps[:3] + [ramp], target, [sources], [T], K, automask=False)
    _, d = disp_to_depth(F.interpolate(ramp, size=(32, 64), mode="bilinear", align_corners=False))
    errors, _ = reprojection_errors(target, [sources], d, [T], K)
    assert out.reprojection[3].item() == pytest.approx(errors.mean().item(), rel=1e-5)
    assert out.smoothness[3].item() == pytest.approx(
        edge_aware_smoothness(ramp, F.interpolate(target, size=(4, 8), mode="area")).item(), rel=1e-6)


def test_multiscale_loss_backpropagates_to_every_scale_and_honours_the_mask():
    target, sources, depth, T, K = plane_scene(POSES[:1], h=32, w=64, dtype=torch.float32)
    disps = [d.clone().requires_grad_(True) for d in _pyramid(depth_to_disp(depth) * 0.8)]
    out = multiscale_reprojection_loss(disps, target, [sources], [T], K, generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    for d in disps:
        assert torch.isfinite(d.grad).all() and d.grad.abs().sum() > 0
    # masked-out pixels do not contribute: corrupting the target there leaves the loss unchanged
    mask = torch.ones(1, 1, 32, 64, dtype=torch.bool)
    mask[..., :, 48:] = False
    corrupted = target.clone()
    corrupted[..., :, 52:] = 0.0      # (4 px away from the mask edge: SSIM windows never reach it)
    kw = dict(mask=mask, automask=False)
    a = multiscale_reprojection_loss([d.detach() for d in disps], target, [sources], [T], K, **kw)
    b = multiscale_reprojection_loss([d.detach() for d in disps], corrupted, [sources], [T], K, **kw)
    assert a.reprojection[0].item() == pytest.approx(b.reprojection[0].item(), rel=1e-6)


def test_stereo_source_with_a_fixed_baseline_pose():
    """Monodepth2's stereo mode: the other view is one more source with T = translation by the baseline."""
    target, _, depth, _, K = plane_scene(POSES[:1], h=32, w=64, dtype=torch.float32)
    baseline = 0.3                                                   # ~4.5 px disparity on the plane
    T_lr = stereo_transform(baseline, "left")                         # left-camera points -> right camera
    _, right, _, _, _ = plane_scene([([0.0, 0.0, 0.0], [-baseline, 0.0, 0.0])], h=32, w=64, dtype=torch.float32)

    def loss(scale, **kw):
        out = multiscale_reprojection_loss([depth_to_disp(depth * scale)], target, [right], [T_lr], K,
                                           automask=False, **kw)
        return out.reprojection[0].item()

    true = loss(1.0, mask_out_of_view=True)
    assert true < 2e-3
    for wrong in (0.8, 1.25, 2.0):
        assert loss(wrong, mask_out_of_view=True) > 3 * true
    # without the in-view mask the left border (no correspondence, border padding) adds error
    assert loss(1.0) > 5 * true


def test_multiscale_loss_auto_masks_a_static_camera_unless_told_not_to():
    """Source == target with a wrong motion: identity wins almost everywhere, so the auto-masked
    loss is (nearly) the identity error; without auto-masking it is the warped error."""
    target, sources, depth, T, K = plane_scene(POSES[:1], h=32, w=64, dtype=torch.float32)
    disp = _pyramid(depth_to_disp(depth))
    g = torch.Generator().manual_seed(0)
    masked = multiscale_reprojection_loss(disp, target, [target], [T], K, generator=g)
    plain = multiscale_reprojection_loss(disp, target, [target], [T], K, automask=False)
    assert masked.automask.float().mean().item() < 0.1 and plain.automask.all()
    assert masked.reprojection[0].item() < 0.2 * plain.reprojection[0].item()


def test_identity_errors_use_the_given_ssim_weight():
    from depth_training.losses import photometric_error

    g = torch.Generator().manual_seed(1)
    target, source = torch.rand(1, 3, 16, 16, generator=g), torch.rand(1, 3, 16, 16, generator=g)
    torch.testing.assert_close(identity_errors(target, [source], alpha=0.3), photometric_error(source, target, 0.3))
