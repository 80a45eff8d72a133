"""``depth-train stereo``: self-supervised metric depth from rectified stereo pairs.

Formulation: Monodepth2's stereo training (Godard et al. 2019, "S") with the known baseline,
plus Monodepth's left-right consistency (Godard et al. 2017, eq. 4).

* One monocular depth network predicts depth for *both* images of a pair (the left and the right
  image are each a target, the other image its source). With depth ``z`` from
  :func:`~depth_training.geometry_torch.disp_to_depth` and the pair's transform
  ``T_{left->right} = [I | (-B, 0, 0)]`` (``T_{right->left}`` with ``+B``), the warp samples the
  other image at ``u -/+ fx' B / z``: the disparity in pixels at the training resolution, with
  ``fx'`` the left camera's focal length scaled to the training size and ``B`` the baseline read
  from the right camera_info (``P[0, 3] = -fx B``). Because ``B`` is in metres, ``z`` is metric:
  the model's output kind is ``"metric_depth"`` and ``disp_to_depth(net(image)[0])[1]`` is depth
  in metres, no scale recovery needed.
* Appearance: :func:`~depth_training.losses.multiscale_reprojection_loss` (SSIM+L1 with
  ``alpha = 0.85``, identity auto-masking, all scales at full resolution, edge-aware smoothness
  ``1e-3 / 2^s``).
* Left-right consistency: with ``d_l = fx' B / z_l`` and ``d_r = fx' B / z_r`` (pixels),
  :func:`~depth_training.losses.left_right_consistency` ``(d_l, d_r) / W`` per scale (upsampled
  to full resolution), averaged over scales, weight ``--lr-weight`` (Monodepth: 1 on disparities
  as a fraction of the width, hence the ``1 / W``).
* Augmentation: colour jitter (the same for both images of a pair) and Monodepth's flip-and-swap:
  mirroring both images and exchanging them gives a valid rectified pair of the mirrored scene
  (new left = flipped right, new right = flipped left, ``cx' = W - 1 - cx``, same baseline).

Public API:
    stereo_transforms(baseline (B,), target) -> (B, 4, 4)
    depth_to_disparity_px(depth B1HW, fx (B,), baseline (B,)) -> B1HW      d = fx B / z
    disparity_px_to_depth(disparity B1HW, fx (B,), baseline (B,)) -> B1HW  z = fx B / d
    stereo_loss(disparities, left, right, K, baseline, ...) -> StereoLoss
    StereoAugment: flip-and-swap + colour jitter of cached pairs
    stereo_setup(args) -> ModeSetup
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from depth_training.bags import StreamSpec, TopicConfig
from depth_training.bags.decode import CameraInfoTrack
from depth_training.cli import UserError
from depth_training.data.augment import Augment, flip_hwc, flip_intrinsics
from depth_training.geometry_torch import disp_to_depth
from depth_training.losses import left_right_consistency, multiscale_reprojection_loss
from depth_training.models import build_depth_net

from .cli import topics_for
from .recordings import plan_recording
from .setup import DepthOnly, ModeSetup, depth_preview
from .tensors import images_to_float, network_input, prediction_for_metrics

__all__ = ["stereo_transforms", "depth_to_disparity_px", "disparity_px_to_depth", "StereoLoss", "stereo_loss",
           "StereoAugment", "stereo_setup"]


def stereo_transforms(baseline: torch.Tensor, target: str) -> torch.Tensor:
    """Per-sample ``T_{target->other}`` of rectified pairs (batched
    :func:`depth_training.geometry_torch.stereo_transform`).

    The right camera sits at ``+B`` on the left camera's ``x`` axis: ``t = (-B, 0, 0)`` for a
    left target, ``(+B, 0, 0)`` for a right one.

    Args:
        baseline: ``(B,)`` metres.
        target: ``"left"`` or ``"right"``.

    Returns:
        ``(B, 4, 4)``.
    """
    if target not in ("left", "right"):
        raise ValueError(f"target: expected 'left' or 'right', got {target!r}")
    T = torch.eye(4, dtype=baseline.dtype, device=baseline.device).repeat(baseline.shape[0], 1, 1)
    T[:, 0, 3] = -baseline if target == "left" else baseline
    return T


def depth_to_disparity_px(depth: torch.Tensor, fx: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
    """``d = fx B / z`` in pixels of the image ``fx`` belongs to.

    Args:
        depth: ``(B, 1, H, W)`` metres (> 0); fx: ``(B,)`` pixels at this resolution; baseline: ``(B,)`` metres.
    """
    return (fx * baseline).reshape(-1, 1, 1, 1).to(depth.dtype) / depth


def disparity_px_to_depth(disparity: torch.Tensor, fx: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
    """``z = fx B / d`` (inverse of :func:`depth_to_disparity_px`); ``(B, 1, H, W)`` pixels -> metres."""
    return (fx * baseline).reshape(-1, 1, 1, 1).to(disparity.dtype) / disparity


@dataclass
class StereoLoss:
    """Result of :func:`stereo_loss`.

    Attributes:
        loss: scalar total ``appearance + lr_weight * lr_consistency``.
        appearance: scalar multi-scale reprojection + smoothness term (both views).
        lr_consistency: scalar, mean over scales (width-normalised disparities).
        depth_left: ``(B, 1, H, W)`` scale-0 depth of the left images (detached).
    """

    loss: torch.Tensor
    appearance: torch.Tensor
    lr_consistency: torch.Tensor
    depth_left: torch.Tensor


def stereo_loss(disparities: Sequence[torch.Tensor], left: torch.Tensor, right: torch.Tensor, K: torch.Tensor,
                baseline: torch.Tensor, *, min_depth: float = 0.1, max_depth: float = 100.0,
                smoothness: float = 1e-3, lr_weight: float = 1.0, noise_std: float = 1e-5) -> StereoLoss:
    """The stereo objective of the module docstring.

    Args:
        disparities: the network's sigmoid outputs for ``cat([left, right])``: per scale
            ``(2B, 1, H/2^s, W/2^s)``, the left images' first.
        left, right: ``(B, 3, H, W)`` rectified images in ``[0, 1]``.
        K: ``(B, 3, 3)`` rectified intrinsics at ``H x W`` (shared by both cameras).
        baseline: ``(B,)`` metres.
    """
    b, _, h, w = left.shape
    targets = torch.cat([left, right])
    sources = [torch.cat([right, left])]
    T = torch.cat([stereo_transforms(baseline, "left"), stereo_transforms(baseline, "right")]).to(left.dtype)
    K2 = torch.cat([K, K]).to(left.dtype)
    appearance = multiscale_reprojection_loss(disparities, targets, sources, [T], K2, min_depth=min_depth,
                                              max_depth=max_depth, smoothness=smoothness, noise_std=noise_std)
    fx, B = K[:, 0, 0], baseline
    lr_terms = []
    for disp in disparities:
        full = disp if disp.shape[-2:] == (h, w) else F.interpolate(disp, size=(h, w), mode="bilinear",
                                                                     align_corners=False)
        depth = disp_to_depth(full, min_depth, max_depth)[1]
        d_left, d_right = depth_to_disparity_px(depth[:b], fx, B), depth_to_disparity_px(depth[b:], fx, B)
        lr_terms.append(left_right_consistency(d_left, d_right) / w)
    lr = torch.stack(lr_terms).mean()
    return StereoLoss(appearance.loss + lr_weight * lr, appearance.loss, lr, appearance.depth[:b])


@dataclass(frozen=True)
class StereoAugment:
    """Flip-and-swap (probability ``flip_p``) then colour jitter of a cached pair.

    Sample fields: ``left``/``right`` ``(H, W, 3)`` uint8, ``K`` ``(3, 3)``; jitter parameters are
    added as ``color_matrix``/``color_contrast`` (:class:`~depth_training.data.augment.Augment`,
    ``jitter_mode="params"``: one transform for both images, applied on the device).
    """

    flip_p: float = 0.5
    jitter_p: float = 0.5

    def __call__(self, sample: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        if rng.random() < self.flip_p:
            sample = dict(sample)
            left, right = sample["left"], sample["right"]
            sample["left"], sample["right"] = flip_hwc(right), flip_hwc(left)
            if "K" in sample:
                sample["K"] = flip_intrinsics(sample["K"], left.shape[-2])
        jitter = Augment(flip_p=0.0, jitter_p=self.jitter_p, jitter_mode="params", image_keys=("left", "right"))
        return jitter(sample, rng)


def _pair(batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    return images_to_float(batch["left"]), images_to_float(batch["right"])


def _check_rectified_pair(topics: TopicConfig):
    def check(bag) -> None:
        left = CameraInfoTrack.first_of(bag, topics.left_info).cameras[0]
        right = CameraInfoTrack.first_of(bag, topics.right_info).cameras[0]
        if not right.baseline > 0:
            raise UserError(f"{bag.name}: {topics.right_info}: P[0,3] = {right.Tx} gives baseline {right.baseline} m; "
                            f"the right camera of a rectified pair has P[0,3] = -fx*B < 0")
        if (left.width, left.height) != (right.width, right.height):
            raise UserError(f"{bag.name}: {topics.right_info}: right camera is {right.width}x{right.height} but "
                            f"{topics.left_info} says {left.width}x{left.height}; a rectified pair has one size")
        if not np.allclose(left.K, right.K, rtol=1e-6, atol=1e-6):
            raise UserError(f"{bag.name}: {topics.right_info}: rectified intrinsics P[:, :3] differ from "
                            f"{topics.left_info}'s; the images are not a rectified pair")
    return check


def stereo_setup(args) -> ModeSetup:
    """The stereo mode's pieces from its parsed arguments (see :mod:`.cli`)."""
    lo, hi = float(args.min_depth), float(args.max_depth)
    smooth, lr_weight = float(args.smoothness), float(args.lr_weight)

    def plan(path):
        topics = topics_for(args, path)
        return plan_recording(path, [StreamSpec("left", topics.left, "color", topics.left_info),
                                     StreamSpec("right", topics.right, "color", topics.right_info)],
                              camera_role="left", baseline_role="right", optional_depth=(topics.depth, topics.left),
                              topics=topics, check=_check_rectified_pair(topics))

    def build_model() -> nn.Module:
        return DepthOnly(build_depth_net(args.encoder, 4, tuple(args.decoder_channels)))

    def loss(model, batch, noise_std) -> tuple[StereoLoss, list[torch.Tensor]]:
        left, right = _pair(batch)
        pair = network_input(torch.stack([left, right], dim=1), batch)  # same jitter for both images
        disps = model(torch.cat([pair[:, 0], pair[:, 1]]))
        return stereo_loss(disps, left, right, batch["K"].float(), batch["baseline"].float(), min_depth=lo,
                           max_depth=hi, smoothness=smooth, lr_weight=lr_weight, noise_std=noise_std), disps

    def step(model, batch):
        out, _ = loss(model, batch, 1e-5)
        return out.loss, {"appearance": out.appearance.detach(), "lr_consistency": out.lr_consistency.detach(),
                          "depth_median": out.depth_left.median()}

    def evaluate(net, batch):
        out, disps = loss(net, batch, 0.0)
        b = batch["left"].shape[0]
        return out.loss, prediction_for_metrics(disps[0][:b], "metric_depth", lo, hi)

    def preview(net, batch):
        return depth_preview(net, _pair(batch)[0], lo, hi)

    return ModeSetup(
        name="stereo", output="metric_depth", num_scales=4, plan=plan, build_model=build_model, step=step,
        evaluate=evaluate, preview=preview, train_fields=("left", "right", "K", "baseline"),
        train_transform=StereoAugment(), provenance={"lr_weight": lr_weight},
    )
