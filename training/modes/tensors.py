"""Batch tensors shared by the modes: cached uint8 images -> network input, depth validity.

Public API:
    images_to_float(images (..., H, W, 3) uint8) -> (..., 3, H, W) float in [0, 1]
    network_input(images (B, ..., 3, H, W), batch) -> colour-jittered copy (Monodepth2 scheme)
    valid_depth(depth (B, 1, H, W)) -> bool mask: finite and > 0 (NaN / 0 = no reading)
    prediction_for_metrics(disp (B, 1, H, W), output, min_depth, max_depth) -> what the metrics align
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from depth_training.data.augment import color_jitter_torch
from depth_training.geometry_torch import disp_to_depth

__all__ = ["images_to_float", "network_input", "valid_depth", "prediction_for_metrics"]


def images_to_float(images: torch.Tensor) -> torch.Tensor:
    """``(..., H, W, 3)`` uint8 -> ``(..., 3, H, W)`` float32 in ``[0, 1]`` (channels first)."""
    return images.movedim(-1, -3).float().div_(255.0)


def network_input(images: torch.Tensor, batch: Mapping[str, Any]) -> torch.Tensor:
    """The images the networks see: colour-jittered when the batch carries jitter parameters.

    ``batch["color_matrix"]`` ``(B, 3, 3)`` / ``batch["color_contrast"]`` ``(B,)`` come from
    :class:`~depth_training.data.augment.Augment` with ``jitter_mode="params"``; all frames of a
    sample get the same transform. The losses keep comparing the un-jittered ``images``.

    Args:
        images: ``(B, ..., 3, H, W)`` float in ``[0, 1]``.
    """
    if "color_matrix" not in batch:
        return images
    return color_jitter_torch(images, batch["color_matrix"], batch["color_contrast"])


def valid_depth(depth: torch.Tensor) -> torch.Tensor:
    """``isfinite(d) & (d > 0)``: REP 118 depth has NaN (or 0 from 16UC1) for "no reading"."""
    return torch.isfinite(depth) & (depth > 0)


def prediction_for_metrics(disp: torch.Tensor, output: str, min_depth: float, max_depth: float) -> torch.Tensor:
    """The quantity :func:`depth_training.metrics.compute_depth_metrics` aligns for an output kind.

    ``relative_disparity``: the sigmoid output itself (inverse depth up to scale and shift, aligned
    with ``"ssi_disparity"``); otherwise depth ``disp_to_depth(disp)[1]`` (metric, or aligned by
    the median for ``relative_depth``).
    """
    if output == "relative_disparity":
        return disp
    return disp_to_depth(disp, min_depth, max_depth)[1]
