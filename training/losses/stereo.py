"""Rectified-stereo warping and left-right disparity consistency (Monodepth, Godard et al. 2017).

Disparities here are positive and in *pixels* of the image they belong to (a network predicting a
fraction of the width, as Monodepth does, multiplies by ``W`` first). For a rectified pair
(:mod:`depth_nodes.geometry.stereo` uses the same convention) a scene point seen at ``u`` in the left
image is at ``u - d_l(u)`` in the right one, and a point at ``u`` in the right image is at
``u + d_r(u)`` in the left one. Hence

    left_hat(u, v)  = I_r<u - d_l(u, v), v>      (reconstruct_left)
    right_hat(u, v) = I_l<u + d_r(u, v), v>      (reconstruct_right)

and the left-right consistency (Monodepth eq. 4, both directions)

    L_lr = mean_valid |d_l(u) - d_r<u - d_l(u)>| + mean_valid |d_r(u) - d_l<u + d_r(u)>|

where ``<.>`` is bilinear sampling (pixel-centre convention of :mod:`depth_training.geometry_torch`)
and a pixel counts only when its sample falls on the other image and it is valid in ``mask``.

Public API:
    shift_horizontal(image BCHW, offset B1HW) -> (sampled BCHW, inside B1HW)   samples I<u + offset, v>
    reconstruct_left(right_image, disp_left) -> (left_hat, inside)
    reconstruct_right(left_image, disp_right) -> (right_hat, inside)
    left_right_consistency(disp_left B1HW, disp_right B1HW, mask_left=None, mask_right=None) -> scalar
    stereo_appearance_loss(left, right, disp_left, disp_right, alpha=0.85, mask_left=None, mask_right=None) -> scalar
"""
from __future__ import annotations

import torch

from ..geometry_torch import pixel_grid, sample_image
from .masking import as_mask, masked_mean
from .photometric import photometric_error

__all__ = [
    "shift_horizontal",
    "reconstruct_left",
    "reconstruct_right",
    "left_right_consistency",
    "stereo_appearance_loss",
]


def shift_horizontal(image: torch.Tensor, offset: torch.Tensor,
                     padding_mode: str = "border") -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``image`` at ``(u + offset(u, v), v)`` for every pixel.

    Args:
        image: ``(B, C, H, W)``.
        offset: ``(B, 1, H, W)`` horizontal offset in pixels.

    Returns:
        ``sampled`` ``(B, C, H, W)`` and ``inside`` ``(B, 1, H, W)`` bool (sample on the image).
    """
    h, w = offset.shape[-2:]
    grid = pixel_grid(h, w, offset.dtype, offset.device)[:2].unsqueeze(0)  # (1, 2, H, W)
    uv = torch.cat([grid[:, :1] + offset, grid[:, 1:].expand_as(offset)], dim=1)
    return sample_image(image, uv, padding_mode)


def reconstruct_left(right_image: torch.Tensor, disp_left: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``left_hat(u, v) = I_r<u - d_l(u, v), v>``; shapes as :func:`shift_horizontal`."""
    return shift_horizontal(right_image, -disp_left)


def reconstruct_right(left_image: torch.Tensor, disp_right: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``right_hat(u, v) = I_l<u + d_r(u, v), v>``; shapes as :func:`shift_horizontal`."""
    return shift_horizontal(left_image, disp_right)


def left_right_consistency(disp_left: torch.Tensor, disp_right: torch.Tensor,
                           mask_left: torch.Tensor | None = None,
                           mask_right: torch.Tensor | None = None) -> torch.Tensor:
    """Left-right disparity consistency, both directions (see module docstring).

    Args:
        disp_left, disp_right: ``(B, 1, H, W)`` positive disparities in pixels.
        mask_left, mask_right: optional ``(B, 1, H, W)`` validity of each view's pixels.

    Returns:
        Scalar ``mean |d_l - d_r<u - d_l>| + mean |d_r - d_l<u + d_r>|`` over valid pixels.
    """
    d_r_at_left, inside_l = reconstruct_left(disp_right, disp_left)
    d_l_at_right, inside_r = reconstruct_right(disp_left, disp_right)
    valid_l = as_mask(mask_left, disp_left) & inside_l
    valid_r = as_mask(mask_right, disp_right) & inside_r
    return (masked_mean((disp_left - d_r_at_left).abs(), valid_l)
            + masked_mean((disp_right - d_l_at_right).abs(), valid_r))


def stereo_appearance_loss(left: torch.Tensor, right: torch.Tensor, disp_left: torch.Tensor,
                           disp_right: torch.Tensor, alpha: float = 0.85,
                           mask_left: torch.Tensor | None = None,
                           mask_right: torch.Tensor | None = None) -> torch.Tensor:
    """Monodepth's appearance matching loss for both views.

    ``mean pe(left_hat, left) + mean pe(right_hat, right)`` with ``pe`` =
    :func:`~depth_training.losses.photometric.photometric_error`. Off-image samples use border
    padding and are *not* masked automatically (masking them would reward disparities that push
    every pixel off the image); pass ``mask_left``/``mask_right`` to exclude pixels.

    Args:
        left, right: ``(B, C, H, W)`` rectified images in ``[0, 1]``.
        disp_left, disp_right: ``(B, 1, H, W)`` disparities in pixels.
    """
    left_hat, _ = reconstruct_left(right, disp_left)
    right_hat, _ = reconstruct_right(left, disp_right)
    return (masked_mean(photometric_error(left_hat, left, alpha), mask_left)
            + masked_mean(photometric_error(right_hat, right, alpha), mask_right))
