"""``depth-train eval-descriptors`` and ``depth-train keypoints``.

Examples::

    # best-match error on held-out scenes, next to the untrained network, SIFT and ORB
    depth-train eval-descriptors --model runs/desc/model.pt --bag sim/ep9 --bag sim/ep10 --out runs/desc/eval
    # reference keypoints for the tracker node: picked automatically on the object, or given
    depth-train keypoints --model runs/desc/model.pt --bag sim/ep9 --frame 0 --auto 6 --out ref.npz
    depth-train keypoints --model runs/desc/model.pt --image ref.png --pixels 40,30 70,52 --names handle tip --out ref.npz
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from depth_training.argtypes import nonnegative_int
from depth_training.cli import UserError
from depth_training.engine.threads import THREADS_HELP, apply_threads

__all__ = ["register", "run_eval_descriptors", "run_keypoints", "pick_keypoints"]


def _load_model(path: Path):
    from depth_training.models.descriptor import DescriptorModelError, load_descriptor_model

    try:
        return load_descriptor_model(path)
    except DescriptorModelError as exc:
        raise UserError(str(exc)) from None


def _scene_args(args):
    """Fill the arguments the scene loader shares with the training command."""
    from depth_training.bags import TopicConfig
    from depth_training.bags.cli import parse_topic_overrides

    try:
        args.topic_config = TopicConfig().with_overrides(parse_topic_overrides(args.topics))
    except ValueError as exc:
        raise UserError(f"--topics: {exc}") from None
    args.sync_tolerance, args.max_gap, args.skip_bad_frames = 0.015, 0.5, args.skip_bad_frames
    if args.urdf is not None and args.pose_source != "fk":
        raise UserError("--urdf is only used with --pose-source fk")


def run_eval_descriptors(args: argparse.Namespace) -> int:
    import torch

    from depth_training.models.descriptor import DescriptorNet

    from .descriptors import evaluate_methods, format_table, network_describer, opencv_describer, plot_cumulative, write_report
    from depth_training.modes.descriptors import load_scenes_for

    _scene_args(args)
    net, cfg = _load_model(args.model)
    args.height, args.width = int(cfg["height"]), int(cfg["width"])
    for b in args.bag:
        if not Path(b).exists():
            raise UserError(f"{b}: no such file or directory (--bag)")
    out = Path(args.out)
    scenes = load_scenes_for(args.bag, args, Path(args.cache_dir) if args.cache_dir else out / "cache")
    apply_threads(args.threads)
    torch.manual_seed(args.seed)
    untrained = DescriptorNet(cfg["encoder"], int(cfg["descriptor_dim"]), tuple(cfg["decoder_channels"])).eval()
    methods = {"trained": network_describer(net), "untrained": network_describer(untrained)}
    for name in args.baselines:
        methods[name] = opencv_describer(name)
    report = evaluate_methods(scenes, methods, pairs_per_scene=args.pairs, points=args.points, seed=args.seed,
                              cross=not args.no_cross)
    report["model"] = str(args.model)
    report["bags"] = [str(b) for b in args.bag]
    print(format_table(report))
    write_report(report, out / "eval_descriptors.json")
    plot_cumulative(report, out / "eval_descriptors.png")
    print(f"wrote {out / 'eval_descriptors.json'} and {out / 'eval_descriptors.png'}")
    return 0


def pick_keypoints(desc: np.ndarray, mask: np.ndarray, count: int, *, min_separation: float = 6.0,
                   seed: int = 0) -> np.ndarray:
    """Well spread, distinctive pixels on ``mask``: ``(count, 2)`` float32 ``(u, v)``.

    Distinctiveness of pixel p: ``min over mask pixels q with |q - p| > r of |d(p) - d(q)|`` (low
    self-similarity: no far-away pixel looks the same; estimated on up to 2000 sampled pixels).
    Greedy: repeatedly take the most distinctive pixel at least ``min_separation`` px from those taken.

    Args:
        desc: ``(D, H, W)`` descriptors; mask: ``(H, W)`` bool.
    """
    d, h, w = desc.shape
    idx = np.flatnonzero(mask.reshape(-1))
    if idx.size == 0:
        raise ValueError("no pixel on the object mask")
    rng = np.random.default_rng(seed)
    cand = rng.choice(idx, size=min(idx.size, 2000), replace=False)
    uv = np.stack([cand % w, cand // w], 1).astype(np.float64)
    f = desc.reshape(d, -1).T[cand].astype(np.float64)
    dd = np.linalg.norm(f[:, None] - f[None], axis=-1)
    far = np.linalg.norm(uv[:, None] - uv[None], axis=-1) > 3 * min_separation
    score = np.where(far, dd, np.inf).min(axis=1)
    score[~np.isfinite(score)] = 0.0
    chosen: list[int] = []
    for k in np.argsort(-score):
        if all(np.linalg.norm(uv[k] - uv[c]) >= min_separation for c in chosen):
            chosen.append(int(k))
        if len(chosen) == count:
            break
    return uv[chosen].astype(np.float32)


def _draw_keypoints(image: np.ndarray, pixels: np.ndarray, names: list[str], path: Path) -> None:
    import cv2

    scale = max(1, 480 // image.shape[0])
    big = cv2.resize(np.ascontiguousarray(image[..., ::-1]), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    for (u, v), name in zip(pixels, names):
        c = (int(round((u + 0.5) * scale - 0.5)), int(round((v + 0.5) * scale - 0.5)))
        cv2.circle(big, c, 2 * scale, (0, 255, 255), 2)
        cv2.putText(big, name, (c[0] + 3 * scale, c[1]), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1)
    if not cv2.imwrite(str(path), big):
        raise UserError(f"{path}: could not write the PNG")


def run_keypoints(args: argparse.Namespace) -> int:
    import cv2
    import torch

    from depth_nodes.keypoints.reference import KeypointReference, save_reference
    from depth_training.models.descriptor import file_sha256

    from .descriptors import network_describer

    net, cfg = _load_model(args.model)
    h, w = int(cfg["height"]), int(cfg["width"])
    mask = None
    if args.image is not None:
        img = cv2.imread(str(args.image), cv2.IMREAD_COLOR)
        if img is None:
            raise UserError(f"{args.image}: not a readable image file")
        img = img[..., ::-1]
        if img.shape[:2] != (h, w):
            raise UserError(f"{args.image}: image is {img.shape[1]}x{img.shape[0]}, the model runs at {w}x{h}; "
                            f"resize it first")
    elif args.bag is not None:
        from depth_training.modes.descriptors import load_scenes_for

        _scene_args(args)
        args.height, args.width = h, w
        with tempfile.TemporaryDirectory(prefix="depth-train-keypoints-") as tmp:  # no cache/ beside --out
            scene = load_scenes_for([args.bag], args, Path(args.cache_dir) if args.cache_dir else Path(tmp),
                                    need_pairs=False)[0]
            if not 0 <= args.frame < len(scene.images):
                raise UserError(f"{args.bag}: --frame {args.frame}: the recording has {len(scene.images)} frames")
            img, mask = np.array(scene.images[args.frame]), np.array(scene.masks[args.frame])
            del scene  # its arrays may map files of tmp
    else:
        raise UserError("give --image FILE or --bag BAG")
    apply_threads(args.threads)
    desc = network_describer(net)(img)[0].numpy()
    if args.pixels:
        try:
            pix = np.array([[float(x) for x in p.split(",")] for p in args.pixels], np.float32).reshape(-1, 2)
        except ValueError:
            raise UserError(f"--pixels: expected u,v pairs, got {' '.join(args.pixels)}") from None
        if (pix < 0).any() or (pix[:, 0] > w - 1).any() or (pix[:, 1] > h - 1).any():
            raise UserError(f"--pixels: every u,v must lie inside the {w}x{h} image")
    else:
        if mask is None:
            mask = np.ones((h, w), bool)
        try:
            pix = pick_keypoints(desc, mask, args.auto, seed=args.seed)
        except ValueError as exc:
            raise UserError(f"{args.bag}: frame {args.frame}: {exc}") from None
    names = list(args.names) if args.names else [f"kp{i}" for i in range(len(pix))]
    if len(names) != len(pix):
        raise UserError(f"--names: {len(names)} names for {len(pix)} keypoints")
    r = np.clip(np.floor(pix + 0.5).astype(int), 0, [w - 1, h - 1])
    ref = KeypointReference(descriptors=desc[:, r[:, 1], r[:, 0]].T, pixels=pix, names=names,
                            model_sha256=file_sha256(args.model), input_size=(h, w),
                            descriptor_dim=int(cfg["descriptor_dim"]), image_size=img.shape[:2])
    out = save_reference(args.out, ref)
    png = Path(args.out).with_suffix(".png")
    _draw_keypoints(img, pix, names, png)
    for n, (u, v) in zip(names, pix):
        print(f"  {n:<10} u={u:7.1f} v={v:7.1f}")
    print(f"wrote {out} ({len(names)} keypoints, D={ref.descriptor_dim}) and {png}")
    return 0


def register(subparsers) -> None:
    from depth_training.modes.descriptors import add_scene_arguments

    def shared(p):
        p.add_argument("--model", required=True, type=Path, help="descriptor model file (depth-train descriptors)")
        p.add_argument("--topics", nargs="*", default=[], metavar="ROLE=TOPIC", help="topic names per role")
        p.add_argument("--cache-dir", type=Path, default=None, help="decoded-frame cache (default: "
                       "eval-descriptors OUT/cache; keypoints a temporary folder, removed afterwards)")
        p.add_argument("--skip-bad-frames", action="store_true", help="skip undecodable frames with a warning")
        p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
        p.add_argument("--threads", type=nonnegative_int, default=0, help=THREADS_HELP)
        add_scene_arguments(p)

    e = subparsers.add_parser("eval-descriptors", help="best-match pixel error of a descriptor model vs baselines",
                              description="Median error and PCK@1/2/5/10 px of best matches over the whole image "
                              "on held-out pairs, for the model, the untrained network, SIFT and ORB.")
    e.add_argument("--bag", action="append", required=True, type=Path, help="held-out recording (repeatable)")
    e.add_argument("--out", required=True, type=Path, help="folder for eval_descriptors.json / .png")
    e.add_argument("--pairs", type=int, default=10, help="pairs per recording (default 10)")
    e.add_argument("--points", type=int, default=100, help="points per pair (default 100)")
    e.add_argument("--baselines", nargs="*", default=["sift", "orb"], choices=("sift", "orb"))
    e.add_argument("--no-cross", action="store_true",
                   help="skip the cross-object measure (for recordings that share objects, e.g. sim --object-set)")
    shared(e)
    e.set_defaults(func=run_eval_descriptors)

    k = subparsers.add_parser("keypoints", help="write a keypoint reference file for the tracker node",
                              description="Descriptors of chosen (or automatically picked) pixels of one image, "
                              "with the model's hash and input size, for the keypoint tracker node; plus a PNG.")
    k.add_argument("--image", type=Path, default=None, help="an image file at the model's input size")
    k.add_argument("--bag", type=Path, default=None, help="... or a recording (see --frame)")
    k.add_argument("--frame", type=int, default=0, help="frame index in --bag (default 0)")
    k.add_argument("--pixels", nargs="*", default=None, metavar="U,V", help="keypoint pixels (else --auto)")
    k.add_argument("--auto", type=int, default=6, help="pick this many keypoints on the object (default 6)")
    k.add_argument("--names", nargs="*", default=None, help="keypoint names (default kp0, kp1, ...)")
    k.add_argument("--out", required=True, type=Path, help="reference file to write (.npz; a .png next to it)")
    shared(k)
    k.set_defaults(func=run_keypoints)
