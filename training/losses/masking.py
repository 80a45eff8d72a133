"""Validity-mask helpers shared by the losses.

Every loss in :mod:`depth_training.losses` takes an optional ``mask`` (bool or {0, 1} float,
broadcastable to the per-pixel loss, usually ``(B, 1, H, W)``); invalid pixels are left out of every
statistic (means, medians, scales, trims), never counted as zeros.

Public API:
    as_mask(mask, like) -> bool tensor shaped like ``like`` (all True when ``mask`` is None)
    masked_mean(values, mask=None, dim=None) -> mean of ``values`` over valid entries
"""
from __future__ import annotations

import torch

__all__ = ["as_mask", "masked_mean"]


def as_mask(mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """Bool mask broadcast to ``like.shape``; ``None`` means every element is valid.

    Float masks are thresholded at 0.5. Non-finite entries of ``like`` are *not* masked here:
    callers that accept NaN ground truth add ``torch.isfinite`` themselves.
    """
    if mask is None:
        return torch.ones_like(like, dtype=torch.bool)
    if mask.dtype != torch.bool:
        mask = mask > 0.5
    return mask.expand_as(like)


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None = None,
                dim: int | tuple[int, ...] | None = None) -> torch.Tensor:
    """``sum(m * x) / sum(m)`` over ``dim`` (all dims when ``None``); 0 where nothing is valid.

    Invalid entries are selected away with ``torch.where`` (so NaN/inf there cannot leak into the
    result or its gradient).
    """
    m = as_mask(mask, values)
    x = torch.where(m, values, torch.zeros_like(values))
    if dim is None:
        return x.sum() / m.sum().clamp(min=1)
    return x.sum(dim) / m.sum(dim).clamp(min=1)
