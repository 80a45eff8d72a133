"""The training loop: one function, the work done by callables passed in.

``train`` knows nothing about depth, poses or bags. A mode (mono, stereo, descriptors) supplies:

* ``step_fn(model, batch) -> (loss, logs)``: forward pass and loss for one batch (already on the
  device); ``loss`` a scalar tensor, ``logs`` a dict of scalars (tensors or floats) to show.
  It may raise :class:`SkipBatch` (e.g. all depth invalid) to drop the batch with a reason.
* ``data``: an :class:`EpochData` (``batches_per_epoch`` and ``iter_epoch(epoch, start_batch)``),
  e.g. :class:`depth_training.data.loader.EpochLoader`, whose order is a pure function of
  (seed, epoch), so a resumed run continues with the very batch it would have seen next.
* optional ``val_fn(model, step) -> {name: value}`` and ``image_fn(model, batch) -> {tag: array}``
  (depth maps are colourised for TensorBoard).

Counting: ``step`` is the number of batches consumed, skipped ones included; the LR scheduler is
stepped once per batch. So ``step`` alone fixes the epoch and the position in it, which is what
makes resume exact. A skipped batch (non-finite loss, non-finite gradients, :class:`SkipBatch`)
leaves the weights untouched and is logged with the step and the batch's ``source``/``index``;
after ``max_bad_in_row`` skips in a row the loop saves a checkpoint and raises
:class:`TrainingAborted`. Under DDP every rank takes the same skip decision.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Protocol

import torch

from .checkpoint import CheckpointManager, restore_training_state, training_state, unwrap
from .distributed import DistContext, all_equal_int, any_rank, barrier, default_device, mean_over_ranks
from .monitor import Monitor
from .precision import Precision, resolve_precision

StepFn = Callable[[torch.nn.Module, Any], "tuple[torch.Tensor, Mapping[str, Any]]"]


class SkipBatch(Exception):
    """Raised by a step function to drop the current batch; the message says why."""


class TrainingAborted(RuntimeError):
    """Too many batches in a row had to be skipped; the last good state was checkpointed."""


class EpochData(Protocol):
    """What ``train`` iterates: a fixed number of batches per epoch, restartable mid-epoch."""

    batches_per_epoch: int

    def iter_epoch(self, epoch: int, start_batch: int = 0) -> Iterable[Any]: ...


@dataclass
class TrainResult:
    step: int
    skipped_batches: int
    resumed_from: int | None
    last_scalars: dict[str, float] = field(default_factory=dict)
    last_val: dict[str, float] = field(default_factory=dict)


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Tensors anywhere in nested dicts/lists/tuples go to ``device``; other values stay."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: move_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device) for v in batch)
    return batch


def batch_size_of(batch: Any) -> int:
    """Leading dimension of the first tensor found in ``batch`` (0 when there is none)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else 1
    values = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (list, tuple)) else ()
    for v in values:
        n = batch_size_of(v)
        if n:
            return n
    return 0


def describe_batch(batch: Any, limit: int = 4) -> str:
    """``"kitti#12, kitti#57, ..."`` from the batch's ``source`` and ``index`` entries."""
    if not isinstance(batch, Mapping) or "index" not in batch:
        return "unknown source"
    index = batch["index"]
    index = index.tolist() if isinstance(index, torch.Tensor) else list(index)
    source = batch.get("source", ["?"] * len(index))
    items = [f"{s}#{i}" for s, i in zip(source, index)]
    more = f", ... ({len(items)} samples)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _grad_norm(params: list[torch.nn.Parameter], max_norm: float | None) -> torch.Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    if max_norm is not None:
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    return torch.nn.utils.get_total_norm(grads)


