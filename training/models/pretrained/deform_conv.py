"""Deformable convolution (DCN v1/v2) in pure torch: the semantics of ``torchvision.ops.deform_conv2d``.

For an output pixel ``p = (y, x)`` and kernel tap ``k = (i, j)`` (row-major, ``k = i * kw + j``):

    q_k(p)   = (y * s_h - pad_h + i * d_h + dy_k(p),  x * s_w - pad_w + j * d_w + dx_k(p))
    out[b, o, p] = bias[o] + sum_{c, k} weight[o, c, i, j] * m_k(p) * X[b, c](q_k(p))

with ``X(q)`` the bilinear interpolation of the input at the real position ``q`` whose corner
pixels outside the image count as zero (so ``X(q) = 0`` once ``q`` is a pixel or more outside),
``dy_k, dx_k = offset[b, g * 2K + 2k], offset[b, g * 2K + 2k + 1]`` for channel ``c`` in offset group
``g = c // (C / G)`` (``K = kh * kw``; torchvision's order: y before x), and ``m_k = mask[b, g * K + k]``
(DCN v2; ``m = 1`` without a mask).

Implementation: one ``grid_sample`` (bilinear, zeros padding, ``align_corners=False``) gathers the
``K`` sampled copies of the input, ``(B, C, K, L)`` with ``L = H_out * W_out``, and one matmul with the
weight ``(O, C * K)`` sums them: ``O(B * C * K * L)`` memory, no custom kernel, exportable to ONNX
(GridSample, opset >= 16). Pixel ``u`` maps to ``grid_sample``'s ``(2u + 1) / size - 1``, which with
``align_corners=False`` puts the sample exactly on pixel ``u`` (also for a 1-pixel-wide input).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["deform_conv2d"]


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def deform_conv2d(input: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                  dilation: int | tuple[int, int] = 1, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Deformable 2-D convolution (formula in the module docstring).

    Args:
        input: ``(B, C, H, W)``.
        offset: ``(B, 2 * G * kh * kw, H_out, W_out)``, ``G`` offset groups dividing ``C``.
        weight: ``(O, C, kh, kw)`` (no weight groups).
        bias: ``(O,)`` or None.
        mask: ``(B, G * kh * kw, H_out, W_out)`` modulation (DCN v2) or None.

    Returns:
        ``(B, O, H_out, W_out)``, ``H_out = (H + 2 pad_h - d_h (kh - 1) - 1) // s_h + 1`` (likewise ``W_out``).
    """
    s_h, s_w = _pair(stride)
    p_h, p_w = _pair(padding)
    d_h, d_w = _pair(dilation)
    b, c, h, w = input.shape
    o, c_w, kh, kw = weight.shape
    if c_w != c:
        raise ValueError(f"deform_conv2d: weight has {c_w} input channels, input has {c} (weight groups unsupported)")
    k = kh * kw
    h_out = (h + 2 * p_h - d_h * (kh - 1) - 1) // s_h + 1
    w_out = (w + 2 * p_w - d_w * (kw - 1) - 1) // s_w + 1
    if offset.shape[0] != b or offset.shape[1] % (2 * k) or tuple(offset.shape[2:]) != (h_out, w_out):
        raise ValueError(f"deform_conv2d: offset {tuple(offset.shape)} does not fit (B={b}, 2*G*{k}, {h_out}, {w_out})")
    g = offset.shape[1] // (2 * k)
    if c % g:
        raise ValueError(f"deform_conv2d: {g} offset groups do not divide {c} channels")
    if mask is not None and tuple(mask.shape) != (b, g * k, h_out, w_out):
        raise ValueError(f"deform_conv2d: mask {tuple(mask.shape)} is not {(b, g * k, h_out, w_out)}")

    dtype, device = input.dtype, input.device
    ys = torch.arange(h_out, device=device, dtype=dtype) * s_h - p_h             # (H_out,)
    xs = torch.arange(w_out, device=device, dtype=dtype) * s_w - p_w             # (W_out,)
    ky = (torch.arange(kh, device=device, dtype=dtype) * d_h).repeat_interleave(kw)  # (K,) tap rows
    kx = (torch.arange(kw, device=device, dtype=dtype) * d_w).repeat(kh)             # (K,) tap columns
    off = offset.reshape(b, g, k, 2, h_out, w_out)
    qy = ys.view(1, 1, 1, h_out, 1) + ky.view(1, 1, k, 1, 1) + off[:, :, :, 0]   # (B, G, K, H_out, W_out)
    qx = xs.view(1, 1, 1, 1, w_out) + kx.view(1, 1, k, 1, 1) + off[:, :, :, 1]
    grid = torch.stack(((2 * qx + 1) / w - 1, (2 * qy + 1) / h - 1), dim=-1)      # (B, G, K, H_out, W_out, 2)
    grid = grid.reshape(b * g, k * h_out, w_out, 2)
    sampled = F.grid_sample(input.reshape(b * g, c // g, h, w), grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)                                 # (B*G, C/G, K*H_out, W_out)
    sampled = sampled.reshape(b, g, c // g, k, h_out * w_out)
    if mask is not None:
        sampled = sampled * mask.reshape(b, g, 1, k, h_out * w_out)
    cols = sampled.reshape(b, c * k, h_out * w_out)                               # channel-major, tap-minor
    out = torch.matmul(weight.reshape(o, c * k), cols)                           # (B, O, L)
    if bias is not None:
        out = out + bias.view(1, o, 1)
    return out.reshape(b, o, h_out, w_out)
