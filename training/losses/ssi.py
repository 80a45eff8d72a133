"""Scale- and shift-invariant losses in disparity space (MiDaS, Ranftl et al. 2020).

Predictions ``d`` and ground truth ``d*`` are (relative) inverse depths, per image ``i`` with ``M_i``
valid pixels. Two ways to remove the unknown scale and shift:

* Least squares (``ssi_mse_loss``): ``(s, t) = argmin sum_valid (s d + t - d*)^2``, closed form
  (solved in centred form, see :func:`compute_scale_shift`; as in MiDaS ``s`` may be negative, so an
  inverted prediction also scores 0)

      [s]   [sum d^2  sum d]^-1 [sum d d*]
      [t] = [sum d    M    ]    [sum d*  ]

  and ``L_ssimse = 1/(2M) sum_valid (s d + t - d*)^2`` (``M`` = valid pixels of the whole batch).
* Robust (``trimmed_ssi_mae_loss``): each map is normalised as ``(d - t(d)) / s(d)`` with
  ``t(d) = median_valid(d)`` and ``s(d)`` a mean absolute deviation from the median; then

      L_ssitrim = 1/(2M) sum_i sum_{j <= U_i} |d_hat - d*_hat|_(j),   U_i = floor(0.8 M_i)

  i.e. per image the largest 20 % residuals are dropped. Every statistic (median, deviation,
  the trimming itself) runs over valid pixels only.

  Two refinements (both on by default; ``robust_scale=False, refine_steps=0`` is the paper's loss)
  make outliers in ``d*`` (up to the trimmed fraction) stop influencing the loss:

  - the paper's ``s(d) = mean_valid |d - t(d)|`` is inflated by 10 % outliers in ``d*`` and shrinks
    every inlier, which no residual trimming undoes; ``robust_scale=True`` takes the mean absolute
    deviation over the ``(1 - trim)`` fraction of valid pixels closest to the median instead;
  - outliers also move the median, leaving the inliers of ``d_hat`` and ``d*_hat`` offset/scaled against
    each other; ``refine_steps`` concentration steps of least trimmed squares fix that: keep the
    ``(1 - trim)`` smallest residuals ``|d_hat - d*_hat|`` per image, refit ``d_hat <- s d_hat + t`` by
    least squares on them (:func:`align_trimmed`), repeat. The loss stays scale/shift invariant
    and in the robust units of ``d*_hat``.

(The public MiDaS code slices the ``(values, indices)`` tuple returned by ``torch.sort`` instead of
the values, so it never trims, and takes the median over masked-out zeros; these functions do not.)

Multi-scale gradient matching on the residual ``R = d_hat - d*_hat`` of the aligned maps, with
``R^k`` the residual subsampled by ``2^k`` (k = 0..3):

      L_reg = sum_k 1/M_k sum_valid (|dx R^k| + |dy R^k|)

and the total ``L = L_data + 0.5 L_reg`` (:func:`ssi_loss`).

Shapes: ``pred``, ``target``, ``mask`` are ``(B, 1, H, W)`` (any ``(B, ...)`` works for the data
terms; gradient matching needs the last two dims to be ``H, W``). Non-finite ``target`` pixels are
invalid automatically.

Public API:
    masked_median(x BN, valid BN) -> B
    compute_scale_shift(pred, target, mask=None, positive=False) -> (scale B, shift B)
    align_scale_shift(pred, target, mask=None) -> aligned pred, like pred
    normalise_median_deviation(x, mask=None, trim=0.2, robust_scale=True) -> like x
    align_trimmed(pred_hat, target_hat, mask=None, trim=0.2, steps=2) -> like pred_hat
    ssi_mse_loss(pred, target, mask=None) -> scalar
    trimmed_ssi_mae_loss(pred, target, mask=None, trim=0.2, robust_scale=True, refine_steps=2) -> scalar
    gradient_matching_loss(pred, target, mask=None, num_scales=4) -> scalar   (inputs already aligned)
    ssi_loss(pred, target, mask=None, variant="trimmed"|"mse", grad_weight=0.5, num_scales=4) -> SSILossTerms
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from .masking import as_mask

__all__ = [
    "SSILossTerms",
    "masked_median",
    "compute_scale_shift",
    "align_scale_shift",
    "normalise_median_deviation",
    "align_trimmed",
    "ssi_mse_loss",
    "trimmed_ssi_mae_loss",
    "gradient_matching_loss",
    "ssi_loss",
]


class SSILossTerms(NamedTuple):
    """``total = data + grad_weight * gradient`` (scalars)."""

    total: torch.Tensor
    data: torch.Tensor
    gradient: torch.Tensor


def _valid(target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return as_mask(mask, target) & torch.isfinite(target)


def _zero_invalid(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    # Selecting (not multiplying) keeps NaN/inf at invalid pixels out of values *and* gradients.
    return torch.where(valid, x, torch.zeros_like(x))


def masked_median(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-row median over valid entries (the lower one for an even count; 0 for an empty row).

    Args:
        x, valid: ``(B, N)``.

    Returns:
        ``(B,)``.
    """
    n = valid.sum(1)
    filled = torch.where(valid, x, torch.full_like(x, float("inf")))
    ordered = torch.sort(filled, dim=1).values
    idx = ((n - 1).clamp(min=0) // 2).unsqueeze(1)
    med = ordered.gather(1, idx).squeeze(1)
    return torch.where(n > 0, med, torch.zeros_like(med))


def compute_scale_shift(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                        positive: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image least-squares ``(s, t) = argmin sum_valid (s pred + t - target)^2``.

    Solved in centred form (the same solution as the 2x2 normal equations, without their
    cancellation in float32): ``s = sum (p - p_bar)(d - d_bar) / sum (p - p_bar)^2``,
    ``t = d_bar - s p_bar`` over the valid pixels. Degenerate images (prediction constant over the
    valid pixels, or none valid) get ``s = 0`` and ``t = mean_valid(target)`` (0 without valid pixels).
    With ``positive=True`` the fit is constrained to ``s >= 0`` (a negative ``s`` becomes ``s = 0``,
    ``t = mean_valid(target)``, the constrained optimum), so an inverted prediction is not explained
    away; MiDaS (and ``ssi_mse_loss``) leave ``s`` unconstrained.

    Args:
        pred, target: ``(B, ...)``; mask broadcastable to ``target``.

    Returns:
        ``scale``, ``shift``: ``(B,)``.
    """
    valid = _valid(target, mask)
    b = pred.shape[0]
    m = valid.reshape(b, -1)
    p = _zero_invalid(pred, valid).reshape(b, -1)
    d = _zero_invalid(target, valid).reshape(b, -1).to(pred.dtype)
    n = m.sum(1).clamp(min=1).to(pred.dtype)
    p_bar, d_bar = p.sum(1) / n, d.sum(1) / n
    pc = _zero_invalid(p - p_bar[:, None], m)
    dc = _zero_invalid(d - d_bar[:, None], m)
    sxx, sxy = (pc * pc).sum(1), (pc * dc).sum(1)
    # constant prediction (up to rounding): the spread is below ~64 ulp of the values
    ok = sxx > (64 * torch.finfo(pred.dtype).eps) ** 2 * (p * p).sum(1)
    scale = torch.where(ok, sxy / torch.where(ok, sxx, torch.ones_like(sxx)), torch.zeros_like(sxx))
    if positive:
        scale = scale.clamp(min=0.0)
    return scale, d_bar - scale * p_bar


def align_scale_shift(pred: torch.Tensor, target: torch.Tensor,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    """``s * pred + t`` with the per-image least-squares ``(s, t)`` of :func:`compute_scale_shift`."""
    scale, shift = compute_scale_shift(pred, target, mask)
    view = (-1,) + (1,) * (pred.dim() - 1)
    return scale.reshape(view) * pred + shift.reshape(view)


def normalise_median_deviation(x: torch.Tensor, mask: torch.Tensor | None = None, trim: float = 0.2,
                               robust_scale: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """``(x - t(x)) / s(x)`` per image over valid pixels (MiDaS eq. 7-8).

    ``t(x) = median_valid(x)``; ``s(x) = mean |x - t(x)|`` over the valid pixels, restricted with
    ``robust_scale`` to the ``floor((1 - trim) M)`` pixels closest to the median. ``s`` is clamped to
    ``eps``. Invalid pixels of the result are 0.

    Args:
        x: ``(B, ...)``; mask broadcastable to it.
    """
    valid = _valid(x, mask)
    b = x.shape[0]
    flat = _zero_invalid(x, valid).reshape(b, -1)
    v = valid.reshape(b, -1)
    t = masked_median(flat, v)
    dev = (flat - t[:, None]).abs()
    s = _trimmed_sum(dev, v, trim if robust_scale else 0.0)
    s = s[0] / s[1].clamp(min=1)
    out = (flat - t[:, None]) / s.clamp(min=eps)[:, None]
    return _zero_invalid(out, v).reshape(x.shape)


def _smallest_mask(values: torch.Tensor, valid: torch.Tensor, keep: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: mask of the ``k = floor(keep * n)`` smallest valid values (``k >= 1`` if ``n > 0``).

    Args:
        values, valid: ``(B, N)``.

    Returns:
        ``(mask (B, N) bool, k (B,))``.
    """
    n = valid.sum(1)
    k = torch.floor(keep * n.to(torch.float64)).to(n.dtype)
    k = torch.where(n > 0, k.clamp(min=1), k)
    filled = torch.where(valid, values.detach(), torch.full_like(values, float("inf")))
    order = torch.argsort(filled, dim=1)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(values.shape[1], device=values.device).expand_as(order).contiguous())
    return (ranks < k.unsqueeze(1)) & valid, k


def _trimmed_sum(values: torch.Tensor, valid: torch.Tensor, trim: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: sum of the ``k = floor((1 - trim) n)`` smallest valid values; returns ``(sum (B,), k (B,))``."""
    keep, k = _smallest_mask(values, valid, 1.0 - trim)
    return torch.where(keep, values, torch.zeros_like(values)).sum(1), k


def align_trimmed(pred_hat: torch.Tensor, target_hat: torch.Tensor, mask: torch.Tensor | None = None,
                  trim: float = 0.2, steps: int = 2) -> torch.Tensor:
    """Least-trimmed-squares refinement of an initial alignment (concentration steps).

    ``steps`` times: ``K`` = the ``floor((1 - trim) M)`` valid pixels with the smallest
    ``|pred_hat - target_hat|`` (current alignment); ``(s, t)`` = least squares of the *original*
    ``pred_hat`` to ``target_hat`` over ``K``; ``pred_hat' = s pred_hat + t``. A refit with ``s <= 0``
    is rejected for that image (the current alignment is kept), so an inverted prediction keeps the
    large loss and gradients of its normalised map. The selection is not differentiated; ``(s, t)`` are.

    Args:
        pred_hat, target_hat: ``(B, ...)`` roughly aligned maps (e.g. median/deviation-normalised).

    Returns:
        Refined ``pred_hat``, like ``pred_hat``.
    """
    valid = _valid(target_hat, mask)
    b = pred_hat.shape[0]
    aligned = pred_hat
    for _ in range(steps):
        res = (aligned - _zero_invalid(target_hat, valid)).abs().reshape(b, -1)
        keep, _ = _smallest_mask(res, valid.reshape(b, -1), 1.0 - trim)
        scale, shift = compute_scale_shift(pred_hat, target_hat, keep.reshape(valid.shape))
        view = (-1,) + (1,) * (pred_hat.dim() - 1)
        accept = (scale > 0).reshape(view)
        aligned = torch.where(accept, scale.reshape(view) * pred_hat + shift.reshape(view), aligned)
    return aligned


def ssi_mse_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``L_ssimse = 1/(2M) sum_valid (s pred + t - target)^2`` with per-image least-squares ``(s, t)``."""
    valid = _valid(target, mask)
    res = _zero_invalid(align_scale_shift(pred, target, valid) - _zero_invalid(target, valid), valid)
    return (res * res).sum() / (2 * valid.sum().clamp(min=1))


def trimmed_ssi_mae_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                         trim: float = 0.2, robust_scale: bool = True, refine_steps: int = 2) -> torch.Tensor:
    """``L_ssitrim``: MAE of the median/deviation-normalised maps without the largest ``trim`` residuals.

    ``1/(2M) sum_i sum_{j <= floor((1-trim) M_i)} r_(j)`` with ``r = |pred_hat - target_hat|`` sorted
    ascending per image over its valid pixels, ``M`` the number of valid pixels in the batch;
    ``pred_hat`` is refined by :func:`align_trimmed` when ``refine_steps > 0`` (module docstring).
    """
    valid = _valid(target, mask)
    pred_hat, target_hat = _trimmed_alignment(pred, target, valid, trim, robust_scale, refine_steps)
    return _trimmed_mae(pred_hat, target_hat, valid, trim)


def _trimmed_alignment(pred, target, valid, trim, robust_scale, refine_steps):
    pred_hat = normalise_median_deviation(pred, valid, trim, robust_scale)
    target_hat = normalise_median_deviation(target, valid, trim, robust_scale)
    if refine_steps > 0:
        pred_hat = _zero_invalid(align_trimmed(pred_hat, target_hat, valid, trim, refine_steps), valid)
    return pred_hat, target_hat


def _trimmed_mae(pred_hat: torch.Tensor, target_hat: torch.Tensor, valid: torch.Tensor,
                 trim: float) -> torch.Tensor:
    b = pred_hat.shape[0]
    kept, _ = _trimmed_sum((pred_hat - target_hat).abs().reshape(b, -1), valid.reshape(b, -1), trim)
    return kept.sum() / (2 * valid.sum().clamp(min=1))


def gradient_matching_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                           num_scales: int = 4) -> torch.Tensor:
    """Multi-scale gradient matching ``sum_k 1/M_k sum (|dx R^k| + |dy R^k|)``, ``R = pred - target``.

    Inputs must already be aligned (``align_scale_shift`` or ``normalise_median_deviation``). A
    difference counts only when both of its pixels are valid; ``M_k`` is the number of valid pixels at
    scale ``k`` (subsampling by ``2^k``, as MiDaS ``[::2^k, ::2^k]``).

    Args:
        pred, target, mask: ``(B, 1, H, W)``.
    """
    valid = _valid(target, mask)
    res = _zero_invalid(pred - _zero_invalid(target, valid), valid)
    total = pred.new_zeros(())
    for k in range(num_scales):
        step = 2 ** k
        r, v = res[..., ::step, ::step], valid[..., ::step, ::step]
        gx = ((r[..., :, 1:] - r[..., :, :-1]).abs() * (v[..., :, 1:] & v[..., :, :-1])).sum()
        gy = ((r[..., 1:, :] - r[..., :-1, :]).abs() * (v[..., 1:, :] & v[..., :-1, :])).sum()
        total = total + (gx + gy) / v.sum().clamp(min=1)
    return total


