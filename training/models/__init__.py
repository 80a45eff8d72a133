"""Network definitions (training owns them; the runtime loads exported artifacts only).

Modules:
    encoders       ResNet-18/34-class and MobileNetV2-class encoders, ``build_encoder(name, in_channels)``
    depth_decoder  Monodepth2 decoder, ``DepthNet`` (list of 4 sigmoid disparities, scale 0 = full
                   resolution), ``DepthInference`` (image -> B1HW, the module exported to ONNX)
    pose_net       Monodepth2 pose network (two stacked frames -> axis-angle + translation)
"""
from .depth_decoder import ConvBlock, DepthDecoder, DepthInference, DepthNet, check_input_size
from .encoders import ENCODERS, MobileEncoder, ResNetEncoder, available_encoders, build_encoder
from .pose_net import PoseDecoder, PoseNet

__all__ = [
    "ENCODERS", "ResNetEncoder", "MobileEncoder", "build_encoder", "available_encoders",
    "ConvBlock", "DepthDecoder", "DepthNet", "DepthInference", "check_input_size",
    "PoseDecoder", "PoseNet",
    "build_depth_net", "build_pose_net",
]


def build_depth_net(encoder: str = "resnet18", num_scales: int = 4,
                    decoder_channels: tuple[int, ...] = (16, 32, 64, 128, 256)) -> DepthNet:
    """A freshly initialised :class:`DepthNet` (``encoder``: ``"resnet18"``, ``"resnet34"``, ``"mobile"``).

    ``decoder_channels`` are the decoder widths of stages 0..4 (Monodepth2's by default; halve them
    for a lighter network on small robots).
    """
    return DepthNet(encoder, num_scales, decoder_channels)


def build_pose_net(encoder: str = "resnet18") -> PoseNet:
    """A freshly initialised :class:`PoseNet` with a 6-channel encoder."""
    return PoseNet(encoder)
