"""Validation on held-out frames: the mode's loss and, where the recording has depth, the metrics.

:func:`make_val_fn` returns the ``val_fn(net, step)`` of :func:`depth_training.engine.loop.train`.
It runs the mode's ``evaluate`` on un-augmented batches of every validation set (at most
``max_samples`` per set, evenly spread over it) and reports

* ``loss``: the mode's training loss on those frames (no jitter, no tie-break noise), averaged
  over batches;
* ``abs_rel``, ``sq_rel``, ``rmse``, ``rmse_log``, ``a1``, ``a2``, ``a3``: for sets with depth
  (the bag's registered depth topic), :func:`depth_training.metrics.compute_depth_metrics` at
  the training resolution with the alignment that suits the output kind
  (:data:`depth_training.models.artifact.DEFAULT_ALIGNMENT`: none for metric depth, per-image
  median for relative depth, scale and shift in disparity for relative disparity), evaluated
  where ``min_depth < depth < max_depth``; averaged over images.

Each result is also appended as one JSON line ``{"step": ..., name: value, ...}`` to
``history`` (``<out>/validation.jsonl``), so the course of a run (across resumes) can be read
back without TensorBoard.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from depth_training.engine.loop import move_to_device
from depth_training.metrics import METRIC_NAMES, compute_depth_metrics
from depth_training.models.artifact import DEFAULT_ALIGNMENT

__all__ = ["make_val_fn", "evenly_spaced", "read_history"]

LOG = logging.getLogger("depth_training.modes")


def evenly_spaced(n: int, limit: int) -> np.ndarray:
    """``min(n, limit)`` indices spread evenly over ``0 .. n-1`` (all of them when ``n <= limit``)."""
    if limit <= 0 or n <= limit:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, limit)).astype(np.int64))


def _batches(dataset: Dataset, indices: np.ndarray, batch_size: int):
    for i in range(0, len(indices), batch_size):
        yield default_collate([dataset[int(j)] for j in indices[i : i + batch_size]])


def make_val_fn(
    val_sets: Sequence[Dataset],
    evaluate: Callable[[torch.nn.Module, Mapping[str, Any]], tuple[torch.Tensor | None, torch.Tensor | None]],
    *,
    device: torch.device,
    output: str,
    min_depth: float,
    max_depth: float,
    batch_size: int = 8,
    max_samples: int = 200,
    history: Path | None = None,
) -> Callable[[torch.nn.Module, int], dict[str, float]]:
    """``val_fn(net, step) -> {name: value}`` (module docstring). ``net`` is in eval mode, no grad."""
    alignment = DEFAULT_ALIGNMENT[output]
    chosen = [(ds, evenly_spaced(len(ds), max_samples)) for ds in val_sets]

    def val_fn(net: torch.nn.Module, step: int) -> dict[str, float]:
        loss_sum, loss_n = 0.0, 0
        sums, images, bad = {k: 0.0 for k in METRIC_NAMES}, 0, 0
        for dataset, indices in chosen:
            for batch in _batches(dataset, indices, batch_size):
                batch = move_to_device(batch, device)
                loss, pred = evaluate(net, batch)
                if loss is not None:
                    loss_sum += float(loss)
                    loss_n += 1
                if pred is None or "depth" not in batch:
                    continue
                try:
                    m = compute_depth_metrics(pred.float(), batch["depth"], min_depth=min_depth,
                                              max_depth=max_depth, alignment=alignment)
                except ValueError as exc:  # a diverged network: non-finite or non-positive predictions
                    bad += 1
                    LOG.warning("validation at step %d: no metrics for a batch of %s: %s", step,
                                getattr(dataset, "name", "?"), exc)
                    continue
                if m["num_images"]:
                    for k in METRIC_NAMES:
                        sums[k] += m[k] * m["num_images"]
                    images += m["num_images"]
        values: dict[str, float] = {"loss": loss_sum / loss_n if loss_n else math.nan}
        if images or bad:
            values.update({k: (sums[k] / images if images else math.nan) for k in METRIC_NAMES})
            values["depth_images"] = float(images)
        if history is not None:
            with open(history, "a") as f:
                f.write(json.dumps({"step": int(step), **values}) + "\n")
        return values

    return val_fn


def read_history(path: Path) -> list[dict[str, float]]:
    """The validation records of a run, in the order written (a resumed run repeats steps)."""
    if not Path(path).is_file():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
