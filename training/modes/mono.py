"""``depth-train mono``: self-supervised depth from image sequences (Monodepth2, Godard et al. 2019).

Each sample is a snippet of three frames ``(t-k, t, t+k)`` (``k = --frame-stride``, 1 by default)
of one colour camera. The depth network sees frame ``t``; every neighbour ``s`` is warped into
the view of ``t`` with the predicted depth and the relative pose ``T_{t->s}``, and the loss is
:func:`depth_training.losses.multiscale_reprojection_loss`: per-pixel minimum of the SSIM+L1
reprojection errors over the neighbours, identity auto-masking, all four decoder scales upsampled
to the input resolution, plus edge-aware smoothness weighted ``1e-3 / 2^s``. The networks see
colour-jittered frames; the loss compares the originals. Flipping mirrors the intrinsics and the
poses consistently (:mod:`depth_training.data.augment`).

Where the poses come from (``--pose-source``):

* ``net`` (default): a pose network on the pairs ``(t-k, t)`` and ``(t, t+k)`` (always in
  temporal order; :meth:`~depth_training.models.PoseNet.transform`), trained jointly. Depth is
  known up to one unknown scale: the model's output kind is ``"relative_depth"`` (evaluate with
  median scaling).
* ``tf`` / ``fk``: the recorded camera motion, ``T_{t->s} = T_fixed_s^{-1} T_fixed_t`` with the
  camera optical frame's poses from the bag's TF tree, or from joint states + URDF forward
  kinematics (``--urdf`` or the bag's robot description). No pose network is trained and the
  translation is in metres, so depth is metric: output ``"metric_depth"``.

Public API:
    MonoNets(encoder, decoder_channels, num_scales): depth + pose networks as one module
    relative_transforms(poses (B, F, 4, 4), centre) -> F-1 transforms (B, 4, 4) T_{centre->f}
    invert_rigid(T (..., 4, 4)) -> (..., 4, 4)
    mono_step(model, batch, ...) / known_pose_step(model, batch, ...) -> (loss, logs)
    mono_setup(args) -> ModeSetup
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from depth_training.bags import StreamSpec
from depth_training.data.augment import Augment
from depth_training.losses import SelfSupervisedLoss, multiscale_reprojection_loss
from depth_training.models import build_depth_net, build_pose_net

from .cli import topics_for
from .recordings import plan_recording
from .setup import DepthOnly, ModeSetup, depth_preview
from .tensors import images_to_float, network_input, prediction_for_metrics

__all__ = ["MonoNets", "invert_rigid", "relative_transforms", "mono_step", "known_pose_step", "mono_setup"]


class MonoNets(nn.Module):
    """Depth and pose networks trained together (one module for the optimizer and DDP).

    ``forward(snippet)``: ``(B, 3, 3, H, W)`` frames (t-1, t, t+1) in [0, 1] -> (disparities of
    frame t, scale 0 first, [T_{t->t-1}, T_{t->t+1}] each ``(B, 4, 4)``).
    """

    def __init__(self, encoder: str = "resnet18", decoder_channels: Sequence[int] = (16, 32, 64, 128, 256),
                 num_scales: int = 4):
        super().__init__()
        self.depth = build_depth_net(encoder, num_scales, tuple(decoder_channels))
        self.pose = build_pose_net(encoder)

    def forward(self, snippet: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        prev, target, nxt = snippet.unbind(1)
        transforms = [self.pose.transform(target, prev, False), self.pose.transform(target, nxt, True)]
        return self.depth(target), transforms


def invert_rigid(T: torch.Tensor) -> torch.Tensor:
    """Exact inverse of rigid transforms: ``[[R, t], [0, 1]]^-1 = [[R^T, -R^T t], [0, 1]]``.

    Args:
        T: ``(..., 4, 4)``.
    """
    R_t = T[..., :3, :3].transpose(-1, -2)
    out = torch.zeros_like(T)
    out[..., :3, :3] = R_t
    out[..., :3, 3:] = -R_t @ T[..., :3, 3:]
    out[..., 3, 3] = 1.0
    return out


def relative_transforms(poses: torch.Tensor, centre: int) -> list[torch.Tensor]:
    """Camera motion from the target frame to each other frame of a snippet.

    ``T_{c->f} = T_fixed_f^{-1} T_fixed_c`` maps points in camera ``c``'s optical frame into
    camera ``f``'s (the ``T_tgt_to_src`` of :func:`depth_training.geometry_torch.warp`).
    Computed in the poses' dtype (float64 from the cache: poses in a fixed frame far from the
    origin lose millimetres in float32); cast the result as needed.

    Args:
        poses: ``(B, F, 4, 4)`` ``T_fixed_camera`` per frame.
        centre: index of the target frame.

    Returns:
        ``F - 1`` tensors ``(B, 4, 4)``, frames in order, the centre left out.
    """
    target = poses[:, centre]
    return [invert_rigid(poses[:, f]) @ target for f in range(poses.shape[1]) if f != centre]


def _snippet(batch: Mapping[str, Any]) -> torch.Tensor:
    return images_to_float(batch["image"])  # (B, 3, 3, H, W)


def _net_pose_loss(model: nn.Module, batch: Mapping[str, Any], min_depth: float, max_depth: float,
                   smoothness: float, noise_std: float) -> tuple[SelfSupervisedLoss, list[torch.Tensor], list]:
    frames = _snippet(batch)
    disps, transforms = model(network_input(frames, batch))
    prev, target, nxt = frames.unbind(1)
    out = multiscale_reprojection_loss(disps, target, [prev, nxt], transforms, batch["K"].float(),
                                       min_depth=min_depth, max_depth=max_depth, smoothness=smoothness,
                                       noise_std=noise_std)
    return out, disps, transforms


def mono_step(model: nn.Module, batch: Mapping[str, Any], *, min_depth: float = 0.1, max_depth: float = 100.0,
              smoothness: float = 1e-3) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Monodepth2 step with the pose network (:class:`MonoNets`).

    batch: ``image`` ``(B, 3, H, W, 3)`` uint8 snippets (t-1, t, t+1), ``K`` ``(B, 3, 3)`` at
    ``H x W``, optional colour-jitter parameters ``color_matrix`` ``(B, 3, 3)`` /
    ``color_contrast`` ``(B,)`` (applied here, on the device, to the networks' input only).
    """
    out, _, transforms = _net_pose_loss(model, batch, min_depth, max_depth, smoothness, 1e-5)
    motion = torch.stack([T[:, :3, 3].norm(dim=-1) for T in transforms]).mean()
    return out.loss, {"reprojection_0": out.reprojection[0].detach(),
                      "automask": out.automask.float().mean().detach(), "pose_translation": motion.detach()}


