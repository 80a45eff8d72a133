"""Self-supervised view-synthesis loss (Monodepth2, Godard et al. 2019).

For a target frame ``I_t`` and source frames ``I_s`` (neighbouring video frames and/or the other
stereo view) with poses ``T_{t->s}``, each source is warped into the target view with the predicted
depth (:func:`depth_training.geometry_torch.warp`), and per pixel

    L_p(p)  = min_s pe(I_t, I_{s->t})(p)                        (per-pixel minimum reprojection)
    mu(p)   = [ min_s pe(I_t, I_{s->t})(p) < min_s pe(I_t, I_s)(p) ]   (auto-mask)

``pe`` is :func:`~depth_training.losses.photometric.photometric_error`. Monodepth2 implements the
auto-mask by appending the *identity* errors ``pe(I_t, I_s)`` (plus Gaussian noise of std 1e-5 that
breaks ties on textureless static areas) to the candidates of the minimum: where an un-warped source
already explains the target better (static camera, objects moving with the camera) the minimum
picks an identity error, which carries no depth gradient. :func:`min_reprojection` does exactly
that and returns ``mu``; the loss is the mean of the minimum over valid pixels.

:func:`multiscale_reprojection_loss` is the full Monodepth2 objective: for each decoder scale ``s``
the disparity is upsampled (bilinear) to the *input* resolution, converted to depth with
:func:`~depth_training.geometry_torch.disp_to_depth`, and the warp/minimum is computed at full
resolution; the edge-aware smoothness at scale ``s`` (on the native-resolution disparity and the
target image area-resized to it) is weighted by ``1e-3 / 2^s``; the total is the mean over scales.

Public API:
    min_reprojection(reprojection_errors BSHW, identity_errors BSHW | None, valid BSHW | None,
                     noise_std=1e-5, generator=None) -> MinReprojection
    reprojection_errors(target, sources, depth, transforms, K, alpha) -> (errors BSHW, valid BSHW)
    identity_errors(target, sources, alpha) -> BSHW
    multiscale_reprojection_loss(disparities, target, sources, transforms, K, ...) -> SelfSupervisedLoss
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from ..geometry_torch import disp_to_depth, warp
from .masking import as_mask, masked_mean
from .photometric import photometric_error
from .smoothness import edge_aware_smoothness, smoothness_weight

__all__ = [
    "MinReprojection",
    "SelfSupervisedLoss",
    "min_reprojection",
    "reprojection_errors",
    "identity_errors",
    "multiscale_reprojection_loss",
]

# Stand-in error for invalid candidates: larger than any photometric error (those lie in [0, 1]).
_INVALID_ERROR = 1e4


@dataclass
class MinReprojection:
    """Result of :func:`min_reprojection` (all ``(B, 1, H, W)``).

    Attributes:
        error: per-pixel minimum over all candidates (what the loss averages).
        automask: bool, True where a *warped* source won (pixel contributes depth gradient);
            False on static pixels (identity won). All True without identity errors.
        source_index: long, index of the winning warped source, ``-1`` where identity won.
        valid: bool, at least one candidate was valid (always True with identity errors).
    """

    error: torch.Tensor
    automask: torch.Tensor
    source_index: torch.Tensor
    valid: torch.Tensor


@dataclass
class SelfSupervisedLoss:
    """Result of :func:`multiscale_reprojection_loss`.

    Attributes:
        loss: scalar total, mean over scales of ``reprojection_s + w_s * smoothness_s``.
        reprojection: per-scale scalar reprojection losses (scale 0 first).
        smoothness: per-scale scalar (unweighted) smoothness losses.
        automask: ``(B, 1, H, W)`` bool auto-mask at scale 0 (True = pixel used).
        depth: ``(B, 1, H, W)`` full-resolution depth from scale 0 (detached, for logging).
    """

    loss: torch.Tensor
    reprojection: list[torch.Tensor]
    smoothness: list[torch.Tensor]
    automask: torch.Tensor
    depth: torch.Tensor


def min_reprojection(reprojection_errors: torch.Tensor, identity_errors: torch.Tensor | None = None,
                     valid: torch.Tensor | None = None, noise_std: float = 1e-5,
                     generator: torch.Generator | None = None) -> MinReprojection:
    """Per-pixel minimum reprojection with Monodepth2 auto-masking.

    Args:
        reprojection_errors: ``(B, S, H, W)`` ``pe(I_t, I_{s->t})`` for ``S`` warped sources.
        identity_errors: optional ``(B, S', H, W)`` ``pe(I_t, I_s)`` of the un-warped sources;
            ``None`` disables auto-masking.
        valid: optional ``(B, S, H, W)`` bool: warped candidate usable (e.g. the warp's in-view
            mask); invalid candidates never win.
        noise_std: std of the Gaussian noise added to the identity errors (Monodepth2: 1e-5) to
            break ties; 0 disables it.
        generator: optional ``torch.Generator`` making the noise reproducible (any device; the
            noise is drawn on the generator's device and moved to the errors').

    Returns:
        :class:`MinReprojection`.
    """
    errors = reprojection_errors
    if valid is not None:
        valid = valid.expand_as(errors)
        errors = torch.where(valid, errors, torch.full_like(errors, _INVALID_ERROR))
    n_id = 0
    if identity_errors is not None:
        n_id = identity_errors.shape[1]
        if noise_std > 0:
            noise = torch.randn(identity_errors.shape, generator=generator, dtype=identity_errors.dtype,
                                device=generator.device if generator is not None else identity_errors.device)
            identity_errors = identity_errors + noise_std * noise.to(identity_errors.device)
        errors = torch.cat([identity_errors, errors], dim=1)
    error, index = torch.min(errors, dim=1, keepdim=True)
    automask = index >= n_id
    source_index = torch.where(automask, index - n_id, torch.full_like(index, -1))
    pixel_valid = error < _INVALID_ERROR * 0.5
    return MinReprojection(error, automask, source_index, pixel_valid)


def reprojection_errors(target: torch.Tensor, sources: Sequence[torch.Tensor], depth: torch.Tensor,
                        transforms: Sequence[torch.Tensor], K: torch.Tensor, alpha: float = 0.85,
                        K_inv: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``pe(I_t, warp(I_s, D_t, T_{t->s}, K))`` for every source.

    Args:
        target: ``(B, C, H, W)``.
        sources: ``S`` tensors ``(B, C, H, W)``.
        depth: ``(B, 1, H, W)`` target depth.
        transforms: ``S`` poses ``(4, 4)``/``(B, 4, 4)`` mapping target-camera points to each source.
        K: ``(3, 3)``/``(B, 3, 3)`` intrinsics at ``H x W``.

    Returns:
        ``errors`` ``(B, S, H, W)`` and ``valid`` ``(B, S, H, W)`` bool (in front of the source camera
        and inside its image).
    """
    if len(sources) != len(transforms):
        raise ValueError(f"{len(sources)} sources but {len(transforms)} transforms")
    if K_inv is None:
        K_inv = torch.linalg.inv(K)
    errors, valid = [], []
    for source, T in zip(sources, transforms):
        warped, ok = warp(source, depth, T, K, K_inv)
        errors.append(photometric_error(warped, target, alpha))
        valid.append(ok)
    return torch.cat(errors, dim=1), torch.cat(valid, dim=1)


def identity_errors(target: torch.Tensor, sources: Sequence[torch.Tensor], alpha: float = 0.85) -> torch.Tensor:
    """``pe(I_t, I_s)`` of the un-warped sources, ``(B, S, H, W)``."""
    return torch.cat([photometric_error(source, target, alpha) for source in sources], dim=1)


def multiscale_reprojection_loss(
    disparities: Sequence[torch.Tensor],
    target: torch.Tensor,
    sources: Sequence[torch.Tensor],
    transforms: Sequence[torch.Tensor],
    K: torch.Tensor,
    *,
    min_depth: float = 0.1,
    max_depth: float = 100.0,
    alpha: float = 0.85,
    smoothness: float = 1e-3,
    automask: bool = True,
    noise_std: float = 1e-5,
    generator: torch.Generator | None = None,
    mask: torch.Tensor | None = None,
    mask_out_of_view: bool = False,
) -> SelfSupervisedLoss:
    """Monodepth2's multi-scale self-supervised loss, computed at full resolution.

    Args:
        disparities: sigmoid disparities per scale, ``(B, 1, H/2^s, W/2^s)`` for ``s = 0..n-1``
            (the depth network's output list).
        target: ``(B, 3, H, W)`` target image in ``[0, 1]``.
        sources: source images ``(B, 3, H, W)`` (e.g. frames t-1, t+1 and/or the stereo partner).
        transforms: one ``T_{t->s}`` per source, ``(4, 4)``/``(B, 4, 4)``.
        K: intrinsics of the ``H x W`` images, ``(3, 3)``/``(B, 3, 3)``.
        min_depth, max_depth: range of :func:`disp_to_depth`.
        alpha: SSIM weight of the photometric error.
        smoothness: base smoothness weight (``1e-3``), divided by ``2^s`` at scale ``s``.
        automask: use identity reprojection auto-masking.
        noise_std, generator: tie-break noise of the auto-mask (see :func:`min_reprojection`).
        mask: optional ``(B, 1, H, W)`` validity of target pixels (e.g. a car-bonnet mask).
        mask_out_of_view: exclude warped candidates that fall off the source image or behind it
            (off by default, as in Monodepth2: border padding, the minimum over sources handles
            occlusion and out-of-view pixels).

    Returns:
        :class:`SelfSupervisedLoss`.
    """
    h, w = target.shape[-2:]
    K_inv = torch.linalg.inv(K)
    ident = identity_errors(target, sources, alpha) if automask else None
    m_full = as_mask(mask, target[:, :1])
    total = target.new_zeros(())
    reproj_terms, smooth_terms = [], []
    automask_0 = depth_0 = None
    for scale, disp in enumerate(disparities):
        disp_full = F.interpolate(disp, size=(h, w), mode="bilinear", align_corners=False)
        _, depth = disp_to_depth(disp_full, min_depth, max_depth)
        errors, valid = reprojection_errors(target, sources, depth, transforms, K, alpha, K_inv)
        best = min_reprojection(errors, ident, valid if mask_out_of_view else None, noise_std, generator)
        reproj = masked_mean(best.error, m_full & best.valid)

        size = disp.shape[-2:]
        target_s = target if size == (h, w) else F.interpolate(target, size=size, mode="area")
        mask_s = None
        if mask is not None:
            mask_s = F.interpolate(m_full.to(disp.dtype), size=size, mode="area") > 0.999
        smooth = edge_aware_smoothness(disp, target_s, mask_s)

        total = total + reproj + smoothness_weight(scale, smoothness) * smooth
        reproj_terms.append(reproj)
        smooth_terms.append(smooth)
        if scale == 0:
            automask_0, depth_0 = best.automask, depth.detach()
    return SelfSupervisedLoss(total / len(disparities), reproj_terms, smooth_terms, automask_0, depth_0)
