"""A tiny but real end-to-end training run of the engine (tests, benchmarks, smoke runs).

Two synthetic "recordings" (random RGB frames whose depth is a fixed function of colour, 10 % of
pixels invalid) go through the whole data path - decode-once cache, mixing with weights 0.7/0.3,
augmentation, restartable epoch loader - into :func:`.loop.train` with a two-layer conv net and a
masked L1 loss. The loss falls within a few dozen steps. Runs with ``python -m`` or ``torchrun``::

    python -m depth_training.engine.toy --out /tmp/toy --steps 200
    torchrun --standalone --nproc_per_node=2 -m depth_training.engine.toy --out /tmp/toy --cpu
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from depth_training.data.augment import Augment
from depth_training.data.cache import ensure_cache
from depth_training.data.cached_dataset import CachedDataset
from depth_training.data.loader import EpochLoader
from depth_training.data.mixing import MixedDataset, MixingSampler

from .checkpoint import CheckpointManager, unwrap
from .distributed import init_distributed, main_process_first, teardown, wrap_model
from .loop import SkipBatch, TrainResult, train
from .monitor import Monitor
from .seeding import seed_everything


def synthetic_frames(count: int, height: int, width: int, seed: int) -> Iterator[dict[str, np.ndarray]]:
    """Frames ``{"image": (H,W,3) uint8, "depth": (H,W) float32 m (0 = invalid), "K": (3,3),
    "pose": (4,4)}``; depth = 0.5 + 3 * luma(image) / 255, so it is learnable from the image."""
    rng = np.random.default_rng(seed)
    K = np.array([[0.6 * width, 0, (width - 1) / 2], [0, 0.6 * width, (height - 1) / 2], [0, 0, 1]], np.float32)
    for i in range(count):
        image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        depth = (0.5 + 3.0 * (image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0)
        depth[rng.random((height, width)) < 0.1] = 0.0
        pose = np.eye(4, dtype=np.float32)
        pose[2, 3] = 0.1 * i
        yield {"image": image, "depth": depth.astype(np.float32), "K": K, "pose": pose}


class TinyDepthNet(nn.Module):
    """(B, 3, H, W) float in [0, 1] -> (B, 1, H, W) positive depth. Two 3x3 convolutions."""

    def __init__(self, hidden: int = 16):
        super().__init__()
        self.conv1 = nn.Conv2d(3, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.softplus(self.conv2(torch.relu(self.conv1(x))))


def images_to_float(images: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float in [0, 1]."""
    return images.permute(0, 3, 1, 2).float().div_(255.0)


def depth_step(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Masked L1 between predicted and cached depth; all-invalid depth -> :class:`SkipBatch`."""
    x = images_to_float(batch.get("image_aug", batch["image"]))
    target = batch["depth"].unsqueeze(1)
    valid = target > 0
    if not bool(valid.any()):
        raise SkipBatch("all-invalid depth")
    pred = model(x)
    loss = (pred - target).abs()[valid].mean()
    return loss, {"valid_fraction": valid.float().mean()}


def build_data(cache_root: Path, *, height: int, width: int, frames: int) -> MixedDataset:
    """Two cached synthetic recordings, mixed 0.7 / 0.3 (returns the MixedDataset)."""
    sets = []
    for name, n_seed in (("rec_a", 1), ("rec_b", 2)):
        params = {"height": height, "width": width, "frames": frames, "seed": n_seed}
        info = ensure_cache(cache_root, None, params, lambda p=params: synthetic_frames(frames, height, width, p["seed"]), name=name)
        sets.append(CachedDataset(info, transform=Augment(jitter_p=0.0, keep_original=False), name=name))
    return MixedDataset(sets)


def run(args: argparse.Namespace) -> TrainResult:
    ctx = init_distributed("cpu" if args.cpu else None)
    try:
        torch.set_num_threads(args.threads)
        seed_everything(args.seed, ctx.rank)
        out = Path(args.out)
        with main_process_first(ctx):
            mixed = build_data(out / "cache", height=args.height, width=args.width, frames=args.frames)
        sampler = MixingSampler.for_mixed(mixed, [0.7, 0.3], args.epoch_samples, seed=args.seed,
                                          rank=ctx.rank, world_size=ctx.world_size)
        data = EpochLoader(mixed, sampler, batch_size=args.batch_size, num_workers=args.workers, seed=args.seed)
        torch.manual_seed(args.seed)  # identical initial weights on every rank, with or without DDP
        model = wrap_model(TinyDepthNet(), ctx)
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, args.steps // 2), gamma=0.5)
        trace = out / f"trace-rank{ctx.rank}.jsonl"
        run_id = f"{os.getpid()}-{time.time_ns()}"

        def step_fn(model: nn.Module, batch: dict[str, Any]):
            with open(trace, "a") as f:
                f.write(json.dumps({"run": run_id, "source": list(batch["source"]), "index": batch["index"].tolist()}) + "\n")
            if args.step_sleep:
                time.sleep(args.step_sleep)
            return depth_step(model, batch)

        monitor = Monitor(out / "tb", is_main=ctx.is_main, rank=ctx.rank, progress=True if args.progress else None)
        result = train(
            model, optimizer, step_fn, data, max_steps=args.steps, ctx=ctx, scheduler=scheduler,
            precision=args.amp, grad_clip=1.0, checkpoints=CheckpointManager(out / "checkpoints", keep_last=3),
            ckpt_every=args.ckpt_every, monitor=monitor, log_every=args.log_every, config=vars(args),
        )
        final = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
        torch.save(final, out / f"final-rank{ctx.rank}.pt")
        (out / f"result-rank{ctx.rank}.json").write_text(json.dumps(
            {"step": result.step, "resumed_from": result.resumed_from, "skipped": result.skipped_batches,
             "last": result.last_scalars, "run": run_id}))
        return result
    finally:
        teardown(ctx)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from depth_training.argtypes import nonnegative_float, nonnegative_int, positive_float, positive_int

    p = argparse.ArgumentParser(prog="python -m depth_training.engine.toy", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="run directory (cache, checkpoints, tb, final weights)")
    p.add_argument("--steps", type=positive_int, default=60)
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--batch-size", type=positive_int, default=4)
    p.add_argument("--workers", type=nonnegative_int, default=0)
    p.add_argument("--height", type=positive_int, default=24)
    p.add_argument("--width", type=positive_int, default=32)
    p.add_argument("--frames", type=positive_int, default=20, help="frames per synthetic recording")
    p.add_argument("--epoch-samples", type=positive_int, default=32)
    p.add_argument("--lr", type=positive_float, default=3e-3)
    p.add_argument("--amp", default="none", choices=("none", "bf16", "fp16"))
    p.add_argument("--ckpt-every", type=nonnegative_int, default=10)
    p.add_argument("--log-every", type=nonnegative_int, default=10)
    p.add_argument("--step-sleep", type=nonnegative_float, default=0.0, help="seconds to sleep per step (kill tests)")
    p.add_argument("--threads", type=nonnegative_int, default=1)
    p.add_argument("--cpu", action="store_true", help="stay on the CPU even when CUDA is available")
    p.add_argument("--progress", action="store_true",
                   help="show a progress bar even when stderr is not a terminal (on a terminal it is always shown)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
