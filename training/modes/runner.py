"""Run one training mode end to end: recordings -> caches -> loop -> ``<out>/model.pt``.

The same for every mode (the mode supplies a :class:`~.setup.ModeSetup`):

1. check every recording for the mode (missing topics etc. fail here, before any decoding);
2. decode each recording once into a cache (rank 0 first under DDP) and split off the held-out
   validation frames (:mod:`.datasets`, :mod:`.holdout`);
3. build the model with the run's seed (identical on every rank), Adam, and a step LR schedule
   (x0.1 after ``--lr-drop-at`` of the steps, as Monodepth2's drop after 15 of 20 epochs);
4. validate the untrained model once on a fresh run, then :func:`depth_training.engine.loop.train`
   (resumes from ``<out>/checkpoints`` when there is one; TensorBoard in ``<out>/tb``);
5. write ``<out>/model.pt`` (:func:`depth_training.models.artifact.save_depth_model`) from the final
   state, also when the run was already complete and the command only resumed at its end; and,
   during the run, ``<out>/model_best.pt`` from the best validation so far (:mod:`.best`,
   ``--keep-best``).

``<out>/run.json`` records the model configuration of the run; re-running into the same ``--out``
with a different architecture, size, depth range or output kind is refused instead of resuming
a checkpoint that does not fit.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from depth_training.cli import UserError
from depth_training.data.loader import EpochLoader
from depth_training.data.mixing import MixingSampler, parse_dataset_specs
from depth_training.engine.checkpoint import CheckpointManager, atomic_write_bytes, unwrap
from depth_training.engine.distributed import barrier, init_distributed, main_process_first, teardown, wrap_model
from depth_training.engine.loop import TrainResult, train
from depth_training.engine.monitor import Monitor, ensure_log_handler
from depth_training.engine.seeding import seed_everything
from depth_training.engine.schedule import DropSchedule
from depth_training.engine.threads import apply_threads
from depth_training.models.artifact import check_model_config, save_depth_model

from .best import BestModelKeeper
from .datasets import build_mode_data
from .recordings import DecodeOptions
from .setup import KeepFields, ModeSetup
from .validation import make_val_fn, read_history

__all__ = ["model_config", "run_mode", "ARCHITECTURE_KEYS"]

LOG = logging.getLogger("depth_training.modes")
ARCHITECTURE_KEYS = ("encoder", "num_scales", "decoder_channels", "height", "width", "min_depth", "max_depth",
                     "output", "mode")


def model_config(args, setup: ModeSetup) -> dict[str, Any]:
    """The model-file config (:mod:`depth_training.models.artifact`) of this run."""
    cfg = {
        "encoder": args.encoder, "num_scales": setup.num_scales, "decoder_channels": list(args.decoder_channels),
        "height": int(args.height), "width": int(args.width), "min_depth": float(args.min_depth),
        "max_depth": float(args.max_depth), "output": setup.output, "mode": setup.name, **setup.provenance,
        "bags": [str(s.path) for s in args.dataset], "weights": [float(s.weight) for s in args.dataset],
    }
    return check_model_config(cfg, "model config")


def _check_run_dir(out: Path, cfg: dict[str, Any]) -> None:
    """Refuse an unusable ``--out`` and a run directory made with another model configuration."""
    from depth_training.paths import output_path_problem

    if problem := output_path_problem(out, directory=True):
        raise UserError(f"--out {out}: {problem}")
    run_file = out / "run.json"
    if not run_file.is_file():
        return
    try:
        previous = json.loads(run_file.read_text()).get("model", {})
    except ValueError:
        return
    changed = [k for k in ARCHITECTURE_KEYS if k in previous and previous[k] != cfg.get(k)]
    if changed:
        diff = ", ".join(f"{k}: {previous[k]!r} -> {cfg.get(k)!r}" for k in changed)
        raise UserError(f"{out}: holds a run with other settings ({diff}); its checkpoints cannot be resumed. "
                        f"Use another --out, or delete {out / 'checkpoints'}")


def _jsonable_args(args) -> dict[str, Any]:
    out = {}
    for k, v in vars(args).items():
        if k in ("func", "topic_config", "bag_topic_configs"):
            continue
        out[k] = [str(x.path) + f":{x.weight}" for x in v] if k in ("dataset",) and v else (
            [str(x) for x in v] if isinstance(v, list) else (str(v) if isinstance(v, Path) else v))
    return out


def run_mode(args, setup: ModeSetup) -> TrainResult:
    """Train ``setup``'s mode as ``args`` says (module docstring); returns the loop's result."""
    ensure_log_handler()
    out = Path(args.out)
    cfg = model_config(args, setup)
    specs = parse_dataset_specs(args.dataset, must_exist=True)
    val_paths = [Path(p) for p in (args.val_bag or [])]
    for p in val_paths:
        if not p.exists():
            raise UserError(f"{p}: no such file or directory (--val-bag)")
    _check_run_dir(out, cfg)

    # 1. every recording checked before anything is decoded
    train_recordings = [(setup.plan(s.path), s.weight) for s in specs]
    val_recordings = [setup.plan(p) for p in val_paths]

    ctx = init_distributed("cpu" if args.cpu else None)
    try:
        apply_threads(args.threads)
        seed_everything(args.seed, ctx.rank)
        if ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(out / "run.json", json.dumps({"model": cfg, "args": _jsonable_args(args)},
                                                           indent=1, default=str).encode())
        options = DecodeOptions(args.width, args.height, args.sync_tolerance, args.max_gap,
                                "skip" if args.skip_bad_frames else "raise")
        cache_root = Path(args.cache_dir) if args.cache_dir else out / "cache"
        with main_process_first(ctx):
            data = build_mode_data(
                train_recordings, val_recordings, options, cache_root, frame_offsets=setup.frame_offsets,
                snippet_fields=setup.snippet_fields, val_fraction=args.val_fraction, verbose=ctx.is_main,
                train_transform=KeepFields(setup.train_fields, setup.train_transform))
        if ctx.is_main:
            total = sum(data.weights)
            parts = zip(data.train.names, data.weights, data.train.sizes)
            LOG.info("training mix: %s",
                     ", ".join(f"{name} {100 * w / total:.0f}% ({n} samples)" for name, w, n in parts))
        sampler = MixingSampler.for_mixed(data.train, data.weights, args.epoch_samples, seed=args.seed,
                                          rank=ctx.rank, world_size=ctx.world_size)
        loader = EpochLoader(data.train, sampler, batch_size=args.batch_size, num_workers=args.workers, seed=args.seed)
        if loader.batches_per_epoch == 0:
            raise UserError(f"--epoch-samples {args.epoch_samples} gives no full batch of {args.batch_size} per rank")

        torch.manual_seed(args.seed)  # identical initial weights on every rank
        from depth_training.models.encoders import encoder_param_groups

        model = wrap_model(setup.build_model(), ctx)
        optimizer = torch.optim.Adam(encoder_param_groups(model, args.lr, scale=args.encoder_lr_scale,
                                                          freeze=args.freeze_encoder), lr=args.lr)
        scheduler = DropSchedule(optimizer, args.steps, args.lr_drop_at, gamma=0.1)
        checkpoints = CheckpointManager(out / "checkpoints", keep_last=3)
        val_fn = make_val_fn(data.val, setup.evaluate, device=ctx.device, output=setup.output,
                             min_depth=args.min_depth, max_depth=args.max_depth, batch_size=args.batch_size,
                             max_samples=args.val_samples, history=out / "validation.jsonl") if data.val else None
        keeper = None
        if val_fn is not None and ctx.is_main and args.keep_best != "none":
            keeper = BestModelKeeper(out / "model_best.pt", args.keep_best, cfg, read_history(out / "validation.jsonl"))
            val_fn = keeper.wrap(val_fn)
        monitor = Monitor(out / "tb", is_main=ctx.is_main, rank=ctx.rank, progress=True if args.progress else None)
        if val_fn is not None and not checkpoints.list() and ctx.is_main:
            _validate_untrained(unwrap(model), val_fn, monitor)
        barrier(ctx)
        t0 = time.perf_counter()
        result = train(
            model, optimizer, setup.step, loader, max_steps=args.steps, ctx=ctx, scheduler=scheduler,
            precision=args.amp, grad_clip=args.grad_clip or None, checkpoints=checkpoints,
            ckpt_every=args.ckpt_every, val_fn=val_fn, val_every=args.val_every, image_fn=setup.preview,
            image_every=args.image_every, monitor=monitor, log_every=args.log_every,
            config={"model": cfg, "args": _jsonable_args(args)},
        )
        if ctx.is_main:
            final = {**cfg, "step": result.step, "skipped_batches": result.skipped_batches,
                     "val": result.last_val, "train_seconds_this_process": round(time.perf_counter() - t0, 1)}
            save_depth_model(out / "model.pt", unwrap(model).depth, final)
            for line in run_summary(out, setup.output, result, time.perf_counter() - t0, keeper,
                                    has_validation=val_fn is not None, keep_best=args.keep_best):
                LOG.info("%s", line)
        barrier(ctx)
        return result
    except KeyboardInterrupt as exc:  # before the loop (decoding, caching): say what rerunning does
        if getattr(exc, "resume_step", None) is None:
            done = CheckpointManager(out / "checkpoints").list()
            exc.resume_step = done[-1].step if done else 0
            exc.checkpoint_dir = str(out / "checkpoints")
        raise
    finally:
        teardown(ctx)


def run_summary(out: Path, output: str, result: TrainResult, seconds: float, keeper, *, has_validation: bool,
                keep_best: str, no_validation: str = "--val-fraction 0 and no --val-bag") -> list[str]:
    """The end-of-run lines: time, steps, last and best validation, files written, TensorBoard command."""
    from depth_training.engine.monitor import format_duration, format_scalars

    done = result.step - (result.resumed_from or 0)
    rate = f", {done / seconds:.2f} steps/s" if seconds > 0 and done > 0 else ""
    resumed = f" (resumed from step {result.resumed_from})" if result.resumed_from else ""
    lines = [f"done: step {result.step}{resumed}, {done} steps in {format_duration(seconds)}{rate}"
             + (f", {result.skipped_batches} batch(es) skipped" if result.skipped_batches else "")]
    if result.last_val:
        lines.append(f"  last validation (step {result.step}): {format_scalars(result.last_val)}")
    wrote = [f"{out / 'model.pt'} ({output}, final weights)"]
    if keeper is not None and keeper.best_step is not None:
        lines.append(f"  best validation: {keeper.metric}={keeper.best:.4g} at step {keeper.best_step}")
        wrote.append(f"{keeper.path} (step {keeper.best_step})")
    elif not has_validation:
        lines.append(f"  no validation ({no_validation}): no model_best.pt; use model.pt")
    elif keep_best == "none":
        lines.append("  --keep-best none: no model_best.pt")
    ckpts = sorted((out / "checkpoints").glob("ckpt-*.pt"))
    if ckpts:
        wrote.append(f"{out / 'checkpoints'}/ ({len(ckpts)} checkpoint(s), newest {ckpts[-1].name})")
    if (out / "validation.jsonl").is_file():
        wrote.append(str(out / "validation.jsonl"))
    lines.append("  wrote: " + "; ".join(wrote))
    lines.append(f"  TensorBoard: tensorboard --logdir {out / 'tb'}")
    return lines


def _validate_untrained(net: torch.nn.Module, val_fn, monitor: Monitor) -> None:
    """Validation at step 0 (the baseline every later value is compared with)."""
    net.eval()
    try:
        with torch.no_grad():
            values = val_fn(net, 0)
    finally:
        net.train()
    monitor.scalars(0, values, prefix="val/")
    monitor.info(f"validation before training: {' '.join(f'{k}={v:.4g}' for k, v in values.items())}")


def default_workers() -> int:
    """Loader workers when ``--workers`` is not given: up to 4, leaving a core for the main process."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))
