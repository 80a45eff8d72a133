"""Rectified-stereo warping signs and left-right consistency."""
import pytest
import torch

from depth_training.losses import (left_right_consistency, reconstruct_left, reconstruct_right,
                                   stereo_appearance_loss)

torch.set_num_threads(2)


def _textured(h, w, shift=0.0):
    u = torch.arange(w, dtype=torch.float64) + shift
    v = torch.arange(h, dtype=torch.float64)[:, None]
    return torch.stack([0.5 + 0.4 * torch.sin(0.37 * u + 0.2 * v), 0.5 + 0.4 * torch.cos(0.23 * u - 0.1 * v),
                        0.5 + 0.3 * torch.sin(0.11 * u) * torch.cos(0.3 * v)])[None]


def test_reconstruction_signs_for_a_rectified_pair():
    h, w, d = 8, 32, 3.0
    left = _textured(h, w)
    right = _textured(h, w, shift=d)          # right(u) = left(u + d): the point at u_l is at u_l - d
    disp = torch.full((1, 1, h, w), d, dtype=torch.float64)
    left_hat, inside_l = reconstruct_left(right, disp)
    right_hat, inside_r = reconstruct_right(left, disp)
    assert (left_hat - left)[..., int(d):].abs().max().item() < 1e-9      # exact: integer shift
    assert (right_hat - right)[..., : w - int(d)].abs().max().item() < 1e-9
    assert inside_l[0, 0, 0].tolist() == [u >= d - 0.5 for u in range(w)]
    assert inside_r[0, 0, 0].tolist() == [u + d <= w - 0.5 for u in range(w)]
    wrong, _ = reconstruct_left(right, -disp)                           # the opposite sign is far off
    assert (wrong - left)[..., int(d):-int(d)].abs().mean().item() > 0.1


def _slanted(h=6, w=64, a=0.05, b=2.5, c=0.1):
    """Disparities of a slanted plane: d_l(u, v) = a u + b + c v and the consistent right one."""
    u = torch.arange(w, dtype=torch.float64)
    v = torch.arange(h, dtype=torch.float64)[:, None]
    d_l = a * u + b + c * v
    d_r = (a * u + b + c * v) / (1 - a)   # u_l = (u_r + b + c v) / (1 - a), d_r = u_l - u_r
    return d_l[None, None], d_r[None, None]


def test_left_right_consistency_is_zero_for_consistent_disparities():
    d_l, d_r = _slanted()
    assert left_right_consistency(d_l, d_r).item() < 1e-3
    # hand value for an inconsistent pair: right disparity off by +0.5 everywhere.
    # left term: |d_l - (d_r + 0.5)<u - d_l>| = 0.5; right term: |d_r + 0.5 - d_l<u + d_r + 0.5>| = 0.5 - a*0.5
    assert left_right_consistency(d_l, d_r + 0.5).item() == pytest.approx(0.5 + 0.475, abs=2e-3)
    # swapping the views (the wrong sign convention) is inconsistent
    assert left_right_consistency(d_r, d_l).item() > 0.1


def test_left_right_consistency_respects_masks():
    d_l, d_r = _slanted()
    bad_l = d_l.clone()
    bad_l[..., :, 40:] += 7.0
    mask_l = torch.ones_like(d_l, dtype=torch.bool)
    mask_l[..., :, 40:] = False
    mask_r = torch.zeros_like(d_r, dtype=torch.bool)   # drop the right-to-left term entirely
    assert left_right_consistency(bad_l, d_r, mask_l, mask_r).item() < 1e-3
    assert left_right_consistency(bad_l, d_r).item() > 1.0


def test_stereo_appearance_loss_is_minimal_at_the_true_disparity():
    h, w, d = 8, 32, 3.0
    left, right = _textured(h, w), _textured(h, w, shift=d)
    disp = torch.full((1, 1, h, w), d, dtype=torch.float64)
    mask_l = torch.ones_like(disp, dtype=torch.bool)
    mask_l[..., : int(d) + 1] = False          # no correspondence on the left border of the left image
    mask_r = torch.ones_like(disp, dtype=torch.bool)
    mask_r[..., w - int(d) - 1:] = False
    true = stereo_appearance_loss(left, right, disp, disp, mask_left=mask_l, mask_right=mask_r).item()
    assert true < 1e-6
    for wrong in (d - 1.0, d + 1.5, 0.0):
        other = torch.full_like(disp, wrong)
        assert stereo_appearance_loss(left, right, other, other, mask_left=mask_l, mask_right=mask_r).item() > 0.02
