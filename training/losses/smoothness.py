"""Edge-aware disparity smoothness (Godard et al., Monodepth / Monodepth2).

On the mean-normalised disparity ``d* = d / mean(d)`` (mean per image over valid pixels, which
removes the trivial "shrink the disparity" solution),

    L_s = mean |dx d*| exp(-|dx I|) + mean |dy d*| exp(-|dy I|)

where ``dx``/``dy`` are forward differences between horizontal/vertical neighbours and ``|dx I|`` is
averaged over colour channels. A difference counts only when both of its pixels are valid.
Monodepth2 weights this term by ``1e-3 / 2^s`` at pyramid scale ``s`` (:func:`smoothness_weight`).

Public API:
    edge_aware_smoothness(disp B1HW, image BCHW, mask=None, normalise=True) -> scalar
    smoothness_weight(scale, base=1e-3) -> base / 2**scale
"""
from __future__ import annotations

import torch

from .masking import as_mask, masked_mean

__all__ = ["edge_aware_smoothness", "smoothness_weight"]


def smoothness_weight(scale: int, base: float = 1e-3) -> float:
    """Monodepth2's smoothness weight at pyramid scale ``s``: ``base / 2^s``."""
    return base / (2 ** scale)


def edge_aware_smoothness(disp: torch.Tensor, image: torch.Tensor, mask: torch.Tensor | None = None,
                          normalise: bool = True, eps: float = 1e-7) -> torch.Tensor:
    """Edge-aware first-order smoothness of a disparity map.

    Args:
        disp: ``(B, 1, H, W)`` disparity.
        image: ``(B, C, H, W)`` image at the same resolution (edges come from it).
        mask: optional ``(B, 1, H, W)`` validity.
        normalise: divide ``disp`` by its per-image mean over valid pixels first.
        eps: added to the mean before dividing.

    Returns:
        Scalar: ``mean_x(|dx d*| e^{-|dx I|}) + mean_y(|dy d*| e^{-|dy I|})``.
    """
    if disp.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"disp {tuple(disp.shape)} and image {tuple(image.shape)} sizes differ")
    m = as_mask(mask, disp)
    if normalise:
        mean = masked_mean(disp, m, dim=(2, 3)).reshape(-1, 1, 1, 1)
        disp = disp / (mean + eps)
    grad_disp_x = (disp[..., :, :-1] - disp[..., :, 1:]).abs()
    grad_disp_y = (disp[..., :-1, :] - disp[..., 1:, :]).abs()
    grad_img_x = (image[..., :, :-1] - image[..., :, 1:]).abs().mean(1, keepdim=True)
    grad_img_y = (image[..., :-1, :] - image[..., 1:, :]).abs().mean(1, keepdim=True)
    mask_x = m[..., :, :-1] & m[..., :, 1:]
    mask_y = m[..., :-1, :] & m[..., 1:, :]
    return (masked_mean(grad_disp_x * torch.exp(-grad_img_x), mask_x)
            + masked_mean(grad_disp_y * torch.exp(-grad_img_y), mask_y))
