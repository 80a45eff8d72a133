"""``depth-nodes verify`` and ``depth-nodes build-engine``.

``depth-nodes verify A B``: the same inputs through two model files / backends; prints max and
mean absolute and relative differences of every output and each backend's median latency;
exit status 1 when ``max|A - B| / max|B|`` exceeds ``--rtol`` (or ``max|A - B|`` exceeds
``--atol`` when given), 2 for a bad file or argument. Inputs: ``--samples`` random inputs in
``[0, 1)`` (default), or ``--inputs`` image files (PNG/JPEG, preprocessed with A's model
description) and ``.npz`` files (arrays named like the network input, or one array: an
``(H, W, 3)`` uint8 RGB image or a ready NCHW float32 tensor).

``depth-nodes build-engine MODEL.onnx``: builds (or finds in the cache) the TensorRT engine for
this GPU and TensorRT version (see :mod:`depth_nodes.backends.engine_cache`).

Relative differences: ``max_rel = max|a - b| / max|b|``, ``mean_rel = mean|a - b| / mean|b|``.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np

__all__ = ["register", "compare_outputs", "load_inputs"]

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "depth_nodes", "engines")


def register(sub) -> None:
    v = sub.add_parser("verify", help="run the same inputs through two model files/backends and compare",
                       description=__doc__.split("\n\n")[1])
    v.add_argument("a", help="model file A (.onnx, .engine/.plan, .pt2, .pt)")
    v.add_argument("b", help="model file B (the reference for relative differences)")
    v.add_argument("--backend-a", default="auto", choices=["auto", "onnxruntime", "tensorrt", "torch"])
    v.add_argument("--backend-b", default="auto", choices=["auto", "onnxruntime", "tensorrt", "torch"])
    v.add_argument("--device-a", default="cpu", choices=["cpu", "cuda"])
    v.add_argument("--device-b", default="cpu", choices=["cpu", "cuda"])
    v.add_argument("--inputs", nargs="+", metavar="FILE", help="image (.png/.jpg) or .npz files; default random")
    v.add_argument("--description", help="model description (.json sidecar or .yaml) for image inputs")
    v.add_argument("--samples", type=int, default=4, help="number of random inputs (default 4)")
    v.add_argument("--size", metavar="HxW", help="spatial size for networks with dynamic height/width")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--repeat", type=int, default=3, help="timed runs per input per backend (default 3)")
    v.add_argument("--rtol", type=float, default=1e-3, help="max |A-B| / max |B| allowed (default 1e-3)")
    v.add_argument("--atol", type=float, default=None, help="max |A-B| allowed (default: not checked)")
    v.add_argument("--json", help="also write the report to this JSON file")
    v.set_defaults(func=run_verify)

    b = sub.add_parser("build-engine", help="build (or reuse from the cache) a TensorRT engine from an ONNX file",
                       description="ONNX -> TensorRT engine for this GPU and TensorRT version, cached by ONNX "
                                   "SHA-256 + GPU + TensorRT version + build options (UNVERIFIED: no TensorRT "
                                   "on the development machines).")
    b.add_argument("onnx", help="the .onnx file (its .json sidecar is copied next to the engine)")
    b.add_argument("--out", help="also copy the engine (with .meta.json and .json) to this path")
    b.add_argument("--cache-dir", default=DEFAULT_CACHE, help=f"engine cache (default {DEFAULT_CACHE})")
    b.add_argument("--no-fp16", dest="fp16", action="store_false", help="build in FP32 only")
    b.add_argument("--int8", action="store_true", help="INT8 with entropy calibration (needs calibration data)")
    b.add_argument("--calib-inputs", nargs="+", metavar="FILE", help="images/.npz frames for INT8 calibration")
    b.add_argument("--calib-bag", help="a bag to take INT8 calibration frames from (needs depth_training)")
    b.add_argument("--calib-topic", help="image topic in --calib-bag")
    b.add_argument("--calib-frames", type=int, default=100, help="calibration frames (default 100)")
    b.add_argument("--calib-cache", help="calibration cache file (read if present, else written)")
    b.add_argument("--profile", action="append", default=[], metavar="NAME:MIN:OPT:MAX",
                   help="optimisation profile for a dynamic input, shapes like 1x3x240x320 (repeatable)")
    b.add_argument("--workspace-mb", type=int, default=1024, help="builder workspace limit (default 1024 MiB)")
    b.add_argument("--description", help="model description for preprocessing calibration frames")
    b.set_defaults(func=run_build_engine)


# -- inputs --------------------------------------------------------------------------------------
def _user_error(msg: str):
    from depth_nodes.cli import UserError

    return UserError(msg)


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise _user_error(f"--size: expected HxW like 480x640, got {text!r}") from None
    return h, w


def _description(model: str, description: str | None):
    from depth_nodes.backends.description import DescriptionError, load_description

    try:
        return load_description(model, description)
    except DescriptionError as exc:
        raise _user_error(str(exc)) from exc


def _image_to_input(path: Path, image: np.ndarray, encoding: str, desc, spec) -> np.ndarray:
    from depth_nodes.pipelines.depth_io import DepthIOError, preprocess

    if desc is None:
        raise _user_error(f"{path}: image inputs need a model description (sidecar .json or --description)")
    if desc.dynamic is False and (spec.fixed(2), spec.fixed(3)) not in ((None, None), (desc.height, desc.width)):
        desc = desc.with_size(spec.fixed(2), spec.fixed(3))
    try:
        x, _ = preprocess(image, encoding, desc)
    except DepthIOError as exc:
        raise _user_error(f"{path}: {exc}") from exc
    return x


def load_inputs(files, spec, desc=None) -> list[np.ndarray]:
    """One network input per file (see module docstring), for the input described by ``spec``."""
    import cv2

    out = []
    for f in files:
        path = Path(f)
        if not path.is_file():
            raise _user_error(f"{path}: no such input file")
        if path.suffix.lower() == ".npz":
            try:
                with np.load(path, allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
            except (OSError, ValueError) as exc:
                raise _user_error(f"{path}: not a readable .npz without pickles ({exc})") from exc
            arr = arrays.get(spec.name, next(iter(arrays.values())) if len(arrays) == 1 else None)
            if arr is None:
                raise _user_error(f"{path}: no array named {spec.name!r} (has {sorted(arrays)})")
            if arr.dtype == np.uint8 and arr.ndim == 3:
                out.append(_image_to_input(path, arr, "rgb8", desc, spec))
            else:
                arr = arr.astype(np.dtype(spec.dtype), copy=False)
                out.append(arr[None] if arr.ndim == len(spec.shape) - 1 else arr)
        else:
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                raise _user_error(f"{path}: not a readable image")
            out.append(_image_to_input(path, img, "bgr8", desc, spec))
    return out


def _random_inputs(spec, n: int, seed: int, size, desc) -> list[np.ndarray]:
    shape = []
    for axis, d in enumerate(spec.shape):
        if isinstance(d, int) and d > 0:
            shape.append(d)
        elif axis == 0:
            shape.append(1)
        elif axis in (2, 3) and (size or desc):
            shape.append((size or (desc.height, desc.width))[axis - 2])
        else:
            raise _user_error(f"input {spec} has a dynamic dimension {axis}; give --size HxW")
    rng = np.random.default_rng(seed)
    return [rng.random(shape, dtype=np.float32).astype(np.dtype(spec.dtype)) for _ in range(n)]


# -- comparison ----------------------------------------------------------------------------------
def compare_outputs(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """``max_abs``, ``mean_abs``, ``max_rel = max_abs / max|b|``, ``mean_rel = mean_abs / mean|b|`` (float64)."""
    if a.shape != b.shape:
        raise _user_error(f"output shapes differ: {a.shape} vs {b.shape}")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    diff = np.abs(a64 - b64)
    finite = np.isfinite(diff)
    if not finite.all():
        diff = np.where(finite, diff, np.inf)
    max_abs, mean_abs = float(diff.max()), float(diff.mean())
    return {"max_abs": max_abs, "mean_abs": mean_abs, "max_rel": max_abs / max(float(np.abs(b64).max()), 1e-12),
            "mean_rel": mean_abs / max(float(np.abs(b64).mean()), 1e-12)}


def _load(path: str, backend: str, device: str):
    from depth_nodes.backends.base import BackendError
    from depth_nodes.backends.inference import load_backend

    try:
        return load_backend(path, backend=backend, device=device)
    except BackendError as exc:
        raise _user_error(str(exc)) from exc


def _run_all(backend, inputs, name, repeat):
    from depth_nodes.backends.base import BackendError
    import time

    results, times = [], []
    try:
        backend.warmup()
        for x in inputs:
            for _ in range(max(repeat, 1)):
                t0 = time.perf_counter()
                out = backend.infer({name: x})
                times.append(time.perf_counter() - t0)
            results.append({k: np.array(v, copy=True) for k, v in out.items()})
    except BackendError as exc:
        raise _user_error(str(exc)) from exc
    return results, statistics.median(times)


def run_verify(args) -> int:
    size = _parse_size(args.size)
    a = _load(args.a, args.backend_a, args.device_a)
    b = _load(args.b, args.backend_b, args.device_b)
    if len(a.inputs) != 1 or len(b.inputs) != 1:
        raise _user_error("verify compares single-input networks")
    spec = a.inputs[0]
    # image inputs need A's description; random inputs use it (when there is one) for dynamic sizes
    needed = bool(args.inputs or args.description)
    desc = _description(args.a, args.description) if needed or Path(args.a).with_suffix(".json").is_file() else None
    inputs = load_inputs(args.inputs, spec, desc) if args.inputs else \
        _random_inputs(spec, args.samples, args.seed, size, desc)
    out_a, lat_a = _run_all(a, inputs, spec.name, args.repeat)
    out_b, lat_b = _run_all(b, inputs, b.inputs[0].name, args.repeat)
    a.close()
    b.close()
    names_a, names_b = list(out_a[0]), list(out_b[0])
    if len(names_a) != len(names_b):
        raise _user_error(f"{args.a} has outputs {names_a}, {args.b} has {names_b}")
    pairs = [(n, n) for n in names_a] if set(names_a) == set(names_b) else list(zip(names_a, names_b))
    report = {"a": {"file": args.a, "backend": a.name, "median_latency_ms": lat_a * 1e3},
              "b": {"file": args.b, "backend": b.name, "median_latency_ms": lat_b * 1e3},
              "inputs": len(inputs), "input_shape": list(inputs[0].shape), "outputs": {}}
    failed = False
    for na, nb in pairs:
        stats = [compare_outputs(ra[na], rb[nb]) for ra, rb in zip(out_a, out_b)]
        s = {"max_abs": max(x["max_abs"] for x in stats), "mean_abs": float(np.mean([x["mean_abs"] for x in stats])),
             "max_rel": max(x["max_rel"] for x in stats), "mean_rel": float(np.mean([x["mean_rel"] for x in stats]))}
        ok = s["max_rel"] <= args.rtol and (args.atol is None or s["max_abs"] <= args.atol)
        failed |= not ok
        report["outputs"][na if na == nb else f"{na}~{nb}"] = {**s, "ok": ok}
        print(f"{na if na == nb else na + ' vs ' + nb}: max|A-B| {s['max_abs']:.3g}  mean|A-B| {s['mean_abs']:.3g}  "
              f"max rel {s['max_rel']:.3g}  mean rel {s['mean_rel']:.3g}  "
              f"{'OK' if ok else 'ABOVE TOLERANCE'} (rtol {args.rtol:g}"
              f"{'' if args.atol is None else f', atol {args.atol:g}'})")
    print(f"A {args.a} [{a.name}]: {lat_a * 1e3:.2f} ms median; B {args.b} [{b.name}]: {lat_b * 1e3:.2f} ms median "
          f"({len(inputs)} inputs of shape {tuple(inputs[0].shape)})")
    report["ok"] = not failed
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 1 if failed else 0


# -- build-engine --------------------------------------------------------------------------------
def _calibration_batches(args, desc) -> list[np.ndarray]:
    if args.calib_inputs:
        from depth_nodes.backends.inference import TensorSpec

        spec = TensorSpec(desc.input_name, (1, 3, desc.height, desc.width), "float32")
        return load_inputs(args.calib_inputs[:args.calib_frames], spec, desc)
    if args.calib_bag:
        if not args.calib_topic:
            raise _user_error("--calib-bag needs --calib-topic")
        try:
            from depth_training.bags import open_bag
            from depth_training.bags.decode import decode_image_message
        except ImportError as exc:
            raise _user_error("--calib-bag needs the depth_training package; use --calib-inputs") from exc
        from depth_nodes.pipelines.depth_io import preprocess

        batches = []
        with open_bag(args.calib_bag) as bag:
            for raw, msg in bag.messages([args.calib_topic]):
                image, encoding = decode_image_message(msg, raw.msgtype)
                batches.append(preprocess(image, encoding, desc)[0])
                if len(batches) >= args.calib_frames:
                    break
        if not batches:
            raise _user_error(f"{args.calib_bag}: no frames on {args.calib_topic}")
        return batches
    return []


def run_build_engine(args) -> int:
    import hashlib
    import shutil

    from depth_nodes.backends.base import BackendError
    from depth_nodes.backends.engine_cache import (BuildOptions, engine_meta_path, ensure_engine, parse_profile,
                                                   sha256_file)

    onnx = Path(args.onnx)
    if not onnx.is_file():
        raise _user_error(f"{onnx}: no such ONNX file")
    try:
        profiles = tuple(parse_profile(p) for p in args.profile)
    except ValueError as exc:
        raise _user_error(str(exc)) from exc
    batches, calib_sha = [], None
    if args.int8:
        if args.calib_cache and Path(args.calib_cache).is_file():
            calib_sha = sha256_file(args.calib_cache)
        else:
            desc = _description(str(onnx), args.description)
            batches = _calibration_batches(args, desc)
            if not batches:
                raise _user_error("--int8 needs --calib-inputs, --calib-bag or an existing --calib-cache")
            h = hashlib.sha256()
            for x in batches:
                h.update(np.ascontiguousarray(x).tobytes())
            calib_sha = h.hexdigest()
    try:
        options = BuildOptions(fp16=args.fp16, int8=args.int8, workspace_mb=args.workspace_mb, profiles=profiles,
                               calibration_sha256=calib_sha)
    except ValueError as exc:
        raise _user_error(str(exc)) from exc
    try:
        from depth_nodes.backends.cuda_memory import gpu_name
        from depth_nodes.backends.tensorrt_backend import build_engine, import_tensorrt

        trt = import_tensorrt(str(onnx))
        gpu = gpu_name()

        def build(src, dst, opts):
            build_engine(src, dst, opts, calibration_batches=batches, calibration_cache=args.calib_cache, trt=trt)

        result = ensure_engine(onnx, args.cache_dir, options, gpu=gpu, tensorrt_version=str(trt.__version__),
                               build=build)
    except BackendError as exc:
        raise _user_error(str(exc)) from exc
    print(f"{result.path} ({'built in %.1f s' % result.build_seconds if result.built else 'cache hit'}; "
          f"key {result.key[:16]})")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result.path, out)
        shutil.copyfile(engine_meta_path(result.path), engine_meta_path(out))
        if result.path.with_suffix(".json").is_file():
            shutil.copyfile(result.path.with_suffix(".json"), out.with_suffix(".json"))
        print(f"copied to {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from depth_nodes.cli import main

    sys.exit(main())
