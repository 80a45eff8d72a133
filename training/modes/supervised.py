"""``depth-train supervised``: depth from a depth topic registered to the colour image.

The depth camera's readings (``16UC1`` mm or ``32FC1`` m, NaN / 0 = no reading) supervise the
network's full-resolution output; invalid pixels are left out of every statistic, and a batch
without a single valid pixel is skipped (:class:`~depth_training.engine.loop.SkipBatch`, logged
by the loop with the frames it held). The depth topic must be registered to the colour image
(same optical ``frame_id``, e.g. RealSense ``aligned_depth_to_color``).

Losses (``--loss``):

* ``ssi`` (MiDaS, Ranftl et al. 2020): scale-and-shift-invariant loss in disparity space. The
  target is ``1 / depth``; the prediction is the sigmoid output taken as relative inverse depth.
  Both are normalised per image as ``(d - median(d)) / mean|d - median(d)|`` (eq. 6-8), and the
  loss is the trimmed MAE (the 20 % largest residuals dropped, ``L_ssitrim``) plus ``0.5 x``
  multi-scale gradient matching over 4 scales (:func:`depth_training.losses.ssi_loss`,
  ``variant="trimmed"``, with ``robust_scale=False, refine_steps=0``: the paper's loss). The
  library's optional least-trimmed-squares refinement is left off on purpose: it rejects
  negative refits, and an untrained network (near-constant output, noise correlated either
  way) was seen to be pushed by it into a saturated, inverted solution within five steps and
  to stay there, while the paper's loss reaches a correlation of 0.8 with the target in the
  same five steps. Output kind ``"relative_disparity"`` (evaluate with scale-and-shift
  alignment in disparity).
* ``silog`` (Eigen et al. 2014): scale-invariant log loss on metric depth
  ``D = 1/n sum g^2 - lambda/n^2 (sum g)^2``, ``g = log z - log z*``, ``lambda = 0.5``
  (:func:`depth_training.losses.silog_loss`), with ``z = disp_to_depth(sigmoid)`` in
  ``[min_depth, max_depth]`` (targets outside that range are not used). Output ``"metric_depth"``.

Both supervise one output scale (the network is built with ``num_scales = 1``), as MiDaS and
Eigen do.

Public API:
    supervised_loss(disp B1HW, depth B1HW, loss, min_depth, max_depth, silog_lambda) -> (loss, valid_fraction)
    supervised_step(model, batch, ...) -> (loss, logs)
    supervised_setup(args) -> ModeSetup
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from depth_training.data.augment import Augment
from depth_training.engine.loop import SkipBatch
from depth_training.geometry_torch import disp_to_depth
from depth_training.losses import silog_loss, ssi_loss
from depth_training.models import build_depth_net

from .cli import topics_for
from .recordings import plan_rgbd_recording
from .setup import DepthOnly, ModeSetup, depth_preview
from .tensors import images_to_float, network_input, prediction_for_metrics, valid_depth

__all__ = ["LOSSES", "OUTPUT_OF_LOSS", "supervised_loss", "supervised_step", "supervised_setup"]

LOSSES = ("ssi", "silog")
OUTPUT_OF_LOSS = {"ssi": "relative_disparity", "silog": "metric_depth"}


def supervised_loss(disp: torch.Tensor, depth: torch.Tensor, loss: str = "ssi", *, min_depth: float = 0.1,
                    max_depth: float = 100.0, silog_lambda: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss of the sigmoid output ``disp`` against measured ``depth`` (module docstring).

    Args:
        disp: ``(B, 1, H, W)`` network output in ``(0, 1)``.
        depth: ``(B, 1, H, W)`` metres, NaN / ``<= 0`` = no reading.
        loss: ``"ssi"`` or ``"silog"``.

    Returns:
        ``(loss scalar, fraction of valid pixels)``.

    Raises:
        SkipBatch: no valid pixel in the whole batch.
    """
    valid = valid_depth(depth)
    if loss == "silog":
        valid &= (depth >= min_depth) & (depth <= max_depth)
    if not bool(valid.any()):
        raise SkipBatch("no valid depth pixel in the batch (all NaN / 0"
                        + (f" or outside [{min_depth}, {max_depth}] m)" if loss == "silog" else ")"))
    if loss == "ssi":
        target = torch.where(valid, 1.0 / torch.where(valid, depth, torch.ones_like(depth)), torch.zeros_like(depth))
        value = ssi_loss(disp, target.to(disp.dtype), valid, variant="trimmed", grad_weight=0.5, num_scales=4,
                         robust_scale=False, refine_steps=0).total
    elif loss == "silog":
        value = silog_loss(disp_to_depth(disp, min_depth, max_depth)[1], depth, valid, lambd=silog_lambda)
    else:
        raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
    return value, valid.float().mean()


def supervised_step(model: nn.Module, batch: Mapping[str, Any], *, loss: str = "ssi", min_depth: float = 0.1,
                    max_depth: float = 100.0,
                    silog_lambda: float = 0.5) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One supervised step. batch: ``image`` ``(B, H, W, 3)`` uint8, ``depth`` ``(B, H, W)`` float32
    metres (NaN = no reading), optional colour-jitter parameters; ``model``: :class:`DepthOnly`."""
    image = images_to_float(batch["image"])
    depth = batch["depth"].unsqueeze(1)
    if not bool(valid_depth(depth).any()):  # before the forward pass: nothing to learn from
        raise SkipBatch("no valid depth pixel in the batch (all NaN / 0)")
    disp = model(network_input(image, batch))[0]
    value, valid = supervised_loss(disp, depth, loss, min_depth=min_depth, max_depth=max_depth,
                                   silog_lambda=silog_lambda)
    return value, {"valid_fraction": valid.detach()}


def supervised_setup(args) -> ModeSetup:
    """The supervised mode's pieces from its parsed arguments (see :mod:`.cli`)."""
    lo, hi, kind, lam = float(args.min_depth), float(args.max_depth), args.loss, float(args.silog_lambda)
    output = OUTPUT_OF_LOSS[kind]

    def plan(path):
        return plan_rgbd_recording(path, topics_for(args, path), "supervised")

    def build_model() -> nn.Module:
        return DepthOnly(build_depth_net(args.encoder, 1, tuple(args.decoder_channels)))

    def step(model, batch):
        return supervised_step(model, batch, loss=kind, min_depth=lo, max_depth=hi, silog_lambda=lam)

    def evaluate(net, batch):
        disp = net(images_to_float(batch["image"]))[0]
        depth = batch["depth"].unsqueeze(1)
        try:
            value, _ = supervised_loss(disp, depth, kind, min_depth=lo, max_depth=hi, silog_lambda=lam)
        except SkipBatch:
            value = None
        return value, prediction_for_metrics(disp, output, lo, hi)

    def preview(net, batch):
        return depth_preview(net, images_to_float(batch["image"]), lo, hi)

    return ModeSetup(
        name="supervised", output=output, num_scales=1, plan=plan, build_model=build_model, step=step,
        evaluate=evaluate, preview=preview, train_fields=("image", "depth", "K"),
        train_transform=Augment(flip_p=0.5, jitter_p=0.5, jitter_mode="params"),
        provenance={"loss": kind, **({"silog_lambda": lam} if kind == "silog" else {})},
    )
