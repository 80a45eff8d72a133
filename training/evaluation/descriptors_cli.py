"""``depth-train eval-descriptors`` and ``depth-train keypoints``.

Examples::

    # best-match error on held-out scenes, next to the untrained network, SIFT and ORB
    depth-train eval-descriptors --model runs/desc/model.pt --bag sim/ep9 --bag sim/ep10 --out runs/desc/eval
    # ... and on real image pairs with homographies (HPatches layout), next to the zero-shot backbone
    depth-train eval-descriptors --model runs/desc/model.pt --pairs ../shared/real/pairs/churchill \
        --compare backbone:xfeat --out runs/desc/eval_real
    # reference keypoints for the tracker node: picked automatically on the object, or given
    depth-train keypoints --model runs/desc/model.pt --bag sim/ep9 --frame 0 --auto 6 --out ref.npz
    depth-train keypoints --model runs/desc/model.pt --image ref.png --pixels 40,30 70,52 --names handle tip --out ref.npz
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from depth_training.argtypes import nonnegative_int, role_topic
from depth_training.cli import UserError
from depth_training.engine.threads import THREADS_HELP, apply_threads

__all__ = ["register", "run_eval_descriptors", "run_keypoints", "pick_keypoints"]


def _load_model(path, height: int = 96, width: int = 128):
    """A descriptor model file or checkpoint, or ``backbone:NAME`` (the pretrained backbone used
    zero-shot, at ``height x width`` in its config) -> ``(net, config)``."""
    from depth_training.models.descriptor import (ZERO_SHOT_PREFIX, DescriptorModelError, load_descriptor_model,
                                                  load_zero_shot)
    from depth_training.models.pretrained import BackboneError

    try:
        if str(path).startswith(ZERO_SHOT_PREFIX):
            return load_zero_shot(str(path), height, width)
        return load_descriptor_model(path)
    except (DescriptorModelError, BackboneError) as exc:
        raise UserError(str(exc)) from None


def model_identity(path) -> str:
    """SHA-256 that reference files carry: of the model file, or of a zero-shot backbone's weights."""
    from depth_training.models.descriptor import ZERO_SHOT_PREFIX, file_sha256
    from depth_training.models.pretrained import weights_file

    if str(path).startswith(ZERO_SHOT_PREFIX):
        return file_sha256(weights_file(str(path)[len(ZERO_SHOT_PREFIX):]))
    return file_sha256(path)


def _onnx_describer(path):
    """:func:`~depth_training.evaluation.descriptors.onnx_describer`, its errors as one line."""
    from depth_nodes.backends.base import BackendError

    from .descriptors import onnx_describer

    try:
        return onnx_describer(path)
    except (BackendError, ValueError) as exc:
        raise UserError(f"--compare {exc}") from None


