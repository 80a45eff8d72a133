"""Image encoders for the depth and pose networks (defined here: no torchvision, no pretrained weights).

Every encoder maps an image stack ``(B, C_in, H, W)`` in ``[0, 1]`` (``H, W`` multiples of 32) to five
feature maps at strides 2, 4, 8, 16 and 32, and exposes their channel counts as ``num_ch_enc``:

    features[i]: (B, num_ch_enc[i], H / 2^(i+1), W / 2^(i+1)),   i = 0..4

The input is standardised inside the encoder as ``(x - 0.45) / 0.225`` (Monodepth2's constants), so
callers feed raw ``[0, 1]`` images (pose networks: two frames stacked to 6 channels).

Encoders (registry :data:`ENCODERS`, :func:`build_encoder`):
    ``"resnet18"``  ResNet-18 (BasicBlock, [2, 2, 2, 2]), channels 64/64/128/256/512, ~11.2 M params
    ``"resnet34"``  ResNet-34 (BasicBlock, [3, 4, 6, 3]), same channels, ~21.3 M params
    ``"mobile"``    MobileNetV2-style inverted residuals with depthwise 3x3 convs and linear
                    bottlenecks, channels 16/24/32/96/320, ~1.8 M params

Initialisation for training from scratch: Kaiming-normal (fan_out per group, ReLU) convolutions, BatchNorm
``gamma = 1, beta = 0``, except the last BatchNorm of every residual branch, whose ``gamma = 0`` so
each residual block starts as the identity (Goyal et al. 2017).

Public API:
    build_encoder(name, in_channels=3) -> nn.Module with .num_ch_enc and forward(x) -> list of 5
    available_encoders() -> list[str]
    ResNetEncoder(layers, in_channels=3), MobileEncoder(in_channels=3, width_mult=1.0)
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

__all__ = [
    "BasicBlock",
    "InvertedResidual",
    "ResNetEncoder",
    "MobileEncoder",
    "ENCODERS",
    "build_encoder",
    "available_encoders",
    "PretrainedEncoder",
    "encoder_param_groups",
]

INPUT_MEAN = 0.45
INPUT_STD = 0.225


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            # fan_out per group (out_channels / groups * k * k), as timm does. PyTorch's own fan_out
            # ignores groups: depthwise outputs then have variance ~1e-3, the BatchNorm running
            # variances (which start at 1 and move 10 % a step) stay far from it for ~100 steps, and
            # the network's eval-mode output (validation) saturates until they catch up
            fan_out = m.out_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in module.modules():  # after the generic pass: residual branches start as identity
        if isinstance(m, BasicBlock):
            nn.init.zeros_(m.bn2.weight)
        elif isinstance(m, InvertedResidual) and m.use_residual:
            nn.init.zeros_(m.block[-1].weight)


class BasicBlock(nn.Module):
    """ResNet basic block: ``relu(bn(conv3x3(relu(bn(conv3x3(x))))) + shortcut(x))``."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetEncoder(nn.Module):
    """ResNet with BasicBlocks; features after conv1 (stride 2) and after each of the 4 stages."""

    def __init__(self, layers: Sequence[int] = (2, 2, 2, 2), in_channels: int = 3):
        super().__init__()
        self.num_ch_enc = (64, 64, 128, 256, 512)
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, in_ch = [], 64
        for i, (n, out_ch) in enumerate(zip(layers, self.num_ch_enc[1:])):
            blocks = [BasicBlock(in_ch, out_ch, 1 if i == 0 else 2)]
            blocks += [BasicBlock(out_ch, out_ch) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            in_ch = out_ch
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - INPUT_MEAN) / INPUT_STD
        f0 = self.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(self.maxpool(f0))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        f4 = self.layer4(f3)
        return [f0, f1, f2, f3, f4]


def _conv_bn_relu6(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (ReLU6) -> 3x3 depthwise (ReLU6) -> 1x1 linear projection (+ x)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int):
        super().__init__()
        hidden = in_ch * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn_relu6(in_ch, hidden, 1))
        layers += [
            _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


# (expansion t, channels c, repeats n, first stride s) of MobileNetV2; features are taken after the
# stages marked in _MOBILE_TAPS (strides 2, 4, 8, 16, 32).
_MOBILE_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                    (6, 160, 3, 2), (6, 320, 1, 1))
_MOBILE_TAPS = (0, 1, 2, 4, 6)


