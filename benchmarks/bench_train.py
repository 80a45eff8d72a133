"""Training throughput of the mono (Monodepth2) step and whether the data loader keeps up.

Set-up: a decode-once cache (:mod:`depth_training.data.cache`) of synthetic 640x192 RGB frames is
written in a temporary folder and read back as 3-frame snippets (t-1, t, t+1) with the standard
augmentation (flip in the workers; colour jitter drawn in the workers, applied to the batch on the
device, Monodepth2's ranges) through
:class:`~depth_training.data.loader.EpochLoader`. The model and step are those of ``depth-train mono``
(:class:`depth_training.modes.mono.MonoNets`, :func:`~depth_training.modes.mono.mono_step`):
``build_depth_net`` (ResNet-18 encoder + Monodepth2 decoder, 4 scales) and ``build_pose_net`` on
the pairs (t-1, t), (t, t+1), trained with ``multiscale_reprojection_loss`` (full-resolution
photometric SSIM+L1 minimum reprojection with auto-masking + edge-aware smoothness) and Adam.

Rows (``ratio = value / baseline``):

* ``mono_train_images_per_s_640x192``: target frames per second through ``engine.loop.train``
  (AMP bf16 on CUDA, gradient clipping, NaN checks, logging); baseline: the same step in a bare
  ``for`` loop (no engine). Ratio ~1 = the engine costs nothing.
* ``loader_vs_step_s_per_batch_w<N>``: seconds per batch of the loader alone (N workers, the
  documented setting: ``--workers``' default, ``min(4, cores - 1)``, see
  :func:`depth_training.modes.runner.default_workers`) vs the model step time.
  Target: ratio < 0.5 (the loader is never the bottleneck).
* ``train_data_wait_vs_step_w<N>``: inside ``train`` (loader and model running together), the
  time the loop waited for a batch per step vs the compute time per step. Target < 0.5.

On a CPU-only machine the step runs on the CPU (slow, and the workers share its cores); the
numbers that matter are the ones from a GPU box. ``--quick`` keeps the run under a minute on CPU.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from depth_training.modes.mono import MonoNets, mono_step

HEIGHT, WIDTH = 192, 640


def _frames(count: int, seed: int = 0):
    """Smooth random textures drifting sideways (so neighbouring frames overlap), K for 640x192."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (HEIGHT // 8, WIDTH // 8 + count, 3), dtype=np.uint8)
    big = np.repeat(np.repeat(base, 8, axis=0), 8, axis=1)
    K = np.array([[0.58 * WIDTH, 0, WIDTH / 2], [0, 1.92 * HEIGHT, HEIGHT / 2], [0, 0, 1]], np.float32)
    for i in range(count):
        yield {"image": np.ascontiguousarray(big[:, i * 8 // 2 : i * 8 // 2 + WIDTH]), "K": K, "sequence": np.int32(0)}


def _data(tmp: Path, frames: int, batch_size: int, workers: int, seed: int = 0):
    from depth_training.data import Augment, CachedDataset, EpochLoader, MixedDataset, MixingSampler, ensure_cache

    info = ensure_cache(tmp / "cache", None, {"bench": "mono", "h": HEIGHT, "w": WIDTH, "n": frames},
                        lambda: _frames(frames), name="synthetic")
    ds = CachedDataset(info, frame_offsets=(-1, 0, 1), snippet_fields=("image",), transform=Augment(jitter_mode="params"))
    mixed = MixedDataset([ds])
    sampler = MixingSampler.for_mixed(mixed, [1.0], 100_000, seed=seed)
    return EpochLoader(mixed, sampler, batch_size=batch_size, num_workers=workers, seed=seed)


def _bare_steps(model, opt, batches, device, prec) -> float:
    """Seconds per step of the plain loop over pre-loaded batches."""
    from depth_training.engine.loop import move_to_device

    times = []
    for b in batches:
        b = move_to_device(b, device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with prec.autocast():
            loss, _ = mono_step(model, b)
        prec.scaler.scale(loss).backward()
        prec.scaler.step(opt)
        prec.scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:])) if len(times) > 1 else times[0]


def run(quick: bool, workers: int | None = None) -> list[dict]:
    """Rows ``{"name", "value", "unit", "baseline", "ratio"}``."""
    from depth_training.engine import Monitor, resolve_precision, train

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    from depth_training.modes.runner import default_workers

    workers = default_workers() if workers is None else workers
    if cuda:
        batch_size, steps, frames = 12, (10 if quick else 40), 64
    else:
        torch.set_num_threads(min(2, os.cpu_count() or 1))
        batch_size, steps, frames = (2, 3, 16) if quick else (4, 8, 32)
    prec = resolve_precision("bf16" if cuda and torch.cuda.is_bf16_supported() else "none", device)
    tmp = Path(tempfile.mkdtemp(prefix="bench_train_"))
    rows = []
    try:
        data = _data(tmp, frames, batch_size, workers)
        torch.manual_seed(0)
        model = MonoNets().to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        # 1. the loader alone (first batch excluded: worker start-up)
        it = iter(data.iter_epoch(0))
        next(it)
        n_load = max(4, steps)
        t0 = time.perf_counter()
        batches = [next(it) for _ in range(n_load)]
        load_s = (time.perf_counter() - t0) / n_load

        # 2. bare model steps on pre-loaded batches (first = warm-up)
        step_s = _bare_steps(model, opt, batches[: steps + 1] if len(batches) > steps else batches, device, prec)
        bare_ips = batch_size / step_s

        # 3. the engine, loader and model together
        result = train(model, opt, mono_step, data, max_steps=steps + 1, precision=prec, grad_clip=10.0,
                       monitor=Monitor(None, progress=False), log_every=10**9)
        # log_every is huge: the values at the final step cover all steps incl. the first (warm-up)
        s = result.last_scalars
        ips = s["images_per_s"]
        wait_ratio = s["data_to_step_time"]

        rows.append({"name": f"mono_train_images_per_s_{WIDTH}x{HEIGHT}", "value": round(ips, 3),
                     "unit": "images/s", "baseline": round(bare_ips, 3), "ratio": round(ips / bare_ips, 3)})
        rows.append({"name": f"loader_vs_step_s_per_batch_w{workers}", "value": round(load_s, 4),
                     "unit": "s/batch", "baseline": round(step_s, 4), "ratio": round(load_s / step_s, 4)})
        compute_s = batch_size / ips / (1.0 + wait_ratio)
        rows.append({"name": f"train_data_wait_vs_step_w{workers}", "value": round(compute_s * wait_ratio, 4),
                     "unit": "s/step", "baseline": round(compute_s, 4), "ratio": round(wait_ratio, 4)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


if __name__ == "__main__":
    args = sys.argv[1:]
    w = int(args[args.index("--workers") + 1]) if "--workers" in args else None
    for row in run(quick="--quick" in args, workers=w):
        print(f"{row['name']:<38} {row['value']:>10} {row['unit']:<9} baseline {row['baseline']:>10}  "
              f"ratio {row['ratio']}")