def _method_name(path, taken) -> str:
    if str(path).startswith("backbone:"):
        name = str(path)[len("backbone:"):] + " zero-shot"
    elif str(path).lower().endswith(".onnx"):
        name = Path(path).name  # an exported model: the file, as the node runs it
    else:
        name = Path(path).parent.name or Path(path).stem
    while name in taken:
        name += "'"
    return name


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
    import json

    import torch

    from depth_training.models.descriptor import DescriptorNet

    from .descriptors import evaluate_methods, format_table, network_describer, opencv_describer, plot_cumulative, write_report
    from .homography_pairs import HomographyError, evaluate_pairs, format_pairs_table, load_sequence

    if not args.bag and not args.pairs:
        raise UserError("give held-out recordings (--bag) and/or real image pairs (--pairs DIR)")
    for b in args.bag or []:
        if not Path(b).exists():
            raise UserError(f"{b}: no such file or directory (--bag)")
    apply_threads(args.threads)
    net, cfg = _load_model(args.model)
    methods = {"trained": network_describer(net)}
    if not cfg.get("backbone"):  # the from-scratch architecture with the run's seed
        torch.manual_seed(args.seed)
        untrained = DescriptorNet(cfg["encoder"], int(cfg["descriptor_dim"]), tuple(cfg["decoder_channels"])).eval()
        methods["untrained"] = network_describer(untrained)
    for other in args.compare or []:
        methods[_method_name(other, methods)] = (_onnx_describer(other) if str(other).lower().endswith(".onnx")
                                                 else network_describer(_load_model(other)[0]))
    for name in args.baselines:
        methods[name] = opencv_describer(name)
    out = Path(args.out)
    if args.bag:
        from depth_training.modes.descriptor_scenes import load_scenes_for

        _scene_args(args)
        args.height, args.width = int(cfg["height"]), int(cfg["width"])
        scenes = load_scenes_for(args.bag, args, Path(args.cache_dir) if args.cache_dir else out / "cache")
        report = evaluate_methods(scenes, methods, pairs_per_scene=args.pairs_per_bag, points=args.points or 100,
                                  seed=args.seed, cross=not args.no_cross)
        report["model"] = str(args.model)
        report["bags"] = [str(b) for b in args.bag]
        print(format_table(report))
        write_report(report, out / "eval_descriptors.json")
        plot_cumulative(report, out / "eval_descriptors.png")
        print(f"wrote {out / 'eval_descriptors.json'} and {out / 'eval_descriptors.png'}")
    if args.pairs:
        try:
            pairs = [p for folder in args.pairs for p in load_sequence(folder, args.pairs_size)]
        except HomographyError as exc:
            raise UserError(str(exc)) from None
        report = evaluate_pairs(pairs, methods, points=args.points or 300)
        report.update(model=str(args.model), sequences=[str(p) for p in args.pairs], max_side=args.pairs_size)
        print(format_pairs_table(report))
        out.mkdir(parents=True, exist_ok=True)
        (out / "eval_pairs.json").write_text(json.dumps(report, indent=1))
        print(f"wrote {out / 'eval_pairs.json'}")
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


def onnx_descriptors(model: Path, image_rgb: np.ndarray):
    """Descriptors of an image through an exported model, the way the tracker node computes them
    (the runtime's preprocessing, backend and crop): ``(window (D, h_r, w_r), (s_x, s_y), net (H, W),
    source_model_sha256, descriptor_dim)``; camera pixel ``u`` is network pixel ``(u + 0.5) s_x - 0.5``."""
    from depth_nodes.backends.base import BackendError
    from depth_nodes.pipelines.descriptor_tracking import TrackerInputError

    from .descriptors import exported_descriptors, load_exported_descriptors

    try:
        backend, desc = load_exported_descriptors(model)
    except BackendError as exc:  # (a DescriptionError is a ValueError too: caught here, first)
        raise UserError(f"{model}: {exc}") from None
    except ValueError as exc:  # not a descriptors model: the message names the file
        raise UserError(str(exc)) from None
    try:
        window, lb = exported_descriptors(backend, desc, image_rgb)
    except TrackerInputError as exc:
        raise UserError(f"{model}: {exc}") from None
    finally:
        backend.close()
    return (window, (lb.scale_x, lb.scale_y), (lb.net_height, lb.net_width), desc.source_model_sha256 or "",
            int(desc.descriptor_dim or window.shape[0]))


