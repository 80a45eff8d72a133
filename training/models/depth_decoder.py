"""Monodepth2 depth decoder and the depth network built on it.

Decoder (Godard et al. 2019): starting from the stride-32 features, five stages ``i = 4 .. 0`` each
apply ``ConvBlock`` (reflection-padded 3x3 conv + ELU), nearest 2x upsampling, concatenation with the
encoder skip feature ``features[i - 1]`` (none at ``i = 0``) and a second ``ConvBlock``; after stages
``i in scales`` a reflection-padded 3x3 conv + sigmoid gives the disparity at scale ``i``.

Output format of :class:`DepthNet` (and :class:`DepthDecoder`): a list ``disps`` of ``num_scales``
tensors, ``disps[s]`` of shape ``(B, 1, H / 2^s, W / 2^s)`` with values in ``(0, 1)``; ``disps[0]`` is
full resolution. ``depth_training.geometry_torch.disp_to_depth`` maps them to depth in
``[min_depth, max_depth]`` (0.1 .. 100 m by default) for self-supervised training; a supervised
MiDaS-style model uses ``disps[0]`` directly as relative inverse depth.

:class:`DepthInference` is the single-output module that is exported to ONNX: image
``(B, 3, H, W)`` in ``[0, 1]`` -> ``(B, 1, H, W)`` disparity (or depth, see its docstring).

Public API:
    ConvBlock(in_ch, out_ch), DepthDecoder(num_ch_enc, num_scales=4, num_ch_dec=(16, 32, 64, 128, 256))
    DepthNet(encoder="resnet18", num_scales=4, decoder_channels=(16, 32, 64, 128, 256)):
        forward(image) -> list[Tensor]
    DepthInference(net, output="disparity"|"depth", min_depth=0.1, max_depth=100.0): forward(image) -> B1HW
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..geometry_torch import disp_to_depth
from .encoders import build_encoder

__all__ = ["ConvBlock", "DepthDecoder", "DepthNet", "DepthInference", "check_input_size"]


def check_input_size(image: torch.Tensor, multiple: int = 32) -> None:
    """Raise ``ValueError`` unless ``image`` is ``(B, C, H, W)`` with ``H, W`` multiples of ``multiple``."""
    if image.dim() != 4:
        raise ValueError(f"image: expected (B, C, H, W), got {tuple(image.shape)}")
    h, w = int(image.shape[-2]), int(image.shape[-1])
    if h % multiple or w % multiple:
        raise ValueError(f"image: height and width must be multiples of {multiple}, got {h}x{w}")


def _conv3x3(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(in_ch, out_ch, 3))


class ConvBlock(nn.Module):
    """Reflection-padded 3x3 convolution followed by ELU."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = _conv3x3(in_ch, out_ch)
        self.act = nn.ELU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class DepthDecoder(nn.Module):
    """U-Net style decoder with sigmoid disparity heads at scales ``0 .. num_scales-1``.

    Args:
        num_ch_enc: channels of the five encoder features (strides 2 .. 32).
        num_scales: number of output scales (4 in Monodepth2, at most 5).
        num_ch_dec: decoder channels of stages 0 .. 4.
    """

    def __init__(self, num_ch_enc: Sequence[int], num_scales: int = 4,
                 num_ch_dec: Sequence[int] = (16, 32, 64, 128, 256)):
        super().__init__()
        if not 1 <= num_scales <= 5:
            raise ValueError(f"num_scales: expected 1..5, got {num_scales}")
        self.num_scales = num_scales
        self.num_ch_enc = tuple(num_ch_enc)
        self.num_ch_dec = tuple(num_ch_dec)
        self.upconv0 = nn.ModuleList()  # index i = stage i
        self.upconv1 = nn.ModuleList()
        for i in range(5):
            in_ch = self.num_ch_enc[-1] if i == 4 else self.num_ch_dec[i + 1]
            self.upconv0.append(ConvBlock(in_ch, self.num_ch_dec[i]))
            skip = self.num_ch_enc[i - 1] if i > 0 else 0
            self.upconv1.append(ConvBlock(self.num_ch_dec[i] + skip, self.num_ch_dec[i]))
        self.dispconv = nn.ModuleList(_conv3x3(self.num_ch_dec[s], 1) for s in range(num_scales))

    def forward(self, features: Sequence[torch.Tensor], all_scales: bool = True) -> list[torch.Tensor]:
        """Decode the encoder's 5 feature maps.

        Returns:
            ``num_scales`` disparities, scale 0 first (only ``[disp_0]`` when ``all_scales`` is False:
            the coarser heads are skipped, as at inference time).
        """
        heads = range(self.num_scales) if all_scales else range(1)
        disps: list[torch.Tensor] = []
        x = features[-1]
        for i in range(4, -1, -1):
            x = self.upconv0[i](x)
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            if i > 0:
                x = torch.cat([x, features[i - 1]], dim=1)
            x = self.upconv1[i](x)
            if i in heads:
                disps.append(torch.sigmoid(self.dispconv[i](x)))
        return disps[::-1]


class DepthNet(nn.Module):
    """Encoder + :class:`DepthDecoder`.

    ``forward(image)``: ``(B, 3, H, W)`` in ``[0, 1]`` with ``H, W`` multiples of 32 -> list of
    ``num_scales`` disparities ``(B, 1, H/2^s, W/2^s)`` in ``(0, 1)``, scale 0 (full resolution) first.
    """

    def __init__(self, encoder: str = "resnet18", num_scales: int = 4,
                 decoder_channels: Sequence[int] = (16, 32, 64, 128, 256)):
        super().__init__()
        self.encoder_name = encoder
        self.encoder = build_encoder(encoder, in_channels=3)
        self.decoder = DepthDecoder(self.encoder.num_ch_enc, num_scales, decoder_channels)

    @property
    def num_scales(self) -> int:
        return self.decoder.num_scales

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        check_input_size(image)
        return self.decoder(self.encoder(image))


class DepthInference(nn.Module):
    """Single-output wrapper for deployment/ONNX export.

    ``forward(image)``: ``(B, 3, H, W)`` in ``[0, 1]`` -> ``(B, 1, H, W)``:

    * ``output="disparity"``: the scale-0 sigmoid disparity in ``(0, 1)`` (relative inverse depth);
    * ``output="depth"``: ``disp_to_depth(disp, min_depth, max_depth)[1]`` (Monodepth2 depth units;
      metric only after scale recovery, or when trained with stereo/metric supervision).

    Only the scale-0 head runs (the coarser heads are skipped).
    """

    def __init__(self, net: DepthNet, output: str = "disparity", min_depth: float = 0.1,
                 max_depth: float = 100.0):
        super().__init__()
        if output not in ("disparity", "depth"):
            raise ValueError(f"output: expected 'disparity' or 'depth', got {output!r}")
        self.net = net
        self.output = output
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        check_input_size(image)
        disp = self.net.decoder(self.net.encoder(image), all_scales=False)[0]
        if self.output == "depth":
            return disp_to_depth(disp, self.min_depth, self.max_depth)[1]
        return disp
