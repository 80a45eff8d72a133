"""Scale-invariant log loss for metric depth (Eigen et al., NIPS 2014, eq. 4).

With ``g_i = log y_i - log y*_i`` over the ``n`` valid pixels of one image,

    D(y, y*) = 1/n sum_i g_i^2 - lambda/n^2 (sum_i g_i)^2

``lambda = 0`` is the plain log-space MSE, ``lambda = 1`` is fully scale invariant
(``D(c y, y*) = D(y, y*)``, the variance of ``g``), and Eigen trains with ``lambda = 0.5``.
The loss is ``D`` averaged over the images of the batch that have valid pixels (optionally
``sqrt(D)`` per image, as BTS/AdaBins use). Pixels are valid where ``mask`` holds and the ground
truth is finite and positive; predictions must be positive depths.

Public API:
    silog_loss(pred B1HW, target B1HW, mask=None, lambd=0.5, sqrt=False) -> scalar
"""
from __future__ import annotations

import torch

from .masking import as_mask

__all__ = ["silog_loss"]


def silog_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
               lambd: float = 0.5, sqrt: bool = False) -> torch.Tensor:
    """Eigen scale-invariant log loss, mean over images.

    Args:
        pred: ``(B, 1, H, W)`` (or ``(B, ...)``) positive predicted depth.
        target: ground-truth depth like ``pred`` (NaN / ``<= 0`` = no reading).
        mask: optional validity, broadcastable to ``target``.
        lambd: ``lambda`` in ``[0, 1]``.
        sqrt: return the mean over images of ``sqrt(D)`` instead of ``D``.

    Returns:
        Scalar; 0 when no image has a valid pixel.
    """
    valid = as_mask(mask, target) & torch.isfinite(target) & (target > 0)
    b = target.shape[0]
    one = torch.ones_like(pred)
    g = torch.log(torch.where(valid, pred, one)) - torch.log(torch.where(valid, target, one).to(pred.dtype))
    g = torch.where(valid, g, torch.zeros_like(g)).reshape(b, -1)
    n = valid.reshape(b, -1).sum(1).to(pred.dtype)
    n_safe = n.clamp(min=1)
    d = (g * g).sum(1) / n_safe - lambd * (g.sum(1) / n_safe) ** 2
    if sqrt:
        d = torch.sqrt(d.clamp(min=1e-12))
    has = n > 0
    return torch.where(has, d, torch.zeros_like(d)).sum() / has.sum().clamp(min=1)
