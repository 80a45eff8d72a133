"""Appearance (photometric) error: 3x3 SSIM + L1 (Monodepth / Monodepth2).

With ``mu``, ``sigma^2``, ``sigma_xy`` the mean, (population) variance and covariance over the 3x3
window around each pixel (reflection padding at the border, average pooling):

    SSIM(x, y) = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2))

with ``C1 = 0.01^2`` and ``C2 = 0.03^2`` (images in [0, 1]), and the photometric error

    pe(I_a, I_b) = alpha/2 * (1 - SSIM(I_a, I_b)) + (1 - alpha) * |I_a - I_b|,   alpha = 0.85,

where the SSIM term is clamped to ``[0, 1]`` and both terms are averaged over colour channels.

Public API:
    ssim(x BCHW, y BCHW, c1=1e-4, c2=9e-4) -> SSIM map BCHW
    ssim_dissimilarity(x, y) -> clamp((1 - SSIM) / 2, 0, 1), BCHW
    photometric_error(pred BCHW, target BCHW, alpha=0.85) -> B1HW per-pixel error
    photometric_loss(pred, target, mask=None, alpha=0.85) -> scalar masked mean of the above
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .masking import masked_mean

__all__ = ["SSIM_C1", "SSIM_C2", "ssim", "ssim_dissimilarity", "photometric_error", "photometric_loss"]

SSIM_C1 = 0.01 ** 2
SSIM_C2 = 0.03 ** 2


def ssim(x: torch.Tensor, y: torch.Tensor, c1: float = SSIM_C1, c2: float = SSIM_C2) -> torch.Tensor:
    """Per-pixel, per-channel SSIM over 3x3 windows (reflection padding, uniform weights).

    Args:
        x, y: ``(B, C, H, W)`` with ``H, W >= 2`` (reflection padding needs 2 pixels).

    Returns:
        ``(B, C, H, W)`` SSIM in ``[-1, 1]`` (1 for identical windows).
    """
    x = F.pad(x, (1, 1, 1, 1), mode="reflect")
    y = F.pad(y, (1, 1, 1, 1), mode="reflect")
    mu_x = F.avg_pool2d(x, 3, 1)
    mu_y = F.avg_pool2d(y, 3, 1)
    sigma_x = F.avg_pool2d(x * x, 3, 1) - mu_x * mu_x
    sigma_y = F.avg_pool2d(y * y, 3, 1) - mu_y * mu_y
    sigma_xy = F.avg_pool2d(x * y, 3, 1) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (sigma_x + sigma_y + c2)
    return num / den


def ssim_dissimilarity(x: torch.Tensor, y: torch.Tensor, c1: float = SSIM_C1,
                       c2: float = SSIM_C2) -> torch.Tensor:
    """``clamp((1 - SSIM(x, y)) / 2, 0, 1)``, ``(B, C, H, W)``."""
    return torch.clamp((1.0 - ssim(x, y, c1, c2)) / 2.0, 0.0, 1.0)


def photometric_error(pred: torch.Tensor, target: torch.Tensor, alpha: float = 0.85) -> torch.Tensor:
    """Per-pixel ``alpha * DSSIM + (1 - alpha) * L1``, averaged over channels.

    ``DSSIM = clamp((1 - SSIM)/2, 0, 1)`` (so ``alpha * DSSIM = alpha/2 (1 - SSIM)``).

    Args:
        pred, target: ``(B, C, H, W)`` images in ``[0, 1]``.
        alpha: SSIM weight (0.85 in Monodepth/Monodepth2); ``alpha = 0`` gives plain L1.

    Returns:
        ``(B, 1, H, W)``.
    """
    l1 = (pred - target).abs().mean(1, keepdim=True)
    if alpha == 0:
        return l1
    dssim = ssim_dissimilarity(pred, target).mean(1, keepdim=True)
    return alpha * dssim + (1.0 - alpha) * l1


def photometric_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                     alpha: float = 0.85) -> torch.Tensor:
    """Scalar mean of :func:`photometric_error` over valid pixels (``mask``: ``(B, 1, H, W)``)."""
    return masked_mean(photometric_error(pred, target, alpha), mask)
