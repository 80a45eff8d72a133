"""Batched evaluation of one predictor over :class:`~.sources.EvalFrames`.

A predictor is any callable ``(B, H, W, 3) uint8 -> (B, H, W)`` float prediction at the ground
truth's resolution (depth, or disparity for ``"ssi_disparity"``): the model's
:class:`~.predict.NetworkPredictor`, a baseline, or a test's oracle.

The metrics are :func:`depth_training.metrics.compute_depth_metrics` over all frames: per-image
errors averaged over the ``n`` images that have evaluated pixels. Computed batch by batch, the mean
is recombined exactly: ``mean = sum_b n_b mean_b / sum_b n_b`` (``n_b`` images of batch ``b``).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from depth_training.evaluation.sources import EvalFrames
from depth_training.metrics import METRIC_NAMES, compute_depth_metrics

__all__ = ["Predictor", "evaluate_predictor", "combine_batch_metrics"]

Predictor = Callable[[np.ndarray], np.ndarray]
# on_batch(indices (B,), rgb (B,H,W,3), gt (B,H,W), pred (B,H,W)), e.g. to save previews
BatchHook = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]


def combine_batch_metrics(parts: list[dict[str, float]]) -> dict[str, float]:
    """Image-weighted mean of per-batch :func:`compute_depth_metrics` results (see module docstring)."""
    total = sum(int(p["num_images"]) for p in parts)
    out: dict[str, float] = {}
    for name in METRIC_NAMES:
        out[name] = (sum(p[name] * p["num_images"] for p in parts if p["num_images"]) / total) if total \
            else float("nan")
    out["num_images"] = total
    return out


def evaluate_predictor(predict: Predictor, frames: EvalFrames, *, alignment: str, min_depth: float,
                       max_depth: float, batch_size: int = 8, on_batch: BatchHook | None = None,
                       progress_desc: str | None = None) -> dict[str, float]:
    """Run ``predict`` over ``frames`` in batches of ``batch_size`` and return the metrics.

    Returns:
        ``{"abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3": float, "num_images": int}``
        (``num_images``: frames with at least one evaluated pixel).

    Raises:
        ValueError: ``predict`` returned the wrong shape or non-finite values at evaluated pixels
            (from :func:`compute_depth_metrics`).

    ``progress_desc``: show progress (:func:`~depth_training.engine.progress.progress`) under this label.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
    parts = []
    starts = range(0, len(frames), batch_size)
    if progress_desc is not None:  # a bar on a terminal, periodic lines when piped
        from depth_training.engine.progress import progress

        starts = progress(starts, total=len(starts), desc=progress_desc, unit="batches")
    for lo in starts:
        rgb, gt = frames.rgb[lo:lo + batch_size], frames.depth[lo:lo + batch_size]
        pred = np.asarray(predict(rgb))
        if pred.shape != gt.shape:
            raise ValueError(f"prediction has shape {pred.shape}, the ground truth {gt.shape}")
        parts.append(compute_depth_metrics(pred, gt, min_depth=min_depth, max_depth=max_depth, alignment=alignment))
        if on_batch is not None:
            on_batch(frames.indices[lo:lo + batch_size], rgb, gt, pred)
    return combine_batch_metrics(parts)