def _bag_frame(args, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``--frame`` of ``--bag`` at ``width x height`` and its object mask (a temporary cache
    unless ``--cache-dir``: nothing is left beside ``--out``)."""
    from depth_training.modes.descriptor_scenes import load_scenes_for

    _scene_args(args)
    args.height, args.width = height, width
    with tempfile.TemporaryDirectory(prefix="depth-train-keypoints-") as tmp:
        scene = load_scenes_for([args.bag], args, Path(args.cache_dir) if args.cache_dir else Path(tmp),
                                need_pairs=False)[0]
        if not 0 <= args.frame < len(scene.images):
            raise UserError(f"{args.bag}: --frame {args.frame}: the recording has {len(scene.images)} frames")
        img, mask = np.array(scene.images[args.frame]), np.array(scene.masks[args.frame])
        del scene  # its arrays may map files of tmp
    return img, mask


def run_keypoints(args: argparse.Namespace) -> int:
    import cv2

    from depth_nodes.keypoints.reference import KeypointReference, save_reference

    from .descriptors import network_describer

    onnx = str(args.model).endswith(".onnx")
    zero_shot = str(args.model).startswith("backbone:")
    if onnx and not Path(args.model).is_file():
        raise UserError(f"{args.model}: no such model file")
    if not onnx and not zero_shot:
        _load_model(args.model)  # a missing or foreign model file is the first thing to report
    img = mask = None
    if args.image is not None:
        img = cv2.imread(str(args.image), cv2.IMREAD_COLOR)
        if img is None:
            raise UserError(f"{args.image}: not a readable image file")
        img = np.ascontiguousarray(img[..., ::-1])
    if onnx:
        if img is None and args.bag is not None:  # a frame of the recording at --frame-size, as the camera gave it
            if not args.frame_size:
                raise UserError("--bag with an exported model (.onnx) needs --frame-size WxH (the camera's image size)")
            try:
                args.width, args.height = (int(x) for x in args.frame_size.lower().split("x"))
            except ValueError:
                raise UserError(f"--frame-size: expected WxH, got {args.frame_size!r}") from None
            img, frame_mask = _bag_frame(args, args.width, args.height)
        elif img is None:
            raise UserError("an exported model (.onnx) takes --image FILE (any size: it is resized as the node does) "
                            "or --bag BAG --frame-size WxH")
        else:
            frame_mask = None
        desc, (sx, sy), (h, w), identity, dim = onnx_descriptors(Path(args.model), img)
        if frame_mask is not None:  # the object mask, in network pixels
            import cv2

            mask = cv2.resize(frame_mask.astype(np.uint8), (desc.shape[2], desc.shape[1]),
                              interpolation=cv2.INTER_NEAREST).astype(bool)
    else:
        if zero_shot and img is not None and (img.shape[0] % 32 or img.shape[1] % 32):
            raise UserError(f"{args.image}: a zero-shot backbone runs at the image's size, which must be multiples "
                            f"of 32 (is {img.shape[1]}x{img.shape[0]})")
        net, cfg = _load_model(args.model, *(img.shape[:2] if img is not None else (96, 128)))
        h, w, sx, sy, dim = int(cfg["height"]), int(cfg["width"]), 1.0, 1.0, int(cfg["descriptor_dim"])
        identity = model_identity(args.model)
        if img is not None and img.shape[:2] != (h, w):
            raise UserError(f"{args.image}: image is {img.shape[1]}x{img.shape[0]}, the model runs at {w}x{h}; "
                            f"resize it first (or export the model: an .onnx takes any image size)")
        if img is None and args.bag is not None:
            img, mask = _bag_frame(args, w, h)
        elif img is None:
            raise UserError("give --image FILE or --bag BAG")
        apply_threads(args.threads)
        desc = network_describer(net)(img)[0].numpy()
    ih, iw = img.shape[:2]
    if args.pixels:
        try:
            pix = np.array([[float(x) for x in p.split(",")] for p in args.pixels], np.float32).reshape(-1, 2)
        except ValueError:
            raise UserError(f"--pixels: expected u,v pairs, got {' '.join(args.pixels)}") from None
        if (pix < 0).any() or (pix[:, 0] > iw - 1).any() or (pix[:, 1] > ih - 1).any():
            raise UserError(f"--pixels: every u,v must lie inside the {iw}x{ih} image")
    else:
        if mask is None:
            mask = np.ones(desc.shape[1:], bool)
        try:
            picked = pick_keypoints(desc, mask, args.auto, seed=args.seed)
        except ValueError as exc:
            raise UserError(f"{args.bag or args.image}: frame {args.frame}: {exc}") from None
        pix = np.c_[(picked[:, 0] + 0.5) / sx - 0.5, (picked[:, 1] + 0.5) / sy - 0.5].astype(np.float32)
    names = list(args.names) if args.names else [f"kp{i}" for i in range(len(pix))]
    if len(names) != len(pix):
        raise UserError(f"--names: {len(names)} names for {len(pix)} keypoints")
    net_uv = np.c_[(pix[:, 0] + 0.5) * sx - 0.5, (pix[:, 1] + 0.5) * sy - 0.5]
    r = np.clip(np.floor(net_uv + 0.5).astype(int), 0, [desc.shape[2] - 1, desc.shape[1] - 1])
    ref = KeypointReference(descriptors=desc[:, r[:, 1], r[:, 0]].T, pixels=pix, names=names,
                            model_sha256=identity, input_size=(h, w), descriptor_dim=dim, image_size=(ih, iw))
    out = save_reference(args.out, ref)
    png = Path(args.out).with_suffix(".png")
    _draw_keypoints(img, pix, names, png)
    for n, (u, v) in zip(names, pix):
        print(f"  {n:<10} u={u:7.1f} v={v:7.1f}")
    print(f"wrote {out} ({len(names)} keypoints, D={ref.descriptor_dim}) and {png}")
    return 0


def register(subparsers) -> None:
    from depth_training.modes.descriptor_scenes import add_scene_arguments

    def shared(p):
        p.add_argument("--model", required=True, help="descriptor model file (depth-train descriptors), "
                       "backbone:NAME for a pretrained backbone used zero-shot (backbone:xfeat), or, for keypoints, "
                       "an exported .onnx with its sidecar (the shipped models/descriptors_xfeat.onnx)")
        p.add_argument("--topics", nargs="*", default=[], metavar="ROLE=TOPIC", type=role_topic, help="topic names per role")
        p.add_argument("--cache-dir", type=Path, default=None, help="decoded-frame cache (default: "
                       "eval-descriptors OUT/cache; keypoints a temporary folder, removed afterwards)")
        p.add_argument("--skip-bad-frames", action="store_true", help="skip undecodable frames with a warning")
        p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
        p.add_argument("--threads", type=nonnegative_int, default=0, help=THREADS_HELP)
        add_scene_arguments(p)

    e = subparsers.add_parser("eval-descriptors", help="best-match pixel error of a descriptor model vs baselines",
                              description="Median error and PCK@1/2/5/10 px of best matches over the whole image "
                              "on held-out pairs, for the model, the untrained network, SIFT and ORB.")
    e.add_argument("--bag", action="append", type=Path, help="held-out recording (repeatable)")
    e.add_argument("--pairs", action="append", type=Path, metavar="DIR",
                   help="real image pairs: a folder of 1.png..N.png and H_1_k homographies (HPatches layout); "
                        "FAST corners of image 1 matched over the whole of image k (repeatable)")
    e.add_argument("--pairs-size", type=int, default=640, help="longer side the pair images are resized to (default 640)")
    e.add_argument("--compare", action="append", metavar="MODEL",
                   help="another model measured the same way (a model file, backbone:NAME, or an exported X.onnx "
                        "run as descriptor_tracker_node runs it; repeatable)")
    e.add_argument("--out", required=True, type=Path, help="folder for eval_descriptors.json / .png, eval_pairs.json")
    e.add_argument("--pairs-per-bag", type=int, default=10, help="frame pairs per recording (default 10)")
    e.add_argument("--points", type=int, default=None, help="points per pair (default 100 for --bag, 300 for --pairs)")
    e.add_argument("--baselines", nargs="*", default=["sift", "orb"], choices=("sift", "orb"))
    e.add_argument("--no-cross", action="store_true",
                   help="skip the cross-object measure (for recordings that share objects, e.g. sim --object-set)")
    shared(e)
    e.set_defaults(func=run_eval_descriptors)

    k = subparsers.add_parser("keypoints", help="write a keypoint reference file for the tracker node",
                              description="Descriptors of chosen (or automatically picked) pixels of one image, "
                              "with the model's hash and input size, for the keypoint tracker node; plus a PNG.")
    k.add_argument("--image", type=Path, default=None,
                   help="an image file (at the model's input size; any size for an exported .onnx model)")
    k.add_argument("--bag", type=Path, default=None, help="... or a recording (see --frame)")
    k.add_argument("--frame", type=int, default=0, help="frame index in --bag (default 0)")
    k.add_argument("--frame-size", default=None, metavar="WxH",
                   help="with an exported .onnx model and --bag: decode the frame at this size (the camera's)")
    k.add_argument("--pixels", nargs="*", default=None, metavar="U,V", help="keypoint pixels (else --auto)")
    k.add_argument("--auto", type=int, default=6, help="pick this many keypoints on the object (default 6)")
    k.add_argument("--names", nargs="*", default=None, help="keypoint names (default kp0, kp1, ...)")
    k.add_argument("--out", required=True, type=Path, help="reference file to write (.npz; a .png next to it)")
    shared(k)
    k.set_defaults(func=run_keypoints)
