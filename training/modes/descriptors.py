"""``depth-train descriptors``: dense descriptors learnt from the arm's kinematics (Dense Object Nets).

Example (two scenes mixed 70/30, a held-out scene for validation, 16-dim descriptors)::

    depth-train descriptors --dataset sim/ep1:0.7 --dataset sim/ep2:0.3 --val-bag sim/ep9 \\
        --pose-source tf --descriptor-dim 16 --height 96 --width 128 --out runs/desc

Each recording (colour + registered depth + camera poses from ``/tf`` or joint states + URDF) is
decoded once into the frame cache and turned into a scene: table plane by RANSAC, object masks from
the geometry, frame pairs chosen for viewpoint diversity and a static scene
(:mod:`depth_training.correspondence`). A training sample is one pair with sampled matches and
non-matches (:mod:`depth_training.correspondence.dataset`: background randomisation, colour
jitter, flips with the indices transformed). The loss is the pixel-contrastive loss
(:mod:`depth_training.losses.pixel_contrastive`): match term, squared hinge with margin ``M`` on
object and background non-matches, hard-negative scaling, and a cross-object term between samples
of different scenes in the batch. The run uses the shared engine: resume from ``OUT/checkpoints``,
TensorBoard in ``OUT/tb`` (loss terms, validation median error / PCK, a PCA colour image of the
descriptors every ``--image-every`` steps), progress, torchrun. ``OUT/model.pt`` is a descriptor
model file (:mod:`depth_training.models.descriptor`); export it with ``depth-train export``.

Validation (``--val-bag``, whole recordings): best-match pixel error over the whole image B on
fixed pairs (:mod:`depth_training.evaluation.descriptors`) before training, every ``--val-every``
steps and at the end; ``OUT/model_best.pt`` holds the weights of the lowest median error
(``--keep-best none``: none), and the run ends with the same summary as the depth modes.
``--val-fraction`` and ``--val-every`` without ``--val-bag`` are refused (held-out *scenes* are what
measures generalisation; frames of a training scene would measure memorising it).
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from depth_training.cli import UserError
from depth_training.engine.threads import apply_threads
from depth_training.engine.schedule import DropSchedule

__all__ = ["register", "run_descriptors", "DescriptorModel", "DistributionTerm", "descriptor_step", "pca_image"]

LOG = logging.getLogger("depth_training.modes")


class DescriptorModel(nn.Module):
    """Holds the network as ``.net`` (checkpoints' ``net.`` prefix). ``forward(image) -> (B, D, H, W)``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)


def _images(batch_images: torch.Tensor) -> torch.Tensor:
    return batch_images.permute(0, 3, 1, 2).float().div(255.0)


@dataclass(frozen=True)
class DistributionTerm:
    """The pixelwise distribution term (:mod:`depth_training.losses.pixel_distribution`): its weight,
    temperature ``eta``, target width ``sigma`` (px) and how many of each pair's matches it uses."""

    weight: float = 0.0
    eta: float = 0.5
    sigma: float = 1.0
    matches: int = 128


def descriptor_step(model: nn.Module, batch, weights, distribution: DistributionTerm | None = None,
                    residual_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
    """One step: both images through the network in one batch, then the loss terms (the
    pixel-contrastive terms, the cross-object term and, with a weight, the distribution term)."""
    from depth_training.losses.pixel_contrastive import cross_object_loss, pixel_contrastive_loss

    b = batch["image_a"].shape[0]
    desc = model(torch.cat([_images(batch["image_a"]), _images(batch["image_b"])]))
    da, db = desc[:b], desc[b:]
    terms = pixel_contrastive_loss(da, db, batch["match_a"], batch["match_b"], batch["nonmatch_obj"],
                                   batch["nonmatch_obj_valid"], batch["nonmatch_bg"], batch["nonmatch_bg_valid"],
                                   weights)
    cross, hard = cross_object_loss(da, db, batch["obj_a"], batch["obj_b"], batch["scene"], weights.margin)
    total = terms["total"] + weights.cross_object * cross
    logs = {"match": terms["match"].detach(), "nonmatch_object": terms["object"].detach(),
            "nonmatch_background": terms["background"].detach(), "cross_object": cross.detach(),
            "hard_object": terms["hard_object"].float(), "hard_background": terms["hard_background"].float(),
            "hard_cross": hard.float()}
    inner = getattr(getattr(model, "module", model), "net", None)
    if residual_weight > 0 and getattr(inner, "last_residual", None) is not None:
        from depth_training.models.backbone_descriptor import residual_penalty

        pull = residual_penalty(inner.last_residual)
        total = total + residual_weight * pull
        logs["residual"] = pull.detach()
    if distribution is not None and distribution.weight > 0:
        from depth_training.losses.pixel_distribution import pixel_distribution_loss

        n = distribution.matches
        dist = pixel_distribution_loss(da, db, batch["match_a"][:, :n], batch["match_uv_b"][:, :n],
                                       eta=distribution.eta, sigma=distribution.sigma)
        total = total + distribution.weight * dist
        logs["distribution"] = dist.detach()
    return total, logs


def pca_image(desc: torch.Tensor) -> np.ndarray:
    """``(D, H, W)`` descriptors -> ``(H, W, 3)`` uint8: the first three principal components, each
    stretched to its 1st..99th percentile (D < 3: zero-padded)."""
    d, h, w = desc.shape
    x = desc.reshape(d, -1).T.double()
    x = x - x.mean(0)
    if d >= 3:
        _, _, V = torch.linalg.svd(x, full_matrices=False)
        y = x @ V[:3].T
    else:
        y = torch.cat([x, torch.zeros(x.shape[0], 3 - d, dtype=x.dtype)], 1)
    y = y.numpy()
    lo, hi = np.percentile(y, 1, axis=0), np.percentile(y, 99, axis=0)
    y = np.clip((y - lo) / np.maximum(hi - lo, 1e-9), 0, 1)
    return (y.reshape(h, w, 3) * 255).astype(np.uint8)


def model_config(args) -> dict[str, Any]:
    arch = {"encoder": args.encoder, "decoder_channels": list(args.decoder_channels)}
    if args.backbone != "mobile":
        arch = {"encoder": args.backbone, "backbone": args.backbone, "head": "refine",
                "decoder_channels": list(args.head_channels), "working_width": args.working_width}
    return {"kind": "descriptors", **arch, "descriptor_dim": int(args.descriptor_dim),
            "height": int(args.height), "width": int(args.width),
            "mode": "descriptors", "margin": float(args.margin), "pose_source": args.pose_source,
            "bags": [str(s.path) for s in args.dataset], "weights": [float(s.weight) for s in args.dataset]}


def run_descriptors(args: argparse.Namespace) -> int:
    from depth_training.correspondence.dataset import PairDataset, SampleConfig
    from depth_training.data.loader import EpochLoader
    from depth_training.data.mixing import MixedDataset, MixingSampler, parse_dataset_specs
    from depth_training.engine.checkpoint import CheckpointManager, atomic_write_bytes, unwrap
    from depth_training.engine.distributed import barrier, init_distributed, main_process_first, teardown, wrap_model
    from depth_training.engine.loop import train
    from depth_training.engine.monitor import Monitor, ensure_log_handler
    from depth_training.engine.seeding import seed_everything
    from depth_training.evaluation.descriptors import evaluate_methods, network_describer
    from depth_training.evaluation.homography_pairs import evaluate_pairs
    from depth_training.losses.pixel_contrastive import LossWeights
    from depth_training.models.descriptor import save_descriptor_model

    from .best import BestModelKeeper
    from .cli import check_args
    from .descriptor_network import build_network, load_real_pairs
    from .descriptor_scenes import load_scenes_for
    from .runner import run_summary

    _check_validation_args(args)
    check_args(args)
    if args.pose_source not in ("tf", "fk"):
        raise UserError("--pose-source: descriptors need recorded camera poses: tf or fk")
    ensure_log_handler()
    out = Path(args.out)
    cfg = model_config(args)
    specs = parse_dataset_specs(args.dataset, must_exist=True)
    for p in args.val_bag or []:
        if not Path(p).exists():
            raise UserError(f"{p}: no such file or directory (--val-bag)")
    run_file = out / "run.json"
    if run_file.is_file():
        try:
            prev = json.loads(run_file.read_text()).get("model", {})
        except ValueError:
            prev = {}
        keys = ("encoder", "backbone", "descriptor_dim", "decoder_channels", "height", "width", "working_width")
        changed = [k for k in keys if k in prev and prev[k] != cfg.get(k)]
        if changed:
            raise UserError(f"{out}: holds a run with other settings ({', '.join(changed)}); use another --out")
    ctx = init_distributed("cpu" if args.cpu else None)
    try:
        apply_threads(args.threads)
        seed_everything(args.seed, ctx.rank)
        cache_root = Path(args.cache_dir) if args.cache_dir else out / "cache"
        with main_process_first(ctx):  # the recordings are checked (and cached) before anything is written
            scenes = load_scenes_for([s.path for s in specs], args, cache_root)
            val_scenes = load_scenes_for(args.val_bag or [], args, cache_root)
        if ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(run_file, json.dumps({"model": cfg, "args": {k: str(v) for k, v in vars(args).items()
                                                                            if k not in ("func", "bag_topic_configs")}}, indent=1).encode())
        sample_cfg = SampleConfig(matches=args.matches, nonmatch_object=args.nonmatches_object,
                                  nonmatch_background=args.nonmatches_background,
                                  min_nonmatch_distance=args.min_nonmatch_distance,
                                  nonmatch_local=args.nonmatches_local, local_radius=args.local_radius,
                                  background_p=args.background_p,
                                  jitter_p=args.jitter_p, flip_p=args.flip_p, roll_p=args.roll_p,
                                  roll_max_deg=args.roll_max, abs_tol=args.occlusion_tol,
                                  rel_tol=args.occlusion_rel_tol)
        train_set = MixedDataset([PairDataset(s, k, sample_cfg) for k, s in enumerate(scenes)])
        weights = [float(s.weight) for s in specs]
        sampler = MixingSampler.for_mixed(train_set, weights, args.epoch_samples, seed=args.seed, rank=ctx.rank,
                                          world_size=ctx.world_size)
        loader = EpochLoader(train_set, sampler, batch_size=args.batch_size, num_workers=args.workers, seed=args.seed)
        if loader.batches_per_epoch == 0:
            raise UserError(f"--epoch-samples {args.epoch_samples} gives no full batch of {args.batch_size} per rank")
        torch.manual_seed(args.seed)
        checkpoints = CheckpointManager(out / "checkpoints", keep_last=3)
        net, groups = build_network(args, train_set, checkpoints_exist=bool(checkpoints.list()))
        model = wrap_model(DescriptorModel(net), ctx)
        optimizer = torch.optim.Adam(groups, lr=args.lr, weight_decay=1e-4)
        scheduler = DropSchedule(optimizer, args.steps, args.lr_drop_at, gamma=0.1)
        lw = LossWeights(margin=args.margin, object=args.weight_object, background=args.weight_background,
                         cross_object=args.weight_cross)

        dterm = DistributionTerm(args.weight_distribution, args.distribution_eta, args.distribution_sigma,
                                 min(args.matches, args.distribution_matches))

        def step(m, batch):
            return descriptor_step(m, batch, lw, dterm, args.weight_residual)

        real_pairs = load_real_pairs(args)
        val_fn, keeper = None, None
        if val_scenes:  # called on the main rank only (the loop's barrier needs it defined on all)
            def val_fn(net, step_no):
                inner = net.net if hasattr(net, "net") else net
                rep = evaluate_methods(val_scenes, {"net": network_describer(inner, ctx.device)},
                                       pairs_per_scene=args.val_pairs, points=50, seed=0)
                s = rep["methods"]["net"]["same_object"]
                values = {"median_px": s["median_px"], "pck@5": s["pck@5"], "pck@10": s["pck@10"]}
                if real_pairs:  # forgetting, measured (never used to pick a model)
                    r = evaluate_pairs(real_pairs, {"net": network_describer(inner, ctx.device)}, points=200)
                    values.update({"real_median_px": r["overall"]["net"]["median_px"],
                                   "real_pck@10": r["overall"]["net"]["pck@10"]})
                with open(out / "validation.jsonl", "a") as f:
                    f.write(json.dumps({"step": int(step_no), **values}) + "\n")
                return values

            if ctx.is_main and args.keep_best != "none":
                from .validation import read_history

                keeper = BestModelKeeper(out / "model_best.pt", "median_px", cfg, read_history(out / "validation.jsonl"),
                                         writer=lambda path, net, config: save_descriptor_model(path, net.net, config))
                val_fn = keeper.wrap(val_fn)

        preview_scene = (val_scenes or scenes)[0]

        def preview(net, batch):
            inner = net.net if hasattr(net, "net") else net
            img = preview_scene.images[0]
            x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255).to(next(inner.parameters()).device)
            return {"sample/image": img, "sample/descriptors_pca": pca_image(inner(x)[0].detach().cpu())}

        monitor = Monitor(out / "tb", is_main=ctx.is_main, rank=ctx.rank, progress=True if args.progress else None)
        if val_fn is not None and ctx.is_main and not checkpoints.list():
            unwrap(model).eval()
            with torch.no_grad():
                v0 = val_fn(unwrap(model), 0)
            unwrap(model).train()
            monitor.scalars(0, v0, prefix="val/")
            monitor.info("validation before training: " + " ".join(f"{k}={v:.4g}" for k, v in v0.items()))
        barrier(ctx)
        t0 = time.perf_counter()
        result = train(model, optimizer, step, loader, max_steps=args.steps, ctx=ctx, scheduler=scheduler,
                       precision=args.amp, grad_clip=args.grad_clip or None, checkpoints=checkpoints,
                       ckpt_every=args.ckpt_every, val_fn=val_fn, val_every=args.val_every, image_fn=preview,
                       image_every=args.image_every, monitor=monitor, log_every=args.log_every,
                       config={"model": cfg})
        if ctx.is_main:
            final = {**cfg, "step": result.step, "val": result.last_val,
                     "train_seconds_this_process": round(time.perf_counter() - t0, 1)}
            save_descriptor_model(out / "model.pt", unwrap(model).net, final)
            for line in run_summary(out, f"descriptors D={args.descriptor_dim}", result, time.perf_counter() - t0,
                                    keeper, has_validation=val_fn is not None, keep_best=args.keep_best,
                                    no_validation="no --val-bag"):
                LOG.info("%s", line)
        barrier(ctx)
        return 0
    finally:
        teardown(ctx)


def _check_validation_args(args: argparse.Namespace) -> None:
    """Validation options this mode would otherwise ignore are refused; sets their defaults."""
    if args.val_fraction is not None:
        raise UserError(f"--val-fraction {args.val_fraction}: descriptors validate on whole recordings only "
                        "(--val-bag): pairs from frames of a training scene measure memorising that scene, "
                        "not matching in new ones")
    if args.val_every and not args.val_bag:  # --val-every 0 (no validation) is consistent
        raise UserError(f"--val-every {args.val_every}: there is nothing to validate on: give --val-bag RECORDING")
    if args.keep_best not in ("auto", "none"):
        raise UserError(f"--keep-best {args.keep_best}: descriptors keep the lowest validation median_px "
                        "(auto, the default) or nothing (none)")
    args.val_fraction, args.val_every = 0.0, 1000 if args.val_every is None else args.val_every


def register(subparsers) -> None:
    from depth_training.argtypes import float_range, nonnegative_float, nonnegative_int, positive_float

    from .cli import _common, _positive_int
    from .descriptor_network import add_backbone_arguments
    from .descriptor_scenes import add_scene_arguments

    p = subparsers.add_parser("descriptors", help="dense descriptors from camera motion (Dense Object Nets)",
                              description=__doc__.split("\n\n")[0])
    _common(p)
    p.set_defaults(val_fraction=None, val_every=None)  # given explicitly: checked by _check_validation_args
    helps = {"val_fraction": "not used: descriptors validate on whole --val-bag recordings (refused if given)",
             "val_every": "validate on --val-bag every N steps (default 1000; also before training and at the end)",
             "keep_best": "auto (default): model_best.pt = the lowest validation median_px; none: no model_best.pt"}
    for action in p._actions:
        action.help = helps.get(action.dest, action.help)
    add_scene_arguments(p)
    g = p.add_argument_group("descriptors")
    g.add_argument("--descriptor-dim", type=_positive_int, default=16, help="D (3 for pictures, 16 for tracking)")
    g.add_argument("--margin", type=float, default=0.5, help="non-match margin M (default 0.5)")
    g.add_argument("--matches", type=_positive_int, default=256, help="matches per pair (default 256)")
    g.add_argument("--nonmatches-object", type=int, default=16, help="object non-matches per match (default 16)")
    g.add_argument("--nonmatches-background", type=int, default=16, help="background non-matches per match")
    g.add_argument("--min-nonmatch-distance", type=float, default=5.0, help="pixels from the true match (default 5)")
    g.add_argument("--nonmatches-local", type=nonnegative_int, default=0,
                   help="extra object non-matches per match drawn between --min-nonmatch-distance and --local-radius "
                        "pixels from the true match (default 0)")
    g.add_argument("--local-radius", type=positive_float, default=12.0, help="outer radius of the local non-matches, px")
    g.add_argument("--weight-object", type=float, default=1.0, help="object non-match weight")
    g.add_argument("--weight-background", type=float, default=1.0, help="background non-match weight")
    g.add_argument("--weight-cross", type=float, default=1.0, help="cross-object non-match weight")
    g.add_argument("--weight-distribution", type=nonnegative_float, default=0.0,
                   help="weight of the pixelwise distribution loss: cross-entropy of softmax(-|d_a - d_B|^2 / eta^2) "
                        "over every pixel of B against a Gaussian at the true match (default 0: off)")
    g.add_argument("--distribution-eta", type=positive_float, default=0.5,
                   help="its temperature eta, in descriptor-distance units (default 0.5)")
    g.add_argument("--distribution-sigma", type=nonnegative_float, default=1.0,
                   help="its target's width in pixels (default 1; 0: the rounded pixel only)")
    g.add_argument("--distribution-matches", type=_positive_int, default=128,
                   help="matches per pair it uses (the first of --matches; default 128)")
    g.add_argument("--background-p", type=float, default=0.5, help="background randomisation probability")
    g.add_argument("--jitter-p", type=float, default=0.5, help="colour jitter probability")
    g.add_argument("--flip-p", type=float, default=0.5, help="horizontal flip probability (both images)")
    g.add_argument("--roll-p", type=float_range(0.0, 1.0, lo_open=False, hi_open=False), default=0.0,
                   help="probability that a frame is turned about its optical axis (image, depth, mask and pose "
                        "together; per frame; default 0)")
    g.add_argument("--roll-max", type=float_range(0.0, 180.0, lo_open=True, hi_open=False), default=180.0, help="..by an angle up to this many degrees (default 180)")
    g.add_argument("--val-pairs", type=int, default=8, help="validation pairs per --val-bag scene")
    add_backbone_arguments(p)
    p.set_defaults(func=run_descriptors)
