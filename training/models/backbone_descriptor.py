"""Dense descriptors on a real-image pretrained backbone (:mod:`.pretrained`).

``BackboneDescriptorNet(backbone, descriptor_dim, head, decoder_channels)``::

    c   = normalize(backbone(image))         (B, C, H/s, W/s)   the library's descriptors, unit length
                                                                (s = 8 for XFeat, 1 for DISK and ALIKED)
    p   = proj(c)                            1x1 conv C -> D    ("refine"; identity for "interp", D = C)
    up  = bilinear(p, (H, W))                align_corners=False: cell j covers pixels s*j .. s*j + s - 1
    "interp": out = up                                              zero-shot, nothing learned
    "refine": out = bilinear(bilinear(p, (H/2, W/2)) + R(pyramid), (H, W))
              R: U-Net decoder over the backbone's five levels (strides 2..32) up to stride 2, then a
              1x1 conv to D that starts at 0

so a fine-tuned network starts exactly at the (projected) pretrained descriptors and learns a
correction at half resolution. Bilinear upsampling is linear, so the sum is formed at stride 2 and
only D channels are interpolated to full resolution: the full-resolution work is one resize. A
backbone whose descriptors are already at full resolution (stride 1) keeps them:
``out = p + bilinear(R(pyramid), (H, W))``. ``proj`` starts as the principal directions of the
backbone's descriptors on training images (:meth:`init_projection`), which keeps most of the
pretrained distances in ``D < C`` dimensions. In training mode the last correction ``R`` is kept as
``last_residual`` for :func:`residual_penalty`, a pull that holds the network near the pretrained
descriptors (it slows what fine-tuning on simulated scenes costs on real images; it does not stop
it: docs/training.md).

``working_width`` (0 = off): an input narrower than it is first upsampled by the integer factor
``f = max(1, round(working_width / W))`` and the descriptors are averaged back over each f x f block
(``avg_pool(f)``: output pixel i is the mean of the f x f pixels that upsampled it, so the pixel
centres stay put). A stride-8 backbone thus sees small images (128x96 renders) at the size it was
trained on and at the size the node feeds it (camera images resized to 640x480); at that size
``f = 1`` and the network is unchanged.

    forward(image (B, 3, H, W) RGB in [0, 1], H, W multiples of 32) -> (B, D, H, W)

Descriptors are compared by L2 distance, as the tracker does; "interp" is the library's normalised
descriptor interpolated (nearly unit length), "refine" is not normalised (Dense Object Nets).

Configuration keys (model files, sidecars): ``backbone``, ``head``, ``descriptor_dim``,
``decoder_channels``, ``height``, ``width``, ``working_width`` (absent = 0); ``encoder`` is set to
the backbone's name.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .depth_decoder import ConvBlock, check_input_size
from .pretrained import BackboneError, build_backbone

__all__ = ["BackboneDescriptorNet", "StrideDescriptors", "HEADS", "check_backbone_dim", "grid_stride",
           "residual_penalty", "upsample_factor"]

HEADS = ("interp", "refine")


def check_backbone_dim(backbone: str, feature_dim: int, head: str, descriptor_dim: int) -> None:
    """Raise :class:`BackboneError` when ``head`` cannot give ``descriptor_dim`` from this backbone."""
    if head not in HEADS:
        raise BackboneError(f"head: unknown {head!r}; choose one of {list(HEADS)}")
    if head == "interp" and descriptor_dim != feature_dim:
        raise BackboneError(f"backbone {backbone!r} gives {feature_dim}-dim descriptors without training; "
                            f"--descriptor-dim {descriptor_dim} needs a trained head (--head refine)")
    if descriptor_dim < 1 or descriptor_dim > feature_dim:
        raise BackboneError(f"backbone {backbone!r}: --descriptor-dim must be 1..{feature_dim}, got {descriptor_dim}")


def upsample_factor(working_width: int, width: int) -> int:
    """``max(1, round(working_width / width))``, 1 when ``working_width`` is 0 (see module docstring)."""
    return max(1, int(round(working_width / width))) if working_width > 0 else 1


def residual_penalty(residual: torch.Tensor) -> torch.Tensor:
    """``mean over pixels of |R(p)|^2`` for the correction ``R`` ``(B, D, h, w)``: the squared distance
    by which the output moved away from the pretrained descriptors (an L2-SP-like pull towards them
    in output space)."""
    return residual.pow(2).sum(dim=1).mean()


class BackboneDescriptorNet(nn.Module):
    """See module docstring."""

    def __init__(self, backbone: str = "xfeat", descriptor_dim: int = 64, head: str = "interp",
                 decoder_channels: Sequence[int] = (16, 32, 32, 64), pretrained: bool = True,
                 working_width: int = 0):
        super().__init__()
        if int(working_width) < 0:
            raise BackboneError(f"working_width must be >= 0, got {working_width}")
        self.working_width = int(working_width)
        self.backbone = build_backbone(backbone, pretrained=pretrained)
        check_backbone_dim(backbone, self.backbone.feature_dim, head, int(descriptor_dim))
        self.head_kind, self.descriptor_dim = head, int(descriptor_dim)
        self.last_residual = None
        if head == "refine":
            enc, dec = tuple(self.backbone.num_ch_enc), tuple(int(c) for c in decoder_channels)
            if len(dec) != 4:
                raise ValueError(f"decoder_channels: expected 4 widths (strides 2, 4, 8, 16), got {dec}")
            self.proj = nn.Conv2d(self.backbone.feature_dim, self.descriptor_dim, 1, bias=False)
            with torch.no_grad():
                self.proj.weight.copy_(torch.eye(self.backbone.feature_dim)[:self.descriptor_dim, :, None, None])
            self.upconv0 = nn.ModuleList()
            self.upconv1 = nn.ModuleList()
            for i in range(4):  # stage i: from stride 2^(i+2) up to 2^(i+1), skip = pyramid level i
                self.upconv0.append(ConvBlock(enc[-1] if i == 3 else dec[i + 1], dec[i]))
                self.upconv1.append(ConvBlock(dec[i] + enc[i], dec[i]))
            self.residual = nn.Conv2d(dec[0], self.descriptor_dim, 1)
            nn.init.zeros_(self.residual.weight)
            nn.init.zeros_(self.residual.bias)

    def _upsampled(self, image: torch.Tensor) -> tuple[torch.Tensor, int]:
        f = upsample_factor(self.working_width, image.shape[-1])
        if f == 1:
            return image, 1
        return F.interpolate(image, scale_factor=float(f), mode="bilinear", align_corners=False), f

    def coarse(self, image: torch.Tensor) -> torch.Tensor:
        """The projected, unit pretrained descriptors at the backbone's stride ``(B, D, H/s, W/s)``
        (of the upsampled image when ``working_width`` asks for it)."""
        c = F.normalize(self.backbone(self._upsampled(image)[0]), dim=1)
        return self.proj(c) if self.head_kind == "refine" else c

    @torch.no_grad()
    def init_projection(self, images: torch.Tensor) -> None:
        """Set ``proj`` to the top-``D`` principal directions of the unit backbone descriptors of
        ``images`` ``(B, 3, H, W)`` (uncentred: distances between descriptors are what matters)."""
        if self.head_kind != "refine":
            return
        was = self.training
        self.eval()
        c = F.normalize(self.backbone(self._upsampled(images)[0]), dim=1)
        x = c.permute(1, 0, 2, 3).reshape(c.shape[1], -1).double()   # (C, N)
        u, _, _ = torch.linalg.svd(x, full_matrices=False)             # columns: principal directions
        self.proj.weight.copy_(u[:, :self.descriptor_dim].T.float()[:, :, None, None])
        self.train(was)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        check_input_size(image, self.backbone.input_multiple)
        big, f = self._upsampled(image)
        out = self._dense(big)
        return out if f == 1 else F.avg_pool2d(out, f)

    def _dense(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        if self.head_kind == "interp":
            c = F.normalize(self.backbone(image), dim=1)
            return F.interpolate(c, size=(h, w), mode="bilinear", align_corners=False)
        coarse, feats = self.backbone.descriptors_and_pyramid(image)
        c = self.proj(F.normalize(coarse, dim=1))
        x = feats[-1]
        for i in range(3, -1, -1):
            x = F.interpolate(self.upconv0[i](x), size=feats[i].shape[-2:], mode="nearest")
            x = self.upconv1[i](torch.cat([x, feats[i]], dim=1))
        r = self.residual(x)
        self.last_residual = r if self.training else None
        if c.shape[-2:] == (h, w):  # full-resolution descriptors (DISK, ALIKED): keep their resolution
            return c + F.interpolate(r, size=(h, w), mode="bilinear", align_corners=False)
        half = F.interpolate(c, size=feats[0].shape[-2:], mode="bilinear", align_corners=False) + r
        return F.interpolate(half, size=(h, w), mode="bilinear", align_corners=False)


def grid_stride(net: nn.Module, height: int, width: int) -> int:
    """``s > 1`` when ``net``'s output at ``height x width`` is its unit stride-``s`` map interpolated
    (a :class:`BackboneDescriptorNet` with the "interp" head that does not upsample at this width),
    else 0 (a learned head, a full-resolution backbone, any other network)."""
    if not isinstance(net, BackboneDescriptorNet) or net.head_kind != "interp":
        return 0
    if upsample_factor(net.working_width, width) != 1:
        return 0
    with torch.no_grad():
        was = net.training
        net.eval()
        gh, gw = net.coarse(torch.zeros(1, 3, height, width)).shape[-2:]
        net.train(was)
    s = height // gh
    return s if s > 1 and gh * s == height and gw * s == width else 0


class StrideDescriptors(nn.Module):
    """Export wrapper of a network for which :func:`grid_stride` is ``s > 1``: its stride-``s`` map
    alone::

        grid = normalize(backbone(image))            (B, D, H/s, W/s)

    ``net(image)`` is ``bilinear(grid, (H, W))`` (``align_corners=False``); the exported model leaves
    that to its user (sidecar ``output.stride``): the tracker interpolates only the pixels it
    searches, and the graph skips the full-resolution map (half of XFeat's time on the CPU at
    640x480).
    """

    def __init__(self, net: BackboneDescriptorNet):
        super().__init__()
        if net.head_kind != "interp":
            raise ValueError(f"StrideDescriptors: needs the 'interp' head, got {net.head_kind!r}")
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        check_input_size(image, self.net.backbone.input_multiple)
        return F.normalize(self.net.backbone(image), dim=1)
