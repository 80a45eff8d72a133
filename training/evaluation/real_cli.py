"""``depth-train eval --images DIR``: a model and the priors on folders of real images with ground truth.

The model is a depth model file / training checkpoint (run like ``depth-train eval`` runs it:
:class:`~depth_training.evaluation.predict.NetworkPredictor`, its sigmoid disparity), or a runtime
artifact (``.onnx``, ``.engine``/``.plan``, ``.pt2``) with its description (the export sidecar
next to it, or ``--description`` for a public model's YAML), run through the nodes' own
preprocessing and backend (:class:`RuntimePredictor`). Without ``--model`` only the priors are
evaluated. The table and the JSON report are described in :mod:`.real_eval`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from depth_training.cli import UserError

__all__ = ["RUNTIME_SUFFIXES", "REPORT_FORMAT", "RuntimePredictor", "run_images_eval"]

RUNTIME_SUFFIXES = (".onnx", ".engine", ".plan", ".pt2")
REPORT_FORMAT = "depth_nodes.real_eval_report/1"


class RuntimePredictor:
    """A runtime artifact + description through :class:`depth_nodes.pipelines.mono_depth.MonoDepthPipeline`.

    ``scale_mode="relative"``: the pipeline's relative inverse depth at camera resolution
    (``1 / output`` for depth kinds). Pixels the runtime marks invalid (output ``<= 0`` or not
    finite) are read as inverse depth 0 (infinitely far), so that they still count.
    """

    def __init__(self, model_path: str, description_path: str | None = None, device: str = "cpu",
                 threads: int = 1):
        from depth_nodes.backends.base import BackendError
        from depth_nodes.backends.description import load_description
        from depth_nodes.backends.inference import backend_for_path, load_backend, resolve_description
        from depth_nodes.pipelines.mono_depth import MonoDepthPipeline
        from depth_nodes.pipelines.mono_scale import ScaleModeError

        try:
            desc = load_description(model_path, description_path)
            options = {"threads": threads} if backend_for_path(model_path) == "onnxruntime" else {}
            backend = load_backend(model_path, "auto", device, **options)
            desc = resolve_description(backend, desc)
            self.pipeline = MonoDepthPipeline(backend, desc, "relative")
        except (BackendError, ScaleModeError) as exc:
            raise UserError(f"--model {model_path}: {exc}") from None
        self.desc = desc

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        from depth_nodes.pipelines.mono_depth import MonoFrame

        inverse = self.pipeline.process(MonoFrame(np.ascontiguousarray(rgb), "rgb8")).relative_inverse
        return np.nan_to_num(inverse, nan=0.0, posinf=0.0, neginf=0.0)


def _network_predictor(path: str, device: str):
    from depth_training.evaluation.cli import _load_model
    from depth_training.evaluation.predict import NetworkPredictor

    net, config = _load_model(path)
    predictor = NetworkPredictor(net, config, "ssi_disparity", device)
    return (lambda rgb: predictor(rgb[None])[0]), {"kind": "depth_model", "path": path, "config": config}


def _model(args: argparse.Namespace, device: str):
    if not args.model:
        if args.description:
            raise UserError("--description: needs --model (the .onnx / .engine / .pt2 file it describes)")
        return None, None
    if not Path(args.model).is_file():
        raise UserError(f"--model {args.model}: no such file")
    if Path(args.model).suffix.lower() in RUNTIME_SUFFIXES:
        predictor = RuntimePredictor(args.model, args.description, "cuda" if device.startswith("cuda") else "cpu",
                                     args.threads)
        d = predictor.desc
        info = {"kind": "runtime", "path": args.model, "description": d.source, "name": d.name,
                "output_kind": d.output_kind, "resize": d.resize, "interpolation": d.interpolation,
                "input": [d.height, d.width]}
        return predictor, info
    if args.description:
        raise UserError(f"--description: only for runtime artifacts ({', '.join(RUNTIME_SUFFIXES)}), "
                        f"not {args.model}")
    return _network_predictor(args.model, device)


def _sets(args: argparse.Namespace):
    from depth_training.evaluation.real_frames import load_real_set

    manifests = args.manifest or []
    if manifests and len(manifests) != len(args.images):
        raise UserError(f"--manifest: give one per --images folder ({len(manifests)} manifests for "
                        f"{len(args.images)} folders), or none to use the manifest inside each folder")
    return [load_real_set(folder, manifests[i] if manifests else None) for i, folder in enumerate(args.images)]


def run_images_eval(args: argparse.Namespace, device: str) -> int:
    """The ``--images`` route of ``depth-train eval`` (see module docstring)."""
    from depth_training.evaluation.real_eval import PRIORS, evaluate_real_sets, format_real_table, mean_row
    from depth_training.evaluation.report import write_json
    from depth_training.paths import output_path_problem

    for option in ("bag", "npz"):
        if getattr(args, option):
            raise UserError(f"--images: evaluate folders on their own, not with --{option}")
    if args.alignment not in (None, "ssi_disparity"):
        raise UserError(f"--alignment {args.alignment}: --images always aligns scale and shift in inverse depth "
                        f"(ssi_disparity), the only fit that applies to the priors and to relative models")
    if args.json and (problem := output_path_problem(args.json)):
        raise UserError(f"--json {args.json}: {problem}")
    sets = _sets(args)
    predictor, model_info = _model(args, device)
    try:
        rows = evaluate_real_sets(sets, predictor)
    except ValueError as exc:
        raise UserError(f"--model {args.model}: {exc}") from None
    mean = mean_row(rows)
    what = f"{model_info['path']} ({model_info['kind']})" if model_info else "none (priors only)"
    print(f"model     {what}")
    for s in sets:
        print(f"images    {s.name}: {len(s.frames)} frames from {s.root} ({s.manifest}; ground truth {s.kind}, "
              f"evaluated in ({s.min_depth:g}, {s.max_depth:g}))")
    print(f"protocol  per frame least-squares scale >= 0 and shift in inverse depth on the valid ground truth; "
          f"priors: {', '.join(PRIORS)}")
    print(format_real_table(rows, mean))
    if args.json:
        report = {"format": REPORT_FORMAT, "settings": {"alignment": "ssi_disparity", "device": device,
                                                        "priors": list(PRIORS)},
                  "model": model_info, "sets": [s.describe() for s in sets], "frames": rows, "mean": mean}
        write_json(args.json, report)
        print(f"wrote {args.json}")
    return 0