def _known_pose_loss(model: nn.Module, batch: Mapping[str, Any], min_depth: float, max_depth: float,
                     smoothness: float, noise_std: float) -> tuple[SelfSupervisedLoss, list[torch.Tensor]]:
    frames = _snippet(batch)
    prev, target, nxt = frames.unbind(1)
    transforms = [T.to(target.dtype) for T in relative_transforms(batch["pose"], centre=1)]
    disps = model(network_input(target, batch))
    out = multiscale_reprojection_loss(disps, target, [prev, nxt], transforms, batch["K"].float(),
                                       min_depth=min_depth, max_depth=max_depth, smoothness=smoothness,
                                       noise_std=noise_std)
    return out, disps


def known_pose_step(model: nn.Module, batch: Mapping[str, Any], *, min_depth: float = 0.1,
                    max_depth: float = 100.0, smoothness: float = 1e-3) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Monodepth2 step with recorded camera poses (``--pose-source tf|fk``).

    batch: as :func:`mono_step` plus ``pose`` ``(B, 3, 4, 4)`` float64 ``T_fixed_camera`` of
    the three frames; ``model`` maps ``(B, 3, H, W)`` to disparities (:class:`DepthOnly`).
    """
    out, _ = _known_pose_loss(model, batch, min_depth, max_depth, smoothness, 1e-5)
    return out.loss, {"reprojection_0": out.reprojection[0].detach(),
                      "automask": out.automask.float().mean().detach()}


def mono_setup(args) -> ModeSetup:
    """The mono mode's pieces from its parsed arguments (see :mod:`.cli`)."""
    k = int(args.frame_stride)
    net_poses = args.pose_source == "net"
    lo, hi, smooth = float(args.min_depth), float(args.max_depth), float(args.smoothness)
    output = "relative_depth" if net_poses else "metric_depth"

    def plan(path):
        topics = topics_for(args, path)
        return plan_recording(path, [StreamSpec("image", topics.color, "color", topics.color_info)],
                              camera_role="image", optional_depth=(topics.depth, topics.color),
                              pose="net" if net_poses else args.pose_source, topics=topics, urdf=args.urdf,
                              fixed_frame=getattr(args, "fixed_frame", None))

    def build_model() -> nn.Module:
        if net_poses:
            return MonoNets(args.encoder, args.decoder_channels, 4)
        return DepthOnly(build_depth_net(args.encoder, 4, tuple(args.decoder_channels)))

    if net_poses:
        def step(model, batch):
            return mono_step(model, batch, min_depth=lo, max_depth=hi, smoothness=smooth)

        def evaluate(net, batch):
            out, disps, _ = _net_pose_loss(net, batch, lo, hi, smooth, 0.0)
            return out.loss, prediction_for_metrics(disps[0], output, lo, hi)
    else:
        def step(model, batch):
            return known_pose_step(model, batch, min_depth=lo, max_depth=hi, smoothness=smooth)

        def evaluate(net, batch):
            out, disps = _known_pose_loss(net, batch, lo, hi, smooth, 0.0)
            return out.loss, prediction_for_metrics(disps[0], output, lo, hi)

    def preview(net, batch):
        return depth_preview(net, _snippet(batch)[:, 1], lo, hi)

    return ModeSetup(
        name="mono", output=output, num_scales=4, plan=plan, build_model=build_model, step=step,
        evaluate=evaluate, preview=preview, frame_offsets=(-k, 0, k), snippet_fields=("image", "pose"),
        train_fields=("image", "K", "pose"), train_transform=Augment(flip_p=0.5, jitter_p=0.5, jitter_mode="params"),
        provenance={"pose_source": args.pose_source, "frame_stride": k},
    )
