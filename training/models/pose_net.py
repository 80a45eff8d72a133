"""Monodepth2-style pose network: two stacked frames -> 6-DoF relative pose.

A ResNet-class (or mobile) encoder with 6 input channels takes ``cat([I_a, I_b], dim=1)``; the
decoder squeezes the stride-32 features (1x1 conv, 256 ch, ReLU), applies two 3x3 convs (256 ch,
ReLU) and a 1x1 conv to 6 channels, averages over space and scales by 0.01 (small initial motions):

    [r | t] = 0.01 * mean_{u,v} conv(features),   r: axis-angle (rad), t: translation

Convention (as Monodepth2): the frames are always fed in temporal order ``(earlier, later)`` and the
output is ``T_{earlier->later}``, the pose that maps points in the earlier camera's frame into the
later camera's frame: ``X_later = R(r) X_earlier + t``. :meth:`PoseNet.transform` returns
``T_{target->source}`` for the warp (:func:`depth_training.geometry_torch.warp`), inverting when the
source precedes the target.

Public API:
    PoseDecoder(in_ch): forward(feature_32) -> (axis_angle B3, translation B3)
    PoseNet(encoder="resnet18"): forward(frame_a, frame_b) -> (axis_angle B3, translation B3)
                                 transform(target, source, source_is_later) -> B44 T_{target->source}
"""
from __future__ import annotations

import torch
from torch import nn

from ..geometry_torch import pose_vec_to_matrix
from .depth_decoder import check_input_size
from .encoders import build_encoder

__all__ = ["PoseDecoder", "PoseNet", "POSE_SCALE"]

POSE_SCALE = 0.01


class PoseDecoder(nn.Module):
    """Stride-32 features ``(B, C, h, w)`` -> ``(axis_angle (B, 3), translation (B, 3))``."""

    def __init__(self, in_ch: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, 256, 1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 6, 1),
        )

    def forward(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = POSE_SCALE * self.net(feature).mean(dim=(2, 3))
        return out[:, :3], out[:, 3:]


class PoseNet(nn.Module):
    """Separate pose encoder (6 input channels) + :class:`PoseDecoder`."""

    def __init__(self, encoder: str = "resnet18"):
        super().__init__()
        self.encoder_name = encoder
        self.encoder = build_encoder(encoder, in_channels=6)
        self.decoder = PoseDecoder(self.encoder.num_ch_enc[-1])

    def forward(self, frame_a: torch.Tensor, frame_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``frame_a`` (earlier), ``frame_b`` (later): ``(B, 3, H, W)`` in ``[0, 1]``.

        Returns:
            ``axis_angle`` ``(B, 3)`` and ``translation`` ``(B, 3)`` of ``T_{a->b}``.
        """
        pair = torch.cat([frame_a, frame_b], dim=1)
        check_input_size(pair)
        return self.decoder(self.encoder(pair)[-1])

    def transform(self, target: torch.Tensor, source: torch.Tensor, source_is_later: bool) -> torch.Tensor:
        """``T_{target->source}`` ``(B, 4, 4)`` for warping ``source`` into the ``target`` view.

        The network always sees ``(earlier, later)``; for a source before the target its output
        ``T_{source->target}`` is inverted.
        """
        if source_is_later:
            axis_angle, translation = self(target, source)
            return pose_vec_to_matrix(axis_angle, translation)
        axis_angle, translation = self(source, target)
        return pose_vec_to_matrix(axis_angle, translation, invert=True)
