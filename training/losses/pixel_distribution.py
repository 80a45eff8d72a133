"""Pixelwise distribution loss for dense descriptors (Florence 2019, PhD thesis ch. 4), as pure functions.

The pixel-contrastive loss (:mod:`.pixel_contrastive`) looks at a match and a few sampled
non-matches. What a tracker does with the descriptors is different: it takes the descriptor of a
pixel of A and picks the **nearest of every pixel of B**. This loss trains that directly. For a
match ``(a, b)`` with ``d_a`` the descriptor of ``a`` and ``d_B(p)`` the descriptor of pixel ``p``
of B, the network defines a distribution over all ``H W`` pixels of B:

    p(p | a) = exp(-|d_a - d_B(p)|^2 / eta^2) / sum_p' exp(-|d_a - d_B(p')|^2 / eta^2)

and the loss is its cross-entropy against a target ``q`` centred on the true match ``uv_b`` (exact,
not rounded): a Gaussian of ``sigma`` pixels on the pixel grid, truncated at ``radius`` pixels and
normalised to sum 1 (``sigma = 0``: all the mass on the rounded pixel)

    L = 1/N sum_i  -sum_p q_i(p) log p(p | a_i)
      = 1/N sum_i [ logsumexp_p(s_i(p)) - sum_p q_i(p) s_i(p) ],     s_i(p) = -|d_a_i - d_B(p)|^2 / eta^2

Every pixel of B that is nearer in descriptor space than the true match gets a gradient, in
proportion to how much probability it takes; none is left out because it was not sampled. The
minimum is ``H(q)``, the target's entropy (0 for ``sigma = 0``). The temperature ``eta`` fixes the
descriptor scale: distances are measured in units of ``eta``.

Shapes: descriptors ``(B, D, H, W)``; matches ``match_a (B, N)`` flat indices ``v W + u`` in A,
``match_uv_b (B, N, 2)`` float ``(u, v)`` in B; ``valid (B, N)`` bool (optional).
"""
from __future__ import annotations

import math

import torch

from .pixel_contrastive import gather_descriptors

__all__ = ["gaussian_targets", "descriptor_logits", "pixel_distribution_loss"]


def gaussian_targets(uv: torch.Tensor, height: int, width: int, sigma: float,
                     radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Target distributions on a ``(2 radius + 1)^2`` window of pixels around each ``uv``.

    Args:
        uv: ``(..., 2)`` float ``(u, v)`` of the true matches.
        sigma: Gaussian width in pixels; ``0`` puts all the mass on the rounded pixel.
        radius: window half-size in pixels (``>= 1``).

    Returns:
        ``(flat (..., K) int64 pixel indices v W + u, weight (..., K))`` with ``K = (2 radius + 1)^2``:
        ``weight ∝ exp(-|p - uv|^2 / (2 sigma^2))`` on the window pixels inside the image, 0 outside,
        summing to 1 over ``K``. Indices outside the image are clamped (their weight is 0).
    """
    centre = torch.floor(uv + 0.5)
    offs = torch.arange(-radius, radius + 1, device=uv.device, dtype=uv.dtype)
    dv, du = torch.meshgrid(offs, offs, indexing="ij")
    pu = centre[..., 0:1] + du.reshape(-1)  # (..., K)
    pv = centre[..., 1:2] + dv.reshape(-1)
    inside = (pu >= 0) & (pu < width) & (pv >= 0) & (pv < height)
    if sigma > 0:
        d2 = (pu - uv[..., 0:1]) ** 2 + (pv - uv[..., 1:2]) ** 2
        w = torch.exp(-d2 / (2.0 * sigma * sigma))
    else:
        w = ((du.reshape(-1) == 0) & (dv.reshape(-1) == 0)).to(uv.dtype).expand(pu.shape)
    w = w * inside.to(uv.dtype)
    w = w / w.sum(-1, keepdim=True).clamp_min(1e-12)
    flat = pv.clamp(0, height - 1).long() * width + pu.clamp(0, width - 1).long()
    return flat, w


def descriptor_logits(query: torch.Tensor, desc_b: torch.Tensor, eta: float) -> torch.Tensor:
    """``s(p) = -|q - d_B(p)|^2 / eta^2`` for every query and every pixel of B.

    Args:
        query: ``(B, N, D)``; desc_b: ``(B, D, H, W)``.

    Returns:
        ``(B, N, H W)`` (computed as ``2 q.d - |q|^2 - |d|^2``, one matrix product per image).
    """
    b, d = desc_b.shape[:2]
    flat = desc_b.reshape(b, d, -1)                       # (B, D, HW)
    cross = torch.bmm(query, flat)                        # (B, N, HW)
    sq = query.pow(2).sum(-1, keepdim=True) + flat.pow(2).sum(1, keepdim=True)
    return (2.0 * cross - sq) / (eta * eta)


def pixel_distribution_loss(desc_a: torch.Tensor, desc_b: torch.Tensor, match_a: torch.Tensor,
                            match_uv_b: torch.Tensor, *, eta: float = 0.5, sigma: float = 1.0,
                            radius: int | None = None, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy of the descriptor distribution over B against the target at the true match.

    Args:
        desc_a, desc_b: ``(B, D, H, W)`` descriptor images of A and B.
        match_a: ``(B, N)`` flat indices of the matches in A.
        match_uv_b: ``(B, N, 2)`` float ``(u, v)`` of the true matches in B.
        eta: temperature (descriptor-distance unit), ``> 0``.
        sigma: target width in pixels (``0``: the rounded pixel only).
        radius: target window half-size; default ``max(1, ceil(3 sigma))``.
        valid: ``(B, N)`` bool; invalid matches count nowhere.

    Returns:
        scalar: ``1/N_valid sum_i [logsumexp_p s_i(p) - sum_p q_i(p) s_i(p)]`` (module docstring); 0
        when nothing is valid.
    """
    if eta <= 0:
        raise ValueError(f"eta must be > 0, got {eta}")
    h, w = desc_b.shape[-2:]
    r = max(1, math.ceil(3.0 * sigma)) if radius is None else int(radius)
    da = gather_descriptors(desc_a, match_a)                         # (B, N, D)
    logits = descriptor_logits(da, desc_b, eta)                      # (B, N, HW)
    flat, q = gaussian_targets(match_uv_b.to(logits.dtype), h, w, sigma, r)  # (B, N, K)
    target_logit = (torch.gather(logits, 2, flat) * q).sum(-1)      # (B, N)
    ce = torch.logsumexp(logits, dim=2) - target_logit
    if valid is None:
        return ce.mean() if ce.numel() else ce.sum()
    v = valid.to(ce.dtype)
    return (ce * v).sum() / v.sum().clamp_min(1.0)