def ssi_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, *,
             variant: str = "trimmed", grad_weight: float = 0.5, num_scales: int = 4,
             trim: float = 0.2, robust_scale: bool = True, refine_steps: int = 2) -> SSILossTerms:
    """MiDaS training loss ``L_data + grad_weight * L_reg`` for one batch.

    Args:
        pred: ``(B, 1, H, W)`` predicted relative disparity.
        target: ``(B, 1, H, W)`` ground-truth disparity (any scale/shift; NaN = invalid).
        mask: optional ``(B, 1, H, W)`` validity.
        variant: ``"trimmed"`` (``L_ssitrim`` on median/deviation-normalised maps) or ``"mse"``
            (``L_ssimse`` on least-squares-aligned maps); gradient matching uses the same alignment.
        grad_weight: weight of the gradient-matching term (0.5 in MiDaS), 0 disables it.
        num_scales: gradient-matching scales (4).
        trim, robust_scale, refine_steps: options of the trimmed variant (module docstring).

    Returns:
        :class:`SSILossTerms` ``(total, data, gradient)``.
    """
    valid = _valid(target, mask)
    if variant == "mse":
        pred_hat, target_hat = align_scale_shift(pred, target, valid), target
        data = ssi_mse_loss(pred, target, valid)
    elif variant == "trimmed":
        pred_hat, target_hat = _trimmed_alignment(pred, target, valid, trim, robust_scale, refine_steps)
        data = _trimmed_mae(pred_hat, target_hat, valid, trim)
    else:
        raise ValueError(f"variant: expected 'trimmed' or 'mse', got {variant!r}")
    grad = gradient_matching_loss(pred_hat, target_hat, valid, num_scales) if grad_weight else pred.new_zeros(())
    return SSILossTerms(data + grad_weight * grad, data, grad)
