"""Pixel-contrastive loss of Dense Object Nets (Florence, Manuelli & Tedrake 2018), as pure functions.

Descriptors are gathered at pixels: ``d_a = f(I_a)[:, a]``, ``d_b = f(I_b)[:, b]`` (``D``-dim).

* match term:  ``L_m = 1/N_m sum_i |d_a(i) - d_b(i)|^2``                     (:func:`match_loss`)
* non-match hinge for one pair: ``h = max(0, M - |d_a - d_b|)^2``             (:func:`nonmatch_hinge`)
* hard-negative scaling: ``L_n = sum_j h_j / max(1, #{j : h_j > 0})`` - divide by the number of
  non-matches still inside the margin, not by all of them, so the loss does not vanish as the easy
  ones are pushed out                                                         (:func:`hard_negative_mean`)
* total: ``L = w_m L_m + w_obj L_obj + w_bg L_bg + w_cross L_cross``: non-matches on the object, on
  the background, and between different objects (other scenes)            (:func:`pixel_contrastive_loss`)

Distances are plain L2 (not squared) inside the hinge, as in the paper; ``M = 0.5`` by default.
Invalid entries (``valid`` False, e.g. a non-match nearer than the minimum pixel distance) count
nowhere: neither in the sum nor in the hard-negative count.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["gather_descriptors", "match_loss", "nonmatch_hinge", "hard_negative_mean", "LossWeights",
           "pixel_contrastive_loss", "cross_object_loss"]


def gather_descriptors(desc: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``desc (B, D, H, W)``, ``idx (B, ...)`` flat pixel indices ``v W + u`` -> ``(B, ..., D)``."""
    b, d = desc.shape[:2]
    flat = desc.reshape(b, d, -1)
    g = torch.gather(flat, 2, idx.reshape(b, 1, -1).expand(b, d, -1).long())
    return g.permute(0, 2, 1).reshape(*idx.shape, d)


def match_loss(d_a: torch.Tensor, d_b: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """``mean_i |d_a(i) - d_b(i)|^2`` over valid matches; ``d_a, d_b (..., D)``, ``valid (...)``. 0 if none."""
    sq = (d_a - d_b).pow(2).sum(-1)
    if valid is None:
        return sq.mean() if sq.numel() else sq.sum()
    v = valid.to(sq.dtype)
    return (sq * v).sum() / v.sum().clamp_min(1.0)


def nonmatch_hinge(d_a: torch.Tensor, d_b: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    """``max(0, M - |d_a - d_b|_2)^2`` per pair: ``(..., D), (..., D) -> (...)``.

    The norm uses ``sqrt(sum + 1e-12)`` so its gradient exists at coincident descriptors.
    """
    dist = ((d_a - d_b).pow(2).sum(-1) + 1e-12).sqrt()
    return torch.clamp(margin - dist, min=0.0).pow(2)


def hard_negative_mean(h: torch.Tensor, valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum_j h_j / max(1, #{h_j > 0}), #{h_j > 0})`` over the valid entries of ``h``."""
    if valid is not None:
        h = h * valid.to(h.dtype)
    hard = (h > 0).sum()
    return h.sum() / hard.clamp_min(1).to(h.dtype), hard


@dataclass(frozen=True)
class LossWeights:
    """Term weights and the margin (defaults: Dense Object Nets' M = 0.5, equal weights)."""

    margin: float = 0.5
    match: float = 1.0
    object: float = 1.0
    background: float = 1.0
    cross_object: float = 1.0


def pixel_contrastive_loss(desc_a: torch.Tensor, desc_b: torch.Tensor, match_a: torch.Tensor, match_b: torch.Tensor,
                           nonmatch_obj: torch.Tensor, nonmatch_obj_valid: torch.Tensor,
                           nonmatch_bg: torch.Tensor, nonmatch_bg_valid: torch.Tensor,
                           weights: LossWeights = LossWeights(),
                           match_valid: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The same-scene terms for a batch.

    Args:
        desc_a, desc_b: ``(B, D, H, W)`` descriptor images of A and B.
        match_a, match_b: ``(B, N)`` flat indices of the matches in A and B.
        nonmatch_obj, nonmatch_bg: ``(B, N, k)`` flat indices in B of non-matches of match ``i``
            (on the object / on the background), with ``..._valid (B, N, k)`` bool.
        match_valid: optional ``(B, N)`` bool.

    Returns:
        dict with ``match``, ``object``, ``background`` (each a scalar), ``hard_object``,
        ``hard_background`` (counts) and ``total`` = weighted sum (without the cross-object term).
    """
    da = gather_descriptors(desc_a, match_a)  # (B, N, D)
    db = gather_descriptors(desc_b, match_b)
    lm = match_loss(da, db, match_valid)
    out = {"match": lm}
    total = weights.match * lm
    for name, idx, valid, w in (("object", nonmatch_obj, nonmatch_obj_valid, weights.object),
                                ("background", nonmatch_bg, nonmatch_bg_valid, weights.background)):
        dn = gather_descriptors(desc_b, idx)  # (B, N, k, D)
        h = nonmatch_hinge(da.unsqueeze(2), dn, weights.margin)
        v = valid if match_valid is None else valid & match_valid.unsqueeze(-1)
        value, hard = hard_negative_mean(h, v)
        out[name], out[f"hard_{name}"] = value, hard
        total = total + w * value
    out["total"] = total
    return out


def cross_object_loss(desc_a: torch.Tensor, desc_b: torch.Tensor, obj_a: torch.Tensor, obj_b: torch.Tensor,
                      scene: torch.Tensor, margin: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-matches between different objects: object pixels of A of sample ``i`` against object
    pixels of B of sample ``j`` for every ``i, j`` with ``scene[i] != scene[j]`` (hard-negative scaled).

    Args:
        obj_a, obj_b: ``(B, n)`` flat indices of object pixels; scene: ``(B,)`` scene id per sample.

    Returns:
        ``(loss, number of hard negatives)``; 0 when the batch holds a single scene.
    """
    da = gather_descriptors(desc_a, obj_a)  # (B, n, D)
    db = gather_descriptors(desc_b, obj_b)
    pairs = (scene[:, None] != scene[None, :]).nonzero()
    if pairs.numel() == 0:
        zero = desc_a.sum() * 0.0
        return zero, torch.zeros((), dtype=torch.long, device=desc_a.device)
    h = nonmatch_hinge(da[pairs[:, 0]], db[pairs[:, 1]], margin)  # (P, n) elementwise pairing
    return hard_negative_mean(h)