def _round_channels(c: float, divisor: int = 8) -> int:
    return max(divisor, int(c + divisor / 2) // divisor * divisor)


class MobileEncoder(nn.Module):
    """MobileNetV2-style encoder (no final 1280-channel conv); ``width_mult`` scales every stage."""

    def __init__(self, in_channels: int = 3, width_mult: float = 1.0):
        super().__init__()
        stem_ch = _round_channels(32 * width_mult)
        self.stem = _conv_bn_relu6(in_channels, stem_ch, 3, 2)
        stages, in_ch, channels = [], stem_ch, []
        for t, c, n, s in _MOBILE_SETTINGS:
            out_ch = _round_channels(c * width_mult)
            blocks = [InvertedResidual(in_ch if i == 0 else out_ch, out_ch, s if i == 0 else 1, t) for i in range(n)]
            stages.append(nn.Sequential(*blocks))
            channels.append(out_ch)
            in_ch = out_ch
        self.stages = nn.ModuleList(stages)
        self.num_ch_enc = tuple(channels[i] for i in _MOBILE_TAPS)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem((x - INPUT_MEAN) / INPUT_STD)
        features = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in _MOBILE_TAPS:
                features.append(x)
        return features


ENCODERS: dict[str, Callable[[int], nn.Module]] = {
    "resnet18": lambda in_channels: ResNetEncoder((2, 2, 2, 2), in_channels),
    "resnet34": lambda in_channels: ResNetEncoder((3, 4, 6, 3), in_channels),
    "mobile": lambda in_channels: MobileEncoder(in_channels),
}


class PretrainedEncoder(nn.Module):
    """A real-image pretrained backbone (:mod:`.pretrained`) as an encoder: ``forward(x) ->
    backbone.pyramid(x)`` (five maps at strides 2..32, channels ``num_ch_enc``). The backbone does
    its own input conversion (XFeat: grey + instance norm), so it takes the same ``[0, 1]`` RGB."""

    pretrained = True

    def __init__(self, name: str):
        super().__init__()
        from .pretrained import build_backbone

        self.backbone = build_backbone(name)
        self.num_ch_enc = list(self.backbone.num_ch_enc)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.backbone.pyramid(x)


def available_encoders() -> list[str]:
    """Names accepted by :func:`build_encoder`: the from-scratch ones and the pretrained backbones."""
    from .pretrained import available_backbones

    return sorted(ENCODERS) + available_backbones()


def encoder_param_groups(model: nn.Module, lr: float, *, scale: float = 0.1, freeze: bool = False) -> list[dict]:
    """Optimiser parameter groups: every :class:`PretrainedEncoder` inside ``model`` learns at
    ``scale * lr`` (or not at all with ``freeze`` or ``scale == 0``), everything else at ``lr``."""
    pretrained = [m for m in model.modules() if isinstance(m, PretrainedEncoder)]
    slow = {id(p) for m in pretrained for p in m.parameters()}
    if freeze or scale == 0:
        for m in pretrained:
            for p in m.parameters():
                p.requires_grad_(False)
    groups = [{"params": [p for p in model.parameters() if id(p) not in slow]}]
    trainable = [p for m in pretrained for p in m.parameters() if p.requires_grad]
    if trainable:
        groups.append({"params": trainable, "lr": lr * scale})
    return groups


def build_encoder(name: str, in_channels: int = 3) -> nn.Module:
    """A freshly initialised encoder by name (see :data:`ENCODERS`).

    Args:
        name: ``"resnet18"``, ``"resnet34"`` or ``"mobile"``.
        in_channels: 3 for a depth network, 6 for a pose network on two stacked frames.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    try:
        factory = ENCODERS[name]
    except KeyError:
        if name in available_encoders():
            if in_channels != 3:
                raise ValueError(f"encoder {name!r} is pretrained on single RGB images; a network on "
                                 f"{in_channels} channels (the pose network) needs mobile or resnet18/34") from None
            return PretrainedEncoder(name)
        raise ValueError(f"encoder: unknown {name!r}; choose one of {available_encoders()}") from None
    return factory(in_channels)
