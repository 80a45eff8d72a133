"""Deformable convolution in pure torch against the DCN formula evaluated pixel by pixel, and against
torchvision's operator when torchvision is installed (it is not a project dependency)."""
from __future__ import annotations

import math

import pytest
import torch

from depth_training.models.pretrained.deform_conv import deform_conv2d

# (B, C, H, W, O, kh, kw, stride, padding, dilation, offset groups, mask)
CASES = [
    (2, 4, 5, 7, 3, 3, 3, 1, 1, 1, 1, False),             # ALIKED's case, non-square
    (1, 4, 6, 5, 2, 3, 2, (2, 1), (1, 0), (1, 2), 2, True),  # everything asymmetric, DCN v2 mask
    (1, 2, 1, 6, 2, 3, 3, 1, 1, 1, 1, True),               # a one-row image
]


def _pair(v):
    return (v, v) if isinstance(v, int) else v


def _bilinear(img: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """``img (C, H, W)`` at real ``(y, x)``: corners outside the image count as zero."""
    _, h, w = img.shape
    y0, x0 = math.floor(y), math.floor(x)
    val = img.new_zeros(img.shape[0])
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                val = val + wy * wx * img[:, yy, xx]
    return val


def _brute_force(x, offset, weight, bias, stride, padding, dilation, mask):
    """out[b, :, p] = bias + sum_{c, (i, j)} W[:, c, i, j] m X[b, c](p s - pad + (i, j) d + (dy, dx))."""
    (s_h, s_w), (p_h, p_w), (d_h, d_w) = _pair(stride), _pair(padding), _pair(dilation)
    b_, c_, _, _ = x.shape
    o_, _, kh, kw = weight.shape
    h_out, w_out = offset.shape[-2:]
    k_ = kh * kw
    groups = offset.shape[1] // (2 * k_)
    out = torch.zeros(b_, o_, h_out, w_out, dtype=x.dtype)
    for b in range(b_):
        for yo in range(h_out):
            for xo in range(w_out):
                acc = bias.clone()
                for i in range(kh):
                    for j in range(kw):
                        k = i * kw + j
                        for g in range(groups):
                            dy = offset[b, g * 2 * k_ + 2 * k, yo, xo].item()
                            dx = offset[b, g * 2 * k_ + 2 * k + 1, yo, xo].item()
                            m = 1.0 if mask is None else mask[b, g * k_ + k, yo, xo].item()
                            cs = slice(g * c_ // groups, (g + 1) * c_ // groups)
                            v = _bilinear(x[b, cs], yo * s_h - p_h + i * d_h + dy, xo * s_w - p_w + j * d_w + dx)
                            acc = acc + m * weight[:, cs, i, j] @ v
                out[b, :, yo, xo] = acc
    return out


def _inputs(case, seed=0):
    b, c, h, w, o, kh, kw, stride, padding, dilation, groups, use_mask = case
    (s_h, s_w), (p_h, p_w), (d_h, d_w) = _pair(stride), _pair(padding), _pair(dilation)
    h_out = (h + 2 * p_h - d_h * (kh - 1) - 1) // s_h + 1
    w_out = (w + 2 * p_w - d_w * (kw - 1) - 1) // s_w + 1
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, w, generator=g, dtype=torch.float64)
    offset = 2.5 * torch.randn(b, 2 * groups * kh * kw, h_out, w_out, generator=g, dtype=torch.float64)
    offset[0, 0, 0, 0], offset[0, 1, 0, 0] = 1.0, -2.0      # integer offsets: samples exactly on pixels
    weight = torch.randn(o, c, kh, kw, generator=g, dtype=torch.float64)
    bias = torch.randn(o, generator=g, dtype=torch.float64)
    mask = torch.rand(b, groups * kh * kw, h_out, w_out, generator=g, dtype=torch.float64) if use_mask else None
    return x, offset, weight, bias, dict(stride=stride, padding=padding, dilation=dilation, mask=mask)


@pytest.mark.parametrize("case", CASES)
def test_deform_conv_matches_the_formula_pixel_by_pixel(case):
    x, offset, weight, bias, kw = _inputs(case)
    got = deform_conv2d(x, offset, weight, bias, **kw)
    want = _brute_force(x, offset, weight, bias, kw["stride"], kw["padding"], kw["dilation"], kw["mask"])
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_zero_offsets_are_an_ordinary_convolution_and_gradients_flow():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 6, 9, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    got = deform_conv2d(x, torch.zeros(2, 18, 6, 9, dtype=torch.float64), weight, padding=1)
    torch.testing.assert_close(got, torch.nn.functional.conv2d(x, weight, padding=1), rtol=1e-12, atol=1e-12)
    offset = (0.3 * torch.randn(1, 18, 4, 5, generator=g, dtype=torch.float64)).requires_grad_()
    small = x[:1, :, :4, :5].detach().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, o: deform_conv2d(a, o, weight, padding=1), (small, offset))


def test_deform_conv_rejects_shapes_that_do_not_fit():
    x = torch.zeros(1, 4, 5, 5)
    with pytest.raises(ValueError, match="offset"):
        deform_conv2d(x, torch.zeros(1, 18, 4, 4), torch.zeros(2, 4, 3, 3), padding=1)
    with pytest.raises(ValueError, match="offset groups"):
        deform_conv2d(x, torch.zeros(1, 54, 5, 5), torch.zeros(2, 4, 3, 3), padding=1)
    with pytest.raises(ValueError, match="input channels"):
        deform_conv2d(x, torch.zeros(1, 18, 5, 5), torch.zeros(2, 3, 3, 3), padding=1)


@pytest.mark.parametrize("case", CASES)
def test_deform_conv_matches_torchvision(case):
    ops = pytest.importorskip("torchvision.ops", reason="torchvision is not installed (not a project dependency)")
    x, offset, weight, bias, kw = _inputs(case, seed=3)
    torch.testing.assert_close(deform_conv2d(x, offset, weight, bias, **kw),
                               ops.deform_conv2d(x, offset, weight, bias, **kw), rtol=1e-10, atol=1e-10)
