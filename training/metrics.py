"""Depth evaluation metrics (Eigen et al. 2014; the KITTI protocol of Monodepth2's ``evaluate_depth``).

Over the ``n`` evaluated pixels of one image (ground truth ``d*`` and prediction ``d`` in metres):

    abs_rel  = 1/n sum |d - d*| / d*             sq_rel   = 1/n sum (d - d*)^2 / d*
    rmse     = sqrt(1/n sum (d - d*)^2)          rmse_log = sqrt(1/n sum (log d - log d*)^2)
    a_k      = 1/n |{ max(d/d*, d*/d) < 1.25^k }|   for k = 1, 2, 3   (fractions in [0, 1])

Protocol per image: evaluate pixels with finite ``min_depth < d* < max_depth`` (``max_depth`` is the
cap, 80 m for driving data) where ``mask`` holds; align the prediction; clamp it to
``[min_depth, max_depth]``; compute the errors. The reported value of each metric is the mean over
images (images without valid pixels are skipped), as the KITTI evaluation does.

Alignments:
    ``"none"``           metric models: ``pred`` is depth in metres.
    ``"median"``         monocular self-supervised models: ``pred`` is depth up to scale, multiplied
                         per image by ``median(d*) / median(d)`` (over the evaluated pixels).
    ``"ssi_disparity"``  relative models (MiDaS): ``pred`` is inverse depth up to scale and shift;
                         per image ``(s, t)`` are fitted by least squares to ``1/d*`` over the evaluated
                         pixels with ``s >= 0`` (an inverted prediction scores like a constant one
                         instead of being flipped), the aligned disparity is clamped to
                         ``>= 1/max_depth`` and inverted.

Public API:
    METRIC_NAMES
    depth_errors(pred N, gt N) -> dict[str, Tensor]      (one image, already aligned and capped)
    align_prediction(pred N, gt N, alignment, min_depth, max_depth) -> N depth
    compute_depth_metrics(pred, gt, min_depth=1e-3, max_depth=80.0, alignment="none", mask=None)
        -> dict[str, float] with METRIC_NAMES + "num_images"
"""
from __future__ import annotations

import numpy as np
import torch

from .losses.ssi import compute_scale_shift

__all__ = ["METRIC_NAMES", "ALIGNMENTS", "depth_errors", "align_prediction", "compute_depth_metrics"]

METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
ALIGNMENTS = ("none", "median", "ssi_disparity")


def depth_errors(pred: torch.Tensor, gt: torch.Tensor) -> dict[str, torch.Tensor]:
    """The seven standard errors of one image (see module docstring).

    Args:
        pred, gt: ``(N,)`` positive depths of the evaluated pixels.

    Returns:
        ``{name: 0-dim tensor}`` for :data:`METRIC_NAMES`.
    """
    ratio = torch.maximum(gt / pred, pred / gt)
    diff = pred - gt
    out = {
        "abs_rel": (diff.abs() / gt).mean(),
        "sq_rel": (diff * diff / gt).mean(),
        "rmse": torch.sqrt((diff * diff).mean()),
        "rmse_log": torch.sqrt(((torch.log(pred) - torch.log(gt)) ** 2).mean()),
    }
    for k in (1, 2, 3):
        out[f"a{k}"] = (ratio < 1.25 ** k).to(pred.dtype).mean()
    return out


def align_prediction(pred: torch.Tensor, gt: torch.Tensor, alignment: str, min_depth: float,
                     max_depth: float) -> torch.Tensor:
    """Align one image's prediction to its ground truth, then clamp to ``[min_depth, max_depth]``.

    Args:
        pred: ``(N,)`` depth (``"none"``, ``"median"``) or relative disparity (``"ssi_disparity"``).
        gt: ``(N,)`` ground-truth depth of the same pixels.

    Returns:
        ``(N,)`` depth in metres.
    """
    if alignment == "none":
        depth = pred
    elif alignment == "median":
        med = torch.quantile(pred, 0.5)
        if not bool(med > 0):
            raise ValueError(f"pred: median scaling needs a positive median prediction, got {float(med)}")
        depth = pred * (torch.quantile(gt, 0.5) / med)
    elif alignment == "ssi_disparity":
        scale, shift = compute_scale_shift(pred[None], 1.0 / gt[None], positive=True)
        disp = (scale * pred + shift).clamp(min=1.0 / max_depth)
        depth = 1.0 / disp
    else:
        raise ValueError(f"alignment: expected one of {ALIGNMENTS}, got {alignment!r}")
    return depth.clamp(min_depth, max_depth)


def _as_images(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach()
    t = t.to(device="cpu", dtype=torch.float64)
    if t.dim() == 2:
        t = t[None]
    elif t.dim() == 4 and t.shape[1] == 1:
        t = t[:, 0]
    if t.dim() != 3:
        raise ValueError(f"{name}: expected (H, W), (B, H, W) or (B, 1, H, W), got {tuple(t.shape)}")
    return t


def compute_depth_metrics(pred, gt, min_depth: float = 1e-3, max_depth: float = 80.0,
                          alignment: str = "none", mask=None) -> dict[str, float]:
    """Mean-over-images depth metrics with capping and alignment.

    Args:
        pred: predictions (torch or numpy), ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)``, at the
            ground truth's resolution; depth or relative disparity depending on ``alignment``.
        gt: ground-truth depth in metres, same shape; NaN / ``<= min_depth`` / ``>= max_depth`` are not
            evaluated.
        min_depth, max_depth: evaluation range and cap (KITTI: 1e-3 and 80 m).
        alignment: ``"none"``, ``"median"`` or ``"ssi_disparity"`` (see module docstring).
        mask: optional bool, same shape, e.g. the Garg/Eigen crop.

    Returns:
        ``{"abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3": float, "num_images": int}``;
        metrics are NaN when no image has a valid pixel.

    Raises:
        ValueError: shapes differ, unknown alignment, a non-finite prediction at an evaluated pixel,
            or a non-positive median prediction with ``"median"``.
    """
    if alignment not in ALIGNMENTS:
        raise ValueError(f"alignment: expected one of {ALIGNMENTS}, got {alignment!r}")
    p, g = _as_images(pred, "pred"), _as_images(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred {tuple(p.shape)} and gt {tuple(g.shape)} shapes differ")
    m = torch.ones_like(g, dtype=torch.bool) if mask is None else _as_images(mask, "mask").bool()
    if m.shape != g.shape:
        raise ValueError(f"mask {tuple(m.shape)} and gt {tuple(g.shape)} shapes differ")
    sums = {name: 0.0 for name in METRIC_NAMES}
    count = 0
    for i in range(g.shape[0]):
        valid = m[i] & torch.isfinite(g[i]) & (g[i] > min_depth) & (g[i] < max_depth)
        if not bool(valid.any()):
            continue
        p_i, g_i = p[i][valid], g[i][valid]
        if not bool(torch.isfinite(p_i).all()):
            raise ValueError(f"pred: image {i} has non-finite values at evaluated pixels")
        errors = depth_errors(align_prediction(p_i, g_i, alignment, min_depth, max_depth), g_i)
        for name in METRIC_NAMES:
            sums[name] += float(errors[name])
        count += 1
    out: dict[str, float] = {name: (sums[name] / count if count else float("nan")) for name in METRIC_NAMES}
    out["num_images"] = count
    return out