class _Meter:
    """Running sums of scalars over a logging interval (converted to floats when read)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, values: Mapping[str, Any]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v.detach() if isinstance(v, torch.Tensor) else v)
        self.count += 1

    def pop_means(self) -> dict[str, float]:
        out = {k: v / self.count for k, v in self.sums.items()} if self.count else {}
        self.sums, self.count = {}, 0
        return out


def train(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step_fn: StepFn,
    data: EpochData,
    *,
    max_steps: int,
    ctx: DistContext | None = None,
    scheduler: Any | None = None,
    precision: str | Precision | None = None,
    grad_clip: float | None = None,
    checkpoints: CheckpointManager | None = None,
    ckpt_every: int = 0,
    resume: bool = True,
    val_fn: Callable[[torch.nn.Module, int], Mapping[str, float]] | None = None,
    val_every: int = 0,
    image_fn: Callable[[torch.nn.Module, Any], Mapping[str, Any]] | None = None,
    image_every: int = 0,
    monitor: Monitor | None = None,
    log_every: int = 50,
    max_bad_in_row: int = 20,
    config: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` for ``max_steps`` batches (resuming from ``checkpoints`` when present).

    ``model`` must already be on ``ctx.device`` and, with several ranks, DDP-wrapped
    (:func:`depth_training.engine.distributed.wrap_model`). Checkpoints are written every
    ``ckpt_every`` steps and at the end, by rank 0 only. ``precision``: ``"none"``, ``"bf16"``
    or ``"fp16"`` (CUDA only, see :mod:`.precision`). ``grad_clip``: max L2 norm of all
    gradients (``None``: no clipping; the norm is still checked for NaN/Inf). ``monitor``
    (default: log lines only, a progress bar on a terminal) is closed when ``train`` returns.
    Seeding is the caller's job (:func:`.seeding.seed_everything` before building the model).
    With fp16, the GradScaler's first overflow steps count as skipped batches (a handful).
    """
    ctx = ctx or DistContext(device=default_device())
    monitor = monitor or Monitor(None, is_main=ctx.is_main, rank=ctx.rank)
    prec = precision if isinstance(precision, Precision) else resolve_precision(precision, ctx.device)
    spe = int(data.batches_per_epoch)
    if spe <= 0:
        raise ValueError("the data yields no full batch per epoch (dataset smaller than one batch per rank?)")
    if max_steps <= 0:
        raise ValueError(f"max_steps must be positive, got {max_steps}")

    log_every = max(1, int(log_every))
    step, skipped, resumed_from = 0, 0, None
    if checkpoints is not None and resume:
        state = checkpoints.load_latest(map_location="cpu")
        if state is not None:
            step = restore_training_state(state, model, optimizer, scheduler, prec.scaler)
            skipped = int(state.get("extra", {}).get("skipped_batches", 0))
            resumed_from = step
            old_spe = state.get("extra", {}).get("batches_per_epoch")
            if old_spe not in (None, spe):
                monitor.warning(
                    f"resuming at step {step}: batches per epoch changed from {old_spe} to {spe}, "
                    "so the data order does not continue exactly"
                )
            monitor.info(f"resumed from step {step} (epoch {step // spe}, batch {step % spe})")
    if not all_equal_int(step, ctx):
        raise RuntimeError("ranks resumed from different checkpoints; give every rank the same checkpoint directory")

    params = [p for p in model.parameters() if p.requires_grad]
    meter, result = _Meter(), TrainResult(step, skipped, resumed_from)
    bad_in_row, last_saved, last_val_step = 0, step, None
    t_data = t_compute = 0.0
    images = 0

    def save() -> None:
        nonlocal last_saved
        if checkpoints is not None and ctx.is_main:
            extra = {"skipped_batches": skipped, "batches_per_epoch": spe}
            state = training_state(
                step, model, optimizer, scheduler, prec.scaler, epoch=step // spe, config=config, extra=extra
            )
            path = checkpoints.save(state)
            monitor.info(f"checkpoint {path}")
        last_saved = step

    def validate() -> None:
        nonlocal last_val_step
        last_val_step = step
        if val_fn is None:
            return
        if ctx.is_main:
            net = unwrap(model)
            net.eval()
            try:
                with torch.no_grad():
                    values = {k: float(v) for k, v in val_fn(net, step).items()}
            finally:
                net.train()
            result.last_val = values
            monitor.scalars(step, values, prefix="val/")
            monitor.info(f"validation at step {step}: {' '.join(f'{k}={v:.4g}' for k, v in values.items())}")
        barrier(ctx)

    def show_images(batch: Any) -> None:
        if ctx.is_main:
            net = unwrap(model)
            net.eval()
            try:
                with torch.no_grad(), prec.autocast():
                    monitor.images(step, image_fn(net, batch))
            finally:
                net.train()

    model.train()
    monitor.start(step, max_steps)
    consistent = True  # False only while the optimizer is mid-update
    try:
        while step < max_steps:
            epoch, start = divmod(step, spe)
            t0 = time.perf_counter()
            for batch in data.iter_epoch(epoch, start):
                t1 = time.perf_counter()
                batch = move_to_device(batch, ctx.device)
                optimizer.zero_grad(set_to_none=True)
                problem, loss, logs = None, None, {}
                try:
                    with prec.autocast():
                        loss, logs = step_fn(model, batch)
                    if not bool(torch.isfinite(loss.detach()).all()):
                        problem = f"non-finite loss ({float(loss.detach().float().mean())})"
                except SkipBatch as exc:
                    problem = f"skipped by the step function: {exc}"
                if any_rank(problem is not None, ctx):
                    problem = problem or "skipped because another rank had a bad batch"
                else:
                    prec.scaler.scale(loss).backward()
                    prec.scaler.unscale_(optimizer)
                    norm = _grad_norm(params, grad_clip)
                    if not bool(torch.isfinite(norm)):
                        problem = f"non-finite gradient norm ({float(norm)})"
                        if prec.scaler.is_enabled():  # fp16 overflow: scaler skips and lowers the scale
                            prec.scaler.step(optimizer)
                            prec.scaler.update()
                            problem += f", fp16 loss scale lowered to {prec.scaler.get_scale():g}"
                    else:
                        consistent = False
                        prec.scaler.step(optimizer)
                        prec.scaler.update()
                        consistent = True
                        logs = {"loss": loss.detach(), **logs, "grad_norm": norm.detach()}
                if scheduler is not None:
                    scheduler.step()
                step += 1
                t2 = time.perf_counter()
                t_data += t1 - t0
                t_compute += t2 - t1
                images += batch_size_of(batch) * ctx.world_size

                if problem is not None:
                    skipped += 1
                    bad_in_row += 1
                    monitor.warning(f"step {step}: skipped batch [{describe_batch(batch)}]: {problem}")
                    if bad_in_row >= max_bad_in_row:
                        save()
                        where = f"; the last good state is in {checkpoints.directory}" if checkpoints else ""
                        raise TrainingAborted(
                            f"{bad_in_row} batches in a row were skipped (last at step {step}: {problem}){where}"
                        )
                else:
                    bad_in_row = 0
                    meter.add(logs)

                if step % log_every == 0 or step == max_steps:
                    values = meter.pop_means()
                    if "loss" in values:
                        values.update(mean_over_ranks({"loss": values["loss"]}, ctx))
                    values["lr"] = optimizer.param_groups[0]["lr"]
                    values["skipped_batches"] = float(skipped)
                    elapsed = t_data + t_compute
                    if elapsed > 0:
                        values["images_per_s"] = images / elapsed
                        values["data_to_step_time"] = t_data / max(t_compute, 1e-9)
                    t_data = t_compute = 0.0
                    images = 0
                    monitor.scalars(step, values, prefix="train/")
                    monitor.log_line(step, values)
                    result.last_scalars = values
                monitor.advance(step, {"loss": float(logs["loss"])} if problem is None and "loss" in logs else None)
                if image_fn is not None and image_every and step % image_every == 0:
                    show_images(batch)
                if val_every and step % val_every == 0:
                    validate()
                if ckpt_every and step % ckpt_every == 0:
                    save()
                if step >= max_steps:
                    break
                t0 = time.perf_counter()
        if last_val_step != step:
            validate()
        if last_saved != step:
            save()
        barrier(ctx)
    except KeyboardInterrupt as exc:
        if consistent and last_saved != step:
            monitor.warning(f"interrupted at step {step}: saving a checkpoint before exiting")
            save()
        if checkpoints is not None:  # read by depth-train's Ctrl-C line ("rerun ... to resume from step N")
            exc.resume_step = last_saved
            exc.checkpoint_dir = str(checkpoints.directory)
        raise
    finally:
        monitor.flush()
        monitor.close()
    result.step, result.skipped_batches = step, skipped
    return result
