"""Inference backends on CPU: ONNX Runtime vs torch eager, pre/post-processing cost, peak memory.

The reference depth model (the reference training runs' architecture: mobile encoder, decoder
channels 16..256, see docs/training.md) is exported with ``depth-train export``'s function at
320x240 (network input 320x256: its sides must be multiples of 32; the camera image is
letterboxed into it) and 640x480. Each backend runs in its own fresh process (so peak resident memory is that
backend's alone: the ONNX Runtime process never imports torch, as on a robot):

* ``ort_vs_torch_<W>x<H>``: median latency of :class:`OnnxRuntimeBackend` on the ``.onnx`` vs
  :class:`TorchBackend` running the model file eagerly (same weights, same random input).
  Target: ratio <= 1 (ONNX Runtime not slower).
* ``prepost_fraction_<W>x<H>``: ``preprocess`` of a ``W x H`` ``bgr8`` camera image into the network
  input plus ``postprocess_depth`` back to ``W x H`` metric depth (value, ms) vs the ONNX Runtime
  inference (baseline). Target: ratio < 0.10.
* ``peak_rss_<W>x<H>``: peak resident memory (``VmHWM``) of the ONNX Runtime process vs the
  torch process, MB (info).

On a machine where torch has CUDA, ``<variant>_<W>x<H>`` rows add torch FP16, torch.compile FP16
and ONNX Runtime's CUDA provider, each against torch FP32 eager on the GPU (not yet run: no GPU
was available to this project's sessions).

Times are medians of repeated runs after two warm-up runs. Both backends run with the same
number of threads, ``BENCH_BACKEND_THREADS`` (default 1: on the shared 2-core development VM,
multi-threaded torch runs are dominated by other processes preempting its OpenMP threads).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# camera size -> network input size (W, H); the network's sides are multiples of 32
SIZES = {(320, 240): (320, 256), (640, 480): (640, 480)}


def _row(name, value, unit, baseline, ratio, target=None):
    return {"name": name, "value": round(value, 3), "unit": unit, "baseline": round(baseline, 3),
            "ratio": round(ratio, 3), "target": target}


def _make_models(out: Path) -> dict[tuple[int, int], dict[str, Path]]:
    import torch

    from depth_training.evaluation.export import export_onnx
    from depth_training.models import build_depth_net
    from depth_training.models.artifact import save_depth_model

    torch.manual_seed(0)
    net = build_depth_net("mobile", decoder_channels=(16, 32, 64, 128, 256))
    with torch.no_grad():
        net.train()
        net(torch.rand(2, 3, 96, 128))
    net.eval()
    models = {}
    for camera, (w, h) in SIZES.items():
        cfg = {"encoder": "mobile", "num_scales": 4, "decoder_channels": [16, 32, 64, 128, 256], "height": h,
               "width": w, "min_depth": 0.1, "max_depth": 20.0, "output": "metric_depth", "mode": "bench"}
        pt = out / f"model_{w}x{h}.pt"
        save_depth_model(pt, net, cfg)
        onnx = out / f"depth_{w}x{h}.onnx"
        export_onnx(net, cfg, onnx)
        models[camera] = {"pt": pt, "onnx": onnx}
    return models


def _worker(path: str, repeats: int, camera: tuple[int, int], variant: str = "cpu") -> dict:
    """In a fresh process: load ``path``, time ``infer`` (and pre/post for ONNX models), report peak RSS.

    ``variant``: ``cpu``, or on a CUDA machine ``cuda`` (ONNX Runtime's CUDA provider / torch FP32),
    ``cuda_fp16`` (torch half) and ``cuda_compiled`` (torch.compile, FP16).
    """
    import numpy as np

    from depth_nodes.backends.inference import load_backend

    threads = int(os.environ.get("BENCH_BACKEND_THREADS", "1"))
    device = "cpu" if variant == "cpu" else "cuda"
    if path.endswith(".onnx"):
        backend = load_backend(path, device=device, threads=threads)
    else:
        import torch

        torch.set_num_threads(threads)
        backend = load_backend(path, device=device, half=variant in ("cuda_fp16", "cuda_compiled"),
                               compile=variant == "cuda_compiled")
    spec = backend.inputs[0]
    h, w = spec.shape[2], spec.shape[3]
    x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
    for _ in range(2):
        backend.infer({spec.name: x})
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        backend.infer({spec.name: x})
        times.append(time.perf_counter() - t0)
    result = {"backend": backend.name, "infer_ms": 1e3 * float(np.median(times))}
    if path.endswith(".onnx"):
        from depth_nodes.backends.description import load_description
        from depth_nodes.pipelines.depth_io import postprocess_depth, preprocess

        desc = load_description(path)
        img = np.random.default_rng(1).integers(0, 256, (camera[1], camera[0], 3), dtype=np.uint8)
        out = backend.infer({spec.name: x})[backend.outputs[0].name]
        buf = None
        pp = []
        for _ in range(max(repeats, 10) + 2):
            t0 = time.perf_counter()
            buf, lb = preprocess(img, "bgr8", desc, out=buf)
            postprocess_depth(out, lb, desc)
            pp.append(time.perf_counter() - t0)
        result["prepost_ms"] = 1e3 * float(np.median(pp[2:]))
        result["torch_imported"] = "torch" in sys.modules
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def _peak_rss_mb() -> float:
    """This process's peak resident set (``VmHWM``, per address space: not inherited across exec as
    ``ru_maxrss`` is, which would report the parent's peak for a forked child)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _run_worker(path: Path, repeats: int, camera: tuple[int, int], variant: str = "cpu") -> dict:
    threads = os.environ.get("BENCH_BACKEND_THREADS", "1")
    env = {**os.environ, "BENCH_BACKEND_THREADS": threads, "OMP_NUM_THREADS": threads}
    r = subprocess.run([sys.executable, "-m", "benchmarks.bench_backends", "--worker", str(path), str(repeats),
                        f"{camera[0]}x{camera[1]}", variant],
                       capture_output=True, text=True, timeout=900, env=env,
                       cwd=str(Path(__file__).resolve().parents[1]))
    if r.returncode != 0:
        last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"
        raise RuntimeError(f"worker for {path} failed: {last}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list[dict]:
    repeats = 10 if quick else 30
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_backends_") as tmp:
        models = _make_models(Path(tmp))
        cuda = _have_cuda()
        for (w, h), files in models.items():
            ort = _run_worker(files["onnx"], repeats, (w, h))
            eager = _run_worker(files["pt"], repeats, (w, h))
            if ort["torch_imported"]:
                raise RuntimeError("the ONNX Runtime worker imported torch")
            rows.append(_row(f"ort_vs_torch_{w}x{h}", ort["infer_ms"], "ms", eager["infer_ms"],
                             ort["infer_ms"] / eager["infer_ms"], "<= 1"))
            rows.append(_row(f"prepost_fraction_{w}x{h}", ort["prepost_ms"], "ms", ort["infer_ms"],
                             ort["prepost_ms"] / ort["infer_ms"], "< 0.10"))
            rows.append(_row(f"peak_rss_{w}x{h}", ort["peak_rss_mb"], "MB", eager["peak_rss_mb"],
                             ort["peak_rss_mb"] / eager["peak_rss_mb"]))
            if cuda:
                rows += _gpu_rows(files, repeats, (w, h))
    return rows


def _have_cuda() -> bool:
    r = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                       capture_output=True, text=True, timeout=120)
    return r.stdout.strip() == "True"


def _gpu_rows(files, repeats: int, camera: tuple[int, int]) -> list[dict]:
    """CUDA machine only (not run in this project so far): torch FP32 eager is the baseline of
    torch FP16, torch.compile FP16 and ONNX Runtime's CUDA provider (when onnxruntime-gpu is installed)."""
    w, h = camera
    base = _run_worker(files["pt"], repeats, camera, "cuda")
    rows = []
    for name, path, variant in (("torch_cuda_fp16", files["pt"], "cuda_fp16"),
                                ("torch_cuda_compiled_fp16", files["pt"], "cuda_compiled"),
                                ("ort_cuda", files["onnx"], "cuda")):
        try:
            r = _run_worker(path, repeats, camera, variant)
        except RuntimeError as exc:  # e.g. onnxruntime without a CUDA provider
            print(f"   {name}_{w}x{h}: skipped ({exc})", flush=True)
            continue
        rows.append(_row(f"{name}_{w}x{h}", r["infer_ms"], "ms", base["infer_ms"], r["infer_ms"] / base["infer_ms"]))
    return rows


if __name__ == "__main__":
    if len(sys.argv) in (5, 6) and sys.argv[1] == "--worker":
        cam = tuple(int(v) for v in sys.argv[4].split("x"))
        print(json.dumps(_worker(sys.argv[2], int(sys.argv[3]), cam, *sys.argv[5:])))
    else:
        for row in run(quick="--quick" in sys.argv):
            print(row)
